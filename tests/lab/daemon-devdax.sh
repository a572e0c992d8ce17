#!/bin/bash
# Lab payload (payloads.list: daemon-devdax): daxpoold with the devdax backend on the lab's
# namespace, the examples and a libdaxpool client against it, and data across a daemon restart.
#
#   daemon-devdax.sh [DAXPOOLD DAXPOOLCTL DAXPOOL-DEMO LAB-SLICE-CHECK]
#
# In the environment of a lab payload (DAXPOOL_LAB_DEVICE, _BUILD, _RESULTS). The programs default
# to their places in $DAXPOOL_LAB_BUILD; payloads.list names them so lab.sh checks they are built.
#
# Steps (each leaves its output in $DAXPOOL_LAB_RESULTS):
#  1. daxpoold --foreground --device DEV --format-if-empty --socket S        daemon-1.log
#  2. daxpool-demo --socket S: PINGs, then the named slice "daxpool-demo" whose run counter
#     lives in the slice                                                      demo-1.txt
#  3. daxpoolctl --socket S --json status                                     status-1.json
#  4. lab-slice-check faults: an anonymous 64 MiB slice at the device alignment, mapped through
#     the passed fd (MAP_SYNC): minor faults 16384 / 32 / 1 at 4K / 2M / 1G     faults.json
#  5. lab-slice-check write lab-persist: a named slice with a seeded pattern  write.json
#  6. SIGTERM (exit status 0 expected), then daxpoold again *without* --format-if-empty: it must
#     find the pool (same UUID)                                               daemon-2.log
#  7. lab-slice-check verify lab-persist: reopen by name, pattern intact, then free   verify.json
#  8. daxpool-demo again: it must find its slice and count one run more       demo-2.txt
#     Also: hello (greeting stored before, read back after the restart) and plog (200 acked
#     records before, plog-check after): the examples of libdaxpool on real device-dax.
#  9. daxpoolctl --json status (status-2.json); lab-slice-check free daxpool-demo (the payload
#     leaves an empty pool); SIGTERM
# result.json: {ok, device, align, steps: {NAME: {ok, ...}}, status, faults, persistence,
# demo: {runs_before, runs_after}, errors: [...]}.
# Exit status 0 only if every step passed.
set -uo pipefail

DEV=${DAXPOOL_LAB_DEVICE:?no DAXPOOL_LAB_DEVICE}
BUILD=${DAXPOOL_LAB_BUILD:?no DAXPOOL_LAB_BUILD}
OUT=${DAXPOOL_LAB_RESULTS:-$PWD}
DAXPOOLD=${1:-$BUILD/daemon/daxpoold}
CTL=${2:-$BUILD/cli/daxpoolctl}
DEMO=${3:-$BUILD/examples/daxpool-demo}
CHECK=${4:-$BUILD/tests/lab/lab-slice-check}
HELLO=$BUILD/examples/hello
PLOG=$BUILD/examples/plog
PLOG_CHECK=$BUILD/examples/plog-check
for p in "$DAXPOOLD" "$CTL" "$DEMO" "$CHECK" "$HELLO" "$PLOG" "$PLOG_CHECK"; do
	[ -x "$p" ] || { echo "daemon-devdax: $p is not built" >&2; exit 2; }
done
RUNDIR=/run/daxpool-lab-daemon.$$
SOCK=$RUNDIR/s.sock
START_TIMEOUT_S=${DAXPOOL_LAB_DAEMON_START_TIMEOUT:-60}
SEED=$(( (RANDOM << 30) ^ (RANDOM << 15) ^ RANDOM ^ $$ ))

errors=()
steps=()
daemon_pid=""

us() { printf '%s' "${EPOCHREALTIME/./}"; }
secs() { local d=$(($2 - $1)); printf '%d.%03d' $((d / 1000000)) $((d % 1000000 / 1000)); }
json_str() {
	local s=$1
	s=${s//\\/\\\\}
	s=${s//\"/\\\"}
	s=${s//$'\n'/\\n}
	s=${s//$'\r'/\\r}
	s=${s//$'\t'/\\t}
	printf '"%s"' "$s"
}
say() { printf 'daemon-devdax: %s\n' "$*"; }
err() {
	say "FAIL: $*"
	errors+=("$*")
}
# step NAME OK SECONDS [EXTRA-JSON]: one entry of result.json's "steps"
step() {
	local extra=${4:-}
	steps+=("$(json_str "$1"): {\"ok\": $2, \"seconds\": $3${extra:+, $extra}}")
}
# The file's content when it is one JSON object, else null.
json_file() {
	local f=$1 s=""
	[ -s "$f" ] && s=$(<"$f")
	if [[ "$s" == "{"*"}" ]]; then printf '%s' "$s"; else printf 'null'; fi
}
field() { # JSON-TEXT KEY -> a scalar value of a flat key (string without quotes)
	local re="\"$2\": *(\"([^\"]*)\"|[^,}]*)"
	if [[ "$1" =~ $re ]]; then
		if [ -n "${BASH_REMATCH[2]}" ]; then printf '%s' "${BASH_REMATCH[2]}"; else printf '%s' "${BASH_REMATCH[1]}"; fi
	fi
}

# Known causes of a daemon that does not start, by their message.
diagnose() { # LOG
	if grep -q 'settings of the emulated backend' "$1" 2>/dev/null; then
		printf ' [diagnosis: daemon/main.c pool_start() fills struct backend_config with the '
		printf 'emulated-only fields for every backend (.page_size = opts.page_size, 2 MiB by '
		printf 'default; .create = format_if_empty; .size), and backend_open() refuses them for '
		printf 'BACKEND_DEVDAX (backend.h: unused fields of the other kind must be zero): set '
		printf 'them only when opts.backend == BACKEND_EMULATED]'
	fi
}

# start_daemon LOG [ARGS...]: starts daxpoold, waits for its socket to answer daxpoolctl status.
start_daemon() {
	local log=$1 t0 i=0
	shift
	t0=$(us)
	"$DAXPOOLD" --foreground --device "$DEV" --socket "$SOCK" --log-level debug "$@" >"$log" 2>&1 &
	daemon_pid=$!
	while [ $i -lt $((START_TIMEOUT_S * 10)) ]; do
		if ! kill -0 "$daemon_pid" 2>/dev/null; then
			wait "$daemon_pid"
			local rc=$?
			daemon_pid=""
			err "daxpoold $* exited with status $rc before serving; its log: $(tail -n 5 "$log")$(diagnose "$log")"
			step "$(basename "$log" .log)" false "$(secs "$t0" "$(us)")" "\"exit\": $rc"
			return 1
		fi
		if [ -S "$SOCK" ] && "$CTL" --socket "$SOCK" status >/dev/null 2>&1; then
			say "daxpoold (pid $daemon_pid) serves $DEV after $(secs "$t0" "$(us)")s"
			step "$(basename "$log" .log)" true "$(secs "$t0" "$(us)")"
			return 0
		fi
		sleep 0.1
		i=$((i + 1))
	done
	err "daxpoold did not answer on $SOCK within ${START_TIMEOUT_S}s; its log: $(tail -n 5 "$log")"
	step "$(basename "$log" .log)" false "$(secs "$t0" "$(us)")"
	return 1
}

# stop_daemon NAME: SIGTERM, exit status 0 expected within 30 s.
stop_daemon() {
	local name=$1 t0 i=0 rc
	[ -n "$daemon_pid" ] || return 1
	t0=$(us)
	kill -TERM "$daemon_pid"
	while kill -0 "$daemon_pid" 2>/dev/null && [ $i -lt 300 ]; do
		sleep 0.1
		i=$((i + 1))
	done
	if kill -0 "$daemon_pid" 2>/dev/null; then
		kill -KILL "$daemon_pid"
		wait "$daemon_pid"
		daemon_pid=""
		err "daxpoold did not exit within 30 s of SIGTERM (killed)"
		step "$name" false "$(secs "$t0" "$(us)")"
		return 1
	fi
	wait "$daemon_pid"
	rc=$?
	daemon_pid=""
	if [ "$rc" -ne 0 ]; then
		err "daxpoold exited with status $rc after SIGTERM"
		step "$name" false "$(secs "$t0" "$(us)")" "\"exit\": $rc"
		return 1
	fi
	step "$name" true "$(secs "$t0" "$(us)")" "\"exit\": 0"
}

# run_step NAME OUTFILE CMD...: runs a command, its stdout to OUTFILE, stderr to the log.
run_step() {
	local name=$1 out=$2 t0 rc
	shift 2
	t0=$(us)
	"$@" >"$out"
	rc=$?
	step "$name" "$([ $rc -eq 0 ] && echo true || echo false)" "$(secs "$t0" "$(us)")" "\"exit\": $rc"
	[ $rc -eq 0 ] || err "$name: $(basename "$1") exited with status $rc: $(tail -n 3 "$out")"
	return $rc
}

cleanup() {
	if [ -n "$daemon_pid" ]; then
		kill -KILL "$daemon_pid" 2>/dev/null
		wait "$daemon_pid" 2>/dev/null
	fi
	rm -rf "$RUNDIR"
}
trap cleanup EXIT

mkdir -p "$RUNDIR" || exit 2
cd "$OUT" || exit 2
say "device $DEV (${DAXPOOL_LAB_ALIGN:-?}), seed $SEED"

# The run number daxpool-demo printed ("this is run N").
demo_runs() {
	local s=""
	[ -r "$1" ] && s=$(<"$1")
	[[ "$s" =~ this\ is\ run\ ([0-9]+) ]] && printf '%s' "${BASH_REMATCH[1]}"
}

uuid1="" uuid2="" demo1="" demo2=""
if start_daemon "$OUT/daemon-1.log" --format-if-empty; then
	run_step demo-1 demo-1.txt "$DEMO" --socket "$SOCK" --pings 200 && cat demo-1.txt
	demo1=$(demo_runs demo-1.txt)
	if run_step status-1 status-1.json "$CTL" --socket "$SOCK" --json status; then
		s=$(<status-1.json)
		[[ "$s" == "{"*"}"* ]] || err "daxpoolctl --json status printed no JSON object: $s"
	fi
	run_step faults faults.out "$CHECK" --socket "$SOCK" --json faults.json faults
	cat faults.out
	# The examples of libdaxpool on real device-dax: hello stores a greeting, plog
	# appends 200 acknowledged records; both are checked after the restart below.
	run_step hello-1 hello-1.txt "$HELLO" --socket "$SOCK" && cat hello-1.txt
	run_step plog plog.txt "$PLOG" --socket "$SOCK" --count 200 && tail -n 1 plog.txt
	run_step write write.out "$CHECK" --socket "$SOCK" --json write.json --seed "$SEED" write lab-persist
	cat write.out
	uuid1=$(field "$(json_file write.json)" pool_uuid)
	if stop_daemon stop-1 && start_daemon "$OUT/daemon-2.log"; then
		run_step verify verify.out "$CHECK" --socket "$SOCK" --json verify.json --seed "$SEED" verify lab-persist
		cat verify.out
		uuid2=$(field "$(json_file verify.json)" pool_uuid)
		[ -n "$uuid1" ] && [ "$uuid1" = "$uuid2" ] ||
			err "pool UUID before the restart '$uuid1', after '$uuid2'"
		run_step demo-2 demo-2.txt "$DEMO" --socket "$SOCK" --pings 20 && cat demo-2.txt
		demo2=$(demo_runs demo-2.txt)
		if [ -z "$demo1" ] || [ "$demo2" != "$((demo1 + 1))" ] || ! grep -q 'found' demo-2.txt; then
			err "daxpool-demo's run counter across the restart: run '$demo1' before, '$demo2' after (expected $((${demo1:-0} + 1)), slice found)"
		fi
		run_step hello-2 hello-2.txt "$HELLO" --socket "$SOCK" && cat hello-2.txt
		stored=$(sed -n 's/^stored: //p' hello-1.txt 2>/dev/null)
		[ -n "$stored" ] && grep -qF "read back: $stored" hello-2.txt ||
			err "hello did not read back its greeting after the restart ('$stored')"
		acked=$(sed -n 's/^ack //p' plog.txt 2>/dev/null | tail -n 1)
		if [ -n "$acked" ]; then
			run_step plog-check plog-check.txt "$PLOG_CHECK" --socket "$SOCK" --acked "$acked" && cat plog-check.txt
		else
			err "plog acknowledged no record"
		fi
		run_step free-hello free-hello.out "$CHECK" --socket "$SOCK" --json free-hello.json free hello
		run_step free-plog free-plog.out "$CHECK" --socket "$SOCK" --json free-plog.json free plog
		run_step status-2 status-2.json "$CTL" --socket "$SOCK" --json status
		run_step free-demo free-demo.out "$CHECK" --socket "$SOCK" --json free-demo.json free daxpool-demo
		stop_daemon stop-2
	fi
fi
grep -qE 'newly formatted' daemon-2.log 2>/dev/null && err "the restarted daemon formatted the device again"

ok=true
[ ${#errors[@]} -eq 0 ] || ok=false
errs=""
for e in "${errors[@]}"; do errs+="${errs:+, }$(json_str "$e")"; done
st=""
for s in "${steps[@]}"; do st+="${st:+, }$s"; done
persist_ok=false
if [ -n "$uuid1" ] && [ "$uuid1" = "$uuid2" ] &&
	[ "$(field "$(json_file write.json)" ok)" = true ] && [ "$(field "$(json_file verify.json)" ok)" = true ]; then
	persist_ok=true
fi
{
	printf '{"ok": %s, "device": %s, "align": %s, "kernel": %s,\n' "$ok" "$(json_str "$DEV")" \
		"$(json_str "${DAXPOOL_LAB_ALIGN:-}")" "$(json_str "${DAXPOOL_LAB_KERNEL:-$(uname -r)}")"
	printf ' "steps": {%s},\n' "$st"
	printf ' "status": %s,\n' "$(json_file status-1.json)"
	printf ' "faults": %s,\n' "$(json_file faults.json)"
	printf ' "persistence": {"ok": %s, "uuid_before": %s, "uuid_after": %s, "seed": %s,\n  "write": %s,\n  "verify": %s},\n' \
		"$persist_ok" "$(json_str "$uuid1")" "$(json_str "$uuid2")" "$SEED" \
		"$(json_file write.json)" "$(json_file verify.json)"
	printf ' "demo": {"runs_before": %s, "runs_after": %s},\n' "${demo1:-null}" "${demo2:-null}"
	printf ' "errors": [%s]}\n' "$errs"
} >result.json
say "$([ "$ok" = true ] && echo PASS || echo "FAILED: ${#errors[@]} error(s)")"
[ "$ok" = true ]
