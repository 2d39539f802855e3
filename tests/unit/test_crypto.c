/*
 * test_crypto.c: unit tests for src/crypto: known answers (FIPS 180 "abc",
 * RFC 4231 case 2, RFC 4648 base64, CRC-32 check value), exhaustive checks
 * of the branch-free character mappings, bcrypt and secretbox behaviour.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "core/str.h"
#include "crypto/bcrypt.h"
#include "crypto/crc32.h"
#include "crypto/ct.h"
#include "crypto/hash.h"
#include "crypto/hmac.h"
#include "crypto/random.h"
#include "crypto/secretbox.h"

static const char b62[] = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

static void test_sha256_abc(void **state)
{
	uint8_t d[SHA256_LEN];
	char hex[2 * SHA256_LEN + 1];
	(void)state;

	sha256("abc", 3, d);
	hex_encode(d, sizeof(d), hex);
	assert_string_equal(hex,
	                    "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
	sha256(NULL, 0, d);
	hex_encode(d, sizeof(d), hex);
	assert_string_equal(hex,
	                    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
}

static void test_sha256_incremental(void **state)
{
	struct sha256_ctx ctx;
	uint8_t one[SHA256_LEN];
	uint8_t inc[SHA256_LEN];
	const char *msg = "The quick brown fox jumps over the lazy dog";
	size_t n = strlen(msg);
	(void)state;

	sha256(msg, n, one);
	sha256_init(&ctx);
	sha256_update(&ctx, msg, 10);
	sha256_update(&ctx, NULL, 0);
	sha256_update(&ctx, msg + 10, n - 10);
	sha256_final(&ctx, inc);
	assert_memory_equal(one, inc, SHA256_LEN);
	assert_null(ctx.hd);

	sha256_init(&ctx);
	sha256_update(&ctx, msg, n);
	sha256_discard(&ctx);
	sha256_discard(&ctx); /* idempotent */
}

static void test_hmac_rfc4231_case2(void **state)
{
	uint8_t mac[SHA256_LEN];
	char hex[2 * SHA256_LEN + 1];
	const char *data = "what do ya want for nothing?";
	(void)state;

	hmac_sha256("Jefe", 4, data, strlen(data), mac);
	hex_encode(mac, sizeof(mac), hex);
	assert_string_equal(hex,
	                    "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
}

static void test_sha1_fips180(void **state)
{
	uint8_t d[SHA1_LEN];
	char hex[2 * SHA1_LEN + 1];
	(void)state;

	sha1("abc", 3, d);
	hex_encode(d, sizeof(d), hex);
	assert_string_equal(hex, "a9993e364706816aba3e25717850c26c9cd0d89d");
	sha1(NULL, 0, d);
	hex_encode(d, sizeof(d), hex);
	assert_string_equal(hex, "da39a3ee5e6b4b0d3255bfef95601890afd80709");
}

/* The once-keyed HMAC: RFC 4231 case 2, then agreement with the one-shot
 * HMAC for keys shorter than, equal to and longer than the block and for
 * messages across block boundaries; reusing the key gives the same MAC. */
static void test_hmac_key_matches_one_shot(void **state)
{
	static const size_t klens[] = {0, 4, 32, 64, 65, 131};
	uint8_t key[131], msg[300];
	uint8_t a[SHA256_LEN], b[SHA256_LEN];
	char hex[2 * SHA256_LEN + 1];
	const char *data = "what do ya want for nothing?";
	struct hmac_key *k = hmac_key_create("Jefe", 4);
	(void)state;

	hmac_key_mac(k, data, strlen(data), a);
	hex_encode(a, sizeof(a), hex);
	assert_string_equal(hex,
	                    "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
	hmac_key_mac(k, data, strlen(data), b); /* the keyed state is not consumed */
	assert_memory_equal(a, b, SHA256_LEN);
	hmac_key_destroy(k);
	hmac_key_destroy(NULL);

	for (size_t i = 0; i < sizeof(key); i++)
		key[i] = (uint8_t)(i * 7 + 1);
	for (size_t i = 0; i < sizeof(msg); i++)
		msg[i] = (uint8_t)(i * 13 + 5);
	for (size_t ki = 0; ki < sizeof(klens) / sizeof(klens[0]); ki++) {
		k = hmac_key_create(klens[ki] ? key : NULL, klens[ki]);
		for (size_t n = 0; n <= sizeof(msg); n += (n < 70 ? 1 : 23)) {
			hmac_key_mac(k, n ? msg : NULL, n, a);
			hmac_sha256(key, klens[ki], msg, n, b);
			assert_memory_equal(a, b, SHA256_LEN);
		}
		hmac_key_destroy(k);
	}
}

static void test_base64_rfc4648(void **state)
{
	static const char *const vec[][2] = {
	    {"", ""},
	    {"f", "Zg=="},
	    {"fo", "Zm8="},
	    {"foo", "Zm9v"},
	    {"foob", "Zm9vYg=="},
	    {"fooba", "Zm9vYmE="},
	    {"foobar", "Zm9vYmFy"},
	};
	char enc[16];
	uint8_t dec[16];
	size_t dlen;
	(void)state;

	for (size_t i = 0; i < sizeof(vec) / sizeof(vec[0]); i++) {
		size_t n = strlen(vec[i][0]);
		assert_int_equal(base64_encoded_len(n), strlen(vec[i][1]));
		assert_int_equal(base64_encode(vec[i][0], n, enc, sizeof(enc)), 0);
		assert_string_equal(enc, vec[i][1]);
		assert_int_equal(base64_decode(enc, strlen(enc), dec, sizeof(dec), &dlen), 0);
		assert_int_equal(dlen, n);
		assert_memory_equal(dec, vec[i][0], n);
	}
	/* Capacity is exact: encoded length + NUL. */
	assert_int_equal(base64_encode("foo", 3, enc, 4), -1);
	assert_int_equal(base64_encode("foo", 3, enc, 5), 0);
	assert_int_equal(base64_decode("Zm9vYmFy", 8, dec, 5, &dlen), -1);
	assert_int_equal(dlen, 0);
	assert_int_equal(base64_decode("Zm9vYmFy", 8, dec, 6, &dlen), 0);
	assert_int_equal(dlen, 6);
}

/* Reference encoder with a lookup table, to check the branch-free one. */
static void ref_b64(const uint8_t *in, size_t n, char *out)
{
	size_t o = 0;
	for (size_t i = 0; i < n; i += 3) {
		uint32_t w = (uint32_t)in[i] << 16;
		if (i + 1 < n)
			w |= (uint32_t)in[i + 1] << 8;
		if (i + 2 < n)
			w |= in[i + 2];
		out[o++] = b64[w >> 18];
		out[o++] = b64[w >> 12 & 63];
		out[o++] = i + 1 < n ? b64[w >> 6 & 63] : '=';
		out[o++] = i + 2 < n ? b64[w & 63] : '=';
	}
	out[o] = '\0';
}

static void test_base64_round_trip(void **state)
{
	uint8_t in[200];
	char enc[300];
	char ref[300];
	uint8_t dec[200];
	size_t dlen;
	(void)state;

	for (size_t round = 0; round < 50; round++) {
		for (size_t n = 0; n <= sizeof(in); n += 1 + round % 7) {
			crypto_random(in, n);
			assert_int_equal(base64_encode(in, n, enc, sizeof(enc)), 0);
			ref_b64(in, n, ref);
			assert_string_equal(enc, ref);
			assert_int_equal(base64_decode(enc, strlen(enc), dec,
			                               base64_decoded_max(strlen(enc)), &dlen),
			                 0);
			assert_int_equal(dlen, n);
			assert_memory_equal(dec, in, n);
		}
	}
}

static void test_base64_every_char(void **state)
{
	uint8_t dec[3];
	size_t dlen;
	(void)state;

	/* Each byte value as the first character of "cAAA". */
	for (unsigned c = 0; c < 256; c++) {
		char text[4] = {(char)c, 'A', 'A', 'A'};
		const char *pos = c ? memchr(b64, (int)c, 64) : NULL;
		int rc = base64_decode(text, 4, dec, sizeof(dec), &dlen);
		if (!pos) {
			assert_int_equal(rc, -1);
			continue;
		}
		assert_int_equal(rc, 0);
		assert_int_equal(dlen, 3);
		assert_int_equal(dec[0], (uint8_t)((pos - b64) << 2));
	}
}

static void test_base64_invalid(void **state)
{
	static const char *const bad[] = {
	    "Z",    "Zg",       "Zg=",      "Zg=a",    "Z===",  "====",         "=Zm9",
	    "Zm=v", "Zh==",     "Zm9=",     "Zm9v\n",  " Zm9v", "Zm9vYg==Zm9v", "Zm-v",
	    "Zm_v", "Zm9vY===", "Zm9v====", "Zm9vYg=",
	};
	uint8_t dec[32];
	size_t dlen = 99;
	(void)state;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		size_t n = strlen(bad[i]);
		assert_int_equal(base64_decode(bad[i], n, dec, sizeof(dec), &dlen), -1);
		assert_int_equal(dlen, 0);
	}
	/* Embedded NUL counted in the length. */
	assert_int_equal(base64_decode("Zm\0v", 4, dec, sizeof(dec), &dlen), -1);
	assert_int_equal(base64_decode("Zg==\0\0\0\0", 8, dec, sizeof(dec), &dlen), -1);
	/* Empty is valid and empty. */
	assert_int_equal(base64_decode("", 0, dec, 0, &dlen), 0);
	assert_int_equal(dlen, 0);
}

/* base64url (RFC 4648 section 5) without padding, as JOSE writes it: RFC 4648's
 * vectors unpadded, a byte string using 62 and 63, and a round trip through the
 * standard codec with the alphabet swapped and the padding dropped. */
static void test_base64url(void **state)
{
	static const char *const vec[][2] = {
	    {"", ""},           {"f", "Zg"},          {"fo", "Zm8"},          {"foo", "Zm9v"},
	    {"foob", "Zm9vYg"}, {"fooba", "Zm9vYmE"}, {"foobar", "Zm9vYmFy"},
	};
	static const uint8_t hi[] = {0xfb, 0xff, 0xbf};
	char enc[300];
	char ref[300];
	uint8_t in[200];
	uint8_t dec[200];
	size_t dlen;
	(void)state;

	for (size_t i = 0; i < sizeof(vec) / sizeof(vec[0]); i++) {
		size_t n = strlen(vec[i][0]);
		assert_int_equal(base64url_encoded_len(n), strlen(vec[i][1]));
		assert_int_equal(base64url_encode(vec[i][0], n, enc, sizeof(enc)), 0);
		assert_string_equal(enc, vec[i][1]);
		assert_int_equal(base64url_decode(enc, strlen(enc), dec, sizeof(dec), &dlen), 0);
		assert_int_equal(dlen, n);
		assert_memory_equal(dec, vec[i][0], n);
	}
	assert_int_equal(base64url_encode(hi, 3, enc, sizeof(enc)), 0);
	assert_string_equal(enc, "-_-_");
	assert_int_equal(base64url_encode("fo", 2, enc, 3), -1); /* "Zm8" + NUL needs 4 */
	assert_int_equal(base64url_encode("fo", 2, enc, 4), 0);
	assert_int_equal(base64url_decode("Zm9vYmE", 7, dec, 4, &dlen), -1);
	assert_int_equal(dlen, 0);
	for (size_t n = 0; n <= sizeof(in); n++) {
		crypto_random(in, n);
		assert_int_equal(base64url_encode(in, n, enc, sizeof(enc)), 0);
		ref_b64(in, n, ref);
		for (char *p = ref; *p; p++)
			*p = *p == '+' ? '-' : *p == '/' ? '_' : *p;
		ref[base64url_encoded_len(n)] = '\0'; /* drop the padding */
		assert_string_equal(enc, ref);
		assert_int_equal(base64url_decode(enc, strlen(enc), dec, sizeof(dec), &dlen), 0);
		assert_int_equal(dlen, n);
		assert_memory_equal(dec, in, n);
	}
}

static void test_base64url_invalid(void **state)
{
	static const char *const bad[] = {
	    "Z",           /* 4k + 1 characters */
	    "Zm9vY",       /* likewise */
	    "Zg==",        /* padding */
	    "Zm8=",  "Zh", /* unused bits set */
	    "Zm9",         /* likewise */
	    "Zm+v",        /* standard alphabet */
	    "Zm/v",  "Zm9v\n", " Zm9v", "Zm.v",
	};
	uint8_t dec[32];
	size_t dlen = 99;
	(void)state;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_int_equal(base64url_decode(bad[i], strlen(bad[i]), dec, sizeof(dec), &dlen),
		                 -1);
		assert_int_equal(dlen, 0);
	}
	assert_int_equal(base64url_decode("Zm\0v", 4, dec, sizeof(dec), &dlen), -1);
	assert_int_equal(base64url_decode("", 0, dec, 0, &dlen), 0);
}

static void test_ct_equal(void **state)
{
	uint8_t a[64];
	uint8_t b[64];
	(void)state;

	crypto_random(a, sizeof(a));
	memcpy(b, a, sizeof(a));
	assert_true(ct_equal(a, b, sizeof(a)));
	assert_true(ct_equal(a, b, 0));
	for (size_t i = 0; i < sizeof(a); i++) {
		for (unsigned bit = 0; bit < 8; bit++) {
			b[i] ^= (uint8_t)(1U << bit);
			assert_false(ct_equal(a, b, sizeof(a)));
			b[i] ^= (uint8_t)(1U << bit);
		}
	}
	assert_true(ct_equal(a, b, sizeof(a)));
	/* Every length around the eight-byte words: a flip inside n is seen, one past n is not. */
	for (size_t n = 1; n < sizeof(a); n++) {
		b[n - 1] ^= 0x80;
		assert_false(ct_equal(a, b, n));
		b[n - 1] ^= 0x80;
		b[n] ^= 0x01;
		assert_true(ct_equal(a, b, n));
		b[n] ^= 0x01;
	}
}

static void test_ct_streq(void **state)
{
	(void)state;
	assert_true(ct_streq("", ""));
	assert_true(ct_streq("abc", "abc"));
	assert_false(ct_streq("abc", "abd"));
	assert_false(ct_streq("abc", "xbc"));
	assert_false(ct_streq("abc", "ab"));
	assert_false(ct_streq("ab", "abc"));
	assert_false(ct_streq("", "a"));
	assert_false(ct_streq("a", ""));
	assert_true(ct_streq("$2b$04$abcdefghijklmnopqrstuv", "$2b$04$abcdefghijklmnopqrstuv"));
}

static void test_crc32(void **state)
{
	(void)state;
	assert_int_equal(crc32_ieee("123456789", 9), 0xCBF43926U);
	assert_int_equal(crc32_ieee(NULL, 0), 0);
	assert_int_equal(crc32_ieee("a", 1), 0xE8B7BE43U);
	assert_int_equal(crc32_ieee("zQWBuTSOoRi4A9spHcVY5ncnsDkxkJ", 30), 0x2A95EE6DU);
	assert_int_equal(crc32_ieee("The quick brown fox jumps over the lazy dog", 43),
	                 0x414FA339U);
}

static void test_random_base62(void **state)
{
	enum { PER = 1000, N = 62 * PER };
	char *buf = xmalloc(N);
	size_t count[62] = {0};
	uint8_t a[32] = {0};
	uint8_t z[32] = {0};
	(void)state;

	crypto_random_base62(buf, N);
	for (size_t i = 0; i < N; i++) {
		const char *p = buf[i] ? memchr(b62, buf[i], 62) : NULL;
		assert_non_null(p);
		count[p - b62]++;
	}
	/* Expected 1000 each, sd ~31: a 10-sigma band never fails by chance. */
	for (size_t i = 0; i < 62; i++) {
		assert_true(count[i] > PER - 320);
		assert_true(count[i] < PER + 320);
	}
	free(buf);

	crypto_random(a, sizeof(a));
	assert_false(ct_equal(a, z, sizeof(a)));
	crypto_random(NULL, 0);
}

static void test_bcrypt(void **state)
{
	char h[BCRYPT_HASH_LEN + 1];
	char h2[BCRYPT_HASH_LEN + 1];
	char tampered[BCRYPT_HASH_LEN + 1];
	char long_secret[BCRYPT_SECRET_MAX + 2];
	(void)state;

	assert_int_equal(bcrypt_hash("s3cret", 4, h, sizeof(h)), 0);
	assert_int_equal(strncmp(h, "$2b$04$", 7), 0);
	assert_int_equal(strlen(h), BCRYPT_HASH_LEN);
	assert_int_equal(bcrypt_verify("s3cret", h), 0);
	assert_int_equal(bcrypt_verify("s3cres", h), -1);
	assert_int_equal(bcrypt_verify("", h), -1);
	assert_int_equal(bcrypt_verify("s3cret ", h), -1);

	/* Fresh salt every time. */
	assert_int_equal(bcrypt_hash("s3cret", 4, h2, sizeof(h2)), 0);
	assert_string_not_equal(h, h2);
	assert_int_equal(bcrypt_verify("s3cret", h2), 0);

	/* A changed digest character must not verify. */
	memcpy(tampered, h, sizeof(h));
	tampered[BCRYPT_HASH_LEN - 2] = tampered[BCRYPT_HASH_LEN - 2] == 'a' ? 'b' : 'a';
	assert_int_equal(bcrypt_verify("s3cret", tampered), -1);

	/* Only $2b$ is accepted, even if crypt_rn could run the scheme. */
	memcpy(tampered, h, sizeof(h));
	tampered[2] = 'y';
	assert_int_equal(bcrypt_verify("s3cret", tampered), -1);
	assert_int_equal(bcrypt_verify("s3cret", ""), -1);
	assert_int_equal(bcrypt_verify("s3cret", "$2b$"), -1);
	assert_int_equal(bcrypt_verify("s3cret", "$2b$04$short"), -1);
	assert_int_equal(bcrypt_verify("s3cret", "*0"), -1);

	assert_int_equal(bcrypt_hash("s3cret", 3, h, sizeof(h)), -1);
	assert_int_equal(bcrypt_hash("s3cret", 32, h, sizeof(h)), -1);
	assert_int_equal(bcrypt_hash("s3cret", 4, h, BCRYPT_HASH_LEN), -1);

	memset(long_secret, 'x', sizeof(long_secret) - 1);
	long_secret[sizeof(long_secret) - 1] = '\0';
	assert_int_equal(bcrypt_hash(long_secret, 4, h, sizeof(h)), -1);
	long_secret[BCRYPT_SECRET_MAX] = '\0';
	assert_int_equal(bcrypt_hash(long_secret, 4, h, sizeof(h)), 0);
	assert_int_equal(bcrypt_verify(long_secret, h), 0);
	long_secret[BCRYPT_SECRET_MAX] = 'x';
	assert_int_equal(bcrypt_verify(long_secret, h), -1);
}

static void *dummy_thread(void *arg)
{
	(void)arg;
	return (void *)(uintptr_t)bcrypt_dummy_hash(5);
}

static void test_bcrypt_dummy(void **state)
{
	pthread_t t[4];
	void *res[4];
	const char *d;
	(void)state;

	for (size_t i = 0; i < 4; i++)
		assert_int_equal(pthread_create(&t[i], NULL, dummy_thread, NULL), 0);
	for (size_t i = 0; i < 4; i++)
		assert_int_equal(pthread_join(t[i], &res[i]), 0);
	d = bcrypt_dummy_hash(5);
	assert_non_null(d);
	for (size_t i = 0; i < 4; i++)
		assert_ptr_equal(res[i], d);
	assert_int_equal(strncmp(d, "$2b$05$", 7), 0);
	assert_int_equal(strlen(d), BCRYPT_HASH_LEN);
	assert_int_equal(bcrypt_verify("anything", d), -1);

	d = bcrypt_dummy_hash(4);
	assert_non_null(d);
	assert_int_equal(strncmp(d, "$2b$04$", 7), 0);
	assert_ptr_equal(bcrypt_dummy_hash(4), d);
	assert_null(bcrypt_dummy_hash(3));
	assert_null(bcrypt_dummy_hash(32));
}

static void test_secretbox_round_trip(void **state)
{
	uint8_t key[SECRETBOX_KEY_LEN];
	uint8_t big[1000];
	char *a = NULL;
	char *b = NULL;
	uint8_t *pt = NULL;
	size_t n = 99;
	(void)state;

	crypto_random(key, sizeof(key));
	assert_int_equal(secretbox_seal(key, "hello", 5, &a), 0);
	assert_int_equal(strlen(a), base64_encoded_len(12 + 5 + 16));
	assert_int_equal(secretbox_open(key, a, &pt, &n), 0);
	assert_int_equal(n, 5);
	assert_string_equal((char *)pt, "hello");
	free(pt);

	/* Random nonce: the same plaintext seals differently. */
	assert_int_equal(secretbox_seal(key, "hello", 5, &b), 0);
	assert_string_not_equal(a, b);
	free(a);
	free(b);

	assert_int_equal(secretbox_seal(key, NULL, 0, &a), 0);
	assert_int_equal(secretbox_open(key, a, &pt, &n), 0);
	assert_int_equal(n, 0);
	assert_int_equal(pt[0], '\0');
	free(pt);
	free(a);

	crypto_random(big, sizeof(big));
	assert_int_equal(secretbox_seal(key, big, sizeof(big), &a), 0);
	assert_int_equal(secretbox_open(key, a, &pt, &n), 0);
	assert_int_equal(n, sizeof(big));
	assert_memory_equal(pt, big, sizeof(big));
	free(pt);
	free(a);
}

static void test_secretbox_tamper(void **state)
{
	uint8_t key[SECRETBOX_KEY_LEN];
	uint8_t key2[SECRETBOX_KEY_LEN];
	uint8_t raw[12 + 11 + 16];
	size_t raw_len;
	char text[64];
	char *box = NULL;
	uint8_t *pt = (uint8_t *)"sentinel";
	size_t n = 99;
	(void)state;

	crypto_random(key, sizeof(key));
	memcpy(key2, key, sizeof(key));
	key2[31] ^= 1;
	assert_int_equal(secretbox_seal(key, "hello world", 11, &box), 0);

	assert_int_equal(secretbox_open(key2, box, &pt, &n), -1);
	assert_null(pt);
	assert_int_equal(n, 0);

	/* Every single-bit flip anywhere (nonce, ciphertext, tag) is caught. */
	assert_int_equal(base64_decode(box, strlen(box), raw, sizeof(raw), &raw_len), 0);
	assert_int_equal(raw_len, sizeof(raw));
	for (size_t i = 0; i < raw_len; i++) {
		for (unsigned bit = 0; bit < 8; bit++) {
			raw[i] ^= (uint8_t)(1U << bit);
			assert_int_equal(base64_encode(raw, raw_len, text, sizeof(text)), 0);
			assert_int_equal(secretbox_open(key, text, &pt, &n), -1);
			assert_null(pt);
			raw[i] ^= (uint8_t)(1U << bit);
		}
	}
	/* Truncation, extension and junk. */
	for (size_t len = 0; len < raw_len; len++) {
		assert_int_equal(base64_encode(raw, len, text, sizeof(text)), 0);
		assert_int_equal(secretbox_open(key, text, &pt, &n), -1);
	}
	assert_int_equal(secretbox_open(key, "", &pt, &n), -1);
	assert_int_equal(secretbox_open(key, "not base64!", &pt, &n), -1);
	assert_true(strlen(box) + 5 <= sizeof(text));
	memcpy(text, box, strlen(box));
	memcpy(text + strlen(box), "AAAA", 5);
	assert_int_equal(secretbox_open(key, text, &pt, &n), -1);

	/* The untouched box still opens. */
	assert_int_equal(secretbox_open(key, box, &pt, &n), 0);
	assert_memory_equal(pt, "hello world", 11);
	free(pt);
	free(box);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_sha256_abc),
	    cmocka_unit_test(test_sha256_incremental),
	    cmocka_unit_test(test_hmac_rfc4231_case2),
	    cmocka_unit_test(test_sha1_fips180),
	    cmocka_unit_test(test_hmac_key_matches_one_shot),
	    cmocka_unit_test(test_base64_rfc4648),
	    cmocka_unit_test(test_base64_round_trip),
	    cmocka_unit_test(test_base64_every_char),
	    cmocka_unit_test(test_base64_invalid),
	    cmocka_unit_test(test_base64url),
	    cmocka_unit_test(test_base64url_invalid),
	    cmocka_unit_test(test_ct_equal),
	    cmocka_unit_test(test_ct_streq),
	    cmocka_unit_test(test_crc32),
	    cmocka_unit_test(test_random_base62),
	    cmocka_unit_test(test_bcrypt),
	    cmocka_unit_test(test_bcrypt_dummy),
	    cmocka_unit_test(test_secretbox_round_trip),
	    cmocka_unit_test(test_secretbox_tamper),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
