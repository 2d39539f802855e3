/*
 * gateway.h: the data plane's entry points: the routes of /v1/verify and
 * the ingest listener, and the fallback that forwards everything else to the
 * upstream. Each runs one of the pipelines of gateway/pipeline.c.
 */
#ifndef PORTCULLIS_GATEWAY_GATEWAY_H
#define PORTCULLIS_GATEWAY_GATEWAY_H

#include "gateway/authn.h"
#include "gateway/gateway_deps.h"
#include "http/router.h"
#include "http/server.h"

/** Register GET /v1/verify (gateway_verify). */
void verify_routes(struct router *r);

/**
 * The 200 body of GET /v1/verify for key k, written into out (cap bytes):
 * {"ok":true,"org_id":..,"project_id":..|null,"key_id":..,"env":..}, byte
 * for byte what json_dumps(JSON_COMPACT | JSON_ENSURE_ASCII) writes for that
 * object. Returns its length, or -1 when it does not fit or a field is not
 * valid UTF-8 (jansson would refuse that field).
 */
int verify_body(const struct store_key *k, char *out, size_t cap);

/** GET /v1/verify: checks 1 to 7 (the gw_verify pipeline). */
void gateway_verify(struct http_request *req);
/** The fallback handler: checks 1 to 9 and forwarding to the upstream (gw_forward). */
void gateway_forward(struct http_request *req);
/** The ingest listener's Segment endpoints (gw_ingest); route data is the endpoint name. */
void gateway_ingest(struct http_request *req);
/** Register the forwarding metrics (upstream failures) so /metrics shows them at 0. */
void gateway_forward_metrics(void);

/**
 * Per-worker set-up and tear-down (from http_server_opts' worker hooks, on
 * the worker's thread): the loop's upstream client, and deps for every
 * pipeline the worker runs (it must outlive the server).
 */
void gateway_worker_init(struct http_worker *w, const struct gateway_deps *deps);
void gateway_worker_fini(struct http_worker *w);

/** Register the ingest listener's routes (gateway/ingest.c): the Segment HTTP Tracking API. */
void ingest_routes(struct router *r);

/** Set X-Portcullis-Org-Id, -Project-Id, -Key-Id, -Key-Env on the response. */
void gateway_identity_headers(struct http_request *req, const struct authn *who);

#endif
