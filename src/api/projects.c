/*
 * projects.c: projects within the caller's organisation (create, list, get)
 * and their budgets (PATCH {budget}; store_budgets.h says what counts and
 * when usage.budget_threshold goes out).
 */
#include "api/api.h"

#include "core/clock.h"
#include "core/json.h"
#include "core/ulid.h"
#include "store/store_budgets.h"
#include "store/store_usage.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static json_t *project_json(const struct store_project *p)
{
	return json_pack("{s:s, s:s, s:s, s:o}", "id", p->id, "org_id", p->org_id, "name", p->name,
	                 "created_at", json_time(p->created_at));
}

static json_t *budget_json(const struct store_budget *b, const char *month, int64_t requests)
{
	json_t *at = json_array();
	for (int i = 0; i < b->n_notify; i++)
		json_array_append_new(at, json_integer(b->notify_at[i]));
	return json_pack("{s:I, s:o, s:o, s:s, s:I}", "requests_per_month",
	                 (json_int_t)b->requests_per_month, "notify_at", at, "updated_at",
	                 json_time(b->updated_at), "month", month, "requests_this_month",
	                 (json_int_t)requests);
}

/* Respond status with p, its budget (null when none) and this month's count. */
static void respond_project(struct http_request *req, int status, const struct store_project *p)
{
	struct store_budget b;
	int64_t now = clock_now_ms(), requests = 0;
	int rc = store_budget_get(api_store(req), p->id, &b);
	if (rc == STORE_OK)
		rc = store_budget_month_requests(api_store(req), p->id, now, &requests);
	if (rc != STORE_OK && rc != STORE_ENOTFOUND) {
		http_respond_store_error(req, rc);
		return;
	}
	json_t *o = project_json(p);
	char month[8];
	usage_month(now, month);
	json_object_set_new(o, "budget",
	                    rc == STORE_OK ? budget_json(&b, month, requests) : json_null());
	http_respond_json(req, status, o);
}

static void create(struct http_request *req, const struct authn *who)
{
	if (api_org_key_only(req, who, API_PROJECTS_NEED_ORG) < 0)
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
	int rc = store_project_insert(api_store(req), &p, &a);
	json_decref(event);
	if (rc != STORE_OK) {
		api_store_fail(req, rc, "project");
		goto out;
	}
	json_t *o = project_json(&p);
	json_object_set_new(o, "budget", json_null());
	http_respond_json(req, 201, o);
out:
	json_decref(body);
}

static void list(struct http_request *req, const struct authn *who)
{
	if (api_org_key_only(req, who, API_PROJECTS_NEED_ORG) < 0)
		return;
	int limit;
	const char *cursor;
	if (api_page(req, &limit, &cursor) < 0)
		return;
	struct store_project *ps = NULL;
	int n = 0;
	int rc = store_project_list(api_store(req), who->key.org_id, cursor, limit + 1, &ps, &n);
	if (rc != STORE_OK) {
		http_respond_store_error(req, rc);
		return;
	}
	json_t *items = json_array();
	for (int i = 0; i < n && i < limit; i++)
		json_array_append_new(items, project_json(&ps[i]));
	api_respond_list(req, items, n > limit ? ps[limit - 1].id : NULL);
	free(ps);
}

/* The path's project of the caller's organisation into p; responds and -1 when there is none. */
static void get(struct http_request *req, const struct authn *who)
{
	struct store_project p;
	if (api_load_project(req, who, &p) == 0)
		respond_project(req, 200, &p);
}

static int bad_notify_at(struct http_request *req)
{
	http_respond_bad_field(req, "budget.notify_at",
	                       "notify_at must be 1 to 10 ascending, distinct integers from 1 to "
	                       "1000 (percent of requests_per_month).");
	return -1;
}

/* budget (an object) into b; responds 400 naming the member that is wrong. */
static int parse_budget(struct http_request *req, json_t *v, struct store_budget *b)
{
	static const char *const members[] = {"requests_per_month", "notify_at", NULL};
	if (!json_is_object(v)) {
		http_respond_bad_field(req, "budget",
		                       "budget must be {requests_per_month, notify_at} or null.");
		return -1;
	}
	if (api_only_fields_in(req, v, "budget", members) < 0)
		return -1;
	memset(b, 0, sizeof *b);
	json_t *rpm = json_object_get(v, "requests_per_month");
	if (!json_is_integer(rpm) || json_integer_value(rpm) < 1 ||
	    json_integer_value(rpm) > BUDGET_REQUESTS_MAX) {
		http_respond_bad_field(req, "budget.requests_per_month",
		                       "requests_per_month must be an integer from 1 to "
		                       "1000000000000.");
		return -1;
	}
	b->requests_per_month = json_integer_value(rpm);
	json_t *at = json_object_get(v, "notify_at");
	if (!at) { /* the contract's example: 80 % and 100 % */
		b->notify_at[0] = 80;
		b->notify_at[1] = 100;
		b->n_notify = 2;
	} else if (!json_is_array(at) || json_array_size(at) < 1 ||
	           json_array_size(at) > BUDGET_THRESHOLDS_MAX) {
		return bad_notify_at(req);
	}
	for (size_t i = 0; at && i < json_array_size(at); i++) {
		json_t *t = json_array_get(at, i);
		if (!json_is_integer(t) || json_integer_value(t) < 1 ||
		    json_integer_value(t) > BUDGET_PERCENT_MAX ||
		    (i > 0 && json_integer_value(t) <= b->notify_at[i - 1]))
			return bad_notify_at(req);
		b->notify_at[b->n_notify++] = (int)json_integer_value(t);
	}
	b->updated_at = clock_now_ms();
	return 0;
}

static void patch(struct http_request *req, const struct authn *who)
{
	struct store_project p;
	json_t *body = api_project_body(req, who, &p);
	if (!body)
		return;
	static const char *const allowed[] = {"budget", NULL};
	json_t *bv = json_object_get(body, "budget");
	struct store_budget b;
	if (api_only_fields(req, body, allowed) < 0)
		goto out;
	if (!bv) {
		http_respond_bad_field(
		    req, "budget", "budget is required: {requests_per_month, notify_at} or null.");
		goto out;
	}
	if (!json_is_null(bv) && parse_budget(req, bv, &b) < 0)
		goto out;
	struct audit_input a = api_audit(req, who, "project.updated", "project", p.id);
	json_t *details = json_pack("{s:O}", "budget", bv);
	a.details = details;
	int rc = store_budget_set(api_store(req), p.org_id, p.id, json_is_null(bv) ? NULL : &b, &a);
	json_decref(details);
	if (rc != STORE_OK) {
		api_store_fail(req, rc, "project");
		goto out;
	}
	respond_project(req, 200, &p);
out:
	json_decref(body);
}

void projects_routes(struct router *r, const struct api_group *g)
{
	api_route(r, g, "POST", "/v1/projects", "keys:write", create);
	static const char *const page_query[] = {"limit", "cursor", NULL};
	api_route_query(r, g, "GET", "/v1/projects", "keys:read", list, page_query);
	api_route(r, g, "GET", "/v1/projects/{projectId}", "keys:read", get);
	api_route(r, g, "PATCH", "/v1/projects/{projectId}", "keys:write", patch);
}
