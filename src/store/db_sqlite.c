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
 *
 * WAL checkpoints: SQLite by default checkpoints inside the commit that
 * takes the WAL past 1000 pages, on the committing thread: the writer (the
 * ingest's group committer) copies pages into the database file and fsyncs
 * it before its next transaction. A store instead starts one checkpointer
 * (sqlite_maint_start, a bg_thread with a connection of its own) and its
 * connections run with wal_autocheckpoint off: each commit's WAL hook
 * compares the WAL's size with what the checkpointer last copied and wakes
 * it once 1000 pages (the same threshold) are waiting; it also runs every
 * second. It checkpoints PASSIVE: it copies what no reader still needs
 * without taking the write lock, so writers go on appending meanwhile. A
 * WAL starts over from its beginning only when a writer begins while
 * everything is copied, which a busy writer rarely leaves time for; so once
 * the WAL holds 10000 pages the commit that found it so runs RESTART in its
 * hook (outside its transaction; the checkpointer's thread cannot: a writer
 * committing without a pause takes the write lock back before it every
 * time): it copies the rest (little, after the passive runs) and makes the
 * next write start the WAL over, so the file stays bounded, at one short
 * checkpoint on the writer per 10000 pages instead of one per 1000. At
 * close, after the store's other connections, the checkpointer checkpoints
 * TRUNCATE (the WAL emptied even when another process keeps the database
 * open) and closes last.
 */
#include "store/db.h"

#include "core/alloc.h"
#include "core/log.h"
#include "core/str.h"
#include "core/thread.h"

#include <sqlite3.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define STMT_CACHE 96

#define CKPT_PAGES       1000 /* SQLite's SQLITE_DEFAULT_WAL_AUTOCHECKPOINT */
#define CKPT_LIMIT_PAGES 10000
#define CKPT_INTERVAL_MS 1000
#define CKPT_BUSY_MS     2000 /* how long the closing TRUNCATE waits for writers and readers */

/* The store's checkpointer (see the top of the file). */
struct db_maint {
	struct bg_thread t;
	pthread_mutex_t lock; /* the thread's */
	char *path;
	sqlite3 *db; /* the thread's; opened when it first works */
	int pages, limit_pages, interval_ms;
	atomic_int copied; /* WAL frames the last checkpoint had copied */
	atomic_bool asked; /* a commit woke the thread since its last run */
	atomic_bool open_warned;
	atomic_llong passive, restart, busy, max_frames;
};

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

/* ---------- the checkpointer ---------- */

/*
 * After each commit, on the committing thread, outside the transaction:
 * frames = the WAL's size in pages. Wake the checkpointer when pages are
 * waiting (once per run); at the limit, checkpoint RESTART here.
 */
static int wal_hook(void *arg, sqlite3 *db, const char *name, int frames)
{
	struct db_maint *m = arg;
	long long seen = atomic_load_explicit(&m->max_frames, memory_order_relaxed);
	if (frames > seen)
		atomic_store_explicit(&m->max_frames, frames, memory_order_relaxed);
	int copied = atomic_load_explicit(&m->copied, memory_order_relaxed);
	if (frames < copied)
		copied = 0; /* the WAL started over */
	if (frames >= m->limit_pages) {
		/*
		 * The bound, here: a RESTART from the checkpointer's thread waits for the
		 * write lock, and a writer that commits without a pause takes it back first
		 * every time. This writer holds no lock now; most of the WAL is copied already.
		 */
		int rc = sqlite3_wal_checkpoint_v2(db, name, SQLITE_CHECKPOINT_RESTART, NULL, NULL);
		atomic_fetch_add(rc == SQLITE_OK ? &m->restart : &m->busy, 1);
		return SQLITE_OK;
	}
	if (frames - copied >= m->pages && !atomic_exchange(&m->asked, true))
		bg_thread_wake(&m->t);
	return SQLITE_OK;
}

/* A store connection: no checkpoint in its commits, the hook instead. */
static int attach_maint(sqlite3 *db, struct db_maint *m)
{
	int rc = sqlite3_exec(db, "PRAGMA wal_autocheckpoint=0", NULL, NULL, NULL);
	if (rc == SQLITE_OK)
		sqlite3_wal_hook(db, wal_hook, m);
	return rc;
}

/* The thread's connection, opened on first use (false: not now; quiet: say nothing). */
static bool maint_db(struct db_maint *m, bool quiet)
{
	if (m->db)
		return true;
	sqlite3 *db = NULL;
	if (sqlite3_open_v2(m->path, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, NULL) !=
	        SQLITE_OK ||
	    /* a first read opens the WAL: until then a checkpoint does nothing */
	    sqlite3_exec(db, "PRAGMA wal_autocheckpoint=0; SELECT count(*) FROM sqlite_master",
	                 NULL, NULL, NULL) != SQLITE_OK) {
		if (!quiet && !atomic_exchange(&m->open_warned, true))
			log_warn("sqlite checkpointer: cannot open %s: %s", m->path,
			         db ? sqlite3_errmsg(db) : "?");
		sqlite3_close(db);
		return false;
	}
	atomic_store(&m->open_warned, false);
	sqlite3_busy_timeout(db, CKPT_BUSY_MS);
	m->db = db;
	return true;
}

/* One run: a PASSIVE checkpoint. */
static void maint_run(struct db_maint *m)
{
	atomic_store(&m->asked, false);
	if (!maint_db(m, false))
		return;
	int frames = 0, copied = 0;
	int rc =
	    sqlite3_wal_checkpoint_v2(m->db, NULL, SQLITE_CHECKPOINT_PASSIVE, &frames, &copied);
	atomic_fetch_add(&m->passive, 1);
	if (rc == SQLITE_OK || rc == SQLITE_BUSY)
		atomic_store(&m->copied, copied > 0 ? copied : 0);
	else
		log_warn("sqlite checkpointer: %s", sqlite3_errmsg(m->db));
}

static void maint_main(struct bg_thread *t, void *arg)
{
	struct db_maint *m = arg;
	while (bg_thread_wait(t, m->interval_ms)) {
		pthread_mutex_unlock(&m->lock);
		maint_run(m);
		pthread_mutex_lock(&m->lock);
	}
}

static struct db_maint *sqlite_maint_start(const char *url, const struct db_maint_options *o)
{
	const char *path = url + strlen("sqlite://");
	if (!*path)
		return NULL; /* connect says why */
	struct db_maint *m = xcalloc(1, sizeof *m);
	m->path = xstrdup(path);
	m->pages = o && o->pages > 0 ? o->pages : CKPT_PAGES;
	m->limit_pages = o && o->limit_pages > 0 ? o->limit_pages : CKPT_LIMIT_PAGES;
	m->interval_ms = o && o->interval_ms > 0 ? o->interval_ms : CKPT_INTERVAL_MS;
	pthread_mutex_init(&m->lock, NULL);
	if (bg_thread_start(&m->t, "sqlite-ckpt", &m->lock, maint_main, m) != 0) {
		log_warn("sqlite checkpointer: no thread; commits checkpoint themselves");
		pthread_mutex_destroy(&m->lock);
		free(m->path);
		free(m);
		return NULL;
	}
	return m;
}

static void sqlite_maint_stop(struct db_maint *m)
{
	bg_thread_stop(&m->t);
	if (maint_db(m, true)) { /* quiet: a store whose open failed has no file */
		int rc =
		    sqlite3_wal_checkpoint_v2(m->db, NULL, SQLITE_CHECKPOINT_TRUNCATE, NULL, NULL);
		if (rc != SQLITE_OK && rc != SQLITE_BUSY)
			log_warn("sqlite checkpointer: %s", sqlite3_errmsg(m->db));
	}
	sqlite3_close(m->db);
	pthread_mutex_destroy(&m->lock);
	free(m->path);
	free(m);
}

static void sqlite_maint_stats(struct db_maint *m, struct db_maint_stats *out)
{
	out->passive = atomic_load(&m->passive);
	out->restart = atomic_load(&m->restart);
	out->busy = atomic_load(&m->busy);
	out->max_frames = atomic_load(&m->max_frames);
}

/* ---------- connections ---------- */

static int sqlite_connect(const char *url, bool create, const struct db_options *opt,
                          struct db_conn **out, char *err, size_t cap)
{
	/* no statement timeout: one writer, and the busy timeout bounds the wait */
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
	if (opt && opt->maint && attach_maint(db, opt->maint) != SQLITE_OK) {
		snprintf(err, cap, "cannot use %s: %s", path, sqlite3_errmsg(db));
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
		case DB_TEXT_LEN: /* the same, with its length: no strlen, no NUL needed */
			sqlite3_bind_text64(stmt, i + 1, params[i].text,
			                    (sqlite3_uint64)params[i].i, SQLITE_STATIC,
			                    SQLITE_UTF8);
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
    .maint_start = sqlite_maint_start,
    .maint_stop = sqlite_maint_stop,
    .maint_stats = sqlite_maint_stats,
};
