/* Unit tests of the carving worker's queue (daemon/carve-queue.c): its order is fair between
 * uids, which the lab's dynamic regions would show only as waiting times. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "carve-queue.h"

#include <stdlib.h>

struct job {
	struct carve_queue_item item; /* first: a popped item is its job */
	int seq;
};

static struct job *job_new(uid_t uid, int seq)
{
	struct job *j = calloc(1, sizeof(*j));

	assert_non_null(j);
	j->item.uid = uid;
	j->seq = seq;
	return j;
}

/* The worker's view: one uid queues 128 slow carves (one per connection, as connections_per_uid
 * allows), then another uid asks for one. With every carve taking the same time, the other uid's
 * carve is the second made — not the 129th, as in one FIFO. */
static void test_flooder_delays_other_by_one_carve(void **state)
{
	struct carve_queue q;
	struct carve_queue_item *it;
	int position = 0, other_at = -1;

	carve_queue_init(&q);
	for (int i = 0; i < 128; i++)
		assert_int_equal(carve_queue_push(&q, &job_new(65534, i)->item), 0);
	/* The worker took the flooder's first carve before the other uid came. */
	it = carve_queue_pop(&q);
	assert_int_equal(it->uid, 65534);
	free(it);
	assert_int_equal(carve_queue_push(&q, &job_new(65533, 0)->item), 0);
	assert_int_equal(carve_queue_count(&q, 65534), 127);
	assert_int_equal(carve_queue_count(&q, 65533), 1);
	while ((it = carve_queue_pop(&q))) {
		if (it->uid == 65533)
			other_at = position;
		position++;
		free(it);
	}
	assert_int_equal(position, 128);
	/* At most one more of the flooder's carves runs before it. */
	assert_true(other_at >= 0 && other_at <= 1);
	carve_queue_done(&q);
}

/* Three uids: the carves alternate between them while each has some, and each uid's own carves
 * keep their order (an ALLOC's connection waits for its own, in order). */
static void test_round_robin_and_fifo_per_uid(void **state)
{
	struct carve_queue q;
	struct carve_queue_item *it;
	int last_seq[3] = { -1, -1, -1 };
	uid_t order[12];
	int n = 0;

	carve_queue_init(&q);
	for (int i = 0; i < 6; i++)
		assert_int_equal(carve_queue_push(&q, &job_new(1000, i)->item), 0);
	for (int i = 0; i < 3; i++)
		assert_int_equal(carve_queue_push(&q, &job_new(1001, i)->item), 0);
	for (int i = 0; i < 3; i++)
		assert_int_equal(carve_queue_push(&q, &job_new(1002, i)->item), 0);
	while ((it = carve_queue_pop(&q))) {
		struct job *j = (struct job *)it;

		assert_true(n < 12);
		order[n++] = it->uid;
		assert_int_equal(j->seq, last_seq[it->uid - 1000] + 1);
		last_seq[it->uid - 1000] = j->seq;
		free(j);
	}
	assert_int_equal(n, 12);
	const uid_t want[12] = { 1000, 1001, 1002, 1000, 1001, 1002, 1000, 1001, 1002, 1000, 1000, 1000 };
	for (int i = 0; i < 12; i++)
		assert_int_equal(order[i], want[i]);
	assert_null(carve_queue_pop(&q));
	assert_int_equal(q.n, 0);
	carve_queue_done(&q);
}

static bool has_seq(const struct carve_queue_item *item, const void *arg)
{
	return ((const struct job *)item)->seq == *(const int *)arg;
}

static void test_any_and_done(void **state)
{
	struct carve_queue q;
	struct job *jobs[4];
	int yes = 2, no = 7;

	carve_queue_init(&q);
	for (int i = 0; i < 4; i++) {
		jobs[i] = job_new((uid_t)(i % 2), i);
		assert_int_equal(carve_queue_push(&q, &jobs[i]->item), 0);
	}
	assert_true(carve_queue_any(&q, has_seq, &yes));
	assert_false(carve_queue_any(&q, has_seq, &no));
	assert_int_equal(q.n, 4);
	carve_queue_done(&q); /* the per-uid entries go; the items are the caller's */
	assert_int_equal(q.n, 0);
	assert_null(carve_queue_pop(&q));
	for (int i = 0; i < 4; i++)
		free(jobs[i]);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_flooder_delays_other_by_one_carve),
		cmocka_unit_test(test_round_robin_and_fifo_per_uid),
		cmocka_unit_test(test_any_and_done),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
