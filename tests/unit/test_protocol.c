/* Unit tests of the wire protocol encoders/decoders (lib/protocol/protocol.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "endian-util.h"
#include "protocol.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

static size_t make_frame(uint8_t *buf, uint16_t type, const void *payload, uint32_t len)
{
	return dxp_frame_encode(buf, 1, type, 7, 0, payload, len);
}

static void test_header_round_trip(void **state)
{
	uint8_t buf[DXP_MAX_FRAME];
	struct dxp_header h;
	size_t n = dxp_frame_encode(buf, 1, DXP_MSG_PING | DXP_REPLY_BIT, 0xdeadbeef, -ENOENT, "abc", 3);

	assert_int_equal(n, DXP_HEADER_SIZE + 3);
	/* The layout is the one docs/PROTOCOL.md gives, byte for byte. */
	assert_int_equal(get_le32(buf), 0x4c505844u);
	assert_memory_equal(buf, "DXPL", 4);
	assert_int_equal(get_le16(buf + 4), 1);
	assert_int_equal(get_le16(buf + 6), 0x8002);
	assert_int_equal(get_le32(buf + 8), 0xdeadbeef);
	assert_int_equal(get_le32(buf + 12), 3);
	assert_int_equal((int32_t)get_le32(buf + 16), -ENOENT);
	assert_int_equal(get_le32(buf + 20), 0);
	assert_int_equal(dxp_header_decode(buf, n, &h), 0);
	assert_int_equal(h.type, DXP_MSG_PING | DXP_REPLY_BIT);
	assert_int_equal(h.request_id, 0xdeadbeef);
	assert_int_equal(h.status, -ENOENT);
	assert_int_equal(h.payload_len, 3);
}

static void test_header_rejects_malformed(void **state)
{
	uint8_t buf[DXP_MAX_FRAME + 16];
	struct dxp_header h;
	size_t n = make_frame(buf, DXP_MSG_PING, "12345678", 8);

	for (size_t len = 0; len < n; len++) /* every truncation */
		assert_int_equal(dxp_header_decode(buf, len, &h), -EBADMSG);
	assert_int_equal(dxp_header_decode(NULL, n, &h), -EBADMSG);

	buf[0] ^= 1; /* magic */
	assert_int_equal(dxp_header_decode(buf, n, &h), -EBADMSG);
	buf[0] ^= 1;
	put_le32(buf + 12, 9); /* payload_len lies */
	assert_int_equal(dxp_header_decode(buf, n, &h), -EBADMSG);
	put_le32(buf + 12, 0xffffffffu);
	assert_int_equal(dxp_header_decode(buf, n, &h), -EBADMSG);
	put_le32(buf + 12, 8);
	put_le32(buf + 20, 1); /* reserved flags */
	assert_int_equal(dxp_header_decode(buf, n, &h), -EBADMSG);
	put_le32(buf + 20, 0);
	put_le32(buf + 16, 5); /* positive status */
	assert_int_equal(dxp_header_decode(buf, n, &h), -EBADMSG);
	put_le32(buf + 16, (uint32_t)-5000); /* not an errno */
	assert_int_equal(dxp_header_decode(buf, n, &h), -EBADMSG);
	put_le32(buf + 16, 0);
	assert_int_equal(dxp_header_decode(buf, n, &h), 0);

	/* A payload over the maximum is refused even when the length field is honest. */
	memset(buf, 0, sizeof(buf));
	n = dxp_frame_encode(buf, 1, DXP_MSG_PING, 1, 0, buf + DXP_HEADER_SIZE, DXP_MAX_PAYLOAD);
	assert_int_equal(dxp_header_decode(buf, n, &h), 0);
	put_le32(buf + 12, DXP_MAX_PAYLOAD + 1);
	assert_int_equal(dxp_header_decode(buf, n + 1, &h), -EBADMSG);
}

static void test_hello(void **state)
{
	struct dxp_hello_request req = { .min_version = 1, .max_version = 3, .client_pid = 42 }, req2;
	struct dxp_hello_reply rep = { .version = 1, .daemon_pid = 99 }, rep2;
	uint8_t buf[64];

	assert_int_equal(dxp_hello_request_encode(&req, buf), DXP_HELLO_REQUEST_SIZE);
	assert_int_equal(dxp_hello_request_decode(buf, DXP_HELLO_REQUEST_SIZE, &req2), 0);
	assert_int_equal(req2.min_version, 1);
	assert_int_equal(req2.max_version, 3);
	assert_int_equal(req2.client_pid, 42);
	assert_int_equal(dxp_hello_request_decode(buf, DXP_HELLO_REQUEST_SIZE - 1, &req2), -EBADMSG);
	assert_int_equal(dxp_hello_request_decode(buf, DXP_HELLO_REQUEST_SIZE + 1, &req2), -EBADMSG);
	req.min_version = 4; /* min > max */
	dxp_hello_request_encode(&req, buf);
	assert_int_equal(dxp_hello_request_decode(buf, DXP_HELLO_REQUEST_SIZE, &req2), -EBADMSG);
	req.min_version = 0;
	dxp_hello_request_encode(&req, buf);
	assert_int_equal(dxp_hello_request_decode(buf, DXP_HELLO_REQUEST_SIZE, &req2), -EBADMSG);

	strcpy(rep.daemon_version, "1.2.3");
	assert_int_equal(dxp_hello_reply_encode(&rep, buf), DXP_HELLO_REPLY_SIZE);
	assert_int_equal(dxp_hello_reply_decode(buf, DXP_HELLO_REPLY_SIZE, &rep2), 0);
	assert_string_equal(rep2.daemon_version, "1.2.3");
	assert_int_equal(rep2.daemon_pid, 99);
	memset(buf + 8, 'x', DXP_VERSION_STRING_SIZE); /* unterminated string */
	assert_int_equal(dxp_hello_reply_decode(buf, DXP_HELLO_REPLY_SIZE, &rep2), -EBADMSG);
}

static void test_negotiation(void **state)
{
	uint16_t v = 0;

	assert_int_equal(dxp_negotiate_version(1, 1, &v), -EPROTONOSUPPORT); /* version 1 is retired */
	assert_int_equal(dxp_negotiate_version(2, 2, &v), 0);
	assert_int_equal(v, 2);
	assert_int_equal(dxp_negotiate_version(1, 9, &v), 0);
	assert_int_equal(v, DXP_PROTOCOL_VERSION_MAX);
	assert_int_equal(dxp_negotiate_version(DXP_PROTOCOL_VERSION_MAX + 1, 9, &v), -EPROTONOSUPPORT);
}

static void test_status_reply_extensible(void **state)
{
	struct dxp_status_reply st = { .daemon_pid = 5, .protocol_version = 1, .uptime_ns = 123456789012ull,
				       .start_time_unix = 1700000000, .clients = 3 }, st2;
	uint8_t buf[DXP_STATUS_REPLY_SIZE + 32];

	strcpy(st.daemon_version, "0.1.0");
	memset(buf, 0xaa, sizeof(buf));
	assert_int_equal(dxp_status_reply_encode(&st, buf), DXP_STATUS_REPLY_SIZE);
	assert_int_equal(dxp_status_reply_decode(buf, DXP_STATUS_REPLY_SIZE, &st2), 0);
	assert_int_equal(st2.uptime_ns, 123456789012ull);
	assert_int_equal(st2.clients, 3);
	assert_string_equal(st2.daemon_version, "0.1.0");
	/* A newer daemon may append fields; an older client reads what it knows. */
	assert_int_equal(dxp_status_reply_decode(buf, sizeof(buf), &st2), 0);
	assert_int_equal(dxp_status_reply_decode(buf, DXP_STATUS_REPLY_SIZE - 1, &st2), -EBADMSG);
}

static void test_error_payload_sanitized(void **state)
{
	char msg[DXP_MAX_ERROR_MESSAGE + 1];
	uint8_t raw[] = { 'o', 'k', 0x1b, '[', '2', 'J', 0, 0xff };
	uint8_t big[DXP_MAX_ERROR_MESSAGE + 1];

	assert_int_equal(dxp_error_payload_decode(raw, sizeof(raw), msg), 0);
	assert_string_equal(msg, "ok?[2J??");
	memset(big, 'a', sizeof(big));
	assert_int_equal(dxp_error_payload_decode(big, sizeof(big), msg), -EBADMSG);
	assert_int_equal(dxp_error_payload_encode(NULL, big), 0);
}

/* Random frames, many of them almost valid, must never crash a decoder or be accepted wrongly. */
static void test_random_frames(void **state)
{
	uint8_t buf[512];
	unsigned seed = 12345;
	unsigned accepted = 0;

	for (int i = 0; i < 200000; i++) {
		size_t len = (size_t)rand_r(&seed) % sizeof(buf);
		struct dxp_header h;

		for (size_t j = 0; j < len; j++)
			buf[j] = (uint8_t)rand_r(&seed);
		if (i & 1 && len >= DXP_HEADER_SIZE) { /* make the header plausible */
			put_le32(buf, DXP_MAGIC);
			put_le32(buf + 12, (uint32_t)(len - DXP_HEADER_SIZE));
			put_le32(buf + 16, 0);
			put_le32(buf + 20, 0);
		}
		if (dxp_header_decode(buf, len, &h) == 0) {
			accepted++;
			assert_int_equal(h.payload_len, len - DXP_HEADER_SIZE);
			struct dxp_hello_request hr;
			struct dxp_hello_reply hp;
			struct dxp_ping p;
			struct dxp_status_reply s;
			char msg[DXP_MAX_ERROR_MESSAGE + 1];
			(void)dxp_hello_request_decode(buf + DXP_HEADER_SIZE, h.payload_len, &hr);
			(void)dxp_hello_reply_decode(buf + DXP_HEADER_SIZE, h.payload_len, &hp);
			(void)dxp_ping_decode(buf + DXP_HEADER_SIZE, h.payload_len, &p);
			(void)dxp_status_reply_decode(buf + DXP_HEADER_SIZE, h.payload_len, &s);
			(void)dxp_error_payload_decode(buf + DXP_HEADER_SIZE, h.payload_len, msg);
			struct dxp_alloc_request ar;
			struct dxp_open_request orq;
			struct dxp_slice sl;
			struct dxp_stat_reply sr;
			struct dxp_list_request lr;
			struct dxp_range_request rr;
			struct dxp_handle_request hr2;
			size_t used;
			(void)dxp_alloc_request_decode(buf + DXP_HEADER_SIZE, h.payload_len, &ar);
			(void)dxp_open_request_decode(buf + DXP_HEADER_SIZE, h.payload_len, &orq);
			if (dxp_slice_decode(buf + DXP_HEADER_SIZE, h.payload_len, &sl, &used) == 0)
				assert_true(used <= h.payload_len && sl.offset + sl.length <= sl.device_size);
			(void)dxp_stat_reply_decode(buf + DXP_HEADER_SIZE, h.payload_len, &sr);
			(void)dxp_list_request_decode(buf + DXP_HEADER_SIZE, h.payload_len, &lr);
			(void)dxp_range_request_decode(buf + DXP_HEADER_SIZE, h.payload_len, &rr);
			(void)dxp_handle_request_decode(buf + DXP_HEADER_SIZE, h.payload_len, &hr2);
		}
	}
	assert_true(accepted > 1000); /* the plausible half really reached the payload decoders */
}

/* Each encoder writes exactly its documented size, and every byte of it (no stale tail that
 * would leak daemon memory to clients). */
static void test_encoded_sizes(void **state)
{
	uint8_t a[512], b[512];
	struct dxp_stat_reply st = { .pool_size = 1 };
	struct dxp_slice sl = { .length = 1, .device_size = 2 };
	struct dxp_alloc_request al = { .size = 1 };
	struct dxp_open_request op = { .flags = 1 };
	struct dxp_list_request li = { .cursor = 1, .max_entries = 2 };
	struct dxp_range_request rr = { .handle = 1 };

	strcpy(sl.name, "abc");
	strcpy(al.name, "abcd");
	strcpy(op.name, "xyz");
	memset(a, 0x00, sizeof(a));
	memset(b, 0xff, sizeof(b));
	assert_int_equal(dxp_stat_reply_encode(&st, a), DXP_STAT_REPLY_SIZE);
	assert_int_equal(dxp_stat_reply_encode(&st, b), DXP_STAT_REPLY_SIZE);
	assert_memory_equal(a, b, DXP_STAT_REPLY_SIZE);
	/* With the per-uid limits block appended: every byte written, and it decodes back; a
	 * reply without it (an older daemon) decodes with has_limits false. */
	struct dxp_stat_reply back;

	st.isolation = DXP_ISOLATION_SLICE;
	st.has_limits = true;
	st.limits.max_clients = 1024;
	st.limits.requests_per_turn = 1;
	st.limits.busiest_uid = 65534;
	st.limits.throttled_total = 1ull << 40;
	assert_int_equal(dxp_stat_reply_encode(&st, a), DXP_STAT_REPLY_SIZE + DXP_STAT_LIMITS_SIZE);
	assert_int_equal(dxp_stat_reply_encode(&st, b), DXP_STAT_REPLY_SIZE + DXP_STAT_LIMITS_SIZE);
	assert_memory_equal(a, b, DXP_STAT_REPLY_SIZE + DXP_STAT_LIMITS_SIZE);
	assert_int_equal(dxp_stat_reply_decode(a, DXP_STAT_REPLY_SIZE + DXP_STAT_LIMITS_SIZE, &back), 0);
	assert_true(back.has_limits);
	assert_int_equal(back.limits.max_clients, 1024);
	assert_int_equal(back.limits.requests_per_turn, 1);
	assert_int_equal(back.limits.busiest_uid, 65534);
	assert_int_equal(back.limits.throttled_total, 1ull << 40);
	assert_false(back.has_limit_detail);
	/* And the detail after it (carving queue, refusals by bound). */
	st.has_limit_detail = true;
	st.limits.carves_per_uid = 8;
	st.limits.carves_pending = 3;
	st.limits.refused_by[DXP_LIMIT_CARVES] = 7;
	st.limits.refused_by[DXP_LIMIT_MAX_CLIENTS] = 1ull << 33;
	size_t full = DXP_STAT_REPLY_SIZE + DXP_STAT_LIMITS_SIZE + DXP_STAT_LIMIT_DETAIL_SIZE;
	assert_int_equal(dxp_stat_reply_encode(&st, a), full);
	assert_int_equal(dxp_stat_reply_encode(&st, b), full);
	assert_memory_equal(a, b, full);
	assert_int_equal(dxp_stat_reply_decode(a, full, &back), 0);
	assert_true(back.has_limits && back.has_limit_detail);
	assert_int_equal(back.limits.carves_per_uid, 8);
	assert_int_equal(back.limits.carves_pending, 3);
	assert_int_equal(back.limits.refused_by[DXP_LIMIT_CARVES], 7);
	assert_int_equal(back.limits.refused_by[DXP_LIMIT_MAX_CLIENTS], 1ull << 33);
	assert_int_equal(back.limits.throttled_total, 1ull << 40);
	st.has_limit_detail = false;
	assert_int_equal(dxp_stat_reply_decode(a, DXP_STAT_REPLY_SIZE, &back), 0);
	assert_false(back.has_limits);
	assert_false(back.has_limit_detail);
	assert_int_equal(back.limits.max_clients, 0);
	st.has_limits = false;
	assert_int_equal(dxp_slice_encode(&sl, a), DXP_SLICE_FIXED + 3);
	assert_int_equal(dxp_slice_encode(&sl, b), DXP_SLICE_FIXED + 3);
	assert_memory_equal(a, b, DXP_SLICE_FIXED + 3);
	assert_int_equal(dxp_alloc_request_encode(&al, a), DXP_ALLOC_REQUEST_FIXED + 4);
	assert_int_equal(dxp_alloc_request_encode(&al, b), DXP_ALLOC_REQUEST_FIXED + 4);
	assert_memory_equal(a, b, DXP_ALLOC_REQUEST_FIXED + 4);
	assert_int_equal(dxp_open_request_encode(&op, a), DXP_OPEN_REQUEST_FIXED + 3);
	assert_int_equal(dxp_open_request_encode(&op, b), DXP_OPEN_REQUEST_FIXED + 3);
	assert_memory_equal(a, b, DXP_OPEN_REQUEST_FIXED + 3);
	assert_int_equal(dxp_list_request_encode(&li, a), DXP_LIST_REQUEST_SIZE);
	assert_int_equal(dxp_range_request_encode(&rr, a), DXP_RANGE_REQUEST_SIZE);
}

static void test_slice_codecs(void **state)
{
	struct dxp_slice sl = { .handle = 7, .offset = 2 << 20, .length = 4 << 20, .align = 2 << 20,
				.device_size = 64 << 20, .uid = 1000, .gid = 100, .mode = 0640,
				.flags = DXP_SLICE_WRITABLE, .properties = DXP_PROP_MAP_SYNC, .backend = 1,
				.map_offset = 0, .isolation = DXP_ISOLATION_SLICE }, out;
	struct dxp_alloc_request al = { .size = 5, .align = 4096, .flags = 1, .mode = 0600,
					.owner_uid = DXP_OWNER_CALLER, .owner_gid = 5 }, al2;
	uint8_t buf[512];
	size_t n, used;

	strcpy(sl.name, "db-log");
	strcpy(sl.object, "dax0.7");
	n = dxp_slice_encode(&sl, buf);
	assert_int_equal(n, 112 + 6); /* docs/PROTOCOL.md: SLICE is 112 bytes + name */
	assert_int_equal(dxp_slice_decode(buf, n, &out, &used), 0);
	assert_int_equal(used, n);
	assert_memory_equal(&out, &sl, offsetof(struct dxp_slice, object));
	assert_string_equal(out.object, "dax0.7");
	assert_int_equal(out.map_offset, 0);
	assert_int_equal(out.isolation, DXP_ISOLATION_SLICE);
	assert_string_equal(out.name, "db-log");
	/* Layout of the version 2 fields. */
	assert_int_equal(get_le16(buf + 66), DXP_ISOLATION_SLICE);
	assert_int_equal(get_le64(buf + 72), 0);
	assert_memory_equal(buf + 80, "dax0.7\0", 7);
	buf[66] = 9; /* unknown isolation */
	assert_int_equal(dxp_slice_decode(buf, n, &out, &used), -EBADMSG);
	buf[66] = DXP_ISOLATION_SLICE;
	buf[90] = 'x'; /* garbage after the object's NUL */
	assert_int_equal(dxp_slice_decode(buf, n, &out, &used), -EBADMSG);
	buf[90] = 0;
	put_le64(buf + 72, UINT64_MAX - 1); /* mapping range wraps */
	assert_int_equal(dxp_slice_decode(buf, n, &out, &used), -EBADMSG);
	put_le64(buf + 72, 0);
	assert_int_equal(dxp_slice_decode(buf, n, &out, &used), 0);
	assert_int_equal(dxp_slice_decode(buf, n - 1, &out, &used), -EBADMSG);
	put_le64(buf + 32, (6 << 20) - 1); /* device smaller than offset + length */
	assert_int_equal(dxp_slice_decode(buf, n, &out, &used), -EBADMSG);

	n = dxp_alloc_request_encode(&al, buf);
	assert_int_equal(n, DXP_ALLOC_REQUEST_FIXED);
	assert_int_equal(dxp_alloc_request_decode(buf, n, &al2), 0);
	assert_int_equal(al2.owner_uid, DXP_OWNER_CALLER);
	assert_int_equal(al2.owner_gid, 5);
	assert_string_equal(al2.name, "");
	strcpy(al.name, "bad/name");
	n = dxp_alloc_request_encode(&al, buf);
	assert_int_equal(dxp_alloc_request_decode(buf, n, &al2), -EINVAL);
	strcpy(al.name, ".hidden");
	n = dxp_alloc_request_encode(&al, buf);
	assert_int_equal(dxp_alloc_request_decode(buf, n, &al2), -EINVAL);
	strcpy(al.name, "ok");
	n = dxp_alloc_request_encode(&al, buf);
	assert_int_equal(dxp_alloc_request_decode(buf, n + 1, &al2), -EBADMSG); /* length lies */
	put_le16(buf + 28, 300);
	assert_int_equal(dxp_alloc_request_decode(buf, n, &al2), -EBADMSG);
}

/* The ALLOC rules client and daemon share: each one refused with its reason. */
static void test_alloc_request_check(void **state)
{
	struct dxp_alloc_request ok = { .size = 1, .align = DXP_ALIGN_2M, .mode = 0640, .name = "a" };
	struct dxp_alloc_request m;
	const char *why = NULL;

	(void)state;
	assert_int_equal(dxp_alloc_request_check(&ok, &why), 0);
	assert_null(why);
	m = ok;
	m.flags = 4;
	assert_int_equal(dxp_alloc_request_check(&m, &why), -EINVAL);
	assert_non_null(strstr(why, "flags"));
	m = ok;
	m.align = 8192;
	assert_int_equal(dxp_alloc_request_check(&m, &why), -EINVAL);
	assert_non_null(strstr(why, "alignment"));
	m = ok;
	m.size = 0;
	assert_int_equal(dxp_alloc_request_check(&m, &why), -EINVAL);
	assert_non_null(strstr(why, "size"));
	m = ok;
	m.mode = 01777;
	assert_int_equal(dxp_alloc_request_check(&m, &why), -EINVAL);
	assert_non_null(strstr(why, "0777"));
	m = ok;
	m.flags = DXP_ALLOC_ANONYMOUS;
	assert_int_equal(dxp_alloc_request_check(&m, &why), -EINVAL);
	assert_non_null(strstr(why, "anonymous slice has no name"));
	m.name[0] = '\0';
	assert_int_equal(dxp_alloc_request_check(&m, &why), 0);
	m.flags = 0;
	assert_int_equal(dxp_alloc_request_check(&m, &why), -EINVAL);
	assert_non_null(strstr(why, "needs a name"));
	m = ok;
	m.align = DXP_ALIGN_1G;
	assert_int_equal(dxp_alloc_request_check(&m, &why), 0);
	m.align = DXP_ALIGN_4K;
	assert_int_equal(dxp_alloc_request_check(&m, &why), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_header_round_trip),
		cmocka_unit_test(test_header_rejects_malformed),
		cmocka_unit_test(test_hello),
		cmocka_unit_test(test_negotiation),
		cmocka_unit_test(test_status_reply_extensible),
		cmocka_unit_test(test_error_payload_sanitized),
		cmocka_unit_test(test_random_frames),
		cmocka_unit_test(test_encoded_sizes),
		cmocka_unit_test(test_slice_codecs),
		cmocka_unit_test(test_alloc_request_check),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
