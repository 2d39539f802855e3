/*
 * idempotency.c: key validation, request fingerprints and record names for
 * Idempotency-Key (see idempotency.h). SHA-256 is crypto/hash.h's;
 * nothing here allocates.
 */
#include "policy/idempotency.h"

#include "core/str.h"
#include "crypto/hash.h"

#include <string.h>

bool idem_key_valid(const char *s, size_t len)
{
	if (!s || len < 1 || len > IDEM_KEY_MAX)
		return false;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c < 0x21 || c > 0x7e)
			return false;
	}
	return true;
}

void idem_fingerprint(const char *method, const char *path, const void *body, size_t body_len,
                      char out[65])
{
	uint8_t body_hash[SHA256_LEN];
	uint8_t digest[SHA256_LEN];
	struct sha256_ctx hd;

	sha256(body, body_len, body_hash);
	sha256_init(&hd);
	/* Lengths include the terminating NUL: the separator. */
	sha256_update(&hd, method, strlen(method) + 1);
	sha256_update(&hd, path, strlen(path) + 1);
	sha256_update(&hd, body_hash, sizeof(body_hash));
	sha256_final(&hd, digest);
	hex_encode(digest, sizeof(digest), out);
}

static bool id_valid(const char *s)
{
	return s && str_is_token(s, strnlen(s, IDEM_ID_MAX + 1), IDEM_ID_MAX);
}

/* Append n bytes at *pos; false (nothing written) when they do not fit. */
static bool append(char *out, size_t cap, size_t *pos, const char *s, size_t n)
{
	if (cap - *pos <= n)
		return false;
	memcpy(out + *pos, s, n);
	*pos += n;
	out[*pos] = '\0';
	return true;
}

int idem_storage_key(const char *org_id, const char *key_id, const char *idem_key, char *out,
                     size_t cap)
{
	unsigned char digest[SHA256_LEN];
	char hex[2 * SHA256_LEN + 1];
	size_t pos = 0;

	if (!out || cap == 0)
		return -1;
	out[0] = '\0';
	size_t idem_len = idem_key ? strnlen(idem_key, IDEM_KEY_MAX + 1) : 0;
	if (!id_valid(org_id) || !id_valid(key_id) || !idem_key_valid(idem_key, idem_len))
		return -1;
	sha256(idem_key, idem_len, digest);
	hex_encode(digest, sizeof(digest), hex);
	if (!append(out, cap, &pos, "idem:", 5) ||
	    !append(out, cap, &pos, org_id, strlen(org_id)) || !append(out, cap, &pos, ":", 1) ||
	    !append(out, cap, &pos, key_id, strlen(key_id)) || !append(out, cap, &pos, ":", 1) ||
	    !append(out, cap, &pos, hex, 2 * SHA256_LEN)) {
		out[0] = '\0';
		return -1;
	}
	return 0;
}
