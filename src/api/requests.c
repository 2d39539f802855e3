/*
 * requests.c: GET /v1/requests: the request log (docs/contract.md "Records") of
 * the caller's organisation (every organisation's for operator keys), newest
 * first. Filters: key_id, project_id, status, since (inclusive), until
 * (exclusive). The cursor is the last request id of the previous page; the
 * next page holds the ids below it, which is the same as older, because
 * request ids are ULIDs.
 */
#include "api/api.h"

#include "core/json.h"
#include "core/str.h"
#include "core/ulid.h"

#include <stdio.h>
#include <string.h>

#define REQUEST_ID_PREFIX "req_"

static bool request_id_valid(const char *s)
{
	size_t plen = strlen(REQUEST_ID_PREFIX);
	return strncmp(s, REQUEST_ID_PREFIX, plen) == 0 &&
	       ulid_valid(s + plen, strnlen(s + plen, ULID_LEN + 1));
}

void api_request_row_add(void *ctx, const struct store_request_read *row)
{
	json_array_append_new(
	    ctx,
	    json_pack("{s:s, s:o, s:o, s:o, s:o, s:s, s:s, s:I, s:I, s:o, s:I, s:I, s:o}",
	              "request_id", row->request_id, "received_at", json_time(row->received_at),
	              "org_id", json_str_or_null(row->org_id), "project_id",
	              json_str_or_null(row->project_id), "key_id", json_str_or_null(row->key_id),
	              "method", row->method, "path", row->path, "status", (json_int_t)row->status,
	              "duration_ms", (json_int_t)row->duration_ms, "region",
	              json_str_or_null(row->region), "bytes_in", (json_int_t)row->bytes_in,
	              "bytes_out", (json_int_t)row->bytes_out, "user_agent",
	              json_str_or_null(row->user_agent)));
	json_t *o = json_array_get(ctx, json_array_size(ctx) - 1);
	json_object_set_new(o, "route", json_str_or_null(row->route));
	json_object_set_new(o, "refusal", json_str_or_null(row->refusal));
}

static void list(struct http_request *req, const struct authn *who)
{
	int limit;
	const char *cursor;
	struct request_filter f = {.org_id = who->root ? NULL : who->key.org_id};
	if (api_page(req, &limit, &cursor) < 0 || api_query_time(req, "since", &f.since) < 0 ||
	    api_query_time(req, "until", &f.until) < 0 ||
	    api_query_id(req, "key_id", &f.key_id) < 0 ||
	    api_query_id(req, "project_id", &f.project_id) < 0)
		return;
	const char *status = http_query(req, "status");
	int64_t st = 0;
	if (status && parse_int64_z(status, 100, 599, &st) < 0) {
		http_respond_bad_field(req, "status",
		                       "status must be an HTTP status from 100 to 599.");
		return;
	}
	f.status = (int)st;
	if (cursor && !request_id_valid(cursor)) {
		http_respond_bad_field(req, "cursor", "cursor is not valid.");
		return;
	}
	f.before_id = cursor;
	f.limit = limit + 1;

	json_t *rows = json_array();
	int rc = store_request_log_list(api_store(req), &f, api_request_row_add, rows);
	if (rc != STORE_OK) {
		json_decref(rows);
		http_respond_store_error(req, rc);
		return;
	}
	api_respond_page(req, rows, limit, "request_id");
}

void requests_routes(struct router *r, const struct api_group *g)
{
	static const char *const list_query[] = {"limit",  "cursor",     "since",  "until",
	                                         "key_id", "project_id", "status", NULL};
	api_route_query(r, g, "GET", "/v1/requests", "logs:read", list, list_query);
}
