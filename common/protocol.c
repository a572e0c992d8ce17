/* Encoders and decoders of the daxpool wire protocol; see protocol.h and docs/PROTOCOL.md. */
#include "protocol.h"
#include "endian-util.h"

#include <errno.h>
#include <string.h>

const char *dxp_msg_type_name(uint16_t type)
{
	switch (type & ~DXP_REPLY_BIT) {
	case DXP_MSG_HELLO:
		return "HELLO";
	case DXP_MSG_PING:
		return "PING";
	case DXP_MSG_STATUS:
		return "STATUS";
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
