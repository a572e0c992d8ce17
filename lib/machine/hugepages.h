/*
 * Huge pages and hugetlbfs for the tests and benchmarks that need them (root): raise
 * nr_hugepages for one page size, mount hugetlbfs, and put both back afterwards. Used by
 * tests/unit/backend/test-hugetlb.c, tests/integration/test_client_map.c and bench/util.c.
 * Functions return 0 (or a count) on success and a negative errno on failure; they never print:
 * each caller words its own skip reason.
 */
#pragma once

#include <stdint.h>
#include <sys/types.h>

/* One raise of nr_hugepages for one page size. All zero: holds nothing (undoing it is a no-op). */
struct hugepages {
	uint64_t page_size;
	long prev;	    /* nr_hugepages before the raise; -1 if it could not be read */
	long added;	    /* pages the raise added: the kernel may grant fewer than asked */
	char nr_path[96];   /* /sys/kernel/mm/hugepages/hugepages-<kB>kB/nr_hugepages */
	char prev_text[24]; /* prev as text, so that hugepages_restore need not format (signals) */
};

/* A counter of the huge page pool of page_size ("nr_hugepages", "free_hugepages"): its value, or
 * -errno (-ENOENT: this kernel has no huge pages of that size). */
long hugepages_read(uint64_t page_size, const char *counter);

/*
 * Raises nr_hugepages of page_size by `more`. Returns 0 if the kernel granted at least `at_least`
 * of them (h->added says how many); then hugepages_restore or hugepages_give_back undoes it.
 * Otherwise nothing stays raised and it returns -ENOENT (no huge pages of that size), -ENOMEM
 * (fewer granted: memory fragmented or too small) or the -errno of writing nr_hugepages
 * (-EACCES: not root). h->nr_path is set in every case, for messages.
 */
int hugepages_reserve(struct hugepages *h, uint64_t page_size, long more, long at_least);

/*
 * Makes sure `want` free pages of page_size exist, raising nr_hugepages by what is missing (nothing
 * when enough are free already). 0, or -ENOENT (no huge pages of that size), -EPERM (some are
 * missing and only root may add them), -ENOMEM or a write's -errno (the kernel would not add
 * enough; nothing stays raised).
 */
int hugepages_reserve_free(struct hugepages *h, uint64_t page_size, long want);

/*
 * Writes nr_hugepages back to its value before the raise: for a test that has the machine's huge
 * pages to itself and wants it left as it found it. Async-signal-safe (open, write, close only),
 * so a watchdog may call it. 0 or -errno; a no-op (0) when nothing is held or after the first call.
 */
int hugepages_restore(struct hugepages *h);

/*
 * Takes back only the pages this raise added, from whatever nr_hugepages is now: something running
 * beside us (a test next to a benchmark) may have raised it too and keeps its own. 0 or -errno; a
 * no-op (0) when nothing is held or after the first call.
 */
int hugepages_give_back(struct hugepages *h);

/* Mounts hugetlbfs with pages of page_size on dir (created with mode if missing), its root
 * directory with mode. 0 or -errno. */
int hugetlbfs_mount(const char *dir, uint64_t page_size, mode_t mode);

/* Unmounts dir and removes it. 0 or -errno (-EBUSY: a file on it is still mapped or open). */
int hugetlbfs_unmount(const char *dir);
