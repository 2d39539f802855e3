/*
 * store_fixture.h: the per-backend fixture of the store suites
 * (test_store_webhooks.c, test_store_events.c, test_commit.c): SQLite (a
 * temp file) always, PostgreSQL too when PORTCULLIS_TEST_PG_URL is set, in a
 * database of the suite's own. Each test gets an empty, freshly migrated
 * database. Raw SQL (inspecting rows, forcing states) goes through the db.h
 * driver on one of the store's own connections.
 *
 * Define FIXTURE_DB_NAME (the suite's PostgreSQL database) and FIXTURE_TMP
 * (its temp directory's prefix) before including it, after cmocka.h.
 */
#ifndef PORTCULLIS_TESTS_STORE_FIXTURE_H
#define PORTCULLIS_TESTS_STORE_FIXTURE_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "pg_url.h"

#include "core/clock.h"
#include "core/log.h"
#include "store/db.h"
#include "store/store.h"

struct fixture {
	const struct db_driver *driver;
	char url[4096];
	char dir[256];
	char path[300];
	struct store *st;
};

/* ---------- per-backend reset (as test_store.c) ---------- */

static inline void remove_sqlite_files(const struct fixture *fx)
{
	static const char *const suffix[] = {"", "-wal", "-shm"};
	char p[sizeof fx->path + 8];
	for (size_t i = 0; i < sizeof suffix / sizeof suffix[0]; i++) {
		snprintf(p, sizeof p, "%s%s", fx->path, suffix[i]);
		unlink(p);
	}
}

static inline void reset(struct fixture *fx)
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

static inline struct store *open_store(const struct fixture *fx, int pool)
{
	struct store *st = NULL;
	char err[512];
	if (store_open(fx->url, pool, &st, err, sizeof err) != STORE_OK)
		fail_msg("store_open %s: %s", fx->driver->dialect, err);
	return st;
}

static inline int setup_common(void **state, struct fixture *fx)
{
	reset(fx);
	fx->st = open_store(fx, 4);
	assert_int_equal(store_migrate(fx->st, NULL), STORE_OK);
	*state = fx;
	return 0;
}

static inline int setup_sqlite(void **state)
{
	struct fixture *fx = calloc(1, sizeof *fx);
	assert_non_null(fx);
	fx->driver = &db_sqlite_driver;
	const char *tmp = getenv("TMPDIR");
	snprintf(fx->dir, sizeof fx->dir, "%s/" FIXTURE_TMP "-XXXXXX", tmp && *tmp ? tmp : "/tmp");
	assert_non_null(mkdtemp(fx->dir));
	snprintf(fx->path, sizeof fx->path, "%s/store.db", fx->dir);
	snprintf(fx->url, sizeof fx->url, "sqlite://%s", fx->path);
	return setup_common(state, fx);
}

/*
 * PostgreSQL: a database of this suite's own (FIXTURE_DB_NAME on the server of
 * PORTCULLIS_TEST_PG_URL), so that test_store, which resets the URL's
 * database, can run at the same time.
 */
static char pg_url[4096];

static inline void pg_own_database(const char *base)
{
	char admin[4096];
	if (!pg_url_with_db(base, FIXTURE_DB_NAME, pg_url, sizeof pg_url) ||
	    !pg_url_with_db(base, "postgres", admin, sizeof admin))
		fail_msg("cannot place a database name in %s", base);
	struct db_conn *c = NULL;
	struct db_result *r = NULL;
	char err[512];
	if (db_postgres_driver.connect(admin, false, NULL, &c, err, sizeof err) != DB_OK)
		fail_msg("raw connect: %s", err);
	assert_int_equal(db_postgres_driver.query(c,
	                                          "SELECT 1 FROM pg_database WHERE datname = "
	                                          "'" FIXTURE_DB_NAME "'",
	                                          NULL, 0, &r),
	                 DB_OK);
	if (r->nrows == 0)
		assert_int_equal(
		    db_postgres_driver.exec_script(c, "CREATE DATABASE " FIXTURE_DB_NAME), DB_OK);
	db_result_free(r);
	db_postgres_driver.disconnect(c);
}

static inline int setup_postgres(void **state)
{
	struct fixture *fx = calloc(1, sizeof *fx);
	assert_non_null(fx);
	fx->driver = &db_postgres_driver;
	snprintf(fx->url, sizeof fx->url, "%s", pg_url);
	return setup_common(state, fx);
}

static inline int teardown(void **state)
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

static inline bool is_pg(const struct fixture *fx)
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

static inline int raw_fn(struct db_conn *c, void *arg)
{
	struct raw *q = arg;
	return c->driver->query(c, q->sql, q->p, q->n, &q->r) == DB_OK ? STORE_OK : STORE_ERROR;
}

/* Run sql with up to two text parameters (NULL: fewer); the result (free it). */
static inline struct db_result *raw(struct store *st, const char *sql, const char *a, const char *b)
{
	struct db_param p[] = {P_TEXT(a), P_TEXT(b)};
	struct raw q = {sql, p, b ? 2 : a ? 1 : 0, NULL};
	assert_int_equal(store_with_conn(st, raw_fn, &q), STORE_OK);
	return q.r;
}

/* The first cell of sql's result as an integer (-1 for NULL or no row). */
static inline int64_t raw_int(struct store *st, const char *sql, const char *a, const char *b)
{
	struct db_result *r = raw(st, sql, a, b);
	int64_t v = r->nrows > 0 && db_text(r, 0, 0) ? db_int(r, 0, 0) : -1;
	db_result_free(r);
	return v;
}

/* ---------- fixtures ---------- */

static inline struct audit_input audit(const char *org_id, const char *action,
                                       const char *target_type, const char *target_id)
{
	return (struct audit_input){.org_id = org_id,
	                            .actor_type = "root",
	                            .action = action,
	                            .target_type = target_type,
	                            .target_id = target_id};
}

static inline void make_org(struct store *st, const char *id, const char *email)
{
	struct store_org o = {.rl_requests = -1, .rl_per_seconds = -1, .rl_burst = -1};
	snprintf(o.id, sizeof o.id, "%s", id);
	snprintf(o.name, sizeof o.name, "org %s", id);
	snprintf(o.contact_email, sizeof o.contact_email, "%s", email ? email : "");
	o.created_at = o.updated_at = clock_now_ms();
	struct audit_input a = audit(id, "org.created", "org", id);
	assert_int_equal(store_org_insert(st, &o, &a), STORE_OK);
}

static inline void make_project(struct store *st, const char *org_id, const char *id)
{
	struct store_project p = {.created_at = clock_now_ms()};
	snprintf(p.id, sizeof p.id, "%s", id);
	snprintf(p.org_id, sizeof p.org_id, "%s", org_id);
	snprintf(p.name, sizeof p.name, "project %s", id);
	struct audit_input a = audit(org_id, "project.created", "project", id);
	assert_int_equal(store_project_insert(st, &p, &a), STORE_OK);
}

/*
 * main's body: the suite's tests (TESTS(setup) for setup_sqlite, then
 * setup_postgres when PORTCULLIS_TEST_PG_URL is set), log level from
 * PORTCULLIS_TEST_LOG_LEVEL. Returns the failure count.
 */
static inline int fixture_main(const char *suite, const struct CMUnitTest *sqlite_tests,
                               const struct CMUnitTest *postgres_tests, size_t n)
{
	char name[96];
	const char *pg = getenv("PORTCULLIS_TEST_PG_URL");
	const char *level = getenv("PORTCULLIS_TEST_LOG_LEVEL");
	int lv = level ? log_level_parse(level) : -1;
	log_setup(lv >= 0 ? (enum log_level)lv : LOG_ERROR, false);
	snprintf(name, sizeof name, "%s/sqlite", suite);
	int failed = _cmocka_run_group_tests(name, sqlite_tests, n, NULL, NULL);
	if (!pg || !*pg) {
		printf("%s/postgres: skipped (set PORTCULLIS_TEST_PG_URL, see "
		       "scripts/test-servers.sh)\n",
		       suite);
		return failed;
	}
	pg_own_database(pg);
	snprintf(name, sizeof name, "%s/postgres", suite);
	return failed + _cmocka_run_group_tests(name, postgres_tests, n, NULL, NULL);
}

#endif
