/*
 * test_str.c: unit tests for src/core/str.c (checked integer and boolean
 * parsing, bounded buffers, printf-free formatting: str_i64, strbuf,
 * str_copy, str_ipv4), the hex codec and, from src/core/clock.c, the RFC 3339 conversions
 * and the monotonic deadlines of timed waits.
 * Every parse of a length-carrying string gets a heap copy of exactly len
 * bytes with no NUL after it, so ASan reports any read past len.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <arpa/inet.h>

#include "core/alloc.h"
#include "core/clock.h"
#include "core/siphash.h"
#include "core/str.h"

/* An exact-size heap copy of s (no terminating NUL); *len = strlen(s). */
static char *exact_copy(const char *s, size_t *len)
{
	char *copy;

	*len = strlen(s);
	copy = xmalloc(*len ? *len : 1);
	memcpy(copy, s, *len);
	return copy;
}

/* parse_int64 over an exact-size heap copy of s. */
static int parse_exact(const char *s, int64_t min, int64_t max, int64_t *out)
{
	size_t len;
	char *copy = exact_copy(s, &len);
	int rc = parse_int64(copy, len, min, max, out);
	free(copy);
	return rc;
}

/* parse_uint64 over an exact-size heap copy of s. */
static int parse_u_exact(const char *s, uint64_t max, uint64_t *out)
{
	size_t len;
	char *copy = exact_copy(s, &len);
	int rc = parse_uint64(copy, len, max, out);
	free(copy);
	return rc;
}

static void test_parse_uint64(void **state)
{
	static const struct {
		const char *in;
		uint64_t want;
	} ok[] = {
	    {"0", 0},
	    {"7", 7},
	    {"000123", 123},
	    {"00000000000000000000000000042", 42},
	    {"18446744073709551615", UINT64_MAX},
	};
	static const char *const bad[] = {
	    "",                     /* empty */
	    "-1",                   /* no sign */
	    "+1",                   /* no sign */
	    "-0",                   /* no sign, even for zero */
	    " 1",                   /* no spaces */
	    "1 ",                   /* trailing space */
	    "12a",                  /* trailing garbage */
	    "0x10",                 /* not hex */
	    "1.5",                  /* not a fraction */
	    "18446744073709551616", /* UINT64_MAX + 1 */
	    "99999999999999999999", /* overflow */
	    "184467440737095516150",
	};
	uint64_t v;
	(void)state;

	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		v = 1;
		if (parse_u_exact(ok[i].in, UINT64_MAX, &v) != 0)
			fail_msg("rejected \"%s\"", ok[i].in);
		assert_true(v == ok[i].want);
	}
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		v = 42;
		if (parse_u_exact(bad[i], UINT64_MAX, &v) != -1)
			fail_msg("accepted \"%s\"", bad[i]);
		assert_true(v == 42); /* untouched */
	}
	/* The bound: max itself passes, max + 1 does not, for small and odd maxima. */
	assert_int_equal(parse_u_exact("65535", 65535, &v), 0);
	assert_int_equal(parse_u_exact("65536", 65535, &v), -1);
	assert_int_equal(parse_u_exact("0", 0, &v), 0);
	assert_int_equal(parse_u_exact("1", 0, &v), -1);
	assert_int_equal(parse_u_exact("9", 8, &v), -1);
	assert_int_equal(parse_u_exact("10", 9, &v), -1);
	assert_int_equal(parse_u_exact("9223372036854775807", INT64_MAX, &v), 0);
	assert_int_equal(parse_u_exact("9223372036854775808", INT64_MAX, &v), -1);
	/* Only len bytes are read: a digit after len does not count. */
	assert_int_equal(parse_uint64("123", 2, UINT64_MAX, &v), 0);
	assert_true(v == 12);
	assert_int_equal(parse_uint64("12x", 2, UINT64_MAX, &v), 0);
	assert_int_equal(parse_uint64("1\0"
	                              "2",
	                              3, UINT64_MAX, &v),
	                 -1);
}

static void test_parse_int64_accepts(void **state)
{
	(void)state;
	static const struct {
		const char *in;
		int64_t want;
	} cases[] = {
	    {"0", 0},
	    {"7", 7},
	    {"-7", -7},
	    {"-0", 0},
	    {"000123", 123},
	    {"9223372036854775807", INT64_MAX},
	    {"-9223372036854775808", INT64_MIN},
	    {"-9223372036854775807", -INT64_MAX},
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		int64_t v = 42;
		if (parse_exact(cases[i].in, INT64_MIN, INT64_MAX, &v) != 0)
			fail_msg("rejected \"%s\"", cases[i].in);
		assert_int_equal(v, cases[i].want);
		v = 42;
		assert_int_equal(parse_int64_z(cases[i].in, INT64_MIN, INT64_MAX, &v), 0);
		assert_int_equal(v, cases[i].want);
	}
}

static void test_parse_int64_rejects(void **state)
{
	(void)state;
	static const char *const bad[] = {
	    "",
	    "-",
	    "--1",
	    "+1",
	    " 1",
	    "1 ",
	    "1\n",
	    "12a",
	    "a12",
	    "0x10",
	    "1e3",
	    "1.0",
	    "1_000",
	    "9223372036854775808",
	    "-9223372036854775809",
	    "18446744073709551616",
	    "99999999999999999999999",
	    "-99999999999999999999999",
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		int64_t v = 42;
		if (parse_exact(bad[i], INT64_MIN, INT64_MAX, &v) == 0)
			fail_msg("accepted \"%s\" as %lld", bad[i], (long long)v);
		assert_int_equal(v, 42); /* untouched on failure */
		assert_int_equal(parse_int64_z(bad[i], INT64_MIN, INT64_MAX, &v), -1);
	}
}

static void test_parse_int64_range(void **state)
{
	(void)state;
	int64_t v = 0;
	assert_int_equal(parse_int64_z("1024", 1024, 1048576, &v), 0);
	assert_int_equal(v, 1024);
	assert_int_equal(parse_int64_z("1048576", 1024, 1048576, &v), 0);
	assert_int_equal(v, 1048576);
	v = 5;
	assert_int_equal(parse_int64_z("1023", 1024, 1048576, &v), -1);
	assert_int_equal(parse_int64_z("1048577", 1024, 1048576, &v), -1);
	assert_int_equal(parse_int64_z("-1", 0, 10, &v), -1);
	assert_int_equal(v, 5);
}

static void test_parse_int64_uses_len(void **state)
{
	(void)state;
	int64_t v = 0;
	/* Only the first len bytes count: the rest is not looked at. */
	assert_int_equal(parse_int64("123456", 3, 0, 1000, &v), 0);
	assert_int_equal(v, 123);
	assert_int_equal(parse_int64("12x", 2, 0, 1000, &v), 0);
	assert_int_equal(v, 12);
	assert_int_equal(parse_int64("-5", 1, -10, 10, &v), -1);
	assert_int_equal(parse_int64("5", 0, -10, 10, &v), -1);
}

static void test_parse_bool(void **state)
{
	(void)state;
	static const char *const yes[] = {"true", "TRUE", "yes", "On", "1"};
	static const char *const no[] = {"false", "False", "no", "OFF", "0"};
	static const char *const bad[] = {"", "2", "y", "n", "truee", " true", "tru"};
	for (size_t i = 0; i < 5; i++) {
		bool b = false;
		assert_int_equal(parse_bool(yes[i], &b), 0);
		assert_true(b);
		assert_int_equal(parse_bool(no[i], &b), 0);
		assert_false(b);
	}
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		bool b = true;
		if (parse_bool(bad[i], &b) == 0)
			fail_msg("accepted \"%s\"", bad[i]);
		assert_true(b);
	}
}

static void test_ascii_ieq_and_prefix(void **state)
{
	(void)state;
	assert_true(ascii_ieq("Content-Type", 12, "content-type", 12));
	assert_false(ascii_ieq("Content-Type", 12, "content-typ", 11));
	assert_false(ascii_ieq("abc", 3, "abd", 3));
	assert_true(ascii_ieq("", 0, "", 0));
	assert_true(str_has_prefix("https://x", "https://"));
	assert_true(str_has_prefix("abc", ""));
	assert_false(str_has_prefix("http:", "https://"));
	assert_false(str_has_prefix("", "a"));
}

/* str_is_token: 1..max bytes of A-Z a-z 0-9 _ -; every other byte value refused. */
static void test_str_is_token(void **state)
{
	(void)state;
	const char ok[] = "AZaz09_-";
	assert_true(str_is_token(ok, 8, 8));
	assert_false(str_is_token(ok, 8, 7));   /* longer than max */
	assert_false(str_is_token(ok, 0, 8));   /* empty */
	assert_true(str_is_token("a b", 1, 8)); /* only the n bytes count */
	for (int c = 0; c < 256; c++) {
		char one = (char)c;
		bool want = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
		            (c >= '0' && c <= '9') || c == '_' || c == '-';
		assert_int_equal(str_is_token(&one, 1, 1), want);
	}
}

static void test_buf_limit(void **state)
{
	(void)state;
	struct buf b;
	buf_init(&b, 10);
	assert_int_equal(buf_append(&b, "0123456", 7), 0);
	assert_int_equal(buf_append(&b, "789", 3), 0); /* exactly the limit */
	assert_int_equal(b.len, 10);
	assert_string_equal(b.data, "0123456789");
	assert_int_equal(buf_append(&b, "x", 1), -1); /* one past: refused */
	assert_int_equal(b.len, 10);
	assert_string_equal(b.data, "0123456789");
	assert_int_equal(buf_append(&b, "", 0), 0);
	assert_int_equal(buf_append_str(&b, "y"), -1);
	assert_int_equal(buf_printf(&b, "%d", 1), -1);
	assert_int_equal(b.len, 10);
	/* A huge n must not wrap around the limit check. */
	assert_int_equal(buf_append(&b, "z", SIZE_MAX), -1);
	size_t len = 0;
	char *s = buf_steal(&b, &len);
	assert_int_equal(len, 10);
	assert_string_equal(s, "0123456789");
	free(s);
	assert_null(b.data);
	assert_int_equal(b.len, 0);
	buf_free(&b);
}

/* libcurl's write callback over a bounded buffer: what fits is taken, a write past it aborts. */
static void test_buf_sink_write_bounded(void **state)
{
	(void)state;
	struct buf b;
	buf_init(&b, 5);
	struct buf_sink k = {.buf = &b};
	char abc[] = "abc", de[] = "de", f[] = "f";
	assert_int_equal(buf_sink_write(abc, 1, 3, &k), 3);
	assert_int_equal(buf_sink_write(de, 2, 1, &k), 2);
	assert_false(k.too_large);
	assert_int_equal(buf_sink_write(f, 1, 1, &k), 0); /* 0 != 1: curl aborts */
	assert_true(k.too_large);
	assert_int_equal(b.len, 5);
	assert_string_equal(b.data, "abcde");
	buf_free(&b);
}

static void test_buf_printf_and_growth(void **state)
{
	(void)state;
	struct buf b;
	buf_init(&b, 100000);
	for (int i = 0; i < 1000; i++)
		assert_int_equal(buf_printf(&b, "%03d,", i % 1000), 0);
	assert_int_equal(b.len, 4000);
	assert_memory_equal(b.data, "000,001,", 8);
	assert_memory_equal(b.data + 3996, "999,", 5); /* includes the NUL */
	buf_free(&b);

	buf_init(&b, 5);
	assert_int_equal(buf_printf(&b, "%s", "12345"), 0);
	assert_string_equal(b.data, "12345");
	buf_free(&b);
	buf_init(&b, 5);
	assert_int_equal(buf_printf(&b, "%s", "123456"), -1);
	assert_int_equal(b.len, 0);
	buf_free(&b);
}

/* RFC 3986 unreserved bytes kept, everything else %XX; all or nothing at the limit. */
static void test_buf_append_pct(void **state)
{
	struct buf b;
	(void)state;

	buf_init(&b, 1024);
	assert_int_equal(buf_append_pct(&b, "aZ09-._~", 8), 0);
	assert_string_equal(b.data, "aZ09-._~");
	assert_int_equal(buf_append_pct(&b, " +&=/?#%\xff\0", 10), 0);
	assert_string_equal(b.data, "aZ09-._~%20%2B%26%3D%2F%3F%23%25%FF%00");
	buf_free(&b);
	buf_init(&b, 5);
	assert_int_equal(buf_append_pct(&b, "ab", 2), 0);
	assert_int_equal(buf_append_pct(&b, "c d", 3), -1); /* "c%20d" would pass 5 */
	assert_string_equal(b.data, "ab");
	assert_int_equal(b.len, 2);
	buf_free(&b);
}

static void test_buf_zero_limit_and_empty_steal(void **state)
{
	(void)state;
	struct buf b;
	buf_init(&b, 0);
	assert_int_equal(buf_append(&b, "a", 1), -1);
	size_t len = 99;
	char *s = buf_steal(&b, &len);
	assert_non_null(s);
	assert_string_equal(s, "");
	assert_int_equal(len, 0);
	free(s);
	buf_free(&b);
}

static void test_rfc3339_round_trip(void **state)
{
	(void)state;
	static const int64_t times[] = {
	    0,
	    1,
	    999,
	    1000,
	    951782400000,  /* 2000-02-29 */
	    1709164800123, /* 2024-02-29T00:00:00.123Z */
	    1767323045678, /* 2026-01-02T03:04:05.678Z */
	    4102444799999, /* 2099-12-31T23:59:59.999Z */
	};
	for (size_t i = 0; i < sizeof times / sizeof times[0]; i++) {
		char s[32];
		int64_t back = -1;
		clock_format_rfc3339(times[i], s, sizeof s);
		assert_int_equal(strlen(s), 24);
		if (clock_parse_rfc3339(s, &back) != 0)
			fail_msg("cannot parse own output %s", s);
		assert_int_equal(back, times[i]);
	}
	char s[32];
	clock_format_rfc3339(1767323045678, s, sizeof s);
	assert_string_equal(s, "2026-01-02T03:04:05.678Z");
	/* The current time round-trips too. */
	int64_t now = clock_now_ms(), back = 0;
	clock_format_rfc3339(now, s, sizeof s);
	assert_int_equal(clock_parse_rfc3339(s, &back), 0);
	assert_int_equal(back, now);
}

static void test_rfc3339_parse_forms(void **state)
{
	(void)state;
	static const struct {
		const char *in;
		int64_t want;
	} cases[] = {
	    {"2026-01-02T03:04:05Z", 1767323045000},
	    {"2026-01-02t03:04:05z", 1767323045000},
	    {"2026-01-02T03:04:05.6Z", 1767323045600},
	    {"2026-01-02T03:04:05.678Z", 1767323045678},
	    {"2026-01-02T03:04:05.678999999Z", 1767323045678},
	    {"2026-01-02T05:04:05.678+02:00", 1767323045678},
	    {"2026-01-01T22:34:05.678-04:30", 1767323045678},
	    {"2026-01-02T03:04:05+00:00", 1767323045000},
	    {"1970-01-01T00:00:00Z", 0},
	    {"2024-02-29T00:00:00Z", 1709164800000},
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		int64_t v = -1;
		if (clock_parse_rfc3339(cases[i].in, &v) != 0)
			fail_msg("rejected %s", cases[i].in);
		if (v != cases[i].want)
			fail_msg("%s gave %lld, want %lld", cases[i].in, (long long)v,
			         (long long)cases[i].want);
	}
}

/*
 * SipHash-2-4 against the reference implementation's vectors (vectors.h, 64-bit output; length
 * 15 is the paper's appendix A): key 00..0f, message 00 01 02 ... of every length 0 to 27, so
 * every tail length meets zero to three whole words; then the keyed string hash.
 */
static void test_siphash(void **state)
{
	(void)state;
	static const uint64_t want[] = {
	    0x726fdb47dd0e0e31ULL, 0x74f839c593dc67fdULL, 0x0d6c8009d9a94f5aULL,
	    0x85676696d7fb7e2dULL, 0xcf2794e0277187b7ULL, 0x18765564cd99a68dULL,
	    0xcbc9466e58fee3ceULL, 0xab0200f58b01d137ULL, 0x93f5f5799a932462ULL,
	    0x9e0082df0ba9e4b0ULL, 0x7a5dbbc594ddb9f3ULL, 0xf4b32f46226bada7ULL,
	    0x751e8fbc860ee5fbULL, 0x14ea5627c0843d90ULL, 0xf723ca908e7af2eeULL,
	    0xa129ca6149be45e5ULL, 0x3f2acc7f57c29bdbULL, 0x699ae9f52cbe4794ULL,
	    0x4bc1b3f0968dd39cULL, 0xbb6dc91da77961bdULL, 0xbed65cf21aa2ee98ULL,
	    0xd0f2cbb02e3b67c7ULL, 0x93536795e3a33e88ULL, 0xa80c038ccd5ccec8ULL,
	    0xb8ad50c6f649af94ULL, 0xbce192de8a85b8eaULL, 0x17d835b85bbb15f3ULL,
	    0x2f2e6163076bcfadULL,
	};
	unsigned char msg[sizeof want / sizeof want[0]];
	for (size_t i = 0; i < sizeof msg; i++)
		msg[i] = (unsigned char)i;
	for (size_t n = 0; n < sizeof msg; n++)
		assert_true(siphash24(msg, n, 0x0706050403020100ULL, 0x0f0e0d0c0b0a0908ULL) ==
		            want[n]);
	assert_true(str_hash("01J00000000000000000000000") ==
	            str_hash("01J00000000000000000000000"));
	assert_true(str_hash("203.0.113.7") != str_hash("203.0.113.8"));
}

/* Found by fuzz_rfc3339: the offset or a leap second must not carry the instant out of range. */
static void test_rfc3339_range_after_offset(void **state)
{
	(void)state;
	int64_t v;
	assert_int_equal(clock_parse_rfc3339("1970-01-01T00:04:05+04:03", &v), -1);
	assert_int_equal(clock_parse_rfc3339("9999-12-31T23:59:59-00:30", &v), -1);
	assert_int_equal(clock_parse_rfc3339("9999-12-31T23:59:60.999Z", &v), -1);
	assert_int_equal(clock_parse_rfc3339("1970-01-01T00:00:59.999+00:01", &v), -1);
	assert_int_equal(clock_parse_rfc3339("1970-01-01T04:03:00+04:03", &v), 0);
	assert_int_equal(v, 0);
}

static void test_rfc3339_rejects(void **state)
{
	(void)state;
	static const char *const bad[] = {
	    "",
	    "2026-01-02",
	    "2026-01-02T03:04:05",   /* no offset */
	    "2026-01-02 03:04:05Z",  /* space instead of T */
	    "2026-01-02T03:04:05ZZ", /* trailing garbage */
	    "2026-01-02T03:04:05Z ", /* trailing space */
	    "2026-01-02T03:04:05.Z", /* empty fraction */
	    "2026-01-02T03:04:05.1234567890Z",
	    "2026-13-02T03:04:05Z",
	    "2026-00-02T03:04:05Z",
	    "2026-01-32T03:04:05Z",
	    "2026-01-00T03:04:05Z",
	    "2023-02-29T00:00:00Z", /* not a leap year */
	    "2100-02-29T00:00:00Z", /* not a leap year */
	    "2026-04-31T00:00:00Z",
	    "2026-01-02T24:00:00Z",
	    "2026-01-02T03:60:00Z",
	    "2026-01-02T03:04:61Z",
	    "2026-01-02T03:04:05+0200",
	    "2026-01-02T03:04:05+24:00",
	    "1969-12-31T23:59:59Z",
	    "26-01-02T03:04:05Z",
	    "2026-1-02T03:04:05Z",
	    "+2026-01-02T03:04:05Z",
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		int64_t v = 42;
		if (clock_parse_rfc3339(bad[i], &v) == 0)
			fail_msg("accepted \"%s\" as %lld", bad[i], (long long)v);
		assert_int_equal(v, 42);
	}
}

static void test_str_i64_matches_printf(void **state)
{
	(void)state;
	static const int64_t cases[] = {
	    0,        1,       -1,       9,         10,        -10,           99,
	    100,      1000000, -1000001, INT64_MAX, INT64_MIN, INT64_MIN + 1, INT32_MAX,
	    INT32_MIN};
	char got[STR_I64_MAX], want[32];
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		size_t n = str_i64(got, cases[i]);
		snprintf(want, sizeof want, "%lld", (long long)cases[i]);
		assert_string_equal(got, want);
		assert_int_equal(n, strlen(want));
	}
	uint64_t x = 88172645463325252u;
	for (int i = 0; i < 10000; i++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		int64_t v = (int64_t)(x >> (i % 64));
		if (i % 3 == 0 && v != INT64_MIN)
			v = -v;
		str_i64(got, v);
		snprintf(want, sizeof want, "%lld", (long long)v);
		assert_string_equal(got, want);
	}
}

static void test_strbuf_cuts_like_snprintf(void **state)
{
	(void)state;
	char data[16];
	struct strbuf b;
	strbuf_init(&b, data, sizeof data);
	assert_string_equal(data, "");
	strbuf_puts(&b, "q=");
	strbuf_put_i64(&b, -42);
	strbuf_put(&b, ";w=7xyz", 4);
	assert_string_equal(data, "q=-42;w=7");
	assert_int_equal(b.len, 9);
	assert_false(b.overflow);
	/* What does not fit is cut, and remembered; the text stays terminated. */
	strbuf_put_i64(&b, INT64_MAX);
	char want[32];
	snprintf(want, sizeof want, "q=-42;w=7%lld", (long long)INT64_MAX);
	want[sizeof data - 1] = '\0';
	assert_string_equal(data, want);
	assert_int_equal(b.len, sizeof data - 1);
	assert_true(b.overflow);
	strbuf_puts(&b, "more");
	assert_int_equal(b.len, sizeof data - 1);
	/* A one-byte buffer holds the empty text. */
	char one[1] = {'x'};
	strbuf_init(&b, one, 1);
	strbuf_puts(&b, "a");
	assert_int_equal(one[0], '\0');
	assert_true(b.overflow);
}

static void test_str_copy_bounds(void **state)
{
	(void)state;
	char dst[8];
	assert_int_equal(str_copy(dst, sizeof dst, "abc", SIZE_MAX), 3);
	assert_string_equal(dst, "abc");
	assert_int_equal(str_copy(dst, sizeof dst, "abcdefghij", SIZE_MAX), 7);
	assert_string_equal(dst, "abcdefg");
	assert_int_equal(str_copy(dst, sizeof dst, "abcdefghij", 2), 2);
	assert_string_equal(dst, "ab");
	assert_int_equal(str_copy(dst, sizeof dst, "", SIZE_MAX), 0);
	assert_string_equal(dst, "");
	assert_int_equal(str_copy(dst, 1, "abc", SIZE_MAX), 0);
	assert_string_equal(dst, "");
	/* Never reads past max: the source need not be terminated. */
	char *raw = xmalloc(4);
	/* NOLINTNEXTLINE(bugprone-not-null-terminated-result): deliberately unterminated */
	memcpy(raw, "wxyz", 4);
	assert_int_equal(str_copy(dst, sizeof dst, raw, 4), 4);
	assert_string_equal(dst, "wxyz");
	free(raw);
}

/* Every value in every octet position, against inet_ntop. */
static void test_str_ipv4_matches_inet_ntop(void **state)
{
	(void)state;
	for (int pos = 0; pos < 4; pos++) {
		for (int v = 0; v < 256; v++) {
			unsigned char a[4] = {10, 0, 200, 7};
			a[pos] = (unsigned char)v;
			char got[16], want[INET_ADDRSTRLEN];
			memset(got, 'x', sizeof got);
			str_ipv4(a, got);
			assert_non_null(inet_ntop(AF_INET, a, want, sizeof want));
			assert_string_equal(got, want);
		}
	}
	char widest[16];
	str_ipv4((const unsigned char[4]){255, 255, 255, 255}, widest);
	assert_string_equal(widest, "255.255.255.255");
}

/* Deadlines are normalised monotonic instants; a monotonic cond wait honours them. */
static void test_clock_mono_deadline_and_cond(void **state)
{
	(void)state;
	struct timespec now;
	clock_gettime(CLOCK_MONOTONIC, &now);
	struct timespec d = clock_mono_deadline(2999);
	assert_true(d.tv_nsec >= 0 && d.tv_nsec < 1000000000L);
	int64_t ahead_ms =
	    (int64_t)(d.tv_sec - now.tv_sec) * 1000 + (d.tv_nsec - now.tv_nsec) / 1000000;
	assert_in_range(ahead_ms, 2998, 3100);
	struct timespec z = clock_mono_deadline(-5); /* clamped to now */
	assert_true(z.tv_sec < now.tv_sec + 1);

	pthread_mutex_t m = PTHREAD_MUTEX_INITIALIZER;
	pthread_cond_t c;
	clock_cond_init_mono(&c);
	int64_t t0 = clock_mono_ms();
	pthread_mutex_lock(&m);
	struct timespec until = clock_mono_deadline(50);
	int rc = 0;
	while (rc == 0)
		rc = pthread_cond_timedwait(&c, &m, &until);
	pthread_mutex_unlock(&m);
	assert_int_equal(rc, ETIMEDOUT);
	assert_in_range(clock_mono_ms() - t0, 49, 1000);
	pthread_cond_destroy(&c);
}

static void test_hex_encode(void **state)
{
	const uint8_t in[] = {0x00, 0x01, 0x7f, 0x80, 0x9a, 0xab, 0xff, 0x10};
	char out[2 * sizeof(in) + 1];
	char all[2 * 256 + 1];
	uint8_t bytes[256];
	(void)state;

	hex_encode(in, sizeof(in), out);
	assert_string_equal(out, "00017f809aabff10");
	hex_encode(in, 0, out);
	assert_string_equal(out, "");

	for (size_t i = 0; i < 256; i++)
		bytes[i] = (uint8_t)i;
	hex_encode(bytes, 256, all);
	for (size_t i = 0; i < 256; i++) {
		assert_int_equal(all[2 * i], "0123456789abcdef"[i >> 4]);
		assert_int_equal(all[2 * i + 1], "0123456789abcdef"[i & 15]);
	}
}

/* hex_decode over an exact-size heap copy of s (no terminating NUL). */
static int hex_decode_exact(const char *s, uint8_t *out, size_t cap, size_t *out_len)
{
	size_t len;
	char *copy = exact_copy(s, &len);
	int rc = hex_decode(copy, len, out, cap, out_len);
	free(copy);
	return rc;
}

static void test_hex_decode_accepts(void **state)
{
	uint8_t out[8];
	size_t n = 99;
	char all[2 * 256 + 1];
	uint8_t bytes[256], back[256];
	(void)state;

	assert_int_equal(hex_decode_exact("00017f809aabff10", out, sizeof(out), &n), 0);
	assert_int_equal(n, 8);
	assert_memory_equal(out, "\x00\x01\x7f\x80\x9a\xab\xff\x10", 8);
	/* Upper and mixed case decode to the same bytes. */
	assert_int_equal(hex_decode_exact("ABCDEF", out, sizeof(out), &n), 0);
	assert_int_equal(n, 3);
	assert_memory_equal(out, "\xab\xcd\xef", 3);
	assert_int_equal(hex_decode_exact("aBcDeF", out, sizeof(out), &n), 0);
	assert_memory_equal(out, "\xab\xcd\xef", 3);
	/* Empty is zero bytes, even with no room. */
	assert_int_equal(hex_decode_exact("", out, 0, &n), 0);
	assert_int_equal(n, 0);
	/* Round trip over every byte value. */
	for (size_t i = 0; i < 256; i++)
		bytes[i] = (uint8_t)i;
	hex_encode(bytes, 256, all);
	assert_int_equal(hex_decode(all, 512, back, sizeof(back), &n), 0);
	assert_int_equal(n, 256);
	assert_memory_equal(back, bytes, 256);
}

static void test_hex_decode_rejects(void **state)
{
	static const char *const bad[] = {
	    "0",        /* odd length */
	    "abc",      /* odd length */
	    "0g",       /* not hex */
	    "g0",       /* not hex */
	    "12 4",     /* space */
	    "0x12",     /* prefix */
	    "1234z",    /* trailing garbage (and odd) */
	    "123456zz", /* trailing garbage */
	    "/0",       /* just below '0' */
	    ":0",       /* just above '9' */
	    "@0",       /* just below 'A' */
	    "G0",       /* just above 'F' */
	    "`0",       /* just below 'a' */
	};
	uint8_t out[8];
	size_t n;
	(void)state;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		n = 99;
		memset(out, 0x55, sizeof(out));
		if (hex_decode_exact(bad[i], out, sizeof(out), &n) != -1)
			fail_msg("accepted \"%s\"", bad[i]);
		assert_int_equal(n, 0);
		for (size_t k = 0; strlen(bad[i]) % 2 == 0 && k < strlen(bad[i]) / 2; k++)
			assert_int_equal(out[k], 0); /* what was written is wiped */
	}
	/* A NUL inside the length is not a digit either. */
	assert_int_equal(hex_decode("00\0"
	                            "0",
	                            4, out, sizeof(out), &n),
	                 -1);
	/* Every byte value that is not a hex digit is rejected in both places. */
	for (unsigned c = 0; c < 256; c++) {
		char t[2] = {(char)c, '0'};
		bool digit = str_hex_digit((char)c) >= 0;
		assert_int_equal(hex_decode(t, 2, out, 1, &n), digit ? 0 : -1);
		if (digit)
			assert_int_equal(out[0], str_hex_digit((char)c) << 4);
		t[0] = '0';
		t[1] = (char)c;
		assert_int_equal(hex_decode(t, 2, out, 1, &n), digit ? 0 : -1);
	}
	/* Output too small: nothing written past cap. */
	out[1] = 0x55;
	assert_int_equal(hex_decode_exact("0102", out, 1, &n), -1);
	assert_int_equal(n, 0);
	assert_int_equal(out[1], 0x55);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_clock_mono_deadline_and_cond),
	    cmocka_unit_test(test_str_is_token),
	    cmocka_unit_test(test_hex_encode),
	    cmocka_unit_test(test_hex_decode_accepts),
	    cmocka_unit_test(test_hex_decode_rejects),
	    cmocka_unit_test(test_parse_uint64),
	    cmocka_unit_test(test_parse_int64_accepts),
	    cmocka_unit_test(test_parse_int64_rejects),
	    cmocka_unit_test(test_parse_int64_range),
	    cmocka_unit_test(test_parse_int64_uses_len),
	    cmocka_unit_test(test_parse_bool),
	    cmocka_unit_test(test_ascii_ieq_and_prefix),
	    cmocka_unit_test(test_buf_limit),
	    cmocka_unit_test(test_buf_printf_and_growth),
	    cmocka_unit_test(test_buf_zero_limit_and_empty_steal),
	    cmocka_unit_test(test_buf_append_pct),
	    cmocka_unit_test(test_rfc3339_round_trip),
	    cmocka_unit_test(test_rfc3339_parse_forms),
	    cmocka_unit_test(test_rfc3339_rejects),
	    cmocka_unit_test(test_rfc3339_range_after_offset),
	    cmocka_unit_test(test_siphash),
	    cmocka_unit_test(test_str_i64_matches_printf),
	    cmocka_unit_test(test_strbuf_cuts_like_snprintf),
	    cmocka_unit_test(test_str_copy_bounds),
	    cmocka_unit_test(test_buf_sink_write_bounded),
	    cmocka_unit_test(test_str_ipv4_matches_inet_ntop),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
