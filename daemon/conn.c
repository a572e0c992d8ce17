/* Client connections: reading frames, validating them, queuing replies; see conn.h. */
#include "busy-poll.h"
#include "conn.h"
#include "uid-limits.h"
#include "pool.h"
#include "log.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <inttypes.h>
#include <malloc.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static void conn_io_cb(struct ev_loop *loop, ev_io *w, int revents);

static void conn_send_timeout_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct conn *c = (struct conn *)((char *)w - offsetof(struct conn, send_timer));

	log_notice("client %" PRIu64 " (pid %d) took no reply for %u s, closing", c->id, (int)c->pid,
		   c->daemon->opts.send_timeout_s);
	conn_free(c);
}

static void conn_idle_timeout_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct conn *c = (struct conn *)((char *)w - offsetof(struct conn, idle_timer));

	/* Only connections that hold nothing are idle: closing one with slices would reclaim them. */
	if (HASH_COUNT(c->slices) > 0)
		return;
	log_info("client %" PRIu64 " (pid %d) idle for %u s, closing", c->id, (int)c->pid,
		 c->daemon->opts.idle_timeout_s);
	conn_free(c);
}

/* Supplementary groups of the peer, for the admin group and group permission bits. */
static void conn_read_groups(struct conn *c)
{
	socklen_t len = 0;

	if (getsockopt(c->fd, SOL_SOCKET, SO_PEERGROUPS, NULL, &len) < 0 && errno != ERANGE)
		return;
	if (len == 0)
		return;
	c->groups = malloc(len);
	if (!c->groups)
		return;
	if (getsockopt(c->fd, SOL_SOCKET, SO_PEERGROUPS, c->groups, &len) < 0) {
		free(c->groups);
		c->groups = NULL;
		return;
	}
	c->n_groups = (int)(len / sizeof(gid_t));
}

bool conn_in_group(const struct conn *c, gid_t gid)
{
	if (gid == (gid_t)-1)
		return false;
	if (c->gid == gid)
		return true;
	for (int i = 0; i < c->n_groups; i++)
		if (c->groups[i] == gid)
			return true;
	return false;
}

static void conn_hello_timeout_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct conn *c = (struct conn *)((char *)w - offsetof(struct conn, hello_timer));

	log_notice("client %" PRIu64 " (pid %d uid %u) sent no HELLO within %u ms, closing", c->id,
		   (int)c->pid, (unsigned)c->uid, c->daemon->opts.limits.hello_timeout_ms);
	limits_hello_timeout(c->daemon);
	conn_free(c);
}

void conn_reject(int fd, int32_t status, const char *text)
{
	uint8_t frame[DXP_HEADER_SIZE + DXP_MAX_ERROR_MESSAGE];
	uint8_t msg[DXP_MAX_ERROR_MESSAGE];
	size_t n;

	n = dxp_error_payload_encode(text, msg);
	n = dxp_frame_encode(frame, DXP_PROTOCOL_VERSION_MIN, DXP_MSG_ERROR | DXP_REPLY_BIT, 0, status,
			     msg, (uint32_t)n);
	(void)!send(fd, frame, n, MSG_NOSIGNAL | MSG_DONTWAIT);
	close(fd);
}

int conn_new(struct daxpoold *d, int fd, struct conn **ret)
{
	struct ucred cred;
	socklen_t len = sizeof(cred);
	struct conn *c;
	char why[DXP_MAX_ERROR_MESSAGE];
	int r;

	c = calloc(1, sizeof(*c));
	if (!c) {
		close(fd);
		return -ENOMEM;
	}
	c->daemon = d;
	c->fd = fd;
	c->pending_fd = -1;
	c->id = ++d->conns_total;
	/* The kernel's view of the peer, not anything the client says, decides who it is. */
	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) == 0) {
		c->pid = cred.pid;
		c->uid = cred.uid;
		c->gid = cred.gid;
	} else {
		c->pid = -1;
		c->uid = (uid_t)-1;
		c->gid = (gid_t)-1;
	}
	conn_read_groups(c);
	c->admin = c->uid == 0 || conn_in_group(c, d->admin_gid);
	/* Per-uid bounds before anything is started: a refused peer costs nothing after this. */
	r = limits_admit_connection(d, c->uid, c->admin, why, sizeof(why));
	if (r == 0)
		r = limits_conn_add(c);
	if (r < 0) {
		if (r == -EUSERS) {
			uint64_t quiet;

			if (limits_should_log(d, &quiet))
				log_warning("refusing a client (pid %d uid %u): %s (%" PRIu64 " more refusals "
					    "not logged since the last)", (int)c->pid, (unsigned)c->uid, why, quiet);
			conn_reject(fd, r, why);
		} else {
			close(fd);
		}
		free(c->groups);
		free(c);
		return r;
	}
	ev_timer_init(&c->send_timer, conn_send_timeout_cb, d->opts.send_timeout_s, 0.);
	ev_timer_init(&c->idle_timer, conn_idle_timeout_cb, d->opts.idle_timeout_s, d->opts.idle_timeout_s);
	if (d->opts.idle_timeout_s)
		ev_timer_start(d->loop, &c->idle_timer);
	ev_io_init(&c->io, conn_io_cb, fd, EV_READ);
	ev_io_start(d->loop, &c->io);
	ev_timer_init(&c->hello_timer, conn_hello_timeout_cb, d->opts.limits.hello_timeout_ms / 1000.0, 0.);
	ev_timer_start(d->loop, &c->hello_timer);
	LIST_INSERT_HEAD(&d->conns, c, link);
	d->n_conns++;
	log_debug("client %" PRIu64 " connected: pid %d uid %u gid %u", c->id, (int)c->pid,
		  (unsigned)c->uid, (unsigned)c->gid);
	*ret = c;
	return 0;
}

void conn_free(struct conn *c)
{
	if (!c)
		return;
	struct conn_slice *sl, *stmp;
	struct conn_pin *pin, *ptmp;

	log_debug("client %" PRIu64 " (pid %d) disconnected", c->id, (int)c->pid);
	c->daemon->conn_handler->closing(c);
	limits_conn_remove(c); /* before its handles, pins and parked reply go */
	ev_io_stop(c->daemon->loop, &c->io);
	ev_timer_stop(c->daemon->loop, &c->hello_timer);
	ev_timer_stop(c->daemon->loop, &c->send_timer);
	ev_timer_stop(c->daemon->loop, &c->idle_timer);
	/* Pins outlive the connection (an RDMA MR lives until the process deregisters it or exits):
	 * they stay counted on the holder process; only the ids die here. */
	HASH_ITER(hh, c->pins, pin, ptmp) {
		HASH_DEL(c->pins, pin);
		free(pin);
	}
	HASH_ITER(hh, c->slices, sl, stmp) {
		HASH_DEL(c->slices, sl);
		free(sl);
	}
	free(c->groups);
	LIST_REMOVE(c, link);
	c->daemon->n_conns--;
	close(c->fd);
	if (c->pending_fd >= 0)
		close(c->pending_fd);
	free(c->pending);
	conn_note_freed(c->daemon, sizeof(*c) + c->pending_len);
	free(c);
}

void conn_note_freed(struct daxpoold *d, size_t bytes)
{
	d->freed_since_trim += bytes;
	if (!ev_is_active(&d->trim_timer))
		ev_timer_start(d->loop, &d->trim_timer);
}

void conn_trim_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct daxpoold *d = (struct daxpoold *)((char *)w - offsetof(struct daxpoold, trim_timer));

	(void)loop;
	(void)revents;
	d->freed_since_trim = 0;
	/* glibc keeps freed chunks below the top of the heap resident (a connection is ~64 KiB,
	 * its input buffer); what a flood of connections or parked replies took would stay with
	 * the daemon until it exits. This returns whole free pages to the kernel. */
	malloc_trim(0);
}

/* Switches the watcher between reading requests and waiting to flush the pending reply. */
static void conn_update_events(struct conn *c)
{
	int events = c->pending ? EV_WRITE : EV_READ;

	if ((c->io.events & (EV_READ | EV_WRITE)) == events)
		return;
	ev_io_stop(c->daemon->loop, &c->io);
	ev_io_set(&c->io, c->fd, events);
	ev_io_start(c->daemon->loop, &c->io);
}

/* One packet, with fd attached when fd >= 0. */
static ssize_t send_packet(int sock, const uint8_t *frame, size_t len, int fd)
{
	union {
		struct cmsghdr align;
		char buf[CMSG_SPACE(sizeof(int))];
	} control;
	struct iovec iov = { .iov_base = (void *)frame, .iov_len = len };
	struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1 };

	if (fd >= 0) {
		struct cmsghdr *cm;

		memset(&control, 0, sizeof(control));
		msg.msg_control = control.buf;
		msg.msg_controllen = sizeof(control.buf);
		cm = CMSG_FIRSTHDR(&msg);
		cm->cmsg_level = SOL_SOCKET;
		cm->cmsg_type = SCM_RIGHTS;
		cm->cmsg_len = CMSG_LEN(sizeof(int));
		memcpy(CMSG_DATA(cm), &fd, sizeof(int));
	}
	return sendmsg(sock, &msg, MSG_NOSIGNAL | MSG_DONTWAIT);
}

static int conn_send_frame(struct conn *c, uint16_t type, uint32_t request_id, int32_t status,
			   const void *payload, uint32_t payload_len, int fd)
{
	uint8_t frame[DXP_MAX_FRAME];
	size_t len;
	ssize_t n;

	c->last_status = status;
	/* Before HELLO completes, replies use the lowest version so any client can parse them. */
	len = dxp_frame_encode(frame, c->version ? c->version : DXP_PROTOCOL_VERSION_MIN,
			       type | DXP_REPLY_BIT, request_id, status, payload, payload_len);
	n = send_packet(c->fd, frame, len, fd);
	if (n == (ssize_t)len)
		return 0;
	if (n >= 0)
		return -EIO; /* SEQPACKET sends all or nothing */
	if (errno != EAGAIN && errno != EWOULDBLOCK)
		return -errno;
	/* The caller closes fd when we return: a parked reply keeps its own duplicate. Passing the
	 * number later would pass whatever the daemon opened under it meanwhile (another client's
	 * socket or slice). */
	int dup_fd = -1;

	if (fd >= 0) {
		dup_fd = fcntl(fd, F_DUPFD_CLOEXEC, 3);
		if (dup_fd < 0)
			return -errno;
	}
	c->pending = malloc(len);
	if (!c->pending) {
		if (dup_fd >= 0)
			close(dup_fd);
		return -ENOMEM;
	}
	memcpy(c->pending, frame, len);
	c->pending_len = len;
	c->pending_fd = dup_fd;
	limits_parked(c);
	ev_timer_set(&c->send_timer, c->daemon->opts.send_timeout_s, 0.); /* see accept_retry */
	ev_timer_start(c->daemon->loop, &c->send_timer);
	conn_update_events(c);
	return 0;
}

int conn_send_reply(struct conn *c, uint16_t type, uint32_t request_id, int32_t status,
		    const void *payload, uint32_t payload_len)
{
	return conn_send_frame(c, type, request_id, status, payload, payload_len, -1);
}

int conn_send_reply_fd(struct conn *c, uint16_t type, uint32_t request_id, const void *payload,
		       uint32_t payload_len, int fd)
{
	return conn_send_frame(c, type, request_id, 0, payload, payload_len, fd);
}

int conn_send_error(struct conn *c, uint16_t type, uint32_t request_id, int error, const char *fmt, ...)
{
	char msg[DXP_MAX_ERROR_MESSAGE + 1];
	uint8_t payload[DXP_MAX_ERROR_MESSAGE];
	size_t len;
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	len = dxp_error_payload_encode(msg, payload);
	return conn_send_reply(c, type, request_id, error, payload, (uint32_t)len);
}

/* A malformed frame: answer with an error so the client learns why, and count it. */
static int conn_protocol_error(struct conn *c, uint16_t type, uint32_t request_id, int error,
			       const char *what)
{
	c->protocol_errors++;
	c->daemon->protocol_errors++;
	log_info("client %" PRIu64 " (pid %d): %s", c->id, (int)c->pid, what);
	if (c->protocol_errors >= CONN_MAX_PROTOCOL_ERRORS) {
		log_notice("client %" PRIu64 " (pid %d): too many malformed frames, closing", c->id,
			   (int)c->pid);
		return -EPROTO;
	}
	return conn_send_error(c, type, request_id, error, "%s", what);
}

static int conn_handle_frame(struct conn *c, size_t len)
{
	struct dxp_header h;
	char what[128];

	if (len > DXP_MAX_FRAME) {
		snprintf(what, sizeof(what), "frame of %zu bytes exceeds the limit of %d", len, DXP_MAX_FRAME);
		return conn_protocol_error(c, DXP_MSG_ERROR, 0, -EMSGSIZE, what);
	}
	if (dxp_header_decode(c->in, len, &h) < 0) {
		snprintf(what, sizeof(what), "malformed frame header (%zu bytes)", len);
		return conn_protocol_error(c, DXP_MSG_ERROR, 0, -EBADMSG, what);
	}
	if (h.type & DXP_REPLY_BIT || h.status != 0)
		return conn_protocol_error(c, DXP_MSG_ERROR, h.request_id, -EBADMSG,
					   "clients send requests, not replies");
	if (c->version == 0 && h.type != DXP_MSG_HELLO)
		return conn_protocol_error(c, h.type, h.request_id, -EPROTO, "HELLO must come first");
	if (c->version != 0 && h.type != DXP_MSG_HELLO && h.version != c->version) {
		snprintf(what, sizeof(what), "frame version %u, negotiated %u", h.version, c->version);
		return conn_protocol_error(c, h.type, h.request_id, -EPROTO, what);
	}
	char why[DXP_MAX_ERROR_MESSAGE];
	int r = limits_check_request(c, h.type, why, sizeof(why));

	if (r < 0) {
		uint64_t quiet;

		if (limits_should_log(c->daemon, &quiet))
			log_notice("client %" PRIu64 " (pid %d uid %u): %s refused: %s (%" PRIu64 " more "
				   "refusals not logged since the last)", c->id, (int)c->pid, (unsigned)c->uid,
				   dxp_msg_type_name(h.type), why, quiet);
		return conn_send_error(c, h.type, h.request_id, r, "%s", why);
	}
	unsigned handles = HASH_COUNT(c->slices), pins = HASH_COUNT(c->pins);
	bool hello = c->version != 0;

	r = c->daemon->conn_handler->request(c, &h, c->in + DXP_HEADER_SIZE);
	limits_after_request(c, handles, pins, hello);
	return r;
}

static int conn_read(struct conn *c)
{
	ssize_t n;

	union {
		struct cmsghdr align;
		char buf[CMSG_SPACE(16 * sizeof(int))];
	} control;
	struct iovec iov = { .iov_base = c->in, .iov_len = sizeof(c->in) };
	struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = control.buf,
			      .msg_controllen = sizeof(control.buf) };
	bool got_fds = false;

	/* MSG_TRUNC makes recv report the real size of an oversized packet, which we then refuse. */
	n = recvmsg(c->fd, &msg, MSG_TRUNC | MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
	if (n < 0)
		return (errno == EAGAIN || errno == EINTR) ? 0 : -errno;
	/* Clients never send descriptors: close any we were handed so they cannot pile up. */
	for (struct cmsghdr *cm = CMSG_FIRSTHDR(&msg); cm; cm = CMSG_NXTHDR(&msg, cm)) {
		if (cm->cmsg_level == SOL_SOCKET && cm->cmsg_type == SCM_RIGHTS) {
			size_t nfds = (cm->cmsg_len - CMSG_LEN(0)) / sizeof(int);

			for (size_t i = 0; i < nfds; i++) {
				int fd;

				memcpy(&fd, CMSG_DATA(cm) + i * sizeof(int), sizeof(int));
				close(fd);
			}
			got_fds = true;
		}
	}
	if (got_fds || (msg.msg_flags & MSG_CTRUNC))
		return conn_protocol_error(c, DXP_MSG_ERROR, 0, -EBADMSG,
					   "unexpected file descriptors in a request (closed)");
	if (n == 0)
		return -ECONNRESET; /* orderly shutdown by the client */
	if (c->daemon->opts.idle_timeout_s)
		ev_timer_again(c->daemon->loop, &c->idle_timer);
	busy_poll_note_request(c->daemon);
	return conn_handle_frame(c, (size_t)n);
}

static int conn_flush(struct conn *c)
{
	ssize_t n = send_packet(c->fd, c->pending, c->pending_len, c->pending_fd);

	if (n < 0)
		return (errno == EAGAIN || errno == EINTR) ? 0 : -errno;
	limits_unparked(c);
	free(c->pending);
	c->pending = NULL;
	c->pending_len = 0;
	if (c->pending_fd >= 0)
		close(c->pending_fd);
	c->pending_fd = -1;
	ev_timer_stop(c->daemon->loop, &c->send_timer);
	conn_update_events(c);
	return 0;
}

void conn_resume(struct conn *c)
{
	c->carving = NULL;
	conn_update_events(c);
	if (!ev_is_active(&c->io) && !c->throttled)
		ev_io_start(c->daemon->loop, &c->io);
}

void conn_drain(struct conn *c)
{
	if (!c->pending)
		return;
	/* Up to ~100 ms per connection for a client that is reading right now. */
	for (int i = 0; i < 10 && c->pending; i++) {
		struct pollfd pfd = { .fd = c->fd, .events = POLLOUT };

		if (poll(&pfd, 1, 10) > 0 && conn_flush(c) < 0)
			return;
	}
}

static void conn_io_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	struct conn *c = (struct conn *)((char *)w - offsetof(struct conn, io));
	int r = 0;

	if (c->carving && !(revents & EV_WRITE)) {
		/* One request at a time: the next waits until the ALLOC is answered. */
		ev_io_stop(loop, &c->io);
		return;
	}
	if (revents & EV_WRITE)
		r = conn_flush(c);
	else if ((revents & EV_READ) && limits_may_read(c))
		r = conn_read(c);
	if (r < 0) {
		if (r != -ECONNRESET && r != -EPROTO)
			log_debug_errno(r, "client %" PRIu64 ": closing: %m", c->id);
		conn_free(c);
	}
}
