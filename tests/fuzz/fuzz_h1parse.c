/*
 * fuzz_h1parse.c: the HTTP/1.1 response parser of the upstream client
 * (http/h1parse.h) on arbitrary bytes, read the way the client reads a
 * connection.
 *
 * Byte 0 is control: bit 0 says the request was HEAD, the other bits set
 * the size of the body pieces. The rest is the response: heads are found
 * with h1_find_head_end (in one go, against a reference, and growing one
 * byte at a time with the scan hint) and parsed from exact-size copies, 1xx
 * heads are skipped as the client does, and what follows the final head
 * goes to the body decoder three ways (whole, in pieces sized by the
 * input, one byte at a time) that must agree byte for byte, plus once with
 * a sink that refuses. Invariants: consumed <= fed, status 100..599 on
 * success, fields inside the head and well-formed, a done body takes
 * nothing more, LENGTH and CLOSE bodies pass bytes through unchanged, and
 * the sink never receives more than the input's length in total.
 */
#include "fuzz.h"

#include <stdbool.h>
#include <string.h>

#include "http/h1parse.h"

#define MAX_HEADS 8 /* interim responses followed before the final one */

struct out {
	char *data;
	size_t len, cap; /* cap: the input's length; more is a bug */
	size_t calls;
	bool refuse;
};

static int sink(void *arg, const char *data, size_t n)
{
	struct out *o = arg;
	o->calls++;
	if (o->refuse)
		return 1;
	FUZZ_CHECK(n <= o->cap - o->len);
	memcpy(o->data + o->len, data, n);
	o->len += n;
	return 0;
}

/* The first "\n\n" or "\n\r\n": the head's length through it, or 0. */
static size_t ref_head_end(const char *p, size_t len)
{
	for (size_t i = 1; i < len; i++) {
		if (p[i] != '\n')
			continue;
		if (p[i - 1] == '\n')
			return i + 1;
		if (i >= 2 && p[i - 1] == '\r' && p[i - 2] == '\n')
			return i + 1;
	}
	return 0;
}

static size_t find_head(const char *p, size_t len)
{
	size_t scan = 0;
	size_t end = h1_find_head_end(p, len, &scan);
	FUZZ_CHECK(end == ref_head_end(p, len));
	if (end == 0)
		FUZZ_CHECK(scan == len);

	/* Growing one byte at a time: found exactly when its last byte arrives. */
	size_t scan1 = 0;
	size_t got = 0;
	for (size_t have = 0; have <= len; have++) {
		got = h1_find_head_end(p, have, &scan1);
		if (got) {
			FUZZ_CHECK(got == have);
			break;
		}
		FUZZ_CHECK(scan1 == have);
	}
	FUZZ_CHECK(got == end);
	return end;
}

static bool is_tchar(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       (c != 0 && strchr("!#$%&'*+-.^_`|~", c) != NULL);
}

static void check_head(const char *buf, size_t len, bool head_request, const struct h1_head *h)
{
	FUZZ_CHECK(h->status >= 100 && h->status <= 599);
	FUZZ_CHECK(h->minor >= 0 && h->minor <= 9);
	FUZZ_CHECK(memcmp(buf, "HTTP/1.", 7) == 0 && buf[7] == '0' + h->minor);
	FUZZ_CHECK(h->n_fields <= H1_MAX_FIELDS);
	for (size_t i = 0; i < h->n_fields; i++) {
		const struct h1_field *f = &h->fields[i];
		FUZZ_CHECK(f->name > buf && f->name_len > 0 && f->name_len < len);
		FUZZ_CHECK(f->name + f->name_len < buf + len && f->name[f->name_len] == ':');
		FUZZ_CHECK(f->value > f->name + f->name_len);
		FUZZ_CHECK(f->value + f->value_len <= buf + len);
		for (size_t k = 0; k < f->name_len; k++)
			FUZZ_CHECK(is_tchar((unsigned char)f->name[k]));
		for (size_t k = 0; k < f->value_len; k++) {
			unsigned char c = (unsigned char)f->value[k];
			FUZZ_CHECK(c == '\t' || (c >= 0x20 && c != 0x7f));
		}
		if (f->value_len) {
			FUZZ_CHECK(f->value[0] != ' ' && f->value[0] != '\t');
			FUZZ_CHECK(f->value[f->value_len - 1] != ' ' &&
			           f->value[f->value_len - 1] != '\t');
		}
		if (i > 0)
			FUZZ_CHECK(f->name > h->fields[i - 1].value + h->fields[i - 1].value_len);
	}
	bool bodiless = h->status < 200 || h->status == 204 || h->status == 304 || head_request;
	switch (h->framing) {
	case H1_BODY_NONE:
		FUZZ_CHECK(bodiless);
		break;
	case H1_BODY_LENGTH:
		FUZZ_CHECK(!bodiless);
		FUZZ_CHECK(h->content_length < UINT64_C(10000000000000000000));
		break;
	case H1_BODY_CHUNKED:
		FUZZ_CHECK(!bodiless);
		break;
	case H1_BODY_CLOSE:
		FUZZ_CHECK(!bodiless && !h->keep_alive);
		break;
	default:
		FUZZ_CHECK(!"framing out of range");
	}
	if (h->keep_alive)
		FUZZ_CHECK(h->minor >= 1);
}

/* Parse buf[0..len) from an exact-size copy; the other head_request must agree. */
static int parse_head(const char *buf, size_t len, bool head_request, struct h1_head *h)
{
	static struct h1_head other;
	char *copy = malloc(len);
	FUZZ_CHECK(copy != NULL);
	memcpy(copy, buf, len);
	int rc = h1_parse_head(copy, len, head_request, h);
	FUZZ_CHECK(rc == 0 || rc == -1);
	int rc2 = h1_parse_head(copy, len, !head_request, &other);
	FUZZ_CHECK(rc2 == rc);
	if (rc == 0) {
		check_head(copy, len, head_request, h);
		check_head(copy, len, !head_request, &other);
		FUZZ_CHECK(other.status == h->status && other.n_fields == h->n_fields);
		struct h1_head *with_head = head_request ? h : &other;
		FUZZ_CHECK(with_head->framing == H1_BODY_NONE);
	}
	free(copy);
	return rc;
}

struct result {
	ssize_t used; /* total consumed, or -1 */
	bool done, eof_done;
};

/*
 * Feed data[0..len) in pieces (first `first`, then by the size seed; 0:
 * one byte at a time), each from an exact-size heap copy.
 */
static struct result feed(const struct h1_head *h, const char *data, size_t len, size_t first,
                          unsigned seed, struct out *o)
{
	struct h1_body b;
	struct result r = {0};
	size_t pos = 0;
	size_t piece = first;
	h1_body_init(&b, h);
	FUZZ_CHECK(b.framing == h->framing);
	if (h->framing == H1_BODY_NONE || (h->framing == H1_BODY_LENGTH && !h->content_length))
		FUZZ_CHECK(b.done);
	while (pos < len && !b.done) {
		size_t n = len - pos < piece ? len - pos : piece;
		char *copy = malloc(n);
		FUZZ_CHECK(copy != NULL);
		memcpy(copy, data + pos, n);
		ssize_t got = h1_body_feed(&b, copy, n, sink, o);
		free(copy);
		if (got < 0) {
			FUZZ_CHECK(got == -1);
			FUZZ_CHECK(h->framing == H1_BODY_CHUNKED || o->refuse);
			r.used = -1;
			return r;
		}
		FUZZ_CHECK((size_t)got <= n);
		pos += (size_t)got;
		if ((size_t)got < n)
			FUZZ_CHECK(b.done);
		piece = seed ? 1 + (seed + (unsigned char)data[pos - (pos > 0)]) % (seed * 4u) : 1;
	}
	r.used = (ssize_t)pos;
	r.done = b.done;
	if (b.done) {
		/* A done body takes nothing more. */
		size_t before = o->len;
		FUZZ_CHECK(h1_body_feed(&b, "x", 1, sink, o) == 0);
		FUZZ_CHECK(o->len == before);
	}
	r.eof_done = h1_body_eof(&b);
	FUZZ_CHECK(r.eof_done == (b.done || h->framing == H1_BODY_CLOSE));
	return r;
}

static void check_body(const struct h1_head *h, const char *data, size_t len, unsigned seed,
                       size_t cap)
{
	struct out whole = {.data = malloc(cap + 1), .cap = cap};
	struct out pieces = {.data = malloc(cap + 1), .cap = cap};
	struct out bytes = {.data = malloc(cap + 1), .cap = cap};
	struct out refused = {.refuse = true};
	FUZZ_CHECK(whole.data && pieces.data && bytes.data);

	struct result rw = feed(h, data, len, len ? len : 1, 0, &whole);
	struct result rp = feed(h, data, len, 1 + seed, seed, &pieces);
	struct result rb = feed(h, data, len, 1, 0, &bytes);

	/* However the bytes arrive, the same body. */
	FUZZ_CHECK(rp.used == rw.used && rb.used == rw.used);
	FUZZ_CHECK(rp.done == rw.done && rb.done == rw.done);
	FUZZ_CHECK(rp.eof_done == rw.eof_done && rb.eof_done == rw.eof_done);
	FUZZ_CHECK(pieces.len == whole.len && bytes.len == whole.len);
	FUZZ_CHECK(memcmp(pieces.data, whole.data, whole.len) == 0);
	FUZZ_CHECK(memcmp(bytes.data, whole.data, whole.len) == 0);
	if (rw.used >= 0) {
		FUZZ_CHECK((size_t)rw.used <= len);
		FUZZ_CHECK(whole.len <= (size_t)rw.used);
		if (!rw.done)
			FUZZ_CHECK((size_t)rw.used == len);
	}

	switch (h->framing) {
	case H1_BODY_NONE:
		FUZZ_CHECK(rw.used == 0 && rw.done && whole.len == 0);
		break;
	case H1_BODY_LENGTH: {
		size_t want = h->content_length < len ? (size_t)h->content_length : len;
		FUZZ_CHECK(rw.used == (ssize_t)want && whole.len == want);
		FUZZ_CHECK(memcmp(whole.data, data, want) == 0);
		FUZZ_CHECK(rw.done == (h->content_length <= len));
		break;
	}
	case H1_BODY_CLOSE:
		FUZZ_CHECK(rw.used == (ssize_t)len && whole.len == len && !rw.done);
		FUZZ_CHECK(memcmp(whole.data, data, len) == 0);
		break;
	case H1_BODY_CHUNKED:
		break;
	default:
		FUZZ_CHECK(!"framing out of range");
	}

	/* A sink that refuses: an error as soon as there is a byte to give it. */
	struct result rr = feed(h, data, len, len ? len : 1, 0, &refused);
	if (whole.len > 0)
		FUZZ_CHECK(rr.used == -1 && refused.calls > 0);
	else if (refused.calls == 0)
		FUZZ_CHECK(rr.used == rw.used && rr.done == rw.done);
	else
		FUZZ_CHECK(rr.used == -1);

	free(whole.data);
	free(pieces.data);
	free(bytes.data);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size == 0)
		return 0;
	bool head_request = data[0] & 1;
	unsigned seed = data[0] >> 1; /* 0: body pieces of one byte */
	const char *p = (const char *)data + 1;
	size_t len = size - 1;
	struct h1_head *h = malloc(sizeof *h);
	FUZZ_CHECK(h != NULL);

	size_t pos = 0;
	for (int n = 0; n < MAX_HEADS; n++) {
		size_t end = find_head(p + pos, len - pos);
		if (end == 0) {
			/* No head end: nothing parses as a head. */
			if (len > pos)
				FUZZ_CHECK(parse_head(p + pos, len - pos, head_request, h) == -1);
			break;
		}
		FUZZ_CHECK(end <= len - pos);
		/* A head must end where h1_find_head_end says. */
		if (end < len - pos)
			FUZZ_CHECK(parse_head(p + pos, end + 1, head_request, h) == -1);
		if (parse_head(p + pos, end, head_request, h) != 0)
			break;
		pos += end;
		if (h->status >= 200) {
			check_body(h, p + pos, len - pos, seed, size);
			break;
		}
		FUZZ_CHECK(h->framing == H1_BODY_NONE);
	}
	free(h);
	return 0;
}
