/*
 * bcrypt.h: bcrypt ("$2b$") password hashing over libxcrypt, used to store
 * API key secrets. Only "$2b$" hashes are produced or accepted.
 */
#ifndef PORTCULLIS_CRYPTO_BCRYPT_H
#define PORTCULLIS_CRYPTO_BCRYPT_H

#include <stddef.h>

/** Lowest and highest cost accepted (log2 of the number of rounds). */
#define BCRYPT_COST_MIN 4
#define BCRYPT_COST_MAX 31
/** Length of a "$2b$" hash string, without the NUL. */
#define BCRYPT_HASH_LEN 60
/** bcrypt ignores input past this many bytes, so longer secrets are refused. */
#define BCRYPT_SECRET_MAX 72

/**
 * Hash the NUL-terminated secret with a fresh 16-byte salt from
 * crypto_random() at the given cost (BCRYPT_COST_MIN..BCRYPT_COST_MAX).
 * Writes the NUL-terminated "$2b$CC$..." string (BCRYPT_HASH_LEN chars) to
 * out, which has cap bytes (at least BCRYPT_HASH_LEN + 1). Returns 0, or -1
 * when cost is out of range, the secret is longer than BCRYPT_SECRET_MAX
 * bytes, cap is too small or libxcrypt fails. Takes about 2^cost * 60 us
 * (~250 ms at 12): never call it on a latency-critical thread. Thread-safe.
 */
int bcrypt_hash(const char *secret, int cost, char *out, size_t cap);

/**
 * Check the NUL-terminated secret against a "$2b$" hash from bcrypt_hash().
 * Returns 0 when it matches, -1 otherwise (wrong secret, a secret longer than
 * BCRYPT_SECRET_MAX bytes, a hash that is not "$2b$" or is malformed). The
 * comparison of the recomputed hash is constant time. Thread-safe.
 */
int bcrypt_verify(const char *secret, const char *hash);

/**
 * A "$2b$" hash, at the given cost, of a random secret nobody knows: verify
 * the presented secret against it when the key id is unknown, so that
 * unknown and known ids take the same time. Computed once per cost per
 * process on first use (the first call pays one bcrypt_hash()); thread-safe.
 * The string is static and lives until exit. Returns NULL for an
 * out-of-range cost or if hashing fails.
 */
const char *bcrypt_dummy_hash(int cost);

#endif
