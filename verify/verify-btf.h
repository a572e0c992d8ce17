/* daxpoolctl verify: offsets of the page/folio counters from the running kernel's BTF, for
 * kprobe events with raw offsets on kernels without BTF-typed probe arguments (5.10, 6.1). */
#pragma once

#include <stddef.h>

struct vfolio_offsets {
	long refcount; /* _refcount (atomic_t: the int counter is at +0) */
	long pincount; /* the large folio's pin count, or -1 if the kernel has none */
	long mapcount; /* _mapcount of the head page */
	long flags;    /* the flags word (always 0 so far) */
	int pg_head;   /* bit of PG_head in flags (enum pageflags), -1 if unknown */
	const char *source; /* how they were obtained */
};

/*
 * struct folio (6.1 and later): fills *ret from /sys/kernel/btf/vmlinux (libbpf). Without libbpf
 * or without BTF it returns a negative errno and writes why into reason; the caller may then fall
 * back to the documented values for a kernel it knows (docs/VERIFICATION.md).
 */
int vbtf_folio_offsets(struct vfolio_offsets *ret, char *reason, size_t size);

/*
 * struct page of a kernel without folios (5.10): _refcount of the (head) page, and the compound
 * page's pin count, which lives in the first tail page (hpage_pinned_refcount in 5.10,
 * compound_pincount later): sizeof(struct page) + its offset there.
 */
int vbtf_page_offsets(struct vfolio_offsets *ret, char *reason, size_t size);
