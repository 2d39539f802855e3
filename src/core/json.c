/*
 * json.c: jansson helpers shared by the API objects, and the direct JSON
 * string writer (see json.h).
 */
#include "core/json.h"

#include "core/alloc.h"
#include "core/clock.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

json_t *json_time(int64_t ms)
{
	if (ms < 0)
		return json_null();
	char buf[32];
	clock_format_rfc3339(ms, buf, sizeof buf);
	return json_string(buf);
}

json_t *json_str_or_null(const char *s)
{
	return s && *s ? json_string(s) : json_null();
}

/*
 * Decode one UTF-8 sequence at s with jansson's rules (utf8_check_first,
 * utf8_check_full): no continuation byte first, no overlong form, no
 * surrogate, nothing past U+10FFFF. Returns its length and *cp, or 0.
 */
static size_t utf8_next(const unsigned char *s, int32_t *cp)
{
	unsigned char c = s[0];
	size_t n;
	int32_t v;
	if (c < 0x80) {
		*cp = c;
		return 1;
	}
	if (c >= 0xC2 && c <= 0xDF) {
		n = 2;
		v = c & 0x1F;
	} else if (c >= 0xE0 && c <= 0xEF) {
		n = 3;
		v = c & 0x0F;
	} else if (c >= 0xF0 && c <= 0xF4) {
		n = 4;
		v = c & 0x07;
	} else {
		return 0;
	}
	for (size_t i = 1; i < n; i++) {
		if ((s[i] & 0xC0) != 0x80) /* also stops at the NUL */
			return 0;
		v = (v << 6) | (s[i] & 0x3F);
	}
	if (v > 0x10FFFF || (v >= 0xD800 && v <= 0xDFFF) || (n == 3 && v < 0x800) ||
	    (n == 4 && v < 0x10000))
		return 0;
	*cp = v;
	return n;
}

/* \uXXXX (upper-case hex) into e; returns 6. */
static size_t u16_escape(char *e, unsigned v)
{
	static const char hex[] = "0123456789ABCDEF";
	e[0] = '\\';
	e[1] = 'u';
	e[2] = hex[(v >> 12) & 15];
	e[3] = hex[(v >> 8) & 15];
	e[4] = hex[(v >> 4) & 15];
	e[5] = hex[v & 15];
	return 6;
}

/*
 * Append n bytes of the literal's content when they fit with room left for
 * the closing quote; otherwise mark out as overflowing and append nothing.
 */
static bool put_unit(struct strbuf *out, const void *p, size_t n)
{
	if (out->overflow || out->len + n + 2 > out->cap) {
		out->overflow = true;
		return false;
	}
	strbuf_put(out, p, n);
	return true;
}

/*
 * How put_string writes what is not printable ASCII: as \uXXXX (ENSURE_ASCII),
 * as \uXXXX with each invalid byte as \uFFFD (LOSSY, logs: DEL escaped too),
 * or as the UTF-8 itself (UTF8, jansson's dump without JSON_ENSURE_ASCII).
 */
enum str_mode { STR_ASCII, STR_LOSSY, STR_UTF8 };

/* The one escaper behind json_put_string, json_put_string_lossy and json_put_value. */
static int put_string(struct strbuf *out, const char *s, enum str_mode mode)
{
	bool lossy = mode == STR_LOSSY;
	const unsigned char *p = (const unsigned char *)s;
	size_t start = out->len;
	bool overflow = out->overflow;
	if (out->overflow || start + 3 > out->cap) { /* not even "" fits */
		out->overflow = true;
		return 0;
	}
	strbuf_put(out, "\"", 1);
	while (*p) {
		/* The longest run that needs no escape goes in one copy (cut to what fits). */
		size_t run = 0;
		unsigned char top = lossy ? 0x7f : 0x80; /* logs escape DEL too */
		while (p[run] >= 0x20 && p[run] < top && p[run] != '"' && p[run] != '\\')
			run++;
		if (run) {
			size_t room = out->cap - 2 - out->len;
			if (run > room) {
				strbuf_put(out, p, room);
				out->overflow = true;
				break;
			}
			strbuf_put(out, p, run);
			p += run;
			continue;
		}
		int32_t cp;
		size_t n = utf8_next(p, &cp);
		if (!n && !lossy) { /* refused: leave out as it was */
			out->len = start;
			out->data[start] = '\0';
			out->overflow = overflow;
			return -1;
		}
		if (!n) { /* one byte that starts no valid sequence */
			n = 1;
			cp = 0xFFFD;
		}
		if (mode == STR_UTF8 && cp >= 0x80) {
			if (!put_unit(out, p, n))
				break;
			p += n;
			continue;
		}
		char e[12];
		size_t elen = 2;
		e[0] = '\\';
		switch (cp) {
		case '"':
		case '\\':
			e[1] = (char)cp;
			break;
		case '\b':
			e[1] = 'b';
			break;
		case '\f':
			e[1] = 'f';
			break;
		case '\n':
			e[1] = 'n';
			break;
		case '\r':
			e[1] = 'r';
			break;
		case '\t':
			e[1] = 't';
			break;
		default:
			if (cp < 0x10000) {
				elen = u16_escape(e, (unsigned)cp);
			} else {
				cp -= 0x10000;
				elen = u16_escape(e, 0xD800u | (((unsigned)cp & 0xFFC00u) >> 10));
				elen += u16_escape(e + elen, 0xDC00u | ((unsigned)cp & 0x3FFu));
			}
		}
		if (!put_unit(out, e, elen))
			break;
		p += n;
	}
	out->data[out->len++] = '"'; /* room was kept for it */
	out->data[out->len] = '\0';
	return 0;
}

int json_put_string(struct strbuf *out, const char *s)
{
	return put_string(out, s, STR_ASCII);
}

void json_put_string_lossy(struct strbuf *out, const char *s)
{
	(void)put_string(out, s, STR_LOSSY);
}

int json_put_string_utf8(struct strbuf *out, const char *s)
{
	return put_string(out, s, STR_UTF8);
}

size_t json_utf8_next(const unsigned char *s, int32_t *cp)
{
	return utf8_next(s, cp);
}

/*
 * A real as the shortest of %.15g, %.16g and %.17g that reads back as the
 * same double, with ".0" when that looks like an integer (as jansson keeps
 * a real a real). jansson's own %.17g writes 129.95 as 129.94999999999999.
 */
static void put_real(struct strbuf *out, double d)
{
	char buf[40];
	for (int prec = 15; prec <= 17; prec++) {
		snprintf(buf, sizeof buf, "%.*g", prec, d);
		if (prec == 17 || strtod(buf, NULL) == d)
			break;
	}
	strbuf_puts(out, buf);
	if (!strpbrk(buf, ".eEn")) /* n: inf and nan, which jansson never holds */
		strbuf_puts(out, ".0");
}

static void put_value(struct strbuf *out, const json_t *v, enum str_mode mode)
{
	switch (json_typeof(v)) {
	case JSON_OBJECT: {
		strbuf_put(out, "{", 1);
		bool first = true;
		/* Insertion order, as json_dumpb without JSON_SORT_KEYS. */
		for (void *it = json_object_iter((json_t *)v); it && !out->overflow;
		     it = json_object_iter_next((json_t *)v, it)) {
			if (!first)
				strbuf_put(out, ",", 1);
			first = false;
			(void)put_string(out, json_object_iter_key(it), mode);
			strbuf_put(out, ":", 1);
			put_value(out, json_object_iter_value(it), mode);
		}
		strbuf_put(out, "}", 1);
		return;
	}
	case JSON_ARRAY:
		strbuf_put(out, "[", 1);
		for (size_t i = 0; i < json_array_size(v) && !out->overflow; i++) {
			if (i)
				strbuf_put(out, ",", 1);
			put_value(out, json_array_get(v, i), mode);
		}
		strbuf_put(out, "]", 1);
		return;
	case JSON_STRING:
		(void)put_string(out, json_string_value(v), mode);
		return;
	case JSON_INTEGER:
		strbuf_put_i64(out, (int64_t)json_integer_value(v));
		return;
	case JSON_REAL:
		put_real(out, json_real_value(v));
		return;
	case JSON_TRUE:
		strbuf_puts(out, "true");
		return;
	case JSON_FALSE:
		strbuf_puts(out, "false");
		return;
	case JSON_NULL:
		strbuf_puts(out, "null");
		return;
	}
}

int json_put_value(struct strbuf *out, const json_t *v)
{
	put_value(out, v, STR_UTF8);
	return out->overflow ? -1 : 0;
}

char *json_text(const json_t *v, bool ascii, size_t *len)
{
	/* Most answers fit the first buffer; a larger one is written again, 8 times the room. */
	for (size_t cap = 16384;; cap *= 8) {
		char *buf = xmalloc(cap);
		struct strbuf sb;
		strbuf_init(&sb, buf, cap);
		put_value(&sb, v, ascii ? STR_ASCII : STR_UTF8);
		if (!sb.overflow) {
			if (len)
				*len = sb.len;
			return buf;
		}
		free(buf);
	}
}
