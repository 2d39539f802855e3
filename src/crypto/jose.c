/*
 * jose.c: JWK import and JWS verification over GnuTLS (see jose.h).
 *
 * The algorithm comes from the token's header but is only ever one of two,
 * and it must agree with the type of the key found by kid (an RS256 header
 * never reaches an EC key, nor ES256 an RSA key), so the header cannot pick
 * how a key is used. The signature check itself is GnuTLS's: ES256's raw
 * r || s is re-encoded as the DER SEQUENCE GnuTLS verifies
 * (gnutls_encode_rs_value), RS256's PKCS#1 v1.5 block is passed as is.
 */
#include "crypto/jose.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <gnutls/abstract.h>
#include <gnutls/crypto.h>
#include <gnutls/gnutls.h>

#include "core/alloc.h"
#include "crypto/hash.h"

struct jose_key {
	enum jose_alg alg;
	gnutls_pubkey_t pub;
	unsigned bits;
	bool has_kid;
	char kid[JOSE_KID_MAX + 1];
};

struct jose_jwks {
	size_t n;
	struct jose_key *keys[JOSE_JWKS_MAX_KEYS];
};

enum jose_alg jose_alg_from_name(const char *name, size_t n)
{
	if (n == 5 && memcmp(name, "RS256", 5) == 0)
		return JOSE_ALG_RS256;
	if (n == 5 && memcmp(name, "ES256", 5) == 0)
		return JOSE_ALG_ES256;
	return JOSE_ALG_NONE;
}

/* Decode the base64url string member name of obj into out (cap bytes). 0 or -1. */
static int member_b64(const json_t *obj, const char *name, uint8_t *out, size_t cap, size_t *len)
{
	const json_t *v = json_object_get(obj, name);

	*len = 0;
	if (!json_is_string(v) || json_string_length(v) == 0)
		return -1;
	return base64url_decode(json_string_value(v), json_string_length(v), out, cap, len);
}

static bool has_private_member(const json_t *jwk)
{
	static const char *const priv[] = {"d", "p", "q", "dp", "dq", "qi", "oth", "k"};

	for (size_t i = 0; i < sizeof(priv) / sizeof(priv[0]); i++)
		if (json_object_get(jwk, priv[i]))
			return true;
	return false;
}

static bool str_member_is(const json_t *obj, const char *name, const char *want)
{
	const json_t *v = json_object_get(obj, name);
	return json_is_string(v) && strcmp(json_string_value(v), want) == 0 &&
	       strlen(want) == json_string_length(v);
}

static int import_rsa(const json_t *jwk, gnutls_pubkey_t pub, unsigned *bits)
{
	uint8_t n[JOSE_RSA_MAX_BITS / 8 + 1];
	uint8_t e[8];
	size_t nl, el;
	gnutls_datum_t dn, de;

	if (member_b64(jwk, "n", n, sizeof(n), &nl) != 0 ||
	    member_b64(jwk, "e", e, sizeof(e), &el) != 0)
		return -1;
	if ((e[el - 1] & 1) == 0 || (el == 1 && e[0] < 3))
		return -1; /* an even or trivial exponent is no RSA key */
	dn.data = n;
	dn.size = (unsigned)nl;
	de.data = e;
	de.size = (unsigned)el;
	if (gnutls_pubkey_import_rsa_raw(pub, &dn, &de) != 0)
		return -1;
	if (gnutls_pubkey_get_pk_algorithm(pub, bits) != GNUTLS_PK_RSA ||
	    *bits < JOSE_RSA_MIN_BITS || *bits > JOSE_RSA_MAX_BITS)
		return -1;
	return 0;
}

static int import_p256(const json_t *jwk, gnutls_pubkey_t pub, unsigned *bits)
{
	uint8_t x[33], y[33];
	size_t xl, yl;
	gnutls_datum_t dx, dy;

	if (!str_member_is(jwk, "crv", "P-256"))
		return -1;
	if (member_b64(jwk, "x", x, sizeof(x), &xl) != 0 ||
	    member_b64(jwk, "y", y, sizeof(y), &yl) != 0 || xl != 32 || yl != 32)
		return -1;
	dx.data = x;
	dx.size = 32;
	dy.data = y;
	dy.size = 32;
	if (gnutls_pubkey_import_ecc_raw(pub, GNUTLS_ECC_CURVE_SECP256R1, &dx, &dy) != 0)
		return -1;
	/* A point off the curve (invalid-curve attacks) is refused here, not at verify time. */
	if (gnutls_pubkey_verify_params(pub) != 0)
		return -1;
	if (gnutls_pubkey_get_pk_algorithm(pub, bits) != GNUTLS_PK_ECDSA)
		return -1;
	return 0;
}

int jose_jwk_import(const json_t *jwk, struct jose_key **out)
{
	struct jose_key *k = NULL;
	const json_t *kty = json_object_get(jwk, "kty");
	const json_t *alg = json_object_get(jwk, "alg");
	const json_t *use = json_object_get(jwk, "use");
	const json_t *kid = json_object_get(jwk, "kid");
	enum jose_alg want;
	int rc = JOSE_ERR_KEY;

	*out = NULL;
	if (!json_is_object(jwk) || !json_is_string(kty) || has_private_member(jwk))
		return JOSE_ERR_KEY;
	if (str_member_is(jwk, "kty", "RSA"))
		want = JOSE_ALG_RS256;
	else if (str_member_is(jwk, "kty", "EC"))
		want = JOSE_ALG_ES256;
	else
		return JOSE_ERR_KEY;
	if (alg && (!json_is_string(alg) ||
	            jose_alg_from_name(json_string_value(alg), json_string_length(alg)) != want))
		return JOSE_ERR_KEY;
	if (use && !str_member_is(jwk, "use", "sig"))
		return JOSE_ERR_KEY;
	if (kid && (!json_is_string(kid) || json_string_length(kid) == 0 ||
	            json_string_length(kid) > JOSE_KID_MAX ||
	            strlen(json_string_value(kid)) != json_string_length(kid)))
		return JOSE_ERR_KEY;

	k = xcalloc(1, sizeof(*k));
	k->alg = want;
	if (gnutls_pubkey_init(&k->pub) != 0) {
		k->pub = NULL;
		goto out;
	}
	if ((want == JOSE_ALG_RS256 ? import_rsa(jwk, k->pub, &k->bits)
	                            : import_p256(jwk, k->pub, &k->bits)) != 0)
		goto out;
	if (kid) {
		k->has_kid = true;
		memcpy(k->kid, json_string_value(kid), json_string_length(kid) + 1);
	}
	*out = k;
	k = NULL;
	rc = JOSE_OK;
out:
	jose_key_free(k);
	return rc;
}

void jose_key_free(struct jose_key *k)
{
	if (!k)
		return;
	if (k->pub)
		gnutls_pubkey_deinit(k->pub);
	free(k);
}

enum jose_alg jose_key_alg(const struct jose_key *k)
{
	return k->alg;
}

int jose_key_export_pem(const struct jose_key *k, char *out, size_t cap, size_t *len)
{
	size_t n;

	if (cap < 2)
		return -1;
	n = cap - 1;
	if (gnutls_pubkey_export(k->pub, GNUTLS_X509_FMT_PEM, out, &n) != 0 || n >= cap)
		return -1;
	out[n] = '\0';
	*len = n;
	return 0;
}

/* Whether a key set member is of a kind this module verifies (else it is skipped). */
static bool usable_kind(const json_t *jwk)
{
	const json_t *alg = json_object_get(jwk, "alg");
	const json_t *use = json_object_get(jwk, "use");

	if (json_is_string(use) && !str_member_is(jwk, "use", "sig"))
		return false; /* an encryption key */
	if (json_is_string(alg) &&
	    jose_alg_from_name(json_string_value(alg), json_string_length(alg)) == JOSE_ALG_NONE)
		return false; /* RS384, PS256, RSA-OAEP...: not ours */
	if (str_member_is(jwk, "kty", "RSA"))
		return true;
	if (str_member_is(jwk, "kty", "EC")) {
		const json_t *crv = json_object_get(jwk, "crv");
		return !json_is_string(crv) || str_member_is(jwk, "crv", "P-256");
	}
	return false;
}

int jose_jwks_parse(const char *doc, size_t len, struct jose_jwks **out, char *err, size_t cap)
{
	json_error_t je;
	json_t *root = NULL;
	json_t *keys;
	json_t *jwk;
	struct jose_jwks *s = NULL;
	size_t i;
	int rc = JOSE_ERR_FORMAT;

	*out = NULL;
	if (len > JOSE_JWKS_MAX_BYTES) {
		snprintf(err, cap, "key set larger than %d bytes", JOSE_JWKS_MAX_BYTES);
		goto out;
	}
	root = json_loadb(doc, len, JSON_REJECT_DUPLICATES, &je);
	keys = json_object_get(root, "keys");
	if (!json_is_array(keys)) {
		snprintf(err, cap, "not a JWK set (no \"keys\" array)");
		goto out;
	}
	s = xcalloc(1, sizeof(*s));
	json_array_foreach(keys, i, jwk)
	{
		struct jose_key *k;

		if (!json_is_object(jwk)) {
			snprintf(err, cap, "key %zu is not an object", i);
			goto out;
		}
		if (!usable_kind(jwk))
			continue;
		if (s->n == JOSE_JWKS_MAX_KEYS) {
			snprintf(err, cap, "more than %d usable keys", JOSE_JWKS_MAX_KEYS);
			goto out;
		}
		rc = jose_jwk_import(jwk, &k);
		if (rc != JOSE_OK) {
			snprintf(err, cap, "key %zu is not a usable RSA or P-256 public key", i);
			goto out;
		}
		for (size_t j = 0; j < s->n; j++)
			if (k->has_kid && s->keys[j]->has_kid && s->keys[j]->alg == k->alg &&
			    strcmp(s->keys[j]->kid, k->kid) == 0) {
				jose_key_free(k);
				snprintf(err, cap, "key %zu repeats a kid", i);
				rc = JOSE_ERR_KEY;
				goto out;
			}
		s->keys[s->n++] = k;
	}
	if (s->n == 0) {
		snprintf(err, cap, "no RS256 or ES256 signing key in the set");
		rc = JOSE_ERR_KEY;
		goto out;
	}
	*out = s;
	s = NULL;
	rc = JOSE_OK;
out:
	if (rc == JOSE_OK && cap)
		err[0] = '\0';
	jose_jwks_free(s);
	json_decref(root);
	return rc;
}

void jose_jwks_free(struct jose_jwks *s)
{
	if (!s)
		return;
	for (size_t i = 0; i < s->n; i++)
		jose_key_free(s->keys[i]);
	free(s);
}

size_t jose_jwks_count(const struct jose_jwks *s)
{
	return s ? s->n : 0;
}

/* Decode a base64url part into a JSON object. NULL when it is not one. */
static json_t *part_json(const char *p, size_t n)
{
	size_t cap = base64_decoded_max(n);
	uint8_t *raw = xmalloc(cap ? cap : 1);
	size_t len;
	json_t *v = NULL;
	json_error_t je;

	if (base64url_decode(p, n, raw, cap, &len) == 0)
		v = json_loadb((const char *)raw, len, JSON_REJECT_DUPLICATES, &je);
	free(raw);
	if (v && !json_is_object(v)) {
		json_decref(v);
		v = NULL;
	}
	return v;
}

/* The key of set for alg and kid (kid NULL: the one key of alg's type). */
static const struct jose_key *find_key(const struct jose_jwks *set, enum jose_alg alg,
                                       const char *kid)
{
	const struct jose_key *found = NULL;
	size_t count = 0;

	for (size_t i = 0; set && i < set->n; i++) {
		const struct jose_key *k = set->keys[i];
		if (k->alg != alg)
			continue;
		if (kid) {
			if (k->has_kid && strcmp(k->kid, kid) == 0)
				return k;
			continue;
		}
		found = k;
		count++;
	}
	return count == 1 ? found : NULL;
}

static int check_signature(const struct jose_key *k, const char *signed_part, size_t signed_len,
                           const char *sig_b64, size_t sig_len)
{
	uint8_t raw[JOSE_RSA_MAX_BITS / 8 + 1];
	size_t raw_len;
	gnutls_datum_t msg = {(unsigned char *)(uintptr_t)signed_part, (unsigned)signed_len};
	gnutls_datum_t sig = {raw, 0};
	gnutls_datum_t der = {NULL, 0};
	int rc = JOSE_ERR_SIGNATURE;

	if (base64url_decode(sig_b64, sig_len, raw, sizeof(raw), &raw_len) != 0)
		return JOSE_ERR_FORMAT;
	if (k->alg == JOSE_ALG_RS256) {
		if (raw_len != (k->bits + 7) / 8)
			return JOSE_ERR_SIGNATURE;
		sig.size = (unsigned)raw_len;
		if (gnutls_pubkey_verify_data2(k->pub, GNUTLS_SIGN_RSA_SHA256, 0, &msg, &sig) >= 0)
			rc = JOSE_OK;
		return rc;
	}
	if (raw_len != 64)
		return JOSE_ERR_SIGNATURE;
	{
		gnutls_datum_t r = {raw, 32};
		gnutls_datum_t s = {raw + 32, 32};
		if (gnutls_encode_rs_value(&der, &r, &s) != 0)
			return JOSE_ERR_SIGNATURE;
	}
	if (gnutls_pubkey_verify_data2(k->pub, GNUTLS_SIGN_ECDSA_SECP256R1_SHA256, 0, &msg, &der) >=
	    0)
		rc = JOSE_OK;
	gnutls_free(der.data);
	return rc;
}

int jose_jws_verify(const char *jws, size_t len, const struct jose_jwks *set,
                    struct jose_verified *out, char kid_out[JOSE_KID_MAX + 1])
{
	const char *dot1, *dot2;
	json_t *header = NULL;
	json_t *payload = NULL;
	const json_t *alg_v, *kid_v;
	const char *kid = NULL;
	const struct jose_key *k;
	enum jose_alg alg;
	int rc = JOSE_ERR_FORMAT;

	memset(out, 0, sizeof(*out));
	if (kid_out)
		kid_out[0] = '\0';
	if (!jws || len == 0 || len > JOSE_JWS_MAX_BYTES)
		return JOSE_ERR_FORMAT;
	dot1 = memchr(jws, '.', len);
	dot2 = dot1 ? memchr(dot1 + 1, '.', len - (size_t)(dot1 + 1 - jws)) : NULL;
	if (!dot2 || dot1 == jws || dot2 == dot1 + 1 ||
	    memchr(dot2 + 1, '.', len - (size_t)(dot2 + 1 - jws)))
		return JOSE_ERR_FORMAT;

	header = part_json(jws, (size_t)(dot1 - jws));
	if (!header || json_object_get(header, "crit"))
		goto out;
	alg_v = json_object_get(header, "alg");
	if (!json_is_string(alg_v)) {
		rc = JOSE_ERR_ALG;
		goto out;
	}
	alg = jose_alg_from_name(json_string_value(alg_v), json_string_length(alg_v));
	if (alg == JOSE_ALG_NONE) {
		rc = JOSE_ERR_ALG;
		goto out;
	}
	kid_v = json_object_get(header, "kid");
	if (kid_v) {
		if (!json_is_string(kid_v) ||
		    strlen(json_string_value(kid_v)) != json_string_length(kid_v))
			goto out;
		kid = json_string_value(kid_v);
		if (kid_out && json_string_length(kid_v) <= JOSE_KID_MAX)
			memcpy(kid_out, kid, json_string_length(kid_v) + 1);
	}
	k = find_key(set, alg, kid);
	if (!k) {
		rc = JOSE_ERR_KID;
		goto out;
	}
	if (dot2 + 1 == jws + len) {
		rc = JOSE_ERR_SIGNATURE; /* an empty signature is "none" in disguise */
		goto out;
	}
	rc =
	    check_signature(k, jws, (size_t)(dot2 - jws), dot2 + 1, len - (size_t)(dot2 + 1 - jws));
	if (rc != JOSE_OK)
		goto out;
	payload = part_json(dot1 + 1, (size_t)(dot2 - dot1 - 1));
	if (!payload) {
		rc = JOSE_ERR_FORMAT;
		goto out;
	}
	out->header = header;
	out->payload = payload;
	out->alg = alg;
	header = NULL;
	rc = JOSE_OK;
out:
	json_decref(header);
	return rc;
}

void jose_verified_clear(struct jose_verified *v)
{
	json_decref(v->header);
	json_decref(v->payload);
	memset(v, 0, sizeof(*v));
}
