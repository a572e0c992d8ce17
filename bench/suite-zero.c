/*
 * Suite "zero": how fast daxpoold zeroes freed memory in the background, against memset of the
 * same memory.
 *
 * A freed extent is reused only after the daemon's zero worker (daemon/zero.c) has overwritten
 * it, so zeroing bandwidth bounds how fast freed space comes back. The suite starts its own
 * daxpoold (an emulated 4K pool in --dir, or --device /dev/daxX.Y in the lab), then per
 * repetition: allocates one anonymous slice of --bytes (default 1 GiB, 2M-aligned), maps it and
 * fills it with 0xa5 (so the pages are resident and dirty, as memory an application used),
 * frees it and polls STAT (every 100 us) until zeroing_pending_bytes is 0: bandwidth = bytes /
 * (time from the FREE to an empty backlog). The worker runs at SCHED_IDLE, so on a busy machine
 * this measures what the machine leaves it, which is the point of running it there.
 * Then the limits, on the same slice allocated again (resident, dirty pages), same repetitions:
 * memset(0) through daxpool_map (plain stores: the machine's store bandwidth), and libpmem2's
 * memset (pmem2_get_memset_fn on a pmem2 mapping of the slice's fd: non-temporal stores +
 * fence, what the zero worker calls) in this process at normal priority — so a gap between
 * the daemon and pmem2 is scheduling (the worker runs at SCHED_IDLE), a gap between pmem2 and
 * memset is the method.
 *   daxpool-bench zero [--dir DIR | --device /dev/daxX.Y] [--bytes N] [--reps N] [--quick]
 */
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <libpmem2.h>

#include "bench.h"
#include "daxpool.h"

#define SUITE "zero"
#define GiB (UINT64_C(1) << 30)
#define MiB (UINT64_C(1) << 20)
#define MAX_REPS 16
#define DRAIN_TIMEOUT_NS (UINT64_C(300) * 1000000000u)

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

static double median(double *v, unsigned n)
{
	qsort(v, n, sizeof(*v), cmp_double);
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

static json_object *params_for(const char *backing, uint64_t bytes, unsigned reps, const char *how)
{
	json_object *p = json_object_new_object();

	json_object_object_add(p, "backing", json_object_new_string(backing));
	json_object_object_add(p, "bytes", json_object_new_int64((int64_t)bytes));
	json_object_object_add(p, "reps", json_object_new_int((int)reps));
	json_object_object_add(p, "how", json_object_new_string(how));
	return p;
}

/* CPU time (ns) of daxpoold's threads other than the main one — the zero worker: the first
 * field of /proc/PID/task/TID/schedstat. With it the bandwidth splits into how fast the worker
 * zeroes while it runs and how much CPU it got (it runs at SCHED_IDLE). */
static uint64_t worker_cpu_ns(pid_t pid)
{
	char path[64];
	uint64_t sum = 0;
	DIR *d;
	struct dirent *e;

	snprintf(path, sizeof(path), "/proc/%d/task", (int)pid);
	d = opendir(path);
	if (!d)
		return 0;
	while ((e = readdir(d))) {
		char stat[320];
		unsigned long long ns;
		FILE *f;

		if (e->d_name[0] == '.' || atoi(e->d_name) == (int)pid)
			continue;
		snprintf(stat, sizeof(stat), "/proc/%d/task/%s/schedstat", (int)pid, e->d_name);
		f = fopen(stat, "re");
		if (f) {
			if (fscanf(f, "%llu", &ns) == 1)
				sum += ns;
			fclose(f);
		}
	}
	closedir(d);
	return sum;
}

/* One slice of bytes, mapped: 0 or -errno (message printed). */
static int get_slice(struct daxpool *dp, uint64_t bytes, struct daxpool_slice **ret, char **ret_addr)
{
	int r = daxpool_alloc(dp, NULL, bytes, DAXPOOL_ALIGN_2M, 0600, DAXPOOL_ANONYMOUS, ret);

	if (r == 0)
		r = daxpool_map(*ret, 0, (void **)ret_addr);
	if (r < 0)
		fprintf(stderr, "daxpool-bench zero: %s: %s\n", daxpool_strerror(r), daxpool_errormsg());
	return r;
}

/* libpmem2's memset (as the zero worker) on the slice's fd; GB/s or -errno. */
static double pmem2_zero(const struct daxpool_slice *s, uint64_t bytes)
{
	struct pmem2_config *cfg = NULL;
	struct pmem2_source *src = NULL;
	struct pmem2_map *map = NULL;
	double gbs = -EIO;

	if (pmem2_config_new(&cfg) == 0 && pmem2_source_from_fd(&src, daxpool_slice_get_fd(s)) == 0 &&
	    pmem2_config_set_offset(cfg, daxpool_slice_get_offset(s)) == 0 &&
	    pmem2_config_set_length(cfg, bytes) == 0 &&
	    pmem2_config_set_required_store_granularity(cfg, PMEM2_GRANULARITY_PAGE) == 0 &&
	    pmem2_map_new(&map, cfg, src) == 0) {
		char *a = pmem2_map_get_address(map);
		pmem2_memset_fn fn = pmem2_get_memset_fn(map);

		memset(a, 0xa5, bytes);
		uint64_t t0 = bench_now_ns();
		fn(a, 0, bytes, 0);
		gbs = (double)bytes / (double)(bench_now_ns() - t0);
	} else {
		fprintf(stderr, "daxpool-bench zero: pmem2: %s\n", pmem2_errormsg());
	}
	if (map)
		pmem2_map_delete(&map);
	if (src)
		pmem2_source_delete(&src);
	if (cfg)
		pmem2_config_delete(&cfg);
	return gbs;
}

static int measure(struct daxpool *dp, pid_t pid, uint64_t bytes, unsigned reps, double *zero_gbs,
		   double *cpu_gbs, double *cpu_share, double *memset_gbs, double *pmem2_gbs,
		   uint64_t *zeroed_total)
{
	struct daxpool_stats st0, st1;
	int r = daxpool_stat(dp, &st0, sizeof(st0));

	for (unsigned i = 0; r == 0 && i < reps; i++) {
		struct daxpool_slice *s = NULL;
		char *a;

		r = get_slice(dp, bytes, &s, &a);
		if (r < 0)
			break;
		memset(a, 0xa5, bytes);
		/* The FREE unmaps first (daxpool_free); the clock runs from the request on. */
		uint64_t c0 = worker_cpu_ns(pid), t0 = bench_now_ns();
		r = daxpool_free(dp, &s);
		if (r < 0) {
			daxpool_close(dp, &s);
			break;
		}
		int64_t d = bench_drain_zeroing(dp, DRAIN_TIMEOUT_NS, NULL);
		if (d < 0) {
			r = (int)d;
			fprintf(stderr, "daxpool-bench zero: backlog: %s\n", daxpool_strerror(r));
			break;
		}
		uint64_t wall = bench_now_ns() - t0, cpu = worker_cpu_ns(pid) - c0;
		zero_gbs[i] = (double)bytes / (double)wall;
		cpu_gbs[i] = cpu ? (double)bytes / (double)cpu : 0;
		cpu_share[i] = (double)cpu / (double)wall;
	}
	if (r == 0)
		r = daxpool_stat(dp, &st1, sizeof(st1));
	if (r == 0)
		*zeroed_total = st1.zeroed_bytes_total - st0.zeroed_bytes_total;
	for (unsigned i = 0; r == 0 && i < reps; i++) {
		struct daxpool_slice *s = NULL;
		char *a;

		r = get_slice(dp, bytes, &s, &a);
		if (r < 0)
			break;
		memset(a, 0xa5, bytes); /* resident and dirty, as above */
		uint64_t t0 = bench_now_ns();
		memset(a, 0, bytes);
		uint64_t t1 = bench_now_ns();
		/* The compiler must not drop the memset: read one byte back. */
		if (((volatile char *)a)[bytes / 2] != 0)
			r = -EIO;
		memset_gbs[i] = (double)bytes / (double)(t1 - t0);
		pmem2_gbs[i] = pmem2_zero(s, bytes);
		if (pmem2_gbs[i] < 0)
			r = (int)pmem2_gbs[i];
		if (daxpool_free(dp, &s) < 0)
			daxpool_close(dp, &s);
		if (r == 0 && bench_drain_zeroing(dp, DRAIN_TIMEOUT_NS, NULL) < 0)
			r = -ETIMEDOUT;
	}
	return r;
}

int suite_zero(const struct bench_opts *o)
{
	uint64_t bytes = o->bytes ? o->bytes : o->quick ? 64 * MiB : GiB;
	unsigned reps = o->reps ? o->reps : o->quick ? 1 : 3;
	double zero_gbs[MAX_REPS], cpu_gbs[MAX_REPS], cpu_share[MAX_REPS], memset_gbs[MAX_REPS];
	double pmem2_gbs[MAX_REPS], load0 = bench_loadavg_1m();
	char dir[PATH_MAX];
	const char *backing = o->device ? o->device : "emulated 4K pool file";
	struct daxpool *dp = NULL;
	uint64_t zeroed = 0;
	pid_t pid = 0;
	int r;

	if (reps > MAX_REPS)
		reps = MAX_REPS;
	bytes = (bytes + 2 * MiB - 1) & ~(2 * MiB - 1);
	/* The daemon zeroes freed extents in place through its mapping in "shared" isolation (and
	 * on device-dax sub-devices before removing them); an emulated slice file is punched and
	 * removed instead, which would measure the file system, not the zeroing. */
	r = bench_pool_daemon_start(o, "zero", bytes + 64 * MiB, o->device ? NULL : "shared", dir,
				    sizeof(dir), &pid, &dp);
	if (r == 0)
		r = measure(dp, pid, bytes, reps, zero_gbs, cpu_gbs, cpu_share, memset_gbs, pmem2_gbs, &zeroed);
	int st = bench_pool_daemon_stop(&dp, &pid, dir);
	if (r < 0)
		return r;
	if (st != 0) {
		fprintf(stderr, "daxpool-bench zero: daxpoold exited with status %d\n", st);
		return -ECHILD;
	}
	double z = median(zero_gbs, reps), m = median(memset_gbs, reps);
	json_object *p = params_for(backing, bytes, reps, "FREE until STAT shows no zeroing backlog");
	json_object_object_add(p, "zeroed_bytes_total_delta", json_object_new_int64((int64_t)zeroed));
	bench_row(SUITE, "daxpoold", "zeroing_bandwidth", z, "GB/s", p);
	bench_row(SUITE, "daxpoold", "zeroing_bandwidth_per_cpu", median(cpu_gbs, reps), "GB/s",
		  params_for(backing, bytes, reps, "bytes / CPU time of the zero worker thread (schedstat)"));
	bench_row(SUITE, "daxpoold", "zero_worker_cpu_share", median(cpu_share, reps), "fraction",
		  params_for(backing, bytes, reps, "zero worker CPU time / wall time of the drain"));
	bench_row(SUITE, "memset", "zeroing_bandwidth", m, "GB/s",
		  params_for(backing, bytes, reps, "memset(0) of the mapped slice, resident pages"));
	double pm = median(pmem2_gbs, reps);
	bench_row(SUITE, "pmem2_memset", "zeroing_bandwidth", pm, "GB/s",
		  params_for(backing, bytes, reps,
			     "pmem2_get_memset_fn of a pmem2 mapping of the slice, in-process"));
	bench_row(SUITE, "ratio", "zeroing_bandwidth_ratio", z / m, "x",
		  params_for(backing, bytes, reps, "daxpoold / memset"));
	bench_row(SUITE, "ratio", "zeroing_bandwidth_ratio", z / pm, "x",
		  params_for(backing, bytes, reps, "daxpoold / pmem2_memset"));
	json_object *mp = json_object_new_object();
	json_object_object_add(mp, "backing", json_object_new_string(backing));
	bench_machine_row(SUITE, load0, mp);
	return 0;
}
