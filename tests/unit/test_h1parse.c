/*
 * test_h1parse.c: unit tests for src/http/h1parse, the HTTP/1.1 response
 * parser of the upstream client: h1_find_head_end (whole, growing byte by
 * byte with the scan hint), h1_parse_head (status line, field syntax, the
 * framing and keep-alive rules of RFC 9112) and the body decoder
 * (Content-Length, chunked, until close), each body fed whole, one byte at
 * a time and split at every index. Every call gets a heap copy of exactly
 * the bytes it is given, with no NUL after them, so ASan reports any read
 * past len.
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

#define S(lit) lit, sizeof(lit) - 1

/* ---------- helpers ---------- */

static char *dup_exact(const char *s, size_t len)
{
	char *copy = xmalloc(len ? len : 1);
	memcpy(copy, s, len);
	return copy;
}

static size_t find_end(const char *s, size_t len)
{
	char *copy = dup_exact(s, len);
	size_t scan = 0;
	size_t end = h1_find_head_end(copy, len, &scan);
	free(copy);
	return end;
}

/*
 * The head buffer of the last parse: parsed fields point into it, so it
 * lives until the next parse (or the end of the test via free_head).
 */
static char *head_buf;

static void free_head(void)
{
	free(head_buf);
	head_buf = NULL;
}

/* Parse the len bytes of s as a complete head, from an exact-size copy. */
static int parse_n(const char *s, size_t len, bool head_request, struct h1_head *h)
{
	free_head();
	head_buf = dup_exact(s, len);
	return h1_parse_head(head_buf, len, head_request, h);
}

static int parse(const char *s, struct h1_head *h)
{
	return parse_n(s, strlen(s), false, h);
}

/* Parse a head that must be well-formed; its end must be where h1_find_head_end says. */
static void parse_ok(const char *s, bool head_request, struct h1_head *h)
{
	size_t len = strlen(s);
	assert_int_equal(find_end(s, len), len);
	if (parse_n(s, len, head_request, h) != 0)
		fail_msg("refused: \"%s\"", s);
}

static void parse_bad(const char *s)
{
	struct h1_head h;
	size_t len = strlen(s);
	if (parse_n(s, len, false, &h) != -1)
		fail_msg("accepted: \"%s\"", s);
	free_head();
}

static void parse_bad_n(const char *s, size_t len)
{
	struct h1_head h;
	if (parse_n(s, len, false, &h) != -1)
		fail_msg("accepted a %zu-byte head", len);
	free_head();
}

static const struct h1_field *field(const struct h1_head *h, size_t i)
{
	assert_true(i < h->n_fields);
	return &h->fields[i];
}

static void assert_field(const struct h1_field *f, const char *name, const char *value)
{
	assert_int_equal(f->name_len, strlen(name));
	assert_memory_equal(f->name, name, f->name_len);
	assert_int_equal(f->value_len, strlen(value));
	if (f->value_len)
		assert_memory_equal(f->value, value, f->value_len);
}

/* A head with one extra field line (without its CRLF) after "HTTP/1.1 200 OK". */
static int parse_with_field(const char *line, struct h1_head *h)
{
	char buf[8192];
	int n = snprintf(buf, sizeof buf, "HTTP/1.1 200 OK\r\n%s\r\n\r\n", line);
	assert_true(n > 0 && (size_t)n < sizeof buf);
	return parse(buf, h);
}

static void field_ok(const char *line, const char *name, const char *value)
{
	struct h1_head h;
	if (parse_with_field(line, &h) != 0)
		fail_msg("refused field line \"%s\"", line);
	assert_int_equal(h.n_fields, 1);
	assert_field(field(&h, 0), name, value);
	free_head();
}

static void field_bad(const char *line)
{
	struct h1_head h;
	if (parse_with_field(line, &h) != -1)
		fail_msg("accepted field line \"%s\"", line);
	free_head();
}

/* The framing of "HTTP/1.1 200 OK" + fields (each ending in CRLF). */
static struct h1_head head_with(const char *status_line, const char *fields, bool head_request)
{
	char buf[8192];
	struct h1_head h;
	int n = snprintf(buf, sizeof buf, "%s\r\n%s\r\n", status_line, fields);
	assert_true(n > 0 && (size_t)n < sizeof buf);
	parse_ok(buf, head_request, &h);
	free_head();
	return h;
}

static void head_bad(const char *fields)
{
	char buf[8192];
	int n = snprintf(buf, sizeof buf, "HTTP/1.1 200 OK\r\n%s\r\n", fields);
	assert_true(n > 0 && (size_t)n < sizeof buf);
	parse_bad(buf);
}

/* Decoded body bytes, collected; refuses every call once `refuse` is set. */
struct sinkbuf {
	char *data;
	size_t len, cap;
	size_t calls;
	bool refuse;
};

static int sink(void *arg, const char *data, size_t n)
{
	struct sinkbuf *sb = arg;
	sb->calls++;
	if (sb->refuse)
		return 1;
	if (sb->len + n > sb->cap) {
		size_t cap = sb->cap ? sb->cap : 64;
		while (cap < sb->len + n)
			cap *= 2;
		sb->data = xrealloc(sb->data, cap);
		sb->cap = cap;
	}
	if (n)
		memcpy(sb->data + sb->len, data, n);
	sb->len += n;
	return 0;
}

static void sink_free(struct sinkbuf *sb)
{
	free(sb->data);
	memset(sb, 0, sizeof *sb);
}

static struct h1_head framing_head(enum h1_framing framing, uint64_t content_length)
{
	struct h1_head h;
	memset(&h, 0, sizeof h);
	h.status = 200;
	h.minor = 1;
	h.framing = framing;
	h.content_length = content_length;
	return h;
}

/*
 * Feed data[0..len) to b: a first piece of `first` bytes, then pieces of
 * `rest` bytes, each from an exact-size heap copy. Stops when a piece is not
 * consumed whole (the body ended). The total consumed, or -1.
 */
static ssize_t feed_pieces(struct h1_body *b, const char *data, size_t len, size_t first,
                           size_t rest, struct sinkbuf *sb)
{
	size_t pos = 0;
	size_t piece = first;
	while (pos < len) {
		size_t n = len - pos < piece ? len - pos : piece;
		char *copy = dup_exact(data + pos, n);
		ssize_t r = h1_body_feed(b, copy, n, sink, sb);
		free(copy);
		if (r < 0) {
			assert_int_equal(r, -1);
			return -1;
		}
		assert_true((size_t)r <= n);
		pos += (size_t)r;
		if ((size_t)r < n) {
			assert_true(b->done);
			break;
		}
		piece = rest;
	}
	return (ssize_t)pos;
}

/* The ways to feed an n-byte body: see feed_mode; every one for short bodies. */
static size_t next_mode(size_t k, size_t len)
{
	return k < 2 || len < 512 ? k + 1 : k + len / 16;
}

static ssize_t feed_mode(struct h1_body *b, const char *data, size_t len, size_t k,
                         struct sinkbuf *sb)
{
	/* k == 0: whole; k == 1: one byte at a time; k >= 2: split at index k - 2. */
	if (k == 0)
		return feed_pieces(b, data, len, len ? len : 1, len ? len : 1, sb);
	if (k == 1)
		return feed_pieces(b, data, len, 1, 1, sb);
	size_t at = k - 2;
	if (at == 0)
		return feed_pieces(b, data, len, len ? len : 1, len ? len : 1, sb);
	return feed_pieces(b, data, len, at, len, sb);
}

/*
 * A chunked body enc (plus `extra` bytes of the next response after it)
 * must decode to want, consuming exactly enc, however it is split.
 */
static void chunked_ok_n(const char *enc, size_t enc_len, const char *want, size_t want_len)
{
	static const char extra[] = "HTTP/1.1 200 OK\r\n";
	size_t len = enc_len + sizeof extra - 1;
	char *all = xmalloc(len);
	memcpy(all, enc, enc_len);
	memcpy(all + enc_len, extra, sizeof extra - 1);
	struct h1_head h = framing_head(H1_BODY_CHUNKED, 0);

	for (size_t k = 0; k < len + 2; k = next_mode(k, len)) {
		struct h1_body b;
		struct sinkbuf sb = {0};
		h1_body_init(&b, &h);
		assert_false(b.done);
		ssize_t used = feed_mode(&b, all, len, k, &sb);
		if (used != (ssize_t)enc_len)
			fail_msg("mode %zu: consumed %zd of \"%.*s\", want %zu", k, used,
			         (int)enc_len, enc, enc_len);
		assert_true(b.done);
		assert_true(h1_body_eof(&b));
		assert_int_equal(sb.len, want_len);
		if (want_len)
			assert_memory_equal(sb.data, want, want_len);
		/* A done body takes nothing more. */
		assert_int_equal(h1_body_feed(&b, S("0\r\n\r\n"), sink, &sb), 0);
		assert_int_equal(sb.len, want_len);
		sink_free(&sb);
	}
	free(all);
}

static void chunked_ok(const char *enc, const char *want)
{
	chunked_ok_n(enc, strlen(enc), want, strlen(want));
}

/* A malformed chunked body must be refused however it is split. */
static void chunked_bad_n(const char *enc, size_t len)
{
	struct h1_head h = framing_head(H1_BODY_CHUNKED, 0);
	for (size_t k = 0; k < len + 2; k = next_mode(k, len)) {
		struct h1_body b;
		struct sinkbuf sb = {0};
		h1_body_init(&b, &h);
		ssize_t used = feed_mode(&b, enc, len, k, &sb);
		if (used != -1)
			fail_msg("mode %zu: accepted a malformed chunked body (\"%.*s\"), "
			         "consumed %zd",
			         k, (int)(len < 80 ? len : 80), enc, used);
		sink_free(&sb);
	}
}

static void chunked_bad(const char *enc)
{
	chunked_bad_n(enc, strlen(enc));
}

/* ---------- h1_find_head_end ---------- */

static void test_find_head_end_crlf(void **state)
{
	(void)state;
	assert_int_equal(find_end(S("HTTP/1.1 200 OK\r\n\r\n")), 19);
	assert_int_equal(find_end(S("HTTP/1.1 200 OK\r\nA: b\r\nC: d\r\n\r\n")), 31);
}

static void test_find_head_end_bare_lf(void **state)
{
	(void)state;
	assert_int_equal(find_end(S("HTTP/1.1 200 OK\n\n")), 17);
	assert_int_equal(find_end(S("HTTP/1.1 200 OK\nA: b\n\n")), 22);
	/* Mixed: LF line ends, CRLF empty line, and the other way round. */
	assert_int_equal(find_end(S("HTTP/1.1 200 OK\nA: b\n\r\n")), 23);
	assert_int_equal(find_end(S("HTTP/1.1 200 OK\r\nA: b\r\n\n")), 24);
}

static void test_find_head_end_no_end_yet_returns_zero(void **state)
{
	static const char *partial[] = {
	    "",
	    "H",
	    "HTTP/1.1 200 OK",
	    "HTTP/1.1 200 OK\r\n",
	    "HTTP/1.1 200 OK\r\nA: b\r\n",
	    "HTTP/1.1 200 OK\r\nA: b\r\n\r",
	    "HTTP/1.1 200 OK\r\n\r",
	    "HTTP/1.1 200 OK\r\r\n", /* CR CR LF: not an empty line */
	    "HTTP/1.1 200 OK\n\r\r\n",
	};
	(void)state;
	for (size_t i = 0; i < sizeof partial / sizeof *partial; i++) {
		size_t len = strlen(partial[i]);
		char *copy = dup_exact(partial[i], len);
		size_t scan = 0;
		assert_int_equal(h1_find_head_end(copy, len, &scan), 0);
		/* The hint records how far the search got. */
		assert_int_equal(scan, len);
		free(copy);
	}
}

static void test_find_head_end_ignores_bytes_after_head(void **state)
{
	(void)state;
	assert_int_equal(find_end(S("HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\nhello\r\n\r\n")),
	                 38);
	assert_int_equal(find_end(S("HTTP/1.1 200 OK\n\n\n\n")), 17);
	/* A 103 followed by the final response: the first head ends first. */
	assert_int_equal(find_end(S("HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n"
	                            "HTTP/1.1 200 OK\r\n\r\n")),
	                 40);
}

/* Grow the buffer `step` bytes at a time, keeping the scan hint. */
static size_t find_growing(const char *s, size_t len, size_t step)
{
	char *copy = dup_exact(s, len);
	size_t scan = 0;
	size_t end = 0;
	for (size_t have = 0; have < len + step; have += step) {
		size_t n = have < len ? have : len;
		end = h1_find_head_end(copy, n, &scan);
		if (end) {
			/* Found as soon as the last byte of the head arrived. */
			assert_true(end <= n);
			assert_true(end + step > n);
			break;
		}
		assert_int_equal(scan, n);
		if (n == len)
			break;
	}
	free(copy);
	return end;
}

static void test_find_head_end_byte_by_byte_same_as_whole(void **state)
{
	static const char *heads[] = {
	    "HTTP/1.1 200 OK\r\n\r\n",
	    "HTTP/1.1 200 OK\n\n",
	    "HTTP/1.1 200 OK\nA: b\n\r\n",
	    "HTTP/1.1 200 OK\r\nA: b\r\nB:\r\n\r\nbody\r\n\r\n",
	    "HTTP/1.1 200 OK\r\nA: \r\r\n\n",
	    "\n\n",
	    "\n\r\n",
	    "x\r\n\r",
	    "HTTP/1.1 200 OK\r\nA: b\r\n",
	};
	(void)state;
	for (size_t i = 0; i < sizeof heads / sizeof *heads; i++) {
		size_t len = strlen(heads[i]);
		size_t whole = find_end(heads[i], len);
		for (size_t step = 1; step <= 4; step++)
			assert_int_equal(find_growing(heads[i], len, step), whole);
	}
	assert_int_equal(find_end(S("\n\n")), 2);
	assert_int_equal(find_end(S("\n\r\n")), 3);
}

static void test_find_head_end_hint_resumes_across_line_end(void **state)
{
	/* The last call stopped right after "\n" and then "\n\r": the end straddles it. */
	char buf[] = "HTTP/1.1 200 OK\r\nA: b\r\n\r\n";
	size_t len = sizeof buf - 1;
	size_t scan = 0;
	(void)state;
	assert_int_equal(h1_find_head_end(buf, len - 2, &scan), 0);
	assert_int_equal(scan, len - 2);
	assert_int_equal(h1_find_head_end(buf, len - 1, &scan), 0);
	assert_int_equal(h1_find_head_end(buf, len, &scan), len);

	scan = 0;
	assert_int_equal(h1_find_head_end(buf, len - 3, &scan), 0);
	assert_int_equal(h1_find_head_end(buf, len, &scan), len);
}

/* ---------- h1_parse_head: status line ---------- */

static void test_status_line_with_reason(void **state)
{
	struct h1_head h;
	(void)state;
	parse_ok("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", false, &h);
	assert_int_equal(h.status, 200);
	assert_int_equal(h.minor, 1);
	assert_int_equal(h.n_fields, 1);

	parse_ok("HTTP/1.1 404 Not Found At All\r\nContent-Length: 0\r\n\r\n", false, &h);
	assert_int_equal(h.status, 404);
	/* obs-text and HTAB in the reason phrase. */
	parse_ok("HTTP/1.1 200 D\xc3\xa9j\xc3\xa0\tvu\r\nContent-Length: 0\r\n\r\n", false, &h);
	assert_int_equal(h.status, 200);
	free_head();
}

static void test_status_line_without_reason(void **state)
{
	struct h1_head h;
	(void)state;
	parse_ok("HTTP/1.1 204\r\n\r\n", false, &h);
	assert_int_equal(h.status, 204);
	/* An empty reason after the space. */
	parse_ok("HTTP/1.1 500 \r\n\r\n", false, &h);
	assert_int_equal(h.status, 500);
	parse_ok("HTTP/1.1 200\n\n", false, &h);
	assert_int_equal(h.status, 200);
	assert_int_equal(h.n_fields, 0);
	free_head();
}

static void test_status_line_http10_and_http11(void **state)
{
	struct h1_head h;
	(void)state;
	parse_ok("HTTP/1.0 200 OK\r\nContent-Length: 3\r\n\r\n", false, &h);
	assert_int_equal(h.minor, 0);
	assert_int_equal(h.framing, H1_BODY_LENGTH);
	assert_false(h.keep_alive);
	parse_ok("HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\n", false, &h);
	assert_int_equal(h.minor, 1);
	assert_true(h.keep_alive);
	free_head();
}

static void test_status_code_range_100_to_599(void **state)
{
	struct h1_head h;
	(void)state;
	parse_ok("HTTP/1.1 100 Continue\r\n\r\n", false, &h);
	assert_int_equal(h.status, 100);
	parse_ok("HTTP/1.1 599 Odd\r\n\r\n", false, &h);
	assert_int_equal(h.status, 599);
	free_head();
	parse_bad("HTTP/1.1 099 Low\r\n\r\n");
	parse_bad("HTTP/1.1 000 Zero\r\n\r\n");
	parse_bad("HTTP/1.1 600 High\r\n\r\n");
	parse_bad("HTTP/1.1 999 High\r\n\r\n");
}

static void test_status_code_non_digits_refused(void **state)
{
	(void)state;
	parse_bad("HTTP/1.1 2x0 OK\r\n\r\n");
	parse_bad("HTTP/1.1 +20 OK\r\n\r\n");
	parse_bad("HTTP/1.1 -20 OK\r\n\r\n");
	parse_bad("HTTP/1.1 20 OK\r\n\r\n");
	parse_bad("HTTP/1.1 20\r\n\r\n");
	parse_bad("HTTP/1.1 2000 OK\r\n\r\n");
	parse_bad("HTTP/1.1 OK\r\n\r\n");
	parse_bad("HTTP/1.1 \r\n\r\n");
}

static void test_status_line_missing_space_refused(void **state)
{
	(void)state;
	parse_bad("HTTP/1.1200 OK\r\n\r\n");
	parse_bad("HTTP/1.1 200OK\r\n\r\n");
	parse_bad("HTTP/1.1  200 OK\r\n\r\n");
	parse_bad("HTTP/1.1\t200 OK\r\n\r\n");
	parse_bad("HTTP/1.1 200\tOK\r\n\r\n");
}

static void test_status_line_other_versions_refused(void **state)
{
	(void)state;
	parse_bad("HTTP/2 200\r\n\r\n");
	parse_bad("HTTP/2 200 OK\r\n\r\n");
	parse_bad("HTTP/2.0 200 OK\r\n\r\n");
	parse_bad("HTTP/0.9 200 OK\r\n\r\n");
	parse_bad("HTTP/1.x 200 OK\r\n\r\n");
	parse_bad("HTTP/1.10 200 OK\r\n\r\n");
	parse_bad("HTTP/1 200 OK\r\n\r\n");
	parse_bad("http/1.1 200 OK\r\n\r\n");
	parse_bad("ICY 200 OK\r\n\r\n");
	parse_bad(" HTTP/1.1 200 OK\r\n\r\n");
	parse_bad("\r\nHTTP/1.1 200 OK\r\n\r\n");
}

static void test_status_line_control_chars_refused(void **state)
{
	(void)state;
	parse_bad("HTTP/1.1 200 O\x01K\r\n\r\n");
	parse_bad("HTTP/1.1 200 O\x7fK\r\n\r\n");
	parse_bad("HTTP/1.1 200 O\rK\r\n\r\n");
	parse_bad("HTTP/1.1 200 OK\r\r\n\r\n");
	parse_bad_n(S("HTTP/1.1 200 O\0K\r\n\r\n"));
}

/* ---------- h1_parse_head: fields ---------- */

static void test_field_ows_trimmed(void **state)
{
	(void)state;
	field_ok("A: b", "A", "b");
	field_ok("A:b", "A", "b");
	field_ok("A: \t b c \t ", "A", "b c");
	field_ok("X-Long-Name:\tvalue with  inner  spaces\t", "X-Long-Name",
	         "value with  inner  spaces");
	field_ok("!#$%&'*+-.^_`|~09azAZ: v", "!#$%&'*+-.^_`|~09azAZ", "v");
}

static void test_field_empty_value(void **state)
{
	(void)state;
	field_ok("A:", "A", "");
	field_ok("A:   ", "A", "");
	field_ok("A: \t", "A", "");
}

static void test_field_obs_text_allowed(void **state)
{
	(void)state;
	field_ok("X-Name: caf\xc3\xa9", "X-Name", "caf\xc3\xa9");
	field_ok("X-Name: \x80\xff", "X-Name", "\x80\xff");
}

static void test_field_control_chars_refused(void **state)
{
	(void)state;
	field_bad("A: b\x01");
	field_bad("A: \x1f b");
	field_bad("A: b\x7f");
	field_bad("A: \x0b");
	parse_bad_n(S("HTTP/1.1 200 OK\r\nA: b\0c\r\n\r\n"));
	parse_bad_n(S("HTTP/1.1 200 OK\r\nA\0: b\r\n\r\n"));
}

static void test_field_bare_cr_refused(void **state)
{
	(void)state;
	field_bad("A: b\rc");
	field_bad("A: b\r"); /* "A: b\r\r\n" */
	field_bad("A:\r b");
	field_bad("\rA: b");
	parse_bad("HTTP/1.1 200 OK\r\nA: b\r\n\r\r\n\r\n");
}

static void test_field_obs_fold_refused(void **state)
{
	(void)state;
	parse_bad("HTTP/1.1 200 OK\r\nA: b\r\n c\r\n\r\n");
	parse_bad("HTTP/1.1 200 OK\r\nA: b\r\n\tc\r\n\r\n");
	parse_bad("HTTP/1.1 200 OK\n\tA: b\n\n");
	field_bad(" A: b");
}

static void test_field_space_before_colon_refused(void **state)
{
	(void)state;
	field_bad("A : b");
	field_bad("A\t: b");
	field_bad("Content-Length : 5");
	field_bad("Transfer-Encoding\t: chunked");
}

static void test_field_name_malformed_refused(void **state)
{
	(void)state;
	field_bad(": b");
	field_bad(":");
	field_bad("A b");
	field_bad("A");
	field_bad("A(b): c");
	field_bad("A/b: c");
	field_bad("A\x80: c");
	field_bad("A\"b: c");
}

static void test_fields_up_to_max_accepted_more_refused(void **state)
{
	char buf[H1_MAX_FIELDS * 16 + 64];
	struct h1_head h;
	size_t n;
	(void)state;

	n = (size_t)snprintf(buf, sizeof buf, "HTTP/1.1 200 OK\r\n");
	for (int i = 0; i < H1_MAX_FIELDS; i++)
		n += (size_t)snprintf(buf + n, sizeof buf - n, "F%d: %d\r\n", i, i);
	assert_true(n + 4 < sizeof buf);
	memcpy(buf + n, "\r\n", 3);
	parse_ok(buf, false, &h);
	assert_int_equal(h.n_fields, H1_MAX_FIELDS);
	assert_field(field(&h, H1_MAX_FIELDS - 1), "F127", "127");
	free_head();

	n += (size_t)snprintf(buf + n, sizeof buf - n, "X: y\r\n\r\n");
	assert_true(n < sizeof buf);
	parse_bad(buf);
}

static void test_fields_point_into_buffer(void **state)
{
	static const char text[] = "HTTP/1.1 200 OK\r\n"
	                           "Content-Type: text/plain\r\n"
	                           "X-Empty:\r\n"
	                           "X-Pad:   padded \t\r\n"
	                           "Content-Length: 2\n"
	                           "\r\n";
	struct h1_head h;
	(void)state;
	parse_ok(text, false, &h);
	assert_int_equal(h.n_fields, 4);
	assert_ptr_equal(h.fields[0].name, head_buf + 17);
	assert_int_equal(h.fields[0].name_len, 12);
	assert_ptr_equal(h.fields[0].value, head_buf + 31);
	assert_int_equal(h.fields[0].value_len, 10);
	assert_field(&h.fields[0], "Content-Type", "text/plain");
	assert_ptr_equal(h.fields[1].name, head_buf + 43);
	assert_field(&h.fields[1], "X-Empty", "");
	assert_ptr_equal(h.fields[2].name, head_buf + 53);
	assert_ptr_equal(h.fields[2].value, head_buf + 62);
	assert_field(&h.fields[2], "X-Pad", "padded");
	assert_ptr_equal(h.fields[3].name, head_buf + 72);
	assert_field(&h.fields[3], "Content-Length", "2");
	for (size_t i = 0; i < h.n_fields; i++) {
		const struct h1_field *f = &h.fields[i];
		assert_true(f->name >= head_buf &&
		            f->name + f->name_len <= head_buf + sizeof text - 1);
		assert_true(f->value >= f->name + f->name_len + 1 &&
		            f->value + f->value_len <= head_buf + sizeof text - 1);
	}
	free_head();
}

static void test_head_must_end_at_len(void **state)
{
	(void)state;
	/* Bytes after the empty line are not part of the head. */
	parse_bad("HTTP/1.1 200 OK\r\n\r\nx");
	parse_bad("HTTP/1.1 200 OK\r\nA: b\r\n\r\n\r\n");
	/* No empty line at all. */
	parse_bad("HTTP/1.1 200 OK\r\nA: b\r\n");
	parse_bad("HTTP/1.1 200 OK\r\nA: b");
	parse_bad("HTTP/1.1 200 OK");
	parse_bad("");
}

/* ---------- h1_parse_head: framing ---------- */

static void test_content_length_single(void **state)
{
	(void)state;
	struct h1_head h = head_with("HTTP/1.1 200 OK", "Content-Length: 42\r\n", false);
	assert_int_equal(h.framing, H1_BODY_LENGTH);
	assert_int_equal(h.content_length, 42);
	assert_true(h.keep_alive);

	h = head_with("HTTP/1.1 200 OK", "content-LENGTH:0\r\n", false);
	assert_int_equal(h.framing, H1_BODY_LENGTH);
	assert_int_equal(h.content_length, 0);
	h = head_with("HTTP/1.1 200 OK", "Content-Length: 007\r\n", false);
	assert_int_equal(h.content_length, 7);
}

static void test_content_length_repeated_same_value(void **state)
{
	(void)state;
	struct h1_head h =
	    head_with("HTTP/1.1 200 OK", "Content-Length: 5\r\nContent-Length: 5\r\n", false);
	assert_int_equal(h.framing, H1_BODY_LENGTH);
	assert_int_equal(h.content_length, 5);
	assert_int_equal(h.n_fields, 2);
}

static void test_content_length_list_same_value(void **state)
{
	(void)state;
	struct h1_head h = head_with("HTTP/1.1 200 OK", "Content-Length: 5, 5\r\n", false);
	assert_int_equal(h.framing, H1_BODY_LENGTH);
	assert_int_equal(h.content_length, 5);
	h = head_with("HTTP/1.1 200 OK", "Content-Length: 5,5 ,\t5\r\n", false);
	assert_int_equal(h.content_length, 5);
}

static void test_content_length_conflicting_refused(void **state)
{
	(void)state;
	head_bad("Content-Length: 5\r\nContent-Length: 6\r\n");
	head_bad("Content-Length: 5, 6\r\n");
	head_bad("Content-Length: 5, 5, 50\r\n");
	head_bad("Content-Length: 0\r\nContent-Length: 00\r\nContent-Length: 1\r\n");
}

static void test_content_length_non_digit_refused(void **state)
{
	(void)state;
	head_bad("Content-Length: abc\r\n");
	head_bad("Content-Length: +5\r\n");
	head_bad("Content-Length: -5\r\n");
	head_bad("Content-Length: 5a\r\n");
	head_bad("Content-Length: 0x5\r\n");
	head_bad("Content-Length: 5 5\r\n");
	head_bad("Content-Length: 5.0\r\n");
	head_bad("Content-Length: 5;\r\n");
	head_bad("Content-Length: \xd9\xa5\r\n");
}

static void test_content_length_empty_refused(void **state)
{
	(void)state;
	head_bad("Content-Length:\r\n");
	head_bad("Content-Length:  \r\n");
	head_bad("Content-Length: ,\r\n");
	/* Also after a valid Content-Length: another reader may take the last one. */
	head_bad("Content-Length: 5\r\nContent-Length:\r\n");
	head_bad("Content-Length: 5\r\nContent-Length: , \r\n");
}

static void test_content_length_over_19_digits_refused(void **state)
{
	(void)state;
	struct h1_head h =
	    head_with("HTTP/1.1 200 OK", "Content-Length: 9999999999999999999\r\n", false);
	assert_int_equal(h.framing, H1_BODY_LENGTH);
	assert_true(h.content_length == UINT64_C(9999999999999999999));
	head_bad("Content-Length: 10000000000000000000\r\n");
	head_bad("Content-Length: 18446744073709551616\r\n");
	head_bad("Content-Length: 00000000000000000001\r\n");
	head_bad("Content-Length: 99999999999999999999999999999999999999\r\n");
}

static void test_transfer_encoding_chunked(void **state)
{
	(void)state;
	struct h1_head h = head_with("HTTP/1.1 200 OK", "Transfer-Encoding: chunked\r\n", false);
	assert_int_equal(h.framing, H1_BODY_CHUNKED);
	assert_true(h.keep_alive);
	h = head_with("HTTP/1.1 200 OK", "transfer-encoding: ChUnKeD\r\n", false);
	assert_int_equal(h.framing, H1_BODY_CHUNKED);
	h = head_with("HTTP/1.1 200 OK", "TRANSFER-ENCODING:CHUNKED \r\n", false);
	assert_int_equal(h.framing, H1_BODY_CHUNKED);
}

static void test_transfer_encoding_chunked_last_coding(void **state)
{
	(void)state;
	struct h1_head h =
	    head_with("HTTP/1.1 200 OK", "Transfer-Encoding: gzip, chunked\r\n", false);
	assert_int_equal(h.framing, H1_BODY_CHUNKED);
	h = head_with("HTTP/1.1 200 OK",
	              "Transfer-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n", false);
	assert_int_equal(h.framing, H1_BODY_CHUNKED);
}

static void test_transfer_encoding_not_ending_in_chunked_reads_until_close(void **state)
{
	(void)state;
	struct h1_head h =
	    head_with("HTTP/1.1 200 OK", "Transfer-Encoding: chunked, gzip\r\n", false);
	assert_int_equal(h.framing, H1_BODY_CLOSE);
	assert_false(h.keep_alive);
	h = head_with("HTTP/1.1 200 OK",
	              "Transfer-Encoding: chunked\r\nTransfer-Encoding: gzip\r\n", false);
	assert_int_equal(h.framing, H1_BODY_CLOSE);
	h = head_with("HTTP/1.1 200 OK", "Transfer-Encoding: gzip\r\n", false);
	assert_int_equal(h.framing, H1_BODY_CLOSE);
	h = head_with("HTTP/1.1 200 OK", "Transfer-Encoding: chunkedx\r\n", false);
	assert_int_equal(h.framing, H1_BODY_CLOSE);
	/* Transfer-Encoding wins over Content-Length even then. */
	h = head_with("HTTP/1.1 200 OK", "Transfer-Encoding: gzip\r\nContent-Length: 3\r\n", false);
	assert_int_equal(h.framing, H1_BODY_CLOSE);
	assert_false(h.keep_alive);
}

static void test_transfer_encoding_and_content_length_chunked_no_reuse(void **state)
{
	(void)state;
	struct h1_head h = head_with("HTTP/1.1 200 OK",
	                             "Content-Length: 10\r\nTransfer-Encoding: chunked\r\n", false);
	assert_int_equal(h.framing, H1_BODY_CHUNKED);
	assert_false(h.keep_alive);
	h = head_with("HTTP/1.1 200 OK", "Transfer-Encoding: chunked\r\nContent-Length: 10\r\n",
	              false);
	assert_int_equal(h.framing, H1_BODY_CHUNKED);
	assert_false(h.keep_alive);
	/* A malformed Content-Length is refused even beside Transfer-Encoding. */
	head_bad("Transfer-Encoding: chunked\r\nContent-Length: x\r\n");
}

static void test_no_framing_reads_until_close(void **state)
{
	(void)state;
	struct h1_head h = head_with("HTTP/1.1 200 OK", "Content-Type: text/plain\r\n", false);
	assert_int_equal(h.framing, H1_BODY_CLOSE);
	assert_false(h.keep_alive);
	h = head_with("HTTP/1.1 200 OK", "Connection: keep-alive\r\n", false);
	assert_int_equal(h.framing, H1_BODY_CLOSE);
	assert_false(h.keep_alive);
}

static void test_bodiless_statuses_and_head_have_no_body(void **state)
{
	static const char *lines[] = {"HTTP/1.1 100 Continue", "HTTP/1.1 103 Early Hints",
	                              "HTTP/1.1 199 X", "HTTP/1.1 204 No Content",
	                              "HTTP/1.1 304 Not Modified"};
	(void)state;
	for (size_t i = 0; i < sizeof lines / sizeof *lines; i++) {
		struct h1_head h = head_with(lines[i], "Content-Length: 10\r\n", false);
		assert_int_equal(h.framing, H1_BODY_NONE);
		assert_true(h.keep_alive);
		h = head_with(lines[i], "Transfer-Encoding: chunked\r\n", false);
		assert_int_equal(h.framing, H1_BODY_NONE);
		h = head_with(lines[i], "", false);
		assert_int_equal(h.framing, H1_BODY_NONE);
		assert_true(h.keep_alive);
	}
	/* The answer to HEAD: no body whatever the fields say. */
	struct h1_head h = head_with("HTTP/1.1 200 OK", "Content-Length: 10\r\n", true);
	assert_int_equal(h.framing, H1_BODY_NONE);
	assert_true(h.keep_alive);
	h = head_with("HTTP/1.1 200 OK", "Transfer-Encoding: chunked\r\n", true);
	assert_int_equal(h.framing, H1_BODY_NONE);
	h = head_with("HTTP/1.1 404 Not Found", "", true);
	assert_int_equal(h.framing, H1_BODY_NONE);
	assert_true(h.keep_alive);
	/* 205 and 200 with Content-Length do have one. */
	h = head_with("HTTP/1.1 205 Reset Content", "Content-Length: 0\r\n", false);
	assert_int_equal(h.framing, H1_BODY_LENGTH);
}

static void test_keep_alive_rules(void **state)
{
	(void)state;
	struct h1_head h = head_with("HTTP/1.1 200 OK", "Content-Length: 1\r\n", false);
	assert_true(h.keep_alive);
	h = head_with("HTTP/1.1 200 OK", "Transfer-Encoding: chunked\r\n", false);
	assert_true(h.keep_alive);
	/* HTTP/1.0: never, even when asked. */
	h = head_with("HTTP/1.0 200 OK", "Content-Length: 1\r\nConnection: keep-alive\r\n", false);
	assert_false(h.keep_alive);
	h = head_with("HTTP/1.0 204 No Content", "", false);
	assert_false(h.keep_alive);
	/* Connection: close, in any case and any list position. */
	h = head_with("HTTP/1.1 200 OK", "Content-Length: 1\r\nConnection: close\r\n", false);
	assert_false(h.keep_alive);
	h = head_with("HTTP/1.1 200 OK", "Content-Length: 1\r\nconnection: CLOSE\r\n", false);
	assert_false(h.keep_alive);
	h = head_with("HTTP/1.1 200 OK", "Content-Length: 1\r\nConnection: keep-alive, close\r\n",
	              false);
	assert_false(h.keep_alive);
	h = head_with("HTTP/1.1 200 OK",
	              "Content-Length: 1\r\nConnection: keep-alive\r\nConnection: Close\r\n",
	              false);
	assert_false(h.keep_alive);
	h = head_with("HTTP/1.1 304 Not Modified", "Connection: close\r\n", false);
	assert_false(h.keep_alive);
	/* Not "close": closed, closes, x-close. */
	h = head_with("HTTP/1.1 200 OK", "Content-Length: 1\r\nConnection: closed, x-close\r\n",
	              false);
	assert_true(h.keep_alive);
	h = head_with("HTTP/1.1 200 OK", "Content-Length: 1\r\nX-Connection: close\r\n", false);
	assert_true(h.keep_alive);
}

/* ---------- body ---------- */

static void test_body_length_fed_in_pieces(void **state)
{
	static const char data[] = "0123456789abcdefHTTP/1.1 200 OK\r\n";
	struct h1_head h = framing_head(H1_BODY_LENGTH, 16);
	(void)state;
	for (size_t k = 0; k < sizeof data + 1; k++) {
		struct h1_body b;
		struct sinkbuf sb = {0};
		h1_body_init(&b, &h);
		assert_false(b.done);
		assert_int_equal(feed_mode(&b, data, sizeof data - 1, k, &sb), 16);
		assert_true(b.done);
		assert_int_equal(sb.len, 16);
		assert_memory_equal(sb.data, data, 16);
		assert_int_equal(h1_body_feed(&b, S("more"), sink, &sb), 0);
		assert_true(h1_body_eof(&b));
		sink_free(&sb);
	}
}

static void test_body_length_stops_at_end_when_extra_bytes_follow(void **state)
{
	struct h1_head h = framing_head(H1_BODY_LENGTH, 5);
	struct h1_body b;
	struct sinkbuf sb = {0};
	(void)state;
	h1_body_init(&b, &h);
	assert_int_equal(h1_body_feed(&b, S("ab"), sink, &sb), 2);
	assert_false(b.done);
	assert_int_equal(b.remaining, 3);
	assert_int_equal(h1_body_feed(&b, S("cdeXYZ"), sink, &sb), 3);
	assert_true(b.done);
	assert_int_equal(sb.len, 5);
	assert_memory_equal(sb.data, "abcde", 5);
	/* Empty feeds take nothing. */
	assert_int_equal(h1_body_feed(&b, "", 0, sink, &sb), 0);
	sink_free(&sb);
}

static void test_body_length_incomplete_at_eof(void **state)
{
	struct h1_head h = framing_head(H1_BODY_LENGTH, 10);
	struct h1_body b;
	struct sinkbuf sb = {0};
	(void)state;
	h1_body_init(&b, &h);
	assert_int_equal(h1_body_feed(&b, S("12345"), sink, &sb), 5);
	assert_false(h1_body_eof(&b));
	assert_false(b.done);
	sink_free(&sb);
}

static void test_body_length_huge_fed_without_overflow(void **state)
{
	struct h1_head h = framing_head(H1_BODY_LENGTH, UINT64_C(9999999999999999999));
	struct h1_body b;
	struct sinkbuf sb = {0};
	(void)state;
	h1_body_init(&b, &h);
	assert_int_equal(h1_body_feed(&b, S("abc"), sink, &sb), 3);
	assert_true(b.remaining == UINT64_C(9999999999999999996));
	assert_false(b.done);
	sink_free(&sb);
}

static void test_body_zero_length_done_at_init(void **state)
{
	struct h1_head h = framing_head(H1_BODY_LENGTH, 0);
	struct h1_body b;
	struct sinkbuf sb = {0};
	(void)state;
	h1_body_init(&b, &h);
	assert_true(b.done);
	assert_int_equal(h1_body_feed(&b, S("HTTP/1.1 200 OK\r\n"), sink, &sb), 0);
	assert_int_equal(sb.calls, 0);
	assert_true(h1_body_eof(&b));
}

static void test_body_none_done_at_init(void **state)
{
	struct h1_head h = framing_head(H1_BODY_NONE, 0);
	struct h1_body b;
	struct sinkbuf sb = {0};
	(void)state;
	h1_body_init(&b, &h);
	assert_true(b.done);
	assert_int_equal(h1_body_feed(&b, S("abc"), sink, &sb), 0);
	assert_int_equal(sb.calls, 0);
	assert_true(h1_body_eof(&b));

	/* A HEAD answer with Content-Length parsed for real. */
	struct h1_head real = head_with("HTTP/1.1 200 OK", "Content-Length: 10\r\n", true);
	h1_body_init(&b, &real);
	assert_true(b.done);
	assert_int_equal(h1_body_feed(&b, S("0123456789"), sink, &sb), 0);
	assert_int_equal(sb.calls, 0);
}

static void test_body_close_completes_at_eof(void **state)
{
	struct h1_head h = framing_head(H1_BODY_CLOSE, 0);
	struct h1_body b;
	struct sinkbuf sb = {0};
	(void)state;
	h1_body_init(&b, &h);
	assert_false(b.done);
	assert_int_equal(h1_body_feed(&b, S("hello "), sink, &sb), 6);
	assert_int_equal(h1_body_feed(&b, S("0\r\n\r\nworld"), sink, &sb), 10);
	assert_false(b.done);
	assert_true(h1_body_eof(&b));
	assert_true(b.done);
	assert_int_equal(sb.len, 16);
	assert_memory_equal(sb.data, "hello 0\r\n\r\nworld", 16);
	assert_int_equal(h1_body_feed(&b, S("x"), sink, &sb), 0);
	sink_free(&sb);

	/* Nothing at all before the close is an empty body. */
	h1_body_init(&b, &h);
	assert_true(h1_body_eof(&b));
}

static void test_body_sink_refusal_returns_error(void **state)
{
	static const enum h1_framing kinds[] = {H1_BODY_LENGTH, H1_BODY_CHUNKED, H1_BODY_CLOSE};
	(void)state;
	for (size_t i = 0; i < 3; i++) {
		struct h1_head h = framing_head(kinds[i], 5);
		struct h1_body b;
		struct sinkbuf sb = {.refuse = true};
		h1_body_init(&b, &h);
		const char *data =
		    kinds[i] == H1_BODY_CHUNKED ? "5\r\nhello\r\n0\r\n\r\n" : "hello";
		assert_int_equal(h1_body_feed(&b, data, strlen(data), sink, &sb), -1);
		assert_int_equal(sb.calls, 1);
	}
	/* Refusing after the size line was read: the chunk data is where it fails. */
	struct h1_head h = framing_head(H1_BODY_CHUNKED, 0);
	struct h1_body b;
	struct sinkbuf sb = {0};
	h1_body_init(&b, &h);
	assert_int_equal(h1_body_feed(&b, S("5\r\nhe"), sink, &sb), 5);
	sb.refuse = true;
	assert_int_equal(h1_body_feed(&b, S("llo\r\n0\r\n\r\n"), sink, &sb), -1);
	sink_free(&sb);
}

static void test_chunked_basic_every_split(void **state)
{
	(void)state;
	chunked_ok("5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n", "hello world");
	chunked_ok("0\r\n\r\n", "");
	chunked_ok("1\r\nx\r\n0\r\n\r\n", "x");
	/* Data that looks like framing is data. */
	chunked_ok("7\r\n0\r\n\r\n\r\n\r\n0\r\n\r\n", "0\r\n\r\n\r\n");
	chunked_ok("000003\r\nabc\r\n00\r\n\r\n", "abc");
}

static void test_chunked_binary_data(void **state)
{
	static const char enc[] = "4\r\n\0\r\n\xff\r\n2\r\n\n\0\r\n0\r\n\r\n";
	(void)state;
	chunked_ok_n(enc, sizeof enc - 1, "\0\r\n\xff\n\0", 6);
}

static void test_chunked_uppercase_and_mixed_hex(void **state)
{
	char want[0x1aB + 1];
	char enc[sizeof want + 64];
	(void)state;
	for (size_t i = 0; i < 0x1ab; i++)
		want[i] = (char)('a' + i % 26);
	want[0x1ab] = '\0';
	snprintf(enc, sizeof enc, "1aB\r\n%s\r\n0\r\n\r\n", want);
	chunked_ok(enc, want);
	snprintf(enc, sizeof enc, "1AB\r\n%s\r\n0\r\n\r\n", want);
	chunked_ok(enc, want);
	chunked_ok("A\r\n0123456789\r\nf\r\nabcdefghijklmno\r\n0\r\n\r\n",
	           "0123456789abcdefghijklmno");
}

static void test_chunked_extensions_ignored(void **state)
{
	(void)state;
	chunked_ok("5;name=value\r\nhello\r\n0;last\r\n\r\n", "hello");
	chunked_ok("5 ; a=\"q;uo\\\"te\" ; b\r\nhello\r\n0\r\n\r\n", "hello");
	chunked_ok("5\t;x\r\nhello\r\n0\r\n\r\n", "hello");
	chunked_ok("5;\r\nhello\r\n0;\r\n\r\n", "hello");
	/* Trailing whitespace after the size (BWS) is tolerated. */
	chunked_ok("5 \r\nhello\r\n0\t\r\n\r\n", "hello");
}

static void test_chunked_trailers_dropped(void **state)
{
	(void)state;
	chunked_ok("5\r\nhello\r\n0\r\nExpires: never\r\nX-Sum: 1\r\n\r\n", "hello");
	chunked_ok("0\r\nA: b\r\n\r\n", "");
	chunked_ok("3\r\nabc\r\n0\nA: b\nB: c\n\n", "abc");
}

static void test_chunked_bare_lf_variants(void **state)
{
	(void)state;
	chunked_ok("5\nhello\n0\n\n", "hello");
	chunked_ok("5\nhello\r\n0\r\n\n", "hello");
	chunked_ok("5\r\nhello\n0\n\r\n", "hello");
	chunked_ok("5;ext\nhello\n0;x\nT: v\n\n", "hello");
	chunked_ok("2\r\nab\n3\ncde\r\n0\n\r\n", "abcde");
}

static void test_chunked_no_digits_refused(void **state)
{
	(void)state;
	chunked_bad("\r\nhello\r\n0\r\n\r\n");
	chunked_bad("\nhello\r\n0\r\n\r\n");
	chunked_bad(";ext\r\nhello\r\n0\r\n\r\n");
	chunked_bad(" 5\r\nhello\r\n0\r\n\r\n");
	chunked_bad("5\r\nhello\r\n\r\n");
	chunked_bad("5\r\nhello\r\n;x\r\n\r\n");
}

static void test_chunked_bad_hex_refused(void **state)
{
	(void)state;
	chunked_bad("g\r\nhello\r\n0\r\n\r\n");
	chunked_bad("5x\r\nhello\r\n0\r\n\r\n");
	chunked_bad("0x5\r\nhello\r\n0\r\n\r\n");
	chunked_bad("-5\r\nhello\r\n0\r\n\r\n");
	chunked_bad("+5\r\nhello\r\n0\r\n\r\n");
	chunked_bad("5\r\nhello\r\nz\r\n\r\n");
}

static void test_chunked_junk_after_size_refused(void **state)
{
	/* "5 6" is not size 5 with an extension "6" (nor 0x56): only BWS then ';'. */
	(void)state;
	chunked_bad("5 6\r\nhello\r\n0\r\n\r\n");
	chunked_bad("5 x\r\nhello\r\n0\r\n\r\n");
	chunked_bad("5\t=\r\nhello\r\n0\r\n\r\n");
	chunked_bad("5\r\nhello\r\n0 0\r\n\r\n");
}

static void test_chunked_missing_crlf_after_data_refused(void **state)
{
	(void)state;
	chunked_bad("5\r\nhelloX\r\n0\r\n\r\n");
	chunked_bad("5\r\nhello0\r\n\r\n");
	chunked_bad("5\r\nhello\rX0\r\n\r\n");
	chunked_bad("5\r\nhello\r\r\n0\r\n\r\n");
	chunked_bad("3\r\nhello\r\n0\r\n\r\n");
	/* A bad end of the last chunk or of the trailer section. */
	chunked_bad("5\r\nhello\r\n0\r\n\rX");
	chunked_bad("5\r\nhello\r\n0\rX\n\r\n");
	chunked_bad("0\r\n\r\r\n");
}

static void test_chunked_size_over_15_hex_digits_refused(void **state)
{
	(void)state;
	/* 15 digits are read (the size is then far too big to arrive, but valid). */
	struct h1_head h = framing_head(H1_BODY_CHUNKED, 0);
	struct h1_body b;
	struct sinkbuf sb = {0};
	h1_body_init(&b, &h);
	assert_int_equal(h1_body_feed(&b, S("fffffffffffffff\r\nab"), sink, &sb), 19);
	assert_true(b.remaining == UINT64_C(0xfffffffffffffff) - 2);
	assert_int_equal(sb.len, 2);
	sink_free(&sb);
	h1_body_init(&b, &h);
	assert_int_equal(h1_body_feed(&b, S("000000000000005\r\nhello\r\n0\r\n\r\n"), sink, &sb),
	                 29);
	assert_true(b.done);
	sink_free(&sb);

	chunked_bad("0000000000000005\r\nhello\r\n0\r\n\r\n");
	chunked_bad("1000000000000000\r\n");
	chunked_bad("ffffffffffffffffff\r\n");
	chunked_bad("0000000000000000\r\n\r\n");
}

static void test_chunked_overlong_extension_line_refused(void **state)
{
	char enc[5000 + 64];
	size_t n;
	(void)state;
	/* 4096 bytes after the size (extensions and line end) are read... */
	n = (size_t)snprintf(enc, sizeof enc, "5;");
	memset(enc + n, 'x', 4093);
	n += 4093;
	n += (size_t)snprintf(enc + n, sizeof enc - n, "\r\nhello\r\n0\r\n\r\n");
	chunked_ok_n(enc, n, "hello", 5);
	/* ...one more is refused. */
	n = (size_t)snprintf(enc, sizeof enc, "5;");
	memset(enc + n, 'x', 4094);
	n += 4094;
	n += (size_t)snprintf(enc + n, sizeof enc - n, "\r\nhello\r\n0\r\n\r\n");
	chunked_bad_n(enc, n);
	/* An extension that never ends. */
	n = (size_t)snprintf(enc, sizeof enc, "5;");
	memset(enc + n, 'x', 5000);
	chunked_bad_n(enc, n + 5000);
	/* Whitespace after the size counts too. */
	memset(enc, ' ', 5000);
	enc[0] = '5';
	chunked_bad_n(enc, 5000);
}

static void test_chunked_nul_in_extension_or_trailer_refused(void **state)
{
	(void)state;
	chunked_bad_n(S("5;a\0\r\nhello\r\n0\r\n\r\n"));
	chunked_bad_n(S("5\r\nhello\r\n0\r\nA: \0\r\n\r\n"));
}

/* CRLF at p[n]; the new length. */
static size_t put_crlf(char *p, size_t n)
{
	p[n] = '\r';
	p[n + 1] = '\n';
	return n + 2;
}

static void test_chunked_trailer_section_limit(void **state)
{
	/* Trailer lines of 1000 bytes (with CRLF): 65 fit in 64 KiB, 66 do not. */
	size_t cap = 70 * 1000 + 64;
	char *enc = xmalloc(cap);
	size_t n;
	(void)state;

	for (int lines = 65; lines <= 66; lines++) {
		n = (size_t)snprintf(enc, cap, "3\r\nabc\r\n0\r\n");
		for (int i = 0; i < lines; i++) {
			n += (size_t)snprintf(enc + n, cap - n, "X-T%03d: ", i);
			memset(enc + n, 'v', 1000 - 8 - 2);
			n += 1000 - 8 - 2;
			n = put_crlf(enc, n);
		}
		n = put_crlf(enc, n);
		if (lines == 65)
			chunked_ok_n(enc, n, "abc", 3);
		else
			chunked_bad_n(enc, n);
	}
	/* One trailer line over 4096 bytes. */
	n = (size_t)snprintf(enc, cap, "0\r\nX: ");
	memset(enc + n, 'v', 4100);
	n += 4100;
	n = put_crlf(enc, put_crlf(enc, n));
	chunked_bad_n(enc, n);
	free(enc);
}

static void test_chunked_incomplete_at_eof(void **state)
{
	static const char *partial[] = {"",
	                                "5",
	                                "5\r\nhel",
	                                "5\r\nhello",
	                                "5\r\nhello\r\n",
	                                "5\r\nhello\r\n0\r\n",
	                                "5\r\nhello\r\n0\r\nA: b\r\n",
	                                "5\r\nhello\r\n0\r\n\r"};
	struct h1_head h = framing_head(H1_BODY_CHUNKED, 0);
	(void)state;
	for (size_t i = 0; i < sizeof partial / sizeof *partial; i++) {
		struct h1_body b;
		struct sinkbuf sb = {0};
		size_t len = strlen(partial[i]);
		h1_body_init(&b, &h);
		assert_int_equal(feed_pieces(&b, partial[i], len, len ? len : 1, 1, &sb),
		                 (ssize_t)len);
		assert_false(b.done);
		assert_false(h1_body_eof(&b));
		sink_free(&sb);
	}
}

/* A whole exchange: head, then body, the way the upstream client reads it. */
static void test_response_head_then_chunked_body(void **state)
{
	static const char wire[] = "HTTP/1.1 103 Early Hints\r\nLink: </s.css>\r\n\r\n"
	                           "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
	                           "4\r\nWiki\r\n5\r\npedia\r\n0\r\n\r\n"
	                           "HTTP/1.1 204 No Content\r\n\r\n";
	size_t len = sizeof wire - 1;
	char *buf = dup_exact(wire, len);
	struct h1_head h;
	struct h1_body b;
	struct sinkbuf sb = {0};
	size_t scan = 0;
	(void)state;

	size_t end = h1_find_head_end(buf, len, &scan);
	assert_int_equal(end, 44);
	assert_int_equal(h1_parse_head(buf, end, false, &h), 0);
	assert_int_equal(h.status, 103);
	assert_int_equal(h.framing, H1_BODY_NONE);
	size_t pos = end;

	scan = 0;
	end = h1_find_head_end(buf + pos, len - pos, &scan);
	assert_int_equal(h1_parse_head(buf + pos, end, false, &h), 0);
	assert_int_equal(h.status, 200);
	assert_int_equal(h.framing, H1_BODY_CHUNKED);
	assert_true(h.keep_alive);
	pos += end;
	h1_body_init(&b, &h);
	ssize_t used = h1_body_feed(&b, buf + pos, len - pos, sink, &sb);
	assert_int_equal(used, 24);
	assert_true(b.done);
	assert_int_equal(sb.len, 9);
	assert_memory_equal(sb.data, "Wikipedia", 9);
	pos += (size_t)used;

	scan = 0;
	end = h1_find_head_end(buf + pos, len - pos, &scan);
	assert_int_equal(end, len - pos);
	assert_int_equal(h1_parse_head(buf + pos, end, false, &h), 0);
	assert_int_equal(h.status, 204);
	sink_free(&sb);
	free(buf);
}

static int teardown(void **state)
{
	(void)state;
	free_head();
	return 0;
}

#define T(name) cmocka_unit_test_teardown(name, teardown)

/* Every byte value as a one-character field name: accepted exactly for the RFC 9110 tchars. */
static void test_field_name_accepts_exactly_the_token_characters(void **state)
{
	(void)state;
	const char *extra = "!#$%&'*+-.^_`|~";
	for (int c = 0; c < 256; c++) {
		bool tchar = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		             (c >= '0' && c <= '9') || (c != 0 && strchr(extra, c) != NULL);
		char head[64];
		int n = snprintf(head, sizeof head, "HTTP/1.1 200 OK\r\n%cx: v\r\n\r\n", 'a');
		head[17] = (char)c; /* the name's first byte */
		struct h1_head h;
		int rc = parse_n(head, (size_t)n, false, &h);
		if (tchar && rc != 0)
			fail_msg("byte 0x%02x refused in a field name", c);
		if (!tchar && rc == 0)
			fail_msg("byte 0x%02x accepted in a field name", c);
		free_head();
	}
}

/*
 * h1_is_field_value reads eight bytes at a time: every byte value at every
 * position of values 1 to 24 bytes long (whole words, a tail, both) is
 * judged as the byte-wise rule says (HTAB, SP, VCHAR, obs-text; no CTL, no
 * DEL), and a word of tabs or of obs-text passes.
 */
static void test_field_value_every_byte_at_every_position(void **state)
{
	(void)state;
	char v[24];
	for (size_t n = 1; n <= sizeof v; n++) {
		for (size_t pos = 0; pos < n; pos++) {
			for (int c = 0; c < 256; c++) {
				memset(v, 'a', sizeof v);
				v[pos] = (char)c;
				bool ok = c == '\t' || (c >= 0x20 && c != 0x7f);
				if (h1_is_field_value(v, n) != ok)
					fail_msg("byte 0x%02x at %zu of %zu judged wrong", c, pos,
					         n);
			}
		}
	}
	memset(v, '\t', sizeof v);
	assert_true(h1_is_field_value(v, sizeof v));
	memset(v, 0xff, sizeof v);
	assert_true(h1_is_field_value(v, sizeof v));
	memset(v, 0x80, sizeof v);
	assert_true(h1_is_field_value(v, sizeof v));
	assert_true(h1_is_field_value(v, 0));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    T(test_field_name_accepts_exactly_the_token_characters),
	    T(test_field_value_every_byte_at_every_position),
	    T(test_find_head_end_crlf),
	    T(test_find_head_end_bare_lf),
	    T(test_find_head_end_no_end_yet_returns_zero),
	    T(test_find_head_end_ignores_bytes_after_head),
	    T(test_find_head_end_byte_by_byte_same_as_whole),
	    T(test_find_head_end_hint_resumes_across_line_end),
	    T(test_status_line_with_reason),
	    T(test_status_line_without_reason),
	    T(test_status_line_http10_and_http11),
	    T(test_status_code_range_100_to_599),
	    T(test_status_code_non_digits_refused),
	    T(test_status_line_missing_space_refused),
	    T(test_status_line_other_versions_refused),
	    T(test_status_line_control_chars_refused),
	    T(test_field_ows_trimmed),
	    T(test_field_empty_value),
	    T(test_field_obs_text_allowed),
	    T(test_field_control_chars_refused),
	    T(test_field_bare_cr_refused),
	    T(test_field_obs_fold_refused),
	    T(test_field_space_before_colon_refused),
	    T(test_field_name_malformed_refused),
	    T(test_fields_up_to_max_accepted_more_refused),
	    T(test_fields_point_into_buffer),
	    T(test_head_must_end_at_len),
	    T(test_content_length_single),
	    T(test_content_length_repeated_same_value),
	    T(test_content_length_list_same_value),
	    T(test_content_length_conflicting_refused),
	    T(test_content_length_non_digit_refused),
	    T(test_content_length_empty_refused),
	    T(test_content_length_over_19_digits_refused),
	    T(test_transfer_encoding_chunked),
	    T(test_transfer_encoding_chunked_last_coding),
	    T(test_transfer_encoding_not_ending_in_chunked_reads_until_close),
	    T(test_transfer_encoding_and_content_length_chunked_no_reuse),
	    T(test_no_framing_reads_until_close),
	    T(test_bodiless_statuses_and_head_have_no_body),
	    T(test_keep_alive_rules),
	    T(test_body_length_fed_in_pieces),
	    T(test_body_length_stops_at_end_when_extra_bytes_follow),
	    T(test_body_length_incomplete_at_eof),
	    T(test_body_length_huge_fed_without_overflow),
	    T(test_body_zero_length_done_at_init),
	    T(test_body_none_done_at_init),
	    T(test_body_close_completes_at_eof),
	    T(test_body_sink_refusal_returns_error),
	    T(test_chunked_basic_every_split),
	    T(test_chunked_binary_data),
	    T(test_chunked_uppercase_and_mixed_hex),
	    T(test_chunked_extensions_ignored),
	    T(test_chunked_trailers_dropped),
	    T(test_chunked_bare_lf_variants),
	    T(test_chunked_no_digits_refused),
	    T(test_chunked_bad_hex_refused),
	    T(test_chunked_junk_after_size_refused),
	    T(test_chunked_missing_crlf_after_data_refused),
	    T(test_chunked_size_over_15_hex_digits_refused),
	    T(test_chunked_overlong_extension_line_refused),
	    T(test_chunked_nul_in_extension_or_trailer_refused),
	    T(test_chunked_trailer_section_limit),
	    T(test_chunked_incomplete_at_eof),
	    T(test_response_head_then_chunked_body),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
