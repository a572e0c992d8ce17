/* daxpoolctl verify: what this kernel has, and the probes that observe it.
 *
 * Device-dax changed over the kernel generations in several independent ways (docs/VERIFICATION.md
 * "Four kernel generations"), and each is detected on its own instead of being inferred from a
 * version number or from one another:
 *  - the fault path's insert function at each page-table level (kallsyms): a pfn insert
 *    (vmf_insert_mixed, vmf_insert_pfn_pmd[_prot], vmf_insert_pfn_pud[_prot]) means the mapping
 *    takes no reference; a folio/page insert (vmf_insert_page_mkwrite, vmf_insert_folio_pmd/_pud)
 *    means it takes one. The faults scenario then counts that function's hits;
 *  - the GUP put function the refcount probe sits on: gup_put_folio (folios, 6.1 and later) or
 *    put_compound_head (pages, 5.10), and the offsets it reads (BTF-typed fprobe arguments, else
 *    kprobe offsets from BTF);
 *  - whether io_uring refuses file-backed memory itself (probed on a private mapping of a regular
 *    file), which decides whether it may pin device-dax — 6.12 pins it with the old refcount model;
 *  - and, by behaviour, whether a second mapping raises the refcount (scenario "generation"). */
#include "verify-btf.h"
#include "verify-common.h"
#include "log.h"
#include "macro.h"

#include <errno.h>
#include <fcntl.h>
#include <liburing.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/uio.h>
#include <sys/utsname.h>
#include <unistd.h>

DEFINE_TRIVIAL_CLEANUP_FUNC(FILE *, fclose);

/* Candidates per level, the newest model first: a kernel that has the folio insert uses it for
 * device-dax (older ones keep the pfn functions for other users). */
static const char *const insert_candidates[3][3] = {
	{ "vmf_insert_page_mkwrite", "vmf_insert_mixed", NULL },
	{ "vmf_insert_folio_pmd", "vmf_insert_pfn_pmd_prot", "vmf_insert_pfn_pmd" },
	{ "vmf_insert_folio_pud", "vmf_insert_pfn_pud_prot", "vmf_insert_pfn_pud" },
};
static const char *const insert_events[3] = { "ins_pte", "ins_pmd", "ins_pud" };
static const char *const put_candidates[] = { "gup_put_folio", "put_compound_head" };

enum { N_SYMS = 3 * 3 + 2 };

/* Which of the functions above /proc/kallsyms names (names are readable without root). */
static int read_symbols(bool have[N_SYMS], char *why, size_t size)
{
	_cleanup_(fclosep) FILE *f = fopen("/proc/kallsyms", "re");
	char line[512];

	memset(have, 0, sizeof(bool) * N_SYMS);
	if (!f) {
		snprintf(why, size, "cannot read /proc/kallsyms: %s", strerror(errno));
		return -errno;
	}
	while (fgets(line, sizeof(line), f)) {
		char *name = strrchr(line, ' ');

		if (!name)
			continue;
		name++;
		name[strcspn(name, "\t\n")] = '\0';
		for (int l = 0; l < 3; l++)
			for (int i = 0; i < 3; i++)
				if (insert_candidates[l][i] && strcmp(name, insert_candidates[l][i]) == 0)
					have[l * 3 + i] = true;
		for (int i = 0; i < 2; i++)
			if (strcmp(name, put_candidates[i]) == 0)
				have[9 + i] = true;
	}
	return 0;
}

/* io_uring_register_buffers over a MAP_PRIVATE, writable mapping of a regular file (this program):
 * EOPNOTSUPP from io_uring's own "file-backed, not shmem, not hugetlbfs" check (io_uring/rsrc.c up
 * to 6.4), accepted where the check moved into GUP (FOLL_LONGTERM refuses fsdax and shared
 * mappings that need dirty tracking; a private one is copied on write). */
static void probe_uring(struct vfacts *f)
{
	struct io_uring ring;
	struct iovec iov;
	_cleanup_(closep) int fd = open("/proc/self/exe", O_RDONLY | O_CLOEXEC);
	void *p;
	int r;

	f->uring = VURING_UNKNOWN;
	if (fd < 0) {
		snprintf(f->uring_why, sizeof(f->uring_why), "open /proc/self/exe: %s", strerror(errno));
		return;
	}
	p = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
	if (p == MAP_FAILED) {
		snprintf(f->uring_why, sizeof(f->uring_why), "mmap of /proc/self/exe: %s", strerror(errno));
		return;
	}
	r = io_uring_queue_init(2, &ring, 0);
	if (r < 0) {
		snprintf(f->uring_why, sizeof(f->uring_why), "io_uring_queue_init: %s", strerror(-r));
		munmap(p, 4096);
		return;
	}
	iov = (struct iovec){ p, 4096 };
	r = io_uring_register_buffers(&ring, &iov, 1);
	if (r == 0) {
		io_uring_unregister_buffers(&ring);
		f->uring = VURING_GUP_DECIDES;
		snprintf(f->uring_why, sizeof(f->uring_why),
			 "a private file mapping registers: io_uring leaves file-backed memory to GUP");
	} else if (r == -EOPNOTSUPP) {
		f->uring = VURING_FILE_CHECK;
		snprintf(f->uring_why, sizeof(f->uring_why),
			 "a private file mapping is refused (EOPNOTSUPP): io_uring's own file-backed check");
	} else {
		snprintf(f->uring_why, sizeof(f->uring_why), "registering a private file mapping: %s", strerror(-r));
	}
	io_uring_queue_exit(&ring);
	munmap(p, 4096);
}

static void detect(struct verify *v, char *why, size_t size)
{
	struct vfacts *f = &v->facts;
	bool have[N_SYMS];

	f->pg_head = -1;
	if (read_symbols(have, why, size) < 0)
		return;
	for (int l = 0; l < 3; l++)
		for (int i = 0; i < 3 && !f->insert[l]; i++)
			if (have[l * 3 + i]) {
				f->insert[l] = insert_candidates[l][i];
				f->insert_model[l] = strstr(f->insert[l], "folio") || strstr(f->insert[l], "page")
							     ? VGEN_AFTER : VGEN_BEFORE;
			}
	for (int i = 0; i < 2 && !f->put_path; i++)
		if (have[9 + i])
			f->put_path = put_candidates[i];
	f->page_gup = f->put_path && strcmp(f->put_path, "put_compound_head") == 0;
	f->btf = access("/sys/kernel/btf/vmlinux", R_OK) == 0;
	probe_uring(f);
	snprintf(why, size, "inserts %s / %s / %s; GUP put %s", f->insert[0] ?: "none", f->insert[1] ?: "none",
		 f->insert[2] ?: "none", f->put_path ?: "none");
}

/* The reference kernel whose model the facts match (docs/VERIFICATION.md). */
static const char *generation_of(const struct verify *v)
{
	const struct vfacts *f = &v->facts;

	if (v->sym_gen == VGEN_UNKNOWN || !f->put_path)
		return "unknown";
	if (f->page_gup)
		return "5.10";
	if (v->sym_gen == VGEN_AFTER)
		return "6.15+";
	if (f->uring == VURING_FILE_CHECK)
		return "6.1";
	if (f->uring == VURING_GUP_DECIDES)
		return "6.12";
	return "unknown";
}

/* The refcount probe on the GUP put function: BTF-typed fprobe where the kernel has them, else a
 * kprobe with offsets from BTF, else (6.1 only) the offsets documented in docs/VERIFICATION.md. */
static void define_ref_probe(struct verify *v, struct json_object *tracing)
{
	char err[512] = "", err2[512] = "", reason[256] = "", spec[320];
	struct vfacts *f = &v->facts;
	struct vfolio_offsets off;
	int r;

	if (!f->put_path) {
		snprintf(v->ref_reason, sizeof(v->ref_reason), "the kernel has neither gup_put_folio nor put_compound_head");
		return;
	}
	if (!f->page_gup && vtrace_has_fprobe(v->trace)) {
		static const char *const specs[] = {
			"gup_put_folio folio=folio ref=folio->_refcount.counter pin=folio->_pincount.counter "
			"refs=refs flags=+0($arg1):x64",
			"gup_put_folio folio=folio ref=folio->_refcount.counter pin=folio->_pincount.counter refs=refs",
		};
		for (size_t i = 0; i < ARRAY_SIZE(specs); i++) {
			r = vtrace_define(v->trace, "ref", true, specs[i], err, sizeof(err));
			if (r == 0) {
				json_object_object_add(tracing, "ref_source",
						       json_object_new_string("fprobe, BTF-typed arguments"));
				f->flags_read = i == 0;
				if (f->flags_read && vbtf_folio_offsets(&off, reason, sizeof(reason)) == 0)
					f->pg_head = off.pg_head;
				v->ref_probe = true;
				return;
			}
		}
	}
	r = f->page_gup ? vbtf_page_offsets(&off, reason, sizeof(reason))
			: vbtf_folio_offsets(&off, reason, sizeof(reason));
	if (r < 0 && !f->page_gup && v->sym_gen == VGEN_BEFORE) {
		/* Debian 6.1.x: `pahole -C folio /sys/kernel/btf/vmlinux` (docs/VERIFICATION.md). */
		off = (struct vfolio_offsets){ .refcount = 52, .pincount = 88, .mapcount = 48, .flags = -1,
					       .pg_head = -1,
					       .source = "documented 6.1 offsets (no libbpf at build time)" };
		r = 0;
	}
	if (r < 0) {
		snprintf(v->ref_reason, sizeof(v->ref_reason), "no fprobe (%.100s) and no %s offsets: %.100s",
			 err[0] ? err : "not offered", f->page_gup ? "struct page" : "struct folio", reason);
		return;
	}
	/* x86-64: the first two arguments in %di and %si. */
	{
		int n = snprintf(spec, sizeof(spec), "%s folio=%%di:x64 ref=+%ld(%%di):s32", f->put_path, off.refcount);

		if (off.pincount >= 0)
			n += snprintf(spec + n, sizeof(spec) - (size_t)n, " pin=+%ld(%%di):s32", off.pincount);
		n += snprintf(spec + n, sizeof(spec) - (size_t)n, " refs=%%si:s32");
		if (off.flags >= 0 && off.pg_head >= 0)
			snprintf(spec + n, sizeof(spec) - (size_t)n, " flags=+%ld(%%di):x64", off.flags);
	}
	r = vtrace_define(v->trace, "ref", false, spec, err2, sizeof(err2));
	if (r < 0) {
		snprintf(v->ref_reason, sizeof(v->ref_reason), "cannot probe %s: %.200s", f->put_path, err2);
		return;
	}
	f->flags_read = off.flags >= 0 && off.pg_head >= 0;
	f->pg_head = off.pg_head;
	json_object_object_add(tracing, "ref_source", json_object_new_string(off.source));
	{
		struct json_object *o = json_object_new_object();

		json_object_object_add(o, "_refcount", json_object_new_int64(off.refcount));
		json_object_object_add(o, "_pincount", json_object_new_int64(off.pincount));
		json_object_object_add(o, "_mapcount", json_object_new_int64(off.mapcount));
		json_object_object_add(o, "flags", json_object_new_int64(off.flags));
		json_object_object_add(o, "PG_head", json_object_new_int(off.pg_head));
		json_object_object_add(tracing, f->page_gup ? "page_offsets" : "folio_offsets", o);
	}
	if (err[0])
		json_object_object_add(tracing, "fprobe_error", json_object_new_string(err));
	v->ref_probe = true;
}

static struct json_object *str_or_null(const char *s)
{
	return s ? json_object_new_string(s) : NULL;
}

static const char *uring_name(enum vuring u)
{
	return u == VURING_FILE_CHECK ? "refuses-file-backed" : u == VURING_GUP_DECIDES ? "gup-decides" : "unknown";
}

/* Sets up tracing (if possible) and the facts; fills the report's header. */
int verify_probes_setup(struct verify *v)
{
	struct json_object *root = vreport_root(v->rep), *tracing = json_object_new_object();
	struct json_object *defs = json_object_new_object(), *facts = json_object_new_object(), *ins;
	struct vfacts *f = &v->facts;
	int level = verify_level(v);
	char why[256] = "";
	struct utsname u;

	if (uname(&u) == 0)
		json_object_object_add(root, "kernel", json_object_new_string(u.release));
	detect(v, why, sizeof(why));
	v->sym_gen = f->insert[level] ? f->insert_model[level] : VGEN_UNKNOWN;
	json_object_object_add(root, "generation_symbols", json_object_new_string(why));
	if (vtrace_new(&v->trace, v->trace_reason, sizeof(v->trace_reason)) < 0) {
		snprintf(v->ref_reason, sizeof(v->ref_reason), "%s", v->trace_reason);
		snprintf(v->insert_reason, sizeof(v->insert_reason), "%s", v->trace_reason);
	} else {
		char err[512];

		v->insert_probes = true;
		for (int i = 0; i < 3; i++) {
			if (!f->insert[i]) {
				v->insert_probes = false;
				snprintf(v->insert_reason, sizeof(v->insert_reason),
					 "kallsyms names none of the level's insert functions (%s, ...)",
					 insert_candidates[i][0]);
			} else if (vtrace_define(v->trace, insert_events[i], false, f->insert[i], err, sizeof(err)) < 0) {
				v->insert_probes = false;
				snprintf(v->insert_reason, sizeof(v->insert_reason), "cannot probe %s: %.200s",
					 f->insert[i], err);
			}
		}
		define_ref_probe(v, tracing);
	}
	f->fprobe = v->trace && vtrace_has_fprobe(v->trace);
	v->gen = v->sym_gen;
	v->generation = generation_of(v);

	ins = json_object_new_array();
	for (int i = 0; i < 3; i++)
		json_object_array_add(ins, str_or_null(f->insert[i]));
	json_object_object_add(facts, "insert_functions", ins);
	json_object_object_add(facts, "mapping_takes_ref",
			       v->sym_gen == VGEN_UNKNOWN ? NULL : json_object_new_boolean(v->sym_gen == VGEN_AFTER));
	json_object_object_add(facts, "gup_put", str_or_null(f->put_path));
	json_object_object_add(facts, "gup_works_on", json_object_new_string(!f->put_path ? "unknown" : f->page_gup ? "pages" : "folios"));
	json_object_object_add(facts, "io_uring_file_backed", json_object_new_string(uring_name(f->uring)));
	json_object_object_add(facts, "io_uring_probe", json_object_new_string(f->uring_why));
	json_object_object_add(facts, "btf", json_object_new_boolean(f->btf));
	json_object_object_add(facts, "fprobe", json_object_new_boolean(f->fprobe));
	json_object_object_add(root, "facts", facts);

	json_object_object_add(tracing, "available", json_object_new_boolean(v->trace != NULL));
	json_object_object_add(tracing, "reason", v->trace ? NULL : json_object_new_string(v->trace_reason));
	json_object_object_add(tracing, "fprobe", json_object_new_boolean(f->fprobe));
	json_object_object_add(tracing, "refcount_probe", json_object_new_boolean(v->ref_probe));
	if (!v->ref_probe)
		json_object_object_add(tracing, "refcount_reason", json_object_new_string(v->ref_reason));
	json_object_object_add(tracing, "insert_probes", json_object_new_boolean(v->insert_probes));
	if (!v->insert_probes)
		json_object_object_add(tracing, "insert_reason", json_object_new_string(v->insert_reason));
	for (int i = 0; i < 3 && v->trace; i++)
		if (vtrace_definition(v->trace, insert_events[i]))
			json_object_object_add(defs, insert_events[i],
					       json_object_new_string(vtrace_definition(v->trace, insert_events[i])));
	if (v->trace && vtrace_definition(v->trace, "ref"))
		json_object_object_add(defs, "ref", json_object_new_string(vtrace_definition(v->trace, "ref")));
	json_object_object_add(tracing, "probes", defs);
	json_object_object_add(root, "tracing", tracing);
	return 0;
}

const char *verify_insert_event(int level)
{
	return insert_events[level];
}

const char *verify_insert_func(const struct verify *v, int level)
{
	return v->facts.insert[level] ? v->facts.insert[level] : "?";
}

/* Scenario "generation": the facts, and the mapping model they predict against behaviour. */
void verify_generation(struct verify *v)
{
	static const char *S = "generation";
	struct daxpool_slice *s = NULL;
	const struct vfacts *f = &v->facts;
	void *a = NULL, *b = NULL;
	struct vref r1, r2, r3;
	char dev[256], why[320];
	int r, others, maps;

	vreport_add(v->rep, S, "symbols",
		    f->insert[0] && f->insert[1] && f->insert[2] && f->put_path ? VCHECK_PASSED : VCHECK_FAILED,
		    json_object_new_string(v->generation),
		    json_object_new_string("an insert function per level and a GUP put function"),
		    "%s", json_object_get_string(json_object_object_get(vreport_root(v->rep), "generation_symbols")));
	if (!v->devdax) {
		vreport_skip(v->rep, S, "mapping-share", "emulated backend: no device-dax pages");
		return;
	}
	if (!v->ref_probe) {
		vreport_skip(v->rep, S, "mapping-share", "%s", v->ref_reason);
		return;
	}
	r = verify_slice_new(v, &s, &a);
	if (r < 0) {
		vreport_add(v->rep, S, "mapping-share", VCHECK_FAILED, NULL, NULL, "slice: %s", daxpool_errormsg());
		return;
	}
	verify_touch(a, 4096);
	verify_slice_device(s, dev, sizeof(dev));
	others = verify_other_mappings(v, dev, daxpool_slice_get_offset(s), &maps, why, sizeof(why));
	r = verify_read_ref(v, a, &r1);
	if (r == 0)
		r = verify_map_extra(s, v->granule, &b);
	if (r == 0) {
		verify_touch(b, 4096);
		r = verify_read_ref(v, a, &r2);
	}
	if (r == 0) {
		verify_unmap_extra(b, daxpool_slice_get_length(s));
		b = NULL;
		r = verify_read_ref(v, a, &r3);
	}
	if (r < 0) {
		vreport_add(v->rep, S, "mapping-share", VCHECK_FAILED, NULL, NULL,
			    "reading the refcount: %s", strerror(-r));
	} else {
		enum vgen behaved = r2.ref - r1.ref == 1 ? VGEN_AFTER : r2.ref == r1.ref ? VGEN_BEFORE : VGEN_UNKNOWN;
		int64_t share = v->sym_gen == VGEN_AFTER ? 1 : 0;

		vreport_eq(v->rep, S, "mapping-share", r2.ref - r1.ref, share,
			   "a second mapping of the folio: refcount %lld -> %lld (%s model; %s inserts with %s)",
			   (long long)r1.ref, (long long)r2.ref, verify_gen_name(behaved), verify_gen_name(v->sym_gen),
			   verify_insert_func(v, verify_level(v)));
		vreport_eq(v->rep, S, "unmap-returns", r3.ref, r1.ref, "refcount after the second mapping went");
		/* Idle 1, plus the mapping share for ours and for every other process's present
		 * mapping of the page (daxpoold maps the whole device and zeroes through it). */
		if (share == 0)
			vreport_eq(v->rep, S, "mapped-refcount", r1.ref, 1,
				   "idle 1; mappings take no reference (%s inserts a pfn)", verify_insert_func(v, verify_level(v)));
		else if (others >= 0)
			vreport_eq(v->rep, S, "mapped-refcount", r1.ref, 1 + share * (1 + others),
				   "idle 1, +1 for our mapping, +1 for each other present mapping: %s", why);
		else if (others == -EOPNOTSUPP)
			vreport_range(v->rep, S, "mapped-refcount", r1.ref, 1 + share, 1 + share * (1 + maps),
				      "idle 1, +1 for our mapping, +1 for each other mapping that has the page: %s", why);
		else
			vreport_skip(v->rep, S, "mapped-refcount", "other processes' mappings cannot be counted: %s", why);
		if (behaved != VGEN_UNKNOWN)
			v->gen = behaved;
		{
			struct json_object *o = json_object_new_object();

			json_object_object_add(o, "mapped", json_object_new_int64(r1.ref));
			json_object_object_add(o, "second_mapping", json_object_new_int64(r2.ref));
			json_object_object_add(o, "large", json_object_new_boolean(r1.large));
			json_object_object_add(o, "other_mappings", json_object_new_int(others));
			json_object_object_add(o, "other_mappings_note", json_object_new_string(why));
			vreport_observe(v->rep, "generation_refcounts", o);
		}
	}
	verify_unmap_extra(b, daxpool_slice_get_length(s));
	verify_slice_close(v, &s);
}
