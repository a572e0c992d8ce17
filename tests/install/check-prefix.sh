#!/usr/bin/env bash
# A relocatable install: `cmake --install BUILD --prefix DIR` into a prefix the build was not
# configured for puts every file under DIR, and what it installed works from there:
#  - the config (DIR/etc/daxpool/daxpool.json) is the shipped emulated default;
#  - daxpool.pc builds tests/install/app.c with `pkg-config --cflags --libs daxpool` alone;
#  - the installed daxpoold serves the installed default config (its paths moved into a
#    temporary directory), the installed daxpoolctl and daxpool-demo run without
#    LD_LIBRARY_PATH and load DIR's libdaxpool, and the app allocates, maps, persists, frees;
#  - the installed units name DIR's daxpoold and config, and `systemd-analyze verify` passes
#    on them, man pages included (Documentation=man:daxpoold(8)).
#
#   check-prefix.sh BUILD_DIR
set -euo pipefail
build=${1:?usage: check-prefix.sh BUILD_DIR}
here=$(cd "$(dirname "$0")" && pwd)
tmp=$(mktemp -d /tmp/daxpool-prefix.XXXXXX)
daemon_pid=""
cleanup() {
	if [ -n "$daemon_pid" ]; then kill "$daemon_pid" 2>/dev/null || true; wait "$daemon_pid" 2>/dev/null || true; fi
	rm -rf "$tmp"
}
trap cleanup EXIT
fail() { echo "check-prefix: $*" >&2; exit 1; }
prefix=$tmp/prefix

# An instrumented build installs instrumented programs: they need the sanitizer runtime first.
san=""
grep -q '^DAXPOOL_SANITIZE:BOOL=ON' "$build/CMakeCache.txt" && san="-fsanitize=address,undefined"

# 1. Everything lands under the prefix ("-- Installing: PATH" for each file; the build's
#    install_manifest.txt could be another install's, run at the same time).
cmake --install "$build" --prefix "$prefix" >"$tmp/install.log" 2>&1 || { cat "$tmp/install.log"; fail "cmake --install failed"; }
installed=$(sed -nE 's/^-- (Installing|Up-to-date|Set runtime path of) ?"?([^"]*)"?.*/\2/p' "$tmp/install.log" | sed 's/^: //')
[ "$(wc -l <<<"$installed")" -gt 50 ] || fail "cmake --install reported only $(wc -l <<<"$installed") files:"$'\n'"$(cat "$tmp/install.log")"
outside=$(grep -v "^$prefix/" <<<"$installed" || true)
[ -z "$outside" ] || fail "installed outside the prefix $prefix:"$'\n'"$outside"
for f in sbin/daxpoold sbin/daxpoolctl bin/daxpool-demo include/daxpool.h etc/daxpool/daxpool.json \
         lib/systemd/system/daxpoold.service lib/systemd/system/daxpoold.socket \
         lib/sysusers.d/daxpool.conf lib/tmpfiles.d/daxpool.conf share/man/man8/daxpoold.8 \
         share/man/man5/daxpool.json.5 share/man/man7/libdaxpool.7; do
	[ -e "$prefix/$f" ] || fail "missing $prefix/$f"
done
pc=$(find "$prefix" -name daxpool.pc) && [ -n "$pc" ] || fail "no daxpool.pc under $prefix"
libdir=$(PKG_CONFIG_PATH=$(dirname "$pc") pkg-config --variable=libdir daxpool)
[ -e "$libdir/libdaxpool.so.0" ] || fail "daxpool.pc's libdir $libdir holds no libdaxpool.so.0"

# 2. The installed programs find the installed library by themselves.
for prog in sbin/daxpoolctl bin/daxpool-demo libexec/daxpool/daxpool-verify; do
	lib=$(env -u LD_LIBRARY_PATH ldd "$prefix/$prog" | awk '$1 ~ /^libdaxpool\.so/ { print $3 }')
	[ "$(realpath -m "$lib")" = "$(realpath "$libdir/libdaxpool.so.0")" ] ||
		fail "$prog loads libdaxpool from '${lib:-nowhere}', not from $libdir"
done

# 3. An application built with pkg-config alone.
flags=$(PKG_CONFIG_PATH=$(dirname "$pc") pkg-config --cflags --libs daxpool)
# shellcheck disable=SC2086
cc -Wall -Wextra -Werror $san "$here/app.c" $flags -o "$tmp/app" || fail "app.c does not build with: $flags"

# 4. The installed daemon serves the installed default config, moved into $tmp.
conf=$tmp/daxpool.json
sed -e "s|\"/run/daxpool/daxpoold.sock\"|\"$tmp/daxpoold.sock\"|" \
    -e "s|\"/var/lib/daxpool/|\"$tmp/|" "$prefix/etc/daxpool/daxpool.json" >"$conf"
grep -q "\"$tmp/daxpoold.sock\"" "$conf" && grep -q "\"path\": \"$tmp/" "$conf" ||
	fail "the installed default config is not the emulated file pool:"$'\n'"$(cat "$prefix/etc/daxpool/daxpool.json")"
env -u LD_LIBRARY_PATH "$prefix/sbin/daxpoold" --foreground --config "$conf" 2>"$tmp/daemon.log" &
daemon_pid=$!
for _ in $(seq 100); do
	env -u LD_LIBRARY_PATH "$prefix/sbin/daxpoolctl" --socket "$tmp/daxpoold.sock" status >/dev/null 2>&1 && break
	kill -0 "$daemon_pid" 2>/dev/null || { cat "$tmp/daemon.log"; fail "the installed daxpoold exited at start"; }
	sleep 0.1
done
env -u LD_LIBRARY_PATH "$prefix/sbin/daxpoolctl" --socket "$tmp/daxpoold.sock" status ||
	{ cat "$tmp/daemon.log"; fail "the installed daxpoolctl cannot talk to the installed daxpoold"; }
LD_LIBRARY_PATH=$libdir "$tmp/app" "$tmp/daxpoold.sock" || fail "the application failed against the installed daemon"
env -u LD_LIBRARY_PATH "$prefix/bin/daxpool-demo" --socket "$tmp/daxpoold.sock" --pings 100 >/dev/null ||
	fail "the installed daxpool-demo failed"
# daxpoolctl verify runs the installed daxpool-verify beside it (PREFIX/libexec/daxpool).
env -u LD_LIBRARY_PATH -u DAXPOOL_VERIFY "$prefix/sbin/daxpoolctl" verify --help | grep -q "^Usage: daxpool-verify" ||
	fail "the installed daxpoolctl verify does not run the installed daxpool-verify"
kill -TERM "$daemon_pid"
rc=0; wait "$daemon_pid" || rc=$?
daemon_pid=""
[ "$rc" -eq 0 ] || { cat "$tmp/daemon.log"; fail "the installed daxpoold exited with $rc on SIGTERM"; }

# 4b. Without a pool configured it starts, but says what to configure.
echo '{ "log_level": "info" }' >"$tmp/nopool.json"
env -u LD_LIBRARY_PATH "$prefix/sbin/daxpoold" --foreground --config "$tmp/nopool.json" --socket "$tmp/nopool.sock" 2>"$tmp/nopool.log" &
daemon_pid=$!
for _ in $(seq 100); do [ -S "$tmp/nopool.sock" ] && break; sleep 0.1; done
kill -TERM "$daemon_pid"; wait "$daemon_pid" || true
daemon_pid=""
grep -q "no pool configured.*$tmp/nopool.json has neither a \"backend\" nor a \"device\" section.*\"type\": \"emulated\"" "$tmp/nopool.log" ||
	fail "daxpoold without a pool did not say what to configure:"$'\n'"$(cat "$tmp/nopool.log")"

# 5. The installed units name the installed daemon and config, and systemd accepts them.
unit=$prefix/lib/systemd/system/daxpoold.service
grep -qx "ExecStart=$prefix/sbin/daxpoold --config $prefix/etc/daxpool/daxpool.json" "$unit" ||
	fail "installed unit: $(grep ExecStart= "$unit")"
if command -v systemd-analyze >/dev/null; then
	out=$(MANPATH=$prefix/share/man: SYSTEMD_LOG_LEVEL=notice systemd-analyze verify --man=yes \
		"$prefix/lib/systemd/system/daxpoold.socket" "$unit" 2>&1) || fail "systemd-analyze verify:"$'\n'"$out"
	if grep -E 'daxpoold\.(service|socket)|man' <<<"$out"; then fail "systemd-analyze verify reported the lines above"; fi
else
	echo "check-prefix: systemd-analyze not installed, units not verified"
fi
echo "check-prefix: installed under $prefix only; pkg-config app, installed daemon, CLI, demo and units OK"
