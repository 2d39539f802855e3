/*
 * store_budgets.c: project budgets and their threshold notices (see
 * store_budgets.h). The writer's half (st_budget_record_tx) folds a batch's
 * counted rows into one cell per project and month, adds each cell to
 * usage_month in multi-row upserts whose RETURNING carries the new total
 * and the project's budget (one statement for the batch's projects, no
 * per-row or per-project read), and only for a cell that crossed a
 * threshold writes the notice: the conditional insert into budget_notices,
 * then the audit event and the outbox message, in the writer's transaction.
 */
#include "store/store_budgets.h"

#include "core/alloc.h"
#include "core/clock.h"
#include "core/json.h"
#include "store/db.h"
#include "store/store_int.h"
#include "store/store_usage.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NOTICE_TYPE "usage.budget_threshold"

/* ---------- arithmetic ---------- */

bool budget_valid(const struct store_budget *b)
{
	if (b->requests_per_month < 1 || b->requests_per_month > BUDGET_REQUESTS_MAX ||
	    b->n_notify < 1 || b->n_notify > BUDGET_THRESHOLDS_MAX)
		return false;
	for (int i = 0; i < b->n_notify; i++)
		if (b->notify_at[i] < 1 || b->notify_at[i] > BUDGET_PERCENT_MAX ||
		    (i > 0 && b->notify_at[i] <= b->notify_at[i - 1]))
			return false;
	return true;
}

int64_t budget_threshold_count(int64_t rpm, int pct)
{
	/* At most 10^12 * 1000: no overflow in int64. */
	return ((int64_t)pct * rpm + 99) / 100;
}

int budget_crossed(const struct store_budget *b, int64_t from, int64_t to,
                   int out[BUDGET_THRESHOLDS_MAX])
{
	int n = 0;
	for (int i = 0; i < b->n_notify && i < BUDGET_THRESHOLDS_MAX; i++) {
		int64_t at = budget_threshold_count(b->requests_per_month, b->notify_at[i]);
		if (from < at && at <= to)
			out[n++] = b->notify_at[i];
	}
	return n;
}

void budget_notify_format(const struct store_budget *b, char *out, size_t cap)
{
	size_t len = 0;
	out[0] = '\0';
	for (int i = 0; i < b->n_notify && len < cap; i++) {
		int w = snprintf(out + len, cap - len, "%s%d", i ? "," : "", b->notify_at[i]);
		if (w < 0)
			break;
		len += (size_t)w;
	}
}

int budget_notify_parse(const char *s, struct store_budget *b)
{
	b->n_notify = 0;
	const char *p = s ? s : "";
	while (*p) {
		int v = 0, digits = 0;
		for (; *p >= '0' && *p <= '9' && digits < 5; p++, digits++)
			v = v * 10 + (*p - '0');
		if (!digits || b->n_notify == BUDGET_THRESHOLDS_MAX || (*p && *p != ','))
			return -1;
		b->notify_at[b->n_notify++] = v;
		if (*p == ',' && !*++p)
			return -1; /* a trailing comma */
	}
	/* Only the list is checked here; a stored budget has a valid rpm. */
	struct store_budget chk = *b;
	chk.requests_per_month = 1;
	return budget_valid(&chk) ? 0 : -1;
}

/* ---------- notices ---------- */

struct notice_args {
	const char *project_id, *org_id, *month;
	int64_t requests_per_month, requests, at;
	int threshold;
};

/*
 * The notice of one threshold: the conditional insert that only one writer
 * wins, then (when it won) the audit event and the outbox message.
 */
static int notice_tx(struct db_conn *c, const struct notice_args *na)
{
	struct db_param p[] = {P_TEXT(na->project_id), P_TEXT(na->month), P_INT(na->threshold),
	                       P_INT(na->requests), P_INT(na->at)};
	struct db_result *r = NULL;
	int rc = sq(c,
	            "INSERT INTO budget_notices (project_id, month, threshold, requests, at) "
	            "VALUES (?, ?, ?, ?, ?) ON CONFLICT (project_id, month, threshold) DO NOTHING",
	            p, 5, &r);
	bool won = rc == STORE_OK && r->changes > 0;
	db_result_free(r);
	if (!won)
		return rc;
	json_t *data =
	    json_pack("{s:s, s:s, s:s, s:i, s:I, s:I, s:o}", "project_id", na->project_id, "org_id",
	              na->org_id, "month", na->month, "threshold", na->threshold,
	              "requests_per_month", (json_int_t)na->requests_per_month, "requests",
	              (json_int_t)na->requests, "at", json_time(na->at));
	json_t *details = json_pack("{s:s, s:i, s:I}", "month", na->month, "threshold",
	                            na->threshold, "requests", (json_int_t)na->requests);
	struct audit_input a = {.org_id = na->org_id,
	                        .actor_type = "system",
	                        .action = NOTICE_TYPE,
	                        .target_type = "project",
	                        .target_id = na->project_id,
	                        .details = details,
	                        .event = data,
	                        .event_project_id = na->project_id};
	rc = st_audit_event_tx(c, &a);
	json_decref(details);
	json_decref(data);
	return rc;
}

/* Notify the thresholds of b that the count moving from..to reaches. */
static int notify_range(struct db_conn *c, struct notice_args *na, const struct store_budget *b,
                        int64_t from)
{
	int crossed[BUDGET_THRESHOLDS_MAX];
	int n = budget_crossed(b, from, na->requests, crossed);
	int rc = STORE_OK;
	for (int i = 0; rc == STORE_OK && i < n; i++) {
		na->threshold = crossed[i];
		rc = notice_tx(c, na);
	}
	return rc;
}

/* ---------- the writer ---------- */

#define MONTH_COLS 4
#define MONTH_ROW  "(?, ?, ?, ?)"
#define MONTH_UPSERT(values)                                                                       \
	"INSERT INTO usage_month (project_id, month, org_id, requests) VALUES " values             \
	" ON CONFLICT (project_id, month) DO UPDATE SET requests = usage_month.requests + "        \
	"excluded.requests RETURNING project_id, month, requests, (SELECT requests_per_month "     \
	"FROM project_budgets b WHERE b.project_id = usage_month.project_id), (SELECT notify_at "  \
	"FROM project_budgets b WHERE b.project_id = usage_month.project_id)"
static const char *const month_sql[] = MR_SIZES(MONTH_UPSERT, MONTH_ROW);

struct record_args {
	struct db_conn *c;
	const struct usage_cell *cells; /* sorted by month, then project (usage_fold) */
	char (*months)[8];              /* cells[i]'s "YYYY-MM" */
	int n;
	int64_t at;
};

static void fill_month(const void *ctx, int i, struct db_param *p)
{
	const struct record_args *ra = ctx;
	p[0] = P_TEXT(ra->cells[i].dim[0]);
	p[1] = P_TEXT(ra->months[i]);
	p[2] = P_TEXT(ra->cells[i].carried ? ra->cells[i].carried : "");
	p[3] = P_INT(ra->cells[i].requests);
}

/* The cell of (month, project): months sort as their text, so search by it. */
static const struct usage_cell *find_cell(const struct record_args *ra, const char *month,
                                          const char *project)
{
	int lo = 0, hi = ra->n;
	while (lo < hi) {
		int mid = lo + (hi - lo) / 2;
		int c = strcmp(ra->months[mid], month);
		if (!c)
			c = strcmp(ra->cells[mid].dim[0], project);
		if (!c)
			return &ra->cells[mid];
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

/* Each upserted cell of a project with a budget: notify what its batch crossed. */
static int totals_read(void *ctx, const struct db_result *r)
{
	const struct record_args *ra = ctx;
	int rc = STORE_OK;
	for (int i = 0; rc == STORE_OK && i < r->nrows; i++) {
		if (!db_text(r, i, 3))
			continue; /* no budget */
		struct store_budget b = {.requests_per_month = db_int(r, i, 3)};
		const char *project = db_text(r, i, 0), *month = db_text(r, i, 1);
		const struct usage_cell *u =
		    project && month ? find_cell(ra, month, project) : NULL;
		if (!u || budget_notify_parse(db_text(r, i, 4), &b) < 0)
			return STORE_ERROR; /* a total of no cell of ours, or a corrupt budget */
		struct notice_args na = {.project_id = project,
		                         .org_id = u->carried,
		                         .month = month,
		                         .requests_per_month = b.requests_per_month,
		                         .requests = db_int(r, i, 2),
		                         .at = ra->at};
		rc = notify_range(ra->c, &na, &b, na.requests - u->requests);
	}
	return rc;
}

int st_budget_record_tx(struct db_conn *c, const struct store_request_row *rows,
                        const bool *inserted, int n)
{
	struct usage_cell *cells = xcalloc((size_t)n + 1, sizeof *cells);
	int nc = 0;
	int64_t m_start = 0, m_next = 0; /* the last row's month, [start, next) */
	for (int i = 0; i < n; i++) {
		const struct store_request_row *r = &rows[i];
		if (!inserted[i] || !r->project_id[0] || r->refusal[0])
			continue; /* only what the project's keys made counts */
		if (nc == 0 || r->received_at < m_start || r->received_at >= m_next) {
			char scratch[8];
			m_start = usage_month(r->received_at, scratch);
			m_next = usage_month(m_start + 32 * USAGE_DAY_MS, scratch);
		}
		struct usage_cell *u = &cells[nc++];
		u->bucket = m_start;
		u->dim[0] = r->project_id;
		u->carried = r->org_id;
		u->requests = 1;
	}
	nc = usage_fold(cells, nc);
	char(*months)[8] = xcalloc((size_t)nc + 1, sizeof *months);
	for (int i = 0; i < nc; i++)
		usage_month(cells[i].bucket, months[i]);
	struct record_args ra = {c, cells, months, nc, clock_now_ms()};
	struct multi m = {.sql = month_sql,
	                  .cols = MONTH_COLS,
	                  .fill = fill_month,
	                  .ctx = &ra,
	                  .each = totals_read,
	                  .each_ctx = &ra};
	int rc = st_multi_run(c, &m, nc);
	free(months);
	free(cells);
	return rc;
}

int st_budget_purge_tx(struct db_conn *c, int64_t cutoff_ms, int64_t *deleted)
{
	/* A month goes once all of it is older than the cutoff. */
	char month[8];
	usage_month(cutoff_ms, month);
	struct db_param p[] = {P_TEXT(month)};
	static const char *const sql[] = {
	    "DELETE FROM usage_month WHERE month < ?",
	    "DELETE FROM budget_notices WHERE month < ?",
	};
	int rc = STORE_OK;
	for (size_t i = 0; rc == STORE_OK && i < sizeof sql / sizeof sql[0]; i++) {
		struct db_result *r = NULL;
		rc = sq(c, sql[i], p, 1, &r);
		if (rc == STORE_OK)
			*deleted += r->changes;
		db_result_free(r);
	}
	return rc;
}

/* ---------- the API's half ---------- */

int store_budget_get(struct store *st, const char *project_id, struct store_budget *out)
{
	struct db_param p[] = {P_TEXT(project_id)};
	struct db_result *r = NULL;
	int rc = st_read_q(st,
	                   "SELECT requests_per_month, notify_at, updated_at FROM project_budgets "
	                   "WHERE project_id = ?",
	                   p, 1, &r);
	if (rc == STORE_OK && r->nrows == 0)
		rc = STORE_ENOTFOUND;
	if (rc == STORE_OK) {
		memset(out, 0, sizeof *out);
		out->requests_per_month = db_int(r, 0, 0);
		out->updated_at = db_int(r, 0, 2);
		if (budget_notify_parse(db_text(r, 0, 1), out) < 0)
			rc = STORE_ERROR;
	}
	db_result_free(r);
	return rc;
}

static int month_requests_tx(struct db_conn *c, const char *project_id, const char *month,
                             int64_t *requests)
{
	struct db_param p[] = {P_TEXT(project_id), P_TEXT(month)};
	struct db_result *r = NULL;
	int rc =
	    sq(c, "SELECT requests FROM usage_month WHERE project_id = ? AND month = ?", p, 2, &r);
	if (rc == STORE_OK)
		*requests = r->nrows ? db_int(r, 0, 0) : 0;
	db_result_free(r);
	return rc;
}

int store_budget_month_requests(struct store *st, const char *project_id, int64_t at_ms,
                                int64_t *requests)
{
	char month[8];
	usage_month(at_ms, month);
	struct db_conn *c = st_acquire(st);
	if (!c)
		return STORE_EUNAVAILABLE;
	int rc = month_requests_tx(c, project_id, month, requests);
	st_release(st, c, rc);
	return rc;
}

struct set_args {
	const char *org_id, *project_id;
	const struct store_budget *b;
};

static int set_fn(struct db_conn *c, void *arg)
{
	const struct set_args *sa = arg;
	struct db_param g[] = {P_TEXT(sa->project_id), P_TEXT(sa->org_id)};
	struct db_result *r = NULL;
	int rc = sq(c, "SELECT 1 FROM projects WHERE id = ? AND org_id = ?", g, 2, &r);
	if (rc == STORE_OK && r->nrows == 0)
		rc = STORE_ENOTFOUND;
	db_result_free(r);
	if (rc != STORE_OK)
		return rc;
	if (!sa->b)
		return sq(c, "DELETE FROM project_budgets WHERE project_id = ?", g, 1, NULL);
	char notify[BUDGET_NOTIFY_TEXT + 1];
	budget_notify_format(sa->b, notify, sizeof notify);
	struct db_param u[] = {P_TEXT(sa->project_id), P_INT(sa->b->requests_per_month),
	                       P_TEXT(notify), P_INT(sa->b->updated_at)};
	rc = sq(
	    c,
	    "INSERT INTO project_budgets (project_id, requests_per_month, notify_at, updated_at) "
	    "VALUES (?, ?, ?, ?) ON CONFLICT (project_id) DO UPDATE SET requests_per_month = "
	    "excluded.requests_per_month, notify_at = excluded.notify_at, updated_at = "
	    "excluded.updated_at",
	    u, 4, NULL);
	char month[8];
	usage_month(sa->b->updated_at, month);
	int64_t requests = 0;
	if (rc == STORE_OK)
		rc = month_requests_tx(c, sa->project_id, month, &requests);
	/* Re-arm: a threshold the new budget puts above the count can go out again. */
	struct db_param d[] = {P_TEXT(sa->project_id), P_TEXT(month),
	                       P_INT(sa->b->requests_per_month), P_INT(requests)};
	if (rc == STORE_OK)
		rc = sq(c,
		        "DELETE FROM budget_notices WHERE project_id = ? AND month = ? AND "
		        "(threshold * CAST(? AS BIGINT) + 99) / 100 > CAST(? AS BIGINT)",
		        d, 4, NULL);
	struct notice_args na = {.project_id = sa->project_id,
	                         .org_id = sa->org_id,
	                         .month = month,
	                         .requests_per_month = sa->b->requests_per_month,
	                         .requests = requests,
	                         .at = sa->b->updated_at};
	if (rc == STORE_OK)
		rc = notify_range(c, &na, sa->b, 0);
	return rc;
}

int store_budget_set(struct store *st, const char *org_id, const char *project_id,
                     const struct store_budget *b, const struct audit_input *a)
{
	if (!org_id || !project_id || (b && !budget_valid(b)))
		return STORE_ERROR;
	struct set_args sa = {org_id, project_id, b};
	return st_in_tx(st, set_fn, &sa, a, NO_CHANGE);
}
