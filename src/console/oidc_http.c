/*
 * oidc_http.c: the two OpenID Connect routes of the console listener
 * (docs/console.md "OpenID Connect"):
 *
 *   GET /console/auth/oidc/{name}/start     302 to the provider, login cookie set
 *   GET /console/auth/oidc/{name}/callback  the provider's answer: state checked against
 *                                           the cookie, code redeemed, ID token checked,
 *                                           a verified email signed in (console_sign_in)
 *   GET /console/api/providers              the sign-in page's buttons: each provider's
 *                                           name and start path (no session needed)
 *
 * Both run on the control pool (ROUTE_BLOCKING): they may fetch the
 * provider's documents and call its token endpoint. The login cookie is
 * cleared by every callback that reaches the state check, whatever the
 * outcome, so a login is tried once. Refusals are problem+json; log lines
 * name the provider and the rule that refused, never a code, a token, an
 * address or a subject.
 */
#include "console/oidc.h"

#include <stdio.h>
#include <string.h>

#include "console/console.h"
#include "console/creds.h"
#include "core/clock.h"
#include "core/log.h"
#include "http/request.h"
#include "http/router.h"
#include "store/store.h"

/** Longest authorization code accepted from the query. */
#define OIDC_CODE_MAX 2048

/* The routes' dependencies, as oidc_routes registered them. */
static const struct oidc_http_deps *deps_of(const struct http_request *req)
{
	return req->route->data;
}

/* The provider of the path's {name}, or NULL with 404 answered. */
static struct oidc_provider *provider_of(struct http_request *req)
{
	const char *name = http_param(req, "name");
	struct oidc_provider *p =
	    name ? oidc_provider_find(deps_of(req)->providers, name, strlen(name)) : NULL;

	if (!p)
		http_respond_problem(req, 404, "NOT_FOUND", "No such sign-in provider.", NULL);
	return p;
}

/* {public_url}/console/auth/oidc/NAME/callback into b. 0 or -1. */
static int redirect_uri(struct http_request *req, const struct oidc_provider *p, struct buf *b)
{
	return buf_printf(b, "%s/console/auth/oidc/%s/callback", deps_of(req)->public_url,
	                  oidc_provider_name(p));
}

/* An API key is never a console credential (CONSOLE.md "Sessions"). */
static bool refuse_api_key(struct http_request *req)
{
	if (!http_header(req, "Authorization"))
		return false;
	http_respond_problem(req, 401, "UNAUTHENTICATED",
	                     "The console does not accept API keys; sign in instead.", NULL);
	return true;
}

static void oidc_start(struct http_request *req)
{
	struct oidc_provider *p;
	struct oidc_login login;
	struct buf ruri, loc;
	char cookie[400];
	char err[256] = "";

	if (refuse_api_key(req) || !(p = provider_of(req)))
		return;
	buf_init(&ruri, OIDC_URL_MAX);
	buf_init(&loc, 4 * OIDC_URL_MAX);
	http_set_header(req, "Cache-Control", "no-store");
	if (redirect_uri(req, p, &ruri) < 0 ||
	    oidc_provider_begin(p, ruri.data, clock_now_ms(), &login, &loc, err, sizeof err) !=
	        OIDC_OK ||
	    oidc_login_cookie(&login, cookie, sizeof cookie) == 0) {
		log_event(LOG_WARN, "oidc_start_failed", "provider", oidc_provider_name(p), "error",
		          err[0] ? err : "redirect URI too long", NULL);
		http_respond_problem(req, 502, "OIDC_PROVIDER_UNAVAILABLE",
		                     "The sign-in provider cannot be reached; try again later.",
		                     NULL);
		goto out;
	}
	http_set_header(req, "Set-Cookie", cookie);
	http_set_header(req, "Location", loc.data);
	http_respond(req, 302, "text/plain", "", 0);
out:
	explicit_bzero(&login, sizeof login);
	explicit_bzero(cookie, sizeof cookie);
	buf_free(&ruri);
	buf_free(&loc);
}

/* Refuse the callback: 4xx problem with details.reason, logged with the provider. */
static void refuse(struct http_request *req, const struct oidc_provider *p, int status,
                   const char *code, const char *reason, const char *message)
{
	log_event(LOG_INFO, "oidc_login_refused", "provider", oidc_provider_name(p), "reason",
	          reason, NULL);
	http_respond_problem(req, status, code, message, json_pack("{s:s}", "reason", reason));
}

/* The provider's error code (RFC 6749 4.1.2.1) as a safe token for details, or "error". */
static void error_code(const char *in, char *out, size_t cap)
{
	size_t o = 0;

	for (size_t i = 0; in[i] && o + 1 < cap; i++)
		if ((in[i] >= 'a' && in[i] <= 'z') || in[i] == '_')
			out[o++] = in[i];
	out[o] = '\0';
	if (!o)
		str_copy(out, cap, "error", 5);
}

static void oidc_callback(struct http_request *req)
{
	struct oidc_provider *p;
	struct oidc_login login, *have = NULL;
	struct oidc_identity id;
	struct buf ruri;
	char value[OIDC_LOGIN_TEXT_MAX + 1];
	char clear[200];
	char err[256] = "";
	char email[255];
	const char *state, *code, *iss, *error;
	int rc;

	memset(&id, 0, sizeof id);
	buf_init(&ruri, OIDC_URL_MAX);
	if (refuse_api_key(req) || !(p = provider_of(req)))
		goto out;
	http_set_header(req, "Cache-Control", "no-store");
	http_set_header(req, "Referrer-Policy", "no-referrer");
	if (console_cookie_get(http_header(req, "Cookie"), OIDC_COOKIE_NAME, value, sizeof value) ==
	        0 &&
	    oidc_login_decode(value, strlen(value), &login) == OIDC_OK)
		have = &login;
	explicit_bzero(value, sizeof value);
	/* One try per login: every answer from here on clears the cookie. */
	if (oidc_login_cookie(NULL, clear, sizeof clear))
		http_set_header(req, "Set-Cookie", clear);

	state = http_query(req, "state");
	rc = oidc_login_check(have, oidc_provider_name(p), state, state ? strlen(state) : 0,
	                      clock_now_ms() / 1000);
	if (rc != OIDC_OK) {
		refuse(
		    req, p, 400, "OIDC_LOGIN_REFUSED", oidc_result_name(rc),
		    "This sign-in was not started in this browser, or took too long; start again.");
		goto out;
	}
	error = http_query(req, "error");
	if (error) {
		char ec[48];
		error_code(error, ec, sizeof ec);
		log_event(LOG_INFO, "oidc_login_refused", "provider", oidc_provider_name(p),
		          "reason", "provider_error", "error", ec, NULL);
		http_respond_problem(
		    req, 401, "OIDC_LOGIN_REFUSED", "The sign-in provider refused.",
		    json_pack("{s:s,s:s}", "reason", "provider_error", "error", ec));
		goto out;
	}
	/* RFC 9207: a provider that names itself must be this one (mix-up defence). */
	iss = http_query(req, "iss");
	if (iss && !oidc_provider_issuer_is(p, iss)) {
		refuse(req, p, 400, "OIDC_LOGIN_REFUSED", "iss",
		       "The answer came from another provider.");
		goto out;
	}
	code = http_query(req, "code");
	if (!code || !code[0] || strlen(code) > OIDC_CODE_MAX) {
		refuse(req, p, 400, "OIDC_LOGIN_REFUSED", "code", "The provider sent no code.");
		goto out;
	}
	if (redirect_uri(req, p, &ruri) < 0) {
		refuse(req, p, 400, "OIDC_LOGIN_REFUSED", "redirect_uri",
		       "The redirect URI is too long.");
		goto out;
	}
	rc = oidc_provider_finish(p, ruri.data, have, code, clock_now_ms(), &id, err, sizeof err);
	if (rc == OIDC_ERR_PROVIDER) {
		log_event(LOG_WARN, "oidc_login_failed", "provider", oidc_provider_name(p), "error",
		          err, NULL);
		http_respond_problem(
		    req, 502, "OIDC_PROVIDER_UNAVAILABLE",
		    "The sign-in provider did not complete the sign-in; try again.", NULL);
		goto out;
	}
	if (rc != OIDC_OK) {
		refuse(req, p, 401, "OIDC_LOGIN_REFUSED", oidc_result_name(rc),
		       "The provider's ID token was refused.");
		goto out;
	}
	/* Only a verified address names an account (CONSOLE.md "Login"). */
	if (!id.email_verified || console_email_normalize(id.email, email) != 0) {
		refuse(req, p, 403, "OIDC_LOGIN_REFUSED", "email_unverified",
		       "The provider did not vouch for an email address of this account.");
		goto out;
	}
	rc = console_sign_in(deps_of(req)->console, req, email, "oidc");
	explicit_bzero(email, sizeof email);
	if (rc == STORE_ENOTFOUND) {
		refuse(req, p, 403, "OIDC_LOGIN_REFUSED", "no_account",
		       "No console account or invitation has this address.");
		goto out;
	}
	if (rc != STORE_OK) {
		http_respond_store_error(req, rc);
		goto out;
	}
	log_event(LOG_INFO, "oidc_login", "provider", oidc_provider_name(p), NULL);
	http_set_header(req, "Location", "/console/");
	http_respond(req, 303, "text/plain", "", 0);
out:
	explicit_bzero(&login, sizeof login);
	explicit_bzero(&id, sizeof id);
	buf_free(&ruri);
}

static void providers_list(struct http_request *req)
{
	const struct oidc_providers *ps = deps_of(req)->providers;
	json_t *data = json_array();

	if (refuse_api_key(req)) {
		json_decref(data);
		return;
	}
	for (size_t i = 0; i < oidc_providers_count(ps); i++) {
		const char *name = oidc_providers_name(ps, i);
		char start[OIDC_NAME_MAX + 40];
		snprintf(start, sizeof start, "/console/auth/oidc/%s/start", name);
		json_array_append_new(data, json_pack("{s:s,s:s}", "name", name, "start", start));
	}
	http_set_header(req, "Cache-Control", "no-store");
	http_respond_json(req, 200, json_pack("{s:o}", "data", data));
}

void oidc_routes(struct router *r, const struct oidc_http_deps *d)
{
	router_add_with(r, "GET", "/console/api/providers", providers_list, 0, d);
	router_add_with(r, "GET", "/console/auth/oidc/{name}/start", oidc_start, ROUTE_BLOCKING, d);
	router_add_with(r, "GET", "/console/auth/oidc/{name}/callback", oidc_callback,
	                ROUTE_BLOCKING, d);
}
