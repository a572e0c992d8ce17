/*
 * Sub-devices on dynamic dax regions without the hardware (daemon/backend/subdev-geometry.h): the
 * pool-offset <-> physical-address rules, the refusal of placements the kernel would accept but
 * that are wrong (a 1G device at a start that is not 1G-aligned overwrites its neighbours), and
 * the pool's address space as the backend builds it: the pool device's bytes followed by an
 * inaccessible reservation to the region's end, which the pool must never touch; and the
 * sub-device agent's side that needs no region: what it refuses to carve or release, and the
 * process it is (its capabilities, its descriptors, its death with the daemon).
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cmocka.h>

#include "backend.h"
#include "pool.h"
#include "subdev-geometry.h"
#include "subdev-kernel.h"

#include <dirent.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <linux/capability.h>
#include <sys/syscall.h>

#define MiB (UINT64_C(1) << 20)
#define GiB (UINT64_C(1) << 30)
#define REGION_START (4 * GiB) /* where memmap=2G%4G puts soft-reserved memory */

/* A 2 GiB region at 4 GiB, aligned 2M, the pool device (12 MiB) at its start. */
static struct subdev_geometry lab_geometry(void)
{
	return (struct subdev_geometry){ .region_start = REGION_START, .region_size = 2 * GiB,
					 .region_align = 2 * MiB, .base = REGION_START,
					 .pool_dev_size = 12 * MiB };
}

static void test_geometry(void **state)
{
	struct subdev_geometry g = lab_geometry();
	uint64_t span = 0;

	(void)state;
	assert_int_equal(subdev_geometry_check(&g, &span), 0);
	assert_int_equal(span, 2 * GiB);
	assert_int_equal(subdev_max_align(&g), GiB);

	/* The pool device later in the region: the pool spans from it to the end. */
	g.base = REGION_START + 2 * MiB;
	assert_int_equal(subdev_geometry_check(&g, &span), 0);
	assert_int_equal(span, 2 * GiB - 2 * MiB);
	assert_int_equal(subdev_max_align(&g), 2 * MiB);

	g.base = REGION_START + 4096; /* not at the region's alignment */
	assert_int_equal(subdev_geometry_check(&g, &span), -EINVAL);
	assert_non_null(strstr(backend_errormsg(), "not aligned"));
	assert_int_equal(subdev_max_align(&g), 4096);
	g.base = REGION_START - 2 * MiB; /* outside */
	assert_int_equal(subdev_geometry_check(&g, &span), -EINVAL);
	g.base = REGION_START + 2 * GiB;
	assert_int_equal(subdev_geometry_check(&g, &span), -EINVAL);
	g = lab_geometry();
	g.pool_dev_size = 2 * GiB + 2 * MiB; /* does not fit */
	assert_int_equal(subdev_geometry_check(&g, &span), -EINVAL);
	g = lab_geometry();
	g.region_align = 3 * MiB;
	assert_int_equal(subdev_geometry_check(&g, &span), -EINVAL);
}

static void test_place(void **state)
{
	struct subdev_geometry g = lab_geometry();
	uint64_t phys = 0;

	(void)state;
	/* Pool offset o is physical base + o. */
	assert_int_equal(subdev_place(&g, 12 * MiB, 2 * MiB, 2 * MiB, &phys), 0);
	assert_int_equal(phys, REGION_START + 12 * MiB);
	assert_int_equal(subdev_place(&g, GiB, GiB, GiB, &phys), 0);
	assert_int_equal(phys, REGION_START + GiB);
	assert_int_equal(subdev_place(&g, 2 * GiB - 2 * MiB, 2 * MiB, 2 * MiB, &phys), 0);
	assert_int_equal(phys, REGION_START + 2 * GiB - 2 * MiB);

	phys = 42;
	/* Below the region's alignment: the kernel cannot carve a 4K device on a 2M region. */
	assert_int_equal(subdev_place(&g, 12 * MiB, 4096, 4096, &phys), -EINVAL);
	/* Not 4K/2M/1G. */
	assert_int_equal(subdev_place(&g, 12 * MiB, 4 * MiB, 4 * MiB, &phys), -EINVAL);
	/* Misaligned in the pool. */
	assert_int_equal(subdev_place(&g, 13 * MiB, 2 * MiB, 2 * MiB, &phys), -EINVAL);
	assert_int_equal(subdev_place(&g, 12 * MiB, 3 * MiB, 2 * MiB, &phys), -EINVAL);
	assert_int_equal(subdev_place(&g, 512 * MiB, GiB, GiB, &phys), -EINVAL);
	assert_int_equal(subdev_place(&g, 12 * MiB, 0, 2 * MiB, &phys), -EINVAL);
	/* The pool device's own bytes (a pool formatted on the pool device alone). */
	assert_int_equal(subdev_place(&g, 10 * MiB, 2 * MiB, 2 * MiB, &phys), -EINVAL);
	assert_non_null(strstr(backend_errormsg(), "overlaps the pool device"));
	assert_int_equal(subdev_place(&g, 0, GiB, GiB, &phys), -EINVAL);
	/* Past the region's end, overflow included. */
	assert_int_equal(subdev_place(&g, 2 * GiB, 2 * MiB, 2 * MiB, &phys), -EINVAL);
	assert_int_equal(subdev_place(&g, 2 * GiB - 2 * MiB, 4 * MiB, 2 * MiB, &phys), -EINVAL);
	assert_int_equal(subdev_place(&g, UINT64_MAX - 2 * MiB + 1, 2 * MiB, 2 * MiB, &phys),
			 -EINVAL);
	assert_int_equal(subdev_place(&g, 12 * MiB, UINT64_MAX - 2 * MiB + 1, 2 * MiB, &phys),
			 -EINVAL);
	assert_int_equal(phys, 42); /* untouched on failure */

	/* The hazard: the pool device 2M into the region, so a 1G-aligned pool offset is not a
	 * 1G-aligned physical start. The kernel would carve it and the device would overwrite its
	 * neighbours; it is refused. 2M slices stay fine. */
	g.region_size = 4 * GiB;
	g.base = REGION_START + 2 * MiB;
	assert_int_equal(subdev_place(&g, GiB, GiB, GiB, &phys), -EINVAL);
	assert_non_null(strstr(backend_errormsg(), "not 1073741824-aligned"));
	assert_int_equal(subdev_place(&g, GiB, 2 * MiB, 2 * MiB, &phys), 0);
	assert_int_equal(phys, REGION_START + GiB + 2 * MiB);
	/* A pool device one gigabyte into the region keeps 1G slices possible. */
	g.base = REGION_START + GiB;
	assert_int_equal(subdev_place(&g, GiB, GiB, GiB, &phys), 0);
	assert_int_equal(phys, REGION_START + 2 * GiB);
}

static void test_offset_of(void **state)
{
	struct subdev_geometry g = lab_geometry();
	uint64_t off = 7, phys;

	(void)state;
	assert_int_equal(subdev_offset_of(&g, REGION_START + 12 * MiB, 2 * MiB, &off), 0);
	assert_int_equal(off, 12 * MiB);
	assert_int_equal(subdev_offset_of(&g, REGION_START + GiB, GiB, &off), 0);
	assert_int_equal(off, GiB);
	off = 7;
	/* The pool device itself, below it, past the end, empty. */
	assert_int_equal(subdev_offset_of(&g, REGION_START, 12 * MiB, &off), -ERANGE);
	assert_int_equal(subdev_offset_of(&g, REGION_START + 10 * MiB, 2 * MiB, &off), -ERANGE);
	assert_int_equal(subdev_offset_of(&g, REGION_START - 2 * MiB, 2 * MiB, &off), -ERANGE);
	assert_int_equal(subdev_offset_of(&g, REGION_START + 2 * GiB, 2 * MiB, &off), -ERANGE);
	assert_int_equal(subdev_offset_of(&g, REGION_START + 2 * GiB - 2 * MiB, 4 * MiB, &off),
			 -ERANGE);
	assert_int_equal(subdev_offset_of(&g, REGION_START + 12 * MiB, 0, &off), -ERANGE);
	assert_int_equal(off, 7);
	/* Round trip over the data area. */
	for (uint64_t o = 12 * MiB; o < 2 * GiB; o += 62 * MiB) {
		assert_int_equal(subdev_place(&g, o, 2 * MiB, 2 * MiB, &phys), 0);
		assert_int_equal(subdev_offset_of(&g, phys, 2 * MiB, &off), 0);
		assert_int_equal(off, o);
	}
}

/* The pool over the backend's address space: the pool device's bytes (here a shared anonymous
 * mapping standing for it) and PROT_NONE to the region's end. Format, open, allocations at every
 * alignment, free and reopen must never touch the data area (SIGSEGV if they did), and the pool
 * device's size is exactly the metadata of a pool of that span. */
static void test_pool_over_reservation(void **state)
{
	const uint64_t span = 2 * GiB;
	/* The data area is inaccessible: slices are sub-devices, zeroed when carved. */
	struct pool_format_params prm = { .device_align = 2 * MiB, .data_clean = true };
	struct pool_alloc_req req = { .size = 4096, .align = POOL_ALIGN_4K, .name = "a", .mode = 0600 };
	struct pool_extent e4k, e2m, e1g;
	struct pool_stats st;
	struct pool *p = NULL;
	uint64_t meta = 0;
	char *base;

	(void)state;
	assert_int_equal(pool_metadata_size(span, &prm, &meta), 0);
	assert_int_equal(meta, 12 * MiB); /* what tests/lab/dynamic-region.sh carves */
	base = mmap(NULL, span, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	assert_true(base != MAP_FAILED);
	assert_true(mmap(base, meta, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS | MAP_FIXED,
			 -1, 0) == base);

	assert_int_equal(pool_format_range(base, span, &pool_memory_fs_ops, &prm), 0);
	assert_int_equal(pool_open_range(base, span, &pool_memory_fs_ops, &p), 0);
	pool_get_stats(p, &st);
	assert_int_equal(st.pool_size, span);
	assert_int_equal(st.data_offset, meta);
	assert_int_equal(st.device_align, 2 * MiB);

	/* 4K asked, 2M given: the region's alignment rounds every extent up. */
	assert_int_equal(pool_alloc(p, &req, &e4k), 0);
	assert_int_equal(e4k.length, 2 * MiB);
	assert_true(e4k.offset >= meta);
	req = (struct pool_alloc_req){ .size = 2 * MiB, .align = POOL_ALIGN_2M, .name = "b",
				       .mode = 0600 };
	assert_int_equal(pool_alloc(p, &req, &e2m), 0);
	req = (struct pool_alloc_req){ .size = GiB, .align = POOL_ALIGN_1G, .name = "c", .mode = 0600 };
	assert_int_equal(pool_alloc(p, &req, &e1g), 0);
	assert_int_equal(e1g.offset, GiB); /* the only 1G-aligned gigabyte past the metadata */
	assert_int_equal(pool_free(p, e2m.id), 0);
	pool_delete(&p);

	assert_int_equal(pool_open_range(base, span, &pool_memory_fs_ops, &p), 0);
	pool_get_stats(p, &st);
	assert_int_equal(st.records_used, 2);
	pool_delete(&p);
	munmap(base, span);
}


/* The agent's scope on the lab's region 1: the kernel half refuses, before any kernel call,
 * every request outside the pool's data area or not at a whole alignment. */
static struct subdev_kernel lab_kernel(void)
{
	struct subdev_kernel k = { .have_geometry = true, .region_id = 1, .g = lab_geometry() };

	snprintf(k.pool_devname, sizeof(k.pool_devname), "dax1.1");
	return k;
}

static void test_agent_scope(void **state)
{
	struct subdev_kernel k = lab_kernel(), none = { .region_id = -1 };
	const uint64_t data = REGION_START + 12 * MiB, end = REGION_START + 2 * GiB;

	(void)state;
	assert_int_equal(subdev_kernel_check_carve(&k, data, 2 * MiB, 2 * MiB), 0);
	assert_int_equal(subdev_kernel_check_carve(&k, REGION_START + GiB, GiB, GiB), 0);
	assert_int_equal(subdev_kernel_check_carve(&k, end - 2 * MiB, 2 * MiB, 2 * MiB), 0);
	/* the metadata (the pool device), below the region, past its end, across its end */
	assert_int_equal(subdev_kernel_check_carve(&k, REGION_START, 2 * MiB, 2 * MiB), -ERANGE);
	assert_int_equal(subdev_kernel_check_carve(&k, data - 2 * MiB, 4 * MiB, 2 * MiB), -ERANGE);
	assert_int_equal(subdev_kernel_check_carve(&k, GiB, 2 * MiB, 2 * MiB), -ERANGE);
	assert_int_equal(subdev_kernel_check_carve(&k, end, 2 * MiB, 2 * MiB), -ERANGE);
	assert_int_equal(subdev_kernel_check_carve(&k, end - 2 * MiB, 4 * MiB, 2 * MiB), -ERANGE);
	assert_int_equal(subdev_kernel_check_carve(&k, data, UINT64_MAX - 2 * MiB + 1, 2 * MiB),
			 -ERANGE);
	/* alignments: not a class, below the region's, start or length not a multiple, empty */
	assert_int_equal(subdev_kernel_check_carve(&k, data, 2 * MiB, 3 * MiB), -EINVAL);
	assert_int_equal(subdev_kernel_check_carve(&k, data, 2 * MiB, 4096), -EINVAL);
	assert_int_equal(subdev_kernel_check_carve(&k, data + 4096, 2 * MiB, 2 * MiB), -EINVAL);
	assert_int_equal(subdev_kernel_check_carve(&k, data, 3 * MiB, 2 * MiB), -EINVAL);
	assert_int_equal(subdev_kernel_check_carve(&k, data, 0, 2 * MiB), -EINVAL);
	assert_int_equal(subdev_kernel_check_carve(&k, REGION_START + 14 * MiB, GiB, GiB), -EINVAL);
	assert_int_equal(subdev_kernel_check_carve(&none, data, 2 * MiB, 2 * MiB), -ENODATA);

	assert_int_equal(subdev_kernel_check_name(&k, "dax1.7"), 0);
	assert_int_equal(subdev_kernel_check_name(&k, "dax1.1"), -EPERM); /* the pool device */
	assert_int_equal(subdev_kernel_check_name(&k, "dax0.7"), -EINVAL);
	assert_int_equal(subdev_kernel_check_name(&k, "dax11.7"), -EINVAL);
	assert_int_equal(subdev_kernel_check_name(&k, "dax1."), -EINVAL);
	assert_int_equal(subdev_kernel_check_name(&k, "dax1.7/../../x"), -EINVAL);
	assert_int_equal(subdev_kernel_check_name(&k, "dax1.7 "), -EINVAL);
	assert_int_equal(subdev_kernel_check_name(&none, "dax1.7"), -ENODATA);
}

/* The fds /proc/PID/fd lists, as a bit set of 0..63 (-1 past 63). */
static long long proc_fds(pid_t pid)
{
	char dir[64];
	long long set = 0;
	struct dirent *e;
	DIR *d;

	snprintf(dir, sizeof(dir), "/proc/%d/fd", (int)pid);
	d = opendir(dir);
	assert_non_null(d);
	while ((e = readdir(d))) {
		int fd = atoi(e->d_name);

		if (e->d_name[0] == '.')
			continue;
		if (fd > 62) {
			set = -1;
			break;
		}
		set |= 1LL << fd;
	}
	closedir(d);
	return set;
}

static void proc_field(pid_t pid, const char *key, char *buf, size_t len)
{
	char path[64], line[256];
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	f = fopen(path, "r");
	assert_non_null(f);
	buf[0] = '\0';
	while (fgets(line, sizeof(line), f))
		if (strncmp(line, key, strlen(key)) == 0 && line[strlen(key)] == ':') {
			snprintf(buf, len, "%s", line + strlen(key) + 1 + strspn(line + strlen(key) + 1, "\t "));
			buf[strcspn(buf, "\n")] = '\0';
		}
	fclose(f);
}

/* Started on something that is no device-dax device, the agent answers every request with
 * why, keeps no descriptor of the daemon's but its channel, and exits when the channel closes. */
static void test_agent_process(void **state)
{
	struct subdev_req req = { .op = SUBDEV_OP_GEOMETRY };
	struct subdev_reply reply;
	struct subdev_dev *devs = NULL;
	struct backend_agent *a = NULL;
	int leak[2], pid;
	char comm[64];
	long long fds;

	(void)state;
	assert_int_equal(pipe(leak), 0); /* no O_CLOEXEC: a fork would inherit them */
	assert_int_equal(subdev_agent_spawn("/dev/null", &a), 0);
	assert_non_null(a);
	pid = backend_agent_pid(a);
	assert_true(pid > 0);
	assert_int_equal(subdev_call(a, NULL, &req, &reply, &devs), -EINVAL);
	assert_non_null(strstr(backend_errormsg(), "/dev/null"));
	req = (struct subdev_req){ .op = SUBDEV_OP_CARVE, .phys = 0, .length = GiB, .align = GiB };
	assert_true(subdev_call(a, NULL, &req, &reply, &devs) < 0);
	assert_null(devs);
	/* By now it has closed what it inherited: fds 0-2 and its channel (3), nothing else. */
	fds = proc_fds(pid);
	assert_true(fds >= 0);
	assert_int_equal(fds & ~0xfLL, 0);
	assert_true(fds & (1LL << 3));
	proc_field(pid, "Name", comm, sizeof(comm));
	assert_string_equal(comm, "daxpoold-agent");
	backend_agent_stop(&a);
	assert_null(a);
	assert_int_equal(kill(pid, 0), -1); /* reaped */
	assert_int_equal(errno, ESRCH);
	close(leak[0]);
	close(leak[1]);

	/* An unknown operation is refused and the agent keeps serving. */
	assert_int_equal(subdev_agent_spawn("/dev/null", &a), 0);
	req = (struct subdev_req){ .op = 99 };
	assert_true(subdev_call(a, NULL, &req, &reply, &devs) < 0);
	req = (struct subdev_req){ .op = SUBDEV_OP_LIST };
	assert_true(subdev_call(a, NULL, &req, &reply, &devs) < 0);
	backend_agent_stop(&a);
}

/* A daemon that runs as an unprivileged user with CAP_DAC_OVERRIDE and CAP_CHOWN among others
 * (as the unit starts it): its agent keeps those two and nothing else; and when the daemon dies
 * the agent dies with it. Needs root to set that up. */
static void test_agent_privileges(void **state)
{
	int pfd[2], status;
	pid_t daemon, agent = 0;

	(void)state;
	if (geteuid() != 0) {
		skip(); /* cmocka prints the test as skipped: it needs root to change uid */
		return;
	}
	assert_int_equal(pipe(pfd), 0);
	daemon = fork();
	assert_true(daemon >= 0);
	if (daemon == 0) {
		struct backend_agent *a = NULL;
		pid_t p;

		close(pfd[0]);
		if (prctl(PR_SET_KEEPCAPS, 1, 0, 0, 0) < 0 || setresgid(65534, 65534, 65534) < 0 ||
		    setresuid(65534, 65534, 65534) < 0)
			_exit(2);
		/* permitted kept (KEEPCAPS); make them effective, as systemd's ambient set would */
		{
			struct __user_cap_header_struct h = { .version = _LINUX_CAPABILITY_VERSION_3 };
			struct __user_cap_data_struct d[2];

			if (syscall(SYS_capget, &h, d) < 0)
				_exit(3);
			d[0].effective = d[0].permitted;
			d[1].effective = d[1].permitted;
			if (syscall(SYS_capset, &h, d) < 0)
				_exit(4);
		}
		if (subdev_agent_spawn("/dev/null", &a) < 0)
			_exit(5);
		p = backend_agent_pid(a);
		if (write(pfd[1], &p, sizeof(p)) != sizeof(p))
			_exit(6);
		pause(); /* killed by the parent: the agent must die with it */
		_exit(0);
	}
	close(pfd[1]);
	assert_int_equal(read(pfd[0], &agent, sizeof(agent)), sizeof(agent));
	close(pfd[0]);
	assert_true(agent > 0);
	/* the agent has dropped the rest once it answers; wait for its Name to change */
	for (int i = 0; i < 200; i++) {
		char comm[64], eff[64];

		proc_field(agent, "Name", comm, sizeof(comm));
		proc_field(agent, "CapEff", eff, sizeof(eff));
		if (strcmp(comm, "daxpoold-agent") == 0 && strcmp(eff, "0000000000000003") == 0)
			break;
		usleep(10000);
	}
	{
		char prm[64], eff[64], inh[64], amb[64];

		proc_field(agent, "CapPrm", prm, sizeof(prm));
		proc_field(agent, "CapEff", eff, sizeof(eff));
		proc_field(agent, "CapInh", inh, sizeof(inh));
		proc_field(agent, "CapAmb", amb, sizeof(amb));
		/* bit 0 CAP_CHOWN, bit 1 CAP_DAC_OVERRIDE */
		assert_string_equal(prm, "0000000000000003");
		assert_string_equal(eff, "0000000000000003");
		assert_string_equal(inh, "0000000000000000");
		assert_string_equal(amb, "0000000000000000");
	}
	kill(daemon, SIGKILL);
	assert_int_equal(waitpid(daemon, &status, 0), daemon);
	/* PR_SET_PDEATHSIG: gone (or a zombie until its new parent reaps it) within 2 s */
	for (int i = 0; i < 200; i++) {
		char st[64];

		if (kill(agent, 0) < 0)
			break;
		proc_field(agent, "State", st, sizeof(st));
		if (st[0] == 'Z')
			break;
		usleep(10000);
	}
	{
		char st[64] = "";

		if (kill(agent, 0) == 0)
			proc_field(agent, "State", st, sizeof(st));
		assert_true(kill(agent, 0) < 0 || st[0] == 'Z');
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_geometry),
		cmocka_unit_test(test_place),
		cmocka_unit_test(test_offset_of),
		cmocka_unit_test(test_pool_over_reservation),
		cmocka_unit_test(test_agent_scope),
		cmocka_unit_test(test_agent_process),
		cmocka_unit_test(test_agent_privileges),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
