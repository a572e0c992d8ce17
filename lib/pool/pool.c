/* The pool API: format, open with recovery, alloc/free/quarantine, lookup, iterate, stats. */
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

int pool_metadata_size(uint64_t size, const struct pool_format_params *params, uint64_t *ret)
{
	struct pool_format_params prm = params ? *params : (struct pool_format_params){0};
	struct pool_geometry g;
	int r;

	if (prm.device_align == 0)
		prm.device_align = POOL_ALIGN_4K;
	r = geometry_compute(size, &prm, &g);
	if (r < 0)
		return pool_err(r, "a pool of %llu bytes cannot be laid out", (unsigned long long)size);
	*ret = g.data_off;
	return 0;
}

/* Device alignment to a class: device-dax offers 4K, 2M, 1G; anything else is refused. */
static int align_class(uint64_t a, uint64_t *ret)
{
	if (a <= POOL_ALIGN_4K)
		*ret = POOL_ALIGN_4K;
	else if (a == POOL_ALIGN_2M || a == POOL_ALIGN_1G)
		*ret = a;
	else
		return pool_err(-EINVAL, "device alignment %llu is not 4K, 2M or 1G",
				(unsigned long long)a);
	return 0;
}

/* ---- format ------------------------------------------------------------------------------ */

#define SCRUB_CHUNK (UINT64_C(2) << 20)

static bool all_zero(const uint8_t *p, size_t len)
{
	return len == 0 || (p[0] == 0 && memcmp(p, p + 1, len - 1) == 0);
}

/* The data area reads as zeroes afterwards. Reading is cheaper than writing on persistent memory
 * (and spares its endurance): a chunk that is zero already is left alone. */
static void scrub(uint8_t *base, const struct pool_geometry *g, const struct pool_persist_ops *ops)
{
	for (uint64_t off = 0; off < g->data_size; off += SCRUB_CHUNK) {
		uint8_t *p = base + g->data_off + off;
		size_t len = (size_t)MIN(SCRUB_CHUNK, g->data_size - off);

		if (all_zero(p, len))
			continue;
		memset(p, 0, len);
		ops->flush(p, len);
	}
	ops->drain();
}

/*
 * A superblock copy counts only with its magic, an aligned 8-byte word, which a power failure
 * cannot tear. So a copy is made invalid by clearing its magic first and written with its magic
 * last: after a crash each copy is whole (old or new) or has no magic, never torn with a magic —
 * which open would have to call damage, not "no pool".
 */
_Static_assert(SB_MAGIC == 0 && sizeof(POOL_MAGIC) == 8, "the magic is the first 8-byte word");

static void store_magic(uint8_t *sb, const void *magic)
{
	uint64_t v;
	memcpy(&v, magic, 8);
	__atomic_store_n((uint64_t *)(void *)sb, v, __ATOMIC_RELEASE);
}

/* Both superblock copies invalid and durable: the range holds no pool from here on. */
static void invalidate_superblocks(uint8_t *base, const struct pool_persist_ops *ops)
{
	static const uint8_t none[8];

	store_magic(base + POOL_SB_A_OFF, none);
	store_magic(base + POOL_SB_B_OFF, none);
	ops->flush(base + POOL_SB_A_OFF, 8);
	ops->flush(base + POOL_SB_B_OFF, 8);
	ops->drain();
	memset(base + POOL_SB_A_OFF, 0, POOL_SB_BYTES);
	memset(base + POOL_SB_B_OFF, 0, POOL_SB_BYTES);
	ops->flush(base + POOL_SB_A_OFF, POOL_SB_BYTES);
	ops->flush(base + POOL_SB_B_OFF, POOL_SB_BYTES);
	ops->drain();
}

/* One copy (at off) of an encoded superblock: everything but the magic, then the magic. */
static void write_superblock(uint8_t *base, uint64_t off, const uint8_t sb[POOL_SB_BYTES],
			     const struct pool_persist_ops *ops)
{
	memcpy(base + off + 8, sb + 8, POOL_SB_BYTES - 8);
	ops->persist(base + off + 8, POOL_SB_BYTES - 8);
	store_magic(base + off, sb);
	ops->persist(base + off, 8);
}

int pool_format_range(void *addr, uint64_t size, const struct pool_persist_ops *ops,
		      const struct pool_format_params *params)
{
	struct pool_geometry g;
	uint8_t sb[POOL_SB_BYTES];
	uint8_t *base = addr;
	int r;

	if (!addr || !ops || !ops->persist || !ops->flush || !ops->drain)
		return pool_err(-EINVAL, "pool_format: missing range or persistence functions");
	/* The commit mark is an aligned 8-byte store: the range must be 8-byte aligned. */
	if ((uintptr_t)addr % 8 != 0)
		return pool_err(-EINVAL, "pool_format: range not 8-byte aligned");
	r = geometry_compute(size, params, &g);
	if (r < 0)
		return pool_err(r, "%llu bytes too small for the table, or bad parameters",
				(unsigned long long)size);
	if (getrandom(g.uuid, sizeof(g.uuid), 0) != sizeof(g.uuid))
		return pool_err(negative_errno(), "getrandom: %m");

	/* Superblocks first become invalid, so a crash in the middle leaves "no pool", never a
	 * superblock describing a half-zeroed table. The new ones are written last, B then A. */
	invalidate_superblocks(base, ops);
	/* No byte that was here may ever be granted (pool_format_fd may have deallocated it). */
	if (!(params && params->data_clean))
		scrub(base, &g, ops);
	memset(base + g.log_off, 0, g.log_size);
	memset(base + g.table_off, 0, g.table_capacity * POOL_RECORD_SIZE);
	ops->flush(base + g.log_off, g.log_size);
	ops->flush(base + g.table_off, g.table_capacity * POOL_RECORD_SIZE);
	ops->drain();
	sb_encode(sb, &g);
	write_superblock(base, POOL_SB_B_OFF, sb, ops);
	write_superblock(base, POOL_SB_A_OFF, sb, ops);
	return 0;
}

/* A regular file's data area: its blocks are deallocated, so they read as zeroes, which costs
 * next to nothing where writing zeroes would write (and on tmpfs or hugetlbfs, allocate) the
 * whole file; a file that was fully allocated (a daemon reserves its pool's memory) is allocated
 * again. The superblocks are made invalid first: a crash in between leaves no pool, not an old
 * pool without its data. Where the file system cannot, or fd is a device, pool_format_range
 * overwrites what is not zero. */
static int deallocate_data(int fd, struct pool_mapping *m, struct pool_format_params *prm)
{
	struct pool_geometry g;
	struct stat st;
	uint8_t *base = m->addr;
	bool allocated;

	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode))
		return 0;
	if (geometry_compute(m->size, prm, &g) < 0 || g.data_size == 0)
		return 0; /* pool_format_range says why */
	allocated = (uint64_t)st.st_blocks * 512 >= (uint64_t)st.st_size;
	invalidate_superblocks(base, &m->ops);
	if (fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, (off_t)g.data_off,
		      (off_t)g.data_size) < 0)
		return 0;
	/* A file system may deallocate only whole blocks (hugetlbfs before Linux 6.3: whole huge
	 * pages) and leave the partial ones at either end as they were. */
	uint64_t blk = st.st_blksize > 0 ? (uint64_t)st.st_blksize : 4096;
	uint64_t end = g.data_off + g.data_size;
	uint64_t head = MIN(end, (g.data_off + blk - 1) / blk * blk);
	uint64_t tail = MAX(head, end / blk * blk);

	memset(base + g.data_off, 0, head - g.data_off);
	m->ops.persist(base + g.data_off, head - g.data_off);
	memset(base + tail, 0, end - tail);
	m->ops.persist(base + tail, end - tail);
	prm->data_clean = true;
	if (allocated && fallocate(fd, FALLOC_FL_KEEP_SIZE, (off_t)g.data_off, (off_t)g.data_size) < 0)
		return pool_err(-errno, "cannot allocate the pool's data area again: %s",
				strerror(errno));
	return 0;
}

int pool_format_fd(int fd, const struct pool_format_params *params)
{
	struct pool_mapping m;
	struct pool_format_params prm = params ? *params : (struct pool_format_params){0};
	int r;

	r = pool_mapping_open(fd, &m);
	if (r < 0)
		return r;
	/* A caller may raise the alignment above the source's: libpmem2 reports the base page size
	 * for a hugetlbfs file, which can only be mapped at huge-page offsets. */
	uint64_t want = prm.device_align;
	r = align_class(m.align, &prm.device_align);
	if (r == 0 && want != 0) {
		if (want != POOL_ALIGN_4K && want != POOL_ALIGN_2M && want != POOL_ALIGN_1G)
			r = pool_err(-EINVAL, "device_align %llu is not 4K, 2M or 1G",
				     (unsigned long long)want);
		else
			prm.device_align = MAX(prm.device_align, want);
	}
	if (r == 0 && m.size > m.accessible) {
		/* A carved region's pool device: the new pool spans the region as the old one did. */
		uint64_t meta;

		r = pool_metadata_size(m.size, &prm, &meta);
		if (r == 0 && meta > m.accessible)
			r = pool_err(-ENOSPC, "the device (%llu bytes) cannot hold the metadata of its "
					      "region's pool (%llu bytes)",
				     (unsigned long long)m.accessible, (unsigned long long)meta);
		/* Its data area is the rest of the region, not mapped here: slices there are
		 * sub-devices, each zeroed when daxpoold carves it. */
		prm.data_clean = true;
	}
	if (r == 0 && m.size == m.accessible)
		r = deallocate_data(fd, &m, &prm);
	if (r == 0)
		r = pool_format_range(m.addr, m.size, &m.ops, &prm);
	pool_mapping_close(&m);
	return r;
}

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
