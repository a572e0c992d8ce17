/* plog: the on-slice format of the persistent append-only log (examples/plog.c, plog-check.c).
 *
 * [0, 4096): header — magic, format version, capacity, and `tail`: the byte offset (from the
 * start of the record area) just past the last committed record. [4096, length): records, each
 * { u64 seq; u32 len; u32 pad; u64 hash; payload[len] } padded to 8 bytes, seq counting from 1.
 * hash is XXH3-64 of the payload, seeded with seq and len. A record is committed once `tail` covers it; the
 * writer persists the record before it stores and persists the new tail (one aligned 8-byte
 * store, so it is never torn), and acknowledges seq only after that.
 */
#pragma once

#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <xxhash.h>

#define PLOG_MAGIC "dxpplog1"
#define PLOG_HEADER 4096u

struct plog_header {
	char magic[8];
	uint64_t version;
	uint64_t capacity; /* bytes of the record area */
	uint64_t tail;	   /* committed bytes of the record area */
};

struct plog_record {
	uint64_t seq;
	uint32_t len;
	uint32_t pad;
	uint64_t hash;
	/* payload follows */
};

static inline uint64_t plog_align8(uint64_t v)
{
	return (v + 7) & ~UINT64_C(7);
}

/* The payload of record seq: deterministic, so the checker verifies content, not just hashes. */
static inline uint32_t plog_payload(uint64_t seq, char *buf, uint32_t cap)
{
	uint32_t len = 16 + (uint32_t)(seq * 2654435761u % 200);
	int n;

	if (len > cap)
		len = cap;
	n = snprintf(buf, len, "record %llu ", (unsigned long long)seq);
	for (uint32_t i = n > 0 && (uint32_t)n < len ? (uint32_t)n : 0; i < len; i++)
		buf[i] = (char)('a' + (seq + i) % 26);
	return len;
}

static inline uint64_t plog_hash(const struct plog_record *rec, const void *payload)
{
	/* seq and len go in through the seed: one call, no streaming state */
	return XXH3_64bits_withSeed(payload, rec->len, rec->seq ^ ((uint64_t)rec->len << 48));
}
