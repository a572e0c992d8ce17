/*
 * daxpool persistent extent allocator — the interface the daemon uses.
 *
 * A pool lives on one byte range: a device-dax character device or a file, mapped through
 * libpmem2 (pool_open_fd / pool_format_fd), or any caller-provided range with caller-provided
 * persist/flush/drain functions (pool_open_range / pool_format_range: that is how the
 * power-failure simulator plugs in). The on-device format is described in docs/FORMAT.md.
 *
 * Conventions (libpmem2-like):
 *  - functions return 0 (or a documented positive value) on success, a negative errno on failure;
 *  - on failure a message is left in a thread-local buffer, read with pool_errormsg();
 *  - out-parameters named ret_* are written only on success;
 *  - the library never prints and never aborts; out of memory is -ENOMEM and leaves the pool
 *    (persistent and in DRAM) exactly as it was.
 *
 * Thread-safety: a struct pool is NOT internally locked. The daemon calls it from one thread (its
 * event loop, or a worker while the loop does not touch the pool). Different pools may be used
 * from different threads. pool_errormsg() is per thread.
 *
 * Every mutating operation (alloc, free, quarantine, release) is atomic across power failure:
 * after pool_open* it has happened completely or not at all.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct pool;

/* Alignment classes a caller may request. Offsets are aligned relative to the start of the pool
 * (offset 0 of the device or file), which is the device's own aligned base. */
#define POOL_ALIGN_4K (UINT64_C(1) << 12)
#define POOL_ALIGN_2M (UINT64_C(1) << 21)
#define POOL_ALIGN_1G (UINT64_C(1) << 30)

#define POOL_NAME_MAX 255 /* bytes, without the terminating NUL */

/* Record flags, persistent (docs/FORMAT.md). */
#define POOL_REC_ANONYMOUS (1u << 1)   /* no name; the daemon reclaims it after a restart */
#define POOL_REC_QUARANTINED (1u << 2) /* freed by its owner but maybe still pinned/mapped */

/* Flags for pool_alloc. */
#define POOL_ALLOC_ANONYMOUS (1u << 0) /* mark the record anonymous (name must be NULL) */

/* Return value of pool_check (>= 0) and positive return of pool_open_* . */
enum pool_check_result {
	POOL_CHECK_CLEAN = 0,    /* no problem found */
	POOL_CHECK_REPAIRED = 1,   /* problems found and all repaired (repair flag was set) */
	POOL_CHECK_REPAIRABLE = 2, /* problems found, all repairable; repair flag was not set */
	POOL_CHECK_DAMAGED = 3,    /* problems that cannot be repaired without losing data */
};
#define POOL_OPEN_DEGRADED 1 /* pool_open_*: opened, but a redundant copy is bad (see errormsg) */

/* 1 if stores through map (of fd) need no flush at all: a libpmem2 page-granularity (msync)
 * mapping of a file on tmpfs/hugetlbfs/ramfs, which have no backing store (lib/common/fs-util.h);
 * 0 if libpmem2's flushes are needed; -errno if fstatfs fails. The pool and the zeroer use it. */
struct pmem2_map;
int pool_map_needs_no_flush(int fd, struct pmem2_map *map);

/* Persistence functions for a caller-provided range; pmem2_get_persist_fn() & co. fit as is. */
struct pool_persist_ops {
	void (*persist)(const void *addr, size_t len);
	void (*flush)(const void *addr, size_t len);
	void (*drain)(void);
};

/* Format-time parameters; zero fields take defaults. */
struct pool_format_params {
	uint64_t table_capacity; /* number of allocation records; default: 1 per 64 KiB, >= 64 */
	uint64_t device_align;   /* range mode: alignment of the range's base, default 4K; fd mode:
				  * a minimum above the source's own alignment (0 = the source's),
				  * e.g. the huge page size of a hugetlbfs file */
	bool data_clean;         /* range mode: the caller vouches that nothing in the range's
				  * data area can reach a client (slices live elsewhere and are
				  * zeroed when made; the area may be inaccessible): format does
				  * not touch it */
};

/* An allocated extent. */
struct pool_extent {
	uint64_t offset; /* from the start of the pool (device offset), aligned as requested */
	uint64_t length; /* rounded up to the effective alignment */
	uint64_t id;     /* record id: stable while the extent is allocated, reused after */
};

/* Everything a record holds, as given to iterators and lookups. */
struct pool_record_info {
	uint64_t id;
	uint64_t offset;
	uint64_t length;
	uint64_t align;
	uid_t uid;
	gid_t gid;
	uint32_t mode;
	uint32_t flags; /* POOL_REC_* */
	char name[POOL_NAME_MAX + 1]; /* "" for anonymous/unnamed records */
};

/* Allocation request. */
struct pool_alloc_req {
	uint64_t size;    /* bytes, > 0; rounded up */
	uint64_t align;   /* POOL_ALIGN_4K, _2M or _1G */
	const char *name; /* NULL or 1..POOL_NAME_MAX bytes, unique among live records */
	uid_t uid;
	gid_t gid;
	uint32_t mode;
	uint32_t flags; /* POOL_ALLOC_* */
};

/* Space statistics. Class index 0 = 4K, 1 = 2M, 2 = 1G. */
struct pool_stats {
	uint64_t pool_size, data_offset, data_size;
	uint64_t device_align;
	uint64_t table_capacity, records_used, records_anonymous, records_quarantined;
	uint64_t allocated_bytes;
	uint64_t free_bytes[3];       /* free bytes usable at this alignment (whole aligned units) */
	uint64_t largest_free[3];     /* largest single allocation possible at this alignment */
	uint64_t free_extents;        /* number of maximal free extents */
	double fragmentation;         /* 1 - largest_free[0] / free_bytes[0]; 0 when empty */
	uint64_t dram_index_bytes;    /* DRAM held by the index (nodes, names, slot list) */
};

/*
 * One writer per pool. pool_lock() takes an exclusive lock of the pool file or device node that
 * fd is open on, on a descriptor of its own (*ret_lock_fd: keep it open while writing, close it
 * to let go; never hand it to anyone). The lock dies with the process that holds it. Errors:
 * -EBUSY if another process holds it (the message names its pid and command), -errno otherwise.
 * pool_lock_holder(): 1 and the holder's pid and command if another process holds the lock, 0
 * if none does, -errno. Both are safe to call from any thread.
 */
int pool_lock(int fd, int *ret_lock_fd);
int pool_lock_holder(int fd, pid_t *ret_pid, char *comm, size_t comm_len);

/* Thread-local message describing the last failure of a pool_* call in this thread. */
const char *pool_errormsg(void);

/*
 * Writes a new, empty pool on the file or device-dax fd (mapped through libpmem2 for the call).
 * Whatever was there is lost, and none of it can ever be granted: the data area reads as zeroes
 * before the new superblocks are written (a file's blocks are deallocated where the file system
 * can, everything else is overwritten; a crash before the end leaves no pool at all). size is
 * the whole file/device. Errors: -EINVAL (too small, bad params), -ENOMEM, errors from libpmem2
 * mapping.
 */
int pool_format_fd(int fd, const struct pool_format_params *params);

/*
 * Opens the pool on fd: maps it through libpmem2 and uses the persist/flush/drain functions
 * libpmem2 returns for that mapping (on tmpfs/hugetlbfs/ramfs, which have no backing store to
 * msync to, flushes are only compiler barriers: see lib/common/fs-util.h), replays or discards an interrupted operation, checks every
 * checksum and rebuilds the DRAM index. fd must stay open while the pool is (it is not dup'd).
 * Returns 0, or POOL_OPEN_DEGRADED when a superblock copy is bad and the other was used (run
 * pool_check to repair). Errors: -ENODATA (no daxpool superblock), -EPROTONOSUPPORT (format
 * version), -EUCLEAN (metadata damaged: see pool_errormsg, run pool_check), -ENOMEM, mapping errors.
 */
int pool_open_fd(int fd, struct pool **ret_pool);

/* Like pool_format_fd on a caller-provided range [addr, addr+size) with its own persistence:
 * the data area is overwritten with zeroes where it is not zero already, unless
 * params->data_clean. addr must be 8-byte aligned (-EINVAL otherwise). */
int pool_format_range(void *addr, uint64_t size, const struct pool_persist_ops *ops,
		      const struct pool_format_params *params);

/* Like pool_open_fd on a caller-provided range. The range must outlive the pool. */
int pool_open_range(void *addr, uint64_t size, const struct pool_persist_ops *ops,
		    struct pool **ret_pool);

/* Bytes at the start of a pool of this size that hold its metadata (superblocks, log, record
 * table), as pool_format_* would lay it out: the data area begins there. -EINVAL as format. */
int pool_metadata_size(uint64_t size, const struct pool_format_params *params, uint64_t *ret);

/* Persistence for a range on a memory file system (tmpfs, hugetlbfs, ramfs), where nothing is
 * written back: every store is durable once made, flushes only keep the compiler's order. */
extern const struct pool_persist_ops pool_memory_fs_ops;

/* Closes the pool (unmaps it when opened by fd) and sets *pool to NULL. Accepts NULL / *NULL. */
void pool_delete(struct pool **pool);

/*
 * Allocates an extent. Effective alignment = max(req->align, device alignment); length rounded up
 * to it. Small requests are packed into already-split space so whole free 1G (then 2M) chunks
 * stay available as long as possible (docs/FORMAT.md "Placement policy").
 * Errors: -EINVAL (size 0, bad align, bad name/flags), -EEXIST (name in use), -ENOSPC (no free
 * aligned space, or the record table is full), -ENOMEM.
 */
int pool_alloc(struct pool *pool, const struct pool_alloc_req *req, struct pool_extent *ret_extent);
/* The length pool_alloc gives a request of size bytes at align: size rounded up to the larger of
 * align and the pool's device alignment (what a quota must be checked against, as that is what
 * is charged). -ENOSPC if size is more than the pool holds. */
int pool_alloc_length(struct pool *pool, uint64_t size, uint64_t align, uint64_t *ret_length);

/* True when [offset, offset + length) is all free space of the data area: no record, live or
 * quarantined, covers any of it. Never fails. */
bool pool_range_is_free(struct pool *pool, uint64_t offset, uint64_t length);

/*
 * Like pool_alloc, but at exactly offset (aligned to the effective alignment), for reserving a
 * known range such as a bad block. Errors: those of pool_alloc, -EINVAL (offset not aligned),
 * -EBUSY (some part of the range is allocated, metadata or outside the data area).
 */
int pool_alloc_at(struct pool *pool, const struct pool_alloc_req *req, uint64_t offset,
		  struct pool_extent *ret_extent);

/* Copies the pool's identity (the random UUID its superblock got at format). Errors: -EINVAL. */
int pool_get_uuid(struct pool *pool, uint8_t ret_uuid[16]);

/* Frees record id. Errors: -ENOENT (no such live record), -EBUSY (quarantined: use
 * pool_release), -ENOMEM. */
int pool_free(struct pool *pool, uint64_t id);

/*
 * Marks record id quarantined: its extent stays allocated (never handed out again) but its name is
 * released so the name can be reused at once. Use it when a slice is given back while a pin or a
 * mapping may remain; pool_release frees it later. Errors: -ENOENT, -EALREADY.
 */
int pool_quarantine(struct pool *pool, uint64_t id);

/* Frees a quarantined record. Errors: -ENOENT, -EINVAL (not quarantined), -ENOMEM. */
int pool_release(struct pool *pool, uint64_t id);

/* Looks a live record up by name. Errors: -ENOENT, -EINVAL (bad name). */
int pool_lookup(struct pool *pool, const char *name, struct pool_record_info *ret_info);

/* Reads live record id. Errors: -ENOENT. */
int pool_get(struct pool *pool, uint64_t id, struct pool_record_info *ret_info);

/*
 * Calls fn for every live record whose flags contain all of required_flags (0 = every record),
 * in id order. fn returning non-zero stops the walk and that value is returned. pool_iterate with
 * POOL_REC_ANONYMOUS is how the daemon finds anonymous extents to reclaim after a restart. The
 * pool must not be modified from fn.
 */
int pool_iterate(struct pool *pool, uint32_t required_flags,
		 int (*fn)(const struct pool_record_info *info, void *userdata), void *userdata);

/* Like pool_iterate, for the live records whose name starts with prefix ("" = every named
 * record), in name order (strcmp); costs the matching records, not the table. */
int pool_iterate_names(struct pool *pool, const char *prefix,
		       int (*fn)(const struct pool_record_info *info, void *userdata), void *userdata);

/* Fills space statistics. Never fails. */
void pool_get_stats(struct pool *pool, struct pool_stats *ret_stats);

/*
 * Checks the metadata of the pool on a range (not open elsewhere): both superblock copies, the
 * log, every record, overlaps and names. With repair set, fixes what is unambiguous (a bad
 * superblock copy from the good one; a committed log is replayed, a torn uncommitted one cleared).
 * Returns enum pool_check_result, or -errno when it could not run (-ENODATA: no superblock at
 * all). A description of the findings is in pool_errormsg() (also on success).
 */
int pool_check_range(void *addr, uint64_t size, const struct pool_persist_ops *ops, bool repair);

/* pool_check_range on an fd mapped through libpmem2. */
int pool_check_fd(int fd, bool repair);

/*
 * Whether the file or device at fd holds a daxpool pool, by the magic of either superblock copy,
 * without checking or replaying anything (the device may be another daemon's): 1 yes (the UUID of
 * the first copy with the magic in ret_uuid, which may be NULL), 0 no. align is the device's
 * mapping unit (device-dax maps whole units only; 0 for a file). Read-only. Errors: -errno of
 * mmap (a device that cannot be mapped). A damaged pool still counts as one: this is the
 * question "would formatting here destroy a pool?".
 */
int pool_probe_fd(int fd, uint64_t align, uint8_t ret_uuid[16]);

/* Test hook: make the Nth allocation from now fail (1 = next); 0 disables. Not thread-safe. */
void pool_test_fail_alloc_at(unsigned long n);

/* Test hook: plants an ordering bug in the redo log's commit so that a crash test can show it
 * catches one (0 = none, the default). Not thread-safe; the daemon never calls it. */
enum pool_test_ordering_bug {
	POOL_TEST_BUG_NONE = 0,
	POOL_TEST_BUG_COMMIT_BEFORE_BODY, /* the commit mark shares the body's fence */
	POOL_TEST_BUG_CLEAR_BEFORE_APPLY, /* the commit mark is cleared before the table is durable */
};
void pool_test_plant_ordering_bug(enum pool_test_ordering_bug bug);
