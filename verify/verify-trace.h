/* daxpoolctl verify: kernel observation through tracefs — kprobe and fprobe events of our own
 * group, enabled only in a private trace instance and filtered to this process. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct vtrace;

/*
 * Opens tracefs for probing: needs root, a mounted tracefs with kprobe_events. On failure
 * returns a negative errno and writes why into reason (the checks that need probes are then
 * reported as not run with that reason).
 */
int vtrace_new(struct vtrace **ret, char *reason, size_t size);

/* Removes our events and the instance; accepts NULL. */
void vtrace_delete(struct vtrace **t);

/* Whether the kernel offers fprobe events ("f:" in dynamic_events). */
bool vtrace_has_fprobe(const struct vtrace *t);

/*
 * Defines event NAME of our group: "p:GROUP/NAME SPEC" in kprobe_events (fprobe false) or
 * "f:GROUP/NAME SPEC" in dynamic_events (fprobe true). On failure returns a negative errno and
 * the kernel's error_log line in err.
 */
int vtrace_define(struct vtrace *t, const char *name, bool fprobe, const char *spec, char *err,
		  size_t errsize);

/* The definition line of an event as written (for the report), or NULL. */
const char *vtrace_definition(const struct vtrace *t, const char *name);

/* Counting hits of NAME by process pid: a hist trigger in the instance, keyed by pid. */
int vtrace_count_start(struct vtrace *t, const char *name, pid_t pid);
/* Stops counting; *ret receives the hits of that pid (0 if none). On a kernel without hist
 * triggers the count is the probe's hit counter (kprobe_profile): every process's hits. */
int vtrace_count_stop(struct vtrace *t, const char *name, pid_t pid, uint64_t *ret);
/* Whether counts include every process (no hist triggers), known after the first count_start. */
bool vtrace_count_is_global(const struct vtrace *t);
/* How counts are taken (for the report). */
const char *vtrace_count_method(const struct vtrace *t);

/* Records NAME's events of process pid into the instance's (cleared) buffer. The event stays
 * enabled until vtrace_delete (enabling patches kernel text: do it once). */
int vtrace_capture_start(struct vtrace *t, const char *name, pid_t pid);
/* Returns the buffer's text so far (malloc'd, caller frees). */
int vtrace_capture_stop(struct vtrace *t, const char *name, char **ret_text);

/* A field "KEY=VALUE" of a trace line (the last event line of NAME in text): *ret the value
 * (decimal or 0x hex). Returns 0, or -ENOENT. */
int vtrace_last_field(const char *text, const char *name, const char *key, int64_t *ret);
