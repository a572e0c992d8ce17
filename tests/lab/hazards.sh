#!/usr/bin/env bash
# Runs the kernel hazards' reproducers, each in its own throw-away lab guest, on the given kernel
# generations, and keeps their console output (docs/VERIFICATION.md "Kernel hazards").
#
#   hazards.sh --build BUILD [--kernel all|5.10,6.1,...] [--only NAME,...] [--results DIR]
#
# NAME: teardown-namespace (hazard-teardown.sh namespace on a 2M namespace), teardown-subdevice
# and placement (hazard-teardown.sh subdevice, hazard-placement.sh, on a soft-reserved dynamic
# region). A reproducer's guest is expected to oops: the lab run's own verdict is recorded, not
# obeyed. For every run DIR/GEN-NAME.txt holds the reproducer's lines and the first kernel oops
# or WARNING (from its "BUG:"/"Oops"/"WARNING:" line to the end of its trace); DIR/summary.txt one line per run.
# The guests boot with oops=panic: an oopsing guest powers off at once (the console has the
# oops) instead of hanging until the lab's timeout.
# Never run by ctest: an oops is what these are for.
set -euo pipefail
# shellcheck source=lib/common.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"

build="" kernels=all only="teardown-namespace,teardown-subdevice,placement" results="" rerun=1
while [ "$#" -gt 0 ]; do
	case "$1" in
	-b | --build) build=$2; shift ;;
	-k | --kernel) kernels=$2; shift ;;
	--only) only=$2; shift ;;
	-o | --results) results=$2; shift ;;
	--summarize) rerun=0 ;; # only rebuild DIR's excerpts and summary from its existing runs
	*) die "hazards.sh: unknown option $1" ;;
	esac
	shift
done
if [ "$rerun" = 1 ]; then
	[ -n "$build" ] || die "hazards.sh needs --build BUILD"
	build=$(cd "$build" && pwd)
	[ -x "$build/tests/lab/lab-pin-hold" ] || die "$build/tests/lab/lab-pin-hold is not built"
fi
if [ "$kernels" = all ]; then gens=("${LAB_GENERATIONS[@]}"); else IFS=, read -r -a gens <<<"$kernels"; fi
IFS=, read -r -a names <<<"$only"
results=${results:-$LAB_CACHE/hazards-$(date +%Y%m%d-%H%M%S)}
mkdir -p "$results"
results=$(cd "$results" && pwd)
dyn=(--align none --memory 6G --append "memmap=2G%4G+0xefffffff")
panic=(--append oops=panic)
: >"$results/summary.txt"
for g in "${gens[@]}"; do
	g=$(lab_generation "$g")
	for n in "${names[@]}"; do
		case "$n" in
		teardown-namespace) args=(--align 2M -- "$build/tests/lab/hazard-teardown.sh" namespace) ;;
		teardown-subdevice) args=("${dyn[@]}" -- "$build/tests/lab/hazard-teardown.sh" subdevice) ;;
		placement) args=("${dyn[@]}" -- "$build/tests/lab/hazard-placement.sh") ;;
		*) die "unknown reproducer $n" ;;
		esac
		run=$results/$g-$n
		if [ "$rerun" = 1 ]; then
			set +e
			"$lab_dir/lab.sh" run --kernel "$g" --quiet --timeout 600 --build "$build" --results "$run" "${panic[@]}" "${args[@]}" \
				>"$run.lab.log" 2>&1
			rc=$?
			set -e
		else
			rc=$([ "$(jq -r .ok "$run/lab.json" 2>/dev/null)" = true ] && echo 0 || echo 1)
		fi
		# The console shows an oops (it forces verbose output) but not a WARNING's trace under
		# "quiet": that comes from the dmesg the guest saved, when it lived to save it.
		oops_re='\] (BUG: |Oops|general protection fault|kernel BUG at|WARNING: CPU:)'
		log_src=$run/console.log
		if ! tr -d '\r' <"$run/console.log" | grep -a -q -E "$oops_re" && [ -s "$run/results/dmesg.txt" ]; then
			log_src=$run/results/dmesg.txt
		fi
		{
			echo "# $n on $(jq -r .kernel "$run/lab.json" 2>/dev/null) — lab verdict: $(jq -r '.error // "ok"' "$run/lab.json" 2>/dev/null | cut -c1-160)"
			tr -d '\r' <"$run/console.log" | grep -a '^hazard' || true
			echo "# first oops or WARNING (${log_src##*/})"
			tr -d '\r' <"$log_src" | sed -E 's/^.*(\[ *[0-9]+\.[0-9]+\] )/\1/' |
				awk '/\] (BUG: |Oops|general protection fault|kernel BUG at|WARNING: CPU:)/ { on = 1 }
				     on { print; if (/---\[ end trace/ || ++n >= 45) exit }' || true
		} >"$run.txt"
		oops=$(grep -a -v '^#' "$run.txt" | grep -a -m1 -E "$oops_re" | sed -E 's/^\[ *[0-9.]+\] //' || true)
		result=$(grep -a -m1 'RESULT:' "$run.txt" | sed 's/^hazard[^:]*: RESULT: //' || true)
		printf '%-5s %-19s lab exit %d; %s%s\n' "$g" "$n" "$rc" "${oops:-no oops}" "${result:+; $result}" |
			tee -a "$results/summary.txt"
	done
done
log "results in $results"
