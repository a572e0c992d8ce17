/* daxpoolctl verify: helpers the scenarios share (verify/verify-common.h). */
#include "verify-common.h"
#include "log.h"
#include "macro.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

DEFINE_TRIVIAL_CLEANUP_FUNC(DIR *, closedir);
DEFINE_TRIVIAL_CLEANUP_FUNC(FILE *, fclose);


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
	int64_t ref, pin = 0, refs = 1, flags;
	bool large = v->granule > 4096;
	ssize_t n;
	int r;

	if (!v->ref_probe)
		return -ENOTSUP;
	r = vtrace_capture_start(v->trace, "ref", getpid());
	if (r < 0)
		return r;
	/* A remote read of ourselves: pin_user_pages_remote() pins the page, copies, and
	 * unpin_user_pages() hands the folio (5.10: the head page) to the probed put function. */
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
	/* Compound or not is read from PG_head where the probe has the flags word (5.10's device-dax
	 * pages are order-0 at every alignment); else a device page larger than 4 KiB is taken as one
	 * large folio (6.1 and later map device-dax as compound pages). */
	if (v->facts.flags_read && v->facts.pg_head >= 0 && vtrace_last_field(text, "ref", "flags", &flags) == 0)
		large = ((uint64_t)flags >> v->facts.pg_head) & 1;
	ret->large = large;
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

int64_t verify_pin_share(const struct verify *v, enum vpin_kind kind, uint64_t len, bool large, int64_t *alt)
{
	int64_t sub = (int64_t)(MIN(len, v->granule) / 4096);

	*alt = 0;
	if (kind == VPIN_PIPE)
		return 1;
	if (!large)
		return GUP_PIN_COUNTING_BIAS;
	if (kind == VPIN_IO_URING && sub != 1)
		*alt = 1;
	return sub;
}

struct json_object *verify_share_json(int64_t want, int64_t alt)
{
	char buf[64];

	if (alt == 0 || alt == want)
		return json_object_new_int64(want);
	snprintf(buf, sizeof(buf), "%lld or %lld", (long long)alt, (long long)want);
	return json_object_new_string(buf);
}

int64_t verify_map_share(const struct verify *v)
{
	return v->gen == VGEN_AFTER ? 1 : 0;
}

int verify_level(const struct verify *v)
{
	return v->granule >= (UINT64_C(1) << 30) ? 2 : v->granule >= (UINT64_C(1) << 21) ? 1 : 0;
}

void verify_slice_device(const struct daxpool_slice *s, char *dev, size_t size)
{
	char link[64];
	struct stat st;
	ssize_t n;

	dev[0] = '\0';
	snprintf(link, sizeof(link), "/proc/self/fd/%d", daxpool_slice_get_fd(s));
	n = readlink(link, dev, size - 1);
	dev[n > 0 ? n : 0] = '\0';
	if (stat(dev, &st) < 0 || !S_ISCHR(st.st_mode))
		dev[0] = '\0';
}

/* Whether the page at vaddr is present in pid's page tables (pagemap bit 63). */
static int page_present(pid_t pid, uint64_t vaddr)
{
	char path[64];
	uint64_t e;
	_cleanup_(closep) int fd = -1;

	snprintf(path, sizeof(path), "/proc/%d/pagemap", (int)pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return negative_errno();
	if (pread(fd, &e, sizeof(e), (off_t)(vaddr / 4096 * sizeof(e))) != (ssize_t)sizeof(e))
		return -EIO;
	return (int)(e >> 63);
}

int verify_other_mappings(const struct verify *v, const char *dev, uint64_t off, int *ret_maps, char *why,
			  size_t size)
{
	_cleanup_(closedirp) DIR *d = NULL;
	struct dirent *de;
	int count = 0, maps = 0, r_pud = 0;

	*ret_maps = 0;
	if (geteuid() != 0) {
		snprintf(why, size, "not root: other processes' page tables cannot be read");
		return -EPERM;
	}
	d = opendir("/proc");
	if (!d)
		return negative_errno();
	while ((de = readdir(d))) {
		char path[64], line[512], name[256];
		_cleanup_(fclosep) FILE *f = NULL;
		pid_t pid = (pid_t)atoi(de->d_name);

		if (pid <= 0 || pid == getpid())
			continue;
		snprintf(path, sizeof(path), "/proc/%d/maps", (int)pid);
		f = fopen(path, "re");
		if (!f)
			continue;
		while (fgets(line, sizeof(line), f)) {
			unsigned long long start, end, pgoff;
			int r;

			if (sscanf(line, "%llx-%llx %*s %llx %*s %*s %255s", &start, &end, &pgoff, name) != 4 ||
			    strcmp(name, dev) != 0 || off < pgoff || off - pgoff >= end - start)
				continue;
			maps++;
			if (v->granule >= (UINT64_C(1) << 30)) {
				r_pud = -EOPNOTSUPP;
				continue;
			}
			r = page_present(pid, start + (off - pgoff));
			if (r < 0) {
				snprintf(why, size, "/proc/%d/pagemap: %s", (int)pid, strerror(-r));
				return r;
			}
			count += r;
		}
	}
	*ret_maps = maps;
	if (r_pud < 0) {
		snprintf(why, size, "%d mapping(s) of other processes cover the 1 GiB page; whether they have "
			 "it faulted in is not read (reading their pagemap would split, i.e. unmap, a PUD mapping)",
			 maps);
		return r_pud;
	}
	snprintf(why, size, "%d mapping(s) of other processes cover the page, %d with it present", maps, count);
	return count;
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

bool verify_wait_settled(struct verify *v, int timeout_ms)
{
	struct timespec d = { 0, 100 * 1000 * 1000 };
	struct daxpool_stats st;

	for (int waited = 0; waited <= timeout_ms; waited += 100) {
		if (daxpool_stat(v->dp, &st, sizeof(st)) == 0 && st.leases_waiting == 0 &&
		    st.zeroing_pending_bytes == 0)
			return true;
		nanosleep(&d, NULL);
	}
	return false;
}
