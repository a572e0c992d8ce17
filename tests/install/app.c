/*
 * The smallest application of tests/install/check-prefix.sh, built against an installed
 * libdaxpool with nothing but `pkg-config --cflags --libs daxpool`: allocates a named 4K slice,
 * maps it, writes and persists a line, and reads it back after opening the slice again.
 *
 *   app SOCKET
 */
#include <daxpool.h>

#include <errno.h>
#include <stdio.h>
#include <string.h>

static int fail(const char *what)
{
	fprintf(stderr, "app: %s: %s\n", what, daxpool_errormsg());
	return 1;
}

int main(int argc, char **argv)
{
	static const char text[] = "written through an installed libdaxpool";
	struct daxpool *dp = NULL;
	struct daxpool_slice *s = NULL;
	char *p;

	if (argc != 2) {
		fprintf(stderr, "usage: app SOCKET\n");
		return 2;
	}
	if (daxpool_connect(argv[1], &dp) < 0)
		return fail("connect");
	if (daxpool_alloc(dp, "install-app", 4096, DAXPOOL_ALIGN_4K, 0600, 0, &s) < 0)
		return fail("alloc");
	if (daxpool_map(s, 0, (void **)&p) < 0)
		return fail("map");
	memcpy(p, text, sizeof(text));
	if (daxpool_persist(s, p, sizeof(text)) < 0)
		return fail("persist");
	if (daxpool_close(dp, &s) < 0)
		return fail("close");
	if (daxpool_open(dp, "install-app", DAXPOOL_OPEN_RDWR, &s) < 0)
		return fail("open");
	if (daxpool_map(s, 0, (void **)&p) < 0)
		return fail("map again");
	if (memcmp(p, text, sizeof(text)) != 0) {
		fprintf(stderr, "app: the slice does not hold what was written\n");
		return 1;
	}
	if (daxpool_free(dp, &s) < 0)
		return fail("free");
	daxpool_disconnect(&dp);
	printf("app: libdaxpool %s: alloc, map, persist, open, free OK\n", daxpool_version());
	return 0;
}
