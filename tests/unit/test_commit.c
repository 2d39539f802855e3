/*
 * test_commit.c: the group commit (src/ingest/commit.h) over a real store,
 * SQLite always and PostgreSQL when PORTCULLIS_TEST_PG_URL is set
 * (store_fixture.h): concurrent submitters grouped into fewer transactions,
 * each completed with its own results; a full queue refused at once with
 * OVERLOADED; a failing transaction failing every submitter of its group
 * with nothing stored; stop committing what is queued and refusing more.
 *
 * The committer is held up, where a test needs it, by a write lock taken on
 * a connection of the test's own (BEGIN IMMEDIATE on SQLite, LOCK TABLE on
 * PostgreSQL): its insert waits until the test lets go.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ingest/commit.h"
#include "store/store_events.h"

#include "metric_value.h"

#define ORG_A  "ORGA0000000000000000000001"
#define PROJ_A "PRJA0000000000000000000001"

#define FIXTURE_DB_NAME "portcullis_test_commit"
#define FIXTURE_TMP     "pcl-commit"
#include "store_fixture.h"

static const char BODY[] = "{\"type\":\"track\"}";

static void make_event(struct store_event *e, const char *mid)
{
	memset(e, 0, sizeof *e);
	snprintf(e->org_id, sizeof e->org_id, "%s", ORG_A);
	snprintf(e->project_id, sizeof e->project_id, "%s", PROJ_A);
	snprintf(e->message_id, sizeof e->message_id, "%s", mid);
	snprintf(e->type, sizeof e->type, "track");
	e->timestamp = e->received_at = clock_now_ms();
	store_event_set_id(e);
	e->body = BODY;
	e->body_len = sizeof BODY - 1;
}

/* One submitter's completion, waited for by the test. */
struct sub {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	bool done;
	int rc, n, calls;
	bool stored[16];
	struct store_event evs[16];
};

static void sub_init(struct sub *s, int n, const char *tag)
{
	memset(s, 0, sizeof *s);
	pthread_mutex_init(&s->lock, NULL);
	pthread_cond_init(&s->cond, NULL);
	s->n = n;
	for (int i = 0; i < n; i++) {
		char mid[64];
		snprintf(mid, sizeof mid, "%s-%d", tag, i);
		make_event(&s->evs[i], mid);
	}
}

static void on_done(void *ctx, int rc, const bool *stored, int n)
{
	struct sub *s = ctx;
	pthread_mutex_lock(&s->lock);
	s->rc = rc;
	s->calls++;
	assert_int_equal(n, s->n);
	for (int i = 0; stored && i < n; i++)
		s->stored[i] = stored[i];
	s->done = true;
	pthread_cond_signal(&s->cond);
	pthread_mutex_unlock(&s->lock);
}

/* Wait (at most 20 s) for s's completion; its rc. */
static int sub_wait(struct sub *s)
{
	struct timespec until;
	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += 20;
	pthread_mutex_lock(&s->lock);
	while (!s->done)
		if (pthread_cond_timedwait(&s->cond, &s->lock, &until) != 0)
			break;
	bool done = s->done;
	int rc = s->rc;
	pthread_mutex_unlock(&s->lock);
	if (!done)
		fail_msg("no completion within 20 s");
	assert_int_equal(s->calls, 1);
	return rc;
}

static void sub_free(struct sub *s)
{
	pthread_mutex_destroy(&s->lock);
	pthread_cond_destroy(&s->cond);
}

static int64_t count_events(struct store *st)
{
	return raw_int(st, "SELECT count(*) FROM events", NULL, NULL);
}

/* ---------- holding the committer up ---------- */

struct hold {
	struct db_conn *c;
};

static void hold_take(const struct fixture *fx, struct hold *h)
{
	char err[512];
	if (fx->driver->connect(fx->url, false, NULL, &h->c, err, sizeof err) != DB_OK)
		fail_msg("raw connect: %s", err);
	assert_int_equal(fx->driver->begin(h->c), DB_OK);
	if (is_pg(fx))
		assert_int_equal(
		    fx->driver->exec_script(h->c, "LOCK TABLE event_dedupe IN EXCLUSIVE MODE"),
		    DB_OK);
}

static void hold_release(const struct fixture *fx, struct hold *h)
{
	fx->driver->rollback(h->c);
	fx->driver->disconnect(h->c);
	h->c = NULL;
}

/* Wait until the committer has taken everything queued (it is then held in its insert). */
static void wait_taken(struct ingest_commit *ic)
{
	struct ingest_commit_stats s;
	for (int i = 0; i < 2000; i++) {
		ingest_commit_stats(ic, &s);
		if (s.queued == 0)
			return;
		struct timespec ms = {0, 1000000L};
		nanosleep(&ms, NULL);
	}
	fail_msg("the committer never took the queue");
}

/* ---------- tests ---------- */

enum { THREADS = 6, PER_THREAD = 30 };

struct submitter {
	struct ingest_commit *ic;
	struct sub subs[PER_THREAD];
	int t;
};

static void *submit_many(void *arg)
{
	struct submitter *w = arg;
	for (int k = 0; k < PER_THREAD; k++) {
		char tag[32];
		snprintf(tag, sizeof tag, "t%d-s%d", w->t, k);
		/* 3 events, the third repeating the first: each submitter's own results */
		sub_init(&w->subs[k], 3, tag);
		snprintf(w->subs[k].evs[2].message_id, sizeof w->subs[k].evs[2].message_id, "%s",
		         w->subs[k].evs[0].message_id);
		assert_int_equal(
		    ingest_commit_submit(w->ic, w->subs[k].evs, 3, on_done, &w->subs[k]),
		    INGEST_COMMIT_OK);
	}
	return NULL;
}

static void test_concurrent_submitters_grouped(void **state)
{
	struct fixture *fx = *state;
	struct ingest_commit *ic = ingest_commit_start(fx->st, NULL);
	assert_non_null(ic);
	static struct submitter w[THREADS];
	pthread_t t[THREADS];
	/* Held at first, so that the first group is surely more than one submission. */
	struct hold h;
	hold_take(fx, &h);
	for (int i = 0; i < THREADS; i++) {
		w[i].ic = ic;
		w[i].t = i;
		assert_int_equal(pthread_create(&t[i], NULL, submit_many, &w[i]), 0);
	}
	for (int i = 0; i < THREADS; i++)
		pthread_join(t[i], NULL);
	hold_release(fx, &h);
	for (int i = 0; i < THREADS; i++)
		for (int k = 0; k < PER_THREAD; k++) {
			struct sub *s = &w[i].subs[k];
			assert_int_equal(sub_wait(s), STORE_OK);
			assert_true(s->stored[0]);
			assert_true(s->stored[1]);
			assert_false(s->stored[2]); /* its own repeat, not another's */
			sub_free(s);
		}
	int64_t groups0 = metric_value("portcullis_ingest_commit_groups_total");
	int64_t events0 = metric_value("portcullis_ingest_commit_group_events_total");
	int64_t committed0 = metric_value("portcullis_ingest_events_committed_total");
	struct ingest_commit_stats st;
	ingest_commit_stats(ic, &st);
	assert_int_equal(st.submissions, THREADS * PER_THREAD);
	assert_true(st.groups < THREADS * PER_THREAD);
	assert_int_equal(st.failed_groups, 0);
	assert_int_equal(st.events, THREADS * PER_THREAD * 3);
	assert_int_equal(st.stored, THREADS * PER_THREAD * 2);
	assert_int_equal(st.deduplicated, THREADS * PER_THREAD);
	assert_int_equal(count_events(fx->st), THREADS * PER_THREAD * 2);
	print_message("%d submissions in %lld transactions\n", THREADS * PER_THREAD,
	              (long long)st.groups);
	/* /metrics: this process's committers so far, this test's included */
	assert_true(groups0 >= st.groups);
	assert_true(events0 >= THREADS * PER_THREAD * 3);
	assert_true(committed0 >= THREADS * PER_THREAD * 2);
	assert_int_equal(metric_value("portcullis_ingest_commit_queue_events"), 0);
	ingest_commit_stop(ic);
}

static void test_group_cap(void **state)
{
	struct fixture *fx = *state;
	struct ingest_commit_options o = {.group_max = 4};
	struct ingest_commit *ic = ingest_commit_start(fx->st, &o);
	struct hold h;
	hold_take(fx, &h);
	static struct sub s[6];
	sub_init(&s[0], 1, "first");
	assert_int_equal(ingest_commit_submit(ic, s[0].evs, 1, on_done, &s[0]), INGEST_COMMIT_OK);
	wait_taken(ic); /* s[0] alone, held */
	/* Then 3+1 fit a group of 4, 5 (over the cap) goes alone, 2+2 together. */
	static const int sizes[] = {3, 1, 5, 2, 2};
	for (int i = 1; i < 6; i++) {
		char tag[16];
		snprintf(tag, sizeof tag, "cap%d", i);
		sub_init(&s[i], sizes[i - 1], tag);
		assert_int_equal(ingest_commit_submit(ic, s[i].evs, s[i].n, on_done, &s[i]),
		                 INGEST_COMMIT_OK);
	}
	hold_release(fx, &h);
	for (int i = 0; i < 6; i++) {
		assert_int_equal(sub_wait(&s[i]), STORE_OK);
		for (int k = 0; k < s[i].n; k++)
			assert_true(s[i].stored[k]);
		sub_free(&s[i]);
	}
	struct ingest_commit_stats st;
	ingest_commit_stats(ic, &st);
	assert_int_equal(st.groups, 4);
	assert_int_equal(count_events(fx->st), 14);
	ingest_commit_stop(ic);
}

static void test_full_queue_overloaded(void **state)
{
	struct fixture *fx = *state;
	struct ingest_commit_options o = {.queue_events = 10, .group_max = 4};
	struct ingest_commit *ic = ingest_commit_start(fx->st, &o);
	struct hold h;
	hold_take(fx, &h);
	static struct sub s[5];
	sub_init(&s[0], 4, "q0");
	assert_int_equal(ingest_commit_submit(ic, s[0].evs, 4, on_done, &s[0]), INGEST_COMMIT_OK);
	wait_taken(ic); /* in flight: not counted against the queue */
	for (int i = 1; i < 5; i++) {
		char tag[16];
		snprintf(tag, sizeof tag, "q%d", i);
		sub_init(&s[i], 4, tag);
	}
	/* 4 + 4 wait; a third 4 would make 12 > 10: refused at once, never completed. */
	assert_int_equal(ingest_commit_submit(ic, s[1].evs, 4, on_done, &s[1]), INGEST_COMMIT_OK);
	assert_int_equal(ingest_commit_submit(ic, s[2].evs, 4, on_done, &s[2]), INGEST_COMMIT_OK);
	assert_int_equal(ingest_commit_submit(ic, s[3].evs, 4, on_done, &s[3]),
	                 INGEST_COMMIT_EOVERLOADED);
	/* ...while 2 more still fit. */
	s[4].n = 2;
	assert_int_equal(ingest_commit_submit(ic, s[4].evs, 2, on_done, &s[4]), INGEST_COMMIT_OK);
	struct ingest_commit_stats st;
	ingest_commit_stats(ic, &st);
	assert_int_equal(st.queued, 10);
	assert_int_equal(st.overloaded, 1);
	assert_int_equal(ingest_commit_submit(ic, s[3].evs, 0, on_done, &s[3]),
	                 INGEST_COMMIT_EINVAL);
	hold_release(fx, &h);
	for (int i = 0; i < 5; i++) {
		if (i != 3)
			assert_int_equal(sub_wait(&s[i]), STORE_OK);
		else
			assert_false(s[i].done);
		sub_free(&s[i]);
	}
	assert_int_equal(count_events(fx->st), 14);
	ingest_commit_stop(ic);
}

static void test_store_failure_fails_the_group(void **state)
{
	struct fixture *fx = *state;
	struct ingest_commit *ic = ingest_commit_start(fx->st, NULL);
	struct hold h;
	hold_take(fx, &h);
	static struct sub s[4];
	sub_init(&s[0], 2, "f0");
	assert_int_equal(ingest_commit_submit(ic, s[0].evs, 2, on_done, &s[0]), INGEST_COMMIT_OK);
	wait_taken(ic);
	/* One group of three: s[3]'s second event reuses s[1]'s id, so the transaction fails. */
	for (int i = 1; i < 4; i++) {
		char tag[16];
		snprintf(tag, sizeof tag, "f%d", i);
		sub_init(&s[i], 2, tag);
	}
	memcpy(s[3].evs[1].id, s[1].evs[0].id, sizeof s[1].evs[0].id);
	for (int i = 1; i < 4; i++)
		assert_int_equal(ingest_commit_submit(ic, s[i].evs, 2, on_done, &s[i]),
		                 INGEST_COMMIT_OK);
	hold_release(fx, &h);
	assert_int_equal(sub_wait(&s[0]), STORE_OK);
	for (int i = 1; i < 4; i++)
		assert_int_not_equal(sub_wait(&s[i]), STORE_OK);
	struct ingest_commit_stats st;
	ingest_commit_stats(ic, &st);
	assert_int_equal(st.groups, 2);
	assert_int_equal(st.failed_groups, 1);
	/* Nothing of the failed group: no event, no dedupe claim. */
	assert_int_equal(count_events(fx->st), 2);
	assert_int_equal(raw_int(fx->st, "SELECT count(*) FROM event_dedupe", NULL, NULL), 2);
	/* The committer goes on: a retry of the good ones is stored. */
	for (int i = 1; i < 3; i++) {
		struct sub *r = &s[i];
		r->done = false;
		r->calls = 0;
		assert_int_equal(ingest_commit_submit(ic, r->evs, 2, on_done, r), INGEST_COMMIT_OK);
		assert_int_equal(sub_wait(r), STORE_OK);
		assert_true(r->stored[0] && r->stored[1]);
	}
	for (int i = 0; i < 4; i++)
		sub_free(&s[i]);
	assert_int_equal(count_events(fx->st), 6);
	ingest_commit_stop(ic);
}

static void *stop_thread(void *arg)
{
	ingest_commit_stop(arg);
	return NULL;
}

static void test_stop_commits_the_queue(void **state)
{
	struct fixture *fx = *state;
	struct ingest_commit_options o = {.group_max = 2};
	struct ingest_commit *ic = ingest_commit_start(fx->st, &o);
	struct hold h;
	hold_take(fx, &h);
	static struct sub s[6];
	for (int i = 0; i < 5; i++) {
		char tag[16];
		snprintf(tag, sizeof tag, "s%d", i);
		sub_init(&s[i], 2, tag);
		assert_int_equal(ingest_commit_submit(ic, s[i].evs, 2, on_done, &s[i]),
		                 INGEST_COMMIT_OK);
	}
	pthread_t t;
	assert_int_equal(pthread_create(&t, NULL, stop_thread, ic), 0);
	/*
	 * Stopping: new submissions are refused, also while the queue drains;
	 * one accepted before the stop began is committed like the rest.
	 */
	static struct sub late[64];
	int rc = INGEST_COMMIT_OK, n_late = 0;
	while (n_late < 64) {
		struct timespec ms = {0, 1000000L};
		nanosleep(&ms, NULL);
		sub_init(&late[n_late], 1, "late");
		snprintf(late[n_late].evs[0].message_id, sizeof late[0].evs[0].message_id, "late%d",
		         n_late);
		rc = ingest_commit_submit(ic, late[n_late].evs, 1, on_done, &late[n_late]);
		if (rc != INGEST_COMMIT_OK)
			break;
		n_late++;
	}
	assert_int_equal(rc, INGEST_COMMIT_ESTOPPED);
	hold_release(fx, &h);
	pthread_join(t, NULL);
	for (int i = 0; i < 5; i++) {
		assert_true(s[i].done); /* completed before stop returned */
		assert_int_equal(s[i].rc, STORE_OK);
		sub_free(&s[i]);
	}
	for (int i = 0; i <= n_late && i < 64; i++) {
		assert_int_equal(late[i].done, i < n_late);
		if (i < n_late)
			assert_int_equal(late[i].rc, STORE_OK);
		sub_free(&late[i]);
	}
	assert_int_equal(
	    raw_int(fx->st, "SELECT count(*) FROM events WHERE message_id LIKE 's%'", NULL, NULL),
	    10);
	ingest_commit_stop(NULL);
}

#define TESTS(setup)                                                                               \
	cmocka_unit_test_setup_teardown(test_concurrent_submitters_grouped, setup, teardown),      \
	    cmocka_unit_test_setup_teardown(test_group_cap, setup, teardown),                      \
	    cmocka_unit_test_setup_teardown(test_full_queue_overloaded, setup, teardown),          \
	    cmocka_unit_test_setup_teardown(test_store_failure_fails_the_group, setup, teardown),  \
	    cmocka_unit_test_setup_teardown(test_stop_commits_the_queue, setup, teardown)

int main(void)
{
	const struct CMUnitTest sqlite_tests[] = {TESTS(setup_sqlite)};
	const struct CMUnitTest postgres_tests[] = {TESTS(setup_postgres)};
	return fixture_main("commit", sqlite_tests, postgres_tests,
	                    sizeof sqlite_tests / sizeof sqlite_tests[0]);
}
