/*
 * Sub-devices on dynamic dax regions without the hardware (daemon/backend/slice-subdev.h): the
 * pool-offset <-> physical-address rules, the refusal of placements the kernel would accept but
 * that are wrong (a 1G device at a start that is not 1G-aligned overwrites its neighbours), and
 * the pool's address space as the backend builds it: the pool device's bytes followed by an
 * inaccessible reservation to the region's end, which the pool must never touch.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cmocka.h>

#include "backend.h"
#include "pool.h"
#include "slice-subdev.h"

#define MiB (UINT64_C(1) << 20)
#define GiB (UINT64_C(1) << 30)
#define REGION_START (4 * GiB) /* where memmap=2G%4G puts soft-reserved memory */

/* A 2 GiB region at 4 GiB, aligned 2M, the pool device (12 MiB) at its start. */
static struct subdev_geometry lab_geometry(void)
{
	return (struct subdev_geometry){ .region_start = REGION_START, .region_size = 2 * GiB,
					 .region_align = 2 * MiB, .base = REGION_START,
					 .pool_dev_size = 12 * MiB };
}

static void test_geometry(void **state)
{
	struct subdev_geometry g = lab_geometry();
	uint64_t span = 0;

	(void)state;
	assert_int_equal(subdev_geometry_check(&g, &span), 0);
	assert_int_equal(span, 2 * GiB);
	assert_int_equal(subdev_max_align(&g), GiB);

	/* The pool device later in the region: the pool spans from it to the end. */
	g.base = REGION_START + 2 * MiB;
	assert_int_equal(subdev_geometry_check(&g, &span), 0);
	assert_int_equal(span, 2 * GiB - 2 * MiB);
	assert_int_equal(subdev_max_align(&g), 2 * MiB);

	g.base = REGION_START + 4096; /* not at the region's alignment */
	assert_int_equal(subdev_geometry_check(&g, &span), -EINVAL);
	assert_non_null(strstr(backend_errormsg(), "not aligned"));
	assert_int_equal(subdev_max_align(&g), 4096);
	g.base = REGION_START - 2 * MiB; /* outside */
	assert_int_equal(subdev_geometry_check(&g, &span), -EINVAL);
	g.base = REGION_START + 2 * GiB;
	assert_int_equal(subdev_geometry_check(&g, &span), -EINVAL);
	g = lab_geometry();
	g.pool_dev_size = 2 * GiB + 2 * MiB; /* does not fit */
	assert_int_equal(subdev_geometry_check(&g, &span), -EINVAL);
	g = lab_geometry();
	g.region_align = 3 * MiB;
	assert_int_equal(subdev_geometry_check(&g, &span), -EINVAL);
}

static void test_place(void **state)
{
	struct subdev_geometry g = lab_geometry();
	uint64_t phys = 0;

	(void)state;
	/* Pool offset o is physical base + o. */
	assert_int_equal(subdev_place(&g, 12 * MiB, 2 * MiB, 2 * MiB, &phys), 0);
	assert_int_equal(phys, REGION_START + 12 * MiB);
	assert_int_equal(subdev_place(&g, GiB, GiB, GiB, &phys), 0);
	assert_int_equal(phys, REGION_START + GiB);
	assert_int_equal(subdev_place(&g, 2 * GiB - 2 * MiB, 2 * MiB, 2 * MiB, &phys), 0);
	assert_int_equal(phys, REGION_START + 2 * GiB - 2 * MiB);

	phys = 42;
	/* Below the region's alignment: the kernel cannot carve a 4K device on a 2M region. */
	assert_int_equal(subdev_place(&g, 12 * MiB, 4096, 4096, &phys), -EINVAL);
	/* Not 4K/2M/1G. */
	assert_int_equal(subdev_place(&g, 12 * MiB, 4 * MiB, 4 * MiB, &phys), -EINVAL);
	/* Misaligned in the pool. */
	assert_int_equal(subdev_place(&g, 13 * MiB, 2 * MiB, 2 * MiB, &phys), -EINVAL);
	assert_int_equal(subdev_place(&g, 12 * MiB, 3 * MiB, 2 * MiB, &phys), -EINVAL);
	assert_int_equal(subdev_place(&g, 512 * MiB, GiB, GiB, &phys), -EINVAL);
	assert_int_equal(subdev_place(&g, 12 * MiB, 0, 2 * MiB, &phys), -EINVAL);
	/* The pool device's own bytes (a pool formatted on the pool device alone). */
	assert_int_equal(subdev_place(&g, 10 * MiB, 2 * MiB, 2 * MiB, &phys), -EINVAL);
	assert_non_null(strstr(backend_errormsg(), "overlaps the pool device"));
	assert_int_equal(subdev_place(&g, 0, GiB, GiB, &phys), -EINVAL);
	/* Past the region's end, overflow included. */
	assert_int_equal(subdev_place(&g, 2 * GiB, 2 * MiB, 2 * MiB, &phys), -EINVAL);
	assert_int_equal(subdev_place(&g, 2 * GiB - 2 * MiB, 4 * MiB, 2 * MiB, &phys), -EINVAL);
	assert_int_equal(subdev_place(&g, UINT64_MAX - 2 * MiB + 1, 2 * MiB, 2 * MiB, &phys),
			 -EINVAL);
	assert_int_equal(subdev_place(&g, 12 * MiB, UINT64_MAX - 2 * MiB + 1, 2 * MiB, &phys),
			 -EINVAL);
	assert_int_equal(phys, 42); /* untouched on failure */

	/* The hazard: the pool device 2M into the region, so a 1G-aligned pool offset is not a
	 * 1G-aligned physical start. The kernel would carve it and the device would overwrite its
	 * neighbours; it is refused. 2M slices stay fine. */
	g.region_size = 4 * GiB;
	g.base = REGION_START + 2 * MiB;
	assert_int_equal(subdev_place(&g, GiB, GiB, GiB, &phys), -EINVAL);
	assert_non_null(strstr(backend_errormsg(), "not 1073741824-aligned"));
	assert_int_equal(subdev_place(&g, GiB, 2 * MiB, 2 * MiB, &phys), 0);
	assert_int_equal(phys, REGION_START + GiB + 2 * MiB);
	/* A pool device one gigabyte into the region keeps 1G slices possible. */
	g.base = REGION_START + GiB;
	assert_int_equal(subdev_place(&g, GiB, GiB, GiB, &phys), 0);
	assert_int_equal(phys, REGION_START + 2 * GiB);
}

static void test_offset_of(void **state)
{
	struct subdev_geometry g = lab_geometry();
	uint64_t off = 7, phys;

	(void)state;
	assert_int_equal(subdev_offset_of(&g, REGION_START + 12 * MiB, 2 * MiB, &off), 0);
	assert_int_equal(off, 12 * MiB);
	assert_int_equal(subdev_offset_of(&g, REGION_START + GiB, GiB, &off), 0);
	assert_int_equal(off, GiB);
	off = 7;
	/* The pool device itself, below it, past the end, empty. */
	assert_int_equal(subdev_offset_of(&g, REGION_START, 12 * MiB, &off), -ERANGE);
	assert_int_equal(subdev_offset_of(&g, REGION_START + 10 * MiB, 2 * MiB, &off), -ERANGE);
	assert_int_equal(subdev_offset_of(&g, REGION_START - 2 * MiB, 2 * MiB, &off), -ERANGE);
	assert_int_equal(subdev_offset_of(&g, REGION_START + 2 * GiB, 2 * MiB, &off), -ERANGE);
	assert_int_equal(subdev_offset_of(&g, REGION_START + 2 * GiB - 2 * MiB, 4 * MiB, &off),
			 -ERANGE);
	assert_int_equal(subdev_offset_of(&g, REGION_START + 12 * MiB, 0, &off), -ERANGE);
	assert_int_equal(off, 7);
	/* Round trip over the data area. */
	for (uint64_t o = 12 * MiB; o < 2 * GiB; o += 62 * MiB) {
		assert_int_equal(subdev_place(&g, o, 2 * MiB, 2 * MiB, &phys), 0);
		assert_int_equal(subdev_offset_of(&g, phys, 2 * MiB, &off), 0);
		assert_int_equal(off, o);
	}
}

/* The pool over the backend's address space: the pool device's bytes (here a shared anonymous
 * mapping standing for it) and PROT_NONE to the region's end. Format, open, allocations at every
 * alignment, free and reopen must never touch the data area (SIGSEGV if they did), and the pool
 * device's size is exactly the metadata of a pool of that span. */
static void test_pool_over_reservation(void **state)
{
	const uint64_t span = 2 * GiB;
	/* The data area is inaccessible: slices are sub-devices, zeroed when carved. */
	struct pool_format_params prm = { .device_align = 2 * MiB, .data_clean = true };
	struct pool_alloc_req req = { .size = 4096, .align = POOL_ALIGN_4K, .name = "a", .mode = 0600 };
	struct pool_extent e4k, e2m, e1g;
	struct pool_stats st;
	struct pool *p = NULL;
	uint64_t meta = 0;
	char *base;

	(void)state;
	assert_int_equal(pool_metadata_size(span, &prm, &meta), 0);
	assert_int_equal(meta, 12 * MiB); /* what tests/lab/dynamic-region.sh carves */
	base = mmap(NULL, span, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	assert_true(base != MAP_FAILED);
	assert_true(mmap(base, meta, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS | MAP_FIXED,
			 -1, 0) == base);

	assert_int_equal(pool_format_range(base, span, &pool_memory_fs_ops, &prm), 0);
	assert_int_equal(pool_open_range(base, span, &pool_memory_fs_ops, &p), 0);
	pool_get_stats(p, &st);
	assert_int_equal(st.pool_size, span);
	assert_int_equal(st.data_offset, meta);
	assert_int_equal(st.device_align, 2 * MiB);

	/* 4K asked, 2M given: the region's alignment rounds every extent up. */
	assert_int_equal(pool_alloc(p, &req, &e4k), 0);
	assert_int_equal(e4k.length, 2 * MiB);
	assert_true(e4k.offset >= meta);
	req = (struct pool_alloc_req){ .size = 2 * MiB, .align = POOL_ALIGN_2M, .name = "b",
				       .mode = 0600 };
	assert_int_equal(pool_alloc(p, &req, &e2m), 0);
	req = (struct pool_alloc_req){ .size = GiB, .align = POOL_ALIGN_1G, .name = "c", .mode = 0600 };
	assert_int_equal(pool_alloc(p, &req, &e1g), 0);
	assert_int_equal(e1g.offset, GiB); /* the only 1G-aligned gigabyte past the metadata */
	assert_int_equal(pool_free(p, e2m.id), 0);
	pool_delete(&p);

	assert_int_equal(pool_open_range(base, span, &pool_memory_fs_ops, &p), 0);
	pool_get_stats(p, &st);
	assert_int_equal(st.records_used, 2);
	pool_delete(&p);
	munmap(base, span);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_geometry),
		cmocka_unit_test(test_place),
		cmocka_unit_test(test_offset_of),
		cmocka_unit_test(test_pool_over_reservation),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
