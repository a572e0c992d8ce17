/* The per-uid table behind uid-limits.h, for its two halves: the accounting (uid-limits.c) and
 * the bounds applied to connections (conn-limits.c). Loop thread only. */
#pragma once

#include "uid-limits.h"

#include <ev.h>
#include <sys/queue.h>
#include <uthash.h>

struct conn;

/* Two uids served less than this far apart make the loop "contended": turns are then capped. */
#define CONTENDED_S 0.005

struct uid_entry {
	uid_t uid;
	unsigned conns, unauth, handles, pins, holders, parked;
	unsigned turn_iter, turn_served;
	LIST_HEAD(, conn) throttled; /* connections waiting for a parked reply of this uid to go */
	UT_hash_handle hh;
};

struct holder {
	pid_t pid;
	struct uid_entry *owner;
	UT_hash_handle hh;
};

struct limits_table {
	struct uid_entry *uids;
	struct holder *holders;
	unsigned unauth, handles, pins, n_holders, parked, throttled;
	uid_t last_uid;
	ev_tstamp contended_until;
	ev_tstamp last_log;
	uint64_t unlogged;
	uint64_t refused_connections, refused_requests, hello_timeouts, deferred_turns, throttled_total;
	uint64_t refused_by[DXP_LIMIT_COUNT];
};

/* The entry of uid (made when missing: NULL on ENOMEM); an entry that holds nothing goes at put. */
struct uid_entry *limits_uid_get(struct limits_table *t, uid_t uid);
void limits_uid_put(struct limits_table *t, struct uid_entry *e);
struct holder *limits_holder_find(struct limits_table *t, pid_t pid);
/* pid holds a slice now (counted once per process, against e). */
void limits_holder_note(struct limits_table *t, struct uid_entry *e, pid_t pid);
