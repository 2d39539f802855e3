/*
 * db_postgres.c: the PostgreSQL driver (see db.h), over libpq.
 *
 * store.c writes its SQL once with '?' placeholders; this driver rewrites
 * them to $1..$n (outside quoted literals) and sends every value as text
 * with an explicit type (text or int8), so expressions such as `? IS NULL`
 * have a type on the server. Results come back as text cells, like SQLite's.
 *
 * Each connection keeps a small cache of named prepared statements keyed by
 * the SQL text's address and the parameter types (store.c passes string
 * literals). On loopback that halved the time of simple reads (about 75 to
 * 35 us for an org by id, 115 to 65 us for a key list), also with
 * plan_cache_mode=force_custom_plan, which this driver sets so that each
 * call is still planned with its values. A cached statement is not
 * translated again either: for the request log's 64-row INSERT (832
 * placeholders) that was most of the client's cost per row.
 *
 * Bounded waits ([store] statement_timeout_ms, db_options): the server
 * cancels a statement that runs longer (SQLSTATE 57014, DB_ERROR), and
 * because a server that is gone cannot cancel anything, the connection also
 * gets TCP keepalives and tcp_user_timeout scaled to the same time: a dead
 * peer or path fails the call in about 1.5 times the timeout instead of the
 * minute or more that kernel defaults and our old keepalives (30 s idle)
 * gave. Migrations and purges lift the timeout for their transaction
 * (pg_unbounded, SET LOCAL).
 *
 * Error mapping: SQLSTATE class 23 is DB_CONSTRAINT; a lost connection,
 * class 08 or a server shutting down (57P01-57P03) is DB_UNAVAILABLE, so the
 * store's pool drops the connection and reconnects on a later call.
 */
#include "store/db.h"

#include "core/alloc.h"
#include "core/log.h"
#include "core/str.h"

#include <libpq-fe.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define OID_UNKNOWN  0
#define OID_INT8     20
#define OID_TEXT     25
#define MAX_PARAMS   1024 /* the request log's 64-row INSERT has 832 */
#define STACK_PARAMS 64   /* more than this: pg_query's arrays are allocated */
#define STMT_CACHE   96

/* A key for the migration advisory lock: "pcl-migr" in ASCII. */
#define MIGRATE_LOCK_SQL                                                                           \
	"SET LOCAL lock_timeout = '120s'; SELECT pg_advisory_xact_lock(8098435497307236210); "     \
	"SET LOCAL lock_timeout = DEFAULT"

struct pg_stmt {
	const char *sql; /* the caller's SQL (compared by address, then text) */
	char *copy;      /* our copy of it: an address may be reused for other SQL */
	int n;
	Oid *types; /* n of them (NULL when n is 0) */
	char name[16];
};

struct pg_conn {
	struct db_conn base;
	PGconn *pg;
	struct pg_stmt cache[STMT_CACHE];
	int n_cached;
	unsigned next_stmt;
	bool in_tx;   /* between begin and commit/rollback */
	bool closing; /* the server sent a FATAL message */
};

/*
 * Notices, and errors the server sends while we are idle. A FATAL one is
 * the server saying goodbye (shutdown, terminated backend): remember it, so
 * the next call reconnects instead of using a connection about to close.
 */
static void pg_notice(void *arg, const PGresult *res)
{
	struct pg_conn *c = arg;
	const char *sev = PQresultErrorField(res, PG_DIAG_SEVERITY_NONLOCALIZED);
	const char *msg = PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY);
	if (sev && (strcmp(sev, "FATAL") == 0 || strcmp(sev, "PANIC") == 0))
		c->closing = true;
	log_debug("postgres: %s: %s", sev ? sev : "NOTICE", msg ? msg : "?");
}

/* Copy libpq's message (one line, no trailing newline) into err. */
static void copy_message(char *err, size_t cap, const char *prefix, const char *msg)
{
	size_t len = msg ? strlen(msg) : 0;
	while (len > 0 && (msg[len - 1] == '\n' || msg[len - 1] == ' '))
		len--;
	snprintf(err, cap, "%s%.*s", prefix, (int)len, msg ? msg : "");
	for (char *p = err; *p; p++)
		if (*p == '\n')
			*p = ' ';
}

/* n clamped to [lo, hi]. */
static int64_t clamp64(int64_t n, int64_t lo, int64_t hi)
{
	return n < lo ? lo : n > hi ? hi : n;
}

static int pg_connect(const char *url, bool create, const struct db_options *opt,
                      struct db_conn **out, char *err, size_t cap)
{
	(void)create;
	/*
	 * Validate the URL first: a malformed one is a configuration error
	 * (DB_ERROR), not an outage to retry.
	 */
	char *perr = NULL;
	PQconninfoOption *opts = PQconninfoParse(url, &perr);
	if (!opts) {
		copy_message(err, cap, "bad store url: ", perr ? perr : "out of memory");
		PQfreemem(perr);
		return DB_ERROR;
	}
	PQconninfoFree(opts);

	/*
	 * Entries before "dbname" are defaults the URL may override; the URL's
	 * own connect_timeout wins over ours. Keepalives notice a dead peer on
	 * an idle connection; with a statement timeout T they start after T/2
	 * (probes every T/4, at least 1 s) and tcp_user_timeout is T, so a
	 * call waiting on a dead connection fails in about 1.5 T (see the top).
	 * Custom plans for prepared statements: store.c's optional filters
	 * ("? IS NULL OR org_id = ?") need the values to use an index, and a
	 * generic plan would not know them.
	 */
	int64_t t_ms = opt ? opt->statement_timeout_ms : 0;
	char idle[24] = "30", interval[24] = "10", user_timeout[24] = "0", options[96];
	if (t_ms > 0) {
		str_i64(idle, clamp64((t_ms / 2 + 999) / 1000, 1, 30));
		str_i64(interval, clamp64((t_ms / 4 + 999) / 1000, 1, 10));
		str_i64(user_timeout, t_ms);
	}
	snprintf(options, sizeof options,
	         "-c plan_cache_mode=force_custom_plan -c statement_timeout=%lld", (long long)t_ms);
	static const char *const keys[] = {"connect_timeout",
	                                   "fallback_application_name",
	                                   "keepalives",
	                                   "keepalives_idle",
	                                   "keepalives_interval",
	                                   "keepalives_count",
	                                   "tcp_user_timeout",
	                                   "options",
	                                   "dbname",
	                                   "client_encoding",
	                                   NULL};
	const char *const vals[] = {"3",          "portcullis", "1", idle,   interval, "3",
	                            user_timeout, options,      url, "UTF8", NULL};
	PGconn *pg = PQconnectdbParams(keys, vals, 1);
	if (!pg)
		fatal("out of memory in PQconnectdbParams");
	if (PQstatus(pg) != CONNECTION_OK) {
		copy_message(err, cap, "cannot connect to PostgreSQL: ", PQerrorMessage(pg));
		PQfinish(pg);
		return DB_UNAVAILABLE;
	}
	struct pg_conn *c = xcalloc(1, sizeof *c);
	c->base.driver = &db_postgres_driver;
	c->pg = pg;
	PQsetNoticeReceiver(pg, pg_notice, c);
	*out = &c->base;
	return DB_OK;
}

static void clear_cache(struct pg_conn *c)
{
	for (int i = 0; i < c->n_cached; i++) {
		free(c->cache[i].copy);
		free(c->cache[i].types);
	}
	c->n_cached = 0;
}

static void pg_disconnect(struct db_conn *base)
{
	struct pg_conn *c = (struct pg_conn *)base;
	PQfinish(c->pg);
	clear_cache(c);
	free(c);
}

/*
 * Before work that starts outside a transaction: when the server has
 * closed this idle connection (a restart, a terminated backend), reconnect
 * in place so the call succeeds instead of failing once per pooled
 * connection. Nothing has been sent, so this is safe; inside a transaction
 * a lost connection must fail the transaction instead.
 */
static int revive(struct pg_conn *c)
{
	if (c->in_tx)
		return PQstatus(c->pg) == CONNECTION_OK ? DB_OK : DB_UNAVAILABLE;
	/*
	 * Read and parse whatever the server sent while we were idle (a
	 * goodbye sets closing); a second read sees an end of file that
	 * followed it.
	 */
	if (!c->closing && PQstatus(c->pg) == CONNECTION_OK && PQconsumeInput(c->pg) &&
	    PQisBusy(c->pg) == 0 && !c->closing && PQconsumeInput(c->pg) &&
	    PQstatus(c->pg) == CONNECTION_OK)
		return DB_OK;
	clear_cache(c); /* prepared statements die with the session */
	c->closing = false;
	PQreset(c->pg);
	if (PQstatus(c->pg) != CONNECTION_OK) {
		char msg[256];
		copy_message(msg, sizeof msg, "", PQerrorMessage(c->pg));
		log_warn("postgres: reconnect failed: %s", msg);
		return DB_UNAVAILABLE;
	}
	log_info("postgres: reconnected a closed connection");
	return DB_OK;
}

/*
 * The driver's code for a finished command (res may be NULL when libpq
 * could not send it). Logs failures other than constraint violations.
 */
static int result_rc(struct pg_conn *c, const PGresult *res, const char *what)
{
	if (res) {
		switch (PQresultStatus(res)) {
		case PGRES_COMMAND_OK:
		case PGRES_TUPLES_OK:
		case PGRES_EMPTY_QUERY:
			return DB_OK;
		default:
			break;
		}
	}
	const char *state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
	if (PQstatus(c->pg) != CONNECTION_OK || !state || strncmp(state, "08", 2) == 0 ||
	    strcmp(state, "57P01") == 0 || strcmp(state, "57P02") == 0 ||
	    strcmp(state, "57P03") == 0) {
		char msg[256];
		copy_message(msg, sizeof msg, "", PQerrorMessage(c->pg));
		log_warn("postgres %s: connection lost: %s", what, msg);
		return DB_UNAVAILABLE;
	}
	if (strncmp(state, "23", 2) == 0)
		return DB_CONSTRAINT;
	/*
	 * Only the primary message: DETAIL can quote row values, and rows hold
	 * hashes that must not reach a log line.
	 */
	const char *primary = PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY);
	log_error("postgres %s: %s (SQLSTATE %s)", what, primary ? primary : "?", state);
	return DB_ERROR;
}

static int pg_exec_script(struct db_conn *base, const char *sql)
{
	struct pg_conn *c = (struct pg_conn *)base;
	int rc = revive(c);
	if (rc != DB_OK)
		return rc;
	PGresult *res = PQexec(c->pg, sql);
	rc = result_rc(c, res, "script");
	PQclear(res);
	return rc;
}

/*
 * Rewrite '?' placeholders to $1..$n, leaving quoted literals and
 * identifiers alone. Returns a malloc'd string; *count gets the number.
 */
static char *translate(const char *sql, int *count)
{
	size_t len = strlen(sql), q = 0;
	for (size_t i = 0; i < len; i++)
		q += sql[i] == '?';
	char *out = xmalloc(len + q * 8 + 1); /* "$" + up to 7 digits per '?' */
	size_t o = 0;
	int n = 0;
	char quote = 0;
	for (size_t i = 0; i < len; i++) {
		char ch = sql[i];
		if (quote) {
			if (ch == quote)
				quote = 0; /* a doubled quote closes and reopens: same result */
		} else if (ch == '\'' || ch == '"') {
			quote = ch;
		} else if (ch == '?') {
			out[o++] = '$';
			o += str_i64(out + o, ++n); /* with its NUL, overwritten next */
			continue;
		}
		out[o++] = ch;
	}
	out[o] = '\0';
	*count = n;
	return out;
}

static bool same_types(const struct pg_stmt *s, const Oid *types, int n)
{
	return s->n == n && (n == 0 || memcmp(s->types, types, (size_t)n * sizeof *types) == 0);
}

/* The cached prepared statement for (sql, types), or NULL. */
static const struct pg_stmt *find_cached(const struct pg_conn *c, const char *sql, const Oid *types,
                                         int n)
{
	for (int i = 0; i < c->n_cached; i++)
		if (c->cache[i].sql == sql && same_types(&c->cache[i], types, n) &&
		    strcmp(c->cache[i].copy, sql) == 0)
			return &c->cache[i];
	return NULL;
}

/*
 * Prepare text (sql translated) as a new cached statement. Returns NULL
 * with *rc set when preparing failed, or with *rc == DB_OK when the cache
 * is full (the caller then runs the statement unnamed).
 */
static const struct pg_stmt *prepare_new(struct pg_conn *c, const char *sql, const char *text,
                                         const Oid *types, int n, int *rc)
{
	*rc = DB_OK;
	if (c->n_cached == STMT_CACHE)
		return NULL;
	struct pg_stmt *s = &c->cache[c->n_cached];
	snprintf(s->name, sizeof s->name, "pcl_%u", c->next_stmt++);
	PGresult *res = PQprepare(c->pg, s->name, text, n, types);
	*rc = result_rc(c, res, "prepare");
	PQclear(res);
	if (*rc != DB_OK)
		return NULL;
	s->sql = sql;
	s->copy = xstrdup(sql);
	s->n = n;
	s->types = NULL;
	if (n > 0) {
		s->types = xmalloc((size_t)n * sizeof *types);
		memcpy(s->types, types, (size_t)n * sizeof *types);
	}
	c->n_cached++;
	return s;
}

/* Forget a cached statement (after the server rejected it). */
static void forget_stmt(struct pg_conn *c, const struct pg_stmt *s)
{
	int i = (int)(s - c->cache);
	char sql[48];
	snprintf(sql, sizeof sql, "DEALLOCATE %s", s->name);
	if (PQtransactionStatus(c->pg) == PQTRANS_IDLE)
		PQclear(PQexec(c->pg, sql));
	free(c->cache[i].copy);
	free(c->cache[i].types);
	c->cache[i] = c->cache[--c->n_cached];
}

/* Copy a result's rows into a db_result. */
static struct db_result *materialise(PGresult *res)
{
	int nrows = PQntuples(res), ncols = PQnfields(res);
	size_t ncells = (size_t)nrows * (size_t)ncols;
	char **cells = xcalloc(ncells ? ncells : 1, sizeof *cells);
	for (int row = 0; row < nrows; row++)
		for (int col = 0; col < ncols; col++)
			if (!PQgetisnull(res, row, col))
				cells[(size_t)row * (size_t)ncols + (size_t)col] = xstrndup(
				    PQgetvalue(res, row, col), (size_t)PQgetlength(res, row, col));
	struct db_result *r = db_result_new(nrows, ncols, cells);
	int64_t changes;
	const char *tuples = PQcmdTuples(res);
	if (tuples && *tuples && parse_int64_z(tuples, 0, INT64_MAX, &changes) == 0)
		r->changes = changes;
	return r;
}

static int pg_query(struct db_conn *base, const char *sql, const struct db_param *params, int n,
                    struct db_result **out)
{
	struct pg_conn *c = (struct pg_conn *)base;
	Oid stack_types[STACK_PARAMS];
	const char *stack_values[STACK_PARAMS];
	char stack_ints[STACK_PARAMS][STR_I64_MAX];
	Oid *types = stack_types;
	const char **values = stack_values;
	char(*ints)[STR_I64_MAX] = stack_ints;
	int stack_lengths[STACK_PARAMS], stack_formats[STACK_PARAMS];
	int *lengths = stack_lengths, *formats = stack_formats;
	bool sized = false; /* a DB_TEXT_LEN parameter: lengths and formats are used */
	PGresult *res = NULL;
	int count = 0, rc;
	char *text = NULL;

	if (out)
		*out = NULL;
	rc = revive(c);
	if (rc != DB_OK)
		return rc;
	if (n < 0 || n > MAX_PARAMS) {
		log_error("postgres: %d parameters (at most %d)", n, MAX_PARAMS);
		return DB_ERROR;
	}
	if (n > STACK_PARAMS) {
		types = xmalloc((size_t)n * sizeof *types);
		values = xmalloc((size_t)n * sizeof *values);
		ints = xmalloc((size_t)n * sizeof *ints);
		lengths = xmalloc((size_t)n * sizeof *lengths);
		formats = xmalloc((size_t)n * sizeof *formats);
	}
	for (int i = 0; i < n; i++) {
		lengths[i] = 0;
		formats[i] = 0;
		switch (params[i].type) {
		case DB_NULL:
			types[i] = OID_UNKNOWN;
			values[i] = NULL;
			break;
		case DB_INT:
			types[i] = OID_INT8;
			str_i64(ints[i], params[i].i); /* printf's text, without printf */
			values[i] = ints[i];
			break;
		case DB_TEXT_LEN:
			/*
			 * Text's binary form is its bytes: sent with its length, so it needs no
			 * NUL after it (the server checks the encoding as for text).
			 */
			if (params[i].i < 0 || params[i].i > INT_MAX) {
				log_error("postgres: a text parameter of %lld bytes",
				          (long long)params[i].i);
				rc = DB_ERROR;
				goto out;
			}
			types[i] = OID_TEXT;
			values[i] = params[i].text;
			lengths[i] = (int)params[i].i;
			formats[i] = 1;
			sized = true;
			break;
		case DB_TEXT:
		default:
			types[i] = OID_TEXT;
			values[i] = params[i].text;
			break;
		}
	}
	/* Translated only to prepare it, or when the cache is full. */
	const struct pg_stmt *s = find_cached(c, sql, types, n);
	if (!s) {
		text = translate(sql, &count);
		if (count != n) {
			log_error("postgres: statement has %d placeholders but %d parameters",
			          count, n);
			rc = DB_ERROR;
			goto out;
		}
		s = prepare_new(c, sql, text, types, n, &rc);
		if (rc != DB_OK)
			goto out;
	}
	if (s)
		res = PQexecPrepared(c->pg, s->name, n, values, sized ? lengths : NULL,
		                     sized ? formats : NULL, 0);
	else
		res = PQexecParams(c->pg, text, n, types, values, sized ? lengths : NULL,
		                   sized ? formats : NULL, 0);
	rc = result_rc(c, res, "query");
	if (rc == DB_OK) {
		if (out)
			*out = materialise(res);
	} else if (s && rc == DB_ERROR) {
		/*
		 * E.g. "cached plan must not change result type" after a schema
		 * change: prepare afresh next time.
		 */
		forget_stmt(c, s);
	}
out:
	PQclear(res);
	free(text);
	if (types != stack_types) {
		free(types);
		free(values);
		free(ints);
		free(lengths);
		free(formats);
	}
	return rc;
}

static int pg_begin(struct db_conn *base)
{
	struct pg_conn *c = (struct pg_conn *)base;
	int rc = pg_exec_script(base, "BEGIN");
	c->in_tx = rc == DB_OK;
	return rc;
}

static int pg_commit(struct db_conn *base)
{
	struct pg_conn *c = (struct pg_conn *)base;
	/* COMMIT of a failed transaction "succeeds" as a ROLLBACK: refuse it. */
	if (PQtransactionStatus(c->pg) == PQTRANS_INERROR) {
		PQclear(PQexec(c->pg, "ROLLBACK"));
		c->in_tx = false;
		log_error("postgres: commit of a failed transaction");
		return DB_ERROR;
	}
	int rc = pg_exec_script(base, "COMMIT");
	c->in_tx = false;
	return rc;
}

static void pg_rollback(struct db_conn *base)
{
	struct pg_conn *c = (struct pg_conn *)base;
	PGTransactionStatusType ts = PQtransactionStatus(c->pg);
	if (ts == PQTRANS_INTRANS || ts == PQTRANS_INERROR)
		PQclear(PQexec(c->pg, "ROLLBACK"));
	c->in_tx = false;
}

static bool pg_alive(struct db_conn *base)
{
	struct pg_conn *c = (struct pg_conn *)base;
	if (revive(c) != DB_OK)
		return false;
	PGresult *res = PQexec(c->pg, "SELECT 1");
	bool ok = res && PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 1;
	PQclear(res);
	return ok;
}

static int pg_unbounded(struct db_conn *base)
{
	return pg_exec_script(base, "SET LOCAL statement_timeout = 0");
}

static int pg_migrate_lock(struct db_conn *base)
{
	/* Held until the migration transaction ends; other nodes wait. */
	return pg_exec_script(base, MIGRATE_LOCK_SQL);
}

const struct db_driver db_postgres_driver = {
    .scheme = "postgres",
    .dialect = "postgres",
    .connect = pg_connect,
    .disconnect = pg_disconnect,
    .exec_script = pg_exec_script,
    .query = pg_query,
    .begin = pg_begin,
    .commit = pg_commit,
    .rollback = pg_rollback,
    .alive = pg_alive,
    .migrate_lock = pg_migrate_lock,
    .unbounded = pg_unbounded,
};
