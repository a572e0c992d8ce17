/* Private body of struct backend, shared by the generic code and the two kinds. */
#pragma once

#include "backend.h"
#include "macro.h"

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

struct pmem2_map;

/* Per-slice kernel objects of one kind (BACKEND_ISOLATION_SLICE); see backend.h. The generic
 * code (slice.c) checks arguments and mode before calling these. */
struct backend_slice_ops {
	int (*create)(struct backend *b, uint64_t offset, uint64_t length, uint64_t align);
	int (*open)(struct backend *b, uint64_t offset, uint64_t length, bool writable,
		    int *ret_fd, uint64_t *ret_map_offset);
	void (*name)(const struct backend *b, uint64_t offset, char *buf, size_t len);
	int (*scrub)(struct backend *b, uint64_t offset, uint64_t length);
	int (*destroy)(struct backend *b, uint64_t offset, uint64_t length);
	/* Calls fn for every object that exists (offset, length); stops at fn's first error. */
	int (*list)(struct backend *b, int (*fn)(void *ud, uint64_t offset, uint64_t length),
		    void *ud);
	/* One step of a sweep of orphans while the daemon serves (backend_slice_sweep); NULL:
	 * reconcile has removed them at start. */
	int (*sweep)(struct backend *b, struct pool *p, unsigned budget, unsigned *ret_removed);
	/* Makes every object durable (DEEP_FLUSH where objects are files); NULL: nothing to do. */
	int (*sync)(struct backend *b);
	/* Frees the kind's private state (backend_delete). */
	void (*free)(struct backend *b);
	/* create takes long (carving, zeroing): the daemon calls it off its loop. */
	bool slow_create;
};

struct backend {
	enum backend_kind kind;
	int fd;
	char *path;
	char *devname;
	uint64_t size;
	uint64_t alignment;
	int numa_node;
	bool map_sync;
	enum backend_persistence persistence;

	/* devdax: the daemon's own whole-device mapping, for pmem2_deep_flush. */
	struct pmem2_map *map;
	/* devdax: the region's deep_flush attribute opened at start-up, or -1 (deep-flush.c). */
	int deep_flush_fd;

	uint8_t expected_uuid[BACKEND_UUID_SIZE];
	bool have_expected_uuid;
	uint8_t uuid[BACKEND_UUID_SIZE];
	bool pool_open;

	enum backend_isolation isolation;
	bool huge; /* emulated: the file is on hugetlbfs */
	uint64_t records; /* backend_config.records */
	int lock_fd; /* the pool lock (pool_lock): held while the backend is open, or -1 */
	int ro_fd; /* a read-only reopen of fd for read-only grants of the whole device, or -1 */
	/* devdax: the sub-device agent (backend_config.agent; not the backend's), or NULL. */
	struct backend_agent *agent;
	/* SLICE mode: the kind's object operations and private state; NULL otherwise. */
	const struct backend_slice_ops *slice_ops;
	void *slice_state;
	/* emulated SLICE mode on hugetlbfs: the pool's own mapping (MAP_NORESERVE, so the data
	 * area, which holds no data, costs no huge pages), or NULL (pool_open_fd maps). */
	void *pool_map;
	uint64_t pool_map_len;

	struct backend_badblock *badblocks; /* sorted by offset, merged */
	size_t nbadblocks;
	struct backend_badblock_stats bbstats;
};

DEFINE_TRIVIAL_CLEANUP_FUNC(FILE *, fclose)

/* alloc.c: every allocation of the backends goes through these (fault injection in tests). */
void *backend_mem_realloc(void *p, size_t size);
void *backend_mem_calloc(size_t n, size_t size);
char *backend_mem_strdup(const char *s);

/* error.c */
/* Formats the thread-local message and returns r (a negative errno): `return backend_err(...)`. */
int backend_err(int r, const char *fmt, ...) _printf_(2, 3);

/* devdax.c: validates cfg->device_path and fills b (fd, size, alignment, numa, map, badblocks
 * from the device). */
int devdax_open(struct backend *b, const char *path);
int devdax_deep_flush(struct backend *b, uint64_t offset, uint64_t len);

/* deep-flush.c: opens SYSFS_ROOT/bus/nd/devices/regionN/deep_flush for writing. 0, or
 * -EOPNOTSUPP when it reads "0" (no flush hints: nothing to hold), -errno of open/read. */
int deep_flush_attr_open(const char *sysfs_root, unsigned region, int *ret_fd);
/* Writes "1" to an attribute opened by deep_flush_attr_open. */
int deep_flush_attr_trigger(int fd);

/* emulated.c: opens/creates the file and fills b. */
int emulated_open(struct backend *b, const struct backend_config *cfg);
int emulated_deep_flush(struct backend *b, uint64_t offset, uint64_t len);

/* slice-file.c: the emulated backend's per-slice files, in POOLFILE.slices/ beside the pool
 * file (same mount, so the same page size). Sets b->slice_ops/slice_state. */
int slice_file_setup(struct backend *b);
/* A pool file served before with its slices inside (isolation "shared"): moves each live slice
 * into its own file and frees the pool file's data area. Nothing to do for a pool file that
 * holds only metadata. */
int slice_file_migrate_in(struct backend *b, struct pool *p, unsigned *ret_moved);
/* The other way, for a pool served now with isolation "shared": moves the data of each live
 * slice's file (left by isolation "slice") into the pool file and removes the files. */
int slice_file_migrate_out(struct backend *b, struct pool *p, unsigned *ret_moved);

/* slice-subdev.c: per-slice sub-devices when the device is the pool device of a dynamic dax
 * region (docs/BACKENDS.md); sets b->slice_ops/slice_state, the pool's mapping and size. Leaves
 * them NULL (returns 0) on a static region, or when !required and the device is not laid out as
 * a pool device. */
int slice_subdev_setup(struct backend *b, bool required);

/* hugetlb.c: free huge pages of a size (free_hugepages - resv_hugepages), -errno if unknown. */
int hugetlb_available(uint64_t page_size, uint64_t *ret_free, uint64_t *ret_total);

/* Takes the pool lock on b->fd: one daemon per pool. */
int backend_lock_pool(struct backend *b);

/* badblock.c */
/* Appends ranges to b->badblocks, then sorts and merges the list. */
int badblock_add(struct backend *b, const struct backend_badblock *list, size_t n);
/* Refuses bad ranges in the pool's metadata and reserves those in its data area. */
int badblock_reserve(struct backend *b, struct pool *p);

/* libpmem2 returns -errno or its own PMEM2_E_* codes (far below -4095): keep errnos, fold the
 * rest into -EINVAL (the message says what happened). */
static inline int backend_pmem2_errno(int r)
{
	return r >= -4095 ? r : -EINVAL;
}
