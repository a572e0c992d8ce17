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
 * memory and the child's copy of the socket; the parent's session is unaffected).
 */
#ifndef DAXPOOL_H
#define DAXPOOL_H

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
 * Errors: -ENOENT (no such slice), -EACCES (permission), -EINVAL, connection errors.
 */
DAXPOOL_EXPORT int daxpool_open(struct daxpool *dp, const char *name, unsigned flags,
				struct daxpool_slice **ret);

/*
 * daxpool_close - tell the daemon this process no longer maps the slice, close the local fd and
 * free *slice (set to NULL). Unmap first. The slice itself stays (an anonymous one is given up).
 * Errors: -EBUSY (declared pins remain), connection errors; *slice is freed in every case but
 * -EBUSY and -EINVAL.
 */
DAXPOOL_EXPORT int daxpool_close(struct daxpool *dp, struct daxpool_slice **slice);

/*
 * daxpool_free - free the slice (implies daxpool_close for this process; unmap first). Only the
 * owner or an administrator may free a named slice, through a handle opened read-write. Its
 * extent is reused only after every process that may map or pin it let go, and after zeroing.
 * Errors: -EACCES, -EBUSY (declared pins remain), -ENOENT (already freed), connection errors;
 * *slice is freed on success.
 */
DAXPOOL_EXPORT int daxpool_free(struct daxpool *dp, struct daxpool_slice **slice);

/* Slice properties. The fd is owned by the slice (valid until daxpool_close/daxpool_free). */
DAXPOOL_EXPORT int daxpool_slice_get_fd(const struct daxpool_slice *s);
DAXPOOL_EXPORT uint64_t daxpool_slice_get_offset(const struct daxpool_slice *s); /* mmap offset */
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
