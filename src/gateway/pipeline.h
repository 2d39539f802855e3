/*
 * pipeline.h: the data plane's request pipeline as data (docs/architecture.md,
 * "The request pipeline").
 *
 * Every request the gateway authenticates runs one const table of steps
 * (pipeline.c) over one typed context, struct gw_request: /v1/verify,
 * forwarding, the ingest listener and the management API are four tables
 * that share the rows of checks 1 to 6 and differ in their last steps. A
 * step runs on the worker loop and either continues inline (GW_NEXT), ends
 * the pipeline (GW_END: the request is answered, or handed on), or suspends
 * once (GW_WAIT) for a pool (gw_defer: the verifier, lookup, kv or control
 * pool) or an event (gw_suspend: the upstream client, the group commit);
 * the pipeline then resumes into the next step on the loop.
 *
 * The context's state is explicit and every change of it is checked
 * (gw_transition_allowed; a wrong one aborts):
 *
 *   IDLE -> RUNNING -> SUSPENDED -> RUNNING -> ... -> DONE
 *                      SUSPENDED -> DONE   (a pool job answered the request)
 */
#ifndef PORTCULLIS_GATEWAY_PIPELINE_H
#define PORTCULLIS_GATEWAY_PIPELINE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "auth/keycache.h"
#include "auth/keyfmt.h"
#include "core/config.h"
#include "core/workpool.h"
#include "gateway/authn.h"
#include "gateway/gateway_deps.h"
#include "http/request.h"
#include "http/upstream.h"
#include "ingest/segment.h"
#include "kv/kv.h"
#include "policy/idempotency.h"
#include "store/store.h"

struct gw_request;

enum gw_state { GW_IDLE, GW_RUNNING, GW_SUSPENDED, GW_DONE };

/** What a step (or a pool job) says comes next. */
enum gw_next {
	GW_NEXT, /* the next step, now */
	GW_WAIT, /* suspended (gw_defer or gw_suspend): the next step when it resumes */
	GW_END,  /* no more steps: the response is set (or the request was handed on) */
};

typedef enum gw_next (*gw_step_fn)(struct gw_request *g);

struct gw_step {
	int check;        /* docs/contract.md's order of checks, 1 to 9; 0 comes before check 1 */
	const char *name; /* for the table's readers and tests */
	gw_step_fn run;   /* on the worker loop */
};

struct gw_pipeline {
	const char *name;
	const struct gw_step *steps;
	size_t n_steps;
	bool log_user_agent; /* the request-log row keeps the User-Agent (not for ingest) */
};

/** The tables (pipeline.c). */
extern const struct gw_pipeline gw_verify, gw_forward, gw_ingest, gw_api;

/**
 * How a context is suspended and resumed: through http/request.h
 * (gw_http_ops) in the server, by hand in tests. defer queues gw_run_job(g)
 * on pool with gw_resume(g) to follow on the loop (0, or -1 when the queue
 * is full); suspend/cancel/wake are http_suspend (with gw_resume to follow),
 * its undoing before anything waited, and http_resume.
 */
struct gw_ops {
	int (*defer)(struct gw_request *g, struct workpool *pool, enum workpool_lane lane);
	void (*suspend)(struct gw_request *g);
	void (*cancel)(struct gw_request *g);
	void (*wake)(struct gw_request *g);
};
extern const struct gw_ops gw_http_ops;

/* ---- the context: what each step keeps for the steps after it ---- */

/* Where check 1 finds the key. */
enum gw_cred {
	GW_CRED_BEARER = 0, /* Authorization: Bearer <key> */
	GW_CRED_GIVEN,      /* token, tlen (the ingest listener's Basic user name or writeKey) */
	GW_CRED_NONE,       /* none was sent */
};

/* Checks 1 to 6 (gateway/authn.c). */
struct gw_authn {
	struct authn result; /* what authn_of returns once ok */
	bool ok;             /* check 6 passed */
	const char *scope;   /* the scope the request needs */
	enum gw_cred cred;
	char
	    *token; /* GW_CRED_GIVEN: the key, tlen bytes (need not end in NUL); wiped by check 1 */
	size_t tlen;
	struct api_key_parts parts; /* secret wiped as soon as it is verified or rejected */
	uint8_t mac[32];
	bool verified;           /* check 3 passed from the cache, or after bcrypt */
	enum workpool_lane lane; /* check 2's verdict for the verifier pool */
	enum keycache_slot slot;
	int64_t touched_at; /* the cache entry's last touch (keycache_check) */
};

/* Check 7 (gateway/gateway.c). */
struct gw_limit {
	const char *per_key; /* [ingest] rate_limit: this key's own limit, not its organisation's */
	struct store_org org;
	struct gcra_params params;
	struct gcra_result result;
	int kv_rc;
};

/* Checks 8 and 9 when forwarding (gateway/forward.c). */
struct gw_fw {
	const struct config_route *route;
	const char *base_url;
	bool idem; /* this request holds an idempotency claim */
	char idem_key[IDEM_STORAGE_KEY_MAX];
	char fingerprint[65];
	struct upstream_response resp; /* the upstream's answer; body owned until responded */
	bool has_resp;
};

/* The ingest listener (gateway/ingest.c). */
struct gw_ingest {
	const char *endpoint;         /* "batch", "track", ... */
	char key[KEYFMT_MAX_LEN + 1]; /* the key of an Authorization header, until check 1 */
	struct segment_result parsed;
	bool has_parsed;
	int store_rc; /* the group commit's answer */
};

struct gw_request {
	struct http_request *req;
	const struct gateway_deps *deps; /* the instance's parts the steps use */
	const struct gw_pipeline *pipeline;
	const struct gw_ops *ops;
	enum gw_state state;
	size_t at;               /* the step running, or the one that suspended */
	bool logged;             /* reached check 1: the request gets a request-log row */
	gw_step_fn job;          /* the pool job of gw_defer (returns GW_NEXT or GW_END) */
	http_handler_fn then;    /* gw_api's handler step (authn_run's done) */
	const char *log_route;   /* the request log's route when not req->route_label */
	const char *log_refusal; /* why authentication refused it (store/store_usage.h) */

	struct gw_authn authn;
	struct gw_limit limit;
	struct gw_fw *fw;         /* forwarding only (from the route step) */
	struct gw_ingest *ingest; /* the ingest listener only (from its credential step) */
};

/** True when a context may go from one state to the other. */
bool gw_transition_allowed(enum gw_state from, enum gw_state to);

/**
 * A context for req running p over deps (in req's arena, req->gateway set),
 * suspended through ops; its completion (req->on_complete) writes the
 * request-log row (none when deps is NULL or has no writer).
 */
struct gw_request *gw_init(struct http_request *req, const struct gw_pipeline *p,
                           const struct gw_ops *ops, const struct gateway_deps *deps);
/** Run g's pipeline from its first step (IDLE -> RUNNING). */
void gw_run(struct gw_request *g);
/**
 * gw_init with gw_http_ops, the deps of req's worker (gateway_worker_init),
 * the scope and the handler step, then gw_run.
 */
void gw_start(struct http_request *req, const struct gw_pipeline *p, const char *scope,
              http_handler_fn then);

/**
 * For a step: run job(g) on pool (its GW_END means the job set the
 * response), then the next step on the loop. 0: return GW_WAIT; -1: the
 * queue is full, nothing suspended (the step answers).
 */
int gw_defer(struct gw_request *g, struct workpool *pool, enum workpool_lane lane, gw_step_fn job);
/** For a step: suspend until gw_wake; then the next step runs on the loop. Return GW_WAIT. */
void gw_suspend(struct gw_request *g);
/** Undo gw_suspend when the work that was to wake the request could not start. */
void gw_suspend_cancel(struct gw_request *g);
/** The event a gw_suspend waited for happened (any thread). */
void gw_wake(struct gw_request *g);

/** gw_defer's two halves: the job (pool thread) and the resumption (loop). */
void gw_run_job(struct gw_request *g);
void gw_resume(struct gw_request *g);

/** The context of req, or NULL when it runs no pipeline. */
static inline struct gw_request *gw_of(struct http_request *req)
{
	return req->gateway;
}

#endif
