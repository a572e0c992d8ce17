/* Hostile and broken clients: every one gets an error or a closed connection, and the daemon
 * keeps serving the next well-formed client. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "daxpool.h"
#include "endian-util.h"
#include "harness.h"
#include "protocol.h"

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static struct test_daemon daemon_;

static int setup(void **state)
{
	return test_daemon_start(&daemon_, NULL) < 0 ? -1 : 0;
}

static int teardown(void **state)
{
	int r = test_daemon_stop(&daemon_, SIGTERM);

	test_daemon_cleanup(&daemon_);
	return r == 0 ? 0 : -1;
}

static void assert_daemon_serves(void)
{
	struct daxpool *dp = NULL;

	assert_int_equal(daxpool_connect(daemon_.socket, &dp), 0);
	assert_int_equal(daxpool_ping(dp), 0);
	daxpool_disconnect(&dp);
}

/* Receives one frame (2 s timeout); returns its length, 0 on close, -ETIMEDOUT. */
static ssize_t recv_reply(int fd, uint8_t *buf, size_t size)
{
	struct pollfd pfd = { .fd = fd, .events = POLLIN };

	if (poll(&pfd, 1, 2000) <= 0)
		return -ETIMEDOUT;
	return recv(fd, buf, size, 0);
}

static void expect_error(int fd, int32_t status)
{
	uint8_t buf[DXP_MAX_FRAME];
	struct dxp_header h;
	ssize_t n = recv_reply(fd, buf, sizeof(buf));

	assert_true(n >= DXP_HEADER_SIZE);
	assert_int_equal(dxp_header_decode(buf, (size_t)n, &h), 0);
	assert_true(h.type & DXP_REPLY_BIT);
	assert_int_equal(h.status, status);
	assert_true(h.payload_len > 0); /* every error carries a message */
}

static void send_all(int fd, const void *buf, size_t len)
{
	assert_int_equal(send(fd, buf, len, MSG_NOSIGNAL), (ssize_t)len);
}

static int raw_hello(void)
{
	uint8_t frame[64], payload[DXP_HELLO_REQUEST_SIZE];
	struct dxp_hello_request req = { .min_version = DXP_PROTOCOL_VERSION_MAX, .max_version = DXP_PROTOCOL_VERSION_MAX };
	uint8_t buf[DXP_MAX_FRAME];
	struct dxp_header h;
	int fd = raw_connect(daemon_.socket);
	size_t n;

	assert_true(fd >= 0);
	dxp_hello_request_encode(&req, payload);
	n = dxp_frame_encode(frame, DXP_PROTOCOL_VERSION_MAX, DXP_MSG_HELLO, 1, 0, payload, sizeof(payload));
	send_all(fd, frame, n);
	ssize_t r = recv_reply(fd, buf, sizeof(buf));
	assert_true(r > 0);
	assert_int_equal(dxp_header_decode(buf, (size_t)r, &h), 0);
	assert_int_equal(h.status, 0);
	return fd;
}

static void test_garbage(void **state)
{
	int fd = raw_connect(daemon_.socket);
	uint8_t junk[100];

	assert_true(fd >= 0);
	for (size_t i = 0; i < sizeof(junk); i++)
		junk[i] = (uint8_t)(i * 37 + 11);
	send_all(fd, junk, sizeof(junk));
	expect_error(fd, -EBADMSG);
	send_all(fd, "GET / HTTP/1.0\r\n\r\n", 18);
	expect_error(fd, -EBADMSG);
	close(fd);
	assert_daemon_serves();
}

static void test_truncated_frames(void **state)
{
	uint8_t frame[64], payload[8] = { 0 };
	size_t n = dxp_frame_encode(frame, DXP_PROTOCOL_VERSION_MAX, DXP_MSG_PING, 2, 0, payload, sizeof(payload));

	/* Every truncation of a valid PING, each on a fresh negotiated connection. */
	for (size_t len = 1; len < n; len++) {
		int fd = raw_hello();

		send_all(fd, frame, len);
		expect_error(fd, -EBADMSG);
		/* The connection survives one bad frame and still answers a good one. */
		send_all(fd, frame, n);
		uint8_t buf[128];
		struct dxp_header h;
		ssize_t r = recv_reply(fd, buf, sizeof(buf));
		assert_true(r > 0);
		assert_int_equal(dxp_header_decode(buf, (size_t)r, &h), 0);
		assert_int_equal(h.status, 0);
		assert_int_equal(h.type, DXP_MSG_PING | DXP_REPLY_BIT);
		close(fd);
	}
	assert_daemon_serves();
}

static void test_length_lies(void **state)
{
	int fd = raw_hello();
	uint8_t frame[64], payload[8] = { 0 };
	size_t n = dxp_frame_encode(frame, DXP_PROTOCOL_VERSION_MAX, DXP_MSG_PING, 3, 0, payload, sizeof(payload));

	put_le32(frame + 12, 0xfffffff0u);
	send_all(fd, frame, n);
	expect_error(fd, -EBADMSG);
	put_le32(frame + 12, 4); /* shorter than what was sent */
	send_all(fd, frame, n);
	expect_error(fd, -EBADMSG);
	/* Honest header, but a PING payload of the wrong size. */
	n = dxp_frame_encode(frame, DXP_PROTOCOL_VERSION_MAX, DXP_MSG_PING, 4, 0, payload, 7);
	send_all(fd, frame, n);
	expect_error(fd, -EBADMSG);
	close(fd);
	assert_daemon_serves();
}

static void test_oversized_frame(void **state)
{
	int fd = raw_hello();
	size_t len = DXP_MAX_FRAME + 4096;
	uint8_t *big = calloc(1, len);

	assert_non_null(big);
	dxp_frame_encode(big, DXP_PROTOCOL_VERSION_MAX, DXP_MSG_PING, 5, 0, NULL, 0);
	put_le32(big + 12, (uint32_t)(len - DXP_HEADER_SIZE));
	int sndbuf = (int)len * 2;
	setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof(sndbuf));
	send_all(fd, big, len);
	expect_error(fd, -EMSGSIZE);
	free(big);
	close(fd);
	assert_daemon_serves();
}

static void test_protocol_order(void **state)
{
	int fd = raw_connect(daemon_.socket);
	uint8_t frame[64], payload[DXP_HELLO_REQUEST_SIZE];
	struct dxp_hello_request req = { .min_version = DXP_PROTOCOL_VERSION_MAX + 1, .max_version = 9 };
	size_t n;

	assert_true(fd >= 0);
	n = dxp_frame_encode(frame, DXP_PROTOCOL_VERSION_MAX, DXP_MSG_STATUS, 1, 0, NULL, 0); /* before HELLO */
	send_all(fd, frame, n);
	expect_error(fd, -EPROTO);
	dxp_hello_request_encode(&req, payload); /* versions we do not speak */
	n = dxp_frame_encode(frame, DXP_PROTOCOL_VERSION_MAX, DXP_MSG_HELLO, 2, 0, payload, sizeof(payload));
	send_all(fd, frame, n);
	expect_error(fd, -EPROTONOSUPPORT);
	close(fd);

	fd = raw_hello();
	n = dxp_frame_encode(frame, DXP_PROTOCOL_VERSION_MAX, 0x1234, 3, 0, NULL, 0); /* unknown request type */
	send_all(fd, frame, n);
	expect_error(fd, -EOPNOTSUPP);
	n = dxp_frame_encode(frame, DXP_PROTOCOL_VERSION_MAX, DXP_MSG_PING | DXP_REPLY_BIT, 4, 0, NULL, 0); /* a "reply" */
	send_all(fd, frame, n);
	expect_error(fd, -EBADMSG);
	n = dxp_frame_encode(frame, 7, DXP_MSG_STATUS, 5, 0, NULL, 0); /* wrong frame version */
	send_all(fd, frame, n);
	expect_error(fd, -EPROTO);
	req.min_version = req.max_version = DXP_PROTOCOL_VERSION_MAX; /* a second HELLO */
	dxp_hello_request_encode(&req, payload);
	n = dxp_frame_encode(frame, DXP_PROTOCOL_VERSION_MAX, DXP_MSG_HELLO, 6, 0, payload, sizeof(payload));
	send_all(fd, frame, n);
	expect_error(fd, -EPROTO);
	close(fd);
	assert_daemon_serves();
}

static void test_too_many_errors_disconnects(void **state)
{
	int fd = raw_connect(daemon_.socket);
	uint8_t buf[128];
	ssize_t n;
	int replies = 0;

	assert_true(fd >= 0);
	for (int i = 0; i < 20; i++) {
		if (send(fd, "junk", 4, MSG_NOSIGNAL) < 0)
			break;
		n = recv_reply(fd, buf, sizeof(buf));
		if (n <= 0)
			break;
		replies++;
	}
	/* CONN_MAX_PROTOCOL_ERRORS (8): seven answered, the eighth closes the connection. */
	assert_int_equal(replies, 7);
	close(fd);
	assert_daemon_serves();
}

static void test_client_never_reads(void **state)
{
	int fd = raw_hello();
	uint8_t frame[64], payload[8] = { 0 };
	size_t n = dxp_frame_encode(frame, DXP_PROTOCOL_VERSION_MAX, DXP_MSG_PING, 9, 0, payload, sizeof(payload));
	int sent = 0;

	/* Flood PINGs without reading a single reply until our socket buffer is full. */
	for (int i = 0; i < 100000; i++) {
		if (send(fd, frame, n, MSG_NOSIGNAL | MSG_DONTWAIT) < 0) {
			assert_true(errno == EAGAIN || errno == EWOULDBLOCK);
			break;
		}
		sent++;
	}
	assert_true(sent > 10);
	assert_daemon_serves();
	close(fd);
	assert_daemon_serves();
}

static void test_silent_and_wrong_type_clients(void **state)
{
	int silent = raw_connect(daemon_.socket); /* connects, says nothing */
	int empty = raw_connect(daemon_.socket);
	int stream = socket(AF_UNIX, SOCK_STREAM, 0);
	struct sockaddr_un { sa_family_t f; char p[108]; } addr = { .f = AF_UNIX };

	assert_true(silent >= 0 && empty >= 0 && stream >= 0);
	send_all(empty, "", 0); /* a zero-length packet reads as end-of-stream */
	strcpy(addr.p, daemon_.socket);
	assert_true(connect(stream, (struct sockaddr *)&addr, sizeof(addr)) < 0);
	close(stream);
	assert_daemon_serves();
	close(silent);
	close(empty);
	assert_daemon_serves();
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_garbage),
		cmocka_unit_test(test_truncated_frames),
		cmocka_unit_test(test_length_lies),
		cmocka_unit_test(test_oversized_frame),
		cmocka_unit_test(test_protocol_order),
		cmocka_unit_test(test_too_many_errors_disconnects),
		cmocka_unit_test(test_client_never_reads),
		cmocka_unit_test(test_silent_and_wrong_type_clients),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
