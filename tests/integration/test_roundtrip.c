/* A real daxpoold: connect, ping, status through libdaxpool and daxpoolctl. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "daxpool.h"
#include "harness.h"
#include "protocol.h"

#include <errno.h>
#include <json-c/json.h>
#include <pthread.h>
#include <sys/wait.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static struct test_daemon daemon_;

static int setup(void **state)
{
	if (test_daemon_start(&daemon_, NULL) < 0)
		return -1;
	return 0;
}

static int teardown(void **state)
{
	int r = test_daemon_stop(&daemon_, SIGTERM);

	test_daemon_cleanup(&daemon_);
	return r == 0 ? 0 : -1;
}

static void test_connect_ping_status(void **state)
{
	struct daxpool *dp = NULL;
	struct daxpool_status *st = NULL;

	assert_int_equal(daxpool_connect(daemon_.socket, &dp), 0);
	assert_non_null(dp);
	assert_int_equal(daxpool_protocol_version(dp), DXP_PROTOCOL_VERSION_MAX);
	assert_string_equal(daxpool_daemon_version(dp), daxpool_version());
	for (int i = 0; i < 100; i++)
		assert_int_equal(daxpool_ping(dp), 0);

	assert_int_equal(daxpool_status(dp, &st), 0);
	assert_int_equal(daxpool_status_get_pid(st), daemon_.pid);
	assert_string_equal(daxpool_status_get_version(st), daxpool_version());
	assert_int_equal(daxpool_status_get_protocol_version(st), DXP_PROTOCOL_VERSION_MAX);
	assert_int_equal(daxpool_status_get_clients(st), 1);
	assert_true(daxpool_status_get_uptime_ns(st) > 0);
	assert_true(daxpool_status_get_uptime_ns(st) < 600ull * 1000000000ull);
	uint64_t start = daxpool_status_get_start_time(st);
	assert_true(start <= (uint64_t)time(NULL) && start + 600 > (uint64_t)time(NULL));
	daxpool_status_delete(&st);
	assert_null(st);

	daxpool_disconnect(&dp);
	assert_null(dp);
	daxpool_disconnect(&dp); /* NULL is fine */
	daxpool_disconnect(NULL);
}

static void test_socket_from_environment(void **state)
{
	struct daxpool *dp = NULL;

	setenv("DAXPOOL_SOCKET", daemon_.socket, 1);
	assert_int_equal(daxpool_connect(NULL, &dp), 0);
	assert_int_equal(daxpool_ping(dp), 0);
	daxpool_disconnect(&dp);
	unsetenv("DAXPOOL_SOCKET");
}

static void test_connect_errors(void **state)
{
	struct daxpool *dp = NULL;
	char longpath[200];

	assert_int_equal(daxpool_connect("/nonexistent/daxpoold.sock", &dp), -ENOENT);
	assert_null(dp);
	assert_non_null(strstr(daxpool_errormsg(), "/nonexistent/daxpoold.sock"));
	assert_int_equal(daxpool_connect(daemon_.socket, NULL), -EINVAL);
	memset(longpath, 'x', sizeof(longpath) - 1);
	longpath[sizeof(longpath) - 1] = 0;
	assert_int_equal(daxpool_connect(longpath, &dp), -EINVAL);
	assert_int_equal(daxpool_ping(NULL), -EINVAL);
	assert_int_equal(daxpool_status(NULL, NULL), -EINVAL);
	assert_int_equal(daxpool_protocol_version(NULL), -EINVAL);
	assert_string_equal(daxpool_strerror(-DAXPOOL_E_VERSION), "no protocol version in common with daxpoold");
	assert_string_equal(daxpool_strerror(-ENOENT), "No such file or directory");
	assert_string_equal(daxpool_strerror(0), "success");
}

static void *continue_daemon_later(void *arg)
{
	struct timespec ts = {.tv_nsec = 300 * 1000000};

	(void)arg;
	nanosleep(&ts, NULL);
	kill(daemon_.pid, SIGCONT);
	return NULL;
}

static uint64_t ns_of(clockid_t clock)
{
	struct timespec ts;

	clock_gettime(clock, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* Polling for a reply (daxpool_set_reply_spin) is bounded by its budget: a request waiting
 * 300 ms for a stopped daemon sleeps, and uses little CPU, even with the largest budget. */
static void test_reply_spin_bounded(void **state)
{
	struct daxpool *dp = NULL;

	assert_int_equal(daxpool_set_reply_spin(NULL, 10), -EINVAL);
	/* A bad $DAXPOOL_REPLY_SPIN_US is ignored, not fatal. */
	setenv("DAXPOOL_REPLY_SPIN_US", "5000", 1);
	assert_int_equal(daxpool_connect(daemon_.socket, &dp), 0);
	unsetenv("DAXPOOL_REPLY_SPIN_US");
	assert_int_equal(daxpool_set_reply_spin(dp, DAXPOOL_REPLY_SPIN_MAX_US + 1), -EINVAL);
	assert_non_null(strstr(daxpool_errormsg(), "reply spin"));
	assert_int_equal(daxpool_set_reply_spin(dp, 0), 0);
	assert_int_equal(daxpool_ping(dp), 0);
	assert_int_equal(daxpool_set_reply_spin(dp, DAXPOOL_REPLY_SPIN_MAX_US), 0);
	for (int i = 0; i < 3; i++) {
		pthread_t t;

		assert_int_equal(kill(daemon_.pid, SIGSTOP), 0);
		assert_int_equal(pthread_create(&t, NULL, continue_daemon_later, NULL), 0);
		uint64_t wall = ns_of(CLOCK_MONOTONIC), cpu = ns_of(CLOCK_THREAD_CPUTIME_ID);
		assert_int_equal(daxpool_ping(dp), 0);
		wall = ns_of(CLOCK_MONOTONIC) - wall;
		cpu = ns_of(CLOCK_THREAD_CPUTIME_ID) - cpu;
		pthread_join(t, NULL);
		print_message("ping across a 300 ms stop: %.1f ms, %.2f ms of CPU\n", wall / 1e6, cpu / 1e6);
		assert_true(wall >= 250 * 1000000u);
		assert_true(cpu < 30 * 1000000u); /* 1 ms of polling, then asleep */
	}
	daxpool_disconnect(&dp);
}

static void test_status_counts_clients(void **state)
{
	struct daxpool *dps[5] = {};
	struct daxpool_status *st = NULL;

	for (int i = 0; i < 5; i++)
		assert_int_equal(daxpool_connect(daemon_.socket, &dps[i]), 0);
	assert_int_equal(daxpool_status(dps[0], &st), 0);
	assert_int_equal(daxpool_status_get_clients(st), 5);
	daxpool_status_delete(&st);
	for (int i = 1; i < 5; i++)
		daxpool_disconnect(&dps[i]);
	/* The daemon notices disconnects asynchronously: poll briefly. */
	for (int tries = 0; tries < 100; tries++) {
		assert_int_equal(daxpool_status(dps[0], &st), 0);
		unsigned clients = daxpool_status_get_clients(st);
		daxpool_status_delete(&st);
		if (clients == 1)
			break;
		assert_true(tries < 99);
		usleep(10000);
	}
	daxpool_disconnect(&dps[0]);
}

static void *ping_thread(void *arg)
{
	struct daxpool *dp = arg;

	for (int i = 0; i < 200; i++)
		if (daxpool_ping(dp) < 0)
			return (void *)1;
	return NULL;
}

static void test_shared_connection_threads(void **state)
{
	struct daxpool *dp = NULL;
	pthread_t t[4];

	assert_int_equal(daxpool_connect(daemon_.socket, &dp), 0);
	for (int i = 0; i < 4; i++)
		assert_int_equal(pthread_create(&t[i], NULL, ping_thread, dp), 0);
	for (int i = 0; i < 4; i++) {
		void *ret;
		assert_int_equal(pthread_join(t[i], &ret), 0);
		assert_null(ret);
	}
	daxpool_disconnect(&dp);
}

static void test_use_after_fork_refused(void **state)
{
	struct daxpool *dp = NULL;
	pid_t pid;
	int status;

	assert_int_equal(daxpool_connect(daemon_.socket, &dp), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0)
		_exit(daxpool_ping(dp) == -ECHILD ? 0 : 1);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	assert_int_equal(daxpool_ping(dp), 0); /* the parent's session is intact */
	daxpool_disconnect(&dp);
}

static void test_ctl_status_json(void **state)
{
	char out[4096];
	const char *argv[] = { DAXPOOLCTL_PATH, "--socket", daemon_.socket, "--json", "status", NULL };
	struct json_object *obj, *v;

	assert_int_equal(run_capture(argv, out, sizeof(out)), 0);
	obj = json_tokener_parse(out);
	assert_non_null(obj);
	assert_true(json_object_object_get_ex(obj, "version", &v));
	assert_string_equal(json_object_get_string(v), daxpool_version());
	assert_true(json_object_object_get_ex(obj, "protocol_version", &v));
	assert_int_equal(json_object_get_int(v), DXP_PROTOCOL_VERSION_MAX);
	assert_true(json_object_object_get_ex(obj, "pid", &v));
	assert_int_equal(json_object_get_int(v), daemon_.pid);
	assert_true(json_object_object_get_ex(obj, "uptime_ns", &v));
	assert_true(json_object_get_int64(v) > 0);
	assert_true(json_object_object_get_ex(obj, "clients", &v));
	assert_int_equal(json_object_get_int(v), 1);
	json_object_put(obj);
}

static void test_ctl_status_human(void **state)
{
	char out[4096], pidline[64];
	const char *argv[] = { DAXPOOLCTL_PATH, "--socket", daemon_.socket, "status", NULL };

	assert_int_equal(run_capture(argv, out, sizeof(out)), 0);
	assert_non_null(strstr(out, "daemon version:"));
	snprintf(pidline, sizeof(pidline), "pid:               %d\n", (int)daemon_.pid);
	assert_non_null(strstr(out, pidline));
	assert_non_null(strstr(out, "protocol version:  2\n"));
}

static void test_ctl_errors(void **state)
{
	char out[4096];
	const char *unreachable[] = { DAXPOOLCTL_PATH, "--socket", "/nonexistent.sock", "status", NULL };
	const char *unknown[] = { DAXPOOLCTL_PATH, "frobnicate", NULL };
	const char *extra[] = { DAXPOOLCTL_PATH, "--socket", daemon_.socket, "status", "x", NULL };
	const char *help[] = { DAXPOOLCTL_PATH, "help", "status", NULL };
	const char *none[] = { DAXPOOLCTL_PATH, NULL };

	assert_int_equal(run_capture(unreachable, out, sizeof(out)), 3);
	assert_int_equal(run_capture(unknown, out, sizeof(out)), 2);
	assert_int_equal(run_capture(extra, out, sizeof(out)), 2);
	assert_int_equal(run_capture(none, out, sizeof(out)), 2);
	assert_int_equal(run_capture(help, out, sizeof(out)), 0);
	assert_non_null(strstr(out, "daxpoolctl [--socket PATH] [--json] status"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_connect_ping_status),
		cmocka_unit_test(test_socket_from_environment),
		cmocka_unit_test(test_connect_errors),
		cmocka_unit_test(test_reply_spin_bounded),
		cmocka_unit_test(test_status_counts_clients),
		cmocka_unit_test(test_shared_connection_threads),
		cmocka_unit_test(test_use_after_fork_refused),
		cmocka_unit_test(test_ctl_status_json),
		cmocka_unit_test(test_ctl_status_human),
		cmocka_unit_test(test_ctl_errors),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
