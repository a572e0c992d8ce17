/* Page fault counts for the tests that check how the kernel maps a range (one fault per 4K page,
 * per 2M PMD or per 1G PUD). Used by backend-hugetlb, test_client_map, daxpool-verify and the
 * lab's device checks. */
#pragma once

#include <stdbool.h>
#include <stdint.h>

/* Minor faults this process has taken so far (getrusage ru_minflt): take two readings around
 * what should fault. */
long faults_minor(void);

/* Minor faults this process takes while writing one byte per 4K page of [addr, addr+len). */
long faults_touch(volatile char *addr, uint64_t len);

/* Whether such counts can be checked here: under valgrind its own shadow memory faults are counted
 * too, so tests then print the count and do not check it. */
bool faults_meaningful(void);
