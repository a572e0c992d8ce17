#!/usr/bin/env bash
# The man pages of docs/man, for a source tree TOP:
#  1. every page renders with groff without a single warning (-ww: all warning types);
#  2. every symbol libdaxpool exports (client-lib/libdaxpool.sym) is named in the NAME section
#     of a section-3 page (the page itself, or the link page docs/man/CMakeLists.txt makes);
#  3. every reference to one of the project's pages, NAME(N) for names starting with daxpool or
#     libdaxpool, in the pages, README.md, docs/*.md and the systemd units, names a page that
#     exists in that section.
set -euo pipefail
top=${1:?usage: check-man.sh TOP}
dir=$top/docs/man
command -v groff >/dev/null || { echo "skipped: groff not installed (apt-get install groff-base)"; exit 77; }
fail=0
for page in "$dir"/*.[1-8]; do
	err=$(groff -man -Tutf8 -ww -z "$page" 2>&1 >/dev/null || echo "groff exited with $?")
	if [ -n "$err" ]; then
		echo "$page:"; echo "$err"; fail=1
	fi
done

# name(section) of every page and every name in a NAME section.
declare -A have=()
for page in "$dir"/*.[1-8]; do
	file=$(basename "$page")
	sec=${file##*.}
	have["${file%.*}($sec)"]=$file
	names=$(sed -n '/^\.SH NAME/{n;p;q}' "$page" | sed 's/ *\\-.*//')
	IFS=',' read -ra list <<<"$names"
	for n in "${list[@]}"; do
		n=${n// /}
		[ -n "$n" ] && have["$n($sec)"]=$file
	done
done

while read -r sym; do
	[ -n "${have["$sym(3)"]:-}" ] || { echo "no man page for exported symbol $sym (add it to a page's NAME section)"; fail=1; }
done < <(sed -n 's/^[[:space:]]*\(daxpool_[A-Za-z0-9_]*\);.*/\1/p' "$top/client-lib/libdaxpool.sym")

refs() {
	# roff font escapes and ".BR name (N)" become plain name(N).
	sed -e 's/\\f[BIRP]//g' -e 's/\\-/-/g' -e 's/^\.[BI]R* *\([^ ]*\) (\([1-8]\)).*/\1(\2)/' "$1" |
		grep -oE '(^|[^A-Za-z0-9_./-])(lib)?daxpool[A-Za-z0-9_.-]*\([1-8]\)' | sed -E 's/^[^a-z]//' || true
}
for f in "$dir"/*.[1-8] "$top"/README.md "$top"/docs/*.md "$top"/systemd/*.service* "$top"/systemd/*.socket; do
	[ -e "$f" ] || continue
	while read -r ref; do
		[ -n "$ref" ] || continue
		[ -n "${have[$ref]:-}" ] || { echo "${f#"$top"/}: refers to $ref, which no page documents"; fail=1; }
	done < <(refs "$f" | sort -u)
done
[ "$fail" -eq 0 ] && echo "man pages: ${#have[@]} names, every export documented, every reference resolves"
exit "$fail"
