/*
 * hmac.h: an HMAC-SHA-256 key scheduled once, for MACs on the hot path
 * (the key cache's verified-secret MAC). One-shot HMACs under a key used
 * once are hash.h's hmac_sha256().
 *
 * The key schedule (two SHA-256 compressions) is done at creation; each
 * hmac_key_mac() starts from a stack copy of the keyed state, so a MAC of a
 * short message costs two compressions and no allocation or lock. The state
 * is nettle's (GnuTLS's own backend); it lives in hmac.c only, because
 * nettle's sha256_* names collide with hash.h's.
 */
#ifndef PORTCULLIS_CRYPTO_HMAC_H
#define PORTCULLIS_CRYPTO_HMAC_H

#include <stddef.h>
#include <stdint.h>

/** A scheduled HMAC-SHA-256 key (opaque; holds key material). */
struct hmac_key;

/**
 * Schedule the klen-byte key (key may be NULL when klen is 0). The caller
 * keeps and may wipe key afterwards. Aborts on OOM; never NULL.
 */
struct hmac_key *hmac_key_create(const void *key, size_t klen);

/**
 * out = HMAC-SHA-256 under k over the len bytes at data (NULL when len is 0).
 * k is only read, so threads may share it without a lock. No allocation;
 * the stack copy that held data is wiped before returning (data may be a
 * secret).
 */
void hmac_key_mac(const struct hmac_key *k, const void *data, size_t len, uint8_t out[32]);

/** Wipe and free the key. NULL is ignored. */
void hmac_key_destroy(struct hmac_key *k);

#endif
