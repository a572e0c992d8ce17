/*
 * A per-thread "last error" message, like pmem2_errormsg(): each library (the pool, the
 * backends, libdaxpool, the namespace code) keeps its own buffer, so one library's message can
 * quote another's, and the same code formats all of them.
 *
 * A fixed buffer per thread, because the message must outlive the failing call and reporting
 * ENOMEM must not allocate. In the format, %m stands for the error being reported (-r when r is
 * a negative errno), not for whatever errno formatting might leave.
 *
 *     DEFINE_ERRMSG(, pool_errormsg, pool_err, pool_msg_clear)
 * defines const char *pool_errormsg(void), int pool_err(int r, const char *fmt, ...) (formats
 * and returns r: `return pool_err(-EINVAL, "...")`) and void pool_msg_clear(void); the first
 * argument is an attribute for the getter (an export macro), or empty.
 */
#pragma once

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>

#define ERRMSG_SIZE 1024

__attribute__((format(printf, 3, 0))) static inline int errmsg_vformat(char *buf, int r, const char *fmt,
								      va_list ap)
{
	int saved = errno;

	if (r < 0)
		errno = -r;
	vsnprintf(buf, ERRMSG_SIZE, fmt, ap);
	errno = saved;
	return r;
}

#define DEFINE_ERRMSG(getter_attr, getter, setter, clearer)                 \
	static __thread char getter##_buf[ERRMSG_SIZE];                     \
	getter_attr const char *getter(void)                               \
	{                                                                   \
		return getter##_buf;                                        \
	}                                                                   \
	int setter(int r, const char *fmt, ...)                             \
	{                                                                   \
		va_list ap;                                                 \
                                                                            \
		va_start(ap, fmt);                                          \
		errmsg_vformat(getter##_buf, r, fmt, ap);                   \
		va_end(ap);                                                 \
		return r;                                                   \
	}                                                                   \
	__attribute__((unused)) void clearer(void)                          \
	{                                                                   \
		getter##_buf[0] = '\0';                                     \
	}
