/* Owner isolation (BACKEND_ISOLATION_OWNER): a device that cannot be carved serves one owner uid.
 * Every other uid is refused the device fd; administrators are trusted with it. */
#pragma once

#include <stdbool.h>
#include <sys/types.h>

struct daxpoold;

/* At start, after the pool is open: the tenant from the config (`tenant`), else the one bound
 * earlier in this boot (RUNTIME_DIR/tenant), else the owner of the pool's slices if they have one.
 * Errors: -EINVAL (unknown user in the config), logged. */
int tenant_init(struct daxpoold *d);

/* 0 when uid may be given the device fd (binding the tenant if none is yet), else -EACCES with
 * a message for the client in why. Always 0 outside owner isolation and for administrators. */
int tenant_admit(struct daxpoold *d, uid_t uid, bool admin, char *why, size_t whylen);
