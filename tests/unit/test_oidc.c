/*
 * test_oidc.c: unit tests for src/console/oidc_proto: PKCE S256 over
 * tests/vectors/pkce.json (RFC 7636 appendix B), the browser's login state
 * (fresh 256-bit values, the cookie's text and attributes, every refusal of
 * a callback's state), discovery documents, the authorization URL, the
 * token request (RFC 6749's client_secret_basic example) and response, and
 * the ID token checks of OIDC Core 3.1.3.7, each rule refused on its own
 * with a token that passes every other rule, signed with the fixture keys.
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

#include "console/oidc_proto.h"
#include "core/str.h"
#include "crypto/hash.h"
#include "crypto/jose.h"

#include "jws_sign.h"
#include "vectors.h"

#define ISSUER    "https://op.example"
#define CLIENT_ID "portcullis"
#define NOW       1767225600

static struct jose_jwks *keys;
static gnutls_privkey_t rsa_key, ec_key;
static const char *nonce = "n-0S6_WzA2Mj-n-0S6_WzA2Mj-n-0S6_WzA2Mj-n-0";

static int setup(void **state)
{
	char err[128];
	fixtures_setup(state);
	json_t *doc =
	    json_pack("{s:[OO]}", "keys", json_object_get(json_object_get(fx, "rsa"), "jwk"),
	              json_object_get(json_object_get(fx, "ec"), "jwk"));
	char *text = json_dumps(doc, JSON_COMPACT);
	assert_int_equal(jose_jwks_parse(text, strlen(text), &keys, err, sizeof err), JOSE_OK);
	free(text);
	json_decref(doc);
	rsa_key = fixture_privkey("rsa");
	ec_key = fixture_privkey("ec");
	return 0;
}

static int teardown(void **state)
{
	jose_jwks_free(keys);
	gnutls_privkey_deinit(rsa_key);
	gnutls_privkey_deinit(ec_key);
	return fixtures_teardown(state);
}

/* ---------- PKCE and the login state ---------- */

static void test_pkce_vector(void **state)
{
	json_t *v = vectors_load("pkce.json");
	const char *verifier = json_string_value(json_object_get(v, "code_verifier"));
	char ch[OIDC_CHALLENGE_LEN + 1];
	(void)state;

	oidc_pkce_challenge(verifier, strlen(verifier), ch);
	assert_string_equal(ch, json_string_value(json_object_get(v, "code_challenge_S256")));
	json_decref(v);
}

static void test_login_new_is_random(void **state)
{
	struct oidc_login a, b;
	uint8_t raw[40];
	size_t n;
	(void)state;

	oidc_login_new(&a, "google", NOW);
	oidc_login_new(&b, "google", NOW);
	const char *va[] = {a.state, a.nonce, a.verifier};
	const char *vb[] = {b.state, b.nonce, b.verifier};
	for (int i = 0; i < 3; i++) {
		assert_int_equal(strlen(va[i]), OIDC_RANDOM_LEN);
		assert_int_equal(base64url_decode(va[i], OIDC_RANDOM_LEN, raw, sizeof raw, &n), 0);
		assert_int_equal(n, 32); /* 256 bits */
		assert_string_not_equal(va[i], vb[i]);
		for (int j = 0; j < i; j++)
			assert_string_not_equal(va[i], va[j]);
	}
	assert_string_equal(a.provider, "google");
	assert_int_equal(a.created_s, NOW);
}

static void test_login_round_trip_and_check(void **state)
{
	struct oidc_login l, d;
	char text[OIDC_LOGIN_TEXT_MAX];
	(void)state;

	oidc_login_new(&l, "entra-id_2", NOW);
	size_t n = oidc_login_encode(&l, text, sizeof text);
	assert_int_not_equal(n, 0);
	assert_int_equal(n, strlen(text));
	assert_int_equal(oidc_login_encode(&l, text, 40), 0);
	n = oidc_login_encode(&l, text, sizeof text);
	/* Only cookie-octets (RFC 6265): no space, quote, comma, semicolon or backslash. */
	for (size_t i = 0; i < n; i++)
		assert_null(strchr(" \",;\\", text[i]));
	assert_int_equal(oidc_login_decode(text, n, &d), OIDC_OK);
	assert_memory_equal(&l, &d, sizeof l);

	assert_int_equal(oidc_login_check(&d, "entra-id_2", l.state, strlen(l.state), NOW + 5),
	                 OIDC_OK);
	assert_int_equal(
	    oidc_login_check(&d, "entra-id_2", l.state, strlen(l.state), NOW + OIDC_LOGIN_TTL_S),
	    OIDC_OK);
	/* Each refusal alone: no cookie, another provider, another state, a prefix of it, late. */
	assert_int_equal(oidc_login_check(NULL, "entra-id_2", l.state, strlen(l.state), NOW),
	                 OIDC_ERR_STATE);
	assert_int_equal(oidc_login_check(&d, "google", l.state, strlen(l.state), NOW),
	                 OIDC_ERR_STATE);
	assert_int_equal(oidc_login_check(&d, "entra-id_2", l.nonce, strlen(l.nonce), NOW),
	                 OIDC_ERR_STATE);
	assert_int_equal(oidc_login_check(&d, "entra-id_2", l.state, 42, NOW), OIDC_ERR_STATE);
	assert_int_equal(oidc_login_check(&d, "entra-id_2", NULL, 0, NOW), OIDC_ERR_STATE);
	assert_int_equal(oidc_login_check(&d, "entra-id_2", l.state, strlen(l.state),
	                                  NOW + OIDC_LOGIN_TTL_S + 1),
	                 OIDC_ERR_EXPIRED);
	assert_int_equal(
	    oidc_login_check(&d, "entra-id_2", l.state, strlen(l.state), NOW - OIDC_SKEW_S - 1),
	    OIDC_ERR_EXPIRED);
}

static void test_login_decode_refusals(void **state)
{
	struct oidc_login l, d;
	char good[OIDC_LOGIN_TEXT_MAX];
	char bad[512];
	(void)state;

	oidc_login_new(&l, "kc", NOW);
	oidc_login_encode(&l, good, sizeof good);
	const char *dot = strchr(good, '.');
	/* Another version, a bad provider name, a signed time, missing or extra parts. */
	snprintf(bad, sizeof bad, "2%s", dot);
	assert_int_equal(oidc_login_decode(bad, strlen(bad), &d), OIDC_ERR_STATE);
	snprintf(bad, sizeof bad, "1.KC.%lld.%s.%s.%s", (long long)NOW, l.state, l.nonce,
	         l.verifier);
	assert_int_equal(oidc_login_decode(bad, strlen(bad), &d), OIDC_ERR_STATE);
	snprintf(bad, sizeof bad, "1.kc.-5.%s.%s.%s", l.state, l.nonce, l.verifier);
	assert_int_equal(oidc_login_decode(bad, strlen(bad), &d), OIDC_ERR_STATE);
	snprintf(bad, sizeof bad, "1.kc.%lld.%s.%s", (long long)NOW, l.state, l.nonce);
	assert_int_equal(oidc_login_decode(bad, strlen(bad), &d), OIDC_ERR_STATE);
	snprintf(bad, sizeof bad, "%s.x", good);
	assert_int_equal(oidc_login_decode(bad, strlen(bad), &d), OIDC_ERR_STATE);
	/* A value one character short, or not base64url. */
	snprintf(bad, sizeof bad, "1.kc.%lld.%.42s.%s.%s", (long long)NOW, l.state, l.nonce,
	         l.verifier);
	assert_int_equal(oidc_login_decode(bad, strlen(bad), &d), OIDC_ERR_STATE);
	snprintf(bad, sizeof bad, "%s", good);
	bad[strlen(bad) - 3] = '+';
	assert_int_equal(oidc_login_decode(bad, strlen(bad), &d), OIDC_ERR_STATE);
	assert_int_equal(oidc_login_decode("", 0, &d), OIDC_ERR_STATE);
	assert_int_equal(oidc_login_decode(NULL, 0, &d), OIDC_ERR_STATE);
	assert_string_equal(d.state, "");
}

static void test_login_cookie_attributes(void **state)
{
	struct oidc_login l;
	char c[400];
	char value[OIDC_LOGIN_TEXT_MAX];
	char want[600];
	(void)state;

	oidc_login_new(&l, "google", NOW);
	oidc_login_encode(&l, value, sizeof value);
	snprintf(want, sizeof want,
	         "__Host-pcl_oidc=%s; Secure; HttpOnly; SameSite=Lax; Path=/; Max-Age=600", value);
	assert_int_equal(oidc_login_cookie(&l, c, sizeof c), strlen(want));
	assert_string_equal(c, want);
	size_t n = oidc_login_cookie(NULL, c, sizeof c);
	assert_int_equal(n, strlen(c));
	assert_string_equal(c,
	                    "__Host-pcl_oidc=; Secure; HttpOnly; SameSite=Lax; Path=/; Max-Age=0");
	assert_int_equal(oidc_login_cookie(&l, c, 100), 0);
}

/* ---------- discovery, authorization URL, token endpoint ---------- */

static json_t *discovery_doc(void)
{
	return json_pack("{s:s,s:s,s:s,s:s,s:[s],s:[s],s:[ss],s:[s]}", "issuer", ISSUER,
	                 "authorization_endpoint", ISSUER "/auth", "token_endpoint",
	                 ISSUER "/token", "jwks_uri", ISSUER "/jwks", "response_types_supported",
	                 "code", "code_challenge_methods_supported", "S256",
	                 "token_endpoint_auth_methods_supported", "client_secret_basic",
	                 "client_secret_post", "id_token_signing_alg_values_supported", "RS256");
}

static int discover(json_t *doc, struct oidc_discovery *d)
{
	char *text = json_dumps(doc, JSON_COMPACT);
	char err[256] = "x";
	int rc = oidc_discovery_parse(text, strlen(text), ISSUER, d, err, sizeof err);
	if (rc == OIDC_OK)
		assert_string_equal(err, "");
	else
		assert_true(err[0] != '\0' && strcmp(err, "x") != 0);
	free(text);
	json_decref(doc);
	return rc;
}

static json_t *doc_with(const char *member, json_t *v)
{
	json_t *d = discovery_doc();
	if (v)
		json_object_set_new(d, member, v);
	else
		json_object_del(d, member);
	return d;
}

static void test_discovery(void **state)
{
	struct oidc_discovery d;
	(void)state;

	assert_int_equal(discover(discovery_doc(), &d), OIDC_OK);
	assert_string_equal(d.issuer, ISSUER);
	assert_string_equal(d.token_endpoint, ISSUER "/token");
	assert_string_equal(d.jwks_uri, ISSUER "/jwks");
	assert_true(d.auth_basic && d.auth_post);
	/* Absent lists take their defaults: basic, S256 assumed. */
	assert_int_equal(discover(doc_with("token_endpoint_auth_methods_supported", NULL), &d),
	                 OIDC_OK);
	assert_true(d.auth_basic && !d.auth_post);
	assert_int_equal(discover(doc_with("code_challenge_methods_supported", NULL), &d), OIDC_OK);
	assert_int_equal(discover(doc_with("token_endpoint_auth_methods_supported",
	                                   json_pack("[s]", "client_secret_post")),
	                          &d),
	                 OIDC_OK);
	assert_true(!d.auth_basic && d.auth_post);
	/* Each refusal alone. */
	assert_int_equal(discover(doc_with("issuer", json_string(ISSUER "/")), &d),
	                 OIDC_ERR_FORMAT);
	assert_int_equal(discover(doc_with("issuer", NULL), &d), OIDC_ERR_FORMAT);
	assert_int_equal(
	    discover(doc_with("token_endpoint", json_string("http://op.example/t")), &d),
	    OIDC_ERR_FORMAT);
	assert_int_equal(discover(doc_with("jwks_uri", NULL), &d), OIDC_ERR_FORMAT);
	assert_int_equal(discover(doc_with("authorization_endpoint", json_string("https://")), &d),
	                 OIDC_ERR_FORMAT);
	assert_int_equal(
	    discover(doc_with("authorization_endpoint", json_string("https://op.example/a#f")), &d),
	    OIDC_ERR_FORMAT);
	assert_int_equal(
	    discover(doc_with("authorization_endpoint", json_string("https://op.example/a b")), &d),
	    OIDC_ERR_FORMAT);
	assert_int_equal(
	    discover(doc_with("response_types_supported", json_pack("[s]", "id_token")), &d),
	    OIDC_ERR_FORMAT);
	assert_int_equal(
	    discover(doc_with("code_challenge_methods_supported", json_pack("[s]", "plain")), &d),
	    OIDC_ERR_FORMAT);
	assert_int_equal(discover(doc_with("token_endpoint_auth_methods_supported",
	                                   json_pack("[s]", "private_key_jwt")),
	                          &d),
	                 OIDC_ERR_FORMAT);
	assert_int_equal(discover(doc_with("id_token_signing_alg_values_supported",
	                                   json_pack("[ss]", "HS256", "PS256")),
	                          &d),
	                 OIDC_ERR_FORMAT);
	assert_string_equal(d.token_endpoint, "");
	char err[64];
	assert_int_equal(oidc_discovery_parse("[]", 2, ISSUER, &d, err, sizeof err),
	                 OIDC_ERR_FORMAT);
}

/* The value of query parameter name in url (decoded only for %XX), or NULL. */
static char *query_param(const char *url, const char *name, char *out, size_t cap)
{
	const char *q = strchr(url, '?');
	size_t nl = strlen(name);

	while (q) {
		q++;
		if (strncmp(q, name, nl) == 0 && q[nl] == '=') {
			const char *v = q + nl + 1;
			size_t o = 0;
			while (*v && *v != '&' && o + 1 < cap) {
				if (*v == '%') {
					out[o++] =
					    (char)(str_hex_digit(v[1]) * 16 + str_hex_digit(v[2]));
					v += 3;
				} else {
					out[o++] = *v++;
				}
			}
			out[o] = '\0';
			return out;
		}
		q = strchr(q, '&');
	}
	return NULL;
}

static void test_authorize_url(void **state)
{
	struct oidc_discovery d;
	struct oidc_login l;
	struct buf b;
	char v[256];
	char ch[OIDC_CHALLENGE_LEN + 1];
	(void)state;

	assert_int_equal(discover(discovery_doc(), &d), OIDC_OK);
	oidc_login_new(&l, "op", NOW);
	buf_init(&b, 4096);
	assert_int_equal(oidc_authorize_url(&b, &d, "client 1&x",
	                                    "https://console.example/console/auth/oidc/op/callback",
	                                    "openid email profile", &l),
	                 0);
	assert_true(str_has_prefix(b.data, ISSUER "/auth?response_type=code&"));
	assert_string_equal(query_param(b.data, "client_id", v, sizeof v), "client 1&x");
	assert_non_null(strstr(b.data, "client_id=client%201%26x&"));
	assert_string_equal(query_param(b.data, "redirect_uri", v, sizeof v),
	                    "https://console.example/console/auth/oidc/op/callback");
	assert_string_equal(query_param(b.data, "scope", v, sizeof v), "openid email profile");
	assert_string_equal(query_param(b.data, "state", v, sizeof v), l.state);
	assert_string_equal(query_param(b.data, "nonce", v, sizeof v), l.nonce);
	oidc_pkce_challenge(l.verifier, strlen(l.verifier), ch);
	assert_string_equal(query_param(b.data, "code_challenge", v, sizeof v), ch);
	assert_string_equal(query_param(b.data, "code_challenge_method", v, sizeof v), "S256");
	assert_null(
	    strstr(b.data, l.verifier)); /* the verifier never leaves the browser's cookie */
	buf_free(&b);
	/* An endpoint with a query keeps it. */
	str_copy(d.authorization_endpoint, sizeof d.authorization_endpoint,
	         "https://login.example/authorize?tenant=x", 100);
	buf_init(&b, 4096);
	assert_int_equal(oidc_authorize_url(&b, &d, "c", "https://r", "openid", &l), 0);
	assert_true(
	    str_has_prefix(b.data, "https://login.example/authorize?tenant=x&response_type="));
	buf_free(&b);
	buf_init(&b, 100);
	assert_int_equal(oidc_authorize_url(&b, &d, "c", "https://r", "openid", &l), -1);
	buf_free(&b);
}

static void test_token_request(void **state)
{
	struct buf b;
	(void)state;

	/* RFC 6749 section 2.3.1's example. */
	buf_init(&b, 1024);
	assert_int_equal(oidc_basic_auth(&b, "s6BhdRkqt3", "7Fjfp0ZBr1KtDRbnfVdmIw"), 0);
	assert_string_equal(b.data, "Basic czZCaGRSa3F0Mzo3RmpmcDBaQnIxS3REUmJuZlZkbUl3");
	buf_free(&b);
	/* Form-encoded before base64: "a:b" / "c d" -> "a%3Ab:c%20d". */
	buf_init(&b, 1024);
	assert_int_equal(oidc_basic_auth(&b, "a:b", "c d"), 0);
	assert_string_equal(b.data, "Basic YSUzQWI6YyUyMGQ=");
	buf_free(&b);

	buf_init(&b, 1024);
	assert_int_equal(oidc_token_body(&b, "SplxlOBeZQQYbYS6WxSbIA", "https://c/cb", "ver", false,
	                                 "id", "secret"),
	                 0);
	assert_string_equal(b.data, "grant_type=authorization_code&code=SplxlOBeZQQYbYS6WxSbIA"
	                            "&redirect_uri=https%3A%2F%2Fc%2Fcb&code_verifier=ver");
	buf_free(&b);
	buf_init(&b, 1024);
	assert_int_equal(oidc_token_body(&b, "c", "r", "v", true, "id", "s+/"), 0);
	assert_string_equal(b.data, "grant_type=authorization_code&code=c&redirect_uri=r"
	                            "&code_verifier=v&client_id=id&client_secret=s%2B%2F");
	buf_free(&b);
}

static void test_token_response(void **state)
{
	static const char plain[] = "{\"token_type\":\"Bearer\",\"id_token\":\"a.b.c\"}";
	char out[JOSE_JWS_MAX_BYTES + 1];
	char at[OIDC_ACCESS_TOKEN_MAX + 1];
	(void)state;

#define TR(s) oidc_token_response(s, strlen(s), out, sizeof out, at, sizeof at)
	assert_int_equal(
	    TR("{\"access_token\":\"x\",\"token_type\":\"Bearer\",\"id_token\":\"a.b.c\"}"),
	    OIDC_OK);
	assert_string_equal(out, "a.b.c");
	assert_string_equal(at, "x");
	assert_int_equal(TR("{\"token_type\":\"bearer\",\"id_token\":\"a.b.c\"}"), OIDC_OK);
	assert_string_equal(at, "");
	assert_int_equal(oidc_token_response(plain, sizeof plain - 1, out, sizeof out, NULL, 0),
	                 OIDC_OK);
	assert_int_equal(TR("{\"token_type\":\"Bearer\"}"), OIDC_ERR_FORMAT);
	assert_int_equal(TR("{\"token_type\":\"MAC\",\"id_token\":\"a.b.c\"}"), OIDC_ERR_FORMAT);
	assert_int_equal(TR("{\"id_token\":\"a.b.c\"}"), OIDC_ERR_FORMAT);
	assert_int_equal(TR("{\"token_type\":\"Bearer\",\"id_token\":7}"), OIDC_ERR_FORMAT);
	assert_int_equal(TR("{\"token_type\":\"Bearer\",\"id_token\":\"\"}"), OIDC_ERR_FORMAT);
	assert_int_equal(TR("not json"), OIDC_ERR_FORMAT);
	assert_string_equal(out, "");
	assert_string_equal(at, "");
	/* An id_token longer than the caller's room is refused, never cut. */
	assert_int_equal(oidc_token_response(plain, sizeof plain - 1, out, 5, at, sizeof at),
	                 OIDC_ERR_FORMAT);
#undef TR
}

static void test_userinfo(void **state)
{
	struct oidc_identity id;
	(void)state;

#define UI(s) oidc_userinfo_apply(s, strlen(s), NULL, &id)
	memset(&id, 0, sizeof id);
	strcpy(id.sub, "u1");
	strcpy(id.name, "From the token");
	assert_int_equal(UI("{\"sub\":\"u1\",\"email\":\"a@example.com\",\"email_verified\":true}"),
	                 OIDC_OK);
	assert_string_equal(id.email, "a@example.com");
	assert_true(id.email_verified);
	assert_string_equal(id.name, "From the token");
	/* Another user's answer is never used; nor a non-object. */
	assert_int_equal(UI("{\"sub\":\"u2\",\"email\":\"b@example.com\",\"email_verified\":true}"),
	                 OIDC_ERR_SUB);
	assert_int_equal(UI("{\"email\":\"b@example.com\",\"email_verified\":true}"), OIDC_ERR_SUB);
	assert_string_equal(id.email, "a@example.com");
	assert_int_equal(UI("[]"), OIDC_ERR_FORMAT);
	assert_int_equal(UI("eyJhbGciOiJSUzI1NiJ9.e30.sig"), OIDC_ERR_FORMAT);
	assert_int_equal(
	    UI("{\"sub\":\"u1\",\"email\":\"c@example.com\",\"email_verified\":\"true\"}"),
	    OIDC_OK);
	assert_false(id.email_verified);
	/* Another verified-email claim (Entra ID's xms_edov): only it, only true. */
#define UIC(s, claim) oidc_userinfo_apply(s, strlen(s), claim, &id)
	assert_int_equal(
	    UIC("{\"sub\":\"u1\",\"email\":\"e@example.com\",\"xms_edov\":true}", "xms_edov"),
	    OIDC_OK);
	assert_true(id.email_verified);
	assert_int_equal(
	    UIC("{\"sub\":\"u1\",\"email\":\"e@example.com\",\"email_verified\":true}", "xms_edov"),
	    OIDC_OK);
	assert_false(id.email_verified);
	assert_int_equal(
	    UIC("{\"sub\":\"u1\",\"email\":\"e@example.com\",\"xms_edov\":\"true\"}", "xms_edov"),
	    OIDC_OK);
	assert_false(id.email_verified);
	assert_int_equal(UIC("{\"sub\":\"u1\",\"email\":\"e@example.com\",\"xms_edov\":true}", ""),
	                 OIDC_OK);
	assert_false(id.email_verified);
#undef UIC
#undef UI
}

/* ---------- the ID token ---------- */

static json_t *claims(void)
{
	return json_pack("{s:s,s:s,s:s,s:I,s:I,s:s,s:s,s:b,s:s}", "iss", ISSUER, "sub",
	                 "248289761001", "aud", CLIENT_ID, "exp", (json_int_t)NOW + 300, "iat",
	                 (json_int_t)NOW - 5, "nonce", nonce, "email", "ada@example.com",
	                 "email_verified", 1, "name", "Ada Lovelace");
}

/* Validate claims c (consumed) signed by key as alg/kid. */
/* Validate claims c (consumed) signed by key as alg/kid, with claim marking the email verified. */
static int validate_claim(json_t *c, gnutls_privkey_t key, const char *alg, const char *kid,
                          struct oidc_identity *id, char *kid_out, const char *claim)
{
	json_t *h = jws_header(alg, kid);
	char *tok = jws_sign(key, h, c);
	struct oidc_expect e = {ISSUER, CLIENT_ID, nonce, NOW, claim};
	struct oidc_identity local;
	char kbuf[JOSE_KID_MAX + 1];
	int rc = oidc_id_token_validate(tok, strlen(tok), keys, &e, id ? id : &local,
	                                kid_out ? kid_out : kbuf);
	if (rc != OIDC_OK)
		assert_string_equal((id ? id : &local)->sub, "");
	free(tok);
	json_decref(h);
	json_decref(c);
	return rc;
}

static int validate_as(json_t *c, gnutls_privkey_t key, const char *alg, const char *kid,
                       struct oidc_identity *id, char *kid_out)
{
	return validate_claim(c, key, alg, kid, id, kid_out, NULL);
}

static int validate(json_t *c)
{
	return validate_as(c, rsa_key, "RS256", "rsa-1", NULL, NULL);
}

static json_t *with(const char *name, json_t *v)
{
	json_t *c = claims();
	if (v)
		json_object_set_new(c, name, v);
	else
		json_object_del(c, name);
	return c;
}

static void test_id_token_valid(void **state)
{
	struct oidc_identity id;
	(void)state;

	assert_int_equal(validate_as(claims(), rsa_key, "RS256", "rsa-1", &id, NULL), OIDC_OK);
	assert_string_equal(id.sub, "248289761001");
	assert_string_equal(id.email, "ada@example.com");
	assert_true(id.email_verified);
	assert_string_equal(id.name, "Ada Lovelace");
	assert_int_equal(validate_as(claims(), ec_key, "ES256", "ec-1", &id, NULL), OIDC_OK);
	/* Within the skew on each side; aud as an array with azp; fractional dates. */
	assert_int_equal(validate(with("exp", json_integer(NOW - OIDC_SKEW_S + 1))), OIDC_OK);
	assert_int_equal(validate(with("iat", json_integer(NOW + OIDC_SKEW_S))), OIDC_OK);
	assert_int_equal(
	    validate(with("iat", json_integer(NOW - OIDC_IAT_MAX_AGE_S - OIDC_SKEW_S))), OIDC_OK);
	assert_int_equal(validate(with("nbf", json_integer(NOW + OIDC_SKEW_S))), OIDC_OK);
	assert_int_equal(validate(with("exp", json_real(NOW + 10.5))), OIDC_OK);
	json_t *c = with("aud", json_pack("[ss]", "other", CLIENT_ID));
	json_object_set_new(c, "azp", json_string(CLIENT_ID));
	assert_int_equal(validate(c), OIDC_OK);
	assert_int_equal(validate(with("aud", json_pack("[s]", CLIENT_ID))), OIDC_OK);
	assert_int_equal(validate(with("azp", json_string(CLIENT_ID))), OIDC_OK);
	/* email_verified must be the JSON true: "true" is not. */
	assert_int_equal(validate_as(with("email_verified", json_string("true")), rsa_key, "RS256",
	                             "rsa-1", &id, NULL),
	                 OIDC_OK);
	assert_false(id.email_verified);
	assert_int_equal(
	    validate_as(with("email_verified", NULL), rsa_key, "RS256", "rsa-1", &id, NULL),
	    OIDC_OK);
	assert_false(id.email_verified);
	/* An email too long to keep is dropped, not cut. */
	char longmail[400];
	memset(longmail, 'a', sizeof longmail);
	memcpy(longmail + sizeof longmail - 13, "@example.com", 13);
	assert_int_equal(
	    validate_as(with("email", json_string(longmail)), rsa_key, "RS256", "rsa-1", &id, NULL),
	    OIDC_OK);
	assert_string_equal(id.email, "");
}

/* The verified-email claim ([oidc.NAME] verified_email_claim): the one named, JSON true only. */
static void test_id_token_verified_email_claim(void **state)
{
	struct oidc_identity id;
	(void)state;

#define EDOV(v, claim)                                                                             \
	do {                                                                                       \
		json_t *c_ = with("email_verified", NULL), *v_ = (v);                              \
		if (v_)                                                                            \
			json_object_set_new(c_, "xms_edov", v_);                                   \
		assert_int_equal(validate_claim(c_, rsa_key, "RS256", "rsa-1", &id, NULL, claim),  \
		                 OIDC_OK);                                                         \
	} while (0)
	EDOV(json_true(), "xms_edov");
	assert_true(id.email_verified);
	assert_string_equal(id.email, "ada@example.com");
	/* Without the setting the standard claim decides: absent here, so not verified. */
	EDOV(json_true(), NULL);
	assert_false(id.email_verified);
	EDOV(json_true(), "");
	assert_false(id.email_verified);
	/* Anything but true is not verified. */
	EDOV(json_false(), "xms_edov");
	assert_false(id.email_verified);
	EDOV(json_string("true"), "xms_edov");
	assert_false(id.email_verified);
	EDOV(json_integer(1), "xms_edov");
	assert_false(id.email_verified);
	EDOV(json_null(), "xms_edov");
	assert_false(id.email_verified);
	EDOV(NULL, "xms_edov");
	assert_false(id.email_verified);
#undef EDOV
	/* email_verified true does not stand in for the configured claim. */
	assert_int_equal(validate_claim(claims(), rsa_key, "RS256", "rsa-1", &id, NULL, "xms_edov"),
	                 OIDC_OK);
	assert_false(id.email_verified);
}

static void test_id_token_signature(void **state)
{
	char kid[JOSE_KID_MAX + 1];
	gnutls_privkey_t other;
	(void)state;

	assert_int_equal(gnutls_privkey_init(&other), 0);
	assert_int_equal(gnutls_privkey_generate(other, GNUTLS_PK_RSA, 2048, 0), 0);
	assert_int_equal(validate_as(claims(), other, "RS256", "rsa-1", NULL, NULL),
	                 OIDC_ERR_SIGNATURE);
	gnutls_privkey_deinit(other);
	/* alg none and HS256 are refused as signatures. */
	json_t *h = jws_header("none", NULL);
	char *hb = b64u_json(h);
	json_t *c = claims();
	char *pb = b64u_json(c);
	char tok[4096];
	snprintf(tok, sizeof tok, "%s.%s.", hb, pb);
	struct oidc_expect e = {ISSUER, CLIENT_ID, nonce, NOW, NULL};
	struct oidc_identity id;
	assert_int_equal(oidc_id_token_validate(tok, strlen(tok), keys, &e, &id, kid),
	                 OIDC_ERR_SIGNATURE);
	free(hb);
	json_decref(h);
	h = jws_header("HS256", "rsa-1");
	hb = b64u_json(h);
	snprintf(tok, sizeof tok, "%s.%s.AAAA", hb, pb);
	assert_int_equal(oidc_id_token_validate(tok, strlen(tok), keys, &e, &id, kid),
	                 OIDC_ERR_SIGNATURE);
	free(hb);
	free(pb);
	json_decref(h);
	json_decref(c);
	/* An unknown kid says which, so the key set can be fetched again. */
	assert_int_equal(validate_as(claims(), rsa_key, "RS256", "rotated-2", NULL, kid),
	                 OIDC_ERR_KID);
	assert_string_equal(kid, "rotated-2");
	assert_int_equal(oidc_id_token_validate("x.y", 3, keys, &e, &id, kid), OIDC_ERR_FORMAT);
}

static void test_id_token_each_rule(void **state)
{
	(void)state;

	/* iss */
	assert_int_equal(validate(with("iss", json_string(ISSUER "/"))), OIDC_ERR_ISS);
	assert_int_equal(validate(with("iss", json_string("https://evil.example"))), OIDC_ERR_ISS);
	assert_int_equal(validate(with("iss", NULL)), OIDC_ERR_ISS);
	/* aud */
	assert_int_equal(validate(with("aud", json_string("someone-else"))), OIDC_ERR_AUD);
	assert_int_equal(validate(with("aud", json_pack("[ss]", "a", "b"))), OIDC_ERR_AUD);
	assert_int_equal(validate(with("aud", json_pack("[si]", CLIENT_ID, 1))), OIDC_ERR_AUD);
	assert_int_equal(validate(with("aud", json_array())), OIDC_ERR_AUD);
	assert_int_equal(validate(with("aud", NULL)), OIDC_ERR_AUD);
	assert_int_equal(validate(with("aud", json_string("PORTCULLIS"))), OIDC_ERR_AUD);
	/* azp: several audiences need it; when present it must be this client. */
	assert_int_equal(validate(with("aud", json_pack("[ss]", CLIENT_ID, "other"))),
	                 OIDC_ERR_AZP);
	assert_int_equal(validate(with("azp", json_string("other"))), OIDC_ERR_AZP);
	/* exp */
	assert_int_equal(validate(with("exp", json_integer(NOW - OIDC_SKEW_S))), OIDC_ERR_EXP);
	assert_int_equal(validate(with("exp", json_integer(NOW - 3600))), OIDC_ERR_EXP);
	assert_int_equal(validate(with("exp", NULL)), OIDC_ERR_EXP);
	assert_int_equal(validate(with("exp", json_string("4102444800"))), OIDC_ERR_EXP);
	/* nbf */
	assert_int_equal(validate(with("nbf", json_integer(NOW + OIDC_SKEW_S + 1))), OIDC_ERR_NBF);
	/* iat: not in the future, not too old, present */
	assert_int_equal(validate(with("iat", json_integer(NOW + OIDC_SKEW_S + 1))), OIDC_ERR_IAT);
	assert_int_equal(
	    validate(with("iat", json_integer(NOW - OIDC_IAT_MAX_AGE_S - OIDC_SKEW_S - 1))),
	    OIDC_ERR_IAT);
	assert_int_equal(validate(with("iat", NULL)), OIDC_ERR_IAT);
	/* nonce */
	assert_int_equal(validate(with("nonce", json_string("another-login"))), OIDC_ERR_NONCE);
	assert_int_equal(validate(with("nonce", json_stringn(nonce, strlen(nonce) - 1))),
	                 OIDC_ERR_NONCE);
	assert_int_equal(validate(with("nonce", NULL)), OIDC_ERR_NONCE);
	/* sub */
	assert_int_equal(validate(with("sub", NULL)), OIDC_ERR_SUB);
	assert_int_equal(validate(with("sub", json_string(""))), OIDC_ERR_SUB);
	assert_int_equal(validate(with("sub", json_integer(5))), OIDC_ERR_SUB);
	assert_string_equal(oidc_result_name(OIDC_ERR_AZP), "azp");
	assert_string_equal(oidc_result_name(OIDC_ERR_NONCE), "nonce");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_pkce_vector),
	    cmocka_unit_test(test_login_new_is_random),
	    cmocka_unit_test(test_login_round_trip_and_check),
	    cmocka_unit_test(test_login_decode_refusals),
	    cmocka_unit_test(test_login_cookie_attributes),
	    cmocka_unit_test(test_discovery),
	    cmocka_unit_test(test_authorize_url),
	    cmocka_unit_test(test_token_request),
	    cmocka_unit_test(test_token_response),
	    cmocka_unit_test(test_userinfo),
	    cmocka_unit_test(test_id_token_valid),
	    cmocka_unit_test(test_id_token_verified_email_claim),
	    cmocka_unit_test(test_id_token_signature),
	    cmocka_unit_test(test_id_token_each_rule),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
