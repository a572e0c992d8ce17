/* daxpoolctl regions, devices, create, destroy: device-dax namespaces through libndctl/libdaxctl. */
#include "proc-util.h"
#include "daxpoolctl.h"
#include "log.h"
#include "macro.h"
#include "namespace.h"
#include "parse-util.h"
#include "pool.h"

#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>


static void ctxp(struct namespace_ctx **c)
{
	namespace_ctx_delete(c);
}

static int open_ctx(struct namespace_ctx **ret)
{
	if (namespace_ctx_new(ret) < 0) {
		log_error("%s", namespace_errormsg());
		return CTL_EXIT_FAILURE;
	}
	return CTL_EXIT_OK;
}

/*
 * What regions and devices do before they list: only the common options, no operands, a libndctl
 * context in *ret. Returns an exit code like ctl_parse_options (CTL_EXIT_OK to go on; -1 when
 * --help was printed, which exits 0); one place, so the listing commands cannot drift apart.
 */
static int listing_begin(struct ctl *ctl, const char *cmd, int argc, char **argv,
			 struct namespace_ctx **ret)
{
	int r, first;

	r = ctl_parse_options(ctl, argc, argv, "", NULL, NULL, NULL, &first);
	if (r != CTL_EXIT_OK)
		return r;
	r = ctl_check_operands(cmd, argc - first, 0, 0);
	if (r != CTL_EXIT_OK)
		return r;
	return open_ctx(ret);
}

static const char *align_name(uint64_t a, char *buf, size_t size)
{
	const char *n = page_size_name(a);

	if (n)
		return n;
	snprintf(buf, size, "%" PRIu64, a);
	return buf;
}

/* ---- regions ----------------------------------------------------------------------------- */

static int region_one(const struct namespace_region_info *info, void *userdata)
{
	struct json_object *o = json_object_new_object(), *aligns = json_object_new_array();
	char b[32];

	json_object_object_add(o, "name", json_object_new_string(info->name));
	json_object_object_add(o, "size", json_object_new_uint64(info->size));
	json_object_object_add(o, "available", json_object_new_uint64(info->available));
	json_object_object_add(o, "max_extent", json_object_new_uint64(info->max_extent));
	json_object_object_add(o, "align", json_object_new_uint64(info->align));
	json_object_object_add(o, "interleave_ways", json_object_new_int((int)info->interleave_ways));
	json_object_object_add(o, "enabled", json_object_new_boolean(info->enabled));
	json_object_object_add(o, "readonly", json_object_new_boolean(info->readonly));
	json_object_object_add(o, "labels", json_object_new_boolean(info->labels));
	for (size_t i = 0; i < info->n_dax_aligns; i++)
		json_object_array_add(aligns, json_object_new_string(align_name(info->dax_aligns[i], b, sizeof(b))));
	json_object_object_add(o, "dax_aligns", aligns);
	json_object_object_add(o, "namespaces", json_object_new_int((int)info->namespaces));
	json_object_array_add(userdata, o);
	return 0;
}

int cmd_regions(struct ctl *ctl, int argc, char **argv)
{
	_cleanup_(ctxp) struct namespace_ctx *ns = NULL;
	_cleanup_(json_object_putp) struct json_object *array = json_object_new_array();
	int r = listing_begin(ctl, "regions", argc, argv, &ns);

	if (r != CTL_EXIT_OK)
		return r < 0 ? CTL_EXIT_OK : r;
	namespace_region_foreach(ns, region_one, array);
	if (ctl->json) {
		ctl_print_json(array);
		return CTL_EXIT_OK;
	}
	if (json_object_array_length(array) == 0) {
		printf("no persistent-memory regions\n");
		return CTL_EXIT_OK;
	}
	printf("%-10s %10s %10s %10s %4s %-8s %-10s %s\n", "REGION", "SIZE", "AVAILABLE", "LARGEST",
	       "NS", "STATE", "DAX ALIGN", "LABELS");
	for (size_t i = 0; i < json_object_array_length(array); i++) {
		struct json_object *o = json_object_array_get_idx(array, i), *al;
		char s1[32], s2[32], s3[32], list[64] = "";

		json_object_object_get_ex(o, "dax_aligns", &al);
		for (size_t k = 0; k < json_object_array_length(al); k++)
			snprintf(list + strlen(list), sizeof(list) - strlen(list), "%s%s", k ? "," : "",
				 json_object_get_string(json_object_array_get_idx(al, k)));
#define U(k) json_object_get_uint64(json_object_object_get(o, k))
#define B(k) json_object_get_boolean(json_object_object_get(o, k))
		printf("%-10s %10s %10s %10s %4d %-8s %-10s %s\n",
		       json_object_get_string(json_object_object_get(o, "name")),
		       ctl_format_bytes(U("size"), s1, sizeof(s1)), ctl_format_bytes(U("available"), s2, sizeof(s2)),
		       ctl_format_bytes(U("max_extent"), s3, sizeof(s3)), (int)U("namespaces"),
		       !B("enabled") ? "disabled" : B("readonly") ? "ro" : "enabled", *list ? list : "-",
		       B("labels") ? "yes" : "no");
	}
	return CTL_EXIT_OK;
}

/* ---- devices ----------------------------------------------------------------------------- */

/* Whether the device (mapping unit align) holds a daxpool pool, damaged or not: 1 yes, 0 no, -1
 * unknown (cannot open or map it). */
static int holds_pool(const char *path, uint64_t align)
{
	_cleanup_(closep) int fd = open(path, O_RDONLY | O_CLOEXEC);
	int r;

	if (fd < 0)
		return -1;
	r = pool_probe_fd(fd, align, NULL);
	return r < 0 ? -1 : r;
}

static struct json_object *device_json(const struct namespace_device_info *info)
{
	struct json_object *o = json_object_new_object();
	char path[64], b[32];
	pid_t pid = 0;
	int n, pool = -1;

	snprintf(path, sizeof(path), "/dev/%s", info->name);
	n = proc_path_users(path, &pid, 1);
	if (info->enabled && !info->system_ram)
		pool = holds_pool(path, info->align);
	json_object_object_add(o, "name", json_object_new_string(info->name));
	json_object_object_add(o, "path", json_object_new_string(path));
	json_object_object_add(o, "region", json_object_new_string(info->region));
	json_object_object_add(o, "namespace", info->namespace ? json_object_new_string(info->namespace) : NULL);
	json_object_object_add(o, "size", json_object_new_uint64(info->size));
	json_object_object_add(o, "align", json_object_new_string(align_name(info->align, b, sizeof(b))));
	json_object_object_add(o, "mode", json_object_new_string(info->system_ram ? "system-ram" : "devdax"));
	json_object_object_add(o, "enabled", json_object_new_boolean(info->enabled));
	json_object_object_add(o, "daxpool_pool", pool < 0 ? NULL : json_object_new_boolean(pool));
	json_object_object_add(o, "in_use_by", n > 0 ? json_object_new_int(pid) : NULL);
	return o;
}

static int device_one(const struct namespace_device_info *info, void *userdata)
{
	json_object_array_add(userdata, device_json(info));
	return 0;
}

int cmd_devices(struct ctl *ctl, int argc, char **argv)
{
	_cleanup_(ctxp) struct namespace_ctx *ns = NULL;
	_cleanup_(json_object_putp) struct json_object *array = json_object_new_array();
	int r = listing_begin(ctl, "devices", argc, argv, &ns);

	if (r != CTL_EXIT_OK)
		return r < 0 ? CTL_EXIT_OK : r;
	namespace_device_foreach(ns, device_one, array);
	if (ctl->json) {
		ctl_print_json(array);
		return CTL_EXIT_OK;
	}
	if (json_object_array_length(array) == 0) {
		printf("no device-dax devices\n");
		return CTL_EXIT_OK;
	}
	printf("%-10s %-10s %-14s %10s %5s %-10s %-5s %s\n", "DEVICE", "REGION", "NAMESPACE", "SIZE",
	       "ALIGN", "MODE", "POOL", "IN USE BY");
	for (size_t i = 0; i < json_object_array_length(array); i++) {
		struct json_object *o = json_object_array_get_idx(array, i), *v;
		char s[32], pid[16] = "-";
		const char *pool = "?";

		if (json_object_object_get_ex(o, "daxpool_pool", &v) && v)
			pool = json_object_get_boolean(v) ? "yes" : "no";
		if (json_object_object_get_ex(o, "in_use_by", &v) && v)
			snprintf(pid, sizeof(pid), "%d", json_object_get_int(v));
#define S(k) (json_object_get_string(json_object_object_get(o, k)) ?: "-")
		printf("%-10s %-10s %-14s %10s %5s %-10s %-5s %s\n", S("name"), S("region"), S("namespace"),
		       ctl_format_bytes(U("size"), s, sizeof(s)), S("align"), S("mode"), pool, pid);
	}
	return CTL_EXIT_OK;
}

/* ---- create ------------------------------------------------------------------------------ */

struct create_args {
	const char *region;
	uint64_t size, align;
};

static int create_option(int c, const char *arg, void *userdata)
{
	struct create_args *a = userdata;

	switch (c) {
	case 'r':
		if (!*arg) {
			log_error("--region: empty");
			return CTL_EXIT_USAGE;
		}
		a->region = arg;
		return CTL_EXIT_OK;
	case 's':
		return ctl_parse_size("--size", arg, &a->size);
	case 'a':
		return ctl_parse_align("--align", arg, &a->align);
	}
	return CTL_EXIT_USAGE;
}

int cmd_create(struct ctl *ctl, int argc, char **argv)
{
	static const struct option options[] = {
		{ "region", required_argument, NULL, 'r' }, { "size", required_argument, NULL, 's' },
		{ "align", required_argument, NULL, 'a' },  {}
	};
	_cleanup_(ctxp) struct namespace_ctx *ns = NULL;
	struct create_args a = {};
	struct namespace_device_info info;
	char name[64];
	int r, first;

	r = ctl_parse_options(ctl, argc, argv, "r:s:a:", options, create_option, &a, &first);
	if (r != CTL_EXIT_OK)
		return r < 0 ? CTL_EXIT_OK : r;
	if ((r = ctl_check_operands("create", argc - first, 0, 0)) != CTL_EXIT_OK)
		return r;
	if (!a.region || !a.size || !a.align) {
		log_error("create: --region, --size and --align are required (see daxpoolctl help create)");
		return CTL_EXIT_USAGE;
	}
	if (a.size % a.align) {
		log_error("--size: %" PRIu64 " bytes is not a multiple of the --align %s", a.size,
			  page_size_name(a.align));
		return CTL_EXIT_USAGE;
	}
	if ((r = open_ctx(&ns)) != CTL_EXIT_OK)
		return r;
	r = namespace_create_devdax(ns, a.region, a.size, a.align, name, sizeof(name));
	if (r < 0) {
		log_error("create: %s", namespace_errormsg());
		return CTL_EXIT_FAILURE;
	}
	if (namespace_device_lookup(ns, name, &info) < 0) {
		printf("created /dev/%s\n", name);
		return CTL_EXIT_OK;
	}
	if (ctl->json) {
		_cleanup_(json_object_putp) struct json_object *o = device_json(&info);
		ctl_print_json(o);
	} else {
		char s[32], b[32];
		printf("created /dev/%s (%s, %s aligned, %s in %s)\n", name,
		       ctl_format_bytes(info.size, s, sizeof(s)), align_name(info.align, b, sizeof(b)),
		       info.namespace ? info.namespace : "?", info.region);
	}
	return CTL_EXIT_OK;
}

/* ---- destroy ----------------------------------------------------------------------------- */

static int destroy_option(int c, const char *arg, void *userdata)
{
	if (c == 'f') {
		*(bool *)userdata = true;
		return CTL_EXIT_OK;
	}
	return CTL_EXIT_USAGE;
}

int cmd_destroy(struct ctl *ctl, int argc, char **argv)
{
	static const struct option options[] = { { "force", no_argument, NULL, 'f' }, {} };
	_cleanup_(ctxp) struct namespace_ctx *ns = NULL;
	struct namespace_device_info info;
	bool force = false;
	char path[80], name[64];
	int r, first;

	r = ctl_parse_options(ctl, argc, argv, "f", options, destroy_option, &force, &first);
	if (r != CTL_EXIT_OK)
		return r < 0 ? CTL_EXIT_OK : r;
	if ((r = ctl_check_operands("destroy", argc - first, 1, 1)) != CTL_EXIT_OK)
		return r;
	if ((r = open_ctx(&ns)) != CTL_EXIT_OK)
		return r;
	if (namespace_device_lookup(ns, argv[first], &info) < 0) {
		log_error("destroy: %s", namespace_errormsg());
		return CTL_EXIT_FAILURE;
	}
	snprintf(name, sizeof(name), "%s", info.name);
	snprintf(path, sizeof(path), "/dev/%s", name);
	if (info.system_ram) {
		log_error("destroy: %s is onlined as system RAM: offline it and reconfigure it to devdax first",
			  name);
		return CTL_EXIT_FAILURE;
	}
	/* Not even with --force: disabling a device with pinned pages oopses the kernel later
	 * (docs/VERIFICATION.md). */
	r = ctl_refuse_if_in_use(path, "stop daxpoold and its clients first (never destroyed while in use)");
	if (r != CTL_EXIT_OK)
		return r;
	if (holds_pool(path, info.align) == 1 && !force) {
		log_error("destroy: %s holds a daxpool pool; --force destroys it with every slice in it", path);
		return CTL_EXIT_FAILURE;
	}
	if (namespace_destroy_devdax(ns, name) < 0) {
		log_error("destroy: %s", namespace_errormsg());
		return CTL_EXIT_FAILURE;
	}
	return ctl_print_done(ctl, "name", name, "destroyed");
}
