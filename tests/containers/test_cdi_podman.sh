#!/usr/bin/env bash
# A real consumer of `daxpoolctl cdi`: podman (Debian 12's 4.3 reads CDI specs) runs a container
# with --device KIND=NAME, and the process inside — slice-io, through libdaxpool, knowing only
# what the device injected ($DAXPOOL_SOCKET and the socket, $DAXPOOL_SLICE) — opens the slice,
# prints what the host wrote into it and writes an answer the host then reads. The "daxpool:any"
# device gives the socket without a slice; a container without a device has no socket.
#
# The image is made here from host files (slice-io and the shared objects it loads, at their
# own paths) and `podman import`ed: no registry is needed. The spec goes to /var/run/cdi under
# a kind of its own (daxpool.io/testPID), so it never meets an installed daxpool spec.
#
# Exits 77 (skipped), saying why, without root or podman, or when podman cannot start a
# container on this machine (the runtimes are tried in turn: podman's default, then runc).
# Runtime choice and limits: $DAXPOOL_PODMAN_RUNTIME, docs/CONTAINERS.md.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=lib.sh
. "$here/lib.sh"

[ "$(id -u)" -eq 0 ] || { echo "skipped: podman with CDI specs in /var/run/cdi needs root"; exit 77; }
command -v podman >/dev/null || { echo "skipped: podman is not installed (scripts/install-deps.sh containers)"; exit 77; }

dir=$(mktemp -d /tmp/daxpool-podman-XXXXXX)
kind=daxpool.io/test$$
image=localhost/daxpool-cdi-test:$$
spec=/var/run/cdi/daxpool-test-$$.json
cleanup() {
	podman rmi -f "$image" >/dev/null 2>&1 || true
	rm -f "$spec"
	daemon_stop "$dir" || true
	rm -rf "$dir"
}
trap cleanup EXIT
fail() { echo "FAIL: $*"; exit 1; }

# The root file system: slice-io and every object the dynamic loader maps for it.
root=$dir/root
mkdir -p "$root"/{proc,sys,dev,tmp,run/daxpool,etc}
copy() { mkdir -p "$root$(dirname "$1")"; cp -L "$1" "$root$1"; }
copy "$SLICE_IO"
while read -r lib; do copy "$lib"; done < <(ldd "$SLICE_IO" | grep -o '/[^ ]*' | sort -u)
echo "root:x:0:0:root:/:/nonexistent" >"$root/etc/passwd"
tar -C "$root" -cf "$dir/root.tar" .
podman import -q "$dir/root.tar" "$image" >/dev/null || fail "podman import"

# Debian's podman asks for RLIMIT_NOFILE 1048576 and RLIMIT_NPROC 32768 by default, which a
# process without CAP_SYS_RESOURCE cannot grant itself: ask for what this process has.
limits=(--ulimit "nofile=1024:1024" --ulimit "nproc=4096:4096")
run() { podman "${runtime[@]}" run --rm --network none "${limits[@]}" "$@"; }

# A runtime that can start a container here: podman's default (crun), else runc. crun refuses
# cgroup v1 hierarchies with controllers also enabled in the v2 one ("hybrid mode").
runtimes=()
if [ -n "${DAXPOOL_PODMAN_RUNTIME:-}" ]; then runtimes=("$DAXPOOL_PODMAN_RUNTIME"); else runtimes=(default runc); fi
why=""
runtime=()
for rt in "${runtimes[@]}"; do
	if [ "$rt" = default ]; then runtime=(); else
		command -v "$rt" >/dev/null || { why+="$rt: not installed; "; continue; }
		runtime=(--runtime "$rt")
	fi
	if out=$(run "$image" "$SLICE_IO" 2>&1); [ $? -eq 2 ]; then break; fi
	why+="${rt}: $(echo "$out" | tail -1); "
	runtime=(none)
done
if [ "${runtime[*]:-}" = none ]; then
	echo "skipped: podman cannot start a container on this machine: ${why% }"
	exit 77
fi
echo "podman runtime: ${runtime[*]:-default}"

daemon_start "$dir"
ctl() { "$DAXPOOLCTL" -s "$dir/daxpoold.sock" "$@"; }
token="written by the host at $(date +%s.%N)"
ctl alloc ctr-data --size 64K --align 4K >/dev/null
DAXPOOL_SOCKET=$dir/daxpoold.sock "$SLICE_IO" write ctr-data "$token"
mkdir -p /var/run/cdi
ctl cdi --kind "$kind" --output "$spec" >/dev/null
"$PYTHON" "$CDI_CHECK" "$spec" --devices 'daxpool:any,ctr-data' --host-socket "$dir/daxpoold.sock"

# The named slice's device: the container reads the host's text, answers in the slice.
out=$(run --device "$kind=ctr-data" "$image" "$SLICE_IO" read 2>&1) || fail "container read: $out"
echo "container: $out"
[ "$out" = "slice ctr-data: $token" ] || fail "container saw \"$out\""
reply=$(DAXPOOL_SOCKET=$dir/daxpoold.sock "$SLICE_IO" reply ctr-data)
[ "$reply" = "container read: $token" ] || fail "host read back \"$reply\""
echo "host read back: $reply"

# The socket-only device: the daemon answers, no slice is named.
out=$(run --device "$kind=daxpool:any" "$image" "$SLICE_IO" ping 2>&1) || fail "container ping: $out"
echo "container (daxpool:any): $out"
[[ "$out" == "daemon "*" slice (none)" ]] || fail "ping said \"$out\""

# No device, no socket: what the container reached came through the device.
if out=$(run "$image" "$SLICE_IO" ping 2>&1); then fail "a container without the device reached the daemon: $out"; fi
echo "container without a device: $out"

# The daemon saw every container's process close its slice: nothing is left held.
[ "$(ctl --json stats | "$PYTHON" -c 'import json,sys; print(json.load(sys.stdin)["leases_waiting"])')" = 0 ] ||
	fail "leases still waiting after the containers exited"
daemon_stop "$dir" || fail "daemon stop"
echo "test_cdi_podman: ok"
