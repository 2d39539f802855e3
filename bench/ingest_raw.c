/*
 * ingest_raw.c: the machine's limit for the ingest write (bench/ingest.sh).
 *
 *   ingest_raw sqlite   FROM_DB  TO_DB  SCHEMA_SQL TX_ROWS SECONDS
 *   ingest_raw postgres FROM_URL TO_URL SCHEMA_SQL TX_ROWS SECONDS
 *
 * Linked against sqlite3 and libpq only, no Portcullis code. Takes one event
 * row Portcullis stored (FROM: its store after the benchmark run) as the
 * template, creates the tables in TO with SCHEMA_SQL (migrations 0006 and
 * 0015's form for the store, as ingest.sh passes them), then
 * for SECONDS writes the same rows as store_events.c: per transaction of
 * TX_ROWS events, the event_dedupe claims (the same upsert with RETURNING),
 * the events, and an event_adids row per event when the template has one;
 * each in multi-row statements of 64, 32, ..., 1 rows, prepared once.
 * Every row gets a fresh id and messageId. SQLite: WAL, synchronous=FULL
 * and BEGIN IMMEDIATE as db_sqlite.c; PostgreSQL: the server's settings.
 * Prints "rows N tx T seconds S per_s R".
 */
#include <libpq-fe.h>
#include <sqlite3.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define KMAX    6 /* statements of up to 1 << KMAX rows, as store_int.h */
#define ROWSMAX (1 << KMAX)
#define TCOLS   12 /* the template's columns */

static bool pg;
static sqlite3 *sdb;
static PGconn *pdb;

static void die(const char *fmt, ...) __attribute__((noreturn, format(printf, 1, 2)));
static void die(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fputs("ingest_raw: ", stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
	exit(1);
}

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static char *slurp(const char *path)
{
	FILE *f = fopen(path, "rb");
	if (!f)
		die("cannot read %s", path);
	fseek(f, 0, SEEK_END);
	long n = ftell(f);
	fseek(f, 0, SEEK_SET);
	char *s = malloc((size_t)n + 1);
	if (!s || fread(s, 1, (size_t)n, f) != (size_t)n)
		die("cannot read %s", path);
	s[n] = 0;
	fclose(f);
	return s;
}

static void exec_sql(const char *sql)
{
	if (pg) {
		PGresult *r = PQexec(pdb, sql);
		ExecStatusType st = PQresultStatus(r);
		if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK)
			die("%s: %s", sql, PQerrorMessage(pdb));
		PQclear(r);
	} else {
		char *msg = NULL;
		if (sqlite3_exec(sdb, sql, NULL, NULL, &msg) != SQLITE_OK)
			die("%s: %s", sql, msg ? msg : sqlite3_errmsg(sdb));
	}
}

static bool table_exists(void)
{
	static const char q[] = "SELECT 1 FROM events LIMIT 0";
	if (pg) {
		PGresult *r = PQexec(pdb, q);
		bool ok = PQresultStatus(r) == PGRES_TUPLES_OK;
		PQclear(r);
		return ok;
	}
	return sqlite3_exec(sdb, q, NULL, NULL, NULL) == SQLITE_OK;
}

/* ---- the template row ---- */

static char tpl[TCOLS][40000]; /* org_id .. body (as text; NULL = "") */
static bool tpl_null[TCOLS];
static char adid[256];
static bool with_adid;

static const char tpl_sql[] = "SELECT org_id, project_id, key_id, type, event, user_id, "
                              "anonymous_id, email_sha256, phone_sha256, region, timestamp, body "
                              "FROM events ORDER BY id DESC LIMIT 1";
static const char adid_sql[] = "SELECT adid_sealed FROM event_adids LIMIT 1";

static void copy_col(char *dst, size_t cap, const char *src)
{
	if (strlen(src) >= cap)
		die("template column too long");
	strcpy(dst, src);
}

static void load_template(const char *from)
{
	if (pg) {
		PGconn *c = PQconnectdb(from);
		if (PQstatus(c) != CONNECTION_OK)
			die("cannot connect to the template store: %s", PQerrorMessage(c));
		PGresult *r = PQexec(c, tpl_sql);
		if (PQresultStatus(r) != PGRES_TUPLES_OK || PQntuples(r) != 1)
			die("no event in the template store");
		for (int i = 0; i < TCOLS; i++) {
			tpl_null[i] = PQgetisnull(r, 0, i);
			copy_col(tpl[i], sizeof tpl[i], PQgetvalue(r, 0, i));
		}
		PQclear(r);
		r = PQexec(c, adid_sql);
		with_adid = PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1;
		if (with_adid)
			copy_col(adid, sizeof adid, PQgetvalue(r, 0, 0));
		PQclear(r);
		PQfinish(c);
		return;
	}
	sqlite3 *db = NULL;
	sqlite3_stmt *s = NULL;
	if (sqlite3_open_v2(from, &db, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK ||
	    sqlite3_prepare_v2(db, tpl_sql, -1, &s, NULL) != SQLITE_OK ||
	    sqlite3_step(s) != SQLITE_ROW)
		die("no event in the template store %s", from);
	for (int i = 0; i < TCOLS; i++) {
		const unsigned char *v = sqlite3_column_text(s, i);
		tpl_null[i] = v == NULL;
		copy_col(tpl[i], sizeof tpl[i], v ? (const char *)v : "");
	}
	sqlite3_finalize(s);
	if (sqlite3_prepare_v2(db, adid_sql, -1, &s, NULL) == SQLITE_OK &&
	    sqlite3_step(s) == SQLITE_ROW) {
		with_adid = true;
		copy_col(adid, sizeof adid, (const char *)sqlite3_column_text(s, 0));
	}
	sqlite3_finalize(s);
	sqlite3_close(db);
}

/* ---- statements: KMAX + 1 sizes per table, numbered $n on PostgreSQL ---- */

enum { T_CLAIM, T_EVENT, T_ADID, T_COUNT };
static const char *const heads[T_COUNT] = {
    "INSERT INTO event_dedupe (project_id, message_id, received_at) VALUES ",
    "INSERT INTO events (id, org_id, project_id, key_id, message_id, type, event, user_id, "
    "anonymous_id, email_sha256, phone_sha256, region, timestamp, received_at, body) VALUES ",
    "INSERT INTO event_adids (event_id, project_id, adid_sealed, received_at) VALUES ",
};
static const int cols[T_COUNT] = {3, 15, 4};
static sqlite3_stmt *sstmt[T_COUNT][KMAX + 1];

static void stmt_name(char *buf, size_t cap, int t, int k)
{
	snprintf(buf, cap, "s%d_%d", t, k);
}

static void prepare_all(void)
{
	static char sql[ROWSMAX * 15 * 8 + 1024];
	for (int t = 0; t < T_COUNT; t++)
		for (int k = 0; k <= KMAX; k++) {
			size_t len = (size_t)snprintf(sql, sizeof sql, "%s", heads[t]);
			int p = 1;
			for (int r = 0; r < (1 << k); r++) {
				len += (size_t)snprintf(sql + len, sizeof sql - len, "%s(",
				                        r ? ", " : "");
				for (int c = 0; c < cols[t]; c++) {
					if (pg)
						len += (size_t)snprintf(sql + len, sizeof sql - len,
						                        "%s$%d", c ? ", " : "", p);
					else
						len += (size_t)snprintf(sql + len, sizeof sql - len,
						                        "%s?", c ? ", " : "");
					p++;
				}
				len += (size_t)snprintf(sql + len, sizeof sql - len, ")");
			}
			if (t == T_CLAIM) {
				char window[16];
				if (pg)
					snprintf(window, sizeof window, "$%d", p);
				else
					snprintf(window, sizeof window, "?");
				snprintf(
				    sql + len, sizeof sql - len,
				    " ON CONFLICT (project_id, message_id) DO UPDATE SET "
				    "received_at "
				    "= excluded.received_at WHERE event_dedupe.received_at <= "
				    "excluded.received_at - %s RETURNING project_id, message_id",
				    window);
			}
			if (pg) {
				char name[16];
				stmt_name(name, sizeof name, t, k);
				PGresult *r = PQprepare(pdb, name, sql, 0, NULL);
				if (PQresultStatus(r) != PGRES_COMMAND_OK)
					die("prepare: %s", PQerrorMessage(pdb));
				PQclear(r);
			} else if (sqlite3_prepare_v3(sdb, sql, -1, SQLITE_PREPARE_PERSISTENT,
			                              &sstmt[t][k], NULL) != SQLITE_OK) {
				die("prepare: %s", sqlite3_errmsg(sdb));
			}
		}
}

/* ---- one transaction ---- */

struct row {
	char id[32], mid[48], recv[24];
};

static struct row *rows;
static const char *vals[ROWSMAX * 15 + 1];
static bool nulls[ROWSMAX * 15 + 1];
static bool ints[ROWSMAX * 15 + 1]; /* bound as an integer on SQLite */

static void put(int *n, const char *v, bool null)
{
	vals[*n] = v;
	nulls[*n] = null;
	ints[*n] = false;
	(*n)++;
}

static void put_int(int *n, const char *v)
{
	put(n, v, false);
	ints[*n - 1] = true;
}

/* Fill the parameters of rows [from, from + count) of table t; returns their number. */
static int fill(int t, int from, int count)
{
	int n = 0;
	for (int i = from; i < from + count; i++) {
		const struct row *r = &rows[i];
		if (t == T_CLAIM) {
			put(&n, tpl[1], false);
			put(&n, r->mid, false);
			put_int(&n, r->recv);
		} else if (t == T_ADID) {
			put(&n, r->id, false);
			put(&n, tpl[1], false);
			put(&n, adid, false);
			put_int(&n, r->recv);
		} else {
			put(&n, r->id, false);
			put(&n, tpl[0], false);
			put(&n, tpl[1], false);
			put(&n, tpl[2], tpl_null[2]);
			put(&n, r->mid, false);
			for (int c = 3; c <= 9; c++)
				put(&n, tpl[c], tpl_null[c]);
			put_int(&n, tpl[10]); /* timestamp */
			put_int(&n, r->recv);
			put(&n, tpl[11], false); /* body */
		}
	}
	if (t == T_CLAIM)
		put_int(&n, "86400000"); /* the 24 h window */
	return n;
}

/* Run table t's statement of 1 << k rows from row `from`; returns the rows it returned. */
static int run(int t, int k, int from)
{
	int n = fill(t, from, 1 << k), got = 0;
	if (pg) {
		char name[16];
		stmt_name(name, sizeof name, t, k);
		const char *pv[ROWSMAX * 15 + 1];
		for (int i = 0; i < n; i++)
			pv[i] = nulls[i] ? NULL : vals[i];
		PGresult *r = PQexecPrepared(pdb, name, n, pv, NULL, NULL, 0);
		ExecStatusType st = PQresultStatus(r);
		if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK)
			die("insert: %s", PQerrorMessage(pdb));
		got = PQntuples(r);
		PQclear(r);
		return got;
	}
	sqlite3_stmt *s = sstmt[t][k];
	for (int i = 0; i < n; i++) {
		if (nulls[i])
			sqlite3_bind_null(s, i + 1);
		else if (ints[i])
			sqlite3_bind_int64(s, i + 1, strtoll(vals[i], NULL, 10));
		else
			sqlite3_bind_text(s, i + 1, vals[i], -1, SQLITE_STATIC);
	}
	int rc;
	while ((rc = sqlite3_step(s)) == SQLITE_ROW)
		got++;
	if (rc != SQLITE_DONE)
		die("insert: %s", sqlite3_errmsg(sdb));
	sqlite3_reset(s);
	return got;
}

/* All rows of one table in statements of 64, 32, ... rows (st_multi_run's split). */
static int run_all(int t, int n)
{
	int done = 0, got = 0;
	while (done < n) {
		int k = KMAX;
		while ((1 << k) > n - done)
			k--;
		got += run(t, k, done);
		done += 1 << k;
	}
	return got;
}

static const char b32[] = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";

int main(int argc, char **argv)
{
	if (argc != 7)
		die("usage: ingest_raw sqlite|postgres FROM TO SCHEMA_SQL TX_ROWS SECONDS");
	pg = strcmp(argv[1], "postgres") == 0;
	long rows_arg = strtol(argv[5], NULL, 10);
	double secs = strtod(argv[6], NULL);
	if (rows_arg < 1 || rows_arg > 1000000 || secs <= 0)
		die("TX_ROWS and SECONDS must be positive");
	int tx_rows = (int)rows_arg;
	load_template(argv[2]);
	if (pg) {
		pdb = PQconnectdb(argv[3]);
		if (PQstatus(pdb) != CONNECTION_OK)
			die("cannot connect: %s", PQerrorMessage(pdb));
	} else {
		if (sqlite3_open(argv[3], &sdb) != SQLITE_OK)
			die("cannot open %s", argv[3]);
		sqlite3_busy_timeout(sdb, 5000);
		exec_sql("PRAGMA journal_mode=WAL; PRAGMA foreign_keys=ON; "
		         "PRAGMA synchronous=FULL; PRAGMA temp_store=MEMORY;");
	}
	if (!table_exists()) { /* a second run into the same store keeps its rows */
		char *schema = slurp(argv[4]);
		exec_sql(schema);
		free(schema);
	}
	prepare_all();
	rows = calloc((size_t)tx_rows, sizeof *rows);
	if (!rows)
		die("out of memory");

	uint64_t seq = (uint64_t)now_ms() << 20; /* unique across runs into one store */
	long long total = 0, txs = 0;
	double start = now_s(), end = start;
	while (end - start < secs) {
		char recv[24];
		snprintf(recv, sizeof recv, "%lld", (long long)now_ms());
		for (int i = 0; i < tx_rows; i++) {
			struct row *r = &rows[i];
			uint64_t v = ++seq;
			char id[27];
			for (int d = 25; d >= 0; d--, v >>= 5)
				id[d] = b32[v & 31];
			id[26] = 0;
			snprintf(r->id, sizeof r->id, "ev_%s", id);
			snprintf(r->mid, sizeof r->mid, "raw-%lld-%llu", (long long)start,
			         (unsigned long long)seq);
			memcpy(r->recv, recv, sizeof recv);
		}
		exec_sql(pg ? "BEGIN" : "BEGIN IMMEDIATE");
		if (run_all(T_CLAIM, tx_rows) != tx_rows)
			die("a claim was not taken");
		run_all(T_EVENT, tx_rows);
		if (with_adid)
			run_all(T_ADID, tx_rows);
		exec_sql("COMMIT");
		total += tx_rows;
		txs++;
		end = now_s();
	}
	printf("rows %lld tx %lld seconds %.2f per_s %.0f adids %d\n", total, txs, end - start,
	       (double)total / (end - start), with_adid);
	if (pg)
		PQfinish(pdb);
	else
		sqlite3_close(sdb);
	return 0;
}
