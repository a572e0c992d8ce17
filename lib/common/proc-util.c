/* What /proc says about another process. */
#include "proc-util.h"
#include "macro.h"

#include <ctype.h>
#include <dirent.h>
#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

void proc_comm(pid_t pid, char *buf, size_t len)
{
	char path[64];
	FILE *f;

	if (!len)
		return;
	snprintf(buf, len, "?");
	snprintf(path, sizeof(path), "/proc/%d/comm", (int)pid);
	f = fopen(path, "re");
	if (!f)
		return;
	if (!fgets(buf, (int)len, f))
		snprintf(buf, len, "?");
	buf[strcspn(buf, "\n")] = '\0';
	fclose(f);
}

DEFINE_TRIVIAL_CLEANUP_FUNC(FILE *, fclose)

static void closedirp(DIR **d)
{
	if (*d)
		closedir(*d);
}

static bool same_file(const struct stat *a, const struct stat *b)
{
	if (S_ISCHR(a->st_mode) && S_ISCHR(b->st_mode))
		return a->st_rdev == b->st_rdev;
	return a->st_dev == b->st_dev && a->st_ino == b->st_ino;
}

/* Does pid hold target open (an fd) or mapped (a line of /proc/PID/maps)? */
static bool pid_uses(const char *pid, const struct stat *target)
{
	_cleanup_(closedirp) DIR *fds = NULL;
	_cleanup_(fclosep) FILE *maps = NULL;
	char path[PATH_MAX], *line = NULL;
	size_t cap = 0;
	struct dirent *de;
	struct stat st;
	bool found = false;

	snprintf(path, sizeof(path), "/proc/%s/fd", pid);
	fds = opendir(path);
	while (fds && (de = readdir(fds))) {
		if (de->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "/proc/%s/fd/%s", pid, de->d_name);
		if (stat(path, &st) == 0 && same_file(&st, target))
			return true;
	}
	/* A mapping outlives its fd. maps names the device of the node (st_dev) and its inode. */
	snprintf(path, sizeof(path), "/proc/%s/maps", pid);
	maps = fopen(path, "re");
	while (maps && !found && getline(&line, &cap, maps) > 0) {
		unsigned maj, min;
		unsigned long long ino;

		if (sscanf(line, "%*s %*s %*s %x:%x %llu", &maj, &min, &ino) == 3 && ino &&
		    makedev(maj, min) == target->st_dev && ino == target->st_ino)
			found = true;
	}
	free(line);
	return found;
}

int proc_path_users(const char *path, pid_t *pids, size_t max)
{
	_cleanup_(closedirp) DIR *proc = NULL;
	struct dirent *de;
	struct stat target;
	char self[32];
	size_t n = 0;

	if (stat(path, &target) < 0)
		return negative_errno();
	proc = opendir("/proc");
	if (!proc)
		return negative_errno();
	snprintf(self, sizeof(self), "%d", (int)getpid());
	while ((de = readdir(proc))) {
		if (!isdigit((unsigned char)de->d_name[0]) || strcmp(de->d_name, self) == 0)
			continue;
		if (pid_uses(de->d_name, &target)) {
			if (n < max)
				pids[n] = (pid_t)atoi(de->d_name);
			n++;
		}
	}
	return (int)MIN(n, (size_t)INT32_MAX);
}

int proc_self_uses(const char *path)
{
	struct stat target;

	if (stat(path, &target) < 0)
		return negative_errno();
	return pid_uses("self", &target);
}
