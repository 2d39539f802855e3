/*
 * events.c: GET /v1/events: the SDK events the ingest listener stored
 * (docs/ingest.md), of the caller's organisation (every organisation's for
 * operator keys), newest first. Filters: project_id, type, user_id, since
 * (inclusive) and until (exclusive) on received_at. Pages like GET
 * /v1/requests: the cursor is the last event id of the previous page, and
 * event ids are ULIDs, so the ids below it are the older events.
 *
 * What is stored holds no plaintext email, phone, IP or advertising id
 * (src/ingest/ removed or hashed them first), so nothing here filters.
 */
#include "api/api.h"

#include "core/json.h"
#include "store/store_events.h"

#include <string.h>

static const char *const event_types[] = {"track", "identify", "page", "screen", "group", "alias"};

static void event_row_add(void *ctx, const struct store_event_read *row)
{
	json_error_t jerr;
	json_t *payload = json_loads(row->body, JSON_REJECT_DUPLICATES, &jerr);
	json_array_append_new(
	    ctx,
	    json_pack("{s:s, s:s, s:s, s:o, s:s, s:s, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o}",
	              "id", row->id, "org_id", row->org_id, "project_id", row->project_id, "key_id",
	              json_str_or_null(row->key_id), "message_id", row->message_id, "type",
	              row->type, "event", json_str_or_null(row->event), "user_id",
	              json_str_or_null(row->user_id), "anonymous_id",
	              json_str_or_null(row->anonymous_id), "email_sha256",
	              json_str_or_null(row->email_sha256), "phone_sha256",
	              json_str_or_null(row->phone_sha256), "region", json_str_or_null(row->region),
	              "timestamp", json_time(row->timestamp), "received_at",
	              json_time(row->received_at), "payload", payload ? payload : json_object()));
}

static int query_type(struct http_request *req, const char **out)
{
	const char *v = http_query(req, "type");
	*out = v;
	if (!v)
		return 0;
	for (size_t i = 0; i < sizeof event_types / sizeof *event_types; i++)
		if (strcmp(v, event_types[i]) == 0)
			return 0;
	http_respond_bad_field(req, "type",
	                       "type must be one of track, identify, page, screen, group, alias.");
	return -1;
}

static void list(struct http_request *req, const struct authn *who)
{
	int limit;
	const char *cursor;
	struct event_filter f = {.org_id = who->root ? NULL : who->key.org_id};
	if (api_page(req, &limit, &cursor) < 0 || api_query_time(req, "since", &f.since) < 0 ||
	    api_query_time(req, "until", &f.until) < 0 ||
	    api_query_id(req, "project_id", &f.project_id) < 0 || query_type(req, &f.type) < 0)
		return;
	f.user_id = http_query(req, "user_id");
	if (f.user_id && (f.user_id[0] == '\0' || strlen(f.user_id) > STORE_EV_USER_ID_MAX)) {
		http_respond_bad_field(req, "user_id", "user_id must be 1 to 256 bytes.");
		return;
	}
	if (cursor && !api_prefixed_id_valid(cursor, "ev_")) {
		http_respond_bad_field(req, "cursor", "cursor is not valid.");
		return;
	}
	f.before_id = cursor;
	f.limit = limit + 1;
	json_t *rows = json_array();
	int rc = store_events_list(api_store(req), &f, event_row_add, rows);
	if (rc != STORE_OK) {
		json_decref(rows);
		http_respond_store_error(req, rc);
		return;
	}
	api_respond_page(req, rows, limit, "id");
}

void events_routes(struct router *r, const struct api_group *g)
{
	static const char *const list_query[] = {"limit",   "cursor", "project_id", "type",
	                                         "user_id", "since",  "until",      NULL};
	api_route_query(r, g, "GET", "/v1/events", "logs:read", list, list_query);
}
