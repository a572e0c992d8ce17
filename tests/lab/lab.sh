#!/usr/bin/env bash
# daxpool lab: a QEMU (TCG) guest with an emulated NVDIMM, i.e. a real /dev/daxX.Y.
# See docs/LAB.md. Run "lab.sh help" for the usage.
set -euo pipefail
# shellcheck source=lib/common.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"
src_dir=$(cd "$lab_dir/../.." && pwd)

usage() {
	cat <<'USAGE'
usage: lab.sh COMMAND [OPTIONS] [-- CMD [ARG...]]

Commands
  test   run every payload of payloads.list on a namespace of each alignment; check the
         results (exit 0 only if the guest booted, no oops/BUG/panic/WARNING, all passed)
  run    run one command in the guest on one namespace; exits with the command's status
           lab.sh run --kernel 6.1 --align 2M -- ./build/tests/lab/lab-devdax-smoke /dev/dax0.0
  shell  interactive shell in the guest (exit or Ctrl-D powers off; Ctrl-A x kills QEMU)
  fetch  download and unpack the kernel(s) into the cache only (--kernel all: every one)
  info   show the cached kernels and the last runs
  clean  remove old runs (--all: the whole cache, kernels included)

Options
  -k, --kernel GEN        kernel generation (default: new): 5.10 = newest linux-image-5.10.0-NN
                          of bullseye; 6.1 = newest linux-image-6.1.0-NN of the machine's
                          bookworm sources; 6.12 = newest linux-image-6.12.* of trixie; new =
                          newest of trixie-backports; all = test or run on all four, one after
                          the other; a comma list (6.12,new) = those, one after the other
  -a, --align LIST        namespaces to create, one after another: 4K,2M,1G | all | none
                          (default: all for test, 2M for run and shell)
  -s, --size SIZE         namespace size for ndctl -s (default 2G; 10G for 1G alignment)
  -b, --build DIR         build tree, shared writable at the same path in the guest
                          (default: $DAXPOOL_LAB_BUILD, else the repository's build/ if
                          configured; test requires one)
  -p, --payloads FILE     payload list for test (default: tests/lab/payloads.list)
  -o, --results DIR       run directory: console.log, results/, lab.json (default: a new
                          directory under $DAXPOOL_LAB_CACHE/runs)
  -t, --timeout SECS      VM wall-clock limit (default 900; shell: none)
  -m, --memory SIZE       guest RAM (default 2G)
      --smp N             guest CPUs (default 2)
      --append ARGS       more kernel command-line arguments (repeatable)
  -q, --quiet             do not stream the guest console (it is always in console.log)
  -v, --verbose           kernel messages on the console (no "quiet" on the command line)
      --refresh           ask apt whether a newer kernel exists (default: reuse the cache)
      --keep-image        keep the NVDIMM image file of the run

Environment: DAXPOOL_LAB_CACHE (default /var/cache/daxpool-lab), DAXPOOL_LAB_BUILD,
DAXPOOL_LAB_NICE (QEMU niceness, default 10), DAXPOOL_LAB_ALLOW_WARN=1 (kernel WARNINGs
do not fail the run).
USAGE
}

[ "$#" -gt 0 ] || {
	usage >&2
	exit 2
}
all_args=("$@") # as given, for a second attempt (see tcg_stale_int3)
cmd=$1
shift
case "$cmd" in
help | -h | --help)
	usage
	exit 0
	;;
test | run | shell | fetch | info | clean) ;;
*)
	usage >&2
	die "unknown command '$cmd'"
	;;
esac

kernel=new align="" size="" build=${DAXPOOL_LAB_BUILD:-} payloads="$lab_dir/payloads.list"
append_extra="" results="" timeout="" memory=2G smp=2 quiet=0 verbose=0 refresh=0 keep_image=0 clean_all=0
user_cmd=()
opt_args=() # the options as given, for --kernel all
for a in "$@"; do
	[ "$a" = -- ] && break
	opt_args+=("$a")
done
while [ "$#" -gt 0 ]; do
	case "$1" in
	-k | --kernel | -a | --align | -s | --size | -b | --build | -p | --payloads | -o | --results | -t | --timeout | -m | --memory | --smp | --append)
		[ "$#" -ge 2 ] || die "option $1 needs a value (lab.sh help)"
		;;
	esac
	case "$1" in
	-k | --kernel) kernel=$2; shift ;;
	--kernel=*) kernel=${1#*=} ;;
	-a | --align) align=$2; shift ;;
	--align=*) align=${1#*=} ;;
	-s | --size) size=$2; shift ;;
	-b | --build) build=$2; shift ;;
	--build=*) build=${1#*=} ;;
	-p | --payloads) payloads=$2; shift ;;
	-o | --results) results=$2; shift ;;
	-t | --timeout) timeout=$2; shift ;;
	-m | --memory) memory=$2; shift ;;
	--smp) smp=$2; shift ;;
	--append) append_extra+=" $2"; shift ;;
	-q | --quiet) quiet=1 ;;
	-v | --verbose) verbose=1 ;;
	--refresh) refresh=1 ;;
	--keep-image) keep_image=1 ;;
	--all) clean_all=1 ;;
	--) shift; user_cmd=("$@"); break ;;
	*) die "unknown option '$1' (lab.sh help)" ;;
	esac
	shift
done

[[ -z "$timeout" || "$timeout" =~ ^[0-9]+$ ]] || die "--timeout takes seconds, not '$timeout'"
[[ "$smp" =~ ^[1-9][0-9]*$ ]] || die "--smp takes a CPU count, not '$smp'"
[[ "$memory" =~ ^[1-9][0-9]*G$ ]] || die "--memory takes whole GiB (e.g. 2G), not '$memory'"
[[ -z "$size" || "$size" =~ ^[1-9][0-9]*[MG]$ ]] || die "--size takes e.g. 2G or 1536M, not '$size'"

fetch_args=()
[ "$refresh" = 1 ] && fetch_args+=(--refresh)

case "$cmd" in
fetch)
	if [ "$kernel" = all ]; then gens=("${LAB_GENERATIONS[@]}"); else gens=("$(lab_generation "$kernel")"); fi
	for g in "${gens[@]}"; do
		k=$("$lab_dir/fetch-kernel.sh" "${fetch_args[@]}" "$g")
		"$lab_dir/mkinitramfs.sh" "$k" >/dev/null
		printf '%s %s\n' "$g" "$k"
	done
	exit 0
	;;
info)
	echo "cache: $LAB_CACHE"
	for g in "${LAB_GENERATIONS[@]}"; do
		if [ -s "$LAB_CACHE/kernels/$g.current" ]; then
			v=$(cat "$LAB_CACHE/kernels/$g.current")
			printf '  %-4s %s (%s)\n' "$g" "$v" "$(du -sh "$LAB_CACHE/kernels/$v" | cut -f1)"
		else
			printf '  %-4s not fetched (lab.sh fetch --kernel %s)\n' "$g" "$g"
		fi
	done
	echo "last runs:"
	find "$LAB_CACHE/runs" -mindepth 1 -maxdepth 1 -type d 2>/dev/null | sort | tail -n 5 |
		while read -r d; do
			v="unfinished"
			[ -s "$d/lab.json" ] && v=$(jq -r '(if .ok then "ok" else "FAILED: " + .error end) + " in \(.host.vm_s)s"' "$d/lab.json")
			printf '  %s  %s\n' "$d" "$v"
		done
	exit 0
	;;
clean)
	if [ "$clean_all" = 1 ]; then
		rm -rf "$LAB_CACHE"
		log "removed $LAB_CACHE"
	else
		rm -rf "$LAB_CACHE/runs"
		log "removed $LAB_CACHE/runs"
	fi
	exit 0
	;;
esac

# ---- test / run / shell ---------------------------------------------------------------------
if [ "$kernel" = all ] || [[ "$kernel" == *,* ]]; then
	# One after the other; the exit status is the first non-zero one.
	[ "$cmd" != shell ] || die "shell needs one kernel: --kernel 5.10, 6.1, 6.12 or new"
	if [ "$kernel" = all ]; then gens=("${LAB_GENERATIONS[@]}"); else IFS=, read -r -a gens <<<"$kernel"; fi
	rc_all=0
	for g in "${gens[@]}"; do
		g=$(lab_generation "$g")
		more=(--kernel "$g")
		[ -n "$results" ] && more+=(--results "$results/linux-$g")
		set +e
		"$0" "$cmd" "${opt_args[@]}" "${more[@]}" ${user_cmd[@]+-- "${user_cmd[@]}"}
		rc=$?
		set -e
		[ "$rc_all" != 0 ] || rc_all=$rc
	done
	exit "$rc_all"
fi
gen=$(lab_generation "$kernel")
need_cmd qemu-system-x86_64 timeout jq flock truncate
case "$cmd" in
run) [ "${#user_cmd[@]}" -gt 0 ] || die "run needs a command: lab.sh run [OPTIONS] -- CMD [ARG...]" ;;
*) [ "${#user_cmd[@]}" -eq 0 ] || die "'$cmd' takes no command after --" ;;
esac
[ -n "$align" ] || { [ "$cmd" = test ] && align=all || align=2M; }
[ "$align" = all ] && align=4K,2M,1G
namespaces=()
if [ "$align" != none ]; then
	IFS=, read -r -a aligns <<<"$align"
	for a in "${aligns[@]}"; do
		a=${a^^}
		case "$a" in 4K | 2M | 1G) ;; *) die "bad alignment '$a' (4K, 2M, 1G, all or none)" ;; esac
		s=$size
		[ -n "$s" ] || { [ "$a" = 1G ] && s=10G || s=2G; }
		namespaces+=("$a:$s")
	done
fi
img_gib=6
for ns in "${namespaces[@]}"; do
	s=${ns#*:}
	case "$s" in
	*G) n=${s%G} ;;
	*) n=0 ;;
	esac
	[[ "$n" =~ ^[0-9]+$ ]] && [ "$((n + 2))" -gt "$img_gib" ] && img_gib=$((n + 2))
done

if [ -z "$build" ] && [ -f "$src_dir/build/CMakeCache.txt" ]; then
	build=$src_dir/build
	log "build tree: $build (the repository's build/; --build DIR for another)"
fi
if [ -n "$build" ]; then
	build=$(cd "$build" 2>/dev/null && pwd) || die "build tree '$build' does not exist"
fi
if [ "$cmd" = test ]; then
	[ -n "$build" ] || die "test needs the build tree: --build DIR (or DAXPOOL_LAB_BUILD)"
	[ -r "$payloads" ] || die "no payload list $payloads"
	payloads=$(cd "$(dirname "$payloads")" && pwd)/$(basename "$payloads")
	[ "${#namespaces[@]}" -gt 0 ] || die "test needs at least one namespace (--align)"
	# Binaries of the build tree that payloads name must exist: never run (or pass) without them.
	while read -r rel; do
		[ -e "$build/$rel" ] || die "payload needs $build/$rel, which is not built (cmake --build $build)"
	done < <(grep -v '^[[:space:]]*#' "$payloads" | grep -oE '\$\{?DAXPOOL_LAB_BUILD\}?/[^"[:space:]]+' |
		sed -E 's/^\$\{?DAXPOOL_LAB_BUILD\}?\///' | sort -u)
fi
if [ -z "$timeout" ]; then
	timeout=900
	[ "$cmd" = shell ] && timeout=0
fi

# Kernel and initramfs (cached).
t_start=$(now_ms)
kdir=$("$lab_dir/fetch-kernel.sh" "${fetch_args[@]}" "$gen")
t_fetch=$(now_ms)
initrd=$("$lab_dir/mkinitramfs.sh" "$kdir")
t_initrd=$(now_ms)
kver=$(cat "$kdir/version")

# Run directory: the guest's writable share.
if [ -z "$results" ]; then
	mkdir -p "$LAB_CACHE/runs"
	# Keep the 20 newest runs.
	find "$LAB_CACHE/runs" -mindepth 1 -maxdepth 1 -type d | sort | head -n -19 | xargs -r rm -rf
	results=$LAB_CACHE/runs/$(date +%Y%m%d-%H%M%S)-$gen-$cmd-$$
fi
mkdir -p "$results"
results=$(cd "$results" && pwd)
rm -rf "$results/results" "$results/guest" "$results/status" "$results/lab.json" "$results/console.log"
mkdir -p "$results/guest" "$results/results"
cp "$lab_dir/guest/main.sh" "$results/guest/main.sh"
[ "$cmd" = test ] && cp "$payloads" "$results/payloads.list"
{
	printf 'LAB_MODE=%q\n' "$cmd"
	printf 'LAB_GENERATION=%q\nLAB_KVER=%q\n' "$gen" "$kver"
	printf 'LAB_MODROOT=%q\n' "$kdir/root"
	printf 'LAB_BUILD=%q\nLAB_SOURCE=%q\nLAB_CWD=%q\n' "$build" "$src_dir" "$PWD"
	printf 'LAB_NAMESPACES=('
	for ns in "${namespaces[@]}"; do printf '%q ' "$ns"; done
	printf ')\n'
	if [ "$cmd" = run ] && [ "${#user_cmd[@]}" -eq 1 ]; then
		printf 'LAB_CMD=%q\n' "${user_cmd[0]}" # one word: a shell command line (like ssh)
	elif [ "$cmd" = run ]; then
		printf 'LAB_CMD=%q\n' "$(printf '%q ' "${user_cmd[@]}")" # argv, quoted exactly
	fi
	printf 'LAB_PAYLOAD_TIMEOUT=%q\n' "$((timeout > 0 ? timeout : 86400))"
	if [ "$cmd" = shell ] && [ -t 0 ] && read -r rows cols < <(stty size 2>/dev/null); then
		printf 'LAB_ROWS=%q\nLAB_COLS=%q\nLAB_TERM=%q\n' "$rows" "$cols" "${TERM:-linux}"
	fi
} >"$results/job.env"

img="$results/pmem.img"
rm -f "$img"
truncate -s "${img_gib}G" "$img"
mem_gib=${memory%G}

append="console=ttyS0 panic=1 mitigations=off"
[ "$verbose" = 1 ] || append+=" quiet"
append+=$append_extra
qemu=(
	qemu-system-x86_64 -name daxpool-lab
	-accel "tcg,thread=multi" -cpu max -smp "$smp"
	-machine "pc,nvdimm=on" -m "${mem_gib}G,slots=2,maxmem=$((mem_gib + img_gib))G"
	-object "memory-backend-file,id=mem1,share=on,mem-path=$img,size=${img_gib}G,align=2M"
	-device "nvdimm,id=nvdimm1,memdev=mem1,label-size=128K"
	-kernel "$kdir/vmlinuz" -initrd "$initrd" -append "$append"
	-nic none -no-reboot -nographic
	-chardev "stdio,id=con,mux=on,logfile=$results/console.log,signal=$([ "$cmd" = shell ] && echo off || echo on)"
	-serial chardev:con -mon "chardev=con,mode=readline"
	-virtfs "local,path=/,mount_tag=hostroot,security_model=none,readonly=on,multidevs=remap"
	-virtfs "local,path=$results,mount_tag=labrun,security_model=none,multidevs=remap"
	-virtfs "local,path=$kdir/root,mount_tag=labmods,security_model=none,readonly=on,multidevs=remap"
)
if [ -n "$build" ]; then qemu+=(-virtfs "local,path=$build,mount_tag=labbuild,security_model=none,multidevs=remap"); fi

# One lab VM at a time on this machine.
exec 8>"$LAB_CACHE/vm.lock"
if ! flock -n 8; then
	log "another lab VM is running; waiting for it"
	flock 8
fi
log "kernel $kver ($gen), namespaces: ${namespaces[*]:-none}, run directory $results"
t_vm=$(now_ms)
set +e
if [ "$cmd" = shell ]; then
	nice -n "${DAXPOOL_LAB_NICE:-10}" "${qemu[@]}"
	qemu_rc=$?
elif [ "$quiet" = 1 ]; then
	nice -n "${DAXPOOL_LAB_NICE:-10}" timeout -k 10 "$timeout" "${qemu[@]}" </dev/null >/dev/null
	qemu_rc=$?
else
	nice -n "${DAXPOOL_LAB_NICE:-10}" timeout -k 10 "$timeout" "${qemu[@]}" </dev/null
	qemu_rc=$?
fi
set -e
t_end=$(now_ms)
flock -u 8
[ "$keep_image" = 1 ] || rm -f "$img"

# ---- verdict ---------------------------------------------------------------------------------
# The guest writes small JSON files (guest/main.sh); summary.json puts them together, each
# payload with its result.json, if any ("ok": false in it fails the payload).
assemble_summary() { # RESULTS_DIR
	local res=$1 f a pj r plist
	[ -s "$res/guest.json" ] || return 1
	for f in "$res"/ns-*.json; do
		[ -e "$f" ] || continue
		a=$(jq -r .align "$f") || return 1
		plist=$(for pj in "$res/$a"/*/payload.json; do
			[ -e "$pj" ] || continue
			r=null
			if [ -s "${pj%/*}/result.json" ]; then
				r=$(jq -c . "${pj%/*}/result.json" 2>/dev/null) ||
					r='{"ok": false, "error": "result.json is not valid JSON"}'
			fi
			jq -c --argjson r "$r" '. + {result: $r, ok: (.rc == 0 and
				(if ($r | type) == "object" and ($r | has("ok")) then $r.ok == true else true end))}' "$pj"
		done | jq -sc 'sort_by(.index)') || return 1
		jq -c --argjson p "$plist" '. + {payloads: $p, ok: (.ok and ($p | all(.ok)))}' "$f" || return 1
	done | jq -s --slurpfile g "$res/guest.json" '$g[0] + {namespaces: sort_by(.index), ok: all(.ok)}'
}
if [ -s "$results/results/guest.json" ]; then
	assemble_summary "$results/results" >"$results/results/summary.json" || rm -f "$results/results/summary.json"
fi

# {"4K": n, ...}: how many payloads of the list run on each alignment (NAME[4K,2M] limits one).
expected_payloads() {
	local a n name _
	printf '{'
	for a in 4K 2M 1G; do
		n=0
		while read -r name _; do
			case "$name" in '' | '#'*) continue ;; esac
			if [[ "$name" =~ \[([0-9A-Za-z,]*)\]$ ]]; then
				[[ ",${BASH_REMATCH[1]^^}," == *",$a,"* ]] || continue
			fi
			n=$((n + 1))
		done <"$payloads"
		printf '"%s": %d%s' "$a" "$n" "$([ "$a" = 1G ] || echo ,)"
	done
	printf '}'
}
error=""
console=$results/console.log
[ -f "$console" ] || touch "$console"
# Kernel messages (timestamped) in the console and in the guest's final dmesg.
oops_re='Kernel panic|BUG: |Oops|general protection fault|kernel BUG at|UBSAN:|KASAN:|stall on CPU|self-detected stall|blocked for more than'
[ "${DAXPOOL_LAB_ALLOW_WARN:-0}" = 1 ] || oops_re+='|WARNING: CPU:'
oops=$(cat "$console" "$results/results/dmesg.txt" 2>/dev/null |
	grep -aE -m1 "\[ *[0-9]+\.[0-9]+\] .*($oops_re)" || true)
init_failed=$(grep -a -m1 'LAB-INIT-FAILED' "$console" || true)

# QEMU's multi-threaded TCG can run a translated block that still holds the int3 the kernel put
# in its text while patching it (static keys, static calls) after the patching finished: the
# guest dies in "Oops: int3" at an instruction that is no longer an int3 (the byte before the
# marked one in the Code: line). A CPU cannot do that (the kernel serialises every CPU before it
# takes the int3 away), so such a run says nothing about daxpool or the kernel: it runs once
# more, and the first console stays as console.attempt-1.log.
tcg_stale_int3() {
	local code
	[[ "$oops" == *"Oops: int3"* ]] || return 1
	code=$(tr -d '\r' <"$console" | grep -a -A60 'Oops: int3' | grep -a -m1 'Code: ') || return 1
	[[ "$code" =~ ([0-9a-f]{2})\ \<[0-9a-f]{2}\> ]] || return 1
	[ "${BASH_REMATCH[1]}" != cc ]
}
attempt=${DAXPOOL_LAB_ATTEMPT:-1}
if [ -z "$init_failed" ] && [ "$cmd" != shell ] && [ "$attempt" = 1 ] && tcg_stale_int3; then
	log "the emulator ran a stale int3 (${oops//$'\r'/}); not a kernel or daxpool failure, running again"
	mv "$console" "$results/console.attempt-1.log"
	DAXPOOL_LAB_ATTEMPT=2 exec "$BASH" "$0" "${all_args[@]}"
fi
if [ -n "$init_failed" ]; then
	error="the initramfs failed: ${init_failed#*LAB-INIT-FAILED: }"
elif [ "$qemu_rc" = 124 ] || [ "$qemu_rc" = 137 ]; then
	error="timeout: the lab VM did not finish within ${timeout}s"
elif [ -n "$oops" ]; then
	error="kernel problem in the guest: ${oops//$'\r'/}"
elif [ "$qemu_rc" != 0 ]; then
	error="QEMU failed with exit status $qemu_rc"
elif [ ! -s "$results/status" ]; then
	error="the guest did not finish (boot failure or crash before the lab script ended)"
elif [ ! -s "$results/results/summary.json" ]; then
	error="the guest wrote no usable results$(jq -r '": " + .error' "$results/results/error.json" 2>/dev/null || true)"
fi
summary=null
if [ -s "$results/results/summary.json" ]; then
	summary=$(jq -c . "$results/results/summary.json") || error=${error:-"results/summary.json is not JSON"}
fi
if [ -z "$error" ] && [ "$summary" != null ]; then
	want=${#namespaces[@]}
	if [ "$cmd" = run ] && [ "$want" = 0 ]; then want=1; fi
	have=$(jq '.namespaces | length' <<<"$summary")
	if [ "$have" != "$want" ]; then
		error="the guest reported $have namespaces, $want were requested"
	elif [ "$cmd" = test ] && [ "$(jq --argjson want "$(expected_payloads)" \
		'[.namespaces[] | select(.ok and (.payloads | length) != $want[.align])] | length' <<<"$summary")" != 0 ]; then
		error="payloads missing from the results (the guest stopped early?)"
	elif [ "$cmd" = run ]; then
		# run: the command's own status is the exit status; only the lab set-up can fail here.
		[ "$(jq '[.namespaces[] | select(.error)] | length' <<<"$summary")" = 0 ] ||
			error="failed in the guest: $(jq -r '[.namespaces[] | select(.error) | .align + ": " + .error] | join("; ")' <<<"$summary")"
	elif [ "$(jq .ok <<<"$summary")" != true ]; then
		error="failed in the guest: $(jq -r '[.namespaces[] | select(.ok != true) |
			.align + ": " + (.error // ([.payloads[] | select(.ok != true) |
			.name + " exit " + (.rc | tostring) + (if (.result | type) == "object" and .result.error then " (" + (.result.error | tostring) + ")" else "" end)] | join(", ")))] | join("; ")' <<<"$summary")"
	fi
fi
if [ -z "$error" ] && [ "$cmd" = test ] && [ "$(cat "$results/status")" != 0 ]; then
	error="the guest reported exit status $(cat "$results/status")"
fi
fetch_json=$(cat "$kdir/fetch.json" 2>/dev/null || echo null)
jq -n --arg error "$error" --arg kernel "$kver" --arg gen "$gen" --arg cmd "$cmd" \
	--arg dir "$results" --argjson summary "$summary" --argjson fetch "$fetch_json" \
	--argjson fetch_s "$(elapsed "$t_start" "$t_fetch")" --argjson initrd_s "$(elapsed "$t_fetch" "$t_initrd")" \
	--argjson vm_s "$(elapsed "$t_vm" "$t_end")" --argjson total_s "$(elapsed "$t_start" "$t_end")" \
	--argjson qemu_rc "$qemu_rc" --argjson attempt "$attempt" \
	'{ok: ($error == ""), error: (if $error == "" then null else $error end), command: $cmd,
	  kernel: $kernel, generation: $gen, run_dir: $dir, kernel_fetch: $fetch,
	  host: {fetch_s: $fetch_s, initramfs_s: $initrd_s, vm_s: $vm_s, total_s: $total_s, qemu_rc: $qemu_rc, attempt: $attempt},
	  guest: $summary}' >"$results/lab.json"

# run --quiet: the command's output was not streamed; show it now.
if [ "$cmd" = run ] && [ "$quiet" = 1 ]; then
	for f in "$results"/results/*/run/output.log; do
		[ -e "$f" ] && tr -d '\r' <"$f"
	done
fi
# One line per namespace and payload; smoke results get their fault counts.
if [ "$summary" != null ]; then
	jq -r '.namespaces[] as $n | (if $n.align == "none" then "lab: no namespace" elif $n.ok != true and $n.device == "" then "lab: \($n.align) namespace FAILED" else "lab: \($n.align) \($n.device // "-") \(($n.size // 0) / 1048576 | floor) MiB created in \($n.create_s // "-")s" end) +
		([$n.payloads[]? | "\n  \(.name): exit \(.rc), \(.seconds)s" +
		  (if .result.faults then ", faults \(.result.faults.write)/\(.result.faults.read) (expected \(.result.faults.expected))" else "" end) +
		  (if .ok or $cmd == "run" then "" else "  FAILED" end)] | join(""))' --arg cmd "$cmd" <<<"$summary" >&2
fi
if [ -n "$error" ]; then
	{
		echo "---- last 40 lines of $console ----"
		tail -n 40 "$console" | tr -d '\r'
		echo "----"
	} >&2
	log "FAILED ($gen, $kver): $error"
	log "run directory: $results"
	exit 1
fi
rc=0
verdict=ok
if [ "$cmd" = run ]; then
	rc=$(jq -r '[.namespaces[].payloads[].rc] | max // 0' <<<"$summary")
	verdict="lab ok, command exit status $rc"
fi
log "$verdict ($gen, $kver): VM $(elapsed "$t_vm" "$t_end")s, total $(elapsed "$t_start" "$t_end")s; $results/lab.json"
exit "$rc"
