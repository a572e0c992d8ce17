#!/usr/bin/env bash
# The Debian packages (debian/), from a copy of the source tree:
#  1. debian/libdaxpool0.symbols lists exactly the version nodes and symbols of
#     client-lib/libdaxpool.sym (dh_makeshlibs -c4 then checks them against the built library);
#  2. dpkg-buildpackage -b -us -uc builds libdaxpool0, libdaxpool-dev, daxpool, daxpool-bench;
#  3. lintian reports no error on them;
#  4. in a fresh Debian 12 root (the tarball tests/install/fresh-root.sh caches) the .debs
#     install with apt, the installed daxpoold starts as user daxpool with the shipped default
#     config (the emulated 4K pool in /var/lib/daxpool), the installed daxpoolctl talks to it,
#     and purging the packages leaves no file behind that installing them added.
#
#   check-debian.sh [SOURCE_DIR]        needs root and scripts/deps/install.list; 77 without
set -euo pipefail
top=$(cd "${1:-$(dirname "${BASH_SOURCE[0]}")/../..}" && pwd)
cache=${DAXPOOL_FRESH_ROOT_CACHE:-/var/cache/daxpool-fresh-root}
fail() { echo "check-debian: $*" >&2; exit 1; }

# 1. The symbols file and the version script agree.
expected=$( { echo "libdaxpool.so.0 libdaxpool0 #MINVER#"
	awk '/^DAXPOOL_[0-9.]+ \{/ { v = $1; print " " v "@" v " 0.1.0" }
	     /^[ \t]+daxpool_[a-z0-9_]+;/ { s = $1; sub(/;/, "", s); print " " s "@" v " 0.1.0" }' \
		"$top/client-lib/libdaxpool.sym"; } | sort)
diff <(echo "$expected") <(sort "$top/debian/libdaxpool0.symbols") >/dev/null ||
	fail "debian/libdaxpool0.symbols differs from client-lib/libdaxpool.sym:"$'\n'"$(diff <(echo "$expected") <(sort "$top/debian/libdaxpool0.symbols"))"

[ "$(id -u)" -eq 0 ] || { echo "skipped: needs root (chroot)"; exit 77; }
for c in dpkg-buildpackage dh lintian; do
	command -v "$c" >/dev/null || { echo "skipped: $c not installed (scripts/install-deps.sh install)"; exit 77; }
done

work=$(mktemp -d /var/tmp/daxpool-deb.XXXXXX)
root=$work/root
mounted=()
cleanup() {
	local i
	for ((i = ${#mounted[@]} - 1; i >= 0; i--)); do umount -l "${mounted[$i]}" 2>/dev/null || true; done
	if ! grep -q " $work/" /proc/self/mounts; then rm -rf --one-file-system "$work"; fi
}
trap cleanup EXIT

# 2. Build from a copy (dpkg-buildpackage writes debian/ and obj-*/ into the tree it builds).
mkdir -p "$work/daxpool-0.1.0"
git -C "$top" ls-files -z --cached --others --exclude-standard |
	(cd "$top" && xargs -0 -r tar --no-recursion --ignore-failed-read -cf - 2>/dev/null) | tar -C "$work/daxpool-0.1.0" -xf -
t0=$SECONDS
(cd "$work/daxpool-0.1.0" && dpkg-buildpackage -b -us -uc -j"$(nproc)") >"$work/build.log" 2>&1 ||
	{ grep -vE '^(cd |/usr/bin/cc|-- Install|\[)' "$work/build.log" | tail -25; fail "dpkg-buildpackage failed"; }
echo "check-debian: dpkg-buildpackage in $((SECONDS - t0)) s: $(cd "$work" && ls ./*.deb | xargs -n1 basename | tr '\n' ' ')"
for p in libdaxpool0 libdaxpool-dev daxpool daxpool-bench; do
	ls "$work/${p}_"*.deb >/dev/null 2>&1 || fail "no $p package"
done
dpkg-deb -c "$work"/libdaxpool-dev_*.deb >"$work/dev.list"
dpkg-deb -c "$work"/daxpool_*.deb >"$work/daxpool.list"
grep -q 'man3/daxpool_open.3' "$work/dev.list" || fail "libdaxpool-dev has no daxpool_open(3)"
grep -q 'man8/daxpoold.8' "$work/daxpool.list" || fail "daxpool has no daxpoold(8)"

# 3. lintian: no errors (warnings are printed).
lintian --no-tag-display-limit "$work"/*.changes >"$work/lintian.log" 2>&1 || true
cat "$work/lintian.log"
if grep -q '^E: ' "$work/lintian.log"; then fail "lintian reported errors"; fi

# 4. Install into a fresh root, run, purge.
tarball=$cache/bookworm-minbase.tar.gz
[ -f "$tarball" ] || "$(dirname "$0")/fresh-root.sh" "$top" >/dev/null 2>&1 || true
[ -f "$tarball" ] || fail "no cached Debian 12 root ($tarball): run tests/install/fresh-root.sh first"
mkdir -p "$root" "$cache/archives/partial"
tar -C "$root" -xzf "$tarball"
chmod 0755 "$root" # mktemp made it 0700: the root directory of a system is 0755
cp /etc/resolv.conf "$root/etc/resolv.conf"
mount -t proc proc "$root/proc"; mounted+=("$root/proc")
mount --bind /dev "$root/dev"; mounted+=("$root/dev")
mount --bind "$cache/archives" "$root/var/cache/apt/archives"; mounted+=("$root/var/cache/apt/archives")
chroot "$root" install -d -o _apt -g root -m 0700 /var/lib/apt/lists/partial /var/cache/apt/archives/partial
mkdir -p "$root/debs" && cp "$work"/*.deb "$root/debs/"
in_root() { chroot "$root" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root LANG=C.UTF-8 DEBIAN_FRONTEND=noninteractive "$@"; }
in_root apt-get update -qq >/dev/null 2>&1 || fail "apt-get update failed in the fresh root"
# What the packages' dependencies bring is installed first, so the purge check sees only ours.
deps=$(for d in "$root"/debs/*.deb; do dpkg-deb -f "$d" Depends; done | tr ',' '\n' |
	sed -E 's/\(.*\)//; s/\|.*//; s/^ +//; s/ +$//' | grep -vE '^(libdaxpool|daxpool)' | sort -u | tr '\n' ' ')
# shellcheck disable=SC2086
in_root apt-get install -y -qq --no-install-recommends $deps >"$work/deps.log" 2>&1 || { tail "$work/deps.log"; fail "dependencies do not install"; }
snapshot() {
	(cd "$root" && find . -xdev \( -path ./proc -o -path ./dev -o -path ./debs -o -path ./var/cache/apt -o -path ./var/lib/apt \
		-o -path ./var/lib/dpkg -o -path ./var/log -o -path ./tmp -o -path ./var/cache/debconf -o -path ./var/cache/ldconfig \) -prune -o -print | sort)
}
snapshot >"$work/before"
in_root sh -c 'apt-get install -y -qq --no-install-recommends /debs/*.deb' >"$work/install.log" 2>&1 ||
	{ tail -20 "$work/install.log"; fail "the .debs do not install"; }
in_root id daxpool >/dev/null || fail "installing did not create the daxpool user"
in_root getent group daxpool-users >/dev/null || fail "installing did not create the clients' group daxpool-users"
# No systemd in a chroot: start the daemon as the unit would, as user daxpool with the default config.
in_root install -d -o daxpool -g daxpool -m 0755 /run/daxpool
in_root install -d -o daxpool -g daxpool -m 0750 /var/lib/daxpool
# chroot, env and setpriv all exec: $! is daxpoold itself, which gets the SIGTERM below.
chroot "$root" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin LANG=C.UTF-8 \
	setpriv --reuid daxpool --regid daxpool --init-groups daxpoold --foreground >"$work/daemon.log" 2>&1 &
daemon=$!
ok=0
for _ in $(seq 100); do
	if in_root daxpoolctl status >"$work/status.log" 2>&1; then ok=1; break; fi
	kill -0 "$daemon" 2>/dev/null || break
	sleep 0.1
done
[ "$ok" -eq 1 ] || { cat "$work/daemon.log" "$work/status.log"; fail "the installed daxpoold did not serve the default config"; }
in_root daxpool-demo --pings 100 >/dev/null || fail "daxpool-demo failed against the installed daemon"
kill -TERM "$daemon"; wait "$daemon" || fail "the installed daxpoold did not stop cleanly: $(cat "$work/daemon.log")"
[ -f "$root/var/lib/daxpool/emulated.pool" ] || fail "the default config's pool is not in /var/lib/daxpool"
in_root apt-get purge -y -qq libdaxpool0 libdaxpool-dev daxpool daxpool-bench >"$work/purge.log" 2>&1 ||
	{ tail "$work/purge.log"; fail "purge failed"; }
snapshot >"$work/after"
# The daxpool user and group stay (Debian keeps system users): only their lines in /etc/passwd etc.
stray=$(comm -13 "$work/before" "$work/after" | grep -vE '^\./etc/(passwd|group|shadow|gshadow)-?$' || true)
[ -z "$stray" ] || fail "purging left these behind:"$'\n'"$stray"
echo "check-debian: 4 packages built, lintian without errors, installed, served, purged clean"
