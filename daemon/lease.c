/* Leases, holder processes, quarantine and reclaim; see lease.h for the rule. */
#include "lease.h"
#include "lease-internal.h"
#include "conn.h"
#include "daemon.h"
#include "uid-limits.h"
#include "log.h"
#include "macro.h"
#include "pool.h"
#include "zero.h"
#include "backend.h"

#include <libpmem2.h>
#include <limits.h>

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/pidfd.h>
#include <sys/queue.h>
#include <unistd.h>
#include <uthash.h>

static void lease_maybe_reclaim(struct lease *l);

/* The start time of process pid (field 22 of /proc/PID/stat), which tells a reused pid from the
 * process we knew. Returns 0, -ESRCH if there is no such process, or another negative errno
 * when we could not tell (e.g. EMFILE: out of descriptors says nothing about the process). */
static int proc_starttime(pid_t pid, uint64_t *ret)
{
	char path[64], buf[1024];
	unsigned long long start = 0;
	FILE *f;
	char *p;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	f = fopen(path, "re");
	if (!f)
		return errno == ENOENT || errno == ESRCH ? -ESRCH : -errno;
	if (!fgets(buf, sizeof(buf), f)) {
		fclose(f);
		return -ESRCH; /* it exited between open and read */
	}
	fclose(f);
	/* The command name may contain spaces and parentheses: fields start after the last ')'. */
	p = strrchr(buf, ')');
	if (!p)
		return -EIO;
	/* field 3 is state; starttime is field 22, i.e. the 20th after the ')' */
	if (sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %*u %*u %*d %*d %*d %*d %*d %*d %llu",
		   &start) != 1)
		return -EIO;
	*ret = start;
	return 0;
}

/* Whether pid is still the process that started at starttime: 1 yes, 0 no, or a negative errno
 * when it cannot be told now. */
int lease_proc_is(pid_t pid, uint64_t starttime)
{
	uint64_t now = 0;
	int r = proc_starttime(pid, &now);

	if (r == -ESRCH)
		return 0;
	if (r < 0)
		return r;
	return now == starttime;
}

static void lease_unlink(struct lease *l)
{
	struct lease_table *t = l->d->leases;

	ev_timer_stop(l->d->loop, &l->grace);
	HASH_DEL(t->by_record, l);
	free(l);
}


static void hold_drop(struct hold *h)
{
	struct lease *l = h->lease;

	if (h->pins) {
		l->pins -= h->pins;
		l->d->leases->pins -= h->pins;
		l->had_pins = true;
	}
	LIST_REMOVE(h, proc_link);
	LIST_REMOVE(h, lease_link);
	l->d->leases->n_holds--;
	/* After the unlinking: a compaction triggered by this line must not see the hold. */
	lease_journal_append(l->d->leases, '-', l->record_id, h->proc);
	free(h);
	if (LIST_EMPTY(&l->holds) && l->state == LEASE_LIVE) {
		lease_unlink(l); /* nothing to remember about a live slice nobody holds */
		return;
	}
	lease_maybe_reclaim(l);
}

static void proc_free(struct proc *p)
{
	struct lease_table *t = p->d->leases;

	while (!LIST_EMPTY(&p->holds))
		hold_drop(LIST_FIRST(&p->holds));
	if (p->pidfd >= 0) {
		ev_io_stop(p->d->loop, &p->exit_watcher);
		close(p->pidfd);
	} else {
		ev_timer_stop(p->d->loop, &p->poll_timer);
	}
	HASH_DEL(t->by_pid, p);
	limits_holder_gone(p->d, p->pid); /* its uid's holder slot (uid-limits.c) */
	conn_note_freed(p->d, sizeof(*p)); /* its leases' memory goes back with the next trim */
	free(p);
}

static void proc_exit_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	struct proc *p = w->data;

	log_debug("holder process %d exited; releasing its holds", (int)p->pid);
	proc_free(p);
}

/* Without pidfds (kernels before 5.3, valgrind): look at /proc/PID/stat now and then. A reused
 * pid has another start time, so it is never mistaken for the holder. */
#define PROC_POLL_INTERVAL_S 0.25

static void proc_poll_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct proc *p = w->data;
	int r = lease_proc_is(p->pid, p->starttime);

	/* Only a process known to be gone releases its holds: failing to look (out of
	 * descriptors, say) must not let its extents be reused while it may map them. */
	if (r < 0)
		log_debug_errno(r, "cannot look at holder process %d now (%m); asking again later", (int)p->pid);
	if (r == 0) {
		log_debug("holder process %d exited; releasing its holds", (int)p->pid);
		proc_free(p);
	}
}

int lease_proc_get(struct daxpoold *d, pid_t pid, uint64_t starttime, struct proc **ret)
{
	struct lease_table *t = d->leases;
	struct proc *p;

	HASH_FIND(hh, t->by_pid, &pid, sizeof(pid), p);
	if (p) {
		*ret = p;
		return 0;
	}
	p = calloc(1, sizeof(*p));
	if (!p)
		return -ENOMEM;
	p->d = d;
	p->pid = pid;
	p->starttime = starttime;
	if (!p->starttime) {
		int r = proc_starttime(pid, &p->starttime);

		if (r < 0) {
			free(p);
			return r; /* -ESRCH: gone already, so it holds nothing */
		}
	}
	LIST_INIT(&p->holds);
	p->pidfd = pidfd_open(pid, 0);
	if (p->pidfd < 0 && errno != ENOSYS) {
		int r = -errno;

		free(p);
		/* ESRCH: it is already gone, so it holds nothing. */
		return r;
	}
	if (p->pidfd >= 0) {
		fcntl(p->pidfd, F_SETFD, FD_CLOEXEC);
		ev_io_init(&p->exit_watcher, proc_exit_cb, p->pidfd, EV_READ);
		p->exit_watcher.data = p;
		ev_io_start(d->loop, &p->exit_watcher);
	} else {
		ev_timer_init(&p->poll_timer, proc_poll_cb, PROC_POLL_INTERVAL_S, PROC_POLL_INTERVAL_S);
		p->poll_timer.data = p;
		ev_timer_start(d->loop, &p->poll_timer);
	}
	HASH_ADD(hh, t->by_pid, pid, sizeof(p->pid), p);
	*ret = p;
	return 0;
}

int lease_get_or_make(struct daxpoold *d, uint64_t record_id, struct lease **ret)
{
	struct lease_table *t = d->leases;
	struct pool_record_info info;
	struct lease *l;
	int r;

	HASH_FIND(hh, t->by_record, &record_id, sizeof(record_id), l);
	if (l) {
		*ret = l;
		return 0;
	}
	r = pool_get(d->pool, record_id, &info);
	if (r < 0)
		return r;
	l = calloc(1, sizeof(*l));
	if (!l)
		return -ENOMEM;
	l->d = d;
	l->record_id = record_id;
	l->offset = info.offset;
	l->length = info.length;
	l->state = (info.flags & POOL_REC_QUARANTINED) ? LEASE_FREED : LEASE_LIVE;
	LIST_INIT(&l->holds);
	ev_timer_init(&l->grace, NULL, 0., 0.);
	HASH_ADD(hh, t->by_record, record_id, sizeof(l->record_id), l);
	*ret = l;
	return 0;
}

static struct hold *hold_find(struct lease *l, pid_t pid)
{
	struct hold *h;

	LIST_FOREACH(h, &l->holds, lease_link)
		if (h->proc->pid == pid)
			return h;
	return NULL;
}

int lease_hold_add(struct lease *l, struct proc *p, struct hold **ret)
{
	struct hold *h = hold_find(l, p->pid);

	if (!h) {
		h = calloc(1, sizeof(*h));
		if (!h)
			return -ENOMEM;
		h->lease = l;
		h->proc = p;
		LIST_INSERT_HEAD(&l->holds, h, lease_link);
		LIST_INSERT_HEAD(&p->holds, h, proc_link);
		l->d->leases->n_holds++;
		lease_journal_append(l->d->leases, '+', l->record_id, p);
	}
	*ret = h;
	return 0;
}

int lease_grant(struct daxpoold *d, uint64_t record_id, pid_t pid, struct lease **ret)
{
	struct lease *l;
	struct proc *p;
	struct hold *h;
	int r;

	r = lease_get_or_make(d, record_id, &l);
	if (r < 0)
		return r;
	if (l->state != LEASE_LIVE)
		return -ENOENT; /* freed: must never be handed out again */
	r = lease_proc_get(d, pid, 0, &p);
	if (r < 0) {
		if (LIST_EMPTY(&l->holds))
			lease_unlink(l);
		return r;
	}
	r = lease_hold_add(l, p, &h);
	if (r < 0)
		return r;
	h->refs++;
	*ret = l;
	return 0;
}

void lease_ungrant(struct daxpoold *d, struct lease *l, pid_t pid)
{
	struct hold *h = l ? hold_find(l, pid) : NULL;

	if (!h || h->refs == 0)
		return;
	if (--h->refs == 0 && h->pins == 0)
		hold_drop(h);
}

int lease_pin(struct daxpoold *d, struct lease *l, pid_t pid)
{
	struct hold *h = l ? hold_find(l, pid) : NULL;

	if (!h)
		return -ENOENT;
	h->pins++;
	l->pins++;
	l->had_pins = true;
	d->leases->pins++;
	return 0;
}

void lease_unpin(struct daxpoold *d, struct lease *l, pid_t pid)
{
	struct hold *h = l ? hold_find(l, pid) : NULL;

	if (!h || h->pins == 0)
		return;
	h->pins--;
	l->pins--;
	d->leases->pins--;
	if (h->refs == 0 && h->pins == 0)
		hold_drop(h);
}

/* Zeroed and persisted: the extent may go back to the allocator. */
static void lease_release_zeroed(struct lease *l)
{
	struct daxpoold *d = l->d;
	int r = pool_release(d->pool, l->record_id);

	if (r < 0)
		log_error_errno(r, "record %" PRIu64 " stays quarantined: %s", l->record_id, pool_errormsg());
	else
		log_debug("record %" PRIu64 " zeroed and released (%" PRIu64 " bytes)", l->record_id, l->length);
	lease_unlink(l);
}

static void zero_done(void *userdata, uint64_t record_id, int status)
{
	struct daxpoold *d = userdata;
	struct lease *l = lease_find(d, record_id);

	if (!l || l->state != LEASE_ZEROING)
		return;
	if (status < 0) {
		log_error_errno(status, "zeroing record %" PRIu64 " failed; it stays quarantined", record_id);
		lease_unlink(l);
		return;
	}
	lease_release_zeroed(l);
}

static void grace_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct lease *l = w->data;

	l->had_pins = false;
	l->state = LEASE_FREED;
	lease_maybe_reclaim(l);
}

static void lease_maybe_reclaim(struct lease *l)
{
	struct daxpoold *d = l->d;
	int r;

	if (l->state != LEASE_FREED || !LIST_EMPTY(&l->holds))
		return;
	if (l->had_pins && d->opts.pin_grace_ms > 0) {
		l->state = LEASE_GRACE;
		ev_timer_init(&l->grace, grace_cb, d->opts.pin_grace_ms / 1000., 0.);
		l->grace.data = l;
		ev_timer_start(d->loop, &l->grace);
		return;
	}
	l->state = LEASE_ZEROING;
	if (l->length <= ZERO_SYNC_MAX && zeroer_zero_now(d->zeroer, l->offset, l->length) == 0) {
		lease_release_zeroed(l);
		return;
	}
	r = zeroer_submit(d->zeroer, l->offset, l->length, l->record_id);
	if (r < 0) {
		log_error_errno(r, "cannot queue zeroing of record %" PRIu64 "; it stays quarantined", l->record_id);
		lease_unlink(l);
	}
}

int lease_free_by_sole_holder(struct daxpoold *d, const struct pool_record_info *rec, pid_t pid)
{
	struct lease *l = lease_find(d, rec->id);
	struct hold *h = l ? LIST_FIRST(&l->holds) : NULL;
	int r;

	/* Zeroed before the record update, so a crash in between leaves a live record whose
	 * memory is already zero. Restart reclaims an anonymous record; a named one would stay,
	 * its data gone though its FREE never completed. Named slices go through quarantine. */
	if (!(rec->flags & POOL_REC_ANONYMOUS))
		return 0;
	if (!h || LIST_NEXT(h, lease_link) || h->proc->pid != pid || h->refs != 1 || h->pins ||
	    l->state != LEASE_LIVE || l->had_pins || l->length > ZERO_SYNC_MAX)
		return 0;
	if (zeroer_zero_now(d->zeroer, l->offset, l->length) < 0)
		return 0;
	r = pool_free(d->pool, rec->id);
	if (r < 0)
		return r;
	hold_drop(h); /* the last hold of a live lease: unlinks it */
	return 1;
}

int lease_free(struct daxpoold *d, uint64_t record_id)
{
	struct lease *l;
	int r;

	r = pool_quarantine(d->pool, record_id);
	if (r < 0 && r != -EALREADY)
		return r;
	r = lease_get_or_make(d, record_id, &l);
	if (r < 0)
		return r;
	if (l->state == LEASE_LIVE)
		l->state = LEASE_FREED;
	lease_maybe_reclaim(l);
	return 0;
}

struct lease *lease_find(struct daxpoold *d, uint64_t record_id)
{
	struct lease *l;

	HASH_FIND(hh, d->leases->by_record, &record_id, sizeof(record_id), l);
	return l;
}

void leases_get_stats(struct daxpoold *d, struct lease_stats *ret)
{
	struct lease *l, *tmp;

	*ret = (struct lease_stats){ .pins = d->leases->pins, .procs = HASH_COUNT(d->leases->by_pid) };
	HASH_ITER(hh, d->leases->by_record, l, tmp)
		if (l->state != LEASE_LIVE)
			ret->leases_waiting++;
}

int leases_init(struct daxpoold *d)
{
	struct lease_table *t = calloc(1, sizeof(*t));
	int r;

	if (!t)
		return -ENOMEM;
	t->journal_fd = -1;
	d->leases = t;
	uint64_t ram_len = 0;
	void *ram = backend_ram_mapping(d->backend, &ram_len);

	r = zeroer_new(d->loop,
		       backend_isolation(d->backend) == BACKEND_ISOLATION_SLICE ? d->backend : NULL,
		       ram, ram_len, d->pool_fd, d->pool_size, zero_done, d, &d->zeroer);
	if (r < 0)
		return log_error_errno(r, "cannot start the zeroing worker: %s", pmem2_errormsg());
	return 0;
}

static int collect_orphans(const struct pool_record_info *info, void *userdata)
{
	struct daxpoold *d = userdata;

	/* Anonymous records belong to connections of a previous daemon instance: all gone. */
	if ((info->flags & (POOL_REC_ANONYMOUS | POOL_REC_QUARANTINED)) == 0)
		return 0;
	if (d->n_orphans < d->cap_orphans)
		d->orphans[d->n_orphans++] = info->id;
	return 0;
}

int leases_recover(struct daxpoold *d)
{
	struct pool_stats st;
	int r;

	r = lease_journal_load(d);
	if (r < 0 && r != -ENOENT)
		log_debug_errno(r, "holder journal unavailable");
	pool_get_stats(d->pool, &st);
	d->cap_orphans = st.records_anonymous + st.records_quarantined;
	if (d->cap_orphans == 0)
		return 0;
	d->orphans = calloc(d->cap_orphans, sizeof(*d->orphans));
	if (!d->orphans)
		return -ENOMEM;
	d->n_orphans = 0;
	pool_iterate(d->pool, 0, collect_orphans, d);
	for (size_t i = 0; i < d->n_orphans; i++) {
		r = lease_free(d, d->orphans[i]);
		if (r < 0)
			log_error_errno(r, "reclaiming record %" PRIu64 ": %s", d->orphans[i], pool_errormsg());
	}
	log_info("reclaiming %zu anonymous or quarantined extents from the previous run", d->n_orphans);
	free(d->orphans);
	d->orphans = NULL;
	return 0;
}

void leases_done(struct daxpoold *d)
{
	struct lease_table *t = d->leases;
	struct proc *p, *ptmp;
	struct lease *l, *ltmp;

	if (!t)
		return;
	/* Stop the worker first: pending extents stay quarantined on the device for next time. */
	zeroer_delete(&d->zeroer);
	HASH_ITER(hh, t->by_pid, p, ptmp) {
		while (!LIST_EMPTY(&p->holds)) {
			struct hold *h = LIST_FIRST(&p->holds);
			LIST_REMOVE(h, proc_link);
			LIST_REMOVE(h, lease_link);
			free(h);
		}
		if (p->pidfd >= 0) {
			ev_io_stop(d->loop, &p->exit_watcher);
			close(p->pidfd);
		} else {
			ev_timer_stop(d->loop, &p->poll_timer);
		}
		HASH_DEL(t->by_pid, p);
		free(p);
	}
	HASH_ITER(hh, t->by_record, l, ltmp) {
		ev_timer_stop(d->loop, &l->grace);
		HASH_DEL(t->by_record, l);
		free(l);
	}
	if (t->journal_map)
		munmap(t->journal_map, t->journal_size);
	if (t->journal_fd >= 0)
		close(t->journal_fd);
	free(t);
	d->leases = NULL;
}
