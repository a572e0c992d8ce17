#!/usr/bin/env bash
# systemd-analyze verify is clean for the service and socket units as built. ExecStart is pointed
# at the build tree's daxpoold (verify checks that the binary exists and is executable).
set -euo pipefail
build=$1 daemon=$2
command -v systemd-analyze >/dev/null || { echo "SKIP: systemd-analyze not installed (package systemd)"; exit 77; }
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
sed "s|^ExecStart=[^ ]*|ExecStart=$daemon|" "$build/systemd/daxpoold.service" >"$dir/daxpoold.service"
cp "$(dirname "$0")/../../systemd/daxpoold.socket" "$dir/"
out=$(cd "$dir" && SYSTEMD_LOG_LEVEL=notice systemd-analyze verify --man=no "$dir/daxpoold.socket" "$dir/daxpoold.service" 2>&1) || {
	echo "systemd-analyze verify failed:"; echo "$out"; exit 1; }
# verify exits 0 on some warnings; any line naming our units is a finding.
if grep -E 'daxpoold\.(service|socket)' <<<"$out"; then
	echo "systemd-analyze verify reported the lines above"; exit 1
fi
# Isolation: clients reach the socket through its group; device-dax nodes are the daemon's
# user's alone. A socket group that could open the devices would hand every client the device.
src=$(dirname "$0")/../../systemd
sock_group=$(sed -n 's/^SocketGroup=//p' "$src/daxpoold.socket")
rule=$(grep -v '^#' "$src/60-daxpool.rules" | grep 'SUBSYSTEM=="dax"')
node_group=$(sed -n 's/.*GROUP="\([^"]*\)".*/\1/p' <<<"$rule")
node_mode=$(sed -n 's/.*MODE="\([0-7]*\)".*/\1/p' <<<"$rule")
[ -n "$sock_group" ] && [ "$sock_group" != "$node_group" ] || {
	echo "the socket's group ($sock_group) is the device nodes' group ($node_group)"; exit 1; }
[ "$node_mode" = 0600 ] || { echo "60-daxpool.rules gives dax nodes mode $node_mode, not 0600"; exit 1; }
grep -q "^g $sock_group " "$src/daxpool.sysusers" || { echo "daxpool.sysusers does not create $sock_group"; exit 1; }
# Hardening budget: exposure at most 2.0 of 10.
sec=$(cd "$dir" && systemd-analyze security --offline=true --no-pager --threshold=20 "$dir/daxpoold.service" 2>&1) || {
	echo "systemd-analyze security: exposure above 2.0:"; echo "$sec" | tail -3; exit 1; }
echo "systemd-analyze verify: daxpoold.service and daxpoold.socket clean; $(grep -o 'Overall exposure level.*' <<<"$sec")"
