/* Device-dax namespace setup through libndctl/libdaxctl (see namespace.h). */
#include "errmsg.h"
#include "namespace.h"
#include "parse-util.h"
#include "macro.h"

#include <unistd.h>

#include <daxctl/libdaxctl.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <inttypes.h>
#include <ndctl/libndctl.h>
#include <ndctl/ndctl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

struct namespace_ctx {
	struct ndctl_ctx *ndctl;
	struct daxctl_ctx *daxctl;
};

static int ns_err(int r, const char *fmt, ...) _printf_(2, 3);
static void ns_err_clear(void);

DEFINE_ERRMSG(, namespace_errormsg, ns_err, ns_err_clear)

int namespace_ctx_new(struct namespace_ctx **ret)
{
	struct namespace_ctx *c = calloc(1, sizeof(*c));
	int r;

	if (!c)
		return ns_err(-ENOMEM, "out of memory");
	r = ndctl_new(&c->ndctl);
	if (r < 0) {
		free(c);
		return ns_err(r, "libndctl: cannot initialise: %s", strerror(-r));
	}
	r = daxctl_new(&c->daxctl);
	if (r < 0) {
		ndctl_unref(c->ndctl);
		free(c);
		return ns_err(r, "libdaxctl: cannot initialise: %s", strerror(-r));
	}
	*ret = c;
	return 0;
}

void namespace_ctx_delete(struct namespace_ctx **ctx)
{
	if (!ctx || !*ctx)
		return;
	daxctl_unref((*ctx)->daxctl);
	ndctl_unref((*ctx)->ndctl);
	free(*ctx);
	*ctx = NULL;
}

static bool is_pmem_region(struct ndctl_region *region)
{
	return ndctl_region_get_type(region) == ND_DEVICE_REGION_PMEM;
}

/* Any namespace of the region, to learn whether it is label-backed. */
static bool region_has_labels(struct ndctl_region *region)
{
	struct ndctl_namespace *ndns;

	ndctl_namespace_foreach(region, ndns)
		return ndctl_namespace_get_type(ndns) == ND_DEVICE_NAMESPACE_PMEM;
	return false;
}

static void region_info(struct ndctl_region *region, struct namespace_region_info *info)
{
	struct ndctl_namespace *ndns;
	struct ndctl_dax *dax;
	unsigned long align;

	*info = (struct namespace_region_info){
		.name = ndctl_region_get_devname(region),
		.id = ndctl_region_get_id(region),
		.size = ndctl_region_get_size(region),
		.available = ndctl_region_get_available_size(region),
		.max_extent = ndctl_region_get_max_available_extent(region),
		.interleave_ways = ndctl_region_get_interleave_ways(region),
		.enabled = ndctl_region_is_enabled(region),
		.readonly = ndctl_region_get_ro(region) == 1,
		.labels = region_has_labels(region),
	};
	if (info->max_extent == ULLONG_MAX)
		info->max_extent = info->available;
	align = ndctl_region_get_align(region);
	info->align = align == ULONG_MAX ? 0 : align;
	dax = ndctl_region_get_dax_seed(region);
	if (dax) {
		int n = ndctl_dax_get_num_alignments(dax);
		for (int i = 0; i < n && info->n_dax_aligns < NAMESPACE_MAX_ALIGNS; i++)
			info->dax_aligns[info->n_dax_aligns++] = ndctl_dax_get_supported_alignment(dax, i);
	}
	ndctl_namespace_foreach(region, ndns)
		if (ndctl_namespace_get_size(ndns) > 0)
			info->namespaces++;
}

int namespace_region_foreach(struct namespace_ctx *ctx,
			     int (*fn)(const struct namespace_region_info *info, void *userdata),
			     void *userdata)
{
	struct ndctl_bus *bus;
	struct ndctl_region *region;
	struct namespace_region_info info;
	int r;

	ndctl_bus_foreach(ctx->ndctl, bus)
		ndctl_region_foreach(bus, region) {
			if (!is_pmem_region(region))
				continue;
			region_info(region, &info);
			if ((r = fn(&info, userdata)) != 0)
				return r;
		}
	return 0;
}

static void device_info(struct ndctl_region *region, struct ndctl_dax *dax, struct daxctl_dev *dev,
			struct namespace_device_info *info)
{
	struct ndctl_namespace *ndns = ndctl_dax_get_namespace(dax);
	/* libdaxctl has a memory object exactly when kmem is the driver (daxctl list's mode). */
	struct daxctl_memory *mem = daxctl_dev_get_memory(dev);
	const char *alt = ndns ? ndctl_namespace_get_alt_name(ndns) : NULL;

	*info = (struct namespace_device_info){
		.name = daxctl_dev_get_devname(dev),
		.region = ndctl_region_get_devname(region),
		.namespace = ndns ? ndctl_namespace_get_devname(ndns) : NULL,
		.alt_name = alt && *alt ? alt : NULL,
		.namespace_size = ndns ? ndctl_namespace_get_size(ndns) : 0,
		.size = daxctl_dev_get_size(dev),
		.align = daxctl_dev_get_align(dev),
		.enabled = daxctl_dev_is_enabled(dev),
		.system_ram = mem != NULL,
		.memory_online = mem && daxctl_memory_is_online(mem) > 0,
	};
}

/* Walks every enabled device-dax device of an NVDIMM region; stops when fn returns non-zero. */
static int walk_devices(struct namespace_ctx *ctx,
			int (*fn)(struct ndctl_region *region, struct ndctl_dax *dax,
				  struct daxctl_dev *dev, void *userdata),
			void *userdata)
{
	struct ndctl_bus *bus;
	struct ndctl_region *region;
	struct ndctl_dax *dax;
	struct daxctl_region *dregion;
	struct daxctl_dev *dev;
	int r;

	ndctl_bus_foreach(ctx->ndctl, bus)
		ndctl_region_foreach(bus, region)
			ndctl_dax_foreach(region, dax) {
				if (!ndctl_dax_is_enabled(dax))
					continue;
				dregion = ndctl_dax_get_daxctl_region(dax);
				if (!dregion)
					continue;
				daxctl_dev_foreach(dregion, dev) {
					if (!daxctl_dev_get_size(dev))
						continue; /* the region's idle seed device */
					if ((r = fn(region, dax, dev, userdata)) != 0)
						return r;
				}
			}
	return 0;
}

struct foreach_args {
	int (*fn)(const struct namespace_device_info *info, void *userdata);
	void *userdata;
};

static int foreach_one(struct ndctl_region *region, struct ndctl_dax *dax, struct daxctl_dev *dev,
		       void *userdata)
{
	struct foreach_args *a = userdata;
	struct namespace_device_info info;

	device_info(region, dax, dev, &info);
	return a->fn(&info, a->userdata);
}

int namespace_device_foreach(struct namespace_ctx *ctx,
			     int (*fn)(const struct namespace_device_info *info, void *userdata),
			     void *userdata)
{
	struct foreach_args a = { fn, userdata };

	return walk_devices(ctx, foreach_one, &a);
}

struct find_args {
	const char *name;
	struct ndctl_region *region;
	struct ndctl_dax *dax;
	struct daxctl_dev *dev;
};

static int find_one(struct ndctl_region *region, struct ndctl_dax *dax, struct daxctl_dev *dev,
		    void *userdata)
{
	struct find_args *a = userdata;

	if (strcmp(daxctl_dev_get_devname(dev), a->name) != 0)
		return 0;
	a->region = region;
	a->dax = dax;
	a->dev = dev;
	return 1;
}

static int find_device(struct namespace_ctx *ctx, const char *device, struct find_args *ret)
{
	struct find_args a = { .name = device };

	if (strncmp(a.name, "/dev/", 5) == 0)
		a.name += 5;
	if (walk_devices(ctx, find_one, &a) != 1)
		return ns_err(-ENOENT, "%s: no such device-dax device on an NVDIMM region", device);
	*ret = a;
	return 0;
}

int namespace_device_lookup(struct namespace_ctx *ctx, const char *device,
			    struct namespace_device_info *ret_info)
{
	struct find_args a = { 0 };
	int r = find_device(ctx, device, &a);

	if (r < 0)
		return r;
	device_info(a.region, a.dax, a.dev, ret_info);
	return 0;
}

static struct ndctl_region *find_region(struct namespace_ctx *ctx, const char *name)
{
	struct ndctl_bus *bus;
	struct ndctl_region *region;
	const char *want = name;
	char buf[32];

	/* "0" means region0 */
	if (name[0] >= '0' && name[0] <= '9') {
		snprintf(buf, sizeof(buf), "region%s", name);
		want = buf;
	}
	ndctl_bus_foreach(ctx->ndctl, bus)
		ndctl_region_foreach(bus, region)
			if (strcmp(ndctl_region_get_devname(region), want) == 0)
				return region;
	return NULL;
}

/* A random (version 4) UUID without linking libuuid. */
static int random_uuid(unsigned char uu[16])
{
	if (getrandom(uu, 16, 0) != 16)
		return ns_err(negative_errno(), "getrandom: %s", strerror(errno));
	uu[6] = (uu[6] & 0x0f) | 0x40;
	uu[8] = (uu[8] & 0x3f) | 0x80;
	return 0;
}

/* Prefer namespace id 0 when idle (as ndctl does), else the region's seed. */
static struct ndctl_namespace *idle_namespace(struct ndctl_region *region)
{
	struct ndctl_namespace *ndns;

	ndctl_namespace_foreach(region, ndns)
		if (ndctl_namespace_get_id(ndns) == 0 && ndctl_namespace_is_configuration_idle(ndns))
			return ndns;
	ndns = ndctl_region_get_namespace_seed(region);
	return ndns && ndctl_namespace_is_configuration_idle(ndns) ? ndns : NULL;
}

uint64_t namespace_size_unit(const struct namespace_region_info *info, uint64_t align)
{
	uint64_t unit = info->align ? info->align : 1;

	if (info->interleave_ways > 1 && align * info->interleave_ways > unit)
		unit = align * info->interleave_ways;
	return unit > align ? unit : align;
}

/* Usable bytes of a device-dax device in a namespace of ns bytes (the kernel's pfn layout with
 * the page map in the namespace; the namespace start is assumed aligned). */
static uint64_t usable_in(uint64_t ns, uint64_t align)
{
	enum { INFO_BLOCK = 8192, STRUCT_PAGE = 64, PAGE = 4096 };
	uint64_t front;

	if (ns <= INFO_BLOCK)
		return 0;
	front = INFO_BLOCK + STRUCT_PAGE * ((ns - INFO_BLOCK) / PAGE);
	front = (front + align - 1) / align * align;
	return ns > front ? (ns - front) / align * align : 0;
}

uint64_t namespace_size_for_usable(uint64_t usable, uint64_t align, uint64_t unit)
{
	uint64_t ns = (usable + unit - 1) / unit * unit;

	if (!ns)
		ns = unit;
	while (usable_in(ns, align) < usable)
		ns += unit;
	return ns;
}

int namespace_create_devdax(struct namespace_ctx *ctx, const char *region_name, uint64_t size,
			    uint64_t align, char *ret_name, size_t name_size)
{
	return namespace_create_devdax_named(ctx, region_name, size, align, "daxpool", ret_name,
					     name_size);
}

int namespace_create_devdax_named(struct namespace_ctx *ctx, const char *region_name,
				  uint64_t size, uint64_t align, const char *alt_name,
				  char *ret_name, size_t name_size)
{
	struct namespace_region_info info;
	struct ndctl_region *region = find_region(ctx, region_name);
	struct ndctl_namespace *ndns;
	struct ndctl_dax *dax;
	struct daxctl_region *dregion;
	struct daxctl_dev *dev;
	unsigned char uu[16];
	char a[32], b[32], c[32];
	bool supported = false;
	uint64_t unit;
	int r;

	if (!region || !is_pmem_region(region))
		return ns_err(-ENOENT, "no persistent-memory region \"%s\"", region_name);
	region_info(region, &info);
	if (!info.enabled)
		return ns_err(-ENXIO, "%s is disabled", info.name);
	if (info.readonly)
		return ns_err(-EROFS, "%s is read-only", info.name);
	if (!info.n_dax_aligns)
		return ns_err(-ENXIO, "%s offers no device-dax seed (kernel without device-dax support?)",
			      info.name);
	for (size_t i = 0; i < info.n_dax_aligns; i++)
		supported |= info.dax_aligns[i] == align;
	if (!supported) {
		char list[128] = "";
		for (size_t i = 0; i < info.n_dax_aligns; i++)
			snprintf(list + strlen(list), sizeof(list) - strlen(list), "%s%s", i ? ", " : "",
				 format_size(info.dax_aligns[i], a, sizeof(a)));
		return ns_err(-EOPNOTSUPP, "%s does not support a %s alignment (supported: %s)",
			      info.name, format_size(align, b, sizeof(b)), list);
	}
	if (size % align)
		return ns_err(-EINVAL, "size %s is not a multiple of the %s alignment",
			      format_size(size, a, sizeof(a)), format_size(align, b, sizeof(b)));
	/* The device-dax info block and page map are kept in front of the data, padded to the
	 * alignment: a namespace of one alignment unit has no room left for data. */
	if (size < 2 * align)
		return ns_err(-EINVAL, "size %s leaves no room for data after the device-dax info block: "
			      "at least %s for a %s alignment", format_size(size, a, sizeof(a)),
			      format_size(2 * align, b, sizeof(b)), format_size(align, c, sizeof(c)));
	unit = namespace_size_unit(&info, align);
	if (size % unit)
		return ns_err(-EINVAL, "size %s is not a multiple of %s, the namespace alignment of %s",
			      format_size(size, a, sizeof(a)), format_size(unit, b, sizeof(b)), info.name);

	ndns = idle_namespace(region);
	if (!ndns)
		return ns_err(-EBUSY, "%s has no idle namespace to configure", info.name);
	if (ndctl_namespace_get_type(ndns) == ND_DEVICE_NAMESPACE_IO) {
		/* Without labels the region is one namespace of fixed size. */
		if (size != ndctl_namespace_get_size(ndns))
			return ns_err(-EINVAL, "%s has no namespace labels: its only namespace has the whole "
				      "region's size, %s", info.name,
				      format_size(ndctl_namespace_get_size(ndns), a, sizeof(a)));
	} else if (size > info.max_extent) {
		return ns_err(-ENOSPC, "%s is too small: the largest free extent is %s, %s asked",
			      info.name, format_size(info.max_extent, a, sizeof(a)),
			      format_size(size, b, sizeof(b)));
	}

	if ((r = random_uuid(uu)) < 0)
		return r;
	if (ndctl_namespace_get_type(ndns) != ND_DEVICE_NAMESPACE_IO) {
		if ((r = ndctl_namespace_set_uuid(ndns, uu)) < 0 ||
		    (r = ndctl_namespace_set_alt_name(ndns, alt_name)) < 0 ||
		    (r = ndctl_namespace_set_size(ndns, size)) < 0) {
			ns_err(r, "%s: cannot size the namespace: %s", ndctl_namespace_get_devname(ndns),
			       strerror(-r));
			goto undo_ns;
		}
	}
	/* The kernel places the namespace in the region's free space; device-dax refuses to enable
	 * one whose start is not aligned ("unable to satisfy requested alignment"). Say so now. */
	{
		unsigned long long start = ndctl_namespace_get_resource(ndns);
		if (start != ULLONG_MAX && start % align) {
			r = ns_err(-EINVAL, "%s: the free space of %s starts at %#llx, not %s-aligned: create "
				   "namespaces with the largest alignment first, or free space before it",
				   ndctl_namespace_get_devname(ndns), info.name, start,
				   format_size(align, a, sizeof(a)));
			goto undo_ns;
		}
	}
	/* Opportunistic, as in ndctl: kernels before 4.13 lack the attribute. */
	ndctl_namespace_set_enforce_mode(ndns, NDCTL_NS_MODE_DEVDAX);

	dax = ndctl_region_get_dax_seed(region);
	if (!dax) {
		r = ns_err(-ENXIO, "%s: no device-dax seed", info.name);
		goto undo_ns;
	}
	if ((r = random_uuid(uu)) < 0)
		goto undo_ns;
	if ((r = ndctl_dax_set_uuid(dax, uu)) < 0 ||
	    (r = ndctl_dax_set_location(dax, NDCTL_PFN_LOC_PMEM)) < 0 ||
	    (r = ndctl_dax_set_align(dax, align)) < 0 || (r = ndctl_dax_set_namespace(dax, ndns)) < 0) {
		ns_err(r, "%s: cannot configure the device-dax personality: %s",
		       ndctl_dax_get_devname(dax), strerror(-r));
		goto undo_dax;
	}
	r = ndctl_dax_enable(dax);
	if (r < 0) {
		ns_err(r, "%s: the kernel refused to enable it: %s (see dmesg)",
		       ndctl_dax_get_devname(dax), strerror(-r));
		goto undo_dax;
	}
	dregion = ndctl_dax_get_daxctl_region(dax);
	dev = dregion ? daxctl_dev_get_first(dregion) : NULL;
	if (!dev)
		return ns_err(-ENXIO, "%s enabled, but no device-dax device appeared",
			      ndctl_dax_get_devname(dax));
	snprintf(ret_name, name_size, "%s", daxctl_dev_get_devname(dev));
	return 0;

undo_dax:
	ndctl_dax_set_namespace(dax, NULL);
undo_ns:
	ndctl_namespace_set_enforce_mode(ndns, NDCTL_NS_MODE_RAW);
	if (ndctl_namespace_get_type(ndns) != ND_DEVICE_NAMESPACE_IO)
		ndctl_namespace_delete(ndns);
	return r;
}

/*
 * Zeroes the first 8 KiB of the namespace (where the device-dax info block lives) through its
 * raw block device, so the namespace does not come back as device-dax; a legacy namespace
 * would otherwise be re-probed as dax at the next enable.
 */
static int zero_info_block(struct ndctl_namespace *ndns)
{
	enum { INFO_SIZE = 8192 };
	_cleanup_(closep) int fd = -1;
	const char *blk;
	char path[64];
	void *buf = NULL;
	int r;

	ndctl_namespace_set_raw_mode(ndns, 1);
	r = ndctl_namespace_enable(ndns);
	if (r < 0) {
		r = ns_err(r, "%s: cannot enable raw to clear the info block: %s",
			   ndctl_namespace_get_devname(ndns), strerror(-r));
		goto out;
	}
	blk = ndctl_namespace_get_block_device(ndns);
	snprintf(path, sizeof(path), "/dev/%s", blk ? blk : "");
	fd = open(path, O_RDWR | O_DIRECT | O_EXCL | O_CLOEXEC);
	if (fd < 0) {
		r = ns_err(negative_errno(), "%s: cannot open %s: %s", ndctl_namespace_get_devname(ndns),
			   path, strerror(errno));
		goto out;
	}
	if (posix_memalign(&buf, 4096, INFO_SIZE) != 0) {
		r = ns_err(-ENOMEM, "out of memory");
		goto out;
	}
	memset(buf, 0, INFO_SIZE);
	if (pwrite(fd, buf, INFO_SIZE, 0) != INFO_SIZE) {
		r = ns_err(errno ? negative_errno() : -EIO, "%s: cannot clear the info block: %s", path,
			   strerror(errno ? errno : EIO));
		goto out;
	}
	r = 0;
out:
	free(buf);
	if (fd >= 0)
		close(TAKE_FD(fd));
	ndctl_namespace_set_raw_mode(ndns, 0);
	ndctl_namespace_disable_invalidate(ndns);
	return r;
}

int namespace_destroy_devdax(struct namespace_ctx *ctx, const char *device)
{
	struct namespace_device_info info;
	struct find_args a = { 0 };
	struct ndctl_namespace *ndns;
	int r;

	if ((r = find_device(ctx, device, &a)) < 0)
		return r;
	device_info(a.region, a.dax, a.dev, &info);
	if (info.system_ram)
		return ns_err(-EBUSY, "%s is onlined as system RAM: offline it and switch it back to "
			      "devdax first (daxctl reconfigure-device --mode=devdax)", info.name);
	ndns = ndctl_dax_get_namespace(a.dax);
	if (!ndns)
		return ns_err(-ENXIO, "%s: no namespace behind it", info.name);
	r = ndctl_namespace_disable_safe(ndns);
	if (r < 0)
		return ns_err(r, "%s: cannot disable %s: %s", info.name, ndctl_namespace_get_devname(ndns),
			      strerror(-r));
	ndctl_namespace_set_enforce_mode(ndns, NDCTL_NS_MODE_RAW);
	r = zero_info_block(ndns);
	if (r < 0)
		return r;
	if (ndctl_namespace_get_type(ndns) == ND_DEVICE_NAMESPACE_PMEM) {
		r = ndctl_namespace_delete(ndns);
		if (r < 0)
			return ns_err(r, "%s: cannot delete %s: %s", info.name,
				      ndctl_namespace_get_devname(ndns), strerror(-r));
	}
	return 0;
}

int namespace_reconfigure_devdax(struct namespace_ctx *ctx, const char *device)
{
	struct find_args a = { 0 };
	struct daxctl_memory *mem;
	const char *name;
	int r;

	if ((r = find_device(ctx, device, &a)) < 0)
		return r;
	name = daxctl_dev_get_devname(a.dev);
	mem = daxctl_dev_get_memory(a.dev);
	if (!mem)
		return ns_err(-EALREADY, "%s is not in system-ram mode", name);
	/* Offlining migrates the pages the kernel placed there; it fails (EBUSY) for unmovable
	 * ones, and then nothing else is changed. */
	r = daxctl_memory_offline(mem);
	if (r < 0)
		return ns_err(r, "%s: cannot offline its memory: %s (the kernel holds unmovable pages "
			      "there; memory onlined as online_movable can be offlined)", name, strerror(-r));
	if (daxctl_memory_is_online(mem) > 0)
		return ns_err(-EBUSY, "%s: some memory blocks are still online after offlining", name);
	r = daxctl_dev_disable(a.dev);
	if (r < 0)
		return ns_err(r, "%s: cannot unbind it from kmem: %s", name, strerror(-r));
	r = daxctl_dev_enable_devdax(a.dev);
	if (r < 0)
		return ns_err(r, "%s: cannot bind it to device_dax: %s", name, strerror(-r));
	return 0;
}
