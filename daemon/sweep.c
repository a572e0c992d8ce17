/* The sweep of orphaned slice objects (files at free offsets, left by a crash between a record
 * and its object) while the daemon serves: a restart does not wait for a directory of a million
 * slice files to be read (a few seconds of readdir), it opens the pool and answers. An idle
 * watcher takes a batch of directory entries whenever the loop has nothing else to do; clients
 * are never affected by an orphan meanwhile (nothing grants one; a new slice at an orphan's
 * offset replaces it: backend_slice_create). */
#include "sweep.h"
#include "backend.h"
#include "daemon.h"
#include "log.h"

#include <stddef.h>
#include <time.h>

#define SWEEP_BATCH 256 /* entries per idle callback: well under a millisecond */

static double now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static void sweep_cb(struct ev_loop *loop, ev_idle *w, int revents)
{
	struct daxpoold *d = (struct daxpoold *)((char *)w - offsetof(struct daxpoold, sweep_idle));
	unsigned removed = 0;
	int r;

	(void)revents;
	r = backend_slice_sweep(d->backend, d->pool, SWEEP_BATCH, &removed);
	d->sweep_removed += removed;
	if (r > 0)
		return;
	ev_idle_stop(loop, w);
	if (r < 0)
		log_warning_errno(r, "sweeping orphaned slice objects: %s (they stay until the next start)",
				  backend_errormsg());
	else if (d->sweep_removed)
		log_notice("slice objects: %u orphans removed (files at free offsets) in %.0f ms",
			   d->sweep_removed, now_ms() - d->sweep_started_ms);
	else
		log_debug("slice objects: no orphans (%.0f ms)", now_ms() - d->sweep_started_ms);
}

void sweep_start(struct daxpoold *d)
{
	if (!d->backend || !d->pool)
		return;
	d->sweep_removed = 0;
	d->sweep_started_ms = now_ms();
	ev_idle_init(&d->sweep_idle, sweep_cb);
	ev_idle_start(d->loop, &d->sweep_idle);
}

void sweep_stop(struct daxpoold *d)
{
	if (d->loop && d->backend && d->pool)
		ev_idle_stop(d->loop, &d->sweep_idle);
}
