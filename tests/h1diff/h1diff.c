/*
 * h1diff.c: the server's HTTP/1.1 request parser (http/h1parse.h) as a
 * filter, for the differential test against python3-h11
 * (tests/integration/test_h1_differential.py).
 *
 * stdin: records "<length>\n<length bytes>", each one whole connection's
 * bytes followed by end of file. stdout: one JSON object per record, what
 * the server makes of the first request on it:
 *
 *   {"ok": true, "method", "target", "minor", "headers": [[name, value]...],
 *    "framing": "none"|"length"|"chunked", "keep_alive", "expect_continue",
 *    "body", "rest"}      (method, target, names, values, body and rest hex)
 *   {"ok": false, "status", "code", "message"}
 *
 * The head is found with h1_find_head_end and parsed with h1_parse_request;
 * the body is decoded with h1_body_init_request and h1_body_feed, fed in
 * pieces of one byte and then in one go (both must agree). A head or body
 * that the end of the input cuts short is refused as the server refuses it
 * (400, "incomplete").
 */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/str.h"
#include "http/h1parse.h"

#define MAX_RECORD (1 << 20)

struct sink {
	char *data;
	size_t len, cap;
};

static int take(void *arg, const char *d, size_t n)
{
	struct sink *s = arg;
	if (n > s->cap - s->len)
		return 1;
	memcpy(s->data + s->len, d, n);
	s->len += n;
	return 0;
}

static json_t *hex(const char *p, size_t n)
{
	char *out = malloc(2 * n + 1);
	if (!out)
		abort();
	hex_encode((const uint8_t *)p, n, out);
	json_t *j = json_string(out);
	free(out);
	return j;
}

static json_t *refused(int status, const char *code, const char *message)
{
	return json_pack("{s:b, s:i, s:s, s:s}", "ok", 0, "status", status, "code", code, "message",
	                 message);
}

/* The body of r from p[0..n): -1 refused, 0 incomplete, else 1 with *used bytes taken. */
static int decode_body(const struct h1_request *r, const char *p, size_t n, struct sink *s,
                       size_t *used, int step)
{
	struct h1_body b;
	h1_body_init_request(&b, r);
	size_t i = 0;
	while (i < n && !b.done) {
		size_t piece = step && (size_t)step < n - i ? (size_t)step : n - i;
		ssize_t k = h1_body_feed(&b, p + i, piece, take, s);
		if (k < 0)
			return -1;
		i += (size_t)k;
		if ((size_t)k < piece && !b.done)
			abort(); /* the decoder stops early only at the body's end */
	}
	*used = i;
	return b.done ? 1 : 0;
}

static json_t *one(const char *buf, size_t len)
{
	size_t scan = 0;
	size_t end = h1_find_head_end(buf, len, &scan);
	if (end == 0)
		return refused(400, "BAD_REQUEST", "incomplete head");
	struct h1_request *r = malloc(sizeof *r);
	struct reqcheck_verdict v;
	if (!r)
		abort();
	if (h1_parse_request(buf, end, r, &v) < 0) {
		free(r);
		return refused(v.status, v.code, v.message);
	}
	struct sink whole = {malloc(len + 1), 0, len}, bytes = {malloc(len + 1), 0, len};
	size_t used = 0, used1 = 0;
	int rc = decode_body(r, buf + end, len - end, &whole, &used, 0);
	int rc1 = decode_body(r, buf + end, len - end, &bytes, &used1, 1);
	if (rc != rc1 || (rc == 1 && (used != used1 || whole.len != bytes.len ||
	                              memcmp(whole.data, bytes.data, whole.len) != 0)))
		abort(); /* one byte at a time must decode as the whole does */
	json_t *out;
	if (rc < 0) {
		out = refused(400, "BAD_REQUEST", "malformed body");
	} else if (rc == 0) {
		out = refused(400, "BAD_REQUEST", "incomplete body");
	} else {
		static const char *const framing[] = {"none", "length", "chunked", "close"};
		json_t *headers = json_array();
		for (size_t i = 0; i < r->n_fields; i++)
			json_array_append_new(
			    headers,
			    json_pack("[o, o]", hex(r->fields[i].name, r->fields[i].name_len),
			              hex(r->fields[i].value, r->fields[i].value_len)));
		out = json_pack(
		    "{s:b, s:o, s:o, s:i, s:o, s:s, s:b, s:b, s:o, s:o}", "ok", 1, "method",
		    hex(r->method, r->method_len), "target", hex(r->target, r->target_len), "minor",
		    r->minor, "headers", headers, "framing", framing[r->framing], "keep_alive",
		    r->keep_alive, "expect_continue", r->expect_continue, "body",
		    hex(whole.data, whole.len), "rest", hex(buf + end + used, len - end - used));
	}
	free(whole.data);
	free(bytes.data);
	free(r);
	return out;
}

int main(void)
{
	char *buf = malloc(MAX_RECORD);
	size_t len;
	if (!buf)
		return 1;
	while (scanf("%zu", &len) == 1 && getchar() == '\n') {
		if (len > MAX_RECORD || fread(buf, 1, len, stdin) != len)
			return 1;
		json_t *out = one(buf, len);
		char *line = json_dumps(out, JSON_COMPACT);
		puts(line);
		free(line);
		json_decref(out);
	}
	free(buf);
	return 0;
}
