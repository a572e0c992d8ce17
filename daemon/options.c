/* daxpoold's command line and JSON config file; see options.h and docs/CONFIG.md. */
#include "options.h"

/* The pool's record capacity bounds (docs/FORMAT.md: 64 .. 2^26). */
#define RECORDS_MIN 64u
#define RECORDS_MAX (1u << 26)
#include "build-config.h"
#include "log.h"
#include "macro.h"
#include "parse-util.h"

#include <errno.h>
#include <getopt.h>
#include <grp.h>
#include <json-c/json.h>
#include <pwd.h>
#include <inttypes.h>
#include <libgen.h>
#include <limits.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uuid/uuid.h>
#include <sys/un.h>
#include <unistd.h>

#define MAX_CLIENTS_LIMIT 65536
/* docs/CONFIG.md "limits": what a host with a few hundred client processes per user lives with. */
#define LIMITS_DEFAULTS                                                                            \
	(struct uid_limits)                                                                        \
	{                                                                                          \
		.connections = 128, .unauthenticated = 16, .hello_timeout_ms = 2000, .handles = 4096, \
		.holders = 256, .pins = 4096, .inflight = 32, .reserved_admin = 16, .turn_requests = 1, \
		.carves = 8,                                                                       \
	}

static int parse_uuid(const char *s, uint8_t out[16]);

static void device_spec_free(struct device_spec *spec)
{
	free(spec->region);
	free(spec->name);
	*spec = (struct device_spec){};
}

static int set_string(char **field, const char *value)
{
	char *copy = strdup(value);

	if (!copy)
		return log_error_errno(-ENOMEM, "out of memory");
	free(*field);
	*field = copy;
	return 0;
}

void options_print_help(const char *argv0)
{
	printf("Usage: %s [OPTIONS]\n"
	       "\n"
	       "daxpoold owns a device-dax namespace and hands out slices of it over a Unix socket.\n"
	       "\n"
	       "  -c, --config FILE      JSON config file (default %s)\n"
	       "  -s, --socket PATH      listening socket (default %s)\n"
	       "  -f, --foreground       stay in the foreground (always so under systemd)\n"
	       "      --device PATH      serve a device-dax device, e.g. /dev/dax0.0\n"
	       "      --emulate PATH     serve an emulated pool in the file PATH\n"
	       "      --size BYTES       size of the emulated pool, e.g. 4G\n"
	       "      --page 4K|2M|1G    page size of the emulated pool (default 2M)\n"
	       "      --format-if-empty  write a new pool when the backend holds none\n"
	       "                         (default for --emulate; never over an existing pool)\n"
	       "      --no-format        refuse to start on a backend without a pool\n"
	       "      --busy-poll-us N   after a request, poll without sleeping for N µs (default 50, 0 = off)\n"
	       "      --records N        when formatting: room for N slices (64..67108864; default\n"
	       "                         one per 64 KiB of pool)\n"
	       "      --isolation MODE   auto|slice|owner|shared: how a client is confined to its\n"
	       "                         slices (default auto: slice where the backend can)\n"
	       "      --metrics-file PATH\n"
	       "                         write Prometheus metrics to PATH for node_exporter's\n"
	       "                         textfile collector (every metrics_interval_s, default 15 s)\n"
	       "  -l, --log-level LEVEL emerg..debug (default info)\n"
	       "  -h, --help             show this help\n"
	       "  -V, --version          show the version\n",
	       argv0, DAXPOOL_DEFAULT_CONFIG, DAXPOOL_DEFAULT_SOCKET);
}

static int config_get_string(json_object *v, const char *key, const char **ret)
{
	if (!json_object_is_type(v, json_type_string))
		return log_error_errno(-EINVAL, "config: \"%s\" must be a string", key);
	*ret = json_object_get_string(v);
	return 0;
}

/* Sizes may be written as a number of bytes or a string like "4G". */
static int config_get_size(json_object *v, const char *key, uint64_t *ret)
{
	if (json_object_is_type(v, json_type_int)) {
		int64_t n = json_object_get_int64(v);

		if (n <= 0)
			return log_error_errno(-EINVAL, "config: \"%s\" must be positive", key);
		*ret = (uint64_t)n;
		return 0;
	}
	if (json_object_is_type(v, json_type_string) && parse_size(json_object_get_string(v), ret) == 0)
		return 0;
	return log_error_errno(-EINVAL, "config: \"%s\" must be a size such as 4096 or \"4G\"", key);
}

static int config_load_backend(struct daxpoold_options *opts, json_object *backend)
{
	const char *type = NULL, *s = NULL;
	int r = 0;

	if (!json_object_is_type(backend, json_type_object))
		return log_error_errno(-EINVAL, "config: \"backend\" must be an object");
	json_object_object_foreach(backend, key, v)
	{
		if (strcmp(key, "type") == 0) {
			r = config_get_string(v, "backend.type", &type);
		} else if (strcmp(key, "device") == 0) {
			r = config_get_string(v, "backend.device", &s);
			if (r == 0)
				r = set_string(&opts->device_path, s);
		} else if (strcmp(key, "path") == 0) {
			r = config_get_string(v, "backend.path", &s);
			if (r == 0)
				r = set_string(&opts->emulate_path, s);
		} else if (strcmp(key, "size") == 0) {
			r = config_get_size(v, "backend.size", &opts->size);
		} else if (strcmp(key, "format_if_empty") == 0) {
			if (!json_object_is_type(v, json_type_boolean))
				r = log_error_errno(-EINVAL, "config: \"backend.format_if_empty\" must be true or false");
			else
				opts->format_if_empty = json_object_get_boolean(v), r = 0;
		} else if (strcmp(key, "uuid") == 0) {
			r = config_get_string(v, "backend.uuid", &s);
			if (r == 0 && parse_uuid(s, opts->expected_uuid) < 0)
				r = log_error_errno(-EINVAL, "config: \"backend.uuid\" must be a UUID such as 01234567-89ab-cdef-0123-456789abcdef");
			opts->has_expected_uuid = r == 0;
		} else if (strcmp(key, "page") == 0) {
			r = config_get_string(v, "backend.page", &s);
			if (r == 0 && parse_page_size(s, &opts->page_size) < 0)
				r = log_error_errno(-EINVAL, "config: \"backend.page\" must be 4K, 2M or 1G, not \"%s\"", s);
		} else {
			r = log_error_errno(-EINVAL, "config: unknown key \"backend.%s\"", key);
		}
		if (r < 0)
			return r;
	}
	if (!type)
		return log_error_errno(-EINVAL, "config: \"backend.type\" is required (\"devdax\" or \"emulated\")");
	if (strcmp(type, "devdax") == 0)
		opts->backend = BACKEND_DEVDAX;
	else if (strcmp(type, "emulated") == 0)
		opts->backend = BACKEND_EMULATED;
	else
		return log_error_errno(-EINVAL, "config: \"backend.type\" must be \"devdax\" or \"emulated\", not \"%s\"", type);
	return 0;
}

static int config_get_bool(json_object *v, const char *key, bool *ret)
{
	if (!json_object_is_type(v, json_type_boolean))
		return log_error_errno(-EINVAL, "config: \"%s\" must be true or false", key);
	*ret = json_object_get_boolean(v);
	return 0;
}

/* device.provision: { "region": "any", "name": "daxpool", "size": "4G", "align": "2M" } */
static int config_load_provision(struct device_spec *spec, json_object *prov)
{
	const char *s = NULL;
	int r = 0;

	if (!json_object_is_type(prov, json_type_object))
		return log_error_errno(-EINVAL, "config: \"device.provision\" must be an object");
	json_object_object_foreach(prov, key, v)
	{
		if (strcmp(key, "region") == 0) {
			r = config_get_string(v, "device.provision.region", &s);
			if (r == 0 && strcmp(s, "any") != 0 && strncmp(s, "region", 6) != 0 &&
			    strspn(s, "0123456789") != strlen(s))
				r = log_error_errno(-EINVAL, "config: \"device.provision.region\" must be \"any\" or a region such as \"region0\", not \"%s\"", s);
			if (r == 0)
				r = set_string(&spec->region, s);
		} else if (strcmp(key, "name") == 0) {
			r = config_get_string(v, "device.provision.name", &s);
			/* ndctl keeps the name in the namespace label (64 bytes with the NUL). */
			if (r == 0 && (!*s || strlen(s) > 63 ||
				       strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-") != strlen(s)))
				r = log_error_errno(-EINVAL, "config: \"device.provision.name\" must be 1..63 characters of A-Z a-z 0-9 _ . -");
			if (r == 0)
				r = set_string(&spec->name, s);
		} else if (strcmp(key, "size") == 0) {
			r = config_get_size(v, "device.provision.size", &spec->size);
		} else if (strcmp(key, "align") == 0) {
			r = config_get_string(v, "device.provision.align", &s);
			if (r == 0 && parse_page_size(s, &spec->align) < 0)
				r = log_error_errno(-EINVAL, "config: \"device.provision.align\" must be 4K, 2M or 1G, not \"%s\"", s);
		} else {
			r = log_error_errno(-EINVAL, "config: unknown key \"device.provision.%s\"", key);
		}
		if (r < 0)
			return r;
	}
	if (!spec->size)
		return log_error_errno(-EINVAL, "config: \"device.provision.size\" is required (usable bytes, e.g. \"4G\")");
	if (!spec->align)
		return log_error_errno(-EINVAL, "config: \"device.provision.align\" is required (4K, 2M or 1G)");
	if (spec->size % spec->align)
		return log_error_errno(-EINVAL, "config: \"device.provision.size\" %" PRIu64 " is not a multiple of \"device.provision.align\" %s",
				       spec->size, page_size_name(spec->align));
	if ((!spec->name && set_string(&spec->name, "daxpool") < 0) ||
	    (!spec->region && set_string(&spec->region, "any") < 0))
		return -ENOMEM;
	spec->provision = true;
	return 0;
}

/* The `device` section: the pool by UUID or by path, or a namespace to provision. */
static int config_load_device(struct daxpoold_options *opts, json_object *dev)
{
	struct device_spec *spec = &opts->device;
	const char *s = NULL;
	bool fmt = false;
	int r = 0;

	if (!json_object_is_type(dev, json_type_object))
		return log_error_errno(-EINVAL, "config: \"device\" must be an object");
	json_object_object_foreach(dev, key, v)
	{
		if (strcmp(key, "uuid") == 0) {
			r = config_get_string(v, "device.uuid", &s);
			if (r == 0 && parse_uuid(s, opts->expected_uuid) < 0)
				r = log_error_errno(-EINVAL, "config: \"device.uuid\" must be a UUID such as 01234567-89ab-cdef-0123-456789abcdef");
			opts->has_expected_uuid = r == 0;
		} else if (strcmp(key, "path") == 0) {
			r = config_get_string(v, "device.path", &s);
			if (r == 0 && strncmp(s, "/dev/", 5) != 0)
				r = log_error_errno(-EINVAL, "config: \"device.path\" must be a device path such as /dev/dax0.0");
			if (r == 0)
				r = set_string(&opts->device_path, s);
		} else if (strcmp(key, "format_if_empty") == 0) {
			r = config_get_bool(v, "device.format_if_empty", &fmt);
			if (r == 0)
				opts->format_if_empty = fmt;
		} else if (strcmp(key, "allow_reconfigure_system_ram") == 0) {
			r = config_get_bool(v, "device.allow_reconfigure_system_ram", &spec->allow_reconfigure_system_ram);
		} else if (strcmp(key, "provision") == 0) {
			r = config_load_provision(spec, v);
		} else {
			r = log_error_errno(-EINVAL, "config: unknown key \"device.%s\"", key);
		}
		if (r < 0)
			return r;
	}
	if (opts->device_path && spec->provision)
		return log_error_errno(-EINVAL, "config: \"device.path\" and \"device.provision\" are alternatives: a path names an existing device, provision creates one");
	if (!opts->device_path && !spec->provision && !opts->has_expected_uuid)
		return log_error_errno(-EINVAL, "config: \"device\" needs \"uuid\", \"path\" or \"provision\"");
	spec->set = true;
	opts->backend = BACKEND_DEVDAX;
	return 0;
}

static int config_get_uint(json_object *v, const char *key, unsigned max, unsigned *ret)
{
	int64_t n = json_object_get_int64(v);

	if (!json_object_is_type(v, json_type_int) || n < 0 || n > max)
		return log_error_errno(-EINVAL, "config: \"%s\" must be an integer in 0..%u", key, max);
	*ret = (unsigned)n;
	return 0;
}

static int config_get_quota(json_object *v, const char *key, struct quota *ret)
{
	struct quota q = {};
	int r = 0;

	if (!json_object_is_type(v, json_type_object))
		return log_error_errno(-EINVAL, "config: \"%s\" must be an object with \"bytes\" and/or \"slices\"", key);
	json_object_object_foreach(v, k, val)
	{
		if (strcmp(k, "bytes") == 0) {
			r = config_get_size(val, "quota.bytes", &q.bytes);
		} else if (strcmp(k, "slices") == 0) {
			int64_t n = json_object_get_int64(val);

			if (!json_object_is_type(val, json_type_int) || n < 1)
				r = log_error_errno(-EINVAL, "config: \"%s.slices\" must be a positive integer", key);
			else
				q.slices = (uint64_t)n;
		} else {
			r = log_error_errno(-EINVAL, "config: unknown key \"%s.%s\"", key, k);
		}
		if (r < 0)
			return r;
	}
	*ret = q;
	return 0;
}

/* "limits": { "connections_per_uid": 128, ... } (daemon/uid-limits.c); every key optional. */
static int config_load_limits(struct daxpoold_options *opts, json_object *v)
{
	static const struct {
		const char *key;
		size_t offset;
		unsigned min, max;
	} keys[] = {
		{ "connections_per_uid", offsetof(struct uid_limits, connections), 0, MAX_CLIENTS_LIMIT },
		{ "unauthenticated_per_uid", offsetof(struct uid_limits, unauthenticated), 0, MAX_CLIENTS_LIMIT },
		{ "hello_timeout_ms", offsetof(struct uid_limits, hello_timeout_ms), 50, 600000 },
		{ "handles_per_uid", offsetof(struct uid_limits, handles), 0, 1u << 24 },
		{ "holders_per_uid", offsetof(struct uid_limits, holders), 0, 1u << 20 },
		{ "pins_per_uid", offsetof(struct uid_limits, pins), 0, 1u << 24 },
		{ "inflight_per_uid", offsetof(struct uid_limits, inflight), 0, MAX_CLIENTS_LIMIT },
		{ "reserved_admin_connections", offsetof(struct uid_limits, reserved_admin), 0, MAX_CLIENTS_LIMIT - 1 },
		{ "requests_per_turn", offsetof(struct uid_limits, turn_requests), 1, 4096 },
		{ "carves_per_uid", offsetof(struct uid_limits, carves), 0, MAX_CLIENTS_LIMIT },
	};

	if (!json_object_is_type(v, json_type_object))
		return log_error_errno(-EINVAL, "config: \"limits\" must be an object");
	json_object_object_foreach(v, key, val)
	{
		size_t i;

		for (i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
			if (strcmp(key, keys[i].key) == 0)
				break;
		if (i == sizeof(keys) / sizeof(keys[0]))
			return log_error_errno(-EINVAL, "config: unknown key \"limits.%s\"", key);
		int64_t n = json_object_get_int64(val);

		if (!json_object_is_type(val, json_type_int) || n < keys[i].min || n > keys[i].max)
			return log_error_errno(-EINVAL, "config: \"limits.%s\" must be an integer in %u..%u",
					       key, keys[i].min, keys[i].max);
		*(unsigned *)((char *)&opts->limits + keys[i].offset) = (unsigned)n;
	}
	return 0;
}

/* "quotas": { "1000": {...}, "alice": {...} } — users by uid or by name. */
static int config_load_quotas(struct daxpoold_options *opts, json_object *v)
{
	size_t n = 0;
	int r = 0;

	if (!json_object_is_type(v, json_type_object))
		return log_error_errno(-EINVAL, "config: \"quotas\" must be an object of user → quota");
	free(opts->quotas);
	opts->quotas = calloc((size_t)json_object_object_length(v) + 1, sizeof(*opts->quotas));
	opts->n_quotas = 0;
	if (!opts->quotas)
		return log_error_errno(-ENOMEM, "out of memory");
	json_object_object_foreach(v, user, q)
	{
		struct quota_entry *e = &opts->quotas[n];
		char *end;
		unsigned long uid = strtoul(user, &end, 10);

		if (*user && !*end && uid < UINT32_MAX) {
			e->uid = (uid_t)uid;
		} else {
			struct passwd *pw = getpwnam(user);

			if (!pw)
				return log_error_errno(-EINVAL, "config: \"quotas\": no user \"%s\"", user);
			e->uid = pw->pw_uid;
		}
		r = config_get_quota(q, "quotas entry", &e->quota);
		if (r < 0)
			return r;
		n++;
		opts->n_quotas = n;
	}
	return 0;
}

struct quota options_quota_for(const struct daxpoold_options *opts, uid_t uid)
{
	for (size_t i = 0; i < opts->n_quotas; i++)
		if (opts->quotas[i].uid == uid)
			return opts->quotas[i].quota;
	return opts->default_quota;
}

/* A UUID: 32 hex digits, with dashes where the writer liked them (the canonical form, or none at
 * all); 0 or -EINVAL. */
static int parse_uuid(const char *s, uint8_t out[16])
{
	char canon[37];
	size_t n = 0;

	for (const char *p = s; *p; p++) {
		if (*p == '-')
			continue;
		if (n == 36)
			return -EINVAL;
		if (n == 8 || n == 13 || n == 18 || n == 23)
			canon[n++] = '-';
		canon[n++] = *p;
	}
	canon[n] = '\0';
	return n == 36 && uuid_parse(canon, out) == 0 ? 0 : -EINVAL;
}

/* ---- the config's top-level keys ------------------------------------------------------------- */

struct config_key;
typedef int (*config_parser)(struct daxpoold_options *opts, const struct config_key *k,
			     json_object *v);
struct config_key {
	const char *name;
	config_parser parse;
	size_t field;	   /* the field of struct daxpoold_options the generic parsers set */
	unsigned min, max; /* config_uint */
};
#define FIELD(f) offsetof(struct daxpoold_options, f)
#define AT(opts, k, type) ((type *)(void *)((char *)(opts) + (k)->field))

static int config_string(struct daxpoold_options *opts, const struct config_key *k, json_object *v)
{
	const char *s;
	int r = config_get_string(v, k->name, &s);

	return r < 0 ? r : set_string(AT(opts, k, char *), s);
}

static int config_abs_path(struct daxpoold_options *opts, const struct config_key *k, json_object *v)
{
	const char *s;
	int r = config_get_string(v, k->name, &s);

	if (r == 0 && s[0] != '/')
		r = log_error_errno(-EINVAL, "config: \"%s\" must be an absolute path", k->name);
	return r < 0 ? r : set_string(AT(opts, k, char *), s);
}

static int config_uint(struct daxpoold_options *opts, const struct config_key *k, json_object *v)
{
	int64_t n = json_object_get_int64(v);

	if (!json_object_is_type(v, json_type_int) || n < k->min || n > k->max)
		return log_error_errno(-EINVAL, "config: \"%s\" must be an integer in %u..%u", k->name,
				       k->min, k->max);
	*AT(opts, k, unsigned) = (unsigned)n;
	return 0;
}

static int config_socket_mode(struct daxpoold_options *opts, const struct config_key *k, json_object *v)
{
	const char *s;
	int r = config_get_string(v, k->name, &s);

	if (r == 0 && parse_mode(s, &opts->socket_mode) < 0)
		r = log_error_errno(-EINVAL, "config: \"socket_mode\" must be an octal mode such as \"0660\"");
	return r;
}

static int config_log_level(struct daxpoold_options *opts, const struct config_key *k, json_object *v)
{
	const char *s;
	int r = config_get_string(v, k->name, &s);

	if (r == 0 && parse_log_level(s, &opts->log_level) < 0)
		r = log_error_errno(-EINVAL, "config: \"log_level\" must be emerg..debug, not \"%s\"", s);
	return r;
}

static int config_backend(struct daxpoold_options *opts, const struct config_key *k, json_object *v)
{
	(void)k;
	return config_load_backend(opts, v);
}

static int config_device(struct daxpoold_options *opts, const struct config_key *k, json_object *v)
{
	(void)k;
	return config_load_device(opts, v);
}

static int config_records(struct daxpoold_options *opts, const struct config_key *k, json_object *v)
{
	int r = config_get_uint(v, k->name, RECORDS_MAX, &opts->records);

	if (r == 0 && opts->records && opts->records < RECORDS_MIN)
		r = log_error_errno(-EINVAL, "config: \"records\" must be %u..%u (or 0 for the default)",
				    RECORDS_MIN, RECORDS_MAX);
	return r;
}

static int config_isolation(struct daxpoold_options *opts, const struct config_key *k, json_object *v)
{
	const char *s;
	int r = config_get_string(v, k->name, &s);

	if (r == 0 && !isolation_name_valid(s))
		r = log_error_errno(-EINVAL, "config: \"isolation\" must be \"auto\", \"slice\", \"owner\" or \"shared\", not \"%s\"", s);
	return r < 0 ? r : set_string(&opts->isolation, s);
}

static int config_tenant(struct daxpoold_options *opts, const struct config_key *k, json_object *v)
{
	const char *s;
	int r = config_get_string(v, k->name, &s);

	if (r == 0 && (!s[0] || strlen(s) > 64))
		r = log_error_errno(-EINVAL, "config: \"tenant\" must be a user name or uid");
	return r < 0 ? r : set_string(&opts->tenant, s);
}

static int config_quota(struct daxpoold_options *opts, const struct config_key *k, json_object *v)
{
	return config_get_quota(v, k->name, &opts->default_quota);
}

static int config_quotas(struct daxpoold_options *opts, const struct config_key *k, json_object *v)
{
	(void)k;
	return config_load_quotas(opts, v);
}

static int config_limits(struct daxpoold_options *opts, const struct config_key *k, json_object *v)
{
	(void)k;
	return config_load_limits(opts, v);
}

/* Every top-level key of the config file (docs/CONFIG.md, daxpool.json(5)). */
static const struct config_key config_keys[] = {
	{ "socket", config_string, FIELD(socket_path), 0, 0 },
	{ "socket_mode", config_socket_mode, 0, 0, 0 },
	{ "log_level", config_log_level, 0, 0, 0 },
	{ "max_clients", config_uint, FIELD(max_clients), 1, MAX_CLIENTS_LIMIT },
	{ "backend", config_backend, 0, 0, 0 },
	{ "device", config_device, 0, 0, 0 },
	{ "runtime_dir", config_abs_path, FIELD(runtime_dir), 0, 0 },
	{ "admin_group", config_string, FIELD(admin_group), 0, 0 },
	{ "pin_grace_ms", config_uint, FIELD(pin_grace_ms), 0, 600000 },
	{ "send_timeout_s", config_uint, FIELD(send_timeout_s), 1, 3600 },
	{ "idle_timeout_s", config_uint, FIELD(idle_timeout_s), 0, 86400 * 365 },
	{ "metrics_file", config_abs_path, FIELD(metrics_file), 0, 0 },
	{ "metrics_interval_s", config_uint, FIELD(metrics_interval_s), 1, 3600 },
	{ "records", config_records, 0, 0, 0 },
	{ "busy_poll_us", config_uint, FIELD(busy_poll_us), 0, 100000 },
	{ "isolation", config_isolation, 0, 0, 0 },
	{ "tenant", config_tenant, 0, 0, 0 },
	{ "quota", config_quota, 0, 0, 0 },
	{ "quotas", config_quotas, 0, 0, 0 },
	{ "limits", config_limits, 0, 0, 0 },
};

int options_load_config(struct daxpoold_options *opts, const char *path)
{
	json_object *root;
	int r = 0;

	root = json_object_from_file(path);
	if (!root)
		return log_error_errno(-EINVAL, "config %s: %s", path, json_util_get_last_err());
	if (!json_object_is_type(root, json_type_object)) {
		json_object_put(root);
		return log_error_errno(-EINVAL, "config %s: top level must be an object", path);
	}
	json_object_object_foreach(root, key, v)
	{
		const struct config_key *k = NULL;

		for (size_t i = 0; i < ARRAY_SIZE(config_keys) && !k; i++)
			if (strcmp(key, config_keys[i].name) == 0)
				k = &config_keys[i];
		r = k ? k->parse(opts, k, v) : log_error_errno(-EINVAL, "config: unknown key \"%s\"", key);
		if (r < 0)
			break;
	}
	if (r == 0 && json_object_object_get_ex(root, "backend", NULL) && opts->device.set)
		r = log_error_errno(-EINVAL, "config: \"backend\" and \"device\" are alternatives: use \"device\" for device-dax");
	json_object_put(root);
	if (r < 0)
		return log_error_errno(r, "config %s is invalid", path);
	return 0;
}

int options_validate(const struct daxpoold_options *opts)
{
	if (!opts->socket_path || opts->socket_path[0] != '/')
		return log_error_errno(-EINVAL, "socket path must be absolute");
	if (strlen(opts->socket_path) >= sizeof(((struct sockaddr_un *)0)->sun_path))
		return log_error_errno(-ENAMETOOLONG, "socket path %s is too long (at most %zu bytes)",
				       opts->socket_path, sizeof(((struct sockaddr_un *)0)->sun_path) - 1);
	switch (opts->backend) {
	case BACKEND_DEVDAX:
		/* With a device section the path may be found (by UUID) or created at start. */
		if ((!opts->device.set || opts->device_path) &&
		    (!opts->device_path || strncmp(opts->device_path, "/dev/", 5) != 0))
			return log_error_errno(-EINVAL, "--device needs a device path such as /dev/dax0.0");
		if (opts->emulate_path || opts->size)
			return log_error_errno(-EINVAL, "--device cannot be combined with --emulate/--size");
		break;
	case BACKEND_EMULATED:
		if (!opts->emulate_path || opts->emulate_path[0] != '/')
			return log_error_errno(-EINVAL, "--emulate needs an absolute file path");
		if (opts->device_path)
			return log_error_errno(-EINVAL, "--emulate cannot be combined with --device");
		if (!opts->size)
			return log_error_errno(-EINVAL, "--emulate needs --size");
		if (opts->size % opts->page_size)
			return log_error_errno(-EINVAL, "--size %" PRIu64 " is not a multiple of the page size %s",
					       opts->size, page_size_name(opts->page_size));
		break;
	case BACKEND_NONE:
	default:
		if (opts->size || opts->device_path || opts->emulate_path)
			return log_error_errno(-EINVAL, "--size/--page need --emulate");
		/* It starts (status answers) but cannot serve a slice: say exactly what to set. */
		log_warning("no pool configured, every ALLOC will fail with ENODEV: %s %s. Set "
			    "\"backend\": { \"type\": \"emulated\", \"path\": \"/var/lib/daxpool/emulated.pool\", "
			    "\"size\": \"256M\", \"page\": \"4K\" } there (needs no device-dax and no huge pages), "
			    "or \"backend\": { \"type\": \"devdax\", \"device\": \"/dev/daxX.Y\" }, or a \"device\" "
			    "section; or start with --emulate FILE --size 256M --page 4K, or --device /dev/daxX.Y "
			    "(daxpool.json(5), daxpoold(8))",
			    opts->config_path ? opts->config_path : "the config file",
			    opts->config_path && access(opts->config_path, F_OK) == 0
				    ? "has neither a \"backend\" nor a \"device\" section"
				    : "does not exist");
		break;
	}
	return 0;
}

enum {
	OPT_DEVICE = 0x100,
	OPT_EMULATE,
	OPT_SIZE,
	OPT_PAGE,
	OPT_FORMAT,
	OPT_NO_FORMAT,
	OPT_BUSY_POLL,
	OPT_ISOLATION,
	OPT_METRICS_FILE,
	OPT_RECORDS,
};

bool isolation_name_valid(const char *name)
{
	static const char *const names[] = { "auto", "slice", "owner", "shared" };

	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (strcmp(name, names[i]) == 0)
			return true;
	return false;
}

void options_defaults(struct daxpoold_options *opts)
{
	*opts = (struct daxpoold_options){
		.socket_mode = 0660,
		.log_level = LOG_INFO,
		.max_clients = 1024,
		.limits = LIMITS_DEFAULTS,
		.page_size = 2u << 20,
		.format_if_empty = -1,
		.pin_grace_ms = 1000,
		.send_timeout_s = 30,
		.busy_poll_us = 50,
	};
}

/* The command line, collected before the config file is read and applied over it afterwards. */
struct cmdline {
	const char *socket, *device, *emulate, *config, *isolation, *metrics_file;
	uint64_t size, page;
	int level, format;
	long busy_poll, records;
	bool foreground, page_given;
};

static int cmdline_parse(struct daxpoold_options *opts, int argc, char **argv, struct cmdline *cl)
{
	static const struct option long_options[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "socket", required_argument, NULL, 's' },
		{ "foreground", no_argument, NULL, 'f' },
		{ "device", required_argument, NULL, OPT_DEVICE },
		{ "emulate", required_argument, NULL, OPT_EMULATE },
		{ "size", required_argument, NULL, OPT_SIZE },
		{ "page", required_argument, NULL, OPT_PAGE },
		{ "format-if-empty", no_argument, NULL, OPT_FORMAT },
		{ "no-format", no_argument, NULL, OPT_NO_FORMAT },
		{ "busy-poll-us", required_argument, NULL, OPT_BUSY_POLL },
		{ "isolation", required_argument, NULL, OPT_ISOLATION },
		{ "metrics-file", required_argument, NULL, OPT_METRICS_FILE },
		{ "records", required_argument, NULL, OPT_RECORDS },
		{ "log-level", required_argument, NULL, 'l' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{}
	};
	int c, r;

	*cl = (struct cmdline){ .level = -1, .format = -1, .busy_poll = -1, .records = -1 };
	optind = 1;
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":c:s:fl:hV", long_options, NULL)) >= 0) {
		switch (c) {
		case 'c':
			cl->config = optarg;
			break;
		case 's':
			cl->socket = optarg;
			break;
		case 'f':
			cl->foreground = true;
			break;
		case OPT_DEVICE:
			cl->device = optarg;
			break;
		case OPT_EMULATE:
			cl->emulate = optarg;
			break;
		case OPT_SIZE:
			r = parse_size(optarg, &cl->size);
			if (r < 0 || cl->size == 0)
				return log_error_errno(-EINVAL, "--size: \"%s\" is not a size such as 4G", optarg);
			break;
		case OPT_PAGE:
			if (parse_page_size(optarg, &cl->page) < 0)
				return log_error_errno(-EINVAL, "--page: must be 4K, 2M or 1G, not \"%s\"", optarg);
			cl->page_given = true;
			break;
		case OPT_FORMAT:
			cl->format = 1;
			break;
		case OPT_NO_FORMAT:
			cl->format = 0;
			break;
		case OPT_BUSY_POLL: {
			char *end;

			errno = 0;
			cl->busy_poll = strtol(optarg, &end, 10);
			if (errno || end == optarg || *end || cl->busy_poll < 0 || cl->busy_poll > 100000)
				return log_error_errno(-EINVAL, "--busy-poll-us: must be 0..100000, not \"%s\"", optarg);
			break;
		}
		case OPT_RECORDS: {
			char *end;

			errno = 0;
			cl->records = strtol(optarg, &end, 10);
			if (errno || end == optarg || *end || cl->records < RECORDS_MIN || cl->records > RECORDS_MAX)
				return log_error_errno(-EINVAL, "--records: must be %u..%u, not \"%s\"",
						       RECORDS_MIN, RECORDS_MAX, optarg);
			break;
		}
		case OPT_METRICS_FILE:
			if (optarg[0] != '/')
				return log_error_errno(-EINVAL, "--metrics-file: must be an absolute path, not \"%s\"", optarg);
			cl->metrics_file = optarg;
			break;
		case OPT_ISOLATION:
			if (!isolation_name_valid(optarg))
				return log_error_errno(-EINVAL, "--isolation: must be auto, slice, owner or shared, not \"%s\"", optarg);
			cl->isolation = optarg;
			break;
		case 'l':
			if (parse_log_level(optarg, &cl->level) < 0)
				return log_error_errno(-EINVAL, "--log-level: must be emerg..debug, not \"%s\"", optarg);
			break;
		case 'h':
			opts->show_help = true;
			return 0;
		case 'V':
			opts->show_version = true;
			return 0;
		case ':':
			return log_error_errno(-EINVAL, "option %s needs an argument", argv[optind - 1]);
		case '?':
		default:
			return log_error_errno(-EINVAL, "unknown option %s (see --help)", argv[optind - 1]);
		}
	}
	if (optind < argc)
		return log_error_errno(-EINVAL, "unexpected argument \"%s\" (see --help)", argv[optind]);
	return 0;
}

/* What the command line says, over the config file's values. */
static int cmdline_apply(struct daxpoold_options *opts, const struct cmdline *cl)
{
	int r;

	if (!opts->socket_path || cl->socket) {
		r = set_string(&opts->socket_path, cl->socket ? cl->socket : DAXPOOL_DEFAULT_SOCKET);
		if (r < 0)
			return r;
	}
	opts->foreground = cl->foreground;
	if (cl->busy_poll >= 0)
		opts->busy_poll_us = (unsigned)cl->busy_poll;
	if (cl->records >= 0)
		opts->records = (unsigned)cl->records;
	if (cl->metrics_file && set_string(&opts->metrics_file, cl->metrics_file) < 0)
		return log_error_errno(-ENOMEM, "out of memory");
	if (cl->isolation) {
		r = set_string(&opts->isolation, cl->isolation);
		if (r < 0)
			return r;
	}
	if (cl->level >= 0)
		opts->log_level = cl->level;
	/* A backend on the command line replaces the config file's backend as a whole. */
	if (cl->device || cl->emulate) {
		free(opts->device_path);
		free(opts->emulate_path);
		opts->device_path = cl->device ? strdup(cl->device) : NULL;
		opts->emulate_path = cl->emulate ? strdup(cl->emulate) : NULL;
		if ((cl->device && !opts->device_path) || (cl->emulate && !opts->emulate_path))
			return log_error_errno(-ENOMEM, "out of memory");
		opts->backend = cl->device ? BACKEND_DEVDAX : BACKEND_EMULATED;
		opts->size = 0;
		device_spec_free(&opts->device);
		if (cl->device && cl->emulate)
			return log_error_errno(-EINVAL, "--device and --emulate are mutually exclusive");
	}
	if (cl->size)
		opts->size = cl->size;
	if (cl->page_given) {
		if (opts->backend != BACKEND_EMULATED)
			return log_error_errno(-EINVAL, "--page needs --emulate");
		opts->page_size = cl->page;
	}
	if (cl->size && opts->backend != BACKEND_EMULATED)
		return log_error_errno(-EINVAL, "--size needs --emulate");
	if (cl->format >= 0)
		opts->format_if_empty = cl->format;
	return 0;
}

/* The defaults that follow from the rest. */
static int options_derive(struct daxpoold_options *opts)
{
	if (opts->format_if_empty < 0)
		opts->format_if_empty = opts->backend == BACKEND_EMULATED;
	if (!opts->admin_group && set_string(&opts->admin_group, "daxpool-admin") < 0)
		return -ENOMEM;
	if (!opts->runtime_dir) {
		_cleanup_(freep) char *copy = strdup(opts->socket_path);

		if (!copy || set_string(&opts->runtime_dir, dirname(copy)) < 0)
			return log_error_errno(-ENOMEM, "out of memory");
	}
	return 0;
}

int options_parse(struct daxpoold_options *opts, int argc, char **argv)
{
	struct cmdline cl;
	int r;

	options_defaults(opts);
	r = cmdline_parse(opts, argc, argv, &cl);
	if (r < 0 || opts->show_help || opts->show_version)
		return r;
	r = set_string(&opts->config_path, cl.config ? cl.config : DAXPOOL_DEFAULT_CONFIG);
	if (r < 0)
		return r;
	opts->config_explicit = cl.config != NULL;
	if (opts->config_explicit || access(opts->config_path, F_OK) == 0) {
		r = options_load_config(opts, opts->config_path);
		if (r < 0)
			return r;
	}
	r = cmdline_apply(opts, &cl);
	if (r == 0)
		r = options_derive(opts);
	return r < 0 ? r : options_validate(opts);
}

void options_free(struct daxpoold_options *opts)
{
	device_spec_free(&opts->device);
	free(opts->config_path);
	free(opts->socket_path);
	free(opts->device_path);
	free(opts->emulate_path);
	free(opts->runtime_dir);
	free(opts->isolation);
	free(opts->metrics_file);
	free(opts->tenant);
	free(opts->admin_group);
	free(opts->quotas);
	*opts = (struct daxpoold_options){};
}
