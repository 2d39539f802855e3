/*
 * test_ecdsa.c: unit tests for src/crypto/ecdsa: GitHub's published secret
 * scanning example (tests/vectors/github-secret-scanning.json: payload, key
 * and signature from GitHub's partner documentation), a signature made here
 * by a freshly generated P-256 key, and every refusal: tampered payload,
 * wrong key, a key on another curve or of another type, malformed base64 and
 * malformed DER, over-long input.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <gnutls/abstract.h>
#include <gnutls/gnutls.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "crypto/ecdsa.h"
#include "crypto/hash.h"

#include "vectors.h"

/* A generated key pair: the public half as PEM, the private to sign with. */
struct pair {
	gnutls_privkey_t priv;
	char pem[1024];
	size_t pem_len;
};

static void pair_make(struct pair *p, gnutls_pk_algorithm_t algo, unsigned bits)
{
	gnutls_pubkey_t pub;
	size_t n = sizeof(p->pem) - 1;

	assert_int_equal(gnutls_privkey_init(&p->priv), 0);
	assert_int_equal(gnutls_privkey_generate(p->priv, algo, bits, 0), 0);
	assert_int_equal(gnutls_pubkey_init(&pub), 0);
	assert_int_equal(gnutls_pubkey_import_privkey(pub, p->priv, 0, 0), 0);
	assert_int_equal(gnutls_pubkey_export(pub, GNUTLS_X509_FMT_PEM, p->pem, &n), 0);
	p->pem[n] = '\0';
	p->pem_len = n;
	gnutls_pubkey_deinit(pub);
}

/* base64 of the DER signature of msg by p, SHA-256, into out (cap bytes). */
static void pair_sign(const struct pair *p, const char *msg, char *out, size_t cap)
{
	gnutls_datum_t d = {(unsigned char *)(uintptr_t)msg, (unsigned)strlen(msg)};
	gnutls_datum_t sig = {NULL, 0};

	assert_int_equal(gnutls_privkey_sign_data(p->priv, GNUTLS_DIG_SHA256, 0, &d, &sig), 0);
	assert_int_equal(base64_encode(sig.data, sig.size, out, cap), 0);
	gnutls_free(sig.data);
}

static json_t *load_vectors(void)
{
	return vectors_load("github-secret-scanning.json");
}

/* The PEM published for key_identifier id in the vectors' key set. */
static const char *published_key(json_t *root, const char *id)
{
	json_t *keys = json_object_get(json_object_get(root, "public_keys"), "public_keys");
	json_t *k;
	size_t i;

	json_array_foreach(keys, i, k)
	{
		if (strcmp(json_string_value(json_object_get(k, "key_identifier")), id) == 0)
			return json_string_value(json_object_get(k, "key"));
	}
	fail_msg("no published key %s", id);
	return NULL;
}

static void test_githubs_published_example(void **state)
{
	json_t *root = load_vectors();
	json_t *vectors = json_object_get(root, "vectors");
	json_t *v;
	size_t i;
	(void)state;

	assert_true(json_array_size(vectors) >= 1);
	json_array_foreach(vectors, i, v)
	{
		const char *id = json_string_value(json_object_get(v, "key_identifier"));
		const char *body = json_string_value(json_object_get(v, "payload"));
		const char *sig = json_string_value(json_object_get(v, "signature"));
		const char *pem = published_key(root, id);
		char *tampered = strdup(body);

		assert_int_equal(ecdsa_p256_key_check(pem, strlen(pem)), ECDSA_OK);
		assert_int_equal(
		    ecdsa_p256_verify(pem, strlen(pem), body, strlen(body), sig, strlen(sig)),
		    ECDSA_OK);
		/* One byte of the body changed, or one byte more or less. */
		tampered[2] ^= 1;
		assert_int_equal(ecdsa_p256_verify(pem, strlen(pem), tampered, strlen(tampered),
		                                   sig, strlen(sig)),
		                 ECDSA_ERR_SIGNATURE);
		assert_int_equal(
		    ecdsa_p256_verify(pem, strlen(pem), body, strlen(body) - 1, sig, strlen(sig)),
		    ECDSA_ERR_SIGNATURE);
		free(tampered);
	}
	json_decref(root);
}

static void test_generated_key_signs_and_others_refuse(void **state)
{
	struct pair a;
	struct pair b;
	const char *msg = "[{\"token\":\"pc_live_x\",\"type\":\"portcullis_api_key\"}]";
	char sig[ECDSA_SIG_B64_MAX + 1];
	(void)state;

	pair_make(&a, GNUTLS_PK_ECDSA, GNUTLS_CURVE_TO_BITS(GNUTLS_ECC_CURVE_SECP256R1));
	pair_make(&b, GNUTLS_PK_ECDSA, GNUTLS_CURVE_TO_BITS(GNUTLS_ECC_CURVE_SECP256R1));
	pair_sign(&a, msg, sig, sizeof(sig));
	assert_int_equal(ecdsa_p256_verify(a.pem, a.pem_len, msg, strlen(msg), sig, strlen(sig)),
	                 ECDSA_OK);
	/* The wrong key. */
	assert_int_equal(ecdsa_p256_verify(b.pem, b.pem_len, msg, strlen(msg), sig, strlen(sig)),
	                 ECDSA_ERR_SIGNATURE);
	/* The right key, another message. */
	assert_int_equal(ecdsa_p256_verify(a.pem, a.pem_len, "[]", 2, sig, strlen(sig)),
	                 ECDSA_ERR_SIGNATURE);
	/* The empty message is signable and verifiable too. */
	pair_sign(&a, "", sig, sizeof(sig));
	assert_int_equal(ecdsa_p256_verify(a.pem, a.pem_len, NULL, 0, sig, strlen(sig)), ECDSA_OK);
	gnutls_privkey_deinit(a.priv);
	gnutls_privkey_deinit(b.priv);
}

static void test_other_curves_and_types_are_not_keys(void **state)
{
	struct pair p256;
	struct pair p384;
	struct pair ed;
	const char *msg = "[]";
	char sig[256];
	(void)state;

	/* A P-384 key is refused as a key, even beside a well-formed P-256 signature
	 * (its own signatures are longer than any P-256 one, refused as encoding). */
	pair_make(&p256, GNUTLS_PK_ECDSA, GNUTLS_CURVE_TO_BITS(GNUTLS_ECC_CURVE_SECP256R1));
	pair_sign(&p256, msg, sig, sizeof(sig));
	pair_make(&p384, GNUTLS_PK_ECDSA, GNUTLS_CURVE_TO_BITS(GNUTLS_ECC_CURVE_SECP384R1));
	assert_int_equal(ecdsa_p256_key_check(p384.pem, p384.pem_len), ECDSA_ERR_KEY);
	assert_int_equal(
	    ecdsa_p256_verify(p384.pem, p384.pem_len, msg, strlen(msg), sig, strlen(sig)),
	    ECDSA_ERR_KEY);
	pair_sign(&p384, msg, sig, sizeof(sig));
	assert_int_not_equal(
	    ecdsa_p256_verify(p384.pem, p384.pem_len, msg, strlen(msg), sig, strlen(sig)),
	    ECDSA_OK);
	pair_make(&ed, GNUTLS_PK_EDDSA_ED25519, 256);
	assert_int_equal(ecdsa_p256_key_check(ed.pem, ed.pem_len), ECDSA_ERR_KEY);
	assert_int_equal(ecdsa_p256_key_check("", 0), ECDSA_ERR_KEY);
	assert_int_equal(ecdsa_p256_key_check(NULL, 0), ECDSA_ERR_KEY);
	assert_int_equal(ecdsa_p256_key_check("-----BEGIN PUBLIC KEY-----\nAAAA\n"
	                                      "-----END PUBLIC KEY-----\n",
	                                      56),
	                 ECDSA_ERR_KEY);
	gnutls_privkey_deinit(p256.priv);
	gnutls_privkey_deinit(p384.priv);
	gnutls_privkey_deinit(ed.priv);
}

static void test_malformed_signatures_are_refused(void **state)
{
	json_t *root = load_vectors();
	json_t *v = json_array_get(json_object_get(root, "vectors"), 0);
	const char *id = json_string_value(json_object_get(v, "key_identifier"));
	const char *body = json_string_value(json_object_get(v, "payload"));
	const char *good = json_string_value(json_object_get(v, "signature"));
	const char *pem = published_key(root, id);
	size_t pl = strlen(pem);
	size_t bl = strlen(body);
	uint8_t der[80];
	size_t der_len = 0;
	char b64[200];
	char text[200];
	(void)state;

	/* Not base64: bad characters, missing padding, URL-safe alphabet, whitespace. */
	assert_int_equal(ecdsa_p256_verify(pem, pl, body, bl, "fakesignature", 13),
	                 ECDSA_ERR_ENCODING);
	assert_int_equal(ecdsa_p256_verify(pem, pl, body, bl, good, strlen(good) - 2),
	                 ECDSA_ERR_ENCODING);
	snprintf(text, sizeof(text), " %s", good);
	assert_int_equal(ecdsa_p256_verify(pem, pl, body, bl, text, strlen(text)),
	                 ECDSA_ERR_ENCODING);
	snprintf(text, sizeof(text), "%s", good);
	for (char *c = text; *c; c++)
		if (*c == '/')
			*c = '_';
	assert_int_equal(ecdsa_p256_verify(pem, pl, body, bl, text, strlen(text)),
	                 ECDSA_ERR_ENCODING);
	assert_int_equal(ecdsa_p256_verify(pem, pl, body, bl, "", 0), ECDSA_ERR_ENCODING);
	assert_int_equal(ecdsa_p256_verify(pem, pl, body, bl, NULL, 0), ECDSA_ERR_ENCODING);

	/* Longer than any DER P-256 signature. */
	memset(text, 'A', 100);
	assert_int_equal(ecdsa_p256_verify(pem, pl, body, bl, text, 100), ECDSA_ERR_ENCODING);

	/* Valid base64, malformed DER: wrong outer tag, truncated, trailing byte,
	 * a length that lies, raw r||s instead of DER. */
	assert_int_equal(base64_decode(good, strlen(good), der, sizeof(der), &der_len), 0);
	der[0] = 0x31;
	assert_int_equal(base64_encode(der, der_len, b64, sizeof(b64)), 0);
	assert_int_equal(ecdsa_p256_verify(pem, pl, body, bl, b64, strlen(b64)),
	                 ECDSA_ERR_ENCODING);
	der[0] = 0x30;
	assert_int_equal(base64_encode(der, der_len - 1, b64, sizeof(b64)), 0);
	assert_int_not_equal(ecdsa_p256_verify(pem, pl, body, bl, b64, strlen(b64)), ECDSA_OK);
	der[der_len] = 0;
	assert_int_equal(base64_encode(der, der_len + 1, b64, sizeof(b64)), 0);
	assert_int_not_equal(ecdsa_p256_verify(pem, pl, body, bl, b64, strlen(b64)), ECDSA_OK);
	der[1] = (uint8_t)(der[1] + 5);
	assert_int_equal(base64_encode(der, der_len, b64, sizeof(b64)), 0);
	assert_int_not_equal(ecdsa_p256_verify(pem, pl, body, bl, b64, strlen(b64)), ECDSA_OK);
	der[1] = (uint8_t)(der[1] - 5);
	memset(der, 0x30, 64);
	assert_int_equal(base64_encode(der, 64, b64, sizeof(b64)), 0);
	assert_int_not_equal(ecdsa_p256_verify(pem, pl, body, bl, b64, strlen(b64)), ECDSA_OK);

	/* A bad key with a good signature. */
	assert_int_equal(ecdsa_p256_verify("not a key", 9, body, bl, good, strlen(good)),
	                 ECDSA_ERR_KEY);
	json_decref(root);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_githubs_published_example),
	    cmocka_unit_test(test_generated_key_signs_and_others_refuse),
	    cmocka_unit_test(test_other_curves_and_types_are_not_keys),
	    cmocka_unit_test(test_malformed_signatures_are_refused),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
