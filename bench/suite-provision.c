/*
 * Suite "provision": the time to obtain a mapped slice of persistent memory (1 GiB by default).
 *
 *  daxpoold   daxpool_alloc (anonymous, 2M-aligned; 1G on a 1G device) + daxpool_map of a daxpoold
 *             the suite starts: on --device /dev/daxX.Y (the lab), else on an emulated 4K pool
 *             file in --dir. Between repetitions (untimed) the slice is freed and the daemon's
 *             zeroing backlog drained, so every grant finds zeroed space.
 *  libndctl   what a per-volume PMEM provisioner does for each allocation: create a devdax
 *             namespace of that size in --region through libndctl (lib/namespace/namespace.c, as
 *             `daxpoolctl create`), open /dev/daxX.Y once the kernel has made it, mmap it.
 *             Tearing it down again (munmap, namespace_destroy_devdax) is timed separately.
 *             Needs root and an NVDIMM region with room: the lab (tests/lab/bench-lab.sh).
 * Ratio libndctl / daxpoold of the medians; target >= 1000.
 *   daxpool-bench provision [--device DEV] [--region REGION] [--bytes N] [--reps N] [--quick]
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "bench.h"
#include "daxpool.h"
#include "namespace.h"

#define SUITE "provision"
#define GiB (UINT64_C(1) << 30)
#define MiB (UINT64_C(1) << 20)
#define MAX_REPS 32
#define DRAIN_TIMEOUT_NS (UINT64_C(600) * 1000000000u)
#define TARGET_RATIO 1000.0

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

static double median_ms(uint64_t *v, unsigned n)
{
	qsort(v, n, sizeof(*v), cmp_u64);
	return (n % 2 ? (double)v[n / 2] : ((double)v[n / 2 - 1] + (double)v[n / 2]) / 2) / 1e6;
}

static json_object *params_for(uint64_t bytes, uint64_t align, unsigned reps, const char *how,
			       const char *where)
{
	json_object *p = json_object_new_object();

	json_object_object_add(p, "bytes", json_object_new_int64((int64_t)bytes));
	json_object_object_add(p, "align", json_object_new_int64((int64_t)align));
	json_object_object_add(p, "reps", json_object_new_int((int)reps));
	json_object_object_add(p, "how", json_object_new_string(how));
	json_object_object_add(p, "on", json_object_new_string(where));
	return p;
}

static uint64_t device_align(const char *dev)
{
	char path[256];
	unsigned long long v = 0;
	const char *base = strrchr(dev, '/');
	FILE *f;

	snprintf(path, sizeof(path), "/sys/bus/dax/devices/%s/align", base ? base + 1 : dev);
	f = fopen(path, "re");
	if (f) {
		if (fscanf(f, "%llu", &v) != 1)
			v = 0;
		fclose(f);
	}
	return v;
}

/* daxpool_alloc + daxpool_map, reps times; 0 or -errno. */
static int run_daxpool(const struct bench_opts *o, uint64_t bytes, uint64_t align, unsigned reps,
		       uint64_t *t, uint64_t *t_alloc)
{
	char dir[PATH_MAX];
	struct daxpool *dp = NULL;
	pid_t pid = 0;
	int r = bench_pool_daemon_start(o, "prov", bytes + 64 * MiB, NULL, dir, sizeof(dir), &pid, &dp);

	for (unsigned i = 0; r == 0 && i < reps; i++) {
		struct daxpool_slice *s = NULL;
		void *a = NULL;
		uint64_t t0 = bench_now_ns();

		r = daxpool_alloc(dp, NULL, bytes, align, 0600, DAXPOOL_ANONYMOUS, &s);
		t_alloc[i] = bench_now_ns() - t0;
		if (r == 0)
			r = daxpool_map(s, 0, &a);
		t[i] = bench_now_ns() - t0;
		if (r < 0) {
			fprintf(stderr, "daxpool-bench provision: %s: %s\n", daxpool_strerror(r),
				daxpool_errormsg());
			daxpool_close(dp, &s);
			break;
		}
		((volatile char *)a)[0] = 1; /* it is really mapped and writable */
		r = daxpool_free(dp, &s);
		if (r == 0) {
			int64_t d = bench_drain_zeroing(dp, DRAIN_TIMEOUT_NS, NULL);
			r = d < 0 ? (int)d : 0;
		}
	}
	int st = bench_pool_daemon_stop(&dp, &pid, dir);
	if (r == 0 && st != 0) {
		fprintf(stderr, "daxpool-bench provision: daxpoold exited with status %d\n", st);
		r = -ECHILD;
	}
	return r;
}

struct region_find {
	const char *name;
	uint64_t align, max_extent;
	int found;
};

static int region_cb(const struct namespace_region_info *info, void *userdata)
{
	struct region_find *f = userdata;
	char num[32];

	snprintf(num, sizeof(num), "%u", info->id);
	if (strcmp(info->name, f->name) == 0 || strcmp(num, f->name) == 0) {
		f->align = info->align;
		f->max_extent = info->max_extent;
		f->found = 1;
		return 1;
	}
	return 0;
}

/* Opens /dev/NAME, waiting up to 10 s for the kernel (devtmpfs) to make the node. */
static int open_dev(const char *name)
{
	char path[128];

	snprintf(path, sizeof(path), "/dev/%s", name);
	for (int i = 0; i < 10000; i++) {
		int fd = open(path, O_RDWR | O_CLOEXEC);

		if (fd >= 0 || errno != ENOENT)
			return fd < 0 ? -errno : fd;
		bench_sleep_ns(1000000);
	}
	return -ENOENT;
}

/* A namespace per allocation: create + open + mmap (t), then munmap + destroy (t_down). */
static int run_ndctl(const struct bench_opts *o, uint64_t bytes, uint64_t align, unsigned reps,
		     uint64_t *t, uint64_t *t_down, const char **why)
{
	struct namespace_ctx *ctx = NULL;
	struct region_find f = {.name = o->region};
	int r = namespace_ctx_new(&ctx);

	if (r < 0) {
		*why = "libndctl/libdaxctl contexts could not be opened";
		return r;
	}
	namespace_region_foreach(ctx, region_cb, &f);
	if (!f.found) {
		*why = "no such NVDIMM region";
		namespace_ctx_delete(&ctx);
		return -ENOENT;
	}
	/* Room for the info block and the page map in front of the data (64 bytes per 4K page),
	 * rounded to the region's namespace alignment. */
	uint64_t unit = f.align > align ? f.align : align;
	uint64_t ns = bytes + bytes / 64 + 2 * align + 16 * MiB;
	ns = (ns + unit - 1) / unit * unit;
	for (unsigned i = 0; i < reps; i++) {
		char name[64];
		void *a = MAP_FAILED;
		int fd = -1;
		uint64_t t0 = bench_now_ns();

		r = namespace_create_devdax(ctx, o->region, ns, align, name, sizeof(name));
		bool created = r == 0;
		if (r == 0) {
			fd = open_dev(name);
			r = fd < 0 ? fd : 0;
		}
		if (r == 0) {
			a = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
			if (a == MAP_FAILED)
				r = -errno;
		}
		uint64_t t1 = bench_now_ns();
		if (r < 0) {
			fprintf(stderr, "daxpool-bench provision: namespace of %llu bytes in %s: %s (%s)\n",
				(unsigned long long)ns, o->region, strerror(-r), namespace_errormsg());
			*why = "namespace creation failed (see stderr)";
		} else {
			((volatile char *)a)[0] = 1;
			munmap(a, bytes);
		}
		if (fd >= 0)
			close(fd);
		int d = created ? namespace_destroy_devdax(ctx, name) : 0;
		if (d < 0) {
			fprintf(stderr, "daxpool-bench provision: destroy %s: %s\n", name, namespace_errormsg());
			if (r == 0) {
				r = d;
				*why = "namespace destruction failed (see stderr)";
			}
		}
		if (r < 0)
			break;
		t[i] = t1 - t0;
		t_down[i] = bench_now_ns() - t1;
	}
	namespace_ctx_delete(&ctx);
	return r;
}

int suite_provision(const struct bench_opts *o)
{
	uint64_t bytes = o->bytes ? o->bytes : o->quick ? 64 * MiB : GiB;
	unsigned reps = o->reps ? o->reps : o->quick ? 2 : 5;
	uint64_t align = DAXPOOL_ALIGN_2M, t_dp[MAX_REPS], t_nd[MAX_REPS], t_down[MAX_REPS];
	uint64_t t_alloc[MAX_REPS], t_map[MAX_REPS];
	const char *where = o->device ? o->device : "emulated 4K pool file";
	double load0 = bench_loadavg_1m(), dp_ms, nd_ms = 0;
	const char *why = NULL;
	int r;

	if (reps > MAX_REPS)
		reps = MAX_REPS;
	if (o->device && device_align(o->device) == GiB)
		align = DAXPOOL_ALIGN_1G;
	bytes = (bytes + align - 1) & ~(align - 1);
	r = run_daxpool(o, bytes, align, reps, t_dp, t_alloc);
	if (r < 0)
		return r;
	for (unsigned i = 0; i < reps; i++)
		t_map[i] = t_dp[i] - t_alloc[i];
	bench_row(SUITE, "daxpoold", "alloc_latency", median_ms(t_alloc, reps), "ms",
		  params_for(bytes, align, reps, "daxpool_alloc (round trip, fd passed)", where));
	bench_row(SUITE, "daxpoold", "map_latency", median_ms(t_map, reps), "ms",
		  params_for(bytes, align, reps, "daxpool_map (local)", where));
	dp_ms = median_ms(t_dp, reps);
	bench_row(SUITE, "daxpoold", "provision_latency", dp_ms, "ms",
		  params_for(bytes, align, reps, "daxpool_alloc + daxpool_map", where));
	if (!o->region) {
		why = "no --region: a namespace per allocation needs an NVDIMM region (the lab)";
	} else if (geteuid() != 0) {
		why = "creating namespaces needs root";
	} else if (run_ndctl(o, bytes, align, reps, t_nd, t_down, &why) == 0) {
		why = NULL;
		nd_ms = median_ms(t_nd, reps);
		bench_row(SUITE, "libndctl", "provision_latency", nd_ms, "ms",
			  params_for(bytes, align, reps,
				     "namespace_create_devdax + open + mmap (a namespace per allocation)",
				     o->region));
		bench_row(SUITE, "libndctl", "teardown_latency", median_ms(t_down, reps), "ms",
			  params_for(bytes, align, reps, "munmap + namespace_destroy_devdax", o->region));
		bench_row(SUITE, "ratio", "provision_latency_ratio", nd_ms / dp_ms, "x",
			  params_for(bytes, align, reps, "libndctl / daxpoold", o->region));
		char what[96];
		snprintf(what, sizeof(what), "a mapped %llu MiB slice >= 1000x faster than a namespace",
			 (unsigned long long)(bytes >> 20));
		bench_target_row(SUITE, "target_provision_ratio", what, nd_ms / dp_ms, TARGET_RATIO, "x",
				 nd_ms / dp_ms >= TARGET_RATIO);
	}
	if (why)
		bench_skip_row(SUITE, "libndctl", "provision_latency", why,
			       params_for(bytes, align, reps, "namespace_create_devdax + open + mmap",
					  o->region ? o->region : "-"));
	json_object *m = json_object_new_object();
	json_object_object_add(m, "bytes", json_object_new_int64((int64_t)bytes));
	bench_machine_row(SUITE, load0, m);
	return 0;
}
