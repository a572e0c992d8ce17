/* Private body of struct pool, shared by pool.c, log.c and fsck.c. */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "index.h"
#include "layout.h"
#include "pool.h"

struct pmem2_map;

/* mapping.c: a pool target mapped whole, through libpmem2 or (device-dax over RAM) mmap. */
struct pool_mapping {
	struct pmem2_map *map; /* libpmem2's, or NULL */
	void *addr;
	uint64_t size;       /* the pool's: beyond accessible only for a carved region's pool */
	uint64_t accessible; /* bytes from addr that are mapped */
	uint64_t align; /* the target's own: the device's, the file system's page */
	struct pool_persist_ops ops;
	bool unmap; /* mapped with mmap: munmap on close */
};
/* Maps the whole target read-write. 0 or -errno with pool_errormsg(). */
int pool_mapping_open(int fd, struct pool_mapping *ret);
/* Unmaps and clears; a cleared mapping is left alone. */
void pool_mapping_close(struct pool_mapping *m);

/* One record update of a logged operation. image is the full new record (all zero = free). */
struct log_update {
	uint64_t slot;
	uint8_t image[POOL_RECORD_SIZE];
};

struct pool {
	uint8_t *base;
	uint64_t size;
	struct pool_persist_ops ops;
	struct pool_mapping mapping; /* set when pool_open_fd mapped it: unmapped by pool_delete */
	struct pool_geometry geo;
	uint64_t next_gen;
	/* The last log_commit's cleared commit mark was flushed, not yet drained. */
	bool commit_clear_in_flight;

	/* Empty record slots, lowest id on top (ids handed out low first: table stays dense). */
	uint32_t *free_slots;
	uint64_t nfree_slots;

	uint64_t records_used, records_anon, records_quar, allocated_bytes;
	struct pool_index idx;
	/* Free-extent nodes kept ready for the next split (alloc) or lone hole (free), which happen
	 * after the persistent change, where nothing may fail; nodes the index lets go refill it.
	 * Saves the malloc and free of a node per call (index.h). */
	struct fext_cache spare;

	/* Read-only scans (pool_check without repair) see a pending committed log through this
	 * overlay instead of replaying it. */
	bool readonly;
	uint32_t noverlay;
	struct log_update overlay[POOL_LOG_MAX_RECORDS];
};

static inline uint8_t *pool_rec_ptr(struct pool *p, uint64_t slot)
{
	return p->base + p->geo.table_off + slot * POOL_RECORD_SIZE;
}

/* log.c */
/* Makes the updates atomic: log, commit, apply, clear. Cannot fail. */
void log_commit(struct pool *p, const struct log_update *u, unsigned n);

enum log_state {
	LOG_IDLE,      /* commit mark clear: nothing to do */
	LOG_COMMITTED, /* a committed op to replay (interrupted between commit and clear) */
	LOG_STRAY,     /* commit mark set but not equal to the body's generation: bit flip */
	LOG_DAMAGED,   /* commit mark set and the body is bad: cannot replay */
};
/* Reads the log; fills up to POOL_LOG_MAX_RECORDS updates for LOG_COMMITTED/LOG_STRAY. */
enum log_state log_inspect(const uint8_t *base, const struct pool_geometry *g,
			   struct log_update *ret_u, unsigned *ret_n, uint64_t *ret_gen,
			   const char **ret_why);
/* Replays updates and clears the commit mark. */
void log_replay(uint8_t *base, const struct pool_geometry *g, const struct pool_persist_ops *ops,
		const struct log_update *u, unsigned n);
/* Generation in the log body if its checksum is valid, else 0. */
uint64_t log_generation(const uint8_t *base, const struct pool_geometry *g);

/* pool.c, used by fsck.c */
int pool_open_internal(void *addr, uint64_t size, const struct pool_persist_ops *ops,
		       bool readonly, struct pool **ret_pool);
int pool_superblocks(uint8_t *base, uint64_t size, struct pool_geometry *ret_geo, int *ret_bad,
		     const char **ret_why);
