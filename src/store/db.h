/*
 * db.h: the SQL driver interface under the store (internal to src/store/).
 *
 * A driver is a const table of function pointers (like curl's struct
 * Curl_ssl): db_sqlite.c and db_postgres.c. The domain queries in store.c
 * are written once in portable SQL with '?' placeholders; drivers translate
 * placeholders and types. Every value is bound, never spliced into SQL.
 * Results are materialised as text cells (NULL for SQL NULL).
 */
#ifndef PORTCULLIS_STORE_DB_H
#define PORTCULLIS_STORE_DB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* DB_TEXT_LEN: text of a known length (in i), not NUL-terminated (P_TEXTN). */
enum db_type { DB_NULL, DB_TEXT, DB_INT, DB_TEXT_LEN };

struct db_param {
	enum db_type type;
	const char *text;
	int64_t i;
};

/** A text parameter; NULL binds SQL NULL (still typed text, for PostgreSQL). */
static inline struct db_param P_TEXT(const char *s) {
	return (struct db_param){DB_TEXT, s, 0};
}
/** An integer parameter. */
static inline struct db_param
P_INT(int64_t v) {
	return (struct db_param){DB_INT, NULL, v};
}
#define P_NULL ((struct db_param){DB_NULL, NULL, 0})
/**
 * Text of len bytes at s, which needs no NUL after it (bound without a copy or a strlen: a
 * stored event's body, a slice of the request). It must hold no NUL byte (PostgreSQL
 * refuses one) and be valid UTF-8 for PostgreSQL; s may be NULL only with len 0 ("").
 */
static inline struct db_param
P_TEXTN(const char *s, size_t len) {
	return (struct db_param){DB_TEXT_LEN, s ? s : "", (int64_t)len};
}

/** A fully read result: rows x cols text cells. */
struct db_result {
	int nrows, ncols;
	char **cells;    /* nrows * ncols; NULL means SQL NULL */
	int64_t changes; /* rows changed by an INSERT/UPDATE/DELETE */
};

enum {
	DB_OK = 0,
	DB_ERROR = -1,       /* anything else: logged by the driver */
	DB_CONSTRAINT = -2,  /* unique/foreign-key violation */
	DB_UNAVAILABLE = -3, /* cannot reach the database */
};

struct db_conn;
struct db_maint;

/** How connections are made (zero: the defaults). */
struct db_options {
	/*
	 * PostgreSQL: statement_timeout, and TCP keepalives plus
	 * tcp_user_timeout scaled to it so a dead connection fails too; 0 = none.
	 */
	int64_t statement_timeout_ms;
	/*
	 * SQLite: the store's WAL checkpointer (driver->maint_start), NULL: none. A connection
	 * made with one leaves checkpoints to it (wal_autocheckpoint off) and tells it, at each
	 * commit, how large the WAL has grown; without one SQLite checkpoints in the commit.
	 */
	struct db_maint *maint;
};

/** When the checkpointer works (store_options' wal_* fields; 0: the default). */
struct db_maint_options {
	int pages, limit_pages, interval_ms;
};

/** What a checkpointer did, for tests. */
struct db_maint_stats {
	int64_t passive, restart, busy; /* checkpoints run; busy: a RESTART that could not */
	int64_t max_frames;             /* the largest WAL (pages) a commit reported */
};

struct db_driver {
	const char *scheme;
	const char *dialect; /* "sqlite" or "postgres": selects migration variants */
	/* create: make a missing database (SQLite: only on the first open, so a file
	 * that vanished later is an outage, not a silent empty database). */
	int (*connect)(const char *url, bool create, const struct db_options *opt,
	               struct db_conn **out, char *err, size_t cap);
	void (*disconnect)(struct db_conn *c);
	/* Run one or more statements without parameters (migrations). */
	int (*exec_script)(struct db_conn *c, const char *sql);
	/* Run one statement with bound parameters; *out may be NULL to discard rows. */
	int (*query)(struct db_conn *c, const char *sql, const struct db_param *params, int n,
	             struct db_result **out);
	/* Begin a transaction that takes the write lock at once. */
	int (*begin)(struct db_conn *c);
	int (*commit)(struct db_conn *c);
	void (*rollback)(struct db_conn *c);
	/* True when the connection is usable. */
	bool (*alive)(struct db_conn *c);
	/*
	 * Optional (NULL: none needed). Called right after begin in each
	 * migration transaction: serialises migrations across nodes until the
	 * transaction ends (PostgreSQL: an advisory transaction lock).
	 */
	int (*migrate_lock)(struct db_conn *c);
	/*
	 * Optional (NULL: every commit is durable). Outside a transaction: whether
	 * the commits from here on must survive a power or OS failure once
	 * acknowledged (SQLite: synchronous=FULL, the default of a new connection)
	 * or may be lost in one (synchronous=NORMAL: high-volume records only).
	 */
	int (*set_durable)(struct db_conn *c, bool durable);
	/*
	 * Optional (NULL: no statement timeout to lift). Right after begin: no
	 * statement timeout until the transaction ends (migrations, purges).
	 */
	int (*unbounded)(struct db_conn *c);
	/*
	 * Optional (NULL: the database needs no helper). The store's background helper for
	 * the database at url (SQLite: the WAL checkpointer thread, which opens a connection of
	 * its own when it first works); NULL when it cannot start (connections then checkpoint
	 * in their commits, as SQLite does by default). maint_stop, after every connection made
	 * with it is closed: stop and join the thread, checkpoint the whole WAL and truncate
	 * it (TRUNCATE), close and free.
	 */
	struct db_maint *(*maint_start)(const char *url, const struct db_maint_options *o);
	void (*maint_stop)(struct db_maint *m);
	void (*maint_stats)(struct db_maint *m, struct db_maint_stats *out);
};

struct db_conn {
	const struct db_driver *driver;
};

extern const struct db_driver db_sqlite_driver;
extern const struct db_driver db_postgres_driver;

struct store;
/**
 * For tests: run fn on one of st's pooled connections (the next one a
 * store call would use) and return what it returns.
 */
int store_with_conn(struct store *st, int (*fn)(struct db_conn *c, void *arg), void *arg);

/** For tests: what st's checkpointer did (all zero when it has none). */
void store_maint_stats(struct store *st, struct db_maint_stats *out);

/** Free a result (NULL ok). */
void db_result_free(struct db_result *r);
/** Cell text or NULL. */
const char *db_text(const struct db_result *r, int row, int col);
/** Cell text, or "" for NULL. */
const char *db_text_or_empty(const struct db_result *r, int row, int col);
/** Cell as an integer (0 for NULL or non-numeric). */
int64_t db_int(const struct db_result *r, int row, int col);
/** Cell as an integer, or def when NULL. */
int64_t db_int_or(const struct db_result *r, int row, int col, int64_t def);
/** Build a result from cells (takes ownership of cells); for drivers. */
struct db_result *db_result_new(int nrows, int ncols, char **cells);

#endif
