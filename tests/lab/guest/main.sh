#!/bin/bash
# Runs inside the lab guest as PID 1 (after switch_root into the host's root, read-only over 9p).
# /run/daxpool-lab is the run directory of the host (writable 9p share): job.env says what to do,
# results/ receives everything, status gets the exit code. The guest always powers off at the end.
#
# Every program started here is loaded over 9p, which is slow under TCG: this script uses bash
# builtins where it can and writes its JSON with printf; lab.sh assembles and checks it on the host.
#
# results/guest.json               {kernel, generation, mode, boot_s, setup_s}
# results/ns-N.json                one per namespace: {index, align, size_requested, namespace,
#                                  device, size, device_align, destroy_s, create_s, ok, error}
# results/ALIGN/NAME/payload.json  one per payload run: {index, name, align, command, rc, seconds}
# results/ALIGN/NAME/              the payload's DAXPOOL_LAB_RESULTS (output.log, result.json, ...)
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

uptime_s() {
	local up _
	read -r up _ </proc/uptime
	printf '%s' "$up"
}
say() { printf 'lab-guest[%s]: %s\n' "$(uptime_s)" "$*"; }
us() { printf '%s' "${EPOCHREALTIME/./}"; }
secs() { # START_US END_US -> seconds with 3 decimals
	local d=$(($2 - $1))
	printf '%d.%03d' $((d / 1000000)) $((d % 1000000 / 1000))
}
json_str() {
	local s=$1
	s=${s//\\/\\\\}
	s=${s//\"/\\\"}
	s=${s//$'\n'/\\n}
	s=${s//$'\r'/\\r}
	s=${s//$'\t'/\\t}
	printf '"%s"' "$s"
}
readval() { # FILE -> first word, or "null"
	local v=null
	[ -r "$1" ] && read -r v <"$1"
	printf '%s' "${v:-null}"
}
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
	printf '{"ok": false, "error": %s}\n' "$(json_str "$*")" >"$RES/error.json"
	finish 1
}
trap 'abort "guest script exited unexpectedly"' EXIT

boot_s=$(uptime_s)
# shellcheck source=/dev/null
. "$LAB/job.env" || abort "cannot read job.env"
say "kernel $(uname -r) up after ${boot_s}s; mode $LAB_MODE"
[ "$(uname -r)" = "$LAB_KVER" ] || abort "booted $(uname -r), expected $LAB_KVER"
for c in ndctl modprobe timeout tee; do
	command -v "$c" >/dev/null || abort "no $c in the host root (scripts/install-deps.sh lab)"
done

# The build tree, writable and at the same path as on the host (binaries' RPATHs keep working).
if [ -n "$LAB_BUILD" ]; then
	# Under /tmp or /run (tmpfs in the guest) the mount point has to be made.
	[ -d "$LAB_BUILD" ] || mkdir -p "$LAB_BUILD" 2>/dev/null
	mount -t 9p -o trans=virtio,version=9p2000.L,msize=262144 labbuild "$LAB_BUILD" ||
		abort "cannot mount the build tree share on $LAB_BUILD"
fi

# The kernel's modules, at the same path as on the host (the cache may be hidden, e.g. in /tmp).
[ -d "$LAB_MODROOT" ] || mkdir -p "$LAB_MODROOT" 2>/dev/null
mount -t 9p -o trans=virtio,version=9p2000.L,msize=262144,ro,cache=loose labmods "$LAB_MODROOT" ||
	abort "cannot mount the module share on $LAB_MODROOT"

t0=$(us)
modprobe -C /dev/null -d "$LAB_MODROOT" -a nfit nd_pmem dax_pmem device_dax ||
	abort "modprobe nfit nd_pmem dax_pmem device_dax failed"
# The NVDIMM's region: region0, unless soft-reserved memory (--append memmap=...%...) took id 0
# for its dax region first (6.1 numbers memory regions of both kinds from one counter).
NDREGION=""
for r in /sys/bus/nd/devices/region*; do
	[ -d "$r" ] && NDREGION=${r##*/} && break
done
[ -n "$NDREGION" ] || abort "no NVDIMM region after loading nfit"
# Labels persist in the image: start from clean labels and no namespaces.
ndctl disable-region all >/dev/null 2>&1
ndctl init-labels -f all >/dev/null 2>&1 || abort "ndctl init-labels failed"
ndctl enable-region all >/dev/null 2>&1 || abort "ndctl enable-region failed"
t1=$(us)
say "nvdimm ready in $(secs "$t0" "$t1")s (modules + labels)"
printf '{"kernel": %s, "generation": %s, "mode": %s, "boot_s": %s, "setup_s": %s}\n' \
	"$(json_str "$(uname -r)")" "$(json_str "$LAB_GENERATION")" "$(json_str "$LAB_MODE")" \
	"$boot_s" "$(secs "$t0" "$t1")" >"$RES/guest.json"

# Creates a device-dax namespace and writes results/ns-INDEX.json; sets DEV (/dev/daxX.Y).
make_namespace() { # INDEX ALIGN SIZE
	local idx=$1 a=$2 s=$3 out d0 c0 c1 name="" ns="" i=0 err=""
	DEV=""
	d0=$(us)
	ndctl destroy-namespace -f all >/dev/null 2>&1
	c0=$(us)
	# daxpoolctl (libndctl/libdaxctl) creates the namespaces once it is built; plain ndctl serves
	# a lab run without a build tree (lab.sh shell).
	if [ -x "${LAB_BUILD:-/nonexistent}/cli/daxpoolctl" ]; then
		NS_TOOL=daxpoolctl
		if ! out=$("$LAB_BUILD/cli/daxpoolctl" --json create --region "$NDREGION" --size "$s" --align "$a" 2>&1); then
			err="daxpoolctl create --region $NDREGION --size $s --align $a failed: $out"
		fi
		[[ "$out" =~ \"name\":\ ?\"(dax[0-9]+\.[0-9]+)\" ]] && name=${BASH_REMATCH[1]}
		[[ "$out" =~ \"namespace\":\ ?\"(namespace[0-9]+\.[0-9]+)\" ]] && ns=${BASH_REMATCH[1]}
	else
		NS_TOOL=ndctl
		if ! out=$(ndctl create-namespace -f -m devdax -a "$a" -s "$s" -r "$NDREGION" 2>&1); then
			err="ndctl create-namespace -m devdax -a $a -s $s failed: $out"
		fi
		[[ "$out" =~ \"chardev\":\"(dax[0-9]+\.[0-9]+)\" ]] && name=${BASH_REMATCH[1]}
		[[ "$out" =~ \"dev\":\"(namespace[0-9]+\.[0-9]+)\" ]] && ns=${BASH_REMATCH[1]}
	fi
	if [ -z "$err" ]; then
		if [ -z "$name" ]; then
			err="no dax device in the output of $NS_TOOL create: $out"
		else
			DEV=/dev/$name
			while [ ! -c "$DEV" ] && [ $i -lt 100 ]; do
				sleep 0.1
				i=$((i + 1))
			done
			[ -c "$DEV" ] || err="no character device $DEV"
		fi
	fi
	c1=$(us)
	local sysfs=/sys/bus/dax/devices/$name size devalign
	size=$(readval "$sysfs/size")
	devalign=$(readval "$sysfs/align")
	if [ -n "$err" ]; then
		say "namespace $a: FAILED: $err"
		DEV=""
	else
		say "namespace $a: $DEV, $((size >> 20)) MiB, created by $NS_TOOL in $(secs "$c0" "$c1")s"
	fi
	local ok=true err_json=null
	if [ -n "$err" ]; then
		ok=false
		err_json=$(json_str "$err")
	fi
	printf '{"index": %d, "align": %s, "size_requested": %s, "namespace": %s, "device": %s, "size": %s, "device_align": %s, "destroy_s": %s, "create_s": %s, "ok": %s, "error": %s}\n' \
		"$idx" "$(json_str "$a")" "$(json_str "$s")" "$(json_str "$ns")" "$(json_str "$DEV")" \
		"$size" "$devalign" "$(secs "$d0" "$c0")" "$(secs "$c0" "$c1")" "$ok" "$err_json" \
		>"$RES/ns-$idx.json"
	[ -z "$err" ]
}

# The environment of payloads (and of the debug shell).
lab_env() { # DEVICE ALIGN RESULTS
	export DAXPOOL_LAB_DEVICE=$1 DAXPOOL_LAB_ALIGN=$2 DAXPOOL_LAB_RESULTS=$3
	export DAXPOOL_LAB_BUILD=$LAB_BUILD DAXPOOL_LAB_SOURCE=$LAB_SOURCE
	export DAXPOOL_LAB_KERNEL=$LAB_KVER DAXPOOL_LAB_GENERATION=$LAB_GENERATION
	export DAXPOOL_LAB_MODROOT=$LAB_MODROOT
}

# Runs one payload (a bash command line) with its own results directory.
run_payload() { # INDEX NAME ALIGN COMMAND
	local idx=$1 name=$2 a=$3 cmd=$4 dir p0 p1 rc
	dir=$RES/$a/$name
	rm -rf "$dir"
	mkdir -p "$dir"
	say "payload $name on ${DEV:-no device} ($a): $cmd"
	p0=$(us)
	(
		# run: the caller's working directory (visible read-only through the host root, or
		# writable inside the build tree); payloads of test: their results directory.
		if [ "$LAB_MODE" = run ] && cd "${LAB_CWD:-/nonexistent}" 2>/dev/null; then
			:
		else
			cd "$dir" || exit 1
		fi
		lab_env "$DEV" "$a" "$dir"
		timeout -k 10 "$LAB_PAYLOAD_TIMEOUT" bash -c "$cmd"
	) > >(tee "$dir/output.log") 2>&1
	rc=$?
	p1=$(us)
	printf '{"index": %d, "name": %s, "align": %s, "command": %s, "rc": %d, "seconds": %s}\n' \
		"$idx" "$(json_str "$name")" "$(json_str "$a")" "$(json_str "$cmd")" "$rc" \
		"$(secs "$p0" "$p1")" >"$dir/payload.json"
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

# NAME[4K,1G] limits a payload to namespaces of those alignments.
run_payloads() { # ALIGN
	local line name cmd only j=0
	for line in "${payloads[@]}"; do
		name=${line%%[[:space:]]*}
		cmd=${line#"$name"}
		j=$((j + 1))
		if [[ "$name" =~ ^(.+)\[([0-9A-Za-z,]*)\]$ ]]; then
			name=${BASH_REMATCH[1]}
			only=,${BASH_REMATCH[2]^^},
			[[ "$only" == *",$1,"* ]] || continue
		fi
		run_payload "$((j - 1))" "$name" "$1" "${cmd#"${cmd%%[![:space:]]*}"}"
	done
}

overall=0
idx=0
for spec in "${LAB_NAMESPACES[@]}"; do
	a=${spec%%:*}
	if ! make_namespace "$idx" "$a" "${spec#*:}"; then
		overall=1
	elif [ "$LAB_MODE" != shell ]; then
		run_payloads "$a"
	fi
	idx=$((idx + 1))
done
# run without a namespace (--align none): the command runs once, DAXPOOL_LAB_DEVICE empty.
if [ "${#LAB_NAMESPACES[@]}" -eq 0 ] && [ "$LAB_MODE" = run ]; then
	DEV=""
	printf '{"index": 0, "align": "none", "device": null, "ok": true, "error": null}\n' >"$RES/ns-0.json"
	run_payloads none
fi

if [ "$LAB_MODE" = shell ]; then
	if [ -n "${LAB_ROWS:-}" ]; then stty rows "$LAB_ROWS" cols "${LAB_COLS:-80}" </dev/ttyS0 2>/dev/null; fi
	export TERM=${LAB_TERM:-linux} PS1='lab-guest:\w# '
	a=none
	[ "${#LAB_NAMESPACES[@]}" -gt 0 ] && a=${LAB_NAMESPACES[-1]%%:*}
	lab_env "${DEV:-}" "$a" "$RES"
	say "shell on $(uname -r); DAXPOOL_LAB_DEVICE=${DEV:-none}; modules: modprobe -C /dev/null -d \$DAXPOOL_LAB_MODROOT MOD; exit (or Ctrl-D) powers off"
	cd "${LAB_BUILD:-/tmp}" 2>/dev/null || cd /tmp || true
	setsid -c bash --norc -i </dev/ttyS0 >/dev/ttyS0 2>&1
	overall=$?
fi
finish "$overall"
