/*
 * reqcheck.h: the checks every request passes before it is routed
 * (RFC 9110, RFC 9112): the request-target, and the header fields as
 * the request parser (h1parse.c) hands them over. Pure functions on bytes, so the unit tests
 * and the fuzz target drive them without a server.
 *
 * The target check also decodes the path, once: the path it returns is the
 * one the dot-segment check looked at, the router matches and the route
 * prefixes select, and it is exactly what the target sent upstream (as
 * received) decodes to, because a target that could decode any other way
 * (a bad %-escape, a %00 or other control byte, a backslash) is refused.
 *
 * A refusal says whether the framing is in doubt (close): then the answer
 * must close the connection, since what follows on it cannot be trusted to
 * be the next request.
 */
#ifndef PORTCULLIS_HTTP_REQCHECK_H
#define PORTCULLIS_HTTP_REQCHECK_H

#include <stdbool.h>
#include <stddef.h>

/** Why a request is refused; status 0 means it passed. */
struct reqcheck_verdict {
	int status;          /* 400, 414 or 501 */
	const char *code;    /* BAD_REQUEST, URI_TOO_LONG, NOT_IMPLEMENTED */
	const char *message; /* static text for the problem's message */
	const char *field;   /* "path" when the path is at fault, else NULL */
	bool close;          /* framing in doubt: answer, then close the connection */
};

/**
 * Check a request-target (the raw bytes of the request line between the
 * spaces, len of them) and decode its path into out (cap bytes; len + 1
 * always suffice; NUL-terminated). Origin-form only: "/" path ["?" query].
 * The path must be RFC 3986 pchar and "/" with well-formed %-escapes whose
 * decoded bytes are no control byte and no backslash, and no segment may be
 * "." or ".." once decoded; the query may hold any visible ASCII but "#".
 * A target longer than max_len is 414. Returns 0, or -1 with *v set.
 */
int reqcheck_target(const char *target, size_t len, size_t max_len, char *out, size_t cap,
                    struct reqcheck_verdict *v);

/** The header-field state of one request; start it with reqcheck_head_init. */
struct reqcheck_head {
	int minor; /* HTTP/1.minor */
	unsigned n_host, n_length, n_coding_fields;
	unsigned n_codings;            /* transfer codings listed over all fields */
	bool chunked_last;             /* the last coding listed is chunked */
	bool chunked_repeated;         /* chunked listed twice, or not last */
	bool unknown_coding;           /* a coding other than chunked */
	struct reqcheck_verdict first; /* the first field-level refusal */
};

/** Start checking a request's fields; minor is the request's HTTP/1.minor (0 or 1+). */
void reqcheck_head_init(struct reqcheck_head *h, int minor);

/**
 * One header field line as the server parsed it: name and value with their
 * lengths (the value without surrounding whitespace). The name must be a
 * token (this is what catches whitespace before the colon, a bare CR and the
 * folds a lenient parser would glue into a name), the value field-value bytes.
 */
void reqcheck_head_field(struct reqcheck_head *h, const char *name, size_t name_len,
                         const char *value, size_t value_len);

/**
 * After the last field: 0 when the head is acceptable, else -1 with *v set.
 * Refused: any bad field; HTTP/1.1 without Host, or more than one Host;
 * more than one Content-Length; Transfer-Encoding on HTTP/1.0, together with
 * Content-Length, or in more than one field line; a coding list that is not
 * exactly "chunked" (501 when it names a coding this server cannot decode).
 */
int reqcheck_head_done(const struct reqcheck_head *h, struct reqcheck_verdict *v);

#endif
