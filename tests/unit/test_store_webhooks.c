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

struct fixture {
	const struct db_driver *driver;
	char url[4096];
	char dir[256];
	char path[300];
	struct store *st;
};

/* ---------- per-backend reset (as test_store.c) ---------- */

static void remove_sqlite_files(const struct fixture *fx)
{
	static const char *const suffix[] = {"", "-wal", "-shm"};
	char p[sizeof fx->path + 8];
	for (size_t i = 0; i < sizeof suffix / sizeof suffix[0]; i++) {
		snprintf(p, sizeof p, "%s%s", fx->path, suffix[i]);
		unlink(p);
	}
}

static void reset(struct fixture *fx)
{
	if (fx->driver == &db_sqlite_driver) {
		remove_sqlite_files(fx);
		return;
	}
	struct db_conn *c = NULL;
	struct db_result *r = NULL;
	char err[512];
	if (fx->driver->connect(fx->url, false, NULL, &c, err, sizeof err) != DB_OK)
		fail_msg("raw connect: %s", err);
	assert_int_equal(fx->driver->query(c, "SELECT current_database()", NULL, 0, &r), DB_OK);
	const char *db = db_text(r, 0, 0);
	if (!db || !strstr(db, "test"))
		fail_msg("refusing to drop the schema of database %s", db ? db : "?");
	db_result_free(r);
	assert_int_equal(fx->driver->exec_script(
	                     c, "DROP SCHEMA IF EXISTS public CASCADE; CREATE SCHEMA public"),
	                 DB_OK);
	fx->driver->disconnect(c);
}

static struct store *open_store(const struct fixture *fx, int pool)
{
	struct store *st = NULL;
	char err[512];
	if (store_open(fx->url, pool, &st, err, sizeof err) != STORE_OK)
		fail_msg("store_open %s: %s", fx->driver->dialect, err);
	return st;
}

static int setup_common(void **state, struct fixture *fx)
{
	reset(fx);
	fx->st = open_store(fx, 4);
	assert_int_equal(store_migrate(fx->st, NULL), STORE_OK);
	*state = fx;
	return 0;
}

static int setup_sqlite(void **state)
{
	struct fixture *fx = calloc(1, sizeof *fx);
	assert_non_null(fx);
	fx->driver = &db_sqlite_driver;
	const char *tmp = getenv("TMPDIR");
	snprintf(fx->dir, sizeof fx->dir, "%s/pcl-whstore-XXXXXX", tmp && *tmp ? tmp : "/tmp");
	assert_non_null(mkdtemp(fx->dir));
	snprintf(fx->path, sizeof fx->path, "%s/store.db", fx->dir);
	snprintf(fx->url, sizeof fx->url, "sqlite://%s", fx->path);
	return setup_common(state, fx);
}

static int setup_postgres(void **state)
{
	struct fixture *fx = calloc(1, sizeof *fx);
	assert_non_null(fx);
	fx->driver = &db_postgres_driver;
	snprintf(fx->url, sizeof fx->url, "%s", getenv("PORTCULLIS_TEST_PG_URL"));
	return setup_common(state, fx);
}

static int teardown(void **state)
{
	struct fixture *fx = *state;
	store_close(fx->st);
	if (fx->driver == &db_sqlite_driver) {
		remove_sqlite_files(fx);
		rmdir(fx->dir);
	}
	free(fx);
	return 0;
}

static __attribute__((unused)) bool is_pg(const struct fixture *fx)
{
	return fx->driver == &db_postgres_driver;
}

/* ---------- raw SQL on a pooled connection ---------- */

struct raw {
	const char *sql; /* a string literal (the SQLite driver caches by address) */
	const struct db_param *p;
	int n;
	struct db_result *r;
};

static int raw_fn(struct db_conn *c, void *arg)
{
	struct raw *q = arg;
	return c->driver->query(c, q->sql, q->p, q->n, &q->r) == DB_OK ? STORE_OK : STORE_ERROR;
}

/* Run sql with up to two text parameters (NULL: fewer); the result (free it). */
static struct db_result *raw(struct store *st, const char *sql, const char *a, const char *b)
{
	struct db_param p[] = {P_TEXT(a), P_TEXT(b)};
	struct raw q = {sql, p, b ? 2 : a ? 1 : 0, NULL};
	assert_int_equal(store_with_conn(st, raw_fn, &q), STORE_OK);
	return q.r;
}

/* The first cell of sql's result as an integer (-1 for NULL or no row). */
static int64_t raw_int(struct store *st, const char *sql, const char *a, const char *b)
{
	struct db_result *r = raw(st, sql, a, b);
	int64_t v = r->nrows > 0 && db_text(r, 0, 0) ? db_int(r, 0, 0) : -1;
	db_result_free(r);
	return v;
}

/* ---------- fixtures ---------- */

static struct audit_input audit(const char *org_id, const char *action, const char *target_type,
                                const char *target_id)
{
	return (struct audit_input){.org_id = org_id,
	                            .actor_type = "root",
	                            .action = action,
	                            .target_type = target_type,
	                            .target_id = target_id};
}

static void make_org(struct store *st, const char *id, const char *email)
{
	struct store_org o = {.rl_requests = -1, .rl_per_seconds = -1, .rl_burst = -1};
	snprintf(o.id, sizeof o.id, "%s", id);
	snprintf(o.name, sizeof o.name, "org %s", id);
	snprintf(o.contact_email, sizeof o.contact_email, "%s", email ? email : "");
	o.created_at = o.updated_at = clock_now_ms();
	struct audit_input a = audit(id, "org.created", "org", id);
	assert_int_equal(store_org_insert(st, &o, &a), STORE_OK);
}

static void make_project(struct store *st, const char *org_id, const char *id)
{
	struct store_project p = {.created_at = clock_now_ms()};
	snprintf(p.id, sizeof p.id, "%s", id);
	snprintf(p.org_id, sizeof p.org_id, "%s", org_id);
	snprintf(p.name, sizeof p.name, "project %s", id);
	struct audit_input a = audit(org_id, "project.created", "project", id);
	assert_int_equal(store_project_insert(st, &p, &a), STORE_OK);
}

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

	assert_int_equal(
	    publish(st, ORG_A, "invoice.paid", PROJ_A, "key-1", hash1, first, NULL, NULL),
	    STORE_OK);
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

#define TESTS(setup)                                                                               \
	cmocka_unit_test_setup_teardown(test_endpoint_crud_and_isolation, setup, teardown),        \
	    cmocka_unit_test_setup_teardown(test_message_body_bytes, setup, teardown),             \
	    cmocka_unit_test_setup_teardown(test_event_commits_with_its_change, setup, teardown),  \
	    cmocka_unit_test_setup_teardown(test_publish_idempotency, setup, teardown)

int main(void)
{
	const struct CMUnitTest sqlite_tests[] = {TESTS(setup_sqlite)};
	const struct CMUnitTest postgres_tests[] = {TESTS(setup_postgres)};
	const char *pg = getenv("PORTCULLIS_TEST_PG_URL");
	const char *level = getenv("PORTCULLIS_TEST_LOG_LEVEL");
	int lv = level ? log_level_parse(level) : -1;
	log_setup(lv >= 0 ? (enum log_level)lv : LOG_ERROR, false);
	int failed = cmocka_run_group_tests_name("store_webhooks/sqlite", sqlite_tests, NULL, NULL);
	if (pg && *pg)
		failed += cmocka_run_group_tests_name("store_webhooks/postgres", postgres_tests,
		                                      NULL, NULL);
	else
		printf("store_webhooks/postgres: skipped (set PORTCULLIS_TEST_PG_URL, see "
		       "scripts/test-servers.sh)\n");
	return failed;
}
