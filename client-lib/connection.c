/* Connecting to daxpoold, the HELLO handshake, and the request/reply round trip. */
#include "client.h"
#include "build-config.h"

#include <errno.h>
#include <poll.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int64_t now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static int send_frame(struct daxpool *dp, const uint8_t *frame, size_t len)
{
	ssize_t n;

	do
		n = send(dp->fd, frame, len, MSG_NOSIGNAL);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return dp_error(-errno, "sending request to daxpoold: %s", strerror(errno));
	if ((size_t)n != len)
		return dp_error(-EIO, "short send to daxpoold (%zd of %zu bytes)", n, len);
	return 0;
}

/* Receives one packet with recvmsg, keeping at most one passed fd in *ret_fd (others closed). */
static ssize_t recv_packet(struct daxpool *dp, int *ret_fd, bool block)
{
	union {
		struct cmsghdr align;
		char buf[CMSG_SPACE(4 * sizeof(int))];
	} control;
	struct iovec iov = { .iov_base = dp->buf, .iov_len = sizeof(dp->buf) };
	struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = control.buf,
			      .msg_controllen = sizeof(control.buf) };
	ssize_t n = recvmsg(dp->fd, &msg, MSG_TRUNC | MSG_CMSG_CLOEXEC | (block ? 0 : MSG_DONTWAIT));

	if (n < 0)
		return n;
	for (struct cmsghdr *cm = CMSG_FIRSTHDR(&msg); cm; cm = CMSG_NXTHDR(&msg, cm)) {
		if (cm->cmsg_level != SOL_SOCKET || cm->cmsg_type != SCM_RIGHTS)
			continue;
		size_t nfds = (cm->cmsg_len - CMSG_LEN(0)) / sizeof(int);
		for (size_t i = 0; i < nfds; i++) {
			int fd;

			memcpy(&fd, CMSG_DATA(cm) + i * sizeof(int), sizeof(int));
			if (*ret_fd < 0)
				*ret_fd = fd;
			else
				close(fd);
		}
	}
	return n;
}

/* The next dp->spin_backoff requests sleep at once; the one after that doubles it. */
static void spin_backoff_grow(struct daxpool *dp)
{
	dp->spin_skip = dp->spin_backoff;
	if (dp->spin_backoff < DAXPOOL_REPLY_SPIN_BACKOFF_MAX)
		dp->spin_backoff *= 2;
}

/*
 * Polls for a reply for up to dp->spin_us (daxpool_set_reply_spin): non-blocking receives, with
 * sched_yield() in between so that any other runnable thread on this CPU (the daemon, other
 * clients) goes first. Returns what recv_packet returned, or -1 with errno EAGAIN when nothing
 * came: the caller then sleeps. A poll that runs out makes the next 1, 2, 4 ... 64 requests
 * sleep at once; one that gets its reply within the budget halves the back-off. And after
 * DAXPOOL_REPLY_SPIN_YIELDS_MAX yields without sleeping, one request sleeps: each sched_yield()
 * moves the thread's deadline a whole slice later (EEVDF), so a thread that only ever yields
 * ends up behind even a SCHED_IDLE task (daxpoold's zeroer, for one), which then keeps the CPU
 * for its slice while our reply waits: grant p50 55 µs instead of 11 µs, seen in the bench.
 */
static ssize_t reply_spin(struct daxpool *dp, int *ret_fd)
{
	int64_t end;
	ssize_t n;

	if (dp->spin_us == 0 || dp->spin_skip > 0 || dp->spin_yields >= DAXPOOL_REPLY_SPIN_YIELDS_MAX) {
		if (dp->spin_skip > 0)
			dp->spin_skip--;
		/* Sleeping resets what the yields did to this thread's place in the run queue. */
		dp->spin_yields = 0;
		errno = EAGAIN;
		return -1;
	}
	end = now_us() + dp->spin_us;
	for (;;) {
		n = recv_packet(dp, ret_fd, false);
		if (n >= 0 || (errno != EAGAIN && errno != EINTR)) {
			/* Halved, not reset: where most polls run out (many clients, a busy daemon)
			 * an occasional lucky one must not bring polling back on every request. A
			 * reply found after the budget is no success: a yield let other threads run
			 * that long (with 64 clients, often), and counting it as one kept the threads
			 * that poll taking the CPU from those that sleep. Nor is it a failure: with 8
			 * clients that made them sleep too often. It leaves the back-off alone. */
			if (now_us() <= end && dp->spin_backoff > 1)
				dp->spin_backoff /= 2;
			return n;
		}
		if (now_us() >= end)
			break;
		sched_yield();
		dp->spin_yields++;
	}
	spin_backoff_grow(dp);
	dp->spin_yields = 0; /* the caller sleeps now */
	errno = EAGAIN;
	return -1;
}

/* Receives one frame within the deadline; returns its length. */
static int recv_frame(struct daxpool *dp, int64_t deadline_ms, size_t *ret_len, int *ret_fd)
{
	/* After the poll, a blocking recvmsg bounded by SO_RCVTIMEO (set at connect to the reply
	 * timeout): one syscall per reply. After EINTR or a short deadline, poll() keeps the
	 * deadline exact. */
	bool block = deadline_ms - now_ms() >= DAXPOOL_REPLY_TIMEOUT_MS - 100;
	bool spin = true;

	for (;;) {
		struct pollfd pfd = { .fd = dp->fd, .events = POLLIN };
		int64_t left = deadline_ms - now_ms();
		ssize_t n;
		int r;

		if (left <= 0)
			return dp_error(-ETIMEDOUT, "daxpoold did not reply in time");
		if (spin) {
			/* Nothing yet (EAGAIN) goes round again, to sleep this time. */
			spin = false;
			n = reply_spin(dp, ret_fd);
			goto got;
		}
		if (!block) {
			r = poll(&pfd, 1, (int)left);
			if (r < 0 && errno == EINTR)
				continue;
			if (r < 0)
				return dp_error(-errno, "waiting for daxpoold: %s", strerror(errno));
			if (r == 0)
				continue;
		}
		n = recv_packet(dp, ret_fd, block);
		block = false;
	got:
		if (n < 0 && (errno == EINTR || errno == EAGAIN))
			continue;
		if (n < 0 && errno == ECONNRESET) {
			/* The daemon closed while our request sat unread in its queue. Linux reports
			 * that reset once, ahead of any frame the daemon sent before closing (e.g.
			 * the reason it refused us); fetch that frame if there is one. */
			n = recv_packet(dp, ret_fd, false);
			if (n <= 0)
				return dp_error(-ECONNRESET, "daxpoold reset the connection");
		}
		if (n < 0)
			return dp_error(-errno, "receiving from daxpoold: %s", strerror(errno));
		if (n == 0)
			return dp_error(-ECONNRESET, "daxpoold closed the connection");
		if ((size_t)n > sizeof(dp->buf))
			return dp_error(-DAXPOOL_E_PROTOCOL, "oversized frame from daxpoold (%zd bytes)", n);
		*ret_len = (size_t)n;
		return 0;
	}
}

int dp_request(struct daxpool *dp, uint16_t type, const void *payload, uint32_t payload_len,
	       size_t *ret_len)
{
	return dp_request_fd(dp, type, payload, payload_len, ret_len, NULL);
}

int dp_request_fd(struct daxpool *dp, uint16_t type, const void *payload, uint32_t payload_len,
		  size_t *ret_len, int *ret_fd)
{
	_cleanup_(closep) int fd = -1;
	int64_t deadline = now_ms() + (type == DXP_MSG_ALLOC ? DAXPOOL_ALLOC_TIMEOUT_MS
							     : DAXPOOL_REPLY_TIMEOUT_MS);
	uint32_t id = ++dp->next_request_id;
	struct dxp_header h;
	size_t len;
	int r;

	if (getpid() != dp->owner_pid)
		return dp_error(-ECHILD, "connection was made by another process (used after fork?)");
	len = dxp_frame_encode(dp->buf, dp->version, type, id, 0, payload, payload_len);
	r = send_frame(dp, dp->buf, len);
	if (r == -EPIPE || r == -ECONNRESET) {
		/* The daemon may have refused us and closed (e.g. too many clients): its reason is
		 * still queued on the socket, and is more useful than EPIPE. */
		if (recv_frame(dp, now_ms() + 100, &len, &fd) < 0)
			return dp_error(r, "daxpoold closed the connection");
	} else if (r < 0) {
		return r;
	} else {
		r = recv_frame(dp, deadline, &len, &fd);
		if (r < 0)
			return r;
	}
	r = dxp_header_decode(dp->buf, len, &h);
	if (r < 0)
		return dp_error(-DAXPOOL_E_PROTOCOL, "malformed reply header from daxpoold");
	if (h.type == (DXP_MSG_ERROR | DXP_REPLY_BIT) || h.type == (type | DXP_REPLY_BIT)) {
		/* ERROR frames are about the connection (request id 0) or about our frame. */
		if (h.type != (DXP_MSG_ERROR | DXP_REPLY_BIT) && h.request_id != id)
			return dp_error(-DAXPOOL_E_PROTOCOL, "reply for request %u, expected %u",
					h.request_id, id);
	} else {
		return dp_error(-DAXPOOL_E_PROTOCOL, "daxpoold replied %s to %s",
				dxp_msg_type_name(h.type), dxp_msg_type_name(type));
	}
	if (h.status < 0) {
		char msg[DXP_MAX_ERROR_MESSAGE + 1];

		if (dxp_error_payload_decode(dp->buf + DXP_HEADER_SIZE, h.payload_len, msg) < 0)
			return dp_error(-DAXPOOL_E_PROTOCOL, "malformed error reply from daxpoold");
		return dp_error(h.status, "daxpoold: %s", msg[0] ? msg : strerrordesc_np(-h.status));
	}
	if (h.type != (type | DXP_REPLY_BIT))
		return dp_error(-DAXPOOL_E_PROTOCOL, "error frame without an error status");
	if (ret_fd) {
		if (fd < 0)
			return dp_error(-DAXPOOL_E_PROTOCOL, "%s reply carried no file descriptor",
					dxp_msg_type_name(type));
		*ret_fd = TAKE_FD(fd);
	}
	*ret_len = h.payload_len;
	return 0;
}

static int hello(struct daxpool *dp)
{
	struct dxp_hello_request req = {
		.min_version = DXP_PROTOCOL_VERSION_MIN,
		.max_version = DXP_PROTOCOL_VERSION_MAX,
		.client_pid = (uint32_t)getpid(),
	};
	uint8_t payload[DXP_HELLO_REQUEST_SIZE];
	struct dxp_hello_reply reply;
	size_t len;
	int r;

	/* HELLO frames carry the highest version we speak; the daemon answers in the chosen one. */
	dp->version = DXP_PROTOCOL_VERSION_MAX;
	dxp_hello_request_encode(&req, payload);
	r = dp_request(dp, DXP_MSG_HELLO, payload, sizeof(payload), &len);
	if (r == -EPROTONOSUPPORT)
		return dp_error(-DAXPOOL_E_VERSION, "%s", daxpool_errormsg());
	if (r < 0)
		return r;
	if (dxp_hello_reply_decode(dp->buf + DXP_HEADER_SIZE, len, &reply) < 0)
		return dp_error(-DAXPOOL_E_PROTOCOL, "malformed HELLO reply from daxpoold");
	if (reply.version < DXP_PROTOCOL_VERSION_MIN || reply.version > DXP_PROTOCOL_VERSION_MAX)
		return dp_error(-DAXPOOL_E_VERSION, "daxpoold chose protocol version %u, we speak %u..%u",
				reply.version, DXP_PROTOCOL_VERSION_MIN, DXP_PROTOCOL_VERSION_MAX);
	dp->version = reply.version;
	memcpy(dp->daemon_version, reply.daemon_version, sizeof(dp->daemon_version));
	return 0;
}

static void connection_free(struct daxpool *dp)
{
	if (!dp)
		return;
	if (dp->fd >= 0)
		close(dp->fd);
	pthread_mutex_destroy(&dp->lock);
	free(dp);
}
DEFINE_TRIVIAL_CLEANUP_FUNC(struct daxpool *, connection_free);

DAXPOOL_EXPORT int daxpool_connect(const char *socket_path, struct daxpool **ret)
{
	_cleanup_(connection_freep) struct daxpool *dp = NULL;
	struct sockaddr_un addr = { .sun_family = AF_UNIX };
	int r;

	dp_error_clear();
	if (!ret)
		return dp_error(-EINVAL, "daxpool_connect: ret is NULL");
	if (!socket_path)
		socket_path = getenv("DAXPOOL_SOCKET");
	if (!socket_path || !*socket_path)
		socket_path = DAXPOOL_DEFAULT_SOCKET;
	if (strlen(socket_path) >= sizeof(addr.sun_path))
		return dp_error(-EINVAL, "socket path too long (%zu bytes, at most %zu)",
				strlen(socket_path), sizeof(addr.sun_path) - 1);
	strcpy(addr.sun_path, socket_path);

	dp = calloc(1, sizeof(*dp));
	if (!dp)
		return dp_error(-ENOMEM, "out of memory");
	dp->fd = -1;
	pthread_mutex_init(&dp->lock, NULL);
	dp->owner_pid = getpid();
	dp->spin_us = DAXPOOL_REPLY_SPIN_DEFAULT_US;
	dp->spin_backoff = 1;
	const char *spin = getenv("DAXPOOL_REPLY_SPIN_US");
	if (spin && *spin) {
		char *end;
		unsigned long v;

		errno = 0;
		v = strtoul(spin, &end, 10);
		/* Not worth failing a connection over: a bad value keeps the default. */
		if (errno == 0 && *end == 0 && spin[0] != '-' && v <= DAXPOOL_REPLY_SPIN_MAX_US)
			dp->spin_us = (unsigned)v;
	}
	dp->fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	if (dp->fd < 0)
		return dp_error(-errno, "socket: %s", strerror(errno));
	if (connect(dp->fd, (struct sockaddr *)&addr, sizeof(addr)) < 0)
		return dp_error(-errno, "connecting to daxpoold at %s: %s", socket_path, strerror(errno));
	struct timeval tv = { .tv_sec = DAXPOOL_REPLY_TIMEOUT_MS / 1000,
			      .tv_usec = (DAXPOOL_REPLY_TIMEOUT_MS % 1000) * 1000 };
	if (setsockopt(dp->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) < 0)
		return dp_error(-errno, "setsockopt SO_RCVTIMEO: %s", strerror(errno));
	r = hello(dp);
	if (r < 0)
		return r;
	*ret = TAKE_PTR(dp);
	return 0;
}

DAXPOOL_EXPORT void daxpool_disconnect(struct daxpool **dp)
{
	if (!dp)
		return;
	connection_free(*dp);
	*dp = NULL;
}

DAXPOOL_EXPORT int daxpool_set_reply_spin(struct daxpool *dp, unsigned max_us)
{
	dp_error_clear();
	if (!dp)
		return dp_error(-EINVAL, "daxpool_set_reply_spin: connection is NULL");
	if (max_us > DAXPOOL_REPLY_SPIN_MAX_US)
		return dp_error(-EINVAL, "reply spin of %u µs is more than the %d µs allowed", max_us,
				DAXPOOL_REPLY_SPIN_MAX_US);
	pthread_mutex_lock(&dp->lock);
	dp->spin_us = max_us;
	dp->spin_skip = 0;
	dp->spin_backoff = 1;
	pthread_mutex_unlock(&dp->lock);
	return 0;
}

DAXPOOL_EXPORT int daxpool_protocol_version(const struct daxpool *dp)
{
	return dp ? dp->version : -EINVAL;
}

DAXPOOL_EXPORT const char *daxpool_daemon_version(const struct daxpool *dp)
{
	return dp ? dp->daemon_version : NULL;
}

DAXPOOL_EXPORT int daxpool_ping(struct daxpool *dp)
{
	uint8_t payload[DXP_PING_SIZE];
	struct dxp_ping ping, echo;
	size_t len;
	int r;

	dp_error_clear();
	if (!dp)
		return dp_error(-EINVAL, "daxpool_ping: connection is NULL");
	pthread_mutex_lock(&dp->lock);
	ping.nonce = ((uint64_t)dp->next_request_id << 32) ^ (uint64_t)now_ms() ^ (uint64_t)(uintptr_t)dp;
	dxp_ping_encode(&ping, payload);
	r = dp_request(dp, DXP_MSG_PING, payload, sizeof(payload), &len);
	if (r >= 0 && dxp_ping_decode(dp->buf + DXP_HEADER_SIZE, len, &echo) < 0)
		r = dp_error(-DAXPOOL_E_PROTOCOL, "malformed PING reply");
	else if (r >= 0 && echo.nonce != ping.nonce)
		r = dp_error(-DAXPOOL_E_PROTOCOL, "PING reply echoed the wrong nonce");
	pthread_mutex_unlock(&dp->lock);
	return r;
}

DAXPOOL_EXPORT const char *daxpool_version(void)
{
	return DAXPOOL_VERSION_STRING;
}
