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

/* test_daemon_start with the socket at socket_path instead of in the daemon's private dir (NULL: there). */
int test_daemon_start_at(struct test_daemon *d, const char *const *extra_args,
			 const char *socket_path);

/* Waits for the process to exit on its own within timeout_ms; returns its status like stop. */
int test_daemon_wait(struct test_daemon *d, int timeout_ms);

/* Removes the temp dir. */
void test_daemon_cleanup(struct test_daemon *d);

/* One daxpoold on an emulated 4K pool file, for the tests that run against a single daemon and
 * keep their scratch files (daxpoolctl output, offline pool files) beside its pool. */
struct test_pool_daemon {
	struct test_daemon d;
	char dir[64];	/* /tmp/daxpool-TAG-XXXXXX: the pool file and the test's own files */
	char pool[128]; /* dir/pool */
};

/* Makes the temp dir and starts daxpoold --emulate DIR/pool --size SIZE --page 4K
 * --format-if-empty. 0 or a negative errno; test_pool_daemon_stop undoes whatever it did. */
int test_pool_daemon_start(struct test_pool_daemon *p, const char *tag, const char *size);

/* Stops the daemon (SIGTERM), cleans up and removes the temp dir. 0 when the daemon exited with 0
 * and the dir is gone; else its exit status (> 0) or a negative errno. */
int test_pool_daemon_stop(struct test_pool_daemon *p);

/* Runs argv, capturing stdout into buf (NUL-terminated); returns the exit status or -errno. */
int run_capture(const char *const *argv, char *buf, size_t size);

/* A raw SOCK_SEQPACKET connection to path, for speaking bad protocol on purpose. */
int raw_connect(const char *path);
