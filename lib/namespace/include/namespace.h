/*
 * Device-dax namespace setup through libndctl/libdaxctl (no ndctl binary): list NVDIMM regions
 * and device-dax devices, create a devdax namespace, destroy the namespace behind a device.
 * Written for daxpoolctl and kept free of CLI code so daxpoold can reuse it.
 *
 * Conventions (as lib/pool/include/pool.h): 0 or a documented value >= 0 on success, a negative errno
 * on failure with a message in a thread-local buffer (namespace_errormsg()); out-parameters
 * ret_* written only on success; the code never prints. Not thread-safe per context.
 *
 * What is NOT checked here, because it needs knowledge this module does not have: whether a
 * process holds the device (callers scan /proc) and whether it holds a daxpool pool.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct namespace_ctx;

#define NAMESPACE_MAX_ALIGNS 8

/* A persistent-memory region as namespace_region_foreach reports it. */
struct namespace_region_info {
	const char *name;         /* "region0" */
	unsigned id;
	uint64_t size;
	uint64_t available;       /* free capacity */
	uint64_t max_extent;      /* largest contiguous free extent: the largest namespace possible */
	uint64_t align;           /* namespace sizes must be multiples of this (0: unknown) */
	unsigned interleave_ways;
	bool enabled, readonly;
	bool labels;              /* label-backed (namespaces can be sized); else one legacy namespace */
	size_t n_dax_aligns;      /* device-dax alignments the region supports */
	uint64_t dax_aligns[NAMESPACE_MAX_ALIGNS];
	unsigned namespaces;      /* namespaces with a size (configured) */
};

/* A device-dax device as namespace_device_foreach reports it. */
struct namespace_device_info {
	const char *name;      /* "dax0.0" */
	const char *region;    /* "region0" */
	const char *namespace; /* "namespace0.0", or NULL */
	const char *alt_name;  /* the namespace's name (ndctl create-namespace -n), or NULL */
	uint64_t namespace_size; /* the namespace's size: size plus the info block and page map */
	uint64_t size;
	uint64_t align;
	bool enabled;
	bool system_ram;       /* bound to kmem (system-ram mode): not usable for daxpool */
	bool memory_online;    /* system-ram with memory blocks online */
};

/* Thread-local message describing the last failure. */
const char *namespace_errormsg(void);

/* Opens libndctl and libdaxctl contexts. Errors: -ENOMEM, errors of ndctl_new/daxctl_new. */
int namespace_ctx_new(struct namespace_ctx **ret);
/* Frees the contexts and sets *ctx to NULL; accepts NULL and *NULL. */
void namespace_ctx_delete(struct namespace_ctx **ctx);

/* Calls fn for every persistent-memory region; fn returning non-zero stops and is returned. */
int namespace_region_foreach(struct namespace_ctx *ctx,
			     int (*fn)(const struct namespace_region_info *info, void *userdata),
			     void *userdata);

/* Calls fn for every device-dax device of an NVDIMM region; as namespace_region_foreach. */
int namespace_device_foreach(struct namespace_ctx *ctx,
			     int (*fn)(const struct namespace_device_info *info, void *userdata),
			     void *userdata);

/*
 * Creates a devdax namespace of size bytes in region ("region0" or "0") with the given page
 * alignment and writes the new device's name ("dax0.1") to ret_name.
 * Errors: -ENOENT (no such region), -ENXIO (region disabled or without device-dax support),
 * -EROFS (read-only region), -EOPNOTSUPP (alignment not supported by the region),
 * -EINVAL (size not a multiple of the alignment or of the region's alignment; size does not
 * match a label-less region), -ENOSPC (larger than the largest free extent), -EBUSY (no idle
 * namespace seed), errors of the kernel's sysfs writes.
 */
int namespace_create_devdax(struct namespace_ctx *ctx, const char *region, uint64_t size,
			    uint64_t align, char *ret_name, size_t name_size);

/* As namespace_create_devdax, with the namespace's name (label alt-name, at most 63 bytes)
 * instead of "daxpool". */
int namespace_create_devdax_named(struct namespace_ctx *ctx, const char *region, uint64_t size,
				  uint64_t align, const char *alt_name, char *ret_name,
				  size_t name_size);

/* What a namespace's size must be a multiple of in this region for a device-dax alignment:
 * the region's namespace alignment, and alignment x interleave ways. */
uint64_t namespace_size_unit(const struct namespace_region_info *info, uint64_t align);

/*
 * The namespace size whose device-dax device has at least `usable` bytes with a `align` page
 * map in the namespace itself, as the kernel lays it out: an 8 KiB info block and 64 bytes of
 * struct page per 4 KiB, padded to the alignment, in front; the end trimmed to the alignment.
 * The result is a multiple of unit (namespace_size_unit). An estimate the caller should check
 * against the device's real size.
 */
uint64_t namespace_size_for_usable(uint64_t usable, uint64_t align, uint64_t unit);

/*
 * Switches a device in system-ram mode back to devdax through libdaxctl: offlines its memory
 * blocks, unbinds kmem and binds device_dax. Whatever the kernel had stored there is gone.
 * Errors: -ENOENT (no such device), -EALREADY (already devdax), -EBUSY (memory could not be
 * offlined: the kernel holds unmovable pages there), errors of the sysfs writes.
 */
int namespace_reconfigure_devdax(struct namespace_ctx *ctx, const char *device);

/* Looks a device up ("dax0.0" or "/dev/dax0.0"). Errors: -ENOENT. */
int namespace_device_lookup(struct namespace_ctx *ctx, const char *device,
			    struct namespace_device_info *ret_info);

/*
 * Disables the namespace behind device, clears its info block (so it does not come back as
 * device-dax) and deletes it (label-backed namespaces; a legacy one stays, raw).
 * Errors: -ENOENT (no such device), -EBUSY (onlined as system RAM), -ENXIO (no namespace),
 * errors of the kernel's sysfs writes.
 */
int namespace_destroy_devdax(struct namespace_ctx *ctx, const char *device);
