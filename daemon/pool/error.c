/* Per-thread error message, like pmem2_errormsg(): a fixed buffer per thread because the message
 * must survive until the caller reads it, and a library must not allocate to report ENOMEM. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "error.h"
#include "pool.h"

#define POOL_ERRMSG_MAX 1024

static __thread char errmsg[POOL_ERRMSG_MAX];

const char *pool_errormsg(void)
{
	return errmsg;
}

int pool_err(int r, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(errmsg, sizeof(errmsg), fmt, ap);
	va_end(ap);
	return r;
}

void pool_msg_append(const char *fmt, ...)
{
	size_t used = strnlen(errmsg, sizeof(errmsg));
	if (used + 3 >= sizeof(errmsg))
		return;
	if (used > 0) {
		errmsg[used++] = ';';
		errmsg[used++] = ' ';
		errmsg[used] = '\0';
	}
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(errmsg + used, sizeof(errmsg) - used, fmt, ap);
	va_end(ap);
}

void pool_msg_clear(void)
{
	errmsg[0] = '\0';
}
