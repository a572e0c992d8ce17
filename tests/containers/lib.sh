# Shared by the container and metrics tests: a daxpoold on an emulated 4K pool in a private
# directory. Sourced; needs $DAXPOOLD and $DAXPOOLCTL. $DAXPOOL_TEST_DAEMON_WRAPPER (e.g.
# valgrind, as scripts/test.sh sets it) prefixes the daemon as the C harness does.

# The system's Python (python3-jsonschema is a Debian package for it), not one earlier in PATH.
PYTHON=${PYTHON:-$(command -v /usr/bin/python3 || command -v python3)}

# daemon_start DIR [DAXPOOLD ARGS...]: starts daxpoold --foreground on DIR/pool with the socket
# DIR/daxpoold.sock and waits until `daxpoolctl status` answers (60 s: valgrind is slow).
daemon_start() {
	local dir=$1 i
	shift
	# shellcheck disable=SC2086 # the wrapper is a command prefix split on spaces
	${DAXPOOL_TEST_DAEMON_WRAPPER:-} "$DAXPOOLD" --foreground --emulate "$dir/pool" --size 16M \
		--page 4K --format-if-empty --socket "$dir/daxpoold.sock" "$@" >"$dir/daemon.log" 2>&1 &
	daemon_pid=$!
	for ((i = 0; i < 600; i++)); do
		if "$DAXPOOLCTL" -s "$dir/daxpoold.sock" status >/dev/null 2>&1; then return 0; fi
		kill -0 "$daemon_pid" 2>/dev/null || break
		sleep 0.1
	done
	echo "daxpoold did not start:"; cat "$dir/daemon.log"
	return 1
}

# daemon_stop: SIGTERM, and the daemon must exit 0.
daemon_stop() {
	local rc=0
	[ -n "${daemon_pid:-}" ] || return 0
	kill -TERM "$daemon_pid" 2>/dev/null || true
	wait "$daemon_pid" || rc=$?
	daemon_pid=
	if [ "$rc" -ne 0 ]; then
		echo "daxpoold exited with $rc:"; tail -20 "$1/daemon.log"
		return 1
	fi
}
