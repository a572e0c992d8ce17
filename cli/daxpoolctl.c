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
	{ "alloc", cmd_alloc, "create a named slice (for an application to open later)",
	  "daxpoolctl [--json] alloc NAME --size SIZE --align 4K|2M|1G [--owner USER|UID[:GROUP|GID]]\n"
	  "                          [--mode MODE]\n"
	  "  Allocates the named slice NAME of SIZE bytes (K, M, G, T suffixes; rounded up to the\n"
	  "  alignment) through daxpoold, owned by --owner (default: the caller; a user name brings\n"
	  "  its primary group) with permission bits --mode (octal, default 0600). Creating a slice\n"
	  "  for another owner needs root or the daemon's admin group. The slice stays until freed.\n" },
	{ "list", cmd_list, "list the slices visible to the caller",
	  "daxpoolctl [--json] list [--owner USER|UID] [--name GLOB]\n"
	  "  Lists slices (all of them for an administrator, else own and readable ones), optionally\n"
	  "  only those owned by USER and/or whose name matches the shell pattern GLOB (fnmatch).\n" },
	{ "show", cmd_show, "show one slice", "daxpoolctl [--json] show NAME\n"
	  "  Shows slice NAME: length, alignment, device offset, owner, group and mode.\n" },
	{ "free", cmd_free, "free a named slice", "daxpoolctl [--json] free NAME\n"
	  "  Frees slice NAME (owner or administrator). Its memory is reused only after every\n"
	  "  process that maps or pins it let go, and after zeroing.\n" },
	{ "stats", cmd_stats, "show pool statistics", "daxpoolctl [--json] stats [--prometheus]\n"
	  "  Pool UUID and backend, sizes, free bytes and largest free extent per alignment class,\n"
	  "  fragmentation, slices, quarantined slices, bad blocks, zeroing backlog and pins.\n"
	  "  --prometheus: the same in the Prometheus text format (node_exporter textfile).\n" },
	{ "settle", cmd_settle, "wait until freed slices are zeroed and reusable",
	  "daxpoolctl [--json] settle [--timeout SECONDS]\n"
	  "  Waits until no freed slice waits for its holders, its pins or its zeroing (the daemon\n"
	  "  zeroes freed memory in the background before it can be granted again). On a terminal\n"
	  "  a progress line shows what is left to zero, the rate and an ETA, and how many freed\n"
	  "  slices still wait for a process that maps or pins them. Exit 0 when settled, 1 after\n"
	  "  --timeout (which says what is still waiting).\n" },
	{ "format", cmd_format, "write a new, empty pool on a device or file (offline)",
	  "daxpoolctl [--json] format [--force] [--records N] DEVICE|FILE\n"
	  "  Writes an empty daxpool pool on a device-dax device or a regular file. Refuses a target\n"
	  "  another process holds open or mapped (daxpoold, its clients), and one that already holds\n"
	  "  a daxpool pool unless --force is given (every slice in it is lost). --records N: room\n"
	  "  for N slices (64..67108864; default one per 64 KiB of pool; 320 bytes each).\n" },
	{ "fsck", cmd_fsck, "check (and repair) a pool's metadata (offline)",
	  "daxpoolctl [--json] fsck [--repair] DEVICE|FILE\n"
	  "  Checks both superblock copies, the log, every record, overlaps and names. --repair fixes\n"
	  "  what is unambiguous. Refuses a target daxpoold (or anyone) holds. Exit status: 0 clean,\n"
	  "  4 repaired, 5 repairable (run with --repair), 6 damaged, 1 could not check.\n" },
	{ "regions", cmd_regions, "list NVDIMM regions (libndctl)",
	  "daxpoolctl [--json] regions\n"
	  "  Lists persistent-memory regions: size, available space, largest free extent, alignment\n"
	  "  and the namespaces in them.\n" },
	{ "devices", cmd_devices, "list device-dax devices (libdaxctl)",
	  "daxpoolctl [--json] devices\n"
	  "  Lists device-dax devices: region, size, alignment, mode (devdax or system-ram), the\n"
	  "  namespace behind it, whether it holds a daxpool pool and which process uses it.\n" },
	{ "create", cmd_create, "create a device-dax namespace in a region",
	  "daxpoolctl [--json] create --region REGION --size SIZE --align 4K|2M|1G\n"
	  "  Creates a devdax namespace of SIZE bytes in REGION (region0 or 0) with the given page\n"
	  "  alignment, and prints the new /dev/daxX.Y. SIZE must be a multiple of the alignment and\n"
	  "  fit the region's largest free extent; the region must support the alignment.\n" },
	{ "destroy", cmd_destroy, "destroy the namespace behind a device-dax device",
	  "daxpoolctl [--json] destroy [--force] DEVICE\n"
	  "  Disables and deletes the namespace of DEVICE (/dev/dax0.0 or dax0.0). Refuses a device\n"
	  "  another process holds (disabling a device daxpoold or a client uses can crash the\n"
	  "  kernel) or one onlined as system RAM. A device holding a daxpool pool needs --force.\n" },
	{ "bench", cmd_bench, "run a benchmark suite (daxpool-bench), JSON rows on stdout",
	  "daxpoolctl bench SUITE [ARGS]\n"
	  "  Runs one suite of daxpool-bench: alloc, service, touch, provision, pin, zero, isolation,\n"
	  "  scale or fairness (`daxpoolctl bench SUITE --help` lists the arguments; --quick for\n"
	  "  short runs). Every line of output is one JSON object {suite, system, metric, value,\n"
	  "  unit, params}.\n"
	  "  Suites start daxpoolds of their own; touch and pin reserve huge pages (root).\n"
	  "  daxpool-bench is found at $DAXPOOL_BENCH, beside daxpoolctl in a build tree, or in\n"
	  "  libexec/daxpool. See docs/PERFORMANCE.md.\n" },
	{ "verify", cmd_verify, "prove the kernel's side on slices of a running daxpoold",
	  "daxpoolctl [--json] verify [--scenario NAME] [--align 4K|2M|1G] [--size SIZE]\n"
	  "                           [--scratch FILE|BLOCKDEV]\n"
	  "  Runs scenarios on slices from daxpoold and reports every check as passed, failed or\n"
	  "  not run (with the reason), with observed and expected values: generation (the kernel's\n"
	  "  device-dax refcount model), faults (PTE/PMD/PUD inserts and minor faults), longterm\n"
	  "  (io_uring and RDMA pins), gup (O_DIRECT, vmsplice), munmap (under a pin; SIGKILL while\n"
	  "  pinned), teardown (destroy refused, no reuse of a pinned freed extent). Kernel probes\n"
	  "  need root and tracefs. --size: slice size (default 64M, rounded up to the alignment);\n"
	  "  --scratch: an O_DIRECT-capable file or block device for gup (default a file in\n"
	  "  $TMPDIR or /var/tmp). Exit status 1 if any check failed. See docs/VERIFICATION.md.\n" },
	{ "cdi", cmd_cdi, "write a CDI spec: a container device per named slice",
	  "daxpoolctl [--json] cdi [--output FILE] [--kind VENDOR/CLASS] [--container-socket PATH]\n"
	  "                        [--name GLOB]\n"
	  "  Prints (or writes atomically to FILE, e.g. /etc/cdi/daxpool.json) a Container Device\n"
	  "  Interface spec, version 0.5.0: a device per named slice the caller may see (all for an\n"
	  "  administrator; --name: those matching GLOB) and \"daxpool:any\" (the socket only). Each\n"
	  "  device mounts the daemon's socket at PATH (default /run/daxpool/daxpoold.sock) and sets\n"
	  "  DAXPOOL_SOCKET, a slice's device also DAXPOOL_SLICE=NAME. Kind: daxpool.io/slice, so\n"
	  "  podman run --device daxpool.io/slice=NAME. See docs/CLI.md.\n" },
	{ "version", cmd_version, "show daxpoolctl's version", "daxpoolctl version\n" },
	{ "help", cmd_help, "show help for all commands or one", "daxpoolctl help [COMMAND]\n" },
};

void ctl_print_json(struct json_object *obj)
{
	puts(json_object_to_json_string_ext(obj, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_NOSLASHESCAPE));
}

int ctl_print_done(const struct ctl *ctl, const char *key, const char *value, const char *done)
{
	if (ctl->json) {
		_cleanup_(json_object_putp) struct json_object *o = json_object_new_object();

		json_object_object_add(o, key, json_object_new_string(value));
		json_object_object_add(o, done, json_object_new_boolean(1));
		ctl_print_json(o);
	} else {
		printf("%s %s\n", done, value);
	}
	return CTL_EXIT_OK;
}

static void print_usage(FILE *f)
{
	fprintf(f, "Usage: daxpoolctl [--socket PATH] [--json] COMMAND [ARGS]\n\nCommands:\n");
	for (size_t i = 0; i < ARRAY_SIZE(commands); i++)
		fprintf(f, "  %-8s %s\n", commands[i].name, commands[i].summary);
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

void ctl_print_command_help(const char *name)
{
	const struct ctl_command *cmd = find_command(name);

	if (cmd)
		printf("%s — %s\n\n%s", cmd->name, cmd->summary, cmd->usage);
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
	ctl_print_command_help(cmd->name);
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
