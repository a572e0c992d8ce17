/* Per-uid usage (bytes and slices held), the base of quota checks. */
#pragma once

#include <stdint.h>
#include <sys/types.h>

struct daxpoold;

/* Builds the table from the pool's live records (quarantined and reserved ones do not count). */
int usage_init(struct daxpoold *d);
void usage_done(struct daxpoold *d);
/* -EDQUOT with a message in *why when uid may not take bytes more (admins are not checked). */
int usage_check(struct daxpoold *d, uid_t uid, uint64_t bytes, char *why, size_t why_size);
int usage_add(struct daxpoold *d, uid_t uid, uint64_t bytes);
void usage_sub(struct daxpoold *d, uid_t uid, uint64_t bytes);
