/*
 * test_budgets.c: project budgets (store/store_budgets.h). The pure
 * arithmetic first (the count at which a threshold is reached, which
 * thresholds a month's count moving from a to b crosses, the stored
 * notify_at list), then the writer and the API's half on SQLite and, when
 * PORTCULLIS_TEST_PG_URL is set, PostgreSQL: each threshold notified once
 * per month (one budget_notices row, one audit event, one outbox message)
 * whatever the batches, only the project's authenticated rows counted, a
 * month boundary inside one batch, a budget set above or below the month's
 * count, removal, the purge of months older than the usage retention, two
 * writers at once.
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

#include "store/store_budgets.h"
#include "store/store_usage.h"

#define FIXTURE_DB_NAME "portcullis_test_budgets"
#define FIXTURE_TMP     "pcl-budgets"
#include "store_fixture.h"

#define ORG_A  "ORGA0000000000000000000001"
#define ORG_B  "ORGB0000000000000000000001"
#define PROJ_1 "PRJ10000000000000000000001"
#define PROJ_2 "PRJ20000000000000000000001"
#define KEY_1  "01KEY00000000000000000000A"

/* 2026-11-30T23:59:00Z and 2026-12-01T00:00:00Z. */
#define T_NOV_END   1796083140000LL
#define T_DEC_START 1796083200000LL

/* ---------- arithmetic ---------- */

static struct store_budget budget_of(int64_t rpm, const int *at, int n)
{
	struct store_budget b = {.requests_per_month = rpm, .n_notify = n};
	for (int i = 0; i < n; i++)
		b.notify_at[i] = at[i];
	return b;
}

static void test_threshold_count(void **state)
{
	(void)state;
	assert_int_equal(budget_threshold_count(10, 50), 5);
	assert_int_equal(budget_threshold_count(10, 100), 10);
	assert_int_equal(budget_threshold_count(3, 50), 2); /* 1.5 requests: the second */
	assert_int_equal(budget_threshold_count(7, 1), 1);  /* never 0: no request reaches 0 */
	assert_int_equal(budget_threshold_count(1, 1000), 10);
	assert_int_equal(budget_threshold_count(BUDGET_REQUESTS_MAX, BUDGET_PERCENT_MAX),
	                 BUDGET_REQUESTS_MAX * 10);
}

/* crossed(from, to) as a bit set of the thresholds' positions. */
static unsigned crossed(const struct store_budget *b, int64_t from, int64_t to)
{
	int out[BUDGET_THRESHOLDS_MAX];
	int n = budget_crossed(b, from, to, out);
	unsigned set = 0;
	for (int i = 0; i < n; i++)
		for (int j = 0; j < b->n_notify; j++)
			if (b->notify_at[j] == out[i])
				set |= 1u << j;
	return set;
}

static void test_crossed(void **state)
{
	(void)state;
	static const int at[] = {50, 100, 150};
	struct store_budget b = budget_of(10, at, 3);
	assert_int_equal(crossed(&b, 0, 4), 0);
	assert_int_equal(crossed(&b, 4, 5), 1);   /* 50 % exactly at 5 */
	assert_int_equal(crossed(&b, 5, 9), 0);   /* already past 50 % */
	assert_int_equal(crossed(&b, 9, 10), 2);  /* 100 % */
	assert_int_equal(crossed(&b, 10, 14), 0); /* between 100 and 150 */
	assert_int_equal(crossed(&b, 4, 10), 3);  /* one batch over two thresholds */
	assert_int_equal(crossed(&b, 0, 1000), 7);
	assert_int_equal(crossed(&b, 15, 1000), 0);
	assert_int_equal(crossed(&b, 3, 3), 0); /* no change, nothing crossed */
	/* Every threshold reached at a count: from 0 (what setting a budget notifies). */
	assert_int_equal(crossed(&b, 0, 12), 3);
	static const int one[] = {1};
	struct store_budget tiny = budget_of(1000000, one, 1);
	assert_int_equal(crossed(&tiny, 9999, 10000), 1);
	assert_int_equal(crossed(&tiny, 0, 9999), 0);
}

static void test_notify_text(void **state)
{
	(void)state;
	static const int at[] = {1, 80, 100, 1000};
	struct store_budget b = budget_of(5, at, 4), back;
	char s[BUDGET_NOTIFY_TEXT + 1];
	budget_notify_format(&b, s, sizeof s);
	assert_string_equal(s, "1,80,100,1000");
	assert_int_equal(budget_notify_parse(s, &back), 0);
	assert_int_equal(back.n_notify, 4);
	assert_int_equal(back.notify_at[3], 1000);
	static const int ten[] = {991, 992, 993, 994, 995, 996, 997, 998, 999, 1000};
	b = budget_of(5, ten, 10);
	budget_notify_format(&b, s, sizeof s);
	assert_int_equal(strlen(s), 40); /* the longest list there can be */
	assert_int_equal(budget_notify_parse(s, &back), 0);
	static const char *const bad[] = {
	    "",        "50,",     ",50",       "100,50", "50,50", "0",
	    "1001",    "a",       "50 ,100",   "100000", "-5",    "1,2,3,4,5,6,7,8,9,10,11",
	    "50,,100", "0050000", "4294967346"};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
		assert_int_equal(budget_notify_parse(bad[i], &back), -1);
}

static void test_valid(void **state)
{
	(void)state;
	static const int at[] = {80, 100};
	struct store_budget b = budget_of(1, at, 2);
	assert_true(budget_valid(&b));
	b.requests_per_month = BUDGET_REQUESTS_MAX;
	assert_true(budget_valid(&b));
	b.requests_per_month = BUDGET_REQUESTS_MAX + 1;
	assert_false(budget_valid(&b));
	b.requests_per_month = 0;
	assert_false(budget_valid(&b));
	b = budget_of(10, at, 0);
	assert_false(budget_valid(&b));
	static const int desc[] = {100, 80};
	b = budget_of(10, desc, 2);
	assert_false(budget_valid(&b));
}

/* ---------- the store ---------- */

static struct store_request_row row(int i, int64_t at, const char *project, const char *refusal)
{
	struct store_request_row r;
	memset(&r, 0, sizeof r);
	snprintf(r.request_id, sizeof r.request_id, "req_%026d", i);
	r.received_at = at;
	snprintf(r.org_id, sizeof r.org_id, "%s", ORG_A);
	snprintf(r.project_id, sizeof r.project_id, "%s", project);
	snprintf(r.key_id, sizeof r.key_id, "%s", KEY_1);
	snprintf(r.method, sizeof r.method, "GET");
	snprintf(r.path, sizeof r.path, "/x");
	snprintf(r.route, sizeof r.route, "proxy:default");
	snprintf(r.refusal, sizeof r.refusal, "%s", refusal);
	r.status = refusal[0] ? 401 : 200;
	return r;
}

/* Insert n authenticated rows of PROJ_1 at at, ids from *next on. */
static void traffic(struct store *st, int *next, int n, int64_t at)
{
	struct store_request_row *rows = calloc((size_t)n, sizeof *rows);
	assert_non_null(rows);
	for (int i = 0; i < n; i++)
		rows[i] = row((*next)++, at + i, PROJ_1, "");
	assert_int_equal(store_request_log_insert(st, rows, n), STORE_OK);
	free(rows);
}

static void set_budget(struct store *st, const char *project, int64_t rpm, const int *at, int n,
                       int64_t now)
{
	struct store_budget b = budget_of(rpm, at, n);
	b.updated_at = now;
	struct audit_input a = audit(ORG_A, "project.updated", "project", project);
	assert_int_equal(store_budget_set(st, ORG_A, project, &b, &a), STORE_OK);
}

static int64_t notices(struct store *st, const char *month)
{
	return raw_int(st, "SELECT COUNT(*) FROM budget_notices WHERE month = ?", month, NULL);
}

static int64_t messages(struct store *st)
{
	return raw_int(st,
	               "SELECT COUNT(*) FROM webhook_messages WHERE type = "
	               "'usage.budget_threshold'",
	               NULL, NULL);
}

static int64_t month_count(struct store *st, const char *month)
{
	return raw_int(st, "SELECT requests FROM usage_month WHERE project_id = ? AND month = ?",
	               PROJ_1, month);
}

static void make_tenant(struct store *st)
{
	make_org(st, ORG_A, "ops@example.com");
	make_org(st, ORG_B, NULL);
	make_project(st, ORG_A, PROJ_1);
	make_project(st, ORG_A, PROJ_2);
}

static void test_each_threshold_once(void **state)
{
	struct fixture *fx = *state;
	make_tenant(fx->st);
	static const int at[] = {50, 100};
	set_budget(fx->st, PROJ_1, 10, at, 2, T_DEC_START);
	int next = 0;
	traffic(fx->st, &next, 4, T_DEC_START + 1000);
	assert_int_equal(notices(fx->st, "2026-12"), 0);
	/* Refused attempts, another project's and org-wide rows do not count. */
	struct store_request_row other[4] = {
	    row(next++, T_DEC_START + 2000, PROJ_1, "wrong_secret"),
	    row(next++, T_DEC_START + 2001, PROJ_1, "killed"),
	    row(next++, T_DEC_START + 2002, PROJ_2, ""),
	    row(next++, T_DEC_START + 2003, "", ""),
	};
	assert_int_equal(store_request_log_insert(fx->st, other, 4), STORE_OK);
	assert_int_equal(month_count(fx->st, "2026-12"), 4);
	assert_int_equal(notices(fx->st, "2026-12"), 0);
	traffic(fx->st, &next, 1, T_DEC_START + 3000); /* the 5th: 50 % */
	assert_int_equal(notices(fx->st, "2026-12"), 1);
	assert_int_equal(messages(fx->st), 1);
	/* A retried batch counts nothing and notifies nothing twice. */
	next--;
	traffic(fx->st, &next, 1, T_DEC_START + 3000);
	assert_int_equal(month_count(fx->st, "2026-12"), 5);
	traffic(fx->st, &next, 7, T_DEC_START + 4000); /* 12: 100 % */
	traffic(fx->st, &next, 20, T_DEC_START + 5000);
	assert_int_equal(month_count(fx->st, "2026-12"), 32);
	assert_int_equal(notices(fx->st, "2026-12"), 2);
	assert_int_equal(messages(fx->st), 2);
	assert_int_equal(raw_int(fx->st,
	                         "SELECT COUNT(*) FROM audit_events WHERE action = "
	                         "'usage.budget_threshold' AND target_id = ?",
	                         PROJ_1, NULL),
	                 2);
	/* The message: the project's, with the month, threshold, budget and count. */
	struct db_result *r = raw(fx->st,
	                          "SELECT org_id, project_id, body FROM webhook_messages WHERE "
	                          "type = 'usage.budget_threshold' ORDER BY id",
	                          NULL, NULL);
	assert_int_equal(r->nrows, 2);
	assert_string_equal(db_text(r, 0, 0), ORG_A);
	assert_string_equal(db_text(r, 0, 1), PROJ_1);
	assert_non_null(strstr(db_text(r, 0, 2),
	                       "\"data\":{\"project_id\":\"" PROJ_1 "\",\"org_id\":\"" ORG_A
	                       "\",\"month\":\"2026-12\",\"threshold\":50,"
	                       "\"requests_per_month\":10,\"requests\":5,"));
	assert_non_null(strstr(db_text(r, 1, 2), "\"threshold\":100,\"requests_per_month\":10,"
	                                         "\"requests\":12,"));
	db_result_free(r);
	int64_t got = 0;
	assert_int_equal(store_budget_month_requests(fx->st, PROJ_1, T_DEC_START + 9, &got),
	                 STORE_OK);
	assert_int_equal(got, 32);
	assert_int_equal(store_budget_month_requests(fx->st, PROJ_2, T_NOV_END, &got), STORE_OK);
	assert_int_equal(got, 0);
}

static void test_month_boundary(void **state)
{
	struct fixture *fx = *state;
	make_tenant(fx->st);
	static const int at[] = {100};
	set_budget(fx->st, PROJ_1, 2, at, 1, T_NOV_END);
	/* One batch: two November rows (100 %), one December row. */
	struct store_request_row rows[3] = {
	    row(0, T_NOV_END, PROJ_1, ""),
	    row(1, T_DEC_START, PROJ_1, ""),
	    row(2, T_DEC_START - 1, PROJ_1, ""),
	};
	assert_int_equal(store_request_log_insert(fx->st, rows, 3), STORE_OK);
	assert_int_equal(month_count(fx->st, "2026-11"), 2);
	assert_int_equal(month_count(fx->st, "2026-12"), 1);
	assert_int_equal(notices(fx->st, "2026-11"), 1);
	assert_int_equal(notices(fx->st, "2026-12"), 0);
	/* December starts from zero: its own notice at its own 100 %. */
	int next = 3;
	traffic(fx->st, &next, 1, T_DEC_START + 5);
	assert_int_equal(notices(fx->st, "2026-12"), 1);
	assert_int_equal(messages(fx->st), 2);
}

static void test_set_notifies_reached_and_rearms(void **state)
{
	struct fixture *fx = *state;
	make_tenant(fx->st);
	int next = 0;
	traffic(fx->st, &next, 9, T_DEC_START); /* no budget yet: counted all the same */
	assert_int_equal(month_count(fx->st, "2026-12"), 9);
	static const int at[] = {50, 80, 100};
	/* Set at 9 of 10: 50 and 80 are reached, notified at once; 100 is not. */
	set_budget(fx->st, PROJ_1, 10, at, 3, T_DEC_START + 100);
	assert_int_equal(notices(fx->st, "2026-12"), 2);
	assert_int_equal(messages(fx->st), 2);
	/* The same budget again: nothing new. */
	set_budget(fx->st, PROJ_1, 10, at, 3, T_DEC_START + 200);
	assert_int_equal(messages(fx->st), 2);
	/* Raised to 100: 50 % and 80 % are 50 and 80 requests away again (re-armed). */
	set_budget(fx->st, PROJ_1, 100, at, 3, T_DEC_START + 300);
	assert_int_equal(notices(fx->st, "2026-12"), 0);
	traffic(fx->st, &next, 41, T_DEC_START + 1000); /* 50 */
	assert_int_equal(notices(fx->st, "2026-12"), 1);
	assert_int_equal(messages(fx->st), 3);
	struct store_budget b;
	assert_int_equal(store_budget_get(fx->st, PROJ_1, &b), STORE_OK);
	assert_int_equal(b.requests_per_month, 100);
	assert_int_equal(b.n_notify, 3);
	assert_int_equal(b.notify_at[2], 100);
	assert_int_equal(b.updated_at, T_DEC_START + 300);
	/* Removed: the count goes on, nothing is notified. */
	struct audit_input a = audit(ORG_A, "project.updated", "project", PROJ_1);
	assert_int_equal(store_budget_set(fx->st, ORG_A, PROJ_1, NULL, &a), STORE_OK);
	assert_int_equal(store_budget_get(fx->st, PROJ_1, &b), STORE_ENOTFOUND);
	traffic(fx->st, &next, 60, T_DEC_START + 2000);
	assert_int_equal(month_count(fx->st, "2026-12"), 110);
	assert_int_equal(messages(fx->st), 3);
	/* Another organisation's project, a project that does not exist. */
	struct store_budget ok = budget_of(10, at, 3);
	assert_int_equal(store_budget_set(fx->st, ORG_B, PROJ_1, &ok, &a), STORE_ENOTFOUND);
	assert_int_equal(store_budget_set(fx->st, ORG_A, "PRJ90000000000000000000009", &ok, &a),
	                 STORE_ENOTFOUND);
	struct store_budget bad = budget_of(0, at, 3);
	assert_int_equal(store_budget_set(fx->st, ORG_A, PROJ_1, &bad, &a), STORE_ERROR);
}

static void test_purge_drops_whole_months_before_the_cutoff(void **state)
{
	struct fixture *fx = *state;
	make_tenant(fx->st);
	static const int at[] = {100};
	set_budget(fx->st, PROJ_1, 1, at, 1, T_NOV_END);
	int next = 0;
	traffic(fx->st, &next, 1, T_NOV_END);
	traffic(fx->st, &next, 1, T_DEC_START);
	assert_int_equal(notices(fx->st, "2026-11"), 1);
	assert_int_equal(notices(fx->st, "2026-12"), 1);
	int64_t deleted = 0;
	/* A cutoff inside December keeps December whole. */
	assert_int_equal(store_usage_purge(fx->st, T_DEC_START + 10 * USAGE_DAY_MS, &deleted),
	                 STORE_OK);
	assert_int_equal(month_count(fx->st, "2026-11"), -1);
	assert_int_equal(notices(fx->st, "2026-11"), 0);
	assert_int_equal(month_count(fx->st, "2026-12"), 1);
	assert_int_equal(notices(fx->st, "2026-12"), 1);
}

struct writer {
	struct store *st;
	int first; /* request ids first..first+99 */
	int rc;
};

/* Ten batches of ten rows, five for each project (two cells a batch). */
static void *write_batches(void *arg)
{
	struct writer *w = arg;
	w->rc = STORE_OK;
	for (int b = 0; b < 10 && w->rc == STORE_OK; b++) {
		struct store_request_row rows[10];
		for (int i = 0; i < 10; i++)
			rows[i] = row(w->first + 10 * b + i, T_DEC_START + i,
			              i % 2 ? PROJ_2 : PROJ_1, "");
		w->rc = store_request_log_insert(w->st, rows, 10);
	}
	return NULL;
}

/*
 * Two writers (two nodes' request-log writers) on one database at once,
 * each crossing thresholds of both projects: every threshold goes out once,
 * neither transaction fails (no deadlock: cells are upserted in one order).
 */
static void test_concurrent_writers_notify_each_threshold_once(void **state)
{
	struct fixture *fx = *state;
	make_tenant(fx->st);
	static const int at[] = {10, 20, 30, 40, 50, 60, 70, 80, 90, 100};
	set_budget(fx->st, PROJ_1, 100, at, 10, T_DEC_START);
	set_budget(fx->st, PROJ_2, 100, at, 10, T_DEC_START);
	struct writer w[2] = {{fx->st, 0, 0}, {fx->st, 1000, 0}};
	pthread_t t[2];
	for (int k = 0; k < 2; k++)
		assert_int_equal(pthread_create(&t[k], NULL, write_batches, &w[k]), 0);
	for (int k = 0; k < 2; k++)
		pthread_join(t[k], NULL);
	assert_int_equal(w[0].rc, STORE_OK);
	assert_int_equal(w[1].rc, STORE_OK);
	assert_int_equal(month_count(fx->st, "2026-12"), 100);
	assert_int_equal(notices(fx->st, "2026-12"), 20);
	assert_int_equal(messages(fx->st), 20);
	assert_int_equal(raw_int(fx->st,
	                         "SELECT COUNT(DISTINCT threshold) FROM budget_notices WHERE "
	                         "project_id = ?",
	                         PROJ_2, NULL),
	                 10);
}

#define TESTS(setup)                                                                               \
	cmocka_unit_test_setup_teardown(test_each_threshold_once, setup, teardown),                \
	    cmocka_unit_test_setup_teardown(test_month_boundary, setup, teardown),                 \
	    cmocka_unit_test_setup_teardown(test_set_notifies_reached_and_rearms, setup,           \
	                                    teardown),                                             \
	    cmocka_unit_test_setup_teardown(test_purge_drops_whole_months_before_the_cutoff,       \
	                                    setup, teardown),                                      \
	    cmocka_unit_test_setup_teardown(test_concurrent_writers_notify_each_threshold_once,    \
	                                    setup, teardown)

int main(void)
{
	const struct CMUnitTest pure[] = {
	    cmocka_unit_test(test_threshold_count),
	    cmocka_unit_test(test_crossed),
	    cmocka_unit_test(test_notify_text),
	    cmocka_unit_test(test_valid),
	};
	int failed = cmocka_run_group_tests_name("budgets/arithmetic", pure, NULL, NULL);
	const struct CMUnitTest sqlite_tests[] = {TESTS(setup_sqlite)};
	const struct CMUnitTest postgres_tests[] = {TESTS(setup_postgres)};
	return failed + fixture_main("budgets", sqlite_tests, postgres_tests,
	                             sizeof sqlite_tests / sizeof sqlite_tests[0]);
}
