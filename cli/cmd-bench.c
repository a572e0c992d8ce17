/*
 * daxpoolctl bench SUITE [ARGS]: runs one suite of daxpool-bench, whose JSON rows (one object a
 * line: suite, system, metric, value, unit, params) go to stdout unchanged.
 *
 * daxpool-bench is a separate program, not code linked into daxpoolctl: it links libpmemobj,
 * libibverbs and the pool library, and starts daxpoolds of its own, none of which an
 * administration tool should carry. It is found, in this order, at $DAXPOOL_BENCH; beside
 * daxpoolctl in a build tree (BUILD/cli/daxpoolctl -> BUILD/bench/daxpool-bench); installed in
 * LIBEXECDIR/daxpool/daxpool-bench (DAXPOOL_BENCH_PATH).
 */
#include "daxpoolctl.h"
#include "log.h"
#include "macro.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

/* The suites daxpool-bench has (bench/main.c); checked here for a clear error before exec. */
static const char *const suites[] = { "alloc", "service", "touch", "provision", "pin", "zero", "scale", "isolation", "fairness" };

int cmd_bench(struct ctl *ctl, int argc, char **argv)
{
	char buf[PATH_MAX];
	const char *bench = ctl_find_helper("DAXPOOL_BENCH", "bench/daxpool-bench",
#ifdef DAXPOOL_BENCH_PATH
					    DAXPOOL_BENCH_PATH,
#else
					    "daxpool-bench",
#endif
					    buf, sizeof(buf));
	bool known = false;

	if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
		ctl_print_command_help("bench");
		return argc < 2 ? CTL_EXIT_USAGE : CTL_EXIT_OK;
	}
	for (size_t i = 0; i < ARRAY_SIZE(suites); i++)
		known |= strcmp(argv[1], suites[i]) == 0;
	if (!known) {
		log_error("unknown benchmark suite \"%s\" (alloc, service, touch, provision, pin, zero, "
			  "scale, isolation, fairness)", argv[1]);
		return CTL_EXIT_USAGE;
	}
	if (access(bench, X_OK) < 0) {
		log_error("cannot run %s: %m (build the daxpool-bench target, install it, or set "
			  "$DAXPOOL_BENCH)", bench);
		return CTL_EXIT_FAILURE;
	}
	/* argv[0] becomes the program; the suite and its arguments follow unchanged. */
	argv[0] = (char *)bench;
	fflush(stdout);
	execv(bench, argv);
	log_error("cannot run %s: %m", bench);
	return CTL_EXIT_FAILURE;
}
