#!/usr/bin/env bash
# daxpool-bench draws, on a terminal (stderr), a status line after every row ("SUITE: N rows in
# T s; last: SYSTEM METRIC", every suite) and a progress line with rate and ETA for the scale
# suite's fill; nothing extra without a terminal: stdout carries only the JSON rows either way.
#   check-progress-bench.sh DAXPOOL_BENCH
set -euo pipefail
bench=${1:?usage: check-progress-bench.sh DAXPOOL_BENCH}
command -v script >/dev/null || { echo "skipped: script(1) not installed (bsdutils)"; exit 77; }
tmp=$(mktemp -d /tmp/daxpool-progress-bench.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
fail() { echo "check-progress-bench: $*" >&2; exit 1; }

DAXPOOL_PROGRESS_DELAY_MS=0 script -qec "'$bench' scale --dir '$tmp' --counts 20000 --quick 2>'$tmp/tty.err' >'$tmp/tty.out'" /dev/null >/dev/null
# stderr was not the terminal there (redirected): no line. Now with stderr on the terminal:
DAXPOOL_PROGRESS_DELAY_MS=0 script -qec "'$bench' scale --dir '$tmp' --counts 20000 --quick >'$tmp/rows'" /dev/null >"$tmp/term"
grep -aqE "scale: fill: [0-9]+/20000 allocs \([0-9]+%\), [0-9]+ allocs/s, ETA [0-9]+:[0-9]{2}" "$tmp/term" ||
	fail "no progress line on a terminal:"$'\n'"$(cat -v "$tmp/term" | head -c 2000)"
tr '\r' '\n' <"$tmp/term" | grep -aq "^$(printf '\033')\[K" || fail "the progress line was not erased"
grep -aqE "scale: [0-9]+ rows in [0-9]+ s; last: [a-z]+ [a-z_0-9]+" "$tmp/term" ||
	fail "no status line after the rows:"$'\n'"$(cat -v "$tmp/term" | head -c 2000)"
if grep -aq -e 'ETA' -e $'\r' "$tmp/rows" "$tmp/tty.out" "$tmp/tty.err"; then
	fail "a progress line reached stdout or a stderr that is not a terminal"
fi
grep -q '"metric":"fill_throughput"' "$tmp/rows" || fail "no JSON rows on stdout"
jq -e . "$tmp/rows" >/dev/null || fail "stdout is not JSON rows only"
echo "check-progress-bench: a progress line on a terminal, none without one"
