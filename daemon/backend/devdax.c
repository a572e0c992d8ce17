/*
 * The device-dax backend. A path alone proves nothing (device names move when namespaces are
 * re-created), so the fd is checked for what it is: a character device of the dax subsystem
 * whose major:minor libdaxctl knows, enabled in devdax mode (not handed to the kernel as
 * system-ram), with libdaxctl's and libpmem2's size agreeing. The pool's UUID then identifies the
 * data (backend_open_pool).
 */
#include "backend-internal.h"
#include "sysfs-util.h"

#include <daxctl/libdaxctl.h>
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <libpmem2.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

DEFINE_TRIVIAL_CLEANUP_FUNC(struct daxctl_ctx *, daxctl_unref)

static void pmem2_source_deletep(struct pmem2_source **s)
{
	if (*s)
		pmem2_source_delete(s);
}

static void pmem2_config_deletep(struct pmem2_config **c)
{
	if (*c)
		pmem2_config_delete(c);
}

static void pmem2_badblock_context_deletep(struct pmem2_badblock_context **c)
{
	if (*c)
		pmem2_badblock_context_delete(c);
}

/* A dax device given to the kernel as memory: bound to kmem, or with online memory blocks. */
static bool dev_is_system_ram(struct daxctl_dev *dev)
{
	char link[PATH_MAX], driver[64];

	snprintf(link, sizeof(link), "/sys/bus/dax/devices/%s/driver",
		 daxctl_dev_get_devname(dev));
	link_basename(link, driver, sizeof(driver));
	if (strcmp(driver, "kmem") == 0)
		return true;
	if (daxctl_dev_get_memory(dev))
		return true;
	return daxctl_dev_has_online_memory(dev) > 0;
}

static int system_ram_refusal(const char *path, struct daxctl_dev *dev)
{
	const char *name = daxctl_dev_get_devname(dev);
	return backend_err(-EBUSY,
			   "%s: dax device %s is configured as system-ram (kmem): its memory "
			   "belongs to the kernel's page allocator, not to daxpool. Switch it back "
			   "with: daxctl offline-memory %s && daxctl reconfigure-device "
			   "--mode=devdax %s",
			   path, name, name, name);
}

/* Finds the daxctl device by name (when the node is missing) or by major:minor. */
static struct daxctl_dev *find_dev(struct daxctl_ctx *ctx, const char *name, dev_t rdev)
{
	struct daxctl_region *region;
	struct daxctl_dev *dev;

	daxctl_region_foreach(ctx, region)
		daxctl_dev_foreach(region, dev) {
			if (name) {
				const char *n = daxctl_dev_get_devname(dev);
				if (n && strcmp(n, name) == 0)
					return dev;
			} else if ((unsigned)daxctl_dev_get_major(dev) == major(rdev) &&
				   (unsigned)daxctl_dev_get_minor(dev) == minor(rdev)) {
				return dev;
			}
		}
	return NULL;
}

/* The node is missing: say why when libdaxctl knows the name (system-ram, disabled). */
static int explain_missing(const char *path, int r)
{
	_cleanup_(daxctl_unrefp) struct daxctl_ctx *ctx = NULL;
	char copy[PATH_MAX];

	snprintf(copy, sizeof(copy), "%s", path);
	const char *name = basename(copy);
	if (r == -ENOENT && daxctl_new(&ctx) == 0) {
		struct daxctl_dev *dev = find_dev(ctx, name, 0);
		if (dev && dev_is_system_ram(dev))
			return system_ram_refusal(path, dev);
		if (dev && !daxctl_dev_is_enabled(dev))
			return backend_err(-ENXIO, "%s: dax device %s is disabled (daxctl "
						   "enable-device %s)",
					   path, name, name);
	}
	return backend_err(r, "%s: %m", path);
}

/* The libdaxctl device of the character device st (of path), in a new context *ctx the caller
 * unrefs: 0, or -ENODEV (libdaxctl does not know it) / an error of daxctl_new, with a message. */
static int dev_of_node(const char *path, const struct stat *st, struct daxctl_ctx **ctx,
		       struct daxctl_dev **ret_dev)
{
	int r = daxctl_new(ctx);

	if (r < 0)
		return backend_err(r, "%s: libdaxctl: %m", path);
	*ret_dev = find_dev(*ctx, NULL, st->st_rdev);
	if (!*ret_dev)
		return backend_err(-ENODEV,
				   "%s (character device %u:%u) is not a device libdaxctl knows "
				   "(daxctl list -D shows the devices)",
				   path, major(st->st_rdev), minor(st->st_rdev));
	return 0;
}

static int check_identity(struct backend *b, const char *path, const struct stat *st,
			  uint64_t *ret_dax_size, uint64_t *ret_dax_align)
{
	_cleanup_(daxctl_unrefp) struct daxctl_ctx *ctx = NULL;
	char subsys[64];
	int r;

	if (!S_ISCHR(st->st_mode))
		return backend_err(-ENODEV, "%s is not a character device, so not a device-dax "
					    "device (a file is the emulated backend's)",
				   path);
	if (!chardev_is_devdax(st->st_rdev, subsys, sizeof(subsys)))
		return backend_err(-ENODEV,
				   "%s (character device %u:%u) is not a device-dax device: its "
				   "subsystem is '%s'",
				   path, major(st->st_rdev), minor(st->st_rdev),
				   subsys[0] ? subsys : "unknown");

	struct daxctl_dev *dev;
	r = dev_of_node(path, st, &ctx, &dev);
	if (r < 0)
		return r;
	if (dev_is_system_ram(dev))
		return system_ram_refusal(path, dev);
	if (!daxctl_dev_is_enabled(dev))
		return backend_err(-ENXIO, "%s: dax device %s is disabled (daxctl enable-device %s)",
				   path, daxctl_dev_get_devname(dev), daxctl_dev_get_devname(dev));
	b->devname = backend_mem_strdup(daxctl_dev_get_devname(dev));
	if (!b->devname)
		return backend_err(-ENOMEM, "devdax backend: out of memory");
	*ret_dax_size = daxctl_dev_get_size(dev);
	*ret_dax_align = daxctl_dev_get_align(dev);
	return 0;
}

static int read_badblocks(struct backend *b, struct pmem2_source *src)
{
	_cleanup_(pmem2_badblock_context_deletep) struct pmem2_badblock_context *bbctx = NULL;
	struct pmem2_badblock bb;
	int r;

	r = pmem2_badblock_context_new(&bbctx, src);
	if (r) {
		/* Device-dax not backed by an NVDIMM region (e.g. soft-reserved memory) has no
		 * bad-block list; that is reported, not refused. */
		b->bbstats.unknown = true;
		return 0;
	}
	while ((r = pmem2_badblock_next(bbctx, &bb)) == 0) {
		struct backend_badblock one = {.offset = bb.offset, .length = bb.length};
		r = badblock_add(b, &one, 1);
		if (r < 0)
			return r;
	}
	if (r != PMEM2_E_NO_BAD_BLOCK_FOUND)
		return backend_err(backend_pmem2_errno(r), "%s: reading bad blocks: %s", b->path,
				   pmem2_errormsg());
	return 0;
}

/* Maps the whole device for pmem2_deep_flush; its granularity says what clients must do. */
static int map_device(struct backend *b, struct pmem2_source *src)
{
	_cleanup_(pmem2_config_deletep) struct pmem2_config *cfg = NULL;
	int r;

	r = pmem2_config_new(&cfg);
	if (r == 0)
		r = pmem2_config_set_required_store_granularity(cfg, PMEM2_GRANULARITY_PAGE);
	if (r == 0)
		r = pmem2_map_new(&b->map, cfg, src);
	if (r)
		return backend_err(backend_pmem2_errno(r), "%s: mapping: %s", b->path,
				   pmem2_errormsg());
	switch (pmem2_map_get_store_granularity(b->map)) {
	case PMEM2_GRANULARITY_BYTE:
		b->persistence = BACKEND_PERSIST_FENCE;
		break;
	case PMEM2_GRANULARITY_CACHE_LINE:
		b->persistence = BACKEND_PERSIST_CPU_FLUSH;
		break;
	default:
		b->persistence = BACKEND_PERSIST_MSYNC;
		break;
	}
	return 0;
}

/* Device-dax over RAM (soft-reserved memory, CXL RAM regions). libpmem2 finds a device-dax
 * device's size through libndctl, which knows only NVDIMM namespaces (it dereferences NULL on
 * other devices), so libpmem2 is not used at all: size and alignment come from libdaxctl, the
 * pool is mapped here (backend_open_pool then uses this mapping), there is no bad-block list
 * and nothing is durable across power loss. */
static int devdax_open_ram(struct backend *b, uint64_t size, uint64_t align)
{
	char path[PATH_MAX];
	FILE *f;
	void *p;
	int node;

	if (align != (UINT64_C(1) << 12) && align != (UINT64_C(1) << 21) &&
	    align != (UINT64_C(1) << 30))
		return backend_err(-EINVAL, "%s: alignment %llu is not 4K, 2M or 1G", b->path,
				   (unsigned long long)align);
	if (!size || size % align)
		return backend_err(-EINVAL, "%s: size %llu is not a multiple of its alignment", b->path,
				   (unsigned long long)size);
	b->size = size;
	b->alignment = align;
	b->map_sync = true;
	b->persistence = BACKEND_PERSIST_NONE;
	b->bbstats.unknown = true;
	snprintf(path, sizeof(path), "/sys/bus/dax/devices/%s/numa_node", b->devname);
	f = fopen(path, "re");
	if (f) {
		if (fscanf(f, "%d", &node) == 1 && node >= 0)
			b->numa_node = node;
		fclose(f);
	}
	p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, b->fd, 0);
	if (p == MAP_FAILED)
		return backend_err(negative_errno(), "%s: mapping: %m", b->path);
	b->pool_map = p;
	b->pool_map_len = size;
	return 0;
}

int devdax_open(struct backend *b, const char *path)
{
	_cleanup_(pmem2_source_deletep) struct pmem2_source *src = NULL;
	uint64_t dax_size = 0, dax_align = 0;
	size_t size = 0, align = 0;
	struct stat st;
	int r;

	b->path = backend_mem_strdup(path);
	if (!b->path)
		return backend_err(-ENOMEM, "devdax backend: out of memory");
	b->fd = open(path, O_RDWR | O_CLOEXEC);
	if (b->fd < 0)
		return explain_missing(path, negative_errno());
	/* fstat on the fd, not stat on the path: what is checked is what will be used. */
	if (fstat(b->fd, &st) < 0)
		return backend_err(negative_errno(), "%s: fstat: %m", path);
	r = check_identity(b, path, &st, &dax_size, &dax_align);
	if (r < 0)
		return r;
	/* Before anything is formatted or carved: another daemon may be serving it. */
	r = backend_lock_pool(b);
	if (r < 0)
		return r;

	if (!devdax_is_nvdimm(st.st_rdev))
		return devdax_open_ram(b, dax_size, dax_align);
	r = pmem2_source_from_fd(&src, b->fd);
	if (r == 0)
		r = pmem2_source_size(src, &size);
	if (r == 0)
		r = pmem2_source_alignment(src, &align);
	if (r)
		return backend_err(backend_pmem2_errno(r), "%s: libpmem2: %s", path,
				   pmem2_errormsg());
	if (size != dax_size)
		return backend_err(-EINVAL, "%s: libpmem2 sees %zu bytes, libdaxctl %llu", path,
				   size, (unsigned long long)dax_size);
	if (dax_align && align != dax_align)
		return backend_err(-EINVAL, "%s: libpmem2 sees alignment %zu, libdaxctl %llu", path,
				   align, (unsigned long long)dax_align);
	if (align != (UINT64_C(1) << 12) && align != (UINT64_C(1) << 21) &&
	    align != (UINT64_C(1) << 30))
		return backend_err(-EINVAL, "%s: alignment %zu is not 4K, 2M or 1G", path, align);
	b->size = size;
	b->alignment = align;
	b->map_sync = true;
	int node;
	if (pmem2_source_numa_node(src, &node) == 0)
		b->numa_node = node;

	r = read_badblocks(b, src);
	if (r < 0)
		return r;
	return map_device(b, src);
}

int backend_devdax_deep_flush_open(const char *device_path, int *ret_fd)
{
	_cleanup_(daxctl_unrefp) struct daxctl_ctx *ctx = NULL;
	struct daxctl_region *region;
	struct daxctl_dev *dev;
	struct stat st;
	int r;

	if (!device_path || !ret_fd)
		return backend_err(-EINVAL, "backend_devdax_deep_flush_open: NULL argument");
	if (stat(device_path, &st) < 0)
		return backend_err(negative_errno(), "%s: %m", device_path);
	if (!S_ISCHR(st.st_mode))
		return backend_err(-ENODEV, "%s is not a character device", device_path);
	r = dev_of_node(device_path, &st, &ctx, &dev);
	if (r < 0)
		return r;
	region = daxctl_dev_get_region(dev);
	if (!region)
		return backend_err(-ENODEV, "%s: libdaxctl knows no region of it", device_path);
	/* A dax region made from an NVDIMM namespace carries the NVDIMM region's id
	 * (drivers/dax/pmem.c takes it from the namespace's name, namespaceX.Y). */
	return deep_flush_attr_open("/sys", (unsigned)daxctl_region_get_id(region), ret_fd);
}

int devdax_deep_flush(struct backend *b, uint64_t offset, uint64_t len)
{
	char *base;
	int r;

	if (!b->map)
		return 0; /* RAM (devdax_open_ram): nothing outlives power loss, nothing to flush */
	base = pmem2_map_get_address(b->map);
	if (b->deep_flush_fd >= 0) {
		/* What pmem2_deep_flush does, through the attribute held open since start-up
		 * (deep-flush.c): the range out of the CPU caches, then the region's queues. */
		pmem2_get_persist_fn(b->map)(base + offset, len);
		return deep_flush_attr_trigger(b->deep_flush_fd);
	}
	r = pmem2_deep_flush(b->map, base + offset, len);

	if (r)
		return backend_err(backend_pmem2_errno(r), "%s: deep flush: %s", b->path,
				   pmem2_errormsg());
	return 0;
}
