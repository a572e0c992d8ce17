/* Huge page accounting from sysfs, so a failed reservation can say how many pages it needed and
 * how many were free. */
#include "backend-internal.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>

static int read_u64(const char *path, uint64_t *ret)
{
	_cleanup_(fclosep) FILE *f = fopen(path, "re");
	uint64_t v;

	if (!f)
		return negative_errno();
	if (fscanf(f, "%" SCNu64, &v) != 1)
		return -EIO;
	*ret = v;
	return 0;
}

int hugetlb_available(uint64_t page_size, uint64_t *ret_free, uint64_t *ret_total)
{
	char path[128];
	uint64_t nfree, resv, total;
	int r;

	snprintf(path, sizeof(path), "/sys/kernel/mm/hugepages/hugepages-%" PRIu64 "kB/free_hugepages",
		 page_size / 1024);
	r = read_u64(path, &nfree);
	if (r < 0)
		return r;
	snprintf(path, sizeof(path), "/sys/kernel/mm/hugepages/hugepages-%" PRIu64 "kB/resv_hugepages",
		 page_size / 1024);
	r = read_u64(path, &resv);
	if (r < 0)
		return r;
	snprintf(path, sizeof(path), "/sys/kernel/mm/hugepages/hugepages-%" PRIu64 "kB/nr_hugepages",
		 page_size / 1024);
	r = read_u64(path, &total);
	if (r < 0)
		return r;
	/* Reserved pages are free but promised to mappings already made. */
	*ret_free = nfree > resv ? nfree - resv : 0;
	*ret_total = total;
	return 0;
}
