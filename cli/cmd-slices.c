/* daxpoolctl alloc, list, show, free, stats: named slices and pool statistics through daxpoold. */
#include "daxpool.h"
#include "daxpoolctl.h"
#include "log.h"
#include "macro.h"
#include "parse-util.h"

#include <fnmatch.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <uuid/uuid.h>



static const char *align_name(uint64_t align)
{
	const char *n = page_size_name(align);

	return n ? n : "?";
}

/* The JSON object of one slice: the same fields for list, show and alloc (docs/CLI.md). */
static struct json_object *slice_json(const char *name, int anonymous, uint64_t offset,
				      uint64_t length, uint64_t align, uid_t uid, gid_t gid,
				      unsigned mode, const char *object, int isolation)
{
	struct json_object *o = json_object_new_object();
	const char *user = ctl_user_name(uid), *group;
	char m[8];

	json_object_object_add(o, "name", anonymous ? NULL : json_object_new_string(name));
	json_object_object_add(o, "anonymous", json_object_new_boolean(anonymous));
	json_object_object_add(o, "offset", json_object_new_uint64(offset));
	json_object_object_add(o, "length", json_object_new_uint64(length));
	json_object_object_add(o, "align", json_object_new_string(align_name(align)));
	json_object_object_add(o, "uid", json_object_new_int64(uid));
	json_object_object_add(o, "user", user ? json_object_new_string(user) : NULL);
	group = ctl_group_name(gid);
	json_object_object_add(o, "gid", json_object_new_int64(gid));
	json_object_object_add(o, "group", group ? json_object_new_string(group) : NULL);
	snprintf(m, sizeof(m), "%04o", mode);
	json_object_object_add(o, "mode", json_object_new_string(m));
	json_object_object_add(o, "object", json_object_new_string(object ? object : ""));
	json_object_object_add(o, "isolation", json_object_new_string(ctl_isolation_name(isolation)));
	return o;
}

static const char *jstr(struct json_object *o, const char *key)
{
	struct json_object *v = json_object_object_get(o, key);

	return v ? json_object_get_string(v) : NULL;
}

static uint64_t ju64(struct json_object *o, const char *key)
{
	return json_object_get_uint64(json_object_object_get(o, key));
}

static void print_slice_fields(struct json_object *o)
{
	char b[32], who[64];

	printf("%-8s %s\n", "name:", jstr(o, "name") ? jstr(o, "name") : "(anonymous)");
	printf("%-8s %s (%" PRIu64 " bytes)\n", "length:", ctl_format_bytes(ju64(o, "length"), b, sizeof(b)),
	       ju64(o, "length"));
	printf("%-8s %s\n", "align:", jstr(o, "align"));
	printf("%-8s 0x%" PRIx64 "\n", "offset:", ju64(o, "offset"));
	snprintf(who, sizeof(who), "%s", jstr(o, "user") ? jstr(o, "user") : jstr(o, "uid"));
	printf("%-8s %s:%s\n", "owner:", who, jstr(o, "group") ? jstr(o, "group") : jstr(o, "gid"));
	printf("%-8s %s\n", "mode:", jstr(o, "mode"));
	printf("%-8s %s (isolation %s)\n", "object:", jstr(o, "object"), jstr(o, "isolation"));
}

/* ---- alloc ------------------------------------------------------------------------------- */

struct alloc_args {
	uint64_t size, align;
	unsigned mode;
	uid_t uid;
	gid_t gid;
};

static int alloc_option(int c, const char *arg, void *userdata)
{
	struct alloc_args *a = userdata;

	switch (c) {
	case 's':
		return ctl_parse_size("--size", arg, &a->size);
	case 'a':
		return ctl_parse_align("--align", arg, &a->align);
	case 'o':
		return ctl_parse_owner("--owner", arg, &a->uid, &a->gid);
	case 'm':
		return ctl_parse_mode("--mode", arg, &a->mode);
	}
	return CTL_EXIT_USAGE;
}

int cmd_alloc(struct ctl *ctl, int argc, char **argv)
{
	static const struct option options[] = {
		{ "size", required_argument, NULL, 's' },  { "align", required_argument, NULL, 'a' },
		{ "owner", required_argument, NULL, 'o' }, { "mode", required_argument, NULL, 'm' },
		{}
	};
	struct alloc_args a = { .uid = (uid_t)-1, .gid = (gid_t)-1, .mode = 0600 };
	_cleanup_(disconnectp) struct daxpool *dp = NULL;
	_cleanup_(json_object_putp) struct json_object *obj = NULL;
	struct daxpool_slice *s = NULL;
	const char *name;
	int r, first;

	r = ctl_parse_options(ctl, argc, argv, "s:a:o:m:", options, alloc_option, &a, &first);
	if (r != CTL_EXIT_OK)
		return r < 0 ? CTL_EXIT_OK : r;
	r = ctl_check_operands("alloc", argc - first, 1, 1);
	if (r != CTL_EXIT_OK)
		return r;
	name = argv[first];
	if ((r = ctl_check_slice_name(name)) != CTL_EXIT_OK)
		return r;
	if (!a.size || !a.align) {
		log_error("alloc: --size and --align are required (see daxpoolctl help alloc)");
		return CTL_EXIT_USAGE;
	}
	if (a.size > UINT64_MAX - a.align) {
		log_error("--size: %" PRIu64 " bytes cannot be rounded up to the alignment", a.size);
		return CTL_EXIT_USAGE;
	}
	/* mode 0 means 0600 to the library, so an explicit --mode 0 cannot be said; refuse it. */
	if (a.mode == 0) {
		log_error("--mode: 0 is not supported (the daemon reads it as the default 0600)");
		return CTL_EXIT_USAGE;
	}
	if ((r = ctl_connect(ctl, &dp)) != CTL_EXIT_OK)
		return r;
	r = daxpool_alloc_owned(dp, name, a.size, a.align, a.mode, a.uid, a.gid, &s);
	if (r < 0) {
		log_error("alloc %s: %s", name, daxpool_errormsg());
		return CTL_EXIT_FAILURE;
	}
	obj = slice_json(daxpool_slice_get_name(s), 0, daxpool_slice_get_pool_offset(s),
			 daxpool_slice_get_length(s), daxpool_slice_get_alignment(s),
			 daxpool_slice_get_uid(s), daxpool_slice_get_gid(s), daxpool_slice_get_mode(s),
			 daxpool_slice_get_object(s), daxpool_slice_get_isolation(s));
	r = daxpool_close(dp, &s);
	if (r < 0) {
		/* The slice exists; only this process's hold on it could not be dropped. */
		log_warning("alloc %s: allocated, but closing failed: %s", name, daxpool_errormsg());
	}
	if (ctl->json)
		ctl_print_json(obj);
	else
		print_slice_fields(obj);
	return CTL_EXIT_OK;
}

/* ---- list / show ------------------------------------------------------------------------- */

struct list_args {
	bool have_owner;
	uid_t uid;
	gid_t gid;
	const char *glob;
	const char *exact; /* show */
	struct json_object *array;
};

static int list_option(int c, const char *arg, void *userdata)
{
	struct list_args *a = userdata;

	switch (c) {
	case 'o':
		a->have_owner = true;
		return ctl_parse_owner("--owner", arg, &a->uid, &a->gid);
	case 'n':
		a->glob = arg;
		return CTL_EXIT_OK;
	}
	return CTL_EXIT_USAGE;
}

static int list_one(const struct daxpool_slice_info *info, void *userdata)
{
	struct list_args *a = userdata;

	if (a->exact && (info->anonymous || strcmp(info->name, a->exact) != 0))
		return 0;
	if (a->glob && (info->anonymous || fnmatch(a->glob, info->name, 0) != 0))
		return 0;
	if (a->have_owner && info->uid != a->uid)
		return 0;
	json_object_array_add(a->array, slice_json(info->name, info->anonymous, info->offset,
						   info->length, info->align, info->uid, info->gid,
						   info->mode, info->object, info->isolation));
	return a->exact ? 1 : 0;
}

static int list_walk(struct ctl *ctl, struct list_args *a, struct json_object **ret)
{
	_cleanup_(disconnectp) struct daxpool *dp = NULL;
	_cleanup_(json_object_putp) struct json_object *array = json_object_new_array();
	int r;

	if ((r = ctl_connect(ctl, &dp)) != CTL_EXIT_OK)
		return r;
	a->array = array;
	r = daxpool_list(dp, list_one, a);
	if (r < 0) {
		log_error("list: %s", daxpool_errormsg());
		return CTL_EXIT_FAILURE;
	}
	*ret = TAKE_PTR(array);
	return CTL_EXIT_OK;
}

int cmd_list(struct ctl *ctl, int argc, char **argv)
{
	static const struct option options[] = {
		{ "owner", required_argument, NULL, 'o' }, { "name", required_argument, NULL, 'n' }, {}
	};
	struct list_args a = {};
	_cleanup_(json_object_putp) struct json_object *array = NULL;
	int r, first;
	size_t n;

	r = ctl_parse_options(ctl, argc, argv, "o:n:", options, list_option, &a, &first);
	if (r != CTL_EXIT_OK)
		return r < 0 ? CTL_EXIT_OK : r;
	if ((r = ctl_check_operands("list", argc - first, 0, 0)) != CTL_EXIT_OK)
		return r;
	if ((r = list_walk(ctl, &a, &array)) != CTL_EXIT_OK)
		return r;
	if (ctl->json) {
		ctl_print_json(array);
		return CTL_EXIT_OK;
	}
	n = json_object_array_length(array);
	if (n == 0) {
		printf("no slices\n");
		return CTL_EXIT_OK;
	}
	printf("%-24s %10s %5s %14s %-12s %-12s %4s %s\n", "NAME", "LENGTH", "ALIGN", "OFFSET", "USER",
	       "GROUP", "MODE", "OBJECT");
	for (size_t i = 0; i < n; i++) {
		struct json_object *o = json_object_array_get_idx(array, i);
		char b[32];

		printf("%-24s %10s %5s %#14" PRIx64 " %-12s %-12s %4s %s\n",
		       jstr(o, "name") ? jstr(o, "name") : "(anonymous)",
		       ctl_format_bytes(ju64(o, "length"), b, sizeof(b)), jstr(o, "align"),
		       ju64(o, "offset"), jstr(o, "user") ? jstr(o, "user") : jstr(o, "uid"),
		       jstr(o, "group") ? jstr(o, "group") : jstr(o, "gid"), jstr(o, "mode"),
		       jstr(o, "object"));
	}
	return CTL_EXIT_OK;
}

int cmd_show(struct ctl *ctl, int argc, char **argv)
{
	struct list_args a = {};
	_cleanup_(json_object_putp) struct json_object *array = NULL;
	struct json_object *o;
	int r, first;

	r = ctl_parse_options(ctl, argc, argv, "", NULL, NULL, NULL, &first);
	if (r != CTL_EXIT_OK)
		return r < 0 ? CTL_EXIT_OK : r;
	if ((r = ctl_check_operands("show", argc - first, 1, 1)) != CTL_EXIT_OK)
		return r;
	if ((r = ctl_check_slice_name(argv[first])) != CTL_EXIT_OK)
		return r;
	/* Through LIST, not OPEN: showing a slice must not make this process one of its holders. */
	a.exact = argv[first];
	if ((r = list_walk(ctl, &a, &array)) != CTL_EXIT_OK)
		return r;
	o = json_object_array_get_idx(array, 0);
	if (!o) {
		log_error("show: no slice named \"%s\" (or not visible to you)", a.exact);
		return CTL_EXIT_FAILURE;
	}
	if (ctl->json)
		ctl_print_json(o);
	else
		print_slice_fields(o);
	return CTL_EXIT_OK;
}

/* ---- free -------------------------------------------------------------------------------- */

int cmd_free(struct ctl *ctl, int argc, char **argv)
{
	_cleanup_(disconnectp) struct daxpool *dp = NULL;
	struct daxpool_slice *s = NULL;
	const char *name;
	int r, first;

	r = ctl_parse_options(ctl, argc, argv, "", NULL, NULL, NULL, &first);
	if (r != CTL_EXIT_OK)
		return r < 0 ? CTL_EXIT_OK : r;
	if ((r = ctl_check_operands("free", argc - first, 1, 1)) != CTL_EXIT_OK)
		return r;
	name = argv[first];
	if ((r = ctl_check_slice_name(name)) != CTL_EXIT_OK)
		return r;
	if ((r = ctl_connect(ctl, &dp)) != CTL_EXIT_OK)
		return r;
	r = daxpool_open(dp, name, DAXPOOL_OPEN_RDWR, &s);
	if (r == -ENOENT) {
		log_error("free: no slice named \"%s\"", name);
		return CTL_EXIT_FAILURE;
	}
	if (r < 0) {
		log_error("free %s: %s", name, daxpool_errormsg());
		return CTL_EXIT_FAILURE;
	}
	r = daxpool_free(dp, &s);
	if (r < 0) {
		log_error("free %s: %s", name, daxpool_errormsg());
		daxpool_close(dp, &s);
		return CTL_EXIT_FAILURE;
	}
	return ctl_print_done(ctl, "name", name, "freed");
}

/* ---- stats ------------------------------------------------------------------------------- */

static struct json_object *per_class(const uint64_t v[3])
{
	struct json_object *o = json_object_new_object();

	json_object_object_add(o, "4K", json_object_new_uint64(v[0]));
	json_object_object_add(o, "2M", json_object_new_uint64(v[1]));
	json_object_object_add(o, "1G", json_object_new_uint64(v[2]));
	return o;
}

static int stats_option(int c, const char *arg, void *userdata)
{
	(void)arg;
	*(bool *)userdata = c == 'P';
	return c == 'P' ? CTL_EXIT_OK : CTL_EXIT_USAGE;
}

int cmd_stats(struct ctl *ctl, int argc, char **argv)
{
	static const struct option options[] = { { "prometheus", no_argument, NULL, 'P' }, {} };
	static const char *const classes[] = { "4K", "2M", "1G" };
	bool prometheus = false;
	_cleanup_(disconnectp) struct daxpool *dp = NULL;
	_cleanup_(json_object_putp) struct json_object *o = NULL;
	struct daxpool_stats st = {};
	char uuid[37], b1[32], b2[32];
	int r, first;

	r = ctl_parse_options(ctl, argc, argv, "P", options, stats_option, &prometheus, &first);
	if (r != CTL_EXIT_OK)
		return r < 0 ? CTL_EXIT_OK : r;
	if ((r = ctl_check_operands("stats", argc - first, 0, 0)) != CTL_EXIT_OK)
		return r;
	if ((r = ctl_connect(ctl, &dp)) != CTL_EXIT_OK)
		return r;
	r = daxpool_stat(dp, &st, sizeof(st));
	if (r < 0) {
		log_error("stats: %s", daxpool_errormsg());
		return CTL_EXIT_FAILURE;
	}
	if (prometheus)
		return ctl_print_stats_prometheus(&st);
	uuid_unparse_lower(st.uuid, uuid);

	o = json_object_new_object();
	json_object_object_add(o, "uuid", json_object_new_string(uuid));
	json_object_object_add(o, "backend", json_object_new_string(st.backend == 1 ? "devdax" :
								   st.backend == 2 ? "emulated" : "unknown"));
	json_object_object_add(o, "isolation", json_object_new_string(ctl_isolation_name(st.isolation)));
	json_object_object_add(o, "pool_size", json_object_new_uint64(st.pool_size));
	json_object_object_add(o, "data_size", json_object_new_uint64(st.data_size));
	json_object_object_add(o, "device_align", json_object_new_uint64(st.device_align));
	json_object_object_add(o, "allocated_bytes", json_object_new_uint64(st.allocated_bytes));
	json_object_object_add(o, "free_bytes", per_class(st.free_bytes));
	json_object_object_add(o, "largest_free", per_class(st.largest_free));
	json_object_object_add(o, "fragmentation", json_object_new_double(st.fragmentation));
	json_object_object_add(o, "slices", json_object_new_uint64(st.slices));
	json_object_object_add(o, "anonymous_slices", json_object_new_uint64(st.anonymous_slices));
	json_object_object_add(o, "quarantined", json_object_new_uint64(st.quarantined));
	json_object_object_add(o, "table_capacity", json_object_new_uint64(st.table_capacity));
	json_object_object_add(o, "badblocks", json_object_new_uint64(st.badblocks));
	json_object_object_add(o, "badblock_bytes", json_object_new_uint64(st.badblock_bytes));
	json_object_object_add(o, "zeroing_pending_bytes", json_object_new_uint64(st.zeroing_pending_bytes));
	json_object_object_add(o, "zeroed_bytes_total", json_object_new_uint64(st.zeroed_bytes_total));
	json_object_object_add(o, "pins", json_object_new_uint64(st.pins));
	json_object_object_add(o, "leases_waiting", json_object_new_uint64(st.leases_waiting));
	if (st.has_limits) {
		struct json_object *l = json_object_new_object(), *c = json_object_new_object();
		const struct { const char *key; uint64_t v; } lim[] = {
			{ "max_clients", st.max_clients }, { "reserved_admin_connections", st.reserved_admin_connections },
			{ "connections_per_uid", st.connections_per_uid },
			{ "unauthenticated_per_uid", st.unauthenticated_per_uid },
			{ "hello_timeout_ms", st.hello_timeout_ms }, { "handles_per_uid", st.handles_per_uid },
			{ "holders_per_uid", st.holders_per_uid }, { "pins_per_uid", st.pins_per_uid },
			{ "inflight_per_uid", st.inflight_per_uid }, { "requests_per_turn", st.requests_per_turn },
		}, cur[] = {
			{ "connected", st.clients }, { "unauthenticated", st.unauthenticated_clients },
			{ "uids", st.client_uids }, { "handles", st.handles }, { "declared_pins", st.declared_pins },
			{ "holders", st.holders }, { "parked_replies", st.parked_replies },
			{ "throttled", st.throttled_connections },
			{ "busiest_uid_connections", st.busiest_uid_connections },
			{ "refused_connections", st.refused_connections }, { "refused_requests", st.refused_requests },
			{ "hello_timeouts", st.hello_timeouts }, { "deferred_turns", st.deferred_turns },
			{ "throttled_total", st.throttled_total },
		};

		for (size_t i = 0; i < ARRAY_SIZE(lim); i++)
			json_object_object_add(l, lim[i].key, json_object_new_uint64(lim[i].v));
		for (size_t i = 0; i < ARRAY_SIZE(cur); i++)
			json_object_object_add(c, cur[i].key, json_object_new_uint64(cur[i].v));
		json_object_object_add(c, "busiest_uid", st.busiest_uid == (uid_t)-1 ? NULL :
					  json_object_new_uint64(st.busiest_uid));
		if (st.has_limit_detail) {
			struct json_object *by = json_object_new_object();
			const struct { const char *key; uint64_t v; } refused[] = {
				{ "max_clients", st.refused_max_clients },
				{ "reserved_admin_connections", st.refused_reserved_admin },
				{ "connections_per_uid", st.refused_connections_per_uid },
				{ "unauthenticated_per_uid", st.refused_unauthenticated_per_uid },
				{ "handles_per_uid", st.refused_handles_per_uid },
				{ "holders_per_uid", st.refused_holders_per_uid },
				{ "pins_per_uid", st.refused_pins_per_uid },
				{ "carves_per_uid", st.refused_carves_per_uid },
			};

			json_object_object_add(l, "carves_per_uid", json_object_new_uint64(st.carves_per_uid));
			json_object_object_add(c, "carves_pending", json_object_new_uint64(st.carves_pending));
			for (size_t i = 0; i < ARRAY_SIZE(refused); i++)
				json_object_object_add(by, refused[i].key, json_object_new_uint64(refused[i].v));
			json_object_object_add(c, "refused_by_limit", by);
		}
		json_object_object_add(o, "limits", l);
		json_object_object_add(o, "clients", c);
	}

	if (ctl->json) {
		ctl_print_json(o);
		return CTL_EXIT_OK;
	}
	printf("%-22s %s (%s)\n", "pool:", jstr(o, "uuid"), jstr(o, "backend"));
	printf("%-22s %s\n", "isolation:", jstr(o, "isolation"));
	printf("%-22s %s (data %s, device alignment %s)\n", "size:",
	       ctl_format_bytes(ju64(o, "pool_size"), b1, sizeof(b1)),
	       ctl_format_bytes(ju64(o, "data_size"), b2, sizeof(b2)), align_name(ju64(o, "device_align")));
	printf("%-22s %s\n", "allocated:", ctl_format_bytes(ju64(o, "allocated_bytes"), b1, sizeof(b1)));
	for (size_t i = 0; i < ARRAY_SIZE(classes); i++) {
		char label[32];
		snprintf(label, sizeof(label), "free at %s:", classes[i]);
		printf("%-22s %s (largest %s)\n", label,
		       ctl_format_bytes(ju64(json_object_object_get(o, "free_bytes"), classes[i]), b1, sizeof(b1)),
		       ctl_format_bytes(ju64(json_object_object_get(o, "largest_free"), classes[i]), b2, sizeof(b2)));
	}
	printf("%-22s %.1f%%\n", "fragmentation:",
	       100.0 * json_object_get_double(json_object_object_get(o, "fragmentation")));
	printf("%-22s %" PRIu64 " (%" PRIu64 " anonymous, %" PRIu64 " quarantined; table %" PRIu64 ")\n",
	       "slices:", ju64(o, "slices"), ju64(o, "anonymous_slices"), ju64(o, "quarantined"),
	       ju64(o, "table_capacity"));
	printf("%-22s %" PRIu64 " (%s)\n", "bad blocks:", ju64(o, "badblocks"),
	       ctl_format_bytes(ju64(o, "badblock_bytes"), b1, sizeof(b1)));
	printf("%-22s %s pending (%s zeroed since start)\n", "zeroing:",
	       ctl_format_bytes(ju64(o, "zeroing_pending_bytes"), b1, sizeof(b1)),
	       ctl_format_bytes(ju64(o, "zeroed_bytes_total"), b2, sizeof(b2)));
	printf("%-22s %" PRIu64 " (%" PRIu64 " leases waiting)\n", "pins:", ju64(o, "pins"),
	       ju64(o, "leases_waiting"));
	if (st.has_limits) {
		printf("%-22s %u connected (%u before HELLO) of %u (%u reserved for administrators), %u uids\n",
		       "clients:", st.clients, st.unauthenticated_clients, st.max_clients,
		       st.reserved_admin_connections, st.client_uids);
		if (st.busiest_uid != (uid_t)-1)
			printf("%-22s uid %u with %u connections\n", "busiest uid:", (unsigned)st.busiest_uid,
			       st.busiest_uid_connections);
		printf("%-22s %u handles, %u declared pins, %u holder processes, %u replies parked, "
		       "%u connections held back\n", "held by clients:", st.handles, st.declared_pins,
		       st.holders, st.parked_replies, st.throttled_connections);
		printf("%-22s connections %u (%u before HELLO, %u ms to send it), handles %u, holders %u, "
		       "pins %u, parked replies %u (0 = unlimited); %u requests a turn\n", "limits per uid:",
		       st.connections_per_uid, st.unauthenticated_per_uid, st.hello_timeout_ms, st.handles_per_uid,
		       st.holders_per_uid, st.pins_per_uid, st.inflight_per_uid, st.requests_per_turn);
		printf("%-22s %" PRIu64 " connections, %" PRIu64 " requests at a bound; %" PRIu64
		       " HELLO timeouts; %" PRIu64 " reads deferred for fairness\n", "refused:",
		       st.refused_connections, st.refused_requests, st.hello_timeouts, st.deferred_turns);
		if (st.has_limit_detail) {
			printf("%-22s max_clients %" PRIu64 ", reserved %" PRIu64 ", connections %" PRIu64
			       ", before HELLO %" PRIu64 ", handles %" PRIu64 ", holders %" PRIu64 ", pins %" PRIu64
			       ", carves %" PRIu64 "\n", "refused by limit:", st.refused_max_clients,
			       st.refused_reserved_admin, st.refused_connections_per_uid,
			       st.refused_unauthenticated_per_uid, st.refused_handles_per_uid,
			       st.refused_holders_per_uid, st.refused_pins_per_uid, st.refused_carves_per_uid);
			printf("%-22s %u ALLOCs waiting for a carved object (limit %u per uid)\n", "carving:",
			       st.carves_pending, st.carves_per_uid);
		}
	}
	return CTL_EXIT_OK;
}
