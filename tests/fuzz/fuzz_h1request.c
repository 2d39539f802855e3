/*
 * fuzz_h1request.c: the server's HTTP/1.1 request parser and the strict
 * request-body decoder (http/h1parse.h: h1_parse_request,
 * h1_body_init_request) on arbitrary bytes, read the way the server reads
 * a connection.
 *
 * Byte 0 sets the size of the body pieces; the rest is the connection's
 * bytes. The head is found with h1_find_head_end and parsed from an
 * exact-size copy. Invariants: a refusal has a status of 400, 431, 501 or
 * 505 with a code and a message; an accepted head has a token method of at
 * most 32 bytes, a target of visible ASCII, HTTP/1.0 or 1.1, fields inside
 * the head whose names are tokens and values field-value bytes, chunked
 * only on HTTP/1.1, Expect: 100-continue only on 1.1, and a target form
 * that its method allows. The body is decoded whole, in pieces and one
 * byte at a time, which must agree byte for byte; consumed <= fed.
 */
#include "fuzz.h"

#include <stdbool.h>
#include <string.h>

#include "http/h1parse.h"

struct out {
	char *data;
	size_t len, cap;
};

static int sink(void *arg, const char *data, size_t n)
{
	struct out *o = arg;
	FUZZ_CHECK(n <= o->cap - o->len);
	memcpy(o->data + o->len, data, n);
	o->len += n;
	return 0;
}

static bool in(const char *p, size_t n, const char *buf, size_t len)
{
	return p >= buf && n <= len && (size_t)(p - buf) <= len - n;
}

static void check_accepted(const struct h1_request *r, const char *head, size_t len)
{
	FUZZ_CHECK(r->method_len >= 1 && r->method_len <= 32);
	FUZZ_CHECK(h1_is_token(r->method, r->method_len));
	FUZZ_CHECK(in(r->target, r->target_len, head, len) && r->target_len >= 1);
	for (size_t i = 0; i < r->target_len; i++)
		FUZZ_CHECK(r->target[i] > 0x20 && r->target[i] < 0x7f);
	FUZZ_CHECK(r->minor == 0 || r->minor == 1);
	FUZZ_CHECK(r->n_fields <= H1_MAX_FIELDS);
	for (size_t i = 0; i < r->n_fields; i++) {
		const struct h1_field *f = &r->fields[i];
		FUZZ_CHECK(in(f->name, f->name_len, head, len) &&
		           h1_is_token(f->name, f->name_len));
		FUZZ_CHECK(in(f->value, f->value_len, head, len));
		FUZZ_CHECK(h1_is_field_value(f->value, f->value_len));
	}
	FUZZ_CHECK(r->framing == H1_BODY_NONE || r->framing == H1_BODY_LENGTH ||
	           r->framing == H1_BODY_CHUNKED);
	FUZZ_CHECK(r->framing != H1_BODY_CHUNKED || r->minor == 1);
	FUZZ_CHECK(!r->expect_continue || r->minor == 1);
	bool connect = r->method_len == 7 && memcmp(r->method, "CONNECT", 7) == 0;
	FUZZ_CHECK(connect == (r->form == H1_FORM_AUTHORITY));
	FUZZ_CHECK(r->form != H1_FORM_ORIGIN || r->target[0] == '/');
}

/* Decode the body from data[0..len) in pieces of step bytes (0: whole); *used bytes taken. */
static int decode(const struct h1_request *r, const char *data, size_t len, size_t step,
                  struct out *o, size_t *used)
{
	struct h1_body b;
	h1_body_init_request(&b, r);
	size_t i = 0;
	while (i < len && !b.done) {
		size_t piece = step && step < len - i ? step : len - i;
		ssize_t k = h1_body_feed(&b, data + i, piece, sink, o);
		if (k < 0)
			return -1;
		FUZZ_CHECK((size_t)k <= piece);
		FUZZ_CHECK((size_t)k == piece || b.done);
		i += (size_t)k;
	}
	*used = i;
	return b.done ? 1 : 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	size_t step = (size_t)(data[0] & 0x3f);
	const char *msg = (const char *)data + 1;
	size_t len = size - 1;
	size_t scan = 0;
	size_t end = h1_find_head_end(msg, len, &scan);
	if (end == 0)
		return 0;
	char *head = malloc(end);
	struct h1_request *r = malloc(sizeof *r);
	FUZZ_CHECK(head && r);
	memcpy(head, msg, end);
	struct reqcheck_verdict v;
	if (h1_parse_request(head, end, r, &v) < 0) {
		FUZZ_CHECK(v.status == 400 || v.status == 431 || v.status == 501 ||
		           v.status == 505);
		FUZZ_CHECK(v.code && v.message && *v.message);
		free(head);
		free(r);
		return 0;
	}
	check_accepted(r, head, end);
	const char *body = msg + end;
	size_t blen = len - end;
	char *bytes = malloc(3 * (blen + 1));
	FUZZ_CHECK(bytes);
	struct out o[3];
	size_t used[3];
	int rc[3];
	const size_t steps[3] = {0, step, 1};
	for (int k = 0; k < 3; k++) {
		o[k] = (struct out){bytes + k * (blen + 1), 0, blen};
		rc[k] = decode(r, body, blen, steps[k], &o[k], &used[k]);
	}
	for (int k = 1; k < 3; k++) {
		FUZZ_CHECK(rc[k] == rc[0]);
		if (rc[0] == 1) {
			FUZZ_CHECK(used[k] == used[0] && o[k].len == o[0].len);
			FUZZ_CHECK(memcmp(o[k].data, o[0].data, o[0].len) == 0);
		}
	}
	if (rc[0] == 1 && r->framing == H1_BODY_LENGTH)
		FUZZ_CHECK(o[0].len == r->content_length && memcmp(o[0].data, body, o[0].len) == 0);
	free(bytes);
	free(head);
	free(r);
	return 0;
}
