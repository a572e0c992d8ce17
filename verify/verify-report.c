/* daxpoolctl verify: collecting checks and printing them (verify/verify-report.h). */
#include "verify-report.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct vreport {
	struct json_object *root;   /* owns checks and observations */
	struct json_object *checks; /* array */
	struct json_object *observations;
	unsigned counts[3];
};

static const char *const status_names[] = {
	[VCHECK_PASSED] = "passed",
	[VCHECK_FAILED] = "failed",
	[VCHECK_NOT_RUN] = "not-run",
};

int vreport_new(struct vreport **ret)
{
	struct vreport *rep = calloc(1, sizeof(*rep));

	if (!rep)
		return -ENOMEM;
	rep->root = json_object_new_object();
	rep->checks = json_object_new_array();
	rep->observations = json_object_new_object();
	if (!rep->root || !rep->checks || !rep->observations) {
		json_object_put(rep->root);
		json_object_put(rep->checks);
		json_object_put(rep->observations);
		free(rep);
		return -ENOMEM;
	}
	json_object_object_add(rep->root, "version", json_object_new_int(1));
	*ret = rep;
	return 0;
}

void vreport_delete(struct vreport **rep)
{
	if (!rep || !*rep)
		return;
	/* Not yet attached to root if vreport_print never ran. */
	if (!json_object_object_get((*rep)->root, "checks")) {
		json_object_put((*rep)->checks);
		json_object_put((*rep)->observations);
	}
	json_object_put((*rep)->root);
	free(*rep);
	*rep = NULL;
}

struct json_object *vreport_root(struct vreport *rep)
{
	return rep->root;
}

static void vadd(struct vreport *rep, const char *scenario, const char *name,
		 enum vcheck_status status, struct json_object *observed,
		 struct json_object *expected, const char *fmt, va_list ap)
{
	struct json_object *c = json_object_new_object();
	char note[512] = "";

	if (fmt)
		vsnprintf(note, sizeof(note), fmt, ap);
	json_object_object_add(c, "scenario", json_object_new_string(scenario));
	json_object_object_add(c, "check", json_object_new_string(name));
	json_object_object_add(c, "status", json_object_new_string(status_names[status]));
	json_object_object_add(c, "observed", observed);
	json_object_object_add(c, "expected", expected);
	json_object_object_add(c, status == VCHECK_NOT_RUN ? "reason" : "note",
			       note[0] ? json_object_new_string(note) : NULL);
	json_object_array_add(rep->checks, c);
	rep->counts[status]++;
}

void vreport_add(struct vreport *rep, const char *scenario, const char *name,
		 enum vcheck_status status, struct json_object *observed,
		 struct json_object *expected, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vadd(rep, scenario, name, status, observed, expected, fmt, ap);
	va_end(ap);
}

void vreport_eq(struct vreport *rep, const char *scenario, const char *name, int64_t observed,
		int64_t expected, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vadd(rep, scenario, name, observed == expected ? VCHECK_PASSED : VCHECK_FAILED,
	     json_object_new_int64(observed), json_object_new_int64(expected), fmt, ap);
	va_end(ap);
}

void vreport_range(struct vreport *rep, const char *scenario, const char *name, int64_t observed,
		   int64_t lo, int64_t hi, const char *fmt, ...)
{
	char range[64];
	va_list ap;

	snprintf(range, sizeof(range), "%" PRId64 "..%" PRId64, lo, hi);
	va_start(ap, fmt);
	vadd(rep, scenario, name, observed >= lo && observed <= hi ? VCHECK_PASSED : VCHECK_FAILED,
	     json_object_new_int64(observed), json_object_new_string(range), fmt, ap);
	va_end(ap);
}

void vreport_true(struct vreport *rep, const char *scenario, const char *name, bool ok,
		  const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vadd(rep, scenario, name, ok ? VCHECK_PASSED : VCHECK_FAILED, json_object_new_boolean(ok),
	     json_object_new_boolean(true), fmt, ap);
	va_end(ap);
}

void vreport_skip(struct vreport *rep, const char *scenario, const char *name, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vadd(rep, scenario, name, VCHECK_NOT_RUN, NULL, NULL, fmt, ap);
	va_end(ap);
}

void vreport_observe(struct vreport *rep, const char *key, struct json_object *value)
{
	json_object_object_add(rep->observations, key, value);
}

unsigned vreport_count(const struct vreport *rep, enum vcheck_status status)
{
	return rep->counts[status];
}

/* A json value as a short table cell ("-" for null). */
static const char *cell(struct json_object *v, char *buf, size_t size)
{
	if (!v)
		return "-";
	snprintf(buf, size, "%s", json_object_get_type(v) == json_type_string
					  ? json_object_get_string(v)
					  : json_object_to_json_string_ext(v, JSON_C_TO_STRING_PLAIN));
	return buf;
}

void vreport_print(struct vreport *rep, bool json)
{
	struct json_object *summary = json_object_new_object();
	size_t n = json_object_array_length(rep->checks);

	json_object_object_add(summary, "passed", json_object_new_int(rep->counts[VCHECK_PASSED]));
	json_object_object_add(summary, "failed", json_object_new_int(rep->counts[VCHECK_FAILED]));
	json_object_object_add(summary, "not_run", json_object_new_int(rep->counts[VCHECK_NOT_RUN]));
	if (!json_object_object_get(rep->root, "checks")) {
		json_object_object_add(rep->root, "checks", rep->checks);
		json_object_object_add(rep->root, "observations", rep->observations);
	}
	json_object_object_add(rep->root, "summary", summary);
	json_object_object_add(rep->root, "ok", json_object_new_boolean(rep->counts[VCHECK_FAILED] == 0));
	if (json) {
		puts(json_object_to_json_string_ext(rep->root, JSON_C_TO_STRING_PRETTY |
								       JSON_C_TO_STRING_NOSLASHESCAPE));
		return;
	}
	json_object_object_foreach(rep->root, key, val) {
		if (json_object_get_type(val) == json_type_object || json_object_get_type(val) == json_type_array)
			continue;
		printf("%-12s %s\n", key, json_object_get_string(val));
	}
	printf("\n%-14s %-28s %-8s %-14s %-14s %s\n", "SCENARIO", "CHECK", "STATUS", "OBSERVED",
	       "EXPECTED", "NOTE");
	for (size_t i = 0; i < n; i++) {
		struct json_object *c = json_object_array_get_idx(rep->checks, i);
		struct json_object *note = json_object_object_get(c, "note");
		char o[64], e[64];

		if (!note)
			note = json_object_object_get(c, "reason");
		printf("%-14s %-28s %-8s %-14s %-14s %s\n",
		       json_object_get_string(json_object_object_get(c, "scenario")),
		       json_object_get_string(json_object_object_get(c, "check")),
		       json_object_get_string(json_object_object_get(c, "status")),
		       cell(json_object_object_get(c, "observed"), o, sizeof(o)),
		       cell(json_object_object_get(c, "expected"), e, sizeof(e)),
		       note ? json_object_get_string(note) : "");
	}
	printf("\n%u passed, %u failed, %u not run\n", rep->counts[VCHECK_PASSED],
	       rep->counts[VCHECK_FAILED], rep->counts[VCHECK_NOT_RUN]);
}
