/*
 * gateway.c: check 7, the rate limit (the rate_limit rows of pipeline.c's
 * tables), the identity headers, and the workers' upstream clients.
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

#include "core/alloc.h"
#include "core/clock.h"
#include "core/log.h"
#include "core/metrics.h"
#include "gateway/steps.h"
#include "http/upstream.h"
#include "policy/orgcache.h"
#include "policy/ratelimit_headers.h"

#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static struct metric rl_unavailable =
    METRIC_INIT("portcullis_rate_limit_unavailable_total",
                "requests let through unchecked because the kv tier was unreachable", "counter");
static struct metric rl_limited =
    METRIC_INIT("portcullis_rate_limited_total", "requests refused by a rate limit", "counter");

void gateway_identity_headers(struct http_request *req, const struct authn *who)
{
	http_set_header(req, "X-Portcullis-Org-Id", who->key.org_id);
	if (who->key.project_id[0])
		http_set_header(req, "X-Portcullis-Project-Id", who->key.project_id);
	http_set_header(req, "X-Portcullis-Key-Id", who->key.id);
	http_set_header(req, "X-Portcullis-Key-Env", who->key.env);
}

static void params_for(const struct config *cfg, const struct store_org *org, struct gcra_params *p)
{
	if (org->rl_requests > 0) {
		p->count = org->rl_requests;
		p->period_ms = (org->rl_per_seconds > 0 ? org->rl_per_seconds : 1) * 1000;
		p->max_burst = org->rl_burst >= 0 ? org->rl_burst : 0;
	} else {
		p->count = cfg->rate_limit_requests;
		p->period_ms = cfg->rate_limit_per_seconds * 1000;
		p->max_burst = cfg->rate_limit_burst;
	}
}

static void register_metrics(void)
{
	metrics_register(&rl_unavailable);
	metrics_register(&rl_limited);
}

static void once_register_metrics(void)
{
	static pthread_once_t once = PTHREAD_ONCE_INIT;
	pthread_once(&once, register_metrics);
}

/* The kv call: on the loop for the memory backend, on a pool for Redis. */
static void kv_call(struct gw_request *g)
{
	struct gw_limit *l = &g->limit;
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
	strbuf_puts(&b, l->per_key ? "rl:key:" : "rl:org:");
	strbuf_puts(&b, l->per_key ? l->per_key : l->org.id);
	strbuf_put(&b, ":", 1);
	strbuf_put_i64(&b, l->params.count);
	strbuf_put(&b, ":", 1);
	strbuf_put_i64(&b, l->params.period_ms);
	strbuf_put(&b, ":", 1);
	strbuf_put_i64(&b, l->params.max_burst);
	l->kv_rc = kv_gcra(g->deps->kv, key, &l->params, http_loop_now_ms(), 1, &l->result);
}

/* What the kv call found: the RateLimit fields, and 429 when limited. */
static enum gw_next judge(struct gw_request *g)
{
	struct http_request *req = g->req;
	const struct gw_limit *l = &g->limit;
	const struct gcra_result *r = &l->result;
	if (l->kv_rc != KV_OK) {
		/* Fail open, counted; logged at most once a second (not per request). */
		static int64_t last_log_ms; /* __atomic builtins only */
		metric_add(&rl_unavailable, 1);
		int64_t now = clock_now_ms(),
		        last = __atomic_load_n(&last_log_ms, __ATOMIC_RELAXED);
		if (now - last >= 1000 &&
		    __atomic_compare_exchange_n(&last_log_ms, &last, now, false, __ATOMIC_RELAXED,
		                                __ATOMIC_RELAXED))
			log_event(LOG_WARN, "rate_limit_unavailable", "request_id", req->request_id,
			          "org_id", l->org.id, "reason",
			          l->kv_rc == KV_EINVAL ? "invalid limit" : "kv unreachable", NULL);
		return GW_NEXT;
	}
	char v[RATELIMIT_VALUE_MAX];
	if (ratelimit_policy_value(&l->params, v, sizeof v) == 0)
		http_set_header(req, RATELIMIT_POLICY_FIELD, v);
	if (ratelimit_value(r, v, sizeof v) == 0)
		http_set_header(req, RATELIMIT_FIELD, v);
	if (!r->limited)
		return GW_NEXT;
	metric_add(&rl_limited, 1);
	if (ratelimit_retry_after_value(r, v, sizeof v) == 0)
		http_set_header(req, RETRY_AFTER_FIELD, v);
	http_respond_problem(req, 429, "RATE_LIMITED",
	                     l->per_key
	                         ? "This key's rate limit is exhausted; retry later."
	                         : "This organization's rate limit is exhausted; retry later.",
	                     json_pack("{s:I}", "limit", (json_int_t)r->limit));
	return GW_END;
}

/* On the kv pool (Redis). */
static enum gw_next kv_job(struct gw_request *g)
{
	kv_call(g);
	return judge(g);
}

/* The limit with its params known: inline for the memory backend, else the kv pool. */
static enum gw_next apply_limit(struct gw_request *g)
{
	if (!kv_remote(g->deps->kv))
		return kv_job(g);
	if (gw_defer(g, g->deps->kv_pool, WORKPOOL_NORMAL, kv_job) == 0)
		return GW_WAIT;
	return gw_overloaded(g);
}

/* An organisation-cache miss, on the lookup pool: the row, then the limit in the same job. */
static enum gw_next org_job(struct gw_request *g)
{
	const struct gateway_deps *d = g->deps;
	struct gw_limit *l = &g->limit;
	int rc = store_org_get(d->store, g->req->log_org_id, &l->org);
	if (rc == STORE_OK)
		orgcache_put(d->orgs, &l->org);
	else if (rc != STORE_ENOTFOUND && orgcache_get_stale(d->orgs, g->req->log_org_id, &l->org))
		rc = STORE_OK; /* the row before the change, for the outage's grace */
	if (rc != STORE_OK) {
		http_respond_store_error(g->req, rc);
		return GW_END;
	}
	params_for(d->cfg, &l->org, &l->params);
	kv_call(g);
	return judge(g);
}

enum gw_next gw_org_limit(struct gw_request *g)
{
	const struct gateway_deps *d = g->deps;
	struct gw_limit *l = &g->limit;
	once_register_metrics();
	if (!g->req->log_org_id) /* operator keys have no organisation limit */
		return GW_NEXT;
	if (orgcache_get(d->orgs, g->req->log_org_id, &l->org)) {
		params_for(d->cfg, &l->org, &l->params);
		return apply_limit(g);
	}
	if (gw_defer(g, d->lookup_pool, WORKPOOL_NORMAL, org_job) == 0)
		return GW_WAIT;
	return gw_overloaded(g);
}

enum gw_next gw_ingest_limit(struct gw_request *g)
{
	int64_t per_second = g->deps->cfg->ingest_rate_limit;
	once_register_metrics();
	if (per_second <= 0)
		return gw_org_limit(g);
	g->limit.per_key = g->req->log_key_id;
	/* per_second sustained, as many again at once (the [rate_limit] default's shape). */
	g->limit.params = (struct gcra_params){
	    .count = per_second, .period_ms = 1000, .max_burst = per_second - 1};
	return apply_limit(g);
}

void gateway_worker_init(struct http_worker *w, const struct gateway_deps *deps)
{
	gateway_forward_metrics();
	struct gw_worker *gw = xmalloc(sizeof *gw);
	gw->upstream = upstream_create(w);
	gw->deps = deps;
	http_worker_set_local(w, gw);
}

void gateway_worker_fini(struct http_worker *w)
{
	struct gw_worker *gw = http_worker_local(w);
	http_worker_set_local(w, NULL);
	if (!gw)
		return;
	upstream_destroy(gw->upstream);
	free(gw);
}
