/* daxpool-bench: shared helpers of the suites. */
#pragma once

#include <json-c/json.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "hugepages.h"

struct bench_opts {
	const char *dir; /* where pool files go (tmpfs by default) */
	const char *system; /* "all", "daxpool" or "pmemobj" */
	uint64_t counts[8];
	unsigned ncounts;
	uint64_t ops; /* churn operations per measurement */
	const char *daemon; /* service: daxpoold to start; NULL = find it (service.c) */
	double duration; /* service: seconds per throughput point; 0 = default */
	int quick; /* service: short points for CI */
	int dir_given; /* --dir was on the command line */
	int counts_given; /* --counts was on the command line */
	const char *device; /* provision, pin, zero: a device-dax device to use instead of a file */
	const char *region; /* provision: NVDIMM region for a namespace per allocation (libndctl) */
	uint64_t bytes; /* provision, pin, zero: bytes per measurement; 0 = default (1 GiB) */
	unsigned reps; /* repetitions per point; 0 = the suite's default */
};

/* Prints one row {"suite","system","metric","value","unit","params"} as a JSON line; takes params. */
void bench_row(const char *suite, const char *system, const char *metric, double value,
	       const char *unit, json_object *params);
uint64_t bench_now_ns(void);

/*
 * A progress line on stderr for a long step, on a terminal only: "WHAT: DONE/TOTAL UNIT (P%),
 * RATE UNIT/s, ETA M:SS", drawn after $DAXPOOL_PROGRESS_DELAY_MS (default 500) and at most four
 * times a second, erased by bench_progress_end. Without a terminal on stderr nothing is
 * printed, and stdout (the JSON rows) never carries it. One thread draws.
 */
struct bench_progress {
	const char *what, *unit;
	uint64_t total, t0, delay_ns, last_ns;
	bool tty, drawn;
};
void bench_progress_begin(struct bench_progress *p, const char *what, uint64_t total, const char *unit);
void bench_progress_update(struct bench_progress *p, uint64_t done);
void bench_progress_end(struct bench_progress *p);
/* Sorts samples and returns the q-quantile (0..1). */
uint64_t bench_quantile(uint64_t *samples, uint64_t n, double q);

/* Latency samples of one measurement, growable: samples_add returns 0 or -ENOMEM. */
struct samples {
	uint64_t *v;
	uint64_t n, cap;
};
int samples_add(struct samples *s, uint64_t x);
void samples_free(struct samples *s);

/* Closed-loop clients against the daxpoold on sock (bench/clients.c): each of `clients` threads
 * has its own connection and repeats, for duration_s, an ALLOC + FREE of an anonymous slice of
 * size bytes aligned to size, or a PING when size is 0, timing each. An ALLOC refused with
 * -ENOSPC is counted, retried after 100 us and not timed. 0 or -errno (message printed); on
 * success lat holds every pair's latency in ns and is the caller's to samples_free. */
struct bench_clients {
	double pairs_s; /* completed pairs (or pings) per second of wall time */
	struct samples lat;
	uint64_t pairs, enospc;
	double steal_pct; /* CPU steal while the clients ran (bench_cpu_steal_pct) */
};
int bench_clients_run(const char *sock, unsigned clients, uint64_t size, double duration_s,
		      struct bench_clients *ret);

/* ---- helpers of the newer suites (bench/util.c) ---- */
struct daxpool;

/* daxpoold to start: --daemon, $DAXPOOLD, ../daemon/daxpoold beside this binary, the build's. */
const char *bench_daxpoold(const struct bench_opts *o);
/* Starts daxpoold with args (NULL-terminated, after the program name; its stdout goes to our
 * stderr) and waits until it answers on sock. Returns 0 or -errno (message printed). */
int bench_daemon_start(const struct bench_opts *o, const char *sock, const char *const *args,
		       pid_t *ret_pid);
/* Like bench_daemon_start, placed as systemd places a service: in a session of its own (so the
 * scheduler's per-session groups do not share its CPU with the bench's processes), killed when
 * the bench dies. */
int bench_service_start(const struct bench_opts *o, const char *sock, const char *const *args,
			pid_t *ret_pid);
/* SIGTERM, SIGKILL after 10 s; returns the exit status, or -errno; sets *pid to 0. */
int bench_daemon_stop(pid_t *pid);
/* A daxpoold for a suite in a new temp dir DIR/daxpool-bench-TAG-XXXXXX (into dir): on
 * o->device when given, else on an emulated 4K pool file of pool_bytes, with --isolation
 * isolation unless NULL; connected to *ret_dp.
 * 0 or -errno; whatever it got so far is undone by bench_pool_daemon_stop. */
int bench_pool_daemon_start(const struct bench_opts *o, const char *tag, uint64_t pool_bytes,
			    const char *isolation, char *dir, size_t dir_size, pid_t *ret_pid,
			    struct daxpool **ret_dp);
/* Disconnects, stops the daemon if it started, removes dir; the daemon's exit status. */
int bench_pool_daemon_stop(struct daxpool **dp, pid_t *pid, const char *dir);
/* Polls STAT every 100 us until the zeroing backlog is empty; returns the ns it took or -errno.
 * ret_pending (may be NULL) gets the backlog found by the first poll. */
int64_t bench_drain_zeroing(struct daxpool *dp, uint64_t timeout_ns, uint64_t *ret_pending);
void bench_sleep_ns(uint64_t ns);
double bench_loadavg_1m(void);
/* CPU time of the whole machine from the first line of /proc/stat, in clock ticks. "steal" is
 * time our vCPUs wanted to run while the hypervisor ran someone else: on a shared VM it, not our
 * code, explains a bad latency tail, so every latency point reports it. */
struct bench_cpu {
	uint64_t steal, total;
};
void bench_cpu_sample(struct bench_cpu *c);
/* Steal between two samples as a percentage of all CPU time (every CPU, idle included), or -1
 * when /proc/stat could not be read. */
double bench_cpu_steal_pct(const struct bench_cpu *from, const struct bench_cpu *to);
/* Marks the start of the suite (main calls it): bench_machine_row reports the steal since then. */
void bench_suite_begin(void);
/* A temp dir DIR/daxpool-bench-TAG-XXXXXX into buf; 0 or -errno. bench_rmdir removes it. */
int bench_mkdtemp(const char *dir, const char *tag, char *buf, size_t size);
void bench_rmdir(const char *dir);
/* A row saying a measurement could not run here, and why (value 0, params.skipped). */
void bench_skip_row(const char *suite, const char *system, const char *metric, const char *why,
		    json_object *params);
/* The suite's closing row: system "machine", metric loadavg_1m_start, params with the rest
 * (nproc, loadavg_1m_end, cpu_steal_pct over the whole suite). */
void bench_machine_row(const char *suite, double load_start, json_object *params);
/* A target row: system "target", value 1 met / 0 missed, measured and threshold in params. */
void bench_target_row(const char *suite, const char *metric, const char *what, double measured,
		      double threshold, const char *unit, int pass);

/* Huge pages reserved for the suite's lifetime (nr_hugepages raised, put back after), through
 * lib/machine/hugepages.h, which the tests use too. All zero: nothing held. */
struct bench_hugepages {
	struct hugepages res;
};
/* Makes sure `want` free pages of page_size exist; NULL, or why not. */
const char *bench_hugepages_get(struct bench_hugepages *h, uint64_t page_size, long want);
void bench_hugepages_put(struct bench_hugepages *h);
/* Rss, RssAnon (from /proc/PID/status) and Pss (smaps_rollup) in bytes; 0 or -errno. */
int bench_proc_memory(pid_t pid, uint64_t *ret_rss, uint64_t *ret_anon, uint64_t *ret_pss);

int suite_alloc(const struct bench_opts *o);
int suite_service(const struct bench_opts *o);
int suite_touch(const struct bench_opts *o);
int suite_provision(const struct bench_opts *o);
int suite_pin(const struct bench_opts *o);
int suite_zero(const struct bench_opts *o);
int suite_scale(const struct bench_opts *o);
int suite_isolation(const struct bench_opts *o);
int suite_fairness(const struct bench_opts *o);
