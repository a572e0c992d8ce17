/*
 * Power-failure simulator. The pool's persistence goes through three function pointers; here
 * they are replaced by a model of a volatile CPU cache in front of persistent media:
 *   - `work` is what the CPU sees (the pool writes it);
 *   - `media` is what survives power loss: a 64-byte line reaches it when flushed and then
 *     drained; at a crash, any 8-byte word that differs between work and media may or may not
 *     have reached it (x86 guarantees no more than 8-byte failure atomicity).
 * At every fence (drain) of a run, the simulator builds crash images: media plus a subset of the
 * differing words — none, all, each line alone, all lines but one, each word alone, all words
 * but one, every subset when there are few, and random subsets (words kept with probability 1/2,
 * 1/4 and 3/4). Each distinct image (64-bit hash over the pool's metadata) is opened with a fresh
 * pool_open (recovery) and must keep every invariant (no space lost or owned twice, pool_check
 * clean, usable afterwards) and show, for the operation that was running, either its complete
 * effect or none of it. Recovery of an image is itself crashed at each of its fences and must
 * then give the same state. The workload is generated from a seed: alloc, free, quarantine and
 * release of named, unnamed and anonymous slices at 4K, 2M and 1G alignment.
 *
 * Sizes: DAXPOOL_CRASH_OPS (operations per seed), DAXPOOL_CRASH_SEEDS, DAXPOOL_CRASH_RANDOM
 * (random subsets per policy and fence); DAXPOOL_CRASH_LONG=1 is the long mode (docs/TESTING.md).
 * DAXPOOL_CRASH_REPORT=FILE appends one JSON line of figures per test.
 */
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

#define KiB (UINT64_C(1) << 10)
#define MiB (UINT64_C(1) << 20)
#define GiB (UINT64_C(1) << 30)
#define LINE 64u
#define WORDS_PER_LINE (LINE / 8)
#define CAPACITY 64                 /* records: the table ends at 32 KiB */
#define POOL_BYTES (3 * GiB)        /* room for two 1G-aligned slices besides the small ones */
#define MODEL_BYTES (64 * KiB)      /* the metadata the pool writes lies below this */
#define NAME_LEN 24
#define STATE_LEN 8192
#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))
#ifndef MIN
#define MIN(a, b) ((a) < (b) ? (a) : (b))
#endif

/* ---- sizes -------------------------------------------------------------------------------- */

static unsigned long env_ul(const char *name, unsigned long def)
{
	const char *v = getenv(name);
	char *end;
	if (!v || !*v)
		return def;
	unsigned long x = strtoul(v, &end, 10);
	if (*end || x == 0)
		fail_msg("%s=%s: not a positive number", name, v);
	return x;
}

static bool long_mode;
static unsigned long n_ops, n_seeds, n_random;

static void read_sizes(void)
{
	const char *l = getenv("DAXPOOL_CRASH_LONG");
	long_mode = l && strcmp(l, "1") == 0;
	n_ops = env_ul("DAXPOOL_CRASH_OPS", long_mode ? 400 : 150);
	n_seeds = env_ul("DAXPOOL_CRASH_SEEDS", long_mode ? 8 : 2);
	n_random = env_ul("DAXPOOL_CRASH_RANDOM", long_mode ? 16 : 8);
}

/* ---- hashing ------------------------------------------------------------------------------ */

static uint64_t mix(uint64_t x)
{
	x += UINT64_C(0x9e3779b97f4a7c15);
	x = (x ^ (x >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
	x = (x ^ (x >> 27)) * UINT64_C(0x94d049bb133111eb);
	return x ^ (x >> 31);
}

/* The hash of a word at its index; an image's hash is the XOR over its words, so an image built
 * from media plus some words is hashed without building it. */
static uint64_t word_hash(uint64_t index, uint64_t value)
{
	return mix(value ^ mix(index));
}

static uint64_t rd_word(const uint8_t *base, uint64_t w)
{
	uint64_t v;
	memcpy(&v, base + w * 8, 8);
	return v;
}

static uint64_t str_hash(const char *s)
{
	uint64_t h = UINT64_C(0xcbf29ce484222325);
	for (; *s; s++)
		h = (h ^ (uint8_t)*s) * UINT64_C(0x100000001b3);
	return h;
}

/* ---- the cache model ---------------------------------------------------------------------- */

struct sim {
	uint8_t *work, *media;
	uint64_t model; /* bytes modelled from the start of the range */
	uint8_t *flushed;
	uint32_t *pending; /* lines flushed since the last drain */
	uint64_t npending;
	unsigned long drains;
	void (*at_fence)(struct sim *s); /* called at each drain, before it completes */
};

static struct sim *cur; /* the simulator the persistence functions act on */

static void sim_flush(const void *addr, size_t len)
{
	uint64_t off = (uint64_t)((const uint8_t *)addr - cur->work);
	if (len == 0)
		return;
	if (off + len > cur->model)
		fail_msg("the pool flushed [%llu, +%zu), outside the modelled %llu bytes",
			 (unsigned long long)off, len, (unsigned long long)cur->model);
	for (uint64_t l = off / LINE; l <= (off + len - 1) / LINE; l++)
		if (!cur->flushed[l]) {
			cur->flushed[l] = 1;
			cur->pending[cur->npending++] = (uint32_t)l;
		}
}

static void sim_drain(void)
{
	struct sim *s = cur;
	s->drains++;
	if (s->at_fence)
		s->at_fence(s);
	cur = s;
	for (uint64_t i = 0; i < s->npending; i++) {
		uint64_t l = s->pending[i];
		memcpy(s->media + l * LINE, s->work + l * LINE, LINE);
		s->flushed[l] = 0;
	}
	s->npending = 0;
}

static void sim_persist(const void *addr, size_t len)
{
	sim_flush(addr, len);
	sim_drain();
}

static const struct pool_persist_ops sim_ops = {sim_persist, sim_flush, sim_drain};

static void *map_range(uint64_t size)
{
	void *p = range_new(size);
	assert_non_null(p);
	return p;
}

static void sim_init(struct sim *s, uint64_t range, uint64_t model)
{
	memset(s, 0, sizeof(*s));
	s->work = map_range(range);
	s->media = map_range(range);
	s->model = model;
	s->flushed = calloc(model / LINE, 1);
	s->pending = calloc(model / LINE, sizeof(uint32_t));
	assert_non_null(s->flushed);
	assert_non_null(s->pending);
}

static void sim_fini(struct sim *s, uint64_t range)
{
	range_free(s->work, range);
	range_free(s->media, range);
	free(s->flushed);
	free(s->pending);
}

/* Work and media both become from (or zero), nothing pending. */
static void sim_reset(struct sim *s, const uint8_t *from)
{
	if (from) {
		memcpy(s->work, from, s->model);
		memcpy(s->media, from, s->model);
	} else {
		memset(s->work, 0, s->model);
		memset(s->media, 0, s->model);
	}
	memset(s->flushed, 0, s->model / LINE);
	s->npending = 0;
	s->drains = 0;
	s->at_fence = NULL;
}

/* ---- figures ------------------------------------------------------------------------------ */

struct figures {
	unsigned long fences, images, distinct, recovered_states, recovery_fences, recovery_images,
		violations;
	char first_violation[1024];
};
static struct figures fig;
static bool count_only; /* a planted bug: count violations instead of failing at the first */

static void violation(const char *fmt, ...)
{
	char msg[1024];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (!count_only)
		fail_msg("%s", msg);
	if (fig.violations++ == 0)
		snprintf(fig.first_violation, sizeof(fig.first_violation), "%s", msg);
}

/* ---- what an image recovers to ------------------------------------------------------------ */

#define STATE_NOPOOL UINT64_C(1) /* "no pool": only acceptable while formatting */

struct outcome {
	int rc;         /* 0: recovered and checked; <0: a broken invariant (why) */
	uint64_t state; /* hash of the live records, or STATE_NOPOOL */
	bool degraded;
	char why[256];
};

struct recovered_state {
	char s[STATE_LEN];
};

static int describe_one(const struct pool_record_info *in, void *ud)
{
	struct recovered_state *st = ud;
	size_t n = strlen(st->s);
	snprintf(st->s + n, sizeof(st->s) - n, "%llu:%llu+%llu@%llu:%x:%u:%u:%o:%s;",
		 (unsigned long long)in->id, (unsigned long long)in->offset,
		 (unsigned long long)in->length, (unsigned long long)in->align, in->flags,
		 (unsigned)in->uid, (unsigned)in->gid, in->mode, in->name);
	return 0;
}

static void describe(struct pool *p, struct recovered_state *st)
{
	st->s[0] = '\0';
	assert_int_equal(pool_iterate(p, 0, describe_one, st), 0);
}

/* Opens img (recovery, no persistence needed: the image is the media), checks the invariants. */
static void recover(uint8_t *img, uint64_t size, struct outcome *o, struct recovered_state *st)
{
	struct pool *p = NULL;
	struct pool_stats s;
	struct pool_extent e;
	int r;

	memset(o, 0, sizeof(*o));
	st->s[0] = '\0';
	r = pool_open_range(img, size, &noop_ops, &p);
	if (r == -ENODATA) {
		o->state = STATE_NOPOOL;
		return;
	}
	if (r != 0 && r != POOL_OPEN_DEGRADED) {
		o->rc = r;
		snprintf(o->why, sizeof(o->why), "recovery failed: %s (%s)", strerror(-r), pool_errormsg());
		return;
	}
	o->degraded = r == POOL_OPEN_DEGRADED;
	describe(p, st);
	o->state = str_hash(st->s);
	pool_get_stats(p, &s);
	if (s.free_bytes[0] + s.allocated_bytes != s.data_size) {
		o->rc = -EUCLEAN;
		snprintf(o->why, sizeof(o->why), "space lost or owned twice: free %llu + allocated %llu != %llu",
			 (unsigned long long)s.free_bytes[0], (unsigned long long)s.allocated_bytes,
			 (unsigned long long)s.data_size);
		pool_delete(&p);
		return;
	}
	struct pool_alloc_req req = {.size = 4096, .align = POOL_ALIGN_4K, .name = "after-crash"};
	r = pool_alloc(p, &req, &e);
	if (r == 0)
		r = pool_free(p, e.id);
	pool_delete(&p);
	if (r != 0) {
		o->rc = r;
		snprintf(o->why, sizeof(o->why), "pool unusable after recovery: %s (%s)", strerror(-r),
			 pool_errormsg());
		return;
	}
	if (!o->degraded) {
		r = pool_check_range(img, size, &noop_ops, false);
		if (r != POOL_CHECK_CLEAN) {
			o->rc = r < 0 ? r : -EUCLEAN;
			snprintf(o->why, sizeof(o->why), "pool_check after recovery: %d (%s)", r, pool_errormsg());
		}
	}
}

/* Image hash -> what it recovered to: each distinct image is recovered once. */
struct seen {
	uint64_t key;
	uint64_t state;
	int rc;
};
static struct seen *seen;
static uint64_t seen_mask;

static void seen_init(void)
{
	seen_mask = (UINT64_C(1) << (long_mode ? 23 : 20)) - 1;
	seen = calloc(seen_mask + 1, sizeof(*seen));
	assert_non_null(seen);
}

static struct seen *seen_slot(uint64_t key, bool *fresh)
{
	if (key == 0)
		key = 1;
	for (uint64_t i = mix(key) & seen_mask;; i = (i + 1) & seen_mask) {
		if (seen[i].key == key) {
			*fresh = false;
			return &seen[i];
		}
		if (seen[i].key == 0) {
			if (fig.distinct * 2 > seen_mask)
				fail_msg("more than %llu distinct images: raise the table size",
					 (unsigned long long)(seen_mask / 2));
			seen[i].key = key;
			*fresh = true;
			return &seen[i];
		}
	}
}

/* Distinct recovered states (a set of hashes). */
static uint64_t states[1 << 16];
static void note_state(uint64_t h)
{
	for (uint64_t i = mix(h) & (ARRAY_LEN(states) - 1);; i = (i + 1) & (ARRAY_LEN(states) - 1)) {
		if (states[i] == h)
			return;
		if (states[i] == 0) {
			states[i] = h;
			fig.recovered_states++;
			return;
		}
	}
}

/* ---- crash images at a fence -------------------------------------------------------------- */

struct context {
	uint64_t pool_bytes;
	uint64_t accept[3]; /* acceptable states (0 = unused) */
	const char *what;   /* for messages: the operation or phase */
	const char *accept_desc[3];
	bool recovery_crashes; /* crash the recovery of each fresh image at its fences */
	bool zero_data;        /* a pool that opens must read zero in its data area */
	uint8_t *img;          /* scratch image of pool_bytes (model bytes used) */
	uint8_t *img2;
	struct sim *inner;     /* simulator for crashes during recovery */
};
static struct context ctx;
static uint64_t rng;

static uint64_t rnd(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return rng;
}

static uint64_t *dw;       /* differing words at this fence */
static uint64_t ndw;
static uint64_t *dl_first; /* per differing line: index of its first word in dw */
static uint64_t ndl;
static uint8_t *pick;      /* per differing word: applied in this image */

static void collect_diff(const struct sim *s)
{
	ndw = ndl = 0;
	for (uint64_t l = 0; l < s->model / LINE; l++) {
		if (memcmp(s->work + l * LINE, s->media + l * LINE, LINE) == 0)
			continue;
		dl_first[ndl++] = ndw;
		for (uint64_t w = l * WORDS_PER_LINE; w < (l + 1) * WORDS_PER_LINE; w++)
			if (rd_word(s->work, w) != rd_word(s->media, w))
				dw[ndw++] = w;
	}
	dl_first[ndl] = ndw;
}

static bool accepted(uint64_t state, const uint64_t accept[3])
{
	for (int i = 0; i < 3; i++)
		if (accept[i] && accept[i] == state)
			return true;
	return false;
}

static void recovery_fence(struct sim *in);

/* The image media + picked words, checked against the acceptable states. */
static void check_image(const struct sim *s, uint64_t media_hash, const char *policy,
			const uint64_t accept[3], bool nested)
{
	uint64_t h = media_hash, npicked = 0;
	bool fresh;
	struct recovered_state st;
	struct outcome o = {0};

	for (uint64_t i = 0; i < ndw; i++)
		if (pick[i]) {
			h ^= word_hash(dw[i], rd_word(s->media, dw[i])) ^ word_hash(dw[i], rd_word(s->work, dw[i]));
			npicked++;
		}
	fig.images++;
	if (nested)
		fig.recovery_images++;
	struct seen *e = seen_slot(h, &fresh);
	uint8_t *img = nested ? ctx.img2 : ctx.img;
	if (fresh) {
		fig.distinct++;
		memcpy(img, s->media, s->model);
		for (uint64_t i = 0; i < ndw; i++)
			if (pick[i])
				memcpy(img + dw[i] * 8, s->work + dw[i] * 8, 8);
		/* recovery writes the image: keep a copy for crashing the recovery itself */
		if (!nested && ctx.recovery_crashes)
			memcpy(ctx.inner->work, img, s->model);
		recover(img, ctx.pool_bytes, &o, &st);
		if (o.rc == 0 && ctx.zero_data && o.state != STATE_NOPOOL) {
			uint64_t data_off;
			assert_int_equal(pool_metadata_size(ctx.pool_bytes, NULL, &data_off), 0);
			for (uint64_t off = data_off; off < s->model && o.rc == 0; off += 8)
				if (rd_word(img, off / 8) != 0) {
					o.rc = -EUCLEAN;
					snprintf(o.why, sizeof(o.why),
						 "a pool opened with an old byte at offset %llu of its data area",
						 (unsigned long long)off);
				}
		}
		e->state = o.state;
		e->rc = o.rc;
		if (o.rc == 0)
			note_state(o.state);
	}
	if (e->rc != 0) {
		violation("%s, fence %lu, image '%s' (%llu of %llu words): %s", ctx.what, s->drains, policy,
			  (unsigned long long)npicked, (unsigned long long)ndw,
			  fresh ? o.why : "(an image seen before, which failed then)");
		return;
	}
	if (!accepted(e->state, accept)) {
		violation("%s, fence %lu, image '%s': recovered to %s%s%s, which is none of: %s / %s / %s",
			  ctx.what, s->drains, policy, e->state == STATE_NOPOOL ? "no pool" : "records ",
			  fresh ? st.s : "", fresh ? "" : "(seen before)",
			  ctx.accept_desc[0] ? ctx.accept_desc[0] : "-", ctx.accept_desc[1] ? ctx.accept_desc[1] : "-",
			  ctx.accept_desc[2] ? ctx.accept_desc[2] : "-");
		return;
	}
	/* Crash the recovery of this image at each of its fences: it must end in the same state. */
	if (fresh && !nested && ctx.recovery_crashes && e->state != STATE_NOPOOL) {
		struct sim *in = ctx.inner;
		struct pool *p = NULL;
		uint64_t target[3] = {e->state, 0, 0};
		memcpy(in->media, in->work, s->model);
		memset(in->flushed, 0, s->model / LINE);
		in->npending = 0;
		in->drains = 0;
		in->at_fence = recovery_fence;
		/* the inner fences read these: */
		uint64_t saved[3];
		memcpy(saved, ctx.accept, sizeof(saved));
		memcpy(ctx.accept, target, sizeof(target));
		struct sim *outer = cur;
		cur = in;
		int r = pool_open_range(in->work, ctx.pool_bytes, &sim_ops, &p);
		pool_delete(&p);
		cur = outer;
		in->at_fence = NULL;
		memcpy(ctx.accept, saved, sizeof(saved));
		if (r != 0 && r != POOL_OPEN_DEGRADED)
			violation("%s: the image that recovered once does not recover under the simulator: %d",
				  ctx.what, r);
		/* collect_diff/pick were reused by the inner fences: the caller's loop must not rely
		 * on them after this (explore() recomputes nothing after check_image). */
	}
}

/* The subsets of one fence. apply(i) decides per differing word. */
static void explore(struct sim *s, const uint64_t accept[3], bool nested)
{
	uint64_t mh = 0;
	unsigned long random = nested ? (n_random + 1) / 2 : n_random;

	for (uint64_t w = 0; w < s->model / 8; w++)
		mh ^= word_hash(w, rd_word(s->media, w));
	fig.fences++;
	if (nested)
		fig.recovery_fences++;

	/* Work on copies: a nested exploration (recovery crashes) reuses the globals. */
	uint64_t my_ndw = ndw, my_ndl = ndl;
	uint64_t *my_dw = malloc((my_ndw + 1) * sizeof(uint64_t));
	uint64_t *my_dl = malloc((my_ndl + 1) * sizeof(uint64_t));
	uint8_t *my_pick = malloc(my_ndw + 1);
	assert_true(my_dw && my_dl && my_pick);
	memcpy(my_dw, dw, my_ndw * sizeof(uint64_t));
	memcpy(my_dl, dl_first, (my_ndl + 1) * sizeof(uint64_t));

#define RUN(policy)                                                                               \
	do {                                                                                      \
		ndw = my_ndw;                                                                     \
		ndl = my_ndl;                                                                     \
		memcpy(dw, my_dw, my_ndw * sizeof(uint64_t));                                     \
		memcpy(dl_first, my_dl, (my_ndl + 1) * sizeof(uint64_t));                         \
		memcpy(pick, my_pick, my_ndw);                                                    \
		check_image(s, mh, policy, accept, nested);                                       \
	} while (0)

	memset(my_pick, 0, my_ndw);
	RUN("none");
	if (my_ndw == 0)
		goto out;
	memset(my_pick, 1, my_ndw);
	RUN("all");
	if (my_ndl > 1)
		for (uint64_t k = 0; k < MIN(my_ndl, 64); k++) {
			/* every line when there are few, 64 chosen at random otherwise */
			uint64_t l = my_ndl <= 64 ? k : rnd() % my_ndl;
			for (uint64_t i = 0; i < my_ndw; i++)
				my_pick[i] = i >= my_dl[l] && i < my_dl[l + 1];
			RUN("one line");
			for (uint64_t i = 0; i < my_ndw; i++)
				my_pick[i] = !my_pick[i];
			RUN("all lines but one");
		}
	if (my_ndw <= (nested ? 4 : 8)) {
		for (uint64_t m = 1; m + 1 < (UINT64_C(1) << my_ndw); m++) {
			for (uint64_t i = 0; i < my_ndw; i++)
				my_pick[i] = (m >> i) & 1;
			RUN("word subset");
		}
	} else {
		if (!nested && my_ndw <= 96)
			for (uint64_t j = 0; j < my_ndw; j++) {
				for (uint64_t i = 0; i < my_ndw; i++)
					my_pick[i] = i == j;
				RUN("one word");
				for (uint64_t i = 0; i < my_ndw; i++)
					my_pick[i] = i != j;
				RUN("all words but one");
			}
		static const unsigned shift_of[3] = {1, 2, 2}; /* p = 1/2, 1/4, 3/4 */
		for (int q = 0; q < 3; q++)
			for (unsigned long k = 0; k < random; k++) {
				for (uint64_t i = 0; i < my_ndw; i++) {
					bool b = (rnd() & ((1u << shift_of[q]) - 1)) == 0;
					my_pick[i] = q == 2 ? !b : b;
				}
				RUN(q == 0 ? "random 1/2" : q == 1 ? "random 1/4" : "random 3/4");
			}
	}
#undef RUN
out:
	free(my_dw);
	free(my_dl);
	free(my_pick);
}

static void recovery_fence(struct sim *in)
{
	uint64_t accept[3];
	memcpy(accept, ctx.accept, sizeof(accept));
	collect_diff(in);
	explore(in, accept, true);
}

static bool exploring = true; /* false: the workload only brings the pool to its final state */

static void workload_fence(struct sim *s)
{
	uint64_t accept[3];
	if (!exploring)
		return;
	memcpy(accept, ctx.accept, sizeof(accept));
	collect_diff(s);
	explore(s, accept, false);
}

/* ---- the workload ------------------------------------------------------------------------- */

enum op_kind { OP_ALLOC, OP_FREE, OP_QUAR, OP_RELEASE };
static const char *const kind_name[] = {"alloc", "free", "quarantine", "release"};

struct op {
	enum op_kind kind;
	uint64_t size, align;
	char name[NAME_LEN]; /* "" = unnamed */
	uint32_t flags;
	unsigned ref;    /* free/quarantine/release: the alloc op whose record it targets */
	uint64_t id;     /* alloc: the id it got when generated */
};

static struct op *ops;
static struct recovered_state *ref_state; /* ref_state[i]: before op i; [n] after the last */
static uint64_t *ref_hash;

/* A random workload, run on a DRAM pool as it is generated: only operations that succeed are
 * kept, so replaying it on the simulator must succeed step by step. */
static void generate(uint64_t seed)
{
	uint8_t *r = map_range(POOL_BYTES);
	struct pool *p = NULL;
	struct pool_format_params prm = {.table_capacity = CAPACITY, .data_clean = true};
	unsigned *live = calloc(n_ops, sizeof(unsigned)), *quar = calloc(n_ops, sizeof(unsigned));
	char (*names)[NAME_LEN] = calloc(n_ops + 1, NAME_LEN); /* released names, for reuse */
	unsigned nlive = 0, nquar = 0, nnames = 0, counter = 0;

	assert_true(live && quar && names);
	rng = seed * UINT64_C(0x9e3779b97f4a7c15) + 1;
	assert_int_equal(pool_format_range(r, POOL_BYTES, &noop_ops, &prm), 0);
	assert_int_equal(pool_open_range(r, POOL_BYTES, &noop_ops, &p), 0);
	describe(p, &ref_state[0]);
	ref_hash[0] = str_hash(ref_state[0].s);
	for (unsigned i = 0; i < n_ops;) {
		struct op *o = &ops[i];
		struct pool_stats st;
		unsigned c = (unsigned)(rnd() % 100);
		int rc = -1;

		memset(o, 0, sizeof(*o));
		pool_get_stats(p, &st);
		enum op_kind k = c < 45 ? OP_ALLOC : c < 70 ? OP_FREE : c < 85 ? OP_QUAR : OP_RELEASE;
		if ((k == OP_FREE || k == OP_QUAR) && nlive == 0)
			k = nquar > 0 ? OP_RELEASE : OP_ALLOC;
		if (k == OP_RELEASE && nquar == 0)
			k = nlive > 0 ? OP_FREE : OP_ALLOC;
		if (k == OP_ALLOC && st.records_used + 2 >= CAPACITY)
			k = nlive > 0 ? OP_FREE : OP_RELEASE;
		if (k == OP_ALLOC) {
			unsigned cls = (unsigned)(rnd() % 10);
			o->kind = OP_ALLOC;
			if (cls < 6) {
				o->align = POOL_ALIGN_4K;
				o->size = (1 + rnd() % 16) * 4096 - (rnd() % 2) * 100; /* some not page multiples */
			} else if (cls < 9) {
				o->align = POOL_ALIGN_2M;
				o->size = (1 + rnd() % 2) * 2 * MiB;
			} else {
				o->align = POOL_ALIGN_1G;
				o->size = GiB;
			}
			switch (rnd() % 3) {
			case 0:
				if (nnames > 0 && rnd() % 2)
					memcpy(o->name, names[--nnames], NAME_LEN); /* a released name again */
				else
					snprintf(o->name, sizeof(o->name), "s%u", counter++);
				break;
			case 1:
				o->flags = POOL_ALLOC_ANONYMOUS;
				break;
			default:
				break; /* unnamed, not anonymous */
			}
			struct pool_alloc_req req = {.size = o->size, .align = o->align,
						     .name = o->name[0] ? o->name : NULL, .uid = 1000 + i,
						     .gid = 100 + i % 7, .mode = 0600 | (i % 2 ? 040 : 0),
						     .flags = o->flags};
			struct pool_extent e;
			rc = pool_alloc(p, &req, &e);
			if (rc == 0) {
				o->id = e.id;
				live[nlive++] = i;
			} else if (o->name[0]) {
				memcpy(names[nnames++], o->name, NAME_LEN); /* still free to use */
			}
		} else if (k == OP_FREE || k == OP_QUAR) {
			unsigned j = (unsigned)(rnd() % nlive);
			o->kind = k;
			o->ref = live[j];
			rc = k == OP_FREE ? pool_free(p, ops[o->ref].id) : pool_quarantine(p, ops[o->ref].id);
			if (rc == 0) {
				if (ops[o->ref].name[0]) /* a quarantined record gives its name up too */
					memcpy(names[nnames++], ops[o->ref].name, NAME_LEN);
				live[j] = live[--nlive];
				if (k == OP_QUAR)
					quar[nquar++] = o->ref;
			}
		} else {
			unsigned j = (unsigned)(rnd() % nquar);
			o->kind = OP_RELEASE;
			o->ref = quar[j];
			rc = pool_release(p, ops[o->ref].id);
			if (rc == 0)
				quar[j] = quar[--nquar];
		}
		if (rc != 0)
			continue; /* e.g. no aligned space left: not part of the workload */
		describe(p, &ref_state[i + 1]);
		ref_hash[i + 1] = str_hash(ref_state[i + 1].s);
		i++;
	}
	pool_delete(&p);
	range_free(r, POOL_BYTES);
	free(live);
	free(quar);
	free(names);
}

static int run_op(struct pool *p, unsigned i)
{
	const struct op *o = &ops[i];
	struct pool_extent e;

	switch (o->kind) {
	case OP_ALLOC: {
		struct pool_alloc_req req = {.size = o->size, .align = o->align,
					     .name = o->name[0] ? o->name : NULL, .uid = 1000 + i,
					     .gid = 100 + i % 7, .mode = 0600 | (i % 2 ? 040 : 0),
					     .flags = o->flags};
		int r = pool_alloc(p, &req, &e);
		if (r == 0 && e.id != o->id)
			fail_msg("op %u: the replay got id %llu, the generator %llu", i,
				 (unsigned long long)e.id, (unsigned long long)o->id);
		return r;
	}
	case OP_FREE:
		return pool_free(p, ops[o->ref].id);
	case OP_QUAR:
		return pool_quarantine(p, ops[o->ref].id);
	case OP_RELEASE:
		return pool_release(p, ops[o->ref].id);
	}
	return -EINVAL;
}

static struct sim outer_sim, inner_sim;

static void set_accept(uint64_t a, const char *da, uint64_t b, const char *db, uint64_t c, const char *dc)
{
	ctx.accept[0] = a;
	ctx.accept[1] = b;
	ctx.accept[2] = c;
	ctx.accept_desc[0] = da;
	ctx.accept_desc[1] = db;
	ctx.accept_desc[2] = dc;
}

/* Replays the workload of seed on the simulator with crash images at every fence. At the end
 * the simulator holds the final pool (for the format test). */
static void run_workload(uint64_t seed)
{
	struct pool *p = NULL;
	struct pool_format_params prm = {.table_capacity = CAPACITY, .data_clean = true};
	char what[128];
	uint64_t data_off;

	generate(seed);
	rng = seed * 31 + 7;
	sim_reset(&outer_sim, NULL);
	cur = &outer_sim;
	assert_int_equal(pool_format_range(outer_sim.work, POOL_BYTES, &sim_ops, &prm), 0);
	set_accept(ref_hash[0], ref_state[0].s, 0, NULL, 0, NULL);
	ctx.what = "open after format";
	outer_sim.at_fence = workload_fence;
	assert_int_equal(pool_open_range(outer_sim.work, POOL_BYTES, &sim_ops, &p), 0);
	for (unsigned i = 0; i < n_ops; i++) {
		snprintf(what, sizeof(what), "seed %llu op %u (%s)", (unsigned long long)seed, i,
			 kind_name[ops[i].kind]);
		ctx.what = what;
		set_accept(ref_hash[i], ref_state[i].s, ref_hash[i + 1], ref_state[i + 1].s, 0, NULL);
		int r = run_op(p, i);
		if (r != 0)
			fail_msg("%s failed on the simulator: %d (%s)", what, r, pool_errormsg());
		struct recovered_state st;
		describe(p, &st);
		assert_string_equal(st.s, ref_state[i + 1].s);
	}
	ctx.what = "close";
	set_accept(ref_hash[n_ops], ref_state[n_ops].s, 0, NULL, 0, NULL);
	pool_delete(&p);
	outer_sim.at_fence = NULL;
	/* Everything drained: media is work, and the pool wrote nothing the model does not cover. */
	assert_memory_equal(outer_sim.work, outer_sim.media, outer_sim.model);
	assert_int_equal(pool_metadata_size(POOL_BYTES, &prm, &data_off), 0);
	for (uint64_t o = outer_sim.model; o < data_off; o += 4096)
		for (uint64_t w = o / 8; w < (o + 4096) / 8; w++)
			assert_true(rd_word(outer_sim.work, w) == 0);
}

static void report(const char *test, double seconds)
{
	const char *f = getenv("DAXPOOL_CRASH_REPORT");
	char line[1024];

	snprintf(line, sizeof(line),
		 "{\"test\": \"%s\", \"long\": %s, \"seeds\": %lu, \"ops_per_seed\": %lu, "
		 "\"random_per_policy\": %lu, \"fences\": %lu, \"images\": %lu, \"distinct_images\": %lu, "
		 "\"recovered_states\": %lu, \"recovery_fences\": %lu, \"recovery_images\": %lu, "
		 "\"violations\": %lu, \"seconds\": %.1f}",
		 test, long_mode ? "true" : "false", n_seeds, n_ops, n_random, fig.fences, fig.images,
		 fig.distinct, fig.recovered_states, fig.recovery_fences, fig.recovery_images,
		 fig.violations, seconds);
	print_message("%s\n", line);
	if (f && *f) {
		FILE *out = fopen(f, "a");
		if (out) {
			fprintf(out, "%s\n", line);
			fclose(out);
		}
	}
}

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static uint8_t *big_img, *big_img2;

/* Every test starts from these, whatever the one before left behind when it failed. */
static void reset_figures(void)
{
	ctx.pool_bytes = POOL_BYTES;
	ctx.img = big_img;
	ctx.img2 = big_img2;
	ctx.inner = &inner_sim;
	ctx.recovery_crashes = false;
	ctx.zero_data = false;
	count_only = false;
	exploring = true;
	pool_test_plant_ordering_bug(POOL_TEST_BUG_NONE);
	memset(&fig, 0, sizeof(fig));
	memset(states, 0, sizeof(states));
	memset(seen, 0, (seen_mask + 1) * sizeof(*seen));
}

/* ---- tests -------------------------------------------------------------------------------- */

static void test_crash_workload(void **state)
{
	(void)state;
	double t0 = now_s();
	reset_figures();
	ctx.recovery_crashes = true;
	ctx.zero_data = false;
	for (unsigned long s = 1; s <= n_seeds; s++)
		run_workload(s);
	assert_int_equal(fig.violations, 0);
	assert_true(fig.recovery_fences > 0);
	report("workload", now_s() - t0);
}

/* Format over the workload's final pool, crashed at each fence: the old pool as it was, no
 * pool, or an empty one. */
static void test_crash_during_format(void **state)
{
	(void)state;
	double t0 = now_s();
	struct pool_format_params prm = {.table_capacity = CAPACITY, .data_clean = true};
	reset_figures();
	ctx.recovery_crashes = false;
	ctx.zero_data = false;
	for (unsigned long s = 1; s <= n_seeds; s++) {
		char what[64];
		exploring = false;
		run_workload(s);
		exploring = true;
		snprintf(what, sizeof(what), "seed %lu: format over the pool", s);
		ctx.what = what;
		set_accept(ref_hash[n_ops], ref_state[n_ops].s, str_hash(""), "(empty)", STATE_NOPOOL,
			   "(no pool)");
		sim_reset(&outer_sim, outer_sim.work);
		outer_sim.at_fence = workload_fence;
		cur = &outer_sim;
		assert_int_equal(pool_format_range(outer_sim.work, POOL_BYTES, &sim_ops, &prm), 0);
		outer_sim.at_fence = NULL;
	}
	assert_int_equal(fig.violations, 0);
	report("format", now_s() - t0);
}

/* Format over dirty bytes (no pool), crashed at each fence: a pool that opens must read zero
 * everywhere in its data area. The whole range is modelled here. */
static void test_crash_during_format_scrub(void **state)
{
	(void)state;
	const uint64_t size = 8 * MiB;
	double t0 = now_s();
	struct sim s;
	uint8_t *dirty = map_range(size);

	reset_figures();
	sim_init(&s, size, size);
	for (uint64_t i = 0; i < size; i++)
		dirty[i] = (uint8_t)(0xa5 ^ (i >> 12));
	ctx.img = map_range(size);
	ctx.img2 = map_range(size);
	ctx.pool_bytes = size;
	ctx.recovery_crashes = false;
	ctx.zero_data = true;
	ctx.what = "format over dirty bytes";
	set_accept(str_hash(""), "(empty)", STATE_NOPOOL, "(no pool)", 0, NULL);
	unsigned long saved_random = n_random;
	n_random = 2;
	sim_reset(&s, dirty);
	s.at_fence = workload_fence;
	cur = &s;
	assert_int_equal(pool_format_range(s.work, size, &sim_ops, NULL), 0);
	n_random = saved_random;
	range_free(ctx.img, size);
	range_free(ctx.img2, size);
	sim_fini(&s, size);
	range_free(dirty, size);
	assert_int_equal(fig.violations, 0);
	assert_true(fig.fences >= 3);
	report("format-scrub", now_s() - t0);
}

/* The simulator catches an ordering bug planted in the redo log. */
static void planted(enum pool_test_ordering_bug bug, const char *name)
{
	double t0 = now_s();
	unsigned long saved_ops = n_ops, saved_seeds = n_seeds;

	reset_figures();
	n_ops = n_ops < 30 ? n_ops : 30;
	n_seeds = 1;
	ctx.recovery_crashes = false;
	count_only = true;
	pool_test_plant_ordering_bug(bug);
	run_workload(1);
	pool_test_plant_ordering_bug(POOL_TEST_BUG_NONE);
	count_only = false;
	report(name, now_s() - t0);
	n_ops = saved_ops;
	n_seeds = saved_seeds;
	print_message("first violation: %s\n", fig.first_violation);
	assert_true(fig.violations > 0);
}

static void test_planted_commit_before_body(void **state)
{
	(void)state;
	planted(POOL_TEST_BUG_COMMIT_BEFORE_BODY, "planted-commit-before-body");
}

static void test_planted_clear_before_apply(void **state)
{
	(void)state;
	planted(POOL_TEST_BUG_CLEAR_BEFORE_APPLY, "planted-clear-before-apply");
}

static int setup(void **state)
{
	(void)state;
	read_sizes();
	sim_init(&outer_sim, POOL_BYTES, MODEL_BYTES);
	sim_init(&inner_sim, POOL_BYTES, MODEL_BYTES);
	big_img = map_range(POOL_BYTES);
	big_img2 = map_range(POOL_BYTES);
	uint64_t words = 8 * MiB / 8;
	dw = calloc(words, sizeof(uint64_t));
	dl_first = calloc(words / WORDS_PER_LINE + 1, sizeof(uint64_t));
	pick = calloc(words, 1);
	ops = calloc(n_ops, sizeof(*ops));
	ref_state = calloc(n_ops + 1, sizeof(*ref_state));
	ref_hash = calloc(n_ops + 1, sizeof(*ref_hash));
	seen_init();
	return dw && dl_first && pick && ops && ref_state && ref_hash ? 0 : -1;
}

static int teardown(void **state)
{
	(void)state;
	sim_fini(&outer_sim, POOL_BYTES);
	sim_fini(&inner_sim, POOL_BYTES);
	range_free(big_img, POOL_BYTES);
	range_free(big_img2, POOL_BYTES);
	free(dw);
	free(dl_first);
	free(pick);
	free(ops);
	free(ref_state);
	free(ref_hash);
	free(seen);
	return 0;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_crash_workload),
		cmocka_unit_test(test_crash_during_format),
		cmocka_unit_test(test_crash_during_format_scrub),
		cmocka_unit_test(test_planted_commit_before_body),
		cmocka_unit_test(test_planted_clear_before_apply),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
