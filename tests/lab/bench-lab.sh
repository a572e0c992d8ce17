#!/bin/bash
# Benchmarks that need real device-dax, NVDIMM regions or an RDMA device: the lab (docs/LAB.md).
#
#   tests/lab/lab.sh run --kernel new --align none --build BUILD \
#       -- BUILD/tests/lab/bench-lab.sh [--quick]
#
# In the guest (regions, no namespace):
#  - soft-RoCE: dummy0 + rdma_rxe (rxe0), so ibv_reg_mr has a device (LAB-NOTES.md);
#  - provision: daxpoold on a 2M devdax namespace of 2G; a mapped 1 GiB slice from it against a
#    devdax namespace of 1 GiB created per allocation in the same region (libndctl);
#  - zero: the daemon's background zeroing on that device against memset;
#  - pin: io_uring and ibv_reg_mr per GiB on a devdax namespace of each alignment (1G, 2M, 4K).
# All rows go to $DAXPOOL_LAB_RESULTS/bench-lab.json (one JSON object a line, as daxpool-bench
# prints them); result.json says what ran and what the rows were checked for (well-formed; the
# libndctl, ibv_reg_mr and, after 6.1, io_uring measurements really ran). Exit 1 if a check failed. --quick: 64 MiB instead of 1 GiB, 1-2 repetitions
# (a smoke run). The guest runs under TCG: absolute times are slow, ratios are what to read.
set -uo pipefail
BUILD=${DAXPOOL_LAB_BUILD:?run this through tests/lab/lab.sh}
CTL=$BUILD/cli/daxpoolctl
OUT=${DAXPOOL_LAB_RESULTS:-$PWD}
ROWS=$OUT/bench-lab.json
quick=()
bytes=1G
reps=3
if [ "${1:-}" = --quick ]; then quick=(--quick); bytes=64M; reps=2; fi
[ -x "$CTL" ] || { echo "bench-lab: $CTL is not built" >&2; exit 2; }
command -v jq >/dev/null || { echo "bench-lab: needs jq (scripts/install-deps.sh lab)" >&2; exit 2; }
[ -x "$BUILD/bench/daxpool-bench" ] || { echo "bench-lab: $BUILD/bench/daxpool-bench is not built" >&2; exit 2; }
: >"$ROWS"
failed=0
checks="{}"
say() { printf 'bench-lab: %s\n' "$*" >&2; }
record() { # NAME ok|"failed: why"
	checks=$(jq -c --arg k "$1" --arg v "$2" '. + {($k): $v}' <<<"$checks")
	if [ "$2" = ok ]; then say "ok: $1"; else say "FAILED: $1: $2"; failed=$((failed + 1)); fi
}
# bench NAME SUITE ARGS...: daxpoolctl bench, rows appended to $ROWS
bench() {
	local name=$1 out rc
	shift
	say "daxpoolctl bench $*"
	out=$("$CTL" bench "$@" 2>"$OUT/$name.err")
	rc=$?
	printf '%s\n' "$out" | grep -v '^$' >>"$ROWS"
	if [ "$rc" = 0 ] && [ -n "$out" ]; then record "$name" ok
	else record "$name" "failed: exit $rc: $(tail -3 "$OUT/$name.err")"; fi
}
# create SIZE ALIGN: a devdax namespace; prints /dev/daxX.Y
create() {
	local out
	out=$("$CTL" --json create --region "$region" --size "$1" --align "$2" 2>&1) || { say "create $1 $2: $out"; return 1; }
	echo "/dev/$(jq -r .name <<<"$out")"
}

# Soft-RoCE: only a protection domain is needed for ibv_reg_mr; nothing leaves the guest (-nic none).
mp() { modprobe -C /dev/null -d "$DAXPOOL_LAB_MODROOT" "$@"; }
if mp -a crc32_generic 2>/dev/null; mp -a dummy rdma_rxe ib_uverbs &&
	{ ip link show dummy0 >/dev/null 2>&1 || ip link add dummy0 type dummy; } && ip addr add 10.77.0.1/24 dev dummy0 && ip link set dummy0 up &&
	rdma link add rxe0 type rxe netdev dummy0; then
	record soft-roce ok
else
	record soft-roce "failed: could not create rxe0 (ibv_reg_mr rows will say skipped)"
fi

regions=$("$CTL" --json regions)
region=$(jq -r '[.[] | select(.enabled and .labels and (.dax_aligns | length) > 0)][0].name // empty' <<<"$regions")
[ -n "$region" ] || { record regions "failed: no usable region: $regions"; exit 1; }
say "region $region: $(jq -c --arg r "$region" '.[] | select(.name == $r) | {size, available, max_extent, dax_aligns}' <<<"$regions")"

# Provisioning and zeroing: the pool first (1G-sized slices need the 2G namespace), then the
# namespaces per allocation go into the rest of the region.
if dev=$(create 2G 2M); then
	bench provision provision --device "$dev" --region "$region" --bytes "$bytes" --reps "$reps" "${quick[@]}"
	bench zero zero --device "$dev" --bytes "$bytes" --reps "$reps" "${quick[@]}"
	"$CTL" destroy --force "$dev" >&2 || record destroy-pool "failed"
else
	record provision "failed: no 2G namespace for the pool"
fi

# Pinning per alignment, largest first (the kernel places each namespace after the last one).
for a in 1G 2M 4K; do
	size=1088M
	[ "$a" = 1G ] && size=2G
	if dev=$(create "$size" "$a"); then
		bench "pin-$a" pin --device "$dev" --system devdax --bytes "$bytes" --reps "$reps" "${quick[@]}"
		"$CTL" destroy "$dev" >&2 || record "destroy-$a" failed
	else
		record "pin-$a" "failed: no $a namespace"
	fi
done

# What the rows must show on real device-dax: every row well-formed; a namespace per allocation
# was created and timed; ibv_reg_mr worked on every alignment (soft-RoCE); io_uring too, except
# on 6.1, which refuses file-backed non-hugetlb memory (EOPNOTSUPP, LAB-NOTES.md).
# rowcheck NAME JQ-CONDITION: some row satisfies the condition
rowcheck() {
	if jq -se "any(.[]; $2)" "$ROWS" >/dev/null 2>&1; then record "$1" ok
	else record "$1" "failed: no row with $2"; fi
}
if jq -se 'all(.[]; (.suite | type) == "string" and (.system | type) == "string" and
	(.metric | type) == "string" and (.value | type) == "number" and (.unit | type) == "string" and
	(.params | type) == "object")' "$ROWS" >/dev/null 2>&1; then
	record rows-well-formed ok
else
	record rows-well-formed "failed: a row lacks suite/system/metric/value/unit/params"
fi
rowcheck provision-libndctl '.suite == "provision" and .system == "libndctl" and .metric == "provision_latency" and .unit == "ms"'
rowcheck provision-daxpoold '.suite == "provision" and .system == "daxpoold" and .metric == "provision_latency" and .unit == "ms"'
rowcheck zero-daxpoold '.suite == "zero" and .system == "daxpoold" and .metric == "zeroing_bandwidth" and .unit == "GB/s"'
for p in 4096 2097152 1073741824; do
	rowcheck "pin-ibverbs-$p" ".suite == \"pin\" and .system == \"ibverbs\" and .unit == \"ms/GiB\" and .params.page == $p"
	case $(uname -r) in
	6.1.*) ;;
	*) rowcheck "pin-io_uring-$p" ".suite == \"pin\" and .system == \"io_uring\" and .unit == \"ms/GiB\" and .params.page == $p" ;;
	esac
done

jq -n --argjson c "$checks" --argjson f "$failed" --arg k "$(uname -r)" \
	'{ok: ($f == 0), failed: $f, kernel: $k, checks: $c}' >"$OUT/result.json"
say "$(wc -l <"$ROWS") rows in $ROWS; $failed check(s) failed"
[ "$failed" = 0 ]
