/*
 * hmac.c: a once-scheduled HMAC-SHA-256 key over nettle (see hmac.h).
 */
#include "crypto/hmac.h"

#include "core/alloc.h"

#include <nettle/hmac.h>
#include <stdlib.h>
#include <string.h>

struct hmac_key {
	struct hmac_sha256_ctx keyed; /* read-only after hmac_key_create */
};

struct hmac_key *hmac_key_create(const void *key, size_t klen)
{
	struct hmac_key *k = xcalloc(1, sizeof *k);

	hmac_sha256_set_key(&k->keyed, klen, klen ? key : (const void *)"");
	return k;
}

void hmac_key_mac(const struct hmac_key *k, const void *data, size_t len, uint8_t out[32])
{
	struct hmac_sha256_ctx c = k->keyed;

	if (len)
		hmac_sha256_update(&c, len, data);
	hmac_sha256_digest(&c, SHA256_DIGEST_SIZE, out);
	explicit_bzero(&c, sizeof c); /* its block buffer held the data */
}

void hmac_key_destroy(struct hmac_key *k)
{
	if (!k)
		return;
	explicit_bzero(k, sizeof *k);
	free(k);
}
