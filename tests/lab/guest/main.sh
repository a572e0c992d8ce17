#!/bin/bash
# Runs inside the lab guest as PID 1 (after switch_root into the host's root, read-only over 9p).
# /run/daxpool-lab is the run directory of the host (writable 9p share): job.env says what to do,
# results/ receives everything, status gets the exit code. The guest always powers off at the end.
set -uo pipefail
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
export HOME=/tmp LANG=C.UTF-8
LAB=/run/daxpool-lab
RES=$LAB/results
mkdir -p "$RES"
exec 2>&1
# devtmpfs has no /dev/fd, /dev/pts, /dev/shm.
ln -sfn /proc/self/fd /dev/fd
ln -sfn /proc/self/fd/0 /dev/stdin
ln -sfn /proc/self/fd/1 /dev/stdout
ln -sfn /proc/self/fd/2 /dev/stderr
mkdir -p /dev/pts /dev/shm
mount -t devpts -o gid=5,mode=620,ptmxmode=666 devpts /dev/pts
mount -t tmpfs -o mode=1777 tmpfs /dev/shm

say() { printf 'lab-guest: %s\n' "$*"; }
ms() { date +%s%3N; }
secs() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", (b - a) / 1000 }'; }
finish() {
	local rc=$1
	trap - EXIT
	dmesg >"$RES/dmesg.txt" 2>/dev/null
	printf '%s\n' "$rc" >"$LAB/status"
	sync
	say "done, exit status $rc; powering off"
	echo o >/proc/sysrq-trigger
	# The host root goes away with the power: wait with builtins only.
	while :; do :; done
}
abort() {
	say "FAILED: $*"
	jq -n --arg msg "$*" '{ok: false, error: $msg}' >"$RES/error.json" 2>/dev/null
	finish 1
}
trap 'abort "guest script exited unexpectedly"' EXIT

boot_s=$(cut -d' ' -f1 /proc/uptime)
# shellcheck source=/dev/null
. "$LAB/job.env" || abort "cannot read job.env"
say "kernel $(uname -r) up after ${boot_s}s; mode $LAB_MODE"
[ "$(uname -r)" = "$LAB_KVER" ] || abort "booted $(uname -r), expected $LAB_KVER"
for c in jq ndctl modprobe timeout; do
	command -v "$c" >/dev/null || abort "no $c in the host root (scripts/install-deps.sh lab)"
done

# The build tree, writable and at the same path as on the host (binaries' RPATHs keep working).
if [ -n "$LAB_BUILD" ]; then
	mount -t 9p -o trans=virtio,version=9p2000.L,msize=262144 labbuild "$LAB_BUILD" ||
		abort "cannot mount the build tree share on $LAB_BUILD"
fi

t0=$(ms)
modprobe -C /dev/null -d "$LAB_MODROOT" -a nfit nd_pmem dax_pmem device_dax ||
	abort "modprobe nfit nd_pmem dax_pmem device_dax failed"
[ -d /sys/bus/nd/devices/region0 ] || abort "no NVDIMM region0 after loading nfit"
# Labels persist in the image: start from clean labels and no namespaces.
ndctl disable-region all >/dev/null 2>&1
ndctl init-labels -f all >/dev/null 2>&1 || abort "ndctl init-labels failed"
ndctl enable-region all >/dev/null 2>&1 || abort "ndctl enable-region failed"
t1=$(ms)
say "nvdimm ready in $(secs "$t0" "$t1")s (modules + labels)"
jq -n --arg kernel "$(uname -r)" --arg gen "$LAB_GENERATION" --arg mode "$LAB_MODE" \
	--argjson boot "$boot_s" --argjson setup "$(secs "$t0" "$t1")" \
	'{kernel: $kernel, generation: $gen, mode: $mode, boot_s: $boot, setup_s: $setup}' \
	>"$RES/guest.json"

# Creates a device-dax namespace; sets DEV (/dev/daxX.Y) and NSJSON.
make_namespace() { # ALIGN SIZE
	local out a=$1 s=$2 c0 c1 name
	ndctl destroy-namespace -f all >/dev/null 2>&1
	c0=$(ms)
	out=$(ndctl create-namespace -f -m devdax -a "$a" -s "$s" -r region0 2>&1) || {
		say "ndctl create-namespace -m devdax -a $a -s $s failed: $out"
		return 1
	}
	c1=$(ms)
	name=$(jq -r '.daxregion.devices[0].chardev' <<<"$out") || return 1
	DEV=/dev/$name
	local i=0
	while [ ! -c "$DEV" ] && [ $i -lt 50 ]; do
		sleep 0.1
		i=$((i + 1))
	done
	[ -c "$DEV" ] || {
		say "no character device $DEV"
		return 1
	}
	local sysfs=/sys/bus/dax/devices/$name
	NSJSON=$(jq -n --arg align "$a" --arg req "$s" --arg dev "$DEV" \
		--arg ns "$(jq -r .dev <<<"$out")" \
		--argjson size "$(cat "$sysfs/size")" \
		--argjson devalign "$(cat "$sysfs/align" 2>/dev/null || echo null)" \
		--argjson create "$(secs "$c0" "$c1")" \
		'{align: $align, size_requested: $req, namespace: $ns, device: $dev, size: $size,
		  device_align: $devalign, create_s: $create}')
	say "namespace $a: $DEV, $(($(cat "$sysfs/size") >> 20)) MiB, created in $(secs "$c0" "$c1")s"
}

# The environment of payloads (and of the debug shell).
lab_env() { # DEVICE ALIGN RESULTS
	export DAXPOOL_LAB_DEVICE=$1 DAXPOOL_LAB_ALIGN=$2 DAXPOOL_LAB_RESULTS=$3
	export DAXPOOL_LAB_BUILD=$LAB_BUILD DAXPOOL_LAB_SOURCE=$LAB_SOURCE
	export DAXPOOL_LAB_KERNEL=$LAB_KVER DAXPOOL_LAB_GENERATION=$LAB_GENERATION
	export DAXPOOL_LAB_MODROOT=$LAB_MODROOT
}

# Runs one payload: NAME ALIGN CMD (a bash command line). Writes its entry to $3's results dir.
run_payload() { # NAME ALIGN COMMAND
	local name=$1 a=$2 cmd=$3 dir p0 p1 rc
	dir=$RES/$a/$name
	mkdir -p "$dir"
	say "payload $name on $DEV ($a): $cmd"
	p0=$(ms)
	(
		cd "$dir" || exit 1
		lab_env "$DEV" "$a" "$dir"
		timeout -k 10 "$LAB_PAYLOAD_TIMEOUT" bash -c "$cmd"
	) > >(tee "$dir/output.log") 2>&1
	rc=$?
	p1=$(ms)
	local result=null
	if [ -s "$dir/result.json" ]; then
		result=$(jq -c . "$dir/result.json" 2>/dev/null) || result='{"ok": false, "error": "result.json is not JSON"}'
	fi
	jq -n --arg name "$name" --arg cmd "$cmd" --argjson rc "$rc" \
		--argjson secs "$(secs "$p0" "$p1")" --argjson result "$result" \
		'{name: $name, command: $cmd, rc: $rc, seconds: $secs, result: $result,
		  ok: ($rc == 0 and (($result // {}) | .ok // true) == true)}' >"$dir/payload.json"
	say "payload $name ($a): exit $rc after $(secs "$p0" "$p1")s"
}

# Payload lines: "NAME COMMAND..." (the command is bash; '#' starts a comment line).
payloads=()
case "$LAB_MODE" in
test)
	while IFS= read -r line; do
		case "$line" in '' | '#'*) continue ;; esac
		payloads+=("$line")
	done <"$LAB/payloads.list"
	[ "${#payloads[@]}" -gt 0 ] || abort "no payloads in payloads.list"
	;;
run) payloads=("run $LAB_CMD") ;;
shell) ;;
esac

overall=0
: >"$RES/namespaces.jsonl"
for spec in "${LAB_NAMESPACES[@]}"; do
	a=${spec%%:*}
	s=${spec#*:}
	if ! make_namespace "$a" "$s"; then
		jq -nc --arg align "$a" --arg req "$s" \
			'{align: $align, size_requested: $req, ok: false, error: "namespace creation failed", payloads: []}' \
			>>"$RES/namespaces.jsonl"
		overall=1
		continue
	fi
	if [ "$LAB_MODE" = shell ]; then
		printf '%s\n' "$NSJSON" | jq -c '. + {ok: true, payloads: []}' >>"$RES/namespaces.jsonl"
		continue
	fi
	rm -f "$RES/$a"/*/payload.json
	for line in "${payloads[@]}"; do
		name=${line%%[[:space:]]*}
		cmd=${line#"$name"}
		run_payload "$name" "$a" "${cmd#"${cmd%%[![:space:]]*}"}"
	done
	jq -c --slurpfile p <(cat "$RES/$a"/*/payload.json) \
		'. + {payloads: $p, ok: ($p | all(.ok))}' <<<"$NSJSON" >>"$RES/namespaces.jsonl"
done

# run without a namespace (--align none): the command runs once, DAXPOOL_LAB_DEVICE empty.
if [ "${#LAB_NAMESPACES[@]}" -eq 0 ] && [ "$LAB_MODE" = run ]; then
	DEV=""
	run_payload run none "$LAB_CMD"
	jq -c --slurpfile p "$RES/none/run/payload.json" -n \
		'{align: "none", device: null, payloads: $p, ok: ($p | all(.ok))}' >>"$RES/namespaces.jsonl"
fi

jq -s --slurpfile g "$RES/guest.json" '$g[0] + {namespaces: ., ok: (. | all(.ok))}' \
	"$RES/namespaces.jsonl" >"$RES/summary.json" || abort "cannot write summary.json"
[ "$(jq .ok "$RES/summary.json")" = true ] || overall=1

if [ "$LAB_MODE" = shell ]; then
	if [ -n "${LAB_ROWS:-}" ]; then stty rows "$LAB_ROWS" cols "${LAB_COLS:-80}" </dev/ttyS0 2>/dev/null; fi
	export TERM=${LAB_TERM:-linux} PS1='lab-guest:\w# '
	a=none
	[ "${#LAB_NAMESPACES[@]}" -gt 0 ] && a=${LAB_NAMESPACES[-1]%%:*}
	lab_env "${DEV:-}" "$a" "$RES"
	say "shell on $(uname -r); DAXPOOL_LAB_DEVICE=${DEV:-none}; modprobe -C /dev/null -d \$DAXPOOL_LAB_MODROOT MOD for modules; exit (or Ctrl-D) powers off"
	cd "${LAB_BUILD:-/tmp}" 2>/dev/null || cd /tmp || true
	setsid -c bash --norc -i </dev/ttyS0 >/dev/ttyS0 2>&1
	overall=$?
fi
finish "$overall"
