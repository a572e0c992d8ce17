/* The examples against a real daxpoold: hello keeps its greeting across runs and a daemon
 * restart; the plog writer is SIGKILLed at random moments (and daxpoold restarted, once killed
 * under a running writer) and plog-check finds every acknowledged record intact each time.
 * $DAXPOOL_TEST_SEED repeats a run's kill moments. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "harness.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define KILLS 20

static struct test_daemon daemon_;
static char workdir[] = "/tmp/daxpool-client-plog-XXXXXX";
static char config_path[300];

static const char *const *daemon_args(void)
{
	static const char *args[3];

	args[0] = "--config";
	args[1] = config_path;
	args[2] = NULL;
	return args;
}

static int setup(void **state)
{
	FILE *f;

	if (!mkdtemp(workdir))
		return -1;
	snprintf(config_path, sizeof(config_path), "%s/daxpool.json", workdir);
	f = fopen(config_path, "w");
	if (!f)
		return -1;
	fprintf(f, "{ \"backend\": { \"type\": \"emulated\", \"path\": \"%s/pool\", \"size\": \"64M\", "
		   "\"page\": \"4K\" } }\n", workdir);
	fclose(f);
	return test_daemon_start(&daemon_, daemon_args()) < 0 ? -1 : 0;
}

static int teardown(void **state)
{
	char cmd[400];
	int r = test_daemon_stop(&daemon_, SIGTERM);

	test_daemon_cleanup(&daemon_);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", workdir);
	(void)!system(cmd);
	return r == 0 ? 0 : -1;
}

static void restart_daemon(int sig)
{
	int r = test_daemon_stop(&daemon_, sig);

	assert_int_equal(r, sig == SIGKILL ? 128 + SIGKILL : 0);
	test_daemon_cleanup(&daemon_);
	assert_int_equal(test_daemon_start(&daemon_, daemon_args()), 0);
}

static void test_hello(void **state)
{
	const char *argv[] = { HELLO_PATH, "--socket", daemon_.socket, NULL };
	char out[1024];

	assert_int_equal(run_capture(argv, out, sizeof(out)), 0);
	printf("# %s", out);
	assert_non_null(strstr(out, "no greeting yet"));
	assert_non_null(strstr(out, "stored: hello from pid"));
	restart_daemon(SIGTERM);
	argv[2] = daemon_.socket;
	assert_int_equal(run_capture(argv, out, sizeof(out)), 0);
	printf("# %s", out);
	assert_non_null(strstr(out, "read back: hello from pid"));
}

/* Starts the writer with its stdout on a pipe; returns the read end. */
static int spawn_writer(pid_t *ret_pid)
{
	int p[2];
	pid_t pid;

	assert_int_equal(pipe2(p, O_CLOEXEC), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		dup2(p[1], STDOUT_FILENO);
		execl(PLOG_PATH, PLOG_PATH, "--socket", daemon_.socket, "--size", "16777216", (char *)NULL);
		_exit(127);
	}
	close(p[1]);
	*ret_pid = pid;
	return p[0];
}

/* The highest "ack N" the writer printed (the pipe is read to EOF: the writer is dead). */
static uint64_t read_acks(int fd)
{
	static char buf[1 << 16];
	char line[64];
	size_t used = 0;
	uint64_t last = 0;
	ssize_t n;

	while ((n = read(fd, buf, sizeof(buf))) > 0) {
		for (ssize_t i = 0; i < n; i++) {
			if (buf[i] != '\n') {
				if (used < sizeof(line) - 1)
					line[used++] = buf[i];
				continue;
			}
			line[used] = 0;
			used = 0;
			unsigned long long v;
			if (sscanf(line, "ack %llu", &v) == 1 && v > last)
				last = v;
		}
	}
	close(fd);
	return last; /* a partial last line was never a complete ack */
}

static void check_log(uint64_t acked)
{
	char acked_s[32], out[1024];
	const char *argv[] = { PLOG_CHECK_PATH, "--socket", daemon_.socket, "--acked", acked_s, NULL };
	int r;

	snprintf(acked_s, sizeof(acked_s), "%llu", (unsigned long long)acked);
	r = run_capture(argv, out, sizeof(out));
	printf("#   %s", out);
	assert_int_equal(r, 0);
}

static void test_plog_sigkill(void **state)
{
	const char *seed_env = getenv("DAXPOOL_TEST_SEED");
	unsigned seed = seed_env ? (unsigned)strtoul(seed_env, NULL, 0) : (unsigned)time(NULL);
	uint64_t acked = 0, kills = 0;

	printf("# seed %u (DAXPOOL_TEST_SEED repeats it)\n", seed);
	srand(seed);
	for (int i = 0; i < KILLS; i++) {
		pid_t pid;
		int fd = spawn_writer(&pid), status;
		useconds_t wait_us = 2000 + (useconds_t)(rand() % 150000);
		uint64_t a;

		usleep(wait_us);
		if (i == KILLS / 2) {
			/* the daemon dies under a running writer: its mapping and fd stay valid */
			assert_int_equal(test_daemon_stop(&daemon_, SIGKILL), 128 + SIGKILL);
			usleep(20000);
		}
		kill(pid, SIGKILL);
		assert_int_equal(waitpid(pid, &status, 0), pid);
		a = read_acks(fd);
		if (WIFSIGNALED(status))
			kills++;
		else
			assert_int_equal(WEXITSTATUS(status), 3); /* only "log full" ends it early */
		if (a > 0) {
			assert_true(a > acked); /* this run acknowledged records after the last ones */
			acked = a;
		}
		printf("# run %d: killed after %u us, %llu acked\n", i, wait_us, (unsigned long long)acked);
		if (i == KILLS / 2) {
			test_daemon_cleanup(&daemon_);
			assert_int_equal(test_daemon_start(&daemon_, daemon_args()), 0);
		} else if (i % 5 == 4) {
			restart_daemon(i % 10 == 4 ? SIGKILL : SIGTERM);
		}
		check_log(acked);
	}
	printf("# %llu SIGKILLs, %llu records acknowledged and intact\n", (unsigned long long)kills,
	       (unsigned long long)acked);
	assert_true(acked > 0);
	assert_true(kills > KILLS / 2);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_hello),
		cmocka_unit_test(test_plog_sigkill),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
