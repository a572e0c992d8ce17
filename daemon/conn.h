/* One client connection: framing, limits, the reply queue, peer credentials. */
#pragma once

#include "daemon.h"
#include "protocol.h"

#include <ev.h>
#include <stdbool.h>
#include <uthash.h>
#include <sys/queue.h>
#include <sys/types.h>

/* A connection that has not completed HELLO within limits.hello_timeout_ms is closed. */
/* A client that sends this many malformed frames is disconnected. */
#define CONN_MAX_PROTOCOL_ERRORS 8

/* A slice this connection was given (ALLOC/OPEN): the handle it names it by. */
struct conn_slice {
	uint64_t handle;
	uint64_t record_id; /* the lease is looked up by it: a lease may end before the handle */
	bool writable;
	bool anonymous; /* allocated anonymous by this connection: reclaimed when it closes */
	unsigned pins;
	UT_hash_handle hh;
};

struct uid_entry;

struct conn_pin {
	uint64_t pin_id;
	struct conn_slice *slice;
	UT_hash_handle hh;
};

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
	int32_t last_status; /* of the last reply sent or queued (metrics.c counts errors by it) */
	gid_t *groups; /* supplementary groups (SO_PEERGROUPS) */
	int n_groups;
	bool admin;
	struct uid_entry *uent; /* its uid's accounting (uid-limits.c) */
	bool throttled;		/* reading stopped: its uid has too many parked replies */
	LIST_ENTRY(conn) throttle_link;
	uint64_t next_handle;
	struct conn_slice *slices;
	struct conn_pin *pins;
	ev_timer send_timer; /* a parked reply not taken in time closes the connection */
	ev_timer idle_timer;
	int pending_fd;	     /* our own duplicate of the fd to pass with the parked reply, or -1 */
	/* An ALLOC whose slice's object is being made off the loop (carve.c): no further request
	 * is read until it is answered. */
	struct carve_job *carving;
	/* At most one reply waits for the socket to become writable; while it waits the connection
	 * reads no further requests, so a client that never reads its replies costs one frame. */
	size_t pending_len;
	uint8_t *pending;
	uint8_t in[DXP_MAX_FRAME + 1];
};

/* Takes ownership of fd (accepted, non-blocking). A peer refused by max_clients or a per-uid
 * bound (uid-limits.h) gets an error frame and -EUSERS is returned. */
int conn_new(struct daxpoold *d, int fd, struct conn **ret);
/* Sends one error frame (the lowest protocol version, which any client parses) and closes fd. */
void conn_reject(int fd, int32_t status, const char *text);
void conn_free(struct conn *c);
/* What freed connections (and their parked replies) and gone holder processes (their leases)
 * took is given back to the kernel in one malloc_trim, CONN_TRIM_DELAY_S after the first of them
 * went: once a second at most during a flood, so what a flood took does not stay with the
 * daemon (docs/RELIABILITY.md). */
#define CONN_TRIM_DELAY_S 1.0
void conn_note_freed(struct daxpoold *d, size_t bytes);
void conn_trim_cb(struct ev_loop *loop, ev_timer *w, int revents);
/* Reads requests again after an ALLOC that waited for its object was answered. */
void conn_resume(struct conn *c);
/* At shutdown: tries briefly to deliver a parked reply. */
void conn_drain(struct conn *c);

/* Queues or sends one reply frame. Returns 0, or a negative errno when the connection must close. */
int conn_send_reply(struct conn *c, uint16_t type, uint32_t request_id, int32_t status,
		    const void *payload, uint32_t payload_len);
/* Like conn_send_reply, passing fd (not closed; owned by the caller) with SCM_RIGHTS. */
int conn_send_reply_fd(struct conn *c, uint16_t type, uint32_t request_id, const void *payload,
		       uint32_t payload_len, int fd);
/* Whether the peer is in group gid (primary or supplementary). */
bool conn_in_group(const struct conn *c, gid_t gid);
int conn_send_error(struct conn *c, uint16_t type, uint32_t request_id, int error, const char *fmt, ...)
	__attribute__((format(printf, 5, 6)));

/* What the connection layer hands requests to (the daemon's handlers, dispatch.c; set in
 * struct daxpoold by server_start): the connection knows framing, not requests. */
struct conn_handler {
	/* One decoded request. Returns 0, or a negative errno to close the connection. */
	int (*request)(struct conn *c, const struct dxp_header *h, const uint8_t *payload);
	/* The connection is going: give up what its requests made (anonymous slices, a carve it
	 * waits for) before its handles are freed. */
	void (*closing)(struct conn *c);
};

/* ---- the per-uid bounds applied to a connection (conn-limits.c, over uid-limits.c) ---- */
/* Charges / releases a connection (conn_new / conn_free). */
int limits_conn_add(struct conn *c);
void limits_conn_remove(struct conn *c);

/* Whether c may read a request now: false when its uid had its turn (the socket is reported
 * again in the next loop turn) or has inflight replies parked (c's watcher is stopped until one
 * is taken). */
bool limits_may_read(struct conn *c);
/* A request of c is about to be dispatched: 0, or -EUSERS with why filled when the request
 * would take c's uid over a bound (it is then answered with that error, not dispatched). */
int limits_check_request(struct conn *c, uint16_t type, char *why, size_t why_size);
/* After dispatch: charges what the request changed (handles, pins, HELLO, a new holder). */
void limits_after_request(struct conn *c, unsigned handles_before, unsigned pins_before,
			  bool hello_before);
/* A reply of c was parked (the client did not read) / was taken or dropped. */
void limits_parked(struct conn *c);
void limits_unparked(struct conn *c);
