/*
 * last_used.c: the coalescing last-used writer (see last_used.h).
 */
#include "auth/last_used.h"

#include "core/alloc.h"
#include "core/clock.h"
#include "core/log.h"
#include "core/metrics.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct mark {
	char id[STORE_ID_LEN + 1];
	int64_t at;
};

struct last_used {
	struct store *st;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	struct mark *q;
	size_t n, cap;
	bool stopping;
	int64_t interval_ms;
	pthread_t thread;
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

static void *writer(void *arg)
{
	struct last_used *lu = arg;
	struct mark *batch = xcalloc(lu->cap, sizeof *batch);
	pthread_mutex_lock(&lu->lock);
	for (;;) {
		if (!lu->stopping) {
			struct timespec ts = clock_mono_deadline(lu->interval_ms);
			pthread_cond_timedwait(&lu->cond, &lu->lock, &ts);
		}
		size_t n = lu->n;
		memcpy(batch, lu->q, n * sizeof *batch);
		lu->n = 0;
		bool stop = lu->stopping;
		pthread_mutex_unlock(&lu->lock);
		flush(lu, batch, n);
		pthread_mutex_lock(&lu->lock);
		if (stop && lu->n == 0)
			break;
	}
	pthread_mutex_unlock(&lu->lock);
	free(batch);
	return NULL;
}

struct last_used *last_used_start(struct store *st, size_t capacity, int64_t interval_ms)
{
	struct last_used *lu = xcalloc(1, sizeof *lu);
	lu->st = st;
	lu->cap = capacity ? capacity : 1;
	lu->q = xcalloc(lu->cap, sizeof *lu->q);
	lu->interval_ms = interval_ms;
	pthread_mutex_init(&lu->lock, NULL);
	clock_cond_init_mono(&lu->cond);
	metrics_register(&dropped);
	if (pthread_create(&lu->thread, NULL, writer, lu) != 0)
		fatal("cannot start the last-used writer");
	pthread_setname_np(lu->thread, "last-used");
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
	pthread_mutex_lock(&lu->lock);
	lu->stopping = true;
	pthread_cond_signal(&lu->cond);
	pthread_mutex_unlock(&lu->lock);
	pthread_join(lu->thread, NULL);
	pthread_mutex_destroy(&lu->lock);
	pthread_cond_destroy(&lu->cond);
	free(lu->q);
	free(lu);
}
