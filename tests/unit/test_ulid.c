/*
 * test_ulid.c: unit tests for src/core/ulid.c: ulid_encode against vectors
 * computed independently (128-bit integer, 5 bits per character; the time
 * part of the spec's own example, 1469918176385 -> 01ARYZ6S41) and against
 * the plain bit-by-bit encoding on pseudo-random input, ulid_valid
 * on good and bad input, and ulid_new / ulid_prefixed (time prefix close to
 * now and never going backwards, no repeats, request-id shape), ulid_time
 * (the time read back from any ULID).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "core/clock.h"
#include "core/ulid.h"

static const char crockford[] = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";

/* Decode the 48-bit time prefix (first 10 characters). */
static uint64_t ref_time(const char *id)
{
	uint64_t t = 0;
	for (int i = 0; i < 10; i++) {
		const char *p = strchr(crockford, id[i]);
		assert_non_null(p);
		t = (t << 5) | (uint64_t)(p - crockford);
	}
	return t;
}

static int cmp_id(const void *a, const void *b)
{
	return strcmp(a, b);
}

/* ulid_valid over an exact-size heap copy (no NUL after len bytes). */
static bool valid_exact(const char *s, size_t len)
{
	char *copy = xmalloc(len ? len : 1);
	memcpy(copy, s, len);
	bool ok = ulid_valid(copy, len);
	free(copy);
	return ok;
}

static void test_encode_vectors(void **state)
{
	(void)state;
	static const uint8_t zero[10] = {0};
	static const uint8_t ones[10] = {0xff, 0xff, 0xff, 0xff, 0xff,
	                                 0xff, 0xff, 0xff, 0xff, 0xff};
	static const uint8_t seq[10] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10};
	static const uint8_t mix[10] = {0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef, 0x01, 0x23};
	static const struct {
		uint64_t ms;
		const uint8_t *rnd;
		const char *want;
	} cases[] = {
	    {0, zero, "00000000000000000000000000"},
	    {1469918176385, zero, "01ARYZ6S410000000000000000"},
	    {1469918176385, seq, "01ARYZ6S41041061050R3GG28A"},
	    {1700000000000, mix, "01HF7YAT0004HMASW9NF6YY093"},
	    {281474976710655, ones, "7ZZZZZZZZZZZZZZZZZZZZZZZZZ"}, /* 2^48 - 1 */
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		char out[ULID_LEN + 1];
		memset(out, 'x', sizeof out);
		ulid_encode(cases[i].ms, cases[i].rnd, out);
		assert_string_equal(out, cases[i].want);
		assert_true(ulid_valid(out, strlen(out)));
		assert_int_equal(ref_time(out), cases[i].ms);
	}
}

/* The bit-by-bit encoding ulid_encode replaced, as the reference. */
static void encode_reference(uint64_t ms, const uint8_t rnd[10], char out[ULID_LEN + 1])
{
	uint8_t b[16];
	for (int i = 0; i < 6; i++)
		b[i] = (uint8_t)(ms >> (8 * (5 - i)));
	memcpy(b + 6, rnd, 10);
	for (int i = 0; i < ULID_LEN; i++) {
		int bit = i * 5 - 2;
		unsigned v = 0;
		for (int k = 0; k < 5; k++) {
			int pos = bit + k;
			v = (v << 1) | (pos >= 0 ? (b[pos / 8] >> (7 - pos % 8)) & 1u : 0u);
		}
		out[i] = crockford[v];
	}
	out[ULID_LEN] = '\0';
}

static void test_encode_matches_reference(void **state)
{
	(void)state;
	uint64_t x = 0x9E3779B97F4A7C15u; /* xorshift: reproducible */
	for (int n = 0; n < 20000; n++) {
		uint8_t rnd[10];
		for (int i = 0; i < 10; i++) {
			x ^= x << 13;
			x ^= x >> 7;
			x ^= x << 17;
			rnd[i] = (uint8_t)x;
		}
		/* Whole 64-bit times too: only the low 48 bits are encoded. */
		uint64_t ms = n % 2 ? x : x >> 16;
		char got[ULID_LEN + 1], want[ULID_LEN + 1];
		ulid_encode(ms, rnd, got);
		encode_reference(ms, rnd, want);
		assert_string_equal(got, want);
	}
}

static void test_encode_orders_by_time(void **state)
{
	(void)state;
	static const uint8_t ones[10] = {0xff, 0xff, 0xff, 0xff, 0xff,
	                                 0xff, 0xff, 0xff, 0xff, 0xff};
	static const uint8_t zero[10] = {0};
	char a[ULID_LEN + 1], b[ULID_LEN + 1];
	/* A later millisecond sorts after any randomness of an earlier one. */
	for (uint64_t ms = 1; ms < 1ull << 47; ms = ms * 3 + 1) {
		ulid_encode(ms - 1, ones, a);
		ulid_encode(ms, zero, b);
		assert_true(strcmp(a, b) < 0);
	}
}

static void test_valid(void **state)
{
	(void)state;
	static const char *const good[] = {
	    "01ARYZ6S41TSV4RRFFQ69G5FAV",
	    "00000000000000000000000000",
	    "7ZZZZZZZZZZZZZZZZZZZZZZZZZ",
	    "01HXZ9G7KMV2QX8Y1S5RJW3B7T",
	};
	static const char *const bad[] = {
	    "",
	    "01ARYZ6S41TSV4RRFFQ69G5FA",   /* 25 */
	    "01ARYZ6S41TSV4RRFFQ69G5FAVV", /* 27 */
	    "01aryz6s41tsv4rrffq69g5fav",  /* lower case */
	    "01ARYZ6S41TSV4RRFFQ69G5FAI",  /* I is not Crockford */
	    "01ARYZ6S41TSV4RRFFQ69G5FAL",  /* L */
	    "01ARYZ6S41TSV4RRFFQ69G5FAO",  /* O */
	    "01ARYZ6S41TSV4RRFFQ69G5FAU",  /* U */
	    "81ARYZ6S41TSV4RRFFQ69G5FAV",  /* over 128 bits */
	    "Z1ARYZ6S41TSV4RRFFQ69G5FAV",
	    "01ARYZ6S41TSV4RRFFQ69G5FA-",
	    "01ARYZ6S41 SV4RRFFQ69G5FAV",
	};
	for (size_t i = 0; i < sizeof good / sizeof good[0]; i++)
		if (!valid_exact(good[i], strlen(good[i])))
			fail_msg("rejected %s", good[i]);
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
		if (valid_exact(bad[i], strlen(bad[i])))
			fail_msg("accepted \"%s\"", bad[i]);
	/* An embedded NUL is not a character of the alphabet. */
	char nul[ULID_LEN] = "01ARYZ6S41TSV4RRFFQ69G5FA";
	nul[10] = '\0';
	assert_false(valid_exact(nul, ULID_LEN));
	/* len decides, not the NUL. */
	assert_true(ulid_valid("01ARYZ6S41TSV4RRFFQ69G5FAVXYZ", ULID_LEN));
}

static void test_new_time_and_uniqueness(void **state)
{
	(void)state;
	enum { N = 20000 };
	char(*ids)[ULID_LEN + 1] = xmalloc(sizeof(*ids) * N);
	uint64_t before = (uint64_t)clock_now_ms();
	uint64_t prev = 0;
	for (int i = 0; i < N; i++) {
		ulid_new(ids[i]);
		assert_int_equal(strlen(ids[i]), ULID_LEN);
		assert_true(ulid_valid(ids[i], ULID_LEN));
		uint64_t t = ref_time(ids[i]);
		assert_true(t >= prev); /* the time prefix never goes backwards */
		prev = t;
	}
	uint64_t after = (uint64_t)clock_now_ms();
	assert_true(ref_time(ids[0]) >= before);
	assert_true(ref_time(ids[N - 1]) <= after);
	/* No repeats (sorting puts equal ids next to each other). */
	qsort(ids, N, sizeof *ids, cmp_id);
	for (int i = 1; i < N; i++)
		if (strcmp(ids[i - 1], ids[i]) == 0)
			fail_msg("repeated id %s", ids[i]);
	/* The random parts differ too, not just the time. */
	int same_random = 0;
	for (int i = 1; i < N; i++)
		if (strcmp(ids[i - 1] + 10, ids[i] + 10) == 0)
			same_random++;
	assert_int_equal(same_random, 0);
	free(ids);
}

static void test_prefixed(void **state)
{
	(void)state;
	char rid[4 + ULID_LEN + 1];
	ulid_prefixed("req", rid, sizeof rid);
	assert_int_equal(strlen(rid), 3 + 1 + ULID_LEN);
	assert_memory_equal(rid, "req_", 4);
	assert_true(ulid_valid(rid + 4, ULID_LEN));
	char other[4 + ULID_LEN + 1];
	ulid_prefixed("req", other, sizeof other);
	assert_string_not_equal(rid, other);
	/* A short buffer truncates but stays NUL-terminated. */
	char small[8];
	memset(small, 'x', sizeof small);
	ulid_prefixed("req", small, sizeof small);
	assert_int_equal(strlen(small), 7);
	assert_memory_equal(small, "req_", 4);
}

/* ulid_new_at / ulid_prefixed_at carry the given time, not the clock's. */
static void test_at_given_time(void **state)
{
	(void)state;
	char id[ULID_LEN + 1];
	ulid_new_at(1469918176385, id);
	assert_memory_equal(id, "01ARYZ6S41", 10);
	assert_true(ulid_valid(id, ULID_LEN));
	char rid[4 + ULID_LEN + 1], next[4 + ULID_LEN + 1];
	ulid_prefixed_at("req", 1700000000000, rid, sizeof rid);
	assert_memory_equal(rid, "req_", 4);
	assert_int_equal(ref_time(rid + 4), 1700000000000);
	/* one millisecond later sorts after, whatever the random part */
	ulid_prefixed_at("req", 1700000000001, next, sizeof next);
	assert_true(strcmp(rid, next) < 0);
	/* the floor of a time sorts below every id of that time, above earlier ones */
	char floor[4 + ULID_LEN + 1], before[4 + ULID_LEN + 1];
	ulid_prefixed_floor("req", 1700000000001, floor, sizeof floor);
	assert_string_equal(floor + 14, "0000000000000000");
	assert_int_equal(ref_time(floor + 4), 1700000000001);
	assert_true(strcmp(rid, floor) < 0);
	assert_true(strcmp(floor, next) <= 0);
	for (int i = 0; i < 100; i++) {
		ulid_prefixed_at("req", 1700000000000, before, sizeof before);
		assert_true(strcmp(before, floor) < 0);
		ulid_prefixed_at("req", 1700000000001, before, sizeof before);
		assert_true(strcmp(before, floor) >= 0);
	}
	ulid_prefixed_floor("req", -5, floor, sizeof floor);
	assert_string_equal(floor, "req_00000000000000000000000000");
}

/* ulid_time reads back the time of any ULID, as the reference decoding does. */
static void test_time(void **state)
{
	(void)state;
	static const int64_t times[] = {0, 1, 1469918176385, 1750000000123, 281474976710655};
	for (size_t i = 0; i < sizeof times / sizeof times[0]; i++) {
		char id[3 + ULID_LEN + 1];
		ulid_prefixed_at("ev", times[i], id, sizeof id);
		assert_int_equal(ulid_time(id + 3), (uint64_t)times[i]);
		assert_int_equal(ref_time(id + 3), (uint64_t)times[i]);
		ulid_prefixed_floor("ev", times[i], id, sizeof id);
		assert_int_equal(ulid_time(id + 3), (uint64_t)times[i]);
	}
	char id[ULID_LEN + 1];
	for (int i = 0; i < 100; i++) {
		ulid_new(id);
		assert_int_equal(ulid_time(id), ref_time(id));
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_encode_vectors), cmocka_unit_test(test_encode_orders_by_time),
	    cmocka_unit_test(test_valid),          cmocka_unit_test(test_new_time_and_uniqueness),
	    cmocka_unit_test(test_prefixed),       cmocka_unit_test(test_encode_matches_reference),
	    cmocka_unit_test(test_at_given_time),  cmocka_unit_test(test_time),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
