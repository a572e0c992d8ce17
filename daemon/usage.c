/* Per-uid usage accounting for quotas; see usage.h. */
#include "usage.h"
#include "backend.h"
#include "daemon.h"
#include "pool.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <uthash.h>

struct usage {
	uid_t uid;
	uint64_t bytes, slices;
	UT_hash_handle hh;
};

static struct usage *usage_get(struct daxpoold *d, uid_t uid, bool create)
{
	struct usage *u;

	HASH_FIND(hh, d->usage, &uid, sizeof(uid), u);
	if (u || !create)
		return u;
	u = calloc(1, sizeof(*u));
	if (!u)
		return NULL;
	u->uid = uid;
	HASH_ADD(hh, d->usage, uid, sizeof(u->uid), u);
	return u;
}

static int count_record(const struct pool_record_info *info, void *userdata)
{
	struct daxpoold *d = userdata;

	if (info->flags & POOL_REC_QUARANTINED || backend_name_is_reserved(info->name))
		return 0;
	return usage_add(d, info->uid, info->length);
}

int usage_init(struct daxpoold *d)
{
	return d->pool ? pool_iterate(d->pool, 0, count_record, d) : 0;
}

void usage_done(struct daxpoold *d)
{
	struct usage *u, *tmp;

	HASH_ITER(hh, d->usage, u, tmp) {
		HASH_DEL(d->usage, u);
		free(u);
	}
}

int usage_check(struct daxpoold *d, uid_t uid, uint64_t bytes, char *why, size_t why_size)
{
	struct quota q = options_quota_for(&d->opts, uid);
	struct usage *u = usage_get(d, uid, false);
	uint64_t used = u ? u->bytes : 0, slices = u ? u->slices : 0;

	if (q.slices && slices + 1 > q.slices) {
		snprintf(why, why_size, "quota of uid %u: %" PRIu64 " slices held, limit %" PRIu64,
			 (unsigned)uid, slices, q.slices);
		return -EDQUOT;
	}
	if (q.bytes && (bytes > q.bytes || used > q.bytes - bytes)) {
		snprintf(why, why_size, "quota of uid %u: %" PRIu64 " bytes held + %" PRIu64 " for this slice (its size rounded up to its alignment) > limit %" PRIu64,
			 (unsigned)uid, used, bytes, q.bytes);
		return -EDQUOT;
	}
	return 0;
}

int usage_add(struct daxpoold *d, uid_t uid, uint64_t bytes)
{
	struct usage *u = usage_get(d, uid, true);

	if (!u)
		return -ENOMEM;
	u->bytes += bytes;
	u->slices++;
	return 0;
}

void usage_sub(struct daxpoold *d, uid_t uid, uint64_t bytes)
{
	struct usage *u = usage_get(d, uid, false);

	if (!u)
		return;
	u->bytes -= bytes < u->bytes ? bytes : u->bytes;
	if (u->slices)
		u->slices--;
}
