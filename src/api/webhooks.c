/*
 * webhooks.c: webhook endpoints (WEBHOOKS.md "Endpoints"): create, list,
 * get, update, delete, rotate-secret, test and recover, scope
 * webhooks:write. Organisation keys act on their own organisation's
 * endpoints (another's is 404); operator keys act on any and create them
 * with POST /v1/orgs/{orgId}/webhook-endpoints, as they create keys.
 *
 * The signing secret is generated here, shown once in the answer that
 * creates or rotates it, and stored only sealed to the instance's public
 * key (store_secret_seal): this process can write it but never read it
 * back; the background tier opens it to sign.
 */
#include "api/api.h"

#include "core/clock.h"
#include "core/json.h"
#include "core/log.h"
#include "core/ulid.h"
#include "delivery/egress.h"
#include "delivery/sign.h"
#include "store/store_secrets.h"
#include "store/store_webhooks.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define GRACE_DEFAULT_S  86400
#define EVENT_TYPES_MAX  64    /* entries in one endpoint's event_types */
#define RATE_LIMIT_MAX   10000 /* deliveries per second to one endpoint */
#define ENDPOINT_ID_PFX  "ep_"
#define WEBHOOK_TEST_TYP "webhook.test"

bool api_prefixed_id_valid(const char *s, const char *prefix)
{
	size_t plen = strlen(prefix);
	return s && strncmp(s, prefix, plen) == 0 && strnlen(s + plen, ULID_LEN + 1) == ULID_LEN &&
	       ulid_valid(s + plen, ULID_LEN);
}

/* The endpoint's event_types: null (all) or the array of the space-separated list. */
static json_t *types_json(const char *types)
{
	if (!types[0])
		return json_null();
	json_t *a = json_array();
	const char *p = types;
	while (*p) {
		size_t n = strcspn(p, " ");
		if (n)
			json_array_append_new(a, json_stringn(p, n));
		p += n;
		while (*p == ' ')
			p++;
	}
	return a;
}

static json_t *endpoint_json(const struct store_endpoint *e)
{
	return json_pack(
	    "{s:s, s:s, s:o, s:s, s:o, s:o, s:o, s:b, s:o, s:o, s:o, s:o, s:o, s:o}", "id", e->id,
	    "org_id", e->org_id, "project_id", json_str_or_null(e->project_id), "url", e->url,
	    "description", json_str_or_null(e->description), "event_types",
	    types_json(e->event_types), "rate_limit_per_second",
	    e->rate_limit_per_second >= 0 ? json_integer(e->rate_limit_per_second) : json_null(),
	    "disabled", e->disabled_at >= 0, "disabled_at", json_time(e->disabled_at),
	    "disabled_reason",
	    e->disabled_at >= 0 ? json_str_or_null(e->disabled_reason) : json_null(),
	    "failing_since", json_time(e->failing_since), "previous_secret_expires_at",
	    json_time(e->prev_secret[0] && e->prev_expires_at > clock_now_ms() ? e->prev_expires_at
	                                                                       : -1),
	    "created_at", json_time(e->created_at), "updated_at", json_time(e->updated_at));
}

/* The organisation a key acts for: its own, or NULL (any) for an operator key. */
static const char *caller_org(const struct authn *who)
{
	return who->root ? NULL : who->key.org_id;
}

/* Load {endpointId} if the caller may see it; responds 404/503 otherwise. */
static int load_endpoint(struct http_request *req, const struct authn *who,
                         struct store_endpoint *out)
{
	const char *id = http_param(req, "endpointId");
	int rc = STORE_ENOTFOUND;
	if (api_prefixed_id_valid(id, ENDPOINT_ID_PFX))
		rc = store_endpoint_get(api_store(req), caller_org(who), id, out);
	if (rc != STORE_OK) {
		api_store_fail(req, rc, "webhook endpoint");
		return -1;
	}
	return 0;
}

/*
 * {endpointId} into e (load_endpoint), one the caller may change
 * (api_project_bound), and the request's JSON body with no members but
 * allowed (NULL: any): NULL once it has responded.
 */
static json_t *endpoint_body(struct http_request *req, const struct authn *who,
                             struct store_endpoint *e, const char *const *allowed)
{
	if (load_endpoint(req, who, e) < 0 ||
	    api_project_bound(req, who, e->project_id, "webhook endpoints") < 0)
		return NULL;
	return api_json_body_only(req, allowed);
}

/* The url member: required when creating; WEBHOOKS.md's rules via egress_check_url. */
static int parse_url(struct http_request *req, json_t *body, bool required,
                     struct store_endpoint *e)
{
	json_t *v = json_object_get(body, "url");
	if (!v && !required)
		return 0;
	const char *reason = NULL;
	if (!json_is_string(v) || json_string_length(v) == 0 ||
	    strlen(json_string_value(v)) != json_string_length(v)) {
		reason = "invalid";
	} else if (json_string_length(v) > STORE_WH_URL_MAX) {
		reason = "too_long";
	} else {
		struct egress_ranges *allow = NULL;
		char err[128];
		if (egress_ranges_parse(
		        ((const struct webhooks_deps *)api_group_deps(req))->allow_ranges, &allow,
		        err, sizeof err) < 0) {
			/* Config was checked at start-up: this is not the client's fault. */
			log_event(LOG_ERROR, "webhooks_allow_ranges_invalid", "error", err, NULL);
			http_respond_store_error(req, STORE_ERROR);
			return -1;
		}
		if (egress_check_url(json_string_value(v), allow, &reason) == 0)
			reason = NULL;
		else if (!reason)
			reason = "invalid";
		egress_ranges_free(allow);
	}
	if (reason) {
		static const struct {
			const char *reason, *msg;
		} msgs[] = {
		    {"https_required", "url must use https://."},
		    {"userinfo", "url must not contain a user name or password."},
		    {"too_long", "url must be at most 2048 bytes."},
		    {"private_address",
		     "url names an address that deliveries may not reach (loopback, private, "
		     "link-local, reserved)."},
		};
		const char *msg =
		    "url must be an absolute https:// URL with a host name or a public "
		    "IP address.";
		for (size_t i = 0; i < sizeof msgs / sizeof *msgs; i++)
			if (strcmp(msgs[i].reason, reason) == 0)
				msg = msgs[i].msg;
		http_respond_problem(req, 400, "BAD_REQUEST", msg,
		                     json_pack("{s:s, s:s}", "field", "url", "reason", reason));
		return -1;
	}
	snprintf(e->url, sizeof e->url, "%s", json_string_value(v));
	return 0;
}

/* event_types: null (all) or 1..EVENT_TYPES_MAX distinct type names. */
static int parse_event_types(struct http_request *req, json_t *body, struct store_endpoint *e)
{
	json_t *v = json_object_get(body, "event_types");
	if (!v)
		return 0;
	if (json_is_null(v)) {
		e->event_types[0] = '\0';
		return 0;
	}
	if (!json_is_array(v) || json_array_size(v) == 0 || json_array_size(v) > EVENT_TYPES_MAX) {
		http_respond_bad_field(
		    req, "event_types",
		    "event_types must be null (every type) or an array of 1 to 64 "
		    "event types.");
		return -1;
	}
	char out[STORE_WH_TYPES_MAX + 1] = "";
	size_t used = 0, i;
	json_t *s;
	json_array_foreach(v, i, s)
	{
		const char *t = json_string_value(s);
		if (!t || !api_event_type_valid(t, json_string_length(s))) {
			http_respond_bad_field(req, "event_types",
			                       "Each event type is 1 to 128 characters of "
			                       "[a-zA-Z0-9_] in dot-separated parts.");
			return -1;
		}
		/* Duplicates are dropped: the filter is a set. */
		bool dup = false;
		for (size_t j = 0; j < i; j++)
			if (json_equal(json_array_get(v, j), s))
				dup = true;
		if (dup)
			continue;
		int n = snprintf(out + used, sizeof out - used, "%s%s", used ? " " : "", t);
		if (n < 0 || (size_t)n >= sizeof out - used) {
			http_respond_bad_field(req, "event_types",
			                       "event_types are at most 1024 characters in all.");
			return -1;
		}
		used += (size_t)n;
	}
	memcpy(e->event_types, out, used + 1);
	return 0;
}

/* project_id: null (every project's) or a project of the endpoint's organisation. */
static int parse_project(struct http_request *req, json_t *body, struct store_endpoint *e)
{
	json_t *v = json_object_get(body, "project_id");
	if (!v)
		return 0;
	if (json_is_null(v)) {
		e->project_id[0] = '\0';
		return 0;
	}
	/* A string with a NUL inside is no project's id. */
	const char *pid = json_string_value(v);
	if (pid && strlen(pid) != json_string_length(v))
		pid = NULL;
	return api_project_of(req, e->org_id, pid, e->project_id);
}

/* The members every write may set (and PATCH's disabled). */
static int apply_fields(struct http_request *req, json_t *body, struct store_endpoint *e,
                        bool creating)
{
	static const char *const create_fields[] = {
	    "url", "description", "event_types", "project_id", "rate_limit_per_second", NULL};
	static const char *const patch_fields[] = {
	    "url",      "description", "event_types", "project_id", "rate_limit_per_second",
	    "disabled", NULL};
	const char *desc;
	if (api_only_fields(req, body, creating ? create_fields : patch_fields) < 0 ||
	    parse_url(req, body, creating, e) < 0 ||
	    api_opt_string(req, body, "description", STORE_WH_DESC_MAX, &desc) < 0 ||
	    parse_event_types(req, body, e) < 0 || parse_project(req, body, e) < 0)
		return -1;
	if (desc)
		snprintf(e->description, sizeof e->description, "%s", desc);
	else if (json_is_null(json_object_get(body, "description")))
		e->description[0] = '\0';
	json_t *rl = json_object_get(body, "rate_limit_per_second");
	if (json_is_null(rl)) {
		e->rate_limit_per_second = -1;
	} else if (rl) {
		if (!json_is_integer(rl) || json_integer_value(rl) < 1 ||
		    json_integer_value(rl) > RATE_LIMIT_MAX) {
			http_respond_bad_field(req, "rate_limit_per_second",
			                       "rate_limit_per_second must be null or an integer "
			                       "from 1 to 10000.");
			return -1;
		}
		e->rate_limit_per_second = json_integer_value(rl);
	}
	json_t *dis = json_object_get(body, "disabled");
	if (dis && !json_is_boolean(dis)) {
		http_respond_bad_field(req, "disabled", "disabled must be true or false.");
		return -1;
	}
	if (json_is_true(dis) && e->disabled_at < 0) {
		e->disabled_at = clock_now_ms();
		snprintf(e->disabled_reason, sizeof e->disabled_reason, "user");
	} else if (json_is_false(dis) && e->disabled_at >= 0) {
		/* Enabled again: the failure clock starts over. */
		e->disabled_at = -1;
		e->disabled_reason[0] = '\0';
		e->failing_since = -1;
		e->failing_notified_at = -1;
	}
	return 0;
}

/*
 * A new secret into plain (shown once) and sealed to the instance's key
 * for row e into sealed. Responds and returns -1 on failure.
 */
static int new_secret(struct http_request *req, const struct store_endpoint *e, const char *column,
                      char plain[WH_SECRET_MAX + 1], char sealed[STORE_WH_SEALED_MAX + 1])
{
	wh_secret_new(plain);
	struct sealed_context ctx = {"webhook_endpoints", column, e->id, e->org_id};
	if (api_seal(req, &ctx, plain, sealed, STORE_WH_SEALED_MAX + 1) == 0)
		return 0;
	explicit_bzero(plain, WH_SECRET_MAX + 1);
	return -1;
}

static void create_in(struct http_request *req, const struct authn *who, const char *org_id)
{
	json_t *body = http_json_body(req);
	if (!body)
		return;
	struct store_endpoint e;
	memset(&e, 0, sizeof e);
	snprintf(e.org_id, sizeof e.org_id, "%s", org_id);
	e.rate_limit_per_second = -1;
	e.prev_expires_at = e.disabled_at = e.failing_since = e.failing_notified_at = -1;
	if (apply_fields(req, body, &e, true) < 0 ||
	    api_project_bound(req, who, e.project_id, "webhook endpoints") < 0)
		goto out;
	ulid_prefixed("ep", e.id, sizeof e.id);
	e.created_at = e.updated_at = clock_now_ms();
	char secret[WH_SECRET_MAX + 1];
	if (new_secret(req, &e, "secret", secret, e.secret) < 0)
		goto out;
	struct audit_input a =
	    api_audit(req, who, "webhook_endpoint.created", "webhook_endpoint", e.id);
	a.org_id = e.org_id;
	int rc = store_endpoint_insert(api_store(req), &e, &a);
	if (rc != STORE_OK) {
		explicit_bzero(secret, sizeof secret);
		api_store_fail(req, rc, "organization");
		goto out;
	}
	json_t *obj = endpoint_json(&e);
	json_object_set_new(obj, "secret", json_string(secret));
	explicit_bzero(secret, sizeof secret);
	http_respond_json(req, 201, obj);
out:
	json_decref(body);
}

static void create(struct http_request *req, const struct authn *who)
{
	if (api_org_key_only(req, who,
	                     "Operator keys create webhook endpoints with POST "
	                     "/v1/orgs/{orgId}/webhook-endpoints.") == 0)
		create_in(req, who, who->key.org_id);
}

static void create_for_org(struct http_request *req, const struct authn *who)
{
	struct store_org o;
	if (api_load_org(req, &o) < 0)
		return;
	create_in(req, who, o.id);
}

static void list(struct http_request *req, const struct authn *who)
{
	int limit;
	const char *cursor;
	if (api_page(req, &limit, &cursor) < 0)
		return;
	if (cursor && !api_prefixed_id_valid(cursor, ENDPOINT_ID_PFX)) {
		http_respond_bad_field(req, "cursor", "cursor is not valid.");
		return;
	}
	struct store_endpoint *eps = NULL;
	int n = 0;
	int rc = store_endpoint_list(api_store(req), caller_org(who), cursor, limit + 1, &eps, &n);
	if (rc != STORE_OK) {
		http_respond_store_error(req, rc);
		return;
	}
	json_t *items = json_array();
	for (int i = 0; i < n && i < limit; i++)
		json_array_append_new(items, endpoint_json(&eps[i]));
	api_respond_list(req, items, n > limit ? eps[limit - 1].id : NULL);
	free(eps);
}

static void get(struct http_request *req, const struct authn *who)
{
	struct store_endpoint e;
	if (load_endpoint(req, who, &e) == 0)
		http_respond_json(req, 200, endpoint_json(&e));
}

/* The names of body's members, for an audit event's details (never their values). */
static json_t *field_names(json_t *body)
{
	json_t *names = json_array();
	const char *k;
	json_t *v;
	json_object_foreach(body, k, v)
	{
		(void)v;
		json_array_append_new(names, json_string(k));
	}
	return names;
}

/* The store's mask of the fields body names (PATCH writes only those). */
static unsigned named_fields(json_t *body)
{
	static const struct {
		const char *name;
		unsigned bit;
	} fields[] = {
	    {"url", STORE_EP_URL},
	    {"description", STORE_EP_DESCRIPTION},
	    {"event_types", STORE_EP_EVENT_TYPES},
	    {"project_id", STORE_EP_PROJECT},
	    {"rate_limit_per_second", STORE_EP_RATE_LIMIT},
	    {"disabled", STORE_EP_DISABLED},
	};
	unsigned mask = 0;
	for (size_t i = 0; i < sizeof fields / sizeof *fields; i++)
		if (json_object_get(body, fields[i].name))
			mask |= fields[i].bit;
	return mask;
}

static void patch(struct http_request *req, const struct authn *who)
{
	struct store_endpoint e;
	json_t *body = endpoint_body(req, who, &e, NULL);
	if (!body)
		return;
	/* Nor may it make its endpoint an organisation-wide one (project_id null). */
	if (apply_fields(req, body, &e, false) < 0 ||
	    api_project_bound(req, who, e.project_id, "webhook endpoints") < 0)
		goto out;
	e.updated_at = clock_now_ms();
	struct audit_input a =
	    api_audit(req, who, "webhook_endpoint.updated", "webhook_endpoint", e.id);
	a.org_id = e.org_id;
	json_t *details = json_pack("{s:o}", "fields", field_names(body));
	a.details = details;
	/*
	 * Only the named fields are written: a disable by the worker (or
	 * another PATCH) committed since load_endpoint is kept, and the answer
	 * is the row as it is now.
	 */
	int rc = store_endpoint_update_fields(api_store(req), &e, named_fields(body), &a);
	json_decref(details);
	if (rc != STORE_OK) {
		api_store_fail(req, rc, "webhook endpoint");
		goto out;
	}
	struct store_endpoint now;
	if (store_endpoint_get(api_store(req), e.org_id, e.id, &now) == STORE_OK)
		e = now;
	http_respond_json(req, 200, endpoint_json(&e));
out:
	json_decref(body);
}

static void delete_endpoint(struct http_request *req, const struct authn *who)
{
	struct store_endpoint e;
	if (load_endpoint(req, who, &e) < 0 ||
	    api_project_bound(req, who, e.project_id, "webhook endpoints") < 0)
		return;
	struct audit_input a =
	    api_audit(req, who, "webhook_endpoint.deleted", "webhook_endpoint", e.id);
	a.org_id = e.org_id;
	int rc = store_endpoint_delete(api_store(req), e.org_id, e.id, &a);
	if (rc != STORE_OK) {
		api_store_fail(req, rc, "webhook endpoint");
		return;
	}
	http_respond(req, 204, NULL, NULL, 0);
}

static void rotate(struct http_request *req, const struct authn *who)
{
	static const char *const allowed[] = {"grace_seconds", NULL};
	struct store_endpoint e;
	json_t *body = endpoint_body(req, who, &e, allowed);
	if (!body)
		return;
	int64_t grace;
	if (api_grace_seconds(req, body, GRACE_DEFAULT_S, &grace) < 0)
		goto out;
	char secret[WH_SECRET_MAX + 1], sealed[STORE_WH_SEALED_MAX + 1];
	if (new_secret(req, &e, "secret", secret, sealed) < 0)
		goto out;
	int64_t now = clock_now_ms();
	int64_t prev_until = grace > 0 ? now + grace * 1000 : -1;
	struct audit_input a =
	    api_audit(req, who, "webhook_endpoint.secret_rotated", "webhook_endpoint", e.id);
	a.org_id = e.org_id;
	json_t *details = json_pack("{s:I}", "grace_seconds", (json_int_t)grace);
	a.details = details;
	int rc = store_endpoint_rotate(api_store(req), e.org_id, e.id, sealed, prev_until, &a);
	json_decref(details);
	if (rc != STORE_OK) {
		explicit_bzero(secret, sizeof secret);
		api_store_fail(req, rc, "webhook endpoint");
		goto out;
	}
	if (store_endpoint_get(api_store(req), e.org_id, e.id, &e) != STORE_OK) {
		/* Rotated: the answer must still carry the new secret. */
		e.prev_expires_at = prev_until;
		e.updated_at = now;
	}
	json_t *obj = endpoint_json(&e);
	json_object_set_new(obj, "secret", json_string(secret));
	explicit_bzero(secret, sizeof secret);
	http_respond_json(req, 200, obj);
out:
	json_decref(body);
}

static void send_test(struct http_request *req, const struct authn *who)
{
	static const char *const allowed[] = {NULL};
	struct store_endpoint e;
	json_t *body = endpoint_body(req, who, &e, allowed);
	if (!body)
		return;
	if (e.disabled_at >= 0) {
		http_respond_problem(req, 409, "CONFLICT",
		                     "The endpoint is disabled; enable it (PATCH disabled: false) "
		                     "to send it a test.",
		                     NULL);
		goto out;
	}
	struct store_message m;
	memset(&m, 0, sizeof m);
	ulid_prefixed("msg", m.id, sizeof m.id);
	snprintf(m.org_id, sizeof m.org_id, "%s", e.org_id);
	snprintf(m.type, sizeof m.type, "%s", WEBHOOK_TEST_TYP);
	m.created_at = clock_now_ms();
	json_t *data = json_pack("{s:s}", "endpoint_id", e.id);
	m.body = store_message_body(m.type, m.created_at, data);
	json_decref(data);
	struct audit_input a =
	    api_audit(req, who, "webhook_endpoint.tested", "webhook_endpoint", e.id);
	a.org_id = e.org_id;
	int rc = store_endpoint_test(api_store(req), &e, &m, &a);
	free(m.body);
	m.body = NULL;
	if (rc != STORE_OK) {
		api_store_fail(req, rc, "webhook endpoint");
		goto out;
	}
	http_respond_json(req, 201, api_message_json(&m));
out:
	json_decref(body);
}

static void recover(struct http_request *req, const struct authn *who)
{
	static const char *const allowed[] = {"since", NULL};
	struct store_endpoint e;
	json_t *body = endpoint_body(req, who, &e, allowed);
	if (!body)
		return;
	const char *since_s;
	int64_t since = -1;
	if (api_opt_string(req, body, "since", 64, &since_s) < 0)
		goto out;
	if (!since_s || clock_parse_rfc3339(since_s, &since) < 0 || since > clock_now_ms()) {
		http_respond_bad_field(req, "since",
		                       "since is required: an RFC 3339 time in the past.");
		goto out;
	}
	struct audit_input a =
	    api_audit(req, who, "webhook_endpoint.recovered", "webhook_endpoint", e.id);
	a.org_id = e.org_id;
	json_t *details = json_pack("{s:o}", "since", json_time(since));
	a.details = details;
	int n = 0;
	int rc = store_endpoint_recover(api_store(req), e.org_id, e.id, since, &a, &n);
	json_decref(details);
	if (rc != STORE_OK) {
		api_store_fail(req, rc, "webhook endpoint");
		goto out;
	}
	http_respond_json(req, 202, json_pack("{s:i}", "requeued", n));
out:
	json_decref(body);
}

void webhooks_routes(struct router *r, const struct api_group *g)
{
	api_route(r, g, "POST", "/v1/webhook-endpoints", "webhooks:write", create);
	static const char *const page_query[] = {"limit", "cursor", NULL};
	api_route_query(r, g, "GET", "/v1/webhook-endpoints", "webhooks:write", list, page_query);
	api_route(r, g, "GET", "/v1/webhook-endpoints/{endpointId}", "webhooks:write", get);
	api_route(r, g, "PATCH", "/v1/webhook-endpoints/{endpointId}", "webhooks:write", patch);
	api_route(r, g, "DELETE", "/v1/webhook-endpoints/{endpointId}", "webhooks:write",
	          delete_endpoint);
	api_route(r, g, "POST", "/v1/webhook-endpoints/{endpointId}/rotate-secret",
	          "webhooks:write", rotate);
	api_route(r, g, "POST", "/v1/webhook-endpoints/{endpointId}/test", "webhooks:write",
	          send_test);
	api_route(r, g, "POST", "/v1/webhook-endpoints/{endpointId}/recover", "webhooks:write",
	          recover);
	api_route(r, g, "POST", "/v1/orgs/{orgId}/webhook-endpoints", SCOPE_ROOT, create_for_org);
}
