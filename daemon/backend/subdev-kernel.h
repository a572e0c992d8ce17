/*
 * The kernel's half of per-slice sub-devices (slice-subdev.c): what reads or writes the dynamic
 * dax region through libdaxctl. Carving, removing and even reading where a device lies (its
 * mappingN/start, resource) are root's sysfs attributes, so a daemon that dropped its
 * privileges asks a helper process that kept exactly the two it needs (subdev-agent.c). Each
 * operation is one fixed-size request and one reply, and both sides run the same code: the
 * helper through subdev_kernel_do, a daemon without a helper directly.
 *
 * The helper trusts nothing in a request. Its scope is fixed when it starts: the pool device
 * it was given and that device's region. It carves only inside the pool's data area (after the
 * pool device, before the region's end), at 4K/2M/1G alignment no smaller than the region's,
 * with start and length multiples of that alignment; it releases only devices of that region
 * other than the pool device, each at the start the daemon expects; it gives every device it
 * carves to the daemon's user (owner and group, mode 0600) and to nobody else.
 */
#pragma once

#include "subdev-geometry.h"

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

enum subdev_op {
	SUBDEV_OP_GEOMETRY = 1, /* where the pool device and its region lie */
	SUBDEV_OP_LIST = 2,	/* the sub-devices in the pool's data area */
	SUBDEV_OP_CARVE = 3,	/* carve [phys, phys + length) at align and enable it */
	SUBDEV_OP_RELEASE = 4,	/* give a sub-device's range back to the region */
};

#define SUBDEV_NAME_MAX 32
#define SUBDEV_MSG_MAX 384

/* One sub-device as the kernel reports it. */
struct subdev_dev {
	char name[SUBDEV_NAME_MAX];
	uint64_t start;	 /* physical start of its first range */
	uint64_t length; /* bytes of all its ranges */
	uint64_t rdev;	 /* its character device (makedev) */
	uint64_t align;
	uint32_t ranges;
	uint32_t flags; /* SUBDEV_DEV_* */
};
#define SUBDEV_DEV_ENABLED 1u
#define SUBDEV_DEV_RAM 2u /* system-ram (kmem) or with memory online */

struct subdev_req {
	uint32_t op;
	uint32_t cleanup; /* LIST: empty devices left disabled with a range (interrupted carves) */
	uint64_t phys;	  /* CARVE: physical start; RELEASE: the start the device must have */
	uint64_t length;  /* CARVE */
	uint64_t align;	  /* CARVE */
	char name[SUBDEV_NAME_MAX]; /* RELEASE */
};

struct subdev_reply {
	int32_t status; /* 0 or a negative errno; msg says what happened */
	uint32_t count;	/* LIST: entries that follow, in messages of SUBDEV_LIST_CHUNK */
	uint32_t cleaned; /* LIST with cleanup: devices emptied */
	int32_t region_id;     /* GEOMETRY */
	uint32_t dynamic;      /* GEOMETRY: the region can be carved */
	uint32_t pad;
	struct subdev_geometry geometry; /* GEOMETRY (region_start 0 when -ENOSPC: none free) */
	struct subdev_dev dev;		 /* GEOMETRY: the pool device; CARVE: the new device */
	char msg[SUBDEV_MSG_MAX];
};

#define SUBDEV_LIST_CHUNK 32

/* Who may open what the kernel side carves, and where its scope lies. */
struct subdev_kernel {
	char pool_devname[SUBDEV_NAME_MAX]; /* fixed at start */
	uid_t owner_uid;		    /* devices carved are chowned to these (not when 0) */
	gid_t owner_gid;
	bool have_geometry; /* GEOMETRY answered: region_id and g are the scope */
	int region_id;
	struct subdev_geometry g;
};

/* Initializes k for the device-dax device at path (/dev/daxX.Y), owned by uid/gid. */
int subdev_kernel_init(struct subdev_kernel *k, const char *path, uid_t uid, gid_t gid);

/* Runs one request. LIST fills *ret_devs (malloc'd, reply->count entries; the caller frees it).
 * Never fails as a call: the outcome is reply->status, with reply->msg. */
void subdev_kernel_do(struct subdev_kernel *k, const struct subdev_req *req,
		      struct subdev_reply *reply, struct subdev_dev **ret_devs);

/* The checks of a CARVE request against k's scope (no kernel call): 0 or -EINVAL/-ERANGE/
 * -ENODATA with the reason in backend_errormsg(). */
int subdev_kernel_check_carve(const struct subdev_kernel *k, uint64_t phys, uint64_t length,
			      uint64_t align);
/* The checks of a RELEASE request's name: a device of k's region other than the pool device. */
int subdev_kernel_check_name(const struct subdev_kernel *k, const char *name);

/* subdev-agent.c: the helper process. NULL agent: requests run in this process. */
struct backend_agent;
/* Forks the agent for path whatever its region (backend_agent_start checks that first). */
int subdev_agent_spawn(const char *device_path, struct backend_agent **ret);
int subdev_call(struct backend_agent *a, struct subdev_kernel *local, const struct subdev_req *req,
		struct subdev_reply *reply, struct subdev_dev **ret_devs);
