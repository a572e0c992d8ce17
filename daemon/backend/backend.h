/*
 * daxpoold backends: the byte range a pool lives on, and what a client must know to use it.
 *
 * Two kinds (enum backend_kind, daemon/options.h):
 *  - BACKEND_DEVDAX: a device-dax character device (/dev/daxX.Y), validated through libdaxctl and
 *    mapped through libpmem2. Persistent memory: stores are durable once flushed from the CPU
 *    caches (or at once with eADR).
 *  - BACKEND_EMULATED: a file standing in for one: on a hugetlbfs mount for 2M or 1G pages (so a
 *    client's mapping takes PMD/PUD faults as it would on device-dax), or on any file system for
 *    4K. Nothing is durable across power loss on hugetlbfs/tmpfs; the pool does survive daemon
 *    and client restarts.
 * docs/BACKENDS.md describes what each validates.
 *
 * Conventions (libpmem2-like, as lib/pool/include/pool.h):
 *  - functions return 0 (or a documented value >= 0) on success, a negative errno on failure;
 *  - on failure a message is left in a thread-local buffer, read with backend_errormsg();
 *  - out-parameters named ret_* are written only on success;
 *  - the library never prints: the daemon logs the message once.
 *
 * Thread-safety: a struct backend is immutable after backend_open except for the pool-opening
 * call and the bad-block bookkeeping it fills; the accessors and backend_deep_flush may be called
 * from any thread once backend_open_pool has returned. backend_open_pool must not run concurrently
 * with anything else on the same backend. backend_errormsg() is per thread.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct backend;
struct pool;

enum backend_kind {
	BACKEND_NONE,	  /* no pool configured: the daemon answers HELLO/PING/STATUS only */
	BACKEND_DEVDAX,	  /* /dev/daxX.Y */
	BACKEND_EMULATED, /* a file on hugetlbfs (2M/1G) or any file system (4K) */
};

/* "devdax", "emulated" or "none". */
const char *backend_kind_name(enum backend_kind kind);

#define BACKEND_UUID_SIZE 16

/* Names beginning with this prefix belong to the daemon (bad-block reservations, see
 * docs/BACKENDS.md). Clients must not allocate, open or free records with such names. */
#define BACKEND_RESERVED_NAME_PREFIX "daxpool:"
/* Name of the record that keeps a bad range from being handed out: prefix + hex offset. */
#define BACKEND_BADBLOCK_NAME_PREFIX BACKEND_RESERVED_NAME_PREFIX "badblock:"

/* What a client must do to make its stores durable. Values are stable: the protocol carries them. */
enum backend_persistence {
	/* Nothing survives power loss (hugetlbfs, tmpfs): data survives only daemon and client
	 * restarts. A client needs no flush at all for that. */
	BACKEND_PERSIST_NONE = 0,
	/* A file on a persistent file system through the page cache: msync(MS_SYNC) of the range
	 * (or fdatasync) makes stores durable. */
	BACKEND_PERSIST_MSYNC = 1,
	/* Persistent memory behind CPU caches (ADR): flush the cache lines (clwb/clflushopt) and
	 * fence, e.g. pmem2_get_persist_fn() of a MAP_SYNC mapping. */
	BACKEND_PERSIST_CPU_FLUSH = 2,
	/* Persistent memory with the caches in the persistence domain (eADR): a store fence is
	 * enough. */
	BACKEND_PERSIST_FENCE = 3,
};

/*
 * How a client is confined to the memory it was granted (docs/SECURITY.md). Values are stable:
 * the protocol, `daxpoolctl status` and the config carry them.
 */
enum backend_isolation {
	BACKEND_ISOLATION_AUTO = 0,   /* config only: the strongest mode the backend can give */
	/* A kernel object per slice: the fd a client receives reaches that slice and nothing else
	 * (emulated: a file per slice; devdax on a dynamic dax region: a sub-device per slice,
	 * carved at the slice's exact physical range). */
	BACKEND_ISOLATION_SLICE = 1,
	/* One device, one owner uid (static device-dax regions, which cannot be carved): only
	 * that uid (and administrators) receive its fd; every other uid is refused. */
	BACKEND_ISOLATION_OWNER = 2,
	/* One device fd for every owner: any tenant can map every other tenant's slices and the
	 * metadata. Only when the operator writes it in the config. */
	BACKEND_ISOLATION_SHARED = 3,
};

/* A known bad byte range of the device: [offset, offset + length), device offsets. */
struct backend_badblock {
	uint64_t offset;
	uint64_t length;
};

/* What backend_open is asked to open. Unused fields of the other kind must be zero/NULL. */
struct backend_config {
	enum backend_kind kind;
	const char *device_path; /* devdax: /dev/daxX.Y */
	const char *file_path;	 /* emulated: the file (on hugetlbfs for 2M/1G pages) */
	uint64_t size;		 /* emulated: bytes, a multiple of page_size; 0 = the existing
				  * file's size (then the file must exist) */
	uint64_t page_size;	 /* emulated: 4096, 2 MiB or 1 GiB */
	bool create;		 /* emulated: create and size the file when it does not exist */
	uint64_t records;	 /* record capacity when backend_open_pool formats; 0 = default */
	/* NULL, or the 16-byte UUID the pool must have: backend_open_pool refuses another pool
	 * (and refuses to format) with -ESTALE, so a renumbered /dev/daxX.Y is never trusted. */
	const uint8_t *expected_uuid;
	/* Bad ranges to treat as bad in addition to those the device reports (devdax) — the only
	 * source on emulated. For tests and for an operator's list of known-bad ranges. */
	const struct backend_badblock *extra_badblocks;
	size_t n_extra_badblocks;
	/* AUTO: SLICE where the backend can make per-slice objects (emulated, dynamic dax
	 * regions), else OWNER. SLICE on a backend that cannot is refused with -EOPNOTSUPP. */
	enum backend_isolation isolation;
	/* devdax: the sub-device agent (backend_agent_start) that carves and removes sub-devices
	 * of a dynamic dax region for the backend; NULL: the backend does it in this process, which
	 * then needs the privileges. Stays the caller's: backend_delete does not stop it. */
	struct backend_agent *agent;
};

/* Bad-block bookkeeping, filled by backend_open_pool (all zero before). */
struct backend_badblock_stats {
	uint64_t count;		    /* known bad ranges (device-reported + extra) */
	uint64_t bytes;		    /* sum of their lengths */
	uint64_t reserved_records;  /* live BACKEND_BADBLOCK_NAME_PREFIX records in the pool */
	uint64_t reserved_bytes;    /* bytes those records hold (bad ranges rounded to the device
				     * alignment), never handed out */
	uint64_t newly_reserved;    /* records created by the last backend_open_pool */
	uint64_t in_allocated;	    /* bad ranges overlapping a client's extent (allocated before
				     * the block went bad): the daemon should tell that owner */
	bool unknown;		    /* devdax: the device cannot report bad blocks (not an NVDIMM
				     * region); only extra_badblocks are known */
};

/* What backend_open_pool found. */
struct backend_pool_info {
	uint8_t uuid[BACKEND_UUID_SIZE];
	bool formatted; /* there was no pool and one was written */
	bool degraded;	/* opened from one superblock copy (message in backend_errormsg()) */
};

/* Thread-local message describing the last failure (or a degraded open) in this thread. */
const char *backend_errormsg(void);

/*
 * Opens and validates the backend described by cfg; never formats and never changes data.
 * devdax: the path must be a character device of the dax subsystem known to libdaxctl, enabled
 * in devdax mode (a device reconfigured to system-ram is refused with how to switch it back),
 * with libdaxctl's and libpmem2's size agreeing. emulated: creates and sizes the file when
 * missing and cfg->create is set (hugetlbfs pages reserved up front), checks an existing file's
 * size against cfg->size (never resizes it), checks the file system against the page size.
 * Errors: -EINVAL (bad config, size mismatch, wrong file system or page size), -ENOENT (missing
 * and not created), -ENODEV (not a device-dax device), -EBUSY (device in system-ram mode),
 * -ENXIO (device disabled), -ENOSPC (not enough free huge pages or space: the message says how
 * many are needed and free), -ENOMEM, errors of open/libdaxctl/libpmem2.
 * Thread-safety: may run concurrently with other backend_open calls.
 */
int backend_open(const struct backend_config *cfg, struct backend **ret);

/*
 * Opens the pool on the backend (pool_open_fd on backend_fd) and returns it; the pool must be
 * deleted (pool_delete) before the backend. With format_if_empty, a backend with no daxpool
 * superblock at all is formatted first (whatever else was on it is lost) — never when
 * cfg->expected_uuid is set. A pool whose UUID differs from cfg->expected_uuid is refused. Known
 * bad ranges in the data area are then reserved as BACKEND_BADBLOCK_NAME_PREFIX records
 * (idempotent: reopening adds nothing), so no extent overlapping one is ever handed out.
 * ret_info may be NULL. Returns 0. Errors: -ENODATA (no pool and formatting not allowed),
 * -ESTALE (another pool than expected), -EIO (a bad block in the pool's metadata), -EALREADY
 * (already succeeded on this backend: one pool per backend, never two DRAM indexes), errors of
 * pool_open_fd / pool_format_fd / pool_alloc_at (message from pool_errormsg() included).
 */
int backend_open_pool(struct backend *b, bool format_if_empty, struct pool **ret_pool,
		      struct backend_pool_info *ret_info);

/*
 * devdax DEEP_FLUSH without privileges while serving. libpmem2 opens the region's deep_flush
 * sysfs attribute on every deep flush; on a platform with flush hints it is 0644 root, and
 * daxpoold drops CAP_DAC_OVERRIDE before it serves. So the daemon opens it once before the drop
 * (backend_devdax_deep_flush_open, for the device at device_path) and hands the descriptor to the
 * backend after opening it (backend_set_deep_flush_fd, which takes ownership); DEEP_FLUSH then
 * persists the range and writes "1" to it. Errors of the open: -EOPNOTSUPP (the attribute reads
 * 0: no flush hints, a deep flush needs no privilege and libpmem2 does it), -ENOENT (no such
 * attribute: not an NVDIMM region), -ENODEV, -EACCES/-EROFS (no privilege, or /sys read-only),
 * errors of stat/libdaxctl. Without a descriptor DEEP_FLUSH goes through pmem2_deep_flush.
 * Thread-safety: call before the backend is shared.
 */
int backend_devdax_deep_flush_open(const char *device_path, int *ret_fd);
int backend_set_deep_flush_fd(struct backend *b, int fd);

/*
 * The sub-device agent. Carving a sub-device of a dynamic dax region (and reading where one
 * lies) writes and reads root's sysfs attributes, and a new device node is root's: a daemon
 * that drops its privileges after start-up keeps a helper process that holds CAP_DAC_OVERRIDE
 * and CAP_CHOWN and nothing else, and serves only the pool device's region: carving inside the
 * pool's data area, releasing devices of that region other than the pool device, listing them.
 * Every device it carves is given to the caller's user (owner and group, mode 0600).
 *
 * backend_agent_start forks it for the device-dax device at device_path. Call it while the
 * process still has the privileges and before any thread exists; it inherits no descriptor but
 * the channel and stderr, and dies with the process. Errors: -ENOMEM, -errno of socketpair and
 * fork. backend_agent_stop closes the channel and reaps it; accepts NULL and *NULL.
 * Thread-safety: any thread may use a started agent through a backend (calls are serialized).
 */
struct backend_agent;
int backend_agent_start(const char *device_path, struct backend_agent **ret);
void backend_agent_stop(struct backend_agent **a);
/* The agent's process id (-1 for NULL). */
int backend_agent_pid(const struct backend_agent *a);

/* Closes the backend (its mapping and fd) and sets *b to NULL. Accepts NULL and *NULL. The pool
 * opened through it must already be deleted. */
void backend_delete(struct backend **b);

/* The O_RDWR|O_CLOEXEC fd of the device or file; the daemon passes it to clients with
 * SCM_RIGHTS. Owned by the backend: do not close it. */
int backend_fd(const struct backend *b);
enum backend_kind backend_kind(const struct backend *b);
/* The path it was opened by (devdax: as configured; the daxctl name is backend_devname). */
const char *backend_path(const struct backend *b);
/* devdax: "daxX.Y" from libdaxctl; emulated: the file's base name. */
const char *backend_devname(const struct backend *b);
/* Usable bytes: the device's size, or the file's. */
uint64_t backend_size(const struct backend *b);
/* Mapping alignment a client must use for offsets and lengths: the device-dax alignment (4K, 2M
 * or 1G), or the emulated page size. */
uint64_t backend_alignment(const struct backend *b);
/* NUMA node of the memory, -1 if unknown (emulated: always -1). */
int backend_numa_node(const struct backend *b);
/* Whether clients may (and should) map with MAP_SHARED_VALIDATE|MAP_SYNC: devdax yes, emulated
 * never (hugetlbfs and tmpfs refuse MAP_SYNC with EOPNOTSUPP). */
bool backend_supports_map_sync(const struct backend *b);
/* The backend's own read-write mapping of the whole pool where it made one because libpmem2
 * cannot describe the pool (device-dax over RAM: soft-reserved memory, dynamic regions, CXL RAM)
 * and slices are extents of it: its address and *ret_len bytes; NULL otherwise. Plain stores
 * are all it needs (nothing there is written back). Valid until backend_close. */
void *backend_ram_mapping(const struct backend *b, uint64_t *ret_len);

/* What a client must do to make stores durable (see enum backend_persistence). */
enum backend_persistence backend_persistence(const struct backend *b);
const char *backend_persistence_name(enum backend_persistence p);

/* Copies the UUID of the open pool. Errors: -ENODATA (backend_open_pool has not succeeded). */
int backend_uuid(const struct backend *b, uint8_t ret_uuid[BACKEND_UUID_SIZE]);

/*
 * Makes [offset, offset + len) of the backend durable beyond the CPU caches' persistence domain,
 * on behalf of a client. devdax: pmem2_deep_flush on the daemon's mapping, which writes the
 * region's deep_flush sysfs attribute (root only: that is why the daemon does it); emulated:
 * fdatasync of the file (a no-op on hugetlbfs and tmpfs, which hold nothing across power loss).
 * Errors: -EINVAL (range outside the backend), -EIO and errors of libpmem2/fdatasync.
 * Thread-safety: safe from any thread.
 */
int backend_deep_flush(struct backend *b, uint64_t offset, uint64_t len);

/* Known bad ranges (device offsets, sorted, merged), valid until backend_delete. *ret_n may be
 * 0. Never fails. */
void backend_badblocks(const struct backend *b, const struct backend_badblock **ret_list,
		       size_t *ret_n);
/* Bad-block statistics (zero until backend_open_pool). Never fails. */
void backend_badblock_stats(const struct backend *b, struct backend_badblock_stats *ret_stats);

/* ---- isolation: per-slice kernel objects ------------------------------------------------
 *
 * In BACKEND_ISOLATION_SLICE mode every extent handed to a client has a kernel object of its
 * own, keyed by the extent's offset: a file (emulated) or a device-dax sub-device carved at the
 * extent's exact physical range (dynamic dax regions). Its life follows the extent's:
 *   pool_alloc (record persisted) -> backend_slice_create -> grants (backend_slice_open) ->
 *   FREE / quarantine -> holders gone, pins' grace over -> backend_slice_scrub (worker thread) ->
 *   backend_slice_destroy -> pool_release.
 * An object is never destroyed while a holder may map it or a pin may remain: the daemon calls
 * destroy only where it would otherwise reuse the extent. backend_slice_reconcile makes the
 * objects match the pool's records at start (a crash between two of the steps above leaves
 * neither an orphan object nor a range with two owners).
 * In the other modes create/destroy/reconcile do nothing, scrub zeroes the range in place and
 * open returns a new descriptor of the whole device with map offset = the extent's offset.
 * Thread-safety: backend_slice_scrub and backend_slice_destroy may run on one worker thread,
 * and backend_slice_create on another, while the loop thread calls the others; none of them for
 * the same offset at the same time.
 */
enum backend_isolation backend_isolation(const struct backend *b);
/* "slice", "owner", "shared" ("auto" for BACKEND_ISOLATION_AUTO), NULL if unknown. */
const char *backend_isolation_name(enum backend_isolation iso);
/* Parses those names; -EINVAL for anything else. */
int backend_isolation_from_name(const char *name, enum backend_isolation *ret);

/* Creates the object of [offset, offset + length) (aligned to align), empty (zero). Errors:
 * -EEXIST (an object is there already: for a slice file, only when a leftover one could not be
 * removed — a file at the offset of a newly allocated extent is left by an earlier life of the
 * pool and is replaced), -ENOSPC (no memory for it), -EINVAL (outside the data
 * area, misaligned), errors of the kernel interfaces (message says which). */
int backend_slice_create(struct backend *b, uint64_t offset, uint64_t length, uint64_t align);
/* True where backend_slice_create takes long (a sub-device carved and zeroed: milliseconds, or
 * seconds for 1 GiB under emulation), so a server calls it off its event loop. Never fails. */
bool backend_slice_create_is_slow(const struct backend *b);
/* A new O_CLOEXEC descriptor (read-write or read-only) that reaches the extent at offset and
 * nothing else, and the mmap offset of the extent's first byte in it; the caller closes it.
 * Errors: -ENOENT (no object), errors of open. */
int backend_slice_open(struct backend *b, uint64_t offset, uint64_t length, bool writable,
		       int *ret_fd, uint64_t *ret_map_offset);
/* Human name of the object clients receive for the extent at offset: "dax0.3" for a
 * sub-device, "POOLFILE.slices/OFFSET" for an emulated slice file, the device's name in the
 * other modes. Never fails; truncates to len. */
void backend_slice_name(const struct backend *b, uint64_t offset, char *buf, size_t len);
/* Zeroes [offset, offset + length), a part of a quarantined extent, durably. Errors of the
 * mapping / libpmem2. */
int backend_slice_scrub(struct backend *b, uint64_t offset, uint64_t length);
/* Removes the object of the extent at offset (scrubbed, no holder or pin left). A missing
 * object is not an error (a crash after the removal replays it). */
int backend_slice_destroy(struct backend *b, uint64_t offset, uint64_t length);
/* At start, after backend_open_pool: destroys (scrubbed first) every object that no record
 * covers exactly, and creates the objects of live records that have none (their contents are
 * then zero: the message says so). Counts go to *ret_removed / *ret_created (may be NULL).
 * The emulated backend also moves named slices' data between the two layouts when the mode
 * changed: out of the pool file into slice files ("slice"), or back ("shared").
 * Slice files are not walked here (a directory of a million files takes seconds to read, and a
 * restart must not wait for it): backend_slice_sweep removes their orphans while the daemon
 * serves, backend_slice_create replaces a leftover at its offset, and a live record whose file
 * is missing gets -ENOENT from backend_slice_open (the caller makes it anew).
 * On success backend_errormsg() is "" or a note for the log. Errors of the calls above. */
int backend_slice_reconcile(struct backend *b, struct pool *p, unsigned *ret_removed,
			    unsigned *ret_created);
/* One step of the sweep of orphaned slice files (emulated backend, isolation "slice"): reads up
 * to budget directory entries and removes (scrubbed first) each file whose offset is free space
 * in p — no record there, so no descriptor of it can be handed out again. A file inside another
 * record's extent is left for backend_slice_create to replace when its offset is next
 * allocated. Returns 1 while entries remain, 0 when the sweep is over (the next call starts a
 * new one), -errno on error (the sweep is over too). *ret_removed counts this step's removals.
 * Loop thread only, never concurrently with backend_slice_create for the same offset. */
int backend_slice_sweep(struct backend *b, struct pool *p, unsigned budget, unsigned *ret_removed);

/* Test hook: make the Nth backend allocation from now fail with -ENOMEM (1 = next); 0 disables.
 * Not thread-safe. (The pool library's allocations have their own: pool_test_fail_alloc_at.) */
void backend_test_fail_alloc_at(unsigned long n);

/* True when name is one of the daemon's reserved record names (BACKEND_RESERVED_NAME_PREFIX). */
bool backend_name_is_reserved(const char *name);
