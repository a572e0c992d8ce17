/* The listening socket (own or socket-activated), accept, signals and the systemd watchdog. */
#include "conn.h"
#include "dispatch.h"
#include "daemon.h"
#include "uid-limits.h"
#include "log.h"
#include "macro.h"
#include "metrics.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <libgen.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <systemd/sd-daemon.h>
#include <unistd.h>

#define LISTEN_BACKLOG 128
#define ACCEPT_BATCH 64
#define ACCEPT_RETRY_S 0.1


static void accept_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	struct daxpoold *d = (struct daxpoold *)((char *)w - offsetof(struct daxpoold, listen_watcher));

	for (int i = 0; i < ACCEPT_BATCH; i++) {
		struct conn *c;
		int fd = accept4(d->listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);

		if (fd < 0) {
			if (errno == EAGAIN || errno == EINTR || errno == ECONNABORTED)
				return;
			if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
				/* Out of descriptors: stop accepting for a moment rather than spin. Log
				 * once per episode, not once per retry. */
				log_full_errno(d->accept_paused ? LOG_DEBUG : LOG_WARNING, -errno,
					       "accept: %m; pausing new connections");
				d->accept_paused = true;
				ev_io_stop(loop, &d->listen_watcher);
				/* A one-shot timer that fired keeps ~0 as its delay: set it again. */
				ev_timer_set(&d->accept_retry, ACCEPT_RETRY_S, 0.);
				ev_timer_start(loop, &d->accept_retry);
				return;
			}
			log_error_errno(-errno, "accept: %m");
			return;
		}
		if (d->accept_paused) {
			log_notice("accepting connections again");
			d->accept_paused = false;
		}
		/* max_clients, the administrators' reserved slots and the per-uid bounds are checked
		 * by conn_new once it knows the peer (uid-limits.c); a refused peer gets an error frame. */
		int r = conn_new(d, fd, &c);

		if (r < 0 && r != -EUSERS)
			log_error_errno(r, "accepting a client: %m");
	}
}

static void accept_retry_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct daxpoold *d = (struct daxpoold *)((char *)w - offsetof(struct daxpoold, accept_retry));

	ev_io_start(loop, &d->listen_watcher);
}

static void signal_cb(struct ev_loop *loop, ev_signal *w, int revents)
{
	struct daxpoold *d = w->data;

	if (w->signum == SIGHUP) {
		daemon_reload(d);
		return;
	}
	log_info("received %s, shutting down", strsignal(w->signum));
	d->exit_code = 0;
	ev_break(loop, EVBREAK_ALL);
}

static void watchdog_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	sd_notify(0, "WATCHDOG=1");
}

static int mkdir_parent(const char *path)
{
	_cleanup_(freep) char *copy = strdup(path);
	char *dir;

	if (!copy)
		return -ENOMEM;
	dir = dirname(copy);
	if (mkdir(dir, 0755) < 0 && errno != EEXIST)
		return log_error_errno(-errno, "cannot create socket directory %s: %m", dir);
	return 0;
}

/*
 * What is at the socket path: 0 nothing, 1 a socket nobody listens on (a daemon that died left
 * it). A live daemon's socket (-EADDRINUSE) and anything that is not a socket (-EEXIST) are
 * refused, logged.
 */
static int probe_socket(const char *path)
{
	struct sockaddr_un addr = { .sun_family = AF_UNIX };
	_cleanup_(closep) int fd = -1;
	struct stat st;

	if (lstat(path, &st) < 0)
		return errno == ENOENT ? 0 : log_error_errno(-errno, "%s: %m", path);
	if (!S_ISSOCK(st.st_mode))
		return log_error_errno(-EEXIST, "%s exists and is not a socket; refusing to replace it", path);
	fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return log_error_errno(-errno, "socket: %m");
	strcpy(addr.sun_path, path);
	if (connect(fd, (struct sockaddr *)&addr, sizeof(addr)) == 0)
		return log_error_errno(-EADDRINUSE, "another daxpoold is listening on %s", path);
	if (errno != ECONNREFUSED)
		return log_error_errno(-errno, "probing %s: %m", path);
	return 1;
}

/* A socket file left by a daemon that died is removed; a live daemon's is never touched. */
static int clear_stale_socket(const char *path)
{
	int r = probe_socket(path);

	if (r <= 0)
		return r;
	log_notice("removing stale socket %s", path);
	if (unlink(path) < 0 && errno != ENOENT)
		return log_error_errno(-errno, "unlink %s: %m", path);
	return 0;
}

int server_check_socket(struct daxpoold *d)
{
	int r;

	if (sd_listen_fds(0) > 0 || !d->opts.socket_path)
		return 0; /* systemd's socket: it is ours */
	/* The stale socket stays until listen_own_socket replaces it. */
	r = probe_socket(d->opts.socket_path);
	return r < 0 ? r : 0;
}

static int listen_socket_activated(struct daxpoold *d, int n)
{
	int fd = SD_LISTEN_FDS_START;

	if (n != 1)
		return log_error_errno(-EINVAL, "systemd passed %d sockets; daxpoold takes exactly one", n);
	if (sd_is_socket_unix(fd, SOCK_SEQPACKET, 1, NULL, 0) <= 0)
		return log_error_errno(-EINVAL, "the socket systemd passed is not a listening AF_UNIX SOCK_SEQPACKET socket");
	if (fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK) < 0 ||
	    fcntl(fd, F_SETFD, FD_CLOEXEC) < 0)
		return log_error_errno(-errno, "fcntl on the activated socket: %m");
	d->listen_fd = fd;
	d->socket_activated = true;
	log_info("listening on the socket passed by systemd");
	return 0;
}

static int listen_own_socket(struct daxpoold *d)
{
	struct sockaddr_un addr = { .sun_family = AF_UNIX };
	const char *path = d->opts.socket_path;
	_cleanup_(closep) int fd = -1;
	mode_t old_umask;
	int r;

	r = mkdir_parent(path);
	if (r < 0)
		return r;
	r = clear_stale_socket(path);
	if (r < 0)
		return r;
	fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return log_error_errno(-errno, "socket: %m");
	strcpy(addr.sun_path, path);
	/* The umask makes the socket appear with the right mode: no window in which it is wider. */
	old_umask = umask(~d->opts.socket_mode & 0777);
	r = bind(fd, (struct sockaddr *)&addr, sizeof(addr));
	umask(old_umask);
	if (r < 0)
		return log_error_errno(-errno, "bind %s: %m", path);
	d->socket_bound = true;
	if (chmod(path, d->opts.socket_mode) < 0)
		return log_error_errno(-errno, "chmod %s: %m", path);
	if (listen(fd, LISTEN_BACKLOG) < 0)
		return log_error_errno(-errno, "listen %s: %m", path);
	d->listen_fd = TAKE_FD(fd);
	log_info("listening on %s (mode %04o)", path, d->opts.socket_mode);
	return 0;
}

int server_start(struct daxpoold *d)
{
	int n, r;

	LIST_INIT(&d->conns);
	d->conn_handler = &dispatch_handler;
	r = limits_init(d);
	if (r < 0)
		return log_error_errno(r, "out of memory");
	n = sd_listen_fds(1);
	if (n < 0)
		return log_error_errno(n, "sd_listen_fds: %m");
	r = n > 0 ? listen_socket_activated(d, n) : listen_own_socket(d);
	if (r < 0)
		return r;

	ev_io_init(&d->listen_watcher, accept_cb, d->listen_fd, EV_READ);
	ev_io_start(d->loop, &d->listen_watcher);
	ev_timer_init(&d->accept_retry, accept_retry_cb, ACCEPT_RETRY_S, 0.);

	ev_signal_init(&d->sigterm, signal_cb, SIGTERM);
	ev_signal_init(&d->sigint, signal_cb, SIGINT);
	ev_signal_init(&d->sighup, signal_cb, SIGHUP);
	d->sigterm.data = d->sigint.data = d->sighup.data = d;
	ev_signal_start(d->loop, &d->sigterm);
	ev_signal_start(d->loop, &d->sigint);
	ev_signal_start(d->loop, &d->sighup);

	if (sd_watchdog_enabled(0, &d->watchdog_usec) > 0 && d->watchdog_usec > 0) {
		/* Ping at half the interval: a busy loop iteration must not make us miss it. */
		double interval = (double)d->watchdog_usec / 2e6;

		ev_timer_init(&d->watchdog, watchdog_cb, interval, interval);
		ev_timer_start(d->loop, &d->watchdog);
		log_info("systemd watchdog enabled, pinging every %.3f s", interval);
	}
	return metrics_start(d);
}

void server_stop(struct daxpoold *d)
{
	struct conn *c;

	/* Drain: no new clients, and replies already decided (a granted slice's fd among them)
	 * get one last chance to reach clients that are reading, before the connections close. */
	if (d->listen_fd >= 0)
		ev_io_stop(d->loop, &d->listen_watcher);
	LIST_FOREACH(c, &d->conns, link)
		conn_drain(c);
	while (!LIST_EMPTY(&d->conns))
		conn_free(LIST_FIRST(&d->conns));
	limits_done(d); /* holder processes are lease.c's; their accounting goes with the table */
	if (d->listen_fd >= 0) {
		ev_io_stop(d->loop, &d->listen_watcher);
		ev_timer_stop(d->loop, &d->accept_retry);
		close(d->listen_fd);
		d->listen_fd = -1;
	}
	if (d->socket_bound && unlink(d->opts.socket_path) < 0 && errno != ENOENT)
		log_warning_errno(-errno, "unlink %s: %m", d->opts.socket_path);
	d->socket_bound = false;
	ev_timer_stop(d->loop, &d->watchdog);
	ev_timer_stop(d->loop, &d->trim_timer);
	metrics_stop(d);
	ev_signal_stop(d->loop, &d->sigterm);
	ev_signal_stop(d->loop, &d->sigint);
	ev_signal_stop(d->loop, &d->sighup);
}
