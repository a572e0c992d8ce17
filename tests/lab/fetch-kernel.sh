#!/usr/bin/env bash
# Fetches a Debian kernel for the lab without installing anything into the host.
#
#   fetch-kernel.sh [--refresh] 5.10|6.1|6.12|new
#
#   5.10  newest linux-image-5.10.0-NN-amd64 of bullseye (+ -updates, -security: Debian 11)
#   6.1   newest linux-image-6.1.0-NN-amd64 of the machine's own bookworm sources (Debian 12)
#   6.12  newest linux-image-6.12.*-amd64 of trixie (+ -updates, -security: Debian 13)
#   new   newest kernel of trixie-backports (linux-binary-VER-amd64 + linux-modules-VER-amd64)
#
# Suites the machine does not list (bullseye, trixie, trixie-backports) are reached through the
# URIs of its own bookworm entries: the plain entry's URI for SUITE and SUITE-updates, the
# security entry's URI for SUITE-security.
#
# Packages come through a private apt configuration (own sources, lists and archive cache under
# $LAB_CACHE/apt/<generation>); the mirror URI is read from the machine's apt sources at run time.
# The unpacked kernel lands in $LAB_CACHE/kernels/<version>/ (vmlinuz, root/lib/modules/<version>,
# modules.dep made by depmod). A second run reuses it and touches no network; --refresh asks apt
# whether a newer version exists (and downloads only if it does).
# Prints the kernel directory on stdout.
set -euo pipefail
# shellcheck source=lib/common.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"

refresh=${DAXPOOL_LAB_REFRESH:-0}
while [ "$#" -gt 0 ]; do
	case "$1" in
	--refresh) refresh=1 ;;
	-*) die "fetch-kernel: unknown option $1" ;;
	*) break ;;
	esac
	shift
done
[ "$#" -eq 1 ] || die "usage: fetch-kernel.sh [--refresh] 5.10|6.1|6.12|new"
gen=$(lab_generation "$1")
need_cmd apt-get apt-cache dpkg-deb depmod flock

mkdir -p "$LAB_CACHE/kernels" "$LAB_CACHE/apt"
exec 9>"$LAB_CACHE/fetch.lock"
flock 9

current="$LAB_CACHE/kernels/$gen.current"
if [ "$refresh" != 1 ] && [ -s "$current" ]; then
	ver=$(cat "$current")
	if [ -e "$LAB_CACHE/kernels/$ver/.complete" ]; then
		log "kernel $gen: cached $ver (no network; --refresh checks for a newer one)"
		printf '%s\n' "$LAB_CACHE/kernels/$ver"
		exit 0
	fi
fi

# --- The machine's apt sources: "URI SUITE" per deb entry (deb822 and one-line formats). ---------
machine_sources() {
	local f
	for f in /etc/apt/sources.list.d/*.sources; do
		[ -r "$f" ] || continue
		awk '
			function flush() {
				if (types ~ /(^| )deb( |$)/ && enabled != "no")
					for (i = 1; i <= nu; i++) for (j = 1; j <= ns; j++) print u[i], s[j]
				types = ""; enabled = ""; nu = 0; ns = 0
			}
			/^[[:space:]]*#/ { next }
			/^[[:space:]]*$/ { flush(); next }
			{
				key = tolower($1); sub(/:$/, "", key)
				if (key == "types") { $1 = ""; types = $0 " " }
				else if (key == "enabled") enabled = tolower($2)
				else if (key == "uris") for (i = 2; i <= NF; i++) u[++nu] = $i
				else if (key == "suites") for (i = 2; i <= NF; i++) s[++ns] = $i
			}
			END { flush() }' "$f"
	done
	for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
		[ -r "$f" ] || continue
		awk '$1 == "deb" {
			i = 2
			if ($i ~ /^\[/) { while (i <= NF && $i !~ /\]$/) i++; i++ }
			print $i, $(i + 1)
		}' "$f"
	done
}

adir="$LAB_CACHE/apt/$gen"
mkdir -p "$adir/lists/partial" "$adir/cache/archives/partial"
keyring=/usr/share/keyrings/debian-archive-keyring.gpg
[ -r "$keyring" ] || die "no $keyring (package debian-archive-keyring)"
srcs=$(machine_sources)
# Entries of another Debian release: SUITE and SUITE-updates from the URI of the machine's plain
# bookworm entry, SUITE-security from the URI of its bookworm-security entry (if it has one).
other_release() { # SUITE
	local uri suri
	uri=$(awk '$2 == "bookworm" { print $1; exit }' <<<"$srcs")
	suri=$(awk '$2 ~ /^bookworm-security(\/updates)?$/ { print $1; exit }' <<<"$srcs")
	[ -n "$uri" ] || return 0
	printf '%s %s\n%s %s-updates\n' "$uri" "$1" "$uri" "$1"
	[ -z "$suri" ] || printf '%s %s-security\n' "$suri" "$1"
}
case "$gen" in
5.10) lines=$(other_release bullseye) ;;
6.1)
	# The machine's own bookworm entries (bookworm, -updates, -security), each with its URI.
	lines=$(awk '$2 ~ /^bookworm(-updates|-security)?(\/updates)?$/ { print $1, $2 }' <<<"$srcs" | sort -u)
	;;
6.12) lines=$(other_release trixie) ;;
new)
	# trixie-backports from the URI of the machine's plain bookworm entry.
	uri=$(awk '$2 == "bookworm" { print $1; exit }' <<<"$srcs")
	[ -n "$uri" ] && lines="$uri trixie-backports"
	;;
esac
[ -n "${lines:-}" ] || die "no Debian bookworm entry in the machine's apt sources (/etc/apt/sources.list.d/debian.sources or /etc/apt/sources.list)"
while read -r uri suite; do
	printf 'deb [signed-by=%s] %s %s main\n' "$keyring" "$uri" "$suite"
done <<<"$lines" >"$adir/sources.list"

# apt's messages name the mirror; keep its host name out of logs.
hide_uri() { sed -E 's#[A-Za-z][A-Za-z0-9+.-]*://[^/[:space:]]+#<mirror>#g' >&2; }
apt_opts=(
	-o "Dir::Etc::SourceList=$adir/sources.list" -o Dir::Etc::SourceParts=/dev/null
	-o Dir::Etc::Preferences=/dev/null -o Dir::Etc::PreferencesParts=/dev/null
	-o "Dir::State::Lists=$adir/lists" -o "Dir::Cache=$adir/cache"
	-o APT::Sandbox::User=root -o Acquire::Languages=none -o Acquire::Retries=3
)
t0=$(now_ms)
log "kernel $gen: updating the private package lists ($adir)"
apt-get "${apt_opts[@]}" -qq update 2>&1 | hide_uri || die "apt-get update with the private configuration failed"

has_candidate() {
	local out
	out=$(apt-cache "${apt_opts[@]}" policy "$1" 2>/dev/null) || return 1
	grep -q '^  Candidate: [^(]' <<<"$out"
}
# The newest linux-image-PREFIX*-amd64 with a candidate version (pkgnames also lists names that
# are only referenced). Plain flavour only: no cloud, rt, unsigned or dbg packages.
newest_image() { # PREFIX REGEX
	local cand
	for cand in $(apt-cache "${apt_opts[@]}" pkgnames "linux-image-$1" | grep -E "$2" | sort -rV); do
		if has_candidate "$cand"; then
			printf '%s\n' "$cand"
			return 0
		fi
	done
}
case "$gen" in
5.10)
	pkg=$(newest_image 5.10.0- '^linux-image-5\.10\.0-[0-9]+-amd64$')
	[ -n "$pkg" ] || die "no linux-image-5.10.0-NN-amd64 package in the bullseye sources"
	ver=${pkg#linux-image-}
	pkgs=("$pkg")
	;;
6.1)
	pkg=$(newest_image 6.1.0- '^linux-image-6\.1\.0-[0-9]+-amd64$')
	[ -n "$pkg" ] || die "no linux-image-6.1.0-NN-amd64 package in the bookworm sources"
	ver=${pkg#linux-image-}
	pkgs=("$pkg")
	;;
6.12)
	# trixie names its kernel linux-image-6.12.N+deb13-amd64 (vmlinuz and modules in one package).
	pkg=$(newest_image 6.12. '^linux-image-6\.12\.[0-9]+[^-]*-amd64$')
	[ -n "$pkg" ] || die "no linux-image-6.12.*-amd64 package in the trixie sources"
	ver=${pkg#linux-image-}
	pkgs=("$pkg")
	;;
new)
	# pkgnames also lists names that are only referenced; take the newest VER for which both
	# halves are real packages with a candidate version. Plain flavour only (no cloud/rt/unsigned).
	pkg=""
	for cand in $(apt-cache "${apt_opts[@]}" pkgnames linux-binary- |
		grep -E '^linux-binary-[0-9][^-]*-amd64$' | sort -rV); do
		v=${cand#linux-binary-}
		if has_candidate "$cand" && has_candidate "linux-modules-$v"; then
			pkg=$cand
			break
		fi
	done
	[ -n "$pkg" ] || die "no linux-binary-VER-amd64 + linux-modules-VER-amd64 pair in trixie-backports"
	ver=${pkg#linux-binary-}
	pkgs=("$pkg" "linux-modules-$ver")
	;;
esac
kdir="$LAB_CACHE/kernels/$ver"
if [ -e "$kdir/.complete" ]; then
	log "kernel $gen: newest is $ver, already cached"
	printf '%s\n' "$ver" >"$current"
	printf '%s\n' "$kdir"
	exit 0
fi

tmp=$(mktemp -d "$LAB_CACHE/kernels/.fetch.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
log "kernel $gen: downloading ${pkgs[*]}"
(cd "$tmp" && apt-get "${apt_opts[@]}" -qq download "${pkgs[@]}" 2>&1 | hide_uri) || die "apt-get download ${pkgs[*]} failed"
t1=$(now_ms)
for deb in "$tmp"/*.deb; do
	dpkg-deb -x "$deb" "$tmp/root"
	dpkg-deb -f "$deb" Package Version | paste -sd' ' >>"$tmp/packages"
done
rm -f "$tmp"/*.deb
# Merged-/usr packages ship usr/lib/modules; modprobe -d ROOT looks in ROOT/lib/modules.
if [ ! -e "$tmp/root/lib" ] && [ -d "$tmp/root/usr/lib" ]; then ln -s usr/lib "$tmp/root/lib"; fi
[ -d "$tmp/root/lib/modules/$ver" ] || die "package holds no lib/modules/$ver"
for v in "$tmp/root/boot/vmlinuz-$ver" "$tmp/root/lib/modules/$ver/vmlinuz"; do
	if [ -f "$v" ]; then
		mv "$v" "$tmp/vmlinuz"
		break
	fi
done
[ -f "$tmp/vmlinuz" ] || die "package holds no vmlinuz for $ver"
depmod -b "$tmp/root" "$ver" || die "depmod -b failed for $ver"
printf '%s\n' "$ver" >"$tmp/version"
printf '%s\n' "$gen" >"$tmp/generation"
t2=$(now_ms)
printf '{"version":"%s","generation":"%s","download_s":%s,"unpack_s":%s,"bytes":%s}\n' \
	"$ver" "$gen" "$(elapsed "$t0" "$t1")" "$(elapsed "$t1" "$t2")" \
	"$(du -sb "$tmp" | cut -f1)" >"$tmp/fetch.json"
touch "$tmp/.complete"
rm -rf "$kdir"
mv "$tmp" "$kdir"
trap - EXIT
printf '%s\n' "$ver" >"$current"
log "kernel $gen: $ver cached in $kdir (download $(elapsed "$t0" "$t1") s, unpack $(elapsed "$t1" "$t2") s)"
printf '%s\n' "$kdir"
