/* The `device` section at start-up: find, create or reconfigure the pool's device (provision.h). */
#include "provision.h"
#include "daemon.h"
#include "log.h"
#include "macro.h"
#include "namespace.h"
#include "parse-util.h"
#include "pool.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <linux/capability.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <systemd/sd-daemon.h>
#include <time.h>
#include <unistd.h>
#include <uuid/uuid.h>

/* How long to wait for udev to give a new device node to the daxpool group (60-daxpool.rules). */
#define NODE_WAIT_MS 10000

struct prov {
	const struct daxpoold_options *opts;
	const struct device_spec *spec;
	struct namespace_ctx *ns;
	struct namespace_device_info *devs; /* valid while ns lives */
	size_t n_devs;
	char msg[1024];
	bool conflict;	    /* the machine disagrees with the config: nothing was changed */
	bool reconfigured;  /* a system-ram device was switched to devdax in this start */
	/* result */
	char path[64];
	bool created;
	bool may_format;
};

_printf_(4, 5) static int prov_err(struct prov *p, int r, bool conflict, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(p->msg, sizeof(p->msg), fmt, ap);
	va_end(ap);
	p->conflict = conflict;
	return r;
}

static int collect_one(const struct namespace_device_info *info, void *userdata)
{
	struct prov *p = userdata;
	struct namespace_device_info *n = realloc(p->devs, (p->n_devs + 1) * sizeof(*n));

	if (!n)
		return -ENOMEM;
	p->devs = n;
	p->devs[p->n_devs++] = *info;
	return 0;
}

static int prov_open(struct prov *p)
{
	int r = namespace_ctx_new(&p->ns);

	if (r < 0)
		return prov_err(p, r, false, "%s", namespace_errormsg());
	free(p->devs);
	p->devs = NULL;
	p->n_devs = 0;
	r = namespace_device_foreach(p->ns, collect_one, p);
	if (r < 0)
		return prov_err(p, r, false, "listing device-dax devices: out of memory");
	return 0;
}

static void prov_close(struct prov *p)
{
	free(p->devs);
	p->devs = NULL;
	p->n_devs = 0;
	namespace_ctx_delete(&p->ns);
}

/*
 * Reads the pool UUID from the first superblock copy that carries the magic: 1 found, 0 no pool,
 * -errno when the device cannot be read (pool_probe_fd). The backend checks the checksums when
 * it opens the one chosen.
 */
static int read_pool_uuid(const struct namespace_device_info *dev, uint8_t ret_uuid[16])
{
	_cleanup_(closep) int fd = -1;
	char path[64];

	snprintf(path, sizeof(path), "/dev/%s", dev->name);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	return pool_probe_fd(fd, dev->align, ret_uuid);
}

static bool region_matches(const struct device_spec *spec, const char *region)
{
	if (!spec->region || strcmp(spec->region, "any") == 0)
		return true;
	if (strcmp(spec->region, region) == 0)
		return true;
	/* "0" means region0, as daxpoolctl create --region accepts */
	return strncmp(region, "region", 6) == 0 && strcmp(region + 6, spec->region) == 0;
}

/* The config's provisioning spec against a device that exists: alignment and size. */
static int check_against_spec(struct prov *p, const struct namespace_device_info *dev)
{
	const struct device_spec *s = p->spec;
	char a[32], b[32];

	if (!s->provision)
		return 0;
	if (dev->align != s->align)
		return prov_err(p, -EMEDIUMTYPE, true,
				"%s (%s \"%s\" on %s) has a %s alignment, but device.provision.align is %s: set "
				"device.provision.align to %s, or destroy the namespace yourself (daxpoolctl "
				"destroy /dev/%s, which loses its pool) to have it re-created; daxpoold never "
				"destroys one", dev->name, dev->namespace ?: "namespace", dev->alt_name ?: "",
				dev->region, format_size(dev->align, a, sizeof(a)), format_size(s->align, b, sizeof(b)),
				format_size(dev->align, a, sizeof(a)), dev->name);
	if (dev->size < s->size)
		return prov_err(p, -ENOSPC, true,
				"%s (%s \"%s\" on %s) has %s usable, but device.provision.size asks %s: lower "
				"device.provision.size, or move the data to a larger namespace yourself; "
				"daxpoold never resizes or destroys one", dev->name,
				dev->namespace ?: "namespace", dev->alt_name ?: "", dev->region,
				format_size(dev->size, a, sizeof(a)), format_size(s->size, b, sizeof(b)));
	if (!region_matches(s, dev->region))
		return prov_err(p, -EXDEV, true,
				"%s (namespace \"%s\") is on %s, but device.provision.region is \"%s\": set "
				"device.provision.region to \"%s\" or \"any\"", dev->name, dev->alt_name ?: "",
				dev->region, s->region, dev->region);
	return 0;
}

/* Returns 1 when the device was switched to devdax (the caller rescans), 0 when it is devdax. */
static int handle_system_ram(struct prov *p, const struct namespace_device_info *dev)
{
	int r;

	if (!dev->system_ram)
		return 0;
	if (!p->spec->allow_reconfigure_system_ram)
		return prov_err(p, -EBUSY, true,
				"%s (%s on %s) is in system-ram mode (bound to kmem, memory %s): the kernel uses "
				"it as RAM. Set device.allow_reconfigure_system_ram to true to let daxpoold "
				"offline it and switch it to devdax, or do it yourself: daxctl offline-memory %s "
				"&& daxctl reconfigure-device --mode=devdax %s", dev->name,
				dev->namespace ?: "no namespace", dev->region,
				dev->memory_online ? "online" : "offline", dev->name, dev->name);
	if (p->reconfigured)
		return prov_err(p, -EBUSY, false, "%s is still in system-ram mode after reconfiguring it", dev->name);
	log_notice("%s (%s on %s) is in system-ram mode; device.allow_reconfigure_system_ram is set: "
		   "offlining its memory and switching it to devdax", dev->name, dev->namespace ?: "-", dev->region);
	r = namespace_reconfigure_devdax(p->ns, dev->name);
	if (r < 0)
		return prov_err(p, r, false, "reconfiguring %s to devdax: %s", dev->name, namespace_errormsg());
	log_notice("%s is now in devdax mode (what the kernel had stored in it is gone)", dev->name);
	p->reconfigured = true;
	return 1;
}

static const struct namespace_device_info *find_by_name(struct prov *p, const char *name)
{
	for (size_t i = 0; i < p->n_devs; i++)
		if (strcmp(p->devs[i].name, name) == 0)
			return &p->devs[i];
	return NULL;
}

/* The pool with the configured UUID, among the devdax devices: 1 found (*ret), 0 not. */
static int find_by_uuid(struct prov *p, const struct namespace_device_info **ret)
{
	uint8_t u[16];

	for (size_t i = 0; i < p->n_devs; i++) {
		const struct namespace_device_info *dev = &p->devs[i];
		int r;

		if (dev->system_ram || !dev->enabled)
			continue;
		r = read_pool_uuid(dev, u);
		if (r < 0)
			log_warning("looking for pool on %s: cannot read it: %s", dev->name, strerror(-r));
		if (r > 0 && memcmp(u, p->opts->expected_uuid, 16) == 0) {
			*ret = dev;
			return 1;
		}
	}
	return 0;
}

/* Names of devices the UUID search could not look into, for the refusal message. */
static void list_unsearched(struct prov *p, char *buf, size_t n)
{
	size_t used = 0;

	buf[0] = '\0';
	for (size_t i = 0; i < p->n_devs && used < n; i++)
		if (p->devs[i].system_ram)
			used += snprintf(buf + used, n - used, "%s%s", used ? ", " : "; not searched (system-ram mode): ",
					 p->devs[i].name);
}

static void use_device(struct prov *p, const struct namespace_device_info *dev, bool may_format)
{
	snprintf(p->path, sizeof(p->path), "/dev/%s", dev->name);
	p->may_format = may_format;
}

struct region_pick {
	struct prov *p;
	char chosen[32];
	uint64_t ns_size, unit;
	char why[512]; /* why regions were passed over */
	size_t why_len;
	bool region_seen;
};

static int consider_region(const struct namespace_region_info *info, void *userdata)
{
	struct region_pick *rp = userdata;
	const struct device_spec *s = rp->p->spec;
	uint64_t unit, ns;
	bool align_ok = false;
	char a[32], b[32];
	const char *why = NULL;
	char whybuf[192];

	if (!region_matches(s, info->name))
		return 0;
	rp->region_seen = true;
	for (size_t i = 0; i < info->n_dax_aligns; i++)
		align_ok |= info->dax_aligns[i] == s->align;
	unit = namespace_size_unit(info, s->align);
	ns = namespace_size_for_usable(s->size, s->align, unit);
	if (!info->enabled)
		why = "disabled";
	else if (info->readonly)
		why = "read-only";
	else if (!info->labels)
		why = "no namespace labels (one fixed namespace: ndctl init-labels)";
	else if (!align_ok) {
		snprintf(whybuf, sizeof(whybuf), "no %s device-dax alignment", format_size(s->align, a, sizeof(a)));
		why = whybuf;
	} else if (ns > info->max_extent) {
		snprintf(whybuf, sizeof(whybuf), "full: needs %s, largest free extent %s", format_size(ns, a, sizeof(a)),
			 format_size(info->max_extent, b, sizeof(b)));
		why = whybuf;
	}
	if (why) {
		rp->why_len += snprintf(rp->why + rp->why_len, rp->why_len < sizeof(rp->why) ? sizeof(rp->why) - rp->why_len : 0,
					"%s%s: %s", rp->why_len ? "; " : "", info->name, why);
		if (rp->why_len >= sizeof(rp->why))
			rp->why_len = sizeof(rp->why) - 1;
		return 0;
	}
	snprintf(rp->chosen, sizeof(rp->chosen), "%s", info->name);
	rp->ns_size = ns;
	rp->unit = unit;
	return 1;
}

/* Waits for the new node to exist and be ours (udev applies 60-daxpool.rules). */
static void wait_for_node(const char *path)
{
	struct timespec ts = { 0, 50 * 1000 * 1000 };

	for (int waited = 0; waited < NODE_WAIT_MS; waited += 50) {
		if (access(path, R_OK | W_OK) == 0)
			return;
		nanosleep(&ts, NULL);
	}
	log_warning("%s is not yet accessible after %d s (udev rule 60-daxpool.rules not applied?)", path,
		    NODE_WAIT_MS / 1000);
}

static int create_namespace(struct prov *p)
{
	const struct device_spec *s = p->spec;
	struct region_pick rp = { .p = p };
	struct namespace_device_info info;
	char name[64], a[32], b[32], c[32], d[32], e[32];
	int r;

	namespace_region_foreach(p->ns, consider_region, &rp);
	if (!rp.chosen[0]) {
		if (!rp.region_seen && strcmp(s->region, "any") == 0)
			return prov_err(p, -ENOENT, true,
					"no persistent-memory (NVDIMM) region on this machine for device.provision "
					"(ndctl list -R shows none): use the emulated backend (\"backend\") instead");
		if (!rp.region_seen)
			return prov_err(p, -ENOENT, true,
					"device.provision.region \"%s\": no such persistent-memory region "
					"(daxpoolctl regions lists them)", s->region);
		return prov_err(p, -ENOSPC, true,
				"no region can hold namespace \"%s\" (%s usable, %s alignment): %s. Change "
				"device.provision.size, .align or .region; daxpoold destroys nothing to make room",
				s->name, format_size(s->size, a, sizeof(a)), format_size(s->align, b, sizeof(b)), rp.why);
	}
	log_notice("provisioning: creating devdax namespace \"%s\" on %s: %s asked usable, %s alignment -> "
		   "namespace of %s (a multiple of %s, the region's namespace unit, with room for the info "
		   "block and the page map)",
		   s->name, rp.chosen, format_size(s->size, a, sizeof(a)), format_size(s->align, b, sizeof(b)),
		   format_size(rp.ns_size, c, sizeof(c)), format_size(rp.unit, d, sizeof(d)));
	r = namespace_create_devdax_named(p->ns, rp.chosen, rp.ns_size, s->align, s->name, name, sizeof(name));
	if (r < 0)
		/* Refusals of the request (placement, space) changed nothing: create undoes itself. */
		return prov_err(p, r, r == -ENOSPC || r == -EINVAL || r == -EOPNOTSUPP,
				"creating namespace \"%s\" on %s: %s", s->name, rp.chosen, namespace_errormsg());
	r = namespace_device_lookup(p->ns, name, &info);
	if (r < 0)
		return prov_err(p, r, false, "created %s but cannot find it: %s", name, namespace_errormsg());
	log_notice("provisioning: created %s (%s \"%s\" on %s): namespace %s, device %s usable, %s "
		   "(%.2f%%) reserved for the device-dax info block and struct pages",
		   info.name, info.namespace ?: "-", s->name, rp.chosen, format_size(info.namespace_size, a, sizeof(a)),
		   format_size(info.size, b, sizeof(b)), format_size(info.namespace_size - info.size, e, sizeof(e)),
		   info.namespace_size ? 100.0 * (double)(info.namespace_size - info.size) / (double)info.namespace_size : 0.0);
	if (info.size < s->size)
		log_warning("provisioning: %s has %s usable, less than device.provision.size %s (the kernel "
			    "reserved more than estimated)", info.name, format_size(info.size, a, sizeof(a)), format_size(s->size, b, sizeof(b)));
	use_device(p, &info, true);
	p->created = true;
	wait_for_node(p->path);
	return 0;
}

/* One pass; returns 1 when a device was reconfigured and the caller must look again. */
static int converge_once(struct prov *p)
{
	const struct device_spec *s = p->spec;
	const struct namespace_device_info *dev = NULL, *named = NULL;
	char u[37], list[256];
	size_t n_named = 0;
	int r;

	if (p->opts->has_expected_uuid) {
		uuid_unparse_lower(p->opts->expected_uuid, u);
		if (find_by_uuid(p, &dev) > 0) {
			if (p->opts->device_path && strcmp(p->opts->device_path + 5, dev->name) != 0)
				log_notice("pool %s is on %s, not on %s (device.path): the UUID decides", u,
					   dev->name, p->opts->device_path);
			if ((r = check_against_spec(p, dev)) < 0)
				return r;
			log_info("pool %s found on %s (%s on %s)", u, dev->name, dev->namespace ?: "-", dev->region);
			use_device(p, dev, false);
			return 0;
		}
	}
	if (p->opts->device_path) {
		/* An existing device named by path: first format (device.format_if_empty) or the
		 * pool the UUID check of the backend will confirm. */
		dev = find_by_name(p, p->opts->device_path + 5);
		if (dev && (r = handle_system_ram(p, dev)) != 0)
			return r;
		snprintf(p->path, sizeof(p->path), "%s", p->opts->device_path);
		p->may_format = p->opts->format_if_empty > 0;
		return 0;
	}
	if (!s->provision) {
		list_unsearched(p, list, sizeof(list));
		return prov_err(p, -ENOENT, true,
				"pool %s (device.uuid) is on none of the %zu device-dax devices%s. Set device.path "
				"to a device to format, or device.provision to create one (after removing device.uuid)",
				u, p->n_devs, list);
	}
	for (size_t i = 0; i < p->n_devs; i++)
		if (p->devs[i].alt_name && strcmp(p->devs[i].alt_name, s->name) == 0) {
			n_named++;
			if (!named)
				named = &p->devs[i];
		}
	if (n_named > 1)
		return prov_err(p, -ENOTUNIQ, true,
				"%zu device-dax namespaces are named \"%s\" (device.provision.name), e.g. %s: "
				"daxpoold cannot tell which is its own; rename or destroy the extra ones, or set "
				"device.provision.name", n_named, s->name, named->name);
	if (named) {
		if ((r = handle_system_ram(p, named)) != 0)
			return r;
		if ((r = check_against_spec(p, named)) < 0)
			return r;
		log_info("namespace \"%s\" found: %s (%s on %s, %" PRIu64 " bytes)", s->name, named->name,
			 named->namespace ?: "-", named->region, named->size);
		/* Ours by name: formatted when it holds no pool (a start that crashed after creating
		 * it); never when device.uuid expects a pool (the backend refuses then). */
		use_device(p, named, true);
		return 0;
	}
	if (p->opts->has_expected_uuid) {
		list_unsearched(p, list, sizeof(list));
		return prov_err(p, -ENOENT, true,
				"pool %s (device.uuid) is on none of the %zu device-dax devices and no namespace is "
				"named \"%s\"%s. A new namespace would hold a new pool with another UUID: remove "
				"device.uuid to provision one", u, p->n_devs, s->name, list);
	}
	return create_namespace(p);
}

int provision_start(struct daxpoold *d)
{
	struct prov p = { .opts = &d->opts, .spec = &d->opts.device };
	int r;

	if (!d->opts.device.set)
		return 0;
	for (int pass = 0;; pass++) {
		r = prov_open(&p);
		if (r == 0)
			r = converge_once(&p);
		prov_close(&p);
		if (r != 1 || pass == 1)
			break;
	}
	if (r == 1)
		r = prov_err(&p, -EBUSY, false, "device still changing after reconfiguration");
	if (r < 0) {
		log_error("%s: %s", p.conflict ? "device section refused" : "device section failed", p.msg);
		sd_notifyf(0, "STATUS=%s: %s\nERRNO=%d", p.conflict ? "Refused (config conflicts with the machine, nothing changed)" : "Provisioning failed",
			   p.msg, -r);
		if (p.conflict)
			d->start_exit_code = DAXPOOLD_EXIT_CONFLICT;
		return r;
	}
	free(d->device_path);
	d->device_path = strdup(p.path);
	if (!d->device_path)
		return log_error_errno(-ENOMEM, "out of memory");
	if (p.may_format && d->opts.format_if_empty <= 0)
		d->opts.format_if_empty = 1;
	sd_notifyf(0, "STATUS=Opening the pool on %s%s", p.path,
		   p.created ? " (namespace created)" : p.reconfigured ? " (switched from system-ram)" : "");
	return 0;
}

int provision_drop_privileges(void)
{
	struct __user_cap_header_struct h = { .version = _LINUX_CAPABILITY_VERSION_3 };
	struct __user_cap_data_struct data[2] = {};
	uint64_t had;

	if (getuid() == 0 || geteuid() == 0)
		return 0;
	if (syscall(SYS_capget, &h, data) < 0)
		return log_error_errno(-errno, "capget: %m");
	had = data[0].permitted | (uint64_t)data[1].permitted << 32;
	if (!had)
		return 0;
	/* The bounding set needs CAP_SETPCAP to shrink; without it, an empty permitted set and
	 * NoNewPrivileges (the unit) keep the capabilities from coming back. */
	if (data[0].effective & (1u << CAP_SETPCAP))
		for (unsigned long cap = 0; cap <= CAP_LAST_CAP; cap++)
			prctl(PR_CAPBSET_DROP, cap, 0, 0, 0);
	if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) < 0 && errno != EINVAL)
		return log_error_errno(-errno, "clearing ambient capabilities: %m");
	memset(data, 0, sizeof(data));
	if (syscall(SYS_capset, &h, data) < 0)
		return log_error_errno(-errno, "capset: %m");
	log_info("dropped capabilities (mask %#" PRIx64 "): only start-up needed them", had);
	return 0;
}

uint64_t provision_namespace_size(uint64_t usable, uint64_t align, uint64_t unit)
{
	return namespace_size_for_usable(usable, align, unit);
}
