/*
 * hello: the smallest libdaxpool program. Opens (or allocates) the named 2M slice "hello",
 * maps it, prints the greeting the previous run left there, writes a new one and persists it.
 * Run it twice (or restart daxpoold in between): the second run prints the first one's words.
 *
 *   hello [--socket PATH] [--name SLICE]
 */
#include "daxpool.h"

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define HELLO_MAGIC "dxphello"

struct greeting {
	char magic[8];
	char text[248];
};

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "socket", required_argument, NULL, 's' },
		{ "name", required_argument, NULL, 'n' },
		{ "help", no_argument, NULL, 'h' },
		{}
	};
	const char *socket_path = NULL, *name = "hello";
	struct daxpool *dp = NULL;
	struct daxpool_slice *s = NULL;
	struct greeting *g;
	char when[64];
	time_t now = time(NULL);
	int c, r;

	while ((c = getopt_long(argc, argv, "s:n:h", opts, NULL)) != -1) {
		switch (c) {
		case 's': socket_path = optarg; break;
		case 'n': name = optarg; break;
		default:
			fprintf(stderr, "usage: %s [--socket PATH] [--name SLICE]\n", argv[0]);
			return c == 'h' ? 0 : 2;
		}
	}
	r = daxpool_connect(socket_path, &dp);
	if (r < 0) {
		fprintf(stderr, "hello: connect: %s\n", daxpool_errormsg());
		return 1;
	}
	r = daxpool_open(dp, name, DAXPOOL_OPEN_RDWR, &s);
	if (r == -ENOENT)
		r = daxpool_alloc(dp, name, 2 << 20, DAXPOOL_ALIGN_2M, 0600, 0, &s);
	if (r >= 0)
		r = daxpool_map(s, 0, (void **)&g);
	if (r < 0) {
		fprintf(stderr, "hello: slice \"%s\": %s\n", name, daxpool_errormsg());
		daxpool_close(dp, &s);
		daxpool_disconnect(&dp);
		return 1;
	}
	if (memcmp(g->magic, HELLO_MAGIC, sizeof(g->magic)) == 0)
		printf("read back: %.*s\n", (int)sizeof(g->text), g->text);
	else
		printf("no greeting yet in slice \"%s\"\n", name);

	strftime(when, sizeof(when), "%Y-%m-%d %H:%M:%S", gmtime(&now));
	snprintf(g->text, sizeof(g->text), "hello from pid %d at %s UTC", (int)getpid(), when);
	/* The text first, then the magic that makes it valid: a crash between the two leaves the
	 * old greeting or none, never a torn one marked valid. */
	r = daxpool_persist(s, g->text, sizeof(g->text));
	if (r >= 0) {
		memcpy(g->magic, HELLO_MAGIC, sizeof(g->magic));
		r = daxpool_persist(s, g->magic, sizeof(g->magic));
	}
	if (r < 0)
		fprintf(stderr, "hello: persist: %s\n", daxpool_errormsg());
	else
		printf("stored: %s\n", g->text);
	daxpool_close(dp, &s); /* unmaps */
	daxpool_disconnect(&dp);
	return r < 0;
}
