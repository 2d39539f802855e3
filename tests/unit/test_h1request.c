/*
 * test_h1request.c: the server's HTTP/1.1 request parser (h1_parse_request
 * in src/http/h1parse.c) and the strict decoding of a request's chunked
 * body: each framing ambiguity of RFC 9112 refused on its own with its
 * status (400, 431, 501, 505), what is accepted read exactly (method,
 * target and its form, version, fields, framing, keep-alive, Expect). Every
 * parse gets a heap copy of exactly the bytes given, so ASan reports any
 * read past the end. tests/integration/test_h1_differential.py compares
 * the same parser with python3-h11.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "http/h1parse.h"

static char *buf;
static struct h1_request req;
static struct reqcheck_verdict verdict;

static int parse(const char *s)
{
	size_t len = strlen(s);
	free(buf);
	buf = xmalloc(len ? len : 1);
	memcpy(buf, s, len);
	return h1_parse_request(buf, len, &req, &verdict);
}

static void ok(const char *s)
{
	if (parse(s) != 0)
		fail_msg("refused (%d %s): \"%s\"", verdict.status, verdict.message, s);
}

/* Refused with status, and a message containing what (NULL: any); close as given. */
static void refused_closing(const char *s, int status, const char *what, bool close)
{
	if (parse(s) == 0)
		fail_msg("accepted: \"%s\"", s);
	assert_int_equal(verdict.status, status);
	assert_int_equal(verdict.close, close);
	if (what && !strstr(verdict.message, what))
		fail_msg("\"%s\": refused for \"%s\", not \"%s\"", s, verdict.message, what);
}

/* Refused, and the framing is in doubt: the connection must close after the answer. */
static void refused(const char *s, int status, const char *what)
{
	refused_closing(s, status, what, true);
}

static bool field_is(size_t i, const char *name, const char *value)
{
	const struct h1_field *f = &req.fields[i];
	return f->name_len == strlen(name) && memcmp(f->name, name, f->name_len) == 0 &&
	       f->value_len == strlen(value) && memcmp(f->value, value, f->value_len) == 0;
}

static void test_simple_get(void **state)
{
	(void)state;
	ok("GET /a/b?c=d HTTP/1.1\r\nHost: api.example\r\nAccept:  */* \r\n\r\n");
	assert_int_equal(req.method_len, 3);
	assert_memory_equal(req.method, "GET", 3);
	assert_int_equal(req.target_len, 8);
	assert_memory_equal(req.target, "/a/b?c=d", 8);
	assert_int_equal(req.form, H1_FORM_ORIGIN);
	assert_int_equal(req.minor, 1);
	assert_true(req.keep_alive);
	assert_false(req.expect_continue);
	assert_int_equal(req.framing, H1_BODY_NONE);
	assert_int_equal(req.n_fields, 2);
	assert_true(field_is(0, "Host", "api.example"));
	assert_true(field_is(1, "Accept", "*/*")); /* surrounding whitespace trimmed */
}

static void test_keep_alive_rules(void **state)
{
	(void)state;
	ok("GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n");
	assert_false(req.keep_alive);
	ok("GET / HTTP/1.1\r\nHost: a\r\nConnection: Upgrade, CLOSE\r\n\r\n");
	assert_false(req.keep_alive);
	ok("GET / HTTP/1.0\r\n\r\n"); /* no Host needed on 1.0 */
	assert_int_equal(req.minor, 0);
	assert_false(req.keep_alive);
	ok("GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
	assert_true(req.keep_alive);
	ok("GET / HTTP/1.2\r\nHost: a\r\n\r\n"); /* RFC 9112 2.3: read as 1.1 */
	assert_int_equal(req.minor, 1);
}

static void test_expect_continue(void **state)
{
	(void)state;
	ok("PUT / HTTP/1.1\r\nHost: a\r\nExpect: 100-Continue\r\nContent-Length: 3\r\n\r\n");
	assert_true(req.expect_continue);
	assert_int_equal(req.framing, H1_BODY_LENGTH);
	assert_int_equal(req.content_length, 3);
	ok("PUT / HTTP/1.0\r\nExpect: 100-continue\r\n\r\n"); /* 1.0 has no interim answers */
	assert_false(req.expect_continue);
	ok("PUT / HTTP/1.1\r\nHost: a\r\nExpect: something\r\n\r\n");
	assert_false(req.expect_continue);
}

static void test_target_forms(void **state)
{
	(void)state;
	ok("OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n");
	assert_int_equal(req.form, H1_FORM_ASTERISK);
	ok("GET http://a.example/x HTTP/1.1\r\nHost: a.example\r\n\r\n");
	assert_int_equal(req.form, H1_FORM_ABSOLUTE);
	ok("CONNECT a.example:443 HTTP/1.1\r\nHost: a.example:443\r\n\r\n");
	assert_int_equal(req.form, H1_FORM_AUTHORITY);
	refused("GET * HTTP/1.1\r\nHost: a\r\n\r\n", 400, "OPTIONS only");
	refused("GET a.example:443 HTTP/1.1\r\nHost: a\r\n\r\n", 400, "not a path");
	refused("CONNECT /x HTTP/1.1\r\nHost: a\r\n\r\n", 400, "host:port");
}

static void test_request_line_refused(void **state)
{
	(void)state;
	refused("GET  / HTTP/1.1\r\nHost: a\r\n\r\n", 400, "method SP target");
	refused("GET /  HTTP/1.1\r\nHost: a\r\n\r\n", 400, "version");
	refused("GET / HTTP/1.1 \r\nHost: a\r\n\r\n", 400, "version");
	refused("GET\t/ HTTP/1.1\r\nHost: a\r\n\r\n", 400, NULL);
	refused("GET / http/1.1\r\nHost: a\r\n\r\n", 400, "version");
	refused("GET / HTTP/1.10\r\nHost: a\r\n\r\n", 400, "version");
	refused("GET /\x7f HTTP/1.1\r\nHost: a\r\n\r\n", 400, NULL);
	refused("GET /\xff HTTP/1.1\r\nHost: a\r\n\r\n", 400, NULL);
	refused("G@T / HTTP/1.1\r\nHost: a\r\n\r\n", 400, NULL);
	refused("XXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXX / HTTP/1.1\r\nHost: a\r\n\r\n", 400,
	        "longer than 32");
	refused("\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n", 400, NULL); /* no empty line first */
	refused("GET / HTTP/2.0\r\nHost: a\r\n\r\n", 505, NULL);
	refused("GET / HTTP/0.9\r\nHost: a\r\n\r\n", 505, NULL);
}

static void test_line_endings_refused(void **state)
{
	(void)state;
	refused("GET / HTTP/1.1\nHost: a\r\n\r\n", 400, "CRLF");
	refused("GET / HTTP/1.1\r\nHost: a\n\r\n", 400, "CRLF");
	refused("GET / HTTP/1.1\r\nHost: a\r\n\n", 400, "CRLF");
	refused("GET / HTTP/1.1\r\nHost: a\r\nX: a\rb\r\n\r\n", 400, "bare CR");
	refused("GET / HTTP/1.1\rHost: a\r\n\r\n", 400, NULL);
}

static void test_field_syntax_refused(void **state)
{
	(void)state;
	refused("GET / HTTP/1.1\r\nHost: a\r\nX: a\r\n folded\r\n\r\n", 400, "obs-fold");
	refused("GET / HTTP/1.1\r\nHost: a\r\nX: a\r\n\tfolded\r\n\r\n", 400, "obs-fold");
	refused("GET / HTTP/1.1\r\n Host: a\r\n\r\n", 400, "obs-fold");
	/* The fold is named even when the line it continues is bad on its own. */
	refused("POST / HTTP/1.1\r\nHost: a\r\nContent-Length:\r\n 5\r\n\r\nhello", 400,
	        "obs-fold");
	refused("GET / HTTP/1.1\r\nHost: a\r\nX : a\r\n\r\n", 400, "before its colon");
	refused("GET / HTTP/1.1\r\nHost: a\r\nX\t: a\r\n\r\n", 400, "before its colon");
	refused("GET / HTTP/1.1\r\nHost: a\r\nX a\r\n\r\n", 400, NULL);
	refused("GET / HTTP/1.1\r\nHost: a\r\n: a\r\n\r\n", 400, NULL);
	refused("GET / HTTP/1.1\r\nHost: a\r\nX\x80: a\r\n\r\n", 400, NULL);
	refused("GET / HTTP/1.1\r\nHost: a\r\nX: a\x01"
	        "b\r\n\r\n",
	        400, "control");
	refused("GET / HTTP/1.1\r\nHost: a\r\nX: a\x7f"
	        "b\r\n\r\n",
	        400, "control");
	ok("GET / HTTP/1.1\r\nHost: a\r\nX: caf\xc3\xa9\tau lait\r\nY:\r\n\r\n"); /* obs-text, HTAB
	                                                                           */
	assert_true(field_is(1, "X", "caf\xc3\xa9\tau lait"));
	assert_true(field_is(2, "Y", ""));
}

static void test_host_rules(void **state)
{
	(void)state;
	/* The framing is sound: the connection may carry the next request. */
	refused_closing("GET / HTTP/1.1\r\n\r\n", 400, "Host", false);
	refused_closing("GET / HTTP/1.1\r\nHost: a\r\nHost: a\r\n\r\n", 400, "more than one Host",
	                false);
	refused_closing("GET / HTTP/1.1\r\nHost: a b\r\n\r\n", 400, "not a host name", false);
	refused_closing("GET / HTTP/1.1\r\nHost: u@a\r\n\r\n", 400, "not a host name", false);
}

static void test_too_many_fields_is_431(void **state)
{
	(void)state;
	char *s = xmalloc(64 + 16 * (H1_MAX_FIELDS + 1));
	size_t n = (size_t)sprintf(s, "GET / HTTP/1.1\r\nHost: a\r\n");
	for (int i = 1; i < H1_MAX_FIELDS; i++)
		n += (size_t)sprintf(s + n, "X-%d: %d\r\n", i, i);
	strcpy(s + n, "\r\n");
	ok(s); /* exactly H1_MAX_FIELDS */
	assert_int_equal(req.n_fields, H1_MAX_FIELDS);
	strcpy(s + n, "X-last: 1\r\n\r\n");
	refused(s, 431, "too many");
	free(s);
}

static void test_content_length_rules(void **state)
{
	(void)state;
	ok("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n");
	assert_int_equal(req.framing, H1_BODY_LENGTH);
	assert_int_equal(req.content_length, 0);
	ok("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 9999999999999999999\r\n\r\n");
	assert_true(req.content_length == UINT64_C(9999999999999999999));
	refused("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\n", 400,
	        "more than one Content-Length");
	refused("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n", 400,
	        "more than one Content-Length");
	static const char *const bad[] = {"5, 5", "5,6", "+5", "-5",  "0x5",
	                                  "5 5",  "",    "5;", "1e3", "99999999999999999999"};
	char s[160];
	for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
		snprintf(s, sizeof s, "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: %s\r\n\r\n",
		         bad[i]);
		refused(s, 400, "not a number");
	}
}

static void test_transfer_encoding_rules(void **state)
{
	(void)state;
	ok("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: Chunked\r\n\r\n");
	assert_int_equal(req.framing, H1_BODY_CHUNKED);
	refused(
	    "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n",
	    400, "both");
	refused(
	    "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n",
	    400, "both");
	refused("POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n", 400, "HTTP/1.0");
	refused("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n"
	        "Transfer-Encoding: chunked\r\n\r\n",
	        400, "more than one Transfer-Encoding");
	refused("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, chunked\r\n\r\n", 400,
	        "once");
	refused("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", 501,
	        NULL);
	refused("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: identity\r\n\r\n", 501, NULL);
}

/* ---------- the strict chunked body ---------- */

struct sinkbuf {
	char data[256];
	size_t len;
};

static int sink(void *arg, const char *d, size_t n)
{
	struct sinkbuf *s = arg;
	if (n > sizeof s->data - s->len)
		return 1;
	memcpy(s->data + s->len, d, n);
	s->len += n;
	return 0;
}

/* Decode body as a chunked request body, whole and byte by byte: -1, 0 (incomplete) or 1. */
static int chunked(const char *body, struct sinkbuf *out)
{
	ok("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n");
	size_t len = strlen(body);
	int result[2];
	for (int mode = 0; mode < 2; mode++) {
		struct h1_body b;
		struct sinkbuf s = {.len = 0};
		char *copy = xmalloc(len ? len : 1);
		memcpy(copy, body, len);
		h1_body_init_request(&b, &req);
		size_t i = 0;
		result[mode] = 1;
		while (i < len && !b.done) {
			size_t piece = mode ? 1 : len - i;
			ssize_t k = h1_body_feed(&b, copy + i, piece, sink, &s);
			if (k < 0) {
				result[mode] = -1;
				break;
			}
			i += (size_t)k;
			if ((size_t)k < piece)
				break;
		}
		if (result[mode] == 1 && !b.done)
			result[mode] = 0;
		free(copy);
		if (mode == 0 && out)
			*out = s;
	}
	assert_int_equal(result[0], result[1]);
	return result[0];
}

static void test_chunked_body_accepted(void **state)
{
	(void)state;
	struct sinkbuf s;
	assert_int_equal(chunked("5\r\nhello\r\n0\r\n\r\n", &s), 1);
	assert_int_equal(s.len, 5);
	assert_memory_equal(s.data, "hello", 5);
	assert_int_equal(chunked("3;x=y;z\r\nabc\r\n2 \r\nde\r\n0\r\nT: v\r\nU:\r\n\r\n", &s), 1);
	assert_int_equal(s.len, 5);
	assert_memory_equal(s.data, "abcde", 5);
	assert_int_equal(chunked("000000000000005\r\nhello\r\n0\r\n\r\n", NULL), 1);
	assert_int_equal(chunked("5\r\nhel", NULL), 0);
	assert_int_equal(chunked("5\r\nhello\r\n0\r\n", NULL), 0);
}

static void test_chunked_body_refused(void **state)
{
	(void)state;
	static const char *const bad[] = {
	    "5\nhello\r\n0\r\n\r\n",                  /* bare LF after the size */
	    "5\r\nhello\n0\r\n\r\n",                  /* bare LF after the data */
	    "5\r\nhello\r\n0\n\r\n",                  /* bare LF after the last size */
	    "5\r\nhello\r\n0\r\n\n",                  /* bare LF as the final line */
	    "5\r\nhello\r\n0\r\nT: v\n\r\n",          /* bare LF after a trailer */
	    "5 ;x\r\nhello\r\n0\r\n\r\n",             /* whitespace before ';' */
	    "5;x\x01\r\nhello\r\n0\r\n\r\n",          /* control byte in an extension */
	    "5;x\ry\r\nhello\r\n0\r\n\r\n",           /* bare CR in an extension */
	    "0000000000000005\r\nhello\r\n0\r\n\r\n", /* 16 hex digits */
	    "5\r\nhelloXX0\r\n\r\n",                  /* no CRLF after the data */
	    "5\r\nhello\r\n0\r\nT : v\r\n\r\n",       /* whitespace before a trailer colon */
	    "5\r\nhello\r\n0\r\nno colon\r\n\r\n",    /* a trailer line that is no field */
	    "5\r\nhello\r\n0\r\n folded\r\n\r\n",     /* obs-fold in the trailers */
	    "5\r\nhello\r\n0\r\n: v\r\n\r\n",         /* an empty trailer name */
	    "5\r\nhello\r\n0\r\nT: a\x01\r\n\r\n",    /* control byte in a trailer */
	    "-5\r\nhello\r\n0\r\n\r\n",
	    "0x5\r\nhello\r\n0\r\n\r\n",
	    ";\r\n0\r\n\r\n",
	};
	for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
		if (chunked(bad[i], NULL) != -1)
			fail_msg("accepted: \"%s\"", bad[i]);
}

static void test_length_body(void **state)
{
	(void)state;
	ok("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n");
	struct h1_body b;
	h1_body_init_request(&b, &req);
	assert_true(b.done);
	ok("POST / HTTP/1.1\r\nHost: a\r\n\r\n");
	h1_body_init_request(&b, &req);
	assert_true(b.done); /* a request without framing has no body */
	ok("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\n");
	h1_body_init_request(&b, &req);
	struct sinkbuf s = {.len = 0};
	assert_int_equal(h1_body_feed(&b, "abcGET", 6, sink, &s),
	                 3); /* the rest is the next request */
	assert_true(b.done);
}

static int teardown(void **state)
{
	(void)state;
	free(buf);
	buf = NULL;
	return 0;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_simple_get),
	    cmocka_unit_test(test_keep_alive_rules),
	    cmocka_unit_test(test_expect_continue),
	    cmocka_unit_test(test_target_forms),
	    cmocka_unit_test(test_request_line_refused),
	    cmocka_unit_test(test_line_endings_refused),
	    cmocka_unit_test(test_field_syntax_refused),
	    cmocka_unit_test(test_host_rules),
	    cmocka_unit_test(test_too_many_fields_is_431),
	    cmocka_unit_test(test_content_length_rules),
	    cmocka_unit_test(test_transfer_encoding_rules),
	    cmocka_unit_test(test_chunked_body_accepted),
	    cmocka_unit_test(test_chunked_body_refused),
	    cmocka_unit_test(test_length_body),
	};
	return cmocka_run_group_tests(tests, NULL, teardown);
}
