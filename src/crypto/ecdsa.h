/*
 * ecdsa.h: verification of ECDSA P-256 SHA-256 signatures (over GnuTLS), as
 * GitHub's secret scanning partner programme signs its reports: the
 * signature is base64 of the DER SEQUENCE {r, s} over the raw bytes, the
 * public key a PEM "PUBLIC KEY" (SubjectPublicKeyInfo).
 */
#ifndef PORTCULLIS_CRYPTO_ECDSA_H
#define PORTCULLIS_CRYPTO_ECDSA_H

#include <stddef.h>

/** Longest PEM public key accepted (a P-256 SPKI in PEM is about 180 bytes). */
#define ECDSA_PEM_MAX 4096

/** Longest base64 signature accepted: a DER P-256 signature is at most 72 bytes. */
#define ECDSA_SIG_B64_MAX 96

/** Outcomes of ecdsa_p256_verify (0 or negative, never 1-is-success). */
enum ecdsa_result {
	ECDSA_OK = 0,             /**< the signature is the key's over the data */
	ECDSA_ERR_KEY = -1,       /**< the PEM is not a P-256 public key */
	ECDSA_ERR_ENCODING = -2,  /**< the signature is not strict base64 of a bounded DER */
	ECDSA_ERR_SIGNATURE = -3, /**< well-formed input, but the signature does not verify */
};

/**
 * Check that the pem_len bytes at pem (need not be NUL-terminated) hold a
 * PEM SubjectPublicKeyInfo of an ECDSA key on P-256. Returns ECDSA_OK or
 * ECDSA_ERR_KEY. Thread-safe; used to refuse a key set before storing it.
 */
int ecdsa_p256_key_check(const char *pem, size_t pem_len);

/**
 * Verify the base64 (standard alphabet, padded, strict: see base64_decode)
 * DER ECDSA signature of sig_len characters at sig_b64 over the len bytes at
 * data with the P-256 public key in PEM at pem (pem_len bytes), hashing with
 * SHA-256. Nothing is retained. Returns an enum ecdsa_result; any failure
 * means "not verified". Thread-safe.
 */
int ecdsa_p256_verify(const char *pem, size_t pem_len, const void *data, size_t len,
                      const char *sig_b64, size_t sig_len);

#endif
