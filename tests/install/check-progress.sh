#!/usr/bin/env bash
# daxpoolctl format and fsck show a progress line on a terminal, and nothing extra otherwise:
#  - under a pseudo-terminal (script(1)) format draws "format PATH: N% (... metadata), RATE/s,
#    ETA M:SS" on stderr, erases it ("\r\e[K") and ends with its usual "formatted PATH";
#  - fsck on a terminal shows "fsck PATH: ..." the same way;
#  - with stdout and stderr not a terminal, or with --json, the output is exactly what it was.
# DAXPOOL_PROGRESS_DELAY_MS=0 shows the line at once (the default waits 500 ms).
#
#   check-progress.sh DAXPOOLCTL
set -euo pipefail
ctl=${1:?usage: check-progress.sh DAXPOOLCTL}
command -v script >/dev/null || { echo "skipped: script(1) not installed (bsdutils)"; exit 77; }
tmp=$(mktemp -d /tmp/daxpool-progress.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
fail() { echo "check-progress: $*" >&2; exit 1; }
pool=$tmp/pool
truncate -s 16G "$pool"

# On a terminal: the progress line, then the result.
DAXPOOL_PROGRESS_DELAY_MS=0 script -qec "'$ctl' format '$pool'" /dev/null >"$tmp/tty.out"
grep -aqE "format $pool: [0-9]+% \([0-9.]+ [KMG]iB of [0-9.]+ [KMG]iB metadata\), [0-9.]+ [KMG]?i?B/s, ETA [0-9]+:[0-9]{2}" "$tmp/tty.out" ||
	fail "no progress line from format on a terminal:"$'\n'"$(cat -v "$tmp/tty.out")"
tr '\r' '\n' <"$tmp/tty.out" | grep -aq "^$(printf '\033')\[Kformatted $pool" ||
	fail "format did not erase its progress line before the result:"$'\n'"$(cat -v "$tmp/tty.out")"
DAXPOOL_PROGRESS_DELAY_MS=0 script -qec "'$ctl' fsck '$pool'" /dev/null >"$tmp/fsck.out" || true
grep -aqE "fsck $pool: " "$tmp/fsck.out" || fail "no progress line from fsck on a terminal:"$'\n'"$(cat -v "$tmp/fsck.out")"
grep -aq "$pool: clean" "$tmp/fsck.out" || fail "fsck result missing:"$'\n'"$(cat -v "$tmp/fsck.out")"

# Not a terminal: exactly the result, nothing on stderr.
rm -f "$pool"; truncate -s 16G "$pool"
DAXPOOL_PROGRESS_DELAY_MS=0 "$ctl" format "$pool" >"$tmp/out" 2>"$tmp/err"
[ "$(cat "$tmp/out")" = "formatted $pool" ] && [ ! -s "$tmp/err" ] ||
	fail "format without a terminal printed more than its result: $(cat -v "$tmp/out" "$tmp/err")"
# --json on a terminal: the JSON only.
DAXPOOL_PROGRESS_DELAY_MS=0 script -qec "'$ctl' --json fsck '$pool'" /dev/null >"$tmp/json.out" || true
if grep -aq -e 'ETA' -e $'\r\033' "$tmp/json.out"; then fail "--json printed a progress line: $(cat -v "$tmp/json.out")"; fi
grep -aq '"result"' "$tmp/json.out" || fail "--json fsck printed no JSON: $(cat -v "$tmp/json.out")"
echo "check-progress: progress lines on a terminal, none without one or with --json"
