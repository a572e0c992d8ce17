/* SPDX-License-Identifier: MIT */
/*
 * lab-devdax-smoke: the first payload of the device-dax lab (tests/lab/).
 *
 *   lab-devdax-smoke [--json FILE] [--touch-mib N] [--slack N] /dev/daxX.Y
 *
 * Opens a device-dax character device, reads its size and alignment from sysfs, maps an
 * alignment-aligned range MAP_SHARED, writes a pattern over the first N MiB (default 64) and reads
 * it back, then maps the device again and verifies the pattern through the new mapping. The minor
 * faults (getrusage) taken by the writing pass and by the re-mapped reading pass must be
 * N MiB / alignment (16384 at 4K, 32 at 2M, 1 at 1G for 64 MiB), plus at most --slack (default 16).
 * Prints a summary; with --json, writes the measurements as JSON ("ok": true|false).
 * Exit status: 0 checks passed, 1 a check failed, 2 usage or set-up error.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <time.h>
#include <unistd.h>

#define PAGE 4096UL

struct smoke {
	const char *device;
	char sysfs[256];
	uint64_t size;
	uint64_t align;
	uint64_t touch;
	uint64_t map_len;
	uint64_t expected;
	uint64_t slack;
	uint64_t seed;
	long write_faults;
	long read_faults;
	double write_ms;
	double read_ms;
	bool pattern_ok;
	uint64_t bad_offset;
	bool ok;
	char error[256];
};

static void fail_setup(const char *what, const char *arg)
{
	fprintf(stderr, "lab-devdax-smoke: %s %s: %s\n", what, arg ? arg : "", strerror(errno));
	exit(2);
}

static int read_u64(const char *path, uint64_t *val)
{
	char buf[64];
	FILE *f = fopen(path, "re");
	int rc = -1;

	if (!f)
		return -1;
	if (fgets(buf, sizeof(buf), f)) {
		char *end;

		errno = 0;
		*val = strtoull(buf, &end, 0);
		if (errno == 0 && end != buf)
			rc = 0;
	}
	fclose(f);
	return rc;
}

/* size and align of the dax device behind the character device, from sysfs. */
static void read_geometry(struct smoke *s, int fd)
{
	static const char *const align_files[] = { "align", "device/dax_region/align" };
	struct stat st;
	char path[320];

	if (fstat(fd, &st) < 0)
		fail_setup("fstat", s->device);
	if (!S_ISCHR(st.st_mode)) {
		fprintf(stderr, "lab-devdax-smoke: %s is not a character device\n", s->device);
		exit(2);
	}
	snprintf(s->sysfs, sizeof(s->sysfs), "/sys/dev/char/%u:%u", major(st.st_rdev),
		 minor(st.st_rdev));
	snprintf(path, sizeof(path), "%s/size", s->sysfs);
	if (read_u64(path, &s->size) < 0)
		fail_setup("cannot read", path);
	s->align = 0;
	for (size_t i = 0; i < sizeof(align_files) / sizeof(align_files[0]); i++) {
		snprintf(path, sizeof(path), "%s/%s", s->sysfs, align_files[i]);
		if (read_u64(path, &s->align) == 0)
			break;
	}
	if (s->align == 0 || (s->align & (s->align - 1)) != 0) {
		fprintf(stderr, "lab-devdax-smoke: no usable alignment in %s/align\n", s->sysfs);
		exit(2);
	}
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

/* Maps map_len bytes of the device at an address aligned to the device's alignment. */
static uint64_t *map_aligned(const struct smoke *s, int fd)
{
	size_t resv_len = s->map_len + s->align;
	uint8_t *resv, *start;
	void *p;

	resv = mmap(NULL, resv_len, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (resv == MAP_FAILED)
		fail_setup("mmap reservation for", s->device);
	start = (uint8_t *)(((uintptr_t)resv + s->align - 1) & ~(uintptr_t)(s->align - 1));
	p = mmap(start, s->map_len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_FIXED, fd, 0);
	if (p == MAP_FAILED)
		fail_setup("mmap MAP_SHARED", s->device);
	if (start > resv)
		munmap(resv, (size_t)(start - resv));
	if (start + s->map_len < resv + resv_len)
		munmap(start + s->map_len, (size_t)(resv + resv_len - (start + s->map_len)));
	return p;
}

static inline uint64_t pattern(uint64_t seed, uint64_t i)
{
	uint64_t x = (i + 1) * 0x9e3779b97f4a7c15ULL ^ seed;

	return x ^ (x >> 29);
}

/* Checks the pattern; returns true if intact, else records the first bad offset. */
static bool verify(struct smoke *s, const volatile uint64_t *w)
{
	for (uint64_t i = 0; i < s->touch / sizeof(uint64_t); i++) {
		if (w[i] != pattern(s->seed, i)) {
			s->bad_offset = i * sizeof(uint64_t);
			return false;
		}
	}
	return true;
}

static void run(struct smoke *s, int fd)
{
	volatile uint64_t *w;
	long f0;
	double t0;

	/* Writing pass: the first store to each page (or huge page) takes the fault. */
	w = map_aligned(s, fd);
	t0 = now_ms();
	f0 = minflt();
	for (uint64_t i = 0; i < s->touch / sizeof(uint64_t); i++)
		w[i] = pattern(s->seed, i);
	s->write_faults = minflt() - f0;
	s->write_ms = now_ms() - t0;
	s->pattern_ok = verify(s, w);
	munmap((void *)w, s->map_len);

	/* Reading pass through a new mapping: the data must come from the device. */
	w = map_aligned(s, fd);
	t0 = now_ms();
	f0 = minflt();
	if (s->pattern_ok)
		s->pattern_ok = verify(s, w);
	s->read_faults = minflt() - f0;
	s->read_ms = now_ms() - t0;
	munmap((void *)w, s->map_len);

	s->ok = s->pattern_ok;
	if (!s->pattern_ok)
		snprintf(s->error, sizeof(s->error), "pattern mismatch at offset %" PRIu64,
			 s->bad_offset);
	else if (s->write_faults < (long)s->expected ||
		 s->write_faults > (long)(s->expected + s->slack) ||
		 s->read_faults < (long)s->expected ||
		 s->read_faults > (long)(s->expected + s->slack)) {
		s->ok = false;
		snprintf(s->error, sizeof(s->error),
			 "minor faults write %ld read %ld, expected %" PRIu64 " (+%" PRIu64 ")",
			 s->write_faults, s->read_faults, s->expected, s->slack);
	}
}

static void write_json(const struct smoke *s, FILE *f)
{
	fprintf(f,
		"{\"ok\": %s, \"device\": \"%s\", \"sysfs\": \"%s\", \"size\": %" PRIu64
		", \"align\": %" PRIu64 ", \"map_len\": %" PRIu64 ", \"touch_bytes\": %" PRIu64 ",\n"
		" \"faults\": {\"expected\": %" PRIu64 ", \"slack\": %" PRIu64
		", \"write\": %ld, \"read\": %ld},\n"
		" \"write_ms\": %.1f, \"read_ms\": %.1f, \"pattern_ok\": %s, \"error\": ",
		s->ok ? "true" : "false", s->device, s->sysfs, s->size, s->align, s->map_len,
		s->touch, s->expected, s->slack, s->write_faults, s->read_faults, s->write_ms,
		s->read_ms, s->pattern_ok ? "true" : "false");
	if (s->error[0])
		fprintf(f, "\"%s\"}\n", s->error); /* our own text: no characters to escape */
	else
		fputs("null}\n", f);
}

static void usage(FILE *f)
{
	fputs("usage: lab-devdax-smoke [--json FILE] [--touch-mib N] [--slack N] /dev/daxX.Y\n", f);
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "json", required_argument, NULL, 'j' },
		{ "touch-mib", required_argument, NULL, 't' },
		{ "slack", required_argument, NULL, 's' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct smoke s = { .slack = 16 };
	const char *json = NULL;
	uint64_t touch_mib = 64;
	int c, fd;

	while ((c = getopt_long(argc, argv, "j:t:s:h", opts, NULL)) != -1) {
		switch (c) {
		case 'j':
			json = optarg;
			break;
		case 't':
			touch_mib = strtoull(optarg, NULL, 0);
			break;
		case 's':
			s.slack = strtoull(optarg, NULL, 0);
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind != argc - 1 || touch_mib == 0) {
		usage(stderr);
		return 2;
	}
	s.device = argv[optind];
	fd = open(s.device, O_RDWR | O_CLOEXEC);
	if (fd < 0)
		fail_setup("open", s.device);
	read_geometry(&s, fd);

	s.touch = touch_mib << 20;
	if (s.touch > s.size)
		s.touch = s.size & ~(PAGE - 1);
	s.map_len = (s.touch + s.align - 1) & ~(s.align - 1);
	if (s.map_len > s.size) {
		fprintf(stderr, "lab-devdax-smoke: %s: size %" PRIu64 " is below its alignment %" PRIu64 "\n",
			s.device, s.size, s.align);
		return 2;
	}
	s.expected = (s.touch + s.align - 1) / s.align;
	s.seed = (uint64_t)time(NULL) ^ ((uint64_t)getpid() << 32);

	run(&s, fd);
	close(fd);

	printf("lab-devdax-smoke: %s size %" PRIu64 " MiB align %" PRIu64 " KiB: touched %" PRIu64
	       " MiB, faults write %ld read %ld (expected %" PRIu64 "), %.1f/%.1f ms, pattern %s: %s\n",
	       s.device, s.size >> 20, s.align >> 10, s.touch >> 20, s.write_faults, s.read_faults,
	       s.expected, s.write_ms, s.read_ms, s.pattern_ok ? "ok" : "BAD",
	       s.ok ? "PASS" : s.error);
	if (json) {
		FILE *f = fopen(json, "we");

		if (!f)
			fail_setup("cannot write", json);
		write_json(&s, f);
		if (fclose(f) != 0)
			fail_setup("cannot write", json);
	}
	return s.ok ? 0 : 1;
}
