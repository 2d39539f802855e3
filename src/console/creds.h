/*
 * creds.h: the console's credentials as pure functions: magic-link tokens,
 * browser nonces and session ids (256 random bits, base64url), their
 * SHA-256 (what the store keeps), the per-session CSRF token, the cookies
 * that carry them, the Origin / Sec-Fetch-Site rule, and addresses.
 * No I/O, no allocation; unit-tested in tests/unit/test_console_creds.c.
 */
#ifndef PORTCULLIS_CONSOLE_CREDS_H
#define PORTCULLIS_CONSOLE_CREDS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/** Random bytes in a token, a nonce and a session id (256 bits). */
#define CONSOLE_SECRET_BYTES 32
/** Characters of one as text: unpadded base64url of 32 bytes. */
#define CONSOLE_SECRET_LEN 43
/** SHA-256 hex. */
#define CONSOLE_HASH_LEN 64

#define CONSOLE_SESSION_COOKIE "__Host-pcl_session"
#define CONSOLE_LOGIN_COOKIE   "__Host-pcl_login"

/** A fresh secret (token, nonce, session id): 32 CSPRNG bytes as base64url, NUL-terminated. */
void console_secret_new(char out[CONSOLE_SECRET_LEN + 1]);
/** True when s (len bytes) has a secret's shape: 43 base64url characters that decode to 32 bytes.
 */
bool console_secret_valid(const char *s, size_t len);
/** The SHA-256 hex of the secret's text, NUL-terminated: what the store keeps. */
void console_secret_hash(const char *secret, char out[CONSOLE_HASH_LEN + 1]);

/**
 * The CSRF token of a session: base64url of HMAC-SHA-256 keyed with the
 * session id over a fixed label. Only the holder of the session cookie can
 * compute it, and the store needs no column for it.
 */
void console_csrf_token(const char *session_id, char out[CONSOLE_SECRET_LEN + 1]);
/** True when presented (may be NULL) is session_id's CSRF token (constant time). */
bool console_csrf_ok(const char *session_id, const char *presented);

/**
 * The value of cookie name in a Cookie header (RFC 6265 section 5.4:
 * "a=b; c=d"), copied into out (cap bytes, NUL-terminated). 0, or -1 when
 * absent, empty, longer than cap - 1, or given twice (a second cookie of
 * the same name is an attempt to shadow it: refused).
 */
int console_cookie_get(const char *header, const char *name, char *out, size_t cap);

/**
 * A Set-Cookie value for name=value with Secure, HttpOnly, SameSite=Lax,
 * Path=/ (what the __Host- prefix requires) and Max-Age=max_age_s
 * (max_age_s < 0: none, a session cookie; 0 removes the cookie). -1 when
 * cap is too small.
 */
int console_set_cookie(char *out, size_t cap, const char *name, const char *value,
                       int64_t max_age_s);

/** Why a request is refused by the cross-site rule (console_origin_check). */
enum console_origin {
	CONSOLE_ORIGIN_OK,
	CONSOLE_ORIGIN_CROSS_SITE, /* Sec-Fetch-Site: cross-site */
	CONSOLE_ORIGIN_MISMATCH,   /* Origin present and not public_url */
	CONSOLE_ORIGIN_MISSING,    /* a state-changing request without Origin */
};

/**
 * The cross-site rule: Sec-Fetch-Site cross-site is refused; an Origin
 * other than public_url (scheme://host[:port], compared exactly, ASCII case
 * aside) is refused; a state-changing request (POST, PUT, PATCH, DELETE)
 * must carry Origin (every browser sends it on those). "Origin: null" (what
 * a browser sends from a page with Referrer-Policy: no-referrer) passes only
 * with Sec-Fetch-Site same-origin. origin and fetch_site may be NULL (absent).
 */
enum console_origin console_origin_check(const char *method, const char *origin,
                                         const char *fetch_site, const char *public_url);

/** True for POST, PUT, PATCH and DELETE. */
bool console_state_changing(const char *method);

/**
 * Normalise an address: ASCII only, one '@', a dot-atom local part of 1 to
 * 64 characters, a domain of dot-separated labels (letters, digits, '-',
 * not at a label's ends; 1 to 63 each), 254 bytes at most; lower-cased into
 * out (STORE_EMAIL_MAX + 1 = 255 bytes). 0, or -1 for anything else.
 */
int console_email_normalize(const char *in, char out[255]);

#endif
