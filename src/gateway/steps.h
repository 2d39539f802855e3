/*
 * steps.h: the steps of the gateway's pipelines (the tables are in
 * pipeline.c, which is where to read their order). Each runs on the worker
 * loop and returns what comes next (pipeline.h); within src/gateway/ only.
 */
#ifndef PORTCULLIS_GATEWAY_STEPS_H
#define PORTCULLIS_GATEWAY_STEPS_H

#include "gateway/pipeline.h"

/** Each HTTP worker's gateway state (its http_worker_local, set by gateway_worker_init). */
struct gw_worker {
	struct upstream *upstream; /* the loop's upstream client */
	const struct gateway_deps *deps;
};

/* Checks 1 to 6 (authn.c). */
enum gw_next gw_credential(struct gw_request *g);
enum gw_next gw_guard(struct gw_request *g);
enum gw_next gw_secret(struct gw_request *g);
enum gw_next gw_kill(struct gw_request *g);
enum gw_next gw_revoked(struct gw_request *g);
enum gw_next gw_scope(struct gw_request *g);

/* Check 7 (gateway.c): the organisation's limit; for ingest, the key's when configured. */
enum gw_next gw_org_limit(struct gw_request *g);
enum gw_next gw_ingest_limit(struct gw_request *g);

/* Forwarding (forward.c): the route, check 8, check 9. */
enum gw_next gw_route(struct gw_request *g);
enum gw_next gw_idempotency(struct gw_request *g);
enum gw_next gw_upstream(struct gw_request *g);
enum gw_next gw_response(struct gw_request *g);
enum gw_next gw_replay_record(struct gw_request *g);

/* /v1/verify's answer (verify.c). */
enum gw_next gw_verify_answer(struct gw_request *g);

/* The ingest listener (ingest.c). */
enum gw_next gw_ingest_credential(struct gw_request *g);
enum gw_next gw_ingest_parse(struct gw_request *g);
enum gw_next gw_ingest_commit(struct gw_request *g);
enum gw_next gw_ingest_answer(struct gw_request *g);

/* The management API's handler step (pipeline.c): g->then. */
enum gw_next gw_handler(struct gw_request *g);

/**
 * The key of an Authorization value "Bearer <key>" (scheme in any case),
 * without the spaces around it: *len bytes; NULL for another scheme.
 */
const char *gw_bearer(const char *h, size_t *len);

/** 503 OVERLOADED with Retry-After: 1, for a step whose pool is full; GW_END. */
enum gw_next gw_overloaded(struct gw_request *g);

#endif
