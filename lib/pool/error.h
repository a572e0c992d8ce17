/* Thread-local last-error message of the pool library. */
#pragma once

#include "macro.h"

/* Formats the message and returns r (a negative errno), so callers can `return pool_err(...)`. */
int pool_err(int r, const char *fmt, ...) _printf_(2, 3);
void pool_msg_clear(void);
