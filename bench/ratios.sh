#!/bin/bash
# The table of ratios of docs/PERFORMANCE.md from daxpool-bench JSON rows: daxpool
# against its peer or the physical limit, per benchmark, with the target where it has one.
#   bench/ratios.sh RUN.json [RUN.json...]      (markdown on stdout)
# Values measured more than once across the files are averaged; missing ones print as "—".
set -euo pipefail
[ $# -ge 1 ] || { echo "usage: $0 RUN.json..." >&2; exit 2; }
cat "$@" | jq -rs '
  map(select(type == "object" and .unit != "skipped")) as $r
  | def v(c): [$r[] | select(c) | .value] | if length > 0 then add / length else null end;
    def f(x): if x == null then "—"
              elif (x | fabs) >= 100 then (x | round | tostring)
              elif (x | fabs) >= 10 then (x * 10 | round / 10 | tostring)
              else (x * 100 | round / 100 | tostring) end;
    def ratio(a; b): if a == null or b == null or b == 0 then null else a / b end;
    def met(x; ok): if x == null then "—" elif ok then "met" else "**missed**" end;
    def row(bench; what; a; au; b; bu; x; target; m):
      "| \(bench) | \(what) | \(f(a)) \(au) | \(f(b)) \(bu) | \(if x == null then "—" else f(x) + "×" end) | \(target) | \(m) |";
  "| benchmark | measurement | daxpool | peer / limit | ratio | target | |",
  "| --- | --- | ---: | ---: | ---: | --- | --- |",
  ( (1000, 100000, 1000000) as $n
    | ($n | if . >= 1000000 then "1M" elif . >= 1000 then "\(. / 1000 | floor)k" else tostring end) as $l
    | v(.suite == "alloc" and .system == "daxpool" and .metric == "alloc_throughput" and .params.live == $n) as $a
    | v(.suite == "alloc" and .system == "libpmemobj" and .metric == "alloc_throughput" and .params.live == $n) as $b
    | row("allocation"; "alloc ops/s in-process, \($l) live (vs libpmemobj)"; $a; ""; $b; ""; ratio($a; $b);
          "≥ 2×"; met(ratio($a; $b); ratio($a; $b) >= 2)),
      (v(.suite == "alloc" and .system == "daxpool" and .metric == "alloc_latency_p50" and .params.live == $n) as $a
       | v(.suite == "alloc" and .system == "libpmemobj" and .metric == "alloc_latency_p50" and .params.live == $n) as $b
       | row("allocation"; "alloc p50, \($l) live (libpmemobj / daxpool)"; $a; "ns"; $b; "ns"; ratio($b; $a); ""; "")),
      (v(.suite == "scale" and .metric == "pair_latency_p50" and .params.clients == 1 and .params.live == $n) as $a
       | (v(.suite == "alloc" and .system == "libpmemobj" and .metric == "alloc_latency_p50" and .params.live == $n) as $x
          | v(.suite == "alloc" and .system == "libpmemobj" and .metric == "free_latency_p50" and .params.live == $n) as $y
          | if $x == null or $y == null then null else $x + $y end) as $b
       | row("allocation"; "alloc+free p50 over the socket, \($l) live (vs libpmemobj in-process)"; $a; "ns"; $b; "ns";
             ratio($a; $b); "(the socket’s price)"; "")) ),
  ( v(.suite == "provision" and .system == "daxpoold" and .metric == "provision_latency" and .params.on != "emulated 4K pool file") as $a
    | v(.suite == "provision" and .system == "libndctl" and .metric == "provision_latency") as $b
    | row("provisioning"; "a mapped slice (lab, TCG): namespace per allocation / daxpoold"; $a; "ms"; $b; "ms"; ratio($b; $a);
          "≥ 1000×"; met(ratio($b; $a); ratio($b; $a) >= 1000)) ),
  ( ("4K", "2M", "1G") as $al
    | v(.suite == "touch" and .system == "daxpool/direct" and .metric == "first_touch_ratio" and .params.align == $al and .value > 0) as $x
    | row("first touch"; "1 GiB, \($al) slice: daxpool_map / direct mmap (paired median)";
          v(.suite == "touch" and .system == "daxpool" and .metric == "first_touch_1GiB" and .params.align == $al); "ms";
          v(.suite == "touch" and .system == "direct" and .metric == "first_touch_1GiB" and .params.align == $al); "ms";
          $x; "≤ 1.05×"; met($x; $x <= 1.05)) ),
  ( ("4K", "2M", "1G") as $al
    | v(.suite == "touch" and .system == "daxpool" and .metric == "fill_1GiB" and .params.align == $al) as $a
    | v(.suite == "touch" and .system == "anon-huge" and .metric == "fill_1GiB") as $b
    | row("first touch"; "memset 1 GiB, \($al) slice vs anonymous huge pages (limit)"; $a; "ms"; $b; "ms"; ratio($a; $b);
          (if $al == "1G" then "≤ 2×" else "" end); (if $al == "1G" then met(ratio($a; $b); ratio($a; $b) <= 2) else "" end)) ),
  ( ($r | map(select(.suite == "pin" and .metric == "pin_unpin_per_GiB")) | map([.system, .params.memory, .params.page]) | unique)[] as [$s, $m, $p]
    | v(.suite == "pin" and .system == $s and .metric == "pin_unpin_per_GiB" and .params.memory == $m and .params.page == $p) as $a
    | (if $m == "devdax" then v(.suite == "pin" and .system == $s and .metric == "pin_unpin_per_GiB" and .params.memory == "devdax" and .params.page == 4096)
       else v(.suite == "pin" and .system == $s and .metric == "pin_unpin_per_GiB" and .params.memory == "anon-4K") end) as $b
    | row("pinning"; "\($s) pin+unpin per GiB, \($m)\(if $m == "devdax" then " " + (if $p >= 1073741824 then "1G" elif $p >= 2097152 then "2M" else "4K" end) + " (lab, TCG; vs devdax 4K)" else " (vs anon-4K)" end)";
          $a; "ms"; $b; "ms"; ratio($a; $b); ""; "") ),
  ( ($r | map(select(.suite == "zero" and .system == "daxpoold")) | map(.params.backing) | unique)[] as $bk
    | v(.suite == "zero" and .system == "daxpoold" and .metric == "zeroing_bandwidth" and .params.backing == $bk) as $a
    | (v(.suite == "zero" and .system == "memset" and .params.backing == $bk) as $b
       | row("zeroing"; "background zeroing vs memset, \($bk)"; $a; "GB/s"; $b; "GB/s"; ratio($a; $b); ""; "")),
      (v(.suite == "zero" and .system == "pmem2_memset" and .params.backing == $bk) as $b
       | row("zeroing"; "background zeroing vs pmem2 memset in-process, \($bk)"; $a; "GB/s"; $b; "GB/s"; ratio($a; $b); ""; ""),
         (v(.suite == "zero" and .metric == "zeroing_bandwidth_per_cpu" and .params.backing == $bk) as $c
          | v(.suite == "zero" and .metric == "zero_worker_cpu_share" and .params.backing == $bk) as $sh
          | row("zeroing"; "zero worker per second of its own CPU time (it had \(if $sh == null then "?" else ($sh * 100 | round | tostring) + " %" end) of a CPU) vs pmem2 memset"; $c; "GB/s"; $b; "GB/s"; ratio($c; $b); ""; ""))) ),
  ( ($r | map(select(.suite == "scale" and .metric == "pair_throughput")) | map(.params.live) | max) as $live
    | v(.suite == "scale" and .metric == "pair_throughput" and .params.live == $live and .params.clients == 256) as $a
    | v(.suite == "scale" and .metric == "pair_throughput" and .params.live == $live and .params.clients == 1) as $b
    | row("scaling"; "alloc+free pairs/s, 256 clients vs 1 client (\($live) live)"; $a; ""; $b; ""; ratio($a; $b); ""; ""),
      (v(.suite == "scale" and .metric == "pair_latency_p99" and .params.live == $live and .params.clients == 256) as $a
       | v(.suite == "scale" and .metric == "pair_latency_p99" and .params.live == $live and .params.clients == 1) as $b
       | row("scaling"; "pair p99, 256 clients vs 1 client"; $a; "ns"; $b; "ns"; ratio($a; $b); ""; "")) ),
  ( ($r | map(select(.suite == "scale" and .metric == "daemon_anon_bytes_per_live")) | map(.params.live) | max) as $n
    | v(.suite == "scale" and .metric == "daemon_anon_bytes_per_live" and .params.live == $n) as $a
    | row("scaling"; "daemon heap per live allocation at \($n) live (vs target)"; $a; "B"; 256; "B"; ratio($a; 256);
          "≤ 256 B"; met($a; $a <= 256)) ),
  ( $r | map(select(.system == "machine")) | map("\(.suite): \(.value)–\(.params.loadavg_1m_end)") | join(", ")
    | "\nLoad average (1 min) at start–end of each suite: \(.)" )'
