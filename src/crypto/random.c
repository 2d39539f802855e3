/*
 * random.c: CSPRNG wrappers over gnutls_rnd(GNUTLS_RND_KEY).
 *
 * crypto_random_base62() draws bytes, keeps those below 248 (= 4 * 62, the
 * largest multiple of 62 that fits in a byte) and maps them to base62 digits
 * with branch-free arithmetic, so neither the distribution nor the timing of
 * the mapping depends on the secret's characters.
 */
#include "crypto/random.h"

#include <stdint.h>
#include <string.h>

#include <gnutls/crypto.h>
#include <gnutls/gnutls.h>

#include "core/alloc.h"

void crypto_random(void *buf, size_t n)
{
	if (n == 0)
		return;
	if (gnutls_rnd(GNUTLS_RND_KEY, buf, n) != 0)
		fatal("gnutls_rnd failed: no secure randomness available");
}

/*
 * Map v in [0, 62) to its base62 digit without branches or table lookups:
 * each range contributes its offset only when v falls inside it.
 */
static char base62_digit(unsigned v)
{
	/* mask is all ones when v >= lim (v and lim are < 256). */
	unsigned ge10 = 0U - ((9U - v) >> 8 & 1U);
	unsigned ge36 = 0U - ((35U - v) >> 8 & 1U);
	unsigned c = '0' + v;

	c += ge10 & ('A' - '0' - 10U);
	c += ge36 & ('a' - 'A' - 26U);
	return (char)c;
}

void crypto_random_base62(char *out, size_t n)
{
	uint8_t pool[64];
	size_t pos = sizeof(pool);
	size_t i = 0;

	while (i < n) {
		if (pos == sizeof(pool)) {
			crypto_random(pool, sizeof(pool));
			pos = 0;
		}
		unsigned b = pool[pos++];
		if (b >= 248U)
			continue;
		out[i++] = base62_digit(b % 62U);
	}
	explicit_bzero(pool, sizeof(pool));
}
