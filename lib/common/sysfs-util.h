/* What sysfs says about a device: the names its links point to. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

/* Base name of the sysfs link at link (a device's driver or subsystem), into out; "" when the
 * link is absent or its name does not fit out (no name this code compares against). */
void link_basename(const char *link, char *out, size_t outsz);

/* Is the character device rdev a device-dax device (its subsystem is "dax")? The subsystem's
 * name, "" if none, goes to subsys when it is not NULL. */
bool chardev_is_devdax(dev_t rdev, char *subsys, size_t subsys_len);

/* Is the device-dax device rdev an NVDIMM namespace's (its parent is on the nd bus)? Not so for
 * soft-reserved memory (dax_hmem), dynamic regions and CXL RAM regions: device-dax over RAM. */
bool devdax_is_nvdimm(dev_t rdev);
