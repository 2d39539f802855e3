/*
 * fuzz_scankeys.c: scankeys_parse (delivery/scankeys.h), the parser of the
 * key set fetched from [secret_scanning] github_keys_url, and
 * ecdsa_p256_verify (crypto/ecdsa.h) on the signature header a report
 * carries, both on the raw input.
 *
 * Checks: a set is accepted with 1 to STORE_SCAN_KEYS_MAX keys, each with a
 * valid, unique identifier and a key ecdsa_p256_key_check accepts, and a
 * refused one yields no keys; the input's first bytes, read as a base64
 * signature of the rest, never verify under GitHub's published key (a
 * forgery), and a signature text over ECDSA_SIG_B64_MAX is an encoding error.
 */
#include "fuzz.h"

#include <string.h>

#include "crypto/ecdsa.h"
#include "delivery/scankeys.h"

static const char github_pem[] =
    "-----BEGIN PUBLIC KEY-----\n"
    "MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEYAGMWO8XgCamYKMJS6jc/qgvSlAd\n"
    "AjPuDPRcXU22YxgBrz+zoN19MzuRyW87qEt9/AmtoNP5GrobzUvQSyJFVw==\n"
    "-----END PUBLIC KEY-----\n";

static struct store_scan_key keys[STORE_SCAN_KEYS_MAX];

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *text = (const char *)data;
	char err[256];
	int n = -1;

	if (scankeys_parse(text, size, keys, &n, err, sizeof err) == 0) {
		FUZZ_CHECK(n >= 1 && n <= STORE_SCAN_KEYS_MAX);
		for (int i = 0; i < n; i++) {
			FUZZ_CHECK(scankeys_id_valid(keys[i].key_identifier,
			                             strlen(keys[i].key_identifier)));
			FUZZ_CHECK(ecdsa_p256_key_check(keys[i].public_key,
			                                strlen(keys[i].public_key)) == ECDSA_OK);
			for (int j = 0; j < i; j++)
				FUZZ_CHECK(strcmp(keys[i].key_identifier, keys[j].key_identifier) !=
				           0);
		}
	} else {
		FUZZ_CHECK(n == 0);
	}
	/* The first line is the signature header, the rest the body it signs. */
	const char *nl = memchr(text, '\n', size);
	size_t sig_len = nl ? (size_t)(nl - text) : size;
	const char *body = nl ? nl + 1 : text + size;
	size_t body_len = size - (size_t)(body - text);
	int rc =
	    ecdsa_p256_verify(github_pem, sizeof github_pem - 1, body, body_len, text, sig_len);
	FUZZ_CHECK(rc != ECDSA_OK);
	FUZZ_CHECK(rc == ECDSA_ERR_ENCODING || rc == ECDSA_ERR_SIGNATURE);
	if (sig_len > ECDSA_SIG_B64_MAX)
		FUZZ_CHECK(rc == ECDSA_ERR_ENCODING);
	return 0;
}
