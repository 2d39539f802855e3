/*
 * keyfmt.h: the API key format (see docs/contract.md, "API keys"):
 *
 *	{prefix}_{env}_{key_id}.{secret}
 *	^[a-z]{2,8}_(live|test|root)_[0-9A-HJKMNP-TV-Z]{26}\.[0-9A-Za-z]{49}$
 *
 * key_id is a ULID (first character 0-7). The secret is 43 random base62
 * characters followed by 6 base62 digits (most significant first, zero
 * padded) of the CRC-32 of those 43 characters, GitHub's token construction.
 * The checksum only catches typos and lets secret scanners recognise keys;
 * authenticity comes from the bcrypt hash of the secret.
 *
 * Pure string handling: no I/O, no allocation, thread-safe.
 */
#ifndef PORTCULLIS_AUTH_KEYFMT_H
#define PORTCULLIS_AUTH_KEYFMT_H

#include <stdbool.h>
#include <stddef.h>

#define KEYFMT_PREFIX_MIN   2
#define KEYFMT_PREFIX_MAX   8
#define KEYFMT_ENV_LEN      4
#define KEYFMT_KEY_ID_LEN   26
#define KEYFMT_RANDOM_LEN   43
#define KEYFMT_CHECKSUM_LEN 6
#define KEYFMT_SECRET_LEN   (KEYFMT_RANDOM_LEN + KEYFMT_CHECKSUM_LEN)
/** Length of a key with a prefix of n characters (without NUL). */
#define KEYFMT_LEN(n) ((n) + 1 + KEYFMT_ENV_LEN + 1 + KEYFMT_KEY_ID_LEN + 1 + KEYFMT_SECRET_LEN)
/** Longest possible key, without the NUL (90); buffers need KEYFMT_MAX_LEN + 1. */
#define KEYFMT_MAX_LEN KEYFMT_LEN(KEYFMT_PREFIX_MAX)
/** Number of leading characters shown to identify a key ("start"). */
#define KEYFMT_START_LEN 12

/** The environment part of a key. */
enum key_env {
	KEY_ENV_LIVE, /**< "live": organisation key for production traffic */
	KEY_ENV_TEST, /**< "test": organisation key for testing */
	KEY_ENV_ROOT, /**< "root": operator key */
};

/** "live", "test" or "root"; NULL for a value outside the enum. */
const char *key_env_name(enum key_env env);

/** Parse exactly "live", "test" or "root" into *out. Returns 0, or -1 otherwise. */
int key_env_parse(const char *s, enum key_env *out);

/** A key split into its parts, each NUL-terminated. secret is sensitive: wipe it. */
struct api_key_parts {
	char prefix[KEYFMT_PREFIX_MAX + 1];
	enum key_env env;
	char key_id[KEYFMT_KEY_ID_LEN + 1];
	char secret[KEYFMT_SECRET_LEN + 1];
};

/** True when prefix (NUL-terminated) is a valid key prefix, [a-z]{2,8}. */
bool keyfmt_prefix_valid(const char *prefix);

/**
 * True when the len bytes at s are a key id: 26 Crockford base32 characters,
 * upper case, first one 0-7 (a ULID). For validating ids taken from URLs.
 */
bool keyfmt_key_id_valid(const char *s, size_t len);

/**
 * The key id a credential names even when it is not a valid key (a wrong
 * checksum, a cut secret): the 26 characters after its first "_live_",
 * "_test_" or "_root_" when they are a key id, copied to out. Returns 0, or
 * -1 when the len bytes at s name none. For the request log's record of
 * refused attempts only: it authenticates nothing.
 */
int keyfmt_named_key_id(const char *s, size_t len, char out[KEYFMT_KEY_ID_LEN + 1]);

/**
 * Parse and fully validate the len bytes at s (need not be NUL-terminated;
 * nothing past s[len - 1] is read). If expected_prefix is not NULL the key's
 * prefix must equal it. Returns 0 and fills *out, or -1 for any deviation
 * from the format (length, prefix, env, key id, separators, secret
 * characters, checksum, embedded NUL, trailing bytes); on -1 *out is zeroed.
 * O(len) with len bounded by KEYFMT_MAX_LEN; no allocation. The caller must
 * wipe out->secret when done.
 *
 * A -1 here says only that the string is not a well-formed key: it reveals
 * nothing about which keys exist, so callers may reject it before any store
 * lookup.
 */
int keyfmt_parse(const char *s, size_t len, const char *expected_prefix, struct api_key_parts *out);

/**
 * The 6-character checksum of the n characters at random: CRC-32 written as
 * 6 base62 digits, most significant first, zero padded; out is
 * NUL-terminated. ("zQWBuTSOoRi4A9spHcVY5ncnsDkxkJ" -> "0mLq17".)
 */
void keyfmt_checksum(const char *random, size_t n, char out[KEYFMT_CHECKSUM_LEN + 1]);

/**
 * Fill secret with a fresh secret: KEYFMT_RANDOM_LEN CSPRNG base62
 * characters, their checksum, and a NUL. Aborts (via crypto_random) only if
 * the CSPRNG fails. The caller must wipe it when done.
 */
void keyfmt_new_secret(char secret[KEYFMT_SECRET_LEN + 1]);

/**
 * Build a new key "{prefix}_{env}_{key_id}.{fresh secret}" into out (cap
 * bytes, at least KEYFMT_LEN(strlen(prefix)) + 1; KEYFMT_MAX_LEN + 1 always
 * suffices), NUL-terminated. If parts_out is not NULL it receives the parts
 * (including the secret). The caller makes the ULID key_id (26 characters,
 * NUL-terminated) and must wipe out and parts_out->secret when done.
 * Returns 0, or -1 (out and *parts_out untouched) when prefix, env or key_id
 * is invalid or cap is too small.
 */
int keyfmt_generate(const char *prefix, enum key_env env, const char *key_id, char *out, size_t cap,
                    struct api_key_parts *parts_out);

/**
 * The display "start" of a key: its first KEYFMT_START_LEN characters (fewer
 * if the key is shorter), NUL-terminated. Never reaches the secret, which
 * begins at offset 35 at the earliest.
 */
void keyfmt_start(const char *key, char out[KEYFMT_START_LEN + 1]);

#endif
