/* Unit tests of the operator-value parsers (lib/common/parse-util.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "parse-util.h"

#include <errno.h>
#include <syslog.h>

static void test_sizes(void **state)
{
	static const struct {
		const char *in;
		int r;
		uint64_t v;
	} cases[] = {
		{ "0", 0, 0 },		      { "4096", 0, 4096 },	     { "4K", 0, 4096 },
		{ "4k", 0, 4096 },	      { "2M", 0, 2u << 20 },	     { "2MiB", 0, 2u << 20 },
		{ "1G", 0, 1u << 30 },	      { "1GB", 0, 1u << 30 },	     { "3T", 0, 3ull << 40 },
		{ "16777216T", -ERANGE, 0 }, { "16777215T", 0, 16777215ull << 40 },     { "99999999999999999999", -ERANGE, 0 },
		{ "", -EINVAL, 0 },	      { "-1", -EINVAL, 0 },	     { " 1", -EINVAL, 0 },
		{ "1.5G", -EINVAL, 0 },	      { "1X", -EINVAL, 0 },	     { "G", -EINVAL, 0 },
		{ "1G ", -EINVAL, 0 },	      { "0x10", -EINVAL, 0 },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		uint64_t v = 0xabad1dea;
		int r = parse_size(cases[i].in, &v);

		assert_int_equal(r, cases[i].r);
		assert_int_equal(v, cases[i].r == 0 ? cases[i].v : 0xabad1dea); /* untouched on error */
	}
	assert_int_equal(parse_size(NULL, &(uint64_t){ 0 }), -EINVAL);
}

static void test_format_size(void **state)
{
	char buf[24];
	static const uint64_t round_trip[] = { 1, 4095, 4096, 4097, 2u << 20, 1056964608, 1ull << 30,
					       3ull << 40, UINT64_MAX };

	assert_string_equal(format_size(0, buf, sizeof(buf)), "0");
	assert_string_equal(format_size(4096, buf, sizeof(buf)), "4K");
	assert_string_equal(format_size(2u << 20, buf, sizeof(buf)), "2M");
	assert_string_equal(format_size(1056964608, buf, sizeof(buf)), "1008M");
	assert_string_equal(format_size(1ull << 30, buf, sizeof(buf)), "1G");
	assert_string_equal(format_size(3ull << 40, buf, sizeof(buf)), "3072G");
	assert_string_equal(format_size(4097, buf, sizeof(buf)), "4097");
	assert_string_equal(format_size(UINT64_MAX, buf, sizeof(buf)), "18446744073709551615");
	/* What it prints, parse_size reads back. */
	for (size_t i = 0; i < sizeof(round_trip) / sizeof(round_trip[0]); i++) {
		uint64_t v = 0;

		assert_int_equal(parse_size(format_size(round_trip[i], buf, sizeof(buf)), &v), 0);
		assert_true(v == round_trip[i]);
	}
}

static void test_page_sizes(void **state)
{
	uint64_t v;

	assert_int_equal(parse_page_size("4K", &v), 0);
	assert_int_equal(v, 4096);
	assert_int_equal(parse_page_size("2M", &v), 0);
	assert_int_equal(v, 2u << 20);
	assert_int_equal(parse_page_size("1073741824", &v), 0);
	assert_int_equal(v, 1u << 30);
	assert_int_equal(parse_page_size("8K", &v), -EINVAL);
	assert_int_equal(parse_page_size("64K", &v), -EINVAL);
	assert_string_equal(page_size_name(2u << 20), "2M");
	assert_null(page_size_name(12345));
}

static void test_modes_and_levels(void **state)
{
	unsigned m;
	int l;

	assert_int_equal(parse_mode("0660", &m), 0);
	assert_int_equal(m, 0660);
	assert_int_equal(parse_mode("777", &m), 0);
	assert_int_equal(m, 0777);
	assert_int_equal(parse_mode("0888", &m), -EINVAL);
	assert_int_equal(parse_mode("17777", &m), -EINVAL);
	assert_int_equal(parse_mode("", &m), -EINVAL);
	assert_int_equal(parse_mode("rw", &m), -EINVAL);
	assert_int_equal(parse_log_level("debug", &l), 0);
	assert_int_equal(l, LOG_DEBUG);
	assert_int_equal(parse_log_level("ERR", &l), 0);
	assert_int_equal(l, LOG_ERR);
	assert_int_equal(parse_log_level("error", &l), 0);
	assert_int_equal(parse_log_level("4", &l), 0);
	assert_int_equal(l, LOG_WARNING);
	assert_int_equal(parse_log_level("8", &l), -EINVAL);
	assert_int_equal(parse_log_level("loud", &l), -EINVAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_sizes),
		cmocka_unit_test(test_format_size),
		cmocka_unit_test(test_page_sizes),
		cmocka_unit_test(test_modes_and_levels),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
