/*
 * projects.c: projects within the caller's organisation (create, list, get).
 */
#include "api/api.h"

#include "core/clock.h"
#include "core/json.h"
#include "core/ulid.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static json_t *project_json(const struct store_project *p)
{
	return json_pack("{s:s, s:s, s:s, s:o}", "id", p->id, "org_id", p->org_id, "name", p->name,
	                 "created_at", json_time(p->created_at));
}

static int need_org(struct http_request *req, const struct authn *who)
{
	if (who->root) {
		http_respond_problem(req, 400, "BAD_REQUEST",
		                     "Projects belong to an organization: use an organization key.",
		                     NULL);
		return -1;
	}
	return 0;
}

static void create(struct http_request *req, const struct authn *who)
{
	struct app *app = req->app;
	if (need_org(req, who) < 0)
		return;
	json_t *body = http_json_body(req);
	if (!body)
		return;
	static const char *const allowed[] = {"name", NULL};
	const char *name;
	if (api_only_fields(req, body, allowed) < 0 ||
	    api_opt_string(req, body, "name", STORE_NAME_MAX, &name) < 0)
		goto out;
	if (!name) {
		http_respond_bad_field(req, "name", "name is required.");
		goto out;
	}
	struct store_project p;
	memset(&p, 0, sizeof p);
	ulid_new(p.id);
	snprintf(p.org_id, sizeof p.org_id, "%s", who->key.org_id);
	snprintf(p.name, sizeof p.name, "%s", name);
	p.created_at = clock_now_ms();
	struct audit_input a = api_audit(req, who, "project.created", "project", p.id);
	json_t *event =
	    json_pack("{s:s, s:s, s:s}", "project_id", p.id, "org_id", p.org_id, "name", p.name);
	a.event = event;
	a.event_project_id = p.id;
	int rc = store_project_insert(app->store, &p, &a);
	json_decref(event);
	if (rc != STORE_OK) {
		api_store_fail(req, rc, "project");
		goto out;
	}
	http_respond_json(req, 201, project_json(&p));
out:
	json_decref(body);
}

static void list(struct http_request *req, const struct authn *who)
{
	struct app *app = req->app;
	if (need_org(req, who) < 0)
		return;
	int limit;
	const char *cursor;
	if (api_page(req, &limit, &cursor) < 0)
		return;
	struct store_project *ps = NULL;
	int n = 0;
	int rc = store_project_list(app->store, who->key.org_id, cursor, limit + 1, &ps, &n);
	if (rc != STORE_OK) {
		app_store_error(req, rc);
		return;
	}
	json_t *items = json_array();
	for (int i = 0; i < n && i < limit; i++)
		json_array_append_new(items, project_json(&ps[i]));
	api_respond_list(req, items, n > limit ? ps[limit - 1].id : NULL);
	free(ps);
}

static void get(struct http_request *req, const struct authn *who)
{
	struct app *app = req->app;
	if (need_org(req, who) < 0)
		return;
	struct store_project p;
	int rc = store_project_get(app->store, who->key.org_id, http_param(req, "projectId"), &p);
	if (rc != STORE_OK) {
		api_store_fail(req, rc, "project");
		return;
	}
	http_respond_json(req, 200, project_json(&p));
}

void projects_routes(struct router *r)
{
	api_route(r, "POST", "/v1/projects", "keys:write", create);
	static const char *const page_query[] = {"limit", "cursor", NULL};
	api_route_query(r, "GET", "/v1/projects", "keys:read", list, page_query);
	api_route(r, "GET", "/v1/projects/{projectId}", "keys:read", get);
}
