/* Integration-test harness: a real daxpoold in a private temp dir; see harness.h. */
#include "harness.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#ifndef DAXPOOLD_PATH
#error "DAXPOOLD_PATH must be defined by the build"
#endif

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int ready_timeout_ms(void)
{
	const char *s = getenv("DAXPOOL_TEST_READY_TIMEOUT_S");

	/* Slow places (a TCG guest loading binaries over 9p) say so explicitly; under valgrind the
	 * daemon starts an order of magnitude slower. */
	if (s && atoi(s) > 0)
		return atoi(s) * 1000;
	return getenv("DAXPOOL_TEST_DAEMON_WRAPPER") ? 60000 : 10000;
}

static int bind_notify_socket(struct test_daemon *d)
{
	struct sockaddr_un addr = { .sun_family = AF_UNIX };

	snprintf(d->notify, sizeof(d->notify), "%s/notify.sock", d->dir);
	d->notify_fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (d->notify_fd < 0)
		return -errno;
	strcpy(addr.sun_path, d->notify);
	if (bind(d->notify_fd, (struct sockaddr *)&addr, sizeof(addr)) < 0)
		return -errno;
	return 0;
}

/* Reads notify datagrams for up to timeout_ms; returns once READY or STOPPING as asked is seen. */
static void read_notify(struct test_daemon *d, int timeout_ms, bool want_ready)
{
	int64_t deadline = now_ms() + timeout_ms;

	/* At least one pass even with timeout 0, so datagrams already queued are never missed. */
	for (;;) {
		struct pollfd pfd = { .fd = d->notify_fd, .events = POLLIN };
		int64_t left = deadline - now_ms();
		char buf[1024];
		ssize_t n;

		if (want_ready && waitpid(d->pid, NULL, WNOHANG) != 0)
			return; /* it died before becoming ready */
		if (poll(&pfd, 1, left > 50 ? 50 : (left > 0 ? (int)left : 0)) <= 0) {
			if (left <= 0)
				return;
			continue;
		}
		n = recv(d->notify_fd, buf, sizeof(buf) - 1, 0);
		if (n <= 0)
			continue;
		buf[n] = 0;
		for (char *line = strtok(buf, "\n"); line; line = strtok(NULL, "\n")) {
			if (strcmp(line, "READY=1") == 0)
				d->saw_ready = true;
			else if (strcmp(line, "STOPPING=1") == 0)
				d->saw_stopping = true;
			else if (strncmp(line, "STATUS=", 7) == 0)
				snprintf(d->status, sizeof(d->status), "%s", line + 7);
		}
		if (want_ready ? d->saw_ready : d->saw_stopping)
			return;
	}
}

int test_daemon_spawn(struct test_daemon *d, const char *const *extra_args, const char *socket_override)
{
	const char *argv[64];
	char *wrapper_copy = NULL;
	int argc = 0, r;

	memset(d, 0, sizeof(*d));
	d->notify_fd = -1;
	strcpy(d->dir, "/tmp/daxpool-test-XXXXXX");
	if (!mkdtemp(d->dir))
		return -errno;
	snprintf(d->socket, sizeof(d->socket), "%s/daxpoold.sock", socket_override ? socket_override : d->dir);
	if (socket_override)
		snprintf(d->socket, sizeof(d->socket), "%s", socket_override);
	r = bind_notify_socket(d);
	if (r < 0)
		return r;

	if (getenv("DAXPOOL_TEST_DAEMON_WRAPPER")) {
		wrapper_copy = strdup(getenv("DAXPOOL_TEST_DAEMON_WRAPPER"));
		for (char *w = strtok(wrapper_copy, " "); w && argc < 16; w = strtok(NULL, " "))
			argv[argc++] = w;
	}
	argv[argc++] = DAXPOOLD_PATH;
	argv[argc++] = "--foreground";
	argv[argc++] = "--socket";
	argv[argc++] = d->socket;
	for (; extra_args && *extra_args && argc < 62; extra_args++)
		argv[argc++] = *extra_args;
	argv[argc] = NULL;

	pid_t parent = getpid();

	d->pid = fork();
	if (d->pid < 0)
		return -errno;
	if (d->pid == 0) {
		/* A failed assertion leaves the test's daemon running; it would keep the test's
		 * output pipe open and ctest would wait for it until its timeout. */
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (getppid() != parent)
			_exit(127);
		setenv("NOTIFY_SOCKET", d->notify, 1);
		unsetenv("LISTEN_FDS");
		unsetenv("LISTEN_PID");
		unsetenv("INVOCATION_ID");
		execvp(argv[0], (char *const *)argv); /* the wrapper is found on PATH */
		_exit(127);
	}
	free(wrapper_copy);
	return 0;
}

int test_daemon_start_at(struct test_daemon *d, const char *const *extra_args,
			 const char *socket_path)
{
	int r = test_daemon_spawn(d, extra_args, socket_path);

	if (r < 0)
		return r;
	read_notify(d, ready_timeout_ms(), true);
	if (!d->saw_ready) {
		fprintf(stderr, "harness: daxpoold did not report READY=1 (status: %s)\n", d->status);
		return -ETIMEDOUT;
	}
	return 0;
}

int test_daemon_start(struct test_daemon *d, const char *const *extra_args)
{
	return test_daemon_start_at(d, extra_args, NULL);
}

int test_daemon_wait(struct test_daemon *d, int timeout_ms)
{
	int64_t deadline = now_ms() + timeout_ms;
	int status;

	for (;;) {
		pid_t p = waitpid(d->pid, &status, WNOHANG);

		if (p == d->pid)
			break;
		if (p < 0)
			return -errno;
		if (now_ms() > deadline)
			return -ETIMEDOUT;
		if (d->notify_fd >= 0)
			read_notify(d, 20, false);
		else
			usleep(20000);
	}
	if (d->notify_fd >= 0)
		read_notify(d, 0, false);
	d->pid = 0;
	return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

int test_daemon_stop(struct test_daemon *d, int sig)
{
	int r;

	if (d->pid <= 0)
		return -ESRCH;
	kill(d->pid, sig);
	r = test_daemon_wait(d, ready_timeout_ms());
	if (r == -ETIMEDOUT) {
		kill(d->pid, SIGKILL);
		waitpid(d->pid, NULL, 0);
		d->pid = 0;
	}
	return r;
}

void test_daemon_cleanup(struct test_daemon *d)
{
	char cmd[128];

	if (d->pid > 0) {
		kill(d->pid, SIGKILL);
		waitpid(d->pid, NULL, 0);
		d->pid = 0;
	}
	if (d->notify_fd >= 0)
		close(d->notify_fd);
	d->notify_fd = -1;
	if (d->dir[0]) {
		snprintf(cmd, sizeof(cmd), "rm -rf '%s'", d->dir);
		(void)!system(cmd);
		d->dir[0] = 0;
	}
}

int test_pool_daemon_start(struct test_pool_daemon *p, const char *tag, const char *size)
{
	const char *args[] = { "--emulate", p->pool, "--size", size, "--page", "4K",
			       "--format-if-empty", NULL };

	memset(p, 0, sizeof(*p));
	p->d.notify_fd = -1; /* so that stop after a failed start closes nothing */
	if ((size_t)snprintf(p->dir, sizeof(p->dir), "/tmp/daxpool-%s-XXXXXX", tag) >= sizeof(p->dir)) {
		p->dir[0] = 0;
		return -ENAMETOOLONG;
	}
	if (!mkdtemp(p->dir)) {
		int r = -errno;

		p->dir[0] = 0;
		return r;
	}
	snprintf(p->pool, sizeof(p->pool), "%s/pool", p->dir);
	return test_daemon_start(&p->d, args);
}

int test_pool_daemon_stop(struct test_pool_daemon *p)
{
	char cmd[96];
	int r = test_daemon_stop(&p->d, SIGTERM);

	test_daemon_cleanup(&p->d);
	if (p->dir[0]) {
		snprintf(cmd, sizeof(cmd), "rm -rf '%s'", p->dir);
		if (system(cmd) != 0)
			return -EIO;
		p->dir[0] = 0;
	}
	return r;
}

int run_capture(const char *const *argv, char *buf, size_t size)
{
	int pipefd[2], status;
	size_t used = 0;
	pid_t pid;

	if (pipe(pipefd) < 0)
		return -errno;
	pid = fork();
	if (pid < 0)
		return -errno;
	if (pid == 0) {
		dup2(pipefd[1], STDOUT_FILENO);
		close(pipefd[0]);
		close(pipefd[1]);
		execv(argv[0], (char *const *)argv);
		_exit(127);
	}
	close(pipefd[1]);
	for (;;) {
		ssize_t n = read(pipefd[0], buf + used, size - 1 - used);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		used += (size_t)n;
		if (used == size - 1)
			break;
	}
	buf[used] = 0;
	close(pipefd[0]);
	if (waitpid(pid, &status, 0) < 0)
		return -errno;
	return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

int raw_connect(const char *path)
{
	struct sockaddr_un addr = { .sun_family = AF_UNIX };
	int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);

	if (fd < 0)
		return -errno;
	snprintf(addr.sun_path, sizeof(addr.sun_path), "%s", path);
	if (connect(fd, (struct sockaddr *)&addr, sizeof(addr)) < 0) {
		int r = -errno;
		close(fd);
		return r;
	}
	return fd;
}
