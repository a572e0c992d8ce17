/* Huge page reservations and hugetlbfs mounts for tests and benchmarks; see hugepages.h. */
#include "hugepages.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#define MiB (UINT64_C(1) << 20)
#define GiB (UINT64_C(1) << 30)

static int counter_path(uint64_t page_size, const char *counter, char *buf, size_t size)
{
	if ((size_t)snprintf(buf, size, "/sys/kernel/mm/hugepages/hugepages-%llukB/%s",
			     (unsigned long long)(page_size >> 10), counter) >= size)
		return -ENAMETOOLONG;
	return 0;
}

static long read_counter(const char *path)
{
	FILE *f = fopen(path, "re");
	long v;
	int r;

	if (!f)
		return -errno;
	r = fscanf(f, "%ld", &v) == 1 ? 0 : -EIO;
	fclose(f);
	return r < 0 ? r : v;
}

long hugepages_read(uint64_t page_size, const char *counter)
{
	char path[128];
	int r = counter_path(page_size, counter, path, sizeof(path));

	return r < 0 ? r : read_counter(path);
}

/* open, write, close and nothing else: hugepages_restore runs in signal handlers. */
static int write_text(const char *path, const char *text)
{
	size_t len = strlen(text);
	int fd = open(path, O_WRONLY | O_CLOEXEC);
	ssize_t n;
	int r = 0;

	if (fd < 0)
		return -errno;
	n = write(fd, text, len);
	if (n < 0)
		r = -errno;
	else if ((size_t)n != len)
		r = -EIO;
	close(fd);
	return r;
}

static int write_counter(const char *path, long v)
{
	char text[24];

	snprintf(text, sizeof(text), "%ld\n", v);
	return write_text(path, text);
}

/* Empties h and reads the nr_hugepages it will raise. */
static int begin(struct hugepages *h, uint64_t page_size)
{
	long prev;
	int r;

	*h = (struct hugepages){.page_size = page_size, .prev = -1};
	r = counter_path(page_size, "nr_hugepages", h->nr_path, sizeof(h->nr_path));
	if (r < 0)
		return r;
	prev = read_counter(h->nr_path);
	if (prev < 0)
		return (int)prev;
	h->prev = prev;
	return 0;
}

/* Writes prev + more and records how many of them the kernel granted. */
static int raise_by(struct hugepages *h, long more)
{
	long now;
	int r;

	/* Armed before the write: a watchdog that fires while the kernel is still gathering pages
	 * must put the count back too. */
	snprintf(h->prev_text, sizeof(h->prev_text), "%ld\n", h->prev);
	r = write_counter(h->nr_path, h->prev + more);
	if (r < 0) {
		h->prev_text[0] = 0;
		return r;
	}
	now = read_counter(h->nr_path);
	/* Never more than asked: a raise by someone else meanwhile is not ours to give back. */
	h->added = now <= h->prev ? 0 : now - h->prev > more ? more : now - h->prev;
	return 0;
}

int hugepages_reserve(struct hugepages *h, uint64_t page_size, long more, long at_least)
{
	int r = begin(h, page_size);

	if (r < 0)
		return r;
	r = raise_by(h, more);
	if (r < 0)
		return r;
	if (h->added < at_least) {
		hugepages_restore(h);
		return -ENOMEM;
	}
	return 0;
}

int hugepages_reserve_free(struct hugepages *h, uint64_t page_size, long want)
{
	long nfree;
	int r = begin(h, page_size);

	if (r < 0)
		return r;
	nfree = hugepages_read(page_size, "free_hugepages");
	if (nfree >= want)
		return 0;
	if (geteuid() != 0)
		return -EPERM;
	r = raise_by(h, want - (nfree > 0 ? nfree : 0));
	if (r < 0)
		return r;
	if (hugepages_read(page_size, "free_hugepages") < want) {
		hugepages_give_back(h);
		return -ENOMEM;
	}
	return 0;
}

int hugepages_restore(struct hugepages *h)
{
	int r;

	if (!h->prev_text[0])
		return 0;
	r = write_text(h->nr_path, h->prev_text);
	h->prev_text[0] = 0;
	h->added = 0;
	return r;
}

int hugepages_give_back(struct hugepages *h)
{
	long now;
	int r = 0;

	if (!h->prev_text[0])
		return 0;
	if (h->added > 0) {
		now = read_counter(h->nr_path);
		if (now < 0)
			r = (int)now;
		else if (now >= h->added)
			r = write_counter(h->nr_path, now - h->added);
	}
	h->prev_text[0] = 0;
	h->added = 0;
	return r;
}

int hugetlbfs_mount(const char *dir, uint64_t page_size, mode_t mode)
{
	char opts[64];

	if (mkdir(dir, mode) < 0 && errno != EEXIST)
		return -errno;
	/* pagesize= in the unit people read in mount(8) output: 2M, 1G */
	if (page_size % GiB == 0)
		snprintf(opts, sizeof(opts), "pagesize=%lluG,mode=%04o",
			 (unsigned long long)(page_size / GiB), (unsigned)mode);
	else if (page_size % MiB == 0)
		snprintf(opts, sizeof(opts), "pagesize=%lluM,mode=%04o",
			 (unsigned long long)(page_size / MiB), (unsigned)mode);
	else
		snprintf(opts, sizeof(opts), "pagesize=%lluK,mode=%04o",
			 (unsigned long long)(page_size >> 10), (unsigned)mode);
	if (mount("none", dir, "hugetlbfs", 0, opts) < 0)
		return -errno;
	return 0;
}

int hugetlbfs_unmount(const char *dir)
{
	if (umount(dir) < 0)
		return -errno;
	if (rmdir(dir) < 0)
		return -errno;
	return 0;
}
