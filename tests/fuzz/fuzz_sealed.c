/*
 * fuzz_sealed.c: sealed_open and sealed_stored_key_id (crypto/sealed.h) on
 * arbitrary stored text (a value read back from the database), and a
 * seal/open round trip of arbitrary secrets.
 *
 * The keyring holds one key made at start-up. Every input is opened as it is
 * (NUL-terminated copy) for a fixed context: a refusal must leave the output
 * wiped and the length 0; a text that opens must name the keyring's key. The
 * input is also sealed as a secret (when short enough) and must open to
 * exactly itself for its context, and not for another row.
 */
#include "fuzz.h"

#include <string.h>

#include "crypto/sealed.h"

static struct sealed_keyring *kr;
static char key_id[SEALED_KEY_ID_LEN + 1];
static uint8_t pk[SEALED_PK_LEN];
static const struct sealed_context ctx = {"webhook_endpoints", "secret", "ep_01J0ROW",
                                          "org_01J0ORG"};

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	kr = sealed_keyring_new();
	FUZZ_CHECK(sealed_keyring_generate(kr, key_id, pk) == SEALED_OK);
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static char text[SEALED_TEXT_MAX * 2];
	static uint8_t out[SEALED_SECRET_MAX];
	static char sealed[SEALED_TEXT_MAX];
	char id[SEALED_KEY_ID_LEN + 1];
	size_t len = 1;

	if (size >= sizeof(text))
		return 0;
	memcpy(text, data, size);
	text[size] = '\0';
	int rc = sealed_open(kr, text, &ctx, out, sizeof(out), &len);
	if (rc == SEALED_OK) {
		FUZZ_CHECK(sealed_stored_key_id(text, id) == SEALED_OK);
		FUZZ_CHECK(strcmp(id, key_id) == 0);
		FUZZ_CHECK(len <= SEALED_SECRET_MAX);
	} else {
		FUZZ_CHECK(rc == SEALED_EFORMAT || rc == SEALED_EKEY || rc == SEALED_ECONTEXT ||
		           rc == SEALED_ESPACE);
		FUZZ_CHECK(len == 0);
		FUZZ_CHECK(fuzz_all_zero(out, sizeof(out)));
	}

	if (size <= SEALED_SECRET_MAX) {
		FUZZ_CHECK(sealed_seal(key_id, pk, &ctx, data, size, sealed, sizeof(sealed)) ==
		           SEALED_OK);
		FUZZ_CHECK(sealed_open(kr, sealed, &ctx, out, sizeof(out), &len) == SEALED_OK);
		FUZZ_CHECK(len == size && (size == 0 || memcmp(out, data, size) == 0));
		struct sealed_context other = ctx;
		other.row_id = "ep_01J0OTHER";
		FUZZ_CHECK(sealed_open(kr, sealed, &other, out, sizeof(out), &len) ==
		           SEALED_ECONTEXT);
	}
	return 0;
}
