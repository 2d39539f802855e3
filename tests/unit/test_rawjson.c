/*
 * test_rawjson.c: unit tests for src/ingest/rawjson.c: it accepts and
 * refuses exactly what jansson's json_loadb(JSON_REJECT_DUPLICATES) does
 * (grammar, UTF-8, escapes, surrogates, \u0000, repeated names also when
 * escaped and in large objects, depth, int64 and double limits), writes
 * compact text equal to jansson's compact dump but for numbers, which keep
 * their text (129.95, 1E2, -0), counts that length while parsing, and keeps
 * the texts right through changes (delete, set in place, append, copy).
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

#include "core/arena.h"
#include "core/str.h"
#include "ingest/rawjson.h"

/* rj_write of v into a static buffer; NUL-terminated. */
static const char *written(const struct rj *v)
{
	static char buf[1 << 20];
	struct strbuf sb;
	strbuf_init(&sb, buf, sizeof buf);
	assert_int_equal(rj_write(&sb, v), 0);
	return buf;
}

/* Parse s with both; they agree on accepting it; returns whether it was accepted. */
static bool agree(const char *s, size_t n)
{
	struct arena a;
	size_t pos = 0;
	arena_init(&a);
	struct rj *v = rj_parse(&a, s, n, &pos);
	json_t *j = json_loadb(s, n, JSON_REJECT_DUPLICATES, NULL);
	if (!v != !j)
		fail_msg("rawjson %s, jansson %s: %.*s", v ? "accepts" : "refuses",
		         j ? "accepts" : "refuses", (int)(n > 200 ? 200 : n), s);
	if (v) {
		const char *out = written(v);
		assert_int_equal(strlen(out), v->clen);
		json_t *back = json_loads(out, JSON_REJECT_DUPLICATES, NULL);
		assert_non_null(back);
		assert_true(json_equal(back, j));
		json_decref(back);
	} else {
		assert_true(pos <= n);
	}
	json_decref(j);
	arena_free(&a);
	return v != NULL;
}

static bool agree_s(const char *s)
{
	return agree(s, strlen(s));
}

static void test_accepts_what_jansson_accepts(void **state)
{
	(void)state;
	static const char *const ok[] = {"{}",
	                                 "[]",
	                                 " \t\r\n{ } ",
	                                 "[1,-0,0.5,-1.25e+10,1E-3,true,false,null,\"x\"]",
	                                 "{\"a\":{\"b\":[{}]}}",
	                                 "[\"\\u00e9\\ud83d\\ude00\\/\\b\\f\\n\\r\\t\\\"\\\\\"]",
	                                 "[\"caf\xc3\xa9 \xe4\xb8\xad \xf0\x9f\x98\x80\"]",
	                                 "[9223372036854775807]",
	                                 "[-9223372036854775808]",
	                                 "[1e-400]",
	                                 "[1.7976931348623157e308]",
	                                 "{\"a\":1,\"A\":2}",
	                                 "[\"\x7f\"]"};
	for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++)
		if (!agree_s(ok[i]))
			fail_msg("refused: %s", ok[i]);
	static const char *const bad[] = {"",
	                                  " ",
	                                  "1",
	                                  "\"x\"",
	                                  "null",
	                                  "{",
	                                  "[1,]",
	                                  "[,1]",
	                                  "{\"a\"}",
	                                  "{\"a\":}",
	                                  "{a:1}",
	                                  "[01]",
	                                  "[1.]",
	                                  "[.5]",
	                                  "[1e]",
	                                  "[1e+]",
	                                  "[+1]",
	                                  "[-]",
	                                  "[tru]",
	                                  "[truex]",
	                                  "[nul]",
	                                  "[1]x",
	                                  "[1] [2]",
	                                  "[\"\\u0000\"]",
	                                  "[\"\\ud800\"]",
	                                  "[\"\\udc00\"]",
	                                  "[\"\\ud800\\u0041\"]",
	                                  "[\"\\x\"]",
	                                  "[\"\\u12\"]",
	                                  "[\"a\x01\"]",
	                                  "[\"\xc3\"]",
	                                  "[\"\xc0\x80\"]",
	                                  "[\"\xed\xa0\x80\"]",
	                                  "[\"\xf4\x90\x80\x80\"]",
	                                  "[\"\xff\"]",
	                                  "[\xc3\xa9]",
	                                  "[9223372036854775808]",
	                                  "[-9223372036854775809]",
	                                  "[99999999999999999999]",
	                                  "[1e400]",
	                                  "[-1e400]",
	                                  "{\"a\":1,\"a\":2}",
	                                  "{\"a\":1,\"\\u0061\":2}",
	                                  "[\"unterminated",
	                                  "{\"a\":1,}",
	                                  "[1 2]",
	                                  "{\"a\" 1}"};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
		if (agree_s(bad[i]))
			fail_msg("accepted: %s", bad[i]);
	/* A NUL byte: refused inside a string and outside. */
	assert_false(agree("[\"a\0\"]", 6));
	assert_false(agree("[1,\0]", 5));
	/* Stricter than jansson, whose lookahead drops a NUL after a literal or number. */
	struct arena a;
	size_t pos;
	arena_init(&a);
	assert_null(rj_parse(&a, "[null\0]", 7, &pos));
	assert_null(rj_parse(&a, "[12\0]", 5, &pos));
	assert_int_equal(pos, 3);
	arena_free(&a);
	/* 400 digits of a real: within a double; 310 as an exponent-free real: over. */
	char big[1024] = "[1";
	memset(big + 2, '0', 400);
	strcpy(big + 402, ".5]");
	assert_false(agree_s(big));
	memset(big + 2, '0', 300);
	strcpy(big + 302, ".5]");
	assert_true(agree_s(big));
}

/* n nested arrays, with a number in the innermost when num. */
static char *nest(size_t n, bool num)
{
	char *s = malloc(2 * n + 2);
	size_t o = 0;
	for (size_t i = 0; i < n; i++)
		s[o++] = '[';
	if (num)
		s[o++] = '1';
	for (size_t i = 0; i < n; i++)
		s[o++] = ']';
	s[o] = '\0';
	return s;
}

static void test_depth(void **state)
{
	(void)state;
	/* jansson counts every value: 2048 arrays are 2048 levels, a number in them 2049. */
	struct {
		size_t n;
		bool num, ok;
	} cases[] = {
	    {2048, false, true}, {2047, true, true}, {2048, true, false}, {2049, false, false}};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		char *s = nest(cases[i].n, cases[i].num);
		assert_int_equal(agree_s(s), cases[i].ok);
		free(s);
	}
}

static void test_repeated_names_in_large_objects(void **state)
{
	(void)state;
	struct buf b;
	for (int rep = 0; rep < 2; rep++) {
		buf_init(&b, 4 * 1024 * 1024);
		buf_append_str(&b, "{");
		for (int i = 0; i < 5000; i++)
			buf_printf(&b, "%s\"k%d\":%d", i ? "," : "", i, i);
		if (rep)
			buf_append_str(&b, ",\"k\\u0031234\":0"); /* k1234 again, escaped */
		buf_append_str(&b, "}");
		assert_int_equal(agree(b.data, b.len), !rep);
		buf_free(&b);
	}
}

static void test_written_as_jansson_but_numbers_as_sent(void **state)
{
	(void)state;
	struct arena a;
	size_t pos;
	arena_init(&a);
	/* Whitespace goes; escapes are written as jansson writes them; numbers stay. */
	const char *in =
	    "{ \"total\" : 129.95, \"tax\":0.1, \"big\":1E2, \"z\":-0, \"q\":3,"
	    " \"s\":\"caf\\u00e9 \\/ \\u001f \\\"x\\\"\", \"a\":[ 1 , {\"b\":null} ] }";
	struct rj *v = rj_parse(&a, in, strlen(in), &pos);
	assert_non_null(v);
	assert_false(v->verbatim);
	const char *out = written(v);
	assert_string_equal(out,
	                    "{\"total\":129.95,\"tax\":0.1,\"big\":1E2,\"z\":-0,\"q\":3,"
	                    "\"s\":\"caf\xc3\xa9 / \\u001F \\\"x\\\"\",\"a\":[1,{\"b\":null}]}");
	assert_int_equal(strlen(out), v->clen);
	/* Without numbers, byte for byte jansson's compact dump. */
	const char *t = "{ \"k\\u00e9\": [\"\\ud83d\\ude00\", \"\\t\", true], \"e\" : {} }";
	struct rj *w = rj_parse(&a, t, strlen(t), &pos);
	json_t *j = json_loads(t, 0, NULL);
	char *d = json_dumps(j, JSON_COMPACT);
	assert_string_equal(written(w), d);
	free(d);
	json_decref(j);
	/* Compact as sent: one span, and it is what was sent. */
	const char *c = "{\"a\":[1,2.50,{\"b\":\"x\"}],\"c\":\"d\"}";
	struct rj *x = rj_parse(&a, c, strlen(c), &pos);
	assert_true(x->verbatim);
	assert_string_equal(written(x), c);
	arena_free(&a);
}

static void test_changes(void **state)
{
	(void)state;
	struct arena a;
	size_t pos;
	arena_init(&a);
	const char *in =
	    "{\"a\":1,\"ctx\":{\"ip\":\"1.2.3.4\",\"t\":{\"email\":\"x\"}},\"b\":2.50}";
	struct rj *v = rj_parse(&a, in, strlen(in), &pos);
	struct rj *ctx = rj_get(v, "ctx");
	struct rj *copy = rj_copy(&a, ctx);
	rj_del(ctx, "ip");
	rj_set(rj_get(ctx, "t"), "email", rj_new_string(&a, "h\"1")); /* in its place */
	rj_set(v, "a", rj_new_string(&a, "one"));
	rj_set(v, "new", rj_new_object(&a));
	assert_string_equal(written(v), "{\"a\":\"one\",\"ctx\":{\"t\":{\"email\":\"h\\\"1\"}},"
	                                "\"b\":2.50,\"new\":{}}");
	/* The copy is its own: the changes above did not reach it, and its changes stay in it. */
	assert_string_equal(written(copy), "{\"ip\":\"1.2.3.4\",\"t\":{\"email\":\"x\"}}");
	rj_del(rj_get(copy, "t"), "email");
	assert_string_equal(written(copy), "{\"ip\":\"1.2.3.4\",\"t\":{}}");
	rj_append(rj_get(v, "new"), rj_copy(&a, rj_get(copy, "ip")));
	assert_string_equal(written(rj_get(v, "new")), "{\"ip\":\"1.2.3.4\"}");
	assert_null(rj_get(v, "ip"));
	assert_int_equal(rj_get(v, "ctx")->n, 1);
	size_t n;
	assert_string_equal(rj_str(&a, rj_get(copy, "ip"), &n), "1.2.3.4");
	assert_int_equal(n, 7);
	assert_null(rj_str(&a, rj_get(v, "b"), NULL));
	arena_free(&a);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_accepts_what_jansson_accepts),
	    cmocka_unit_test(test_depth),
	    cmocka_unit_test(test_repeated_names_in_large_objects),
	    cmocka_unit_test(test_written_as_jansson_but_numbers_as_sent),
	    cmocka_unit_test(test_changes),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
