/*
 * orgs.c: operator endpoints (root keys only): organisations, keys for an
 * organisation, and the organisation and global kill switches.
 */
#include "api/api.h"

#include "app/changes.h"
#include "app/killops.h"
#include "core/clock.h"
#include "core/json.h"
#include "core/ulid.h"
#include "kv/gcra.h"
#include "policy/killswitch.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The group's dependencies, as api_routes registered them. */
static const struct orgs_deps *deps_of(const struct http_request *req)
{
	return api_group_deps(req);
}

static json_t *kill_json(const struct orgs_deps *d, const char *scope, const char *target)
{
	struct store_kill k;
	if (!killset_get(d->kills, scope, target, &k))
		return json_pack("{s:b, s:n, s:n, s:n}", "engaged", 0, "set_by", "reason", "at");
	return json_pack("{s:b, s:s, s:o, s:o}", "engaged", 1, "set_by", k.set_by, "reason",
	                 json_str_or_null(k.reason), "at", json_time(k.engaged_at));
}

static json_t *org_json(const struct orgs_deps *d, const struct store_org *o)
{
	json_t *rl = o->rl_requests >= 0
	                 ? json_pack("{s:I, s:I, s:I}", "requests", (json_int_t)o->rl_requests,
	                             "per_seconds", (json_int_t)o->rl_per_seconds, "burst",
	                             (json_int_t)o->rl_burst)
	                 : json_null();
	return json_pack("{s:s, s:s, s:o, s:o, s:o, s:o, s:o}", "id", o->id, "name", o->name,
	                 "contact_email", json_str_or_null(o->contact_email), "rate_limit", rl,
	                 "kill_switch", kill_json(d, "organization", o->id), "created_at",
	                 json_time(o->created_at), "updated_at", json_time(o->updated_at));
}

static bool email_plausible(const char *s)
{
	const char *at = strchr(s, '@');
	return at && at != s && at[1] && !strchr(at + 1, '@') && !strpbrk(s, " \t\r\n<>");
}

/* Apply name/contact_email/rate_limit members of body to o. */
static int apply_fields(struct http_request *req, json_t *body, struct store_org *o, bool creating)
{
	static const char *const allowed[] = {"name", "contact_email", "rate_limit", NULL};
	const char *name, *email;
	if (api_only_fields(req, body, allowed) < 0 ||
	    api_opt_string(req, body, "name", STORE_NAME_MAX, &name) < 0 ||
	    api_opt_string(req, body, "contact_email", STORE_EMAIL_MAX, &email) < 0)
		return -1;
	if (creating && !name) {
		http_respond_bad_field(req, "name", "name is required.");
		return -1;
	}
	if (name)
		snprintf(o->name, sizeof o->name, "%s", name);
	if (email && !email_plausible(email)) {
		http_respond_bad_field(req, "contact_email",
		                       "contact_email is not an email address.");
		return -1;
	}
	if (email)
		snprintf(o->contact_email, sizeof o->contact_email, "%s", email);
	else if (json_is_null(json_object_get(body, "contact_email")))
		o->contact_email[0] = '\0';
	json_t *rl = json_object_get(body, "rate_limit");
	if (json_is_null(rl)) {
		o->rl_requests = o->rl_per_seconds = o->rl_burst = -1;
	} else if (rl) {
		static const char *const rl_members[] = {"requests", "per_seconds", "burst", NULL};
		if (json_is_object(rl) && api_only_fields_in(req, rl, "rate_limit", rl_members) < 0)
			return -1;
		json_t *rq = json_object_get(rl, "requests");
		json_t *ps = json_object_get(rl, "per_seconds");
		json_t *bu = json_object_get(rl, "burst");
		if (!json_is_object(rl) || !json_is_integer(rq) || json_integer_value(rq) < 1 ||
		    json_integer_value(rq) > 1000000000 ||
		    (ps && (!json_is_integer(ps) || json_integer_value(ps) < 1 ||
		            json_integer_value(ps) > 86400)) ||
		    (bu && (!json_is_integer(bu) || json_integer_value(bu) < 0 ||
		            json_integer_value(bu) > 1000000000))) {
			http_respond_bad_field(req, "rate_limit",
			                       "rate_limit must be {requests: 1.., per_seconds: "
			                       "1..86400, burst: 0..} or null.");
			return -1;
		}
		o->rl_requests = json_integer_value(rq);
		o->rl_per_seconds = ps ? json_integer_value(ps) : 1;
		o->rl_burst = bu ? json_integer_value(bu) : 0;
		struct gcra_params p = {.count = o->rl_requests,
		                        .period_ms = o->rl_per_seconds * 1000,
		                        .max_burst = o->rl_burst};
		if (!gcra_params_valid(&p)) {
			http_respond_bad_field(req, "rate_limit",
			                       "rate_limit allows at most one request per "
			                       "microsecond.");
			return -1;
		}
	}
	return 0;
}

static void create(struct http_request *req, const struct authn *who)
{
	const struct orgs_deps *d = deps_of(req);
	json_t *body = http_json_body(req);
	if (!body)
		return;
	struct store_org o;
	memset(&o, 0, sizeof o);
	o.rl_requests = o.rl_per_seconds = o.rl_burst = -1;
	if (apply_fields(req, body, &o, true) < 0)
		goto out;
	ulid_new(o.id);
	o.created_at = o.updated_at = clock_now_ms();
	struct audit_input a = api_audit(req, who, "org.created", "org", o.id);
	a.org_id = o.id;
	json_t *details = json_pack("{s:s}", "name", o.name);
	a.details = details;
	int rc = store_org_insert(api_store(req), &o, &a);
	json_decref(details);
	if (rc != STORE_OK) {
		api_store_fail(req, rc, "organization");
		goto out;
	}
	http_respond_json(req, 201, org_json(d, &o));
out:
	json_decref(body);
}

static void list(struct http_request *req, const struct authn *who)
{
	(void)who;
	const struct orgs_deps *d = deps_of(req);
	int limit;
	const char *cursor;
	if (api_page(req, &limit, &cursor) < 0)
		return;
	struct store_org *orgs = NULL;
	int n = 0;
	int rc = store_org_list(api_store(req), cursor, limit + 1, &orgs, &n);
	if (rc != STORE_OK) {
		http_respond_store_error(req, rc);
		return;
	}
	json_t *items = json_array();
	for (int i = 0; i < n && i < limit; i++)
		json_array_append_new(items, org_json(d, &orgs[i]));
	api_respond_list(req, items, n > limit ? orgs[limit - 1].id : NULL);
	free(orgs);
}

static void get(struct http_request *req, const struct authn *who)
{
	(void)who;
	struct store_org o;
	if (api_load_org(req, &o) == 0)
		http_respond_json(req, 200, org_json(deps_of(req), &o));
}

static void patch(struct http_request *req, const struct authn *who)
{
	const struct orgs_deps *d = deps_of(req);
	struct store_org o;
	if (api_load_org(req, &o) < 0)
		return;
	json_t *body = http_json_body(req);
	if (!body)
		return;
	if (apply_fields(req, body, &o, false) < 0)
		goto out;
	o.updated_at = clock_now_ms();
	struct audit_input a = api_audit(req, who, "org.updated", "org", o.id);
	a.org_id = o.id;
	json_t *details = json_pack("{s:o}", "fields", json_deep_copy(body));
	a.details = details;
	int rc = store_org_update(api_store(req), &o, &a);
	json_decref(details);
	if (rc != STORE_OK) {
		api_store_fail(req, rc, "organization");
		goto out;
	}
	changes_org(d->changes, o.id);
	http_respond_json(req, 200, org_json(d, &o));
out:
	json_decref(body);
}

static void create_key(struct http_request *req, const struct authn *who)
{
	struct store_org o;
	if (api_load_org(req, &o) == 0)
		api_keys_create_for(req, deps_of(req)->keys, who, o.id);
}

/* Engage or lift scope/target for an operator request. */
static void set_kill(struct http_request *req, const struct authn *who, const char *scope,
                     const char *target, const char *org_id, bool engage)
{
	const struct orgs_deps *d = deps_of(req);
	json_t *body = NULL;
	const char *reason = NULL;
	if (engage) {
		body = http_json_body(req);
		static const char *const allowed[] = {"reason", NULL};
		if (!body || api_only_fields(req, body, allowed) < 0 ||
		    api_opt_string(req, body, "reason", STORE_REASON_MAX, &reason) < 0)
			goto out;
	}
	struct kill_request kr = {
	    .scope = scope,
	    .target_id = target,
	    .org_id = org_id,
	    .set_by = "root",
	    .actor_type = api_actor_type(who),
	    .actor_id = who->key.id,
	    .reason = reason,
	    .request_id = req->request_id,
	};
	int rc = engage ? killops_engage(api_store(req), &kr) : killops_lift(api_store(req), &kr);
	if (rc != STORE_OK && !(rc == STORE_ENOTFOUND && !engage)) {
		http_respond_store_error(req, rc);
		goto out;
	}
	changes_kills(d->changes);
	http_respond_json(req, 200,
	                  json_pack("{s:s, s:o, s:o}", "scope", scope, "target_id",
	                            target[0] ? json_string(target) : json_null(), "kill_switch",
	                            kill_json(d, scope, target)));
out:
	json_decref(body);
}

static void org_kill(struct http_request *req, const struct authn *who)
{
	struct store_org o;
	if (api_load_org(req, &o) == 0)
		set_kill(req, who, "organization", o.id, o.id, true);
}

static void org_lift(struct http_request *req, const struct authn *who)
{
	struct store_org o;
	if (api_load_org(req, &o) == 0)
		set_kill(req, who, "organization", o.id, o.id, false);
}

static void global_kill(struct http_request *req, const struct authn *who)
{
	set_kill(req, who, "global", "", NULL, true);
}

static void global_lift(struct http_request *req, const struct authn *who)
{
	set_kill(req, who, "global", "", NULL, false);
}

void orgs_routes(struct router *r, const struct api_group *g)
{
	api_route(r, g, "POST", "/v1/orgs", SCOPE_ROOT, create);
	static const char *const page_query[] = {"limit", "cursor", NULL};
	api_route_query(r, g, "GET", "/v1/orgs", SCOPE_ROOT, list, page_query);
	api_route(r, g, "GET", "/v1/orgs/{orgId}", SCOPE_ROOT, get);
	api_route(r, g, "PATCH", "/v1/orgs/{orgId}", SCOPE_ROOT, patch);
	api_route(r, g, "POST", "/v1/orgs/{orgId}/api-keys", SCOPE_ROOT, create_key);
	api_route(r, g, "POST", "/v1/orgs/{orgId}/kill", SCOPE_ROOT, org_kill);
	api_route(r, g, "DELETE", "/v1/orgs/{orgId}/kill", SCOPE_ROOT, org_lift);
	api_route(r, g, "POST", "/v1/kill-switch", SCOPE_ROOT, global_kill);
	api_route(r, g, "DELETE", "/v1/kill-switch", SCOPE_ROOT, global_lift);
}
