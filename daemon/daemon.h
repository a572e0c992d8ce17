/* The one daemon context: everything daxpoold owns hangs off struct daxpoold. */
#pragma once

#include "options.h"

#include <ev.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/queue.h>
#include <time.h>

struct conn;
struct backend;
struct pool;
struct zeroer;
struct carver;
struct lease_table;
struct usage;
struct metrics;
struct limits_table;

struct daxpoold {
	struct ev_loop *loop;
	struct daxpoold_options opts;

	int listen_fd;
	bool socket_activated; /* fd came from systemd: the socket file is systemd's to remove */
	bool socket_bound;     /* we created the socket file and must unlink it on exit */
	ev_io listen_watcher;
	ev_timer accept_retry; /* re-arms accept after EMFILE/ENFILE */
	ev_timer trim_timer;   /* gives freed connection memory back to the kernel (conn.c) */
	size_t freed_since_trim;
	bool accept_paused;

	ev_signal sigterm, sigint, sighup;
	ev_timer watchdog;
	ev_idle busy_idle;   /* active while the loop busy-polls after a request (busy-poll.c) */
	ev_idle sweep_idle;  /* active while orphaned slice objects are swept (sweep.c) */
	struct carver *carver; /* makes slow per-slice objects off the loop (carve.c), or NULL */
	unsigned sweep_removed;
	double sweep_started_ms;
	ev_tstamp busy_until;
	uint64_t watchdog_usec;

	LIST_HEAD(, conn) conns;
	const struct conn_handler *conn_handler; /* what connections hand requests to (dispatch.c) */
	unsigned n_conns;
	uint64_t conns_total;	 /* accepted since start, for status */
	uint64_t protocol_errors;

	/* The pool and what it lives on (NULL/-1 with no backend configured). */
	struct backend *backend;
	struct pool *pool;
	int pool_fd;	     /* read-write fd of the backend, passed to writers */
	int pool_ro_fd;	     /* read-only fd of the same file, passed to read-only openers */
	struct backend_agent *agent; /* devdax on a dynamic region: carves for the backend, with the
				     * privileges the daemon dropped (backend_agent_start) */
	int deep_flush_fd;   /* devdax: the region's deep_flush, opened while privileged, until the
			      * backend takes it (backend_devdax_deep_flush_open), or -1 */
	uint64_t pool_size;
	char pool_uuid[37];  /* the pool's UUID: names its runtime state (runtime_state_path) */
	struct zeroer *zeroer;
	struct lease_table *leases;
	struct usage *usage; /* per-uid bytes and slices, for quotas (uthash) */
	struct metrics *metrics; /* counters and the Prometheus textfile (metrics.c) */
	struct limits_table *limits; /* per-uid connections, handles, holders, pins (uid-limits.c) */
	gid_t admin_gid;     /* (gid_t)-1 when the admin group does not exist */
	uid_t tenant;	     /* owner isolation: the uid the device serves (tenant.c) */
	bool has_tenant;
	bool tenant_conflict; /* the pool holds slices of several owners: admins only */
	uint64_t next_pin_id;
	uint64_t *orphans;   /* scratch for leases_recover */
	size_t n_orphans, cap_orphans;

	struct timespec start_mono;
	time_t start_realtime;
	int argc; /* kept for SIGHUP, which re-reads the config with the same command line */
	char **argv;
	int exit_code;
	int start_exit_code; /* exit status of a failed start-up; 0 = EXIT_FAILURE (provision.h) */
	char *device_path;   /* the device the device section resolved to (provision.c), or NULL:
			      * opts keeps the config's value, which SIGHUP compares against */
	int ready_fd; /* detached start-up: write end of the pipe the parent waits on, or -1 */
};

/* Lifecycle, in the order main() calls them (shutdown in reverse). */
/* Before anything is created or formatted: refuses (-EADDRINUSE, -EEXIST; logged) a socket
 * path another daemon answers on, or that is not a socket. */
int server_check_socket(struct daxpoold *d);
int server_start(struct daxpoold *d);
void server_stop(struct daxpoold *d);

/* SIGHUP: re-reads the config and applies what can change while serving (reload.c). */
void daemon_reload(struct daxpoold *d);

/* Monotonic nanoseconds since the daemon started. */
static inline uint64_t daemon_uptime_ns(const struct daxpoold *d)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return (uint64_t)(now.tv_sec - d->start_mono.tv_sec) * 1000000000ull +
	       (uint64_t)(now.tv_nsec - d->start_mono.tv_nsec);
}

/*
 * The path of a file of the pool's runtime state (the holder journal, the tenant binding):
 * RUNTIME_DIR/pool-UUID.WHAT. Keyed by the pool, not by the socket's directory, so that daemons
 * of different pools never share one, wherever their sockets are. legacy: the name earlier
 * versions used (RUNTIME_DIR/WHAT), read only when the pool's own file does not exist yet.
 */
static inline void runtime_state_path(const struct daxpoold *d, const char *what, bool legacy,
				      char *buf, size_t len)
{
	const char *dir = d->opts.runtime_dir ? d->opts.runtime_dir : "/run/daxpool";

	if (legacy)
		snprintf(buf, len, "%s/%s", dir, what);
	else
		snprintf(buf, len, "%s/pool-%s.%s", dir, d->pool_uuid, what);
}
