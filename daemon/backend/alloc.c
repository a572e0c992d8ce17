/* The single allocation wrapper of the backends, with a countdown fault injector so a test can
 * fail every allocation site in turn. */
#include "backend-internal.h"

#include <stdlib.h>
#include <string.h>

static unsigned long fail_at; /* 0 = off; else the countdown to the failing call */

void backend_test_fail_alloc_at(unsigned long n)
{
	fail_at = n;
}

/* True when this call is the one chosen to fail. */
static bool injected_failure(void)
{
	if (fail_at == 0)
		return false;
	if (--fail_at == 0) {
		errno = ENOMEM;
		return true;
	}
	return false;
}

void *backend_mem_realloc(void *p, size_t size)
{
	return injected_failure() ? NULL : realloc(p, size);
}

void *backend_mem_calloc(size_t n, size_t size)
{
	return injected_failure() ? NULL : calloc(n, size);
}

char *backend_mem_strdup(const char *s)
{
	return injected_failure() ? NULL : strdup(s);
}
