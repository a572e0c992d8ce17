/*
 * Per-uid bounds: what one user may hold of the daemon at once, so that no tenant can deny
 * service to another (docs/SECURITY.md "Service", docs/CONFIG.md "limits").
 *
 * Every connection is charged to the uid the kernel reports for its peer (SO_PEERCRED): its
 * connection, until HELLO its unauthenticated slot, its slice handles and declared pins, a reply
 * parked because it does not read, and every holder process (a process that was granted a
 * slice costs the daemon a pidfd until it exits, even after its connection closed). A uid at a
 * bound is refused with -EUSERS and a message naming the config key; administrators (root and
 * the admin group) are counted but never refused by a per-uid bound, and only they may take the
 * last reserved_admin connection slots of max_clients.
 *
 * Fair service: while requests of more than one uid are being served, each uid gets at most
 * requests_per_turn requests per turn of the event loop; the rest of its ready connections wait
 * for the next turn (the socket stays readable, so they are reported again).
 *
 * Memory: one entry per uid that has a connection or a holder process, one per holder process.
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "protocol.h"

struct daxpoold;

/* What STAT reports (dispatch.c through limits_get_stats). */
struct limits_stats {
	uint32_t clients, unauthenticated, uids, handles, pins, holders, parked, throttled;
	uint32_t busiest_uid, busiest_uid_connections; /* (uint32_t)-1, 0 when nobody is connected */
	uint64_t refused_connections; /* at connections_per_uid, unauthenticated_per_uid or the
				       * reserved administrator slots */
	uint64_t refused_requests;    /* ALLOC/OPEN/PIN at handles_, holders_ or pins_per_uid */
	uint64_t hello_timeouts;
	uint64_t deferred_turns;      /* reads put off to the next loop turn for fairness */
	uint64_t throttled_total;     /* connections held back because their uid had inflight parked replies */
	uint64_t refused_by[DXP_LIMIT_COUNT]; /* the refusals above, by the bound that refused */
	uint32_t carves_pending;      /* ALLOCs waiting for a carved object (carve.c) */
};

int limits_init(struct daxpoold *d);
void limits_done(struct daxpoold *d);

/* The connection limits in effect for a peer: 0, or -EUSERS with a message for the client in
 * why (the connection is then refused). Called before the connection is counted. */
int limits_admit_connection(struct daxpoold *d, uid_t uid, bool admin, char *why, size_t why_size);
/* A connection closed for not sending HELLO in time. */
void limits_hello_timeout(struct daxpoold *d);
/* A holder process is gone (lease.c): its uid's holder slot is free again. */
void limits_holder_gone(struct daxpoold *d, pid_t pid);

/* Refusals are logged at most once a second, whatever a flood does: true when this one may be,
 * with the number left unlogged since the last in *suppressed. */
bool limits_should_log(struct daxpoold *d, uint64_t *suppressed);

void limits_get_stats(struct daxpoold *d, struct limits_stats *ret);
struct dxp_stat_reply;
/* The STAT reply's limits block: the bounds in effect and limits_get_stats. */
void limits_stat_fill(struct daxpoold *d, struct dxp_stat_reply *st);
/* The effective number of reserved administrator slots (at most a quarter of max_clients). */
unsigned limits_reserved_admin(const struct daxpoold *d);
