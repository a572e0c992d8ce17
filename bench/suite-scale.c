/*
 * Suite "scale": daxpoold from 1 to 256 clients and from a few to 1M live allocations.
 *
 * The suite formats its own pool file (table capacity for the largest live count; on disk in
 * /var/tmp unless --dir: 1M live 4 KiB slices are 4 GiB, which tmpfs would hold in RAM) and starts
 * daxpoold on it (emulated 4K backend). Then:
 *  - clients: alloc+free pairs of anonymous 4 KiB slices from 1, 2, 4, ... 256 threads, each with
 *    its own connection, --duration seconds per point (default 1; --quick 0.2), at the largest
 *    live count (last: see below): pairs/s and p50/p99 of a pair;
 *  - live allocations: the pool is filled (4 threads, named 4 KiB slices: a named slice stays
 *    allocated after daxpool_close, so the client holds no fd per slice) to each count of
 *    --counts (default 1000,100000,1000000); at each: 1- and 8-client pairs as above, and the
 *    daemon's memory from outside (/proc/PID/status RssAnon = its heap and stacks, smaps_rollup
 *    Pss which also counts the pool's mapped table pages) minus the same after start-up, per
 *    live allocation. Target: <= 256 bytes of anonymous memory per live allocation.
 *  - restart: at the largest count the daemon is killed and started again on the pool, three
 *    times; fork to first answer. Target: < 1 s (open and recovery of every record).
 *   daxpool-bench scale [--dir DIR] [--counts N,N,...] [--duration S] [--quick]
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bench.h"
#include "daxpool.h"
#include "macro.h"
#include "pool.h"

#define SUITE "scale"
#define SIZE_4K (UINT64_C(4) << 10)
#define MiB (UINT64_C(1) << 20)
#define MAX_CLIENTS 256
#define FILLERS 4
#define TARGET_BYTES_PER_LIVE 256.0
#define TARGET_RESTART_MS 1000.0

struct scale {
	char dir[PATH_MAX], sock[PATH_MAX + 8], pool[PATH_MAX + 8];
	char size[32]; /* of the pool file, for daxpoold --size */
	pid_t pid;
	double duration_s;
	uint64_t live; /* named slices allocated so far */
	uint64_t anon0, pss0; /* the daemon's memory before any slice */
};

/* ---- alloc+free pairs from N clients ---- */

struct point {
	double pairs_s, p50, p99;
};

static int pairs(struct scale *s, unsigned clients, struct point *pt)
{
	struct bench_clients bc;
	int r = bench_clients_run(s->sock, clients, SIZE_4K, s->duration_s, &bc);

	if (r < 0)
		return r;
	pt->pairs_s = bc.pairs_s;
	pt->p50 = (double)bench_quantile(bc.lat.v, bc.lat.n, 0.50);
	pt->p99 = (double)bench_quantile(bc.lat.v, bc.lat.n, 0.99);
	samples_free(&bc.lat);
	return 0;
}

static json_object *params_new(const struct scale *s, unsigned clients, uint64_t live)
{
	json_object *p = json_object_new_object();

	json_object_object_add(p, "test", json_object_new_string("alloc+free 4K anonymous"));
	json_object_object_add(p, "clients", json_object_new_int((int)clients));
	json_object_object_add(p, "live", json_object_new_int64((int64_t)live));
	json_object_object_add(p, "duration_s", json_object_new_double(s->duration_s));
	return p;
}

static void report_point(const struct scale *s, unsigned clients, const struct point *pt)
{
	bench_row(SUITE, "daxpoold", "pair_throughput", pt->pairs_s, "pairs/s",
		  params_new(s, clients, s->live));
	bench_row(SUITE, "daxpoold", "pair_latency_p50", pt->p50, "ns", params_new(s, clients, s->live));
	bench_row(SUITE, "daxpoold", "pair_latency_p99", pt->p99, "ns", params_new(s, clients, s->live));
}

/* ---- filling the pool with named slices ---- */

struct filler {
	pthread_t thread;
	const char *sock;
	uint64_t first, count;
	int error;
	uint64_t done; /* allocations made so far (atomic: the main thread reads it for progress) */
	bool finished; /* atomic, set last */
};

static void *filler_main(void *arg)
{
	struct filler *f = arg;
	struct daxpool *dp = NULL;
	char name[32];
	int r = daxpool_connect(f->sock, &dp);

	for (uint64_t i = 0; r == 0 && i < f->count; i++) {
		struct daxpool_slice *sl = NULL;

		snprintf(name, sizeof(name), "scale-%08llu", (unsigned long long)(f->first + i));
		r = daxpool_alloc(dp, name, SIZE_4K, DAXPOOL_ALIGN_4K, 0600, 0, &sl);
		if (r == 0)
			r = daxpool_close(dp, &sl);
		if (r == 0)
			__atomic_add_fetch(&f->done, 1, __ATOMIC_RELAXED);
	}
	__atomic_store_n(&f->finished, true, __ATOMIC_RELEASE);
	if (r < 0) {
		f->error = r;
		fprintf(stderr, "daxpool-bench scale: fill: %s (%s)\n", daxpool_strerror(r),
			daxpool_errormsg());
	}
	daxpool_disconnect(&dp);
	return NULL;
}

static int fill_to(struct scale *s, uint64_t live, double *ret_rate)
{
	struct filler f[FILLERS] = {0};
	uint64_t todo = live - s->live, t0 = bench_now_ns();
	int r = 0;

	for (unsigned i = 0; i < FILLERS; i++) {
		f[i].sock = s->sock;
		f[i].first = s->live + todo * i / FILLERS;
		f[i].count = s->live + todo * (i + 1) / FILLERS - f[i].first;
		if (pthread_create(&f[i].thread, NULL, filler_main, &f[i]) != 0)
			abort(); /* nothing to recover: the run would be wrong */
	}
	/* The main thread draws the progress line (on a terminal) while the fillers work. */
	struct bench_progress pg;
	bench_progress_begin(&pg, "scale: fill", todo, "allocs");
	for (;;) {
		uint64_t done = 0;
		unsigned finished = 0;

		for (unsigned i = 0; i < FILLERS; i++) {
			done += __atomic_load_n(&f[i].done, __ATOMIC_RELAXED);
			finished += __atomic_load_n(&f[i].finished, __ATOMIC_ACQUIRE);
		}
		if (finished == FILLERS)
			break;
		bench_progress_update(&pg, done);
		bench_sleep_ns(50 * 1000000u);
	}
	bench_progress_end(&pg);
	for (unsigned i = 0; i < FILLERS; i++) {
		pthread_join(f[i].thread, NULL);
		if (f[i].error && r == 0)
			r = f[i].error;
	}
	if (r == 0) {
		*ret_rate = (double)todo / ((double)(bench_now_ns() - t0) / 1e9);
		s->live = live;
	}
	return r;
}

static int memory_rows(struct scale *s, double *ret_anon_per_live)
{
	uint64_t rss, anon, pss;
	int r = bench_proc_memory(s->pid, &rss, &anon, &pss);

	if (r < 0) {
		fprintf(stderr, "daxpool-bench scale: /proc/%d: %s\n", (int)s->pid, strerror(-r));
		return r;
	}
	double per_anon = ((double)anon - (double)s->anon0) / (double)s->live;
	double per_pss = ((double)pss - (double)s->pss0) / (double)s->live;
	json_object *p = params_new(s, 0, s->live);

	json_object_object_del(p, "clients");
	json_object_object_del(p, "duration_s");
	json_object_object_del(p, "test");
	json_object_object_add(p, "rss_anon", json_object_new_int64((int64_t)anon));
	json_object_object_add(p, "rss_anon_start", json_object_new_int64((int64_t)s->anon0));
	json_object_object_add(p, "rss", json_object_new_int64((int64_t)rss));
	bench_row(SUITE, "daxpoold", "daemon_anon_bytes_per_live", per_anon, "bytes",
		  json_object_get(p));
	json_object_object_add(p, "pss", json_object_new_int64((int64_t)pss));
	json_object_object_add(p, "pss_start", json_object_new_int64((int64_t)s->pss0));
	bench_row(SUITE, "daxpoold", "daemon_pss_bytes_per_live", per_pss, "bytes", p);
	*ret_anon_per_live = per_anon;
	return 0;
}

/* Formats the pool file with room for max_live slices and a table to match. */
static int make_pool(struct scale *s, uint64_t max_live)
{
	uint64_t cap = max_live + 4096;
	uint64_t size = ((max_live + 2048) * SIZE_4K + cap * 512 + 64 * MiB + 2 * MiB - 1) & ~(2 * MiB - 1);
	struct pool_format_params prm = {.table_capacity = cap};
	int r = 0, fd = open(s->pool, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);

	if (fd < 0 || ftruncate(fd, (off_t)size) < 0) {
		r = -errno;
		fprintf(stderr, "daxpool-bench scale: %s: %m\n", s->pool);
	} else if ((r = pool_format_fd(fd, &prm)) < 0) {
		fprintf(stderr, "daxpool-bench scale: format: %s\n", pool_errormsg());
	}
	if (fd >= 0)
		close(fd);
	snprintf(s->size, sizeof(s->size), "%llu", (unsigned long long)size);
	return r;
}

int suite_scale(const struct bench_opts *o)
{
	static const uint64_t quick_counts[] = {100, 2000};
	const uint64_t *counts = o->quick && !o->counts_given ? quick_counts : o->counts;
	unsigned ncounts = o->quick && !o->counts_given ? 2 : o->ncounts;
	struct scale s = {.duration_s = o->quick ? 0.2 : o->duration > 0 ? o->duration : 1.0};
	double load0 = bench_loadavg_1m(), anon_per_live = 0;
	uint64_t max_live = 0;
	struct daxpool *ctl = NULL;
	int r;

	signal(SIGPIPE, SIG_IGN);
	for (unsigned i = 0; i < ncounts; i++) {
		if (counts[i] == 0 || (i > 0 && counts[i] <= counts[i - 1])) {
			fprintf(stderr, "daxpool-bench scale: --counts must be increasing and > 0\n");
			return -EINVAL;
		}
		max_live = counts[i];
	}
	if (max_live == 0)
		return -EINVAL;
	r = bench_mkdtemp(o->dir_given ? o->dir : "/var/tmp", "scale", s.dir, sizeof(s.dir));
	if (r < 0)
		return r;
	snprintf(s.sock, sizeof(s.sock), "%s/s", s.dir);
	snprintf(s.pool, sizeof(s.pool), "%s/pool", s.dir);
	const char *args[] = {"--foreground", "--socket", s.sock, "--emulate", s.pool, "--size", s.size,
			      "--page", "4K",
			      "--log-level", "warning", NULL};
	r = make_pool(&s, max_live);
	if (r == 0)
		r = bench_daemon_start(o, s.sock, args, &s.pid);
	/* One connection open throughout, as the fillers' come and go. */
	if (r == 0)
		r = daxpool_connect(s.sock, &ctl);
	if (r == 0) {
		uint64_t rss;
		struct point warm;

		/* The baseline includes what 8 connections leave behind in the daemon's heap (buffers
		 * freed to malloc, not to the kernel), so the per-allocation figures do not. */
		r = pairs(&s, 8, &warm);
		bench_sleep_ns(100 * 1000000u);
		if (r == 0)
			r = bench_proc_memory(s.pid, &rss, &s.anon0, &s.pss0);
	}
	for (unsigned i = 0; r == 0 && i < ncounts; i++) {
		double rate = 0;
		struct point pt;

		r = fill_to(&s, counts[i], &rate);
		if (r < 0)
			break;
		json_object *fp = params_new(&s, FILLERS, s.live);
		json_object_object_add(fp, "test", json_object_new_string("named 4K alloc + close"));
		bench_row(SUITE, "daxpoold", "fill_throughput", rate, "allocs/s", fp);
		r = memory_rows(&s, &anon_per_live);
		for (unsigned c = 1; r == 0 && c <= 8; c *= 8) {
			r = pairs(&s, c, &pt);
			if (r == 0)
				report_point(&s, c, &pt);
		}
	}
	/* The client sweep last, at the largest live count: 256 connections raise the daemon's
	 * heap high-water mark, which would count against the allocations above. */
	for (unsigned c = 2; r == 0 && c <= MAX_CLIENTS; c *= 2) {
		struct point pt;

		if (c == 8 || (o->quick && c != 16 && c != MAX_CLIENTS))
			continue; /* 1 and 8 were measured at this live count already */
		r = pairs(&s, c, &pt);
		if (r == 0)
			report_point(&s, c, &pt);
	}
	daxpool_disconnect(&ctl);
	/* Open and recovery at the largest live count: the daemon is killed (no clean shutdown) and
	 * started again on the same pool; the time is from fork to its first answer (process start,
	 * pool mapping, recovery scan of every record, the DRAM index rebuilt, slice objects
	 * reconciled), three times. */
	double restart_ms[3] = {0};
	for (unsigned i = 0; r == 0 && s.pid > 0 && i < 3; i++) {
		uint64_t t0;

		kill(s.pid, SIGKILL);
		(void)bench_daemon_stop(&s.pid);
		unlink(s.sock);
		t0 = bench_now_ns();
		r = bench_daemon_start(o, s.sock, args, &s.pid);
		restart_ms[i] = (double)(bench_now_ns() - t0) / 1e6;
		if (r == 0) {
			json_object *p = params_new(&s, 0, s.live);

			json_object_object_del(p, "clients");
			json_object_object_del(p, "duration_s");
			json_object_object_add(p, "test", json_object_new_string("restart after SIGKILL"));
			json_object_object_add(p, "run", json_object_new_int((int)i));
			bench_row(SUITE, "daxpoold", "restart_after_kill_ms", restart_ms[i], "ms", p);
		}
	}
	int st = s.pid > 0 ? bench_daemon_stop(&s.pid) : 0;
	bench_rmdir(s.dir);
	if (r < 0)
		return r;
	if (st != 0) {
		fprintf(stderr, "daxpool-bench scale: daxpoold exited with status %d\n", st);
		return -ECHILD;
	}
	char what[96];
	snprintf(what, sizeof(what), "daemon anonymous memory <= 256 bytes per live allocation at %llu live",
		 (unsigned long long)max_live);
	bench_target_row(SUITE, "target_daemon_bytes_per_live", what, anon_per_live,
			 TARGET_BYTES_PER_LIVE, "bytes", anon_per_live <= TARGET_BYTES_PER_LIVE);
	double worst = MAX(restart_ms[0], MAX(restart_ms[1], restart_ms[2]));
	snprintf(what, sizeof(what), "restart after SIGKILL (open + recovery) < 1000 ms at %llu live",
		 (unsigned long long)max_live);
	bench_target_row(SUITE, "target_restart_ms", what, worst, TARGET_RESTART_MS, "ms",
			 worst < TARGET_RESTART_MS);
	json_object *m = json_object_new_object();
	json_object_object_add(m, "pool_dir", json_object_new_string(s.dir));
	bench_machine_row(SUITE, load0, m);
	return 0;
}
