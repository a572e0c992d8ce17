/*
 * Suite "alloc": the pool allocator in-process, against libpmemobj at the same guarantee.
 *
 * Both sides keep every allocation reachable and leak-free across power failure: daxpool through
 * its record table and redo log, libpmemobj through pmemobj_alloc/pmemobj_free into a PMEMoid
 * array in the pool's root object (the atomic API: the destination oid is published atomically).
 * Both run on a file in tmpfs with persistence forced to cache-line flushes + fence, as on real
 * persistent memory (PMEM2_FORCE_GRANULARITY=CACHE_LINE for libpmem2, PMEM_IS_PMEM_FORCE=1 for
 * libpmemobj): otherwise one side would msync and the other not.
 *
 * Per live count N: fill to N allocations of 4 KiB (fill throughput), then `ops` churn steps at N
 * live (free a random one, allocate a new one), timing every call: alloc/free throughput and
 * p50/p99 latency at N live; DRAM heap bytes per live allocation (mallinfo2 delta).
 */
#include <errno.h>
#include <fcntl.h>
#include <libpmemobj.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bench.h"
#include "pool.h"

#define OBJ_SIZE 4096u

static uint64_t rng = 88172645463325252ull;
static uint64_t xrand(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return rng;
}

static json_object *params(uint64_t n, uint64_t ops, const char *dir)
{
	json_object *p = json_object_new_object();
	json_object_object_add(p, "live", json_object_new_int64((int64_t)n));
	json_object_object_add(p, "size", json_object_new_int64(OBJ_SIZE));
	json_object_object_add(p, "ops", json_object_new_int64((int64_t)ops));
	json_object_object_add(p, "dir", json_object_new_string(dir));
	json_object_object_add(p, "persist", json_object_new_string("cache-line flush + fence (forced)"));
	return p;
}

struct result {
	double fill_ops_s, alloc_ops_s, free_ops_s;
	uint64_t alloc_p50, alloc_p99, free_p50, free_p99;
	double heap_per_live, index_per_live;
	double frag_heap_per_live, frag_index_per_live; /* after freeing every other allocation */
};

static void report(const char *sys, uint64_t n, uint64_t ops, const char *dir, const struct result *r)
{
	bench_row("alloc", sys, "fill_alloc_throughput", r->fill_ops_s, "ops/s", params(n, ops, dir));
	bench_row("alloc", sys, "alloc_throughput", r->alloc_ops_s, "ops/s", params(n, ops, dir));
	bench_row("alloc", sys, "alloc_latency_p50", (double)r->alloc_p50, "ns", params(n, ops, dir));
	bench_row("alloc", sys, "alloc_latency_p99", (double)r->alloc_p99, "ns", params(n, ops, dir));
	bench_row("alloc", sys, "free_throughput", r->free_ops_s, "ops/s", params(n, ops, dir));
	bench_row("alloc", sys, "free_latency_p50", (double)r->free_p50, "ns", params(n, ops, dir));
	bench_row("alloc", sys, "free_latency_p99", (double)r->free_p99, "ns", params(n, ops, dir));
	bench_row("alloc", sys, "dram_heap_bytes_per_live_alloc", r->heap_per_live, "bytes",
		  params(n, ops, dir));
	if (r->index_per_live > 0) {
		bench_row("alloc", sys, "dram_index_bytes_per_live_alloc", r->index_per_live, "bytes",
			  params(n, ops, dir));
		bench_row("alloc", sys, "dram_heap_bytes_per_live_alloc_fragmented",
			  r->frag_heap_per_live, "bytes", params(n, ops, dir));
		bench_row("alloc", sys, "dram_index_bytes_per_live_alloc_fragmented",
			  r->frag_index_per_live, "bytes", params(n, ops, dir));
	}
}

/* Calls per second of one block of per-call times. */
static double block_rate(const uint64_t *t, uint64_t n)
{
	uint64_t sum = 0;

	for (uint64_t i = 0; i < n; i++)
		sum += t[i];
	return sum ? n / (sum / 1e9) : 0;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

/* Throughput is the median over THROUGHPUT_BLOCKS consecutive blocks of calls, each block's
 * calls / summed call time: on a shared VM one preemption inside a 1 µs call adds milliseconds,
 * and a plain sum lets a handful of those decide the figure (±40 % run to run, seen here). */
#define THROUGHPUT_BLOCKS 10

static double median_rate(const uint64_t *t, uint64_t ops)
{
	double rates[THROUGHPUT_BLOCKS];
	unsigned nb = ops >= THROUGHPUT_BLOCKS ? THROUGHPUT_BLOCKS : 1;
	uint64_t per = ops / nb;

	for (unsigned b = 0; b < nb; b++)
		rates[b] = block_rate(t + (uint64_t)b * per, b == nb - 1 ? ops - (uint64_t)b * per : per);
	qsort(rates, nb, sizeof(rates[0]), cmp_double);
	return nb % 2 ? rates[nb / 2] : (rates[nb / 2 - 1] + rates[nb / 2]) / 2;
}

static void summarize(uint64_t *al, uint64_t *fr, uint64_t ops, struct result *r)
{
	/* Before the quantiles, which sort the arrays in place. */
	r->alloc_ops_s = median_rate(al, ops);
	r->free_ops_s = median_rate(fr, ops);
	r->alloc_p50 = bench_quantile(al, ops, 0.50);
	r->alloc_p99 = bench_quantile(al, ops, 0.99);
	r->free_p50 = bench_quantile(fr, ops, 0.50);
	r->free_p99 = bench_quantile(fr, ops, 0.99);
}

static int run_daxpool(uint64_t n, uint64_t ops, const char *dir, struct result *r)
{
	char path[4096];
	struct pool *p = NULL;
	struct pool_stats st;
	uint64_t cap = n + n / 4 + 64;
	uint64_t size = ((n + n / 4) * OBJ_SIZE + cap * 320 + (64u << 20)) & ~((UINT64_C(2) << 20) - 1);
	uint64_t *ids = calloc(n, sizeof(*ids)), *al = calloc(ops, 8), *fr = calloc(ops, 8);
	int rc = -1;

	snprintf(path, sizeof(path), "%s/daxpool-bench-XXXXXX", dir);
	int fd = mkstemp(path);
	if (fd < 0 || !ids || !al || !fr || ftruncate(fd, (off_t)size) < 0) {
		perror("daxpool-bench: pool file");
		goto out;
	}
	struct pool_format_params prm = {.table_capacity = cap};
	if (pool_format_fd(fd, &prm) < 0) {
		fprintf(stderr, "daxpool-bench: %s\n", pool_errormsg());
		goto out;
	}
	/* From before open: the per-pool DRAM (slot list, pmem2 mapping state) counts too. */
	size_t heap0 = mallinfo2().uordblks;
	if (pool_open_fd(fd, &p) < 0) {
		fprintf(stderr, "daxpool-bench: %s\n", pool_errormsg());
		goto out;
	}
	struct pool_alloc_req req = {.size = OBJ_SIZE, .align = POOL_ALIGN_4K, .mode = 0600};
	struct pool_extent e;
	uint64_t t0 = bench_now_ns();
	for (uint64_t i = 0; i < n; i++) {
		if (pool_alloc(p, &req, &e) < 0) {
			fprintf(stderr, "daxpool-bench: fill: %s\n", pool_errormsg());
			goto out;
		}
		ids[i] = e.id;
	}
	r->fill_ops_s = n / ((bench_now_ns() - t0) / 1e9);
	for (uint64_t j = 0; j < ops; j++) {
		uint64_t i = xrand() % n;
		uint64_t a = bench_now_ns();
		int x = pool_free(p, ids[i]);
		uint64_t b = bench_now_ns();
		int y = pool_alloc(p, &req, &e);
		uint64_t c = bench_now_ns();
		if (x < 0 || y < 0) {
			fprintf(stderr, "daxpool-bench: churn: %s\n", pool_errormsg());
			goto out;
		}
		ids[i] = e.id;
		fr[j] = b - a;
		al[j] = c - b;
	}
	r->heap_per_live = (double)(mallinfo2().uordblks - heap0) / n;
	pool_get_stats(p, &st);
	r->index_per_live = (double)st.dram_index_bytes / n;
	/* Worst case for the index: a hole beside every remaining allocation. */
	for (uint64_t i = 0; i < n; i += 2)
		if (pool_free(p, ids[i]) < 0)
			goto out;
	pool_get_stats(p, &st);
	r->frag_index_per_live = (double)st.dram_index_bytes / st.records_used;
	r->frag_heap_per_live = (double)(mallinfo2().uordblks - heap0) / st.records_used;
	summarize(al, fr, ops, r);
	rc = 0;
out:
	pool_delete(&p);
	if (fd >= 0) {
		close(fd);
		unlink(path);
	}
	free(ids);
	free(al);
	free(fr);
	return rc;
}

static int run_pmemobj(uint64_t n, uint64_t ops, const char *dir, struct result *r)
{
	char path[4096];
	uint64_t size = n * (OBJ_SIZE * 2) + n * sizeof(PMEMoid) + (64u << 20);
	uint64_t *al = calloc(ops, 8), *fr = calloc(ops, 8);
	PMEMobjpool *pop = NULL;
	int rc = -1;
	size_t heap0 = mallinfo2().uordblks;

	if (size < PMEMOBJ_MIN_POOL)
		size = PMEMOBJ_MIN_POOL;
	snprintf(path, sizeof(path), "%s/daxpool-bench-pmemobj-%d", dir, (int)getpid());
	unlink(path);
	pop = pmemobj_create(path, "daxpool-bench", size, 0600);
	if (!pop || !al || !fr) {
		fprintf(stderr, "daxpool-bench: pmemobj_create: %s\n", pmemobj_errormsg());
		goto out;
	}
	PMEMoid root = pmemobj_root(pop, n * sizeof(PMEMoid));
	PMEMoid *oids = pmemobj_direct(root);
	if (!oids) {
		fprintf(stderr, "daxpool-bench: pmemobj_root: %s\n", pmemobj_errormsg());
		goto out;
	}
	uint64_t t0 = bench_now_ns();
	for (uint64_t i = 0; i < n; i++) {
		if (pmemobj_alloc(pop, &oids[i], OBJ_SIZE, 1, NULL, NULL) != 0) {
			fprintf(stderr, "daxpool-bench: pmemobj_alloc: %s\n", pmemobj_errormsg());
			goto out;
		}
	}
	r->fill_ops_s = n / ((bench_now_ns() - t0) / 1e9);
	for (uint64_t j = 0; j < ops; j++) {
		uint64_t i = xrand() % n;
		uint64_t a = bench_now_ns();
		pmemobj_free(&oids[i]);
		uint64_t b = bench_now_ns();
		int y = pmemobj_alloc(pop, &oids[i], OBJ_SIZE, 1, NULL, NULL);
		uint64_t c = bench_now_ns();
		if (y != 0) {
			fprintf(stderr, "daxpool-bench: churn: %s\n", pmemobj_errormsg());
			goto out;
		}
		fr[j] = b - a;
		al[j] = c - b;
	}
	r->heap_per_live = (double)(mallinfo2().uordblks - heap0) / n;
	r->index_per_live = 0;
	summarize(al, fr, ops, r);
	rc = 0;
out:
	if (pop)
		pmemobj_close(pop);
	unlink(path);
	free(al);
	free(fr);
	return rc;
}

int suite_alloc(const struct bench_opts *o)
{
	for (unsigned i = 0; i < o->ncounts; i++) {
		uint64_t n = o->counts[i];
		uint64_t ops = o->ops; /* churn steps keep n live: not bounded by n */
		struct result r = {0};
		if (n == 0)
			continue;
		if (strcmp(o->system, "pmemobj") != 0) {
			if (run_daxpool(n, ops, o->dir, &r) < 0)
				return -1;
			report("daxpool", n, ops, o->dir, &r);
		}
		if (strcmp(o->system, "daxpool") != 0) {
			memset(&r, 0, sizeof(r));
			if (run_pmemobj(n, ops, o->dir, &r) < 0)
				return -1;
			report("libpmemobj", n, ops, o->dir, &r);
		}
	}
	return 0;
}
