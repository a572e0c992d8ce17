/* Unit tests of the pool library: behaviour, persistence through libpmem2, policy, corruption. */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cmocka.h>

#include "fs-util.h"
#include "helpers.h"
#include "layout.h"
#include "pool.h"

#define MiB (UINT64_C(1) << 20)
#define GiB (UINT64_C(1) << 30)

static struct pool *fresh(void *r, uint64_t size, uint64_t cap)
{
	struct pool_format_params prm = {.table_capacity = cap};
	struct pool *p = NULL;
	assert_int_equal(pool_format_range(r, size, &noop_ops, &prm), 0);
	assert_int_equal(pool_open_range(r, size, &noop_ops, &p), 0);
	return p;
}

static int alloc_simple(struct pool *p, uint64_t size, uint64_t align, const char *name,
			struct pool_extent *e)
{
	struct pool_alloc_req req = {.size = size, .align = align, .name = name, .mode = 0600};
	return pool_alloc(p, &req, e);
}

static void test_format_open_roundtrip(void **state)
{
	uint64_t size = 64 * MiB;
	void *r = range_new(size);
	struct pool *p = fresh(r, size, 0);
	struct pool_stats s;
	struct pool_extent e;
	struct pool_record_info info;

	pool_get_stats(p, &s);
	assert_int_equal(s.pool_size, size);
	assert_int_equal(s.data_offset % (2 * MiB), 0);
	assert_true(s.data_offset >= POOL_TABLE_OFF + s.table_capacity * POOL_RECORD_SIZE);
	assert_int_equal(s.free_bytes[0], s.data_size);
	assert_int_equal(s.records_used, 0);
	assert_int_equal(s.table_capacity, 1024); /* 64 MiB / 64 KiB */

	struct pool_alloc_req req = {.size = 5000, .align = POOL_ALIGN_4K, .name = "alpha",
				     .uid = 1000, .gid = 100, .mode = 0640};
	assert_int_equal(pool_alloc(p, &req, &e), 0);
	assert_int_equal(e.length, 8192);
	pool_delete(&p);
	assert_null(p);
	pool_delete(&p); /* NULL is fine */

	assert_int_equal(pool_open_range(r, size, &noop_ops, &p), 0);
	assert_int_equal(pool_lookup(p, "alpha", &info), 0);
	assert_int_equal(info.id, e.id);
	assert_int_equal(info.offset, e.offset);
	assert_int_equal(info.length, 8192);
	assert_int_equal(info.uid, 1000);
	assert_int_equal(info.gid, 100);
	assert_int_equal(info.mode, 0640);
	assert_string_equal(info.name, "alpha");
	assert_int_equal(info.flags, 0);
	pool_get_stats(p, &s);
	assert_int_equal(s.records_used, 1);
	assert_int_equal(s.allocated_bytes, 8192);
	assert_int_equal(s.free_bytes[0] + s.allocated_bytes, s.data_size);
	pool_delete(&p);

	/* Unformatted range: clear error. */
	void *z = range_new(size);
	assert_int_equal(pool_open_range(z, size, &noop_ops, &p), -ENODATA);
	assert_non_null(strstr(pool_errormsg(), "superblock"));
	assert_int_equal(pool_format_range(z, 4 * MiB, &noop_ops, NULL), 0);
	assert_int_equal(pool_open_range(z, 1 * MiB, &noop_ops, &p), -EUCLEAN);
	assert_int_equal(pool_format_range(z, 1 * MiB, &noop_ops, NULL), -EINVAL);
	range_free(z, size);
	range_free(r, size);
}

static const char *tmpdir(void)
{
	const char *t = getenv("TMPDIR");
	return t && *t ? t : "/tmp";
}

/* Every byte of m in [from, to) is zero. */
static void assert_zero_after_format(const uint8_t *m, uint64_t from, uint64_t to)
{
	for (uint64_t i = from; i < to; i++)
		if (m[i])
			fail_msg("byte %llu of the data area is %#x after format", (unsigned long long)i,
				 m[i]);
}

/* No byte of what was there before a format can be granted: a file's data area (fully
 * allocated, as a daemon reserves it, or sparse) and a caller's range read as zeroes after, the
 * allocated file stays allocated, a range the caller vouches for is not touched. */
static void test_format_scrubs(void **state)
{
	char path[4096];
	struct pool *p = NULL;
	struct pool_stats st;
	struct stat sb;
	uint8_t *m;
	(void)state;

	for (int sparse = 0; sparse < 2; sparse++) {
		snprintf(path, sizeof(path), "%s/daxpool-test-XXXXXX", tmpdir());
		int fd = mkstemp(path);
		assert_true(fd >= 0);
		unlink(path);
		assert_int_equal(ftruncate(fd, 32 * MiB), 0);
		m = mmap(NULL, 32 * MiB, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
		assert_true(m != MAP_FAILED);
		if (sparse)
			memset(m + 20 * MiB, 0xab, 3 * MiB + 5); /* the rest is a hole */
		else
			memset(m, 0xab, 32 * MiB);
		assert_int_equal(msync(m, 32 * MiB, MS_SYNC), 0);
		assert_int_equal(pool_format_fd(fd, NULL), 0);
		assert_int_equal(pool_open_fd(fd, &p), 0);
		pool_get_stats(p, &st);
		pool_delete(&p);
		assert_zero_after_format(m, st.data_offset, 32 * MiB);
		assert_int_equal(fstat(fd, &sb), 0);
		if (!sparse)
			assert_true((uint64_t)sb.st_blocks * 512 >= 32 * MiB);
		munmap(m, 32 * MiB);
		close(fd);
	}

	/* A caller's range: overwritten where it is not zero; untouched with data_clean. */
	struct pool_format_params clean = { .data_clean = true };
	m = mmap(NULL, 16 * MiB, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	assert_true(m != MAP_FAILED);
	memset(m, 0x5a, 16 * MiB);
	assert_int_equal(pool_format_range(m, 16 * MiB, &pool_memory_fs_ops, &clean), 0);
	assert_int_equal(m[16 * MiB - 1], 0x5a);
	assert_int_equal(pool_format_range(m, 16 * MiB, &pool_memory_fs_ops, NULL), 0);
	assert_int_equal(pool_open_range(m, 16 * MiB, &pool_memory_fs_ops, &p), 0);
	pool_get_stats(p, &st);
	pool_delete(&p);
	assert_zero_after_format(m, st.data_offset, 16 * MiB);
	munmap(m, 16 * MiB);
}

static void test_file_persistence_pmem2(void **state)
{
	char path[4096];
	struct pool *p = NULL;
	struct pool_extent e1, e2;
	struct pool_record_info info;

	snprintf(path, sizeof(path), "%s/daxpool-test-XXXXXX", tmpdir());
	int fd = mkstemp(path);
	assert_true(fd >= 0);
	assert_int_equal(ftruncate(fd, 32 * MiB), 0);
	assert_int_equal(pool_format_fd(fd, NULL), 0);
	assert_int_equal(pool_open_fd(fd, &p), 0);
	assert_int_equal(alloc_simple(p, 4096, POOL_ALIGN_4K, "file-a", &e1), 0);
	assert_int_equal(alloc_simple(p, 2 * MiB, POOL_ALIGN_2M, NULL, &e2), 0);
	assert_int_equal(e2.offset % (2 * MiB), 0);
	assert_int_equal(pool_free(p, e1.id), 0);
	assert_int_equal(alloc_simple(p, 100, POOL_ALIGN_4K, "file-b", &e1), 0);
	pool_delete(&p);
	close(fd);

	/* Reopen through a new fd and mapping: everything comes from the file. */
	fd = open(path, O_RDWR);
	assert_true(fd >= 0);
	assert_int_equal(pool_check_fd(fd, false), POOL_CHECK_CLEAN);
	assert_int_equal(pool_open_fd(fd, &p), 0);
	assert_int_equal(pool_lookup(p, "file-a", &info), -ENOENT);
	assert_int_equal(pool_lookup(p, "file-b", &info), 0);
	assert_int_equal(info.offset, e1.offset);
	assert_int_equal(pool_get(p, e2.id, &info), 0);
	assert_int_equal(info.offset, e2.offset);
	assert_int_equal(info.length, 2 * MiB);
	assert_int_equal(info.align, 2 * MiB);
	pool_delete(&p);

	/* Damage superblock A through the file, repair through libpmem2, reopen clean. */
	uint8_t byte;
	assert_int_equal(pread(fd, &byte, 1, POOL_SB_A_OFF + SB_POOL_SIZE), 1);
	byte ^= 0x80;
	assert_int_equal(pwrite(fd, &byte, 1, POOL_SB_A_OFF + SB_POOL_SIZE), 1);
	assert_int_equal(pool_open_fd(fd, &p), POOL_OPEN_DEGRADED);
	pool_delete(&p);
	assert_int_equal(pool_check_fd(fd, false), POOL_CHECK_REPAIRABLE);
	assert_int_equal(pool_check_fd(fd, true), POOL_CHECK_REPAIRED);
	assert_int_equal(pool_check_fd(fd, false), POOL_CHECK_CLEAN);
	assert_int_equal(pool_open_fd(fd, &p), 0);
	assert_int_equal(pool_lookup(p, "file-b", &info), 0);
	pool_delete(&p);
	close(fd);
	unlink(path);
}

/* Every msync made in this process, libpmem2's included: the executable's definition takes
 * precedence over libc's for the shared libraries it loads. */
static unsigned msync_calls;

__attribute__((visibility("default"))) int msync(void *addr, size_t len, int flags)
{
	msync_calls++;
	return (int)syscall(SYS_msync, addr, len, flags);
}

/* Formats, opens and churns a pool on fd; returns the msync calls made by the pool. */
static unsigned churn_counting_msync(int fd)
{
	struct pool *p = NULL;
	struct pool_extent e;
	struct pool_record_info info;

	msync_calls = 0;
	assert_int_equal(pool_format_fd(fd, NULL), 0);
	assert_int_equal(pool_open_fd(fd, &p), 0);
	for (int i = 0; i < 16; i++) {
		assert_int_equal(alloc_simple(p, 4096, POOL_ALIGN_4K, NULL, &e), 0);
		assert_int_equal(pool_free(p, e.id), 0);
	}
	assert_int_equal(alloc_simple(p, 4096, POOL_ALIGN_4K, "kept", &e), 0);
	pool_delete(&p);
	unsigned n = msync_calls;
	/* Whatever the flushes were, a new mapping finds the pool as it was left. */
	assert_int_equal(pool_check_fd(fd, false), POOL_CHECK_CLEAN);
	assert_int_equal(pool_open_fd(fd, &p), 0);
	assert_int_equal(pool_lookup(p, "kept", &info), 0);
	assert_int_equal(info.offset, e.offset);
	pool_delete(&p);
	return n;
}

/* On a file system without a backing store (a memfd is on tmpfs) the pool makes no msync at
 * all: the page cache is the medium. On a disk file system libpmem2's msync stays. */
/* "Does this hold a pool?": either superblock copy's magic; a damaged pool still counts. */
static void test_probe(void **state)
{
	char path[4096];
	struct pool *p = NULL;
	uint8_t uuid[16], probed[16];
	static const uint8_t zero8[8];
	int fd;

	(void)state;
	snprintf(path, sizeof(path), "%s/daxpool-test-XXXXXX", tmpdir());
	fd = mkstemp(path);
	assert_true(fd >= 0);
	assert_int_equal(ftruncate(fd, 32 * MiB), 0);
	assert_int_equal(pool_probe_fd(fd, 0, probed), 0); /* zeroes: no pool */
	assert_int_equal(pool_format_fd(fd, NULL), 0);
	assert_int_equal(pool_open_fd(fd, &p), 0);
	assert_int_equal(pool_get_uuid(p, uuid), 0);
	pool_delete(&p);
	assert_int_equal(pool_probe_fd(fd, 0, probed), 1);
	assert_memory_equal(probed, uuid, 16);
	assert_int_equal(pool_probe_fd(fd, 2 * MiB, NULL), 1); /* a device's mapping unit */
	assert_int_equal(pwrite(fd, zero8, 8, POOL_SB_A_OFF), 8); /* copy A's magic gone */
	assert_int_equal(pool_probe_fd(fd, 0, probed), 1);
	assert_memory_equal(probed, uuid, 16);
	assert_int_equal(pwrite(fd, zero8, 8, POOL_SB_B_OFF), 8); /* both */
	assert_int_equal(pool_probe_fd(fd, 0, NULL), 0);
	close(fd);
	unlink(path);
}

static void test_memory_fs_no_msync(void **state)
{
	(void)state;
	int fd = memfd_create("daxpool-test-pool", MFD_CLOEXEC);
	assert_true(fd >= 0);
	assert_int_equal(fd_on_memory_fs(fd), 1);
	assert_int_equal(ftruncate(fd, 32 * MiB), 0);
	assert_int_equal(churn_counting_msync(fd), 0);
	close(fd);

	const char *dirs[] = {tmpdir(), "/var/tmp", "."};
	for (size_t i = 0; i < sizeof(dirs) / sizeof(dirs[0]); i++) {
		char path[4096];

		snprintf(path, sizeof(path), "%s/daxpool-test-XXXXXX", dirs[i]);
		fd = mkstemp(path);
		if (fd < 0)
			continue;
		unlink(path);
		if (fd_on_memory_fs(fd) == 0) {
			assert_int_equal(ftruncate(fd, 32 * MiB), 0);
			/* At least the format's, and several per operation. */
			unsigned n = churn_counting_msync(fd);
			print_message("%s: %u msync calls\n", dirs[i], n);
			assert_true(n > 16);
			close(fd);
			return;
		}
		close(fd);
	}
	print_message("no writable directory on a disk file system (TMPDIR, /var/tmp, .): the msync "
		      "half of this test was not run\n");
}

static void test_alignment(void **state)
{
	uint64_t size = 4 * GiB + 64 * MiB;
	void *r = range_new(size);
	struct pool *p = fresh(r, size, 256);
	struct pool_extent e;
	struct pool_alloc_req req = {.size = 1, .align = POOL_ALIGN_4K};

	assert_int_equal(alloc_simple(p, 1, POOL_ALIGN_4K, NULL, &e), 0);
	assert_int_equal(e.offset % 4096, 0);
	assert_int_equal(e.length, 4096);
	assert_int_equal(alloc_simple(p, 3 * MiB, POOL_ALIGN_2M, NULL, &e), 0);
	assert_int_equal(e.offset % (2 * MiB), 0);
	assert_int_equal(e.length, 4 * MiB);
	assert_int_equal(alloc_simple(p, 1, POOL_ALIGN_1G, NULL, &e), 0);
	assert_int_equal(e.offset % GiB, 0);
	assert_int_equal(e.length, GiB);
	assert_int_equal(alloc_simple(p, GiB + 1, POOL_ALIGN_1G, NULL, &e), 0);
	assert_int_equal(e.offset % GiB, 0);
	assert_int_equal(e.length, 2 * GiB);
	/* No whole 1G chunk left: refused with ENOSPC, not misaligned. */
	assert_int_equal(alloc_simple(p, 1, POOL_ALIGN_1G, NULL, &e), -ENOSPC);

	req.align = 8192;
	assert_int_equal(pool_alloc(p, &req, &e), -EINVAL);
	req.align = POOL_ALIGN_4K;
	req.size = 0;
	assert_int_equal(pool_alloc(p, &req, &e), -EINVAL);
	req.size = 4 * GiB;
	assert_int_equal(pool_alloc(p, &req, &e), -ENOSPC);
	req.size = 1;
	req.flags = 0x80;
	assert_int_equal(pool_alloc(p, &req, &e), -EINVAL);
	pool_delete(&p);

	/* A pool on a device with 2M alignment rounds 4K requests to 2M. */
	struct pool_format_params prm = {.device_align = POOL_ALIGN_2M};
	assert_int_equal(pool_format_range(r, 64 * MiB, &noop_ops, &prm), 0);
	assert_int_equal(pool_open_range(r, 64 * MiB, &noop_ops, &p), 0);
	assert_int_equal(alloc_simple(p, 10, POOL_ALIGN_4K, NULL, &e), 0);
	assert_int_equal(e.offset % (2 * MiB), 0);
	assert_int_equal(e.length, 2 * MiB);
	pool_delete(&p);
	range_free(r, size);
}

static void test_names(void **state)
{
	uint64_t size = 16 * MiB;
	void *r = range_new(size);
	struct pool *p = fresh(r, size, 0);
	struct pool_extent e, e2;
	struct pool_record_info info;
	char longname[300];

	assert_int_equal(alloc_simple(p, 4096, POOL_ALIGN_4K, "n1", &e), 0);
	assert_int_equal(alloc_simple(p, 4096, POOL_ALIGN_4K, "n1", &e2), -EEXIST);
	assert_int_equal(alloc_simple(p, 4096, POOL_ALIGN_4K, "", &e2), -EINVAL);
	memset(longname, 'x', 255);
	longname[255] = '\0';
	assert_int_equal(alloc_simple(p, 4096, POOL_ALIGN_4K, longname, &e2), 0);
	assert_int_equal(pool_lookup(p, longname, &info), 0);
	assert_int_equal(strlen(info.name), 255);
	longname[255] = 'y';
	longname[256] = '\0';
	assert_int_equal(alloc_simple(p, 4096, POOL_ALIGN_4K, longname, &e2), -EINVAL);
	assert_int_equal(pool_lookup(p, longname, &info), -EINVAL);

	struct pool_alloc_req anon = {.size = 1, .align = POOL_ALIGN_4K, .name = "x",
				      .flags = POOL_ALLOC_ANONYMOUS};
	assert_int_equal(pool_alloc(p, &anon, &e2), -EINVAL);

	assert_int_equal(pool_free(p, e.id), 0);
	assert_int_equal(pool_free(p, e.id), -ENOENT);
	assert_int_equal(pool_free(p, 1u << 30), -ENOENT);
	assert_int_equal(pool_lookup(p, "n1", &info), -ENOENT);
	assert_int_equal(alloc_simple(p, 4096, POOL_ALIGN_4K, "n1", &e2), 0);
	assert_int_equal(pool_lookup(p, "n1", &info), 0);
	assert_int_equal(info.id, e2.id);
	pool_delete(&p);
	range_free(r, size);
}

static int collect(const struct pool_record_info *info, void *ud)
{
	uint64_t *n = ud;
	(*n)++;
	return 0;
}

static int stop_at_first(const struct pool_record_info *info, void *ud)
{
	return 42;
}

static int append_name(const struct pool_record_info *info, void *ud)
{
	char *s = ud;
	strcat(s, info->name);
	strcat(s, ";");
	return 0;
}

/* Records by name prefix, in name order, through the name index. */
static void test_iterate_names(void **state)
{
	uint64_t size = 16 * MiB;
	void *r = range_new(size);
	struct pool *p = fresh(r, size, 0);
	struct pool_extent e;
	char out[512] = "";
	static const char *const names[] = {"b", "daxpool:badblock:2", "daxpool:x", "a",
					    "daxpool:badblock:10", "daxpoolz", "daxpool:badblock"};

	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		assert_int_equal(alloc_simple(p, 4096, POOL_ALIGN_4K, names[i], &e), 0);
	struct pool_alloc_req anon = {.size = 1, .align = POOL_ALIGN_4K, .flags = POOL_ALLOC_ANONYMOUS};
	assert_int_equal(pool_alloc(p, &anon, &e), 0);
	assert_int_equal(pool_iterate_names(p, "daxpool:badblock:", append_name, out), 0);
	assert_string_equal(out, "daxpool:badblock:10;daxpool:badblock:2;");
	out[0] = '\0';
	assert_int_equal(pool_iterate_names(p, "daxpool:", append_name, out), 0);
	assert_string_equal(out, "daxpool:badblock;daxpool:badblock:10;daxpool:badblock:2;daxpool:x;");
	out[0] = '\0';
	assert_int_equal(pool_iterate_names(p, "", append_name, out), 0);
	assert_string_equal(out, "a;b;daxpool:badblock;daxpool:badblock:10;daxpool:badblock:2;daxpool:x;daxpoolz;");
	out[0] = '\0';
	assert_int_equal(pool_iterate_names(p, "zz", append_name, out), 0);
	assert_string_equal(out, "");
	assert_int_equal(pool_iterate_names(p, "daxpool", stop_at_first, NULL), 42);
	/* A quarantined record gives its name up: it is not found by name any more. */
	struct pool_record_info info;
	assert_int_equal(pool_lookup(p, "daxpool:x", &info), 0);
	assert_int_equal(pool_quarantine(p, info.id), 0);
	out[0] = '\0';
	assert_int_equal(pool_iterate_names(p, "daxpool:x", append_name, out), 0);
	assert_string_equal(out, "");
	pool_delete(&p);
	range_free(r, size);
}

static void test_quarantine_anonymous_iterate(void **state)
{
	uint64_t size = 16 * MiB;
	void *r = range_new(size);
	struct pool *p = fresh(r, size, 0);
	struct pool_extent e, a1, a2, e2;
	struct pool_record_info info;
	struct pool_stats s;
	uint64_t n = 0;

	struct pool_alloc_req anon = {.size = 1, .align = POOL_ALIGN_4K, .flags = POOL_ALLOC_ANONYMOUS};
	assert_int_equal(pool_alloc(p, &anon, &a1), 0);
	assert_int_equal(pool_alloc(p, &anon, &a2), 0);
	assert_int_equal(alloc_simple(p, 8192, POOL_ALIGN_4K, "q", &e), 0);

	assert_int_equal(pool_quarantine(p, e.id), 0);
	assert_int_equal(pool_quarantine(p, e.id), -EALREADY);
	assert_int_equal(pool_free(p, e.id), -EBUSY);
	/* The name is free again, the extent is not. */
	assert_int_equal(alloc_simple(p, 8192, POOL_ALIGN_4K, "q", &e2), 0);
	assert_true(e2.offset + e2.length <= e.offset || e.offset + e.length <= e2.offset);
	assert_int_equal(pool_release(p, e2.id), -EINVAL);

	pool_delete(&p);
	assert_int_equal(pool_open_range(r, size, &noop_ops, &p), 0);
	pool_get_stats(p, &s);
	assert_int_equal(s.records_used, 4);
	assert_int_equal(s.records_anonymous, 2);
	assert_int_equal(s.records_quarantined, 1);
	assert_int_equal(pool_iterate(p, POOL_REC_ANONYMOUS, collect, &n), 0);
	assert_int_equal(n, 2);
	n = 0;
	assert_int_equal(pool_iterate(p, POOL_REC_QUARANTINED, collect, &n), 0);
	assert_int_equal(n, 1);
	n = 0;
	assert_int_equal(pool_iterate(p, 0, collect, &n), 0);
	assert_int_equal(n, 4);
	assert_int_equal(pool_iterate(p, 0, stop_at_first, NULL), 42);
	assert_int_equal(pool_get(p, e.id, &info), 0);
	assert_true(info.flags & POOL_REC_QUARANTINED);
	assert_string_equal(info.name, "");

	assert_int_equal(pool_release(p, e.id), 0);
	assert_int_equal(pool_free(p, a1.id), 0);
	assert_int_equal(pool_free(p, a2.id), 0);
	assert_int_equal(pool_free(p, e2.id), 0);
	pool_get_stats(p, &s);
	assert_int_equal(s.records_used, 0);
	assert_int_equal(s.free_extents, 1);
	assert_int_equal(s.free_bytes[0], s.data_size);
	pool_delete(&p);
	range_free(r, size);
}

static void test_stats(void **state)
{
	uint64_t size = 2 * GiB + 256 * MiB;
	void *r = range_new(size);
	struct pool *p = fresh(r, size, 128);
	struct pool_stats s0, s;
	struct pool_extent e[4];

	pool_get_stats(p, &s0);
	/* data starts at 2M; 1G chunks whole in [2M, 2G+256M): just [1G, 2G). */
	assert_int_equal(s0.data_offset, 2 * MiB);
	assert_int_equal(s0.free_bytes[2], GiB);
	assert_int_equal(s0.largest_free[2], GiB);
	assert_int_equal(s0.free_bytes[1], s0.data_size);
	assert_int_equal(s0.largest_free[0], s0.data_size);
	assert_true(s0.fragmentation == 0.0);

	assert_int_equal(alloc_simple(p, 4096, POOL_ALIGN_4K, NULL, &e[0]), 0);
	assert_int_equal(alloc_simple(p, 4096, POOL_ALIGN_4K, NULL, &e[1]), 0);
	assert_int_equal(alloc_simple(p, 4096, POOL_ALIGN_4K, NULL, &e[2]), 0);
	assert_int_equal(pool_free(p, e[1].id), 0);
	pool_get_stats(p, &s);
	assert_int_equal(s.allocated_bytes, 8192);
	assert_int_equal(s.free_bytes[0], s0.data_size - 8192);
	assert_int_equal(s.free_bytes[2], GiB); /* small ones did not touch the 1G chunk */
	assert_int_equal(s.free_extents, 2);
	assert_true(s.fragmentation > 0.0 && s.fragmentation < 0.01);
	assert_true(s.dram_index_bytes > 0);
	pool_delete(&p);
	range_free(r, size);
}

/* Adversarial patterns: small and 2M allocations must not eat whole 1G chunks while other space
 * exists, and freed 1G chunks must come back whole. */
static void test_1g_preservation(void **state)
{
	uint64_t size = 4 * GiB;
	void *r = range_new(size);
	struct pool *p = fresh(r, size, 8192);
	struct pool_stats s0, s;
	struct pool_extent e, big[3];
	static struct pool_extent small[4096];
	unsigned ns = 0;

	pool_get_stats(p, &s0);
	assert_int_equal(s0.free_bytes[2], 3 * GiB); /* [1G,2G) [2G,3G) [3G,4G) */

	/* 1. Interleave: 1G, 4K, 1G, 4K, 2M... then free the 1G ones. */
	for (int i = 0; i < 3; i++) {
		assert_int_equal(alloc_simple(p, GiB, POOL_ALIGN_1G, NULL, &big[i]), 0);
		assert_int_equal(alloc_simple(p, 4096, POOL_ALIGN_4K, NULL, &small[ns++]), 0);
		assert_int_equal(alloc_simple(p, 2 * MiB, POOL_ALIGN_2M, NULL, &small[ns++]), 0);
	}
	assert_int_equal(alloc_simple(p, GiB, POOL_ALIGN_1G, NULL, &e), -ENOSPC);
	for (int i = 0; i < 3; i++)
		assert_int_equal(pool_free(p, big[i].id), 0);
	pool_get_stats(p, &s);
	assert_int_equal(s.free_bytes[2], 3 * GiB);

	/* 2. Many small allocations that fit in the head fragment [2M+..., 1G): no 1G chunk broken. */
	for (int i = 0; i < 2000; i++) {
		uint64_t sz = (uint64_t)((i * 7919) % 97 + 1) * 4096;
		uint64_t al = i % 10 == 0 ? POOL_ALIGN_2M : POOL_ALIGN_4K;
		assert_int_equal(alloc_simple(p, sz, al, NULL, &small[ns++]), 0);
		assert_true(small[ns - 1].offset < GiB);
	}
	pool_get_stats(p, &s);
	assert_int_equal(s.free_bytes[2], 3 * GiB);

	/* 3. Churn: free every other small one, allocate again: holes get reused, 1G chunks stay. */
	for (unsigned i = 0; i < ns; i += 2)
		assert_int_equal(pool_free(p, small[i].id), 0);
	for (unsigned i = 0; i < ns; i += 2)
		assert_int_equal(alloc_simple(p, 4096, POOL_ALIGN_4K, NULL, &small[i]), 0);
	pool_get_stats(p, &s);
	assert_int_equal(s.free_bytes[2], 3 * GiB);

	/* 4. Fill the head fragment completely, then go on: exactly one 1G chunk gets split, and
	 * further small ones are packed into it rather than into another chunk. */
	while (1) {
		assert_int_equal(alloc_simple(p, 4 * MiB, POOL_ALIGN_4K, NULL, &e), 0);
		if (e.offset >= GiB)
			break;
	}
	pool_get_stats(p, &s);
	assert_int_equal(s.free_bytes[2], 2 * GiB);
	for (int i = 0; i < 200; i++) {
		assert_int_equal(alloc_simple(p, 2 * MiB, POOL_ALIGN_2M, NULL, &e), 0);
		assert_int_equal(alloc_simple(p, 12288, POOL_ALIGN_4K, NULL, &e), 0);
	}
	pool_get_stats(p, &s);
	assert_int_equal(s.free_bytes[2], 2 * GiB);
	assert_int_equal(alloc_simple(p, GiB, POOL_ALIGN_1G, NULL, &big[0]), 0);
	assert_int_equal(alloc_simple(p, GiB, POOL_ALIGN_1G, NULL, &big[1]), 0);
	pool_delete(&p);
	range_free(r, size);
}

/* The smallest level-2 extent is a bare 1G chunk, another level-2 extent has room beside its
 * chunk: a small request must go there, not split the bare chunk. */
static void test_1g_preservation_fringe(void **state)
{
	uint64_t size = 4 * GiB;
	void *r = range_new(size);
	struct pool *p = fresh(r, size, 256);
	struct pool_extent f1, g1, s1, e;
	struct pool_stats s;

	assert_int_equal(alloc_simple(p, GiB - 2 * MiB, POOL_ALIGN_4K, NULL, &f1), 0);
	assert_int_equal(f1.offset, 2 * MiB);
	assert_int_equal(alloc_simple(p, GiB, POOL_ALIGN_1G, NULL, &g1), 0);
	assert_int_equal(g1.offset, GiB);
	assert_int_equal(alloc_simple(p, 4096, POOL_ALIGN_4K, NULL, &s1), 0); /* must split one */
	assert_int_equal(pool_free(p, g1.id), 0);
	pool_get_stats(p, &s);
	assert_int_equal(s.free_bytes[2], 2 * GiB);
	for (int i = 0; i < 100; i++) {
		assert_int_equal(alloc_simple(p, 4096, POOL_ALIGN_4K, NULL, &e), 0);
		assert_int_equal(alloc_simple(p, 2 * MiB, POOL_ALIGN_2M, NULL, &e), 0);
	}
	pool_get_stats(p, &s);
	assert_int_equal(s.free_bytes[2], 2 * GiB);
	pool_delete(&p);
	range_free(r, size);
}

/* Random churn of small allocations whose live total stays far below the space outside the 1G
 * chunks: no whole 1G chunk may ever be split. With 2M-aligned ones mixed in, at most one. */
static void churn_1g(bool with_2m, uint64_t max_broken)
{
	uint64_t size = 4 * GiB;
	void *r = range_new(size);
	struct pool *p = fresh(r, size, 16384);
	static struct pool_extent live[12000];
	unsigned nlive = 0;
	uint64_t live_bytes = 0, seed = with_2m ? 7 : 3;
	struct pool_stats s;

	for (int step = 0; step < 60000; step++) {
		seed = seed * 6364136223846793005ULL + 1442695040888963407ULL;
		unsigned x = (unsigned)(seed >> 33);
		bool do_alloc = nlive == 0 || (nlive < 12000 && live_bytes < 200 * MiB && x % 3 != 0);
		if (do_alloc) {
			bool big = with_2m && x % 16 == 0;
			uint64_t al = big ? POOL_ALIGN_2M : POOL_ALIGN_4K;
			uint64_t sz = big ? 2 * MiB : (uint64_t)((x >> 8) % 16 + 1) * 4096;
			assert_int_equal(alloc_simple(p, sz, al, NULL, &live[nlive]), 0);
			live_bytes += live[nlive].length;
			nlive++;
		} else {
			unsigned i = (x >> 4) % nlive;
			assert_int_equal(pool_free(p, live[i].id), 0);
			live_bytes -= live[i].length;
			live[i] = live[--nlive];
		}
		if (step % 1000 == 0) {
			pool_get_stats(p, &s);
			assert_true(s.free_bytes[2] >= 3 * GiB - max_broken * GiB);
		}
	}
	pool_get_stats(p, &s);
	print_message("churn%s: %u live, %llu MiB, %llu free extents, %llu whole 1G chunks free\n",
		      with_2m ? " with 2M" : "", nlive, (unsigned long long)(live_bytes / MiB),
		      (unsigned long long)s.free_extents, (unsigned long long)(s.free_bytes[2] / GiB));
	pool_delete(&p);
	range_free(r, size);
}

static void test_1g_preservation_churn(void **state)
{
	churn_1g(false, 0);
	churn_1g(true, 1);
}

/* Every structure: a flipped bit is detected and reported, never "repaired" into data loss. */
static void test_corruption(void **state)
{
	uint64_t size = 16 * MiB;
	uint8_t *r = range_new(size);
	struct pool *p = fresh(r, size, 0);
	struct pool_extent e;
	assert_int_equal(alloc_simple(p, 4096, POOL_ALIGN_4K, "c1", &e), 0);
	pool_delete(&p);

	/* Superblock A: opens degraded from B; check reports, repair fixes, then clean. */
	r[POOL_SB_A_OFF + SB_DATA_SIZE] ^= 0x10;
	assert_int_equal(pool_open_range(r, size, &noop_ops, &p), POOL_OPEN_DEGRADED);
	assert_non_null(strstr(pool_errormsg(), "superblock copy A"));
	pool_delete(&p);
	assert_int_equal(pool_check_range(r, size, &noop_ops, false), POOL_CHECK_REPAIRABLE);
	assert_int_equal(pool_check_range(r, size, &noop_ops, true), POOL_CHECK_REPAIRED);
	assert_int_equal(pool_check_range(r, size, &noop_ops, false), POOL_CHECK_CLEAN);
	assert_int_equal(pool_open_range(r, size, &noop_ops, &p), 0);
	pool_delete(&p);

	/* Superblock B likewise. */
	r[POOL_SB_B_OFF + SB_UUID] ^= 1;
	assert_int_equal(pool_open_range(r, size, &noop_ops, &p), POOL_OPEN_DEGRADED);
	pool_delete(&p);
	assert_int_equal(pool_check_range(r, size, &noop_ops, true), POOL_CHECK_REPAIRED);

	/* Both: refused, damaged, nothing written. */
	r[POOL_SB_A_OFF + SB_TABLE_CAP] ^= 1;
	r[POOL_SB_B_OFF + SB_TABLE_CAP] ^= 2;
	assert_int_equal(pool_open_range(r, size, &noop_ops, &p), -EUCLEAN);
	assert_non_null(strstr(pool_errormsg(), "both superblock"));
	assert_int_equal(pool_check_range(r, size, &noop_ops, true), POOL_CHECK_DAMAGED);
	r[POOL_SB_A_OFF + SB_TABLE_CAP] ^= 1;
	r[POOL_SB_B_OFF + SB_TABLE_CAP] ^= 2;
	assert_int_equal(pool_check_range(r, size, &noop_ops, false), POOL_CHECK_CLEAN);

	/* A record: open refuses (its extent would be lost or doubly owned), check says damaged and
	 * does not touch it even with repair. */
	uint8_t *rec = r + POOL_TABLE_OFF + e.id * POOL_RECORD_SIZE;
	rec[REC_LENGTH] ^= 0x40;
	assert_int_equal(pool_open_range(r, size, &noop_ops, &p), -EUCLEAN);
	assert_non_null(strstr(pool_errormsg(), "checksum"));
	assert_int_equal(pool_check_range(r, size, &noop_ops, true), POOL_CHECK_DAMAGED);
	assert_int_equal(rec[REC_LENGTH] & 0x40, 0x40);
	rec[REC_LENGTH] ^= 0x40;
	/* A flipped bit in an empty record. */
	rec[POOL_RECORD_SIZE + 100] ^= 1;
	assert_int_equal(pool_open_range(r, size, &noop_ops, &p), -EUCLEAN);
	rec[POOL_RECORD_SIZE + 100] ^= 1;
	assert_int_equal(pool_check_range(r, size, &noop_ops, false), POOL_CHECK_CLEAN);

	/* The log: a stray commit mark with a valid body is repairable (replay is idempotent). */
	uint8_t *log = r + POOL_LOG_OFF;
	log[LOG_COMMIT] ^= 0x4;
	assert_int_equal(pool_open_range(r, size, &noop_ops, &p), -EUCLEAN);
	assert_non_null(strstr(pool_errormsg(), "log"));
	assert_int_equal(pool_check_range(r, size, &noop_ops, false), POOL_CHECK_REPAIRABLE);
	assert_int_equal(pool_check_range(r, size, &noop_ops, true), POOL_CHECK_REPAIRED);
	assert_int_equal(pool_open_range(r, size, &noop_ops, &p), 0);
	struct pool_record_info info;
	assert_int_equal(pool_lookup(p, "c1", &info), 0);
	pool_delete(&p);
	/* Commit mark set and body bad: damaged. */
	uint64_t g = 0;
	memcpy(&g, log + LOG_GENERATION, 8);
	memcpy(log + LOG_COMMIT, &g, 8);
	log[POOL_LOG_ENTRIES_OFF + 70] ^= 1;
	assert_int_equal(pool_open_range(r, size, &noop_ops, &p), -EUCLEAN);
	assert_int_equal(pool_check_range(r, size, &noop_ops, true), POOL_CHECK_DAMAGED);
	log[POOL_LOG_ENTRIES_OFF + 70] ^= 1;
	/* Fixed body, commit equal to generation: a legitimately committed op; open replays it. */
	assert_int_equal(pool_check_range(r, size, &noop_ops, false), POOL_CHECK_REPAIRABLE);
	assert_int_equal(pool_open_range(r, size, &noop_ops, &p), 0);
	pool_delete(&p);
	assert_int_equal(pool_check_range(r, size, &noop_ops, false), POOL_CHECK_CLEAN);
	/* An uncommitted torn body is not damage. */
	log[POOL_LOG_ENTRIES_OFF + 70] ^= 1;
	assert_int_equal(pool_check_range(r, size, &noop_ops, false), POOL_CHECK_CLEAN);

	/* Two records overlapping (valid checksums: a bug, not a flip) are reported. */
	assert_int_equal(pool_open_range(r, size, &noop_ops, &p), 0);
	struct pool_extent e2;
	assert_int_equal(alloc_simple(p, 4096, POOL_ALIGN_4K, "c2", &e2), 0);
	pool_delete(&p);
	struct pool_record rc;
	const char *why;
	assert_int_equal(rec_decode(r + POOL_TABLE_OFF + e2.id * POOL_RECORD_SIZE, &rc, &why), 0);
	rc.offset = e.offset;
	rec_encode(r + POOL_TABLE_OFF + e2.id * POOL_RECORD_SIZE, &rc);
	assert_int_equal(pool_open_range(r, size, &noop_ops, &p), -EUCLEAN);
	assert_non_null(strstr(pool_errormsg(), "overlap"));
	assert_int_equal(pool_check_range(r, size, &noop_ops, true), POOL_CHECK_DAMAGED);
	/* Same name twice. */
	rc.offset = e2.offset;
	memcpy(rc.name, "c1", 3);
	rec_encode(r + POOL_TABLE_OFF + e2.id * POOL_RECORD_SIZE, &rc);
	assert_int_equal(pool_open_range(r, size, &noop_ops, &p), -EUCLEAN);
	assert_non_null(strstr(pool_errormsg(), "same name"));

	/* Format version from the future (checksum valid): clear error. */
	assert_int_equal(pool_format_range(r, size, &noop_ops, NULL), 0);
	for (unsigned off = POOL_SB_A_OFF; off <= POOL_SB_B_OFF; off += POOL_SB_B_OFF) {
		r[off + SB_VERSION] = 9;
		uint64_t c = pool_checksum(r + off, SB_CHECKSUM);
		memcpy(r + off + SB_CHECKSUM, &c, 8);
	}
	assert_int_equal(pool_open_range(r, size, &noop_ops, &p), -EPROTONOSUPPORT);
	range_free(r, size);
}

/* Out of memory at every allocation site: -ENOMEM, the pool unchanged, nothing leaked (ASan and
 * valgrind runs check the leaks). */
static void test_enomem_walk(void **state)
{
	uint64_t size = 16 * MiB;
	uint8_t *r = range_new(size);
	struct pool *p = fresh(r, size, 64);
	struct pool_extent e, keep[8];

	/* Make a fragmented state so alloc splits and free does not coalesce. */
	for (int i = 0; i < 8; i++)
		assert_int_equal(alloc_simple(p, 4096, POOL_ALIGN_4K, NULL, &keep[i]), 0);
	for (int i = 0; i < 8; i += 2)
		assert_int_equal(pool_free(p, keep[i].id), 0);
	pool_delete(&p);

	uint8_t *before = malloc(size);
	memcpy(before, r, POOL_TABLE_OFF + 64 * POOL_RECORD_SIZE);
	unsigned sites = 0;
	for (unsigned long n = 1;; n++) {
		struct pool_stats s0, s1;
		pool_test_fail_alloc_at(n);
		int rc = pool_open_range(r, size, &noop_ops, &p);
		if (rc == -ENOMEM) {
			sites++;
			assert_null(p);
			continue;
		}
		assert_int_equal(rc, 0);
		pool_get_stats(p, &s0);
		/* Countdown continues into the operations: fail each site of alloc, free. */
		rc = alloc_simple(p, 8192, POOL_ALIGN_4K, "walk", &e);
		if (rc == -ENOMEM) {
			sites++;
			pool_get_stats(p, &s1);
			assert_memory_equal(&s0, &s1, sizeof(s0));
			assert_memory_equal(before, r, POOL_TABLE_OFF + 64 * POOL_RECORD_SIZE);
			pool_delete(&p);
			continue;
		}
		assert_int_equal(rc, 0);
		pool_get_stats(p, &s0);
		rc = pool_free(p, keep[1].id);
		if (rc == -ENOMEM) {
			sites++;
			pool_get_stats(p, &s1);
			assert_memory_equal(&s0, &s1, sizeof(s0));
			struct pool_record_info info;
			assert_int_equal(pool_get(p, keep[1].id, &info), 0);
			assert_int_equal(pool_free(p, e.id), 0); /* back to "before" */
			pool_delete(&p);
			continue;
		}
		assert_int_equal(rc, 0);
		pool_test_fail_alloc_at(0);
		pool_delete(&p);
		break;
	}
	pool_test_fail_alloc_at(0);
	/* open: refs, free slots, pool struct, index nodes...; alloc: spare, name; free: spare */
	assert_true(sites >= 6);
	/* pool_check: -ENOMEM at every site, and the range untouched. */
	memcpy(before, r, POOL_TABLE_OFF + 64 * POOL_RECORD_SIZE);
	for (unsigned long n = 1;; n++) {
		pool_test_fail_alloc_at(n);
		int rc = pool_check_range(r, size, &noop_ops, true);
		assert_memory_equal(before, r, POOL_TABLE_OFF + 64 * POOL_RECORD_SIZE);
		if (rc == -ENOMEM) {
			sites++;
			continue;
		}
		assert_int_equal(rc, POOL_CHECK_CLEAN);
		break;
	}
	pool_test_fail_alloc_at(0);
	print_message("ENOMEM walk covered %u failing allocation points\n", sites);
	free(before);
	range_free(r, size);
}

/* Random alloc/free against a model; reopen at intervals must rebuild an identical index. */
static void test_random_model(void **state)
{
	uint64_t size = 512 * MiB;
	void *r = range_new(size);
	struct pool *p = fresh(r, size, 4096);
	static struct pool_extent live[3000];
	unsigned nlive = 0;
	uint64_t seed = 12345;

	for (int step = 0; step < 20000; step++) {
		seed = seed * 6364136223846793005ULL + 1442695040888963407ULL;
		unsigned x = (unsigned)(seed >> 33);
		if (nlive < 3000 && (x % 3 != 0 || nlive == 0)) {
			uint64_t al = x % 50 == 0 ? POOL_ALIGN_2M : POOL_ALIGN_4K;
			uint64_t sz = (uint64_t)(x % 64 + 1) * 4096;
			int rc = alloc_simple(p, sz, al, NULL, &live[nlive]);
			if (rc == -ENOSPC)
				continue;
			assert_int_equal(rc, 0);
			assert_int_equal(live[nlive].offset % al, 0);
			nlive++;
		} else {
			unsigned i = x % nlive;
			assert_int_equal(pool_free(p, live[i].id), 0);
			live[i] = live[--nlive];
		}
		if (step % 2500 == 0) {
			struct pool_stats s0, s1;
			pool_get_stats(p, &s0);
			pool_delete(&p);
			/* reopen validates: no overlap, everything inside the data area */
			assert_int_equal(pool_open_range(r, size, &noop_ops, &p), 0);
			pool_get_stats(p, &s1);
			assert_int_equal(s0.records_used, s1.records_used);
			assert_int_equal(s0.free_bytes[0], s1.free_bytes[0]);
			assert_int_equal(s0.free_bytes[1], s1.free_bytes[1]);
			assert_int_equal(s0.free_extents, s1.free_extents);
			assert_int_equal(s1.free_bytes[0] + s1.allocated_bytes, s1.data_size);
		}
	}
	pool_delete(&p);
	range_free(r, size);
}

/* Random bit flips anywhere in the metadata: open and check never crash (ASan/valgrind runs),
 * either refuse with a message or give a pool whose invariants hold; nothing is silently lost:
 * when open succeeds, the live records are exactly the ones written. */
static void test_random_bitflips(void **state)
{
	uint64_t size = 8 * MiB;
	uint8_t *r = range_new(size);
	struct pool *p = fresh(r, size, 64);
	struct pool_extent e;
	struct pool_stats s0;
	uint64_t meta = POOL_TABLE_OFF + 64 * POOL_RECORD_SIZE;
	uint64_t seed = 42;
	unsigned refused = 0, degraded = 0, fine = 0;

	for (int i = 0; i < 20; i++) {
		char name[16];
		snprintf(name, sizeof(name), "bf%d", i);
		assert_int_equal(alloc_simple(p, 4096 * (i + 1), POOL_ALIGN_4K, i % 3 ? name : NULL, &e), 0);
	}
	assert_int_equal(pool_free(p, 3), 0);
	pool_get_stats(p, &s0);
	pool_delete(&p);
	uint8_t *pristine = malloc(meta);
	memcpy(pristine, r, meta);

	for (int it = 0; it < 3000; it++) {
		seed = seed * 6364136223846793005ULL + 1442695040888963407ULL;
		/* Half the flips in the superblocks and log header, where they are most interesting. */
		uint64_t span = it % 2 ? meta : POOL_LOG_OFF + 128;
		uint64_t bit = (seed >> 11) % (span * 8);
		memcpy(r, pristine, meta);
		r[bit / 8] ^= (uint8_t)(1u << (bit % 8));
		int rc = pool_open_range(r, size, &noop_ops, &p);
		if (rc < 0) {
			assert_true(rc == -EUCLEAN || rc == -ENODATA || rc == -EPROTONOSUPPORT);
			assert_true(strlen(pool_errormsg()) > 0);
			assert_null(p);
			int c = pool_check_range(r, size, &noop_ops, false);
			assert_true(c == POOL_CHECK_DAMAGED || c == POOL_CHECK_REPAIRABLE || c == -ENODATA);
			refused++;
			continue;
		}
		struct pool_stats s;
		pool_get_stats(p, &s);
		assert_int_equal(s.records_used, s0.records_used);
		assert_int_equal(s.allocated_bytes, s0.allocated_bytes);
		assert_int_equal(s.free_bytes[0] + s.allocated_bytes, s.data_size);
		pool_delete(&p);
		if (rc == POOL_OPEN_DEGRADED) {
			degraded++;
			assert_int_equal(pool_check_range(r, size, &noop_ops, true), POOL_CHECK_REPAIRED);
		} else {
			fine++; /* flips in unused bytes: padding, an idle log body */
		}
		assert_int_equal(pool_check_range(r, size, &noop_ops, false), POOL_CHECK_CLEAN);
	}
	print_message("3000 bit flips: %u refused, %u degraded+repaired, %u harmless\n", refused,
		      degraded, fine);
	free(pristine);
	range_free(r, size);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_format_open_roundtrip),
		cmocka_unit_test(test_file_persistence_pmem2),
		cmocka_unit_test(test_probe),
		cmocka_unit_test(test_format_scrubs),
		cmocka_unit_test(test_memory_fs_no_msync),
		cmocka_unit_test(test_alignment),
		cmocka_unit_test(test_names),
		cmocka_unit_test(test_quarantine_anonymous_iterate),
		cmocka_unit_test(test_iterate_names),
		cmocka_unit_test(test_stats),
		cmocka_unit_test(test_1g_preservation),
		cmocka_unit_test(test_1g_preservation_fringe),
		cmocka_unit_test(test_1g_preservation_churn),
		cmocka_unit_test(test_corruption),
		cmocka_unit_test(test_enomem_walk),
		cmocka_unit_test(test_random_model),
		cmocka_unit_test(test_random_bitflips),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
