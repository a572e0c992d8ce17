/* daxpoolctl verify: struct folio / struct page offsets from BTF (verify/verify-btf.h). The same numbers
 * `pahole -C folio /sys/kernel/btf/vmlinux` prints, computed at run time so a kernel update
 * that moves a field cannot make the probes read the wrong word. */
#include "verify-btf.h"
#include "macro.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#ifdef DAXPOOL_HAVE_LIBBPF
#include <bpf/btf.h>

/* Byte offset of member name inside type id, looking into anonymous structs and unions (the
 * counters of struct folio sit in unnamed unions that overlay struct page). -1 if absent. */
static long member_offset(const struct btf *btf, unsigned id, const char *name, long base)
{
	const struct btf_type *t = btf__type_by_id(btf, id);
	const struct btf_member *m;

	while (t && (btf_is_mod(t) || btf_is_typedef(t))) {
		id = t->type;
		t = btf__type_by_id(btf, id);
	}
	if (!t || !btf_is_composite(t))
		return -1;
	m = btf_members(t);
	for (unsigned i = 0; i < btf_vlen(t); i++, m++) {
		const char *n = btf__name_by_offset(btf, m->name_off);
		long off = base + (long)(btf_member_bit_offset(t, i) / 8);

		if (n && n[0]) {
			if (strcmp(n, name) == 0)
				return off;
			continue;
		}
		off = member_offset(btf, m->type, name, off);
		if (off >= 0)
			return off;
	}
	return -1;
}

/* Value of enumerator name in enum pageflags, -1 if absent. */
static int pageflag(const struct btf *btf, const char *name)
{
	int id = btf__find_by_name_kind(btf, "pageflags", BTF_KIND_ENUM);
	const struct btf_type *t = id > 0 ? btf__type_by_id(btf, (unsigned)id) : NULL;
	const struct btf_enum *e;

	if (!t)
		return -1;
	e = btf_enum(t);
	for (unsigned i = 0; i < btf_vlen(t); i++, e++)
		if (strcmp(btf__name_by_offset(btf, e->name_off), name) == 0)
			return (int)e->val;
	return -1;
}

static int load(struct btf **btf, const char *type, int *id, char *reason, size_t size)
{
	*btf = btf__load_vmlinux_btf();
	if (!*btf) {
		snprintf(reason, size, "no kernel BTF (/sys/kernel/btf/vmlinux): %s", strerror(errno));
		return -ENOENT;
	}
	*id = btf__find_by_name_kind(*btf, type, BTF_KIND_STRUCT);
	if (*id < 0) {
		btf__free(*btf);
		*btf = NULL;
		snprintf(reason, size, "the kernel's BTF has no struct %s", type);
		return -ENOENT;
	}
	return 0;
}

int vbtf_folio_offsets(struct vfolio_offsets *ret, char *reason, size_t size)
{
	struct btf *btf;
	int id, r;

	r = load(&btf, "folio", &id, reason, size);
	if (r < 0)
		return r;
	ret->refcount = member_offset(btf, (unsigned)id, "_refcount", 0);
	ret->pincount = member_offset(btf, (unsigned)id, "_pincount", 0);
	ret->mapcount = member_offset(btf, (unsigned)id, "_mapcount", 0);
	ret->flags = member_offset(btf, (unsigned)id, "flags", 0);
	ret->pg_head = pageflag(btf, "PG_head");
	ret->source = "BTF /sys/kernel/btf/vmlinux (libbpf), struct folio";
	btf__free(btf);
	if (ret->refcount < 0) {
		snprintf(reason, size, "struct folio in BTF has no _refcount");
		return -ENOENT;
	}
	return 0;
}

int vbtf_page_offsets(struct vfolio_offsets *ret, char *reason, size_t size)
{
	static const char *const pin_names[] = { "hpage_pinned_refcount", "compound_pincount" };
	const struct btf_type *t;
	struct btf *btf;
	int id, r;

	r = load(&btf, "page", &id, reason, size);
	if (r < 0)
		return r;
	t = btf__type_by_id(btf, (unsigned)id);
	ret->refcount = member_offset(btf, (unsigned)id, "_refcount", 0);
	ret->mapcount = member_offset(btf, (unsigned)id, "_mapcount", 0);
	ret->flags = member_offset(btf, (unsigned)id, "flags", 0);
	ret->pincount = -1;
	for (size_t i = 0; i < ARRAY_SIZE(pin_names) && ret->pincount < 0; i++) {
		long o = member_offset(btf, (unsigned)id, pin_names[i], 0);

		if (o >= 0)
			ret->pincount = (long)t->size + o; /* in the first tail page */
	}
	ret->pg_head = pageflag(btf, "PG_head");
	ret->source = "BTF /sys/kernel/btf/vmlinux (libbpf), struct page";
	btf__free(btf);
	if (ret->refcount < 0) {
		snprintf(reason, size, "struct page in BTF has no _refcount");
		return -ENOENT;
	}
	return 0;
}
#else
int vbtf_folio_offsets(struct vfolio_offsets *ret, char *reason, size_t size)
{
	(void)ret;
	snprintf(reason, size, "daxpoolctl was built without libbpf (apt-get install libbpf-dev)");
	return -EOPNOTSUPP;
}

int vbtf_page_offsets(struct vfolio_offsets *ret, char *reason, size_t size)
{
	return vbtf_folio_offsets(ret, reason, size);
}
#endif
