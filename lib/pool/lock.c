/*
 * One writer per pool: an exclusive flock(2) on the pool's file or device node.
 *
 * The lock is taken on a descriptor of its own (a reopen through /proc/self/fd), never on one
 * that is handed to clients: a client that keeps a descriptor of the pool must not keep the lock
 * of a daemon that died. The kernel drops the lock with the last descriptor of that open file,
 * so nothing stale survives the holder. The holder is named from /proc/locks, where the kernel
 * lists every lock with the pid that took it and the device and inode it is on.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "error.h"
#include "pool.h"
#include "proc-util.h"

/* The pid holding a flock on (dev, ino) other than self, or 0 if /proc/locks names none. */
static pid_t lock_holder(dev_t dev, ino_t ino)
{
	char line[256];
	pid_t found = 0;
	FILE *f = fopen("/proc/locks", "re");

	if (!f)
		return 0;
	while (!found && fgets(line, sizeof(line), f)) {
		unsigned maj, min;
		unsigned long long i;
		int pid;
		char kind[16];

		/* "1: FLOCK  ADVISORY  WRITE 1234 fd:01:5678 0 EOF"; waiters have a "->" field. */
		if (strstr(line, "->"))
			continue;
		if (sscanf(line, "%*d: %15s %*s %*s %d %x:%x:%llu", kind, &pid, &maj, &min, &i) != 5)
			continue;
		if (strcmp(kind, "FLOCK") == 0 && maj == major(dev) && min == minor(dev) &&
		    i == (unsigned long long)ino && pid > 0 && pid != getpid())
			found = pid;
	}
	fclose(f);
	return found;
}

int pool_lock_holder(int fd, pid_t *ret_pid, char *comm, size_t comm_len)
{
	struct stat st;
	pid_t pid;

	if (fstat(fd, &st) < 0)
		return pool_err(-errno, "fstat: %s", strerror(errno));
	pid = lock_holder(st.st_dev, st.st_ino);
	if (ret_pid)
		*ret_pid = pid;
	if (comm && comm_len)
		proc_comm(pid, comm, comm_len);
	return pid > 0;
}

int pool_lock(int fd, int *ret_lock_fd)
{
	char path[64], comm[32];
	pid_t pid = 0;
	int lfd;

	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	lfd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (lfd < 0)
		return pool_err(-errno, "cannot open the pool again to lock it: %s", strerror(errno));
	if (flock(lfd, LOCK_EX | LOCK_NB) == 0) {
		*ret_lock_fd = lfd;
		return 0;
	}
	if (errno != EWOULDBLOCK) {
		int r = -errno;

		close(lfd);
		return pool_err(r, "cannot lock the pool: %s", strerror(-r));
	}
	pool_lock_holder(lfd, &pid, comm, sizeof(comm));
	close(lfd);
	if (pid > 0)
		return pool_err(-EBUSY, "the pool is in use by pid %d (%s): one daemon or "
					"administrative command per pool",
				(int)pid, comm);
	return pool_err(-EBUSY, "the pool is in use by another process (one daemon or "
				"administrative command per pool)");
}
