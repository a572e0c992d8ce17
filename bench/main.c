/* daxpool-bench: one benchmark suite per subcommand, JSON rows on stdout (one object per line). */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "bench.h"

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

uint64_t bench_quantile(uint64_t *s, uint64_t n, double q)
{
	if (n == 0)
		return 0;
	qsort(s, n, sizeof(*s), cmp_u64);
	uint64_t i = (uint64_t)(q * (double)(n - 1) + 0.5);
	return s[i];
}

uint64_t bench_now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* On a terminal, a status line on stderr after each row: which suite, how many rows, how long,
 * and the last row's metric (suites do not know their total, so there is no ETA here; long steps
 * draw their own line with one: bench_progress). Erased before each row and at exit. */
static struct {
	bool tty, shown;
	unsigned rows;
	uint64_t t0;
} status_line;

static void status_line_erase(void)
{
	if (status_line.shown) {
		fputs("\r\033[K", stderr);
		fflush(stderr);
		status_line.shown = false;
	}
}

void bench_row(const char *suite, const char *system, const char *metric, double value,
	       const char *unit, json_object *params)
{
	status_line_erase();
	json_object *o = json_object_new_object();
	json_object_object_add(o, "suite", json_object_new_string(suite));
	json_object_object_add(o, "system", json_object_new_string(system));
	json_object_object_add(o, "metric", json_object_new_string(metric));
	json_object_object_add(o, "value", json_object_new_double(value));
	json_object_object_add(o, "unit", json_object_new_string(unit));
	json_object_object_add(o, "params", params ? params : json_object_new_object());
	printf("%s\n", json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN));
	fflush(stdout);
	json_object_put(o);
	if (status_line.tty) {
		status_line.rows++;
		fprintf(stderr, "\r\033[K%s: %u row%s in %.0f s; last: %s %s", suite, status_line.rows,
			status_line.rows == 1 ? "" : "s", (double)(bench_now_ns() - status_line.t0) / 1e9,
			system, metric);
		fflush(stderr);
		status_line.shown = true;
	}
}

/* "64M", "1G", "4096": bytes; -EINVAL for anything else or 0. */
static int parse_bytes(const char *s, uint64_t *ret)
{
	char *end;
	uint64_t v;

	errno = 0;
	v = strtoull(s, &end, 0);
	if (errno || end == s || v == 0)
		return -EINVAL;
	switch (*end) {
	case 'K': case 'k': v <<= 10; end++; break;
	case 'M': case 'm': v <<= 20; end++; break;
	case 'G': case 'g': v <<= 30; end++; break;
	default: break;
	}
	if (*end)
		return -EINVAL;
	*ret = v;
	return 0;
}

static const struct {
	const char *name;
	int (*fn)(const struct bench_opts *o);
	const char *help;
} suites[] = {
	{"alloc", suite_alloc,
	 "in-process allocator: alloc/free throughput and p50/p99 latency vs libpmemobj"},
	{"service", suite_service,
	 "through daxpoold: grant latency, alloc+free rate at 1/8/64 clients vs in-process"},
	{"touch", suite_touch,
	 "first touch of 1 GiB via daxpool_map vs direct mmap vs anonymous huge pages; alloc+map+free 2M"},
	{"provision", suite_provision,
	 "a mapped 1 GiB slice from daxpoold vs a devdax namespace per allocation (libndctl)"},
	{"pin", suite_pin, "long-term pin + unpin per GiB: io_uring buffers, ibv_reg_mr, per page size"},
	{"zero", suite_zero, "daxpoold's background zeroing bandwidth vs memset of the same memory"},
	{"isolation", suite_isolation,
	 "grant latency with a file per slice (isolation) vs the shared pool file, next to PING"},
	{"scale", suite_scale, "1..256 clients, 1k..1M live allocations, daemon memory per allocation"},
	{"fairness", suite_fairness,
	 "one uid's grant latency while another uid floods ALLOC/FREE/PING from --counts N (16)\n"
	 "           connections (needs root)"},
};

static void usage(FILE *f)
{
	fprintf(f, "usage: daxpool-bench SUITE [--dir DIR] [--counts N,N,...] [--ops N] "
		   "[--system all|daxpool|pmemobj]\n"
		   "       daxpool-bench service [--dir DIR] [--daemon PATH] [--duration S] [--quick]\n"
		   "       daxpool-bench touch|pin|zero|provision|scale [--dir DIR] [--daemon PATH] [--quick]\n"
		   "                     [--device /dev/daxX.Y] [--region REGION] [--bytes N[K|M|G]]\n"
		   "                     [--reps N] [--counts N,...] [--duration S]\n"
		   "suites:\n");
	for (size_t i = 0; i < sizeof(suites) / sizeof(suites[0]); i++)
		fprintf(f, "  %-8s %s\n", suites[i].name, suites[i].help);
}

int main(int argc, char **argv)
{
	struct bench_opts o = {.dir = NULL, .system = "all", .counts = {1000, 100000, 1000000},
			       .ncounts = 3, .ops = 100000};
	static const struct option longopts[] = {
		{"dir", required_argument, NULL, 'd'},   {"counts", required_argument, NULL, 'c'},
		{"ops", required_argument, NULL, 'o'},   {"system", required_argument, NULL, 's'},
		{"daemon", required_argument, NULL, 'D'}, {"duration", required_argument, NULL, 't'},
		{"quick", no_argument, NULL, 'q'},       {"help", no_argument, NULL, 'h'},
		{"device", required_argument, NULL, 'V'}, {"region", required_argument, NULL, 'R'},
		{"bytes", required_argument, NULL, 'b'},  {"reps", required_argument, NULL, 'r'},
		{0},
	};
	int c;

	/* libpmem reads PMEM_IS_PMEM_FORCE in its constructor, before main: to force both libraries
	 * to cache-line persistence (see alloc.c) the environment must be set before exec. Explicit
	 * values from the caller are kept. */
	if (!getenv("DAXPOOL_BENCH_REEXEC")) {
		setenv("DAXPOOL_BENCH_REEXEC", "1", 1);
		setenv("PMEM_IS_PMEM_FORCE", "1", 0);
		setenv("PMEM2_FORCE_GRANULARITY", "CACHE_LINE", 0);
		execv("/proc/self/exe", argv);
		fprintf(stderr, "daxpool-bench: re-exec failed: %m\n");
		return 1;
	}
	if (argc < 2 || argv[1][0] == '-') {
		usage(argc < 2 ? stderr : stdout);
		return argc < 2 ? 2 : 0;
	}
	const char *suite = argv[1];
	optind = 2;
	while ((c = getopt_long(argc, argv, "d:c:o:s:D:t:qhV:R:b:r:", longopts, NULL)) != -1) {
		switch (c) {
		case 'd':
			o.dir = optarg;
			o.dir_given = 1;
			break;
		case 'c': {
			char *save = NULL, *tok;
			o.ncounts = 0;
			o.counts_given = 1;
			for (tok = strtok_r(optarg, ",", &save); tok && o.ncounts < 8;
			     tok = strtok_r(NULL, ",", &save)) {
				char *end;
				errno = 0;
				o.counts[o.ncounts++] = strtoull(tok, &end, 0);
				if (errno || *end || end == tok) {
					fprintf(stderr, "daxpool-bench: --counts takes numbers: '%s'\n", tok);
					return 2;
				}
			}
			break;
		}
		case 'V':
			o.device = optarg;
			break;
		case 'R':
			o.region = optarg;
			break;
		case 'b':
			if (parse_bytes(optarg, &o.bytes) < 0) {
				fprintf(stderr, "daxpool-bench: --bytes takes a size > 0 (K, M, G suffixes), not '%s'\n",
					optarg);
				return 2;
			}
			break;
		case 'r': {
			char *end;
			unsigned long v = strtoul(optarg, &end, 10);
			if (*end || end == optarg || v < 1 || v > 32) {
				fprintf(stderr, "daxpool-bench: --reps takes 1..32, not '%s'\n", optarg);
				return 2;
			}
			o.reps = (unsigned)v;
			break;
		}
		case 'o':
			o.ops = strtoull(optarg, NULL, 0);
			break;
		case 's':
			o.system = optarg;
			break;
		case 'D':
			o.daemon = optarg;
			break;
		case 't':
			o.duration = strtod(optarg, NULL);
			if (!(o.duration > 0)) {
				fprintf(stderr, "daxpool-bench: --duration needs a positive number of seconds\n");
				return 2;
			}
			break;
		case 'q':
			o.quick = 1;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (!o.dir) {
		const char *t = getenv("TMPDIR");
		o.dir = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : t && *t ? t : "/tmp";
	}
	for (size_t i = 0; i < sizeof(suites) / sizeof(suites[0]); i++)
		if (strcmp(suites[i].name, suite) == 0) {
			bench_suite_begin();
			status_line.tty = isatty(STDERR_FILENO) == 1;
			status_line.t0 = bench_now_ns();
			atexit(status_line_erase);
			return suites[i].fn(&o) < 0 ? 1 : 0;
		}
	fprintf(stderr, "daxpool-bench: unknown suite '%s'\n", suite);
	usage(stderr);
	return 2;
}
