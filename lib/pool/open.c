/* Opening a pool: superblocks, log replay, the scan of the record table into the DRAM index. */
#include <errno.h>
#include <sys/stat.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "alloc.h"
#include "error.h"
#include "macro.h"
#include "pool-internal.h"

/* ---- open -------------------------------------------------------------------------------- */

/* Reads both superblock copies. ret_bad: -1 none bad, 0 = A bad, 1 = B bad. */
int pool_superblocks(uint8_t *base, uint64_t size, struct pool_geometry *ret_geo, int *ret_bad,
		     const char **ret_why)
{
	struct pool_geometry ga, gb;
	const char *wa = NULL, *wb = NULL;
	int ra, rb;

	if (size < POOL_TABLE_OFF)
		return pool_err(-ENODATA, "range of %llu bytes is too small to hold a pool",
				(unsigned long long)size);
	ra = sb_decode(base + POOL_SB_A_OFF, &ga, &wa);
	rb = sb_decode(base + POOL_SB_B_OFF, &gb, &wb);
	if (ra == 0 && rb == 0) {
		if (memcmp(base + POOL_SB_A_OFF, base + POOL_SB_B_OFF, POOL_SB_BYTES) != 0)
			return pool_err(-EUCLEAN, "both superblock copies are valid but differ: "
						  "cannot tell which is right");
		*ret_bad = -1;
	} else if (ra == 0 || rb == 0) {
		*ret_bad = ra == 0 ? 1 : 0;
		*ret_why = ra == 0 ? wb : wa;
	} else if (ra == -ENODATA && rb == -ENODATA) {
		return pool_err(-ENODATA, "no daxpool superblock (not formatted, or format interrupted)");
	} else if (ra == -EPROTONOSUPPORT || rb == -EPROTONOSUPPORT) {
		return pool_err(-EPROTONOSUPPORT, "pool format version not supported (this is version %u)",
				POOL_FORMAT_VERSION);
	} else {
		return pool_err(-EUCLEAN, "both superblock copies are bad: A: %s, B: %s", wa, wb);
	}
	*ret_geo = ra == 0 ? ga : gb;
	if (ret_geo->pool_size > size)
		return pool_err(-EUCLEAN, "superblock says %llu bytes but the range has %llu",
				(unsigned long long)ret_geo->pool_size, (unsigned long long)size);
	return 0;
}

struct ext_ref {
	uint64_t off, len, slot;
};

/*
 * Sorts refs by offset: a radix sort on 16-bit digits, skipping the digits every offset shares
 * (the high ones, usually), so a million records take two passes over 24 MB instead of a
 * comparison sort's twenty (qsort took 230 ms of a 1 M-record open). tmp holds n entries,
 * count 2^16 (n fits in 32 bits: the table holds at most POOL_MAX_CAPACITY records).
 */
static void sort_ext_refs(struct ext_ref *refs, struct ext_ref *tmp, uint32_t *count, uint64_t n)
{
	uint64_t all_or = 0, all_and = ~UINT64_C(0);

	for (uint64_t i = 0; i < n; i++) {
		all_or |= refs[i].off;
		all_and &= refs[i].off;
	}
	for (unsigned shift = 0; shift < 64; shift += 16) {
		uint32_t pos = 0;

		if ((((all_or ^ all_and) >> shift) & 0xffff) == 0)
			continue; /* every offset has the same digit here */
		memset(count, 0, sizeof(*count) << 16);
		for (uint64_t i = 0; i < n; i++)
			count[(refs[i].off >> shift) & 0xffff]++;
		for (unsigned d = 0; d < (1u << 16); d++) {
			uint32_t c = count[d];
			count[d] = pos;
			pos += c;
		}
		for (uint64_t i = 0; i < n; i++)
			tmp[count[(refs[i].off >> shift) & 0xffff]++] = refs[i];
		memcpy(refs, tmp, n * sizeof(*refs));
	}
}

static const uint8_t *scan_rec_ptr(struct pool *p, uint64_t slot)
{
	for (uint32_t i = 0; i < p->noverlay; i++)
		if (p->overlay[i].slot == slot)
			return p->overlay[i].image;
	return pool_rec_ptr(p, slot);
}

/* Validates every record and builds the DRAM index. */
static int pool_scan(struct pool *p)
{
	const struct pool_geometry *g = &p->geo;
	_cleanup_(freep) struct ext_ref *refs = NULL;
	uint64_t nrefs = 0, maxgen = 0;
	int r;

	/* Plain free() is right for refs: pool_mem_alloc is malloc. */
	refs = pool_mem_calloc(g->table_capacity, sizeof(*refs));
	p->free_slots = pool_mem_calloc(g->table_capacity, sizeof(*p->free_slots));
	if (!refs || !p->free_slots)
		return pool_err(-ENOMEM, "out of memory for %llu records",
				(unsigned long long)g->table_capacity);

	for (uint64_t s = g->table_capacity; s-- > 0;) {
		struct pool_record rec;
		const char *why = NULL;

		r = rec_decode(scan_rec_ptr(p, s), &rec, &why);
		if (r == 1) {
			p->free_slots[p->nfree_slots++] = (uint32_t)s;
			continue;
		}
		if (r < 0)
			return pool_err(-EUCLEAN, "record %llu: %s", (unsigned long long)s, why);
		uint64_t ralign = UINT64_C(1) << rec.align_shift;
		if (rec.offset < g->data_off || rec.length == 0 ||
		    rec.offset + rec.length < rec.offset ||
		    rec.offset + rec.length > g->data_off + g->data_size || rec.offset % ralign ||
		    rec.length % ralign || ralign < g->device_align)
			return pool_err(-EUCLEAN, "record %llu: extent [%llu, +%llu) invalid",
					(unsigned long long)s, (unsigned long long)rec.offset,
					(unsigned long long)rec.length);
		if ((rec.flags & POOL_REC_ANONYMOUS) && rec.name_len)
			return pool_err(-EUCLEAN, "record %llu: anonymous record with a name",
					(unsigned long long)s);
		if (rec.name_len) {
			struct name_node *n = name_node_new(rec.name, s);
			if (!n)
				return pool_err(-ENOMEM, "out of memory for names");
			if (!index_name_insert(&p->idx, n)) {
				uint64_t other = index_name_find(&p->idx, rec.name)->slot;
				pool_mem_free(n);
				return pool_err(-EUCLEAN, "records %llu and %llu have the same name",
						(unsigned long long)s, (unsigned long long)other);
			}
		}
		refs[nrefs++] = (struct ext_ref){rec.offset, rec.length, s};
		maxgen = MAX(maxgen, rec.generation);
		p->records_used++;
		p->allocated_bytes += rec.length;
		if (rec.flags & POOL_REC_ANONYMOUS)
			p->records_anon++;
		if (rec.flags & POOL_REC_QUARANTINED)
			p->records_quar++;
	}

	{
		_cleanup_(freep) struct ext_ref *tmp = pool_mem_alloc((nrefs ? nrefs : 1) * sizeof(*tmp));
		_cleanup_(freep) uint32_t *count = pool_mem_alloc(sizeof(*count) << 16);
		if (!tmp || !count)
			return pool_err(-ENOMEM, "out of memory for %llu records",
					(unsigned long long)nrefs);
		sort_ext_refs(refs, tmp, count, nrefs);
	}
	uint64_t cursor = g->data_off, end = g->data_off + g->data_size;
	for (uint64_t i = 0; i <= nrefs; i++) {
		uint64_t next = i < nrefs ? refs[i].off : end;
		if (next < cursor)
			return pool_err(-EUCLEAN, "records %llu and %llu overlap",
					(unsigned long long)refs[i - 1].slot,
					(unsigned long long)refs[i].slot);
		if (next > cursor) {
			if (fext_cache_ready(&p->spare) < 0)
				return pool_err(-ENOMEM, "out of memory for the free index");
			index_give(&p->idx, cursor, next - cursor, &p->spare);
		}
		if (i < nrefs)
			cursor = refs[i].off + refs[i].len;
	}
	p->next_gen = MAX(maxgen, log_generation(p->base, g)) + 1;
	return 0;
}

int pool_open_internal(void *addr, uint64_t size, const struct pool_persist_ops *ops,
		       bool readonly, struct pool **ret_pool)
{
	struct pool *p;
	int bad = -1, r;
	const char *why = NULL;
	struct pool_geometry g;

	if (!addr || !ops || !ops->persist || !ops->flush || !ops->drain)
		return pool_err(-EINVAL, "pool_open: missing range or persistence functions");
	if ((uintptr_t)addr % 8 != 0)
		return pool_err(-EINVAL, "pool_open: range not 8-byte aligned");
	r = pool_superblocks(addr, size, &g, &bad, &why);
	if (r < 0)
		return r;

	p = pool_mem_calloc(1, sizeof(*p));
	if (!p)
		return pool_err(-ENOMEM, "out of memory");
	p->base = addr;
	p->size = size;
	p->ops = *ops;
	p->geo = g;
	p->readonly = readonly;
	index_init(&p->idx);

	struct log_update u[POOL_LOG_MAX_RECORDS];
	unsigned n = 0;
	uint64_t gen = 0;
	const char *lwhy = NULL;
	switch (log_inspect(p->base, &g, u, &n, &gen, &lwhy)) {
	case LOG_IDLE:
		break;
	case LOG_COMMITTED:
		if (readonly) {
			memcpy(p->overlay, u, n * sizeof(u[0]));
			p->noverlay = n;
		} else {
			log_replay(p->base, &g, &p->ops, u, n);
		}
		break;
	case LOG_STRAY:
		if (readonly) { /* pool_check decided a replay is safe: scan as if replayed */
			memcpy(p->overlay, u, n * sizeof(u[0]));
			p->noverlay = n;
			break;
		}
		/* fall through */
	case LOG_DAMAGED:
		pool_delete(&p);
		return pool_err(-EUCLEAN, "%s (run pool check)", lwhy);
	}

	r = pool_scan(p);
	if (r < 0) {
		pool_delete(&p);
		return r;
	}
	p->noverlay = 0;
	*ret_pool = p;
	if (bad >= 0) {
		pool_err(0, "superblock copy %c is bad (%s); using copy %c (run pool check --repair)",
			 bad == 0 ? 'A' : 'B', why, bad == 0 ? 'B' : 'A');
		return POOL_OPEN_DEGRADED;
	}
	return 0;
}

int pool_open_range(void *addr, uint64_t size, const struct pool_persist_ops *ops,
		    struct pool **ret_pool)
{
	return pool_open_internal(addr, size, ops, false, ret_pool);
}

int pool_open_fd(int fd, struct pool **ret_pool)
{
	struct pool_mapping m;
	struct pool *p = NULL;
	int r;

	r = pool_mapping_open(fd, &m);
	if (r < 0)
		return r;
	r = pool_open_internal(m.addr, m.size, &m.ops, false, &p);
	if (r < 0) {
		pool_mapping_close(&m);
		return r;
	}
	if (m.align > p->geo.device_align) {
		uint64_t formatted = p->geo.device_align;
		pool_delete(&p);
		r = pool_err(-EINVAL, "device alignment is now %llu, pool was formatted for %llu",
			     (unsigned long long)m.align, (unsigned long long)formatted);
		pool_mapping_close(&m);
		return r;
	}
	p->mapping = m;
	*ret_pool = p;
	return r;
}

void pool_delete(struct pool **pool)
{
	if (!pool || !*pool)
		return;
	struct pool *p = *pool;
	/* The last operation's cleared commit mark may still be in flight (log_commit). */
	if (p->commit_clear_in_flight)
		p->ops.drain();
	index_destroy(&p->idx);
	fext_cache_clear(&p->spare);
	pool_mem_free(p->free_slots);
	pool_mapping_close(&p->mapping);
	pool_mem_free(p);
	*pool = NULL;
}
