/* The pool API's record operations: alloc/free/quarantine/release, lookup, iterate, stats
 * (create.c formats a pool, open.c opens one). */
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

/* ---- operations -------------------------------------------------------------------------- */

static int read_record(struct pool *p, uint64_t id, struct pool_record *ret)
{
	const char *why = NULL;
	int r;

	if (id >= p->geo.table_capacity)
		return pool_err(-ENOENT, "record %llu does not exist", (unsigned long long)id);
	r = rec_decode(pool_rec_ptr(p, id), ret, &why);
	if (r == 1)
		return pool_err(-ENOENT, "record %llu is not allocated", (unsigned long long)id);
	if (r < 0)
		return pool_err(-EUCLEAN, "record %llu: %s (damaged since open)",
				(unsigned long long)id, why);
	return 0;
}

static void fill_info(uint64_t id, const struct pool_record *r, struct pool_record_info *info)
{
	memset(info, 0, sizeof(*info));
	info->id = id;
	info->offset = r->offset;
	info->length = r->length;
	info->align = UINT64_C(1) << r->align_shift;
	info->uid = r->uid;
	info->gid = r->gid;
	info->mode = r->mode;
	info->flags = r->flags & ~POOL_REC_USED;
	memcpy(info->name, r->name, r->name_len + 1);
}

/* pool_alloc and pool_alloc_at: fixed = false lets the placement policy choose the offset. */
static int alloc_common(struct pool *p, const struct pool_alloc_req *req, bool fixed,
			uint64_t fixed_off, struct pool_extent *ret_extent)
{
	struct pool_record rec = {0};
	struct placement pl;
	struct log_update u;
	size_t name_len = 0;
	int r;

	if (!p || !req)
		return pool_err(-EINVAL, "pool_alloc: NULL argument");
	if (req->size == 0)
		return pool_err(-EINVAL, "size 0");
	if (req->align != POOL_ALIGN_4K && req->align != POOL_ALIGN_2M && req->align != POOL_ALIGN_1G)
		return pool_err(-EINVAL, "alignment %llu is not 4K, 2M or 1G",
				(unsigned long long)req->align);
	if (req->flags & ~POOL_ALLOC_ANONYMOUS)
		return pool_err(-EINVAL, "unknown flags 0x%x", req->flags);
	if (req->name) {
		if (req->flags & POOL_ALLOC_ANONYMOUS)
			return pool_err(-EINVAL, "an anonymous allocation has no name");
		name_len = strnlen(req->name, POOL_NAME_MAX + 1);
		if (name_len == 0 || name_len > POOL_NAME_MAX)
			return pool_err(-EINVAL, "name must be 1..%d bytes", POOL_NAME_MAX);
		if (index_name_find(&p->idx, req->name))
			return pool_err(-EEXIST, "name '%s' is in use", req->name);
	}
	uint64_t align = MAX(req->align, p->geo.device_align);
	if (req->size > p->geo.data_size)
		return pool_err(-ENOSPC, "%llu bytes is more than the pool holds",
				(unsigned long long)req->size);
	uint64_t len = align_up(req->size, align);
	if (p->nfree_slots == 0)
		return pool_err(-ENOSPC, "record table full (%llu records)",
				(unsigned long long)p->geo.table_capacity);
	if (fixed) {
		if (fixed_off % align)
			return pool_err(-EINVAL, "offset %llu is not aligned to %llu",
					(unsigned long long)fixed_off, (unsigned long long)align);
		r = index_find_at(&p->idx, fixed_off, len, &pl);
		if (r < 0)
			return pool_err(-EBUSY, "[%llu, +%llu) is not wholly free",
					(unsigned long long)fixed_off, (unsigned long long)len);
	} else {
		r = index_find(&p->idx, len, align, &pl);
		if (r < 0)
			return pool_err(-ENOSPC,
					"pool_alloc: no free extent of %llu bytes aligned to %llu",
					(unsigned long long)len, (unsigned long long)align);
	}

	/* Every DRAM allocation happens before the persistent change, so ENOMEM changes nothing. */
	if (fext_cache_ready(&p->spare) < 0)
		return pool_err(-ENOMEM, "out of memory");
	uint64_t slot = p->free_slots[p->nfree_slots - 1];
	_cleanup_(freep) struct name_node *nn = NULL;
	if (req->name) {
		nn = name_node_new(req->name, slot);
		if (!nn)
			return pool_err(-ENOMEM, "out of memory");
	}

	rec.offset = pl.offset;
	rec.length = len;
	rec.generation = p->next_gen;
	rec.uid = req->uid;
	rec.gid = req->gid;
	rec.mode = req->mode;
	rec.flags = POOL_REC_USED | ((req->flags & POOL_ALLOC_ANONYMOUS) ? POOL_REC_ANONYMOUS : 0);
	rec.align_shift = (uint8_t)__builtin_ctzll(align);
	rec.name_len = (uint8_t)name_len;
	memcpy(rec.name, req->name ? req->name : "", name_len);
	u.slot = slot;
	rec_encode(u.image, &rec);
	log_commit(p, &u, 1);

	p->nfree_slots--;
	index_take(&p->idx, &pl, len, &p->spare);
	if (nn)
		index_name_insert(&p->idx, TAKE_PTR(nn));
	p->records_used++;
	p->allocated_bytes += len;
	if (rec.flags & POOL_REC_ANONYMOUS)
		p->records_anon++;
	*ret_extent = (struct pool_extent){.offset = pl.offset, .length = len, .id = slot};
	return 0;
}

int pool_alloc_length(struct pool *p, uint64_t size, uint64_t align, uint64_t *ret_length)
{
	if (size > p->geo.data_size)
		return pool_err(-ENOSPC, "%llu bytes is more than the pool holds",
				(unsigned long long)size);
	*ret_length = align_up(size, MAX(align, p->geo.device_align));
	return 0;
}

bool pool_range_is_free(struct pool *p, uint64_t offset, uint64_t length)
{
	struct placement pl;

	return length > 0 && index_find_at(&p->idx, offset, length, &pl) == 0;
}

int pool_alloc(struct pool *p, const struct pool_alloc_req *req, struct pool_extent *ret_extent)
{
	return alloc_common(p, req, false, 0, ret_extent);
}

int pool_alloc_at(struct pool *p, const struct pool_alloc_req *req, uint64_t offset,
		  struct pool_extent *ret_extent)
{
	return alloc_common(p, req, true, offset, ret_extent);
}

int pool_get_uuid(struct pool *p, uint8_t ret_uuid[16])
{
	if (!p || !ret_uuid)
		return pool_err(-EINVAL, "pool_get_uuid: NULL argument");
	memcpy(ret_uuid, p->geo.uuid, 16);
	return 0;
}

/* Frees a live record (shared by pool_free and pool_release). */
static int do_free(struct pool *p, uint64_t id, const struct pool_record *rec)
{
	struct log_update u = {.slot = id};

	if (fext_cache_ready(&p->spare) < 0)
		return pool_err(-ENOMEM, "out of memory");
	log_commit(p, &u, 1); /* an all-zero image empties the slot */

	index_give(&p->idx, rec->offset, rec->length, &p->spare);
	if (rec->name_len) {
		struct name_node *n = index_name_find(&p->idx, rec->name);
		if (n) {
			index_name_remove(&p->idx, n);
			pool_mem_free(n);
		}
	}
	p->free_slots[p->nfree_slots++] = (uint32_t)id;
	p->records_used--;
	p->allocated_bytes -= rec->length;
	if (rec->flags & POOL_REC_ANONYMOUS)
		p->records_anon--;
	if (rec->flags & POOL_REC_QUARANTINED)
		p->records_quar--;
	return 0;
}

int pool_free(struct pool *p, uint64_t id)
{
	struct pool_record rec;
	int r = read_record(p, id, &rec);
	if (r < 0)
		return r;
	if (rec.flags & POOL_REC_QUARANTINED)
		return pool_err(-EBUSY, "record %llu is quarantined: use pool_release",
				(unsigned long long)id);
	return do_free(p, id, &rec);
}

int pool_release(struct pool *p, uint64_t id)
{
	struct pool_record rec;
	int r = read_record(p, id, &rec);
	if (r < 0)
		return r;
	if (!(rec.flags & POOL_REC_QUARANTINED))
		return pool_err(-EINVAL, "record %llu is not quarantined", (unsigned long long)id);
	return do_free(p, id, &rec);
}

int pool_quarantine(struct pool *p, uint64_t id)
{
	struct pool_record rec;
	struct log_update u = {.slot = id};
	int r = read_record(p, id, &rec);
	if (r < 0)
		return r;
	if (rec.flags & POOL_REC_QUARANTINED)
		return pool_err(-EALREADY, "record %llu is already quarantined", (unsigned long long)id);

	struct pool_record q = rec;
	q.flags |= POOL_REC_QUARANTINED;
	q.name_len = 0;
	memset(q.name, 0, sizeof(q.name));
	q.generation = p->next_gen;
	rec_encode(u.image, &q);
	log_commit(p, &u, 1);

	if (rec.name_len) {
		struct name_node *n = index_name_find(&p->idx, rec.name);
		if (n) {
			index_name_remove(&p->idx, n);
			pool_mem_free(n);
		}
	}
	p->records_quar++;
	return 0;
}

int pool_lookup(struct pool *p, const char *name, struct pool_record_info *ret_info)
{
	struct pool_record rec;
	int r;

	if (!name || !*name || strnlen(name, POOL_NAME_MAX + 1) > POOL_NAME_MAX)
		return pool_err(-EINVAL, "bad name");
	struct name_node *n = index_name_find(&p->idx, name);
	if (!n)
		return pool_err(-ENOENT, "no record named '%s'", name);
	r = read_record(p, n->slot, &rec);
	if (r < 0)
		return r;
	fill_info(n->slot, &rec, ret_info);
	return 0;
}

int pool_get(struct pool *p, uint64_t id, struct pool_record_info *ret_info)
{
	struct pool_record rec;
	int r = read_record(p, id, &rec);
	if (r < 0)
		return r;
	fill_info(id, &rec, ret_info);
	return 0;
}

int pool_iterate(struct pool *p, uint32_t required_flags,
		 int (*fn)(const struct pool_record_info *info, void *userdata), void *userdata)
{
	struct pool_record_info info;

	for (uint64_t s = 0; s < p->geo.table_capacity; s++) {
		struct pool_record rec;
		const char *why;
		int r = rec_decode(pool_rec_ptr(p, s), &rec, &why);
		if (r == 1)
			continue;
		if (r < 0)
			return pool_err(-EUCLEAN, "record %llu: %s (damaged since open)",
					(unsigned long long)s, why);
		if ((rec.flags & required_flags) != required_flags)
			continue;
		fill_info(s, &rec, &info);
		r = fn(&info, userdata);
		if (r)
			return r;
	}
	return 0;
}

int pool_iterate_names(struct pool *p, const char *prefix,
		       int (*fn)(const struct pool_record_info *info, void *userdata), void *userdata)
{
	struct pool_record_info info;
	size_t plen = strlen(prefix);

	for (struct name_node *n = index_name_first_from(&p->idx, prefix);
	     n && strncmp(n->name, prefix, plen) == 0; n = index_name_next(n)) {
		struct pool_record rec;
		const char *why;
		int r = rec_decode(pool_rec_ptr(p, n->slot), &rec, &why);
		if (r != 0)
			return pool_err(-EUCLEAN, "record %llu: %s (damaged since open)",
					(unsigned long long)n->slot, r < 0 ? why : "empty");
		fill_info(n->slot, &rec, &info);
		r = fn(&info, userdata);
		if (r)
			return r;
	}
	return 0;
}

void pool_get_stats(struct pool *p, struct pool_stats *s)
{
	memset(s, 0, sizeof(*s));
	s->pool_size = p->geo.pool_size;
	s->data_offset = p->geo.data_off;
	s->data_size = p->geo.data_size;
	s->device_align = p->geo.device_align;
	s->table_capacity = p->geo.table_capacity;
	s->records_used = p->records_used;
	s->records_anonymous = p->records_anon;
	s->records_quarantined = p->records_quar;
	s->allocated_bytes = p->allocated_bytes;
	for (int c = 0; c < POOL_NCLASS; c++) {
		uint64_t csz = class_size(c) < p->geo.device_align ? p->geo.device_align : class_size(c);
		int cc = class_of(csz);
		s->free_bytes[c] = p->idx.free_units[cc] * class_size(cc);
		s->largest_free[c] = index_largest(&p->idx, cc);
	}
	s->free_extents = p->idx.nfree_ext;
	s->fragmentation = s->free_bytes[0] ? 1.0 - (double)s->largest_free[0] / s->free_bytes[0] : 0;
	s->dram_index_bytes = sizeof(*p) + p->idx.nfree_ext * sizeof(struct fext) +
			      p->idx.name_bytes + p->geo.table_capacity * sizeof(uint32_t);
}
