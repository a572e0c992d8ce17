/* The sweep of orphaned slice objects while the daemon serves (see sweep.c). */
#pragma once

struct daxpoold;

/* Starts sweeping once the daemon serves (no-op without a pool, or where reconcile did it). */
void sweep_start(struct daxpoold *d);
/* Stops an unfinished sweep (shutdown); what is left stays for the next start. */
void sweep_stop(struct daxpoold *d);
