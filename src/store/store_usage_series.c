/*
 * store_usage_series.c: the reader's half of the usage rollups
 * (store_usage.h): the series compacted from usage_hour for closed hours
 * (migrations/0013_usage_series.sql) and the query that reads them.
 *
 * A series row is one hour of one dimension's value for a project or a
 * whole organisation, so a project's 30 days by hour are 720 rows whatever
 * the traffic, where usage_hour holds one cell per combination of every
 * dimension (about one per request-log row when traffic is spread thin).
 * A query reads the series for the hours before usage_compacted.through and
 * usage_hour from there on, in one statement (one snapshot on both
 * backends). The compaction runs on the retention thread, a few hours per
 * transaction; the request-log writer only marks an hour it adds rows to
 * after compaction (st_usage_mark_late_tx) and the next compaction
 * rebuilds that hour. On PostgreSQL the writer holds usage_compacted FOR
 * SHARE and the compaction FOR UPDATE, so no batch can slip between a
 * compaction's read of an hour and its advancing of through.
 */
#include "store/store_usage.h"

#include "core/clock.h"
#include "store/db.h"
#include "store/store_int.h"

#include <stdio.h>
#include <string.h>

/* Hours compacted per transaction: short write locks on SQLite. */
#define COMPACT_CHUNK_HOURS 6
/* Late hours rebuilt per transaction. */
#define DIRTY_BATCH 8

#define ALL_ORGS "(SELECT id FROM orgs UNION ALL SELECT '')"
#define THROUGH  "(SELECT through FROM usage_compacted WHERE id = 1)"

/* A group's series dim, and its value as usage_hour's column expression (text). */
static const char *const dims[] = {
    [USAGE_BY_NONE] = "",       [USAGE_BY_PROJECT] = "project", [USAGE_BY_KEY] = "key",
    [USAGE_BY_ROUTE] = "route", [USAGE_BY_STATUS] = "status",   [USAGE_BY_REGION] = "region",
};
static const char *const value_of[] = {
    [USAGE_BY_NONE] = "''",
    [USAGE_BY_PROJECT] = "project_id",
    [USAGE_BY_KEY] = "key_id",
    [USAGE_BY_ROUTE] = "route",
    [USAGE_BY_STATUS] = "CAST(status AS TEXT)",
    [USAGE_BY_REGION] = "region",
};
#define N_GROUPS ((int)(sizeof dims / sizeof dims[0]))

/* ---------- compaction ---------- */

/* The hours [from, to) of usage_hour into the series, both scopes, every dimension. */
static int build_hours(struct db_conn *c, int64_t from, int64_t to)
{
	struct db_param p[] = {P_INT(from), P_INT(to)};
	int rc = sq(c, "DELETE FROM usage_series WHERE bucket >= ? AND bucket < ?", p, 2, NULL);
	for (int scope = 0; rc == STORE_OK && scope < 2; scope++)
		for (int g = 0; rc == STORE_OK && g < N_GROUPS; g++) {
			/* Built from the constant tables above only; every value is bound. */
			char sql[1024];
			/* PostgreSQL groups by no constant: a scope's or a total's columns are left
			 * out. */
			snprintf(
			    sql, sizeof sql,
			    "INSERT INTO usage_series (org_id, project_id, dim, bucket, value, "
			    "requests, errors_4xx, errors_5xx, bytes_in, bytes_out, "
			    "duration_ms_sum) SELECT org_id, %s, '%s', bucket, %s, SUM(requests), "
			    "SUM(errors_4xx), SUM(errors_5xx), SUM(bytes_in), SUM(bytes_out), "
			    "SUM(duration_ms_sum) FROM usage_hour WHERE org_id IN " ALL_ORGS
			    " AND bucket >= ? AND bucket < ? GROUP BY org_id, bucket%s%s%s",
			    scope ? "'*'" : "project_id", dims[g], value_of[g],
			    scope ? "" : ", project_id", g == USAGE_BY_NONE ? "" : ", ",
			    g == USAGE_BY_NONE ? "" : value_of[g]);
			rc = sq(c, sql, p, 2, NULL);
		}
	return rc;
}

/* The first hour at or after from holding cells (one index seek per organisation), or -1. */
static int next_hour_with_cells(struct db_conn *c, int64_t from, int64_t *out)
{
	struct db_param p[] = {P_INT(from)};
	struct db_result *r = NULL;
	int rc =
	    sq(c,
	       "SELECT MIN(b) FROM (SELECT (SELECT h.bucket FROM usage_hour h WHERE h.org_id "
	       "= o.id AND h.bucket >= ? ORDER BY h.bucket LIMIT 1) AS b FROM " ALL_ORGS " o) s",
	       p, 1, &r);
	if (rc == STORE_OK)
		*out = r->nrows ? db_int_or(r, 0, 0, -1) : -1;
	db_result_free(r);
	return rc;
}

/*
 * usage_compacted.through, locked on PostgreSQL: FOR UPDATE by the
 * compaction, FOR SHARE by the writer (SQLite's write transactions are
 * serial already).
 */
static int read_through(struct db_conn *c, bool exclusive, int64_t *out)
{
	struct db_result *r = NULL;
	const char *sql = !st_is_pg(c) ? "SELECT through FROM usage_compacted WHERE id = 1"
	                  : exclusive
	                      ? "SELECT through FROM usage_compacted WHERE id = 1 FOR UPDATE"
	                      : "SELECT through FROM usage_compacted WHERE id = 1 FOR SHARE";
	int rc = sq(c, sql, NULL, 0, &r);
	*out = rc == STORE_OK && r->nrows ? db_int(r, 0, 0) : 0;
	db_result_free(r);
	return rc;
}

struct compact_step {
	int64_t upto; /* compact hours ending at or before this hour's start */
	int hours;    /* out: hours built */
	bool more;    /* out: work remains */
};

/* One transaction: up to DIRTY_BATCH late hours, or else up to COMPACT_CHUNK_HOURS new ones. */
static int compact_fn(struct db_conn *c, void *arg)
{
	struct compact_step *s = arg;
	int64_t through = 0;
	int rc = read_through(c, true, &through);
	struct db_result *r = NULL;
	if (rc == STORE_OK) {
		struct db_param lim[] = {P_INT(DIRTY_BATCH + 1)};
		rc = sq(c, "SELECT bucket FROM usage_dirty ORDER BY bucket LIMIT ?", lim, 1, &r);
	}
	if (rc == STORE_OK && r->nrows) {
		int n = r->nrows > DIRTY_BATCH ? DIRTY_BATCH : r->nrows;
		for (int i = 0; rc == STORE_OK && i < n; i++) {
			int64_t h = db_int(r, i, 0);
			struct db_param b[] = {P_INT(h)};
			rc = build_hours(c, h, h + USAGE_HOUR_MS);
			if (rc == STORE_OK)
				rc = sq(c, "DELETE FROM usage_dirty WHERE bucket = ?", b, 1, NULL);
		}
		s->hours += n;
		s->more = true; /* then look again: more late hours, or new ones */
		db_result_free(r);
		return rc;
	}
	db_result_free(r);
	int64_t next = -1;
	if (rc == STORE_OK && through < s->upto)
		rc = next_hour_with_cells(c, through, &next);
	if (rc != STORE_OK || through >= s->upto)
		return rc;
	int64_t to = s->upto;
	if (next >= 0 && next < s->upto) {
		to = next + COMPACT_CHUNK_HOURS * USAGE_HOUR_MS;
		if (to > s->upto)
			to = s->upto;
		rc = build_hours(c, next, to);
		s->hours += (int)((to - next) / USAGE_HOUR_MS);
	}
	/* No cells in [through, next): nothing to build there. */
	struct db_param t[] = {P_INT(to)};
	if (rc == STORE_OK)
		rc = sq(c, "UPDATE usage_compacted SET through = ? WHERE id = 1", t, 1, NULL);
	s->more = to < s->upto;
	return rc;
}

int store_usage_compact(struct store *st, int64_t upto_ms, int64_t budget_ms, int *hours,
                        bool *more)
{
	struct compact_step s = {.upto = usage_bucket(upto_ms, USAGE_HOUR)};
	int64_t deadline = clock_mono_ms() + budget_ms;
	int rc = STORE_OK;
	do {
		s.more = false;
		rc = st_maint_tx(st, compact_fn, &s);
	} while (rc == STORE_OK && s.more && clock_mono_ms() < deadline);
	if (hours)
		*hours = s.hours;
	if (more)
		*more = rc == STORE_OK && s.more;
	return rc;
}

int st_usage_mark_late_tx(struct db_conn *c, const int64_t *hours, int n)
{
	if (n <= 0)
		return STORE_OK;
	int64_t through = 0;
	int rc = read_through(c, false, &through);
	for (int i = 0; rc == STORE_OK && i < n; i++) {
		if (hours[i] >= through)
			continue;
		struct db_param p[] = {P_INT(hours[i])};
		rc = sq(
		    c,
		    "INSERT INTO usage_dirty (bucket) VALUES (?) ON CONFLICT (bucket) DO NOTHING",
		    p, 1, NULL);
	}
	return rc;
}

/* ---------- queries ---------- */

/*
 * The organisation condition and its parameter: the caller's organisation,
 * the named project's (an operator naming a project), or every one.
 */
static const char *org_cond(const struct usage_filter *f, struct db_param *p, int *np)
{
	if (f->org_id) {
		p[(*np)++] = P_TEXT(f->org_id);
		return "org_id = ?";
	}
	if (f->project_id) {
		p[(*np)++] = P_TEXT(f->project_id);
		return "org_id = (SELECT org_id FROM projects WHERE id = ?)";
	}
	return "org_id IN " ALL_ORGS;
}

#define SUMS "SUM(rq), SUM(e4), SUM(e5), SUM(bi), SUM(bo), SUM(d)"
#define CELL_COLS                                                                                  \
	"requests AS rq, errors_4xx AS e4, errors_5xx AS e5, bytes_in AS bi, bytes_out AS bo, "    \
	"duration_ms_sum AS d"

/*
 * Hours and days of no one key: the series before through, usage_hour
 * from it on. The statement is assembled from constant pieces only (which
 * dimension, which filters are present); every value is bound.
 */
static int series_sql(const struct usage_filter *f, char *sql, size_t cap, struct db_param *p,
                      int *np)
{
	const char *b = f->granularity == USAGE_DAY ? "bk - (bk % 86400000)" : "bk";
	int n =
	    snprintf(sql, cap,
	             "SELECT %s AS b, v, " SUMS " FROM (SELECT bucket AS bk, value AS v, " CELL_COLS
	             " FROM usage_series WHERE ",
	             b);
	n += snprintf(sql + n, cap - (size_t)n, "%s", org_cond(f, p, np));
	n += snprintf(
	    sql + n, cap - (size_t)n,
	    " AND project_id = ? AND dim = ? AND bucket >= ? AND bucket < ? AND bucket < " THROUGH
	    " UNION ALL SELECT bucket, %s, " CELL_COLS " FROM usage_hour WHERE ",
	    value_of[f->group_by]);
	p[(*np)++] = P_TEXT(f->project_id ? f->project_id : "*");
	p[(*np)++] = P_TEXT(dims[f->group_by]);
	p[(*np)++] = P_INT(f->since);
	p[(*np)++] = P_INT(f->until);
	n += snprintf(sql + n, cap - (size_t)n, "%s", org_cond(f, p, np));
	if (f->project_id) {
		n += snprintf(sql + n, cap - (size_t)n, " AND project_id = ?");
		p[(*np)++] = P_TEXT(f->project_id);
	}
	/*
	 * One lower bound, the later of since and through: given two, SQLite
	 * seeks by since and filters by through, reading the whole window's
	 * cells (143 ms at 10 million rows; 3 ms with one bound).
	 */
	n += snprintf(sql + n, cap - (size_t)n,
	              " AND bucket >= CASE WHEN ? > " THROUGH " THEN ? ELSE " THROUGH
	              " END AND bucket < ?) s GROUP BY b, v ORDER BY b, v LIMIT ?");
	p[(*np)++] = P_INT(f->since);
	p[(*np)++] = P_INT(f->since);
	p[(*np)++] = P_INT(f->until);
	p[(*np)++] = P_INT(f->limit);
	return n < (int)cap ? 0 : -1;
}

/* Minutes, or one key (its own cells are few: the key index): the cells themselves. */
static int cells_sql(const struct usage_filter *f, char *sql, size_t cap, struct db_param *p,
                     int *np)
{
	const char *table = f->granularity == USAGE_MINUTE ? "usage_minute" : "usage_hour";
	const char *b = f->granularity == USAGE_DAY ? "bucket - (bucket % 86400000)" : "bucket";
	int n = snprintf(sql, cap,
	                 "SELECT %s AS b, %s AS v, SUM(requests), SUM(errors_4xx), "
	                 "SUM(errors_5xx), SUM(bytes_in), SUM(bytes_out), SUM(duration_ms_sum) "
	                 "FROM %s WHERE bucket >= ? AND bucket < ?",
	                 b, value_of[f->group_by], table);
	p[(*np)++] = P_INT(f->since);
	p[(*np)++] = P_INT(f->until);
	if (f->org_id || !f->key_id) {
		n += snprintf(sql + n, cap - (size_t)n, " AND %s", org_cond(f, p, np));
	}
	if (f->key_id) {
		n += snprintf(sql + n, cap - (size_t)n, " AND key_id = ?");
		p[(*np)++] = P_TEXT(f->key_id);
	}
	if (f->project_id) {
		n += snprintf(sql + n, cap - (size_t)n, " AND project_id = ?");
		p[(*np)++] = P_TEXT(f->project_id);
	}
	n += snprintf(sql + n, cap - (size_t)n, " GROUP BY b, v ORDER BY b, v LIMIT ?");
	p[(*np)++] = P_INT(f->limit);
	return n < (int)cap ? 0 : -1;
}

int store_usage_query(struct store *st, const struct usage_filter *f,
                      void (*each)(void *ctx, const struct usage_point *p), void *ctx)
{
	char sql[2048];
	struct db_param p[12];
	int np = 0;
	if (f->group_by < 0 || f->group_by >= N_GROUPS)
		return STORE_ERROR;
	int built = f->key_id || f->granularity == USAGE_MINUTE
	                ? cells_sql(f, sql, sizeof sql, p, &np)
	                : series_sql(f, sql, sizeof sql, p, &np);
	if (built < 0)
		return STORE_ERROR;
	struct db_result *r = NULL;
	int rc = st_read_q(st, sql, p, np, &r);
	if (rc != STORE_OK)
		return rc;
	for (int i = 0; i < r->nrows; i++) {
		const char *v = db_text(r, i, 1);
		struct usage_point pt = {
		    .bucket = db_int(r, i, 0),
		    .value = v && v[0] ? v : NULL,
		    .requests = db_int(r, i, 2),
		    .errors_4xx = db_int(r, i, 3),
		    .errors_5xx = db_int(r, i, 4),
		    .bytes_in = db_int(r, i, 5),
		    .bytes_out = db_int(r, i, 6),
		    .duration_ms_sum = db_int(r, i, 7),
		};
		each(ctx, &pt);
	}
	db_result_free(r);
	return STORE_OK;
}
