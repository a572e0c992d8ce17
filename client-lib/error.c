/* The per-thread last-error message (lib/common/errmsg.h) and error-code descriptions of libdaxpool. */
#include "client.h"
#include "errmsg.h"

#include <stdio.h>
#include <string.h>

DEFINE_ERRMSG(DAXPOOL_EXPORT, daxpool_errormsg, dp_error, dp_error_clear)

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
