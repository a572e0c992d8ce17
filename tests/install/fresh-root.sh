#!/usr/bin/env bash
# The README's run command on a machine where nothing is installed: a Debian 12 (bookworm)
# minbase root made by debootstrap from this machine's own apt sources, the source tree copied
# in, and ./scripts/demo.sh run inside it as root. It passes only if demo.sh installs every
# package the default build needs (daxpool-bench included: the build must not have skipped an
# optional part for lack of a package), the demo client runs and daxpoold stops cleanly.
# Then every package named in scripts/deps/*.list must resolve in that root
# (apt-get install --simulate), so the test command's installs would succeed there too.
#
#   tests/install/fresh-root.sh [SOURCE_DIR]
#
# Needs root and debootstrap (scripts/deps/install.list); exits 77 (skipped) without them.
# Cached under $DAXPOOL_FRESH_ROOT_CACHE (/var/cache/daxpool-fresh-root): the bootstrapped
# root as a tarball (made again after 30 days) and apt's downloaded .debs. With a warm cache a
# run costs the apt index download, the build and the demo (docs/INSTALL.md gives timings).
set -euo pipefail
top=$(cd "${1:-$(dirname "${BASH_SOURCE[0]}")/../..}" && pwd)
cache=${DAXPOOL_FRESH_ROOT_CACHE:-/var/cache/daxpool-fresh-root}
suite=bookworm
limit=${DAXPOOL_FRESH_ROOT_TIMEOUT:-1800}

[ "$(id -u)" -eq 0 ] || { echo "skipped: fresh-root needs root (chroot, mounts)"; exit 77; }
command -v debootstrap >/dev/null || { echo "skipped: debootstrap not installed (scripts/install-deps.sh install)"; exit 77; }

# The first Debian mirror of this machine's apt sources that carries $suite, main: one-line
# sources.list entries and deb822 .sources stanzas alike. Nothing is hard-coded.
mirror_uri() {
	local f
	for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
		[ -r "$f" ] || continue
		awk -v s="$suite" '$1 == "deb" { i = 2; if ($2 ~ /^\[/) { while (i <= NF && $i !~ /\]$/) i++; i++ }
			if ($(i + 1) == s) { print $i; exit } }' "$f"
	done
	for f in /etc/apt/sources.list.d/*.sources; do
		[ -r "$f" ] || continue
		awk -v s="$suite" 'function flush() { if (types ~ /(^| )deb( |$)/ && (" " suites " ") ~ (" " s " ") && uris != "") { split(uris, u, " "); print u[1]; found = 1 } types = suites = uris = "" }
			/^[ \t]*$/ { flush(); if (found) exit; next }
			/^Types:/ { sub(/^Types:[ \t]*/, ""); types = $0 }
			/^Suites:/ { sub(/^Suites:[ \t]*/, ""); suites = $0 }
			/^URIs:/ { sub(/^URIs:[ \t]*/, ""); uris = $0 }
			END { if (!found) flush() }' "$f"
	done
}
mirror=$(mirror_uri | head -1)
[ -n "$mirror" ] || { echo "fresh-root: no apt source for Debian $suite in /etc/apt/sources.list*"; exit 1; }

start=$(date +%s)
mkdir -p "$cache/archives/partial"
root=$(mktemp -d /var/tmp/daxpool-fresh-root.XXXXXX)
mounted=()
cleanup() {
	local i
	for ((i = ${#mounted[@]} - 1; i >= 0; i--)); do umount -l "${mounted[$i]}" 2>/dev/null || true; done
	# Only remove the root once nothing is mounted in it any more (never follow a bind mount).
	if ! grep -q " $root/" /proc/self/mounts; then rm -rf --one-file-system "$root"; fi
}
trap cleanup EXIT
mnt() { mount "$@"; mounted+=("${!#}"); }

tarball=$cache/$suite-minbase.tar.gz
if [ -f "$tarball" ] && [ -n "$(find "$tarball" -mtime -30)" ]; then
	tar -C "$root" -xzf "$tarball"
	chmod 0755 "$root" # mktemp made it 0700: the root directory of a system is 0755
	echo "fresh-root: $suite minbase root from the cache ($tarball)"
else
	echo "fresh-root: debootstrap --variant=minbase $suite from $mirror"
	debootstrap --variant=minbase --cache-dir="$cache/archives" "$suite" "$root" "$mirror" >"$root.log" 2>&1 ||
		{ tail -20 "$root.log"; rm -f "$root.log"; echo "fresh-root: debootstrap failed"; exit 1; }
	rm -f "$root.log"
	rm -rf "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/archives/*.deb
	tar -C "$root" -czf "$tarball.tmp" . && mv "$tarball.tmp" "$tarball"
	echo "fresh-root: bootstrapped in $(($(date +%s) - start)) s, cached as $tarball"
fi
# Nothing but the base system: the demo must install everything itself.
if chroot "$root" dpkg-query -W -f='${db:Status-Status}\n' cmake gcc 2>/dev/null | grep -q '^installed'; then
	echo "fresh-root: the root is not pristine (cmake or gcc installed)"; exit 1
fi

cp /etc/resolv.conf "$root/etc/resolv.conf"
mnt -t proc proc "$root/proc"
mnt --bind /dev "$root/dev"
mnt -t devpts -o newinstance,ptmxmode=0666 devpts "$root/dev/pts"
mnt --bind "$cache/archives" "$root/var/cache/apt/archives"
# apt downloads as its own user: the partial directories must be that user's in this root.
chroot "$root" install -d -o _apt -g root -m 0700 /var/lib/apt/lists/partial /var/cache/apt/archives/partial
mkdir -p "$root/src/daxpool"
# The source tree as a clone would have it: tracked and new files, no build trees.
git -C "$top" ls-files -z --cached --others --exclude-standard |
	(cd "$top" && xargs -0 -r tar --no-recursion --ignore-failed-read -cf - 2>/dev/null) | tar -C "$root/src/daxpool" -xf -

echo "fresh-root: running ./scripts/demo.sh in the fresh $suite root"
log=$cache/demo.log
t0=$(date +%s)
rc=0
timeout "$limit" chroot "$root" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root LANG=C.UTF-8 \
	bash -c 'cd /src/daxpool && ./scripts/demo.sh' >"$log" 2>&1 || rc=$?
t1=$(date +%s)
if [ "$rc" -ne 0 ]; then
	tail -40 "$log"
	echo "fresh-root: ./scripts/demo.sh failed in the fresh root (exit $rc; log $log)"
	exit 1
fi
grep -q '^demo: daxpoold stopped cleanly' "$log" || { tail -20 "$log"; echo "fresh-root: demo did not finish"; exit 1; }
fail=0
for f in daemon/daxpoold cli/daxpoolctl examples/daxpool-demo bench/daxpool-bench; do
	[ -x "$root/src/daxpool/build/$f" ] || { echo "fresh-root: the default build did not make $f"; fail=1; }
done
if grep -E '^demo: [^ ]+ (skipped|not found):' "$log"; then
	echo "fresh-root: the default build skipped a part for lack of a package (lines above)"; fail=1
fi

# Every package of every list resolves in this root (what ./scripts/test.sh would install).
pkgs=$(cat "$top"/scripts/deps/*.list | sed 's/#.*//' | awk 'NF { print $1 }' | sort -u)
# shellcheck disable=SC2086
if ! out=$(chroot "$root" apt-get install --simulate -qq $pkgs 2>&1); then
	echo "$out" | tail -20
	echo "fresh-root: a package of scripts/deps/*.list does not install on $suite"; fail=1
fi
[ "$fail" -eq 0 ] || exit 1
echo "fresh-root: demo.sh passed in a fresh $suite root (demo $((t1 - t0)) s, total $(($(date +%s) - start)) s)"
