/* The holder journal (lease-internal.h): who held what, kept in the runtime directory so a daemon
 * that crashes and restarts keeps waiting for holder processes that are still alive. */
#include "daemon.h"
#include "lease-internal.h"
#include "log.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>
#include <uthash.h>

#define JOURNAL_CHUNK (1u << 20)
/* A line is at most this long (2 + 20 + 1 + 10 + 1 + 20 + 1 = 55); a compact journal needs about
 * n_holds of them. */
#define JOURNAL_LINE_MAX 64

static int journal_grow(struct lease_table *t, size_t need)
{
	size_t size = t->journal_size ? t->journal_size : JOURNAL_CHUNK;
	void *map;

	while (size < need)
		size *= 2;
	if (ftruncate(t->journal_fd, (off_t)size) < 0)
		return -errno;
	map = t->journal_map ? mremap(t->journal_map, t->journal_size, size, MREMAP_MAYMOVE)
			     : mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, t->journal_fd, 0);
	if (map == MAP_FAILED)
		return -errno;
	t->journal_map = map;
	t->journal_size = size;
	return 0;
}

/* Writes v in decimal at out; returns the end. */
static char *put_decimal(char *out, uint64_t v)
{
	char tmp[20];
	size_t n = 0;

	do
		tmp[n++] = (char)('0' + v % 10);
	while ((v /= 10));
	while (n)
		*out++ = tmp[--n];
	return out;
}

/* "OP RECORD PID STARTTIME\n" (journal_load reads it with scanf). Formatted by hand: this runs
 * twice per anonymous ALLOC+FREE and snprintf was a measurable part of the daemon's time. */
static int journal_put(struct lease_table *t, char op, uint64_t record_id, const struct proc *p)
{
	char line[JOURNAL_LINE_MAX], *e = line;
	int n, r;

	*e++ = op;
	*e++ = ' ';
	e = put_decimal(e, record_id);
	*e++ = ' ';
	e = put_decimal(e, (uint64_t)(unsigned)p->pid);
	*e++ = ' ';
	e = put_decimal(e, p->starttime);
	*e++ = '\n';
	n = (int)(e - line);
	if (t->journal_used + (size_t)n + 1 > t->journal_size) {
		r = journal_grow(t, t->journal_used + (size_t)n + 1);
		if (r < 0)
			return r;
	}
	memcpy(t->journal_map + t->journal_used, line, (size_t)n);
	t->journal_used += (size_t)n;
	return 0;
}

/* Writes a journal holding one '+' line per live hold to PATH.new and renames it over the old
 * one, so a daemon crash at any point leaves one complete journal (old or new) behind. On
 * failure the old journal stays in use. */
static int journal_rewrite(struct lease_table *t)
{
	char tmp[PATH_MAX + 8];
	int old_fd = t->journal_fd, r = 0;
	char *old_map = t->journal_map;
	size_t old_size = t->journal_size, old_used = t->journal_used;
	struct lease *l, *ltmp;

	snprintf(tmp, sizeof(tmp), "%s.new", t->journal_path);
	t->journal_fd = open(tmp, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	t->journal_map = NULL;
	t->journal_size = t->journal_used = 0;
	if (t->journal_fd < 0)
		r = -errno;
	if (r == 0)
		r = journal_grow(t, JOURNAL_CHUNK);
	HASH_ITER(hh, t->by_record, l, ltmp) {
		struct hold *h;

		LIST_FOREACH(h, &l->holds, lease_link)
			if (r == 0)
				r = journal_put(t, '+', l->record_id, h->proc);
	}
	if (r == 0 && rename(tmp, t->journal_path) < 0)
		r = -errno;
	if (r < 0) {
		if (t->journal_map)
			munmap(t->journal_map, t->journal_size);
		if (t->journal_fd >= 0) {
			close(t->journal_fd);
			unlink(tmp);
		}
		t->journal_fd = old_fd;
		t->journal_map = old_map;
		t->journal_size = old_size;
		t->journal_used = old_used;
		return r;
	}
	if (old_map)
		munmap(old_map, old_size);
	if (old_fd >= 0)
		close(old_fd);
	t->compactions++;
	return 0;
}


/* "+ record pid starttime" when a process becomes a holder, "- ..." when it stops being one.
 * The journal only grows while the daemon runs; when it is full and mostly cancelled-out
 * pairs, it is rewritten compactly instead of grown (amortised: one rewrite of n_holds lines
 * per at least JOURNAL_CHUNK/2 bytes of appends). */
int lease_journal_append(struct lease_table *t, char op, uint64_t record_id, const struct proc *p)
{
	int r;

	if (t->journal_fd < 0)
		return 0;
	if (t->journal_used + JOURNAL_LINE_MAX + 1 > t->journal_size &&
	    (size_t)t->n_holds * JOURNAL_LINE_MAX * 2 < t->journal_size) {
		/* The hold this line records is already in (or already gone from) the tables:
		 * the rewrite covers it, and the line itself is not needed. */
		r = journal_rewrite(t);
		if (r == 0)
			return 0;
		log_warning_errno(r, "holder journal %s: cannot compact: %m", t->journal_path);
	}
	r = journal_put(t, op, record_id, p);
	if (r < 0)
		return log_warning_errno(r, "holder journal %s: cannot grow: %m; a daemon crash now "
					 "would keep affected extents quarantined until reboot", t->journal_path);
	return 0;
}


/* One (record, process) pair of the journal and its net count of '+' minus '-' lines. */
struct journal_entry {
	struct {
		uint64_t record;
		uint64_t starttime;
		int pid;
	} key;
	int count;
	UT_hash_handle hh;
};

/* Replays the journal; keeps holders that are still the same live process. */
int lease_journal_load(struct daxpoold *d)
{
	struct lease_table *t = d->leases;
	struct journal_entry *entries = NULL, *e, *etmp;
	unsigned long long rec, start;
	unsigned kept = 0, dropped = 0;
	char op;
	int pid, r;
	FILE *f;

	runtime_state_path(d, "holders.journal", false, t->journal_path, sizeof(t->journal_path));
	f = fopen(t->journal_path, "re");
	if (!f && errno == ENOENT) {
		/* An earlier version's journal, shared by every daemon whose socket was in this
		 * directory: its holders keep extents quarantined at worst longer than needed (a
		 * holder of another pool's record id, while that process lives), never shorter. */
		char legacy[PATH_MAX];

		runtime_state_path(d, "holders.journal", true, legacy, sizeof(legacy));
		f = fopen(legacy, "re");
	}
	if (f) {
		while (fscanf(f, " %c %llu %d %llu", &op, &rec, &pid, &start) == 4 && (op == '+' || op == '-')) {
			struct journal_entry key = {};

			key.key.record = rec;
			key.key.starttime = start;
			key.key.pid = pid;
			HASH_FIND(hh, entries, &key.key, sizeof(key.key), e);
			if (!e) {
				e = calloc(1, sizeof(*e));
				if (!e)
					break;
				e->key = key.key;
				HASH_ADD(hh, entries, key, sizeof(e->key), e);
			}
			e->count += op == '+' ? 1 : -1;
		}
		fclose(f);
	}
	HASH_ITER(hh, entries, e, etmp) {
		struct lease *l;
		struct proc *p;
		struct hold *h;

		if (e->count > 0) {
			if (e->key.pid <= 0 || lease_proc_is(e->key.pid, e->key.starttime) != 1 ||
			    lease_get_or_make(d, e->key.record, &l) < 0 ||
			    lease_proc_get(d, e->key.pid, e->key.starttime, &p) < 0 || lease_hold_add(l, p, &h) < 0) {
				dropped++;
			} else {
				h->refs = 1; /* it may map the slice until it exits or CLOSEs */
				kept++;
			}
		}
		HASH_DEL(entries, e);
		free(e);
	}
	/* Rewrite compactly (what hold_add above appended went to no journal yet: fd -1), through
	 * a new file renamed over the old one, so a crash now still leaves the old journal. The
	 * file is NUL-padded past the last line; the reader stops there. */
	r = journal_rewrite(t);
	if (r < 0)
		return log_warning_errno(r, "cannot write the holder journal %s: %m; quarantined "
					 "extents will wait for a reboot after a daemon crash", t->journal_path);
	if (kept || dropped)
		log_info("holder journal: %u holders still alive, %u gone", kept, dropped);
	return 0;
}
