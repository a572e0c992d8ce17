/* Shared helpers of the pool unit tests: anonymous "pmem" ranges and no-op persistence. */
#pragma once

#include <stdint.h>
#include <sys/mman.h>

#include "pool.h"

/* Persistence for a DRAM range: the range is the "media", so nothing has to happen. */
static void noop_persist(const void *a, size_t l)
{
	(void)a;
	(void)l;
}
static void noop_drain(void)
{
}
static const struct pool_persist_ops noop_ops = {noop_persist, noop_persist, noop_drain};

/* A sparse zero range: only pages the pool touches (metadata) use memory. */
static inline void *range_new(uint64_t size)
{
	void *p = mmap(NULL, size, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	return p == MAP_FAILED ? NULL : p;
}
static inline void range_free(void *p, uint64_t size)
{
	munmap(p, size);
}
