/*
 * workpool.c: bounded job queues (one ring per lane) served by a fixed set
 * of threads; the normal lane first (see workpool.h).
 */
#include "core/workpool.h"

#include "core/alloc.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>

struct job {
	workpool_fn fn;
	void *arg;
};

struct lane {
	struct job *ring;
	size_t head, count;
};

struct workpool {
	pthread_mutex_t lock;
	pthread_cond_t nonempty;
	struct lane lanes[2]; /* WORKPOOL_NORMAL first */
	size_t cap;           /* per lane */
	bool stopping;
	int n_threads;
	pthread_t *threads;
};

static void *worker_main(void *p)
{
	struct workpool *wp = p;
	for (;;) {
		pthread_mutex_lock(&wp->lock);
		while (wp->lanes[0].count + wp->lanes[1].count == 0 && !wp->stopping)
			pthread_cond_wait(&wp->nonempty, &wp->lock);
		struct lane *l = wp->lanes[0].count ? &wp->lanes[0] : &wp->lanes[1];
		if (l->count == 0) {
			pthread_mutex_unlock(&wp->lock);
			return NULL;
		}
		struct job j = l->ring[l->head];
		l->head = (l->head + 1) % wp->cap;
		l->count--;
		pthread_mutex_unlock(&wp->lock);
		j.fn(j.arg);
	}
}

struct workpool *workpool_create(const char *name, int n_threads, size_t queue_cap)
{
	struct workpool *wp = xcalloc(1, sizeof *wp);
	pthread_mutex_init(&wp->lock, NULL);
	pthread_cond_init(&wp->nonempty, NULL);
	wp->cap = queue_cap ? queue_cap : 1;
	for (int i = 0; i < 2; i++)
		wp->lanes[i].ring = xcalloc(wp->cap, sizeof(struct job));
	wp->n_threads = n_threads > 0 ? n_threads : 1;
	wp->threads = xcalloc((size_t)wp->n_threads, sizeof *wp->threads);
	for (int i = 0; i < wp->n_threads; i++) {
		if (pthread_create(&wp->threads[i], NULL, worker_main, wp) != 0)
			fatal("cannot start a pool thread");
		char tname[16];
		snprintf(tname, sizeof tname, "%.8s-%d", name, i & 0xff);
		pthread_setname_np(wp->threads[i], tname);
	}
	return wp;
}

int workpool_submit_lane(struct workpool *wp, enum workpool_lane lane, workpool_fn fn, void *arg)
{
	struct lane *l = &wp->lanes[lane == WORKPOOL_LOW];
	pthread_mutex_lock(&wp->lock);
	if (wp->stopping || l->count == wp->cap) {
		pthread_mutex_unlock(&wp->lock);
		return -1;
	}
	l->ring[(l->head + l->count) % wp->cap] = (struct job){fn, arg};
	l->count++;
	pthread_cond_signal(&wp->nonempty);
	pthread_mutex_unlock(&wp->lock);
	return 0;
}

int workpool_submit(struct workpool *wp, workpool_fn fn, void *arg)
{
	return workpool_submit_lane(wp, WORKPOOL_NORMAL, fn, arg);
}

size_t workpool_pending(struct workpool *wp)
{
	pthread_mutex_lock(&wp->lock);
	size_t n = wp->lanes[0].count + wp->lanes[1].count;
	pthread_mutex_unlock(&wp->lock);
	return n;
}

void workpool_destroy(struct workpool *wp)
{
	if (!wp)
		return;
	pthread_mutex_lock(&wp->lock);
	wp->stopping = true;
	pthread_cond_broadcast(&wp->nonempty);
	pthread_mutex_unlock(&wp->lock);
	for (int i = 0; i < wp->n_threads; i++)
		pthread_join(wp->threads[i], NULL);
	pthread_mutex_destroy(&wp->lock);
	pthread_cond_destroy(&wp->nonempty);
	free(wp->lanes[0].ring);
	free(wp->lanes[1].ring);
	free(wp->threads);
	free(wp);
}
