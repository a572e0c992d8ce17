/*
 * daxpool-demo: the README's demo client. Connects to daxpoold through libdaxpool, measures
 * PING round trips, and prints what the daemon says about itself.
 *
 *   daxpool-demo [--socket PATH] [--pings N]
 */
#include "daxpool.h"

#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

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
	daxpool_disconnect(&dp);
	return 0;
}
