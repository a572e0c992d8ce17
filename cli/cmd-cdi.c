/*
 * daxpoolctl cdi: a Container Device Interface spec for daxpool's slices, so that a container
 * engine that reads CDI (podman, CRI-O, containerd) can hand a container "a slice" by name:
 *
 *   daxpoolctl cdi --output /etc/cdi/daxpool.json
 *   podman run --device daxpool.io/slice=NAME ...
 *
 * Every device injects the daemon's socket (a bind mount of the socket itself) and
 * DAXPOOL_SOCKET; a slice's device also sets DAXPOOL_SLICE=NAME. No device node is injected:
 * the process in the container receives the slice's descriptor from daxpoold over the socket
 * (SCM_RIGHTS), and mapping a received descriptor needs neither the node nor a device cgroup
 * rule, while a node in the container would let its root open the object past the daemon's
 * checks (docs/CLI.md "cdi").
 *
 * The spec is CDI version 0.5.0, the newest one the CDI library of Debian 12's podman 4.3
 * accepts (it refuses 0.6.0): environment and mounts (0.3.0) and device names that may start
 * with a digit (0.5.0). Newer engines accept 0.5.0 files.
 */
#include "build-config.h"
#include "daxpoolctl.h"
#include "daxpool.h"
#include "log.h"
#include "macro.h"

#include <errno.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>


#define CDI_VERSION "0.5.0"
#define CDI_DEFAULT_KIND "daxpool.io/slice"
#define CDI_ANY_DEVICE "daxpool:any" /* slice names starting "daxpool:" are reserved: no clash */
#define CDI_DEFAULT_CONTAINER_SOCKET "/run/daxpool/daxpoold.sock"

static bool cdi_alnum(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

/* CDI device names: a letter or digit first and last, letters, digits and "_-.:" between. */
static bool cdi_device_name_ok(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || !cdi_alnum(s[0]) || !cdi_alnum(s[n - 1]))
		return false;
	for (size_t i = 1; i + 1 < n; i++)
		if (!cdi_alnum(s[i]) && !strchr("_-.:", s[i]))
			return false;
	return true;
}

/* VENDOR/CLASS: the vendor a letter first, alphanumerics last, "_-." between; the class
 * letters, digits, '_' and '-', a letter or digit first and last. */
static bool cdi_kind_ok(const char *kind)
{
	const char *slash = strchr(kind, '/');
	size_t nv, nc;

	if (!slash || strchr(slash + 1, '/'))
		return false;
	nv = (size_t)(slash - kind);
	nc = strlen(slash + 1);
	if (nv == 0 || nc == 0)
		return false;
	if (!((kind[0] >= 'a' && kind[0] <= 'z') || (kind[0] >= 'A' && kind[0] <= 'Z')) ||
	    !cdi_alnum(kind[nv - 1]))
		return false;
	for (size_t i = 1; i + 1 < nv; i++)
		if (!cdi_alnum(kind[i]) && !strchr("_-.", kind[i]))
			return false;
	if (!cdi_alnum(slash[1]) || !cdi_alnum(slash[nc]))
		return false;
	for (size_t i = 2; i < nc; i++)
		if (!cdi_alnum(slash[i]) && !strchr("_-", slash[i]))
			return false;
	return true;
}

struct cdi_args {
	const char *output;
	const char *kind;
	const char *container_socket;
	const char *glob;
	struct json_object *devices;
	unsigned skipped;
	const char *env_socket; /* "DAXPOOL_SOCKET=..." */
	const char *host_socket;
};

static int cdi_option(int c, const char *arg, void *userdata)
{
	struct cdi_args *a = userdata;

	switch (c) {
	case 'o':
		a->output = arg;
		return CTL_EXIT_OK;
	case 'k':
		if (!cdi_kind_ok(arg)) {
			log_error("--kind: \"%s\" is not a CDI kind VENDOR/CLASS (e.g. %s)", arg,
				  CDI_DEFAULT_KIND);
			return CTL_EXIT_USAGE;
		}
		a->kind = arg;
		return CTL_EXIT_OK;
	case 'c':
		if (arg[0] != '/' || strlen(arg) >= 108) {
			log_error("--container-socket: \"%s\" is not an absolute socket path (< 108 bytes)", arg);
			return CTL_EXIT_USAGE;
		}
		a->container_socket = arg;
		return CTL_EXIT_OK;
	case 'n':
		a->glob = arg;
		return CTL_EXIT_OK;
	}
	return CTL_EXIT_USAGE;
}

/* One device: the socket's mount and env come from the spec's top-level containerEdits, so a
 * device carries what is its own (DAXPOOL_SLICE), or only DAXPOOL_SOCKET for "any slice"
 * (CDI refuses a device without edits). */
static struct json_object *cdi_device(const char *name, const char *env)
{
	struct json_object *dev = json_object_new_object();
	struct json_object *edits = json_object_new_object();
	struct json_object *envs = json_object_new_array();

	json_object_array_add(envs, json_object_new_string(env));
	json_object_object_add(edits, "env", envs);
	json_object_object_add(dev, "name", json_object_new_string(name));
	json_object_object_add(dev, "containerEdits", edits);
	return dev;
}

static int cdi_one(const struct daxpool_slice_info *info, void *userdata)
{
	struct cdi_args *a = userdata;
	char env[300];

	if (info->anonymous)
		return 0;
	if (a->glob && fnmatch(a->glob, info->name, 0) != 0)
		return 0;
	if (!cdi_device_name_ok(info->name)) {
		log_warning("cdi: slice \"%s\" left out: not a CDI device name (letters, digits and "
			    "\"_-.:\", a letter or digit first and last)", info->name);
		a->skipped++;
		return 0;
	}
	snprintf(env, sizeof(env), "DAXPOOL_SLICE=%s", info->name);
	json_object_array_add(a->devices, cdi_device(info->name, env));
	return 0;
}

/* The socket's absolute path on the host: what the bind mount needs. */
static int cdi_host_socket(struct ctl *ctl, char *buf, size_t size)
{
	const char *p = ctl->socket_path;
	char dir[PATH_MAX];
	const char *base;

	if (!p)
		p = getenv("DAXPOOL_SOCKET");
	if (!p || !*p)
		p = DAXPOOL_DEFAULT_SOCKET;
	/* The directory resolved, the socket's own name kept: a link to the socket would be
	 * mounted as the link's target anyway, and the file must exist (the daemon answered). */
	base = strrchr(p, '/');
	if (!base) {
		if (!getcwd(dir, sizeof(dir)))
			return -errno;
		base = p;
	} else {
		char d[PATH_MAX];

		if ((size_t)(base - p) >= sizeof(d))
			return -ENAMETOOLONG;
		memcpy(d, p, (size_t)(base - p));
		d[base - p] = 0;
		if (!realpath(base == p ? "/" : d, dir))
			return -errno;
		base++;
	}
	if ((size_t)snprintf(buf, size, "%s/%s", strcmp(dir, "/") == 0 ? "" : dir, base) >= size)
		return -ENAMETOOLONG;
	return 0;
}

/* Writes text to path atomically: a temporary file beside it, fsync, rename. */
static int cdi_write_atomic(const char *path, const char *text)
{
	char tmp[PATH_MAX];
	size_t len = strlen(text);
	int fd, r = 0;

	if ((size_t)snprintf(tmp, sizeof(tmp), "%s.tmp-XXXXXX", path) >= sizeof(tmp))
		return -ENAMETOOLONG;
	fd = mkstemp(tmp);
	if (fd < 0)
		return -errno;
	if (fchmod(fd, 0644) < 0)
		r = -errno;
	for (size_t done = 0; r == 0 && done < len;) {
		ssize_t n = write(fd, text + done, len - done);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			r = -errno;
		else
			done += (size_t)n;
	}
	if (r == 0 && write(fd, "\n", 1) != 1)
		r = -EIO;
	if (r == 0 && fsync(fd) < 0)
		r = -errno;
	if (close(fd) < 0 && r == 0)
		r = -errno;
	if (r == 0 && rename(tmp, path) < 0)
		r = -errno;
	if (r < 0)
		unlink(tmp);
	return r;
}

int cmd_cdi(struct ctl *ctl, int argc, char **argv)
{
	static const struct option options[] = {
		{ "output", required_argument, NULL, 'o' },
		{ "kind", required_argument, NULL, 'k' },
		{ "container-socket", required_argument, NULL, 'c' },
		{ "name", required_argument, NULL, 'n' },
		{}
	};
	struct cdi_args a = { .kind = CDI_DEFAULT_KIND, .container_socket = CDI_DEFAULT_CONTAINER_SOCKET };
	_cleanup_(json_object_putp) struct json_object *spec = NULL;
	struct daxpool *dp = NULL;
	struct json_object *edits, *mounts, *mount, *opts, *envs;
	char host[PATH_MAX], env_socket[160];
	const char *text;
	int r, first;

	r = ctl_parse_options(ctl, argc, argv, "o:k:c:n:", options, cdi_option, &a, &first);
	if (r != CTL_EXIT_OK)
		return r < 0 ? CTL_EXIT_OK : r;
	if ((r = ctl_check_operands("cdi", argc - first, 0, 0)) != CTL_EXIT_OK)
		return r;
	if ((r = ctl_connect(ctl, &dp)) != CTL_EXIT_OK)
		return r;
	r = cdi_host_socket(ctl, host, sizeof(host));
	if (r < 0) {
		log_error("cdi: cannot resolve the daemon's socket path: %s", strerror(-r));
		daxpool_disconnect(&dp);
		return CTL_EXIT_FAILURE;
	}
	snprintf(env_socket, sizeof(env_socket), "DAXPOOL_SOCKET=%s", a.container_socket);

	spec = json_object_new_object();
	json_object_object_add(spec, "cdiVersion", json_object_new_string(CDI_VERSION));
	json_object_object_add(spec, "kind", json_object_new_string(a.kind));
	a.devices = json_object_new_array();
	json_object_object_add(spec, "devices", a.devices);
	json_object_array_add(a.devices, cdi_device(CDI_ANY_DEVICE, env_socket));
	r = daxpool_list(dp, cdi_one, &a);
	daxpool_disconnect(&dp);
	if (r < 0) {
		log_error("cdi: %s", daxpool_errormsg());
		return CTL_EXIT_FAILURE;
	}

	/* What every device shares: the socket, mounted at the path DAXPOOL_SOCKET names. */
	edits = json_object_new_object();
	envs = json_object_new_array();
	json_object_array_add(envs, json_object_new_string(env_socket));
	json_object_object_add(edits, "env", envs);
	mounts = json_object_new_array();
	mount = json_object_new_object();
	json_object_object_add(mount, "hostPath", json_object_new_string(host));
	json_object_object_add(mount, "containerPath", json_object_new_string(a.container_socket));
	opts = json_object_new_array();
	json_object_array_add(opts, json_object_new_string("bind"));
	json_object_array_add(opts, json_object_new_string("nosuid"));
	json_object_array_add(opts, json_object_new_string("nodev"));
	json_object_array_add(opts, json_object_new_string("noexec"));
	json_object_object_add(mount, "options", opts);
	json_object_array_add(mounts, mount);
	json_object_object_add(edits, "mounts", mounts);
	json_object_object_add(spec, "containerEdits", edits);

	text = json_object_to_json_string_ext(spec, JSON_C_TO_STRING_PRETTY |
							    JSON_C_TO_STRING_NOSLASHESCAPE);
	if (!a.output) {
		puts(text);
		return CTL_EXIT_OK;
	}
	r = cdi_write_atomic(a.output, text);
	if (r < 0) {
		log_error("cdi: writing %s: %s", a.output, strerror(-r));
		return CTL_EXIT_FAILURE;
	}
	if (ctl->json) {
		_cleanup_(json_object_putp) struct json_object *o = json_object_new_object();
		json_object_object_add(o, "path", json_object_new_string(a.output));
		json_object_object_add(o, "kind", json_object_new_string(a.kind));
		json_object_object_add(o, "devices", json_object_new_int((int)json_object_array_length(a.devices)));
		json_object_object_add(o, "skipped", json_object_new_int((int)a.skipped));
		ctl_print_json(o);
	} else {
		printf("wrote %s: %zu devices of kind %s (%u slices left out)\n", a.output,
		       json_object_array_length(a.devices), a.kind, a.skipped);
	}
	return CTL_EXIT_OK;
}
