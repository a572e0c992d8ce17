/*
 * daxpool-bench touch: the cost of mapping through libdaxpool.
 *  - first touch of a 1 GiB slice (one write per 4K page of a fresh mapping) through
 *    daxpool_map vs a direct open()+mmap() of the same backing file at the same offset, in one
 *    run, for each alignment: 4K (a 4K-page file in --dir), 2M (a hugetlbfs 2M pool), 1G (a
 *    hugetlbfs 1G pool: needs two 1G pages, reported as skipped if the kernel has none). The
 *    two are measured alternately on the same extent, after an untimed touch that lets the
 *    backing allocate its pages, so both see resident pages and differ only in the mapping.
 *    Target: ratio daxpool/direct (median of back-to-back pairs) within 1.05.
 *  - alloc + map + free of a 2M slice through daxpoold: p50/p99. Target: p99 < 100 us, measured
 *    as the service suite measures a grant: a single operation's latency, so every 64 iterations
 *    the bench waits (untimed) for the daemon's zeroing backlog to drain. Run once more unpaced
 *    ("_unpaced" rows, no target): back to back, the loop frees 2 MiB every ~50 us, far more than
 *    any CPU zeroes, and then measures zeroing bandwidth (the zero suite's subject), not latency.
 * Huge pages are reserved and hugetlbfs mounted by the suite (root), and given back after.
 *   daxpool-bench touch [--dir DIR] [--daemon PATH] [--quick]
 */
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/mman.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bench.h"
#include "daxpool.h"

#define GiB (UINT64_C(1) << 30)
#define MiB (UINT64_C(1) << 20)
#define SUITE "touch"

static double median(double *v, int n);

struct touch_pool {
	const char *label; /* "4K", "2M", "1G" */
	uint64_t align, pool_size;
	char dir[256], file[300], sock[300], mnt[300];
	long nr_want;		   /* huge pages the pool needs; 0 for the 4K file */
	struct bench_hugepages hp; /* their reservation (bench/util.c) */
	bool mounted;
	pid_t pid;
	double fill_ms; /* memset of 1 GiB through daxpool_map, median; 0 if not measured */
};

/* The machine's limit: memset of 1 GiB of anonymous huge pages (1G, else 2M hugetlb, else THP). */
struct mem_limit {
	const char *kind;
	double fresh_ms, fill_ms;
};

static const char *measure_limit(int reps, struct mem_limit *m)
{
	static const struct {
		const char *kind;
		uint64_t page;
		int flags;
	} kinds[] = {
		{ "hugetlb-1G", GiB, MAP_HUGETLB | MAP_HUGE_1GB },
		{ "hugetlb-2M", 2 * MiB, MAP_HUGETLB | MAP_HUGE_2MB },
		{ "THP", 0, 0 },
	};
	double v[16];

	if (reps > 16)
		reps = 16;
	for (size_t k = 0; k < sizeof(kinds) / sizeof(kinds[0]); k++) {
		struct bench_hugepages hp = { 0 };
		uint64_t len = kinds[k].page ? GiB : GiB + 2 * MiB;
		char *base, *a;

		if (kinds[k].page && bench_hugepages_get(&hp, kinds[k].page, (long)(GiB / kinds[k].page))) {
			bench_hugepages_put(&hp);
			continue;
		}
		base = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | kinds[k].flags,
			    -1, 0);
		if (base == MAP_FAILED) {
			bench_hugepages_put(&hp);
			continue;
		}
		a = base;
		if (!kinds[k].page) {
			a = (char *)(((uintptr_t)base + 2 * MiB - 1) & ~(uintptr_t)(2 * MiB - 1));
			if (madvise(a, GiB, MADV_HUGEPAGE) < 0) {
				munmap(base, len);
				continue;
			}
		}
		uint64_t t0 = bench_now_ns();
		memset(a, 1, GiB); /* faults, the kernel's zeroing of each huge page, the stores */
		m->fresh_ms = (double)(bench_now_ns() - t0) / 1e6;
		for (int i = 0; i < reps; i++) {
			t0 = bench_now_ns();
			memset(a, i + 2, GiB);
			v[i] = (double)(bench_now_ns() - t0) / 1e6;
		}
		m->fill_ms = median(v, reps);
		m->kind = kinds[k].kind;
		munmap(base, len);
		bench_hugepages_put(&hp);
		return NULL;
	}
	return "no anonymous huge pages (hugetlb reservation failed, THP disabled)";
}

/* Reserves the pages and mounts hugetlbfs for a 2M/1G pool; returns a reason on failure. */
static const char *prepare_backing(struct touch_pool *p, const char *dir)
{
	char tag[32];

	snprintf(tag, sizeof(tag), "touch-%s", p->label);
	if (bench_mkdtemp(dir, tag, p->dir, sizeof(p->dir)) < 0) {
		p->dir[0] = 0;
		return "cannot make a temp dir";
	}
	if (!p->nr_want) {
		snprintf(p->file, sizeof(p->file), "%s/pool", p->dir);
		return NULL;
	}
	if (geteuid() != 0)
		return "huge pages need root";
	const char *why = bench_hugepages_get(&p->hp, p->align, p->nr_want);
	if (why)
		return why;
	snprintf(p->mnt, sizeof(p->mnt), "%s/mnt", p->dir);
	if (hugetlbfs_mount(p->mnt, p->align, 0700) < 0)
		return "cannot mount hugetlbfs";
	p->mounted = true;
	if ((size_t)snprintf(p->file, sizeof(p->file), "%s/pool", p->mnt) >= sizeof(p->file))
		return "pool path too long";
	return NULL;
}

static void release_backing(struct touch_pool *p)
{
	char cmd[400];

	unlink(p->file);
	if (p->mounted)
		hugetlbfs_unmount(p->mnt);
	bench_hugepages_put(&p->hp); /* gives back only what prepare_backing added */
	if (p->dir[0]) {
		snprintf(cmd, sizeof(cmd), "rm -rf '%s'", p->dir);
		(void)!system(cmd);
	}
}

/* daxpoold on the suite's backing file (bench_daemon_start: --daemon, $DAXPOOLD, the build). */
static int start_daemon(struct touch_pool *p, const struct bench_opts *o)
{
	char size[32];
	const char *args[] = { "--foreground", "--socket", p->sock, "--emulate", p->file, "--size", size,
			       "--page", p->label, "--format-if-empty", "--log-level", "warning", NULL };

	snprintf(size, sizeof(size), "%llu", (unsigned long long)p->pool_size);
	snprintf(p->sock, sizeof(p->sock), "%s/s", p->dir);
	return bench_daemon_start(o, p->sock, args, &p->pid);
}

static int stop_daemon(struct touch_pool *p)
{
	return p->pid > 0 ? bench_daemon_stop(&p->pid) : 0;
}

/* One write per 4K page; returns the ns it took. */
static uint64_t touch(volatile char *addr, uint64_t len)
{
	uint64_t t0 = bench_now_ns();

	for (uint64_t off = 0; off < len; off += 4096)
		addr[off] = 1;
	return bench_now_ns() - t0;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static double median(double *v, int n)
{
	qsort(v, (size_t)n, sizeof(*v), cmp_double);
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

static json_object *params_for(const struct touch_pool *p, int reps)
{
	json_object *j = json_object_new_object();

	json_object_object_add(j, "align", json_object_new_string(p->label));
	json_object_object_add(j, "bytes", json_object_new_int64((int64_t)GiB));
	json_object_object_add(j, "reps", json_object_new_int(reps));
	json_object_object_add(j, "backing", json_object_new_string(p->nr_want ? "hugetlbfs" : "file"));
	return j;
}

static int measure_touch(struct touch_pool *p, int reps)
{
	struct daxpool *dp = NULL;
	struct daxpool_slice *s = NULL;
	double lib[16], direct[16], ratio;

	if (reps > 16)
		reps = 16;
	int fd = -1, r;

	r = daxpool_connect(p->sock, &dp);
	if (r >= 0)
		r = daxpool_alloc(dp, NULL, GiB, p->align, 0600, DAXPOOL_ANONYMOUS, &s);
	if (r < 0) {
		fprintf(stderr, "daxpool-bench touch %s: %s\n", p->label, daxpool_errormsg());
		goto out;
	}
	/* "direct": the same memory through the descriptor the daemon passed, mapped by hand
	 * (the slice's own object where the pool isolates slices, else the device). */
	fd = fcntl(daxpool_slice_get_fd(s), F_DUPFD_CLOEXEC, 0);
	if (fd < 0) {
		r = -errno;
		goto out;
	}
	for (int i = -1; i < reps; i++) {
		char *a;
		uint64_t t_lib = 0, t_direct = 0;

		/* alternate the order, so neither always runs on a cache the other warmed */
		for (int k = 0; k < 2; k++) {
			if ((k == 0) == (i % 2 == 0)) {
				r = daxpool_map(s, 0, (void **)&a);
				if (r < 0)
					goto out;
				t_lib = touch(a, GiB);
				daxpool_unmap(s);
			} else {
				a = mmap(NULL, GiB, PROT_READ | PROT_WRITE, MAP_SHARED, fd,
					 (off_t)daxpool_slice_get_offset(s));
				if (a == MAP_FAILED) {
					r = -errno;
					goto out;
				}
				t_direct = touch(a, GiB);
				munmap(a, GiB);
			}
		}
		if (i >= 0) { /* i == -1 only lets the backing allocate its pages */
			lib[i] = (double)t_lib / 1e6;
			direct[i] = (double)t_direct / 1e6;
		}
	}
	/* The target is judged on the median of the paired ratios: each pair ran back to back, so
	 * load from other processes on the machine cancels out better than in a ratio of medians. */
	double paired[16];

	for (int i = 0; i < reps; i++)
		paired[i] = lib[i] / direct[i];
	ratio = median(paired, reps);
	double ml = median(lib, reps), md = median(direct, reps);
	bench_row(SUITE, "daxpool", "first_touch_1GiB", ml, "ms", params_for(p, reps));
	bench_row(SUITE, "direct", "first_touch_1GiB", md, "ms", params_for(p, reps));
	json_object *j = params_for(p, reps);
	json_object_object_add(j, "ratio_of_medians", json_object_new_double(ml / md));
	json_object_object_add(j, "target", json_object_new_double(1.05));
	json_object_object_add(j, "met", json_object_new_boolean(ratio <= 1.05));
	bench_row(SUITE, "daxpool/direct", "first_touch_ratio", ratio, "x", j);

	/* Filling all of it (memset of 1 GiB into a fresh mapping): comparable with the memset
	 * limit on anonymous huge pages, which a one-byte-per-page touch is not. */
	int fill_reps = reps < 3 ? reps : 3;
	for (int i = 0; i < fill_reps; i++) {
		char *a;
		uint64_t t0;

		r = daxpool_map(s, 0, (void **)&a);
		if (r < 0)
			goto out;
		t0 = bench_now_ns();
		memset(a, i + 2, GiB);
		lib[i] = (double)(bench_now_ns() - t0) / 1e6;
		daxpool_unmap(s);
		a = mmap(NULL, GiB, PROT_READ | PROT_WRITE, MAP_SHARED, fd, (off_t)daxpool_slice_get_offset(s));
		if (a == MAP_FAILED) {
			r = -errno;
			goto out;
		}
		t0 = bench_now_ns();
		memset(a, i + 3, GiB);
		direct[i] = (double)(bench_now_ns() - t0) / 1e6;
		munmap(a, GiB);
	}
	p->fill_ms = median(lib, fill_reps);
	bench_row(SUITE, "daxpool", "fill_1GiB", p->fill_ms, "ms", params_for(p, fill_reps));
	bench_row(SUITE, "direct", "fill_1GiB", median(direct, fill_reps), "ms", params_for(p, fill_reps));
	r = 0;
out:
	if (fd >= 0)
		close(fd);
	daxpool_free(dp, &s);
	daxpool_disconnect(&dp);
	return r;
}

static void latency_rows(const char *metric, uint64_t *lat, int n, const char *pool, int enospc,
			 bool target, double steal)
{
	char name[96];
	double p99 = (double)bench_quantile(lat, (uint64_t)n, 0.99) / 1e3;
	json_object *j = json_object_new_object();

	json_object_object_add(j, "ops", json_object_new_int(n));
	json_object_object_add(j, "pool", json_object_new_string(pool));
	snprintf(name, sizeof(name), "%s_p50", metric);
	bench_row(SUITE, "daxpool", name, (double)bench_quantile(lat, (uint64_t)n, 0.5) / 1e3, "us", j);
	j = json_object_new_object();
	json_object_object_add(j, "ops", json_object_new_int(n));
	json_object_object_add(j, "pool", json_object_new_string(pool));
	if (steal >= 0)
		json_object_object_add(j, "cpu_steal_pct", json_object_new_double(steal));
	if (target) {
		json_object_object_add(j, "enospc_waits", json_object_new_int(enospc));
		json_object_object_add(j, "target", json_object_new_double(100));
		json_object_object_add(j, "met", json_object_new_boolean(p99 < 100));
	}
	snprintf(name, sizeof(name), "%s_p99", metric);
	bench_row(SUITE, "daxpool", name, p99, "us", j);
}

/* alloc + map + free of a 2M slice over the socket, timed whole and per step; paced: drain the
 * zeroing backlog (untimed) every 64 iterations. */
static int measure_alloc_map_free(struct touch_pool *p, int n, bool paced)
{
	uint64_t *lat = calloc((size_t)n * 4, sizeof(*lat));
	uint64_t *t_alloc = lat + n, *t_map = lat + 2 * n, *t_free = lat + 3 * n;
	struct daxpool *dp = NULL;
	int r = daxpool_connect(p->sock, &dp), enospc = 0;

	if (!lat || r < 0) {
		free(lat);
		return r < 0 ? r : -ENOMEM;
	}
	for (int i = 0; i < 3000; i++) { /* the 1 GiB slice of measure_touch is zeroed first */
		struct daxpool_stats st;

		if (daxpool_stat(dp, &st, sizeof(st)) < 0 ||
		    (st.zeroing_pending_bytes == 0 && st.quarantined == 0))
			break;
		bench_sleep_ns(10 * 1000000u);
	}
	struct bench_cpu c0, c1;
	bench_cpu_sample(&c0);
	for (int i = 0; i < n && r >= 0; i++) {
		struct daxpool_slice *s = NULL;
		void *a;
		uint64_t t0, t1 = 0, t2 = 0;

		if (paced && i % 64 == 63) {
			int64_t d = bench_drain_zeroing(dp, UINT64_C(60) * 1000000000u, NULL);

			if (d < 0) {
				r = (int)d;
				break;
			}
		}
		t0 = bench_now_ns();
		r = daxpool_alloc(dp, NULL, 2 * MiB, DAXPOOL_ALIGN_2M, 0600, DAXPOOL_ANONYMOUS, &s);
		if (r == -ENOSPC && enospc < 10000) {
			/* every 2M free is still being zeroed by the daemon: wait, not counted */
			enospc++;
			bench_sleep_ns(1000000u);
			r = 0;
			i--;
			continue;
		}
		t1 = bench_now_ns();
		if (r >= 0)
			r = daxpool_map(s, 0, &a);
		t2 = bench_now_ns();
		if (r >= 0)
			r = daxpool_free(dp, &s);
		lat[i] = bench_now_ns() - t0;
		t_alloc[i] = t1 - t0;
		t_map[i] = t2 - t1;
		t_free[i] = lat[i] - (t2 - t0);
		if (r < 0)
			fprintf(stderr, "daxpool-bench touch: alloc+map+free #%d: %s\n", i, daxpool_errormsg());
		daxpool_close(dp, &s);
	}
	bench_cpu_sample(&c1);
	if (r >= 0) {
		const char *sfx = paced ? "" : "_unpaced";
		double st = bench_cpu_steal_pct(&c0, &c1);
		char m[64];

		snprintf(m, sizeof(m), "alloc_map_free_2M%s", sfx);
		latency_rows(m, lat, n, p->label, enospc, paced, st);
		snprintf(m, sizeof(m), "alloc_2M%s", sfx);
		latency_rows(m, t_alloc, n, p->label, 0, false, st);
		snprintf(m, sizeof(m), "map_2M%s", sfx);
		latency_rows(m, t_map, n, p->label, 0, false, st);
		snprintf(m, sizeof(m), "free_2M%s", sfx);
		latency_rows(m, t_free, n, p->label, 0, false, st);
	}
	free(lat);
	daxpool_disconnect(&dp);
	return r;
}

int suite_touch(const struct bench_opts *o)
{
	struct touch_pool pools[] = {
		{ .label = "4K", .align = DAXPOOL_ALIGN_4K, .pool_size = GiB + 64 * MiB },
		{ .label = "2M", .align = DAXPOOL_ALIGN_2M, .pool_size = GiB + 64 * MiB,
		  .nr_want = 544 },
		{ .label = "1G", .align = DAXPOOL_ALIGN_1G, .pool_size = 2 * GiB,
		  .nr_want = 2 },
	};
	int reps = o->quick ? 1 : 5, failed = 0;
	struct mem_limit lim = { 0 };
	const char *lim_why = measure_limit(o->quick ? 1 : 5, &lim);
	double load0 = bench_loadavg_1m();

	if (lim_why) {
		bench_skip_row(SUITE, "anon-huge", "fill_1GiB", lim_why, NULL);
	} else {
		json_object *j = json_object_new_object();

		json_object_object_add(j, "memory", json_object_new_string(lim.kind));
		json_object_object_add(j, "bytes", json_object_new_int64((int64_t)GiB));
		json_object_object_add(j, "how", json_object_new_string("memset, pages resident"));
		bench_row(SUITE, "anon-huge", "fill_1GiB", lim.fill_ms, "ms", j);
		j = json_object_new_object();
		json_object_object_add(j, "memory", json_object_new_string(lim.kind));
		json_object_object_add(j, "bytes", json_object_new_int64((int64_t)GiB));
		json_object_object_add(j, "how", json_object_new_string("memset of fresh memory: faults + kernel zeroing"));
		bench_row(SUITE, "anon-huge", "fill_fresh_1GiB", lim.fresh_ms, "ms", j);
	}

	for (size_t i = 0; i < sizeof(pools) / sizeof(pools[0]); i++) {
		struct touch_pool *p = &pools[i];
		const char *why = prepare_backing(p, p->nr_want ? "/tmp" : o->dir);
		int r;

		if (why) {
			json_object *j = json_object_new_object();

			json_object_object_add(j, "align", json_object_new_string(p->label));
			json_object_object_add(j, "skipped", json_object_new_string(why));
			bench_row(SUITE, "daxpool/direct", "first_touch_ratio", 0, "x", j);
			fprintf(stderr, "daxpool-bench touch: %s skipped: %s\n", p->label, why);
			release_backing(p);
			continue;
		}
		r = start_daemon(p, o);
		if (r >= 0)
			r = measure_touch(p, o->quick || !p->nr_want ? reps : 15); /* hugetlbfs: cheap, noisy */
		if (r >= 0 && i == 0)
			r = measure_alloc_map_free(p, o->quick ? 200 : 2000, true);
		if (r >= 0 && i == 0)
			r = measure_alloc_map_free(p, o->quick ? 200 : 2000, false);
		if (r < 0) {
			fprintf(stderr, "daxpool-bench touch %s: %s\n", p->label, strerror(-r));
			failed = 1;
		}
		int st = stop_daemon(p);
		if (st != 0 && r >= 0) {
			fprintf(stderr, "daxpool-bench touch %s: daxpoold exited with status %d\n", p->label, st);
			failed = 1;
		}
		release_backing(p);
		if (p->fill_ms > 0 && lim.fill_ms > 0) {
			double x = p->fill_ms / lim.fill_ms;
			json_object *j = params_for(p, reps);

			json_object_object_add(j, "limit", json_object_new_string(lim.kind));
			bench_row(SUITE, "ratio", "fill_vs_memset_limit", x, "x", j);
			if (p->align == DAXPOOL_ALIGN_1G)
				bench_target_row(SUITE, "target_fill_1G_vs_memset_limit",
						 "1G slice filled through libdaxpool within 2x of memset on anonymous huge pages",
						 x, 2.0, "x", x <= 2.0);
		}
	}
	bench_machine_row(SUITE, load0, NULL);
	return failed ? -1 : 0;
}
