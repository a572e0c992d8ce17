/*
 * Fuzz target: the on-device format reader (lib/pool): pool_open_range and pool_check_range
 * on an image in memory. A pool's metadata sits in its first 32 KiB here (superblocks, log, a
 * 64-record table); the data area is never read. The input patches a template image:
 *
 *   byte 0   bits 0-1 template: 0 empty pool, 1 named/anonymous/quarantined records and a hole,
 *            2 = 1 with a committed operation pending in the log, 3 = 2M-aligned device
 *            bit 2   recompute the superblock, record and log checksums after patching, so the
 *                    fuzzer reaches the checks behind them (geometry, extents, names, overlaps)
 *            bit 3   also run pool_check with repair
 *   byte 1   number of patches (low 4 bits); each patch: u16 offset (mod 32 KiB), u8 length
 *            (1..32), bytes
 *   rest     operations run on the pool when it opens (alloc, free, quarantine, release, lookup,
 *            alloc with an injected allocation failure)
 *
 * Properties beyond "no crash, no sanitizer report":
 *  - pool_check without repair writes nothing;
 *  - check CLEAN => open returns 0; check DAMAGED => open fails; open succeeds => check is
 *    CLEAN or REPAIRABLE;
 *  - every live record of an opened pool lies in the data area, overlaps no other and has a
 *    unique name (checked here, not by asking the pool), before and after the operations;
 *  - every extent handed out lies in the data area and overlaps no live record;
 *  - an operation that fails with -ENOMEM changed no metadata byte;
 *  - after any sequence of operations the pool reopens and check does not call it DAMAGED;
 *  - check with repair never answers REPAIRABLE, and after CLEAN/REPAIRED a second check is
 *    CLEAN and the pool opens with 0.
 */
#include "endian-util.h"
#include "fuzz.h"
#include "layout.h"
#include "pool.h"

#include <errno.h>
#include <string.h>

#define META (32u << 10)
#define IMAGE_SIZE (UINT64_C(8) << 20)
#define NTEMPLATES 4

static uint8_t *image;
static uint8_t templates[NTEMPLATES][META];
static uint8_t before[META];

static void nop_persist(const void *addr, size_t len) {}
static void nop_drain(void) {}
static const struct pool_persist_ops ops = { nop_persist, nop_persist, nop_drain };

static void alloc_or_die(struct pool *p, const char *name, uint64_t size, uint64_t align, uint32_t flags,
			 struct pool_extent *ext)
{
	struct pool_alloc_req req = { .size = size, .align = align, .name = name, .uid = 1000,
				      .gid = 1000, .mode = 0600, .flags = flags };

	FUZZ_CHECK(pool_alloc(p, &req, ext) == 0, "template alloc: %s", pool_errormsg());
}

static void make_templates(void)
{
	struct pool_format_params prm = { .table_capacity = POOL_MIN_CAPACITY };
	struct pool_extent a, b, c, d;
	struct pool *p = NULL;

	image = aligned_alloc(4096, IMAGE_SIZE);
	FUZZ_CHECK(image != NULL, "out of memory");
	memset(image, 0, IMAGE_SIZE);

	FUZZ_CHECK(pool_format_range(image, IMAGE_SIZE, &ops, &prm) == 0, "format: %s", pool_errormsg());
	memcpy(templates[0], image, META);

	FUZZ_CHECK(pool_open_range(image, IMAGE_SIZE, &ops, &p) == 0, "open: %s", pool_errormsg());
	alloc_or_die(p, "alpha", 4096, POOL_ALIGN_4K, 0, &a);
	alloc_or_die(p, NULL, 12288, POOL_ALIGN_4K, POOL_ALLOC_ANONYMOUS, &b);
	alloc_or_die(p, "beta", 1u << 21, POOL_ALIGN_2M, 0, &c);
	alloc_or_die(p, "gamma", 8192, POOL_ALIGN_4K, 0, &d);
	FUZZ_CHECK(pool_quarantine(p, d.id) == 0, "quarantine");
	alloc_or_die(p, "delta", 4096, POOL_ALIGN_4K, 0, &d);
	FUZZ_CHECK(pool_free(p, d.id) == 0, "free"); /* leaves a hole and a log body */
	alloc_or_die(p, "epsilon", 4096, POOL_ALIGN_4K, 0, &d);
	pool_delete(&p);
	memcpy(templates[1], image, META);

	/* A crash between the commit mark and its clearing: the mark equals the body's generation. */
	memcpy(templates[2], templates[1], META);
	put_le64(templates[2] + POOL_LOG_OFF + LOG_COMMIT, get_le64(templates[2] + POOL_LOG_OFF + LOG_GENERATION));

	prm.device_align = POOL_ALIGN_2M;
	FUZZ_CHECK(pool_format_range(image, IMAGE_SIZE, &ops, &prm) == 0, "format 2M: %s", pool_errormsg());
	FUZZ_CHECK(pool_open_range(image, IMAGE_SIZE, &ops, &p) == 0, "open 2M: %s", pool_errormsg());
	alloc_or_die(p, "huge", 4096, POOL_ALIGN_4K, 0, &a);
	alloc_or_die(p, NULL, 1u << 21, POOL_ALIGN_2M, POOL_ALLOC_ANONYMOUS, &b);
	pool_delete(&p);
	memcpy(templates[3], image, META);
}

/* The log body checksum as log.c computes it (XXH3 over [64, 128 + n*384) with the checksum
 * field zero); duplicated on purpose so a change of either is caught by the seeds. */
static void fix_checksums(uint8_t *m)
{
	for (unsigned off = POOL_SB_A_OFF; off <= POOL_SB_B_OFF; off += POOL_SB_B_OFF) {
		if (memcmp(m + off, POOL_MAGIC, 8) == 0)
			put_le64(m + off + SB_CHECKSUM, pool_checksum(m + off, SB_CHECKSUM));
	}
	uint8_t *log = m + POOL_LOG_OFF;
	unsigned n = log[LOG_NREC];
	if (n >= 1 && n <= POOL_LOG_MAX_RECORDS) {
		uint8_t buf[POOL_LOG_ENTRIES_OFF + POOL_LOG_MAX_RECORDS * POOL_LOG_ENTRY_SIZE];
		size_t len = POOL_LOG_ENTRIES_OFF + (size_t)n * POOL_LOG_ENTRY_SIZE;

		memcpy(buf, log, len);
		memset(buf + LOG_COMMIT, 0, 8);
		memset(buf + LOG_CHECKSUM, 0, 8);
		put_le64(log + LOG_CHECKSUM, pool_checksum(buf + LOG_GENERATION, len - LOG_GENERATION));
	}
	for (uint64_t s = 0; s < POOL_MIN_CAPACITY; s++) {
		uint8_t *r = m + POOL_TABLE_OFF + s * POOL_RECORD_SIZE;

		if (rec_is_empty(r))
			continue;
		memset(r + REC_CHECKSUM, 0, 8);
		put_le64(r + REC_CHECKSUM, pool_checksum(r, POOL_RECORD_SIZE));
	}
}

struct overlap_ctx {
	struct pool_extent ext;
	int hits;
};

static int overlap_cb(const struct pool_record_info *info, void *userdata)
{
	struct overlap_ctx *c = userdata;

	if (info->offset < c->ext.offset + c->ext.length && c->ext.offset < info->offset + info->length)
		c->hits++;
	return 0;
}

/* The pool's own checks are under test, so its invariants are re-checked independently: every
 * live record lies in the data area, no two overlap, no two share a name. */
struct records {
	struct pool_record_info r[POOL_MIN_CAPACITY];
	unsigned n;
};

static int collect_cb(const struct pool_record_info *info, void *userdata)
{
	struct records *rs = userdata;

	FUZZ_CHECK(rs->n < POOL_MIN_CAPACITY, "more live records than slots");
	rs->r[rs->n++] = *info;
	return 0;
}

static void check_invariants(struct pool *p)
{
	static struct records rs;
	struct pool_stats st;

	pool_get_stats(p, &st);
	rs.n = 0;
	FUZZ_CHECK(pool_iterate(p, 0, collect_cb, &rs) == 0, "iterate: %s", pool_errormsg());
	FUZZ_CHECK(rs.n == st.records_used, "%u records, stats say %llu", rs.n,
		   (unsigned long long)st.records_used);
	for (unsigned i = 0; i < rs.n; i++) {
		const struct pool_record_info *a = &rs.r[i];

		FUZZ_CHECK(a->length > 0 && a->offset >= st.data_offset &&
				   a->offset + a->length <= st.data_offset + st.data_size,
			   "record %llu [%llu, +%llu) outside the data area", (unsigned long long)a->id,
			   (unsigned long long)a->offset, (unsigned long long)a->length);
		for (unsigned j = i + 1; j < rs.n; j++) {
			const struct pool_record_info *b = &rs.r[j];

			FUZZ_CHECK(a->offset + a->length <= b->offset || b->offset + b->length <= a->offset,
				   "records %llu and %llu overlap", (unsigned long long)a->id,
				   (unsigned long long)b->id);
			FUZZ_CHECK(!a->name[0] || strcmp(a->name, b->name) != 0, "two records named '%s'", a->name);
		}
	}
}

/* Operations on an opened pool; every byte pair is one operation. */
static void run_ops(struct pool *p, const uint8_t *data, size_t size)
{
	static const uint64_t aligns[] = { POOL_ALIGN_4K, POOL_ALIGN_2M, POOL_ALIGN_1G };
	static const char *const names[] = { "alpha", "beta", "gamma", "delta", "epsilon", "zeta" };
	struct pool_stats st;

	pool_get_stats(p, &st);
	for (size_t i = 0; i + 1 < size && i < 64; i += 2) {
		uint8_t op = data[i] % 7, arg = data[i + 1];
		struct pool_record_info info;
		struct pool_extent ext;
		struct pool_alloc_req req = {
			.size = ((uint64_t)(arg & 0x1f) + 1) << 12,
			.align = aligns[(arg >> 5) % 3],
			.name = (arg & 0x80) ? NULL : names[arg % 6],
			.mode = 0600,
			.flags = (arg & 0x80) ? POOL_ALLOC_ANONYMOUS : 0,
		};
		int r;

		switch (op) {
		case 0:
		case 1:
			r = pool_alloc(p, &req, &ext);
			FUZZ_CHECK(r == 0 || r == -ENOSPC || r == -EEXIST, "alloc: %d %s", r, pool_errormsg());
			if (r == 0) {
				struct overlap_ctx c = { .ext = ext };

				FUZZ_CHECK(ext.offset >= st.data_offset && ext.length >= req.size &&
						   ext.offset + ext.length <= st.data_offset + st.data_size,
					   "extent [%llu, +%llu) outside the data area",
					   (unsigned long long)ext.offset, (unsigned long long)ext.length);
				FUZZ_CHECK(ext.offset % req.align == 0, "misaligned extent");
				FUZZ_CHECK(pool_iterate(p, 0, overlap_cb, &c) == 0, "iterate: %s", pool_errormsg());
				FUZZ_CHECK(c.hits == 1, "new extent overlaps %d records", c.hits - 1);
			}
			break;
		case 2:
			(void)pool_free(p, arg % POOL_MIN_CAPACITY);
			break;
		case 3:
			(void)pool_quarantine(p, arg % POOL_MIN_CAPACITY);
			break;
		case 4:
			(void)pool_release(p, arg % POOL_MIN_CAPACITY);
			break;
		case 5:
			if (pool_lookup(p, names[arg % 6], &info) == 0)
				FUZZ_CHECK(strcmp(info.name, names[arg % 6]) == 0, "lookup returned '%s'", info.name);
			break;
		case 6:
			/* Out of memory in the middle of an operation changes nothing persistent. */
			memcpy(before, image, META);
			pool_test_fail_alloc_at(1 + arg % 3);
			if (arg & 1)
				r = pool_alloc(p, &req, &ext);
			else
				r = pool_free(p, arg % POOL_MIN_CAPACITY);
			pool_test_fail_alloc_at(0);
			if (r == -ENOMEM)
				FUZZ_CHECK(memcmp(before, image, META) == 0, "-ENOMEM but the metadata changed");
			break;
		}
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct pool *p = NULL;
	size_t pos = 2;
	int c1, o, c2;

	if (!image)
		make_templates();
	if (size < 2)
		return 0;

	memcpy(image, templates[data[0] & 3], META);
	for (unsigned i = 0, n = data[1] & 15; i < n && pos + 3 <= size; i++) {
		size_t off = (size_t)(data[pos] | data[pos + 1] << 8) % META;
		size_t len = (size_t)(data[pos + 2] & 31) + 1;

		pos += 3;
		if (len > size - pos)
			len = size - pos;
		if (len > META - off)
			len = META - off;
		memcpy(image + off, data + pos, len);
		pos += len;
	}
	if (data[0] & 4)
		fix_checksums(image);
	uint8_t *fuzzed = malloc(META);
	FUZZ_CHECK(fuzzed != NULL, "out of memory");
	memcpy(fuzzed, image, META);

	c1 = pool_check_range(image, IMAGE_SIZE, &ops, false);
	FUZZ_CHECK(c1 == -ENODATA || c1 == -EPROTONOSUPPORT || (c1 >= POOL_CHECK_CLEAN && c1 <= POOL_CHECK_DAMAGED &&
		   c1 != POOL_CHECK_REPAIRED), "check returned %d", c1);
	FUZZ_CHECK(memcmp(image, fuzzed, META) == 0, "check without repair wrote to the pool");

	o = pool_open_range(image, IMAGE_SIZE, &ops, &p);
	if (c1 == POOL_CHECK_CLEAN)
		FUZZ_CHECK(o == 0, "check clean, open returned %d: %s", o, pool_errormsg());
	if (c1 == POOL_CHECK_DAMAGED || c1 < 0)
		FUZZ_CHECK(o < 0, "check returned %d, open succeeded", c1);
	if (o >= 0) {
		FUZZ_CHECK(c1 == POOL_CHECK_CLEAN || c1 == POOL_CHECK_REPAIRABLE, "open ok, check %d", c1);
		check_invariants(p);
		run_ops(p, data + pos, size - pos);
		check_invariants(p);
		pool_delete(&p);
		o = pool_open_range(image, IMAGE_SIZE, &ops, &p);
		FUZZ_CHECK(o >= 0, "pool does not reopen after operations: %s", pool_errormsg());
		pool_delete(&p);
		c2 = pool_check_range(image, IMAGE_SIZE, &ops, false);
		FUZZ_CHECK(c2 == POOL_CHECK_CLEAN || c2 == POOL_CHECK_REPAIRABLE,
			   "check after operations: %d: %s", c2, pool_errormsg());
	} else {
		FUZZ_CHECK(o == -ENODATA || o == -EPROTONOSUPPORT || o == -EUCLEAN || o == -EINVAL,
			   "open returned %d", o);
	}

	if (data[0] & 8) {
		memcpy(image, fuzzed, META);
		c1 = pool_check_range(image, IMAGE_SIZE, &ops, true);
		FUZZ_CHECK(c1 != POOL_CHECK_REPAIRABLE, "repair left something repairable");
		if (c1 == POOL_CHECK_CLEAN || c1 == POOL_CHECK_REPAIRED) {
			c2 = pool_check_range(image, IMAGE_SIZE, &ops, false);
			FUZZ_CHECK(c2 == POOL_CHECK_CLEAN, "check after repair: %d: %s", c2, pool_errormsg());
			o = pool_open_range(image, IMAGE_SIZE, &ops, &p);
			FUZZ_CHECK(o == 0, "open after repair: %d: %s", o, pool_errormsg());
			pool_delete(&p);
		}
	}
	free(fuzzed);
	return 0;
}
