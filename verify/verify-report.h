/* daxpoolctl verify: the report — every check as passed, failed or not run, with the observed
 * and expected values, printed as a table or as JSON from the same json-c objects. */
#pragma once

#include "macro.h"

#include <json-c/json.h>
#include <stdbool.h>
#include <stdint.h>

enum vcheck_status {
	VCHECK_PASSED,
	VCHECK_FAILED,
	VCHECK_NOT_RUN,
};

struct vreport;

int vreport_new(struct vreport **ret);
void vreport_delete(struct vreport **rep);

/* The report's top-level object (kernel, generation, backend, ...): callers add fields to it. */
struct json_object *vreport_root(struct vreport *rep);

/*
 * Adds one check. observed/expected are json values (ownership passes to the report; NULL is
 * null). The note says why it failed or was not run, or what was seen; printf-style, may be NULL.
 */
void vreport_add(struct vreport *rep, const char *scenario, const char *name,
		 enum vcheck_status status, struct json_object *observed,
		 struct json_object *expected, const char *fmt, ...) _printf_(7, 8);

/* Equality check of two integers: passed if equal, else failed. */
void vreport_eq(struct vreport *rep, const char *scenario, const char *name, int64_t observed,
		int64_t expected, const char *fmt, ...) _printf_(6, 7);

/* Range check: passed if lo <= observed <= hi; expected is shown as "lo..hi". */
void vreport_range(struct vreport *rep, const char *scenario, const char *name, int64_t observed,
		   int64_t lo, int64_t hi, const char *fmt, ...) _printf_(7, 8);

/* A boolean property: passed if true, failed otherwise. */
void vreport_true(struct vreport *rep, const char *scenario, const char *name, bool ok,
		  const char *fmt, ...) _printf_(5, 6);

/* Not run, with the reason. */
void vreport_skip(struct vreport *rep, const char *scenario, const char *name, const char *fmt,
		  ...) _printf_(4, 5);

/* Adds a free-form observation (traces, raw values) under "observations". */
void vreport_observe(struct vreport *rep, const char *key, struct json_object *value);

unsigned vreport_count(const struct vreport *rep, enum vcheck_status status);

/* Prints the report (JSON or table); fills in "summary" and "ok" first. */
void vreport_print(struct vreport *rep, bool json);
