/* daxpoolctl verify: proves the kernel's side of what daxpool relies on (fault paths, pins,
 * GUP, munmap under pins, teardown under pins, the refcount model of the kernel generation)
 * on slices obtained from a running daxpoold. docs/VERIFICATION.md explains every check. */
#include "daxpool.h"
#include "daxpoolctl.h"
#include "log.h"
#include "macro.h"
#include "verify-common.h"

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

static int verify_option(int c, const char *arg, void *userdata)
{
	struct verify_args *a = userdata;

	switch (c) {
	case 'S':
		for (size_t i = 0; i < ARRAY_SIZE(scenarios); i++)
			if (strcmp(arg, scenarios[i].name) == 0) {
				a->scenario = scenarios[i].name;
				return CTL_EXIT_OK;
			}
		log_error("--scenario: unknown scenario \"%s\" (generation, faults, longterm, gup, "
			  "munmap, teardown)", arg);
		return CTL_EXIT_USAGE;
	case 'a':
		return ctl_parse_align("--align", arg, &a->align);
	case 's':
		return ctl_parse_size("--size", arg, &a->size);
	case 'd':
		if (!arg[0]) {
			log_error("--scratch: empty path");
			return CTL_EXIT_USAGE;
		}
		a->scratch = arg;
		return CTL_EXIT_OK;
	}
	return CTL_EXIT_USAGE;
}


int cmd_verify(struct ctl *ctl, int argc, char **argv)
{
	static const struct option options[] = {
		{ "scenario", required_argument, NULL, 'S' }, { "align", required_argument, NULL, 'a' },
		{ "size", required_argument, NULL, 's' },     { "scratch", required_argument, NULL, 'd' },
		{}
	};
	struct verify_args args = {};
	_cleanup_(disconnectp) struct daxpool *dp = NULL;
	struct verify v = {};
	struct daxpool_stats st;
	struct json_object *root;
	char exe[PATH_MAX];
	ssize_t n;
	int r, first;

	r = ctl_parse_options(ctl, argc, argv, "S:a:s:d:", options, verify_option, &args, &first);
	if (r != CTL_EXIT_OK)
		return r < 0 ? CTL_EXIT_OK : r;
	r = ctl_check_operands("verify", argc - first, 0, 0);
	if (r != CTL_EXIT_OK)
		return r;
	r = ctl_connect(ctl, &dp);
	if (r != CTL_EXIT_OK)
		return r;
	r = daxpool_stat(dp, &st, sizeof(st));
	if (r < 0) {
		log_error("verify: daxpoold serves no pool: %s", daxpool_errormsg());
		return CTL_EXIT_FAILURE;
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
		return CTL_EXIT_USAGE;
	}
	v.size = args.size ? args.size : UINT64_C(64) << 20;
	v.size = (v.size + v.align - 1) / v.align * v.align;
	v.scratch = args.scratch;
	v.socket_path = ctl->socket_path;
	v.seed = (unsigned)time(NULL) ^ (unsigned)getpid();
	n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	exe[n > 0 ? n : 0] = '\0';
	v.self_exe = exe;
	r = vreport_new(&v.rep);
	if (r < 0)
		return CTL_EXIT_FAILURE;
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
	vreport_print(v.rep, ctl->json);
	r = vreport_count(v.rep, VCHECK_FAILED) ? CTL_EXIT_FAILURE : CTL_EXIT_OK;
	vreport_delete(&v.rep);
	return r;
}
