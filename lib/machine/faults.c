/* Page fault counts for tests; see faults.h. */
#include "faults.h"

#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

/* Not instrumented: under ASan every store would also touch shadow memory (1/8 of the range in 4K
 * pages), and the count is about the kernel's mapping, not about this loop. */
__attribute__((no_sanitize("address"))) long faults_touch(volatile char *addr, uint64_t len)
{
	struct rusage before, after;

	getrusage(RUSAGE_SELF, &before);
	for (uint64_t off = 0; off < len; off += 4096)
		addr[off] = 1;
	getrusage(RUSAGE_SELF, &after);
	return after.ru_minflt - before.ru_minflt;
}

bool faults_meaningful(void)
{
	const char *pre = getenv("LD_PRELOAD");

	return !(pre && strstr(pre, "vgpreload"));
}
