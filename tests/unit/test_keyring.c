/*
 * test_keyring.c: unit tests for src/delivery/keyring.c, the background
 * tier's private keys: a secret sealed to a key the keyring lacks makes it
 * read the key file again, but not sooner than KEYRING_RETRY_MS after the
 * last read; a file that cannot be read at start is read when a secret needs
 * it; a failed read keeps the keys there were; text that names no key gets
 * no keyring.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "crypto/sealed.h"
#include "delivery/keyring.h"

static const struct sealed_context ctx = {"webhook_endpoints", "secret", "ep_01J0ROW",
                                          "org_01J0ORG"};
static const char secret[] = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

static char dir[64], path[128];

static int setup(void **state)
{
	(void)state;
	snprintf(dir, sizeof dir, "/tmp/test_keyring.XXXXXX");
	if (!mkdtemp(dir))
		return -1;
	snprintf(path, sizeof path, "%s/secrets.key", dir);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	unlink(path);
	return rmdir(dir);
}

/* Add a fresh key to kr, write kr to the key file, seal the secret to the new key into out. */
static void add_key(struct sealed_keyring *kr, bool create, char out[SEALED_TEXT_MAX])
{
	char id[SEALED_KEY_ID_LEN + 1], err[256];
	uint8_t pk[32];
	assert_int_equal(sealed_keyring_generate(kr, id, pk), SEALED_OK);
	assert_int_equal(sealed_keyring_write(kr, path, create, err, sizeof err), SEALED_OK);
	assert_int_equal(sealed_seal(id, pk, &ctx, (const uint8_t *)secret, strlen(secret), out,
	                             SEALED_TEXT_MAX),
	                 SEALED_OK);
}

static bool opens(const struct sealed_keyring *kr, const char *stored)
{
	char out[SEALED_SECRET_MAX + 1];
	size_t len = 0;
	return kr &&
	       sealed_open(kr, stored, &ctx, (uint8_t *)out, sizeof out - 1, &len) == SEALED_OK &&
	       len == strlen(secret) && memcmp(out, secret, len) == 0;
}

static void test_a_new_key_is_read_again_but_not_sooner_than_the_retry(void **state)
{
	(void)state;
	struct sealed_keyring *kr = sealed_keyring_new();
	char first[SEALED_TEXT_MAX], second[SEALED_TEXT_MAX], err[256];
	add_key(kr, true, first);
	struct keyring_file kf = {0};
	assert_int_equal(keyring_file_open(&kf, path, true, err, sizeof err), 0);
	assert_true(opens(keyring_file_for(&kf, first), first));

	add_key(kr, false, second); /* `secrets rotate` wrote a second key */
	const struct sealed_keyring *now = keyring_file_for(&kf, second);
	assert_ptr_equal(now, kf.keys);
	assert_false(opens(now, second)); /* read a moment ago: not again yet */
	kf.tried_mono -= KEYRING_RETRY_MS;
	assert_true(opens(keyring_file_for(&kf, second), second));
	assert_true(opens(keyring_file_for(&kf, first), first));
	assert_int_equal(sealed_keyring_count(kf.keys), 2);

	/* A key it holds never makes it read the file: a broken file changes nothing. */
	FILE *f = fopen(path, "w");
	assert_non_null(f);
	fputs("junk\n", f);
	fclose(f);
	kf.tried_mono -= KEYRING_RETRY_MS;
	int64_t tried = kf.tried_mono;
	assert_true(opens(keyring_file_for(&kf, second), second));
	assert_int_equal(kf.tried_mono, tried);

	/* A missing key with the file broken: the read fails, the keys there were stay. */
	char third[SEALED_TEXT_MAX];
	struct sealed_keyring *other = sealed_keyring_new();
	char id[SEALED_KEY_ID_LEN + 1];
	uint8_t pk[32];
	assert_int_equal(sealed_keyring_generate(other, id, pk), SEALED_OK);
	assert_int_equal(sealed_seal(id, pk, &ctx, (const uint8_t *)secret, strlen(secret), third,
	                             SEALED_TEXT_MAX),
	                 SEALED_OK);
	const struct sealed_keyring *kept = keyring_file_for(&kf, third);
	assert_true(kf.tried_mono > tried);
	assert_false(opens(kept, third));
	assert_true(opens(kept, first) && opens(kept, second));

	assert_null(keyring_file_for(&kf, "not sealed text"));
	keyring_file_close(&kf);
	assert_null(kf.keys);
	assert_null(kf.path);
	keyring_file_close(&kf); /* twice: a no-op */
	sealed_keyring_free(other);
	sealed_keyring_free(kr);
}

static void test_a_file_missing_at_start_is_read_when_a_secret_needs_it(void **state)
{
	(void)state;
	unlink(path);
	char err[256], stored[SEALED_TEXT_MAX];
	struct keyring_file kf = {0};
	assert_int_equal(keyring_file_open(&kf, path, false, err, sizeof err), -1);
	assert_non_null(strstr(err, path));
	assert_null(kf.keys);
	struct sealed_keyring *kr = sealed_keyring_new();
	add_key(kr, true, stored);
	assert_null(keyring_file_for(&kf, stored)); /* tried a moment ago */
	kf.tried_mono -= KEYRING_RETRY_MS;
	assert_true(opens(keyring_file_for(&kf, stored), stored));
	keyring_file_close(&kf);
	sealed_keyring_free(kr);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_a_new_key_is_read_again_but_not_sooner_than_the_retry),
	    cmocka_unit_test(test_a_file_missing_at_start_is_read_when_a_secret_needs_it),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
