/*
 * The emulated backend's per-slice objects: one file per extent in POOLFILE.slices/, named by
 * the extent's offset (16 hex digits), mode 0600, owned by the daemon, in a 0700 directory on
 * the pool file's mount (so a hugetlbfs pool's slices get its huge pages). A client receives a
 * descriptor of its slice's file only: mapping past its end is SIGBUS, and reopening it through
 * /proc/self/fd is refused by the file's permissions.
 *
 * Memory: on hugetlbfs a new file's pages are reserved (a shared mapping of it is made and
 * dropped: the reservation stays with the file), not allocated, so a grant does not wait for
 * the kernel to zero huge pages and a client's fault never finds the pool short of pages. On
 * other file systems files are sparse. Removing a file gives its pages back; a new extent at
 * the same offset gets a new file, zero.
 */
#include "backend-internal.h"
#include "pool.h"

#include <dirent.h>
#include <fcntl.h>
#include <inttypes.h>
#include <linux/falloc.h>
#include <linux/magic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <unistd.h>

struct slice_files {
	int dirfd;
	char *dir;	/* POOLFILE.slices */
	bool huge;	/* on hugetlbfs */
	DIR *sweep;	/* the directory being swept (files_sweep), or NULL */
};

static struct slice_files *state(const struct backend *b)
{
	return b->slice_state;
}

static void file_name(uint64_t offset, char buf[17])
{
	snprintf(buf, 17, "%016" PRIx64, offset);
}

static int files_create(struct backend *b, uint64_t offset, uint64_t length, uint64_t align)
{
	struct slice_files *s = state(b);
	char name[17];
	int fd, r = 0;

	(void)align;
	file_name(offset, name);
	fd = openat(s->dirfd, name, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0 && errno == EEXIST) {
		/* The extent was just allocated, so no record starts here: the file is a leftover
		 * of an earlier life of the pool (a crash between a record's end and its file's, not
		 * swept yet). Whatever it holds goes with it; the new slice gets a new, zero file. */
		if (unlinkat(s->dirfd, name, 0) == 0 || errno == ENOENT)
			fd = openat(s->dirfd, name,
				    O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
	}
	if (fd < 0)
		return backend_err(negative_errno(), "%s/%s: create: %m", s->dir, name);
	if (ftruncate(fd, (off_t)length) < 0) {
		r = backend_err(negative_errno(), "%s/%s: size %" PRIu64 ": %m", s->dir, name, length);
	} else if (s->huge) {
		void *p = mmap(NULL, length, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);

		if (p == MAP_FAILED)
			r = backend_err(errno == ENOMEM ? -ENOSPC : negative_errno(),
					"%s/%s: cannot reserve %" PRIu64 " bytes of huge pages: %m",
					s->dir, name, length);
		else
			munmap(p, length);
	}
	close(fd);
	if (r < 0)
		unlinkat(s->dirfd, name, 0);
	return r;
}

static int files_open(struct backend *b, uint64_t offset, uint64_t length, bool writable,
		      int *ret_fd, uint64_t *ret_map_offset)
{
	struct slice_files *s = state(b);
	struct stat st;
	char name[17];
	int fd;

	file_name(offset, name);
	fd = openat(s->dirfd, name, (writable ? O_RDWR : O_RDONLY) | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		return backend_err(negative_errno(), "%s/%s: %m", s->dir, name);
	/* A client holding a read-write descriptor can change the file's size (ftruncate): give
	 * out the extent's size again, never more. */
	if (fstat(fd, &st) == 0 && (uint64_t)st.st_size != length && writable &&
	    ftruncate(fd, (off_t)length) < 0) {
		int r = backend_err(negative_errno(), "%s/%s: size: %m", s->dir, name);

		close(fd);
		return r;
	}
	*ret_fd = fd;
	*ret_map_offset = 0;
	return 0;
}

static void files_name(const struct backend *b, uint64_t offset, char *buf, size_t len)
{
	const char *dir = state(b)->dir;
	const char *base = strrchr(dir, '/');

	snprintf(buf, len, "%s/%016" PRIx64, base ? base + 1 : dir, offset);
}

static int files_scrub(struct backend *b, uint64_t offset, uint64_t length)
{
	struct slice_files *s = state(b);
	char name[17];
	int fd;

	/* Punching the whole file frees its pages; what a later read finds is zero. */
	file_name(offset, name);
	fd = openat(s->dirfd, name, O_RDWR | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		return errno == ENOENT ? 0 : backend_err(negative_errno(), "%s/%s: %m", s->dir, name);
	int r = 0;
	if (fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 0, (off_t)length) < 0 &&
	    ftruncate(fd, 0) < 0)
		r = backend_err(negative_errno(), "%s/%s: scrub: %m", s->dir, name);
	close(fd);
	return r;
}

static int files_destroy(struct backend *b, uint64_t offset, uint64_t length)
{
	struct slice_files *s = state(b);
	char name[17];

	(void)length;
	file_name(offset, name);
	if (unlinkat(s->dirfd, name, 0) < 0 && errno != ENOENT)
		return backend_err(negative_errno(), "%s/%s: remove: %m", s->dir, name);
	return 0;
}

/* Calls fn(ud, offset, size) for every slice file in the directory dirfd (named dir in
 * messages); other entries are left alone and said once. Stops at fn's first error. */
/* A directory stream of dirfd (named dir in messages), or NULL with the error in *ret_r. */
static DIR *open_slice_dir(int dirfd, const char *dir, int *ret_r)
{
	int fd = openat(dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	DIR *d = fd < 0 ? NULL : fdopendir(fd);

	if (!d) {
		*ret_r = backend_err(negative_errno(), "%s: %m", dir);
		if (fd >= 0)
			close(fd);
	}
	return d;
}

/* True when name is a slice file's: the extent's offset in 16 hex digits. */
static bool slice_file_offset(const char *name, uint64_t *ret_offset)
{
	char *end;

	if (name[0] == '.' || strlen(name) != 16)
		return false;
	errno = 0;
	*ret_offset = strtoull(name, &end, 16);
	return !*end && !errno;
}

static int walk_slice_files(int dirfd, const char *dir,
			    int (*fn)(void *ud, uint64_t offset, uint64_t length), void *ud)
{
	struct dirent *de;
	int r = 0;
	DIR *d = open_slice_dir(dirfd, dir, &r);

	if (!d)
		return r;
	while (r == 0 && (de = readdir(d))) {
		struct stat st;
		uint64_t off;

		if (de->d_name[0] == '.')
			continue;
		if (!slice_file_offset(de->d_name, &off) ||
		    fstatat(dirfd, de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0 || !S_ISREG(st.st_mode)) {
			backend_err(0, "%s: ignoring \"%s\" (not a slice file)", dir, de->d_name);
			continue;
		}
		r = fn(ud, off, (uint64_t)st.st_size);
	}
	closedir(d);
	return r;
}

static int files_list(struct backend *b, int (*fn)(void *ud, uint64_t offset, uint64_t length),
		      void *ud)
{
	struct slice_files *s = state(b);

	return walk_slice_files(s->dirfd, s->dir, fn, ud);
}

/* Orphans are files at offsets that are free space: nothing can be granted there. Only names are
 * read (no stat per file: a million stats take seconds). */
static int files_sweep(struct backend *b, struct pool *p, unsigned budget, unsigned *ret_removed)
{
	struct slice_files *s = state(b);
	struct dirent *de;
	int r = 0;

	*ret_removed = 0;
	if (!s->sweep && !(s->sweep = open_slice_dir(s->dirfd, s->dir, &r)))
		return r;
	while (budget-- > 0) {
		uint64_t off;

		errno = 0;
		de = readdir(s->sweep);
		if (!de) {
			r = errno ? backend_err(negative_errno(), "%s: %m", s->dir) : 0;
			closedir(s->sweep);
			s->sweep = NULL;
			return r;
		}
		if (!slice_file_offset(de->d_name, &off) || off < 1)
			continue; /* not a slice file: never the daemon's to remove */
		if (!pool_range_is_free(p, off, 1))
			continue;
		r = files_scrub(b, off, 0);
		if (r == 0)
			r = files_destroy(b, off, 0);
		if (r < 0) {
			closedir(s->sweep);
			s->sweep = NULL;
			return r;
		}
		(*ret_removed)++;
	}
	return 1;
}

static int files_sync(struct backend *b)
{
	struct slice_files *s = state(b);

	if (syncfs(s->dirfd) < 0)
		return backend_err(negative_errno(), "%s: syncfs: %m", s->dir);
	return 0;
}

static void files_free(struct backend *b)
{
	struct slice_files *s = state(b);

	if (!s)
		return;
	if (s->sweep)
		closedir(s->sweep);
	if (s->dirfd >= 0)
		close(s->dirfd);
	free(s->dir);
	free(s);
	b->slice_state = NULL;
}

struct find_rec {
	uint64_t off, len;
	bool found;
};

static int find_live_record(const struct pool_record_info *rec, void *ud)
{
	struct find_rec *f = ud;

	if (rec->offset == f->off && rec->length == f->len && !(rec->flags & POOL_REC_QUARANTINED) &&
	    !backend_name_is_reserved(rec->name)) {
		f->found = true;
		return 1;
	}
	return 0;
}

/* ---- moving data between the two layouts ----------------------------------------------- */

/* Copies len bytes at src_off of src_fd to dst_off of dst_fd through shared mappings (hugetlbfs
 * has no write(2)); offsets are multiples of the page size. */
static int copy_range(int src_fd, uint64_t src_off, int dst_fd, uint64_t dst_off, uint64_t len)
{
	void *s = mmap(NULL, len, PROT_READ, MAP_SHARED, src_fd, (off_t)src_off);
	if (s == MAP_FAILED)
		return negative_errno();
	void *d = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, dst_fd, (off_t)dst_off);
	if (d == MAP_FAILED) {
		int r = negative_errno();

		munmap(s, len);
		return r;
	}
	memcpy(d, s, len);
	int r = msync(d, len, MS_SYNC) < 0 ? negative_errno() : 0;
	munmap(d, len);
	munmap(s, len);
	return r;
}

struct migrate_in {
	struct backend *b;
	unsigned moved;
};

static int migrate_record_in(const struct pool_record_info *rec, void *ud)
{
	struct migrate_in *m = ud;
	struct slice_files *s = state(m->b);
	char name[17];
	int fd, r;

	/* Anonymous slices are reclaimed at start anyway; quarantined ones are being scrubbed. */
	if (rec->flags & (POOL_REC_QUARANTINED | POOL_REC_ANONYMOUS) ||
	    backend_name_is_reserved(rec->name))
		return 0;
	file_name(rec->offset, name);
	if (faccessat(s->dirfd, name, F_OK, AT_SYMLINK_NOFOLLOW) == 0)
		return 0; /* already has its object: not from the old layout */
	r = files_create(m->b, rec->offset, rec->length, rec->align);
	if (r < 0)
		return r;
	fd = openat(s->dirfd, name, O_RDWR | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		return backend_err(negative_errno(), "%s/%s: %m", s->dir, name);
	r = copy_range(m->b->fd, rec->offset, fd, 0, rec->length);
	close(fd);
	if (r < 0) {
		unlinkat(s->dirfd, name, 0);
		return backend_err(r, "%s: copying slice at %" PRIu64 " out of the pool file: %s",
				   s->dir, rec->offset, strerror(-r));
	}
	m->moved++;
	return 0;
}

int slice_file_migrate_in(struct backend *b, struct pool *p, unsigned *ret_moved)
{
	struct pool_stats ps;
	struct stat st;
	struct migrate_in m = { .b = b };
	int r;

	*ret_moved = 0;
	pool_get_stats(p, &ps);
	if (fstat(b->fd, &st) < 0)
		return backend_err(negative_errno(), "%s: fstat: %m", b->path);
	/* A pool file that holds pages beyond its metadata was served with the slices in it
	 * (isolation "shared", or a daxpool before isolation): move each slice into its file, then
	 * give the data area's pages back. The block count alone is not enough to tell (a file
	 * system counts its own extent blocks, and a big table ends close to the data area): ask
	 * where the data area's first data is, where the file system can say. Otherwise every
	 * start would look up a million slice files. */
	if ((uint64_t)st.st_blocks * 512 <= ps.data_offset)
		return 0;
	if (lseek(b->fd, (off_t)ps.data_offset, SEEK_DATA) < 0 && errno == ENXIO)
		return 0;
	r = pool_iterate(p, 0, migrate_record_in, &m);
	if (r < 0)
		return r;
	if (fallocate(b->fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, (off_t)ps.data_offset,
		      (off_t)(b->size - ps.data_offset)) < 0 && errno != EOPNOTSUPP)
		return backend_err(negative_errno(), "%s: freeing the data area: %m", b->path);
	*ret_moved = m.moved;
	return 0;
}

struct live_files {
	struct { uint64_t off, len; } *v;
	size_t n;
};

static int collect_live(void *ud, uint64_t offset, uint64_t length)
{
	struct live_files *lf = ud;
	void *n = realloc(lf->v, (lf->n + 1) * sizeof(*lf->v));

	if (!n)
		return backend_err(-ENOMEM, "out of memory");
	lf->v = n;
	lf->v[lf->n].off = offset;
	lf->v[lf->n++].len = length;
	return 0;
}

int slice_file_migrate_out(struct backend *b, struct pool *p, unsigned *ret_moved)
{
	char dir[4096];
	struct live_files lf = { 0 };
	unsigned moved = 0;
	int dfd, r;

	*ret_moved = 0;
	snprintf(dir, sizeof(dir), "%s.slices", b->path);
	dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
	if (dfd < 0)
		return errno == ENOENT ? 0 : backend_err(negative_errno(), "%s: %m", dir);
	/* Served with isolation "slice" before: each live slice's data goes back into the pool
	 * file at its offset, then the files go. */
	r = walk_slice_files(dfd, dir, collect_live, &lf);
	for (size_t i = 0; r == 0 && i < lf.n; i++) {
		struct find_rec fr = { lf.v[i].off, lf.v[i].len, false };
		char name[17];

		file_name(lf.v[i].off, name);
		r = pool_iterate(p, 0, find_live_record, &fr);
		if (r < 0)
			break;
		r = 0;
		if (fr.found) {
			int fd = openat(dfd, name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);

			if (fd < 0) {
				r = backend_err(negative_errno(), "%s/%s: %m", dir, name);
				break;
			}
			r = copy_range(fd, 0, b->fd, lf.v[i].off, lf.v[i].len);
			close(fd);
			if (r < 0) {
				r = backend_err(r, "%s/%s: copying into the pool file: %s", dir, name,
						strerror(-r));
				break;
			}
			moved++;
		}
		if (unlinkat(dfd, name, 0) < 0 && errno != ENOENT)
			r = backend_err(negative_errno(), "%s/%s: remove: %m", dir, name);
	}
	free(lf.v);
	close(dfd);
	if (r == 0 && rmdir(dir) < 0 && errno != ENOENT && errno != ENOTEMPTY)
		r = backend_err(negative_errno(), "%s: rmdir: %m", dir);
	if (r == 0)
		*ret_moved = moved;
	return r;
}

static const struct backend_slice_ops slice_file_ops = {
	.create = files_create,
	.open = files_open,
	.name = files_name,
	.scrub = files_scrub,
	.destroy = files_destroy,
	.list = files_list,
	.sweep = files_sweep,
	.sync = files_sync,
	.free = files_free,
};

int slice_file_setup(struct backend *b)
{
	struct slice_files *s = backend_mem_calloc(1, sizeof(*s));
	struct statfs sfs;
	struct stat st;
	size_t n;

	if (!s)
		return backend_err(-ENOMEM, "out of memory");
	s->dirfd = -1;
	b->slice_state = s;
	b->slice_ops = &slice_file_ops;
	n = strlen(b->path) + sizeof(".slices");
	s->dir = backend_mem_calloc(1, n);
	if (!s->dir)
		return backend_err(-ENOMEM, "out of memory");
	snprintf(s->dir, n, "%s.slices", b->path);
	if (mkdir(s->dir, 0700) < 0 && errno != EEXIST)
		return backend_err(negative_errno(), "%s: mkdir: %m", s->dir);
	s->dirfd = open(s->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
	if (s->dirfd < 0)
		return backend_err(negative_errno(), "%s: %m", s->dir);
	if (fstat(s->dirfd, &st) < 0 || fstatfs(s->dirfd, &sfs) < 0)
		return backend_err(negative_errno(), "%s: stat: %m", s->dir);
	/* Only the daemon may look in: a slice file is reached through the descriptor the daemon
	 * passes, never by path. */
	if (st.st_uid != geteuid() || (st.st_mode & 077)) {
		if (st.st_uid != geteuid())
			return backend_err(-EPERM, "%s belongs to uid %u, not to the daemon; refusing "
					   "to keep slices there", s->dir, (unsigned)st.st_uid);
		if (fchmod(s->dirfd, 0700) < 0)
			return backend_err(negative_errno(), "%s: chmod 0700: %m", s->dir);
	}
	s->huge = (unsigned long)sfs.f_type == HUGETLBFS_MAGIC;
	return 0;
}
