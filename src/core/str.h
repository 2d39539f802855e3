/*
 * str.h: length-carrying strings and checked parsers for untrusted text,
 * growable and fixed-size text buffers, and printf-free integer formatting
 * for the per-request paths. Nothing here uses atoi/strtol without checking
 * the whole input.
 */
#ifndef PORTCULLIS_CORE_STR_H
#define PORTCULLIS_CORE_STR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

/** A borrowed byte range (like h2o_iovec_t); not NUL-terminated in general. */
struct slice {
	const char *ptr;
	size_t len;
};

/**
 * The one checked decimal parser: the whole of the len bytes at s (need not
 * be NUL-terminated, never read past len) as digits 0-9 only (no sign, no
 * spaces, no trailing bytes; leading zeros allowed) with a value at most max.
 * Returns 0 with *out set, or -1 (empty, a non-digit, above max or above
 * UINT64_MAX) with *out untouched.
 */
int parse_uint64(const char *s, size_t len, uint64_t max, uint64_t *out);
/** Parse a whole decimal integer (optional leading '-') in [min, max]. 0 or -1. */
int parse_int64(const char *s, size_t len, int64_t min, int64_t max, int64_t *out);
/** parse_int64 over a NUL-terminated string. */
int parse_int64_z(const char *s, int64_t min, int64_t max, int64_t *out);
/** Parse "true/false/yes/no/on/off/1/0" (case-insensitive). 0 or -1. */
int parse_bool(const char *s, bool *out);
/** Case-insensitive ASCII equality of two byte ranges. */
bool ascii_ieq(const char *a, size_t alen, const char *b, size_t blen);
/** True when s starts with prefix. */
bool str_has_prefix(const char *s, const char *prefix);
/** True when s holds 1 to max bytes of n, each of A-Z a-z 0-9 _ - (ids sent by others). */
bool str_is_token(const char *s, size_t n, size_t max);

/** The value of a hexadecimal digit (either case), or -1. */
int str_hex_digit(char c);

/*
 * The one hex codec. Both directions map characters with masks rather than
 * table lookups or branches (after libsodium's sodium_bin2hex), so encoding
 * a key or decoding a configured master key does not leak its bytes through
 * cache or branch timing; only the length and well-formedness may branch.
 */

/**
 * Lower-case hex of the n bytes at in. out must hold 2n + 1 bytes; it is
 * always NUL-terminated.
 */
void hex_encode(const uint8_t *in, size_t n, char *out);

/**
 * Decode the n hex characters at in (either case; need not be NUL-terminated,
 * never read past n) into out, which has cap bytes; *out_len receives n / 2.
 * Strict: n must be even and every character a hex digit. Returns 0, or -1
 * on an odd length, a non-hex character or cap < n / 2; on failure out is
 * wiped (as far as written) and *out_len is 0.
 */
int hex_decode(const char *in, size_t n, uint8_t *out, size_t cap, size_t *out_len);

/**
 * Write an IPv4 address (4 bytes, network order) as a dotted quad into out
 * (at least 16 bytes), without inet_ntop's sprintf: the server does it per
 * request.
 */
void str_ipv4(const void *addr4, char *out);

/** A growable byte buffer with a hard size limit. */
struct buf {
	char *data; /* owned; NUL-terminated after every append */
	size_t len;
	size_t cap;
	size_t limit; /* appends that would pass this fail */
};

/** Start an empty buffer that may grow to limit bytes. */
void buf_init(struct buf *b, size_t limit);
/** Append n bytes; -1 (and nothing appended) when the limit would be passed. */
int buf_append(struct buf *b, const void *data, size_t n);
/** Append a NUL-terminated string. */
int buf_append_str(struct buf *b, const char *s);
/** Append printf-formatted text. */
int buf_printf(struct buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/**
 * Append the n bytes at s percent-encoded as RFC 3986 says for a query or
 * form value: the unreserved characters (letters, digits, "-._~") as they
 * are, every other byte as %XX (upper-case hex; a space is %20). Accepted
 * in application/x-www-form-urlencoded bodies too. -1 past the limit.
 */
int buf_append_pct(struct buf *b, const char *s, size_t n);
/**
 * A response body collected by a libcurl transfer into a bounded buffer:
 * CURLOPT_WRITEFUNCTION buf_sink_write, CURLOPT_WRITEDATA the sink. A write
 * that would pass buf's limit sets too_large and aborts the transfer.
 */
struct buf_sink {
	struct buf *buf;
	bool too_large;
};
/** libcurl's write callback over a struct buf_sink (the signature curl_write_callback has). */
size_t buf_sink_write(char *data, size_t size, size_t nmemb, void *sink);
/** Hand the data to the caller (who frees it) and reset the buffer. */
char *buf_steal(struct buf *b, size_t *len_out);
/** Free the data. */
void buf_free(struct buf *b);

/** Bytes that hold any int64_t in decimal, with its sign and a NUL. */
#define STR_I64_MAX 21

/**
 * Write v in decimal (a '-' for negatives) and a NUL into out; returns the
 * length. The same text as printf's "%lld", without printf.
 */
size_t str_i64(char out[STR_I64_MAX], int64_t v);

/**
 * Text built in a caller's fixed buffer, without allocation or printf (for
 * per-request header values and bodies). Like snprintf: what does not fit
 * is cut (overflow is then set) and the text is always NUL-terminated.
 */
struct strbuf {
	char *data;
	size_t len, cap; /* cap > 0: the size of data */
	bool overflow;
};

/** Start an empty text in data[0..cap) (cap must be at least 1). */
void strbuf_init(struct strbuf *s, char *data, size_t cap);
/**
 * Append n bytes (what fits; overflow is set when some did not). Inline: the
 * hot path appends dozens of short pieces per request, most of them literals
 * whose length and copy the compiler then folds.
 */
static inline void strbuf_put(struct strbuf *s, const void *p, size_t n)
{
	size_t room = s->cap - 1 - s->len;
	if (n > room) {
		n = room;
		s->overflow = true;
	}
	memcpy(s->data + s->len, p, n);
	s->len += n;
	s->data[s->len] = '\0';
}

/** Append a NUL-terminated string. */
static inline void strbuf_puts(struct strbuf *s, const char *p)
{
	strbuf_put(s, p, strlen(p));
}
/** Append v in decimal (str_i64). */
void strbuf_put_i64(struct strbuf *s, int64_t v);

/**
 * Copy src into dst (cap bytes, cap >= 1), at most max bytes of it and what
 * fits, NUL-terminated; snprintf(dst, cap, "%.*s", max, src) without printf.
 * Returns the length copied.
 */
size_t str_copy(char *dst, size_t cap, const char *src, size_t max);

#endif
