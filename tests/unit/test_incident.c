/*
 * test_incident.c: the incident report (app/incident.h, store_incident.h) on
 * SQLite and PostgreSQL: first-seen regions and user agents flagged only
 * when first seen inside the window, the sections read from the rollups by
 * key, org scoping, the window's checks, and the text renderer (no line over
 * 80 columns, hourly bars scaled to the busiest hour, long user agents cut).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "app/incident.h"
#include "app/killops.h"
#include "auth/keys.h"
#include "store/store_incident.h"

#define FIXTURE_DB_NAME "portcullis_test_incident"
#define FIXTURE_TMP     "pcl-incident"
#include "store_fixture.h"

#define HOUR ((int64_t)3600 * 1000)
#define DAY  (24 * HOUR)

static const char ORG[] = "01J00000000000000000000ORG";
static const char ORG2[] = "01J0000000000000000000ORG2";
static const char PRJ[] = "01J00000000000000000000PRJ";
/* The keys seed() makes (ids are the store's, new each test). */
static char KEY[STORE_ID_LEN + 1], SIB[STORE_ID_LEN + 1], OTHER[STORE_ID_LEN + 1];

/* "Now" for the reports: 12:30 UTC today, so every offset below stays on its own day. */
static int64_t NOW;

/* A key made as the API makes one (keys_create, bcrypt cost 4); its id into id. */
static void make_key(struct store *st, char id[STORE_ID_LEN + 1], const char *org,
                     const char *project)
{
	struct key_spec spec = {org, project, "integration", KEY_ENV_LIVE, "gateway logs:read", -1};
	struct audit_input a = audit(org, "api_key.created", "api_key", NULL);
	char secret[KEYFMT_MAX_LEN + 1];
	struct store_key row;
	assert_int_equal(keys_create(st, "pcl", 4, &spec, &a, secret, sizeof secret, &row),
	                 STORE_OK);
	snprintf(id, STORE_ID_LEN + 1, "%s", row.id);
}

/* A cell of the hourly rollup as the request-log writer keeps it. */
static void cell(struct store *st, const char *key, int64_t at, const char *route, int status,
                 const char *region, const char *refusal, int64_t n)
{
	struct db_param p[] = {P_TEXT(ORG),
	                       P_INT(at - at % HOUR),
	                       P_TEXT(PRJ),
	                       P_TEXT(key),
	                       P_TEXT(route),
	                       P_INT(status),
	                       P_TEXT(region),
	                       P_TEXT(refusal),
	                       P_INT(n),
	                       P_INT(status >= 400 && status < 500 ? n : 0),
	                       P_INT(status >= 500 ? n : 0)};
	struct raw q = {
	    "INSERT INTO usage_hour (org_id, bucket, project_id, key_id, route, status, "
	    "region, refusal, requests, errors_4xx, errors_5xx, bytes_in, bytes_out, "
	    "duration_ms_sum) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 0, 0, 0)",
	    p, 11, NULL};
	assert_int_equal(store_with_conn(st, raw_fn, &q), STORE_OK);
	db_result_free(q.r);
}

static void agent(struct store *st, const char *key, int64_t at, const char *ua, int64_t n,
                  int64_t refused)
{
	struct db_param p[] = {P_TEXT(key), P_INT(at - at % HOUR), P_TEXT(ua), P_TEXT(ORG),
	                       P_INT(n),    P_INT(refused)};
	struct raw q = {
	    "INSERT INTO usage_key_agents (key_id, bucket, user_agent, org_id, requests, "
	    "refused) VALUES (?, ?, ?, ?, ?, ?)",
	    p, 6, NULL};
	assert_int_equal(store_with_conn(st, raw_fn, &q), STORE_OK);
	db_result_free(q.r);
}

static void seen(struct store *st, const char *key, const char *kind, const char *value,
                 int64_t first, int64_t last)
{
	struct db_param p[] = {P_TEXT(key), P_TEXT(kind), P_TEXT(value),
	                       P_TEXT(ORG), P_INT(first), P_INT(last)};
	struct raw q = {"INSERT INTO usage_key_seen (key_id, kind, value, org_id, first_seen, "
	                "last_seen, requests) VALUES (?, ?, ?, ?, ?, ?, 1)",
	                p, 6, NULL};
	assert_int_equal(store_with_conn(st, raw_fn, &q), STORE_OK);
	db_result_free(q.r);
}

static struct store *seed(void **state)
{
	struct fixture *fx = *state;
	struct store *st = fx->st;
	int64_t t = clock_now_ms();
	NOW = t - t % DAY + 12 * HOUR + 30 * 60 * 1000;
	make_org(st, ORG, NULL);
	make_org(st, ORG2, NULL);
	make_project(st, ORG, PRJ);
	make_key(st, KEY, ORG, PRJ);
	make_key(st, SIB, ORG, PRJ);
	make_key(st, OTHER, ORG2, NULL);
	/* US: the key's usual place since 50 days; DE: first 2 days ago. */
	seen(st, KEY, "region", "US", NOW - 50 * DAY, NOW - HOUR);
	seen(st, KEY, "region", "DE", NOW - 2 * DAY, NOW - DAY);
	seen(st, KEY, "user_agent", "app/1.0", NOW - 50 * DAY, NOW - HOUR);
	seen(st, KEY, "user_agent", "curl/8.0", NOW - 2 * DAY, NOW - DAY);
	cell(st, KEY, NOW - 40 * DAY, "proxy:default", 200, "US", "", 1000); /* before the window */
	cell(st, KEY, NOW - 3 * DAY, "proxy:default", 200, "US", "", 100);
	cell(st, KEY, NOW - HOUR, "proxy:default", 200, "US", "", 40);
	cell(st, KEY, NOW - HOUR, "GET /v1/requests", 403, "US", "", 2);
	cell(st, KEY, NOW - 2 * DAY, "GET /v1/requests", 200, "DE", "", 7);
	cell(st, KEY, NOW - 2 * DAY, "proxy:default", 502, "DE", "", 1);
	cell(st, KEY, NOW - DAY, "proxy:default", 401, "DE", "wrong_secret", 5);
	cell(st, KEY, NOW - DAY, "proxy:default", 401, "", "killed", 3);
	cell(st, SIB, NOW - HOUR, "proxy:default", 200, "US", "", 9); /* another key's */
	agent(st, KEY, NOW - 3 * DAY, "app/1.0", 100, 0);
	agent(st, KEY, NOW - HOUR, "app/1.0", 42, 0);
	agent(st, KEY, NOW - 2 * DAY, "curl/8.0", 8, 0);
	agent(st, KEY, NOW - DAY, "python-requests/2.31", 8, 8);
	return st;
}

static json_t *report(struct store *st, const char *org, int64_t since, int64_t until)
{
	struct incident_query q = {
	    .key_id = KEY, .org_id = org, .since = since, .until = until, .now = NOW};
	char err[128];
	assert_int_equal(incident_window(&q, err, sizeof err), 0);
	json_t *r = NULL;
	assert_int_equal(incident_report(st, &q, &r), STORE_OK);
	return r;
}

static json_t *find(const json_t *a, const char *member, const char *value)
{
	size_t i;
	json_t *o;
	json_array_foreach(a, i, o)
	{
		const char *v = json_string_value(json_object_get(o, member));
		if (v && strcmp(v, value) == 0)
			return o;
	}
	return NULL;
}

static void test_first_seen_in_window(void **state)
{
	(void)state;
	assert_true(incident_first_seen_in(1000, 1000, 2000)); /* at since: inside */
	assert_true(incident_first_seen_in(1999, 1000, 2000));
	assert_false(incident_first_seen_in(2000, 1000, 2000)); /* until is exclusive */
	assert_false(incident_first_seen_in(999, 1000, 2000));
	assert_false(incident_first_seen_in(-1, 1000, 2000)); /* unknown is not new */
}

static void test_regions_and_agents_first_seen_in_window_are_new(void **state)
{
	struct store *st = seed(state);
	json_t *r = report(st, NULL, -1, -1);
	json_t *t = json_object_get(r, "traffic");
	json_t *us = find(json_object_get(t, "by_region"), "region", "US");
	json_t *de = find(json_object_get(t, "by_region"), "region", "DE");
	assert_non_null(us);
	assert_non_null(de);
	assert_false(json_is_true(json_object_get(us, "new")));
	assert_true(json_is_true(json_object_get(de, "new")));
	assert_int_equal(json_integer_value(json_object_get(us, "requests")), 142);
	assert_int_equal(json_integer_value(json_object_get(de, "requests")), 8);
	assert_int_equal(json_integer_value(json_object_get(de, "errors_5xx")), 1);
	/* Refused attempts are not traffic of the key's: no region "" row. */
	assert_int_equal(json_array_size(json_object_get(t, "by_region")), 2);

	json_t *uas = json_object_get(t, "by_user_agent");
	json_t *app = find(uas, "user_agent", "app/1.0"),
	       *curl = find(uas, "user_agent", "curl/8.0");
	json_t *py = find(uas, "user_agent", "python-requests/2.31");
	assert_false(json_is_true(json_object_get(app, "new")));
	assert_true(json_is_true(json_object_get(curl, "new")));
	/* Only refused attempts carried it: never seen in the key's own traffic. */
	assert_false(json_is_true(json_object_get(py, "new")));
	assert_int_equal(json_integer_value(json_object_get(py, "requests")), 0);
	assert_int_equal(json_integer_value(json_object_get(py, "refused")), 8);
	assert_int_equal(json_integer_value(json_object_get(app, "requests")), 142);

	/* A window that starts before DE's first sighting: DE is no longer new... */
	json_t *r2 = report(st, NULL, NOW - 10 * DAY, NOW - 3 * DAY + HOUR);
	json_t *by2 = json_object_get(json_object_get(r2, "traffic"), "by_region");
	assert_null(find(by2, "region", "DE")); /* ...and not in that window's traffic at all */
	assert_non_null(find(by2, "region", "US"));
	json_decref(r2);
	/* A window after it: DE's first sighting is before, so it is not new there. */
	json_t *r3 = report(st, NULL, NOW - DAY - HOUR, NOW);
	assert_null(
	    find(json_object_get(json_object_get(r3, "traffic"), "by_region"), "region", "DE"));
	json_decref(r3);
	json_t *r4 = report(st, NULL, NOW - 2 * DAY + HOUR, NOW);
	json_decref(r4);
	json_t *r5 = report(st, NULL, NOW - DAY * 2 - 2 * HOUR, NOW - DAY * 2 + 2 * HOUR);
	json_t *de5 =
	    find(json_object_get(json_object_get(r5, "traffic"), "by_region"), "region", "DE");
	assert_true(json_is_true(json_object_get(de5, "new")));
	json_decref(r5);
	json_decref(r);
}

static void test_sections_read_by_key(void **state)
{
	struct store *st = seed(state);
	struct kill_request kr = {.scope = "key",
	                          .target_id = KEY,
	                          .org_id = ORG,
	                          .set_by = "root",
	                          .actor_type = "root",
	                          .reason = "leaked"};
	/* A secret scanner's report (an event on the key), and one of another key's. */
	struct audit_input leak = audit(ORG, "api_key.leak_reported", "api_key", KEY);
	assert_int_equal(store_audit_append(st, &leak), STORE_OK);
	leak.target_id = SIB;
	assert_int_equal(store_audit_append(st, &leak), STORE_OK);
	assert_int_equal(killops_engage(st, &kr), STORE_OK);
	json_t *r = report(st, NULL, -1, -1);

	json_t *k = json_object_get(r, "key");
	assert_string_equal(json_string_value(json_object_get(k, "status")), "killed");
	assert_string_equal(
	    json_string_value(json_object_get(
	        json_object_get(json_object_get(r, "kill_switches"), "key"), "reason")),
	    "leaked");
	/* Window: 30 days back from now, in whole hours. */
	json_t *w = json_object_get(r, "window");
	int64_t since, until;
	assert_int_equal(
	    clock_parse_rfc3339(json_string_value(json_object_get(w, "since")), &since), 0);
	assert_int_equal(
	    clock_parse_rfc3339(json_string_value(json_object_get(w, "until")), &until), 0);
	assert_int_equal(since, NOW - 30 * DAY - 30 * 60 * 1000);
	assert_int_equal(until, NOW + 30 * 60 * 1000);

	json_t *t = json_object_get(r, "traffic");
	assert_int_equal(json_integer_value(json_object_get(t, "requests")), 150); /* not 1000 */
	assert_int_equal(json_integer_value(json_object_get(t, "errors_4xx")), 2);
	assert_int_equal(json_integer_value(json_object_get(t, "errors_5xx")), 1);
	json_t *route = find(json_object_get(t, "by_route"), "route", "GET /v1/requests");
	assert_int_equal(json_integer_value(json_object_get(route, "requests")), 9);
	json_t *st403 = json_array_get(json_object_get(t, "by_status"), 1);
	assert_int_equal(json_integer_value(json_object_get(st403, "status")), 403);
	assert_int_equal(json_array_size(json_object_get(t, "by_hour")), 4);

	json_t *rf = json_object_get(r, "refused");
	assert_int_equal(json_integer_value(json_object_get(rf, "attempts")), 8);
	json_t *rows = json_object_get(rf, "by_hour_region");
	assert_int_equal(json_array_size(rows), 2);
	assert_true(json_is_null(json_object_get(json_array_get(rows, 0), "region")));
	assert_string_equal(json_string_value(json_object_get(json_array_get(rows, 0), "reason")),
	                    "killed");
	assert_string_equal(json_string_value(json_object_get(json_array_get(rows, 1), "region")),
	                    "DE");
	assert_int_equal(json_integer_value(json_object_get(json_array_get(rows, 1), "attempts")),
	                 5);

	/* History: created, the leak report, then killed (not the other key's report). */
	json_t *h = json_object_get(r, "history");
	assert_int_equal(json_array_size(h), 3);
	assert_string_equal(json_string_value(json_object_get(json_array_get(h, 0), "action")),
	                    "api_key.created");
	assert_string_equal(json_string_value(json_object_get(json_array_get(h, 1), "action")),
	                    "api_key.leak_reported");
	assert_string_equal(json_string_value(json_object_get(json_array_get(h, 2), "action")),
	                    "api_key.killed");
	/* The kill's webhook message (made at the real clock) is the organisation's. */
	json_t *rm = report(st, NULL, -1, clock_now_ms() + HOUR);
	assert_non_null(find(json_object_get(rm, "webhook_messages"), "type", "api_key.killed"));
	json_decref(rm);

	json_t *sib = json_object_get(r, "sibling_keys");
	assert_int_equal(json_array_size(json_object_get(sib, "project")), 1);
	assert_string_equal(json_string_value(json_object_get(
	                        json_array_get(json_object_get(sib, "project"), 0), "id")),
	                    SIB);
	assert_int_equal(json_array_size(json_object_get(sib, "organization")), 0);

	json_t *steps = json_object_get(r, "next_steps");
	assert_int_equal(json_array_size(steps), 5);
	json_t *kill = json_array_get(steps, 0);
	assert_true(json_is_true(json_object_get(kill, "done")));
	char want[128];
	snprintf(want, sizeof want, "POST /v1/api-keys/%s/kill", KEY);
	assert_string_equal(json_string_value(json_object_get(kill, "http")), want);
	snprintf(want, sizeof want, "DELETE /v1/api-keys/%s", KEY);
	assert_string_equal(json_string_value(json_object_get(json_array_get(steps, 4), "http")),
	                    want);
	json_decref(r);
}

static void test_another_orgs_key_is_not_found(void **state)
{
	struct store *st = seed(state);
	struct incident_query q = {
	    .key_id = KEY, .org_id = ORG2, .now = NOW, .since = -1, .until = -1};
	char err[128];
	assert_int_equal(incident_window(&q, err, sizeof err), 0);
	json_t *r = NULL;
	assert_int_equal(incident_report(st, &q, &r), STORE_ENOTFOUND);
	assert_null(r);
	q.key_id = "01J0000000000000000000NONE";
	q.org_id = NULL;
	assert_int_equal(incident_report(st, &q, &r), STORE_ENOTFOUND);
	json_decref(report(st, ORG, -1, -1));
}

static void test_window_checks(void **state)
{
	(void)state;
	NOW = clock_now_ms();
	char err[128];
	struct incident_query q = {.since = -1, .until = -1, .now = NOW};
	assert_int_equal(incident_window(&q, err, sizeof err), 0);
	assert_int_equal(q.until, NOW);
	assert_int_equal(q.since, NOW - 30 * DAY);
	q = (struct incident_query){.since = NOW, .until = NOW, .now = NOW};
	assert_int_equal(incident_window(&q, err, sizeof err), -1);
	q = (struct incident_query){.since = NOW - 401 * DAY, .until = -1, .now = NOW};
	assert_int_equal(incident_window(&q, err, sizeof err), -1);
	assert_non_null(strstr(err, "400"));
	q = (struct incident_query){.since = NOW - 400 * DAY, .until = -1, .now = NOW};
	assert_int_equal(incident_window(&q, err, sizeof err), 0);
}

/* Display columns of one line (UTF-8 characters). */
static size_t cols(const char *s, size_t n)
{
	size_t c = 0;
	for (size_t i = 0; i < n; i++)
		c += ((unsigned char)s[i] & 0xC0) != 0x80;
	return c;
}

static const char *line_with(const char *text, const char *needle, char *out, size_t cap)
{
	const char *p = strstr(text, needle);
	if (!p)
		return NULL;
	while (p > text && p[-1] != '\n')
		p--;
	size_t n = strcspn(p, "\n");
	snprintf(out, cap, "%.*s", (int)n, p);
	return out;
}

static void test_text_fits_80_columns_with_hourly_bars(void **state)
{
	struct store *st = seed(state);
	char ua[400];
	memset(ua, 'u', 300);
	memcpy(ua, "LongAgent/", 10);
	ua[300] = '\0';
	agent(st, KEY, NOW - HOUR, ua, 1, 0);
	json_t *r = report(st, NULL, -1, -1);
	char *text = incident_render_text(r);
	assert_non_null(text);
	if (getenv("INCIDENT_TEST_PRINT"))
		fputs(text, stdout);
	size_t lines = 0;
	for (const char *p = text; *p;) {
		size_t n = strcspn(p, "\n");
		if (cols(p, n) > INCIDENT_TEXT_COLUMNS)
			fail_msg("line over 80 columns: %.*s", (int)n, p);
		p += n + (p[n] == '\n');
		lines++;
	}
	assert_true(lines > 40);
	char l[1024], day[32], want_bars[128];
	/* Today 11:00: 42 requests; the busiest hour is 3 days ago at 12:00 (100). */
	clock_format_rfc3339(NOW, day, sizeof day);
	snprintf(want_bars, sizeof want_bars, "  %.5s ...........\u2584............", day + 5);
	assert_non_null(line_with(text, want_bars, l, sizeof l)); /* ceil(42 * 8 / 100) = 4 */
	assert_non_null(strstr(l, "      42"));
	clock_format_rfc3339(NOW - 3 * DAY, day, sizeof day);
	snprintf(want_bars, sizeof want_bars, "  %.5s ............\u2588...........", day + 5);
	assert_non_null(line_with(text, want_bars, l, sizeof l));
	assert_non_null(strstr(l, "     100"));
	/* Yesterday 11:00: refused only (8, the busiest refused hour): a full bar on the right. */
	clock_format_rfc3339(NOW - DAY, day, sizeof day);
	snprintf(want_bars, sizeof want_bars,
	         "  %.5s ........................        0  "
	         "............\u2588...........       8",
	         day + 5);
	assert_non_null(line_with(text, want_bars, l, sizeof l));
	/* Days without traffic are summed up, not drawn. */
	assert_non_null(strstr(text, "(27 day(s) of the window without any traffic not shown)"));
	/* The new region is flagged, the old one not. */
	assert_non_null(line_with(text, "    DE ", l, sizeof l));
	assert_non_null(strstr(l, "NEW"));
	assert_non_null(line_with(text, "    US ", l, sizeof l));
	assert_null(strstr(l, "NEW"));
	/* The long user agent is cut at the width, not wrapped or dropped. */
	assert_non_null(line_with(text, "LongAgent/", l, sizeof l));
	assert_int_equal(cols(l, strlen(l)), INCIDENT_TEXT_COLUMNS);
	/* The exact kill command for this key. */
	char want[128];
	snprintf(want, sizeof want, "$ portcullis kill key %s --reason", KEY);
	assert_non_null(strstr(text, want));
	free(text);
	json_decref(r);
}

#define TESTS(setup)                                                                               \
	cmocka_unit_test(test_first_seen_in_window), cmocka_unit_test(test_window_checks),         \
	    cmocka_unit_test_setup_teardown(test_regions_and_agents_first_seen_in_window_are_new,  \
	                                    setup, teardown),                                      \
	    cmocka_unit_test_setup_teardown(test_sections_read_by_key, setup, teardown),           \
	    cmocka_unit_test_setup_teardown(test_another_orgs_key_is_not_found, setup, teardown),  \
	    cmocka_unit_test_setup_teardown(test_text_fits_80_columns_with_hourly_bars, setup,     \
	                                    teardown)

int main(void)
{
	const struct CMUnitTest sqlite_tests[] = {TESTS(setup_sqlite)};
	const struct CMUnitTest postgres_tests[] = {TESTS(setup_postgres)};
	return fixture_main("incident", sqlite_tests, postgres_tests,
	                    sizeof sqlite_tests / sizeof sqlite_tests[0]);
}
