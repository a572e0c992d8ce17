/*
 * Leases: who may still have a slice mapped or pinned, and when a freed extent may be reused.
 *
 * The rule (docs/SECURITY.md, "Reuse"): an extent that was handed out goes back to the allocator
 * only when (1) it was freed (FREE, or its anonymous owner connection went away), (2) no process
 * that received its fd still holds it — each holder either sent CLOSE for it or has exited — and
 * (3) if pins were ever declared on it, a grace period passed after the last holder exited (the
 * kernel may release io_uring/RDMA pins asynchronously after exit). Then it is zeroed in the
 * background, and only after the zeros are persisted is it released in the pool.
 *
 * Until then the record stays QUARANTINED in the pool, so a daemon crash cannot lose the rule: at
 * start the daemon reloads holders from the holder journal in the runtime directory (a tmpfs,
 * cleared at reboot, when every holder is necessarily gone) and keeps waiting for live ones.
 */
#pragma once

#include <ev.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

struct daxpoold;
struct pool_record_info;
struct lease;
struct proc;

struct lease_stats {
	uint64_t leases_waiting; /* freed, waiting for holders or pins */
	uint64_t pins;
	uint64_t procs;
};

int leases_init(struct daxpoold *d);
void leases_done(struct daxpoold *d);

/* Loads the holder journal and starts reclaiming anonymous and quarantined records left by a
 * previous daemon instance. Called once, after the pool is open. */
int leases_recover(struct daxpoold *d);

/* The process pid (a client) gets record_id's fd: it becomes a holder. */
int lease_grant(struct daxpoold *d, uint64_t record_id, pid_t pid, struct lease **ret);
/* The process no longer maps the slice (CLOSE, or the grant's reply could not be sent). */
void lease_ungrant(struct daxpoold *d, struct lease *l, pid_t pid);
/* Declared pins of process pid on the lease. */
int lease_pin(struct daxpoold *d, struct lease *l, pid_t pid);
void lease_unpin(struct daxpoold *d, struct lease *l, pid_t pid);
/* The slice was freed: quarantine it in the pool, reclaim when safe. */
int lease_free(struct daxpoold *d, uint64_t record_id);
/* FREE or CLOSE of an anonymous slice by process pid, which has unmapped it (the protocol's
 * rule). When pid is its only holder, through one grant, with no pin ever declared, and the
 * slice is small enough to zero inline (ZERO_SYNC_MAX), it is zeroed and freed in one record
 * update instead of quarantine + release, and pid's hold goes: returns 1. Returns 0 when
 * lease_free must do it (nothing changed; always for a named slice, which a crash between the
 * zeroing and the update would leave zeroed), or a negative errno from the pool (nothing
 * changed). Not for a connection that merely closed: its process may still map the slice. */
int lease_free_by_sole_holder(struct daxpoold *d, const struct pool_record_info *rec, pid_t pid);
/* Lease of a record, or NULL. */
struct lease *lease_find(struct daxpoold *d, uint64_t record_id);

void leases_get_stats(struct daxpoold *d, struct lease_stats *ret);
