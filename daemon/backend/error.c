/* The backends' per-thread last-error message (backend_errormsg, lib/common/errmsg.h). */
#include "backend-internal.h"
#include "errmsg.h"

void backend_msg_clear(void);

DEFINE_ERRMSG(, backend_errormsg, backend_err, backend_msg_clear)
