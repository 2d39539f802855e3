/*
 * test_reqcheck.c: unit tests for src/http/reqcheck, the request checks run
 * before routing: the request-target (origin-form, RFC 3986 path
 * characters, %-escapes decoded once with control bytes and backslashes
 * refused, dot segments, the 414 limit) and the header fields (token names,
 * field values, Host, Content-Length and Transfer-Encoding framing).
 * Targets are heap copies of exactly their bytes, so ASan reports a read
 * past len.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "http/reqcheck.h"

#define T(f) cmocka_unit_test(f)

/* Check a target; returns 0 or -1 and the decoded path in out. */
static int target(const char *t, char *out, size_t cap, struct reqcheck_verdict *v)
{
	size_t len = strlen(t);
	char *copy = xmalloc(len ? len : 1);
	memcpy(copy, t, len);
	memset(v, 0, sizeof *v);
	int rc = reqcheck_target(copy, len, 8192, out, cap, v);
	free(copy);
	return rc;
}

static void assert_path(const char *t, const char *want)
{
	char out[256];
	struct reqcheck_verdict v;
	assert_int_equal(target(t, out, sizeof out, &v), 0);
	assert_string_equal(out, want);
}

static void assert_refused(const char *t, int status, bool close)
{
	char out[256];
	struct reqcheck_verdict v;
	assert_int_equal(target(t, out, sizeof out, &v), -1);
	assert_int_equal(v.status, status);
	assert_non_null(v.code);
	assert_non_null(v.message);
	assert_int_equal(v.close, close);
}

static void test_path_decoded_once_without_query(void **state)
{
	(void)state;
	assert_path("/", "/");
	assert_path("/billing/invoices?x=1&y=%00", "/billing/invoices");
	assert_path("/a%20b/%C3%A9", "/a b/\xc3\xa9");
	assert_path("/a%2Fb", "/a/b");
	assert_path("/v1/api-keys/key_01H:x@y!$&'()*+,;=-._~",
	            "/v1/api-keys/key_01H:x@y!$&'()*+,;=-._~");
	assert_path("/%2525", "/%25"); /* decoded once, not twice */
	assert_path("/x?", "/x");
	assert_path("/x?a=[1]&b={|}", "/x");
}

static void test_nul_and_control_bytes_refused(void **state)
{
	(void)state;
	/* The %00 escape that cut MHD's decoded path and let ../ escape a route. */
	assert_refused("/billing/%00/../../admin/secret.txt", 400, false);
	assert_refused("/a%0a", 400, false);
	assert_refused("/a%0D%0AX-Injected:%201", 400, false);
	assert_refused("/a%1f", 400, false);
	assert_refused("/a%7F", 400, false);
	assert_refused("/a%5c..%5cadmin", 400, false);
	char out[64];
	struct reqcheck_verdict v;
	assert_int_equal(target("/a%00", out, sizeof out, &v), -1);
	assert_string_equal(v.field, "path");
}

static void test_bad_escapes_refused(void **state)
{
	(void)state;
	assert_refused("/a%", 400, false);
	assert_refused("/a%4", 400, false);
	assert_refused("/a%zz", 400, false);
	assert_refused("/a%4g", 400, false);
}

static void test_raw_characters_outside_rfc3986_refused(void **state)
{
	(void)state;
	assert_refused("/a b", 400, true); /* the request line itself reads two ways */
	assert_refused("/a\tb", 400, true);
	assert_refused("/a\rb", 400, true);
	assert_refused("/a\\..\\admin", 400, false);
	assert_refused("/a\"", 400, false);
	assert_refused("/a<b>", 400, false);
	assert_refused("/a#frag", 400, false);
	assert_refused("/a{b}", 400, false);
	assert_refused("/caf\xc3\xa9", 400, false);
	assert_refused("/x?a b", 400, true);
	assert_refused("/x?a#b", 400, false);
	assert_refused("/x?a\x01", 400, false);
	assert_refused("/x?\xc3\xa9", 400, false);
}

static void test_only_origin_form(void **state)
{
	(void)state;
	assert_refused("", 400, false);
	assert_refused("*", 400, false);
	assert_refused("http://example.com/x", 400, false);
	assert_refused("@127.0.0.1:1/x", 400, false);
	assert_refused("example.com:443", 400, false);
}

static void test_dot_segments_refused_after_decoding(void **state)
{
	(void)state;
	assert_refused("/billing/../admin", 400, false);
	assert_refused("/billing/./x", 400, false);
	assert_refused("/billing/%2e%2e/admin", 400, false);
	assert_refused("/billing%2F..%2Fadmin", 400, false);
	assert_refused("/..", 400, false);
	assert_path("/a/.../b/..c/.d", "/a/.../b/..c/.d");
}

static void test_long_target_is_414(void **state)
{
	(void)state;
	size_t n = 9000;
	char *t = xmalloc(n);
	memset(t, 'a', n);
	t[0] = '/';
	char *out = xmalloc(n + 1);
	struct reqcheck_verdict v;
	assert_int_equal(reqcheck_target(t, n, 8192, out, n + 1, &v), -1);
	assert_int_equal(v.status, 414);
	assert_string_equal(v.code, "URI_TOO_LONG");
	assert_int_equal(reqcheck_target(t, 8192, 8192, out, n + 1, &v), 0);
	assert_int_equal(strlen(out), 8192);
	/* A buffer too small is refused, never overrun. */
	assert_int_equal(reqcheck_target(t, 100, 8192, out, 100, &v), -1);
	free(out);
	free(t);
}

/* ---------- header fields ---------- */

struct fl {
	const char *name, *value;
};

/* Run the head checks over fields (names and values as the server has them). */
static int head(int minor, const struct fl *f, size_t n, struct reqcheck_verdict *v)
{
	struct reqcheck_head h;
	reqcheck_head_init(&h, minor);
	for (size_t i = 0; i < n; i++) {
		size_t nl = strlen(f[i].name), vl = strlen(f[i].value);
		char *name = xmalloc(nl ? nl : 1), *value = xmalloc(vl ? vl : 1);
		memcpy(name, f[i].name, nl);
		memcpy(value, f[i].value, vl);
		reqcheck_head_field(&h, name, nl, value, vl);
		free(name);
		free(value);
	}
	memset(v, 0, sizeof *v);
	return reqcheck_head_done(&h, v);
}

#define HEAD(minor, v, ...)                                                                        \
	head(minor, (const struct fl[]){__VA_ARGS__},                                              \
	     sizeof((const struct fl[]){__VA_ARGS__}) / sizeof(struct fl), v)

static void test_plain_heads_pass(void **state)
{
	(void)state;
	struct reqcheck_verdict v;
	assert_int_equal(HEAD(1, &v, {"Host", "a.example:8080"}, {"Accept", "*/*"}), 0);
	assert_int_equal(HEAD(1, &v, {"host", "[::1]:80"}, {"Content-Length", "3"}), 0);
	assert_int_equal(HEAD(1, &v, {"Host", "x"}, {"Transfer-Encoding", "chunked"}), 0);
	assert_int_equal(HEAD(1, &v, {"Host", "x"}, {"Transfer-Encoding", "Chunked"}), 0);
	assert_int_equal(HEAD(1, &v, {"Host", "x"}, {"X-Utf8", "caf\xc3\xa9\tok"}), 0);
	assert_int_equal(HEAD(0, &v, {"Accept", "*/*"}), 0); /* HTTP/1.0 needs no Host */
	assert_int_equal(HEAD(1, &v, {"Host", ""}), 0);
}

static void assert_head_refused(int rc, const struct reqcheck_verdict *v, int status, bool close)
{
	assert_int_equal(rc, -1);
	assert_int_equal(v->status, status);
	assert_non_null(v->message);
	assert_int_equal(v->close, close);
}

static void test_bad_names_refused_and_close(void **state)
{
	(void)state;
	struct reqcheck_verdict v;
	/* Whitespace before the colon, as MHD hands it over. */
	assert_head_refused(HEAD(1, &v, {"Host", "x"}, {"Transfer-Encoding ", "chunked"}), &v, 400,
	                    true);
	assert_head_refused(HEAD(1, &v, {"Host", "x"}, {"Host\t", "evil"}), &v, 400, true);
	assert_head_refused(HEAD(1, &v, {"Host", "x"}, {"X-F\roo", "1"}), &v, 400, true);
	/* A fold glued into the name when the continuation holds a space. */
	assert_head_refused(HEAD(1, &v, {"Host", "x"}, {"X-Otherb c", "a"}), &v, 400, true);
	/* A fold as the first field: the name starts with a space. */
	assert_head_refused(HEAD(1, &v, {" X-A", "1"}, {"Host", "x"}), &v, 400, true);
	assert_head_refused(HEAD(1, &v, {"Host", "x"}, {"", "1"}), &v, 400, true);
	assert_head_refused(HEAD(1, &v, {"Host", "x"}, {"X_\x7f", "1"}), &v, 400, true);
}

static void test_bad_values_refused(void **state)
{
	(void)state;
	struct reqcheck_verdict v;
	assert_head_refused(HEAD(1, &v, {"Host", "x"}, {"X-A", "1\r2"}), &v, 400, true);
	assert_head_refused(HEAD(1, &v, {"Host", "x"}, {"X-A", "1\x01"}), &v, 400, true);
	assert_head_refused(HEAD(1, &v, {"Host", "x"}, {"X-A", "1\n"}), &v, 400, true);
	assert_head_refused(HEAD(1, &v, {"Host", "x"}, {"X-A", "\x7f"}), &v, 400, true);
	/* A NUL inside a value the server could see (MHD itself cuts at it). */
	struct reqcheck_head h;
	reqcheck_head_init(&h, 1);
	reqcheck_head_field(&h, "Host", 4, "x", 1);
	reqcheck_head_field(&h, "Idempotency-Key", 15, "a\0b", 3);
	assert_head_refused(reqcheck_head_done(&h, &v), &v, 400, true);
}

static void test_host_rules(void **state)
{
	(void)state;
	struct reqcheck_verdict v;
	assert_head_refused(HEAD(1, &v, {"Accept", "*/*"}), &v, 400, false);
	assert_head_refused(HEAD(1, &v, {"Host", "a"}, {"Host", "b"}), &v, 400, false);
	assert_head_refused(HEAD(1, &v, {"Host", "a"}, {"host", "a"}), &v, 400, false);
	assert_head_refused(HEAD(0, &v, {"Host", "a"}, {"Host", "a"}), &v, 400, false);
	assert_head_refused(HEAD(1, &v, {"Host", "user@evil"}), &v, 400, false);
	assert_head_refused(HEAD(1, &v, {"Host", "a b"}), &v, 400, false);
	assert_head_refused(HEAD(1, &v, {"Host", "a/b"}), &v, 400, false);
}

static void test_ambiguous_framing_refused_and_close(void **state)
{
	(void)state;
	struct reqcheck_verdict v;
	assert_head_refused(
	    HEAD(1, &v, {"Host", "x"}, {"Content-Length", "3"}, {"Transfer-Encoding", "chunked"}),
	    &v, 400, true);
	assert_head_refused(
	    HEAD(1, &v, {"Host", "x"}, {"Content-Length", "3"}, {"Content-Length", "5"}), &v, 400,
	    true);
	assert_head_refused(
	    HEAD(1, &v, {"Host", "x"}, {"Content-Length", "3"}, {"Content-Length", "3"}), &v, 400,
	    true);
	assert_head_refused(HEAD(0, &v, {"Transfer-Encoding", "chunked"}), &v, 400, true);
	assert_head_refused(HEAD(1, &v, {"Host", "x"}, {"Transfer-Encoding", "chunked"},
	                         {"Transfer-Encoding", "chunked"}),
	                    &v, 400, true);
	assert_head_refused(HEAD(1, &v, {"Host", "x"}, {"Transfer-Encoding", "chunked, chunked"}),
	                    &v, 400, true);
	assert_head_refused(HEAD(1, &v, {"Host", "x"}, {"Transfer-Encoding", ""}), &v, 400, true);
	assert_head_refused(HEAD(1, &v, {"Host", "x"}, {"Transfer-Encoding", ","}), &v, 400, true);
	assert_head_refused(HEAD(1, &v, {"Host", "x"}, {"Transfer-Encoding", "chunked;q=1"}), &v,
	                    400, true);
}

static void test_unknown_codings_are_501_and_close(void **state)
{
	(void)state;
	struct reqcheck_verdict v;
	assert_head_refused(HEAD(1, &v, {"Host", "x"}, {"Transfer-Encoding", "gzip"}), &v, 501,
	                    true);
	assert_string_equal(v.code, "NOT_IMPLEMENTED");
	assert_head_refused(HEAD(1, &v, {"Host", "x"}, {"Transfer-Encoding", "gzip, chunked"}), &v,
	                    501, true);
	assert_head_refused(HEAD(1, &v, {"Host", "x"}, {"Transfer-Encoding", "chunked, identity"}),
	                    &v, 501, true);
}

static void test_first_refusal_is_kept(void **state)
{
	(void)state;
	struct reqcheck_verdict v;
	/* A bad name before a missing Host: the name is what is reported. */
	assert_head_refused(HEAD(1, &v, {"X A", "1"}, {"Y\x01", "2"}), &v, 400, true);
	assert_non_null(strstr(v.message, "name"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    T(test_path_decoded_once_without_query),
	    T(test_nul_and_control_bytes_refused),
	    T(test_bad_escapes_refused),
	    T(test_raw_characters_outside_rfc3986_refused),
	    T(test_only_origin_form),
	    T(test_dot_segments_refused_after_decoding),
	    T(test_long_target_is_414),
	    T(test_plain_heads_pass),
	    T(test_bad_names_refused_and_close),
	    T(test_bad_values_refused),
	    T(test_host_rules),
	    T(test_ambiguous_framing_refused_and_close),
	    T(test_unknown_codings_are_501_and_close),
	    T(test_first_refusal_is_kept),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
