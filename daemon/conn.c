/* Client connections: reading frames, validating them, queuing replies; see conn.h. */
#include "conn.h"
#include "log.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static void conn_io_cb(struct ev_loop *loop, ev_io *w, int revents);

static void conn_hello_timeout_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct conn *c = (struct conn *)((char *)w - offsetof(struct conn, hello_timer));

	log_notice("client %" PRIu64 " (pid %d) sent no HELLO within %.0f s, closing", c->id, (int)c->pid,
		   CONN_HELLO_TIMEOUT_S);
	conn_free(c);
}

int conn_new(struct daxpoold *d, int fd, struct conn **ret)
{
	struct ucred cred;
	socklen_t len = sizeof(cred);
	struct conn *c;

	c = calloc(1, sizeof(*c));
	if (!c) {
		close(fd);
		return -ENOMEM;
	}
	c->daemon = d;
	c->fd = fd;
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
	ev_io_init(&c->io, conn_io_cb, fd, EV_READ);
	ev_io_start(d->loop, &c->io);
	ev_timer_init(&c->hello_timer, conn_hello_timeout_cb, CONN_HELLO_TIMEOUT_S, 0.);
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
	log_debug("client %" PRIu64 " (pid %d) disconnected", c->id, (int)c->pid);
	ev_io_stop(c->daemon->loop, &c->io);
	ev_timer_stop(c->daemon->loop, &c->hello_timer);
	LIST_REMOVE(c, link);
	c->daemon->n_conns--;
	close(c->fd);
	free(c->pending);
	free(c);
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

int conn_send_reply(struct conn *c, uint16_t type, uint32_t request_id, int32_t status,
		    const void *payload, uint32_t payload_len)
{
	uint8_t frame[DXP_MAX_FRAME];
	size_t len;
	ssize_t n;

	/* Before HELLO completes, replies use the lowest version so any client can parse them. */
	len = dxp_frame_encode(frame, c->version ? c->version : DXP_PROTOCOL_VERSION_MIN,
			       type | DXP_REPLY_BIT, request_id, status, payload, payload_len);
	n = send(c->fd, frame, len, MSG_NOSIGNAL | MSG_DONTWAIT);
	if (n == (ssize_t)len)
		return 0;
	if (n >= 0)
		return -EIO; /* SEQPACKET sends all or nothing */
	if (errno != EAGAIN && errno != EWOULDBLOCK)
		return -errno;
	c->pending = malloc(len);
	if (!c->pending)
		return -ENOMEM;
	memcpy(c->pending, frame, len);
	c->pending_len = len;
	conn_update_events(c);
	return 0;
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
	return dispatch_request(c, &h, c->in + DXP_HEADER_SIZE);
}

static int conn_read(struct conn *c)
{
	ssize_t n;

	/* MSG_TRUNC makes recv report the real size of an oversized packet, which we then refuse. */
	n = recv(c->fd, c->in, sizeof(c->in), MSG_TRUNC | MSG_DONTWAIT);
	if (n < 0)
		return (errno == EAGAIN || errno == EINTR) ? 0 : -errno;
	if (n == 0)
		return -ECONNRESET; /* orderly shutdown by the client */
	return conn_handle_frame(c, (size_t)n);
}

static int conn_flush(struct conn *c)
{
	ssize_t n = send(c->fd, c->pending, c->pending_len, MSG_NOSIGNAL | MSG_DONTWAIT);

	if (n < 0)
		return (errno == EAGAIN || errno == EINTR) ? 0 : -errno;
	free(c->pending);
	c->pending = NULL;
	c->pending_len = 0;
	conn_update_events(c);
	return 0;
}

static void conn_io_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	struct conn *c = (struct conn *)((char *)w - offsetof(struct conn, io));
	int r = 0;

	if (revents & EV_WRITE)
		r = conn_flush(c);
	else if (revents & EV_READ)
		r = conn_read(c);
	if (r < 0) {
		if (r != -ECONNRESET && r != -EPROTO)
			log_debug_errno(r, "client %" PRIu64 ": closing: %m", c->id);
		conn_free(c);
	}
}
