/* Owner isolation: the one uid a device that cannot be carved serves; see tenant.h. */
#include "tenant.h"
#include "backend.h"
#include "daemon.h"
#include "log.h"
#include "macro.h"
#include "pool.h"
#include "usage.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static bool owner_mode(const struct daxpoold *d)
{
	return d->backend && backend_isolation(d->backend) == BACKEND_ISOLATION_OWNER;
}

static int parse_user(const char *s, uid_t *ret)
{
	struct passwd pw, *res = NULL;
	char buf[4096], *end;
	unsigned long v;

	errno = 0;
	v = strtoul(s, &end, 10);
	if (!errno && *s && !*end && v < UINT32_MAX) {
		*ret = (uid_t)v;
		return 0;
	}
	if (getpwnam_r(s, &pw, buf, sizeof(buf), &res) != 0 || !res)
		return -EINVAL;
	*ret = res->pw_uid;
	return 0;
}

static void binding_path(const struct daxpoold *d, char *buf, size_t len)
{
	runtime_state_path(d, "tenant", false, buf, len);
}

/* The binding lives in the runtime directory (tmpfs): a reboot, which closes every descriptor
 * the tenant could have kept, ends it. */
static int binding_save(const struct daxpoold *d, uid_t uid)
{
	char path[4096], tmp[4200], line[32];
	int fd, n;

	binding_path(d, path, sizeof(path));
	snprintf(tmp, sizeof(tmp), "%s.new", path);
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0)
		return -errno;
	n = snprintf(line, sizeof(line), "%u\n", (unsigned)uid);
	if (write(fd, line, (size_t)n) != n || fsync(fd) < 0) {
		int r = errno ? -errno : -EIO;

		close(fd);
		unlink(tmp);
		return r;
	}
	close(fd);
	if (rename(tmp, path) < 0) {
		int r = -errno;

		unlink(tmp);
		return r;
	}
	return 0;
}

static int binding_load(const struct daxpoold *d, uid_t *ret)
{
	char path[4096], line[32] = "";
	_cleanup_(closep) int fd = -1;
	ssize_t n;

	binding_path(d, path, sizeof(path));
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0 && errno == ENOENT) {
		/* Written by an earlier version: the binding of whichever daemon used this directory.
		 * Binding to it can only refuse a uid that another binding would have allowed. */
		runtime_state_path(d, "tenant", true, path, sizeof(path));
		fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	}
	if (fd < 0)
		return -errno;
	n = read(fd, line, sizeof(line) - 1);
	if (n <= 0)
		return -EINVAL;
	line[n] = '\0';
	line[strcspn(line, "\n")] = '\0';
	unsigned long v;
	char *end;
	errno = 0;
	v = strtoul(line, &end, 10);
	if (errno || !line[0] || *end || v >= UINT32_MAX)
		return -EINVAL;
	*ret = (uid_t)v;
	return 0;
}

struct owners {
	uid_t first;
	unsigned n;
};

static int count_owner(const struct pool_record_info *rec, void *ud)
{
	struct owners *o = ud;

	if (backend_name_is_reserved(rec->name))
		return 0;
	if (o->n == 0) {
		o->first = rec->uid;
		o->n = 1;
	} else if (rec->uid != o->first) {
		o->n = 2;
		return 1;
	}
	return 0;
}

int tenant_init(struct daxpoold *d)
{
	struct owners o = {0};
	uid_t uid;
	int r;

	d->has_tenant = false;
	d->tenant_conflict = false;
	if (!owner_mode(d))
		return 0;
	if (d->opts.tenant) {
		if (parse_user(d->opts.tenant, &uid) < 0)
			return log_error_errno(-EINVAL, "config: \"tenant\": no such user \"%s\"", d->opts.tenant);
		d->tenant = uid;
		d->has_tenant = true;
	} else if (binding_load(d, &uid) == 0) {
		d->tenant = uid;
		d->has_tenant = true;
	}
	pool_iterate(d->pool, 0, count_owner, &o);
	if (o.n && !d->has_tenant && o.n == 1) {
		d->tenant = o.first;
		d->has_tenant = true;
	}
	if (o.n > 1 || (o.n == 1 && d->tenant != o.first)) {
		/* Slices of several owners on one device that cannot be carved: whoever gets the
		 * fd could reach the others'. Only administrators are served until they are gone. */
		d->tenant_conflict = true;
		log_warning("isolation \"owner\": the pool holds slices of more than one owner; no "
			    "non-administrator is given the device until an administrator frees them "
			    "(or sets isolation \"shared\")");
	}
	if (d->has_tenant) {
		r = binding_save(d, d->tenant);
		if (r < 0)
			log_warning_errno(r, "cannot record the tenant in the runtime directory: %m");
		log_info("isolation \"owner\": the device serves uid %u", (unsigned)d->tenant);
	} else {
		log_info("isolation \"owner\": the device will serve the first user granted a slice");
	}
	return 0;
}

/* Does the table hold a record of a uid other than uid: a live slice, or a quarantined extent
 * whose former holders may still map the device? (Once zeroed and released it is nobody's.) */
static int other_record(const struct pool_record_info *rec, void *userdata)
{
	const uid_t *uid = userdata;

	return !backend_name_is_reserved(rec->name) && rec->uid != *uid;
}

static bool others_on_device(struct daxpoold *d, uid_t uid)
{
	return pool_iterate(d->pool, 0, other_record, &uid) != 0;
}

/* Records of several owners were found at start: only administrators are served until those of
 * everyone but the tenant are freed and released (then the flag clears by itself). Without a
 * tenant, the same check is made before a uid is bound. */
static bool conflict(struct daxpoold *d)
{
	if (!d->tenant_conflict)
		return false;
	if (!d->has_tenant) { /* others_on_device() decides before anyone is bound */
		d->tenant_conflict = false;
		return false;
	}
	if (others_on_device(d, d->tenant))
		return true;
	d->tenant_conflict = false;
	log_notice("isolation \"owner\": the slices of other owners are gone; the device serves its "
		   "tenant again");
	return false;
}

static int refuse(uid_t uid, char *why, size_t whylen)
{
	snprintf(why, whylen, "this pool's device serves a single user and is not available to uid %u "
		 "(isolation \"owner\")", (unsigned)uid);
	return -EACCES;
}

static int bind(struct daxpoold *d, uid_t uid, char *why, size_t whylen)
{
	int r = binding_save(d, uid);

	if (r < 0) {
		log_error_errno(r, "cannot record the tenant in the runtime directory: %m");
		snprintf(why, whylen, "this pool cannot bind its device to a user now (see the daemon's log)");
		return -EAGAIN;
	}
	d->tenant = uid;
	d->has_tenant = true;
	log_notice("isolation \"owner\": the device now serves uid %u until reboot", (unsigned)uid);
	return 0;
}

int tenant_admit_owner(struct daxpoold *d, uid_t owner, bool owner_is_admin, char *why,
		       size_t whylen)
{
	if (!owner_mode(d))
		return 0;
	if (conflict(d))
		return refuse(owner, why, whylen);
	if (d->has_tenant)
		return d->tenant == owner ? 0 : refuse(owner, why, whylen);
	if (others_on_device(d, owner))
		return refuse(owner, why, whylen);
	return owner_is_admin ? 0 : bind(d, owner, why, whylen);
}

int tenant_admit(struct daxpoold *d, uid_t uid, bool admin, char *why, size_t whylen)
{
	if (!owner_mode(d) || admin)
		return 0;
	if (conflict(d))
		return refuse(uid, why, whylen);
	if (d->has_tenant)
		return d->tenant == uid ? 0 : refuse(uid, why, whylen);
	if (others_on_device(d, uid))
		return refuse(uid, why, whylen);
	return bind(d, uid, why, whylen);
}
