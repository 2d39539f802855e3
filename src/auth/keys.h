/*
 * keys.h: issuing API keys (create and rotate) and rendering key objects.
 * The plaintext key exists only in the caller's buffer for the one response
 * (or CLI line) that shows it; only its bcrypt hash reaches the store.
 */
#ifndef PORTCULLIS_AUTH_KEYS_H
#define PORTCULLIS_AUTH_KEYS_H

#include <jansson.h>

#include "auth/keyfmt.h"
#include "store/store.h"

/** What a new key should be. */
struct key_spec {
	const char *org_id;     /* NULL for root keys */
	const char *project_id; /* may be NULL */
	const char *name;
	enum key_env env;
	const char *scopes; /* space-separated, already validated */
	int64_t expires_at; /* -1: never */
};

/**
 * Create a key: new ULID, fresh secret, bcrypt hash at cost, one store
 * transaction with the audit event a (action api_key.created is filled in
 * when a->action is NULL). The plaintext goes to key_out (KEYFMT_MAX_LEN+1)
 * and the stored row to row_out. Blocks for the bcrypt time.
 */
int keys_create(struct store *st, const char *prefix, int cost, const struct key_spec *spec,
                const struct audit_input *a, char *key_out, size_t cap, struct store_key *row_out);

/**
 * Rotate: a new secret for the same key id (shown once in key_out); the
 * old secret stays valid for grace_seconds (0: fails from the next request).
 */
int keys_rotate(struct store *st, const char *prefix, int cost, struct store_key *row,
                int64_t grace_seconds, const struct audit_input *a, char *key_out, size_t cap);

/**
 * The data of a key's webhook events (api_key.created, ...): key_id, start,
 * org_id, project_id (or null), name. Never a secret or hash. Caller decrefs.
 */
json_t *keys_event_data(const struct store_key *k);

/**
 * A key's status at now (ms): "revoked", "killed" (killed: a kill switch
 * covers it, the key's own, its organisation's or the global one, as the
 * caller decides), "expired" or "active", the first that holds.
 */
const char *keys_status(const struct store_key *k, bool killed, int64_t now);

/** The docs/contract.md key object for a row and its kill switch (may be NULL). */
json_t *keys_to_json(const struct store_key *k, const struct store_kill *kill);

/** True when every space-separated scope in s is a known scope. */
bool keys_scopes_valid(const char *s);
/** True when have (space-separated) contains scope. */
bool keys_has_scope(const char *have, const char *scope);
/** True when have contains every scope of want (both space-separated). */
bool keys_has_all_scopes(const char *have, const char *want);

#endif
