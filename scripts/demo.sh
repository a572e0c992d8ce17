#!/usr/bin/env bash
# The README's main job: install what is missing, build, start daxpoold on the emulated backend
# (a hugetlbfs file with 2M pages; a plain 4K file where huge pages cannot be had), run the demo
# client and daxpoolctl against it, and stop the daemon cleanly.
set -euo pipefail
top=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build=${DAXPOOL_BUILD_DIR:-$top/build}
state=${DAXPOOL_DEMO_DIR:-/tmp/daxpool-demo}
size=${DAXPOOL_DEMO_SIZE:-64M}

# The default build's packages: build.list (daemon, library, CLI, tests) and pool.list
# (libpmemobj for daxpool-bench's comparison). tests/install/fresh-root.sh proves on a fresh
# Debian 12 root that these are enough.
"$top/scripts/install-deps.sh" build pool
mkdir -p "$build"
cmake -S "$top" -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo >"$build/configure.log" 2>&1 ||
	{ cat "$build/configure.log"; echo "demo: cmake configuration failed" >&2; exit 1; }
# Optional parts left out for lack of a package say so in one line each.
grep -E '^-- [^ ]+ (skipped|not found):' "$build/configure.log" | sed 's/^-- /demo: /' || true
cmake --build "$build" -j "$(nproc)" >"$build/build.log" 2>&1 ||
	{ grep -E 'error|Error' "$build/build.log" | head -40; echo "demo: build failed (log: $build/build.log)" >&2; exit 1; }
echo "demo: built daxpoold, libdaxpool and daxpoolctl in $build"

rm -rf "$state"
mkdir -p "$state"
sock=$state/daxpoold.sock
hugemnt=$state/hugepages-2M
daemon_pid=""
cleanup() {
	if [ -n "$daemon_pid" ] && kill -0 "$daemon_pid" 2>/dev/null; then kill "$daemon_pid"; wait "$daemon_pid" || true; fi
	"$top/scripts/hugepages.sh" release 2M "$hugemnt" 2>/dev/null || true
}
trap cleanup EXIT

pages=$(( $(numfmt --from=iec "$size") / (2 * 1024 * 1024) ))
if why=$("$top/scripts/hugepages.sh" reserve 2M "$pages" "$hugemnt"); then
	backend=(--emulate "$hugemnt/pool" --size "$size" --page 2M --format-if-empty)
	echo "demo: emulated backend on hugetlbfs ($pages x 2M pages at $hugemnt)"
else
	backend=(--emulate "$state/pool-4k" --size "$size" --page 4K --format-if-empty)
	echo "demo: $why; falling back to a plain file with 4K pages"
fi

start_daemon() {
	"$build/daemon/daxpoold" --foreground --socket "$sock" "${backend[@]}" &
	daemon_pid=$!
	for _ in $(seq 100); do
		"$build/cli/daxpoolctl" --socket "$sock" status >/dev/null 2>&1 && return 0
		kill -0 "$daemon_pid" 2>/dev/null || { echo "demo: daxpoold exited during start-up" >&2; exit 1; }
		sleep 0.1
	done
	echo "demo: daxpoold did not answer within 10 s" >&2
	exit 1
}
start_daemon

echo "--- daxpool-demo (first run)"
"$build/examples/daxpool-demo" --socket "$sock" --pings 10000
echo "--- restarting daxpoold: the named slice and its data survive"
kill -TERM "$daemon_pid"; wait "$daemon_pid" || { echo "demo: daxpoold did not stop cleanly" >&2; exit 1; }
start_daemon
echo "--- daxpool-demo (second run)"
"$build/examples/daxpool-demo" --socket "$sock" --pings 1000
echo "--- daxpoolctl status"
"$build/cli/daxpoolctl" --socket "$sock" status
echo "--- daxpoolctl --json status"
"$build/cli/daxpoolctl" --socket "$sock" --json status

kill -TERM "$daemon_pid"
status=0
wait "$daemon_pid" || status=$?
daemon_pid=""
[ "$status" -eq 0 ] || { echo "demo: daxpoold exited with status $status" >&2; exit 1; }
[ ! -e "$sock" ] || { echo "demo: daxpoold left its socket behind" >&2; exit 1; }
echo "demo: daxpoold stopped cleanly (exit 0, socket removed)"
