/*
 * h1parse.h: HTTP/1.1 message parsing (RFC 9112): the response side of the
 * upstream client and the request side of the server. All allocation-free
 * and safe on any input:
 *
 *   h1_find_head_end     where a head ends, on a growing buffer;
 *   h1_parse_head        a response's status line and header fields;
 *   h1_parse_request     a request's request line and header fields, strict
 *                        (every ambiguity that could let two parsers frame
 *                        one request two ways is refused, see h1parse.c);
 *   h1_body_feed         the body framing (Content-Length, chunked, or until
 *                        the connection closes), fed bytes as they arrive;
 *                        decoded bytes go to a sink. A request body is
 *                        decoded strictly (CRLF only, trailer fields checked).
 *
 * A head's fields point into the caller's buffer. Trailer fields of a
 * chunked body are read and dropped. The character classes (tokens, field
 * values) are shared with the request checks (reqcheck.h).
 */
#ifndef PORTCULLIS_HTTP_H1PARSE_H
#define PORTCULLIS_HTTP_H1PARSE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "http/reqcheck.h"

#define H1_MAX_FIELDS 128

enum h1_framing {
	H1_BODY_NONE,    /* 1xx, 204, 304, or the answer to HEAD */
	H1_BODY_LENGTH,  /* Content-Length bytes */
	H1_BODY_CHUNKED, /* Transfer-Encoding ending in chunked */
	H1_BODY_CLOSE,   /* everything until the upstream closes */
};

struct h1_field {
	const char *name, *value; /* not NUL-terminated */
	size_t name_len, value_len;
};

struct h1_head {
	int status;      /* 100..599 */
	int minor;       /* HTTP/1.minor */
	bool keep_alive; /* the connection may carry another request afterwards */
	enum h1_framing framing;
	uint64_t content_length; /* for H1_BODY_LENGTH */
	size_t n_fields;
	struct h1_field fields[H1_MAX_FIELDS];
};

/** True when s[0..n) is a non-empty RFC 9110 token (a field name, a coding). */
bool h1_is_token(const char *s, size_t n);
/** True when s[0..n) holds only field-value bytes: HTAB, SP, VCHAR, obs-text (no CTL, no DEL). */
bool h1_is_field_value(const char *s, size_t n);
/**
 * Call fn on each comma-separated element of a field value, trimmed of
 * whitespace; empty elements are skipped. False as soon as fn returns false.
 */
bool h1_each_element(const char *v, size_t n, bool (*fn)(void *arg, const char *t, size_t n),
                     void *arg);
/** True when t[0..n) equals the lower-case literal lit, ignoring ASCII case. */
bool h1_token_ieq(const char *t, size_t n, const char *lit);

/**
 * Where the head ends in buf[0..len): its length through the empty line,
 * or 0 when it is not complete yet. *scan carries the search position
 * between calls on a growing buffer (start it at 0), so a head arriving
 * byte by byte is scanned once.
 */
size_t h1_find_head_end(const char *buf, size_t len, size_t *scan);

/**
 * Parse a complete head (buf[0..len) as h1_find_head_end measured it).
 * head_request: the response answers a HEAD request (it has no body).
 * 0 on success, -1 when the head is malformed or has too many fields.
 */
int h1_parse_head(const char *buf, size_t len, bool head_request, struct h1_head *out);

/* The request-target's form (RFC 9112 3.2). */
enum h1_form {
	H1_FORM_ORIGIN,    /* "/" path ["?" query] */
	H1_FORM_ABSOLUTE,  /* scheme "://" ... */
	H1_FORM_AUTHORITY, /* host ":" port, CONNECT only */
	H1_FORM_ASTERISK,  /* "*", OPTIONS only */
};

struct h1_request {
	const char *method, *target; /* into the buffer, not NUL-terminated */
	size_t method_len, target_len;
	enum h1_form form;
	int minor;               /* HTTP/1.minor: 0 or 1 */
	bool keep_alive;         /* the connection may carry another request afterwards */
	bool expect_continue;    /* HTTP/1.1 with Expect: 100-continue */
	enum h1_framing framing; /* H1_BODY_NONE, H1_BODY_LENGTH or H1_BODY_CHUNKED */
	uint64_t content_length; /* for H1_BODY_LENGTH */
	size_t n_fields;
	struct h1_field fields[H1_MAX_FIELDS];
};

/**
 * Parse a complete request head (buf[0..len) as h1_find_head_end measured
 * it). 0 on success; -1 with *v set (400, 431 for too many fields, 501 for
 * a transfer coding other than chunked, 505 for a version other than
 * HTTP/1.0 and 1.1; v->close when the framing is in doubt). The target's
 * own checks (reqcheck_target) are the caller's, after this. After -1,
 * method and target are set when the line got that far; a line refused for
 * its target or version still has the target as sent (to the line's last
 * space), for the access log only.
 */
int h1_parse_request(const char *buf, size_t len, struct h1_request *out,
                     struct reqcheck_verdict *v);

/** The body decoder; start one per message with h1_body_init or h1_body_init_request. */
struct h1_body {
	enum h1_framing framing;
	uint64_t remaining; /* LENGTH: bytes left; CHUNKED: bytes left in this chunk */
	int state;
	unsigned digits;    /* hex digits of the current chunk size */
	size_t line_len;    /* bytes of the current chunk-extension or trailer line */
	size_t trailer_len; /* bytes of trailer fields so far */
	bool strict;        /* a request's body: CRLF only, trailer lines must be fields */
	bool done;
};

/** Sink for decoded body bytes; non-zero stops decoding (h1_body_feed returns -1). */
typedef int (*h1_sink_fn)(void *arg, const char *data, size_t n);

void h1_body_init(struct h1_body *b, const struct h1_head *head);
/** The same for the body of a request h1_parse_request accepted (decoded strictly). */
void h1_body_init_request(struct h1_body *b, const struct h1_request *req);

/**
 * Feed len bytes that follow the head. Returns how many were consumed
 * (fewer than len only when the body ended; the rest is not part of this
 * response), or -1 when the chunked framing is malformed or the sink
 * refused. b->done tells when the body is complete.
 */
ssize_t h1_body_feed(struct h1_body *b, const char *data, size_t len, h1_sink_fn sink, void *arg);

/** The connection reached end of file: true when that completes the body. */
bool h1_body_eof(struct h1_body *b);

#endif
