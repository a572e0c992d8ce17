/*
 * Per-slice sub-devices on a dynamic dax region (soft-reserved memory, CXL RAM regions): the
 * devdax backend's half of BACKEND_ISOLATION_SLICE (backend.h, slice.c).
 *
 * A dynamic region (its dax_region has create/seed/delete) can be carved into sub-devices at
 * chosen physical ranges. The configured device is the pool device: a sub-device the operator
 * carves first, at the start of the region, exactly as large as the metadata of a pool spanning
 * the rest of the region (the daemon says the size when it is not). Only the daemon maps it.
 * Pool offset o is physical address base + o (base = the pool device's start), so the pool is
 * "the region from the pool device on" and the allocator's choices are physical placements
 * (subdev-geometry.h). Each slice is a sub-device carved at exactly its extent: on the region's
 * seed device, align (the slice's alignment, at least the region's) then mapping START-END,
 * then enabled in devdax mode; the kernel never picks a place (a 1G device it placed at a start
 * that is not 1G-aligned overwrites its neighbours' memory, silently). A client receives an fd
 * of /dev/daxX.Y of its slice: it reaches nothing else (mapping beyond its end succeeds, the
 * first touch there is SIGBUS).
 *
 * Sizes below the region's alignment: the kernel cannot carve them (a 4K mapping on a 2M region
 * is silently ignored, and enabling fails), so the pool is formatted with the region's
 * alignment and rounds every extent up to it (a 4K request gets a 2M slice).
 *
 * The memory is volatile (DRAM, behind the CPU caches like any RAM): nothing is written back, the
 * pool's metadata needs only ordered stores (pool_memory_fs_ops), and persistence is "none".
 *
 * What touches the region (carving, removing, listing: root's sysfs attributes) is the
 * kernel's half (subdev-kernel.c), run by the sub-device agent when the daemon has dropped its
 * privileges (subdev-agent.c). The table of carved devices (offset -> name) is shared between the event loop (create, open,
 * name) and the zeroing worker (scrub, destroy) under a mutex.
 */
#include "backend-internal.h"
#include "pool.h"
#include "subdev-geometry.h"
#include "subdev-kernel.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

/* ---- state ------------------------------------------------------------------------------- */

struct subdev_obj {
	uint64_t offset, length;
	dev_t rdev;
	char name[32];
};

struct subdev_state {
	pthread_mutex_t lock; /* objs */
	struct subdev_geometry g;
	int region_id;
	struct backend_agent *agent; /* NULL: the kernel's half runs in this process */
	struct subdev_kernel local;  /* its scope then */
	struct subdev_obj *objs; /* sorted by offset */
	size_t n, cap;
};

static struct subdev_state *state(const struct backend *b)
{
	return b->slice_state;
}

/* Index of the object at offset, or of the first one after it (*found false). Locked. */
static size_t obj_search(const struct subdev_state *s, uint64_t offset, bool *found)
{
	size_t lo = 0, hi = s->n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (s->objs[mid].offset < offset)
			lo = mid + 1;
		else
			hi = mid;
	}
	*found = lo < s->n && s->objs[lo].offset == offset;
	return lo;
}

static int obj_insert(struct subdev_state *s, const struct subdev_obj *o)
{
	bool found;
	size_t i = obj_search(s, o->offset, &found);

	if (found) {
		s->objs[i] = *o;
		return 0;
	}
	if (s->n == s->cap) {
		size_t cap = s->cap ? s->cap * 2 : 32;
		struct subdev_obj *p = backend_mem_realloc(s->objs, cap * sizeof(*p));

		if (!p)
			return backend_err(-ENOMEM, "out of memory");
		s->objs = p;
		s->cap = cap;
	}
	memmove(s->objs + i + 1, s->objs + i, (s->n - i) * sizeof(*s->objs));
	s->objs[i] = *o;
	s->n++;
	return 0;
}

static void obj_remove(struct subdev_state *s, uint64_t offset)
{
	bool found;
	size_t i = obj_search(s, offset, &found);

	if (!found)
		return;
	memmove(s->objs + i, s->objs + i + 1, (s->n - i - 1) * sizeof(*s->objs));
	s->n--;
}

/* Copies the object at offset exactly (contains false), or the one containing offset. */
static bool obj_get(struct subdev_state *s, uint64_t offset, bool contains, struct subdev_obj *ret)
{
	bool found, ok = false;
	size_t i;

	pthread_mutex_lock(&s->lock);
	i = obj_search(s, offset, &found);
	if (found) {
		*ret = s->objs[i];
		ok = true;
	} else if (contains && i > 0 && offset - s->objs[i - 1].offset < s->objs[i - 1].length) {
		*ret = s->objs[i - 1];
		ok = true;
	}
	pthread_mutex_unlock(&s->lock);
	return ok;
}

/* ---- the kernel's half (subdev-kernel.c, through the agent when there is one) --------------- */

static int kernel_call(struct subdev_state *s, const struct subdev_req *req,
		       struct subdev_reply *reply, struct subdev_dev **ret_devs)
{
	struct subdev_dev *none = NULL;

	return subdev_call(s->agent, &s->local, req, reply, ret_devs ? ret_devs : &none);
}

static int kernel_release(struct subdev_state *s, const char *name, uint64_t phys)
{
	struct subdev_req req = { .op = SUBDEV_OP_RELEASE, .phys = phys };
	struct subdev_reply reply;

	snprintf(req.name, sizeof(req.name), "%s", name);
	return kernel_call(s, &req, &reply, NULL);
}

/* Writes zeros over [off, off + len) of the sub-device name (devlen bytes) through a shared
 * mapping of it; the memory is cache-coherent RAM: the stores are visible to every later
 * mapping, nothing is written back. */
static int zero_device(const char *name, uint64_t devlen, uint64_t off, uint64_t len)
{
	char path[64];
	int fd;
	void *p;

	snprintf(path, sizeof(path), "/dev/%s", name);
	fd = open(path, O_RDWR | O_CLOEXEC);
	if (fd < 0)
		return backend_err(negative_errno(), "%s: %m", path);
	p = mmap(NULL, devlen, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (p == MAP_FAILED) {
		int r = backend_err(negative_errno(), "%s: mapping %" PRIu64 " bytes: %m", path, devlen);

		close(fd);
		return r;
	}
	memset((char *)p + off, 0, len);
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	munmap(p, devlen);
	close(fd);
	return 0;
}

/* Reads the region's sub-devices into the table. With cleanup, devices left disabled with a
 * range (a carve or a removal interrupted by a crash: never handed out, or already scrubbed)
 * are emptied. */
static int rescan(struct subdev_state *s, bool cleanup, unsigned *ret_cleaned)
{
	struct subdev_req req = { .op = SUBDEV_OP_LIST, .cleanup = cleanup };
	struct subdev_reply reply;
	struct subdev_dev *devs = NULL;
	struct subdev_obj *objs = NULL;
	size_t n = 0;
	int r = kernel_call(s, &req, &reply, &devs);

	if (r < 0)
		return r;
	if (reply.count) {
		objs = backend_mem_calloc(reply.count, sizeof(*objs));
		if (!objs) {
			free(devs);
			return backend_err(-ENOMEM, "out of memory");
		}
	}
	for (uint32_t i = 0; i < reply.count && r == 0; i++) {
		const struct subdev_dev *e = &devs[i];
		uint64_t off;

		if (!(e->flags & SUBDEV_DEV_ENABLED) || subdev_offset_of(&s->g, e->start, e->length, &off) < 0)
			continue;
		if (e->flags & SUBDEV_DEV_RAM) {
			r = backend_err(-EBUSY, "%s in the pool's dax region is system-ram; the region "
					"belongs to daxpool from the pool device on (daxctl offline-memory "
					"%s && daxctl destroy-device -f %s)", e->name, e->name, e->name);
			break;
		}
		objs[n] = (struct subdev_obj){ .offset = off, .length = e->length, .rdev = (dev_t)e->rdev };
		snprintf(objs[n].name, sizeof(objs[n].name), "%s", e->name);
		n++;
	}
	free(devs);
	if (r < 0) {
		free(objs);
		return r;
	}
	pthread_mutex_lock(&s->lock);
	free(s->objs);
	s->objs = NULL;
	s->n = s->cap = 0;
	for (size_t i = 0; i < n && r == 0; i++)
		r = obj_insert(s, &objs[i]);
	pthread_mutex_unlock(&s->lock);
	if (ret_cleaned)
		*ret_cleaned = reply.cleaned;
	free(objs);
	return r;
}

/* ---- backend_slice_ops --------------------------------------------------------------------- */

static int subdev_create(struct backend *b, uint64_t offset, uint64_t length, uint64_t align)
{
	struct subdev_state *s = state(b);
	struct subdev_req req = { .op = SUBDEV_OP_CARVE, .length = length };
	struct subdev_reply reply;
	struct subdev_obj o;
	uint64_t phys;
	int r;

	if (align < s->g.region_align)
		align = s->g.region_align;
	r = subdev_place(&s->g, offset, length, align, &phys);
	if (r < 0)
		return r;
	req.phys = phys;
	req.align = align;
	if (obj_get(s, offset, true, &o) ||
	    (obj_get(s, offset + length - 1, true, &o) && o.offset < offset + length))
		return backend_err(-EEXIST, "%s is already carved at pool offset %#" PRIx64, o.name,
				   o.offset);
	r = kernel_call(s, &req, &reply, NULL);
	if (r < 0)
		return r;
	o = (struct subdev_obj){ .offset = offset, .length = length, .rdev = (dev_t)reply.dev.rdev };
	snprintf(o.name, sizeof(o.name), "%s", reply.dev.name);
	/* Empty, as the contract says: the range may hold what a pool formatted earlier on the same
	 * memory left there (RAM keeps its contents across a daemon's restarts and a warm reboot). */
	r = zero_device(o.name, length, 0, length);
	pthread_mutex_lock(&s->lock);
	if (r == 0)
		r = obj_insert(s, &o);
	pthread_mutex_unlock(&s->lock);
	if (r < 0) {
		char msg[512];

		snprintf(msg, sizeof(msg), "%s", backend_errormsg());
		(void)kernel_release(s, o.name, phys);
		return backend_err(r, "%s", msg);
	}
	return 0;
}

static int subdev_open(struct backend *b, uint64_t offset, uint64_t length, bool writable,
		       int *ret_fd, uint64_t *ret_map_offset)
{
	struct subdev_state *s = state(b);
	struct subdev_obj o;
	struct stat st;
	char path[64];
	int fd;

	if (!obj_get(s, offset, false, &o) || o.length != length)
		return backend_err(-ENOENT, "no sub-device is carved for the slice at %#" PRIx64 "+%#"
				   PRIx64, offset, length);
	snprintf(path, sizeof(path), "/dev/%s", o.name);
	fd = open(path, (writable ? O_RDWR : O_RDONLY) | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		return backend_err(negative_errno(), "%s: %m", path);
	/* The node must be the device carved for this slice, not whatever has the name now. */
	if (fstat(fd, &st) < 0 || !S_ISCHR(st.st_mode) || st.st_rdev != o.rdev) {
		close(fd);
		return backend_err(-ESTALE, "%s is not the sub-device carved for the slice at %#" PRIx64
				   " (%u:%u)", path, offset, major(o.rdev), minor(o.rdev));
	}
	/* Only the daemon may open the node (the agent gave it to the daemon's user; an old udev
	 * rule may have opened it to a group again): otherwise a tenant could open it by path. */
	if ((st.st_mode & 0077) && fchmod(fd, 0600) < 0) {
		int r = backend_err(-EPERM, "%s (mode %04o) can be opened by other users, and the "
				    "daemon cannot make it 0600: %m", path, st.st_mode & 07777);

		close(fd);
		return r;
	}
	*ret_fd = fd;
	*ret_map_offset = 0;
	return 0;
}

static void subdev_name(const struct backend *b, uint64_t offset, char *buf, size_t len)
{
	struct subdev_obj o;

	if (obj_get(state(b), offset, false, &o))
		snprintf(buf, len, "%s", o.name);
	else
		snprintf(buf, len, "%s", "");
}

static int subdev_scrub(struct backend *b, uint64_t offset, uint64_t length)
{
	struct subdev_state *s = state(b);
	struct subdev_obj o;

	/* No device: the range was never carved, or was scrubbed before its device went. */
	if (!obj_get(s, offset, true, &o))
		return 0;
	if (offset - o.offset > o.length || length > o.length - (offset - o.offset))
		return backend_err(-EINVAL, "scrub of %#" PRIx64 "+%#" PRIx64 " crosses the end of %s",
				   offset, length, o.name);
	return zero_device(o.name, o.length, offset - o.offset, length);
}

static int subdev_destroy(struct backend *b, uint64_t offset, uint64_t length)
{
	struct subdev_state *s = state(b);
	struct subdev_obj o;
	int r;

	(void)length;
	if (!obj_get(s, offset, false, &o))
		return 0; /* removed already (a crash after the removal replays it) */
	/* The agent releases it only at this start (names are stable while a device exists;
	 * still, never another's range); a device gone already is released. */
	r = kernel_release(s, o.name, s->g.base + offset);
	if (r < 0)
		return r;
	pthread_mutex_lock(&s->lock);
	obj_remove(s, offset);
	pthread_mutex_unlock(&s->lock);
	return 0;
}

static int subdev_list(struct backend *b, int (*fn)(void *ud, uint64_t offset, uint64_t length),
		       void *ud)
{
	struct subdev_state *s = state(b);
	struct subdev_obj *copy = NULL;
	unsigned cleaned = 0;
	size_t n;
	int r = rescan(s, true, &cleaned);

	if (r < 0)
		return r;
	pthread_mutex_lock(&s->lock);
	n = s->n;
	if (n) {
		copy = backend_mem_calloc(n, sizeof(*copy));
		if (copy)
			memcpy(copy, s->objs, n * sizeof(*copy));
	}
	pthread_mutex_unlock(&s->lock);
	if (n && !copy)
		return backend_err(-ENOMEM, "out of memory");
	for (size_t i = 0; i < n && r == 0; i++)
		r = fn(ud, copy[i].offset, copy[i].length);
	free(copy);
	if (r == 0 && cleaned)
		backend_err(0, "dax region %d: emptied %u sub-devices left half-carved or half-removed",
			    s->region_id, cleaned);
	return r;
}

static void subdev_free(struct backend *b)
{
	struct subdev_state *s = state(b);

	if (!s)
		return;
	pthread_mutex_destroy(&s->lock);
	free(s->objs);
	free(s);
	b->slice_state = NULL;
}

static const struct backend_slice_ops subdev_ops = {
	.slow_create = true,
	.create = subdev_create,
	.open = subdev_open,
	.name = subdev_name,
	.scrub = subdev_scrub,
	.destroy = subdev_destroy,
	.list = subdev_list,
	.free = subdev_free,
};

/* ---- setup --------------------------------------------------------------------------------- */

/* The pool's address space: the pool device's mapping followed by an inaccessible reservation
 * to the region's end (the pool never touches its data area). */
static int map_pool(struct backend *b, uint64_t span, uint64_t dev_align)
{
	uint64_t total = span + dev_align;
	char *res = mmap(NULL, total, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	uintptr_t start;
	uint64_t head;

	if (res == MAP_FAILED)
		return backend_err(negative_errno(), "reserving %" PRIu64 " bytes of address space: %m",
				   total);
	start = ((uintptr_t)res + dev_align - 1) & ~(uintptr_t)(dev_align - 1);
	head = start - (uintptr_t)res;
	if (head)
		munmap(res, head);
	if (dev_align - head)
		munmap((char *)start + span, dev_align - head);
	if (mmap((void *)start, b->size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_FIXED, b->fd, 0) ==
	    MAP_FAILED) {
		int r = backend_err(negative_errno(), "%s: mapping: %m", b->path);

		munmap((void *)start, span);
		return r;
	}
	if (b->pool_map)
		munmap(b->pool_map, b->pool_map_len); /* devdax_open's, of the pool device alone */
	b->pool_map = (void *)start;
	b->pool_map_len = span;
	return 0;
}

int slice_subdev_setup(struct backend *b, bool required)
{
	struct subdev_req req = { .op = SUBDEV_OP_GEOMETRY };
	struct subdev_reply reply = { 0 };
	struct subdev_state *s = NULL;
	struct subdev_geometry g = { 0 };
	uint64_t span, meta, align;
	int r, region_id;

	s = backend_mem_calloc(1, sizeof(*s));
	if (!s)
		return backend_err(-ENOMEM, "out of memory");
	pthread_mutex_init(&s->lock, NULL);
	s->agent = b->agent;
	/* Without an agent the kernel's half runs here, with this scope. */
	r = s->agent ? 0 : subdev_kernel_init(&s->local, b->path, geteuid(), getegid());
	if (r == 0)
		r = kernel_call(s, &req, &reply, NULL);
	if (r < 0 && !(r == -ENOSPC && reply.dynamic)) {
		pthread_mutex_destroy(&s->lock);
		free(s);
		return r == -ENODEV ? backend_err(r, "%s: %s", b->path, backend_errormsg()) : r;
	}
	if (!reply.dynamic || (reply.dev.ranges != 1 && !required) || (r == -ENOSPC && !required)) {
		/* static, or (-ENOSPC) a device spans the whole region: not laid out for slices;
		 * the caller says what that means for the mode ("owner"). */
		pthread_mutex_destroy(&s->lock);
		free(s);
		return 0;
	}
	region_id = reply.region_id;
	s->region_id = region_id;
	g = reply.geometry;
	g.pool_dev_size = b->size;
	align = b->alignment > g.region_align ? b->alignment : g.region_align;
	if (reply.dev.ranges != 1)
		r = backend_err(-EINVAL, "%s: the pool device of a dynamic dax region must be one "
				"physical range", b->path);
	if (r == 0)
		r = subdev_geometry_check(&g, &span);
	if (r == 0) {
		struct pool_format_params prm = { .device_align = align, .table_capacity = b->records };

		r = pool_metadata_size(span, &prm, &meta);
		if (r < 0)
			r = backend_err(r, "%s: %s", b->path, pool_errormsg());
	}
	if (r == 0 && b->size != meta) {
		if (!required) {
			pthread_mutex_destroy(&s->lock);
			free(s);
			return 0;
		}
		r = backend_err(-EINVAL, "%s (%s, %" PRIu64 " bytes at %#" PRIx64 ") is in dynamic dax "
				"region %d; with isolation \"slice\" it must be the pool device: exactly "
				"%" PRIu64 " bytes (the metadata of a pool over the %" PRIu64 " bytes from "
				"its start to the region's end), carved first at the region's start: "
				"daxctl create-device -r %d -s %" PRIu64 " -a %" PRIu64 " (see "
				"docs/BACKENDS.md)", b->path, b->devname, b->size, reply.dev.start, region_id,
				meta, span, region_id, meta, align);
	}
	if (r < 0) {
		pthread_mutex_destroy(&s->lock);
		free(s);
		return r;
	}
	s->g = g;
	b->slice_state = s;
	b->slice_ops = &subdev_ops;
	r = map_pool(b, span, b->alignment);
	if (r < 0)
		return r;
	b->size = span;
	b->alignment = align;
	b->persistence = BACKEND_PERSIST_NONE;
	return rescan(s, false, NULL);
}
