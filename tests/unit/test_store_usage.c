/*
 * test_store_usage.c: the usage rollups (store/store_usage.h). The pure
 * arithmetic (buckets across minute, hour, day and month boundaries, before
 * and after 1970, leap years; the fold), then the writer's rollups against
 * SQLite and, when PORTCULLIS_TEST_PG_URL is set, PostgreSQL: sums equal the
 * rows across boundaries, a retried batch counts nothing twice, one key in
 * one batch with several statuses and organisations upserts each cell once.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "store/store_usage.h"

#define FIXTURE_DB_NAME "portcullis_test_usage"
#define FIXTURE_TMP     "pcl-usage"
#include "store_fixture.h"

#define ORG_A "ORGA0000000000000000000001"
#define KEY_1 "01KEY00000000000000000000A"

/* 2024-02-29T23:59:30Z: a leap day's last minute, a month's last hour. */
#define T_LEAP 1709251170000LL

/* ---------- arithmetic ---------- */

static void test_buckets(void **state)
{
	(void)state;
	assert_int_equal(usage_bucket(T_LEAP, USAGE_MINUTE), 1709251140000LL);
	assert_int_equal(usage_bucket(T_LEAP, USAGE_HOUR), 1709247600000LL);
	assert_int_equal(usage_bucket(T_LEAP, USAGE_DAY), 1709164800000LL);
	/* The last millisecond of a window stays in it; the next one does not. */
	assert_int_equal(usage_bucket(59999, USAGE_MINUTE), 0);
	assert_int_equal(usage_bucket(60000, USAGE_MINUTE), 60000);
	assert_int_equal(usage_bucket(3599999, USAGE_HOUR), 0);
	assert_int_equal(usage_bucket(86400000, USAGE_DAY), 86400000);
	/* Before 1970: floor, not truncation toward zero. */
	assert_int_equal(usage_bucket(-1, USAGE_MINUTE), -60000);
	assert_int_equal(usage_bucket(-1, USAGE_DAY), -86400000);
}

static void test_months(void **state)
{
	(void)state;
	char m[8];
	assert_int_equal(usage_month(T_LEAP, m), 1706745600000LL); /* 2024-02-01 */
	assert_string_equal(m, "2024-02");
	assert_int_equal(usage_month(T_LEAP + 30000, m), 1709251200000LL); /* 2024-03-01 */
	assert_string_equal(m, "2024-03");
	assert_int_equal(usage_month(1735689599999LL, m), 1733011200000LL); /* 2024-12-31 end */
	assert_string_equal(m, "2024-12");
	assert_int_equal(usage_month(1735689600000LL, m), 1735689600000LL); /* 2025-01-01 */
	assert_string_equal(m, "2025-01");
	assert_int_equal(usage_month(0, m), 0);
	assert_string_equal(m, "1970-01");
	assert_int_equal(usage_month(-1, m), -2678400000LL); /* 1969-12-01 */
	assert_string_equal(m, "1969-12");
}

static void test_fold(void **state)
{
	(void)state;
	struct usage_cell c[5];
	memset(c, 0, sizeof c);
	const char *dims[5][2] = {{"a", "x"}, {"b", "x"}, {"a", "x"}, {"a", NULL}, {"a", ""}};
	int status[5] = {200, 200, 200, 500, 500};
	for (int i = 0; i < 5; i++) {
		c[i].bucket = 60000;
		c[i].dim[0] = dims[i][0];
		c[i].dim[1] = dims[i][1];
		c[i].status = status[i];
		c[i].requests = 1;
		c[i].bytes_in = 10 * (i + 1);
		c[i].first_at = c[i].last_at = 60000 + i;
	}
	c[2].carried = "org";
	int n = usage_fold(c, 5);
	assert_int_equal(n, 3); /* sorted: (a,"",500) x2 (NULL is ""), (a,x,200) x2, (b,x,200) */
	assert_string_equal(c[0].dim[0], "a");
	assert_int_equal(c[0].status, 500);
	assert_int_equal(c[0].requests, 2);
	assert_int_equal(c[0].bytes_in, 40 + 50);
	assert_int_equal(c[1].status, 200);
	assert_int_equal(c[1].requests, 2);
	assert_int_equal(c[1].bytes_in, 10 + 30);
	assert_int_equal(c[1].first_at, 60000);
	assert_int_equal(c[1].last_at, 60002);
	assert_string_equal(c[1].carried, "org"); /* the non-empty one */
	assert_string_equal(c[2].dim[0], "b");
	assert_int_equal(c[2].requests, 1);
}

/* ---------- the writer, on each backend ---------- */

static struct store_request_row row_at(int i, int64_t at, int status)
{
	struct store_request_row r;
	memset(&r, 0, sizeof r);
	snprintf(r.request_id, sizeof r.request_id, "req_%026d", i);
	r.received_at = at;
	snprintf(r.org_id, sizeof r.org_id, "%s", ORG_A);
	snprintf(r.key_id, sizeof r.key_id, "%s", KEY_1);
	snprintf(r.method, sizeof r.method, "GET");
	snprintf(r.path, sizeof r.path, "/x/%d", i);
	snprintf(r.route, sizeof r.route, "proxy:default");
	snprintf(r.region, sizeof r.region, "%s", i % 2 ? "US" : "NL");
	snprintf(r.user_agent, sizeof r.user_agent, "ua/%d", i % 3);
	r.status = status;
	r.duration_ms = i;
	r.bytes_in = 1;
	r.bytes_out = 100 + i;
	return r;
}

struct sums {
	int64_t points, requests, e4, e5, bytes_out, duration;
	int64_t first_bucket;
};

static void add(void *ctx, const struct usage_point *p)
{
	struct sums *s = ctx;
	if (!s->points++)
		s->first_bucket = p->bucket;
	s->requests += p->requests;
	s->e4 += p->errors_4xx;
	s->e5 += p->errors_5xx;
	s->bytes_out += p->bytes_out;
	s->duration += p->duration_ms_sum;
}

static struct sums query(struct store *st, enum usage_granularity g, enum usage_group by,
                         int64_t since, int64_t until)
{
	struct usage_filter f = {.org_id = ORG_A,
	                         .since = since,
	                         .until = until,
	                         .granularity = g,
	                         .group_by = by,
	                         .limit = 100000};
	struct sums s = {0};
	assert_int_equal(store_usage_query(st, &f, add, &s), STORE_OK);
	return s;
}

/*
 * 40 rows two seconds apart around T_LEAP (minute, hour, day and month
 * boundaries) with statuses 200/404/503 and a row with no organisation
 * naming the same key (a refused attempt before any store read).
 */
static void test_rollups_equal_the_rows(void **state)
{
	struct fixture *fx = *state;
	enum { N = 40 };
	struct store_request_row rows[N];
	int64_t want_out = 0, want_dur = 0, e4 = 0, e5 = 0;
	for (int i = 0; i < N; i++) {
		int status = i % 5 == 0 ? 503 : i % 3 == 0 ? 404 : 200;
		rows[i] = row_at(i, T_LEAP - 20000 + 2000 * i, status);
		want_out += rows[i].bytes_out;
		want_dur += rows[i].duration_ms;
		e4 += status / 100 == 4;
		e5 += status / 100 == 5;
	}
	rows[7].org_id[0] = '\0';
	snprintf(rows[7].refusal, sizeof rows[7].refusal, "bad_format");
	assert_int_equal(store_request_log_insert(fx->st, rows, N / 2), STORE_OK);
	/* A batch half written before counts its new rows only (RETURNING names them). */
	assert_int_equal(store_request_log_insert(fx->st, rows, N), STORE_OK);
	/* A retried batch (every id already stored) counts nothing twice. */
	assert_int_equal(store_request_log_insert(fx->st, rows, N), STORE_OK);

	int64_t since = T_LEAP - 10 * USAGE_DAY_MS, until = T_LEAP + 10 * USAGE_DAY_MS;
	for (int g = USAGE_MINUTE; g <= USAGE_DAY; g++) {
		for (int by = USAGE_BY_NONE; by <= USAGE_BY_REGION; by++) {
			struct sums s = query(fx->st, (enum usage_granularity)g,
			                      (enum usage_group)by, since, until);
			assert_int_equal(s.requests, N - 1); /* row 7 has no organisation */
			assert_int_equal(s.e4, e4);
			assert_int_equal(s.e5, e5 - 0);
			assert_int_equal(s.bytes_out, want_out - rows[7].bytes_out);
			assert_int_equal(s.duration, want_dur - rows[7].duration_ms);
		}
	}
	/* 80 s of rows across midnight, split at it. */
	struct sums before = query(fx->st, USAGE_HOUR, USAGE_BY_NONE, since, T_LEAP + 30000);
	struct sums after = query(fx->st, USAGE_HOUR, USAGE_BY_NONE, T_LEAP + 30000, until);
	assert_int_equal(before.points, 1); /* the hour 23:00 of Feb 29 */
	assert_int_equal(after.points, 1);  /* 00:00 of Mar 1 */
	assert_int_equal(before.requests + after.requests, N - 1);
	assert_int_equal(before.requests, 25 - 1); /* rows 0..24 are before 00:00, row 7 excluded */
	struct sums days = query(fx->st, USAGE_DAY, USAGE_BY_NONE, since, until);
	assert_int_equal(days.points, 2);
	assert_int_equal(days.first_bucket, usage_bucket(T_LEAP, USAGE_DAY));
	struct sums minutes = query(fx->st, USAGE_MINUTE, USAGE_BY_NONE, since, until);
	assert_int_equal(minutes.points, 2); /* 23:59:10 to 00:00:48 */
	struct sums by_status = query(fx->st, USAGE_HOUR, USAGE_BY_STATUS, since, until);
	assert_int_equal(by_status.points, 2 * 3);

	/* Every row is in the key's rollups, row 7 too (the key index). */
	struct usage_filter f = {.key_id = KEY_1,
	                         .since = since,
	                         .until = until,
	                         .granularity = USAGE_DAY,
	                         .limit = 100};
	struct sums k = {0};
	assert_int_equal(store_usage_query(fx->st, &f, add, &k), STORE_OK);
	assert_int_equal(k.requests, N);

	/* Retention: cells before the cutoff go, later ones stay. */
	int64_t deleted = 0;
	assert_int_equal(store_usage_purge(fx->st, T_LEAP + 30000, &deleted), STORE_OK);
	assert_true(deleted > 0);
	k = (struct sums){0};
	assert_int_equal(store_usage_query(fx->st, &f, add, &k), STORE_OK);
	assert_int_equal(k.requests, N - 25); /* the day of Mar 1 only */
}

#define STORE_TESTS(setup)                                                                         \
	cmocka_unit_test_setup_teardown(test_rollups_equal_the_rows, setup, teardown)

int main(void)
{
	const struct CMUnitTest pure[] = {
	    cmocka_unit_test(test_buckets),
	    cmocka_unit_test(test_months),
	    cmocka_unit_test(test_fold),
	};
	const struct CMUnitTest sqlite_tests[] = {STORE_TESTS(setup_sqlite)};
	const struct CMUnitTest postgres_tests[] = {STORE_TESTS(setup_postgres)};
	int failed = cmocka_run_group_tests_name("usage", pure, NULL, NULL);
	return failed + fixture_main("usage", sqlite_tests, postgres_tests,
	                             sizeof sqlite_tests / sizeof sqlite_tests[0]);
}
