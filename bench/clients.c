/* daxpool-bench: closed-loop clients against a running daxpoold (see bench.h), shared by the
 * service and scale suites. */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"
#include "daxpool.h"

struct worker {
	pthread_t thread;
	pthread_barrier_t *start;
	atomic_bool *stop;
	uint64_t size; /* 0: PING round trips instead of alloc+free pairs */
	struct daxpool *dp;
	struct samples lat;
	uint64_t pairs, enospc, end_ns;
	int error;
};

static void *worker_main(void *arg)
{
	struct worker *w = arg;

	pthread_barrier_wait(w->start);
	while (!atomic_load_explicit(w->stop, memory_order_relaxed)) {
		struct daxpool_slice *sl = NULL;
		uint64_t a = bench_now_ns();
		int r = w->size ? daxpool_alloc(w->dp, NULL, w->size, w->size, 0, DAXPOOL_ANONYMOUS, &sl)
				: daxpool_ping(w->dp);
		if (r == -ENOSPC) {
			/* Every free extent waits for the zeroer (and libdaxpool's own wait for it ran
			 * out): count it, back off, retry. */
			w->enospc++;
			bench_sleep_ns(100000);
			continue;
		}
		if (r == 0 && w->size)
			r = daxpool_free(w->dp, &sl);
		uint64_t b = bench_now_ns();
		if (r == 0)
			r = samples_add(&w->lat, b - a);
		if (r < 0) {
			w->error = r;
			fprintf(stderr, "daxpool-bench: client: %s (%s)\n", daxpool_strerror(r),
				daxpool_errormsg());
			break;
		}
		w->pairs++;
	}
	w->end_ns = bench_now_ns();
	return NULL;
}

int bench_clients_run(const char *sock, unsigned clients, uint64_t size, double duration_s,
		      struct bench_clients *ret)
{
	struct worker *w = calloc(clients, sizeof(*w));
	pthread_barrier_t start;
	atomic_bool stop = false;
	struct bench_cpu c0, c1;
	uint64_t t0, t1 = 0;
	int r = 0;

	*ret = (struct bench_clients){0};
	if (!w)
		return -ENOMEM;
	for (unsigned i = 0; i < clients && r == 0; i++) {
		w[i] = (struct worker){.stop = &stop, .size = size};
		r = daxpool_connect(sock, &w[i].dp);
	}
	if (r < 0) {
		/* No thread started yet: nobody waits at the barrier. */
		fprintf(stderr, "daxpool-bench: connect: %s (%s)\n", daxpool_strerror(r), daxpool_errormsg());
		goto out;
	}
	pthread_barrier_init(&start, NULL, clients + 1);
	for (unsigned i = 0; i < clients; i++) {
		w[i].start = &start;
		r = -pthread_create(&w[i].thread, NULL, worker_main, &w[i]);
		if (r < 0) {
			/* The barrier counts every client: the missing ones can never arrive. */
			fprintf(stderr, "daxpool-bench: pthread_create: %s\n", strerror(-r));
			abort();
		}
	}
	pthread_barrier_wait(&start);
	t0 = bench_now_ns();
	bench_cpu_sample(&c0);
	bench_sleep_ns((uint64_t)(duration_s * 1e9));
	atomic_store(&stop, true);
	for (unsigned i = 0; i < clients; i++) {
		pthread_join(w[i].thread, NULL);
		if (w[i].error && r == 0)
			r = w[i].error;
		if (w[i].end_ns > t1)
			t1 = w[i].end_ns;
		ret->pairs += w[i].pairs;
		ret->enospc += w[i].enospc;
		for (uint64_t j = 0; j < w[i].lat.n && r == 0; j++)
			r = samples_add(&ret->lat, w[i].lat.v[j]);
	}
	bench_cpu_sample(&c1);
	pthread_barrier_destroy(&start);
	ret->steal_pct = bench_cpu_steal_pct(&c0, &c1);
	if (t1 > t0)
		ret->pairs_s = (double)ret->pairs / ((double)(t1 - t0) / 1e9);
out:
	for (unsigned i = 0; i < clients; i++) {
		daxpool_disconnect(&w[i].dp);
		samples_free(&w[i].lat);
	}
	free(w);
	if (r < 0)
		samples_free(&ret->lat);
	return r;
}
