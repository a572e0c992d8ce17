/*
 * DRAM index of a pool, rebuilt at every open: maximal free extents (by offset for coalescing,
 * and by usable aligned length per alignment class and "level" for O(log n) best fit), and the
 * names of live records.
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include <bsd/sys/cdefs.h>
#include <bsd/sys/tree.h>

#define POOL_NCLASS 3 /* 4K, 2M, 1G */

/* A maximal free extent. level: 2 = contains a whole free 1G chunk, 1 = a whole 2M chunk, 0 none. */
struct fext {
	RB_ENTRY(fext) by_off;
	RB_ENTRY(fext) by_size[POOL_NCLASS];
	RB_ENTRY(fext) by_fringe; /* level 2 only: keyed by fringe */
	uint64_t off, len;
	uint64_t fringe; /* level 2: the longer of the parts before the first / after the last 1G chunk */
	uint64_t usable[POOL_NCLASS]; /* end - align_up(off, class), 0 if negative */
	uint8_t level;
};

struct name_node {
	RB_ENTRY(name_node) entry;
	uint64_t slot;
	char name[];
};

RB_HEAD(fext_off_tree, fext);
RB_HEAD(fext_sz0_tree, fext);
RB_HEAD(fext_sz1_tree, fext);
RB_HEAD(fext_sz2_tree, fext);
RB_HEAD(fext_fringe_tree, fext);
RB_HEAD(name_tree, name_node);

struct pool_index {
	struct fext_off_tree by_off;
	struct fext_sz0_tree sz0[3]; /* class 4K, per level */
	struct fext_sz1_tree sz1[3]; /* class 2M, per level (level 0 unused) */
	struct fext_sz2_tree sz2[3]; /* class 1G, level 2 only */
	/* Level-2 extents by the space they have outside whole 1G chunks: without it a small request
	 * would take the smallest level-2 extent and split its 1G chunk even when another level-2
	 * extent has room beside its chunks. */
	struct fext_fringe_tree fringe;
	struct name_tree names;
	uint64_t nfree_ext;
	uint64_t free_units[POOL_NCLASS]; /* sum over extents of usable[c] / class size */
	uint64_t free_bytes;
	uint64_t name_bytes;
	uint64_t nnames;
};

/* Where an allocation would go: no index change yet. */
struct placement {
	struct fext *ext;
	uint64_t offset;
};

void index_init(struct pool_index *idx);
void index_destroy(struct pool_index *idx);

/* Best placement of len bytes aligned to align (a class size); -ENOSPC if none. */
int index_find(struct pool_index *idx, uint64_t len, uint64_t align, struct placement *ret);
/* Placement of exactly [off, off+len): the free extent holding all of it; -EBUSY if any part of
 * the range is not free (allocated, metadata, or past the data area). */
int index_find_at(struct pool_index *idx, uint64_t off, uint64_t len, struct placement *ret);
/* Free-extent nodes kept for the index's next splits and holes. index_take and index_give run
 * after the persistent change, where nothing may fail: the caller makes sure the cache holds at
 * least one node first (each call uses at most one). Nodes the index lets go go back into it
 * (freed only when it is full), so churn at a steady live count needs no malloc or free:
 * perf showed a malloc+free pair per alloc/free step with a single spare node. */
#define FEXT_CACHE_MAX 8u
struct fext_cache {
	struct fext *node[FEXT_CACHE_MAX];
	unsigned n;
};
/* 0, or -ENOMEM when the cache is empty and no node could be allocated. */
int fext_cache_ready(struct fext_cache *c);
void fext_cache_clear(struct fext_cache *c);

/* Removes [off, off+len) from pl->ext; may take a node from cache (which must hold one). */
void index_take(struct pool_index *idx, const struct placement *pl, uint64_t len,
		struct fext_cache *cache);
/* Adds the free range [off, off+len), coalescing; may take a node from cache (which must hold
 * one) or give one back. */
void index_give(struct pool_index *idx, uint64_t off, uint64_t len, struct fext_cache *cache);
/* Largest allocation possible at class c (0..2). */
uint64_t index_largest(struct pool_index *idx, int c);

struct name_node *index_name_find(struct pool_index *idx, const char *name);
/* Inserts node (allocated by the caller); returns false if the name is already there. */
bool index_name_insert(struct pool_index *idx, struct name_node *node);
/* The first name >= name (strcmp order; name longer than POOL_NAME_MAX is cut), or NULL; and
 * the one after node. */
struct name_node *index_name_first_from(struct pool_index *idx, const char *name);
struct name_node *index_name_next(struct name_node *node);
void index_name_remove(struct pool_index *idx, struct name_node *node);
struct name_node *name_node_new(const char *name, uint64_t slot);

static inline uint64_t class_size(int c)
{
	return UINT64_C(1) << (c == 0 ? 12 : c == 1 ? 21 : 30);
}
static inline int class_of(uint64_t align)
{
	return align >= (UINT64_C(1) << 30) ? 2 : align >= (UINT64_C(1) << 21) ? 1 : 0;
}
