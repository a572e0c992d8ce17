/* daxpoold: start-up order, detaching outside systemd, readiness, and shutdown order. */
#include "build-config.h"
#include "daemon.h"
#include "log.h"
#include "parse-util.h"
#include "protocol.h"

#include <errno.h>
#include <inttypes.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <systemd/sd-daemon.h>
#include <unistd.h>

static bool under_systemd(void)
{
	return getenv("NOTIFY_SOCKET") || getenv("INVOCATION_ID") || getenv("LISTEN_FDS");
}

/*
 * Outside systemd and without --foreground, daxpoold detaches like a classic daemon, but the
 * starting process waits for the detached one to report readiness through a pipe, so its exit
 * status tells whether the daemon really started (and it prints the daemon's pid).
 * Returns in the detached grandchild with *ret_ready_fd set; the caller process exits here.
 */
static int detach(int *ret_ready_fd)
{
	int pipefd[2];
	pid_t pid;

	if (pipe2(pipefd, O_CLOEXEC) < 0)
		return log_error_errno(-errno, "pipe: %m");
	pid = fork();
	if (pid < 0)
		return log_error_errno(-errno, "fork: %m");
	if (pid > 0) {
		int32_t status = -EIO;
		ssize_t n;

		close(pipefd[1]);
		waitpid(pid, NULL, 0);
		do
			n = read(pipefd[0], &status, sizeof(status));
		while (n < 0 && errno == EINTR);
		if (n != sizeof(status) || status < 0) {
			fprintf(stderr, "daxpoold: failed to start%s%s (see syslog)\n",
				n == sizeof(status) ? ": " : "",
				n == sizeof(status) ? strerror(-status) : "");
			_exit(EXIT_FAILURE);
		}
		printf("daxpoold started, pid %d\n", (int)status);
		fflush(stdout); /* _exit() does not flush, and stdout may be a pipe */
		_exit(EXIT_SUCCESS);
	}
	close(pipefd[0]);
	if (setsid() < 0)
		_exit(EXIT_FAILURE);
	pid = fork();
	if (pid < 0)
		_exit(EXIT_FAILURE);
	if (pid > 0)
		_exit(EXIT_SUCCESS); /* the session leader goes; the daemon can never regain a tty */
	if (chdir("/") < 0)
		_exit(EXIT_FAILURE);
	int null = open("/dev/null", O_RDWR | O_CLOEXEC);
	if (null >= 0) {
		dup2(null, STDIN_FILENO);
		dup2(null, STDOUT_FILENO);
		dup2(null, STDERR_FILENO);
		if (null > STDERR_FILENO)
			close(null);
	}
	log_set_target(LOG_TARGET_SYSLOG);
	*ret_ready_fd = pipefd[1];
	return 0;
}

static void report_ready(struct daxpoold *d, int32_t status)
{
	if (d->ready_fd < 0)
		return;
	(void)!write(d->ready_fd, &status, sizeof(status));
	close(d->ready_fd);
	d->ready_fd = -1;
}

int main(int argc, char **argv)
{
	struct daxpoold d = { .listen_fd = -1, .ready_fd = -1, .exit_code = EXIT_FAILURE };
	int r;

	log_setup("daxpoold", LOG_INFO);
	r = options_parse(&d.opts, argc, argv);
	if (r < 0) {
		options_free(&d.opts);
		return 2; /* usage error, as getopt-style tools do */
	}
	if (d.opts.show_help || d.opts.show_version) {
		if (d.opts.show_help)
			options_print_help(argv[0]);
		else
			printf("daxpoold %s (protocol %d..%d)\n", DAXPOOL_VERSION_STRING,
			       DXP_PROTOCOL_VERSION_MIN, DXP_PROTOCOL_VERSION_MAX);
		options_free(&d.opts);
		return 0;
	}
	log_set_max_level(d.opts.log_level);

	if (!d.opts.foreground && !under_systemd()) {
		r = detach(&d.ready_fd);
		if (r < 0)
			goto out;
	}

	/* A client vanishing mid-reply must cost an EPIPE, not the daemon. */
	signal(SIGPIPE, SIG_IGN);
	d.loop = ev_default_loop(EVFLAG_AUTO | EVFLAG_NOENV);
	if (!d.loop) {
		r = log_error_errno(-ENOMEM, "cannot create the event loop");
		goto out;
	}
	clock_gettime(CLOCK_MONOTONIC, &d.start_mono);
	d.start_realtime = time(NULL);

	r = server_start(&d);
	if (r < 0) {
		sd_notifyf(0, "STATUS=Failed to start: %s\nERRNO=%d", strerror(-r), -r);
		goto out;
	}
	if (d.opts.backend != BACKEND_NONE)
		log_warning("backend \"%s\" (%s) is validated but not served yet: slices arrive with the "
			    "allocator service (issue 3); answering HELLO/PING/STATUS only",
			    backend_kind_name(d.opts.backend),
			    d.opts.backend == BACKEND_DEVDAX ? d.opts.device_path : d.opts.emulate_path);
	log_info("daxpoold %s ready (backend: %s, max %u clients)", DAXPOOL_VERSION_STRING,
		 backend_kind_name(d.opts.backend), d.opts.max_clients);
	sd_notifyf(0, "READY=1\nSTATUS=Serving on %s (backend: %s)\nMAINPID=%d",
		   d.socket_activated ? "activated socket" : d.opts.socket_path,
		   backend_kind_name(d.opts.backend), (int)getpid());
	report_ready(&d, (int32_t)getpid());

	ev_run(d.loop, 0);

	sd_notify(0, "STOPPING=1\nSTATUS=Shutting down");
	log_info("shutting down: %u clients connected, %" PRIu64 " served, %" PRIu64 " protocol errors",
		 d.n_conns, d.conns_total, d.protocol_errors);
out:
	report_ready(&d, r < 0 ? r : -EIO);
	server_stop(&d);
	if (d.loop)
		ev_loop_destroy(d.loop);
	options_free(&d.opts);
	return r < 0 ? EXIT_FAILURE : d.exit_code;
}
