/*
 * The config's `device` section at start-up: find the device that holds the pool —
 * by the pool's UUID, by path, or by the name of the namespace daxpoold provisions — and bring
 * the machine to the declared state: create the devdax namespace when it is absent, switch a
 * device in system-ram mode back to devdax when the config allows it. Never destroys anything:
 * whatever disagrees with the config (another alignment, too small, region full, system-ram
 * without permission, two namespaces of the same name) is refused, with a message that names
 * the device, its state and the config key to change, and exit status DAXPOOLD_EXIT_CONFLICT.
 * Namespace work goes through the library daxpoolctl uses (lib/namespace/include/namespace.h).
 */
#pragma once

#include <stdint.h>

struct daxpoold;

/* Exit status of daxpoold when the machine conflicts with the config (nothing was changed).
 * 1 is any other start-up failure, 2 a bad command line or config. */
#define DAXPOOLD_EXIT_CONFLICT 3

/*
 * Runs the `device` section (a no-op without one): sets d->device_path to the device to
 * serve and allows formatting a namespace daxpoold created or owns by name. On failure logs the
 * reason once, tells systemd (STATUS=) and sets d->start_exit_code for a conflict.
 * Returns 0 or a negative errno.
 */
int provision_start(struct daxpoold *d);

/*
 * Drops every capability (effective, permitted, inheritable, ambient; the bounding set too when
 * CAP_SETPCAP allows) once start-up no longer needs them: the namespace work above needs
 * CAP_DAC_OVERRIDE as a non-root user (sysfs attributes are root's), serving needs none.
 * Must run before any thread starts (capabilities are per thread). A process running as root
 * keeps its capabilities: uid 0 owns the files they guard, so dropping them would only break
 * its access to directories of other users (the socket's /run/daxpool). Returns 0 or -errno.
 */
int provision_drop_privileges(void);

/* The namespace size provisioning asks for: the smallest multiple of unit whose device-dax
 * device has `usable` bytes with an `align` page map (exposed for the unit tests). */
uint64_t provision_namespace_size(uint64_t usable, uint64_t align, uint64_t unit);
