/*
 * jws_sign.h: the test side of JOSE for test_jose.c and test_oidc.c:
 * loading tests/unit/fixtures/jose.json (keys made by make_jose.py with
 * python3-cryptography; meson passes the directory as PORTCULLIS_FIXTURES)
 * and signing compact JWS with those keys through GnuTLS, so a test can
 * make a token with any header and claims. Include after <cmocka.h> and
 * <jansson.h>.
 */
#ifndef PORTCULLIS_TESTS_UNIT_JWS_SIGN_H
#define PORTCULLIS_TESTS_UNIT_JWS_SIGN_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <gnutls/abstract.h>
#include <gnutls/crypto.h>
#include <gnutls/gnutls.h>

#include "crypto/hash.h"

#include "vectors.h"

static inline json_t *fixture_load(const char *name)
{
	return test_json_load("PORTCULLIS_FIXTURES", name);
}

/* The fixtures, loaded once per test file (its group setup and teardown). */
static json_t *fx;

static inline int fixtures_setup(void **state)
{
	(void)state;
	fx = fixture_load("jose.json");
	return 0;
}

static inline int fixtures_teardown(void **state)
{
	(void)state;
	json_decref(fx);
	fx = NULL;
	return 0;
}

/* A private key of the fixtures ("rsa" or "ec"), to be deinit'ed by the caller. */
static inline gnutls_privkey_t fixture_privkey(const char *which)
{
	const char *pem =
	    json_string_value(json_object_get(json_object_get(fx, which), "private_pem"));
	gnutls_datum_t d = {(unsigned char *)(uintptr_t)pem, (unsigned)strlen(pem)};
	gnutls_privkey_t k;

	assert_int_equal(gnutls_privkey_init(&k), 0);
	assert_int_equal(gnutls_privkey_import_x509_raw(k, &d, GNUTLS_X509_FMT_PEM, NULL, 0), 0);
	return k;
}

/* base64url of the compact JSON text of v, appended to b (a malloc'd string). */
static inline char *b64u_json(const json_t *v)
{
	char *text = json_dumps(v, JSON_COMPACT);
	size_t n = strlen(text);
	char *out = malloc(base64url_encoded_len(n) + 1);

	assert_non_null(out);
	assert_int_equal(base64url_encode(text, n, out, base64url_encoded_len(n) + 1), 0);
	free(text);
	return out;
}

/*
 * header.payload.signature with key (an RSA key signs RS256, an EC key
 * ES256 as raw r || s). Returns a malloc'd string. The header and payload
 * are used as given, so a test may name any alg or kid.
 */
static inline char *jws_sign(gnutls_privkey_t key, const json_t *header, const json_t *payload)
{
	char *h = b64u_json(header);
	char *p = b64u_json(payload);
	size_t sl = strlen(h) + 1 + strlen(p);
	char *signing = malloc(sl + 1);
	gnutls_datum_t data, sig = {NULL, 0};
	uint8_t raw[1024];
	size_t raw_len;
	char *out;

	assert_non_null(signing);
	snprintf(signing, sl + 1, "%s.%s", h, p);
	data.data = (unsigned char *)signing;
	data.size = (unsigned)sl;
	if (gnutls_privkey_get_pk_algorithm(key, NULL) == GNUTLS_PK_RSA) {
		assert_int_equal(
		    gnutls_privkey_sign_data2(key, GNUTLS_SIGN_RSA_SHA256, 0, &data, &sig), 0);
		assert_true(sig.size <= sizeof raw);
		memcpy(raw, sig.data, sig.size);
		raw_len = sig.size;
	} else {
		gnutls_datum_t r = {NULL, 0}, s = {NULL, 0};
		assert_int_equal(gnutls_privkey_sign_data2(key, GNUTLS_SIGN_ECDSA_SECP256R1_SHA256,
		                                           0, &data, &sig),
		                 0);
		assert_int_equal(gnutls_decode_rs_value(&sig, &r, &s), 0);
		/* Integers as DER writes them: strip a sign byte, pad to 32. */
		const uint8_t *rp = r.data, *sp = s.data;
		size_t rl = r.size, sn = s.size;
		while (rl > 32 && *rp == 0) {
			rp++;
			rl--;
		}
		while (sn > 32 && *sp == 0) {
			sp++;
			sn--;
		}
		assert_true(rl <= 32 && sn <= 32);
		memset(raw, 0, 64);
		memcpy(raw + 32 - rl, rp, rl);
		memcpy(raw + 64 - sn, sp, sn);
		raw_len = 64;
		gnutls_free(r.data);
		gnutls_free(s.data);
	}
	gnutls_free(sig.data);
	out = malloc(sl + 1 + base64url_encoded_len(raw_len) + 1);
	assert_non_null(out);
	memcpy(out, signing, sl);
	out[sl] = '.';
	assert_int_equal(
	    base64url_encode(raw, raw_len, out + sl + 1, base64url_encoded_len(raw_len) + 1), 0);
	free(h);
	free(p);
	free(signing);
	return out;
}

/* A header {"alg": alg, "kid": kid} (kid NULL: none), new reference. */
static inline json_t *jws_header(const char *alg, const char *kid)
{
	json_t *h = json_pack("{s:s}", "alg", alg);
	if (kid)
		json_object_set_new(h, "kid", json_string(kid));
	return h;
}

#endif
