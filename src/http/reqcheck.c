/*
 * reqcheck.c: request-target and header checks run once per request before
 * routing (see reqcheck.h). Strict wherever a lenient reading would let the
 * gateway and the upstream (or a proxy in front) see two different
 * requests: RFC 9112 3.2 (Host), 5.1 (field names), 6.1 and 6.3 (framing),
 * RFC 9110 5.5 (field values), RFC 3986 3.3 (path characters).
 *
 * The character classes of field names and values are h1parse's, so the
 * request side and the response side of the gateway agree on them.
 */
#include "http/reqcheck.h"

#include "core/str.h"
#include "http/h1parse.h"

#include <string.h>

static void refuse(struct reqcheck_verdict *v, int status, const char *code, const char *message,
                   const char *field, bool close)
{
	*v = (struct reqcheck_verdict){status, code, message, field, close};
}

static void bad_request(struct reqcheck_verdict *v, const char *message, bool close)
{
	refuse(v, 400, "BAD_REQUEST", message, NULL, close);
}

/* RFC 3986 pchar without pct-encoded: unreserved, sub-delims, ":" and "@". */
static bool is_pchar(unsigned char c)
{
	if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'))
		return true;
	return c != '\0' && strchr("-._~!$&'()*+,;=:@", c) != NULL;
}

/* True when a segment of path[0..n) is "." or "..". */
static bool has_dot_segment(const char *path, size_t n)
{
	size_t i = 0;
	while (i < n) {
		while (i < n && path[i] == '/')
			i++;
		size_t start = i;
		while (i < n && path[i] != '/')
			i++;
		size_t len = i - start;
		if ((len == 1 && path[start] == '.') ||
		    (len == 2 && path[start] == '.' && path[start + 1] == '.'))
			return true;
	}
	return false;
}

int reqcheck_target(const char *target, size_t len, size_t max_len, char *out, size_t cap,
                    struct reqcheck_verdict *v)
{
	if (len > max_len) {
		refuse(v, 414, "URI_TOO_LONG",
		       "The request target is longer than this server accepts.", NULL, false);
		return -1;
	}
	if (cap < len + 1) {
		bad_request(v, "The request target is too long.", false);
		return -1;
	}
	/*
	 * Absolute-form, authority-form and "*" are refused: the target is
	 * appended to an upstream's base URL, where anything but a path could
	 * name another host.
	 */
	if (len == 0 || target[0] != '/') {
		bad_request(v, "The request target must be a path starting with /.", false);
		return -1;
	}
	size_t i = 0, o = 0;
	for (; i < len && target[i] != '?'; i++) {
		unsigned char c = (unsigned char)target[i];
		if (c == '%') {
			int hi = i + 2 < len ? str_hex_digit(target[i + 1]) : -1;
			int lo = hi >= 0 ? str_hex_digit(target[i + 2]) : -1;
			if (lo < 0) {
				refuse(v, 400, "BAD_REQUEST",
				       "The path has a % not followed by two hex digits.", "path",
				       false);
				return -1;
			}
			c = (unsigned char)(hi << 4 | lo);
			i += 2;
			/* A decoded control byte (%00 cuts C strings) or backslash (a
			 * separator to some upstreams) could make the path read two ways. */
			if (c < 0x20 || c == 0x7f || c == '\\') {
				refuse(
				    v, 400, "BAD_REQUEST",
				    "The path must not contain control characters or backslashes, "
				    "raw or %-encoded.",
				    "path", false);
				return -1;
			}
		} else if (c != '/' && !is_pchar(c)) {
			/* A space here means the request line itself reads two ways. */
			bool ws = c == ' ' || c == '\t' || c == '\r';
			refuse(v, 400, "BAD_REQUEST",
			       "The path holds a character that must be %-encoded (RFC 3986).",
			       "path", ws);
			return -1;
		}
		out[o++] = (char)c;
	}
	out[o] = '\0';
	for (; i < len; i++) {
		unsigned char c = (unsigned char)target[i];
		if (c <= 0x20 || c >= 0x7f || c == '#') {
			bad_request(v, "The query holds a character that must be %-encoded.",
			            c == ' ' || c == '\t' || c == '\r');
			return -1;
		}
	}
	/* Routing matches the decoded path and an upstream resolves "..": a path
	 * with dot segments could leave its route's prefix. */
	if (has_dot_segment(out, o)) {
		refuse(v, 400, "BAD_REQUEST", "The path must not contain . or .. segments.", "path",
		       false);
		return -1;
	}
	return 0;
}

void reqcheck_head_init(struct reqcheck_head *h, int minor)
{
	memset(h, 0, sizeof *h);
	h->minor = minor;
}

/* RFC 3986 host [":" port]: reg-name, IP-literal, IPv4 characters. */
static bool host_value_ok(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		if (!(is_pchar(c) || c == '%' || c == '[' || c == ']') || c == '@')
			return false;
	}
	return true;
}

static bool take_coding(void *arg, const char *t, size_t n)
{
	struct reqcheck_head *h = arg;
	if (!h1_is_token(t, n))
		return false; /* parameters (";q=") and junk: no coding we know has any */
	if (h->chunked_last)
		h->chunked_repeated = true; /* RFC 9112 6.1: chunked only once, and last */
	h->chunked_last = h1_token_ieq(t, n, "chunked");
	if (!h->chunked_last)
		h->unknown_coding = true;
	h->n_codings++;
	return true;
}

void reqcheck_head_field(struct reqcheck_head *h, const char *name, size_t name_len,
                         const char *value, size_t value_len)
{
	if (h->first.status)
		return;
	if (!h1_is_token(name, name_len)) {
		bad_request(&h->first,
		            "A header field name is not a token (whitespace before the colon, a "
		            "folded line, a control character?).",
		            true);
		return;
	}
	if (!h1_is_field_value(value, value_len)) {
		bad_request(&h->first, "A header field value holds a control character.", true);
		return;
	}
	if (h1_token_ieq(name, name_len, "host")) {
		h->n_host++;
		if (!host_value_ok(value, value_len))
			bad_request(&h->first, "The Host header is not a host name.", false);
	} else if (h1_token_ieq(name, name_len, "content-length")) {
		h->n_length++;
	} else if (h1_token_ieq(name, name_len, "transfer-encoding")) {
		h->n_coding_fields++;
		unsigned before = h->n_codings;
		if (!h1_each_element(value, value_len, take_coding, h) || h->n_codings == before)
			bad_request(&h->first, "The Transfer-Encoding header is malformed.", true);
	}
}

int reqcheck_head_done(const struct reqcheck_head *h, struct reqcheck_verdict *v)
{
	if (h->first.status) {
		*v = h->first;
		return -1;
	}
	if (h->n_host > 1) {
		bad_request(v, "The request has more than one Host header.", false);
		return -1;
	}
	if (h->n_host == 0 && h->minor >= 1) {
		bad_request(v, "An HTTP/1.1 request needs a Host header.", false);
		return -1;
	}
	if (h->n_length > 1) {
		bad_request(v, "The request has more than one Content-Length header.", true);
		return -1;
	}
	if (!h->n_coding_fields)
		return 0;
	/* RFC 9112 6.1: a transfer coding on HTTP/1.0 is faulty framing. */
	if (h->minor == 0) {
		bad_request(v, "An HTTP/1.0 request cannot have a Transfer-Encoding.", true);
		return -1;
	}
	if (h->n_length) {
		bad_request(v, "The request has both Content-Length and Transfer-Encoding.", true);
		return -1;
	}
	if (h->n_coding_fields > 1) {
		bad_request(v, "The request has more than one Transfer-Encoding header.", true);
		return -1;
	}
	if (h->unknown_coding) {
		refuse(v, 501, "NOT_IMPLEMENTED",
		       "The only transfer coding this server accepts is chunked.", NULL, true);
		return -1;
	}
	if (h->chunked_repeated) {
		bad_request(v, "chunked may be applied to a request only once.", true);
		return -1;
	}
	return 0;
}
