/*
 * Suite "pin": the cost per GiB of a long-term pin and its release, per page size of the memory.
 *
 * What pins memory for DMA in practice: io_uring fixed buffers (io_uring_register_buffers, a
 * FOLL_LONGTERM pin of every page) and RDMA memory regions (ibv_reg_mr / ibv_dereg_mr). The
 * cost is the kernel walking the page tables and taking a reference per page (per folio on newer
 * kernels), so it depends on how the memory is mapped: 4K PTEs, 2M PMDs or 1G PUDs.
 *
 * Memory measured (each populated before the first pin, so no fault is in any number):
 *  anon-4K     anonymous memory, THP off (MADV_NOHUGEPAGE)
 *  anon-THP    anonymous memory, THP on (MADV_HUGEPAGE), 2M-aligned
 *  shmem-4K    a memfd (tmpfs), as the emulated 4K pool is
 *  hugetlb-2M  MAP_HUGETLB 2M pages, as the emulated 2M pool is
 *  hugetlb-1G  MAP_HUGETLB 1G pages, as the emulated 1G pool is
 *  devdax      --device /dev/daxX.Y (the lab), mapped MAP_SHARED at the device's alignment
 * ibv_reg_mr needs an RDMA device: none on a plain host (rows say skipped); the lab script
 * tests/lab/bench-lab.sh creates a soft-RoCE device (rdma_rxe on a dummy netdev) and runs this.
 *   daxpool-bench pin [--bytes N] [--device /dev/daxX.Y] [--system MEMORY] [--reps N] [--quick]
 * (--system anon-4K|anon-THP|shmem-4K|hugetlb-2M|hugetlb-1G|devdax: only that memory)
 */
#include <errno.h>
#include <fcntl.h>
#include <infiniband/verbs.h>
#include <liburing.h>
#include <linux/mman.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bench.h"

#define SUITE "pin"
#define GiB (UINT64_C(1) << 30)
#define MiB (UINT64_C(1) << 20)
#define MAX_REPS 32
#define IOV_MAX_LEN GiB /* io_uring refuses a fixed buffer larger than 1 GiB */

struct backing {
	const char *name;
	uint64_t page; /* the page size the memory is mapped with */
	char *addr, *base; /* addr: the measured start; base: what mmap returned */
	uint64_t len, map_len;
	int fd;
	struct bench_hugepages hp;
};

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

static uint64_t median_u64(uint64_t *v, unsigned n)
{
	qsort(v, n, sizeof(*v), cmp_u64);
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

static uint64_t sysfs_u64(const char *dev, const char *attr)
{
	char path[256];
	unsigned long long v = 0;
	const char *base = strrchr(dev, '/');
	FILE *f;

	snprintf(path, sizeof(path), "/sys/bus/dax/devices/%s/%s", base ? base + 1 : dev, attr);
	f = fopen(path, "re");
	if (f) {
		if (fscanf(f, "%llu", &v) != 1)
			v = 0;
		fclose(f);
	}
	return v;
}

/* Maps and populates b; NULL or why not. */
static const char *backing_map(struct backing *b, const struct bench_opts *o)
{
	int flags = MAP_PRIVATE | MAP_ANONYMOUS;
	const char *why;

	b->fd = -1;
	b->map_len = b->len;
	if (strcmp(b->name, "anon-THP") == 0)
		b->map_len = b->len + 2 * MiB; /* room to align the start to 2M */
	if (strncmp(b->name, "hugetlb-", 8) == 0) {
		why = bench_hugepages_get(&b->hp, b->page, (long)(b->len / b->page));
		if (why)
			return why;
		flags |= MAP_HUGETLB | (b->page == GiB ? MAP_HUGE_1GB : MAP_HUGE_2MB);
	}
	if (strcmp(b->name, "shmem-4K") == 0) {
		b->fd = memfd_create("daxpool-bench-pin", MFD_CLOEXEC);
		if (b->fd < 0 || ftruncate(b->fd, (off_t)b->len) < 0)
			return "memfd_create/ftruncate failed";
		flags = MAP_SHARED;
	}
	if (strcmp(b->name, "devdax") == 0) {
		uint64_t size = sysfs_u64(o->device, "size");

		b->page = sysfs_u64(o->device, "align");
		if (!b->page)
			b->page = 2 * MiB; /* kernels before the align attribute: 2M default */
		/* device-dax maps whole alignment units only */
		b->len = (b->len + b->page - 1) & ~(b->page - 1);
		if (size < b->len)
			b->len = size & ~(b->page - 1);
		b->map_len = b->len;
		if (b->len == 0)
			return "the device is empty or its size is unknown";
		b->fd = open(o->device, O_RDWR | O_CLOEXEC);
		if (b->fd < 0)
			return "cannot open the device";
		flags = MAP_SHARED;
	}
	b->addr = mmap(NULL, b->map_len, PROT_READ | PROT_WRITE, flags, b->fd, 0);
	if (b->addr == MAP_FAILED) {
		b->addr = NULL;
		return "mmap failed";
	}
	b->base = b->addr;
	if (strcmp(b->name, "anon-4K") == 0)
		madvise(b->addr, b->len, MADV_NOHUGEPAGE);
	if (strcmp(b->name, "anon-THP") == 0) {
		char *aligned = (char *)(((uintptr_t)b->addr + 2 * MiB - 1) & ~(uintptr_t)(2 * MiB - 1));

		if (madvise(aligned, b->len, MADV_HUGEPAGE) < 0)
			return "MADV_HUGEPAGE refused (THP disabled)";
		b->addr = aligned;
	}
	for (uint64_t off = 0; off < b->len; off += 4096)
		b->addr[off] = 1;
	return NULL;
}

static void backing_unmap(struct backing *b)
{
	if (b->base)
		munmap(b->base, b->map_len);
	if (b->fd >= 0)
		close(b->fd);
	b->addr = b->base = NULL;
	b->fd = -1;
	bench_hugepages_put(&b->hp);
}

static json_object *params_for(const struct backing *b, unsigned reps, const char *how)
{
	json_object *p = json_object_new_object();

	json_object_object_add(p, "memory", json_object_new_string(b->name));
	json_object_object_add(p, "page", json_object_new_int64((int64_t)b->page));
	json_object_object_add(p, "bytes", json_object_new_int64((int64_t)b->len));
	json_object_object_add(p, "reps", json_object_new_int((int)reps));
	json_object_object_add(p, "how", json_object_new_string(how));
	return p;
}

static void report(const struct backing *b, const char *sys, unsigned reps, uint64_t *pin,
		   uint64_t *unpin, const char *how)
{
	uint64_t both[MAX_REPS];
	double per_gib = (double)GiB / (double)b->len;
	char metric[64];

	for (unsigned i = 0; i < reps; i++)
		both[i] = pin[i] + unpin[i];
	snprintf(metric, sizeof(metric), "pin_per_GiB");
	bench_row(SUITE, sys, metric, (double)median_u64(pin, reps) * per_gib / 1e6, "ms/GiB",
		  params_for(b, reps, how));
	snprintf(metric, sizeof(metric), "unpin_per_GiB");
	bench_row(SUITE, sys, metric, (double)median_u64(unpin, reps) * per_gib / 1e6, "ms/GiB",
		  params_for(b, reps, how));
	snprintf(metric, sizeof(metric), "pin_unpin_per_GiB");
	bench_row(SUITE, sys, metric, (double)median_u64(both, reps) * per_gib / 1e6, "ms/GiB",
		  params_for(b, reps, how));
}

static void measure_io_uring(const struct backing *b, unsigned reps)
{
	struct io_uring ring;
	struct iovec iov[64];
	uint64_t pin[MAX_REPS], unpin[MAX_REPS];
	unsigned n = 0;
	int r = io_uring_queue_init(4, &ring, 0);

	if (r < 0) {
		bench_skip_row(SUITE, "io_uring", "pin_unpin_per_GiB", "io_uring_queue_init failed",
			       params_for(b, reps, "io_uring_register_buffers"));
		return;
	}
	for (uint64_t off = 0; off < b->len && n < 64; off += IOV_MAX_LEN, n++)
		iov[n] = (struct iovec){b->addr + off, b->len - off < IOV_MAX_LEN ? b->len - off : IOV_MAX_LEN};
	for (unsigned i = 0; i < reps; i++) {
		uint64_t t0 = bench_now_ns();
		r = io_uring_register_buffers(&ring, iov, n);
		uint64_t t1 = bench_now_ns();
		if (r < 0)
			break;
		r = io_uring_unregister_buffers(&ring);
		uint64_t t2 = bench_now_ns();
		if (r < 0)
			break;
		pin[i] = t1 - t0;
		unpin[i] = t2 - t1;
	}
	io_uring_queue_exit(&ring);
	if (r < 0) {
		char why[160];

		snprintf(why, sizeof(why), "io_uring_register_buffers: %s", strerror(-r));
		bench_skip_row(SUITE, "io_uring", "pin_unpin_per_GiB", why,
			       params_for(b, reps, "io_uring_register_buffers"));
		return;
	}
	report(b, "io_uring", reps, pin, unpin, "io_uring_register_buffers + io_uring_unregister_buffers");
}

static void measure_ibv(const struct backing *b, struct ibv_pd *pd, const char *why_not, unsigned reps)
{
	uint64_t pin[MAX_REPS], unpin[MAX_REPS];
	const char *how = "ibv_reg_mr + ibv_dereg_mr";

	if (!pd) {
		bench_skip_row(SUITE, "ibverbs", "pin_unpin_per_GiB", why_not, params_for(b, reps, how));
		return;
	}
	for (unsigned i = 0; i < reps; i++) {
		uint64_t t0 = bench_now_ns();
		struct ibv_mr *mr = ibv_reg_mr(pd, b->addr, b->len,
					       IBV_ACCESS_LOCAL_WRITE | IBV_ACCESS_REMOTE_WRITE |
						       IBV_ACCESS_REMOTE_READ);
		uint64_t t1 = bench_now_ns();
		if (!mr) {
			char why[160];

			snprintf(why, sizeof(why), "ibv_reg_mr: %s", strerror(errno));
			bench_skip_row(SUITE, "ibverbs", "pin_unpin_per_GiB", why, params_for(b, reps, how));
			return;
		}
		int r = ibv_dereg_mr(mr);
		uint64_t t2 = bench_now_ns();
		if (r != 0) {
			bench_skip_row(SUITE, "ibverbs", "pin_unpin_per_GiB", "ibv_dereg_mr failed",
				       params_for(b, reps, how));
			return;
		}
		pin[i] = t1 - t0;
		unpin[i] = t2 - t1;
	}
	report(b, "ibverbs", reps, pin, unpin, how);
}

int suite_pin(const struct bench_opts *o)
{
	uint64_t bytes = o->bytes ? o->bytes : o->quick ? 64 * MiB : GiB;
	unsigned reps = o->reps ? o->reps : o->quick ? 2 : 5;
	struct backing backings[] = {
		{.name = "anon-4K", .page = 4096},	 {.name = "anon-THP", .page = 2 * MiB},
		{.name = "shmem-4K", .page = 4096},	 {.name = "hugetlb-2M", .page = 2 * MiB},
		{.name = "hugetlb-1G", .page = GiB},	 {.name = "devdax"},
	};
	struct ibv_device **devs = NULL;
	struct ibv_context *ctx = NULL;
	struct ibv_pd *pd = NULL;
	const char *ibv_why = NULL;
	double load0 = bench_loadavg_1m();
	struct rlimit rl;
	int ndev = 0;

	if (reps > MAX_REPS)
		reps = MAX_REPS;
	if (strcmp(o->system, "all") != 0) {
		bool known = false;

		for (size_t i = 0; i < sizeof(backings) / sizeof(backings[0]); i++)
			known |= strcmp(o->system, backings[i].name) == 0;
		if (!known) {
			fprintf(stderr, "daxpool-bench pin: --system takes all, anon-4K, anon-THP, shmem-4K, "
					"hugetlb-2M, hugetlb-1G or devdax, not '%s'\n", o->system);
			return -EINVAL;
		}
	}
	/* Non-root pins count against RLIMIT_MEMLOCK: take the hard limit. */
	if (getrlimit(RLIMIT_MEMLOCK, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_MEMLOCK, &rl);
	}
	devs = ibv_get_device_list(&ndev);
	if (!devs || ndev == 0) {
		ibv_why = "no RDMA device (the lab's soft-RoCE: tests/lab/bench-lab.sh)";
	} else if (!(ctx = ibv_open_device(devs[0]))) {
		ibv_why = "ibv_open_device failed";
	} else if (!(pd = ibv_alloc_pd(ctx))) {
		ibv_why = "ibv_alloc_pd failed";
	}
	for (size_t i = 0; i < sizeof(backings) / sizeof(backings[0]); i++) {
		struct backing *b = &backings[i];
		const char *why;

		if (strcmp(b->name, "devdax") == 0 && !o->device)
			continue; /* only where a device exists (the lab) */
		if (strcmp(o->system, "all") != 0 && strcmp(o->system, b->name) != 0)
			continue; /* --system NAME: only that memory */
		b->len = b->page == GiB ? (bytes + GiB - 1) & ~(GiB - 1) : bytes;
		why = backing_map(b, o);
		if (why) {
			bench_skip_row(SUITE, "io_uring", "pin_unpin_per_GiB", why,
				       params_for(b, reps, "io_uring_register_buffers"));
			bench_skip_row(SUITE, "ibverbs", "pin_unpin_per_GiB", why,
				       params_for(b, reps, "ibv_reg_mr + ibv_dereg_mr"));
			backing_unmap(b);
			continue;
		}
		measure_io_uring(b, reps);
		measure_ibv(b, pd, ibv_why, reps);
		backing_unmap(b);
	}
	json_object *m = json_object_new_object();
	json_object_object_add(m, "bytes", json_object_new_int64((int64_t)bytes));
	json_object_object_add(m, "rdma_device",
			       json_object_new_string(ctx ? ibv_get_device_name(devs[0]) : "none"));
	if (o->device)
		json_object_object_add(m, "device", json_object_new_string(o->device));
	bench_machine_row(SUITE, load0, m);
	if (pd)
		ibv_dealloc_pd(pd);
	if (ctx)
		ibv_close_device(ctx);
	if (devs)
		ibv_free_device_list(devs);
	return 0;
}
