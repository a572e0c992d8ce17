/* Allocation wrapper: every DRAM allocation of the library comes through here so tests can walk
 * an injected failure over every allocation site. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "pool.h"

/* Test-only globals: tests are single-threaded; the daemon never sets them. */
static unsigned long fail_countdown;

void pool_test_fail_alloc_at(unsigned long n)
{
	fail_countdown = n;
}

void *pool_mem_alloc(size_t size)
{
	if (fail_countdown > 0 && --fail_countdown == 0) {
		errno = ENOMEM;
		return NULL;
	}
	return malloc(size ? size : 1);
}

void *pool_mem_calloc(size_t n, size_t size)
{
	if (size && n > SIZE_MAX / size) {
		errno = ENOMEM;
		return NULL;
	}
	void *p = pool_mem_alloc(n * size);
	if (p)
		memset(p, 0, n * size);
	return p;
}

void pool_mem_free(void *p)
{
	free(p);
}
