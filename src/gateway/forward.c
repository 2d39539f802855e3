/*
 * forward.c: the data-plane pipeline for every path Portcullis does not
 * serve itself: authenticate (checks 1-6), rate limit (7), idempotency (8),
 * forward to the upstream (9) on the worker loop's upstream client, and
 * record the response for idempotent replays.
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

#include "app/app.h"
#include "core/log.h"
#include "core/metrics.h"
#include "http/upstream.h"
#include "policy/idempotency.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

struct fw_state {
	const struct config_route *route;
	const char *base_url;
	bool idem;
	char idem_key[IDEM_STORAGE_KEY_MAX];
	char fingerprint[65];
	struct kv_idem_record rec; /* what the claim found */
	int kv_rc;
};

static struct metric m_unavailable =
    METRIC_INIT("portcullis_upstream_unavailable_total",
                "forwarded requests answered 502 UPSTREAM_UNAVAILABLE", "counter");
static struct metric m_timeout =
    METRIC_INIT("portcullis_upstream_timeouts_total",
                "forwarded requests answered 504 UPSTREAM_TIMEOUT", "counter");

static struct fw_state *fw(struct http_request *req)
{
	return req->gateway_fw;
}

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

/* Store the finished response for replays (runs on the kv pool for Redis). */
static void record_idempotent(struct http_request *req)
{
	struct app *app = req->app;
	struct fw_state *st = fw(req);
	int ttl = (int)app->cfg.idempotency_ttl_seconds;
	if (req->resp_body_len > (size_t)app->cfg.idempotency_max_response_bytes) {
		kv_idem_release(app->kv, st->idem_key);
		http_set_header(req, "Idempotency-Recorded", "false");
		return;
	}
	const char *ct =
	    req->content_type ? req->content_type : find_header(req->resp_headers, "Content-Type");
	if (kv_idem_complete(app->kv, st->idem_key, st->fingerprint, req->status, ct,
	                     req->resp_body, req->resp_body_len, ttl) != KV_OK) {
		kv_idem_release(app->kv, st->idem_key);
		http_set_header(req, "Idempotency-Recorded", "false");
		log_event(LOG_WARN, "idempotency_not_recorded", "request_id", req->request_id,
		          NULL);
	}
}

static void on_upstream(struct http_request *req, struct upstream_response *r)
{
	if (r->outcome == UPSTREAM_OK) {
		/* Upstream headers first in the list, ours (identity, rate limit) after. */
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
	} else {
		bool timeout = r->outcome == UPSTREAM_TIMEOUT;
		metric_add(timeout ? &m_timeout : &m_unavailable, 1);
		log_event(LOG_WARN, "upstream_error", "request_id", req->request_id, "outcome",
		          timeout ? "timeout" : "unavailable", "error", r->error ? r->error : "",
		          "route", fw(req)->route ? fw(req)->route->name : "default", NULL);
		http_respond_problem(req, timeout ? 504 : 502,
		                     timeout ? "UPSTREAM_TIMEOUT" : "UPSTREAM_UNAVAILABLE",
		                     timeout ? "The upstream service did not answer in time."
		                             : "The upstream service could not be reached.",
		                     NULL);
	}
	struct app *app = req->app;
	if (!fw(req)->idem) {
		http_resume(req);
	} else if (!kv_remote(app->kv)) {
		record_idempotent(req);
		http_resume(req);
	} else if (http_defer(req, app->kv_pool, record_idempotent, NULL) < 0) {
		/* The claim expires with its TTL; a retry meanwhile gets 409. */
		http_set_header(req, "Idempotency-Recorded", "false");
		http_resume(req);
	}
}

static void send_upstream(struct http_request *req)
{
	struct app *app = req->app;
	struct fw_state *st = fw(req);
	const struct authn *who = authn_of(req);
	struct http_header *extra = NULL;
	add_extra(req, &extra, "X-Portcullis-Key-Env", who->key.env);
	add_extra(req, &extra, "X-Portcullis-Key-Id", who->key.id);
	if (who->key.project_id[0])
		add_extra(req, &extra, "X-Portcullis-Project-Id", who->key.project_id);
	add_extra(req, &extra, "X-Portcullis-Org-Id", who->key.org_id);
	add_extra(req, &extra, "X-Request-Id", req->request_id);
	const char *xff = upstream_forwarded_for(req);
	if (xff)
		add_extra(req, &extra, "X-Forwarded-For", xff);
	struct upstream_target t = {
	    .base_url = st->base_url,
	    .timeout_ms = st->route && st->route->timeout_ms ? st->route->timeout_ms
	                                                     : app->cfg.upstream_timeout_ms,
	    .connect_timeout_ms = app->cfg.upstream_connect_timeout_ms,
	    .max_response_bytes = (size_t)app->cfg.upstream_max_response_bytes,
	    .ca_file = app->cfg.upstream_ca_file,
	};
	http_suspend(req, NULL);
	upstream_forward(http_worker_local(http_request_worker(req)), req, &t, extra, on_upstream);
}

/*
 * Check 8, the kv half: claim the key (or find its record) into st->rec and
 * st->kv_rc. Runs on the loop with the memory backend, on the kv pool with
 * Redis; idem_claim_done decides on the loop.
 */
static void idem_claim_job(struct http_request *req)
{
	struct app *app = req->app;
	struct fw_state *st = fw(req);
	memset(&st->rec, 0, sizeof st->rec);
	st->kv_rc =
	    kv_idem_claim(app->kv, st->idem_key, st->fingerprint, app->idem_claim_s, &st->rec);
}

/* What the claim found decides: run, replay, 409 or 422. */
static void idem_claim_done(struct http_request *req)
{
	struct fw_state *st = fw(req);
	struct kv_idem_record *rec = &st->rec;
	if (st->kv_rc != KV_OK) {
		http_set_header(req, "Retry-After", "1");
		http_respond_problem(req, 503, "IDEMPOTENCY_UNAVAILABLE",
		                     "Idempotency records cannot be checked right now; retry "
		                     "shortly.",
		                     NULL);
	} else if (rec->state == KV_IDEM_CLAIMED) {
		st->idem = true;
		kv_idem_record_clear(rec);
		send_upstream(req);
		return;
	} else if (strcmp(rec->fingerprint, st->fingerprint) != 0) {
		http_respond_problem(req, 422, "IDEMPOTENCY_KEY_REUSED",
		                     "This Idempotency-Key was used with a different request.",
		                     NULL);
	} else if (rec->state == KV_IDEM_IN_FLIGHT) {
		http_set_header(req, "Retry-After", "1");
		http_respond_problem(req, 409, "IDEMPOTENCY_IN_FLIGHT",
		                     "A request with this Idempotency-Key is still running.", NULL);
	} else {
		http_set_header(req, "Idempotent-Replayed", "true");
		http_respond(req, rec->status, rec->content_type, rec->body, rec->body_len);
	}
	kv_idem_record_clear(rec);
}

/* Check 8, then the upstream. */
static void idempotency_then_upstream(struct http_request *req)
{
	struct app *app = req->app;
	struct fw_state *st = fw(req);
	const char *key = http_header(req, "Idempotency-Key");
	if (!key || (strcmp(req->method, "POST") != 0 && strcmp(req->method, "PATCH") != 0)) {
		send_upstream(req);
		return;
	}
	if (!idem_key_valid(key, strlen(key))) {
		http_respond_bad_field(
		    req, "Idempotency-Key",
		    "Idempotency-Key must be 1 to 255 visible ASCII characters.");
		return;
	}
	const struct authn *who = authn_of(req);
	idem_fingerprint(req->method, req->raw_uri, req->body.data, req->body.len, st->fingerprint);
	idem_storage_key(who->key.org_id, who->key.id, key, st->idem_key, sizeof st->idem_key);
	if (!kv_remote(app->kv)) {
		idem_claim_job(req);
		idem_claim_done(req);
	} else if (http_defer(req, app->kv_pool, idem_claim_job, idem_claim_done) < 0) {
		http_set_header(req, "Retry-After", "1");
		http_respond_problem(req, 503, "OVERLOADED", "The server is busy; retry shortly.",
		                     NULL);
	}
}

static void after_rate_limit(struct http_request *req)
{
	if (req->responded)
		return;
	idempotency_then_upstream(req);
}

static void after_auth(struct http_request *req)
{
	const struct authn *who = authn_of(req);
	if (!who)
		return;
	if (who->root) {
		http_respond_problem(
		    req, 403, "FORBIDDEN",
		    "Operator keys manage Portcullis; they do not call the upstream.", NULL);
		return;
	}
	/*
	 * The identity headers go to the upstream (send_upstream), not back to
	 * the client: like Kong's X-Consumer-* they are for the service.
	 */
	gateway_rate_limit(req, after_rate_limit);
}

void gateway_forward(struct http_request *req)
{
	struct app *app = req->app;
	struct fw_state *st = arena_alloc(&req->arena, sizeof *st);
	memset(st, 0, sizeof *st);
	req->gateway_fw = st;
	/*
	 * req->path is the decoded path the server's request check
	 * (http/reqcheck.h) proved to be origin-form, free of dot segments,
	 * control bytes and backslashes, and to be what the raw target (which
	 * goes upstream as sent) decodes to: the route prefix picked here is
	 * the one the upstream sees.
	 */
	st->base_url = pick_upstream(&app->cfg, req->path, &st->route);
	req->log_route =
	    arena_printf(&req->arena, "proxy:%s", st->route ? st->route->name : "default");
	if (!st->base_url) {
		http_respond_problem(req, 404, "NOT_FOUND", "No such resource.", NULL);
		return;
	}
	authn_run(req, "gateway", after_auth);
}

void gateway_forward_metrics(void)
{
	metrics_register(&m_unavailable);
	metrics_register(&m_timeout);
}
