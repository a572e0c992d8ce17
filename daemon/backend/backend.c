/* The backend interface: open by kind, accessors, pool identity, deep flush by kind. */
#include "backend-internal.h"
#include "pool.h"

#include <errno.h>
#include <grp.h>
#include <libpmem2.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

static void backend_free(struct backend *b)
{
	if (!b)
		return;
	if (b->slice_ops && b->slice_ops->free)
		b->slice_ops->free(b);
	if (b->pool_map)
		munmap(b->pool_map, b->pool_map_len);
	if (b->map)
		pmem2_map_delete(&b->map);
	if (b->fd >= 0)
		close(b->fd);
	if (b->ro_fd >= 0)
		close(b->ro_fd);
	if (b->lock_fd >= 0)
		close(b->lock_fd);
	if (b->deep_flush_fd >= 0)
		close(b->deep_flush_fd);
	free(b->badblocks);
	free(b->devname);
	free(b->path);
	free(b);
}
DEFINE_TRIVIAL_CLEANUP_FUNC(struct backend *, backend_free)

/* In "slice" and "owner" modes the pool's device (or file) is the daemon's alone: whoever can
 * open it by path reaches every slice and the metadata, past every check the daemon makes. So
 * no access for others, and group access only for the daemon's own group when nobody else is a
 * member of it (a packaging that puts clients in the device's group gives them the device). */
static int check_private(const struct backend *b)
{
	char buf[4096];
	struct group grp, *g = NULL;
	struct passwd pw, *me = NULL;
	char pwbuf[4096];
	struct stat st;

	if (fstat(b->fd, &st) < 0)
		return backend_err(negative_errno(), "%s: fstat: %m", b->path);
	if (st.st_mode & 0006)
		return backend_err(-EPERM, "%s (mode %04o) can be opened by every user, who would reach "
				   "every slice and the pool's metadata: make it the daemon's alone "
				   "(chmod 0600; for device-dax nodes the udev rule 60-daxpool.rules)",
				   b->path, st.st_mode & 07777);
	if (!(st.st_mode & 0060))
		return 0;
	if (st.st_gid != getegid())
		return backend_err(-EPERM, "%s (mode %04o) can be opened by group %u, which is not the "
				   "daemon's: make it the daemon's alone (chmod 0600; for device-dax "
				   "nodes the udev rule 60-daxpool.rules)", b->path, st.st_mode & 07777,
				   (unsigned)st.st_gid);
	(void)getpwuid_r(geteuid(), &pw, pwbuf, sizeof(pwbuf), &me);
	if (getgrgid_r(st.st_gid, &grp, buf, sizeof(buf), &g) == 0 && g)
		for (char **m = g->gr_mem; m && *m; m++)
			if (!me || strcmp(*m, me->pw_name) != 0)
				return backend_err(-EPERM, "%s (mode %04o) can be opened by group %s, "
						   "whose member %s is not the daemon: clients connect "
						   "through the socket's group, never the device's (make "
						   "it 0600, or take them out of %s)", b->path,
						   st.st_mode & 07777, g->gr_name, *m, g->gr_name);
	return 0;
}

int backend_open(const struct backend_config *cfg, struct backend **ret)
{
	_cleanup_(backend_freep) struct backend *b = NULL;
	int r;

	if (!cfg || !ret)
		return backend_err(-EINVAL, "backend_open: NULL argument");
	if (cfg->n_extra_badblocks && !cfg->extra_badblocks)
		return backend_err(-EINVAL, "backend_open: extra bad-block count without a list");

	b = backend_mem_calloc(1, sizeof(*b));
	if (!b)
		return backend_err(-ENOMEM, "out of memory");
	b->fd = -1;
	b->ro_fd = -1;
	b->lock_fd = -1;
	b->deep_flush_fd = -1;
	b->numa_node = -1;
	b->kind = cfg->kind;
	if (cfg->expected_uuid) {
		memcpy(b->expected_uuid, cfg->expected_uuid, BACKEND_UUID_SIZE);
		b->have_expected_uuid = true;
	}

	b->isolation = cfg->isolation;
	b->records = cfg->records;
	b->agent = cfg->agent;
	switch (cfg->kind) {
	case BACKEND_DEVDAX:
		if (!cfg->device_path || !*cfg->device_path)
			return backend_err(-EINVAL, "devdax backend: no device path");
		if (cfg->file_path || cfg->size || cfg->page_size || cfg->create)
			return backend_err(-EINVAL, "devdax backend: file, size, page size and create "
						    "are settings of the emulated backend");
		r = devdax_open(b, cfg->device_path);
		/* A dynamic dax region can be carved: a sub-device per slice (slice-subdev.c). */
		if (r == 0 && (b->isolation == BACKEND_ISOLATION_AUTO ||
			       b->isolation == BACKEND_ISOLATION_SLICE))
			r = slice_subdev_setup(b, b->isolation == BACKEND_ISOLATION_SLICE);
		if (r == 0 && b->isolation == BACKEND_ISOLATION_AUTO)
			b->isolation = b->slice_ops ? BACKEND_ISOLATION_SLICE : BACKEND_ISOLATION_OWNER;
		if (r == 0 && b->isolation == BACKEND_ISOLATION_SLICE && !b->slice_ops)
			r = backend_err(-EOPNOTSUPP, "%s: isolation \"slice\" needs a dynamic dax "
					"region (one that can be carved into sub-devices); this device's "
					"region cannot be: use \"owner\" or \"shared\"", cfg->device_path);
		break;
	case BACKEND_EMULATED:
		if (!cfg->file_path || !*cfg->file_path)
			return backend_err(-EINVAL, "emulated backend: no file path");
		if (cfg->device_path)
			return backend_err(-EINVAL, "emulated backend: a device path is a setting of "
						    "the devdax backend");
		/* "owner" works here too (one pool file, one tenant): the same as a static
		 * device, so the demo and CI can run it. */
		if (cfg->isolation == BACKEND_ISOLATION_AUTO) {
			struct backend_config c2 = *cfg;

			c2.isolation = b->isolation = BACKEND_ISOLATION_SLICE;
			r = emulated_open(b, &c2);
		} else {
			r = emulated_open(b, cfg);
		}
		if (r == 0 && b->isolation == BACKEND_ISOLATION_SLICE)
			r = slice_file_setup(b);
		break;
	default:
		return backend_err(-EINVAL, "backend_open: unknown backend kind %d", (int)cfg->kind);
	}
	if (r < 0)
		return r;

	if (b->isolation == BACKEND_ISOLATION_SLICE || b->isolation == BACKEND_ISOLATION_OWNER) {
		r = check_private(b);
		if (r < 0)
			return r;
	}

	r = badblock_add(b, cfg->extra_badblocks, cfg->n_extra_badblocks);
	if (r < 0)
		return r;
	*ret = TAKE_PTR(b);
	return 0;
}

const char *backend_kind_name(enum backend_kind kind)
{
	switch (kind) {
	case BACKEND_DEVDAX:
		return "devdax";
	case BACKEND_EMULATED:
		return "emulated";
	case BACKEND_NONE:
	default:
		return "none";
	}
}

void backend_delete(struct backend **b)
{
	if (!b)
		return;
	backend_free(*b);
	*b = NULL;
}

static bool uuid_is_zero(const uint8_t u[BACKEND_UUID_SIZE])
{
	for (int i = 0; i < BACKEND_UUID_SIZE; i++)
		if (u[i])
			return false;
	return true;
}

/* Canonical 8-4-4-4-12 text, for messages. */
static void uuid_format(const uint8_t u[BACKEND_UUID_SIZE], char out[37])
{
	static const char hex[] = "0123456789abcdef";
	char *o = out;

	for (int i = 0; i < BACKEND_UUID_SIZE; i++) {
		if (i == 4 || i == 6 || i == 8 || i == 10)
			*o++ = '-';
		*o++ = hex[u[i] >> 4];
		*o++ = hex[u[i] & 15];
	}
	*o = '\0';
}

void *backend_ram_mapping(const struct backend *b, uint64_t *ret_len)
{
	if (!b || b->kind != BACKEND_DEVDAX || !b->pool_map || b->slice_ops)
		return NULL;
	*ret_len = b->pool_map_len;
	return b->pool_map;
}

int backend_lock_pool(struct backend *b)
{
	int r = pool_lock(b->fd, &b->lock_fd);

	if (r < 0)
		return backend_err(r, "%s: %s", b->path, pool_errormsg());
	return 0;
}

/* pool_delete already takes the pointer's address and accepts NULL. */
static void pool_deletep(struct pool **p)
{
	pool_delete(p);
}

/* Through the backend's own mapping where it has one (emulated.c: a slice-isolated pool on
 * hugetlbfs; hugetlbfs is a memory file system, so barriers are all the persistence there is),
 * else through libpmem2. */
static int open_pool_once(struct backend *b, struct pool **ret)
{
	if (!b->pool_map)
		return pool_open_fd(b->fd, ret);
	return pool_open_range(b->pool_map, b->pool_map_len, &pool_memory_fs_ops, ret);
}

int backend_open_pool(struct backend *b, bool format_if_empty, struct pool **ret_pool,
		      struct backend_pool_info *ret_info)
{
	_cleanup_(pool_deletep) struct pool *p = NULL;
	struct backend_pool_info info = {0};
	char want[37], got[37];
	int r;

	if (!b || !ret_pool)
		return backend_err(-EINVAL, "backend_open_pool: NULL argument");
	if (b->pool_open)
		return backend_err(-EALREADY, "%s: the pool is already open through this backend",
				   b->path);

	/* Bad blocks in the superblocks or the log would fault the mapping's first reads: refuse
	 * before touching them. The rest of the metadata is checked once its extent is known. */
	for (size_t i = 0; i < b->nbadblocks; i++)
		if (b->badblocks[i].offset < 3 * 4096)
			return backend_err(-EIO,
					   "%s: bad block at offset %llu (+%llu) is in the pool's "
					   "superblocks or log; the pool cannot be opened safely "
					   "(clear the error, e.g. ndctl clear-errors, or restore it)",
					   b->path, (unsigned long long)b->badblocks[i].offset,
					   (unsigned long long)b->badblocks[i].length);

	r = open_pool_once(b, &p);
	if (r == -ENODATA) {
		if (b->have_expected_uuid) {
			uuid_format(b->expected_uuid, want);
			return backend_err(-ESTALE,
					   "%s holds no daxpool pool, but pool %s is expected; not "
					   "formatting (is this the right device?)",
					   b->path, want);
		}
		if (!format_if_empty)
			return backend_err(-ENODATA, "%s holds no daxpool pool (format it first)",
					   b->path);
		/* With a file or sub-device per slice, slices never live in the pool's data area
		 * (only address space, on a carved region not even accessible), and each is zeroed
		 * when it is made: nothing there to scrub. */
		struct pool_format_params params = {.device_align = b->alignment,
						     .table_capacity = b->records,
						     .data_clean = b->slice_ops != NULL};
		r = b->pool_map ? pool_format_range(b->pool_map, b->pool_map_len, &pool_memory_fs_ops,
						     &params)
				: pool_format_fd(b->fd, &params);
		if (r < 0)
			return backend_err(r, "%s: format: %s", b->path, pool_errormsg());
		info.formatted = true;
		r = open_pool_once(b, &p);
	}
	if (r < 0)
		return backend_err(r, "%s: %s", b->path, pool_errormsg());
	info.degraded = r == POOL_OPEN_DEGRADED;

	r = pool_get_uuid(p, info.uuid);
	if (r < 0)
		return backend_err(r, "%s: %s", b->path, pool_errormsg());
	if (b->have_expected_uuid && memcmp(info.uuid, b->expected_uuid, BACKEND_UUID_SIZE) != 0) {
		uuid_format(b->expected_uuid, want);
		uuid_format(info.uuid, got);
		return backend_err(-ESTALE,
				   "%s holds pool %s, not the expected pool %s (device renumbered "
				   "or replaced?); refusing to use it",
				   b->path, got, want);
	}
	if (uuid_is_zero(info.uuid))
		return backend_err(-EUCLEAN, "%s: the pool's UUID is all zero", b->path);

	/* A pool formatted for a smaller alignment than the backend's would hand out extents a
	 * client cannot map (hugetlbfs: offsets must be huge-page aligned). */
	struct pool_stats st;
	pool_get_stats(p, &st);
	if (st.device_align < b->alignment)
		return backend_err(-EINVAL,
				   "%s: the pool was formatted for %llu-byte alignment but the "
				   "backend maps at %llu; refusing to hand out unmappable extents",
				   b->path, (unsigned long long)st.device_align,
				   (unsigned long long)b->alignment);

	r = badblock_reserve(b, p);
	if (r < 0)
		return r;

	if (info.degraded)
		backend_err(0, "%s: %s", b->path, pool_errormsg());
	memcpy(b->uuid, info.uuid, BACKEND_UUID_SIZE);
	b->pool_open = true;
	if (ret_info)
		*ret_info = info;
	*ret_pool = TAKE_PTR(p);
	return 0;
}

int backend_uuid(const struct backend *b, uint8_t ret_uuid[BACKEND_UUID_SIZE])
{
	if (!b || !b->pool_open)
		return backend_err(-ENODATA, "backend_uuid: no pool has been opened");
	memcpy(ret_uuid, b->uuid, BACKEND_UUID_SIZE);
	return 0;
}

int backend_deep_flush(struct backend *b, uint64_t offset, uint64_t len)
{
	if (!b)
		return backend_err(-EINVAL, "backend_deep_flush: NULL backend");
	if (offset > b->size || len > b->size - offset)
		return backend_err(-EINVAL, "deep flush of [%llu, +%llu) is outside %s (%llu bytes)",
				   (unsigned long long)offset, (unsigned long long)len, b->path,
				   (unsigned long long)b->size);
	if (len == 0)
		return 0;
	return b->kind == BACKEND_DEVDAX ? devdax_deep_flush(b, offset, len)
					 : emulated_deep_flush(b, offset, len);
}

int backend_fd(const struct backend *b)
{
	return b->fd;
}

enum backend_kind backend_kind(const struct backend *b)
{
	return b->kind;
}

const char *backend_path(const struct backend *b)
{
	return b->path;
}

const char *backend_devname(const struct backend *b)
{
	return b->devname;
}

uint64_t backend_size(const struct backend *b)
{
	return b->size;
}

uint64_t backend_alignment(const struct backend *b)
{
	return b->alignment;
}

int backend_numa_node(const struct backend *b)
{
	return b->numa_node;
}

bool backend_supports_map_sync(const struct backend *b)
{
	return b->map_sync;
}

enum backend_persistence backend_persistence(const struct backend *b)
{
	return b->persistence;
}

const char *backend_persistence_name(enum backend_persistence p)
{
	switch (p) {
	case BACKEND_PERSIST_NONE:
		return "none";
	case BACKEND_PERSIST_MSYNC:
		return "msync";
	case BACKEND_PERSIST_CPU_FLUSH:
		return "cpu-flush";
	case BACKEND_PERSIST_FENCE:
		return "fence";
	}
	return "unknown";
}

void backend_badblocks(const struct backend *b, const struct backend_badblock **ret_list,
		       size_t *ret_n)
{
	*ret_list = b->badblocks;
	*ret_n = b->nbadblocks;
}

void backend_badblock_stats(const struct backend *b, struct backend_badblock_stats *ret_stats)
{
	*ret_stats = b->bbstats;
}

bool backend_name_is_reserved(const char *name)
{
	return name && strncmp(name, BACKEND_RESERVED_NAME_PREFIX,
			       strlen(BACKEND_RESERVED_NAME_PREFIX)) == 0;
}
