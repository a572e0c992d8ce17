/* Private definitions of libdaxpool: the connection object and its request round trip. */
#pragma once

#include "daxpool.h"
#include "protocol.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>

#include "macro.h"

/* How long a request waits for its reply before failing with -ETIMEDOUT. */
#define DAXPOOL_REPLY_TIMEOUT_MS 10000
/* An ALLOC may wait for its slice's object to be made: on a dynamic dax region a sub-device is
 * carved and zeroed (seconds for 1 GiB, more behind other uids' carves in the daemon's queue). */
#define DAXPOOL_ALLOC_TIMEOUT_MS 120000

/* How long daxpool_alloc waits for freed space to finish zeroing before it says -ENOSPC. */
#define DAXPOOL_ZEROING_WAIT_MS 2000

/* After this many polls in a row that ended without a reply, a connection sleeps at once for
 * up to this many requests before it polls again (see reply_spin in connection.c). */
#define DAXPOOL_REPLY_SPIN_BACKOFF_MAX 64
/* After this many sched_yield() calls without sleeping, a request sleeps (see reply_spin). */
#define DAXPOOL_REPLY_SPIN_YIELDS_MAX 64

struct daxpool {
	int fd;
	pid_t owner_pid; /* the process that connected; a forked child must not talk on fd */
	uint16_t version;
	uint32_t next_request_id;
	pthread_mutex_t lock; /* one request in flight per connection */
	/* Polling for replies (daxpool_set_reply_spin): the budget in µs (0 = never), and the
	 * back-off after polls that found nothing: requests left to sleep at once, next back-off. */
	unsigned spin_us, spin_skip, spin_backoff, spin_yields;
	char daemon_version[DXP_VERSION_STRING_SIZE];
	uint8_t buf[DXP_MAX_FRAME];
};

struct daxpool_status {
	struct dxp_status_reply reply;
};

/* Records a message for daxpool_errormsg() and returns error, so `return dp_error(...)` works. */
int dp_error(int error, const char *fmt, ...) _printf_(2, 3);
void dp_error_clear(void);

/*
 * Sends one request and waits for its reply. On success the reply payload is at
 * dp->buf + DXP_HEADER_SIZE and its length in *ret_len; a daemon-side failure returns the
 * reply's negative status with the daemon's message recorded. Caller holds dp->lock.
 */
int dp_request(struct daxpool *dp, uint16_t type, const void *payload, uint32_t payload_len,
	       size_t *ret_len);
/* Like dp_request for replies that carry an fd (ALLOC, OPEN): *ret_fd receives it (close-on-exec),
 * and a reply without one is a protocol error. Any fd passed with a failed reply is closed. */
int dp_request_fd(struct daxpool *dp, uint16_t type, const void *payload, uint32_t payload_len,
		  size_t *ret_len, int *ret_fd);

struct pmem2_map;

struct daxpool_slice {
	struct dxp_slice desc;
	int fd;
	/* The mapping made by daxpool_map (map.c), at most one. map_lock serializes map/unmap and
	 * the pin count; daxpool_persist reads the fields without it (the caller must not race it
	 * with daxpool_unmap, as with any use of the memory). */
	pthread_mutex_t map_lock;
	void *map_addr;
	size_t map_len;
	bool map_writable;
	struct pmem2_map *pmap;		      /* libpmem2's view of the mapping, for its persist fn */
	void (*persist)(const void *, size_t); /* pmem2_get_persist_fn(pmap) */
	unsigned pins;			      /* live daxpool_pin objects on the mapping */
};

/* Slice set-up and tear-down of the mapping state (map.c). */
void dp_slice_map_init(struct daxpool_slice *s);
/* Removes the mapping if there is one; -EBUSY (nothing done) while library pins exist. */
int dp_slice_unmap_for_end(struct daxpool_slice *s);
void dp_slice_map_destroy(struct daxpool_slice *s);

/* persist.c: libpmem2's description of a fresh writable mapping (sets s->pmap and s->persist),
 * and its removal before munmap. */
int dp_persist_attach(struct daxpool_slice *s);
void dp_persist_detach(struct daxpool_slice *s);
