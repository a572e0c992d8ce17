#!/bin/bash
# Lab run (regions, no namespace: lab.sh run --align none): daxpoold provisions its own device-dax
# namespace from the config's device section, on real NVDIMM regions.
#
#   lab.sh run --kernel new --align none -- tests/lab/provision.sh [DAXPOOLD DAXPOOLCTL SLICE-CHECK]
#   (defaults: $DAXPOOL_LAB_BUILD/daemon/daxpoold, .../cli/daxpoolctl, .../tests/lab/lab-slice-check)
#
# Steps (each a check in result.json):
#  1. fresh region: daxpoold with device.provision creates the namespace, formats the pool and
#     serves; a named slice gets a seeded pattern (lab-slice-check write)
#  2. restart with the same config: nothing changes (devices and regions identical)
#  3. conflicting configs are refused with exit 3 and a message naming the key, and change
#     nothing: another alignment, too small, region full, a UUID that is nowhere; the right
#     UUID alone finds the pool; the slice's pattern is intact afterwards
#  4. privileges: as an unprivileged user provisioning fails (EACCES) and creates nothing; with
#     CAP_DAC_OVERRIDE alone it works, and the serving daemon holds no capability
#  5. system-ram: the device is reconfigured to system-ram (daxctl, kmem); daxpoold refuses it
#     without device.allow_reconfigure_system_ram, and with it switches it back to devdax
#     ("not run" with the reason when the guest cannot online the memory)
# result.json: {ok, failed, checks: {NAME: "ok"|"failed: ..."|"not run: ..."}, measured: {...}}.
set -uo pipefail
BUILD=${DAXPOOL_LAB_BUILD:-$(cd "$(dirname "$0")/../.." && pwd)/build}
DAXPOOLD=${1:-$BUILD/daemon/daxpoold}
CTL=${2:-$BUILD/cli/daxpoolctl}
CHECK=${3:-$BUILD/tests/lab/lab-slice-check}
OUT=${DAXPOOL_LAB_RESULTS:-$PWD}
WORK=$(mktemp -d /tmp/provision-XXXXXX)
chmod 0755 "$WORK"
SOCK=$WORK/s.sock
for p in "$DAXPOOLD" "$CTL" "$CHECK"; do
	[ -x "$p" ] || { echo "provision: $p is not built" >&2; exit 2; }
done
command -v jq >/dev/null || { echo "provision: needs jq (scripts/install-deps.sh lab)" >&2; exit 2; }

failed=0
checks="{}"
measured="{}"
say() { printf 'provision: %s\n' "$*" >&2; }
record() { # record NAME ok|"failed: why"|"not run: why"
	checks=$(jq -c --arg k "$1" --arg v "$2" '. + {($k): $v}' <<<"$checks")
	case "$2" in
	ok) say "ok: $1" ;;
	"not run"*) say "NOT RUN: $1: ${2#not run: }" ;;
	*) say "FAILED: $1: $2"; failed=$((failed + 1)) ;;
	esac
}
measure() { measured=$(jq -c --arg k "$1" --argjson v "$2" '. + {($k): $v}' <<<"$measured"); }
us() { printf '%s' "${EPOCHREALTIME/./}"; }
ms_since() { printf '%d' $(( ($(us) - $1) / 1000 )); }

# The machine's namespace state: what must not change when daxpoold refuses or finds.
snapshot() {
	jq -c '[.[] | {name, namespace, size, align, mode}] | sort_by(.name)' <<<"$("$CTL" --json devices)"
	jq -c '[.[] | {name, available, namespaces}]' <<<"$("$CTL" --json regions)"
}

# config FILE DEVICE-JSON: a config with our socket and runtime dir
config() {
	printf '{ "socket": "%s", "runtime_dir": "%s", "log_level": "info", "device": %s }\n' \
		"$SOCK" "$WORK" "$2" >"$1"
	chmod 0644 "$1"
}

daemon_pid=""
# start NAME CONFIG [PREFIX...]: daxpoold in the background; 0 when it serves, else its exit status
start() {
	local name=$1 cfg=$2 i
	shift 2
	"$@" "$DAXPOOLD" --foreground --config "$cfg" >"$OUT/$name.log" 2>&1 &
	daemon_pid=$!
	for i in $(seq 1 1200); do
		"$CTL" --socket "$SOCK" status >/dev/null 2>&1 && return 0
		if ! kill -0 "$daemon_pid" 2>/dev/null; then
			wait "$daemon_pid"
			local rc=$?
			daemon_pid=""
			return $rc
		fi
		sleep 0.1
	done
	say "$name: daxpoold not ready after 120 s"
	return 124
}
stop() {
	[ -n "$daemon_pid" ] || return 0
	kill -TERM "$daemon_pid"
	wait "$daemon_pid"
	local rc=$?
	daemon_pid=""
	return $rc
}
trap 'stop; rm -rf "$WORK"' EXIT

# refused NAME CONFIG PATTERN: exit 3, the log matches PATTERN, nothing changed
refused() {
	local name=$1 cfg=$2 pat=$3 before after rc
	before=$(snapshot)
	timeout 120 "$DAXPOOLD" --foreground --config "$cfg" >"$OUT/$name.log" 2>&1
	rc=$?
	after=$(snapshot)
	if [ "$rc" != 3 ]; then
		record "$name" "failed: exit $rc, wanted 3: $(tail -3 "$OUT/$name.log")"
	elif ! grep -qE -- "$pat" "$OUT/$name.log"; then
		record "$name" "failed: the log lacks /$pat/: $(cat "$OUT/$name.log")"
	elif [ "$before" != "$after" ]; then
		record "$name" "failed: the machine changed: before $before after $after"
	else
		record "$name" ok
	fi
}

regions=$("$CTL" --json regions)
echo "$regions" >"$OUT/regions.json"
region=$(jq -r '[.[] | select(.enabled and .labels and (.dax_aligns | length) > 0)][0].name // empty' <<<"$regions")
if [ -z "$region" ] || [ "$(jq length <<<"$("$CTL" --json devices)")" != 0 ]; then
	record fresh-region "failed: wanted a label-backed region with device-dax and no devices: $regions"
	jq -n --argjson c "$checks" '{ok: false, checks: $c}' >"$OUT/result.json"
	exit 1
fi
record fresh-region ok
NAME=daxpool-lab
GOOD='{ "provision": { "region": "any", "name": "'$NAME'", "size": "1G", "align": "2M" } }'
config "$WORK/good.json" "$GOOD"

# ---- 1. provision --------------------------------------------------------------------------
t0=$(us)
if start provision "$WORK/good.json"; then
	measure provision_start_ms "$(ms_since "$t0")"
	dev=$(jq -r '.[0].name // empty' <<<"$("$CTL" --json devices)")
	ns=$(ndctl list -N -r "$region" 2>/dev/null | jq -c '[if type == "array" then .[] else . end | select(.name == "'$NAME'")]')
	# ndctl reports the usable size; the namespace's own (raw) size is in sysfs.
	nsize=$(cat "/sys/bus/nd/devices/$(jq -r '.[0].dev // "none"' <<<"$ns")/size" 2>/dev/null || echo 0)
	dsize=$(jq -r '.[0].size // 0' <<<"$("$CTL" --json devices)")
	measure namespace_bytes "$nsize"
	measure device_bytes "$dsize"
	measure reserved_bytes "$((nsize - dsize))"
	if [ -z "$dev" ] || [ "$(jq length <<<"$ns")" != 1 ] || [ "$dsize" -lt $((1 << 30)) ]; then
		record provision "failed: device '$dev', namespaces named $NAME: $ns, device size $dsize"
	elif ! grep -q "created $dev" "$OUT/provision.log" || ! grep -q "reserved for the device-dax info block" "$OUT/provision.log"; then
		record provision "failed: the log does not report the creation and the reservation: $(cat "$OUT/provision.log")"
	else
		record provision ok
	fi
	if "$CHECK" --socket "$SOCK" --json "$OUT/write.json" --mib 16 --seed 4242 write keep >"$OUT/write.out" 2>&1; then
		record slice-write ok
	else
		record slice-write "failed: $(cat "$OUT/write.out")"
	fi
	uuid=$(jq -r '.pool_uuid // empty' "$OUT/write.json" 2>/dev/null)
	stop || record provision-stop "failed: exit $?"
else
	record provision "failed: exit $?: $(cat "$OUT/provision.log")"
	uuid=""
fi
say "devices after provisioning:"
"$CTL" devices >&2

# ---- 2. restart: no change -----------------------------------------------------------------
before=$(snapshot)
t0=$(us)
if start restart "$WORK/good.json"; then
	measure restart_start_ms "$(ms_since "$t0")"
	stop
	after=$(snapshot)
	if [ "$before" != "$after" ]; then
		record restart-no-change "failed: before $before after $after"
	elif grep -q "creating\|created" "$OUT/restart.log"; then
		record restart-no-change "failed: the log reports a creation: $(cat "$OUT/restart.log")"
	elif ! grep -q "namespace \"$NAME\" found" "$OUT/restart.log"; then
		record restart-no-change "failed: the log does not report the namespace found: $(cat "$OUT/restart.log")"
	else
		record restart-no-change ok
	fi
else
	record restart-no-change "failed: exit $?: $(cat "$OUT/restart.log")"
fi

# ---- 3. conflicts --------------------------------------------------------------------------
config "$WORK/align.json" '{ "provision": { "name": "'$NAME'", "size": "1G", "align": "1G" } }'
refused conflict-alignment "$WORK/align.json" 'has a 2M alignment, but device.provision.align is 1G'
# What systemd would show: the refusal as STATUS= on the notify socket (systemctl status).
python3 - "$WORK/notify.sock" "$OUT/notify.txt" <<'PY' &
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(sys.argv[1])
s.settimeout(120)
with open(sys.argv[2], "w") as f:
    while True:
        try:
            d = s.recv(65536).decode()
        except socket.timeout:
            break
        f.write(d + "\n")
        f.flush()
        if "STATUS=Refused" in d:
            break
PY
listener=$!
for _ in $(seq 1 300); do [ -S "$WORK/notify.sock" ] && break; sleep 0.1; done
NOTIFY_SOCKET=$WORK/notify.sock timeout 120 "$DAXPOOLD" --foreground --config "$WORK/align.json" >"$OUT/notify.log" 2>&1
rc=$?
wait "$listener"
if [ "$rc" = 3 ] && grep -q "^STATUS=Refused.*device.provision.align" "$OUT/notify.txt"; then
	record conflict-sd-notify-status ok
else
	record conflict-sd-notify-status "failed: exit $rc, notify socket got: $(cat "$OUT/notify.txt" 2>/dev/null)"
fi
config "$WORK/small.json" '{ "provision": { "name": "'$NAME'", "size": "4G", "align": "2M" } }'
refused conflict-too-small "$WORK/small.json" 'device.provision.size asks 4G'
config "$WORK/full.json" '{ "provision": { "name": "second", "size": "64G", "align": "2M" } }'
refused conflict-region-full "$WORK/full.json" 'no region can hold namespace "second".*full'
config "$WORK/region.json" '{ "provision": { "region": "region7", "name": "second", "size": "1G", "align": "2M" } }'
refused conflict-no-region "$WORK/region.json" 'device.provision.region "region7": no such'
config "$WORK/nouuid.json" '{ "uuid": "00000000-0000-4000-8000-000000000001" }'
refused conflict-uuid-nowhere "$WORK/nouuid.json" 'device.uuid.*is on none'
config "$WORK/nouuid-prov.json" '{ "uuid": "00000000-0000-4000-8000-000000000001", "provision": { "name": "second", "size": "1G", "align": "2M" } }'
refused conflict-uuid-no-create "$WORK/nouuid-prov.json" 'remove device.uuid to provision'
if [ -n "$uuid" ]; then
	config "$WORK/uuid.json" '{ "uuid": "'"$uuid"'" }'
	if start by-uuid "$WORK/uuid.json" && grep -q "pool $uuid found on" "$OUT/by-uuid.log"; then
		record find-by-uuid ok
	else
		record find-by-uuid "failed: $(cat "$OUT/by-uuid.log")"
	fi
	stop
fi
# Nothing lost: the slice's pattern, after all of the above.
if start verify "$WORK/good.json" &&
	"$CHECK" --socket "$SOCK" --json "$OUT/verify.json" --mib 16 --seed 4242 verify keep >"$OUT/verify.out" 2>&1; then
	record slice-survives ok
else
	record slice-survives "failed: $(cat "$OUT/verify.log" "$OUT/verify.out" 2>/dev/null)"
fi
stop

# ---- 4. privileges -------------------------------------------------------------------------
# nobody, without capabilities: sysfs attributes are root's, so creating fails and nothing exists
PRIV='{ "provision": { "name": "caps", "size": "256M", "align": "2M" } }'
config "$WORK/caps.json" "$PRIV"
chmod 0777 "$WORK"
AS_NOBODY=(setpriv --reuid=65534 --regid=65534 --clear-groups --inh-caps=-all)
before=$(snapshot)
timeout 120 "${AS_NOBODY[@]}" "$DAXPOOLD" --foreground --config "$WORK/caps.json" >"$OUT/caps-none.log" 2>&1
rc=$?
after=$(snapshot)
if [ "$rc" = 1 ] && grep -q "Permission denied\|EACCES\|not permitted" "$OUT/caps-none.log" && [ "$before" = "$after" ]; then
	record unprivileged-refused ok
else
	record unprivileged-refused "failed: exit $rc (wanted 1), changed: $([ "$before" = "$after" ] && echo no || echo yes): $(cat "$OUT/caps-none.log")"
fi
# nobody with CAP_DAC_OVERRIDE only. No udev in the guest: a helper gives new dax nodes to the
# daemon's user alone (0600), as 60-daxpool.rules gives them to user daxpool; daxpoold refuses
# a device other users could open.
( for _ in $(seq 1 600); do chown 65534:65534 /dev/dax* 2>/dev/null; chmod 0600 /dev/dax* 2>/dev/null; sleep 0.1; done ) &
chmoder=$!
if start caps-dac "$WORK/caps.json" "${AS_NOBODY[@]/--inh-caps=-all/--inh-caps=+dac_override}" --ambient-caps=+dac_override; then
	caps=$(grep -E '^Cap(Eff|Prm|Inh|Amb)' "/proc/$daemon_pid/status" | tr '\n' ' ')
	measure serving_caps "$(jq -n --arg c "$caps" '$c')"
	if grep -q "created dax" "$OUT/caps-dac.log" && ! grep -qE 'Cap(Eff|Prm|Amb):[[:space:]]*0*[1-9a-f]' <<<"$caps"; then
		record cap-dac-override-suffices ok
	else
		record cap-dac-override-suffices "failed: capabilities while serving: $caps; $(cat "$OUT/caps-dac.log")"
	fi
	stop
else
	record cap-dac-override-suffices "failed: exit $?: $(cat "$OUT/caps-dac.log")"
fi
kill "$chmoder" 2>/dev/null
wait "$chmoder" 2>/dev/null
capdev=$("$CTL" --json devices | jq -r '.[] | select(.size < 1073741824) | .name' | head -1)
[ -n "$capdev" ] && "$CTL" destroy --force "/dev/$capdev" >/dev/null 2>&1

# ---- 5. system-ram -------------------------------------------------------------------------
dev=$("$CTL" --json devices | jq -r '.[0].name // empty')
ram_reason=""
if [ -z "$dev" ]; then
	ram_reason="no device left from step 1"
elif ! modprobe -C /dev/null -d "${DAXPOOL_LAB_MODROOT:-/}" kmem >"$OUT/kmem.out" 2>&1; then
	ram_reason="modprobe kmem failed: $(cat "$OUT/kmem.out")"
elif ! auto=$(cat /sys/devices/system/memory/auto_online_blocks 2>&1); then
	ram_reason="no memory hotplug in this kernel: $auto"
# daxctl refuses when the kernel would online the blocks itself: let daxctl online them movable.
elif ! { echo offline >/sys/devices/system/memory/auto_online_blocks &&
	daxctl reconfigure-device --mode=system-ram "$dev" >"$OUT/to-ram.out" 2>&1; } ||
	[ "$(daxctl list -d "$dev" | jq -r '.[0].mode')" != system-ram ]; then
	ram_reason="daxctl reconfigure-device --mode=system-ram $dev failed: $(tail -5 "$OUT/to-ram.out")"
fi
[ -n "${auto:-}" ] && echo "$auto" >/sys/devices/system/memory/auto_online_blocks 2>/dev/null
if [ -n "$ram_reason" ]; then
	record system-ram-refused "not run: $ram_reason"
	record system-ram-reconfigured "not run: $ram_reason"
else
	measure system_ram_device "$(daxctl list -d "$dev" | jq -c '.[0]')"
	refused system-ram-refused "$WORK/good.json" "$dev .*system-ram mode.*device.allow_reconfigure_system_ram"
	config "$WORK/ram.json" '{ "provision": { "name": "'$NAME'", "size": "1G", "align": "2M" }, "allow_reconfigure_system_ram": true }'
	t0=$(us)
	if start ram "$WORK/ram.json"; then
		measure reconfigure_start_ms "$(ms_since "$t0")"
		mode=$(daxctl list -d "$dev" | jq -r '.[0].mode')
		if [ "$mode" = devdax ] && grep -q "$dev is now in devdax mode" "$OUT/ram.log"; then
			record system-ram-reconfigured ok
		else
			record system-ram-reconfigured "failed: mode $mode: $(cat "$OUT/ram.log")"
		fi
		stop
	else
		record system-ram-reconfigured "failed: exit $?: $(cat "$OUT/ram.log")"
	fi
fi

echo "$measured" >"$OUT/measured.json"
jq -n --argjson c "$checks" --argjson f "$failed" --argjson m "$measured" \
	'{ok: ($f == 0), failed: $f, checks: $c, measured: $m}' >"$OUT/result.json"
say "measured: $measured"
say "$failed check(s) failed"
[ "$failed" = 0 ]
