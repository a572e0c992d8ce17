/*
 * The carving worker's queue, fair between uids (carve.c). Pure bookkeeping — no lock, no
 * thread, no backend — so its order is unit-tested without a dynamic dax region
 * (tests/unit/test_carve_queue.c).
 *
 * Each uid has its own FIFO; the uids with queued work form a ring, and pop takes the first job
 * of the uid at the head of the ring and moves that uid to the back. One uid that queued 128
 * carves therefore delays another uid's next carve by at most one carve, not by 128.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <sys/queue.h>
#include <sys/types.h>

struct carve_queue_uid;

/* Embedded in what is queued (struct carve_job). */
struct carve_queue_item {
	uid_t uid;
	STAILQ_ENTRY(carve_queue_item) link;
};

struct carve_queue {
	TAILQ_HEAD(, carve_queue_uid) ring; /* uids with queued items, the next to be served first */
	size_t n;
};

void carve_queue_init(struct carve_queue *q);
/* Frees the per-uid entries; the items (owned by the caller) must have been popped. */
void carve_queue_done(struct carve_queue *q);
/* Queues item at the end of item->uid's FIFO. 0 or -ENOMEM (nothing queued). */
int carve_queue_push(struct carve_queue *q, struct carve_queue_item *item);
/* The next item in round-robin order over the uids, NULL when empty. */
struct carve_queue_item *carve_queue_pop(struct carve_queue *q);
/* Items queued for uid. */
size_t carve_queue_count(const struct carve_queue *q, uid_t uid);
/* Calls fn on every queued item (in no particular order) until it returns true: true then. */
bool carve_queue_any(const struct carve_queue *q, bool (*fn)(const struct carve_queue_item *item, const void *arg),
		     const void *arg);
