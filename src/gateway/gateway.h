/*
 * gateway.h: the data plane: the verify endpoint and the pipeline that
 * forwards everything else to the upstream (checks 1 to 9).
 */
#ifndef PORTCULLIS_GATEWAY_GATEWAY_H
#define PORTCULLIS_GATEWAY_GATEWAY_H

#include "gateway/authn.h"
#include "http/router.h"

/** Register GET /v1/verify. */
void verify_routes(struct router *r);

/** Set X-Portcullis-Org-Id, -Project-Id, -Key-Id, -Key-Env on the response. */
void gateway_identity_headers(struct http_request *req, const struct authn *who);

/**
 * Check 7: the organisation's rate limit (GCRA in the kv tier). Adds the
 * RateLimit-Policy and RateLimit headers; on a limit responds 429 with
 * Retry-After. Then calls done(req) on the worker loop (also on failure:
 * done must check req->responded).
 */
void gateway_rate_limit(struct http_request *req, http_handler_fn done);

#endif
