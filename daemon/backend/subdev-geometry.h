/*
 * Device-dax sub-devices on a dynamic dax region (slice-subdev.c, subdev-kernel.c): the physical
 * placement rules (subdev-geometry.c), kept apart from libdaxctl so they can be tested without
 * the hardware.
 *
 * Layout (docs/BACKENDS.md, "Dynamic dax regions"): the pool device is a sub-device the operator
 * carves first, at the start of the region; pool offset 0 is its first byte and the pool spans
 * from there to the region's end. Pool offset o is physical address base + o (base = the pool
 * device's start). Pool offsets [0, pool device size) are the pool's metadata, which only the
 * daemon maps; every slice [o, o + len) is a sub-device carved at exactly
 * [base + o, base + o + len), aligned to the slice's alignment physically, not only in the pool.
 */
#pragma once

#include <stdint.h>

struct subdev_geometry {
	uint64_t region_start;	/* physical address of the region's first byte (the kernel reports it
				 * as the resource of a device without ranges, e.g. the seed) */
	uint64_t region_size;	/* bytes */
	uint64_t region_align;	/* the region's alignment (dax_region/align) */
	uint64_t base;		/* physical address of the pool device's first byte */
	uint64_t pool_dev_size;	/* bytes of the pool device: pool offsets [0, pool_dev_size) */
};

/* Checks the geometry: base inside the region and aligned to region_align, the pool device
 * inside the region. *ret_span = the pool's size (region end - base). 0 or -EINVAL. */
int subdev_geometry_check(const struct subdev_geometry *g, uint64_t *ret_span);

/* Largest of 1G, 2M and 4K that base is a multiple of: the largest slice alignment that pool
 * offsets keep physically (0 when base is not even 4K-aligned). */
uint64_t subdev_max_align(const struct subdev_geometry *g);

/* Physical start of the sub-device of slice [offset, offset + length) at alignment align.
 * -EINVAL (message in backend_errormsg()) when align is not 4K/2M/1G or below the region's
 * alignment, when offset/length are not multiples of align, when the physical start would not
 * be aligned to align (the kernel would accept it, and a 1G device at a start that is not
 * 1G-aligned silently overwrites its neighbours' memory), when the range overlaps the pool
 * device, or when it does not end inside the region. */
int subdev_place(const struct subdev_geometry *g, uint64_t offset, uint64_t length, uint64_t align,
		 uint64_t *ret_phys);

/* The pool offset of a sub-device found at [phys, phys + length): -ERANGE when it is not in the
 * pool's data area (below or overlapping the pool device, or past the region's end). */
int subdev_offset_of(const struct subdev_geometry *g, uint64_t phys, uint64_t length,
		     uint64_t *ret_offset);
