/* daxpoolctl verify: taking a kernel pin of a range by whatever works here (verify/verify-common.h). */
#include "verify-common.h"
#include "verify-rdma.h"
#include "macro.h"

#include <errno.h>
#include <fcntl.h>
#include <liburing.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <unistd.h>

const char *vpin_kind_name(enum vpin_kind k)
{
	switch (k) {
	case VPIN_IO_URING:
		return "io_uring";
	case VPIN_RDMA:
		return "rdma";
	case VPIN_PIPE:
		return "vmsplice";
	default:
		return "none";
	}
}

static int pin_uring(struct vpin *p, char *err, size_t errsize)
{
	struct io_uring *ring = calloc(1, sizeof(*ring));
	struct iovec iov = { p->addr, p->len };
	int r;

	if (!ring)
		return -ENOMEM;
	r = io_uring_queue_init(4, ring, 0);
	if (r < 0) {
		free(ring);
		snprintf(err, errsize, "io_uring_queue_init: %s", strerror(-r));
		return r;
	}
	r = io_uring_register_buffers(ring, &iov, 1);
	if (r < 0) {
		io_uring_queue_exit(ring);
		free(ring);
		snprintf(err, errsize, "io_uring_register_buffers: %s", strerror(-r));
		return r;
	}
	p->ring = ring;
	p->ring_fd = ring->ring_fd;
	return 0;
}

int vpin_take(struct vpin *p, void *addr, size_t len, bool longterm_only, char *err, size_t errsize)
{
	char e1[160] = "", e2[256] = "", e3[160] = "";
	int r;

	*p = (struct vpin){ .pipe = { -1, -1 }, .ring_fd = -1, .addr = addr, .len = len };
	if (pin_uring(p, e1, sizeof(e1)) == 0) {
		p->kind = VPIN_IO_URING;
		return 0;
	}
	if (vrdma_new(&p->rdma, e2, sizeof(e2)) == 0) {
		if (vrdma_reg(p->rdma, addr, len, e2, sizeof(e2)) == 0) {
			p->kind = VPIN_RDMA;
			return 0;
		}
		vrdma_delete(&p->rdma);
	}
	if (longterm_only) {
		snprintf(err, errsize, "%s; %s", e1, e2);
		return -EOPNOTSUPP;
	}
	if (pipe2(p->pipe, O_CLOEXEC) == 0) {
		struct iovec iov = { addr, MIN(len, (size_t)4096) };

		r = (int)vmsplice(p->pipe[1], &iov, 1, 0);
		if (r == (int)iov.iov_len) {
			p->kind = VPIN_PIPE;
			return 0;
		}
		snprintf(e3, sizeof(e3), "vmsplice: %s", r < 0 ? strerror(errno) : "short");
		close(p->pipe[0]);
		close(p->pipe[1]);
		p->pipe[0] = p->pipe[1] = -1;
	}
	snprintf(err, errsize, "%s; %s; %s", e1, e2, e3);
	return -EOPNOTSUPP;
}

int vpin_read(struct vpin *p, void *out, size_t len, char *err, size_t errsize)
{
	struct io_uring *ring = p->ring;
	struct io_uring_sqe *sqe;
	struct io_uring_cqe *cqe;
	int fds[2], r;
	ssize_t n;

	switch (p->kind) {
	case VPIN_RDMA:
		return vrdma_read(p->rdma, 0, out, len, err, errsize);
	case VPIN_PIPE:
		n = read(p->pipe[0], out, len);
		if (n != (ssize_t)len) {
			snprintf(err, errsize, "reading the pipe: %s", n < 0 ? strerror(errno) : "short");
			return -EIO;
		}
		return 0;
	case VPIN_IO_URING:
		/* WRITE_FIXED reads the registered buffer through the ring's own page array: it works
		 * with the user mapping gone. */
		if (pipe2(fds, O_CLOEXEC) < 0)
			return negative_errno();
		sqe = io_uring_get_sqe(ring);
		io_uring_prep_write_fixed(sqe, fds[1], p->addr, (unsigned)len, (uint64_t)-1, 0);
		r = io_uring_submit_and_wait(ring, 1);
		if (r >= 0)
			r = io_uring_wait_cqe(ring, &cqe);
		if (r >= 0) {
			r = cqe->res;
			io_uring_cqe_seen(ring, cqe);
		}
		if (r == (int)len) {
			n = read(fds[0], out, len);
			r = n == (ssize_t)len ? 0 : -EIO;
		} else {
			snprintf(err, errsize, "WRITE_FIXED from the registered buffer: %s",
				 r < 0 ? strerror(-r) : "short");
			r = r < 0 ? r : -EIO;
		}
		close(fds[0]);
		close(fds[1]);
		return r;
	default:
		return -EINVAL;
	}
}

void vpin_release(struct vpin *p)
{
	if (p->ring) {
		struct io_uring *ring = p->ring;

		io_uring_unregister_buffers(ring);
		io_uring_queue_exit(ring);
		free(ring);
		p->ring = NULL;
	}
	if (p->rdma) {
		vrdma_dereg(p->rdma);
		vrdma_delete(&p->rdma);
	}
	for (int i = 0; i < 2; i++)
		if (p->pipe[i] >= 0) {
			close(p->pipe[i]);
			p->pipe[i] = -1;
		}
	p->kind = VPIN_NONE;
}
