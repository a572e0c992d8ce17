/* SPDX-License-Identifier: MIT */
/*
 * lab-dyn-check: a libdaxpool client for the dynamic dax region lab (tests/lab/dynamic-region.sh).
 * Every command prints one JSON object on stdout; exit status 0 passed, 1 a check failed,
 * 2 usage or set-up.
 *
 *   lab-dyn-check SOCKET alloc NAME SIZE ALIGN SEED   named slice (mode 0600), mapped, filled
 *                                                     with SEED's pattern, closed (it stays)
 *   lab-dyn-check SOCKET verify NAME SEED             opened, mapped, pattern checked, closed
 *   lab-dyn-check SOCKET zero NAME                    opened, checked to be all zero
 *   lab-dyn-check SOCKET free NAME                    opened read-write and freed
 *   lab-dyn-check SOCKET sigbus NAME                  the slice's fd mapped twice its length:
 *                                                     mmap succeeds, a touch of the last byte
 *                                                     works, the first byte past the end and a
 *                                                     mapping at the end's offset are SIGBUS
 *   lab-dyn-check SOCKET hold NAME SEED SECS          opened, mapped, pattern checked; holds
 *                                                     it SECS seconds, checks it again, closes
 *   lab-dyn-check SOCKET pin NAME SECS                opened, the whole slice declared pinned
 *                                                     (daxpool_pin_declare) for SECS seconds,
 *                                                     then undeclared and closed
 *   lab-dyn-check SOCKET latency NAME N               N x (open + close) of the carved slice
 *                                                     and N PINGs: p50/p90 in microseconds
 *   lab-dyn-check SOCKET attack NAME UID OFFSET POOLDEV OBJECT [GID]
 *                                                     as UID (started as root): NAME (another
 *                                                     owner's slice at pool OFFSET, on
 *                                                     sub-device OBJECT) cannot be opened; an
 *                                                     own 2M slice is zero and its fd reaches
 *                                                     nothing else: past its end, at OFFSET,
 *                                                     grown by mremap, reopened through /proc,
 *                                                     and the pool and victim devices opened by
 *                                                     path all fail (refused or SIGBUS)
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "daxpool.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <inttypes.h>
#include <setjmp.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static uint64_t word(uint64_t seed, uint64_t i)
{
	uint64_t x = seed ^ (i * 0x9e3779b97f4a7c15ull);

	x ^= x >> 31;
	x *= 0xbf58476d1ce4e5b9ull;
	return x ^ (x >> 29);
}

static int fail(const char *op, const char *what, int r)
{
	printf("{\"ok\": false, \"op\": \"%s\", \"error\": \"%s: %s (%s)\"}\n", op, what,
	       strerror(r < 0 ? -r : r), daxpool_errormsg());
	return 1;
}

static void print_slice(const char *op, const struct daxpool_slice *s, const char *extra)
{
	printf("{\"ok\": true, \"op\": \"%s\", \"name\": \"%s\", \"object\": \"%s\", "
	       "\"pool_offset\": %" PRIu64 ", \"map_offset\": %" PRIu64 ", \"length\": %" PRIu64
	       ", \"alignment\": %" PRIu64 ", \"isolation\": %d, \"durable\": %d%s}\n",
	       op, daxpool_slice_get_name(s), daxpool_slice_get_object(s),
	       daxpool_slice_get_pool_offset(s), daxpool_slice_get_offset(s),
	       daxpool_slice_get_length(s), daxpool_slice_get_alignment(s),
	       daxpool_slice_get_isolation(s), daxpool_slice_is_durable(s), extra);
}

/* Number of 8-byte words of [p, p+len) that differ from the pattern (seed 0: from zero). */
static uint64_t mismatches(const uint64_t *p, uint64_t len, uint64_t seed, bool zero)
{
	uint64_t bad = 0;

	for (uint64_t i = 0; i < len / 8; i++)
		if (p[i] != (zero ? 0 : word(seed, i)))
			bad++;
	return bad;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

/* Exit status of a child that touches addr: 0 if it could, the signal number if it died. */
static int touch_in_child(volatile char *addr)
{
	int status;
	pid_t pid = fork();

	if (pid == 0) {
		addr[0] = addr[0]; /* a write that leaves the slice's bytes as they are */
		_exit(0);
	}
	if (pid < 0 || waitpid(pid, &status, 0) < 0)
		return -1;
	return WIFSIGNALED(status) ? WTERMSIG(status) : WEXITSTATUS(status) ? 100 : 0;
}

/* 0 if the path opens with flags (a breach), else the negative errno. */
static int try_open(const char *path, int flags)
{
	int fd = open(path, flags | O_CLOEXEC);

	if (fd < 0)
		return -errno;
	close(fd);
	return 0;
}

/* A 4 KiB mapping of fd at off: "refused", or the signal (0: reachable) of touching it. */
static int map_touch(int fd, uint64_t off, char *what, size_t len)
{
	char *q = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd, (off_t)off);
	int sig;

	if (q == MAP_FAILED) {
		snprintf(what, len, "refused");
		return -1;
	}
	sig = touch_in_child(q);
	munmap(q, 4096);
	snprintf(what, len, "%d", sig);
	return sig;
}

static int attack(const char *sock, const char *victim, uid_t uid, uint64_t victim_off,
		  const char *pooldev, const char *victim_obj, long extra_gid)
{
	gid_t groups[1] = { (gid_t)extra_gid };
	struct daxpool *dp = NULL;
	struct daxpool_slice *s = NULL, *v = NULL;
	char extra[1024], path[64], at_victim[16];
	int r, victim_open, past_sig, victim_sig, grown_sig = -1, reopen_rw, reopen_ro, pool_open,
	    vdev_open, fd;
	uint64_t len, off, not_zero;
	void *addr;
	char *p, *g;

	/* With extra_gid the attacker is also a member of that group (the devices' group, as a
	 * packaging that put clients there would make it). */
	if (setgroups(extra_gid >= 0 ? 1 : 0, groups) < 0 || setgid(uid) < 0 || setuid(uid) < 0)
		return fail("attack", "dropping to the attacker's uid", -errno), 2;
	r = daxpool_connect(sock, &dp);
	if (r < 0)
		return fail("attack", "connect", r), 2;
	victim_open = daxpool_open(dp, victim, 0, &v);
	if (victim_open == 0)
		daxpool_close(dp, &v);
	r = daxpool_alloc(dp, NULL, 2u << 20, DAXPOOL_ALIGN_2M, 0600, DAXPOOL_ANONYMOUS, &s);
	if (r < 0)
		return fail("attack", "alloc", r), 2;
	r = daxpool_map(s, 0, &addr);
	if (r < 0)
		return fail("attack", "map", r), 2;
	len = daxpool_slice_get_length(s);
	not_zero = mismatches(addr, len, 0, true);
	fd = daxpool_slice_get_fd(s);
	off = daxpool_slice_get_offset(s);
	p = mmap(NULL, 2 * len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, (off_t)off);
	if (p == MAP_FAILED)
		return fail("attack", "mmap of twice the slice", -errno), 2;
	past_sig = touch_in_child(p + len);
	munmap(p, 2 * len);
	/* The victim's offset in the pool, as if the fd were the pool's device. */
	victim_sig = map_touch(fd, victim_off, at_victim, sizeof(at_victim));
	p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, (off_t)off);
	if (p == MAP_FAILED)
		return fail("attack", "mmap", -errno), 2;
	g = mremap(p, len, 2 * len, MREMAP_MAYMOVE);
	if (g != MAP_FAILED) {
		grown_sig = touch_in_child(g + len);
		munmap(g, 2 * len);
	} else {
		munmap(p, len);
	}
	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	reopen_rw = try_open(path, O_RDWR);
	reopen_ro = try_open(path, O_RDONLY);
	snprintf(path, sizeof(path), "/dev/%s", pooldev);
	pool_open = try_open(path, O_RDONLY);
	snprintf(path, sizeof(path), "/dev/%s", victim_obj);
	vdev_open = try_open(path, O_RDONLY);
	snprintf(extra, sizeof(extra), ", \"uid\": %u, \"victim_open\": %d, \"not_zero_words\": %"
		 PRIu64 ", \"touch_past_end_signal\": %d, \"map_at_victim_offset\": \"%s\", "
		 "\"mremap_grown_signal\": %d, \"reopen_rw\": %d, \"reopen_ro\": %d, "
		 "\"open_pool_device\": %d, \"open_victim_device\": %d, \"extra_gid\": %ld",
		 (unsigned)uid, victim_open, not_zero, past_sig, at_victim, grown_sig, reopen_rw,
		 reopen_ro, pool_open, vdev_open, extra_gid);
	print_slice("attack", s, extra);
	daxpool_free(dp, &s);
	daxpool_disconnect(&dp);
	/* Every way in must have failed: a refusal or SIGBUS, never a reachable byte. */
	return victim_open < 0 && not_zero == 0 && past_sig == SIGBUS &&
	       (victim_sig == -1 || victim_sig == SIGBUS) && (grown_sig == -1 || grown_sig == SIGBUS) &&
	       reopen_rw < 0 && reopen_ro < 0 && pool_open < 0 && vdev_open < 0 ? 0 : 1;
}

int main(int argc, char **argv)
{
	struct daxpool *dp = NULL;
	struct daxpool_slice *s = NULL;
	const char *op, *name;
	void *addr;
	char extra[512];
	int r;

	if (argc < 4) {
		fprintf(stderr, "usage: lab-dyn-check SOCKET alloc|verify|zero|free|sigbus|hold|latency "
				"NAME ... | pings MILLISECONDS\n");
		return 2;
	}
	op = argv[2];
	name = argv[3];
	if (strcmp(op, "attack") == 0)
		return argc == 8 || argc == 9
			       ? attack(argv[1], name, (uid_t)strtoul(argv[4], NULL, 0),
					strtoull(argv[5], NULL, 0), argv[6], argv[7],
					argc == 9 ? strtol(argv[8], NULL, 0) : -1)
			       : 2;
	r = daxpool_connect(argv[1], &dp);
	if (r < 0)
		return fail(op, "connect", r), 2;

	if (strcmp(op, "alloc") == 0 && argc == 7) {
		uint64_t size = strtoull(argv[4], NULL, 0), align = strtoull(argv[5], NULL, 0);
		uint64_t seed = strtoull(argv[6], NULL, 0), t0 = now_ns(), t1, t2;

		r = daxpool_alloc(dp, name, size, align, 0600, 0, &s);
		t1 = now_ns();
		if (r < 0)
			return fail(op, "alloc", r);
		r = daxpool_map(s, 0, &addr);
		if (r < 0)
			return fail(op, "map", r);
		uint64_t zero_bad = mismatches(addr, daxpool_slice_get_length(s), 0, true);
		for (uint64_t i = 0; i < daxpool_slice_get_length(s) / 8; i++)
			((uint64_t *)addr)[i] = word(seed, i);
		t2 = now_ns();
		snprintf(extra, sizeof(extra), ", \"alloc_ms\": %.3f, \"fill_ms\": %.3f, "
			 "\"not_zero_words\": %" PRIu64, (t1 - t0) / 1e6, (t2 - t1) / 1e6, zero_bad);
		print_slice(op, s, extra);
		r = daxpool_close(dp, &s);
		if (r < 0)
			return fail(op, "close", r);
		return zero_bad ? 1 : 0;
	}
	if ((strcmp(op, "verify") == 0 && argc == 5) || (strcmp(op, "zero") == 0 && argc == 4) ||
	    (strcmp(op, "hold") == 0 && argc == 6)) {
		bool zero = strcmp(op, "zero") == 0;
		uint64_t seed = zero ? 0 : strtoull(argv[4], NULL, 0), bad, bad2 = 0;

		r = daxpool_open(dp, name, DAXPOOL_OPEN_RDWR, &s);
		if (r < 0)
			return fail(op, "open", r);
		r = daxpool_map(s, 0, &addr);
		if (r < 0)
			return fail(op, "map", r);
		bad = mismatches(addr, daxpool_slice_get_length(s), seed, zero);
		if (strcmp(op, "hold") == 0) {
			/* Tell the script we hold it, then keep holding. */
			print_slice("holding", s, "");
			fflush(stdout);
			sleep((unsigned)atoi(argv[5]));
			bad2 = mismatches(addr, daxpool_slice_get_length(s), seed, false);
		}
		snprintf(extra, sizeof(extra), ", \"mismatched_words\": %" PRIu64
			 ", \"mismatched_after_hold\": %" PRIu64, bad, bad2);
		print_slice(op, s, extra);
		r = daxpool_close(dp, &s);
		if (r < 0)
			return fail(op, "close", r);
		return bad || bad2 ? 1 : 0;
	}
	if (strcmp(op, "pin") == 0 && argc == 5) {
		uint64_t pin;

		r = daxpool_open(dp, name, DAXPOOL_OPEN_RDWR, &s);
		if (r < 0)
			return fail(op, "open", r);
		r = daxpool_pin_declare(dp, s, 0, daxpool_slice_get_length(s), &pin);
		if (r < 0)
			return fail(op, "pin_declare", r);
		/* The fd stays open in this process: the daemon counts this process as a holder
		 * and the declared pin as a pin, as an RDMA registration would be. */
		print_slice("pinned", s, "");
		fflush(stdout);
		sleep((unsigned)atoi(argv[4]));
		r = daxpool_pin_undeclare(dp, pin);
		if (r < 0)
			return fail(op, "pin_undeclare", r);
		print_slice(op, s, "");
		daxpool_close(dp, &s);
		return 0;
	}
	if (strcmp(op, "free") == 0 && argc == 4) {
		uint64_t t0;

		r = daxpool_open(dp, name, DAXPOOL_OPEN_RDWR, &s);
		if (r < 0)
			return fail(op, "open", r);
		t0 = now_ns();
		r = daxpool_free(dp, &s);
		if (r < 0)
			return fail(op, "free", r);
		printf("{\"ok\": true, \"op\": \"free\", \"name\": \"%s\", \"free_ms\": %.3f}\n", name,
		       (now_ns() - t0) / 1e6);
		return 0;
	}
	if (strcmp(op, "sigbus") == 0 && argc == 4) {
		uint64_t len, off;
		int fd, in_sig, past_sig, at_end_sig = -1;
		char *p, *q;

		r = daxpool_open(dp, name, DAXPOOL_OPEN_RDWR, &s);
		if (r < 0)
			return fail(op, "open", r);
		fd = daxpool_slice_get_fd(s);
		len = daxpool_slice_get_length(s);
		off = daxpool_slice_get_offset(s);
		/* Twice the slice: the kernel lets the mapping be made; the fault decides. */
		p = mmap(NULL, 2 * len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, (off_t)off);
		if (p == MAP_FAILED)
			return fail(op, "mmap of twice the slice", -errno);
		in_sig = touch_in_child(p + len - 1);
		past_sig = touch_in_child(p + len);
		q = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, (off_t)(off + len));
		if (q != MAP_FAILED) {
			at_end_sig = touch_in_child(q);
			munmap(q, len);
		}
		munmap(p, 2 * len);
		snprintf(extra, sizeof(extra), ", \"touch_last_byte_signal\": %d, "
			 "\"touch_past_end_signal\": %d, \"map_at_end_offset\": \"%s\", "
			 "\"touch_at_end_offset_signal\": %d", in_sig, past_sig,
			 q == MAP_FAILED ? "refused" : "made", at_end_sig);
		print_slice(op, s, extra);
		daxpool_close(dp, &s);
		return in_sig == 0 && past_sig == SIGBUS &&
		       (q == MAP_FAILED || at_end_sig == SIGBUS) ? 0 : 1;
	}
	if (strcmp(op, "latency") == 0 && argc == 5) {
		int n = atoi(argv[4]);
		uint64_t *open_ns, *ping_ns;

		if (n < 1)
			return 2;
		open_ns = calloc((size_t)n, sizeof(*open_ns));
		ping_ns = calloc((size_t)n, sizeof(*ping_ns));
		if (!open_ns || !ping_ns)
			return 2;
		for (int i = 0; i < n; i++) {
			uint64_t t0 = now_ns();

			r = daxpool_open(dp, name, DAXPOOL_OPEN_RDWR, &s);
			if (r < 0)
				return fail(op, "open", r);
			open_ns[i] = now_ns() - t0;
			daxpool_close(dp, &s);
			t0 = now_ns();
			r = daxpool_ping(dp);
			if (r < 0)
				return fail(op, "ping", r);
			ping_ns[i] = now_ns() - t0;
		}
		qsort(open_ns, (size_t)n, sizeof(*open_ns), cmp_u64);
		qsort(ping_ns, (size_t)n, sizeof(*ping_ns), cmp_u64);
		printf("{\"ok\": true, \"op\": \"latency\", \"name\": \"%s\", \"n\": %d, "
		       "\"open_p50_us\": %.1f, \"open_p90_us\": %.1f, \"ping_p50_us\": %.1f, "
		       "\"ping_p90_us\": %.1f}\n", name, n, open_ns[n / 2] / 1e3,
		       open_ns[n * 9 / 10] / 1e3, ping_ns[n / 2] / 1e3, ping_ns[n * 9 / 10] / 1e3);
		return 0;
	}
	if (strcmp(op, "pings") == 0 && argc == 4) {
		/* PING for NAME milliseconds: while another client's ALLOC carves a sub-device, the
		 * daemon must go on answering (the carve runs off its loop). */
		uint64_t until = now_ns() + strtoull(name, NULL, 0) * 1000000ull, worst = 0, n = 0;

		while (now_ns() < until) {
			uint64_t t0 = now_ns();

			r = daxpool_ping(dp);
			if (r < 0)
				return fail(op, "ping", r);
			t0 = now_ns() - t0;
			worst = t0 > worst ? t0 : worst;
			n++;
		}
		printf("{\"ok\": true, \"op\": \"pings\", \"n\": %" PRIu64 ", \"ping_max_ms\": %.1f}\n", n,
		       worst / 1e6);
		return 0;
	}
	fprintf(stderr, "lab-dyn-check: bad command or arguments\n");
	return 2;
}
