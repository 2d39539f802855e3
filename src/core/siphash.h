/*
 * siphash.h: keyed hashing for in-memory tables. Keys of those tables come
 * from clients (key ids, addresses, idempotency keys), so bucket placement
 * must not be predictable: SipHash-2-4 with a secret random key.
 */
#ifndef PORTCULLIS_CORE_SIPHASH_H
#define PORTCULLIS_CORE_SIPHASH_H

#include <stddef.h>
#include <stdint.h>

/** SipHash-2-4 of len bytes under the 128-bit key (k0, k1). */
uint64_t siphash24(const void *data, size_t len, uint64_t k0, uint64_t k1);

/** SipHash-2-4 of len bytes under a per-process random key. */
uint64_t mem_hash(const void *data, size_t len);
/** SipHash-2-4 of a NUL-terminated string under the same per-process key. */
uint64_t str_hash(const char *s);

#endif
