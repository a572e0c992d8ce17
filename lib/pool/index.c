/*
 * Free-space index. Placement policy (docs/FORMAT.md "Placement policy"): whole free 1G chunks are
 * the scarcest thing a device-dax pool has, then whole 2M chunks. A request is therefore served
 * from the extent and position that break the fewest whole free 1G chunks, then the fewest whole
 * 2M chunks, then best fit. Candidates are the best fit of each level tree of the request's class
 * (at most three O(log n) searches), and within one extent a handful of positions (its aligned
 * start and end, and the first/last 2M and 1G boundaries).
 */
#include <errno.h>
#include <string.h>

#include "alloc.h"
#include "index.h"
#include "layout.h"
#include "macro.h"

static int cmp_off(const struct fext *a, const struct fext *b)
{
	return a->off < b->off ? -1 : a->off > b->off;
}
static int cmp_sz_c(const struct fext *a, const struct fext *b, int c)
{
	if (a->usable[c] != b->usable[c])
		return a->usable[c] < b->usable[c] ? -1 : 1;
	return cmp_off(a, b);
}
static int cmp_sz0(const struct fext *a, const struct fext *b)
{
	return cmp_sz_c(a, b, 0);
}
static int cmp_sz1(const struct fext *a, const struct fext *b)
{
	return cmp_sz_c(a, b, 1);
}
static int cmp_sz2(const struct fext *a, const struct fext *b)
{
	return cmp_sz_c(a, b, 2);
}
static int cmp_fringe(const struct fext *a, const struct fext *b)
{
	if (a->fringe != b->fringe)
		return a->fringe < b->fringe ? -1 : 1;
	return cmp_off(a, b);
}
static int cmp_name(const struct name_node *a, const struct name_node *b)
{
	return strcmp(a->name, b->name);
}

/* libbsd leaves __unused undefined (it clashes with a Linux struct member); the generated static
 * functions need it, and only for the generator, so define it just around these lines. */
#define __unused __attribute__((__unused__))
RB_GENERATE_STATIC(fext_off_tree, fext, by_off, cmp_off)
RB_GENERATE_STATIC(fext_sz0_tree, fext, by_size[0], cmp_sz0)
RB_GENERATE_STATIC(fext_sz1_tree, fext, by_size[1], cmp_sz1)
RB_GENERATE_STATIC(fext_sz2_tree, fext, by_size[2], cmp_sz2)
RB_GENERATE_STATIC(fext_fringe_tree, fext, by_fringe, cmp_fringe)
RB_GENERATE_STATIC(name_tree, name_node, entry, cmp_name)
#undef __unused

void index_init(struct pool_index *idx)
{
	memset(idx, 0, sizeof(*idx));
	RB_INIT(&idx->by_off);
	for (int l = 0; l < 3; l++) {
		RB_INIT(&idx->sz0[l]);
		RB_INIT(&idx->sz1[l]);
		RB_INIT(&idx->sz2[l]);
	}
	RB_INIT(&idx->fringe);
	RB_INIT(&idx->names);
}

void index_destroy(struct pool_index *idx)
{
	struct fext *e, *en;
	struct name_node *n, *nn;

	/* Nodes are in several trees; the offset tree holds each exactly once. */
	RB_FOREACH_SAFE(e, fext_off_tree, &idx->by_off, en) {
		RB_REMOVE(fext_off_tree, &idx->by_off, e);
		pool_mem_free(e);
	}
	RB_FOREACH_SAFE(n, name_tree, &idx->names, nn) {
		RB_REMOVE(name_tree, &idx->names, n);
		pool_mem_free(n);
	}
	index_init(idx);
}

/* Recomputes cached keys, then links e into the size trees of its classes. */
static void sz_link(struct pool_index *idx, struct fext *e)
{
	uint64_t end = e->off + e->len;

	for (int c = 0; c < POOL_NCLASS; c++) {
		uint64_t a = align_up(e->off, class_size(c));
		e->usable[c] = a < end ? end - a : 0;
	}
	e->level = e->usable[2] >= class_size(2) ? 2 : e->usable[1] >= class_size(1) ? 1 : 0;
	/* Class 0 always (every extent is >= 4K); classes 1, 2 only if a whole chunk fits. */
	RB_INSERT(fext_sz0_tree, &idx->sz0[e->level], e);
	if (e->usable[1] >= class_size(1))
		RB_INSERT(fext_sz1_tree, &idx->sz1[e->level], e);
	if (e->usable[2] >= class_size(2))
		RB_INSERT(fext_sz2_tree, &idx->sz2[e->level], e);
	e->fringe = 0;
	if (e->level == 2) {
		uint64_t head = align_up(e->off, class_size(2)) - e->off;
		uint64_t tail = end - align_down(end, class_size(2));
		e->fringe = MAX(head, tail);
		if (e->fringe)
			RB_INSERT(fext_fringe_tree, &idx->fringe, e);
	}
	for (int c = 0; c < POOL_NCLASS; c++)
		idx->free_units[c] += e->usable[c] / class_size(c);
	idx->free_bytes += e->len;
}

static void sz_unlink(struct pool_index *idx, struct fext *e)
{
	RB_REMOVE(fext_sz0_tree, &idx->sz0[e->level], e);
	if (e->usable[1] >= class_size(1))
		RB_REMOVE(fext_sz1_tree, &idx->sz1[e->level], e);
	if (e->usable[2] >= class_size(2))
		RB_REMOVE(fext_sz2_tree, &idx->sz2[e->level], e);
	if (e->level == 2 && e->fringe)
		RB_REMOVE(fext_fringe_tree, &idx->fringe, e);
	for (int c = 0; c < POOL_NCLASS; c++)
		idx->free_units[c] -= e->usable[c] / class_size(c);
	idx->free_bytes -= e->len;
}

/* Smallest extent of class c / level l whose usable length is >= len. */
static struct fext *sz_nfind(struct pool_index *idx, int c, int l, uint64_t len)
{
	struct fext key = {0};

	key.usable[c] = len;
	key.off = 0;
	switch (c) {
	case 0:
		return RB_NFIND(fext_sz0_tree, &idx->sz0[l], &key);
	case 1:
		return RB_NFIND(fext_sz1_tree, &idx->sz1[l], &key);
	default:
		return RB_NFIND(fext_sz2_tree, &idx->sz2[l], &key);
	}
}

uint64_t index_largest(struct pool_index *idx, int c)
{
	uint64_t best = 0;

	for (int l = 0; l < 3; l++) {
		struct fext *e = c == 0   ? RB_MAX(fext_sz0_tree, &idx->sz0[l])
				 : c == 1 ? RB_MAX(fext_sz1_tree, &idx->sz1[l])
					  : RB_MAX(fext_sz2_tree, &idx->sz2[l]);
		if (e)
			best = MAX(best, align_down(e->usable[c], class_size(c)));
	}
	return best;
}

/* Number of whole C-chunks of [eo, ee) that [p, p+s) touches without covering entirely. */
static uint64_t broken(uint64_t eo, uint64_t ee, uint64_t p, uint64_t s, uint64_t C)
{
	uint64_t cs = align_up(eo, C), ce = align_down(ee, C);
	if (cs >= ce)
		return 0;
	uint64_t lo = MAX(p, cs), hi = MIN(p + s, ce);
	if (lo >= hi)
		return 0;
	uint64_t touched = (align_up(hi, C) - align_down(lo, C)) / C;
	uint64_t clo = align_up(lo, C), chi = align_down(hi, C);
	uint64_t covered = chi > clo ? (chi - clo) / C : 0;
	return touched - covered;
}

/* Cost of placing [p, p+s) in e: broken 1G chunks dominate, then broken 2M chunks. */
static uint64_t cost(const struct fext *e, uint64_t p, uint64_t s)
{
	uint64_t end = e->off + e->len;
	return (broken(e->off, end, p, s, class_size(2)) << 32) +
	       broken(e->off, end, p, s, class_size(1));
}

/* Best position in e for s bytes aligned to a; e is known to fit. */
static void best_in_extent(const struct fext *e, uint64_t s, uint64_t a, uint64_t *ret_pos,
			   uint64_t *ret_cost)
{
	uint64_t end = e->off + e->len;
	uint64_t cand[6];
	unsigned n = 0;

	cand[n++] = align_up(e->off, a);
	cand[n++] = align_down(end - s, a);
	for (int c = 1; c < POOL_NCLASS; c++) {
		if (class_size(c) <= a)
			continue;
		cand[n++] = align_up(e->off, class_size(c));
		if (end - s >= e->off)
			cand[n++] = align_down(end - s, class_size(c));
	}
	uint64_t best_p = cand[0], best_c = UINT64_MAX;
	for (unsigned i = 0; i < n; i++) {
		uint64_t p = cand[i];
		if (p < e->off || p + s > end || p % a != 0)
			continue;
		uint64_t k = cost(e, p, s);
		if (k < best_c) {
			best_c = k;
			best_p = p;
		}
	}
	*ret_pos = best_p;
	*ret_cost = best_c;
}

int index_find(struct pool_index *idx, uint64_t len, uint64_t align, struct placement *ret)
{
	int c = class_of(align);
	struct placement best = {0};
	uint64_t best_cost = UINT64_MAX;

	for (int l = 0; l < 3; l++) {
		struct fext *e = sz_nfind(idx, c, l, len);
		if (!e)
			continue;
		uint64_t p, k;
		best_in_extent(e, len, align, &p, &k);
		/* Strictly better only: on a tie the lower level (more fragmented) extent wins. */
		if (k < best_cost) {
			best_cost = k;
			best.ext = e;
			best.offset = p;
		}
		if (best_cost == 0)
			break;
	}
	if (best_cost != 0 && c < 2) {
		struct fext key = {.fringe = len};
		struct fext *e = RB_NFIND(fext_fringe_tree, &idx->fringe, &key);
		if (e) {
			uint64_t p, k;
			best_in_extent(e, len, align, &p, &k);
			if (k < best_cost) {
				best_cost = k;
				best.ext = e;
				best.offset = p;
			}
		}
	}
	if (!best.ext)
		return -ENOSPC;
	*ret = best;
	return 0;
}

int index_find_at(struct pool_index *idx, uint64_t off, uint64_t len, struct placement *ret)
{
	struct fext key = {.off = off};
	struct fext *e = RB_NFIND(fext_off_tree, &idx->by_off, &key);

	if (off + len < off)
		return -EBUSY;
	/* The extent holding off starts at off (NFIND found it) or is the one before. */
	if (!e || e->off != off)
		e = e ? RB_PREV(fext_off_tree, &idx->by_off, e) : RB_MAX(fext_off_tree, &idx->by_off);
	if (!e || e->off > off || off + len > e->off + e->len)
		return -EBUSY;
	*ret = (struct placement){.ext = e, .offset = off};
	return 0;
}

int fext_cache_ready(struct fext_cache *c)
{
	if (c->n == 0) {
		struct fext *e = pool_mem_alloc(sizeof(*e));

		if (!e)
			return -ENOMEM;
		c->node[c->n++] = e;
	}
	return 0;
}

void fext_cache_clear(struct fext_cache *c)
{
	while (c->n)
		pool_mem_free(c->node[--c->n]);
}

/* A node the index no longer needs goes back to the cache. */
static void node_recycle(struct fext *e, struct fext_cache *c)
{
	if (c->n < FEXT_CACHE_MAX)
		c->node[c->n++] = e;
	else
		pool_mem_free(e);
}

/* A zeroed node from the cache, which the caller filled beforehand (fext_cache_ready). */
static struct fext *node_take(struct fext_cache *c)
{
	struct fext *e = c->node[--c->n];

	memset(e, 0, sizeof(*e));
	return e;
}

void index_take(struct pool_index *idx, const struct placement *pl, uint64_t len,
		struct fext_cache *cache)
{
	struct fext *e = pl->ext;
	uint64_t end = e->off + e->len, p = pl->offset;

	sz_unlink(idx, e);
	if (p == e->off && p + len == end) {
		RB_REMOVE(fext_off_tree, &idx->by_off, e);
		idx->nfree_ext--;
		node_recycle(e, cache);
		return;
	}
	if (p == e->off) {
		/* Shrinking from the front keeps offset order among disjoint extents: no re-insert. */
		e->off += len;
		e->len -= len;
	} else if (p + len == end) {
		e->len -= len;
	} else {
		struct fext *tail = node_take(cache);
		tail->off = p + len;
		tail->len = end - tail->off;
		e->len = p - e->off;
		RB_INSERT(fext_off_tree, &idx->by_off, tail);
		idx->nfree_ext++;
		sz_link(idx, tail);
	}
	sz_link(idx, e);
}

void index_give(struct pool_index *idx, uint64_t off, uint64_t len, struct fext_cache *cache)
{
	struct fext key = {.off = off};
	struct fext *next = RB_NFIND(fext_off_tree, &idx->by_off, &key);
	struct fext *prev = next ? RB_PREV(fext_off_tree, &idx->by_off, next)
				 : RB_MAX(fext_off_tree, &idx->by_off);
	bool merge_prev = prev && prev->off + prev->len == off;
	bool merge_next = next && off + len == next->off;

	if (merge_prev && merge_next) {
		sz_unlink(idx, prev);
		sz_unlink(idx, next);
		prev->len += len + next->len;
		RB_REMOVE(fext_off_tree, &idx->by_off, next);
		idx->nfree_ext--;
		node_recycle(next, cache);
		sz_link(idx, prev);
	} else if (merge_prev) {
		sz_unlink(idx, prev);
		prev->len += len;
		sz_link(idx, prev);
	} else if (merge_next) {
		/* Growing next downwards stays between prev and next: offset order unchanged. */
		sz_unlink(idx, next);
		next->off = off;
		next->len += len;
		sz_link(idx, next);
	} else {
		struct fext *e = node_take(cache);
		e->off = off;
		e->len = len;
		RB_INSERT(fext_off_tree, &idx->by_off, e);
		idx->nfree_ext++;
		sz_link(idx, e);
	}
}

struct name_node *name_node_new(const char *name, uint64_t slot)
{
	size_t n = strlen(name);
	struct name_node *node = pool_mem_alloc(sizeof(*node) + n + 1);
	if (!node)
		return NULL;
	memset(node, 0, sizeof(*node));
	node->slot = slot;
	memcpy(node->name, name, n + 1);
	return node;
}

struct name_node *index_name_find(struct pool_index *idx, const char *name)
{
	/* A stack key: name_node has a flexible array, so build one in a buffer large enough. */
	union {
		struct name_node n;
		char buf[sizeof(struct name_node) + POOL_NAME_MAX + 1];
	} key;
	size_t len = strnlen(name, POOL_NAME_MAX + 1);
	if (len > POOL_NAME_MAX)
		return NULL;
	memcpy(key.n.name, name, len + 1);
	return RB_FIND(name_tree, &idx->names, &key.n);
}

struct name_node *index_name_first_from(struct pool_index *idx, const char *name)
{
	union {
		struct name_node n;
		char buf[sizeof(struct name_node) + POOL_NAME_MAX + 1];
	} key;
	size_t len = strnlen(name, POOL_NAME_MAX);
	memcpy(key.n.name, name, len);
	key.n.name[len] = '\0';
	return RB_NFIND(name_tree, &idx->names, &key.n);
}

struct name_node *index_name_next(struct name_node *node)
{
	return RB_NEXT(name_tree, NULL, node);
}

bool index_name_insert(struct pool_index *idx, struct name_node *node)
{
	if (RB_INSERT(name_tree, &idx->names, node))
		return false;
	idx->nnames++;
	idx->name_bytes += sizeof(*node) + strlen(node->name) + 1;
	return true;
}

void index_name_remove(struct pool_index *idx, struct name_node *node)
{
	RB_REMOVE(name_tree, &idx->names, node);
	idx->nnames--;
	idx->name_bytes -= sizeof(*node) + strlen(node->name) + 1;
}
