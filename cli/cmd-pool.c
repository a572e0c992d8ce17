/* daxpoolctl format, fsck: offline pool commands on a device-dax device or a pool file. */
#include "daxpoolctl.h"
#include "log.h"
#include "macro.h"
#include "pool.h"

#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <limits.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

DEFINE_TRIVIAL_CLEANUP_FUNC(struct json_object *, json_object_put);

/* Is st a device-dax character device? Its sysfs node's subsystem says. */
static bool is_dax_chardev(const struct stat *st)
{
	char link[PATH_MAX], target[PATH_MAX];
	ssize_t n;

	snprintf(link, sizeof(link), "/sys/dev/char/%u:%u/subsystem", major(st->st_rdev),
		 minor(st->st_rdev));
	n = readlink(link, target, sizeof(target) - 1);
	if (n < 0)
		return false;
	target[n] = '\0';
	return strcmp(strrchr(target, '/') ? strrchr(target, '/') + 1 : target, "dax") == 0;
}

/* Opens a pool target read-write: a character device or a regular file, nothing else. */
static int open_target(const char *cmd, const char *path, int *ret_fd)
{
	_cleanup_(closep) int fd = -1;
	struct stat st;

	fd = open(path, O_RDWR | O_CLOEXEC);
	if (fd < 0) {
		log_error_errno(negative_errno(), "%s: cannot open %s: %m", cmd, path);
		return CTL_EXIT_FAILURE;
	}
	if (fstat(fd, &st) < 0) {
		log_error_errno(negative_errno(), "%s: %s: %m", cmd, path);
		return CTL_EXIT_FAILURE;
	}
	if (!(S_ISCHR(st.st_mode) && is_dax_chardev(&st)) && !S_ISREG(st.st_mode)) {
		log_error("%s: %s is neither a device-dax character device nor a regular file", cmd, path);
		return CTL_EXIT_USAGE;
	}
	*ret_fd = TAKE_FD(fd);
	return CTL_EXIT_OK;
}

static int format_option(int c, const char *arg, void *userdata)
{
	if (c == 'f' || c == 'r') { /* format --force, fsck --repair */
		*(bool *)userdata = true;
		return CTL_EXIT_OK;
	}
	return CTL_EXIT_USAGE;
}

int cmd_format(struct ctl *ctl, int argc, char **argv)
{
	static const struct option options[] = { { "force", no_argument, NULL, 'f' }, {} };
	_cleanup_(closep) int fd = -1;
	bool force = false;
	const char *path;
	int r, first;

	r = ctl_parse_options(ctl, argc, argv, "f", options, format_option, &force, &first);
	if (r != CTL_EXIT_OK)
		return r < 0 ? CTL_EXIT_OK : r;
	if ((r = ctl_check_operands("format", argc - first, 1, 1)) != CTL_EXIT_OK)
		return r;
	path = argv[first];
	if ((r = open_target("format", path, &fd)) != CTL_EXIT_OK)
		return r;
	/* Even --force does not override this: clients map the pool and daxpoold indexes it. */
	r = ctl_refuse_if_in_use(path, "stop daxpoold and its clients before formatting");
	if (r != CTL_EXIT_OK)
		return r;
	/* pool_check finds a pool, even a damaged one; only -ENODATA means there is none. */
	r = pool_check_fd(fd, false);
	if (r != -ENODATA && r != -EINVAL && !force) {
		log_error("format: %s already holds a daxpool pool%s; --force overwrites it (every slice is lost)",
			  path, r == -EPROTONOSUPPORT ? " of another format version" : "");
		return CTL_EXIT_FAILURE;
	}
	r = pool_format_fd(fd, NULL);
	if (r < 0) {
		log_error("format %s: %s", path, pool_errormsg());
		return CTL_EXIT_FAILURE;
	}
	if (ctl->json) {
		_cleanup_(json_object_putp) struct json_object *o = json_object_new_object();
		json_object_object_add(o, "path", json_object_new_string(path));
		json_object_object_add(o, "formatted", json_object_new_boolean(1));
		ctl_print_json(o);
	} else {
		printf("formatted %s\n", path);
	}
	return CTL_EXIT_OK;
}

int cmd_fsck(struct ctl *ctl, int argc, char **argv)
{
	static const struct option options[] = { { "repair", no_argument, NULL, 'r' }, {} };
	static const char *const names[] = { "clean", "repaired", "repairable", "damaged" };
	static const int codes[] = { CTL_EXIT_OK, CTL_EXIT_FSCK_REPAIRED, CTL_EXIT_FSCK_REPAIRABLE,
				     CTL_EXIT_FSCK_DAMAGED };
	_cleanup_(closep) int fd = -1;
	bool repair = false;
	const char *path, *msg;
	int r, first;

	r = ctl_parse_options(ctl, argc, argv, "r", options, format_option, &repair, &first);
	if (r != CTL_EXIT_OK)
		return r < 0 ? CTL_EXIT_OK : r;
	if ((r = ctl_check_operands("fsck", argc - first, 1, 1)) != CTL_EXIT_OK)
		return r;
	path = argv[first];
	if ((r = open_target("fsck", path, &fd)) != CTL_EXIT_OK)
		return r;
	/* A running daemon changes the metadata under the checker: findings would be noise, and a
	 * repair would race the daemon's own writes. */
	r = ctl_refuse_if_in_use(path, "stop daxpoold before checking its pool");
	if (r != CTL_EXIT_OK)
		return r;
	r = pool_check_fd(fd, repair);
	if (r < 0) {
		if (r == -ENODATA)
			log_error("fsck: %s holds no daxpool pool", path);
		else
			log_error("fsck %s: %s", path, pool_errormsg());
		return CTL_EXIT_FAILURE;
	}
	if (r > POOL_CHECK_DAMAGED)
		r = POOL_CHECK_DAMAGED;
	msg = pool_errormsg();
	if (ctl->json) {
		_cleanup_(json_object_putp) struct json_object *o = json_object_new_object();
		json_object_object_add(o, "path", json_object_new_string(path));
		json_object_object_add(o, "result", json_object_new_string(names[r]));
		json_object_object_add(o, "repair", json_object_new_boolean(repair));
		json_object_object_add(o, "findings", json_object_new_string(msg));
		ctl_print_json(o);
	} else {
		bool say = *msg && strcmp(msg, names[r]) != 0;
		printf("%s: %s%s%s\n", path, names[r], say ? ": " : "", say ? msg : "");
		if (r == POOL_CHECK_REPAIRABLE)
			printf("run daxpoolctl fsck --repair %s to repair\n", path);
	}
	return codes[r];
}
