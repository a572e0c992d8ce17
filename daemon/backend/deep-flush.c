/* The NVDIMM region's deep_flush attribute, held open from start-up (see backend.h).
 *
 * libpmem2's pmem2_deep_flush opens /sys/bus/nd/devices/regionN/deep_flush for every call. On a
 * platform with flush hints that attribute is 0644 root, and daxpoold serves after dropping
 * CAP_DAC_OVERRIDE, so every DEEP_FLUSH of the hardened unit would fail with EACCES. An open file
 * description keeps the access it was opened with: the daemon opens the attribute once, while it
 * still has the capability, and writes to that descriptor afterwards. */
#include "backend-internal.h"

#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int deep_flush_attr_open(const char *sysfs_root, unsigned region, int *ret_fd)
{
	char path[PATH_MAX], value[8] = "";
	ssize_t n;
	int fd;

	if ((size_t)snprintf(path, sizeof(path), "%s/bus/nd/devices/region%u/deep_flush", sysfs_root,
			     region) >= sizeof(path))
		return backend_err(-ENAMETOOLONG, "deep flush: sysfs path too long");
	/* Readable by everyone: "0" means the platform has no flush hints, so a deep flush is
	 * only a CPU cache flush and libpmem2 needs no privilege for it. */
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return backend_err(negative_errno(), "deep flush: %s: %m", path);
	n = read(fd, value, sizeof(value) - 1);
	close(fd);
	if (n < 0)
		return backend_err(negative_errno(), "deep flush: reading %s: %m", path);
	if (value[0] == '0')
		return backend_err(-EOPNOTSUPP, "deep flush: %s reads 0 (no flush hints)", path);
	fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return backend_err(negative_errno(), "deep flush: opening %s for writing: %m", path);
	*ret_fd = fd;
	return 0;
}

int deep_flush_attr_trigger(int fd)
{
	/* Any write of "1" flushes the region's write-pending queues; sysfs ignores the offset. */
	if (pwrite(fd, "1", 1, 0) != 1)
		return backend_err(negative_errno(), "deep flush: writing the region's deep_flush: %m");
	return 0;
}

int backend_set_deep_flush_fd(struct backend *b, int fd)
{
	if (!b || fd < 0)
		return backend_err(-EINVAL, "backend_set_deep_flush_fd: bad argument");
	if (b->kind != BACKEND_DEVDAX)
		return backend_err(-EINVAL, "backend_set_deep_flush_fd: not a devdax backend");
	if (b->deep_flush_fd >= 0)
		close(b->deep_flush_fd);
	b->deep_flush_fd = fd;
	return 0;
}
