/*
 * store_incident.c: the incident report's reads about one key
 * (store_incident.h). Each is one statement over a key-prefixed index:
 * usage_hour (key_id, bucket), usage_key_agents (key_id, bucket, ...),
 * usage_key_seen (key_id, kind, value), audit_events (target_id, seq).
 * The rollups are written by the request-log writer (store_usage.c);
 * nothing here reads raw request-log rows.
 */
#include "store/store_incident.h"

#include "core/alloc.h"
#include "store/store_int.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#define HOUR_MS ((int64_t)3600 * 1000)

int64_t incident_hour_floor(int64_t ms)
{
	int64_t r = ms % HOUR_MS;
	return ms - (r < 0 ? r + HOUR_MS : r);
}

int64_t incident_hour_ceil(int64_t ms)
{
	int64_t f = incident_hour_floor(ms);
	return f == ms ? ms : f + HOUR_MS;
}

/* Column layouts of the section queries (row readers below). */
enum shape { SHAPE_HOURS, SHAPE_DIM, SHAPE_AGENT, SHAPE_REFUSED };

static void read_count(const struct db_result *r, int i, struct incident_count *c, enum shape s)
{
	memset(c, 0, sizeof *c);
	c->bucket = -1;
	c->first_seen = c->last_seen = -1;
	switch (s) {
	case SHAPE_HOURS: /* bucket, requests, 4xx, 5xx, refused */
		c->bucket = db_int(r, i, 0);
		c->requests = db_int(r, i, 1);
		c->errors_4xx = db_int(r, i, 2);
		c->errors_5xx = db_int(r, i, 3);
		c->refused = db_int(r, i, 4);
		break;
	case SHAPE_DIM:   /* value, requests, 4xx, 5xx, first_seen, last_seen */
	case SHAPE_AGENT: /* value, requests, refused, first_seen, last_seen */
		st_copy_str(c->value, sizeof c->value, db_text(r, i, 0));
		c->requests = db_int(r, i, 1);
		if (s == SHAPE_DIM) {
			c->errors_4xx = db_int(r, i, 2);
			c->errors_5xx = db_int(r, i, 3);
		} else {
			c->refused = db_int(r, i, 2);
		}
		c->first_seen = st_time_or_none(r, i, s == SHAPE_DIM ? 4 : 3);
		c->last_seen = st_time_or_none(r, i, s == SHAPE_DIM ? 5 : 4);
		break;
	case SHAPE_REFUSED: /* bucket, region, refusal, refused */
		c->bucket = db_int(r, i, 0);
		st_copy_str(c->value, sizeof c->value, db_text(r, i, 1));
		st_copy_str(c->refusal, sizeof c->refusal, db_text(r, i, 2));
		c->refused = db_int(r, i, 3);
		break;
	}
}

static int read_counts(struct store *st, const char *sql, const struct db_param *p, int np,
                       enum shape s, struct incident_count **out, int *n)
{
	struct db_result *r = NULL;
	*out = NULL;
	*n = 0;
	int rc = st_read_q(st, sql, p, np, &r);
	if (rc != STORE_OK)
		return rc;
	if (r->nrows > 0) {
		*out = xcalloc((size_t)r->nrows, sizeof **out);
		for (int i = 0; i < r->nrows; i++)
			read_count(r, i, &(*out)[i], s);
	}
	*n = r->nrows;
	db_result_free(r);
	return STORE_OK;
}

int store_incident_hours(struct store *st, const char *key_id, int64_t since, int64_t until,
                         struct incident_count **out, int *n)
{
	struct db_param p[] = {P_TEXT(key_id), P_INT(incident_hour_floor(since)),
	                       P_INT(incident_hour_ceil(until))};
	return read_counts(
	    st,
	    "SELECT bucket, sum(CASE WHEN refusal = '' THEN requests ELSE 0 END), "
	    "sum(CASE WHEN refusal = '' THEN errors_4xx ELSE 0 END), "
	    "sum(CASE WHEN refusal = '' THEN errors_5xx ELSE 0 END), "
	    "sum(CASE WHEN refusal = '' THEN 0 ELSE requests END) FROM usage_hour "
	    "WHERE key_id = ? AND bucket >= ? AND bucket < ? GROUP BY bucket ORDER BY bucket",
	    p, 3, SHAPE_HOURS, out, n);
}

/*
 * One statement per dimension (a column cannot be a parameter); the
 * window's cells grouped, then the key's first and last sighting joined
 * for regions and user agents.
 */
#define BY_DIM(col, seen_join)                                                                     \
	"SELECT x.v, x.req, x.e4, x.e5, " seen_join " FROM (SELECT " col " AS v, "                 \
	"sum(requests) AS req, sum(errors_4xx) AS e4, sum(errors_5xx) AS e5 FROM usage_hour "      \
	"WHERE key_id = ? AND bucket >= ? AND bucket < ? AND refusal = '' GROUP BY " col ") x "    \
	"ORDER BY x.req DESC, x.v LIMIT ?"
#define SEEN_OF(kind)                                                                              \
	"(SELECT s.first_seen FROM usage_key_seen s WHERE s.key_id = ? AND s.kind = '" kind "' "   \
	"AND s.value = x.v), (SELECT s.last_seen FROM usage_key_seen s WHERE s.key_id = ? AND "    \
	"s.kind = '" kind "' AND s.value = x.v)"

static const char *const by_sql[] = {
    [INCIDENT_BY_ROUTE] = BY_DIM("route", "NULL, NULL"),
    [INCIDENT_BY_STATUS] = BY_DIM("status", "NULL, NULL"),
    [INCIDENT_BY_REGION] = BY_DIM("region", SEEN_OF("region")),
    [INCIDENT_BY_AGENT] = "SELECT x.v, x.req, x.ref, " SEEN_OF(
        "user_agent") " FROM (SELECT user_agent AS v, "
                      "sum(requests) - sum(refused) AS req, sum(refused) AS ref FROM "
                      "usage_key_agents "
                      "WHERE key_id = ? AND bucket >= ? AND bucket < ? GROUP BY user_agent) x "
                      "ORDER BY x.req DESC, x.ref DESC, x.v LIMIT ?",
};

int store_incident_by(struct store *st, const char *key_id, enum incident_dim dim, int64_t since,
                      int64_t until, int limit, struct incident_count **out, int *n)
{
	/* The seen subqueries' key ids come first: they are in the select list. */
	bool seen = dim == INCIDENT_BY_REGION || dim == INCIDENT_BY_AGENT;
	struct db_param p[] = {P_TEXT(key_id),
	                       P_TEXT(key_id),
	                       P_TEXT(key_id),
	                       P_INT(incident_hour_floor(since)),
	                       P_INT(incident_hour_ceil(until)),
	                       P_INT(limit)};
	return read_counts(st, by_sql[dim], seen ? p : p + 2, seen ? 6 : 4,
	                   dim == INCIDENT_BY_AGENT ? SHAPE_AGENT : SHAPE_DIM, out, n);
}

int store_incident_refused(struct store *st, const char *key_id, int64_t since, int64_t until,
                           int limit, struct incident_count **out, int *n)
{
	struct db_param p[] = {P_TEXT(key_id), P_INT(incident_hour_floor(since)),
	                       P_INT(incident_hour_ceil(until)), P_INT(limit)};
	return read_counts(st,
	                   "SELECT bucket, region, refusal, sum(requests) FROM usage_hour "
	                   "WHERE key_id = ? AND bucket >= ? AND bucket < ? AND refusal <> '' "
	                   "GROUP BY bucket, region, refusal ORDER BY bucket, region, refusal "
	                   "LIMIT ?",
	                   p, 4, SHAPE_REFUSED, out, n);
}

int store_incident_history(struct store *st, const char *key_id, int limit,
                           void (*each)(void *ctx, const struct store_audit_read *ev), void *ctx)
{
	struct db_param p[] = {P_TEXT(key_id), P_INT(limit)};
	struct db_result *r = NULL;
	int rc = st_read_q(st,
	                   "SELECT " AUDIT_COLS " FROM audit_events WHERE target_id = ? "
	                   "AND target_type = 'api_key' ORDER BY seq LIMIT ?",
	                   p, 2, &r);
	if (rc != STORE_OK)
		return rc;
	st_audit_each(r, each, ctx);
	db_result_free(r);
	return STORE_OK;
}
