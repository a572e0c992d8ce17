#!/usr/bin/env bash
# Every man page renders with groff without a single warning (-ww: all warning types).
set -euo pipefail
dir=${1:?usage: check-man.sh DIR}
command -v groff >/dev/null || { echo "skipped: groff not installed (apt-get install groff-base)"; exit 77; }
fail=0
for page in "$dir"/*.[1-8]; do
	err=$(groff -man -Tutf8 -ww -z "$page" 2>&1 >/dev/null || echo "groff exited with $?")
	if [ -n "$err" ]; then
		echo "$page:"; echo "$err"; fail=1
	else
		echo "ok: $(basename "$page")"
	fi
done
exit "$fail"
