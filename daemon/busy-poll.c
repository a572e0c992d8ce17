/* Adaptive busy polling of the event loop after a request.
 *
 * Why: a client's next request usually follows its previous reply within a few microseconds.
 * If the loop sleeps in epoll_wait in between, the request has to wake a halted CPU (on a VM, an
 * IPI and a VM exit: 5–15 µs measured here), which costs more than the daemon's whole work for an
 * ALLOC. For busy_poll_us after the last request the loop therefore keeps an ev_idle watcher
 * active, which makes libev poll with a zero timeout instead of sleeping. Idle watchers run only
 * when nothing else is pending, so under load this costs nothing; on an idle daemon it costs at
 * most busy_poll_us of CPU after each burst of requests. 0 disables it.
 *
 * Not while the zeroer has a backlog: its worker runs at SCHED_IDLE, i.e. only on an idle CPU,
 * and a polling loop plus a client that polls for its reply (libdaxpool does, for up to 100 µs)
 * leave none on two vCPUs. The worker then takes its CPU share by preempting the loop for a
 * whole slice, and requests wait on it: 2 MiB grants took 55 µs instead of 11 µs. Sleeping in
 * epoll instead gives the worker the CPU at once, and a request preempts it at once. */
#include "busy-poll.h"
#include "daemon.h"
#include "zero.h"

#include <stddef.h>

static void busy_poll_idle_cb(struct ev_loop *loop, ev_idle *w, int revents)
{
	struct daxpoold *d = (struct daxpoold *)((char *)w - offsetof(struct daxpoold, busy_idle));

	(void)revents;
	/* ev_now is the time of the last poll: cheap, and recent enough for a window of µs. */
	if (ev_now(loop) >= d->busy_until || zeroer_has_backlog(d->zeroer))
		ev_idle_stop(loop, w);
}

void busy_poll_init(struct daxpoold *d)
{
	ev_idle_init(&d->busy_idle, busy_poll_idle_cb);
}

void busy_poll_note_request(struct daxpoold *d)
{
	if (d->opts.busy_poll_us == 0 || zeroer_has_backlog(d->zeroer))
		return;
	d->busy_until = ev_now(d->loop) + d->opts.busy_poll_us * 1e-6;
	if (!ev_is_active(&d->busy_idle))
		ev_idle_start(d->loop, &d->busy_idle);
}

void busy_poll_stop(struct daxpoold *d)
{
	if (d->loop)
		ev_idle_stop(d->loop, &d->busy_idle);
}
