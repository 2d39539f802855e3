/*
 * audit.c: GET /v1/audit-events: the caller's organisation's events (every
 * organisation's for operator keys), oldest first, with since/until/key_id
 * filters and a cursor (the last event's sequence number); GET
 * /v1/audit-events/verify: the hash chain recomputed (what `portcullis
 * audit verify` does), for the console's audit page.
 */
#include "api/api.h"

#include "core/json.h"
#include "core/str.h"

#include <stdio.h>

void api_audit_event_add(void *ctx, const struct store_audit_read *ev)
{
	json_t *d = ev->details ? json_loads(ev->details, 0, NULL) : NULL;
	json_array_append_new(
	    ctx,
	    json_pack("{s:s, s:I, s:o, s:o, s:{s:s, s:o}, s:s, s:{s:o, s:o}, s:o, s:o, s:s, s:s}",
	              "id", ev->id, "seq", (json_int_t)ev->seq, "at", json_time(ev->at), "org_id",
	              json_str_or_null(ev->org_id), "actor", "type", ev->actor_type, "id",
	              json_str_or_null(ev->actor_id), "action", ev->action, "target", "type",
	              json_str_or_null(ev->target_type), "id", json_str_or_null(ev->target_id),
	              "request_id", json_str_or_null(ev->request_id), "details",
	              d ? d : json_null(), "prev_hash", ev->prev_hash, "hash", ev->hash));
}

static void list(struct http_request *req, const struct authn *who)
{
	int limit;
	const char *cursor;
	struct audit_filter f = {.org_id = who->root ? NULL : who->key.org_id};
	if (api_page(req, &limit, &cursor) < 0 || api_query_time(req, "since", &f.since) < 0 ||
	    api_query_time(req, "until", &f.until) < 0)
		return;
	if (cursor && parse_int64_z(cursor, 0, INT64_MAX, &f.after_seq) < 0) {
		http_respond_bad_field(req, "cursor", "cursor is not valid.");
		return;
	}
	f.key_id = http_query(req, "key_id");
	f.limit = limit + 1;
	json_t *events = json_array();
	int rc = store_audit_list(api_store(req), &f, api_audit_event_add, events);
	if (rc != STORE_OK) {
		json_decref(events);
		http_respond_store_error(req, rc);
		return;
	}
	char next[24];
	bool more = json_array_size(events) > (size_t)limit;
	if (more) {
		json_array_remove(events, (size_t)limit);
		json_t *last = json_array_get(events, (size_t)limit - 1);
		snprintf(next, sizeof next, "%lld",
		         (long long)json_integer_value(json_object_get(last, "seq")));
	}
	api_respond_list(req, events, more ? next : NULL);
}

/*
 * The whole chain is one chain across organisations, so every caller gets
 * its verdict; the count of events and the broken event's id describe
 * every organisation's log and go to operator keys only.
 */
static void verify(struct http_request *req, const struct authn *who)
{
	int64_t checked = 0;
	char bad[STORE_ID_LEN + 1] = "";
	int rc = store_audit_verify(api_store(req), &checked, bad);
	if (rc != STORE_OK && rc != STORE_ECONFLICT) {
		http_respond_store_error(req, rc);
		return;
	}
	json_t *o = json_pack("{s:b}", "ok", rc == STORE_OK);
	json_object_set_new(o, "checked",
	                    who->root ? json_integer((json_int_t)checked) : json_null());
	json_object_set_new(o, "bad_id", who->root && bad[0] ? json_string(bad) : json_null());
	http_respond_json(req, 200, o);
}

void audit_routes(struct router *r, const struct api_group *g)
{
	static const char *const list_query[] = {"limit", "cursor", "since",
	                                         "until", "key_id", NULL};
	api_route_query(r, g, "GET", "/v1/audit-events", "logs:read", list, list_query);
	api_route(r, g, "GET", "/v1/audit-events/verify", "logs:read", verify);
}
