#!/usr/bin/env bash
# `daxpoolctl cdi` against a real daxpoold: the spec it prints or writes passes cdi-check.py
# (the rules of the CDI version it declares, as a container engine loads it), has a device per
# named slice whose name CDI allows plus "daxpool:any", leaves out (with a warning) the slices
# CDI cannot name, filters with --name, refuses bad options with exit 2, and --output replaces
# the file atomically (0644, no temporary file left behind).
#
#   DAXPOOLD=... DAXPOOLCTL=... CDI_CHECK=... test_cdi_spec.sh
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=lib.sh
. "$here/lib.sh"

dir=$(mktemp -d /tmp/daxpool-cdi-XXXXXX)
trap 'daemon_stop "$dir" || true; rm -rf "$dir"' EXIT
daemon_start "$dir"
ctl() { "$DAXPOOLCTL" -s "$dir/daxpoold.sock" "$@"; }
fail() { echo "FAIL: $*"; exit 1; }

ctl alloc db0 --size 64K --align 4K >/dev/null
ctl alloc cache.2m --size 4K --align 4K >/dev/null
ctl alloc 'a#b' --size 4K --align 4K >/dev/null # '#' is a slice name, not a CDI device name
ctl alloc any --size 4K --align 4K >/dev/null   # no clash with the socket-only device

ctl cdi >"$dir/spec.json" 2>"$dir/err" || fail "daxpoolctl cdi exited $?"
"$PYTHON" "$CDI_CHECK" "$dir/spec.json" --devices 'daxpool:any,db0,cache.2m,any' \
	--host-socket "$dir/daxpoold.sock" || fail "the printed spec"
grep -q 'slice "a#b" left out' "$dir/err" || fail "no warning for a#b: $(cat "$dir/err")"

# The CDI project's own JSON schema, of the library version Debian ships (0.5.x), where installed.
schema=/usr/share/gocode/src/github.com/container-orchestrated-devices/container-device-interface/schema
if [ -r "$schema/schema.json" ]; then
	"$PYTHON" "$CDI_CHECK" "$dir/spec.json" --schema "$schema" >/dev/null || fail "the CDI schema"
	echo "CDI schema ($schema): ok"
else
	echo "CDI schema check not run: $schema missing (scripts/install-deps.sh containers)"
fi

ctl cdi --name 'db*' --kind example.com/pmem --container-socket /daxpool.sock >"$dir/f.json" 2>/dev/null
"$PYTHON" "$CDI_CHECK" "$dir/f.json" --devices 'daxpool:any,db0' || fail "--name/--kind"
"$PYTHON" - "$dir/f.json" <<'EOF' || fail "--kind/--container-socket not applied"
import json, sys
s = json.load(open(sys.argv[1]))
assert s["kind"] == "example.com/pmem", s["kind"]
assert s["containerEdits"]["mounts"][0]["containerPath"] == "/daxpool.sock"
assert "DAXPOOL_SOCKET=/daxpool.sock" in s["containerEdits"]["env"]
EOF

# --output: written whole, 0644, replacing what was there, nothing else left in the directory.
mkdir "$dir/cdi"
echo stale >"$dir/cdi/daxpool.json"
ctl --json cdi --output "$dir/cdi/daxpool.json" >"$dir/out.json" 2>/dev/null
"$PYTHON" "$CDI_CHECK" "$dir/cdi/daxpool.json" --devices 'daxpool:any,db0,cache.2m,any' || fail "--output"
[ "$(stat -c %a "$dir/cdi/daxpool.json")" = 644 ] || fail "mode $(stat -c %a "$dir/cdi/daxpool.json")"
[ "$(ls "$dir/cdi")" = daxpool.json ] || fail "left behind: $(ls "$dir/cdi")"
"$PYTHON" -c 'import json,sys; o=json.load(open(sys.argv[1])); assert o["devices"] == 4 and o["skipped"] == 1, o' \
	"$dir/out.json" || fail "--json summary"

# Bad arguments: exit 2, nothing written.
for bad in "--kind daxpool.io" "--kind 9x.io/slice" "--kind daxpool.io/sl.ice" \
	"--container-socket relative.sock" "extra-operand"; do
	# shellcheck disable=SC2086
	rc=0; ctl cdi $bad >/dev/null 2>&1 || rc=$?
	[ "$rc" -eq 2 ] || fail "daxpoolctl cdi $bad: exit $rc, expected 2"
done
# The daemon unreachable: exit 3.
rc=0; "$DAXPOOLCTL" -s "$dir/none.sock" cdi >/dev/null 2>&1 || rc=$?
[ "$rc" -eq 3 ] || fail "no daemon: exit $rc, expected 3"

daemon_stop "$dir" || fail "daemon stop"
echo "test_cdi_spec: ok"
