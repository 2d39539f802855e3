/*
 * webhook_messages.c: the platform's own messages (WEBHOOKS.md "Two
 * sources", 2: POST /v1/orgs/{orgId}/webhook-messages with an operator key,
 * Idempotency-Key honoured durably in the store) and the records of every
 * message (GET /v1/webhook-messages..., scope logs:read; resend, scope
 * webhooks:write). An organisation sees its own messages and the global
 * ones (org_id null), with its own deliveries and attempts only.
 */
#include "api/api.h"

#include "core/clock.h"
#include "core/json.h"
#include "core/ulid.h"
#include "policy/idempotency.h"
#include "store/store_webhooks.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MESSAGE_ID_PFX  "msg_"
#define ENDPOINT_ID_PFX "ep_"
/* A body this much larger than the largest payload cannot hold a valid one. */
#define PUBLISH_BODY_MAX (2 * STORE_WH_PAYLOAD_MAX)

bool api_event_type_valid(const char *s, size_t len)
{
	if (len == 0 || len > STORE_WH_TYPE_MAX || strlen(s) != len)
		return false;
	bool part_empty = true;
	for (size_t i = 0; i < len; i++) {
		char c = s[i];
		if (c == '.') {
			if (part_empty)
				return false;
			part_empty = true;
		} else if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		           (c >= '0' && c <= '9') || c == '_') {
			part_empty = false;
		} else {
			return false;
		}
	}
	return !part_empty;
}

json_t *api_message_json(const struct store_message *m)
{
	return json_pack("{s:s, s:s, s:o, s:o, s:o}", "id", m->id, "type", m->type, "org_id",
	                 json_str_or_null(m->org_id), "project_id", json_str_or_null(m->project_id),
	                 "created_at", json_time(m->created_at));
}

/* ---- publish ---- */

/* The Idempotency-Key header: NULL when absent; responds 400 for an invalid one. */
static int idempotency_key(struct http_request *req, const char **out)
{
	const char *k = http_header(req, "Idempotency-Key");
	*out = k;
	if (k && !idem_key_valid(k, strlen(k))) {
		http_respond_problem(req, 400, "BAD_REQUEST",
		                     "Idempotency-Key must be 1 to 255 visible ASCII characters.",
		                     json_pack("{s:s}", "field", "Idempotency-Key"));
		return -1;
	}
	return 0;
}

static void payload_too_large(struct http_request *req)
{
	http_respond_problem(
	    req, 413, "PAYLOAD_TOO_LARGE", "payload must be at most 256 KiB.",
	    json_pack("{s:s, s:i}", "field", "payload", "limit", STORE_WH_PAYLOAD_MAX));
}

/* type, payload and project_id of a publish into m (m->body built). */
static int parse_publish(struct http_request *req, json_t *body, struct store_message *m)
{
	static const char *const allowed[] = {"type", "payload", "project_id", NULL};
	const char *type, *pid;
	if (api_only_fields(req, body, allowed) < 0 ||
	    api_opt_string(req, body, "type", STORE_WH_TYPE_MAX, &type) < 0 ||
	    api_opt_string(req, body, "project_id", STORE_ID_LEN, &pid) < 0)
		return -1;
	if (!type || !api_event_type_valid(type, strlen(type))) {
		http_respond_bad_field(req, "type",
		                       "type is required: 1 to 128 characters of [a-zA-Z0-9_] in "
		                       "dot-separated parts (invoice.paid).");
		return -1;
	}
	json_t *payload = json_object_get(body, "payload");
	if (!json_is_object(payload)) {
		http_respond_bad_field(req, "payload", "payload is required: a JSON object.");
		return -1;
	}
	if (pid && api_project_of(req, m->org_id, pid, m->project_id) < 0)
		return -1;
	snprintf(m->type, sizeof m->type, "%s", type);
	/* The bound is on the payload as it is stored and sent (compact). */
	char *data = json_dumps(payload, JSON_COMPACT);
	size_t data_len = data ? strlen(data) : 0;
	free(data);
	if (data_len > STORE_WH_PAYLOAD_MAX) {
		payload_too_large(req);
		return -1;
	}
	m->created_at = clock_now_ms();
	m->body = store_message_body(m->type, m->created_at, payload);
	return 0;
}

static void publish(struct http_request *req, const struct authn *who)
{
	struct store_org o;
	if (api_load_org(req, &o) < 0)
		return;
	const char *idem;
	if (idempotency_key(req, &idem) < 0)
		return;
	if (req->body.len > PUBLISH_BODY_MAX) {
		payload_too_large(req);
		return;
	}
	json_t *body = http_json_body(req);
	if (!body)
		return;
	struct store_message m, first;
	memset(&m, 0, sizeof m);
	memset(&first, 0, sizeof first);
	snprintf(m.org_id, sizeof m.org_id, "%s", o.id);
	ulid_prefixed("msg", m.id, sizeof m.id);
	if (parse_publish(req, body, &m) < 0)
		goto out;
	char hash[65], first_hash[65] = "";
	idem_fingerprint(req->method, req->path, req->body.data, req->body.len, hash);
	struct audit_input a =
	    api_audit(req, who, "webhook_message.published", "webhook_message", m.id);
	a.org_id = o.id;
	json_t *details = json_pack("{s:s}", "type", m.type);
	a.details = details;
	int rc = store_message_publish(api_store(req), &m, idem, idem ? hash : NULL, &a, &first,
	                               first_hash);
	json_decref(details);
	if (rc == STORE_ECONFLICT && idem) {
		if (strcmp(first_hash, hash) != 0) {
			http_respond_problem(
			    req, 422, "IDEMPOTENCY_KEY_REUSED",
			    "This Idempotency-Key was used with a different request.", NULL);
			goto out;
		}
		/* The first answer again: it is made only of what the store kept. */
		http_set_header(req, "Idempotent-Replayed", "true");
		http_respond_json(req, 201, api_message_json(&first));
		goto out;
	}
	if (rc != STORE_OK) {
		api_store_fail(req, rc, "organization");
		goto out;
	}
	http_respond_json(req, 201, api_message_json(&m));
out:
	store_message_free(&first);
	free(m.body);
	json_decref(body);
}

/* ---- records ---- */

static json_t *delivery_json(const struct store_delivery_read *d)
{
	return json_pack(
	    "{s:o, s:s, s:s, s:I, s:o}", "endpoint_id", json_str_or_null(d->endpoint_id), "channel",
	    d->channel, "status", d->status, "attempts", (json_int_t)d->attempts, "next_attempt_at",
	    json_time(d->status && strcmp(d->status, "pending") == 0 ? d->next_attempt_at : -1));
}

static void message_row_add(void *ctx, const struct store_message *m,
                            const struct store_delivery_read *d, int n)
{
	json_t *obj = api_message_json(m);
	json_t *ds = json_array();
	for (int i = 0; i < n; i++)
		json_array_append_new(ds, delivery_json(&d[i]));
	json_object_set_new(obj, "deliveries", ds);
	json_array_append_new(ctx, obj);
}

/* An optional query argument that must be an id with prefix; responds 400 on junk. */
static int query_prefixed(struct http_request *req, const char *name, const char *prefix,
                          const char **out)
{
	const char *v = http_query(req, name);
	*out = v;
	if (v && !api_prefixed_id_valid(v, prefix)) {
		char msg[64];
		snprintf(msg, sizeof msg, "%s is not a valid id.", name);
		http_respond_bad_field(req, name, msg);
		return -1;
	}
	return 0;
}

static void list(struct http_request *req, const struct authn *who)
{
	int limit;
	const char *cursor;
	struct store_message_filter f = {.org_id = who->root ? NULL : who->key.org_id};
	if (api_page(req, &limit, &cursor) < 0 || api_query_time(req, "since", &f.since) < 0 ||
	    api_query_time(req, "until", &f.until) < 0 ||
	    query_prefixed(req, "endpoint_id", ENDPOINT_ID_PFX, &f.endpoint_id) < 0)
		return;
	f.type = http_query(req, "type");
	if (f.type && !api_event_type_valid(f.type, strlen(f.type))) {
		http_respond_bad_field(req, "type", "type is not a valid event type.");
		return;
	}
	f.status = http_query(req, "status");
	if (f.status && strcmp(f.status, "pending") != 0 && strcmp(f.status, "succeeded") != 0 &&
	    strcmp(f.status, "failed") != 0) {
		http_respond_bad_field(req, "status",
		                       "status must be pending, succeeded or failed.");
		return;
	}
	if (cursor && !api_prefixed_id_valid(cursor, MESSAGE_ID_PFX)) {
		http_respond_bad_field(req, "cursor", "cursor is not valid.");
		return;
	}
	f.before_id = cursor;
	f.limit = limit + 1;
	json_t *rows = json_array();
	int rc = store_message_list(api_store(req), &f, message_row_add, rows);
	if (rc != STORE_OK) {
		json_decref(rows);
		http_respond_store_error(req, rc);
		return;
	}
	api_respond_page(req, rows, limit, "id");
}

/* Load {messageId} if the caller may see it (its own or global); responds 404/503 otherwise. */
static int load_message(struct http_request *req, const struct authn *who,
                        struct store_message *out)
{
	const char *id = http_param(req, "messageId");
	int rc = STORE_ENOTFOUND;
	memset(out, 0, sizeof *out);
	if (api_prefixed_id_valid(id, MESSAGE_ID_PFX))
		rc = store_message_get(api_store(req), who->root ? NULL : who->key.org_id, id, out);
	if (rc != STORE_OK) {
		api_store_fail(req, rc, "webhook message");
		return -1;
	}
	return 0;
}

static void get(struct http_request *req, const struct authn *who)
{
	struct store_message m;
	if (load_message(req, who, &m) < 0)
		return;
	json_t *obj = api_message_json(&m);
	/*
	 * The payload is the body's data. A purged message is gone (404 above);
	 * a row without a body would answer null rather than fail.
	 */
	json_t *payload = NULL;
	if (m.body) {
		json_t *b = json_loads(m.body, 0, NULL);
		payload = json_incref(json_object_get(b, "data"));
		json_decref(b);
	}
	json_object_set_new(obj, "payload", payload ? payload : json_null());
	store_message_free(&m);
	http_respond_json(req, 200, obj);
}

static void attempt_row_add(void *ctx, const struct store_attempt_read *a)
{
	json_array_append_new(
	    ctx, json_pack("{s:s, s:o, s:o, s:o, s:s, s:o, s:o, s:o, s:o, s:o, s:o}", "id", a->id,
	                   "endpoint_id", json_str_or_null(a->endpoint_id), "channel",
	                   json_str_or_null(a->channel), "at", json_time(a->at), "status",
	                   a->outcome ? a->outcome : "failed", "http_status",
	                   a->http_status > 0 ? json_integer(a->http_status) : json_null(),
	                   "duration_ms",
	                   a->duration_ms >= 0 ? json_integer(a->duration_ms) : json_null(),
	                   "error", json_str_or_null(a->error), "response",
	                   a->response ? json_string(a->response) : json_null(), "next_attempt_at",
	                   json_time(a->next_attempt_at), "delivery_id",
	                   json_str_or_null(a->delivery_id)));
}

static void attempts(struct http_request *req, const struct authn *who)
{
	struct store_message m;
	if (load_message(req, who, &m) < 0)
		return;
	store_message_free(&m);
	json_t *rows = json_array();
	int rc = store_attempt_list(api_store(req), who->root ? NULL : who->key.org_id, m.id,
	                            attempt_row_add, rows);
	if (rc != STORE_OK) {
		json_decref(rows);
		api_store_fail(req, rc, "webhook message");
		return;
	}
	api_respond_list(req, rows, NULL);
}

static void resend(struct http_request *req, const struct authn *who)
{
	struct store_message m;
	if (load_message(req, who, &m) < 0)
		return;
	store_message_free(&m);
	json_t *body = http_json_body(req);
	if (!body)
		return;
	static const char *const allowed[] = {"endpoint_id", NULL};
	const char *ep;
	if (api_only_fields(req, body, allowed) < 0 ||
	    api_opt_string(req, body, "endpoint_id", STORE_WH_ID_MAX, &ep) < 0)
		goto out;
	if (ep && !api_prefixed_id_valid(ep, ENDPOINT_ID_PFX)) {
		http_respond_bad_field(req, "endpoint_id", "endpoint_id is not a valid id.");
		goto out;
	}
	const char *org = who->root ? NULL : who->key.org_id;
	/* A developer resends only to an endpoint bound to a project, named. */
	if (who->project_only) {
		struct store_endpoint e;
		int erc = ep ? store_endpoint_get(api_store(req), org, ep, &e) : STORE_OK;
		if (erc != STORE_OK) {
			api_store_fail(req, erc, "webhook endpoint");
			goto out;
		}
		if (api_project_bound(req, who, ep ? e.project_id : NULL, "webhook endpoints") < 0)
			goto out;
	}
	struct audit_input a =
	    api_audit(req, who, "webhook_message.resent", "webhook_message", m.id);
	a.org_id = org ? org : (m.org_id[0] ? m.org_id : NULL);
	json_t *details = json_pack("{s:o}", "endpoint_id", json_str_or_null(ep));
	a.details = details;
	int n = 0;
	int rc = store_message_resend(api_store(req), org, m.id, ep, &a, &n);
	json_decref(details);
	if (rc != STORE_OK) {
		api_store_fail(req, rc, ep ? "webhook endpoint" : "webhook message");
		goto out;
	}
	http_respond_json(req, 202, json_pack("{s:i}", "requeued", n));
out:
	json_decref(body);
}

void webhook_messages_routes(struct router *r, const struct api_group *g)
{
	api_route(r, g, "POST", "/v1/orgs/{orgId}/webhook-messages", SCOPE_ROOT, publish);
	static const char *const list_query[] = {"limit",  "cursor", "endpoint_id", "type",
	                                         "status", "since",  "until",       NULL};
	api_route_query(r, g, "GET", "/v1/webhook-messages", "logs:read", list, list_query);
	api_route(r, g, "GET", "/v1/webhook-messages/{messageId}", "logs:read", get);
	api_route(r, g, "GET", "/v1/webhook-messages/{messageId}/attempts", "logs:read", attempts);
	api_route(r, g, "POST", "/v1/webhook-messages/{messageId}/resend", "webhooks:write",
	          resend);
}
