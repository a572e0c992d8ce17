/* daxpoold: start-up order, detaching outside systemd, readiness, and shutdown order. */
#include "build-config.h"
#include "busy-poll.h"
#include "sweep.h"
#include "carve.h"
#include "conn.h"
#include "dispatch.h"
#include "daemon.h"
#include "backend.h"
#include "tenant.h"
#include "lease.h"
#include "log.h"
#include "pool.h"
#include "provision.h"
#include "usage.h"
#include "parse-util.h"
#include "protocol.h"

#include <errno.h>
#include <inttypes.h>
#include <fcntl.h>
#include <grp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <systemd/sd-daemon.h>
#include <unistd.h>
#include <uuid/uuid.h>

static bool under_systemd(void)
{
	return getenv("NOTIFY_SOCKET") || getenv("INVOCATION_ID") || getenv("LISTEN_FDS");
}

/*
 * Outside systemd and without --foreground, daxpoold detaches like a classic daemon, but the
 * starting process waits for the detached one to report readiness through a pipe, so its exit
 * status tells whether the daemon really started (and it prints the daemon's pid).
 * Returns in the detached grandchild with *ret_ready_fd set; the caller process exits here.
 */
static int detach(int *ret_ready_fd)
{
	int pipefd[2];
	pid_t pid;

	if (pipe2(pipefd, O_CLOEXEC) < 0)
		return log_error_errno(-errno, "pipe: %m");
	pid = fork();
	if (pid < 0)
		return log_error_errno(-errno, "fork: %m");
	if (pid > 0) {
		int32_t status = -EIO;
		ssize_t n;

		close(pipefd[1]);
		waitpid(pid, NULL, 0);
		do
			n = read(pipefd[0], &status, sizeof(status));
		while (n < 0 && errno == EINTR);
		if (n != sizeof(status) || status < 0) {
			fprintf(stderr, "daxpoold: failed to start%s%s (the reason is above, and in syslog)\n",
				n == sizeof(status) ? ": " : "",
				n == sizeof(status) ? strerror(-status) : "");
			_exit(EXIT_FAILURE);
		}
		printf("daxpoold started, pid %d\n", (int)status);
		fflush(stdout); /* _exit() does not flush, and stdout may be a pipe */
		_exit(EXIT_SUCCESS);
	}
	close(pipefd[0]);
	if (setsid() < 0)
		_exit(EXIT_FAILURE);
	pid = fork();
	if (pid < 0)
		_exit(EXIT_FAILURE);
	if (pid > 0)
		_exit(EXIT_SUCCESS); /* the session leader goes; the daemon can never regain a tty */
	if (chdir("/") < 0)
		_exit(EXIT_FAILURE);
	int null = open("/dev/null", O_RDWR | O_CLOEXEC);
	if (null >= 0) {
		dup2(null, STDIN_FILENO);
		dup2(null, STDOUT_FILENO);
		if (null > STDERR_FILENO)
			close(null);
	}
	/* stderr stays the starter's until the daemon is ready (report_ready): a start that fails
	 * says why where it was started, not only in a syslog the machine may not have. */
	log_set_target(LOG_TARGET_SYSLOG);
	log_set_echo_stderr(true);
	*ret_ready_fd = pipefd[1];
	return 0;
}

/* Backend, pool, read-only fd, quotas, leases: everything that serves slices. */
/* The device the pool lives on: what the device section resolved to, else the configured path. */
static const char *device_path(const struct daxpoold *d)
{
	return d->device_path ? d->device_path : d->opts.device_path;
}

static int pool_start(struct daxpoold *d)
{
	struct backend_config cfg = {
		.kind = d->opts.backend,
		.device_path = device_path(d),
		.file_path = d->opts.emulate_path,
		.expected_uuid = d->opts.has_expected_uuid ? d->opts.expected_uuid : NULL,
		.records = d->opts.records,
		.agent = d->agent,
	};
	struct backend_pool_info info = {};
	struct backend_badblock_stats bb;
	char path[64], uuid[37];
	int r;

	if (d->opts.backend == BACKEND_NONE)
		return 0;
	/* File, size, page size and creation are the emulated backend's; devdax refuses them. */
	if (d->opts.isolation && backend_isolation_from_name(d->opts.isolation, &cfg.isolation) < 0)
		return log_error_errno(-EINVAL, "unknown isolation mode \"%s\"", d->opts.isolation);
	if (d->opts.backend == BACKEND_EMULATED) {
		cfg.size = d->opts.size;
		cfg.page_size = d->opts.page_size;
		cfg.create = d->opts.format_if_empty > 0;
	}
	r = backend_open(&cfg, &d->backend);
	if (r < 0)
		return log_error_errno(r, "backend: %s", backend_errormsg());
	if (d->deep_flush_fd >= 0) {
		r = backend_set_deep_flush_fd(d->backend, d->deep_flush_fd);
		if (r < 0)
			return log_error_errno(r, "backend: %s", backend_errormsg());
		d->deep_flush_fd = -1; /* the backend's now */
	}
	r = backend_open_pool(d->backend, d->opts.format_if_empty > 0, &d->pool, &info);
	if (r == -ENODATA)
		return log_error_errno(r, "%s holds no daxpool pool; format it with daxpoolctl format, or "
				       "start with --format-if-empty", backend_path(d->backend));
	if (r < 0)
		return log_error_errno(r, "pool: %s", backend_errormsg());
	if (info.degraded)
		log_warning("pool opened from one superblock copy: %s; run daxpoolctl fsck --repair", backend_errormsg());
	uuid_unparse_lower(info.uuid, uuid);
	snprintf(d->pool_uuid, sizeof(d->pool_uuid), "%s", uuid);
	d->pool_fd = backend_fd(d->backend);
	d->pool_size = backend_size(d->backend);
	/* Readers get an fd that cannot map for writing: reopen the same file read-only. */
	snprintf(path, sizeof(path), "/proc/self/fd/%d", d->pool_fd);
	d->pool_ro_fd = open(path, O_RDONLY | O_CLOEXEC);
	if (d->pool_ro_fd < 0)
		return log_error_errno(-errno, "reopening %s read-only: %m", backend_path(d->backend));

	unsigned removed = 0, created = 0;
	r = backend_slice_reconcile(d->backend, d->pool, &removed, &created);
	if (r < 0)
		return log_error_errno(r, "slice objects: %s", backend_errormsg());
	if (removed || created)
		log_notice("slice objects reconciled with the pool: %u orphans removed, %u made anew",
			   removed, created);
	if (*backend_errormsg())
		log_notice("%s", backend_errormsg());
	r = tenant_init(d);
	if (r < 0)
		return r;

	r = usage_init(d);
	if (r < 0)
		return log_error_errno(r, "counting usage: %m");
	r = leases_init(d);
	if (r < 0)
		return r;
	r = leases_recover(d);
	if (r < 0)
		return log_error_errno(r, "recovering leases: %m");
	if (backend_slice_create_is_slow(d->backend)) {
		r = carver_new(d, dispatch_alloc_object_made, dispatch_alloc_dropped, &d->carver);
		if (r < 0)
			return log_error_errno(r, "starting the carving thread: %m");
	}
	backend_badblock_stats(d->backend, &bb);
	log_info("pool %s on %s (%s, %" PRIu64 " bytes, %s alignment, isolation %s)%s; %" PRIu64 " bad ranges reserved",
		 uuid, backend_path(d->backend), backend_kind(d->backend) == BACKEND_DEVDAX ? "devdax" : "emulated",
		 d->pool_size, page_size_name(backend_alignment(d->backend)) ?: "?",
		 backend_isolation_name(backend_isolation(d->backend)),
		 info.formatted ? ", newly formatted" : "", bb.count);
	if (backend_isolation(d->backend) == BACKEND_ISOLATION_SHARED)
		log_warning("isolation \"shared\": every client that is granted a slice can map the whole "
			    "device, other owners' slices and the pool's metadata included");
	return 0;
}

/* Before the capabilities go: DEEP_FLUSH on devdax needs the region's deep_flush attribute,
 * root's on platforms with flush hints (backend.h). Failing here only costs DEEP_FLUSH its
 * privilege-free path, so it is logged, not fatal. */
static void deep_flush_prepare(struct daxpoold *d)
{
	const char *path = device_path(d);
	int r;

	if (d->opts.backend != BACKEND_DEVDAX || !path)
		return;
	r = backend_devdax_deep_flush_open(path, &d->deep_flush_fd);
	if (r == -EOPNOTSUPP || r == -ENOENT)
		log_debug("deep flush: %s", backend_errormsg()); /* no flush hints, or no region */
	else if (r < 0)
		log_warning("deep flush: %s; DEEP_FLUSH will need the privilege while serving",
			    backend_errormsg());
	else
		log_info("deep flush: holding %s's region deep_flush attribute open", path);
}

/* A dynamic dax region is carved while serving, which needs privileges the daemon drops: the
 * sub-device agent keeps them in a process of its own. Not for "shared" (nothing is carved). */
static int subdev_agent_prepare(struct daxpoold *d)
{
	enum backend_isolation iso = BACKEND_ISOLATION_AUTO;
	const char *path = device_path(d);
	int r;

	if (d->opts.isolation)
		(void)backend_isolation_from_name(d->opts.isolation, &iso); /* validated already */
	if (d->opts.backend != BACKEND_DEVDAX || !path || iso == BACKEND_ISOLATION_SHARED)
		return 0;
	r = backend_agent_start(path, &d->agent);
	if (r < 0)
		return log_error_errno(r, "sub-device agent: %s", backend_errormsg());
	if (d->agent)
		log_info("sub-device agent (pid %d) carves %s's dynamic dax region",
			 backend_agent_pid(d->agent), path);
	return 0;
}

static void pool_stop(struct daxpoold *d)
{
	carver_delete(&d->carver); /* an object being made is finished; queued ALLOCs are dropped */
	leases_done(d);
	usage_done(d);
	pool_delete(&d->pool);
	if (d->pool_ro_fd >= 0)
		close(d->pool_ro_fd);
	d->pool_ro_fd = -1;
	backend_delete(&d->backend);
}

static void report_ready(struct daxpoold *d, int32_t status)
{
	if (d->ready_fd < 0)
		return;
	(void)!write(d->ready_fd, &status, sizeof(status));
	close(d->ready_fd);
	d->ready_fd = -1;
	/* Started (or failed, then exiting): the starter's terminal is not ours to keep. */
	log_set_echo_stderr(false);
	int null = open("/dev/null", O_WRONLY | O_CLOEXEC);
	if (null >= 0) {
		dup2(null, STDERR_FILENO);
		close(null);
	}
}

int main(int argc, char **argv)
{
	struct daxpoold d = { .listen_fd = -1, .ready_fd = -1, .pool_fd = -1, .pool_ro_fd = -1,
			      .deep_flush_fd = -1, .exit_code = EXIT_FAILURE, .admin_gid = (gid_t)-1 };
	struct group *admin;
	int r;

	log_setup("daxpoold", LOG_INFO);
	d.argc = argc;
	d.argv = argv;
	r = options_parse(&d.opts, argc, argv);
	if (r < 0) {
		options_free(&d.opts);
		return 2; /* usage error, as getopt-style tools do */
	}
	if (d.opts.show_help || d.opts.show_version) {
		if (d.opts.show_help)
			options_print_help(argv[0]);
		else
			printf("daxpoold %s (protocol %d..%d)\n", DAXPOOL_VERSION_STRING,
			       DXP_PROTOCOL_VERSION_MIN, DXP_PROTOCOL_VERSION_MAX);
		options_free(&d.opts);
		return 0;
	}
	log_set_max_level(d.opts.log_level);

	if (!d.opts.foreground && !under_systemd()) {
		r = detach(&d.ready_fd);
		if (r < 0)
			goto out;
	}

	/* A client vanishing mid-reply must cost an EPIPE, not the daemon. */
	signal(SIGPIPE, SIG_IGN);
	d.loop = ev_default_loop(EVFLAG_AUTO | EVFLAG_NOENV);
	if (!d.loop) {
		r = log_error_errno(-ENOMEM, "cannot create the event loop");
		goto out;
	}
	busy_poll_init(&d);
	/* Before the pool: recovery can free a holder (conn_note_freed starts this timer), and a
	 * started watcher that was never initialized fires a NULL callback. */
	ev_timer_init(&d.trim_timer, conn_trim_cb, CONN_TRIM_DELAY_S, 0.);
	clock_gettime(CLOCK_MONOTONIC, &d.start_mono);
	d.start_realtime = time(NULL);
	admin = getgrnam(d.opts.admin_group);
	if (admin)
		d.admin_gid = admin->gr_gid;
	else
		log_notice("admin group \"%s\" does not exist: only root may administer", d.opts.admin_group);

	/* The device section: find, create or reconfigure the pool's device. Then drop the
	 * capabilities that needed, before any thread starts (capabilities are per thread). */
	r = provision_start(&d);
	if (r < 0)
		goto out;
	deep_flush_prepare(&d);
	r = subdev_agent_prepare(&d);
	if (r < 0)
		goto out;
	r = provision_drop_privileges();
	if (r < 0)
		goto out;
	/* The pool before the socket: READY=1 promises a pool that is open and recovered. But a
	 * socket another daemon serves is refused first: nothing may be created or formatted for a
	 * start that cannot succeed. */
	r = server_check_socket(&d);
	if (r < 0) {
		sd_notifyf(0, "STATUS=Failed to start: %s\nERRNO=%d", strerror(-r), -r);
		goto out;
	}
	r = pool_start(&d);
	if (r < 0) {
		sd_notifyf(0, "STATUS=Failed to open the pool: %s\nERRNO=%d", strerror(-r), -r);
		goto out;
	}
	r = server_start(&d);
	if (r < 0) {
		sd_notifyf(0, "STATUS=Failed to start: %s\nERRNO=%d", strerror(-r), -r);
		goto out;
	}
	log_info("daxpoold %s ready (backend: %s, max %u clients)", DAXPOOL_VERSION_STRING,
		 backend_kind_name(d.opts.backend), d.opts.max_clients);
	sd_notifyf(0, "READY=1\nSTATUS=Serving on %s (backend: %s)\nMAINPID=%d",
		   d.socket_activated ? "activated socket" : d.opts.socket_path,
		   backend_kind_name(d.opts.backend), (int)getpid());
	report_ready(&d, (int32_t)getpid());
	sweep_start(&d);

	ev_run(d.loop, 0);

	sweep_stop(&d);
	busy_poll_stop(&d);
	sd_notify(0, "STOPPING=1\nSTATUS=Shutting down");
	log_info("shutting down: %u clients connected, %" PRIu64 " served, %" PRIu64 " protocol errors",
		 d.n_conns, d.conns_total, d.protocol_errors);
out:
	report_ready(&d, r < 0 ? r : -EIO);
	server_stop(&d);
	pool_stop(&d);
	backend_agent_stop(&d.agent);
	if (d.loop)
		ev_loop_destroy(d.loop);
	options_free(&d.opts);
	if (d.deep_flush_fd >= 0)
		close(d.deep_flush_fd);
	free(d.device_path);
	return r < 0 ? (d.start_exit_code ? d.start_exit_code : EXIT_FAILURE) : d.exit_code;
}
