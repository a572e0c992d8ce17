/*
 * daxpool-bench fairness: what one tenant's flood does to another tenant's grant latency.
 *
 * A daxpoold on an emulated 4K pool (isolation slice) with its default per-uid limits. A victim
 * tenant (uid 65533, one connection) times the grant of a 4 KiB anonymous slice (ALLOC, reply and
 * fd; the FREE after it is untimed) first with the daemon otherwise idle ("unloaded"), then while
 * an attacker (uid 65534) floods ALLOC/CLOSE/PING as fast as the daemon answers from FLOOD_CONNS
 * connections (--counts N: N) driven by FLOOD_PROCS processes ("flood"; CLOSE of an anonymous slice
 * frees it). Placement is a deployment's: daxpoold runs in a session of its own, as a systemd
 * service does, and so do the victim and the attacker (its processes share one), as logins and
 * services do; the scheduler then shares the CPUs between these groups, not between their processes
 * (with the daemon in the bench's own session, a flood's processes took the daemon's CPU share).
 * Rounds repeat both phases; rows give p50/p99 of each phase (median over rounds; min, max and
 * every round's value in params: the spread), the ratio flood p99 / unloaded p99 of the same round,
 * the attacker's rate, and the target "the other tenant's p99 during the flood within 5x its
 * unloaded p99". The same rounds run against two more daxpoolds, with limits.requests_per_turn 4
 * ("turns-4") and 4096 ("turns-off": turns not capped), to show what the cap does to the victim and
 * what it costs the attacker's rate. A control phase in the fair daemon's rounds ("cpu-only") times
 * the victim while the attacker runs one CPU-bound process that talks to nobody: the part of the
 * flood's effect that is CPU contention, which any user's busy process causes and the kernel's
 * scheduler, not daxpoold, arbitrates.
 *
 * Needs root (the tenants are processes that setuid); otherwise every row says skipped.
 */
#include "bench.h"
#include "daxpool.h"
#include "protocol.h"

#include <errno.h>
#include <grp.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#define SUITE "fairness"
#define VICTIM_UID 65533
#define ATTACKER_UID 65534
#define FLOOD_PROCS 2
#define FLOOD_CONNS 16 /* the default; --counts N: N (even, 2..MAX_FLOOD_CONNS) */
#define MAX_FLOOD_CONNS 128 /* limits.connections_per_uid's default: more would be refused */
#define MAX_CONNS_PER_PROC (MAX_FLOOD_CONNS / FLOOD_PROCS)
#define MAX_ROUNDS 16

enum { MODE_FAIR, MODE_TURN4, MODE_OFF, NMODES };
static const char *const mode_name[NMODES] = { "fair", "turns-4", "turns-off" };
static const unsigned mode_turn[NMODES] = { 1, 4, 4096 }; /* limits.requests_per_turn (default 1) */

struct phase {
	double p50, p99; /* ns */
};

struct round {
	struct phase unloaded, flood, cpu; /* cpu: MODE_FAIR's rounds only */
	double flood_ops_s;
};

static void become(uid_t uid)
{
	if (setgroups(0, NULL) < 0 || setgid(uid) < 0 || setuid(uid) < 0)
		_exit(99);
}

/* The victim: n timed grants; writes p50 and p99 (ns) to fd. Exit 0 or an error. */
static int victim(const char *sock, unsigned n, int fd)
{
	struct daxpool *dp = NULL;
	struct samples s = { 0 };
	struct phase out;

	if (setsid() < 0) /* each tenant is a session (a login, a service) of its own */
		return 5;
	become(VICTIM_UID);
	if (daxpool_connect(sock, &dp) < 0) {
		fprintf(stderr, "daxpool-bench fairness: victim: %s\n", daxpool_errormsg());
		return 1;
	}
	for (unsigned i = 0; i < n; i++) {
		struct daxpool_slice *sl = NULL;
		uint64_t a = bench_now_ns();
		int r = daxpool_alloc(dp, NULL, 4096, DAXPOOL_ALIGN_4K, 0, DAXPOOL_ANONYMOUS, &sl);
		uint64_t b = bench_now_ns();

		if (r == -ENOSPC || r == -EAGAIN) { /* the flood filled the pool for a moment */
			bench_sleep_ns(100000);
			i--;
			continue;
		}
		if (r < 0) {
			fprintf(stderr, "daxpool-bench fairness: victim: %s\n", daxpool_errormsg());
			return 2;
		}
		daxpool_free(dp, &sl);
		if (samples_add(&s, b - a) < 0)
			return 3;
	}
	out.p50 = (double)bench_quantile(s.v, s.n, 0.5);
	out.p99 = (double)bench_quantile(s.v, s.n, 0.99);
	samples_free(&s);
	daxpool_disconnect(&dp);
	return write(fd, &out, sizeof(out)) == sizeof(out) ? 0 : 4;
}

/* One attacker connection, driven without blocking: ALLOC (anonymous 4 KiB), CLOSE of what it
 * got (which frees an anonymous slice), PING, and again; one request outstanding at a time. */
struct flood_conn {
	int fd;
	int step; /* 0 ALLOC, 1 CLOSE, 2 PING */
	uint64_t handle;
	uint32_t id;
};

static int flood_send(struct flood_conn *c)
{
	uint8_t payload[DXP_ALLOC_REQUEST_FIXED + DXP_NAME_MAX + 1], frame[DXP_MAX_FRAME];
	size_t n = 0;
	uint16_t type;

	if (c->step == 0) {
		struct dxp_alloc_request req = { .size = 4096, .align = 4096, .flags = DXP_ALLOC_ANONYMOUS,
						 .owner_uid = DXP_OWNER_CALLER, .owner_gid = DXP_OWNER_CALLER };

		n = dxp_alloc_request_encode(&req, payload);
		type = DXP_MSG_ALLOC;
	} else if (c->step == 1) {
		struct dxp_handle_request req = { .id = c->handle };

		n = dxp_handle_request_encode(&req, payload);
		type = DXP_MSG_CLOSE;
	} else {
		struct dxp_ping ping = { .nonce = c->id };

		n = dxp_ping_encode(&ping, payload);
		type = DXP_MSG_PING;
	}
	n = dxp_frame_encode(frame, DXP_PROTOCOL_VERSION_MAX, type, ++c->id, 0, payload, (uint32_t)n);
	return send(c->fd, frame, n, MSG_NOSIGNAL) == (ssize_t)n ? 0 : -errno;
}

/* Reads the reply, closes a passed descriptor, picks the next step. */
static int flood_recv(struct flood_conn *c)
{
	uint8_t buf[DXP_MAX_FRAME];
	union {
		struct cmsghdr align;
		char buf[CMSG_SPACE(sizeof(int))];
	} control;
	struct iovec iov = { .iov_base = buf, .iov_len = sizeof(buf) };
	struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = control.buf,
			      .msg_controllen = sizeof(control.buf) };
	struct dxp_header h;
	ssize_t n = recvmsg(c->fd, &msg, MSG_CMSG_CLOEXEC);

	if (n <= 0)
		return -EPIPE;
	for (struct cmsghdr *cm = CMSG_FIRSTHDR(&msg); cm; cm = CMSG_NXTHDR(&msg, cm)) {
		int fd;

		memcpy(&fd, CMSG_DATA(cm), sizeof(int));
		close(fd);
	}
	if (dxp_header_decode(buf, (size_t)n, &h) < 0)
		return -EBADMSG;
	if (c->step == 0 && h.status == 0) {
		struct dxp_slice sl;
		size_t used;

		if (dxp_slice_decode(buf + DXP_HEADER_SIZE, h.payload_len, &sl, &used) < 0)
			return -EBADMSG;
		c->handle = sl.handle;
		c->step = 1;
	} else {
		c->step = c->step == 1 || c->step == 0 ? 2 : 0; /* a refused ALLOC goes on with PING */
	}
	return 0;
}

static int flood_connect(const char *sock, struct flood_conn *c)
{
	struct sockaddr_un addr = { .sun_family = AF_UNIX };
	struct dxp_hello_request req = { .min_version = DXP_PROTOCOL_VERSION_MIN,
					 .max_version = DXP_PROTOCOL_VERSION_MAX };
	uint8_t payload[DXP_HELLO_REQUEST_SIZE], frame[DXP_MAX_FRAME];
	size_t n;

	c->fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	if (c->fd < 0 || strlen(sock) >= sizeof(addr.sun_path))
		return -1;
	memcpy(addr.sun_path, sock, strlen(sock) + 1);
	if (connect(c->fd, (struct sockaddr *)&addr, sizeof(addr)) < 0)
		return -1;
	n = dxp_hello_request_encode(&req, payload);
	n = dxp_frame_encode(frame, DXP_PROTOCOL_VERSION_MIN, DXP_MSG_HELLO, 1, 0, payload, (uint32_t)n);
	if (send(c->fd, frame, n, MSG_NOSIGNAL) != (ssize_t)n || recv(c->fd, frame, sizeof(frame), 0) <= 0)
		return -1;
	c->id = 1;
	return 0;
}

/* One attacker process: nconn connections as fast as the daemon answers, until stop_fd
 * is readable; writes the number of requests answered to fd. Few processes, many connections:
 * the flood loads the daemon, not the CPUs the victim needs to run on. */
static int flooder(const char *sock, int nconn, int stop_fd, int fd)
{
	struct flood_conn c[MAX_CONNS_PER_PROC];
	struct pollfd pfd[MAX_CONNS_PER_PROC + 1];
	uint64_t ops = 0;

	become(ATTACKER_UID);
	for (int i = 0; i < nconn; i++) {
		c[i] = (struct flood_conn){ 0 };
		if (flood_connect(sock, &c[i]) < 0 || flood_send(&c[i]) < 0)
			return 1;
		pfd[i] = (struct pollfd){ .fd = c[i].fd, .events = POLLIN };
	}
	pfd[nconn] = (struct pollfd){ .fd = stop_fd, .events = POLLIN };
	for (;;) {
		if (poll(pfd, (nfds_t)nconn + 1, 1000) < 0)
			return 2;
		if (pfd[nconn].revents)
			break;
		for (int i = 0; i < nconn; i++) {
			if (!pfd[i].revents)
				continue;
			if (flood_recv(&c[i]) < 0 || flood_send(&c[i]) < 0)
				return 3;
			ops++;
		}
	}
	for (int i = 0; i < nconn; i++)
		close(c[i].fd);
	return write(fd, &ops, sizeof(ops)) == sizeof(ops) ? 0 : 4;
}

static int run_victim(const char *sock, unsigned n, struct phase *ret)
{
	int p[2], status;
	pid_t pid;

	if (pipe(p) < 0)
		return -errno;
	pid = fork();
	if (pid < 0)
		return -errno;
	if (pid == 0) {
		close(p[0]);
		_exit(victim(sock, n, p[1]));
	}
	close(p[1]);
	ssize_t got = read(p[0], ret, sizeof(*ret));
	close(p[0]);
	waitpid(pid, &status, 0);
	return got == sizeof(*ret) && WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : -EIO;
}

/* The attacker: one session (as one user's login or service is) holding FLOOD_PROCS flooders;
 * exits when they have. */
static int attacker(const char *sock, int conns, int stop_fd, int ops_fd)
{
	pid_t pids[FLOOD_PROCS];
	int bad = 0;

	if (setsid() < 0)
		return 1;
	for (int i = 0; i < FLOOD_PROCS; i++) {
		pids[i] = fork();
		if (pids[i] < 0)
			return 2;
		if (pids[i] == 0)
			_exit(flooder(sock, conns / FLOOD_PROCS, stop_fd, ops_fd));
	}
	for (int i = 0; i < FLOOD_PROCS; i++) {
		int st;

		if (waitpid(pids[i], &st, 0) != pids[i] || !WIFEXITED(st) || WEXITSTATUS(st) != 0)
			bad = 3;
	}
	return bad;
}

/* The control: the attacker's session runs one CPU-bound process that talks to nobody, while the
 * victim is timed again. What this does to the victim's grants is the share of the flood's that
 * any busy process of another user causes, through the kernel's CPU scheduler, not daxpoold. */
static int cpu_round(const char *sock, unsigned n, struct phase *ret)
{
	pid_t pid = fork();
	int r, st;

	if (pid < 0)
		return -errno;
	if (pid == 0) {
		volatile unsigned long spin = 0;

		if (setsid() < 0 || prctl(PR_SET_PDEATHSIG, SIGKILL) < 0)
			_exit(1);
		become(ATTACKER_UID);
		for (;;)
			spin++;
	}
	bench_sleep_ns(200ull * 1000 * 1000);
	r = run_victim(sock, n, ret);
	kill(pid, SIGKILL);
	waitpid(pid, &st, 0);
	return r;
}

static int one_round(const char *sock, unsigned n, int conns, struct round *ret)
{
	pid_t pid;
	int stop[2], ops[2], r;
	uint64_t t0, total = 0;

	r = run_victim(sock, n, &ret->unloaded);
	if (r < 0)
		return r;
	if (pipe(stop) < 0 || pipe(ops) < 0)
		return -errno;
	pid = fork();
	if (pid < 0)
		return -errno;
	if (pid == 0) {
		close(stop[1]);
		close(ops[0]);
		_exit(attacker(sock, conns, stop[0], ops[1]));
	}
	close(stop[0]);
	close(ops[1]);
	t0 = bench_now_ns();
	bench_sleep_ns(200ull * 1000 * 1000); /* the flood is in full swing */
	r = run_victim(sock, n, &ret->flood);
	close(stop[1]); /* stop */
	for (int i = 0; i < FLOOD_PROCS; i++) {
		uint64_t x = 0;

		if (read(ops[0], &x, sizeof(x)) == sizeof(x))
			total += x;
	}
	ret->flood_ops_s = (double)total / ((double)(bench_now_ns() - t0) / 1e9);
	close(ops[0]);
	waitpid(pid, NULL, 0);
	return r;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

/* Median of v[0..n) with min, max and every round's value (in round order) into params. */
static double spread(double *v, int n, json_object *params)
{
	double c[MAX_ROUNDS];
	json_object *each = json_object_new_array();

	for (int i = 0; i < n; i++)
		json_object_array_add(each, json_object_new_double(v[i]));
	json_object_object_add(params, "per_round", each);

	memcpy(c, v, sizeof(double) * (size_t)n);
	qsort(c, (size_t)n, sizeof(double), cmp_double);
	json_object_object_add(params, "min", json_object_new_double(c[0]));
	json_object_object_add(params, "max", json_object_new_double(c[n - 1]));
	return c[n / 2];
}

static json_object *params(int mode, const char *phase, int rounds, unsigned n, int conns)
{
	json_object *j = json_object_new_object();

	json_object_object_add(j, "phase", json_object_new_string(phase));
	json_object_object_add(j, "what", json_object_new_string("victim's grant: ALLOC of a 4 KiB anonymous slice"));
	json_object_object_add(j, "requests_per_turn", json_object_new_int((int)mode_turn[mode]));
	json_object_object_add(j, "flood_connections", json_object_new_int(conns));
	json_object_object_add(j, "flood_processes", json_object_new_int(FLOOD_PROCS));
	json_object_object_add(j, "victim_uid", json_object_new_int(VICTIM_UID));
	json_object_object_add(j, "attacker_uid", json_object_new_int(ATTACKER_UID));
	json_object_object_add(j, "rounds", json_object_new_int(rounds));
	json_object_object_add(j, "grants_per_phase", json_object_new_int((int)n));
	json_object_object_add(j, "statistic", json_object_new_string("median over rounds"));
	json_object_object_add(j, "placement",
			       json_object_new_string("daxpoold, the victim and the attacker each in a session "
						      "of its own, as systemd and logins place them"));
	return j;
}

static const char *const metrics[] = { "unloaded_grant_p50", "unloaded_grant_p99", "flood_grant_p50",
					"flood_grant_p99", "flood_vs_unloaded_p99_ratio", "flood_ops_per_s" };

int suite_fairness(const struct bench_opts *o)
{
	char dir[4096], sock[NMODES][4200], pool[NMODES][4200], cfg[NMODES][4200];
	pid_t pid[NMODES] = { 0 };
	struct round rd[NMODES][MAX_ROUNDS];
	int rounds = o->reps ? (int)o->reps : o->quick ? 2 : 5;
	unsigned n = o->quick ? 300 : 2000;
	double load0 = bench_loadavg_1m();
	int r = 0, conns = FLOOD_CONNS;

	if (rounds > MAX_ROUNDS)
		rounds = MAX_ROUNDS;
	if (o->counts_given) {
		if (o->ncounts != 1 || o->counts[0] < FLOOD_PROCS || o->counts[0] > MAX_FLOOD_CONNS ||
		    o->counts[0] % FLOOD_PROCS) {
			fprintf(stderr, "daxpool-bench fairness: --counts takes one even number of attacking "
					"connections, %d to %d (limits.connections_per_uid)\n",
				FLOOD_PROCS, MAX_FLOOD_CONNS);
			return -1;
		}
		conns = (int)o->counts[0];
	}
	if (geteuid() != 0) {
		for (int m = 0; m < NMODES; m++)
			for (size_t i = 0; i < sizeof(metrics) / sizeof(metrics[0]); i++)
				bench_skip_row(SUITE, mode_name[m], metrics[i],
					       "needs root: the tenants are processes of two other uids", NULL);
		bench_skip_row(SUITE, "cpu-only", "flood_vs_cpu_p99_ratio", "needs root", NULL);
		bench_skip_row(SUITE, "target", "target_flood_p99_within_5x", "needs root", NULL);
		bench_machine_row(SUITE, load0, NULL);
		return 0;
	}
	signal(SIGPIPE, SIG_IGN);
	if (bench_mkdtemp(o->dir, "fair", dir, sizeof(dir)) < 0)
		return -1;
	chmod(dir, 0755); /* the tenants reach the sockets */
	for (int m = 0; m < NMODES && r == 0; m++) {
		FILE *f;

		snprintf(sock[m], sizeof(sock[m]), "%s/%s.sock", dir, mode_name[m]);
		snprintf(pool[m], sizeof(pool[m]), "%s/%s.pool", dir, mode_name[m]);
		snprintf(cfg[m], sizeof(cfg[m]), "%s/%s.json", dir, mode_name[m]);
		f = fopen(cfg[m], "w");
		if (!f) {
			r = -errno;
			break;
		}
		fprintf(f, "{ \"socket_mode\": \"0666\", \"log_level\": \"warning\", \"limits\": { \"requests_per_turn\": %u } }\n",
			mode_turn[m]);
		fclose(f);
		const char *args[] = { "--foreground", "--config", cfg[m], "--socket", sock[m], "--emulate", pool[m],
				       "--size", "1G", "--page", "4K", "--format-if-empty", NULL };
		r = bench_service_start(o, sock[m], args, &pid[m]);
	}
	for (int round = 0; round < rounds && r == 0; round++)
		for (int k = 0; k < NMODES && r == 0; k++) {
			int m = (k + round) % NMODES; /* alternate which goes first */

			r = one_round(sock[m], n, conns, &rd[m][round]);
			if (r == 0 && m == MODE_FAIR)
				r = cpu_round(sock[m], n, &rd[m][round].cpu);
		}
	if (r < 0)
		fprintf(stderr, "daxpool-bench fairness: a round failed (%s)\n", strerror(-r));
	for (int m = 0; m < NMODES; m++) {
		int st = pid[m] > 0 ? bench_daemon_stop(&pid[m]) : 0;

		if (r == 0 && st != 0) {
			fprintf(stderr, "daxpool-bench fairness: daxpoold (%s) exited with %d\n", mode_name[m], st);
			r = -ECHILD;
		}
	}
	bench_rmdir(dir);
	if (r < 0)
		return -1;

	double fair_ratio = 0;
	for (int m = 0; m < NMODES; m++) {
		double v[6][MAX_ROUNDS];

		for (int i = 0; i < rounds; i++) {
			v[0][i] = rd[m][i].unloaded.p50;
			v[1][i] = rd[m][i].unloaded.p99;
			v[2][i] = rd[m][i].flood.p50;
			v[3][i] = rd[m][i].flood.p99;
			v[4][i] = rd[m][i].flood.p99 / rd[m][i].unloaded.p99;
			v[5][i] = rd[m][i].flood_ops_s;
		}
		for (int k = 0; k < 6; k++) {
			json_object *j = params(m, k < 2 ? "unloaded" : k < 4 ? "flood" : "both", rounds, n, conns);
			double med = spread(v[k], rounds, j);

			bench_row(SUITE, mode_name[m], metrics[k], med, k == 4 ? "x" : k == 5 ? "ops/s" : "ns", j);
			if (m == MODE_FAIR && k == 4)
				fair_ratio = med;
		}
	}
	{
		static const char *const cm[] = { "cpu_grant_p50", "cpu_grant_p99", "flood_vs_cpu_p99_ratio" };
		double v[3][MAX_ROUNDS];

		for (int i = 0; i < rounds; i++) {
			v[0][i] = rd[MODE_FAIR][i].cpu.p50;
			v[1][i] = rd[MODE_FAIR][i].cpu.p99;
			v[2][i] = rd[MODE_FAIR][i].flood.p99 / rd[MODE_FAIR][i].cpu.p99;
		}
		for (int k = 0; k < 3; k++) {
			json_object *j = params(MODE_FAIR, k < 2 ? "cpu" : "both", rounds, n, conns);

			json_object_object_add(j, "control", json_object_new_string(
				"the attacker's session runs one CPU-bound process that talks to nobody"));
			bench_row(SUITE, "cpu-only", cm[k], spread(v[k], rounds, j), k == 2 ? "x" : "ns", j);
		}
	}
	bench_target_row(SUITE, "target_flood_p99_within_5x",
			 "victim's grant p99 during another uid's flood <= 5x its unloaded p99 (median over rounds)",
			 fair_ratio, 5.0, "x", fair_ratio <= 5.0);
	json_object *mrow = json_object_new_object();
	json_object_object_add(mrow, "rounds", json_object_new_int(rounds));
	bench_machine_row(SUITE, load0, mrow);
	return 0;
}
