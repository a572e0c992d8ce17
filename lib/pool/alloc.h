/* The single allocation wrapper of the pool library, with a fault injector for tests. */
#pragma once

#include <stddef.h>

/* malloc that fails (returns NULL, errno ENOMEM) at the call chosen by pool_test_fail_alloc_at. */
void *pool_mem_alloc(size_t size);
/* calloc-like: n * size bytes, zeroed, overflow-checked. */
void *pool_mem_calloc(size_t n, size_t size);
void pool_mem_free(void *p);
