/*
 * test_sign.c: unit tests for src/delivery/sign: the published Standard
 * Webhooks vector (tests/vectors/standard-webhooks.json), rotation (two
 * secrets give two space-separated signatures, in order), the signed content
 * of a large body (the heap path) checked against an independent HMAC, new
 * secrets, and every refused input.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "crypto/hash.h"
#include "delivery/sign.h"

#include "vectors.h"

#define VSECRET "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
#define VID     "msg_p5jXN8AQM9LWM0D4loKWxJek"
#define VTS     1614265330
#define VBODY   "{\"test\": 2432232314}"
#define VSIG    "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="

static json_t *load_vectors(void)
{
	return vectors_load("standard-webhooks.json");
}

static void test_published_vectors(void **state)
{
	json_t *root = load_vectors();
	json_t *vectors = json_object_get(root, "vectors");
	json_t *v;
	size_t i;
	char out[WH_SIGNATURE_LEN + 1];
	(void)state;

	assert_true(json_array_size(vectors) >= 1);
	json_array_foreach(vectors, i, v)
	{
		const char *secret = json_string_value(json_object_get(v, "secret"));
		const char *id = json_string_value(json_object_get(v, "msg_id"));
		const char *body = json_string_value(json_object_get(v, "payload"));
		const char *sig = json_string_value(json_object_get(v, "signature"));
		json_t *ts = json_object_get(v, "timestamp");

		assert_non_null(secret);
		assert_non_null(id);
		assert_non_null(body);
		assert_non_null(sig);
		assert_true(json_is_integer(ts));
		assert_int_equal(wh_sign(secret, id, (int64_t)json_integer_value(ts), body,
		                         strlen(body), out, sizeof(out)),
		                 0);
		assert_string_equal(out, sig);
		assert_int_equal(strlen(out), WH_SIGNATURE_LEN);
	}
	/* The first vector is the spec's own, whatever the file holds later. */
	assert_int_equal(wh_sign(VSECRET, VID, VTS, VBODY, strlen(VBODY), out, sizeof(out)), 0);
	assert_string_equal(out, VSIG);
	json_decref(root);
}

static void test_signature_covers_id_ts_body(void **state)
{
	char a[WH_SIGNATURE_LEN + 1], b[WH_SIGNATURE_LEN + 1];
	(void)state;

	assert_int_equal(wh_sign(VSECRET, VID, VTS, VBODY, strlen(VBODY), a, sizeof(a)), 0);
	assert_int_equal(wh_sign(VSECRET, VID, VTS + 1, VBODY, strlen(VBODY), b, sizeof(b)), 0);
	assert_string_not_equal(a, b);
	assert_int_equal(wh_sign(VSECRET, "msg_other", VTS, VBODY, strlen(VBODY), b, sizeof(b)), 0);
	assert_string_not_equal(a, b);
	assert_int_equal(wh_sign(VSECRET, VID, VTS, VBODY, strlen(VBODY) - 1, b, sizeof(b)), 0);
	assert_string_not_equal(a, b);
	/* An empty body may be NULL. */
	assert_int_equal(wh_sign(VSECRET, VID, VTS, NULL, 0, a, sizeof(a)), 0);
	assert_int_equal(wh_sign(VSECRET, VID, VTS, "", 0, b, sizeof(b)), 0);
	assert_string_equal(a, b);
}

/* A body far above the stack buffer: the same HMAC as computed directly. */
static void test_large_body_matches_direct_hmac(void **state)
{
	const size_t blen = 300 * 1024;
	const char *prefix = VID ".1614265330.";
	size_t plen = strlen(prefix);
	char *body = xmalloc(blen);
	char *content = xmalloc(plen + blen);
	uint8_t key[64], tag[SHA256_LEN];
	size_t klen;
	char expect[WH_SIGNATURE_LEN + 1] = "v1,";
	char out[WH_SIGNATURE_LEN + 1];
	const char *b64 = &VSECRET[6]; /* after "whsec_" */
	(void)state;

	for (size_t i = 0; i < blen; i++)
		body[i] = (char)('a' + i % 26);
	memcpy(content, prefix, plen);
	memcpy(content + plen, body, blen);
	assert_int_equal(base64_decode(b64, strlen(b64), key, sizeof(key), &klen), 0);
	hmac_sha256(key, klen, content, plen + blen, tag);
	assert_int_equal(base64_encode(tag, sizeof(tag), expect + 3, sizeof(expect) - 3), 0);

	assert_int_equal(wh_sign(VSECRET, VID, VTS, body, blen, out, sizeof(out)), 0);
	assert_string_equal(out, expect);
	free(body);
	free(content);
}

static void test_two_secrets_two_signatures(void **state)
{
	char fresh[WH_SECRET_MAX + 1];
	char s1[WH_SIGNATURE_LEN + 1], s2[WH_SIGNATURE_LEN + 1];
	char header[2 * (WH_SIGNATURE_LEN + 1)];
	char expect[sizeof(header)];
	const char *secrets[2];
	(void)state;

	wh_secret_new(fresh);
	secrets[0] = fresh;
	secrets[1] = VSECRET;
	assert_int_equal(wh_sign(fresh, VID, VTS, VBODY, strlen(VBODY), s1, sizeof(s1)), 0);
	assert_int_equal(wh_sign(VSECRET, VID, VTS, VBODY, strlen(VBODY), s2, sizeof(s2)), 0);
	assert_string_not_equal(s1, s2);
	assert_int_equal(
	    wh_signature_header(secrets, 2, VID, VTS, VBODY, strlen(VBODY), header, sizeof(header)),
	    0);
	assert_true((size_t)snprintf(expect, sizeof(expect), "%s %s", s1, s2) < sizeof(expect));
	assert_string_equal(header, expect);
	assert_int_equal(strlen(header), 2 * WH_SIGNATURE_LEN + 1);

	/* One secret: the header is that one signature. */
	assert_int_equal(wh_signature_header(secrets + 1, 1, VID, VTS, VBODY, strlen(VBODY), header,
	                                     sizeof(header)),
	                 0);
	assert_string_equal(header, VSIG);

	/* One byte short of room: refused, and nothing partial is left. */
	assert_int_equal(wh_signature_header(secrets, 2, VID, VTS, VBODY, strlen(VBODY), header,
	                                     sizeof(header) - 1),
	                 -1);
	assert_string_equal(header, "");
}

static void test_header_refuses_any_bad_secret(void **state)
{
	char header[4 * (WH_SIGNATURE_LEN + 1) + 8];
	const char *secrets[5] = {VSECRET, "whsec_bad!", VSECRET, VSECRET, VSECRET};
	(void)state;

	assert_int_equal(
	    wh_signature_header(secrets, 2, VID, VTS, VBODY, strlen(VBODY), header, sizeof(header)),
	    -1);
	assert_string_equal(header, "");
	/* n out of range. */
	assert_int_equal(
	    wh_signature_header(secrets, 0, VID, VTS, VBODY, strlen(VBODY), header, sizeof(header)),
	    -1);
	secrets[1] = VSECRET;
	assert_int_equal(wh_signature_header(secrets, WH_SIGNATURES_MAX + 1, VID, VTS, VBODY,
	                                     strlen(VBODY), header, sizeof(header)),
	                 -1);
	assert_int_equal(wh_signature_header(secrets, WH_SIGNATURES_MAX, VID, VTS, VBODY,
	                                     strlen(VBODY), header, sizeof(header)),
	                 0);
	assert_int_equal(strlen(header), WH_SIGNATURES_MAX * (WH_SIGNATURE_LEN + 1) - 1);
	assert_int_equal(
	    wh_signature_header(NULL, 1, VID, VTS, VBODY, strlen(VBODY), header, sizeof(header)),
	    -1);
}

static void test_bad_secret_refused(void **state)
{
	static const char *const bad[] = {
	    "",
	    "whsec_",
	    "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",        /* no prefix */
	    "WHSEC_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",  /* prefix is case-sensitive */
	    "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaS",   /* not a whole base64 group */
	    "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaS!",  /* not base64 */
	    "whsec_MfKQ9r8GKYqrTwjU PD8ILPZIo2LaLaSw", /* space */
	    "whsec_MfKQ9r8G-YqrTwjUPD8ILPZIo2LaLaSw",  /* URL-safe alphabet */
	    "whsec_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAA==",  /* 22 bytes: too short a key */
	    /* 51 bytes of base64 text after the prefix would exceed WH_SECRET_MAX */
	    "whsec_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
	};
	char out[WH_SIGNATURE_LEN + 1];
	(void)state;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		memcpy(out, "x", 2);
		if (wh_sign(bad[i], VID, VTS, VBODY, strlen(VBODY), out, sizeof(out)) != -1)
			fail_msg("accepted bad secret #%zu %s", i, bad[i]);
		assert_string_equal(out, "");
	}
	assert_int_equal(wh_sign(NULL, VID, VTS, VBODY, strlen(VBODY), out, sizeof(out)), -1);
	/* 24 bytes (as the vector) and 42 bytes (56 characters: the longest text
	 * within WH_SECRET_MAX) are keys. */
	assert_int_equal(wh_sign("whsec_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", VID, VTS, VBODY,
	                         strlen(VBODY), out, sizeof(out)),
	                 0);
	assert_int_equal(wh_sign("whsec_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", VID,
	                         VTS, VBODY, strlen(VBODY), out, sizeof(out)),
	                 0);
}

static void test_bad_id_ts_cap_refused(void **state)
{
	char out[WH_SIGNATURE_LEN + 1];
	char longid[WH_MSG_ID_MAX + 2];
	(void)state;

	assert_int_equal(wh_sign(VSECRET, "", VTS, VBODY, strlen(VBODY), out, sizeof(out)), -1);
	assert_int_equal(wh_sign(VSECRET, NULL, VTS, VBODY, strlen(VBODY), out, sizeof(out)), -1);
	memset(longid, 'm', sizeof(longid) - 1);
	longid[sizeof(longid) - 1] = '\0';
	assert_int_equal(wh_sign(VSECRET, longid, VTS, VBODY, strlen(VBODY), out, sizeof(out)), -1);
	longid[WH_MSG_ID_MAX] = '\0';
	assert_int_equal(wh_sign(VSECRET, longid, VTS, VBODY, strlen(VBODY), out, sizeof(out)), 0);
	assert_int_equal(wh_sign(VSECRET, VID, -1, VBODY, strlen(VBODY), out, sizeof(out)), -1);
	assert_int_equal(wh_sign(VSECRET, VID, 0, VBODY, strlen(VBODY), out, sizeof(out)), 0);
	assert_int_equal(wh_sign(VSECRET, VID, VTS, NULL, 3, out, sizeof(out)), -1);
	assert_int_equal(wh_sign(VSECRET, VID, VTS, VBODY, strlen(VBODY), out, sizeof(out) - 1),
	                 -1);
	assert_string_equal(out, "");
}

static void test_secret_new(void **state)
{
	char a[WH_SECRET_MAX + 1], b[WH_SECRET_MAX + 1];
	uint8_t key[64];
	size_t klen;
	char sig[WH_SIGNATURE_LEN + 1];
	(void)state;

	wh_secret_new(a);
	wh_secret_new(b);
	assert_int_equal(strlen(a), 6 + 44);
	assert_memory_equal(a, "whsec_", 6);
	assert_int_equal(base64_decode(a + 6, strlen(a) - 6, key, sizeof(key), &klen), 0);
	assert_int_equal(klen, 32);
	assert_string_not_equal(a, b);
	assert_int_equal(wh_sign(a, VID, VTS, VBODY, strlen(VBODY), sig, sizeof(sig)), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_published_vectors),
	    cmocka_unit_test(test_signature_covers_id_ts_body),
	    cmocka_unit_test(test_large_body_matches_direct_hmac),
	    cmocka_unit_test(test_two_secrets_two_signatures),
	    cmocka_unit_test(test_header_refuses_any_bad_secret),
	    cmocka_unit_test(test_bad_secret_refused),
	    cmocka_unit_test(test_bad_id_ts_cap_refused),
	    cmocka_unit_test(test_secret_new),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
