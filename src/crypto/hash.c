/*
 * hash.c: SHA-256 and HMAC-SHA-256 over GnuTLS, SHA-1 for names a protocol
 * defines by it, plus base64 in both alphabets (standard with padding, and
 * base64url without, as JOSE spells it).
 *
 * The base64 encoder and decoder map characters with masks rather than
 * table lookups or branches (after libsodium's sodium_bin2base64), so that
 * encoding a key or decoding a configured master key does not leak its bytes
 * through cache or branch timing. Validity and length checks may branch:
 * they depend only on public facts (the text's length and well-formedness).
 */
#include "crypto/hash.h"

#include <stdbool.h>
#include <string.h>

#include <gnutls/gnutls.h>

#include "core/alloc.h"

/* All-ones when v >= lim, else 0; v and lim must be below 256. */
static unsigned mask_ge(unsigned v, unsigned lim)
{
	return 0U - ((((lim - 1U) - v) >> 8) & 1U);
}

/* All-ones when lo <= c <= hi, else 0; c, lo, hi below 256, lo >= 1. */
static unsigned mask_in(unsigned c, unsigned lo, unsigned hi)
{
	return 0U - (((((lo - 1U) - c) & (c - (hi + 1U))) >> 8) & 1U);
}

void sha256(const void *data, size_t len, uint8_t out[SHA256_LEN])
{
	if (gnutls_hash_fast(GNUTLS_DIG_SHA256, len ? data : "", len, out) != 0)
		fatal("gnutls_hash_fast(SHA256) failed");
}

void hmac_sha256(const void *key, size_t klen, const void *data, size_t dlen,
                 uint8_t out[SHA256_LEN])
{
	if (gnutls_hmac_fast(GNUTLS_MAC_SHA256, klen ? key : "", klen, dlen ? data : "", dlen,
	                     out) != 0)
		fatal("gnutls_hmac_fast(SHA256) failed");
}

void sha1(const void *data, size_t len, uint8_t out[SHA1_LEN])
{
	if (gnutls_hash_fast(GNUTLS_DIG_SHA1, len ? data : "", len, out) != 0)
		fatal("gnutls_hash_fast(SHA1) failed");
}

void sha256_init(struct sha256_ctx *ctx)
{
	ctx->hd = NULL;
	if (gnutls_hash_init(&ctx->hd, GNUTLS_DIG_SHA256) != 0)
		fatal("gnutls_hash_init(SHA256) failed");
}

void sha256_update(struct sha256_ctx *ctx, const void *data, size_t len)
{
	if (len == 0)
		return;
	if (gnutls_hash(ctx->hd, data, len) != 0)
		fatal("gnutls_hash(SHA256) failed");
}

void sha256_final(struct sha256_ctx *ctx, uint8_t out[SHA256_LEN])
{
	gnutls_hash_deinit(ctx->hd, out);
	ctx->hd = NULL;
}

void sha256_discard(struct sha256_ctx *ctx)
{
	if (ctx->hd)
		gnutls_hash_deinit(ctx->hd, NULL);
	ctx->hd = NULL;
}

size_t base64_encoded_len(size_t n)
{
	return (n / 3 + (n % 3 != 0)) * 4;
}

size_t base64_decoded_max(size_t n)
{
	return n / 4 * 3 + (n % 4 ? 3 : 0);
}

/* v in [0, 64) -> "A-Za-z0-9+/" character, or "-_" for 62 and 63 when url. */
static char b64_char(unsigned v, bool url)
{
	unsigned c = 'A' + v;
	unsigned c62 = url ? '-' : '+';
	unsigned c63 = url ? '_' : '/';

	c += mask_ge(v, 26U) & ('a' - 'A' - 26U); /* 26..51 -> a-z */
	c -= mask_ge(v, 52U) & ('a' + 26U - '0'); /* 52..61 -> 0-9 */
	c -= mask_ge(v, 62U) & ('0' + 10U - c62); /* 62 */
	c += mask_ge(v, 63U) & (c63 - c62 - 1U);  /* 63 */
	return (char)(c & 0xFFU);
}

/* The encoder of both alphabets; pad: '=' to a whole group (standard only). */
static int encode(const void *in, size_t n, char *out, size_t cap, bool url)
{
	const uint8_t *p = in;
	size_t need;
	size_t o = 0;
	size_t i = 0;

	if (n > (SIZE_MAX - 1) / 4 * 3 - 3)
		return -1;
	need = (url ? base64url_encoded_len(n) : base64_encoded_len(n)) + 1;
	if (cap < need)
		return -1;
	for (; i + 3 <= n; i += 3) {
		uint32_t w = (uint32_t)p[i] << 16 | (uint32_t)p[i + 1] << 8 | p[i + 2];
		out[o++] = b64_char(w >> 18, url);
		out[o++] = b64_char(w >> 12 & 0x3FU, url);
		out[o++] = b64_char(w >> 6 & 0x3FU, url);
		out[o++] = b64_char(w & 0x3FU, url);
	}
	if (n - i == 1) {
		uint32_t w = (uint32_t)p[i] << 16;
		out[o++] = b64_char(w >> 18, url);
		out[o++] = b64_char(w >> 12 & 0x3FU, url);
		if (!url) {
			out[o++] = '=';
			out[o++] = '=';
		}
	} else if (n - i == 2) {
		uint32_t w = (uint32_t)p[i] << 16 | (uint32_t)p[i + 1] << 8;
		out[o++] = b64_char(w >> 18, url);
		out[o++] = b64_char(w >> 12 & 0x3FU, url);
		out[o++] = b64_char(w >> 6 & 0x3FU, url);
		if (!url)
			out[o++] = '=';
	}
	out[o] = '\0';
	return 0;
}

int base64_encode(const void *in, size_t n, char *out, size_t cap)
{
	return encode(in, n, out, cap, false);
}

size_t base64url_encoded_len(size_t n)
{
	return n / 3 * 4 + (n % 3 ? n % 3 + 1 : 0);
}

int base64url_encode(const void *in, size_t n, char *out, size_t cap)
{
	return encode(in, n, out, cap, true);
}

/* Character -> 6-bit value; sets *bad to 1 if c is not in the alphabet. */
static unsigned b64_value(unsigned char ch, bool url, unsigned *bad)
{
	unsigned c = ch;
	unsigned m_uc = mask_in(c, 'A', 'Z');
	unsigned m_lc = mask_in(c, 'a', 'z');
	unsigned m_dg = mask_in(c, '0', '9');
	unsigned m_62 = url ? mask_in(c, '-', '-') : mask_in(c, '+', '+');
	unsigned m_63 = url ? mask_in(c, '_', '_') : mask_in(c, '/', '/');
	unsigned v = (m_uc & (c - 'A')) | (m_lc & (c - 'a' + 26U)) | (m_dg & (c - '0' + 52U)) |
	             (m_62 & 62U) | (m_63 & 63U);

	*bad |= ~(m_uc | m_lc | m_dg | m_62 | m_63) & 1U;
	return v;
}

/*
 * The decoder of both alphabets: full groups of 4, then a tail of 0, 2 or 3
 * characters (standard base64 spells the tail's missing characters as '=',
 * base64url leaves them out), whose unused bits must be zero.
 */
static int decode(const unsigned char *s, size_t full, size_t tail, bool url, uint8_t *out,
                  size_t cap, size_t *out_len)
{
	size_t o = 0;
	unsigned bad = 0;

	if (full / 4 * 3 + (tail ? tail - 1 : 0) > cap)
		return -1;
	for (size_t i = 0; i < full; i += 4) {
		uint32_t w = b64_value(s[i], url, &bad) << 18 |
		             b64_value(s[i + 1], url, &bad) << 12 |
		             b64_value(s[i + 2], url, &bad) << 6 | b64_value(s[i + 3], url, &bad);
		out[o++] = (uint8_t)(w >> 16);
		out[o++] = (uint8_t)(w >> 8);
		out[o++] = (uint8_t)w;
	}
	if (tail == 2) {
		unsigned v1 = b64_value(s[full + 1], url, &bad);
		uint32_t w = b64_value(s[full], url, &bad) << 18 | v1 << 12;
		bad |= (v1 & 0x0FU) != 0; /* unused bits must be zero */
		out[o++] = (uint8_t)(w >> 16);
	} else if (tail == 3) {
		unsigned v2 = b64_value(s[full + 2], url, &bad);
		uint32_t w = b64_value(s[full], url, &bad) << 18 |
		             b64_value(s[full + 1], url, &bad) << 12 | v2 << 6;
		bad |= (v2 & 0x03U) != 0;
		out[o++] = (uint8_t)(w >> 16);
		out[o++] = (uint8_t)(w >> 8);
	}
	if (bad) {
		explicit_bzero(out, o);
		return -1;
	}
	*out_len = o;
	return 0;
}

int base64_decode(const char *in, size_t n, uint8_t *out, size_t cap, size_t *out_len)
{
	const unsigned char *s = (const unsigned char *)in;
	size_t pad = 0;

	*out_len = 0;
	if (n % 4 != 0)
		return -1;
	if (n == 0)
		return 0;
	if (s[n - 1] == '=')
		pad = s[n - 2] == '=' ? 2 : 1;
	/* A padded last group is the tail: 2 characters before "==", 3 before "=". */
	return pad ? decode(s, n - 4, 4 - pad, false, out, cap, out_len)
	           : decode(s, n, 0, false, out, cap, out_len);
}

int base64url_decode(const char *in, size_t n, uint8_t *out, size_t cap, size_t *out_len)
{
	*out_len = 0;
	if (n % 4 == 1)
		return -1; /* one character carries no whole byte */
	return decode((const unsigned char *)in, n - n % 4, n % 4, true, out, cap, out_len);
}
