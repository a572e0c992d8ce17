/* daxpoolctl verify, scenarios "longterm" and "gup": long-term pins (io_uring fixed buffers
 * through libdaxpool's daxpool_pin_longterm; RDMA ibv_reg_mr declared with daxpool_pin_declare,
 * with an RDMA WRITE into the slice) and short-term GUP (O_DIRECT to and from a file, vmsplice
 * into a pipe). Each pin must show in the folio's counters and be gone after its release. */
#include "verify-common.h"
#include "verify-rdma.h"
#include "macro.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

static uint64_t pins_now(struct verify *v)
{
	struct daxpool_stats st;

	return daxpool_stat(v->dp, &st, sizeof(st)) == 0 ? st.pins : UINT64_MAX;
}

/*
 * Checks the share a long-term pin of len bytes from the start of the read page added
 * (verify_pin_share): a small page GUP_PIN_COUNTING_BIAS refs; a compound page one ref and one
 * pincount per pinned 4 KiB subpage (RDMA), or per folio where io_uring coalesced the
 * registration (6.12, 7.3) — the note says which was seen.
 */
static void check_pinned(struct verify *v, const char *S, const char *name, const struct vref *idle,
			 const struct vref *pinned, uint64_t len, enum vpin_kind kind, const char *what)
{
	int64_t alt, want = verify_pin_share(v, kind, len, pinned->large, &alt);
	int64_t dref = pinned->ref - idle->ref, dpin = pinned->pin - idle->pin;
	bool ok;

	if (!pinned->large) {
		vreport_eq(v->rep, S, name, dref, want,
			   "%s: refcount %lld -> %lld (a small page: one pin is GUP_PIN_COUNTING_BIAS refs)", what,
			   (long long)idle->ref, (long long)pinned->ref);
		return;
	}
	ok = dref == dpin && verify_share_ok(dref, want, alt);
	vreport_add(v->rep, S, name, ok ? VCHECK_PASSED : VCHECK_FAILED, json_object_new_int64(dref),
		    verify_share_json(want, alt),
		    "%s: refcount %lld -> %lld, pincount %lld -> %lld (+1 each per pin; %lld subpages of the page "
		    "pinned%s)", what, (long long)idle->ref, (long long)pinned->ref, (long long)idle->pin,
		    (long long)pinned->pin, (long long)MIN(len, v->granule) / 4096,
		    alt ? (dref == alt ? ", coalesced to one pin" : ", one pin per subpage") : "");
}

static void longterm_uring(struct verify *v, struct daxpool_slice *s, void *a, uint64_t len)
{
	static const char *S = "longterm";
	struct daxpool_pin *pin = NULL;
	struct vref r0, r1, r2;
	uint64_t p0 = pins_now(v), p1;
	bool refs = v->devdax && v->ref_probe;
	int r;

	if (refs && verify_read_ref(v, a, &r0) < 0)
		refs = false;
	r = daxpool_pin_longterm(v->dp, s, a, len, -1, &pin);
	if (!v->devdax) {
		vreport_add(v->rep, S, "io_uring-register", VCHECK_NOT_RUN,
			    json_object_new_string(r == 0 ? "ok" : strerror(-r)), NULL,
			    "emulated backend: the result depends on the file system (recorded, not checked)");
	} else if (v->facts.uring == VURING_FILE_CHECK) {
		vreport_add(v->rep, S, "io_uring-register", r == -EOPNOTSUPP ? VCHECK_PASSED : VCHECK_FAILED,
			    json_object_new_string(r == 0 ? "ok" : strerror(-r)),
			    json_object_new_string(strerror(EOPNOTSUPP)),
			    "io_uring refuses file-backed memory that is neither shmem nor hugetlbfs (%s): "
			    "device-dax too", v->facts.uring_why);
	} else if (v->facts.uring == VURING_GUP_DECIDES) {
		vreport_add(v->rep, S, "io_uring-register", r == 0 ? VCHECK_PASSED : VCHECK_FAILED,
			    json_object_new_string(r == 0 ? "ok" : strerror(-r)), json_object_new_string("ok"),
			    "%s (%s): GUP long-term pins device-dax (not fsdax, no dirty tracking)",
			    r == 0 ? "daxpool_pin_longterm: io_uring fixed buffers over the slice" : daxpool_errormsg(),
			    v->facts.uring_why);
	} else {
		vreport_add(v->rep, S, "io_uring-register", VCHECK_NOT_RUN,
			    json_object_new_string(r == 0 ? "ok" : strerror(-r)), NULL,
			    "no expectation: %s (recorded, not checked)", v->facts.uring_why);
	}
	if (r == 0) {
		p1 = pins_now(v);
		vreport_eq(v->rep, S, "io_uring-declared", (int64_t)(p1 - p0), 1,
			   "daxpoold's pin count while registered (daxpool_pin_declare by the library)");
		if (refs && verify_read_ref(v, a, &r1) == 0)
			check_pinned(v, S, "io_uring-pinned", &r0, &r1, len, VPIN_IO_URING, "registered");
		else
			vreport_skip(v->rep, S, "io_uring-pinned", "%s", v->devdax ? v->ref_reason : "emulated backend");
		r = daxpool_unpin(v->dp, &pin);
		vreport_eq(v->rep, S, "io_uring-unregister", r, 0, "%s", r ? daxpool_errormsg() : "daxpool_unpin");
		vreport_eq(v->rep, S, "io_uring-undeclared", (int64_t)pins_now(v), (int64_t)p0,
			   "daxpoold's pin count after daxpool_unpin");
		if (refs && verify_read_ref(v, a, &r2) == 0)
			vreport_eq(v->rep, S, "io_uring-unpinned", r2.ref, r0.ref,
				   "refcount after unregistering (pincount %lld)", (long long)r2.pin);
		else
			vreport_skip(v->rep, S, "io_uring-unpinned", "%s", v->devdax ? v->ref_reason : "emulated backend");
	} else if (refs && verify_read_ref(v, a, &r2) == 0) {
		vreport_eq(v->rep, S, "io_uring-undone", r2.ref, r0.ref,
			   "refcount after the refused registration (the kernel undoes its pin)");
	}
}

static void longterm_rdma(struct verify *v, struct daxpool_slice *s, void *a, uint64_t len)
{
	static const char *S = "longterm";
	struct vrdma *rd = NULL;
	char why[256] = "", data[256], back[256];
	struct vref r0, r1, r2;
	bool refs = v->devdax && v->ref_probe;
	uint64_t id = 0, p0;
	int r;

	r = vrdma_new(&rd, why, sizeof(why));
	if (r < 0) {
		vreport_skip(v->rep, S, "rdma-reg-mr", "%s", why);
		return;
	}
	if (refs && verify_read_ref(v, a, &r0) < 0)
		refs = false;
	p0 = pins_now(v);
	r = vrdma_reg(rd, a, len, why, sizeof(why));
	vreport_add(v->rep, S, "rdma-reg-mr", r == 0 ? VCHECK_PASSED : VCHECK_FAILED,
		    json_object_new_string(r == 0 ? "ok" : strerror(-r)), json_object_new_string("ok"),
		    "ibv_reg_mr on %s over %llu MiB of the slice%s%s", vrdma_device(rd),
		    (unsigned long long)(len >> 20), r ? ": " : "", r ? why : "");
	if (r < 0) {
		vrdma_delete(&rd);
		return;
	}
	r = daxpool_pin_declare(v->dp, s, 0, len, &id);
	vreport_eq(v->rep, S, "rdma-declared", r == 0 ? (int64_t)(pins_now(v) - p0) : r, 1,
		   "daxpool_pin_declare of the MR%s%s", r ? ": " : "", r ? daxpool_errormsg() : "");
	if (refs && verify_read_ref(v, a, &r1) == 0)
		check_pinned(v, S, "rdma-pinned", &r0, &r1, len, VPIN_RDMA, "MR registered");
	else
		vreport_skip(v->rep, S, "rdma-pinned", "%s", v->devdax ? v->ref_reason : "emulated backend");
	verify_pattern(data, sizeof(data), v->seed + 7);
	r = vrdma_write(rd, 8192, data, sizeof(data), why, sizeof(why));
	vreport_true(v->rep, S, "rdma-write", r == 0 && memcmp((uint8_t *)a + 8192, data, sizeof(data)) == 0,
		     "RDMA WRITE of 256 bytes into the slice over the loopback RC queue pairs; the CPU reads them%s%s",
		     r ? ": " : "", r ? why : "");
	r = vrdma_read(rd, 8192, back, sizeof(back), why, sizeof(why));
	vreport_true(v->rep, S, "rdma-read", r == 0 && memcmp(back, data, sizeof(data)) == 0,
		     "RDMA READ of them back%s%s", r ? ": " : "", r ? why : "");
	r = vrdma_dereg(rd);
	vreport_eq(v->rep, S, "rdma-dereg-mr", r, 0, "ibv_dereg_mr");
	if (refs && verify_read_ref(v, a, &r2) == 0) {
		struct timespec t0, t1;
		int64_t first = r2.ref, after_dereg;
		bool qps_gone = false;

		/* rxe may hold the MR past ibv_dereg_mr: 5.10's responder keeps a reference on the
		 * last MR an RDMA WRITE/READ used until the queue pair goes. So: wait a little, and
		 * if the pin is still there, destroy the queue pairs and wait again. */
		clock_gettime(CLOCK_MONOTONIC, &t0);
		if (r2.ref != r0.ref)
			(void)verify_wait_ref(v, a, r0.ref, 2000, &r2);
		after_dereg = r2.ref;
		if (r2.ref != r0.ref) {
			vrdma_delete(&rd);
			qps_gone = true;
			(void)verify_wait_ref(v, a, r0.ref, 10000, &r2);
		}
		clock_gettime(CLOCK_MONOTONIC, &t1);
		vreport_eq(v->rep, S, "rdma-unpinned", r2.ref, r0.ref,
			   "refcount (pincount %lld) after ibv_dereg_mr: %lld at once, %lld after waiting%s; "
			   "%lld, %ld ms after the deregistration", (long long)r2.pin, (long long)first,
			   (long long)after_dereg,
			   qps_gone ? ", still pinned: the queue pairs and the PD were destroyed" : "",
			   (long long)r2.ref, (long)((t1.tv_sec - t0.tv_sec) * 1000 + (t1.tv_nsec - t0.tv_nsec) / 1000000));
	} else
		vreport_skip(v->rep, S, "rdma-unpinned", "%s", v->devdax ? v->ref_reason : "emulated backend");
	if (id)
		(void)daxpool_pin_undeclare(v->dp, id);
	vrdma_delete(&rd);
}

void verify_longterm(struct verify *v)
{
	struct daxpool_slice *s = NULL;
	uint64_t len;
	void *a;
	int r;

	r = verify_slice_new(v, &s, &a);
	if (r < 0) {
		vreport_add(v->rep, "longterm", "slice", VCHECK_FAILED, NULL, NULL, "%s", daxpool_errormsg());
		return;
	}
	len = daxpool_slice_get_length(s);
	verify_touch(a, len);
	len = MIN(len, VERIFY_LONGTERM_MAX);
	longterm_uring(v, s, a, len);
	longterm_rdma(v, s, a, len);
	verify_slice_close(v, &s);
}

/* O_DIRECT write from the slice to the scratch file and read back into another part of it. */
static void gup_odirect(struct verify *v, uint8_t *a, uint64_t len, const struct vref *idle, bool refs)
{
	static const char *S = "gup";
	char path[256];
	size_t n = (size_t)MIN(len / 2, UINT64_C(1) << 20);
	_cleanup_(closep) int fd = -1;
	bool temp = false;
	struct vref r1;
	ssize_t w, rd;

	if (v->scratch) {
		snprintf(path, sizeof(path), "%s", v->scratch);
		fd = open(path, O_RDWR | O_DIRECT | O_CLOEXEC);
	} else {
		const char *dir = getenv("TMPDIR");

		snprintf(path, sizeof(path), "%s/daxpool-verify-XXXXXX", dir && dir[0] ? dir : "/var/tmp");
		fd = mkostemp(path, O_CLOEXEC);
		if (fd >= 0) {
			temp = true;
			close(fd);
			fd = open(path, O_RDWR | O_DIRECT | O_CLOEXEC);
		}
	}
	if (fd < 0) {
		vreport_skip(v->rep, S, "o_direct", "cannot open %s with O_DIRECT: %s (use --scratch FILE|BLOCKDEV)",
			     path, strerror(errno));
		if (temp)
			unlink(path);
		return;
	}
	verify_pattern(a, n, v->seed + 11);
	memset(a + n, 0, n);
	w = pwrite(fd, a, n, 0);
	rd = w == (ssize_t)n ? pread(fd, a + n, n, 0) : -1;
	if (temp)
		unlink(path);
	if (w < 0 && errno == EINVAL) {
		vreport_skip(v->rep, S, "o_direct", "%s refuses O_DIRECT I/O (EINVAL): use --scratch", path);
		return;
	}
	vreport_true(v->rep, S, "o_direct", w == (ssize_t)n && rd == (ssize_t)n && memcmp(a, a + n, n) == 0,
		     "O_DIRECT pwrite of %zu KiB from the slice to %s and pread into the slice: data equal%s%s",
		     n >> 10, path, w < 0 || rd < 0 ? ": " : "", w < 0 || rd < 0 ? strerror(errno) : "");
	if (refs && verify_read_ref(v, a, &r1) == 0)
		vreport_eq(v->rep, S, "o_direct-idle", r1.ref, idle->ref, "refcount after the I/O completed");
	else
		vreport_skip(v->rep, S, "o_direct-idle", "%s", v->devdax ? v->ref_reason : "emulated backend");
}

static void gup_vmsplice(struct verify *v, uint8_t *a, const struct vref *idle, bool refs)
{
	static const char *S = "gup";
	uint8_t want[4096], got[4096];
	struct iovec iov = { a, sizeof(want) };
	struct vref r1, r2;
	int fds[2];
	ssize_t n, m = -1;

	verify_pattern(a, sizeof(want), v->seed + 13);
	memcpy(want, a, sizeof(want));
	if (pipe2(fds, O_CLOEXEC) < 0) {
		vreport_add(v->rep, S, "vmsplice", VCHECK_FAILED, NULL, NULL, "pipe: %s", strerror(errno));
		return;
	}
	n = vmsplice(fds[1], &iov, 1, 0);
	if (n == (ssize_t)sizeof(want) && refs && verify_read_ref(v, a, &r1) == 0)
		vreport_eq(v->rep, S, "vmsplice-held", r1.ref, idle->ref + 1,
			   "the pipe holds a reference on the page (FOLL_GET of its one page: +1): refcount "
			   "%lld -> %lld", (long long)idle->ref, (long long)r1.ref);
	else
		vreport_skip(v->rep, S, "vmsplice-held", "%s", !refs ? (v->devdax ? v->ref_reason : "emulated backend")
								      : "vmsplice failed");
	if (n == (ssize_t)sizeof(want))
		m = read(fds[0], got, sizeof(got));
	vreport_true(v->rep, S, "vmsplice", n == (ssize_t)sizeof(want) && m == n && memcmp(got, want, sizeof(got)) == 0,
		     "vmsplice of a 4 KiB page into a pipe and read back%s%s", n < 0 ? ": " : "",
		     n < 0 ? strerror(errno) : "");
	close(fds[0]);
	close(fds[1]);
	if (refs && verify_read_ref(v, a, &r2) == 0)
		vreport_eq(v->rep, S, "vmsplice-idle", r2.ref, idle->ref, "refcount after the pipe was drained");
	else
		vreport_skip(v->rep, S, "vmsplice-idle", "%s", v->devdax ? v->ref_reason : "emulated backend");
}

void verify_gup(struct verify *v)
{
	struct daxpool_slice *s = NULL;
	struct vref idle = { 0, 0, false };
	bool refs;
	void *a;
	int r;

	r = verify_slice_new(v, &s, &a);
	if (r < 0) {
		vreport_add(v->rep, "gup", "slice", VCHECK_FAILED, NULL, NULL, "%s", daxpool_errormsg());
		return;
	}
	verify_touch(a, daxpool_slice_get_length(s));
	refs = v->devdax && v->ref_probe && verify_read_ref(v, a, &idle) == 0;
	gup_odirect(v, a, daxpool_slice_get_length(s), &idle, refs);
	gup_vmsplice(v, a, &idle, refs);
	verify_slice_close(v, &s);
}
