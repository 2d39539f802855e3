/*
 * test_oidc_provider.c: unit tests for src/console/oidc (the providers at
 * run time) with the HTTP exchange replaced by a scripted provider: opening
 * (client secret file, allow_ranges, the issuer through the egress guard),
 * the discovery document cached for an hour, the token exchange
 * (client_secret_basic, or _post when that is all the provider takes; the
 * PKCE verifier and redirect_uri sent), the provider's error code passed on
 * without its description, and the key set fetched again for an unknown
 * kid at most once a minute, and the email claims read from UserInfo (its
 * sub checked) when the ID token lacks them.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "console/oidc.h"
#include "core/config.h"

#include "jws_sign.h"

#define ISSUER   "https://op.example"
#define REDIRECT "https://console.example/console/auth/oidc/op/callback"
#define T0       ((int64_t)1767225600 * 1000)

/* The scripted provider. */
struct fake {
	char *discovery;
	char *jwks;
	char token_resp[20000];
	long token_status;
	char userinfo[512];
	int n_discovery, n_jwks, n_token, n_userinfo;
	char userinfo_auth[256];
	char last_auth[512];
	char last_body[4096];
};

static int fake_http(void *ctx, const struct oidc_provider *p, const char *url, const char *auth,
                     const char *body, struct buf *resp, long *status, char *err, size_t cap)
{
	struct fake *f = ctx;
	const char *out = NULL;
	(void)p;
	(void)err;
	(void)cap;

	*status = 200;
	if (strcmp(url, ISSUER "/.well-known/openid-configuration") == 0 && !body) {
		f->n_discovery++;
		out = f->discovery;
	} else if (strcmp(url, ISSUER "/jwks") == 0 && !body) {
		f->n_jwks++;
		out = f->jwks;
	} else if (strcmp(url, ISSUER "/token") == 0 && body) {
		f->n_token++;
		snprintf(f->last_auth, sizeof f->last_auth, "%s", auth ? auth : "");
		snprintf(f->last_body, sizeof f->last_body, "%s", body);
		*status = f->token_status;
		out = f->token_resp;
	} else if (strcmp(url, ISSUER "/me") == 0 && !body) {
		f->n_userinfo++;
		snprintf(f->userinfo_auth, sizeof f->userinfo_auth, "%s", auth ? auth : "");
		out = f->userinfo;
	} else {
		*status = 404;
		out = "{}";
	}
	assert_int_equal(buf_append_str(resp, out), 0);
	return 0;
}

static char *discovery_text(const char *auth_method)
{
	json_t *d = json_pack(
	    "{s:s,s:s,s:s,s:s,s:[s],s:[s]}", "issuer", ISSUER, "authorization_endpoint",
	    ISSUER "/auth", "token_endpoint", ISSUER "/token", "jwks_uri", ISSUER "/jwks",
	    "response_types_supported", "code", "code_challenge_methods_supported", "S256");
	json_object_set_new(d, "userinfo_endpoint", json_string(ISSUER "/me"));
	if (auth_method)
		json_object_set_new(d, "token_endpoint_auth_methods_supported",
		                    json_pack("[s]", auth_method));
	char *s = json_dumps(d, JSON_COMPACT);
	json_decref(d);
	return s;
}

static char *jwks_text(const char *which1, const char *which2)
{
	json_t *keys = json_array();
	json_array_append(keys, json_object_get(json_object_get(fx, which1), "jwk"));
	if (which2)
		json_array_append(keys, json_object_get(json_object_get(fx, which2), "jwk"));
	json_t *d = json_pack("{s:o}", "keys", keys);
	char *s = json_dumps(d, JSON_COMPACT);
	json_decref(d);
	return s;
}

struct env {
	struct config cfg;
	char secret_path[64];
	struct oidc_providers *ps;
	struct oidc_provider *p;
	struct fake f;
};

static void write_secret(struct env *e, const char *text)
{
	snprintf(e->secret_path, sizeof e->secret_path, "/tmp/pcl-test-oidc-XXXXXX");
	int fd = mkstemp(e->secret_path);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	close(fd);
}

/* A config with one provider "op"; the secret file holds secret_text. */
static void config_one(struct env *e, const char *issuer, const char *secret_text,
                       const char *allow)
{
	config_defaults(&e->cfg);
	write_secret(e, secret_text);
	struct config_oidc *o = &e->cfg.oidc[0];
	e->cfg.n_oidc = 1;
	o->name = strdup("op");
	o->issuer = strdup(issuer);
	o->client_id = strdup("portcullis");
	o->client_secret_file = strdup(e->secret_path);
	o->scopes = strdup("openid email");
	o->ca_file = strdup("");
	o->allow_ranges = strdup(allow);
}

static void env_open(struct env *e, const char *auth_method)
{
	char err[256];
	memset(e, 0, sizeof(*e));
	config_one(e, ISSUER, "s3cret:x\n", "");
	assert_int_equal(oidc_providers_open(&e->cfg, &e->ps, err, sizeof err), 0);
	e->p = oidc_provider_find(e->ps, "op", 2);
	assert_non_null(e->p);
	e->f.discovery = discovery_text(auth_method);
	e->f.jwks = jwks_text("rsa", "ec");
	e->f.token_status = 200;
	oidc_providers_set_http(e->ps, fake_http, &e->f);
}

static void env_close(struct env *e)
{
	oidc_providers_free(e->ps);
	config_free(&e->cfg);
	unlink(e->secret_path);
	free(e->f.discovery);
	free(e->f.jwks);
}

/* The provider's token response for login l, signed by which (kid its own). */
static void token_for(struct env *e, const struct oidc_login *l, const char *which, int64_t now_ms)
{
	gnutls_privkey_t key = fixture_privkey(which);
	const char *kid = json_string_value(
	    json_object_get(json_object_get(json_object_get(fx, which), "jwk"), "kid"));
	json_t *h = jws_header(strcmp(which, "rsa") == 0 ? "RS256" : "ES256", kid);
	json_t *c = json_pack("{s:s,s:s,s:s,s:I,s:I,s:s,s:s,s:b}", "iss", ISSUER, "sub", "u1",
	                      "aud", "portcullis", "exp", (json_int_t)(now_ms / 1000 + 300), "iat",
	                      (json_int_t)(now_ms / 1000), "nonce", l->nonce, "email",
	                      "ada@example.com", "email_verified", 1);
	char *tok = jws_sign(key, h, c);
	snprintf(e->f.token_resp, sizeof e->f.token_resp,
	         "{\"access_token\":\"at\",\"token_type\":\"Bearer\",\"id_token\":\"%s\"}", tok);
	free(tok);
	json_decref(h);
	json_decref(c);
	gnutls_privkey_deinit(key);
}

/* oidc_provider_begin at now_ms into l; the location is checked elsewhere. */
static void begin(struct env *e, int64_t now_ms, struct oidc_login *l)
{
	struct buf loc;
	char err[256];

	buf_init(&loc, 8192);
	assert_int_equal(oidc_provider_begin(e->p, REDIRECT, now_ms, l, &loc, err, sizeof err),
	                 OIDC_OK);
	buf_free(&loc);
}

static void test_open_errors(void **state)
{
	struct env e;
	struct oidc_providers *ps = NULL;
	char err[400];
	(void)state;

	memset(&e, 0, sizeof e);
	config_one(&e, ISSUER, "\n", "");
	assert_int_equal(oidc_providers_open(&e.cfg, &ps, err, sizeof err), -1);
	assert_non_null(
	    strstr(err, "[oidc.op] client_secret_file: the file's first line is empty"));
	unlink(e.secret_path);
	assert_int_equal(oidc_providers_open(&e.cfg, &ps, err, sizeof err), -1);
	assert_non_null(strstr(err, "[oidc.op] client_secret_file: cannot read"));
	config_free(&e.cfg);

	/* A loopback issuer is refused unless allow_ranges lets it through. */
	config_one(&e, "https://127.0.0.1:9443", "s\n", "");
	assert_int_equal(oidc_providers_open(&e.cfg, &ps, err, sizeof err), -1);
	assert_string_equal(err, "[oidc.op] issuer refused by the egress guard (private_address)");
	config_free(&e.cfg);
	unlink(e.secret_path);
	config_one(&e, "https://127.0.0.1:9443", "s\n", "127.0.0.0/8");
	assert_int_equal(oidc_providers_open(&e.cfg, &ps, err, sizeof err), 0);
	assert_int_equal(oidc_providers_count(ps), 1);
	assert_string_equal(oidc_providers_name(ps, 0), "op");
	assert_null(oidc_providers_name(ps, 1));
	assert_null(oidc_provider_find(ps, "o", 1));
	oidc_providers_free(ps);
	config_free(&e.cfg);
	unlink(e.secret_path);
	config_one(&e, ISSUER, "s\n", "10.0.0.0/33");
	assert_int_equal(oidc_providers_open(&e.cfg, &ps, err, sizeof err), -1);
	assert_true(strncmp(err, "[oidc.op] allow_ranges: ", 24) == 0);
	config_free(&e.cfg);
	unlink(e.secret_path);

	/* No section: no set. */
	config_defaults(&e.cfg);
	assert_int_equal(oidc_providers_open(&e.cfg, &ps, err, sizeof err), 0);
	assert_null(ps);
	config_free(&e.cfg);
}

static void test_begin_caches_discovery(void **state)
{
	struct env e;
	struct oidc_login l;
	struct buf loc;
	char err[256];
	(void)state;

	env_open(&e, NULL);
	buf_init(&loc, 8192);
	assert_int_equal(oidc_provider_begin(e.p, REDIRECT, T0, &l, &loc, err, sizeof err),
	                 OIDC_OK);
	assert_true(
	    str_has_prefix(loc.data, ISSUER "/auth?response_type=code&client_id=portcullis&"));
	assert_non_null(strstr(loc.data, "&scope=openid%20email&"));
	assert_string_equal(l.provider, "op");
	assert_int_equal(l.created_s, T0 / 1000);
	buf_free(&loc);
	buf_init(&loc, 8192);
	assert_int_equal(oidc_provider_begin(e.p, REDIRECT, T0 + OIDC_CACHE_MAX_AGE_MS - 1, &l,
	                                     &loc, err, sizeof err),
	                 OIDC_OK);
	assert_int_equal(e.f.n_discovery, 1);
	buf_free(&loc);
	buf_init(&loc, 8192);
	assert_int_equal(oidc_provider_begin(e.p, REDIRECT, T0 + OIDC_CACHE_MAX_AGE_MS, &l, &loc,
	                                     err, sizeof err),
	                 OIDC_OK);
	assert_int_equal(e.f.n_discovery, 2);
	buf_free(&loc);
	/* A document for another issuer is refused (and a cached one is kept meanwhile). */
	free(e.f.discovery);
	e.f.discovery = strdup("{\"issuer\":\"https://evil.example\"}");
	buf_init(&loc, 8192);
	assert_int_equal(oidc_provider_begin(e.p, REDIRECT, T0 + 2 * OIDC_CACHE_MAX_AGE_MS, &l,
	                                     &loc, err, sizeof err),
	                 OIDC_OK);
	buf_free(&loc);
	env_close(&e);

	env_open(&e, NULL);
	free(e.f.discovery);
	e.f.discovery = strdup("{\"issuer\":\"https://evil.example\"}");
	buf_init(&loc, 8192);
	assert_int_equal(oidc_provider_begin(e.p, REDIRECT, T0, &l, &loc, err, sizeof err),
	                 OIDC_ERR_PROVIDER);
	assert_string_equal(err, "discovery: issuer is not the configured issuer");
	buf_free(&loc);
	env_close(&e);
}

static void test_finish_basic(void **state)
{
	struct env e;
	struct oidc_login l;
	struct oidc_identity id;
	char err[256];
	(void)state;

	env_open(&e, NULL);
	begin(&e, T0, &l);
	token_for(&e, &l, "rsa", T0);
	assert_int_equal(
	    oidc_provider_finish(e.p, REDIRECT, &l, "the-code", T0 + 1000, &id, err, sizeof err),
	    OIDC_OK);
	assert_string_equal(id.sub, "u1");
	assert_string_equal(id.email, "ada@example.com");
	assert_true(id.email_verified);
	/* client_secret_basic: "portcullis" ":" "s3cret%3Ax" (form-encoded first). */
	struct buf want;
	buf_init(&want, 512);
	assert_int_equal(oidc_basic_auth(&want, "portcullis", "s3cret:x"), 0);
	assert_string_equal(e.f.last_auth, want.data);
	buf_free(&want);
	char body[1024];
	snprintf(body, sizeof body,
	         "grant_type=authorization_code&code=the-code&redirect_uri="
	         "https%%3A%%2F%%2Fconsole.example%%2Fconsole%%2Fauth%%2Foidc%%2Fop%%2Fcallback"
	         "&code_verifier=%s",
	         l.verifier);
	assert_string_equal(e.f.last_body, body);
	assert_int_equal(oidc_provider_jwks_fetches(e.p), 1);

	/* Another nonce: refused by the nonce rule. */
	struct oidc_login other = l;
	other.nonce[0] = other.nonce[0] == 'A' ? 'B' : 'A';
	assert_int_equal(
	    oidc_provider_finish(e.p, REDIRECT, &other, "c", T0 + 2000, &id, err, sizeof err),
	    OIDC_ERR_NONCE);
	assert_string_equal(err, "ID token refused: nonce");
	assert_string_equal(id.sub, "");

	/* The provider refuses the code: its error code is passed on, not its text. */
	e.f.token_status = 400;
	snprintf(e.f.token_resp, sizeof e.f.token_resp,
	         "{\"error\":\"invalid_grant\",\"error_description\":\"code s3cr3t used\"}");
	assert_int_equal(
	    oidc_provider_finish(e.p, REDIRECT, &l, "c", T0 + 3000, &id, err, sizeof err),
	    OIDC_ERR_PROVIDER);
	assert_string_equal(err, "token endpoint answered HTTP 400: invalid_grant");
	env_close(&e);
}

static void test_finish_post(void **state)
{
	struct env e;
	struct oidc_login l;
	struct oidc_identity id;
	char err[256];
	(void)state;

	env_open(&e, "client_secret_post");
	begin(&e, T0, &l);
	token_for(&e, &l, "ec", T0);
	assert_int_equal(oidc_provider_finish(e.p, REDIRECT, &l, "c", T0, &id, err, sizeof err),
	                 OIDC_OK);
	assert_string_equal(e.f.last_auth, "");
	assert_non_null(strstr(e.f.last_body, "&client_id=portcullis&client_secret=s3cret%3Ax"));
	env_close(&e);
}

static void test_unknown_kid_refetch_once_a_minute(void **state)
{
	struct env e;
	struct oidc_login l;
	struct oidc_identity id;
	char err[256];
	(void)state;

	env_open(&e, NULL);
	free(e.f.jwks);
	e.f.jwks = jwks_text("ec", NULL); /* the RSA key is not published yet */
	begin(&e, T0, &l);
	token_for(&e, &l, "rsa", T0);
	/* First use: one fetch, the kid unknown, no second fetch within the minute. */
	assert_int_equal(oidc_provider_finish(e.p, REDIRECT, &l, "c", T0, &id, err, sizeof err),
	                 OIDC_ERR_KID);
	assert_int_equal(e.f.n_jwks, 1);
	/* The provider rotates; 30 s later the set is not fetched again. */
	free(e.f.jwks);
	e.f.jwks = jwks_text("ec", "rsa");
	assert_int_equal(
	    oidc_provider_finish(e.p, REDIRECT, &l, "c", T0 + 30000, &id, err, sizeof err),
	    OIDC_ERR_KID);
	assert_int_equal(e.f.n_jwks, 1);
	/* A minute after the last fetch, the unknown kid fetches it, and the token passes. */
	assert_int_equal(oidc_provider_finish(e.p, REDIRECT, &l, "c", T0 + OIDC_JWKS_MIN_GAP_MS,
	                                      &id, err, sizeof err),
	                 OIDC_OK);
	assert_int_equal(e.f.n_jwks, 2);
	/* Known kids fetch nothing more. */
	assert_int_equal(oidc_provider_finish(e.p, REDIRECT, &l, "c", T0 + OIDC_JWKS_MIN_GAP_MS + 1,
	                                      &id, err, sizeof err),
	                 OIDC_OK);
	assert_int_equal(e.f.n_jwks, 2);
	assert_int_equal(oidc_provider_jwks_fetches(e.p), 2);
	env_close(&e);
}

/* A provider that keeps the email claims out of the ID token (Core 5.4): UserInfo has them. */
static void test_email_from_userinfo(void **state)
{
	struct env e;
	struct oidc_login l;
	struct oidc_identity id;
	char err[256] = "";
	(void)state;

	env_open(&e, NULL);
	begin(&e, T0, &l);
	token_for(&e, &l, "rsa", T0);
	/* The same token, its email claims removed: re-sign without them. */
	gnutls_privkey_t key = fixture_privkey("rsa");
	json_t *h = jws_header("RS256", "rsa-1");
	json_t *c = json_pack("{s:s,s:s,s:s,s:I,s:I,s:s}", "iss", ISSUER, "sub", "u1", "aud",
	                      "portcullis", "exp", (json_int_t)(T0 / 1000 + 300), "iat",
	                      (json_int_t)(T0 / 1000), "nonce", l.nonce);
	char *tok = jws_sign(key, h, c);
	snprintf(e.f.token_resp, sizeof e.f.token_resp,
	         "{\"access_token\":\"at-123\",\"token_type\":\"Bearer\",\"id_token\":\"%s\"}",
	         tok);
	snprintf(e.f.userinfo, sizeof e.f.userinfo,
	         "{\"sub\":\"u1\",\"email\":\"ada@example.com\",\"email_verified\":true}");
	assert_int_equal(oidc_provider_finish(e.p, REDIRECT, &l, "c", T0, &id, err, sizeof err),
	                 OIDC_OK);
	assert_int_equal(e.f.n_userinfo, 1);
	assert_string_equal(e.f.userinfo_auth, "Bearer at-123");
	assert_string_equal(id.email, "ada@example.com");
	assert_true(id.email_verified);
	/* UserInfo for another subject is refused, and its address not used. */
	snprintf(e.f.userinfo, sizeof e.f.userinfo,
	         "{\"sub\":\"u2\",\"email\":\"mallory@example.com\",\"email_verified\":true}");
	assert_int_equal(oidc_provider_finish(e.p, REDIRECT, &l, "c", T0, &id, err, sizeof err),
	                 OIDC_ERR_SUB);
	assert_string_equal(id.email, "");
	/* A token that carries the email needs no UserInfo request. */
	token_for(&e, &l, "rsa", T0);
	assert_int_equal(oidc_provider_finish(e.p, REDIRECT, &l, "c", T0, &id, err, sizeof err),
	                 OIDC_OK);
	assert_int_equal(e.f.n_userinfo, 2);
	free(tok);
	json_decref(h);
	json_decref(c);
	gnutls_privkey_deinit(key);
	env_close(&e);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_open_errors),
	    cmocka_unit_test(test_begin_caches_discovery),
	    cmocka_unit_test(test_finish_basic),
	    cmocka_unit_test(test_finish_post),
	    cmocka_unit_test(test_unknown_kid_refetch_once_a_minute),
	    cmocka_unit_test(test_email_from_userinfo),
	};
	return cmocka_run_group_tests(tests, fixtures_setup, fixtures_teardown);
}
