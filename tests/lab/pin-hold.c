/* lab-pin-hold: maps a device-dax device, pins the start of it long-term and holds the pin until
 * told to let go — the pin of the teardown hazard (tests/lab/hazard-teardown.sh).
 *
 *   lab-pin-hold DEVICE LEN [io_uring|rdma|auto]
 *
 * Maps LEN bytes of DEVICE (MAP_SHARED; device-dax places the mapping at its alignment), writes
 * every 4 KiB page, pins them with io_uring_register_buffers (a FOLL_LONGTERM pin) or, where
 * io_uring refuses device-dax, with ibv_reg_mr on the first RDMA device (auto: io_uring first),
 * prints "pinned MODE LEN" and waits for a line on stdin. Then it reads the first 4 KiB through
 * the pin (io_uring: WRITE_FIXED into a pipe; rdma: nothing to read without a queue pair), prints
 * "io RESULT", drops the pin, prints "unpinned RESULT" and exits 0. Every step's output is
 * flushed at once: the kernel may oops between two of them. */
#include <errno.h>
#include <fcntl.h>
#include <liburing.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/uio.h>
#include <unistd.h>
#ifdef DAXPOOL_HAVE_IBVERBS
#include <infiniband/verbs.h>
#endif

static int say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int say(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	putchar('\n');
	return fflush(stdout);
}

int main(int argc, char **argv)
{
	const char *mode = argc > 3 ? argv[3] : "auto";
	struct io_uring ring;
	bool uring = false;
	char line[64];
	size_t len;
	uint8_t *a;
	int fd, r = -EOPNOTSUPP;
#ifdef DAXPOOL_HAVE_IBVERBS
	struct ibv_context *ctx = NULL;
	struct ibv_pd *pd = NULL;
	struct ibv_mr *mr = NULL;
#endif

	if (argc < 3) {
		fprintf(stderr, "usage: lab-pin-hold DEVICE LEN [io_uring|rdma|auto]\n");
		return 2;
	}
	len = strtoull(argv[2], NULL, 0);
	fd = open(argv[1], O_RDWR | O_CLOEXEC);
	if (fd < 0) {
		say("error open %s: %s", argv[1], strerror(errno));
		return 1;
	}
	a = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (a == MAP_FAILED) {
		say("error mmap %zu: %s", len, strerror(errno));
		return 1;
	}
	for (size_t i = 0; i < len; i += 4096)
		a[i] = (uint8_t)(i >> 12) | 1;
	if (strcmp(mode, "rdma") != 0) {
		struct iovec iov = { a, len };

		r = io_uring_queue_init(4, &ring, 0);
		if (r == 0) {
			r = io_uring_register_buffers(&ring, &iov, 1);
			uring = r == 0;
			if (!uring) {
				say("io_uring_register_buffers: %s", strerror(-r));
				io_uring_queue_exit(&ring);
			}
		}
	}
#ifdef DAXPOOL_HAVE_IBVERBS
	if (!uring && strcmp(mode, "io_uring") != 0) {
		int n;
		struct ibv_device **devs = ibv_get_device_list(&n);

		if (devs && n > 0)
			ctx = ibv_open_device(devs[0]);
		if (ctx)
			pd = ibv_alloc_pd(ctx);
		if (pd)
			mr = ibv_reg_mr(pd, a, len, IBV_ACCESS_LOCAL_WRITE | IBV_ACCESS_REMOTE_WRITE | IBV_ACCESS_REMOTE_READ);
		r = mr ? 0 : -errno;
		if (!mr)
			say("ibv_reg_mr: %s", ctx ? strerror(errno) : "no RDMA device");
		if (devs)
			ibv_free_device_list(devs);
	}
#endif
	if (r < 0) {
		say("error no long-term pin works here (%s)", mode);
		return 1;
	}
	say("pinned %s %zu", uring ? "io_uring" : "rdma", len);
	if (!fgets(line, sizeof(line), stdin))
		say("stdin closed");
	if (uring) {
		struct io_uring_sqe *sqe = io_uring_get_sqe(&ring);
		struct io_uring_cqe *cqe;
		int p[2];

		if (pipe(p) == 0) {
			io_uring_prep_write_fixed(sqe, p[1], a, 4096, (uint64_t)-1, 0);
			r = io_uring_submit_and_wait(&ring, 1);
			if (r >= 0 && io_uring_wait_cqe(&ring, &cqe) == 0) {
				r = cqe->res;
				io_uring_cqe_seen(&ring, cqe);
			}
			say("io WRITE_FIXED from the pinned buffer: %d", r);
		}
		r = io_uring_unregister_buffers(&ring);
		say("unpinned io_uring_unregister_buffers: %d", r);
		io_uring_queue_exit(&ring);
	}
#ifdef DAXPOOL_HAVE_IBVERBS
	if (mr) {
		say("io none (rdma)");
		r = ibv_dereg_mr(mr);
		say("unpinned ibv_dereg_mr: %d", r);
		ibv_dealloc_pd(pd);
		ibv_close_device(ctx);
	}
#endif
	return 0;
}
