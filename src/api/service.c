/*
 * service.c: liveness, readiness, Prometheus metrics and RFC 9116
 * security.txt. None of them needs a credential.
 */
#include "api/service.h"

#include "core/clock.h"
#include "kv/kv.h"
#include "store/store.h"

#include <stdio.h>
#include <string.h>

static void healthz(struct http_request *req)
{
	http_respond_json(req, 200, json_pack("{s:s}", "status", "ok"));
}

/* ROUTE_BLOCKING: the store check does I/O. */
static void readyz(struct http_request *req)
{
	const struct service_deps *d = req->route->data;
	bool store_ok = store_ready(d->store);
	bool kv_ok = kv_ping(d->kv) == KV_OK;
	json_t *body =
	    json_pack("{s:s, s:{s:b, s:b}}", "status", store_ok && kv_ok ? "ready" : "not ready",
	              "checks", "store", store_ok, "kv", kv_ok);
	if (store_ok && kv_ok) {
		http_respond_json(req, 200, body);
		return;
	}
	json_decref(body);
	http_set_header(req, "Retry-After", "1");
	http_respond_problem(req, 503, "NOT_READY",
	                     store_ok ? "The shared-state tier is not reachable."
	                              : "The database is not reachable.",
	                     json_pack("{s:b, s:b}", "store", store_ok, "kv", kv_ok));
}

static void security_txt(struct http_request *req)
{
	const struct service_deps *d = req->route->data;
	char expires[32];
	/* RFC 9116: Expires is required and should be less than a year ahead. */
	clock_format_rfc3339(clock_now_ms() + 180LL * 24 * 3600 * 1000, expires, sizeof expires);
	char body[1024];
	int n = snprintf(body, sizeof body, "Contact: %s\nExpires: %s\nPreferred-Languages: en\n",
	                 d->security_contact, expires);
	http_respond(req, 200, "text/plain; charset=utf-8", body,
	             (size_t)n < sizeof body ? (size_t)n : sizeof body - 1);
}

void service_routes(struct router *r, const struct service_deps *d)
{
	router_add(r, "GET", "/healthz", healthz, 0);
	router_add_with(r, "GET", "/readyz", readyz, ROUTE_BLOCKING, d);
	router_add(r, "GET", "/metrics", http_respond_metrics, 0);
	router_add_with(r, "GET", "/.well-known/security.txt", security_txt, 0, d);
}
