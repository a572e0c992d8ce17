/*
 * The kernel's half of per-slice sub-devices: libdaxctl on the pool device's dynamic dax region
 * (subdev-kernel.h). Runs in the helper process (subdev-agent.c), or in the daemon when it has
 * none.
 *
 * libdaxctl: a context caches what it enumerated and is not thread-safe, so every operation
 * takes a context of its own (creating one costs a sysfs walk, small next to a carve).
 */
#include "backend-internal.h"
#include "subdev-kernel.h"

#include <daxctl/libdaxctl.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

DEFINE_TRIVIAL_CLEANUP_FUNC(struct daxctl_ctx *, daxctl_unref)

int subdev_kernel_init(struct subdev_kernel *k, const char *path, uid_t uid, gid_t gid)
{
	char link[64], target[4096];
	const char *base;
	struct stat st;
	ssize_t n;

	*k = (struct subdev_kernel){ .owner_uid = uid, .owner_gid = gid, .region_id = -1 };
	/* The device's kernel name, whatever the path is called (a symlink, a renamed node). */
	if (!path)
		return backend_err(-EINVAL, "no device path");
	if (stat(path, &st) < 0)
		return backend_err(negative_errno(), "%s: %m", path);
	if (!S_ISCHR(st.st_mode))
		return backend_err(-ENODEV, "%s is not a character device", path);
	snprintf(link, sizeof(link), "/sys/dev/char/%u:%u", major(st.st_rdev), minor(st.st_rdev));
	n = readlink(link, target, sizeof(target) - 1);
	if (n < 0)
		return backend_err(negative_errno(), "%s: %s: %m", path, link);
	target[n] = '\0';
	base = strrchr(target, '/');
	base = base ? base + 1 : target;
	if (strncmp(base, "dax", 3) != 0 || strlen(base) >= sizeof(k->pool_devname))
		return backend_err(-EINVAL, "%s (%s) is not a device-dax device", path, base);
	memcpy(k->pool_devname, base, strlen(base) + 1);
	return 0;
}

static int region_get(int region_id, struct daxctl_ctx **ctx, struct daxctl_region **ret)
{
	struct daxctl_region *region;
	int r = daxctl_new(ctx);

	if (r < 0)
		return backend_err(r, "libdaxctl: %s", strerror(-r));
	daxctl_region_foreach(*ctx, region)
		if (daxctl_region_get_id(region) == region_id) {
			*ret = region;
			return 0;
		}
	return backend_err(-ENODEV, "dax region %d has gone", region_id);
}

static struct daxctl_dev *dev_by_name(struct daxctl_region *region, const char *name)
{
	struct daxctl_dev *dev;

	daxctl_dev_foreach(region, dev) {
		const char *n = daxctl_dev_get_devname(dev);

		if (n && strcmp(n, name) == 0)
			return dev;
	}
	return NULL;
}

/* Number of ranges of dev; the first one's start and all their bytes. */
static unsigned dev_ranges(struct daxctl_dev *dev, uint64_t *ret_start, uint64_t *ret_len)
{
	struct daxctl_mapping *m;
	unsigned n = 0;

	*ret_start = 0;
	*ret_len = 0;
	daxctl_mapping_foreach(dev, m) {
		if (n++ == 0)
			*ret_start = daxctl_mapping_get_start(m);
		*ret_len += daxctl_mapping_get_size(m);
	}
	return n;
}

static void dev_describe(struct daxctl_dev *dev, struct subdev_dev *ret)
{
	*ret = (struct subdev_dev){
		.rdev = makedev((unsigned)daxctl_dev_get_major(dev), (unsigned)daxctl_dev_get_minor(dev)),
		.align = daxctl_dev_get_align(dev),
	};
	snprintf(ret->name, sizeof(ret->name), "%s", daxctl_dev_get_devname(dev));
	ret->ranges = dev_ranges(dev, &ret->start, &ret->length);
	if (daxctl_dev_is_enabled(dev))
		ret->flags |= SUBDEV_DEV_ENABLED;
	if (daxctl_dev_get_memory(dev) || daxctl_dev_has_online_memory(dev) > 0)
		ret->flags |= SUBDEV_DEV_RAM;
}

static bool region_is_dynamic(struct daxctl_region *region)
{
	char path[4096];

	snprintf(path, sizeof(path), "%s/dax_region/create", daxctl_region_get_path(region));
	return access(path, F_OK) == 0;
}

/* Gives a device's range back to the region: unbound, size 0, deleted (the kernel keeps
 * device 0 of a region, and refuses to delete the seed while it is one: those stay, empty). */
static int dev_release(struct daxctl_region *region, struct daxctl_dev *dev)
{
	const char *name = daxctl_dev_get_devname(dev);
	int r = daxctl_dev_disable(dev);

	if (r < 0)
		return backend_err(r, "%s: disable: %s", name, strerror(-r));
	if (daxctl_dev_get_size(dev) != 0) {
		r = daxctl_dev_set_size(dev, 0);
		if (r < 0)
			return backend_err(r, "%s: shrinking to 0: %s", name, strerror(-r));
	}
	if (daxctl_dev_get_id(dev) > 0)
		(void)daxctl_region_destroy_dev(region, dev);
	return 0;
}

/* The region's start: the kernel reports it as the resource of a device without ranges. */
static int region_start(int region_id, uint64_t *ret)
{
	_cleanup_(daxctl_unrefp) struct daxctl_ctx *ctx = NULL;
	struct daxctl_region *region;
	struct daxctl_dev *dev;
	int r;

	for (int attempt = 0; attempt < 2; attempt++) {
		r = region_get(region_id, &ctx, &region);
		if (r < 0)
			return r;
		daxctl_dev_foreach(region, dev)
			if (daxctl_dev_get_size(dev) == 0 && daxctl_dev_get_resource(dev)) {
				*ret = daxctl_dev_get_resource(dev);
				return 0;
			}
		if (attempt == 0) {
			r = daxctl_region_create_dev(region);
			if (r == -ENOSPC)
				return backend_err(r, "dax region %d has no free space (a device spans "
						   "it): the pool device must be carved first (see "
						   "docs/BACKENDS.md)", region_id);
			if (r < 0)
				return backend_err(r, "dax region %d: creating a seed device: %s",
						   region_id, strerror(-r));
			daxctl_unref(ctx);
			ctx = NULL;
		}
	}
	return backend_err(-ENXIO, "dax region %d: cannot tell where it starts (no empty device)",
			   region_id);
}

static int do_geometry(struct subdev_kernel *k, struct subdev_reply *reply)
{
	_cleanup_(daxctl_unrefp) struct daxctl_ctx *ctx = NULL;
	struct daxctl_region *region = NULL, *rg;
	struct daxctl_dev *dev = NULL, *d;
	struct subdev_geometry g = { 0 };
	int r = daxctl_new(&ctx);

	if (r < 0)
		return backend_err(r, "libdaxctl: %s", strerror(-r));
	daxctl_region_foreach(ctx, rg)
		daxctl_dev_foreach(rg, d)
			if (!dev && strcmp(daxctl_dev_get_devname(d), k->pool_devname) == 0) {
				dev = d;
				region = rg;
			}
	if (!dev)
		return backend_err(-ENODEV, "libdaxctl does not know %s", k->pool_devname);
	dev_describe(dev, &reply->dev);
	reply->region_id = daxctl_region_get_id(region);
	reply->dynamic = region_is_dynamic(region);
	if (!reply->dynamic)
		return 0;
	g.region_size = daxctl_region_get_size(region);
	g.region_align = daxctl_region_get_align(region);
	g.base = reply->dev.start;
	g.pool_dev_size = reply->dev.length;
	r = region_start(reply->region_id, &g.region_start);
	if (r == -ENOSPC) {
		reply->geometry = g; /* region_start 0: nothing free, not laid out for slices */
		return r;
	}
	if (r < 0)
		return r;
	reply->geometry = g;
	if (reply->dev.ranges == 1 && subdev_geometry_check(&g, &(uint64_t){ 0 }) == 0) {
		k->region_id = reply->region_id;
		k->g = g;
		k->have_geometry = true;
	}
	return 0;
}

int subdev_kernel_check_carve(const struct subdev_kernel *k, uint64_t phys, uint64_t length,
			      uint64_t align)
{
	uint64_t offset, phys_again;

	if (!k->have_geometry)
		return backend_err(-ENODATA, "no pool device laid out on a dynamic region yet");
	if (!length)
		return backend_err(-EINVAL, "carve: an empty range");
	/* The daemon's own placement rules (subdev-geometry.c), applied to the physical range. */
	if (subdev_offset_of(&k->g, phys, length, &offset) < 0)
		return backend_err(-ERANGE, "carve: [%#" PRIx64 ", +%#" PRIx64 "] is outside the pool's "
				   "data area [%#" PRIx64 ", %#" PRIx64 ")", phys, length,
				   k->g.base + k->g.pool_dev_size, k->g.region_start + k->g.region_size);
	return subdev_place(&k->g, offset, length, align, &phys_again);
}

int subdev_kernel_check_name(const struct subdev_kernel *k, const char *name)
{
	char prefix[32];
	size_t n;

	if (!k->have_geometry)
		return backend_err(-ENODATA, "no pool device laid out on a dynamic region yet");
	n = (size_t)snprintf(prefix, sizeof(prefix), "dax%d.", k->region_id);
	if (strnlen(name, SUBDEV_NAME_MAX) == SUBDEV_NAME_MAX || strncmp(name, prefix, n) != 0 ||
	    !name[n] || strspn(name + n, "0123456789") != strlen(name + n))
		return backend_err(-EINVAL, "\"%.*s\" is not a device of dax region %d",
				   SUBDEV_NAME_MAX, name, k->region_id);
	if (strcmp(name, k->pool_devname) == 0)
		return backend_err(-EPERM, "%s is the pool device", name);
	return 0;
}

/* The device node is the daemon's alone, whatever the node's defaults or a udev rule say. */
static int give_node(const struct subdev_kernel *k, const struct subdev_dev *d)
{
	char path[64];
	struct stat st;
	int fd, r = 0;

	snprintf(path, sizeof(path), "/dev/%s", d->name);
	fd = open(path, O_PATH | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		return backend_err(negative_errno(), "%s: %m", path);
	if (fstat(fd, &st) < 0 || !S_ISCHR(st.st_mode) || st.st_rdev != d->rdev)
		r = backend_err(-ESTALE, "%s is not the device %s (%u:%u)", path, d->name,
				major((dev_t)d->rdev), minor((dev_t)d->rdev));
	else if (k->owner_uid && (st.st_uid != k->owner_uid || st.st_gid != k->owner_gid) &&
		 fchownat(fd, "", k->owner_uid, k->owner_gid, AT_EMPTY_PATH) < 0)
		r = backend_err(negative_errno(), "%s: giving it to uid %u: %m", path,
				(unsigned)k->owner_uid);
	/* Given away, the node's mode is its new owner's to set (subdev_open does). */
	else if (!k->owner_uid && (st.st_mode & 0077) && chmod(path, 0600) < 0)
		r = backend_err(negative_errno(), "%s: mode 0600: %m", path);
	close(fd);
	return r;
}

/* The sub-devices of the pool's data area (never the pool device, nor empty ones). */
static int do_list(struct subdev_kernel *k, bool cleanup, struct subdev_reply *reply,
		   struct subdev_dev **ret_devs)
{
	_cleanup_(daxctl_unrefp) struct daxctl_ctx *ctx = NULL;
	struct daxctl_region *region;
	struct daxctl_dev *dev, *next;
	struct subdev_dev *devs = NULL;
	size_t n = 0;
	int r;

	if (!k->have_geometry)
		return backend_err(-ENODATA, "no pool device laid out on a dynamic region yet");
	r = region_get(k->region_id, &ctx, &region);
	if (r < 0)
		return r;
	daxctl_dev_foreach_safe(region, dev, next) {
		const char *name = daxctl_dev_get_devname(dev);
		struct subdev_dev e;
		uint64_t off;

		if (!name || strcmp(name, k->pool_devname) == 0 || daxctl_dev_get_size(dev) == 0)
			continue;
		dev_describe(dev, &e);
		if (subdev_offset_of(&k->g, e.start, e.length, &off) < 0)
			continue; /* below the pool device: not the pool's memory */
		if (!(e.flags & SUBDEV_DEV_ENABLED) && cleanup) {
			r = dev_release(region, dev);
			if (r < 0)
				goto fail;
			reply->cleaned++;
			continue;
		}
		/* Every device in the data area is the pool's (its layout says so), also one carved
		 * by hand or by an earlier daemon: the daemon opens it to zero it or hand it out. */
		if ((e.flags & SUBDEV_DEV_ENABLED) && !(e.flags & SUBDEV_DEV_RAM)) {
			r = give_node(k, &e);
			if (r < 0)
				goto fail;
		}
		if (n % 32 == 0) {
			struct subdev_dev *p = backend_mem_realloc(devs, (n + 32) * sizeof(*p));

			if (!p) {
				r = backend_err(-ENOMEM, "out of memory");
				goto fail;
			}
			devs = p;
		}
		devs[n++] = e;
	}
	reply->count = (uint32_t)n;
	*ret_devs = devs;
	return 0;
fail:
	free(devs);
	return r;
}

/* Carves [phys, phys + length) at align on the region's seed and enables it. On failure
 * nothing is left carved. */
static int do_carve(struct subdev_kernel *k, uint64_t phys, uint64_t length, uint64_t align,
		    struct subdev_dev *ret)
{
	_cleanup_(daxctl_unrefp) struct daxctl_ctx *ctx = NULL;
	struct daxctl_region *region;
	struct daxctl_dev *seed, *dev;
	char name[SUBDEV_NAME_MAX];
	int r = subdev_kernel_check_carve(k, phys, length, align);

	if (r < 0)
		return r;
	r = region_get(k->region_id, &ctx, &region);
	if (r < 0)
		return r;
	seed = daxctl_region_get_dev_seed(region);
	if (!seed) {
		/* The last seed was enabled: ask for a new one, and look again (a context does not
		 * see devices created after it enumerated). */
		r = daxctl_region_create_dev(region);
		if (r < 0)
			return backend_err(r, "dax region %d: creating a seed device: %s", k->region_id,
					   strerror(-r));
		daxctl_unref(ctx);
		ctx = NULL;
		r = region_get(k->region_id, &ctx, &region);
		if (r < 0)
			return r;
		seed = daxctl_region_get_dev_seed(region);
		if (!seed)
			return backend_err(-ENXIO, "dax region %d has no seed device", k->region_id);
	}
	snprintf(name, sizeof(name), "%s", daxctl_dev_get_devname(seed));
	/* A seed with a range is an interrupted carve (never enabled, never handed out). */
	if (daxctl_dev_get_size(seed) != 0 && daxctl_dev_set_size(seed, 0) < 0)
		return backend_err(-EIO, "%s: cannot empty the seed device", name);
	r = daxctl_dev_set_align(seed, align);
	if (r < 0)
		return backend_err(r, "%s: setting align %" PRIu64 ": %s", name, align, strerror(-r));
	r = daxctl_dev_set_mapping(seed, phys, phys + length - 1);
	if (r < 0) {
		daxctl_dev_set_size(seed, 0);
		return backend_err(-ENOSPC, "%s: cannot place it at [%#" PRIx64 ", %#" PRIx64 "]: the "
				   "range is in use or outside the region", name, phys,
				   phys + length - 1);
	}
	r = daxctl_dev_enable_devdax(seed);
	if (r < 0) {
		daxctl_dev_set_size(seed, 0);
		return backend_err(r, "%s: enabling [%#" PRIx64 ", +%#" PRIx64 "] at align %" PRIu64
				   ": %s", name, phys, length, align, strerror(-r));
	}
	/* What the kernel did, read back from a new context: exactly that range, that alignment. */
	daxctl_unref(ctx);
	ctx = NULL;
	r = region_get(k->region_id, &ctx, &region);
	if (r < 0)
		return r;
	dev = dev_by_name(region, name);
	if (!dev)
		return backend_err(-EIO, "%s vanished after it was enabled", name);
	dev_describe(dev, ret);
	if (ret->ranges != 1 || ret->start != phys || ret->length != length || ret->align != align ||
	    !(ret->flags & SUBDEV_DEV_ENABLED)) {
		dev_release(region, dev);
		return backend_err(-EIO, "%s: the kernel made [%#" PRIx64 ", +%#" PRIx64 "] at align %"
				   PRIu64 ", not [%#" PRIx64 ", +%#" PRIx64 "] at %" PRIu64 "; removed it",
				   name, ret->start, ret->length, ret->align, phys, length, align);
	}
	r = give_node(k, ret);
	if (r < 0)
		dev_release(region, dev);
	return r;
}

/* Releases name, which must lie at expect_start; a device gone or already empty is released. */
static int do_release(struct subdev_kernel *k, const char *name, uint64_t expect_start)
{
	_cleanup_(daxctl_unrefp) struct daxctl_ctx *ctx = NULL;
	struct daxctl_region *region;
	struct daxctl_dev *dev;
	uint64_t start, len;
	int r = subdev_kernel_check_name(k, name);

	if (r < 0)
		return r;
	r = region_get(k->region_id, &ctx, &region);
	if (r < 0)
		return r;
	dev = dev_by_name(region, name);
	if (!dev || daxctl_dev_get_size(dev) == 0)
		return 0;
	/* Names are stable while a device exists; still, never release another's range. */
	dev_ranges(dev, &start, &len);
	if (start != expect_start || subdev_kernel_check_carve(k, start, len, k->g.region_align) < 0)
		return backend_err(-ESTALE, "%s is at %#" PRIx64 ", not at the slice's %#" PRIx64, name,
				   start, expect_start);
	return dev_release(region, dev);
}

void subdev_kernel_do(struct subdev_kernel *k, const struct subdev_req *req,
		      struct subdev_reply *reply, struct subdev_dev **ret_devs)
{
	char name[SUBDEV_NAME_MAX];
	int r;

	*reply = (struct subdev_reply){ 0 };
	*ret_devs = NULL;
	switch (req->op) {
	case SUBDEV_OP_GEOMETRY:
		r = do_geometry(k, reply);
		break;
	case SUBDEV_OP_LIST:
		r = do_list(k, req->cleanup != 0, reply, ret_devs);
		break;
	case SUBDEV_OP_CARVE:
		r = do_carve(k, req->phys, req->length, req->align, &reply->dev);
		break;
	case SUBDEV_OP_RELEASE:
		memcpy(name, req->name, sizeof(name));
		name[sizeof(name) - 1] = '\0';
		r = do_release(k, name, req->phys);
		break;
	default:
		r = backend_err(-EINVAL, "unknown sub-device operation %u", req->op);
		break;
	}
	reply->status = r;
	if (r < 0)
		snprintf(reply->msg, sizeof(reply->msg), "%s", backend_errormsg());
}
