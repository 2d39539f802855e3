/*
 * gateway.c: data-plane checks shared by /v1/verify and the forwarding
 * pipeline: identity headers and check 7, the organisation's rate limit.
 *
 * The limit is GCRA over one stored value per organisation in the kv tier:
 * `rate_limit.requests` per `rate_limit.per_seconds` sustained, plus
 * `rate_limit.burst` at once, or the organisation's override. A rejected
 * request does not consume quota (GCRA leaves the stored value alone); a
 * changed limit starts a fresh bucket (the params are in the kv key). When
 * the kv tier is unreachable the limit fails open, counted in
 * portcullis_rate_limit_unavailable_total and logged.
 */
#include "gateway/gateway.h"

#include "app/app.h"
#include "core/clock.h"
#include "core/log.h"
#include "core/metrics.h"
#include "gateway/reqlog.h"
#include "http/upstream.h"
#include "ingest/geoip.h"
#include "policy/orgcache.h"
#include "policy/ratelimit_headers.h"

#include <pthread.h>
#include <stdint.h>
#include <string.h>

static struct metric rl_unavailable =
    METRIC_INIT("portcullis_rate_limit_unavailable_total",
                "requests let through unchecked because the kv tier was unreachable", "counter");
static struct metric rl_limited =
    METRIC_INIT("portcullis_rate_limited_total", "requests refused by a rate limit", "counter");

struct rl_state {
	http_handler_fn done;
	const char *per_key; /* [ingest] rate_limit: this key's own limit, not its organisation's */
	struct store_org org;
	int store_rc;
	struct gcra_params params;
	struct gcra_result result;
	int kv_rc;
};

void gateway_identity_headers(struct http_request *req, const struct authn *who)
{
	http_set_header(req, "X-Portcullis-Org-Id", who->key.org_id);
	if (who->key.project_id[0])
		http_set_header(req, "X-Portcullis-Project-Id", who->key.project_id);
	http_set_header(req, "X-Portcullis-Key-Id", who->key.id);
	http_set_header(req, "X-Portcullis-Key-Env", who->key.env);
}

static void params_for(const struct app *app, const struct store_org *org, struct gcra_params *p)
{
	if (org->rl_requests > 0) {
		p->count = org->rl_requests;
		p->period_ms = (org->rl_per_seconds > 0 ? org->rl_per_seconds : 1) * 1000;
		p->max_burst = org->rl_burst >= 0 ? org->rl_burst : 0;
	} else {
		p->count = app->cfg.rate_limit_requests;
		p->period_ms = app->cfg.rate_limit_per_seconds * 1000;
		p->max_burst = app->cfg.rate_limit_burst;
	}
}

/* The kv step: inline for the memory backend, on the kv pool for Redis. */
static void rl_kv_call(struct http_request *req)
{
	struct app *app = req->app;
	struct rl_state *st = req->gateway_rl;
	/*
	 * The params are part of the key, so a changed limit starts a fresh
	 * bucket. Under one key, a TAT left by a slower rate stays beyond
	 * now + dvt of the new one; gcra_step clamps it, but a refused request
	 * stores nothing, so the clamp never sticks and the organisation would
	 * stay refused until the old TAT passed (up to the old window).
	 */
	char key[128];
	struct strbuf b; /* "rl:org:<org id>:<count>:<period ms>:<burst>", without printf */
	strbuf_init(&b, key, sizeof key);
	strbuf_puts(&b, st->per_key ? "rl:key:" : "rl:org:");
	strbuf_puts(&b, st->per_key ? st->per_key : st->org.id);
	strbuf_put(&b, ":", 1);
	strbuf_put_i64(&b, st->params.count);
	strbuf_put(&b, ":", 1);
	strbuf_put_i64(&b, st->params.period_ms);
	strbuf_put(&b, ":", 1);
	strbuf_put_i64(&b, st->params.max_burst);
	st->kv_rc = kv_gcra(app->kv, key, &st->params, clock_now_ms(), 1, &st->result);
}

static void rl_finish(struct http_request *req)
{
	struct rl_state *st = req->gateway_rl;
	const struct gcra_result *r = &st->result;
	if (st->kv_rc != KV_OK) {
		/* Fail open, counted; logged at most once a second (not per request). */
		static int64_t last_log_ms; /* __atomic builtins only */
		metric_add(&rl_unavailable, 1);
		int64_t now = clock_now_ms(),
		        last = __atomic_load_n(&last_log_ms, __ATOMIC_RELAXED);
		if (now - last >= 1000 &&
		    __atomic_compare_exchange_n(&last_log_ms, &last, now, false, __ATOMIC_RELAXED,
		                                __ATOMIC_RELAXED))
			log_event(LOG_WARN, "rate_limit_unavailable", "request_id", req->request_id,
			          "org_id", st->org.id, "reason",
			          st->kv_rc == KV_EINVAL ? "invalid limit" : "kv unreachable",
			          NULL);
		st->done(req);
		return;
	}
	char v[RATELIMIT_VALUE_MAX];
	if (ratelimit_policy_value(&st->params, v, sizeof v) == 0)
		http_set_header(req, RATELIMIT_POLICY_FIELD, v);
	if (ratelimit_value(r, v, sizeof v) == 0)
		http_set_header(req, RATELIMIT_FIELD, v);
	if (r->limited) {
		metric_add(&rl_limited, 1);
		if (ratelimit_retry_after_value(r, v, sizeof v) == 0)
			http_set_header(req, RETRY_AFTER_FIELD, v);
		http_respond_problem(
		    req, 429, "RATE_LIMITED",
		    st->per_key ? "This key's rate limit is exhausted; retry later."
		                : "This organization's rate limit is exhausted; retry later.",
		    json_pack("{s:I}", "limit", (json_int_t)r->limit));
	}
	st->done(req);
}

static void apply_limit(struct http_request *req, struct rl_state *st)
{
	struct app *app = req->app;
	if (!st->per_key)
		params_for(app, &st->org, &st->params);
	if (!kv_remote(app->kv)) {
		rl_kv_call(req);
		rl_finish(req);
		return;
	}
	if (http_defer(req, app->kv_pool, rl_kv_call, rl_finish) < 0) {
		http_set_header(req, "Retry-After", "1");
		http_respond_problem(req, 503, "OVERLOADED", "The server is busy; retry shortly.",
		                     NULL);
		st->done(req);
	}
}

static void org_lookup_job(struct http_request *req)
{
	struct app *app = req->app;
	struct rl_state *st = req->gateway_rl;
	st->store_rc = store_org_get(app->store, req->log_org_id, &st->org);
	if (st->store_rc == STORE_OK)
		orgcache_put(app->orgs, &st->org);
	else if (st->store_rc != STORE_ENOTFOUND &&
	         orgcache_get_stale(app->orgs, req->log_org_id, &st->org))
		st->store_rc = STORE_OK; /* the row before the change, for the outage's grace */
}

static void org_lookup_done(struct http_request *req)
{
	struct rl_state *st = req->gateway_rl;
	if (st->store_rc != STORE_OK) {
		app_store_error(req, st->store_rc);
		st->done(req);
		return;
	}
	apply_limit(req, st);
}

static void register_metrics(void)
{
	metrics_register(&rl_unavailable);
	metrics_register(&rl_limited);
}

static struct rl_state *rl_start(struct http_request *req, http_handler_fn done)
{
	static pthread_once_t once = PTHREAD_ONCE_INIT;
	pthread_once(&once, register_metrics);
	struct rl_state *st = arena_alloc(&req->arena, sizeof *st);
	memset(st, 0, sizeof *st);
	st->done = done;
	req->gateway_rl = st;
	return st;
}

void gateway_rate_limit_key(struct http_request *req, int64_t per_second, http_handler_fn done)
{
	if (per_second <= 0) {
		gateway_rate_limit(req, done);
		return;
	}
	struct rl_state *st = rl_start(req, done);
	st->per_key = req->log_key_id;
	/* per_second sustained, as many again at once (the [rate_limit] default's shape). */
	st->params = (struct gcra_params){
	    .count = per_second, .period_ms = 1000, .max_burst = per_second - 1};
	apply_limit(req, st);
}

void gateway_rate_limit(struct http_request *req, http_handler_fn done)
{
	struct app *app = req->app;
	struct rl_state *st = rl_start(req, done);
	if (!req->log_org_id) { /* operator keys have no organisation limit */
		done(req);
		return;
	}
	if (orgcache_get(app->orgs, req->log_org_id, &st->org)) {
		apply_limit(req, st);
		return;
	}
	if (http_defer(req, app->lookup_pool, org_lookup_job, org_lookup_done) < 0) {
		http_set_header(req, "Retry-After", "1");
		http_respond_problem(req, 503, "OVERLOADED", "The server is busy; retry shortly.",
		                     NULL);
		done(req);
	}
}

void gateway_worker_init(struct http_worker *w, void *app)
{
	(void)app;
	gateway_forward_metrics();
	http_worker_set_local(w, upstream_create(w));
}

void gateway_worker_fini(struct http_worker *w, void *app)
{
	(void)app;
	upstream_destroy(http_worker_local(w));
	http_worker_set_local(w, NULL);
}

static void record(struct http_request *req, bool with_agent)
{
	struct app *app = req->app;
	if (!app->reqlog)
		return;
	struct store_request_row row;
	memset(&row, 0, sizeof row);
	/* Bounded copies (str_copy), not snprintf: this runs on every request. */
	str_copy(row.request_id, sizeof row.request_id, req->request_id, SIZE_MAX);
	row.received_at = req->start_ms;
	/* Set once the secret is verified: also for kills, revocations, scope refusals. */
	if (req->log_org_id)
		str_copy(row.org_id, sizeof row.org_id, req->log_org_id, SIZE_MAX);
	if (req->log_project_id)
		str_copy(row.project_id, sizeof row.project_id, req->log_project_id, SIZE_MAX);
	if (req->log_key_id)
		str_copy(row.key_id, sizeof row.key_id, req->log_key_id, SIZE_MAX);
	str_copy(row.method, sizeof row.method, req->method, SIZE_MAX);
	if (req->path)
		str_copy(row.path, sizeof row.path, req->path, SIZE_MAX);
	row.status = req->responded ? req->status : 0;
	row.duration_ms = (clock_mono_us() - req->start_us) / 1000;
	/* The address is used for this lookup only and is not kept. */
	if (!geoip_country(app->geoip, req->client_ip, row.region))
		row.region[0] = '\0';
	row.bytes_in = (int64_t)req->body.len;
	row.bytes_out = (int64_t)req->resp_body_len;
	const char *route = req->log_route ? req->log_route : req->route_label;
	if (route)
		str_copy(row.route, sizeof row.route, route, SIZE_MAX);
	if (req->log_refusal)
		str_copy(row.refusal, sizeof row.refusal, req->log_refusal, SIZE_MAX);
	const char *ua = with_agent ? http_header(req, "User-Agent") : NULL;
	if (ua)
		str_copy(row.user_agent, sizeof row.user_agent, ua, 256);
	reqlog_submit(app->reqlog, &row);
}

void gateway_record_request(struct http_request *req)
{
	record(req, true);
}

void gateway_record_request_without_agent(struct http_request *req)
{
	record(req, false);
}
