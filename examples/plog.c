/*
 * plog: a persistent append-only log on a named slice that survives SIGKILL of the writer and
 * restarts of daxpoold. Each record is written and persisted, then the tail index that commits
 * it is stored and persisted, and only then is "ack SEQ" printed: every acknowledged record is
 * on the slice for good (format: plog.h; verify with plog-check).
 *
 *   plog [--socket PATH] [--slice NAME] [--size BYTES] [--count N] [--delay-us US]
 * Exit: 0 after --count records, 3 when the log is full, 1 on errors.
 */
#include "daxpool.h"
#include "plog.h"

#include <errno.h>
#include <getopt.h>
#include <stdlib.h>
#include <unistd.h>

static int fail(const char *what)
{
	fprintf(stderr, "plog: %s: %s\n", what, daxpool_errormsg());
	return 1;
}

/* The next sequence number: one past the last committed record (plog-check verifies them). */
static uint64_t next_seq(const struct plog_header *h, const uint8_t *area)
{
	uint64_t seq = 0;

	for (uint64_t off = 0; off < h->tail;) {
		const struct plog_record *rec = (const void *)(area + off);

		seq = rec->seq;
		off += plog_align8(sizeof(*rec) + rec->len);
	}
	return seq + 1;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "socket", required_argument, NULL, 's' }, { "slice", required_argument, NULL, 'n' },
		{ "size", required_argument, NULL, 'S' },   { "count", required_argument, NULL, 'c' },
		{ "delay-us", required_argument, NULL, 'd' }, {}
	};
	const char *socket_path = NULL, *name = "plog";
	uint64_t size = 8 << 20, count = UINT64_MAX, delay_us = 0;
	struct daxpool *dp = NULL;
	struct daxpool_slice *s = NULL;
	struct plog_header *h;
	uint8_t *base, *area;
	int c, r;

	while ((c = getopt_long(argc, argv, "s:n:S:c:d:", opts, NULL)) != -1) {
		switch (c) {
		case 's': socket_path = optarg; break;
		case 'n': name = optarg; break;
		case 'S': size = strtoull(optarg, NULL, 0); break;
		case 'c': count = strtoull(optarg, NULL, 0); break;
		case 'd': delay_us = strtoull(optarg, NULL, 0); break;
		default:
			fprintf(stderr, "usage: plog [--socket PATH] [--slice NAME] [--size BYTES] "
					"[--count N] [--delay-us US]\n");
			return 2;
		}
	}
	if (daxpool_connect(socket_path, &dp) < 0)
		return fail("connect");
	r = daxpool_open(dp, name, DAXPOOL_OPEN_RDWR, &s);
	if (r == -ENOENT)
		r = daxpool_alloc(dp, name, size, DAXPOOL_ALIGN_2M, 0644, 0, &s);
	if (r < 0)
		return fail("slice");
	if (daxpool_map(s, 0, (void **)&base) < 0)
		return fail("map");
	h = (struct plog_header *)base;
	area = base + PLOG_HEADER;
	if (memcmp(h->magic, PLOG_MAGIC, sizeof(h->magic)) != 0) {
		/* New (zeroed) slice, or a crash during this very set-up: (re)initialise; the magic
		 * goes last and makes the header valid. */
		h->version = 1;
		h->capacity = daxpool_slice_get_length(s) - PLOG_HEADER;
		h->tail = 0;
		if (daxpool_persist(s, h, sizeof(*h)) < 0)
			return fail("persist header");
		memcpy(h->magic, PLOG_MAGIC, sizeof(h->magic));
		if (daxpool_persist(s, h->magic, sizeof(h->magic)) < 0)
			return fail("persist header");
	}
	setvbuf(stdout, NULL, _IOLBF, 0);
	for (uint64_t seq = next_seq(h, area), done = 0; done < count; seq++, done++) {
		char payload[256];
		struct plog_record rec = { .seq = seq };
		uint64_t off = h->tail, need;

		rec.len = plog_payload(seq, payload, sizeof(payload));
		need = plog_align8(sizeof(rec) + rec.len);
		if (off + need > h->capacity) {
			fprintf(stderr, "plog: the log is full after record %llu\n",
				(unsigned long long)(seq - 1));
			daxpool_close(dp, &s);
			daxpool_disconnect(&dp);
			return 3;
		}
		rec.hash = plog_hash(&rec, payload);
		memcpy(area + off + sizeof(rec), payload, rec.len);
		memcpy(area + off, &rec, sizeof(rec));
		/* 1. the record is persistent, 2. the tail that commits it, 3. only then the ack */
		if (daxpool_persist(s, area + off, need) < 0)
			return fail("persist record");
		__atomic_store_n(&h->tail, off + need, __ATOMIC_RELEASE);
		if (daxpool_persist(s, &h->tail, sizeof(h->tail)) < 0)
			return fail("persist tail");
		printf("ack %llu\n", (unsigned long long)seq);
		if (delay_us)
			usleep((useconds_t)delay_us);
	}
	daxpool_close(dp, &s);
	daxpool_disconnect(&dp);
	return 0;
}
