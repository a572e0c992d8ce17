/* Encoders and decoders of the daxpool wire protocol; see protocol.h and docs/PROTOCOL.md. */
#include "protocol.h"
#include "endian-util.h"

#include <errno.h>
#include <string.h>

const char *dxp_limit_name(unsigned limit)
{
	static const char *const names[DXP_LIMIT_COUNT] = {
		[DXP_LIMIT_MAX_CLIENTS] = "max_clients",
		[DXP_LIMIT_RESERVED_ADMIN] = "reserved_admin_connections",
		[DXP_LIMIT_CONNECTIONS] = "connections_per_uid",
		[DXP_LIMIT_UNAUTHENTICATED] = "unauthenticated_per_uid",
		[DXP_LIMIT_HANDLES] = "handles_per_uid",
		[DXP_LIMIT_HOLDERS] = "holders_per_uid",
		[DXP_LIMIT_PINS] = "pins_per_uid",
		[DXP_LIMIT_CARVES] = "carves_per_uid",
	};

	return limit < DXP_LIMIT_COUNT ? names[limit] : "?";
}

const char *dxp_msg_type_name(uint16_t type)
{
	switch (type & ~DXP_REPLY_BIT) {
	case DXP_MSG_HELLO:
		return "HELLO";
	case DXP_MSG_PING:
		return "PING";
	case DXP_MSG_STATUS:
		return "STATUS";
	case DXP_MSG_ALLOC:
		return "ALLOC";
	case DXP_MSG_OPEN:
		return "OPEN";
	case DXP_MSG_FREE:
		return "FREE";
	case DXP_MSG_CLOSE:
		return "CLOSE";
	case DXP_MSG_PIN:
		return "PIN";
	case DXP_MSG_UNPIN:
		return "UNPIN";
	case DXP_MSG_STAT:
		return "STAT";
	case DXP_MSG_LIST:
		return "LIST";
	case DXP_MSG_DEEP_FLUSH:
		return "DEEP_FLUSH";
	case DXP_MSG_ERROR:
		return "ERROR";
	default:
		return "UNKNOWN";
	}
}

void dxp_header_encode(const struct dxp_header *h, uint8_t *buf)
{
	put_le32(buf + 0, h->magic);
	put_le16(buf + 4, h->version);
	put_le16(buf + 6, h->type);
	put_le32(buf + 8, h->request_id);
	put_le32(buf + 12, h->payload_len);
	put_le32(buf + 16, (uint32_t)h->status);
	put_le32(buf + 20, h->flags);
}

int dxp_header_decode(const uint8_t *buf, size_t len, struct dxp_header *ret)
{
	struct dxp_header h;

	if (!buf || len < DXP_HEADER_SIZE)
		return -EBADMSG;
	h.magic = get_le32(buf + 0);
	h.version = get_le16(buf + 4);
	h.type = get_le16(buf + 6);
	h.request_id = get_le32(buf + 8);
	h.payload_len = get_le32(buf + 12);
	h.status = (int32_t)get_le32(buf + 16);
	h.flags = get_le32(buf + 20);
	if (h.magic != DXP_MAGIC || h.flags != 0)
		return -EBADMSG;
	if (h.payload_len > DXP_MAX_PAYLOAD || h.payload_len != len - DXP_HEADER_SIZE)
		return -EBADMSG;
	/* A status is 0 or a negative errno; anything else is not something we ever send. */
	if (h.status > 0 || h.status < -4095)
		return -EBADMSG;
	*ret = h;
	return 0;
}

size_t dxp_frame_encode(uint8_t *buf, uint16_t version, uint16_t type, uint32_t request_id,
			int32_t status, const void *payload, uint32_t payload_len)
{
	struct dxp_header h = {
		.magic = DXP_MAGIC,
		.version = version,
		.type = type,
		.request_id = request_id,
		.payload_len = payload_len,
		.status = status,
	};

	dxp_header_encode(&h, buf);
	if (payload_len)
		memmove(buf + DXP_HEADER_SIZE, payload, payload_len);
	return DXP_HEADER_SIZE + (size_t)payload_len;
}

size_t dxp_error_payload_encode(const char *msg, uint8_t *buf)
{
	size_t n = msg ? strnlen(msg, DXP_MAX_ERROR_MESSAGE) : 0;

	if (n)
		memcpy(buf, msg, n);
	return n;
}

int dxp_error_payload_decode(const uint8_t *p, size_t len, char *msg)
{
	if (len > DXP_MAX_ERROR_MESSAGE)
		return -EBADMSG;
	for (size_t i = 0; i < len; i++)
		msg[i] = (p[i] >= 0x20 && p[i] < 0x7f) ? (char)p[i] : '?';
	msg[len] = '\0';
	return 0;
}

/* Fixed-size strings on the wire must be NUL-terminated inside their field. */
static int decode_fixed_string(const uint8_t *p, size_t size, char *out)
{
	const uint8_t *nul = memchr(p, 0, size);

	if (!nul)
		return -EBADMSG;
	memcpy(out, p, size);
	return 0;
}

static void encode_fixed_string(const char *s, uint8_t *p, size_t size)
{
	size_t n = strnlen(s, size - 1);

	memset(p, 0, size);
	memcpy(p, s, n);
}

size_t dxp_hello_request_encode(const struct dxp_hello_request *m, uint8_t *buf)
{
	put_le16(buf + 0, m->min_version);
	put_le16(buf + 2, m->max_version);
	put_le32(buf + 4, m->client_pid);
	return DXP_HELLO_REQUEST_SIZE;
}

int dxp_hello_request_decode(const uint8_t *p, size_t len, struct dxp_hello_request *ret)
{
	struct dxp_hello_request m;

	/* HELLO must stay decodable by every version, so its size never changes. */
	if (len != DXP_HELLO_REQUEST_SIZE)
		return -EBADMSG;
	m.min_version = get_le16(p + 0);
	m.max_version = get_le16(p + 2);
	m.client_pid = get_le32(p + 4);
	if (m.min_version == 0 || m.min_version > m.max_version)
		return -EBADMSG;
	*ret = m;
	return 0;
}

size_t dxp_hello_reply_encode(const struct dxp_hello_reply *m, uint8_t *buf)
{
	put_le16(buf + 0, m->version);
	put_le16(buf + 2, 0);
	put_le32(buf + 4, m->daemon_pid);
	encode_fixed_string(m->daemon_version, buf + 8, DXP_VERSION_STRING_SIZE);
	return DXP_HELLO_REPLY_SIZE;
}

int dxp_hello_reply_decode(const uint8_t *p, size_t len, struct dxp_hello_reply *ret)
{
	struct dxp_hello_reply m;

	if (len != DXP_HELLO_REPLY_SIZE)
		return -EBADMSG;
	m.version = get_le16(p + 0);
	m.daemon_pid = get_le32(p + 4);
	if (decode_fixed_string(p + 8, DXP_VERSION_STRING_SIZE, m.daemon_version) < 0)
		return -EBADMSG;
	*ret = m;
	return 0;
}

size_t dxp_ping_encode(const struct dxp_ping *m, uint8_t *buf)
{
	put_le64(buf, m->nonce);
	return DXP_PING_SIZE;
}

int dxp_ping_decode(const uint8_t *p, size_t len, struct dxp_ping *ret)
{
	if (len != DXP_PING_SIZE)
		return -EBADMSG;
	ret->nonce = get_le64(p);
	return 0;
}

size_t dxp_status_reply_encode(const struct dxp_status_reply *m, uint8_t *buf)
{
	put_le32(buf + 0, m->daemon_pid);
	put_le16(buf + 4, m->protocol_version);
	put_le16(buf + 6, 0);
	put_le64(buf + 8, m->uptime_ns);
	put_le64(buf + 16, m->start_time_unix);
	put_le32(buf + 24, m->clients);
	put_le32(buf + 28, 0);
	encode_fixed_string(m->daemon_version, buf + 32, DXP_VERSION_STRING_SIZE);
	return DXP_STATUS_REPLY_SIZE;
}

int dxp_status_reply_decode(const uint8_t *p, size_t len, struct dxp_status_reply *ret)
{
	struct dxp_status_reply m;

	/* Later minor revisions may append fields: accept a longer reply, read what we know. */
	if (len < DXP_STATUS_REPLY_SIZE)
		return -EBADMSG;
	m.daemon_pid = get_le32(p + 0);
	m.protocol_version = get_le16(p + 4);
	m.uptime_ns = get_le64(p + 8);
	m.start_time_unix = get_le64(p + 16);
	m.clients = get_le32(p + 24);
	if (decode_fixed_string(p + 32, DXP_VERSION_STRING_SIZE, m.daemon_version) < 0)
		return -EBADMSG;
	*ret = m;
	return 0;
}

int dxp_negotiate_version(uint16_t peer_min, uint16_t peer_max, uint16_t *ret_version)
{
	uint16_t lo = peer_min > DXP_PROTOCOL_VERSION_MIN ? peer_min : DXP_PROTOCOL_VERSION_MIN;
	uint16_t hi = peer_max < DXP_PROTOCOL_VERSION_MAX ? peer_max : DXP_PROTOCOL_VERSION_MAX;

	if (lo > hi)
		return -EPROTONOSUPPORT;
	*ret_version = hi;
	return 0;
}

int dxp_name_validate(const char *name, size_t len)
{
	if (len == 0 || len > DXP_NAME_MAX || name[0] == '.')
		return -EINVAL;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)name[i];

		if (c < 0x21 || c > 0x7e || c == '/')
			return -EINVAL;
	}
	return 0;
}

/* A name on the wire: u16 length in the fixed part, then the bytes, no NUL. */
static int decode_name(const uint8_t *p, size_t avail, uint16_t name_len, char *out)
{
	if (name_len > DXP_NAME_MAX || name_len != avail)
		return -EBADMSG;
	memcpy(out, p, name_len);
	out[name_len] = '\0';
	if (name_len && dxp_name_validate(out, name_len) < 0)
		return -EINVAL;
	return 0;
}

size_t dxp_alloc_request_encode(const struct dxp_alloc_request *m, uint8_t *buf)
{
	size_t n = strnlen(m->name, DXP_NAME_MAX);

	put_le64(buf + 0, m->size);
	put_le32(buf + 8, m->align);
	put_le32(buf + 12, m->flags);
	put_le32(buf + 16, m->mode);
	put_le32(buf + 20, m->owner_uid);
	put_le32(buf + 24, m->owner_gid);
	put_le16(buf + 28, (uint16_t)n);
	put_le16(buf + 30, 0);
	memcpy(buf + DXP_ALLOC_REQUEST_FIXED, m->name, n);
	return DXP_ALLOC_REQUEST_FIXED + n;
}

int dxp_alloc_request_decode(const uint8_t *p, size_t len, struct dxp_alloc_request *ret)
{
	struct dxp_alloc_request m;

	if (len < DXP_ALLOC_REQUEST_FIXED || get_le16(p + 30) != 0)
		return -EBADMSG;
	m.size = get_le64(p + 0);
	m.align = get_le32(p + 8);
	m.flags = get_le32(p + 12);
	m.mode = get_le32(p + 16);
	m.owner_uid = get_le32(p + 20);
	m.owner_gid = get_le32(p + 24);
	int r = decode_name(p + DXP_ALLOC_REQUEST_FIXED, len - DXP_ALLOC_REQUEST_FIXED, get_le16(p + 28), m.name);
	if (r < 0)
		return r;
	*ret = m;
	return 0;
}

int dxp_alloc_request_check(const struct dxp_alloc_request *m, const char **ret_why)
{
	bool anonymous = m->flags & DXP_ALLOC_ANONYMOUS;
	const char *why = NULL;

	if (m->flags & ~DXP_ALLOC_FLAGS_ALL)
		why = "unknown ALLOC flags";
	else if (m->align != DXP_ALIGN_4K && m->align != DXP_ALIGN_2M && m->align != DXP_ALIGN_1G)
		why = "alignment is not 4K, 2M or 1G";
	else if (m->size == 0)
		why = "size must be positive";
	else if (m->mode > 0777)
		why = "mode has bits beyond 0777";
	else if (anonymous && m->name[0])
		why = "an anonymous slice has no name";
	else if (!anonymous && !m->name[0])
		why = "a persistent slice needs a name (or DAXPOOL_ANONYMOUS)";
	*ret_why = why;
	return why ? -EINVAL : 0;
}

size_t dxp_open_request_encode(const struct dxp_open_request *m, uint8_t *buf)
{
	size_t n = strnlen(m->name, DXP_NAME_MAX);

	put_le32(buf + 0, m->flags);
	put_le16(buf + 4, (uint16_t)n);
	put_le16(buf + 6, 0);
	memcpy(buf + DXP_OPEN_REQUEST_FIXED, m->name, n);
	return DXP_OPEN_REQUEST_FIXED + n;
}

int dxp_open_request_decode(const uint8_t *p, size_t len, struct dxp_open_request *ret)
{
	struct dxp_open_request m;

	if (len < DXP_OPEN_REQUEST_FIXED || get_le16(p + 6) != 0)
		return -EBADMSG;
	m.flags = get_le32(p + 0);
	int r = decode_name(p + DXP_OPEN_REQUEST_FIXED, len - DXP_OPEN_REQUEST_FIXED, get_le16(p + 4), m.name);
	if (r < 0)
		return r;
	if (!m.name[0])
		return -EINVAL;
	*ret = m;
	return 0;
}

size_t dxp_slice_encode(const struct dxp_slice *m, uint8_t *buf)
{
	size_t n = strnlen(m->name, DXP_NAME_MAX);

	put_le64(buf + 0, m->handle);
	put_le64(buf + 8, m->offset);
	put_le64(buf + 16, m->length);
	put_le64(buf + 24, m->align);
	put_le64(buf + 32, m->device_size);
	put_le32(buf + 40, m->uid);
	put_le32(buf + 44, m->gid);
	put_le32(buf + 48, m->mode);
	put_le32(buf + 52, m->flags);
	put_le32(buf + 56, m->properties);
	put_le32(buf + 60, m->backend);
	put_le16(buf + 64, (uint16_t)n);
	put_le16(buf + 66, (uint16_t)m->isolation);
	put_le32(buf + 68, 0);
	put_le64(buf + 72, m->map_offset);
	memset(buf + 80, 0, DXP_OBJECT_MAX + 1);
	memcpy(buf + 80, m->object, strnlen(m->object, DXP_OBJECT_MAX));
	memcpy(buf + DXP_SLICE_FIXED, m->name, n);
	return DXP_SLICE_FIXED + n;
}

int dxp_slice_decode(const uint8_t *p, size_t len, struct dxp_slice *ret, size_t *ret_used)
{
	struct dxp_slice m;
	uint16_t n;

	if (len < DXP_SLICE_FIXED)
		return -EBADMSG;
	n = get_le16(p + 64);
	if (n > DXP_NAME_MAX || len - DXP_SLICE_FIXED < n)
		return -EBADMSG;
	m.handle = get_le64(p + 0);
	m.offset = get_le64(p + 8);
	m.length = get_le64(p + 16);
	m.align = get_le64(p + 24);
	m.device_size = get_le64(p + 32);
	m.uid = get_le32(p + 40);
	m.gid = get_le32(p + 44);
	m.mode = get_le32(p + 48);
	m.flags = get_le32(p + 52);
	m.properties = get_le32(p + 56);
	m.backend = get_le32(p + 60);
	m.isolation = get_le16(p + 66);
	m.map_offset = get_le64(p + 72);
	if (decode_name(p + DXP_SLICE_FIXED, n, n, m.name) < 0)
		return -EBADMSG;
	if (m.isolation < DXP_ISOLATION_SLICE || m.isolation > DXP_ISOLATION_SHARED)
		return -EBADMSG;
	/* The object's name: printable, NUL-padded, at most DXP_OBJECT_MAX bytes. */
	size_t on = strnlen((const char *)p + 80, DXP_OBJECT_MAX + 1);
	if (on > DXP_OBJECT_MAX)
		return -EBADMSG;
	for (size_t i = 0; i < DXP_OBJECT_MAX + 1; i++)
		if (i < on ? (p[80 + i] < 0x21 || p[80 + i] > 0x7e) : p[80 + i] != 0)
			return -EBADMSG;
	memcpy(m.object, p + 80, on);
	m.object[on] = '\0';
	/* A slice must lie inside its device: a client maps exactly this range. */
	if (m.length == 0 || m.offset > m.device_size || m.length > m.device_size - m.offset)
		return -EBADMSG;
	/* The mapping's range in the fd must not wrap. */
	if (m.map_offset > UINT64_MAX - m.length)
		return -EBADMSG;
	*ret = m;
	*ret_used = DXP_SLICE_FIXED + n;
	return 0;
}

size_t dxp_handle_request_encode(const struct dxp_handle_request *m, uint8_t *buf)
{
	put_le64(buf, m->id);
	return DXP_HANDLE_REQUEST_SIZE;
}

int dxp_handle_request_decode(const uint8_t *p, size_t len, struct dxp_handle_request *ret)
{
	if (len != DXP_HANDLE_REQUEST_SIZE)
		return -EBADMSG;
	ret->id = get_le64(p);
	return 0;
}

size_t dxp_range_request_encode(const struct dxp_range_request *m, uint8_t *buf)
{
	put_le64(buf + 0, m->handle);
	put_le64(buf + 8, m->offset);
	put_le64(buf + 16, m->length);
	return DXP_RANGE_REQUEST_SIZE;
}

int dxp_range_request_decode(const uint8_t *p, size_t len, struct dxp_range_request *ret)
{
	if (len != DXP_RANGE_REQUEST_SIZE)
		return -EBADMSG;
	ret->handle = get_le64(p + 0);
	ret->offset = get_le64(p + 8);
	ret->length = get_le64(p + 16);
	return 0;
}

size_t dxp_pin_reply_encode(const struct dxp_pin_reply *m, uint8_t *buf)
{
	put_le64(buf, m->pin_id);
	return DXP_PIN_REPLY_SIZE;
}

int dxp_pin_reply_decode(const uint8_t *p, size_t len, struct dxp_pin_reply *ret)
{
	if (len != DXP_PIN_REPLY_SIZE)
		return -EBADMSG;
	ret->pin_id = get_le64(p);
	return 0;
}

size_t dxp_stat_reply_encode(const struct dxp_stat_reply *m, uint8_t *buf)
{
	const uint64_t fields[] = {
		m->pool_size, m->data_size, m->device_align, m->allocated_bytes,
		m->free_bytes[0], m->free_bytes[1], m->free_bytes[2],
		m->largest_free[0], m->largest_free[1], m->largest_free[2],
		m->records_used, m->records_anonymous, m->records_quarantined, m->table_capacity,
		m->badblocks, m->badblock_bytes, m->zeroing_pending_bytes, m->zeroed_bytes_total,
		m->pins, m->leases_waiting,
	};
	size_t off = 0;

	for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]); i++, off += 8)
		put_le64(buf + off, fields[i]);
	put_le32(buf + off, m->fragmentation_ppm);
	put_le32(buf + off + 4, m->backend);
	memcpy(buf + off + 8, m->uuid, 16);
	put_le32(buf + off + 24, m->isolation);
	put_le32(buf + off + 28, 0);
	off += 32; /* = DXP_STAT_REPLY_SIZE, checked by test_protocol */
	if (m->has_limits) {
		const struct dxp_stat_limits *l = &m->limits;
		const uint32_t u32s[] = {
			l->max_clients, l->reserved_admin, l->connections_per_uid, l->unauthenticated_per_uid,
			l->hello_timeout_ms, l->handles_per_uid, l->holders_per_uid, l->pins_per_uid,
			l->inflight_per_uid, l->requests_per_turn, l->clients, l->unauthenticated, l->uids,
			l->handles, l->conn_pins, l->holders, l->parked, l->throttled, l->busiest_uid,
			l->busiest_uid_connections,
		};
		const uint64_t u64s[] = { l->refused_connections, l->refused_requests, l->hello_timeouts,
					  l->deferred_turns, l->throttled_total };

		for (size_t i = 0; i < sizeof(u32s) / sizeof(u32s[0]); i++, off += 4)
			put_le32(buf + off, u32s[i]);
		for (size_t i = 0; i < sizeof(u64s) / sizeof(u64s[0]); i++, off += 8)
			put_le64(buf + off, u64s[i]);
		if (m->has_limit_detail) {
			put_le32(buf + off, l->carves_per_uid);
			put_le32(buf + off + 4, l->carves_pending);
			off += 8;
			for (size_t i = 0; i < DXP_LIMIT_COUNT; i++, off += 8)
				put_le64(buf + off, l->refused_by[i]);
		}
	}
	return off;
}

int dxp_stat_reply_decode(const uint8_t *p, size_t len, struct dxp_stat_reply *ret)
{
	struct dxp_stat_reply m;
	uint64_t *fields[] = {
		&m.pool_size, &m.data_size, &m.device_align, &m.allocated_bytes,
		&m.free_bytes[0], &m.free_bytes[1], &m.free_bytes[2],
		&m.largest_free[0], &m.largest_free[1], &m.largest_free[2],
		&m.records_used, &m.records_anonymous, &m.records_quarantined, &m.table_capacity,
		&m.badblocks, &m.badblock_bytes, &m.zeroing_pending_bytes, &m.zeroed_bytes_total,
		&m.pins, &m.leases_waiting,
	};
	size_t off = 0;

	if (len < DXP_STAT_REPLY_SIZE) /* may grow at the end */
		return -EBADMSG;
	for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]); i++, off += 8)
		*fields[i] = get_le64(p + off);
	m.fragmentation_ppm = get_le32(p + off);
	m.backend = get_le32(p + off + 4);
	memcpy(m.uuid, p + off + 8, 16);
	m.isolation = get_le32(p + off + 24);
	if (m.isolation < DXP_ISOLATION_SLICE || m.isolation > DXP_ISOLATION_SHARED ||
	    get_le32(p + off + 28) != 0)
		return -EBADMSG;
	off += 32;
	m.has_limits = len >= DXP_STAT_REPLY_SIZE + DXP_STAT_LIMITS_SIZE;
	memset(&m.limits, 0, sizeof(m.limits));
	if (m.has_limits) {
		struct dxp_stat_limits *l = &m.limits;
		uint32_t *u32s[] = {
			&l->max_clients, &l->reserved_admin, &l->connections_per_uid, &l->unauthenticated_per_uid,
			&l->hello_timeout_ms, &l->handles_per_uid, &l->holders_per_uid, &l->pins_per_uid,
			&l->inflight_per_uid, &l->requests_per_turn, &l->clients, &l->unauthenticated, &l->uids,
			&l->handles, &l->conn_pins, &l->holders, &l->parked, &l->throttled, &l->busiest_uid,
			&l->busiest_uid_connections,
		};
		uint64_t *u64s[] = { &l->refused_connections, &l->refused_requests, &l->hello_timeouts,
				     &l->deferred_turns, &l->throttled_total };

		for (size_t i = 0; i < sizeof(u32s) / sizeof(u32s[0]); i++, off += 4)
			*u32s[i] = get_le32(p + off);
		for (size_t i = 0; i < sizeof(u64s) / sizeof(u64s[0]); i++, off += 8)
			*u64s[i] = get_le64(p + off);
	}
	m.has_limit_detail = len >= DXP_STAT_REPLY_SIZE + DXP_STAT_LIMITS_SIZE + DXP_STAT_LIMIT_DETAIL_SIZE;
	if (m.has_limit_detail) {
		struct dxp_stat_limits *l = &m.limits;

		l->carves_per_uid = get_le32(p + off);
		l->carves_pending = get_le32(p + off + 4);
		off += 8;
		for (size_t i = 0; i < DXP_LIMIT_COUNT; i++, off += 8)
			l->refused_by[i] = get_le64(p + off);
	}
	*ret = m;
	return 0;
}

size_t dxp_list_request_encode(const struct dxp_list_request *m, uint8_t *buf)
{
	put_le64(buf + 0, m->cursor);
	put_le32(buf + 8, m->max_entries);
	return DXP_LIST_REQUEST_SIZE;
}

int dxp_list_request_decode(const uint8_t *p, size_t len, struct dxp_list_request *ret)
{
	if (len != DXP_LIST_REQUEST_SIZE)
		return -EBADMSG;
	ret->cursor = get_le64(p + 0);
	ret->max_entries = get_le32(p + 8);
	if (ret->max_entries == 0)
		return -EBADMSG;
	return 0;
}
