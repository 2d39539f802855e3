/*
 * creds.c: the console's tokens, session ids, CSRF tokens, cookies, the
 * cross-site rule and addresses (see creds.h). Secrets are compared in
 * constant time and wiped after use; nothing here logs.
 */
#include "console/creds.h"

#include "core/str.h"
#include "crypto/ct.h"
#include "crypto/hash.h"
#include "crypto/random.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

/* The label the CSRF token's HMAC is computed over (changing it ends every token). */
#define CSRF_LABEL "portcullis console csrf v1"

void console_secret_new(char out[CONSOLE_SECRET_LEN + 1])
{
	uint8_t raw[CONSOLE_SECRET_BYTES];
	crypto_random(raw, sizeof raw);
	base64url_encode(raw, sizeof raw, out, CONSOLE_SECRET_LEN + 1);
	explicit_bzero(raw, sizeof raw);
}

bool console_secret_valid(const char *s, size_t len)
{
	uint8_t raw[CONSOLE_SECRET_BYTES + 3];
	size_t n = 0;
	bool ok = len == CONSOLE_SECRET_LEN && base64url_decode(s, len, raw, sizeof raw, &n) == 0 &&
	          n == CONSOLE_SECRET_BYTES;
	explicit_bzero(raw, sizeof raw);
	return ok;
}

void console_secret_hash(const char *secret, char out[CONSOLE_HASH_LEN + 1])
{
	uint8_t d[SHA256_LEN];
	sha256(secret, strlen(secret), d);
	hex_encode(d, sizeof d, out);
	out[CONSOLE_HASH_LEN] = '\0';
}

void console_csrf_token(const char *session_id, char out[CONSOLE_SECRET_LEN + 1])
{
	uint8_t mac[SHA256_LEN];
	hmac_sha256(session_id, strlen(session_id), CSRF_LABEL, sizeof CSRF_LABEL - 1, mac);
	base64url_encode(mac, sizeof mac, out, CONSOLE_SECRET_LEN + 1);
	explicit_bzero(mac, sizeof mac);
}

bool console_csrf_ok(const char *session_id, const char *presented)
{
	if (!presented || strlen(presented) != CONSOLE_SECRET_LEN)
		return false;
	char want[CONSOLE_SECRET_LEN + 1];
	console_csrf_token(session_id, want);
	bool ok = ct_equal(want, presented, CONSOLE_SECRET_LEN);
	explicit_bzero(want, sizeof want);
	return ok;
}

int console_cookie_get(const char *header, const char *name, char *out, size_t cap)
{
	size_t nl = strlen(name);
	int found = 0;
	if (!header)
		return -1;
	for (const char *p = header; *p;) {
		while (*p == ' ' || *p == '\t' || *p == ';')
			p++;
		size_t pair = strcspn(p, ";");
		if (pair > nl && strncmp(p, name, nl) == 0 && p[nl] == '=') {
			const char *v = p + nl + 1;
			size_t vl = pair - nl - 1;
			while (vl && (v[vl - 1] == ' ' || v[vl - 1] == '\t'))
				vl--;
			if (found++ || vl == 0 || vl >= cap) {
				explicit_bzero(out, cap);
				return -1;
			}
			memcpy(out, v, vl);
			out[vl] = '\0';
		}
		p += pair;
	}
	return found == 1 ? 0 : -1;
}

int console_set_cookie(char *out, size_t cap, const char *name, const char *value,
                       int64_t max_age_s)
{
	char age[40] = "";
	if (max_age_s >= 0)
		snprintf(age, sizeof age, "; Max-Age=%lld", (long long)max_age_s);
	int n =
	    snprintf(out, cap, "%s=%s; Secure; HttpOnly; SameSite=Lax; Path=/%s", name, value, age);
	return n < 0 || (size_t)n >= cap ? -1 : 0;
}

bool console_state_changing(const char *method)
{
	return strcmp(method, "POST") == 0 || strcmp(method, "PUT") == 0 ||
	       strcmp(method, "PATCH") == 0 || strcmp(method, "DELETE") == 0;
}

enum console_origin console_origin_check(const char *method, const char *origin,
                                         const char *fetch_site, const char *public_url)
{
	if (fetch_site && strcasecmp(fetch_site, "cross-site") == 0)
		return CONSOLE_ORIGIN_CROSS_SITE;
	/*
	 * A page served with Referrer-Policy: no-referrer (the invitation's) makes
	 * the browser send "Origin: null" with its form's POST (Fetch, "serializing
	 * a request origin"); Sec-Fetch-Site, which no page can set, then says
	 * whether it came from this origin.
	 */
	if (origin && strcmp(origin, "null") == 0 && fetch_site &&
	    strcasecmp(fetch_site, "same-origin") == 0)
		return CONSOLE_ORIGIN_OK;
	if (origin) {
		size_t ol = strlen(origin), pl = strlen(public_url);
		if (!ascii_ieq(origin, ol, public_url, pl))
			return CONSOLE_ORIGIN_MISMATCH;
		return CONSOLE_ORIGIN_OK;
	}
	return console_state_changing(method) ? CONSOLE_ORIGIN_MISSING : CONSOLE_ORIGIN_OK;
}

static bool atext(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       (c && strchr("!#$%&'*+/=?^_`{|}~-", c));
}

static bool label_char(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       c == '-';
}

int console_email_normalize(const char *in, char out[255])
{
	size_t len = strnlen(in, 255);
	const char *at = memchr(in, '@', len);
	if (len == 0 || len > 254 || !at || memchr(at + 1, '@', len - (size_t)(at - in) - 1))
		return -1;
	size_t local = (size_t)(at - in);
	if (local == 0 || local > 64 || in[0] == '.' || in[local - 1] == '.')
		return -1;
	for (size_t i = 0; i < local; i++)
		if (!(atext(in[i]) || (in[i] == '.' && in[i + 1] != '.')))
			return -1;
	const char *d = at + 1;
	size_t dl = len - local - 1, label = 0;
	if (dl == 0)
		return -1;
	for (size_t i = 0; i <= dl; i++) {
		if (i == dl || d[i] == '.') {
			if (label == 0 || label > 63 || d[i - 1] == '-' || d[i - label] == '-')
				return -1;
			label = 0;
		} else if (label_char(d[i])) {
			label++;
		} else {
			return -1;
		}
	}
	for (size_t i = 0; i < len; i++)
		out[i] = in[i] >= 'A' && in[i] <= 'Z' ? (char)(in[i] - 'A' + 'a') : in[i];
	out[len] = '\0';
	return 0;
}
