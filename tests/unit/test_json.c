/*
 * test_json.c: unit tests for the direct JSON writers that replace jansson
 * on the hot path: json_put_string (src/core/json.c) and the GET /v1/verify
 * body (verify_body, src/gateway/verify.c). Both must give byte for byte
 * what json_dumps(JSON_COMPACT | JSON_ENSURE_ASCII) gives, so every case is
 * compared with jansson itself: escapes, control characters, non-ASCII and
 * surrogate pairs, and invalid UTF-8 (refused by both). And the lossy
 * form for log lines (json_put_string_lossy): every byte value, overlong
 * forms, surrogates and cut-short sequences become \uFFFD (one per byte),
 * the output always parses, and a too-small buffer cuts between escapes.
 * And json_put_value (the stored SDK event bodies): jansson's compact dump
 * byte for byte without reals, reals as the shortest text that reads back.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/json.h"
#include "gateway/gateway.h"

#define FLAGS (JSON_COMPACT | JSON_ENSURE_ASCII | JSON_ENCODE_ANY)

/* json_put_string's output for s, or NULL when it refused s (malloc'd). */
static char *put(const char *s)
{
	char data[4096];
	struct strbuf b;
	strbuf_init(&b, data, sizeof data);
	strbuf_puts(&b, "<");
	int rc = json_put_string(&b, s);
	assert_false(b.overflow);
	if (rc < 0) {
		assert_string_equal(data, "<"); /* refused: nothing written */
		return NULL;
	}
	assert_int_equal(rc, 0);
	return strdup(data + 1);
}

/* What jansson writes for the string s, or NULL when it refuses s. */
static char *jansson(const char *s)
{
	json_t *j = json_string(s);
	if (!j)
		return NULL;
	char *out = json_dumps(j, FLAGS);
	json_decref(j);
	assert_non_null(out);
	return out;
}

static void same_as_jansson(const char *s)
{
	char *got = put(s), *want = jansson(s);
	if (!want) {
		if (got)
			fail_msg("accepted invalid UTF-8 as %s", got);
	} else {
		if (!got)
			fail_msg("refused what jansson writes as %s", want);
		assert_string_equal(got, want);
	}
	free(got);
	free(want);
}

static void test_put_string_cases(void **state)
{
	(void)state;
	static const char *const cases[] = {
	    "",
	    "01HXZ9G7KMV2QX8Y1S5RJW3B7T",
	    "live",
	    "quote \" backslash \\ slash /",
	    "\b\f\n\r\t",
	    "\x01\x02\x1f \x7f",
	    "caf\xc3\xa9",                    /* U+00E9 */
	    "\xe2\x82\xac",                   /* U+20AC */
	    "\xef\xbf\xbf",                   /* U+FFFF */
	    "\xf0\x9f\x98\x80",               /* U+1F600: a surrogate pair */
	    "\xf4\x8f\xbf\xbf",               /* U+10FFFF */
	    "\xc2\x80 \xdf\xbf \xe0\xa0\x80", /* the smallest of each length */
	    "\x80",                           /* a continuation byte first */
	    "\xc0\xaf",                       /* overlong */
	    "\xc1\xbf",                       /* overlong */
	    "\xe0\x80\xaf",                   /* overlong */
	    "\xf0\x80\x80\xaf",               /* overlong */
	    "\xed\xa0\x80",                   /* U+D800, a surrogate */
	    "\xed\xbf\xbf",                   /* U+DFFF */
	    "\xf4\x90\x80\x80",               /* past U+10FFFF */
	    "\xf5\x80\x80\x80",
	    "\xff",
	    "ab\xc3",         /* cut short at the end */
	    "ab\xe2\x82",     /* cut short at the end */
	    "\xe2\x82z",      /* a non-continuation inside */
	    "ok\xc3\xa9\"\n", /* runs and escapes mixed */
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
		same_as_jansson(cases[i]);
}

/* json_put_string_lossy's output for s (malloc'd); checks it parses as a JSON string. */
static char *lossy(const char *s)
{
	char data[8192];
	struct strbuf b;
	strbuf_init(&b, data, sizeof data);
	json_put_string_lossy(&b, s);
	assert_false(b.overflow);
	json_error_t err;
	json_t *j = json_loads(data, JSON_DECODE_ANY, &err);
	if (!j || !json_is_string(j))
		fail_msg("not a JSON string: %s (%s)", data, err.text);
	json_decref(j);
	for (const char *p = data; *p; p++)
		assert_true((unsigned char)*p >= 0x20 && (unsigned char)*p < 0x7f);
	return strdup(data);
}

static void test_put_string_random(void **state)
{
	(void)state;
	uint64_t x = 0x2545F4914F6CDD1Du;
	static const unsigned char pool[] = {'a',  '"',  '\\', '/',  0x01, 0x1f, 0x7f, 0x80, 0xbf,
	                                     0xc2, 0xdf, 0xe0, 0xed, 0xef, 0xf0, 0xf4, 0xff, 'Z'};
	for (int n = 0; n < 50000; n++) {
		char s[12];
		size_t len = (size_t)(n % 11);
		for (size_t i = 0; i < len; i++) {
			x ^= x << 13;
			x ^= x >> 7;
			x ^= x << 17;
			/* Half the bytes from the interesting pool, half anything but NUL. */
			unsigned char c =
			    x & 1 ? pool[(x >> 8) % sizeof pool] : (unsigned char)(x >> 16);
			s[i] = (char)(c ? c : 'q');
		}
		s[len] = '\0';
		same_as_jansson(s);
		/* The lossy form always gives a JSON string, the strict one's where it has one. */
		char *got = lossy(s), *strict = put(s);
		if (strict && !strchr(s, 0x7f))
			assert_string_equal(got, strict);
		free(got);
		free(strict);
	}
}

static void lossy_is(const char *s, const char *want)
{
	char *got = lossy(s);
	assert_string_equal(got, want);
	free(got);
}

static void test_lossy_every_byte_value(void **state)
{
	(void)state;
	for (int c = 1; c < 256; c++) {
		char s[4] = {'a', (char)c, 'b', '\0'};
		char *got = lossy(s);
		if (c == 0x7f) {
			assert_string_equal(got,
			                    "\"a\\u007Fb\""); /* DEL is escaped for terminals */
		} else if (c < 0x80) {
			char *want = jansson(s); /* ASCII: exactly what jansson writes */
			assert_non_null(want);
			assert_string_equal(got, want);
			free(want);
		} else {
			/* A lone byte >= 0x80 starts no valid sequence here ('b' follows). */
			assert_string_equal(got, "\"a\\uFFFDb\"");
		}
		free(got);
	}
}

static void test_lossy_invalid_sequences(void **state)
{
	(void)state;
	lossy_is("\xc0\xaf", "\"\\uFFFD\\uFFFD\"");            /* overlong '/' */
	lossy_is("\xc1\xbf", "\"\\uFFFD\\uFFFD\"");            /* overlong */
	lossy_is("\xe0\x80\xaf", "\"\\uFFFD\\uFFFD\\uFFFD\""); /* overlong, 3 bytes */
	lossy_is("\xf0\x80\x80\xaf", "\"\\uFFFD\\uFFFD\\uFFFD\\uFFFD\"");
	lossy_is("\xed\xa0\x80", "\"\\uFFFD\\uFFFD\\uFFFD\""); /* U+D800 */
	lossy_is("\xed\xbf\xbf", "\"\\uFFFD\\uFFFD\\uFFFD\""); /* U+DFFF */
	lossy_is("\xed\xa0\xbd\xed\xb8\x80", "\"\\uFFFD\\uFFFD\\uFFFD\\uFFFD\\uFFFD\\uFFFD\"");
	lossy_is("\xf4\x90\x80\x80", "\"\\uFFFD\\uFFFD\\uFFFD\\uFFFD\""); /* past U+10FFFF */
	lossy_is("\xf5\x80", "\"\\uFFFD\\uFFFD\"");
	lossy_is("ab\xe2\x82", "\"ab\\uFFFD\\uFFFD\"");                /* cut short */
	lossy_is("\xe2\x82z", "\"\\uFFFD\\uFFFDz\"");                  /* interrupted */
	lossy_is("\xc3\xa9\xff\xc3\xa9", "\"\\u00E9\\uFFFD\\u00E9\""); /* resyncs at once */
	lossy_is("\xf0\x9f\x98\x80", "\"\\uD83D\\uDE00\"");            /* valid: as jansson */
	lossy_is("%00\n\r\"\\\x7f", "\"%00\\n\\r\\\"\\\\\\u007F\"");
}

static void test_cut_between_escapes(void **state)
{
	(void)state;
	const char *s = "ab\xc3\xa9\"\xff\xf0\x9f\x98\x80zz\n";
	char full[256];
	struct strbuf b;
	strbuf_init(&b, full, sizeof full);
	json_put_string_lossy(&b, s);
	size_t flen = b.len;
	for (size_t cap = 1; cap <= flen + 1; cap++) {
		char data[256];
		strbuf_init(&b, data, cap);
		json_put_string_lossy(&b, s);
		assert_true(b.len < cap);
		if (cap < 3) { /* not even "" fits */
			assert_true(b.overflow);
			assert_int_equal(b.len, 0);
			continue;
		}
		assert_int_equal(b.overflow, cap <= flen);
		/* A prefix of the whole literal's content, closed: still a JSON string. */
		assert_true(b.len >= 2 && data[b.len - 1] == '"');
		assert_memory_equal(data, full, b.len - 1);
		json_t *j = json_loads(data, JSON_DECODE_ANY, NULL);
		assert_non_null(j);
		json_decref(j);
		/* The strict writer cuts the same way. */
		char sdata[256];
		struct strbuf sb;
		strbuf_init(&sb, sdata, cap);
		assert_int_equal(json_put_string(&sb, "ab\xc3\xa9\"zz\n"), 0);
		j = json_loads(sdata, JSON_DECODE_ANY, NULL);
		assert_non_null(j);
		json_decref(j);
	}
}

/* The body verify.c used to build with jansson, as the reference. */
static char *verify_body_jansson(const struct store_key *k)
{
	json_t *o =
	    json_pack("{s:b, s:s, s:o, s:s, s:s}", "ok", 1, "org_id", k->org_id, "project_id",
	              k->project_id[0] ? json_string(k->project_id) : json_null(), "key_id", k->id,
	              "env", k->env);
	if (!o)
		return NULL;
	char *s = json_dumps(o, JSON_COMPACT | JSON_ENSURE_ASCII);
	json_decref(o);
	return s;
}

static struct store_key key_of(const char *org, const char *project, const char *id,
                               const char *env)
{
	struct store_key k;
	memset(&k, 0, sizeof k);
	snprintf(k.org_id, sizeof k.org_id, "%s", org);
	snprintf(k.project_id, sizeof k.project_id, "%s", project);
	snprintf(k.id, sizeof k.id, "%s", id);
	snprintf(k.env, sizeof k.env, "%s", env);
	return k;
}

static void test_verify_body(void **state)
{
	(void)state;
	const struct store_key keys[] = {
	    key_of("01M8353DH1PCMCWW3991794E8Q", "", "01M8353DKFV109TCCAD8HZ7H4P", "live"),
	    key_of("01M8353DH1PCMCWW3991794E8Q", "01M8353DH1PCMCWW3991794E8R",
	           "01M8353DKFV109TCCAD8HZ7H4P", "test"),
	    key_of("", "", "01M8353DKFV109TCCAD8HZ7H4P", "root"),
	    key_of("a\"b\\c", "\n\x01", "\xc3\xa9\xf0\x9f\x98\x80", "\t"),
	    /* Worst case: every byte of every field escaped (6 bytes each). */
	    key_of("\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01"
	           "\x01\x01\x01\x01\x01\x01\x01",
	           "\x02\x02\x02\x02\x02\x02\x02\x02\x02\x02\x02\x02\x02\x02\x02\x02\x02\x02\x02"
	           "\x02\x02\x02\x02\x02\x02\x02",
	           "\x03\x03\x03\x03\x03\x03\x03\x03\x03\x03\x03\x03\x03\x03\x03\x03\x03\x03\x03"
	           "\x03\x03\x03\x03\x03\x03\x03",
	           "\x04\x04\x04\x04"),
	};
	for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
		char body[1024];
		int n = verify_body(&keys[i], body, sizeof body);
		char *want = verify_body_jansson(&keys[i]);
		assert_non_null(want);
		assert_int_equal(n, (int)strlen(want));
		assert_string_equal(body, want);
		free(want);
	}
	/* The first one, literally (the shape clients and tests see). */
	char body[1024];
	assert_true(verify_body(&keys[0], body, sizeof body) > 0);
	assert_string_equal(body, "{\"ok\":true,\"org_id\":\"01M8353DH1PCMCWW3991794E8Q\","
	                          "\"project_id\":null,\"key_id\":\"01M8353DKFV109TCCAD8HZ7H4P\","
	                          "\"env\":\"live\"}");
	/* Too small a buffer, or a field jansson would refuse: -1. */
	assert_int_equal(verify_body(&keys[0], body, 40), -1);
	struct store_key bad = key_of("01M8353DH1PCMCWW3991794E8Q", "\xff", "x", "live");
	assert_int_equal(verify_body(&bad, body, sizeof body), -1);
	assert_null(verify_body_jansson(&bad));
}

/* json_put_value's text for the document doc (parsed by jansson), into a cap-byte buffer. */
static int put_doc(const char *doc, char *out, size_t cap, json_t **parsed)
{
	json_error_t err;
	json_t *v = json_loads(doc, JSON_DECODE_ANY, &err);
	if (!v)
		fail_msg("bad test document %s: %s", doc, err.text);
	struct strbuf sb;
	strbuf_init(&sb, out, cap);
	int rc = json_put_value(&sb, v);
	*parsed = v;
	return rc;
}

/* Without reals json_put_value writes what json_dumpb(JSON_COMPACT) writes, byte for byte. */
static void test_put_value_as_jansson(void **state)
{
	(void)state;
	static const char *const docs[] = {
	    "{}",
	    "[]",
	    "{\"a\":1}",
	    "[1,-2,9223372036854775807,-9223372036854775808]",
	    "{\"z\":1,\"a\":{\"y\":[true,false,null],\"b\":\"\"}}",
	    "{\"s\":\"caf\\u00e9 \\u00fc\\u4e2d\\ud83d\\ude00 raw: \xc3\xa9\"}",
	    "{\"ctl\":\"a\\u0001b\\u001fc\\n\\t\\r\\b\\f\\\"\\\\/d\\u007f\"}",
	    "{\"k\\\"ey\\u0002\":[[],[{}],{\"x\":[[[]]]}]}",
	    "\"top-level string\"",
	    "17",
	    "null",
	    "{\"type\":\"track\",\"event\":\"Order Completed\",\"properties\":{\"products\":"
	    "[{\"sku\":\"A-1\",\"qty\":2}]},\"context\":{\"traits\":{\"email_sha256\":\"ab\"}}}",
	};
	for (size_t i = 0; i < sizeof docs / sizeof docs[0]; i++) {
		char out[1024];
		json_t *v = NULL;
		assert_int_equal(put_doc(docs[i], out, sizeof out, &v), 0);
		char *want = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
		assert_non_null(want);
		assert_string_equal(out, want);
		free(want);
		/* json_text, both ways: the answers' ASCII form and the bodies' UTF-8 one. */
		size_t n = 0;
		for (int ascii = 0; ascii < 2; ascii++) {
			char *got = json_text(v, ascii, &n);
			want = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY |
			                         (ascii ? JSON_ENSURE_ASCII : 0));
			assert_string_equal(got, want);
			assert_int_equal(n, strlen(want));
			free(got);
			free(want);
		}
		json_decref(v);
	}
	/* A document larger than json_text's first buffer is written whole. */
	json_t *big = json_array();
	for (int i = 0; i < 20000; i++)
		json_array_append_new(big, json_pack("{s:i, s:s}", "i", i, "s", "caf\xc3\xa9"));
	size_t n = 0;
	char *got = json_text(big, true, &n);
	char *want = json_dumps(big, JSON_COMPACT | JSON_ENSURE_ASCII);
	assert_true(n > 16384 * 8);
	assert_string_equal(got, want);
	free(got);
	free(want);
	json_decref(big);
}

/* Reals: the shortest text that reads back as the same double, and always a real. */
static void test_put_value_reals(void **state)
{
	(void)state;
	static const struct {
		const char *in, *out;
	} cases[] = {
	    {"129.95", "129.95"},
	    {"0.1", "0.1"},
	    {"5.0", "5.0"},
	    {"-0.0", "-0.0"},
	    {"1e300", "1e+300"},
	    {"2.5e-8", "2.5e-08"},
	    {"0.30000000000000004", "0.30000000000000004"},
	    {"3.141592653589793", "3.141592653589793"},
	    {"123456789012345678.0", "1.2345678901234568e+17"},
	    {"[1.5,2]", "[1.5,2]"},
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		char out[128];
		json_t *v = NULL;
		assert_int_equal(put_doc(cases[i].in, out, sizeof out, &v), 0);
		assert_string_equal(out, cases[i].out);
		/* It reads back as the same value. */
		json_t *back = json_loads(out, JSON_DECODE_ANY, NULL);
		assert_non_null(back);
		assert_true(json_equal(v, back));
		json_decref(back);
		json_decref(v);
	}
}

/* A document that does not fit is refused (-1), whatever the cut. */
static void test_put_value_overflow(void **state)
{
	(void)state;
	const char *doc = "{\"a\":\"0123456789\",\"b\":[1,2,3],\"c\":\"\\u00e9\\u00e9\"}";
	char want[256];
	json_t *v = NULL;
	assert_int_equal(put_doc(doc, want, sizeof want, &v), 0);
	size_t n = strlen(want);
	for (size_t cap = 1; cap <= n + 1; cap++) {
		char out[256];
		struct strbuf sb;
		strbuf_init(&sb, out, cap);
		assert_int_equal(json_put_value(&sb, v), cap == n + 1 ? 0 : -1);
	}
	json_decref(v);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_put_string_cases),
	    cmocka_unit_test(test_put_string_random),
	    cmocka_unit_test(test_verify_body),
	    cmocka_unit_test(test_lossy_every_byte_value),
	    cmocka_unit_test(test_lossy_invalid_sequences),
	    cmocka_unit_test(test_cut_between_escapes),
	    cmocka_unit_test(test_put_value_as_jansson),
	    cmocka_unit_test(test_put_value_reals),
	    cmocka_unit_test(test_put_value_overflow),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
