/*
 * test_idempotency.c: unit tests for src/policy/idempotency.c: which
 * Idempotency-Key values are accepted, request fingerprints against answers
 * computed independently (Python hashlib), and the kv key naming.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <string.h>

#include "policy/idempotency.h"

static void test_key_valid(void **state)
{
	char buf[IDEM_KEY_MAX + 2];
	(void)state;

	assert_true(idem_key_valid("a", 1));
	assert_true(idem_key_valid("order-12345", 11));
	assert_true(idem_key_valid("!~{}\"'\\", 7)); /* every visible character counts */
	assert_false(idem_key_valid("", 0));
	assert_false(idem_key_valid(NULL, 0));
	assert_false(idem_key_valid("a b", 3));
	assert_false(idem_key_valid("a\tb", 3));
	assert_false(idem_key_valid("ab\x7f", 3));
	assert_false(idem_key_valid("a\0b", 3));
	assert_false(idem_key_valid("caf\xc3\xa9", 5)); /* no UTF-8 */
	assert_false(idem_key_valid("\r\n", 2));

	memset(buf, 'k', sizeof(buf));
	assert_true(idem_key_valid(buf, IDEM_KEY_MAX));
	assert_false(idem_key_valid(buf, IDEM_KEY_MAX + 1));
	/* Only the len bytes are looked at. */
	assert_true(idem_key_valid("abc def", 3));
}

static void test_fingerprint(void **state)
{
	char fp[65];
	(void)state;

	idem_fingerprint("POST", "/v1/things", "{\"a\":1}", 7, fp);
	assert_string_equal(fp, "62fd121fa32bdd7986c7de348f97dd7167cfa897efa9307efd1e566e12cfa97e");
	idem_fingerprint("POST", "/v1/things", NULL, 0, fp);
	assert_string_equal(fp, "2e7ec52b16123ff96b84bd59b7835f043947f0dc9e3c64db89197adbf4113be7");
	/* Bodies are bytes: a NUL inside counts. */
	idem_fingerprint("PATCH", "/v1/x", "a\0b", 3, fp);
	assert_string_equal(fp, "885ef2b1c89493053205a92a03b5801351036e60c63e681c1994d102a604c87d");

	/* The separators keep method and path apart. */
	char a[65], b[65];
	idem_fingerprint("POST", "/x", NULL, 0, a);
	idem_fingerprint("POST/", "x", NULL, 0, b);
	assert_string_not_equal(a, b);
	idem_fingerprint("POST", "/x", "1", 1, b);
	assert_string_not_equal(a, b);
}

static void test_storage_key(void **state)
{
	char out[IDEM_STORAGE_KEY_MAX];
	(void)state;

	assert_int_equal(idem_storage_key("01HXZ9G7KMV2QX8Y1S5RJW3B7T", "key_1", "order-12345", out,
	                                  sizeof(out)),
	                 0);
	assert_string_equal(out,
	                    "idem:01HXZ9G7KMV2QX8Y1S5RJW3B7T:key_1:"
	                    "a6d3b229b92ec35f2132c14632d73ab4beb6b527ec1078c5af10bde5f1dc0e37");

	/* The longest ids fit IDEM_STORAGE_KEY_MAX exactly. */
	char id[IDEM_ID_MAX + 2];
	memset(id, 'A', IDEM_ID_MAX);
	id[IDEM_ID_MAX] = '\0';
	assert_int_equal(idem_storage_key(id, id, "k", out, sizeof(out)), 0);
	assert_int_equal(strlen(out) + 1, IDEM_STORAGE_KEY_MAX);
	assert_int_equal(idem_storage_key(id, id, "k", out, sizeof(out) - 1), -1);
	assert_string_equal(out, "");

	/* Ids outside [0-9A-Za-z_-] or too long are refused. */
	id[IDEM_ID_MAX] = 'A';
	id[IDEM_ID_MAX + 1] = '\0';
	assert_int_equal(idem_storage_key(id, "k", "k", out, sizeof(out)), -1);
	assert_int_equal(idem_storage_key("org:1", "k", "k", out, sizeof(out)), -1);
	assert_int_equal(idem_storage_key("org", "", "k", out, sizeof(out)), -1);
	assert_int_equal(idem_storage_key(NULL, "k", "k", out, sizeof(out)), -1);
	/* So is an invalid Idempotency-Key. */
	assert_int_equal(idem_storage_key("org", "k", "a b", out, sizeof(out)), -1);
	assert_int_equal(idem_storage_key("org", "k", "", out, sizeof(out)), -1);
	assert_int_equal(idem_storage_key("org", "k", "k", NULL, 0), -1);

	/* Keys that differ only in a byte the hash hides still differ. */
	char a[IDEM_STORAGE_KEY_MAX], b[IDEM_STORAGE_KEY_MAX];
	assert_int_equal(idem_storage_key("org", "k", "x:y", a, sizeof(a)), 0);
	assert_int_equal(idem_storage_key("org", "k", "x:z", b, sizeof(b)), 0);
	assert_string_not_equal(a, b);
	assert_null(strchr(a + strlen("idem:org:k:"), ':'));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_key_valid),
	    cmocka_unit_test(test_fingerprint),
	    cmocka_unit_test(test_storage_key),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
