/*
 * verify.c: GET /v1/verify, checks 1 to 7 on the request's own credential
 * (pipeline.c's gw_verify table), for nginx auth_request, Traefik
 * ForwardAuth and Envoy ext_authz: this file is its last step, the 200 with
 * the X-Portcullis-* identity headers.
 *
 * The 200 body has a fixed shape and is written directly (verify_body), not
 * built and dumped with jansson: it is on every request of the hot path.
 */
#include "gateway/gateway.h"

#include "core/json.h"
#include "gateway/steps.h"

/* Append name (the JSON text before the value), then s as a JSON string. */
static int put_member(struct strbuf *b, const char *name, const char *s)
{
	strbuf_puts(b, name);
	return json_put_string(b, s);
}

int verify_body(const struct store_key *k, char *out, size_t cap)
{
	struct strbuf b;
	strbuf_init(&b, out, cap);
	if (put_member(&b, "{\"ok\":true,\"org_id\":", k->org_id) < 0)
		return -1;
	if (k->project_id[0]) {
		if (put_member(&b, ",\"project_id\":", k->project_id) < 0)
			return -1;
	} else {
		strbuf_puts(&b, ",\"project_id\":null");
	}
	if (put_member(&b, ",\"key_id\":", k->id) < 0 || put_member(&b, ",\"env\":", k->env) < 0)
		return -1;
	strbuf_put(&b, "}", 1);
	return b.overflow ? -1 : (int)b.len;
}

enum gw_next gw_verify_answer(struct gw_request *g)
{
	struct http_request *req = g->req;
	const struct authn *who = &g->authn.result;
	gateway_identity_headers(req, who);
	/* Ids and env fit many times over: 4 strings of at most 26 bytes, 6 bytes per escape. */
	char body[1024];
	int n = verify_body(&who->key, body, sizeof body);
	if (n >= 0) {
		http_respond(req, 200, "application/json", body, (size_t)n);
		return GW_END;
	}
	/* Not valid UTF-8 (never for ids the store wrote): what jansson makes of it. */
	http_respond_json(
	    req, 200,
	    json_pack("{s:b, s:s, s:o, s:s, s:s}", "ok", 1, "org_id", who->key.org_id, "project_id",
	              who->key.project_id[0] ? json_string(who->key.project_id) : json_null(),
	              "key_id", who->key.id, "env", who->key.env));
	return GW_END;
}

void verify_routes(struct router *r)
{
	router_add(r, "GET", "/v1/verify", gateway_verify, 0);
}
