/* daxpoolctl verify: the state the scenarios share, and their helpers (verify/verify-common.c). */
#pragma once

#include "daxpool.h"
#include "verify-report.h"
#include "verify-trace.h"

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

/* Whether mapping a device-dax page takes a reference on it (docs/VERIFICATION.md): the model the
 * fault path's insert function implies, per page-table level. */
enum vgen {
	VGEN_UNKNOWN,
	VGEN_BEFORE, /* the fault handler inserts a pfn (devmap entry): the mapping takes no reference */
	VGEN_AFTER,  /* it inserts the folio/page: the mapping takes a reference, like any other page */
};

/* How io_uring's buffer registration treats a MAP_PRIVATE mapping of a regular file. */
enum vuring {
	VURING_UNKNOWN,	      /* not probed (no io_uring, or it failed otherwise): see uring_why */
	VURING_FILE_CHECK,    /* EOPNOTSUPP: io_uring's own check refuses file-backed memory that is
			       * neither shmem nor hugetlbfs — device-dax included */
	VURING_GUP_DECIDES,   /* accepted: io_uring leaves it to GUP's FOLL_LONGTERM rules, which
			       * refuse only fsdax and mappings that need dirty tracking */
};

/* What this kernel has, each probed on its own (verify/verify-probes.c). */

/* _cleanup_ of a connection. */
static inline void disconnectp(struct daxpool **dp)
{
	daxpool_disconnect(dp);
}

struct vfacts {
	const char *insert[3];	/* the fault path's insert function per level (PTE, PMD, PUD) */
	enum vgen insert_model[3];
	const char *put_path;	/* the GUP put function the refcount probe sits on */
	bool page_gup;		/* GUP works on pages (put_compound_head), not folios */
	bool fprobe, btf;
	enum vuring uring;
	char uring_why[200];
	bool flags_read;	/* the probe reads the flags word: compound or not is observed */
	int pg_head;		/* PG_head's bit in it (BTF), -1 if unknown */
};

struct verify {
	struct daxpool *dp;
	struct vreport *rep;
	struct vtrace *trace; /* NULL: no probes (trace_reason says why) */
	char trace_reason[256];
	bool ref_probe; /* folio refcounts readable (ref_reason says why not) */
	char ref_reason[256];
	bool insert_probes;
	char insert_reason[256];
	const char *ctl_exe;  /* daxpoolctl, for the destroy refusal */
	const char *socket_path;
	const char *scratch; /* file or block device for O_DIRECT; NULL: a temp file */
	uint64_t align, size;
	uint64_t granule; /* the device's fault size: device-dax maps at its own alignment */
	bool devdax;
	enum vgen sym_gen, gen; /* the model the device's level implies, and the one seen */
	struct vfacts facts;
	const char *generation; /* the reference kernel whose model these facts match */
	unsigned seed;
	struct json_object *readings; /* raw trace lines of refcount readings (report observations) */
};

/* get_user_pages' pin of a small folio is counted in its refcount with this bias (mm.h). */
#define GUP_PIN_COUNTING_BIAS 1024

/* A folio's counters as read through the probe, without the reading's own pin. */
struct vref {
	int64_t ref, pin;
	bool large; /* a compound page (pins counted in pin, not with a bias in ref) */
};

/* Allocates an anonymous slice of v->size at v->align and maps it with daxpool_map. */
int verify_slice_new(struct verify *v, struct daxpool_slice **ret, void **ret_addr);
/* Closes a slice (unmapping it); accepts NULL. */
void verify_slice_close(struct verify *v, struct daxpool_slice **s);

/* A second mapping of the slice, aligned like daxpool_map's and MADV_DONTFORK, made here (not
 * by libdaxpool) so a scenario can unmap it while it is pinned. */
int verify_map_extra(const struct daxpool_slice *s, uint64_t align, void **ret);
void verify_unmap_extra(void *addr, uint64_t len);

/* Writes one byte per 4 KiB page of [addr, addr+len). */
void verify_touch(void *addr, uint64_t len);
/* Fills len bytes with a pattern of seed. */
void verify_pattern(void *addr, size_t len, unsigned seed);

/*
 * Reads the counters of the folio behind addr: pins that one page with process_vm_readv() on
 * ourselves and records gup_put_folio's view of the folio as the pin is dropped, minus that
 * pin's own share (1 ref + 1 pincount for a large folio, GUP_PIN_COUNTING_BIAS refs for a
 * small one). Returns -ENOTSUP if !v->ref_probe.
 */
int verify_read_ref(struct verify *v, const void *addr, struct vref *ret);
/* Polls verify_read_ref until ref == want or timeout_ms passed; *ret gets the last reading. */
int verify_wait_ref(struct verify *v, const void *addr, int64_t want, int timeout_ms, struct vref *ret);

/* How much a scenario pins: a pin of any part of a folio shows in the folio's counters, and
 * pinning a whole GiB under QEMU TCG (262144 pages through GUP and the RDMA driver) only costs
 * lab time. At most one device page, and at most 2 MiB of a 1 GiB one. */
#define VERIFY_PIN_MAX (UINT64_C(2) << 20)
static inline uint64_t verify_pin_len(const struct verify *v)
{
	return v->granule < VERIFY_PIN_MAX ? v->granule : VERIFY_PIN_MAX;
}
/* The long-term registrations of the longterm scenario: at most 64 MiB of the slice. */
#define VERIFY_LONGTERM_MAX (UINT64_C(64) << 20)

/* The mapping's share of a folio's refcount for the generation: 1 after, 0 before. */
int64_t verify_map_share(const struct verify *v);
/* Waits until daxpoold has no freed extent waiting (holders, pins, grace, zeroing): it zeroes
 * through its own mapping of the device, i.e. takes faults of its own. */
bool verify_wait_settled(struct verify *v, int timeout_ms);
/* The level (0 PTE, 1 PMD, 2 PUD) of the device's fault size. */
int verify_level(const struct verify *v);
/* /dev/daxX.Y behind a slice's fd, or "" for the emulated backend's file. */
void verify_slice_device(const struct daxpool_slice *s, char *dev, size_t size);
/*
 * How many mappings of other processes have the device page at file offset off of dev present
 * in their page tables (/proc/PID/maps + /proc/PID/pagemap); *ret_maps gets how many of their
 * mappings cover it at all. Negative errno if the present ones cannot be counted, with why: not
 * root, or a PUD-level page (reading the pagemap of a 1 GiB device-dax mapping splits it, i.e.
 * unmaps it from that process: -EOPNOTSUPP, *ret_maps still counted).
 */
int verify_other_mappings(const struct verify *v, const char *dev, uint64_t off, int *ret_maps, char *why,
			  size_t size);
/* "6.1"/"new" style names. */
const char *verify_gen_name(enum vgen g);

/* Tracing set-up and the generation from kernel symbols (verify/verify-probes.c); fills the
 * report's "kernel" and "tracing". */
int verify_probes_setup(struct verify *v);
/* Names of the insert-count events and their functions: level 0 PTE, 1 PMD, 2 PUD. */
const char *verify_insert_event(int level);
const char *verify_insert_func(const struct verify *v, int level);

/* A kernel pin of a range, by whatever this kernel and machine allow (verify/verify-pin.c). */
enum vpin_kind {
	VPIN_NONE,
	VPIN_IO_URING, /* io_uring fixed buffers: FOLL_LONGTERM (refused on 6.1 device-dax) */
	VPIN_RDMA,     /* ibv_reg_mr: FOLL_LONGTERM */
	VPIN_PIPE,     /* vmsplice into a pipe: a plain page reference held by the pipe */
};

struct vrdma;
struct vpin {
	enum vpin_kind kind;
	int ring_fd;	  /* io_uring: the ring (struct io_uring lives in verify-pin.c) */
	void *ring;
	struct vrdma *rdma;
	int pipe[2];
	void *addr;
	size_t len;
	uint64_t declared; /* daxpool_pin_declare id, 0 if none */
};

/*
 * Pins [addr, addr+len) by the first kind that works, in order io_uring, RDMA, pipe (only
 * io_uring and RDMA if longterm_only). The pin is not declared to the daemon (callers do that:
 * a child has no slice handle). err receives what was tried on failure.
 */
int vpin_take(struct vpin *p, void *addr, size_t len, bool longterm_only, char *err, size_t errsize);
/* Reads len (<= 4096) bytes at the start of the pinned range through the pin itself (not the
 * mapping): io_uring WRITE_FIXED into a pipe, RDMA READ, or the pipe's own content. */
int vpin_read(struct vpin *p, void *out, size_t len, char *err, size_t errsize);
/* Drops the kernel pin. */
void vpin_release(struct vpin *p);
const char *vpin_kind_name(enum vpin_kind k);

/*
 * What a pin of kind over len bytes from the start of a device page adds to that page's
 * refcount (mm/gup.c try_grab_folio / 5.10 try_grab_page): FOLL_PIN of a small page (large
 * false) GUP_PIN_COUNTING_BIAS; of a large folio 1 ref (and 1 pincount) per pinned 4 KiB
 * subpage — RDMA's ib_umem_get pins every subpage; io_uring's io_pin_pages too, unless the
 * registration is coalesced to one pin per folio: then *alt is 1 (else 0; both are accepted,
 * the kernel has no symbol that tells them apart). vmsplice takes a plain reference (FOLL_GET)
 * on its one page: 1.
 */
int64_t verify_pin_share(const struct verify *v, enum vpin_kind kind, uint64_t len, bool large, int64_t *alt);
/* observed == want, or == alt where alt is not 0. */
static inline bool verify_share_ok(int64_t observed, int64_t want, int64_t alt)
{
	return observed == want || (alt != 0 && observed == alt);
}
/* The expectation for a report: want, or "alt or want". */
struct json_object *verify_share_json(int64_t want, int64_t alt);

/* The scenarios (verify/verify-*.c); each adds its checks to v->rep. */
void verify_generation(struct verify *v);
void verify_faults(struct verify *v);
void verify_longterm(struct verify *v);
void verify_gup(struct verify *v);
void verify_munmap(struct verify *v);
void verify_teardown(struct verify *v);
