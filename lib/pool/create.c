/* Formatting a pool: the data area scrubbed, superblocks invalidated first and written last. */
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
