/*
 * pool_check: the offline checker behind `daxpoolctl fsck`. Repairs only what is unambiguous:
 *  - one superblock copy bad, the other good -> copy the good one over (the superblock never
 *    changes after format, so the good copy is the whole truth);
 *  - a committed log (or one whose commit mark is a stray non-zero value but whose body is valid:
 *    the body is the latest operation, replaying it is harmless) -> replay and clear.
 * Everything else (bad record, overlap, duplicate name, both superblocks bad, committed log with a
 * bad body) is reported as damaged and left alone: "repairing" it would guess, and a wrong guess
 * hands one extent to two owners or loses one.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "error.h"
#include "pool-internal.h"

int pool_check_range(void *addr, uint64_t size, const struct pool_persist_ops *ops, bool repair)
{
	uint8_t *base = addr;
	struct pool_geometry g;
	int bad = -1, r, result = POOL_CHECK_CLEAN;
	const char *why = NULL;
	char found[1024] = "";

	if (!addr || !ops || !ops->persist || !ops->flush || !ops->drain)
		return pool_err(-EINVAL, "pool_check: missing range or persistence functions");
	pool_msg_clear();

#define FOUND(res, ...)                                                                            \
	do {                                                                                       \
		size_t used_ = strlen(found);                                                      \
		snprintf(found + used_, sizeof(found) - used_, "%s", used_ ? "; " : "");           \
		used_ = strlen(found);                                                             \
		snprintf(found + used_, sizeof(found) - used_, __VA_ARGS__);                      \
		if ((res) > result)                                                                \
			result = (res);                                                            \
	} while (0)

	r = pool_superblocks(base, size, &g, &bad, &why);
	if (r == -ENODATA || r == -EPROTONOSUPPORT || r == -EINVAL)
		return r;
	if (r < 0) {
		/* both bad, or both valid and different: keep the message from pool_superblocks */
		FOUND(POOL_CHECK_DAMAGED, "%s", pool_errormsg());
		return pool_err(result, "%s", found);
	}
	if (bad >= 0) {
		uint64_t good_off = bad == 0 ? POOL_SB_B_OFF : POOL_SB_A_OFF;
		uint64_t bad_off = bad == 0 ? POOL_SB_A_OFF : POOL_SB_B_OFF;
		if (repair) {
			memcpy(base + bad_off, base + good_off, POOL_SB_BYTES);
			ops->persist(base + bad_off, POOL_SB_BYTES);
			FOUND(POOL_CHECK_REPAIRED, "superblock copy %c bad (%s): rewritten from copy %c",
			      bad == 0 ? 'A' : 'B', why, bad == 0 ? 'B' : 'A');
		} else {
			FOUND(POOL_CHECK_REPAIRABLE, "superblock copy %c bad (%s)", bad == 0 ? 'A' : 'B',
			      why);
		}
	}

	struct log_update u[POOL_LOG_MAX_RECORDS];
	unsigned n = 0;
	uint64_t gen = 0;
	const char *lwhy = NULL;
	bool overlay = false;
	switch (log_inspect(base, &g, u, &n, &gen, &lwhy)) {
	case LOG_IDLE:
		break;
	case LOG_COMMITTED:
	case LOG_STRAY:
		if (repair) {
			log_replay(base, &g, ops, u, n);
			FOUND(POOL_CHECK_REPAIRED, "interrupted operation replayed from the log%s%s",
			      lwhy ? ": " : "", lwhy ? lwhy : "");
		} else {
			overlay = true;
			FOUND(POOL_CHECK_REPAIRABLE, "interrupted operation in the log to replay%s%s",
			      lwhy ? ": " : "", lwhy ? lwhy : "");
		}
		break;
	case LOG_DAMAGED:
		FOUND(POOL_CHECK_DAMAGED, "%s", lwhy);
		return pool_err(result, "%s", found);
	}

	/* Records, extents, overlaps and names: the open path checks all of them. In read-only
	 * mode the pending log is seen through the overlay. The open must not replay or write. */
	struct pool *p = NULL;
	struct pool_persist_ops noop = *ops;
	r = pool_open_internal(base, size, &noop, true, &p);
	if (r == -ENOMEM)
		return r;
	if (r < 0) {
		FOUND(POOL_CHECK_DAMAGED, "%s", pool_errormsg());
	} else {
		(void)overlay;
		pool_delete(&p);
	}
	return pool_err(result, "%s", found[0] ? found : "clean");
#undef FOUND
}

int pool_check_fd(int fd, bool repair)
{
	struct pool_mapping m;
	int r;

	r = pool_mapping_open(fd, &m);
	if (r < 0)
		return r;
	r = pool_check_range(m.addr, m.size, &m.ops, repair);
	pool_mapping_close(&m);
	return r;
}
