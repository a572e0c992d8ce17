/* daxpoold's settings: defaults, then the config file, then the command line. */
#pragma once

#include "backend.h" /* enum backend_kind */

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

struct quota {
	uint64_t bytes;	 /* 0 = unlimited */
	uint64_t slices; /* 0 = unlimited */
};

struct quota_entry {
	uid_t uid;
	struct quota quota;
};

/* The config's `device` section (daemon/provision.c): which device-dax device holds
 * the pool, and the namespace daxpoold creates when it is absent. */
struct device_spec {
	bool set;	     /* a `device` section was given (then backend is BACKEND_DEVDAX) */
	bool provision;	     /* device.provision: create the namespace when it is absent */
	char *region;	     /* "region0", or "any" (NULL = any) */
	char *name;	     /* the namespace's name, its identity across starts ("daxpool") */
	uint64_t size;	     /* usable bytes the pool needs (the namespace is larger) */
	uint64_t align;	     /* 4K, 2M or 1G */
	bool allow_reconfigure_system_ram; /* may offline a system-ram device and make it devdax */
};

/* Per-uid bounds (daemon/uid-limits.c, docs/CONFIG.md "limits"): what one user may hold at once.
 * 0 = unlimited for the per-uid counts. Administrators (root, the admin group) are exempt from
 * the per-uid bounds and have reserved_admin of max_clients to themselves. */
struct uid_limits {
	unsigned connections;	  /* connections per uid */
	unsigned unauthenticated; /* connections per uid that have not completed HELLO */
	unsigned hello_timeout_ms; /* a connection without HELLO after this long is closed */
	unsigned handles;	  /* open slice handles per uid, over all its connections */
	unsigned holders;	  /* processes per uid holding slices (each costs the daemon a pidfd) */
	unsigned pins;		  /* declared pins per uid, over all its connections */
	unsigned inflight;	  /* replies per uid parked unread; beyond, its requests wait */
	unsigned reserved_admin;  /* of max_clients, connections only administrators may take */
	unsigned turn_requests;	  /* requests served per uid per loop turn while other uids wait */
	unsigned carves;	  /* ALLOCs per uid waiting for a carved object (dynamic regions) */
};

struct daxpoold_options {
	char *config_path;
	bool config_explicit; /* --config given: a missing file is an error */
	char *socket_path;
	unsigned socket_mode;
	bool foreground;
	int log_level;
	unsigned max_clients;
	struct uid_limits limits;
	enum backend_kind backend;
	char *device_path;   /* devdax (device.path, or what provisioning found or created) */
	struct device_spec device;
	char *emulate_path;  /* emulated */
	uint64_t size;	     /* emulated: bytes */
	uint64_t page_size;  /* emulated: 4K, 2M or 1G */
	int format_if_empty; /* -1 default (emulated yes, devdax no), 0 no, 1 yes */
	bool has_expected_uuid;
	uint8_t expected_uuid[16];
	char *runtime_dir;	  /* holder journal; default: the socket's directory */
	unsigned pin_grace_ms;	  /* wait after a pinning holder exits before reuse */
	unsigned send_timeout_s;  /* a client that does not take a reply for this long is dropped */
	unsigned idle_timeout_s;  /* connections holding no slice are closed after this; 0 = never */
	unsigned busy_poll_us;	  /* the loop polls without sleeping this long after a request */
	unsigned records;	  /* record capacity of a pool this daemon formats; 0 = the default */
	char *admin_group;	  /* members (and root) may administer */
	char *isolation;	  /* "auto" (NULL), "slice", "owner" or "shared" (docs/SECURITY.md) */
	char *tenant;		  /* owner isolation: the one user (name or uid) served; NULL = the
				   * first to be granted, until reboot */
	char *metrics_file;	  /* Prometheus textfile (metrics.c); NULL = none */
	unsigned metrics_interval_s; /* how often it is rewritten; 0 = 15 */
	struct quota default_quota;
	struct quota_entry *quotas;
	size_t n_quotas;
	bool show_help;
	bool show_version;
};

/* Fills opts from defaults, the config file and argv. Returns 0, or a negative errno after
 * writing a message that names the offending flag or config key to stderr through the log. */
int options_parse(struct daxpoold_options *opts, int argc, char **argv);
/* The built-in defaults, before any command line or config file (options_parse starts here). */
void options_defaults(struct daxpoold_options *opts);

/* Reads a JSON config file into opts; unknown keys and wrong types are errors. */
int options_load_config(struct daxpoold_options *opts, const char *path);

/* Checks the combination of settings (e.g. --size only with --emulate). */
int options_validate(const struct daxpoold_options *opts);

void options_free(struct daxpoold_options *opts);
/* Whether name is an isolation mode: auto, slice, owner, shared. */
bool isolation_name_valid(const char *name);
/* The quota of uid (its own entry, else the default). */
struct quota options_quota_for(const struct daxpoold_options *opts, uid_t uid);
void options_print_help(const char *argv0);
