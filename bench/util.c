/* daxpool-bench: helpers the provision, pin, zero and scale suites share (see bench.h). */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "bench.h"
#include "daxpool.h"

#define START_TIMEOUT_NS (UINT64_C(30) * 1000000000u)

void bench_sleep_ns(uint64_t ns)
{
	struct timespec ts = {.tv_sec = (time_t)(ns / 1000000000u), .tv_nsec = (long)(ns % 1000000000u)};

	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

double bench_loadavg_1m(void)
{
	double l = -1;
	FILE *f = fopen("/proc/loadavg", "re");

	if (f) {
		if (fscanf(f, "%lf", &l) != 1)
			l = -1;
		fclose(f);
	}
	return l;
}

void bench_cpu_sample(struct bench_cpu *c)
{
	unsigned long long v[10] = {0};
	FILE *f = fopen("/proc/stat", "re");

	*c = (struct bench_cpu){0};
	if (!f)
		return;
	/* cpu user nice system idle iowait irq softirq steal guest guest_nice: guest time is already
	 * counted in user and nice, so it is left out of the total. */
	if (fscanf(f, "cpu %llu %llu %llu %llu %llu %llu %llu %llu %llu %llu", &v[0], &v[1], &v[2],
		   &v[3], &v[4], &v[5], &v[6], &v[7], &v[8], &v[9]) >= 8) {
		for (unsigned i = 0; i < 8; i++)
			c->total += v[i];
		c->steal = v[7];
	}
	fclose(f);
}

double bench_cpu_steal_pct(const struct bench_cpu *from, const struct bench_cpu *to)
{
	if (!from->total || to->total <= from->total || to->steal < from->steal)
		return -1;
	return 100.0 * (double)(to->steal - from->steal) / (double)(to->total - from->total);
}

/* The suite's start, for its closing row: one suite runs per process. */
static struct bench_cpu suite_cpu;

void bench_suite_begin(void)
{
	bench_cpu_sample(&suite_cpu);
}

const char *bench_daxpoold(const struct bench_opts *o)
{
	static char buf[PATH_MAX];
	ssize_t n;

	if (o->daemon)
		return o->daemon;
	if (getenv("DAXPOOLD") && *getenv("DAXPOOLD"))
		return getenv("DAXPOOLD");
	/* The build tree (bench/ beside daemon/) or an install (libexec/daxpool beside sbin/). */
	n = readlink("/proc/self/exe", buf, sizeof(buf) - 1);
	if (n > 0) {
		static const char *const rel[] = {"/../daemon/daxpoold", "/../../sbin/daxpoold"};

		buf[n] = 0;
		char *slash = strrchr(buf, '/');
		for (size_t i = 0; slash && i < sizeof(rel) / sizeof(rel[0]); i++) {
			if ((size_t)(slash - buf) + strlen(rel[i]) + 1 > sizeof(buf))
				break;
			strcpy(slash, rel[i]);
			if (access(buf, X_OK) == 0)
				return buf;
		}
	}
#ifdef DAXPOOLD_PATH
	return DAXPOOLD_PATH;
#else
	return "daxpoold";
#endif
}

void bench_progress_begin(struct bench_progress *p, const char *what, uint64_t total, const char *unit)
{
	const char *d = getenv("DAXPOOL_PROGRESS_DELAY_MS");
	char *end;
	unsigned long ms = d && *d ? strtoul(d, &end, 10) : 500;

	if (d && *d && *end)
		ms = 500;
	*p = (struct bench_progress){ .what = what, .unit = unit, .total = total,
				      .t0 = bench_now_ns(), .delay_ns = ms * 1000000ull,
				      .tty = isatty(STDERR_FILENO) == 1 };
}

void bench_progress_update(struct bench_progress *p, uint64_t done)
{
	uint64_t now = bench_now_ns();
	double secs = (double)(now - p->t0) / 1e9, rate, eta;

	if (!p->tty || now - p->t0 < p->delay_ns || (p->drawn && now - p->last_ns < 250000000ull))
		return;
	rate = secs > 0 ? (double)done / secs : 0;
	eta = rate > 0 && p->total > done ? (double)(p->total - done) / rate : 0;
	fprintf(stderr, "\r\033[K%s: %llu/%llu %s (%.0f%%), %.0f %s/s, ETA %u:%02u", p->what,
		(unsigned long long)done, (unsigned long long)p->total, p->unit,
		p->total ? 100.0 * (double)done / (double)p->total : 100.0, rate, p->unit,
		(unsigned)eta / 60, (unsigned)eta % 60);
	fflush(stderr);
	p->drawn = true;
	p->last_ns = now;
}

void bench_progress_end(struct bench_progress *p)
{
	if (p->drawn) {
		fputs("\r\033[K", stderr);
		fflush(stderr);
	}
	p->drawn = false;
}

static int daemon_start(const struct bench_opts *o, const char *sock, const char *const *args,
			bool own_session, pid_t *ret_pid)
{
	const char *prog = bench_daxpoold(o);
	const char *wrapper = getenv("DAXPOOL_TEST_DAEMON_WRAPPER");
	char *words = wrapper && *wrapper ? strdup(wrapper) : NULL, *save = NULL;
	const char *argv[64];
	size_t n = 0, w = 0;
	uint64_t deadline = bench_now_ns() + START_TIMEOUT_NS;
	pid_t pid;
	int r;

	/* The test harness's wrapper (valgrind in scripts/test.sh), split at spaces, goes first. */
	for (char *t = words ? strtok_r(words, " ", &save) : NULL; t && w < 16; t = strtok_r(NULL, " ", &save))
		argv[w++] = t;
	n = w;
	argv[n++] = prog;
	for (size_t i = 0; args[i] && n < sizeof(argv) / sizeof(argv[0]) - 1; i++)
		argv[n++] = args[i];
	argv[n] = NULL;
	pid = fork();
	if (pid < 0) {
		free(words);
		return -errno;
	}
	if (pid == 0) {
		/* stdout carries the JSON rows: the daemon's output goes to stderr. */
		dup2(STDERR_FILENO, STDOUT_FILENO);
		unsetenv("NOTIFY_SOCKET");
		unsetenv("LISTEN_FDS");
		unsetenv("LISTEN_PID");
		if (own_session && (setsid() < 0 || prctl(PR_SET_PDEATHSIG, SIGKILL) < 0))
			_exit(127);
		execvp(argv[0], (char *const *)argv);
		fprintf(stderr, "daxpool-bench: exec %s: %m\n", argv[0]);
		_exit(127);
	}
	free(words);
	for (;;) {
		struct daxpool *dp = NULL;
		int status;

		r = daxpool_connect(sock, &dp);
		if (r == 0) {
			daxpool_disconnect(&dp);
			*ret_pid = pid;
			return 0;
		}
		if (waitpid(pid, &status, WNOHANG) == pid) {
			fprintf(stderr, "daxpool-bench: %s exited (status 0x%x) before answering\n", prog,
				status);
			return -ECHILD;
		}
		if (bench_now_ns() > deadline) {
			fprintf(stderr, "daxpool-bench: %s did not answer on %s: %s\n", prog, sock,
				daxpool_strerror(r));
			kill(pid, SIGKILL);
			waitpid(pid, NULL, 0);
			return -ETIMEDOUT;
		}
		bench_sleep_ns(20 * 1000000u);
	}
}

int bench_daemon_start(const struct bench_opts *o, const char *sock, const char *const *args,
		       pid_t *ret_pid)
{
	return daemon_start(o, sock, args, false, ret_pid);
}

int bench_service_start(const struct bench_opts *o, const char *sock, const char *const *args,
			pid_t *ret_pid)
{
	return daemon_start(o, sock, args, true, ret_pid);
}

int bench_daemon_stop(pid_t *pid)
{
	uint64_t deadline = bench_now_ns() + UINT64_C(10) * 1000000000u;
	int status;

	if (*pid <= 0)
		return -ESRCH;
	kill(*pid, SIGTERM);
	while (waitpid(*pid, &status, WNOHANG) == 0) {
		if (bench_now_ns() > deadline) {
			fprintf(stderr, "daxpool-bench: daxpoold ignored SIGTERM for 10 s, killing it\n");
			kill(*pid, SIGKILL);
			waitpid(*pid, &status, 0);
			*pid = 0;
			return -ETIMEDOUT;
		}
		bench_sleep_ns(10 * 1000000u);
	}
	*pid = 0;
	return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

int64_t bench_drain_zeroing(struct daxpool *dp, uint64_t timeout_ns, uint64_t *ret_pending)
{
	uint64_t t0 = bench_now_ns();
	struct daxpool_stats st;

	for (bool first = true;; first = false) {
		int r = daxpool_stat(dp, &st, sizeof(st));

		if (r < 0)
			return r;
		if (first && ret_pending)
			*ret_pending = st.zeroing_pending_bytes;
		if (st.zeroing_pending_bytes == 0)
			return (int64_t)(bench_now_ns() - t0);
		if (bench_now_ns() - t0 > timeout_ns)
			return -ETIMEDOUT;
		bench_sleep_ns(100000);
	}
}

int bench_mkdtemp(const char *dir, const char *tag, char *buf, size_t size)
{
	if ((size_t)snprintf(buf, size, "%s/daxpool-bench-%s-XXXXXX", dir, tag) >= size)
		return -ENAMETOOLONG;
	if (!mkdtemp(buf)) {
		int r = -errno;

		fprintf(stderr, "daxpool-bench: temp dir in %s: %m\n", dir);
		return r;
	}
	return 0;
}

int bench_pool_daemon_start(const struct bench_opts *o, const char *tag, uint64_t pool_bytes,
			    const char *isolation, char *dir, size_t dir_size, pid_t *ret_pid,
			    struct daxpool **ret_dp)
{
	char sock[PATH_MAX + 8], pool[PATH_MAX + 8], size[32];
	int r;

	*ret_pid = 0;
	*ret_dp = NULL;
	r = bench_mkdtemp(o->dir, tag, dir, dir_size);
	if (r < 0) {
		dir[0] = 0;
		return r;
	}
	snprintf(sock, sizeof(sock), "%s/s", dir);
	snprintf(pool, sizeof(pool), "%s/pool", dir);
	snprintf(size, sizeof(size), "%llu", (unsigned long long)pool_bytes);
	const char *emul[] = {"--foreground", "--socket", sock, "--emulate", pool, "--size", size,
			      "--page", "4K", "--format-if-empty", "--log-level", "warning",
			      isolation ? "--isolation" : NULL, isolation, NULL};
	const char *dev[] = {"--foreground", "--socket", sock, "--device", o->device,
			     "--format-if-empty", "--log-level", "warning",
			     isolation ? "--isolation" : NULL, isolation, NULL};
	r = bench_daemon_start(o, sock, o->device ? dev : emul, ret_pid);
	if (r == 0)
		r = daxpool_connect(sock, ret_dp);
	return r;
}

int bench_pool_daemon_stop(struct daxpool **dp, pid_t *pid, const char *dir)
{
	int st;

	daxpool_disconnect(dp);
	st = *pid > 0 ? bench_daemon_stop(pid) : 0;
	if (dir[0])
		bench_rmdir(dir);
	return st;
}

int samples_add(struct samples *s, uint64_t x)
{
	if (s->n == s->cap) {
		uint64_t cap = s->cap ? s->cap * 2 : 4096;
		uint64_t *v = realloc(s->v, cap * sizeof(*v));

		if (!v)
			return -ENOMEM;
		s->v = v;
		s->cap = cap;
	}
	s->v[s->n++] = x;
	return 0;
}

void samples_free(struct samples *s)
{
	free(s->v);
	*s = (struct samples){0};
}

void bench_rmdir(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	char path[PATH_MAX];

	if (!d)
		return;
	while ((e = readdir(d)))
		if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0 &&
		    (size_t)snprintf(path, sizeof(path), "%s/%s", dir, e->d_name) < sizeof(path))
			unlink(path);
	closedir(d);
	rmdir(dir);
}

void bench_skip_row(const char *suite, const char *system, const char *metric, const char *why,
		    json_object *params)
{
	if (!params)
		params = json_object_new_object();
	json_object_object_add(params, "skipped", json_object_new_string(why));
	fprintf(stderr, "daxpool-bench %s: %s %s skipped: %s\n", suite, system, metric, why);
	bench_row(suite, system, metric, 0, "skipped", params);
}

void bench_machine_row(const char *suite, double load_start, json_object *params)
{
	if (!params)
		params = json_object_new_object();
	json_object_object_add(params, "nproc", json_object_new_int((int)sysconf(_SC_NPROCESSORS_ONLN)));
	json_object_object_add(params, "loadavg_1m_end", json_object_new_double(bench_loadavg_1m()));
	struct bench_cpu now;
	bench_cpu_sample(&now);
	json_object_object_add(params, "cpu_steal_pct",
			       json_object_new_double(bench_cpu_steal_pct(&suite_cpu, &now)));
	bench_row(suite, "machine", "loadavg_1m_start", load_start, "load", params);
}

void bench_target_row(const char *suite, const char *metric, const char *what, double measured,
		      double threshold, const char *unit, int pass)
{
	json_object *p = json_object_new_object();

	json_object_object_add(p, "target", json_object_new_string(what));
	json_object_object_add(p, "measured", json_object_new_double(measured));
	json_object_object_add(p, "threshold", json_object_new_double(threshold));
	json_object_object_add(p, "threshold_unit", json_object_new_string(unit));
	json_object_object_add(p, "pass", json_object_new_boolean(pass));
	bench_row(suite, "target", metric, pass ? 1 : 0, "pass", p);
}

const char *bench_hugepages_get(struct bench_hugepages *h, uint64_t page_size, long want)
{
	switch (hugepages_reserve_free(&h->res, page_size, want)) {
	case 0:
		return NULL;
	case -ENOENT:
		return "no hugetlb support for this page size";
	case -EPERM:
		return "reserving huge pages needs root";
	default:
		return "the kernel would not reserve enough huge pages (memory fragmented or too small)";
	}
}

void bench_hugepages_put(struct bench_hugepages *h)
{
	/* Take back only what we added: a test running beside us may have raised it too. */
	hugepages_give_back(&h->res);
}

static int scan_kb(const char *file, const char *key, uint64_t *ret)
{
	char line[256];
	size_t klen = strlen(key);
	FILE *f = fopen(file, "re");
	int r = -ENOENT;

	if (!f)
		return -errno;
	while (fgets(line, sizeof(line), f))
		if (strncmp(line, key, klen) == 0) {
			unsigned long long kb;

			if (sscanf(line + klen, " %llu", &kb) == 1) {
				*ret = (uint64_t)kb << 10;
				r = 0;
			}
			break;
		}
	fclose(f);
	return r;
}

int bench_proc_memory(pid_t pid, uint64_t *ret_rss, uint64_t *ret_anon, uint64_t *ret_pss)
{
	char status[64], rollup[64];
	uint64_t rss, anon, pss;
	int r;

	snprintf(status, sizeof(status), "/proc/%d/status", (int)pid);
	snprintf(rollup, sizeof(rollup), "/proc/%d/smaps_rollup", (int)pid);
	if ((r = scan_kb(status, "VmRSS:", &rss)) < 0 || (r = scan_kb(status, "RssAnon:", &anon)) < 0 ||
	    (r = scan_kb(rollup, "Pss:", &pss)) < 0)
		return r;
	*ret_rss = rss;
	*ret_anon = anon;
	*ret_pss = pss;
	return 0;
}
