/*
 * db_sqlite.c: the SQLite driver (see db.h). WAL journal, a busy timeout,
 * foreign keys on, temporary data in memory, and a per-connection cache of
 * prepared statements found by the SQL text's address (store.c passes
 * string literals) and confirmed by the text itself, so SQL built in a
 * buffer that is reused (or freed and handed out again) never runs an
 * earlier statement. Text parameters are bound without a copy.
 *
 * Durability: a connection starts with synchronous=FULL, so in WAL mode
 * each commit fsyncs the WAL before it returns, and an acknowledged kill,
 * revocation or audit event survives a power or OS failure. store.c asks
 * for synchronous=NORMAL (set_durable false) only around the high-volume
 * records, request-log rows and last-used times: NORMAL does not fsync at
 * commit, so a power failure can lose the last of those commits (never
 * corrupt the file; a process crash loses nothing in either mode). The
 * PRAGMA cannot change inside a transaction, so it is set before BEGIN,
 * and only when it differs from what the connection has.
 */
#include "store/db.h"

#include "core/alloc.h"
#include "core/log.h"
#include "core/str.h"

#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define STMT_CACHE 96

struct sqlite_conn {
	struct db_conn base;
	sqlite3 *db;
	char *path;
	bool durable; /* synchronous=FULL (else NORMAL) */
	struct {
		const char *sql;
		sqlite3_stmt *stmt;
	} cache[STMT_CACHE];
	int n_cached;
};

static int map_rc(int rc)
{
	switch (rc & 0xff) {
	case SQLITE_OK:
	case SQLITE_DONE:
	case SQLITE_ROW:
		return DB_OK;
	case SQLITE_CONSTRAINT:
		return DB_CONSTRAINT;
	case SQLITE_CANTOPEN:
	case SQLITE_IOERR:
	case SQLITE_NOTADB:
	case SQLITE_CORRUPT:
	case SQLITE_PERM:
	case SQLITE_AUTH:
	case SQLITE_READONLY:
		return DB_UNAVAILABLE;
	default:
		return DB_ERROR;
	}
}

static int sqlite_connect(const char *url, bool create, const struct db_options *opt,
                          struct db_conn **out, char *err, size_t cap)
{
	(void)opt; /* no statement timeout: one writer, and the busy timeout bounds the wait */
	/* sqlite:///abs/path.db or sqlite://relative.db */
	const char *path = url + strlen("sqlite://");
	if (!*path) {
		snprintf(err, cap, "store url %s names no file", url);
		return DB_ERROR;
	}
	sqlite3 *db = NULL;
	int rc = sqlite3_open_v2(
	    path, &db,
	    SQLITE_OPEN_READWRITE | (create ? SQLITE_OPEN_CREATE : 0) | SQLITE_OPEN_NOMUTEX, NULL);
	if (rc != SQLITE_OK) {
		snprintf(err, cap, "cannot open %s: %s", path, db ? sqlite3_errmsg(db) : "?");
		sqlite3_close(db);
		return DB_UNAVAILABLE;
	}
	sqlite3_busy_timeout(db, 5000);
	/*
	 * synchronous=FULL: see the top of the file. temp_store=MEMORY: statement journals stay in
	 * memory. A multi-row INSERT inside a transaction (the request log's) needs one; on disk it
	 * was a temporary file created, written and deleted for most batches, with more pwrite
	 * calls than the database and its WAL. cache_size: 16 MiB of pages per connection (the
	 * default 2 MiB made the request-log writer re-read its index pages from the file for every
	 * batch: half its time was pread; bench/incident_load went from 11.5k to 13.2k rows/s).
	 */
	char *msg = NULL;
	rc = sqlite3_exec(
	    db,
	    "PRAGMA journal_mode=WAL; PRAGMA foreign_keys=ON; "
	    "PRAGMA synchronous=FULL; PRAGMA temp_store=MEMORY; PRAGMA cache_size=-16384;",
	    NULL, NULL, &msg);
	if (rc != SQLITE_OK) {
		snprintf(err, cap, "cannot use %s: %s", path, msg ? msg : sqlite3_errmsg(db));
		sqlite3_free(msg);
		sqlite3_close(db);
		return DB_UNAVAILABLE;
	}
	struct sqlite_conn *c = xcalloc(1, sizeof *c);
	c->base.driver = &db_sqlite_driver;
	c->db = db;
	c->path = xstrdup(path);
	c->durable = true;
	*out = &c->base;
	return DB_OK;
}

static void sqlite_disconnect(struct db_conn *base)
{
	struct sqlite_conn *c = (struct sqlite_conn *)base;
	for (int i = 0; i < c->n_cached; i++)
		sqlite3_finalize(c->cache[i].stmt);
	sqlite3_close(c->db);
	free(c->path);
	free(c);
}

static int sqlite_exec_script(struct db_conn *base, const char *sql)
{
	struct sqlite_conn *c = (struct sqlite_conn *)base;
	char *msg = NULL;
	int rc = sqlite3_exec(c->db, sql, NULL, NULL, &msg);
	if (rc != SQLITE_OK) {
		log_error("sqlite: %s", msg ? msg : sqlite3_errmsg(c->db));
		sqlite3_free(msg);
	}
	return map_rc(rc);
}

static sqlite3_stmt *prepare_cached(struct sqlite_conn *c, const char *sql, int *rc)
{
	int slot = -1;
	for (int i = 0; i < c->n_cached; i++)
		if (c->cache[i].sql == sql) {
			if (strcmp(sqlite3_sql(c->cache[i].stmt), sql) == 0) {
				*rc = SQLITE_OK;
				return c->cache[i].stmt;
			}
			slot = i; /* the same address now holds other text */
			break;
		}
	sqlite3_stmt *stmt = NULL;
	*rc = sqlite3_prepare_v3(c->db, sql, -1, SQLITE_PREPARE_PERSISTENT, &stmt, NULL);
	if (*rc != SQLITE_OK)
		return NULL;
	if (slot >= 0) {
		sqlite3_finalize(c->cache[slot].stmt);
		c->cache[slot].stmt = stmt;
	} else if (c->n_cached < STMT_CACHE) {
		c->cache[c->n_cached].sql = sql;
		c->cache[c->n_cached].stmt = stmt;
		c->n_cached++;
	}
	return stmt;
}

static bool is_cached(struct sqlite_conn *c, sqlite3_stmt *stmt)
{
	for (int i = 0; i < c->n_cached; i++)
		if (c->cache[i].stmt == stmt)
			return true;
	return false;
}

static int sqlite_query(struct db_conn *base, const char *sql, const struct db_param *params, int n,
                        struct db_result **out)
{
	struct sqlite_conn *c = (struct sqlite_conn *)base;
	int rc;
	if (out)
		*out = NULL;
	sqlite3_stmt *stmt = prepare_cached(c, sql, &rc);
	if (!stmt) {
		log_error("sqlite prepare: %s", sqlite3_errmsg(c->db));
		return map_rc(rc) == DB_OK ? DB_ERROR : map_rc(rc);
	}
	for (int i = 0; i < n; i++) {
		switch (params[i].type) {
		case DB_NULL:
			sqlite3_bind_null(stmt, i + 1);
			break;
		case DB_INT:
			sqlite3_bind_int64(stmt, i + 1, params[i].i);
			break;
		case DB_TEXT:
			/*
			 * SQLITE_STATIC: the caller's text outlives this call, and
			 * the bindings are cleared before it returns; no copy.
			 */
			if (params[i].text)
				sqlite3_bind_text(stmt, i + 1, params[i].text, -1, SQLITE_STATIC);
			else
				sqlite3_bind_null(stmt, i + 1);
			break;
		}
	}
	int ncols = sqlite3_column_count(stmt);
	size_t cap = 0;
	int nrows = 0;
	char **cells = NULL;
	while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
		if (!out)
			continue;
		if ((size_t)(nrows + 1) * (size_t)ncols > cap) {
			cap = cap ? cap * 2 : (size_t)ncols * 16;
			cells = xrealloc(cells, cap * sizeof *cells);
		}
		for (int col = 0; col < ncols; col++) {
			const unsigned char *t = sqlite3_column_text(stmt, col);
			cells[nrows * ncols + col] =
			    t ? xstrndup((const char *)t, (size_t)sqlite3_column_bytes(stmt, col))
			      : NULL;
		}
		nrows++;
	}
	int result = map_rc(rc);
	if (result != DB_OK && (rc & 0xff) != SQLITE_CONSTRAINT)
		log_error("sqlite step: %s", sqlite3_errmsg(c->db));
	int64_t changes = sqlite3_changes64(c->db);
	sqlite3_reset(stmt);
	sqlite3_clear_bindings(stmt);
	if (!is_cached(c, stmt))
		sqlite3_finalize(stmt);
	if (result != DB_OK) {
		for (int i = 0; cells && i < nrows * ncols; i++)
			free(cells[i]);
		free(cells);
		return result;
	}
	if (out) {
		*out = db_result_new(nrows, ncols, cells);
		(*out)->changes = changes;
	} else {
		free(cells);
	}
	return DB_OK;
}

static int sqlite_set_durable(struct db_conn *base, bool durable)
{
	struct sqlite_conn *c = (struct sqlite_conn *)base;
	if (c->durable == durable)
		return DB_OK;
	int rc = sqlite_exec_script(base, durable ? "PRAGMA synchronous=FULL"
	                                          : "PRAGMA synchronous=NORMAL");
	if (rc == DB_OK)
		c->durable = durable;
	return rc;
}

static int sqlite_begin(struct db_conn *base)
{
	return sqlite_exec_script(base, "BEGIN IMMEDIATE");
}

static int sqlite_commit(struct db_conn *base)
{
	return sqlite_exec_script(base, "COMMIT");
}

static void sqlite_rollback(struct db_conn *base)
{
	struct sqlite_conn *c = (struct sqlite_conn *)base;
	if (!sqlite3_get_autocommit(c->db))
		sqlite3_exec(c->db, "ROLLBACK", NULL, NULL, NULL);
}

static bool sqlite_alive(struct db_conn *base)
{
	struct sqlite_conn *c = (struct sqlite_conn *)base;
	/*
	 * Open the file afresh: an open descriptor keeps working after the file
	 * is removed, replaced or made unreadable, and readiness must notice.
	 */
	sqlite3 *db = NULL;
	bool ok = false;
	if (sqlite3_open_v2(c->path, &db, SQLITE_OPEN_READONLY | SQLITE_OPEN_NOMUTEX, NULL) ==
	    SQLITE_OK) {
		sqlite3_stmt *stmt = NULL;
		if (sqlite3_prepare_v2(db, "SELECT count(*) FROM schema_migrations", -1, &stmt,
		                       NULL) == SQLITE_OK)
			ok = sqlite3_step(stmt) == SQLITE_ROW;
		sqlite3_finalize(stmt);
	}
	sqlite3_close(db);
	return ok;
}

const struct db_driver db_sqlite_driver = {
    .scheme = "sqlite",
    .dialect = "sqlite",
    .connect = sqlite_connect,
    .disconnect = sqlite_disconnect,
    .exec_script = sqlite_exec_script,
    .query = sqlite_query,
    .begin = sqlite_begin,
    .commit = sqlite_commit,
    .rollback = sqlite_rollback,
    .alive = sqlite_alive,
    .set_durable = sqlite_set_durable,
};
