/*
 * json.h: small jansson helpers for the API's JSON objects: timestamps as
 * RFC 3339 UTC with milliseconds, and optional strings as null; and a
 * direct JSON string writer for fixed-shape bodies on the hot path.
 */
#ifndef PORTCULLIS_CORE_JSON_H
#define PORTCULLIS_CORE_JSON_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/str.h"

/** "2026-01-02T03:04:05.678Z" for ms since the epoch; null when ms < 0 (unset). */
json_t *json_time(int64_t ms);
/** The string, or null when s is NULL or empty. */
json_t *json_str_or_null(const char *s);

/**
 * Append the NUL-terminated s to out as a JSON string literal, quotes
 * included, byte for byte as json_dumps(JSON_COMPACT | JSON_ENSURE_ASCII)
 * writes it: \" \\ \b \f \n \r \t, other control characters and every
 * non-ASCII character as \uXXXX (upper-case hex, UTF-16 surrogate pairs
 * beyond the BMP). Returns 0, or -1 (out unchanged) when s is not valid
 * UTF-8, which json_string() refuses too. When out is too small the text
 * is cut before the first character that does not fit whole (never inside
 * an escape), the literal is still closed, and out->overflow is set; with
 * less than room for "" nothing is written (overflow set).
 */
int json_put_string(struct strbuf *out, const char *s);

/**
 * json_put_string for text from outside (log lines): never refuses. Each
 * byte that does not begin a valid UTF-8 sequence (a stray continuation
 * byte, an overlong form, a surrogate, past U+10FFFF, cut short) is written
 * as \uFFFD, one per byte, and the scan goes on at the next byte; DEL
 * (0x7f) is written as \u007F too, so the output is always printable ASCII
 * and valid JSON. Cutting as json_put_string.
 */
void json_put_string_lossy(struct strbuf *out, const char *s);

/**
 * json_put_string keeping UTF-8 as it is (jansson's compact dump without
 * JSON_ENSURE_ASCII: only " \\ and control characters escaped), as
 * json_put_value writes strings. Returns 0, or -1 (out unchanged) when s is
 * not valid UTF-8. Cutting as json_put_string.
 */
int json_put_string_utf8(struct strbuf *out, const char *s);

/**
 * One UTF-8 sequence at s, checked with jansson's rules (no continuation
 * byte first, no overlong form, no surrogate, nothing past U+10FFFF; a NUL
 * or the end of a NUL-terminated text stops it): its length and *cp, or 0
 * when invalid. Reads at most 4 bytes, never past a byte that ends it.
 */
size_t json_utf8_next(const unsigned char *s, int32_t *cp);

/**
 * Append v's compact JSON to out, as json_dumpb(v, JSON_COMPACT) writes it
 * (members in insertion order, UTF-8 kept, the same escapes) but for reals,
 * written as the shortest text that reads back as the same double (129.95,
 * where jansson writes 129.94999999999999), and without jansson's per-value
 * loop check (v comes from json_loadb: it holds no cycle). For the strings
 * of a parsed document (valid UTF-8, no NUL). Returns 0, or -1 when out
 * overflowed (its text is then cut anywhere).
 */
int json_put_value(struct strbuf *out, const json_t *v);

/**
 * v as json_put_value writes it (ascii: every non-ASCII character as
 * \uXXXX, as JSON_ENSURE_ASCII), malloc'd and NUL-terminated; *len (may
 * be NULL) its length. Aborts on allocation failure, like xmalloc. For
 * answers and request bodies built with jansson: their reals then read as
 * sent (129.95), not as jansson's %.17g.
 */
char *json_text(const json_t *v, bool ascii, size_t *len);

#endif
