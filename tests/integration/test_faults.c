/*
 * Client and environment faults the other integration tests do not cover (docs/RELIABILITY.md):
 * clients SIGKILLed at every step of the protocol, clients that allocate and never read, the
 * daemon out of descriptors, a full device, and corrupted pool metadata. Each must end in a clear
 * error or a clean recovery, with the daemon serving everyone else, no descriptor leaked in the
 * daemon and no anonymous slice left behind.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "daxpool.h"
#include "harness.h"
#include "protocol.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

static struct test_daemon daemon_;
/* Daemons a test starts on pools of its own; stopped by stop_extra even when the test fails. */
static struct test_daemon extra_;
static char dir[64], pool_path[128], config_path[128];

/* Emulated pools with 4K pages; the shared one: 256 MiB, 4096 records. */
static void write_config(const char *path, const char *pool, const char *size)
{
	FILE *f = fopen(path, "w");

	assert_non_null(f);
	fprintf(f,
		"{ \"socket_mode\": \"0666\", \"pin_grace_ms\": 100, \"runtime_dir\": \"%s\","
		"  \"backend\": { \"type\": \"emulated\", \"path\": \"%s\", \"size\": \"%s\", \"page\": \"4K\" } }\n",
		dir, pool, size);
	fclose(f);
}

static const char *const *config_args(const char *config)
{
	static const char *args[3];

	args[0] = "--config";
	args[1] = config;
	args[2] = NULL;
	return args;
}

static int setup(void **state)
{
	strcpy(dir, "/tmp/daxpool-faults-XXXXXX");
	if (!mkdtemp(dir))
		return -1;
	snprintf(pool_path, sizeof(pool_path), "%s/pool", dir);
	snprintf(config_path, sizeof(config_path), "%s/daxpool.json", dir);
	write_config(config_path, pool_path, "256M");
	return test_daemon_start(&daemon_, config_args(config_path)) < 0 ? -1 : 0;
}

static int teardown(void **state)
{
	char cmd[128];
	int r = test_daemon_stop(&daemon_, SIGTERM);

	test_daemon_cleanup(&daemon_);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	(void)!system(cmd);
	return r == 0 ? 0 : -1;
}

static int stop_extra(void **state)
{
	if (extra_.pid > 0 || extra_.dir[0])
		test_daemon_cleanup(&extra_);
	return 0;
}

static struct daxpool *connect_to(const struct test_daemon *d)
{
	struct daxpool *dp = NULL;

	assert_int_equal(daxpool_connect(d->socket, &dp), 0);
	return dp;
}

static void get_stats(struct daxpool *dp, struct daxpool_stats *st)
{
	assert_int_equal(daxpool_stat(dp, st, sizeof(*st)), 0);
}

/* Polls until no freed extent waits for holders, grace or zeroing, and no anonymous slice is
 * left beyond want_anonymous. */
static void wait_settled(struct daxpool *dp, uint64_t want_anonymous)
{
	struct daxpool_stats st;

	for (int i = 0; i < 1000; i++) {
		get_stats(dp, &st);
		if (st.anonymous_slices == want_anonymous && st.quarantined == 0 && st.leases_waiting == 0 &&
		    st.zeroing_pending_bytes == 0)
			return;
		usleep(10000);
	}
	fail_msg("never settled: %llu anonymous (want %llu), %llu quarantined, %llu waiting, %llu to zero",
		 (unsigned long long)st.anonymous_slices, (unsigned long long)want_anonymous,
		 (unsigned long long)st.quarantined, (unsigned long long)st.leases_waiting,
		 (unsigned long long)st.zeroing_pending_bytes);
}

/* Descriptors the daemon holds (its /proc/PID/fd entries). */
static int daemon_fds(pid_t pid)
{
	char path[64];
	struct dirent *e;
	int n = 0;
	DIR *dh;

	snprintf(path, sizeof(path), "/proc/%d/fd", (int)pid);
	dh = opendir(path);
	assert_non_null(dh);
	while ((e = readdir(dh)))
		if (e->d_name[0] != '.')
			n++;
	closedir(dh);
	return n;
}

/* Waits up to 5 s for the daemon's descriptor count to come back to want. */
static void wait_fds(pid_t pid, int want)
{
	int n = 0;

	for (int i = 0; i < 500; i++) {
		n = daemon_fds(pid);
		if (n == want)
			return;
		usleep(10000);
	}
	fail_msg("daxpoold holds %d descriptors, %d before: leaked", n, want);
}

static void send_frame(int fd, uint16_t type, uint32_t id, const uint8_t *payload, size_t len)
{
	uint8_t frame[DXP_MAX_FRAME];
	size_t n = dxp_frame_encode(frame, DXP_PROTOCOL_VERSION_MAX, type, id, 0, payload, (uint32_t)len);

	if (send(fd, frame, n, MSG_NOSIGNAL) != (ssize_t)n)
		_exit(3);
}

/* HELLO on a raw connection, reply read (used in forked children: failures exit non-zero). */
static int raw_hello(const char *socket_path)
{
	struct dxp_hello_request req = { .min_version = DXP_PROTOCOL_VERSION_MAX, .max_version = DXP_PROTOCOL_VERSION_MAX };
	uint8_t payload[DXP_HELLO_REQUEST_SIZE], buf[DXP_MAX_FRAME];
	int fd = raw_connect(socket_path);

	if (fd < 0)
		_exit(2);
	dxp_hello_request_encode(&req, payload);
	send_frame(fd, DXP_MSG_HELLO, 1, payload, sizeof(payload));
	if (recv(fd, buf, sizeof(buf), 0) < DXP_HEADER_SIZE)
		_exit(4);
	return fd;
}

static size_t alloc_payload(uint8_t *buf, const char *name, uint64_t size)
{
	struct dxp_alloc_request req = { .size = size, .align = 4096, .owner_uid = DXP_OWNER_CALLER,
					 .owner_gid = DXP_OWNER_CALLER,
					 .flags = name ? 0 : DXP_ALLOC_ANONYMOUS };

	snprintf(req.name, sizeof(req.name), "%s", name ? name : "");
	return dxp_alloc_request_encode(&req, buf);
}

/* Where a client dies. */
enum step {
	STEP_CONNECTED,	    /* connected, no HELLO */
	STEP_HELLO,	    /* HELLO answered, nothing else */
	STEP_HALF_FRAME,    /* an ALLOC whose header promises more payload than was sent */
	STEP_ALLOC_UNREAD,  /* named + anonymous ALLOC sent, replies (with fds) never read */
	STEP_FLOOD_UNREAD,  /* anonymous ALLOCs until the socket is full, nothing read */
	STEP_HOLDING_FD,    /* slices mapped, connection closed, mapping and fds kept */
	STEP_PINNED,	    /* a declared pin on an anonymous slice */
	STEP_MID_REQUEST,   /* blocked in daxpool_alloc of a slice the daemon is still handing out */
	N_STEPS,
};

static const char *const step_names[] = {
	"connected", "hello", "half-frame", "alloc-unread", "flood-unread", "holding-fd", "pinned",
	"mid-request",
};

/* Child: does the steps, reports readiness with one byte, waits to be killed. */
static void client_until(enum step step, int report)
{
	prctl(PR_SET_PDEATHSIG, SIGKILL); /* never outlive a failed test */
	uint8_t payload[DXP_MAX_PAYLOAD];
	struct daxpool *dp = NULL;
	struct daxpool_slice *a = NULL, *n = NULL;
	void *addr;
	uint64_t pin;
	size_t len;
	int fd;

	switch (step) {
	case STEP_CONNECTED:
		if (raw_connect(daemon_.socket) < 0)
			_exit(2);
		break;
	case STEP_HELLO:
		raw_hello(daemon_.socket);
		break;
	case STEP_HALF_FRAME: {
		uint8_t frame[DXP_MAX_FRAME];

		fd = raw_hello(daemon_.socket);
		len = alloc_payload(payload, "fault-half", 4096);
		dxp_frame_encode(frame, DXP_PROTOCOL_VERSION_MAX, DXP_MSG_ALLOC, 2, 0, payload, (uint32_t)len);
		if (send(fd, frame, DXP_HEADER_SIZE + len / 2, MSG_NOSIGNAL) < 0)
			_exit(3);
		break;
	}
	case STEP_ALLOC_UNREAD:
		fd = raw_hello(daemon_.socket);
		len = alloc_payload(payload, "fault-unread", 8192);
		send_frame(fd, DXP_MSG_ALLOC, 2, payload, len);
		len = alloc_payload(payload, NULL, 8192);
		send_frame(fd, DXP_MSG_ALLOC, 3, payload, len);
		usleep(100000); /* let the daemon answer into a socket nobody reads */
		break;
	case STEP_FLOOD_UNREAD:
		fd = raw_hello(daemon_.socket);
		len = alloc_payload(payload, NULL, 4096);
		for (uint32_t i = 0; i < 100000; i++) {
			uint8_t frame[DXP_MAX_FRAME];
			size_t fl = dxp_frame_encode(frame, DXP_PROTOCOL_VERSION_MAX, DXP_MSG_ALLOC, 10 + i, 0, payload, (uint32_t)len);

			if (send(fd, frame, fl, MSG_NOSIGNAL | MSG_DONTWAIT) < 0)
				break;
		}
		usleep(100000);
		break;
	case STEP_HOLDING_FD:
		if (daxpool_connect(daemon_.socket, &dp) < 0 ||
		    daxpool_alloc(dp, NULL, 65536, DAXPOOL_ALIGN_4K, 0, DAXPOOL_ANONYMOUS, &a) < 0 ||
		    daxpool_alloc(dp, "fault-held", 65536, DAXPOOL_ALIGN_4K, 0, 0, &n) < 0 ||
		    daxpool_map(a, 0, &addr) < 0)
			_exit(5);
		memset(addr, 0x5a, 65536);
		/* The connection goes; the process keeps the mapping and the fds. */
		fd = dup(daxpool_slice_get_fd(a));
		daxpool_disconnect(&dp);
		(void)fd;
		break;
	case STEP_PINNED:
		if (daxpool_connect(daemon_.socket, &dp) < 0 ||
		    daxpool_alloc(dp, NULL, 65536, DAXPOOL_ALIGN_4K, 0, DAXPOOL_ANONYMOUS, &a) < 0 ||
		    daxpool_pin_declare(dp, a, 0, 65536, &pin) < 0)
			_exit(6);
		break;
	case STEP_MID_REQUEST:
		/* Killed while its ALLOC is in flight: tell the parent first, then ask. */
		if (daxpool_connect(daemon_.socket, &dp) < 0)
			_exit(7);
		(void)!write(report, "y", 1);
		for (;;)
			if (daxpool_alloc(dp, NULL, 1 << 20, DAXPOOL_ALIGN_4K, 0, DAXPOOL_ANONYMOUS, &a) == 0)
				daxpool_free(dp, &a);
	default:
		break;
	}
	(void)!write(report, "y", 1);
	pause();
	_exit(0);
}

/* A client SIGKILLed after each protocol step: the daemon keeps serving, reclaims the
 * anonymous slices (after the holder's death and the pin grace), keeps named ones and ends
 * with the descriptors it started with. */
static void test_killed_at_every_step(void **state)
{
	struct daxpool *dp = connect_to(&daemon_);
	struct daxpool_slice *s = NULL;
	struct daxpool_stats base, st;
	int fds;

	wait_settled(dp, 0);
	get_stats(dp, &base);
	fds = daemon_fds(daemon_.pid);

	for (int step = 0; step < N_STEPS; step++) {
		int pipefd[2], status;
		char ok = 0;
		pid_t pid;

		assert_int_equal(pipe(pipefd), 0);
		pid = fork();
		assert_true(pid >= 0);
		if (pid == 0) {
			close(pipefd[0]);
			client_until((enum step)step, pipefd[1]);
		}
		close(pipefd[1]);
		assert_int_equal(read(pipefd[0], &ok, 1), 1);
		close(pipefd[0]);
		if (step == STEP_MID_REQUEST)
			usleep(20000); /* let it loop through some ALLOC/FREE round trips */
		kill(pid, SIGKILL);
		assert_int_equal(waitpid(pid, &status, 0), pid);
		assert_true(WIFSIGNALED(status)); /* it got to the step, it did not fail before */

		/* Everyone else is still served, at once. */
		assert_int_equal(daxpool_ping(dp), 0);
		wait_settled(dp, 0);
		print_message("killed after %s: served, settled\n", step_names[step]);
	}

	/* Named slices outlive their client; whether the unread one was made is the daemon's
	 * business (the client never saw an answer), but it is whole if it exists. */
	assert_int_equal(daxpool_open(dp, "fault-held", DAXPOOL_OPEN_RDWR, &s), 0);
	assert_int_equal(daxpool_free(dp, &s), 0);
	if (daxpool_open(dp, "fault-unread", DAXPOOL_OPEN_RDWR, &s) == 0) {
		assert_int_equal(daxpool_slice_get_length(s), 8192);
		assert_int_equal(daxpool_free(dp, &s), 0);
	}
	assert_int_equal(daxpool_open(dp, "fault-half", 0, &s), -ENOENT);
	wait_settled(dp, 0);
	get_stats(dp, &st);
	assert_int_equal(st.slices, base.slices);
	assert_int_equal(st.allocated_bytes, base.allocated_bytes);
	daxpool_disconnect(&dp);
	wait_fds(daemon_.pid, fds);
}

/* Many clients that flood ALLOCs and never read: each costs at most the replies its socket
 * holds plus one parked reply; a well-behaved client is served meanwhile, and everything the
 * flooders got is reclaimed when they go. */
static void test_never_reading_allocators(void **state)
{
	enum { N = 4 };
	struct daxpool *dp = connect_to(&daemon_);
	struct daxpool_slice *s = NULL;
	struct daxpool_stats st;
	pid_t pids[N];

	wait_settled(dp, 0);
	/* Separate processes: the daemon counts a holder per process, and ours is still alive. */
	for (int i = 0; i < N; i++) {
		int pipefd[2];
		char ok;

		assert_int_equal(pipe(pipefd), 0);
		pids[i] = fork();
		assert_true(pids[i] >= 0);
		if (pids[i] == 0) {
			close(pipefd[0]);
			client_until(STEP_FLOOD_UNREAD, pipefd[1]);
		}
		close(pipefd[1]);
		assert_int_equal(read(pipefd[0], &ok, 1), 1);
		close(pipefd[0]);
	}
	/* The flooders' sockets are full; the daemon must still answer us promptly. */
	for (int i = 0; i < 20; i++) {
		assert_int_equal(daxpool_alloc(dp, "fault-polite", 4096, DAXPOOL_ALIGN_4K, 0, 0, &s), 0);
		assert_int_equal(daxpool_free(dp, &s), 0);
	}
	get_stats(dp, &st);
	print_message("%d flooders hold %llu anonymous slices\n", N, (unsigned long long)st.anonymous_slices);
	/* Bounded by what their receive queues hold, never all they asked for. */
	assert_true(st.anonymous_slices >= N);
	assert_true(st.anonymous_slices < (uint64_t)N * 1000);
	for (int i = 0; i < N; i++) {
		kill(pids[i], SIGKILL);
		assert_int_equal(waitpid(pids[i], NULL, 0), pids[i]);
	}
	wait_settled(dp, 0);
	daxpool_disconnect(&dp);
}

/* The lowest descriptor number the daemon could open next. Without pidfds (valgrind) the daemon
 * opens /proc/PID/stat for a moment every 250 ms; a look that catches one would set the limit a
 * descriptor too high, so this takes the lowest of looks spread over more than one such period. */
static int lowest_free_fd(pid_t pid)
{
	int lowest = -1;

	for (int look = 0; look < 8; look++) {
		for (int fd = 0;; fd++) {
			char path[64];

			snprintf(path, sizeof(path), "/proc/%d/fd/%d", (int)pid, fd);
			if (access(path, F_OK) < 0) {
				if (lowest < 0 || fd < lowest)
					lowest = fd;
				break;
			}
		}
		usleep(40000);
	}
	return lowest;
}

/* Out of descriptors (RLIMIT_NOFILE lowered so the daemon cannot open a single one): an ALLOC
 * whose holder needs a new pidfd gets a clear error on a connection that stays usable, a new
 * client waits in the backlog, and once descriptors are allowed again everything works. */
static void test_rlimit_nofile(void **state)
{
	char cfg[160], pool[160], buf[DXP_MAX_FRAME];
	struct test_daemon *d = &extra_;
	struct daxpool *dp;
	struct daxpool_slice *s = NULL;
	struct pollfd pfd;
	int r, waiting;

	snprintf(cfg, sizeof(cfg), "%s/nofile.json", dir);
	snprintf(pool, sizeof(pool), "%s/nofile-pool", dir);
	write_config(cfg, pool, "16M");
	assert_int_equal(test_daemon_start(d, config_args(cfg)), 0);
	dp = connect_to(d);

	struct rlimit old, low;
	assert_int_equal(prlimit(d->pid, RLIMIT_NOFILE, NULL, &old), 0);
	low = (struct rlimit){ .rlim_cur = (rlim_t)lowest_free_fd(d->pid), .rlim_max = old.rlim_max };
	assert_int_equal(prlimit(d->pid, RLIMIT_NOFILE, &low, NULL), 0);

	/* This process holds nothing yet: the daemon needs a pidfd to make it a holder. */
	r = daxpool_alloc(dp, NULL, 4096, DAXPOOL_ALIGN_4K, 0, DAXPOOL_ANONYMOUS, &s);
	print_message("ALLOC with no descriptor left: %d (%s)\n", r, daxpool_errormsg());
	/* Also under valgrind, which lacks pidfd_open: the /proc polling fallback reports that it
	 * could not look (EMFILE), not that the process is gone. */
	assert_true(r == -EMFILE || r == -ENFILE);
	assert_non_null(strstr(daxpool_errormsg(), "open files"));
	assert_int_equal(daxpool_ping(dp), 0); /* the connection is still served */

	/* A new client is not accepted yet: its HELLO waits. */
	waiting = raw_connect(d->socket);
	assert_true(waiting >= 0);
	{
		struct dxp_hello_request req = { .min_version = DXP_PROTOCOL_VERSION_MAX, .max_version = DXP_PROTOCOL_VERSION_MAX };
		uint8_t hp[DXP_HELLO_REQUEST_SIZE], frame[64];
		size_t fl;

		dxp_hello_request_encode(&req, hp);
		fl = dxp_frame_encode(frame, DXP_PROTOCOL_VERSION_MAX, DXP_MSG_HELLO, 1, 0, hp, sizeof(hp));
		assert_int_equal(send(waiting, frame, fl, 0), (ssize_t)fl);
	}
	pfd = (struct pollfd){ .fd = waiting, .events = POLLIN };
	assert_int_equal(poll(&pfd, 1, 300), 0);

	/* Descriptors again: the waiting client is answered, and ALLOC works. */
	assert_int_equal(prlimit(d->pid, RLIMIT_NOFILE, &old, NULL), 0);
	assert_int_equal(poll(&pfd, 1, 5000), 1);
	assert_true(recv(waiting, buf, sizeof(buf), 0) >= DXP_HEADER_SIZE);
	close(waiting);
	assert_int_equal(daxpool_alloc(dp, NULL, 4096, DAXPOOL_ALIGN_4K, 0, DAXPOOL_ANONYMOUS, &s), 0);
	assert_int_equal(daxpool_free(dp, &s), 0);
	wait_settled(dp, 0);
	daxpool_disconnect(&dp);
	assert_int_equal(test_daemon_stop(d, SIGTERM), 0);
	test_daemon_cleanup(d);
}

/* A holder process keeps a freed extent quarantined even while the daemon cannot look at it:
 * without pidfds (valgrind; kernels before 5.3) the daemon polls /proc/PID/stat, and an open
 * that fails for lack of descriptors must not read as "the process exited" (it did, once: the
 * extent would have been zeroed and handed out while the holder still mapped it). With pidfds
 * the daemon does not poll, and the same checks hold. */
static void test_holder_kept_while_out_of_fds(void **state)
{
	char cfg[160], pool[160], ok = 0;
	struct test_daemon *d = &extra_;
	struct daxpool *dp;
	struct daxpool_slice *s = NULL;
	struct daxpool_stats st;
	struct rlimit old, low;
	int report[2], status;
	pid_t holder;

	snprintf(cfg, sizeof(cfg), "%s/held.json", dir);
	snprintf(pool, sizeof(pool), "%s/held-pool", dir);
	write_config(cfg, pool, "16M");
	assert_int_equal(test_daemon_start(d, config_args(cfg)), 0);
	dp = connect_to(d);
	assert_int_equal(daxpool_alloc(dp, "held", 4096, DAXPOOL_ALIGN_4K, 0600, 0, &s), 0);
	assert_int_equal(pipe(report), 0);
	holder = fork();
	assert_true(holder >= 0);
	if (holder == 0) {
		struct daxpool *hd = NULL;
		struct daxpool_slice *hs = NULL;
		char y = 'n';

		prctl(PR_SET_PDEATHSIG, SIGKILL); /* a failed assertion in the parent must not strand us */
		if (daxpool_connect(d->socket, &hd) == 0 && daxpool_open(hd, "held", 0, &hs) == 0)
			y = 'y';
		(void)!write(report[1], &y, 1);
		pause();
		_exit(0);
	}
	assert_int_equal(read(report[0], &ok, 1), 1);
	assert_int_equal(ok, 'y');
	assert_int_equal(daxpool_free(dp, &s), 0);
	get_stats(dp, &st);
	assert_int_equal(st.quarantined, 1);

	assert_int_equal(prlimit(d->pid, RLIMIT_NOFILE, NULL, &old), 0);
	low = (struct rlimit){ .rlim_cur = (rlim_t)lowest_free_fd(d->pid), .rlim_max = old.rlim_max };
	assert_int_equal(prlimit(d->pid, RLIMIT_NOFILE, &low, NULL), 0);
	usleep(1200000); /* several 250 ms polls of the fallback */
	get_stats(dp, &st);
	assert_int_equal(st.quarantined, 1);
	assert_int_equal(prlimit(d->pid, RLIMIT_NOFILE, &old, NULL), 0);

	kill(holder, SIGKILL);
	waitpid(holder, &status, 0);
	close(report[0]);
	close(report[1]);
	wait_settled(dp, 0);
	get_stats(dp, &st);
	assert_int_equal(st.quarantined, 0);
	daxpool_disconnect(&dp);
	assert_int_equal(test_daemon_stop(d, SIGTERM), 0);
	test_daemon_cleanup(d);
}

/* A full device: -ENOSPC with a message, the daemon serves on, and a free makes room again
 * (once the freed extent is zeroed). The record table filling up is the other way to be full. */
static void test_full_device(void **state)
{
	enum { MAX = 8192 };
	struct daxpool *dp = connect_to(&daemon_);
	static struct daxpool_slice *s[MAX];
	struct daxpool_stats st;
	int n = 0, r = 0;
	char name[32];

	wait_settled(dp, 0);
	get_stats(dp, &st);
	/* 1 MiB slices until the data area is full. */
	for (n = 0; n < MAX; n++) {
		snprintf(name, sizeof(name), "fault-full-%d", n);
		r = daxpool_alloc(dp, name, 1 << 20, DAXPOOL_ALIGN_4K, 0, 0, &s[n]);
		if (r < 0)
			break;
	}
	assert_int_equal(r, -ENOSPC);
	assert_non_null(strstr(daxpool_errormsg(), "no free extent"));
	assert_true(n >= 50 && (uint64_t)n <= st.data_size >> 20);
	print_message("full after %d slices of 1 MiB: %s\n", n, daxpool_errormsg());
	assert_int_equal(daxpool_ping(dp), 0);
	/* Anonymous ones too, and the next client. */
	struct daxpool *other = connect_to(&daemon_);
	struct daxpool_slice *t = NULL;
	assert_int_equal(daxpool_alloc(other, NULL, 1 << 20, DAXPOOL_ALIGN_4K, 0, DAXPOOL_ANONYMOUS, &t), -ENOSPC);
	daxpool_disconnect(&other);

	/* Free one: once zeroed, the space is there again. */
	assert_int_equal(daxpool_free(dp, &s[n - 1]), 0);
	wait_settled(dp, 0);
	snprintf(name, sizeof(name), "fault-full-%d", n - 1);
	assert_int_equal(daxpool_alloc(dp, name, 1 << 20, DAXPOOL_ALIGN_4K, 0, 0, &s[n - 1]), 0);
	for (int i = 0; i < n; i++)
		assert_int_equal(daxpool_free(dp, &s[i]), 0);
	wait_settled(dp, 0);

	/* The record table (4096 records for 256 MiB) fills before the space with 4K slices. */
	for (n = 0; n < MAX; n++) {
		snprintf(name, sizeof(name), "fault-rec-%d", n);
		r = daxpool_alloc(dp, name, 4096, DAXPOOL_ALIGN_4K, 0, 0, &s[n]);
		if (r < 0)
			break;
	}
	assert_int_equal(r, -ENOSPC);
	assert_non_null(strstr(daxpool_errormsg(), "record table full"));
	assert_int_equal(daxpool_ping(dp), 0);
	for (int i = 0; i < n; i++)
		assert_int_equal(daxpool_free(dp, &s[i]), 0);
	wait_settled(dp, 0);
	get_stats(dp, &st);
	assert_int_equal(st.slices, 0);
	daxpool_disconnect(&dp);
}

/* ---- corrupted metadata ----------------------------------------------------------------- */

static char stderr_path[160];

/* Starts a daemon on cfg with its stderr in a file. expect_ready: wait for READY=1 and return 0
 * (or -errno); else wait for it to exit and return its exit status. */
static int start_capturing(struct test_daemon *d, const char *cfg, bool expect_ready)
{
	int saved = dup(STDERR_FILENO), fd, r;

	snprintf(stderr_path, sizeof(stderr_path), "%s/daemon.stderr", dir);
	fd = open(stderr_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	assert_true(saved >= 0 && fd >= 0);
	fflush(stderr);
	dup2(fd, STDERR_FILENO);
	r = expect_ready ? test_daemon_start(d, config_args(cfg)) : test_daemon_spawn(d, config_args(cfg), NULL);
	dup2(saved, STDERR_FILENO);
	close(saved);
	close(fd);
	if (expect_ready || r < 0)
		return r;
	return test_daemon_wait(d, 60000);
}

static char stderr_text[8192];

static const char *daemon_stderr(void)
{
	int fd = open(stderr_path, O_RDONLY);
	ssize_t n;

	assert_true(fd >= 0);
	n = read(fd, stderr_text, sizeof(stderr_text) - 1);
	close(fd);
	stderr_text[n > 0 ? n : 0] = 0;
	return stderr_text;
}

static void poke(const char *path, off_t off, uint8_t *old, uint8_t byte)
{
	int fd = open(path, O_RDWR);

	assert_true(fd >= 0);
	if (old)
		assert_int_equal(pread(fd, old, 1, off), 1);
	assert_int_equal(pwrite(fd, &byte, 1, off), 1);
	close(fd);
}

static int fsck(const char *path, bool repair, char *out, size_t size)
{
	const char *argv[] = { DAXPOOLCTL_PATH, "fsck", repair ? "--repair" : path, repair ? path : NULL, NULL };

	return run_capture(argv, out, size);
}

/* A slice with known bytes, then the daemon stopped cleanly. */
static void make_pool_with_data(const char *cfg)
{
	struct test_daemon *d = &extra_;
	struct daxpool *dp;
	struct daxpool_slice *s = NULL;
	uint8_t *p;

	assert_int_equal(start_capturing(d, cfg, true), 0);
	dp = connect_to(d);
	assert_int_equal(daxpool_alloc(dp, "fault-keep", 1 << 20, DAXPOOL_ALIGN_4K, 0, 0, &s), 0);
	assert_int_equal(daxpool_map(s, 0, (void **)&p), 0);
	for (int i = 0; i < 1 << 20; i++)
		p[i] = (uint8_t)(i * 7);
	assert_int_equal(daxpool_persist(s, p, 1 << 20), 0);
	assert_int_equal(daxpool_close(dp, &s), 0);
	daxpool_disconnect(&dp);
	assert_int_equal(test_daemon_stop(d, SIGTERM), 0);
	test_daemon_cleanup(d);
}

static void check_data_intact(const char *cfg)
{
	struct test_daemon *d = &extra_;
	struct daxpool *dp;
	struct daxpool_slice *s = NULL;
	uint8_t *p;

	assert_int_equal(start_capturing(d, cfg, true), 0);
	dp = connect_to(d);
	assert_int_equal(daxpool_open(dp, "fault-keep", DAXPOOL_OPEN_RDWR, &s), 0);
	assert_int_equal(daxpool_map(s, 0, (void **)&p), 0);
	for (int i = 0; i < 1 << 20; i++)
		if (p[i] != (uint8_t)(i * 7))
			fail_msg("byte %d of the slice changed", i);
	assert_int_equal(daxpool_close(dp, &s), 0);
	daxpool_disconnect(&dp);
	assert_int_equal(test_daemon_stop(d, SIGTERM), 0);
	test_daemon_cleanup(d);
}

/* Damaged metadata: the daemon refuses to start and says why (stderr and sd_notify STATUS), fsck
 * names the damage, and nothing is "repaired" by guessing. A bad superblock copy is survivable:
 * the daemon starts on the other copy, fsck --repair rewrites it. Data stays intact throughout. */
static void test_metadata_corruption(void **state)
{
	struct test_daemon *d = &extra_;
	char cfg[160], pool[160], out[4096];
	uint8_t old, commit_old;
	int status;

	snprintf(cfg, sizeof(cfg), "%s/corrupt.json", dir);
	snprintf(pool, sizeof(pool), "%s/corrupt-pool", dir);
	write_config(cfg, pool, "16M");
	make_pool_with_data(cfg);
	assert_int_equal(fsck(pool, false, out, sizeof(out)), 0);

	/* 1. A record (slot 0 of the table at 12288; its name at +64): refused, named by fsck. */
	poke(pool, 12288 + 64, &old, 'X');
	status = start_capturing(d, cfg, false);
	assert_int_equal(status, 1);
	assert_non_null(strstr(d->status, "Failed to open the pool"));
	assert_non_null(strstr(daemon_stderr(), "record 0"));
	test_daemon_cleanup(d);
	assert_int_equal(fsck(pool, false, out, sizeof(out)), 6);
	assert_non_null(strstr(out, "record 0"));
	assert_int_equal(fsck(pool, true, out, sizeof(out)), 6); /* not guessed away */
	poke(pool, 12288 + 64, NULL, old);
	check_data_intact(cfg);

	/* 2. The log: commit mark set over a body that does not match. */
	poke(pool, 8192, &commit_old, 0x77);
	poke(pool, 8192 + 200, &old, 0xee);
	status = start_capturing(d, cfg, false);
	assert_int_equal(status, 1);
	assert_non_null(strstr(daemon_stderr(), "log"));
	test_daemon_cleanup(d);
	assert_int_equal(fsck(pool, false, out, sizeof(out)), 6);
	assert_non_null(strstr(out, "log"));
	poke(pool, 8192 + 200, NULL, old);
	poke(pool, 8192, NULL, commit_old);
	check_data_intact(cfg);

	/* 3. Superblock copy A: the daemon runs on copy B and says so; fsck repairs it. */
	poke(pool, 16, &old, (uint8_t)~0);
	assert_int_equal(start_capturing(d, cfg, true), 0);
	assert_non_null(strstr(daemon_stderr(), "superblock copy A"));
	assert_int_equal(test_daemon_stop(d, SIGTERM), 0);
	test_daemon_cleanup(d);
	assert_int_equal(fsck(pool, false, out, sizeof(out)), 5);
	assert_int_equal(fsck(pool, true, out, sizeof(out)), 4);
	assert_int_equal(fsck(pool, false, out, sizeof(out)), 0);
	check_data_intact(cfg);

	/* 4. Both copies: refused (and, being damaged rather than absent, never reformatted). */
	poke(pool, 16, NULL, (uint8_t)~old);
	poke(pool, 4096 + 16, NULL, (uint8_t)~old);
	status = start_capturing(d, cfg, false);
	assert_int_equal(status, 1);
	assert_non_null(strstr(daemon_stderr(), "both superblock copies are bad"));
	test_daemon_cleanup(d);
	assert_int_equal(fsck(pool, true, out, sizeof(out)), 6);
	poke(pool, 16, NULL, old);
	poke(pool, 4096 + 16, NULL, old);
	assert_int_equal(fsck(pool, false, out, sizeof(out)), 0);
	check_data_intact(cfg);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_killed_at_every_step),
		cmocka_unit_test(test_never_reading_allocators),
		cmocka_unit_test(test_full_device),
		cmocka_unit_test_teardown(test_rlimit_nofile, stop_extra),
		cmocka_unit_test_teardown(test_holder_kept_while_out_of_fds, stop_extra),
		cmocka_unit_test_teardown(test_metadata_corruption, stop_extra),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
