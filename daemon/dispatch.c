/* Requests to replies: one handler per message type. */
#include "build-config.h"
#include "conn.h"
#include "log.h"

#include <errno.h>
#include <inttypes.h>
#include <string.h>
#include <unistd.h>

static int handle_hello(struct conn *c, const struct dxp_header *h, const uint8_t *payload)
{
	struct dxp_hello_request req;
	struct dxp_hello_reply reply = { .daemon_pid = (uint32_t)getpid() };
	uint8_t out[DXP_HELLO_REPLY_SIZE];
	uint16_t version;

	if (c->version)
		return conn_send_error(c, h->type, h->request_id, -EPROTO, "HELLO was already negotiated");
	if (dxp_hello_request_decode(payload, h->payload_len, &req) < 0)
		return conn_send_error(c, h->type, h->request_id, -EBADMSG, "malformed HELLO");
	if (dxp_negotiate_version(req.min_version, req.max_version, &version) < 0) {
		log_info("client %" PRIu64 " (pid %d) speaks protocol %u..%u, we speak %u..%u", c->id,
			 (int)c->pid, req.min_version, req.max_version, DXP_PROTOCOL_VERSION_MIN,
			 DXP_PROTOCOL_VERSION_MAX);
		return conn_send_error(c, h->type, h->request_id, -EPROTONOSUPPORT,
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
		return conn_send_error(c, h->type, h->request_id, -EBADMSG, "malformed PING");
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
		return conn_send_error(c, h->type, h->request_id, -EBADMSG, "STATUS takes no payload");
	strncpy(reply.daemon_version, DAXPOOL_VERSION_STRING, sizeof(reply.daemon_version) - 1);
	dxp_status_reply_encode(&reply, out);
	return conn_send_reply(c, h->type, h->request_id, 0, out, sizeof(out));
}

int dispatch_request(struct conn *c, const struct dxp_header *h, const uint8_t *payload)
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
	default:
		return conn_send_error(c, h->type, h->request_id, -EOPNOTSUPP,
				       "unknown request type %u", h->type);
	}
}
