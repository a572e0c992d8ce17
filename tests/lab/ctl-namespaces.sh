#!/bin/bash
# Lab run (regions, no namespace: lab.sh run --align none): daxpoolctl's namespace commands on
# real NVDIMM regions, through libndctl/libdaxctl.
#
#   lab.sh run --kernel new --align none -- tests/lab/ctl-namespaces.sh [DAXPOOLCTL [DAXPOOLD]]
#   (defaults: $DAXPOOL_LAB_BUILD/cli/daxpoolctl, $DAXPOOL_LAB_BUILD/daemon/daxpoold)
#
# Checks: regions --json; create 4K/2M/1G devdax namespaces (each alignment the region offers);
# devices --json lists them; refusals: size not a multiple of the alignment (exit 2), region too
# small, unknown region, unsupported alignment, destroy of a device daxpoold holds (even with
# --force), destroy of a device holding a pool without --force; format/fsck on a device;
# destroy. result.json: {ok, checks: {NAME: "ok"|"failed: ..."}}. Exit status 0 when all passed.
set -uo pipefail
BUILD=${DAXPOOL_LAB_BUILD:-$(cd "$(dirname "$0")/../.." && pwd)/build}
CTL=${1:-$BUILD/cli/daxpoolctl}
DAXPOOLD=${2:-$BUILD/daemon/daxpoold}
OUT=${DAXPOOL_LAB_RESULTS:-$PWD}
WORK=$(mktemp -d /tmp/ctl-ns-XXXXXX)
[ -x "$CTL" ] || { echo "ctl-namespaces: $CTL is not built" >&2; exit 2; }
command -v jq >/dev/null || { echo "ctl-namespaces: needs jq" >&2; exit 77; }

failed=0
checks="{}"
say() { printf 'ctl-namespaces: %s\n' "$*" >&2; }
record() { # record NAME ok|"failed: why"
	checks=$(jq -c --arg k "$1" --arg v "$2" '. + {($k): $v}' <<<"$checks")
	if [ "$2" = ok ]; then say "ok: $1"; else say "FAILED: $1: $2"; failed=$((failed + 1)); fi
}
# expect NAME STATUS PATTERN -- CMD...: CMD exits STATUS and its stderr+stdout matches PATTERN
expect() {
	local name=$1 want=$2 pat=$3 out rc
	shift 4
	out=$("$@" 2>&1)
	rc=$?
	if [ "$rc" != "$want" ]; then
		record "$name" "failed: exit $rc, wanted $want: $out"
	elif [ -n "$pat" ] && ! grep -qE -- "$pat" <<<"$out"; then
		record "$name" "failed: output lacks /$pat/: $out"
	else
		record "$name" ok
	fi
}

regions=$("$CTL" --json regions) || { record regions "failed: exit $?"; }
echo "$regions" >"$OUT/regions.json"
region=$(jq -r '[.[] | select(.enabled and .labels and (.dax_aligns | length) > 0)][0].name // empty' <<<"$regions")
if [ -z "$region" ]; then
	record regions "failed: no enabled, label-backed region with device-dax support: $regions"
	jq -n --argjson c "$checks" '{ok: false, checks: $c}' >"$OUT/result.json"
	exit 1
fi
record regions ok
aligns=$(jq -r --arg r "$region" '.[] | select(.name == $r) | .dax_aligns[]' <<<"$regions")
say "using $region, device-dax alignments: $(echo $aligns)"

expect create-misaligned 2 'not a multiple of the --align 2M' -- "$CTL" create --region "$region" --size 3M --align 2M
expect create-too-big 1 'too small' -- "$CTL" create --region "$region" --size 64T --align 2M
expect create-no-region 1 'no persistent-memory region' -- "$CTL" create --region region99 --size 1G --align 2M
expect create-bad-align 2 'not an alignment' -- "$CTL" create --region "$region" --size 1G --align 64K
if ! grep -qx 1G <<<"$aligns"; then
	expect create-1G-unsupported 1 'does not support a 1G alignment' -- "$CTL" create --region "$region" --size 1G --align 1G
fi

expect create-no-room 1 'leaves no room' -- "$CTL" create --region "$region" --size 2M --align 2M

# Largest alignment first: the kernel places each namespace after the previous one, and
# device-dax needs its start aligned. 1G needs 2G (the info block takes one alignment unit).
declare -A dev
for a in 1G 2M 4K; do
	grep -qx "$a" <<<"$aligns" || { say "$region offers no $a alignment: skipped"; continue; }
	size=256M
	[ "$a" = 1G ] && size=2G
	out=$("$CTL" --json create --region "$region" --size "$size" --align "$a" 2>&1)
	rc=$?
	name=$(jq -r '.name // empty' <<<"$out" 2>/dev/null)
	if [ "$rc" = 0 ] && [ -n "$name" ] && [ -c "/dev/$name" ] &&
		[ "$(jq -r .align <<<"$out")" = "$a" ] && [ "$(jq -r .mode <<<"$out")" = devdax ]; then
		dev[$a]=/dev/$name
		record "create-$a" ok
	else
		record "create-$a" "failed: exit $rc: $out"
	fi
done

if grep -qx 1G <<<"$aligns" && [ -n "${dev[2M]:-}${dev[4K]:-}" ]; then
	expect create-unaligned-start 1 'not 1G-aligned|too small' -- "$CTL" create --region "$region" --size 2G --align 1G
fi

devices=$("$CTL" --json devices)
echo "$devices" >"$OUT/devices.json"
for a in "${!dev[@]}"; do
	n=${dev[$a]#/dev/}
	if jq -e --arg n "$n" --arg a "$a" '.[] | select(.name == $n and .align == $a and .daxpool_pool == false)' <<<"$devices" >/dev/null; then
		record "devices-$a" ok
	else
		record "devices-$a" "failed: $n ($a) not listed as an empty devdax device: $devices"
	fi
done
"$CTL" devices >&2

# A device daxpoold serves: destroy refuses even with --force; format, fsck --repair and a
# second daemon refuse too, naming the daemon; fsck only reads, and says the pool is in use.
victim=${dev[2M]:-${dev[4K]:-${dev[1G]:-}}}
if [ -n "$victim" ] && [ -x "$DAXPOOLD" ]; then
	"$DAXPOOLD" --foreground --device "$victim" --socket "$WORK/s.sock" --format-if-empty >"$OUT/daxpoold.log" 2>&1 &
	dpid=$!
	for _ in $(seq 1 600); do
		"$CTL" --socket "$WORK/s.sock" status >/dev/null 2>&1 && break
		kill -0 "$dpid" 2>/dev/null || break
		sleep 0.1
	done
	expect alloc-on-device 0 '' -- "$CTL" --socket "$WORK/s.sock" alloc lab-slice --size 4M --align 2M
	expect destroy-in-use 1 'in use by pid' -- "$CTL" destroy --force "$victim"
	expect format-in-use 1 'in use by pid' -- "$CTL" format --force "$victim"
	expect fsck-repair-in-use 1 'in use by pid' -- "$CTL" fsck --repair "$victim"
	expect fsck-in-use 0 "in use by pid $dpid" -- "$CTL" fsck "$victim"
	expect second-daemon 1 "in use by pid $dpid \\(daxpoold\\)" -- \
		"$DAXPOOLD" --foreground --device "$victim" --socket "$WORK/s2.sock" --format-if-empty
	kill -TERM "$dpid"
	wait "$dpid"
	expect fsck-device 0 'clean' -- "$CTL" fsck "$victim"
	expect format-existing 1 'already holds a daxpool pool' -- "$CTL" format "$victim"
	expect destroy-pool 1 'holds a daxpool pool' -- "$CTL" destroy "$victim"
	expect destroy-pool-force 0 'destroyed' -- "$CTL" destroy --force "$victim"
	for a in "${!dev[@]}"; do [ "${dev[$a]}" = "$victim" ] && unset "dev[$a]"; done
fi

for a in "${!dev[@]}"; do
	expect "destroy-$a" 0 'destroyed' -- "$CTL" destroy "${dev[$a]}"
done
expect destroy-gone 1 'no such device-dax device' -- "$CTL" destroy /dev/dax99.0
after=$("$CTL" --json devices)
if [ "$(jq length <<<"$after")" = 0 ]; then record devices-after-destroy ok
else record devices-after-destroy "failed: devices left: $after"; fi

rm -rf "$WORK"
jq -n --argjson c "$checks" --argjson f "$failed" '{ok: ($f == 0), failed: $f, checks: $c}' >"$OUT/result.json"
say "$failed check(s) failed"
[ "$failed" = 0 ]
