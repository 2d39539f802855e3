/*
 * capi.c: a project's Meta Conversions API forward (INGEST.md "Forwarding to
 * ad platforms"): PUT and GET /v1/projects/{projectId}/capi and the record
 * of forwarded batches, GET /v1/projects/{projectId}/capi/deliveries.
 *
 * The access token is sealed to the instance's public key for its row
 * (capi_configs / access_token / project id / org id) before it is stored:
 * this process can write it but never read it back (only the background
 * tier opens it), and no answer ever holds it.
 */
#include "api/api.h"

#include "core/json.h"
#include "store/store_capi.h"
#include "store/store_secrets.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static json_t *config_json(const struct store_capi_config *c)
{
	return json_pack("{s:s, s:b, s:s, s:o, s:b, s:o, s:o, s:o}", "project_id", c->project_id,
	                 "enabled", c->enabled, "pixel_id", c->pixel_id, "test_event_code",
	                 json_str_or_null(c->test_event_code), "access_token_set", 1,
	                 "enabled_since", json_time(c->enabled_since), "created_at",
	                 json_time(c->created_at), "updated_at", json_time(c->updated_at));
}

/* Every byte of s is in the set chars (and s is not empty). */
static bool only(const char *s, const char *chars)
{
	return s[0] && s[strspn(s, chars)] == '\0';
}

#define DIGITS "0123456789"
#define ALNUM  DIGITS "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"

/* The members of a PUT body into c (token into token, NULL when absent): 0, or responds -1. */
static int parse_put(struct http_request *req, json_t *body, struct store_capi_config *c,
                     const char **token)
{
	static const char *const allowed[] = {"enabled", "pixel_id", "access_token",
	                                      "test_event_code", NULL};
	const char *pixel, *code = NULL;
	if (api_only_fields(req, body, allowed) < 0)
		return -1;
	json_t *en = json_object_get(body, "enabled");
	if (!json_is_boolean(en)) {
		http_respond_bad_field(req, "enabled", "enabled is required: true or false.");
		return -1;
	}
	c->enabled = json_is_true(en);
	if (api_opt_string(req, body, "pixel_id", STORE_CAPI_PIXEL_MAX, &pixel) < 0 ||
	    api_opt_string(req, body, "access_token", STORE_CAPI_TOKEN_MAX, token) < 0)
		return -1;
	if (!pixel || !only(pixel, DIGITS)) {
		http_respond_bad_field(req, "pixel_id",
		                       "pixel_id is required: the pixel's id, 1 to 32 digits.");
		return -1;
	}
	if (*token && !only(*token, ALNUM "-_.|")) {
		http_respond_bad_field(req, "access_token",
		                       "access_token must be letters, digits and - _ . | only.");
		return -1;
	}
	json_t *tc = json_object_get(body, "test_event_code");
	if (tc && !json_is_null(tc) &&
	    (api_opt_string(req, body, "test_event_code", STORE_CAPI_TEST_CODE_MAX, &code) < 0 ||
	     !only(code, ALNUM "-_"))) {
		if (!req->responded)
			http_respond_bad_field(req, "test_event_code",
			                       "test_event_code must be letters, digits, - and _.");
		return -1;
	}
	snprintf(c->pixel_id, sizeof c->pixel_id, "%s", pixel);
	snprintf(c->test_event_code, sizeof c->test_event_code, "%s", code ? code : "");
	return 0;
}

/* Seal token for c's row into c->access_token: 0, or responds -1. */
static int seal_token(struct http_request *req, struct store_capi_config *c, const char *token)
{
	struct sealed_context ctx = {STORE_CAPI_TOKEN_TABLE, STORE_CAPI_TOKEN_COLUMN, c->project_id,
	                             c->org_id};
	return api_seal(req, &ctx, token, c->access_token, sizeof c->access_token);
}

/* Store c (its token sealed, or "" to keep the stored one) and answer with it. */
static void save(struct http_request *req, const struct authn *who, struct store_capi_config *c)
{
	struct audit_input a =
	    api_audit(req, who, "project.capi_updated", "project", c->project_id);
	int rc = store_capi_put(api_store(req), c, &a);
	struct store_capi_config stored;
	if (rc == STORE_OK)
		rc = store_capi_get(api_store(req), c->org_id, c->project_id, &stored);
	if (rc == STORE_OK)
		http_respond_json(req, 200, config_json(&stored));
	else
		api_store_fail(req, rc, "project");
}

/* No token sent: one must be stored already. 0, or responds -1. */
static int token_stored(struct http_request *req, const struct store_capi_config *c)
{
	struct store_capi_config old;
	int rc = store_capi_get(api_store(req), c->org_id, c->project_id, &old);
	explicit_bzero(&old, sizeof old);
	if (rc == STORE_ENOTFOUND)
		http_respond_bad_field(req, "access_token",
		                       "access_token is required when none is stored.");
	else if (rc != STORE_OK)
		http_respond_store_error(req, rc);
	return rc == STORE_OK ? 0 : -1;
}

static void put(struct http_request *req, const struct authn *who)
{
	struct store_project p;
	json_t *body = api_project_body(req, who, &p);
	if (!body)
		return;
	struct store_capi_config c;
	memset(&c, 0, sizeof c);
	snprintf(c.project_id, sizeof c.project_id, "%s", p.id);
	snprintf(c.org_id, sizeof c.org_id, "%s", p.org_id);
	const char *token = NULL;
	if (parse_put(req, body, &c, &token) == 0 &&
	    (token ? seal_token(req, &c, token) : token_stored(req, &c)) == 0)
		save(req, who, &c);
	json_decref(body);
}

static void get(struct http_request *req, const struct authn *who)
{
	struct store_project p;
	struct store_capi_config c;
	if (api_load_project(req, who, &p) < 0)
		return;
	int rc = store_capi_get(api_store(req), p.org_id, p.id, &c);
	if (rc == STORE_OK)
		http_respond_json(req, 200, config_json(&c));
	else
		api_store_fail(req, rc, "Conversions API setup");
}

static json_t *batch_json(const struct store_capi_batch *b)
{
	json_t *o = json_pack(
	    "{s:s, s:s, s:s, s:s, s:I, s:I, s:o, s:o, s:o, s:o, s:o, s:o, s:o}", "id", b->id,
	    "project_id", b->project_id, "pixel_id", b->pixel_id, "status", b->status, "events",
	    (json_int_t)b->events, "attempts", (json_int_t)b->attempts, "events_sent",
	    b->events_sent >= 0 ? json_integer(b->events_sent) : json_null(), "events_received",
	    b->events_received >= 0 ? json_integer(b->events_received) : json_null(), "http_status",
	    b->http_status >= 0 ? json_integer(b->http_status) : json_null(), "error",
	    json_str_or_null(b->error), "response", json_str_or_null(b->response), "created_at",
	    json_time(b->created_at), "updated_at", json_time(b->updated_at));
	json_object_set_new(o, "next_attempt_at",
	                    strcmp(b->status, "pending") == 0 ? json_time(b->next_attempt_at)
	                                                      : json_null());
	return o;
}

static void deliveries(struct http_request *req, const struct authn *who)
{
	struct store_project p;
	int limit;
	const char *cursor;
	if (api_load_project(req, who, &p) < 0 || api_page(req, &limit, &cursor) < 0)
		return;
	if (cursor && !api_prefixed_id_valid(cursor, "capb_")) {
		http_respond_bad_field(req, "cursor", "cursor is not a cursor of this list.");
		return;
	}
	struct store_capi_batch *bs = NULL;
	int n = 0;
	int rc =
	    store_capi_batches_list(api_store(req), p.org_id, p.id, cursor, limit + 1, &bs, &n);
	if (rc != STORE_OK) {
		http_respond_store_error(req, rc);
		return;
	}
	json_t *rows = json_array();
	for (int i = 0; i < n; i++)
		json_array_append_new(rows, batch_json(&bs[i]));
	free(bs);
	api_respond_page(req, rows, limit, "id");
}

void capi_routes(struct router *r, const struct api_group *g)
{
	api_route(r, g, "PUT", "/v1/projects/{projectId}/capi", "keys:write", put);
	api_route(r, g, "GET", "/v1/projects/{projectId}/capi", "keys:read", get);
	static const char *const page_query[] = {"limit", "cursor", NULL};
	api_route_query(r, g, "GET", "/v1/projects/{projectId}/capi/deliveries", "keys:read",
	                deliveries, page_query);
}
