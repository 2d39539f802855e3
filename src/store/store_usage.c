/*
 * store_usage.c: the usage rollups of store_usage.h. The writer's half
 * (st_usage_record_tx) folds a batch's inserted rows into cells in memory
 * and upserts each cell once, in multi-row statements of up to 64 cells
 * (like the request log itself), so a batch of 512 rows from a few keys
 * costs a handful of statements, not one per row. The reader's half
 * (store_usage_series.c) compacts closed hours into per-dimension series
 * and sums those; nothing ever reads request_log.
 */
#include "store/store_usage.h"

#include "core/alloc.h"
#include "core/clock.h"
#include "store/db.h"
#include "store/store_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---------- arithmetic ---------- */

static int64_t floor_to(int64_t ms, int64_t width)
{
	int64_t r = ms % width;
	return r < 0 ? ms - r - width : ms - r;
}

int64_t usage_bucket(int64_t ms, enum usage_granularity g)
{
	switch (g) {
	case USAGE_MINUTE:
		return floor_to(ms, USAGE_MINUTE_MS);
	case USAGE_HOUR:
		return floor_to(ms, USAGE_HOUR_MS);
	default:
		return floor_to(ms, USAGE_DAY_MS);
	}
}

/* Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm). */
static int64_t days_from_civil(int64_t y, int64_t m, int64_t d)
{
	y -= m <= 2;
	int64_t era = (y >= 0 ? y : y - 399) / 400;
	int64_t yoe = y - era * 400;
	int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
	int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + doe - 719468;
}

int64_t usage_month(int64_t ms, char out[8])
{
	int64_t z = floor_to(ms, USAGE_DAY_MS) / USAGE_DAY_MS + 719468;
	int64_t era = (z >= 0 ? z : z - 146096) / 146097;
	int64_t doe = z - era * 146097;
	int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
	int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
	int64_t mp = (5 * doy + 2) / 153;
	int64_t m = mp < 10 ? mp + 3 : mp - 9;
	int64_t y = yoe + era * 400 + (m <= 2);
	int64_t yy = y < 0 ? 0 : y % 10000;
	out[0] = (char)('0' + yy / 1000);
	out[1] = (char)('0' + yy / 100 % 10);
	out[2] = (char)('0' + yy / 10 % 10);
	out[3] = (char)('0' + yy % 10);
	out[4] = '-';
	out[5] = (char)('0' + m / 10);
	out[6] = (char)('0' + m % 10);
	out[7] = '\0';
	return days_from_civil(y, m, 1) * USAGE_DAY_MS;
}

void usage_cell_of_row(const struct store_request_row *r, struct usage_cell *out)
{
	memset(out, 0, sizeof *out);
	out->bucket = r->received_at;
	out->status = r->status;
	out->requests = 1;
	out->errors_4xx = r->status >= 400 && r->status < 500;
	out->errors_5xx = r->status >= 500 && r->status < 600;
	out->bytes_in = r->bytes_in;
	out->bytes_out = r->bytes_out;
	out->duration_ms_sum = r->duration_ms;
	out->refused = r->refusal[0] != '\0';
	out->first_at = out->last_at = r->received_at;
}

static int cell_cmp(const void *pa, const void *pb)
{
	const struct usage_cell *a = pa, *b = pb;
	if (a->bucket != b->bucket)
		return a->bucket < b->bucket ? -1 : 1;
	for (int i = 0; i < USAGE_DIMS; i++) {
		int c = strcmp(a->dim[i] ? a->dim[i] : "", b->dim[i] ? b->dim[i] : "");
		if (c)
			return c;
	}
	return (a->status > b->status) - (a->status < b->status);
}

/* Merge c into o (equal cells). */
static void cell_merge(struct usage_cell *o, const struct usage_cell *c)
{
	if ((!o->carried || !o->carried[0]) && c->carried)
		o->carried = c->carried;
	o->requests += c->requests;
	o->errors_4xx += c->errors_4xx;
	o->errors_5xx += c->errors_5xx;
	o->bytes_in += c->bytes_in;
	o->bytes_out += c->bytes_out;
	o->duration_ms_sum += c->duration_ms_sum;
	o->refused += c->refused;
	if (c->first_at < o->first_at)
		o->first_at = c->first_at;
	if (c->last_at > o->last_at)
		o->last_at = c->last_at;
}

/* Merge runs of equal neighbours in place; the new count. */
static int merge_runs(struct usage_cell *cells, int n)
{
	int out = 0;
	for (int i = 1; i < n; i++) {
		if (cell_cmp(&cells[out], &cells[i]) == 0)
			cell_merge(&cells[out], &cells[i]);
		else
			cells[++out] = cells[i];
	}
	return out + 1;
}

int usage_fold(struct usage_cell *cells, int n)
{
	if (n <= 1)
		return n;
	/*
	 * A batch's rows mostly come in runs from the same client: merging
	 * neighbours first leaves qsort a few cells instead of every row.
	 */
	n = merge_runs(cells, n);
	qsort(cells, (size_t)n, sizeof *cells, cell_cmp);
	return merge_runs(cells, n);
}

/* ---------- the writer ---------- */

/*
 * Statements for 1, 2, 4, ..., 64 cells, each one string literal (both
 * drivers cache statements by their text).
 */
#define X2(r)  r ", " r
#define X4(r)  X2(r) ", " X2(r)
#define X8(r)  X4(r) ", " X4(r)
#define X16(r) X8(r) ", " X8(r)
#define X32(r) X16(r) ", " X16(r)
#define X64(r) X32(r) ", " X32(r)
#define SIZES(head, row, tail)                                                                     \
	{                                                                                          \
		head row tail, head X2(row) tail, head X4(row) tail, head X8(row) tail,            \
		    head X16(row) tail, head X32(row) tail, head X64(row) tail                     \
	}
#define UP_KMAX     6
#define UP_MAX_ROWS (1 << UP_KMAX)

#define ROLLUP_HEAD(t)                                                                             \
	"INSERT INTO " t " (org_id, bucket, project_id, key_id, route, status, region, refusal, "  \
	"requests, errors_4xx, errors_5xx, bytes_in, bytes_out, duration_ms_sum) VALUES "
#define ROLLUP_ROW "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
#define ROLLUP_TAIL(t)                                                                             \
	" ON CONFLICT (org_id, bucket, project_id, key_id, route, status, region, refusal) DO "    \
	"UPDATE SET requests = " t ".requests + excluded.requests, errors_4xx = " t                \
	".errors_4xx + excluded.errors_4xx, errors_5xx = " t ".errors_5xx + excluded.errors_5xx, " \
	"bytes_in = " t ".bytes_in + excluded.bytes_in, bytes_out = " t                            \
	".bytes_out + excluded.bytes_out, duration_ms_sum = " t                                    \
	".duration_ms_sum + excluded.duration_ms_sum"
#define ROLLUP_COLS 14

static const char *const minute_sql[] =
    SIZES(ROLLUP_HEAD("usage_minute"), ROLLUP_ROW, ROLLUP_TAIL("usage_minute"));
static const char *const hour_sql[] =
    SIZES(ROLLUP_HEAD("usage_hour"), ROLLUP_ROW, ROLLUP_TAIL("usage_hour"));

#define AGENT_COLS 6
static const char *const agent_sql[] = SIZES(
    "INSERT INTO usage_key_agents (key_id, bucket, user_agent, org_id, requests, refused) VALUES ",
    "(?, ?, ?, ?, ?, ?)",
    " ON CONFLICT (key_id, bucket, user_agent) DO UPDATE SET org_id = CASE WHEN "
    "usage_key_agents.org_id = '' THEN excluded.org_id ELSE usage_key_agents.org_id END, "
    "requests = "
    "usage_key_agents.requests + excluded.requests, refused = usage_key_agents.refused + "
    "excluded.refused");

#define SEEN_COLS 7
static const char *const seen_sql[] = SIZES(
    "INSERT INTO usage_key_seen (key_id, kind, value, org_id, first_seen, last_seen, requests) "
    "VALUES ",
    "(?, ?, ?, ?, ?, ?, ?)",
    " ON CONFLICT (key_id, kind, value) DO UPDATE SET org_id = CASE WHEN "
    "usage_key_seen.org_id = '' THEN excluded.org_id ELSE usage_key_seen.org_id END, "
    "first_seen = CASE WHEN "
    "excluded.first_seen < usage_key_seen.first_seen THEN excluded.first_seen ELSE "
    "usage_key_seen.first_seen END, last_seen = CASE WHEN excluded.last_seen > "
    "usage_key_seen.last_seen THEN excluded.last_seen ELSE usage_key_seen.last_seen END, "
    "requests = usage_key_seen.requests + excluded.requests");

/* Dimension slots of each kind of cell. */
enum { D_ORG, D_PROJECT, D_KEY, D_ROUTE, D_REGION, D_REFUSAL }; /* rollups */
/*
 * Agents (bucket = hour) and seen cells (bucket 0) carry their org_id
 * outside the compared dimensions: their primary keys do not hold it, and
 * a key named by an attempt refused before its row was read (no
 * organisation) must fold into the same cell as its own traffic, or one
 * PostgreSQL upsert would touch a row twice.
 */
enum { A_KEY, A_AGENT };
enum { S_KEY, S_KIND, S_VALUE };

static struct db_param dim(const struct usage_cell *c, int i)
{
	return P_TEXT(c->dim[i] ? c->dim[i] : "");
}

static void rollup_params(const struct usage_cell *c, struct db_param *p)
{
	p[0] = dim(c, D_ORG);
	p[1] = P_INT(c->bucket);
	p[2] = dim(c, D_PROJECT);
	p[3] = dim(c, D_KEY);
	p[4] = dim(c, D_ROUTE);
	p[5] = P_INT(c->status);
	p[6] = dim(c, D_REGION);
	p[7] = dim(c, D_REFUSAL);
	p[8] = P_INT(c->requests);
	p[9] = P_INT(c->errors_4xx);
	p[10] = P_INT(c->errors_5xx);
	p[11] = P_INT(c->bytes_in);
	p[12] = P_INT(c->bytes_out);
	p[13] = P_INT(c->duration_ms_sum);
}

static void agent_params(const struct usage_cell *c, struct db_param *p)
{
	p[0] = dim(c, A_KEY);
	p[1] = P_INT(c->bucket);
	p[2] = dim(c, A_AGENT);
	p[3] = P_TEXT(c->carried ? c->carried : "");
	p[4] = P_INT(c->requests);
	p[5] = P_INT(c->refused);
}

static void seen_params(const struct usage_cell *c, struct db_param *p)
{
	p[0] = dim(c, S_KEY);
	p[1] = dim(c, S_KIND);
	p[2] = dim(c, S_VALUE);
	p[3] = P_TEXT(c->carried ? c->carried : "");
	p[4] = P_INT(c->first_at);
	p[5] = P_INT(c->last_at);
	p[6] = P_INT(c->requests);
}

/* Upsert cells[0..n) with sql[k] for 2^k of them at a time. */
static int upsert_cells(struct db_conn *c, const char *const sql[], int cols,
                        void (*params)(const struct usage_cell *, struct db_param *),
                        const struct usage_cell *cells, int n)
{
	struct db_param p[UP_MAX_ROWS * ROLLUP_COLS];
	int rc = STORE_OK, done = 0;
	while (rc == STORE_OK && done < n) {
		int k = UP_KMAX;
		while ((1 << k) > n - done)
			k--;
		for (int i = 0; i < (1 << k); i++)
			params(&cells[done + i], p + i * cols);
		rc = sq(c, sql[k], p, (1 << k) * cols, NULL);
		done += 1 << k;
	}
	return rc;
}

/* The distinct hours of the hour cells (sorted by bucket first) to st_usage_mark_late_tx. */
static int mark_late_hours(struct db_conn *c, const struct usage_cell *cells, int n)
{
	int64_t hours[64];
	int nh = 0, rc = STORE_OK;
	for (int i = 0; rc == STORE_OK && i < n; i++) {
		if (nh && hours[nh - 1] == cells[i].bucket)
			continue;
		if (nh == (int)(sizeof hours / sizeof hours[0])) {
			rc = st_usage_mark_late_tx(c, hours, nh);
			nh = 0;
		}
		hours[nh++] = cells[i].bucket;
	}
	return rc == STORE_OK ? st_usage_mark_late_tx(c, hours, nh) : rc;
}

int st_usage_record_tx(struct db_conn *c, const struct store_request_row *rows,
                       const bool *inserted, int n)
{
	/*
	 * Each row makes at most one rollup cell, one agent cell and two seen
	 * cells. Not zeroed: usage_cell_of_row writes every cell used (a batch's two
	 * arrays are over 100 KiB, whose clearing was a tenth of this function).
	 * n is at most [request_log] batch_size (100000).
	 */
	struct usage_cell *cells = xmalloc(((size_t)n * 2 + 1) * sizeof *cells);
	struct usage_cell *keyed = xmalloc(((size_t)n * 2 + 1) * sizeof *keyed);
	int nc = 0, nk = 0;
	for (int i = 0; i < n; i++) {
		if (!inserted[i])
			continue;
		const struct store_request_row *r = &rows[i];
		struct usage_cell *u = &cells[nc++];
		usage_cell_of_row(r, u);
		u->bucket = usage_bucket(r->received_at, USAGE_MINUTE);
		u->dim[D_ORG] = r->org_id;
		u->dim[D_PROJECT] = r->project_id;
		u->dim[D_KEY] = r->key_id;
		u->dim[D_ROUTE] = r->route;
		u->dim[D_REGION] = r->region;
		u->dim[D_REFUSAL] = r->refusal;
	}
	nc = usage_fold(cells, nc);
	int rc = upsert_cells(c, minute_sql, ROLLUP_COLS, rollup_params, cells, nc);
	for (int i = 0; i < nc; i++)
		cells[i].bucket = usage_bucket(cells[i].bucket, USAGE_HOUR);
	nc = usage_fold(cells, nc);
	if (rc == STORE_OK)
		rc = upsert_cells(c, hour_sql, ROLLUP_COLS, rollup_params, cells, nc);
	if (rc == STORE_OK)
		rc = mark_late_hours(c, cells, nc);

	/* Per key: user agents by hour (refused attempts too). */
	for (int i = 0; i < n; i++) {
		const struct store_request_row *r = &rows[i];
		if (!inserted[i] || !r->key_id[0])
			continue;
		struct usage_cell *u = &keyed[nk++];
		usage_cell_of_row(r, u);
		u->bucket = usage_bucket(r->received_at, USAGE_HOUR);
		u->status = 0; /* not in the cell's key */
		u->dim[A_KEY] = r->key_id;
		u->dim[A_AGENT] = r->user_agent;
		u->carried = r->org_id;
	}
	nk = usage_fold(keyed, nk);
	if (rc == STORE_OK)
		rc = upsert_cells(c, agent_sql, AGENT_COLS, agent_params, keyed, nk);

	/* Per key: where and with what it was used (authenticated traffic only). */
	nk = 0;
	for (int i = 0; i < n; i++) {
		const struct store_request_row *r = &rows[i];
		if (!inserted[i] || !r->key_id[0] || r->refusal[0])
			continue;
		for (int kind = 0; kind < 2; kind++) {
			if (kind == 0 && !r->region[0])
				continue; /* an unknown place is not a place */
			struct usage_cell *u = &keyed[nk++];
			usage_cell_of_row(r, u);
			u->bucket = 0;
			u->status = 0;
			u->dim[S_KEY] = r->key_id;
			u->dim[S_KIND] = kind == 0 ? "region" : "user_agent";
			u->dim[S_VALUE] = kind == 0 ? r->region : r->user_agent;
			u->carried = r->org_id;
		}
	}
	nk = usage_fold(keyed, nk);
	if (rc == STORE_OK)
		rc = upsert_cells(c, seen_sql, SEEN_COLS, seen_params, keyed, nk);
	free(cells);
	free(keyed);
	/* Per project and month: the budget's count and its notices. */
	if (rc == STORE_OK)
		rc = st_budget_record_tx(c, rows, inserted, n);
	return rc;
}

/* ---------- retention ---------- */

static int purge_fn(struct db_conn *c, void *arg)
{
	int64_t *io = arg; /* in: the cutoff; out: rows deleted */
	int64_t cutoff = io[0], deleted = 0;
	struct db_param p[] = {P_INT(cutoff)};
	/*
	 * The rollups' primary keys lead with org_id: purge one organisation
	 * at a time (every organisation with cells; the minute cells' are a
	 * subset of the hour cells') so each DELETE walks a key range.
	 */
	struct db_result *orgs = NULL;
	int rc = sq(c, "SELECT DISTINCT org_id FROM usage_hour", NULL, 0, &orgs);
	static const char *const by_org[] = {
	    "DELETE FROM usage_minute WHERE org_id = ? AND bucket < ?",
	    "DELETE FROM usage_hour WHERE org_id = ? AND bucket < ?",
	};
	for (int i = 0; rc == STORE_OK && i < orgs->nrows; i++)
		for (size_t t = 0; rc == STORE_OK && t < sizeof by_org / sizeof by_org[0]; t++) {
			struct db_param q[] = {P_TEXT(db_text(orgs, i, 0)), P_INT(cutoff)};
			struct db_result *r = NULL;
			rc = sq(c, by_org[t], q, 2, &r);
			if (rc == STORE_OK)
				deleted += r->changes;
			db_result_free(r);
		}
	db_result_free(orgs);
	static const char *const rest[] = {
	    "DELETE FROM usage_key_agents WHERE bucket < ?",
	    "DELETE FROM usage_key_seen WHERE last_seen < ?",
	    "DELETE FROM usage_series WHERE bucket < ?",
	    "DELETE FROM usage_dirty WHERE bucket < ?",
	};
	for (size_t t = 0; rc == STORE_OK && t < sizeof rest / sizeof rest[0]; t++) {
		struct db_result *r = NULL;
		rc = sq(c, rest[t], p, 1, &r);
		if (rc == STORE_OK)
			deleted += r->changes;
		db_result_free(r);
	}
	if (rc == STORE_OK)
		rc = st_budget_purge_tx(c, cutoff, &deleted);
	io[1] = deleted;
	return rc;
}

int store_usage_purge(struct store *st, int64_t cutoff_ms, int64_t *deleted)
{
	int64_t io[2] = {cutoff_ms, 0};
	int rc = st_tx_run(st, purge_fn, io, NULL, NO_CHANGE, false);
	if (deleted)
		*deleted = rc == STORE_OK ? io[1] : 0;
	return rc;
}
