/* SPDX-License-Identifier: MIT */
/*
 * lab-slice-check: a libdaxpool client for the device-dax lab (tests/lab/daemon-devdax.sh).
 *
 *   lab-slice-check --socket PATH [--json FILE] [--mib N] [--slack N] [--seed N] faults
 *   lab-slice-check --socket PATH [--json FILE] [--mib N] [--slack N] [--seed N] write NAME
 *   lab-slice-check --socket PATH [--json FILE] [--mib N] [--slack N] [--seed N] verify NAME
 *   lab-slice-check --socket PATH [--json FILE] free NAME
 *
 * The alignment of every slice is the pool's device alignment (daxpool_stat's device_align).
 *
 *  faults  allocates an anonymous slice of N MiB (default 64), maps the passed fd at the slice's
 *          offset at an address aligned to the slice alignment (MAP_SHARED_VALIDATE|MAP_SYNC when
 *          the slice supports it), writes a pattern over it, maps it again and verifies; the minor
 *          faults of both passes must be N MiB / alignment (+ at most --slack, default 16):
 *          16384 / 32 / 1 for 64 MiB at 4K / 2M / 1G. Then frees the slice and waits until the
 *          daemon has zeroed and released the extent.
 *  write   allocates the named slice, writes the pattern of --seed over it (counting faults as
 *          above), and closes it: the slice stays in the pool.
 *  verify  opens the named slice read-write (e.g. after a daemon restart), checks the pattern
 *          through a fresh mapping (counting faults), then frees it.
 *  free    frees the named slice (e.g. one an example left) and waits until it is zeroed.
 *
 * Writes {"ok", "mode", "name", "pool_uuid", "pool_size", "data_size", "align", "device_align",
 * "backend", "map_sync", "offset", "length", "touch_bytes", "faults": {"expected", "slack",
 * "write", "read"}, "write_ms", "read_ms", "pattern_ok", "seed", "error"} to --json. Exit status: 0 passed, 1 a check failed, 2 usage or set-up.
 * Built without sanitizers: it counts page faults.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "daxpool.h"

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#ifndef MAP_SHARED_VALIDATE
#define MAP_SHARED_VALIDATE 0x03
#endif
#ifndef MAP_SYNC
#define MAP_SYNC 0x80000
#endif

struct check {
	const char *mode, *name;
	uint64_t align, device_align, offset, length, touch, expected, slack, seed;
	uint64_t pool_size, data_size;
	unsigned backend;
	char uuid[37];
	bool map_sync, pattern_ok, ok, have_write, have_read;
	long write_faults, read_faults;
	double write_ms, read_ms;
	char error[512];
};

static void fail(struct check *c, const char *fmt, ...)
{
	va_list ap;

	if (c->error[0])
		return; /* the first failure is the one that matters */
	va_start(ap, fmt);
	vsnprintf(c->error, sizeof(c->error), fmt, ap);
	va_end(ap);
	c->ok = false;
}

static double now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static long minflt(void)
{
	struct rusage ru;

	getrusage(RUSAGE_SELF, &ru);
	return ru.ru_minflt;
}

/* Maps the slice at an address aligned to its alignment: a PROT_NONE reservation of len + align,
 * then the slice's fd MAP_FIXED over the aligned part. NULL on failure (message in c). */
static uint64_t *map_slice(struct check *c, const struct daxpool_slice *s)
{
	size_t len = daxpool_slice_get_length(s), align = daxpool_slice_get_alignment(s);
	size_t resv_len = len + align;
	uint8_t *resv, *start;
	int flags = MAP_SHARED | MAP_FIXED;
	void *p;

	if (daxpool_slice_supports_map_sync(s))
		flags = MAP_SHARED_VALIDATE | MAP_SYNC | MAP_FIXED;
	resv = mmap(NULL, resv_len, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (resv == MAP_FAILED) {
		fail(c, "mmap reservation of %zu bytes: %s", resv_len, strerror(errno));
		return NULL;
	}
	start = (uint8_t *)(((uintptr_t)resv + align - 1) & ~(uintptr_t)(align - 1));
	p = mmap(start, len, PROT_READ | PROT_WRITE, flags, daxpool_slice_get_fd(s),
		 (off_t)daxpool_slice_get_offset(s));
	if (p == MAP_FAILED) {
		fail(c, "mmap of the slice fd at offset %" PRIu64 " length %zu (%s): %s",
		     daxpool_slice_get_offset(s), len,
		     flags & MAP_SYNC ? "MAP_SHARED_VALIDATE|MAP_SYNC" : "MAP_SHARED", strerror(errno));
		munmap(resv, resv_len);
		return NULL;
	}
	if (start > resv)
		munmap(resv, (size_t)(start - resv));
	if (start + len < resv + resv_len)
		munmap(start + len, (size_t)(resv + resv_len - (start + len)));
	return p;
}

static inline uint64_t pattern(uint64_t seed, uint64_t i)
{
	uint64_t x = (i + 1) * 0x9e3779b97f4a7c15ULL ^ seed;

	return x ^ (x >> 29);
}

static void write_pass(struct check *c, const struct daxpool_slice *s)
{
	volatile uint64_t *w = map_slice(c, s);
	double t0;
	long f0;

	if (!w)
		return;
	t0 = now_ms();
	f0 = minflt();
	for (uint64_t i = 0; i < c->touch / sizeof(uint64_t); i++)
		w[i] = pattern(c->seed, i);
	c->write_faults = minflt() - f0;
	c->write_ms = now_ms() - t0;
	c->have_write = true;
	munmap((void *)w, c->length);
}

static void read_pass(struct check *c, const struct daxpool_slice *s)
{
	volatile uint64_t *w = map_slice(c, s);
	uint64_t bad = UINT64_MAX;
	double t0;
	long f0;

	if (!w)
		return;
	t0 = now_ms();
	f0 = minflt();
	for (uint64_t i = 0; i < c->touch / sizeof(uint64_t); i++)
		if (w[i] != pattern(c->seed, i)) {
			bad = i * sizeof(uint64_t);
			break;
		}
	c->read_faults = minflt() - f0;
	c->read_ms = now_ms() - t0;
	c->have_read = true;
	c->pattern_ok = bad == UINT64_MAX;
	if (!c->pattern_ok)
		fail(c, "pattern mismatch at slice offset %" PRIu64 " (seed %" PRIu64 ")", bad, c->seed);
	munmap((void *)w, c->length);
}

static void check_faults(struct check *c, const char *what, long faults)
{
	if (faults < (long)c->expected || faults > (long)(c->expected + c->slack))
		fail(c, "%s pass: %ld minor faults for %" PRIu64 " MiB at alignment %" PRIu64
			" KiB, expected %" PRIu64 " (+%" PRIu64 ")",
		     what, faults, c->touch >> 20, c->align >> 10, c->expected, c->slack);
}

/* Slice geometry and the expected fault count. */
static void describe(struct check *c, const struct daxpool_slice *s)
{
	c->offset = daxpool_slice_get_offset(s);
	c->length = daxpool_slice_get_length(s);
	c->align = daxpool_slice_get_alignment(s);
	c->map_sync = daxpool_slice_supports_map_sync(s);
	if (c->touch > c->length)
		c->touch = c->length;
	c->expected = (c->touch + c->align - 1) / c->align;
	if (c->offset % c->align)
		fail(c, "slice offset %" PRIu64 " is not a multiple of its alignment %" PRIu64,
		     c->offset, c->align);
	if (c->align != c->device_align)
		fail(c, "slice alignment %" PRIu64 " is not the requested %" PRIu64, c->align,
		     c->device_align);
}

/* Polls STAT until no freed extent waits for zeroing, holders or grace (up to 120 s). */
static void wait_settled(struct check *c, struct daxpool *dp)
{
	struct daxpool_stats st;

	for (int i = 0; i < 12000; i++) {
		if (daxpool_stat(dp, &st, sizeof(st)) < 0) {
			fail(c, "daxpool_stat: %s", daxpool_errormsg());
			return;
		}
		if (st.quarantined == 0 && st.leases_waiting == 0 && st.zeroing_pending_bytes == 0)
			return;
		usleep(10000);
	}
	fail(c, "freed extent never settled: %" PRIu64 " quarantined, %" PRIu64 " waiting, %" PRIu64
		" bytes to zero",
	     st.quarantined, st.leases_waiting, st.zeroing_pending_bytes);
}

static void run(struct check *c, struct daxpool *dp)
{
	struct daxpool_slice *s = NULL;
	struct daxpool_stats st;
	int r;

	if (daxpool_stat(dp, &st, sizeof(st)) < 0) {
		fail(c, "daxpool_stat: %s", daxpool_errormsg());
		return;
	}
	c->device_align = st.device_align;
	c->backend = st.backend;
	c->pool_size = st.pool_size;
	c->data_size = st.data_size;
	for (int i = 0, o = 0; i < 16; i++)
		o += snprintf(c->uuid + o, sizeof(c->uuid) - (size_t)o, "%s%02x",
			      i == 4 || i == 6 || i == 8 || i == 10 ? "-" : "", st.uuid[i]);
	if (strcmp(c->mode, "faults") == 0) {
		r = daxpool_alloc(dp, NULL, c->touch, c->device_align, 0, DAXPOOL_ANONYMOUS, &s);
		if (r < 0) {
			fail(c, "daxpool_alloc(anonymous, %" PRIu64 " bytes, align %" PRIu64 "): %s", c->touch,
			     c->device_align, daxpool_errormsg());
			return;
		}
		describe(c, s);
		write_pass(c, s);
		read_pass(c, s);
		r = daxpool_free(dp, &s);
		if (r < 0)
			fail(c, "daxpool_free: %s", daxpool_errormsg());
		else
			wait_settled(c, dp);
	} else if (strcmp(c->mode, "write") == 0) {
		r = daxpool_alloc(dp, c->name, c->touch, c->device_align, 0600, 0, &s);
		if (r < 0) {
			fail(c, "daxpool_alloc(\"%s\", %" PRIu64 " bytes, align %" PRIu64 "): %s", c->name,
			     c->touch, c->device_align, daxpool_errormsg());
			return;
		}
		describe(c, s);
		write_pass(c, s);
		r = daxpool_close(dp, &s);
		if (r < 0)
			fail(c, "daxpool_close: %s", daxpool_errormsg());
	} else {
		r = daxpool_open(dp, c->name, DAXPOOL_OPEN_RDWR, &s);
		if (r < 0) {
			fail(c, "daxpool_open(\"%s\", RDWR): %s", c->name, daxpool_errormsg());
			return;
		}
		if (strcmp(c->mode, "verify") == 0) {
			describe(c, s);
			read_pass(c, s);
		} else {
			c->offset = daxpool_slice_get_offset(s);
			c->length = daxpool_slice_get_length(s);
			c->align = daxpool_slice_get_alignment(s);
			c->map_sync = daxpool_slice_supports_map_sync(s);
		}
		r = daxpool_free(dp, &s);
		if (r < 0)
			fail(c, "daxpool_free: %s", daxpool_errormsg());
		else
			wait_settled(c, dp);
	}
	if (c->have_write)
		check_faults(c, "writing", c->write_faults);
	if (c->have_read)
		check_faults(c, "reading", c->read_faults);
	if (c->map_sync != (c->backend == 1))
		fail(c, "map_sync is %s on a %s pool", c->map_sync ? "supported" : "not supported",
		     c->backend == 1 ? "devdax" : "emulated");
}

static void json_string(FILE *f, const char *s)
{
	fputc('"', f);
	for (; s && *s; s++) {
		if (*s == '"' || *s == '\\')
			fprintf(f, "\\%c", *s);
		else if ((unsigned char)*s < 0x20)
			fprintf(f, "\\u%04x", *s);
		else
			fputc(*s, f);
	}
	fputc('"', f);
}

static void write_json(const struct check *c, FILE *f)
{
	fprintf(f, "{\"ok\": %s, \"mode\": ", c->ok ? "true" : "false");
	json_string(f, c->mode);
	fputs(", \"name\": ", f);
	if (c->name)
		json_string(f, c->name);
	else
		fputs("null", f);
	fputs(", \"pool_uuid\": ", f);
	json_string(f, c->uuid);
	fprintf(f,
		", \"pool_size\": %" PRIu64 ", \"data_size\": %" PRIu64
		", \"align\": %" PRIu64 ", \"device_align\": %" PRIu64 ", \"backend\": %u"
		", \"map_sync\": %s, \"offset\": %" PRIu64 ", \"length\": %" PRIu64
		", \"touch_bytes\": %" PRIu64 ",\n \"faults\": {\"expected\": %" PRIu64
		", \"slack\": %" PRIu64 ", \"write\": ",
		c->pool_size, c->data_size, c->align, c->device_align, c->backend, c->map_sync ? "true" : "false", c->offset,
		c->length, c->touch, c->expected, c->slack);
	if (c->have_write)
		fprintf(f, "%ld", c->write_faults);
	else
		fputs("null", f);
	fputs(", \"read\": ", f);
	if (c->have_read)
		fprintf(f, "%ld", c->read_faults);
	else
		fputs("null", f);
	fprintf(f, "}, \"write_ms\": %.1f, \"read_ms\": %.1f, \"pattern_ok\": %s, \"seed\": %" PRIu64
		   ", \"error\": ",
		c->write_ms, c->read_ms, c->have_read ? (c->pattern_ok ? "true" : "false") : "null",
		c->seed);
	if (c->error[0])
		json_string(f, c->error);
	else
		fputs("null", f);
	fputs("}\n", f);
}

static void usage(FILE *f)
{
	fputs("usage: lab-slice-check --socket PATH [--json FILE] [--mib N] [--slack N] [--seed N]\n"
	      "                       faults | write NAME | verify NAME | free NAME\n",
	      f);
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "socket", required_argument, NULL, 'S' }, { "json", required_argument, NULL, 'j' },
		{ "mib", required_argument, NULL, 'm' },    { "slack", required_argument, NULL, 's' },
		{ "seed", required_argument, NULL, 'e' },   { "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct check c = { .slack = 16, .ok = true, .seed = 0x5eed };
	const char *socket_path = NULL, *json = NULL;
	uint64_t mib = 64;
	struct daxpool *dp = NULL;
	int o;

	while ((o = getopt_long(argc, argv, "S:j:m:s:e:h", opts, NULL)) != -1) {
		switch (o) {
		case 'S':
			socket_path = optarg;
			break;
		case 'j':
			json = optarg;
			break;
		case 'm':
			mib = strtoull(optarg, NULL, 0);
			break;
		case 's':
			c.slack = strtoull(optarg, NULL, 0);
			break;
		case 'e':
			c.seed = strtoull(optarg, NULL, 0);
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind >= argc || mib == 0) {
		usage(stderr);
		return 2;
	}
	c.mode = argv[optind++];
	if (strcmp(c.mode, "faults") == 0) {
		if (optind != argc) {
			usage(stderr);
			return 2;
		}
	} else if (strcmp(c.mode, "write") == 0 || strcmp(c.mode, "verify") == 0 ||
		   strcmp(c.mode, "free") == 0) {
		if (optind != argc - 1) {
			usage(stderr);
			return 2;
		}
		c.name = argv[optind];
	} else {
		usage(stderr);
		return 2;
	}
	c.touch = mib << 20;

	if (daxpool_connect(socket_path, &dp) < 0)
		fail(&c, "daxpool_connect(%s): %s", socket_path ? socket_path : "default",
		     daxpool_errormsg());
	else
		run(&c, dp);
	daxpool_disconnect(&dp);

	printf("lab-slice-check %s%s%s: align %" PRIu64 " KiB, offset %" PRIu64 ", %" PRIu64
	       " MiB touched, map_sync %s, faults write %ld read %ld (expected %" PRIu64
	       "), %.1f/%.1f ms: %s\n",
	       c.mode, c.name ? " " : "", c.name ? c.name : "", c.align >> 10, c.offset, c.touch >> 20,
	       c.map_sync ? "yes" : "no", c.write_faults, c.read_faults, c.expected, c.write_ms,
	       c.read_ms, c.ok ? "PASS" : c.error);
	if (json) {
		FILE *f = fopen(json, "we");

		if (!f) {
			perror(json);
			return 2;
		}
		write_json(&c, f);
		if (fclose(f) != 0) {
			perror(json);
			return 2;
		}
	}
	return c.ok ? 0 : 1;
}
