/* daxpoolctl verify: offsets of struct folio's counters from the running kernel's BTF, for
 * kprobe events with raw offsets on kernels without BTF-typed probe arguments (6.1). */
#pragma once

#include <stddef.h>

struct vfolio_offsets {
	long refcount; /* folio->_refcount (atomic_t: the int counter is at +0) */
	long pincount; /* folio->_pincount, or -1 if the struct has none */
	long mapcount; /* folio->_mapcount */
	const char *source; /* how they were obtained */
};

/*
 * Fills *ret from /sys/kernel/btf/vmlinux (libbpf). Without libbpf or without BTF it returns a
 * negative errno and writes why into reason; the caller may then fall back to the documented
 * values for a kernel it knows (docs/VERIFICATION.md).
 */
int vbtf_folio_offsets(struct vfolio_offsets *ret, char *reason, size_t size);
