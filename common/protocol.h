/*
 * The daxpool wire protocol: frame layout and the encoders/decoders of every message.
 *
 * Frames travel over a SOCK_SEQPACKET Unix socket, one frame per packet, so the kernel keeps
 * message boundaries. Every decoder takes (buffer, length) from the peer and trusts nothing in it:
 * it returns 0 and fills a struct, or a negative errno (-EBADMSG for a malformed frame,
 * -EPROTONOSUPPORT for a version it cannot speak). docs/PROTOCOL.md is the normative description;
 * tests/unit/test_protocol.c checks the two agree.
 */
#pragma once

#include <stddef.h>
#include <stdint.h>

#define DXP_MAGIC 0x4c505844u /* "DXPL" little-endian */
#define DXP_PROTOCOL_VERSION_MIN 1
#define DXP_PROTOCOL_VERSION_MAX 1
#define DXP_HEADER_SIZE 24
#define DXP_MAX_PAYLOAD 65536
#define DXP_MAX_FRAME (DXP_HEADER_SIZE + DXP_MAX_PAYLOAD)
#define DXP_MAX_ERROR_MESSAGE 256
#define DXP_VERSION_STRING_SIZE 32

/* A reply carries the request's type with this bit set. */
#define DXP_REPLY_BIT 0x8000u

enum dxp_msg_type {
	DXP_MSG_HELLO = 1,
	DXP_MSG_PING = 2,
	DXP_MSG_STATUS = 3,
	/* Sent by the daemon for a frame it could not attribute to a request type. */
	DXP_MSG_ERROR = 0x7fff,
};

struct dxp_header {
	uint32_t magic;
	uint16_t version;
	uint16_t type;
	uint32_t request_id;
	uint32_t payload_len;
	int32_t status; /* replies: 0 or -errno; requests: 0 */
	uint32_t flags; /* reserved, 0 */
};

struct dxp_hello_request {
	uint16_t min_version;
	uint16_t max_version;
	uint32_t client_pid; /* informational; the daemon trusts SO_PEERCRED, not this */
};
#define DXP_HELLO_REQUEST_SIZE 8

struct dxp_hello_reply {
	uint16_t version;
	uint32_t daemon_pid;
	char daemon_version[DXP_VERSION_STRING_SIZE]; /* NUL-terminated */
};
#define DXP_HELLO_REPLY_SIZE 40

struct dxp_ping {
	uint64_t nonce;
};
#define DXP_PING_SIZE 8

struct dxp_status_reply {
	uint32_t daemon_pid;
	uint16_t protocol_version;
	uint64_t uptime_ns;
	uint64_t start_time_unix; /* seconds since the epoch */
	uint32_t clients;
	char daemon_version[DXP_VERSION_STRING_SIZE];
};
#define DXP_STATUS_REPLY_SIZE 64

const char *dxp_msg_type_name(uint16_t type);

/* Header: encode writes DXP_HEADER_SIZE bytes. decode checks magic, reserved fields and that
 * payload_len equals len - DXP_HEADER_SIZE; it does not judge the version (callers do). */
void dxp_header_encode(const struct dxp_header *h, uint8_t *buf);
int dxp_header_decode(const uint8_t *buf, size_t len, struct dxp_header *ret);

/* Whole frames: header + payload into buf of at least DXP_HEADER_SIZE + payload_len bytes.
 * Returns the frame length. */
size_t dxp_frame_encode(uint8_t *buf, uint16_t version, uint16_t type, uint32_t request_id,
			int32_t status, const void *payload, uint32_t payload_len);

/* An error reply's payload is a message of 0..DXP_MAX_ERROR_MESSAGE bytes, not NUL-terminated on
 * the wire. decode copies it NUL-terminated into msg (size >= DXP_MAX_ERROR_MESSAGE + 1) after
 * replacing non-printable bytes, so a hostile peer cannot inject terminal escapes into logs. */
size_t dxp_error_payload_encode(const char *msg, uint8_t *buf);
int dxp_error_payload_decode(const uint8_t *p, size_t len, char *msg);

size_t dxp_hello_request_encode(const struct dxp_hello_request *m, uint8_t *buf);
int dxp_hello_request_decode(const uint8_t *p, size_t len, struct dxp_hello_request *ret);
size_t dxp_hello_reply_encode(const struct dxp_hello_reply *m, uint8_t *buf);
int dxp_hello_reply_decode(const uint8_t *p, size_t len, struct dxp_hello_reply *ret);
size_t dxp_ping_encode(const struct dxp_ping *m, uint8_t *buf);
int dxp_ping_decode(const uint8_t *p, size_t len, struct dxp_ping *ret);
size_t dxp_status_reply_encode(const struct dxp_status_reply *m, uint8_t *buf);
int dxp_status_reply_decode(const uint8_t *p, size_t len, struct dxp_status_reply *ret);

/* Picks the highest version both sides speak, or -EPROTONOSUPPORT. */
int dxp_negotiate_version(uint16_t peer_min, uint16_t peer_max, uint16_t *ret_version);
