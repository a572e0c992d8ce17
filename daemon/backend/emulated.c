/*
 * The emulated backend: a file standing in for a device-dax device. 2M and 1G pages need a file
 * on a hugetlbfs mount of that page size: a client's MAP_SHARED mapping of it then takes PMD/PUD
 * faults as it would on device-dax. 4K pages take a plain file on any file system (tmpfs for
 * speed). The file is created and sized when missing; an existing one is never resized or
 * truncated, because it may hold a pool.
 */
#include "backend-internal.h"
#include "fs-util.h"
#include "pool.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/magic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <unistd.h>

#define SZ_4K (UINT64_C(1) << 12)
#define SZ_2M (UINT64_C(1) << 21)
#define SZ_1G (UINT64_C(1) << 30)

static const char *page_name(uint64_t ps)
{
	return ps == SZ_4K ? "4K" : ps == SZ_2M ? "2M" : ps == SZ_1G ? "1G" : "?";
}

/* The mount's page size must be the requested one: a 2M pool on a 1G mount would have 1G
 * granularity for every mapping, a 4K pool on hugetlbfs cannot exist at all. */
static int check_fs(const char *path, int fd, uint64_t page_size, bool *ret_volatile)
{
	struct statfs sfs;

	if (fstatfs(fd, &sfs) < 0)
		return backend_err(negative_errno(), "%s: fstatfs: %m", path);
	bool huge = (unsigned long)sfs.f_type == HUGETLBFS_MAGIC;
	if (page_size == SZ_4K) {
		if (huge)
			return backend_err(-EINVAL,
					   "%s is on a hugetlbfs mount with %llu-byte pages, but 4K "
					   "pages were requested; put a 4K pool on tmpfs or any "
					   "other file system, or request the mount's page size",
					   path, (unsigned long long)sfs.f_bsize);
	} else {
		if (!huge)
			return backend_err(-EINVAL,
					   "%s is not on hugetlbfs, so it cannot give %s pages; mount "
					   "one (mount -t hugetlbfs -o pagesize=%s none DIR) and put "
					   "the file there",
					   path, page_name(page_size), page_name(page_size));
		if ((uint64_t)sfs.f_bsize != page_size)
			return backend_err(-EINVAL,
					   "%s is on a hugetlbfs mount with %llu-byte pages, but %s "
					   "pages were requested; use a mount with -o pagesize=%s",
					   path, (unsigned long long)sfs.f_bsize,
					   page_name(page_size), page_name(page_size));
	}
	*ret_volatile = statfs_is_memory_fs(&sfs);
	return 0;
}

/* Allocates every page of [0, size) now, so a client never takes SIGBUS on a missing page (on
 * hugetlbfs a fault finding no free huge page is a SIGBUS). Idempotent: existing pages and their
 * data stay as they are. */
static int reserve_pages(const char *path, int fd, uint64_t size, uint64_t page_size,
			 uint64_t have_bytes, bool huge)
{
	uint64_t avail = 0, total = 0;
	uint64_t need = size / page_size;
	uint64_t have = MIN(have_bytes / page_size, need);
	bool known = huge && hugetlb_available(page_size, &avail, &total) == 0;

	if (known && need - have > avail)
		return backend_err(-ENOSPC,
				   "%s: needs %llu free %s huge pages, %llu are free (of %llu); "
				   "reserve more: echo %llu > /sys/kernel/mm/hugepages/"
				   "hugepages-%llukB/nr_hugepages",
				   path, (unsigned long long)(need - have), page_name(page_size),
				   (unsigned long long)avail, (unsigned long long)total,
				   (unsigned long long)(total + (need - have) - avail),
				   (unsigned long long)(page_size / 1024));
	if (fallocate(fd, 0, 0, (off_t)size) == 0)
		return 0;
	int r = negative_errno();
	if (r == -ENOSPC) {
		if (huge)
			return backend_err(r,
					   "%s: could not allocate %llu %s huge pages (%llu free "
					   "before); reserve more in /sys/kernel/mm/hugepages/"
					   "hugepages-%llukB/nr_hugepages",
					   path, (unsigned long long)(need - have), page_name(page_size),
					   (unsigned long long)avail,
					   (unsigned long long)(page_size / 1024));
		return backend_err(r, "%s: no space for %llu bytes on its file system", path,
				   (unsigned long long)size);
	}
	if (r != -EOPNOTSUPP || huge)
		return backend_err(r, "%s: fallocate: %m", path);
	/* A file system without fallocate: size it sparse; a full fs then fails a client's
	 * write fault, which is the best such a file system can do. */
	if (ftruncate(fd, (off_t)size) < 0)
		return backend_err(negative_errno(), "%s: ftruncate: %m", path);
	return 0;
}

static int emulated_setup(struct backend *b, const struct backend_config *cfg, bool *created)
{
	const char *path = cfg->file_path;
	uint64_t ps = cfg->page_size;
	struct stat st;
	bool volatile_fs = false;
	int r;

	b->fd = open(path, O_RDWR | O_CLOEXEC);
	if (b->fd < 0 && errno == ENOENT && cfg->create) {
		if (cfg->size == 0)
			return backend_err(-EINVAL, "%s does not exist and no size was given to "
						    "create it", path);
		b->fd = open(path, O_RDWR | O_CLOEXEC | O_CREAT | O_EXCL, 0600);
		if (b->fd >= 0)
			*created = true;
		else if (errno == EEXIST) /* lost a race with another creator: open theirs */
			b->fd = open(path, O_RDWR | O_CLOEXEC);
	}
	if (b->fd < 0)
		return backend_err(negative_errno(), "%s: %m%s", path,
				   errno == ENOENT ? " (set create to make it)" : "");
	if (fstat(b->fd, &st) < 0)
		return backend_err(negative_errno(), "%s: fstat: %m", path);
	if (!S_ISREG(st.st_mode))
		return backend_err(-EINVAL, "%s is not a regular file (a device-dax device is the "
					    "devdax backend's)", path);
	/* Before anything is sized, formatted or carved: another daemon may be serving it. */
	r = backend_lock_pool(b);
	if (r < 0)
		return r;
	r = check_fs(path, b->fd, ps, &volatile_fs);
	if (r < 0)
		return r;

	uint64_t size = cfg->size;
	if (st.st_size == 0) {
		/* New, or left empty by a crash between create and size: nothing to lose. */
		if (size == 0)
			return backend_err(-EINVAL, "%s is empty and no size was given", path);
	} else if (size == 0) {
		size = (uint64_t)st.st_size;
		if (size % ps)
			return backend_err(-EINVAL, "%s is %llu bytes, not a multiple of the %s page",
					   path, (unsigned long long)size, page_name(ps));
	} else if ((uint64_t)st.st_size != size) {
		return backend_err(-EINVAL,
				   "%s is %llu bytes but the configured size is %llu; refusing to "
				   "resize an existing pool file (fix the size, or remove the file "
				   "to start a new pool)",
				   path, (unsigned long long)st.st_size, (unsigned long long)size);
	}
	bool huge = ps != SZ_4K;
	uint64_t reserve = size;
	if (cfg->isolation == BACKEND_ISOLATION_SLICE) {
		/* Slices live in files of their own: the pool file holds only metadata, and its
		 * data area is address space (never touched, so it costs no memory). */
		struct pool_format_params prm = {.device_align = ps, .table_capacity = cfg->records};
		r = pool_metadata_size(size, &prm, &reserve);
		if (r < 0)
			return backend_err(r, "%s: %s", path, pool_errormsg());
	}
	r = reserve_pages(path, b->fd, reserve, ps, (uint64_t)st.st_blocks * 512, huge);
	if (r < 0)
		return r;
	if (reserve < size && (uint64_t)st.st_size < size && ftruncate(b->fd, (off_t)size) < 0)
		return backend_err(negative_errno(), "%s: ftruncate: %m", path);
	b->huge = huge;
	if (reserve < size && huge) {
		/* libpmem2's shared mapping would reserve huge pages for the whole data area,
		 * which holds no data here: the pool is mapped by hand, without reservation. */
		void *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_NORESERVE,
			       b->fd, 0);

		if (p == MAP_FAILED)
			return backend_err(negative_errno(), "%s: mmap: %m", path);
		b->pool_map = p;
		b->pool_map_len = size;
	}

	b->size = size;
	b->alignment = ps;
	b->numa_node = -1;
	/* hugetlbfs and tmpfs refuse MAP_SYNC; on other file systems without DAX it is refused too,
	 * and the emulated backend never promises DAX semantics. */
	b->map_sync = false;
	b->persistence = volatile_fs ? BACKEND_PERSIST_NONE : BACKEND_PERSIST_MSYNC;
	return 0;
}

int emulated_open(struct backend *b, const struct backend_config *cfg)
{
	uint64_t ps = cfg->page_size;
	bool created = false;

	if (ps != SZ_4K && ps != SZ_2M && ps != SZ_1G)
		return backend_err(-EINVAL, "emulated backend: page size %llu is not 4K, 2M or 1G",
				   (unsigned long long)ps);
	if (cfg->size % ps)
		return backend_err(-EINVAL, "emulated backend: size %llu is not a multiple of the "
					    "%s page",
				   (unsigned long long)cfg->size, page_name(ps));
	b->path = backend_mem_strdup(cfg->file_path);
	const char *slash = strrchr(cfg->file_path, '/');
	b->devname = backend_mem_strdup(slash ? slash + 1 : cfg->file_path);
	if (!b->path || !b->devname)
		return backend_err(-ENOMEM, "emulated backend: out of memory");

	int r = emulated_setup(b, cfg, &created);
	/* Only a file this call created is removed: it holds nothing. */
	if (r < 0 && created)
		unlink(cfg->file_path);
	return r;
}

int emulated_deep_flush(struct backend *b, uint64_t offset, uint64_t len)
{
	/* The whole file: fdatasync has no range, and sync_file_range does not flush the disk's
	 * cache. On hugetlbfs and tmpfs it is a no-op, truthfully: nothing there is durable. With
	 * a file per slice the range is in one of the slice files: syncfs covers them all. */
	if (b->slice_ops && b->slice_ops->sync)
		return b->slice_ops->sync(b);
	if (fdatasync(b->fd) < 0)
		return backend_err(negative_errno(), "%s: fdatasync: %m", b->path);
	return 0;
}
