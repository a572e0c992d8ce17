/* STATUS: the daemon's status snapshot and its getters. */
#include "client.h"

#include <errno.h>
#include <stdlib.h>

DAXPOOL_EXPORT int daxpool_status(struct daxpool *dp, struct daxpool_status **ret)
{
	struct daxpool_status *st;
	struct dxp_status_reply reply;
	size_t len;
	int r;

	dp_error_clear();
	if (!dp || !ret)
		return dp_error(-EINVAL, "daxpool_status: %s is NULL", dp ? "ret" : "connection");
	pthread_mutex_lock(&dp->lock);
	r = dp_request(dp, DXP_MSG_STATUS, NULL, 0, &len);
	if (r >= 0 && dxp_status_reply_decode(dp->buf + DXP_HEADER_SIZE, len, &reply) < 0)
		r = dp_error(-DAXPOOL_E_PROTOCOL, "malformed STATUS reply");
	pthread_mutex_unlock(&dp->lock);
	if (r < 0)
		return r;
	st = calloc(1, sizeof(*st));
	if (!st)
		return dp_error(-ENOMEM, "out of memory");
	st->reply = reply;
	*ret = st;
	return 0;
}

DAXPOOL_EXPORT void daxpool_status_delete(struct daxpool_status **st)
{
	if (!st)
		return;
	free(*st);
	*st = NULL;
}

DAXPOOL_EXPORT pid_t daxpool_status_get_pid(const struct daxpool_status *st)
{
	return st ? (pid_t)st->reply.daemon_pid : 0;
}

DAXPOOL_EXPORT const char *daxpool_status_get_version(const struct daxpool_status *st)
{
	return st ? st->reply.daemon_version : NULL;
}

DAXPOOL_EXPORT unsigned daxpool_status_get_protocol_version(const struct daxpool_status *st)
{
	return st ? st->reply.protocol_version : 0;
}

DAXPOOL_EXPORT uint64_t daxpool_status_get_uptime_ns(const struct daxpool_status *st)
{
	return st ? st->reply.uptime_ns : 0;
}

DAXPOOL_EXPORT uint64_t daxpool_status_get_start_time(const struct daxpool_status *st)
{
	return st ? st->reply.start_time_unix : 0;
}

DAXPOOL_EXPORT unsigned daxpool_status_get_clients(const struct daxpool_status *st)
{
	return st ? st->reply.clients : 0;
}
