/*
 * store_secrets.h: the instance's sealed-secret public keys (the registry
 * behind crypto/sealed.h) and the sealed columns they protect. Same rules as
 * store.h: blocking calls, thread-safe, STORE_OK or a negative STORE_E*,
 * every value bound, both dialects.
 *
 * The store holds only public keys (migrations/0005_secrets.sql); the private
 * keys live in the `[secrets] private_key_file`, which only the background
 * tier and the `portcullis secrets` commands open. New secrets are sealed to
 * the current key: the newest one not retired. A rotation adds a key; rewrap
 * re-seals every sealed column to the current key; retire marks an old key
 * retired once nothing is sealed to it.
 *
 * The sealed columns are a const table in store_secrets.c
 * (webhook_endpoints.secret and .prev_secret, capi_configs.access_token,
 * event_adids.adid_sealed); each value's context is
 * (table, column, the row's id, the row's org id), except that a previous
 * secret keeps the "secret" context it was sealed with before its rotation
 * (rewrap opens it under either and re-seals it for the one it carries).
 */
#ifndef PORTCULLIS_STORE_STORE_SECRETS_H
#define PORTCULLIS_STORE_STORE_SECRETS_H

#include "crypto/sealed.h"
#include "store/store.h"

#include <stddef.h>
#include <stdint.h>

/** Default rows re-sealed per transaction by store_secrets_rewrap. */
#define STORE_REWRAP_BATCH 100

struct store_secret_key {
	char key_id[SEALED_KEY_ID_LEN + 1];
	uint8_t public_key[SEALED_PK_LEN];
	int64_t created_at; /* ms; strictly increasing in the order keys were added */
	int64_t retired_at; /* ms, -1 while in use */
};

/**
 * Register the public key pk under key_id (which must be sealed_key_id(pk):
 * STORE_ERROR otherwise) as the newest key, with the audit event a (NULL:
 * none) in the same transaction. STORE_ECONFLICT when key_id is known.
 */
int store_secret_key_add(struct store *st, const char *key_id, const uint8_t pk[SEALED_PK_LEN],
                         const struct audit_input *a);

/**
 * The current key: the newest not retired. STORE_ENOTFOUND when the instance
 * has no key pair (then nothing can be sealed).
 */
int store_secret_key_current(struct store *st, char key_id[SEALED_KEY_ID_LEN + 1],
                             uint8_t pk[SEALED_PK_LEN]);

/** Every key, retired ones too, oldest first, into a malloc'd array (*out, *n; free()). */
int store_secret_key_list(struct store *st, struct store_secret_key **out, int *n);

/**
 * Mark key_id retired, with the audit event a (NULL: none). STORE_ENOTFOUND
 * for an unknown or already retired key; STORE_ECONFLICT when it is the
 * current key (rotate first) or any sealed column still holds a value sealed
 * to it (rewrap first). Checked and written in one transaction.
 */
int store_secret_key_retire(struct store *st, const char *key_id, const struct audit_input *a);

/**
 * Seal the len bytes at secret for ctx to the current key, into out (cap
 * bytes; STORE_WH_SEALED_MAX + 1 suffices for an endpoint secret). The public
 * key is read from the store on every call, so a rotation applies at once.
 * STORE_ENOTFOUND when the instance has no key pair; STORE_ERROR for a bad
 * context, a secret over SEALED_SECRET_MAX or too small a cap.
 */
int store_secret_seal(struct store *st, const struct sealed_context *ctx, const uint8_t *secret,
                      size_t len, char *out, size_t cap);

/** What store_secrets_rewrap did. */
struct store_rewrap_stats {
	int64_t rewrapped;     /* values re-sealed to the current key */
	int64_t changed;       /* values changed by someone else meanwhile (left as they were) */
	int64_t failed;        /* values that would not open with kr (left as they were) */
	char first_failed[96]; /* "<table>.<column> <row id>" of the first failure, or "" */
};

/**
 * Re-seal every sealed value that is not sealed to the current key, opening
 * it with kr (the private key file) and checking its context. Rows are read
 * in pages of batch rows (<= 0: STORE_REWRAP_BATCH) and each page is written
 * in its own short transaction, compare-and-set on the old value, so writes
 * are never blocked for long and a value changed meanwhile is left alone.
 * A value that does not open is counted in stats->failed and left alone.
 * STORE_ENOTFOUND without a current key; STORE_ECONFLICT when kr lacks the
 * current key's private key (the rewrapped values could not be opened).
 * Plaintexts are wiped.
 */
int store_secrets_rewrap(struct store *st, const struct sealed_keyring *kr, int batch,
                         struct store_rewrap_stats *stats);

/** How many sealed values are sealed to key_id, over every sealed column, into *count. */
int store_secrets_count_for_key(struct store *st, const char *key_id, int64_t *count);

#endif
