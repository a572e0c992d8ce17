/* The physical placement rules of sub-devices on a dynamic dax region (subdev-geometry.h):
 * pure arithmetic, testable without the hardware. */
#include "backend-internal.h"
#include "subdev-geometry.h"

#include <inttypes.h>

#define SZ_4K (UINT64_C(1) << 12)
#define SZ_2M (UINT64_C(1) << 21)
#define SZ_1G (UINT64_C(1) << 30)

static bool is_class(uint64_t a)
{
	return a == SZ_4K || a == SZ_2M || a == SZ_1G;
}

int subdev_geometry_check(const struct subdev_geometry *g, uint64_t *ret_span)
{
	uint64_t end = g->region_start + g->region_size;

	if (!g->region_size || end < g->region_start || !is_class(g->region_align))
		return backend_err(-EINVAL, "dax region [%#" PRIx64 ", +%#" PRIx64 ") with alignment %"
				   PRIu64 " is not usable", g->region_start, g->region_size,
				   g->region_align);
	if (g->base < g->region_start || g->base >= end)
		return backend_err(-EINVAL, "the pool device at %#" PRIx64 " is outside its region [%#"
				   PRIx64 ", %#" PRIx64 ")", g->base, g->region_start, end);
	if (g->base % g->region_align)
		return backend_err(-EINVAL, "the pool device's start %#" PRIx64 " is not aligned to the "
				   "region's alignment %" PRIu64, g->base, g->region_align);
	if (!g->pool_dev_size || g->pool_dev_size > end - g->base)
		return backend_err(-EINVAL, "the pool device [%#" PRIx64 ", +%#" PRIx64 ") does not fit "
				   "in its region", g->base, g->pool_dev_size);
	*ret_span = end - g->base;
	return 0;
}

uint64_t subdev_max_align(const struct subdev_geometry *g)
{
	if (g->base % SZ_1G == 0)
		return SZ_1G;
	if (g->base % SZ_2M == 0)
		return SZ_2M;
	return g->base % SZ_4K == 0 ? SZ_4K : 0;
}

int subdev_place(const struct subdev_geometry *g, uint64_t offset, uint64_t length, uint64_t align,
		 uint64_t *ret_phys)
{
	uint64_t end = g->region_start + g->region_size, phys;

	if (!is_class(align) || align < g->region_align)
		return backend_err(-EINVAL, "alignment %" PRIu64 " is not one a sub-device of this region "
				   "can have (4K, 2M or 1G, at least the region's %" PRIu64 ")", align,
				   g->region_align);
	if (!length || offset % align || length % align)
		return backend_err(-EINVAL, "slice %#" PRIx64 "+%#" PRIx64 " is not aligned to %" PRIu64,
				   offset, length, align);
	if (offset < g->pool_dev_size)
		return backend_err(-EINVAL, "slice %#" PRIx64 "+%#" PRIx64 " overlaps the pool device "
				   "(%#" PRIx64 " bytes): was the pool formatted on the pool device "
				   "alone? Format it with daxpoold --format-if-empty", offset, length,
				   g->pool_dev_size);
	if (offset > end - g->base || length > end - g->base - offset)
		return backend_err(-EINVAL, "slice %#" PRIx64 "+%#" PRIx64 " ends past the region (%#"
				   PRIx64 " bytes from the pool device on)", offset, length, end - g->base);
	phys = g->base + offset;
	if (phys % align)
		return backend_err(-EINVAL, "slice %#" PRIx64 "+%#" PRIx64 " would start at physical "
				   "address %#" PRIx64 ", which is not %" PRIu64 "-aligned (the pool "
				   "device starts at %#" PRIx64 "; carve it at a %" PRIu64 "-aligned "
				   "start for such slices); refusing to let the kernel place it", offset,
				   length, phys, align, g->base, align);
	*ret_phys = phys;
	return 0;
}

int subdev_offset_of(const struct subdev_geometry *g, uint64_t phys, uint64_t length,
		     uint64_t *ret_offset)
{
	uint64_t end = g->region_start + g->region_size;

	if (phys < g->base + g->pool_dev_size || phys >= end || !length || length > end - phys)
		return -ERANGE;
	*ret_offset = phys - g->base;
	return 0;
}
