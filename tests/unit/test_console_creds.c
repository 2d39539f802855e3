/*
 * test_console_creds.c: src/console/creds.c: secrets (tokens, nonces,
 * session ids) are 256 random bits as 43 base64url characters, distinct
 * each time, hashed to the SHA-256 hex of their text (a published vector);
 * the CSRF token belongs to its session only and is compared whole; the
 * cookies carry exactly the attributes the __Host- prefix needs; a
 * shadowing second cookie of the same name is refused; the cross-site rule
 * (each refusal on its own); addresses normalised or refused.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <string.h>

#include "console/creds.h"

static void test_secret_shape_and_uniqueness(void **state)
{
	(void)state;
	char a[CONSOLE_SECRET_LEN + 1], b[CONSOLE_SECRET_LEN + 1];
	console_secret_new(a);
	console_secret_new(b);
	assert_int_equal(strlen(a), 43);
	assert_string_not_equal(a, b);
	assert_true(strspn(a, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_") ==
	            43);
	assert_true(console_secret_valid(a, strlen(a)));
	assert_false(console_secret_valid(a, 42));
	char bad[CONSOLE_SECRET_LEN + 1];
	memcpy(bad, a, sizeof bad);
	bad[10] = '+'; /* base64, not base64url */
	assert_false(console_secret_valid(bad, strlen(bad)));
	/* 43 characters whose last one carries nonzero unused bits: not a 32-byte encoding. */
	memcpy(bad, a, sizeof bad);
	bad[42] = bad[42] == 'B' ? 'C' : 'B';
	assert_false(console_secret_valid(bad, strlen(bad)));
	/* Distinct over many draws (256 bits: a repeat means a broken generator). */
	char seen[64][CONSOLE_SECRET_LEN + 1];
	for (int i = 0; i < 64; i++) {
		console_secret_new(seen[i]);
		for (int j = 0; j < i; j++)
			assert_string_not_equal(seen[i], seen[j]);
	}
}

static void test_secret_hash_is_sha256_hex_of_the_text(void **state)
{
	(void)state;
	char h[CONSOLE_HASH_LEN + 1];
	console_secret_hash("abc", h); /* FIPS 180-2's example */
	assert_string_equal(h, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

static void test_csrf_token_is_the_sessions_own(void **state)
{
	(void)state;
	char s1[CONSOLE_SECRET_LEN + 1], s2[CONSOLE_SECRET_LEN + 1];
	char t1[CONSOLE_SECRET_LEN + 1], t1b[CONSOLE_SECRET_LEN + 1], t2[CONSOLE_SECRET_LEN + 1];
	console_secret_new(s1);
	console_secret_new(s2);
	console_csrf_token(s1, t1);
	console_csrf_token(s1, t1b);
	console_csrf_token(s2, t2);
	assert_string_equal(t1, t1b);
	assert_string_not_equal(t1, t2);
	assert_string_not_equal(t1, s1);
	assert_true(console_csrf_ok(s1, t1));
	assert_false(console_csrf_ok(s1, t2));
	assert_false(console_csrf_ok(s1, NULL));
	assert_false(console_csrf_ok(s1, ""));
	t1b[42] = t1b[42] == 'A' ? 'B' : 'A';
	assert_false(console_csrf_ok(s1, t1b));
	t1b[42] = '\0';
	assert_false(console_csrf_ok(s1, t1b));
}

static void test_cookie_attributes(void **state)
{
	(void)state;
	char c[256];
	assert_int_equal(console_set_cookie(c, sizeof c, CONSOLE_SESSION_COOKIE, "v", -1), 0);
	assert_string_equal(c, "__Host-pcl_session=v; Secure; HttpOnly; SameSite=Lax; Path=/");
	assert_int_equal(console_set_cookie(c, sizeof c, CONSOLE_LOGIN_COOKIE, "n", 600), 0);
	assert_string_equal(
	    c, "__Host-pcl_login=n; Secure; HttpOnly; SameSite=Lax; Path=/; Max-Age=600");
	assert_int_equal(console_set_cookie(c, sizeof c, CONSOLE_LOGIN_COOKIE, "", 0), 0);
	assert_string_equal(c,
	                    "__Host-pcl_login=; Secure; HttpOnly; SameSite=Lax; Path=/; Max-Age=0");
	assert_int_equal(console_set_cookie(c, 20, CONSOLE_SESSION_COOKIE, "v", -1), -1);
}

static void test_cookie_parsing(void **state)
{
	(void)state;
	char v[64];
	assert_int_equal(console_cookie_get("a=1; __Host-pcl_session=xyz; b=2",
	                                    CONSOLE_SESSION_COOKIE, v, sizeof v),
	                 0);
	assert_string_equal(v, "xyz");
	assert_int_equal(
	    console_cookie_get("__Host-pcl_session=xyz", CONSOLE_SESSION_COOKIE, v, sizeof v), 0);
	/* A name that merely ends or starts the same is another cookie. */
	assert_int_equal(console_cookie_get("x__Host-pcl_session=1; __Host-pcl_sessionx=2",
	                                    CONSOLE_SESSION_COOKIE, v, sizeof v),
	                 -1);
	assert_int_equal(console_cookie_get("__Host-pcl_session=a; __Host-pcl_session=b",
	                                    CONSOLE_SESSION_COOKIE, v, sizeof v),
	                 -1);
	assert_int_equal(
	    console_cookie_get("__Host-pcl_session=", CONSOLE_SESSION_COOKIE, v, sizeof v), -1);
	assert_int_equal(console_cookie_get(NULL, CONSOLE_SESSION_COOKIE, v, sizeof v), -1);
	assert_int_equal(
	    console_cookie_get("__Host-pcl_session=0123456789", CONSOLE_SESSION_COOKIE, v, 8), -1);
}

static void test_cross_site_rule(void **state)
{
	(void)state;
	const char *pub = "https://console.example.com";
	assert_int_equal(console_origin_check("POST", pub, "same-origin", pub), CONSOLE_ORIGIN_OK);
	assert_int_equal(console_origin_check("POST", "HTTPS://Console.example.com", NULL, pub),
	                 CONSOLE_ORIGIN_OK);
	assert_int_equal(console_origin_check("POST", pub, "cross-site", pub),
	                 CONSOLE_ORIGIN_CROSS_SITE);
	assert_int_equal(console_origin_check("GET", NULL, "cross-site", pub),
	                 CONSOLE_ORIGIN_CROSS_SITE);
	assert_int_equal(console_origin_check("POST", "https://evil.example", "same-site", pub),
	                 CONSOLE_ORIGIN_MISMATCH);
	assert_int_equal(
	    console_origin_check("DELETE", "https://console.example.com:444", NULL, pub),
	    CONSOLE_ORIGIN_MISMATCH);
	assert_int_equal(console_origin_check("GET", "null", NULL, pub), CONSOLE_ORIGIN_MISMATCH);
	/* A form posted from a no-referrer page of this origin: Origin null, same-origin. */
	assert_int_equal(console_origin_check("POST", "null", "same-origin", pub),
	                 CONSOLE_ORIGIN_OK);
	assert_int_equal(console_origin_check("POST", "null", "same-site", pub),
	                 CONSOLE_ORIGIN_MISMATCH);
	assert_int_equal(console_origin_check("POST", "null", "none", pub),
	                 CONSOLE_ORIGIN_MISMATCH);
	assert_int_equal(console_origin_check("POST", "null", "cross-site", pub),
	                 CONSOLE_ORIGIN_CROSS_SITE);
	assert_int_equal(console_origin_check("POST", "Null", "same-origin", pub),
	                 CONSOLE_ORIGIN_MISMATCH);
	assert_int_equal(console_origin_check("PATCH", NULL, "same-origin", pub),
	                 CONSOLE_ORIGIN_MISSING);
	assert_int_equal(console_origin_check("GET", NULL, NULL, pub), CONSOLE_ORIGIN_OK);
	assert_true(console_state_changing("PUT"));
	assert_false(console_state_changing("HEAD"));
}

static void test_addresses(void **state)
{
	(void)state;
	char out[255];
	assert_int_equal(console_email_normalize("Ada.Lovelace+x@Example.COM", out), 0);
	assert_string_equal(out, "ada.lovelace+x@example.com");
	assert_int_equal(console_email_normalize("op@localhost", out), 0);
	static const char *const bad[] = {
	    "",
	    "ada",
	    "@example.com",
	    "ada@",
	    "ada@@example.com",
	    "a@b@c",
	    ".ada@x.com",
	    "ada.@x.com",
	    "a..b@x.com",
	    "ada@-x.com",
	    "ada@x-.com",
	    "ada@x..com",
	    "ada@x.com.",
	    "a da@x.com",
	    "ada@x_y.com",
	    "ad\xc3\xa9@x.com",
	    "ada@x.com\r\nBcc: e@x.com",
	    "<ada@x.com>",
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
		assert_int_equal(console_email_normalize(bad[i], out), -1);
	char longlocal[80];
	memset(longlocal, 'a', 65);
	memcpy(longlocal + 65, "@x.com", 7);
	assert_int_equal(console_email_normalize(longlocal, out), -1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_secret_shape_and_uniqueness),
	    cmocka_unit_test(test_secret_hash_is_sha256_hex_of_the_text),
	    cmocka_unit_test(test_csrf_token_is_the_sessions_own),
	    cmocka_unit_test(test_cookie_attributes),
	    cmocka_unit_test(test_cookie_parsing),
	    cmocka_unit_test(test_cross_site_rule),
	    cmocka_unit_test(test_addresses),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
