/*
 * Fuzz target: daxpoold's JSON config parser (daemon/options.c). The input is the file's content;
 * it reaches options_load_config through a memfd, as a file would. Properties beyond "no crash,
 * no leak": the parser returns 0 or -EINVAL/-ENOMEM, an accepted file leaves only values the
 * daemon can use (checked against the documented ranges), and options_validate never crashes on
 * whatever a file left behind.
 */
#include "fuzz.h"
#include "log.h"
#include "options.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

static int memfd = -1;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct daxpoold_options opts;
	char path[64];
	int r;

	options_defaults(&opts);

	if (memfd < 0) {
		/* Every error is logged: silence it, or the fuzzer spends its time writing to stderr. */
		log_set_max_level(-1);
		memfd = memfd_create("fuzz-config", MFD_CLOEXEC);
		FUZZ_CHECK(memfd >= 0, "memfd_create: %m");
	}
	FUZZ_CHECK(ftruncate(memfd, 0) == 0, "ftruncate: %m");
	FUZZ_CHECK(pwrite(memfd, data, size, 0) == (ssize_t)size, "pwrite: %m");
	snprintf(path, sizeof(path), "/proc/self/fd/%d", memfd);

	r = options_load_config(&opts, path);
	FUZZ_CHECK(r == 0 || r == -EINVAL || r == -ENOMEM, "options_load_config returned %d", r);
	if (r == 0) {
		FUZZ_CHECK(opts.max_clients >= 1 && opts.max_clients <= 65536, "max_clients %u", opts.max_clients);
		FUZZ_CHECK(opts.socket_mode <= 07777, "socket_mode %o", opts.socket_mode);
		FUZZ_CHECK(opts.log_level >= LOG_EMERG && opts.log_level <= LOG_DEBUG, "log_level %d", opts.log_level);
		FUZZ_CHECK(opts.send_timeout_s >= 1 && opts.send_timeout_s <= 3600, "send_timeout_s %u",
			   opts.send_timeout_s);
		FUZZ_CHECK(opts.pin_grace_ms <= 600000, "pin_grace_ms %u", opts.pin_grace_ms);
		FUZZ_CHECK(!opts.runtime_dir || opts.runtime_dir[0] == '/', "relative runtime_dir");
		FUZZ_CHECK(opts.page_size == 4096 || opts.page_size == 2u << 20 || opts.page_size == 1u << 30,
			   "page_size %llu", (unsigned long long)opts.page_size);
		if (!opts.socket_path)
			opts.socket_path = strdup("/run/daxpool/fuzz.sock");
		(void)options_validate(&opts);
	}
	options_free(&opts);
	return 0;
}
