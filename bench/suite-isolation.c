/*
 * daxpool-bench isolation: what it costs that a granted fd reaches only its slice.
 *
 * Two daxpoolds on emulated 4K pools in --dir (tmpfs by default), side by side in one run:
 * isolation "slice" (a file per slice: created at ALLOC, opened per grant, removed when the
 * extent is reused) and "shared" (the pool file's fd for everyone, as before isolation). In
 * rounds that alternate between them, one client measures the bare PING round trip and the
 * grant (ALLOC of an anonymous slice, reply and fd; then FREE, untimed here) of 4 KiB and 2 MiB
 * slices. Rows: p50/p99 per mode and size, the ratio grant p50 / PING p50 of the same round
 * (median over rounds, with min and max: the spread), and the target "grant p50 with isolation
 * <= 2x the PING round trip".
 */
#include "bench.h"
#include "daxpool.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SUITE "isolation"
#define SIZE_4K 4096ull
#define SIZE_2M (2ull << 20)

enum { MODE_SLICE, MODE_SHARED, NMODES };
static const char *const mode_name[NMODES] = { "slice", "shared" };

struct point {
	struct samples ping, grant4k, grant2m;
};

static int ping_loop(struct daxpool *dp, unsigned n, struct samples *s)
{
	for (unsigned i = 0; i < n; i++) {
		uint64_t a = bench_now_ns();
		int r = daxpool_ping(dp);
		uint64_t b = bench_now_ns();

		if (r < 0)
			return r;
		if (s && samples_add(s, b - a) < 0)
			return -ENOMEM;
	}
	return 0;
}

static int grant_loop(struct daxpool *dp, unsigned n, uint64_t size, struct samples *s)
{
	for (unsigned i = 0; i < n; i++) {
		struct daxpool_slice *sl = NULL;
		int r;

		/* Let the zeroing of earlier FREEs finish (untimed): a grant, not a race. */
		if (i % 64 == 63 && bench_drain_zeroing(dp, 10ull * 1000 * 1000 * 1000, NULL) < 0)
			return -ETIMEDOUT;
		uint64_t a = bench_now_ns();
		r = daxpool_alloc(dp, NULL, size, size, 0, DAXPOOL_ANONYMOUS, &sl);
		uint64_t b = bench_now_ns();
		if (r < 0)
			return r;
		r = daxpool_free(dp, &sl);
		if (r < 0)
			return r;
		if (s && samples_add(s, b - a) < 0)
			return -ENOMEM;
	}
	return 0;
}

static double p(struct samples *s, double q)
{
	return s->n ? (double)bench_quantile(s->v, s->n, q) : 0;
}

static json_object *params(const char *mode, const char *what, uint64_t size, int rounds)
{
	json_object *j = json_object_new_object();

	json_object_object_add(j, "isolation", json_object_new_string(mode));
	json_object_object_add(j, "what", json_object_new_string(what));
	if (size)
		json_object_object_add(j, "size", json_object_new_int64((int64_t)size));
	json_object_object_add(j, "rounds", json_object_new_int(rounds));
	json_object_object_add(j, "backend", json_object_new_string("emulated 4K (file per slice vs pool file)"));
	return j;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

int suite_isolation(const struct bench_opts *o)
{
	char dir[4096], sock[NMODES][4200], pool[NMODES][4200];
	pid_t pid[NMODES] = { 0 };
	struct daxpool *dp[NMODES] = { NULL };
	struct point pt[NMODES] = { 0 };
	int rounds = o->reps ? (int)o->reps : o->quick ? 2 : 7;
	unsigned n = o->quick ? 300 : 3000;
	double ratio[NMODES][2][32]; /* per mode, 4K/2M, per round: grant p50 / ping p50 */
	double load0 = bench_loadavg_1m();
	int r = 0;

	if (rounds > 32)
		rounds = 32;
	signal(SIGPIPE, SIG_IGN);
	if (bench_mkdtemp(o->dir, "iso", dir, sizeof(dir)) < 0)
		return -1;
	for (int m = 0; m < NMODES && r == 0; m++) {
		snprintf(sock[m], sizeof(sock[m]), "%s/%s.sock", dir, mode_name[m]);
		snprintf(pool[m], sizeof(pool[m]), "%s/%s.pool", dir, mode_name[m]);
		const char *args[] = { "--foreground", "--socket", sock[m], "--emulate", pool[m], "--size", "1G",
				       "--page", "4K", "--format-if-empty", "--isolation", mode_name[m],
				       "--log-level", "warning", NULL };
		r = bench_daemon_start(o, sock[m], args, &pid[m]);
		if (r == 0)
			r = daxpool_connect(sock[m], &dp[m]);
		if (r == 0) /* warm-up */
			r = grant_loop(dp[m], n / 10 + 10, SIZE_4K, NULL);
	}
	for (int round = 0; round < rounds && r == 0; round++) {
		/* Alternate which mode goes first, so neither always follows the other's noise. */
		for (int k = 0; k < NMODES && r == 0; k++) {
			int m = (k + round) % NMODES;
			struct point cur = { 0 };

			r = ping_loop(dp[m], n, &cur.ping);
			if (r == 0)
				r = grant_loop(dp[m], n, SIZE_4K, &cur.grant4k);
			if (r == 0)
				r = grant_loop(dp[m], n / 4, SIZE_2M, &cur.grant2m);
			if (r == 0) {
				double ping50 = p(&cur.ping, 0.5);

				ratio[m][0][round] = p(&cur.grant4k, 0.5) / ping50;
				ratio[m][1][round] = p(&cur.grant2m, 0.5) / ping50;
				for (uint64_t i = 0; i < cur.ping.n; i++)
					samples_add(&pt[m].ping, cur.ping.v[i]);
				for (uint64_t i = 0; i < cur.grant4k.n; i++)
					samples_add(&pt[m].grant4k, cur.grant4k.v[i]);
				for (uint64_t i = 0; i < cur.grant2m.n; i++)
					samples_add(&pt[m].grant2m, cur.grant2m.v[i]);
			}
			samples_free(&cur.ping);
			samples_free(&cur.grant4k);
			samples_free(&cur.grant2m);
		}
	}
	if (r < 0)
		fprintf(stderr, "daxpool-bench isolation: %s (%s)\n", daxpool_strerror(r), daxpool_errormsg());
	for (int m = 0; m < NMODES; m++) {
		daxpool_disconnect(&dp[m]);
		int st = pid[m] > 0 ? bench_daemon_stop(&pid[m]) : 0;
		if (r == 0 && st != 0) {
			fprintf(stderr, "daxpool-bench isolation: daxpoold (%s) exited with %d\n", mode_name[m], st);
			r = -ECHILD;
		}
	}
	bench_rmdir(dir);
	if (r < 0)
		return -1;

	double slice_ratio_4k = 0;
	for (int m = 0; m < NMODES; m++) {
		bench_row(SUITE, mode_name[m], "ping_p50", p(&pt[m].ping, 0.5), "ns", params(mode_name[m], "PING", 0, rounds));
		bench_row(SUITE, mode_name[m], "ping_p99", p(&pt[m].ping, 0.99), "ns", params(mode_name[m], "PING", 0, rounds));
		bench_row(SUITE, mode_name[m], "grant_p50", p(&pt[m].grant4k, 0.5), "ns", params(mode_name[m], "ALLOC", SIZE_4K, rounds));
		bench_row(SUITE, mode_name[m], "grant_p99", p(&pt[m].grant4k, 0.99), "ns", params(mode_name[m], "ALLOC", SIZE_4K, rounds));
		bench_row(SUITE, mode_name[m], "grant_p50", p(&pt[m].grant2m, 0.5), "ns", params(mode_name[m], "ALLOC", SIZE_2M, rounds));
		bench_row(SUITE, mode_name[m], "grant_p99", p(&pt[m].grant2m, 0.99), "ns", params(mode_name[m], "ALLOC", SIZE_2M, rounds));
		for (int sz = 0; sz < 2; sz++) {
			double v[32];

			memcpy(v, ratio[m][sz], sizeof(double) * (size_t)rounds);
			qsort(v, (size_t)rounds, sizeof(double), cmp_double);
			json_object *j = params(mode_name[m], "grant p50 / PING p50, same round", sz ? SIZE_2M : SIZE_4K, rounds);
			json_object_object_add(j, "min", json_object_new_double(v[0]));
			json_object_object_add(j, "max", json_object_new_double(v[rounds - 1]));
			double med = v[rounds / 2];
			bench_row(SUITE, mode_name[m], "grant_vs_ping_p50_ratio", med, "x", j);
			if (m == MODE_SLICE && sz == 0)
				slice_ratio_4k = med;
		}
	}
	bench_row(SUITE, "ratio", "grant_p50_slice_vs_shared",
		  p(&pt[MODE_SLICE].grant4k, 0.5) / p(&pt[MODE_SHARED].grant4k, 0.5), "x",
		  params("slice / shared", "ALLOC", SIZE_4K, rounds));
	bench_row(SUITE, "ratio", "grant_p50_slice_vs_shared",
		  p(&pt[MODE_SLICE].grant2m, 0.5) / p(&pt[MODE_SHARED].grant2m, 0.5), "x",
		  params("slice / shared", "ALLOC", SIZE_2M, rounds));
	bench_target_row(SUITE, "target_isolated_grant_vs_ping", "4 KiB grant p50 with isolation <= 2x PING p50",
			 slice_ratio_4k, 2.0, "x", slice_ratio_4k <= 2.0);
	for (int m = 0; m < NMODES; m++) {
		samples_free(&pt[m].ping);
		samples_free(&pt[m].grant4k);
		samples_free(&pt[m].grant2m);
	}
	json_object *mrow = json_object_new_object();
	json_object_object_add(mrow, "ops_per_round", json_object_new_int((int)n));
	bench_machine_row(SUITE, load0, mrow);
	return 0;
}
