/*
 * daxpool-verify, run as `daxpoolctl verify`: proves the kernel's side of what daxpool relies on
 * (fault paths, pins, GUP, munmap under pins, teardown under pins, the refcount model of the
 * kernel generation) on slices obtained from a running daxpoold. docs/VERIFICATION.md explains
 * every check. A program of its own so that the administration tool links none of what it needs
 * (liburing, libibverbs, libbpf, tracefs probes).
 *
 *   daxpool-verify [--socket PATH] [--json] [--scenario NAME] [--align 4K|2M|1G] [--size SIZE]
 *                  [--scratch DIR]
 * Exit: 0 every check passed or was not run, 1 a check failed, 2 bad command line, 3 the daemon
 * could not be reached (docs/CLI.md).
 */
#include "daxpool.h"
#include "log.h"
#include "macro.h"
#include "parse-util.h"
#include "verify-common.h"

#include <getopt.h>

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static const struct {
	const char *name;
	void (*fn)(struct verify *v);
} scenarios[] = {
	{ "generation", verify_generation }, { "faults", verify_faults },
	{ "longterm", verify_longterm },     { "gup", verify_gup },
	{ "munmap", verify_munmap },	     { "teardown", verify_teardown },
};

struct verify_args {
	const char *scenario;
	const char *scratch;
	uint64_t align, size;
};

enum { EXIT_USAGE = 2, EXIT_DAEMON = 3 };

static int usage(FILE *f, int code)
{
	fprintf(f, "Usage: daxpool-verify [--socket PATH] [--json] [--scenario NAME] [--align 4K|2M|1G]\n"
		   "                      [--size SIZE] [--scratch DIR]\n"
		   "Scenarios: generation, faults, longterm, gup, munmap, teardown (default: all).\n"
		   "Usually run as daxpoolctl verify (docs/VERIFICATION.md).\n");
	return code;
}

static int parse_args(int argc, char **argv, struct verify_args *a, const char **socket_path,
		      bool *json)
{
	static const struct option options[] = {
		{ "scenario", required_argument, NULL, 'S' }, { "align", required_argument, NULL, 'a' },
		{ "size", required_argument, NULL, 's' },     { "scratch", required_argument, NULL, 'd' },
		{ "socket", required_argument, NULL, 'k' },   { "json", no_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' },	      {}
	};
	int c;

	opterr = 0;
	while ((c = getopt_long(argc, argv, ":S:a:s:d:h", options, NULL)) >= 0) {
		switch (c) {
		case 'S':
			a->scenario = NULL;
			for (size_t i = 0; i < ARRAY_SIZE(scenarios); i++)
				if (strcmp(optarg, scenarios[i].name) == 0)
					a->scenario = scenarios[i].name;
			if (!a->scenario) {
				log_error("--scenario: unknown scenario \"%s\" (generation, faults, longterm, "
					  "gup, munmap, teardown)", optarg);
				return EXIT_USAGE;
			}
			break;
		case 'a':
			if (parse_page_size(optarg, &a->align) < 0) {
				log_error("--align: \"%s\" is not an alignment (4K, 2M or 1G)", optarg);
				return EXIT_USAGE;
			}
			break;
		case 's':
			if (parse_size(optarg, &a->size) < 0 || a->size == 0) {
				log_error("--size: \"%s\" is not a size (bytes > 0, with an optional K, M, G "
					  "or T suffix)", optarg);
				return EXIT_USAGE;
			}
			break;
		case 'd':
			if (!optarg[0]) {
				log_error("--scratch: empty path");
				return EXIT_USAGE;
			}
			a->scratch = optarg;
			break;
		case 'k':
			*socket_path = optarg;
			break;
		case 'j':
			*json = true;
			break;
		case 'h':
			return -1;
		case ':':
			log_error("option %s needs an argument", argv[optind - 1]);
			return EXIT_USAGE;
		default:
			log_error("unknown option %s (see --help)", argv[optind - 1]);
			return EXIT_USAGE;
		}
	}
	if (optind < argc) {
		log_error("verify takes no operands (\"%s\")", argv[optind]);
		return EXIT_USAGE;
	}
	return 0;
}

int main(int argc, char **argv)
{
	struct verify_args args = {};
	_cleanup_(disconnectp) struct daxpool *dp = NULL;
	const char *socket_path = NULL, *ctl;
	struct verify v = {};
	struct daxpool_stats st;
	struct json_object *root;
	bool json = false;
	int r;

	log_setup("daxpoolctl verify", LOG_INFO);
	log_set_target(LOG_TARGET_CONSOLE);
	r = parse_args(argc, argv, &args, &socket_path, &json);
	if (r < 0)
		return usage(stdout, EXIT_SUCCESS);
	if (r > 0)
		return r;
	r = daxpool_connect(socket_path, &dp);
	if (r < 0) {
		log_error("%s", daxpool_errormsg());
		return EXIT_DAEMON;
	}
	r = daxpool_stat(dp, &st, sizeof(st));
	if (r < 0) {
		log_error("verify: daxpoold serves no pool: %s", daxpool_errormsg());
		return EXIT_FAILURE;
	}
	v.dp = dp;
	v.devdax = st.backend == 1;
	v.granule = st.device_align ? st.device_align : 4096;
	v.align = args.align ? args.align : MAX(v.granule, DAXPOOL_ALIGN_4K);
	if (v.align > DAXPOOL_ALIGN_1G)
		v.align = DAXPOOL_ALIGN_1G;
	/* A slice of a device-dax device is mapped at the device's alignment whatever the slice's
	 * own alignment: a slice aligned less than the device cannot be mapped at all. */
	if (v.devdax && v.align < v.granule) {
		log_error("verify: --align %llu KiB is below the device's alignment (%llu KiB): device-dax "
			  "maps at its own alignment", (unsigned long long)(v.align >> 10),
			  (unsigned long long)(v.granule >> 10));
		return EXIT_USAGE;
	}
	v.size = args.size ? args.size : UINT64_C(64) << 20;
	v.size = (v.size + v.align - 1) / v.align * v.align;
	v.scratch = args.scratch;
	v.socket_path = socket_path;
	v.seed = (unsigned)time(NULL) ^ (unsigned)getpid();
	/* daxpoolctl, for the check that it refuses to destroy a device in use: the one that ran us
	 * (daxpoolctl verify sets DAXPOOL_CTL), else the one on PATH. */
	ctl = getenv("DAXPOOL_CTL");
	v.ctl_exe = ctl && *ctl ? ctl : "daxpoolctl";
	r = vreport_new(&v.rep);
	if (r < 0)
		return EXIT_FAILURE;
	root = vreport_root(v.rep);
	json_object_object_add(root, "backend", json_object_new_string(v.devdax ? "devdax" : "emulated"));
	json_object_object_add(root, "device_align", json_object_new_uint64(v.granule));
	json_object_object_add(root, "align", json_object_new_uint64(v.align));
	json_object_object_add(root, "size", json_object_new_uint64(v.size));
	json_object_object_add(root, "scenario", json_object_new_string(args.scenario ? args.scenario : "all"));
	verify_probes_setup(&v);
	v.readings = json_object_new_array();
	vreport_observe(v.rep, "refcount_trace", v.readings);
	/* The generation scenario always runs: the others check against the model it confirms. */
	for (size_t i = 0; i < ARRAY_SIZE(scenarios); i++)
		if (i == 0 || !args.scenario || strcmp(args.scenario, scenarios[i].name) == 0)
			scenarios[i].fn(&v);
	json_object_object_add(root, "generation", json_object_new_string(v.generation ? v.generation : "unknown"));
	json_object_object_add(root, "model", json_object_new_string(verify_gen_name(v.gen)));
	vtrace_delete(&v.trace);
	vreport_print(v.rep, json);
	r = vreport_count(v.rep, VCHECK_FAILED) ? EXIT_FAILURE : EXIT_SUCCESS;
	vreport_delete(&v.rep);
	return r;
}
