/*
 * random.h: the process's one source of randomness for secrets (API key
 * secrets, nonces, salts). Backed by gnutls_rnd(GNUTLS_RND_KEY).
 */
#ifndef PORTCULLIS_CRYPTO_RANDOM_H
#define PORTCULLIS_CRYPTO_RANDOM_H

#include <stddef.h>

/**
 * Fill buf with n bytes from the CSPRNG at key strength. Never fails: if the
 * generator cannot deliver, the process aborts via fatal() (running on with
 * predictable keys would be worse). n == 0 is a no-op; buf may then be NULL.
 * Thread-safe.
 */
void crypto_random(void *buf, size_t n);

/**
 * Write n characters drawn uniformly from the base62 alphabet
 * "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz" into out
 * (rejection sampling, so no modulo bias; each character carries log2(62) ~
 * 5.95 bits). No NUL terminator is written: out must hold n bytes. Aborts
 * like crypto_random() if the generator fails. Thread-safe.
 */
void crypto_random_base62(char *out, size_t n);

#endif
