/* libdaxpool's mapping, persistence and pin helpers against a real daxpoold: alignment on an
 * emulated 4K pool and on a hugetlbfs 2M pool (PMD faults), persist, read-only maps, misuse,
 * io_uring long-term pins. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "daxpool.h"
#include "faults.h"
#include "harness.h"
#include "hugepages.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <liburing.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define MiB (UINT64_C(1) << 20)
#define NOBODY 65534
#define PAGES_2M 72 /* a 128 MiB pool and slack */

struct pool_daemon {
	struct test_daemon d;
	char config[300];
};

static char workdir[] = "/tmp/daxpool-client-map-XXXXXX";
static struct pool_daemon emu;	  /* 256 MiB emulated pool, 4K pages, on /tmp */
static struct pool_daemon huge2m; /* 128 MiB emulated pool on hugetlbfs 2M, if root can have it */
static const char *why_no_hugetlb;
static char mnt2m[320];
static struct hugepages hp2m; /* the 2M pages reserved for huge2m */

static const char *const *daemon_args(struct pool_daemon *p)
{
	static const char *args[3];

	args[0] = "--config";
	args[1] = p->config;
	args[2] = NULL;
	return args;
}

static int start_pool(struct pool_daemon *p, const char *name, const char *path, const char *size,
		      const char *page)
{
	FILE *f;

	snprintf(p->config, sizeof(p->config), "%s/%s.json", workdir, name);
	f = fopen(p->config, "w");
	if (!f)
		return -1;
	fprintf(f, "{ \"socket_mode\": \"0666\", \"pin_grace_ms\": 100, \"backend\": { \"type\": "
		   "\"emulated\", \"path\": \"%s\", \"size\": \"%s\", \"page\": \"%s\" } }\n",
		path, size, page);
	fclose(f);
	if (test_daemon_start(&p->d, daemon_args(p)) < 0)
		return -1;
	chmod(p->d.dir, 0755);
	return 0;
}

/* ctest kills a test that overruns its TIMEOUT (300 s) without running teardown, which would
 * leave hugetlbfs mounted and huge pages reserved. So the test gives up on its own a minute
 * earlier and undoes that, with async-signal-safe calls only. */
static void watchdog(int sig)
{
	static const char msg[] = "test_client_map: watchdog: giving up after 240 s, cleaning up\n";

	(void)!write(STDERR_FILENO, msg, sizeof(msg) - 1);
	if (emu.d.pid > 0)
		kill(emu.d.pid, SIGKILL);
	if (huge2m.d.pid > 0)
		kill(huge2m.d.pid, SIGKILL);
	if (mnt2m[0])
		umount2(mnt2m, MNT_DETACH);
	hugepages_restore(&hp2m); /* async-signal-safe */
	_exit(1);
}

/* Reserves 2M pages and mounts hugetlbfs (lib/machine/hugepages.h); on failure the 2M cases
 * skip with the reason. */
static void setup_hugetlb(void)
{
	char path[400];
	int r;

	if (geteuid() != 0) {
		why_no_hugetlb = "reserving huge pages and mounting hugetlbfs needs root";
		return;
	}
	r = hugepages_reserve(&hp2m, 2 * MiB, PAGES_2M, PAGES_2M);
	if (r == -ENOENT) {
		why_no_hugetlb = "no 2M hugetlb support in this kernel";
		return;
	}
	if (r < 0) {
		why_no_hugetlb = "the kernel would not reserve 72 more 2M huge pages";
		return;
	}
	snprintf(mnt2m, sizeof(mnt2m), "%s/2m", workdir);
	if (hugetlbfs_mount(mnt2m, 2 * MiB, 0755) < 0) {
		why_no_hugetlb = "cannot mount hugetlbfs";
		mnt2m[0] = 0;
		return;
	}
	snprintf(path, sizeof(path), "%s/pool", mnt2m);
	if (start_pool(&huge2m, "huge2m", path, "128M", "2M") < 0)
		why_no_hugetlb = "daxpoold did not start on the hugetlbfs pool";
}

static int setup(void **state)
{
	char path[400];

	if (!mkdtemp(workdir))
		return -1;
	chmod(workdir, 0755);
	signal(SIGALRM, watchdog);
	alarm(getenv("DAXPOOL_TEST_DAEMON_WRAPPER") ? 0 : 240);
	snprintf(path, sizeof(path), "%s/pool", workdir);
	if (start_pool(&emu, "emu", path, "256M", "4K") < 0)
		return -1;
	setup_hugetlb();
	return 0;
}

static int teardown(void **state)
{
	char cmd[400];
	int r = test_daemon_stop(&emu.d, SIGTERM);

	test_daemon_cleanup(&emu.d);
	if (huge2m.d.pid > 0)
		test_daemon_stop(&huge2m.d, SIGTERM);
	test_daemon_cleanup(&huge2m.d);
	if (mnt2m[0])
		hugetlbfs_unmount(mnt2m);
	/* nr_hugepages back to the count setup found: the machine as it was before the test. */
	hugepages_restore(&hp2m);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", workdir);
	(void)!system(cmd);
	return r == 0 ? 0 : -1;
}

static struct daxpool *connect_to(struct pool_daemon *p)
{
	struct daxpool *dp = NULL;

	assert_int_equal(daxpool_connect(p->d.socket, &dp), 0);
	return dp;
}

static uint64_t pins_of(struct daxpool *dp)
{
	struct daxpool_stats st;

	assert_int_equal(daxpool_stat(dp, &st, sizeof(st)), 0);
	return st.pins;
}

/* The permissions column of /proc/self/maps for the mapping at addr ("rw-s", "r--s"). */
static void maps_perms(const void *addr, char perms[5])
{
	char line[512];
	FILE *f = fopen("/proc/self/maps", "re");

	strcpy(perms, "none");
	assert_non_null(f);
	while (fgets(line, sizeof(line), f)) {
		unsigned long lo, hi;
		char p[5];

		if (sscanf(line, "%lx-%lx %4s", &lo, &hi, p) == 3 && (uintptr_t)addr >= lo &&
		    (uintptr_t)addr < hi) {
			memcpy(perms, p, 5);
			break;
		}
	}
	fclose(f);
}

static void test_map_alignment_persist(void **state)
{
	static const struct { const char *name; uint64_t size, align; } cases[] = {
		{ "a4k", 3 * 4096, DAXPOOL_ALIGN_4K },
		{ "a2m", 6 * MiB, DAXPOOL_ALIGN_2M },
	};
	struct daxpool *dp = connect_to(&emu);

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct daxpool_slice *s = NULL, *again = NULL;
		char perms[5];
		uint8_t *p = NULL, *q = NULL;
		uint64_t len;

		assert_int_equal(daxpool_alloc(dp, cases[i].name, cases[i].size, cases[i].align, 0600, 0, &s), 0);
		len = daxpool_slice_get_length(s);
		assert_null(daxpool_slice_get_address(s));
		assert_int_equal(daxpool_map(s, 0, (void **)&p), 0);
		assert_int_equal((uintptr_t)p % cases[i].align, 0);
		assert_ptr_equal(daxpool_slice_get_address(s), p);
		maps_perms(p, perms);
		assert_string_equal(perms, "rw-s");
		/* a fork() child does not inherit the mapping (MADV_DONTFORK) */
		{
			pid_t pid = fork();
			int status;

			if (pid == 0) {
				maps_perms(p, perms);
				_exit(strcmp(perms, "none") == 0 ? 0 : 1);
			}
			assert_int_equal(waitpid(pid, &status, 0), pid);
			assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
		}
		/* one mapping per slice object */
		assert_int_equal(daxpool_map(s, 0, (void **)&q), -EBUSY);
		assert_null(q);
		for (uint64_t off = 0; off < len; off += 4096)
			assert_int_equal(p[off], 0);
		memset(p, 0xa5, len);
		snprintf((char *)p, 32, "slice %s", cases[i].name);
		assert_int_equal(daxpool_persist(s, p, len), 0);
		assert_int_equal(daxpool_persist(s, p + len - 1, 1), 0);
		assert_int_equal(daxpool_persist(s, p, 0), 0);
		assert_int_equal(daxpool_persist(s, p + 1, len), -ERANGE);
		assert_int_equal(daxpool_persist(s, p - 1, 2), -ERANGE);
		assert_int_equal(daxpool_persist(s, p, SIZE_MAX), -ERANGE);
		assert_int_equal(daxpool_unmap(s), 0);
		assert_int_equal(daxpool_unmap(s), -EINVAL);
		assert_int_equal(daxpool_persist(s, p, 1), -EINVAL); /* not mapped */
		/* mapped again: the same data, through the same fd */
		assert_int_equal(daxpool_map(s, 0, (void **)&p), 0);
		assert_string_equal((char *)p, cases[i].name[1] == '4' ? "slice a4k" : "slice a2m");
		/* close unmaps by itself */
		assert_int_equal(daxpool_close(dp, &s), 0);
		assert_int_equal(daxpool_open(dp, cases[i].name, DAXPOOL_OPEN_RDWR, &again), 0);
		assert_int_equal(daxpool_map(again, 0, (void **)&q), 0);
		assert_int_equal(q[len - 1], 0xa5);
		assert_int_equal(daxpool_free(dp, &again), 0); /* free unmaps too */
		assert_null(again);
	}
	daxpool_disconnect(&dp);
}

/* Data persisted through daxpool_persist is there after the daemon restarts. */
static void test_persist_across_restart(void **state)
{
	struct daxpool *dp = connect_to(&emu);
	struct daxpool_slice *s = NULL;
	char *p;

	assert_int_equal(daxpool_alloc(dp, "restart", 2 * MiB, DAXPOOL_ALIGN_2M, 0600, 0, &s), 0);
	assert_int_equal(daxpool_map(s, 0, (void **)&p), 0);
	strcpy(p + 4096, "survives a daemon restart");
	assert_int_equal(daxpool_persist(s, p + 4096, 64), 0);
	assert_int_equal(daxpool_close(dp, &s), 0);
	daxpool_disconnect(&dp);
	assert_int_equal(test_daemon_stop(&emu.d, SIGTERM), 0);
	test_daemon_cleanup(&emu.d);
	assert_int_equal(test_daemon_start(&emu.d, daemon_args(&emu)), 0);
	chmod(emu.d.dir, 0755);
	dp = connect_to(&emu);
	assert_int_equal(daxpool_open(dp, "restart", DAXPOOL_OPEN_RDWR, &s), 0);
	assert_int_equal(daxpool_map(s, 0, (void **)&p), 0);
	assert_string_equal(p + 4096, "survives a daemon restart");
	assert_int_equal(daxpool_free(dp, &s), 0);
	daxpool_disconnect(&dp);
}

static void test_readonly_map(void **state)
{
	struct daxpool *dp = connect_to(&emu), *dp2 = connect_to(&emu);
	struct daxpool_slice *s = NULL, *ro = NULL;
	char *p, *q, perms[5];

	assert_int_equal(daxpool_alloc(dp, "ro", 4096, DAXPOOL_ALIGN_4K, 0644, 0, &s), 0);
	assert_int_equal(daxpool_map(s, DAXPOOL_MAP_READONLY, (void **)&p), 0);
	maps_perms(p, perms);
	assert_string_equal(perms, "r--s");
	assert_int_equal(daxpool_persist(s, p, 1), -EBADF);
	assert_int_equal(daxpool_unmap(s), 0);
	assert_int_equal(daxpool_map(s, 0, (void **)&p), 0);
	strcpy(p, "written by the owner");
	assert_int_equal(daxpool_persist(s, p, 32), 0);

	/* an OPEN without write permission maps read-only without being asked */
	assert_int_equal(daxpool_open(dp2, "ro", 0, &ro), 0);
	assert_int_equal(daxpool_map(ro, 0, (void **)&q), 0);
	maps_perms(q, perms);
	assert_string_equal(perms, "r--s");
	assert_string_equal(q, "written by the owner");
	assert_int_equal(daxpool_persist(ro, q, 1), -EBADF);
	assert_int_equal(daxpool_free(dp2, &ro), -EACCES); /* read-only handle: still mapped */
	assert_ptr_equal(daxpool_slice_get_address(ro), q);
	assert_int_equal(daxpool_close(dp2, &ro), 0);
	assert_int_equal(daxpool_free(dp, &s), 0);
	daxpool_disconnect(&dp);
	daxpool_disconnect(&dp2);
}

static int nobody_opens_private(void)
{
	struct daxpool *dp = NULL;
	struct daxpool_slice *s = NULL;
	void *p = NULL;

	if (daxpool_connect(emu.d.socket, &dp) < 0)
		return 1;
	if (daxpool_open(dp, "private", 0, &s) != -ENOENT || s) /* not there for nobody */
		return 2;
	if (daxpool_map(s, 0, &p) != -EINVAL || p)
		return 3;
	daxpool_disconnect(&dp);
	return 0;
}

static void test_misuse(void **state)
{
	struct daxpool *dp = connect_to(&emu), *dp2 = connect_to(&emu);
	struct daxpool_slice *s = NULL, *s2 = NULL, *orphan = NULL;
	struct daxpool_pin *pin = NULL;
	void *p = NULL;
	int status;
	pid_t pid;

	/* NULL arguments */
	assert_int_equal(daxpool_map(NULL, 0, &p), -EINVAL);
	assert_int_equal(daxpool_unmap(NULL), -EINVAL);
	assert_int_equal(daxpool_persist(NULL, p, 1), -EINVAL);
	assert_null(daxpool_slice_get_address(NULL));
	assert_int_equal(daxpool_pin_longterm(NULL, NULL, NULL, 0, -1, &pin), -EINVAL);
	assert_int_equal(daxpool_unpin(dp, NULL), -EINVAL);
	assert_int_equal(daxpool_unpin(dp, &pin), 0); /* *pin == NULL */
	assert_int_equal(daxpool_pin_get_id(NULL), 0);
	/* unsupported alignment */
	assert_int_equal(daxpool_alloc(dp, "odd", 65536, 65536, 0600, 0, &s), -EINVAL);
	assert_int_equal(daxpool_alloc(dp, "private", 4096, DAXPOOL_ALIGN_4K, 0600, 0, &s), 0);
	assert_int_equal(daxpool_map(s, 0, NULL), -EINVAL);
	assert_int_equal(daxpool_map(s, 0x80, &p), -EINVAL);
	assert_int_equal(daxpool_map(s, 0, &p), 0);
	assert_int_equal(daxpool_persist(s, NULL, 1), -EINVAL);
	/* pins need a mapped range */
	assert_int_equal(daxpool_pin_longterm(dp, s, (char *)p + 4096, 1, -1, &pin), -ERANGE);
	assert_int_equal(daxpool_pin_longterm(dp, s, p, 0, -1, &pin), -EINVAL);
	assert_null(pin);
	/* a slice of another user */
	pid = fork();
	if (pid == 0) {
		if (setgroups(0, NULL) < 0 || setgid(NOBODY) < 0 || setuid(NOBODY) < 0)
			_exit(99);
		_exit(nobody_opens_private());
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
	/* double free: the first call reset the pointer */
	assert_int_equal(daxpool_free(dp, &s), 0);
	assert_null(s);
	assert_int_equal(daxpool_free(dp, &s), -EINVAL);
	assert_int_equal(daxpool_close(dp, &s), -EINVAL);
	/* freed through another handle: -ENOENT, never a crash */
	assert_int_equal(daxpool_alloc(dp, "twice", 4096, DAXPOOL_ALIGN_4K, 0600, 0, &s), 0);
	assert_int_equal(daxpool_open(dp2, "twice", DAXPOOL_OPEN_RDWR, &s2), 0);
	assert_int_equal(daxpool_map(s2, 0, &p), 0);
	assert_int_equal(daxpool_free(dp, &s), 0);
	assert_int_equal(daxpool_free(dp2, &s2), -ENOENT);
	assert_null(s2);
	/* use after disconnect: the connection pointer is reset; a slice of a closed connection can
	 * still be mapped locally and released, but no other connection may close it */
	assert_int_equal(daxpool_alloc(dp2, "orphan", 4096, DAXPOOL_ALIGN_4K, 0600, 0, &orphan), 0);
	daxpool_disconnect(&dp2);
	assert_null(dp2);
	assert_int_equal(daxpool_ping(dp2), -EINVAL);
	assert_int_equal(daxpool_close(dp2, &orphan), -EINVAL);
	assert_int_equal(daxpool_map(orphan, 0, &p), 0);
	assert_true(daxpool_close(dp, &orphan) < 0); /* not a handle of dp */
	assert_int_equal(daxpool_open(dp, "orphan", DAXPOOL_OPEN_RDWR, &s), 0);
	assert_int_equal(daxpool_free(dp, &s), 0);
	if (orphan)
		assert_int_equal(daxpool_close(dp, &orphan) < 0, 1);
	daxpool_disconnect(&dp);
}

/* The documented outcome of daxpool_pin_longterm on one pool: either pinned (declared, FREE and
 * unmap refused until unpinned) or -EOPNOTSUPP with nothing declared. Returns 1 if pinned. */
static int pin_case(struct pool_daemon *pd, const char *name, bool must_succeed)
{
	struct daxpool *dp = connect_to(pd);
	struct daxpool_slice *s = NULL;
	struct daxpool_pin *pin = NULL, *pin2 = NULL;
	struct io_uring ring;
	char *p;
	int r;

	assert_int_equal(daxpool_alloc(dp, name, 4 * MiB, DAXPOOL_ALIGN_2M, 0600, 0, &s), 0);
	assert_int_equal(daxpool_map(s, 0, (void **)&p), 0);
	r = daxpool_pin_longterm(dp, s, p, 4 * MiB, -1, &pin);
	printf("# %s: daxpool_pin_longterm: %d %s\n", name, r, r < 0 ? daxpool_errormsg() : "");
	if (r < 0) {
		assert_false(must_succeed);
		assert_int_equal(r, -EOPNOTSUPP);
		assert_null(pin);
		assert_int_equal(pins_of(dp), 0); /* nothing declared */
		assert_int_equal(daxpool_free(dp, &s), 0);
		daxpool_disconnect(&dp);
		return 0;
	}
	assert_int_equal(pins_of(dp), 1);
	assert_true(daxpool_pin_get_id(pin) != 0);
	assert_int_equal(daxpool_free(dp, &s), -EBUSY);
	assert_int_equal(daxpool_close(dp, &s), -EBUSY);
	assert_int_equal(daxpool_unmap(s), -EBUSY);
	assert_ptr_equal(daxpool_slice_get_address(s), p);
	/* the caller's own ring: the range becomes its fixed buffers; a second table is refused */
	assert_int_equal(io_uring_queue_init(4, &ring, 0), 0);
	assert_int_equal(daxpool_pin_longterm(dp, s, p, 2 * MiB, ring.ring_fd, &pin2), 0);
	assert_int_equal(pins_of(dp), 2);
	{
		struct daxpool_pin *pin3 = NULL;

		assert_int_equal(daxpool_pin_longterm(dp, s, p, 4096, ring.ring_fd, &pin3), -EBUSY);
		assert_null(pin3);
	}
	/* I/O through the registered buffer: read a file into the slice with READ_FIXED */
	{
		char path[400];
		int fd;
		struct io_uring_sqe *sqe;
		struct io_uring_cqe *cqe;

		snprintf(path, sizeof(path), "%s/src", workdir);
		fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
		assert_true(fd >= 0);
		assert_int_equal(write(fd, "through a fixed buffer", 23), 23);
		sqe = io_uring_get_sqe(&ring);
		io_uring_prep_read_fixed(sqe, fd, p + 8192, 23, 0, 0);
		assert_int_equal(io_uring_submit(&ring), 1);
		assert_int_equal(io_uring_wait_cqe(&ring, &cqe), 0);
		assert_int_equal(cqe->res, 23);
		io_uring_cqe_seen(&ring, cqe);
		assert_string_equal(p + 8192, "through a fixed buffer");
		close(fd);
	}
	io_uring_queue_exit(&ring); /* our dup keeps the ring until unpin */
	assert_int_equal(daxpool_unpin(dp, &pin2), 0);
	assert_null(pin2);
	assert_int_equal(daxpool_unpin(dp, &pin), 0);
	assert_null(pin);
	assert_int_equal(pins_of(dp), 0);
	assert_int_equal(daxpool_free(dp, &s), 0);
	daxpool_disconnect(&dp);
	return 1;
}

static void test_pin_emulated_file(void **state)
{
	/* A file on /tmp: 6.5+ kernels refuse FOLL_LONGTERM of file systems that need dirty
	 * tracking (ext4, xfs, ...), tmpfs is accepted. Either outcome is documented. */
	pin_case(&emu, "pin-file", false);
}

static void test_pin_hugetlbfs(void **state)
{
	if (why_no_hugetlb) {
		printf("# skipping: %s\n", why_no_hugetlb);
		skip();
	}
	/* hugetlbfs memory can be pinned long-term on every kernel io_uring supports */
	assert_int_equal(pin_case(&huge2m, "pin-huge", true), 1);
}

static void test_hugetlbfs_2m_faults(void **state)
{
	struct daxpool *dp;
	struct daxpool_slice *s = NULL, *small = NULL;
	char *p, *q;
	long faults;

	if (why_no_hugetlb) {
		printf("# skipping: %s\n", why_no_hugetlb);
		skip();
	}
	dp = connect_to(&huge2m);
	assert_int_equal(daxpool_alloc(dp, "touch", 64 * MiB, DAXPOOL_ALIGN_2M, 0600, 0, &s), 0);
	assert_int_equal(daxpool_map(s, 0, (void **)&p), 0);
	assert_int_equal((uintptr_t)p % (2 * MiB), 0);
	faults = faults_touch(p, 64 * MiB);
	printf("# hugetlbfs 2M through daxpool_map: %ld minor faults touching 64 MiB (PMD: 32)\n", faults);
	if (faults_meaningful())
		assert_true(faults >= 32 && faults <= 32 + 16);
	assert_int_equal(daxpool_persist(s, p, 64 * MiB), 0);
	/* a 4K request on a 2M pool is a 2M slice, mapped 2M-aligned */
	assert_int_equal(daxpool_alloc(dp, "touch-small", 4096, DAXPOOL_ALIGN_4K, 0600, 0, &small), 0);
	assert_int_equal(daxpool_map(small, 0, (void **)&q), 0);
	assert_int_equal((uintptr_t)q % daxpool_slice_get_alignment(small), 0);
	q[0] = 1;
	assert_int_equal(daxpool_free(dp, &small), 0);
	assert_int_equal(daxpool_free(dp, &s), 0);
	daxpool_disconnect(&dp);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_map_alignment_persist),
		cmocka_unit_test(test_persist_across_restart),
		cmocka_unit_test(test_readonly_map),
		cmocka_unit_test(test_misuse),
		cmocka_unit_test(test_pin_emulated_file),
		cmocka_unit_test(test_pin_hugetlbfs),
		cmocka_unit_test(test_hugetlbfs_2m_faults),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
