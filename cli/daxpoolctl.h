/* daxpoolctl's command table and the state every subcommand shares. */
#pragma once

#include <json-c/json.h>
#include <stdbool.h>

struct ctl {
	const char *socket_path; /* NULL: libdaxpool's default */
	bool json;
};

struct ctl_command {
	const char *name;
	int (*fn)(struct ctl *ctl, int argc, char **argv);
	const char *summary;
	const char *usage; /* shown by `daxpoolctl help NAME` */
};

/* Exit codes, documented in docs/CLI.md. */
enum {
	CTL_EXIT_OK = 0,
	CTL_EXIT_FAILURE = 1, /* the operation failed */
	CTL_EXIT_USAGE = 2,   /* bad command line */
	CTL_EXIT_DAEMON = 3,  /* the daemon could not be reached */
};

/* Prints obj as JSON (--json) or through the human formatter. */
void ctl_print_json(struct json_object *obj);

int cmd_status(struct ctl *ctl, int argc, char **argv);
