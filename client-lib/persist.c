/*
 * daxpool_persist: make stores to a mapped slice persistent, with the persist function that fits
 * the backend.
 *
 * Route chosen: the library maps the slice itself (map.c: the alignment trick, MAP_SYNC).
 * pmem2_map_new() was the other candidate, but it aligns a mapping only to what
 * pmem2_source_alignment() knows: the device's alignment on device-dax, the 4K page for any
 * regular file. A 2M slice of an emulated pool (hugetlbfs, or a 4K file) would get no
 * 2M-aligned address, and hugetlbfs refuses a misaligned MAP_FIXED outright.
 *
 * device-dax (a character device): the finished mapping is handed to libpmem2 with
 * pmem2_map_from_existing(..., PMEM2_GRANULARITY_CACHE_LINE) and pmem2_get_persist_fn() gives
 * its CPU-cache persist function (cache-line flush with the best instruction the CPU has, then
 * a fence) — what pmem2_map_new() picks for device-dax. On an eADR platform BYTE would let it
 * skip the flush; CACHE_LINE stays correct there. pmem2_map_delete() of such a map does not
 * unmap it (libpmem2 leaves user-provided mappings to their owner).
 *
 * Emulated backend (a regular file on hugetlbfs or another file system): persistence means the
 * kernel writing pages back, msync(MS_SYNC) of the page-aligned range — what libpmem2's PAGE
 * granularity persist function does. We call msync ourselves: libpmem2 1.12's page persist
 * function walks its mapping registry by reserved_length, which is 0 for a map from
 * pmem2_map_from_existing(), and then spins forever (found by this library's tests); and its
 * persist functions return void, so an msync failure (EIO) would be lost — here it is reported.
 */
#include "client.h"

#include <errno.h>
#include <libpmem2.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

/* pmem2 returns negative errnos or its own PMEM2_E_* codes (far below -4095). */
static int pmem2_failure(int r, const char *what)
{
	const char *msg = pmem2_errormsg();

	return dp_error(r < 0 && r >= -4095 ? r : -EIO, "%s: %s", what, msg && *msg ? msg : "failed");
}

int dp_persist_attach(struct daxpool_slice *s)
{
	struct pmem2_source *src = NULL;
	struct stat st;
	int r;

	/* libpmem2 keeps its source type private; a device-dax fd is the only character device
	 * the daemon passes. */
	if (fstat(s->fd, &st) < 0)
		return dp_error(negative_errno(), "fstat of the slice fd: %s", strerror(errno));
	if (!S_ISCHR(st.st_mode))
		return 0; /* emulated: msync, see above */
	r = pmem2_source_from_fd(&src, s->fd);
	if (r < 0)
		return pmem2_failure(r, "libpmem2 cannot describe the slice fd");
	r = pmem2_map_from_existing(&s->pmap, src, s->map_addr, s->map_len,
				    PMEM2_GRANULARITY_CACHE_LINE);
	pmem2_source_delete(&src);
	if (r < 0)
		return pmem2_failure(r, "libpmem2 cannot adopt the mapping");
	s->persist = pmem2_get_persist_fn(s->pmap);
	return 0;
}

void dp_persist_detach(struct daxpool_slice *s)
{
	if (s->pmap)
		pmem2_map_delete(&s->pmap); /* does not munmap: the mapping came from us */
	s->pmap = NULL;
	s->persist = NULL;
}

static int msync_range(const void *addr, size_t len)
{
	uintptr_t page = (uintptr_t)sysconf(_SC_PAGESIZE);
	uintptr_t start = (uintptr_t)addr & ~(page - 1);
	int r;

	do
		r = msync((void *)start, len + ((uintptr_t)addr - start), MS_SYNC);
	while (r < 0 && errno == EINTR);
	if (r < 0)
		return dp_error(negative_errno(), "daxpool_persist: msync: %s", strerror(errno));
	return 0;
}

DAXPOOL_EXPORT int daxpool_persist(const struct daxpool_slice *s, const void *addr, size_t len)
{
	uintptr_t a = (uintptr_t)addr, base;

	if (!s || !addr)
		return dp_error(-EINVAL, "daxpool_persist: NULL argument");
	base = (uintptr_t)s->map_addr;
	if (!base)
		return dp_error(-EINVAL, "daxpool_persist: the slice is not mapped");
	if (a < base || len > s->map_len || a - base > s->map_len - len)
		return dp_error(-ERANGE, "daxpool_persist: [%p, +%zu) is outside the mapping [%p, +%zu)",
				addr, len, s->map_addr, s->map_len);
	if (!s->map_writable)
		return dp_error(-EBADF, "daxpool_persist: the mapping is read-only");
	if (len == 0)
		return 0;
	if (s->persist) {
		s->persist(addr, len);
		return 0;
	}
	return msync_range(addr, len);
}
