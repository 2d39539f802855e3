/*
 * hash.h: SHA-256, HMAC-SHA-256 (over GnuTLS), standard base64 with
 * padding for digests and keys, and unpadded base64url for JOSE and PKCE
 * (hex is core/str.h's hex_encode).
 */
#ifndef PORTCULLIS_CRYPTO_HASH_H
#define PORTCULLIS_CRYPTO_HASH_H

#include <stddef.h>
#include <stdint.h>

#include <gnutls/crypto.h>

/** Size in bytes of a SHA-256 digest and of an HMAC-SHA-256 tag. */
#define SHA256_LEN 32

/** Size in bytes of a SHA-1 digest. */
#define SHA1_LEN 20

/**
 * out = SHA-256 of the len bytes at data. data may be NULL when len == 0.
 * Aborts via fatal() if GnuTLS cannot compute it (only on OOM or a broken
 * library). Thread-safe.
 */
void sha256(const void *data, size_t len, uint8_t out[SHA256_LEN]);

/**
 * out = HMAC-SHA-256 with the klen-byte key over the dlen bytes of data.
 * key/data may be NULL when their length is 0. Aborts like sha256() on
 * library failure. Thread-safe.
 */
void hmac_sha256(const void *key, size_t klen, const void *data, size_t dlen,
                 uint8_t out[SHA256_LEN]);

/**
 * out = SHA-1 of the len bytes at data. Not for security: only for names
 * that a protocol defines by SHA-1 (Redis EVALSHA script names). Aborts like
 * sha256().
 */
void sha1(const void *data, size_t len, uint8_t out[SHA1_LEN]);

/**
 * Incremental SHA-256. Every sha256_init() must be followed by exactly one
 * sha256_final() or sha256_discard(), which release the GnuTLS handle.
 */
struct sha256_ctx {
	gnutls_hash_hd_t hd; /**< owned; NULL after final/discard */
};

/** Start a hash. Aborts via fatal() if GnuTLS cannot allocate the handle. */
void sha256_init(struct sha256_ctx *ctx);
/** Feed len bytes (data may be NULL when len == 0). Aborts on library failure. */
void sha256_update(struct sha256_ctx *ctx, const void *data, size_t len);
/** Write the digest to out and release the context. */
void sha256_final(struct sha256_ctx *ctx, uint8_t out[SHA256_LEN]);
/** Release the context without producing a digest (error paths). Idempotent. */
void sha256_discard(struct sha256_ctx *ctx);

/** Length (without NUL) of the base64 encoding of n bytes: 4 * ceil(n / 3). */
size_t base64_encoded_len(size_t n);

/** Upper bound on the bytes decoded from a base64 text of n characters. */
size_t base64_decoded_max(size_t n);

/**
 * Standard base64 (RFC 4648 section 4, "+/" alphabet, "=" padding) of the n
 * bytes at in into out, NUL-terminated. cap is the size of out and must be
 * at least base64_encoded_len(n) + 1. Returns 0, or -1 when cap is too small
 * (out is then untouched). Runs in time independent of the byte values, so
 * it may encode keys.
 */
int base64_encode(const void *in, size_t n, char *out, size_t cap);

/**
 * Decode the n characters at in (need not be NUL-terminated; never read past
 * n) into out, which has cap bytes; *out_len receives the decoded length.
 * Strict: the text must be a whole number of 4-character groups from the
 * standard alphabet, with "=" only as 1 or 2 final padding characters and
 * zero unused bits in the last group (so each byte string has exactly one
 * accepted encoding). No whitespace, no URL-safe alphabet. Returns 0, or -1
 * on any invalid input or when cap < the decoded length; on failure out may
 * hold partial output (it is wiped) and *out_len is 0. The character mapping
 * is branch-free, so it may decode keys.
 */
int base64_decode(const char *in, size_t n, uint8_t *out, size_t cap, size_t *out_len);

/** Length (without NUL) of the unpadded base64url encoding of n bytes. */
size_t base64url_encoded_len(size_t n);

/**
 * base64url (RFC 4648 section 5, "-_" alphabet) without padding, as JOSE
 * (RFC 7515 section 2) and PKCE (RFC 7636) spell it, of the n bytes at in
 * into out, NUL-terminated; cap at least base64url_encoded_len(n) + 1.
 * Returns 0, or -1 when cap is too small. Constant time like base64_encode.
 */
int base64url_encode(const void *in, size_t n, char *out, size_t cap);

/**
 * Decode the n base64url characters at in (no padding, no whitespace, no
 * "+/"; a length of 4k + 1 and nonzero unused bits in the last character are
 * refused, so each byte string has exactly one accepted spelling) into out
 * (cap bytes); *out_len gets the length. Returns 0, or -1 with *out_len 0
 * and out wiped, like base64_decode.
 */
int base64url_decode(const char *in, size_t n, uint8_t *out, size_t cap, size_t *out_len);

#endif
