/*
 * gateway.h: the data plane: the verify endpoint and the pipeline that
 * forwards everything else to the upstream (checks 1 to 9).
 */
#ifndef PORTCULLIS_GATEWAY_GATEWAY_H
#define PORTCULLIS_GATEWAY_GATEWAY_H

#include "gateway/authn.h"
#include "http/router.h"
#include "http/server.h"

/** Register GET /v1/verify. */
void verify_routes(struct router *r);

/**
 * The 200 body of GET /v1/verify for key k, written into out (cap bytes):
 * {"ok":true,"org_id":..,"project_id":..|null,"key_id":..,"env":..}, byte
 * for byte what json_dumps(JSON_COMPACT | JSON_ENSURE_ASCII) writes for that
 * object. Returns its length, or -1 when it does not fit or a field is not
 * valid UTF-8 (jansson would refuse that field).
 */
int verify_body(const struct store_key *k, char *out, size_t cap);

/** The fallback handler: checks 1 to 9 and forwarding to the upstream. */
void gateway_forward(struct http_request *req);
/** Register the forwarding metrics (upstream failures) so /metrics shows them at 0. */
void gateway_forward_metrics(void);

/** Per-worker set-up and tear-down of the upstream client (http_server_opts hooks). */
void gateway_worker_init(struct http_worker *w, void *app);
void gateway_worker_fini(struct http_worker *w, void *app);

/** Record req in the request-metadata log (req->on_complete hook). */
void gateway_record_request(struct http_request *req);
/** The same with user_agent null: ingest requests (an app's user agent can single out a device). */
void gateway_record_request_without_agent(struct http_request *req);

/** Register the ingest listener's routes (gateway/ingest.c): the Segment HTTP Tracking API. */
void ingest_routes(struct router *r);

/** Set X-Portcullis-Org-Id, -Project-Id, -Key-Id, -Key-Env on the response. */
void gateway_identity_headers(struct http_request *req, const struct authn *who);

/**
 * Check 7: the organisation's rate limit (GCRA in the kv tier). Adds the
 * RateLimit-Policy and RateLimit headers; on a limit responds 429 with
 * Retry-After. Then calls done(req) on the worker loop (also on failure:
 * done must check req->responded).
 */
void gateway_rate_limit(struct http_request *req, http_handler_fn done);

/**
 * Check 7 with a limit of the key's own (req->log_key_id): per_second
 * requests a second sustained, per_second at once; the same fields and 429.
 * per_second <= 0: the organisation's limit (gateway_rate_limit).
 */
void gateway_rate_limit_key(struct http_request *req, int64_t per_second, http_handler_fn done);

#endif
