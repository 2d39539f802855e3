/*
 * secretbox.h: authenticated symmetric encryption of small secrets at rest
 * (e.g. upstream credentials and webhook signing secrets in the store),
 * AES-256-GCM with a random 96-bit nonce, as base64 text.
 *
 * Text format: base64(nonce[12] || ciphertext[n] || tag[16]), standard
 * alphabet with padding. There is no version byte: a future format change
 * must be told apart by the caller (e.g. a column or prefix).
 *
 * Random nonces are safe for up to about 2^32 messages under one key; rotate
 * keys well before that.
 */
#ifndef PORTCULLIS_CRYPTO_SECRETBOX_H
#define PORTCULLIS_CRYPTO_SECRETBOX_H

#include <stddef.h>
#include <stdint.h>

#define SECRETBOX_KEY_LEN   32
#define SECRETBOX_NONCE_LEN 12
#define SECRETBOX_TAG_LEN   16

/**
 * Encrypt the n bytes at pt (pt may be NULL when n == 0) under the 32-byte
 * key. On success *out_b64 receives a NUL-terminated base64 string that the
 * caller owns and frees with free(). Returns 0, or -1 if GnuTLS fails or n
 * is too large (*out_b64 is then NULL). Thread-safe.
 */
int secretbox_seal(const uint8_t key[SECRETBOX_KEY_LEN], const void *pt, size_t n, char **out_b64);

/**
 * Decrypt and authenticate the NUL-terminated base64 text b64 made by
 * secretbox_seal() under the same key. On success *out receives a buffer the
 * caller owns (free() it, after explicit_bzero() if it is secret) holding
 * *out_len plaintext bytes followed by a NUL not counted in *out_len, so a
 * text plaintext can be used as a C string. Returns 0, or -1 on invalid
 * base64, a text too short to hold nonce and tag, or any tampering or wrong
 * key (authentication failure); then *out is NULL and *out_len 0.
 * Thread-safe.
 */
int secretbox_open(const uint8_t key[SECRETBOX_KEY_LEN], const char *b64, uint8_t **out,
                   size_t *out_len);

#endif
