/*
 * api_keys.c: the key lifecycle endpoints of docs/contract.md: create, list,
 * get, kill, lift kill, rotate, delete (soft revoke). Organisation keys see
 * only their own organisation's keys (another organisation's is 404);
 * operator keys see every organisation's.
 */
#include "api/api.h"

#include "app/changes.h"
#include "app/killops.h"
#include "auth/keys.h"
#include "core/clock.h"
#include "core/log.h"
#include "policy/killswitch.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The group's dependencies, as api_routes registered them. */
static const struct api_keys_deps *deps_of(const struct http_request *req)
{
	return api_group_deps(req);
}

/* The key object with its kill switch, from the in-memory set. */
static json_t *key_json(const struct api_keys_deps *d, const struct store_key *k)
{
	struct store_kill kill;
	bool killed = killset_get(d->kills, "key", k->id, &kill);
	return keys_to_json(k, killed ? &kill : NULL);
}

/*
 * An organisation may not change a kill switch the operator engaged on one
 * of its keys: neither lift it nor re-engage it (which would make it its
 * own). Responds 403 (or 503) and returns -1 when the caller must stop.
 */
static int check_operator_kill(struct http_request *req, const struct authn *who,
                               const struct store_key *k)
{
	struct store_kill current;
	int rc = store_kill_get(api_store(req), "key", k->id, &current);
	if (rc != STORE_OK && rc != STORE_ENOTFOUND) {
		http_respond_store_error(req, rc);
		return -1;
	}
	if (rc == STORE_OK && strcmp(current.set_by, "root") == 0 && !who->root) {
		http_respond_problem(req, 403, "FORBIDDEN",
		                     "This kill switch was engaged by the operator; only an "
		                     "operator key can change it.",
		                     json_pack("{s:s}", "set_by", "root"));
		return -1;
	}
	return 0;
}

/* Load {keyId} if the caller may see it; responds 404/503 otherwise. */
static int load_key(struct http_request *req, const struct authn *who, struct store_key *out)
{
	const char *id = http_param(req, "keyId");
	int rc = store_key_get(api_store(req), id, out);
	if (rc == STORE_OK && !who->root && strcmp(out->org_id, who->key.org_id) != 0)
		rc = STORE_ENOTFOUND;
	if (rc != STORE_OK) {
		api_store_fail(req, rc, "API key");
		return -1;
	}
	return 0;
}

/* load_key for a change: and one the caller may change (api_project_bound). */
static int load_key_to_change(struct http_request *req, const struct authn *who,
                              struct store_key *out)
{
	if (load_key(req, who, out) < 0)
		return -1;
	return api_project_bound(req, who, out->project_id, "keys");
}

/* load_key_to_change, then the JSON body with only the members allowed: NULL once it responded. */
static json_t *key_body(struct http_request *req, const struct authn *who, struct store_key *k,
                        const char *const *allowed)
{
	return load_key_to_change(req, who, k) < 0 ? NULL : api_json_body_only(req, allowed);
}

/*
 * Whether who may hand out (create or rotate) a key with scope name: an
 * operator key any; an organisation key the scopes it holds, and
 * events:ingest, which grants less than any of them (publishable keys that
 * only send events on the ingest listener), with keys:write, which the
 * routes already require.
 */
static bool may_grant(const struct authn *who, const char *name)
{
	return who->root || strcmp(name, SCOPE_INGEST) == 0 ||
	       keys_has_scope(who->key.scopes, name);
}

/*
 * Append one scope to the space-separated list out, after the checks every
 * scope must pass, the default included: known, and one the caller may grant
 * (may_grant). Responds and returns -1 on failure.
 */
static int add_scope(struct http_request *req, const struct authn *who, const char *name, char *out,
                     size_t cap, size_t *used)
{
	if (!name || !keys_scopes_valid(name) || strchr(name, ' ')) {
		http_respond_bad_field(req, "scopes",
		                       "Unknown scope (gateway, keys:read, keys:write, "
		                       "logs:read, webhooks:write, events:ingest).");
		return -1;
	}
	if (!may_grant(who, name)) {
		http_respond_problem(req, 403, "FORBIDDEN",
		                     "A key cannot grant a scope it does not hold.",
		                     json_pack("{s:s, s:s}", "field", "scopes", "scope", name));
		return -1;
	}
	if (keys_has_scope(out, name))
		return 0;
	int n = snprintf(out + *used, cap - *used, "%s%s", *used ? " " : "", name);
	if (n < 0 || (size_t)n >= cap - *used) {
		http_respond_bad_field(req, "scopes", "Too many scopes.");
		return -1;
	}
	*used += (size_t)n;
	return 0;
}

/*
 * Validate the scopes member into a space-separated list. Absent or null
 * means "gateway", which must pass the same checks as a scope named
 * explicitly: a key without "gateway" cannot mint one by leaving it out.
 */
static int parse_scopes(struct http_request *req, json_t *body, const struct authn *who, char *out,
                        size_t cap)
{
	json_t *v = json_object_get(body, "scopes");
	size_t used = 0;
	out[0] = '\0';
	if (!v || json_is_null(v))
		return add_scope(req, who, "gateway", out, cap, &used);
	if (!json_is_array(v) || json_array_size(v) == 0 || json_array_size(v) > 6) {
		http_respond_bad_field(req, "scopes",
		                       "scopes must be a non-empty array of scopes.");
		return -1;
	}
	size_t i;
	json_t *s;
	json_array_foreach(v, i, s)
	{
		if (add_scope(req, who, json_string_value(s), out, cap, &used) < 0)
			return -1;
	}
	return 0;
}

void api_keys_create_for(struct http_request *req, const struct api_keys_deps *d,
                         const struct authn *who, const char *org_id)
{
	json_t *body = http_json_body(req);
	if (!body)
		return;
	static const char *const allowed[] = {"name",   "env",        "project_id",
	                                      "scopes", "expires_at", NULL};
	const char *name, *env_s, *project_id, *expires_s;
	char scopes[STORE_SCOPES_MAX + 1];
	enum key_env env = KEY_ENV_LIVE;
	int64_t expires_at = -1;
	if (api_only_fields(req, body, allowed) < 0 ||
	    api_opt_string(req, body, "name", STORE_NAME_MAX, &name) < 0 ||
	    api_opt_string(req, body, "env", 8, &env_s) < 0 ||
	    api_opt_string(req, body, "project_id", STORE_ID_LEN, &project_id) < 0 ||
	    api_opt_string(req, body, "expires_at", 40, &expires_s) < 0 ||
	    parse_scopes(req, body, who, scopes, sizeof scopes) < 0)
		goto out;
	if (!name) {
		http_respond_bad_field(req, "name", "name is required.");
		goto out;
	}
	if (env_s && (key_env_parse(env_s, &env) < 0 || env == KEY_ENV_ROOT)) {
		http_respond_bad_field(req, "env", "env must be \"live\" or \"test\".");
		goto out;
	}
	if (expires_s &&
	    (clock_parse_rfc3339(expires_s, &expires_at) < 0 || expires_at <= clock_now_ms())) {
		http_respond_bad_field(req, "expires_at",
		                       "expires_at must be an RFC 3339 time in the future.");
		goto out;
	}
	/*
	 * An ingest key is publishable (it ships inside apps): it holds no
	 * other scope, so a leaked one can send events and nothing else, and it
	 * is bound to the project its events belong to.
	 */
	if (keys_has_scope(scopes, SCOPE_INGEST) && strcmp(scopes, SCOPE_INGEST) != 0) {
		http_respond_bad_field(req, "scopes",
		                       "An events:ingest key can have no other scope.");
		goto out;
	}
	if (keys_has_scope(scopes, SCOPE_INGEST) && !project_id) {
		http_respond_bad_field(req, "project_id",
		                       "An events:ingest key must have a project_id.");
		goto out;
	}
	char project[STORE_ID_LEN + 1];
	if (api_project_bound(req, who, project_id, "keys") < 0 ||
	    (project_id && api_project_of(req, org_id, project_id, project) < 0))
		goto out;
	struct key_spec spec = {org_id, project_id, name, env, scopes, expires_at};
	struct audit_input a = api_audit(req, who, "api_key.created", "api_key", NULL);
	a.org_id = org_id;
	json_t *details = json_pack("{s:s, s:s}", "name", name, "scopes", scopes);
	a.details = details;
	char key[KEYFMT_MAX_LEN + 1];
	struct store_key row;
	int rc = keys_create(api_store(req), d->key_prefix, d->bcrypt_cost, &spec, &a, key,
	                     sizeof key, &row);
	json_decref(details);
	if (rc != STORE_OK) {
		api_store_fail(req, rc, "organization");
		goto out;
	}
	json_t *obj = key_json(d, &row);
	json_object_set_new(obj, "key", json_string(key));
	explicit_bzero(key, sizeof key);
	http_respond_json(req, 201, obj);
out:
	json_decref(body);
}

static void create(struct http_request *req, const struct authn *who)
{
	if (api_org_key_only(req, who,
	                     "Operator keys create organization keys with POST "
	                     "/v1/orgs/{orgId}/api-keys.") == 0)
		api_keys_create_for(req, deps_of(req), who, who->key.org_id);
}

static void list(struct http_request *req, const struct authn *who)
{
	const struct api_keys_deps *d = deps_of(req);
	int limit;
	const char *cursor;
	if (api_page(req, &limit, &cursor) < 0)
		return;
	const char *project_id = http_query(req, "project_id");
	struct store_key *keys = NULL;
	int n = 0;
	int rc = store_key_list(api_store(req), who->root ? NULL : who->key.org_id, project_id,
	                        cursor, limit + 1, &keys, &n);
	if (rc != STORE_OK) {
		http_respond_store_error(req, rc);
		return;
	}
	json_t *items = json_array();
	for (int i = 0; i < n && i < limit; i++)
		json_array_append_new(items, key_json(d, &keys[i]));
	api_respond_list(req, items, n > limit ? keys[limit - 1].id : NULL);
	explicit_bzero(keys, (size_t)n * sizeof *keys);
	free(keys);
}

static void get(struct http_request *req, const struct authn *who)
{
	struct store_key k;
	if (load_key(req, who, &k) < 0)
		return;
	http_respond_json(req, 200, key_json(deps_of(req), &k));
}

static void kill(struct http_request *req, const struct authn *who)
{
	const struct api_keys_deps *d = deps_of(req);
	struct store_key k;
	static const char *const allowed[] = {"reason", NULL};
	json_t *body = key_body(req, who, &k, allowed);
	if (!body)
		return;
	const char *reason;
	if (api_opt_string(req, body, "reason", STORE_REASON_MAX, &reason) < 0 ||
	    check_operator_kill(req, who, &k) < 0)
		goto out;
	struct kill_request kr = {
	    .scope = "key",
	    .target_id = k.id,
	    .org_id = k.org_id[0] ? k.org_id : NULL,
	    .set_by = who->root ? "root" : "org",
	    .actor_type = api_actor_type(who),
	    .actor_id = who->key.id,
	    .reason = reason,
	    .request_id = req->request_id,
	};
	int rc = killops_engage(api_store(req), &kr);
	if (rc != STORE_OK) {
		api_store_fail(req, rc, "API key");
		goto out;
	}
	changes_kills(d->changes);
	changes_key(d->changes, k.id);
	store_key_get(api_store(req), k.id, &k);
	http_respond_json(req, 200, key_json(d, &k));
out:
	json_decref(body);
}

static void lift(struct http_request *req, const struct authn *who)
{
	const struct api_keys_deps *d = deps_of(req);
	struct store_key k;
	if (load_key_to_change(req, who, &k) < 0)
		return;
	struct store_kill current;
	int rc = store_kill_get(api_store(req), "key", k.id, &current);
	if (rc == STORE_OK && strcmp(current.set_by, "root") == 0 && !who->root) {
		http_respond_problem(req, 403, "FORBIDDEN",
		                     "This kill switch was engaged by the operator; only an "
		                     "operator key can lift it.",
		                     json_pack("{s:s}", "set_by", "root"));
		return;
	}
	if (rc == STORE_OK) {
		struct kill_request kr = {
		    .scope = "key",
		    .target_id = k.id,
		    .org_id = k.org_id[0] ? k.org_id : NULL,
		    .set_by = current.set_by,
		    .actor_type = api_actor_type(who),
		    .actor_id = who->key.id,
		    .request_id = req->request_id,
		};
		rc = killops_lift(api_store(req), &kr);
	}
	if (rc != STORE_OK && rc != STORE_ENOTFOUND) {
		http_respond_store_error(req, rc);
		return;
	}
	/* Lifting a switch that is not engaged is a no-op: the key works either way. */
	changes_kills(d->changes);
	changes_key(d->changes, k.id);
	store_key_get(api_store(req), k.id, &k);
	http_respond_json(req, 200, key_json(d, &k));
}

static void rotate(struct http_request *req, const struct authn *who)
{
	const struct api_keys_deps *d = deps_of(req);
	struct store_key k;
	static const char *const allowed[] = {"grace_seconds", NULL};
	json_t *body = key_body(req, who, &k, allowed);
	if (!body)
		return;
	if (!who->root && !keys_has_all_scopes(who->key.scopes, k.scopes) &&
	    strcmp(k.scopes, SCOPE_INGEST) != 0) {
		http_respond_problem(
		    req, 403, "FORBIDDEN",
		    "A key cannot rotate a key with scopes it does not hold: the new "
		    "secret would grant them.",
		    NULL);
		goto out;
	}
	int64_t grace;
	if (api_grace_seconds(req, body, 0, &grace) < 0)
		goto out;
	if (k.revoked_at >= 0) {
		http_respond_problem(req, 409, "CONFLICT", "A revoked key cannot be rotated.",
		                     NULL);
		goto out;
	}
	struct audit_input a = api_audit(req, who, "api_key.rotated", "api_key", k.id);
	a.org_id = k.org_id[0] ? k.org_id : NULL;
	json_t *details = json_pack("{s:I}", "grace_seconds", (json_int_t)grace);
	a.details = details;
	char key[KEYFMT_MAX_LEN + 1];
	int rc = keys_rotate(api_store(req), d->key_prefix, d->bcrypt_cost, &k, grace, &a, key,
	                     sizeof key);
	json_decref(details);
	if (rc != STORE_OK) {
		api_store_fail(req, rc, "API key");
		goto out;
	}
	changes_key(d->changes, k.id);
	json_t *obj = key_json(d, &k);
	json_object_set_new(obj, "key", json_string(key));
	explicit_bzero(key, sizeof key);
	http_respond_json(req, 200, obj);
out:
	json_decref(body);
}

static void revoke(struct http_request *req, const struct authn *who)
{
	const struct api_keys_deps *d = deps_of(req);
	struct store_key k;
	if (load_key_to_change(req, who, &k) < 0)
		return;
	if (k.revoked_at >= 0) { /* already revoked: nothing changes, nothing to audit */
		http_respond_json(req, 200, key_json(d, &k));
		return;
	}
	struct audit_input a = api_audit(req, who, "api_key.revoked", "api_key", k.id);
	a.org_id = k.org_id[0] ? k.org_id : NULL;
	json_t *event = k.org_id[0] ? keys_event_data(&k) : NULL;
	a.event = event;
	a.event_project_id = k.project_id[0] ? k.project_id : NULL;
	int rc = store_key_revoke(api_store(req), k.id, clock_now_ms(), &a);
	json_decref(event);
	if (rc != STORE_OK) {
		api_store_fail(req, rc, "API key");
		return;
	}
	changes_key(d->changes, k.id);
	store_key_get(api_store(req), k.id, &k);
	http_respond_json(req, 200, key_json(d, &k));
}

void api_keys_routes(struct router *r, const struct api_group *g)
{
	api_route(r, g, "POST", "/v1/api-keys", "keys:write", create);
	static const char *const list_query[] = {"project_id", "limit", "cursor", NULL};
	api_route_query(r, g, "GET", "/v1/api-keys", "keys:read", list, list_query);
	api_route(r, g, "GET", "/v1/api-keys/{keyId}", "keys:read", get);
	api_route(r, g, "DELETE", "/v1/api-keys/{keyId}", "keys:write", revoke);
	api_route(r, g, "POST", "/v1/api-keys/{keyId}/kill", "keys:write", kill);
	api_route(r, g, "DELETE", "/v1/api-keys/{keyId}/kill", "keys:write", lift);
	api_route(r, g, "POST", "/v1/api-keys/{keyId}/rotate", "keys:write", rotate);
}
