/* What /proc says about another process. */
#pragma once

#include <stddef.h>
#include <sys/types.h>

/* The command name of pid (/proc/PID/comm, without its newline) into buf, or "?" when it cannot
 * be read (the process is gone, or /proc is not mounted). Never fails; truncates to len. */
void proc_comm(pid_t pid, char *buf, size_t len);

/* The processes other than this one that hold path open or mapped (the file, or for a device node
 * the device): their number, the first max of them in pids. -errno when path or /proc cannot be
 * read. */
int proc_path_users(const char *path, pid_t *pids, size_t max);
/* 1 if this process holds path open or mapped, 0 if not, or a negative errno. */
int proc_self_uses(const char *path);
