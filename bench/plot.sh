#!/bin/bash
# One PNG per benchmark from daxpool-bench JSON rows (gnuplot, package gnuplot-nox; jq).
#   bench/plot.sh OUTDIR RUN.json [RUN.json...]
# The files may mix suites (e.g. a host run and a lab run); a value measured more than once is
# averaged; rows with unit "skipped" are left out, and a plot whose data is all missing is not
# drawn (a line on stderr says so). Writes OUTDIR/{alloc,provision,touch,pin,zero,
# scale-clients,scale-live}.png and the .dat files they were drawn from.
set -euo pipefail
[ $# -ge 2 ] || { echo "usage: $0 OUTDIR RUN.json..." >&2; exit 2; }
out=$1
shift
command -v gnuplot >/dev/null || { echo "plot.sh: needs gnuplot (apt-get install gnuplot-nox)" >&2; exit 1; }
command -v jq >/dev/null || { echo "plot.sh: needs jq" >&2; exit 1; }
mkdir -p "$out"
rows=$(mktemp)
trap 'rm -f "$rows"' EXIT
cat "$@" | jq -c 'select(type == "object" and .unit != "skipped")' >"$rows"

# q FILTER: a jq program over the array of rows, with v(cond) = mean value of matching rows or "?".
q() {
	jq -rs "def v(c): [.[] | select(c) | .value] | if length > 0 then add / length else \"?\" end;
		def n(x): if x >= 1000000 then \"\(x / 1000000 | floor)M\" elif x >= 1000 then \"\(x / 1000 | floor)k\" else \"\(x)\" end;
		$1" "$rows"
}

# has_data FILE: some value other than "?" below the header line.
has_data() { awk 'NR > 1 { for (i = 2; i <= NF; i++) if ($i != "?") found = 1 } END { exit !found }' "$1"; }

# bars NAME TITLE YLABEL LOGSCALE(0|1): clustered bars from NAME.dat (header: label series...).
bars() {
	local name=$1 title=$2 ylabel=$3 log=$4 dat=$out/$1.dat
	if ! has_data "$dat"; then echo "plot.sh: no data for $name: not drawn" >&2; return; fi
	local ncol ymin
	ncol=$(head -1 "$dat" | awk '{ print NF }')
	# Log scale: start a bit below the smallest value, so the shortest bar is still seen.
	ymin=$(awk 'NR > 1 { for (i = 2; i <= NF; i++) if ($i != "?" && $i > 0 && (m == "" || $i < m)) m = $i } END { print m / 3 }' "$dat")
	gnuplot <<EOF
set terminal pngcairo size 900,520 font "sans,10" noenhanced
set output "$out/$name.png"
set title "$title"
set ylabel "$ylabel"
set datafile missing "?"
set style data histogram
set style histogram cluster gap 1
set style fill solid 0.85 border -1
set boxwidth 0.9
set key top left
set grid ytics
set yrange [0:*]
$([ "$log" = 1 ] && printf 'set logscale y\nset yrange [%s:*]\n' "$ymin")
plot for [i=2:$ncol] "$dat" using i:xtic(1) title columnheader(i)
EOF
}

# 1. Allocation: in-process daxpool vs libpmemobj (alloc suite), socket round trip (scale suite).
q '(map(select(.suite == "alloc" and .metric == "alloc_latency_p50")) | map(.params.live) | unique) as $lives
   | "live daxpool_in-process libpmemobj daxpoold_socket_pair",
     ($lives[] as $n | [n($n),
        v(.suite == "alloc" and .system == "daxpool" and .metric == "alloc_latency_p50" and .params.live == $n),
        v(.suite == "alloc" and .system == "libpmemobj" and .metric == "alloc_latency_p50" and .params.live == $n),
        v(.suite == "scale" and .metric == "pair_latency_p50" and .params.clients == 1 and .params.live == $n)]
      | map(tostring) | join(" "))' >"$out/alloc.dat"
bars alloc "Allocation p50 latency at N live 4 KiB allocations (lower is better)" "ns (log)" 1

# 2. Provisioning a mapped slice.
q '"what daxpoold libndctl_namespace",
   (["alloc+map", v(.suite == "provision" and .system == "daxpoold" and .metric == "provision_latency"),
     v(.suite == "provision" and .system == "libndctl" and .metric == "provision_latency")] | map(tostring) | join(" "))' \
	>"$out/provision.dat"
bars provision "Time to a mapped slice: daxpoold grant vs a devdax namespace per allocation" "ms (log)" 1

# 3. First touch / fill of 1 GiB per alignment, against memset on anonymous huge pages.
q '"align daxpool_fill direct_fill anon-huge_memset daxpool_touch direct_touch",
   (("4K", "2M", "1G") as $a | [$a,
     v(.suite == "touch" and .system == "daxpool" and .metric == "fill_1GiB" and .params.align == $a),
     v(.suite == "touch" and .system == "direct" and .metric == "fill_1GiB" and .params.align == $a),
     v(.suite == "touch" and .system == "anon-huge" and .metric == "fill_1GiB"),
     v(.suite == "touch" and .system == "daxpool" and .metric == "first_touch_1GiB" and .params.align == $a),
     v(.suite == "touch" and .system == "direct" and .metric == "first_touch_1GiB" and .params.align == $a)]
    | map(tostring) | join(" "))' >"$out/touch.dat"
bars touch "1 GiB: fill (memset) and first touch (1 byte per 4K page), per slice alignment" "ms (log)" 1

# 4. Pinning per GiB, per memory kind.
q '(map(select(.suite == "pin" and .metric == "pin_unpin_per_GiB")) | map(.params.memory + (if .params.memory == "devdax" then "-" + (.params.page | tostring) else "" end)) | unique) as $m
   | "memory io_uring ibv_reg_mr",
     ($m[] as $k | [$k,
        v(.suite == "pin" and .system == "io_uring" and .metric == "pin_unpin_per_GiB" and (.params.memory + (if .params.memory == "devdax" then "-" + (.params.page | tostring) else "" end)) == $k),
        v(.suite == "pin" and .system == "ibverbs" and .metric == "pin_unpin_per_GiB" and (.params.memory + (if .params.memory == "devdax" then "-" + (.params.page | tostring) else "" end)) == $k)]
      | map(tostring) | join(" "))' | sed -E 's/devdax-4096/devdax-4K/; s/devdax-2097152/devdax-2M/; s/devdax-1073741824/devdax-1G/' >"$out/pin.dat"
bars pin "Long-term pin + unpin, cost per GiB (lower is better)" "ms per GiB (log)" 1

# 5. Zeroing bandwidth.
q '"backing daxpoold_zero_worker memset pmem2_memset",
   ((map(select(.suite == "zero" and .system == "daxpoold")) | map(.params.backing) | unique)[] as $b
    | [($b | if startswith("/dev/") then "lab_devdax_(TCG)" else gsub(" "; "_") end), v(.suite == "zero" and .system == "daxpoold" and .metric == "zeroing_bandwidth" and .params.backing == $b),
       v(.suite == "zero" and .system == "memset" and .params.backing == $b),
       v(.suite == "zero" and .system == "pmem2_memset" and .params.backing == $b)] | map(tostring) | join(" "))' \
	>"$out/zero.dat"
bars zero "Zeroing freed memory: daxpoold's background worker vs memset of the same memory" "GB/s" 0

# 6. Scaling with clients (at the largest live count of the run).
q '(map(select(.suite == "scale" and .metric == "pair_throughput")) | map(.params.live) | max) as $live
   | (map(select(.suite == "scale" and .metric == "pair_throughput" and .params.live == $live)) | map(.params.clients) | unique)[] as $c
   | [$c, v(.suite == "scale" and .metric == "pair_throughput" and .params.live == $live and .params.clients == $c),
      v(.suite == "scale" and .metric == "pair_latency_p50" and .params.live == $live and .params.clients == $c) / 1000,
      v(.suite == "scale" and .metric == "pair_latency_p99" and .params.live == $live and .params.clients == $c) / 1000]
   | map(tostring) | join(" ")' >"$out/scale-clients.dat" 2>/dev/null || true
if [ -s "$out/scale-clients.dat" ]; then
	gnuplot <<EOF
set terminal pngcairo size 900,520 font "sans,10" noenhanced
set output "$out/scale-clients.png"
set title "daxpoold: 4 KiB alloc+free pairs vs concurrent clients"
set logscale x 2
set xlabel "clients (each its own connection and thread)"
set ylabel "pairs/s"
set y2label "latency, us (log)"
set logscale y2
set ytics nomirror
set y2tics
set yrange [0:*]
set grid
set key top left
plot "$out/scale-clients.dat" using 1:2 with linespoints lw 2 title "throughput", \
     "" using 1:3 axes x1y2 with linespoints title "p50 latency", \
     "" using 1:4 axes x1y2 with linespoints title "p99 latency"
EOF
else
	echo "plot.sh: no data for scale-clients: not drawn" >&2
fi

# 7. Scaling with live allocations: 1-client pair latency and daemon memory per allocation.
q '(map(select(.suite == "scale" and .metric == "daemon_anon_bytes_per_live")) | map(.params.live) | unique)[] as $n
   | [$n, v(.suite == "scale" and .metric == "pair_latency_p50" and .params.clients == 1 and .params.live == $n) / 1000,
      v(.suite == "scale" and .metric == "pair_throughput" and .params.clients == 8 and .params.live == $n),
      v(.suite == "scale" and .metric == "daemon_anon_bytes_per_live" and .params.live == $n),
      v(.suite == "scale" and .metric == "daemon_pss_bytes_per_live" and .params.live == $n)]
   | map(tostring) | join(" ")' >"$out/scale-live.dat" 2>/dev/null || true
if [ -s "$out/scale-live.dat" ]; then
	gnuplot <<EOF
set terminal pngcairo size 900,520 font "sans,10" noenhanced
set output "$out/scale-live.png"
set title "daxpoold vs live allocations: latency and daemon memory per allocation"
set logscale x 10
set xlabel "live allocations"
set ylabel "bytes per live allocation"
set y2label "1-client pair p50, us"
set ytics nomirror
set y2tics
set yrange [0:*]
set y2range [0:*]
set grid
set key top right
plot "$out/scale-live.dat" using 1:4 with linespoints lw 2 title "daemon RssAnon / live", \
     "" using 1:5 with linespoints title "daemon Pss / live (incl. mapped table)", \
     256 with lines dt 2 title "target 256 B", \
     "" using 1:2 axes x1y2 with linespoints title "pair p50 (us), 1 client"
EOF
else
	echo "plot.sh: no data for scale-live: not drawn" >&2
fi
ls "$out"/*.png 2>/dev/null || true
