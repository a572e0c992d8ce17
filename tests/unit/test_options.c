/* Unit tests of daxpoold's command line and config file (daemon/options.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "log.h"
#include "options.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char config_path[64];

static int parse(struct daxpoold_options *o, const char *const *args)
{
	char *argv[32];
	int argc = 0;

	argv[argc++] = (char *)"daxpoold";
	for (; *args; args++)
		argv[argc++] = (char *)*args;
	argv[argc] = NULL;
	return options_parse(o, argc, argv);
}

static void write_config(const char *json)
{
	FILE *f = fopen(config_path, "w");

	assert_non_null(f);
	fputs(json, f);
	fclose(f);
}

static int setup(void **state)
{
	int fd;

	strcpy(config_path, "/tmp/daxpool-test-config-XXXXXX");
	fd = mkstemp(config_path);
	assert_true(fd >= 0);
	close(fd);
	log_set_max_level(LOG_EMERG); /* the tests provoke errors on purpose */
	return 0;
}

static int teardown(void **state)
{
	unlink(config_path);
	return 0;
}

static void test_defaults_and_flags(void **state)
{
	struct daxpoold_options o;

	assert_int_equal(parse(&o, (const char *[]){ "--config", "/nonexistent/x.json", NULL }), -EINVAL);
	options_free(&o);

	assert_int_equal(parse(&o, (const char *[]){ "--socket", "/tmp/x.sock", "-f", NULL }), 0);
	assert_string_equal(o.socket_path, "/tmp/x.sock");
	assert_true(o.foreground);
	assert_int_equal(o.backend, BACKEND_NONE);
	assert_int_equal(o.socket_mode, 0660);
	options_free(&o);

	assert_int_equal(parse(&o, (const char *[]){ "-s", "/tmp/x.sock", "--emulate", "/tmp/pool",
						     "--size", "64M", "--page", "4K", NULL }), 0);
	assert_int_equal(o.backend, BACKEND_EMULATED);
	assert_int_equal(o.size, 64u << 20);
	assert_int_equal(o.page_size, 4096);
	options_free(&o);

	assert_int_equal(parse(&o, (const char *[]){ "-s", "/tmp/x.sock", "--device", "/dev/dax0.0", NULL }), 0);
	assert_int_equal(o.backend, BACKEND_DEVDAX);
	assert_string_equal(o.device_path, "/dev/dax0.0");
	options_free(&o);
}

static void test_bad_flags(void **state)
{
	const char *const *bad[] = {
		(const char *[]){ "--bogus", NULL },
		(const char *[]){ "--socket", NULL },
		(const char *[]){ "--socket", "relative.sock", NULL },
		(const char *[]){ "extra-argument", NULL },
		(const char *[]){ "--emulate", "/tmp/p", NULL },			      /* no size */
		(const char *[]){ "--emulate", "/tmp/p", "--size", "3M", NULL },	      /* not 2M multiple */
		(const char *[]){ "--emulate", "/tmp/p", "--size", "4G", "--page", "8K", NULL },
		(const char *[]){ "--emulate", "rel/p", "--size", "4G", NULL },
		(const char *[]){ "--device", "/dev/dax0.0", "--emulate", "/tmp/p", NULL },
		(const char *[]){ "--device", "dax0.0", NULL },
		(const char *[]){ "--device", "/dev/dax0.0", "--size", "1G", NULL },
		(const char *[]){ "--size", "1G", NULL },
		(const char *[]){ "--page", "2M", NULL },
		(const char *[]){ "--size", "lots", "--emulate", "/tmp/p", NULL },
		(const char *[]){ "--log-level", "chatty", NULL },
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct daxpoold_options o;
		char *long_sock = NULL;

		assert_int_equal(parse(&o, bad[i]) < 0, 1);
		options_free(&o);
		free(long_sock);
	}
	/* A socket path longer than sun_path. */
	char path[200];
	struct daxpoold_options o;

	memset(path, 'a', sizeof(path) - 1);
	path[0] = '/';
	path[sizeof(path) - 1] = 0;
	assert_int_equal(parse(&o, (const char *[]){ "--socket", path, NULL }), -ENAMETOOLONG);
	options_free(&o);
}

static void test_config_file(void **state)
{
	struct daxpoold_options o;

	write_config("{ \"socket\": \"/tmp/c.sock\", \"socket_mode\": \"0600\", \"log_level\": \"debug\","
		     "  \"max_clients\": 7,"
		     "  \"backend\": { \"type\": \"emulated\", \"path\": \"/tmp/pool\", \"size\": \"1G\", \"page\": \"1G\" } }");
	assert_int_equal(parse(&o, (const char *[]){ "--config", config_path, NULL }), 0);
	assert_string_equal(o.socket_path, "/tmp/c.sock");
	assert_int_equal(o.socket_mode, 0600);
	assert_int_equal(o.log_level, LOG_DEBUG);
	assert_int_equal(o.max_clients, 7);
	assert_int_equal(o.backend, BACKEND_EMULATED);
	assert_int_equal(o.size, 1u << 30);
	assert_int_equal(o.page_size, 1u << 30);
	options_free(&o);

	/* The command line wins over the file, and a backend flag replaces the file's backend. */
	assert_int_equal(parse(&o, (const char *[]){ "--config", config_path, "--socket", "/tmp/d.sock",
						     "--device", "/dev/dax1.0", NULL }), 0);
	assert_string_equal(o.socket_path, "/tmp/d.sock");
	assert_int_equal(o.backend, BACKEND_DEVDAX);
	assert_null(o.emulate_path);
	options_free(&o);

	write_config("{ \"backend\": { \"type\": \"emulated\", \"path\": \"/tmp/pool\", \"size\": 4194304, \"page\": \"4K\" } }");
	assert_int_equal(parse(&o, (const char *[]){ "--config", config_path, NULL }), 0);
	assert_int_equal(o.size, 4194304);
	options_free(&o);
}

static void test_bad_config_files(void **state)
{
	static const char *const bad[] = {
		"",
		"{",
		"[]",
		"{ \"sockett\": \"/tmp/x\" }",
		"{ \"socket\": 5 }",
		"{ \"socket_mode\": \"rw\" }",
		"{ \"socket_mode\": 660 }",
		"{ \"max_clients\": 0 }",
		"{ \"max_clients\": \"many\" }",
		"{ \"max_clients\": 1000000 }",
		"{ \"log_level\": \"shout\" }",
		"{ \"backend\": 1 }",
		"{ \"backend\": { } }",
		"{ \"backend\": { \"type\": \"nvme\" } }",
		"{ \"backend\": { \"type\": \"emulated\", \"path\": \"/tmp/p\", \"size\": -5 } }",
		"{ \"backend\": { \"type\": \"emulated\", \"path\": \"/tmp/p\", \"size\": \"1G\", \"page\": \"3M\" } }",
		"{ \"backend\": { \"type\": \"emulated\", \"path\": \"/tmp/p\", \"size\": \"1G\", \"colour\": 1 } }",
		"{ \"backend\": { \"type\": \"devdax\" } }",
		"{ \"backend\": { \"type\": \"devdax\", \"device\": \"/dev/dax0.0\", \"size\": \"1G\" } }",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct daxpoold_options o;

		write_config(bad[i]);
		if (parse(&o, (const char *[]){ "--config", config_path, NULL }) >= 0)
			fail_msg("config accepted: %s", bad[i]);
		options_free(&o);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_defaults_and_flags),
		cmocka_unit_test(test_bad_flags),
		cmocka_unit_test(test_config_file),
		cmocka_unit_test(test_bad_config_files),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
