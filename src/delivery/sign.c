/*
 * sign.c: Standard Webhooks 1.0 signatures (sign.h).
 *
 * The signed content "<id>.<ts>.<body>" is assembled once per delivery (in a
 * stack buffer when small, else on the heap) and MACed under each active
 * secret with crypto/hash.h's one-shot HMAC-SHA-256; the decoded keys are
 * wiped as soon as they have been used. The engine calls this once per
 * attempt, because the timestamp is the attempt's.
 */
#include "delivery/sign.h"

#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "core/str.h"
#include "crypto/hash.h"
#include "crypto/random.h"

#define SECRET_PREFIX     "whsec_"
#define SECRET_PREFIX_LEN (sizeof(SECRET_PREFIX) - 1)
#define KEY_MIN           24
#define KEY_MAX           64
#define NEW_KEY_LEN       32
#define CONTENT_STACK     4096

void wh_secret_new(char out[WH_SECRET_MAX + 1])
{
	uint8_t key[NEW_KEY_LEN];

	crypto_random(key, sizeof(key));
	memcpy(out, SECRET_PREFIX, SECRET_PREFIX_LEN);
	/* 6 + 44 + 1 bytes always fit in WH_SECRET_MAX + 1. */
	if (base64_encode(key, sizeof(key), out + SECRET_PREFIX_LEN,
	                  WH_SECRET_MAX + 1 - SECRET_PREFIX_LEN) != 0)
		fatal("wh_secret_new: buffer too small");
	explicit_bzero(key, sizeof(key));
}

/* The HMAC key of a secret into key (KEY_MAX bytes); its length, or -1. */
static int secret_key(const char *secret, uint8_t key[KEY_MAX], size_t *klen)
{
	size_t n;

	if (!secret || strncmp(secret, SECRET_PREFIX, SECRET_PREFIX_LEN) != 0)
		return -1;
	n = strnlen(secret, WH_SECRET_MAX + 1);
	if (n > WH_SECRET_MAX)
		return -1;
	if (base64_decode(secret + SECRET_PREFIX_LEN, n - SECRET_PREFIX_LEN, key, KEY_MAX, klen) !=
	    0)
		return -1;
	if (*klen < KEY_MIN) {
		explicit_bzero(key, KEY_MAX);
		*klen = 0;
		return -1;
	}
	return 0;
}

/* One "v1,<base64 tag>" of content under secret into out (cap bytes). */
static int sign_content(const char *secret, const char *content, size_t clen, char *out, size_t cap)
{
	uint8_t key[KEY_MAX];
	uint8_t tag[SHA256_LEN];
	size_t klen;

	if (cap < WH_SIGNATURE_LEN + 1)
		return -1;
	if (secret_key(secret, key, &klen) != 0)
		return -1;
	hmac_sha256(key, klen, content, clen, tag);
	explicit_bzero(key, sizeof(key));
	memcpy(out, "v1,", sizeof("v1,")); /* the tag overwrites the NUL */
	/* 44 + 1 bytes fit: cap >= 48. */
	(void)base64_encode(tag, sizeof(tag), out + 3, cap - 3);
	return 0;
}

/*
 * "<msg_id>.<ts>.<body>" into *content (stack when it fits, else a heap
 * buffer the caller frees via *heap); its length in *clen. -1 for a bad id
 * or ts.
 */
static int build_content(const char *msg_id, int64_t ts, const char *body, size_t len,
                         char stack[CONTENT_STACK], char **content, char **heap, size_t *clen)
{
	char tsbuf[STR_I64_MAX];
	size_t idlen, tslen, n;
	char *p;

	*heap = NULL;
	if (!msg_id || ts < 0 || (len > 0 && !body))
		return -1;
	idlen = strnlen(msg_id, WH_MSG_ID_MAX + 1);
	if (idlen == 0 || idlen > WH_MSG_ID_MAX)
		return -1;
	tslen = str_i64(tsbuf, ts);
	if (len > SIZE_MAX - idlen - tslen - 2)
		return -1;
	n = idlen + 1 + tslen + 1 + len;
	p = n <= CONTENT_STACK ? stack : (*heap = xmalloc(n));
	memcpy(p, msg_id, idlen);
	p[idlen] = '.';
	memcpy(p + idlen + 1, tsbuf, tslen);
	p[idlen + 1 + tslen] = '.';
	if (len > 0)
		memcpy(p + idlen + tslen + 2, body, len);
	*content = p;
	*clen = n;
	return 0;
}

int wh_sign(const char *secret, const char *msg_id, int64_t ts, const char *body, size_t len,
            char *out, size_t cap)
{
	return wh_signature_header(&secret, 1, msg_id, ts, body, len, out, cap);
}

int wh_signature_header(const char *const *secrets, int n, const char *msg_id, int64_t ts,
                        const char *body, size_t len, char *out, size_t cap)
{
	char stack[CONTENT_STACK];
	char *content, *heap;
	size_t clen, pos = 0;
	int rc = -1;

	if (cap > 0)
		out[0] = '\0';
	if (!secrets || n < 1 || n > WH_SIGNATURES_MAX || cap < (size_t)n * (WH_SIGNATURE_LEN + 1))
		return -1;
	if (build_content(msg_id, ts, body, len, stack, &content, &heap, &clen) != 0)
		return -1;
	for (int i = 0; i < n; i++) {
		if (i > 0)
			out[pos++] = ' ';
		if (sign_content(secrets[i], content, clen, out + pos, cap - pos) != 0)
			goto out;
		pos += WH_SIGNATURE_LEN;
	}
	rc = 0;
out:
	if (rc != 0)
		out[0] = '\0';
	free(heap);
	return rc;
}
