/* daxpoolctl: the administration CLI of daxpool, a table of subcommands. */
#include "build-config.h"
#include "daxpoolctl.h"
#include "log.h"
#include "macro.h"

#include <getopt.h>
#include <stdio.h>
#include <string.h>

static int cmd_help(struct ctl *ctl, int argc, char **argv);
static int cmd_version(struct ctl *ctl, int argc, char **argv);

static const struct ctl_command commands[] = {
	{ "status", cmd_status, "show the daemon's version, protocol, pid, uptime and clients",
	  "daxpoolctl [--socket PATH] [--json] status\n"
	  "  Connects to daxpoold and prints its version, negotiated protocol version, pid, uptime\n"
	  "  and number of connected clients. Exit status 3 if the daemon cannot be reached.\n" },
	{ "version", cmd_version, "show daxpoolctl's version", "daxpoolctl version\n" },
	{ "help", cmd_help, "show help for all commands or one", "daxpoolctl help [COMMAND]\n" },
};

void ctl_print_json(struct json_object *obj)
{
	puts(json_object_to_json_string_ext(obj, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_NOSLASHESCAPE));
}

static void print_usage(FILE *f)
{
	fprintf(f, "Usage: daxpoolctl [--socket PATH] [--json] COMMAND [ARGS]\n\nCommands:\n");
	for (size_t i = 0; i < ARRAY_SIZE(commands); i++)
		fprintf(f, "  %-10s %s\n", commands[i].name, commands[i].summary);
	fprintf(f, "\nOptions:\n"
		   "  -s, --socket PATH  daemon socket (default $DAXPOOL_SOCKET or %s)\n"
		   "  -j, --json         machine-readable output\n"
		   "  -h, --help         this help\n",
		DAXPOOL_DEFAULT_SOCKET);
}

static const struct ctl_command *find_command(const char *name)
{
	for (size_t i = 0; i < ARRAY_SIZE(commands); i++)
		if (strcmp(commands[i].name, name) == 0)
			return &commands[i];
	return NULL;
}

static int cmd_help(struct ctl *ctl, int argc, char **argv)
{
	const struct ctl_command *cmd;

	if (argc < 2) {
		print_usage(stdout);
		return CTL_EXIT_OK;
	}
	cmd = find_command(argv[1]);
	if (!cmd) {
		log_error("unknown command \"%s\"", argv[1]);
		return CTL_EXIT_USAGE;
	}
	printf("%s — %s\n\n%s", cmd->name, cmd->summary, cmd->usage);
	return CTL_EXIT_OK;
}

static int cmd_version(struct ctl *ctl, int argc, char **argv)
{
	printf("daxpoolctl %s\n", DAXPOOL_VERSION_STRING);
	return CTL_EXIT_OK;
}

int main(int argc, char **argv)
{
	static const struct option options[] = {
		{ "socket", required_argument, NULL, 's' },
		{ "json", no_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{}
	};
	struct ctl ctl = {};
	const struct ctl_command *cmd;
	int c;

	log_setup("daxpoolctl", LOG_INFO);
	log_set_target(LOG_TARGET_CONSOLE);
	/* '+': stop at the first non-option, which is the subcommand; its options are its own. */
	while ((c = getopt_long(argc, argv, "+s:jhV", options, NULL)) >= 0) {
		switch (c) {
		case 's':
			ctl.socket_path = optarg;
			break;
		case 'j':
			ctl.json = true;
			break;
		case 'h':
			print_usage(stdout);
			return CTL_EXIT_OK;
		case 'V':
			return cmd_version(&ctl, 0, NULL);
		default:
			print_usage(stderr);
			return CTL_EXIT_USAGE;
		}
	}
	if (optind >= argc) {
		print_usage(stderr);
		return CTL_EXIT_USAGE;
	}
	cmd = find_command(argv[optind]);
	if (!cmd) {
		log_error("unknown command \"%s\" (see daxpoolctl help)", argv[optind]);
		return CTL_EXIT_USAGE;
	}
	return cmd->fn(&ctl, argc - optind, argv + optind);
}
