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

static int files_list(struct backend *b, int (*fn)(void *ud, uint64_t offset, uint64_t length),
		      void *ud)
{
	struct slice_files *s = state(b);
	int fd = openat(s->dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	DIR *dir;
	struct dirent *de;
	int r = 0;

	if (fd < 0)
		return backend_err(negative_errno(), "%s: %m", s->dir);
	dir = fdopendir(fd);
	if (!dir) {
		close(fd);
		return backend_err(negative_errno(), "%s: %m", s->dir);
	}
	while (r == 0 && (de = readdir(dir))) {
		struct stat st;
		char *end;
		uint64_t off;

		if (de->d_name[0] == '.')
			continue;
		errno = 0;
		off = strtoull(de->d_name, &end, 16);
		if (strlen(de->d_name) != 16 || *end || errno ||
		    fstatat(s->dirfd, de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0 || !S_ISREG(st.st_mode)) {
			/* Not ours: left alone, and said once. */
			backend_err(0, "%s: ignoring \"%s\" (not a slice file)", s->dir, de->d_name);
			continue;
		}
		r = fn(ud, off, (uint64_t)st.st_size);
	}
	closedir(dir);
	return r;
}

static void files_free(struct backend *b)
{
	struct slice_files *s = state(b);

	if (!s)
		return;
	if (s->dirfd >= 0)
		close(s->dirfd);
	free(s->dir);
	free(s);
	b->slice_state = NULL;
}

static const struct backend_slice_ops slice_file_ops = {
	.create = files_create,
	.open = files_open,
	.name = files_name,
	.scrub = files_scrub,
	.destroy = files_destroy,
	.list = files_list,
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
