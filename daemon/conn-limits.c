/* The per-uid bounds applied to one connection (declared in conn.h): admission of its requests,
 * its turn in the loop, its parked replies and the throttling they cause. The accounting they
 * rest on is uid-limits.c's. */
#include "carve.h"
#include "conn.h"
#include "daemon.h"
#include "log.h"
#include "protocol.h"
#include "uid-limits-internal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

int limits_conn_add(struct conn *c)
{
	struct limits_table *t = c->daemon->limits;
	struct uid_entry *e = limits_uid_get(t, c->uid);

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
	limits_uid_put(t, e);
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
		h = c->pid > 0 ? limits_holder_find(t, c->pid) : NULL;
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
		limits_holder_note(t, e, c->pid);
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
