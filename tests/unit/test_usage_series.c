/*
 * test_usage_series.c: the usage series (store_usage_series.c) on SQLite
 * and, when PORTCULLIS_TEST_PG_URL is set, PostgreSQL. Every query shape
 * (hour and day, every group, an organisation, a project, an operator naming
 * a project, an operator over every organisation) answers the same points
 * read from the series as from the cells they were compacted from; a
 * compaction skips empty stretches and stops at the open hour; a late batch
 * into a compacted hour marks it and the next compaction rebuilds it; the
 * budget bounds one call; the purge removes series rows.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#define FIXTURE_DB_NAME "portcullis_test_usage_series"
#define FIXTURE_TMP     "pcl-series"
#include "store_fixture.h"
#include "store/store_usage.h"

#define ORG_A  "01ORGA0000000000000000000A"
#define ORG_B  "01ORGB0000000000000000000B"
#define PROJ_1 "01PRJ10000000000000000000A"
#define PROJ_2 "01PRJ20000000000000000000A"
#define PROJ_3 "01PRJ30000000000000000000B"

/* 2024-03-01T00:00:00Z, an hour's and a day's start. */
#define T0 1709251200000LL
#define H  USAGE_HOUR_MS

static int row_seq;

/* A row of org/project (NULL: none) with key k, status and region, at t. */
static struct store_request_row row(const char *org, const char *project, int k, int status,
                                    const char *region, int64_t t)
{
	struct store_request_row r;
	memset(&r, 0, sizeof r);
	snprintf(r.request_id, sizeof r.request_id, "req_%026d", ++row_seq);
	r.received_at = t;
	snprintf(r.org_id, sizeof r.org_id, "%s", org);
	snprintf(r.project_id, sizeof r.project_id, "%s", project ? project : "");
	snprintf(r.key_id, sizeof r.key_id, "01KEY%020d%c", k, 'A' + (char)(k % 20));
	snprintf(r.method, sizeof r.method, "GET");
	snprintf(r.path, sizeof r.path, "/x");
	snprintf(r.route, sizeof r.route, "%s", k % 2 ? "proxy:orders" : "proxy:default");
	snprintf(r.region, sizeof r.region, "%s", region);
	r.status = status;
	r.duration_ms = k + 1;
	r.bytes_in = 3;
	r.bytes_out = 100 + k;
	return r;
}

/* Rows over hours [0, hours) from T0 across two organisations and three projects. */
static void load(struct store *st, int hours, int first_hour)
{
	static const char *const regions[] = {"US", "DE", "NL", ""};
	struct store_request_row rows[48];
	for (int h = first_hour; h < first_hour + hours; h++) {
		int n = 0;
		for (int i = 0; i < 48; i++) {
			int k = (i * 7 + h) % 9;
			const char *org = k < 6 ? ORG_A : ORG_B;
			const char *proj = k < 3 ? PROJ_1 : k < 5 ? PROJ_2 : k == 5 ? NULL : PROJ_3;
			int status = i % 11 == 0 ? 503 : i % 5 == 0 ? 404 : 200;
			rows[n++] =
			    row(org, proj, k, status, regions[(i + h) % 4], T0 + h * H + i * 60000);
		}
		assert_int_equal(store_request_log_insert(st, rows, n), STORE_OK);
	}
}

/* The points of one query as text, one line each. */
struct points {
	char buf[1 << 16];
	size_t len;
	int n;
	int64_t requests;
};

static void collect(void *ctx, const struct usage_point *p)
{
	struct points *pts = ctx;
	int w = snprintf(pts->buf + pts->len, sizeof pts->buf - pts->len,
	                 "%lld %s %lld %lld %lld %lld %lld %lld\n", (long long)p->bucket,
	                 p->value ? p->value : "-", (long long)p->requests,
	                 (long long)p->errors_4xx, (long long)p->errors_5xx, (long long)p->bytes_in,
	                 (long long)p->bytes_out, (long long)p->duration_ms_sum);
	assert_true(w > 0 && (size_t)w < sizeof pts->buf - pts->len);
	pts->len += (size_t)w;
	pts->n++;
	pts->requests += p->requests;
}

/* The query shapes: scope (org, project) x granularity x group. */
struct shape {
	const char *org, *project;
};
static const struct shape shapes[] = {
    {ORG_A, NULL}, {ORG_A, PROJ_1}, {NULL, PROJ_3}, {NULL, NULL}, {ORG_B, PROJ_1},
};
#define N_SHAPES  ((int)(sizeof shapes / sizeof shapes[0]))
#define N_QUERIES (N_SHAPES * 2 * 6)

static void query_all(struct store *st, int64_t since, int64_t until, struct points *out)
{
	int q = 0;
	for (int s = 0; s < N_SHAPES; s++)
		for (int g = USAGE_HOUR; g <= USAGE_DAY; g++)
			for (int by = USAGE_BY_NONE; by <= USAGE_BY_REGION; by++, q++) {
				struct usage_filter f = {.org_id = shapes[s].org,
				                         .project_id = shapes[s].project,
				                         .since = since,
				                         .until = until,
				                         .granularity = (enum usage_granularity)g,
				                         .group_by = (enum usage_group)by,
				                         .limit = 100000};
				out[q].len = 0;
				out[q].n = 0;
				out[q].requests = 0;
				assert_int_equal(store_usage_query(st, &f, collect, &out[q]),
				                 STORE_OK);
			}
}

static void assert_same(const struct points *a, const struct points *b)
{
	for (int q = 0; q < N_QUERIES; q++) {
		if (a[q].len != b[q].len || memcmp(a[q].buf, b[q].buf, a[q].len) != 0)
			fail_msg("query %d differs:\n%.*s---\n%.*s", q, (int)a[q].len, a[q].buf,
			         (int)b[q].len, b[q].buf);
	}
}

static void tenants(struct store *st)
{
	make_org(st, ORG_A, NULL);
	make_org(st, ORG_B, NULL);
	make_project(st, ORG_A, PROJ_1);
	make_project(st, ORG_A, PROJ_2);
	make_project(st, ORG_B, PROJ_3);
}

static int64_t through(struct store *st)
{
	return raw_int(st, "SELECT through FROM usage_compacted WHERE id = 1", NULL, NULL);
}

static void test_series_answer_as_the_cells(void **state)
{
	struct fixture *fx = *state;
	tenants(fx->st);
	load(fx->st, 30, 0); /* 30 hours: two days */
	static struct points before[N_QUERIES], after[N_QUERIES];
	static struct points late[N_QUERIES], early[N_QUERIES], side[N_QUERIES];
	int64_t since = T0 - 2 * USAGE_DAY_MS, until = T0 + 3 * USAGE_DAY_MS;
	query_all(fx->st, since, until, before);
	query_all(fx->st, T0 + 22 * H, until, late);  /* wholly after through, below */
	query_all(fx->st, since, T0 + 10 * H, early); /* wholly before it */
	assert_true(before[0].requests > 0 && before[0].requests < 30 * 48); /* ORG_A's share */
	assert_int_equal(before[3 * 12].requests, 30 * 48); /* every organisation */

	/* Compact up to hour 20 (the 20th still open): hours 0..19 move to the series. */
	int hours = 0;
	bool more = true;
	assert_int_equal(store_usage_compact(fx->st, T0 + 20 * H + 5, 60000, &hours, &more),
	                 STORE_OK);
	assert_false(more);
	assert_int_equal(hours, 20);
	assert_int_equal(through(fx->st), T0 + 20 * H);
	assert_true(raw_int(fx->st, "SELECT COUNT(*) FROM usage_series", NULL, NULL) > 0);
	/* A query that straddles through reads both and answers the same. */
	query_all(fx->st, since, until, after);
	assert_same(before, after);
	/* A window that starts after through (the cells' bound is since, not through). */
	query_all(fx->st, T0 + 22 * H, until, side);
	assert_same(late, side);
	assert_true(late[0].requests > 0);
	query_all(fx->st, since, T0 + 10 * H, side);
	assert_same(early, side);

	/* The series are what is read before through: removing the cells there changes nothing. */
	struct db_param p[] = {P_INT(T0 + 20 * H)};
	struct raw del = {"DELETE FROM usage_hour WHERE bucket < ?", p, 1, NULL};
	assert_int_equal(store_with_conn(fx->st, raw_fn, &del), STORE_OK);
	db_result_free(del.r);
	query_all(fx->st, since, until, after);
	assert_same(before, after);
}

static void test_compaction_skips_empty_hours_and_stops_at_the_open_one(void **state)
{
	struct fixture *fx = *state;
	tenants(fx->st);
	/* Nothing at all: through jumps to the open hour, nothing built. */
	int hours = -1;
	bool more = true;
	assert_int_equal(store_usage_compact(fx->st, T0, 60000, &hours, &more), STORE_OK);
	assert_int_equal(hours, 0);
	assert_false(more);
	assert_int_equal(through(fx->st), T0);
	/* Two hours of rows a week later: only those two are built. */
	load(fx->st, 2, 24 * 7);
	assert_int_equal(
	    store_usage_compact(fx->st, T0 + (24 * 7 + 2) * H + 59 * 60000, 60000, &hours, &more),
	    STORE_OK);
	assert_int_equal(hours, 2);
	assert_int_equal(through(fx->st), T0 + (24 * 7 + 2) * H);
	/* Again: nothing new. */
	assert_int_equal(
	    store_usage_compact(fx->st, T0 + (24 * 7 + 2) * H + 59 * 60000, 60000, &hours, &more),
	    STORE_OK);
	assert_int_equal(hours, 0);
}

static void test_a_late_batch_marks_its_hour_and_is_rebuilt(void **state)
{
	struct fixture *fx = *state;
	tenants(fx->st);
	load(fx->st, 10, 0);
	assert_int_equal(store_usage_compact(fx->st, T0 + 10 * H, 60000, NULL, NULL), STORE_OK);
	/* The writer adds rows to hours 3 and 4 (already in the series) and to the open hour 10. */
	struct store_request_row late[3] = {
	    row(ORG_A, PROJ_1, 0, 200, "US", T0 + 3 * H + 1000),
	    row(ORG_A, PROJ_2, 3, 500, "DE", T0 + 4 * H + 1000),
	    row(ORG_A, PROJ_1, 0, 200, "US", T0 + 10 * H + 1000),
	};
	assert_int_equal(store_request_log_insert(fx->st, late, 3), STORE_OK);
	assert_int_equal(raw_int(fx->st, "SELECT COUNT(*) FROM usage_dirty", NULL, NULL), 2);
	static struct points fresh[N_QUERIES], rebuilt[N_QUERIES];
	/* What the cells say (through back to 0: the cells only). */
	struct raw reset_through = {"UPDATE usage_compacted SET through = 0 WHERE id = 1", NULL, 0,
	                            NULL};
	struct db_param t[] = {P_INT(T0 + 10 * H)};
	struct raw set_through = {"UPDATE usage_compacted SET through = ? WHERE id = 1", t, 1,
	                          NULL};
	assert_int_equal(store_with_conn(fx->st, raw_fn, &reset_through), STORE_OK);
	db_result_free(reset_through.r);
	query_all(fx->st, T0, T0 + 2 * USAGE_DAY_MS, fresh);
	assert_int_equal(store_with_conn(fx->st, raw_fn, &set_through), STORE_OK);
	db_result_free(set_through.r);
	int hours = 0;
	bool more = true;
	assert_int_equal(store_usage_compact(fx->st, T0 + 10 * H, 60000, &hours, &more), STORE_OK);
	assert_int_equal(hours, 2);
	assert_false(more);
	assert_int_equal(raw_int(fx->st, "SELECT COUNT(*) FROM usage_dirty", NULL, NULL), 0);
	query_all(fx->st, T0, T0 + 2 * USAGE_DAY_MS, rebuilt);
	assert_same(fresh, rebuilt);
	assert_int_equal(through(fx->st), T0 + 10 * H);
}

static void test_budget_and_purge(void **state)
{
	struct fixture *fx = *state;
	tenants(fx->st);
	load(fx->st, 20, 0);
	/* A zero budget still does one transaction (six hours) and says more remains. */
	int hours = 0;
	bool more = false;
	assert_int_equal(store_usage_compact(fx->st, T0 + 20 * H, 0, &hours, &more), STORE_OK);
	assert_int_equal(hours, 6);
	assert_true(more);
	assert_int_equal(through(fx->st), T0 + 6 * H);
	while (more)
		assert_int_equal(store_usage_compact(fx->st, T0 + 20 * H, 0, &hours, &more),
		                 STORE_OK);
	assert_int_equal(through(fx->st), T0 + 20 * H);
	/* The purge takes series rows before the cutoff with the cells. */
	int64_t deleted = 0;
	assert_int_equal(store_usage_purge(fx->st, T0 + 10 * H, &deleted), STORE_OK);
	struct db_param p[] = {P_INT(T0 + 10 * H)};
	struct raw q = {"SELECT COUNT(*) FROM usage_series WHERE bucket < ?", p, 1, NULL};
	assert_int_equal(store_with_conn(fx->st, raw_fn, &q), STORE_OK);
	assert_int_equal(db_int(q.r, 0, 0), 0);
	db_result_free(q.r);
	assert_true(raw_int(fx->st, "SELECT COUNT(*) FROM usage_series", NULL, NULL) > 0);
}

#define TESTS(setup)                                                                               \
	cmocka_unit_test_setup_teardown(test_series_answer_as_the_cells, setup, teardown),         \
	    cmocka_unit_test_setup_teardown(                                                       \
	        test_compaction_skips_empty_hours_and_stops_at_the_open_one, setup, teardown),     \
	    cmocka_unit_test_setup_teardown(test_a_late_batch_marks_its_hour_and_is_rebuilt,       \
	                                    setup, teardown),                                      \
	    cmocka_unit_test_setup_teardown(test_budget_and_purge, setup, teardown)

int main(void)
{
	const struct CMUnitTest sqlite_tests[] = {TESTS(setup_sqlite)};
	const struct CMUnitTest postgres_tests[] = {TESTS(setup_postgres)};
	return fixture_main("usage_series", sqlite_tests, postgres_tests,
	                    sizeof sqlite_tests / sizeof sqlite_tests[0]);
}
