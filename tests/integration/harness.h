/* Starts and stops a real daxpoold for integration tests, listening to its sd_notify messages. */
#pragma once

#include <stdbool.h>
#include <sys/types.h>

struct test_daemon {
	pid_t pid;
	char dir[64];	      /* private temp dir: socket, notify socket, config */
	char socket[128];     /* the daemon's socket */
	char notify[128];     /* our NOTIFY_SOCKET */
	int notify_fd;
	bool saw_ready, saw_stopping;
	char status[256];     /* last STATUS= */
};

/*
 * Starts daxpoold --foreground --socket <dir>/daxpoold.sock [extra args] with NOTIFY_SOCKET
 * pointing at us, and waits for READY=1 (or its exit). $DAXPOOL_TEST_DAEMON_WRAPPER, if set, is
 * a command prefix (e.g. valgrind) split on spaces. Returns 0 or a negative errno.
 */
int test_daemon_start(struct test_daemon *d, const char *const *extra_args);

/* Like test_daemon_start, but does not wait for READY; for daemons expected to fail. */
int test_daemon_spawn(struct test_daemon *d, const char *const *extra_args, const char *socket_override);

/* Sends sig and waits for exit; returns the exit status (0..255), 128+signal if killed, or -errno. */
int test_daemon_stop(struct test_daemon *d, int sig);

/* Waits for the process to exit on its own within timeout_ms; returns its status like stop. */
int test_daemon_wait(struct test_daemon *d, int timeout_ms);

/* Removes the temp dir. */
void test_daemon_cleanup(struct test_daemon *d);

/* Runs argv, capturing stdout into buf (NUL-terminated); returns the exit status or -errno. */
int run_capture(const char *const *argv, char *buf, size_t size);

/* A raw SOCK_SEQPACKET connection to path, for speaking bad protocol on purpose. */
int raw_connect(const char *path);
