/*
 * fuzz_keyfmt.c: keyfmt_parse (auth/keyfmt.h) on arbitrary bytes, the parser
 * every authenticated request runs on the client's key.
 *
 * The input is parsed as it is, not NUL-terminated (libFuzzer's buffer is
 * exactly size bytes, so ASan catches any read past len), once without an
 * expected prefix, once with the default "pcl" and once with the prefix the
 * input itself seems to carry. A failed parse must leave *out zeroed; a
 * successful one must give parts that pass their own validators and rebuild
 * into exactly the input bytes.
 */
#include "fuzz.h"

#include <string.h>

#include "auth/keyfmt.h"

static void check_parts(const uint8_t *data, size_t size, const struct api_key_parts *p)
{
	char key[KEYFMT_MAX_LEN + 1];
	char sum[KEYFMT_CHECKSUM_LEN + 1];
	const char *env = key_env_name(p->env);
	size_t plen = strnlen(p->prefix, sizeof(p->prefix));

	FUZZ_CHECK(plen >= KEYFMT_PREFIX_MIN && plen <= KEYFMT_PREFIX_MAX);
	FUZZ_CHECK(keyfmt_prefix_valid(p->prefix));
	FUZZ_CHECK(env != NULL);
	FUZZ_CHECK(strnlen(p->key_id, sizeof(p->key_id)) == KEYFMT_KEY_ID_LEN);
	FUZZ_CHECK(keyfmt_key_id_valid(p->key_id, KEYFMT_KEY_ID_LEN));
	FUZZ_CHECK(strnlen(p->secret, sizeof(p->secret)) == KEYFMT_SECRET_LEN);
	keyfmt_checksum(p->secret, KEYFMT_RANDOM_LEN, sum);
	FUZZ_CHECK(memcmp(sum, p->secret + KEYFMT_RANDOM_LEN, KEYFMT_CHECKSUM_LEN) == 0);
	FUZZ_CHECK(size == KEYFMT_LEN(plen));

	int n = snprintf(key, sizeof(key), "%s_%s_%s.%s", p->prefix, env, p->key_id, p->secret);
	FUZZ_CHECK(n > 0 && (size_t)n == size);
	FUZZ_CHECK(memcmp(key, data, size) == 0);
	explicit_bzero(key, sizeof(key));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *s = (const char *)data;
	struct api_key_parts parts, with;
	char guess[KEYFMT_PREFIX_MAX + 2];
	size_t g = 0;

	int rc = keyfmt_parse(s, size, NULL, &parts);
	FUZZ_CHECK(rc == 0 || rc == -1);
	if (rc == 0)
		check_parts(data, size, &parts);
	else
		FUZZ_CHECK(fuzz_all_zero(&parts, sizeof(parts)));

	/* The configured default prefix. */
	int rc_pcl = keyfmt_parse(s, size, "pcl", &with);
	FUZZ_CHECK(rc_pcl == (rc == 0 && strcmp(parts.prefix, "pcl") == 0 ? 0 : -1));
	if (rc_pcl != 0)
		FUZZ_CHECK(fuzz_all_zero(&with, sizeof(with)));
	explicit_bzero(&with, sizeof(with));

	/* Whatever precedes the first '_' (up to 9 bytes, so too-long prefixes
	 * are tried too): must match exactly when the key parsed. */
	while (g < size && g < sizeof(guess) - 1 && data[g] != '_') {
		guess[g] = (char)data[g];
		g++;
	}
	guess[g] = '\0';
	int rc_guess = keyfmt_parse(s, size, guess, &with);
	if (rc == 0)
		FUZZ_CHECK(rc_guess == (strcmp(parts.prefix, guess) == 0 ? 0 : -1));
	else
		FUZZ_CHECK(rc_guess == -1);
	if (rc_guess == 0)
		FUZZ_CHECK(memcmp(&with, &parts, sizeof(parts)) == 0);
	else
		FUZZ_CHECK(fuzz_all_zero(&with, sizeof(with)));

	explicit_bzero(&parts, sizeof(parts));
	explicit_bzero(&with, sizeof(with));
	return 0;
}
