/*
 * Making slow per-slice objects off the event loop. Carving a sub-device of a dynamic dax region
 * and zeroing it takes milliseconds on hardware and seconds under emulation (a 1 GiB slice:
 * 7–9 s under QEMU TCG); done on the loop, every other client waited for it. An ALLOC on such a
 * backend persists its record on the loop as before, then queues the object here and stops
 * reading that connection's requests; one worker thread makes the objects in order; an ev_async
 * brings each finished job back to the loop, where dispatch grants the slice (or undoes the
 * record) and the connection reads again. Other clients are served meanwhile — their grants of
 * slices already carved, their PINGs and FREEs.
 *
 * The worker takes the queued jobs in round-robin order over uids (carve-queue.c), so one uid
 * with many connections, each with a slow carve queued, delays another uid's carve by one carve,
 * not by all of them; limits.carves_per_uid bounds how many one uid may have waiting at once
 * (uid-limits.c), counted here on the loop thread.
 *
 * The worker calls only backend_slice_create (the backend's sub-device code takes its own
 * libdaxctl context per call and locks its table); the pool is touched by the loop thread only.
 */
#include "carve.h"
#include "backend.h"
#include "daemon.h"
#include "log.h"
#include "loop-worker.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdlib.h>
#include <uthash.h>

STAILQ_HEAD(carve_list, carve_job);

/* ALLOCs of one uid waiting for their object, from carver_submit to done() (loop thread). */
struct carve_pending {
	uid_t uid;
	unsigned n;
	UT_hash_handle hh;
};

struct carver {
	struct daxpoold *d;
	carve_done_fn done, dropped;
	struct loop_worker w;
	struct carve_queue todo;	/* under w.lock */
	struct carve_list finished;	/* under w.lock */
	struct carve_job *current; /* being made by the worker */
	struct carve_pending *pending; /* by uid; loop thread only */
	unsigned n_pending;
};

static void pending_add(struct carver *cv, uid_t uid, int delta)
{
	struct carve_pending *p;

	HASH_FIND(hh, cv->pending, &uid, sizeof(uid), p);
	if (!p) {
		if (delta < 0)
			return;
		p = calloc(1, sizeof(*p));
		if (!p)
			return; /* uncounted: the bound is then looser, never stricter */
		p->uid = uid;
		HASH_ADD(hh, cv->pending, uid, sizeof(p->uid), p);
	}
	if (delta < 0 && p->n == 0)
		return;
	p->n += (unsigned)delta;
	cv->n_pending += (unsigned)delta;
	if (!p->n) {
		HASH_DEL(cv->pending, p);
		free(p);
	}
}

static void *carve_worker(void *arg)
{
	struct carver *cv = arg;

	pthread_mutex_lock(&cv->w.lock);
	for (;;) {
		struct carve_job *job;

		while (!cv->todo.n && !cv->w.stop)
			pthread_cond_wait(&cv->w.cond, &cv->w.lock);
		if (cv->w.stop)
			break;
		job = (struct carve_job *)carve_queue_pop(&cv->todo);
		cv->current = job;
		pthread_mutex_unlock(&cv->w.lock);
		job->result = backend_slice_create(cv->d->backend, job->rec.offset, job->rec.length,
						   job->rec.align);
		if (job->result < 0)
			log_error_errno(job->result, "making the object of record %" PRIu64 ": %s",
					job->rec.id, backend_errormsg());
		pthread_mutex_lock(&cv->w.lock);
		cv->current = NULL;
		STAILQ_INSERT_TAIL(&cv->finished, job, link);
		loop_worker_notify(&cv->w);
	}
	pthread_mutex_unlock(&cv->w.lock);
	return NULL;
}

static void carve_async_cb(struct ev_loop *loop, ev_async *w, int revents)
{
	struct carver *cv = w->data;
	struct carve_list done = STAILQ_HEAD_INITIALIZER(done);
	struct carve_job *job;

	(void)loop;
	(void)revents;
	pthread_mutex_lock(&cv->w.lock);
	STAILQ_CONCAT(&done, &cv->finished);
	pthread_mutex_unlock(&cv->w.lock);
	while ((job = STAILQ_FIRST(&done))) {
		STAILQ_REMOVE_HEAD(&done, link);
		pending_add(cv, job->item.uid, -1);
		cv->done(cv->d, job);
		free(job);
	}
}

int carver_new(struct daxpoold *d, carve_done_fn done, carve_done_fn dropped, struct carver **ret)
{
	struct carver *cv = calloc(1, sizeof(*cv));
	int r;

	if (!cv)
		return -ENOMEM;
	cv->d = d;
	cv->done = done;
	cv->dropped = dropped;
	carve_queue_init(&cv->todo);
	STAILQ_INIT(&cv->finished);
	loop_worker_init(&cv->w, d->loop, carve_async_cb, cv);
	r = loop_worker_start(&cv->w, carve_worker, cv);
	if (r < 0) {
		carver_delete(&cv);
		return r;
	}
	*ret = cv;
	return 0;
}

int carver_submit(struct carver *cv, struct carve_job *job)
{
	int r;

	pthread_mutex_lock(&cv->w.lock);
	r = carve_queue_push(&cv->todo, &job->item);
	if (r == 0)
		pthread_cond_signal(&cv->w.cond);
	pthread_mutex_unlock(&cv->w.lock);
	if (r < 0)
		return r;
	pending_add(cv, job->item.uid, 1);
	return 0;
}

unsigned carver_pending_uid(struct carver *cv, uid_t uid)
{
	struct carve_pending *p;

	HASH_FIND(hh, cv->pending, &uid, sizeof(uid), p);
	return p ? p->n : 0;
}

unsigned carver_pending(struct carver *cv)
{
	return cv->n_pending;
}

static bool job_is_record(const struct carve_queue_item *item, const void *arg)
{
	return ((const struct carve_job *)item)->rec.id == *(const uint64_t *)arg;
}

bool carver_is_making(struct carver *cv, uint64_t record_id)
{
	struct carve_job *job;
	bool found = false;

	pthread_mutex_lock(&cv->w.lock);
	if (cv->current && cv->current->rec.id == record_id)
		found = true;
	found = found || carve_queue_any(&cv->todo, job_is_record, &record_id);
	STAILQ_FOREACH(job, &cv->finished, link)
		found = found || job->rec.id == record_id;
	pthread_mutex_unlock(&cv->w.lock);
	return found;
}

void carver_delete(struct carver **cvp)
{
	struct carver *cv = cvp ? *cvp : NULL;
	struct carve_pending *p, *ptmp;
	struct carve_job *job;

	if (!cv)
		return;
	loop_worker_done(&cv->w);
	while ((job = (struct carve_job *)carve_queue_pop(&cv->todo)))
		STAILQ_INSERT_TAIL(&cv->finished, job, link);
	carve_queue_done(&cv->todo);
	while ((job = STAILQ_FIRST(&cv->finished))) {
		STAILQ_REMOVE_HEAD(&cv->finished, link);
		cv->dropped(cv->d, job);
		free(job);
	}
	HASH_ITER(hh, cv->pending, p, ptmp) {
		HASH_DEL(cv->pending, p);
		free(p);
	}
	free(cv);
	*cvp = NULL;
}
