/*
 * Isolation, attacked: a tenant running as another uid (65534) than the victim (root) does
 * everything it can with the descriptor it was granted — maps it at offset 0, at the victim's
 * offset, at the pool's metadata, past its end, grows the mapping with mremap, grows the file
 * with ftruncate, reopens it through /proc/self/fd — and searches every byte it can read for
 * the victim's pattern. On the default isolation ("slice") nothing of the victim's is readable
 * and every access beyond the slice faults. The same attack against a daemon started with
 * --isolation shared is the control: there it finds the victim's bytes, which shows that the
 * attack would fail the test on a daemon that passes the device.
 *
 * Root only (it must switch uid); exit 77 with the reason otherwise.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "daxpool.h"
#include "harness.h"

#include <errno.h>
#include <json-c/json.h>
#include <fcntl.h>
#include <grp.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define MiB (1024ull * 1024)
#define POOL_BYTES (64 * MiB)
#define NOBODY 65534
#define VICTIM_BYTE 0xa5
#define TENANT_BYTE 0x3c

/* What the attacker saw; written to a pipe for the parent to assert on. */
struct attack_report {
	int connect_r, alloc_r, isolation;
	uint64_t readable_bytes;  /* bytes it could read through any mapping it made */
	uint64_t victim_bytes;	  /* of those, bytes equal to the victim's pattern at a victim page */
	uint64_t nonzero_foreign; /* readable bytes outside its slice that are not zero */
	int faults;		  /* probes that faulted (SIGBUS/SIGSEGV) */
	int mmaps_refused;	  /* mmap calls refused outright */
	int reopen_rw_r, reopen_ro_r; /* open("/proc/self/fd/N") results (fd or -errno) */
	int mremap_r;		  /* 0 when mremap grew the mapping */
	int ftruncate_r;
	int ro_write_map_r;	  /* PROT_WRITE mapping of a read-only OPEN: -errno expected */
	int ro_reopen_rw_r;	  /* reopen of the read-only fd for writing */
};

static sigjmp_buf probe_jmp;
static volatile sig_atomic_t probing;

static void on_fault(int sig)
{
	(void)sig;
	if (probing)
		siglongjmp(probe_jmp, 1);
	_exit(99);
}

/* Reads [p, p + len) page by page; counts readable bytes, victim pattern pages and faults. */
static void probe(struct attack_report *rep, const volatile uint8_t *p, size_t len, bool own_first_page)
{
	for (volatile size_t off = 0; off < len; off += 4096) {
		if (sigsetjmp(probe_jmp, 1)) {
			probing = 0;
			rep->faults++;
			continue;
		}
		probing = 1;
		/* The first and last 64 bytes of each page: enough to recognise a page of the
		 * victim's pattern, and fast enough for a 1 GiB device-dax slice under emulation. */
		uint64_t victim = 0, nonzero = 0;
		for (size_t i = 0; i < 128; i++) {
			uint8_t b = p[off + (i < 64 ? i : 4096 - 128 + i)];

			victim += b == VICTIM_BYTE;
			nonzero += b != 0;
		}
		probing = 0;
		rep->readable_bytes += 4096;
		if (victim == 128)
			rep->victim_bytes += 4096;
		if (!(own_first_page && off == 0))
			rep->nonzero_foreign += nonzero;
	}
}

static void try_map(struct attack_report *rep, int fd, uint64_t offset, size_t len, bool own)
{
	void *p = mmap(NULL, len, PROT_READ, MAP_SHARED, fd, (off_t)offset);

	if (p == MAP_FAILED) {
		rep->mmaps_refused++;
		return;
	}
	probe(rep, p, len, own);
	munmap(p, len);
}

static int open_fd_path(int fd, int flags)
{
	char path[64];

	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	int r = open(path, flags | O_CLOEXEC);
	if (r < 0)
		return -errno;
	close(r);
	return 0;
}

/* The attacker: another uid, one anonymous 4 KiB slice, then everything above. */
static void attack(const char *sock, uint64_t victim_off, uint64_t victim_len, int out)
{
	struct attack_report rep = { 0 };
	struct daxpool *dp = NULL;
	struct daxpool_slice *s = NULL, *ro = NULL;
	struct sigaction sa = { .sa_handler = on_fault };

	sigaction(SIGBUS, &sa, NULL);
	sigaction(SIGSEGV, &sa, NULL);
	if (setgroups(0, NULL) < 0 || setgid(NOBODY) < 0 || setuid(NOBODY) < 0)
		_exit(98);
	rep.connect_r = daxpool_connect(sock, &dp);
	if (rep.connect_r == 0)
		rep.alloc_r = daxpool_alloc(dp, NULL, 4096, DAXPOOL_ALIGN_4K, 0600, DAXPOOL_ANONYMOUS, &s);
	if (rep.connect_r == 0 && rep.alloc_r == 0) {
		int fd = daxpool_slice_get_fd(s);
		uint64_t mine = daxpool_slice_get_offset(s);
		uint8_t *own;

		rep.isolation = daxpool_slice_get_isolation(s);
		/* Its own page, written so its pattern is not mistaken for anyone's. */
		if (daxpool_map(s, 0, (void **)&own) == 0) {
			memset(own, TENANT_BYTE, 4096);
			daxpool_unmap(s);
		}
		try_map(&rep, fd, 0, POOL_BYTES, mine == 0);	     /* the whole fd from offset 0 */
		try_map(&rep, fd, victim_off, victim_len, false);    /* the victim's pool offset */
		try_map(&rep, fd, 4096, 64 * 1024, false);	     /* the pool's metadata / past end */
		try_map(&rep, fd, mine + 4096, 64 * 1024, false);    /* just past its own slice */

		/* Grow its own mapping with mremap and read what lies beyond. */
		void *p = mmap(NULL, 4096, PROT_READ, MAP_SHARED, fd, (off_t)mine);
		if (p != MAP_FAILED) {
			void *q = mremap(p, 4096, victim_off + victim_len + 4096, MREMAP_MAYMOVE);

			rep.mremap_r = q == MAP_FAILED ? -errno : 0;
			if (q != MAP_FAILED) {
				probe(&rep, q, victim_off + victim_len + 4096, true);
				munmap(q, victim_off + victim_len + 4096);
			} else {
				munmap(p, 4096);
			}
		}
		/* Reopen the descriptor by path: a new open is checked against the object's
		 * permissions, not inherited from the fd. */
		rep.reopen_rw_r = open_fd_path(fd, O_RDWR);
		rep.reopen_ro_r = open_fd_path(fd, O_RDONLY);
		/* Grow the file itself and read the new part: zero pages of its own, never others'. */
		if (rep.isolation == DAXPOOL_ISOLATION_SLICE) {
			/* (On a shared device this would cut the pool itself short.) */
			rep.ftruncate_r = ftruncate(fd, (off_t)(victim_off + victim_len)) < 0 ? -errno : 0;
			try_map(&rep, fd, 0, victim_off + victim_len, mine == 0);
		}

		/* A read-only OPEN of a slice shared with others (mode 0644): no write mapping and
		 * no writable reopen. */
		if (daxpool_open(dp, "shared-ro", 0, &ro) == 0) {
			int rfd = daxpool_slice_get_fd(ro);
			void *w = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, rfd,
				       (off_t)daxpool_slice_get_offset(ro));

			rep.ro_write_map_r = w == MAP_FAILED ? -errno : 0;
			if (w != MAP_FAILED)
				munmap(w, 4096);
			rep.ro_reopen_rw_r = open_fd_path(rfd, O_RDWR);
			daxpool_close(dp, &ro);
		} else {
			rep.ro_write_map_r = rep.ro_reopen_rw_r = 1; /* "could not even open" */
		}
		daxpool_free(dp, &s);
	}
	daxpool_disconnect(&dp);
	if (write(out, &rep, sizeof(rep)) != (ssize_t)sizeof(rep))
		_exit(97);
	_exit(0);
}

struct victim {
	struct test_daemon d;
	struct daxpool *dp;
	struct daxpool_slice *secret, *shared;
};

/* $DAXPOOL_TEST_DEVICE (a static device-dax namespace in the lab) runs the tests on real
 * device-dax; otherwise an emulated 64 MiB pool with 4K pages. */
static const char *test_device(void)
{
	const char *dev = getenv("DAXPOOL_TEST_DEVICE");

	return dev && *dev ? dev : NULL;
}

static void daemon_args(const char **args, char *pool, size_t len, const char *isolation)
{
	int n = 0;

	if (test_device()) {
		args[n++] = "--device";
		args[n++] = test_device();
	} else {
		snprintf(pool, len, "/tmp/daxpool-iso-%d-%s", (int)getpid(), isolation);
		args[n++] = "--emulate";
		args[n++] = pool;
		args[n++] = "--size";
		args[n++] = "64M";
		args[n++] = "--page";
		args[n++] = "4K";
	}
	args[n++] = "--format-if-empty";
	args[n++] = "--isolation";
	args[n++] = isolation;
	args[n] = NULL;
}

static void victim_setup(struct victim *v, const char *isolation)
{
	char pool[128];
	const char *args[16];
	uint8_t *p;

	memset(v, 0, sizeof(*v));
	daemon_args(args, pool, sizeof(pool), isolation);
	if (!test_device())
		unlink(pool);
	assert_int_equal(test_daemon_start(&v->d, args), 0);
	/* Any uid may reach the socket: the attacker is a tenant, not an outsider. */
	assert_int_equal(chmod(v->d.dir, 0755), 0);
	assert_int_equal(chmod(v->d.socket, 0666), 0);
	assert_int_equal(daxpool_connect(v->d.socket, &v->dp), 0);
	/* A named 1 MiB secret, mode 0600, full of the victim's pattern. */
	assert_int_equal(daxpool_alloc(v->dp, "secret", MiB, DAXPOOL_ALIGN_4K, 0600, 0, &v->secret), 0);
	assert_int_equal(daxpool_map(v->secret, 0, (void **)&p), 0);
	memset(p, VICTIM_BYTE, MiB);
	daxpool_unmap(v->secret);
	/* A slice others may read. */
	assert_int_equal(daxpool_alloc(v->dp, "shared-ro", 4096, DAXPOOL_ALIGN_4K, 0644, 0, &v->shared), 0);
	assert_int_equal(daxpool_map(v->shared, 0, (void **)&p), 0);
	memset(p, 0x11, 4096);
	daxpool_unmap(v->shared);
}

static void victim_teardown(struct victim *v, const char *isolation)
{
	char cmd[160];

	/* Freed, so a device is left as empty as it was found. */
	assert_int_equal(daxpool_free(v->dp, &v->secret), 0);
	assert_int_equal(daxpool_free(v->dp, &v->shared), 0);
	daxpool_disconnect(&v->dp);
	assert_int_equal(test_daemon_stop(&v->d, SIGTERM), 0);
	test_daemon_cleanup(&v->d);
	snprintf(cmd, sizeof(cmd), "rm -rf /tmp/daxpool-iso-%d-%s /tmp/daxpool-iso-%d-%s.slices",
		 (int)getpid(), isolation, (int)getpid(), isolation);
	assert_int_equal(system(cmd), 0);
}

/* Runs child(arg, fd) in a forked process and reads len bytes of its report from fd. */
static void run_in_child(void (*child)(const void *arg, int out), const void *arg, void *rep,
			 size_t len)
{
	int fds[2], status;
	pid_t pid;

	assert_int_equal(pipe(fds), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		close(fds[0]);
		child(arg, fds[1]);
		_exit(96); /* the children _exit themselves */
	}
	close(fds[1]);
	assert_int_equal(read(fds[0], rep, len), (ssize_t)len);
	close(fds[0]);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
}

static void attack_child(const void *arg, int out)
{
	const struct victim *v = arg;

	attack(v->d.socket, daxpool_slice_get_pool_offset(v->secret),
	       daxpool_slice_get_length(v->secret), out);
}

static void run_attack(struct victim *v, struct attack_report *rep)
{
	run_in_child(attack_child, v, rep, sizeof(*rep));
	print_message("isolation %d: readable %llu, victim %llu, foreign non-zero %llu, faults %d, "
		      "mmaps refused %d, reopen rw %d ro %d, mremap %d, ftruncate %d, ro write map %d, "
		      "ro reopen rw %d\n",
		      rep->isolation, (unsigned long long)rep->readable_bytes,
		      (unsigned long long)rep->victim_bytes, (unsigned long long)rep->nonzero_foreign,
		      rep->faults, rep->mmaps_refused, rep->reopen_rw_r, rep->reopen_ro_r, rep->mremap_r,
		      rep->ftruncate_r, rep->ro_write_map_r, rep->ro_reopen_rw_r);
}

static void test_slice_isolation_holds(void **state)
{
	struct victim v;
	struct attack_report rep;

	(void)state;
	if (test_device()) {
		/* A static namespace cannot be carved: asking for "slice" must be refused, never
		 * served with the device fd. */
		char pool[128];
		const char *args[16];

		daemon_args(args, pool, sizeof(pool), "slice");
		assert_int_equal(test_daemon_spawn(&v.d, args, NULL), 0);
		assert_int_equal(test_daemon_wait(&v.d, 60000), 1);
		test_daemon_cleanup(&v.d);
		return;
	}
	victim_setup(&v, "slice");
	assert_int_equal(daxpool_slice_get_isolation(v.secret), DAXPOOL_ISOLATION_SLICE);
	assert_int_equal(daxpool_slice_get_offset(v.secret), 0); /* its own object */
	assert_non_null(strstr(daxpool_slice_get_object(v.secret), ".slices/"));
	run_attack(&v, &rep);
	assert_int_equal(rep.connect_r, 0);
	assert_int_equal(rep.alloc_r, 0);
	assert_int_equal(rep.isolation, DAXPOOL_ISOLATION_SLICE);
	/* Not one byte of the victim's, nothing non-zero outside its own page. */
	assert_int_equal(rep.victim_bytes, 0);
	assert_int_equal(rep.nonzero_foreign, 0);
	/* Every probe beyond its 4 KiB faulted, until it grew its own file (below). */
	assert_true(rep.faults > 0);
	/* Reopening through /proc is checked against the object's owner and mode. */
	assert_int_equal(rep.reopen_rw_r, -EACCES);
	assert_int_equal(rep.reopen_ro_r, -EACCES);
	/* A read-only grant cannot be made writable. */
	assert_int_equal(rep.ro_write_map_r, -EACCES);
	assert_int_equal(rep.ro_reopen_rw_r, -EACCES);
	/* The CLI shows the mode and each slice's object. */
	char out[8192];
	const char *st_argv[] = { DAXPOOLCTL_PATH, "--socket", v.d.socket, "--json", "status", NULL };
	assert_int_equal(run_capture(st_argv, out, sizeof(out)), 0);
	struct json_object *js = json_tokener_parse(out), *iso;
	assert_non_null(js);
	assert_true(json_object_object_get_ex(js, "isolation", &iso));
	assert_string_equal(json_object_get_string(iso), "slice");
	json_object_put(js);
	const char *show_argv[] = { DAXPOOLCTL_PATH, "--socket", v.d.socket, "show", "secret", NULL };
	assert_int_equal(run_capture(show_argv, out, sizeof(out)), 0);
	assert_non_null(strstr(out, "object:"));
	assert_non_null(strstr(out, daxpool_slice_get_object(v.secret)));
	assert_non_null(strstr(out, "(isolation slice)"));
	/* And the victim's secret is intact. */
	uint8_t *p;
	assert_int_equal(daxpool_map(v.secret, 0, (void **)&p), 0);
	for (size_t i = 0; i < MiB; i += 4093)
		assert_int_equal(p[i], VICTIM_BYTE);
	daxpool_unmap(v.secret);
	victim_teardown(&v, "slice");
}

/* The control: the same attack on a daemon that passes the whole device finds the secret. */
static void test_shared_control_leaks(void **state)
{
	struct victim v;
	struct attack_report rep;

	(void)state;
	victim_setup(&v, "shared");
	assert_int_equal(daxpool_slice_get_isolation(v.secret), DAXPOOL_ISOLATION_SHARED);
	run_attack(&v, &rep);
	assert_int_equal(rep.alloc_r, 0);
	assert_int_equal(rep.isolation, DAXPOOL_ISOLATION_SHARED);
	assert_true(rep.victim_bytes >= MiB);
	assert_true(rep.nonzero_foreign > 0);
	victim_teardown(&v, "shared");
}

/* What a uid got from the daemon in owner isolation: ALLOC and OPEN results and messages. */
struct owner_report {
	int alloc_r, open_r, isolation;
	char alloc_msg[160];
};

static void owner_try(const char *sock, uid_t uid, int out)
{
	struct owner_report rep = { 0 };
	struct daxpool *dp = NULL;
	struct daxpool_slice *s = NULL;

	if (setgroups(0, NULL) < 0 || setgid(uid) < 0 || setuid(uid) < 0)
		_exit(98);
	rep.alloc_r = daxpool_connect(sock, &dp);
	if (rep.alloc_r == 0) {
		rep.alloc_r = daxpool_alloc(dp, NULL, 4096, DAXPOOL_ALIGN_4K, 0600, DAXPOOL_ANONYMOUS, &s);
		snprintf(rep.alloc_msg, sizeof(rep.alloc_msg), "%s", daxpool_errormsg());
		if (rep.alloc_r == 0) {
			rep.isolation = daxpool_slice_get_isolation(s);
			daxpool_free(dp, &s);
		}
		rep.open_r = daxpool_open(dp, "shared-ro", 0, &s);
		if (rep.open_r == 0)
			daxpool_close(dp, &s);
	}
	daxpool_disconnect(&dp);
	_exit(write(out, &rep, sizeof(rep)) == (ssize_t)sizeof(rep) ? 0 : 97);
}

struct owner_try_arg {
	const char *sock;
	uid_t uid;
};

static void owner_child(const void *arg, int out)
{
	const struct owner_try_arg *a = arg;

	owner_try(a->sock, a->uid, out);
}

static void run_owner_try(struct victim *v, uid_t uid, struct owner_report *rep)
{
	struct owner_try_arg a = { v->d.socket, uid };

	run_in_child(owner_child, &a, rep, sizeof(*rep));
	print_message("uid %u: ALLOC %d (%s), OPEN %d\n", (unsigned)uid, rep->alloc_r, rep->alloc_msg,
		      rep->open_r);
}

/* Owner isolation (a static device's default): one uid's slices per device. The first
 * non-administrator granted a slice (or made an owner by an administrator) is the device's
 * tenant; any other uid gets no descriptor at all, not even of a slice its mode bits would let
 * it read; an administrator cannot put its own slices beside the tenant's (the tenant could read
 * them); a restart keeps the binding. */
/* A device keeps the named slices of whatever ran on it before (the lab runs other payloads
 * first); an owner binding is only made on a device that holds nobody else's slices, live or
 * still quarantined, so an administrator frees them first, on a daemon in "shared" isolation,
 * and lets the daemon zero them. */
struct named_list {
	char names[64][256];
	unsigned n;
};

static int collect_named(const struct daxpool_slice_info *info, void *userdata)
{
	struct named_list *l = userdata;

	if (!info->anonymous && l->n < 64)
		snprintf(l->names[l->n++], sizeof(l->names[0]), "%s", info->name);
	return 0;
}

static void device_clear(void)
{
	struct test_daemon d;
	struct daxpool *dp = NULL;
	struct daxpool_slice *s;
	struct named_list *l = calloc(1, sizeof(*l));
	const char *args[16];
	char pool[128];

	assert_non_null(l);
	daemon_args(args, pool, sizeof(pool), "shared");
	assert_int_equal(test_daemon_start(&d, args), 0);
	assert_int_equal(daxpool_connect(d.socket, &dp), 0);
	do { /* 64 a round */
		l->n = 0;
		assert_int_equal(daxpool_list(dp, collect_named, l), 0);
		for (unsigned i = 0; i < l->n; i++) {
			s = NULL;
			assert_int_equal(daxpool_open(dp, l->names[i], DAXPOOL_OPEN_RDWR, &s), 0);
			assert_int_equal(daxpool_free(dp, &s), 0);
		}
		print_message("device: freed %u named slices left by earlier runs\n", l->n);
	} while (l->n == 64);
	/* ... and waits until what they freed (and what earlier runs left anonymous) is zeroed and
	 * released: until then it is still theirs. */
	for (int i = 0; i < 1800; i++) {
		struct daxpool_stats st;

		assert_int_equal(daxpool_stat(dp, &st, sizeof(st)), 0);
		if (st.quarantined == 0 && st.zeroing_pending_bytes == 0 && st.anonymous_slices == 0)
			break;
		assert_true(i < 1799);
		usleep(100000);
	}
	daxpool_disconnect(&dp);
	assert_int_equal(test_daemon_stop(&d, SIGTERM), 0);
	test_daemon_cleanup(&d);
	free(l);
}

static void owner_start(struct test_daemon *d, const char *socket_override)
{
	char pool[128];
	const char *args[16];
	struct daxpool *dp = NULL;

	daemon_args(args, pool, sizeof(pool), test_device() ? "auto" : "owner");
	if (!socket_override && !test_device())
		unlink(pool);
	if (!socket_override && test_device())
		device_clear();
	if (!socket_override) {
		assert_int_equal(test_daemon_start(d, args), 0);
		assert_int_equal(chmod(d->dir, 0755), 0);
	} else {
		char sock[128];

		snprintf(sock, sizeof(sock), "%s", socket_override);
		assert_int_equal(test_daemon_spawn(d, args, sock), 0);
		for (int i = 0; i < 600 && daxpool_connect(d->socket, &dp) < 0; i++)
			usleep(100000);
		assert_non_null(dp);
		daxpool_disconnect(&dp);
	}
	assert_int_equal(chmod(d->socket, 0666), 0);
}

static void test_owner_isolation(void **state)
{
	struct test_daemon d;
	struct daxpool *dp = NULL;
	struct daxpool_slice *s = NULL, *mine = NULL;
	struct owner_report rep;
	struct victim v; /* run_owner_try reads the socket from it */
	char first_dir[64], sock[128], cmd[200];

	(void)state;
	owner_start(&d, NULL);
	memcpy(first_dir, d.dir, sizeof(first_dir));
	snprintf(sock, sizeof(sock), "%s", d.socket);
	assert_int_equal(daxpool_connect(d.socket, &dp), 0);
	/* An administrator makes a slice for uid 1000, readable by anyone: 1000 is the tenant. */
	assert_int_equal(daxpool_alloc_owned(dp, "shared-ro", 4096, DAXPOOL_ALIGN_4K, 0644, 1000, 1000, &s), 0);
	assert_int_equal(daxpool_slice_get_isolation(s), DAXPOOL_ISOLATION_OWNER);
	/* ... and cannot then put one of its own there. */
	assert_int_equal(daxpool_alloc(dp, "root-own", 4096, DAXPOOL_ALIGN_4K, 0600, 0, &mine), -EACCES);
	print_message("root's own ALLOC: %s\n", daxpool_errormsg());
	memset(&v, 0, sizeof(v));
	v.d = d;
	run_owner_try(&v, 1000, &rep);
	assert_int_equal(rep.alloc_r, 0);
	assert_int_equal(rep.isolation, DAXPOOL_ISOLATION_OWNER);
	assert_int_equal(rep.open_r, 0);
	run_owner_try(&v, NOBODY, &rep); /* anyone else: refused, mode bits or not */
	assert_int_equal(rep.alloc_r, -EACCES);
	assert_non_null(strstr(rep.alloc_msg, "single user"));
	assert_int_equal(rep.open_r, -EACCES);

	/* The binding survives a restart (it lasts until reboot). */
	daxpool_close(dp, &s);
	daxpool_disconnect(&dp);
	assert_int_equal(test_daemon_stop(&d, SIGTERM), 0);
	owner_start(&d, sock);
	v.d = d;
	run_owner_try(&v, NOBODY, &rep);
	assert_int_equal(rep.alloc_r, -EACCES);
	run_owner_try(&v, 1000, &rep);
	assert_int_equal(rep.alloc_r, 0);
	assert_int_equal(daxpool_connect(d.socket, &dp), 0);
	assert_int_equal(daxpool_open(dp, "shared-ro", DAXPOOL_OPEN_RDWR, &s), 0);
	assert_int_equal(daxpool_free(dp, &s), 0);
	daxpool_disconnect(&dp);
	assert_int_equal(test_daemon_stop(&d, SIGTERM), 0);
	test_daemon_cleanup(&d);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s' /tmp/daxpool-iso-%d-owner /tmp/daxpool-iso-%d-owner.slices",
		 first_dir, (int)getpid(), (int)getpid());
	assert_int_equal(system(cmd), 0);
}

/* Re-grants: what one who allocates 2 MiB slices until it is given the extent at offset saw. */
struct regrant_arg {
	const char *socket;
	uint64_t offset;
};
struct regrant_report {
	int found;
	int tries;
	uint64_t nonzero; /* bytes not zero in every extent granted, that one above all */
};

/* Allocates 2 MiB anonymous slices on dp until one is at offset (waiting while freed extents are
 * zeroed), reads every byte of each, then frees them all. */
static struct regrant_report take_until(struct daxpool *dp, uint64_t offset)
{
	struct regrant_report rep = { 0 };
	struct daxpool_slice *held[40];
	int n = 0;

	for (; rep.tries < 400 && !rep.found && n < 40; rep.tries++) {
		struct daxpool_slice *b = NULL;
		uint8_t *p;
		int r = daxpool_alloc(dp, NULL, 2 * MiB, DAXPOOL_ALIGN_4K, 0600, DAXPOOL_ANONYMOUS, &b);

		if (r == -EAGAIN || r == -ENOSPC) { /* still being zeroed */
			usleep(10000);
			continue;
		}
		if (r < 0 || daxpool_map(b, 0, (void **)&p) < 0) {
			rep.found = -1;
			break;
		}
		for (size_t i = 0; i < 2 * MiB; i++)
			rep.nonzero += p[i] != 0;
		daxpool_unmap(b);
		rep.found = daxpool_slice_get_pool_offset(b) == offset;
		held[n++] = b;
	}
	while (n > 0)
		daxpool_free(dp, &held[--n]);
	return rep;
}

/* A former tenant's bytes are never readable by the next: root fills and frees a 2 MiB slice;
 * uid 65534 allocates until it is granted that extent (once zeroed) and reads it whole. */
static void regrant_child(const void *arg, int out)
{
	const struct regrant_arg *a = arg;
	struct regrant_report rep;
	struct daxpool *dp = NULL;

	if (setgroups(0, NULL) < 0 || setgid(NOBODY) < 0 || setuid(NOBODY) < 0 ||
	    daxpool_connect(a->socket, &dp) < 0)
		_exit(2);
	rep = take_until(dp, a->offset);
	if (write(out, &rep, sizeof(rep)) != sizeof(rep))
		_exit(4);
	daxpool_disconnect(&dp);
	_exit(rep.found < 0 ? 3 : 0);
}

/* A 2 MiB anonymous slice filled with 0x77 and freed: its pool offset. */
static uint64_t fill_and_free(struct daxpool *dp)
{
	struct daxpool_slice *a = NULL;
	uint64_t off;
	uint8_t *p;

	assert_int_equal(daxpool_alloc(dp, NULL, 2 * MiB, DAXPOOL_ALIGN_4K, 0600, DAXPOOL_ANONYMOUS, &a), 0);
	off = daxpool_slice_get_pool_offset(a);
	assert_int_equal(daxpool_map(a, 0, (void **)&p), 0);
	memset(p, 0x77, 2 * MiB);
	daxpool_unmap(a);
	assert_int_equal(daxpool_free(dp, &a), 0);
	return off;
}

/* A former tenant's bytes are never readable after free and re-grant. */
static void test_regrant_is_zero(void **state)
{
	struct victim v;

	(void)state;
	if (test_device()) {
		print_message("on device-dax the lab's test_slices checks re-granted extents\n");
		skip();
	}
	victim_setup(&v, "slice");
	for (int round = 0; round < 3; round++) {
		uint64_t off = fill_and_free(v.dp);
		/* Take extents until the freed one comes back (it must once zeroed: the pool is
		 * small); every one must read as zero, that one above all. */
		struct regrant_report rep = take_until(v.dp, off);

		assert_true(rep.found);
		assert_int_equal(rep.nonzero, 0);
	}
	victim_teardown(&v, "slice");
}

static void test_regrant_cross_uid(void **state)
{
	struct victim v;
	struct regrant_report rep;
	struct regrant_arg arg;

	(void)state;
	if (test_device()) {
		print_message("on device-dax the lab's test_slices checks re-granted extents\n");
		skip();
	}
	victim_setup(&v, "slice");
	for (int round = 0; round < 2; round++) {
		arg = (struct regrant_arg){ .socket = v.d.socket, .offset = fill_and_free(v.dp) };
		run_in_child(regrant_child, &arg, &rep, sizeof(rep));
		print_message("re-grant to uid %d: found after %d tries, non-zero bytes %llu\n", NOBODY,
			      rep.tries, (unsigned long long)rep.nonzero);
		assert_true(rep.found);
		assert_int_equal(rep.nonzero, 0);
	}
	victim_teardown(&v, "slice");
}

/* Restarting a pool in another mode keeps every named slice's data: shared -> slice moves it
 * out of the pool file into the slice's own file (and frees the pool file's data area), slice
 * -> shared moves it back. */
static void start_on(struct test_daemon *d, const char *pool, const char *isolation)
{
	const char *args[] = { "--emulate", pool, "--size", "64M", "--page", "4K", "--format-if-empty",
			       "--isolation", isolation, NULL };

	assert_int_equal(test_daemon_start(d, args), 0);
}

static void check_keep(struct test_daemon *d, int isolation, uint8_t want, uint8_t next)
{
	struct daxpool *dp = NULL;
	struct daxpool_slice *s = NULL;
	uint8_t *p;

	assert_int_equal(daxpool_connect(d->socket, &dp), 0);
	assert_int_equal(daxpool_open(dp, "keep", DAXPOOL_OPEN_RDWR, &s), 0);
	assert_int_equal(daxpool_slice_get_isolation(s), isolation);
	assert_int_equal(daxpool_map(s, 0, (void **)&p), 0);
	for (size_t i = 0; i < 3 * MiB; i += 4096)
		if (p[i] != want || p[i + 4095] != want)
			fail_msg("byte %zu is 0x%02x, not 0x%02x, after the mode changed", i, p[i], want);
	memset(p, next, 3 * MiB);
	daxpool_unmap(s);
	assert_int_equal(daxpool_close(dp, &s), 0);
	daxpool_disconnect(&dp);
	assert_int_equal(test_daemon_stop(d, SIGTERM), 0);
	test_daemon_cleanup(d);
}

static void test_mode_change_keeps_data(void **state)
{
	struct test_daemon d;
	struct daxpool *dp = NULL;
	struct daxpool_slice *s = NULL;
	char pool[128], slices[160], cmd[400];
	uint8_t *p;
	struct stat st;

	(void)state;
	if (test_device()) {
		print_message("switching layouts is the emulated backend's (a device has one)\n");
		skip();
	}
	snprintf(pool, sizeof(pool), "/tmp/daxpool-iso-%d-mode", (int)getpid());
	snprintf(slices, sizeof(slices), "%s.slices", pool);
	start_on(&d, pool, "shared");
	assert_int_equal(daxpool_connect(d.socket, &dp), 0);
	assert_int_equal(daxpool_alloc(dp, "keep", 3 * MiB, DAXPOOL_ALIGN_4K, 0600, 0, &s), 0);
	assert_int_equal(daxpool_map(s, 0, (void **)&p), 0);
	memset(p, 0x5a, 3 * MiB);
	daxpool_unmap(s);
	assert_int_equal(daxpool_close(dp, &s), 0);
	daxpool_disconnect(&dp);
	assert_int_equal(test_daemon_stop(&d, SIGTERM), 0);
	test_daemon_cleanup(&d);

	start_on(&d, pool, "slice");
	check_keep(&d, DAXPOOL_ISOLATION_SLICE, 0x5a, 0x6b);
	/* The pool file gave its data area back: it holds metadata only. */
	assert_int_equal(stat(pool, &st), 0);
	assert_true((uint64_t)st.st_blocks * 512 < 3 * MiB);
	assert_int_equal(stat(slices, &st), 0);

	start_on(&d, pool, "shared");
	check_keep(&d, DAXPOOL_ISOLATION_SHARED, 0x6b, 0x7c);
	assert_int_equal(stat(slices, &st), -1); /* the files are gone */

	start_on(&d, pool, "slice");
	check_keep(&d, DAXPOOL_ISOLATION_SLICE, 0x7c, 0x7c);
	snprintf(cmd, sizeof(cmd), "rm -rf %s %s", pool, slices);
	assert_int_equal(system(cmd), 0);
}

/* Slices of two owners made under isolation "shared", then "owner": no non-administrator is
 * given the device while both are there; once an administrator has freed one owner's slices
 * and the daemon has zeroed them, the other owner is served (and becomes the tenant). */
static void test_owner_conflict_clears(void **state)
{
	struct test_daemon d;
	struct daxpool *dp = NULL;
	struct daxpool_slice *s = NULL;
	struct daxpool_stats st;
	struct owner_report rep;
	struct victim v;
	char pool[128], cmd[400];

	(void)state;
	if (test_device()) {
		print_message("switching isolation on one pool is tested on the emulated backend\n");
		skip();
	}
	snprintf(pool, sizeof(pool), "/tmp/daxpool-iso-%d-conflict", (int)getpid());
	unlink(pool);
	start_on(&d, pool, "shared");
	assert_int_equal(daxpool_connect(d.socket, &dp), 0);
	assert_int_equal(daxpool_alloc_owned(dp, "of-1000", 4096, DAXPOOL_ALIGN_4K, 0600, 1000, 1000, &s), 0);
	daxpool_close(dp, &s);
	assert_int_equal(daxpool_alloc_owned(dp, "of-1001", 4096, DAXPOOL_ALIGN_4K, 0600, 1001, 1001, &s), 0);
	daxpool_close(dp, &s);
	daxpool_disconnect(&dp);
	assert_int_equal(test_daemon_stop(&d, SIGTERM), 0);
	test_daemon_cleanup(&d);

	start_on(&d, pool, "owner");
	assert_int_equal(chmod(d.dir, 0755), 0);
	assert_int_equal(chmod(d.socket, 0666), 0);
	memset(&v, 0, sizeof(v));
	v.d = d;
	run_owner_try(&v, 1000, &rep);
	assert_int_equal(rep.alloc_r, -EACCES);
	run_owner_try(&v, 1001, &rep);
	assert_int_equal(rep.alloc_r, -EACCES);
	assert_int_equal(daxpool_connect(d.socket, &dp), 0);
	assert_int_equal(daxpool_open(dp, "of-1001", DAXPOOL_OPEN_RDWR, &s), 0);
	assert_int_equal(daxpool_free(dp, &s), 0);
	for (int i = 0; i < 600; i++) {
		assert_int_equal(daxpool_stat(dp, &st, sizeof(st)), 0);
		if (st.quarantined == 0 && st.zeroing_pending_bytes == 0)
			break;
		usleep(10000);
	}
	run_owner_try(&v, 1000, &rep);
	assert_int_equal(rep.alloc_r, 0);
	assert_int_equal(rep.isolation, DAXPOOL_ISOLATION_OWNER);
	run_owner_try(&v, 1001, &rep); /* 1000 is the tenant now */
	assert_int_equal(rep.alloc_r, -EACCES);
	daxpool_disconnect(&dp);
	assert_int_equal(test_daemon_stop(&d, SIGTERM), 0);
	test_daemon_cleanup(&d);
	snprintf(cmd, sizeof(cmd), "rm -rf %s %s.slices", pool, pool);
	assert_int_equal(system(cmd), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_slice_isolation_holds),
		cmocka_unit_test(test_shared_control_leaks),
		cmocka_unit_test(test_owner_isolation),
		cmocka_unit_test(test_owner_conflict_clears),
		cmocka_unit_test(test_regrant_is_zero),
		cmocka_unit_test(test_regrant_cross_uid),
		cmocka_unit_test(test_mode_change_keeps_data),
	};

	if (geteuid() != 0) {
		printf("# skipped: the attacker runs as uid %d, which needs root to switch to\n", NOBODY);
		return 77;
	}
	return cmocka_run_group_tests(tests, NULL, NULL);
}
