/*
 * last_used.c: the coalescing last-used writer (see last_used.h).
 */
#include "auth/last_used.h"

#include "core/alloc.h"
#include "core/log.h"
#include "core/metrics.h"
#include "core/thread.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct mark {
	char id[STORE_ID_LEN + 1];
	int64_t at;
};

struct last_used {
	struct store *st;
	pthread_mutex_t lock;
	struct mark *q;
	size_t n, cap;
	int64_t interval_ms;
	struct bg_thread thread; /* shares lock */
};

static struct metric dropped =
    METRIC_INIT("portcullis_last_used_dropped_total",
                "last-used marks dropped because the queue was full", "counter");

static void flush(struct last_used *lu, struct mark *batch, size_t n)
{
	if (!n)
		return;
	const char **ids = xcalloc(n, sizeof *ids);
	int64_t *at = xcalloc(n, sizeof *at);
	for (size_t i = 0; i < n; i++) {
		ids[i] = batch[i].id;
		at[i] = batch[i].at;
	}
	int rc = store_key_touch(lu->st, ids, at, (int)n);
	if (rc != STORE_OK)
		log_warn("last_used: could not record %zu mark(s) (store error %d)", n, rc);
	free(ids);
	free(at);
}

/* The writer thread (lock held): every interval, and once more at the stop. */
static void writer(struct bg_thread *t, void *arg)
{
	struct last_used *lu = arg;
	struct mark *batch = xcalloc(lu->cap, sizeof *batch);
	for (;;) {
		bool run = bg_thread_wait(t, lu->interval_ms);
		size_t n = lu->n;
		memcpy(batch, lu->q, n * sizeof *batch);
		lu->n = 0;
		pthread_mutex_unlock(&lu->lock);
		flush(lu, batch, n);
		pthread_mutex_lock(&lu->lock);
		if (!run && lu->n == 0)
			break;
	}
	free(batch);
}

struct last_used *last_used_start(struct store *st, size_t capacity, int64_t interval_ms)
{
	struct last_used *lu = xcalloc(1, sizeof *lu);
	lu->st = st;
	lu->cap = capacity ? capacity : 1;
	lu->q = xcalloc(lu->cap, sizeof *lu->q);
	lu->interval_ms = interval_ms;
	pthread_mutex_init(&lu->lock, NULL);
	metrics_register(&dropped);
	if (bg_thread_start(&lu->thread, "last-used", &lu->lock, writer, lu) != 0)
		fatal("cannot start the last-used writer");
	return lu;
}

void last_used_record(struct last_used *lu, const char *key_id, int64_t at_ms)
{
	if (!lu)
		return;
	pthread_mutex_lock(&lu->lock);
	if (lu->n < lu->cap) {
		snprintf(lu->q[lu->n].id, sizeof lu->q[lu->n].id, "%s", key_id);
		lu->q[lu->n].at = at_ms;
		lu->n++;
	} else {
		metric_add(&dropped, 1);
	}
	pthread_mutex_unlock(&lu->lock);
}

void last_used_stop(struct last_used *lu)
{
	if (!lu)
		return;
	bg_thread_stop(&lu->thread);
	pthread_mutex_destroy(&lu->lock);
	free(lu->q);
	free(lu);
}
