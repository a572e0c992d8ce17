/*
 * plog-check: verifies a plog slice (plog.h) read-only: every committed record is present in
 * order (seq 1..N without gaps), its hash matches and its payload is the one plog wrote; with
 * --acked A, also that N >= A, i.e. no acknowledged record was lost.
 *
 *   plog-check [--socket PATH] [--slice NAME] [--acked A]
 * Prints "plog-check: N records intact ..." and exits 0, or names the first bad record and
 * exits 1 (2 on usage or connection errors).
 */
#include "daxpool.h"
#include "plog.h"

#include <errno.h>
#include <getopt.h>
#include <stdlib.h>

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "socket", required_argument, NULL, 's' }, { "slice", required_argument, NULL, 'n' },
		{ "acked", required_argument, NULL, 'a' }, {}
	};
	const char *socket_path = NULL, *name = "plog";
	uint64_t acked = 0, seq = 0, off = 0;
	struct daxpool *dp = NULL;
	struct daxpool_slice *s = NULL;
	const struct plog_header *h;
	const uint8_t *base, *area;
	int c, bad = 0;

	while ((c = getopt_long(argc, argv, "s:n:a:", opts, NULL)) != -1) {
		switch (c) {
		case 's': socket_path = optarg; break;
		case 'n': name = optarg; break;
		case 'a': acked = strtoull(optarg, NULL, 0); break;
		default:
			fprintf(stderr, "usage: plog-check [--socket PATH] [--slice NAME] [--acked A]\n");
			return 2;
		}
	}
	if (daxpool_connect(socket_path, &dp) < 0) {
		fprintf(stderr, "plog-check: connect: %s\n", daxpool_errormsg());
		return 2;
	}
	c = daxpool_open(dp, name, 0, &s);
	if (c == -ENOENT && acked == 0) {
		printf("plog-check: no log \"%s\" yet, nothing acknowledged\n", name);
		daxpool_disconnect(&dp);
		return 0;
	}
	if (c < 0 || daxpool_map(s, 0, (void **)&base) < 0) {
		fprintf(stderr, "plog-check: slice \"%s\": %s\n", name, daxpool_errormsg());
		return 2;
	}
	h = (const struct plog_header *)base;
	area = base + PLOG_HEADER;
	if (memcmp(h->magic, PLOG_MAGIC, sizeof(h->magic)) != 0) {
		if (acked > 0) {
			printf("plog-check: no log header, but %llu records were acknowledged\n",
			       (unsigned long long)acked);
			bad = 1;
		}
		goto out;
	}
	if (h->capacity != daxpool_slice_get_length(s) - PLOG_HEADER || h->tail > h->capacity) {
		printf("plog-check: bad header (capacity %llu, tail %llu)\n",
		       (unsigned long long)h->capacity, (unsigned long long)h->tail);
		bad = 1;
		goto out;
	}
	while (off < h->tail) {
		const struct plog_record *rec = (const void *)(area + off);
		char expect[256];
		uint32_t len;

		if (h->tail - off < sizeof(*rec) || rec->len > h->tail - off - sizeof(*rec) ||
		    rec->seq != seq + 1) {
			printf("plog-check: record at %llu: seq %llu (expected %llu), len %u: torn or missing\n",
			       (unsigned long long)off, (unsigned long long)rec->seq,
			       (unsigned long long)seq + 1, rec->len);
			bad = 1;
			break;
		}
		len = plog_payload(rec->seq, expect, sizeof(expect));
		if (rec->len != len || plog_hash(rec, rec + 1) != rec->hash ||
		    memcmp(rec + 1, expect, len) != 0) {
			printf("plog-check: record %llu at %llu: hash or payload mismatch\n",
			       (unsigned long long)rec->seq, (unsigned long long)off);
			bad = 1;
			break;
		}
		seq = rec->seq;
		off += plog_align8(sizeof(*rec) + rec->len);
	}
	if (!bad && seq < acked) {
		printf("plog-check: only %llu records committed, but %llu were acknowledged\n",
		       (unsigned long long)seq, (unsigned long long)acked);
		bad = 1;
	}
out:
	if (!bad)
		printf("plog-check: %llu records intact (tail %llu), %llu acknowledged\n",
		       (unsigned long long)seq, (unsigned long long)off, (unsigned long long)acked);
	daxpool_close(dp, &s);
	daxpool_disconnect(&dp);
	return bad;
}
