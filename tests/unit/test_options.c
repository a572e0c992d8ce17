/* Unit tests of daxpoold's command line and config file (daemon/options.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "log.h"
#include "options.h"
#include "provision.h"

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
	assert_int_equal(o.busy_poll_us, 50); /* the default */
	options_free(&o);

	assert_int_equal(parse(&o, (const char *[]){ "--busy-poll-us", "0", NULL }), 0);
	assert_int_equal(o.busy_poll_us, 0);
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
		(const char *[]){ "--busy-poll-us", "-1", NULL },
		(const char *[]){ "--busy-poll-us", "100001", NULL },
		(const char *[]){ "--busy-poll-us", "50us", NULL },
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

	/* The command line wins over the file for busy polling too. */
	write_config("{ \"busy_poll_us\": 200 }");
	assert_int_equal(parse(&o, (const char *[]){ "--config", config_path, NULL }), 0);
	assert_int_equal(o.busy_poll_us, 200);
	options_free(&o);
	assert_int_equal(parse(&o, (const char *[]){ "--config", config_path, "--busy-poll-us", "7", NULL }), 0);
	assert_int_equal(o.busy_poll_us, 7);
	options_free(&o);

	/* Per-uid limits: defaults, and each key of "limits" on its own. */
	write_config("{ }");
	assert_int_equal(parse(&o, (const char *[]){ "--config", config_path, NULL }), 0);
	assert_int_equal(o.limits.connections, 128);
	assert_int_equal(o.limits.unauthenticated, 16);
	assert_int_equal(o.limits.hello_timeout_ms, 2000);
	assert_int_equal(o.limits.handles, 4096);
	assert_int_equal(o.limits.holders, 256);
	assert_int_equal(o.limits.pins, 4096);
	assert_int_equal(o.limits.inflight, 32);
	assert_int_equal(o.limits.reserved_admin, 16);
	assert_int_equal(o.limits.turn_requests, 1);
	assert_int_equal(o.limits.carves, 8);
	options_free(&o);
	write_config("{ \"limits\": { \"connections_per_uid\": 3, \"unauthenticated_per_uid\": 0,"
		     " \"hello_timeout_ms\": 50, \"handles_per_uid\": 5, \"holders_per_uid\": 6,"
		     " \"pins_per_uid\": 7, \"inflight_per_uid\": 8, \"reserved_admin_connections\": 9,"
		     " \"requests_per_turn\": 10, \"carves_per_uid\": 11 } }");
	assert_int_equal(parse(&o, (const char *[]){ "--config", config_path, NULL }), 0);
	assert_int_equal(o.limits.connections, 3);
	assert_int_equal(o.limits.unauthenticated, 0);
	assert_int_equal(o.limits.hello_timeout_ms, 50);
	assert_int_equal(o.limits.handles, 5);
	assert_int_equal(o.limits.holders, 6);
	assert_int_equal(o.limits.pins, 7);
	assert_int_equal(o.limits.inflight, 8);
	assert_int_equal(o.limits.reserved_admin, 9);
	assert_int_equal(o.limits.turn_requests, 10);
	assert_int_equal(o.limits.carves, 11);
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
		"{ \"busy_poll_us\": -1 }",
		"{ \"busy_poll_us\": 100001 }",
		"{ \"busy_poll_us\": \"fast\" }",
		"{ \"limits\": 5 }",
		"{ \"limits\": { \"connections\": 5 } }",
		"{ \"limits\": { \"connections_per_uid\": -1 } }",
		"{ \"limits\": { \"connections_per_uid\": \"many\" } }",
		"{ \"limits\": { \"hello_timeout_ms\": 10 } }",
		"{ \"limits\": { \"requests_per_turn\": 0 } }",
		"{ \"limits\": { \"reserved_admin_connections\": 65536 } }",
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

/* The device section: parsed into opts->device, devdax implied. */
static void test_device_section(void **state)
{
	static const uint8_t uuid[16] = { 0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef,
					  0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef };
	struct daxpoold_options o;

	write_config("{ \"device\": { \"provision\": { \"region\": \"region0\", \"size\": \"1G\", "
		     "\"align\": \"2M\", \"name\": \"pool-a\" }, \"allow_reconfigure_system_ram\": true } }");
	assert_int_equal(parse(&o, (const char *[]){ "--config", config_path, NULL }), 0);
	assert_int_equal(o.backend, BACKEND_DEVDAX);
	assert_true(o.device.set);
	assert_true(o.device.provision);
	assert_string_equal(o.device.region, "region0");
	assert_string_equal(o.device.name, "pool-a");
	assert_int_equal(o.device.size, 1u << 30);
	assert_int_equal(o.device.align, 2u << 20);
	assert_true(o.device.allow_reconfigure_system_ram);
	assert_null(o.device_path); /* found or created at start */
	assert_false(o.has_expected_uuid);
	assert_int_equal(o.format_if_empty, 0); /* only what provisioning owns is formatted */
	options_free(&o);

	/* Defaults: any region, the name "daxpool", no reconfiguration. */
	write_config("{ \"device\": { \"provision\": { \"size\": 2147483648, \"align\": \"1G\" } } }");
	assert_int_equal(parse(&o, (const char *[]){ "--config", config_path, NULL }), 0);
	assert_string_equal(o.device.region, "any");
	assert_string_equal(o.device.name, "daxpool");
	assert_int_equal(o.device.size, UINT64_C(2) << 30);
	assert_false(o.device.allow_reconfigure_system_ram);
	options_free(&o);

	/* The pool by UUID alone, and with provisioning. */
	write_config("{ \"device\": { \"uuid\": \"01234567-89ab-cdef-0123-456789abcdef\" } }");
	assert_int_equal(parse(&o, (const char *[]){ "--config", config_path, NULL }), 0);
	assert_true(o.has_expected_uuid);
	assert_memory_equal(o.expected_uuid, uuid, 16);
	assert_false(o.device.provision);
	assert_int_equal(o.backend, BACKEND_DEVDAX);
	options_free(&o);
	write_config("{ \"device\": { \"uuid\": \"0123456789abcdef0123456789abcdef\", "
		     "\"provision\": { \"size\": \"64M\", \"align\": \"4K\" } } }");
	assert_int_equal(parse(&o, (const char *[]){ "--config", config_path, NULL }), 0);
	assert_true(o.has_expected_uuid && o.device.provision);
	options_free(&o);

	/* An existing device by path, for a first format. */
	write_config("{ \"device\": { \"path\": \"/dev/dax1.0\", \"format_if_empty\": true } }");
	assert_int_equal(parse(&o, (const char *[]){ "--config", config_path, NULL }), 0);
	assert_string_equal(o.device_path, "/dev/dax1.0");
	assert_int_equal(o.format_if_empty, 1);
	assert_false(o.device.provision);
	options_free(&o);

	/* A backend on the command line replaces the device section as a whole. */
	write_config("{ \"device\": { \"provision\": { \"size\": \"1G\", \"align\": \"2M\" } } }");
	assert_int_equal(parse(&o, (const char *[]){ "--config", config_path, "--emulate", "/tmp/p",
						     "--size", "4M", "--page", "4K", NULL }), 0);
	assert_int_equal(o.backend, BACKEND_EMULATED);
	assert_false(o.device.set);
	assert_null(o.device.name);
	options_free(&o);
}

/* Runs options_parse on a config and returns what it wrote to stderr (the log). */
static int parse_capture(const char *json, char *out, size_t size)
{
	struct daxpoold_options o;
	char path[] = "/tmp/daxpool-test-log-XXXXXX";
	int fd = mkstemp(path), saved = dup(STDERR_FILENO), r;
	ssize_t n;

	assert_true(fd >= 0 && saved >= 0);
	write_config(json);
	fflush(stderr);
	dup2(fd, STDERR_FILENO);
	r = parse(&o, (const char *[]){ "--config", config_path, NULL });
	fflush(stderr);
	dup2(saved, STDERR_FILENO);
	close(saved);
	options_free(&o);
	n = pread(fd, out, size - 1, 0);
	out[n > 0 ? n : 0] = '\0';
	close(fd);
	unlink(path);
	return r;
}

/* Every invalid device section is refused with a message naming the key. */
static void test_bad_device_sections(void **state)
{
	static const struct {
		const char *json, *key;
	} bad[] = {
		{ "{ \"device\": 1 }", "\"device\" must be an object" },
		{ "{ \"device\": { } }", "\"device\" needs" },
		{ "{ \"device\": { \"colour\": 1 } }", "device.colour" },
		{ "{ \"device\": { \"uuid\": \"xyz\" } }", "device.uuid" },
		{ "{ \"device\": { \"uuid\": 7 } }", "device.uuid" },
		{ "{ \"device\": { \"path\": \"dax0.0\" } }", "device.path" },
		{ "{ \"device\": { \"path\": \"/dev/dax0.0\", \"provision\": { \"size\": \"1G\", \"align\": \"2M\" } } }",
		  "\"device.path\" and \"device.provision\"" },
		{ "{ \"device\": { \"uuid\": \"0123456789abcdef0123456789abcdef\", \"format_if_empty\": 1 } }",
		  "device.format_if_empty" },
		{ "{ \"device\": { \"provision\": { \"size\": \"1G\", \"align\": \"2M\" }, "
		  "\"allow_reconfigure_system_ram\": \"yes\" } }", "device.allow_reconfigure_system_ram" },
		{ "{ \"device\": { \"provision\": 5 } }", "device.provision" },
		{ "{ \"device\": { \"provision\": { \"size\": \"1G\" } } }", "device.provision.align" },
		{ "{ \"device\": { \"provision\": { \"align\": \"2M\" } } }", "device.provision.size" },
		{ "{ \"device\": { \"provision\": { \"size\": \"3M\", \"align\": \"2M\" } } }", "device.provision.size" },
		{ "{ \"device\": { \"provision\": { \"size\": -1, \"align\": \"2M\" } } }", "device.provision.size" },
		{ "{ \"device\": { \"provision\": { \"size\": \"1G\", \"align\": \"64K\" } } }", "device.provision.align" },
		{ "{ \"device\": { \"provision\": { \"size\": \"1G\", \"align\": 2097152 } } }", "device.provision.align" },
		{ "{ \"device\": { \"provision\": { \"size\": \"1G\", \"align\": \"2M\", \"region\": \"disk0\" } } }",
		  "device.provision.region" },
		{ "{ \"device\": { \"provision\": { \"size\": \"1G\", \"align\": \"2M\", \"name\": \"\" } } }",
		  "device.provision.name" },
		{ "{ \"device\": { \"provision\": { \"size\": \"1G\", \"align\": \"2M\", \"name\": \"my pool\" } } }",
		  "device.provision.name" },
		{ "{ \"device\": { \"provision\": { \"size\": \"1G\", \"align\": \"2M\", \"spare\": 1 } } }",
		  "device.provision.spare" },
		{ "{ \"backend\": { \"type\": \"devdax\", \"device\": \"/dev/dax0.0\" }, "
		  "\"device\": { \"path\": \"/dev/dax0.0\" } }", "\"backend\" and \"device\"" },
	};
	char msg[4096];

	log_set_max_level(LOG_ERR);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		if (parse_capture(bad[i].json, msg, sizeof(msg)) >= 0)
			fail_msg("config accepted: %s", bad[i].json);
		if (!strstr(msg, bad[i].key))
			fail_msg("config %s: the message does not name %s: %s", bad[i].json, bad[i].key, msg);
	}
	log_set_max_level(LOG_EMERG);
}

/* The namespace size for a usable size: the kernel's info block + page map in front. */
static void test_provision_size(void **state)
{
	const uint64_t M = 1u << 20, G = 1u << 30;

	/* 1G alignment: the page map takes a whole unit (a 2G namespace gives 1G, docs/LAB.md). */
	assert_int_equal(provision_namespace_size(G, G, 16 * M), 2 * G);
	/* 2M: 8K + 64 B per 4K page of ~1G = 16.3M, padded to 18M; 1040M would give 1022M. */
	assert_int_equal(provision_namespace_size(G, 2 * M, 16 * M), 1056 * M);
	assert_int_equal(provision_namespace_size(G, 4096, 16 * M), 1056 * M);
	/* The region's unit rounds up: a 128M unit. */
	assert_int_equal(provision_namespace_size(G, 2 * M, 128 * M), 1152 * M);
	/* Already a multiple with room: 64M usable at 2M -> 2M of page map -> 80M (16M unit). */
	assert_int_equal(provision_namespace_size(64 * M, 2 * M, 16 * M), 80 * M);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_defaults_and_flags),
		cmocka_unit_test(test_bad_flags),
		cmocka_unit_test(test_config_file),
		cmocka_unit_test(test_bad_config_files),
		cmocka_unit_test(test_device_section),
		cmocka_unit_test(test_bad_device_sections),
		cmocka_unit_test(test_provision_size),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
