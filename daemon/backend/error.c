/* Thread-local last-error message of the backends, like pmem2_errormsg(): a fixed buffer per
 * thread, because the message must outlive the call and reporting ENOMEM must not allocate. */
#include "backend-internal.h"

#include <stdarg.h>
#include <stdio.h>

#define BACKEND_ERRMSG_MAX 1024

static __thread char errmsg[BACKEND_ERRMSG_MAX];

const char *backend_errormsg(void)
{
	return errmsg;
}

int backend_err(int r, const char *fmt, ...)
{
	/* %m in fmt must see the errno of the failure, not one vsnprintf might set. */
	int saved = errno;
	va_list ap;

	if (r < 0)
		errno = -r;
	va_start(ap, fmt);
	vsnprintf(errmsg, sizeof(errmsg), fmt, ap);
	va_end(ap);
	errno = saved;
	return r;
}
