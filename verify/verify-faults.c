/* daxpoolctl verify, scenario "faults": touching a slice takes exactly one PTE, PMD or PUD insert
 * per device page (the device's alignment, which is device-dax's fault size) and as many minor
 * faults. Inserts are counted by kprobes on the generation's insert functions, filtered to this
 * process; minor faults by getrusage, which needs no privilege and runs on every backend. */
#include "faults.h"
#include "verify-common.h"

#include <errno.h>
#include <string.h>
#include <unistd.h>

void verify_faults(struct verify *v)
{
	static const char *S = "faults";
	static const char *const checks[3] = { "pte-inserts", "pmd-inserts", "pud-inserts" };
	struct daxpool_slice *s = NULL;
	uint64_t len, pages, hits[3] = { 0 };
	bool counting[3] = { false };
	int errs[3] = { 0 };
	long f0, f1;
	void *a;
	int r, level;

	r = verify_slice_new(v, &s, &a);
	if (r < 0) {
		vreport_add(v->rep, S, "slice", VCHECK_FAILED, NULL, NULL, "%s", daxpool_errormsg());
		return;
	}
	len = daxpool_slice_get_length(s);
	pages = len / v->granule;
	level = verify_level(v);
	/* Without hist triggers the counts include every process's inserts: let daxpoold finish
	 * zeroing what earlier scenarios freed (it faults the device in its own mapping). */
	if (v->devdax && v->insert_probes)
		(void)verify_wait_settled(v, 60000);
	if (v->devdax && v->insert_probes)
		for (int i = 0; i < 3; i++) {
			errs[i] = vtrace_count_start(v->trace, verify_insert_event(i), getpid());
			counting[i] = errs[i] == 0;
		}
	/* The loop's and getrusage's own code and stack faulted in beforehand, on memory that is
	 * no slice's: between f0 and f1 only the slice's pages fault. */
	{
		uint8_t warm[64];

		verify_touch(warm, sizeof(warm));
		(void)faults_minor();
	}
	f0 = faults_minor();
	verify_touch(a, len);
	f1 = faults_minor();
	for (int i = 0; i < 3; i++)
		if (counting[i] && vtrace_count_stop(v->trace, verify_insert_event(i), getpid(), &hits[i]) < 0)
			counting[i] = false;

	for (int i = 0; i < 3; i++) {
		if (!v->devdax)
			vreport_skip(v->rep, S, checks[i], "emulated backend: no device-dax insert path");
		else if (!v->insert_probes)
			vreport_skip(v->rep, S, checks[i], "%s", v->insert_reason);
		else if (!counting[i])
			vreport_add(v->rep, S, checks[i], VCHECK_FAILED, NULL, NULL, "hist trigger on %s failed: %s",
				    verify_insert_func(v, i), strerror(-errs[i]));
		else if (!vtrace_count_is_global(v->trace))
			vreport_eq(v->rep, S, checks[i], (int64_t)hits[i], i == level ? (int64_t)pages : 0,
				   "%s hits touching %llu MiB (device pages of %llu KiB)", verify_insert_func(v, i),
				   (unsigned long long)(len >> 20), (unsigned long long)(v->granule >> 10));
		else
			/* Every process's hits: a fault elsewhere may add a few (the minor-faults check
			 * below is this process's alone). */
			vreport_range(v->rep, S, checks[i], (int64_t)hits[i], i == level ? (int64_t)pages : 0,
				      (i == level ? (int64_t)pages : 0) + 2,
				      "%s hits touching %llu MiB (device pages of %llu KiB), counted for every "
				      "process (no hist triggers)", verify_insert_func(v, i),
				      (unsigned long long)(len >> 20), (unsigned long long)(v->granule >> 10));
	}
	/* device-dax faults at its own alignment (drivers/dax/device.c: dev_dax_huge_fault inserts
	 * one PTE, PMD or PUD per fault, never more, never a fallback to a smaller size on an
	 * aligned mapping), and each fault counts once in ru_minflt (mm/memory.c mm_account_fault).
	 * A hugetlbfs file maps one huge page per fault the same way. */
	if (v->devdax || v->granule > 4096)
		vreport_eq(v->rep, S, "minor-faults", f1 - f0, (int64_t)pages,
			   "getrusage ru_minflt touching %llu MiB, one fault per %llu KiB page",
			   (unsigned long long)(len >> 20), (unsigned long long)(v->granule >> 10));
	else
		/* A plain file's page cache may hold large folios, and a fault then maps the whole
		 * folio (up to PMD size): between one fault per 2 MiB and one per 4 KiB. */
		vreport_range(v->rep, S, "minor-faults", f1 - f0, (int64_t)(len >> 21), (int64_t)pages + 2,
			      "getrusage ru_minflt touching %llu MiB of an emulated 4K pool (a file: "
			      "large page-cache folios map up to 2 MiB per fault)",
			      (unsigned long long)(len >> 20));
	if (v->trace)
		vreport_observe(v->rep, "insert_count_method", json_object_new_string(vtrace_count_method(v->trace)));
	verify_slice_close(v, &s);
}
