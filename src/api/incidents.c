/*
 * incidents.c: GET /v1/incidents/report?key_id=&since=&until= (logs:read):
 * the incident report of one key of the caller's organisation (any key for
 * operator keys; another organisation's is 404), as app/incident.h builds
 * it: the same JSON as `portcullis incident report --format json`.
 */
#include "api/api.h"

#include "app/incident.h"
#include "core/clock.h"
#include "core/ulid.h"

#include <string.h>

static void report(struct http_request *req, const struct authn *who)
{
	const char *key = http_query(req, "key_id");
	if (!key) {
		http_respond_bad_field(req, "key_id", "key_id is required.");
		return;
	}
	if (!ulid_valid(key, strnlen(key, ULID_LEN + 1))) {
		http_respond_bad_field(req, "key_id", "key_id is not a valid id.");
		return;
	}
	struct incident_query q = {
	    .key_id = key, .org_id = who->root ? NULL : who->key.org_id, .now = clock_now_ms()};
	if (api_query_time(req, "since", &q.since) < 0 ||
	    api_query_time(req, "until", &q.until) < 0)
		return;
	char err[128];
	if (incident_window(&q, err, sizeof err) < 0) {
		http_respond_bad_field(req, http_query(req, "since") ? "since" : "until", err);
		return;
	}
	json_t *r = NULL;
	int rc = incident_report(api_store(req), &q, &r);
	if (rc != STORE_OK) {
		api_store_fail(req, rc, "API key");
		return;
	}
	http_respond_json(req, 200, r);
}

void incidents_routes(struct router *r, const struct api_group *g)
{
	static const char *const query[] = {"key_id", "since", "until", NULL};
	api_route_query(r, g, "GET", "/v1/incidents/report", "logs:read", report, query);
}
