/*
 * On-device format, version 1 (docs/FORMAT.md is the normative description; keep them in sync).
 * All integers little-endian. Structures are never accessed through pointers into the mapping
 * for multi-byte fields: they are encoded/decoded by format.c so the code is endian-clean.
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "pool.h"

#define POOL_MAGIC "DAXPOOL" /* 8 bytes with the NUL */
#define POOL_FORMAT_VERSION 1u

#define POOL_CACHELINE 64u
#define POOL_SB_A_OFF 0u
#define POOL_SB_B_OFF 4096u
#define POOL_SB_BYTES 128u /* bytes of each copy used; checksum covers [0,120) */
#define POOL_LOG_OFF 8192u
#define POOL_LOG_SIZE 4096u
#define POOL_TABLE_OFF 12288u
#define POOL_RECORD_SIZE 320u
#define POOL_LOG_MAX_RECORDS 4u
#define POOL_LOG_ENTRY_SIZE 384u /* 64-byte slot header + one record image */
#define POOL_LOG_ENTRIES_OFF 128u

#define POOL_MIN_CAPACITY 64u
#define POOL_MAX_CAPACITY (UINT64_C(1) << 26)
#define POOL_BYTES_PER_RECORD_DEFAULT (UINT64_C(64) << 10)

/* Persistent record flags; bit 0 marks a live record so a non-zero record is never "free". */
#define POOL_REC_USED (1u << 0)
#define POOL_REC_KNOWN_FLAGS (POOL_REC_USED | POOL_REC_ANONYMOUS | POOL_REC_QUARANTINED)

/* Superblock offsets */
#define SB_MAGIC 0
#define SB_VERSION 8
#define SB_HDRSIZE 12
#define SB_UUID 16
#define SB_POOL_SIZE 32
#define SB_DEVICE_ALIGN 40
#define SB_LOG_OFF 48
#define SB_LOG_SIZE 56
#define SB_TABLE_OFF 64
#define SB_TABLE_CAP 72
#define SB_RECORD_SIZE 80
#define SB_DATA_OFF 88
#define SB_DATA_SIZE 96
#define SB_FLAGS 104
#define SB_RESERVED 112
#define SB_CHECKSUM 120

/* Record offsets */
#define REC_OFFSET 0
#define REC_LENGTH 8
#define REC_GENERATION 16
#define REC_UID 24
#define REC_GID 28
#define REC_MODE 32
#define REC_FLAGS 36
#define REC_ALIGN_SHIFT 38
#define REC_NAME_LEN 39
#define REC_RESERVED 40 /* 16 bytes, zero */
#define REC_CHECKSUM 56
#define REC_NAME 64 /* 256 bytes, NUL padded */

/* Log offsets */
#define LOG_COMMIT 0 /* alone in its cache line: the 8-byte failure-atomic commit mark */
#define LOG_GENERATION 64
#define LOG_NREC 72
#define LOG_RESERVED 76
#define LOG_CHECKSUM 80
#define LOG_ENTRY_SLOT 0   /* within an entry */
#define LOG_ENTRY_RECORD 64

/* Decoded superblock: the geometry of a pool. */
struct pool_geometry {
	uint8_t uuid[16];
	uint64_t pool_size;
	uint64_t device_align;
	uint64_t log_off, log_size;
	uint64_t table_off, table_capacity;
	uint64_t data_off, data_size;
};

/* Decoded record. */
struct pool_record {
	uint64_t offset, length, generation;
	uint32_t uid, gid, mode;
	uint16_t flags;
	uint8_t align_shift;
	uint8_t name_len;
	char name[POOL_NAME_MAX + 1];
};

/* format.c */
uint64_t pool_checksum(const void *buf, size_t len);
void sb_encode(uint8_t out[POOL_SB_BYTES], const struct pool_geometry *g);
int sb_decode(const uint8_t in[POOL_SB_BYTES], struct pool_geometry *ret, const char **ret_why);
int geometry_compute(uint64_t size, const struct pool_format_params *params,
		     struct pool_geometry *ret);
void rec_encode(uint8_t out[POOL_RECORD_SIZE], const struct pool_record *r);
/* 0 = live record decoded, 1 = empty slot (all zero), -EUCLEAN = bad (why set). */
int rec_decode(const uint8_t in[POOL_RECORD_SIZE], struct pool_record *ret, const char **ret_why);
bool rec_is_empty(const uint8_t in[POOL_RECORD_SIZE]);

static inline uint64_t align_up(uint64_t x, uint64_t a)
{
	return (x + a - 1) & ~(a - 1);
}
static inline uint64_t align_down(uint64_t x, uint64_t a)
{
	return x & ~(a - 1);
}
