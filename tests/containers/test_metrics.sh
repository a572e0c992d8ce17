#!/usr/bin/env bash
# daxpoold's metrics read by the real consumers: the daemon writes its Prometheus textfile
# (metrics_file, rewritten every second here), Debian's prometheus-node-exporter serves it on
# loopback with only its textfile collector, and its /metrics shows daxpool's series with the
# values this test caused (grants, frees, errors by errno, slices by owner, the latency
# histogram); `promtool check metrics` accepts the file and `daxpoolctl stats --prometheus`,
# whose series are a subset of the file's. Readers never see a partial file (tmp + rename), and
# a daemon that stopped leaves no stale file behind.
#
# Exits 77 (skipped), saying why, without promtool or prometheus-node-exporter.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=lib.sh
. "$here/lib.sh"

exporter=$(command -v prometheus-node-exporter || true)
command -v promtool >/dev/null || { echo "skipped: promtool not installed (package prometheus; scripts/install-deps.sh containers)"; exit 77; }
[ -n "$exporter" ] || { echo "skipped: prometheus-node-exporter not installed (scripts/install-deps.sh containers)"; exit 77; }
command -v curl >/dev/null || { echo "skipped: curl not installed"; exit 77; }

dir=$(mktemp -d /tmp/daxpool-metrics-XXXXXX)
exporter_pid=
cleanup() {
	[ -z "$exporter_pid" ] || { kill "$exporter_pid" 2>/dev/null; wait "$exporter_pid" 2>/dev/null || true; }
	daemon_stop "$dir" || true
	rm -rf "$dir"
}
trap cleanup EXIT
fail() { echo "FAIL: $*"; exit 1; }
prom=$dir/textfile/daxpoold.prom
mkdir "$dir/textfile"
cat >"$dir/config.json" <<EOF
{ "metrics_file": "$prom", "metrics_interval_s": 1, "limits": { "hello_timeout_ms": 300 } }
EOF
daemon_start "$dir" --config "$dir/config.json"
ctl() { "$DAXPOOLCTL" -s "$dir/daxpoold.sock" "$@"; }

# Work with known outcomes: 3 grants by ALLOC (one for uid 4242), 1 EEXIST, 1 FREE, 1 ENOENT,
# 1 protocol error.
ctl alloc m-a --size 64K --align 4K >/dev/null
ctl alloc m-b --size 4K --align 4K >/dev/null
ctl alloc m-c --size 8K --align 4K --owner 4242:4242 >/dev/null
ctl alloc m-a --size 4K --align 4K >/dev/null 2>&1 && fail "a second m-a was allocated"
ctl free m-b >/dev/null
ctl free m-none >/dev/null 2>&1 && fail "freed a slice that does not exist"
# One malformed frame (4 bytes, no header): a protocol error, answered before dispatch.
"$PYTHON" -c 'import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
s.connect(sys.argv[1]); s.send(b"junk"); s.recv(4096)' "$dir/daxpoold.sock"
# One connection that never sends HELLO: closed after limits.hello_timeout_ms (300 ms).
"$PYTHON" -c 'import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
s.connect(sys.argv[1]); s.settimeout(5); s.recv(4096)' "$dir/daxpoold.sock"

# Wait for a rewrite that saw all of it (interval 1 s).
want='daxpool_request_errors_total{type="alloc",error="EEXIST"} 1'
for ((i = 0; i < 50; i++)); do
	grep -qF "$want" "$prom" 2>/dev/null && break
	sleep 0.1
done
grep -qF "$want" "$prom" || { cat "$prom" 2>/dev/null; fail "the metrics file never counted the EEXIST"; }
want='daxpool_hello_timeouts_total 1'
for ((i = 0; i < 50; i++)); do
	grep -qF "$want" "$prom" 2>/dev/null && break
	sleep 0.1
done
grep -qF "$want" "$prom" || { cat "$prom" 2>/dev/null; fail "the metrics file never counted the HELLO timeout"; }

out=$(promtool check metrics <"$prom" 2>&1) || fail "promtool check metrics (file): $out"
[ -z "$out" ] || fail "promtool check metrics (file) complained: $out"
ctl stats --prometheus >"$dir/ctl.prom"
out=$(promtool check metrics <"$dir/ctl.prom" 2>&1) || fail "promtool check metrics (stats --prometheus): $out"
[ -z "$out" ] || fail "promtool check metrics (stats --prometheus) complained: $out"
# Same names as the daemon's file: a textfile from either reads alike.
missing=$(comm -23 <(grep '^# TYPE' "$dir/ctl.prom" | sort) <(grep '^# TYPE' "$prom" | sort))
[ -z "$missing" ] || fail "stats --prometheus has series the daemon's file has not (or typed otherwise): $missing"

# node_exporter on a free loopback port, the textfile collector alone.
port=$("$PYTHON" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
"$exporter" --web.listen-address="127.0.0.1:$port" --collector.disable-defaults --collector.textfile \
	--collector.textfile.directory="$dir/textfile" >"$dir/exporter.log" 2>&1 &
exporter_pid=$!
for ((i = 0; i < 100; i++)); do
	curl -sf "http://127.0.0.1:$port/metrics" -o "$dir/scrape" && break
	kill -0 "$exporter_pid" 2>/dev/null || { cat "$dir/exporter.log"; fail "node_exporter exited"; }
	sleep 0.1
done
[ -s "$dir/scrape" ] || { cat "$dir/exporter.log"; fail "node_exporter did not answer on 127.0.0.1:$port"; }
echo "node_exporter $("$exporter" --version 2>&1 | head -1 | awk '{print $3}') on 127.0.0.1:$port"

expect() { grep -qF "$1" "$dir/scrape" || { grep '^daxpool' "$dir/scrape" | head -80; fail "/metrics lacks: $1"; }; }
expect 'node_textfile_scrape_error 0'
expect 'daxpool_grants_total{request="alloc"} 3'
expect 'daxpool_frees_total 1'
expect 'daxpool_request_errors_total{error="EEXIST",type="alloc"} 1'
expect 'daxpool_request_errors_total{error="ENOENT",type="open"} 1'
expect 'daxpool_requests_total{result="ok",type="alloc"} 3'
expect 'daxpool_owner_slices{uid="4242"} 1'
expect 'daxpool_protocol_errors_total 1'
expect 'daxpool_owner_bytes{uid="4242"} 8192'
expect 'daxpool_owner_slices{uid="0"} 1'
expect 'daxpool_request_duration_seconds_count{type="alloc"} 4'
expect 'daxpool_request_duration_seconds_bucket{type="alloc",le="+Inf"} 4'
expect 'daxpool_info{backend="emulated"'
expect 'daxpool_pool_size_bytes 1.6777216e+07' # node_exporter prints floats
expect 'daxpool_zeroed_bytes_total'
expect 'daxpool_hello_timeouts_total 1'
expect 'daxpool_limit_refusals_total{limit="connections_per_uid"} 0'
series=$(grep -c '^daxpool_' "$dir/scrape")
echo "node_exporter /metrics: $series daxpool series"
grep '^daxpool_' "$dir/scrape" >"$dir/scraped.prom"
out=$(grep -E '^(# (HELP|TYPE) )?daxpool_' "$dir/scrape" | promtool check metrics 2>&1) ||
	fail "promtool check metrics (scraped daxpool series): $out"

# Rewrites are atomic: every read of the file, taken while the daemon rewrites it each second,
# is whole (its last family present), and no temporary *.prom is ever visible to the collector.
end=$((SECONDS + 3))
reads=0
while [ $SECONDS -lt $end ]; do
	tail -n 1 "$prom" | grep -q '^daxpool_metrics_write_failures_total 0$' || fail "a partial file: $(tail -n 2 "$prom")"
	ls "$dir/textfile" | grep -v '^daxpoold\.prom$' | grep -q '\.prom$' && fail "a second .prom in the directory"
	reads=$((reads + 1))
done
echo "$reads whole reads while the daemon rewrote the file"

# A stopped daemon takes its file away: node_exporter shows no stale daxpool series.
daemon_stop "$dir" || fail "daemon stop"
[ ! -e "$prom" ] || fail "the metrics file outlived the daemon"
curl -sf "http://127.0.0.1:$port/metrics" -o "$dir/scrape2"
! grep -q '^daxpool_' "$dir/scrape2" || fail "daxpool series after the daemon stopped"
echo "test_metrics: ok"
