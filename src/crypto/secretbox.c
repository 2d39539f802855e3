/*
 * secretbox.c: AES-256-GCM seal/open over gnutls_aead_cipher_*. A fresh
 * cipher handle per call keeps the functions thread-safe; the cost (key
 * schedule) is negligible next to the store round trip that follows.
 *
 * Intermediate buffers that ever held plaintext are wiped before release.
 */
#include "crypto/secretbox.h"

#include <stdlib.h>
#include <string.h>

#include <gnutls/crypto.h>
#include <gnutls/gnutls.h>

#include "core/alloc.h"
#include "crypto/hash.h"
#include "crypto/random.h"

#define OVERHEAD (SECRETBOX_NONCE_LEN + SECRETBOX_TAG_LEN)

static int cipher_open(gnutls_aead_cipher_hd_t *hd, const uint8_t key[SECRETBOX_KEY_LEN])
{
	/* gnutls_datum_t is not const-qualified, but the init only reads (copies) the key. */
	gnutls_datum_t k = {.data = (unsigned char *)(uintptr_t)key, .size = SECRETBOX_KEY_LEN};

	return gnutls_aead_cipher_init(hd, GNUTLS_CIPHER_AES_256_GCM, &k) == 0 ? 0 : -1;
}

int secretbox_seal(const uint8_t key[SECRETBOX_KEY_LEN], const void *pt, size_t n, char **out_b64)
{
	gnutls_aead_cipher_hd_t hd = NULL;
	uint8_t *raw = NULL;
	size_t raw_len = 0;
	size_t ct_len;
	size_t b64_cap;
	char *b64 = NULL;
	int rc = -1;

	*out_b64 = NULL;
	/* Keep raw_len and its base64 length far from SIZE_MAX. */
	if (n > SIZE_MAX / 2 - OVERHEAD)
		goto out;
	if (cipher_open(&hd, key) != 0)
		goto out;
	raw_len = n + OVERHEAD;
	raw = xmalloc(raw_len);
	crypto_random(raw, SECRETBOX_NONCE_LEN);
	ct_len = n + SECRETBOX_TAG_LEN;
	if (gnutls_aead_cipher_encrypt(hd, raw, SECRETBOX_NONCE_LEN, NULL, 0, SECRETBOX_TAG_LEN,
	                               n ? pt : "", n, raw + SECRETBOX_NONCE_LEN, &ct_len) != 0 ||
	    ct_len != n + SECRETBOX_TAG_LEN)
		goto out;
	b64_cap = base64_encoded_len(raw_len) + 1;
	b64 = xmalloc(b64_cap);
	if (base64_encode(raw, raw_len, b64, b64_cap) != 0)
		goto out;
	*out_b64 = b64;
	b64 = NULL;
	rc = 0;
out:
	if (hd)
		gnutls_aead_cipher_deinit(hd);
	free(raw); /* nonce and ciphertext only: nothing secret */
	free(b64);
	return rc;
}

int secretbox_open(const uint8_t key[SECRETBOX_KEY_LEN], const char *b64, uint8_t **out,
                   size_t *out_len)
{
	gnutls_aead_cipher_hd_t hd = NULL;
	size_t b64_len = strlen(b64);
	uint8_t *raw = NULL;
	size_t raw_cap;
	size_t raw_len = 0;
	uint8_t *pt = NULL;
	size_t pt_cap = 0;
	size_t pt_len;
	int rc = -1;

	*out = NULL;
	*out_len = 0;
	raw_cap = base64_decoded_max(b64_len);
	if (raw_cap < OVERHEAD)
		goto out;
	raw = xmalloc(raw_cap);
	if (base64_decode(b64, b64_len, raw, raw_cap, &raw_len) != 0 || raw_len < OVERHEAD)
		goto out;
	if (cipher_open(&hd, key) != 0)
		goto out;
	/* One spare byte for the NUL; GnuTLS wants room for the whole plaintext. */
	pt_cap = raw_len - OVERHEAD + 1;
	pt = xmalloc(pt_cap);
	pt_len = pt_cap;
	if (gnutls_aead_cipher_decrypt(hd, raw, SECRETBOX_NONCE_LEN, NULL, 0, SECRETBOX_TAG_LEN,
	                               raw + SECRETBOX_NONCE_LEN, raw_len - SECRETBOX_NONCE_LEN, pt,
	                               &pt_len) != 0 ||
	    pt_len != raw_len - OVERHEAD)
		goto out;
	pt[pt_len] = '\0';
	*out = pt;
	*out_len = pt_len;
	pt = NULL;
	rc = 0;
out:
	if (hd)
		gnutls_aead_cipher_deinit(hd);
	free(raw);
	if (pt) {
		explicit_bzero(pt, pt_cap);
		free(pt);
	}
	return rc;
}
