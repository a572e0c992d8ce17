/* Round-robin over uids of the carving worker's jobs; see carve-queue.h. */
#include "carve-queue.h"

#include <errno.h>
#include <stdlib.h>

struct carve_queue_uid {
	uid_t uid;
	size_t n;
	STAILQ_HEAD(, carve_queue_item) items;
	TAILQ_ENTRY(carve_queue_uid) link;
};

void carve_queue_init(struct carve_queue *q)
{
	TAILQ_INIT(&q->ring);
	q->n = 0;
}

void carve_queue_done(struct carve_queue *q)
{
	struct carve_queue_uid *u;

	while ((u = TAILQ_FIRST(&q->ring))) {
		TAILQ_REMOVE(&q->ring, u, link);
		free(u);
	}
	q->n = 0;
}

/* A linear walk: the ring holds only uids with queued carves, each bounded by
 * limits.carves_per_uid, and a carve takes milliseconds to seconds. */
static struct carve_queue_uid *uid_find(const struct carve_queue *q, uid_t uid)
{
	struct carve_queue_uid *u;

	TAILQ_FOREACH(u, &q->ring, link)
		if (u->uid == uid)
			return u;
	return NULL;
}

int carve_queue_push(struct carve_queue *q, struct carve_queue_item *item)
{
	struct carve_queue_uid *u = uid_find(q, item->uid);

	if (!u) {
		u = calloc(1, sizeof(*u));
		if (!u)
			return -ENOMEM;
		u->uid = item->uid;
		STAILQ_INIT(&u->items);
		/* A uid new to the ring goes last: it waits for one carve of each uid ahead. */
		TAILQ_INSERT_TAIL(&q->ring, u, link);
	}
	STAILQ_INSERT_TAIL(&u->items, item, link);
	u->n++;
	q->n++;
	return 0;
}

struct carve_queue_item *carve_queue_pop(struct carve_queue *q)
{
	struct carve_queue_uid *u = TAILQ_FIRST(&q->ring);
	struct carve_queue_item *item;

	if (!u)
		return NULL;
	item = STAILQ_FIRST(&u->items);
	STAILQ_REMOVE_HEAD(&u->items, link);
	u->n--;
	q->n--;
	TAILQ_REMOVE(&q->ring, u, link);
	if (u->n)
		TAILQ_INSERT_TAIL(&q->ring, u, link);
	else
		free(u);
	return item;
}

size_t carve_queue_count(const struct carve_queue *q, uid_t uid)
{
	const struct carve_queue_uid *u = uid_find(q, uid);

	return u ? u->n : 0;
}

bool carve_queue_any(const struct carve_queue *q, bool (*fn)(const struct carve_queue_item *item, const void *arg),
		     const void *arg)
{
	const struct carve_queue_uid *u;
	const struct carve_queue_item *item;

	TAILQ_FOREACH(u, &q->ring, link)
		STAILQ_FOREACH(item, &u->items, link)
			if (fn(item, arg))
				return true;
	return false;
}
