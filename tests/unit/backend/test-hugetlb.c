/*
 * The emulated backend on hugetlbfs, for real: this test reserves huge pages and mounts hugetlbfs
 * itself (root only; exit 77 with the reason otherwise), runs the cases in a child process, and
 * always unmounts and gives the pages back in the parent, whatever the child did.
 *
 * What it proves: 2M (and, when the kernel grants 1G pages, 1G) pools are created, reserved up
 * front, refused on the wrong mount, survive a "daemon restart", and a client mapping of a slice
 * through the backend fd takes PMD-sized (PUD-sized) faults — counted with getrusage.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <setjmp.h>
#include <stdbool.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <signal.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "backend.h"
#include "faults.h"
#include "hugepages.h"
#include "macro.h"
#include "pool.h"

#define MiB (UINT64_C(1) << 20)
#define GiB (UINT64_C(1) << 30)
#define PAGES_2M 72 /* a 128 MiB pool (64) and slack */

static char tmpdir[] = "/tmp/daxpool-hugetlb-XXXXXX";
static char mnt2m[300], mnt1g[300];
static long got_1g;	      /* 1G pages the kernel granted us: 0, 1 or 2 */
static const char *why_no_1g; /* printed when 1G cases skip */

static void test_2m_pool_faults_restart(void **state)
{
	char path[400];
	snprintf(path, sizeof(path), "%s/pool", mnt2m);
	struct backend_config cfg = {.kind = BACKEND_EMULATED, .isolation = BACKEND_ISOLATION_SHARED, .file_path = path,
				     .size = 128 * MiB, .page_size = 2 * MiB, .create = true};
	struct backend *b = NULL;
	struct pool *pool = NULL;
	struct backend_pool_info info;
	struct pool_extent ext;

	assert_int_equal(backend_open(&cfg, &b), 0);
	assert_int_equal(backend_alignment(b), 2 * MiB);
	assert_false(backend_supports_map_sync(b));
	assert_int_equal(backend_persistence(b), BACKEND_PERSIST_NONE);
	/* Pages are reserved at open, not at first touch: all 64 are taken from the free pool. */
	struct stat st;
	assert_int_equal(fstat(backend_fd(b), &st), 0);
	assert_int_equal((uint64_t)st.st_blocks * 512, 128 * MiB);

	assert_int_equal(backend_open_pool(b, true, &pool, &info), 0);
	assert_true(info.formatted);
	struct pool_stats ps;
	pool_get_stats(pool, &ps);
	assert_int_equal(ps.device_align, 2 * MiB);
	/* Even a 4K request is placed on a 2M boundary: a hugetlbfs file maps only there. */
	struct pool_alloc_req small = {.size = 4096, .align = POOL_ALIGN_4K, .name = "small"};
	assert_int_equal(pool_alloc(pool, &small, &ext), 0);
	assert_int_equal(ext.offset % (2 * MiB), 0);
	assert_int_equal(ext.length, 2 * MiB);
	struct pool_alloc_req req = {.size = 64 * MiB, .align = POOL_ALIGN_2M, .name = "slice"};
	assert_int_equal(pool_alloc(pool, &req, &ext), 0);

	/* A client maps the slice through the fd it was passed. */
	char *addr = mmap(NULL, ext.length, PROT_READ | PROT_WRITE, MAP_SHARED, backend_fd(b),
			  (off_t)ext.offset);
	assert_true(addr != MAP_FAILED);
	long faults = faults_touch(addr, ext.length);
	printf("# 2M hugetlbfs: %ld minor faults touching 64 MiB (4K pages would take 16384)\n",
	       faults);
	if (faults_meaningful())
		assert_true(faults >= 32 && faults <= 32 + 16);
	memcpy(addr, "persisted", 10);
	munmap(addr, ext.length);
	pool_delete(&pool);
	backend_delete(&b);

	/* Restart: same pool, same record, same data. */
	cfg.create = false;
	assert_int_equal(backend_open(&cfg, &b), 0);
	assert_int_equal(backend_open_pool(b, false, &pool, NULL), 0);
	uint8_t uuid[16];
	assert_int_equal(backend_uuid(b, uuid), 0);
	assert_memory_equal(uuid, info.uuid, 16);
	struct pool_record_info ri;
	assert_int_equal(pool_lookup(pool, "slice", &ri), 0);
	assert_int_equal(ri.offset, ext.offset);
	addr = mmap(NULL, ri.length, PROT_READ, MAP_SHARED, backend_fd(b), (off_t)ri.offset);
	assert_true(addr != MAP_FAILED);
	assert_string_equal(addr, "persisted");
	munmap(addr, ri.length);
	pool_delete(&pool);
	backend_delete(&b);

	/* A different size is refused, and the file is untouched. */
	cfg.size = 64 * MiB;
	assert_int_equal(backend_open(&cfg, &b), -EINVAL);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal((uint64_t)st.st_size, 128 * MiB);
	assert_int_equal(unlink(path), 0);
}

static void test_2m_enospc(void **state)
{
	char path[400];
	long nfree = hugepages_read(2 * MiB, "free_hugepages");
	snprintf(path, sizeof(path), "%s/toobig", mnt2m);
	struct backend_config cfg = {.kind = BACKEND_EMULATED, .isolation = BACKEND_ISOLATION_SHARED, .file_path = path,
				     .size = (uint64_t)(nfree + 8) * 2 * MiB,
				     .page_size = 2 * MiB, .create = true};
	struct backend *b = NULL;

	assert_int_equal(backend_open(&cfg, &b), -ENOSPC);
	printf("# %s\n", backend_errormsg());
	assert_non_null(strstr(backend_errormsg(), "huge pages"));
	assert_non_null(strstr(backend_errormsg(), "nr_hugepages"));
	/* The file it created is gone again, and no page stays taken. */
	assert_int_equal(access(path, F_OK), -1);
	assert_int_equal(hugepages_read(2 * MiB, "free_hugepages"), nfree);
}

static void test_wrong_mount(void **state)
{
	char path[400];
	struct backend *b = NULL;
	snprintf(path, sizeof(path), "%s/wrong", mnt2m);
	struct backend_config cfg = {.kind = BACKEND_EMULATED, .isolation = BACKEND_ISOLATION_SHARED, .file_path = path,
				     .size = 2 * GiB, .page_size = GiB, .create = true};

	assert_int_equal(backend_open(&cfg, &b), -EINVAL);
	printf("# %s\n", backend_errormsg());
	assert_non_null(strstr(backend_errormsg(), "2097152-byte pages, but 1G pages"));
	assert_int_equal(access(path, F_OK), -1);

	cfg.page_size = 4096;
	cfg.size = 4 * MiB;
	assert_int_equal(backend_open(&cfg, &b), -EINVAL);
	assert_non_null(strstr(backend_errormsg(), "4K pages were requested"));
	assert_int_equal(access(path, F_OK), -1);

	if (got_1g > 0) {
		snprintf(path, sizeof(path), "%s/wrong", mnt1g);
		cfg.page_size = 2 * MiB;
		assert_int_equal(backend_open(&cfg, &b), -EINVAL);
		assert_non_null(strstr(backend_errormsg(), "but 2M pages"));
		assert_int_equal(access(path, F_OK), -1);
	}
	assert_null(b);
}

static void test_1g(void **state)
{
	char path[400];
	struct backend *b = NULL;
	struct pool *pool = NULL;

	if (got_1g == 0) {
		printf("# skipping 1G: %s\n", why_no_1g);
		skip();
	}
	/* One page: the backend and the fault size. A pool needs two (its metadata takes the
	 * first 1G-aligned unit), tested when the kernel granted them. */
	snprintf(path, sizeof(path), "%s/one", mnt1g);
	struct backend_config cfg = {.kind = BACKEND_EMULATED, .isolation = BACKEND_ISOLATION_SHARED, .file_path = path, .size = GiB,
				     .page_size = GiB, .create = true};
	assert_int_equal(backend_open(&cfg, &b), 0);
	assert_int_equal(backend_alignment(b), GiB);
	char *addr = mmap(NULL, GiB, PROT_READ | PROT_WRITE, MAP_SHARED, backend_fd(b), 0);
	assert_true(addr != MAP_FAILED);
	long faults = faults_touch(addr, GiB);
	printf("# 1G hugetlbfs: %ld minor faults touching 1 GiB (4K pages would take 262144)\n",
	       faults);
	if (faults_meaningful())
		assert_true(faults >= 1 && faults <= 8);
	munmap(addr, GiB);
	backend_delete(&b);
	assert_int_equal(unlink(path), 0);

	if (got_1g < 2) {
		printf("# skipping the 1G pool: only %ld 1G page granted (a pool needs 2)\n",
		       got_1g);
		return;
	}
	snprintf(path, sizeof(path), "%s/pool", mnt1g);
	cfg.size = 2 * GiB;
	struct backend_pool_info info;
	struct pool_extent ext;
	assert_int_equal(backend_open(&cfg, &b), 0);
	assert_int_equal(backend_open_pool(b, true, &pool, &info), 0);
	struct pool_alloc_req req = {.size = 4096, .align = POOL_ALIGN_4K, .name = "g"};
	assert_int_equal(pool_alloc(pool, &req, &ext), 0);
	assert_int_equal(ext.offset, GiB);
	assert_int_equal(ext.length, GiB);
	addr = mmap(NULL, GiB, PROT_READ | PROT_WRITE, MAP_SHARED, backend_fd(b), (off_t)ext.offset);
	assert_true(addr != MAP_FAILED);
	faults = faults_touch(addr, GiB);
	printf("# 1G pool slice: %ld minor faults touching 1 GiB\n", faults);
	if (faults_meaningful())
		assert_true(faults >= 1 && faults <= 8);
	munmap(addr, GiB);
	pool_delete(&pool);
	backend_delete(&b);
	cfg.create = false;
	assert_int_equal(backend_open(&cfg, &b), 0);
	assert_int_equal(backend_open_pool(b, false, &pool, NULL), 0);
	struct pool_record_info ri;
	assert_int_equal(pool_lookup(pool, "g", &ri), 0);
	assert_int_equal(ri.offset, GiB);
	pool_delete(&pool);
	backend_delete(&b);
	assert_int_equal(unlink(path), 0);

	/* Isolation "slice" at 1G: the metadata takes one page, a 4K request a 1 GiB file of its
	 * own on the other, mapped with one PUD fault through its own descriptor. */
	snprintf(path, sizeof(path), "%s/spool", mnt1g);
	cfg.isolation = BACKEND_ISOLATION_AUTO;
	cfg.create = true;
	assert_int_equal(backend_open(&cfg, &b), 0);
	assert_int_equal(backend_isolation(b), BACKEND_ISOLATION_SLICE);
	assert_int_equal(backend_open_pool(b, true, &pool, NULL), 0);
	assert_int_equal(pool_alloc(pool, &req, &ext), 0);
	assert_int_equal(ext.length, GiB);
	assert_int_equal(backend_slice_create(b, ext.offset, ext.length, POOL_ALIGN_4K), 0);
	int fd;
	uint64_t map_off;
	assert_int_equal(backend_slice_open(b, ext.offset, ext.length, true, &fd, &map_off), 0);
	addr = mmap(NULL, GiB, PROT_READ | PROT_WRITE, MAP_SHARED, fd, (off_t)map_off);
	assert_true(addr != MAP_FAILED);
	faults = faults_touch(addr, GiB);
	printf("# 1G slice file: %ld minor faults touching 1 GiB\n", faults);
	if (faults_meaningful())
		assert_true(faults >= 1 && faults <= 8);
	munmap(addr, GiB);
	close(fd);
	assert_int_equal(backend_slice_scrub(b, ext.offset, ext.length), 0);
	assert_int_equal(backend_slice_destroy(b, ext.offset, ext.length), 0);
	pool_delete(&pool);
	backend_delete(&b);
	assert_int_equal(unlink(path), 0);
	snprintf(path, sizeof(path), "%s/spool.slices", mnt1g);
	assert_int_equal(rmdir(path), 0);
}

/* Pages nobody holds or has reserved. */
static long avail_2m(void)
{
	return hugepages_read(2 * MiB, "free_hugepages") - hugepages_read(2 * MiB, "resv_hugepages");
}

/* Isolation "slice" on hugetlbfs: the pool file costs only its metadata's pages, each slice's
 * file reserves its own pages at create (not at first touch), maps with PMD faults, faults past
 * its end, and gives its pages back when destroyed; reconcile removes an orphan. */
static void test_2m_slices(void **state)
{
	char path[400];
	snprintf(path, sizeof(path), "%s/spool", mnt2m);
	struct backend_config cfg = {.kind = BACKEND_EMULATED, .file_path = path,
				     .size = 128 * MiB, .page_size = 2 * MiB, .create = true};
	struct backend *b = NULL;
	struct pool *pool = NULL;
	struct pool_extent ext;
	struct pool_record_info rec;
	struct stat st;
	long before = avail_2m();
	uint64_t meta;
	unsigned removed, created;
	int fd;
	uint64_t map_off;

	(void)state;
	assert_int_equal(backend_open(&cfg, &b), 0);
	assert_int_equal(backend_isolation(b), BACKEND_ISOLATION_SLICE);
	struct pool_format_params prm = {.device_align = 2 * MiB};
	assert_int_equal(pool_metadata_size(128 * MiB, &prm, &meta), 0);
	assert_int_equal(fstat(backend_fd(b), &st), 0);
	assert_int_equal((uint64_t)st.st_size, 128 * MiB);
	assert_int_equal((uint64_t)st.st_blocks * 512, meta); /* the data area costs nothing */
	assert_int_equal(backend_open_pool(b, true, &pool, NULL), 0);
	long after_open = avail_2m();
	printf("# slice pool: metadata %llu MiB, %ld pages taken by the pool (a shared pool takes 64)\n",
	       (unsigned long long)(meta / MiB), before - after_open);
	assert_int_equal(before - after_open, (long)(meta / (2 * MiB)));

	struct pool_alloc_req req = {.size = 8 * MiB, .align = POOL_ALIGN_2M, .name = "s"};
	assert_int_equal(pool_alloc(pool, &req, &ext), 0);
	assert_int_equal(pool_get(pool, ext.id, &rec), 0);
	assert_int_equal(backend_slice_create(b, rec.offset, rec.length, rec.align), 0);
	/* A second create replaces the file (a leftover, as far as it can know): one reservation. */
	assert_int_equal(backend_slice_create(b, rec.offset, rec.length, rec.align), 0);
	assert_int_equal(after_open - avail_2m(), 4); /* reserved at create */
	assert_int_equal(backend_slice_open(b, rec.offset, rec.length, true, &fd, &map_off), 0);
	assert_int_equal(map_off, 0);
	assert_int_equal(fstat(fd, &st), 0);
	assert_int_equal((uint64_t)st.st_size, 8 * MiB);
	char *a = mmap(NULL, 8 * MiB, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	assert_true(a != MAP_FAILED);
	long faults = faults_touch(a, 8 * MiB);
	printf("# 8 MiB slice file: %ld minor faults\n", faults);
	if (faults_meaningful())
		assert_true(faults >= 4 && faults <= 4 + 8);
	munmap(a, 8 * MiB);
	/* Past its end: SIGBUS (in a child, so the test goes on). A read-only mapping: hugetlbfs
	 * grows a file to the length of a *writable* shared mapping (docs/SECURITY.md). */
	a = mmap(NULL, 16 * MiB, PROT_READ, MAP_SHARED, fd, 0);
	assert_true(a != MAP_FAILED);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		signal(SIGBUS, SIG_DFL); /* cmocka's handler would catch it */
		volatile char c = a[8 * MiB];
		(void)c;
		_exit(0);
	}
	int status;
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFSIGNALED(status) && WTERMSIG(status) == SIGBUS);
	munmap(a, 16 * MiB);
	close(fd);

	/* An orphan (an object no record starts at) and a record without an object. */
	struct pool_alloc_req req2 = {.size = 2 * MiB, .align = POOL_ALIGN_2M, .name = "t"};
	struct pool_extent ext2;
	assert_int_equal(pool_alloc(pool, &req2, &ext2), 0);
	uint64_t orphan = ext2.offset + 2 * MiB;
	assert_int_equal(backend_slice_create(b, orphan, 2 * MiB, 2 * MiB), 0);
	assert_int_equal(backend_slice_reconcile(b, pool, &removed, &created), 0);
	assert_int_equal(removed + created, 0); /* files are swept while serving */
	unsigned swept = 0;
	int sr;
	while ((sr = backend_slice_sweep(b, pool, 16, &removed)) > 0)
		swept += removed;
	assert_int_equal(sr, 0);
	assert_int_equal(swept + removed, 1);
	assert_int_equal(backend_slice_open(b, orphan, 2 * MiB, false, &fd, &map_off), -ENOENT);
	/* "t" had none: the daemon makes it when it is granted */
	assert_int_equal(backend_slice_open(b, ext2.offset, 2 * MiB, false, &fd, &map_off), -ENOENT);
	assert_int_equal(backend_slice_create(b, ext2.offset, 2 * MiB, 2 * MiB), 0);
	assert_int_equal(backend_slice_open(b, ext2.offset, 2 * MiB, false, &fd, &map_off), 0);
	close(fd);

	/* Scrub and destroy give the pages back. */
	assert_int_equal(backend_slice_scrub(b, rec.offset, rec.length), 0);
	assert_int_equal(backend_slice_destroy(b, rec.offset, rec.length), 0);
	assert_int_equal(backend_slice_destroy(b, rec.offset, rec.length), 0); /* replayed */
	assert_int_equal(backend_slice_scrub(b, ext2.offset, 2 * MiB), 0);
	assert_int_equal(backend_slice_destroy(b, ext2.offset, 2 * MiB), 0);
	assert_int_equal(avail_2m(), after_open);
	pool_delete(&pool);
	backend_delete(&b);
	assert_int_equal(avail_2m(), after_open);
	assert_int_equal(unlink(path), 0);
	snprintf(path, sizeof(path), "%s/spool.slices", mnt2m);
	assert_int_equal(rmdir(path), 0);
	assert_int_equal(avail_2m(), before);
}

static int run_cases(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_2m_pool_faults_restart),
		cmocka_unit_test(test_2m_enospc),
		cmocka_unit_test(test_wrong_mount),
		cmocka_unit_test(test_2m_slices),
		cmocka_unit_test(test_1g),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

/* Whether nr_hugepages of h's page size is back where it was (or was never known). */
static bool restored(const struct hugepages *h)
{
	return !h->nr_path[0] || h->prev < 0 ||
	       hugepages_read(h->page_size, "nr_hugepages") == h->prev;
}

int main(void)
{
	/* All zero: hugepages_restore of a reservation never made does nothing. */
	struct hugepages hp2m = {0}, hp1g = {0};
	bool mounted2m = false, mounted1g = false;
	int rc = 1, r;

	if (geteuid() != 0) {
		printf("skipped: reserving huge pages and mounting hugetlbfs needs root\n");
		return 77;
	}
	if (!mkdtemp(tmpdir)) {
		perror("mkdtemp");
		return 1;
	}
	snprintf(mnt2m, sizeof(mnt2m), "%s/2m", tmpdir);
	snprintf(mnt1g, sizeof(mnt1g), "%s/1g", tmpdir);

	r = hugepages_reserve(&hp2m, 2 * MiB, PAGES_2M, PAGES_2M);
	if (r == -ENOENT) {
		printf("skipped: %s not readable: no 2M hugetlb support in this kernel\n", hp2m.nr_path);
		rc = 77;
		goto out;
	}
	if (r < 0) {
		printf("skipped: the kernel would not reserve %d more 2M huge pages\n", PAGES_2M);
		rc = 77;
		goto out;
	}
	r = hugetlbfs_mount(mnt2m, 2 * MiB, 0700);
	if (r < 0) {
		printf("skipped: cannot mount hugetlbfs: %s\n", strerror(-r));
		rc = 77;
		goto out;
	}
	mounted2m = true;

	/* 1G pages are a bonus: one is enough for the fault count, two make a pool. */
	r = hugepages_reserve(&hp1g, GiB, 2, 1);
	if (r == -ENOENT) {
		why_no_1g = "no 1G hugetlb support in this kernel";
	} else if (r < 0) {
		why_no_1g = "the kernel granted no 1G page (memory too fragmented)";
	} else if (hugetlbfs_mount(mnt1g, GiB, 0700) < 0) {
		why_no_1g = "cannot mount a 1G hugetlbfs";
	} else {
		got_1g = hp1g.added;
		mounted1g = true;
	}
	fflush(stdout);

	/* The cases run in a child so that a crash there still gives the pages back here. */
	pid_t pid = fork();
	if (pid < 0) {
		perror("fork");
		goto out;
	}
	if (pid == 0)
		_exit(run_cases() == 0 ? 0 : 1);
	int status;
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	rc = WIFEXITED(status) ? WEXITSTATUS(status) : 1;
	if (WIFSIGNALED(status))
		printf("cases killed by signal %d\n", WTERMSIG(status));
out:
	/* Unmount first: the files hold pages that a lower nr_hugepages could not take back. */
	if (mounted2m && (r = hugetlbfs_unmount(mnt2m)) < 0)
		printf("umount %s: %s\n", mnt2m, strerror(-r));
	if (mounted1g && (r = hugetlbfs_unmount(mnt1g)) < 0)
		printf("umount %s: %s\n", mnt1g, strerror(-r));
	/* This test runs alone (RUN_SERIAL): the counts go back to exactly what they were. */
	hugepages_restore(&hp2m);
	hugepages_restore(&hp1g);
	rmdir(mnt2m);
	rmdir(mnt1g);
	rmdir(tmpdir);
	if (!restored(&hp2m) || !restored(&hp1g))
		printf("warning: huge page counts not restored (2M %ld, was %ld; 1G %ld, was %ld)\n",
		       hugepages_read(2 * MiB, "nr_hugepages"), hp2m.prev,
		       hugepages_read(GiB, "nr_hugepages"), hp1g.prev);
	return rc;
}
