/* daxpoolctl status: the daemon's version, protocol, pid, uptime and clients. */
#include "daxpool.h"
#include "daxpoolctl.h"
#include "log.h"
#include "macro.h"

#include <inttypes.h>
#include <stdio.h>
#include <time.h>


static void format_duration(uint64_t ns, char *buf, size_t size)
{
	uint64_t s = ns / 1000000000ull;

	if (s >= 86400)
		snprintf(buf, size, "%" PRIu64 "d %" PRIu64 "h %" PRIu64 "min", s / 86400, s % 86400 / 3600, s % 3600 / 60);
	else if (s >= 3600)
		snprintf(buf, size, "%" PRIu64 "h %" PRIu64 "min %" PRIu64 "s", s / 3600, s % 3600 / 60, s % 60);
	else if (s >= 60)
		snprintf(buf, size, "%" PRIu64 "min %" PRIu64 "s", s / 60, s % 60);
	else
		snprintf(buf, size, "%.3fs", (double)ns / 1e9);
}

int cmd_status(struct ctl *ctl, int argc, char **argv)
{
	struct daxpool *dp = NULL;
	struct daxpool_status *st = NULL;
	_cleanup_(json_object_putp) struct json_object *obj = NULL;
	char uptime[64], started[64];
	time_t start;
	int r;

	if (argc > 1) {
		log_error("status takes no arguments (see daxpoolctl help status)");
		return CTL_EXIT_USAGE;
	}
	r = daxpool_connect(ctl->socket_path, &dp);
	if (r < 0) {
		log_error("%s", daxpool_errormsg());
		return CTL_EXIT_DAEMON;
	}
	r = daxpool_status(dp, &st);
	if (r < 0) {
		log_error("status: %s", daxpool_errormsg());
		daxpool_disconnect(&dp);
		return CTL_EXIT_FAILURE;
	}

	/* One JSON object feeds both outputs, so they can never disagree. */
	obj = json_object_new_object();
	json_object_object_add(obj, "version", json_object_new_string(daxpool_status_get_version(st)));
	json_object_object_add(obj, "protocol_version",
			       json_object_new_int((int)daxpool_status_get_protocol_version(st)));
	json_object_object_add(obj, "pid", json_object_new_int((int)daxpool_status_get_pid(st)));
	json_object_object_add(obj, "uptime_ns",
			       json_object_new_uint64(daxpool_status_get_uptime_ns(st)));
	json_object_object_add(obj, "start_time",
			       json_object_new_int64((int64_t)daxpool_status_get_start_time(st)));
	json_object_object_add(obj, "clients", json_object_new_int((int)daxpool_status_get_clients(st)));
	json_object_object_add(obj, "client_library_version", json_object_new_string(daxpool_version()));
	/* The pool's isolation mode, when one is served (docs/SECURITY.md). */
	struct daxpool_stats ps;
	const char *isolation = daxpool_stat(dp, &ps, sizeof(ps)) == 0 ? ctl_isolation_name((int)ps.isolation)
								       : NULL;
	json_object_object_add(obj, "isolation", isolation ? json_object_new_string(isolation) : NULL);

	if (ctl->json) {
		ctl_print_json(obj);
	} else {
		start = (time_t)daxpool_status_get_start_time(st);
		strftime(started, sizeof(started), "%Y-%m-%d %H:%M:%S %Z", localtime(&start));
		format_duration(daxpool_status_get_uptime_ns(st), uptime, sizeof(uptime));
		printf("%-18s %s\n", "daemon version:", daxpool_status_get_version(st));
		printf("%-18s %u\n", "protocol version:", daxpool_status_get_protocol_version(st));
		printf("%-18s %d\n", "pid:", (int)daxpool_status_get_pid(st));
		printf("%-18s %s (since %s)\n", "uptime:", uptime, started);
		printf("%-18s %u\n", "clients:", daxpool_status_get_clients(st));
		printf("%-18s %s\n", "isolation:", isolation ? isolation : "(no pool)");
	}
	daxpool_status_delete(&st);
	daxpool_disconnect(&dp);
	return CTL_EXIT_OK;
}
