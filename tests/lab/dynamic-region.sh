#!/bin/bash
# Lab payload: daxpoold on a dynamic dax region (soft-reserved memory), a sub-device per slice.
# Boot with soft-reserved memory (tests/lab/CMakeLists.txt, docs/LAB.md):
#   lab.sh run --kernel new --align none --memory 6G --append "memmap=2G%4G+0xefffffff" \
#     --build BUILD -- BUILD/tests/lab/dynamic-region.sh
#
# Steps (outputs in $DAXPOOL_LAB_RESULTS, summary in result.json):
#  1. device_dax + dax_hmem: the region; its whole-region device emptied (size 0); the pool
#     device carved at the region's start with exactly the pool metadata's size
#  2. daxpoold --isolation auto on it, started as the unit starts it: an unprivileged user (DUSER,
#     the stand-in for user daxpool) with CAP_DAC_OVERRIDE and CAP_CHOWN, which it drops; its
#     sub-device agent keeps exactly those two and carves; the pool device is DUSER's, 0600 (what
#     60-daxpool.rules does; no udev in the guest). Status says "slice"
#  3. slices at 4K (rounded to 2M), 2M, 1G beside them, 2M: each a sub-device at exactly
#     region start + pool offset with its alignment, zero when granted, filled with a pattern;
#     all patterns intact afterwards (a 1G device beside smaller ones corrupts nothing)
#  4. the fd mapped twice a slice's length: mapping works, touching past the end is SIGBUS
#  5. grant latency from a carved device (open+close) next to PING; then uid 65534 attacks
#     root's 1G slice through its own slice's fd (lab-dyn-check attack): every way refused
#  6. a holder keeps a freed slice: its sub-device stays while held, the pattern intact;
#     removed after the holder lets go (time measured); the same with a declared pin; a new
#     slice there is zero
#  7. restart: slices and their sub-devices kept, data intact
#  8. kill -9, then by hand: an orphan sub-device (carved, never recorded), a half-carved seed,
#     a live slice's sub-device removed; restart: the orphan removed, the seed emptied, the slice
#     given a new zeroed sub-device, the other data intact
#  9. everything freed: only the pool device is left in the region; daxpoolctl fsck of the pool
#     device finds it clean, format without --force refuses it
# 10. daxpoolctl verify (tests/lab/verify.sh) on the pool device: its slices are sub-devices
# 11. isolation "owner" on a 64 MiB device of the region: a freed 48 MiB slice is zeroed in place
#     and reads as zeroes when allocated again
set -uo pipefail

BUILD=${DAXPOOL_LAB_BUILD:?no DAXPOOL_LAB_BUILD}
OUT=${DAXPOOL_LAB_RESULTS:-$PWD}
MODROOT=${DAXPOOL_LAB_MODROOT:-}
DAXPOOLD=$BUILD/daemon/daxpoold
CTL=$BUILD/cli/daxpoolctl
CHECK=$BUILD/tests/lab/lab-dyn-check
for p in "$DAXPOOLD" "$CTL" "$CHECK"; do
	[ -x "$p" ] || { echo "dynamic-region: $p is not built" >&2; exit 2; }
done
RUNDIR=/run/daxpool-dyn.$$
DUSER=990 # the daemon's user (uid and gid), no name needed
SOCK=$RUNDIR/s.sock
mkdir -p "$RUNDIR" "$OUT"
errors=()
daemon_pid=""
steps="$OUT/steps.jsonl"
: >"$steps"

us() { printf '%s' "${EPOCHREALTIME/./}"; }
ms_since() { echo $((($(us) - $1) / 1000)); }
err() {
	echo "dynamic-region: FAILED: $*" >&2
	errors+=("$*")
}
note() { echo "dynamic-region: $*" >&2; }
# Runs lab-dyn-check; its JSON goes to steps.jsonl with a label; prints the JSON.
check() { # LABEL ARGS...
	local label=$1 out rc
	shift
	out=$("$CHECK" "$SOCK" "$@" 2>>"$OUT/check.err")
	rc=$?
	printf '%s\n' "${out:-{\}}" | jq -c --arg l "$label" --argjson rc "$rc" '. + {label: $l, rc: $rc}' >>"$steps"
	printf '%s\n' "$out"
	[ "$rc" = 0 ] || err "$label: lab-dyn-check $* exited $rc: $out"
	return "$rc"
}
sysattr() { cat "/sys/bus/dax/devices/$1/$2" 2>/dev/null; }
hex() { printf '%d' "$1"; }

start_daemon() { # LOGNAME EXTRA...
	local log=$OUT/$1 i
	shift
	rm -f "$SOCK"
	# As daxpoold.service runs it (User=, AmbientCapabilities=); the node as the udev rule has it.
	chown "$DUSER:$DUSER" "/dev/$POOLDEV" "$RUNDIR"
	chmod 0600 "/dev/$POOLDEV"
	setpriv --reuid="$DUSER" --regid="$DUSER" --clear-groups --inh-caps=-all,+dac_override,+chown \
		--ambient-caps=+dac_override,+chown \
		"$DAXPOOLD" --foreground --device "/dev/$POOLDEV" --socket "$SOCK" "$@" >"$log" 2>&1 &
	daemon_pid=$!
	for ((i = 0; i < 600; i++)); do
		[ -S "$SOCK" ] && "$CTL" --socket "$SOCK" status >/dev/null 2>&1 && return 0
		kill -0 "$daemon_pid" 2>/dev/null || break
		sleep 0.1
	done
	err "daxpoold did not start ($log): $(tail -n 3 "$log" | tr '\n' ' ')"
	return 1
}
stop_daemon() {
	[ -n "$daemon_pid" ] || return 0
	kill -TERM "$daemon_pid" 2>/dev/null
	wait "$daemon_pid"
	local rc=$?
	daemon_pid=""
	[ "$rc" = 0 ] || err "daxpoold exited $rc on SIGTERM"
}
finish() {
	[ -n "$daemon_pid" ] && kill -KILL "$daemon_pid" 2>/dev/null
	local ok=true
	[ "${#errors[@]}" = 0 ] || ok=false
	jq -n --argjson ok "$ok" --arg kernel "$(uname -r)" --arg region "${REGION:-}" \
		--arg pooldev "${POOLDEV:-}" --argjson meta "${META:-0}" \
		--slurpfile steps "$steps" --argjson timings "$(timings_json)" \
		--args '{ok: $ok, kernel: $kernel, region: $region, pool_device: $pooldev,
			pool_device_size: $meta, timings: $timings, steps: $steps,
			errors: $ARGS.positional}' "${errors[@]}" >"$OUT/result.json"
	cat "$OUT/result.json"
	[ "$ok" = true ]
	exit $?
}
declare -A T=()
timings_json() {
	local k out="{"
	for k in "${!T[@]}"; do out+="\"$k\": ${T[$k]},"; done
	printf '%s}' "${out%,}"
}
trap finish EXIT

# ---- 1. the region -------------------------------------------------------------------------
if [ -n "$MODROOT" ]; then
	modprobe -C /dev/null -d "$MODROOT" -a device_dax dax_hmem || { err "modprobe device_dax dax_hmem"; exit 1; }
else
	modprobe -a device_dax dax_hmem || { err "modprobe device_dax dax_hmem"; exit 1; }
fi
for ((i = 0; i < 50; i++)); do
	SEED0=$(for d in /sys/bus/dax/devices/dax*.0; do [ -e "$d/../dax_region/create" ] && basename "$d"; done | head -n 1)
	[ -n "$SEED0" ] && break
	sleep 0.1
done
[ -n "$SEED0" ] || { err "no dynamic dax region (is memmap=2G%4G+0xefffffff on the command line?)"; exit 1; }
REGION=${SEED0#dax}
REGION=${REGION%.0}
RPATH=$(readlink -f "/sys/bus/dax/devices/$SEED0/..")
daxctl list -RDu >"$OUT/region-before.json" 2>&1
# kmem (newest kernels, if loaded) may have onlined it as RAM: take it back.
if [ -e "/sys/bus/dax/devices/$SEED0/driver" ] && [ "$(basename "$(readlink -f "/sys/bus/dax/devices/$SEED0/driver")")" = kmem ]; then
	daxctl reconfigure-device --mode=devdax -f "$SEED0" >>"$OUT/setup.log" 2>&1 || err "reconfigure $SEED0 to devdax"
fi
RSIZE=$(cat "$RPATH/dax_region/size")
RALIGN=$(cat "$RPATH/dax_region/align")
RSTART=$(hex "$(sysattr "$SEED0" resource)")
daxctl disable-device "$SEED0" >>"$OUT/setup.log" 2>&1
daxctl destroy-device "$SEED0" >>"$OUT/setup.log" 2>&1 # EBUSY (device 0 stays), but size 0
[ "$(sysattr "$SEED0" size)" = 0 ] || { err "$SEED0 not emptied"; exit 1; }
# The pool device: exactly the metadata of a pool over the whole region (lib/pool layout:
# 12 KiB + 320 bytes per record, a record per 64 KiB, rounded up to 2M).
cap=$((RSIZE / 65536))
[ "$cap" -ge 64 ] || cap=64
META=$(((12288 + cap * 320 + 2097151) / 2097152 * 2097152))
t0=$(us)
daxctl create-device -r "$REGION" -s "$META" -a "$RALIGN" >"$OUT/pooldev.json" 2>>"$OUT/setup.log" || { err "carving the pool device"; exit 1; }
T[pooldev_create_ms]=$(ms_since "$t0")
POOLDEV=$(jq -r '.[0].chardev' "$OUT/pooldev.json")
[ "$(hex "$(sysattr "$POOLDEV" mapping0/start)")" = "$RSTART" ] || err "$POOLDEV is not at the region's start"
note "region $REGION at $(printf '%#x' "$RSTART"), $RSIZE bytes, align $RALIGN; pool device $POOLDEV ($META bytes)"

# ---- 2. the daemon ---------------------------------------------------------------------------
start_daemon daemon-1.log --format-if-empty --isolation auto || exit 1
# The daemon kept no capability; its agent (its only child) exactly CAP_CHOWN|CAP_DAC_OVERRIDE.
capeff() { sed -n 's/^CapEff:[[:space:]]*//p' "/proc/$1/status"; }
agent_pid=$(pgrep -P "$daemon_pid" -x daxpoold-agent | head -n 1)
caps_daemon=$(capeff "$daemon_pid")
caps_agent=${agent_pid:+$(capeff "$agent_pid")}
jq -nc --arg d "$caps_daemon" --arg a "${caps_agent:-none}" --arg u "$(stat -c %u "/proc/$daemon_pid")" \
	'{label: "privileges", daemon_capeff: $d, agent_capeff: $a, daemon_uid: $u}' >>"$steps"
[ "$caps_daemon" = 0000000000000000 ] || err "daxpoold serves with capabilities $caps_daemon"
[ "$caps_agent" = 0000000000000003 ] || err "the sub-device agent has capabilities ${caps_agent:-none (no agent)}, not CAP_CHOWN|CAP_DAC_OVERRIDE"
"$CTL" --socket "$SOCK" --json status >"$OUT/status-1.json" 2>&1
iso=$(jq -r '.isolation // .pool.isolation // empty' "$OUT/status-1.json")
[ "$iso" = slice ] || err "isolation is '$iso', not slice (status-1.json)"

# ---- 3. slices at 4K, 2M, 1G ---------------------------------------------------------------
# A sub-device's physical placement and alignment, from sysfs, against the grant.
placed() { # LABEL JSON ALIGN
	local obj off start want
	obj=$(jq -r .object <<<"$2")
	off=$(jq -r .pool_offset <<<"$2")
	[ -e "/sys/bus/dax/devices/$obj" ] || { err "$1: no sub-device $obj"; return; }
	start=$(hex "$(sysattr "$obj" mapping0/start)")
	want=$((RSTART + off))
	[ "$start" = "$want" ] || err "$1: $obj starts at $start, not region start + pool offset $want"
	[ "$(sysattr "$obj" align)" = "$3" ] || err "$1: $obj align $(sysattr "$obj" align), not $3"
	[ $((start % $3)) = 0 ] || err "$1: $obj at $start is not $3-aligned"
	[ -e "/sys/bus/dax/devices/$obj/mapping1" ] && err "$1: $obj has more than one range"
}
G=$((1 << 30))
M2=$((2 << 20))
j=$(check alloc-4k alloc s4k 4096 4096 11) && placed s4k "$j" "$M2"
[ "$(jq -r .length <<<"$j")" = "$M2" ] || err "a 4K slice in a 2M region is $(jq -r .length <<<"$j") bytes, not 2M"
T[alloc_2m_ms]=$(jq .alloc_ms <<<"$j")
j=$(check alloc-6m alloc s6m $((6 << 20)) "$M2" 22) && placed s6m "$j" "$M2"
T[alloc_6m_ms]=$(jq .alloc_ms <<<"$j")
j=$(check latency-early latency s6m 100) && {
	T[early_grant_open_p50_us]=$(jq .open_p50_us <<<"$j")
	T[early_ping_p50_us]=$(jq .ping_p50_us <<<"$j")
}
# Another client PINGs while the 1 GiB sub-device is carved and zeroed (seconds under TCG): the
# carve runs off the daemon's loop, so the answers keep coming.
"$CHECK" "$SOCK" pings 4000 >"$OUT/pings.out" 2>>"$OUT/check.err" &
pinger=$!
sleep 0.5
j=$(check alloc-1g alloc s1g "$G" "$G" 33) && placed s1g "$j" "$G"
T[alloc_1g_ms]=$(jq .alloc_ms <<<"$j")
wait "$pinger" || err "the pinging client failed: $(cat "$OUT/pings.out")"
jq -c '. + {label: "pings-during-1g-alloc"}' "$OUT/pings.out" >>"$steps" 2>/dev/null
T[ping_max_during_1g_alloc_ms]=$(jq .ping_max_ms "$OUT/pings.out" 2>/dev/null || echo null)
if [ "$(jq '.ping_max_ms < 1000' "$OUT/pings.out" 2>/dev/null)" != true ]; then
	err "a PING waited $(jq .ping_max_ms "$OUT/pings.out" 2>/dev/null) ms while a 1G slice was carved (alloc took ${T[alloc_1g_ms]} ms)"
fi
T[fill_1g_ms]=$(jq .fill_ms <<<"$j")
j=$(check alloc-2m alloc s2m "$M2" "$M2" 44) && placed s2m "$j" "$M2"
daxctl list -DRu >"$OUT/region-slices.json" 2>&1
check verify-4k verify s4k 11 >/dev/null
check verify-6m verify s6m 22 >/dev/null
check verify-1g verify s1g 33 >/dev/null
check verify-2m verify s2m 44 >/dev/null

# ---- 4. past the end -------------------------------------------------------------------------
check sigbus-2m sigbus s2m >/dev/null
check sigbus-6m sigbus s6m >/dev/null

# ---- 5. grant latency ------------------------------------------------------------------------
j=$(check latency latency s2m 200) && {
	T[grant_open_p50_us]=$(jq .open_p50_us <<<"$j")
	T[grant_open_p90_us]=$(jq .open_p90_us <<<"$j")
	T[ping_p50_us]=$(jq .ping_p50_us <<<"$j")
}

# ---- 5b. an attacker with another uid -----------------------------------------------------------
# uid 65534 may use the socket; its own slice's fd must reach nothing of root's 1G slice.
chmod 0755 "$RUNDIR"
chmod 0666 "$SOCK"
victim_off=$(jq -r 'select(.label == "alloc-1g") | .pool_offset' "$steps")
victim_obj=$(jq -r 'select(.label == "alloc-1g") | .object' "$steps")
check attack attack s1g 65534 "$victim_off" "$POOLDEV" "$victim_obj" >/dev/null
# The same attacker in the devices' group (a packaging that put clients there): the nodes are
# the daemon's user's, 0600, so membership opens nothing.
check attack-in-device-group attack s1g 65534 "$victim_off" "$POOLDEV" "$victim_obj" "$DUSER" >/dev/null
check attack-after verify s1g 33 >/dev/null

# ---- 6. a holder keeps a freed slice ---------------------------------------------------------
obj6=$(jq -r 'select(.label == "alloc-6m") | .object' "$steps")
"$CHECK" "$SOCK" hold s6m 22 15 >"$OUT/hold.out" 2>>"$OUT/check.err" &
holder=$!
for ((i = 0; i < 300; i++)); do grep -q holding "$OUT/hold.out" && break; sleep 0.1; done
check free-held free s6m >/dev/null
for ((i = 0; i < 8; i++)); do
	sleep 1
	[ "$(sysattr "$obj6" size)" = $((6 << 20)) ] || { err "$obj6 changed while a holder maps it (size $(sysattr "$obj6" size))"; break; }
done
wait "$holder" || err "the holder saw its slice change: $(cat "$OUT/hold.out")"
tail -n 1 "$OUT/hold.out" | jq -c '. + {label: "hold"}' >>"$steps"
t0=$(us)
for ((i = 0; i < 600; i++)); do
	[ "$(sysattr "$obj6" size)" != $((6 << 20)) ] && break
	sleep 0.05
done
T[held_removed_after_release_ms]=$(ms_since "$t0")
[ "$(sysattr "$obj6" size)" != $((6 << 20)) ] || err "$obj6 still there 30 s after its holder let go"
# The same with a declared pin (as an RDMA registration or io_uring buffer would be): the kernel
# would let the device go while pinned; the daemon must not ask it to.
check alloc-pinned alloc spin "$M2" "$M2" 66 >/dev/null
objp=$(jq -r 'select(.label == "alloc-pinned") | .object' "$steps")
"$CHECK" "$SOCK" pin spin 10 >"$OUT/pin.out" 2>>"$OUT/check.err" &
pinner=$!
for ((i = 0; i < 300; i++)); do grep -q pinned "$OUT/pin.out" && break; sleep 0.1; done
check free-pinned free spin >/dev/null
for ((i = 0; i < 6; i++)); do
	sleep 1
	[ "$(sysattr "$objp" size)" = "$M2" ] || { err "$objp removed while pinned"; break; }
done
wait "$pinner" || err "the pinning client failed: $(cat "$OUT/pin.out")"
t0=$(us)
for ((i = 0; i < 1200; i++)); do [ "$(sysattr "$objp" size)" = "$M2" ] || break; sleep 0.05; done
T[pinned_removed_after_unpin_ms]=$(ms_since "$t0")
[ "$(sysattr "$objp" size)" != "$M2" ] || err "$objp still there 60 s after its pin and holder went"
j=$(check free-2m free s2m) && T[free_2m_ms]=$(jq .free_ms <<<"$j")
obj2=$(jq -r 'select(.label == "alloc-2m") | .object' "$steps")
t0=$(us)
for ((i = 0; i < 600; i++)); do [ "$(sysattr "$obj2" size)" = "$M2" ] || break; sleep 0.02; done
T[free_to_removed_2m_ms]=$(ms_since "$t0")
j=$(check alloc-again alloc s2m-again $((8 << 20)) "$M2" 55) # on freed memory: must be zero
check verify-again verify s2m-again 55 >/dev/null

# ---- 7. restart -------------------------------------------------------------------------------
stop_daemon
start_daemon daemon-2.log || exit 1
check restart-4k verify s4k 11 >/dev/null
check restart-1g verify s1g 33 >/dev/null
j=$(check latency-restart latency s4k 50)

# ---- 8. crash and reconciliation -------------------------------------------------------------
kill -KILL "$daemon_pid"
wait "$daemon_pid" 2>/dev/null
daemon_pid=""
new_seed() {
	local s
	s=$(cat "$RPATH/dax_region/seed")
	if [ -z "$s" ]; then
		echo 1 >"$RPATH/dax_region/create"
		s=$(cat "$RPATH/dax_region/seed")
	fi
	printf '%s' "$s"
}
# An orphan: carved and enabled at a free range of the data area (a carve whose record never
# made it), at pool offset 512M.
# Timed: a carve by hand (create, align, mapping, daxctl enable-device), for comparison with
# the daemon's ALLOC.
t0=$(us)
orphan=$(new_seed)
echo "$M2" >"/sys/bus/dax/devices/$orphan/align"
printf '%#x-%#x' $((RSTART + (512 << 20))) $((RSTART + (514 << 20) - 1)) >"/sys/bus/dax/devices/$orphan/mapping" ||
	err "carving the orphan by hand"
daxctl enable-device "$orphan" >>"$OUT/setup.log" 2>&1 || err "enabling the orphan"
T[carve_by_hand_ms]=$(ms_since "$t0")
# A half-carved seed: a range, never enabled (pool offset 600M).
half=$(new_seed)
echo "$M2" >"/sys/bus/dax/devices/$half/align"
printf '%#x-%#x' $((RSTART + (600 << 20))) $((RSTART + (602 << 20) - 1)) >"/sys/bus/dax/devices/$half/mapping" ||
	err "half-carving a seed by hand"
# A live slice without its sub-device (removed after the record).
obj4=$(jq -r 'select(.label == "alloc-4k") | .object' "$steps")
daxctl disable-device "$obj4" >>"$OUT/setup.log" 2>&1
echo 0 >"/sys/bus/dax/devices/$obj4/size"
echo "$obj4" >"$RPATH/dax_region/delete"
daxctl list -DRu >"$OUT/region-crashed.json" 2>&1
t0=$(us)
start_daemon daemon-3.log || exit 1
T[restart_reconcile_ms]=$(ms_since "$t0")
grep -q "1 orphans removed, 1 made anew" "$OUT/daemon-3.log" || err "reconciliation not as expected: $(grep -i reconcil "$OUT/daemon-3.log")"
[ "$(sysattr "$orphan" size)" = 0 ] || [ ! -e "/sys/bus/dax/devices/$orphan" ] || err "orphan $orphan still has $(sysattr "$orphan" size) bytes"
[ "$(sysattr "$half" size)" = 0 ] || [ ! -e "/sys/bus/dax/devices/$half" ] || err "half-carved $half still has $(sysattr "$half" size) bytes"
check reconciled-4k-zero zero s4k >/dev/null
check reconciled-1g verify s1g 33 >/dev/null
check reconciled-again verify s2m-again 55 >/dev/null

# ---- 9. everything freed ------------------------------------------------------------------------
for n in s4k s1g s2m-again; do check "free-$n" free "$n" >/dev/null; done
for ((i = 0; i < 600; i++)); do
	left=$(for d in /sys/bus/dax/devices/dax"$REGION".*; do
		n=$(basename "$d")
		[ "$n" != "$POOLDEV" ] && [ "$(cat "$d/size")" != 0 ] && echo "$n"
	done)
	[ -z "$left" ] && break
	sleep 0.1
done
[ -z "$left" ] || err "sub-devices left after every slice was freed: $left"
daxctl list -DRu >"$OUT/region-after.json" 2>&1
stop_daemon

# ---- 9b. offline pool commands on the region's pool device --------------------------------------
# libpmem2 knows only NVDIMM namespaces' devices; on this one the pool library maps it itself.
"$CTL" fsck "/dev/$POOLDEV" >"$OUT/fsck.out" 2>&1
rc=$?
[ "$rc" = 0 ] || err "daxpoolctl fsck /dev/$POOLDEV: exit $rc: $(tail -n 2 "$OUT/fsck.out")"
"$CTL" format "/dev/$POOLDEV" >"$OUT/format-refused.out" 2>&1
rc=$?
{ [ "$rc" = 1 ] && grep -q "already holds a daxpool pool" "$OUT/format-refused.out"; } ||
	err "daxpoolctl format without --force over the pool: exit $rc: $(tail -n 2 "$OUT/format-refused.out")"

# ---- 10. daxpoolctl verify on carved sub-devices ---------------------------------------------------
# The same payload as on static namespaces (verify.sh: fresh pool, daemon, every fault-path and
# pin scenario), here with each slice it is granted a sub-device of the region.
t0=$(us)
mkdir -p "$OUT/verify"
DAXPOOL_LAB_DEVICE=/dev/$POOLDEV DAXPOOL_LAB_RESULTS=$OUT/verify DAXPOOL_LAB_ALIGN=$RALIGN \
	DAXPOOL_LAB_DAEMON_ARGS="--isolation auto" \
	"$BUILD/tests/lab/verify.sh" "$DAXPOOLD" "$CTL" >"$OUT/verify.log" 2>&1 ||
	err "daxpoolctl verify on carved sub-devices: $(grep -E 'failed|not-run|SET-UP' "$OUT/verify.log" | head -n 8 | tr '\n' ';')"
T[verify_ms]=$(ms_since "$t0")

# ---- 11. "owner" isolation on a device of the region ---------------------------------------------
# The whole device is the pool and one uid's: freed extents are zeroed in place, through the
# daemon's own mapping (libpmem2 cannot map device-dax over RAM). A 48 MiB slice is written,
# freed, zeroed, and allocated again over the same memory: it must read as zeroes.
if daxctl create-device -r "$REGION" -s 64M -a 2M >"$OUT/ownerdev.json" 2>>"$OUT/setup.log"; then
	ownerdev=$(jq -r '.[0].chardev' "$OUT/ownerdev.json")
	region_pooldev=$POOLDEV
	POOLDEV=$ownerdev
	if start_daemon daemon-owner.log --format-if-empty --isolation owner; then
		check owner-alloc alloc o1 $((48 << 20)) $((2 << 20)) 91 >/dev/null
		check owner-free free o1 >/dev/null
		for ((i = 0; i < 300; i++)); do
			q=$("$CTL" --socket "$SOCK" --json stats 2>/dev/null | jq '.quarantined + .zeroing_pending_bytes')
			[ "$q" = 0 ] && break
			sleep 0.1
		done
		[ "$q" = 0 ] || err "owner: the freed slice was not zeroed (quarantined + pending: $q)"
		check owner-alloc-zeroed alloc o2 $((48 << 20)) $((2 << 20)) 92 >/dev/null
		check owner-free-2 free o2 >/dev/null
		kill -0 "$daemon_pid" 2>/dev/null || err "owner: daxpoold died ($(tail -n 3 "$OUT/daemon-owner.log" | tr '\n' ' '))"
		stop_daemon
	fi
	POOLDEV=$region_pooldev
	daxctl disable-device "$ownerdev" >>"$OUT/setup.log" 2>&1
	daxctl destroy-device "$ownerdev" >>"$OUT/setup.log" 2>&1 || err "destroying $ownerdev"
else
	err "carving a 64 MiB device for owner isolation"
fi
