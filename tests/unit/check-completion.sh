#!/usr/bin/env bash
# daxpoolctl's bash completion: slice names are looked up on the socket the command line names,
# the bench suites are exactly daxpool-bench's, and format offers --records.
# Usage: check-completion.sh COMPLETION_FILE BENCH_MAIN_C (daxpool-bench's table of suites)
set -euo pipefail
comp=$1 bench_main=$2
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail() {
	echo "check-completion: $*" >&2
	exit 1
}

# shellcheck source=/dev/null
source "$comp"
# A stand-in daxpoolctl: records its arguments, prints a list as json-c does (either spacing).
daxpoolctl() {
	printf '%s\n' "$*" >"$tmp/args"
	printf '{ "slices": [ { "name": "alpha", "size": 4096 }, {"name":"beta","size":1}, { "name": "al\\"x" } ] }\n'
}
complete_words() {
	COMP_WORDS=("$@")
	COMP_CWORD=$((${#COMP_WORDS[@]} - 1))
	COMPREPLY=()
	_daxpoolctl
	printf '%s\n' "${COMPREPLY[@]}" | sort | tr '\n' ' '
}

got=$(complete_words daxpoolctl --socket /x/s show al)
[ "$got" = "alpha " ] || fail "show al after --socket: got '$got'"
[ "$(cat "$tmp/args")" = "--socket /x/s --json list" ] || fail "list was called as '$(cat "$tmp/args")'"
got=$(complete_words daxpoolctl -s /y/s free "")
[ "$got" = "alpha beta " ] || fail "free: got '$got'"
[ "$(cat "$tmp/args")" = "--socket /y/s --json list" ] || fail "list was called as '$(cat "$tmp/args")'"
got=$(complete_words daxpoolctl show "")
[ "$(cat "$tmp/args")" = "--json list" ] || fail "without --socket, list was called as '$(cat "$tmp/args")'"

want=$(grep -o '{"[a-z]*", suite_' "$bench_main" | sed 's/{"\([a-z]*\)".*/\1/' | sort | tr '\n' ' ')
[ -n "$want" ] || fail "no suites found in $bench_main"
got=$(complete_words daxpoolctl bench "" | tr ' ' '\n' | grep -v -e '^--' -e '^$' | sort | tr '\n' ' ')
[ "$got" = "$want" ] || fail "bench suites: completion has '$got', daxpool-bench has '$want'"
got=$(complete_words daxpoolctl bench scale --q)
[ "$got" = "--quick " ] || fail "bench scale --q: got '$got'"
got=$(complete_words daxpoolctl format --rec)
[ "$got" = "--records " ] || fail "format --rec: got '$got'"
echo "check-completion: ok"
