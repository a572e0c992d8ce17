#!/bin/sh
# Medians over several runs of `daxpool-bench service` (one JSON-lines file per run), one row per
# system/metric/clients/size: the numbers docs/PERFORMANCE.md tabulates.
# Usage: bench/service-median.sh run1.json run2.json run3.json
set -eu
[ $# -ge 1 ] || { echo "usage: $0 RUN.json..." >&2; exit 2; }
cat "$@" | jq -s -r '
  map(select(.suite == "service"))
  | group_by([.system, .metric, (.params.clients // 0), (.params.size // 0)])
  | map({k: .[0], v: (map(.value) | sort | if length % 2 == 1 then .[(length - 1) / 2] else (.[length / 2 - 1] + .[length / 2]) / 2 end), n: length,
         lo: (map(.value) | min), hi: (map(.value) | max)})
  | .[] | [.k.system, .k.metric, (.k.params.clients // "-"), (.k.params.size // "-"),
           .v, .lo, .hi, .n, .k.unit] | @tsv'
