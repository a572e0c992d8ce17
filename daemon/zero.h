/*
 * Background zeroing of freed extents. A worker thread writes zeros (non-temporal, persisted,
 * through the memset function libpmem2 gives for the mapping) so a grant never waits on it; the
 * event loop learns of completions through an ev_async and only then lets the allocator reuse the
 * extent. The worker touches only extents that are quarantined in the pool, so it never races
 * the loop's metadata updates.
 */
#pragma once

#include <ev.h>
#include <stdbool.h>
#include <stdint.h>

struct zeroer;

typedef void (*zero_done_fn)(void *userdata, uint64_t cookie, int status);

struct backend;
/* Starts the worker. With slices (a backend in BACKEND_ISOLATION_SLICE mode) each extent's
 * object is scrubbed and destroyed through the backend (backend_slice_scrub/destroy); with
 * NULL, extents are zeroed in place: through ram (ram_len bytes, the backend's mapping of
 * device-dax over RAM, plain stores) when not NULL, else through a libpmem2 mapping of fd
 * (size bytes). done is called on the loop thread. */
int zeroer_new(struct ev_loop *loop, struct backend *slices, void *ram, uint64_t ram_len, int fd,
	       uint64_t size,
	       zero_done_fn done, void *userdata, struct zeroer **ret);
/* Stops the worker after the extents already queued (their completions are dropped) and unmaps. */
void zeroer_delete(struct zeroer **z);
/* Queues [offset, offset+length); done() later gets cookie. Returns 0 or -ENOMEM / -EINVAL
 * (outside the mapping). */
int zeroer_submit(struct zeroer *z, uint64_t offset, uint64_t length, uint64_t cookie);
/* Zeroes and persists [offset, offset+length) (slices: scrubs and destroys its object) on the
 * calling thread, now. For small extents a
 * hand-off to the worker (queue, futex, eventfd, completion) costs far more than the memset. */
int zeroer_zero_now(struct zeroer *z, uint64_t offset, uint64_t length);
/* Extents up to this size are zeroed on the loop thread (zeroer_zero_now). */
#define ZERO_SYNC_MAX (64u << 10)
/* Bytes queued or in progress, and bytes zeroed since start. */
uint64_t zeroer_pending_bytes(struct zeroer *z);
/* Whether anything is queued or being zeroed; lock-free, for the loop's busy-poll check. NULL: false. */
bool zeroer_has_backlog(struct zeroer *z);
uint64_t zeroer_done_bytes(struct zeroer *z);
