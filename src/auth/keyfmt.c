/*
 * keyfmt.c: parsing, validation and generation of API key strings.
 *
 * keyfmt_parse() runs on every authenticated request, so it is one pass over
 * at most KEYFMT_MAX_LEN bytes with range checks and no allocation. The
 * total length is fixed once the prefix length is known, so after that
 * single check every later index is in bounds without further tests. The
 * input is what the client sent, so branching on its characters leaks
 * nothing the client does not already know; the only secret-dependent
 * comparison that matters (against the stored bcrypt hash) happens elsewhere.
 */
#include "auth/keyfmt.h"

#include <stdint.h>
#include <string.h>

#include "crypto/crc32.h"
#include "crypto/ct.h"
#include "crypto/random.h"

static const char base62_alphabet[] =
    "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

static const char *const env_names[] = {
    [KEY_ENV_LIVE] = "live",
    [KEY_ENV_TEST] = "test",
    [KEY_ENV_ROOT] = "root",
};

#define ENV_COUNT (sizeof(env_names) / sizeof(env_names[0]))

static bool is_lower(unsigned char c)
{
	return c >= 'a' && c <= 'z';
}

static bool is_base62(unsigned char c)
{
	return (c >= '0' && c <= '9') || (c >= 'A' && c <= 'Z') || is_lower(c);
}

/* Crockford base32, upper case only: digits and A-Z without I, L, O, U. */
static bool is_crockford(unsigned char c)
{
	if (c >= '0' && c <= '9')
		return true;
	return c >= 'A' && c <= 'Z' && c != 'I' && c != 'L' && c != 'O' && c != 'U';
}

const char *key_env_name(enum key_env env)
{
	if ((unsigned)env >= ENV_COUNT)
		return NULL;
	return env_names[env];
}

/* Match exactly KEYFMT_ENV_LEN bytes at s against the env names. */
static int env_parse_n(const char *s, enum key_env *out)
{
	for (size_t i = 0; i < ENV_COUNT; i++) {
		if (memcmp(s, env_names[i], KEYFMT_ENV_LEN) == 0) {
			*out = (enum key_env)i;
			return 0;
		}
	}
	return -1;
}

int key_env_parse(const char *s, enum key_env *out)
{
	if (!s || strnlen(s, KEYFMT_ENV_LEN + 1) != KEYFMT_ENV_LEN)
		return -1;
	return env_parse_n(s, out);
}

bool keyfmt_prefix_valid(const char *prefix)
{
	size_t n;

	if (!prefix)
		return false;
	n = strnlen(prefix, KEYFMT_PREFIX_MAX + 1);
	if (n < KEYFMT_PREFIX_MIN || n > KEYFMT_PREFIX_MAX)
		return false;
	for (size_t i = 0; i < n; i++) {
		if (!is_lower((unsigned char)prefix[i]))
			return false;
	}
	return true;
}

bool keyfmt_key_id_valid(const char *s, size_t len)
{
	/* A ULID is 128 bits in 130: the first character carries 3 bits. */
	if (!s || len != KEYFMT_KEY_ID_LEN || s[0] < '0' || s[0] > '7')
		return false;
	for (size_t i = 1; i < KEYFMT_KEY_ID_LEN; i++) {
		if (!is_crockford((unsigned char)s[i]))
			return false;
	}
	return true;
}

int keyfmt_named_key_id(const char *s, size_t len, char out[KEYFMT_KEY_ID_LEN + 1])
{
	const size_t tag = 1 + KEYFMT_ENV_LEN + 1; /* "_live_" */
	if (len > KEYFMT_MAX_LEN)
		len = KEYFMT_MAX_LEN;
	for (size_t i = 0; i + tag + KEYFMT_KEY_ID_LEN <= len; i++) {
		if (s[i] != '_' || s[i + tag - 1] != '_')
			continue;
		char env[KEYFMT_ENV_LEN + 1];
		enum key_env e;
		memcpy(env, s + i + 1, KEYFMT_ENV_LEN);
		env[KEYFMT_ENV_LEN] = '\0';
		if (key_env_parse(env, &e) < 0)
			continue;
		if (!keyfmt_key_id_valid(s + i + tag, KEYFMT_KEY_ID_LEN))
			return -1;
		memcpy(out, s + i + tag, KEYFMT_KEY_ID_LEN);
		out[KEYFMT_KEY_ID_LEN] = '\0';
		return 0;
	}
	return -1;
}

void keyfmt_checksum(const char *random, size_t n, char out[KEYFMT_CHECKSUM_LEN + 1])
{
	uint32_t crc = crc32_ieee(random, n);

	/* 62^6 > 2^32, so six digits always hold the whole CRC. */
	for (size_t i = KEYFMT_CHECKSUM_LEN; i-- > 0;) {
		out[i] = base62_alphabet[crc % 62U];
		crc /= 62U;
	}
	out[KEYFMT_CHECKSUM_LEN] = '\0';
}

int keyfmt_parse(const char *s, size_t len, const char *expected_prefix, struct api_key_parts *out)
{
	const char *env;
	const char *id;
	const char *sec;
	enum key_env e;
	char sum[KEYFMT_CHECKSUM_LEN + 1];
	size_t p = 0;
	int rc = -1;

	memset(out, 0, sizeof(*out));
	if (!s || len < KEYFMT_LEN(KEYFMT_PREFIX_MIN) || len > KEYFMT_MAX_LEN)
		goto out;

	/* len >= KEYFMT_LEN(2) > KEYFMT_PREFIX_MAX, so s[p] is in bounds. */
	while (p < KEYFMT_PREFIX_MAX && is_lower((unsigned char)s[p]))
		p++;
	if (p < KEYFMT_PREFIX_MIN || s[p] != '_' || len != KEYFMT_LEN(p))
		goto out;
	if (expected_prefix && (strnlen(expected_prefix, KEYFMT_PREFIX_MAX + 1) != p ||
	                        memcmp(expected_prefix, s, p) != 0))
		goto out;

	/* From here on every index is below len = KEYFMT_LEN(p). */
	env = s + p + 1;
	if (env_parse_n(env, &e) != 0 || env[KEYFMT_ENV_LEN] != '_')
		goto out;
	id = env + KEYFMT_ENV_LEN + 1;
	if (!keyfmt_key_id_valid(id, KEYFMT_KEY_ID_LEN) || id[KEYFMT_KEY_ID_LEN] != '.')
		goto out;
	sec = id + KEYFMT_KEY_ID_LEN + 1;
	for (size_t i = 0; i < KEYFMT_SECRET_LEN; i++) {
		if (!is_base62((unsigned char)sec[i]))
			goto out;
	}
	keyfmt_checksum(sec, KEYFMT_RANDOM_LEN, sum);
	if (!ct_equal(sum, sec + KEYFMT_RANDOM_LEN, KEYFMT_CHECKSUM_LEN))
		goto out;

	memcpy(out->prefix, s, p);
	out->prefix[p] = '\0';
	out->env = e;
	memcpy(out->key_id, id, KEYFMT_KEY_ID_LEN);
	out->key_id[KEYFMT_KEY_ID_LEN] = '\0';
	memcpy(out->secret, sec, KEYFMT_SECRET_LEN);
	out->secret[KEYFMT_SECRET_LEN] = '\0';
	rc = 0;
out:
	explicit_bzero(sum, sizeof(sum));
	return rc;
}

void keyfmt_new_secret(char secret[KEYFMT_SECRET_LEN + 1])
{
	crypto_random_base62(secret, KEYFMT_RANDOM_LEN);
	keyfmt_checksum(secret, KEYFMT_RANDOM_LEN, secret + KEYFMT_RANDOM_LEN);
}

int keyfmt_generate(const char *prefix, enum key_env env, const char *key_id, char *out, size_t cap,
                    struct api_key_parts *parts_out)
{
	char secret[KEYFMT_SECRET_LEN + 1];
	const char *env_name = key_env_name(env);
	size_t plen;
	size_t o = 0;

	if (!keyfmt_prefix_valid(prefix) || !env_name || !key_id ||
	    strnlen(key_id, KEYFMT_KEY_ID_LEN + 1) != KEYFMT_KEY_ID_LEN ||
	    !keyfmt_key_id_valid(key_id, KEYFMT_KEY_ID_LEN))
		return -1;
	plen = strlen(prefix);
	if (!out || cap < KEYFMT_LEN(plen) + 1)
		return -1;

	keyfmt_new_secret(secret);
	memcpy(out + o, prefix, plen);
	o += plen;
	out[o++] = '_';
	memcpy(out + o, env_name, KEYFMT_ENV_LEN);
	o += KEYFMT_ENV_LEN;
	out[o++] = '_';
	memcpy(out + o, key_id, KEYFMT_KEY_ID_LEN);
	o += KEYFMT_KEY_ID_LEN;
	out[o++] = '.';
	memcpy(out + o, secret, KEYFMT_SECRET_LEN);
	o += KEYFMT_SECRET_LEN;
	out[o] = '\0';

	if (parts_out) {
		memcpy(parts_out->prefix, prefix, plen + 1);
		parts_out->env = env;
		memcpy(parts_out->key_id, key_id, KEYFMT_KEY_ID_LEN + 1);
		memcpy(parts_out->secret, secret, sizeof(secret));
	}
	explicit_bzero(secret, sizeof(secret));
	return 0;
}

void keyfmt_start(const char *key, char out[KEYFMT_START_LEN + 1])
{
	size_t n = strnlen(key, KEYFMT_START_LEN);

	memcpy(out, key, n);
	out[n] = '\0';
}
