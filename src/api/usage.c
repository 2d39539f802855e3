/*
 * usage.c: GET /v1/usage, the request log's usage rollups
 * (store/store_usage.h) of the caller's organisation (every organisation's
 * for operator keys): one series per value of group_by (project, key,
 * route, status, region; none: totals), by minute, hour or day (the sum of
 * 24 hours, UTC), over [since, until). Reads rollup cells only, never raw
 * request-log rows, so its cost follows the window, not the traffic.
 */
#include "api/api.h"

#include "core/clock.h"
#include "core/json.h"
#include "core/str.h"
#include "core/ulid.h"
#include "store/store_usage.h"

#include <string.h>

#define USAGE_POINTS_MAX 10000

static const char *const granularity_names[] = {"minute", "hour", "day"};
static const char *const group_names[] = {NULL, "project", "key", "route", "status", "region"};
static const char *const group_fields[] = {NULL,    "project_id", "key_id",
                                           "route", "status",     "region"};
/* The window when since is absent: an hour of minutes, a day of hours, 30 days. */
static const int64_t default_window[] = {USAGE_HOUR_MS, USAGE_DAY_MS, 30 * USAGE_DAY_MS};

/* name's index in names[0..n) (NULL entries skipped), or -1. */
static int pick(const char *v, const char *const *names, int n)
{
	for (int i = 0; i < n; i++)
		if (names[i] && strcmp(names[i], v) == 0)
			return i;
	return -1;
}

/* An optional id filter: a ULID or 400 details.field. */
static int id_arg(struct http_request *req, const char *name, const char **out)
{
	const char *v = http_query(req, name);
	*out = v;
	if (v && !ulid_valid(v, strnlen(v, ULID_LEN + 1))) {
		http_respond_bad_field(req, name, "This is not a valid id.");
		return -1;
	}
	return 0;
}

/* A status cell's value (the store's own integer text). */
static json_int_t status_of(const char *v)
{
	int64_t st = 0;
	if (!v || parse_int64_z(v, 0, 999, &st) < 0)
		st = 0;
	return (json_int_t)st;
}

struct points {
	json_t *data;
	enum usage_group by;
};

static void point_add(void *ctx, const struct usage_point *p)
{
	struct points *pts = ctx;
	json_t *o = json_pack(
	    "{s:o, s:I, s:I, s:I, s:I, s:I, s:I}", "bucket", json_time(p->bucket), "requests",
	    (json_int_t)p->requests, "errors_4xx", (json_int_t)p->errors_4xx, "errors_5xx",
	    (json_int_t)p->errors_5xx, "bytes_in", (json_int_t)p->bytes_in, "bytes_out",
	    (json_int_t)p->bytes_out, "duration_ms_sum", (json_int_t)p->duration_ms_sum);
	if (pts->by == USAGE_BY_STATUS)
		json_object_set_new(o, "status", json_integer(status_of(p->value)));
	else if (pts->by != USAGE_BY_NONE)
		json_object_set_new(o, group_fields[pts->by], json_str_or_null(p->value));
	json_array_append_new(pts->data, o);
}

static void get_usage(struct http_request *req, const struct authn *who)
{
	struct usage_filter f = {.org_id = who->root ? NULL : who->key.org_id,
	                         .granularity = USAGE_HOUR,
	                         .group_by = USAGE_BY_NONE,
	                         .limit = USAGE_POINTS_MAX + 1};
	const char *g = http_query(req, "granularity"), *by = http_query(req, "group_by");
	int gi = g ? pick(g, granularity_names, 3) : USAGE_HOUR;
	if (gi < 0) {
		http_respond_bad_field(req, "granularity",
		                       "granularity must be minute, hour or day.");
		return;
	}
	int bi = by ? pick(by, group_names, 6) : USAGE_BY_NONE;
	if (bi < 0) {
		http_respond_bad_field(req, "group_by",
		                       "group_by must be project, key, route, status or region.");
		return;
	}
	f.granularity = (enum usage_granularity)gi;
	f.group_by = (enum usage_group)bi;
	if (api_query_time(req, "since", &f.since) < 0 ||
	    api_query_time(req, "until", &f.until) < 0 ||
	    id_arg(req, "project_id", &f.project_id) < 0 || id_arg(req, "key_id", &f.key_id) < 0)
		return;
	if (f.until < 0)
		f.until = clock_now_ms();
	if (f.since < 0)
		f.since = f.until - default_window[gi];
	if (f.since >= f.until) {
		http_respond_bad_field(req, "since", "since must be before until.");
		return;
	}
	/* Whole buckets: a window starting inside one counts all of it. */
	f.since = usage_bucket(f.since, f.granularity);
	struct points pts = {json_array(), f.group_by};
	int rc = store_usage_query(api_store(req), &f, point_add, &pts);
	if (rc != STORE_OK) {
		json_decref(pts.data);
		http_respond_store_error(req, rc);
		return;
	}
	if (json_array_size(pts.data) > USAGE_POINTS_MAX) {
		json_decref(pts.data);
		http_respond_bad_field(req, "since",
		                       "The window holds more than 10000 points: narrow it or use "
		                       "a coarser granularity.");
		return;
	}
	json_t *out = json_pack("{s:s, s:o, s:o, s:o, s:o}", "granularity", granularity_names[gi],
	                        "group_by", by ? json_string(by) : json_null(), "since",
	                        json_time(f.since), "until", json_time(f.until), "data", pts.data);
	http_respond_json(req, 200, out);
}

void usage_routes(struct router *r, const struct api_group *g)
{
	static const char *const query[] = {"group_by",   "granularity", "since", "until",
	                                    "project_id", "key_id",      NULL};
	api_route_query(r, g, "GET", "/v1/usage", "logs:read", get_usage, query);
}
