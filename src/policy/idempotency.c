/*
 * idempotency.c: key validation, request fingerprints and record names for
 * Idempotency-Key (see idempotency.h). SHA-256 comes straight from GnuTLS;
 * nothing here allocates.
 */
#include "policy/idempotency.h"

#include <string.h>

#include <gnutls/crypto.h>
#include <gnutls/gnutls.h>

#include "core/alloc.h"
#include "core/str.h"

#define SHA256_BYTES 32

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

static void sha256_or_die(const void *data, size_t len, unsigned char out[SHA256_BYTES])
{
	static const unsigned char empty[1];
	if (gnutls_hash_fast(GNUTLS_DIG_SHA256, len ? data : empty, len, out) < 0)
		fatal("gnutls: SHA-256 failed");
}

void idem_fingerprint(const char *method, const char *path, const void *body, size_t body_len,
                      char out[65])
{
	unsigned char body_hash[SHA256_BYTES];
	unsigned char digest[SHA256_BYTES];
	gnutls_hash_hd_t hd;

	sha256_or_die(body, body_len, body_hash);
	if (gnutls_hash_init(&hd, GNUTLS_DIG_SHA256) < 0)
		fatal("gnutls: SHA-256 init failed");
	/* Lengths include the terminating NUL: the separator. */
	if (gnutls_hash(hd, method, strlen(method) + 1) < 0 ||
	    gnutls_hash(hd, path, strlen(path) + 1) < 0 ||
	    gnutls_hash(hd, body_hash, sizeof(body_hash)) < 0)
		fatal("gnutls: SHA-256 update failed");
	gnutls_hash_deinit(hd, digest);
	hex_encode(digest, sizeof(digest), out);
}

static bool id_valid(const char *s)
{
	size_t n = s ? strnlen(s, IDEM_ID_MAX + 1) : 0;
	if (n < 1 || n > IDEM_ID_MAX)
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		if (!((c >= '0' && c <= '9') || (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
		      c == '_' || c == '-'))
			return false;
	}
	return true;
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
	unsigned char digest[SHA256_BYTES];
	char hex[2 * SHA256_BYTES + 1];
	size_t pos = 0;

	if (!out || cap == 0)
		return -1;
	out[0] = '\0';
	size_t idem_len = idem_key ? strnlen(idem_key, IDEM_KEY_MAX + 1) : 0;
	if (!id_valid(org_id) || !id_valid(key_id) || !idem_key_valid(idem_key, idem_len))
		return -1;
	sha256_or_die(idem_key, idem_len, digest);
	hex_encode(digest, sizeof(digest), hex);
	if (!append(out, cap, &pos, "idem:", 5) ||
	    !append(out, cap, &pos, org_id, strlen(org_id)) || !append(out, cap, &pos, ":", 1) ||
	    !append(out, cap, &pos, key_id, strlen(key_id)) || !append(out, cap, &pos, ":", 1) ||
	    !append(out, cap, &pos, hex, 2 * SHA256_BYTES)) {
		out[0] = '\0';
		return -1;
	}
	return 0;
}
