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
