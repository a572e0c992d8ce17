/* What sysfs says about a device; see sysfs-util.h. */
#include "sysfs-util.h"

#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/sysmacros.h>
#include <unistd.h>

void link_basename(const char *link, char *out, size_t outsz)
{
	char target[PATH_MAX];
	ssize_t n = readlink(link, target, sizeof(target) - 1);

	out[0] = '\0';
	if (n <= 0)
		return;
	target[n] = '\0';
	const char *slash = strrchr(target, '/');
	const char *base = slash ? slash + 1 : target;
	size_t len = strlen(base);

	if (len < outsz)
		memcpy(out, base, len + 1);
}

bool chardev_is_devdax(dev_t rdev, char *subsys, size_t subsys_len)
{
	char link[64], name[64];

	snprintf(link, sizeof(link), "/sys/dev/char/%u:%u/subsystem", major(rdev), minor(rdev));
	link_basename(link, name, sizeof(name));
	if (subsys && subsys_len)
		snprintf(subsys, subsys_len, "%s", name);
	return strcmp(name, "dax") == 0;
}

bool devdax_is_nvdimm(dev_t rdev)
{
	char link[64], name[64];

	/* drivers/dax/pmem.c: the dax device sits below an nd device of the namespace. */
	snprintf(link, sizeof(link), "/sys/dev/char/%u:%u/../subsystem", major(rdev), minor(rdev));
	link_basename(link, name, sizeof(name));
	return strcmp(name, "nd") == 0;
}
