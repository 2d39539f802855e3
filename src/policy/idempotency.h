/*
 * idempotency.h: the pure parts of Idempotency-Key handling (docs/contract.md
 * "Idempotency"): validating the client's key, fingerprinting a request and
 * naming its record in the shared-state tier (kv.h). The claim / replay
 * flow itself runs in the gateway over kv_idem_claim and friends.
 */
#ifndef PORTCULLIS_POLICY_IDEMPOTENCY_H
#define PORTCULLIS_POLICY_IDEMPOTENCY_H

#include <stdbool.h>
#include <stddef.h>

/** Longest Idempotency-Key value accepted. */
#define IDEM_KEY_MAX 255

/** Longest org or key id accepted by idem_storage_key. */
#define IDEM_ID_MAX 64

/** Buffer size that always holds an idem_storage_key result. */
#define IDEM_STORAGE_KEY_MAX (5 + IDEM_ID_MAX + 1 + IDEM_ID_MAX + 1 + 64 + 1)

/**
 * True when the len bytes at s are a valid Idempotency-Key: 1 to
 * IDEM_KEY_MAX visible ASCII characters (0x21-0x7e). s need not be
 * NUL-terminated; s may be NULL only when len is 0 (then false).
 */
bool idem_key_valid(const char *s, size_t len);

/**
 * The request fingerprint: lower-case hex SHA-256 over method, a NUL byte,
 * path, a NUL byte and the 32-byte SHA-256 of the body. method and path are
 * NUL-terminated (path is the request target as the gateway routes it);
 * body may be NULL when body_len is 0. out receives 64 hex digits and a NUL.
 * Aborts (fatal) only if GnuTLS cannot hash, which means out of memory.
 */
void idem_fingerprint(const char *method, const char *path, const void *body, size_t body_len,
                      char out[65]);

/**
 * The kv key of an idempotency record: "idem:<org_id>:<key_id>:<hex
 * SHA-256 of idem_key>", so the client's bytes never reach a kv key.
 * org_id and key_id must be 1 to IDEM_ID_MAX characters of [0-9A-Za-z_-]
 * (they are our own ids); idem_key must pass idem_key_valid. Writes a
 * NUL-terminated key into out (cap bytes; IDEM_STORAGE_KEY_MAX is always
 * enough). Returns 0, or -1 for a bad id or key or a too small buffer (out
 * is then "" if cap > 0).
 */
int idem_storage_key(const char *org_id, const char *key_id, const char *idem_key, char *out,
                     size_t cap);

#endif
