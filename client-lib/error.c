/* The per-thread last-error message and error-code descriptions of libdaxpool. */
#include "client.h"

#include <stdio.h>
#include <string.h>

static __thread char last_error[512];

int dp_error(int error, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(last_error, sizeof(last_error), fmt, ap);
	va_end(ap);
	return error;
}

void dp_error_clear(void)
{
	last_error[0] = '\0';
}

DAXPOOL_EXPORT const char *daxpool_errormsg(void)
{
	return last_error;
}

DAXPOOL_EXPORT const char *daxpool_strerror(int error)
{
	switch (-error) {
	case DAXPOOL_E_PROTOCOL:
		return "malformed message from daxpoold";
	case DAXPOOL_E_VERSION:
		return "no protocol version in common with daxpoold";
	default:
		break;
	}
	if (error >= 0)
		return "success";
	if (error < -4095)
		return "unknown daxpool error";
	/* strerrordesc_np returns a static string, unlike strerror(), so this stays thread-safe. */
	const char *s = strerrordesc_np(-error);
	return s ? s : "unknown error";
}
