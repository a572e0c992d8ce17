/* The one daemon context: everything daxpoold owns hangs off struct daxpoold. */
#pragma once

#include "options.h"

#include <ev.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/queue.h>
#include <time.h>

struct conn;

struct daxpoold {
	struct ev_loop *loop;
	struct daxpoold_options opts;

	int listen_fd;
	bool socket_activated; /* fd came from systemd: the socket file is systemd's to remove */
	bool socket_bound;     /* we created the socket file and must unlink it on exit */
	ev_io listen_watcher;
	ev_timer accept_retry; /* re-arms accept after EMFILE/ENFILE */

	ev_signal sigterm, sigint, sighup;
	ev_timer watchdog;
	uint64_t watchdog_usec;

	LIST_HEAD(, conn) conns;
	unsigned n_conns;
	uint64_t conns_total;	 /* accepted since start, for status */
	uint64_t protocol_errors;

	struct timespec start_mono;
	time_t start_realtime;
	int exit_code;
	int ready_fd; /* detached start-up: write end of the pipe the parent waits on, or -1 */
};

/* Lifecycle, in the order main() calls them (shutdown in reverse). */
int server_start(struct daxpoold *d);
void server_stop(struct daxpoold *d);

/* Monotonic nanoseconds since the daemon started. */
uint64_t daemon_uptime_ns(const struct daxpoold *d);
