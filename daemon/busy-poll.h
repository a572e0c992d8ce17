/* Adaptive busy polling of the event loop after a request (see busy-poll.c for why). */
#pragma once

struct daxpoold;

/* Prepares the idle watcher; call once after the loop exists. */
void busy_poll_init(struct daxpoold *d);
/* A request arrived: keep polling without sleeping for opts.busy_poll_us from now. */
void busy_poll_note_request(struct daxpoold *d);
/* Stops polling (shutdown). */
void busy_poll_stop(struct daxpoold *d);
