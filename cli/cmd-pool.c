/* daxpoolctl format, fsck: offline pool commands on a device-dax device or a pool file. */
#include "daxpoolctl.h"
#include "log.h"
#include "macro.h"
#include "pool.h"
#include "sysfs-util.h"

#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <limits.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <time.h>
#include <unistd.h>

DEFINE_TRIVIAL_CLEANUP_FUNC(FILE *, fclose);

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
	if (!(S_ISCHR(st.st_mode) && chardev_is_devdax(st.st_rdev, NULL, 0)) && !S_ISREG(st.st_mode)) {
		log_error("%s: %s is neither a device-dax character device nor a regular file", cmd, path);
		return CTL_EXIT_USAGE;
	}
	*ret_fd = TAKE_FD(fd);
	return CTL_EXIT_OK;
}

/* The pool lock for a command that writes the pool: a daemon that serves it holds the lock, and
 * holding it here keeps a daemon from starting on the pool until the command is done. */
static int lock_target(const char *cmd, const char *path, int fd, int *ret_lock_fd)
{
	if (pool_lock(fd, ret_lock_fd) < 0) {
		log_error("%s: %s: %s", cmd, path, pool_errormsg());
		return CTL_EXIT_FAILURE;
	}
	return CTL_EXIT_OK;
}

/*
 * Progress of format and fsck on a terminal. The pool library works on its own mapping of the
 * target and reports nothing while it does, so progress is read from outside: the resident
 * part of this process's mappings of the target (/proc/self/smaps, matched by device and inode)
 * against the pool's metadata size (pool_metadata_size), which is what format writes and fsck
 * reads (format on a device: against the device's size, as it also overwrites the data area
 * where that is not zero). A line "format PATH: 42% of 83 MiB metadata, 210 MiB/s, ETA 0:01" is redrawn on stderr
 * every 200 ms once the work has taken DAXPOOL_PROGRESS_DELAY_MS (500 ms); where no size or
 * mapping can be found it shows the time spent. Never with --json, never when stderr is not a
 * terminal, and the line is erased when the work ends.
 */
struct progress {
	const char *what, *path;
	dev_t dev;
	ino_t ino;
	uint64_t total; /* metadata bytes (whole device for format on one), 0 if unknown */
	const char *unit; /* what total counts: "metadata" or "device" */
	unsigned delay_ms;
	atomic_bool done;
	bool shown;
	pthread_t thread;
	bool running;
};

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* Resident bytes of this process's mappings of (dev, ino); 0 if none. */
static uint64_t mapped_resident(dev_t dev, ino_t ino)
{
	_cleanup_(fclosep) FILE *f = fopen("/proc/self/smaps", "re");
	char line[512];
	bool ours = false;
	uint64_t sum = 0;

	if (!f)
		return 0;
	while (fgets(line, sizeof(line), f)) {
		unsigned maj, min;
		unsigned long long inode, kb;

		if (sscanf(line, "%*x-%*x %*s %*x %x:%x %llu", &maj, &min, &inode) == 3)
			ours = makedev(maj, min) == dev && (ino_t)inode == ino && inode != 0;
		else if (ours && sscanf(line, "Rss: %llu kB", &kb) == 1)
			sum += (uint64_t)kb * 1024;
	}
	return sum;
}

static void progress_draw(struct progress *p, uint64_t elapsed_ms)
{
	char done_s[32], total_s[32], rate_s[32];
	uint64_t got, pct, rate, eta;

	got = p->total ? mapped_resident(p->dev, p->ino) : 0;
	if (!got) {
		fprintf(stderr, "\r\033[K%s %s: %" PRIu64 ".%" PRIu64 " s", p->what, p->path,
			elapsed_ms / 1000, elapsed_ms % 1000 / 100);
	} else {
		if (got > p->total)
			got = p->total;
		pct = got * 100 / p->total;
		if (pct > 99)
			pct = 99; /* 100 % is when the library returns */
		rate = got * 1000 / (elapsed_ms ? elapsed_ms : 1);
		eta = rate ? (p->total - got) / rate : 0;
		ctl_format_bytes(got, done_s, sizeof(done_s));
		ctl_format_bytes(p->total, total_s, sizeof(total_s));
		ctl_format_bytes(rate, rate_s, sizeof(rate_s));
		fprintf(stderr, "\r\033[K%s %s: %" PRIu64 "%% (%s of %s %s), %s/s, ETA %" PRIu64 ":%02" PRIu64,
			p->what, p->path, pct, done_s, total_s, p->unit, rate_s, eta / 60, eta % 60);
	}
	fflush(stderr);
	p->shown = true;
}

static void *progress_thread(void *userdata)
{
	struct progress *p = userdata;
	uint64_t start = now_ms();

	while (!atomic_load(&p->done)) {
		struct timespec tick = { 0, 50 * 1000000L };
		uint64_t elapsed = now_ms() - start;

		if (elapsed >= p->delay_ms && (elapsed - p->delay_ms) % 200 < 50)
			progress_draw(p, elapsed);
		nanosleep(&tick, NULL);
	}
	return NULL;
}

/* Starts the progress line for work on fd (a no-op with --json or without a terminal). */
static void progress_start(struct progress *p, const struct ctl *ctl, const char *what, const char *path, int fd)
{
	const char *env = getenv("DAXPOOL_PROGRESS_DELAY_MS");
	struct stat st;
	uint64_t size = 0;

	*p = (struct progress){ .what = what, .path = path, .delay_ms = 500, .unit = "metadata" };
	if (ctl->json || !isatty(STDERR_FILENO) || fstat(fd, &st) < 0)
		return;
	if (env && *env)
		p->delay_ms = (unsigned)strtoul(env, NULL, 10);
	p->dev = st.st_dev;
	p->ino = st.st_ino;
	if (S_ISREG(st.st_mode)) {
		size = (uint64_t)st.st_size;
	} else {
		char attr[PATH_MAX];
		_cleanup_(fclosep) FILE *f = NULL;

		snprintf(attr, sizeof(attr), "/sys/dev/char/%u:%u/size", major(st.st_rdev), minor(st.st_rdev));
		f = fopen(attr, "re");
		if (!f || fscanf(f, "%" SCNu64, &size) != 1)
			size = 0;
	}
	if (size && pool_metadata_size(size, NULL, &p->total) < 0)
		p->total = 0;
	/* format overwrites a device's data area where it is not zero (a file's it deallocates). */
	if (size && S_ISCHR(st.st_mode) && strcmp(what, "format") == 0) {
		p->total = size;
		p->unit = "device";
	}
	p->running = pthread_create(&p->thread, NULL, progress_thread, p) == 0;
}

static void progress_stop(struct progress *p)
{
	if (!p->running)
		return;
	atomic_store(&p->done, true);
	pthread_join(p->thread, NULL);
	p->running = false;
	if (p->shown) {
		fputs("\r\033[K", stderr);
		fflush(stderr);
	}
}

struct format_args {
	bool force;
	uint64_t records;
};

static int format_option(int c, const char *arg, void *userdata)
{
	/* format --force (the first member of struct format_args), fsck --repair */
	if (c == 'f' || c == 'r') {
		*(bool *)userdata = true;
		return CTL_EXIT_OK;
	}
	if (c == 'R') { /* format --records N */
		struct format_args *a = userdata;
		char *end;
		unsigned long long n;

		errno = 0;
		n = strtoull(arg, &end, 10);
		if (errno || end == arg || *end || arg[0] == '-' || n < 64 || n > (1ull << 26)) {
			log_error("format: --records must be 64..%llu, not \"%s\"", 1ull << 26, arg);
			return CTL_EXIT_USAGE;
		}
		a->records = n;
		return CTL_EXIT_OK;
	}
	return CTL_EXIT_USAGE;
}

int cmd_format(struct ctl *ctl, int argc, char **argv)
{
	static const struct option options[] = { { "force", no_argument, NULL, 'f' },
						 { "records", required_argument, NULL, 'R' }, {} };
	struct format_args args = {0};
	_cleanup_(closep) int fd = -1, lock_fd = -1;
	struct progress progress;
	const char *path;
	int r, first;

	r = ctl_parse_options(ctl, argc, argv, "fR:", options, format_option, &args, &first);
	if (r != CTL_EXIT_OK)
		return r < 0 ? CTL_EXIT_OK : r;
	if ((r = ctl_check_operands("format", argc - first, 1, 1)) != CTL_EXIT_OK)
		return r;
	path = argv[first];
	if ((r = open_target("format", path, &fd)) != CTL_EXIT_OK)
		return r;
	/* Even --force does not override this: clients map the pool and daxpoold indexes it. */
	if ((r = lock_target("format", path, fd, &lock_fd)) != CTL_EXIT_OK)
		return r;
	r = ctl_refuse_if_in_use(path, "stop daxpoold and its clients before formatting");
	if (r != CTL_EXIT_OK)
		return r;
	/* pool_check finds a pool, even a damaged one; only -ENODATA means there is none. */
	r = pool_check_fd(fd, false);
	if (r != -ENODATA && r != -EINVAL && !args.force) {
		log_error("format: %s already holds a daxpool pool%s; --force overwrites it (every slice is lost)",
			  path, r == -EPROTONOSUPPORT ? " of another format version" : "");
		return CTL_EXIT_FAILURE;
	}
	progress_start(&progress, ctl, "format", path, fd);
	{
		struct pool_format_params prm = { .table_capacity = args.records };

		r = pool_format_fd(fd, &prm);
	}
	progress_stop(&progress);
	if (r < 0) {
		log_error("format %s: %s", path, pool_errormsg());
		return CTL_EXIT_FAILURE;
	}
	return ctl_print_done(ctl, "path", path, "formatted");
}

int cmd_fsck(struct ctl *ctl, int argc, char **argv)
{
	static const struct option options[] = { { "repair", no_argument, NULL, 'r' }, {} };
	static const char *const names[] = { "clean", "repaired", "repairable", "damaged" };
	static const int codes[] = { CTL_EXIT_OK, CTL_EXIT_FSCK_REPAIRED, CTL_EXIT_FSCK_REPAIRABLE,
				     CTL_EXIT_FSCK_DAMAGED };
	_cleanup_(closep) int fd = -1, lock_fd = -1;
	struct progress progress;
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
	/* A repair would race a running daemon's own writes: refused while anyone has the pool
	 * open. A check only reads; under a running daemon it reads a pool that changes as it
	 * reads, which it says. */
	if (repair) {
		if ((r = lock_target("fsck --repair", path, fd, &lock_fd)) != CTL_EXIT_OK)
			return r;
		r = ctl_refuse_if_in_use(path, "stop daxpoold before repairing its pool");
		if (r != CTL_EXIT_OK)
			return r;
	} else {
		pid_t pid;
		char comm[32];

		if (pool_lock_holder(fd, &pid, comm, sizeof(comm)) == 1)
			log_warning("fsck: %s is in use by pid %d (%s); what is found is a snapshot of "
				    "a pool that may change while it is read",
				    path, (int)pid, comm);
	}
	progress_start(&progress, ctl, repair ? "fsck --repair" : "fsck", path, fd);
	r = pool_check_fd(fd, repair);
	progress_stop(&progress);
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
