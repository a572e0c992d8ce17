#!/usr/bin/env bash
# `cmake --install` into a DESTDIR gives the complete tree: binaries, the versioned library with
# its SONAME link, the header, daxpool.pc that compiles and links a program, units, config.
set -euo pipefail
build=$1
dest=$(mktemp -d)
trap 'rm -rf "$dest"' EXIT
DESTDIR=$dest cmake --install "$build" >/dev/null
prefix=$(sed -n 's/^CMAKE_INSTALL_PREFIX:PATH=//p' "$build/CMakeCache.txt")
libdir=$(dirname "$(find "$dest" -name daxpool.pc -path '*pkgconfig*')")/..
missing=0
for f in "sbin/daxpoold" "sbin/daxpoolctl" "include/daxpool.h" \
         "lib/systemd/system/daxpoold.service" "lib/systemd/system/daxpoold.socket" \
         "lib/sysusers.d/daxpool.conf" "lib/tmpfiles.d/daxpool.conf" \
         "share/doc/daxpool/examples/daxpool.json"; do
	[ -e "$dest$prefix/$f" ] || { echo "missing: $prefix/$f"; missing=1; }
done
for f in libdaxpool.so libdaxpool.so.0 libdaxpool.a; do
	[ -e "$libdir/$f" ] || { echo "missing: $f in $libdir"; missing=1; }
done
[ -n "$(find "$dest" -path '*/etc/daxpool/daxpool.json')" ] || { echo "missing: etc/daxpool/daxpool.json"; missing=1; }
[ "$missing" -eq 0 ] || exit 1
[ "$(readlink "$libdir/libdaxpool.so.0")" = "libdaxpool.so.$(sed -n 's/^CMAKE_PROJECT_VERSION:STATIC=//p' "$build/CMakeCache.txt")" ] ||
	{ echo "libdaxpool.so.0 does not point at the versioned file"; exit 1; }
# A program builds against the installed tree through pkg-config alone.
cat >"$dest/t.c" <<'C'
#include <daxpool.h>
#include <string.h>
int main(void) { return strlen(daxpool_version()) > 0 ? 0 : 1; }
C
pcdir=$(dirname "$(find "$dest" -name daxpool.pc)")
# A relocatable daxpool.pc (prefix from ${pcfiledir}) is right under DESTDIR as it is; one with
# absolute paths (prefix /usr) needs the DESTDIR as sysroot.
sysroot=$dest
grep -q '^prefix=${pcfiledir}' "$pcdir/daxpool.pc" && sysroot=
flags=$(PKG_CONFIG_PATH=$pcdir PKG_CONFIG_SYSROOT_DIR=$sysroot pkg-config --cflags --libs daxpool)
# An instrumented library needs an instrumented program (the ASan runtime must load first).
san=""
grep -q '^DAXPOOL_SANITIZE:BOOL=ON' "$build/CMakeCache.txt" && san="-fsanitize=address,undefined"
cc -Wall -Werror $san "$dest/t.c" $flags -o "$dest/t"
LD_LIBRARY_PATH=$libdir "$dest/t"
echo "install tree complete under DESTDIR; pkg-config build and run OK"
