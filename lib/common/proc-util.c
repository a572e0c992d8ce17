/* What /proc says about another process. */
#include "proc-util.h"

#include <stdio.h>
#include <string.h>

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
