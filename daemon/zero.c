/* The zeroing worker; see zero.h. */
#include "zero.h"
#include "macro.h"
#include "pool.h"
#include "backend.h"
#include "loop-worker.h"

#include <errno.h>
#include <libpmem2.h>
#include <pthread.h>
#include <sched.h>
#include <stdbool.h>
#include <stdlib.h>
#include <sys/queue.h>

/* Zero in chunks so a huge extent does not hold the queue lock's readers off for seconds, and
 * so the done-bytes counter moves smoothly. */
#define ZERO_CHUNK (64ull << 20)

struct zero_job {
	STAILQ_ENTRY(zero_job) link;
	uint64_t offset, length;
	uint64_t cookie;
	int status;
};
STAILQ_HEAD(zero_queue, zero_job);

struct zeroer {
	struct loop_worker w;
	zero_done_fn done;
	void *userdata;

	/* Per-slice objects (BACKEND_ISOLATION_SLICE): each extent is scrubbed and its object
	 * destroyed through the backend; NULL: zeroed in place through the mapping below. */
	struct backend *slices;

	struct pmem2_config *cfg;
	struct pmem2_source *src;
	struct pmem2_map *map;
	uint8_t *base;
	uint64_t size;
	pmem2_memset_fn memset_fn;
	unsigned memset_flags; /* non-temporal; no msync on a file system without a backing store */

	struct zero_queue todo, finished; /* under w.lock */
	bool busy; /* the worker is zeroing a job outside the lock */
	uint64_t pending_bytes, done_bytes;
};

/* The extent's own object: scrubbed, then removed (a new extent there gets a new object). */
static int scrub_object(struct zeroer *z, uint64_t offset, uint64_t length)
{
	int r = backend_slice_scrub(z->slices, offset, length);

	if (r == 0)
		r = backend_slice_destroy(z->slices, offset, length);
	if (r == 0)
		__atomic_add_fetch(&z->done_bytes, length, __ATOMIC_RELAXED);
	return r;
}

static void *zero_worker(void *arg)
{
	struct zeroer *z = arg;
	struct sched_param idle = { .sched_priority = 0 };

	/* Zeroing is background work: it must not take a vCPU from clients or the loop. Grants
	 * do not wait for it (an ALLOC only ever gets already-zeroed extents). */
	pthread_setschedparam(pthread_self(), SCHED_IDLE, &idle);

	pthread_mutex_lock(&z->w.lock);
	for (;;) {
		struct zero_job *job;

		while (STAILQ_EMPTY(&z->todo) && !z->w.stop)
			pthread_cond_wait(&z->w.cond, &z->w.lock);
		if (z->w.stop)
			break;
		job = STAILQ_FIRST(&z->todo);
		STAILQ_REMOVE_HEAD(&z->todo, link);
		z->busy = true;
		pthread_mutex_unlock(&z->w.lock);

		job->status = 0;
		if (z->slices) {
			job->status = scrub_object(z, job->offset, job->length);
		} else {
			for (uint64_t off = 0; off < job->length; off += ZERO_CHUNK) {
				uint64_t n = MIN(ZERO_CHUNK, job->length - off);

				/* Non-temporal stores: zeroing must not evict the clients' working
				 * sets. */
				z->memset_fn(z->base + job->offset + off, 0, n, z->memset_flags);
				__atomic_add_fetch(&z->done_bytes, n, __ATOMIC_RELAXED);
			}
		}

		pthread_mutex_lock(&z->w.lock);
		z->busy = false;
		STAILQ_INSERT_TAIL(&z->finished, job, link);
		loop_worker_notify(&z->w);
	}
	pthread_mutex_unlock(&z->w.lock);
	return NULL;
}

static void zero_async_cb(struct ev_loop *loop, ev_async *w, int revents)
{
	struct zeroer *z = w->data;
	struct zero_queue done = STAILQ_HEAD_INITIALIZER(done);
	struct zero_job *job;
	uint64_t bytes = 0;

	/* One lock round per batch, not per job: the worker contends for the same lock. */
	pthread_mutex_lock(&z->w.lock);
	STAILQ_CONCAT(&done, &z->finished);
	STAILQ_FOREACH(job, &done, link)
		bytes += job->length;
	__atomic_sub_fetch(&z->pending_bytes, bytes, __ATOMIC_RELAXED); /* read unlocked by zeroer_has_backlog */
	pthread_mutex_unlock(&z->w.lock);
	while ((job = STAILQ_FIRST(&done))) {
		STAILQ_REMOVE_HEAD(&done, link);
		z->done(z->userdata, job->cookie, job->status);
		free(job);
	}
}

/* RAM: stores are all there is (nothing is written back, no cache to bypass for durability). */
static void *ram_memset(void *dest, int c, size_t len, unsigned flags)
{
	(void)flags;
	return memset(dest, c, len);
}

int zeroer_new(struct ev_loop *loop, struct backend *slices, void *ram, uint64_t ram_len, int fd,
	       uint64_t size,
	       zero_done_fn done, void *userdata, struct zeroer **ret)
{
	struct zeroer *z = calloc(1, sizeof(*z));
	int r;

	if (!z)
		return -ENOMEM;
	z->done = done;
	z->userdata = userdata;
	z->size = size;
	STAILQ_INIT(&z->todo);
	STAILQ_INIT(&z->finished);
	loop_worker_init(&z->w, loop, zero_async_cb, z);
	z->slices = slices;
	if (slices)
		goto start;
	if (ram) {
		/* libpmem2 cannot map device-dax over RAM (it asks libndctl for a namespace). */
		z->base = ram;
		z->size = MIN(size, ram_len);
		z->memset_fn = ram_memset;
		goto start;
	}

	r = pmem2_config_new(&z->cfg);
	if (r == 0)
		r = pmem2_config_set_required_store_granularity(z->cfg, PMEM2_GRANULARITY_PAGE);
	if (r == 0)
		r = pmem2_source_from_fd(&z->src, fd);
	if (r == 0)
		r = pmem2_map_new(&z->map, z->cfg, z->src);
	if (r != 0) {
		zeroer_delete(&z);
		return r < 0 ? r : -EIO;
	}
	z->base = pmem2_map_get_address(z->map);
	z->size = MIN(size, pmem2_map_get_size(z->map));
	z->memset_fn = pmem2_get_memset_fn(z->map);
	/* On tmpfs/hugetlbfs libpmem2's page granularity means an msync per chunk with nothing to
	 * write back; the zeroes are durable once stored. */
	z->memset_flags = PMEM2_F_MEM_NONTEMPORAL;
	r = pool_map_needs_no_flush(fd, z->map);
	if (r < 0) {
		zeroer_delete(&z);
		return r;
	}
	if (r)
		z->memset_flags |= PMEM2_F_MEM_NOFLUSH;

start:
	r = loop_worker_start(&z->w, zero_worker, z);
	if (r < 0) {
		zeroer_delete(&z);
		return r;
	}
	*ret = z;
	return 0;
}

void zeroer_delete(struct zeroer **zp)
{
	struct zeroer *z = zp ? *zp : NULL;
	struct zero_job *job;

	if (!z)
		return;
	loop_worker_done(&z->w);
	/* Unfinished jobs stay quarantined in the pool and are zeroed again after restart. */
	STAILQ_CONCAT(&z->todo, &z->finished);
	while ((job = STAILQ_FIRST(&z->todo))) {
		STAILQ_REMOVE_HEAD(&z->todo, link);
		free(job);
	}
	if (z->map)
		pmem2_map_delete(&z->map);
	if (z->src)
		pmem2_source_delete(&z->src);
	if (z->cfg)
		pmem2_config_delete(&z->cfg);
	free(z);
	*zp = NULL;
}

int zeroer_submit(struct zeroer *z, uint64_t offset, uint64_t length, uint64_t cookie)
{
	struct zero_job *job;
	bool was_idle;

	if (offset > z->size || length > z->size - offset)
		return -EINVAL;
	job = calloc(1, sizeof(*job));
	if (!job)
		return -ENOMEM;
	job->offset = offset;
	job->length = length;
	job->cookie = cookie;
	pthread_mutex_lock(&z->w.lock);
	was_idle = STAILQ_EMPTY(&z->todo) && !z->busy;
	STAILQ_INSERT_TAIL(&z->todo, job, link);
	__atomic_add_fetch(&z->pending_bytes, length, __ATOMIC_RELAXED);
	/* A busy worker finds the job when it looks again: wake it only when it sleeps. */
	if (was_idle)
		pthread_cond_broadcast(&z->w.cond);
	pthread_mutex_unlock(&z->w.lock);
	return 0;
}

int zeroer_zero_now(struct zeroer *z, uint64_t offset, uint64_t length)
{
	if (offset > z->size || length > z->size - offset)
		return -EINVAL;
	if (z->slices)
		return scrub_object(z, offset, length);
	z->memset_fn(z->base + offset, 0, length, z->memset_flags);
	__atomic_add_fetch(&z->done_bytes, length, __ATOMIC_RELAXED);
	return 0;
}

uint64_t zeroer_pending_bytes(struct zeroer *z)
{
	uint64_t v;

	pthread_mutex_lock(&z->w.lock);
	v = z->pending_bytes;
	pthread_mutex_unlock(&z->w.lock);
	return v;
}

bool zeroer_has_backlog(struct zeroer *z)
{
	return z && __atomic_load_n(&z->pending_bytes, __ATOMIC_RELAXED) != 0;
}

uint64_t zeroer_done_bytes(struct zeroer *z)
{
	return __atomic_load_n(&z->done_bytes, __ATOMIC_RELAXED);
}
