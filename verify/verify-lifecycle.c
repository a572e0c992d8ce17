/* daxpoolctl verify, scenarios "munmap" and "teardown".
 *
 * munmap: a pinned range stays reachable through the pin after munmap, and the folio's refcount
 * moves by exactly the mapping's share on munmap and by the pin's share on unpin, as observed
 * through a second mapping of the same slice. A child that pins and is SIGKILLed leaves nothing.
 *
 * teardown: the kernel does not protect a pinned device-dax range from being disabled (the
 * unpin later oopses: docs/VERIFICATION.md), so the only defence is in daxpool — daxpoolctl
 * destroy must refuse while the device is in use, and daxpoold must not hand out a freed extent
 * while a pin on it is declared. The device is never actually disabled here. */
#include "proc-util.h"
#include "verify-common.h"
#include "macro.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/mman.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static void skip_refs(struct verify *v, const char *S, const char *name)
{
	vreport_skip(v->rep, S, name, "%s", v->devdax ? v->ref_reason : "emulated backend: no device-dax folios");
}

/* A child that maps the slice itself, pins its first device page, says so and waits for SIGKILL. */
static _noreturn_ void pinning_child(int fd, uint64_t offset, uint64_t granule, uint64_t pinlen, int ready)
{
	struct vpin pin;
	char err[512];
	uint8_t *base, *a;
	char c;

	base = mmap(NULL, 2 * granule, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	a = (uint8_t *)(((uintptr_t)base + granule - 1) & ~(uintptr_t)(granule - 1));
	if (base == MAP_FAILED ||
	    mmap(a, granule, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_FIXED, fd, (off_t)offset) == MAP_FAILED)
		_exit(2);
	a[0] = 1;
	c = vpin_take(&pin, a, pinlen, false, err, sizeof(err)) == 0 ? (char)('0' + pin.kind) : 'x';
	if (write(ready, &c, 1) != 1)
		_exit(3);
	for (;;)
		pause();
}

static void munmap_sigkill(struct verify *v, struct daxpool_slice *s, void *b)
{
	static const char *S = "munmap";
	struct vref base, held, after;
	struct pollfd pfd;
	int pipefd[2], status;
	pid_t pid;
	char c = 0;

	if (!v->devdax || !v->ref_probe) {
		skip_refs(v, S, "sigkill-releases");
		return;
	}
	if (verify_read_ref(v, b, &base) < 0 || pipe2(pipefd, O_CLOEXEC) < 0) {
		vreport_add(v->rep, S, "sigkill-releases", VCHECK_FAILED, NULL, NULL, "set-up failed");
		return;
	}
	fflush(NULL);
	pid = fork();
	if (pid == 0) {
		close(pipefd[0]);
		pinning_child(daxpool_slice_get_fd(s), daxpool_slice_get_offset(s), v->granule, verify_pin_len(v),
			      pipefd[1]);
	}
	close(pipefd[1]);
	pfd = (struct pollfd){ .fd = pipefd[0], .events = POLLIN };
	if (pid < 0 || poll(&pfd, 1, 60000) != 1 || read(pipefd[0], &c, 1) != 1 || c == 'x') {
		vreport_add(v->rep, S, "sigkill-releases", VCHECK_FAILED, NULL, NULL,
			    "the child could not map and pin the slice (%c)", c ? c : '?');
		if (pid > 0) {
			kill(pid, SIGKILL);
			waitpid(pid, &status, 0);
		}
		close(pipefd[0]);
		return;
	}
	close(pipefd[0]);
	if (verify_read_ref(v, b, &held) == 0) {
		enum vpin_kind kind = (enum vpin_kind)(c - '0');
		int64_t alt, want = verify_pin_share(v, kind, verify_pin_len(v), held.large, &alt);

		/* The child's mapping (touched: present) and its pin, on top of what was there. */
		want += base.ref + verify_map_share(v);
		alt = alt ? alt + base.ref + verify_map_share(v) : 0;
		vreport_add(v->rep, S, "child-pin-visible",
			    verify_share_ok(held.ref, want, alt) ? VCHECK_PASSED : VCHECK_FAILED,
			    json_object_new_int64(held.ref), verify_share_json(want, alt),
			    "a child mapped the slice (a mapping holds %lld) and pinned %llu KiB by %s: refcount "
			    "%lld -> %lld", (long long)verify_map_share(v),
			    (unsigned long long)(verify_pin_len(v) >> 10), vpin_kind_name(kind), (long long)base.ref,
			    (long long)held.ref);
	}
	kill(pid, SIGKILL);
	waitpid(pid, &status, 0);
	/* io_uring and RDMA release their pins from work queued at exit: give them a moment. */
	if (verify_wait_ref(v, b, base.ref, 10000, &after) == 0)
		vreport_eq(v->rep, S, "sigkill-releases", after.ref, base.ref,
			   "refcount after the pinning child was SIGKILLed (its mapping and %s pin gone)",
			   vpin_kind_name((enum vpin_kind)(c - '0')));
	else
		vreport_add(v->rep, S, "sigkill-releases", VCHECK_FAILED, NULL, NULL, "reading the refcount failed");
}

void verify_munmap(struct verify *v)
{
	static const char *S = "munmap";
	struct daxpool_slice *s = NULL;
	void *a = NULL, *b = NULL, *unused;
	struct vref r_ab, r_p, r_u, r_f;
	uint8_t want[4096], got[4096];
	char err[512];
	struct vpin pin;
	enum vpin_kind kind;
	uint64_t len, id = 0;
	bool refs;
	int r;

	/* The slice is mapped by libdaxpool only to have a handle; both mappings measured here are
	 * ours, so one can be unmapped under a pin (daxpool_unmap refuses that on purpose). */
	r = verify_slice_new(v, &s, &unused);
	if (r < 0) {
		vreport_add(v->rep, S, "slice", VCHECK_FAILED, NULL, NULL, "%s", daxpool_errormsg());
		return;
	}
	(void)daxpool_unmap(s);
	len = daxpool_slice_get_length(s);
	r = verify_map_extra(s, v->granule, &a);
	if (r == 0)
		r = verify_map_extra(s, v->granule, &b);
	if (r < 0) {
		vreport_add(v->rep, S, "map", VCHECK_FAILED, NULL, NULL, "mmap: %s", strerror(-r));
		goto out;
	}
	verify_touch(b, 4096); /* before the pattern: b maps the same bytes */
	verify_pattern(a, sizeof(want), v->seed + 17);
	memcpy(want, a, sizeof(want));
	refs = v->devdax && v->ref_probe && verify_read_ref(v, b, &r_ab) == 0;
	r = vpin_take(&pin, a, (size_t)verify_pin_len(v), false, err, sizeof(err));
	if (r < 0) {
		vreport_add(v->rep, S, "pin", VCHECK_FAILED, NULL, NULL, "no way to pin here: %s", err);
		goto out;
	}
	kind = pin.kind; /* vpin_release forgets it */
	vreport_add(v->rep, S, "pin", VCHECK_PASSED, json_object_new_string(vpin_kind_name(pin.kind)), NULL,
		    "pinned the first device page of the mapping that will be unmapped%s",
		    pin.kind == VPIN_PIPE ? " (vmsplice: no long-term pin works on this machine)" : "");
	if (pin.kind != VPIN_PIPE && daxpool_pin_declare(v->dp, s, 0, verify_pin_len(v), &id) < 0)
		id = 0;
	if (refs)
		refs = verify_read_ref(v, b, &r_p) == 0;
	if (munmap(a, len) < 0) {
		vreport_add(v->rep, S, "munmap", VCHECK_FAILED, NULL, NULL, "munmap: %s", strerror(errno));
		a = NULL;
		vpin_release(&pin);
		goto out;
	}
	a = NULL;
	vreport_add(v->rep, S, "munmap", VCHECK_PASSED, NULL, NULL, "munmap of the pinned mapping succeeded");
	if (refs)
		refs = verify_read_ref(v, b, &r_u) == 0;
	r = vpin_read(&pin, got, sizeof(got), err, sizeof(err));
	vreport_true(v->rep, S, "data-through-pin", r == 0 && memcmp(got, want, sizeof(got)) == 0,
		     "4 KiB read through the %s pin after munmap equal what was written%s%s",
		     vpin_kind_name(pin.kind), r ? ": " : "", r ? err : "");
	vpin_release(&pin);
	if (id)
		(void)daxpool_pin_undeclare(v->dp, id);
	if (refs)
		refs = verify_read_ref(v, b, &r_f) == 0;
	if (refs) {
		int64_t alt, share = verify_pin_share(v, kind, verify_pin_len(v), r_p.large, &alt);

		vreport_add(v->rep, S, "pin-share",
			    verify_share_ok(r_p.ref - r_ab.ref, share, alt) ? VCHECK_PASSED : VCHECK_FAILED,
			    json_object_new_int64(r_p.ref - r_ab.ref), verify_share_json(share, alt),
			    "refcount %lld -> %lld when %llu KiB were pinned by %s", (long long)r_ab.ref,
			    (long long)r_p.ref, (unsigned long long)(verify_pin_len(v) >> 10), vpin_kind_name(kind));
		vreport_eq(v->rep, S, "munmap-drops-map-share", r_p.ref - r_u.ref, verify_map_share(v),
			   "refcount %lld -> %lld on munmap (%s: a mapping holds %lld)", (long long)r_p.ref,
			   (long long)r_u.ref, verify_gen_name(v->gen), (long long)verify_map_share(v));
		vreport_eq(v->rep, S, "unpin-drops-pin-share", r_u.ref - r_f.ref, r_p.ref - r_ab.ref,
			   "refcount %lld -> %lld on unpin", (long long)r_u.ref, (long long)r_f.ref);
	} else {
		skip_refs(v, S, "pin-share");
		skip_refs(v, S, "munmap-drops-map-share");
		skip_refs(v, S, "unpin-drops-pin-share");
	}
	munmap_sigkill(v, s, b);
out:
	verify_unmap_extra(a, len);
	verify_unmap_extra(b, len);
	verify_slice_close(v, &s);
}

/* Runs daxpoolctl destroy DEVICE (never --force) and returns its exit status. */
static int run_destroy(struct verify *v, const char *dev)
{
	int status;
	pid_t pid;

	fflush(NULL);
	pid = fork();
	if (pid == 0) {
		int null = open("/dev/null", O_WRONLY);

		dup2(null, STDOUT_FILENO);
		dup2(null, STDERR_FILENO);
		execlp(v->ctl_exe, v->ctl_exe, "destroy", dev, (char *)NULL);
		_exit(127);
	}
	if (pid < 0 || waitpid(pid, &status, 0) != pid)
		return -1;
	return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

static void teardown_destroy(struct verify *v, struct daxpool_slice *s, void *a)
{
	static const char *S = "teardown";
	char dev[PATH_MAX], sys[PATH_MAX + 64], err[512];
	struct vpin pin;
	pid_t pids[16];
	uint64_t id = 0;
	int users, rc;

	verify_slice_device(s, dev, sizeof(dev));
	if (!dev[0]) {
		vreport_skip(v->rep, S, "destroy-refused", "emulated backend: no device to disable");
		return;
	}
	if (vpin_take(&pin, a, (size_t)verify_pin_len(v), false, err, sizeof(err)) < 0)
		pin.kind = VPIN_NONE;
	(void)daxpool_pin_declare(v->dp, s, 0, verify_pin_len(v), &id);
	/* Who holds the device: this process (it maps the slice, pinned), and daxpoold where the
	 * slice is part of the device it serves (a carved sub-device is this slice's alone). A
	 * destroy command, another process, must see at least one. */
	users = proc_path_users(dev, pids, ARRAY_SIZE(pids));
	if (users >= 0 && proc_self_uses(dev) == 1)
		users++;
	vreport_add(v->rep, S, "device-in-use", users >= 1 ? VCHECK_PASSED : VCHECK_FAILED,
		    json_object_new_int(users), json_object_new_string(">=1"),
		    "processes holding %s (this one, mapping it with a %s pin; daxpoold where it "
		    "serves the whole device)", dev, vpin_kind_name(pin.kind));
	/* Without a holder the refusal would rest on the pool check alone: do not even try. */
	if (users >= 1) {
		rc = run_destroy(v, dev);
		snprintf(sys, sizeof(sys), "/sys/bus/dax/devices/%s/driver", strrchr(dev, '/') + 1);
		vreport_eq(v->rep, S, "destroy-refused", rc, 1 /* daxpoolctl: operation failed */,
			   "daxpoolctl destroy %s while pinned (the kernel would not wait for the pin)", dev);
		vreport_true(v->rep, S, "device-still-enabled", access(sys, F_OK) == 0, "%s", sys);
	}
	vpin_release(&pin);
	if (id)
		(void)daxpool_pin_undeclare(v->dp, id);
}

struct extent {
	uint64_t offset, length;
};

/* Allocates anonymous slices of v->size until the pool is full (at most max); returns how many,
 * and in *overlaps how many overlap e. */
static unsigned fill_pool(struct verify *v, struct daxpool_slice **more, unsigned max,
			  const struct extent *e, unsigned *overlaps)
{
	unsigned n;

	*overlaps = 0;
	for (n = 0; n < max; n++) {
		uint64_t o, l;

		if (daxpool_alloc(v->dp, NULL, v->size, v->align, 0600, DAXPOOL_ANONYMOUS, &more[n]) < 0)
			break;
		o = daxpool_slice_get_pool_offset(more[n]);
		l = daxpool_slice_get_length(more[n]);
		if (o < e->offset + e->length && e->offset < o + l)
			(*overlaps)++;
	}
	return n;
}


/*
 * A named slice is opened on a second connection, mapped, its first page held by a pipe and a
 * pin declared there; the owner's handle on the first connection frees it (FREE refuses only
 * on a handle with pins). Then the pool is filled: no new slice may overlap the pinned extent.
 * After the pin is released the same fill must reuse it — the control that shows the first fill
 * could have failed.
 */
static void teardown_reuse(struct verify *v)
{
	static const char *S = "teardown";
	_cleanup_(disconnectp) struct daxpool *dp2 = NULL;
	struct daxpool_slice *owner = NULL, *s2 = NULL, *more[256];
	struct daxpool_stats st;
	struct extent pinned;
	uint8_t want[4096], got[4096];
	unsigned n, overlaps;
	int pipefd[2] = { -1, -1 };
	bool held = false, settled;
	char name[64];
	uint64_t id = 0;
	void *a;
	int r;

	snprintf(name, sizeof(name), "daxpool-verify-%d-pinned", (int)getpid());
	r = daxpool_alloc(v->dp, name, v->size, v->align, 0600, 0, &owner);
	if (r == 0)
		r = daxpool_connect(v->socket_path, &dp2);
	if (r == 0)
		r = daxpool_open(dp2, name, DAXPOOL_OPEN_RDWR, &s2);
	if (r == 0)
		r = daxpool_map(s2, 0, &a);
	if (r < 0) {
		vreport_add(v->rep, S, "free-while-pinned", VCHECK_FAILED, NULL, NULL, "set-up: %s", daxpool_errormsg());
		goto out;
	}
	pinned = (struct extent){ daxpool_slice_get_pool_offset(s2), daxpool_slice_get_length(s2) };
	verify_pattern(a, sizeof(want), v->seed + 23);
	memcpy(want, a, sizeof(want));
	/* A pipe reference keeps the page reachable; the declaration is what daxpoold goes by. */
	if (pipe2(pipefd, O_CLOEXEC) == 0) {
		struct iovec iov = { a, sizeof(want) };

		held = vmsplice(pipefd[1], &iov, 1, 0) == (ssize_t)sizeof(want);
	}
	r = daxpool_pin_declare(dp2, s2, 0, pinned.length, &id);
	if (r < 0) {
		vreport_add(v->rep, S, "free-while-pinned", VCHECK_FAILED, NULL, NULL, "daxpool_pin_declare: %s",
			    daxpool_errormsg());
		goto out;
	}
	/* Let what earlier scenarios freed finish waiting (pin grace, zeroing): then the freed
	 * slice's extent is the only one daxpoold waits for. */
	settled = verify_wait_settled(v, 60000);
	r = daxpool_free(v->dp, &owner);
	vreport_eq(v->rep, S, "free-while-pinned", r, 0,
		   "the owner frees the slice while another handle has a declared pin%s%s", r ? ": " : "",
		   r ? daxpool_errormsg() : "");
	if (!settled)
		vreport_add(v->rep, S, "extent-waits", VCHECK_FAILED, NULL, json_object_new_int64(1),
			    "daxpoold still had freed extents waiting 60 s after the earlier scenarios");
	else if (daxpool_stat(v->dp, &st, sizeof(st)) == 0)
		vreport_eq(v->rep, S, "extent-waits", (int64_t)st.leases_waiting, 1,
			   "freed extents daxpoold keeps waiting for holders or pins (none before this free)");
	n = fill_pool(v, more, ARRAY_SIZE(more), &pinned, &overlaps);
	vreport_eq(v->rep, S, "not-reused-while-pinned", overlaps, 0,
		   "%u slices of %llu MiB allocated until the pool was full; none may overlap the pinned "
		   "extent at 0x%llx", n, (unsigned long long)(v->size >> 20), (unsigned long long)pinned.offset);
	if (held) {
		ssize_t m = read(pipefd[0], got, sizeof(got));

		vreport_true(v->rep, S, "pinned-data-intact", m == (ssize_t)sizeof(got) && memcmp(got, want, sizeof(got)) == 0,
			     "the page held by the pipe still holds its data (not zeroed for reuse)");
	} else {
		vreport_skip(v->rep, S, "pinned-data-intact", "vmsplice failed: %s", strerror(errno));
	}
	for (unsigned i = 0; i < n; i++)
		verify_slice_close(v, &more[i]);
	/* Release: undeclare, close the second handle; then the extent must come back. */
	(void)daxpool_pin_undeclare(dp2, id);
	id = 0;
	(void)daxpool_close(dp2, &s2);
	if (!verify_wait_settled(v, 60000)) {
		vreport_add(v->rep, S, "reused-after-release", VCHECK_FAILED, NULL, NULL,
			    "daxpoold still had freed extents waiting 60 s after the pin was released");
		goto out;
	}
	n = fill_pool(v, more, ARRAY_SIZE(more), &pinned, &overlaps);
	vreport_eq(v->rep, S, "reused-after-release", overlaps, 1,
		   "control: after the pin was undeclared and the handle closed, filling the pool (%u "
		   "slices) reuses the extent", n);
	for (unsigned i = 0; i < n; i++)
		verify_slice_close(v, &more[i]);
out:
	for (int i = 0; i < 2; i++)
		if (pipefd[i] >= 0)
			close(pipefd[i]);
	if (id)
		(void)daxpool_pin_undeclare(dp2, id);
	if (s2)
		(void)daxpool_close(dp2, &s2);
	if (owner)
		(void)daxpool_free(v->dp, &owner);
}

void verify_teardown(struct verify *v)
{
	struct daxpool_slice *s = NULL;
	void *a;
	int r;

	r = verify_slice_new(v, &s, &a);
	if (r < 0) {
		vreport_add(v->rep, "teardown", "slice", VCHECK_FAILED, NULL, NULL, "%s", daxpool_errormsg());
		return;
	}
	verify_touch(a, 4096);
	teardown_destroy(v, s, a);
	verify_slice_close(v, &s);
	teardown_reuse(v);
}
