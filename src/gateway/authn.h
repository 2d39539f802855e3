/*
 * authn.h: checks 1 to 6 of docs/contract.md's order of checks for one request:
 * credential shape, brute-force guard, secret, kill switches, revocation and
 * expiry, scope. They are rows of the pipelines of gateway/pipeline.c; this
 * header is what the management API uses of them (the gw_api pipeline).
 */
#ifndef PORTCULLIS_GATEWAY_AUTHN_H
#define PORTCULLIS_GATEWAY_AUTHN_H

#include <stdbool.h>

#include "http/request.h"
#include "store/store.h"

/** Pseudo-scope: only operator (root) keys. */
#define SCOPE_ROOT "root"
/**
 * The ingest keys' scope. Asked for by the ingest listener only: a key that
 * holds it is refused (401 UNAUTHENTICATED, the body of any bad key) for
 * every other scope, and every other key is refused for it.
 */
#define SCOPE_INGEST "events:ingest"

/** The authenticated caller, valid after a successful authn_run. */
struct authn {
	struct store_key key; /* the key's row (hashes included: never render it) */
	bool root;            /* an operator key */
	/* A console session of a role (developer) whose key and webhook rights cover only what
	 * is bound to a project (api/api.c sets it; api_project_bound checks it). */
	bool project_only;
	/*
	 * A console session's user (api/api.c builds this struct for one;
	 * key.id is then the user id and key.scopes what the role may grant),
	 * NULL for an API key. Never set here.
	 */
	const char *user_id;
};

/**
 * Authenticate req for scope (checks 1 to 6, the gw_api pipeline), then
 * call done(req) on the worker loop (possibly before authn_run returns);
 * done may set the response or hand the request on (http_defer). On failure
 * the error response is set, done is not called and authn_of(req) is NULL.
 */
void authn_run(struct http_request *req, const char *scope, http_handler_fn done);

/** The authenticated caller, or NULL when authentication failed. */
const struct authn *authn_of(struct http_request *req);

#endif
