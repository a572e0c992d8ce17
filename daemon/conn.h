/* One client connection: framing, limits, the reply queue, peer credentials. */
#pragma once

#include "daemon.h"
#include "protocol.h"

#include <ev.h>
#include <sys/queue.h>
#include <sys/types.h>

/* A connection that has not completed HELLO within this time is closed. */
#define CONN_HELLO_TIMEOUT_S 10.0
/* A client that sends this many malformed frames is disconnected. */
#define CONN_MAX_PROTOCOL_ERRORS 8

struct conn {
	struct daxpoold *daemon;
	LIST_ENTRY(conn) link;
	int fd;
	ev_io io;
	ev_timer hello_timer;
	uint64_t id;
	pid_t pid;
	uid_t uid;
	gid_t gid;
	uint16_t version; /* 0 until HELLO */
	unsigned protocol_errors;
	/* At most one reply waits for the socket to become writable; while it waits the connection
	 * reads no further requests, so a client that never reads its replies costs one frame. */
	size_t pending_len;
	uint8_t *pending;
	uint8_t in[DXP_MAX_FRAME + 1];
};

/* Takes ownership of fd (accepted, non-blocking). */
int conn_new(struct daxpoold *d, int fd, struct conn **ret);
void conn_free(struct conn *c);

/* Queues or sends one reply frame. Returns 0, or a negative errno when the connection must close. */
int conn_send_reply(struct conn *c, uint16_t type, uint32_t request_id, int32_t status,
		    const void *payload, uint32_t payload_len);
int conn_send_error(struct conn *c, uint16_t type, uint32_t request_id, int error, const char *fmt, ...)
	__attribute__((format(printf, 5, 6)));

/* Handles one decoded request (dispatch.c). Returns 0, or a negative errno to close the connection. */
int dispatch_request(struct conn *c, const struct dxp_header *h, const uint8_t *payload);
