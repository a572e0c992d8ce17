/* daxpoolctl end to end: alloc, list, show, free, stats against a daxpoold on an emulated pool;
 * format and fsck on pool files; table and JSON output, exit codes and error messages. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "daxpool.h"
#include "harness.h"

#include <errno.h>
#include <fcntl.h>
#include <json-c/json.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

static struct test_pool_daemon pool_daemon; /* its dir holds our scratch files too */
static char out[65536], err[8192];

/* Runs daxpoolctl --socket S ARGS... (NULL-terminated), capturing stdout and stderr; returns the
 * exit status. */
static int ctl(const char *first, ...)
{
	const char *argv[32];
	char opath[160], epath[160];
	int argc = 0, status, fd;
	va_list ap;
	pid_t pid;
	ssize_t n;

	argv[argc++] = DAXPOOLCTL_PATH;
	argv[argc++] = "--socket";
	argv[argc++] = pool_daemon.d.socket;
	va_start(ap, first);
	for (const char *a = first; a && argc < 31; a = va_arg(ap, const char *))
		argv[argc++] = a;
	va_end(ap);
	argv[argc] = NULL;
	snprintf(opath, sizeof(opath), "%s/out", pool_daemon.dir);
	snprintf(epath, sizeof(epath), "%s/err", pool_daemon.dir);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		int o = open(opath, O_WRONLY | O_CREAT | O_TRUNC, 0600);
		int e = open(epath, O_WRONLY | O_CREAT | O_TRUNC, 0600);
		dup2(o, STDOUT_FILENO);
		dup2(e, STDERR_FILENO);
		execv(argv[0], (char **)argv);
		_exit(127);
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	fd = open(opath, O_RDONLY);
	n = read(fd, out, sizeof(out) - 1);
	out[n > 0 ? n : 0] = '\0';
	close(fd);
	fd = open(epath, O_RDONLY);
	n = read(fd, err, sizeof(err) - 1);
	err[n > 0 ? n : 0] = '\0';
	close(fd);
	assert_true(WIFEXITED(status));
	return WEXITSTATUS(status);
}

static struct json_object *parse_out(void)
{
	struct json_object *o = json_tokener_parse(out);

	if (!o)
		fail_msg("not JSON: %s", out);
	return o;
}

static uint64_t jget_u64(struct json_object *o, const char *key)
{
	struct json_object *v;

	if (!json_object_object_get_ex(o, key, &v))
		fail_msg("no field %s", key);
	return json_object_get_uint64(v);
}

static const char *jget_str(struct json_object *o, const char *key)
{
	struct json_object *v;

	if (!json_object_object_get_ex(o, key, &v))
		fail_msg("no field %s", key);
	return json_object_get_string(v);
}

/* settle: waits for freed slices to be reusable; says what still waits when it gives up; a
 * progress line on a terminal only. */
static void test_settle(void **state)
{
	int ready[2], status;
	char c = 0;
	pid_t pid;

	(void)state;
	assert_int_equal(ctl("settle", NULL), 0);
	assert_non_null(strstr(out, "settled in"));

	/* A child maps a slice and keeps it; we free it: it waits for the child. */
	assert_int_equal(pipe(ready), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		struct daxpool *dp = NULL;
		struct daxpool_slice *s = NULL;
		void *p;

		if (daxpool_connect(pool_daemon.d.socket, &dp) < 0 ||
		    daxpool_alloc(dp, "settle-held", 1 << 20, DAXPOOL_ALIGN_4K, 0600, 0, &s) < 0 ||
		    daxpool_map(s, 0, &p) < 0)
			_exit(1);
		(void)!write(ready[1], "y", 1);
		pause();
		_exit(0);
	}
	close(ready[1]);
	assert_int_equal(read(ready[0], &c, 1), 1);
	assert_int_equal(c, 'y');
	close(ready[0]);
	assert_int_equal(ctl("free", "settle-held", NULL), 0);

	assert_int_equal(ctl("settle", "--timeout", "0.5", NULL), 1);
	assert_non_null(strstr(err, "not settled after"));
	assert_non_null(strstr(err, "1 freed slice waiting for holders or pins"));
	assert_int_equal(ctl("--json", "settle", "--timeout", "0.2", NULL), 1);
	struct json_object *o = parse_out();
	struct json_object *v;
	assert_true(json_object_object_get_ex(o, "settled", &v) && !json_object_get_boolean(v));
	assert_int_equal(jget_u64(o, "leases_waiting"), 1);
	json_object_put(o);
	assert_int_equal(ctl("settle", "--timeout", "x", NULL), 2);

	/* On a terminal (script(1)): the progress line names what waits, and is erased. */
	if (system("command -v script >/dev/null 2>&1") == 0) {
		char cmd[1024], path[200], buf[4096] = "";
		snprintf(path, sizeof(path), "%s/settle.tty", pool_daemon.dir);
		snprintf(cmd, sizeof(cmd),
			 "DAXPOOL_PROGRESS_DELAY_MS=0 script -qec '%s --socket %s settle --timeout 0.6' "
			 "/dev/null >%s 2>&1",
			 DAXPOOLCTL_PATH, pool_daemon.d.socket, path);
		(void)!system(cmd);
		FILE *f = fopen(path, "r");
		assert_non_null(f);
		size_t n = fread(buf, 1, sizeof(buf) - 1, f);
		buf[n] = '\0';
		fclose(f);
		if (!strstr(buf, "settle: ") || !strstr(buf, "1 freed slice waits for holders or pins"))
			fail_msg("no progress line on a terminal: %s", buf);
		if (!strstr(buf, "\r\033[K"))
			fail_msg("the progress line was not erased: %s", buf);
	} else {
		print_message("progress line not checked: script(1) is not installed (bsdutils)\n");
	}

	kill(pid, SIGKILL);
	waitpid(pid, &status, 0);
	assert_int_equal(ctl("settle", "--timeout", "30", NULL), 0);
	assert_non_null(strstr(out, "settled in"));
	assert_int_equal(ctl("--json", "settle", NULL), 0);
	o = parse_out();
	assert_true(json_object_object_get_ex(o, "settled", &v) && json_object_get_boolean(v));
	json_object_put(o);
}

static int setup(void **state)
{
	return test_pool_daemon_start(&pool_daemon, "ctl", "256M") < 0 ? -1 : 0;
}

static int teardown(void **state)
{
	return test_pool_daemon_stop(&pool_daemon) == 0 ? 0 : -1;
}

static void test_alloc_show_list_free(void **state)
{
	struct json_object *o, *a;

	assert_int_equal(ctl("alloc", "ctl-a", "--size", "1M", "--align", "4K", "--owner", "65534:65534",
			     "--mode", "0640", NULL), 0);
	assert_non_null(strstr(out, "name:    ctl-a\n"));
	assert_non_null(strstr(out, "length:  1 MiB (1048576 bytes)\n"));
	assert_non_null(strstr(out, "mode:    0640\n"));

	/* rounded up to the alignment; JSON from alloc */
	assert_int_equal(ctl("--json", "alloc", "ctl-b", "--size", "3M", "--align", "2M", NULL), 0);
	o = parse_out();
	assert_string_equal(jget_str(o, "name"), "ctl-b");
	assert_int_equal(jget_u64(o, "length"), 4u << 20);
	assert_string_equal(jget_str(o, "align"), "2M");
	assert_int_equal(jget_u64(o, "offset") % (2u << 20), 0);
	assert_int_equal(jget_u64(o, "uid"), getuid());
	assert_string_equal(jget_str(o, "mode"), "0600");
	json_object_put(o);

	assert_int_equal(ctl("show", "ctl-a", "--json", NULL), 0);
	o = parse_out();
	assert_string_equal(jget_str(o, "name"), "ctl-a");
	assert_int_equal(jget_u64(o, "uid"), 65534);
	assert_int_equal(jget_u64(o, "gid"), 65534);
	assert_string_equal(jget_str(o, "mode"), "0640");
	assert_false(json_object_get_boolean(json_object_object_get(o, "anonymous")));
	json_object_put(o);

	assert_int_equal(ctl("list", NULL), 0);
	assert_non_null(strstr(out, "NAME"));
	assert_non_null(strstr(out, "ctl-a"));
	assert_non_null(strstr(out, "ctl-b"));

	assert_int_equal(ctl("--json", "list", "--name", "ctl-[a]", NULL), 0);
	a = parse_out();
	assert_int_equal(json_object_array_length(a), 1);
	assert_string_equal(jget_str(json_object_array_get_idx(a, 0), "name"), "ctl-a");
	json_object_put(a);

	assert_int_equal(ctl("--json", "list", "--owner", "65534", NULL), 0);
	a = parse_out();
	assert_int_equal(json_object_array_length(a), 1);
	json_object_put(a);
	assert_int_equal(ctl("--json", "list", "--owner", "root", "--name", "ctl-*", NULL), 0);
	a = parse_out();
	assert_int_equal(json_object_array_length(a), 1);
	assert_string_equal(jget_str(json_object_array_get_idx(a, 0), "name"), "ctl-b");
	json_object_put(a);

	assert_int_equal(ctl("alloc", "ctl-a", "--size", "4K", "--align", "4K", NULL), 1);
	assert_non_null(strstr(err, "ctl-a"));

	assert_int_equal(ctl("free", "ctl-a", NULL), 0);
	assert_string_equal(out, "freed ctl-a\n");
	assert_int_equal(ctl("--json", "free", "ctl-b", NULL), 0);
	o = parse_out();
	assert_true(json_object_get_boolean(json_object_object_get(o, "freed")));
	json_object_put(o);

	assert_int_equal(ctl("show", "ctl-a", NULL), 1);
	assert_non_null(strstr(err, "no slice named \"ctl-a\""));
	assert_int_equal(ctl("free", "ctl-a", NULL), 1);
	assert_non_null(strstr(err, "no slice named \"ctl-a\""));
	assert_int_equal(ctl("list", "--name", "ctl-*", NULL), 0);
	assert_string_equal(out, "no slices\n");
}

static void test_stats(void **state)
{
	struct json_object *o, *c;
	uint64_t slices_before;

	/* freed slices of the test before may still be counted while their extent is zeroed */
	assert_int_equal(ctl("--json", "stats", NULL), 0);
	o = parse_out();
	slices_before = jget_u64(o, "slices");
	json_object_put(o);
	assert_int_equal(ctl("alloc", "ctl-s", "--size", "2M", "--align", "2M", NULL), 0);
	assert_int_equal(ctl("--json", "stats", NULL), 0);
	o = parse_out();
	assert_int_equal(jget_u64(o, "pool_size"), 256u << 20);
	assert_true(jget_u64(o, "allocated_bytes") >= 2u << 20);
	assert_true(jget_u64(o, "slices") >= 1 && jget_u64(o, "slices") <= slices_before + 1);
	assert_int_equal(jget_u64(o, "badblocks"), 0);
	assert_string_equal(jget_str(o, "backend"), "emulated");
	assert_int_equal(strlen(jget_str(o, "uuid")), 36);
	assert_true(json_object_object_get_ex(o, "free_bytes", &c));
	assert_true(jget_u64(c, "4K") > 0);
	assert_int_equal(jget_u64(c, "1G"), 0);
	assert_true(json_object_object_get_ex(o, "largest_free", &c));
	assert_true(jget_u64(c, "2M") > 0);
	for (const char *const *k = (const char *const[]){ "data_size", "device_align", "fragmentation",
							   "anonymous_slices", "table_capacity", "quarantined",
							   "badblock_bytes", "zeroing_pending_bytes",
							   "zeroed_bytes_total", "pins", "leases_waiting", NULL };
	     *k; k++)
		assert_true(json_object_object_get_ex(o, *k, NULL));
	json_object_put(o);

	assert_int_equal(ctl("stats", NULL), 0);
	assert_non_null(strstr(out, "size:                  256 MiB"));
	assert_non_null(strstr(out, "free at 2M:"));
	assert_non_null(strstr(out, "fragmentation:"));
	assert_non_null(strstr(out, "slices:   "));
	assert_non_null(strstr(out, "quarantined; table"));
	assert_int_equal(ctl("free", "ctl-s", NULL), 0);
}

static void test_usage_errors(void **state)
{
	assert_int_equal(ctl("alloc", "x", "--size", "0", "--align", "4K", NULL), 2);
	assert_non_null(strstr(err, "--size"));
	assert_int_equal(ctl("alloc", "x", "--size", "12Q", "--align", "4K", NULL), 2);
	assert_non_null(strstr(err, "--size: \"12Q\" is not a size"));
	assert_int_equal(ctl("alloc", "x", "--size", "1M", "--align", "8K", NULL), 2);
	assert_non_null(strstr(err, "--align: \"8K\" is not an alignment"));
	assert_int_equal(ctl("alloc", "x", "--size", "1M", NULL), 2);
	assert_non_null(strstr(err, "--size and --align are required"));
	assert_int_equal(ctl("alloc", "x", "--size", "1M", "--align", "4K", "--owner", "no-such-user-x", NULL), 2);
	assert_non_null(strstr(err, "unknown user \"no-such-user-x\""));
	assert_int_equal(ctl("alloc", "x", "--size", "1M", "--align", "4K", "--owner", "0:no-such-group-x", NULL), 2);
	assert_non_null(strstr(err, "unknown group \"no-such-group-x\""));
	assert_int_equal(ctl("alloc", "x", "--size", "1M", "--align", "4K", "--mode", "0999", NULL), 2);
	assert_non_null(strstr(err, "--mode"));
	assert_int_equal(ctl("alloc", ".hidden", "--size", "1M", "--align", "4K", NULL), 2);
	assert_int_equal(ctl("alloc", "a/b", "--size", "1M", "--align", "4K", NULL), 2);
	assert_int_equal(ctl("alloc", "x", "--size", "1M", "--align", "4K", "--frob", NULL), 2);
	assert_non_null(strstr(err, "unknown option --frob"));
	assert_int_equal(ctl("alloc", "x", "--size", NULL), 2);
	assert_non_null(strstr(err, "--size needs a value"));
	assert_int_equal(ctl("alloc", "--size", "1M", "--align", "4K", NULL), 2);
	assert_non_null(strstr(err, "missing argument"));
	assert_int_equal(ctl("show", NULL), 2);
	assert_int_equal(ctl("show", "a", "b", NULL), 2);
	assert_int_equal(ctl("stats", "x", NULL), 2);
	assert_int_equal(ctl("list", "--owner", "no-such-user-x", NULL), 2);
	assert_int_equal(ctl("create", "--region", "0", "--size", "3M", "--align", "2M", NULL), 2);
	assert_non_null(strstr(err, "not a multiple of the --align 2M"));
	assert_int_equal(ctl("create", "--size", "4M", "--align", "2M", NULL), 2);
	assert_int_equal(ctl("fsck", NULL), 2);
	assert_int_equal(ctl("format", "a", "b", NULL), 2);

	/* daemon unreachable: 3 */
	{
		char saved[sizeof(pool_daemon.d.socket)];
		strcpy(saved, pool_daemon.d.socket);
		strcpy(pool_daemon.d.socket, "/nonexistent/daxpool.sock");
		assert_int_equal(ctl("list", NULL), 3);
		assert_int_equal(ctl("stats", NULL), 3);
		strcpy(pool_daemon.d.socket, saved);
	}

	/* help for every command */
	for (const char *const *c = (const char *const[]){ "alloc", "list", "show", "free", "stats",
							   "format", "fsck", "regions", "devices",
							   "create", "destroy", NULL };
	     *c; c++) {
		assert_int_equal(ctl("help", *c, NULL), 0);
		assert_non_null(strstr(out, "daxpoolctl"));
		assert_int_equal(ctl(*c, "--help", NULL), 0);
	}
}

/* Writes one byte at off of path. */
static void poke(const char *path, off_t off, unsigned char byte)
{
	int fd = open(path, O_RDWR);

	assert_true(fd >= 0);
	assert_int_equal(pwrite(fd, &byte, 1, off), 1);
	close(fd);
}

static void test_format_fsck(void **state)
{
	char file[160];
	struct json_object *o;
	int fd;

	/* the daemon's pool is in use: format and fsck --repair refuse, even with --force, naming
	 * the daemon; fsck only reads, and says so */
	char who[64];

	snprintf(who, sizeof(who), "in use by pid %d (" /* its command: daxpoold, or valgrind's */, (int)pool_daemon.d.pid);
	assert_int_equal(ctl("format", "--force", pool_daemon.pool, NULL), 1);
	assert_non_null(strstr(err, who));
	assert_int_equal(ctl("fsck", "--repair", pool_daemon.pool, NULL), 1);
	assert_non_null(strstr(err, who));
	assert_int_equal(ctl("fsck", pool_daemon.pool, NULL), 0);
	assert_non_null(strstr(err, who));

	snprintf(file, sizeof(file), "%s/offline", pool_daemon.dir);
	fd = open(file, O_RDWR | O_CREAT | O_TRUNC, 0600);
	assert_true(fd >= 0);
	assert_int_equal(ftruncate(fd, 64 << 20), 0);
	close(fd);

	assert_int_equal(ctl("fsck", file, NULL), 1);
	assert_non_null(strstr(err, "holds no daxpool pool"));
	assert_int_equal(ctl("format", file, NULL), 0);
	assert_non_null(strstr(out, "formatted"));
	assert_int_equal(ctl("format", file, NULL), 1);
	assert_non_null(strstr(err, "already holds a daxpool pool"));
	assert_int_equal(ctl("format", "--force", file, NULL), 0);

	assert_int_equal(ctl("--json", "fsck", file, NULL), 0);
	o = parse_out();
	assert_string_equal(jget_str(o, "result"), "clean");
	json_object_put(o);

	/* superblock copy B (offset 4096): repairable, then repaired, then clean */
	poke(file, 4096 + 20, 0xa5);
	assert_int_equal(ctl("fsck", file, NULL), 5);
	assert_non_null(strstr(out, "repairable"));
	assert_int_equal(ctl("--json", "fsck", "--repair", file, NULL), 4);
	o = parse_out();
	assert_string_equal(jget_str(o, "result"), "repaired");
	assert_non_null(strstr(jget_str(o, "findings"), "superblock copy B"));
	json_object_put(o);
	assert_int_equal(ctl("fsck", file, NULL), 0);

	/* a record (the table starts at 12288): damaged, and --repair does not guess */
	poke(file, 12288 + 5, 0xff);
	assert_int_equal(ctl("fsck", file, NULL), 6);
	assert_non_null(strstr(out, "damaged"));
	assert_non_null(strstr(out, "record 0"));
	assert_int_equal(ctl("fsck", "--repair", file, NULL), 6);

	/* neither a device nor a regular file */
	assert_int_equal(ctl("format", "/dev/null", NULL), 2);
	assert_non_null(strstr(err, "neither a device-dax character device nor a regular file"));
	assert_int_equal(ctl("format", pool_daemon.dir, NULL), 1);
	assert_non_null(strstr(err, "cannot open"));
	assert_int_equal(ctl("fsck", "/nonexistent/pool", NULL), 1);
	assert_non_null(strstr(err, "cannot open /nonexistent/pool"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_alloc_show_list_free),
		cmocka_unit_test(test_stats),
		cmocka_unit_test(test_usage_errors),
		cmocka_unit_test(test_format_fsck),
		cmocka_unit_test(test_settle),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
