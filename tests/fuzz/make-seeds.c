/*
 * Writes the seed corpora of the fuzz targets: make-seeds DIR creates DIR/<target>/<seed> files.
 * Seeds are built with the real encoders, so they follow the protocol when it changes; the
 * committed copies in tests/fuzz/corpus/ are its output (regenerate with
 * `build/tests/fuzz/fuzz-make-seeds tests/fuzz/corpus`). Regression inputs found by fuzzing are
 * committed beside them by hand as crash-<what>.
 */
#include "protocol.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static const char *top;

static void put(const char *target, const char *name, const void *buf, size_t len)
{
	char path[4096];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", top, target);
	if (mkdir(path, 0755) < 0 && errno != EEXIST) {
		perror(path);
		exit(1);
	}
	snprintf(path, sizeof(path), "%s/%s/%s", top, target, name);
	f = fopen(path, "wb");
	if (!f || fwrite(buf, 1, len, f) != len || fclose(f) != 0) {
		perror(path);
		exit(1);
	}
}

/* Index of a type in fuzz-decoders' table (keep in the same order). */
static int selector(uint16_t type)
{
	static const uint16_t types[] = {
		DXP_MSG_HELLO, DXP_MSG_PING, DXP_MSG_STATUS, DXP_MSG_ALLOC, DXP_MSG_OPEN,
		DXP_MSG_FREE, DXP_MSG_CLOSE, DXP_MSG_PIN, DXP_MSG_UNPIN, DXP_MSG_STAT,
		DXP_MSG_LIST, DXP_MSG_DEEP_FLUSH, DXP_MSG_ERROR,
	};
	for (int i = 0; i < (int)(sizeof(types) / sizeof(types[0])); i++)
		if (types[i] == (type & ~DXP_REPLY_BIT))
			return i | ((type & DXP_REPLY_BIT) ? 0x80 : 0);
	abort();
}

/* One message as a frame (fuzz-frame) and as selector + payload (fuzz-decoders). */
static void message(const char *name, uint16_t type, int32_t status, const uint8_t *payload, size_t len)
{
	static uint8_t frame[DXP_MAX_FRAME + 1];
	size_t n = dxp_frame_encode(frame, DXP_PROTOCOL_VERSION_MAX, type, 7, status, payload, (uint32_t)len);

	put("frame", name, frame, n);
	frame[0] = (uint8_t)selector(type);
	memcpy(frame + 1, payload, len);
	put("decoders", name, frame, len + 1);
}

static void protocol_seeds(void)
{
	static uint8_t p[DXP_MAX_PAYLOAD];
	struct dxp_hello_request hello = { .min_version = 1, .max_version = 3, .client_pid = 42 };
	struct dxp_hello_reply hello_r = { .version = 1, .daemon_pid = 1, .daemon_version = "0.1.0" };
	struct dxp_ping ping = { .nonce = 0x1122334455667788ull };
	struct dxp_status_reply status = { .daemon_pid = 1, .protocol_version = 1, .uptime_ns = 5,
					   .clients = 2, .daemon_version = "0.1.0" };
	struct dxp_alloc_request alloc = { .size = 1 << 21, .align = 1 << 21, .mode = 0640,
					   .owner_uid = DXP_OWNER_CALLER, .owner_gid = DXP_OWNER_CALLER,
					   .name = "db.wal" };
	struct dxp_alloc_request anon = { .size = 4096, .align = 4096, .flags = DXP_ALLOC_ANONYMOUS,
					  .owner_uid = DXP_OWNER_CALLER, .owner_gid = DXP_OWNER_CALLER };
	struct dxp_open_request open = { .flags = DXP_OPEN_WRITE, .name = "db.wal" };
	struct dxp_handle_request handle = { .id = 3 };
	struct dxp_range_request range = { .handle = 3, .offset = 4096, .length = 8192 };
	struct dxp_pin_reply pin = { .pin_id = 9 };
	struct dxp_list_request list = { .cursor = 0, .max_entries = 64 };
	struct dxp_slice slice = { .handle = 3, .offset = 2 << 21, .length = 1 << 21, .align = 1 << 21,
				   .device_size = 1 << 30, .uid = 1000, .gid = 1000, .mode = 0640,
				   .flags = DXP_SLICE_WRITABLE, .properties = DXP_PROP_MAP_SYNC,
				   .backend = 2, .name = "db.wal", .map_offset = 0,
				   .isolation = DXP_ISOLATION_SLICE, .object = "pool.slices/0000000000400000" };
	struct dxp_stat_reply stat = { .pool_size = 1 << 30, .data_size = 1 << 29, .device_align = 1 << 21,
				       .records_used = 2, .table_capacity = 16384, .backend = 2,
				       .isolation = DXP_ISOLATION_SLICE };
	size_t n;

	message("hello", DXP_MSG_HELLO, 0, p, dxp_hello_request_encode(&hello, p));
	message("hello-reply", DXP_MSG_HELLO | DXP_REPLY_BIT, 0, p, dxp_hello_reply_encode(&hello_r, p));
	message("ping", DXP_MSG_PING, 0, p, dxp_ping_encode(&ping, p));
	message("status", DXP_MSG_STATUS, 0, p, 0);
	message("status-reply", DXP_MSG_STATUS | DXP_REPLY_BIT, 0, p, dxp_status_reply_encode(&status, p));
	message("alloc", DXP_MSG_ALLOC, 0, p, dxp_alloc_request_encode(&alloc, p));
	message("alloc-anon", DXP_MSG_ALLOC, 0, p, dxp_alloc_request_encode(&anon, p));
	message("alloc-reply", DXP_MSG_ALLOC | DXP_REPLY_BIT, 0, p, dxp_slice_encode(&slice, p));
	message("open", DXP_MSG_OPEN, 0, p, dxp_open_request_encode(&open, p));
	message("free", DXP_MSG_FREE, 0, p, dxp_handle_request_encode(&handle, p));
	message("close", DXP_MSG_CLOSE, 0, p, dxp_handle_request_encode(&handle, p));
	message("unpin", DXP_MSG_UNPIN, 0, p, dxp_handle_request_encode(&handle, p));
	message("pin", DXP_MSG_PIN, 0, p, dxp_range_request_encode(&range, p));
	message("pin-reply", DXP_MSG_PIN | DXP_REPLY_BIT, 0, p, dxp_pin_reply_encode(&pin, p));
	message("deep-flush", DXP_MSG_DEEP_FLUSH, 0, p, dxp_range_request_encode(&range, p));
	message("stat", DXP_MSG_STAT, 0, p, 0);
	message("stat-reply", DXP_MSG_STAT | DXP_REPLY_BIT, 0, p, dxp_stat_reply_encode(&stat, p));
	message("list", DXP_MSG_LIST, 0, p, dxp_list_request_encode(&list, p));
	/* LIST reply: next_cursor, count, reserved, then the slices. */
	memset(p, 0, DXP_LIST_REPLY_FIXED);
	p[0] = 5;
	p[8] = 2;
	n = DXP_LIST_REPLY_FIXED;
	slice.handle = 0;
	n += dxp_slice_encode(&slice, p + n);
	strcpy(slice.name, "");
	slice.flags = DXP_SLICE_ANONYMOUS;
	n += dxp_slice_encode(&slice, p + n);
	message("list-reply", DXP_MSG_LIST | DXP_REPLY_BIT, 0, p, n);
	n = dxp_error_payload_encode("no space left for 1073741824 bytes aligned to 1G", p);
	message("error-reply", DXP_MSG_ALLOC | DXP_REPLY_BIT, -ENOSPC, p, n);
	n = dxp_error_payload_encode("malformed frame header", p);
	message("error-frame", DXP_MSG_ERROR | DXP_REPLY_BIT, -EBADMSG, p, n);
}

static void config_seeds(void)
{
	static const char *const configs[][2] = {
		{ "devdax", "{\"socket\":\"/run/daxpool/daxpoold.sock\",\"socket_mode\":\"0660\","
			    "\"log_level\":\"info\",\"max_clients\":1024,"
			    "\"backend\":{\"type\":\"devdax\",\"device\":\"/dev/dax0.0\","
			    "\"uuid\":\"01234567-89ab-cdef-0123-456789abcdef\",\"format_if_empty\":false}}" },
		{ "emulated", "{\"socket\":\"/run/daxpool/daxpoold.sock\",\"backend\":{\"type\":\"emulated\","
			      "\"path\":\"/dev/hugepages/daxpool.pool\",\"size\":\"1G\",\"page\":\"2M\"}}" },
		{ "isolation", "{\"isolation\":\"owner\",\"tenant\":\"1000\",\"backend\":{\"type\":\"devdax\","
			       "\"device\":\"/dev/dax0.0\"}}" },
		{ "limits", "{\"runtime_dir\":\"/run/daxpool\",\"admin_group\":\"daxpool-admin\","
			    "\"pin_grace_ms\":1000,\"send_timeout_s\":30,\"idle_timeout_s\":600,"
			    "\"backend\":{\"type\":\"emulated\",\"path\":\"/tmp/p\",\"size\":1073741824,\"page\":\"4K\"}}" },
		{ "quotas", "{\"quota\":{\"bytes\":\"64G\",\"slices\":100},"
			    "\"quotas\":{\"0\":{\"bytes\":\"1T\"},\"root\":{\"slices\":5},\"1000\":{\"bytes\":4096}}}" },
		{ "unknown-key", "{\"sokcet\":\"/x\"}" },
		{ "wrong-type", "{\"max_clients\":\"many\",\"backend\":[1,2]}" },
		{ "truncated", "{\"backend\":{\"type\":\"emu" },
	};

	for (size_t i = 0; i < sizeof(configs) / sizeof(configs[0]); i++)
		put("config", configs[i][0], configs[i][1], strlen(configs[i][1]));
}

/* fuzz-pool's input: flags, patch count, patches, operations (see fuzz-pool.c). */
static void pool_seeds(void)
{
	static const struct {
		const char *name;
		uint8_t bytes[48];
		size_t len;
	} seeds[] = {
		{ "empty", { 0x00, 0x00 }, 2 },
		{ "records", { 0x01, 0x00 }, 2 },
		{ "log-pending", { 0x02, 0x00 }, 2 },
		{ "log-pending-repair", { 0x0a, 0x00 }, 2 },
		{ "align-2m", { 0x03, 0x00 }, 2 },
		/* superblock A's pool size changed, checksums fixed: both copies valid, different */
		{ "sb-differ", { 0x05, 0x01, 0x20, 0x00, 0x01, 0x01 }, 6 },
		/* a flipped byte in superblock B, no checksum fix: degraded, repairable */
		{ "sb-b-flip", { 0x09, 0x01, 0x30, 0x10, 0x00, 0xff }, 6 },
		/* record 0's offset moved by one page, checksum fixed: overlap with record 1 */
		{ "rec-overlap", { 0x05, 0x01, 0x01, 0x30, 0x00, 0x30 }, 6 },
		/* commit mark set to a stray value */
		{ "log-stray", { 0x09, 0x01, 0x00, 0x20, 0x00, 0x5a }, 6 },
		/* operations: alloc named, alloc anonymous, free, quarantine, release, lookup, ENOMEM */
		{ "ops", { 0x01, 0x00, 0, 0x01, 1, 0x82, 2, 0x00, 3, 0x01, 4, 0x01, 5, 0x00, 6, 0x03, 6, 0x02 }, 18 },
		{ "ops-2m", { 0x03, 0x00, 0, 0x20, 1, 0xa1, 2, 0x00, 6, 0x01 }, 10 },
	};

	for (size_t i = 0; i < sizeof(seeds) / sizeof(seeds[0]); i++)
		put("pool", seeds[i].name, seeds[i].bytes, seeds[i].len);
}

int main(int argc, char **argv)
{
	if (argc != 2) {
		fprintf(stderr, "usage: %s DIR\n", argv[0]);
		return 2;
	}
	top = argv[1];
	if (mkdir(top, 0755) < 0 && errno != EEXIST) {
		perror(top);
		return 1;
	}
	protocol_seeds();
	config_seeds();
	pool_seeds();
	return 0;
}
