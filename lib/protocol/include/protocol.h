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

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define DXP_MAGIC 0x4c505844u /* "DXPL" little-endian */
#define DXP_PROTOCOL_VERSION_MIN 2
#define DXP_PROTOCOL_VERSION_MAX 2
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
	DXP_MSG_ALLOC = 4,	/* reply carries the device fd (SCM_RIGHTS) */
	DXP_MSG_OPEN = 5,	/* reply carries the device fd (SCM_RIGHTS) */
	DXP_MSG_FREE = 6,
	DXP_MSG_CLOSE = 7,	/* "I no longer map this slice" */
	DXP_MSG_PIN = 8,	/* declare a long-term pin (RDMA MR, io_uring buffer, ...) */
	DXP_MSG_UNPIN = 9,
	DXP_MSG_STAT = 10,	/* pool and lease statistics */
	DXP_MSG_LIST = 11,
	DXP_MSG_DEEP_FLUSH = 12,
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
/* The config key of a DXP_LIMIT_* bound ("connections_per_uid", ...), "?" for others: the label
 * of its refusals in stats and metrics. */
const char *dxp_limit_name(unsigned limit);

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

#define DXP_NAME_MAX 255

/* ALLOC flags */
#define DXP_ALLOC_ANONYMOUS (1u << 0) /* reclaimed when the client goes; no name */
#define DXP_ALLOC_FLAGS_ALL DXP_ALLOC_ANONYMOUS
/* ALLOC alignments, in bytes (the same values as DAXPOOL_ALIGN_*) */
#define DXP_ALIGN_4K 4096u
#define DXP_ALIGN_2M (2u << 20)
#define DXP_ALIGN_1G (1u << 30)
/* OPEN flags */
#define DXP_OPEN_WRITE (1u << 0) /* read-write fd; needs write permission */
#define DXP_OPEN_FLAGS_ALL DXP_OPEN_WRITE

/* Slice flags (dxp_slice.flags) */
#define DXP_SLICE_ANONYMOUS (1u << 0)
#define DXP_SLICE_WRITABLE (1u << 1) /* the fd passed with it is read-write */
/* Device properties (dxp_slice.properties) */
#define DXP_PROP_MAP_SYNC (1u << 0)   /* MAP_SHARED_VALIDATE|MAP_SYNC works on the fd */
#define DXP_PROP_DURABLE (1u << 1)    /* stores survive power loss once flushed (real pmem) */
#define DXP_PROP_DEEP_FLUSH (1u << 2) /* DEEP_FLUSH does more than a CPU-cache flush */

#define DXP_OWNER_CALLER 0xffffffffu

struct dxp_alloc_request {
	uint64_t size;
	uint32_t align;
	uint32_t flags;
	uint32_t mode;	    /* permission bits 0..0777; 0 means 0600 */
	uint32_t owner_uid; /* DXP_OWNER_CALLER, or another uid (admins only) */
	uint32_t owner_gid; /* DXP_OWNER_CALLER, or another gid (admins only) */
	char name[DXP_NAME_MAX + 1]; /* "" for none */
};
#define DXP_ALLOC_REQUEST_FIXED 32

struct dxp_open_request {
	uint32_t flags;
	char name[DXP_NAME_MAX + 1];
};
#define DXP_OPEN_REQUEST_FIXED 8

/* How the fd passed with a slice confines its holder (dxp_slice.isolation). */
#define DXP_ISOLATION_SLICE 1  /* the fd reaches this slice only (its own object) */
#define DXP_ISOLATION_OWNER 2  /* the whole device, which serves one owner */
#define DXP_ISOLATION_SHARED 3 /* the whole device, shared by every owner */
#define DXP_OBJECT_MAX 31      /* longest object name */

/* A slice as the daemon describes it (ALLOC/OPEN replies, LIST entries). */
struct dxp_slice {
	uint64_t handle; /* per connection; 0 in LIST entries */
	uint64_t offset; /* in the pool (its place in the device's address space) */
	uint64_t map_offset; /* mmap offset of the slice's first byte in the fd passed with it */
	uint32_t isolation;  /* DXP_ISOLATION_* */
	char object[DXP_OBJECT_MAX + 1]; /* the kernel object the fd is of: "dax0.3", "POOL.slices/..." */
	uint64_t length;
	uint64_t align;
	uint64_t device_size;
	uint32_t uid, gid, mode;
	uint32_t flags;
	uint32_t properties;
	uint32_t backend; /* 1 devdax, 2 emulated */
	char name[DXP_NAME_MAX + 1];
};
#define DXP_SLICE_FIXED 112

/* Requests naming one handle (FREE, CLOSE, UNPIN use the id field). */
struct dxp_handle_request {
	uint64_t id;
};
#define DXP_HANDLE_REQUEST_SIZE 8

/* PIN and DEEP_FLUSH: a range within a slice (relative to the slice's start). */
struct dxp_range_request {
	uint64_t handle;
	uint64_t offset;
	uint64_t length;
};
#define DXP_RANGE_REQUEST_SIZE 24

struct dxp_pin_reply {
	uint64_t pin_id;
};
#define DXP_PIN_REPLY_SIZE 8

/* The bounds a refusal (-EUSERS) is counted under, in the STAT reply's order. */
enum {
	DXP_LIMIT_MAX_CLIENTS,
	DXP_LIMIT_RESERVED_ADMIN,
	DXP_LIMIT_CONNECTIONS,
	DXP_LIMIT_UNAUTHENTICATED,
	DXP_LIMIT_HANDLES,
	DXP_LIMIT_HOLDERS,
	DXP_LIMIT_PINS,
	DXP_LIMIT_CARVES,
	DXP_LIMIT_COUNT
};

struct dxp_stat_reply {
	uint64_t pool_size, data_size, device_align;
	uint64_t allocated_bytes;
	uint64_t free_bytes[3], largest_free[3]; /* 4K, 2M, 1G */
	uint64_t records_used, records_anonymous, records_quarantined, table_capacity;
	uint64_t badblocks, badblock_bytes;
	uint64_t zeroing_pending_bytes, zeroed_bytes_total;
	uint64_t pins, leases_waiting;
	uint32_t fragmentation_ppm;
	uint32_t backend;
	uint8_t uuid[16];
	uint32_t isolation; /* DXP_ISOLATION_* (version 2) */
	/* Appended within version 2 (a reply grows at its end): the per-uid bounds in effect and
	 * what the connected uids hold (docs/PROTOCOL.md). has_limits: the reply carried them. */
	bool has_limits;
	struct dxp_stat_limits {
		uint32_t max_clients, reserved_admin, connections_per_uid, unauthenticated_per_uid;
		uint32_t hello_timeout_ms, handles_per_uid, holders_per_uid, pins_per_uid;
		uint32_t inflight_per_uid, requests_per_turn;
		uint32_t clients, unauthenticated, uids, handles, conn_pins, holders, parked, throttled;
		uint32_t busiest_uid, busiest_uid_connections;
		uint64_t refused_connections, refused_requests, hello_timeouts, deferred_turns;
		uint64_t throttled_total;
		/* Appended after them (has_limit_detail): the carving queue and the refusals by the
		 * bound that refused them (DXP_LIMIT_*). */
		uint32_t carves_per_uid, carves_pending;
		uint64_t refused_by[DXP_LIMIT_COUNT];
	} limits;
	bool has_limit_detail;
};
#define DXP_STAT_REPLY_SIZE 192 /* 20 x u64, 2 x u32, 16-byte uuid, u32 isolation, u32 reserved */
#define DXP_STAT_LIMITS_SIZE 120 /* 20 x u32, 5 x u64, after the 192 bytes */
#define DXP_STAT_LIMIT_DETAIL_SIZE 72 /* 2 x u32, 8 x u64, after those */

struct dxp_list_request {
	uint64_t cursor; /* 0 to start; the previous reply's next_cursor to go on */
	uint32_t max_entries;
};
#define DXP_LIST_REQUEST_SIZE 12
/* LIST reply: u64 next_cursor (0 = done), u32 count, u32 reserved, then count slices. */
#define DXP_LIST_REPLY_FIXED 16

size_t dxp_alloc_request_encode(const struct dxp_alloc_request *m, uint8_t *buf);
int dxp_alloc_request_decode(const uint8_t *p, size_t len, struct dxp_alloc_request *ret);
/* The rules of an ALLOC request both sides check (docs/PROTOCOL.md): known flags, alignment 4K,
 * 2M or 1G, a size, mode within 0777, a name exactly when not anonymous. 0, or -EINVAL with the
 * reason (a static string) in *ret_why. The name's syntax is the decoder's (dxp_name_validate);
 * who may allocate for another owner is the daemon's to decide. */
int dxp_alloc_request_check(const struct dxp_alloc_request *m, const char **ret_why);
size_t dxp_open_request_encode(const struct dxp_open_request *m, uint8_t *buf);
int dxp_open_request_decode(const uint8_t *p, size_t len, struct dxp_open_request *ret);
/* Returns the encoded size (DXP_SLICE_FIXED + name length). */
size_t dxp_slice_encode(const struct dxp_slice *m, uint8_t *buf);
/* Decodes one slice from p; *ret_used gets the bytes consumed. */
int dxp_slice_decode(const uint8_t *p, size_t len, struct dxp_slice *ret, size_t *ret_used);
size_t dxp_handle_request_encode(const struct dxp_handle_request *m, uint8_t *buf);
int dxp_handle_request_decode(const uint8_t *p, size_t len, struct dxp_handle_request *ret);
size_t dxp_range_request_encode(const struct dxp_range_request *m, uint8_t *buf);
int dxp_range_request_decode(const uint8_t *p, size_t len, struct dxp_range_request *ret);
size_t dxp_pin_reply_encode(const struct dxp_pin_reply *m, uint8_t *buf);
int dxp_pin_reply_decode(const uint8_t *p, size_t len, struct dxp_pin_reply *ret);
size_t dxp_stat_reply_encode(const struct dxp_stat_reply *m, uint8_t *buf);
int dxp_stat_reply_decode(const uint8_t *p, size_t len, struct dxp_stat_reply *ret);
size_t dxp_list_request_encode(const struct dxp_list_request *m, uint8_t *buf);
int dxp_list_request_decode(const uint8_t *p, size_t len, struct dxp_list_request *ret);

/* Names: 1..DXP_NAME_MAX bytes of printable ASCII other than '/', no leading '.', so they are
 * safe in logs, tables and file names. Returns 0 or -EINVAL. */
int dxp_name_validate(const char *name, size_t len);

/* Picks the highest version both sides speak, or -EPROTONOSUPPORT. */
int dxp_negotiate_version(uint16_t peer_min, uint16_t peer_max, uint16_t *ret_version);
