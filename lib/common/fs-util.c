/* What kind of file system a file lives on (see fs-util.h). */
#include "fs-util.h"

#include <errno.h>
#include <linux/magic.h>
#include <sys/vfs.h>

bool statfs_is_memory_fs(const struct statfs *sfs)
{
	switch ((unsigned long)sfs->f_type) {
	case HUGETLBFS_MAGIC:
	case TMPFS_MAGIC:
	case RAMFS_MAGIC:
		return true;
	default:
		return false;
	}
}

int fd_on_memory_fs(int fd)
{
	struct statfs sfs;

	if (fstatfs(fd, &sfs) < 0)
		return -errno;
	return statfs_is_memory_fs(&sfs);
}
