/* daxpoolctl's command table and the state every subcommand shares. */
#pragma once

#include <json-c/json.h>
#include <stdbool.h>
#include <getopt.h>
#include <stdint.h>
#include <sys/types.h>

#include "daxpool.h"
#include "macro.h"

/* _cleanup_ helpers every subcommand uses. */
DEFINE_TRIVIAL_CLEANUP_FUNC(struct json_object *, json_object_put);
static inline void disconnectp(struct daxpool **dp)
{
	daxpool_disconnect(dp);
}

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
	/* fsck only: the pool's state after the check */
	CTL_EXIT_FSCK_REPAIRED = 4,   /* problems found and all repaired */
	CTL_EXIT_FSCK_REPAIRABLE = 5, /* problems found, all repairable; --repair not given */
	CTL_EXIT_FSCK_DAMAGED = 6,    /* problems that cannot be repaired without losing data */
};

/* Prints obj as JSON (--json) or through the human formatter. */
void ctl_print_json(struct json_object *obj);
/* What a command did to one object: {"KEY": VALUE, "DONE": true} with --json, else "DONE VALUE"
 * ("freed NAME", "formatted PATH"). Returns CTL_EXIT_OK. */
int ctl_print_done(const struct ctl *ctl, const char *key, const char *value, const char *done);
/* Where a helper program daxpoolctl runs is (daxpool-bench, daxpool-verify): $ENV_NAME if set;
 * else BUILD_REL beside this daxpoolctl's build tree (BUILD/cli/..), if there; else
 * ../libexec/daxpool/NAME beside this daxpoolctl (an installation under any prefix), if there;
 * else installed.
 * buf (size bytes) may hold the answer. */
const char *ctl_find_helper(const char *env_name, const char *build_rel, const char *installed,
			    char *buf, size_t size);

/* Prints the usage of the named command (daxpoolctl help NAME). */
void ctl_print_command_help(const char *name);

/* Connects to the daemon; logs and returns CTL_EXIT_DAEMON on failure, else CTL_EXIT_OK. */
int ctl_connect(struct ctl *ctl, struct daxpool **ret);

/*
 * Parses a subcommand's options with getopt_long (optstring/options extended by -j/--json and
 * -h/--help, handled here). Calls fn(c, optarg, userdata) for every other option; fn returns an
 * exit code (CTL_EXIT_OK to continue). On return *ret_optind is the first operand. Returns an
 * exit code; -1 means "help was printed, exit 0".
 */
int ctl_parse_options(struct ctl *ctl, int argc, char **argv, const char *optstring,
		      const struct option *options, int (*fn)(int c, const char *arg, void *userdata),
		      void *userdata, int *ret_optind);

/* Checks the number of operands left after options; logs and returns CTL_EXIT_USAGE if wrong. */
int ctl_check_operands(const char *cmd, int n, int min, int max);

/* Value parsers for operators' arguments: each logs an error naming opt and returns
 * CTL_EXIT_USAGE, or returns CTL_EXIT_OK. */
int ctl_parse_size(const char *opt, const char *s, uint64_t *ret);
int ctl_parse_align(const char *opt, const char *s, uint64_t *ret);
int ctl_parse_mode(const char *opt, const char *s, unsigned *ret);
/* USER|UID[:GROUP|GID]; no group keeps *ret_gid (gid_t)-1 unless the user's name gave one. */
int ctl_parse_owner(const char *opt, const char *s, uid_t *ret_uid, gid_t *ret_gid);
/* A slice name as the daemon accepts it (1..255 printable ASCII, no '/', no leading '.'). */
int ctl_check_slice_name(const char *s);

/* "1.5 GiB" style; buf of at least 32 bytes. */
const char *ctl_format_bytes(uint64_t bytes, char *buf, size_t size);
/* User/group name of an id, or NULL. */
const char *ctl_user_name(uid_t uid);
/* "slice", "owner", "shared" for DAXPOOL_ISOLATION_*, else "unknown". */
const char *ctl_isolation_name(int isolation);
const char *ctl_group_name(gid_t gid);

/* Refuses (logs, returns CTL_EXIT_FAILURE) if another process holds path; what says why it
 * matters. CTL_EXIT_OK otherwise. */
int ctl_refuse_if_in_use(const char *path, const char *what);

int cmd_status(struct ctl *ctl, int argc, char **argv);
int cmd_alloc(struct ctl *ctl, int argc, char **argv);
int cmd_list(struct ctl *ctl, int argc, char **argv);
int cmd_show(struct ctl *ctl, int argc, char **argv);
int cmd_free(struct ctl *ctl, int argc, char **argv);
int cmd_stats(struct ctl *ctl, int argc, char **argv);
int cmd_settle(struct ctl *ctl, int argc, char **argv);
int cmd_format(struct ctl *ctl, int argc, char **argv);
int cmd_fsck(struct ctl *ctl, int argc, char **argv);
int cmd_regions(struct ctl *ctl, int argc, char **argv);
int cmd_devices(struct ctl *ctl, int argc, char **argv);
int cmd_create(struct ctl *ctl, int argc, char **argv);
int cmd_destroy(struct ctl *ctl, int argc, char **argv);
int cmd_verify(struct ctl *ctl, int argc, char **argv);
int cmd_bench(struct ctl *ctl, int argc, char **argv);
int cmd_cdi(struct ctl *ctl, int argc, char **argv);

struct daxpool_stats;
/* stats --prometheus (cli/stats-prometheus.c): st in the text exposition format on stdout. */
int ctl_print_stats_prometheus(const struct daxpool_stats *st);
