/*
 * sign.h: Standard Webhooks 1.0 signatures for outbound deliveries.
 *
 * An endpoint secret is "whsec_" + base64 of its key bytes; the HMAC key is
 * the decoded part. A delivery carries one "v1,<base64 HMAC-SHA256>" entry
 * per active secret (two while a rotated secret is in its grace period),
 * space-separated, over the signed content "<msg id>.<timestamp>.<body>".
 * Receivers verify with the standardwebhooks libraries (docs/webhooks.md).
 */
#ifndef PORTCULLIS_DELIVERY_SIGN_H
#define PORTCULLIS_DELIVERY_SIGN_H

#include <stddef.h>
#include <stdint.h>

/** Longest secret text this module makes or accepts (without the NUL). */
#define WH_SECRET_MAX 64
/** Length of one "v1,<base64 of 32 bytes>" signature (without the NUL). */
#define WH_SIGNATURE_LEN 47
/** Most secrets (signatures) in one webhook-signature header. */
#define WH_SIGNATURES_MAX 4
/** Longest message id accepted (ours are msg_<ULID>, 30 bytes). */
#define WH_MSG_ID_MAX 256

/**
 * Write a new secret, "whsec_" + base64(32 bytes from crypto_random), and a
 * NUL into out (50 characters). The random bytes are wiped. Never fails.
 */
void wh_secret_new(char out[WH_SECRET_MAX + 1]);

/**
 * Write "v1,<base64 HMAC-SHA256(key, "<msg_id>.<ts>.<body>")>" and a NUL into
 * out (cap bytes; at least WH_SIGNATURE_LEN + 1), where key is the base64
 * decoding of the secret after its "whsec_" prefix. body may be NULL when len
 * is 0. Returns 0, or -1 with out set to "" (when cap > 0) for a bad secret (no "whsec_"
 * prefix, longer than WH_SECRET_MAX, not strict base64, or fewer than 24
 * key bytes), an empty or over-long (WH_MSG_ID_MAX) msg_id, a
 * negative ts, or a too-small cap. The decoded key is wiped.
 */
int wh_sign(const char *secret, const char *msg_id, int64_t ts, const char *body, size_t len,
            char *out, size_t cap);

/**
 * The webhook-signature header value: wh_sign for each of the n secrets (1 ..
 * WH_SIGNATURES_MAX), in order, separated by one space, NUL-terminated in out
 * (cap bytes; n * (WH_SIGNATURE_LEN + 1) is always enough). The signed content
 * is built once. Returns 0, or -1 with out set to "" (when cap > 0) when n is out of range,
 * any secret is bad (no partial header is ever produced) or cap is too small.
 */
int wh_signature_header(const char *const *secrets, int n, const char *msg_id, int64_t ts,
                        const char *body, size_t len, char *out, size_t cap);

#endif
