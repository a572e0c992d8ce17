/* Requests to replies: one handler per message type. */
#include "build-config.h"
#include "carve.h"
#include "conn.h"
#include "dispatch.h"
#include "endian-util.h"
#include "macro.h"
#include "backend.h"
#include "lease.h"
#include "log.h"
#include "metrics.h"
#include "parse-util.h"
#include "pool.h"
#include "usage.h"
#include "zero.h"
#include "tenant.h"
#include "uid-limits.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <inttypes.h>
#include <string.h>
#include <unistd.h>


/*
 * A handler answers a request itself (conn_send_reply, then returns 0), or refuses it: it returns
 * refuse(-errno, message), and dispatch_request sends that status and message, once, for every
 * handler (send_refusal; the carving worker's late answers go through the same function). A
 * negative return means something else: close the connection.
 */
#define REFUSED 1

static struct {
	int status;
	char msg[DXP_MAX_ERROR_MESSAGE + 1];
} refusal; /* the loop thread's, like every handler */

__attribute__((format(printf, 2, 3))) static int refuse(int status, const char *fmt, ...)
{
	va_list ap;

	refusal.status = status;
	va_start(ap, fmt);
	vsnprintf(refusal.msg, sizeof(refusal.msg), fmt, ap);
	va_end(ap);
	return REFUSED;
}

/* What a handler returned, with a refusal sent: 0 or a negative errno (close). */
static int send_refusal(struct conn *c, const struct dxp_header *h, int r)
{
	if (r != REFUSED)
		return r;
	return conn_send_error(c, h->type, h->request_id, refusal.status, "%s", refusal.msg);
}

static int handle_hello(struct conn *c, const struct dxp_header *h, const uint8_t *payload)
{
	struct dxp_hello_request req;
	struct dxp_hello_reply reply = { .daemon_pid = (uint32_t)getpid() };
	uint8_t out[DXP_HELLO_REPLY_SIZE];
	uint16_t version;

	if (c->version)
		return refuse(-EPROTO, "HELLO was already negotiated");
	if (dxp_hello_request_decode(payload, h->payload_len, &req) < 0)
		return refuse(-EBADMSG, "malformed HELLO");
	if (dxp_negotiate_version(req.min_version, req.max_version, &version) < 0) {
		log_info("client %" PRIu64 " (pid %d) speaks protocol %u..%u, we speak %u..%u", c->id,
			 (int)c->pid, req.min_version, req.max_version, DXP_PROTOCOL_VERSION_MIN,
			 DXP_PROTOCOL_VERSION_MAX);
		return refuse(-EPROTONOSUPPORT,
			      "client speaks protocol %u..%u, daxpoold %u..%u", req.min_version,
			      req.max_version, DXP_PROTOCOL_VERSION_MIN, DXP_PROTOCOL_VERSION_MAX);
	}
	c->version = version;
	ev_timer_stop(c->daemon->loop, &c->hello_timer);
	reply.version = version;
	strncpy(reply.daemon_version, DAXPOOL_VERSION_STRING, sizeof(reply.daemon_version) - 1);
	dxp_hello_reply_encode(&reply, out);
	return conn_send_reply(c, h->type, h->request_id, 0, out, sizeof(out));
}

static int handle_ping(struct conn *c, const struct dxp_header *h, const uint8_t *payload)
{
	struct dxp_ping ping;
	uint8_t out[DXP_PING_SIZE];

	if (dxp_ping_decode(payload, h->payload_len, &ping) < 0)
		return refuse(-EBADMSG, "malformed PING");
	dxp_ping_encode(&ping, out);
	return conn_send_reply(c, h->type, h->request_id, 0, out, sizeof(out));
}

static int handle_status(struct conn *c, const struct dxp_header *h, const uint8_t *payload)
{
	struct daxpoold *d = c->daemon;
	struct dxp_status_reply reply = {
		.daemon_pid = (uint32_t)getpid(),
		.protocol_version = c->version,
		.uptime_ns = daemon_uptime_ns(d),
		.start_time_unix = (uint64_t)d->start_realtime,
		.clients = d->n_conns,
	};
	uint8_t out[DXP_STATUS_REPLY_SIZE];

	if (h->payload_len != 0)
		return refuse(-EBADMSG, "STATUS takes no payload");
	strncpy(reply.daemon_version, DAXPOOL_VERSION_STRING, sizeof(reply.daemon_version) - 1);
	dxp_status_reply_encode(&reply, out);
	return conn_send_reply(c, h->type, h->request_id, 0, out, sizeof(out));
}


/* ---- slices ------------------------------------------------------------------------------ */

enum access {
	ACCESS_READ = 4,
	ACCESS_WRITE = 2,
};

/* Unix permission bits of the record against the peer: owner, then group, then other. */
static bool may_access(const struct conn *c, const struct pool_record_info *rec, enum access want)
{
	unsigned bits;

	if (c->admin)
		return true;
	if (c->uid == rec->uid)
		bits = (rec->mode >> 6) & 7;
	else if (conn_in_group(c, rec->gid))
		bits = (rec->mode >> 3) & 7;
	else
		bits = rec->mode & 7;
	return (bits & want) == want;
}

static uint32_t slice_properties(const struct daxpoold *d)
{
	uint32_t p = 0;
	enum backend_persistence pers = backend_persistence(d->backend);

	if (backend_supports_map_sync(d->backend))
		p |= DXP_PROP_MAP_SYNC;
	if (pers == BACKEND_PERSIST_CPU_FLUSH || pers == BACKEND_PERSIST_FENCE)
		p |= DXP_PROP_DURABLE | DXP_PROP_DEEP_FLUSH;
	return p;
}

static void slice_describe(const struct daxpoold *d, const struct pool_record_info *rec,
			   struct dxp_slice *out)
{
	*out = (struct dxp_slice){
		.offset = rec->offset,
		.length = rec->length,
		.align = rec->align,
		.device_size = d->pool_size,
		.uid = (uint32_t)rec->uid,
		.gid = (uint32_t)rec->gid,
		.mode = rec->mode,
		.flags = (rec->flags & POOL_REC_ANONYMOUS) ? DXP_SLICE_ANONYMOUS : 0,
		.properties = slice_properties(d),
		.backend = backend_kind(d->backend) == BACKEND_DEVDAX ? 1 : 2,
		.map_offset = rec->offset,
		.isolation = (uint32_t)backend_isolation(d->backend),
	};
	backend_slice_name(d->backend, rec->offset, out->object, sizeof(out->object));
	/* Same limit on both sides (asserted below); *out was zeroed, so the copy ends in a NUL. */
	memcpy(out->name, rec->name, strnlen(rec->name, sizeof(out->name) - 1));
}
_Static_assert(sizeof(((struct dxp_slice *)0)->name) == sizeof(((struct pool_record_info *)0)->name),
	       "slice and record names have the same limit");

/* Hands rec to the client: a handle, a lease hold for its process, the fd and the reply. */
static int grant_slice(struct conn *c, const struct dxp_header *h, const struct pool_record_info *rec,
		       bool writable, bool anonymous)
{
	struct daxpoold *d = c->daemon;
	uint8_t out[DXP_SLICE_FIXED + DXP_NAME_MAX];
	struct conn_slice *sl;
	struct lease *lease;
	struct dxp_slice desc;
	_cleanup_(closep) int fd = -1;
	uint64_t map_offset;
	size_t len;
	int r;

	/* The descriptor reaches this slice and nothing else where the backend can make it so
	 * (isolation "slice"); otherwise it is the device (tenant.c decided who may have it). */
	r = backend_slice_open(d->backend, rec->offset, rec->length, writable, &fd, &map_offset);
	if (r == -ENOENT && !(rec->flags & (POOL_REC_QUARANTINED | POOL_REC_ANONYMOUS))) {
		/* A live slice without its object: a crash between its record and its object, or an
		 * object removed by hand. The record keeps its extent; the object is made anew, and
		 * what the slice held is lost (its contents are zero now). */
		r = backend_slice_create(d->backend, rec->offset, rec->length, rec->align);
		if (r == 0) {
			log_warning("slice \"%s\" had no object; a new one was made and its contents are zero",
				    rec->name);
			r = backend_slice_open(d->backend, rec->offset, rec->length, writable, &fd,
					       &map_offset);
		}
	}
	if (r < 0) {
		log_error_errno(r, "granting record %" PRIu64 ": %s", rec->id, backend_errormsg());
		return r == -ENOENT ? -EIO : r;
	}
	sl = calloc(1, sizeof(*sl));
	if (!sl)
		return -ENOMEM;
	r = lease_grant(d, rec->id, c->pid, &lease);
	if (r < 0) {
		free(sl);
		return r;
	}
	sl->handle = ++c->next_handle;
	sl->record_id = rec->id;
	sl->writable = writable;
	sl->anonymous = anonymous;
	HASH_ADD(hh, c->slices, handle, sizeof(sl->handle), sl);

	slice_describe(d, rec, &desc);
	desc.handle = sl->handle;
	desc.map_offset = map_offset;
	if (writable)
		desc.flags |= DXP_SLICE_WRITABLE;
	len = dxp_slice_encode(&desc, out);
	r = conn_send_reply_fd(c, h->type, h->request_id, out, (uint32_t)len, fd);
	if (r < 0) {
		/* Nothing reached the client: undo the grant (an anonymous slice is then unowned). */
		HASH_DEL(c->slices, sl);
		lease_ungrant(d, lease, c->pid);
		free(sl);
	}
	return r;
}

/* What a grant_slice that failed with r answers: running out of memory or of descriptors (the
 * holder's pidfd) is refused and the connection kept; anything else (a failed send) closes it. */
static int grant_failed(int r)
{
	if (r == -ENOMEM || r == -ESRCH || r == -EMFILE || r == -ENFILE || r == -EIO)
		return refuse(r, "cannot grant the slice: %s", strerror(-r));
	return r;
}

/* 0 when the daemon serves a pool, else the refusal to return. */
static int require_pool(struct conn *c)
{
	return c->daemon->pool ? 0 : refuse(-ENODEV, "daxpoold serves no pool (no backend configured)");
}

/* Undoes an ALLOC that reached nobody: its record (no zeroing needed), its object if one was
 * made (empty: no descriptor was passed), and its charge. */
static void alloc_undo(struct daxpoold *d, uint64_t id, uint64_t offset, uint64_t length, uid_t uid,
		       bool destroy)
{
	int r = pool_free(d->pool, id);

	if (destroy)
		backend_slice_destroy(d->backend, offset, length);
	if (r < 0)
		log_error_errno(r, "undoing allocation of record %" PRIu64 ": %s", id, pool_errormsg());
	usage_sub(d, uid, length);
}

/* -ENOSPC from pool_alloc: says that the pool (or its record table) is full and what is free,
 * so a tenant that finds another one took the pool can tell that from a bad request. */
static int alloc_pool_full(struct conn *c, const struct dxp_header *h, uint64_t align)
{
	const char *msg = pool_errormsg();
	struct pool_stats ps;
	int k = align >= (1ull << 30) ? 2 : align >= (2ull << 20) ? 1 : 0;

	if (strncmp(msg, "pool_alloc: ", 12) == 0)
		msg += 12;
	pool_get_stats(c->daemon->pool, &ps);
	return refuse(-ENOSPC,
		      "the pool is full: %s (%" PRIu64 " bytes free at this alignment, the largest "
		      "%" PRIu64 "; %" PRIu64 " freed slices wait for their holders or zeroing)", msg,
		      ps.free_bytes[k], ps.largest_free[k], ps.records_quarantined);
}

/* The reply to an ALLOC whose object could not be made (r from backend_slice_create). */
static int alloc_create_failed(struct conn *c, const struct dxp_header *h, int r)
{
	if (r == -ENOSPC)
		return refuse(r, "not enough memory for the slice");
	if (r == -ENOMEM || r == -EMFILE || r == -ENFILE)
		return refuse(r, "cannot grant the slice: %s", strerror(-r));
	return refuse(-EIO, "cannot make the slice's memory object");
}

/* The record is persisted and charged; its object is made by the carver's worker, and
 * alloc_object_made answers. The connection's next request waits for that. */
static int alloc_off_loop(struct conn *c, const struct dxp_header *h,
			  const struct pool_record_info *rec, bool anonymous)
{
	struct daxpoold *d = c->daemon;
	struct carve_job *job = calloc(1, sizeof(*job));
	int r = job ? usage_add(d, rec->uid, rec->length) : -ENOMEM;

	if (r < 0) {
		int r2 = pool_free(d->pool, rec->id);

		if (r2 < 0)
			log_error_errno(r2, "undoing allocation of record %" PRIu64 ": %s", rec->id,
					pool_errormsg());
		free(job);
		return refuse(r, "cannot grant the slice: %s", strerror(-r));
	}
	*job = (struct carve_job){ .item.uid = c->uid, .owner = c, .request = *h, .rec = *rec,
				   .anonymous = anonymous, .start_ns = metrics_clock_ns() };
	r = carver_submit(d->carver, job);
	if (r < 0) {
		free(job);
		alloc_undo(d, rec->id, rec->offset, rec->length, rec->uid, false);
		return refuse(r, "cannot grant the slice: %s", strerror(-r));
	}
	c->carving = job; /* no further request is read until it is answered */
	return 0;
}

void dispatch_alloc_dropped(struct daxpoold *d, struct carve_job *job)
{
	struct conn *c = job->owner;

	(void)d;
	if (c)
		c->carving = NULL;
}

void dispatch_alloc_object_made(struct daxpoold *d, struct carve_job *job)
{
	struct conn *c = job->owner;
	const struct pool_record_info *rec = &job->rec;
	int r = job->result;

	if (r == 0 && c) {
		unsigned handles = HASH_COUNT(c->slices), pins = HASH_COUNT(c->pins);

		r = grant_slice(c, &job->request, rec, true, job->anonymous);
		limits_after_request(c, handles, pins, true);
	}
	if (r == 0) {
		log_info("client %" PRIu64 " (pid %d uid %u): ALLOC %s%s%s %" PRIu64 " bytes at %" PRIu64,
			 c->id, (int)c->pid, (unsigned)c->uid, job->anonymous ? "anonymous" : "\"",
			 job->anonymous ? "" : rec->name, job->anonymous ? "" : "\"", rec->length,
			 rec->offset);
	} else {
		/* Nothing reached anyone: the record goes, and its object (empty) with it. */
		alloc_undo(d, rec->id, rec->offset, rec->length, rec->uid, job->result == 0);
	}
	if (!c)
		return; /* the client went while its object was made */
	if (r < 0) {
		if (job->result < 0)
			r = send_refusal(c, &job->request, alloc_create_failed(c, &job->request, job->result));
		else
			r = send_refusal(c, &job->request, grant_failed(r));
	}
	metrics_request(d, job->request.type, c->last_status, job->start_ns);
	if (r < 0) {
		conn_free(c); /* the reply could not be sent */
		return;
	}
	conn_resume(c);
}

static int handle_alloc(struct conn *c, const struct dxp_header *h, const uint8_t *payload)
{
	struct daxpoold *d = c->daemon;
	struct dxp_alloc_request req;
	struct pool_alloc_req preq;
	struct pool_extent ext;
	struct pool_record_info rec;
	bool anonymous;
	const char *why_rule;
	char why[160];
	int r;

	r = require_pool(c);
	if (r)
		return r;
	r = dxp_alloc_request_decode(payload, h->payload_len, &req);
	if (r == -EINVAL)
		return refuse(-EINVAL,
			      "invalid name: 1..%d printable ASCII bytes, no '/', not starting with '.'", DXP_NAME_MAX);
	if (r < 0)
		return refuse(-EBADMSG, "malformed ALLOC");
	anonymous = req.flags & DXP_ALLOC_ANONYMOUS;
	if (dxp_alloc_request_check(&req, &why_rule) < 0)
		return refuse(-EINVAL, "%s", why_rule);
	if (backend_name_is_reserved(req.name))
		return refuse(-EPERM,
			      "names starting with \"%s\" are reserved", BACKEND_RESERVED_NAME_PREFIX);
	preq = (struct pool_alloc_req){
		.size = req.size,
		.align = req.align,
		.name = anonymous ? NULL : req.name,
		.uid = c->uid,
		.gid = c->gid,
		.mode = req.mode ? req.mode : 0600,
		.flags = anonymous ? POOL_ALLOC_ANONYMOUS : 0,
	};
	if (req.owner_uid != DXP_OWNER_CALLER || req.owner_gid != DXP_OWNER_CALLER) {
		if (!c->admin)
			return refuse(-EPERM,
				      "only an administrator may allocate for another owner");
		if (anonymous)
			return refuse(-EINVAL, "an anonymous slice belongs to its connection");
		if (req.owner_uid != DXP_OWNER_CALLER)
			preq.uid = req.owner_uid;
		if (req.owner_gid != DXP_OWNER_CALLER)
			preq.gid = req.owner_gid;
	}
	/* The quota is checked against what the slice will be charged: its size rounded up to its
	 * alignment (and the device's), not the size asked for. */
	uint64_t charged = 0;
	if (!c->admin && pool_alloc_length(d->pool, req.size, req.align, &charged) == 0 &&
	    usage_check(d, preq.uid, charged, why, sizeof(why)) < 0)
		return refuse(-EDQUOT, "%s", why);
	/* Owner isolation: the new slice's owner must be the device's tenant (or become it), and
	 * the caller, who receives the device, too unless it is an administrator. */
	r = tenant_admit_owner(d, preq.uid, c->admin && preq.uid == c->uid, why, sizeof(why));
	if (r == 0)
		r = tenant_admit(d, c->uid, c->admin, why, sizeof(why));
	if (r < 0)
		return refuse(r, "%s", why);

	r = pool_alloc(d->pool, &preq, &ext);
	uint64_t zeroing = r == -ENOSPC && d->zeroer ? zeroer_pending_bytes(d->zeroer) : 0;
	if (zeroing >= req.size) /* req.size > 0: checked above */
		/* Space is on its way back (freed extents are zeroed before reuse): not a full pool.
		 * libdaxpool asks again; the answer is -ENOSPC only when nothing is pending. */
		return refuse(-EAGAIN,
			      "%s; %" PRIu64 " bytes are being zeroed: retry", pool_errormsg(),
			      zeroing);
	if (r == -ENOSPC)
		return alloc_pool_full(c, h, req.align);
	if (r < 0)
		return refuse(r, "%s", pool_errormsg());
	r = pool_get(d->pool, ext.id, &rec);
	if (r == 0 && d->carver)
		return alloc_off_loop(c, h, &rec, anonymous);
	if (r == 0) {
		/* The record is persisted first: a crash before the object exists leaves a record
		 * whose object the restart makes (or reclaims), never an object nobody owns. */
		r = backend_slice_create(d->backend, rec.offset, rec.length, rec.align);
		if (r < 0) {
			int r2;

			log_error_errno(r, "ALLOC of %" PRIu64 " bytes: %s", rec.length, backend_errormsg());
			r2 = pool_free(d->pool, ext.id);
			if (r2 < 0)
				log_error_errno(r2, "undoing allocation of record %" PRIu64 ": %s", ext.id,
						pool_errormsg());
			return alloc_create_failed(c, h, r);
		}
	}
	if (r == 0)
		r = usage_add(d, rec.uid, rec.length);
	if (r == 0)
		r = grant_slice(c, h, &rec, true, anonymous);
	if (r < 0) {
		/* Its object is empty too (a grant that failed passed no descriptor). */
		alloc_undo(d, ext.id, ext.offset, ext.length, preq.uid, true);
		return grant_failed(r);
	}
	log_info("client %" PRIu64 " (pid %d uid %u): ALLOC %s%s%s %" PRIu64 " bytes at %" PRIu64 " (%s)",
		 c->id, (int)c->pid, (unsigned)c->uid, anonymous ? "anonymous" : "\"", anonymous ? "" : req.name,
		 anonymous ? "" : "\"", ext.length, ext.offset, page_size_name(req.align));
	return 0;
}

static int handle_open(struct conn *c, const struct dxp_header *h, const uint8_t *payload)
{
	struct daxpoold *d = c->daemon;
	struct dxp_open_request req;
	struct pool_record_info rec;
	bool write;
	int r;

	r = require_pool(c);
	if (r)
		return r;
	r = dxp_open_request_decode(payload, h->payload_len, &req);
	if (r == -EINVAL)
		return refuse(-EINVAL, "invalid slice name");
	if (r < 0)
		return refuse(-EBADMSG, "malformed OPEN");
	if (req.flags & ~DXP_OPEN_FLAGS_ALL)
		return refuse(-EINVAL, "unknown OPEN flags 0x%x", req.flags);
	write = req.flags & DXP_OPEN_WRITE;
	if (backend_name_is_reserved(req.name) || pool_lookup(d->pool, req.name, &rec) < 0)
		return refuse(-ENOENT, "no slice named \"%s\"", req.name);
	/* A slice the caller may not read is not there for it: the same answer as for a name that
	 * does not exist, so that nothing about it (owner, mode, existence) leaks. */
	if (!may_access(c, &rec, ACCESS_READ))
		return refuse(-ENOENT, "no slice named \"%s\"", req.name);
	if (write && !may_access(c, &rec, ACCESS_READ | ACCESS_WRITE))
		return refuse(-EACCES,
			      "slice \"%s\" is not writable for uid %u", req.name, (unsigned)c->uid);
	char why[160];
	r = tenant_admit(d, c->uid, c->admin, why, sizeof(why));
	if (r < 0)
		return refuse(r, "%s", why);
	/* Its ALLOC has not been answered yet: the object is being made off the loop. */
	if (d->carver && carver_is_making(d->carver, rec.id))
		return refuse(-EAGAIN,
			      "slice \"%s\" is still being made for its ALLOC: try again", req.name);
	r = grant_slice(c, h, &rec, write, false);
	return r < 0 ? grant_failed(r) : r;
}

static struct conn_slice *find_handle(struct conn *c, uint64_t handle)
{
	struct conn_slice *sl;

	HASH_FIND(hh, c->slices, &handle, sizeof(handle), sl);
	return sl;
}

int slice_free_record(struct daxpoold *d, const struct pool_record_info *rec, pid_t unmapped_by)
{
	int r = 0;

	if (rec->flags & POOL_REC_QUARANTINED)
		return -ENOENT;
	if (unmapped_by > 0)
		r = lease_free_by_sole_holder(d, rec, unmapped_by);
	if (r == 0)
		r = lease_free(d, rec->id);
	if (r < 0)
		return r;
	usage_sub(d, rec->uid, rec->length);
	return 0;
}

static int handle_free(struct conn *c, const struct dxp_header *h, const uint8_t *payload)
{
	struct daxpoold *d = c->daemon;
	struct dxp_handle_request req;
	struct pool_record_info rec;
	struct conn_slice *sl;
	int r;

	r = require_pool(c);
	if (r)
		return r;
	if (dxp_handle_request_decode(payload, h->payload_len, &req) < 0)
		return refuse(-EBADMSG, "malformed FREE");
	sl = find_handle(c, req.id);
	if (!sl)
		return refuse(-EBADF, "no slice handle %" PRIu64 " on this connection", req.id);
	if (pool_get(d->pool, sl->record_id, &rec) < 0 || rec.flags & POOL_REC_QUARANTINED)
		return refuse(-ENOENT, "the slice was already freed");
	if (!sl->anonymous && !(sl->writable && (c->uid == rec.uid || c->admin)))
		return refuse(-EACCES,
			      "only the owner (uid %u) or an administrator may free \"%s\", through a writable handle",
			      (unsigned)rec.uid, rec.name);
	if (sl->pins)
		return refuse(-EBUSY, "%u pins declared on this handle: UNPIN first", sl->pins);
	r = slice_free_record(d, &rec, c->pid);
	if (r < 0)
		return refuse(r, "%s", pool_errormsg());
	/* FREE implies CLOSE for the caller (it unmapped first: docs/PROTOCOL.md). */
	lease_ungrant(d, lease_find(d, sl->record_id), c->pid);
	HASH_DEL(c->slices, sl);
	free(sl);
	log_info("client %" PRIu64 " (pid %d uid %u): FREE %s%s%s (record %" PRIu64 ")", c->id, (int)c->pid,
		 (unsigned)c->uid, rec.name[0] ? "\"" : "anonymous", rec.name, rec.name[0] ? "\"" : "", rec.id);
	return conn_send_reply(c, h->type, h->request_id, 0, NULL, 0);
}

static int handle_close(struct conn *c, const struct dxp_header *h, const uint8_t *payload)
{
	struct dxp_handle_request req;
	struct conn_slice *sl;

	if (dxp_handle_request_decode(payload, h->payload_len, &req) < 0)
		return refuse(-EBADMSG, "malformed CLOSE");
	sl = find_handle(c, req.id);
	if (!sl)
		return refuse(-EBADF, "no slice handle %" PRIu64 " on this connection", req.id);
	if (sl->pins)
		return refuse(-EBUSY, "%u pins declared on this handle: UNPIN first", sl->pins);
	if (sl->anonymous) {
		/* Closing an anonymous slice gives it up: nobody else can reach it. */
		struct pool_record_info rec;

		if (pool_get(c->daemon->pool, sl->record_id, &rec) == 0)
			(void)slice_free_record(c->daemon, &rec, c->pid); /* -ENOENT: already freed */
	}
	lease_ungrant(c->daemon, lease_find(c->daemon, sl->record_id), c->pid);
	HASH_DEL(c->slices, sl);
	free(sl);
	return conn_send_reply(c, h->type, h->request_id, 0, NULL, 0);
}

/* A range inside a slice: offset and length relative to the slice, no overflow. */
static int check_range(const struct pool_record_info *rec, const struct dxp_range_request *req)
{
	if (req->length == 0 || req->offset > rec->length || req->length > rec->length - req->offset)
		return -ERANGE;
	return 0;
}

static int handle_pin(struct conn *c, const struct dxp_header *h, const uint8_t *payload)
{
	struct daxpoold *d = c->daemon;
	struct dxp_range_request req;
	struct pool_record_info rec;
	struct dxp_pin_reply reply;
	uint8_t out[DXP_PIN_REPLY_SIZE];
	struct conn_slice *sl;
	struct conn_pin *pin;
	int r;

	if (dxp_range_request_decode(payload, h->payload_len, &req) < 0)
		return refuse(-EBADMSG, "malformed PIN");
	sl = find_handle(c, req.handle);
	if (!sl || pool_get(d->pool, sl->record_id, &rec) < 0)
		return refuse(-EBADF, "no slice handle %" PRIu64, req.handle);
	if (check_range(&rec, &req) < 0)
		return refuse(-ERANGE, "range %" PRIu64 "+%" PRIu64
			      " is outside the slice (%" PRIu64 " bytes)", req.offset, req.length, rec.length);
	pin = calloc(1, sizeof(*pin));
	if (!pin)
		return refuse(-ENOMEM, "out of memory");
	r = lease_pin(d, lease_find(d, sl->record_id), c->pid);
	if (r < 0) {
		free(pin);
		return refuse(r, "cannot record the pin");
	}
	pin->pin_id = ++d->next_pin_id;
	pin->slice = sl;
	sl->pins++;
	HASH_ADD(hh, c->pins, pin_id, sizeof(pin->pin_id), pin);
	reply.pin_id = pin->pin_id;
	dxp_pin_reply_encode(&reply, out);
	return conn_send_reply(c, h->type, h->request_id, 0, out, sizeof(out));
}

static int handle_unpin(struct conn *c, const struct dxp_header *h, const uint8_t *payload)
{
	struct dxp_handle_request req;
	struct conn_pin *pin;

	if (dxp_handle_request_decode(payload, h->payload_len, &req) < 0)
		return refuse(-EBADMSG, "malformed UNPIN");
	HASH_FIND(hh, c->pins, &req.id, sizeof(req.id), pin);
	if (!pin)
		return refuse(-ENOENT, "no pin %" PRIu64 " on this connection", req.id);
	pin->slice->pins--;
	lease_unpin(c->daemon, lease_find(c->daemon, pin->slice->record_id), c->pid);
	HASH_DEL(c->pins, pin);
	free(pin);
	return conn_send_reply(c, h->type, h->request_id, 0, NULL, 0);
}

static int handle_deep_flush(struct conn *c, const struct dxp_header *h, const uint8_t *payload)
{
	struct daxpoold *d = c->daemon;
	struct dxp_range_request req;
	struct pool_record_info rec;
	struct conn_slice *sl;
	int r;

	if (dxp_range_request_decode(payload, h->payload_len, &req) < 0)
		return refuse(-EBADMSG, "malformed DEEP_FLUSH");
	sl = find_handle(c, req.handle);
	if (!sl || pool_get(d->pool, sl->record_id, &rec) < 0)
		return refuse(-EBADF, "no slice handle %" PRIu64, req.handle);
	if (check_range(&rec, &req) < 0)
		return refuse(-ERANGE, "range outside the slice");
	r = backend_deep_flush(d->backend, rec.offset + req.offset, req.length);
	if (r < 0)
		return refuse(r, "deep flush: %s", backend_errormsg());
	return conn_send_reply(c, h->type, h->request_id, 0, NULL, 0);
}

static int handle_stat(struct conn *c, const struct dxp_header *h, const uint8_t *payload)
{
	struct daxpoold *d = c->daemon;
	struct dxp_stat_reply st = {};
	struct backend_badblock_stats bb;
	struct lease_stats ls;
	struct pool_stats ps;
	uint8_t out[DXP_STAT_REPLY_SIZE + DXP_STAT_LIMITS_SIZE + DXP_STAT_LIMIT_DETAIL_SIZE];
	int r = require_pool(c);

	if (r)
		return r;
	if (h->payload_len != 0)
		return refuse(-EBADMSG, "STAT takes no payload");
	pool_get_stats(d->pool, &ps);
	backend_badblock_stats(d->backend, &bb);
	leases_get_stats(d, &ls);
	st.pool_size = ps.pool_size;
	st.data_size = ps.data_size;
	st.device_align = ps.device_align;
	st.allocated_bytes = ps.allocated_bytes;
	for (int i = 0; i < 3; i++) {
		st.free_bytes[i] = ps.free_bytes[i];
		st.largest_free[i] = ps.largest_free[i];
	}
	st.records_used = ps.records_used;
	st.records_anonymous = ps.records_anonymous;
	st.records_quarantined = ps.records_quarantined;
	st.table_capacity = ps.table_capacity;
	st.badblocks = bb.count;
	st.badblock_bytes = bb.bytes;
	st.zeroing_pending_bytes = zeroer_pending_bytes(d->zeroer);
	st.zeroed_bytes_total = zeroer_done_bytes(d->zeroer);
	st.pins = ls.pins;
	st.leases_waiting = ls.leases_waiting;
	st.fragmentation_ppm = (uint32_t)(ps.fragmentation * 1e6);
	st.backend = backend_kind(d->backend) == BACKEND_DEVDAX ? 1 : 2;
	st.isolation = (uint32_t)backend_isolation(d->backend);
	backend_uuid(d->backend, st.uuid);
	limits_stat_fill(d, &st); /* per-uid bounds, appended (uid-limits.c) */
	return conn_send_reply(c, h->type, h->request_id, 0, out, (uint32_t)dxp_stat_reply_encode(&st, out));
}

struct list_walk {
	struct conn *c;
	uint64_t cursor;
	uint32_t max;
	uint32_t count;
	uint64_t next;
	uint8_t *out;
	size_t used, cap;
};

static int list_one(const struct pool_record_info *rec, void *userdata)
{
	struct list_walk *w = userdata;
	struct dxp_slice desc;

	if (rec->id < w->cursor)
		return 0;
	if (w->count == w->max || w->cap - w->used < DXP_SLICE_FIXED + DXP_NAME_MAX) {
		w->next = rec->id;
		return 1;
	}
	/* Quarantined extents are being reclaimed and reserved ones are the daemon's: not slices. */
	if (rec->flags & POOL_REC_QUARANTINED || backend_name_is_reserved(rec->name))
		return 0;
	if (!w->c->admin && rec->uid != w->c->uid && !may_access(w->c, rec, ACCESS_READ))
		return 0;
	slice_describe(w->c->daemon, rec, &desc);
	w->used += dxp_slice_encode(&desc, w->out + w->used);
	w->count++;
	return 0;
}

static int handle_list(struct conn *c, const struct dxp_header *h, const uint8_t *payload)
{
	struct dxp_list_request req;
	struct list_walk w = {};
	_cleanup_(freep) uint8_t *out = NULL;
	int r = require_pool(c);

	if (r)
		return r;
	if (dxp_list_request_decode(payload, h->payload_len, &req) < 0)
		return refuse(-EBADMSG, "malformed LIST");
	out = malloc(DXP_MAX_PAYLOAD);
	if (!out)
		return refuse(-ENOMEM, "out of memory");
	w = (struct list_walk){ .c = c, .cursor = req.cursor, .max = req.max_entries, .out = out,
				.used = DXP_LIST_REPLY_FIXED, .cap = DXP_MAX_PAYLOAD };
	pool_iterate(c->daemon->pool, 0, list_one, &w);
	put_le64(out, w.next);
	put_le32(out + 8, w.count);
	put_le32(out + 12, 0);
	return conn_send_reply(c, h->type, h->request_id, 0, out, (uint32_t)w.used);
}

static int dispatch_one(struct conn *c, const struct dxp_header *h, const uint8_t *payload)
{
	log_debug("client %" PRIu64 ": %s request %u (%u bytes)", c->id, dxp_msg_type_name(h->type),
		  h->request_id, h->payload_len);
	switch (h->type) {
	case DXP_MSG_HELLO:
		return handle_hello(c, h, payload);
	case DXP_MSG_PING:
		return handle_ping(c, h, payload);
	case DXP_MSG_STATUS:
		return handle_status(c, h, payload);
	case DXP_MSG_ALLOC:
		return handle_alloc(c, h, payload);
	case DXP_MSG_OPEN:
		return handle_open(c, h, payload);
	case DXP_MSG_FREE:
		return handle_free(c, h, payload);
	case DXP_MSG_CLOSE:
		return handle_close(c, h, payload);
	case DXP_MSG_PIN:
		return handle_pin(c, h, payload);
	case DXP_MSG_UNPIN:
		return handle_unpin(c, h, payload);
	case DXP_MSG_STAT:
		return handle_stat(c, h, payload);
	case DXP_MSG_LIST:
		return handle_list(c, h, payload);
	case DXP_MSG_DEEP_FLUSH:
		return handle_deep_flush(c, h, payload);
	default:
		return refuse(-EOPNOTSUPP, "unknown request type %u", h->type);
	}
}

static int dispatch_request(struct conn *c, const struct dxp_header *h, const uint8_t *payload)
{
	uint64_t start = metrics_clock_ns();
	int r = send_refusal(c, h, dispatch_one(c, h, payload));

	/* The one metrics hook: type, the status of the reply just sent, and the latency. An ALLOC
	 * answered later (its object made off the loop) is counted when it is answered. */
	if (!c->carving || r < 0)
		metrics_request(c->daemon, h->type, c->last_status, start);
	return r;
}

/* The connection is going. Anonymous slices die with it; the process may still map them, so the
 * lease keeps them quarantined until it exits or closes them. An ALLOC it waits for is undone when
 * its object is made. */
static void dispatch_closing(struct conn *c)
{
	struct conn_slice *sl, *stmp;

	if (c->carving)
		c->carving->owner = NULL;
	HASH_ITER(hh, c->slices, sl, stmp) {
		struct pool_record_info info;
		int r;

		if (sl->anonymous && c->daemon->pool && pool_get(c->daemon->pool, sl->record_id, &info) == 0) {
			r = slice_free_record(c->daemon, &info, 0); /* the process may still map it */
			if (r < 0 && r != -ENOENT)
				log_error_errno(r, "reclaiming anonymous record %" PRIu64 " of client %" PRIu64 ": %m",
						sl->record_id, c->id);
		}
	}
}

const struct conn_handler dispatch_handler = {
	.request = dispatch_request,
	.closing = dispatch_closing,
};
