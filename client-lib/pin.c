/*
 * Long-term pins made by the library: io_uring fixed-buffer registration (FOLL_LONGTERM in the
 * kernel), declared to the daemon so it never reuses the extent while the pin may exist.
 *
 * The ring is reached only through its fd (io_uring_setup/io_uring_register from liburing), so
 * the public header needs no liburing type and an application's liburing version does not
 * matter. With no ring given, the library makes one with io_uring_setup() alone: nothing is
 * submitted on it, so its SQ/CQ need not be mapped (io_uring_queue_init would map them). A ring
 * the caller gives is dup()ed, so the unregister at daxpool_unpin reaches that ring even if the
 * caller closed its fd and the number was reused.
 */
#include "client.h"

#include <errno.h>
#include <fcntl.h>
#include <liburing.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>

/* io_uring takes at most 1 GiB per registered buffer (kernel io_uring/rsrc.c). */
#define PIN_IOV_MAX_LEN (UINT64_C(1) << 30)
/* UIO_MAXIOV buffers per table. */
#define PIN_MAX_IOVS 1024

struct daxpool_pin {
	struct daxpool_slice *slice;
	int ring_fd; /* ours: made by io_uring_setup, or a dup of the caller's */
	uint64_t id; /* the daemon's pin id */
	unsigned nr_bufs;
};

static int ring_open(int app_ring_fd, int *ret)
{
	struct io_uring_params params = {};
	int fd;

	if (app_ring_fd >= 0) {
		fd = fcntl(app_ring_fd, F_DUPFD_CLOEXEC, 3);
		if (fd < 0)
			return dp_error(negative_errno(), "dup of the ring fd %d: %s", app_ring_fd,
					strerror(errno));
	} else {
		fd = io_uring_setup(1, &params);
		if (fd < 0)
			return dp_error(fd, "io_uring_setup: %s", strerror(-fd));
	}
	*ret = fd;
	return 0;
}

DAXPOOL_EXPORT int daxpool_pin_longterm(struct daxpool *dp, struct daxpool_slice *s, void *addr,
					size_t len, int ring_fd, struct daxpool_pin **ret)
{
	struct iovec iov[PIN_MAX_IOVS];
	_cleanup_(closep) int fd = -1;
	struct daxpool_pin *pin;
	uintptr_t a = (uintptr_t)addr, base;
	unsigned n = 0;
	uint64_t pin_id;
	int r;

	dp_error_clear();
	if (!dp || !s || !addr || !ret)
		return dp_error(-EINVAL, "daxpool_pin_longterm: NULL argument");
	if (len == 0 || len > PIN_IOV_MAX_LEN * PIN_MAX_IOVS)
		return dp_error(-EINVAL, "daxpool_pin_longterm: length %zu is 0 or too large", len);

	pthread_mutex_lock(&s->map_lock);
	base = (uintptr_t)s->map_addr;
	if (!base)
		r = dp_error(-EINVAL, "daxpool_pin_longterm: the slice is not mapped (daxpool_map)");
	else if (a < base || len > s->map_len || a - base > s->map_len - len)
		r = dp_error(-ERANGE, "daxpool_pin_longterm: [%p, +%zu) is outside the mapping [%p, +%zu)",
			     addr, len, s->map_addr, s->map_len);
	else
		r = 0;
	if (r >= 0)
		s->pins++; /* holds the mapping while we work without the lock */
	pthread_mutex_unlock(&s->map_lock);
	if (r < 0)
		return r;

	for (size_t done = 0; done < len; n++) {
		size_t chunk = MIN(len - done, (size_t)PIN_IOV_MAX_LEN);

		iov[n] = (struct iovec){ .iov_base = (uint8_t *)addr + done, .iov_len = chunk };
		done += chunk;
	}
	r = ring_open(ring_fd, &fd);
	if (r < 0)
		goto fail;
	r = io_uring_register((unsigned)fd, IORING_REGISTER_BUFFERS, iov, n);
	if (r < 0) {
		/* The kernel says EFAULT (file systems that need dirty tracking, 6.5+) or EOPNOTSUPP
		 * (6.1: any file-backed memory but hugetlbfs, device-dax included) when it will not
		 * pin this memory long-term: one code for "not possible here". */
		if (r == -EFAULT || r == -EOPNOTSUPP)
			r = dp_error(-EOPNOTSUPP, "the kernel refuses a long-term pin (io_uring buffer "
					"registration) of this memory: %s", strerror(-r));
		else if (r == -EBUSY)
			r = dp_error(-EBUSY, "the io_uring ring already has registered buffers");
		else if (r == -ENOMEM)
			r = dp_error(-ENOMEM, "io_uring buffer registration: out of memory or over "
					"RLIMIT_MEMLOCK");
		else
			r = dp_error(r, "io_uring buffer registration: %s", strerror(-r));
		goto fail;
	}
	r = daxpool_pin_declare(dp, s, (uint64_t)(a - base), len, &pin_id);
	if (r < 0) {
		io_uring_register((unsigned)fd, IORING_UNREGISTER_BUFFERS, NULL, 0);
		goto fail; /* the message is daxpool_pin_declare's */
	}
	pin = calloc(1, sizeof(*pin));
	if (!pin) {
		io_uring_register((unsigned)fd, IORING_UNREGISTER_BUFFERS, NULL, 0);
		daxpool_pin_undeclare(dp, pin_id);
		r = dp_error(-ENOMEM, "out of memory");
		goto fail;
	}
	*pin = (struct daxpool_pin){ .slice = s, .ring_fd = TAKE_FD(fd), .id = pin_id, .nr_bufs = n };
	*ret = pin;
	return 0;
fail:
	pthread_mutex_lock(&s->map_lock);
	s->pins--;
	pthread_mutex_unlock(&s->map_lock);
	return r;
}

DAXPOOL_EXPORT int daxpool_unpin(struct daxpool *dp, struct daxpool_pin **pinp)
{
	struct daxpool_pin *pin;
	int r;

	dp_error_clear();
	if (!dp || !pinp)
		return dp_error(-EINVAL, "daxpool_unpin: NULL argument");
	pin = *pinp;
	if (!pin)
		return 0;
	/* Unregister first: the daemon must never believe the pin gone while it exists. */
	r = io_uring_register((unsigned)pin->ring_fd, IORING_UNREGISTER_BUFFERS, NULL, 0);
	close(pin->ring_fd); /* a private ring's pins go with it in any case */
	pin->ring_fd = -1;
	if (r < 0 && r != -ENXIO)
		r = dp_error(r, "io_uring buffer unregistration: %s (the ring's pins go when it is closed)",
			     strerror(-r));
	else
		r = daxpool_pin_undeclare(dp, pin->id);
	pthread_mutex_lock(&pin->slice->map_lock);
	pin->slice->pins--;
	pthread_mutex_unlock(&pin->slice->map_lock);
	free(pin);
	*pinp = NULL;
	return r;
}

DAXPOOL_EXPORT uint64_t daxpool_pin_get_id(const struct daxpool_pin *pin)
{
	return pin ? pin->id : 0;
}
