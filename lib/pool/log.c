/*
 * Redo log. One operation = up to POOL_LOG_MAX_RECORDS full record images. Protocol:
 *   1. write body (generation, count, entries, checksum), persist;
 *   2. store the generation in the commit word (8-byte aligned: failure atomic), persist;
 *   3. copy the images into the table, persist;
 *   4. store 0 in the commit word, flush; the next operation's first act is a drain.
 * Recovery: commit word 0 -> nothing happened or everything did (body ignored). Commit word equal
 * to a body with a valid checksum -> replay (idempotent: full images). Anything else is damage.
 * The body always describes the latest operation, so replaying it over a state where it already
 * happened changes nothing: that is why a replay is always safe when the body is valid.
 */
#include <endian.h>
#include <string.h>

#include "endian-util.h"
#include "layout.h"
#include "pool-internal.h"

/* An aligned 8-byte store the compiler may not split: the commit mark must be all-or-nothing. */
static void store_commit(uint8_t *p, uint64_t v)
{
	__atomic_store_n((uint64_t *)(void *)p, htole64(v), __ATOMIC_RELEASE);
}

static uint64_t body_checksum(const uint8_t *log, unsigned n)
{
	uint8_t buf[POOL_LOG_ENTRIES_OFF + POOL_LOG_MAX_RECORDS * POOL_LOG_ENTRY_SIZE];
	size_t len = POOL_LOG_ENTRIES_OFF + (size_t)n * POOL_LOG_ENTRY_SIZE;

	memcpy(buf, log, len);
	memset(buf + LOG_COMMIT, 0, 8); /* not covered: it changes after the body is written */
	memset(buf + LOG_CHECKSUM, 0, 8);
	return pool_checksum(buf + LOG_GENERATION, len - LOG_GENERATION);
}

/* Test-only (pool_test_plant_ordering_bug): tests are single-threaded; the daemon never sets it. */
static enum pool_test_ordering_bug planted;

void pool_test_plant_ordering_bug(enum pool_test_ordering_bug bug)
{
	planted = bug;
}

void log_commit(struct pool *p, const struct log_update *u, unsigned n)
{
	uint8_t *log = p->base + p->geo.log_off;
	uint64_t gen = p->next_gen++;
	size_t body = POOL_LOG_ENTRIES_OFF + (size_t)n * POOL_LOG_ENTRY_SIZE;

	if (gen == 0) /* 0 means "no commit": skip it on wrap-around */
		gen = p->next_gen++;
	/* The previous operation cleared the commit mark and flushed it without waiting (step 5
	 * below); the clear must be on the media before its body is overwritten. By now the
	 * write-back has usually long finished, so this fence rarely waits. */
	if (p->commit_clear_in_flight)
		p->ops.drain();
	memset(log + LOG_GENERATION, 0, POOL_LOG_ENTRIES_OFF - LOG_GENERATION);
	put_le64(log + LOG_GENERATION, gen);
	log[LOG_NREC] = (uint8_t)n;
	for (unsigned i = 0; i < n; i++) {
		uint8_t *e = log + POOL_LOG_ENTRIES_OFF + i * POOL_LOG_ENTRY_SIZE;
		memset(e, 0, LOG_ENTRY_RECORD);
		put_le64(e + LOG_ENTRY_SLOT, u[i].slot);
		memcpy(e + LOG_ENTRY_RECORD, u[i].image, POOL_RECORD_SIZE);
	}
	put_le64(log + LOG_CHECKSUM, body_checksum(log, n));
	if (planted == POOL_TEST_BUG_COMMIT_BEFORE_BODY)
		p->ops.flush(log + LOG_GENERATION, body - LOG_GENERATION);
	else
		p->ops.persist(log + LOG_GENERATION, body - LOG_GENERATION);

	store_commit(log + LOG_COMMIT, gen);
	p->ops.persist(log + LOG_COMMIT, 8);

	for (unsigned i = 0; i < n; i++) {
		memcpy(pool_rec_ptr(p, u[i].slot), u[i].image, POOL_RECORD_SIZE);
		p->ops.flush(pool_rec_ptr(p, u[i].slot), POOL_RECORD_SIZE);
	}
	if (planted == POOL_TEST_BUG_CLEAR_BEFORE_APPLY) {
		store_commit(log + LOG_COMMIT, 0);
		p->ops.flush(log + LOG_COMMIT, 8);
	}
	p->ops.drain();

	/* The operation is durable now: a crash from here on finds the commit mark set over a valid
	 * body and replays it, which changes nothing. So the clear is flushed but not waited for;
	 * the next operation (or pool_delete) drains it. Every state the media can be in is one
	 * the four-fence protocol could also leave, so the format does not change. */
	store_commit(log + LOG_COMMIT, 0);
	p->ops.flush(log + LOG_COMMIT, 8);
	p->commit_clear_in_flight = true;
}

uint64_t log_generation(const uint8_t *base, const struct pool_geometry *g)
{
	const uint8_t *log = base + g->log_off;
	unsigned n = log[LOG_NREC];

	if (n < 1 || n > POOL_LOG_MAX_RECORDS || get_le64(log + LOG_CHECKSUM) != body_checksum(log, n))
		return 0;
	return get_le64(log + LOG_GENERATION);
}

enum log_state log_inspect(const uint8_t *base, const struct pool_geometry *g,
			   struct log_update *ret_u, unsigned *ret_n, uint64_t *ret_gen,
			   const char **ret_why)
{
	const uint8_t *log = base + g->log_off;
	uint64_t commit = get_le64(log + LOG_COMMIT);
	unsigned n = log[LOG_NREC];

	if (commit == 0)
		return LOG_IDLE;
	/* Bytes 73..79 are reserved and always written as zero. */
	for (unsigned i = LOG_NREC + 1; i < LOG_CHECKSUM; i++)
		if (log[i] != 0)
			n = 0;
	if (n < 1 || n > POOL_LOG_MAX_RECORDS || get_le64(log + LOG_CHECKSUM) != body_checksum(log, n)) {
		*ret_why = "log commit mark set but log body checksum mismatch";
		return LOG_DAMAGED;
	}
	for (unsigned i = 0; i < n; i++) {
		const uint8_t *e = log + POOL_LOG_ENTRIES_OFF + i * POOL_LOG_ENTRY_SIZE;
		struct pool_record r;
		const char *why;
		ret_u[i].slot = get_le64(e + LOG_ENTRY_SLOT);
		memcpy(ret_u[i].image, e + LOG_ENTRY_RECORD, POOL_RECORD_SIZE);
		if (ret_u[i].slot >= g->table_capacity || rec_decode(ret_u[i].image, &r, &why) < 0) {
			*ret_why = "log entry invalid";
			return LOG_DAMAGED;
		}
	}
	*ret_n = n;
	*ret_gen = get_le64(log + LOG_GENERATION);
	if (commit != *ret_gen) {
		*ret_why = "log commit mark does not match log generation";
		return LOG_STRAY;
	}
	return LOG_COMMITTED;
}

void log_replay(uint8_t *base, const struct pool_geometry *g, const struct pool_persist_ops *ops,
		const struct log_update *u, unsigned n)
{
	uint8_t *log = base + g->log_off;

	for (unsigned i = 0; i < n; i++) {
		uint8_t *r = base + g->table_off + u[i].slot * POOL_RECORD_SIZE;
		memcpy(r, u[i].image, POOL_RECORD_SIZE);
		ops->flush(r, POOL_RECORD_SIZE);
	}
	ops->drain();
	store_commit(log + LOG_COMMIT, 0);
	ops->persist(log + LOG_COMMIT, 8);
}
