/* Per-uid accounting and bounds; see uid-limits.h. */
#include "uid-limits.h"
#include "uid-limits-internal.h"
#include "carve.h"
#include "daemon.h"
#include "log.h"
#include "protocol.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <uthash.h>

int limits_init(struct daxpoold *d)
{
	if (d->limits)
		return 0;
	d->limits = calloc(1, sizeof(*d->limits));
	if (!d->limits)
		return -ENOMEM;
	d->limits->last_uid = (uid_t)-1;
	return 0;
}

void limits_done(struct daxpoold *d)
{
	struct limits_table *t = d->limits;
	struct uid_entry *e, *etmp;
	struct holder *h, *htmp;

	if (!t)
		return;
	HASH_ITER(hh, t->holders, h, htmp) {
		HASH_DEL(t->holders, h);
		free(h);
	}
	HASH_ITER(hh, t->uids, e, etmp) {
		HASH_DEL(t->uids, e);
		free(e);
	}
	free(t);
	d->limits = NULL;
}

static struct uid_entry *uid_find(struct limits_table *t, uid_t uid)
{
	struct uid_entry *e;

	HASH_FIND(hh, t->uids, &uid, sizeof(uid), e);
	return e;
}

struct uid_entry *limits_uid_get(struct limits_table *t, uid_t uid)
{
	struct uid_entry *e = uid_find(t, uid);

	if (e)
		return e;
	e = calloc(1, sizeof(*e));
	if (!e)
		return NULL;
	e->uid = uid;
	e->turn_iter = (unsigned)-1;
	LIST_INIT(&e->throttled);
	HASH_ADD(hh, t->uids, uid, sizeof(e->uid), e);
	return e;
}

/* An entry that holds nothing goes: memory follows what uids hold, not how many came by. */
void limits_uid_put(struct limits_table *t, struct uid_entry *e)
{
	if (e->conns || e->holders || e->parked || !LIST_EMPTY(&e->throttled))
		return;
	HASH_DEL(t->uids, e);
	free(e);
}

void limits_stat_fill(struct daxpoold *d, struct dxp_stat_reply *st)
{
	const struct uid_limits *L = &d->opts.limits;
	struct limits_stats s;

	limits_get_stats(d, &s);
	st->has_limits = true;
	st->limits = (struct dxp_stat_limits){
		.max_clients = d->opts.max_clients,
		.reserved_admin = limits_reserved_admin(d),
		.connections_per_uid = L->connections,
		.unauthenticated_per_uid = L->unauthenticated,
		.hello_timeout_ms = L->hello_timeout_ms,
		.handles_per_uid = L->handles,
		.holders_per_uid = L->holders,
		.pins_per_uid = L->pins,
		.inflight_per_uid = L->inflight,
		.requests_per_turn = L->turn_requests,
		.clients = s.clients,
		.unauthenticated = s.unauthenticated,
		.uids = s.uids,
		.handles = s.handles,
		.conn_pins = s.pins,
		.holders = s.holders,
		.parked = s.parked,
		.throttled = s.throttled,
		.busiest_uid = s.busiest_uid,
		.busiest_uid_connections = s.busiest_uid_connections,
		.refused_connections = s.refused_connections,
		.refused_requests = s.refused_requests,
		.hello_timeouts = s.hello_timeouts,
		.deferred_turns = s.deferred_turns,
		.throttled_total = s.throttled_total,
		.carves_per_uid = L->carves,
		.carves_pending = s.carves_pending,
	};
	for (size_t i = 0; i < DXP_LIMIT_COUNT; i++)
		st->limits.refused_by[i] = s.refused_by[i];
	st->has_limit_detail = true;
}

unsigned limits_reserved_admin(const struct daxpoold *d)
{
	unsigned r = d->opts.limits.reserved_admin, cap = d->opts.max_clients / 4;

	return r < cap ? r : cap;
}

int limits_admit_connection(struct daxpoold *d, uid_t uid, bool admin, char *why, size_t why_size)
{
	struct limits_table *t = d->limits;
	const struct uid_limits *L = &d->opts.limits;
	unsigned max = d->opts.max_clients, reserved = limits_reserved_admin(d);
	struct uid_entry *e = uid_find(t, uid);
	unsigned kind;

	if (d->n_conns >= max) {
		snprintf(why, why_size, "daxpoold serves at most %u clients", max);
		kind = DXP_LIMIT_MAX_CLIENTS;
		goto refuse;
	}
	if (admin)
		return 0;
	if (d->n_conns >= max - reserved) {
		snprintf(why, why_size, "daxpoold serves at most %u clients (max_clients; the last %u are "
			 "reserved for administrators)", max, reserved);
		kind = DXP_LIMIT_RESERVED_ADMIN;
		goto refuse;
	}
	if (e && L->connections && e->conns >= L->connections) {
		snprintf(why, why_size, "uid %u has %u connections, its limit (limits.connections_per_uid)",
			 (unsigned)uid, e->conns);
		kind = DXP_LIMIT_CONNECTIONS;
		goto refuse;
	}
	if (e && L->unauthenticated && e->unauth >= L->unauthenticated) {
		snprintf(why, why_size, "uid %u has %u connections that have not sent HELLO, its limit "
			 "(limits.unauthenticated_per_uid)", (unsigned)uid, e->unauth);
		kind = DXP_LIMIT_UNAUTHENTICATED;
		goto refuse;
	}
	return 0;
refuse:
	t->refused_connections++;
	t->refused_by[kind]++;
	return -EUSERS;
}

struct holder *limits_holder_find(struct limits_table *t, pid_t pid)
{
	struct holder *h;

	HASH_FIND(hh, t->holders, &pid, sizeof(pid), h);
	return h;
}

/* pid of uid e was granted a slice: it holds a pidfd in lease.c until it exits. */
void limits_holder_note(struct limits_table *t, struct uid_entry *e, pid_t pid)
{
	struct holder *h = limits_holder_find(t, pid);

	if (h && h->owner == e)
		return;
	if (h) { /* a reused pid, now another uid's */
		h->owner->holders--;
		limits_uid_put(t, h->owner);
	} else {
		h = calloc(1, sizeof(*h));
		if (!h)
			return; /* not counted: the bound is then looser, never stricter */
		h->pid = pid;
		HASH_ADD(hh, t->holders, pid, sizeof(h->pid), h);
		t->n_holders++;
	}
	h->owner = e;
	e->holders++;
}

void limits_hello_timeout(struct daxpoold *d)
{
	if (d->limits)
		d->limits->hello_timeouts++;
}

void limits_holder_gone(struct daxpoold *d, pid_t pid)
{
	struct limits_table *t = d->limits;
	struct holder *h = t ? limits_holder_find(t, pid) : NULL;

	if (!h)
		return;
	HASH_DEL(t->holders, h);
	t->n_holders--;
	h->owner->holders--;
	limits_uid_put(t, h->owner);
	free(h);
}

bool limits_should_log(struct daxpoold *d, uint64_t *suppressed)
{
	struct limits_table *t = d->limits;
	ev_tstamp now = ev_now(d->loop);

	*suppressed = 0;
	if (!t)
		return true;
	if (t->last_log && now - t->last_log < 1.0) {
		t->unlogged++;
		return false;
	}
	t->last_log = now;
	*suppressed = t->unlogged;
	t->unlogged = 0;
	return true;
}

void limits_get_stats(struct daxpoold *d, struct limits_stats *ret)
{
	struct limits_table *t = d->limits;
	struct uid_entry *e, *etmp;

	*ret = (struct limits_stats){ .clients = d->n_conns, .busiest_uid = (uint32_t)-1 };
	if (!t)
		return;
	ret->unauthenticated = t->unauth;
	ret->uids = HASH_COUNT(t->uids);
	ret->handles = t->handles;
	ret->pins = t->pins;
	ret->holders = t->n_holders;
	ret->parked = t->parked;
	ret->throttled = t->throttled;
	HASH_ITER(hh, t->uids, e, etmp) {
		if (e->conns > ret->busiest_uid_connections) {
			ret->busiest_uid_connections = e->conns;
			ret->busiest_uid = (uint32_t)e->uid;
		}
	}
	ret->refused_connections = t->refused_connections;
	ret->refused_requests = t->refused_requests;
	ret->hello_timeouts = t->hello_timeouts;
	ret->deferred_turns = t->deferred_turns;
	ret->throttled_total = t->throttled_total;
	for (size_t i = 0; i < DXP_LIMIT_COUNT; i++)
		ret->refused_by[i] = t->refused_by[i];
	ret->carves_pending = d->carver ? carver_pending(d->carver) : 0;
}
