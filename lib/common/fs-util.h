/* What kind of file system a file lives on, where that changes how its data is made durable. */
#pragma once

#include <stdbool.h>

/*
 * 1 if fd's file lives on a file system without a backing store (hugetlbfs, tmpfs, ramfs; a
 * memfd is on one of these), 0 otherwise, -errno if fstatfs fails.
 *
 * Why it matters: on such a file system the page cache *is* the medium. Every store through a
 * shared mapping is as durable as it will ever be the moment it is made: it survives the
 * process (and any later process mapping the file sees it) and nothing survives a reboot. msync
 * has nothing to write back there, so persistence reduces to keeping stores in program order.
 */
int fd_on_memory_fs(int fd);

struct statfs;
/* The same test on what fstatfs/statfs already returned. */
bool statfs_is_memory_fs(const struct statfs *sfs);
