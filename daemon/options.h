/* daxpoold's settings: defaults, then the config file, then the command line. */
#pragma once

#include <stdbool.h>
#include <stdint.h>

enum backend_kind {
	BACKEND_NONE,	  /* no pool configured: the daemon answers HELLO/PING/STATUS only */
	BACKEND_DEVDAX,	  /* /dev/daxX.Y */
	BACKEND_EMULATED, /* a file on hugetlbfs (2M/1G) or any file system (4K) */
};

struct daxpoold_options {
	char *config_path;
	bool config_explicit; /* --config given: a missing file is an error */
	char *socket_path;
	unsigned socket_mode;
	bool foreground;
	int log_level;
	unsigned max_clients;
	enum backend_kind backend;
	char *device_path;   /* devdax */
	char *emulate_path;  /* emulated */
	uint64_t size;	     /* emulated: bytes */
	uint64_t page_size;  /* emulated: 4K, 2M or 1G */
	bool show_help;
	bool show_version;
};

/* Fills opts from defaults, the config file and argv. Returns 0, or a negative errno after
 * writing a message that names the offending flag or config key to stderr through the log. */
int options_parse(struct daxpoold_options *opts, int argc, char **argv);

/* Reads a JSON config file into opts; unknown keys and wrong types are errors. */
int options_load_config(struct daxpoold_options *opts, const char *path);

/* Checks the combination of settings (e.g. --size only with --emulate). */
int options_validate(const struct daxpoold_options *opts);

void options_free(struct daxpoold_options *opts);
void options_print_help(const char *argv0);
const char *backend_kind_name(enum backend_kind kind);
