/*
 * libdaxpool — the client library of daxpool, the persistent-memory slice broker for Linux
 * device-dax.
 *
 * Conventions (the same as PMDK's libpmem2):
 *  - Functions that can fail return 0 (or a non-negative value) on success and a negative errno
 *    on failure. A human-readable description of the last failure on the calling thread is
 *    available from daxpool_errormsg().
 *  - Objects are opaque. Constructors take a `ret_*` out-parameter that is written only on
 *    success; destructors take a pointer to the caller's pointer, accept NULL, and reset it.
 *  - The library never prints and never calls exit(); it keeps no global state other than the
 *    per-thread error buffer.
 *
 * Thread safety: a struct daxpool connection may be used from several threads; calls on one
 * connection are serialized internally (one request in flight per connection). Use one
 * connection per thread for parallel requests.
 *
 * fork(): a connection is not shared with a child. After fork() the child must not use the
 * parent's connections other than to daxpool_disconnect() them (which then only releases local
 * memory and the child's copy of the socket; the parent's session is unaffected). The child must
 * not use the parent's slice and pin objects either (calls that reach the daemon fail there);
 * they go away at exit or exec (slice fds are close-on-exec). Mappings made by daxpool_map are
 * not inherited at all (MADV_DONTFORK), and io_uring pins stay with the parent's rings. A child
 * that needs a slice connects and opens it itself.
 */
#ifndef DAXPOOL_H
#define DAXPOOL_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#ifdef __cplusplus
extern "C" {
#endif

#define DAXPOOL_EXPORT __attribute__((visibility("default")))

/* Error codes specific to daxpool, far outside errno's range; returned negated like errnos. */
enum daxpool_error {
	DAXPOOL_E_PROTOCOL = 100000, /* the daemon sent something this library cannot parse */
	DAXPOOL_E_VERSION = 100001,  /* no protocol version both sides speak */
};

/* A connection to daxpoold. */
struct daxpool;

/* A snapshot of the daemon's status, from daxpool_status(). */
struct daxpool_status;

/*
 * daxpool_connect - connect to daxpoold and negotiate the protocol version (HELLO).
 * @socket_path: the daemon's socket; NULL means $DAXPOOL_SOCKET if set, else the build-time
 *               default (/run/daxpool/daxpoold.sock).
 * @ret: receives the connection on success.
 * Errors: -EINVAL (ret NULL, path too long), -ENOENT/-ECONNREFUSED/-EACCES (no daemon there or
 * no permission), -ETIMEDOUT (the daemon did not answer in time), -DAXPOOL_E_VERSION (no common
 * protocol version), -DAXPOOL_E_PROTOCOL (malformed reply), -ENOMEM.
 * Thread safety: safe; each call makes an independent connection.
 */
DAXPOOL_EXPORT int daxpool_connect(const char *socket_path, struct daxpool **ret);

/*
 * daxpool_disconnect - close a connection and free it; *dp is set to NULL. Accepts NULL and
 * *dp == NULL. Anonymous slices of the connection are reclaimed by the daemon.
 * Thread safety: no other thread may use the connection during or after the call.
 */
DAXPOOL_EXPORT void daxpool_disconnect(struct daxpool **dp);

/*
 * daxpool_ping - one round trip to the daemon, checking that it answers and echoes a nonce.
 * Errors: -EINVAL (dp NULL), -EPIPE/-ECONNRESET (daemon went away), -ETIMEDOUT,
 * -DAXPOOL_E_PROTOCOL.
 * Thread safety: safe on a shared connection.
 */
DAXPOOL_EXPORT int daxpool_ping(struct daxpool *dp);

/* Default and largest reply polling budget of a connection (daxpool_set_reply_spin), in µs. */
#define DAXPOOL_REPLY_SPIN_DEFAULT_US 100
#define DAXPOOL_REPLY_SPIN_MAX_US 1000

/*
 * daxpool_set_reply_spin - how long a request on dp polls for its reply before it sleeps.
 * @max_us: 0 to always sleep; at most DAXPOOL_REPLY_SPIN_MAX_US. A new connection starts with
 *          $DAXPOOL_REPLY_SPIN_US if that is set (and valid), else DAXPOOL_REPLY_SPIN_DEFAULT_US.
 * Polling spends up to max_us of the calling thread's CPU per request (yielding to other
 * runnable threads meanwhile) to save the wake-up a sleeping thread costs when the reply comes.
 * The connection stops polling by itself for a while when replies keep coming too late for it
 * (a busy daemon), so a budget never costs more than it saves for long; the result of every
 * request is the same whatever the budget.
 * Errors: -EINVAL (dp NULL, max_us too large).
 * Thread safety: safe on a shared connection; requests already waiting keep their budget.
 */
DAXPOOL_EXPORT int daxpool_set_reply_spin(struct daxpool *dp, unsigned max_us);

/*
 * daxpool_protocol_version - the protocol version negotiated at connect time (>= 1), or
 * -EINVAL for a NULL connection.
 */
DAXPOOL_EXPORT int daxpool_protocol_version(const struct daxpool *dp);

/*
 * daxpool_daemon_version - the daemon's version string from HELLO, valid as long as dp is;
 * NULL for a NULL connection.
 */
DAXPOOL_EXPORT const char *daxpool_daemon_version(const struct daxpool *dp);

/*
 * daxpool_status - ask the daemon for its status.
 * @ret: receives a snapshot to read with the daxpool_status_get_*() functions and free with
 *       daxpool_status_delete().
 * Errors: as daxpool_ping(), plus -ENOMEM.
 * Thread safety: safe on a shared connection; the snapshot belongs to the caller.
 */
DAXPOOL_EXPORT int daxpool_status(struct daxpool *dp, struct daxpool_status **ret);

/* daxpool_status_delete - free a status snapshot and set *st to NULL; accepts NULL. */
DAXPOOL_EXPORT void daxpool_status_delete(struct daxpool_status **st);

/* Fields of a status snapshot. The string is valid as long as the snapshot is. */
DAXPOOL_EXPORT pid_t daxpool_status_get_pid(const struct daxpool_status *st);
DAXPOOL_EXPORT const char *daxpool_status_get_version(const struct daxpool_status *st);
DAXPOOL_EXPORT unsigned daxpool_status_get_protocol_version(const struct daxpool_status *st);
DAXPOOL_EXPORT uint64_t daxpool_status_get_uptime_ns(const struct daxpool_status *st);
DAXPOOL_EXPORT uint64_t daxpool_status_get_start_time(const struct daxpool_status *st);
DAXPOOL_EXPORT unsigned daxpool_status_get_clients(const struct daxpool_status *st);

/* ---- slices ------------------------------------------------------------------------------ */

/* A slice of the pool this connection was given (by daxpool_alloc or daxpool_open). It holds
 * the device fd the daemon passed, the slice's place in the device and its properties. */
struct daxpool_slice;

#define DAXPOOL_ALIGN_4K (UINT64_C(1) << 12) /* PTE mappings */
#define DAXPOOL_ALIGN_2M (UINT64_C(1) << 21) /* PMD mappings */
#define DAXPOOL_ALIGN_1G (UINT64_C(1) << 30) /* PUD mappings */

/* daxpool_alloc flags */
#define DAXPOOL_ANONYMOUS (1u << 0) /* no name; reclaimed when this connection closes */
/* daxpool_open flags */
#define DAXPOOL_OPEN_RDWR (1u << 0) /* a read-write fd (needs write permission); else read-only */

/*
 * daxpool_alloc - allocate a slice.
 * @name: NULL with DAXPOOL_ANONYMOUS, else 1..255 printable ASCII bytes without '/' and not
 *        starting with '.'; names starting with "daxpool:" are reserved.
 * @size: bytes (> 0), rounded up to @align; @align: DAXPOOL_ALIGN_4K, _2M or _1G.
 * @mode: permission bits (0..0777) for other users, as for files; 0 means 0600.
 * @ret: receives the slice (free its local state with daxpool_close or daxpool_free).
 * A named slice persists across client, daemon and machine restarts until freed; an anonymous
 * one lives as long as this connection. The memory is zeroed.
 * Freed space is zeroed in the background before reuse: while enough of it is being zeroed the
 * call waits for it (up to 2 s, without holding the connection) rather than failing.
 * Errors: -EINVAL (bad arguments), -EEXIST (name taken), -ENOSPC (no aligned space), -EDQUOT
 * (quota), -EPERM (reserved name), -ENODEV (the daemon serves no pool), connection errors.
 * Thread safety: safe on a shared connection.
 */
DAXPOOL_EXPORT int daxpool_alloc(struct daxpool *dp, const char *name, uint64_t size, uint64_t align,
				 unsigned mode, unsigned flags, struct daxpool_slice **ret);

/*
 * daxpool_alloc_owned - as daxpool_alloc for a named slice owned by uid:gid (administrators only:
 * root or the daemon's admin group). (uid_t)-1 / (gid_t)-1 keep the caller's.
 * Errors: as daxpool_alloc, plus -EPERM for a non-administrator.
 */
DAXPOOL_EXPORT int daxpool_alloc_owned(struct daxpool *dp, const char *name, uint64_t size,
				       uint64_t align, unsigned mode, uid_t uid, gid_t gid,
				       struct daxpool_slice **ret);

/*
 * daxpool_open - open an existing named slice. The owner, group and mode of the slice decide
 * (read permission; write permission too with DAXPOOL_OPEN_RDWR).
 * Errors: -ENOENT (no such slice, or one the caller may not read: the same answer, so nothing
 * about another user's slice leaks), -EACCES (readable but not writable, for a write open),
 * -EINVAL, connection errors.
 */
DAXPOOL_EXPORT int daxpool_open(struct daxpool *dp, const char *name, unsigned flags,
				struct daxpool_slice **ret);

/*
 * daxpool_close - tell the daemon this process no longer maps the slice, close the local fd and
 * free *slice (set to NULL). The slice itself stays (an anonymous one is given up). A mapping
 * made by daxpool_map is removed first, before the daemon is told (so it stays removed even if
 * the daemon then answers -EBUSY); pins from daxpool_pin_longterm make it fail with -EBUSY
 * before anything is done.
 * Errors: -EBUSY (pins remain), connection errors; *slice is freed in every case but -EBUSY and
 * -EINVAL.
 */
DAXPOOL_EXPORT int daxpool_close(struct daxpool *dp, struct daxpool_slice **slice);

/*
 * daxpool_free - free the slice (implies daxpool_close for this process; unmaps first, as
 * daxpool_close). Only the owner or an administrator may free a named slice, through a handle
 * opened read-write. Its extent is reused only after every process that may map or pin it let
 * go, and after zeroing.
 * Errors: -EACCES (a read-only handle: checked before unmapping; not the owner: the mapping is
 * gone by then), -EBUSY (pins remain), -ENOENT (already freed), connection errors; *slice is
 * freed on success.
 */
DAXPOOL_EXPORT int daxpool_free(struct daxpool *dp, struct daxpool_slice **slice);

/* Slice properties. The fd is owned by the slice (valid until daxpool_close/daxpool_free). */
DAXPOOL_EXPORT int daxpool_slice_get_fd(const struct daxpool_slice *s);
/* The mmap offset of the slice's first byte in its fd (0 where the fd is the slice's own object). */
DAXPOOL_EXPORT uint64_t daxpool_slice_get_offset(const struct daxpool_slice *s);
/* Where the slice lies in the pool (its place in the device's address space): for display and
 * for comparing slices, not for mmap. */
DAXPOOL_EXPORT uint64_t daxpool_slice_get_pool_offset(const struct daxpool_slice *s);
/* The kernel object the fd is of ("dax0.3", "POOLFILE.slices/OFFSET", the device's name). */
DAXPOOL_EXPORT const char *daxpool_slice_get_object(const struct daxpool_slice *s);
/*
 * How the fd confines its holder (docs/SECURITY.md):
 *   DAXPOOL_ISOLATION_SLICE  - the fd reaches this slice only; mapping beyond it fails (SIGBUS);
 *   DAXPOOL_ISOLATION_OWNER  - the fd is the whole device, which serves only this slice's owner;
 *   DAXPOOL_ISOLATION_SHARED - the whole device, shared by every owner (an operator's choice).
 */
#define DAXPOOL_ISOLATION_SLICE 1
#define DAXPOOL_ISOLATION_OWNER 2
#define DAXPOOL_ISOLATION_SHARED 3
DAXPOOL_EXPORT int daxpool_slice_get_isolation(const struct daxpool_slice *s);
DAXPOOL_EXPORT uint64_t daxpool_slice_get_length(const struct daxpool_slice *s);
DAXPOOL_EXPORT uint64_t daxpool_slice_get_alignment(const struct daxpool_slice *s);
DAXPOOL_EXPORT const char *daxpool_slice_get_name(const struct daxpool_slice *s); /* "" if anonymous */
DAXPOOL_EXPORT uid_t daxpool_slice_get_uid(const struct daxpool_slice *s);
DAXPOOL_EXPORT gid_t daxpool_slice_get_gid(const struct daxpool_slice *s);
DAXPOOL_EXPORT unsigned daxpool_slice_get_mode(const struct daxpool_slice *s);
DAXPOOL_EXPORT int daxpool_slice_is_writable(const struct daxpool_slice *s);
DAXPOOL_EXPORT int daxpool_slice_is_anonymous(const struct daxpool_slice *s);
/* 1 when the device supports MAP_SHARED_VALIDATE|MAP_SYNC (real device-dax), else 0. */
DAXPOOL_EXPORT int daxpool_slice_supports_map_sync(const struct daxpool_slice *s);
/* 1 when flushed stores survive power loss (real persistent memory), else 0. */
DAXPOOL_EXPORT int daxpool_slice_is_durable(const struct daxpool_slice *s);

/*
 * daxpool_pin_declare - declare a long-term pin the application made itself on
 * [offset, offset+length) of the slice (e.g. ibv_reg_mr, io_uring buffer registration), so the
 * daemon never reuses the extent while it may exist. @ret_pin receives an id for
 * daxpool_pin_undeclare. A declared pin outlives the connection until the process exits.
 * Errors: -ERANGE (outside the slice), -EBADF (slice not of this connection), connection errors.
 */
DAXPOOL_EXPORT int daxpool_pin_declare(struct daxpool *dp, const struct daxpool_slice *s,
				       uint64_t offset, uint64_t length, uint64_t *ret_pin);
/* daxpool_pin_undeclare - the pin is gone. Errors: -ENOENT, connection errors. */
DAXPOOL_EXPORT int daxpool_pin_undeclare(struct daxpool *dp, uint64_t pin);

/*
 * daxpool_deep_flush - have the daemon make [offset, offset+length) of the slice durable beyond
 * the CPU persistence domain (pmem2_deep_flush: the region's deep_flush, root-only, which is why
 * the daemon does it). Errors: -ERANGE, -EBADF, -EIO, connection errors.
 */
DAXPOOL_EXPORT int daxpool_deep_flush(struct daxpool *dp, const struct daxpool_slice *s,
				      uint64_t offset, uint64_t length);

/* ---- mapping and persistence ------------------------------------------------------------ */

/* daxpool_map flags */
#define DAXPOOL_MAP_READONLY (1u << 0) /* map PROT_READ even if the slice is writable */

/*
 * daxpool_map - map the whole slice into this process at an address aligned to the slice's
 * alignment (daxpool_slice_get_alignment), so a 2M slice is mapped with PMD and a 1G slice with
 * PUD entries where the backend allows (device-dax, hugetlbfs). The mapping is MAP_SHARED;
 * MAP_SHARED_VALIDATE|MAP_SYNC where daxpool_slice_supports_map_sync() says so. A read-only
 * slice (daxpool_open without DAXPOOL_OPEN_RDWR), or DAXPOOL_MAP_READONLY, maps PROT_READ.
 * The mapping is not inherited by fork() children (MADV_DONTFORK): the daemon knows only the
 * processes it gave the fd to.
 * @ret_addr: receives the address; the length is daxpool_slice_get_length().
 * One mapping per slice object at a time; daxpool_close/daxpool_free unmap it if still mapped.
 * Errors: -EINVAL (NULL argument, unknown flags), -EBUSY (already mapped), -EOPNOTSUPP (the
 * device refused MAP_SYNC although the daemon announced it), -ENOMEM (no address space),
 * other negative errnos from mmap.
 * Thread safety: safe; calls on one slice object are serialized.
 */
DAXPOOL_EXPORT int daxpool_map(struct daxpool_slice *s, unsigned flags, void **ret_addr);

/*
 * daxpool_unmap - remove the mapping made by daxpool_map.
 * Errors: -EINVAL (NULL, or not mapped), -EBUSY (pins from daxpool_pin_longterm remain).
 * Thread safety: safe against other map/unmap calls; the caller must ensure no thread still
 * uses the memory or calls daxpool_persist on it.
 */
DAXPOOL_EXPORT int daxpool_unmap(struct daxpool_slice *s);

/* daxpool_slice_get_address - the address of the slice's mapping, or NULL if not mapped. */
DAXPOOL_EXPORT void *daxpool_slice_get_address(const struct daxpool_slice *s);

/*
 * daxpool_persist - make the stores to [addr, addr+len) of the slice's writable mapping
 * persistent: libpmem2's persist function on device-dax (CPU cache flush + fence), msync() of
 * the touched pages on the emulated backend. It involves no daemon round
 * trip. Flushed data is durable across power loss only where daxpool_slice_is_durable(); it
 * survives process and daemon crashes everywhere. For durability beyond the CPU persistence
 * domain see daxpool_deep_flush. len 0 is a no-op.
 * Errors: -EINVAL (NULL argument, slice not mapped), -ERANGE (range outside the mapping),
 * -EBADF (the mapping is read-only), -EIO and other msync() errors (emulated backend only).
 * Thread safety: safe, from any number of threads, as long as no thread unmaps the slice.
 */
DAXPOOL_EXPORT int daxpool_persist(const struct daxpool_slice *s, const void *addr, size_t len);

/* ---- long-term pins made by the library -------------------------------------------------- */

/* A long-term pin made by daxpool_pin_longterm. */
struct daxpool_pin;

/*
 * daxpool_pin_longterm - pin [addr, addr+len) of the slice's mapping long-term (FOLL_LONGTERM)
 * by registering it as io_uring fixed buffers, and declare the pin to the daemon
 * (daxpool_pin_declare), in that order.
 * @ring_fd: -1: the library makes a private io_uring instance that holds nothing but the pin;
 *           else the fd of the caller's ring (struct io_uring's ring_fd), which must have no
 *           registered buffers: the range is registered there as fixed buffers 0..n-1, one per
 *           GiB, for READ_FIXED/WRITE_FIXED. The library keeps a dup of the fd until unpin.
 * @ret: receives the pin, to release with daxpool_unpin.
 * When the kernel refuses the pin (Linux 6.1 refuses io_uring registration of device-dax and
 * other file-backed memory except hugetlbfs; 6.5+ refuses file systems that need dirty
 * tracking, such as ext4 files of an emulated pool) it returns -EOPNOTSUPP and declares nothing.
 * While the pin exists, daxpool_unmap, daxpool_close and daxpool_free of the slice fail with
 * -EBUSY.
 * Errors: -EINVAL (NULL argument, len 0, slice not mapped), -ERANGE (outside the mapping),
 * -EOPNOTSUPP (see above), -EBUSY (the given ring already has buffers), -ENOMEM (also over
 * RLIMIT_MEMLOCK), errors of daxpool_pin_declare.
 * Thread safety: safe.
 */
DAXPOOL_EXPORT int daxpool_pin_longterm(struct daxpool *dp, struct daxpool_slice *s, void *addr,
					size_t len, int ring_fd, struct daxpool_pin **ret);

/*
 * daxpool_unpin - unregister the io_uring buffers (the kernel drops the pin), then undeclare
 * the pin at the daemon; frees *pin and sets it to NULL (accepts *pin == NULL). If the
 * unregistration fails the declaration is kept (the daemon drops it when the process exits).
 * Errors: -EINVAL, the unregistration's errno, errors of daxpool_pin_undeclare; *pin is freed
 * in every case.
 * Thread safety: safe; no other thread may use the same pin object.
 */
DAXPOOL_EXPORT int daxpool_unpin(struct daxpool *dp, struct daxpool_pin **pin);

/* daxpool_pin_get_id - the daemon's id of the pin (as daxpool_pin_declare returns), 0 for NULL. */
DAXPOOL_EXPORT uint64_t daxpool_pin_get_id(const struct daxpool_pin *pin);

/* Pool statistics (daxpool_stat). Fields are only ever appended; pass sizeof. */
struct daxpool_stats {
	uint64_t pool_size, data_size, device_align, allocated_bytes;
	uint64_t free_bytes[3], largest_free[3]; /* per alignment: 4K, 2M, 1G */
	uint64_t slices, anonymous_slices, quarantined, table_capacity;
	uint64_t badblocks, badblock_bytes;
	uint64_t zeroing_pending_bytes, zeroed_bytes_total;
	uint64_t pins, leases_waiting;
	double fragmentation;
	unsigned backend; /* 1 devdax, 2 emulated */
	uint8_t uuid[16];
	unsigned isolation; /* DAXPOOL_ISOLATION_*: how a granted fd confines its holder */
	/* The daemon's per-uid bounds (its config's "limits", 0 = unlimited) and what its clients
	 * hold now; has_limits is 0 when the daemon does not report them (older daemons). */
	int has_limits;
	unsigned max_clients, reserved_admin_connections, connections_per_uid, unauthenticated_per_uid;
	unsigned hello_timeout_ms, handles_per_uid, holders_per_uid, pins_per_uid, inflight_per_uid;
	unsigned requests_per_turn;
	unsigned clients, unauthenticated_clients, client_uids, handles, declared_pins, holders;
	unsigned parked_replies, throttled_connections;
	uid_t busiest_uid; /* the uid with the most connections, (uid_t)-1 with none */
	unsigned busiest_uid_connections;
	uint64_t refused_connections; /* by max_clients, reserved slots or a per-uid bound */
	uint64_t refused_requests;    /* ALLOC/OPEN/PIN refused at a per-uid bound (-EUSERS) */
	uint64_t hello_timeouts, deferred_turns, throttled_total;
	/* has_limit_detail is 0 when the daemon does not report what follows (older daemons). */
	int has_limit_detail;
	unsigned carves_per_uid; /* limits.carves_per_uid (0 = unlimited) */
	unsigned carves_pending; /* ALLOCs waiting for a carved object (dynamic regions only) */
	/* The refusals counted above, by the bound that refused them. */
	uint64_t refused_max_clients, refused_reserved_admin, refused_connections_per_uid;
	uint64_t refused_unauthenticated_per_uid, refused_handles_per_uid, refused_holders_per_uid;
	uint64_t refused_pins_per_uid, refused_carves_per_uid;
};

/* daxpool_stat - pool statistics. Errors: -EINVAL (NULL, size too small), -ENODEV, connection errors. */
DAXPOOL_EXPORT int daxpool_stat(struct daxpool *dp, struct daxpool_stats *ret, size_t size);

/* A slice as listed by daxpool_list. */
struct daxpool_slice_info {
	char name[256];
	uint64_t offset, length, align;
	uid_t uid;
	gid_t gid;
	unsigned mode;
	int anonymous;
	char object[32]; /* the kernel object a grant of it passes (daxpool_slice_get_object) */
	int isolation;	 /* DAXPOOL_ISOLATION_* */
};

/*
 * daxpool_list - calls fn for every slice the caller may see (own, readable, or all for an
 * administrator); fn returning non-zero stops the walk and that value is returned.
 * Errors: -EINVAL, -ENODEV, connection errors.
 */
DAXPOOL_EXPORT int daxpool_list(struct daxpool *dp,
				int (*fn)(const struct daxpool_slice_info *info, void *userdata),
				void *userdata);

/*
 * daxpool_errormsg - the message of the last failure of a daxpool call on this thread, or ""
 * if there was none. The buffer is thread-local and overwritten by the next failing call.
 */
DAXPOOL_EXPORT const char *daxpool_errormsg(void);

/*
 * daxpool_strerror - a static description of an error code returned by this library (a
 * negative errno or -DAXPOOL_E_*). Never NULL. Thread safety: safe.
 */
DAXPOOL_EXPORT const char *daxpool_strerror(int error);

/* The library's version, e.g. "0.1.0". */
DAXPOOL_EXPORT const char *daxpool_version(void);

#ifdef __cplusplus
}
#endif

#endif /* DAXPOOL_H */
