/*
 * forward.c: the forwarding rows of pipeline.c's gw_forward table, for every
 * path Portcullis does not serve itself: the route (which upstream, before
 * check 1), idempotency (check 8), the upstream on the worker loop's client
 * (9), its response, and the response kept for idempotent replays.
 *
 * Idempotency (docs/contract.md): POST and PATCH with Idempotency-Key. The first
 * use claims the key in the kv tier (atomically) and runs; a finished
 * duplicate replays the stored status, Content-Type and body with
 * Idempotent-Replayed: true; a running duplicate gets 409; another request
 * with the same key gets 422. Upstream failures (502/504) are recorded too,
 * so a retry does not run twice. Responses over
 * [idempotency] max_response_bytes are not recorded, and say so in
 * Idempotency-Recorded: false. If the kv tier is down, an idempotent
 * request gets 503 rather than risk running twice.
 */
#include "gateway/gateway.h"

#include "core/log.h"
#include "core/metrics.h"
#include "gateway/steps.h"
#include "http/upstream.h"
#include "policy/idempotency.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static struct metric m_unavailable =
    METRIC_INIT("portcullis_upstream_unavailable_total",
                "forwarded requests answered 502 UPSTREAM_UNAVAILABLE", "counter");
static struct metric m_timeout =
    METRIC_INIT("portcullis_upstream_timeouts_total",
                "forwarded requests answered 504 UPSTREAM_TIMEOUT", "counter");

/* Longest matching [route] prefix, else [upstream] url; NULL when none. */
static const char *pick_upstream(const struct config *cfg, const char *path,
                                 const struct config_route **route)
{
	size_t best = 0;
	*route = NULL;
	for (size_t i = 0; i < cfg->n_routes; i++) {
		const struct config_route *r = &cfg->routes[i];
		size_t n = strlen(r->prefix);
		if (n > best && strncmp(path, r->prefix, n) == 0) {
			best = n;
			*route = r;
		}
	}
	if (*route)
		return (*route)->upstream;
	return cfg->upstream_url[0] ? cfg->upstream_url : NULL;
}

static void add_extra(struct http_request *req, struct http_header **list, const char *name,
                      const char *value)
{
	struct http_header *h = arena_alloc(&req->arena, sizeof *h);
	h->name = name;
	h->value = value;
	h->next = *list;
	*list = h;
}

static const char *find_header(const struct http_header *h, const char *name)
{
	for (; h; h = h->next)
		if (strcasecmp(h->name, name) == 0)
			return h->value;
	return NULL;
}

/* ---- check 8 ---- */

/* Claim the key (or find its record), and what that decides: run, replay, 409 or 422. */
static enum gw_next claim_job(struct gw_request *g)
{
	struct http_request *req = g->req;
	const struct gateway_deps *d = g->deps;
	struct gw_fw *f = g->fw;
	struct kv_idem_record rec;
	memset(&rec, 0, sizeof rec);
	int rc = kv_idem_claim(d->kv, f->idem_key, f->fingerprint, d->idem_claim_s, &rec);
	enum gw_next next = GW_END;
	if (rc != KV_OK) {
		http_set_header(req, "Retry-After", "1");
		http_respond_problem(req, 503, "IDEMPOTENCY_UNAVAILABLE",
		                     "Idempotency records cannot be checked right now; retry "
		                     "shortly.",
		                     NULL);
	} else if (rec.state == KV_IDEM_CLAIMED) {
		f->idem = true;
		next = GW_NEXT;
	} else if (strcmp(rec.fingerprint, f->fingerprint) != 0) {
		http_respond_problem(req, 422, "IDEMPOTENCY_KEY_REUSED",
		                     "This Idempotency-Key was used with a different request.",
		                     NULL);
	} else if (rec.state == KV_IDEM_IN_FLIGHT) {
		http_set_header(req, "Retry-After", "1");
		http_respond_problem(req, 409, "IDEMPOTENCY_IN_FLIGHT",
		                     "A request with this Idempotency-Key is still running.", NULL);
	} else {
		http_set_header(req, "Idempotent-Replayed", "true");
		http_respond(req, rec.status, rec.content_type, rec.body, rec.body_len);
	}
	kv_idem_record_clear(&rec);
	return next;
}

/* POST and PATCH with Idempotency-Key: the claim, inline or on the kv pool (Redis). */
enum gw_next gw_idempotency(struct gw_request *g)
{
	struct http_request *req = g->req;
	const struct gateway_deps *d = g->deps;
	struct gw_fw *f = g->fw;
	const char *key = http_header(req, "Idempotency-Key");
	if (!key || (strcmp(req->method, "POST") != 0 && strcmp(req->method, "PATCH") != 0))
		return GW_NEXT;
	if (!idem_key_valid(key, strlen(key))) {
		http_respond_bad_field(
		    req, "Idempotency-Key",
		    "Idempotency-Key must be 1 to 255 visible ASCII characters.");
		return GW_END;
	}
	const struct store_key *k = &g->authn.result.key;
	idem_fingerprint(req->method, req->raw_uri, req->body.data, req->body.len, f->fingerprint);
	idem_storage_key(k->org_id, k->id, key, f->idem_key, sizeof f->idem_key);
	if (!kv_remote(d->kv))
		return claim_job(g);
	if (gw_defer(g, d->kv_pool, WORKPOOL_NORMAL, claim_job) == 0)
		return GW_WAIT;
	return gw_overloaded(g);
}

/* ---- check 9 ---- */

/* The transfer ended (on the loop): keep the answer for gw_response. */
static void on_upstream(struct http_request *req, struct upstream_response *r)
{
	struct gw_request *g = gw_of(req);
	g->fw->resp = *r;
	g->fw->has_resp = true;
	gw_wake(g);
}

enum gw_next gw_upstream(struct gw_request *g)
{
	struct http_request *req = g->req;
	const struct gateway_deps *d = g->deps;
	struct gw_fw *f = g->fw;
	const struct store_key *k = &g->authn.result.key;
	/*
	 * The identity headers go to the upstream, not back to the client:
	 * like Kong's X-Consumer-* they are for the service.
	 */
	struct http_header *extra = NULL;
	add_extra(req, &extra, "X-Portcullis-Key-Env", k->env);
	add_extra(req, &extra, "X-Portcullis-Key-Id", k->id);
	if (k->project_id[0])
		add_extra(req, &extra, "X-Portcullis-Project-Id", k->project_id);
	add_extra(req, &extra, "X-Portcullis-Org-Id", k->org_id);
	add_extra(req, &extra, "X-Request-Id", req->request_id);
	const char *xff = upstream_forwarded_for(req);
	if (xff)
		add_extra(req, &extra, "X-Forwarded-For", xff);
	struct upstream_target t = {
	    .base_url = f->base_url,
	    .timeout_ms = f->route && f->route->timeout_ms ? f->route->timeout_ms
	                                                   : d->cfg->upstream_timeout_ms,
	    .connect_timeout_ms = d->cfg->upstream_connect_timeout_ms,
	    .max_response_bytes = (size_t)d->cfg->upstream_max_response_bytes,
	    .ca_file = d->cfg->upstream_ca_file,
	};
	gw_suspend(g);
	struct gw_worker *gw = http_worker_local(http_request_worker(req));
	upstream_forward(gw->upstream, req, &t, extra, on_upstream);
	return GW_WAIT;
}

enum gw_next gw_response(struct gw_request *g)
{
	struct http_request *req = g->req;
	struct upstream_response *r = &g->fw->resp;
	g->fw->has_resp = false; /* the body is the response's from here */
	if (r->outcome == UPSTREAM_OK) {
		/* Upstream headers first in the list, ours (rate limit) after. */
		struct http_header *h = r->headers;
		if (h) {
			struct http_header *last = h;
			while (last->next)
				last = last->next;
			last->next = req->resp_headers;
			req->resp_headers = h;
		}
		http_respond_owned(req, r->status, NULL, r->body, r->body_len);
		if (strcmp(req->method, "HEAD") == 0) {
			/* RFC 9110 8.6: a HEAD answer's Content-Length is the GET body's, or none.
			 */
			req->head_for_upstream = true;
			req->head_length = r->content_length;
		}
		return GW_NEXT;
	}
	free(r->body);
	bool timeout = r->outcome == UPSTREAM_TIMEOUT;
	metric_add(timeout ? &m_timeout : &m_unavailable, 1);
	log_event(LOG_WARN, "upstream_error", "request_id", req->request_id, "outcome",
	          timeout ? "timeout" : "unavailable", "error", r->error ? r->error : "", "route",
	          g->fw->route ? g->fw->route->name : "default", NULL);
	http_respond_problem(req, timeout ? 504 : 502,
	                     timeout ? "UPSTREAM_TIMEOUT" : "UPSTREAM_UNAVAILABLE",
	                     timeout ? "The upstream service did not answer in time."
	                             : "The upstream service could not be reached.",
	                     NULL);
	return GW_NEXT;
}

/* Keep the finished response for replays (on the kv pool for Redis). */
static enum gw_next record_job(struct gw_request *g)
{
	struct http_request *req = g->req;
	const struct gateway_deps *d = g->deps;
	struct gw_fw *f = g->fw;
	int ttl = (int)d->cfg->idempotency_ttl_seconds;
	if (req->resp_body_len > (size_t)d->cfg->idempotency_max_response_bytes) {
		kv_idem_release(d->kv, f->idem_key);
		http_set_header(req, "Idempotency-Recorded", "false");
		return GW_END;
	}
	const char *ct =
	    req->content_type ? req->content_type : find_header(req->resp_headers, "Content-Type");
	if (kv_idem_complete(d->kv, f->idem_key, f->fingerprint, req->status, ct, req->resp_body,
	                     req->resp_body_len, ttl) != KV_OK) {
		kv_idem_release(d->kv, f->idem_key);
		http_set_header(req, "Idempotency-Recorded", "false");
		log_event(LOG_WARN, "idempotency_not_recorded", "request_id", req->request_id,
		          NULL);
	}
	return GW_END;
}

enum gw_next gw_replay_record(struct gw_request *g)
{
	const struct gateway_deps *d = g->deps;
	if (!g->fw->idem)
		return GW_END;
	if (!kv_remote(d->kv))
		return record_job(g);
	if (gw_defer(g, d->kv_pool, WORKPOOL_NORMAL, record_job) == 0)
		return GW_WAIT;
	/* The claim expires with its TTL; a retry meanwhile gets 409. */
	http_set_header(g->req, "Idempotency-Recorded", "false");
	return GW_END;
}

/* ---- before check 1 ---- */

enum gw_next gw_route(struct gw_request *g)
{
	struct http_request *req = g->req;
	struct gw_fw *f = arena_alloc(&req->arena, sizeof *f);
	memset(f, 0, sizeof *f);
	g->fw = f;
	/*
	 * req->path is the decoded path the server's request check
	 * (http/reqcheck.h) proved to be origin-form, free of dot segments,
	 * control bytes and backslashes, and to be what the raw target (which
	 * goes upstream as sent) decodes to: the route prefix picked here is
	 * the one the upstream sees.
	 */
	f->base_url = pick_upstream(g->deps->cfg, req->path, &f->route);
	if (f->route) { /* "proxy:<name>", without printf: this runs on every forwarded request */
		size_t n = strlen(f->route->name);
		char *label = arena_alloc(&req->arena, sizeof "proxy:" + n);
		memcpy(label, "proxy:", sizeof "proxy:" - 1);
		memcpy(label + sizeof "proxy:" - 1, f->route->name, n);
		label[sizeof "proxy:" - 1 + n] = '\0';
		g->log_route = label;
	} else {
		g->log_route = "proxy:default";
	}
	if (!f->base_url) {
		http_respond_problem(req, 404, "NOT_FOUND", "No such resource.", NULL);
		return GW_END;
	}
	return GW_NEXT;
}

void gateway_forward_metrics(void)
{
	metrics_register(&m_unavailable);
	metrics_register(&m_timeout);
}
