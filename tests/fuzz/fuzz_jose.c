/*
 * fuzz_jose.c: the parsers of what an OpenID provider sends, on the raw
 * input: jose_jws_verify (crypto/jose.h) against a fixed key set (the test
 * fixtures' RSA and P-256 keys), jose_jwks_parse, oidc_discovery_parse,
 * oidc_token_response and oidc_login_decode (console/oidc_proto.h;
 * the last reads the browser's cookie).
 *
 * Checks: nothing verifies under the fixed keys (the fuzzer cannot forge)
 * unless the input is one of the seed tokens, and a refused token fills in
 * nothing; a parsed key set has 1 to JOSE_JWKS_MAX_KEYS keys; a parsed
 * discovery document has https endpoints; a decoded login encodes back to
 * the same bytes.
 */
#include "fuzz.h"

#include <stdbool.h>
#include <string.h>

#include "console/oidc_proto.h"
#include "crypto/jose.h"

/* tests/unit/fixtures/jose.json's public keys. */
static const char jwks_text[] =
    "{\"keys\":[{\"kty\":\"RSA\",\"kid\":\"rsa-1\",\"use\":\"sig\",\"alg\":\"RS256\",\"n\":\"3U_"
    "suDkkAdOJvw69zCv2IQA-"
    "SMUuLSFL3wXCvd4UTxS4TunzIpMu1KyV6SeA9FkK32CeOjTaxxd1yRJXCk1iyoY3xYe4ncv6Oemm5cQo9fUevQ0fDBSGwn"
    "zqhVoxS3Wwr0iky2vk95yJVAMQLGr3qbY7DGHXulvKA0JKKCLvPskMRLTTlH8MRk30C5d16w4tjqxcg3VZymB7W7UAU2Yj"
    "ma6gdp077CixwtWQUFJq3c2pRJKvTrcN9B6O3lQVvSm9ATStoJiQ6uR5sJJm0EHPgBoPsDvro4mO3hjs5FcqRv7qFW7eD3"
    "uWFT8ZRBeOFYyFQc6aHJrwm69u8ugRJIbD6Q\",\"e\":\"AQAB\"},{\"kty\":\"EC\",\"kid\":\"ec-1\","
    "\"use\":\"sig\",\"alg\":\"ES256\",\"crv\":\"P-256\",\"x\":\"Ghj6QVVCvX20zuCJt_"
    "Odat0sy11WvgMuK2tNRah1zOo\",\"y\":\"55_d4ZxYbGewC20wYN7PhT2rkNA1Mn8XegJxOYFZRh0\"}]}";

/* The fixtures' tokens signed by those keys: the only inputs that may verify. */
static const char *const signed_tokens[] = {
    "eyJhbGciOiJSUzI1NiIsImtpZCI6InJzYS0xIiwidHlwIjoiSldUIn0."
    "eyJpc3MiOiJodHRwczovL29wLmV4YW1wbGUiLCJzdWIiOiIyNDgyODk3NjEwMDEiLCJhdWQiOiJwb3J0Y3VsbGlzIiwiZX"
    "hwIjo0MTAyNDQ0ODAwLCJpYXQiOjE3NjcyMjU2MDAsIm5vbmNlIjoibi0wUzZfV3pBMk1qIn0."
    "1DV2GWZVvXoM1YweRNxbXoxLcEFRpC2WmNu0dhIJLK0Pg51vVIeb65SqlYpB8wNATS99jrFlozKM7r_vXEiRxw3Dl_"
    "7UJshXFYRweIsN1B9xa485ziI6WUdX9h3qKuLGjjaiq_m4D_3e-AIMU4h5Gj_4hIC4ofM1DhmHh-yhX8k7GEA8-"
    "aaFVwockuktoVMUdJ27fW1D3B7hZppkRw0vAyqLNrR3P9GZKk24Yp8UN7ruz2XsnYYMvzQttGIgJYo5OkQjj4yq6Gqly2L"
    "bNZfGeNwOyip-kY_BHoPhs6o53A68UMdCdkfJBjwZoVC9kwPtpbLM65SiPr8snWV8OCwOJA",
    "eyJhbGciOiJFUzI1NiIsImtpZCI6ImVjLTEiLCJ0eXAiOiJKV1QifQ."
    "eyJpc3MiOiJodHRwczovL29wLmV4YW1wbGUiLCJzdWIiOiIyNDgyODk3NjEwMDEiLCJhdWQiOiJwb3J0Y3VsbGlzIiwiZX"
    "hwIjo0MTAyNDQ0ODAwLCJpYXQiOjE3NjcyMjU2MDAsIm5vbmNlIjoibi0wUzZfV3pBMk1qIn0."
    "wIuSIQKh4HLrQ4TjjxLgmcvjeeqjgb7G2Inz8NEWxcd54eGat8X2dR3oqYNa369ER7ABknmqjL_60a3xhP3-cQ",
};

static struct jose_jwks *keys;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	char err[128];
	(void)argc;
	(void)argv;
	if (jose_jwks_parse(jwks_text, sizeof jwks_text - 1, &keys, err, sizeof err) != JOSE_OK)
		abort();
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *text = (const char *)data;
	struct jose_verified v;
	struct jose_jwks *set = NULL;
	struct oidc_discovery *d = malloc(sizeof(*d));
	struct oidc_login l;
	char kid[JOSE_KID_MAX + 1];
	char err[256];
	char tok[1024];

	int rc = jose_jws_verify(text, size, keys, &v, kid);
	if (rc == JOSE_OK) {
		/* Only the fixtures' own signed tokens (the seeds) verify. */
		bool seed = false;
		for (size_t i = 0; i < 2; i++)
			seed = seed || (strlen(signed_tokens[i]) == size &&
			                memcmp(signed_tokens[i], text, size) == 0);
		FUZZ_CHECK(seed && v.payload && v.header);
	} else {
		FUZZ_CHECK(!v.payload && !v.header);
	}
	jose_verified_clear(&v);
	FUZZ_CHECK(strlen(kid) <= JOSE_KID_MAX);

	if (jose_jwks_parse(text, size, &set, err, sizeof err) == JOSE_OK)
		FUZZ_CHECK(jose_jwks_count(set) >= 1 && jose_jwks_count(set) <= JOSE_JWKS_MAX_KEYS);
	else
		FUZZ_CHECK(set == NULL);
	jose_jwks_free(set);

	if (oidc_discovery_parse(text, size, "https://op.example", d, err, sizeof err) == OIDC_OK)
		FUZZ_CHECK(strncmp(d->token_endpoint, "https://", 8) == 0 &&
		           strncmp(d->jwks_uri, "https://", 8) == 0 &&
		           strncmp(d->authorization_endpoint, "https://", 8) == 0);
	free(d);

	char at[64];
	if (oidc_token_response(text, size, tok, sizeof tok, at, sizeof at) == OIDC_OK)
		FUZZ_CHECK(tok[0] != '\0' && strlen(tok) < sizeof tok && strlen(at) < sizeof at);
	else
		FUZZ_CHECK(tok[0] == '\0' && at[0] == '\0');

	if (oidc_login_decode(text, size, &l) == OIDC_OK) {
		char back[OIDC_LOGIN_TEXT_MAX];
		size_t n = oidc_login_encode(&l, back, sizeof back);
		FUZZ_CHECK(n == size && memcmp(back, text, size) == 0);
	}
	return 0;
}
