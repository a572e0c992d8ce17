/* daxpoold's life: start, readiness, signals, stale sockets, detaching, socket activation, limits. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "daxpool.h"
#include "harness.h"
#include "protocol.h"

#include <errno.h>
#include <stdbool.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

static void assert_serves(const char *socket_path)
{
	struct daxpool *dp = NULL;

	assert_int_equal(daxpool_connect(socket_path, &dp), 0);
	assert_int_equal(daxpool_ping(dp), 0);
	daxpool_disconnect(&dp);
}

static void test_sigterm_and_sigint(void **state)
{
	int sigs[] = { SIGTERM, SIGINT };

	for (size_t i = 0; i < 2; i++) {
		struct test_daemon d;
		struct stat st;

		assert_int_equal(test_daemon_start(&d, NULL), 0);
		assert_true(d.saw_ready);
		assert_non_null(strstr(d.status, "Serving on"));
		assert_int_equal(stat(d.socket, &st), 0);
		assert_true(S_ISSOCK(st.st_mode));
		assert_int_equal(st.st_mode & 07777, 0660);
		assert_serves(d.socket);
		assert_int_equal(test_daemon_stop(&d, sigs[i]), 0);
		assert_true(d.saw_stopping);
		assert_int_equal(stat(d.socket, &st), -1); /* socket removed */
		assert_int_equal(errno, ENOENT);
		test_daemon_cleanup(&d);
	}
}

static void write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");

	assert_non_null(f);
	fputs(text, f);
	fclose(f);
}

/* SIGHUP re-reads the config: a valid one changes limits live, an invalid one changes nothing. */
static void test_sighup_reloads(void **state)
{
	char dir[] = "/tmp/daxpool-reload-XXXXXX", config[128];
	const char *args[] = { "--config", config, NULL };
	struct daxpool *a = NULL, *b = NULL, *c = NULL;
	struct test_daemon d;

	assert_non_null(mkdtemp(dir));
	snprintf(config, sizeof(config), "%s/daxpool.json", dir);
	write_file(config, "{ \"max_clients\": 1 }\n");
	assert_int_equal(test_daemon_start(&d, args), 0);
	assert_int_equal(daxpool_connect(d.socket, &a), 0);
	assert_int_equal(daxpool_connect(d.socket, &b), -EUSERS);

	write_file(config, "{ \"max_clients\": 3 }\n");
	kill(d.pid, SIGHUP);
	int r = -1;
	for (int i = 0; i < 200 && r < 0; i++) { /* the reload is asynchronous */
		r = daxpool_connect(d.socket, &b);
		if (r < 0)
			usleep(10000);
	}
	assert_int_equal(r, 0);
	assert_int_equal(daxpool_connect(d.socket, &c), 0);

	write_file(config, "{ \"max_clients\": \"lots\" }\n"); /* invalid: kept as it was */
	kill(d.pid, SIGHUP);
	usleep(200000);
	assert_int_equal(daxpool_ping(a), 0);
	daxpool_disconnect(&c);
	usleep(100000);
	assert_int_equal(daxpool_connect(d.socket, &c), 0); /* still 3 allowed */
	daxpool_disconnect(&a);
	daxpool_disconnect(&b);
	daxpool_disconnect(&c);
	assert_int_equal(test_daemon_stop(&d, SIGTERM), 0);
	test_daemon_cleanup(&d);
	unlink(config);
	rmdir(dir);
}

static void test_stale_socket_replaced(void **state)
{
	struct test_daemon d;
	char dir[] = "/tmp/daxpool-stale-XXXXXX", path[128];
	struct sockaddr_un addr = { .sun_family = AF_UNIX };
	int fd;

	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/s.sock", dir);
	/* A socket file nobody listens on, as a killed daemon leaves behind. */
	fd = socket(AF_UNIX, SOCK_SEQPACKET, 0);
	strcpy(addr.sun_path, path);
	assert_int_equal(bind(fd, (struct sockaddr *)&addr, sizeof(addr)), 0);
	close(fd);
	assert_int_equal(test_daemon_spawn(&d, NULL, path), 0);
	/* test_daemon_spawn does not wait; poll until it serves. */
	for (int i = 0; i < 200; i++) {
		struct daxpool *dp = NULL;
		if (daxpool_connect(path, &dp) == 0) {
			daxpool_disconnect(&dp);
			break;
		}
		usleep(20000);
	}
	assert_serves(path);
	assert_int_equal(test_daemon_stop(&d, SIGTERM), 0);
	test_daemon_cleanup(&d);
	rmdir(dir);
}

static void test_refuses_to_clobber(void **state)
{
	struct test_daemon first, second;
	char dir[] = "/tmp/daxpool-clobber-XXXXXX", path[128];
	int fd;

	/* A live daemon's socket: a second daemon must fail and leave the first serving. */
	assert_int_equal(test_daemon_start(&first, NULL), 0);
	assert_int_equal(test_daemon_spawn(&second, NULL, first.socket), 0);
	assert_int_equal(test_daemon_wait(&second, 10000), 1);
	assert_false(second.saw_ready);
	test_daemon_cleanup(&second);
	assert_serves(first.socket);
	/* ... before it creates or formats anything: its new pool file is never made */
	char newpool[] = "/tmp/daxpool-clobber-pool-XXXXXX";
	int pfd = mkstemp(newpool);
	assert_true(pfd >= 0);
	close(pfd);
	unlink(newpool);
	const char *pool_args[] = { "--emulate", newpool, "--size", "64M", "--page", "4K",
				    "--format-if-empty", NULL };
	assert_int_equal(test_daemon_spawn(&second, pool_args, first.socket), 0);
	assert_int_equal(test_daemon_wait(&second, 10000), 1);
	assert_false(second.saw_ready);
	test_daemon_cleanup(&second);
	assert_int_equal(access(newpool, F_OK), -1);
	assert_serves(first.socket);
	assert_int_equal(test_daemon_stop(&first, SIGTERM), 0);
	test_daemon_cleanup(&first);

	/* A regular file where the socket should be is not ours to delete. */
	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/not-a-socket", dir);
	fd = open(path, O_CREAT | O_WRONLY, 0600);
	assert_true(fd >= 0);
	close(fd);
	assert_int_equal(test_daemon_spawn(&second, NULL, path), 0);
	assert_int_equal(test_daemon_wait(&second, 10000), 1);
	assert_false(second.saw_ready);
	assert_non_null(strstr(second.status, "Failed to start"));
	test_daemon_cleanup(&second);
	assert_int_equal(access(path, F_OK), 0);
	unlink(path);
	rmdir(dir);
}

/* One daemon per pool: a second daemon on a served pool file is refused, naming the first,
 * before it creates a socket or touches the pool (a daemon that is not refused would serve until
 * the timeout kills it); the first keeps serving; once the first is
 * killed (no clean shutdown), the next daemon starts on the pool with nothing stale in its way. */
static void test_one_daemon_per_pool(void **state)
{
	struct test_pool_daemon a;
	struct test_daemon c;
	char out[4096], sock2[160], cmd[1024], want[64];
	struct stat before, after;

	(void)state;
	assert_int_equal(test_pool_daemon_start(&a, "onepool", "64M"), 0);
	assert_int_equal(stat(a.pool, &before), 0);
	snprintf(sock2, sizeof(sock2), "%s/second.sock", a.dir);
	snprintf(cmd, sizeof(cmd),
		 "exec timeout 20 '%s' --foreground --emulate '%s' --size 64M --page 4K --format-if-empty "
		 "--socket '%s' 2>&1",
		 DAXPOOLD_PATH, a.pool, sock2);
	const char *argv[] = { "/bin/sh", "-c", cmd, NULL };
	assert_int_equal(run_capture(argv, out, sizeof(out)), 1);
	snprintf(want, sizeof(want), "in use by pid %d (" /* its command: daxpoold, or valgrind's */, (int)a.d.pid);
	assert_non_null(strstr(out, want));
	assert_non_null(strstr(out, a.pool));
	assert_int_equal(access(sock2, F_OK), -1);
	assert_int_equal(stat(a.pool, &after), 0);
	assert_int_equal(after.st_mtim.tv_sec, before.st_mtim.tv_sec);
	assert_int_equal(after.st_mtim.tv_nsec, before.st_mtim.tv_nsec);
	assert_serves(a.d.socket);

	/* The first dies without cleaning up: its lock goes with it. */
	assert_int_equal(kill(a.d.pid, SIGKILL), 0);
	assert_int_equal(test_daemon_wait(&a.d, 10000), 128 + SIGKILL);
	const char *args[] = { "--emulate", a.pool, "--size", "64M", "--page", "4K", NULL };
	assert_int_equal(test_daemon_start(&c, args), 0);
	assert_serves(c.socket);
	assert_int_equal(test_daemon_stop(&c, SIGTERM), 0);
	test_daemon_cleanup(&c);
	test_daemon_cleanup(&a.d);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", a.dir);
	assert_int_equal(system(cmd), 0);
}

static void stats_of(const char *sock, struct daxpool_stats *st)
{
	struct daxpool *dp = NULL;

	assert_int_equal(daxpool_connect(sock, &dp), 0);
	assert_int_equal(daxpool_stat(dp, st, sizeof(*st)), 0);
	daxpool_disconnect(&dp);
}

/* Runtime state belongs to the pool: two daemons of two pools with their sockets in one
 * directory (so one default runtime_dir) keep their own holder journals. A holds a freed slice
 * for a live process; B starts beside it; A is killed and restarted: the slice must still wait
 * for its holder, not be zeroed and handed out under the live process's mapping. */
static void test_runtime_state_per_pool(void **state)
{
	char dir[] = "/tmp/daxpool-state-XXXXXX", a_sock[96], b_sock[96], a_pool[96], b_pool[96];
	char cmd[160], ok = 0;
	struct test_daemon a, b;
	struct daxpool *dp = NULL;
	struct daxpool_slice *s = NULL;
	struct daxpool_stats st;
	int pipefd[2], status;
	pid_t holder;

	(void)state;
	assert_non_null(mkdtemp(dir));
	snprintf(a_sock, sizeof(a_sock), "%s/a.sock", dir);
	snprintf(b_sock, sizeof(b_sock), "%s/b.sock", dir);
	snprintf(a_pool, sizeof(a_pool), "%s/a.pool", dir);
	snprintf(b_pool, sizeof(b_pool), "%s/b.pool", dir);
	const char *a_args[] = { "--emulate", a_pool, "--size", "64M", "--page", "4K",
				 "--format-if-empty", NULL };
	const char *b_args[] = { "--emulate", b_pool, "--size", "64M", "--page", "4K",
				 "--format-if-empty", NULL };
	assert_int_equal(test_daemon_start_at(&a, a_args, a_sock), 0);

	/* A process that holds slice "held" of A until it is killed. */
	assert_int_equal(pipe(pipefd), 0);
	holder = fork();
	assert_true(holder >= 0);
	if (holder == 0) {
		struct daxpool *hdp = NULL;
		struct daxpool_slice *hs = NULL;
		char r = 'y';

		close(pipefd[0]);
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (daxpool_connect(a_sock, &hdp) < 0 ||
		    daxpool_alloc(hdp, "held", 1 << 20, DAXPOOL_ALIGN_4K, 0644, 0, &hs) < 0)
			r = 'n';
		(void)!write(pipefd[1], &r, 1);
		pause();
		_exit(0);
	}
	close(pipefd[1]);
	assert_int_equal(read(pipefd[0], &ok, 1), 1);
	assert_int_equal(ok, 'y');
	assert_int_equal(daxpool_connect(a_sock, &dp), 0);
	assert_int_equal(daxpool_open(dp, "held", DAXPOOL_OPEN_RDWR, &s), 0);
	assert_int_equal(daxpool_free(dp, &s), 0);
	daxpool_disconnect(&dp);
	stats_of(a_sock, &st);
	assert_int_equal(st.quarantined, 1);

	/* B, in the same directory, on its own pool. */
	assert_int_equal(test_daemon_start_at(&b, b_args, b_sock), 0);

	/* A dies without a word and comes back. */
	assert_int_equal(test_daemon_stop(&a, SIGKILL), 128 + SIGKILL);
	test_daemon_cleanup(&a);
	unlink(a_sock);
	assert_int_equal(test_daemon_start_at(&a, a_args, a_sock), 0);
	stats_of(a_sock, &st);
	assert_int_equal(st.quarantined, 1);	 /* still waiting for the live holder */
	assert_int_equal(st.leases_waiting, 1);

	/* The holder goes: the slice is reclaimed. */
	kill(holder, SIGKILL);
	waitpid(holder, &status, 0);
	close(pipefd[0]);
	for (int i = 0; i < 1000; i++) {
		stats_of(a_sock, &st);
		if (st.quarantined == 0)
			break;
		usleep(10000);
	}
	assert_int_equal(st.quarantined, 0);

	assert_int_equal(test_daemon_stop(&a, SIGTERM), 0);
	test_daemon_cleanup(&a);
	assert_int_equal(test_daemon_stop(&b, SIGTERM), 0);
	test_daemon_cleanup(&b);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	assert_int_equal(system(cmd), 0);
}

/* Allocates 4 MiB slices from sock until the pool is full; each must read as zeroes; each is
 * then filled with fill. Returns how many there were. */
static int alloc_all_zero(const char *sock, uint8_t fill)
{
	struct daxpool *dp = NULL;
	struct daxpool_slice *s = NULL;
	char name[32];
	int n = 0;

	assert_int_equal(daxpool_connect(sock, &dp), 0);
	for (;; n++) {
		snprintf(name, sizeof(name), "scrub-%d", n);
		int r = daxpool_alloc(dp, name, 4 << 20, DAXPOOL_ALIGN_4K, 0600, 0, &s);
		if (r == -ENOSPC)
			break;
		assert_int_equal(r, 0);
		size_t len = daxpool_slice_get_length(s);
		uint8_t *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED,
				  daxpool_slice_get_fd(s), (off_t)daxpool_slice_get_offset(s));
		assert_true(p != MAP_FAILED);
		for (size_t i = 0; i < len; i++)
			if (p[i])
				fail_msg("slice %s (pool offset %llu) byte %zu is %#x: not zeroed", name,
					 (unsigned long long)daxpool_slice_get_offset(s), i, p[i]);
		memset(p, fill, len);
		munmap(p, len);
		assert_int_equal(daxpool_close(dp, &s), 0);
	}
	daxpool_disconnect(&dp);
	return n;
}

/* No previous byte is ever granted: a pool formatted over a file full of a pattern (the daemon's
 * --format-if-empty), then `daxpoolctl format --force` over that pool, its slices full of
 * another pattern. Isolation "owner": slices are extents of the pool file itself. */
static void test_format_scrubs_old_bytes(void **state)
{
	char dir[] = "/tmp/daxpool-scrub-XXXXXX", pool[96], sock[96], cmd[256];
	const char *args[] = { "--emulate", pool, "--size", "64M", "--page", "4K",
			       "--isolation", "owner", "--format-if-empty", NULL };
	struct test_daemon d;
	int fd, n;

	(void)state;
	assert_non_null(mkdtemp(dir));
	snprintf(pool, sizeof(pool), "%s/pool", dir);
	snprintf(sock, sizeof(sock), "%s/s.sock", dir);
	fd = open(pool, O_RDWR | O_CREAT | O_EXCL, 0600);
	assert_true(fd >= 0);
	uint8_t *pat = malloc(1 << 20);
	assert_non_null(pat);
	memset(pat, 0xcd, 1 << 20);
	for (int i = 0; i < 64; i++)
		assert_int_equal(write(fd, pat, 1 << 20), 1 << 20);
	free(pat);
	close(fd);

	assert_int_equal(test_daemon_start_at(&d, args, sock), 0);
	n = alloc_all_zero(sock, 0xee);
	assert_true(n >= 14); /* 64 MiB less the metadata, in 4 MiB slices */
	assert_int_equal(test_daemon_stop(&d, SIGTERM), 0);
	test_daemon_cleanup(&d);

	snprintf(cmd, sizeof(cmd), "'%s' format --force '%s' >/dev/null", DAXPOOLCTL_PATH, pool);
	assert_int_equal(system(cmd), 0);
	assert_int_equal(test_daemon_start_at(&d, args, sock), 0);
	assert_int_equal(alloc_all_zero(sock, 0x11), n);
	assert_int_equal(test_daemon_stop(&d, SIGTERM), 0);
	test_daemon_cleanup(&d);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	assert_int_equal(system(cmd), 0);
}

/* `daxpoolctl format --force OPTIONS POOL`, then a daemon (args) on it: its record capacity. */
static uint64_t capacity_after_format(const char *pool, const char *sock, const char *const *args,
				      const char *options)
{
	struct test_daemon d;
	struct daxpool_stats st;
	char cmd[512];

	snprintf(cmd, sizeof(cmd), "'%s' format --force %s '%s' >/dev/null", DAXPOOLCTL_PATH, options,
		 pool);
	assert_int_equal(system(cmd), 0);
	assert_int_equal(test_daemon_start_at(&d, args, sock), 0);
	stats_of(sock, &st);
	assert_int_equal(test_daemon_stop(&d, SIGTERM), 0);
	test_daemon_cleanup(&d);
	return st.table_capacity;
}

/* The record capacity is chosen at format: the daemon's --records (a 64 MiB pool's default is
 * 1024, one per 64 KiB; with --records 8192 it holds 3000 live 4 KiB slices), and daxpoolctl
 * format --records; out-of-range values are usage errors. */
static void test_records_setting(void **state)
{
	char dir[] = "/tmp/daxpool-records-XXXXXX", pool[96], sock[96], cmd[256], out[4096];
	const char *args[] = { "--emulate", pool, "--size", "64M", "--page", "4K",
			       "--isolation", "owner", "--format-if-empty", "--records", "8192", NULL };
	const char *plain[] = { "--emulate", pool, "--size", "64M", "--page", "4K",
				"--isolation", "owner", NULL };
	struct test_daemon d;
	struct daxpool_stats st;
	struct daxpool *dp = NULL;
	struct daxpool_slice *s = NULL;
	char name[32];

	(void)state;
	assert_non_null(mkdtemp(dir));
	snprintf(pool, sizeof(pool), "%s/pool", dir);
	snprintf(sock, sizeof(sock), "%s/s.sock", dir);
	assert_int_equal(test_daemon_start_at(&d, args, sock), 0);
	stats_of(sock, &st);
	assert_int_equal(st.table_capacity, 8192);
	assert_int_equal(daxpool_connect(sock, &dp), 0);
	for (int i = 0; i < 3000; i++) {
		snprintf(name, sizeof(name), "r-%d", i);
		assert_int_equal(daxpool_alloc(dp, name, 4096, DAXPOOL_ALIGN_4K, 0600, 0, &s), 0);
		assert_int_equal(daxpool_close(dp, &s), 0);
	}
	daxpool_disconnect(&dp);
	stats_of(sock, &st);
	assert_int_equal(st.slices, 3000);
	assert_int_equal(test_daemon_stop(&d, SIGTERM), 0);
	test_daemon_cleanup(&d);

	/* daxpoolctl format --records; the default; bad values */
	assert_int_equal(capacity_after_format(pool, sock, plain, "--records 5000"), 5000);
	assert_int_equal(capacity_after_format(pool, sock, plain, ""), 1024);
	const char *ctl_bad[] = { DAXPOOLCTL_PATH, "format", "--force", "--records", "63", pool, NULL };
	assert_int_equal(run_capture(ctl_bad, out, sizeof(out)), 2);
	const char *d_bad[] = { DAXPOOLD_PATH, "--records", "67108865", "--emulate", pool, NULL };
	assert_int_equal(run_capture(d_bad, out, sizeof(out)), 2);
	/* A capacity whose table does not fit the pool is refused, the old pool left alone. */
	snprintf(cmd, sizeof(cmd), "'%s' format --force --records 1000000 '%s' 2>/dev/null", DAXPOOLCTL_PATH, pool);
	assert_int_equal(system(cmd) != 0, 1);
	snprintf(cmd, sizeof(cmd), "'%s' fsck '%s' >/dev/null", DAXPOOLCTL_PATH, pool);
	assert_int_equal(system(cmd), 0);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	assert_int_equal(system(cmd), 0);
}

static void test_usage_errors(void **state)
{
	char out[4096];
	const char *bad[] = { DAXPOOLD_PATH, "--bogus", NULL };
	const char *conflict[] = { DAXPOOLD_PATH, "--device", "/dev/dax0.0", "--emulate", "/tmp/x", NULL };
	const char *help[] = { DAXPOOLD_PATH, "--help", NULL };
	const char *version[] = { DAXPOOLD_PATH, "--version", NULL };

	assert_int_equal(run_capture(bad, out, sizeof(out)), 2);
	assert_int_equal(run_capture(conflict, out, sizeof(out)), 2);
	assert_int_equal(run_capture(help, out, sizeof(out)), 0);
	assert_non_null(strstr(out, "--emulate PATH"));
	assert_int_equal(run_capture(version, out, sizeof(out)), 0);
	assert_non_null(strstr(out, daxpool_version()));
}

/* Gone, or a zombie: a detached daemon is reparented, and not every init reaps promptly. */
static bool process_gone(int pid)
{
	char path[64], buf[256];
	FILE *f;

	if (kill(pid, 0) < 0)
		return true;
	snprintf(path, sizeof(path), "/proc/%d/stat", pid);
	f = fopen(path, "r");
	if (!f)
		return true;
	buf[0] = 0;
	(void)!fgets(buf, sizeof(buf), f);
	fclose(f);
	char *paren = strrchr(buf, ')');
	return paren && paren[1] == ' ' && paren[2] == 'Z';
}

static void test_detach_reports_pid(void **state)
{
	char dir[] = "/tmp/daxpool-detach-XXXXXX", path[128], out[256];
	const char *argv[] = { DAXPOOLD_PATH, "--socket", path, NULL };
	struct daxpool *dp = NULL;
	struct daxpool_status *st = NULL;
	int pid = 0;

	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/d.sock", dir);
	unsetenv("NOTIFY_SOCKET");
	assert_int_equal(run_capture(argv, out, sizeof(out)), 0);
	assert_int_equal(sscanf(out, "daxpoold started, pid %d", &pid), 1);
	/* It was ready before the starter exited: no polling needed. */
	assert_int_equal(daxpool_connect(path, &dp), 0);
	assert_int_equal(daxpool_status(dp, &st), 0);
	assert_int_equal(daxpool_status_get_pid(st), pid);
	daxpool_status_delete(&st);
	daxpool_disconnect(&dp);
	assert_int_equal(kill(pid, SIGTERM), 0);
	for (int i = 0; i < 500 && !process_gone(pid); i++)
		usleep(10000);
	assert_true(process_gone(pid));
	assert_int_equal(access(path, F_OK), -1);
	rmdir(dir);

	/* A detached start that fails says so through the starter's exit status. */
	const char *failing[] = { DAXPOOLD_PATH, "--socket", "/proc/daxpool-cannot-bind.sock", NULL };
	assert_int_equal(run_capture(failing, out, sizeof(out)), 1);

	/* ... and why, with the path, on the starter's stderr (there may be no syslog) */
	char cmd[512];
	snprintf(cmd, sizeof(cmd),
		 "exec '%s' --socket /tmp/daxpool-detach-fail.sock --emulate "
		 "/nonexistent-daxpool-dir/pool --size 64M --page 4K 2>&1",
		 DAXPOOLD_PATH);
	const char *why[] = { "/bin/sh", "-c", cmd, NULL };
	assert_int_equal(run_capture(why, out, sizeof(out)), 1);
	assert_non_null(strstr(out, "/nonexistent-daxpool-dir/pool"));
	assert_non_null(strstr(out, "No such file or directory"));
	assert_non_null(strstr(out, "failed to start"));
}

static void test_socket_activation(void **state)
{
	char dir[] = "/tmp/daxpool-activate-XXXXXX", path[128];
	struct sockaddr_un addr = { .sun_family = AF_UNIX };
	int fd, status;
	pid_t pid;

	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/activated.sock", dir);
	fd = socket(AF_UNIX, SOCK_SEQPACKET, 0);
	strcpy(addr.sun_path, path);
	assert_int_equal(bind(fd, (struct sockaddr *)&addr, sizeof(addr)), 0);
	assert_int_equal(listen(fd, 16), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		char pidstr[16];

		dup2(fd, 3);
		snprintf(pidstr, sizeof(pidstr), "%d", (int)getpid());
		setenv("LISTEN_FDS", "1", 1);
		setenv("LISTEN_PID", pidstr, 1);
		unsetenv("NOTIFY_SOCKET");
		/* --socket names a path that must NOT be created: the passed socket wins. */
		execl(DAXPOOLD_PATH, DAXPOOLD_PATH, "--socket", "/tmp/daxpool-activation-unused.sock", NULL);
		_exit(127);
	}
	close(fd);
	/* Connections queue on the passed socket even before the daemon accepts. */
	assert_serves(path);
	assert_int_equal(access("/tmp/daxpool-activation-unused.sock", F_OK), -1);
	kill(pid, SIGTERM);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	/* The socket file is systemd's (RemoveOnStop=): the daemon leaves it alone. */
	assert_int_equal(access(path, F_OK), 0);
	unlink(path);
	rmdir(dir);
}

static void test_max_clients_and_mode(void **state)
{
	char dir[] = "/tmp/daxpool-limits-XXXXXX", config[128];
	const char *args[] = { "--config", config, NULL };
	struct daxpool *a = NULL, *b = NULL, *c = NULL;
	struct test_daemon d;
	struct stat st;
	FILE *f;

	assert_non_null(mkdtemp(dir));
	snprintf(config, sizeof(config), "%s/daxpool.json", dir);
	f = fopen(config, "w");
	fputs("{ \"max_clients\": 2, \"socket_mode\": \"0600\" }\n", f);
	fclose(f);
	assert_int_equal(test_daemon_start(&d, args), 0);
	assert_int_equal(stat(d.socket, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0600);
	assert_int_equal(daxpool_connect(d.socket, &a), 0);
	assert_int_equal(daxpool_connect(d.socket, &b), 0);
	assert_int_equal(daxpool_connect(d.socket, &c), -EUSERS);
	assert_non_null(strstr(daxpool_errormsg(), "at most 2 clients"));
	daxpool_disconnect(&b);
	/* The slot frees once the daemon has seen b go. */
	int r = -1;
	for (int i = 0; i < 100 && r < 0; i++) {
		r = daxpool_connect(d.socket, &c);
		if (r < 0)
			usleep(10000);
	}
	assert_int_equal(r, 0);
	daxpool_disconnect(&a);
	daxpool_disconnect(&c);
	assert_int_equal(test_daemon_stop(&d, SIGTERM), 0);
	test_daemon_cleanup(&d);
	unlink(config);
	rmdir(dir);
}

/* Reads until the daemon closes the connection; true when it did within timeout_ms. */
static bool closed_by_daemon(int fd, int timeout_ms)
{
	char buf[256];

	for (int waited = 0; waited < timeout_ms; waited += 50) {
		ssize_t n = recv(fd, buf, sizeof(buf), MSG_DONTWAIT);

		if (n == 0 || (n < 0 && errno == ECONNRESET))
			return true;
		if (n < 0)
			usleep(50000);
	}
	return false;
}

static void test_idle_and_stuck_clients_time_out(void **state)
{
	char dir[] = "/tmp/daxpool-timeouts-XXXXXX", config[128];
	const char *args[] = { "--config", config, NULL };
	uint8_t frame[64], payload[DXP_HELLO_REQUEST_SIZE];
	struct dxp_hello_request req = { .min_version = DXP_PROTOCOL_VERSION_MAX, .max_version = DXP_PROTOCOL_VERSION_MAX };
	struct test_daemon d;
	int idle, stuck, sent = 0;
	size_t n;

	assert_non_null(mkdtemp(dir));
	snprintf(config, sizeof(config), "%s/daxpool.json", dir);
	write_file(config, "{ \"idle_timeout_s\": 1, \"send_timeout_s\": 1 }\n");
	assert_int_equal(test_daemon_start(&d, args), 0);

	idle = raw_connect(d.socket);
	stuck = raw_connect(d.socket);
	assert_true(idle >= 0 && stuck >= 0);
	dxp_hello_request_encode(&req, payload);
	n = dxp_frame_encode(frame, DXP_PROTOCOL_VERSION_MAX, DXP_MSG_HELLO, 1, 0, payload, sizeof(payload));
	assert_int_equal(send(idle, frame, n, 0), (ssize_t)n);
	/* The stuck client pipelines PINGs and never reads a reply. */
	assert_int_equal(send(stuck, frame, n, 0), (ssize_t)n);
	n = dxp_frame_encode(frame, DXP_PROTOCOL_VERSION_MAX, DXP_MSG_PING, 2, 0, "12345678", 8);
	while (send(stuck, frame, n, MSG_DONTWAIT) > 0 && sent < 100000)
		sent++;
	assert_true(closed_by_daemon(idle, 5000));
	/* Reading would unstick the stuck client: watch the daemon's client count instead. */
	struct daxpool *watcher = NULL;
	unsigned clients = 0;
	assert_int_equal(daxpool_connect(d.socket, &watcher), 0);
	for (int i = 0; i < 100; i++) {
		struct daxpool_status *st = NULL;

		assert_int_equal(daxpool_status(watcher, &st), 0);
		clients = daxpool_status_get_clients(st);
		daxpool_status_delete(&st);
		if (clients == 1)
			break;
		usleep(100000);
	}
	assert_int_equal(clients, 1); /* only the watcher is left */
	daxpool_disconnect(&watcher);
	close(idle);
	close(stuck);
	assert_int_equal(test_daemon_stop(&d, SIGTERM), 0);
	test_daemon_cleanup(&d);
	unlink(config);
	rmdir(dir);
}

static uint64_t cpu_ticks(pid_t pid)
{
	char path[64], buf[1024];
	unsigned long utime = 0, stime = 0;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	f = fopen(path, "r");
	assert_non_null(f);
	assert_non_null(fgets(buf, sizeof(buf), f));
	fclose(f);
	assert_int_equal(sscanf(strrchr(buf, ')') + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu",
				&utime, &stime), 2);
	return utime + stime;
}

/* Out of descriptors, the daemon pauses accepting instead of spinning, and resumes. */
static void test_emfile_does_not_spin(void **state)
{
	enum { N = 48 };
	struct rlimit low = { .rlim_cur = 32, .rlim_max = 4096 };
	struct daxpool *dps[N] = {};
	struct test_daemon d;
	int ok = 0, refused = 0;
	uint64_t t0, t1;

	assert_int_equal(test_daemon_start(&d, NULL), 0);
	assert_int_equal(prlimit(d.pid, RLIMIT_NOFILE, &low, NULL), 0);
	/* Raw connects do not wait for HELLO: the extra ones sit in the listen backlog. */
	int raw[N];
	for (int i = 0; i < N; i++)
		raw[i] = raw_connect(d.socket);
	usleep(300000);
	t0 = cpu_ticks(d.pid);
	sleep(1);
	t1 = cpu_ticks(d.pid);
	/* Spinning on accept would burn ~100 ticks per second; pausing costs a few. */
	assert_true(t1 - t0 < 20);
	for (int i = 0; i < N; i++)
		if (raw[i] >= 0)
			close(raw[i]);
	low.rlim_cur = 4096;
	assert_int_equal(prlimit(d.pid, RLIMIT_NOFILE, &low, NULL), 0);
	for (int i = 0; i < N; i++) {
		if (daxpool_connect(d.socket, &dps[i]) == 0 && daxpool_ping(dps[i]) == 0)
			ok++;
		else
			refused++;
	}
	assert_int_equal(ok, N); /* accepting resumed */
	for (int i = 0; i < N; i++)
		daxpool_disconnect(&dps[i]);
	assert_int_equal(test_daemon_stop(&d, SIGTERM), 0);
	test_daemon_cleanup(&d);
}

/* CPU time the process has run, in ns (first field of /proc/PID/schedstat: exact, where the
 * utime/stime of /proc/PID/stat are 10 ms samples). */
static uint64_t cpu_ns(pid_t pid)
{
	char path[64];
	unsigned long long ns = 0;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/schedstat", (int)pid);
	f = fopen(path, "r");
	assert_non_null(f);
	assert_int_equal(fscanf(f, "%llu", &ns), 1);
	fclose(f);
	return ns;
}

/* After a request the loop polls without sleeping for busy_poll_us, and then sleeps again: the
 * spin is there (it is what cuts the wake-up latency) and it is bounded (an idle daemon costs
 * nothing). The window is 100 ms: on a loaded 2-CPU machine the spinning daemon gets at least a
 * share of it, never the 500 ms it would burn if the spin did not stop. */
static void test_busy_poll_is_bounded(void **state)
{
	static const char *const spin_long[] = { "--busy-poll-us", "100000", NULL };
	static const char *const spin_off[] = { "--busy-poll-us", "0", NULL };
	struct daxpool *dp = NULL;
	struct test_daemon d;
	uint64_t t0, t1, t2;

	assert_int_equal(test_daemon_start(&d, spin_long), 0);
	assert_int_equal(daxpool_connect(d.socket, &dp), 0);
	usleep(300000);
	t0 = cpu_ns(d.pid);
	assert_int_equal(daxpool_ping(dp), 0);
	usleep(500000);
	t1 = cpu_ns(d.pid);
	usleep(500000);
	t2 = cpu_ns(d.pid);
	print_message("busy poll 100 ms: %.1f ms of CPU in the 500 ms after a ping, %.1f ms in the next 500 ms\n",
		      (t1 - t0) / 1e6, (t2 - t1) / 1e6);
	assert_true(t1 - t0 >= 5000000);   /* it polled: at least 5 of the 100 ms */
	assert_true(t1 - t0 <= 300000000); /* and stopped: far from the 500 ms */
	assert_true(t2 - t1 <= 5000000);   /* idle again */
	daxpool_disconnect(&dp);
	assert_int_equal(test_daemon_stop(&d, SIGTERM), 0);
	test_daemon_cleanup(&d);

	assert_int_equal(test_daemon_start(&d, spin_off), 0);
	assert_int_equal(daxpool_connect(d.socket, &dp), 0);
	for (int i = 0; i < 10; i++)
		assert_int_equal(daxpool_ping(dp), 0);
	usleep(300000);
	t0 = cpu_ns(d.pid);
	usleep(500000);
	t1 = cpu_ns(d.pid);
	print_message("busy poll off: %.1f ms of CPU in 500 ms idle\n", (t1 - t0) / 1e6);
	assert_true(t1 - t0 <= 5000000);
	daxpool_disconnect(&dp);
	assert_int_equal(test_daemon_stop(&d, SIGTERM), 0);
	test_daemon_cleanup(&d);
}

static void test_invalid_config_refused(void **state)
{
	char dir[] = "/tmp/daxpool-badcfg-XXXXXX", config[128];
	const char *args[] = { "--config", config, NULL };
	struct test_daemon d;
	FILE *f;

	assert_non_null(mkdtemp(dir));
	snprintf(config, sizeof(config), "%s/daxpool.json", dir);
	f = fopen(config, "w");
	fputs("{ \"max_clients\": 2, \"typo_key\": true }\n", f);
	fclose(f);
	assert_int_equal(test_daemon_spawn(&d, args, NULL), 0);
	assert_int_equal(test_daemon_wait(&d, 10000), 2);
	test_daemon_cleanup(&d);
	unlink(config);
	rmdir(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_sigterm_and_sigint),
		cmocka_unit_test(test_sighup_reloads),
		cmocka_unit_test(test_stale_socket_replaced),
		cmocka_unit_test(test_refuses_to_clobber),
		cmocka_unit_test(test_usage_errors),
		cmocka_unit_test(test_detach_reports_pid),
		cmocka_unit_test(test_socket_activation),
		cmocka_unit_test(test_max_clients_and_mode),
		cmocka_unit_test(test_invalid_config_refused),
		cmocka_unit_test(test_idle_and_stuck_clients_time_out),
		cmocka_unit_test(test_emfile_does_not_spin),
		cmocka_unit_test(test_busy_poll_is_bounded),
		cmocka_unit_test(test_one_daemon_per_pool),
		cmocka_unit_test(test_runtime_state_per_pool),
		cmocka_unit_test(test_format_scrubs_old_bytes),
		cmocka_unit_test(test_records_setting),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
