/*
 * Backend tests that need no privileges: the emulated backend on a plain file (4K pages), pool
 * identity by UUID, size checks, the bad-block reservation through extra_badblocks, and the
 * device-dax refusal paths (no device-dax hardware is needed to be refused).
 */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "backend.h"
#include "backend-internal.h"
#include "macro.h"
#include "pool.h"

#define MiB (UINT64_C(1) << 20)

static char tmpdir[] = "/tmp/daxpool-backend-XXXXXX";
static char path[256];
static int nfile;

/* A fresh file name per test, so tests stay independent. */
static const char *next_path(void)
{
	snprintf(path, sizeof(path), "%s/pool%d", tmpdir, ++nfile);
	return path;
}

static struct backend_config cfg_4k(const char *p, uint64_t size)
{
	return (struct backend_config){.kind = BACKEND_EMULATED,
				       .file_path = p,
				       .size = size,
				       .page_size = 4096,
				       .create = true};
}

static uint64_t file_size(const char *p)
{
	struct stat st;
	assert_int_equal(stat(p, &st), 0);
	return (uint64_t)st.st_size;
}

static void test_emulated_4k_create_reopen(void **state)
{
	const char *p = next_path();
	struct backend_config cfg = cfg_4k(p, 64 * MiB);
	struct backend *b = NULL;
	struct pool *pool = NULL;
	struct backend_pool_info info;
	struct pool_extent ext;
	uint8_t uuid[16], uuid2[16];

	assert_int_equal(backend_open(&cfg, &b), 0);
	assert_int_equal(backend_kind(b), BACKEND_EMULATED);
	assert_int_equal(backend_size(b), 64 * MiB);
	assert_int_equal(backend_alignment(b), 4096);
	assert_int_equal(backend_numa_node(b), -1);
	assert_false(backend_supports_map_sync(b));
	assert_true(backend_persistence(b) == BACKEND_PERSIST_NONE ||
		    backend_persistence(b) == BACKEND_PERSIST_MSYNC);
	assert_string_equal(backend_path(b), p);
	assert_string_equal(backend_devname(b), strrchr(p, '/') + 1);
	assert_int_equal(file_size(p), 64 * MiB);
	struct stat st;
	assert_int_equal(stat(p, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);
	/* The fd a client receives: read-write, and not leaked into the daemon's children. */
	int fd = backend_fd(b);
	assert_int_equal(fcntl(fd, F_GETFL) & O_ACCMODE, O_RDWR);
	assert_true(fcntl(fd, F_GETFD) & FD_CLOEXEC);
	assert_int_equal(backend_uuid(b, uuid), -ENODATA);

	/* Opening never formats by itself. */
	assert_int_equal(backend_open_pool(b, false, &pool, &info), -ENODATA);
	assert_non_null(strstr(backend_errormsg(), "no daxpool pool"));
	assert_int_equal(backend_open_pool(b, true, &pool, &info), 0);
	assert_true(info.formatted);
	assert_false(info.degraded);
	assert_int_equal(backend_uuid(b, uuid), 0);
	assert_memory_equal(uuid, info.uuid, 16);
	assert_int_equal(backend_open_pool(b, true, &pool, &info), -EALREADY);

	struct pool_alloc_req req = {.size = 1 * MiB, .align = POOL_ALIGN_4K, .name = "rec1",
				     .uid = 1000, .mode = 0600};
	assert_int_equal(pool_alloc(pool, &req, &ext), 0);
	pool_delete(&pool);
	backend_delete(&b);
	assert_null(b);

	/* "Daemon restart": the record and the identity are still there, nothing reformatted. */
	cfg.create = false;
	assert_int_equal(backend_open(&cfg, &b), 0);
	assert_int_equal(backend_open_pool(b, true, &pool, &info), 0);
	assert_false(info.formatted);
	assert_int_equal(backend_uuid(b, uuid2), 0);
	assert_memory_equal(uuid, uuid2, 16);
	struct pool_record_info ri;
	assert_int_equal(pool_lookup(pool, "rec1", &ri), 0);
	assert_int_equal(ri.offset, ext.offset);
	assert_int_equal(ri.length, ext.length);
	assert_int_equal(ri.uid, 1000);
	pool_delete(&pool);
	backend_delete(&b);

	/* size 0 = take the existing file's size. */
	cfg.size = 0;
	assert_int_equal(backend_open(&cfg, &b), 0);
	assert_int_equal(backend_size(b), 64 * MiB);
	backend_delete(&b);
	backend_delete(&b); /* *NULL is accepted */
	backend_delete(NULL);
}

/* Bytes of the slice file of the extent at offset, through backend_slice_open; -1 if none. */
static int slice_fill_or_check(struct backend *b, uint64_t off, uint64_t len, int fill, int expect)
{
	int fd;
	uint64_t map_off;
	int r = backend_slice_open(b, off, len, true, &fd, &map_off);
	if (r < 0)
		return r;
	uint8_t *a = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, (off_t)map_off);
	assert_true(a != MAP_FAILED);
	close(fd);
	r = 0;
	if (fill >= 0)
		memset(a, fill, len);
	if (expect >= 0)
		for (uint64_t i = 0; i < len; i++)
			if (a[i] != expect) {
				r = -EBADMSG;
				break;
			}
	munmap(a, len);
	return r;
}

/* Slice files at start: orphans go in a sweep while the daemon serves, not in reconcile; a new
 * extent at an orphan's offset replaces it with a zero file; a live record's missing file is
 * reported (the daemon makes it anew). */
static void test_slice_files_swept(void **state)
{
	(void)state;
	const char *p = next_path();
	struct backend_config cfg = cfg_4k(p, 64 * MiB);
	struct backend *b = NULL;
	struct pool *pool = NULL;
	struct backend_pool_info info;
	struct pool_extent live, later;
	unsigned removed, created, total = 0;
	int r, steps = 0;

	cfg.isolation = BACKEND_ISOLATION_SLICE;
	assert_int_equal(backend_open(&cfg, &b), 0);
	assert_int_equal(backend_open_pool(b, true, &pool, &info), 0);
	assert_int_equal(backend_isolation(b), BACKEND_ISOLATION_SLICE);
	struct pool_alloc_req req = {.size = 64 << 10, .align = POOL_ALIGN_4K, .name = "live"};
	assert_int_equal(pool_alloc(pool, &req, &live), 0);
	assert_int_equal(backend_slice_create(b, live.offset, live.length, POOL_ALIGN_4K), 0);
	assert_int_equal(slice_fill_or_check(b, live.offset, live.length, 0x5a, -1), 0);

	/* Leftovers of a crash: files at free offsets, holding old bytes. */
	uint64_t orphan[3] = {live.offset + 4 * MiB, live.offset + 8 * MiB, live.offset + 12 * MiB};
	for (int i = 0; i < 3; i++) {
		assert_true(pool_range_is_free(pool, orphan[i], 4096));
		assert_int_equal(backend_slice_create(b, orphan[i], 1 * MiB, POOL_ALIGN_4K), 0);
		assert_int_equal(slice_fill_or_check(b, orphan[i], 1 * MiB, 0xee, -1), 0);
	}
	/* Not the daemon's: other names in the directory stay. */
	char other[300];
	snprintf(other, sizeof(other), "%s.slices/notes.txt", p);
	FILE *f = fopen(other, "w");
	assert_non_null(f);
	fclose(f);

	/* Reconcile leaves the files to the sweep (a restart does not read the directory). */
	assert_int_equal(backend_slice_reconcile(b, pool, &removed, &created), 0);
	assert_int_equal(removed + created, 0);

	/* A new extent at an orphan's offset gets a new, zero file, before any sweep. */
	assert_int_equal(pool_alloc_at(pool, &(struct pool_alloc_req){.size = 2 * MiB,
			 .align = POOL_ALIGN_4K, .name = "later"}, orphan[2], &later), 0);
	assert_int_equal(backend_slice_create(b, later.offset, later.length, POOL_ALIGN_4K), 0);
	assert_int_equal(slice_fill_or_check(b, later.offset, later.length, -1, 0), 0);

	/* The sweep, in steps of 1 entry: the two orphans at free offsets go; the live files, the
	 * new one and the foreign file stay. */
	while ((r = backend_slice_sweep(b, pool, 1, &removed)) > 0) {
		total += removed;
		steps++;
	}
	assert_int_equal(r, 0);
	total += removed;
	assert_int_equal(total, 2);
	assert_true(steps >= 4);
	int fd;
	uint64_t map_off;
	assert_int_equal(backend_slice_open(b, orphan[0], 1 * MiB, false, &fd, &map_off), -ENOENT);
	assert_int_equal(backend_slice_open(b, orphan[1], 1 * MiB, false, &fd, &map_off), -ENOENT);
	assert_int_equal(slice_fill_or_check(b, live.offset, live.length, -1, 0x5a), 0);
	assert_int_equal(slice_fill_or_check(b, later.offset, later.length, -1, 0), 0);
	assert_int_equal(access(other, F_OK), 0);
	/* A second sweep finds nothing more. */
	total = 0;
	while ((r = backend_slice_sweep(b, pool, 64, &removed)) > 0)
		total += removed;
	assert_int_equal(r, 0);
	assert_int_equal(total + removed, 0);

	/* A live record whose file went: open says so, and create makes it anew, zero. */
	assert_int_equal(backend_slice_destroy(b, live.offset, live.length), 0);
	assert_int_equal(backend_slice_open(b, live.offset, live.length, true, &fd, &map_off), -ENOENT);
	assert_int_equal(backend_slice_create(b, live.offset, live.length, POOL_ALIGN_4K), 0);
	assert_int_equal(slice_fill_or_check(b, live.offset, live.length, -1, 0), 0);

	pool_delete(&pool);
	backend_delete(&b);
	unlink(other);
}

static void test_emulated_size_mismatch(void **state)
{
	const char *p = next_path();
	struct backend_config cfg = cfg_4k(p, 32 * MiB);
	struct backend *b = NULL;
	struct pool *pool = NULL;

	assert_int_equal(backend_open(&cfg, &b), 0);
	assert_int_equal(backend_open_pool(b, true, &pool, NULL), 0);
	pool_delete(&pool);
	backend_delete(&b);

	/* Smaller or larger than the file: refused, and the file is left exactly as it was. */
	cfg.size = 16 * MiB;
	assert_int_equal(backend_open(&cfg, &b), -EINVAL);
	assert_null(b);
	assert_non_null(strstr(backend_errormsg(), "refusing to resize"));
	assert_int_equal(file_size(p), 32 * MiB);
	cfg.size = 64 * MiB;
	assert_int_equal(backend_open(&cfg, &b), -EINVAL);
	assert_int_equal(file_size(p), 32 * MiB);

	cfg.size = 32 * MiB;
	assert_int_equal(backend_open(&cfg, &b), 0);
	assert_int_equal(backend_open_pool(b, false, &pool, NULL), 0);
	pool_delete(&pool);
	backend_delete(&b);
}

static void test_emulated_config_errors(void **state)
{
	const char *p = next_path();
	struct backend_config cfg = cfg_4k(p, 32 * MiB);
	struct backend *b = NULL;

	cfg.create = false;
	assert_int_equal(backend_open(&cfg, &b), -ENOENT);
	assert_non_null(strstr(backend_errormsg(), p));
	cfg.create = true;
	cfg.size = 32 * MiB + 100;
	assert_int_equal(backend_open(&cfg, &b), -EINVAL);
	cfg.size = 0;
	assert_int_equal(backend_open(&cfg, &b), -EINVAL);
	assert_int_equal(access(p, F_OK), -1); /* nothing created on failure */
	cfg.size = 32 * MiB;
	cfg.page_size = 8192;
	assert_int_equal(backend_open(&cfg, &b), -EINVAL);
	assert_non_null(strstr(backend_errormsg(), "not 4K, 2M or 1G"));
	cfg.page_size = 2 * MiB; /* /tmp is not hugetlbfs */
	assert_int_equal(backend_open(&cfg, &b), -EINVAL);
	assert_non_null(strstr(backend_errormsg(), "not on hugetlbfs"));
	assert_int_equal(access(p, F_OK), -1); /* the file this call created was removed */
	cfg.page_size = 4096;
	cfg.device_path = "/dev/dax0.0";
	assert_int_equal(backend_open(&cfg, &b), -EINVAL);
	cfg.device_path = NULL;
	cfg.file_path = tmpdir; /* a directory */
	cfg.create = false;
	assert_true(backend_open(&cfg, &b) < 0);
	cfg.kind = (enum backend_kind)42;
	assert_int_equal(backend_open(&cfg, &b), -EINVAL);
	cfg.kind = BACKEND_NONE;
	assert_int_equal(backend_open(&cfg, &b), -EINVAL);
	assert_int_equal(backend_open(NULL, &b), -EINVAL);
	assert_null(b);
}

static void test_uuid_mismatch(void **state)
{
	const char *p = next_path();
	struct backend_config cfg = cfg_4k(p, 32 * MiB);
	struct backend *b = NULL;
	struct pool *pool = NULL;
	struct backend_pool_info info;
	uint8_t other[16];

	memset(other, 0xab, sizeof(other));
	/* Expected identity + empty device: never formatted, even when formatting is allowed. */
	cfg.expected_uuid = other;
	assert_int_equal(backend_open(&cfg, &b), 0);
	assert_int_equal(backend_open_pool(b, true, &pool, &info), -ESTALE);
	assert_non_null(strstr(backend_errormsg(), "abababab-abab-abab-abab-abababababab"));
	assert_null(pool);
	backend_delete(&b);

	cfg.expected_uuid = NULL;
	assert_int_equal(backend_open(&cfg, &b), 0);
	assert_int_equal(backend_open_pool(b, true, &pool, &info), 0);
	assert_true(info.formatted);
	pool_delete(&pool);
	backend_delete(&b);

	/* A different pool on "the same path": refused, the message names both pools. */
	cfg.expected_uuid = other;
	assert_int_equal(backend_open(&cfg, &b), 0);
	assert_int_equal(backend_open_pool(b, true, &pool, NULL), -ESTALE);
	assert_non_null(strstr(backend_errormsg(), "not the expected pool"));
	assert_null(pool);
	backend_delete(&b);

	/* The right identity opens. */
	cfg.expected_uuid = info.uuid;
	assert_int_equal(backend_open(&cfg, &b), 0);
	assert_int_equal(backend_open_pool(b, false, &pool, NULL), 0);
	pool_delete(&pool);
	backend_delete(&b);
}

static bool overlaps(uint64_t a, uint64_t alen, uint64_t b, uint64_t blen)
{
	return a < b + blen && b < a + alen;
}

static void test_badblocks_never_handed_out(void **state)
{
	const char *p = next_path();
	struct backend_config cfg = cfg_4k(p, 64 * MiB);
	struct backend *b = NULL;
	struct pool *pool = NULL;
	struct pool_stats ps;
	struct backend_badblock_stats bs;

	/* Format first to learn where the data area starts. */
	assert_int_equal(backend_open(&cfg, &b), 0);
	assert_int_equal(backend_open_pool(b, true, &pool, NULL), 0);
	pool_get_stats(pool, &ps);
	backend_badblock_stats(b, &bs);
	assert_int_equal(bs.count, 0);
	assert_int_equal(bs.reserved_records, 0);
	pool_delete(&pool);
	backend_delete(&b);

	uint64_t d = ps.data_offset;
	struct backend_badblock bad[] = {
		{d + 5000, 100},	    /* inside one 4K page */
		{d + 1 * MiB - 512, 1024},  /* across a page boundary */
		{d + 2 * MiB + 100, 8},	    /* two bad ranges in one page */
		{d + 2 * MiB + 3000, 8},
		{d + 10 * MiB, 3 * 4096},   /* several pages */
		{d + 10 * MiB + 4096, 100}, /* overlapping the previous one: merged */
		{ps.pool_size - 4096, 4096}, /* the last page (may be past the data area) */
	};
	cfg.extra_badblocks = bad;
	cfg.n_extra_badblocks = ARRAY_SIZE(bad);
	cfg.create = false;
	assert_int_equal(backend_open(&cfg, &b), 0);
	const struct backend_badblock *list;
	size_t n;
	backend_badblocks(b, &list, &n);
	assert_int_equal(n, 6); /* the overlapping pair merged */
	for (size_t i = 1; i < n; i++)
		assert_true(list[i - 1].offset + list[i - 1].length < list[i].offset);
	assert_int_equal(backend_open_pool(b, false, &pool, NULL), 0);
	backend_badblock_stats(b, &bs);
	assert_int_equal(bs.count, 6);
	assert_true(bs.newly_reserved >= 5);
	assert_int_equal(bs.reserved_records, bs.newly_reserved);
	assert_int_equal(bs.in_allocated, 0);
	uint64_t reserved = bs.reserved_records;

	/* Fill the pool; no extent may touch a bad range. */
	struct pool_alloc_req req = {.size = 64 * 1024, .align = POOL_ALIGN_4K};
	struct pool_extent ext;
	unsigned count = 0;
	int r;
	while ((r = pool_alloc(pool, &req, &ext)) == 0) {
		count++;
		for (size_t i = 0; i < ARRAY_SIZE(bad); i++)
			assert_false(overlaps(ext.offset, ext.length, bad[i].offset, bad[i].length));
	}
	assert_int_equal(r, -ENOSPC);
	assert_true(count > 100);
	req.size = 4096;
	while ((r = pool_alloc(pool, &req, &ext)) == 0)
		for (size_t i = 0; i < ARRAY_SIZE(bad); i++)
			assert_false(overlaps(ext.offset, ext.length, bad[i].offset, bad[i].length));
	/* The reserved records are the daemon's: reserved names, root-owned, mode 0. */
	struct pool_record_info ri;
	char name[64];
	snprintf(name, sizeof(name), BACKEND_BADBLOCK_NAME_PREFIX "%llx",
		 (unsigned long long)((d + 5000) / 4096 * 4096));
	assert_int_equal(pool_lookup(pool, name, &ri), 0);
	assert_true(backend_name_is_reserved(ri.name));
	assert_int_equal(ri.uid, 0);
	assert_int_equal(ri.mode, 0);
	assert_int_equal(ri.length, 4096);
	pool_delete(&pool);
	backend_delete(&b);

	/* Reopen: idempotent, nothing new. */
	assert_int_equal(backend_open(&cfg, &b), 0);
	assert_int_equal(backend_open_pool(b, false, &pool, NULL), 0);
	backend_badblock_stats(b, &bs);
	assert_int_equal(bs.newly_reserved, 0);
	assert_int_equal(bs.reserved_records, reserved);
	/* Free every client record (the pool is full of them) but keep the bad ones. */
	for (uint64_t id = 0; id < ps.table_capacity; id++)
		if (pool_get(pool, id, &ri) == 0 && !backend_name_is_reserved(ri.name))
			assert_int_equal(pool_free(pool, id), 0);
	req.size = 8 * MiB;
	assert_int_equal(pool_alloc(pool, &req, &ext), 0);
	pool_delete(&pool);
	backend_delete(&b);

	/* A block that goes bad inside a client's extent: counted so the daemon can tell its
	 * owner; the rest of the range is still reserved. */
	struct backend_badblock late = {ext.offset + 4096, 16384};
	cfg.extra_badblocks = &late;
	cfg.n_extra_badblocks = 1;
	assert_int_equal(backend_open(&cfg, &b), 0);
	assert_int_equal(backend_open_pool(b, false, &pool, NULL), 0);
	backend_badblock_stats(b, &bs);
	assert_int_equal(bs.in_allocated, 1);
	assert_int_equal(bs.newly_reserved, 0);
	pool_delete(&pool);
	backend_delete(&b);
}

static void test_badblocks_in_metadata(void **state)
{
	const char *p = next_path();
	struct backend_config cfg = cfg_4k(p, 32 * MiB);
	struct backend *b = NULL;
	struct pool *pool = NULL;
	struct backend_badblock sb = {100, 8}, table = {3 * 4096 + 4096, 8},
				out = {32 * MiB - 8, 16};

	assert_int_equal(backend_open(&cfg, &b), 0);
	assert_int_equal(backend_open_pool(b, true, &pool, NULL), 0);
	pool_delete(&pool);
	backend_delete(&b);

	cfg.create = false;
	cfg.extra_badblocks = &sb;
	cfg.n_extra_badblocks = 1;
	assert_int_equal(backend_open(&cfg, &b), 0);
	assert_int_equal(backend_open_pool(b, false, &pool, NULL), -EIO);
	assert_non_null(strstr(backend_errormsg(), "superblocks or log"));
	backend_delete(&b);
	cfg.extra_badblocks = &table;
	assert_int_equal(backend_open(&cfg, &b), 0);
	assert_int_equal(backend_open_pool(b, false, &pool, NULL), -EIO);
	assert_non_null(strstr(backend_errormsg(), "metadata"));
	assert_null(pool);
	backend_delete(&b);
	cfg.extra_badblocks = &out;
	assert_int_equal(backend_open(&cfg, &b), -EINVAL);
	assert_non_null(strstr(backend_errormsg(), "outside"));
	assert_null(b);
}

static void test_deep_flush(void **state)
{
	const char *p = next_path();
	struct backend_config cfg = cfg_4k(p, 8 * MiB);
	struct backend *b = NULL;

	assert_int_equal(backend_open(&cfg, &b), 0);
	assert_int_equal(backend_deep_flush(b, 0, 8 * MiB), 0);
	assert_int_equal(backend_deep_flush(b, 4096, 0), 0);
	assert_int_equal(backend_deep_flush(b, 8 * MiB - 1, 1), 0);
	assert_int_equal(backend_deep_flush(b, 8 * MiB, 1), -EINVAL);
	assert_int_equal(backend_deep_flush(b, 1, UINT64_MAX), -EINVAL);
	assert_int_equal(backend_deep_flush(NULL, 0, 1), -EINVAL);
	backend_delete(&b);
}

static int mkdir_p(const char *dir)
{
	char buf[400];

	snprintf(buf, sizeof(buf), "%s", dir);
	for (char *p = buf + 1; *p; p++)
		if (*p == '/') {
			*p = 0;
			if (mkdir(buf, 0755) < 0 && errno != EEXIST)
				return -errno;
			*p = '/';
		}
	return mkdir(buf, 0755) < 0 && errno != EEXIST ? -errno : 0;
}

/* A fake sysfs tree with one region's deep_flush attribute holding value; returns its path. */
static const char *fake_deep_flush(const char *root, unsigned region, const char *value)
{
	static char attr[512];
	char dir[400];

	snprintf(dir, sizeof(dir), "%s/bus/nd/devices/region%u", root, region);
	assert_int_equal(mkdir_p(dir), 0);
	snprintf(attr, sizeof(attr), "%s/deep_flush", dir);
	FILE *f = fopen(attr, "w");
	assert_non_null(f);
	fputs(value, f);
	fclose(f);
	chmod(attr, 0644); /* as on a platform with flush hints: root writes, everyone reads */
	return attr;
}

static void test_deep_flush_attr(void **state)
{
	char root[300], buf[8] = "";
	const char *attr;
	int fd = -1, status;

	snprintf(root, sizeof(root), "%s/sys", tmpdir);
	/* "0": no flush hints, nothing to hold open. */
	fake_deep_flush(root, 0, "0\n");
	assert_int_equal(deep_flush_attr_open(root, 0, &fd), -EOPNOTSUPP);
	assert_int_equal(fd, -1);
	/* No such region or attribute. */
	assert_int_equal(deep_flush_attr_open(root, 7, &fd), -ENOENT);
	assert_non_null(strstr(backend_errormsg(), "region7/deep_flush"));

	/* "1": held open; a trigger writes "1" through the held descriptor. */
	attr = fake_deep_flush(root, 3, "1\n");
	assert_int_equal(deep_flush_attr_open(root, 3, &fd), 0);
	assert_true(fd >= 0);
	FILE *f = fopen(attr, "w");
	fputs("X\n", f);
	fclose(f);
	assert_int_equal(deep_flush_attr_trigger(fd), 0);
	f = fopen(attr, "r");
	assert_non_null(fgets(buf, sizeof(buf), f));
	fclose(f);
	assert_int_equal(buf[0], '1');

	/* What it is for: the descriptor keeps working once the process has lost the right to
	 * open the attribute (daxpoold drops CAP_DAC_OVERRIDE before serving). */
	if (geteuid() == 0) {
		pid_t pid = fork();

		assert_true(pid >= 0);
		if (pid == 0) {
			if (setresgid(65534, 65534, 65534) < 0 || setresuid(65534, 65534, 65534) < 0)
				_exit(2);
			if (open(attr, O_WRONLY) >= 0 || errno != EACCES)
				_exit(3); /* the path itself must be out of reach now */
			_exit(deep_flush_attr_trigger(fd) == 0 ? 0 : 4);
		}
		assert_int_equal(waitpid(pid, &status, 0), pid);
		assert_true(WIFEXITED(status));
		assert_int_equal(WEXITSTATUS(status), 0);
	} else {
		print_message("not root: the privilege-drop half of test_deep_flush_attr did not run\n");
	}
	close(fd);
}

static struct backend_config cfg_devdax(const char *p)
{
	return (struct backend_config){.kind = BACKEND_DEVDAX, .device_path = p};
}

static void test_devdax_refusals(void **state)
{
	struct backend *b = NULL;
	struct backend_config cfg;

	cfg = cfg_devdax("/dev/dax-daxpool-test-missing9.9");
	assert_int_equal(backend_open(&cfg, &b), -ENOENT);
	assert_non_null(strstr(backend_errormsg(), "dax-daxpool-test-missing9.9"));

	/* A regular file is the emulated backend's. */
	const char *p = next_path();
	int fd = open(p, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	assert_true(fd >= 0);
	assert_int_equal(ftruncate(fd, 4 * MiB), 0);
	close(fd);
	cfg = cfg_devdax(p);
	assert_int_equal(backend_open(&cfg, &b), -ENODEV);
	assert_non_null(strstr(backend_errormsg(), "not a character device"));

	/* A character device of another subsystem. */
	cfg = cfg_devdax("/dev/null");
	assert_int_equal(backend_open(&cfg, &b), -ENODEV);
	assert_non_null(strstr(backend_errormsg(), "not a device-dax device"));
	assert_non_null(strstr(backend_errormsg(), "'mem'"));

	cfg = cfg_devdax(tmpdir);
	assert_true(backend_open(&cfg, &b) < 0);

	/* Emulated settings on a devdax config are a configuration mistake. */
	cfg = cfg_devdax("/dev/null");
	cfg.size = 4 * MiB;
	assert_int_equal(backend_open(&cfg, &b), -EINVAL);
	cfg = cfg_devdax("");
	assert_int_equal(backend_open(&cfg, &b), -EINVAL);
	cfg = cfg_devdax(NULL);
	assert_int_equal(backend_open(&cfg, &b), -EINVAL);
	assert_null(b);
}

static void test_pool_alloc_at(void **state)
{
	const char *p = next_path();
	struct backend_config cfg = cfg_4k(p, 32 * MiB);
	struct backend *b = NULL;
	struct pool *pool = NULL;
	struct pool_stats ps;
	struct pool_extent ext, ext2;

	assert_int_equal(backend_open(&cfg, &b), 0);
	assert_int_equal(backend_open_pool(b, true, &pool, NULL), 0);
	pool_get_stats(pool, &ps);
	uint64_t d = ps.data_offset;
	struct pool_alloc_req req = {.size = 8192, .align = POOL_ALIGN_4K};
	assert_int_equal(pool_alloc_at(pool, &req, d + 4 * 4096, &ext), 0);
	assert_int_equal(ext.offset, d + 4 * 4096);
	assert_int_equal(ext.length, 8192);
	/* Overlapping: busy. Partly outside: busy. Misaligned: invalid. In metadata: busy. */
	assert_int_equal(pool_alloc_at(pool, &req, d + 5 * 4096, &ext2), -EBUSY);
	assert_int_equal(pool_alloc_at(pool, &req, d + 3 * 4096, &ext2), -EBUSY);
	assert_int_equal(pool_alloc_at(pool, &req, d + 100, &ext2), -EINVAL);
	assert_int_equal(pool_alloc_at(pool, &req, 0, &ext2), -EBUSY);
	assert_int_equal(pool_alloc_at(pool, &req, ps.data_offset + ps.data_size - 4096, &ext2),
			 -EBUSY);
	assert_int_equal(pool_alloc_at(pool, &req, d + 2 * 4096, &ext2), 0);
	assert_int_equal(pool_alloc_at(pool, &req, d + 6 * 4096, &ext2), 0);
	assert_int_equal(pool_free(pool, ext.id), 0);
	assert_int_equal(pool_alloc_at(pool, &req, d + 4 * 4096, &ext2), 0);
	uint8_t u1[16], u2[16];
	assert_int_equal(pool_get_uuid(pool, u1), 0);
	assert_int_equal(backend_uuid(b, u2), 0);
	assert_memory_equal(u1, u2, 16);
	pool_delete(&pool);
	backend_delete(&b);
}

static void test_reserved_names(void **state)
{
	assert_true(backend_name_is_reserved("daxpool:badblock:1000"));
	assert_true(backend_name_is_reserved("daxpool:"));
	assert_false(backend_name_is_reserved("daxpool"));
	assert_false(backend_name_is_reserved("mine"));
	assert_false(backend_name_is_reserved(NULL));
	assert_string_equal(backend_persistence_name(BACKEND_PERSIST_CPU_FLUSH), "cpu-flush");
	assert_string_equal(backend_persistence_name(BACKEND_PERSIST_NONE), "none");
}

/* Walks an injected allocation failure over every site of backend_open + backend_open_pool
 * (the pool library's allocations, then the backend's): each is -ENOMEM with a message, nothing leaks
 * (valgrind/ASan), and a later clean open reserves every bad range exactly once. */
static void test_enomem_walk(void **state)
{
	const char *p = next_path();
	struct backend_config cfg = cfg_4k(p, 32 * MiB);
	struct backend *b = NULL;
	struct pool *pool = NULL;
	struct pool_stats ps;
	struct backend_badblock_stats bs;

	assert_int_equal(backend_open(&cfg, &b), 0);
	assert_int_equal(backend_open_pool(b, true, &pool, NULL), 0);
	pool_get_stats(pool, &ps);
	pool_delete(&pool);
	backend_delete(&b);

	uint64_t d = ps.data_offset;
	struct backend_badblock bad[] = {{d + 4096, 10}, {d + 1 * MiB, 5000}, {d + 3 * MiB, 1}};
	cfg.extra_badblocks = bad;
	cfg.n_extra_badblocks = ARRAY_SIZE(bad);
	cfg.create = false;

	for (int which = 0; which < 2; which++) {
		unsigned long n;
		for (n = 1; n < 1000; n++) {
			/* The pool's sites first: then bad ranges are reserved half-way; by the
			 * backend walk records exist, so the record-list site is reached too. */
			if (which == 0)
				pool_test_fail_alloc_at(n);
			else
				backend_test_fail_alloc_at(n);
			int r = backend_open(&cfg, &b);
			if (r == 0)
				r = backend_open_pool(b, false, &pool, NULL);
			backend_test_fail_alloc_at(0);
			pool_test_fail_alloc_at(0);
			pool_delete(&pool);
			backend_delete(&b);
			if (r == 0)
				break;
			assert_int_equal(r, -ENOMEM);
			assert_true(strlen(backend_errormsg()) > 0);
		}
		printf("# %s allocation sites walked: %lu\n", which == 0 ? "pool" : "backend", n - 1);
		assert_true(n > 1 && n < 1000);
	}
	assert_int_equal(backend_open(&cfg, &b), 0);
	assert_int_equal(backend_open_pool(b, false, &pool, NULL), 0);
	backend_badblock_stats(b, &bs);
	assert_int_equal(bs.reserved_records, 3);
	assert_int_equal(bs.reserved_bytes, 4096 + 2 * 4096 + 4096);
	pool_delete(&pool);
	backend_delete(&b);
}

static int rm_tree(void **state)
{
	char cmd[512];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
	return system(cmd) == 0 ? 0 : -1;
}

/* In "slice" and "owner" modes a pool file (or device) others can open by path is refused:
 * they would reach every slice and the metadata past the daemon. "shared" serves it. */
static void test_refuses_pool_others_can_open(void **state)
{
	const char *p = next_path();
	struct backend_config cfg = cfg_4k(p, 32 * MiB);
	struct backend *b = NULL;
	gid_t other = getegid() == 65534 ? 65533 : 65534;

	(void)state;
	assert_int_equal(backend_open(&cfg, &b), 0); /* created 0600 */
	backend_delete(&b);
	cfg.create = false;
	cfg.size = 0;
	assert_int_equal(chmod(p, 0604), 0);
	assert_int_equal(backend_open(&cfg, &b), -EPERM);
	assert_null(b);
	assert_non_null(strstr(backend_errormsg(), "every user"));
	cfg.isolation = BACKEND_ISOLATION_OWNER;
	assert_int_equal(backend_open(&cfg, &b), -EPERM);
	cfg.isolation = BACKEND_ISOLATION_SHARED;
	assert_int_equal(backend_open(&cfg, &b), 0);
	backend_delete(&b);

	/* group access: only the daemon's own group may have it */
	cfg.isolation = BACKEND_ISOLATION_SLICE;
	assert_int_equal(chmod(p, 0660), 0);
	if (geteuid() == 0) {
		assert_int_equal(chown(p, (uid_t)-1, other), 0);
		assert_int_equal(backend_open(&cfg, &b), -EPERM);
		assert_non_null(strstr(backend_errormsg(), "not the daemon's"));
		assert_int_equal(chown(p, (uid_t)-1, getegid()), 0);
	}
	assert_int_equal(chmod(p, 0640), 0);
	assert_int_equal(backend_open(&cfg, &b), 0); /* the daemon's group (no other member) */
	backend_delete(&b);
	assert_int_equal(chmod(p, 0600), 0);
	assert_int_equal(backend_open(&cfg, &b), 0);
	backend_delete(&b);
	unlink(p);
}

int main(void)
{
	if (!mkdtemp(tmpdir)) {
		perror("mkdtemp");
		return 1;
	}
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_emulated_4k_create_reopen),
		cmocka_unit_test(test_emulated_size_mismatch),
		cmocka_unit_test(test_slice_files_swept),
		cmocka_unit_test(test_emulated_config_errors),
		cmocka_unit_test(test_uuid_mismatch),
		cmocka_unit_test(test_badblocks_never_handed_out),
		cmocka_unit_test(test_badblocks_in_metadata),
		cmocka_unit_test(test_deep_flush),
		cmocka_unit_test(test_deep_flush_attr),
		cmocka_unit_test(test_devdax_refusals),
		cmocka_unit_test(test_pool_alloc_at),
		cmocka_unit_test(test_reserved_names),
		cmocka_unit_test(test_enomem_walk),
		cmocka_unit_test(test_refuses_pool_others_can_open),
	};
	return cmocka_run_group_tests(tests, NULL, rm_tree);
}
