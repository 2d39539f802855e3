/*
 * h1parse.c: HTTP/1.1 response head and body framing (see h1parse.h).
 *
 * Strict where leniency would let a response be read two ways: a field name
 * must be a token followed directly by ':', obs-fold and control characters
 * are refused, Content-Length must be digits (a repeated field or a list
 * must repeat one value), and Transfer-Encoding wins over Content-Length
 * (the connection is then not reused). Lenient where RFC 9112 allows it: a
 * bare LF ends a line, and the reason phrase may be missing.
 */
#include "http/h1parse.h"

#include "core/str.h"

#include <string.h>

#define MAX_CHUNK_LINE  4096  /* chunk size + extensions, or one trailer line */
#define MAX_TRAILER     65536 /* all trailer fields of one body */
#define MAX_SIZE_DIGITS 15    /* 2^60: far beyond any response limit, no overflow */

size_t h1_find_head_end(const char *buf, size_t len, size_t *scan)
{
	/* The head ends at "\n\n" or "\n\r\n"; resume a little before the last stop. */
	size_t i = *scan > 2 ? *scan - 2 : 0;
	for (; i < len; i++) {
		if (buf[i] != '\n')
			continue;
		if (i + 1 < len && buf[i + 1] == '\n')
			return i + 2;
		if (i + 2 < len && buf[i + 1] == '\r' && buf[i + 2] == '\n')
			return i + 3;
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
	for (size_t k = i; k < end; k++)
		if (!is_field_vchar((unsigned char)p[k]))
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
	for (size_t k = 13; k < n; k++)
		if (!is_field_vchar((unsigned char)p[k]))
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

/* The size line ended: data follows, or the trailer section for size 0. */
static bool end_size_line(struct h1_body *b)
{
	if (b->digits == 0)
		return false;
	b->state = b->remaining ? C_DATA : C_TRAILER;
	b->line_len = 0;
	return true;
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
				if (!end_size_line(b))
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
			if (c == ';') {
				b->state = C_EXT;
			} else if (c == '\r') {
				b->state = C_SIZE_LF;
			} else if (c == '\n') {
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
			if (c == '\n' && !end_size_line(b))
				return -1;
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
			else if (c == '\n')
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
			} else if (c == '\n') {
				b->done = true;
			} else {
				b->state = C_TRAILER_IN;
				b->line_len = 0;
				continue; /* count this byte as part of the line */
			}
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
