/*
 * pii.h: normalisation and SHA-256 of direct identifiers (INGEST.md, "What
 * happens to each identifier"), so that the same person gives the same hash
 * whatever casing or spacing the app sent, and the plaintext never goes
 * further than this call. The rules, and why, are in docs/ingest.md:
 *
 *   email (and every [ingest] hash_paths value): trim the surrounding ASCII
 *     whitespace (space, \t, \n, \v, \f, \r), lower-case A-Z, SHA-256,
 *     lower-case hex. Bytes outside ASCII are hashed as they are: no Unicode
 *     case folding and no NFC/NFD normalisation, so a decomposed "e\u0301"
 *     and a precomposed "\u00e9" give different hashes (as at Meta).
 *   phone: the ASCII digits only (the '+', spaces, punctuation, letters and
 *     any other byte go), leading zeros dropped (an international "00"
 *     prefix), SHA-256, lower-case hex.
 *
 * Already hashed: a value that, once trimmed, is exactly 64 characters of
 * [0-9a-f] is taken as the hash and never hashed again (the published rule
 * ^[a-f0-9]{64}$). Upper-case or mixed-case hex is not: it is normalised and
 * hashed like any other value (so an app must send digests in lower case).
 *
 * Nothing left after normalisation (only whitespace, a phone without a
 * non-zero digit) is PII_EMPTY: the caller drops the field, never storing
 * the hash of "".
 */
#ifndef PORTCULLIS_INGEST_PII_H
#define PORTCULLIS_INGEST_PII_H

#include <stddef.h>

/** Length of a hash in lower-case hex, without the NUL. */
#define PII_HEX_LEN 64

enum pii_kind {
	PII_EMAIL, /* also [ingest] hash_paths: "hashed like email" */
	PII_PHONE,
};

enum pii_result {
	PII_HASHED = 0, /* out holds the SHA-256 of the normalised value */
	PII_PASSED = 1, /* the value already was a lower-case hex hash: out holds it */
	PII_EMPTY = 2,  /* nothing left after normalisation: drop the field; out is "" */
};

/**
 * Normalise the len bytes at in (need not be NUL-terminated, never read past
 * len; in may be NULL when len == 0) as kind and write the lower-case hex
 * SHA-256, NUL-terminated, to out. The normalised plaintext exists only in a
 * stack buffer that is wiped before returning. Thread-safe, no allocation.
 */
enum pii_result pii_hash(enum pii_kind kind, const char *in, size_t len, char out[PII_HEX_LEN + 1]);

/**
 * The normalised text pii_hash would hash, into out (cap bytes, cap >= 1,
 * NUL-terminated, cut to fit): for tests and the documentation's examples,
 * never for storage. Returns the full normalised length (which may be
 * >= cap: then out was cut). An already-hashed value is returned as it is.
 */
size_t pii_normalize(enum pii_kind kind, const char *in, size_t len, char *out, size_t cap);

#endif
