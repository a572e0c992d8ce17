#!/bin/bash
# Lab payload (payloads.list: verify): `daxpoolctl verify` on the lab's namespace — the kernel's
# side of what daxpool relies on (docs/VERIFICATION.md), on this kernel and this alignment.
#
#   verify.sh [DAXPOOLD DAXPOOLCTL]
#
# In the environment of a lab payload (DAXPOOL_LAB_DEVICE, _BUILD, _RESULTS, _MODROOT), and
# DAXPOOL_LAB_DAEMON_ARGS: more daxpoold options (e.g. --isolation auto). Set-up,
# all inside the throw-away guest:
#  - tracefs on /sys/kernel/tracing (kprobe/fprobe events)
#  - soft-RoCE: modules dummy, rdma_rxe, ib_uverbs (6.1: crc32 first — modules cannot autoload
#    from the private module root); dummy0 with a private address, up; `rdma link add rxe0 type
#    rxe netdev dummy0`. The guest has no network card (QEMU -nic none): nothing leaves it.
#  - a 64 MiB RAM disk (brd, /dev/ram0) for O_DIRECT: the guest's /tmp is tmpfs and its root 9p
#  - daxpoold --device DEV --format-if-empty on a private socket
# Then: daxpoolctl --socket S --json verify --scratch /dev/ram0 > result.json (its "ok" decides
# the payload: lab.sh fails the run on {"ok": false}); verify.txt is the same report as a table.
# Exit status: daxpoolctl verify's (0 only if no check failed), 2 if the set-up failed.
set -uo pipefail

DEV=${DAXPOOL_LAB_DEVICE:?no DAXPOOL_LAB_DEVICE}
BUILD=${DAXPOOL_LAB_BUILD:?no DAXPOOL_LAB_BUILD}
OUT=${DAXPOOL_LAB_RESULTS:-$PWD}
MODROOT=${DAXPOOL_LAB_MODROOT:-}
DAXPOOLD=${1:-$BUILD/daemon/daxpoold}
CTL=${2:-$BUILD/cli/daxpoolctl}
RUNDIR=/run/daxpool-lab-verify.$$
SOCK=$RUNDIR/s.sock
START_TIMEOUT_S=${DAXPOOL_LAB_DAEMON_START_TIMEOUT:-60}
daemon_pid=""

say() { printf 'verify: %s\n' "$*"; }
setup_failed() {
	say "SET-UP FAILED: $*"
	printf '{"ok": false, "error": "set-up: %s"}\n' "${*//\"/\'}" >"$OUT/result.json"
	exit 2
}
cleanup() {
	if [ -n "$daemon_pid" ]; then
		kill -TERM "$daemon_pid" 2>/dev/null
		wait "$daemon_pid" 2>/dev/null
	fi
	rm -rf "$RUNDIR"
}
trap cleanup EXIT
modload() {
	if [ -n "$MODROOT" ]; then
		modprobe -C /dev/null -d "$MODROOT" -a "$@"
	else
		modprobe -a "$@"
	fi
}

for p in "$DAXPOOLD" "$CTL"; do
	[ -x "$p" ] || setup_failed "$p is not built"
done
mkdir -p "$RUNDIR" || setup_failed "mkdir $RUNDIR"
cd "$OUT" || exit 2

# tracefs: the probes. Without it verify reports the probe checks as not run — and the lab
# must not accept that, so it is a set-up failure here.
if [ ! -e /sys/kernel/tracing/README ]; then
	mount -t tracefs nodev /sys/kernel/tracing || setup_failed "cannot mount tracefs"
fi

# Soft-RoCE (once per guest: the payload runs on every namespace of the VM).
if ! rdma link show 2>/dev/null | grep -q '^link rxe0/'; then
	# crc32 for rdma_rxe's ICRC: built in on the new kernel, modules on 6.1.
	modload crc32_generic >/dev/null 2>&1
	modload crc32_pclmul >/dev/null 2>&1
	modload dummy rdma_rxe ib_uverbs || setup_failed "modprobe dummy rdma_rxe ib_uverbs failed"
	ip link show dummy0 >/dev/null 2>&1 || ip link add dummy0 type dummy || setup_failed "ip link add dummy0"
	ip addr add 10.254.77.1/24 dev dummy0 2>/dev/null
	ip link set dummy0 up || setup_failed "ip link set dummy0 up"
	rdma link add rxe0 type rxe netdev dummy0 || setup_failed "rdma link add rxe0 type rxe netdev dummy0"
fi
say "RDMA: $(rdma link show 2>&1 | grep '^link rxe0/')"

# A RAM disk for O_DIRECT (block devices always take it).
if [ ! -b /dev/ram0 ]; then
	if [ -n "$MODROOT" ]; then
		modprobe -C /dev/null -d "$MODROOT" brd rd_nr=1 rd_size=65536
	else
		modprobe brd rd_nr=1 rd_size=65536
	fi || setup_failed "modprobe brd failed"
	for _ in $(seq 50); do [ -b /dev/ram0 ] && break; sleep 0.1; done
	[ -b /dev/ram0 ] || setup_failed "no /dev/ram0 after modprobe brd"
fi

# A fresh pool: the namespace of the previous alignment sat at the same place of the region, and
# its pool (formatted for that alignment) would make daxpoold refuse the device.
"$CTL" format --force "$DEV" >"$OUT/format.log" 2>&1 || setup_failed "daxpoolctl format --force $DEV: $(tail -n 2 "$OUT/format.log")"

t0=${EPOCHREALTIME/./}
# shellcheck disable=SC2086 # options, split on purpose
"$DAXPOOLD" --foreground --device "$DEV" --socket "$SOCK" --format-if-empty ${DAXPOOL_LAB_DAEMON_ARGS:-} >"$OUT/daemon.log" 2>&1 &
daemon_pid=$!
for _ in $(seq $((START_TIMEOUT_S * 10))); do
	kill -0 "$daemon_pid" 2>/dev/null || { daemon_pid=""; setup_failed "daxpoold exited: $(tail -n 3 "$OUT/daemon.log")"; }
	"$CTL" --socket "$SOCK" status >/dev/null 2>&1 && break
	sleep 0.1
done
"$CTL" --socket "$SOCK" status >/dev/null 2>&1 || setup_failed "daxpoold did not answer within ${START_TIMEOUT_S}s"
t1=${EPOCHREALTIME/./}
say "daxpoold serves $DEV (${DAXPOOL_LAB_ALIGN:-?}) after $(((t1 - t0) / 1000)) ms"

"$CTL" --socket "$SOCK" --json verify --scratch /dev/ram0 >"$OUT/result.json" 2>"$OUT/verify.err"
rc=$?
t2=${EPOCHREALTIME/./}
say "daxpoolctl verify: exit $rc after $(((t2 - t1) / 1000)) ms"
cat "$OUT/verify.err"
# The same report as a table, for people reading the results directory.
if command -v jq >/dev/null; then
	jq -r '.checks[] | [.scenario, .check, .status, (.observed | tostring), (.expected | tostring), (.note // .reason // "")] | @tsv' \
		"$OUT/result.json" | tee "$OUT/verify.txt" | grep -E $'\t(failed|not-run)\t' || true
	jq -r '"\(.summary.passed) passed, \(.summary.failed) failed, \(.summary.not_run) not run; generation \(.generation) on \(.kernel)"' \
		"$OUT/result.json"
fi
# In the lab the probes must work: a report whose probe checks were all "not run" proves nothing.
if command -v jq >/dev/null && [ -s "$OUT/result.json" ] &&
	[ "$(jq '.tracing.refcount_probe and .tracing.insert_probes' "$OUT/result.json")" != true ]; then
	say "FAIL: the probes did not work here: $(jq -c '.tracing' "$OUT/result.json")"
	rc=1
fi
[ -s "$OUT/result.json" ] || printf '{"ok": false, "error": "daxpoolctl verify printed nothing (exit %d)"}\n' "$rc" >"$OUT/result.json"
exit "$rc"
