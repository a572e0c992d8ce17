/*
 * Fuzz targets of the wire protocol (lib/protocol/protocol.c), built twice from this file:
 *  - fuzz-frame: one input is one SEQPACKET packet as either side receives it. The header is
 *    decoded without trusting any length, then the payload goes to the decoder the daemon
 *    (requests) or libdaxpool (replies) would pick for its type.
 *  - fuzz-decoders (FUZZ_DECODERS): byte 0 picks a message type (bit 7: reply), the rest is the
 *    payload, so the fuzzer spends no time on finding a valid header first.
 * Properties checked beyond "no crash, no sanitizer report":
 *  - an accepted header describes exactly the bytes received (payload_len = size - header);
 *  - anything a decoder accepts re-encodes to bytes that decode to the same value
 *    (decode(encode(decode(x))) == decode(x)), so the two sides agree on every accepted frame.
 */
#include "fuzz.h"
#include "protocol.h"

#include <errno.h>
#include <string.h>

static uint8_t out[DXP_MAX_FRAME];

/* Compares the fields of two decoded structs; padding is not compared (memcmp would see it). */
#define SAME(a, b, field) FUZZ_CHECK((a).field == (b).field, "%s differs after re-encoding", #field)

static void slice_roundtrip(const struct dxp_slice *s)
{
	struct dxp_slice t;
	size_t used = 0, n = dxp_slice_encode(s, out);

	FUZZ_CHECK(dxp_slice_decode(out, n, &t, &used) == 0, "re-encoded slice refused");
	FUZZ_CHECK(used == n, "used %zu of %zu", used, n);
	SAME(*s, t, handle);
	SAME(*s, t, offset);
	SAME(*s, t, length);
	SAME(*s, t, align);
	SAME(*s, t, device_size);
	SAME(*s, t, uid);
	SAME(*s, t, gid);
	SAME(*s, t, mode);
	SAME(*s, t, flags);
	SAME(*s, t, properties);
	SAME(*s, t, backend);
	SAME(*s, t, map_offset);
	SAME(*s, t, isolation);
	FUZZ_CHECK(strcmp(s->object, t.object) == 0, "object differs");
	FUZZ_CHECK(strcmp(s->name, t.name) == 0, "name differs");
}

/* A LIST reply: u64 next_cursor, u32 count, u32 reserved, then count slices back to back. */
static void list_reply(const uint8_t *p, size_t len)
{
	size_t off = DXP_LIST_REPLY_FIXED;

	if (len < DXP_LIST_REPLY_FIXED)
		return;
	uint32_t count = (uint32_t)p[8] | (uint32_t)p[9] << 8 | (uint32_t)p[10] << 16 | (uint32_t)p[11] << 24;
	for (uint32_t i = 0; i < count && off < len; i++) {
		struct dxp_slice s;
		size_t used = 0;

		if (dxp_slice_decode(p + off, len - off, &s, &used) < 0)
			return;
		FUZZ_CHECK(used >= DXP_SLICE_FIXED && used <= len - off, "used %zu of %zu", used, len - off);
		slice_roundtrip(&s);
		off += used;
	}
}

static void request(uint16_t type, const uint8_t *p, size_t len)
{
	switch (type) {
	case DXP_MSG_HELLO: {
		struct dxp_hello_request m, t;
		uint16_t v;

		if (dxp_hello_request_decode(p, len, &m) < 0)
			return;
		FUZZ_CHECK(m.min_version >= 1 && m.min_version <= m.max_version, "bad range accepted");
		if (dxp_negotiate_version(m.min_version, m.max_version, &v) == 0)
			FUZZ_CHECK(v >= m.min_version && v <= m.max_version && v >= DXP_PROTOCOL_VERSION_MIN &&
					   v <= DXP_PROTOCOL_VERSION_MAX, "negotiated %u outside both ranges", v);
		FUZZ_CHECK(dxp_hello_request_decode(out, dxp_hello_request_encode(&m, out), &t) == 0, "hello");
		SAME(m, t, min_version);
		SAME(m, t, max_version);
		SAME(m, t, client_pid);
		break;
	}
	case DXP_MSG_PING: {
		struct dxp_ping m, t;

		if (dxp_ping_decode(p, len, &m) < 0)
			return;
		FUZZ_CHECK(dxp_ping_decode(out, dxp_ping_encode(&m, out), &t) == 0, "ping");
		SAME(m, t, nonce);
		break;
	}
	case DXP_MSG_ALLOC: {
		struct dxp_alloc_request m, t;

		if (dxp_alloc_request_decode(p, len, &m) < 0)
			return;
		FUZZ_CHECK(strlen(m.name) == len - DXP_ALLOC_REQUEST_FIXED, "name length");
		if (m.name[0])
			FUZZ_CHECK(dxp_name_validate(m.name, strlen(m.name)) == 0, "bad name accepted");
		FUZZ_CHECK(dxp_alloc_request_decode(out, dxp_alloc_request_encode(&m, out), &t) == 0, "alloc");
		SAME(m, t, size);
		SAME(m, t, align);
		SAME(m, t, flags);
		SAME(m, t, mode);
		SAME(m, t, owner_uid);
		SAME(m, t, owner_gid);
		FUZZ_CHECK(strcmp(m.name, t.name) == 0, "name differs");
		break;
	}
	case DXP_MSG_OPEN: {
		struct dxp_open_request m, t;

		if (dxp_open_request_decode(p, len, &m) < 0)
			return;
		FUZZ_CHECK(m.name[0] && dxp_name_validate(m.name, strlen(m.name)) == 0, "bad name accepted");
		FUZZ_CHECK(dxp_open_request_decode(out, dxp_open_request_encode(&m, out), &t) == 0, "open");
		SAME(m, t, flags);
		FUZZ_CHECK(strcmp(m.name, t.name) == 0, "name differs");
		break;
	}
	case DXP_MSG_FREE:
	case DXP_MSG_CLOSE:
	case DXP_MSG_UNPIN: {
		struct dxp_handle_request m, t;

		if (dxp_handle_request_decode(p, len, &m) < 0)
			return;
		FUZZ_CHECK(dxp_handle_request_decode(out, dxp_handle_request_encode(&m, out), &t) == 0, "handle");
		SAME(m, t, id);
		break;
	}
	case DXP_MSG_PIN:
	case DXP_MSG_DEEP_FLUSH: {
		struct dxp_range_request m, t;

		if (dxp_range_request_decode(p, len, &m) < 0)
			return;
		FUZZ_CHECK(dxp_range_request_decode(out, dxp_range_request_encode(&m, out), &t) == 0, "range");
		SAME(m, t, handle);
		SAME(m, t, offset);
		SAME(m, t, length);
		break;
	}
	case DXP_MSG_LIST: {
		struct dxp_list_request m, t;

		if (dxp_list_request_decode(p, len, &m) < 0)
			return;
		FUZZ_CHECK(m.max_entries > 0, "empty page accepted");
		FUZZ_CHECK(dxp_list_request_decode(out, dxp_list_request_encode(&m, out), &t) == 0, "list");
		SAME(m, t, cursor);
		SAME(m, t, max_entries);
		break;
	}
	default:
		break; /* STATUS and STAT have no payload; unknown types get an error reply */
	}
}

static void reply(uint16_t type, int32_t status, const uint8_t *p, size_t len)
{
	if (status < 0 || type == DXP_MSG_ERROR) {
		char msg[DXP_MAX_ERROR_MESSAGE + 1];

		if (dxp_error_payload_decode(p, len, msg) < 0)
			return;
		FUZZ_CHECK(strlen(msg) == len, "message length");
		for (size_t i = 0; i < len; i++)
			FUZZ_CHECK(msg[i] >= 0x20 && msg[i] < 0x7f, "unprintable byte 0x%02x passed", (unsigned)(uint8_t)msg[i]);
		return;
	}
	switch (type) {
	case DXP_MSG_HELLO: {
		struct dxp_hello_reply m, t;

		if (dxp_hello_reply_decode(p, len, &m) < 0)
			return;
		FUZZ_CHECK(memchr(m.daemon_version, 0, sizeof(m.daemon_version)), "unterminated version");
		FUZZ_CHECK(dxp_hello_reply_decode(out, dxp_hello_reply_encode(&m, out), &t) == 0, "hello reply");
		SAME(m, t, version);
		SAME(m, t, daemon_pid);
		FUZZ_CHECK(strcmp(m.daemon_version, t.daemon_version) == 0, "version differs");
		break;
	}
	case DXP_MSG_STATUS: {
		struct dxp_status_reply m, t;

		if (dxp_status_reply_decode(p, len, &m) < 0)
			return;
		FUZZ_CHECK(dxp_status_reply_decode(out, dxp_status_reply_encode(&m, out), &t) == 0, "status");
		SAME(m, t, daemon_pid);
		SAME(m, t, protocol_version);
		SAME(m, t, uptime_ns);
		SAME(m, t, start_time_unix);
		SAME(m, t, clients);
		FUZZ_CHECK(strcmp(m.daemon_version, t.daemon_version) == 0, "version differs");
		break;
	}
	case DXP_MSG_ALLOC:
	case DXP_MSG_OPEN: {
		struct dxp_slice s;
		size_t used = 0;

		if (dxp_slice_decode(p, len, &s, &used) < 0)
			return;
		/* The client maps exactly [offset, offset + length): it must lie in the device. */
		FUZZ_CHECK(s.length > 0 && s.offset <= s.device_size && s.length <= s.device_size - s.offset,
			   "slice outside its device accepted");
		/* ... and [map_offset, map_offset + length) of the fd must not wrap. */
		FUZZ_CHECK(s.map_offset <= UINT64_MAX - s.length, "wrapping map offset accepted");
		FUZZ_CHECK(s.isolation >= DXP_ISOLATION_SLICE && s.isolation <= DXP_ISOLATION_SHARED,
			   "unknown isolation accepted");
		slice_roundtrip(&s);
		break;
	}
	case DXP_MSG_PIN: {
		struct dxp_pin_reply m, t;

		if (dxp_pin_reply_decode(p, len, &m) < 0)
			return;
		FUZZ_CHECK(dxp_pin_reply_decode(out, dxp_pin_reply_encode(&m, out), &t) == 0, "pin reply");
		SAME(m, t, pin_id);
		break;
	}
	case DXP_MSG_STAT: {
		struct dxp_stat_reply m, t;

		if (dxp_stat_reply_decode(p, len, &m) < 0)
			return;
		size_t n = dxp_stat_reply_encode(&m, out);
		size_t want = (size_t)DXP_STAT_REPLY_SIZE + (m.has_limits ? DXP_STAT_LIMITS_SIZE : 0) +
			      (m.has_limits && m.has_limit_detail ? DXP_STAT_LIMIT_DETAIL_SIZE : 0);

		FUZZ_CHECK(n == want, "stat size %zu, not %zu", n, want);
		FUZZ_CHECK(dxp_stat_reply_decode(out, n, &t) == 0, "stat");
		FUZZ_CHECK(memcmp(out, p, n) == 0, "stat reply re-encodes differently");
		break;
	}
	case DXP_MSG_LIST:
		list_reply(p, len);
		break;
	default:
		break;
	}
}

/* Each decoder reads a buffer of exactly its length, so ASan reports any read past the end. */
static void decode_payload(uint16_t type, int32_t status, const uint8_t *data, size_t len)
{
	uint8_t *payload = malloc(len ? len : 1);

	FUZZ_CHECK(payload != NULL, "out of memory");
	memcpy(payload, data, len);
	if (type & DXP_REPLY_BIT)
		reply(type & ~DXP_REPLY_BIT, status, payload, len);
	else
		request(type, payload, len);
	free(payload);
}

#ifdef FUZZ_DECODERS
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const uint16_t types[] = {
		DXP_MSG_HELLO, DXP_MSG_PING, DXP_MSG_STATUS, DXP_MSG_ALLOC, DXP_MSG_OPEN,
		DXP_MSG_FREE, DXP_MSG_CLOSE, DXP_MSG_PIN, DXP_MSG_UNPIN, DXP_MSG_STAT,
		DXP_MSG_LIST, DXP_MSG_DEEP_FLUSH, DXP_MSG_ERROR,
	};
	uint16_t type;

	if (size < 1 || size - 1 > DXP_MAX_PAYLOAD)
		return 0;
	type = types[(data[0] & 0x7f) % (sizeof(types) / sizeof(types[0]))];
	if (data[0] & 0x80)
		type |= DXP_REPLY_BIT;
	decode_payload(type, 0, data + 1, size - 1);
	/* Names are validated on their own too: they end up in logs, tables and file names. */
	if (size - 1 <= DXP_NAME_MAX + 1 && dxp_name_validate((const char *)data + 1, size - 1) == 0)
		for (size_t i = 1; i < size; i++)
			FUZZ_CHECK(data[i] > 0x20 && data[i] < 0x7f && data[i] != '/', "name byte 0x%02x", data[i]);
	return 0;
}
#else
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct dxp_header h, t;
	int r = dxp_header_decode(data, size, &h);

	if (r < 0) {
		FUZZ_CHECK(r == -EBADMSG, "header decode returned %d", r);
		return 0;
	}
	FUZZ_CHECK(size >= DXP_HEADER_SIZE && h.payload_len == size - DXP_HEADER_SIZE &&
			   h.payload_len <= DXP_MAX_PAYLOAD, "header accepted with a wrong length");
	FUZZ_CHECK(h.status <= 0 && h.status >= -4095, "status %d accepted", h.status);
	FUZZ_CHECK(dxp_msg_type_name(h.type) != NULL, "no type name");

	/* Re-encoding the whole frame gives back the very same bytes. */
	size_t n = dxp_frame_encode(out, h.version, h.type, h.request_id, h.status, data + DXP_HEADER_SIZE,
				    h.payload_len);
	FUZZ_CHECK(n == size && memcmp(out, data, size) == 0, "frame re-encodes differently");
	FUZZ_CHECK(dxp_header_decode(out, n, &t) == 0 && t.type == h.type && t.request_id == h.request_id,
		   "re-encoded header refused");

	decode_payload(h.type, h.status, data + DXP_HEADER_SIZE, h.payload_len);
	return 0;
}
#endif
