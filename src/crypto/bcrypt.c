/*
 * bcrypt.c: "$2b$" hashing and verification via libxcrypt's crypt_gensalt_rn
 * and crypt_rn (re-entrant: each call owns a heap struct crypt_data, ~32 KiB,
 * too big for small thread stacks, and wiped after use because it holds the
 * key schedule derived from the secret).
 *
 * The dummy hashes for unknown key ids live in static storage, one slot per
 * cost, published with release/acquire atomics after being computed under a
 * mutex, so the hot path after the first call is a single atomic load.
 */
#include "crypto/bcrypt.h"

#include <crypt.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "crypto/ct.h"
#include "crypto/random.h"

#define BCRYPT_PREFIX     "$2b$"
#define BCRYPT_SALT_BYTES 16

static bool cost_ok(int cost)
{
	return cost >= BCRYPT_COST_MIN && cost <= BCRYPT_COST_MAX;
}

static bool secret_ok(const char *secret)
{
	return strnlen(secret, BCRYPT_SECRET_MAX + 1) <= BCRYPT_SECRET_MAX;
}

int bcrypt_hash(const char *secret, int cost, char *out, size_t cap)
{
	uint8_t salt[BCRYPT_SALT_BYTES];
	char setting[CRYPT_GENSALT_OUTPUT_SIZE];
	struct crypt_data *cd = NULL;
	const char *h;
	size_t hlen;
	int rc = -1;

	if (!cost_ok(cost) || !secret_ok(secret))
		goto out;
	crypto_random(salt, sizeof(salt));
	if (!crypt_gensalt_rn(BCRYPT_PREFIX, (unsigned long)cost, (const char *)salt, sizeof(salt),
	                      setting, sizeof(setting)))
		goto out;
	cd = xcalloc(1, sizeof(*cd));
	h = crypt_rn(secret, setting, cd, sizeof(*cd));
	if (!h || h[0] == '*' || strncmp(h, BCRYPT_PREFIX, strlen(BCRYPT_PREFIX)) != 0)
		goto out;
	hlen = strlen(h);
	if (hlen + 1 > cap)
		goto out;
	memcpy(out, h, hlen + 1);
	rc = 0;
out:
	explicit_bzero(salt, sizeof(salt));
	explicit_bzero(setting, sizeof(setting));
	if (cd) {
		explicit_bzero(cd, sizeof(*cd));
		free(cd);
	}
	return rc;
}

int bcrypt_verify(const char *secret, const char *hash)
{
	struct crypt_data *cd = NULL;
	const char *h;
	int rc = -1;

	/* Refuse anything but $2b$: crypt_rn would also run weak legacy schemes. */
	if (strncmp(hash, BCRYPT_PREFIX, strlen(BCRYPT_PREFIX)) != 0 || !secret_ok(secret))
		goto out;
	cd = xcalloc(1, sizeof(*cd));
	h = crypt_rn(secret, hash, cd, sizeof(*cd));
	if (!h || h[0] == '*')
		goto out;
	if (ct_streq(h, hash))
		rc = 0;
out:
	if (cd) {
		explicit_bzero(cd, sizeof(*cd));
		free(cd);
	}
	return rc;
}

static char dummy_hash[BCRYPT_COST_MAX + 1][BCRYPT_HASH_LEN + 1];
static atomic_bool dummy_ready[BCRYPT_COST_MAX + 1];
static pthread_mutex_t dummy_lock = PTHREAD_MUTEX_INITIALIZER;

const char *bcrypt_dummy_hash(int cost)
{
	char secret[44];
	const char *res = NULL;

	if (!cost_ok(cost))
		return NULL;
	if (atomic_load_explicit(&dummy_ready[cost], memory_order_acquire))
		return dummy_hash[cost];

	pthread_mutex_lock(&dummy_lock);
	if (atomic_load_explicit(&dummy_ready[cost], memory_order_relaxed)) {
		res = dummy_hash[cost];
		goto out;
	}
	crypto_random_base62(secret, sizeof(secret) - 1);
	secret[sizeof(secret) - 1] = '\0';
	if (bcrypt_hash(secret, cost, dummy_hash[cost], sizeof(dummy_hash[cost])) != 0)
		goto out;
	atomic_store_explicit(&dummy_ready[cost], true, memory_order_release);
	res = dummy_hash[cost];
out:
	pthread_mutex_unlock(&dummy_lock);
	explicit_bzero(secret, sizeof(secret));
	return res;
}
