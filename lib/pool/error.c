/* The pool's per-thread last-error message (pool_errormsg, lib/common/errmsg.h). */
#include "errmsg.h"
#include "error.h"
#include "pool.h"

DEFINE_ERRMSG(, pool_errormsg, pool_err, pool_msg_clear)
