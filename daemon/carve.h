/* Making slow per-slice objects (carved sub-devices) off the event loop (see carve.c). */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <sys/queue.h>

#include "carve-queue.h"
#include "pool.h"
#include "protocol.h"

struct daxpoold;
struct conn;
struct carver;

/* One ALLOC waiting for its slice's object. The loop thread owns every field but result, which
 * the worker writes before it hands the job back. */
struct carve_job {
	struct carve_queue_item item; /* item.uid: the uid whose turn it takes (the ALLOC's caller) */
	void *owner;		     /* who waits for it (the caller's; NULL once it has gone) */
	struct dxp_header request;   /* the ALLOC to answer (type, request id) */
	struct pool_record_info rec; /* the record, persisted before the job was queued */
	bool anonymous;
	int result;		     /* of backend_slice_create */
	uint64_t start_ns;	     /* when the ALLOC was read (metrics) */
	STAILQ_ENTRY(carve_job) link;
};

/* Called on the loop thread for each finished job (done), or for each job dropped when the
 * carver stops (dropped); the job is freed after it returns. */
typedef void (*carve_done_fn)(struct daxpoold *d, struct carve_job *job);

/* Starts the worker. Errors: -ENOMEM, errors of pthread_create. */
int carver_new(struct daxpoold *d, carve_done_fn done, carve_done_fn dropped, struct carver **ret);
/* Stops the worker after the object it is making (queued jobs are dropped: their records stay,
 * as after a crash between a record and its object; dropped() runs for each) and frees every
 * job. Accepts NULL / *NULL. */
void carver_delete(struct carver **cv);
/* Queues the object of job->rec behind the jobs of other uids in round-robin order
 * (carve-queue.h); done() runs for it on the loop thread once its object is made. Takes ownership
 * of job on success. Errors: -ENOMEM (nothing queued; the caller still owns job). */
int carver_submit(struct carver *cv, struct carve_job *job);
/* ALLOCs waiting for their object (queued, being made, or made and not answered yet): of uid,
 * and in all. Loop thread only. */
unsigned carver_pending_uid(struct carver *cv, uid_t uid);
unsigned carver_pending(struct carver *cv);
/* True while the ALLOC of record_id waits for its object (queued, being made, or made and not
 * answered yet): nobody else may be granted the slice before its creator. */
bool carver_is_making(struct carver *cv, uint64_t record_id);
