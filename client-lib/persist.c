/*
 * daxpool_persist: make stores to a mapped slice persistent, with libpmem2's persist function.
 *
 * Route chosen: the library maps the slice itself (map.c: the alignment trick, MAP_SYNC) and
 * hands the finished mapping to libpmem2 with pmem2_map_from_existing(), which returns a
 * pmem2_map whose pmem2_get_persist_fn() fits the backend. pmem2_map_new() was the other
 * candidate, but it aligns a mapping only to what pmem2_source_alignment() knows: the device's
 * alignment on device-dax, the 4K page for any regular file. A 2M slice of an emulated pool
 * (hugetlbfs, or a 4K file) would then get no 2M-aligned address, and a hugetlbfs MAP_FIXED at
 * a misaligned address fails outright. pmem2_map_delete() of a map made from an existing one
 * does not unmap it (libpmem2 leaves user-provided mappings to their owner).
 *
 * The granularity we declare is the one pmem2_map_new() would reach with a required
 * granularity of PMEM2_GRANULARITY_PAGE: device-dax is written through the CPU caches into the
 * persistence domain, so CACHE_LINE (its persist function flushes the lines and fences; on an
 * eADR platform BYTE would allow skipping the flush, CACHE_LINE stays correct there); any other
 * file (the emulated backend: hugetlbfs or a plain file) needs the kernel to write pages back,
 * so PAGE (persist = msync of the touched pages).
 */
#include "client.h"

#include <errno.h>
#include <libpmem2.h>
#include <stdint.h>
#include <string.h>
#include <sys/stat.h>

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
	 * the daemon passes (pmem2_source_from_fd checks it is one). */
	if (fstat(s->fd, &st) < 0)
		return dp_error(negative_errno(), "fstat of the slice fd: %s", strerror(errno));
	r = pmem2_source_from_fd(&src, s->fd);
	if (r < 0)
		return pmem2_failure(r, "libpmem2 cannot describe the slice fd");
	r = pmem2_map_from_existing(&s->pmap, src, s->map_addr, s->map_len,
				    S_ISCHR(st.st_mode) ? PMEM2_GRANULARITY_CACHE_LINE
							: PMEM2_GRANULARITY_PAGE);
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
	if (!s->map_writable || !s->persist)
		return dp_error(-EBADF, "daxpool_persist: the mapping is read-only");
	if (len)
		s->persist(addr, len);
	return 0;
}
