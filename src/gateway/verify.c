/*
 * verify.c: GET /v1/verify, checks 1 to 7 on the request's own credential,
 * for nginx auth_request, Traefik ForwardAuth and Envoy ext_authz. 200 with
 * the X-Portcullis-* identity headers, or the error.
 */
#include "gateway/gateway.h"

#include "app/app.h"
#include "gateway/authn.h"

static void verify_done(struct http_request *req)
{
	const struct authn *who = authn_of(req);
	if (!who || req->responded)
		return;
	gateway_identity_headers(req, who);
	http_respond_json(
	    req, 200,
	    json_pack("{s:b, s:s, s:o, s:s, s:s}", "ok", 1, "org_id", who->key.org_id, "project_id",
	              who->key.project_id[0] ? json_string(who->key.project_id) : json_null(),
	              "key_id", who->key.id, "env", who->key.env));
}

static void after_auth(struct http_request *req)
{
	if (!authn_of(req))
		return;
	gateway_rate_limit(req, verify_done);
}

static void verify(struct http_request *req)
{
	authn_run(req, "gateway", after_auth);
}

void verify_routes(struct router *r)
{
	router_add(r, "GET", "/v1/verify", verify, 0);
}
