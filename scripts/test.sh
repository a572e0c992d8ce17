#!/usr/bin/env bash
# The README's test command, and what CI runs (.ci/run): install what is missing, then
#   1. a release build with every ctest label (unit, integration, crash, lab);
#   2. an AddressSanitizer+UndefinedBehaviorSanitizer build running unit, crash and integration;
#   3. the integration tests again with daxpoold under valgrind memcheck (errors and leaks fail);
#   4. the libFuzzer targets, each for a bounded time (clang build);
#   5. the README's run command on a machine with nothing installed: ./scripts/demo.sh in a fresh
#      Debian 12 root (tests/install/fresh-root.sh; about 1-2 min with its cache, docs/INSTALL.md);
#   6. the Debian packages of debian/ built, checked by lintian, installed into a fresh root,
#      started and purged (tests/install/check-debian.sh).
# Ends with one line "test.sh: N passed, N failed".
set -uo pipefail
top=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build=${DAXPOOL_BUILD_DIR:-$top/build}
asan=${DAXPOOL_ASAN_BUILD_DIR:-$top/build-asan}
jobs=$(nproc)
passed=0 failed=0

"$top/scripts/install-deps.sh" || { echo "test.sh: installing dependencies failed"; exit 1; }

# Runs ctest and adds its counts to the totals; a run that executes no test counts as a failure.
run_ctest() {
	local name=$1; shift
	local log
	log=$(mktemp)
	echo "=== $name: ctest $*"
	ctest --output-on-failure "$@" 2>&1 | tee "$log"
	local line total nfail
	line=$(grep -E 'tests passed, [0-9]+ tests? failed out of [0-9]+' "$log" | tail -1)
	# This command installs everything every test needs: a test that skips here (exit 77,
	# "not run") means an install step is missing or a facility is broken, never "fine".
	local skipped
	skipped=$(grep -cE '\*\*\*Skipped|Not Run' "$log" || true)
	if [ "$skipped" -gt 0 ]; then
		echo "test.sh: $name: $skipped test(s) skipped; here that is a failure:"
		grep -E '\*\*\*Skipped|Not Run' "$log" | sed 's/^/    /'
		failed=$((failed + skipped))
	fi
	rm -f "$log"
	if [ -z "$line" ]; then
		echo "test.sh: $name ran no test"
		failed=$((failed + 1))
		return
	fi
	nfail=$(sed -E 's/.* ([0-9]+) tests? failed out of ([0-9]+).*/\1/' <<<"$line")
	total=$(sed -E 's/.* failed out of ([0-9]+).*/\1/' <<<"$line")
	passed=$((passed + total - nfail))
	failed=$((failed + nfail))
}

build_tree() {
	local dir=$1; shift
	cmake -S "$top" -B "$dir" "$@" >/dev/null && cmake --build "$dir" -j "$jobs" >/dev/null ||
		{ echo "test.sh: build in $dir failed:"; cmake --build "$dir" 2>&1 | grep -E 'error|Error' | head -40; return 1; }
}

echo "=== release build ($build)"
if build_tree "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo; then
	run_ctest "unit+crash+integration" --test-dir "$build" -L 'unit|crash|integration' -j "$jobs"
	DAXPOOL_TEST_DAEMON_WRAPPER="valgrind -q --error-exitcode=99 --leak-check=full --show-leak-kinds=definite,indirect --errors-for-leak-kinds=definite,indirect" \
		run_ctest "integration under valgrind" --test-dir "$build" -L integration
	# The lab boots virtual machines one at a time; it is never skipped (see docs/LAB.md).
	run_ctest "lab" --test-dir "$build" -L lab
else
	failed=$((failed + 1))
fi

echo "=== ASan+UBSan build ($asan)"
if build_tree "$asan" -DCMAKE_BUILD_TYPE=Debug -DDAXPOOL_SANITIZE=ON; then
	ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
		run_ctest "sanitizers" --test-dir "$asan" -L 'unit|crash|integration' -j "$jobs"
else
	failed=$((failed + 1))
fi

# libFuzzer targets (tests/fuzz, docs/RELIABILITY.md): a clang tree of its own; only the fuzz
# targets are built there, and each runs for DAXPOOL_FUZZ_SECONDS (20 s) over its corpus.
fuzz=${DAXPOOL_FUZZ_BUILD_DIR:-$top/build-fuzz}
echo "=== libFuzzer build ($fuzz)"
if cmake -S "$top" -B "$fuzz" -DCMAKE_C_COMPILER=clang -DDAXPOOL_FUZZ=ON >/dev/null &&
	cmake --build "$fuzz" -j "$jobs" --target fuzz-targets >/dev/null; then
	run_ctest "fuzz" --test-dir "$fuzz" -L fuzz -j "$jobs"
else
	echo "test.sh: fuzz build in $fuzz failed"
	failed=$((failed + 1))
fi

# Steps that are one script each count as one test; a skip (exit 77) counts as a failure here,
# because CI must not pass without having run them.
run_step() {
	local name=$1 rc=0; shift
	echo "=== $name: $*"
	local t0=$SECONDS
	"$@" || rc=$?
	if [ "$rc" -eq 0 ]; then
		passed=$((passed + 1))
		echo "test.sh: $name passed ($((SECONDS - t0)) s)"
	else
		failed=$((failed + 1))
		echo "test.sh: $name failed (exit $rc$([ "$rc" -eq 77 ] && echo ", skipped: not allowed here"), $((SECONDS - t0)) s)"
	fi
}
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
run_step "fresh Debian 12 root" $sudo "$top/tests/install/fresh-root.sh" "$top"
# The Debian packages: built, lintian-clean, installed into a fresh root, served, purged clean.
run_step "Debian packages" $sudo "$top/tests/install/check-debian.sh" "$top"

echo "test.sh: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
