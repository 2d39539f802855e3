/*
 * commit.c: the group commit of commit.h. Submissions wait in a FIFO
 * bounded by the events in it; one committer thread (core/thread.h) pops
 * what is queued, up to group_max events (a larger submission goes alone,
 * never split), gathers pointers to their events (the events stay where
 * the submitters keep them), commits them with one store_events_insert_refs and completes each
 * submitter with its slice of the results. The queue's bound counts waiting events only, so
 * submitters fill it again while a group commits: that overlap is where the grouping comes from
 * (with SQLite's fsync per commit, the next group is whatever arrived during the last one's).
 *
 * Stop commits what is queued (each submitter is completed as usual) and
 * refuses new submissions: an accepted submission is never dropped.
 */
#include "ingest/commit.h"

#include "core/alloc.h"
#include "core/log.h"
#include "core/metrics.h"
#include "core/thread.h"

#include <pthread.h>
#include <stdlib.h>

static struct metric m_committed = METRIC_INIT("portcullis_ingest_events_committed_total",
                                               "SDK events stored by the group commit", "counter");
static struct metric m_depth = METRIC_INIT("portcullis_ingest_commit_queue_events",
                                           "SDK events waiting for the group commit", "gauge");
static struct metric m_groups = METRIC_INIT(
    "portcullis_ingest_commit_groups_total",
    "group-commit transactions (commit_group_events_total / this: the mean group size)", "counter");
static struct metric m_group_events =
    METRIC_INIT("portcullis_ingest_commit_group_events_total",
                "SDK events in group-commit transactions", "counter");
static struct metric m_failed = METRIC_INIT(
    "portcullis_ingest_commit_failures_total",
    "group-commit transactions that failed (every submitter of the group got an error)", "counter");
static struct metric m_overloaded = METRIC_INIT(
    "portcullis_ingest_commit_overloaded_total",
    "ingest requests refused because the commit queue was full (503 OVERLOADED)", "counter");

struct submission {
	const struct store_event *evs;
	int n;
	ingest_commit_done done;
	void *ctx;
	struct submission *next;
};

struct ingest_commit {
	struct store *st;
	int queue_events, group_max;
	int64_t dedupe_ms;
	pthread_mutex_t lock; /* guards the queue, stats and the thread's flags */
	struct bg_thread thread;
	struct submission *head, **tail;
	int queued; /* events in the queue */
	struct ingest_commit_stats stats;
	/* The committer's own (no lock): the group being committed. */
	const struct store_event **group;
	bool *stored;
	int group_cap;
};

int ingest_commit_submit(struct ingest_commit *ic, const struct store_event *evs, int n,
                         ingest_commit_done done, void *ctx)
{
	if (n < 1 || !evs || !done)
		return INGEST_COMMIT_EINVAL;
	pthread_mutex_lock(&ic->lock);
	int rc = INGEST_COMMIT_OK;
	if (bg_thread_stopping(&ic->thread)) {
		rc = INGEST_COMMIT_ESTOPPED;
	} else if (n > ic->queue_events - ic->queued) {
		ic->stats.overloaded++;
		rc = INGEST_COMMIT_EOVERLOADED;
	} else {
		struct submission *s = xmalloc(sizeof *s);
		*s = (struct submission){evs, n, done, ctx, NULL};
		*ic->tail = s;
		ic->tail = &s->next;
		ic->queued += n;
		metric_add(&m_depth, n);
		/* Signalled under the lock: a stop cannot free the thread in between. */
		bg_thread_wake_locked(&ic->thread);
	}
	pthread_mutex_unlock(&ic->lock);
	if (rc == INGEST_COMMIT_EOVERLOADED)
		metric_add(&m_overloaded, 1);
	return rc;
}

/* Lock held: pop the next group (at least one submission); its event count in *n. */
static struct submission *take_group(struct ingest_commit *ic, int *n)
{
	struct submission *first = ic->head, **link = &ic->head;
	int total = 0;
	while (*link && (total == 0 || total + (*link)->n <= ic->group_max)) {
		total += (*link)->n;
		link = &(*link)->next;
	}
	ic->head = *link;
	*link = NULL;
	if (!ic->head)
		ic->tail = &ic->head;
	ic->queued -= total;
	metric_add(&m_depth, -total);
	*n = total;
	return first;
}

/* Account for a finished group (before its submitters learn of it). */
static void count_group(struct ingest_commit *ic, int subs, int n, int rc, int stored_n)
{
	metric_add(&m_groups, 1);
	metric_add(&m_group_events, n);
	if (rc == STORE_OK) {
		metric_add(&m_committed, stored_n); /* the repeats: gateway/ingest.c counts them */
	} else {
		metric_add(&m_failed, 1);
	}
	pthread_mutex_lock(&ic->lock);
	ic->stats.groups++;
	ic->stats.submissions += subs;
	ic->stats.events += n;
	if (rc == STORE_OK) {
		ic->stats.stored += stored_n;
		ic->stats.deduplicated += n - stored_n;
	} else {
		ic->stats.failed_groups++;
	}
	pthread_mutex_unlock(&ic->lock);
}

/* No lock: commit the group g of n events and complete its submitters. */
static void commit_group(struct ingest_commit *ic, struct submission *g, int n)
{
	if (n > ic->group_cap) {
		ic->group_cap = n;
		ic->group = xrealloc(ic->group, (size_t)n * sizeof(const struct store_event *));
		ic->stored = xrealloc(ic->stored, (size_t)n * sizeof *ic->stored);
	}
	int at = 0, subs = 0, stored_n = 0;
	for (struct submission *s = g; s; s = s->next) {
		for (int i = 0; i < s->n; i++)
			ic->group[at++] = &s->evs[i];
		subs++;
	}
	int rc = store_events_insert_refs(ic->st, ic->group, n, ic->dedupe_ms, ic->stored);
	if (rc != STORE_OK)
		log_error("ingest: a group commit of %d events failed (rc %d)", n, rc);
	for (int i = 0; rc == STORE_OK && i < n; i++)
		stored_n += ic->stored[i];
	count_group(ic, subs, n, rc, stored_n);
	at = 0;
	while (g) {
		struct submission *next = g->next;
		g->done(g->ctx, rc, rc == STORE_OK ? ic->stored + at : NULL, g->n);
		at += g->n;
		free(g);
		g = next;
	}
}

static void committer(struct bg_thread *t, void *arg)
{
	struct ingest_commit *ic = arg;
	for (;;) {
		/*
		 * Queued work first, and the queue looked at again after every
		 * wait: a stop that comes while submissions arrive leaves only
		 * once the queue is empty (the wait reporting the stop says
		 * nothing of what was queued meanwhile).
		 */
		if (!ic->head) {
			if (bg_thread_stopping(t))
				break;
			bg_thread_wait(t, 1000);
			continue;
		}
		int n = 0;
		struct submission *g = take_group(ic, &n);
		pthread_mutex_unlock(&ic->lock);
		commit_group(ic, g, n);
		pthread_mutex_lock(&ic->lock);
	}
}

struct ingest_commit *ingest_commit_start(struct store *st, const struct ingest_commit_options *o)
{
	static const struct ingest_commit_options none;
	if (!o)
		o = &none;
	struct ingest_commit *ic = xcalloc(1, sizeof *ic);
	ic->st = st;
	ic->queue_events = o->queue_events > 0 ? o->queue_events : INGEST_COMMIT_QUEUE_DEFAULT;
	ic->group_max = o->group_max > 0 ? o->group_max : INGEST_COMMIT_GROUP_MAX;
	ic->dedupe_ms = o->dedupe_ms > 0 ? o->dedupe_ms : STORE_EV_DEDUPE_MS;
	ic->tail = &ic->head;
	pthread_mutex_init(&ic->lock, NULL);
	metrics_register(&m_committed);
	metrics_register(&m_depth);
	metrics_register(&m_groups);
	metrics_register(&m_group_events);
	metrics_register(&m_failed);
	metrics_register(&m_overloaded);
	if (bg_thread_start(&ic->thread, "pcl-ingest-cmt", &ic->lock, committer, ic) != 0) {
		pthread_mutex_destroy(&ic->lock);
		free(ic);
		return NULL;
	}
	return ic;
}

void ingest_commit_stats(struct ingest_commit *ic, struct ingest_commit_stats *out)
{
	pthread_mutex_lock(&ic->lock);
	*out = ic->stats;
	out->queued = ic->queued;
	pthread_mutex_unlock(&ic->lock);
}

void ingest_commit_stop(struct ingest_commit *ic)
{
	if (!ic)
		return;
	bg_thread_stop(&ic->thread); /* the committer drains the queue first */
	pthread_mutex_destroy(&ic->lock);
	free(ic->group);
	free(ic->stored);
	free(ic);
}
