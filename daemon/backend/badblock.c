/*
 * Bad blocks: a list of known bad ranges, and their reservation in the pool. A read of poisoned
 * persistent memory is a machine check (SIGBUS in the reader), so an extent overlapping a bad
 * range must never reach a client. Each bad range of the data area, rounded out to the pool's
 * alignment, is held by a named record (BACKEND_BADBLOCK_NAME_PREFIX + hex offset, uid 0, mode 0)
 * written with pool_alloc_at: an ordinary record, so no format change, crash-safe like any
 * allocation, and idempotent (a reserved range is no longer free, so reopening reserves nothing).
 */
#include "backend-internal.h"
#include "pool.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int cmp_bb(const void *a, const void *b)
{
	const struct backend_badblock *x = a, *y = b;
	return x->offset < y->offset ? -1 : x->offset > y->offset;
}

int badblock_add(struct backend *b, const struct backend_badblock *list, size_t n)
{
	if (n == 0)
		return 0;
	for (size_t i = 0; i < n; i++)
		if (list[i].length == 0 || list[i].offset >= b->size ||
		    list[i].length > b->size - list[i].offset)
			return backend_err(-EINVAL,
					   "bad block [%llu, +%llu) is empty or outside %s (%llu "
					   "bytes)",
					   (unsigned long long)list[i].offset,
					   (unsigned long long)list[i].length, b->path,
					   (unsigned long long)b->size);
	if (n > SIZE_MAX / sizeof(*list) - b->nbadblocks)
		return backend_err(-ENOMEM, "too many bad blocks");
	struct backend_badblock *all =
		backend_mem_realloc(b->badblocks, (b->nbadblocks + n) * sizeof(*all));
	if (!all)
		return backend_err(-ENOMEM, "bad-block list: out of memory");
	memcpy(all + b->nbadblocks, list, n * sizeof(*all));
	b->badblocks = all;
	n += b->nbadblocks;

	/* Sorted and merged, so overlapping reports (device + operator list) count once. */
	qsort(all, n, sizeof(*all), cmp_bb);
	size_t k = 0;
	for (size_t i = 1; i < n; i++) {
		uint64_t end = all[k].offset + all[k].length;
		if (all[i].offset <= end) {
			uint64_t iend = all[i].offset + all[i].length;
			if (iend > end)
				all[k].length = iend - all[k].offset;
		} else {
			all[++k] = all[i];
		}
	}
	b->nbadblocks = k + 1;
	b->bbstats.count = b->nbadblocks;
	b->bbstats.bytes = 0;
	for (size_t i = 0; i < b->nbadblocks; i++)
		b->bbstats.bytes += all[i].length;
	return 0;
}

/* Live records sorted by offset, for finding the free gaps of a range. */
struct rec_list {
	struct pool_record_info *v;
	size_t n, cap;
	int error;
};

static int collect(const struct pool_record_info *info, void *userdata)
{
	struct rec_list *l = userdata;

	if (l->n == l->cap) {
		size_t cap = l->cap ? 2 * l->cap : 64;
		struct pool_record_info *v = backend_mem_realloc(l->v, cap * sizeof(*v));
		if (!v) {
			l->error = -ENOMEM;
			return 1;
		}
		l->v = v;
		l->cap = cap;
	}
	l->v[l->n++] = *info;
	return 0;
}

static int cmp_rec(const void *a, const void *b)
{
	const struct pool_record_info *x = a, *y = b;
	return x->offset < y->offset ? -1 : x->offset > y->offset;
}

static void rec_list_free(struct rec_list *l)
{
	free(l->v);
}

/* Reserves the free parts of [start, end) (aligned): holes between the records overlapping it. */
static int reserve_range(struct backend *b, struct pool *p, const struct rec_list *l,
			 uint64_t start, uint64_t end)
{
	uint64_t pos = start;
	bool overlaps_client = false;

	/* First record that could overlap: records are disjoint and sorted, a linear scan from the
	 * start is simple and bad ranges are few. */
	for (size_t i = 0; i < l->n && pos < end; i++) {
		const struct pool_record_info *r = &l->v[i];
		uint64_t rend = r->offset + r->length;
		if (rend <= pos)
			continue;
		if (r->offset >= end)
			break;
		if (r->offset > pos) {
			int k = 0;
			struct pool_alloc_req req = {.size = r->offset - pos, .align = POOL_ALIGN_4K};
			char name[sizeof(BACKEND_BADBLOCK_NAME_PREFIX) + 20];
			struct pool_extent ext;
			snprintf(name, sizeof(name), BACKEND_BADBLOCK_NAME_PREFIX "%" PRIx64, pos);
			req.name = name;
			k = pool_alloc_at(p, &req, pos, &ext);
			if (k < 0)
				return backend_err(k, "%s: reserving bad range [%llu, +%llu): %s",
						   b->path, (unsigned long long)pos,
						   (unsigned long long)req.size, pool_errormsg());
			b->bbstats.newly_reserved++;
		}
		if (!backend_name_is_reserved(r->name))
			overlaps_client = true;
		pos = rend;
	}
	if (pos < end) {
		struct pool_alloc_req req = {.size = end - pos, .align = POOL_ALIGN_4K};
		char name[sizeof(BACKEND_BADBLOCK_NAME_PREFIX) + 20];
		struct pool_extent ext;
		snprintf(name, sizeof(name), BACKEND_BADBLOCK_NAME_PREFIX "%" PRIx64, pos);
		req.name = name;
		int k = pool_alloc_at(p, &req, pos, &ext);
		if (k < 0)
			return backend_err(k, "%s: reserving bad range [%llu, +%llu): %s", b->path,
					   (unsigned long long)pos, (unsigned long long)req.size,
					   pool_errormsg());
		b->bbstats.newly_reserved++;
	}
	if (overlaps_client)
		b->bbstats.in_allocated++;
	return 0;
}

static int count_reserved(const struct pool_record_info *info, void *userdata)
{
	struct backend *b = userdata;

	if (strncmp(info->name, BACKEND_BADBLOCK_NAME_PREFIX,
		    strlen(BACKEND_BADBLOCK_NAME_PREFIX)) == 0) {
		b->bbstats.reserved_records++;
		b->bbstats.reserved_bytes += info->length;
	}
	return 0;
}

int badblock_reserve(struct backend *b, struct pool *p)
{
	_cleanup_(rec_list_free) struct rec_list l = {0};
	struct pool_stats st;
	int r;

	pool_get_stats(p, &st);
	uint64_t align = st.device_align;
	uint64_t data_end = st.data_offset + st.data_size;

	b->bbstats.newly_reserved = 0;
	b->bbstats.in_allocated = 0;
	b->bbstats.reserved_records = 0;
	b->bbstats.reserved_bytes = 0;

	for (size_t i = 0; i < b->nbadblocks; i++)
		if (b->badblocks[i].offset < st.data_offset)
			return backend_err(-EIO,
					   "%s: bad block at offset %llu (+%llu) is in the pool's "
					   "metadata (data starts at %llu); the pool cannot be used "
					   "safely (clear the error, e.g. ndctl clear-errors, or "
					   "restore it)",
					   b->path, (unsigned long long)b->badblocks[i].offset,
					   (unsigned long long)b->badblocks[i].length,
					   (unsigned long long)st.data_offset);

	if (b->nbadblocks) {
		r = pool_iterate(p, 0, collect, &l);
		if (l.error)
			return backend_err(l.error, "bad-block reservation: out of memory");
		if (r < 0)
			return backend_err(r, "%s: %s", b->path, pool_errormsg());
		if (l.n)
			qsort(l.v, l.n, sizeof(*l.v), cmp_rec);
	}
	uint64_t done = 0; /* end of the last reserved rounded range */
	for (size_t i = 0; i < b->nbadblocks; i++) {
		uint64_t start = b->badblocks[i].offset / align * align;
		uint64_t end = b->badblocks[i].offset + b->badblocks[i].length;
		/* Two bad ranges may round into one aligned unit: the list of records was taken
		 * before this loop, so never ask for the same unit twice. */
		start = MAX(start, done);
		/* Past the data area's end (the tail rounded off the pool) nothing is handed out. */
		if (start >= data_end)
			continue;
		end = MIN(data_end, (end + align - 1) / align * align);
		if (start >= end)
			continue;
		done = end;
		r = reserve_range(b, p, &l, start, end);
		if (r < 0)
			return r;
	}
	/* Counted from the pool, not from this run: earlier opens reserved most of them. */
	pool_iterate_names(p, BACKEND_BADBLOCK_NAME_PREFIX, count_reserved, b);
	return 0;
}
