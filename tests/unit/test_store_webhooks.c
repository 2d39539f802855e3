/*
 * test_store_webhooks.c: the webhook outbox (src/store/store_webhooks.h)
 * against every backend, as test_store.c does: SQLite (a temp file)
 * always, PostgreSQL too when PORTCULLIS_TEST_PG_URL is set
 * (scripts/test-servers.sh starts one). Each test gets an empty, freshly
 * migrated database. Raw SQL (inspecting rows, forcing states) goes
 * through the db.h driver on one of the store's own connections.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <jansson.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "core/clock.h"
#include "core/log.h"
#include "core/ulid.h"
#include "store/db.h"
#include "store/store.h"
#include "store/store_webhooks.h"

#define ORG_A  "ORGA0000000000000000000001"
#define ORG_B  "ORGB0000000000000000000002"
#define ORG_C  "ORGC0000000000000000000003"
#define PROJ_A "PRJA0000000000000000000001"
#define PROJ_B "PRJB0000000000000000000002"
#define KEY_1  "KEY00000000000000000000001"
#define SEALED "pcs1:0123456789abcdef:c2VhbGVk"

#define FIXTURE_DB_NAME "portcullis_test_webhooks"
#define FIXTURE_TMP     "pcl-whstore"
#include "store_fixture.h"

static struct store_endpoint endpoint(const char *id, const char *org, const char *project,
                                      const char *types)
{
	struct store_endpoint e = {.rate_limit_per_second = -1,
	                           .prev_expires_at = -1,
	                           .disabled_at = -1,
	                           .failing_since = -1,
	                           .failing_notified_at = -1};
	snprintf(e.id, sizeof e.id, "%s", id);
	snprintf(e.org_id, sizeof e.org_id, "%s", org);
	snprintf(e.project_id, sizeof e.project_id, "%s", project ? project : "");
	snprintf(e.url, sizeof e.url, "https://hooks.example/%s", id);
	snprintf(e.event_types, sizeof e.event_types, "%s", types ? types : "");
	snprintf(e.secret, sizeof e.secret, "%s", SEALED);
	e.created_at = e.updated_at = clock_now_ms();
	return e;
}

static void make_endpoint(struct store *st, const char *id, const char *org, const char *project,
                          const char *types)
{
	struct store_endpoint e = endpoint(id, org, project, types);
	struct audit_input a = audit(org, "webhook_endpoint.created", "webhook_endpoint", id);
	assert_int_equal(store_endpoint_insert(st, &e, &a), STORE_OK);
}

static int64_t count_audit(struct store *st, const char *action)
{
	return raw_int(st, "SELECT count(*) FROM audit_events WHERE action = ?", action, NULL);
}

static int64_t count_messages(struct store *st)
{
	return raw_int(st, "SELECT count(*) FROM webhook_messages", NULL, NULL);
}

/* Publish a platform message of org (key may be NULL); its id into id. */
static int publish(struct store *st, const char *org, const char *type, const char *project,
                   const char *key, const char *hash, char id[STORE_WH_ID_MAX + 1],
                   struct store_message *existing, char existing_hash[65])
{
	struct store_message m = {.created_at = clock_now_ms()};
	ulid_prefixed("msg", m.id, sizeof m.id);
	snprintf(m.org_id, sizeof m.org_id, "%s", org);
	snprintf(m.project_id, sizeof m.project_id, "%s", project ? project : "");
	snprintf(m.type, sizeof m.type, "%s", type);
	json_t *data = json_pack("{s:s}", "invoice", m.id);
	m.body = store_message_body(type, m.created_at, data);
	json_decref(data);
	struct audit_input a = audit(org, "webhook_message.published", "webhook_message", m.id);
	int rc = store_message_publish(st, &m, key, hash, &a, existing, existing_hash);
	if (id)
		snprintf(id, STORE_WH_ID_MAX + 1, "%s", m.id);
	free(m.body);
	return rc;
}

/* ---------- endpoints ---------- */

static void test_endpoint_crud_and_isolation(void **state)
{
	struct fixture *fx = *state;
	struct store *st = fx->st;
	make_org(st, ORG_A, NULL);
	make_org(st, ORG_B, NULL);
	make_project(st, ORG_A, PROJ_A);

	struct store_endpoint e = endpoint("ep_1", ORG_A, PROJ_A, "api_key.killed org.killed");
	snprintf(e.description, sizeof e.description, "ops pager");
	e.rate_limit_per_second = 50;
	struct audit_input a = audit(ORG_A, "webhook_endpoint.created", "webhook_endpoint", "ep_1");
	assert_int_equal(store_endpoint_insert(st, &e, &a), STORE_OK);
	assert_int_equal(count_audit(st, "webhook_endpoint.created"), 1);
	/* The same id again, and an unknown organisation: conflicts, nothing written. */
	assert_int_equal(store_endpoint_insert(st, &e, &a), STORE_ECONFLICT);
	struct store_endpoint orphan = endpoint("ep_x", ORG_C, NULL, NULL);
	assert_int_equal(store_endpoint_insert(st, &orphan, &a), STORE_ECONFLICT);
	assert_int_equal(count_audit(st, "webhook_endpoint.created"), 1);
	/* Not an endpoint id. */
	struct store_endpoint bad = endpoint("xx_1", ORG_A, NULL, NULL);
	assert_int_equal(store_endpoint_insert(st, &bad, &a), STORE_ERROR);
	make_endpoint(st, "ep_2", ORG_A, NULL, NULL);
	make_endpoint(st, "ep_3", ORG_B, NULL, NULL);

	struct store_endpoint got;
	assert_int_equal(store_endpoint_get(st, ORG_A, "ep_1", &got), STORE_OK);
	assert_string_equal(got.org_id, ORG_A);
	assert_string_equal(got.project_id, PROJ_A);
	assert_string_equal(got.url, "https://hooks.example/ep_1");
	assert_string_equal(got.description, "ops pager");
	assert_string_equal(got.event_types, "api_key.killed org.killed");
	assert_int_equal(got.rate_limit_per_second, 50);
	assert_string_equal(got.secret, SEALED);
	assert_string_equal(got.prev_secret, "");
	assert_int_equal(got.prev_expires_at, -1);
	assert_int_equal(got.disabled_at, -1);
	assert_int_equal(got.failing_since, -1);
	assert_int_equal(store_endpoint_get(st, ORG_B, "ep_1", &got), STORE_ENOTFOUND);
	assert_int_equal(store_endpoint_get(st, NULL, "ep_1", &got), STORE_OK);

	struct store_endpoint *list = NULL;
	int n = -1;
	assert_int_equal(store_endpoint_list(st, ORG_A, NULL, 10, &list, &n), STORE_OK);
	assert_int_equal(n, 2);
	assert_string_equal(list[0].id, "ep_1");
	assert_string_equal(list[1].id, "ep_2");
	free(list);
	assert_int_equal(store_endpoint_list(st, ORG_A, "ep_1", 10, &list, &n), STORE_OK);
	assert_int_equal(n, 1);
	assert_string_equal(list[0].id, "ep_2");
	free(list);
	assert_int_equal(store_endpoint_list(st, ORG_A, NULL, 1, &list, &n), STORE_OK);
	assert_int_equal(n, 1);
	free(list);
	assert_int_equal(store_endpoint_list(st, ORG_B, NULL, 10, &list, &n), STORE_OK);
	assert_int_equal(n, 1);
	assert_string_equal(list[0].id, "ep_3");
	free(list);
	assert_int_equal(store_endpoint_list(st, NULL, NULL, 10, &list, &n), STORE_OK);
	assert_int_equal(n, 3);
	free(list);

	/* Update: every mutable field; disabling records when and "user". */
	got = e;
	snprintf(got.url, sizeof got.url, "https://other.example/in");
	snprintf(got.description, sizeof got.description, "%s", "");
	snprintf(got.event_types, sizeof got.event_types, "%s", "");
	snprintf(got.project_id, sizeof got.project_id, "%s", "");
	got.rate_limit_per_second = -1;
	got.disabled_at = 12345;
	a = audit(ORG_A, "webhook_endpoint.updated", "webhook_endpoint", "ep_1");
	assert_int_equal(store_endpoint_update(st, &got, &a), STORE_OK);
	assert_int_equal(store_endpoint_get(st, ORG_A, "ep_1", &got), STORE_OK);
	assert_string_equal(got.url, "https://other.example/in");
	assert_string_equal(got.description, "");
	assert_string_equal(got.event_types, "");
	assert_string_equal(got.project_id, "");
	assert_int_equal(got.rate_limit_per_second, -1);
	assert_int_equal(got.disabled_at, 12345);
	assert_string_equal(got.disabled_reason, "user");
	/* Staying disabled keeps the first time; enabling clears the failure clock. */
	raw_int(st,
	        "UPDATE webhook_endpoints SET failing_since = 7, failing_notified_at = 8 "
	        "WHERE id = ? RETURNING 1",
	        "ep_1", NULL);
	got.disabled_at = 99999;
	assert_int_equal(store_endpoint_update(st, &got, &a), STORE_OK);
	assert_int_equal(store_endpoint_get(st, ORG_A, "ep_1", &got), STORE_OK);
	assert_int_equal(got.disabled_at, 12345);
	assert_int_equal(got.failing_since, 7);
	got.disabled_at = -1;
	assert_int_equal(store_endpoint_update(st, &got, &a), STORE_OK);
	assert_int_equal(store_endpoint_get(st, ORG_A, "ep_1", &got), STORE_OK);
	assert_int_equal(got.disabled_at, -1);
	assert_string_equal(got.disabled_reason, "");
	assert_int_equal(got.failing_since, -1);
	assert_int_equal(got.failing_notified_at, -1);
	assert_int_equal(count_audit(st, "webhook_endpoint.updated"), 3);
	/* Another organisation's endpoint is not found, and nothing is audited. */
	struct store_endpoint foreign = got;
	snprintf(foreign.org_id, sizeof foreign.org_id, "%s", ORG_B);
	assert_int_equal(store_endpoint_update(st, &foreign, &a), STORE_ENOTFOUND);
	assert_int_equal(count_audit(st, "webhook_endpoint.updated"), 3);

	/* Rotate with a grace: the old secret stays as prev until it ends. */
	a = audit(ORG_A, "webhook_endpoint.secret_rotated", "webhook_endpoint", "ep_1");
	assert_int_equal(store_endpoint_rotate(st, ORG_A, "ep_1", "pcs1:k:new", 5000, &a),
	                 STORE_OK);
	assert_int_equal(store_endpoint_get(st, ORG_A, "ep_1", &got), STORE_OK);
	assert_string_equal(got.secret, "pcs1:k:new");
	assert_string_equal(got.prev_secret, SEALED);
	assert_int_equal(got.prev_expires_at, 5000);
	assert_int_equal(store_endpoint_rotate(st, ORG_A, "ep_1", "pcs1:k:newer", 0, &a), STORE_OK);
	assert_int_equal(store_endpoint_get(st, ORG_A, "ep_1", &got), STORE_OK);
	assert_string_equal(got.secret, "pcs1:k:newer");
	assert_string_equal(got.prev_secret, "");
	assert_int_equal(got.prev_expires_at, -1);
	assert_int_equal(store_endpoint_rotate(st, ORG_B, "ep_1", "pcs1:k:x", 0, &a),
	                 STORE_ENOTFOUND);

	/* Delete: gone for get, list, update and delete; the row stays. */
	a = audit(ORG_A, "webhook_endpoint.deleted", "webhook_endpoint", "ep_1");
	assert_int_equal(store_endpoint_delete(st, ORG_B, "ep_1", &a), STORE_ENOTFOUND);
	assert_int_equal(store_endpoint_delete(st, ORG_A, "ep_1", &a), STORE_OK);
	assert_int_equal(store_endpoint_get(st, ORG_A, "ep_1", &got), STORE_ENOTFOUND);
	assert_int_equal(store_endpoint_delete(st, ORG_A, "ep_1", &a), STORE_ENOTFOUND);
	assert_int_equal(store_endpoint_update(st, &e, &a), STORE_ENOTFOUND);
	assert_int_equal(store_endpoint_list(st, ORG_A, NULL, 10, &list, &n), STORE_OK);
	assert_int_equal(n, 1);
	assert_string_equal(list[0].id, "ep_2");
	free(list);
	assert_int_equal(raw_int(st, "SELECT count(*) FROM webhook_endpoints", NULL, NULL), 3);
	assert_int_equal(count_audit(st, "webhook_endpoint.deleted"), 1);
}

/* ---------- events with their change ---------- */

/*
 * An update writes only the fields its mask names: one read before the
 * worker disabled the endpoint (410) and another PATCH changed its url does
 * not undo either (the lost update a get-then-replace had).
 */
static void test_update_writes_only_named_fields(void **state)
{
	struct fixture *fx = *state;
	struct store *st = fx->st;
	make_org(st, ORG_A, NULL);
	make_project(st, ORG_A, PROJ_A);
	make_endpoint(st, "ep_1", ORG_A, PROJ_A, "org.killed");
	struct store_endpoint first, second, got;
	assert_int_equal(store_endpoint_get(st, ORG_A, "ep_1", &first), STORE_OK);
	second = first;
	/* After both reads: the worker disables it, as on a 410. */
	assert_int_equal(store_endpoint_disable(st, "ep_1", "gone", 4242), STORE_OK);
	struct audit_input a = audit(ORG_A, "webhook_endpoint.updated", "webhook_endpoint", "ep_1");

	/* A PATCH of url from the stale read: still disabled, as the worker left it. */
	snprintf(first.url, sizeof first.url, "https://moved.example/in");
	assert_int_equal(store_endpoint_update_fields(st, &first, STORE_EP_URL, &a), STORE_OK);
	assert_int_equal(store_endpoint_get(st, ORG_A, "ep_1", &got), STORE_OK);
	assert_string_equal(got.url, "https://moved.example/in");
	assert_int_equal(got.disabled_at, 4242);
	assert_string_equal(got.disabled_reason, "gone");

	/* Another PATCH of description and rate limit from its stale read keeps that url. */
	snprintf(second.description, sizeof second.description, "pager");
	second.rate_limit_per_second = 7;
	assert_int_equal(store_endpoint_update_fields(
	                     st, &second, STORE_EP_DESCRIPTION | STORE_EP_RATE_LIMIT, &a),
	                 STORE_OK);
	assert_int_equal(store_endpoint_get(st, ORG_A, "ep_1", &got), STORE_OK);
	assert_string_equal(got.url, "https://moved.example/in");
	assert_string_equal(got.description, "pager");
	assert_int_equal(got.rate_limit_per_second, 7);
	assert_string_equal(got.project_id, PROJ_A);
	assert_string_equal(got.event_types, "org.killed");
	assert_int_equal(got.disabled_at, 4242);
	assert_string_equal(got.disabled_reason, "gone");

	/* Naming disabled does change it: enabled again, failure clock cleared. */
	second.disabled_at = -1;
	assert_int_equal(store_endpoint_update_fields(st, &second, STORE_EP_DISABLED, &a),
	                 STORE_OK);
	assert_int_equal(store_endpoint_get(st, ORG_A, "ep_1", &got), STORE_OK);
	assert_int_equal(got.disabled_at, -1);
	assert_string_equal(got.disabled_reason, "");
	assert_string_equal(got.description, "pager");
	/* A mask with unknown bits is refused, nothing audited. */
	assert_int_equal(store_endpoint_update_fields(st, &second, 1u << 9, &a), STORE_ERROR);
	assert_int_equal(count_audit(st, "webhook_endpoint.updated"), 3);
}

static void test_message_body_bytes(void **state)
{
	(void)state;
	int64_t at = 0;
	assert_int_equal(clock_parse_rfc3339("2026-11-22T10:00:00Z", &at), 0);
	json_t *data =
	    json_pack("{s:s,s:s,s:n}", "key_id", "KEY1", "start", "pcl_live_ab", "project_id");
	char *body = store_message_body("api_key.killed", at, data);
	assert_string_equal(body, "{\"type\":\"api_key.killed\",\"timestamp\":"
	                          "\"2026-11-22T10:00:00.000Z\",\"data\":{\"key_id\":\"KEY1\","
	                          "\"start\":\"pcl_live_ab\",\"project_id\":null}}");
	free(body);
	json_decref(data);
	body = store_message_body("webhook.test", at + 5, NULL);
	assert_string_equal(body, "{\"type\":\"webhook.test\",\"timestamp\":"
	                          "\"2026-11-22T10:00:00.005Z\",\"data\":{}}");
	free(body);
	assert_null(store_message_body(NULL, at, NULL));
}

static void test_event_commits_with_its_change(void **state)
{
	struct fixture *fx = *state;
	struct store *st = fx->st;
	make_org(st, ORG_A, NULL);
	int64_t before = clock_now_ms();

	/* A kill with its event: the message is there, of the action's type. */
	struct store_kill k = {.scope = "organization", .set_by = "root", .engaged_at = before};
	snprintf(k.target_id, sizeof k.target_id, "%s", ORG_A);
	snprintf(k.reason, sizeof k.reason, "abuse");
	json_t *data =
	    json_pack("{s:s,s:s,s:s}", "org_id", ORG_A, "scope", "organization", "reason", "abuse");
	struct audit_input a = audit(ORG_A, "org.killed", "org", ORG_A);
	a.event = data;
	a.event_project_id = PROJ_A;
	assert_int_equal(store_kill_engage(st, &k, &a), STORE_OK);
	assert_int_equal(count_messages(st), 1);
	struct db_result *r = raw(st,
	                          "SELECT id, org_id, project_id, type, body, fanned_out, "
	                          "created_at FROM webhook_messages",
	                          NULL, NULL);
	assert_int_equal(r->nrows, 1);
	assert_true(strncmp(db_text(r, 0, 0), "msg_", 4) == 0);
	assert_string_equal(db_text(r, 0, 1), ORG_A);
	assert_string_equal(db_text(r, 0, 2), PROJ_A);
	assert_string_equal(db_text(r, 0, 3), "org.killed");
	assert_int_equal(db_int(r, 0, 5), 0);
	char *want = store_message_body("org.killed", db_int(r, 0, 6), data);
	assert_string_equal(db_text(r, 0, 4), want);
	assert_true(db_int(r, 0, 6) >= before);
	free(want);

	/* store_message_get: the org's own, with its body; not another org's. */
	struct store_message m;
	char id[STORE_WH_ID_MAX + 1];
	snprintf(id, sizeof id, "%s", db_text(r, 0, 0));
	db_result_free(r);
	assert_int_equal(store_message_get(st, ORG_A, id, &m), STORE_OK);
	assert_string_equal(m.type, "org.killed");
	assert_non_null(m.body);
	assert_non_null(strstr(m.body, "\"reason\":\"abuse\""));
	store_message_free(&m);
	assert_null(m.body);
	assert_int_equal(store_message_get(st, ORG_B, id, &m), STORE_ENOTFOUND);

	/* A global event (org NULL): visible to every organisation. */
	struct store_kill g = {.scope = "global", .set_by = "root", .engaged_at = before};
	a = audit(NULL, "global.killed", "global", NULL);
	a.event = data;
	assert_int_equal(store_kill_engage(st, &g, &a), STORE_OK);
	assert_int_equal(count_messages(st), 2);
	r = raw(st, "SELECT id FROM webhook_messages WHERE org_id IS NULL", NULL, NULL);
	assert_int_equal(r->nrows, 1);
	snprintf(id, sizeof id, "%s", db_text(r, 0, 0));
	db_result_free(r);
	assert_int_equal(store_message_get(st, ORG_B, id, &m), STORE_OK);
	assert_string_equal(m.org_id, "");
	store_message_free(&m);

	/* An event with no organisation that is not global.* (a root key's): no message. */
	a = audit(NULL, "api_key.created", "api_key", KEY_1);
	a.event = data;
	assert_int_equal(store_audit_append(st, &a), STORE_OK);
	assert_int_equal(count_messages(st), 2);
	assert_int_equal(count_audit(st, "api_key.created"), 1);

	/* A change that fails (a duplicate organisation) leaves no message. */
	struct store_org o = {.rl_requests = -1, .rl_per_seconds = -1, .rl_burst = -1};
	snprintf(o.id, sizeof o.id, "%s", ORG_A);
	snprintf(o.name, sizeof o.name, "again");
	a = audit(ORG_A, "org.created", "org", ORG_A);
	a.event = data;
	assert_int_equal(store_org_insert(st, &o, &a), STORE_ECONFLICT);
	assert_int_equal(count_messages(st), 2);
	/* Without event, a change makes no message. */
	a = audit(ORG_A, "org.kill_lifted", "org", ORG_A);
	assert_int_equal(store_kill_lift(st, "organization", ORG_A, &a), STORE_OK);
	assert_int_equal(count_messages(st), 2);
	/* A notice on its own (store_audit_append) brings its message too. */
	a = audit(ORG_A, "api_key.leak_reported", "api_key", KEY_1);
	a.event = data;
	assert_int_equal(store_audit_append(st, &a), STORE_OK);
	assert_int_equal(count_messages(st), 3);
	json_decref(data);
}

/* ---------- publish ---------- */

static void test_publish_idempotency(void **state)
{
	struct fixture *fx = *state;
	struct store *st = fx->st;
	make_org(st, ORG_A, NULL);
	make_org(st, ORG_B, NULL);
	char first[STORE_WH_ID_MAX + 1], second[STORE_WH_ID_MAX + 1];
	char hash1[65], hash2[65];
	memset(hash1, 'a', 64);
	hash1[64] = '\0';
	memset(hash2, 'b', 64);
	hash2[64] = '\0';

	/* A first publish leaves *existing empty (freeable) and the hash "". */
	struct store_message untouched;
	memset(&untouched, 0x5a, sizeof untouched);
	char untouched_hash[65] = "junk";
	assert_int_equal(publish(st, ORG_A, "invoice.paid", PROJ_A, "key-1", hash1, first,
	                         &untouched, untouched_hash),
	                 STORE_OK);
	assert_null(untouched.body);
	assert_string_equal(untouched_hash, "");
	store_message_free(&untouched);
	assert_int_equal(count_audit(st, "webhook_message.published"), 1);
	/* The same key again: the first message and its hash, nothing written. */
	struct store_message existing = {.body = NULL};
	char existing_hash[65] = "";
	assert_int_equal(publish(st, ORG_A, "invoice.paid", NULL, "key-1", hash2, second, &existing,
	                         existing_hash),
	                 STORE_ECONFLICT);
	assert_string_equal(existing.id, first);
	assert_string_equal(existing.type, "invoice.paid");
	assert_string_equal(existing.project_id, PROJ_A);
	assert_string_equal(existing_hash, hash1);
	assert_non_null(existing.body);
	assert_non_null(strstr(existing.body, first)); /* the first message's own payload */
	store_message_free(&existing);
	assert_int_equal(count_messages(st), 1);
	assert_int_equal(count_audit(st, "webhook_message.published"), 1);
	struct store_message m;
	assert_int_equal(store_message_get(st, NULL, second, &m), STORE_ENOTFOUND);

	/* The key is per organisation; no key never collides. */
	assert_int_equal(
	    publish(st, ORG_B, "invoice.paid", NULL, "key-1", hash1, second, NULL, NULL), STORE_OK);
	assert_int_equal(publish(st, ORG_A, "invoice.paid", NULL, NULL, NULL, NULL, NULL, NULL),
	                 STORE_OK);
	assert_int_equal(publish(st, ORG_A, "invoice.paid", NULL, NULL, NULL, NULL, NULL, NULL),
	                 STORE_OK);
	assert_int_equal(count_messages(st), 4);
	assert_int_equal(count_audit(st, "webhook_message.published"), 4);
	assert_int_equal(store_message_get(st, ORG_A, first, &m), STORE_OK);
	assert_string_equal(m.org_id, ORG_A);
	store_message_free(&m);
	assert_int_equal(store_message_get(st, ORG_A, second, &m), STORE_ENOTFOUND);
	/* Bounds: an event type over STORE_WH_TYPE_MAX fails its change. */
	char type[STORE_WH_TYPE_MAX + 2];
	memset(type, 't', sizeof type - 1);
	type[sizeof type - 1] = '\0';
	json_t *data = json_object();
	struct audit_input a = audit(ORG_A, type, "org", ORG_A);
	a.event = data;
	assert_int_equal(store_audit_append(st, &a), STORE_ERROR);
	assert_int_equal(count_audit(st, type), 0);
	assert_int_equal(count_messages(st), 4);
	json_decref(data);
}

/* ---------- fan-out ---------- */

static const char *const mail_types[] = {"api_key.killed", "global.killed", NULL};

/* The message's delivery targets, space-separated in target order, with channels. */
static char *targets_of(struct store *st, const char *message_id)
{
	struct db_result *r = raw(st,
	                          "SELECT target, channel, org_id, status, attempts, "
	                          "next_attempt_at FROM webhook_deliveries WHERE message_id = ? "
	                          "ORDER BY target",
	                          message_id, NULL);
	static char out[1024];
	out[0] = '\0';
	for (int i = 0; i < r->nrows; i++) {
		assert_string_equal(db_text(r, i, 3), "pending");
		assert_int_equal(db_int(r, i, 4), 0);
		assert_non_null(db_text(r, i, 5));
		bool mail = strncmp(db_text(r, i, 0), "mail:", 5) == 0;
		assert_string_equal(db_text(r, i, 1), mail ? "email" : "webhook");
		if (mail)
			assert_string_equal(db_text(r, i, 0) + 5, db_text(r, i, 2));
		snprintf(out + strlen(out), sizeof out - strlen(out), "%s%s", i ? " " : "",
		         db_text(r, i, 0));
	}
	db_result_free(r);
	return out;
}

/* An event message of org (NULL: global) made by an audited notice; its id. */
static void event(struct store *st, const char *org, const char *type, const char *project,
                  char id[STORE_WH_ID_MAX + 1])
{
	/* Ids made in one millisecond do not sort by time: a new millisecond. */
	struct timespec ms = {0, 2 * 1000000L};
	nanosleep(&ms, NULL);
	json_t *data = json_object();
	struct audit_input a = audit(org, type, "org", org);
	a.event = data;
	a.event_project_id = project;
	assert_int_equal(store_audit_append(st, &a), STORE_OK);
	json_decref(data);
	struct db_result *r =
	    raw(st, "SELECT id FROM webhook_messages ORDER BY id DESC LIMIT 1", NULL, NULL);
	snprintf(id, STORE_WH_ID_MAX + 1, "%s", db_text(r, 0, 0));
	db_result_free(r);
}

static void fanout_all(struct store *st, int want)
{
	int n = -1;
	assert_int_equal(store_fanout(st, mail_types, 100, &n), STORE_OK);
	assert_int_equal(n, want);
}

static void test_fanout_matching(void **state)
{
	struct fixture *fx = *state;
	struct store *st = fx->st;
	make_org(st, ORG_A, "ops@a.example");
	make_org(st, ORG_B, "ops@b.example");
	make_org(st, ORG_C, NULL);
	make_project(st, ORG_A, PROJ_A);
	make_project(st, ORG_A, PROJ_B);
	make_endpoint(st, "ep_a1", ORG_A, NULL, NULL);
	make_endpoint(st, "ep_a2", ORG_A, NULL, "api_key.killed api_key.kill_lifted");
	make_endpoint(st, "ep_a3", ORG_A, PROJ_A, NULL);
	make_endpoint(st, "ep_a4", ORG_A, NULL, NULL);
	make_endpoint(st, "ep_a5", ORG_A, NULL, NULL);
	make_endpoint(st, "ep_b1", ORG_B, NULL, NULL);
	make_endpoint(st, "ep_c1", ORG_C, NULL, NULL);
	/* ep_a4 disabled, ep_a5 deleted: neither gets anything. */
	struct store_endpoint e;
	assert_int_equal(store_endpoint_get(st, ORG_A, "ep_a4", &e), STORE_OK);
	e.disabled_at = 1;
	struct audit_input a = audit(ORG_A, "webhook_endpoint.updated", "webhook_endpoint", e.id);
	assert_int_equal(store_endpoint_update(st, &e, &a), STORE_OK);
	assert_int_equal(store_endpoint_delete(st, ORG_A, "ep_a5", &a), STORE_OK);

	char m1[STORE_WH_ID_MAX + 1], m2[STORE_WH_ID_MAX + 1], m3[STORE_WH_ID_MAX + 1],
	    m4[STORE_WH_ID_MAX + 1], m5[STORE_WH_ID_MAX + 1];
	/* Org-wide, not a listed type of a2, not mailed: a1 and the project endpoint a3. */
	assert_int_equal(publish(st, ORG_A, "invoice.paid", NULL, NULL, NULL, m1, NULL, NULL),
	                 STORE_OK);
	/* Another project's, mailed: a1, a2 (listed), not a3; the contact. */
	event(st, ORG_A, "api_key.killed", PROJ_B, m2);
	/* Project A's: a1 and a3. */
	event(st, ORG_A, "project.created", PROJ_A, m3);
	/* Global, mailed: every organisation's endpoints that take the type, every contact. */
	event(st, NULL, "global.killed", NULL, m4);
	/* api_key.kill_lifted is not in mail_types here: no mail. */
	event(st, ORG_B, "api_key.kill_lifted", NULL, m5);

	int64_t pending = -1, oldest = -1;
	assert_int_equal(store_outbox_stats(st, &pending, &oldest), STORE_OK);
	assert_int_equal(pending, 0);
	assert_true(oldest > 0); /* messages not fanned out yet count as undelivered */

	fanout_all(st, 5);
	assert_string_equal(targets_of(st, m1), "ep_a1 ep_a3");
	assert_string_equal(targets_of(st, m2), "ep_a1 ep_a2 mail:" ORG_A);
	assert_string_equal(targets_of(st, m3), "ep_a1 ep_a3");
	assert_string_equal(targets_of(st, m4),
	                    "ep_a1 ep_a3 ep_b1 ep_c1 mail:" ORG_A " mail:" ORG_B);
	assert_string_equal(targets_of(st, m5), "ep_b1");
	/* A global message's delivery belongs to the receiving organisation. */
	assert_int_equal(raw_int(st,
	                         "SELECT count(*) FROM webhook_deliveries WHERE message_id = ? "
	                         "AND target = 'ep_b1' AND org_id = ?",
	                         m4, ORG_B),
	                 1);
	/* Done once: nothing is fanned out twice. */
	fanout_all(st, 0);
	assert_int_equal(raw_int(st, "SELECT count(*) FROM webhook_deliveries", NULL, NULL), 14);
	assert_int_equal(store_outbox_stats(st, &pending, &oldest), STORE_OK);
	assert_int_equal(pending, 14);

	/* No mail types: no mail deliveries; the limit bounds one call. */
	event(st, ORG_A, "api_key.killed", NULL, m1);
	event(st, ORG_A, "api_key.killed", NULL, m2);
	int n = -1;
	assert_int_equal(store_fanout(st, NULL, 1, &n), STORE_OK);
	assert_int_equal(n, 1);
	assert_string_equal(targets_of(st, m1), "ep_a1 ep_a2 ep_a3");
	assert_string_equal(targets_of(st, m2), "");
	assert_int_equal(store_fanout(st, NULL, 1, &n), STORE_OK);
	assert_int_equal(n, 1);
	assert_string_equal(targets_of(st, m2), "ep_a1 ep_a2 ep_a3");
}

/* ---------- claims ---------- */

/* n published messages of org, fanned out. */
static void publish_n(struct store *st, const char *org, int n)
{
	for (int i = 0; i < n; i++)
		assert_int_equal(
		    publish(st, org, "invoice.paid", NULL, NULL, NULL, NULL, NULL, NULL), STORE_OK);
	int done = -1;
	assert_int_equal(store_fanout(st, mail_types, 500, &done), STORE_OK);
	assert_int_equal(done, n);
}

static int count_target(const struct store_claim *c, int n, const char *endpoint_id)
{
	int k = 0;
	for (int i = 0; i < n; i++)
		k += strcmp(c[i].ep.id, endpoint_id) == 0;
	return k;
}

static void test_claims(void **state)
{
	struct fixture *fx = *state;
	struct store *st = fx->st;
	make_org(st, ORG_A, "ops@a.example");
	make_org(st, ORG_B, NULL);
	make_endpoint(st, "ep_a1", ORG_A, NULL, NULL);
	make_endpoint(st, "ep_b1", ORG_B, NULL, NULL);
	publish_n(st, ORG_A, 5);
	publish_n(st, ORG_B, 1);
	char mailed[STORE_WH_ID_MAX + 1];
	event(st, ORG_A, "api_key.killed", NULL, mailed);
	fanout_all(st, 1); /* ep_a1 and mail:ORG_A */
	int64_t now = clock_now_ms() + 1;

	/* Not due yet: nothing. */
	struct store_claim *c = NULL;
	int n = -1;
	assert_int_equal(store_claim(st, "w1", now - 60000, now, 100, 10, NULL, 0, &c, &n),
	                 STORE_OK);
	assert_int_equal(n, 0);
	store_claims_free(c, n);

	/* per_endpoint caps each target; skip leaves a target out. */
	const char *skip[] = {"ep_b1"};
	assert_int_equal(store_claim(st, "w1", now, now + 30000, 100, 2, skip, 1, &c, &n),
	                 STORE_OK);
	assert_int_equal(n, 3);
	assert_int_equal(count_target(c, n, "ep_a1"), 2);
	assert_int_equal(count_target(c, n, "ep_b1"), 0);
	int mail = -1;
	for (int i = 0; i < n; i++) {
		assert_true(strncmp(c[i].id, "dlv_", 4) == 0);
		assert_true(strncmp(c[i].message_id, "msg_", 4) == 0);
		assert_string_equal(c[i].org_id, ORG_A);
		assert_int_equal(c[i].attempts, 0);
		assert_true(c[i].created_at > 0);
		assert_non_null(c[i].body);
		if (strcmp(c[i].channel, "email") == 0) {
			mail = i;
			continue;
		}
		assert_string_equal(c[i].channel, "webhook");
		assert_string_equal(c[i].type, "invoice.paid");
		assert_string_equal(c[i].ep.url, "https://hooks.example/ep_a1");
		assert_string_equal(c[i].ep.secret, SEALED);
		struct store_message m;
		assert_int_equal(store_message_get(st, NULL, c[i].message_id, &m), STORE_OK);
		assert_string_equal(c[i].body, m.body);
		store_message_free(&m);
	}
	assert_true(mail >= 0);
	assert_string_equal(c[mail].type, "api_key.killed");
	assert_string_equal(c[mail].contact_email, "ops@a.example");
	assert_string_equal(c[mail].ep.id, "");
	assert_string_equal(c[mail].message_id, mailed);
	store_claims_free(c, n);

	/* Leased ones are not claimed again; the rest are, by anyone. */
	assert_int_equal(store_claim(st, "w2", now, now + 30000, 100, 100, NULL, 0, &c, &n),
	                 STORE_OK);
	assert_int_equal(n, 5); /* 4 of ep_a1 and ep_b1's */
	assert_int_equal(count_target(c, n, "ep_a1"), 4);
	store_claims_free(c, n);
	assert_int_equal(store_claim(st, "w3", now + 29999, now + 60000, 100, 100, NULL, 0, &c, &n),
	                 STORE_OK);
	assert_int_equal(n, 0);
	store_claims_free(c, n);
	/* A lease that ran out (its worker died): claimable again. */
	assert_int_equal(store_claim(st, "w3", now + 30000, now + 60000, 100, 100, NULL, 0, &c, &n),
	                 STORE_OK);
	assert_int_equal(n, 8);
	store_claims_free(c, n);
	assert_int_equal(raw_int(st,
	                         "SELECT count(*) FROM webhook_deliveries WHERE lease_owner = 'w3'",
	                         NULL, NULL),
	                 8);

	/* A restarted worker gives its leases back: claimable at once. */
	assert_int_equal(store_claim_release_all(st, "w3"), STORE_OK);
	assert_int_equal(store_claim(st, "w4", now + 30001, now + 90000, 3, 100, NULL, 0, &c, &n),
	                 STORE_OK);
	assert_int_equal(n, 3); /* the limit */
	store_claims_free(c, n);
	assert_int_equal(store_claim_release_all(st, "w4"), STORE_OK);

	/* A disabled endpoint's deliveries stay pending but are not claimed. */
	struct store_endpoint e;
	assert_int_equal(store_endpoint_get(st, ORG_A, "ep_a1", &e), STORE_OK);
	e.disabled_at = now;
	struct audit_input a = audit(ORG_A, "webhook_endpoint.updated", "webhook_endpoint", e.id);
	assert_int_equal(store_endpoint_update(st, &e, &a), STORE_OK);
	int64_t later = clock_now_ms() + 100000;
	assert_int_equal(store_claim(st, "w5", later, later + 1000, 100, 100, NULL, 0, &c, &n),
	                 STORE_OK);
	assert_int_equal(n, 2); /* ep_b1's and the mail */
	assert_int_equal(count_target(c, n, "ep_a1"), 0);
	store_claims_free(c, n);
	int64_t pending = -1, oldest = -1;
	assert_int_equal(store_outbox_stats(st, &pending, &oldest), STORE_OK);
	assert_int_equal(pending, 2); /* the disabled endpoint's do not count */
	/* Parked out of the due range; enabled again, due at once. */
	assert_int_equal(raw_int(st,
	                         "SELECT count(*) FROM webhook_deliveries WHERE endpoint_id = "
	                         "'ep_a1' AND status = 'pending' AND next_attempt_at IS NULL",
	                         NULL, NULL),
	                 6);
	e.disabled_at = -1;
	assert_int_equal(store_endpoint_update(st, &e, &a), STORE_OK);
	assert_int_equal(
	    store_claim(st, "w6", clock_now_ms() + 1, later + 1000, 100, 100, NULL, 0, &c, &n),
	    STORE_OK);
	assert_int_equal(n, 6);
	assert_int_equal(count_target(c, n, "ep_a1"), 6);
	store_claims_free(c, n);
	/*
	 * Disabled by the background tier while w6 holds them: parked too, and
	 * neither giving the leases back nor a resend makes them due.
	 */
	assert_int_equal(store_endpoint_disable(st, "ep_a1", "gone", later), STORE_OK);
	assert_int_equal(store_claim_release_all(st, "w6"), STORE_OK);
	struct db_result *r = raw(st,
	                          "SELECT message_id FROM webhook_deliveries WHERE endpoint_id = "
	                          "'ep_a1' ORDER BY id",
	                          NULL, NULL);
	char mid[STORE_WH_ID_MAX + 1];
	snprintf(mid, sizeof mid, "%s", db_text(r, 0, 0));
	db_result_free(r);
	assert_int_equal(store_message_resend(st, ORG_A, mid, "ep_a1", &a, &n), STORE_OK);
	assert_int_equal(n, 1);
	assert_int_equal(raw_int(st,
	                         "SELECT count(*) FROM webhook_deliveries WHERE endpoint_id = "
	                         "'ep_a1' AND next_attempt_at IS NULL AND status = 'pending'",
	                         NULL, NULL),
	                 6);
	/* A deleted endpoint's pending deliveries end failed. */
	assert_int_equal(store_endpoint_delete(st, ORG_A, "ep_a1", &a), STORE_OK);
	assert_int_equal(raw_int(st,
	                         "SELECT count(*) FROM webhook_deliveries WHERE endpoint_id = "
	                         "'ep_a1' AND status = 'failed'",
	                         NULL, NULL),
	                 6);
	/* Bad arguments. */
	assert_int_equal(store_claim(st, "", later, later + 1, 1, 1, NULL, 0, &c, &n), STORE_ERROR);
	assert_int_equal(store_claim(st, "w", later, later, 1, 1, NULL, 0, &c, &n), STORE_ERROR);
}

struct claimer {
	struct store *st;
	const char *owner;
	pthread_barrier_t *go;
	char (*got)[STORE_WH_ID_MAX + 1];
	int n, rc;
};

static void *claim_thread(void *arg)
{
	struct claimer *w = arg;
	pthread_barrier_wait(w->go);
	for (int round = 0; round < 200; round++) {
		struct store_claim *c = NULL;
		int n = 0;
		int64_t now = clock_now_ms() + 1000;
		w->rc = store_claim(w->st, w->owner, now, now + 600000, 7, 100, NULL, 0, &c, &n);
		if (w->rc != STORE_OK)
			return NULL;
		for (int i = 0; i < n; i++)
			snprintf(w->got[w->n++], STORE_WH_ID_MAX + 1, "%s", c[i].id);
		store_claims_free(c, n);
		if (n == 0 && round > 10)
			break;
	}
	return NULL;
}

static int cmp_id(const void *a, const void *b)
{
	return strcmp(a, b);
}

/* Two workers (two stores: two nodes) claiming at once never get the same delivery. */
static void test_concurrent_claims_never_share(void **state)
{
	struct fixture *fx = *state;
	struct store *st = fx->st;
	enum { TOTAL = 120 };
	make_org(st, ORG_A, NULL);
	make_endpoint(st, "ep_a1", ORG_A, NULL, NULL);
	make_endpoint(st, "ep_a2", ORG_A, NULL, NULL);
	publish_n(st, ORG_A, TOTAL / 2);
	pthread_barrier_t go;
	assert_int_equal(pthread_barrier_init(&go, NULL, 2), 0);
	static char got[2][TOTAL + 1][STORE_WH_ID_MAX + 1];
	struct claimer w[2] = {{open_store(fx, 2), "node-1", &go, got[0], 0, 0},
	                       {open_store(fx, 2), "node-2", &go, got[1], 0, 0}};
	pthread_t th[2];
	for (int i = 0; i < 2; i++)
		assert_int_equal(pthread_create(&th[i], NULL, claim_thread, &w[i]), 0);
	for (int i = 0; i < 2; i++)
		pthread_join(th[i], NULL);
	pthread_barrier_destroy(&go);
	for (int i = 0; i < 2; i++) {
		assert_int_equal(w[i].rc, STORE_OK);
		store_close(w[i].st);
	}
	assert_int_equal(w[0].n + w[1].n, TOTAL);
	static char all[TOTAL][STORE_WH_ID_MAX + 1];
	memcpy(all, got[0], sizeof all[0] * (size_t)w[0].n);
	memcpy(all + w[0].n, got[1], sizeof all[0] * (size_t)w[1].n);
	qsort(all, TOTAL, sizeof all[0], cmp_id);
	for (int i = 1; i < TOTAL; i++)
		assert_string_not_equal(all[i - 1], all[i]);
	if (is_pg(fx))
		print_message("claims split %d / %d\n", w[0].n, w[1].n);
}

/* ---------- records ---------- */

static struct store_claim *claim_all(struct store *st, const char *owner, int64_t now, int *n)
{
	struct store_claim *c = NULL;
	assert_int_equal(store_claim(st, owner, now, now + 30000, 100, 100, NULL, 0, &c, n),
	                 STORE_OK);
	return c;
}

static void test_record(void **state)
{
	struct fixture *fx = *state;
	struct store *st = fx->st;
	make_org(st, ORG_A, NULL);
	make_endpoint(st, "ep_a1", ORG_A, NULL, NULL);
	make_endpoint(st, "ep_a2", ORG_A, NULL, NULL);
	publish_n(st, ORG_A, 2); /* 2 deliveries per endpoint */
	int64_t t = clock_now_ms() + 1;
	int n = 0;
	struct store_claim *c = claim_all(st, "w1", t, &n);
	assert_int_equal(n, 4);
	const char *a1[2], *a2[2];
	int k1 = 0, k2 = 0;
	for (int i = 0; i < n; i++) {
		if (strcmp(c[i].ep.id, "ep_a1") == 0)
			a1[k1++] = c[i].id;
		else
			a2[k2++] = c[i].id;
	}
	assert_int_equal(k1, 2);
	assert_int_equal(k2, 2);
	raw_int(st,
	        "UPDATE webhook_endpoints SET failing_since = 5, failing_notified_at = 6 "
	        "WHERE id = 'ep_a1' RETURNING 1",
	        NULL, NULL);

	/*
	 * ep_a1: a failure then a success (healthy again); ep_a2: a failure with
	 * a retry and a final failure, a long invalid-UTF-8 response kept as text.
	 */
	char response[3000];
	memset(response, 'x', sizeof response - 1);
	response[sizeof response - 1] = '\0';
	response[3] = (char)0xff;
	response[1023] = (char)0xc3; /* a character cut by the bound: dropped whole */
	response[1024] = (char)0xa9;
	struct store_attempt at[] = {
	    {.delivery_id = a1[0],
	     .at = t + 10,
	     .duration_ms = 12,
	     .http_status = 500,
	     .error = "status",
	     .response = "oops",
	     .next_attempt_at = t + 5000},
	    {.delivery_id = a1[1],
	     .at = t + 20,
	     .duration_ms = 3,
	     .http_status = 204,
	     .succeeded = true,
	     .next_attempt_at = -1},
	    {.delivery_id = a2[0],
	     .at = t + 30,
	     .duration_ms = 15000,
	     .error = "timeout",
	     .response = response,
	     .next_attempt_at = t + 7000},
	    {.delivery_id = a2[1],
	     .at = t + 40,
	     .duration_ms = 1,
	     .error = "egress_refused",
	     .next_attempt_at = -1},
	};
	assert_int_equal(store_record(st, "w1", at, 4), STORE_OK);

	struct db_result *r = raw(st,
	                          "SELECT id, status, attempts, next_attempt_at, lease_owner, "
	                          "lease_until FROM webhook_deliveries ORDER BY id",
	                          NULL, NULL);
	assert_int_equal(r->nrows, 4);
	for (int i = 0; i < r->nrows; i++) {
		const char *id = db_text(r, i, 0);
		assert_int_equal(db_int(r, i, 2), 1);
		assert_null(db_text(r, i, 4));
		assert_null(db_text(r, i, 5));
		if (strcmp(id, a1[0]) == 0) {
			assert_string_equal(db_text(r, i, 1), "pending");
			assert_int_equal(db_int(r, i, 3), t + 5000);
		} else if (strcmp(id, a1[1]) == 0) {
			assert_string_equal(db_text(r, i, 1), "succeeded");
			assert_null(db_text(r, i, 3));
		} else if (strcmp(id, a2[0]) == 0) {
			assert_string_equal(db_text(r, i, 1), "pending");
			assert_int_equal(db_int(r, i, 3), t + 7000);
		} else {
			assert_string_equal(db_text(r, i, 1), "failed");
			assert_null(db_text(r, i, 3));
		}
	}
	db_result_free(r);
	struct store_endpoint e;
	assert_int_equal(store_endpoint_get(st, ORG_A, "ep_a1", &e), STORE_OK);
	assert_int_equal(e.failing_since, -1); /* the success came last */
	assert_int_equal(e.failing_notified_at, -1);
	assert_int_equal(store_endpoint_get(st, ORG_A, "ep_a2", &e), STORE_OK);
	assert_int_equal(e.failing_since, t + 30); /* the first failure */
	char a2_first[STORE_WH_ID_MAX + 1], a1_ok[STORE_WH_ID_MAX + 1],
	    a1_retry[STORE_WH_ID_MAX + 1];
	snprintf(a2_first, sizeof a2_first, "%s", a2[0]);
	snprintf(a1_retry, sizeof a1_retry, "%s", a1[0]);
	snprintf(a1_ok, sizeof a1_ok, "%s", a1[1]);
	store_claims_free(c, n);

	/* The attempt rows, as listed. */
	r = raw(st,
	        "SELECT outcome, http_status, duration_ms, error, response, next_attempt_at, "
	        "endpoint_id, org_id, channel, message_id FROM webhook_attempts WHERE "
	        "delivery_id = ?",
	        a2_first, NULL);
	assert_int_equal(r->nrows, 1);
	assert_string_equal(db_text(r, 0, 0), "failed");
	assert_null(db_text(r, 0, 1));
	assert_int_equal(db_int(r, 0, 2), 15000);
	assert_string_equal(db_text(r, 0, 3), "timeout");
	const char *resp = db_text(r, 0, 4);
	assert_int_equal(strlen(resp), 1023);
	assert_int_equal(resp[3], '?');
	assert_int_equal(db_int(r, 0, 5), t + 7000);
	assert_string_equal(db_text(r, 0, 6), "ep_a2");
	assert_string_equal(db_text(r, 0, 7), ORG_A);
	assert_string_equal(db_text(r, 0, 8), "webhook");
	db_result_free(r);
	assert_int_equal(raw_int(st,
	                         "SELECT http_status FROM webhook_attempts WHERE delivery_id = ?",
	                         a1_ok, NULL),
	                 204);
	assert_int_equal(raw_int(st,
	                         "SELECT count(*) FROM webhook_attempts WHERE delivery_id = ? AND "
	                         "outcome = 'succeeded' AND error IS NULL",
	                         a1_ok, NULL),
	                 1);

	/* The retry is due at its time, with the attempts made so far. */
	c = claim_all(st, "w1", t + 5000, &n);
	assert_int_equal(n, 1);
	assert_string_equal(c[0].id, a1_retry);
	assert_int_equal(c[0].attempts, 1);
	char retry_id[STORE_WH_ID_MAX + 1];
	snprintf(retry_id, sizeof retry_id, "%s", c[0].id);
	store_claims_free(c, n);
	/* Recorded by a worker that no longer holds the lease: kept, not moved. */
	struct store_attempt late = {.delivery_id = retry_id,
	                             .at = t + 5001,
	                             .http_status = 200,
	                             .succeeded = true,
	                             .next_attempt_at = -1};
	assert_int_equal(store_record(st, "w-old", &late, 1), STORE_OK);
	assert_int_equal(
	    raw_int(st, "SELECT attempts FROM webhook_deliveries WHERE id = ?", retry_id, NULL), 1);
	assert_int_equal(raw_int(st, "SELECT count(*) FROM webhook_attempts WHERE delivery_id = ?",
	                         retry_id, NULL),
	                 2);
	/* Failing again on ep_a1: its clock starts at this failure. */
	struct store_attempt fail = {.delivery_id = retry_id,
	                             .at = t + 5002,
	                             .error = "connect",
	                             .next_attempt_at = t + 9000};
	assert_int_equal(store_record(st, "w1", &fail, 1), STORE_OK);
	assert_int_equal(store_endpoint_get(st, ORG_A, "ep_a1", &e), STORE_OK);
	assert_int_equal(e.failing_since, t + 5002);
	/* ep_a2 failing more keeps its first failure time. */
	c = claim_all(st, "w1", t + 7000, &n);
	assert_int_equal(n, 1);
	struct store_attempt again = {
	    .delivery_id = c[0].id, .at = t + 7001, .error = "tls", .next_attempt_at = -1};
	assert_int_equal(store_record(st, "w1", &again, 1), STORE_OK);
	store_claims_free(c, n);
	assert_int_equal(store_endpoint_get(st, ORG_A, "ep_a2", &e), STORE_OK);
	assert_int_equal(e.failing_since, t + 30);
	assert_int_equal(store_record(st, "w1", NULL, 0), STORE_OK);
}

/* Many attempts in one record: the multi-row statements of every size. */
static void test_record_batch(void **state)
{
	struct fixture *fx = *state;
	struct store *st = fx->st;
	enum { N = 203 };
	make_org(st, ORG_A, NULL);
	make_endpoint(st, "ep_a1", ORG_A, NULL, NULL);
	publish_n(st, ORG_A, N);
	int64_t t = clock_now_ms() + 1;
	struct store_claim *c = NULL;
	int n = 0;
	assert_int_equal(store_claim(st, "w1", t, t + 30000, 500, 500, NULL, 0, &c, &n), STORE_OK);
	assert_int_equal(n, N);
	struct store_attempt *at = calloc(N, sizeof *at);
	for (int i = 0; i < N; i++)
		at[i] = (struct store_attempt){.delivery_id = c[i].id,
		                               .at = t + i,
		                               .http_status = i % 2 ? 200 : 503,
		                               .succeeded = i % 2 == 1,
		                               .error = i % 2 ? NULL : "status",
		                               .next_attempt_at = i % 2 ? -1 : t + 60000};
	assert_int_equal(store_record(st, "w1", at, N), STORE_OK);
	free(at);
	store_claims_free(c, n);
	assert_int_equal(raw_int(st, "SELECT count(*) FROM webhook_attempts", NULL, NULL), N);
	assert_int_equal(raw_int(st,
	                         "SELECT count(*) FROM webhook_deliveries WHERE status = "
	                         "'succeeded' AND attempts = 1",
	                         NULL, NULL),
	                 N / 2);
	assert_int_equal(raw_int(st,
	                         "SELECT count(*) FROM webhook_deliveries WHERE status = "
	                         "'pending' AND attempts = 1 AND lease_owner IS NULL",
	                         NULL, NULL),
	                 N - N / 2);
	/* The last attempt (i = N - 1, even: a failure) is after the last success. */
	struct store_endpoint e;
	assert_int_equal(store_endpoint_get(st, ORG_A, "ep_a1", &e), STORE_OK);
	assert_int_equal(e.failing_since, t + N - 1);
}

/* ---------- resend, recover, test messages ---------- */

/* Record a final failure for every delivery claimable now. */
static int fail_all(struct store *st, int64_t now)
{
	int n = 0;
	struct store_claim *c = claim_all(st, "w1", now, &n);
	struct store_attempt *at = calloc((size_t)n + 1, sizeof *at);
	for (int i = 0; i < n; i++)
		at[i] = (struct store_attempt){.delivery_id = c[i].id,
		                               .at = now,
		                               .http_status = 500,
		                               .error = "status",
		                               .next_attempt_at = -1};
	assert_int_equal(store_record(st, "w1", at, n), STORE_OK);
	free(at);
	store_claims_free(c, n);
	return n;
}

static void test_resend_recover_and_test(void **state)
{
	struct fixture *fx = *state;
	struct store *st = fx->st;
	make_org(st, ORG_A, NULL);
	make_org(st, ORG_B, NULL);
	make_endpoint(st, "ep_a1", ORG_A, NULL, NULL);
	make_endpoint(st, "ep_a2", ORG_A, NULL, NULL);
	char m1[STORE_WH_ID_MAX + 1];
	assert_int_equal(publish(st, ORG_A, "invoice.paid", NULL, NULL, NULL, m1, NULL, NULL),
	                 STORE_OK);
	fanout_all(st, 1);
	int64_t t = clock_now_ms() + 1;
	assert_int_equal(fail_all(st, t), 2);
	assert_int_equal(raw_int(st,
	                         "SELECT count(*) FROM webhook_deliveries WHERE status = 'failed'",
	                         NULL, NULL),
	                 2);

	/* Resend to one endpoint: pending, due now, attempts from zero. */
	int n = -1;
	struct audit_input a = audit(ORG_A, "webhook_message.resent", "webhook_message", m1);
	assert_int_equal(store_message_resend(st, ORG_B, m1, NULL, &a, &n), STORE_ENOTFOUND);
	assert_int_equal(n, 0);
	assert_int_equal(store_message_resend(st, ORG_A, m1, "ep_a1", &a, &n), STORE_OK);
	assert_int_equal(n, 1);
	assert_int_equal(count_audit(st, "webhook_message.resent"), 1);
	assert_int_equal(raw_int(st,
	                         "SELECT attempts FROM webhook_deliveries WHERE target = 'ep_a1' "
	                         "AND status = 'pending'",
	                         NULL, NULL),
	                 0);
	struct store_claim *c = claim_all(st, "w1", clock_now_ms() + 1, &n);
	assert_int_equal(n, 1);
	assert_string_equal(c[0].ep.id, "ep_a1");
	assert_int_equal(c[0].attempts, 0);
	store_claims_free(c, n);
	/* One in flight is not reset; the other one is. */
	assert_int_equal(store_message_resend(st, ORG_A, m1, NULL, &a, &n), STORE_OK);
	assert_int_equal(n, 1);
	assert_int_equal(raw_int(st,
	                         "SELECT count(*) FROM webhook_deliveries WHERE lease_owner = 'w1'",
	                         NULL, NULL),
	                 1);
	assert_int_equal(store_claim_release_all(st, "w1"), STORE_OK);

	/* Recover: the endpoint's failed deliveries since a time. */
	assert_int_equal(fail_all(st, clock_now_ms() + 1), 2);
	assert_int_equal(store_endpoint_recover(st, ORG_B, "ep_a2", 0, &a, &n), STORE_ENOTFOUND);
	assert_int_equal(store_endpoint_recover(st, ORG_A, "ep_a2", clock_now_ms() + 60000, &a, &n),
	                 STORE_OK);
	assert_int_equal(n, 0);
	assert_int_equal(store_endpoint_recover(st, ORG_A, "ep_a2", 0, &a, &n), STORE_OK);
	assert_int_equal(n, 1);
	assert_int_equal(raw_int(st,
	                         "SELECT count(*) FROM webhook_deliveries WHERE target = 'ep_a2' "
	                         "AND status = 'pending' AND attempts = 0",
	                         NULL, NULL),
	                 1);
	assert_int_equal(store_endpoint_recover(st, ORG_A, "ep_a2", 0, &a, &n), STORE_OK);
	assert_int_equal(n, 0); /* nothing failed any more */

	/* A test message: to that one endpoint, already fanned out. */
	struct store_endpoint e;
	assert_int_equal(store_endpoint_get(st, ORG_A, "ep_a1", &e), STORE_OK);
	struct store_message m = {.created_at = clock_now_ms()};
	ulid_prefixed("msg", m.id, sizeof m.id);
	snprintf(m.org_id, sizeof m.org_id, "%s", ORG_A);
	snprintf(m.type, sizeof m.type, "webhook.test");
	m.body = store_message_body("webhook.test", m.created_at, NULL);
	a = audit(ORG_A, "webhook_endpoint.tested", "webhook_endpoint", "ep_a1");
	assert_int_equal(store_endpoint_test(st, &e, &m, &a), STORE_OK);
	assert_string_equal(targets_of(st, m.id), "ep_a1");
	fanout_all(st, 0);
	free(m.body);
	assert_int_equal(count_audit(st, "webhook_endpoint.tested"), 1);
	/* A deleted endpoint's deliveries are not resent. */
	assert_int_equal(store_endpoint_delete(st, ORG_A, "ep_a1", &a), STORE_OK);
	assert_int_equal(store_message_resend(st, ORG_A, m.id, NULL, &a, &n), STORE_OK);
	assert_int_equal(n, 0);
}

/* ---------- the background tier's notices ---------- */

static void test_disable_and_failing_notices(void **state)
{
	struct fixture *fx = *state;
	struct store *st = fx->st;
	make_org(st, ORG_A, "ops@a.example");
	make_endpoint(st, "ep_a1", ORG_A, NULL, NULL);
	raw_int(st,
	        "UPDATE webhook_endpoints SET failing_since = 1000 WHERE id = 'ep_a1' "
	        "RETURNING 1",
	        NULL, NULL);

	assert_int_equal(store_endpoint_mark_failing(st, "ep_a1", 90000000), STORE_OK);
	assert_int_equal(store_endpoint_mark_failing(st, "ep_a1", 90000001), STORE_ENOTFOUND);
	struct store_endpoint e;
	assert_int_equal(store_endpoint_get(st, ORG_A, "ep_a1", &e), STORE_OK);
	assert_int_equal(e.failing_notified_at, 90000000);
	assert_int_equal(store_endpoint_disable(st, "ep_a1", "gone", 90000002), STORE_OK);
	assert_int_equal(store_endpoint_disable(st, "ep_a1", "gone", 90000003), STORE_ENOTFOUND);
	assert_int_equal(store_endpoint_disable(st, "ep_zz", "gone", 90000003), STORE_ENOTFOUND);
	assert_int_equal(store_endpoint_get(st, ORG_A, "ep_a1", &e), STORE_OK);
	assert_int_equal(e.disabled_at, 90000002);
	assert_string_equal(e.disabled_reason, "gone");
	assert_int_equal(count_audit(st, "webhook_endpoint.failing"), 1);
	assert_int_equal(count_audit(st, "webhook_endpoint.disabled"), 1);

	struct db_result *r =
	    raw(st, "SELECT type, org_id, body FROM webhook_messages ORDER BY type", NULL, NULL);
	assert_int_equal(r->nrows, 2);
	assert_string_equal(db_text(r, 0, 0), "webhook_endpoint.disabled");
	assert_string_equal(db_text(r, 0, 1), ORG_A);
	json_t *body = json_loads(db_text(r, 0, 2), 0, NULL);
	json_t *data = json_object_get(body, "data");
	assert_string_equal(json_string_value(json_object_get(data, "endpoint_id")), "ep_a1");
	assert_string_equal(json_string_value(json_object_get(data, "url")),
	                    "https://hooks.example/ep_a1");
	assert_string_equal(json_string_value(json_object_get(data, "reason")), "gone");
	assert_string_equal(json_string_value(json_object_get(data, "failing_since")),
	                    "1970-01-01T00:00:01.000Z");
	assert_string_equal(json_string_value(json_object_get(data, "at")),
	                    "1970-01-02T01:00:00.002Z");
	json_decref(body);
	assert_string_equal(db_text(r, 1, 0), "webhook_endpoint.failing");
	db_result_free(r);
	/* Mailed to the contact; the disabled endpoint itself gets neither. */
	static const char *const mailed[] = {"webhook_endpoint.failing",
	                                     "webhook_endpoint.disabled", NULL};
	int n = -1;
	assert_int_equal(store_fanout(st, mailed, 10, &n), STORE_OK);
	assert_int_equal(n, 2);
	assert_int_equal(raw_int(st, "SELECT count(*) FROM webhook_deliveries WHERE target = ?",
	                         "mail:" ORG_A, NULL),
	                 2);
	assert_int_equal(raw_int(st, "SELECT count(*) FROM webhook_deliveries", NULL, NULL), 2);
}

/* ---------- listings ---------- */

struct listed {
	char ids[64][STORE_WH_ID_MAX + 1];
	int n, deliveries[64];
	char first_status[64][16];
};

static void on_message(void *ctx, const struct store_message *m,
                       const struct store_delivery_read *d, int n)
{
	struct listed *l = ctx;
	assert_null(m->body);
	assert_true(l->n < 64);
	snprintf(l->ids[l->n], sizeof l->ids[0], "%s", m->id);
	l->deliveries[l->n] = n;
	snprintf(l->first_status[l->n], sizeof l->first_status[0], "%s", n ? d[0].status : "");
	for (int i = 0; i < n; i++) {
		assert_non_null(d[i].channel);
		assert_true(strcmp(d[i].channel, "email") == 0 ? d[i].endpoint_id == NULL
		                                               : d[i].endpoint_id != NULL);
	}
	l->n++;
}

static struct listed *list_messages(struct store *st, struct store_message_filter f)
{
	static struct listed l;
	memset(&l, 0, sizeof l);
	if (f.limit == 0)
		f.limit = 50;
	assert_int_equal(store_message_list(st, &f, on_message, &l), STORE_OK);
	return &l;
}

#define FILTER(...) ((struct store_message_filter){.since = -1, .until = -1, __VA_ARGS__})

struct attempts_seen {
	int n;
	char outcome[8][16];
	int64_t status[8];
};

static void on_attempt(void *ctx, const struct store_attempt_read *a)
{
	struct attempts_seen *s = ctx;
	assert_true(strncmp(a->id, "att_", 4) == 0);
	assert_non_null(a->delivery_id);
	assert_true(a->at > 0);
	if (s->n < 8) {
		snprintf(s->outcome[s->n], sizeof s->outcome[0], "%s", a->outcome);
		s->status[s->n] = a->http_status;
	}
	s->n++;
}

static void test_listings(void **state)
{
	struct fixture *fx = *state;
	struct store *st = fx->st;
	make_org(st, ORG_A, "ops@a.example");
	make_org(st, ORG_B, NULL);
	make_endpoint(st, "ep_a1", ORG_A, NULL, NULL);
	make_endpoint(st, "ep_a2", ORG_A, NULL, "api_key.killed");
	make_endpoint(st, "ep_b1", ORG_B, NULL, NULL);
	char ids[5][STORE_WH_ID_MAX + 1];
	int64_t t0 = clock_now_ms();
	event(st, ORG_A, "invoice.paid", NULL, ids[0]);   /* ep_a1 */
	event(st, ORG_A, "api_key.killed", NULL, ids[1]); /* ep_a1 ep_a2 mail */
	event(st, NULL, "global.killed", NULL, ids[2]);   /* ep_a1 ep_b1 + mails */
	event(st, ORG_B, "invoice.paid", NULL, ids[3]);   /* ep_b1 */
	event(st, ORG_A, "invoice.paid", NULL, ids[4]);   /* not fanned out yet */
	int n = -1;
	assert_int_equal(store_fanout(st, mail_types, 4, &n), STORE_OK);
	assert_int_equal(n, 4);
	/* ids[0]'s delivery succeeds; ids[1]'s ep_a2 fails for good. */
	int64_t t = clock_now_ms() + 1;
	struct store_claim *c = claim_all(st, "w1", t, &n);
	struct store_attempt at[16];
	int k = 0;
	for (int i = 0; i < n; i++) {
		bool is0 = strcmp(c[i].message_id, ids[0]) == 0;
		bool a2 = strcmp(c[i].message_id, ids[1]) == 0 && strcmp(c[i].ep.id, "ep_a2") == 0;
		if (is0 || a2)
			at[k++] = (struct store_attempt){.delivery_id = c[i].id,
			                                 .at = t,
			                                 .http_status = is0 ? 200 : 410,
			                                 .succeeded = is0,
			                                 .error = is0 ? NULL : "status",
			                                 .next_attempt_at = -1};
	}
	assert_int_equal(k, 2);
	assert_int_equal(store_record(st, "w1", at, k), STORE_OK);
	store_claims_free(c, n);
	assert_int_equal(store_claim_release_all(st, "w1"), STORE_OK);

	/* Org A sees its own and the global ones, newest first, with its deliveries only. */
	struct listed *l = list_messages(st, FILTER(.org_id = ORG_A));
	assert_int_equal(l->n, 4);
	assert_string_equal(l->ids[0], ids[4]);
	assert_string_equal(l->ids[1], ids[2]);
	assert_string_equal(l->ids[2], ids[1]);
	assert_string_equal(l->ids[3], ids[0]);
	assert_int_equal(l->deliveries[0], 0); /* not fanned out */
	assert_int_equal(l->deliveries[1], 2); /* ep_a1 and mail:A, not B's */
	assert_int_equal(l->deliveries[2], 3);
	assert_int_equal(l->deliveries[3], 1);
	assert_string_equal(l->first_status[3], "succeeded");
	/* Root sees everything, the global message with every organisation's deliveries. */
	l = list_messages(st, FILTER(.org_id = NULL));
	assert_int_equal(l->n, 5);
	assert_string_equal(l->ids[2], ids[2]);
	assert_int_equal(l->deliveries[2], 3); /* ep_a1, ep_b1, mail:A (B has no contact) */
	/* Cursor and limit. */
	l = list_messages(st, FILTER(.org_id = ORG_A, .limit = 2));
	assert_int_equal(l->n, 2);
	char before[STORE_WH_ID_MAX + 1];
	memcpy(before, l->ids[1], sizeof before);
	l = list_messages(st, FILTER(.org_id = ORG_A, .before_id = before, .limit = 2));
	assert_int_equal(l->n, 2);
	assert_string_equal(l->ids[0], ids[1]);
	assert_string_equal(l->ids[1], ids[0]);
	/* Filters: type, endpoint, status, time. */
	l = list_messages(st, FILTER(.org_id = ORG_A, .type = "invoice.paid"));
	assert_int_equal(l->n, 2);
	l = list_messages(st, FILTER(.org_id = ORG_A, .endpoint_id = "ep_a2"));
	assert_int_equal(l->n, 1);
	assert_string_equal(l->ids[0], ids[1]);
	l = list_messages(st, FILTER(.org_id = ORG_A, .endpoint_id = "ep_b1"));
	assert_int_equal(l->n, 0); /* another organisation's endpoint */
	l = list_messages(st, FILTER(.org_id = ORG_A, .status = "failed"));
	assert_int_equal(l->n, 1);
	assert_string_equal(l->ids[0], ids[1]);
	l = list_messages(st, FILTER(.org_id = ORG_A, .status = "succeeded"));
	assert_int_equal(l->n, 1);
	assert_string_equal(l->ids[0], ids[0]);
	l = list_messages(st, FILTER(.org_id = ORG_A, .status = "pending"));
	assert_int_equal(l->n, 2); /* the global one and ids[1] (ep_a1, mail) */
	l = list_messages(st, FILTER(.org_id = ORG_A, .endpoint_id = "ep_a1", .status = "failed"));
	assert_int_equal(l->n, 0);
	l = list_messages(
	    st, ((struct store_message_filter){.org_id = ORG_A, .since = -1, .until = t0}));
	assert_int_equal(l->n, 0);
	l = list_messages(
	    st, ((struct store_message_filter){.org_id = ORG_A, .since = t0, .until = -1}));
	assert_int_equal(l->n, 4);
	l = list_messages(st, ((struct store_message_filter){
	                          .org_id = ORG_A, .since = clock_now_ms() + 1000, .until = -1}));
	assert_int_equal(l->n, 0);

	/* Attempts of a message, for its organisation only. */
	struct attempts_seen seen = {0};
	assert_int_equal(store_attempt_list(st, ORG_A, ids[1], on_attempt, &seen), STORE_OK);
	assert_int_equal(seen.n, 1);
	assert_string_equal(seen.outcome[0], "failed");
	assert_int_equal(seen.status[0], 410);
	memset(&seen, 0, sizeof seen);
	assert_int_equal(store_attempt_list(st, ORG_B, ids[1], on_attempt, &seen), STORE_ENOTFOUND);
	assert_int_equal(store_attempt_list(st, NULL, ids[0], on_attempt, &seen), STORE_OK);
	assert_int_equal(seen.n, 1);
	assert_string_equal(seen.outcome[0], "succeeded");
}

/* ---------- retention and gauges ---------- */

static void test_purge_and_stats(void **state)
{
	struct fixture *fx = *state;
	struct store *st = fx->st;
	make_org(st, ORG_A, NULL);
	make_endpoint(st, "ep_a1", ORG_A, NULL, NULL);
	make_endpoint(st, "ep_a2", ORG_A, NULL, "invoice.paid");
	char done_id[STORE_WH_ID_MAX + 1], open_id[STORE_WH_ID_MAX + 1],
	    new_id[STORE_WH_ID_MAX + 1];
	event(st, ORG_A, "invoice.paid", NULL, done_id);   /* both: succeeded */
	event(st, ORG_A, "api_key.killed", NULL, open_id); /* ep_a1: pending */
	fanout_all(st, 2);
	int64_t t = clock_now_ms() + 1, n = -1;
	int nc = 0;
	struct store_claim *c = claim_all(st, "w1", t, &nc);
	struct store_attempt at[3];
	int k = 0;
	for (int i = 0; i < nc; i++)
		if (strcmp(c[i].message_id, done_id) == 0)
			at[k++] = (struct store_attempt){.delivery_id = c[i].id,
			                                 .at = t,
			                                 .http_status = 200,
			                                 .succeeded = true,
			                                 .next_attempt_at = -1};
	assert_int_equal(k, 2);
	assert_int_equal(store_record(st, "w1", at, k), STORE_OK);
	store_claims_free(c, nc);
	assert_int_equal(store_claim_release_all(st, "w1"), STORE_OK);

	int64_t pending = -1, oldest = -1;
	assert_int_equal(store_outbox_stats(st, &pending, &oldest), STORE_OK);
	assert_int_equal(pending, 1);
	assert_true(oldest > 0 && oldest <= t);

	/* Later rows stay: a cutoff before everything deletes nothing. */
	int64_t deleted = -1;
	assert_int_equal(store_webhooks_purge(st, t - 600000, &deleted), STORE_OK);
	assert_int_equal(deleted, 0);
	/* A message never fanned out (the worker was down) is past retention too. */
	char stale_id[STORE_WH_ID_MAX + 1];
	event(st, ORG_A, "invoice.paid", NULL, stale_id);
	/*
	 * Past the cutoff everything goes, whatever its status: attempts, finished
	 * deliveries, a disabled endpoint's parked one (open_id's to ep_a1, which
	 * stays disabled), and the messages with their payloads, fanned out or not.
	 */
	struct timespec ms = {0, 3 * 1000000L};
	nanosleep(&ms, NULL);
	int64_t cutoff = clock_now_ms();
	nanosleep(&ms, NULL);
	assert_int_equal(store_endpoint_disable(st, "ep_a1", "gone", cutoff + 1), STORE_OK);
	event(st, ORG_A, "invoice.paid", NULL, new_id);
	assert_int_equal(store_webhooks_purge(st, cutoff, &deleted), STORE_OK);
	assert_int_equal(deleted, 2 + 3 + 3); /* 2 attempts, 3 deliveries, 3 messages */
	struct store_message m;
	assert_int_equal(store_message_get(st, ORG_A, done_id, &m), STORE_ENOTFOUND);
	assert_int_equal(store_message_get(st, ORG_A, open_id, &m), STORE_ENOTFOUND);
	assert_int_equal(store_message_get(st, ORG_A, stale_id, &m), STORE_ENOTFOUND);
	assert_int_equal(raw_int(st, "SELECT count(*) FROM webhook_deliveries", NULL, NULL), 0);
	assert_int_equal(raw_int(st, "SELECT count(*) FROM webhook_attempts", NULL, NULL), 0);
	/* Newer ones stay: new_id and the disabled notice, fanned out after. */
	assert_int_equal(store_message_get(st, ORG_A, new_id, &m), STORE_OK);
	assert_non_null(m.body);
	store_message_free(&m);
	fanout_all(st, 2);
	assert_int_equal(raw_int(st, "SELECT count(*) FROM webhook_deliveries", NULL, NULL), 1);
	assert_int_equal(store_outbox_stats(st, &pending, &n), STORE_OK);
	assert_int_equal(pending, 1);
	assert_int_equal(store_webhooks_purge(st, cutoff, NULL), STORE_OK);
}

#define TESTS(setup)                                                                               \
	cmocka_unit_test_setup_teardown(test_endpoint_crud_and_isolation, setup, teardown),        \
	    cmocka_unit_test_setup_teardown(test_update_writes_only_named_fields, setup,           \
	                                    teardown),                                             \
	    cmocka_unit_test_setup_teardown(test_message_body_bytes, setup, teardown),             \
	    cmocka_unit_test_setup_teardown(test_event_commits_with_its_change, setup, teardown),  \
	    cmocka_unit_test_setup_teardown(test_publish_idempotency, setup, teardown),            \
	    cmocka_unit_test_setup_teardown(test_fanout_matching, setup, teardown),                \
	    cmocka_unit_test_setup_teardown(test_claims, setup, teardown),                         \
	    cmocka_unit_test_setup_teardown(test_concurrent_claims_never_share, setup, teardown),  \
	    cmocka_unit_test_setup_teardown(test_record, setup, teardown),                         \
	    cmocka_unit_test_setup_teardown(test_record_batch, setup, teardown),                   \
	    cmocka_unit_test_setup_teardown(test_resend_recover_and_test, setup, teardown),        \
	    cmocka_unit_test_setup_teardown(test_disable_and_failing_notices, setup, teardown),    \
	    cmocka_unit_test_setup_teardown(test_listings, setup, teardown),                       \
	    cmocka_unit_test_setup_teardown(test_purge_and_stats, setup, teardown)

int main(void)
{
	const struct CMUnitTest sqlite_tests[] = {TESTS(setup_sqlite)};
	const struct CMUnitTest postgres_tests[] = {TESTS(setup_postgres)};
	return fixture_main("store_webhooks", sqlite_tests, postgres_tests,
	                    sizeof sqlite_tests / sizeof sqlite_tests[0]);
}
