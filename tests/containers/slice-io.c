/*
 * slice-io: the container tests' client. It reaches daxpoold only the way an application in a
 * container does, through libdaxpool and the environment a CDI device sets ($DAXPOOL_SOCKET,
 * read by libdaxpool, and $DAXPOOL_SLICE).
 *
 *   slice-io write NAME TEXT   opens NAME read-write, stores TEXT (NUL-terminated) at offset 0
 *   slice-io read [NAME]       opens NAME (default $DAXPOOL_SLICE) read-write, prints
 *                              "slice NAME: TEXT" for the text at offset 0 and stores
 *                              "container read: TEXT" at offset 4096
 *   slice-io reply NAME        prints the text at offset 4096
 *   slice-io ping              connects, prints "daemon VERSION pid PID slice SLICE|(none)"
 *
 * Exit status 0, or 1 with the reason on stderr.
 */
#include "daxpool.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define REPLY_OFFSET 4096
#define TEXT_MAX 1024

static int fail(const char *what)
{
	fprintf(stderr, "slice-io: %s: %s\n", what, daxpool_errormsg());
	return 1;
}

static char *map_slice(struct daxpool_slice *s)
{
	void *p = NULL;

	if (daxpool_map(s, 0, &p) < 0) {
		fail("map");
		return NULL;
	}
	return p;
}

static void put_text(char *dst, const char *prefix, const char *text)
{
	int room = TEXT_MAX - 1 - (int)strlen(prefix);

	snprintf(dst, TEXT_MAX, "%s%.*s", prefix, room, text);
}

int main(int argc, char **argv)
{
	struct daxpool *dp = NULL;
	struct daxpool_slice *s = NULL;
	const char *mode = argc > 1 ? argv[1] : "";
	const char *name = argc > 2 ? argv[2] : getenv("DAXPOOL_SLICE");
	char *map, text[TEXT_MAX];
	int r;

	if (strcmp(mode, "write") && strcmp(mode, "read") && strcmp(mode, "reply") &&
	    strcmp(mode, "ping")) {
		fprintf(stderr, "usage: slice-io write NAME TEXT | read [NAME] | reply NAME | ping\n");
		return 2;
	}
	if (daxpool_connect(NULL, &dp) < 0)
		return fail("connect");
	if (strcmp(mode, "ping") == 0) {
		struct daxpool_status *st = NULL;

		if (daxpool_status(dp, &st) < 0)
			return fail("status");
		printf("daemon %s pid %u slice %s\n", daxpool_status_get_version(st),
		       (unsigned)daxpool_status_get_pid(st), getenv("DAXPOOL_SLICE") ?
		       getenv("DAXPOOL_SLICE") : "(none)");
		daxpool_status_delete(&st);
		daxpool_disconnect(&dp);
		return 0;
	}
	if (!name || !*name || (strcmp(mode, "write") == 0 && argc < 4)) {
		fprintf(stderr, "slice-io: no slice name (argument or $DAXPOOL_SLICE)\n");
		return 2;
	}
	r = daxpool_open(dp, name, DAXPOOL_OPEN_RDWR, &s);
	if (r < 0)
		return fail(name);
	if (daxpool_slice_get_length(s) < REPLY_OFFSET + TEXT_MAX) {
		fprintf(stderr, "slice-io: %s is too small\n", name);
		return 1;
	}
	map = map_slice(s);
	if (!map)
		return 1;
	if (strcmp(mode, "write") == 0) {
		put_text(map, "", argv[3]);
		memset(map + REPLY_OFFSET, 0, TEXT_MAX);
	} else if (strcmp(mode, "read") == 0) {
		snprintf(text, sizeof(text), "%.*s", TEXT_MAX - 1, map);
		printf("slice %s: %s\n", name, text);
		put_text(map + REPLY_OFFSET, "container read: ", text);
	} else {
		printf("%.*s\n", TEXT_MAX - 1, map + REPLY_OFFSET);
	}
	if (daxpool_persist(s, map, TEXT_MAX + REPLY_OFFSET) < 0)
		return fail("persist");
	daxpool_unmap(s);
	if (daxpool_close(dp, &s) < 0)
		return fail("close");
	daxpool_disconnect(&dp);
	return 0;
}
