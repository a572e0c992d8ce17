/*
 * Metrics in the Prometheus text exposition format (version 0.0.4), for node_exporter's textfile
 * collector: the daemon has no network by design, so it writes a file (`metrics_file` in the
 * config, `--metrics-file`) and node_exporter serves it. Counters of requests by type and
 * result, errors by type and errno, grants and frees, and a latency histogram per request type,
 * fed by one call at the end of each request's dispatch; gauges of the pool (what STAT reports,
 * plus quarantined bytes, live slices and bytes by owner uid, holders, clients) taken when the
 * file is written. docs/METRICS.md lists every series.
 */
#pragma once

#include <stdint.h>
#include <stdio.h>

struct daxpoold;

/* Allocates the counters; with opts.metrics_file set, writes the file at once and then every
 * opts.metrics_interval_s seconds (one ev_timer). 0 or a negative errno. */
int metrics_start(struct daxpoold *d);
/* Stops the timer, removes the file (a stopped daemon has no metrics, not stale ones), frees. */
void metrics_stop(struct daxpoold *d);

/* Monotonic nanoseconds: what a request's start is measured in. */
uint64_t metrics_clock_ns(void);
/* One request has been answered: its type, the status of its reply (0 or -errno) and when
 * dispatch began. A no-op before metrics_start. */
void metrics_request(struct daxpoold *d, uint16_t type, int32_t status, uint64_t start_ns);

/* Writes the whole exposition to f (the file's content). 0 or a negative errno. */
int metrics_print(struct daxpoold *d, FILE *f);
/* Writes it to path atomically: a temporary file in the same directory, renamed over path. */
int metrics_write_file(struct daxpoold *d, const char *path);
