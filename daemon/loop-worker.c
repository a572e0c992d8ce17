/* One worker thread beside the event loop; see loop-worker.h. */
#include "loop-worker.h"

#include <signal.h>

void loop_worker_init(struct loop_worker *w, struct ev_loop *loop,
		      void (*cb)(struct ev_loop *, ev_async *, int), void *data)
{
	w->loop = loop;
	w->started = false;
	w->stop = false;
	pthread_mutex_init(&w->lock, NULL);
	pthread_cond_init(&w->cond, NULL);
	ev_async_init(&w->async, cb);
	w->async.data = data;
	ev_async_start(loop, &w->async);
}

int loop_worker_start(struct loop_worker *w, void *(*fn)(void *), void *arg)
{
	sigset_t all, old;
	int r;

	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, &old);
	r = -pthread_create(&w->thread, NULL, fn, arg);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (r == 0)
		w->started = true;
	return r;
}

void loop_worker_notify(struct loop_worker *w)
{
	ev_async_send(w->loop, &w->async);
}

void loop_worker_done(struct loop_worker *w)
{
	if (w->started) {
		pthread_mutex_lock(&w->lock);
		w->stop = true;
		pthread_cond_broadcast(&w->cond);
		pthread_mutex_unlock(&w->lock);
		pthread_join(w->thread, NULL);
		w->started = false;
	}
	ev_async_stop(w->loop, &w->async);
	pthread_cond_destroy(&w->cond);
	pthread_mutex_destroy(&w->lock);
}
