/*
 * fuzz_console.c: the console's parsers of what a browser sends
 * (console/creds.h): the Cookie header (console_cookie_get), addresses
 * (console_email_normalize), the secrets' shape (console_secret_valid) and
 * the cross-site rule (console_origin_check). The first byte chooses the
 * Cookie name looked for; the rest is the text, NUL-terminated on a copy.
 *
 * Invariants: a cookie found is non-empty, shorter than its buffer, holds
 * no ';' and stands in the header after its name and '='; a normalised
 * address has the input's length, no upper-case letter, exactly one '@',
 * and normalises to itself; a valid secret is 43 base64url characters.
 */
#include "fuzz.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "console/creds.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	static const char *const names[] = {CONSOLE_SESSION_COOKIE, CONSOLE_LOGIN_COOKIE, "a"};
	const char *name = names[data[0] % 3];
	char *text = malloc(size);
	memcpy(text, data + 1, size - 1);
	text[size - 1] = '\0';

	char v[64];
	if (console_cookie_get(text, name, v, sizeof v) == 0) {
		size_t n = strlen(v);
		FUZZ_CHECK(n > 0 && n < sizeof v && !strchr(v, ';'));
		char pair[128];
		snprintf(pair, sizeof pair, "%s=%s", name, v);
		FUZZ_CHECK(strstr(text, pair) != NULL);
	}

	char e[255], again[255];
	if (console_email_normalize(text, e) == 0) {
		FUZZ_CHECK(strlen(e) == strlen(text));
		for (const char *p = e; *p; p++)
			FUZZ_CHECK(!(*p >= 'A' && *p <= 'Z') && (unsigned char)*p < 0x80);
		FUZZ_CHECK(strchr(e, '@') && strchr(e, '@') == strrchr(e, '@'));
		FUZZ_CHECK(console_email_normalize(e, again) == 0 && strcmp(e, again) == 0);
	}

	if (console_secret_valid(text, strlen(text))) {
		FUZZ_CHECK(strlen(text) == CONSOLE_SECRET_LEN);
		FUZZ_CHECK(strspn(text, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
		                        "0123456789-_") == CONSOLE_SECRET_LEN);
	}

	enum console_origin o =
	    console_origin_check(data[0] & 1 ? "POST" : "GET", text, NULL, "https://c.example");
	FUZZ_CHECK(o == CONSOLE_ORIGIN_OK ? strcasecmp(text, "https://c.example") == 0
	                                  : o == CONSOLE_ORIGIN_MISMATCH);
	free(text);
	return 0;
}
