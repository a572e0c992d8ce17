/* Per-uid accounting and bounds; see uid-limits.h. */
#include "uid-limits.h"
#include "carve.h"
#include "conn.h"
#include "daemon.h"
#include "log.h"
#include "protocol.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <uthash.h>

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

static struct uid_entry *uid_get(struct limits_table *t, uid_t uid)
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
static void uid_put(struct limits_table *t, struct uid_entry *e)
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

int limits_conn_add(struct conn *c)
{
	struct limits_table *t = c->daemon->limits;
	struct uid_entry *e = uid_get(t, c->uid);

	if (!e)
		return -ENOMEM;
	c->uent = e;
	e->conns++;
	e->unauth++;
	t->unauth++;
	return 0;
}

/* Lets the connections of e that wait for a parked reply read again. */
static void uid_unthrottle(struct daxpoold *d, struct uid_entry *e)
{
	struct conn *c;

	while ((c = LIST_FIRST(&e->throttled))) {
		LIST_REMOVE(c, throttle_link);
		c->throttled = false;
		d->limits->throttled--;
		ev_io_start(d->loop, &c->io);
	}
}

void limits_conn_remove(struct conn *c)
{
	struct daxpoold *d = c->daemon;
	struct limits_table *t = d->limits;
	struct uid_entry *e = c->uent;
	unsigned handles = HASH_COUNT(c->slices), pins = HASH_COUNT(c->pins);

	if (!e)
		return;
	if (c->throttled) {
		LIST_REMOVE(c, throttle_link);
		c->throttled = false;
		t->throttled--;
	}
	if (c->pending)
		limits_unparked(c);
	if (!c->version) {
		e->unauth--;
		t->unauth--;
	}
	e->handles -= handles;
	t->handles -= handles;
	e->pins -= pins;
	t->pins -= pins;
	e->conns--;
	c->uent = NULL;
	uid_put(t, e);
}

bool limits_may_read(struct conn *c)
{
	struct daxpoold *d = c->daemon;
	struct limits_table *t = d->limits;
	const struct uid_limits *L = &d->opts.limits;
	struct uid_entry *e = c->uent;
	unsigned iter;

	if (!e)
		return true;
	if (!c->admin && L->inflight && e->parked >= L->inflight) {
		/* Its replies are not being read: reading more of its requests would only make
		 * more of them. The watcher stops until one of its parked replies goes. */
		ev_io_stop(d->loop, &c->io);
		c->throttled = true;
		LIST_INSERT_HEAD(&e->throttled, c, throttle_link);
		t->throttled++;
		t->throttled_total++;
		return false;
	}
	iter = ev_iteration(d->loop);
	if (e->turn_iter != iter) {
		e->turn_iter = iter;
		e->turn_served = 0;
	}
	if (e->turn_served >= L->turn_requests && ev_now(d->loop) < t->contended_until) {
		/* Level-triggered: the socket is reported again in the next turn. */
		t->deferred_turns++;
		return false;
	}
	e->turn_served++;
	if (t->last_uid != c->uid) {
		t->last_uid = c->uid;
		t->contended_until = ev_now(d->loop) + CONTENDED_S;
	}
	return true;
}

static struct holder *holder_find(struct limits_table *t, pid_t pid)
{
	struct holder *h;

	HASH_FIND(hh, t->holders, &pid, sizeof(pid), h);
	return h;
}

int limits_check_request(struct conn *c, uint16_t type, char *why, size_t why_size)
{
	struct limits_table *t = c->daemon->limits;
	const struct uid_limits *L = &c->daemon->opts.limits;
	struct uid_entry *e = c->uent;
	struct holder *h;
	unsigned kind, carving;

	if (!e || c->admin)
		return 0;
	switch (type) {
	case DXP_MSG_ALLOC:
	case DXP_MSG_OPEN:
		if (L->handles && e->handles >= L->handles) {
			snprintf(why, why_size, "uid %u holds %u slice handles, its limit "
				 "(limits.handles_per_uid): CLOSE or FREE some first", (unsigned)c->uid, e->handles);
			kind = DXP_LIMIT_HANDLES;
			break;
		}
		/* On a dynamic region every ALLOC waits for the carving worker (carve.c): its queue
		 * is fair between uids, and this bounds what one uid keeps waiting in it. */
		carving = type == DXP_MSG_ALLOC && c->daemon->carver ?
				  carver_pending_uid(c->daemon->carver, c->uid) : 0;
		if (L->carves && carving >= L->carves) {
			snprintf(why, why_size, "uid %u has %u ALLOCs waiting for their memory to be carved, "
				 "its limit (limits.carves_per_uid): retry when one is answered",
				 (unsigned)c->uid, carving);
			kind = DXP_LIMIT_CARVES;
			break;
		}
		h = c->pid > 0 ? holder_find(t, c->pid) : NULL;
		if (L->holders && (!h || h->owner != e) && e->holders >= L->holders) {
			snprintf(why, why_size, "uid %u has %u processes holding slices, its limit "
				 "(limits.holders_per_uid): a holder counts until it exits", (unsigned)c->uid,
				 e->holders);
			kind = DXP_LIMIT_HOLDERS;
			break;
		}
		return 0;
	case DXP_MSG_PIN:
		if (L->pins && e->pins >= L->pins) {
			snprintf(why, why_size, "uid %u has %u pins declared, its limit "
				 "(limits.pins_per_uid): UNPIN some first", (unsigned)c->uid, e->pins);
			kind = DXP_LIMIT_PINS;
			break;
		}
		return 0;
	default:
		return 0;
	}
	t->refused_requests++;
	t->refused_by[kind]++;
	return -EUSERS;
}

/* pid of uid e was granted a slice: it holds a pidfd in lease.c until it exits. */
static void holder_note(struct limits_table *t, struct uid_entry *e, pid_t pid)
{
	struct holder *h = holder_find(t, pid);

	if (h && h->owner == e)
		return;
	if (h) { /* a reused pid, now another uid's */
		h->owner->holders--;
		uid_put(t, h->owner);
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

void limits_after_request(struct conn *c, unsigned handles_before, unsigned pins_before, bool hello_before)
{
	struct limits_table *t = c->daemon->limits;
	struct uid_entry *e = c->uent;
	unsigned handles = HASH_COUNT(c->slices), pins = HASH_COUNT(c->pins);

	if (!e)
		return;
	e->handles += handles - handles_before;
	t->handles += handles - handles_before;
	e->pins += pins - pins_before;
	t->pins += pins - pins_before;
	if (!hello_before && c->version) {
		e->unauth--;
		t->unauth--;
	}
	if (handles > handles_before && c->pid > 0)
		holder_note(t, e, c->pid);
}

void limits_parked(struct conn *c)
{
	if (!c->uent)
		return;
	c->uent->parked++;
	c->daemon->limits->parked++;
}

void limits_unparked(struct conn *c)
{
	struct daxpoold *d = c->daemon;
	struct uid_entry *e = c->uent;
	const struct uid_limits *L = &d->opts.limits;

	if (!e)
		return;
	e->parked--;
	d->limits->parked--;
	if (!L->inflight || e->parked < L->inflight)
		uid_unthrottle(d, e);
}

void limits_hello_timeout(struct daxpoold *d)
{
	if (d->limits)
		d->limits->hello_timeouts++;
}

void limits_holder_gone(struct daxpoold *d, pid_t pid)
{
	struct limits_table *t = d->limits;
	struct holder *h = t ? holder_find(t, pid) : NULL;

	if (!h)
		return;
	HASH_DEL(t->holders, h);
	t->n_holders--;
	h->owner->holders--;
	uid_put(t, h->owner);
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
