/*
 * One worker thread beside the event loop: what the zeroing worker (zero.c) and the carving
 * worker (carve.c) share. The owner keeps its own queues under lock; the worker waits on cond
 * until it has work or stop is set, and wakes the loop with loop_worker_notify, which runs the
 * owner's ev_async callback there.
 *
 * Lifecycle: loop_worker_init (lock, cond, the ev_async started) before anything can fail, then
 * loop_worker_start; loop_worker_done undoes whatever was done (safe after init alone): it stops
 * and joins the thread, stops the ev_async and destroys lock and cond.
 */
#pragma once

#include <ev.h>
#include <pthread.h>
#include <stdbool.h>

struct loop_worker {
	struct ev_loop *loop;
	ev_async async;
	pthread_t thread;
	bool started;
	bool stop; /* under lock: the worker leaves its loop */
	pthread_mutex_t lock;
	pthread_cond_t cond;
};

void loop_worker_init(struct loop_worker *w, struct ev_loop *loop,
		      void (*cb)(struct ev_loop *, ev_async *, int), void *data);
/* Starts fn(arg) with every signal blocked (the loop's ev_signal watchers take them). 0 or -errno. */
int loop_worker_start(struct loop_worker *w, void *(*fn)(void *), void *arg);
/* From the worker, with or without lock held: the loop runs the ev_async callback soon. */
void loop_worker_notify(struct loop_worker *w);
void loop_worker_done(struct loop_worker *w);
