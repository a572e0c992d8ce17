/* daxpoolctl verify: tracefs probes (verify/verify-trace.h).
 *
 * Why a private instance: events of the top-level buffer are seen by every tracing user of the
 * machine, and "echo 1 > enable" there would fight with them. Our events are defined in the
 * global kprobe_events/dynamic_events (that cannot be avoided) under a group named after our
 * pid, and enabled only in instances/daxpool-verify-PID, filtered to the process we measure. */
#include "verify-trace.h"
#include "log.h"
#include "macro.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define VTRACE_MAX_EVENTS 16

struct vevent {
	char name[32];
	char definition[512];
	bool fprobe;
	bool enabled;	 /* enabled in the instance (captures) */
	pid_t capture_pid; /* the pid filter set for captures, 0 none */
	uint64_t nhit0;	   /* kprobe_profile hits when counting started (no hist triggers) */
};

struct vtrace {
	char root[64];	   /* tracefs mount */
	char instance[160]; /* root/instances/daxpool-verify-PID */
	char group[32];
	bool fprobe;
	bool no_hist; /* the kernel has no hist triggers (CONFIG_HIST_TRIGGERS off: Debian's 5.10) */
	struct vevent events[VTRACE_MAX_EVENTS];
	unsigned nevents;
};

static int write_file(const char *path, const char *text, bool append)
{
	_cleanup_(closep) int fd = open(path, O_WRONLY | O_CLOEXEC | (append ? O_APPEND : O_TRUNC));
	size_t len = strlen(text);

	if (fd < 0)
		return negative_errno();
	if (write(fd, text, len) != (ssize_t)len)
		return negative_errno();
	return 0;
}

/* Reads a whole (pseudo) file; *ret is NUL-terminated, caller frees. */
static int read_file(const char *path, char **ret)
{
	_cleanup_(closep) int fd = open(path, O_RDONLY | O_CLOEXEC);
	size_t cap = 65536, len = 0;
	char *buf;

	if (fd < 0)
		return negative_errno();
	buf = malloc(cap);
	if (!buf)
		return -ENOMEM;
	for (;;) {
		ssize_t n;

		if (cap - len < 4096) {
			char *nb = realloc(buf, cap * 2);

			if (!nb) {
				free(buf);
				return -ENOMEM;
			}
			buf = nb;
			cap *= 2;
		}
		n = read(fd, buf + len, cap - len - 1);
		if (n < 0) {
			int r = negative_errno();

			free(buf);
			return r;
		}
		if (n == 0)
			break;
		len += (size_t)n;
	}
	buf[len] = '\0';
	*ret = buf;
	return 0;
}

static bool exists(const char *path)
{
	return access(path, F_OK) == 0;
}

int vtrace_new(struct vtrace **ret, char *reason, size_t size)
{
	static const char *const roots[] = { "/sys/kernel/tracing", "/sys/kernel/debug/tracing" };
	_cleanup_(freep) struct vtrace *t = NULL;
	_cleanup_(freep) char *readme = NULL;
	char path[256];

	if (geteuid() != 0) {
		snprintf(reason, size, "not root: kprobe events need root");
		return -EPERM;
	}
	t = calloc(1, sizeof(*t));
	if (!t)
		return -ENOMEM;
	for (size_t i = 0; i < ARRAY_SIZE(roots) && !t->root[0]; i++) {
		snprintf(path, sizeof(path), "%s/README", roots[i]);
		if (exists(path))
			snprintf(t->root, sizeof(t->root), "%s", roots[i]);
	}
	if (!t->root[0]) {
		snprintf(reason, size, "no tracefs mounted (mount -t tracefs nodev /sys/kernel/tracing)");
		return -ENOENT;
	}
	snprintf(path, sizeof(path), "%s/kprobe_events", t->root);
	if (!exists(path)) {
		snprintf(reason, size, "the kernel has no kprobe events (CONFIG_KPROBE_EVENTS)");
		return -EOPNOTSUPP;
	}
	/* The README lists the syntax the kernel accepts: fprobe events appear as "f[:[...". */
	snprintf(path, sizeof(path), "%s/README", t->root);
	if (read_file(path, &readme) == 0)
		t->fprobe = strstr(readme, "\n  f[:[<group>/][<event>]]") || strstr(readme, " f[:[");
	snprintf(t->group, sizeof(t->group), "daxpool_verify_%d", (int)getpid());
	snprintf(t->instance, sizeof(t->instance), "%s/instances/daxpool-verify-%d", t->root,
		 (int)getpid());
	if (mkdir(t->instance, 0700) < 0 && errno != EEXIST) {
		snprintf(reason, size, "cannot create trace instance %s: %s", t->instance, strerror(errno));
		return negative_errno();
	}
	/* Enabling an event in a trace array that records command names registers probes on the
	 * sched_switch/sched_wakeup tracepoints, i.e. flips their static keys, which rewrites kernel
	 * text with int3-based patching on every enable and disable. Under QEMU TCG that raced with
	 * the other vCPU ("Oops: int3" in ttwu_do_activate, lab run on 7.3.4). Our instance needs
	 * no command names: switch both recorders off, and enable each event once (below). */
	snprintf(path, sizeof(path), "%s/options/record-cmd", t->instance);
	(void)write_file(path, "0", false);
	snprintf(path, sizeof(path), "%s/options/record-tgid", t->instance);
	(void)write_file(path, "0", false);
	*ret = TAKE_PTR(t);
	return 0;
}

bool vtrace_has_fprobe(const struct vtrace *t)
{
	return t->fprobe;
}

static struct vevent *find_event(struct vtrace *t, const char *name)
{
	for (unsigned i = 0; i < t->nevents; i++)
		if (strcmp(t->events[i].name, name) == 0)
			return &t->events[i];
	return NULL;
}

const char *vtrace_definition(const struct vtrace *t, const char *name)
{
	struct vevent *e = find_event((struct vtrace *)t, name);

	return e ? e->definition : NULL;
}

/* The kernel's last complaint in error_log ("... error: WHY" and the command's line). */
static void last_error(struct vtrace *t, char *err, size_t size)
{
	_cleanup_(freep) char *text = NULL;
	const char *line = NULL;
	char path[256];

	snprintf(path, sizeof(path), "%s/error_log", t->root);
	if (read_file(path, &text) == 0)
		for (const char *p = strstr(text, "error:"); p; p = strstr(p + 1, "error:"))
			line = p;
	if (!line) {
		snprintf(err, size, "(no error_log entry)");
		return;
	}
	snprintf(err, size, "%s", line);
	/* Two lines: the reason and "Command: ..."; the caret line is dropped. */
	{
		char *nl = strchr(err, '\n');

		if (nl) {
			*nl = ' ';
			nl = strchr(nl, '\n');
			if (nl)
				*nl = '\0';
		}
	}
}

static int remove_event(struct vtrace *t, struct vevent *e)
{
	char path[256], line[128];

	snprintf(path, sizeof(path), "%s/%s", t->root, e->fprobe ? "dynamic_events" : "kprobe_events");
	snprintf(line, sizeof(line), "-:%s/%s\n", t->group, e->name);
	return write_file(path, line, true);
}

int vtrace_define(struct vtrace *t, const char *name, bool fprobe, const char *spec, char *err,
		  size_t errsize)
{
	struct vevent *e;
	char path[256];
	int r;

	if (t->nevents >= VTRACE_MAX_EVENTS || strlen(name) >= sizeof(e->name))
		return -E2BIG;
	if (find_event(t, name))
		return -EEXIST;
	e = &t->events[t->nevents];
	snprintf(e->name, sizeof(e->name), "%s", name);
	e->fprobe = fprobe;
	snprintf(e->definition, sizeof(e->definition), "%c:%s/%s %s", fprobe ? 'f' : 'p', t->group,
		 name, spec);
	snprintf(path, sizeof(path), "%s/%s", t->root, fprobe ? "dynamic_events" : "kprobe_events");
	r = write_file(path, e->definition, true);
	if (r < 0) {
		last_error(t, err, errsize);
		return r;
	}
	t->nevents++;
	return 0;
}

static int event_file(struct vtrace *t, const char *name, const char *file, char *path, size_t size)
{
	if (!find_event(t, name))
		return -ENOENT;
	snprintf(path, size, "%s/events/%s/%s/%s", t->instance, t->group, name, file);
	return 0;
}

static int event_write(struct vtrace *t, const char *name, const char *file, const char *text)
{
	char path[384];
	int r = event_file(t, name, file, path, sizeof(path));

	return r < 0 ? r : write_file(path, text, false);
}

/* The hit count of our event NAME in kprobe_profile ("  NAME  NHIT  NMISSED" per kprobe event). */
static int profile_hits(struct vtrace *t, const char *name, uint64_t *ret)
{
	_cleanup_(freep) char *text = NULL;
	char path[256];
	unsigned found = 0;
	int r;

	snprintf(path, sizeof(path), "%s/kprobe_profile", t->root);
	r = read_file(path, &text);
	if (r < 0)
		return r;
	for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n")) {
		char ev[128];
		unsigned long long nhit;
		const char *slash;

		if (sscanf(line, " %127s %llu", ev, &nhit) != 2)
			continue;
		slash = strrchr(ev, '/'); /* newer kernels print GROUP/NAME */
		if (slash ? strcmp(slash + 1, name) == 0 && strncmp(ev, t->group, strlen(t->group)) == 0
			  : strcmp(ev, name) == 0) {
			*ret = nhit;
			found++;
		}
	}
	/* Older kernels print the name alone: another verify's event of the same name is ambiguous. */
	return found == 1 ? 0 : found ? -EEXIST : -ENOENT;
}

int vtrace_count_start(struct vtrace *t, const char *name, pid_t pid)
{
	struct vevent *e = find_event(t, name);
	char trig[128];
	int r;

	if (!e)
		return -ENOENT;
	/* The trigger arms the event itself (soft mode): nothing goes into the ring buffer, the
	 * histogram is kept in the kernel, so 262144 PTE inserts cannot overflow anything. */
	if (!t->no_hist) {
		snprintf(trig, sizeof(trig), "hist:keys=common_pid if common_pid == %d", (int)pid);
		r = event_write(t, name, "trigger", trig);
		if (r != -EINVAL)
			return r;
		t->no_hist = true;
	}
	/* No hist triggers: the probe's own hit counter in kprobe_profile, which counts every
	 * process (the event is enabled with a filter no event passes, so nothing is recorded). */
	if (!e->enabled) {
		r = event_write(t, name, "filter", "common_pid == 0");
		if (r == 0)
			r = event_write(t, name, "enable", "1");
		if (r < 0)
			return r;
		e->enabled = true;
	}
	return profile_hits(t, name, &e->nhit0);
}

int vtrace_count_stop(struct vtrace *t, const char *name, pid_t pid, uint64_t *ret)
{
	_cleanup_(freep) char *text = NULL;
	struct vevent *e = find_event(t, name);
	char path[384], trig[128];
	uint64_t hits = 0;
	int r;

	if (!e)
		return -ENOENT;
	if (t->no_hist) {
		r = profile_hits(t, name, &hits);
		if (r < 0)
			return r;
		*ret = hits - e->nhit0;
		return 0;
	}
	r = event_file(t, name, "hist", path, sizeof(path));
	if (r < 0)
		return r;
	r = read_file(path, &text);
	snprintf(trig, sizeof(trig), "!hist:keys=common_pid if common_pid == %d", (int)pid);
	(void)event_write(t, name, "trigger", trig);
	if (r < 0)
		return r;
	/* Lines: "{ common_pid:       1234 } hitcount:      16384". */
	for (char *p = strstr(text, "common_pid:"); p; p = strstr(p + 1, "common_pid:")) {
		char *h;
		long v = strtol(p + strlen("common_pid:"), &h, 10);

		if (v != pid)
			continue;
		h = strstr(h, "hitcount:");
		if (h)
			hits += strtoull(h + strlen("hitcount:"), NULL, 10);
	}
	*ret = hits;
	return 0;
}

bool vtrace_count_is_global(const struct vtrace *t)
{
	return t->no_hist;
}

const char *vtrace_count_method(const struct vtrace *t)
{
	return t->no_hist ? "kprobe_profile hit counts (no hist triggers in this kernel: every process counts)"
			  : "hist trigger keyed by pid";
}

int vtrace_capture_start(struct vtrace *t, const char *name, pid_t pid)
{
	struct vevent *e = find_event(t, name);
	char filter[64], path[256];
	int r;

	if (!e)
		return -ENOENT;
	/* The event stays enabled from the first capture until vtrace_delete: every enable and
	 * disable patches kernel text (see vtrace_new), and a capture is just clear + read. */
	if (e->capture_pid != pid) {
		snprintf(filter, sizeof(filter), "common_pid == %d", (int)pid);
		r = event_write(t, name, "filter", filter);
		if (r < 0)
			return r;
		e->capture_pid = pid;
	}
	if (!e->enabled) {
		r = event_write(t, name, "enable", "1");
		if (r < 0)
			return r;
		e->enabled = true;
	}
	snprintf(path, sizeof(path), "%s/trace", t->instance);
	return write_file(path, "", false); /* O_TRUNC clears the buffer */
}

int vtrace_capture_stop(struct vtrace *t, const char *name, char **ret_text)
{
	char path[256];

	if (!find_event(t, name))
		return -ENOENT;
	snprintf(path, sizeof(path), "%s/trace", t->instance);
	return read_file(path, ret_text);
}

int vtrace_last_field(const char *text, const char *name, const char *key, int64_t *ret)
{
	char tag[48], k[48];
	const char *line = NULL;

	snprintf(tag, sizeof(tag), " %s: (", name);
	for (const char *p = strstr(text, tag); p; p = strstr(p + 1, tag))
		line = p;
	if (!line)
		return -ENOENT;
	snprintf(k, sizeof(k), " %s=", key);
	for (const char *p = line; *p && *p != '\n'; p++) {
		if (strncmp(p, k, strlen(k)) == 0) {
			*ret = strtoll(p + strlen(k), NULL, 0);
			return 0;
		}
	}
	return -ENOENT;
}

void vtrace_delete(struct vtrace **tp)
{
	struct vtrace *t;

	if (!tp || !*tp)
		return;
	t = *tp;
	for (unsigned i = 0; i < t->nevents; i++) {
		char path[384];

		snprintf(path, sizeof(path), "%s/events/%s/%s/enable", t->instance, t->group,
			 t->events[i].name);
		(void)write_file(path, "0", false);
	}
	/* The instance holds references on the events: remove it first. */
	if (rmdir(t->instance) < 0 && errno != ENOENT)
		log_warning("cannot remove trace instance %s: %m", t->instance);
	for (unsigned i = 0; i < t->nevents; i++)
		if (remove_event(t, &t->events[i]) < 0)
			log_warning("cannot remove probe %s/%s: %m", t->group, t->events[i].name);
	free(t);
	*tp = NULL;
}
