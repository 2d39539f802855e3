/*
 * test_store_events.c: the SDK events store (src/store/store_events.h) on
 * SQLite always and on PostgreSQL when PORTCULLIS_TEST_PG_URL is set
 * (store_fixture.h): insert and list with every filter and the cursor,
 * dedupe of a messageId within the window (in one batch, across batches,
 * across concurrent transactions), stored again outside it, a failing
 * batch storing nothing, the held advertising ids, and retention; ids that
 * are the ULID of received_at, since/until and the purge at their exact
 * millisecond through every index, and SQLite's plans for every filter.
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

#include "core/ulid.h"
#include "store/store_events.h"

#define ORG_A  "ORGA0000000000000000000001"
#define ORG_B  "ORGB0000000000000000000002"
#define PROJ_A "PRJA0000000000000000000001"
#define PROJ_B "PRJB0000000000000000000002"
#define KEY_1  "KEY00000000000000000000001"
#define T0     1750000000000LL /* ms */
#define DAY    STORE_EV_DEDUPE_MS

#define FIXTURE_DB_NAME "portcullis_test_events"
#define FIXTURE_TMP     "pcl-evstore"
#include "store_fixture.h"

static const char BODY[] = "{\"type\":\"track\",\"event\":\"Order\"}";

/* An event of project (org derived), messageId mid, received at t; id sorts by t then seq. */
static struct store_event ev(const char *project, const char *mid, int64_t t, int seq)
{
	struct store_event e = {
	    .timestamp = t - 5, .received_at = t, .body = BODY, .body_len = sizeof BODY - 1};
	uint8_t rnd[10] = {0};
	rnd[8] = (uint8_t)(seq >> 8);
	rnd[9] = (uint8_t)seq;
	char u[ULID_LEN + 1];
	ulid_encode((uint64_t)t, rnd, u);
	snprintf(e.id, sizeof e.id, "ev_%s", u);
	snprintf(e.org_id, sizeof e.org_id, "%s", strcmp(project, PROJ_A) == 0 ? ORG_A : ORG_B);
	snprintf(e.project_id, sizeof e.project_id, "%s", project);
	snprintf(e.key_id, sizeof e.key_id, "%s", KEY_1);
	snprintf(e.message_id, sizeof e.message_id, "%s", mid);
	snprintf(e.type, sizeof e.type, "track");
	snprintf(e.event, sizeof e.event, "Order");
	snprintf(e.user_id, sizeof e.user_id, "user-%d", seq % 3);
	return e;
}

struct rows {
	int n;
	char id[64][STORE_EV_ID_MAX + 1];
	char mid[64][STORE_EV_MESSAGE_ID_MAX + 1];
	int64_t timestamp, received_at; /* of the last row */
	char body[128], anon[16], email[72], event[16], region[3], key[32];
};

static void collect(void *ctx, const struct store_event_read *row)
{
	struct rows *r = ctx;
	if (r->n < 64) {
		snprintf(r->id[r->n], sizeof r->id[0], "%s", row->id);
		snprintf(r->mid[r->n], sizeof r->mid[0], "%s", row->message_id);
	}
	r->n++;
	r->timestamp = row->timestamp;
	r->received_at = row->received_at;
	/* The strings are borrowed: copied. */
	snprintf(r->body, sizeof r->body, "%s", row->body);
	snprintf(r->anon, sizeof r->anon, "%s", row->anonymous_id);
	snprintf(r->email, sizeof r->email, "%s", row->email_sha256);
	snprintf(r->event, sizeof r->event, "%s", row->event);
	snprintf(r->region, sizeof r->region, "%s", row->region);
	snprintf(r->key, sizeof r->key, "%s", row->key_id);
}

static struct event_filter all(int limit)
{
	return (struct event_filter){.since = -1, .until = -1, .limit = limit};
}

static int list(struct store *st, const struct event_filter *f, struct rows *out)
{
	memset(out, 0, sizeof *out);
	assert_int_equal(store_events_list(st, f, collect, out), STORE_OK);
	return out->n;
}

static int64_t count_events(struct store *st)
{
	return raw_int(st, "SELECT count(*) FROM events", NULL, NULL);
}

static void test_insert_and_list(void **state)
{
	struct fixture *fx = *state;
	struct store *st = fx->st;
	struct store_event e[6];
	for (int i = 0; i < 6; i++) {
		char mid[16];
		snprintf(mid, sizeof mid, "m%d", i);
		e[i] = ev(i < 4 ? PROJ_A : PROJ_B, mid, T0 + i * 1000, i);
	}
	snprintf(e[1].type, sizeof e[1].type, "identify");
	e[1].event[0] = '\0';
	snprintf(e[2].anonymous_id, sizeof e[2].anonymous_id, "anon-2");
	memset(e[2].email_sha256, 'a', STORE_EV_SHA256_HEX);
	snprintf(e[2].region, sizeof e[2].region, "DE");
	bool stored[6];
	assert_int_equal(store_events_insert(st, e, 6, DAY, stored), STORE_OK);
	for (int i = 0; i < 6; i++)
		assert_true(stored[i]);

	struct rows r;
	struct event_filter f = all(50);
	assert_int_equal(list(st, &f, &r), 6); /* root: every organisation, newest first */
	for (int i = 0; i < 6; i++)
		assert_string_equal(r.id[i], e[5 - i].id);
	f.org_id = ORG_A;
	assert_int_equal(list(st, &f, &r), 4);
	f.org_id = ORG_B;
	assert_int_equal(list(st, &f, &r), 2);
	f = all(50);
	f.project_id = PROJ_A;
	f.type = "identify";
	assert_int_equal(list(st, &f, &r), 1);
	assert_string_equal(r.mid[0], "m1");
	assert_string_equal(r.event, ""); /* NULL reads as "" */
	f = all(50);
	f.user_id = "user-2"; /* seq 2 and 5 */
	assert_int_equal(list(st, &f, &r), 2);
	assert_string_equal(r.mid[0], "m5");
	assert_string_equal(r.mid[1], "m2");
	assert_string_equal(r.anon, "anon-2");
	assert_string_equal(r.region, "DE");
	assert_int_equal(strlen(r.email), STORE_EV_SHA256_HEX);
	assert_string_equal(r.body, BODY);
	assert_int_equal(r.timestamp, T0 + 2000 - 5);
	assert_int_equal(r.received_at, T0 + 2000);
	assert_string_equal(r.key, KEY_1);
	/* since inclusive, until exclusive */
	f = all(50);
	f.since = T0 + 1000;
	f.until = T0 + 3000;
	assert_int_equal(list(st, &f, &r), 2);
	assert_string_equal(r.mid[0], "m2");
	assert_string_equal(r.mid[1], "m1");
	/* cursor pages: limit, then before_id the last id seen */
	f = all(4);
	assert_int_equal(list(st, &f, &r), 4);
	char cursor[STORE_EV_ID_MAX + 1];
	snprintf(cursor, sizeof cursor, "%s", r.id[3]);
	f.before_id = cursor;
	assert_int_equal(list(st, &f, &r), 2);
	assert_string_equal(r.id[0], e[1].id);
	assert_string_equal(r.id[1], e[0].id);
	f.before_id = e[0].id;
	assert_int_equal(list(st, &f, &r), 0);
	/* every filter at once */
	f = (struct event_filter){ORG_A, PROJ_A, "track", "user-0", T0, T0 + 10000, e[3].id, 10};
	assert_int_equal(list(st, &f, &r), 1);
	assert_string_equal(r.mid[0], "m0");
	assert_int_equal(store_events_insert(st, e, 0, DAY, NULL), STORE_OK);
}

static void test_dedupe_in_one_batch(void **state)
{
	struct fixture *fx = *state;
	struct store *st = fx->st;
	/* m1 three times, m2 of two projects: the first of each (project, messageId) is stored */
	struct store_event e[5] = {ev(PROJ_A, "m1", T0, 0), ev(PROJ_A, "m2", T0, 1),
	                           ev(PROJ_A, "m1", T0 + 1, 2), ev(PROJ_B, "m2", T0, 3),
	                           ev(PROJ_A, "m1", T0 + 2, 4)};
	bool stored[5];
	assert_int_equal(store_events_insert(st, e, 5, DAY, stored), STORE_OK);
	assert_true(stored[0] && stored[1] && !stored[2] && stored[3] && !stored[4]);
	assert_int_equal(count_events(st), 3);
	assert_int_equal(raw_int(st, "SELECT count(*) FROM events WHERE id = ?", e[0].id, NULL), 1);
}

static void test_dedupe_window(void **state)
{
	struct fixture *fx = *state;
	struct store *st = fx->st;
	struct store_event a = ev(PROJ_A, "m1", T0, 0);
	bool stored;
	assert_int_equal(store_events_insert(st, &a, 1, DAY, &stored), STORE_OK);
	assert_true(stored);
	/* Within the window (also just inside it, and from a clock behind): not stored again. */
	int64_t within[] = {T0 + 1, T0 + DAY - 1, T0 - 1000};
	for (int i = 0; i < 3; i++) {
		struct store_event b = ev(PROJ_A, "m1", within[i], 1 + i);
		stored = true;
		assert_int_equal(store_events_insert(st, &b, 1, DAY, &stored), STORE_OK);
		assert_false(stored);
	}
	assert_int_equal(count_events(st), 1);
	/* Another project's m1 is another message. */
	struct store_event other = ev(PROJ_B, "m1", T0 + 5, 9);
	assert_int_equal(store_events_insert(st, &other, 1, DAY, &stored), STORE_OK);
	assert_true(stored);
	/* A window later: stored again, and the window now runs from it. */
	struct store_event c = ev(PROJ_A, "m1", T0 + DAY, 10);
	assert_int_equal(store_events_insert(st, &c, 1, DAY, &stored), STORE_OK);
	assert_true(stored);
	struct store_event d = ev(PROJ_A, "m1", T0 + DAY + 1000, 11);
	assert_int_equal(store_events_insert(st, &d, 1, DAY, &stored), STORE_OK);
	assert_false(stored);
	assert_int_equal(count_events(st), 3);
	/* A mixed batch: the new messageId stored, the repeat acknowledged only. */
	struct store_event mixed[2] = {ev(PROJ_A, "m1", T0 + DAY + 2000, 12),
	                               ev(PROJ_A, "m9", T0 + DAY + 2000, 13)};
	bool st2[2];
	assert_int_equal(store_events_insert(st, mixed, 2, DAY, st2), STORE_OK);
	assert_false(st2[0]);
	assert_true(st2[1]);
	assert_int_equal(count_events(st), 4);
}

/*
 * The claims' first run has no RETURNING and counts the claims taken over
 * all its statements (64 + 32 + 4 rows here): one claim refused in the last
 * statement, or in the first, sends the batch through again naming the
 * claims, and exactly the new events are stored (a repeat seen again too).
 */
static void test_one_repeat_among_many(void **state)
{
	struct fixture *fx = *state;
	struct store *st = fx->st;
	enum { N = 100 };
	static const int repeat_at[] = {N - 1, 0, 65};
	struct store_event old[3];
	for (int k = 0; k < 3; k++) {
		char mid[16];
		snprintf(mid, sizeof mid, "old%d", k);
		old[k] = ev(PROJ_A, mid, T0, 900 + k);
	}
	assert_int_equal(store_events_insert(st, old, 3, DAY, NULL), STORE_OK);
	static struct store_event e[N];
	static bool stored[N];
	for (int k = 0; k < 3; k++) {
		for (int i = 0; i < N; i++) {
			char mid[24];
			snprintf(mid, sizeof mid, "r%d-%d", k, i);
			e[i] = ev(PROJ_A, mid, T0 + 10 + k, 1000 * k + i);
		}
		snprintf(e[repeat_at[k]].message_id, sizeof e[0].message_id, "old%d", k);
		assert_int_equal(store_events_insert(st, e, N, DAY, stored), STORE_OK);
		for (int i = 0; i < N; i++)
			assert_int_equal(stored[i], i != repeat_at[k]);
		assert_int_equal(count_events(st), 3 + (k + 1) * (N - 1));
	}
	assert_int_equal(raw_int(st, "SELECT count(*) FROM event_dedupe", NULL, NULL),
	                 3 + 3 * (N - 1));
}

static void test_failure_stores_nothing(void **state)
{
	struct fixture *fx = *state;
	struct store *st = fx->st;
	struct store_event first = ev(PROJ_A, "m0", T0, 0);
	assert_int_equal(store_events_insert(st, &first, 1, DAY, NULL), STORE_OK);
	/* e[2] reuses e[0]'s id: the whole batch fails, claims included. */
	struct store_event e[3] = {ev(PROJ_A, "m1", T0, 1), ev(PROJ_A, "m2", T0, 2),
	                           ev(PROJ_A, "m3", T0, 1)};
	bool stored[3] = {true, true, true};
	assert_int_not_equal(store_events_insert(st, e, 3, DAY, stored), STORE_OK);
	assert_false(stored[0] || stored[1] || stored[2]);
	assert_int_equal(count_events(st), 1);
	assert_int_equal(raw_int(st, "SELECT count(*) FROM event_dedupe", NULL, NULL), 1);
	/* A retry of the same messageIds (fixed) stores them: nothing was claimed. */
	e[2] = ev(PROJ_A, "m3", T0, 3);
	assert_int_equal(store_events_insert(st, e, 3, DAY, stored), STORE_OK);
	assert_true(stored[0] && stored[1] && stored[2]);
	assert_int_equal(count_events(st), 4);
	/* An event that does not fit its limits is refused before anything runs. */
	struct store_event big = ev(PROJ_A, "m4", T0, 4);
	big.body_len = STORE_EV_BODY_MAX + 1;
	assert_int_equal(store_events_insert(st, &big, 1, DAY, NULL), STORE_ERROR);
	struct store_event nomid = ev(PROJ_A, "", T0, 5);
	assert_int_equal(store_events_insert(st, &nomid, 1, DAY, NULL), STORE_ERROR);
	assert_int_equal(count_events(st), 4);
}

/*
 * An event's id is the ULID of its received_at (the since/until filters and
 * the purge are id ranges): an id of another time, or not an event id, is
 * refused with its whole batch; store_event_set_id gives the one accepted.
 */
static void test_id_must_be_received_at(void **state)
{
	struct fixture *fx = *state;
	struct store *st = fx->st;
	struct store_event e[2] = {ev(PROJ_A, "m0", T0, 0), ev(PROJ_A, "m1", T0 + 7, 1)};
	struct store_event late = e[1];
	late.received_at = T0 + 8; /* its id says T0 + 7 */
	snprintf(late.message_id, sizeof late.message_id, "m2");
	struct store_event batch[2] = {e[0], late};
	assert_int_equal(store_events_insert(st, batch, 2, DAY, NULL), STORE_ERROR);
	struct store_event other = e[0];
	other.id[0] = 'x'; /* "xv_..." */
	assert_int_equal(store_events_insert(st, &other, 1, DAY, NULL), STORE_ERROR);
	other = e[0];
	other.id[3] = 'u'; /* not Crockford base32 */
	assert_int_equal(store_events_insert(st, &other, 1, DAY, NULL), STORE_ERROR);
	assert_int_equal(count_events(st), 0);
	store_event_set_id(&late);
	assert_int_equal(store_events_insert(st, &late, 1, DAY, NULL), STORE_OK);
	assert_int_equal(store_events_insert(st, e, 2, DAY, NULL), STORE_OK);
	assert_int_equal(count_events(st), 3);
	/* The floor of a time sorts below every id of that time and above every earlier one. */
	char floor[STORE_EV_ID_MAX + 1];
	store_event_id_floor(T0 + 7, floor);
	assert_true(strcmp(floor, e[1].id) <= 0);
	assert_true(strcmp(floor, e[0].id) > 0);
	store_event_id_floor(T0 + 8, floor);
	assert_true(strcmp(floor, late.id) <= 0);
	assert_true(strcmp(floor, e[1].id) > 0);
}

/*
 * since (inclusive) and until (exclusive) at their exact millisecond, two
 * events in each boundary millisecond (ids of one time sort by their random
 * part), through every index the lists use: the root's (the primary key),
 * an organisation's, a project's, a project and type's, a user's. The purge
 * at a cutoff keeps the cutoff's millisecond.
 */
static void test_since_until_boundaries(void **state)
{
	struct fixture *fx = *state;
	struct store *st = fx->st;
	const int64_t S = T0 + 100, U = T0 + 200;
	static const int64_t at[] = {T0 + 99,  T0 + 99,  T0 + 100, T0 + 100, T0 + 101,
	                             T0 + 199, T0 + 199, T0 + 200, T0 + 200, T0 + 201};
	enum { N = sizeof at / sizeof at[0] };
	struct store_event e[N];
	for (int i = 0; i < N; i++) {
		char mid[16];
		snprintf(mid, sizeof mid, "b%d", i);
		/* within one millisecond the second event's id is the smaller */
		e[i] = ev(PROJ_A, mid, at[i], 3 * (N - i));
		snprintf(e[i].user_id, sizeof e[i].user_id, "user-b");
	}
	assert_int_equal(store_events_insert(st, e, N, DAY, NULL), STORE_OK);
	struct event_filter paths[5];
	for (int k = 0; k < 5; k++)
		paths[k] = all(50);
	paths[1].org_id = ORG_A;
	paths[2].project_id = PROJ_A;
	paths[3].project_id = PROJ_A;
	paths[3].type = "track";
	paths[4].user_id = "user-b";
	/* (since, until) and the events [lo, hi) of e that match */
	static const struct {
		int64_t since, until;
		int lo, hi;
	} cases[] = {
	    {T0 + 100, T0 + 200, 2, 7}, {T0 + 100, -1, 2, 10},      {-1, T0 + 200, 0, 7},
	    {T0 + 99, T0 + 100, 0, 2},  {T0 + 200, T0 + 201, 7, 9}, {T0 + 101, T0 + 101, 0, 0},
	};
	for (int k = 0; k < 5; k++)
		for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
			struct rows r;
			struct event_filter f = paths[k];
			f.since = cases[c].since;
			f.until = cases[c].until;
			int want = cases[c].hi - cases[c].lo;
			assert_int_equal(list(st, &f, &r), want);
			/* exactly those (as many, each one of them), newest first */
			for (int i = 0; i < want; i++) {
				bool found = false;
				for (int j = cases[c].lo; j < cases[c].hi; j++)
					found = found || strcmp(r.id[i], e[j].id) == 0;
				assert_true(found);
				assert_true(i == 0 || strcmp(r.id[i - 1], r.id[i]) > 0);
			}
		}
	/* The purge at S deletes what was received before S, nothing of S itself. */
	int64_t deleted = -1;
	assert_int_equal(store_events_purge(st, S, &deleted), STORE_OK);
	assert_int_equal(deleted, 2);
	assert_int_equal(store_events_purge(st, U, &deleted), STORE_OK);
	assert_int_equal(deleted, 5);
	assert_int_equal(count_events(st), 3);
}

/*
 * SQLite plans each list statement once, without its values: every
 * combination of filters must still find its rows through an index in id
 * order (no scan of the table, no sort of what it found), also since and
 * until, which have no index of their own (migration 0015). PostgreSQL
 * plans with the values and the table's statistics: not checked here.
 */
static void test_list_plans_use_an_index(void **state)
{
	struct fixture *fx = *state;
	if (is_pg(fx))
		skip();
	static char sql[1 << 7][1024]; /* the driver caches statements by address */
	for (unsigned mask = 0; mask < (1u << 7); mask++) {
		struct event_filter f = all(10);
		f.org_id = mask & 1 ? ORG_A : NULL;
		f.project_id = mask & 2 ? PROJ_A : NULL;
		f.type = mask & 4 ? "track" : NULL;
		f.user_id = mask & 8 ? "user-0" : NULL;
		f.since = mask & 16 ? T0 : -1;
		f.until = mask & 32 ? T0 + 1000 : -1;
		f.before_id = mask & 64 ? "ev_01JXXXXXXXXXXXXXXXXXXXXXXX" : NULL;
		snprintf(sql[mask], sizeof sql[mask], "EXPLAIN QUERY PLAN %s",
		         store_events_list_sql(&f));
		struct raw q = {sql[mask], NULL, 0, NULL};
		assert_int_equal(store_with_conn(fx->st, raw_fn, &q), STORE_OK);
		assert_true(q.r->nrows > 0);
		for (int i = 0; i < q.r->nrows; i++) {
			const char *d = db_text(q.r, i, 3);
			if ((strncmp(d, "SCAN events", 11) == 0 && !strstr(d, " USING ")) ||
			    strstr(d, "TEMP B-TREE"))
				fail_msg("filters %#x: %s: %s", mask, d, store_events_list_sql(&f));
		}
		db_result_free(q.r);
	}
}

/* A large batch crosses the 64-row statements; the body is bound by length. */
static void test_large_batch(void **state)
{
	struct fixture *fx = *state;
	struct store *st = fx->st;
	enum { N = 777 };
	struct store_event *e = calloc(N, sizeof *e);
	bool *stored = calloc(N, sizeof *stored);
	assert_non_null(e);
	assert_non_null(stored);
	static const char padded[] = "{\"a\":1}trailing bytes not part of the body";
	for (int i = 0; i < N; i++) {
		char mid[16];
		snprintf(mid, sizeof mid, "m%d", i % 700); /* 77 repeats */
		e[i] = ev(PROJ_A, mid, T0 + i, i);
		e[i].body = padded;
		e[i].body_len = 7;
	}
	assert_int_equal(store_events_insert(st, e, N, DAY, stored), STORE_OK);
	int n_stored = 0;
	for (int i = 0; i < N; i++) {
		assert_int_equal(stored[i], i < 700);
		n_stored += stored[i];
	}
	assert_int_equal(n_stored, 700);
	assert_int_equal(count_events(st), 700);
	struct rows r;
	struct event_filter f = all(1);
	assert_int_equal(list(st, &f, &r), 1);
	assert_string_equal(r.body, "{\"a\":1}");
	free(e);
	free(stored);
}

static void test_adids_and_purge(void **state)
{
	struct fixture *fx = *state;
	struct store *st = fx->st;
	struct store_event e[3] = {ev(PROJ_A, "m0", T0, 0), ev(PROJ_A, "m1", T0 + 10, 1),
	                           ev(PROJ_A, "m2", T0 + DAY, 2)};
	snprintf(e[0].adid_sealed, sizeof e[0].adid_sealed, "pcs1:00:c2VhbGVk0");
	snprintf(e[2].adid_sealed, sizeof e[2].adid_sealed, "pcs1:00:c2VhbGVk2");
	assert_int_equal(store_events_insert(st, e, 3, DAY, NULL), STORE_OK);
	assert_int_equal(raw_int(st, "SELECT count(*) FROM event_adids", NULL, NULL), 2);
	/* A duplicate's id is not held either. */
	struct store_event dup = ev(PROJ_A, "m2", T0 + DAY + 1, 3);
	snprintf(dup.adid_sealed, sizeof dup.adid_sealed, "pcs1:00:c2VhbGVk3");
	assert_int_equal(store_events_insert(st, &dup, 1, DAY, NULL), STORE_OK);
	assert_int_equal(raw_int(st, "SELECT count(*) FROM event_adids", NULL, NULL), 2);
	/* The forward is done: e[2]'s id goes (e[1] holds none), the event stays. */
	const char *ids[] = {e[2].id, e[1].id};
	assert_int_equal(store_events_adids_delete(st, ids, 2), STORE_OK);
	assert_int_equal(
	    raw_int(st, "SELECT count(*) FROM event_adids WHERE event_id = ?", e[2].id, NULL), 0);
	assert_int_equal(
	    raw_int(st, "SELECT count(*) FROM event_adids WHERE event_id = ?", e[0].id, NULL), 1);
	assert_int_equal(count_events(st), 3);

	/* Retention: events (and a held id) received before the cutoff go. */
	int64_t deleted = -1;
	assert_int_equal(store_events_purge(st, T0, &deleted), STORE_OK);
	assert_int_equal(deleted, 0);
	assert_int_equal(store_events_purge(st, T0 + 11, &deleted), STORE_OK);
	assert_int_equal(deleted, 2);
	assert_int_equal(count_events(st), 1);
	assert_int_equal(raw_int(st, "SELECT count(*) FROM event_adids", NULL, NULL), 0);
	/* The dedupe claims outlive their events until their own purge... */
	struct store_event again = ev(PROJ_A, "m0", T0 + 100, 4);
	bool stored = true;
	assert_int_equal(store_events_insert(st, &again, 1, DAY, &stored), STORE_OK);
	assert_false(stored);
	assert_int_equal(store_events_dedupe_purge(st, T0 + 11, &deleted), STORE_OK);
	assert_int_equal(deleted, 2); /* m0, m1 */
	assert_int_equal(raw_int(st, "SELECT count(*) FROM event_dedupe", NULL, NULL), 1);
	/* ...which (past the window) changes nothing a later insert decides. */
	struct store_event later = ev(PROJ_A, "m1", T0 + DAY + 20, 5);
	assert_int_equal(store_events_insert(st, &later, 1, DAY, &stored), STORE_OK);
	assert_true(stored);
	assert_int_equal(store_events_purge(st, T0 + 2 * DAY, NULL), STORE_OK);
	assert_int_equal(count_events(st), 0);
}

/* ---------- concurrent transactions ---------- */

struct racer {
	struct store *st;
	struct store_event e[40];
	bool stored[40];
	int rc;
};

static void *race(void *arg)
{
	struct racer *r = arg;
	r->rc = store_events_insert(r->st, r->e, 40, DAY, r->stored);
	return NULL;
}

/*
 * Two transactions inserting the same 40 messageIds, in opposite orders, at
 * once and again: each messageId is stored once, never twice, and neither
 * transaction fails (no deadlock: claims are taken in one order).
 */
static void test_concurrent_dedupe(void **state)
{
	struct fixture *fx = *state;
	static struct racer r[2];
	for (int round = 0; round < 5; round++) {
		for (int k = 0; k < 2; k++) {
			r[k].st = fx->st;
			for (int i = 0; i < 40; i++) {
				char mid[24];
				int m = k ? 39 - i : i;
				snprintf(mid, sizeof mid, "r%d-m%d", round, m);
				r[k].e[i] = ev(PROJ_A, mid, T0 + round, 1000 * round + 100 * k + i);
			}
		}
		pthread_t t[2];
		for (int k = 0; k < 2; k++)
			assert_int_equal(pthread_create(&t[k], NULL, race, &r[k]), 0);
		for (int k = 0; k < 2; k++)
			pthread_join(t[k], NULL);
		assert_int_equal(r[0].rc, STORE_OK);
		assert_int_equal(r[1].rc, STORE_OK);
		for (int i = 0; i < 40; i++)
			assert_true(r[0].stored[i] != r[1].stored[39 - i]);
	}
	assert_int_equal(count_events(fx->st), 5 * 40);
}

/*
 * P_TEXTN: text bound with its length, where it is (no NUL after it): the slice only, on
 * both drivers, with a multi-byte character, an empty slice and its NULL pointer.
 */
static void test_text_bound_with_its_length(void **state)
{
	struct fixture *fx = *state;
	static const char buf[] = "caf\xc3\xa9 and more";
	struct db_param p[] = {P_TEXTN(buf, 5), P_TEXTN(buf + 6, 3), P_TEXTN(NULL, 0),
	                       P_TEXTN(buf, 0)};
	/* typed text on PostgreSQL: || and length() of an unknown would be refused */
	struct raw q = {
	    "SELECT CAST(? AS TEXT) || '|' || CAST(? AS TEXT), length(CAST(? AS TEXT)), "
	    "length(CAST(? AS TEXT))",
	    p, 4, NULL};
	assert_int_equal(store_with_conn(fx->st, raw_fn, &q), STORE_OK);
	assert_string_equal(db_text(q.r, 0, 0), "caf\xc3\xa9|and");
	assert_int_equal(db_int(q.r, 0, 1), 0);
	assert_int_equal(db_int(q.r, 0, 2), 0);
	db_result_free(q.r);
}

/* A body that is a slice of a larger buffer (as the parse hands it over): stored as the slice. */
static void test_body_is_stored_as_its_slice(void **state)
{
	struct fixture *fx = *state;
	static const char buf[] = "{\"type\":\"track\"}{\"next\":1}";
	struct store_event e = ev(PROJ_A, "slice", T0, 1);
	e.body = buf;
	e.body_len = strlen("{\"type\":\"track\"}");
	assert_int_equal(store_events_insert(fx->st, &e, 1, DAY, NULL), STORE_OK);
	struct rows r;
	struct event_filter f = all(5);
	assert_int_equal(list(fx->st, &f, &r), 1);
	assert_string_equal(r.body, "{\"type\":\"track\"}");
}

#define TESTS(setup)                                                                               \
	cmocka_unit_test_setup_teardown(test_insert_and_list, setup, teardown),                    \
	    cmocka_unit_test_setup_teardown(test_dedupe_in_one_batch, setup, teardown),            \
	    cmocka_unit_test_setup_teardown(test_dedupe_window, setup, teardown),                  \
	    cmocka_unit_test_setup_teardown(test_one_repeat_among_many, setup, teardown),          \
	    cmocka_unit_test_setup_teardown(test_failure_stores_nothing, setup, teardown),         \
	    cmocka_unit_test_setup_teardown(test_id_must_be_received_at, setup, teardown),         \
	    cmocka_unit_test_setup_teardown(test_since_until_boundaries, setup, teardown),         \
	    cmocka_unit_test_setup_teardown(test_list_plans_use_an_index, setup, teardown),        \
	    cmocka_unit_test_setup_teardown(test_large_batch, setup, teardown),                    \
	    cmocka_unit_test_setup_teardown(test_adids_and_purge, setup, teardown),                \
	    cmocka_unit_test_setup_teardown(test_concurrent_dedupe, setup, teardown),              \
	    cmocka_unit_test_setup_teardown(test_text_bound_with_its_length, setup, teardown),     \
	    cmocka_unit_test_setup_teardown(test_body_is_stored_as_its_slice, setup, teardown)

int main(void)
{
	const struct CMUnitTest sqlite_tests[] = {TESTS(setup_sqlite)};
	const struct CMUnitTest postgres_tests[] = {TESTS(setup_postgres)};
	return fixture_main("store_events", sqlite_tests, postgres_tests,
	                    sizeof sqlite_tests / sizeof sqlite_tests[0]);
}
