/* daxpool_map/daxpool_unmap: a slice mapped at an address aligned to its alignment. */
#include "client.h"

#include <errno.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#ifndef MAP_SHARED_VALIDATE
#define MAP_SHARED_VALIDATE 0x03
#endif
#ifndef MAP_SYNC
#define MAP_SYNC 0x80000
#endif

void dp_slice_map_init(struct daxpool_slice *s)
{
	pthread_mutex_init(&s->map_lock, NULL);
}

void dp_slice_map_destroy(struct daxpool_slice *s)
{
	pthread_mutex_destroy(&s->map_lock);
}

/* Caller holds map_lock. */
static void unmap_locked(struct daxpool_slice *s)
{
	if (!s->map_addr)
		return;
	dp_persist_detach(s);
	munmap(s->map_addr, s->map_len);
	s->map_addr = NULL;
	s->map_len = 0;
	s->map_writable = false;
}

int dp_slice_unmap_for_end(struct daxpool_slice *s)
{
	int r = 0;

	pthread_mutex_lock(&s->map_lock);
	if (s->pins)
		r = dp_error(-EBUSY, "the slice has %u long-term pin(s) made by daxpool_pin_longterm: "
				     "daxpool_unpin them first", s->pins);
	else
		unmap_locked(s);
	pthread_mutex_unlock(&s->map_lock);
	return r;
}

/*
 * The alignment trick: mmap() of a file chooses an address aligned only to the page size, but a
 * 2M (1G) device-dax or hugetlbfs extent is mapped with PMD (PUD) entries only where the virtual
 * address is 2M (1G) aligned too (hugetlbfs refuses a misaligned MAP_FIXED outright). So reserve
 * len + align bytes of address space that cost nothing (PROT_NONE, private, anonymous,
 * MAP_NORESERVE), put the slice over the first aligned address inside with MAP_FIXED, and give
 * back the unused head and tail.
 */
static int map_aligned(struct daxpool_slice *s, int prot, bool sync, void **ret)
{
	size_t len = (size_t)s->desc.length, align = (size_t)s->desc.align;
	size_t page = (size_t)sysconf(_SC_PAGESIZE);
	size_t extra = align > page ? align : 0;
	int flags = (sync ? MAP_SHARED_VALIDATE | MAP_SYNC : MAP_SHARED) | MAP_FIXED;
	uint8_t *base, *aligned, *p;

	base = mmap(NULL, len + extra, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (base == MAP_FAILED)
		return dp_error(negative_errno(), "reserving %zu bytes of address space: %s", len + extra,
				strerror(errno));
	aligned = (uint8_t *)(((uintptr_t)base + align - 1) & ~(uintptr_t)(align - 1));
	p = mmap(aligned, len, prot, flags, s->fd, (off_t)s->desc.map_offset);
	if (p == MAP_FAILED) {
		int r = negative_errno();

		munmap(base, len + extra);
		if (sync && (r == -EOPNOTSUPP || r == -EINVAL))
			return dp_error(-EOPNOTSUPP, "the device refused MAP_SHARED_VALIDATE|MAP_SYNC (%s) "
					"although the daemon reported MAP_SYNC support", strerror(-r));
		return dp_error(r, "mapping %zu bytes of the slice at offset %llu: %s", len,
				(unsigned long long)s->desc.map_offset, strerror(-r));
	}
	if (aligned > base)
		munmap(base, (size_t)(aligned - base));
	if (base + len + extra > aligned + len)
		munmap(aligned + len, (size_t)(base + len + extra - (aligned + len)));
	/* A child of fork() is no holder the daemon knows of: it must not inherit the mapping. */
	if (madvise(aligned, len, MADV_DONTFORK) < 0) {
		int r = negative_errno();

		munmap(aligned, len);
		return dp_error(r, "madvise(MADV_DONTFORK): %s", strerror(-r));
	}
	*ret = aligned;
	return 0;
}

DAXPOOL_EXPORT int daxpool_map(struct daxpool_slice *s, unsigned flags, void **ret_addr)
{
	bool writable;
	void *addr = NULL;
	int r;

	dp_error_clear();
	if (!s || !ret_addr)
		return dp_error(-EINVAL, "daxpool_map: NULL argument");
	if (flags & ~DAXPOOL_MAP_READONLY)
		return dp_error(-EINVAL, "daxpool_map: unknown flags 0x%x", flags);
	if (s->fd < 0)
		return dp_error(-EBADF, "daxpool_map: the slice has no fd");
	if (s->desc.length == 0 || s->desc.length > SIZE_MAX / 2 || s->desc.align == 0 ||
	    (s->desc.align & (s->desc.align - 1)))
		return dp_error(-EINVAL, "daxpool_map: slice length %llu / alignment %llu cannot be mapped",
				(unsigned long long)s->desc.length, (unsigned long long)s->desc.align);
	writable = daxpool_slice_is_writable(s) && !(flags & DAXPOOL_MAP_READONLY);

	pthread_mutex_lock(&s->map_lock);
	if (s->map_addr) {
		pthread_mutex_unlock(&s->map_lock);
		return dp_error(-EBUSY, "the slice is already mapped at %p: one mapping per slice object",
				s->map_addr);
	}
	r = map_aligned(s, writable ? PROT_READ | PROT_WRITE : PROT_READ,
			daxpool_slice_supports_map_sync(s), &addr);
	if (r >= 0) {
		s->map_addr = addr;
		s->map_len = (size_t)s->desc.length;
		s->map_writable = writable;
		if (writable) {
			r = dp_persist_attach(s);
			if (r < 0)
				unmap_locked(s);
		}
	}
	pthread_mutex_unlock(&s->map_lock);
	if (r < 0)
		return r;
	*ret_addr = addr;
	return 0;
}

DAXPOOL_EXPORT int daxpool_unmap(struct daxpool_slice *s)
{
	int r = 0;

	dp_error_clear();
	if (!s)
		return dp_error(-EINVAL, "daxpool_unmap: NULL slice");
	pthread_mutex_lock(&s->map_lock);
	if (!s->map_addr)
		r = dp_error(-EINVAL, "daxpool_unmap: the slice is not mapped");
	else if (s->pins)
		r = dp_error(-EBUSY, "the mapping has %u long-term pin(s): daxpool_unpin them first",
			     s->pins);
	else
		unmap_locked(s);
	pthread_mutex_unlock(&s->map_lock);
	return r;
}

DAXPOOL_EXPORT void *daxpool_slice_get_address(const struct daxpool_slice *s)
{
	return s ? s->map_addr : NULL;
}
