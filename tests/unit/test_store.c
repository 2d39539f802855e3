/*
 * test_store.c: the store API (src/store/store.h) against every backend.
 *
 * The same test functions run once per backend, parametrised by the setup
 * function: SQLite (a temp file) always, PostgreSQL too when
 * PORTCULLIS_TEST_PG_URL is set (scripts/test-servers.sh starts one). Each
 * test gets an empty, freshly migrated database: a new file for SQLite, a
 * dropped and recreated public schema for PostgreSQL. Raw SQL (resetting,
 * tampering with the audit chain) goes through the db.h driver directly.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <jansson.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "api/api.h"
#include "core/clock.h"
#include "core/log.h"
#include "core/ulid.h"
#include "store/db.h"
#include "store/migrations.h"
#include "store/store.h"

#define ORG_A  "ORGA0000000000000000000001"
#define ORG_B  "ORGB0000000000000000000002"
#define PROJ_A "PRJA0000000000000000000001"
#define PROJ_B "PRJB0000000000000000000002"
#define KEY_1  "KEY00000000000000000000001"
#define KEY_2  "KEY00000000000000000000002"
#define KEY_3  "KEY00000000000000000000003"
#define KEY_R  "KEY0000000000000000000000R"
#define HASH_1 "$2b$12$aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
#define HASH_2 "$2b$12$bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
#define HASH_3 "$2b$12$ccccccccccccccccccccccccccccccccccccccccccccccccccccc"

struct fixture {
	const struct db_driver *driver;
	char url[4096];
	char dir[256];  /* SQLite: the temp dir */
	char path[300]; /* SQLite: the database file */
	struct store *st;
	int applied; /* by the setup's migration */
};

/* ---------- raw SQL and per-backend reset ---------- */

static void raw_exec(const struct fixture *fx, const char *sql)
{
	struct db_conn *c = NULL;
	char err[512];
	if (fx->driver->connect(fx->url, false, NULL, &c, err, sizeof err) != DB_OK)
		fail_msg("raw connect: %s", err);
	assert_int_equal(fx->driver->exec_script(c, sql), DB_OK);
	fx->driver->disconnect(c);
}

/*
 * PostgreSQL: end every other session of the test database (as a server
 * restart would) and wait until they are gone.
 */
static void terminate_others(const struct fixture *fx)
{
	struct db_conn *c = NULL;
	char err[512];
	if (fx->driver->connect(fx->url, false, NULL, &c, err, sizeof err) != DB_OK)
		fail_msg("raw connect: %s", err);
	assert_int_equal(fx->driver->exec_script(
	                     c, "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE "
	                        "datname = current_database() AND pid <> pg_backend_pid()"),
	                 DB_OK);
	int64_t left = -1;
	for (int i = 0; i < 500 && left != 0; i++) {
		struct db_result *r = NULL;
		assert_int_equal(fx->driver->query(c,
		                                   "SELECT count(*) FROM pg_stat_activity WHERE "
		                                   "datname = current_database() AND "
		                                   "pid <> pg_backend_pid()",
		                                   NULL, 0, &r),
		                 DB_OK);
		left = db_int(r, 0, 0);
		db_result_free(r);
		if (left) {
			struct timespec ts = {0, 10 * 1000000L};
			nanosleep(&ts, NULL);
		}
	}
	assert_int_equal(left, 0);
	fx->driver->disconnect(c);
}

static void remove_sqlite_files(const struct fixture *fx)
{
	static const char *const suffix[] = {"", "-wal", "-shm", ".away"};
	char p[sizeof fx->path + 8];
	for (size_t i = 0; i < sizeof suffix / sizeof suffix[0]; i++) {
		snprintf(p, sizeof p, "%s%s", fx->path, suffix[i]);
		unlink(p);
	}
}

/*
 * Make the backend empty (no tables). PostgreSQL: only a database whose
 * name says it is for tests is wiped, in case the URL points elsewhere.
 */
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
		fail_msg("refusing to drop the schema of database %s (its name lacks \"test\")",
		         db ? db : "?");
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
	fx->st = open_store(fx, 2);
	assert_int_equal(store_migrate(fx->st, &fx->applied), STORE_OK);
	*state = fx;
	return 0;
}

static int setup_sqlite(void **state)
{
	struct fixture *fx = calloc(1, sizeof *fx);
	assert_non_null(fx);
	fx->driver = &db_sqlite_driver;
	const char *tmp = getenv("TMPDIR");
	snprintf(fx->dir, sizeof fx->dir, "%s/pcl-store-XXXXXX", tmp && *tmp ? tmp : "/tmp");
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

static bool is_pg(const struct fixture *fx)
{
	return fx->driver == &db_postgres_driver;
}

/* ---------- helpers ---------- */

static struct audit_input audit(const char *org_id, const char *action, const char *target_type,
                                const char *target_id)
{
	return (struct audit_input){.org_id = org_id,
	                            .actor_type = "root",
	                            .action = action,
	                            .target_type = target_type,
	                            .target_id = target_id};
}

static void sleep_ms(long ms)
{
	struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
	nanosleep(&ts, NULL);
}

static void make_org(struct store *st, const char *id, const char *name)
{
	struct store_org o = {.rl_requests = -1, .rl_per_seconds = -1, .rl_burst = -1};
	snprintf(o.id, sizeof o.id, "%s", id);
	snprintf(o.name, sizeof o.name, "%s", name);
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

static void make_key(struct store *st, const char *id, const char *org_id, const char *project_id,
                     const char *hash)
{
	struct store_key k = {.prev_expires_at = -1,
	                      .last_used_at = -1,
	                      .expires_at = -1,
	                      .revoked_at = -1,
	                      .version = 1};
	snprintf(k.id, sizeof k.id, "%s", id);
	snprintf(k.org_id, sizeof k.org_id, "%s", org_id ? org_id : "");
	snprintf(k.project_id, sizeof k.project_id, "%s", project_id ? project_id : "");
	snprintf(k.name, sizeof k.name, "key %s", id);
	snprintf(k.env, sizeof k.env, "%s", org_id ? "live" : "root");
	snprintf(k.scopes, sizeof k.scopes, "keys:read keys:write");
	snprintf(k.secret_hash, sizeof k.secret_hash, "%s", hash);
	snprintf(k.start, sizeof k.start, "pcl_live_%.4s", id + 22);
	k.created_at = clock_now_ms();
	struct audit_input a = audit(org_id, "api_key.created", "api_key", id);
	assert_int_equal(store_key_insert(st, &k, &a), STORE_OK);
}

static int64_t state_version(struct store *st)
{
	int64_t v = -1;
	assert_int_equal(store_state_version(st, &v), STORE_OK);
	return v;
}

/* The audit events matching f (a JSON array the caller frees). */
static json_t *audit_list(struct store *st, const char *org_id, const char *key_id, int64_t since,
                          int64_t until, int64_t after_seq, int limit)
{
	struct audit_filter f = {.org_id = org_id,
	                         .since = since,
	                         .until = until,
	                         .key_id = key_id,
	                         .after_seq = after_seq,
	                         .limit = limit};
	json_t *arr = json_array();
	assert_int_equal(store_audit_list(st, &f, api_audit_event_add, arr), STORE_OK);
	return arr;
}

static const char *ev_str(json_t *arr, size_t i, const char *field)
{
	return json_string_value(json_object_get(json_array_get(arr, i), field));
}

static int64_t ev_seq(json_t *arr, size_t i)
{
	return (int64_t)json_integer_value(json_object_get(json_array_get(arr, i), "seq"));
}

/* ---------- migrations ---------- */

static size_t migrations_for(const char *dialect)
{
	size_t n = 0;
	for (size_t i = 0; i < n_migrations; i++)
		if (!migrations[i].dialect || strcmp(migrations[i].dialect, dialect) == 0)
			n++;
	return n;
}

static void test_migrate_twice(void **state)
{
	struct fixture *fx = *state;
	int applied = -1;

	assert_true(fx->applied > 0);
	assert_int_equal((size_t)fx->applied, migrations_for(fx->driver->dialect));
	assert_int_equal(store_migrate(fx->st, &applied), STORE_OK);
	assert_int_equal(applied, 0);
	/* A second store (another node) finds nothing to do either. */
	struct store *other = open_store(fx, 1);
	assert_int_equal(store_migrate(other, &applied), STORE_OK);
	assert_int_equal(applied, 0);
	store_close(other);
}

struct migrate_job {
	struct store *st;
	pthread_barrier_t *go;
	int rc, applied;
};

static void *migrate_thread(void *arg)
{
	struct migrate_job *j = arg;
	pthread_barrier_wait(j->go);
	j->rc = store_migrate(j->st, &j->applied);
	return NULL;
}

/*
 * Two nodes starting at once on an empty database: each migration runs
 * once and neither fails. A few rounds, released together by a barrier, so
 * that without the migration lock the race shows.
 */
static void test_migrate_concurrent(void **state)
{
	struct fixture *fx = *state;
	pthread_barrier_t go;

	store_close(fx->st);
	fx->st = NULL; /* teardown must not close it again if an assert fails */
	assert_int_equal(pthread_barrier_init(&go, NULL, 2), 0);
	for (int round = 0; round < 5; round++) {
		reset(fx);
		struct migrate_job jobs[2] = {{open_store(fx, 1), &go, -1, -1},
		                              {open_store(fx, 1), &go, -1, -1}};
		pthread_t th[2];
		for (int i = 0; i < 2; i++)
			assert_int_equal(pthread_create(&th[i], NULL, migrate_thread, &jobs[i]), 0);
		for (int i = 0; i < 2; i++)
			pthread_join(th[i], NULL);
		for (int i = 0; i < 2; i++) {
			assert_int_equal(jobs[i].rc, STORE_OK);
			store_close(jobs[i].st);
		}
		assert_int_equal((size_t)(jobs[0].applied + jobs[1].applied),
		                 migrations_for(fx->driver->dialect));
	}
	pthread_barrier_destroy(&go);
	fx->st = open_store(fx, 2);
	assert_int_equal(state_version(fx->st), 0);
}

/* ---------- organisations and projects ---------- */

static void test_orgs(void **state)
{
	struct fixture *fx = *state;
	struct store_org o, got;

	make_org(fx->st, ORG_B, "Beta");
	make_org(fx->st, ORG_A, "Acme");
	assert_int_equal(store_org_get(fx->st, ORG_A, &got), STORE_OK);
	assert_string_equal(got.id, ORG_A);
	assert_string_equal(got.name, "Acme");
	assert_string_equal(got.contact_email, "");
	assert_int_equal(got.rl_requests, -1);
	assert_int_equal(got.rl_per_seconds, -1);
	assert_int_equal(got.rl_burst, -1);
	assert_true(got.created_at > 0);

	assert_int_equal(store_org_get(fx->st, "ORGX0000000000000000000000", &got),
	                 STORE_ENOTFOUND);

	/* A duplicate id is a conflict and writes nothing (not even audit). */
	int64_t v = state_version(fx->st);
	o = got;
	struct audit_input a = audit(ORG_A, "org.created", "org", ORG_A);
	assert_int_equal(store_org_insert(fx->st, &o, &a), STORE_ECONFLICT);
	assert_int_equal(state_version(fx->st), v);

	/* List: ordered by id, with a cursor and a limit. */
	struct store_org *list = NULL;
	int n = -1;
	assert_int_equal(store_org_list(fx->st, NULL, 10, &list, &n), STORE_OK);
	assert_int_equal(n, 2);
	assert_string_equal(list[0].id, ORG_A);
	assert_string_equal(list[1].id, ORG_B);
	free(list);
	assert_int_equal(store_org_list(fx->st, NULL, 1, &list, &n), STORE_OK);
	assert_int_equal(n, 1);
	assert_string_equal(list[0].id, ORG_A);
	free(list);
	assert_int_equal(store_org_list(fx->st, ORG_A, 10, &list, &n), STORE_OK);
	assert_int_equal(n, 1);
	assert_string_equal(list[0].id, ORG_B);
	free(list);
	assert_int_equal(store_org_list(fx->st, ORG_B, 10, &list, &n), STORE_OK);
	assert_int_equal(n, 0);
	free(list);

	/* Update every field, then clear them back to defaults. */
	snprintf(o.name, sizeof o.name, "Acme Ltd");
	snprintf(o.contact_email, sizeof o.contact_email, "ops@acme.example");
	o.rl_requests = 100;
	o.rl_per_seconds = 60;
	o.rl_burst = 20;
	o.updated_at = got.updated_at + 1000;
	a = audit(ORG_A, "org.updated", "org", ORG_A);
	assert_int_equal(store_org_update(fx->st, &o, &a), STORE_OK);
	assert_int_equal(store_org_get(fx->st, ORG_A, &got), STORE_OK);
	assert_string_equal(got.name, "Acme Ltd");
	assert_string_equal(got.contact_email, "ops@acme.example");
	assert_int_equal(got.rl_requests, 100);
	assert_int_equal(got.rl_per_seconds, 60);
	assert_int_equal(got.rl_burst, 20);
	assert_int_equal(got.updated_at, o.updated_at);
	assert_int_equal(got.created_at, o.created_at);

	o.contact_email[0] = '\0';
	o.rl_requests = o.rl_per_seconds = o.rl_burst = -1;
	assert_int_equal(store_org_update(fx->st, &o, &a), STORE_OK);
	assert_int_equal(store_org_get(fx->st, ORG_A, &got), STORE_OK);
	assert_string_equal(got.contact_email, "");
	assert_int_equal(got.rl_requests, -1);

	snprintf(o.id, sizeof o.id, "ORGX0000000000000000000000");
	assert_int_equal(store_org_update(fx->st, &o, &a), STORE_ENOTFOUND);
}

static void test_projects(void **state)
{
	struct fixture *fx = *state;
	struct store_project got;

	make_org(fx->st, ORG_A, "Acme");
	make_org(fx->st, ORG_B, "Beta");
	make_project(fx->st, ORG_A, PROJ_B);
	make_project(fx->st, ORG_A, PROJ_A);
	assert_int_equal(store_project_get(fx->st, ORG_A, PROJ_A, &got), STORE_OK);
	assert_string_equal(got.id, PROJ_A);
	assert_string_equal(got.org_id, ORG_A);
	assert_string_equal(got.name, "project " PROJ_A);
	/* Scoped to the organisation: another org's project does not exist. */
	assert_int_equal(store_project_get(fx->st, ORG_B, PROJ_A, &got), STORE_ENOTFOUND);
	assert_int_equal(store_project_get(fx->st, ORG_A, "PRJX0000000000000000000000", &got),
	                 STORE_ENOTFOUND);

	struct store_project *list = NULL;
	int n = -1;
	assert_int_equal(store_project_list(fx->st, ORG_A, NULL, 10, &list, &n), STORE_OK);
	assert_int_equal(n, 2);
	assert_string_equal(list[0].id, PROJ_A);
	assert_string_equal(list[1].id, PROJ_B);
	free(list);
	assert_int_equal(store_project_list(fx->st, ORG_A, PROJ_A, 10, &list, &n), STORE_OK);
	assert_int_equal(n, 1);
	free(list);
	assert_int_equal(store_project_list(fx->st, ORG_B, NULL, 10, &list, &n), STORE_OK);
	assert_int_equal(n, 0);
	free(list);

	/* A project of a missing organisation violates the foreign key. */
	struct store_project p = {.id = "PRJC0000000000000000000003",
	                          .org_id = "ORGX0000000000000000000000",
	                          .name = "orphan",
	                          .created_at = 1};
	struct audit_input a = audit(NULL, "project.created", "project", p.id);
	assert_int_equal(store_project_insert(fx->st, &p, &a), STORE_ECONFLICT);
}

/* ---------- API keys ---------- */

static void key_ids(struct store *st, const char *org_id, const char *project_id, const char *after,
                    int limit, const char *expect)
{
	struct store_key *list = NULL;
	int n = -1;
	char got[256] = "";
	assert_int_equal(store_key_list(st, org_id, project_id, after, limit, &list, &n), STORE_OK);
	for (int i = 0; i < n; i++) {
		size_t len = strlen(got);
		snprintf(got + len, sizeof got - len, "%s%s", i ? " " : "", list[i].id);
	}
	free(list);
	assert_string_equal(got, expect);
}

static void test_keys(void **state)
{
	struct fixture *fx = *state;
	struct store_key k;

	make_org(fx->st, ORG_A, "Acme");
	make_org(fx->st, ORG_B, "Beta");
	make_project(fx->st, ORG_A, PROJ_A);
	make_key(fx->st, KEY_1, ORG_A, NULL, HASH_1);
	make_key(fx->st, KEY_2, ORG_A, PROJ_A, HASH_2);
	make_key(fx->st, KEY_3, ORG_B, NULL, HASH_3);
	make_key(fx->st, KEY_R, NULL, NULL, HASH_3);

	assert_int_equal(store_key_get(fx->st, KEY_2, &k), STORE_OK);
	assert_string_equal(k.id, KEY_2);
	assert_string_equal(k.org_id, ORG_A);
	assert_string_equal(k.project_id, PROJ_A);
	assert_string_equal(k.env, "live");
	assert_string_equal(k.scopes, "keys:read keys:write");
	assert_string_equal(k.secret_hash, HASH_2);
	assert_string_equal(k.prev_secret_hash, "");
	assert_int_equal(k.prev_expires_at, -1);
	assert_int_equal(k.last_used_at, -1);
	assert_int_equal(k.expires_at, -1);
	assert_int_equal(k.revoked_at, -1);
	assert_int_equal(k.version, 1);
	assert_int_equal(store_key_get(fx->st, KEY_R, &k), STORE_OK);
	assert_string_equal(k.org_id, "");
	assert_string_equal(k.env, "root");
	assert_int_equal(store_key_get(fx->st, "KEYX0000000000000000000000", &k), STORE_ENOTFOUND);

	/* Filters: every org's (no root keys), one org, one project, root only. */
	key_ids(fx->st, NULL, NULL, NULL, 10, KEY_1 " " KEY_2 " " KEY_3);
	key_ids(fx->st, ORG_A, NULL, NULL, 10, KEY_1 " " KEY_2);
	key_ids(fx->st, ORG_B, NULL, NULL, 10, KEY_3);
	key_ids(fx->st, ORG_A, PROJ_A, NULL, 10, KEY_2);
	key_ids(fx->st, ORG_B, PROJ_A, NULL, 10, "");
	key_ids(fx->st, "", NULL, NULL, 10, KEY_R);
	key_ids(fx->st, ORG_A, NULL, KEY_1, 10, KEY_2);
	key_ids(fx->st, NULL, NULL, NULL, 2, KEY_1 " " KEY_2);

	/* A duplicate id and a key of a missing org are conflicts. */
	struct audit_input a = audit(ORG_A, "api_key.created", "api_key", KEY_1);
	assert_int_equal(store_key_get(fx->st, KEY_1, &k), STORE_OK);
	assert_int_equal(store_key_insert(fx->st, &k, &a), STORE_ECONFLICT);
	snprintf(k.id, sizeof k.id, "KEY00000000000000000000009");
	snprintf(k.org_id, sizeof k.org_id, "ORGX0000000000000000000000");
	assert_int_equal(store_key_insert(fx->st, &k, &a), STORE_ECONFLICT);

	/* Rotation with a grace period keeps the old hash until then. */
	int64_t version = -1, grace_until = clock_now_ms() + 3600 * 1000;
	a = audit(ORG_A, "api_key.rotated", "api_key", KEY_1);
	assert_int_equal(
	    store_key_rotate(fx->st, KEY_1, HASH_2, "pcl_live_abcd", grace_until, &a, &version),
	    STORE_OK);
	assert_int_equal(version, 2);
	assert_int_equal(store_key_get(fx->st, KEY_1, &k), STORE_OK);
	assert_string_equal(k.secret_hash, HASH_2);
	assert_string_equal(k.prev_secret_hash, HASH_1);
	assert_int_equal(k.prev_expires_at, grace_until);
	assert_string_equal(k.start, "pcl_live_abcd");
	assert_int_equal(k.version, 2);

	/* Without a grace period the old hash is dropped at once. */
	assert_int_equal(store_key_rotate(fx->st, KEY_1, HASH_3, "pcl_live_efgh", 0, &a, &version),
	                 STORE_OK);
	assert_int_equal(version, 3);
	assert_int_equal(store_key_get(fx->st, KEY_1, &k), STORE_OK);
	assert_string_equal(k.secret_hash, HASH_3);
	assert_string_equal(k.prev_secret_hash, "");
	assert_int_equal(k.prev_expires_at, -1);
	assert_int_equal(
	    store_key_rotate(fx->st, "KEYX0000000000000000000000", HASH_1, "x", 0, &a, NULL),
	    STORE_ENOTFOUND);

	/* Touch only moves last_used_at forward. */
	const char *ids[] = {KEY_1, KEY_2};
	const int64_t at[] = {5000, 7000};
	assert_int_equal(store_key_touch(fx->st, ids, at, 2), STORE_OK);
	const int64_t earlier[] = {4000, 9000};
	assert_int_equal(store_key_touch(fx->st, ids, earlier, 2), STORE_OK);
	assert_int_equal(store_key_get(fx->st, KEY_1, &k), STORE_OK);
	assert_int_equal(k.last_used_at, 5000);
	assert_int_equal(store_key_get(fx->st, KEY_2, &k), STORE_OK);
	assert_int_equal(k.last_used_at, 9000);

	/* Revoke is idempotent: the first time stays. */
	a = audit(ORG_A, "api_key.revoked", "api_key", KEY_2);
	assert_int_equal(store_key_revoke(fx->st, KEY_2, 11111, &a), STORE_OK);
	assert_int_equal(store_key_revoke(fx->st, KEY_2, 22222, &a), STORE_OK);
	assert_int_equal(store_key_get(fx->st, KEY_2, &k), STORE_OK);
	assert_int_equal(k.revoked_at, 11111);
	assert_true(k.version >= 2);
	assert_int_equal(store_key_revoke(fx->st, "KEYX0000000000000000000000", 1, &a),
	                 STORE_ENOTFOUND);
	/* A revoked key cannot be rotated. */
	assert_int_equal(store_key_rotate(fx->st, KEY_2, HASH_1, "x", 0, &a, NULL),
	                 STORE_ENOTFOUND);
}

/* ---------- kill switches ---------- */

static void test_kill_switches(void **state)
{
	struct fixture *fx = *state;
	struct store_kill k = {.scope = "organization",
	                       .target_id = ORG_A,
	                       .set_by = "root",
	                       .reason = "incident 42",
	                       .engaged_at = 1000};
	struct store_kill got, *list = NULL;
	struct store_key key;
	int n = -1;

	make_org(fx->st, ORG_A, "Acme");
	make_key(fx->st, KEY_1, ORG_A, NULL, HASH_1);
	struct audit_input a = audit(ORG_A, "org.killed", "org", ORG_A);
	assert_int_equal(store_kill_get(fx->st, "organization", ORG_A, &got), STORE_ENOTFOUND);
	assert_int_equal(store_kill_engage(fx->st, &k, &a), STORE_OK);
	assert_int_equal(store_kill_get(fx->st, "organization", ORG_A, &got), STORE_OK);
	assert_string_equal(got.scope, "organization");
	assert_string_equal(got.target_id, ORG_A);
	assert_string_equal(got.set_by, "root");
	assert_string_equal(got.actor_id, "");
	assert_string_equal(got.reason, "incident 42");
	assert_int_equal(got.engaged_at, 1000);

	/* Re-engaging replaces who and why. */
	snprintf(k.set_by, sizeof k.set_by, "org");
	snprintf(k.actor_id, sizeof k.actor_id, "%s", KEY_1);
	snprintf(k.reason, sizeof k.reason, "leaked key");
	k.engaged_at = 2000;
	assert_int_equal(store_kill_engage(fx->st, &k, &a), STORE_OK);
	assert_int_equal(store_kill_get(fx->st, "organization", ORG_A, &got), STORE_OK);
	assert_string_equal(got.set_by, "org");
	assert_string_equal(got.actor_id, KEY_1);
	assert_string_equal(got.reason, "leaked key");
	assert_int_equal(got.engaged_at, 2000);

	/* A key switch bumps the key's version; a global one has target "". */
	struct store_kill kk = {
	    .scope = "key", .target_id = KEY_1, .set_by = "root", .engaged_at = 3000};
	struct store_kill kg = {.scope = "global", .set_by = "root", .engaged_at = 4000};
	assert_int_equal(store_kill_engage(fx->st, &kk, &a), STORE_OK);
	assert_int_equal(store_kill_engage(fx->st, &kg, &a), STORE_OK);
	assert_int_equal(store_key_get(fx->st, KEY_1, &key), STORE_OK);
	assert_int_equal(key.version, 2);
	assert_int_equal(store_kill_get(fx->st, "global", "", &got), STORE_OK);
	assert_string_equal(got.reason, "");

	assert_int_equal(store_kill_list(fx->st, &list, &n), STORE_OK);
	assert_int_equal(n, 3);
	free(list);

	a = audit(ORG_A, "org.unkilled", "org", ORG_A);
	assert_int_equal(store_kill_lift(fx->st, "organization", ORG_A, &a), STORE_OK);
	assert_int_equal(store_kill_get(fx->st, "organization", ORG_A, &got), STORE_ENOTFOUND);
	assert_int_equal(store_kill_lift(fx->st, "organization", ORG_A, &a), STORE_ENOTFOUND);
	assert_int_equal(store_kill_lift(fx->st, "key", KEY_1, &a), STORE_OK);
	assert_int_equal(store_key_get(fx->st, KEY_1, &key), STORE_OK);
	assert_int_equal(key.version, 3);
	assert_int_equal(store_kill_list(fx->st, &list, &n), STORE_OK);
	assert_int_equal(n, 1);
	assert_string_equal(list[0].scope, "global");
	free(list);
}

/* ---------- state version ---------- */

static void test_state_version(void **state)
{
	struct fixture *fx = *state;
	struct audit_input a = audit(ORG_A, "x", "org", ORG_A);
	int64_t v = state_version(fx->st);

	assert_int_equal(v, 0);
#define BUMPED(expr)                                                                               \
	do {                                                                                       \
		assert_int_equal((expr), STORE_OK);                                                \
		int64_t now_ = state_version(fx->st);                                              \
		assert_true(now_ > v);                                                             \
		v = now_;                                                                          \
	} while (0)
	make_org(fx->st, ORG_A, "Acme");
	assert_true(state_version(fx->st) > v);
	v = state_version(fx->st);
	struct store_org o;
	assert_int_equal(store_org_get(fx->st, ORG_A, &o), STORE_OK);
	snprintf(o.name, sizeof o.name, "Acme 2");
	BUMPED(store_org_update(fx->st, &o, &a));
	make_key(fx->st, KEY_1, ORG_A, NULL, HASH_1);
	assert_true(state_version(fx->st) > v);
	v = state_version(fx->st);
	BUMPED(store_key_rotate(fx->st, KEY_1, HASH_2, "s", 0, &a, NULL));
	struct store_kill k = {
	    .scope = "key", .target_id = KEY_1, .set_by = "root", .engaged_at = 1};
	BUMPED(store_kill_engage(fx->st, &k, &a));
	BUMPED(store_kill_lift(fx->st, "key", KEY_1, &a));
	BUMPED(store_key_revoke(fx->st, KEY_1, 5, &a));
#undef BUMPED
	/* Reads and failed mutations leave it alone. */
	assert_int_equal(store_kill_lift(fx->st, "key", KEY_1, &a), STORE_ENOTFOUND);
	assert_int_equal(state_version(fx->st), v);
}

/* The logged changes after `after` up to the current version (freed by the caller). */
static struct store_change *changes_after(struct store *st, int64_t after, int *n)
{
	struct store_change *ch = NULL;
	assert_int_equal(store_changes_since(st, after, state_version(st), 100, &ch, n), STORE_OK);
	assert_non_null(ch);
	return ch;
}

static void assert_change(const struct store_change *ch, int64_t seq, const char *kind,
                          const char *id)
{
	assert_int_equal(ch->seq, seq);
	assert_string_equal(ch->kind, kind);
	assert_string_equal(ch->target_id, id);
}

/* Every bump logs what it changed under the new version, in order, in its transaction. */
static void test_changes_log(void **state)
{
	struct fixture *fx = *state;
	struct audit_input a = audit(ORG_A, "x", "org", ORG_A);
	int n = -1;
	struct store_change *ch = changes_after(fx->st, 0, &n);
	assert_int_equal(n, 0);
	free(ch);

	make_org(fx->st, ORG_A, "Acme");
	make_key(fx->st, KEY_1, ORG_A, NULL, HASH_1);
	int64_t v0 = state_version(fx->st);
	assert_int_equal(v0, 2);
	struct store_org o;
	assert_int_equal(store_org_get(fx->st, ORG_A, &o), STORE_OK);
	assert_int_equal(store_org_update(fx->st, &o, &a), STORE_OK);
	assert_int_equal(store_key_rotate(fx->st, KEY_1, HASH_2, "s", 0, &a, NULL), STORE_OK);
	struct store_kill k = {
	    .scope = "key", .target_id = KEY_1, .set_by = "root", .engaged_at = 1};
	assert_int_equal(store_kill_engage(fx->st, &k, &a), STORE_OK);
	struct store_kill ko = {
	    .scope = "organization", .target_id = ORG_A, .set_by = "root", .engaged_at = 1};
	assert_int_equal(store_kill_engage(fx->st, &ko, &a), STORE_OK);
	assert_int_equal(store_key_revoke(fx->st, KEY_1, 5, &a), STORE_OK);
	/* A failed mutation logs nothing. */
	assert_int_equal(store_kill_lift(fx->st, "key", KEY_2, &a), STORE_ENOTFOUND);

	ch = changes_after(fx->st, 0, &n);
	assert_int_equal(n, 8);
	assert_int_equal(state_version(fx->st), 8);
	assert_change(&ch[0], 1, "org", ORG_A);
	assert_change(&ch[1], 2, "key", KEY_1);
	assert_change(&ch[2], 3, "org", ORG_A);
	assert_change(&ch[3], 4, "key", KEY_1);
	/* A key's kill names the key and the kill set. */
	assert_change(&ch[4], 5, "key", KEY_1);
	assert_change(&ch[5], 6, "kills", "");
	assert_change(&ch[6], 7, "kills", "");
	assert_change(&ch[7], 8, "key", KEY_1);
	free(ch);

	/* Bounded by after, upto and limit. */
	ch = changes_after(fx->st, v0, &n);
	assert_int_equal(n, 6);
	assert_int_equal(ch[0].seq, v0 + 1);
	free(ch);
	assert_int_equal(store_changes_since(fx->st, 3, 5, 100, &ch, &n), STORE_OK);
	assert_int_equal(n, 2);
	assert_change(&ch[0], 4, "key", KEY_1);
	assert_change(&ch[1], 5, "key", KEY_1);
	free(ch);
	assert_int_equal(store_changes_since(fx->st, 0, 8, 3, &ch, &n), STORE_OK);
	assert_int_equal(n, 3);
	assert_int_equal(ch[2].seq, 3);
	free(ch);
	ch = changes_after(fx->st, 8, &n);
	assert_int_equal(n, 0);
	free(ch);
}

/* The log keeps the latest STORE_CHANGES_KEEP changes: a reader further behind sees a gap. */
static void test_changes_log_is_trimmed(void **state)
{
	struct fixture *fx = *state;
	make_org(fx->st, ORG_A, "Acme");
	struct db_conn *c = NULL;
	char err[256];
	assert_int_equal(fx->driver->connect(fx->url, false, NULL, &c, err, sizeof err), DB_OK);
	/* Pretend many changes happened (the log as a long-running store has it). */
	char sql[160];
	snprintf(sql, sizeof sql, "UPDATE state_version SET version = %d", STORE_CHANGES_KEEP + 5);
	assert_int_equal(fx->driver->query(c, sql, NULL, 0, NULL), DB_OK);
	fx->driver->disconnect(c);
	struct store_org o;
	struct audit_input a = audit(ORG_A, "x", "org", ORG_A);
	assert_int_equal(store_org_get(fx->st, ORG_A, &o), STORE_OK);
	assert_int_equal(store_org_update(fx->st, &o, &a), STORE_OK);
	/* Seq 1 fell out of the window; the new change is there. */
	int n = -1;
	struct store_change *ch = changes_after(fx->st, 0, &n);
	assert_int_equal(n, 1);
	assert_change(&ch[0], STORE_CHANGES_KEEP + 6, "org", ORG_A);
	free(ch);
}

/* ---------- audit log ---------- */

static void test_audit(void **state)
{
	struct fixture *fx = *state;
	int64_t checked = -1;
	char bad[STORE_ID_LEN + 1];

	/* An empty chain verifies. */
	assert_int_equal(store_audit_verify(fx->st, &checked, bad), STORE_OK);
	assert_int_equal(checked, 0);

	make_org(fx->st, ORG_A, "Acme");              /* seq 1 */
	make_org(fx->st, ORG_B, "Beta");              /* seq 2 */
	make_key(fx->st, KEY_1, ORG_A, NULL, HASH_1); /* seq 3 */
	sleep_ms(20);
	int64_t mid = clock_now_ms();
	sleep_ms(20);
	struct audit_input a = audit(ORG_A, "api_key.rotated", "api_key", KEY_1);
	a.actor_type = "key";
	a.actor_id = KEY_1;
	a.request_id = "req_01HXZ9G7KMV2QX8Y1S5RJW3B7T";
	json_t *details = json_pack("{s:s, s:i}", "reason", "scheduled", "grace_s", 3600);
	a.details = details;
	assert_int_equal(store_key_rotate(fx->st, KEY_1, HASH_2, "s", 0, &a, NULL),
	                 STORE_OK); /* seq 4 */
	json_decref(details);
	a = audit(NULL, "global.notice", "global", NULL);
	assert_int_equal(store_audit_append(fx->st, &a), STORE_OK); /* seq 5 */
	/* A failed mutation writes no event. */
	a = audit(ORG_A, "org.created", "org", ORG_A);
	struct store_org dup;
	assert_int_equal(store_org_get(fx->st, ORG_A, &dup), STORE_OK);
	assert_int_equal(store_org_insert(fx->st, &dup, &a), STORE_ECONFLICT);

	json_t *all = audit_list(fx->st, NULL, NULL, -1, -1, 0, 100);
	assert_int_equal(json_array_size(all), 5);
	static const char *const actions[] = {"org.created", "org.created", "api_key.created",
	                                      "api_key.rotated", "global.notice"};
	for (size_t i = 0; i < 5; i++) {
		assert_int_equal(ev_seq(all, i), (int64_t)i + 1);
		assert_string_equal(ev_str(all, i, "action"), actions[i]);
		assert_int_equal(strlen(ev_str(all, i, "id")), STORE_ID_LEN);
		assert_int_equal(strlen(ev_str(all, i, "hash")), 64);
		if (i > 0)
			assert_string_equal(ev_str(all, i, "prev_hash"),
			                    ev_str(all, i - 1, "hash"));
	}
	json_t *ev = json_array_get(all, 3);
	assert_string_equal(ev_str(all, 3, "org_id"), ORG_A);
	assert_string_equal(ev_str(all, 3, "request_id"), "req_01HXZ9G7KMV2QX8Y1S5RJW3B7T");
	assert_string_equal(json_string_value(json_object_get(json_object_get(ev, "actor"), "id")),
	                    KEY_1);
	assert_string_equal(
	    json_string_value(json_object_get(json_object_get(ev, "target"), "type")), "api_key");
	assert_string_equal(
	    json_string_value(json_object_get(json_object_get(ev, "details"), "reason")),
	    "scheduled");
	assert_true(json_is_null(json_object_get(json_array_get(all, 4), "org_id")));
	assert_true(json_is_null(json_object_get(json_array_get(all, 4), "details")));
	char bad_expected[STORE_ID_LEN + 1];
	snprintf(bad_expected, sizeof bad_expected, "%s", ev_str(all, 1, "id"));

	/* Filters: organisation, key (actor or target), time window, cursor. */
	json_t *arr = audit_list(fx->st, ORG_A, NULL, -1, -1, 0, 100);
	assert_int_equal(json_array_size(arr), 3);
	assert_int_equal(ev_seq(arr, 0), 1);
	assert_int_equal(ev_seq(arr, 1), 3);
	assert_int_equal(ev_seq(arr, 2), 4);
	json_decref(arr);
	arr = audit_list(fx->st, ORG_B, NULL, -1, -1, 0, 100);
	assert_int_equal(json_array_size(arr), 1);
	json_decref(arr);
	arr = audit_list(fx->st, NULL, KEY_1, -1, -1, 0, 100);
	assert_int_equal(json_array_size(arr), 2);
	assert_int_equal(ev_seq(arr, 0), 3);
	assert_int_equal(ev_seq(arr, 1), 4);
	json_decref(arr);
	arr = audit_list(fx->st, NULL, NULL, mid, -1, 0, 100);
	assert_int_equal(json_array_size(arr), 2);
	assert_int_equal(ev_seq(arr, 0), 4);
	json_decref(arr);
	arr = audit_list(fx->st, NULL, NULL, -1, mid, 0, 100);
	assert_int_equal(json_array_size(arr), 3);
	json_decref(arr);
	arr = audit_list(fx->st, ORG_A, NULL, -1, mid, 0, 100);
	assert_int_equal(json_array_size(arr), 2);
	json_decref(arr);
	arr = audit_list(fx->st, NULL, NULL, -1, -1, 2, 2);
	assert_int_equal(json_array_size(arr), 2);
	assert_int_equal(ev_seq(arr, 0), 3);
	assert_int_equal(ev_seq(arr, 1), 4);
	json_decref(arr);
	arr = audit_list(fx->st, NULL, NULL, -1, -1, 5, 100);
	assert_int_equal(json_array_size(arr), 0);
	json_decref(arr);
	json_decref(all);

	assert_int_equal(store_audit_verify(fx->st, &checked, bad), STORE_OK);
	assert_int_equal(checked, 5);
	assert_string_equal(bad, "");

	/* Tamper with one row: verification names that event. */
	raw_exec(fx, "UPDATE audit_events SET action = 'x' WHERE seq = 2");
	assert_int_equal(store_audit_verify(fx->st, &checked, bad), STORE_ECONFLICT);
	assert_string_equal(bad, bad_expected);
	assert_int_equal(checked, 1);
}

/* A deleted tail is caught by the head. */
static void test_audit_deleted_tail(void **state)
{
	struct fixture *fx = *state;
	int64_t checked = -1;
	char bad[STORE_ID_LEN + 1];

	make_org(fx->st, ORG_A, "Acme");
	make_org(fx->st, ORG_B, "Beta");
	raw_exec(fx, "DELETE FROM audit_events WHERE seq = 2");
	assert_int_equal(store_audit_verify(fx->st, &checked, bad), STORE_ECONFLICT);
	assert_string_equal(bad, "head");
	assert_int_equal(checked, 1);
}

/* ---------- request log ---------- */

static struct store_request_row req_row(int i, const char *org, const char *key, int status,
                                        int64_t at)
{
	struct store_request_row w = {.received_at = at,
	                              .status = status,
	                              .duration_ms = i,
	                              .bytes_in = 10 * i,
	                              .bytes_out = 100 * i};
	snprintf(w.request_id, sizeof w.request_id, "req_0000000000000000000000000%d", i % 10);
	snprintf(w.org_id, sizeof w.org_id, "%s", org ? org : "");
	snprintf(w.key_id, sizeof w.key_id, "%s", key ? key : "");
	snprintf(w.method, sizeof w.method, "GET");
	snprintf(w.path, sizeof w.path, "/v1/things/%d", i);
	if (i % 2)
		snprintf(w.region, sizeof w.region, "DE");
	snprintf(w.user_agent, sizeof w.user_agent, "test/%d", i);
	return w;
}

static void request_ids(struct store *st, const struct request_filter *f, const char *expect)
{
	json_t *arr = json_array();
	char got[512] = "";
	assert_int_equal(store_request_log_list(st, f, api_request_row_add, arr), STORE_OK);
	for (size_t i = 0; i < json_array_size(arr); i++) {
		const char *id = ev_str(arr, i, "request_id");
		size_t len = strlen(got);
		snprintf(got + len, sizeof got - len, "%s%c", i ? " " : "", id[strlen(id) - 1]);
	}
	json_decref(arr);
	assert_string_equal(got, expect);
}

static void test_request_log(void **state)
{
	struct fixture *fx = *state;
	struct store_request_row rows[6] = {
	    req_row(1, ORG_A, KEY_1, 200, 1000), req_row(2, ORG_A, KEY_2, 404, 2000),
	    req_row(3, ORG_B, KEY_3, 200, 3000), req_row(4, ORG_A, KEY_1, 500, 4000),
	    req_row(5, NULL, NULL, 401, 5000),   req_row(6, ORG_A, KEY_1, 200, 6000),
	};
	snprintf(rows[3].project_id, sizeof rows[3].project_id, "%s", PROJ_A);
	int64_t count = -1, deleted = -1;

	assert_int_equal(store_request_log_insert(fx->st, rows, 6), STORE_OK);
	/* Re-inserting a request id is ignored, not a failure. */
	assert_int_equal(store_request_log_insert(fx->st, rows, 2), STORE_OK);
	assert_int_equal(store_request_log_count(fx->st, &count), STORE_OK);
	assert_int_equal(count, 6);

	struct request_filter f = {.since = -1, .until = -1, .limit = 100};
	request_ids(fx->st, &f, "6 5 4 3 2 1");
	json_t *arr = json_array();
	assert_int_equal(store_request_log_list(fx->st, &f, api_request_row_add, arr), STORE_OK);
	json_t *r4 = json_array_get(arr, 2);
	assert_string_equal(json_string_value(json_object_get(r4, "path")), "/v1/things/4");
	assert_string_equal(json_string_value(json_object_get(r4, "project_id")), PROJ_A);
	assert_int_equal(json_integer_value(json_object_get(r4, "status")), 500);
	assert_int_equal(json_integer_value(json_object_get(r4, "bytes_out")), 400);
	assert_string_equal(json_string_value(json_object_get(r4, "received_at")),
	                    "1970-01-01T00:00:04.000Z");
	assert_true(json_is_null(json_object_get(r4, "region")));
	json_t *r5 = json_array_get(arr, 1);
	assert_true(json_is_null(json_object_get(r5, "org_id")));
	assert_string_equal(json_string_value(json_object_get(r5, "region")), "DE");
	json_decref(arr);

	f.org_id = ORG_A;
	request_ids(fx->st, &f, "6 4 2 1");
	f.key_id = KEY_1;
	request_ids(fx->st, &f, "6 4 1");
	f.status = 200;
	request_ids(fx->st, &f, "6 1");
	f.status = 0;
	f.key_id = NULL;
	f.project_id = PROJ_A;
	request_ids(fx->st, &f, "4");
	f.project_id = NULL;
	f.since = 2000;
	f.until = 6000;
	request_ids(fx->st, &f, "4 2");
	f.since = f.until = -1;
	f.org_id = NULL;
	f.limit = 2;
	request_ids(fx->st, &f, "6 5");
	f.before_id = rows[4].request_id; /* the cursor: older than 5 */
	request_ids(fx->st, &f, "4 3");
	f.before_id = rows[2].request_id;
	request_ids(fx->st, &f, "2 1");
	f.before_id = rows[0].request_id;
	request_ids(fx->st, &f, "");

	assert_int_equal(store_request_log_purge(fx->st, 3000, &deleted), STORE_OK);
	assert_int_equal(deleted, 2);
	assert_int_equal(store_request_log_purge(fx->st, 3000, &deleted), STORE_OK);
	assert_int_equal(deleted, 0);
	assert_int_equal(store_request_log_count(fx->st, &count), STORE_OK);
	assert_int_equal(count, 4);
	f.before_id = NULL;
	f.limit = 100;
	request_ids(fx->st, &f, "6 5 4 3");
}

/*
 * One insert of many rows goes in as several multi-row statements (64, 32,
 * ..., 1 rows): every size is used, every row lands with its own values, and
 * a request id already stored, or repeated within the call (in the same
 * statement or another), is inserted once without failing the rest.
 */
/*
 * Time bounds go by request id (0016): a request id carries its
 * received_at, so since/until and the purge find the same rows as the
 * received_at test alone, at both edges; a row written before the ids
 * carried received_at exactly (its id 30 s off) is still found, within the
 * minute's margin. On SQLite the purge and a filtered list read
 * request_id's index, never the whole table.
 */
static void test_request_log_time_by_id(void **state)
{
	struct fixture *fx = *state;
	const int64_t t = 1700000000000;
	struct store_request_row rows[5];
	for (int i = 0; i < 5; i++) {
		rows[i] = req_row(i + 1, ORG_A, KEY_1, 200, t + 1000 * i);
		ulid_prefixed_at("req", rows[i].received_at, rows[i].request_id,
		                 sizeof rows[i].request_id);
		rows[i].request_id[strlen(rows[i].request_id) - 1] = (char)('1' + i);
	}
	/* row 5: received 30 s after the time its id carries */
	rows[4].received_at = t + 4000 + 30000;
	assert_int_equal(store_request_log_insert(fx->st, rows, 5), STORE_OK);

	struct request_filter f = {.since = t + 1000, .until = t + 3000, .limit = 100};
	request_ids(fx->st, &f, "3 2");
	f.since = t + 1001;
	request_ids(fx->st, &f, "3");
	f.until = t + 2000;
	request_ids(fx->st, &f, "");
	f.since = t + 30000;
	f.until = -1;
	request_ids(fx->st, &f, "5");
	f.since = -1;
	f.until = t + 30000;
	request_ids(fx->st, &f, "4 3 2 1");

	int64_t deleted = -1;
	assert_int_equal(store_request_log_purge(fx->st, t + 1000, &deleted), STORE_OK);
	assert_int_equal(deleted, 1);
	assert_int_equal(store_request_log_purge(fx->st, t + 34001, &deleted), STORE_OK);
	assert_int_equal(deleted, 4);
	if (is_pg(fx))
		return;

	/* The plans: a range of request_id's index, no scan of the table. */
	struct db_conn *c = NULL;
	char err[512];
	if (fx->driver->connect(fx->url, false, NULL, &c, err, sizeof err) != DB_OK)
		fail_msg("raw connect: %s", err);
	static const char *const plans[] = {
	    "EXPLAIN QUERY PLAN DELETE FROM request_log WHERE request_id < 'x' AND received_at < 1",
	    "EXPLAIN QUERY PLAN SELECT request_id FROM request_log WHERE (1 < 0 OR received_at >= "
	    "1) "
	    "AND request_id >= 'a' AND request_id < 'b' ORDER BY request_id DESC LIMIT 5",
	};
	for (size_t i = 0; i < sizeof plans / sizeof plans[0]; i++) {
		struct db_result *r = NULL;
		assert_int_equal(fx->driver->query(c, plans[i], NULL, 0, &r), DB_OK);
		const char *detail = db_text(r, r->nrows - 1, r->ncols - 1);
		assert_non_null(strstr(detail,
		                       "USING INDEX sqlite_autoindex_request_log_1 (request_id>"
		                       "? AND request_id<?)")
		                    ?: strstr(detail, "(request_id<?)"));
		db_result_free(r);
	}
	fx->driver->disconnect(c);
}

static void test_request_log_batches(void **state)
{
	struct fixture *fx = *state;
	enum { N = 64 + 32 + 16 + 8 + 4 + 2 + 1 + 64 }; /* 191: every statement size */
	static struct store_request_row rows[N];
	int64_t count = -1;

	for (int i = 0; i < N; i++) {
		rows[i] = req_row(0, i % 3 ? ORG_A : NULL, i % 2 ? KEY_1 : NULL, 200 + i, 1000 + i);
		snprintf(rows[i].request_id, sizeof rows[i].request_id, "req_%026d", i);
		snprintf(rows[i].path, sizeof rows[i].path, "/r/%d", i);
		rows[i].bytes_in = i;
	}
	/* Stored already: rows 5 and 150. */
	assert_int_equal(store_request_log_insert(fx->st, &rows[5], 1), STORE_OK);
	assert_int_equal(store_request_log_insert(fx->st, &rows[150], 1), STORE_OK);
	/* Repeated in the same statement (10 and 11) and across statements (100, 190). */
	struct store_request_row dup = rows[10];
	rows[11] = dup;
	rows[11].status = 999;
	rows[190] = rows[100];
	rows[190].status = 999;
	assert_int_equal(store_request_log_insert(fx->st, rows, N), STORE_OK);
	assert_int_equal(store_request_log_count(fx->st, &count), STORE_OK);
	assert_int_equal(count, N - 2);

	struct request_filter f = {.since = -1, .until = -1, .limit = 1000};
	json_t *arr = json_array();
	assert_int_equal(store_request_log_list(fx->st, &f, api_request_row_add, arr), STORE_OK);
	assert_int_equal(json_array_size(arr), N - 2);
	/* Newest (highest id) first; ids 11 and 190 were never stored as such. */
	size_t at = 0;
	for (int i = N - 1; i >= 0; i--) {
		if (i == 11 || i == 190)
			continue;
		json_t *r = json_array_get(arr, at++);
		char id[32], path[32];
		snprintf(id, sizeof id, "req_%026d", i);
		snprintf(path, sizeof path, "/r/%d", i);
		assert_string_equal(json_string_value(json_object_get(r, "request_id")), id);
		assert_string_equal(json_string_value(json_object_get(r, "path")), path);
		assert_int_equal(json_integer_value(json_object_get(r, "status")), 200 + i);
		assert_int_equal(json_integer_value(json_object_get(r, "bytes_in")), i);
		json_t *org = json_object_get(r, "org_id"), *key = json_object_get(r, "key_id");
		if (i % 3)
			assert_string_equal(json_string_value(org), ORG_A);
		else
			assert_true(json_is_null(org));
		if (i % 2)
			assert_string_equal(json_string_value(key), KEY_1);
		else
			assert_true(json_is_null(key));
		assert_true(json_is_null(json_object_get(r, "project_id")));
		assert_string_equal(json_string_value(json_object_get(r, "user_agent")), "test/0");
	}
	json_decref(arr);
}

/*
 * A database made by 0001 alone, with request-log rows, migrated to the
 * latest schema: no row is lost, and on SQLite request_log_org_at (0002) and
 * request_log_at (0016) are gone, the purge and the time filters going by
 * request id instead; PostgreSQL keeps both. The ids are ULIDs of time 0,
 * within a minute of their received_at as the server's ids are.
 */
static void test_migrate_keeps_request_log(void **state)
{
	struct fixture *fx = *state;
	assert_int_equal(migrations[0].version, 1);
	assert_null(migrations[0].dialect);

	store_close(fx->st);
	fx->st = NULL;
	reset(fx);
	struct db_conn *c = NULL;
	char err[512];
	if (fx->driver->connect(fx->url, true, NULL, &c, err, sizeof err) != DB_OK)
		fail_msg("raw connect: %s", err);
	assert_int_equal(fx->driver->exec_script(
	                     c, "CREATE TABLE schema_migrations (version BIGINT PRIMARY KEY, "
	                        "name TEXT NOT NULL, applied_at BIGINT NOT NULL)"),
	                 DB_OK);
	assert_int_equal(fx->driver->exec_script(c, migrations[0].sql), DB_OK);
	assert_int_equal(
	    fx->driver->exec_script(
	        c, "INSERT INTO schema_migrations VALUES (1, 'init', 0); "
	           "INSERT INTO request_log (request_id, received_at, org_id, "
	           "method, path, status, duration_ms, bytes_in, bytes_out) VALUES "
	           "('req_00000000000000000000000001', 1000, 'o', 'GET', '/a', 200, 1, 0, 0), "
	           "('req_00000000000000000000000002', 2000, NULL, 'POST', '/b', 401, 2, 5, 6), "
	           "('req_00000000000000000000000003', 3000, 'o', 'GET', '/c', 200, 3, 0, 0)"),
	    DB_OK);
	fx->driver->disconnect(c);

	fx->st = open_store(fx, 2);
	int applied = -1;
	assert_int_equal(store_migrate(fx->st, &applied), STORE_OK);
	assert_int_equal((size_t)applied, migrations_for(fx->driver->dialect) - 1);
	int64_t count = -1;
	assert_int_equal(store_request_log_count(fx->st, &count), STORE_OK);
	assert_int_equal(count, 3);
	struct request_filter f = {.org_id = "o", .since = -1, .until = -1, .limit = 10};
	request_ids(fx->st, &f, "3 1");
	/* New rows go in next to the old ones, and the purge still works. */
	struct store_request_row w = req_row(4, "o", NULL, 200, 4000);
	snprintf(w.request_id, sizeof w.request_id, "req_00000000000000000000000004");
	assert_int_equal(store_request_log_insert(fx->st, &w, 1), STORE_OK);
	request_ids(fx->st, &f, "4 3 1");
	int64_t deleted = -1;
	assert_int_equal(store_request_log_purge(fx->st, 2500, &deleted), STORE_OK);
	assert_int_equal(deleted, 2);
	request_ids(fx->st, &f, "4 3");

	if (fx->driver->connect(fx->url, false, NULL, &c, err, sizeof err) != DB_OK)
		fail_msg("raw connect: %s", err);
	struct db_result *r = NULL;
	const char *sql = is_pg(fx) ? "SELECT indexname FROM pg_indexes WHERE tablename = "
	                              "'request_log' ORDER BY indexname"
	                            : "SELECT name FROM sqlite_master WHERE type = 'index' AND "
	                              "tbl_name = 'request_log' ORDER BY name";
	assert_int_equal(fx->driver->query(c, sql, NULL, 0, &r), DB_OK);
	char names[256] = "";
	for (int i = 0; i < r->nrows; i++) {
		size_t len = strlen(names);
		snprintf(names + len, sizeof names - len, "%s%s", i ? " " : "", db_text(r, i, 0));
	}
	db_result_free(r);
	fx->driver->disconnect(c);
	/* request_log_key_at (0007): per-key windows on both. */
	assert_string_equal(names, is_pg(fx)
	                               ? "request_log_at request_log_key_at request_log_org_at "
	                                 "request_log_pkey"
	                               : "request_log_key_at sqlite_autoindex_request_log_1");
}

/* ---------- readiness and recovery ---------- */

static void test_ready(void **state)
{
	struct fixture *fx = *state;
	struct store_org o;

	assert_true(store_ready(fx->st));
	if (is_pg(fx)) {
		/*
		 * The server closed every pooled connection (a restart): the
		 * next calls reconnect instead of failing.
		 */
		make_org(fx->st, ORG_A, "Acme");
		terminate_others(fx);
		assert_int_equal(store_org_get(fx->st, ORG_A, &o), STORE_OK);
		terminate_others(fx);
		assert_true(store_ready(fx->st));
		terminate_others(fx);
		make_org(fx->st, ORG_B, "Beta");

		/* Nothing listening: unavailable, and quickly. */
		struct store *st = NULL;
		char err[512];
		int64_t t0 = clock_mono_ms();
		assert_int_equal(
		    store_open("postgres://portcullis@127.0.0.1:1/none", 1, &st, err, sizeof err),
		    STORE_EUNAVAILABLE);
		assert_true(clock_mono_ms() - t0 < 3500);
		assert_non_null(strstr(err, "PostgreSQL"));
		assert_int_equal(
		    store_open("postgres://x@127.0.0.1:1/none?bogus=1", 1, &st, err, sizeof err),
		    STORE_ERROR);
		return;
	}
	char away[sizeof fx->path + 8];
	snprintf(away, sizeof away, "%s.away", fx->path);
	assert_int_equal(rename(fx->path, away), 0);
	assert_false(store_ready(fx->st));
	assert_int_equal(rename(away, fx->path), 0);
	assert_true(store_ready(fx->st));
	assert_int_equal(store_org_get(fx->st, ORG_A, &o), STORE_ENOTFOUND);
}

/* ---------- the driver's own edges ---------- */

static void test_driver_params(void **state)
{
	struct fixture *fx = *state;
	struct db_conn *c = NULL;
	struct db_result *r = NULL;
	char err[512];

	assert_int_equal(fx->driver->connect(fx->url, false, NULL, &c, err, sizeof err), DB_OK);
	/* '?' inside a literal is not a placeholder; NULL text is SQL NULL. */
	struct db_param p[] = {P_TEXT("a'b"), P_TEXT(NULL), P_INT(-42), P_INT(INT64_MAX)};
	assert_int_equal(
	    fx->driver->query(c, "SELECT ?, 'what?', ? IS NULL, ? + 0, ?, 'it''s?'", p, 4, &r),
	    DB_OK);
	assert_int_equal(r->nrows, 1);
	assert_int_equal(r->ncols, 6);
	assert_string_equal(db_text(r, 0, 0), "a'b");
	assert_string_equal(db_text(r, 0, 1), "what?");
	assert_true(db_text(r, 0, 2) &&
	            (strcmp(db_text(r, 0, 2), "1") == 0 || strcmp(db_text(r, 0, 2), "t") == 0));
	assert_int_equal(db_int(r, 0, 3), -42);
	assert_int_equal(db_int(r, 0, 4), INT64_MAX);
	assert_string_equal(db_text(r, 0, 5), "it's?");
	db_result_free(r);
	r = NULL;
	/* A NULL cell, and a mismatch between placeholders and parameters. */
	assert_int_equal(fx->driver->query(c, "SELECT NULL", NULL, 0, &r), DB_OK);
	assert_null(db_text(r, 0, 0));
	db_result_free(r);
	r = NULL;
	if (is_pg(fx))
		assert_int_equal(fx->driver->query(c, "SELECT ?", NULL, 0, &r), DB_ERROR);
	/* A failed transaction does not commit. */
	assert_int_equal(fx->driver->begin(c), DB_OK);
	assert_int_equal(
	    fx->driver->query(c, "UPDATE state_version SET version = 99", NULL, 0, NULL), DB_OK);
	assert_int_equal(fx->driver->query(c,
	                                   "INSERT INTO state_version (id, version) VALUES (1, 1)",
	                                   NULL, 0, NULL),
	                 DB_CONSTRAINT);
	fx->driver->rollback(c);
	assert_true(fx->driver->alive(c));
	if (is_pg(fx)) {
		/* A connection lost inside a transaction fails it: UNAVAILABLE. */
		assert_int_equal(fx->driver->begin(c), DB_OK);
		terminate_others(fx);
		assert_int_equal(fx->driver->query(c, "SELECT 1", NULL, 0, NULL), DB_UNAVAILABLE);
		fx->driver->rollback(c);
	}
	fx->driver->disconnect(c);
	assert_int_equal(state_version(fx->st), 0);
}

/* ---------- the driver's statement cache ---------- */

/* "SELECT 1", then "SELECT 2" built in the same buffer: each gives its own value. */
static int query_reused_buffer(struct db_conn *c, void *arg)
{
	int64_t *got = arg;
	char sql[32];
	for (int i = 0; i < 2; i++) {
		snprintf(sql, sizeof sql, "SELECT %d", i + 1);
		struct db_result *r = NULL;
		int rc = c->driver->query(c, sql, NULL, 0, &r);
		if (rc != DB_OK)
			return rc;
		got[i] = db_int(r, 0, 0);
		db_result_free(r);
	}
	return DB_OK;
}

static void test_sql_text_in_a_reused_buffer_is_not_confused(void **state)
{
	struct fixture *fx = *state;
	struct store *st = open_store(fx, 1);
	int64_t got[2] = {0, 0};
	assert_int_equal(store_with_conn(st, query_reused_buffer, got), STORE_OK);
	assert_int_equal(got[0], 1);
	assert_int_equal(got[1], 2); /* not the statement cached for the first text */
	store_close(st);
}

/* ---------- durability and bounded waits ---------- */

struct pragma_read {
	const char *sql;
	int64_t value;
};

static int read_pragma(struct db_conn *c, void *arg)
{
	struct pragma_read *pr = arg;
	struct db_result *r = NULL;
	int rc = c->driver->query(c, pr->sql, NULL, 0, &r);
	if (rc == DB_OK)
		pr->value = db_int(r, 0, 0);
	db_result_free(r);
	return rc;
}

/* An integer PRAGMA on the next connection of st. */
static int64_t pragma_of(struct store *st, const char *sql)
{
	struct pragma_read pr = {sql, -1};
	assert_int_equal(store_with_conn(st, read_pragma, &pr), STORE_OK);
	return pr.value;
}

/* PRAGMA synchronous on the one connection of st: 1 NORMAL, 2 FULL. */
static int64_t synchronous_of(struct store *st)
{
	return pragma_of(st, "PRAGMA synchronous");
}

static void test_kills_and_audit_commit_durably(void **state)
{
	struct fixture *fx = *state;
	if (is_pg(fx))
		skip(); /* PostgreSQL's synchronous_commit is on: every commit waits for the WAL */
	/* One connection, so the one read below is the one every call used. */
	struct store *st = open_store(fx, 1);
	make_org(st, ORG_A, "Acme");
	make_key(st, KEY_1, ORG_A, NULL, HASH_1);
	assert_int_equal(synchronous_of(st), 2);

	struct store_request_row rows[] = {req_row(1, ORG_A, KEY_1, 200, 1000)};
	assert_int_equal(store_request_log_insert(st, rows, 1), STORE_OK);
	assert_int_equal(synchronous_of(st), 1); /* high volume: NORMAL */

	struct store_kill k = {.scope = "key", .set_by = "root", .engaged_at = 2000};
	snprintf(k.target_id, sizeof k.target_id, "%s", KEY_1);
	struct audit_input a = audit(ORG_A, "api_key.killed", "api_key", KEY_1);
	assert_int_equal(store_kill_engage(st, &k, &a), STORE_OK);
	assert_int_equal(synchronous_of(st), 2); /* the kill committed with FULL */

	const char *ids[] = {KEY_1};
	const int64_t at[] = {3000};
	assert_int_equal(store_key_touch(st, ids, at, 1), STORE_OK);
	assert_int_equal(synchronous_of(st), 1);
	a = audit(ORG_A, "api_key.revoked", "api_key", KEY_1);
	assert_int_equal(store_key_revoke(st, KEY_1, 4000, &a), STORE_OK);
	assert_int_equal(synchronous_of(st), 2);

	assert_int_equal(store_request_log_insert(st, rows, 1), STORE_OK);
	a = audit(ORG_A, "api_key.viewed", "api_key", KEY_1);
	assert_int_equal(store_audit_append(st, &a), STORE_OK);
	assert_int_equal(synchronous_of(st), 2);
	store_close(st);
}

struct holder {
	const struct fixture *fx;
	const char *lock_sql;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	bool locked;
};

/* Lock rows in a transaction of its own for 3 s, then roll back. */
static void *hold_lock(void *arg)
{
	struct holder *h = arg;
	struct db_conn *c = NULL;
	char err[256];
	assert_int_equal(h->fx->driver->connect(h->fx->url, false, NULL, &c, err, sizeof err),
	                 DB_OK);
	assert_int_equal(c->driver->begin(c), DB_OK);
	assert_int_equal(c->driver->query(c, h->lock_sql, NULL, 0, NULL), DB_OK);
	pthread_mutex_lock(&h->mu);
	h->locked = true;
	pthread_cond_signal(&h->cv);
	pthread_mutex_unlock(&h->mu);
	sleep_ms(3000);
	c->driver->rollback(c);
	c->driver->disconnect(c);
	return NULL;
}

static void start_holder(struct holder *h, pthread_t *t)
{
	pthread_mutex_init(&h->mu, NULL);
	pthread_cond_init(&h->cv, NULL);
	assert_int_equal(pthread_create(t, NULL, hold_lock, h), 0);
	pthread_mutex_lock(&h->mu);
	while (!h->locked)
		pthread_cond_wait(&h->cv, &h->mu);
	pthread_mutex_unlock(&h->mu);
}

static void test_statement_timeout_cuts_a_blocked_statement(void **state)
{
	struct fixture *fx = *state;
	if (!is_pg(fx))
		skip(); /* SQLite: one writer, bounded by its busy timeout */
	struct store_options o = {.pool_size = 2, .statement_timeout_ms = 300};
	struct store *st = NULL;
	char err[256];
	assert_int_equal(store_open_with(fx->url, &o, &st, err, sizeof err), STORE_OK);
	make_org(st, ORG_A, "Acme");
	struct store_request_row rows[] = {req_row(1, ORG_A, KEY_1, 200, 1000)};
	assert_int_equal(store_request_log_insert(st, rows, 1), STORE_OK);

	/* A row another session holds: the update waits, and is cut off at 300 ms. */
	struct holder h = {.fx = fx,
	                   .lock_sql = "SELECT id FROM orgs WHERE id = '" ORG_A "' FOR UPDATE"};
	pthread_t t;
	start_holder(&h, &t);
	struct store_org org;
	assert_int_equal(store_org_get(st, ORG_A, &org), STORE_OK); /* reads do not wait */
	snprintf(org.name, sizeof org.name, "Renamed");
	struct audit_input a = audit(ORG_A, "org.updated", "org", ORG_A);
	int64_t t0 = clock_mono_ms();
	assert_int_equal(store_org_update(st, &org, &a), STORE_ERROR);
	int64_t took = clock_mono_ms() - t0;
	assert_true(took >= 250 && took < 2000);
	pthread_join(t, NULL);
	assert_int_equal(store_org_update(st, &org, &a), STORE_OK); /* the pool recovered */

	/* A purge is maintenance: it waits for the lock as long as it takes. */
	struct holder h2 = {.fx = fx, .lock_sql = "SELECT request_id FROM request_log FOR UPDATE"};
	start_holder(&h2, &t);
	int64_t deleted = -1;
	t0 = clock_mono_ms();
	assert_int_equal(store_request_log_purge(st, 5000, &deleted), STORE_OK);
	assert_int_equal(deleted, 1);
	assert_true(clock_mono_ms() - t0 >= 1000);
	pthread_join(t, NULL);
	store_close(st);
}

/* ---------- the SQLite WAL checkpointer ---------- */

#define FILL_ROWS 10 /* rows of ~1 page per transaction */

static int create_fill(struct db_conn *c, void *arg)
{
	(void)arg;
	return c->driver->exec_script(c, "CREATE TABLE IF NOT EXISTS wal_fill (id INTEGER PRIMARY "
	                                 "KEY, v TEXT NOT NULL)");
}

/* One transaction of FILL_ROWS rows of about a page each. */
static int fill_tx(struct db_conn *c, void *arg)
{
	(void)arg;
	static char v[3900];
	if (!v[0])
		memset(v, 'x', sizeof v - 1);
	struct db_param p = P_TEXT(v);
	int rc = c->driver->begin(c);
	for (int i = 0; rc == DB_OK && i < FILL_ROWS; i++)
		rc = c->driver->query(c, "INSERT INTO wal_fill (v) VALUES (?)", &p, 1, NULL);
	if (rc == DB_OK)
		return c->driver->commit(c);
	c->driver->rollback(c);
	return rc;
}

static int64_t file_size(const char *path)
{
	struct stat sb;
	return stat(path, &sb) == 0 ? (int64_t)sb.st_size : -1;
}

static struct store *open_wal_store(struct fixture *fx, int pages, int limit)
{
	store_close(fx->st); /* the fixture's store and its checkpointer: not in the way */
	fx->st = NULL;
	struct store_options o = {.pool_size = 1,
	                          .wal_checkpoint_pages = pages,
	                          .wal_limit_pages = limit,
	                          .wal_interval_ms = 60000}; /* only the commits wake it */
	struct store *st = NULL;
	char err[256];
	assert_int_equal(store_open_with(fx->url, &o, &st, err, sizeof err), STORE_OK);
	assert_int_equal(store_with_conn(st, create_fill, NULL), STORE_OK);
	return st;
}

/*
 * The store's connections do not checkpoint in their commits; its
 * checkpointer thread does, and under writes without a pause (no moment for
 * the WAL to start over by itself) it keeps the WAL near its limit.
 */
static void test_wal_checkpointed_by_the_thread_and_bounded(void **state)
{
	struct fixture *fx = *state;
	if (is_pg(fx))
		skip();
	enum { PAGES = 50, LIMIT = 300, TXS = 300 }; /* 3,000 pages written */
	struct store *st = open_wal_store(fx, PAGES, LIMIT);
	assert_int_equal(pragma_of(st, "PRAGMA wal_autocheckpoint"), 0);

	char wal[sizeof fx->path + 8];
	snprintf(wal, sizeof wal, "%s-wal", fx->path);
	int64_t max_size = 0;
	for (int i = 0; i < TXS; i++) {
		assert_int_equal(store_with_conn(st, fill_tx, NULL), STORE_OK);
		int64_t sz = file_size(wal);
		if (sz > max_size)
			max_size = sz;
	}
	struct db_maint_stats ms;
	store_maint_stats(st, &ms);
	printf("checkpointer: %lld passive, %lld restart, %lld busy, WAL at most %lld pages "
	       "(%lld bytes)\n",
	       (long long)ms.passive, (long long)ms.restart, (long long)ms.busy,
	       (long long)ms.max_frames, (long long)max_size);
	assert_true(ms.passive > 0);
	/* Without checkpoints the WAL would reach the 3,000 pages written. */
	assert_true(ms.max_frames > 0 && ms.max_frames < 5 * LIMIT);
	assert_true(max_size < (int64_t)5 * LIMIT * (4096 + 24));
	store_close(st);
}

static int64_t raw_count(sqlite3 *db, const char *sql)
{
	sqlite3_stmt *stmt = NULL;
	assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &stmt, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_step(stmt), SQLITE_ROW);
	int64_t v = sqlite3_column_int64(stmt, 0);
	sqlite3_finalize(stmt);
	return v;
}

/*
 * Close checkpoints the whole WAL and empties it even while another
 * connection (another process: the worker beside serve) keeps the database
 * open, which stops SQLite's own checkpoint at the last close; what is left
 * is a consistent database with every committed row.
 */
static void test_wal_close_leaves_a_checkpointed_database(void **state)
{
	struct fixture *fx = *state;
	if (is_pg(fx))
		skip();
	struct store *st = open_wal_store(fx, 1000, 10000);
	for (int i = 0; i < 5; i++) /* 50 pages: under the threshold, so nothing ran yet */
		assert_int_equal(store_with_conn(st, fill_tx, NULL), STORE_OK);
	struct db_maint_stats ms;
	store_maint_stats(st, &ms);
	assert_int_equal(ms.passive, 0);

	sqlite3 *other = NULL;
	assert_int_equal(sqlite3_open_v2(fx->path, &other, SQLITE_OPEN_READWRITE, NULL), SQLITE_OK);
	assert_int_equal(raw_count(other, "SELECT count(*) FROM wal_fill"), 5 * FILL_ROWS);
	char wal[sizeof fx->path + 8];
	snprintf(wal, sizeof wal, "%s-wal", fx->path);
	assert_true(file_size(wal) > 0);
	store_close(st);
	assert_int_equal(file_size(wal), 0); /* checkpointed and truncated */

	sqlite3_stmt *stmt = NULL;
	assert_int_equal(sqlite3_prepare_v2(other, "PRAGMA integrity_check", -1, &stmt, NULL),
	                 SQLITE_OK);
	assert_int_equal(sqlite3_step(stmt), SQLITE_ROW);
	assert_string_equal((const char *)sqlite3_column_text(stmt, 0), "ok");
	sqlite3_finalize(stmt);
	assert_int_equal(raw_count(other, "SELECT count(*) FROM wal_fill"), 5 * FILL_ROWS);
	sqlite3_close(other);
}

/* db_text, db_text_or_empty, db_int and db_int_or on a result with SQL NULLs, and out of range. */
static void test_cells_read_null_as_the_default(void **state)
{
	(void)state;
	char **cells = calloc(4, sizeof *cells);
	assert_non_null(cells);
	cells[0] = strdup("a");
	cells[2] = strdup("7"); /* cells[1], cells[3]: NULL */
	struct db_result *r = db_result_new(2, 2, cells);
	assert_string_equal(db_text(r, 0, 0), "a");
	assert_null(db_text(r, 0, 1));
	assert_string_equal(db_text_or_empty(r, 0, 0), "a");
	assert_string_equal(db_text_or_empty(r, 0, 1), "");
	assert_string_equal(db_text_or_empty(r, 2, 0), ""); /* no such row */
	assert_string_equal(db_text_or_empty(r, 0, -1), "");
	assert_int_equal(db_int_or(r, 1, 0, -1), 7);
	assert_int_equal(db_int_or(r, 1, 1, -1), -1);
	db_result_free(r);
}

#define STORE_TESTS(setup)                                                                         \
	cmocka_unit_test_setup_teardown(test_migrate_twice, setup, teardown),                      \
	    cmocka_unit_test_setup_teardown(test_migrate_concurrent, setup, teardown),             \
	    cmocka_unit_test_setup_teardown(test_orgs, setup, teardown),                           \
	    cmocka_unit_test_setup_teardown(test_projects, setup, teardown),                       \
	    cmocka_unit_test_setup_teardown(test_keys, setup, teardown),                           \
	    cmocka_unit_test_setup_teardown(test_kill_switches, setup, teardown),                  \
	    cmocka_unit_test_setup_teardown(test_state_version, setup, teardown),                  \
	    cmocka_unit_test_setup_teardown(test_changes_log, setup, teardown),                    \
	    cmocka_unit_test_setup_teardown(test_changes_log_is_trimmed, setup, teardown),         \
	    cmocka_unit_test_setup_teardown(test_audit, setup, teardown),                          \
	    cmocka_unit_test_setup_teardown(test_audit_deleted_tail, setup, teardown),             \
	    cmocka_unit_test_setup_teardown(test_request_log, setup, teardown),                    \
	    cmocka_unit_test_setup_teardown(test_request_log_batches, setup, teardown),            \
	    cmocka_unit_test_setup_teardown(test_request_log_time_by_id, setup, teardown),         \
	    cmocka_unit_test_setup_teardown(test_migrate_keeps_request_log, setup, teardown),      \
	    cmocka_unit_test_setup_teardown(test_ready, setup, teardown),                          \
	    cmocka_unit_test_setup_teardown(test_driver_params, setup, teardown),                  \
	    cmocka_unit_test_setup_teardown(test_sql_text_in_a_reused_buffer_is_not_confused,      \
	                                    setup, teardown),                                      \
	    cmocka_unit_test_setup_teardown(test_kills_and_audit_commit_durably, setup, teardown), \
	    cmocka_unit_test_setup_teardown(test_statement_timeout_cuts_a_blocked_statement,       \
	                                    setup, teardown),                                      \
	    cmocka_unit_test_setup_teardown(test_wal_checkpointed_by_the_thread_and_bounded,       \
	                                    setup, teardown),                                      \
	    cmocka_unit_test_setup_teardown(test_wal_close_leaves_a_checkpointed_database, setup,  \
	                                    teardown)

int main(void)
{
	const struct CMUnitTest sqlite_tests[] = {STORE_TESTS(setup_sqlite)};
	const struct CMUnitTest postgres_tests[] = {STORE_TESTS(setup_postgres)};
	const char *pg = getenv("PORTCULLIS_TEST_PG_URL");
	int failed;

	/* Quiet by default: several tests provoke warnings on purpose. */
	const char *level = getenv("PORTCULLIS_TEST_LOG_LEVEL");
	int lv = level ? log_level_parse(level) : -1;
	log_setup(lv >= 0 ? (enum log_level)lv : LOG_ERROR, false);
	const struct CMUnitTest cell_tests[] = {
	    cmocka_unit_test(test_cells_read_null_as_the_default)};
	failed = cmocka_run_group_tests_name("store/cells", cell_tests, NULL, NULL);
	failed += cmocka_run_group_tests_name("store/sqlite", sqlite_tests, NULL, NULL);
	if (pg && *pg)
		failed += cmocka_run_group_tests_name("store/postgres", postgres_tests, NULL, NULL);
	else
		printf("store/postgres: skipped (set PORTCULLIS_TEST_PG_URL, see "
		       "scripts/test-servers.sh)\n");
	return failed;
}
