/*
 * h1parse.c: HTTP/1.1 heads and body framing (see h1parse.h).
 *
 * The response side (the upstream client) is strict where leniency would
 * let a response be read two ways: a field name must be a token followed
 * directly by ':', obs-fold and control characters are refused,
 * Content-Length must be digits (a repeated field or a list must repeat one
 * value), and Transfer-Encoding wins over Content-Length (the connection is
 * then not reused). Lenient where RFC 9112 allows it: a bare LF ends a
 * line, and the reason phrase may be missing.
 *
 * The request side (the server) is strict everywhere, since a request a
 * proxy in front frames one way and the upstream another is a smuggled
 * request: lines end in CRLF only (no bare LF, no bare CR), no empty line
 * before the request line, exactly one SP between its parts, no obs-fold,
 * no whitespace before a colon, field names tokens and values without
 * control characters, one Content-Length of digits only, Transfer-Encoding
 * exactly "chunked" (and never with Content-Length or on HTTP/1.0), one
 * Host on HTTP/1.1 (reqcheck_head), the asterisk form only for OPTIONS and
 * the authority form only for CONNECT; chunk lines end in CRLF, the size is
 * at most 15 hex digits, and trailer lines must be header fields.
 * tests/h1diff runs this side against python3-h11 (tests/integration/
 * test_h1_differential.py): what h11 refuses is refused here, what h11
 * accepts is parsed the same or refused by one of the rules above.
 */
#include "http/h1parse.h"

#include "core/str.h"

#include <string.h>

#define MAX_CHUNK_LINE  4096  /* chunk size + extensions, or one trailer line */
#define MAX_TRAILER     65536 /* all trailer fields of one body */
#define MAX_SIZE_DIGITS 15    /* 2^60: far beyond any message limit, no overflow */
#define MAX_METHOD      32    /* the longest method a request may name */

size_t h1_find_head_end(const char *buf, size_t len, size_t *scan)
{
	/* The head ends at "\n\n" or "\n\r\n"; resume a little before the last stop. */
	size_t i = *scan > 2 ? *scan - 2 : 0;
	while (i < len) {
		const char *nl =
		    memchr(buf + i, '\n', len - i); /* one call per line, not per byte */
		if (!nl)
			break;
		i = (size_t)(nl - buf);
		if (i + 1 < len && buf[i + 1] == '\n')
			return i + 2;
		if (i + 2 < len && buf[i + 1] == '\r' && buf[i + 2] == '\n')
			return i + 3;
		i++;
	}
	*scan = len;
	return 0;
}

/* RFC 9110 5.6.2 token characters: a bit per byte value (one lookup per name byte). */
static const uint32_t tchar_bits[8] = {
    0x00000000, /* 0x00-0x1f: controls */
    0x03ff6cfa, /* 0x20-0x3f: ! # $ % & ' * + - . 0-9 */
    0xc7fffffe, /* 0x40-0x5f: A-Z ^ _ */
    0x57ffffff, /* 0x60-0x7f: ` a-z | ~ */
    0,          0, 0, 0,
};

static bool is_tchar(unsigned char c)
{
	return (tchar_bits[c >> 5] >> (c & 31)) & 1;
}

static bool is_field_vchar(unsigned char c)
{
	return c == '\t' || (c >= 0x20 && c != 0x7f);
}

bool h1_is_token(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (!is_tchar((unsigned char)s[i]))
			return false;
	return n > 0;
}

/*
 * Eight bytes at a time: a word with no byte below 0x20 and no DEL is all
 * field-value bytes (the classic "has a byte less than n" test is exact as a
 * yes/no for n <= 128). A word that fails it (a control byte, DEL, or only a
 * tab) is decided byte by byte.
 */
#define ONES           0x0101010101010101ULL
#define HIGHS          0x8080808080808080ULL
#define HAS_LESS(x, n) (((x)-ONES * (n)) & ~(x)&HIGHS)

bool h1_is_field_value(const char *s, size_t n)
{
	size_t i = 0;
	for (; i + 8 <= n; i += 8) {
		uint64_t w;
		memcpy(&w, s + i, 8);
		if (!HAS_LESS(w, 0x20) && !HAS_LESS(w ^ (ONES * 0x7f), 1))
			continue;
		for (size_t j = i; j < i + 8; j++)
			if (!is_field_vchar((unsigned char)s[j]))
				return false;
	}
	for (; i < n; i++)
		if (!is_field_vchar((unsigned char)s[i]))
			return false;
	return true;
}

static bool name_is(const struct h1_field *f, const char *name)
{
	size_t n = strlen(name);
	if (f->name_len != n)
		return false;
	for (size_t i = 0; i < n; i++) {
		unsigned char a = (unsigned char)f->name[i], b = (unsigned char)name[i];
		if (a >= 'A' && a <= 'Z')
			a = (unsigned char)(a + 32);
		if (a != b)
			return false;
	}
	return true;
}

bool h1_each_element(const char *v, size_t n, bool (*fn)(void *, const char *, size_t), void *arg)
{
	size_t i = 0;
	while (i < n) {
		while (i < n && (v[i] == ' ' || v[i] == '\t' || v[i] == ','))
			i++;
		size_t start = i;
		while (i < n && v[i] != ',')
			i++;
		size_t end = i;
		while (end > start && (v[end - 1] == ' ' || v[end - 1] == '\t'))
			end--;
		if (end > start && !fn(arg, v + start, end - start))
			return false;
	}
	return true;
}

bool h1_token_ieq(const char *t, size_t n, const char *lit)
{
	size_t m = strlen(lit);
	if (n != m)
		return false;
	for (size_t i = 0; i < n; i++) {
		unsigned char a = (unsigned char)t[i];
		if (a >= 'A' && a <= 'Z')
			a = (unsigned char)(a + 32);
		if (a != (unsigned char)lit[i])
			return false;
	}
	return true;
}

struct length_state {
	bool seen;
	bool in_field; /* the current field line had a value */
	uint64_t value;
};

static bool take_length(void *arg, const char *t, size_t n)
{
	struct length_state *st = arg;
	uint64_t v;
	if (n > 19 || parse_uint64(t, n, UINT64_MAX, &v) != 0)
		return false;
	if (st->seen && st->value != v)
		return false;
	st->seen = true;
	st->in_field = true;
	st->value = v;
	return true;
}

struct te_state {
	bool last_chunked;
};

static bool take_coding(void *arg, const char *t, size_t n)
{
	struct te_state *st = arg;
	st->last_chunked = h1_token_ieq(t, n, "chunked");
	return true;
}

static bool take_connection(void *arg, const char *t, size_t n)
{
	bool *close = arg;
	if (h1_token_ieq(t, n, "close"))
		*close = true;
	return true;
}

/* One field line (without its line end) into out; false when malformed. */
static bool parse_field(const char *p, size_t n, struct h1_field *out)
{
	size_t i = 0;
	while (i < n && is_tchar((unsigned char)p[i]))
		i++;
	if (i == 0 || i >= n || p[i] != ':')
		return false;
	out->name = p;
	out->name_len = i;
	i++;
	while (i < n && (p[i] == ' ' || p[i] == '\t'))
		i++;
	size_t end = n;
	while (end > i && (p[end - 1] == ' ' || p[end - 1] == '\t'))
		end--;
	if (!h1_is_field_value(p + i, end - i))
		return false;
	out->value = p + i;
	out->value_len = end - i;
	return true;
}

/* "HTTP/1.x SSS[ reason]" */
static bool parse_status_line(const char *p, size_t n, struct h1_head *out)
{
	if (n < 12 || memcmp(p, "HTTP/1.", 7) != 0 || p[7] < '0' || p[7] > '9' || p[8] != ' ')
		return false;
	out->minor = p[7] - '0';
	uint64_t status;
	if (parse_uint64(p + 9, 3, 599, &status) != 0 || status < 100 || (n > 12 && p[12] != ' '))
		return false;
	if (n > 13 && !h1_is_field_value(p + 13, n - 13))
		return false;
	out->status = (int)status;
	return true;
}

/* Split off the next line of buf[*pos..len); its length without the line end. */
static bool next_line(const char *buf, size_t len, size_t *pos, const char **line, size_t *n)
{
	const char *start = buf + *pos;
	const char *nl = memchr(start, '\n', len - *pos);
	if (!nl)
		return false;
	size_t l = (size_t)(nl - start);
	*pos += l + 1;
	if (l && start[l - 1] == '\r')
		l--;
	*line = start;
	*n = l;
	return true;
}

int h1_parse_head(const char *buf, size_t len, bool head_request, struct h1_head *out)
{
	memset(out, 0, offsetof(struct h1_head, fields));
	size_t pos = 0;
	const char *line;
	size_t n;
	if (!next_line(buf, len, &pos, &line, &n) || !parse_status_line(line, n, out))
		return -1;
	struct length_state cl = {0};
	struct te_state te = {0};
	bool has_te = false, close = false;
	for (;;) {
		if (!next_line(buf, len, &pos, &line, &n))
			return -1;
		if (n == 0)
			break;
		if (memchr(line, '\r', n))
			return -1; /* a bare CR inside a line */
		if (out->n_fields == H1_MAX_FIELDS)
			return -1;
		struct h1_field *f = &out->fields[out->n_fields];
		if (!parse_field(line, n, f))
			return -1; /* includes obs-fold: a line starting with SP or HT */
		out->n_fields++;
		if (name_is(f, "content-length")) {
			/* Every Content-Length line needs a value, not only the first. */
			cl.in_field = false;
			if (!h1_each_element(f->value, f->value_len, take_length, &cl) ||
			    !cl.in_field)
				return -1;
		} else if (name_is(f, "transfer-encoding")) {
			has_te = true;
			h1_each_element(f->value, f->value_len, take_coding, &te);
		} else if (name_is(f, "connection")) {
			h1_each_element(f->value, f->value_len, take_connection, &close);
		}
	}
	if (pos != len)
		return -1;

	int s = out->status;
	if (s < 200 || s == 204 || s == 304 || head_request) {
		out->framing = H1_BODY_NONE;
	} else if (has_te) {
		out->framing = te.last_chunked ? H1_BODY_CHUNKED : H1_BODY_CLOSE;
		if (cl.seen)
			close = true; /* RFC 9112 6.3: both present, do not reuse */
	} else if (cl.seen) {
		out->framing = H1_BODY_LENGTH;
		out->content_length = cl.value;
	} else {
		out->framing = H1_BODY_CLOSE;
	}
	out->keep_alive = out->minor >= 1 && !close && out->framing != H1_BODY_CLOSE;
	return 0;
}

/* ---------- request ---------- */

/* Every refusal of a malformed request head: the framing is in doubt, so close. */
static int refuse_request(struct reqcheck_verdict *v, int status, const char *code,
                          const char *message)
{
	*v = (struct reqcheck_verdict){status, code, message, NULL, true};
	return -1;
}

static int bad_head(struct reqcheck_verdict *v, const char *message)
{
	return refuse_request(v, 400, "BAD_REQUEST", message);
}

/* The next line of buf[*pos..len), which must end in CRLF; its length without it. */
static bool next_crlf_line(const char *buf, size_t len, size_t *pos, const char **line, size_t *n)
{
	const char *start = buf + *pos;
	const char *nl = memchr(start, '\n', len - *pos);
	if (!nl || nl == start || nl[-1] != '\r')
		return false;
	*line = start;
	*n = (size_t)(nl - start) - 1;
	*pos += *n + 2;
	return true;
}

static bool is_digit(char c)
{
	return c >= '0' && c <= '9';
}

static bool is_alpha(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

/* RFC 3986 scheme ":" "//": the absolute form (a URI with an authority). */
static bool is_absolute_form(const char *t, size_t n)
{
	size_t i = 0;
	while (i < n && (is_alpha(t[i]) ||
	                 (i > 0 && (is_digit(t[i]) || t[i] == '+' || t[i] == '-' || t[i] == '.'))))
		i++;
	return i > 0 && n - i >= 3 && memcmp(t + i, "://", 3) == 0;
}

/* Which form the target has, and whether the method allows it (RFC 9112 3.2). */
static int target_form(struct h1_request *r, struct reqcheck_verdict *v)
{
	bool connect = r->method_len == 7 && memcmp(r->method, "CONNECT", 7) == 0;
	bool options = r->method_len == 7 && memcmp(r->method, "OPTIONS", 7) == 0;
	if (r->target[0] == '/')
		r->form = H1_FORM_ORIGIN;
	else if (r->target_len == 1 && r->target[0] == '*')
		r->form = H1_FORM_ASTERISK;
	else if (is_absolute_form(r->target, r->target_len))
		r->form = H1_FORM_ABSOLUTE;
	else
		r->form = H1_FORM_AUTHORITY;
	if (connect != (r->form == H1_FORM_AUTHORITY))
		return bad_head(v, connect ? "CONNECT takes host:port as its target."
		                           : "The request target is not a path.");
	if (r->form == H1_FORM_ASTERISK && !options)
		return bad_head(v, "The target * is for OPTIONS only.");
	return 0;
}

/*
 * A request line refused for its target or version: the target as sent,
 * from t to the line's last space (or its end), for the access log only,
 * so a refused "GET /a b HTTP/1.1" or a target with raw bytes is logged
 * whole (the log escapes it) rather than not at all.
 */
static void refused_target(const char *p, size_t n, size_t t, struct h1_request *r)
{
	size_t end = n;
	while (end > t && p[end - 1] != ' ')
		end--;
	if (end > t + 1)
		end--; /* the space itself */
	else
		end = n;
	if (end > t && p[t] != ' ') {
		r->target = p + t;
		r->target_len = end - t;
	}
}

/* method SP request-target SP "HTTP/" DIGIT "." DIGIT, nothing more (RFC 9112 3). */
static int parse_request_line(const char *p, size_t n, struct h1_request *r,
                              struct reqcheck_verdict *v)
{
	size_t i = 0;
	while (i < n && is_tchar((unsigned char)p[i]))
		i++;
	if (i > MAX_METHOD)
		return bad_head(v, "The method is longer than 32 characters.");
	if (i == 0 || i == n || p[i] != ' ')
		return bad_head(v, "The request line is not method SP target SP version.");
	r->method = p;
	r->method_len = i++;
	size_t t = i;
	while (i < n && p[i] > 0x20 && p[i] < 0x7f)
		i++;
	if (i == t || i == n || p[i] != ' ') {
		refused_target(p, n, t, r);
		return bad_head(v, "The request line is not method SP target SP version.");
	}
	r->target = p + t;
	r->target_len = i - t;
	const char *ver = p + i + 1;
	if (n - i - 1 != 8 || memcmp(ver, "HTTP/", 5) != 0 || !is_digit(ver[5]) || ver[6] != '.' ||
	    !is_digit(ver[7])) {
		refused_target(p, n, t, r);
		return bad_head(v, "The request line does not end in an HTTP version.");
	}
	if (ver[5] != '1')
		return refuse_request(v, 505, "HTTP_VERSION_NOT_SUPPORTED",
		                      "This server speaks HTTP/1.0 and HTTP/1.1.");
	r->minor = ver[7] == '0' ? 0 : 1; /* RFC 9112 2.3: a higher minor reads as 1.1 */
	return target_form(r, v);
}

/* The fields the request parser itself reads; the rest is reqcheck_head's. */
struct request_tokens {
	bool close, keep_alive;
};

static bool take_request_connection(void *arg, const char *t, size_t n)
{
	struct request_tokens *k = arg;
	if (h1_token_ieq(t, n, "close"))
		k->close = true;
	else if (h1_token_ieq(t, n, "keep-alive"))
		k->keep_alive = true;
	return true;
}

static int request_field(struct h1_request *r, const struct h1_field *f, struct request_tokens *k,
                         struct reqcheck_verdict *v)
{
	if (name_is(f, "content-length")) {
		if (f->value_len == 0 || f->value_len > 19 ||
		    parse_uint64(f->value, f->value_len, UINT64_MAX, &r->content_length) != 0)
			return bad_head(v, "The Content-Length header is not a number.");
	} else if (name_is(f, "connection")) {
		h1_each_element(f->value, f->value_len, take_request_connection, k);
	} else if (name_is(f, "expect")) {
		r->expect_continue =
		    r->minor >= 1 && h1_token_ieq(f->value, f->value_len, "100-continue");
	}
	return 0;
}

/* One header line (CRLF stripped) into the next field; 0, or -1 with *v. */
static int request_line_field(struct h1_request *r, const char *line, size_t n,
                              struct reqcheck_verdict *v)
{
	if (memchr(line, '\r', n))
		return bad_head(v, "A header line holds a bare CR.");
	if (line[0] == ' ' || line[0] == '\t')
		return bad_head(v, "A header line is folded (obs-fold): send it on one line.");
	if (r->n_fields == H1_MAX_FIELDS)
		return refuse_request(v, 431, "HEADERS_TOO_LARGE",
		                      "The request has too many header fields.");
	struct h1_field *f = &r->fields[r->n_fields];
	if (!parse_field(line, n, f)) {
		size_t i = 0;
		while (i < n && is_tchar((unsigned char)line[i]))
			i++;
		return bad_head(v, i < n && (line[i] == ' ' || line[i] == '\t')
		                       ? "A header field name is followed by whitespace before "
		                         "its colon."
		                       : "A header line is not name \":\" value (a control "
		                         "character, or no colon?).");
	}
	r->n_fields++;
	return 0;
}

int h1_parse_request(const char *buf, size_t len, struct h1_request *out,
                     struct reqcheck_verdict *v)
{
	memset(out, 0, offsetof(struct h1_request, fields));
	size_t pos = 0;
	const char *line;
	size_t n;
	if (!next_crlf_line(buf, len, &pos, &line, &n))
		return bad_head(v, "The request line does not end in CRLF.");
	if (parse_request_line(line, n, out, v) < 0)
		return -1;
	struct reqcheck_head rc;
	struct request_tokens k = {0};
	reqcheck_head_init(&rc, out->minor);
	for (;;) {
		if (!next_crlf_line(buf, len, &pos, &line, &n))
			return bad_head(v, "A header line does not end in CRLF (a bare LF?).");
		if (n == 0)
			break;
		/* A folded line belongs to this one: say so before judging this one's value. */
		if (pos < len && (buf[pos] == ' ' || buf[pos] == '\t'))
			return bad_head(v,
			                "A header line is folded (obs-fold): send it on one line.");
		if (request_line_field(out, line, n, v) < 0)
			return -1;
		const struct h1_field *f = &out->fields[out->n_fields - 1];
		reqcheck_head_field(&rc, f->name, f->name_len, f->value, f->value_len);
		if (request_field(out, f, &k, v) < 0)
			return -1;
	}
	if (pos != len)
		return bad_head(v, "The request head has bytes after its end.");
	if (reqcheck_head_done(&rc, v) < 0)
		return -1;
	out->framing = rc.n_coding_fields ? H1_BODY_CHUNKED
	               : rc.n_length      ? H1_BODY_LENGTH
	                                  : H1_BODY_NONE;
	out->keep_alive = !k.close && (out->minor >= 1 || k.keep_alive);
	return 0;
}

/* ---------- body ---------- */

enum {
	C_SIZE,       /* chunk-size hex digits */
	C_SIZE_WS,    /* whitespace after the size: only ';' or the line end may follow */
	C_EXT,        /* chunk extensions, up to LF */
	C_SIZE_LF,    /* CR seen after the size line */
	C_DATA,       /* chunk data */
	C_DATA_CR,    /* CRLF after the data */
	C_DATA_LF,    /* LF after the data's CR */
	C_TRAILER,    /* at the start of a trailer line (or the final empty line) */
	C_TRAILER_IN, /* inside a trailer line */
	C_END_LF,     /* CR of the final empty line seen */
	/* A request's trailer line, checked as a header field (strict): */
	C_TNAME,  /* the field name */
	C_TVALUE, /* after the colon */
	C_TLF,    /* CR seen at the end of the line */
};

void h1_body_init(struct h1_body *b, const struct h1_head *head)
{
	memset(b, 0, sizeof *b);
	b->framing = head->framing;
	b->state = C_SIZE;
	if (b->framing == H1_BODY_LENGTH)
		b->remaining = head->content_length;
	b->done = b->framing == H1_BODY_NONE ||
	          (b->framing == H1_BODY_LENGTH && head->content_length == 0);
}

void h1_body_init_request(struct h1_body *b, const struct h1_request *req)
{
	struct h1_head h = {.framing = req->framing, .content_length = req->content_length};
	h1_body_init(b, &h);
	b->strict = true;
}

/* The size line ended: data follows, or the trailer section for size 0. */
static bool end_size_line(struct h1_body *b)
{
	if (b->digits == 0)
		return false;
	b->state = b->remaining ? C_DATA : C_TRAILER;
	b->line_len = 0;
	return true;
}

/* One byte of a request's trailer line: name ":" value CRLF (RFC 9112 7.1.2). */
static bool strict_trailer_byte(struct h1_body *b, char c)
{
	unsigned char u = (unsigned char)c;
	switch (b->state) {
	case C_TNAME:
		if (c == ':')
			b->state = C_TVALUE;
		return c == ':' || is_tchar(u);
	case C_TVALUE:
		if (c == '\r')
			b->state = C_TLF;
		return c == '\r' || is_field_vchar(u);
	default: /* C_TLF */
		b->state = C_TRAILER;
		return c == '\n';
	}
}

static ssize_t feed_chunked(struct h1_body *b, const char *data, size_t len, h1_sink_fn sink,
                            void *arg)
{
	size_t i = 0;
	while (i < len && !b->done) {
		char c = data[i];
		switch (b->state) {
		case C_SIZE: {
			int h = str_hex_digit(c);
			if (h >= 0) {
				if (++b->digits > MAX_SIZE_DIGITS)
					return -1;
				b->remaining = b->remaining * 16 + (uint64_t)h;
			} else if (c == ';' || c == ' ' || c == '\t') {
				if (b->digits == 0)
					return -1;
				b->state = c == ';' ? C_EXT : C_SIZE_WS;
				b->line_len = 1; /* the line after the digits counts */
			} else if (c == '\r') {
				if (b->digits == 0)
					return -1;
				b->state = C_SIZE_LF;
			} else if (c == '\n') {
				if (b->strict || !end_size_line(b))
					return -1;
			} else {
				return -1;
			}
			i++;
			break;
		}
		case C_SIZE_WS:
			/* "5 6" is neither 5 nor 0x56: refuse it rather than guess. */
			if (++b->line_len > MAX_CHUNK_LINE)
				return -1;
			if (c == ';' && !b->strict) { /* strict: no whitespace before ';' */
				b->state = C_EXT;
			} else if (c == '\r') {
				b->state = C_SIZE_LF;
			} else if (c == '\n' && !b->strict) {
				if (!end_size_line(b))
					return -1;
			} else if (c != ' ' && c != '\t') {
				return -1;
			}
			i++;
			break;
		case C_EXT:
			if (++b->line_len > MAX_CHUNK_LINE || c == '\0')
				return -1;
			if (b->strict) { /* field-value bytes up to CRLF */
				if (c == '\r')
					b->state = C_SIZE_LF;
				else if (!is_field_vchar((unsigned char)c))
					return -1;
			} else if (c == '\n' && !end_size_line(b)) {
				return -1;
			}
			i++;
			break;
		case C_SIZE_LF:
			if (c != '\n' || !end_size_line(b))
				return -1;
			i++;
			break;
		case C_DATA: {
			size_t take = len - i;
			if (take > b->remaining)
				take = (size_t)b->remaining;
			if (sink(arg, data + i, take) != 0)
				return -1;
			b->remaining -= take;
			i += take;
			if (b->remaining == 0)
				b->state = C_DATA_CR;
			break;
		}
		case C_DATA_CR:
			if (c == '\r')
				b->state = C_DATA_LF;
			else if (c == '\n' && !b->strict)
				b->state = C_SIZE;
			else
				return -1;
			b->digits = 0;
			i++;
			break;
		case C_DATA_LF:
			if (c != '\n')
				return -1;
			b->state = C_SIZE;
			i++;
			break;
		case C_TRAILER:
			if (c == '\r') {
				b->state = C_END_LF;
			} else if (c == '\n' && !b->strict) {
				b->done = true;
			} else if (!b->strict) {
				b->state = C_TRAILER_IN;
				b->line_len = 0;
				continue; /* count this byte as part of the line */
			} else if (is_tchar((unsigned char)c)) {
				b->state = C_TNAME;
				b->line_len = 0;
				continue;
			} else {
				return -1; /* obs-fold, an empty name, a bare LF */
			}
			i++;
			break;
		case C_TNAME:
		case C_TVALUE:
		case C_TLF:
			if (++b->line_len > MAX_CHUNK_LINE || ++b->trailer_len > MAX_TRAILER ||
			    !strict_trailer_byte(b, c))
				return -1;
			i++;
			break;
		case C_TRAILER_IN:
			if (++b->line_len > MAX_CHUNK_LINE || ++b->trailer_len > MAX_TRAILER ||
			    c == '\0')
				return -1;
			if (c == '\n')
				b->state = C_TRAILER;
			i++;
			break;
		case C_END_LF:
			if (c != '\n')
				return -1;
			b->done = true;
			i++;
			break;
		default:
			return -1;
		}
	}
	return (ssize_t)i;
}

ssize_t h1_body_feed(struct h1_body *b, const char *data, size_t len, h1_sink_fn sink, void *arg)
{
	if (b->done || len == 0)
		return 0;
	switch (b->framing) {
	case H1_BODY_LENGTH: {
		size_t take = len < b->remaining ? len : (size_t)b->remaining;
		if (sink(arg, data, take) != 0)
			return -1;
		b->remaining -= take;
		b->done = b->remaining == 0;
		return (ssize_t)take;
	}
	case H1_BODY_CHUNKED:
		return feed_chunked(b, data, len, sink, arg);
	case H1_BODY_CLOSE:
		return sink(arg, data, len) != 0 ? -1 : (ssize_t)len;
	case H1_BODY_NONE:
	default:
		return 0;
	}
}

bool h1_body_eof(struct h1_body *b)
{
	if (b->framing == H1_BODY_CLOSE)
		b->done = true;
	return b->done;
}
