/*
 * Power-failure simulator. The pool's persistence goes through three function pointers; here
 * they are replaced by a model of a volatile CPU cache in front of persistent media:
 *   - `work` is what the CPU sees (the pool writes it);
 *   - `media` is what survives power loss: a 64-byte line reaches it only when flushed and then
 *     drained (or, at a crash, by chance: any dirty line may or may not have been written back).
 * At the k-th drain of a scripted run the simulator takes a crash image: media plus a subset of
 * the lines that differ between work and media (none / all / a random half). The image is then
 * opened with a fresh pool_open (recovery) and must show every invariant and, for the operation
 * that was running, either its complete effect or none of it. Every drain point of the script is
 * walked, for each subset policy, and also every drain of format and of recovery itself.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "helpers.h"
#include "pool.h"

#define MiB (UINT64_C(1) << 20)
#define SIM_SIZE (8 * MiB)
#define SIM_META (2 * MiB) /* data area starts here for this geometry: the pool writes nothing after */
#define LINE 64u
#define NLINES (SIM_META / LINE)

static uint8_t *work, *media, *image;
static uint8_t flushed[NLINES];
static unsigned long drains, crash_at;
static int variant;
static bool crashed;
static uint64_t rng;

static uint64_t rnd(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return rng;
}

static void sim_flush(const void *addr, size_t len)
{
	uint64_t off = (uint64_t)((const uint8_t *)addr - work);
	assert_true(off + len <= SIM_META);
	for (uint64_t l = off / LINE; l <= (off + len - 1) / LINE; l++)
		flushed[l] = 1;
}

static void take_crash_image(void)
{
	memcpy(image, media, SIM_SIZE);
	for (uint64_t l = 0; l < NLINES; l++) {
		if (memcmp(work + l * LINE, media + l * LINE, LINE) == 0)
			continue;
		bool apply = variant == 0 ? false : variant == 1 ? true : (rnd() & 1);
		if (apply)
			memcpy(image + l * LINE, work + l * LINE, LINE);
	}
	crashed = true;
}

static void sim_drain(void)
{
	drains++;
	if (drains == crash_at && !crashed)
		take_crash_image();
	for (uint64_t l = 0; l < NLINES; l++) {
		if (flushed[l]) {
			memcpy(media + l * LINE, work + l * LINE, LINE);
			flushed[l] = 0;
		}
	}
}

static void sim_persist(const void *addr, size_t len)
{
	sim_flush(addr, len);
	sim_drain();
}

static const struct pool_persist_ops sim_ops = {sim_persist, sim_flush, sim_drain};

static void sim_reset(uint8_t *from)
{
	if (from) {
		memcpy(work, from, SIM_SIZE);
		memcpy(media, from, SIM_SIZE);
	} else {
		memset(work, 0, SIM_SIZE);
		memset(media, 0, SIM_SIZE);
	}
	memset(flushed, 0, sizeof(flushed));
	drains = 0;
	crash_at = 0;
	crashed = false;
}

/* ---- script ------------------------------------------------------------------------------ */

enum op_kind { OP_ALLOC, OP_FREE, OP_QUAR, OP_RELEASE };
struct op {
	enum op_kind kind;
	uint64_t size, align;
	const char *name;
	bool anon;
	int ref; /* for free/quarantine/release: index of the op whose extent it targets */
};

static const struct op script[] = {
	{OP_ALLOC, 4096, POOL_ALIGN_4K, NULL, true, 0},
	{OP_ALLOC, 8192, POOL_ALIGN_4K, "a", false, 0},
	{OP_ALLOC, 2 * MiB, POOL_ALIGN_2M, "b", false, 0},
	{OP_ALLOC, 12288, POOL_ALIGN_4K, "c", false, 0},
	{OP_FREE, 0, 0, NULL, false, 1},
	{OP_ALLOC, 4096, POOL_ALIGN_4K, "a", false, 0},
	{OP_QUAR, 0, 0, NULL, false, 2},
	{OP_ALLOC, 4096, POOL_ALIGN_4K, "b", false, 0},
	{OP_ALLOC, 1 * MiB, POOL_ALIGN_4K, NULL, true, 0},
	{OP_RELEASE, 0, 0, NULL, false, 2},
	{OP_FREE, 0, 0, NULL, false, 0},
	{OP_ALLOC, 2 * MiB, POOL_ALIGN_2M, "d", false, 0},
	{OP_FREE, 0, 0, NULL, false, 3},
	{OP_FREE, 0, 0, NULL, false, 8},
	{OP_ALLOC, 8192, POOL_ALIGN_4K, NULL, false, 0},
	{OP_FREE, 0, 0, NULL, false, 5},
};
#define NOPS ARRAY_LEN(script)
#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

static uint64_t ids[ARRAY_LEN(script)];

/* Runs op i; returns 0 or -errno. */
static int run_op(struct pool *p, unsigned i)
{
	const struct op *o = &script[i];
	struct pool_extent e;
	int r;

	switch (o->kind) {
	case OP_ALLOC: {
		struct pool_alloc_req req = {.size = o->size, .align = o->align, .name = o->name,
					     .uid = i, .gid = 7, .mode = 0600,
					     .flags = o->anon ? POOL_ALLOC_ANONYMOUS : 0};
		r = pool_alloc(p, &req, &e);
		if (r == 0)
			ids[i] = e.id;
		return r;
	}
	case OP_FREE:
		return pool_free(p, ids[o->ref]);
	case OP_QUAR:
		return pool_quarantine(p, ids[o->ref]);
	case OP_RELEASE:
		return pool_release(p, ids[o->ref]);
	}
	return -EINVAL;
}

/* Canonical description of the live records, in id order. */
struct state {
	char s[4096];
};

static int describe_one(const struct pool_record_info *in, void *ud)
{
	struct state *st = ud;
	size_t n = strlen(st->s);
	snprintf(st->s + n, sizeof(st->s) - n, "%llu:%llu+%llu:%x:%u:%s;", (unsigned long long)in->id,
		 (unsigned long long)in->offset, (unsigned long long)in->length, in->flags,
		 (unsigned)in->uid, in->name);
	return 0;
}

static void describe(struct pool *p, struct state *st)
{
	st->s[0] = '\0';
	assert_int_equal(pool_iterate(p, 0, describe_one, st), 0);
}

static struct state ref_state[ARRAY_LEN(script) + 1];
static unsigned long ref_drain_end[ARRAY_LEN(script)];

/* Opens image (recovery), checks invariants, returns its state. */
static void recover_and_check(uint8_t *img, struct state *st)
{
	struct pool *p = NULL;
	struct pool_stats s;
	struct pool_extent e;

	int r = pool_open_range(img, SIM_SIZE, &noop_ops, &p);
	if (r != 0)
		fail_msg("recovery failed: %d %s", r, pool_errormsg());
	describe(p, st);
	pool_get_stats(p, &s);
	/* none lost, none owned twice (open rejects overlaps): */
	assert_int_equal(s.free_bytes[0] + s.allocated_bytes, s.data_size);
	pool_delete(&p);
	assert_int_equal(pool_check_range(img, SIM_SIZE, &noop_ops, false), POOL_CHECK_CLEAN);
	/* and the pool works afterwards */
	assert_int_equal(pool_open_range(img, SIM_SIZE, &noop_ops, &p), 0);
	struct pool_alloc_req req = {.size = 4096, .align = POOL_ALIGN_4K, .name = "after-crash"};
	assert_int_equal(pool_alloc(p, &req, &e), 0);
	assert_int_equal(pool_free(p, e.id), 0);
	pool_delete(&p);
}

static const struct pool_format_params prm = {.table_capacity = 64};

static void reference_run(void)
{
	struct pool *p = NULL;

	sim_reset(NULL);
	assert_int_equal(pool_format_range(work, SIM_SIZE, &sim_ops, &prm), 0);
	assert_int_equal(pool_open_range(work, SIM_SIZE, &sim_ops, &p), 0);
	drains = 0;
	describe(p, &ref_state[0]);
	for (unsigned i = 0; i < NOPS; i++) {
		assert_int_equal(run_op(p, i), 0);
		ref_drain_end[i] = drains;
		describe(p, &ref_state[i + 1]);
	}
	pool_delete(&p);
	/* media must equal work once everything is drained */
	assert_memory_equal(work, media, SIM_META);
}

static void test_crash_every_drain(void **state)
{
	unsigned long points = 0;

	reference_run();
	unsigned long total = ref_drain_end[NOPS - 1];
	for (unsigned long k = 1; k <= total; k++) {
		for (variant = 0; variant < 4; variant++) {
			struct pool *p = NULL;
			unsigned in_op = NOPS;

			rng = k * 7919 + (uint64_t)variant * 104729 + 1;
			sim_reset(NULL);
			assert_int_equal(pool_format_range(work, SIM_SIZE, &sim_ops, &prm), 0);
			assert_int_equal(pool_open_range(work, SIM_SIZE, &sim_ops, &p), 0);
			drains = 0;
			crash_at = k;
			for (unsigned i = 0; i < NOPS && !crashed; i++) {
				assert_int_equal(run_op(p, i), 0);
				if (crashed)
					in_op = i;
			}
			pool_delete(&p);
			assert_true(in_op < NOPS);

			struct state st;
			recover_and_check(image, &st);
			bool before = strcmp(st.s, ref_state[in_op].s) == 0;
			bool after = strcmp(st.s, ref_state[in_op + 1].s) == 0;
			if (!before && !after)
				fail_msg("crash at drain %lu (op %u, variant %d): state\n  %s\nis neither\n  "
					 "%s\nnor\n  %s",
					 k, in_op, variant, st.s, ref_state[in_op].s, ref_state[in_op + 1].s);
			points++;
		}
	}
	print_message("%lu crash images over %lu drain points of %zu operations: all consistent\n",
		      points, total, NOPS);
}

/* Crash during recovery itself: recovery must be restartable. */
static void test_crash_during_recovery(void **state)
{
	unsigned long checked = 0;

	reference_run();
	unsigned long total = ref_drain_end[NOPS - 1];
	uint8_t *first = malloc(SIM_SIZE);
	for (unsigned long k = 1; k <= total; k++) {
		struct pool *p = NULL;
		unsigned in_op = NOPS;

		variant = 0; /* nothing unflushed survives: leaves the most work to recovery */
		sim_reset(NULL);
		assert_int_equal(pool_format_range(work, SIM_SIZE, &sim_ops, &prm), 0);
		assert_int_equal(pool_open_range(work, SIM_SIZE, &sim_ops, &p), 0);
		drains = 0;
		crash_at = k;
		for (unsigned i = 0; i < NOPS && !crashed; i++) {
			assert_int_equal(run_op(p, i), 0);
			if (crashed)
				in_op = i;
		}
		pool_delete(&p);
		memcpy(first, image, SIM_SIZE);

		/* Count the drains recovery does, then crash at each of them. */
		sim_reset(first);
		assert_int_equal(pool_open_range(work, SIM_SIZE, &sim_ops, &p), 0);
		pool_delete(&p);
		unsigned long rdrains = drains;
		for (unsigned long j = 1; j <= rdrains; j++) {
			for (variant = 0; variant < 3; variant++) {
				rng = k * 31 + j * 17 + (uint64_t)variant;
				sim_reset(first);
				crash_at = j;
				assert_int_equal(pool_open_range(work, SIM_SIZE, &sim_ops, &p), 0);
				pool_delete(&p);
				assert_true(crashed);
				struct state st;
				recover_and_check(image, &st);
				assert_true(strcmp(st.s, ref_state[in_op].s) == 0 ||
					    strcmp(st.s, ref_state[in_op + 1].s) == 0);
				checked++;
			}
		}
	}
	free(first);
	print_message("%lu crash-during-recovery images consistent\n", checked);
}

/* Crash during format of a zeroed range: afterwards either "no pool" or an empty valid pool. */
static void test_crash_during_format(void **state)
{
	sim_reset(NULL);
	assert_int_equal(pool_format_range(work, SIM_SIZE, &sim_ops, &prm), 0);
	unsigned long total = drains;
	for (unsigned long k = 1; k <= total; k++) {
		for (variant = 0; variant < 3; variant++) {
			struct pool *p = NULL;
			rng = k + 99 * (uint64_t)variant;
			sim_reset(NULL);
			crash_at = k;
			assert_int_equal(pool_format_range(work, SIM_SIZE, &sim_ops, &prm), 0);
			assert_true(crashed);
			int r = pool_open_range(image, SIM_SIZE, &noop_ops, &p);
			if (r == -ENODATA)
				continue;
			assert_true(r == 0 || r == POOL_OPEN_DEGRADED);
			struct pool_stats s;
			pool_get_stats(p, &s);
			assert_int_equal(s.records_used, 0);
			pool_delete(&p);
		}
	}
}

static int setup(void **state)
{
	work = calloc(1, SIM_SIZE);
	media = calloc(1, SIM_SIZE);
	image = calloc(1, SIM_SIZE);
	return work && media && image ? 0 : -1;
}

static int teardown(void **state)
{
	free(work);
	free(media);
	free(image);
	return 0;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_crash_every_drain),
		cmocka_unit_test(test_crash_during_recovery),
		cmocka_unit_test(test_crash_during_format),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
