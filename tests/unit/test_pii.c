/*
 * test_pii.c: unit tests for src/ingest/pii.c: every vector of
 * tests/vectors/pii-hashing.json (email and phone by their own rules, the
 * other fields by the email rule that [ingest] hash_paths uses), then the
 * edges: surrounding whitespace of every ASCII kind, upper case, '+' and
 * "00" prefixes, values already hashed (lower-case hex passes, upper-case is
 * hashed), nothing left after normalisation (dropped, never the hash of ""),
 * bytes outside ASCII left as they are (NFC and NFD differ), and values
 * longer than the hashing chunk, each checked against an independent
 * SHA-256 of the expected normalised text.
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

#include "core/str.h"
#include "crypto/hash.h"
#include "ingest/pii.h"
#include "vectors.h"

/* Lower-case hex SHA-256 of s, computed without pii.c. */
static void ref_hash(const char *s, char out[PII_HEX_LEN + 1])
{
	uint8_t d[SHA256_LEN];
	sha256(s, strlen(s), d);
	hex_encode(d, sizeof d, out);
}

static enum pii_result hash_z(enum pii_kind k, const char *s, char out[PII_HEX_LEN + 1])
{
	return pii_hash(k, s, strlen(s), out);
}

/* s hashes (not passes) to the SHA-256 of norm, and normalises to norm. */
static void assert_hashes_as(enum pii_kind k, const char *s, const char *norm)
{
	char got[PII_HEX_LEN + 1], want[PII_HEX_LEN + 1], text[512];
	ref_hash(norm, want);
	if (hash_z(k, s, got) != PII_HASHED || strcmp(got, want) != 0)
		fail_msg("%s hashed to %s, want sha256(\"%s\") = %s", s, got, norm, want);
	assert_int_equal(pii_normalize(k, s, strlen(s), text, sizeof text), strlen(norm));
	assert_string_equal(text, norm);
}

static void test_published_vectors(void **state)
{
	size_t i;
	json_t *v;
	int emails = 0, phones = 0;
	(void)state;

	json_t *root = vectors_load("pii-hashing.json");
	json_t *vectors = json_object_get(root, "vectors");
	assert_true(json_array_size(vectors) > 0);
	json_array_foreach(vectors, i, v)
	{
		const char *field = json_string_value(json_object_get(v, "field"));
		const char *in = json_string_value(json_object_get(v, "input"));
		const char *norm = json_string_value(json_object_get(v, "normalized"));
		const char *sha = json_string_value(json_object_get(v, "sha256"));
		char got[PII_HEX_LEN + 1], text[256];
		assert_non_null(field);
		assert_non_null(in);
		assert_non_null(norm);
		assert_non_null(sha);
		enum pii_kind k = strcmp(field, "phone") == 0 ? PII_PHONE : PII_EMAIL;
		emails += strcmp(field, "email") == 0;
		phones += k == PII_PHONE;
		pii_normalize(k, in, strlen(in), text, sizeof text);
		if (strcmp(text, norm) != 0)
			fail_msg("vector %zu (%s): normalised to \"%s\", want \"%s\"", i, field,
			         text, norm);
		if (pii_hash(k, in, strlen(in), got) != PII_HASHED || strcmp(got, sha) != 0)
			fail_msg("vector %zu (%s): hash %s, want %s", i, field, got, sha);
		/* The published hash itself is taken as the hash, never hashed twice. */
		assert_int_equal(pii_hash(k, sha, strlen(sha), got), PII_PASSED);
		assert_string_equal(got, sha);
	}
	assert_true(emails >= 2);
	assert_true(phones >= 1);
	json_decref(root);
}

static void test_email_whitespace_and_case(void **state)
{
	(void)state;
	assert_hashes_as(PII_EMAIL, "John_Smith@Gmail.com", "john_smith@gmail.com");
	assert_hashes_as(PII_EMAIL, "JOHN_SMITH@GMAIL.COM", "john_smith@gmail.com");
	assert_hashes_as(PII_EMAIL, " \t\n\r\v\fJohn_Smith@gmail.com\f\v\r\n\t ",
	                 "john_smith@gmail.com");
	assert_hashes_as(PII_EMAIL, "\tmary@example.com\t", "mary@example.com");
	/* Only the surrounding whitespace goes; inside, the value is kept. */
	assert_hashes_as(PII_EMAIL, " a b\t@x.com ", "a b\t@x.com");
	/* '+' tags are part of the address. */
	assert_hashes_as(PII_EMAIL, "Mary+Ads@Example.com", "mary+ads@example.com");
}

static void test_phone_digits_and_prefixes(void **state)
{
	const char *want = "e323ec626319ca94ee8bff2e4c87cf613be6ea19919ed1364124e16807ab3176";
	char got[PII_HEX_LEN + 1];
	const char *same[] = {"+1 (650) 555-1212",  "16505551212",      "001 650 555 1212",
	                      "0016505551212",      "+001-650-5551212", " \t+1.650.555.1212 ext\n",
	                      "tel:+1-650-555-1212"};
	(void)state;
	for (size_t i = 0; i < sizeof same / sizeof same[0]; i++) {
		assert_int_equal(hash_z(PII_PHONE, same[i], got), PII_HASHED);
		if (strcmp(got, want) != 0)
			fail_msg("\"%s\" hashed to %s", same[i], got);
	}
	/* A zero after the first digit is kept. */
	assert_hashes_as(PII_PHONE, "+44 020 7946 0000", "4402079460000");
	assert_hashes_as(PII_PHONE, "00 44 20 7946 0000", "442079460000");
}

static void test_already_hashed(void **state)
{
	const char *h = "62a14e44f765419d10fea99367361a727c12365e2520f32218d505ed9aa0f62f";
	char got[PII_HEX_LEN + 1], buf[128], want[PII_HEX_LEN + 1];
	(void)state;

	assert_int_equal(hash_z(PII_EMAIL, h, got), PII_PASSED);
	assert_string_equal(got, h);
	/* Surrounding whitespace is trimmed before the check. */
	snprintf(buf, sizeof buf, " \t%s\n", h);
	assert_int_equal(hash_z(PII_EMAIL, buf, got), PII_PASSED);
	assert_string_equal(got, h);
	/* A phone hash is taken whole, not reduced to its digits. */
	assert_int_equal(hash_z(PII_PHONE, buf, got), PII_PASSED);
	assert_string_equal(got, h);

	/* Upper case is not the published form: hashed as a value (lower-cased first). */
	assert_hashes_as(PII_EMAIL,
	                 "62A14E44F765419D10FEA99367361A727C12365E2520F32218D505ED9AA0F62F", h);
	ref_hash(h, want);
	assert_int_equal(hash_z(PII_EMAIL,
	                        "62A14E44F765419D10FEA99367361A727C12365E2520F32218D505ED9AA0F62F",
	                        got),
	                 PII_HASHED);
	assert_string_equal(got, want);
	/* One character short or over is a value too. */
	assert_hashes_as(PII_EMAIL, h + 1, h + 1);
	snprintf(buf, sizeof buf, "%s0", h);
	assert_hashes_as(PII_EMAIL, buf, buf);
	/* 64 characters that are not all hex. */
	snprintf(buf, sizeof buf, "%.63sg", h);
	assert_hashes_as(PII_EMAIL, buf, buf);
}

static void test_empty_after_normalisation(void **state)
{
	const char *emails[] = {"", " ", "\t\r\n \v\f"};
	const char *phones[] = {"", "+", "000", "+00 (0) -", "no phone", "\t"};
	char got[PII_HEX_LEN + 1];
	(void)state;
	for (size_t i = 0; i < sizeof emails / sizeof emails[0]; i++) {
		memset(got, 'x', sizeof got);
		assert_int_equal(hash_z(PII_EMAIL, emails[i], got), PII_EMPTY);
		assert_string_equal(got, "");
	}
	for (size_t i = 0; i < sizeof phones / sizeof phones[0]; i++) {
		memset(got, 'x', sizeof got);
		assert_int_equal(hash_z(PII_PHONE, phones[i], got), PII_EMPTY);
		assert_string_equal(got, "");
	}
	assert_int_equal(pii_hash(PII_EMAIL, NULL, 0, got), PII_EMPTY);
}

static void test_non_ascii_left_as_bytes(void **state)
{
	char a[PII_HEX_LEN + 1], b[PII_HEX_LEN + 1];
	(void)state;
	/* NFC (U+00E9) and NFD (e + U+0301) are not unified: hashed as the bytes sent. */
	assert_hashes_as(PII_EMAIL, "Jos\xc3\xa9@Example.com", "jos\xc3\xa9@example.com");
	assert_hashes_as(PII_EMAIL, "Jose\xcc\x81@Example.com", "jose\xcc\x81@example.com");
	assert_int_equal(hash_z(PII_EMAIL, "jos\xc3\xa9@x.com", a), PII_HASHED);
	assert_int_equal(hash_z(PII_EMAIL, "jose\xcc\x81@x.com", b), PII_HASHED);
	assert_string_not_equal(a, b);
	/* No Unicode case folding: U+00C9 stays upper case. */
	assert_hashes_as(PII_EMAIL, "\xc3\x89@X.com", "\xc3\x89@x.com");
	/* Non-ASCII digits (U+0661 ARABIC-INDIC ONE) are not digits. */
	assert_hashes_as(PII_PHONE, "\xd9\xa1 650 555 1212", "6505551212");
	/* The length is the caller's: an embedded NUL is part of the value. */
	assert_int_equal(pii_hash(PII_EMAIL, "a\0b", 3, a), PII_HASHED);
	assert_int_equal(pii_hash(PII_EMAIL, "a", 1, b), PII_HASHED);
	assert_string_not_equal(a, b);
}

static void test_long_values_cross_chunks(void **state)
{
	static const size_t lens[] = {127, 128, 129, 255, 256, 257, 5000};
	(void)state;
	for (size_t i = 0; i < sizeof lens / sizeof lens[0]; i++) {
		size_t n = lens[i];
		char *in = malloc(n + 3), *norm = malloc(n + 1), *text = malloc(n + 1);
		char got[PII_HEX_LEN + 1], want[PII_HEX_LEN + 1];
		uint8_t d[SHA256_LEN];
		assert_non_null(in);
		assert_non_null(norm);
		assert_non_null(text);
		in[0] = ' ';
		for (size_t j = 0; j < n; j++) {
			in[j + 1] = (char)('A' + (char)(j % 26));
			norm[j] = (char)('a' + (char)(j % 26));
		}
		in[n + 1] = '\t';
		in[n + 2] = '\0';
		norm[n] = '\0';
		sha256(norm, n, d);
		hex_encode(d, sizeof d, want);
		assert_int_equal(pii_hash(PII_EMAIL, in, n + 2, got), PII_HASHED);
		assert_string_equal(got, want);
		assert_int_equal(pii_normalize(PII_EMAIL, in, n + 2, text, n + 1), n);
		assert_string_equal(text, norm);
		free(in);
		free(norm);
		free(text);
	}
}

static void test_normalize_cuts_to_cap(void **state)
{
	char out[5];
	(void)state;
	assert_int_equal(pii_normalize(PII_EMAIL, " ABCDEFG ", 9, out, sizeof out), 7);
	assert_string_equal(out, "abcd");
	assert_int_equal(pii_normalize(PII_PHONE, "+0012345", 8, out, 1), 5);
	assert_string_equal(out, "");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_published_vectors),
	    cmocka_unit_test(test_email_whitespace_and_case),
	    cmocka_unit_test(test_phone_digits_and_prefixes),
	    cmocka_unit_test(test_already_hashed),
	    cmocka_unit_test(test_empty_after_normalisation),
	    cmocka_unit_test(test_non_ascii_left_as_bytes),
	    cmocka_unit_test(test_long_values_cross_chunks),
	    cmocka_unit_test(test_normalize_cuts_to_cap),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
