#!/bin/bash
# Lab payload (payloads.list: test-slices): the integration tests of tests/integration/test_slices.c
# on the lab's device-dax namespace (DAXPOOL_TEST_DEVICE: test_slices starts daxpoold with the
# devdax backend on it; the daemon formats the device if it holds no pool).
#
#   test-slices.sh [TEST_SLICES]      (default $DAXPOOL_LAB_BUILD/tests/integration/test_slices)
#
# result.json: {ok, device, align, exit, seconds, passed, failed, tests: {NAME: "ok"|"failed"},
# failures: [cmocka's failure lines]}. Exit status: test_slices's.
set -uo pipefail
DEV=${DAXPOOL_LAB_DEVICE:?no DAXPOOL_LAB_DEVICE}
BIN=${1:-${DAXPOOL_LAB_BUILD:?no DAXPOOL_LAB_BUILD}/tests/integration/test_slices}
OUT=${DAXPOOL_LAB_RESULTS:-$PWD}
[ -x "$BIN" ] || { echo "test-slices: $BIN is not built" >&2; exit 2; }

json_str() {
	local s=$1
	s=${s//\\/\\\\}
	s=${s//\"/\\\"}
	s=${s//$'\n'/\\n}
	s=${s//$'\r'/\\r}
	s=${s//$'\t'/\\t}
	printf '"%s"' "$s"
}

# The harness (tests/integration/harness.c) waits 10 s for the daemon's READY=1 unless
# DAXPOOL_TEST_READY_TIMEOUT_S says otherwise. In the guest every program and library loads over
# 9p under TCG: daxpoold took 1-2 s to get ready on an idle machine and 10 s and more on a loaded
# one.
t0=${EPOCHREALTIME/./}
DAXPOOL_TEST_READY_TIMEOUT_S=${DAXPOOL_TEST_READY_TIMEOUT_S:-60} DAXPOOL_TEST_DEVICE=$DEV "$BIN" 2>&1 |
	tee "$OUT/test_slices.log"
rc=${PIPESTATUS[0]}
t1=${EPOCHREALTIME/./}
d=$((t1 - t0))

tests="" fails="" passed=0 failed=0
while IFS= read -r line; do
	if [[ "$line" =~ ^\[\ +OK\ +\]\ ([A-Za-z0-9_]+)$ ]]; then
		tests+="${tests:+, }$(json_str "${BASH_REMATCH[1]}"): \"ok\""
		passed=$((passed + 1))
	elif [[ "$line" =~ ^\[\ +SKIPPED\ +\]\ ([A-Za-z0-9_]+)$ ]]; then
		# A test that only makes sense on the emulated backend (it printed why).
		tests+="${tests:+, }$(json_str "${BASH_REMATCH[1]}"): \"skipped\""
	elif [[ "$line" =~ ^\[\ +FAILED\ +\]\ ([A-Za-z0-9_]+)$ ]]; then
		tests+="${tests:+, }$(json_str "${BASH_REMATCH[1]}"): \"failed\""
		failed=$((failed + 1))
	elif [[ "$line" =~ ^\[\ +(ERROR|LINE)\ +\] ]] || [[ "$line" == *"Failure!"* ]] ||
		[[ "$line" == harness:* ]] || [[ "$line" == *" err: "* ]]; then
		fails+="${fails:+, }$(json_str "$line")"
	fi
done <"$OUT/test_slices.log"
ok=false
[ "$rc" -eq 0 ] && [ "$failed" -eq 0 ] && [ "$passed" -gt 0 ] && ok=true
printf '{"ok": %s, "device": %s, "align": %s, "exit": %d, "seconds": %d.%03d, "passed": %d, "failed": %d,\n "tests": {%s},\n "failures": [%s]}\n' \
	"$ok" "$(json_str "$DEV")" "$(json_str "${DAXPOOL_LAB_ALIGN:-}")" "$rc" $((d / 1000000)) \
	$((d % 1000000 / 1000)) "$passed" "$failed" "$tests" "$fails" >"$OUT/result.json"
exit "$rc"
