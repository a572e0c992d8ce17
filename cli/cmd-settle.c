/* daxpoolctl settle: waits until freed slices are zeroed and reusable, with a progress line. */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <json-c/json.h>

#include "daxpool.h"
#include "daxpoolctl.h"
#include "log.h"
#include "macro.h"

#define POLL_MS 100

struct settle_args {
	double timeout_s; /* < 0: none */
};

static int settle_option(int c, const char *arg, void *userdata)
{
	struct settle_args *a = userdata;
	char *end;

	if (c != 't')
		return CTL_EXIT_USAGE;
	errno = 0;
	a->timeout_s = strtod(arg, &end);
	if (errno || end == arg || *end || a->timeout_s < 0 || a->timeout_s > 86400 * 365) {
		log_error("settle: --timeout takes seconds (0 or more), not \"%s\"", arg);
		return CTL_EXIT_USAGE;
	}
	return CTL_EXIT_OK;
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static bool settled(const struct daxpool_stats *st)
{
	return st->zeroing_pending_bytes == 0 && st->leases_waiting == 0;
}

/* "settle: 1.2 GiB to zero (3.0 GiB zeroed), 850 MiB/s, ETA 0:02; 2 slices wait for holders" */
static void draw(const struct daxpool_stats *st, uint64_t zeroed_since, double secs)
{
	char left[32], done[32], rate[32];
	double bps = secs > 0 ? (double)zeroed_since / secs : 0;
	unsigned eta = bps > 0 ? (unsigned)((double)st->zeroing_pending_bytes / bps) : 0;

	ctl_format_bytes(st->zeroing_pending_bytes, left, sizeof(left));
	ctl_format_bytes(zeroed_since, done, sizeof(done));
	ctl_format_bytes((uint64_t)bps, rate, sizeof(rate));
	fprintf(stderr, "\r\033[Ksettle: %s to zero (%s zeroed), %s/s", left, done, rate);
	if (st->zeroing_pending_bytes && bps > 0)
		fprintf(stderr, ", ETA %u:%02u", eta / 60, eta % 60);
	if (st->leases_waiting)
		fprintf(stderr, "; %" PRIu64 " freed slice%s wait%s for holders or pins",
			st->leases_waiting, st->leases_waiting == 1 ? "" : "s",
			st->leases_waiting == 1 ? "s" : "");
	fflush(stderr);
}

int cmd_settle(struct ctl *ctl, int argc, char **argv)
{
	static const struct option options[] = { { "timeout", required_argument, NULL, 't' }, {} };
	struct settle_args a = { .timeout_s = -1 };
	_cleanup_(disconnectp) struct daxpool *dp = NULL;
	struct daxpool_stats st = {};
	const char *env = getenv("DAXPOOL_PROGRESS_DELAY_MS");
	double delay_s = env && *env ? strtod(env, NULL) / 1000 : 0.5;
	bool tty, shown = false;
	int r, first;

	r = ctl_parse_options(ctl, argc, argv, "t:", options, settle_option, &a, &first);
	if (r != CTL_EXIT_OK)
		return r < 0 ? CTL_EXIT_OK : r;
	if ((r = ctl_check_operands("settle", argc - first, 0, 0)) != CTL_EXIT_OK)
		return r;
	if ((r = ctl_connect(ctl, &dp)) != CTL_EXIT_OK)
		return r;
	tty = !ctl->json && isatty(STDERR_FILENO) == 1;
	double t0 = now_s(), elapsed = 0;
	uint64_t zeroed0 = 0;
	for (bool first_poll = true;; first_poll = false) {
		r = daxpool_stat(dp, &st, sizeof(st));
		if (r < 0) {
			if (shown)
				fputs("\r\033[K", stderr);
			log_error("settle: %s", daxpool_errormsg());
			return CTL_EXIT_FAILURE;
		}
		elapsed = now_s() - t0;
		if (first_poll)
			zeroed0 = st.zeroed_bytes_total;
		if (settled(&st) || (a.timeout_s >= 0 && elapsed >= a.timeout_s))
			break;
		if (tty && elapsed >= delay_s) {
			draw(&st, st.zeroed_bytes_total - zeroed0, elapsed);
			shown = true;
		}
		usleep(POLL_MS * 1000);
	}
	if (shown) {
		fputs("\r\033[K", stderr);
		fflush(stderr);
	}
	bool ok = settled(&st);
	if (ctl->json) {
		_cleanup_(json_object_putp) struct json_object *o = json_object_new_object();

		json_object_object_add(o, "settled", json_object_new_boolean(ok));
		json_object_object_add(o, "seconds", json_object_new_double(elapsed));
		json_object_object_add(o, "zeroing_pending_bytes",
				       json_object_new_uint64(st.zeroing_pending_bytes));
		json_object_object_add(o, "leases_waiting", json_object_new_uint64(st.leases_waiting));
		ctl_print_json(o);
	} else if (ok) {
		printf("settled in %.1f s\n", elapsed);
	}
	if (!ok) {
		char left[32];

		ctl_format_bytes(st.zeroing_pending_bytes, left, sizeof(left));
		log_error("settle: not settled after %.1f s: %s still to zero, %" PRIu64
			  " freed slice%s waiting for holders or pins",
			  elapsed, left, st.leases_waiting, st.leases_waiting == 1 ? "" : "s");
		return CTL_EXIT_FAILURE;
	}
	return CTL_EXIT_OK;
}
