#!/bin/bash
# Kernel hazard 1 (docs/VERIFICATION.md "Kernel hazards"): a device-dax device is disabled and
# destroyed while a long-term pin (io_uring registration, else RDMA MR) holds its pages; the later
# unpin (and I/O through the pin) touches memory the kernel no longer considers the device's.
# Run in a throw-away lab guest — it is expected to oops:
#
#   lab.sh run --kernel K --align 2M -- BUILD/tests/lab/hazard-teardown.sh namespace
#   lab.sh run --kernel K --align none --memory 6G --append "memmap=2G%4G+0xefffffff" \
#       -- BUILD/tests/lab/hazard-teardown.sh subdevice
#
# namespace: the lab's NVDIMM namespace ($DAXPOOL_LAB_DEVICE), torn down with `daxctl
# disable-device` and `ndctl disable-namespace` + `destroy-namespace`. subdevice: a 64 MiB
# sub-device carved on the soft-reserved dynamic region, torn down with `daxctl disable-device` +
# `destroy-device`, and the same range carved again while still pinned. Every step prints its
# exit status and time; the pinning process is lab-pin-hold. A step still running after 20 s
# (HAZARD_BLOCK_S) is reported as blocked — the kernel waiting for the pin, as 5.10's does — the
# pin is then released and the time the step takes to return is the RESULT. Exit 0 when the
# sequence ran to the end (the verdict is the kernel's: the lab run fails on the oops it logs).
#
# Outside the lab, as root on a machine (or VM) you can afford to crash, with ndctl, daxctl and
# iproute2's rdma installed and lab-pin-hold built (`cmake --build BUILD --target lab-pin-hold`;
# tests/lab/pin-hold.c needs liburing, and libibverbs with the rdma_rxe module for the RDMA pin
# that kernels whose io_uring refuses device-dax, 5.10 and 6.1, need):
#
#   DAXPOOL_LAB_DEVICE=/dev/dax0.0 BUILD/tests/lab/hazard-teardown.sh namespace
#       # a devdax namespace (2M alignment in the lab); the copy in the build tree finds
#       # lab-pin-hold beside it, elsewhere set LAB_PIN_HOLD=PATH
#   BUILD/tests/lab/hazard-teardown.sh subdevice
#       # a kernel booted with memmap=2G%4G+0xefffffff (or any soft-reserved range: an hmem
#       # dax region whose device dax*.0 may be emptied)
#
# Modules come from the running kernel's own tree (plain modprobe) unless DAXPOOL_LAB_MODROOT
# names another. The namespace kind destroys the namespace it is given: its data is gone.
#
# The daxpool side of the same sequence: `daxpoolctl verify`'s teardown checks (destroy refused
# while a slice is pinned; a freed extent with a declared pin is never handed out again).
set -uo pipefail
KIND=${1:?usage: hazard-teardown.sh namespace|subdevice [io_uring|rdma|auto]}
MODE=${2:-auto}
MODROOT=${DAXPOOL_LAB_MODROOT:-}
if [ -n "${LAB_PIN_HOLD:-}" ]; then HOLD=$LAB_PIN_HOLD
elif [ -n "${DAXPOOL_LAB_BUILD:-}" ]; then HOLD=$DAXPOOL_LAB_BUILD/tests/lab/lab-pin-hold
else HOLD=$(dirname "$0")/lab-pin-hold; fi
LEN=$((4 << 20))
t0=${EPOCHREALTIME/./}
say() { printf 'hazard[%6d ms]: %s\n' $(((${EPOCHREALTIME/./} - t0) / 1000)) "$*"; }
modload() { if [ -n "$MODROOT" ]; then modprobe -C /dev/null -d "$MODROOT" -a "$@"; else modprobe -a "$@"; fi; }
# A teardown step the kernel may block while the pin exists (5.10 waits for the pin's reference
# on the device's pages): after BLOCK_S seconds it is left running and reported as blocked.
BLOCK_S=${HAZARD_BLOCK_S:-20}
stuck_pid="" stuck_desc="" stuck_start=""
step() { # DESCRIPTION CMD...: runs, prints exit status and milliseconds; 124 if it is still blocked
	local d=$1 s e rc out=/run/hazard-step.$$ pid
	shift
	s=${EPOCHREALTIME/./}
	"$@" >"$out" 2>&1 &
	pid=$!
	# By the clock, not by counting sleeps: under TCG every external sleep costs far more.
	while kill -0 "$pid" 2>/dev/null && [ $(((${EPOCHREALTIME/./} - s) / 1000000)) -lt "$BLOCK_S" ]; do
		sleep 0.1
	done
	if kill -0 "$pid" 2>/dev/null; then
		say "$d: still running after $(((${EPOCHREALTIME/./} - s) / 1000)) ms — blocked while the pin exists"
		stuck_pid=$pid stuck_desc=$d stuck_start=$s
		return 124
	fi
	wait "$pid"
	rc=$?
	e=${EPOCHREALTIME/./}
	say "$d: exit $rc in $(((e - s) / 1000)) ms$([ -s "$out" ] && printf ' — %s' "$(tr '\n' ' ' <"$out" | cut -c1-200)")"
	return $rc
}
[ -x "$HOLD" ] || { say "no $HOLD (cmake --build BUILD --target lab-pin-hold; LAB_PIN_HOLD=PATH)"; exit 2; }
say "kernel $(uname -r), $KIND, pin $MODE"

# RDMA for the kernels whose io_uring refuses device-dax (soft-RoCE on a dummy netdev, as
# tests/lab/verify.sh does; nothing leaves the guest).
modload crc32_generic >/dev/null 2>&1
modload crc32_pclmul >/dev/null 2>&1
if modload dummy rdma_rxe ib_uverbs 2>/dev/null; then
	ip link add dummy0 type dummy 2>/dev/null
	ip addr add 10.254.77.1/24 dev dummy0 2>/dev/null
	ip link set dummy0 up
	rdma link add rxe0 type rxe netdev dummy0 2>/dev/null
fi

case "$KIND" in
namespace)
	DEV=${DAXPOOL_LAB_DEVICE:?DAXPOOL_LAB_DEVICE=/dev/daxX.Y of a devdax namespace (lab: --align 2M)}
	name=${DEV#/dev/}
	ns=$(ndctl list -N 2>/dev/null | sed -n 's/.*"dev":"\(namespace[0-9.]*\)".*/\1/p' | head -n1)
	;;
subdevice)
	modload device_dax dax_hmem || { say "modprobe device_dax dax_hmem failed"; exit 2; }
	seed=""
	for d in /sys/bus/dax/devices/dax*.0; do
		[ -e "$d" ] && seed=${d##*/} && break
	done
	[ -n "$seed" ] || { say "no dynamic dax region (boot with --append memmap=2G%4G+0xefffffff)"; exit 2; }
	region=$(readlink -f "/sys/bus/dax/devices/$seed/../dax_region" 2>/dev/null)
	rid=${seed#dax}
	rid=${rid%.0}
	say "region $rid ($region): seed $seed, size $(cat "/sys/bus/dax/devices/$seed/size")"
	# Empty the seed (it spans the region; device 0 of a region cannot be deleted, only shrunk).
	daxctl disable-device "$seed" >/dev/null 2>&1
	daxctl destroy-device "$seed" >/dev/null 2>&1
	out=$(daxctl create-device -r "$rid" -s 64M -a 2M 2>&1)
	name=$(sed -n 's/.*"chardev":"\(dax[0-9.]*\)".*/\1/p' <<<"$out" | head -n1)
	[ -n "$name" ] || { say "daxctl create-device failed: $out"; exit 2; }
	DEV=/dev/$name
	for _ in $(seq 50); do [ -c "$DEV" ] && break; sleep 0.1; done
	say "carved $name: $(cat "/sys/bus/dax/devices/$name/mapping0/start" 2>/dev/null)-$(cat "/sys/bus/dax/devices/$name/mapping0/end" 2>/dev/null)"
	;;
*)
	say "unknown kind $KIND"
	exit 2
	;;
esac

# The pinning process, its stdin a fifo: one line tells it to read through the pin and unpin.
fifo=/run/hazard-pin.$$
mkfifo "$fifo"
"$HOLD" "$DEV" "$LEN" "$MODE" <"$fifo" >/run/hazard-pin.out 2>&1 &
hold=$!
exec 7>"$fifo"
for _ in $(seq 300); do
	grep -q '^pinned\|^error' /run/hazard-pin.out 2>/dev/null && break
	sleep 0.1
done
say "lab-pin-hold: $(tr '\n' ' ' </run/hazard-pin.out)"
grep -q '^pinned' /run/hazard-pin.out || { say "no pin: nothing to reproduce"; exit 2; }

case "$KIND" in
namespace)
	step "daxctl disable-device $name (pinned)" daxctl disable-device "$name" &&
		[ -n "$ns" ] && step "ndctl disable-namespace $ns (pinned)" ndctl disable-namespace "$ns" &&
		step "ndctl destroy-namespace -f $ns (pinned)" ndctl destroy-namespace -f "$ns"
	;;
subdevice)
	if step "daxctl disable-device $name (pinned)" daxctl disable-device "$name" &&
		step "daxctl destroy-device $name (pinned)" daxctl destroy-device "$name"; then
		out=$(daxctl create-device -r "$rid" -s 64M -a 2M 2>&1)
		again=$(sed -n 's/.*"chardev":"\(dax[0-9.]*\)".*/\1/p' <<<"$out" | head -n1)
		say "carved again while pinned: ${again:-failed: $out} $(cat "/sys/bus/dax/devices/$again/mapping0/start" 2>/dev/null)"
	fi
	;;
esac
say "telling lab-pin-hold to read through the pin and unpin"
echo go >&7
exec 7>&-
for _ in $(seq 100); do
	kill -0 "$hold" 2>/dev/null || break
	sleep 0.1
done
wait "$hold" 2>/dev/null
say "lab-pin-hold exited $? ($(tr '\n' ' ' </run/hazard-pin.out))"
if [ -n "$stuck_pid" ]; then
	u=${EPOCHREALTIME/./}
	while kill -0 "$stuck_pid" 2>/dev/null && [ $(((${EPOCHREALTIME/./} - u) / 1000000)) -lt 60 ]; do
		sleep 0.1
	done
	if kill -0 "$stuck_pid" 2>/dev/null; then
		say "RESULT: $stuck_desc blocked while pinned and still blocked 60 s after the unpin"
	else
		wait "$stuck_pid"
		say "RESULT: $stuck_desc blocked while pinned; returned $? after the unpin, $(((${EPOCHREALTIME/./} - stuck_start) / 1000)) ms after it began: the kernel waits for the pin"
	fi
else
	say "RESULT: no teardown step blocked while pinned (each one's exit status above)"
fi
sleep 2
say "kernel log since the pin:"
dmesg | grep -E 'BUG|Oops|RIP|Call Trace|^\[[ 0-9.]+\]  [a-z_]' | head -n 40
exit 0
