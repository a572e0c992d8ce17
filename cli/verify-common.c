/* daxpoolctl verify: helpers the scenarios share (cli/verify-common.h). */
#include "verify-common.h"
#include "log.h"
#include "macro.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

/* get_user_pages' pin of a small folio is counted in its refcount with this bias (mm.h). */
#define GUP_PIN_COUNTING_BIAS 1024

int verify_slice_new(struct verify *v, struct daxpool_slice **ret, void **ret_addr)
{
	struct daxpool_slice *s = NULL;
	void *addr;
	int r;

	r = daxpool_alloc(v->dp, NULL, v->size, v->align, 0600, DAXPOOL_ANONYMOUS, &s);
	if (r < 0)
		return r;
	r = daxpool_map(s, 0, &addr);
	if (r < 0) {
		(void)daxpool_close(v->dp, &s);
		return r;
	}
	*ret = s;
	*ret_addr = addr;
	return 0;
}

void verify_slice_close(struct verify *v, struct daxpool_slice **s)
{
	int r;

	if (!s || !*s)
		return;
	r = daxpool_close(v->dp, s);
	if (r < 0)
		log_warning("closing a slice: %s", daxpool_errormsg());
}

int verify_map_extra(const struct daxpool_slice *s, uint64_t align, void **ret)
{
	uint64_t len = daxpool_slice_get_length(s);
	uint8_t *base, *aligned;
	void *p;

	/* Reserve len + align of address space, place the slice at the aligned address inside
	 * (device-dax refuses a mapping whose address is not aligned to the device). */
	base = mmap(NULL, len + align, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (base == MAP_FAILED)
		return negative_errno();
	aligned = (uint8_t *)(((uintptr_t)base + align - 1) & ~(uintptr_t)(align - 1));
	p = mmap(aligned, len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_FIXED, daxpool_slice_get_fd(s),
		 (off_t)daxpool_slice_get_offset(s));
	if (p == MAP_FAILED) {
		int r = negative_errno();

		munmap(base, len + align);
		return r;
	}
	if (aligned > base)
		munmap(base, (size_t)(aligned - base));
	if ((uint64_t)(aligned - base) < align)
		munmap(aligned + len, align - (uint64_t)(aligned - base));
	/* A child of this process (the SIGKILL scenario) must not inherit our mappings: its own
	 * references would blur what the scenario measures. */
	(void)madvise(p, len, MADV_DONTFORK);
	*ret = p;
	return 0;
}

void verify_unmap_extra(void *addr, uint64_t len)
{
	if (addr)
		munmap(addr, len);
}

void verify_touch(void *addr, uint64_t len)
{
	volatile uint8_t *p = addr;

	for (uint64_t i = 0; i < len; i += 4096)
		p[i] = (uint8_t)(i >> 12) | 1;
}

void verify_pattern(void *addr, size_t len, unsigned seed)
{
	uint8_t *p = addr;
	uint32_t x = seed * 2654435761u + 1;

	for (size_t i = 0; i < len; i++) {
		x ^= x << 13;
		x ^= x >> 17;
		x ^= x << 5;
		p[i] = (uint8_t)x;
	}
}

/* Keeps the raw trace line of a reading (the first 64) for the report's observations. */
static void record_line(struct verify *v, const char *text)
{
	const char *line = NULL, *end;

	for (const char *p = strstr(text, " ref: ("); p; p = strstr(p + 1, " ref: ("))
		line = p;
	if (!line || !v->readings || json_object_array_length(v->readings) >= 64)
		return;
	while (line > text && line[-1] != '\n')
		line--;
	while (*line == ' ')
		line++;
	end = strchr(line, '\n');
	json_object_array_add(v->readings, json_object_new_string_len(line, end ? (int)(end - line) : (int)strlen(line)));
}

int verify_read_ref(struct verify *v, const void *addr, struct vref *ret)
{
	_cleanup_(freep) char *text = NULL;
	uint8_t byte;
	struct iovec local = { &byte, 1 }, remote = { (void *)addr, 1 };
	int64_t ref, pin = 0, refs = 1;
	bool large = v->granule > 4096;
	ssize_t n;
	int r;

	if (!v->ref_probe)
		return -ENOTSUP;
	r = vtrace_capture_start(v->trace, "ref", getpid());
	if (r < 0)
		return r;
	/* A remote read of ourselves: pin_user_pages_remote() pins the page, copies, and
	 * unpin_user_pages() hands the folio to gup_put_folio, where the probe reads it. */
	n = process_vm_readv(getpid(), &local, 1, &remote, 1, 0);
	r = n == 1 ? 0 : negative_errno();
	{
		int r2 = vtrace_capture_stop(v->trace, "ref", &text);

		if (r == 0)
			r = r2;
	}
	if (r < 0)
		return r;
	if (vtrace_last_field(text, "ref", "ref", &ref) < 0)
		return -ENODATA;
	record_line(v, text);
	(void)vtrace_last_field(text, "ref", "refs", &refs);
	if (large) {
		(void)vtrace_last_field(text, "ref", "pin", &pin);
		ret->ref = ref - refs;
		ret->pin = pin - refs;
	} else {
		ret->ref = ref - refs * GUP_PIN_COUNTING_BIAS;
		ret->pin = -1; /* small folios keep no pincount: pins are in the refcount */
	}
	return 0;
}

int verify_wait_ref(struct verify *v, const void *addr, int64_t want, int timeout_ms, struct vref *ret)
{
	struct timespec d = { 0, 50 * 1000 * 1000 };
	int r;

	for (int waited = 0;; waited += 50) {
		r = verify_read_ref(v, addr, ret);
		if (r < 0 || ret->ref == want || waited >= timeout_ms)
			return r;
		nanosleep(&d, NULL);
	}
}

int64_t verify_map_share(const struct verify *v)
{
	return v->gen == VGEN_AFTER ? 1 : 0;
}

const char *verify_gen_name(enum vgen g)
{
	switch (g) {
	case VGEN_BEFORE:
		return "before";
	case VGEN_AFTER:
		return "after";
	default:
		return "unknown";
	}
}
