/*
 * test_jose.c: unit tests for src/crypto/jose: JWK to public key (the PEM
 * GnuTLS exports equals python3-cryptography's for the same key), tokens
 * signed by python3-cryptography verifying here (RS256 and ES256), many
 * ES256 signatures made by GnuTLS (so r or s with leading zero bytes
 * occur), and each refusal on its own: alg none, HS256/384/512 (including
 * an HMAC keyed with the RSA public key, the classic confusion), unknown
 * algs, kid mismatch and a kid of the other key type, a bad signature,
 * malformed serialisations, and JWKs and key sets that must not import.
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

#include "crypto/hash.h"
#include "crypto/jose.h"

#include "jws_sign.h"

static json_t *fx_jwk(const char *which)
{
	json_t *j = json_object_get(json_object_get(fx, which), "jwk");
	return j ? j : json_object_get(fx, which);
}

/* A key set of the given JWKs (a NULL-terminated list of fixture names). */
static struct jose_jwks *set_of(const char *first, ...)
{
	json_t *keys = json_array();
	va_list ap;
	struct jose_jwks *s = NULL;
	char err[128];

	va_start(ap, first);
	for (const char *w = first; w; w = va_arg(ap, const char *))
		json_array_append(keys, fx_jwk(w));
	va_end(ap);
	json_t *doc = json_pack("{s:o}", "keys", keys);
	char *text = json_dumps(doc, JSON_COMPACT);
	assert_int_equal(jose_jwks_parse(text, strlen(text), &s, err, sizeof err), JOSE_OK);
	free(text);
	json_decref(doc);
	return s;
}

static int verify(const char *tok, const struct jose_jwks *set, char *kid)
{
	struct jose_verified v;
	int rc = jose_jws_verify(tok, strlen(tok), set, &v, kid);
	if (rc == JOSE_OK) {
		assert_non_null(v.payload);
		assert_true(json_is_object(v.payload));
	} else {
		assert_null(v.payload);
		assert_null(v.header);
	}
	jose_verified_clear(&v);
	return rc;
}

static void test_jwk_to_pem(void **state)
{
	static const char *const which[] = {"rsa", "ec"};
	(void)state;

	for (size_t i = 0; i < 2; i++) {
		struct jose_key *k;
		char pem[4096];
		size_t len;

		assert_int_equal(jose_jwk_import(fx_jwk(which[i]), &k), JOSE_OK);
		assert_int_equal(jose_key_alg(k), i == 0 ? JOSE_ALG_RS256 : JOSE_ALG_ES256);
		assert_int_equal(jose_key_export_pem(k, pem, sizeof pem, &len), 0);
		assert_string_equal(pem, json_string_value(json_object_get(
		                             json_object_get(fx, which[i]), "public_pem")));
		assert_int_equal(jose_key_export_pem(k, pem, 20, &len), -1);
		jose_key_free(k);
	}
}

static void test_python_tokens_verify(void **state)
{
	struct jose_jwks *set = set_of("rsa", "ec", NULL);
	struct jose_verified v;
	char kid[JOSE_KID_MAX + 1];
	(void)state;

	for (int i = 0; i < 2; i++) {
		const char *tok = json_string_value(json_object_get(fx, i ? "es256" : "rs256"));
		assert_int_equal(jose_jws_verify(tok, strlen(tok), set, &v, kid), JOSE_OK);
		assert_int_equal(v.alg, i ? JOSE_ALG_ES256 : JOSE_ALG_RS256);
		assert_string_equal(kid, i ? "ec-1" : "rsa-1");
		assert_true(json_equal(v.payload, json_object_get(fx, "payload")));
		jose_verified_clear(&v);
		jose_verified_clear(&v); /* idempotent */
	}
	jose_jwks_free(set);
}

static void test_gnutls_signed_tokens_verify(void **state)
{
	struct jose_jwks *set = set_of("rsa", "ec", NULL);
	gnutls_privkey_t ec = fixture_privkey("ec");
	gnutls_privkey_t rsa = fixture_privkey("rsa");
	json_t *h_ec = jws_header("ES256", "ec-1");
	json_t *h_rsa = jws_header("RS256", "rsa-1");
	(void)state;

	/* 200 ES256 signatures: some r or s start with zero bytes. */
	for (int i = 0; i < 200; i++) {
		json_t *p = json_pack("{s:i}", "i", i);
		char *tok = jws_sign(ec, h_ec, p);
		assert_int_equal(verify(tok, set, NULL), JOSE_OK);
		free(tok);
		json_decref(p);
	}
	json_t *p = json_pack("{s:s}", "sub", "x");
	char *tok = jws_sign(rsa, h_rsa, p);
	assert_int_equal(verify(tok, set, NULL), JOSE_OK);
	free(tok);
	json_decref(p);
	json_decref(h_ec);
	json_decref(h_rsa);
	gnutls_privkey_deinit(ec);
	gnutls_privkey_deinit(rsa);
	jose_jwks_free(set);
}

/* The python RS256 token with its header replaced by h (signature kept). */
static char *with_header(const json_t *h, const char *sig_b64)
{
	const char *tok = json_string_value(json_object_get(fx, "rs256"));
	const char *dot1 = strchr(tok, '.');
	const char *dot2 = strchr(dot1 + 1, '.');
	char *hb = b64u_json(h);
	size_t n = strlen(hb) + (size_t)(dot2 - dot1) + 2 + strlen(sig_b64 ? sig_b64 : dot2 + 1);
	char *out = malloc(n);
	snprintf(out, n, "%s%.*s.%s", hb, (int)(dot2 - dot1), dot1, sig_b64 ? sig_b64 : dot2 + 1);
	free(hb);
	return out;
}

static void test_refuse_alg_none(void **state)
{
	struct jose_jwks *set = set_of("rsa", "ec", NULL);
	json_t *h = jws_header("none", NULL);
	char *t1 = with_header(h, "");
	char *t2 = with_header(h, NULL);
	(void)state;

	/* "x.y." (empty signature) and with a signature: refused by alg. */
	assert_int_equal(verify(t1, set, NULL), JOSE_ERR_ALG);
	assert_int_equal(verify(t2, set, NULL), JOSE_ERR_ALG);
	json_decref(h);
	h = jws_header("None", "rsa-1");
	free(t1);
	t1 = with_header(h, NULL);
	assert_int_equal(verify(t1, set, NULL), JOSE_ERR_ALG);
	free(t1);
	free(t2);
	json_decref(h);
	jose_jwks_free(set);
}

static void test_refuse_hmac(void **state)
{
	static const char *const algs[] = {"HS256", "HS384", "HS512"};
	struct jose_jwks *set = set_of("rsa", "ec", NULL);
	const char *pub =
	    json_string_value(json_object_get(json_object_get(fx, "rsa"), "public_pem"));
	(void)state;

	for (size_t i = 0; i < 3; i++) {
		json_t *h = jws_header(algs[i], "rsa-1");
		char *hb = b64u_json(h);
		char *pb = b64u_json(json_object_get(fx, "payload"));
		char signing[4096];
		uint8_t mac[SHA256_LEN];
		char macb[64];
		char tok[4200];

		/* HMAC keyed with the RSA public key PEM: what a confused verifier accepts. */
		snprintf(signing, sizeof signing, "%s.%s", hb, pb);
		hmac_sha256(pub, strlen(pub), signing, strlen(signing), mac);
		assert_int_equal(base64url_encode(mac, sizeof mac, macb, sizeof macb), 0);
		snprintf(tok, sizeof tok, "%s.%s", signing, macb);
		assert_int_equal(verify(tok, set, NULL), JOSE_ERR_ALG);
		free(hb);
		free(pb);
		json_decref(h);
	}
	jose_jwks_free(set);
}

static void test_refuse_unknown_alg(void **state)
{
	static const char *const algs[] = {"RS384", "RS512", "PS256",  "ES384", "ES512",
	                                   "EdDSA", "rs256", "RS256 ", "",      "ES256K"};
	struct jose_jwks *set = set_of("rsa", "ec", NULL);
	(void)state;

	for (size_t i = 0; i < sizeof(algs) / sizeof(algs[0]); i++) {
		json_t *h = jws_header(algs[i], "rsa-1");
		char *t = with_header(h, NULL);
		assert_int_equal(verify(t, set, NULL), JOSE_ERR_ALG);
		free(t);
		json_decref(h);
	}
	/* No alg, and an alg that is not a string. */
	json_t *h = json_pack("{s:s}", "kid", "rsa-1");
	char *t = with_header(h, NULL);
	assert_int_equal(verify(t, set, NULL), JOSE_ERR_ALG);
	free(t);
	json_decref(h);
	h = json_pack("{s:i,s:s}", "alg", 256, "kid", "rsa-1");
	t = with_header(h, NULL);
	assert_int_equal(verify(t, set, NULL), JOSE_ERR_ALG);
	free(t);
	json_decref(h);
	jose_jwks_free(set);
}

static void test_refuse_kid(void **state)
{
	struct jose_jwks *set = set_of("rsa", "ec", NULL);
	char kid[JOSE_KID_MAX + 1];
	json_t *h;
	char *t;
	(void)state;

	/* A kid the set lacks; reported so the caller may fetch the set again. */
	h = jws_header("RS256", "rsa-2");
	t = with_header(h, NULL);
	assert_int_equal(verify(t, set, kid), JOSE_ERR_KID);
	assert_string_equal(kid, "rsa-2");
	free(t);
	json_decref(h);
	/* The kid of the EC key under RS256: never an RSA check against an EC key. */
	h = jws_header("RS256", "ec-1");
	t = with_header(h, NULL);
	assert_int_equal(verify(t, set, kid), JOSE_ERR_KID);
	free(t);
	json_decref(h);
	/* No kid: the only RSA key of the set is used... */
	h = jws_header("RS256", NULL);
	t = with_header(h, NULL);
	struct jose_jwks *one = set_of("rsa", NULL);
	gnutls_privkey_t rsa = fixture_privkey("rsa");
	char *good = jws_sign(rsa, h, json_object_get(fx, "payload"));
	assert_int_equal(verify(good, one, kid), JOSE_OK);
	assert_string_equal(kid, "");
	/* ...but with two RSA keys a kid is required. */
	json_t *second = json_deep_copy(fx_jwk("rsa"));
	json_object_set_new(second, "kid", json_string("rsa-1b"));
	json_t *doc = json_pack("{s:[OO]}", "keys", fx_jwk("rsa"), second);
	char *text = json_dumps(doc, JSON_COMPACT);
	struct jose_jwks *two = NULL;
	char err[128];
	assert_int_equal(jose_jwks_parse(text, strlen(text), &two, err, sizeof err), JOSE_OK);
	assert_int_equal(verify(good, two, NULL), JOSE_ERR_KID);
	/* An empty set (NULL) has no key. */
	assert_int_equal(verify(good, NULL, NULL), JOSE_ERR_KID);
	free(text);
	json_decref(doc);
	json_decref(second);
	jose_jwks_free(two);
	free(good);
	gnutls_privkey_deinit(rsa);
	jose_jwks_free(one);
	free(t);
	json_decref(h);
	jose_jwks_free(set);
}

static void test_refuse_signature(void **state)
{
	struct jose_jwks *set = set_of("rsa", "ec", NULL);
	const char *rs = json_string_value(json_object_get(fx, "rs256"));
	const char *es = json_string_value(json_object_get(fx, "es256"));
	char buf[8192];
	(void)state;

	/* A changed payload character. */
	for (int i = 0; i < 2; i++) {
		snprintf(buf, sizeof buf, "%s", i ? es : rs);
		char *p = strchr(buf, '.') + 3;
		*p = *p == 'A' ? 'B' : 'A';
		assert_int_equal(verify(buf, set, NULL), JOSE_ERR_SIGNATURE);
	}
	/* The signature cut to 63 bytes, or two bytes longer. */
	snprintf(buf, sizeof buf, "%s", es);
	buf[strlen(buf) - 2] = '\0';
	assert_int_equal(verify(buf, set, NULL), JOSE_ERR_SIGNATURE);
	snprintf(buf, sizeof buf, "%sAA", rs);
	assert_int_equal(verify(buf, set, NULL), JOSE_ERR_SIGNATURE);
	/* An empty signature under RS256. */
	snprintf(buf, sizeof buf, "%s", rs);
	*(strrchr(buf, '.') + 1) = '\0';
	assert_int_equal(verify(buf, set, NULL), JOSE_ERR_SIGNATURE);
	/* Signed by another key with the same kid. */
	gnutls_privkey_t other;
	assert_int_equal(gnutls_privkey_init(&other), 0);
	assert_int_equal(gnutls_privkey_generate(other, GNUTLS_PK_ECDSA,
	                                         GNUTLS_CURVE_TO_BITS(GNUTLS_ECC_CURVE_SECP256R1),
	                                         0),
	                 0);
	json_t *h = jws_header("ES256", "ec-1");
	char *t = jws_sign(other, h, json_object_get(fx, "payload"));
	assert_int_equal(verify(t, set, NULL), JOSE_ERR_SIGNATURE);
	free(t);
	json_decref(h);
	gnutls_privkey_deinit(other);
	jose_jwks_free(set);
}

static void test_refuse_format(void **state)
{
	struct jose_jwks *set = set_of("rsa", "ec", NULL);
	const char *rs = json_string_value(json_object_get(fx, "rs256"));
	char buf[8192];
	(void)state;

	static const char *const bad[] = {"",     "a",    "a.b",         "a.b.c.d",
	                                  ".b.c", "a..c", "e30.e30.e30."};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(verify(bad[i], set, NULL), JOSE_ERR_FORMAT);
	/* Padding, and the standard alphabet, in the signature. */
	snprintf(buf, sizeof buf, "%s=", rs);
	assert_int_equal(verify(buf, set, NULL), JOSE_ERR_FORMAT);
	snprintf(buf, sizeof buf, "%s", rs);
	buf[strlen(buf) - 2] = '+';
	assert_int_equal(verify(buf, set, NULL), JOSE_ERR_FORMAT);
	/* A header that is not JSON, an array, or has crit. */
	snprintf(buf, sizeof buf, "bm90IGpzb24%s", strchr(rs, '.'));
	assert_int_equal(verify(buf, set, NULL), JOSE_ERR_FORMAT);
	snprintf(buf, sizeof buf, "W10%s", strchr(rs, '.'));
	assert_int_equal(verify(buf, set, NULL), JOSE_ERR_FORMAT);
	json_t *h = json_pack("{s:s,s:s,s:[s]}", "alg", "RS256", "kid", "rsa-1", "crit", "exp");
	char *t = with_header(h, NULL);
	assert_int_equal(verify(t, set, NULL), JOSE_ERR_FORMAT);
	free(t);
	json_decref(h);
	/* A header kid that is not a string. */
	h = json_pack("{s:s,s:i}", "alg", "RS256", "kid", 1);
	t = with_header(h, NULL);
	assert_int_equal(verify(t, set, NULL), JOSE_ERR_FORMAT);
	free(t);
	json_decref(h);
	/* A signed payload that is not an object. */
	gnutls_privkey_t rsa = fixture_privkey("rsa");
	h = jws_header("RS256", "rsa-1");
	json_t *arr = json_pack("[i]", 1);
	t = jws_sign(rsa, h, arr);
	assert_int_equal(verify(t, set, NULL), JOSE_ERR_FORMAT);
	free(t);
	json_decref(arr);
	json_decref(h);
	gnutls_privkey_deinit(rsa);
	/* Over JOSE_JWS_MAX_BYTES. */
	char *big = malloc(JOSE_JWS_MAX_BYTES + 2);
	memset(big, 'A', JOSE_JWS_MAX_BYTES + 1);
	big[10] = '.';
	big[20] = '.';
	big[JOSE_JWS_MAX_BYTES + 1] = '\0';
	assert_int_equal(verify(big, set, NULL), JOSE_ERR_FORMAT);
	free(big);
	jose_jwks_free(set);
}

/* jose_jwk_import of the fixture which with member set to v (NULL: removed). */
static int import_with(const char *which, const char *member, json_t *v)
{
	json_t *j = json_deep_copy(fx_jwk(which));
	struct jose_key *k = NULL;
	int rc;

	if (v)
		json_object_set_new(j, member, v);
	else
		json_object_del(j, member);
	rc = jose_jwk_import(j, &k);
	if (rc == JOSE_OK)
		assert_non_null(k);
	else
		assert_null(k);
	jose_key_free(k);
	json_decref(j);
	return rc;
}

static void test_jwk_refusals(void **state)
{
	struct jose_key *k = NULL;
	(void)state;

	assert_int_equal(import_with("rsa", "kid", NULL), JOSE_OK);
	assert_int_equal(import_with("rsa", "alg", NULL), JOSE_OK);
	assert_int_equal(import_with("rsa", "use", NULL), JOSE_OK);
	/* 1024-bit RSA, a point off the curve, P-384. */
	assert_int_equal(jose_jwk_import(json_object_get(fx, "rsa_1024_jwk"), &k), JOSE_ERR_KEY);
	assert_int_equal(jose_jwk_import(json_object_get(fx, "ec_off_curve_jwk"), &k),
	                 JOSE_ERR_KEY);
	assert_int_equal(jose_jwk_import(json_object_get(fx, "p384_jwk"), &k), JOSE_ERR_KEY);
	assert_int_equal(import_with("ec", "crv", json_string("P-384")), JOSE_ERR_KEY);
	/* A private member, an alg of the other type, use enc, an unknown kty. */
	assert_int_equal(import_with("rsa", "d", json_string("AQAB")), JOSE_ERR_KEY);
	assert_int_equal(import_with("ec", "d", json_string("AQAB")), JOSE_ERR_KEY);
	assert_int_equal(import_with("rsa", "alg", json_string("ES256")), JOSE_ERR_KEY);
	assert_int_equal(import_with("rsa", "alg", json_string("HS256")), JOSE_ERR_KEY);
	assert_int_equal(import_with("ec", "use", json_string("enc")), JOSE_ERR_KEY);
	assert_int_equal(import_with("rsa", "kty", json_string("oct")), JOSE_ERR_KEY);
	assert_int_equal(import_with("rsa", "kty", NULL), JOSE_ERR_KEY);
	/* Coordinates of the wrong size or encoding, a missing or even exponent. */
	assert_int_equal(import_with("ec", "x", json_string("AQAB")), JOSE_ERR_KEY);
	assert_int_equal(import_with("ec", "y", NULL), JOSE_ERR_KEY);
	assert_int_equal(import_with("rsa", "n", json_string("AQAB=")), JOSE_ERR_KEY);
	assert_int_equal(import_with("rsa", "e", json_string("Ag")), JOSE_ERR_KEY);
	assert_int_equal(import_with("rsa", "e", json_string("AQ")), JOSE_ERR_KEY);
	assert_int_equal(import_with("rsa", "e", NULL), JOSE_ERR_KEY);
	assert_int_equal(import_with("rsa", "kid", json_integer(1)), JOSE_ERR_KEY);
	assert_int_equal(import_with("rsa", "kid", json_string("")), JOSE_ERR_KEY);
}

static int parse_set(json_t *keys, struct jose_jwks **s)
{
	json_t *doc = json_pack("{s:o}", "keys", keys);
	char *text = json_dumps(doc, JSON_COMPACT);
	char err[128] = "x";
	int rc = jose_jwks_parse(text, strlen(text), s, err, sizeof err);
	if (rc == JOSE_OK) {
		assert_string_equal(err, "");
	} else {
		assert_null(*s);
		assert_true(err[0] != '\0');
	}
	free(text);
	json_decref(doc);
	return rc;
}

static void test_jwks_parse(void **state)
{
	struct jose_jwks *s = NULL;
	char err[128];
	(void)state;

	/* Keys of other kinds are skipped: P-384, an encryption key, OKP, RS384. */
	json_t *enc = json_deep_copy(fx_jwk("rsa"));
	json_object_set_new(enc, "use", json_string("enc"));
	json_object_set_new(enc, "kid", json_string("enc-1"));
	json_object_del(enc, "alg");
	json_t *rs384 = json_deep_copy(fx_jwk("rsa"));
	json_object_set_new(rs384, "alg", json_string("RS384"));
	json_t *okp = json_pack("{s:s,s:s,s:s}", "kty", "OKP", "crv", "Ed25519", "x", "AAAA");
	assert_int_equal(parse_set(json_pack("[OOOOOOO]", fx_jwk("rsa"), fx_jwk("ec"),
	                                     json_object_get(fx, "p384_jwk"), enc, okp, rs384,
	                                     json_object_get(fx, "p384_jwk")),
	                           &s),
	                 JOSE_OK);
	assert_int_equal(jose_jwks_count(s), 2);
	jose_jwks_free(s);
	s = NULL;
	/* A usable kind that does not import refuses the whole set. */
	assert_int_equal(
	    parse_set(json_pack("[OO]", fx_jwk("rsa"), json_object_get(fx, "rsa_1024_jwk")), &s),
	    JOSE_ERR_KEY);
	assert_int_equal(
	    parse_set(json_pack("[OO]", fx_jwk("rsa"), json_object_get(fx, "ec_off_curve_jwk")),
	              &s),
	    JOSE_ERR_KEY);
	/* A kid repeated for the same key type; an empty set; only unusable keys. */
	assert_int_equal(parse_set(json_pack("[OO]", fx_jwk("rsa"), fx_jwk("rsa")), &s),
	                 JOSE_ERR_KEY);
	assert_int_equal(parse_set(json_array(), &s), JOSE_ERR_KEY);
	assert_int_equal(parse_set(json_pack("[O]", okp), &s), JOSE_ERR_KEY);
	assert_int_equal(parse_set(json_pack("[i]", 1), &s), JOSE_ERR_FORMAT);
	/* Not a set at all. */
	assert_int_equal(jose_jwks_parse("[]", 2, &s, err, sizeof err), JOSE_ERR_FORMAT);
	assert_int_equal(jose_jwks_parse("{\"keys\":", 8, &s, err, sizeof err), JOSE_ERR_FORMAT);
	assert_int_equal(jose_jwks_parse("{\"keys\":[],\"keys\":[]}", 22, &s, err, sizeof err),
	                 JOSE_ERR_FORMAT);
	assert_null(s);
	json_decref(enc);
	json_decref(rs384);
	json_decref(okp);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_jwk_to_pem),
	    cmocka_unit_test(test_python_tokens_verify),
	    cmocka_unit_test(test_gnutls_signed_tokens_verify),
	    cmocka_unit_test(test_refuse_alg_none),
	    cmocka_unit_test(test_refuse_hmac),
	    cmocka_unit_test(test_refuse_unknown_alg),
	    cmocka_unit_test(test_refuse_kid),
	    cmocka_unit_test(test_refuse_signature),
	    cmocka_unit_test(test_refuse_format),
	    cmocka_unit_test(test_jwk_refusals),
	    cmocka_unit_test(test_jwks_parse),
	};
	return cmocka_run_group_tests(tests, fixtures_setup, fixtures_teardown);
}
