/*
 * daxpoolctl verify [ARGS]: runs daxpool-verify (verify/), which proves the kernel's side of
 * what daxpool relies on (docs/VERIFICATION.md), with this command line's --socket and --json.
 *
 * daxpool-verify is a separate program, not code linked into daxpoolctl: it needs liburing,
 * libibverbs, libbpf and tracefs probes, none of which an administration tool should carry. It
 * is found, in this order, at $DAXPOOL_VERIFY; beside daxpoolctl in a build tree
 * (BUILD/cli/daxpoolctl -> BUILD/verify/daxpool-verify); installed in
 * LIBEXECDIR/daxpool/daxpool-verify (DAXPOOL_VERIFY_PATH). It learns where this daxpoolctl is
 * ($DAXPOOL_CTL) for its check that destroying a device in use is refused.
 */
#include "daxpoolctl.h"
#include "log.h"
#include "macro.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int cmd_verify(struct ctl *ctl, int argc, char **argv)
{
	char self[PATH_MAX], buf[PATH_MAX];
	const char *prog = ctl_find_helper("DAXPOOL_VERIFY", "verify/daxpool-verify",
#ifdef DAXPOOL_VERIFY_PATH
					   DAXPOOL_VERIFY_PATH,
#else
					   "daxpool-verify",
#endif
					   buf, sizeof(buf));
	char **args = calloc((size_t)argc + 5, sizeof(*args));
	ssize_t n;
	int k = 0;

	if (!args) {
		log_error("out of memory");
		return CTL_EXIT_FAILURE;
	}
	if (access(prog, X_OK) < 0) {
		log_error("cannot run %s: %m (build the daxpool-verify target, install it, or set "
			  "$DAXPOOL_VERIFY)", prog);
		free(args);
		return CTL_EXIT_FAILURE;
	}
	n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	if (n > 0) {
		self[n] = '\0';
		setenv("DAXPOOL_CTL", self, 1);
	}
	args[k++] = (char *)prog;
	if (ctl->socket_path) {
		args[k++] = (char *)"--socket";
		args[k++] = (char *)ctl->socket_path;
	}
	if (ctl->json)
		args[k++] = (char *)"--json";
	for (int i = 1; i < argc; i++)
		args[k++] = argv[i];
	args[k] = NULL;
	fflush(stdout);
	execv(prog, args);
	log_error("cannot run %s: %m", prog);
	free(args);
	return CTL_EXIT_FAILURE;
}
