/* daxpool-bench: shared helpers of the suites. */
#pragma once

#include <json-c/json.h>
#include <stdint.h>

struct bench_opts {
	const char *dir; /* where pool files go (tmpfs by default) */
	const char *system; /* "all", "daxpool" or "pmemobj" */
	uint64_t counts[8];
	unsigned ncounts;
	uint64_t ops; /* churn operations per measurement */
	const char *daemon; /* service: daxpoold to start; NULL = find it (service.c) */
	double duration; /* service: seconds per throughput point; 0 = default */
	int quick; /* service: short points for CI */
};

/* Prints one row {"suite","system","metric","value","unit","params"} as a JSON line; takes params. */
void bench_row(const char *suite, const char *system, const char *metric, double value,
	       const char *unit, json_object *params);
uint64_t bench_now_ns(void);
/* Sorts samples and returns the q-quantile (0..1). */
uint64_t bench_quantile(uint64_t *samples, uint64_t n, double q);

int suite_alloc(const struct bench_opts *o);
int suite_service(const struct bench_opts *o);
int suite_touch(const struct bench_opts *o);
