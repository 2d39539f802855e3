/*
 * json.c: jansson helpers shared by the API objects, and the direct JSON
 * string writer (see json.h).
 */
#include "core/json.h"

#include "core/clock.h"

#include <stdbool.h>
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

static void put_u16_escape(struct strbuf *out, unsigned v)
{
	static const char hex[] = "0123456789ABCDEF";
	char e[6] = {'\\',       'u', hex[(v >> 12) & 15], hex[(v >> 8) & 15], hex[(v >> 4) & 15],
	             hex[v & 15]};
	strbuf_put(out, e, sizeof e);
}

int json_put_string(struct strbuf *out, const char *s)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t start = out->len;
	bool overflow = out->overflow;
	strbuf_put(out, "\"", 1);
	while (*p) {
		/* The longest run that needs no escape goes in one copy. */
		size_t run = 0;
		while (p[run] >= 0x20 && p[run] < 0x80 && p[run] != '"' && p[run] != '\\')
			run++;
		if (run) {
			strbuf_put(out, p, run);
			p += run;
			continue;
		}
		int32_t cp;
		size_t n = utf8_next(p, &cp);
		if (!n) { /* refused: leave out as it was */
			out->len = start;
			out->data[start] = '\0';
			out->overflow = overflow;
			return -1;
		}
		p += n;
		switch (cp) {
		case '"':
			strbuf_put(out, "\\\"", 2);
			break;
		case '\\':
			strbuf_put(out, "\\\\", 2);
			break;
		case '\b':
			strbuf_put(out, "\\b", 2);
			break;
		case '\f':
			strbuf_put(out, "\\f", 2);
			break;
		case '\n':
			strbuf_put(out, "\\n", 2);
			break;
		case '\r':
			strbuf_put(out, "\\r", 2);
			break;
		case '\t':
			strbuf_put(out, "\\t", 2);
			break;
		default:
			if (cp < 0x10000) {
				put_u16_escape(out, (unsigned)cp);
			} else {
				cp -= 0x10000;
				put_u16_escape(out, 0xD800u | (((unsigned)cp & 0xFFC00u) >> 10));
				put_u16_escape(out, 0xDC00u | ((unsigned)cp & 0x3FFu));
			}
		}
	}
	strbuf_put(out, "\"", 1);
	return 0;
}
