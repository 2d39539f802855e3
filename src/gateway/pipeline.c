/*
 * pipeline.c: the order of every request the gateway authenticates, as
 * tables (see pipeline.h), the driver that runs them with its checked
 * states, and the one place a request-log row is written.
 *
 * The step functions live with what they check: gateway/authn.c (checks 1
 * to 6), gateway/gateway.c (7), gateway/forward.c (route, 8, 9),
 * gateway/verify.c and gateway/ingest.c (their last steps).
 */
#include "gateway/pipeline.h"

#include "core/alloc.h"
#include "core/clock.h"
#include "core/log.h"
#include "gateway/gateway.h"
#include "gateway/reqlog.h"
#include "gateway/steps.h"
#include "ingest/geoip.h"

#include <stdint.h>
#include <string.h>

/* clang-format off */
/*
 * docs/contract.md, "The order of checks on every authenticated request",
 * checks 1 to 6: one row each, the same rows in every table below.
 */
#define CHECKS_1_TO_6 \
	{1, "credential",      gw_credential}, /* present, well-formed (shape, checksum); the key cache */ \
	{2, "guard",           gw_guard},      /* brute-force guard for the address and the key id */ \
	{3, "secret",          gw_secret},     /* verified: cached, else key row + bcrypt (verifier pool) */ \
	{4, "kill_switch",     gw_kill},       /* global, organization, key */ \
	{5, "revoked_expired", gw_revoked},    /* revoked, then expired */ \
	{6, "scope",           gw_scope}       /* the scope the route needs */

static const struct gw_step verify_steps[] = {      /* GET /v1/verify */
	CHECKS_1_TO_6,
	{7, "rate_limit",  gw_org_limit},      /* org row: lookup pool on a miss; kv pool with Redis */
	{9, "answer",      gw_verify_answer},  /* 200 with the X-Portcullis-* headers */
};

static const struct gw_step forward_steps[] = {     /* every path no route serves */
	{0, "route",       gw_route},          /* the [route] prefix or [upstream] url, else 404 */
	CHECKS_1_TO_6,
	{7, "rate_limit",  gw_org_limit},
	{8, "idempotency", gw_idempotency},    /* POST/PATCH with Idempotency-Key: claim (kv pool with Redis) */
	{9, "upstream",    gw_upstream},       /* the loop's upstream client, the request suspended */
	{9, "response",    gw_response},       /* the upstream's answer, or 502/504 */
	{9, "record",      gw_replay_record},  /* kept for idempotent replays (kv pool with Redis) */
};

static const struct gw_step ingest_steps[] = {      /* the ingest listener's Segment endpoints */
	{1, "ingest_credential", gw_ingest_credential}, /* Basic or Bearer, else the body's writeKey (control pool) */
	CHECKS_1_TO_6,
	{7, "rate_limit",  gw_ingest_limit},   /* [ingest] rate_limit per key, else the organisation's */
	{9, "parse",       gw_ingest_parse},   /* control pool, unless parsed for the writeKey */
	{9, "commit",      gw_ingest_commit},  /* the group commit, the request suspended */
	{9, "answer",      gw_ingest_answer},  /* 200 once the events are durable */
};

static const struct gw_step api_steps[] = {         /* the management API (api/api.c) */
	CHECKS_1_TO_6,
	{9, "handler",     gw_handler},        /* authn_run's done: the handler, on the control pool */
};

#define PIPELINE(name, steps, log_user_agent) {name, steps, sizeof steps / sizeof *steps, log_user_agent}
const struct gw_pipeline gw_verify  = PIPELINE("verify", verify_steps, true);
const struct gw_pipeline gw_forward = PIPELINE("forward", forward_steps, true);
const struct gw_pipeline gw_ingest  = PIPELINE("ingest", ingest_steps, false);
const struct gw_pipeline gw_api     = PIPELINE("api", api_steps, true);
/* clang-format on */

/* ---- the state machine ---- */

bool gw_transition_allowed(enum gw_state from, enum gw_state to)
{
	static const bool allowed[4][4] = {
	    [GW_IDLE] = {[GW_RUNNING] = true},
	    [GW_RUNNING] = {[GW_SUSPENDED] = true, [GW_DONE] = true},
	    [GW_SUSPENDED] = {[GW_RUNNING] = true, [GW_DONE] = true},
	};
	return (unsigned)from < 4 && (unsigned)to < 4 && allowed[from][to];
}

static const char *state_name(enum gw_state s)
{
	static const char *const names[] = {"idle", "running", "suspended", "done"};
	return (unsigned)s < 4 ? names[s] : "?";
}

_Noreturn static void broken(const struct gw_request *g, enum gw_state to, const char *what)
{
	log_event(LOG_ERROR, "pipeline_broken", "pipeline", g->pipeline->name, "step",
	          g->at < g->pipeline->n_steps ? g->pipeline->steps[g->at].name : "(end)", "from",
	          state_name(g->state), "to", state_name(to), "what", what, NULL);
	fatal("gateway pipeline: a state change that is not allowed");
}

static void set_state(struct gw_request *g, enum gw_state to)
{
	if (!gw_transition_allowed(g->state, to))
		broken(g, to, "transition");
	g->state = to;
}

static void expect_state(const struct gw_request *g, enum gw_state s, const char *what)
{
	if (g->state != s)
		broken(g, s, what);
}

/* Run steps from g->at on the loop until one suspends or the pipeline ends. */
static void drive(struct gw_request *g)
{
	const struct gw_pipeline *p = g->pipeline;
	for (; g->at < p->n_steps; g->at++) {
		const struct gw_step *s = &p->steps[g->at];
		if (s->check >= 1)
			g->logged = true; /* every request that reached authentication */
		enum gw_next next = s->run(g);
		if (next == GW_WAIT)
			return; /* g is the pool's or the event's now: not touched again here */
		expect_state(g, GW_RUNNING, "a step that did not wait suspended");
		if (next == GW_END)
			break;
	}
	set_state(g, GW_DONE);
}

void gw_run(struct gw_request *g)
{
	set_state(g, GW_RUNNING);
	g->at = 0;
	drive(g);
}

void gw_run_job(struct gw_request *g)
{
	expect_state(g, GW_SUSPENDED, "a job without gw_defer");
	enum gw_next next = g->job(g);
	if (next == GW_END) {
		set_state(g, GW_DONE);
		return;
	}
	/* http/server.c resumes a request only while it has no response. */
	if (next != GW_NEXT || g->req->responded)
		broken(g, GW_RUNNING, "a job that answered went on");
}

void gw_resume(struct gw_request *g)
{
	set_state(g, GW_RUNNING);
	g->at++;
	drive(g);
}

int gw_defer(struct gw_request *g, struct workpool *pool, enum workpool_lane lane, gw_step_fn job)
{
	expect_state(g, GW_RUNNING, "gw_defer outside a step");
	g->job = job;
	set_state(g, GW_SUSPENDED); /* before the pool can see it */
	if (g->ops->defer(g, pool, lane) == 0)
		return 0;
	set_state(g, GW_RUNNING);
	return -1;
}

void gw_suspend(struct gw_request *g)
{
	set_state(g, GW_SUSPENDED);
	g->ops->suspend(g);
}

void gw_suspend_cancel(struct gw_request *g)
{
	g->ops->cancel(g);
	set_state(g, GW_RUNNING);
}

void gw_wake(struct gw_request *g)
{
	g->ops->wake(g);
}

/* ---- through http/request.h ---- */

static void http_job(struct http_request *req)
{
	gw_run_job(gw_of(req));
}

static void http_resumed(struct http_request *req)
{
	gw_resume(gw_of(req));
}

static int http_defer_op(struct gw_request *g, struct workpool *pool, enum workpool_lane lane)
{
	return http_defer_lane(g->req, pool, lane, http_job, http_resumed);
}

static void http_suspend_op(struct gw_request *g)
{
	http_suspend(g->req, http_resumed);
}

static void http_cancel_op(struct gw_request *g)
{
	g->req->suspend_pending = false; /* not suspended after all */
	g->req->resume_fn = NULL;
}

static void http_wake_op(struct gw_request *g)
{
	http_resume(g->req);
}

const struct gw_ops gw_http_ops = {http_defer_op, http_suspend_op, http_cancel_op, http_wake_op};

/* ---- the request-log row: written here only ---- */

static void record(struct gw_request *g)
{
	struct http_request *req = g->req;
	const struct gateway_deps *d = g->deps;
	if (!d || !d->reqlog)
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
	if (!geoip_country(d->geoip, req->client_ip, row.region))
		row.region[0] = '\0';
	row.bytes_in = (int64_t)req->body.len;
	row.bytes_out = (int64_t)req->resp_body_len;
	const char *route = g->log_route ? g->log_route : req->route_label;
	if (route)
		str_copy(row.route, sizeof row.route, route, SIZE_MAX);
	if (g->log_refusal)
		str_copy(row.refusal, sizeof row.refusal, g->log_refusal, SIZE_MAX);
	/* Not for ingest: an app's user agent can single out a device. */
	const char *ua = g->pipeline->log_user_agent ? http_header(req, "User-Agent") : NULL;
	if (ua)
		str_copy(row.user_agent, sizeof row.user_agent, ua, 256);
	reqlog_submit(d->reqlog, &row);
}

/* The response was sent (req->on_complete): free what the steps hold, write the row. */
static void complete(struct http_request *req)
{
	struct gw_request *g = gw_of(req);
	explicit_bzero(&g->authn.parts, sizeof g->authn.parts);
	if (g->fw && g->fw->has_resp) /* resumed into nothing: the connection went away */
		free(g->fw->resp.body);
	if (g->ingest) {
		explicit_bzero(g->ingest->key, sizeof g->ingest->key);
		if (g->ingest->has_parsed) /* wipes the advertising ids and the writeKey */
			segment_result_free(&g->ingest->parsed);
	}
	if (g->logged)
		record(g);
}

/* ---- entry points ---- */

struct gw_request *gw_init(struct http_request *req, const struct gw_pipeline *p,
                           const struct gw_ops *ops, const struct gateway_deps *deps)
{
	struct gw_request *g = arena_alloc(&req->arena, sizeof *g);
	memset(g, 0, sizeof *g);
	g->req = req;
	g->deps = deps;
	g->pipeline = p;
	g->ops = ops;
	req->gateway = g;
	req->on_complete = complete;
	return g;
}

void gw_start(struct http_request *req, const struct gw_pipeline *p, const char *scope,
              http_handler_fn then)
{
	const struct gw_worker *gw = http_worker_local(http_request_worker(req));
	struct gw_request *g = gw_init(req, p, &gw_http_ops, gw->deps);
	g->authn.scope = scope;
	g->then = then;
	gw_run(g);
}

enum gw_next gw_handler(struct gw_request *g)
{
	g->then(g->req);
	return GW_END;
}

enum gw_next gw_overloaded(struct gw_request *g)
{
	http_set_header(g->req, "Retry-After", "1");
	http_respond_problem(g->req, 503, "OVERLOADED", "The server is busy; retry shortly.", NULL);
	return GW_END;
}

void gateway_verify(struct http_request *req)
{
	gw_start(req, &gw_verify, "gateway", NULL);
}

void gateway_forward(struct http_request *req)
{
	gw_start(req, &gw_forward, "gateway", NULL);
}

void gateway_ingest(struct http_request *req)
{
	gw_start(req, &gw_ingest, SCOPE_INGEST, NULL);
}

void authn_run(struct http_request *req, const char *scope, http_handler_fn done)
{
	gw_start(req, &gw_api, scope, done);
}

const struct authn *authn_of(struct http_request *req)
{
	const struct gw_request *g = gw_of(req);
	return g && g->authn.ok ? &g->authn.result : NULL;
}
