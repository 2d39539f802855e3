/*
 * jose.h: JSON Web Keys (RFC 7517, 7518 section 6) as GnuTLS public keys and
 * verification of JWS compact serialisations (RFC 7515) signed RS256
 * (RSASSA-PKCS1-v1_5 SHA-256) or ES256 (ECDSA P-256 SHA-256), as OpenID
 * providers sign ID tokens. Nothing else is accepted: "none", the HMAC
 * algorithms (a provider's public key must never become an HMAC secret),
 * PS*, ES384 and any unknown name are refused before a key is looked at.
 *
 * Keys come only from a key set the caller fetched (the provider's jwks_uri);
 * the jku, jwk, x5u and x5c header members are never used to find one.
 */
#ifndef PORTCULLIS_CRYPTO_JOSE_H
#define PORTCULLIS_CRYPTO_JOSE_H

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>

/** Largest JWK Set document parsed. */
#define JOSE_JWKS_MAX_BYTES (64 * 1024)
/** Most keys kept from one set (keys of other kinds are skipped, not counted). */
#define JOSE_JWKS_MAX_KEYS 32
/** Longest kid kept. */
#define JOSE_KID_MAX 128
/** Longest JWS compact serialisation verified. */
#define JOSE_JWS_MAX_BYTES (16 * 1024)
/** RSA moduli accepted, in bits. */
#define JOSE_RSA_MIN_BITS 2048
#define JOSE_RSA_MAX_BITS 8192

/** Outcomes (0 or negative). */
enum jose_result {
	JOSE_OK = 0,
	JOSE_ERR_FORMAT = -1,    /**< not three base64url parts, a header or payload not a JSON
	                              object, a "crit" header, an oversized input */
	JOSE_ERR_ALG = -2,       /**< alg missing, "none", HS*, or anything but RS256 / ES256 */
	JOSE_ERR_KID = -3,       /**< no key of the set has the header's kid and the alg's type
	                              (or no kid and not exactly one such key) */
	JOSE_ERR_KEY = -4,       /**< a JWK that is not a usable RSA or P-256 public key */
	JOSE_ERR_SIGNATURE = -5, /**< well-formed, the key found, the signature does not verify */
};

/** The two signature algorithms. */
enum jose_alg {
	JOSE_ALG_NONE = 0, /**< not an algorithm: "nothing accepted" */
	JOSE_ALG_RS256 = 1,
	JOSE_ALG_ES256 = 2,
};

/** One public key (opaque; immutable once made, so threads may share it). */
struct jose_key;

/** A parsed key set (opaque; immutable once parsed, so threads may share it). */
struct jose_jwks;

/**
 * The algorithm named by the n bytes at name, or JOSE_ALG_NONE for any other
 * name (case-sensitive, as RFC 7518 says: "rs256" is not RS256).
 */
enum jose_alg jose_alg_from_name(const char *name, size_t n);

/**
 * Import one JWK (a JSON object): kty "RSA" with n and e (base64url, a
 * modulus of JOSE_RSA_MIN_BITS to JOSE_RSA_MAX_BITS) becomes an RS256 key;
 * kty "EC" with crv "P-256" and x, y (base64url, exactly 32 bytes each, a
 * point on the curve) an ES256 key. A member "alg" must then name that
 * algorithm, a member "use" must be "sig", and private members (d, p, q...)
 * are refused: a set that publishes a private key is broken. Returns
 * JOSE_OK with *out (the caller's: jose_key_free), or JOSE_ERR_KEY with
 * *out NULL.
 */
int jose_jwk_import(const json_t *jwk, struct jose_key **out);

/** Free a key. NULL is ignored. */
void jose_key_free(struct jose_key *k);

/** The algorithm a key verifies. */
enum jose_alg jose_key_alg(const struct jose_key *k);

/**
 * Write the key as a PEM SubjectPublicKeyInfo (NUL-terminated) into out
 * (cap bytes); *len gets its length. 0, or -1 when it does not fit. For
 * comparing with keys made by other tools.
 */
int jose_key_export_pem(const struct jose_key *k, char *out, size_t cap, size_t *len);

/**
 * Parse a JWK Set document {"keys": [...]} of len bytes (at most
 * JOSE_JWKS_MAX_BYTES). Keys this module cannot use are skipped: another
 * kty (OKP, oct), another curve, "use": "enc"; a key of a supported kind
 * that does not import (jose_jwk_import) refuses the whole set, as do two
 * keys with the same kid, more than JOSE_JWKS_MAX_KEYS usable keys, and a
 * set with none. Returns JOSE_OK with *out (jose_jwks_free), or a negative
 * jose_result with *out NULL and a reason in err (cap bytes; nothing of the
 * document quoted).
 */
int jose_jwks_parse(const char *doc, size_t len, struct jose_jwks **out, char *err, size_t cap);

/** Free a key set. NULL is ignored. */
void jose_jwks_free(struct jose_jwks *s);

/** Number of usable keys in a set (0 for NULL). */
size_t jose_jwks_count(const struct jose_jwks *s);

/** The verified parts of a JWS (jose_jws_verify's output). */
struct jose_verified {
	json_t *header;  /**< the protected header (owned: json_decref) */
	json_t *payload; /**< the payload, a JSON object (owned: json_decref) */
	enum jose_alg alg;
};

/**
 * Verify the JWS compact serialisation of len bytes at jws against the keys
 * of set: header.payload.signature, each strict unpadded base64url; the
 * header a JSON object without "crit" whose alg is RS256 or ES256; the key
 * the one with the header's kid and the alg's key type (without a kid: the
 * only key of that type); the signature RSASSA-PKCS1-v1_5 as long as the
 * modulus, or ES256's raw r || s of 64 bytes, verified by GnuTLS over the
 * ASCII text "header.payload"; the payload a JSON object. Returns JOSE_OK
 * with *out filled (jose_verified_clear), or a negative jose_result with
 * *out zeroed. The kid the token named (when it named one and it fits
 * JOSE_KID_MAX) is copied into kid (JOSE_KID_MAX + 1 bytes; may be NULL),
 * so a JOSE_ERR_KID can ask for the set again. Thread-safe.
 */
int jose_jws_verify(const char *jws, size_t len, const struct jose_jwks *set,
                    struct jose_verified *out, char kid[JOSE_KID_MAX + 1]);

/** Release what jose_jws_verify filled in. Idempotent. */
void jose_verified_clear(struct jose_verified *v);

#endif
