/* Encoding, decoding and checksums of the superblock and allocation records (layout.h). */
#include <errno.h>
#include <string.h>
#include <sys/mman.h>
#include <xxhash.h>

#include "endian-util.h"
#include "layout.h"
#include "pool.h"

/* XXH3-64 with seed 0: fast on short inputs, stable across versions since xxhash 0.8.0. */
uint64_t pool_checksum(const void *buf, size_t len)
{
	return XXH3_64bits(buf, len);
}

void sb_encode(uint8_t out[POOL_SB_BYTES], const struct pool_geometry *g)
{
	memset(out, 0, POOL_SB_BYTES);
	memcpy(out + SB_MAGIC, POOL_MAGIC, 8);
	put_le32(out + SB_VERSION, POOL_FORMAT_VERSION);
	put_le32(out + SB_HDRSIZE, POOL_SB_BYTES);
	memcpy(out + SB_UUID, g->uuid, 16);
	put_le64(out + SB_POOL_SIZE, g->pool_size);
	put_le64(out + SB_DEVICE_ALIGN, g->device_align);
	put_le64(out + SB_LOG_OFF, g->log_off);
	put_le64(out + SB_LOG_SIZE, g->log_size);
	put_le64(out + SB_TABLE_OFF, g->table_off);
	put_le64(out + SB_TABLE_CAP, g->table_capacity);
	put_le64(out + SB_RECORD_SIZE, POOL_RECORD_SIZE);
	put_le64(out + SB_DATA_OFF, g->data_off);
	put_le64(out + SB_DATA_SIZE, g->data_size);
	put_le64(out + SB_CHECKSUM, pool_checksum(out, SB_CHECKSUM));
}

static bool is_class(uint64_t a)
{
	return a == POOL_ALIGN_4K || a == POOL_ALIGN_2M || a == POOL_ALIGN_1G;
}

/* Returns 0, -ENODATA (no magic), -EPROTONOSUPPORT, or -EUCLEAN (checksum or geometry bad). */
int sb_decode(const uint8_t in[POOL_SB_BYTES], struct pool_geometry *ret, const char **ret_why)
{
	struct pool_geometry g = {0};

	if (memcmp(in + SB_MAGIC, POOL_MAGIC, 8) != 0) {
		*ret_why = "bad magic";
		return -ENODATA;
	}
	if (get_le64(in + SB_CHECKSUM) != pool_checksum(in, SB_CHECKSUM)) {
		*ret_why = "checksum mismatch";
		return -EUCLEAN;
	}
	/* The version is checked after the checksum so a bit flip is not reported as "too new". */
	if (get_le32(in + SB_VERSION) != POOL_FORMAT_VERSION) {
		*ret_why = "unsupported format version";
		return -EPROTONOSUPPORT;
	}
	memcpy(g.uuid, in + SB_UUID, 16);
	g.pool_size = get_le64(in + SB_POOL_SIZE);
	g.device_align = get_le64(in + SB_DEVICE_ALIGN);
	g.log_off = get_le64(in + SB_LOG_OFF);
	g.log_size = get_le64(in + SB_LOG_SIZE);
	g.table_off = get_le64(in + SB_TABLE_OFF);
	g.table_capacity = get_le64(in + SB_TABLE_CAP);
	g.data_off = get_le64(in + SB_DATA_OFF);
	g.data_size = get_le64(in + SB_DATA_SIZE);

	/* A valid checksum on nonsense geometry means a bug, not a bit flip: still refuse it. */
	if (get_le32(in + SB_HDRSIZE) != POOL_SB_BYTES || get_le64(in + SB_RECORD_SIZE) != POOL_RECORD_SIZE ||
	    !is_class(g.device_align) || g.log_off != POOL_LOG_OFF || g.log_size != POOL_LOG_SIZE ||
	    g.table_off != POOL_TABLE_OFF || g.table_capacity < POOL_MIN_CAPACITY ||
	    g.table_capacity > POOL_MAX_CAPACITY ||
	    g.data_off < g.table_off + g.table_capacity * POOL_RECORD_SIZE ||
	    g.data_off % g.device_align != 0 || g.data_off % POOL_ALIGN_2M != 0 ||
	    g.data_size == 0 || g.data_size % g.device_align != 0 ||
	    g.data_off + g.data_size < g.data_off || g.data_off + g.data_size > g.pool_size) {
		*ret_why = "inconsistent geometry";
		return -EUCLEAN;
	}
	*ret = g;
	return 0;
}

/*
 * Geometry for a new pool of size bytes. The data area starts at the first boundary of
 * max(device alignment, 2 MiB) after the record table, so every 2M chunk of the data area can be
 * mapped with PMD pages; 1G alignment of big requests is measured from offset 0, like the device.
 */
int geometry_compute(uint64_t size, const struct pool_format_params *params,
		     struct pool_geometry *ret)
{
	struct pool_geometry g = {0};
	uint64_t cap = params ? params->table_capacity : 0;
	uint64_t dalign = params && params->device_align ? params->device_align : POOL_ALIGN_4K;

	if (!is_class(dalign))
		return -EINVAL;
	if (cap == 0) {
		cap = size / POOL_BYTES_PER_RECORD_DEFAULT;
		if (cap < POOL_MIN_CAPACITY)
			cap = POOL_MIN_CAPACITY;
		if (cap > POOL_MAX_CAPACITY)
			cap = POOL_MAX_CAPACITY;
	}
	if (cap < POOL_MIN_CAPACITY || cap > POOL_MAX_CAPACITY)
		return -EINVAL;
	g.pool_size = size;
	g.device_align = dalign;
	g.log_off = POOL_LOG_OFF;
	g.log_size = POOL_LOG_SIZE;
	g.table_off = POOL_TABLE_OFF;
	g.table_capacity = cap;
	g.data_off = align_up(g.table_off + cap * POOL_RECORD_SIZE,
			      dalign > POOL_ALIGN_2M ? dalign : POOL_ALIGN_2M);
	if (g.data_off >= size)
		return -EINVAL;
	g.data_size = align_down(size - g.data_off, dalign);
	if (g.data_size == 0)
		return -EINVAL;
	*ret = g;
	return 0;
}

void rec_encode(uint8_t out[POOL_RECORD_SIZE], const struct pool_record *r)
{
	memset(out, 0, POOL_RECORD_SIZE);
	put_le64(out + REC_OFFSET, r->offset);
	put_le64(out + REC_LENGTH, r->length);
	put_le64(out + REC_GENERATION, r->generation);
	put_le32(out + REC_UID, r->uid);
	put_le32(out + REC_GID, r->gid);
	put_le32(out + REC_MODE, r->mode);
	put_le16(out + REC_FLAGS, r->flags);
	out[REC_ALIGN_SHIFT] = r->align_shift;
	out[REC_NAME_LEN] = r->name_len;
	memcpy(out + REC_NAME, r->name, r->name_len);
	/* Checksum computed with its own field zero (it is, from the memset). */
	put_le64(out + REC_CHECKSUM, pool_checksum(out, POOL_RECORD_SIZE));
}

bool rec_is_empty(const uint8_t in[POOL_RECORD_SIZE])
{
	static const uint8_t zero[POOL_RECORD_SIZE];
	return memcmp(in, zero, POOL_RECORD_SIZE) == 0;
}

int rec_decode(const uint8_t in[POOL_RECORD_SIZE], struct pool_record *ret, const char **ret_why)
{
	uint8_t tmp[POOL_RECORD_SIZE];
	struct pool_record r = {0};

	if (rec_is_empty(in))
		return 1;
	memcpy(tmp, in, sizeof(tmp));
	memset(tmp + REC_CHECKSUM, 0, 8);
	if (get_le64(in + REC_CHECKSUM) != pool_checksum(tmp, sizeof(tmp))) {
		*ret_why = "record checksum mismatch";
		return -EUCLEAN;
	}
	r.offset = get_le64(in + REC_OFFSET);
	r.length = get_le64(in + REC_LENGTH);
	r.generation = get_le64(in + REC_GENERATION);
	r.uid = get_le32(in + REC_UID);
	r.gid = get_le32(in + REC_GID);
	r.mode = get_le32(in + REC_MODE);
	r.flags = get_le16(in + REC_FLAGS);
	r.align_shift = in[REC_ALIGN_SHIFT];
	r.name_len = in[REC_NAME_LEN];
	memcpy(r.name, in + REC_NAME, r.name_len);
	r.name[r.name_len] = '\0';
	if (!(r.flags & POOL_REC_USED) || (r.flags & ~POOL_REC_KNOWN_FLAGS) ||
	    (r.align_shift != 12 && r.align_shift != 21 && r.align_shift != 30) ||
	    memchr(r.name, '\0', r.name_len) != NULL) {
		*ret_why = "record fields invalid";
		return -EUCLEAN;
	}
	*ret = r;
	return 0;
}

int pool_probe_fd(int fd, uint64_t align, uint8_t ret_uuid[16])
{
	const uint64_t need = POOL_SB_B_OFF + POOL_SB_BYTES;
	uint64_t len = align ? (need + align - 1) / align * align : need;
	const uint8_t *m = mmap(NULL, len, PROT_READ, MAP_SHARED, fd, 0);
	int found = 0;

	if (m == MAP_FAILED)
		return -errno;
	for (uint64_t off = POOL_SB_A_OFF; off <= POOL_SB_B_OFF && !found;
	     off += POOL_SB_B_OFF - POOL_SB_A_OFF)
		if (memcmp(m + off + SB_MAGIC, POOL_MAGIC, sizeof(POOL_MAGIC)) == 0) {
			if (ret_uuid)
				memcpy(ret_uuid, m + off + SB_UUID, 16);
			found = 1;
		}
	munmap((void *)m, len);
	return found;
}
