/*
 * daxpool-churn: crash churn against a real daxpoold on the emulated backend (docs/RELIABILITY.md).
 *
 * Client processes allocate, write, persist, reopen, rewrite and free named slices and use
 * anonymous ones, while the daemon is SIGKILLed at random moments and restarted. Each client
 * appends to its own oracle file what it is about to do and what was acknowledged:
 *
 *   a NAME SIZE  alloc sent          A NAME      alloc acknowledged
 *   w NAME       rewrite started     D NAME CRC  data persisted (daxpool_persist returned)
 *   f NAME       free sent           F NAME      free acknowledged
 *   E NAME       alloc refused by the daemon (e.g. no space): the name does not exist
 *   R NAME       after a lost connection: an alloc/free of unknown outcome, found to exist
 *   G NAME       the same, found not to exist
 *   X NAME WHY   a client saw an acknowledged slice missing or its data changed
 *
 * A request whose connection died before the reply may or may not have happened; the client
 * finds out with OPEN once it is connected again (a new daemon never sees the old request), so
 * the oracle ends definite and unacknowledged allocations do not pile up in the pool.
 *
 * After every kill, before the restart, the pool's metadata is checked in a private copy-on-write
 * mapping (pool_check without repair writes nothing): it must never be DAMAGED (a committed
 * operation waiting in the log is fine: the restart replays it). At the end, with every client
 * gone: no anonymous slice is left, no quarantined extent waits, every acknowledged named slice
 * exists with its last persisted data, no slice exists that no client asked for, no two slices
 * overlap, and after a clean stop `daxpoolctl fsck` calls the pool clean.
 *
 * Output: one JSON line of figures. Exit 0 if every check held, 1 if one failed, 2 on usage or
 * setup errors.
 */
#include "daxpool.h"
#include "harness.h"
#include "pool.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MAX_CLIENTS 64
#define MAX_OWNED 48
#define MAX_NAMES (1 << 20)
#define MAX_EXTENTS (1 << 16) /* more than any pool here has records */

static struct {
	unsigned kills, clients;
	unsigned min_ms, max_ms; /* time between kills */
	unsigned seed;
	const char *pool_size;
	unsigned lifetime_reconnects; /* a client process retires after this many lost connections */
} cfg = { .kills = 20, .clients = 4, .min_ms = 50, .max_ms = 400, .seed = 0, .pool_size = "256M",
	  .lifetime_reconnects = 25 };

static char dir[64], socket_path[128], pool_path[128], config_path[128];
static unsigned long violations;

static void violation(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	fprintf(stderr, "churn: VIOLATION: ");
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
	violations++;
}

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* xorshift64*: each client its own stream. */
static uint64_t rnd_state;
static uint64_t rnd(void)
{
	rnd_state ^= rnd_state >> 12;
	rnd_state ^= rnd_state << 25;
	rnd_state ^= rnd_state >> 27;
	return rnd_state * 0x2545F4914F6CDD1DULL;
}

/* FNV-1a over the slice's bytes. */
static uint64_t checksum(const uint8_t *p, size_t len)
{
	uint64_t h = 0xcbf29ce484222325ULL;

	for (size_t i = 0; i < len; i++)
		h = (h ^ p[i]) * 0x100000001b3ULL;
	return h;
}

static void fill(uint8_t *p, size_t len, uint64_t seed)
{
	uint64_t s = seed | 1;

	for (size_t i = 0; i + 8 <= len; i += 8) {
		s ^= s >> 12;
		s ^= s << 25;
		s ^= s >> 27;
		memcpy(p + i, &s, 8);
	}
}

/* ---- clients ----------------------------------------------------------------------------- */

static volatile sig_atomic_t stop_requested;
static void on_stop(int sig)
{
	stop_requested = 1;
}

struct owned {
	char name[64];
	uint64_t size;
};

struct client {
	int id;
	unsigned generation;
	char pending[4][64]; /* sent, connection lost before the reply: outcome unknown */
	int npending;
	FILE *oracle;
	struct daxpool *dp;
	struct owned owned[MAX_OWNED];
	int nowned;
	unsigned seq;
	struct daxpool_slice *anon; /* kept across operations, dies with the connection */
	unsigned long ops, lost_connections, spins;
};

static void note(struct client *c, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vfprintf(c->oracle, fmt, ap);
	va_end(ap);
	fputc('\n', c->oracle);
	/* Written before the next request goes out: the oracle must not lag the daemon. */
	fflush(c->oracle);
}

/* Errors that mean "the daemon went away": the request's outcome is unknown. */
static bool connection_lost(int r)
{
	return r == -ECONNRESET || r == -EPIPE || r == -ENOTCONN || r == -ETIMEDOUT || r == -ECONNREFUSED ||
	       r == -ENOENT || r == -EBADF || r == -DAXPOOL_E_PROTOCOL;
}

static void drop_connection(struct client *c)
{
	if (c->anon) {
		daxpool_unmap(c->anon);
		daxpool_close(c->dp, &c->anon); /* fails on a dead connection; frees local state */
	}
	daxpool_disconnect(&c->dp);
	c->lost_connections++;
}

static void forget(struct client *c, int i)
{
	c->owned[i] = c->owned[--c->nowned];
}

static void pend(struct client *c, const char *name)
{
	if (c->npending < 4)
		snprintf(c->pending[c->npending++], sizeof(c->pending[0]), "%s", name);
}

/* Settles requests whose reply was lost: OPEN tells whether they happened. */
static int reconcile(struct client *c)
{
	while (c->npending > 0) {
		struct daxpool_slice *s = NULL;
		char name[64];
		int r;

		memcpy(name, c->pending[c->npending - 1], sizeof(name));
		r = daxpool_open(c->dp, name, DAXPOOL_OPEN_RDWR, &s);

		if (r == 0) {
			note(c, "R %s", name);
			if (c->nowned < MAX_OWNED) {
				struct owned *o = &c->owned[c->nowned++];

				snprintf(o->name, sizeof(o->name), "%s", name);
				o->size = daxpool_slice_get_length(s);
				daxpool_close(c->dp, &s);
			} else {
				note(c, "f %s", name);
				r = daxpool_free(c->dp, &s);
				if (r < 0) {
					daxpool_close(c->dp, &s);
					return r; /* stays pending */
				}
				note(c, "F %s", name);
			}
		} else if (r == -ENOENT && strstr(daxpool_errormsg(), "daxpoold:")) {
			note(c, "G %s", name);
		} else {
			return r;
		}
		c->npending--;
	}
	return 0;
}

static bool ensure_connected(struct client *c)
{
	while (!c->dp) {
		if (stop_requested)
			return false;
		if (daxpool_connect(socket_path, &c->dp) < 0) {
			c->dp = NULL;
			usleep(5000);
			continue;
		}
		if (reconcile(c) < 0)
			daxpool_disconnect(&c->dp);
	}
	return true;
}

static int op_free(struct client *c);

/* Writes a fresh pattern into an open slice and persists it. */
static int write_data(struct client *c, struct daxpool_slice *s, const char *name)
{
	uint64_t seed = rnd();
	uint8_t *p;
	int r;

	r = daxpool_map(s, 0, (void **)&p);
	if (r < 0)
		return r;
	fill(p, daxpool_slice_get_length(s), seed);
	r = daxpool_persist(s, p, daxpool_slice_get_length(s));
	if (r == 0)
		note(c, "D %s %016" PRIx64, name, checksum(p, daxpool_slice_get_length(s)));
	daxpool_unmap(s);
	return r;
}

static int op_alloc(struct client *c)
{
	struct daxpool_slice *s = NULL;
	struct owned o;
	int r;

	if (c->nowned == MAX_OWNED)
		return 0;
	snprintf(o.name, sizeof(o.name), "churn-%d-%u-%u", c->id, c->generation, c->seq++);
	o.size = ((rnd() % 32) + 1) * 4096;
	note(c, "a %s %" PRIu64, o.name, o.size);
	r = daxpool_alloc(c->dp, o.name, o.size, DAXPOOL_ALIGN_4K, 0, 0, &s);
	if (r < 0 && connection_lost(r)) {
		pend(c, o.name);
		return r;
	}
	if (r < 0) {
		note(c, "E %s %d", o.name, r);
		return r == -ENOSPC ? op_free(c) : r; /* full: make room instead */
	}
	note(c, "A %s", o.name);
	c->owned[c->nowned++] = o;
	r = write_data(c, s, o.name);
	daxpool_close(c->dp, &s);
	return r;
}

/* Opens an owned slice; ENOENT from a daemon that answers means an acknowledged slice is gone. */
static int open_owned(struct client *c, int i, struct daxpool_slice **s)
{
	int r = daxpool_open(c->dp, c->owned[i].name, DAXPOOL_OPEN_RDWR, s);

	if (r == -ENOENT && strstr(daxpool_errormsg(), "daxpoold:")) {
		note(c, "X %s missing", c->owned[i].name);
		forget(c, i);
		return 0;
	}
	return r;
}

static int op_rewrite(struct client *c)
{
	struct daxpool_slice *s = NULL;
	int i, r;

	if (c->nowned == 0)
		return 0;
	i = (int)(rnd() % (unsigned)c->nowned);
	r = open_owned(c, i, &s);
	if (r < 0 || !s)
		return r;
	note(c, "w %s", c->owned[i].name);
	r = write_data(c, s, c->owned[i].name);
	daxpool_close(c->dp, &s);
	return r;
}

static int op_free(struct client *c)
{
	struct daxpool_slice *s = NULL;
	char name[64];
	int i, r;

	if (c->nowned == 0)
		return 0;
	i = (int)(rnd() % (unsigned)c->nowned);
	r = open_owned(c, i, &s);
	if (r < 0 || !s)
		return r;
	snprintf(name, sizeof(name), "%s", c->owned[i].name);
	note(c, "f %s", name);
	forget(c, i); /* from here on its fate is the oracle's to judge */
	r = daxpool_free(c->dp, &s);
	if (r == 0) {
		note(c, "F %s", name);
		return 0;
	}
	if (connection_lost(r))
		pend(c, name);
	daxpool_close(c->dp, &s);
	return r;
}

static int op_anonymous(struct client *c)
{
	uint8_t *p;
	int r;

	if (c->anon) {
		daxpool_unmap(c->anon);
		r = daxpool_close(c->dp, &c->anon);
		return r;
	}
	r = daxpool_alloc(c->dp, NULL, ((rnd() % 16) + 1) * 4096, DAXPOOL_ALIGN_4K, 0, DAXPOOL_ANONYMOUS,
			  &c->anon);
	if (r < 0) {
		c->anon = NULL;
		return r == -ENOSPC ? 0 : r;
	}
	r = daxpool_map(c->anon, 0, (void **)&p);
	if (r == 0) {
		fill(p, daxpool_slice_get_length(c->anon), rnd());
		r = daxpool_persist(c->anon, p, daxpool_slice_get_length(c->anon));
	}
	return r;
}

/*
 * One client process. It retires after lifetime_reconnects lost connections, freeing what it
 * owns, and the parent starts the next generation under the same id: extents a process was
 * given stay quarantined across daemon restarts until that process exits (the daemon cannot
 * know whether it still maps them), so immortal clients would fill the pool after enough kills.
 */
static void client_main(int id, unsigned generation, unsigned seed)
{
	struct client c = { .id = id, .generation = generation };
	char path[160];

	prctl(PR_SET_PDEATHSIG, SIGKILL);
	signal(SIGTERM, on_stop);
	rnd_state = (uint64_t)seed * 0x9E3779B97F4A7C15ULL + (uint64_t)id * 7919 + generation + 1;
	snprintf(path, sizeof(path), "%s/oracle-%d", dir, id);
	c.oracle = fopen(path, "a");
	if (!c.oracle)
		_exit(2);
	while (!stop_requested) {
		int r;

		if (!ensure_connected(&c))
			break;
		if (c.lost_connections >= cfg.lifetime_reconnects) {
			/* Retire: free what we own (what a kill interrupts stays for the oracle). */
			for (int tries = 0; c.nowned > 0 && c.dp && tries < 1000; tries++) {
				r = op_free(&c);
				if (r < 0 && connection_lost(r))
					drop_connection(&c);
			}
			break;
		}
		switch (rnd() % 10) {
		case 0:
		case 1:
		case 2:
			r = op_alloc(&c);
			break;
		case 3:
		case 4:
			r = op_rewrite(&c);
			break;
		case 5:
		case 6:
			r = op_free(&c);
			break;
		default:
			r = op_anonymous(&c);
			break;
		}
		c.ops++;
		if (r == 0 && c.nowned == 0 && c.spins++ > 100)
			usleep(1000); /* nothing to free and no space: do not spin */
		if (r < 0 && connection_lost(r))
			drop_connection(&c);
		else if (r < 0 && r != -ENOSPC && r != -EDQUOT)
			note(&c, "X - unexpected error %d: %s", r, daxpool_errormsg());
	}
	if (c.dp) {
		if (c.anon) {
			daxpool_unmap(c.anon);
			daxpool_close(c.dp, &c.anon);
		}
		daxpool_disconnect(&c.dp);
	}
	fprintf(c.oracle, "# ops %lu lost %lu\n", c.ops, c.lost_connections);
	fclose(c.oracle);
	_exit(0);
}

/* ---- the daemon ------------------------------------------------------------------------- */

static struct test_daemon daemon_;

static const char *const daemon_args[] = { "--config", config_path, NULL };

/* Starts daxpoold on the fixed socket and waits until it answers; returns ms taken or -1. */
static int64_t daemon_up(void)
{
	int64_t t0 = now_ms();

	if (test_daemon_spawn(&daemon_, daemon_args, socket_path) < 0)
		return -1;
	while (now_ms() - t0 < 60000) {
		struct daxpool *dp = NULL;

		if (daxpool_connect(socket_path, &dp) == 0) {
			int r = daxpool_ping(dp);

			daxpool_disconnect(&dp);
			if (r == 0)
				return now_ms() - t0;
		}
		if (waitpid(daemon_.pid, NULL, WNOHANG) == daemon_.pid) {
			daemon_.pid = 0;
			return -1;
		}
		usleep(2000);
	}
	return -1;
}

static void must_not_write(const void *addr, size_t len)
{
	abort();
}

static void must_not_drain(void)
{
	abort();
}

/* pool_check on a copy-on-write mapping of the pool file: never touches the file. */
static int check_pool_offline(char *why, size_t size)
{
	static const struct pool_persist_ops noop = { must_not_write, must_not_write, must_not_drain };
	struct stat st;
	void *p;
	int fd = open(pool_path, O_RDONLY | O_CLOEXEC), r;

	if (fd < 0 || fstat(fd, &st) < 0)
		return -errno;
	p = mmap(NULL, (size_t)st.st_size, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
	close(fd);
	if (p == MAP_FAILED)
		return -errno;
	/* Without repair nothing is written or persisted: the ops abort if that ever changes. */
	r = pool_check_range(p, (uint64_t)st.st_size, &noop, false);
	snprintf(why, size, "%s", pool_errormsg());
	munmap(p, (size_t)st.st_size);
	return r;
}

/* ---- the final judgement ---------------------------------------------------------------- */

enum name_state { N_MAYBE, N_EXISTS, N_GONE };

struct name_entry {
	char name[64];
	enum name_state state;
	bool data_known;
	uint64_t crc;
	bool seen;
};

static struct name_entry *names;
static size_t nnames;

static struct name_entry *name_get(const char *name, bool create)
{
	/* Linear probing over a fixed table: the churn makes at most MAX_NAMES names. */
	uint64_t h = checksum((const uint8_t *)name, strlen(name)) % MAX_NAMES;

	for (size_t i = 0; i < MAX_NAMES; i++) {
		struct name_entry *e = &names[(h + i) % MAX_NAMES];

		if (!e->name[0]) {
			if (!create)
				return NULL;
			size_t n = strnlen(name, sizeof(e->name) - 1); /* churn names are short */

			memcpy(e->name, name, n);
			e->name[n] = 0;
			nnames++;
			return e;
		}
		if (strcmp(e->name, name) == 0)
			return e;
	}
	return NULL;
}

static unsigned long total_ops, total_lost, acked_allocs, acked_frees, persisted, reconciled;

static void read_oracles(void)
{
	for (unsigned id = 0; id < cfg.clients; id++) {
		char path[160], line[512], tag, name[128], rest[256];
		FILE *f;

		snprintf(path, sizeof(path), "%s/oracle-%u", dir, id);
		f = fopen(path, "r");
		if (!f) {
			violation("client %u left no oracle", id);
			continue;
		}
		while (fgets(line, sizeof(line), f)) {
			unsigned long ops, lost;
			struct name_entry *e;

			if (sscanf(line, "# ops %lu lost %lu", &ops, &lost) == 2) {
				total_ops += ops;
				total_lost += lost;
				continue;
			}
			rest[0] = 0;
			if (sscanf(line, "%c %127s %255[^\n]", &tag, name, rest) < 2)
				continue;
			if (tag == 'X') {
				violation("client %u: %s %s", id, name, rest);
				continue;
			}
			e = name_get(name, true);
			if (!e) {
				violation("too many names");
				break;
			}
			switch (tag) {
			case 'a':
				e->state = N_MAYBE;
				break;
			case 'A':
				e->state = N_EXISTS;
				acked_allocs++;
				break;
			case 'w':
				e->data_known = false;
				break;
			case 'D':
				e->data_known = true;
				e->crc = strtoull(rest, NULL, 16);
				persisted++;
				break;
			case 'f':
				e->state = N_MAYBE;
				break;
			case 'F':
				e->state = N_GONE;
				acked_frees++;
				break;
			case 'R':
				e->state = N_EXISTS;
				reconciled++;
				break;
			case 'E':
			case 'G':
				e->state = N_GONE;
				if (tag == 'G')
					reconciled++;
				break;
			}
		}
		fclose(f);
	}
}

struct extent {
	uint64_t off, len;
	char name[256];
};
static struct extent *extents;
static size_t nextents;

static int list_cb(const struct daxpool_slice_info *info, void *userdata)
{
	if (nextents < MAX_EXTENTS) {
		extents[nextents].off = info->offset;
		extents[nextents].len = info->length;
		snprintf(extents[nextents].name, sizeof(extents[nextents].name), "%s", info->name);
		nextents++;
	}
	return 0;
}

static int cmp_extent(const void *a, const void *b)
{
	const struct extent *x = a, *y = b;

	return x->off < y->off ? -1 : x->off > y->off;
}

static void judge(struct daxpool *dp)
{
	struct daxpool_stats st;
	int r;

	/* Every client is gone: anonymous slices and quarantined extents must drain. */
	for (int i = 0; i < 3000; i++) {
		r = daxpool_stat(dp, &st, sizeof(st));
		if (r < 0 || (st.anonymous_slices == 0 && st.quarantined == 0 && st.leases_waiting == 0 &&
			      st.zeroing_pending_bytes == 0))
			break;
		usleep(10000);
	}
	if (r < 0) {
		violation("STAT failed: %s", daxpool_errormsg());
		return;
	}
	if (st.anonymous_slices)
		violation("%" PRIu64 " anonymous slices left after every client exited", st.anonymous_slices);
	if (st.quarantined || st.leases_waiting)
		violation("%" PRIu64 " extents still quarantined (%" PRIu64 " waiting) with no client left",
			  st.quarantined, st.leases_waiting);

	r = daxpool_list(dp, list_cb, NULL);
	if (r < 0) {
		violation("LIST failed: %s", daxpool_errormsg());
		return;
	}
	if (nextents != st.slices)
		violation("LIST shows %zu slices, STAT %" PRIu64, nextents, st.slices);
	qsort(extents, nextents, sizeof(*extents), cmp_extent);
	for (size_t i = 0; i + 1 < nextents; i++)
		if (extents[i].off + extents[i].len > extents[i + 1].off)
			violation("slices %s and %s overlap", extents[i].name, extents[i + 1].name);

	for (size_t i = 0; i < nextents; i++) {
		struct name_entry *e = name_get(extents[i].name, false);

		if (!e) {
			violation("slice \"%s\" exists but no client asked for it", extents[i].name);
			continue;
		}
		e->seen = true;
		if (e->state == N_GONE)
			violation("slice %s was freed (acknowledged) but exists", e->name);
	}
	for (size_t i = 0; i < MAX_NAMES; i++) {
		struct name_entry *e = &names[i];
		struct daxpool_slice *s = NULL;
		uint8_t *p;

		if (!e->name[0] || e->state != N_EXISTS)
			continue;
		if (!e->seen) {
			violation("acknowledged slice %s is gone", e->name);
			continue;
		}
		if (!e->data_known)
			continue;
		r = daxpool_open(dp, e->name, 0, &s);
		if (r < 0) {
			violation("open %s: %s", e->name, daxpool_errormsg());
			continue;
		}
		if (daxpool_map(s, 0, (void **)&p) == 0) {
			if (checksum(p, daxpool_slice_get_length(s)) != e->crc)
				violation("slice %s: persisted data changed", e->name);
			daxpool_unmap(s);
		} else {
			violation("map %s: %s", e->name, daxpool_errormsg());
		}
		daxpool_close(dp, &s);
	}
}

/* Frees everything the churn left, so the pool ends empty (and fsck sees an idle pool). */
static void free_all(struct daxpool *dp)
{
	for (size_t i = 0; i < nextents; i++) {
		struct daxpool_slice *s = NULL;

		if (extents[i].name[0] && daxpool_open(dp, extents[i].name, DAXPOOL_OPEN_RDWR, &s) == 0 &&
		    daxpool_free(dp, &s) < 0)
			violation("free %s: %s", extents[i].name, daxpool_errormsg());
	}
}

static int run_fsck(char *out, size_t size)
{
	const char *argv[] = { DAXPOOLCTL_PATH, "fsck", pool_path, NULL };

	return run_capture(argv, out, size);
}

static void usage(const char *argv0)
{
	fprintf(stderr,
		"usage: %s [--kills N] [--clients N] [--interval MIN_MS:MAX_MS] [--seed N] [--pool-size SIZE]\n"
		"       [--lifetime RECONNECTS]\n",
		argv0);
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "kills", required_argument, NULL, 'k' },   { "clients", required_argument, NULL, 'c' },
		{ "interval", required_argument, NULL, 'i' }, { "seed", required_argument, NULL, 's' },
		{ "pool-size", required_argument, NULL, 'p' }, { "lifetime", required_argument, NULL, 'l' },
		{ "help", no_argument, NULL, 'h' },
		{}
	};
	pid_t clients[MAX_CLIENTS];
	unsigned generations[MAX_CLIENTS] = { 0 };
	unsigned long retired = 0;
	int64_t t_start, recovery_max = 0, recovery_sum = 0, r_ms;
	unsigned long checks_clean = 0, checks_log = 0;
	char why[1024], out[4096];
	struct daxpool *dp = NULL;
	int c, r;
	FILE *f;

	cfg.seed = (unsigned)time(NULL);
	while ((c = getopt_long(argc, argv, "k:c:i:s:p:l:h", opts, NULL)) >= 0) {
		switch (c) {
		case 'k':
			cfg.kills = (unsigned)strtoul(optarg, NULL, 10);
			break;
		case 'c':
			cfg.clients = (unsigned)strtoul(optarg, NULL, 10);
			break;
		case 'i':
			if (sscanf(optarg, "%u:%u", &cfg.min_ms, &cfg.max_ms) != 2 || cfg.min_ms > cfg.max_ms) {
				usage(argv[0]);
				return 2;
			}
			break;
		case 's':
			cfg.seed = (unsigned)strtoul(optarg, NULL, 10);
			break;
		case 'p':
			cfg.pool_size = optarg;
			break;
		case 'l':
			cfg.lifetime_reconnects = (unsigned)strtoul(optarg, NULL, 10);
			break;
		default:
			usage(argv[0]);
			return c == 'h' ? 0 : 2;
		}
	}
	if (cfg.clients < 1 || cfg.clients > MAX_CLIENTS) {
		fprintf(stderr, "churn: --clients must be 1..%d\n", MAX_CLIENTS);
		return 2;
	}
	names = calloc(MAX_NAMES, sizeof(*names));
	extents = calloc(MAX_EXTENTS, sizeof(*extents));
	if (!names || !extents)
		return 2;
	srand(cfg.seed);

	strcpy(dir, "/tmp/daxpool-churn-XXXXXX");
	if (!mkdtemp(dir)) {
		perror("mkdtemp");
		return 2;
	}
	snprintf(socket_path, sizeof(socket_path), "%s/daxpoold.sock", dir);
	snprintf(pool_path, sizeof(pool_path), "%s/pool", dir);
	snprintf(config_path, sizeof(config_path), "%s/daxpool.json", dir);
	f = fopen(config_path, "w");
	if (!f)
		return 2;
	fprintf(f,
		"{ \"log_level\": \"warning\", \"pin_grace_ms\": 20, \"runtime_dir\": \"%s\","
		"  \"backend\": { \"type\": \"emulated\", \"path\": \"%s\", \"size\": \"%s\", \"page\": \"4K\" } }\n",
		dir, pool_path, cfg.pool_size);
	fclose(f);
	fprintf(stderr, "churn: seed %u, %u kills, %u clients, in %s\n", cfg.seed, cfg.kills, cfg.clients, dir);

	if (daemon_up() < 0) {
		fprintf(stderr, "churn: daxpoold did not start\n");
		return 2;
	}
	for (unsigned i = 0; i < cfg.clients; i++) {
		clients[i] = fork();
		if (clients[i] == 0)
			client_main((int)i, 0, cfg.seed);
		if (clients[i] < 0)
			return 2;
	}

	t_start = now_ms();
	for (unsigned k = 0; k < cfg.kills; k++) {
		usleep((cfg.min_ms + (unsigned)rand() % (cfg.max_ms - cfg.min_ms + 1)) * 1000);
		kill(daemon_.pid, SIGKILL);
		waitpid(daemon_.pid, NULL, 0);
		daemon_.pid = 0;
		test_daemon_cleanup(&daemon_);

		r = check_pool_offline(why, sizeof(why));
		if (r == POOL_CHECK_CLEAN)
			checks_clean++;
		else if (r == POOL_CHECK_REPAIRABLE)
			checks_log++;
		else
			violation("after kill %u the pool is %s (%d): %s", k + 1,
				  r == POOL_CHECK_DAMAGED ? "damaged" : "unreadable", r, why);

		r_ms = daemon_up();
		if (r_ms < 0) {
			violation("daxpoold did not come back after kill %u", k + 1);
			break;
		}
		recovery_sum += r_ms;
		if (r_ms > recovery_max)
			recovery_max = r_ms;

		/* Retired clients: the next generation takes their place. */
		for (unsigned i = 0; i < cfg.clients; i++) {
			int status;

			if (waitpid(clients[i], &status, WNOHANG) != clients[i])
				continue;
			if (!WIFEXITED(status) || WEXITSTATUS(status))
				violation("client %u failed (status 0x%x)", i, status);
			generations[i]++; /* in the parent: the child's copy would be lost */
			clients[i] = fork();
			if (clients[i] == 0)
				client_main((int)i, generations[i], cfg.seed);
			if (clients[i] < 0)
				return 2;
			retired++;
		}
	}
	int64_t t_churn = now_ms() - t_start;

	for (unsigned i = 0; i < cfg.clients; i++)
		kill(clients[i], SIGTERM);
	for (unsigned i = 0; i < cfg.clients; i++) {
		int status;

		if (waitpid(clients[i], &status, 0) != clients[i] || !WIFEXITED(status) || WEXITSTATUS(status))
			violation("client %u did not finish cleanly (status 0x%x)", i, status);
	}

	read_oracles();
	if (daemon_.pid <= 0 || daxpool_connect(socket_path, &dp) < 0) {
		violation("cannot reach daxpoold for the final checks");
	} else {
		judge(dp);
		free_all(dp);
		daxpool_disconnect(&dp);
	}
	r = daemon_.pid > 0 ? test_daemon_stop(&daemon_, SIGTERM) : -1;
	if (r != 0)
		violation("daxpoold did not stop cleanly: %d", r);
	test_daemon_cleanup(&daemon_);
	r = run_fsck(out, sizeof(out));
	if (r != 0)
		violation("daxpoolctl fsck exit %d: %s", r, out);

	printf("{\"seed\":%u,\"kills\":%u,\"clients\":%u,\"seconds\":%.1f,\"operations\":%lu,"
	       "\"reconnects\":%lu,\"client_generations\":%lu,\"acked_allocs\":%lu,\"acked_frees\":%lu,\"persisted_writes\":%lu,"
	       "\"reconciled\":%lu,\"names\":%zu,\"slices_at_end\":%zu,\"checks_clean\":%lu,\"checks_log_pending\":%lu,"
	       "\"recovery_ms_avg\":%.1f,\"recovery_ms_max\":%" PRId64 ",\"violations\":%lu}\n",
	       cfg.seed, cfg.kills, cfg.clients, t_churn / 1000.0, total_ops, total_lost, cfg.clients + retired, acked_allocs,
	       acked_frees, persisted, reconciled, nnames, nextents, checks_clean, checks_log,
	       cfg.kills ? (double)recovery_sum / cfg.kills : 0.0, recovery_max, violations);
	if (violations == 0) {
		snprintf(out, sizeof(out), "rm -rf '%s'", dir);
		(void)!system(out);
	} else {
		fprintf(stderr, "churn: %lu violations; files kept in %s\n", violations, dir);
	}
	return violations ? 1 : 0;
}
