/* SIGHUP: re-read the configuration and apply what is safe to change while serving. */
#include "daemon.h"
#include "log.h"

#include <grp.h>
#include <stdlib.h>
#include <string.h>
#include <systemd/sd-daemon.h>

static bool str_differs(const char *a, const char *b)
{
	return (a == NULL) != (b == NULL) || (a && strcmp(a, b) != 0);
}

void daemon_reload(struct daxpoold *d)
{
	struct daxpoold_options next;
	struct daxpoold_options *cur = &d->opts;
	struct group *admin;
	int r;

	sd_notify(0, "RELOADING=1\nSTATUS=Reloading the configuration");
	r = options_parse(&next, d->argc, d->argv);
	if (r < 0) {
		/* The message naming the bad key was logged by the parser; keep serving as before. */
		log_error("SIGHUP: configuration %s is invalid, keeping the running one", cur->config_path);
		options_free(&next);
		sd_notify(0, "READY=1\nSTATUS=Serving (reload failed: invalid configuration)");
		return;
	}
	/* What the socket, the pool and the runtime journal were built from needs a restart. */
	if (str_differs(next.socket_path, cur->socket_path) || next.socket_mode != cur->socket_mode ||
	    next.backend != cur->backend || str_differs(next.device_path, cur->device_path) ||
	    str_differs(next.emulate_path, cur->emulate_path) || next.size != cur->size ||
	    next.page_size != cur->page_size || str_differs(next.runtime_dir, cur->runtime_dir) ||
	    str_differs(next.isolation, cur->isolation) || str_differs(next.tenant, cur->tenant))
		log_warning("SIGHUP: socket, backend, runtime_dir, isolation or tenant changed; those take "
			    "effect at the next restart");

	cur->log_level = next.log_level;
	log_set_max_level(cur->log_level);
	cur->max_clients = next.max_clients;
	cur->limits = next.limits;
	cur->pin_grace_ms = next.pin_grace_ms;
	cur->send_timeout_s = next.send_timeout_s;
	cur->idle_timeout_s = next.idle_timeout_s;
	cur->busy_poll_us = next.busy_poll_us;
	cur->default_quota = next.default_quota;
	free(cur->quotas);
	cur->quotas = next.quotas;
	cur->n_quotas = next.n_quotas;
	next.quotas = NULL;
	free(cur->admin_group);
	cur->admin_group = next.admin_group;
	next.admin_group = NULL;
	admin = getgrnam(cur->admin_group);
	d->admin_gid = admin ? admin->gr_gid : (gid_t)-1;
	options_free(&next);
	/* Existing connections keep the admin status they were accepted with. */
	log_notice("SIGHUP: configuration reloaded (log level, limits, quotas, timeouts, admin group)");
	sd_notify(0, "READY=1\nSTATUS=Serving (configuration reloaded)");
}
