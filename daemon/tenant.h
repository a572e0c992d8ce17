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

/* 0 when uid may be given the device fd, else -EACCES with a message for the client in why.
 * With no tenant yet, a non-administrator becomes it — unless the device holds slices of another
 * uid (an administrator's too: the tenant could read them). Always 0 outside owner isolation and
 * for administrators. */
int tenant_admit(struct daxpoold *d, uid_t uid, bool admin, char *why, size_t whylen);

/* 0 when a new slice owned by owner may be made on the device: owner is the tenant, or there is
 * none yet and the device holds no other uid's slices (owner then becomes the tenant unless
 * owner_is_admin). Else -EACCES with a message in why. Always 0 outside owner isolation. */
int tenant_admit_owner(struct daxpoold *d, uid_t owner, bool owner_is_admin, char *why,
		       size_t whylen);
