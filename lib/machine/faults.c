/* Page fault counts for tests; see faults.h. */
#include "faults.h"

#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

/* Not instrumented: under ASan every store would also touch shadow memory (1/8 of the range in 4K
 * pages), and the count is about the kernel's mapping, not about this loop. */
__attribute__((no_sanitize("address"))) long faults_touch(volatile char *addr, uint64_t len)
{
	long before = faults_minor();

	for (uint64_t off = 0; off < len; off += 4096)
		addr[off] = 1;
	return faults_minor() - before;
}

long faults_minor(void)
{
	struct rusage ru;

	getrusage(RUSAGE_SELF, &ru);
	return ru.ru_minflt;
}

bool faults_meaningful(void)
{
	const char *pre = getenv("LD_PRELOAD");

	return !(pre && strstr(pre, "vgpreload"));
}
