/* What /proc says about another process. */
#pragma once

#include <stddef.h>
#include <sys/types.h>

/* The command name of pid (/proc/PID/comm, without its newline) into buf, or "?" when it cannot
 * be read (the process is gone, or /proc is not mounted). Never fails; truncates to len. */
void proc_comm(pid_t pid, char *buf, size_t len);
