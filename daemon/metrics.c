/* Prometheus text exposition of the daemon's counters and the pool's state (metrics.h). */
#include "build-config.h"
#include "metrics.h"
#include "backend.h"
#include "daemon.h"
#include "lease.h"
#include "log.h"
#include "macro.h"
#include "pool.h"
#include "protocol.h"
#include "uid-limits.h"
#include "zero.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <uthash.h>
#include <uuid/uuid.h>

#define N_TYPES (DXP_MSG_DEEP_FLUSH + 1) /* index 0: a type the daemon does not know */
#define MAX_ERROR_KINDS 128		 /* (type, errno) pairs kept apart; the rest: "other" */

/* Request latency buckets, seconds: a PING answers in microseconds, an ALLOC that creates a
 * slice file or zeroes inline in hundreds of them, a devdax sub-device in milliseconds. */
static const double buckets[] = { 5e-6, 1e-5, 2.5e-5, 5e-5, 1e-4, 2.5e-4, 5e-4,
				  1e-3, 2.5e-3, 5e-3, 1e-2, 2.5e-2, 0.1, 1.0 };
#define N_BUCKETS (sizeof(buckets) / sizeof(buckets[0]))

struct error_kind {
	unsigned type;
	int error; /* positive errno; 0 = every pair beyond MAX_ERROR_KINDS */
	uint64_t count;
};

struct metrics {
	ev_timer timer;
	char *path;
	uint64_t ok[N_TYPES], failed[N_TYPES];
	uint64_t bucket[N_TYPES][N_BUCKETS]; /* not cumulative; summed when printed */
	uint64_t slower[N_TYPES];	     /* beyond the last bucket */
	double sum_s[N_TYPES];
	uint64_t grants_alloc, grants_open, frees;
	struct error_kind errors[MAX_ERROR_KINDS + 1];
	size_t n_errors;
	uint64_t write_failures; /* since start (a counter) */
	bool failing;		  /* the last write failed: logged once per streak */
};

/* A uid's live slices, gathered at each write. */
struct owner {
	uid_t uid;
	uint64_t slices, bytes;
	UT_hash_handle hh;
};

uint64_t metrics_clock_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static const char *type_label(unsigned type)
{
	static char names[N_TYPES][16];

	if (type == 0 || type >= N_TYPES)
		return "unknown";
	if (!names[type][0]) {
		const char *n = dxp_msg_type_name((uint16_t)type);
		size_t i;

		for (i = 0; n[i] && i + 1 < sizeof(names[type]); i++)
			names[type][i] = (char)(n[i] >= 'A' && n[i] <= 'Z' ? n[i] - 'A' + 'a' : n[i]);
		names[type][i] = 0;
	}
	return names[type];
}

static void count_error(struct metrics *m, unsigned type, int error)
{
	size_t i;

	for (i = 0; i < m->n_errors; i++)
		if (m->errors[i].type == type && m->errors[i].error == error)
			break;
	if (i == m->n_errors) {
		if (m->n_errors == MAX_ERROR_KINDS) {
			/* The last slot gathers what does not fit. */
			i = MAX_ERROR_KINDS;
			m->errors[i].type = 0;
			m->errors[i].error = 0;
		} else {
			m->errors[m->n_errors++] = (struct error_kind){ .type = type, .error = error };
		}
	}
	m->errors[i].count++;
}

void metrics_request(struct daxpoold *d, uint16_t type, int32_t status, uint64_t start_ns)
{
	struct metrics *m = d->metrics;
	unsigned t = type < N_TYPES ? type : 0;
	double s;
	size_t b;

	if (!m)
		return;
	s = (double)(metrics_clock_ns() - start_ns) / 1e9;
	for (b = 0; b < N_BUCKETS && s > buckets[b]; b++)
		;
	if (b < N_BUCKETS)
		m->bucket[t][b]++;
	else
		m->slower[t]++;
	m->sum_s[t] += s;
	if (status < 0) {
		m->failed[t]++;
		count_error(m, t, -status);
		return;
	}
	m->ok[t]++;
	if (t == DXP_MSG_ALLOC)
		m->grants_alloc++;
	else if (t == DXP_MSG_OPEN)
		m->grants_open++;
	else if (t == DXP_MSG_FREE)
		m->frees++;
}

/* ---- the exposition ------------------------------------------------------------------------ */

static void family(FILE *f, const char *name, const char *type, const char *help)
{
	fprintf(f, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void gauge(FILE *f, const char *name, const char *help, uint64_t v)
{
	family(f, name, "gauge", help);
	fprintf(f, "%s %" PRIu64 "\n", name, v);
}

static void counter(FILE *f, const char *name, const char *help, uint64_t v)
{
	family(f, name, "counter", help);
	fprintf(f, "%s %" PRIu64 "\n", name, v);
}

struct owner_walk {
	struct owner *owners;
	uint64_t quarantined_bytes;
	int error;
};

static int owner_one(const struct pool_record_info *rec, void *userdata)
{
	struct owner_walk *w = userdata;
	struct owner *o;

	if (rec->flags & POOL_REC_QUARANTINED) {
		w->quarantined_bytes += rec->length;
		return 0;
	}
	if (backend_name_is_reserved(rec->name))
		return 0;
	HASH_FIND(hh, w->owners, &rec->uid, sizeof(rec->uid), o);
	if (!o) {
		o = calloc(1, sizeof(*o));
		if (!o) {
			w->error = -ENOMEM;
			return 1;
		}
		o->uid = rec->uid;
		HASH_ADD(hh, w->owners, uid, sizeof(o->uid), o);
	}
	o->slices++;
	o->bytes += rec->length;
	return 0;
}

static int owner_cmp(struct owner *a, struct owner *b)
{
	return a->uid < b->uid ? -1 : a->uid > b->uid;
}

static void print_pool(struct daxpoold *d, FILE *f, struct owner_walk *w)
{
	static const char *const classes[] = { "4K", "2M", "1G" };
	struct backend_badblock_stats bb;
	struct lease_stats ls;
	struct pool_stats ps;
	uint8_t u[16] = {};
	char uuid[37];
	struct owner *o, *tmp;

	pool_get_stats(d->pool, &ps);
	backend_badblock_stats(d->backend, &bb);
	leases_get_stats(d, &ls);
	backend_uuid(d->backend, u);
	family(f, "daxpool_info", "gauge", "The pool served: its UUID, backend and isolation mode (value 1).");
	uuid_unparse_lower(u, uuid);
	fprintf(f, "daxpool_info{uuid=\"%s\",backend=\"%s\",isolation=\"%s\",version=\"%s\"} 1\n",
		uuid, backend_kind(d->backend) == BACKEND_DEVDAX ? "devdax" : "emulated",
		backend_isolation_name(backend_isolation(d->backend)), DAXPOOL_VERSION_STRING);
	gauge(f, "daxpool_pool_size_bytes", "Bytes of the pool's device or file.", ps.pool_size);
	gauge(f, "daxpool_data_size_bytes", "Bytes of the pool's data area.", ps.data_size);
	gauge(f, "daxpool_allocated_bytes", "Bytes in live extents (quarantined ones included).",
	      ps.allocated_bytes);
	family(f, "daxpool_free_bytes", "gauge", "Free bytes usable at each alignment.");
	for (int i = 0; i < 3; i++)
		fprintf(f, "daxpool_free_bytes{align=\"%s\"} %" PRIu64 "\n", classes[i], ps.free_bytes[i]);
	family(f, "daxpool_largest_free_bytes", "gauge",
	       "The largest single allocation possible at each alignment.");
	for (int i = 0; i < 3; i++)
		fprintf(f, "daxpool_largest_free_bytes{align=\"%s\"} %" PRIu64 "\n", classes[i],
			ps.largest_free[i]);
	family(f, "daxpool_fragmentation_ratio", "gauge", "1 - largest free / free bytes, at 4K.");
	fprintf(f, "daxpool_fragmentation_ratio %.6f\n", ps.fragmentation);
	gauge(f, "daxpool_slices", "Live records, quarantined ones included.", ps.records_used);
	gauge(f, "daxpool_anonymous_slices", "Live anonymous slices.", ps.records_anonymous);
	gauge(f, "daxpool_quarantined_slices", "Freed slices waiting for holders, pins or zeroing.",
	      ps.records_quarantined);
	gauge(f, "daxpool_quarantined_bytes", "Bytes of the quarantined slices.", w->quarantined_bytes);
	gauge(f, "daxpool_table_capacity_records", "Records the pool's table can hold.", ps.table_capacity);
	gauge(f, "daxpool_badblocks", "Known bad ranges of the device.", bb.count);
	gauge(f, "daxpool_badblock_bytes", "Bytes in known bad ranges.", bb.bytes);
	gauge(f, "daxpool_zeroing_pending_bytes", "Freed bytes waiting to be zeroed.",
	      zeroer_pending_bytes(d->zeroer));
	counter(f, "daxpool_zeroed_bytes_total",
		"Bytes zeroed since the daemon started (rate(): the zeroing bandwidth).",
		zeroer_done_bytes(d->zeroer));
	gauge(f, "daxpool_pins", "Declared long-term pins.", ls.pins);
	gauge(f, "daxpool_leases_waiting", "Freed slices waiting for their holders or pins to end.",
	      ls.leases_waiting);
	gauge(f, "daxpool_holders", "Processes holding a granted slice.", ls.procs);
	HASH_SORT(w->owners, owner_cmp);
	family(f, "daxpool_owner_slices", "gauge", "Live slices by owner uid (quarantined ones not counted).");
	HASH_ITER(hh, w->owners, o, tmp)
		fprintf(f, "daxpool_owner_slices{uid=\"%u\"} %" PRIu64 "\n", (unsigned)o->uid, o->slices);
	family(f, "daxpool_owner_bytes", "gauge", "Bytes of live slices by owner uid.");
	HASH_ITER(hh, w->owners, o, tmp)
		fprintf(f, "daxpool_owner_bytes{uid=\"%u\"} %" PRIu64 "\n", (unsigned)o->uid, o->bytes);
}

static void print_requests(struct metrics *m, FILE *f)
{
	family(f, "daxpool_requests_total", "counter", "Requests answered, by type and result.");
	for (unsigned t = 0; t < N_TYPES; t++) {
		if (t && !m->ok[t] && !m->failed[t] && t != DXP_MSG_ALLOC && t != DXP_MSG_OPEN &&
		    t != DXP_MSG_FREE)
			continue;
		if (!t && !m->ok[t] && !m->failed[t])
			continue;
		fprintf(f, "daxpool_requests_total{type=\"%s\",result=\"ok\"} %" PRIu64 "\n",
			type_label(t), m->ok[t]);
		fprintf(f, "daxpool_requests_total{type=\"%s\",result=\"error\"} %" PRIu64 "\n",
			type_label(t), m->failed[t]);
	}
	family(f, "daxpool_request_errors_total", "counter",
	       "Requests answered with an error, by type and errno name.");
	for (size_t i = 0; i < m->n_errors + (m->errors[MAX_ERROR_KINDS].count ? 1 : 0); i++) {
		const struct error_kind *e = i < m->n_errors ? &m->errors[i] : &m->errors[MAX_ERROR_KINDS];
		const char *name = e->error ? strerrorname_np(e->error) : NULL;
		char buf[16];

		if (!name) {
			snprintf(buf, sizeof(buf), e->error ? "E%d" : "other", e->error);
			name = buf;
		}
		fprintf(f, "daxpool_request_errors_total{type=\"%s\",error=\"%s\"} %" PRIu64 "\n",
			e->error || e->type ? type_label(e->type) : "other", name, e->count);
	}
	family(f, "daxpool_grants_total", "counter",
	       "Slice descriptors handed to clients (successful ALLOC and OPEN).");
	fprintf(f, "daxpool_grants_total{request=\"alloc\"} %" PRIu64 "\n", m->grants_alloc);
	fprintf(f, "daxpool_grants_total{request=\"open\"} %" PRIu64 "\n", m->grants_open);
	counter(f, "daxpool_frees_total", "Slices freed (successful FREE).", m->frees);

	family(f, "daxpool_request_duration_seconds", "histogram",
	       "Time from a request's dispatch to its reply being sent or queued, by type.");
	for (unsigned t = 0; t < N_TYPES; t++) {
		uint64_t cum = 0, n = m->ok[t] + m->failed[t];

		if (!n)
			continue;
		for (size_t b = 0; b < N_BUCKETS; b++) {
			cum += m->bucket[t][b];
			fprintf(f, "daxpool_request_duration_seconds_bucket{type=\"%s\",le=\"%g\"} %" PRIu64 "\n",
				type_label(t), buckets[b], cum);
		}
		fprintf(f, "daxpool_request_duration_seconds_bucket{type=\"%s\",le=\"+Inf\"} %" PRIu64 "\n",
			type_label(t), n);
		fprintf(f, "daxpool_request_duration_seconds_sum{type=\"%s\"} %.9f\n", type_label(t),
			m->sum_s[t]);
		fprintf(f, "daxpool_request_duration_seconds_count{type=\"%s\"} %" PRIu64 "\n",
			type_label(t), n);
	}
}

/* The per-uid bounds at work (uid-limits.c): the same names as daxpoolctl stats --prometheus. */
static void print_limits(struct daxpoold *d, FILE *f)
{
	struct limits_stats ls;

	limits_get_stats(d, &ls);
	gauge(f, "daxpool_unauthenticated_clients", "Connected clients that have not completed HELLO.",
	      ls.unauthenticated);
	family(f, "daxpool_limit_refusals_total", "counter",
	       "Connections and requests refused with EUSERS, by the bound (config key) that refused them.");
	for (unsigned i = 0; i < DXP_LIMIT_COUNT; i++)
		fprintf(f, "daxpool_limit_refusals_total{limit=\"%s\"} %" PRIu64 "\n", dxp_limit_name(i),
			ls.refused_by[i]);
	counter(f, "daxpool_hello_timeouts_total",
		"Connections closed for not sending HELLO within limits.hello_timeout_ms.", ls.hello_timeouts);
	gauge(f, "daxpool_parked_replies", "Replies parked because their clients do not read them.",
	      ls.parked);
	gauge(f, "daxpool_throttled_connections",
	      "Connections not read because their uid has limits.inflight_per_uid replies parked.",
	      ls.throttled);
	counter(f, "daxpool_throttled_connections_total",
		"Times a connection was held back for its uid's parked replies.", ls.throttled_total);
	counter(f, "daxpool_deferred_reads_total",
		"Reads put off to the next loop turn so that another uid is served (limits.requests_per_turn).",
		ls.deferred_turns);
	gauge(f, "daxpool_carves_pending",
	      "ALLOCs waiting for their carved sub-device (dynamic dax regions).", ls.carves_pending);
}

int metrics_print(struct daxpoold *d, FILE *f)
{
	struct owner_walk w = {};
	struct owner *o, *tmp;

	if (d->pool) {
		pool_iterate(d->pool, 0, owner_one, &w);
		if (w.error < 0)
			goto out;
		print_pool(d, f, &w);
	}
	gauge(f, "daxpool_clients", "Connected clients.", d->n_conns);
	counter(f, "daxpool_connections_total", "Connections accepted since the daemon started.",
		d->conns_total);
	counter(f, "daxpool_protocol_errors_total",
		"Malformed or out-of-order frames answered with an error before dispatch.",
		d->protocol_errors);
	print_limits(d, f);
	gauge(f, "daxpool_start_time_seconds", "When the daemon started, seconds since the epoch.",
	      (uint64_t)d->start_realtime);
	if (d->metrics) {
		print_requests(d->metrics, f);
		counter(f, "daxpool_metrics_write_failures_total",
			"Writes of this file that failed (the previous content stayed).",
			d->metrics->write_failures);
	}
out:
	HASH_ITER(hh, w.owners, o, tmp) {
		HASH_DEL(w.owners, o);
		free(o);
	}
	if (w.error < 0)
		return w.error;
	return ferror(f) ? -EIO : 0;
}

int metrics_write_file(struct daxpoold *d, const char *path)
{
	char tmp[PATH_MAX];
	const char *slash = strrchr(path, '/');
	FILE *f;
	int fd, r;

	/* ".NAME.tmp" beside it: the textfile collector reads only *.prom, and rename(2) in one
	 * directory replaces the file whole, so a scrape sees the old content or the new. */
	if (!slash || (size_t)snprintf(tmp, sizeof(tmp), "%.*s/.%s.tmp", (int)(slash - path), path,
				       slash + 1) >= sizeof(tmp))
		return -ENAMETOOLONG;
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0644);
	if (fd < 0)
		return -errno;
	/* 0644 whatever the umask: node_exporter runs as another user. */
	(void)fchmod(fd, 0644);
	f = fdopen(fd, "w");
	if (!f) {
		r = -errno;
		close(fd);
		unlink(tmp);
		return r;
	}
	r = metrics_print(d, f);
	if (fclose(f) != 0 && r == 0)
		r = -errno;
	if (r == 0 && rename(tmp, path) < 0)
		r = -errno;
	if (r < 0)
		unlink(tmp);
	return r;
}

static void metrics_timer_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct daxpoold *d = w->data;
	int r;

	(void)loop;
	(void)revents;
	r = metrics_write_file(d, d->metrics->path);
	if (r < 0) {
		/* Once per failure streak: a full or read-only directory must not flood the log. */
		d->metrics->write_failures++;
		if (!d->metrics->failing)
			log_warning("metrics: cannot write %s: %s", d->metrics->path, strerror(-r));
		d->metrics->failing = true;
	} else if (d->metrics->failing) {
		log_info("metrics: %s written again", d->metrics->path);
		d->metrics->failing = false;
	}
}

int metrics_start(struct daxpoold *d)
{
	struct metrics *m = calloc(1, sizeof(*m));
	double interval = d->opts.metrics_interval_s ? d->opts.metrics_interval_s : 15;

	if (!m)
		return -ENOMEM;
	d->metrics = m;
	if (!d->opts.metrics_file)
		return 0;
	m->path = strdup(d->opts.metrics_file);
	if (!m->path)
		return -ENOMEM;
	ev_timer_init(&m->timer, metrics_timer_cb, 0., interval);
	m->timer.data = d;
	ev_timer_start(d->loop, &m->timer);
	log_info("metrics: writing %s every %g s", m->path, interval);
	return 0;
}

void metrics_stop(struct daxpoold *d)
{
	struct metrics *m = d->metrics;

	if (!m)
		return;
	if (m->path) {
		ev_timer_stop(d->loop, &m->timer);
		if (unlink(m->path) < 0 && errno != ENOENT)
			log_warning("metrics: cannot remove %s: %m", m->path);
		free(m->path);
	}
	free(m);
	d->metrics = NULL;
}
