/*
 * api.c: route registration with scopes, the authenticate-then-defer entry
 * point, and small helpers shared by the resource handlers (see api.h).
 */
#include "api/api.h"

#include "api/service.h"
#include "console/console.h"
#include "console/roles.h"
#include "core/alloc.h"
#include "core/clock.h"
#include "core/log.h"
#include "core/str.h"
#include "core/ulid.h"
#include "http/server.h"
#include "store/store_secrets.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct api_route_def {
	struct api_group group;
	const char *scope;
	api_handler_fn fn;
	const char *const *query; /* the query arguments it takes, or NULL for none */
};

#define MAX_API_ROUTES 64
static struct api_route_def defs[MAX_API_ROUTES];
static int n_defs;

/* Which def a route uses: looked up by the route's handler slot. */
static const struct api_route_def *def_for(const struct route *rt)
{
	return rt->data;
}

struct store *api_store(const struct http_request *req)
{
	return def_for(req->route)->group.api->store;
}

struct console *api_console(const struct http_request *req)
{
	return def_for(req->route)->group.api->console;
}

const void *api_group_deps(const struct http_request *req)
{
	return def_for(req->route)->group.own;
}

static void run_handler(struct http_request *req)
{
	const struct api_route_def *d = def_for(req->route);
	d->fn(req, authn_of(req));
}

struct query_check {
	const char *const *allowed;
	char unknown[65]; /* the first argument not in allowed, visible ASCII only */
	bool found;
};

static void check_query_arg(void *arg, const char *name, const char *value)
{
	(void)value;
	struct query_check *q = arg;
	if (q->found)
		return;
	for (const char *const *a = q->allowed; a && *a; a++)
		if (strcmp(*a, name) == 0)
			return;
	/* The name is the client's, decoded: keep the problem body valid UTF-8 JSON. */
	size_t n = 0;
	for (; n < sizeof q->unknown - 1 && name[n]; n++)
		q->unknown[n] = name[n] > 0x20 && name[n] < 0x7f ? name[n] : '?';
	q->unknown[n] = '\0';
	q->found = true;
}

/* 400 for a query argument the operation does not take (after authentication). */
static int refuse_unknown_query(struct http_request *req)
{
	struct query_check q = {.allowed = def_for(req->route)->query};
	http_each_query(req, check_query_arg, &q);
	if (!q.found)
		return 0;
	char msg[128];
	snprintf(msg, sizeof msg, "Unknown query argument \"%.40s\".", q.unknown);
	http_respond_bad_field(req, q.unknown, msg);
	return -1;
}

static void after_auth(struct http_request *req)
{
	if (!authn_of(req))
		return; /* the error is already set */
	if (refuse_unknown_query(req) < 0)
		return;
	if (http_defer(req, def_for(req->route)->group.api->control_pool, run_handler, NULL) < 0) {
		http_set_header(req, "Retry-After", "1");
		http_respond_problem(req, 503, "OVERLOADED", "The server is busy; retry shortly.",
		                     NULL);
	}
}

/*
 * The organisation a session acts in: the path's {orgId}, else the
 * X-Portcullis-Org-Id header, else the user's only membership. Its role
 * into *role: 0; or responds 403 (no membership there; none chosen among
 * several) or the store's error and returns -1.
 */
static int session_org(struct http_request *req, const char *user_id, struct authn *who, int *role)
{
	struct store *st = api_store(req);
	const char *org = http_param(req, "orgId");
	if (!org)
		org = http_header(req, "X-Portcullis-Org-Id");
	struct store_membership m;
	int rc;
	if (org) {
		rc = ulid_valid(org, strlen(org)) ? store_membership_get(st, user_id, org, &m)
		                                  : STORE_ENOTFOUND;
	} else {
		struct store_membership *all = NULL;
		int n = 0;
		rc = store_memberships_of(st, user_id, &all, &n);
		if (rc == STORE_OK && n == 1)
			m = all[0];
		else if (rc == STORE_OK)
			rc = n == 0 ? STORE_ENOTFOUND : STORE_ECONFLICT;
		free(all);
	}
	if (rc == STORE_ENOTFOUND || rc == STORE_ECONFLICT) {
		http_respond_problem(
		    req, 403, "FORBIDDEN",
		    rc == STORE_ENOTFOUND ? "You are not a member of this organization."
		                          : "Choose the organization with X-Portcullis-Org-Id.",
		    json_pack("{s:s}", "reason",
		              rc == STORE_ENOTFOUND ? "not_a_member" : "org_required"));
		return -1;
	}
	if (rc != STORE_OK) {
		http_respond_store_error(req, rc);
		return -1;
	}
	*role = console_role_parse(m.role);
	snprintf(who->key.org_id, sizeof who->key.org_id, "%s", m.org_id);
	return 0;
}

/*
 * A management request made with a console session (control pool): the
 * session checked (console_session_load: expiry, cross-site rule, CSRF),
 * then the right of the user's role for this route (console/roles.h), or
 * what an operator (root) key may do for an operator; then the handler,
 * with the user as the audit actor.
 */
static void session_job(struct http_request *req)
{
	const struct api_route_def *d = def_for(req->route);
	struct console_session cs;
	if (console_session_load(api_console(req), req, &cs) < 0)
		return;
	struct authn *who = arena_alloc(&req->arena, sizeof *who);
	memset(who, 0, sizeof *who);
	who->user_id = arena_strdup(&req->arena, cs.u.id);
	snprintf(who->key.id, sizeof who->key.id, "%s", cs.u.id);
	who->key.revoked_at = who->key.expires_at = who->key.prev_expires_at = -1;
	bool op = cs.u.operator;
	console_session_wipe(&cs);
	if (op) {
		who->root = true;
		snprintf(who->key.env, sizeof who->key.env, "root");
	} else {
		int role = -1;
		if (session_org(req, who->user_id, who, &role) < 0)
			return;
		const char *right =
		    console_route_right(req->route->method, req->route->pattern, d->scope);
		if (!console_role_allows((enum console_role)role, right)) {
			http_respond_problem(req, 403, "FORBIDDEN",
			                     "Your role in this organization does not allow this.",
			                     json_pack("{s:s, s:s}", "required_right", right,
			                               "role",
			                               console_role_name((enum console_role)role)));
			return;
		}
		who->project_only = console_role_project_only((enum console_role)role);
		snprintf(who->key.env, sizeof who->key.env, "live");
		snprintf(who->key.scopes, sizeof who->key.scopes, "%s",
		         console_role_scopes((enum console_role)role));
		req->log_org_id = who->key.org_id;
	}
	if (refuse_unknown_query(req) < 0)
		return;
	d->fn(req, who);
}

static void api_entry(struct http_request *req)
{
	/* An API key when one is sent; a console session only without one. */
	if (!http_header(req, "Authorization") && console_session_cookie_present(req)) {
		if (http_defer(req, def_for(req->route)->group.api->control_pool, session_job,
		               NULL) < 0) {
			http_set_header(req, "Retry-After", "1");
			http_respond_problem(req, 503, "OVERLOADED",
			                     "The server is busy; retry shortly.", NULL);
		}
		return;
	}
	authn_run(req, def_for(req->route)->scope, after_auth);
}

void api_console_fallback(struct http_request *req)
{
	/* The main listener's router (serve's http_server_opts.console_fallback_data). */
	const struct router *main_router = http_fallback_data(req);
	char allow[64];
	const struct route *rt = NULL;
	enum route_match m =
	    str_has_prefix(req->path, "/v1/")
	        ? router_match(main_router, req, req->method, req->path, &rt, allow, sizeof allow)
	        : ROUTE_NO_PATH;
	if (m == ROUTE_FOUND && rt->fn != api_entry)
		m = ROUTE_NO_PATH;
	if (m == ROUTE_NO_METHOD) {
		http_set_header(req, "Allow", allow);
		http_respond_problem(req, 405, "METHOD_NOT_ALLOWED",
		                     "This method is not allowed on this path.",
		                     json_pack("{s:s}", "allow", allow));
		return;
	}
	if (m != ROUTE_FOUND) {
		http_respond_problem(req, 404, "NOT_FOUND", "No such resource.", NULL);
		return;
	}
	req->route = rt;
	req->route_label = rt->pattern;
	api_entry(req);
}

void api_route(struct router *r, const struct api_group *g, const char *method, const char *pattern,
               const char *scope, api_handler_fn fn)
{
	api_route_query(r, g, method, pattern, scope, fn, NULL);
}

void api_route_query(struct router *r, const struct api_group *g, const char *method,
                     const char *pattern, const char *scope, api_handler_fn fn,
                     const char *const *query)
{
	if (n_defs == MAX_API_ROUTES)
		fatal("too many API routes");
	defs[n_defs] = (struct api_route_def){*g, scope, fn, query};
	router_add_with(r, method, pattern, api_entry, 0, &defs[n_defs]);
	n_defs++;
}

int api_project_bound(struct http_request *req, const struct authn *who, const char *project_id,
                      const char *what)
{
	if (!who->project_only || (project_id && project_id[0]))
		return 0;
	char msg[160];
	snprintf(msg, sizeof msg, "Your role manages only %s bound to a project.", what);
	http_respond_problem(req, 403, "FORBIDDEN", msg,
	                     json_pack("{s:s, s:s}", "reason", "org_wide", "role", "developer"));
	return -1;
}

const char *api_actor_type(const struct authn *who)
{
	return who->user_id ? "user" : who->root ? "root" : "key";
}

struct audit_input api_audit(struct http_request *req, const struct authn *who, const char *action,
                             const char *target_type, const char *target_id)
{
	struct audit_input a = {
	    .org_id = who->key.org_id[0] ? who->key.org_id : NULL,
	    .actor_type = api_actor_type(who),
	    .actor_id = who->key.id,
	    .action = action,
	    .target_type = target_type,
	    .target_id = target_id,
	    .request_id = req->request_id,
	};
	return a;
}

int api_seal(struct http_request *req, const struct sealed_context *ctx, const char *secret,
             char *out, size_t cap)
{
	int rc = store_secret_seal(api_store(req), ctx, (const uint8_t *)secret, strlen(secret),
	                           out, cap);
	if (rc == STORE_OK)
		return 0;
	if (rc == STORE_ENOTFOUND)
		http_respond_problem(
		    req, 503, "SECRETS_NOT_INITIALIZED",
		    "This instance has no key pair for secrets at rest; the operator "
		    "runs `portcullis secrets init`.",
		    NULL);
	else
		http_respond_store_error(req, rc);
	return -1;
}

void api_not_found(struct http_request *req, const char *what)
{
	char msg[128];
	snprintf(msg, sizeof msg, "No such %s.", what);
	http_respond_problem(req, 404, "NOT_FOUND", msg, NULL);
}

void api_store_fail(struct http_request *req, int rc, const char *what)
{
	if (rc == STORE_ENOTFOUND)
		api_not_found(req, what);
	else if (rc == STORE_ECONFLICT)
		http_respond_problem(req, 409, "CONFLICT",
		                     "The change conflicts with the current state.", NULL);
	else
		http_respond_store_error(req, rc);
}

int api_page(struct http_request *req, int *limit, const char **cursor)
{
	return api_page_sized(req, 50, 100, limit, cursor);
}

int api_page_sized(struct http_request *req, int def, int max, int *limit, const char **cursor)
{
	const char *l = http_query(req, "limit");
	int64_t v = def;
	if (l && parse_int64_z(l, 1, max, &v) < 0) {
		char msg[64];
		snprintf(msg, sizeof msg, "limit must be from 1 to %d.", max);
		http_respond_problem(req, 400, "BAD_REQUEST", msg,
		                     json_pack("{s:s}", "field", "limit"));
		return -1;
	}
	*limit = (int)v;
	*cursor = http_query(req, "cursor");
	if (*cursor && strlen(*cursor) > 64) {
		http_respond_problem(req, 400, "BAD_REQUEST", "cursor is not valid.",
		                     json_pack("{s:s}", "field", "cursor"));
		return -1;
	}
	return 0;
}

void api_respond_page(struct http_request *req, json_t *rows, int limit, const char *id_member)
{
	char next[128];
	bool more = json_array_size(rows) > (size_t)limit;
	if (more) {
		json_array_remove(rows, (size_t)limit);
		json_t *last = json_array_get(rows, (size_t)limit - 1);
		const char *id = json_string_value(json_object_get(last, id_member));
		snprintf(next, sizeof next, "%s", id ? id : "");
	}
	api_respond_list(req, rows, more ? next : NULL);
}

int api_query_id(struct http_request *req, const char *name, const char **out)
{
	const char *v = http_query(req, name);
	*out = v;
	if (v && !ulid_valid(v, strnlen(v, ULID_LEN + 1))) {
		char msg[64];
		snprintf(msg, sizeof msg, "%s is not a valid id.", name);
		http_respond_bad_field(req, name, msg);
		return -1;
	}
	return 0;
}

void api_respond_list(struct http_request *req, json_t *items, const char *next_cursor)
{
	http_respond_json(req, 200,
	                  json_pack("{s:o, s:o}", "data", items, "next_cursor",
	                            next_cursor ? json_string(next_cursor) : json_null()));
}

int api_opt_string(struct http_request *req, json_t *body, const char *field, size_t max,
                   const char **out)
{
	json_t *v = json_object_get(body, field);
	*out = NULL;
	if (!v || json_is_null(v))
		return 0;
	if (!json_is_string(v) || json_string_length(v) == 0 || json_string_length(v) > max ||
	    strlen(json_string_value(v)) != json_string_length(v)) {
		char msg[128];
		snprintf(msg, sizeof msg, "%s must be a string of 1 to %zu characters.", field,
		         max);
		http_respond_bad_field(req, field, msg);
		return -1;
	}
	*out = json_string_value(v);
	return 0;
}

int api_load_org(struct http_request *req, struct store_org *o)
{
	int rc = store_org_get(api_store(req), http_param(req, "orgId"), o);
	if (rc != STORE_OK) {
		api_store_fail(req, rc, "organization");
		return -1;
	}
	return 0;
}

int api_org_key_only(struct http_request *req, const struct authn *who, const char *detail)
{
	if (!who->root)
		return 0;
	http_respond_problem(req, 400, "BAD_REQUEST", detail, NULL);
	return -1;
}

int api_load_project(struct http_request *req, const struct authn *who, struct store_project *p)
{
	if (api_org_key_only(req, who, API_PROJECTS_NEED_ORG) < 0)
		return -1;
	int rc =
	    store_project_get(api_store(req), who->key.org_id, http_param(req, "projectId"), p);
	if (rc != STORE_OK) {
		api_store_fail(req, rc, "project");
		return -1;
	}
	return 0;
}

json_t *api_project_body(struct http_request *req, const struct authn *who, struct store_project *p)
{
	return api_load_project(req, who, p) < 0 ? NULL : http_json_body(req);
}

int api_grace_seconds(struct http_request *req, json_t *body, int64_t def, int64_t *out)
{
	json_t *g = json_object_get(body, "grace_seconds");
	*out = def;
	if (!g || json_is_null(g))
		return 0;
	if (!json_is_integer(g) || json_integer_value(g) < 0 ||
	    json_integer_value(g) > API_GRACE_MAX_S) {
		http_respond_bad_field(req, "grace_seconds",
		                       "grace_seconds must be an integer from 0 to 604800.");
		return -1;
	}
	*out = json_integer_value(g);
	return 0;
}

int api_project_of(struct http_request *req, const char *org_id, const char *pid,
                   char out[STORE_ID_LEN + 1])
{
	struct store_project p;
	int rc = pid && ulid_valid(pid, strlen(pid))
	             ? store_project_get(api_store(req), org_id, pid, &p)
	             : STORE_ENOTFOUND;
	if (rc == STORE_ENOTFOUND) {
		http_respond_bad_field(req, "project_id", "No such project.");
		return -1;
	}
	if (rc != STORE_OK) {
		http_respond_store_error(req, rc);
		return -1;
	}
	snprintf(out, STORE_ID_LEN + 1, "%s", p.id);
	return 0;
}

int api_query_time(struct http_request *req, const char *name, int64_t *out)
{
	const char *v = http_query(req, name);
	*out = -1;
	if (!v)
		return 0;
	if (clock_parse_rfc3339(v, out) < 0) {
		char msg[96];
		snprintf(msg, sizeof msg, "%s must be an RFC 3339 timestamp.", name);
		http_respond_bad_field(req, name, msg);
		return -1;
	}
	return 0;
}

/* Cut s to at most max bytes without splitting a UTF-8 sequence (JSON must stay valid). */
static void utf8_cut(char *s, size_t max)
{
	size_t n = strlen(s);
	if (n <= max)
		return;
	n = max;
	while (n > 0 && ((unsigned char)s[n] & 0xC0) == 0x80)
		n--;
	s[n] = '\0';
}

int api_only_fields_in(struct http_request *req, json_t *obj, const char *parent,
                       const char *const *allowed)
{
	const char *k;
	json_t *v;
	json_object_foreach(obj, k, v)
	{
		bool ok = false;
		for (const char *const *a = allowed; *a; a++)
			if (strcmp(*a, k) == 0)
				ok = true;
		if (!ok) {
			/* Member names are valid UTF-8 (jansson checked): cut, never split. */
			char field[128], shown[64], msg[96];
			snprintf(field, sizeof field, "%s%s%s", parent ? parent : "",
			         parent ? "." : "", k);
			utf8_cut(field, sizeof field - 1);
			str_copy(shown, sizeof shown, field, sizeof shown - 1);
			utf8_cut(shown, 40);
			snprintf(msg, sizeof msg, "Unknown field \"%s\".", shown);
			http_respond_bad_field(req, field, msg);
			return -1;
		}
	}
	return 0;
}

int api_only_fields(struct http_request *req, json_t *body, const char *const *allowed)
{
	return api_only_fields_in(req, body, NULL, allowed);
}

json_t *api_json_body_only(struct http_request *req, const char *const *allowed)
{
	json_t *body = http_json_body(req);
	if (body && allowed && api_only_fields(req, body, allowed) < 0) {
		json_decref(body);
		return NULL;
	}
	return body;
}

void api_routes(struct router *r, const struct api_wiring *w)
{
	const struct api_group plain = {&w->api, NULL};
	orgs_routes(r, &(struct api_group){&w->api, &w->orgs});
	invitations_routes(r, &plain);
	projects_routes(r, &plain);
	inventory_routes(r,
	                 &plain); /* before api_keys_routes: /v1/api-keys/{keyId} would take it */
	api_keys_routes(r, &(struct api_group){&w->api, &w->keys});
	audit_routes(r, &plain);
	incidents_routes(r, &plain);
	requests_routes(r, &plain);
	webhooks_routes(r, &(struct api_group){&w->api, &w->webhooks});
	webhook_messages_routes(r, &plain);
	events_routes(r, &plain);
	secret_scanning_routes(r, &w->scanning);
	usage_routes(r, &plain);
	capi_routes(r, &plain);
}
