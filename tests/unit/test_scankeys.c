/*
 * test_scankeys.c: unit tests for src/delivery/scankeys.c's parser of the
 * published key set: GitHub's own document shape (the key of the published
 * example, tests/vectors/github-secret-scanning.json) is accepted with its
 * is_current flags, and a set is refused whole for any bad entry: not JSON,
 * no or empty public_keys, a key that is not PEM P-256, a bad or repeated
 * key_identifier, a non-boolean is_current, too many keys.
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

#include "delivery/scankeys.h"

#include "vectors.h"

static struct store_scan_key keys[STORE_SCAN_KEYS_MAX];

/* The published key set of the vectors file, with members replaced or added. */
static char *key_set(const char *member, json_t *value, size_t copies)
{
	json_t *root = vectors_load("github-secret-scanning.json");
	json_t *set = json_deep_copy(json_object_get(root, "public_keys"));
	json_t *arr = json_object_get(set, "public_keys");
	json_t *first = json_array_get(arr, 0);
	if (member)
		json_object_set(first, member, value);
	for (size_t i = 1; i < copies; i++) {
		json_t *c = json_deep_copy(first);
		char id[32];
		snprintf(id, sizeof id, "k%zu", i);
		json_object_set_new(c, "key_identifier", json_string(id));
		json_array_append_new(arr, c);
	}
	char *text = json_dumps(set, JSON_COMPACT);
	json_decref(set);
	json_decref(root);
	json_decref(value);
	return text;
}

static int parse(const char *text, int *n)
{
	char err[256] = "";
	int rc = scankeys_parse(text, strlen(text), keys, n, err, sizeof err);
	if (rc < 0)
		assert_true(err[0] != '\0');
	return rc;
}

static void test_the_published_set_is_accepted(void **state)
{
	int n = -1;
	(void)state;
	char *text = key_set(NULL, NULL, 1);
	assert_int_equal(parse(text, &n), 0);
	assert_int_equal(n, 1);
	assert_string_equal(keys[0].key_identifier,
	                    "bcb53661c06b4728e59d897fb6165d5c9cda0fd9cdf9d09ead458168deb7518c");
	assert_non_null(strstr(keys[0].public_key, "-----BEGIN PUBLIC KEY-----"));
	assert_true(keys[0].is_current);
	free(text);
	/* is_current false, or absent, is kept as not current. */
	text = key_set("is_current", json_false(), 2);
	assert_int_equal(parse(text, &n), 0);
	assert_int_equal(n, 2);
	assert_false(keys[0].is_current);
	assert_string_equal(keys[1].key_identifier, "k1");
	free(text);
}

static void test_a_set_with_one_bad_entry_is_refused_whole(void **state)
{
	int n = -1;
	(void)state;
	struct {
		const char *member;
		json_t *value;
	} bad[] = {
	    {"key", json_string("-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n")},
	    {"key", json_integer(1)},
	    {"key_identifier", json_string("")},
	    {"key_identifier", json_string("has space")},
	    {"key_identifier", json_string("../etc")},
	    {"is_current", json_string("yes")},
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		char *text = key_set(bad[i].member, bad[i].value, 2);
		assert_int_equal(parse(text, &n), -1);
		assert_int_equal(n, 0);
		free(text);
	}
	const char *docs[] = {"",
	                      "not json",
	                      "[]",
	                      "{}",
	                      "{\"public_keys\":[]}",
	                      "{\"public_keys\":{}}",
	                      "{\"public_keys\":[1]}"};
	for (size_t i = 0; i < sizeof docs / sizeof docs[0]; i++)
		assert_int_equal(parse(docs[i], &n), -1);
}

static void test_repeated_ids_and_too_many_keys_are_refused(void **state)
{
	int n = -1;
	(void)state;
	char *text = key_set(NULL, NULL, STORE_SCAN_KEYS_MAX);
	assert_int_equal(parse(text, &n), 0);
	assert_int_equal(n, STORE_SCAN_KEYS_MAX);
	free(text);
	text = key_set(NULL, NULL, STORE_SCAN_KEYS_MAX + 1);
	assert_int_equal(parse(text, &n), -1);
	free(text);
	/* Two entries with the same identifier (the copy is named k1 too). */
	text = key_set("key_identifier", json_string("k1"), 2);
	assert_int_equal(parse(text, &n), -1);
	free(text);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_the_published_set_is_accepted),
	    cmocka_unit_test(test_a_set_with_one_bad_entry_is_refused_whole),
	    cmocka_unit_test(test_repeated_ids_and_too_many_keys_are_refused),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
