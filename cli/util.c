/* Helpers every daxpoolctl subcommand shares: option parsing, value parsers, in-use checks. */
#include "daxpool.h"
#include "daxpoolctl.h"
#include "log.h"
#include "macro.h"
#include "parse-util.h"
#include "proc-util.h"

#include <ctype.h>
#include <dirent.h>
#include <grp.h>
#include <inttypes.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>

int ctl_connect(struct ctl *ctl, struct daxpool **ret)
{
	int r = daxpool_connect(ctl->socket_path, ret);

	if (r < 0) {
		log_error("%s", daxpool_errormsg());
		return CTL_EXIT_DAEMON;
	}
	return CTL_EXIT_OK;
}

int ctl_parse_options(struct ctl *ctl, int argc, char **argv, const char *optstring,
		      const struct option *options, int (*fn)(int c, const char *arg, void *userdata),
		      void *userdata, int *ret_optind)
{
	struct option all[16];
	char shortopts[64];
	size_t n = 0;
	int c, r;

	/* Our own table plus --json/--help; 16 entries is far more than any subcommand has. */
	for (; options && options[n].name; n++)
		all[n] = options[n];
	if (n + 3 > ARRAY_SIZE(all) || strlen(optstring) + 5 > sizeof(shortopts))
		abort(); /* a programming error in a command's table */
	all[n++] = (struct option){ "json", no_argument, NULL, 'j' };
	all[n++] = (struct option){ "help", no_argument, NULL, 'h' };
	all[n] = (struct option){};
	snprintf(shortopts, sizeof(shortopts), ":%sjh", optstring);

	optind = 0; /* GNU: full re-initialisation; operands may come before options */
	opterr = 0;
	while ((c = getopt_long(argc, argv, shortopts, all, NULL)) >= 0) {
		switch (c) {
		case 'j':
			ctl->json = true;
			break;
		case 'h':
			ctl_print_command_help(argv[0]);
			return -1;
		case '?':
			if (optopt && optopt < 128)
				log_error("%s: unknown option -%c (see daxpoolctl help %s)", argv[0], optopt,
					  argv[0]);
			else
				log_error("%s: unknown option %s (see daxpoolctl help %s)", argv[0],
					  argv[optind - 1], argv[0]);
			return CTL_EXIT_USAGE;
		case ':':
			log_error("%s: option %s needs a value", argv[0], argv[optind - 1]);
			return CTL_EXIT_USAGE;
		default:
			r = fn ? fn(c, optarg, userdata) : CTL_EXIT_USAGE;
			if (r != CTL_EXIT_OK)
				return r;
		}
	}
	*ret_optind = optind;
	return CTL_EXIT_OK;
}

int ctl_check_operands(const char *cmd, int n, int min, int max)
{
	if (n < min) {
		log_error("%s: missing argument (see daxpoolctl help %s)", cmd, cmd);
		return CTL_EXIT_USAGE;
	}
	if (n > max) {
		log_error("%s: too many arguments (see daxpoolctl help %s)", cmd, cmd);
		return CTL_EXIT_USAGE;
	}
	return CTL_EXIT_OK;
}

int ctl_parse_size(const char *opt, const char *s, uint64_t *ret)
{
	uint64_t v;
	int r = parse_size(s, &v);

	if (r == -ERANGE) {
		log_error("%s: \"%s\" is too large", opt, s);
		return CTL_EXIT_USAGE;
	}
	if (r < 0 || v == 0) {
		log_error("%s: \"%s\" is not a size (bytes > 0, with an optional K, M, G or T suffix)", opt, s);
		return CTL_EXIT_USAGE;
	}
	*ret = v;
	return CTL_EXIT_OK;
}

int ctl_parse_align(const char *opt, const char *s, uint64_t *ret)
{
	uint64_t v;

	if (parse_page_size(s, &v) < 0) {
		log_error("%s: \"%s\" is not an alignment (4K, 2M or 1G)", opt, s);
		return CTL_EXIT_USAGE;
	}
	*ret = v;
	return CTL_EXIT_OK;
}

int ctl_parse_mode(const char *opt, const char *s, unsigned *ret)
{
	unsigned v;

	if (parse_mode(s, &v) < 0 || v > 0777) {
		log_error("%s: \"%s\" is not a permission mode (octal, 0 to 0777, e.g. 0640)", opt, s);
		return CTL_EXIT_USAGE;
	}
	*ret = v;
	return CTL_EXIT_OK;
}

static int parse_id(const char *s, unsigned long *ret)
{
	char *end;
	unsigned long v;

	if (!isdigit((unsigned char)s[0]))
		return -EINVAL;
	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno || *end || v >= UINT32_MAX)
		return -EINVAL;
	*ret = v;
	return 0;
}

int ctl_parse_owner(const char *opt, const char *s, uid_t *ret_uid, gid_t *ret_gid)
{
	_cleanup_(freep) char *copy = strdup(s);
	char *group;
	unsigned long id;
	uid_t uid;
	gid_t gid = (gid_t)-1;

	if (!copy)
		return log_error("out of memory"), CTL_EXIT_FAILURE;
	group = strchr(copy, ':');
	if (group)
		*group++ = '\0';
	if (!*copy) {
		log_error("%s: \"%s\" names no user (USER|UID[:GROUP|GID])", opt, s);
		return CTL_EXIT_USAGE;
	}
	if (parse_id(copy, &id) == 0) {
		uid = (uid_t)id;
	} else {
		struct passwd *pw = getpwnam(copy);
		if (!pw) {
			log_error("%s: unknown user \"%s\"", opt, copy);
			return CTL_EXIT_USAGE;
		}
		uid = pw->pw_uid;
		gid = pw->pw_gid; /* a user name brings its primary group, as chown(1) USER: does */
	}
	if (group) {
		if (!*group) {
			log_error("%s: \"%s\" has an empty group after ':'", opt, s);
			return CTL_EXIT_USAGE;
		}
		if (parse_id(group, &id) == 0) {
			gid = (gid_t)id;
		} else {
			struct group *gr = getgrnam(group);
			if (!gr) {
				log_error("%s: unknown group \"%s\"", opt, group);
				return CTL_EXIT_USAGE;
			}
			gid = gr->gr_gid;
		}
	}
	*ret_uid = uid;
	*ret_gid = gid;
	return CTL_EXIT_OK;
}

int ctl_check_slice_name(const char *s)
{
	size_t len = strlen(s);

	if (len == 0 || len > 255) {
		log_error("slice name must be 1 to 255 bytes long");
		return CTL_EXIT_USAGE;
	}
	if (s[0] == '.') {
		log_error("slice name \"%s\" must not start with '.'", s);
		return CTL_EXIT_USAGE;
	}
	for (size_t i = 0; i < len; i++)
		if (s[i] == '/' || s[i] < 0x20 || s[i] > 0x7e) {
			log_error("slice name must be printable ASCII without '/'");
			return CTL_EXIT_USAGE;
		}
	return CTL_EXIT_OK;
}

const char *ctl_format_bytes(uint64_t bytes, char *buf, size_t size)
{
	static const char *const units[] = { "B", "KiB", "MiB", "GiB", "TiB", "PiB" };
	double v = (double)bytes;
	size_t u = 0;

	while (v >= 1024 && u + 1 < ARRAY_SIZE(units)) {
		v /= 1024;
		u++;
	}
	if (u == 0)
		snprintf(buf, size, "%" PRIu64 " B", bytes);
	else if (v == (double)(uint64_t)v)
		snprintf(buf, size, "%.0f %s", v, units[u]);
	else
		snprintf(buf, size, "%.1f %s", v, units[u]);
	return buf;
}

const char *ctl_isolation_name(int isolation)
{
	switch (isolation) {
	case DAXPOOL_ISOLATION_SLICE:
		return "slice";
	case DAXPOOL_ISOLATION_OWNER:
		return "owner";
	case DAXPOOL_ISOLATION_SHARED:
		return "shared";
	default:
		return "unknown";
	}
}

const char *ctl_user_name(uid_t uid)
{
	struct passwd *pw = getpwuid(uid);

	return pw ? pw->pw_name : NULL;
}

const char *ctl_group_name(gid_t gid)
{
	struct group *gr = getgrgid(gid);

	return gr ? gr->gr_name : NULL;
}

int ctl_refuse_if_in_use(const char *path, const char *what)
{
	pid_t pids[8];
	char comm[64];
	int n = proc_path_users(path, pids, ARRAY_SIZE(pids));

	if (n < 0) {
		log_error_errno(n, "%s: %m", path);
		return CTL_EXIT_FAILURE;
	}
	if (n == 0)
		return CTL_EXIT_OK;
	proc_comm(pids[0], comm, sizeof(comm));
	log_error("%s is in use by pid %d (%s)%s: %s", path, (int)pids[0], comm,
		  n > 1 ? " and others" : "", what);
	return CTL_EXIT_FAILURE;
}

const char *ctl_find_helper(const char *env_name, const char *build_rel, const char *installed,
			    char *buf, size_t size)
{
	const char *env = getenv(env_name);
	ssize_t n;

	if (env && *env)
		return env;
	/* A build tree (BUILD/cli/daxpoolctl beside BUILD/<build_rel>), then an installation under
	 * any prefix (PREFIX/sbin/daxpoolctl beside PREFIX/libexec/daxpool/<name>). */
	const char *base = strrchr(installed, '/');
	char dir[PATH_MAX], libexec[PATH_MAX];
	const char *rel[] = { build_rel, libexec };
	char *slash;

	n = readlink("/proc/self/exe", dir, sizeof(dir) - 1);
	if (n <= 0)
		return installed;
	dir[n] = 0;
	slash = strrchr(dir, '/');
	if (!slash)
		return installed;
	*slash = 0;
	snprintf(libexec, sizeof(libexec), "libexec/daxpool/%s", base ? base + 1 : installed);
	for (size_t i = 0; i < ARRAY_SIZE(rel); i++)
		if ((size_t)snprintf(buf, size, "%s/../%s", dir, rel[i]) < size && access(buf, X_OK) == 0)
			return buf;
	return installed;
}
