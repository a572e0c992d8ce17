/* One million live allocations: alloc/free stay fast, reopen rebuilds the index, DRAM stays small. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "helpers.h"
#include "pool.h"

#define N 1000000u
#define GiB (UINT64_C(1) << 30)

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void test_million(void **state)
{
	uint64_t size = 5 * GiB;
	void *r = range_new(size);
	struct pool_format_params prm = {.table_capacity = N + N / 8};
	struct pool *p = NULL;
	struct pool_stats s;
	uint64_t *ids = malloc(N * sizeof(*ids));
	char name[32];

	assert_non_null(r);
	assert_int_equal(pool_format_range(r, size, &noop_ops, &prm), 0);
	assert_int_equal(pool_open_range(r, size, &noop_ops, &p), 0);
	double t0 = now();
	for (unsigned i = 0; i < N; i++) {
		struct pool_extent e;
		struct pool_alloc_req req = {.size = 4096, .align = POOL_ALIGN_4K, .mode = 0600};
		if (i % 4 == 0) {
			snprintf(name, sizeof(name), "obj-%u", i);
			req.name = name;
		}
		assert_int_equal(pool_alloc(p, &req, &e), 0);
		ids[i] = e.id;
	}
	double t1 = now();
	/* Free every third: a fragmented index of ~333k holes. */
	for (unsigned i = 0; i < N; i += 3)
		assert_int_equal(pool_free(p, ids[i]), 0);
	double t2 = now();
	pool_get_stats(p, &s);
	assert_true(s.records_used >= N - N / 3 - 1);
	print_message("alloc %.0f/s, free %.0f/s, %llu free extents, index %llu bytes = %llu per live "
		      "allocation (worst case: a hole beside every other allocation)\n",
		      N / (t1 - t0), (N / 3) / (t2 - t1), (unsigned long long)s.free_extents,
		      (unsigned long long)s.dram_index_bytes,
		      (unsigned long long)(s.dram_index_bytes / s.records_used));
	assert_true(s.dram_index_bytes / s.records_used <= 256);
	/* Refill the holes so there are 1M live allocations again. */
	for (unsigned i = 0; i < N; i += 3) {
		struct pool_extent e;
		struct pool_alloc_req req = {.size = 4096, .align = POOL_ALIGN_4K};
		assert_int_equal(pool_alloc(p, &req, &e), 0);
		ids[i] = e.id;
	}
	pool_get_stats(p, &s);
	assert_int_equal(s.records_used, N);
	assert_int_equal(s.free_bytes[0] + s.allocated_bytes, s.data_size);
	uint64_t per = s.dram_index_bytes / N;
	print_message("1M live: index %llu bytes = %llu bytes per live allocation\n",
		      (unsigned long long)s.dram_index_bytes, (unsigned long long)per);
	assert_true(per <= 256);
	pool_delete(&p);

	double t3 = now();
	assert_int_equal(pool_open_range(r, size, &noop_ops, &p), 0);
	double t4 = now();
	print_message("reopen with 1M records: %.2f s\n", t4 - t3);
	struct pool_record_info info;
	assert_int_equal(pool_lookup(p, "obj-999992", &info), 0);
	pool_get_stats(p, &s);
	assert_int_equal(s.records_used, N);
	pool_delete(&p);
	free(ids);
	range_free(r, size);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_million),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
