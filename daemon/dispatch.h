/* The daemon's request handlers (dispatch.c): what the connection layer hands requests to
 * (conn_handler), and what the carving worker and the leases call back. */
#pragma once

#include "conn.h"

struct carve_job;
struct pool_record_info;

/* The handlers server_start gives the connection layer. */
extern const struct conn_handler dispatch_handler;

/* Frees a live record handed out to clients: quarantined in the pool until the lease rule allows
 * reuse, and no longer counted against its owner's quota. -ENOENT if already freed.
 * unmapped_by: the pid whose FREE/CLOSE this is (it unmapped first, as the protocol requires),
 * so a small slice only it holds is freed at once (lease_free_by_sole_holder); 0 otherwise. */
int slice_free_record(struct daxpoold *d, const struct pool_record_info *rec, pid_t unmapped_by);

/* Answers an ALLOC whose object the carver made (or could not): grants the slice, or undoes the
 * record; then the connection reads again (or is closed if the reply could not be sent). */
void dispatch_alloc_object_made(struct daxpoold *d, struct carve_job *job);
/* A job dropped at shutdown: its connection no longer waits for it. */
void dispatch_alloc_dropped(struct daxpoold *d, struct carve_job *job);
