/* Per-slice kernel objects: the generic half (mode checks, other modes, reconciliation). The
 * kinds' halves are slice-file.c (emulated) and the devdax sub-device code. */
#include "backend-internal.h"
#include "pool.h"

#include <fcntl.h>
#include <inttypes.h>
#include <libpmem2.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char *const isolation_names[] = {
	[BACKEND_ISOLATION_AUTO] = "auto",
	[BACKEND_ISOLATION_SLICE] = "slice",
	[BACKEND_ISOLATION_OWNER] = "owner",
	[BACKEND_ISOLATION_SHARED] = "shared",
};

enum backend_isolation backend_isolation(const struct backend *b)
{
	return b->isolation;
}

const char *backend_isolation_name(enum backend_isolation iso)
{
	if ((unsigned)iso >= sizeof(isolation_names) / sizeof(isolation_names[0]))
		return NULL;
	return isolation_names[iso];
}

int backend_isolation_from_name(const char *name, enum backend_isolation *ret)
{
	for (unsigned i = 0; i < sizeof(isolation_names) / sizeof(isolation_names[0]); i++)
		if (name && strcmp(name, isolation_names[i]) == 0) {
			*ret = (enum backend_isolation)i;
			return 0;
		}
	return -EINVAL;
}

static bool sliced(const struct backend *b)
{
	return b->isolation == BACKEND_ISOLATION_SLICE && b->slice_ops;
}

static int check_range(const struct backend *b, uint64_t offset, uint64_t length)
{
	if (length == 0 || offset > b->size || length > b->size - offset)
		return backend_err(-EINVAL, "range %" PRIu64 "+%" PRIu64 " is outside the pool (%" PRIu64
				   " bytes)", offset, length, b->size);
	return 0;
}

int backend_slice_create(struct backend *b, uint64_t offset, uint64_t length, uint64_t align)
{
	int r = check_range(b, offset, length);

	if (r < 0 || !sliced(b))
		return r;
	if (align < b->alignment)
		align = b->alignment; /* the record keeps what was asked; the device's is larger */
	if (offset % align || length % align)
		return backend_err(-EINVAL, "slice %" PRIu64 "+%" PRIu64 " is not aligned to %" PRIu64,
				   offset, length, align);
	return b->slice_ops->create(b, offset, length, align);
}

int backend_slice_open(struct backend *b, uint64_t offset, uint64_t length, bool writable,
		       int *ret_fd, uint64_t *ret_map_offset)
{
	int r = check_range(b, offset, length);

	if (r < 0)
		return r;
	if (sliced(b))
		return b->slice_ops->open(b, offset, length, writable, ret_fd, ret_map_offset);
	/* The whole device. Readers get a descriptor of a read-only reopen (made once), which
	 * cannot be made writable: fcntl cannot add O_RDWR. */
	if (!writable && b->ro_fd < 0) {
		char path[64];

		snprintf(path, sizeof(path), "/proc/self/fd/%d", b->fd);
		b->ro_fd = open(path, O_RDONLY | O_CLOEXEC);
		if (b->ro_fd < 0)
			return backend_err(negative_errno(), "%s: reopening read-only: %m", b->path);
	}
	int fd = fcntl(writable ? b->fd : b->ro_fd, F_DUPFD_CLOEXEC, 0);
	if (fd < 0)
		return backend_err(negative_errno(), "%s: dup: %m", b->path);
	*ret_fd = fd;
	*ret_map_offset = offset;
	return 0;
}

void backend_slice_name(const struct backend *b, uint64_t offset, char *buf, size_t len)
{
	if (!len)
		return;
	if (sliced(b))
		b->slice_ops->name(b, offset, buf, len);
	else
		snprintf(buf, len, "%s", b->devname ? b->devname : "");
}

int backend_slice_scrub(struct backend *b, uint64_t offset, uint64_t length)
{
	int r = check_range(b, offset, length);

	if (r < 0)
		return r;
	if (sliced(b))
		return b->slice_ops->scrub(b, offset, length);
	return backend_err(-EOPNOTSUPP, "%s: the device is zeroed through its own mapping",
			   b->path);
}

int backend_slice_destroy(struct backend *b, uint64_t offset, uint64_t length)
{
	int r = check_range(b, offset, length);

	if (r < 0 || !sliced(b))
		return r;
	return b->slice_ops->destroy(b, offset, length);
}

/* ---- reconciliation ---------------------------------------------------------------------- */

struct found {
	uint64_t offset, length;
};

struct reconcile {
	struct backend *b;
	struct pool *pool;
	struct found *objs;
	size_t n, cap;
	unsigned removed, created;
};

static int collect(void *ud, uint64_t offset, uint64_t length)
{
	struct reconcile *rc = ud;

	if (rc->n == rc->cap) {
		size_t cap = rc->cap ? rc->cap * 2 : 64;
		struct found *p = backend_mem_realloc(rc->objs, cap * sizeof(*p));

		if (!p)
			return backend_err(-ENOMEM, "reconcile: out of memory");
		rc->objs = p;
		rc->cap = cap;
	}
	rc->objs[rc->n++] = (struct found){ offset, length };
	return 0;
}

static int cmp_found(const void *a, const void *b)
{
	const struct found *x = a, *y = b;

	return x->offset < y->offset ? -1 : x->offset > y->offset;
}

static const struct found *find(const struct reconcile *rc, uint64_t offset)
{
	struct found key = { offset, 0 };

	return rc->n ? bsearch(&key, rc->objs, rc->n, sizeof(key), cmp_found) : NULL;
}

/* Every record keeps its object; a live named record without one gets a new, zeroed one. */
static int visit_record(const struct pool_record_info *rec, void *ud)
{
	struct reconcile *rc = ud;
	const struct found *f = find(rc, rec->offset);
	int r;

	if (f && f->length == rec->length)
		return 0;
	if (f) {
		/* An object of another length at the same start: left by a crash between a
		 * destroy and a create of a different extent. It holds nothing of this record's. */
		r = rc->b->slice_ops->scrub(rc->b, f->offset, f->length);
		if (r == 0)
			r = rc->b->slice_ops->destroy(rc->b, f->offset, f->length);
		if (r < 0)
			return r;
		rc->removed++;
	}
	/* Quarantined and anonymous records are on their way out (the restart reclaims anonymous
	 * ones); the daemon's reserved records (bad ranges) are never handed out. */
	if ((rec->flags & (POOL_REC_QUARANTINED | POOL_REC_ANONYMOUS)) ||
	    backend_name_is_reserved(rec->name))
		return 0;
	r = rc->b->slice_ops->create(rc->b, rec->offset, rec->length, rec->align);
	if (r < 0)
		return r;
	rc->created++;
	if (rec->name[0])
		backend_err(0, "slice \"%s\" had no object; a new one was made and its contents are "
			    "zero", rec->name);
	return 0;
}

struct offsets {
	uint64_t *v;
	size_t n, cap;
};

static int collect_record(const struct pool_record_info *rec, void *ud)
{
	struct offsets *o = ud;

	if (o->n == o->cap) {
		size_t cap = o->cap ? o->cap * 2 : 64;
		uint64_t *p = backend_mem_realloc(o->v, cap * sizeof(*p));

		if (!p)
			return backend_err(-ENOMEM, "reconcile: out of memory");
		o->v = p;
		o->cap = cap;
	}
	o->v[o->n++] = rec->offset;
	return 0;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

bool backend_slice_create_is_slow(const struct backend *b)
{
	return b && sliced(b) && b->slice_ops->slow_create;
}

int backend_slice_sweep(struct backend *b, struct pool *p, unsigned budget, unsigned *ret_removed)
{
	*ret_removed = 0;
	if (!sliced(b) || !b->slice_ops->sweep)
		return 0;
	return b->slice_ops->sweep(b, p, budget, ret_removed);
}

int backend_slice_reconcile(struct backend *b, struct pool *p, unsigned *ret_removed,
			    unsigned *ret_created)
{
	struct reconcile rc = { .b = b, .pool = p };
	struct offsets recs = {0};
	int r;

	if (ret_removed)
		*ret_removed = 0;
	if (ret_created)
		*ret_created = 0;
	backend_err(0, "%s", ""); /* what is left here afterwards is news for the log */
	if (b->kind == BACKEND_EMULATED && !sliced(b)) {
		unsigned moved;

		r = slice_file_migrate_out(b, p, &moved);
		if (r == 0 && moved)
			backend_err(0, "moved %u slices from their own files back into the pool file",
				    moved);
		return r;
	}
	if (!sliced(b))
		return 0;
	if (b->kind == BACKEND_EMULATED) {
		unsigned moved;

		r = slice_file_migrate_in(b, p, &moved);
		if (r < 0)
			return r;
		if (moved)
			backend_err(0, "moved %u slices out of the pool file into files of their own",
				    moved);
	}
	if (b->slice_ops->sweep)
		return 0; /* orphans go while the daemon serves (backend_slice_sweep) */
	/* Objects no record starts at: orphaned by a crash between an object's create and its
	 * record, or between a record's release and its object's destroy. */
	r = b->slice_ops->list(b, collect, &rc);
	if (r == 0 && rc.n)
		qsort(rc.objs, rc.n, sizeof(*rc.objs), cmp_found);
	if (r == 0)
		r = pool_iterate(p, 0, collect_record, &recs);
	if (r == 0) {
		if (recs.n)
			qsort(recs.v, recs.n, sizeof(*recs.v), cmp_u64);
		/* Orphans first, so their memory is free before any create needs it. */
		for (size_t i = 0; i < rc.n && r == 0; i++) {
			if (recs.n && bsearch(&rc.objs[i].offset, recs.v, recs.n, sizeof(uint64_t), cmp_u64))
				continue;
			r = b->slice_ops->scrub(b, rc.objs[i].offset, rc.objs[i].length);
			if (r == 0)
				r = b->slice_ops->destroy(b, rc.objs[i].offset, rc.objs[i].length);
			if (r == 0)
				rc.removed++;
		}
	}
	if (r == 0)
		r = pool_iterate(p, 0, visit_record, &rc);
	free(rc.objs);
	free(recs.v);
	if (r < 0)
		return r;
	if (ret_removed)
		*ret_removed = rc.removed;
	if (ret_created)
		*ret_created = rc.created;
	return 0;
}
