/*
 * str.c: checked number parsing, bounded buffers and printf-free
 * formatting (see str.h).
 */
#include "core/str.h"

#include "core/alloc.h"

#include <stdarg.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

int parse_uint64(const char *s, size_t len, uint64_t max, uint64_t *out)
{
	uint64_t v = 0;

	if (len == 0)
		return -1;
	for (size_t i = 0; i < len; i++) {
		char c = s[i];
		if (c < '0' || c > '9')
			return -1;
		unsigned d = (unsigned)(c - '0');
		if (d > max || v > (max - d) / 10)
			return -1;
		v = v * 10 + d;
	}
	*out = v;
	return 0;
}

int parse_int64(const char *s, size_t len, int64_t min, int64_t max, int64_t *out)
{
	bool neg = len > 0 && s[0] == '-';
	size_t sign = neg ? 1 : 0;
	uint64_t v;

	if (parse_uint64(s + sign, len - sign, neg ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX,
	                 &v) != 0)
		return -1;
	int64_t r = neg ? (int64_t)(0 - v) : (int64_t)v;
	if (r < min || r > max)
		return -1;
	*out = r;
	return 0;
}

int parse_int64_z(const char *s, int64_t min, int64_t max, int64_t *out)
{
	return parse_int64(s, strlen(s), min, max, out);
}

int parse_bool(const char *s, bool *out)
{
	static const char *const yes[] = {"true", "yes", "on", "1"};
	static const char *const no[] = {"false", "no", "off", "0"};
	for (int i = 0; i < 4; i++) {
		if (strcasecmp(s, yes[i]) == 0) {
			*out = true;
			return 0;
		}
		if (strcasecmp(s, no[i]) == 0) {
			*out = false;
			return 0;
		}
	}
	return -1;
}

bool ascii_ieq(const char *a, size_t alen, const char *b, size_t blen)
{
	return alen == blen && strncasecmp(a, b, alen) == 0;
}

bool str_has_prefix(const char *s, const char *prefix)
{
	return strncmp(s, prefix, strlen(prefix)) == 0;
}

bool str_is_token(const char *s, size_t n, size_t max)
{
	if (n == 0 || n > max)
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '_' || c == '-'))
			return false;
	}
	return true;
}

void buf_init(struct buf *b, size_t limit)
{
	b->data = NULL;
	b->len = 0;
	b->cap = 0;
	b->limit = limit;
}

static int buf_reserve(struct buf *b, size_t extra)
{
	if (extra > b->limit || b->len > b->limit - extra)
		return -1;
	size_t need = b->len + extra + 1;
	if (need <= b->cap)
		return 0;
	size_t cap = b->cap ? b->cap : 256;
	while (cap < need)
		cap *= 2;
	b->data = xrealloc(b->data, cap);
	b->cap = cap;
	return 0;
}

int buf_append(struct buf *b, const void *data, size_t n)
{
	if (buf_reserve(b, n) < 0)
		return -1;
	if (n)
		memcpy(b->data + b->len, data, n);
	b->len += n;
	b->data[b->len] = '\0';
	return 0;
}

int buf_append_str(struct buf *b, const char *s)
{
	return buf_append(b, s, strlen(s));
}

int buf_append_pct(struct buf *b, const char *s, size_t n)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t start = b->len;

	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		char esc[3] = {'%', hex[c >> 4], hex[c & 15]};
		bool keep = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
		            (c >= '0' && c <= '9') || c == '-' || c == '.' || c == '_' || c == '~';
		if (buf_append(b, keep ? (const char *)&s[i] : esc, keep ? 1 : 3) < 0) {
			b->len = start; /* nothing appended */
			if (b->data)
				b->data[start] = '\0';
			return -1;
		}
	}
	return 0;
}

int buf_printf(struct buf *b, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0 || buf_reserve(b, (size_t)n) < 0)
		return -1;
	va_start(ap, fmt);
	vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
	va_end(ap);
	b->len += (size_t)n;
	return 0;
}

char *buf_steal(struct buf *b, size_t *len_out)
{
	char *p = b->data;
	if (len_out)
		*len_out = b->len;
	if (!p)
		p = xstrdup("");
	b->data = NULL;
	b->len = b->cap = 0;
	return p;
}

void buf_free(struct buf *b)
{
	free(b->data);
	b->data = NULL;
	b->len = b->cap = 0;
}

/* "00" to "99": two digits per division. */
static const char digit_pairs[201] = "00010203040506070809"
                                     "10111213141516171819"
                                     "20212223242526272829"
                                     "30313233343536373839"
                                     "40414243444546474849"
                                     "50515253545556575859"
                                     "60616263646566676869"
                                     "70717273747576777879"
                                     "80818283848586878889"
                                     "90919293949596979899";

size_t str_i64(char out[STR_I64_MAX], int64_t v)
{
	char tmp[STR_I64_MAX];
	/* Negate as unsigned: -INT64_MIN does not fit in an int64_t. */
	uint64_t u = v < 0 ? 0 - (uint64_t)v : (uint64_t)v;
	size_t at = sizeof tmp; /* digits are written from the end */
	while (u >= 100) {
		unsigned pair = (unsigned)(u % 100) * 2;
		u /= 100;
		tmp[--at] = digit_pairs[pair + 1];
		tmp[--at] = digit_pairs[pair];
	}
	if (u >= 10) {
		tmp[--at] = digit_pairs[u * 2 + 1];
		tmp[--at] = digit_pairs[u * 2];
	} else {
		tmp[--at] = (char)('0' + u);
	}
	size_t len = 0;
	if (v < 0)
		out[len++] = '-';
	memcpy(out + len, tmp + at, sizeof tmp - at);
	len += sizeof tmp - at;
	out[len] = '\0';
	return len;
}

void strbuf_init(struct strbuf *s, char *data, size_t cap)
{
	s->data = data;
	s->len = 0;
	s->cap = cap;
	s->overflow = false;
	data[0] = '\0';
}

void strbuf_put_i64(struct strbuf *s, int64_t v)
{
	char d[STR_I64_MAX];
	size_t n = str_i64(d, v);
	strbuf_put(s, d, n);
}

size_t str_copy(char *dst, size_t cap, const char *src, size_t max)
{
	size_t n = strnlen(src, max < cap - 1 ? max : cap - 1);
	memcpy(dst, src, n);
	dst[n] = '\0';
	return n;
}

void str_ipv4(const void *addr4, char *out)
{
	const unsigned char *b = addr4;
	char *p = out;
	for (int i = 0; i < 4; i++) {
		unsigned v = b[i];
		if (v >= 100)
			*p++ = (char)('0' + v / 100);
		if (v >= 10)
			*p++ = (char)('0' + v / 10 % 10);
		*p++ = (char)('0' + v % 10);
		*p++ = i < 3 ? '.' : '\0';
	}
}

int str_hex_digit(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* All-ones when v >= lim, else 0; v and lim must be below 256. */
static unsigned mask_ge(unsigned v, unsigned lim)
{
	return 0U - ((((lim - 1U) - v) >> 8) & 1U);
}

/* All-ones when lo <= c <= hi, else 0; c, lo, hi below 256, lo >= 1. */
static unsigned mask_in(unsigned c, unsigned lo, unsigned hi)
{
	return 0U - (((((lo - 1U) - c) & (c - (hi + 1U))) >> 8) & 1U);
}

/* v in [0, 16) -> '0'-'9', 'a'-'f'. */
static char hex_char(unsigned v)
{
	return (char)('0' + v + (mask_ge(v, 10U) & ('a' - '0' - 10U)));
}

/* A hex character's value, or 0x100 or more when c is not one; branch-free. */
static unsigned hex_value(unsigned char c)
{
	unsigned lower = c | 0x20U; /* 'A'-'F' -> 'a'-'f'; digits unchanged */
	unsigned digit = mask_in(c, '0', '9');
	unsigned alpha = mask_in(lower, 'a', 'f');

	return ((c - '0') & digit) | ((lower - 'a' + 10U) & alpha) | (~(digit | alpha) & 0x100U);
}

void hex_encode(const uint8_t *in, size_t n, char *out)
{
	for (size_t i = 0; i < n; i++) {
		out[2 * i] = hex_char(in[i] >> 4);
		out[2 * i + 1] = hex_char(in[i] & 0x0FU);
	}
	out[2 * n] = '\0';
}

int hex_decode(const char *in, size_t n, uint8_t *out, size_t cap, size_t *out_len)
{
	unsigned bad = 0;

	*out_len = 0;
	if (n % 2 != 0 || n / 2 > cap)
		return -1;
	for (size_t i = 0; i < n / 2; i++) {
		unsigned hi = hex_value((unsigned char)in[2 * i]);
		unsigned lo = hex_value((unsigned char)in[2 * i + 1]);
		bad |= hi | lo;
		out[i] = (uint8_t)((hi << 4 | lo) & 0xFFU);
	}
	if (bad & 0x100U) {
		explicit_bzero(out, n / 2);
		return -1;
	}
	*out_len = n / 2;
	return 0;
}

size_t buf_sink_write(char *data, size_t size, size_t nmemb, void *sink)
{
	struct buf_sink *k = sink;
	size_t n = size * nmemb;
	if (buf_append(k->buf, data, n) < 0) {
		k->too_large = true;
		return 0; /* curl aborts the transfer */
	}
	return n;
}
