/* Slices: ALLOC, OPEN, CLOSE, FREE, pins, deep flush, STAT and LIST. */
#include "client.h"
#include "endian-util.h"

#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static int check_name(const char *name)
{
	if (dxp_name_validate(name, strlen(name)) < 0)
		return dp_error(-EINVAL, "invalid slice name \"%.64s\": 1..%d printable ASCII bytes, no '/', "
				"not starting with '.'", name, DXP_NAME_MAX);
	return 0;
}

/* The reply of ALLOC/OPEN: a slice description plus the fd. */
static int receive_slice(struct daxpool *dp, uint16_t type, const uint8_t *payload, size_t len,
			 struct daxpool_slice **ret)
{
	_cleanup_(closep) int fd = -1;
	struct daxpool_slice *s;
	size_t rlen, used;
	int r;

	r = dp_request_fd(dp, type, payload, (uint32_t)len, &rlen, &fd);
	if (r < 0)
		return r;
	s = calloc(1, sizeof(*s));
	if (!s)
		return dp_error(-ENOMEM, "out of memory");
	if (dxp_slice_decode(dp->buf + DXP_HEADER_SIZE, rlen, &s->desc, &used) < 0 || used != rlen) {
		free(s);
		return dp_error(-DAXPOOL_E_PROTOCOL, "malformed %s reply", dxp_msg_type_name(type));
	}
	s->fd = TAKE_FD(fd);
	dp_slice_map_init(s);
	*ret = s;
	return 0;
}

static int do_alloc(struct daxpool *dp, const char *name, uint64_t size, uint64_t align, unsigned mode,
		    unsigned flags, uint32_t uid, uint32_t gid, struct daxpool_slice **ret)
{
	struct dxp_alloc_request req = { .size = size, .align = (uint32_t)align, .mode = mode,
					 .owner_uid = uid, .owner_gid = gid };
	uint8_t payload[DXP_ALLOC_REQUEST_FIXED + DXP_NAME_MAX];
	const char *why;
	size_t len;
	int r;

	dp_error_clear();
	if (!dp || !ret)
		return dp_error(-EINVAL, "daxpool_alloc: %s is NULL", dp ? "ret" : "connection");
	if (flags & ~DAXPOOL_ANONYMOUS)
		return dp_error(-EINVAL, "daxpool_alloc: unknown flags 0x%x", flags);
	if (align > UINT32_MAX)
		return dp_error(-EINVAL, "alignment is not 4K, 2M or 1G");
	req.flags = (flags & DAXPOOL_ANONYMOUS) ? DXP_ALLOC_ANONYMOUS : 0;
	if (name)
		snprintf(req.name, sizeof(req.name), "%s", name[0] ? name : "?");
	/* The daemon's rules, checked here first for a message that names the call. */
	if (dxp_alloc_request_check(&req, &why) < 0)
		return dp_error(-EINVAL, "daxpool_alloc: %s", why);
	if (name) {
		r = check_name(name);
		if (r < 0)
			return r;
	}
	len = dxp_alloc_request_encode(&req, payload);
	/* -EAGAIN from the daemon: the space exists but is still being zeroed (freed extents are
	 * zeroed in the background before reuse). Ask again, backing off from 50 µs to 1 ms, for at
	 * most DAXPOOL_ZEROING_WAIT_MS; the connection is not held in between, so other threads
	 * sharing it are served. */
	struct timespec start, now;
	unsigned delay_us = 50;

	clock_gettime(CLOCK_MONOTONIC, &start);
	for (;;) {
		pthread_mutex_lock(&dp->lock);
		r = receive_slice(dp, DXP_MSG_ALLOC, payload, len, ret);
		pthread_mutex_unlock(&dp->lock);
		if (r != -EAGAIN)
			return r;
		clock_gettime(CLOCK_MONOTONIC, &now);
		if ((now.tv_sec - start.tv_sec) * 1000 + (now.tv_nsec - start.tv_nsec) / 1000000 >=
		    DAXPOOL_ZEROING_WAIT_MS)
			return dp_error(-ENOSPC, "no free space yet: freed extents were still being zeroed "
					"after %d ms", DAXPOOL_ZEROING_WAIT_MS);
		usleep(delay_us);
		delay_us = delay_us * 2 > 1000 ? 1000 : delay_us * 2;
	}
}

DAXPOOL_EXPORT int daxpool_alloc(struct daxpool *dp, const char *name, uint64_t size, uint64_t align,
				 unsigned mode, unsigned flags, struct daxpool_slice **ret)
{
	return do_alloc(dp, name, size, align, mode, flags, DXP_OWNER_CALLER, DXP_OWNER_CALLER, ret);
}

DAXPOOL_EXPORT int daxpool_alloc_owned(struct daxpool *dp, const char *name, uint64_t size,
				       uint64_t align, unsigned mode, uid_t uid, gid_t gid,
				       struct daxpool_slice **ret)
{
	return do_alloc(dp, name, size, align, mode, 0, (uint32_t)uid, (uint32_t)gid, ret);
}

DAXPOOL_EXPORT int daxpool_open(struct daxpool *dp, const char *name, unsigned flags,
				struct daxpool_slice **ret)
{
	struct dxp_open_request req = { .flags = (flags & DAXPOOL_OPEN_RDWR) ? DXP_OPEN_WRITE : 0 };
	uint8_t payload[DXP_OPEN_REQUEST_FIXED + DXP_NAME_MAX];
	size_t len;
	int r;

	dp_error_clear();
	if (!dp || !ret || !name)
		return dp_error(-EINVAL, "daxpool_open: NULL argument");
	if (flags & ~DAXPOOL_OPEN_RDWR)
		return dp_error(-EINVAL, "daxpool_open: unknown flags 0x%x", flags);
	r = check_name(name);
	if (r < 0)
		return r;
	snprintf(req.name, sizeof(req.name), "%s", name);
	len = dxp_open_request_encode(&req, payload);
	pthread_mutex_lock(&dp->lock);
	r = receive_slice(dp, DXP_MSG_OPEN, payload, len, ret);
	pthread_mutex_unlock(&dp->lock);
	return r;
}

static int handle_request(struct daxpool *dp, uint16_t type, uint64_t id)
{
	struct dxp_handle_request req = { .id = id };
	uint8_t payload[DXP_HANDLE_REQUEST_SIZE];
	size_t len;
	int r;

	dxp_handle_request_encode(&req, payload);
	pthread_mutex_lock(&dp->lock);
	r = dp_request(dp, type, payload, sizeof(payload), &len);
	pthread_mutex_unlock(&dp->lock);
	return r;
}

static void slice_release(struct daxpool_slice **slice)
{
	dp_slice_unmap_for_end(*slice); /* normally done already; no pins can remain here */
	if ((*slice)->fd >= 0)
		close((*slice)->fd);
	dp_slice_map_destroy(*slice);
	free(*slice);
	*slice = NULL;
}

static int slice_end(struct daxpool *dp, struct daxpool_slice **slice, uint16_t type)
{
	int r;

	dp_error_clear();
	if (!dp || !slice || !*slice)
		return dp_error(-EINVAL, "NULL argument");
	if (type == DXP_MSG_FREE && !daxpool_slice_is_writable(*slice))
		return dp_error(-EACCES, "daxpool_free: the slice was opened read-only");
	/* Unmap before the daemon hears of it: once CLOSE/FREE is answered the extent may be
	 * zeroed and handed out, and this process must not map it then. Pins made by
	 * daxpool_pin_longterm keep the mapping (and everything) in place: -EBUSY. */
	r = dp_slice_unmap_for_end(*slice);
	if (r < 0)
		return r;
	r = handle_request(dp, type, (*slice)->desc.handle);
	/* Pins and permissions leave the slice usable; other failures (a dead connection) leave
	 * nothing to keep: the daemon dropped the handle with the connection. */
	if (r == -EBUSY || r == -EACCES || r == -EINVAL)
		return r;
	slice_release(slice);
	return r;
}

DAXPOOL_EXPORT int daxpool_close(struct daxpool *dp, struct daxpool_slice **slice)
{
	return slice_end(dp, slice, DXP_MSG_CLOSE);
}

DAXPOOL_EXPORT int daxpool_free(struct daxpool *dp, struct daxpool_slice **slice)
{
	return slice_end(dp, slice, DXP_MSG_FREE);
}

DAXPOOL_EXPORT int daxpool_slice_get_fd(const struct daxpool_slice *s)
{
	return s ? s->fd : -EINVAL;
}
DAXPOOL_EXPORT uint64_t daxpool_slice_get_offset(const struct daxpool_slice *s)
{
	return s ? s->desc.map_offset : 0;
}
DAXPOOL_EXPORT uint64_t daxpool_slice_get_pool_offset(const struct daxpool_slice *s)
{
	return s ? s->desc.offset : 0;
}
DAXPOOL_EXPORT const char *daxpool_slice_get_object(const struct daxpool_slice *s)
{
	return s ? s->desc.object : NULL;
}
DAXPOOL_EXPORT int daxpool_slice_get_isolation(const struct daxpool_slice *s)
{
	return s ? (int)s->desc.isolation : -EINVAL;
}
DAXPOOL_EXPORT uint64_t daxpool_slice_get_length(const struct daxpool_slice *s)
{
	return s ? s->desc.length : 0;
}
DAXPOOL_EXPORT uint64_t daxpool_slice_get_alignment(const struct daxpool_slice *s)
{
	return s ? s->desc.align : 0;
}
DAXPOOL_EXPORT const char *daxpool_slice_get_name(const struct daxpool_slice *s)
{
	return s ? s->desc.name : NULL;
}
DAXPOOL_EXPORT uid_t daxpool_slice_get_uid(const struct daxpool_slice *s)
{
	return s ? (uid_t)s->desc.uid : (uid_t)-1;
}
DAXPOOL_EXPORT gid_t daxpool_slice_get_gid(const struct daxpool_slice *s)
{
	return s ? (gid_t)s->desc.gid : (gid_t)-1;
}
DAXPOOL_EXPORT unsigned daxpool_slice_get_mode(const struct daxpool_slice *s)
{
	return s ? s->desc.mode : 0;
}
DAXPOOL_EXPORT int daxpool_slice_is_writable(const struct daxpool_slice *s)
{
	return s && (s->desc.flags & DXP_SLICE_WRITABLE);
}
DAXPOOL_EXPORT int daxpool_slice_is_anonymous(const struct daxpool_slice *s)
{
	return s && (s->desc.flags & DXP_SLICE_ANONYMOUS);
}
DAXPOOL_EXPORT int daxpool_slice_supports_map_sync(const struct daxpool_slice *s)
{
	return s && (s->desc.properties & DXP_PROP_MAP_SYNC);
}
DAXPOOL_EXPORT int daxpool_slice_is_durable(const struct daxpool_slice *s)
{
	return s && (s->desc.properties & DXP_PROP_DURABLE);
}

static int range_request(struct daxpool *dp, uint16_t type, const struct daxpool_slice *s,
			 uint64_t offset, uint64_t length, size_t *ret_len)
{
	struct dxp_range_request req = { .handle = s->desc.handle, .offset = offset, .length = length };
	uint8_t payload[DXP_RANGE_REQUEST_SIZE];

	dxp_range_request_encode(&req, payload);
	return dp_request(dp, type, payload, sizeof(payload), ret_len);
}

DAXPOOL_EXPORT int daxpool_pin_declare(struct daxpool *dp, const struct daxpool_slice *s,
				       uint64_t offset, uint64_t length, uint64_t *ret_pin)
{
	struct dxp_pin_reply reply;
	size_t len;
	int r;

	dp_error_clear();
	if (!dp || !s || !ret_pin)
		return dp_error(-EINVAL, "daxpool_pin_declare: NULL argument");
	pthread_mutex_lock(&dp->lock);
	r = range_request(dp, DXP_MSG_PIN, s, offset, length, &len);
	if (r >= 0 && dxp_pin_reply_decode(dp->buf + DXP_HEADER_SIZE, len, &reply) < 0)
		r = dp_error(-DAXPOOL_E_PROTOCOL, "malformed PIN reply");
	pthread_mutex_unlock(&dp->lock);
	if (r >= 0)
		*ret_pin = reply.pin_id;
	return r;
}

DAXPOOL_EXPORT int daxpool_pin_undeclare(struct daxpool *dp, uint64_t pin)
{
	dp_error_clear();
	if (!dp)
		return dp_error(-EINVAL, "daxpool_pin_undeclare: connection is NULL");
	return handle_request(dp, DXP_MSG_UNPIN, pin);
}

DAXPOOL_EXPORT int daxpool_deep_flush(struct daxpool *dp, const struct daxpool_slice *s,
				      uint64_t offset, uint64_t length)
{
	size_t len;
	int r;

	dp_error_clear();
	if (!dp || !s)
		return dp_error(-EINVAL, "daxpool_deep_flush: NULL argument");
	pthread_mutex_lock(&dp->lock);
	r = range_request(dp, DXP_MSG_DEEP_FLUSH, s, offset, length, &len);
	pthread_mutex_unlock(&dp->lock);
	return r;
}

DAXPOOL_EXPORT int daxpool_stat(struct daxpool *dp, struct daxpool_stats *ret, size_t size)
{
	struct dxp_stat_reply st;
	struct daxpool_stats out = {};
	size_t len;
	int r;

	dp_error_clear();
	if (!dp || !ret || size < offsetof(struct daxpool_stats, uuid) + sizeof(out.uuid))
		return dp_error(-EINVAL, "daxpool_stat: NULL argument or size too small");
	pthread_mutex_lock(&dp->lock);
	r = dp_request(dp, DXP_MSG_STAT, NULL, 0, &len);
	if (r >= 0 && dxp_stat_reply_decode(dp->buf + DXP_HEADER_SIZE, len, &st) < 0)
		r = dp_error(-DAXPOOL_E_PROTOCOL, "malformed STAT reply");
	pthread_mutex_unlock(&dp->lock);
	if (r < 0)
		return r;
	out.pool_size = st.pool_size;
	out.data_size = st.data_size;
	out.device_align = st.device_align;
	out.allocated_bytes = st.allocated_bytes;
	for (int i = 0; i < 3; i++) {
		out.free_bytes[i] = st.free_bytes[i];
		out.largest_free[i] = st.largest_free[i];
	}
	out.slices = st.records_used;
	out.anonymous_slices = st.records_anonymous;
	out.quarantined = st.records_quarantined;
	out.table_capacity = st.table_capacity;
	out.badblocks = st.badblocks;
	out.badblock_bytes = st.badblock_bytes;
	out.zeroing_pending_bytes = st.zeroing_pending_bytes;
	out.zeroed_bytes_total = st.zeroed_bytes_total;
	out.pins = st.pins;
	out.leases_waiting = st.leases_waiting;
	out.fragmentation = st.fragmentation_ppm / 1e6;
	out.backend = st.backend;
	memcpy(out.uuid, st.uuid, sizeof(out.uuid));
	out.isolation = st.isolation;
	if (st.has_limits) {
		const struct dxp_stat_limits *l = &st.limits;

		out.has_limits = 1;
		out.max_clients = l->max_clients;
		out.reserved_admin_connections = l->reserved_admin;
		out.connections_per_uid = l->connections_per_uid;
		out.unauthenticated_per_uid = l->unauthenticated_per_uid;
		out.hello_timeout_ms = l->hello_timeout_ms;
		out.handles_per_uid = l->handles_per_uid;
		out.holders_per_uid = l->holders_per_uid;
		out.pins_per_uid = l->pins_per_uid;
		out.inflight_per_uid = l->inflight_per_uid;
		out.requests_per_turn = l->requests_per_turn;
		out.clients = l->clients;
		out.unauthenticated_clients = l->unauthenticated;
		out.client_uids = l->uids;
		out.handles = l->handles;
		out.declared_pins = l->conn_pins;
		out.holders = l->holders;
		out.parked_replies = l->parked;
		out.throttled_connections = l->throttled;
		out.busiest_uid = (uid_t)l->busiest_uid;
		out.busiest_uid_connections = l->busiest_uid_connections;
		out.refused_connections = l->refused_connections;
		out.refused_requests = l->refused_requests;
		out.hello_timeouts = l->hello_timeouts;
		out.deferred_turns = l->deferred_turns;
		out.throttled_total = l->throttled_total;
	}
	if (st.has_limits && st.has_limit_detail) {
		const struct dxp_stat_limits *l = &st.limits;

		out.has_limit_detail = 1;
		out.carves_per_uid = l->carves_per_uid;
		out.carves_pending = l->carves_pending;
		out.refused_max_clients = l->refused_by[DXP_LIMIT_MAX_CLIENTS];
		out.refused_reserved_admin = l->refused_by[DXP_LIMIT_RESERVED_ADMIN];
		out.refused_connections_per_uid = l->refused_by[DXP_LIMIT_CONNECTIONS];
		out.refused_unauthenticated_per_uid = l->refused_by[DXP_LIMIT_UNAUTHENTICATED];
		out.refused_handles_per_uid = l->refused_by[DXP_LIMIT_HANDLES];
		out.refused_holders_per_uid = l->refused_by[DXP_LIMIT_HOLDERS];
		out.refused_pins_per_uid = l->refused_by[DXP_LIMIT_PINS];
		out.refused_carves_per_uid = l->refused_by[DXP_LIMIT_CARVES];
	}
	memcpy(ret, &out, MIN(size, sizeof(out)));
	return 0;
}

DAXPOOL_EXPORT int daxpool_list(struct daxpool *dp,
				int (*fn)(const struct daxpool_slice_info *info, void *userdata),
				void *userdata)
{
	struct dxp_list_request req = { .cursor = 0, .max_entries = 256 };
	uint8_t payload[DXP_LIST_REQUEST_SIZE];
	_cleanup_(freep) uint8_t *copy = NULL;

	dp_error_clear();
	if (!dp || !fn)
		return dp_error(-EINVAL, "daxpool_list: NULL argument");
	copy = malloc(DXP_MAX_PAYLOAD);
	if (!copy)
		return dp_error(-ENOMEM, "out of memory");
	do {
		size_t len, off = DXP_LIST_REPLY_FIXED;
		uint32_t count;
		int r;

		dxp_list_request_encode(&req, payload);
		pthread_mutex_lock(&dp->lock);
		r = dp_request(dp, DXP_MSG_LIST, payload, sizeof(payload), &len);
		if (r >= 0)
			memcpy(copy, dp->buf + DXP_HEADER_SIZE, len);
		pthread_mutex_unlock(&dp->lock);
		if (r < 0)
			return r;
		if (len < DXP_LIST_REPLY_FIXED)
			return dp_error(-DAXPOOL_E_PROTOCOL, "malformed LIST reply");
		uint64_t next = get_le64(copy);
		count = get_le32(copy + 8);
		if (next && next <= req.cursor)
			return dp_error(-DAXPOOL_E_PROTOCOL, "LIST cursor went backwards");
		/* The callback runs without the lock, so it may call the library itself. */
		for (uint32_t i = 0; i < count; i++) {
			struct dxp_slice d;
			struct daxpool_slice_info info = {};
			size_t used;

			if (dxp_slice_decode(copy + off, len - off, &d, &used) < 0)
				return dp_error(-DAXPOOL_E_PROTOCOL, "malformed LIST entry");
			off += used;
			snprintf(info.name, sizeof(info.name), "%s", d.name);
			info.offset = d.offset;
			info.length = d.length;
			info.align = d.align;
			info.uid = (uid_t)d.uid;
			info.gid = (gid_t)d.gid;
			info.mode = d.mode;
			info.anonymous = !!(d.flags & DXP_SLICE_ANONYMOUS);
			snprintf(info.object, sizeof(info.object), "%s", d.object);
			info.isolation = (int)d.isolation;
			r = fn(&info, userdata);
			if (r)
				return r;
		}
		if (off != len)
			return dp_error(-DAXPOOL_E_PROTOCOL, "trailing bytes in LIST reply");
		req.cursor = next;
	} while (req.cursor);
	return 0;
}
