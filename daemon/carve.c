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

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
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
	struct ev_loop *loop;
	ev_async async;
	pthread_t thread;
	bool thread_started;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	struct carve_queue todo;	/* under lock */
	struct carve_list finished;	/* under lock */
	struct carve_job *current; /* being made by the worker */
	bool stop;
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

	pthread_mutex_lock(&cv->lock);
	for (;;) {
		struct carve_job *job;

		while (!cv->todo.n && !cv->stop)
			pthread_cond_wait(&cv->cond, &cv->lock);
		if (cv->stop)
			break;
		job = (struct carve_job *)carve_queue_pop(&cv->todo);
		cv->current = job;
		pthread_mutex_unlock(&cv->lock);
		job->result = backend_slice_create(cv->d->backend, job->rec.offset, job->rec.length,
						   job->rec.align);
		if (job->result < 0)
			log_error_errno(job->result, "making the object of record %" PRIu64 ": %s",
					job->rec.id, backend_errormsg());
		pthread_mutex_lock(&cv->lock);
		cv->current = NULL;
		STAILQ_INSERT_TAIL(&cv->finished, job, link);
		ev_async_send(cv->loop, &cv->async);
	}
	pthread_mutex_unlock(&cv->lock);
	return NULL;
}

static void carve_async_cb(struct ev_loop *loop, ev_async *w, int revents)
{
	struct carver *cv = w->data;
	struct carve_list done = STAILQ_HEAD_INITIALIZER(done);
	struct carve_job *job;

	(void)loop;
	(void)revents;
	pthread_mutex_lock(&cv->lock);
	STAILQ_CONCAT(&done, &cv->finished);
	pthread_mutex_unlock(&cv->lock);
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
	sigset_t all, old;
	int r;

	if (!cv)
		return -ENOMEM;
	cv->d = d;
	cv->done = done;
	cv->dropped = dropped;
	cv->loop = d->loop;
	carve_queue_init(&cv->todo);
	STAILQ_INIT(&cv->finished);
	pthread_mutex_init(&cv->lock, NULL);
	pthread_cond_init(&cv->cond, NULL);
	ev_async_init(&cv->async, carve_async_cb);
	cv->async.data = cv;
	ev_async_start(cv->loop, &cv->async);
	/* The worker must not take the loop's signals: they are handled by ev_signal there. */
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, &old);
	r = -pthread_create(&cv->thread, NULL, carve_worker, cv);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (r < 0) {
		carver_delete(&cv);
		return r;
	}
	cv->thread_started = true;
	*ret = cv;
	return 0;
}

int carver_submit(struct carver *cv, struct carve_job *job)
{
	int r;

	pthread_mutex_lock(&cv->lock);
	r = carve_queue_push(&cv->todo, &job->item);
	if (r == 0)
		pthread_cond_signal(&cv->cond);
	pthread_mutex_unlock(&cv->lock);
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

	pthread_mutex_lock(&cv->lock);
	if (cv->current && cv->current->rec.id == record_id)
		found = true;
	found = found || carve_queue_any(&cv->todo, job_is_record, &record_id);
	STAILQ_FOREACH(job, &cv->finished, link)
		found = found || job->rec.id == record_id;
	pthread_mutex_unlock(&cv->lock);
	return found;
}

void carver_delete(struct carver **cvp)
{
	struct carver *cv = cvp ? *cvp : NULL;
	struct carve_pending *p, *ptmp;
	struct carve_job *job;

	if (!cv)
		return;
	if (cv->thread_started) {
		pthread_mutex_lock(&cv->lock);
		cv->stop = true;
		pthread_cond_broadcast(&cv->cond);
		pthread_mutex_unlock(&cv->lock);
		pthread_join(cv->thread, NULL);
	}
	ev_async_stop(cv->loop, &cv->async);
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
	pthread_mutex_destroy(&cv->lock);
	pthread_cond_destroy(&cv->cond);
	free(cv);
	*cvp = NULL;
}
