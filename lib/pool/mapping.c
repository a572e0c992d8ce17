/*
 * The mapping of a pool target: a pool file or a device-dax character device.
 *
 * libpmem2 maps both, except device-dax over RAM (soft-reserved memory, a dynamic dax region, a
 * CXL RAM region): libpmem2 asks libndctl for the device's namespace, and libndctl dereferences
 * NULL on a device that no NVDIMM namespace holds. Such a device is mapped here with mmap(), its
 * size and alignment read from its sysfs node; nothing on it survives power loss, so flushes
 * only keep the order of stores, as on a file system without a backing store.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <libpmem2.h>
#include <limits.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "error.h"
#include "fs-util.h"
#include "macro.h"
#include "pool-internal.h"
#include "sysfs-util.h"

/* libpmem2 returns -errno or its own PMEM2_E_* codes (far below -4095): keep errnos, fold the rest. */
static int pmem2_to_errno(int r)
{
	return r >= -4095 ? r : -EINVAL;
}

/* A file with no backing store (fs-util.h), or RAM: each store is durable once made (as durable
 * as it will ever be), so flushing is nothing. What remains is the order of the stores, which
 * the commit protocol relies on: the compiler must not move one across a flush or drain. */
static void memory_fs_flush(const void *addr, size_t len)
{
	(void)addr;
	(void)len;
	atomic_signal_fence(memory_order_seq_cst);
}

static void memory_fs_drain(void)
{
	atomic_signal_fence(memory_order_seq_cst);
}

const struct pool_persist_ops pool_memory_fs_ops = {
	.persist = memory_fs_flush,
	.flush = memory_fs_flush,
	.drain = memory_fs_drain,
};

/* One unsigned decimal number, the whole content of a sysfs attribute. */
static int read_u64(const char *path, uint64_t *ret)
{
	char buf[32], *end;
	unsigned long long v;
	ssize_t n;
	int fd, r = 0;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	n = read(fd, buf, sizeof(buf) - 1);
	if (n < 0)
		r = -errno;
	close(fd);
	if (r < 0)
		return r;
	buf[n] = '\0';
	errno = 0;
	v = strtoull(buf, &end, 10);
	if (errno || end == buf || (*end && *end != '\n') || buf[0] == '-')
		return -EBADMSG;
	*ret = v;
	return 0;
}

/*
 * Is st a device-dax device over RAM? 1 with its size and alignment, 0 for anything else (a
 * file, an NVDIMM namespace's device), -errno if its sysfs node cannot be read.
 */
static int ram_devdax(const struct stat *st, uint64_t *ret_size, uint64_t *ret_align)
{
	char base[64], path[PATH_MAX];
	int r;

	if (!S_ISCHR(st->st_mode) || !chardev_is_devdax(st->st_rdev, NULL, 0))
		return 0; /* not device-dax: libpmem2 says what it is */
	if (devdax_is_nvdimm(st->st_rdev))
		return 0;
	snprintf(base, sizeof(base), "/sys/dev/char/%u:%u", major(st->st_rdev), minor(st->st_rdev));
	snprintf(path, sizeof(path), "%s/size", base);
	r = read_u64(path, ret_size);
	if (r < 0)
		return pool_err(r, "cannot read the device's size (%s): %s", path, strerror(-r));
	/* Per-device alignment since Linux 5.10; before, the region's. */
	snprintf(path, sizeof(path), "%s/align", base);
	r = read_u64(path, ret_align);
	if (r == -ENOENT) {
		snprintf(path, sizeof(path), "%s/../dax_region/align", base);
		r = read_u64(path, ret_align);
	}
	if (r < 0)
		return pool_err(r, "cannot read the device's alignment (%s): %s", path, strerror(-r));
	if (*ret_align != POOL_ALIGN_4K && *ret_align != POOL_ALIGN_2M && *ret_align != POOL_ALIGN_1G)
		return pool_err(-EINVAL, "device alignment %" PRIu64 " is not 4K, 2M or 1G", *ret_align);
	if (*ret_size == 0 || *ret_size % *ret_align)
		return pool_err(-EINVAL, "device size %" PRIu64 " is not a multiple of its alignment",
				*ret_size);
	if (*ret_size > SIZE_MAX)
		return pool_err(-EFBIG, "device size %" PRIu64 " cannot be mapped", *ret_size);
	return 1;
}

/*
 * The pool device of a carved dynamic region holds the metadata of a pool that spans the region
 * from the device's start on (the daemon's per-slice sub-devices are carved in the rest). Such a
 * pool is mapped as the daemon maps it: the device, then address space that is never accessible
 * to the pool's end (the pool library never touches its data area). Returns the pool's size, or
 * the device's when its superblock describes no such pool.
 */
static uint64_t region_pool_span(const uint8_t *dev, uint64_t dev_size, const struct stat *st)
{
	struct pool_geometry g;
	const char *why = NULL;
	char path[PATH_MAX];
	uint64_t region_size;
	int bad;

	if (pool_superblocks((uint8_t *)dev, UINT64_MAX, &g, &bad, &why) < 0)
		return dev_size;
	if (g.pool_size <= dev_size || g.data_off > dev_size || g.pool_size > SIZE_MAX / 2)
		return dev_size;
	snprintf(path, sizeof(path), "/sys/dev/char/%u:%u/../dax_region/size", major(st->st_rdev),
		 minor(st->st_rdev));
	if (read_u64(path, &region_size) < 0 || g.pool_size > region_size)
		return dev_size;
	return g.pool_size;
}

static int map_ram(int fd, const struct stat *st, uint64_t size, uint64_t align,
		   struct pool_mapping *m)
{
	uint64_t span, total;
	uint8_t *p, *res;
	uintptr_t start;

	p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (p == MAP_FAILED)
		return pool_err(-errno, "mapping the device: %s", strerror(errno));
	span = region_pool_span(p, size, st);
	if (span > size) {
		/* Reserve span + align to place the device at an aligned start, as daxpoold does. */
		munmap(p, size);
		total = span + align;
		res = mmap(NULL, total, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
		if (res == MAP_FAILED)
			return pool_err(-errno, "reserving the region pool's address space: %s",
					strerror(errno));
		start = ((uintptr_t)res + align - 1) & ~(uintptr_t)(align - 1);
		if (start > (uintptr_t)res)
			munmap(res, start - (uintptr_t)res);
		if ((uintptr_t)res + total > start + span)
			munmap((uint8_t *)start + span, (uintptr_t)res + total - (start + span));
		p = mmap((void *)start, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_FIXED, fd, 0);
		if (p == MAP_FAILED) {
			int r = pool_err(-errno, "mapping the device: %s", strerror(errno));

			munmap((void *)start, span);
			return r;
		}
	}
	*m = (struct pool_mapping){
		.addr = p, .size = span, .accessible = size, .align = align,
		.ops = pool_memory_fs_ops, .unmap = true,
	};
	return 0;
}

static int map_pmem2(int fd, struct pool_mapping *m)
{
	struct pmem2_config *cfg = NULL;
	struct pmem2_source *src = NULL;
	struct pmem2_map *map = NULL;
	size_t align = 0;
	int r;

	r = pmem2_config_new(&cfg);
	if (r)
		return pool_err(pmem2_to_errno(r), "pmem2_config_new: %s", pmem2_errormsg());
	r = pmem2_source_from_fd(&src, fd);
	if (r) {
		r = pool_err(pmem2_to_errno(r), "libpmem2 cannot use the target: %s", pmem2_errormsg());
		goto out;
	}
	r = pmem2_source_alignment(src, &align);
	if (r) {
		r = pool_err(pmem2_to_errno(r), "libpmem2 finds no alignment: %s", pmem2_errormsg());
		goto out;
	}
	/* Page granularity accepts every mapping; libpmem2 then gives msync-based persist for
	 * page-cache files and cache flushes for DAX, so the same code is correct on both. */
	r = pmem2_config_set_required_store_granularity(cfg, PMEM2_GRANULARITY_PAGE);
	if (r) {
		r = pool_err(pmem2_to_errno(r), "pmem2 granularity: %s", pmem2_errormsg());
		goto out;
	}
	r = pmem2_map_new(&map, cfg, src);
	if (r) {
		r = pool_err(pmem2_to_errno(r), "libpmem2 cannot map the target: %s", pmem2_errormsg());
		goto out;
	}
	*m = (struct pool_mapping){
		.map = map,
		.addr = pmem2_map_get_address(map),
		.size = pmem2_map_get_size(map),
		.accessible = pmem2_map_get_size(map),
		.align = align,
	};
	r = pool_map_needs_no_flush(fd, map);
	if (r < 0) {
		pool_mapping_close(m);
		goto out;
	}
	if (r) {
		/* On tmpfs and hugetlbfs libpmem2's page granularity is an msync per flush (4-5 per
		 * pool operation) with nothing to write back. */
		m->ops = pool_memory_fs_ops;
	} else {
		m->ops.persist = pmem2_get_persist_fn(map);
		m->ops.flush = pmem2_get_flush_fn(map);
		m->ops.drain = pmem2_get_drain_fn(map);
	}
	r = 0;
out:
	pmem2_source_delete(&src);
	pmem2_config_delete(&cfg);
	return r;
}

int pool_mapping_open(int fd, struct pool_mapping *ret)
{
	uint64_t size = 0, align = 0;
	struct stat st;
	int r;

	if (fstat(fd, &st) < 0)
		return pool_err(-errno, "fstat: %s", strerror(errno));
	r = ram_devdax(&st, &size, &align);
	if (r < 0)
		return r;
	if (r > 0)
		return map_ram(fd, &st, size, align, ret);
	return map_pmem2(fd, ret);
}

void pool_mapping_close(struct pool_mapping *m)
{
	if (m->map)
		pmem2_map_delete(&m->map);
	else if (m->unmap && m->addr)
		munmap(m->addr, m->size);
	*m = (struct pool_mapping){0};
}

int pool_map_needs_no_flush(int fd, struct pmem2_map *map)
{
	int m = fd_on_memory_fs(fd);

	if (m < 0)
		return pool_err(m, "fstatfs: %s", strerror(-m));
	return m && pmem2_map_get_store_granularity(map) == PMEM2_GRANULARITY_PAGE;
}
