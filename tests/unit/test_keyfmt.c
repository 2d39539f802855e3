/*
 * test_keyfmt.c: unit tests for src/auth/keyfmt: the GitHub checksum vector
 * (tests/vectors/key-checksum.json), generate/parse round trips, and a table
 * of malformed keys that must all be rejected. Every parse gets a heap copy
 * of exactly len bytes with no NUL after it, so ASan reports any read past
 * len.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth/keyfmt.h"
#include "core/alloc.h"
#include "crypto/random.h"

#define KEY_ID "01HXZ9G7KMV2QX8Y1S5RJW3B7T"
#define RANDOM "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQ"
#define SUM    "4FLuWK" /* base62(crc32(RANDOM)), computed with zlib */
#define SECRET RANDOM SUM
#define KEY    "pcl_live_" KEY_ID "." SECRET

/* Parse the len bytes of s from an exact-size heap copy. */
static int parse_exact(const char *s, size_t len, const char *expected, struct api_key_parts *out)
{
	char *copy = xmalloc(len);
	int rc;

	memcpy(copy, s, len);
	rc = keyfmt_parse(copy, len, expected, out);
	free(copy);
	return rc;
}

static void test_checksum_vector(void **state)
{
	const char *dir = getenv("PORTCULLIS_VECTORS");
	char path[4096];
	json_error_t err;
	json_t *root;
	json_t *ex;
	const char *random;
	const char *checksum;
	const char *token;
	char out[KEYFMT_CHECKSUM_LEN + 1];
	(void)state;

	assert_non_null(dir);
	assert_true((size_t)snprintf(path, sizeof(path), "%s/key-checksum.json", dir) <
	            sizeof(path));
	root = json_load_file(path, 0, &err);
	if (!root)
		fail_msg("%s:%d: %s", path, err.line, err.text);
	ex = json_object_get(root, "example");
	assert_non_null(ex);
	random = json_string_value(json_object_get(ex, "random"));
	checksum = json_string_value(json_object_get(ex, "checksum"));
	token = json_string_value(json_object_get(ex, "token"));
	assert_non_null(random);
	assert_non_null(checksum);
	assert_non_null(token);

	keyfmt_checksum(random, strlen(random), out);
	assert_string_equal(out, checksum);
	assert_string_equal(out, "0mLq17");
	/* The token is "ghp_" + random + checksum. */
	assert_int_equal(strlen(token), 4 + strlen(random) + strlen(checksum));
	assert_memory_equal(token + 4, random, strlen(random));
	assert_string_equal(token + 4 + strlen(random), checksum);

	/* The alphabet listed in the vector file is ours. */
	assert_string_equal(json_string_value(json_object_get(root, "alphabet")),
	                    "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz");
	json_decref(root);

	keyfmt_checksum(RANDOM, KEYFMT_RANDOM_LEN, out);
	assert_string_equal(out, SUM);
	keyfmt_checksum("", 0, out);
	assert_string_equal(out, "000000");
}

static void test_parse_known_key(void **state)
{
	struct api_key_parts p;
	(void)state;

	assert_int_equal(strlen(KEY), KEYFMT_LEN(3));
	assert_int_equal(parse_exact(KEY, strlen(KEY), "pcl", &p), 0);
	assert_string_equal(p.prefix, "pcl");
	assert_int_equal(p.env, KEY_ENV_LIVE);
	assert_string_equal(p.key_id, KEY_ID);
	assert_string_equal(p.secret, SECRET);
	assert_int_equal(parse_exact(KEY, strlen(KEY), NULL, &p), 0);
}

static void test_generate_parse_round_trip(void **state)
{
	static const char *const prefixes[] = {"ab", "pcl", "abcdefgh", "zz"};
	static const enum key_env envs[] = {KEY_ENV_LIVE, KEY_ENV_TEST, KEY_ENV_ROOT};
	char key[KEYFMT_MAX_LEN + 1];
	char prev[KEYFMT_MAX_LEN + 1] = "";
	struct api_key_parts gen;
	struct api_key_parts got;
	(void)state;

	for (size_t i = 0; i < sizeof(prefixes) / sizeof(prefixes[0]); i++) {
		for (size_t e = 0; e < 3; e++) {
			assert_int_equal(
			    keyfmt_generate(prefixes[i], envs[e], KEY_ID, key, sizeof(key), &gen),
			    0);
			assert_int_equal(strlen(key), KEYFMT_LEN(strlen(prefixes[i])));
			assert_string_not_equal(key, prev);
			memcpy(prev, key, sizeof(key));

			assert_int_equal(parse_exact(key, strlen(key), prefixes[i], &got), 0);
			assert_string_equal(got.prefix, prefixes[i]);
			assert_int_equal(got.env, envs[e]);
			assert_string_equal(got.key_id, KEY_ID);
			assert_string_equal(got.secret, gen.secret);
			assert_string_equal(gen.prefix, prefixes[i]);
			assert_int_equal(gen.env, envs[e]);
			assert_string_equal(gen.key_id, KEY_ID);
			assert_int_equal(strlen(gen.secret), KEYFMT_SECRET_LEN);
			/* The env name sits right after the prefix. */
			assert_memory_equal(key + strlen(prefixes[i]) + 1, key_env_name(envs[e]),
			                    4);
		}
	}
	/* parts_out is optional; the exact capacity is enough. */
	assert_int_equal(keyfmt_generate("pcl", KEY_ENV_TEST, KEY_ID, key, KEYFMT_LEN(3) + 1, NULL),
	                 0);
	assert_int_equal(parse_exact(key, strlen(key), "pcl", &got), 0);
}

static void test_generate_invalid(void **state)
{
	char key[KEYFMT_MAX_LEN + 1];
	struct api_key_parts p;
	(void)state;

	memset(key, 'Z', sizeof(key));
	assert_int_equal(keyfmt_generate("p", KEY_ENV_LIVE, KEY_ID, key, sizeof(key), &p), -1);
	assert_int_equal(keyfmt_generate("abcdefghi", KEY_ENV_LIVE, KEY_ID, key, sizeof(key), &p),
	                 -1);
	assert_int_equal(keyfmt_generate("Pcl", KEY_ENV_LIVE, KEY_ID, key, sizeof(key), &p), -1);
	assert_int_equal(keyfmt_generate(NULL, KEY_ENV_LIVE, KEY_ID, key, sizeof(key), &p), -1);
	assert_int_equal(keyfmt_generate("pcl", (enum key_env)7, KEY_ID, key, sizeof(key), &p), -1);
	assert_int_equal(
	    keyfmt_generate("pcl", KEY_ENV_LIVE, "01HXZ9G7KMV2QX8Y1S5RJW3B7", key, sizeof(key), &p),
	    -1);
	assert_int_equal(keyfmt_generate("pcl", KEY_ENV_LIVE, "01HXZ9G7KMV2QX8Y1S5RJW3B7TT", key,
	                                 sizeof(key), &p),
	                 -1);
	assert_int_equal(keyfmt_generate("pcl", KEY_ENV_LIVE, "81HXZ9G7KMV2QX8Y1S5RJW3B7T", key,
	                                 sizeof(key), &p),
	                 -1);
	assert_int_equal(keyfmt_generate("pcl", KEY_ENV_LIVE, KEY_ID, key, KEYFMT_LEN(3), &p), -1);
	assert_int_equal(key[0], 'Z'); /* untouched on failure */
}

static void test_new_secret(void **state)
{
	char a[KEYFMT_SECRET_LEN + 1];
	char b[KEYFMT_SECRET_LEN + 1];
	char sum[KEYFMT_CHECKSUM_LEN + 1];
	(void)state;

	keyfmt_new_secret(a);
	keyfmt_new_secret(b);
	assert_int_equal(strlen(a), KEYFMT_SECRET_LEN);
	assert_string_not_equal(a, b);
	keyfmt_checksum(a, KEYFMT_RANDOM_LEN, sum);
	assert_string_equal(a + KEYFMT_RANDOM_LEN, sum);
}

static void test_env(void **state)
{
	enum key_env e = KEY_ENV_ROOT;
	(void)state;

	assert_string_equal(key_env_name(KEY_ENV_LIVE), "live");
	assert_string_equal(key_env_name(KEY_ENV_TEST), "test");
	assert_string_equal(key_env_name(KEY_ENV_ROOT), "root");
	assert_null(key_env_name((enum key_env)3));
	assert_null(key_env_name((enum key_env) - 1));
	assert_int_equal(key_env_parse("live", &e), 0);
	assert_int_equal(e, KEY_ENV_LIVE);
	assert_int_equal(key_env_parse("test", &e), 0);
	assert_int_equal(e, KEY_ENV_TEST);
	assert_int_equal(key_env_parse("root", &e), 0);
	assert_int_equal(e, KEY_ENV_ROOT);
	assert_int_equal(key_env_parse("prod", &e), -1);
	assert_int_equal(key_env_parse("Live", &e), -1);
	assert_int_equal(key_env_parse("liv", &e), -1);
	assert_int_equal(key_env_parse("lives", &e), -1);
	assert_int_equal(key_env_parse("", &e), -1);
	assert_int_equal(key_env_parse(NULL, &e), -1);
}

static void test_prefix_and_id_validators(void **state)
{
	(void)state;
	assert_true(keyfmt_prefix_valid("pcl"));
	assert_true(keyfmt_prefix_valid("ab"));
	assert_true(keyfmt_prefix_valid("abcdefgh"));
	assert_false(keyfmt_prefix_valid("a"));
	assert_false(keyfmt_prefix_valid(""));
	assert_false(keyfmt_prefix_valid("abcdefghi"));
	assert_false(keyfmt_prefix_valid("pCl"));
	assert_false(keyfmt_prefix_valid("p_l"));
	assert_false(keyfmt_prefix_valid(NULL));

	assert_true(keyfmt_key_id_valid(KEY_ID, 26));
	assert_true(keyfmt_key_id_valid("7ZZZZZZZZZZZZZZZZZZZZZZZZZ", 26));
	assert_true(keyfmt_key_id_valid("00000000000000000000000000", 26));
	assert_false(keyfmt_key_id_valid("8ZZZZZZZZZZZZZZZZZZZZZZZZZ", 26));
	assert_false(keyfmt_key_id_valid(KEY_ID, 25));
	assert_false(keyfmt_key_id_valid(NULL, 26));
}

struct bad_case {
	const char *name;
	const char *s;
	size_t len; /* 0: strlen(s) */
	const char *expected_prefix;
};

#define ID_25 "01HXZ9G7KMV2QX8Y1S5RJW3B7"
#define S_48  RANDOM "4FLuW"

static const struct bad_case bad_cases[] = {
    {"empty", "", 0, NULL},
    {"prefix too short", "p_live_" KEY_ID "." SECRET, 0, NULL},
    {"prefix too long", "abcdefghi_live_" KEY_ID "." SECRET, 0, NULL},
    {"prefix upper case", "PCL_live_" KEY_ID "." SECRET, 0, NULL},
    {"prefix mixed case", "pCl_live_" KEY_ID "." SECRET, 0, NULL},
    {"prefix digit", "pc1_live_" KEY_ID "." SECRET, 0, NULL},
    {"no prefix", "_live_" KEY_ID "." SECRET, 0, NULL},
    {"missing first underscore", "pcllive_" KEY_ID "." SECRET, 0, NULL},
    {"missing second underscore", "pcl_live" KEY_ID "." SECRET, 0, NULL},
    {"dash separators", "pcl-live-" KEY_ID "." SECRET, 0, NULL},
    {"env prod", "pcl_prod_" KEY_ID "." SECRET, 0, NULL},
    {"env upper case", "pcl_LIVE_" KEY_ID "." SECRET, 0, NULL},
    {"env short", "pcl_liv_" KEY_ID "." SECRET, 0, NULL},
    {"key id 25 chars", "pcl_live_" ID_25 "." SECRET, 0, NULL},
    {"key id 27 chars", "pcl_live_" KEY_ID "Z." SECRET, 0, NULL},
    {"key id with I", "pcl_live_01HXZ9G7KMV2QX8Y1S5RJW3BIT." SECRET, 0, NULL},
    {"key id with L", "pcl_live_01HXZ9G7KMV2QX8Y1S5RJW3BLT." SECRET, 0, NULL},
    {"key id with O", "pcl_live_01HXZ9G7KMV2QX8Y1S5RJW3BOT." SECRET, 0, NULL},
    {"key id with U", "pcl_live_01HXZ9G7KMV2QX8Y1S5RJW3BUT." SECRET, 0, NULL},
    {"key id lower case", "pcl_live_01hxz9g7kmv2qx8y1s5rjw3b7t." SECRET, 0, NULL},
    {"key id one lower char", "pcl_live_01HXZ9G7KMV2QX8Y1S5RJW3B7t." SECRET, 0, NULL},
    {"key id first char 8", "pcl_live_81HXZ9G7KMV2QX8Y1S5RJW3B7T." SECRET, 0, NULL},
    {"key id with dash", "pcl_live_01HXZ9G7-MV2QX8Y1S5RJW3B7T." SECRET, 0, NULL},
    {"missing dot", "pcl_live_" KEY_ID SECRET, 0, NULL},
    {"underscore for dot", "pcl_live_" KEY_ID "_" SECRET, 0, NULL},
    {"two dots", "pcl_live_" KEY_ID ".." SECRET, 0, NULL},
    {"no secret", "pcl_live_" KEY_ID ".", 0, NULL},
    {"secret 48 chars", "pcl_live_" KEY_ID "." S_48, 0, NULL},
    {"secret 50 chars", "pcl_live_" KEY_ID "." SECRET "0", 0, NULL},
    {"secret with dash", "pcl_live_" KEY_ID ".abcdefghijklmnopqrstuvwxyz-BCDEFGHIJKLMNOPQ" SUM, 0,
     NULL},
    {"secret with plus", "pcl_live_" KEY_ID "." RANDOM "4FL+WK", 0, NULL},
    {"secret with space", "pcl_live_" KEY_ID ".abcdefghijklm opqrstuvwxyzABCDEFGHIJKLMNOPQ" SUM, 0,
     NULL},
    {"secret with high byte",
     "pcl_live_" KEY_ID ".abcdefghijklm\xc3opqrstuvwxyzABCDEFGHIJKLMNOPQ" SUM, 0, NULL},
    {"flipped checksum char", "pcl_live_" KEY_ID "." RANDOM "4FLuWL", 0, NULL},
    {"checksum case flipped", "pcl_live_" KEY_ID "." RANDOM "4fLuWK", 0, NULL},
    {"flipped random char", "pcl_live_" KEY_ID ".abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPR" SUM,
     0, NULL},
    {"swapped random chars", "pcl_live_" KEY_ID ".bacdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQ" SUM,
     0, NULL},
    {"trailing newline", KEY "\n", 0, NULL},
    {"trailing space", KEY " ", 0, NULL},
    {"leading space", " " KEY, 0, NULL},
    {"bearer scheme included", "Bearer " KEY, 0, NULL},
    {"embedded NUL in secret",
     "pcl_live_" KEY_ID ".abcdefghijklm\0opqrstuvwxyzABCDEFGHIJKLMNOPQ" SUM,
     sizeof("pcl_live_" KEY_ID "." SECRET) - 1, NULL},
    {"trailing NUL counted", KEY "\0", sizeof(KEY), NULL},
    {"embedded NUL in prefix", "p\0l_live_" KEY_ID "." SECRET, sizeof(KEY) - 1, NULL},
    {"len one short", KEY, sizeof(KEY) - 2, NULL},
    {"wrong expected prefix", KEY, 0, "abc"},
    {"expected prefix shorter", KEY, 0, "pc"},
    {"expected prefix longer", KEY, 0, "pclx"},
    {"expected prefix empty", KEY, 0, ""},
    {"over-long input", KEY KEY, 0, NULL},
    {"one over max", "abcdefgh_live_" KEY_ID "." SECRET "0", 0, NULL},
};

static void test_parse_rejects_malformed(void **state)
{
	struct api_key_parts p;
	struct api_key_parts zero;
	(void)state;

	memset(&zero, 0, sizeof(zero));
	assert_true(sizeof(bad_cases) / sizeof(bad_cases[0]) >= 20);
	for (size_t i = 0; i < sizeof(bad_cases) / sizeof(bad_cases[0]); i++) {
		const struct bad_case *c = &bad_cases[i];
		size_t len = c->len ? c->len : strlen(c->s);

		memset(&p, 'x', sizeof(p));
		if (parse_exact(c->s, len, c->expected_prefix, &p) != -1)
			fail_msg("accepted malformed key: %s", c->name);
		if (memcmp(&p, &zero, sizeof(p)) != 0)
			fail_msg("parts not zeroed on failure: %s", c->name);
	}
	/* The checksum is right but the prefix is not what is expected. */
	assert_int_equal(parse_exact(KEY, strlen(KEY), "pcl", &p), 0);
	assert_int_equal(keyfmt_parse(NULL, 10, NULL, &p), -1);
	assert_int_equal(keyfmt_parse(KEY, 0, NULL, &p), -1);
}

/*
 * Random single-byte mutations of a valid key: parse must never read out of
 * bounds (ASan) and, when it accepts, the parts must rebuild the exact input.
 */
static void test_parse_mutations(void **state)
{
	char key[KEYFMT_MAX_LEN + 2];
	char rebuilt[KEYFMT_MAX_LEN + 1];
	uint8_t rnd[3];
	struct api_key_parts p;
	size_t len = strlen(KEY);
	size_t accepted = 0;
	(void)state;

	for (size_t i = 0; i < 20000; i++) {
		memcpy(key, KEY, len);
		crypto_random(rnd, sizeof(rnd));
		size_t pos = rnd[0] % len;
		size_t mlen = len;
		key[pos] = (char)rnd[1];
		if (rnd[2] % 4 == 0)
			mlen = len - 1 - rnd[2] % 3; /* truncate too */
		if (parse_exact(key, mlen, NULL, &p) != 0)
			continue;
		accepted++;
		int n = snprintf(rebuilt, sizeof(rebuilt), "%s_%s_%s.%s", p.prefix,
		                 key_env_name(p.env), p.key_id, p.secret);
		assert_true(n > 0 && (size_t)n == mlen);
		assert_memory_equal(rebuilt, key, mlen);
	}
	/* Mutations of prefix letters and key id characters are still valid keys. */
	assert_true(accepted > 0);
}

/* The key id a malformed credential names, for the request log's refused attempts. */
static void test_named_key_id(void **state)
{
	(void)state;
	char id[KEYFMT_KEY_ID_LEN + 1];
	const char *cut = "pc_live_01ARZ3NDEKTSV4RRFFQ69G5FAV.abc"; /* secret cut short */
	assert_int_equal(keyfmt_named_key_id(cut, strlen(cut), id), 0);
	assert_string_equal(id, "01ARZ3NDEKTSV4RRFFQ69G5FAV");
	const char *bare = "xx_test_01ARZ3NDEKTSV4RRFFQ69G5FAV"; /* no secret at all */
	assert_int_equal(keyfmt_named_key_id(bare, strlen(bare), id), 0);
	assert_string_equal(id, "01ARZ3NDEKTSV4RRFFQ69G5FAV");
	/* Not a key id: lower case, an 'U', too short, or no env tag. */
	const char *bad[] = {"pc_live_01arz3ndektsv4rrffq69g5fav.x",
	                     "pc_live_01ARZ3NDEKTSV4RRFFQ69G5FAU.x", "pc_live_01ARZ3.x",
	                     "pc_prod_01ARZ3NDEKTSV4RRFFQ69G5FAV.x", ""};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
		assert_int_equal(keyfmt_named_key_id(bad[i], strlen(bad[i]), id), -1);
	/* Bounded by len: nothing past it is read. */
	assert_int_equal(keyfmt_named_key_id(cut, 20, id), -1);
}

static void test_start(void **state)
{
	char out[KEYFMT_START_LEN + 1];
	(void)state;

	keyfmt_start(KEY, out);
	assert_string_equal(out, "pcl_live_01H");
	keyfmt_start("short", out);
	assert_string_equal(out, "short");
	keyfmt_start("", out);
	assert_string_equal(out, "");
	/* Even with the longest prefix the start stays clear of the secret. */
	assert_true(KEYFMT_START_LEN < KEYFMT_LEN(KEYFMT_PREFIX_MIN) - KEYFMT_SECRET_LEN);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_checksum_vector),
	    cmocka_unit_test(test_parse_known_key),
	    cmocka_unit_test(test_generate_parse_round_trip),
	    cmocka_unit_test(test_generate_invalid),
	    cmocka_unit_test(test_new_secret),
	    cmocka_unit_test(test_env),
	    cmocka_unit_test(test_prefix_and_id_validators),
	    cmocka_unit_test(test_parse_rejects_malformed),
	    cmocka_unit_test(test_parse_mutations),
	    cmocka_unit_test(test_start),
	    cmocka_unit_test(test_named_key_id),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
