/*
 * daxpool-demo: the README's demo client. Connects to daxpoold through libdaxpool, measures
 * PING round trips, prints what the daemon says about itself, then opens (or allocates) the
 * named 2M slice "daxpool-demo", maps it through the fd the daemon passed, and bumps a run
 * counter stored in it: run it twice, or restart the daemon in between, and the count goes on.
 *
 *   daxpool-demo [--socket PATH] [--pings N]
 */
#include "daxpool.h"

#include <errno.h>
#include <getopt.h>
#include <string.h>
#include <sys/mman.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

/* The slice's first bytes: a magic, a run counter and the last message. */
struct demo_record {
	char magic[8];
	uint64_t runs;
	char message[64];
};

static int demo_slice(struct daxpool *dp)
{
	struct daxpool_slice *s = NULL;
	struct demo_record *rec;
	void *map;
	int r;

	r = daxpool_open(dp, "daxpool-demo", DAXPOOL_OPEN_RDWR, &s);
	if (r == -ENOENT)
		r = daxpool_alloc(dp, "daxpool-demo", 2 << 20, DAXPOOL_ALIGN_2M, 0600, 0, &s);
	if (r < 0) {
		fprintf(stderr, "daxpool-demo: slice: %s\n", daxpool_errormsg());
		return r;
	}
	map = mmap(NULL, daxpool_slice_get_length(s), PROT_READ | PROT_WRITE, MAP_SHARED,
		   daxpool_slice_get_fd(s), (off_t)daxpool_slice_get_offset(s));
	if (map == MAP_FAILED) {
		fprintf(stderr, "daxpool-demo: mmap: %s\n", strerror(errno));
		daxpool_close(dp, &s);
		return -errno;
	}
	rec = map;
	/* What the descriptor reaches: the slice only (its own file or sub-device), or the device. */
	printf("slice \"daxpool-demo\": fd of %s, isolation %s\n", daxpool_slice_get_object(s),
	       daxpool_slice_get_isolation(s) == DAXPOOL_ISOLATION_SLICE ? "slice (this slice only)" :
	       daxpool_slice_get_isolation(s) == DAXPOOL_ISOLATION_OWNER ? "owner (one user per device)" :
									   "shared (the whole device)");
	if (memcmp(rec->magic, "DXPDEMO", 8) != 0) {
		printf("slice \"daxpool-demo\": new, %llu bytes at pool offset %llu (2M-aligned)\n",
		       (unsigned long long)daxpool_slice_get_length(s),
		       (unsigned long long)daxpool_slice_get_pool_offset(s));
		memset(rec, 0, sizeof(*rec));
		memcpy(rec->magic, "DXPDEMO", 8);
	} else {
		printf("slice \"daxpool-demo\": found, last message: \"%s\"\n", rec->message);
	}
	rec->runs++;
	snprintf(rec->message, sizeof(rec->message), "run %llu by pid %d", (unsigned long long)rec->runs,
		 (int)getpid());
	/* An emulated pool keeps data across client and daemon restarts; durability across power
	 * loss needs real device-dax and a flush (daxpool_persist(3)). */
	msync(map, 4096, MS_SYNC);
	printf("slice \"daxpool-demo\": this is run %llu (durable across power loss: %s)\n",
	       (unsigned long long)rec->runs, daxpool_slice_is_durable(s) ? "yes" : "no, emulated");
	munmap(map, daxpool_slice_get_length(s));
	return daxpool_close(dp, &s);
}

int main(int argc, char **argv)
{
	static const struct option options[] = {
		{ "socket", required_argument, NULL, 's' },
		{ "pings", required_argument, NULL, 'n' },
		{ "help", no_argument, NULL, 'h' },
		{}
	};
	const char *socket_path = NULL;
	struct daxpool *dp = NULL;
	struct daxpool_status *st = NULL;
	uint64_t *rtt;
	long pings = 1000;
	int c, r;

	while ((c = getopt_long(argc, argv, "s:n:h", options, NULL)) >= 0) {
		switch (c) {
		case 's':
			socket_path = optarg;
			break;
		case 'n':
			pings = strtol(optarg, NULL, 10);
			if (pings < 1 || pings > 10000000) {
				fprintf(stderr, "daxpool-demo: --pings must be 1..10000000\n");
				return 2;
			}
			break;
		case 'h':
			printf("Usage: daxpool-demo [--socket PATH] [--pings N]\n");
			return 0;
		default:
			return 2;
		}
	}

	r = daxpool_connect(socket_path, &dp);
	if (r < 0) {
		fprintf(stderr, "daxpool-demo: %s\n", daxpool_errormsg());
		return 1;
	}
	printf("connected to daxpoold %s, protocol version %d\n", daxpool_daemon_version(dp),
	       daxpool_protocol_version(dp));

	rtt = calloc((size_t)pings, sizeof(*rtt));
	if (!rtt) {
		daxpool_disconnect(&dp);
		return 1;
	}
	for (long i = 0; i < pings; i++) {
		uint64_t t0 = now_ns();

		r = daxpool_ping(dp);
		if (r < 0) {
			fprintf(stderr, "daxpool-demo: ping %ld: %s\n", i, daxpool_errormsg());
			free(rtt);
			daxpool_disconnect(&dp);
			return 1;
		}
		rtt[i] = now_ns() - t0;
	}
	qsort(rtt, (size_t)pings, sizeof(*rtt), cmp_u64);
	printf("%ld pings: p50 %.1f us, p99 %.1f us, max %.1f us\n", pings, rtt[pings / 2] / 1e3,
	       rtt[pings * 99 / 100] / 1e3, rtt[pings - 1] / 1e3);
	free(rtt);

	r = daxpool_status(dp, &st);
	if (r < 0) {
		fprintf(stderr, "daxpool-demo: status: %s\n", daxpool_errormsg());
		daxpool_disconnect(&dp);
		return 1;
	}
	printf("daemon pid %d, up %.3f s, %u client(s) connected\n", (int)daxpool_status_get_pid(st),
	       daxpool_status_get_uptime_ns(st) / 1e9, daxpool_status_get_clients(st));
	daxpool_status_delete(&st);

	r = demo_slice(dp);
	daxpool_disconnect(&dp);
	return r < 0 ? 1 : 0;
}
