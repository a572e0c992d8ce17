/* daxpoolctl verify: which kernel generation this is, and the probes that observe it.
 *
 * The seeds of this project (docs/VERIFICATION.md) changed device-dax from "pages are not
 * refcounted when mapped" (pfn entries with the devmap bit; the insert functions take a pfn:
 * vmf_insert_mixed, vmf_insert_pfn_pmd_prot, vmf_insert_pfn_pud_prot) to "mapping takes a folio
 * reference" (vmf_insert_page_mkwrite, vmf_insert_folio_pmd, vmf_insert_folio_pud). The
 * generation is detected twice: by which insert functions the kernel has, and by behaviour —
 * a second mapping of the same folio raises its refcount by one, or by nothing. */
#include "verify-btf.h"
#include "verify-common.h"
#include "log.h"
#include "macro.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/utsname.h>

DEFINE_TRIVIAL_CLEANUP_FUNC(FILE *, fclose);

static const char *const insert_funcs[][3] = {
	[VGEN_BEFORE] = { "vmf_insert_mixed", "vmf_insert_pfn_pmd_prot", "vmf_insert_pfn_pud_prot" },
	[VGEN_AFTER] = { "vmf_insert_page_mkwrite", "vmf_insert_folio_pmd", "vmf_insert_folio_pud" },
};
static const char *const insert_events[3] = { "ins_pte", "ins_pmd", "ins_pud" };

/* Which insert functions /proc/kallsyms names (readable without root: names, not addresses). */
static enum vgen generation_from_symbols(char *why, size_t size)
{
	_cleanup_(fclosep) FILE *f = fopen("/proc/kallsyms", "re");
	bool before = false, after = false;
	char line[512];

	if (!f) {
		snprintf(why, size, "cannot read /proc/kallsyms: %s", strerror(errno));
		return VGEN_UNKNOWN;
	}
	while (fgets(line, sizeof(line), f)) {
		char *name = strrchr(line, ' ');

		if (!name)
			continue;
		name++;
		name[strcspn(name, "\t\n")] = '\0';
		if (strcmp(name, "vmf_insert_folio_pmd") == 0)
			after = true;
		else if (strcmp(name, "vmf_insert_pfn_pmd_prot") == 0)
			before = true;
	}
	if (after == before) {
		snprintf(why, size, "kallsyms has %s of vmf_insert_folio_pmd and vmf_insert_pfn_pmd_prot",
			 after ? "both" : "neither");
		return VGEN_UNKNOWN;
	}
	snprintf(why, size, "kallsyms has %s", after ? "vmf_insert_folio_pmd" : "vmf_insert_pfn_pmd_prot");
	return after ? VGEN_AFTER : VGEN_BEFORE;
}

/* The refcount probe on gup_put_folio(folio, refs, flags): BTF-typed fprobe where the kernel
 * has them, else a kprobe with struct folio's offsets from BTF, else (6.1 only) the offsets
 * documented in docs/VERIFICATION.md. */
static void define_ref_probe(struct verify *v, struct json_object *tracing)
{
	char err[512] = "", err2[512] = "", reason[256] = "", spec[256];
	struct vfolio_offsets off;
	int r;

	if (vtrace_has_fprobe(v->trace)) {
		r = vtrace_define(v->trace, "ref", true,
				  "gup_put_folio folio=folio ref=folio->_refcount.counter "
				  "pin=folio->_pincount.counter refs=refs",
				  err, sizeof(err));
		if (r == 0) {
			json_object_object_add(tracing, "ref_source", json_object_new_string("fprobe, BTF-typed arguments"));
			v->ref_probe = true;
			return;
		}
	}
	r = vbtf_folio_offsets(&off, reason, sizeof(reason));
	if (r < 0 && v->sym_gen == VGEN_BEFORE) {
		/* Debian 6.1.x: `pahole -C folio /sys/kernel/btf/vmlinux` (docs/VERIFICATION.md). */
		off = (struct vfolio_offsets){ .refcount = 52, .pincount = 88, .mapcount = 48,
					       .source = "documented 6.1 offsets (no libbpf at build time)" };
		r = 0;
	}
	if (r < 0) {
		snprintf(v->ref_reason, sizeof(v->ref_reason), "no fprobe (%.100s) and no folio offsets: %.100s",
			 err[0] ? err : "not offered", reason);
		return;
	}
	/* x86-64: the first two arguments in %di and %si. */
	if (off.pincount >= 0)
		snprintf(spec, sizeof(spec), "gup_put_folio folio=%%di:x64 ref=+%ld(%%di):s32 pin=+%ld(%%di):s32 refs=%%si:s32",
			 off.refcount, off.pincount);
	else
		snprintf(spec, sizeof(spec), "gup_put_folio folio=%%di:x64 ref=+%ld(%%di):s32 refs=%%si:s32",
			 off.refcount);
	r = vtrace_define(v->trace, "ref", false, spec, err2, sizeof(err2));
	if (r < 0) {
		snprintf(v->ref_reason, sizeof(v->ref_reason), "cannot probe gup_put_folio: %.200s", err2);
		return;
	}
	json_object_object_add(tracing, "ref_source", json_object_new_string(off.source));
	{
		struct json_object *o = json_object_new_object();

		json_object_object_add(o, "_refcount", json_object_new_int64(off.refcount));
		json_object_object_add(o, "_pincount", json_object_new_int64(off.pincount));
		json_object_object_add(o, "_mapcount", json_object_new_int64(off.mapcount));
		json_object_object_add(tracing, "folio_offsets", o);
	}
	if (err[0])
		json_object_object_add(tracing, "fprobe_error", json_object_new_string(err));
	v->ref_probe = true;
}

/* Sets up tracing (if possible) and the generation from symbols; fills the report's header. */
int verify_probes_setup(struct verify *v)
{
	struct json_object *root = vreport_root(v->rep), *tracing = json_object_new_object();
	struct json_object *defs = json_object_new_object();
	char why[256];
	struct utsname u;

	if (uname(&u) == 0)
		json_object_object_add(root, "kernel", json_object_new_string(u.release));
	v->sym_gen = generation_from_symbols(why, sizeof(why));
	json_object_object_add(root, "generation_symbols", json_object_new_string(why));
	if (vtrace_new(&v->trace, v->trace_reason, sizeof(v->trace_reason)) < 0) {
		snprintf(v->ref_reason, sizeof(v->ref_reason), "%s", v->trace_reason);
		snprintf(v->insert_reason, sizeof(v->insert_reason), "%s", v->trace_reason);
	} else if (v->sym_gen == VGEN_UNKNOWN) {
		snprintf(v->insert_reason, sizeof(v->insert_reason), "unknown generation: %.200s", why);
		define_ref_probe(v, tracing);
	} else {
		char err[512];

		v->insert_probes = true;
		for (int i = 0; i < 3; i++)
			if (vtrace_define(v->trace, insert_events[i], false, insert_funcs[v->sym_gen][i], err,
					  sizeof(err)) < 0) {
				v->insert_probes = false;
				snprintf(v->insert_reason, sizeof(v->insert_reason), "cannot probe %s: %.200s",
					 insert_funcs[v->sym_gen][i], err);
			}
		define_ref_probe(v, tracing);
	}
	json_object_object_add(tracing, "available", json_object_new_boolean(v->trace != NULL));
	json_object_object_add(tracing, "reason", v->trace ? NULL : json_object_new_string(v->trace_reason));
	json_object_object_add(tracing, "fprobe", json_object_new_boolean(v->trace && vtrace_has_fprobe(v->trace)));
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
	v->gen = v->sym_gen;
	return 0;
}

const char *verify_insert_event(int level)
{
	return insert_events[level];
}

const char *verify_insert_func(const struct verify *v, int level)
{
	return v->sym_gen == VGEN_UNKNOWN ? "?" : insert_funcs[v->sym_gen][level];
}

/* Scenario "generation": symbols and behaviour must agree, and the model must hold. */
void verify_generation(struct verify *v)
{
	static const char *S = "generation";
	struct daxpool_slice *s = NULL;
	void *a = NULL, *b = NULL;
	struct vref r1, r2, r3;
	int r;

	vreport_add(v->rep, S, "symbols", v->sym_gen == VGEN_UNKNOWN ? VCHECK_FAILED : VCHECK_PASSED,
		    json_object_new_string(verify_gen_name(v->sym_gen)), json_object_new_string("before|after"),
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

		vreport_eq(v->rep, S, "mapping-share", r2.ref - r1.ref, v->sym_gen == VGEN_AFTER ? 1 : 0,
			   "a second mapping of the folio: refcount %lld -> %lld (%s model)", (long long)r1.ref,
			   (long long)r2.ref, verify_gen_name(behaved));
		vreport_eq(v->rep, S, "unmap-returns", r3.ref, r1.ref, "refcount after the second mapping went");
		if (v->sym_gen == VGEN_BEFORE)
			vreport_eq(v->rep, S, "mapped-refcount", r1.ref, 1,
				   "before: a mapped device-dax page keeps its idle refcount of 1");
		else
			vreport_range(v->rep, S, "mapped-refcount", r1.ref, 2, 3,
				      "after: idle 1, +1 for our mapping (+1 if daxpoold maps it too)");
		if (behaved != VGEN_UNKNOWN)
			v->gen = behaved;
	}
	verify_unmap_extra(b, daxpool_slice_get_length(s));
	verify_slice_close(v, &s);
}
