/*
 * test_capi.c: the Conversions API forward's pieces (src/delivery/capi.h,
 * src/store/store_capi.h): the request body built from events field by
 * field, the 7-day cut, token redaction, the API version check; and on
 * SQLite always and PostgreSQL when PORTCULLIS_TEST_PG_URL is set
 * (store_fixture.h): batches split at 1000, an event claimed once, a
 * disabled project never batched, events from before switching on never
 * batched, the held advertising id sealed at ingest only when the forward
 * is on and deleted once a batch succeeds or fails, retries kept pending.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/clock.h"
#include "core/ulid.h"
#include "crypto/sealed.h"
#include "delivery/capi.h"
#include "store/store_capi.h"
#include "store/store_secrets.h"

#define FIXTURE_DB_NAME "portcullis_test_capi"
#define FIXTURE_TMP     "pcl-capi"
#include "store_fixture.h"

#define NOW  1750000000000LL
#define HASH "2c26b46b68ffc68ff99b453c1d30413413422d706483bfa0f98a5e886266e7ae"

static struct store_capi_event sample(void)
{
	struct store_capi_event e = {
	    .id = "ev_01",
	    .message_id = "msg-1",
	    .type = "track",
	    .event = "Purchase",
	    .user_id = "user-9",
	    .email_sha256 = HASH,
	    .phone_sha256 = "",
	    .body = "{\"type\":\"track\",\"properties\":{\"value\":12.5,\"currency\":\"EUR\"}}",
	    .org_id = "o",
	    .adid_sealed = "",
	    .timestamp = NOW - 1500,
	};
	return e;
}

static void test_event_fields(void **state)
{
	(void)state;
	json_t *data = json_array();
	struct store_capi_event e = sample();
	assert_int_equal(capi_event_add(data, &e, "AD-ID", NOW - CAPI_MAX_AGE_MS), 1);
	json_t *o = json_array_get(data, 0);
	assert_string_equal(json_string_value(json_object_get(o, "event_name")), "Purchase");
	assert_int_equal(json_integer_value(json_object_get(o, "event_time")), (NOW - 1500) / 1000);
	assert_string_equal(json_string_value(json_object_get(o, "event_id")), "msg-1");
	assert_string_equal(json_string_value(json_object_get(o, "action_source")), "app");
	json_t *ud = json_object_get(o, "user_data");
	assert_string_equal(json_string_value(json_array_get(json_object_get(ud, "em"), 0)), HASH);
	assert_null(json_object_get(ud, "ph")); /* none stored: none sent */
	assert_string_equal(
	    json_string_value(json_array_get(json_object_get(ud, "external_id"), 0)), "user-9");
	assert_string_equal(json_string_value(json_object_get(ud, "madid")), "AD-ID");
	assert_int_equal(json_object_size(ud), 3);
	json_t *cd = json_object_get(o, "custom_data");
	assert_true(json_real_value(json_object_get(cd, "value")) == 12.5);
	assert_string_equal(json_string_value(json_object_get(cd, "currency")), "EUR");
	assert_int_equal(json_object_size(o), 6);

	/* Not a track: the type is the name; no properties: no custom_data; no ids: empty. */
	struct store_capi_event s = sample();
	s.type = "screen";
	s.event = "Home";
	s.user_id = "";
	s.email_sha256 = "";
	s.phone_sha256 = HASH;
	s.body = "{\"type\":\"screen\",\"properties\":[1]}";
	assert_int_equal(capi_event_add(data, &s, NULL, 0), 1);
	o = json_array_get(data, 1);
	assert_string_equal(json_string_value(json_object_get(o, "event_name")), "screen");
	assert_null(json_object_get(o, "custom_data"));
	ud = json_object_get(o, "user_data");
	assert_int_equal(json_object_size(ud), 1);
	assert_string_equal(json_string_value(json_array_get(json_object_get(ud, "ph"), 0)), HASH);

	char *body = capi_request_body(data, "TOKEN", "TEST1");
	json_t *b = json_loads(body, 0, NULL);
	assert_non_null(b);
	assert_int_equal(json_object_size(b), 3);
	assert_string_equal(json_string_value(json_object_get(b, "access_token")), "TOKEN");
	assert_string_equal(json_string_value(json_object_get(b, "test_event_code")), "TEST1");
	assert_int_equal(json_array_size(json_object_get(b, "data")), 2);
	json_decref(b);
	free(body);
	body = capi_request_body(data, "TOKEN", "");
	b = json_loads(body, 0, NULL);
	assert_null(json_object_get(b, "test_event_code"));
	json_decref(b);
	free(body);
	json_decref(data);
}

static void test_seven_day_cut(void **state)
{
	(void)state;
	json_t *data = json_array();
	struct store_capi_event e = sample();
	int64_t min = NOW - CAPI_MAX_AGE_MS;
	e.timestamp = min - 1;
	assert_int_equal(capi_event_add(data, &e, NULL, min), 0);
	assert_int_equal(json_array_size(data), 0);
	e.timestamp = min;
	assert_int_equal(capi_event_add(data, &e, NULL, min), 1);
	assert_int_equal(json_array_size(data), 1);
	json_decref(data);
}

static void test_redact_and_version(void **state)
{
	(void)state;
	char out[64];
	capi_redact("bad token SECRET, SECRET!", "SECRET", out, sizeof out);
	assert_string_equal(out, "bad token [redacted], [redacted]!");
	capi_redact("plain", "", out, sizeof out);
	assert_string_equal(out, "plain");
	capi_redact("xxxxxxxxxx", NULL, out, 5);
	assert_string_equal(out, "xxxx");
	assert_true(capi_version_ok("v21.0"));
	assert_true(capi_version_ok("v3.10"));
	assert_false(capi_version_ok("21.0"));
	assert_false(capi_version_ok("v21"));
	assert_false(capi_version_ok("v21.0/x"));
	assert_false(capi_version_ok("v.0"));
	assert_false(capi_version_ok(NULL));
}

/* ---------- the store ---------- */

#define ORG  "ORGA0000000000000000000001"
#define PROJ "PRJA0000000000000000000001"
#define OFFP "PRJB0000000000000000000002"

static void org_and_projects(struct store *st)
{
	store_capi_cache_clear();
	struct store_org o = {.id = ORG,
	                      .name = "acme",
	                      .rl_requests = -1,
	                      .rl_per_seconds = -1,
	                      .rl_burst = -1,
	                      .created_at = 1,
	                      .updated_at = 1};
	assert_int_equal(store_org_insert(st, &o, NULL), STORE_OK);
	struct store_project p = {.id = PROJ, .org_id = ORG, .name = "a", .created_at = 1};
	assert_int_equal(store_project_insert(st, &p, NULL), STORE_OK);
	struct store_project q = {.id = OFFP, .org_id = ORG, .name = "b", .created_at = 1};
	assert_int_equal(store_project_insert(st, &q, NULL), STORE_OK);
}

static void put(struct store *st, const char *project, bool enabled)
{
	struct store_capi_config c = {.enabled = enabled};
	snprintf(c.project_id, sizeof c.project_id, "%s", project);
	snprintf(c.org_id, sizeof c.org_id, "%s", ORG);
	snprintf(c.pixel_id, sizeof c.pixel_id, "123");
	snprintf(c.access_token, sizeof c.access_token, "pcs1:x");
	assert_int_equal(store_capi_put(st, &c, NULL), STORE_OK);
}

/* n events of project received at t (seq from base), stored. */
static void events(struct store *st, const char *project, int n, int64_t t, int base,
                   const char *adid)
{
	struct store_event *evs = calloc((size_t)n, sizeof *evs);
	for (int i = 0; i < n; i++) {
		struct store_event *e = &evs[i];
		uint8_t rnd[10] = {0};
		rnd[8] = (uint8_t)((base + i) >> 8);
		rnd[9] = (uint8_t)(base + i);
		char u[ULID_LEN + 1];
		ulid_encode((uint64_t)t, rnd, u);
		snprintf(e->id, sizeof e->id, "ev_%s", u);
		snprintf(e->org_id, sizeof e->org_id, "%s", ORG);
		snprintf(e->project_id, sizeof e->project_id, "%s", project);
		snprintf(e->message_id, sizeof e->message_id, "m-%d", base + i);
		snprintf(e->type, sizeof e->type, "track");
		e->timestamp = t;
		e->received_at = t;
		e->body = "{}";
		e->body_len = 2;
		if (adid)
			assert_int_equal(store_capi_adid_seal(st, e, adid), STORE_OK);
	}
	assert_int_equal(store_events_insert(st, evs, n, STORE_EV_DEDUPE_MS, NULL), STORE_OK);
	free(evs);
}

static void count_one(void *ctx, const struct store_capi_event *ev)
{
	(void)ev;
	++*(int *)ctx;
}

static void test_batches_split_at_1000(void **state)
{
	struct fixture *fx = *state;
	org_and_projects(fx->st);
	put(fx->st, PROJ, true);
	put(fx->st, OFFP, false);
	int64_t now = clock_now_ms();
	events(fx->st, PROJ, 2500, now, 0, NULL);
	events(fx->st, OFFP, 10, now, 5000, NULL);
	int made = 0, sizes[4] = {0};
	char last_id[STORE_CAPI_BATCH_ID_MAX + 1] = "";
	for (int round = 0; round < 4; round++) {
		assert_int_equal(store_capi_batches_make(fx->st, now + 1, now - CAPI_MAX_AGE_MS,
		                                         STORE_CAPI_BATCH_MAX, &made),
		                 STORE_OK);
		assert_int_equal(made, round < 3 ? 1 : 0);
		if (!made)
			break;
		struct store_capi_batch b;
		assert_int_equal(store_capi_claim(fx->st, "me", now + 1, 60000, &b), STORE_OK);
		assert_string_equal(b.project_id, PROJ);
		assert_int_equal(store_capi_batch_events(fx->st, b.id, count_one, &sizes[round]),
		                 STORE_OK);
		assert_int_equal(sizes[round], b.events);
		snprintf(last_id, sizeof last_id, "%s", b.id);
	}
	assert_int_equal(sizes[0], 1000);
	assert_int_equal(sizes[1], 1000);
	assert_int_equal(sizes[2], 500);
	/* Every event in exactly one batch; none of the disabled project's. */
	assert_int_equal(
	    raw_int(fx->st, "SELECT COUNT(DISTINCT event_id) FROM capi_batch_events", NULL, NULL),
	    2500);
	assert_int_equal(
	    raw_int(fx->st, "SELECT COUNT(*) FROM capi_batches WHERE project_id = ?", OFFP, NULL),
	    0);
	struct store_capi_batch none;
	assert_int_equal(store_capi_claim(fx->st, "me", now + 1, 60000, &none), STORE_ENOTFOUND);
	/* Retention: finished batches and the claims of purged events go; pending ones stay. */
	struct store_capi_outcome done = {
	    .status = "succeeded", .events_sent = 500, .events_received = -1, .http_status = 200};
	assert_int_equal(store_capi_record(fx->st, last_id, "me", &done), STORE_OK);
	int64_t deleted = 0;
	assert_int_equal(store_events_purge(fx->st, now + 2, &deleted), STORE_OK);
	assert_int_equal(deleted, 2510);
	assert_int_equal(raw_int(fx->st, "SELECT COUNT(*) FROM capi_batch_events", NULL, NULL), 0);
	assert_int_equal(raw_int(fx->st, "SELECT COUNT(*) FROM capi_batches", NULL, NULL), 2);
}

static void test_before_enabling_and_old_not_batched(void **state)
{
	struct fixture *fx = *state;
	org_and_projects(fx->st);
	int64_t now = clock_now_ms();
	events(fx->st, PROJ, 3, now - 60000, 0, NULL); /* before the forward was on */
	put(fx->st, PROJ, true);
	events(fx->st, PROJ, 2, now + 30000, 100, NULL); /* after the put (it took under 30 s) */
	int made = 0;
	/* min_timestamp past those two: nothing is old enough to go. */
	assert_int_equal(store_capi_batches_make(fx->st, now + 40000, now + 30001, 1000, &made),
	                 STORE_OK);
	assert_int_equal(made, 0);
	assert_int_equal(store_capi_batches_make(fx->st, now + 40000, now - 1000, 1000, &made),
	                 STORE_OK);
	assert_int_equal(made, 1);
	struct store_capi_batch b;
	assert_int_equal(store_capi_claim(fx->st, "me", now + 40000, 60000, &b), STORE_OK);
	assert_int_equal(b.events, 2);
}

static void test_adids_held_then_deleted(void **state)
{
	struct fixture *fx = *state;
	org_and_projects(fx->st);
	uint8_t pk[SEALED_PK_LEN];
	char kid[SEALED_KEY_ID_LEN + 1];
	struct sealed_keyring *kr = sealed_keyring_new();
	assert_int_equal(sealed_keyring_generate(kr, kid, pk), SEALED_OK);
	assert_int_equal(store_secret_key_add(fx->st, kid, pk, NULL), STORE_OK);
	/* Off: nothing sealed. */
	put(fx->st, OFFP, false);
	struct store_event e = {.id = "ev_X", .org_id = ORG, .project_id = OFFP};
	assert_int_equal(store_capi_adid_seal(fx->st, &e, "AD"), STORE_ENOTFOUND);
	assert_string_equal(e.adid_sealed, "");
	put(fx->st, PROJ, true);
	int64_t now = clock_now_ms();
	events(fx->st, PROJ, 3, now, 0, "ADID-123");
	assert_int_equal(raw_int(fx->st, "SELECT COUNT(*) FROM event_adids", NULL, NULL), 3);
	struct db_result *r =
	    raw(fx->st, "SELECT event_id, adid_sealed FROM event_adids", NULL, NULL);
	struct sealed_context ctx = {STORE_CAPI_ADID_TABLE, STORE_CAPI_ADID_COLUMN,
	                             db_text(r, 0, 0), ORG};
	uint8_t out[64];
	size_t len = 0;
	assert_int_equal(sealed_open(kr, db_text(r, 0, 1), &ctx, out, sizeof out, &len), SEALED_OK);
	assert_memory_equal(out, "ADID-123", 8);
	ctx.row_id = db_text(r, 1, 0); /* another row's context: does not open */
	assert_int_equal(sealed_open(kr, db_text(r, 0, 1), &ctx, out, sizeof out, &len),
	                 SEALED_ECONTEXT);
	db_result_free(r);
	int made = 0;
	assert_int_equal(store_capi_batches_make(fx->st, now + 1, now - 1000, 2, &made), STORE_OK);
	struct store_capi_batch b;
	assert_int_equal(store_capi_claim(fx->st, "me", now + 1, 60000, &b), STORE_OK);
	/* A retry keeps them; another owner cannot record. */
	struct store_capi_outcome retry = {.status = "pending",
	                                   .events_sent = 2,
	                                   .events_received = -1,
	                                   .http_status = 500,
	                                   .error = "status",
	                                   .response = "no",
	                                   .next_attempt_at = now + 5};
	assert_int_equal(store_capi_record(fx->st, b.id, "other", &retry), STORE_ENOTFOUND);
	assert_int_equal(store_capi_record(fx->st, b.id, "me", &retry), STORE_OK);
	assert_int_equal(raw_int(fx->st, "SELECT COUNT(*) FROM event_adids", NULL, NULL), 3);
	struct store_capi_batch again;
	assert_int_equal(store_capi_claim(fx->st, "me", now + 1, 60000, &again), STORE_ENOTFOUND);
	assert_int_equal(store_capi_claim(fx->st, "me", now + 5, 60000, &again), STORE_OK);
	assert_string_equal(again.id, b.id);
	assert_int_equal(again.attempts, 1);
	struct store_capi_outcome done = {.status = "succeeded",
	                                  .events_sent = 2,
	                                  .events_received = 2,
	                                  .http_status = 200,
	                                  .response = "{}"};
	assert_int_equal(store_capi_record(fx->st, b.id, "me", &done), STORE_OK);
	/* The batch's two are gone; the third (not in it) is still held. */
	assert_int_equal(raw_int(fx->st, "SELECT COUNT(*) FROM event_adids", NULL, NULL), 1);
	struct store_capi_batch *list = NULL;
	int n = 0;
	assert_int_equal(store_capi_batches_list(fx->st, ORG, PROJ, NULL, 10, &list, &n), STORE_OK);
	assert_int_equal(n, 1);
	assert_string_equal(list[0].status, "succeeded");
	assert_int_equal(list[0].attempts, 2);
	assert_int_equal(list[0].http_status, 200);
	free(list);
	/* Secrets bookkeeping sees the held id: the key cannot be retired under it. */
	int64_t count = 0;
	assert_int_equal(store_secrets_count_for_key(fx->st, kid, &count), STORE_OK);
	assert_int_equal(count, 1);
	sealed_keyring_free(kr);
}

#define TESTS(setup)                                                                               \
	cmocka_unit_test_setup_teardown(test_batches_split_at_1000, setup, teardown),              \
	    cmocka_unit_test_setup_teardown(test_before_enabling_and_old_not_batched, setup,       \
	                                    teardown),                                             \
	    cmocka_unit_test_setup_teardown(test_adids_held_then_deleted, setup, teardown)

int main(void)
{
	const struct CMUnitTest pure[] = {
	    cmocka_unit_test(test_event_fields),
	    cmocka_unit_test(test_seven_day_cut),
	    cmocka_unit_test(test_redact_and_version),
	};
	int failed = cmocka_run_group_tests_name("capi", pure, NULL, NULL);
	const struct CMUnitTest sqlite_tests[] = {TESTS(setup_sqlite)};
	const struct CMUnitTest postgres_tests[] = {TESTS(setup_postgres)};
	return failed | fixture_main("capi_store", sqlite_tests, postgres_tests,
	                             sizeof sqlite_tests / sizeof sqlite_tests[0]);
}
