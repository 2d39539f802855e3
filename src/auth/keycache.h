/*
 * keycache.h: the in-memory key cache and verified-secret cache on the hot
 * path (ARCHITECTURE.md "Keys on the hot path", steps 2 to 5).
 *
 * An entry holds a copy of the key's row (never a plaintext secret) or marks
 * a key id the store does not know. Once bcrypt has accepted a secret for
 * the row's current hash, the entry keeps HMAC-SHA256(pepper, secret), with
 * a per-process random pepper; later requests compare that HMAC in constant
 * time instead of running bcrypt. A new hash (rotation) drops the verified
 * HMAC, so the old secret fails from the next request on. The HMAC is
 * nettle's (GnuTLS's own backend), keyed once, so a MAC costs two SHA-256
 * compressions and no allocation.
 *
 * Bounded: at most max_entries; when a stripe is full its oldest entry goes.
 * Thread-safe (striped mutexes).
 */
#ifndef PORTCULLIS_AUTH_KEYCACHE_H
#define PORTCULLIS_AUTH_KEYCACHE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "store/store.h"

struct keycache;

enum keycache_result {
	KC_MISS = 0,   /* not cached: load the row from the store */
	KC_UNKNOWN,    /* the store has no such key id (cached negative) */
	KC_VERIFIED,   /* the secret matches the cached verification */
	KC_UNVERIFIED, /* cached row, secret not verified yet: run bcrypt */
};

/** A verification outcome: which stored hash the secret matched. */
enum keycache_slot { KC_SLOT_CURRENT = 0, KC_SLOT_PREVIOUS = 1 };

struct keycache *keycache_create(size_t max_entries);
void keycache_destroy(struct keycache *kc);

/** HMAC-SHA256 of a presented secret under this process's pepper. */
void keycache_secret_mac(struct keycache *kc, const char *secret, size_t len, uint8_t mac[32]);

/**
 * Look key_id up and compare mac with its verified secrets. On any result
 * but KC_MISS, *row gets a copy of the cached row (for KC_UNKNOWN, zeroed).
 * now_ms decides whether a rotation grace period still holds. For a known
 * key, *touched_at (when not NULL) gets the entry's last touch: until
 * KEYCACHE_TOUCH_INTERVAL_MS after it, keycache_touch_due is false, so the
 * caller can skip that second lookup.
 */
enum keycache_result keycache_check(struct keycache *kc, const char *key_id, const uint8_t mac[32],
                                    int64_t now_ms, struct store_key *row, int64_t *touched_at);

/**
 * The change generation of key_id's part of the cache: take it before
 * reading the row that keycache_put will cache. Every keycache_refresh,
 * keycache_invalidate and keycache_clear moves it, cached id or not.
 */
uint64_t keycache_generation(struct keycache *kc, const char *key_id);

/**
 * Cache a row loaded from the store (row NULL: key_id is unknown), read
 * after keycache_generation returned gen. Refused (false, nothing cached)
 * when a refresh or invalidation may have happened since: the row may
 * predate it, and caching it would undo the change (a revocation). The
 * caller reads again.
 */
bool keycache_put(struct keycache *kc, const char *key_id, const struct store_key *row,
                  uint64_t gen);

/**
 * Remember that bcrypt accepted the secret with this mac against the hash
 * in slot. Ignored when the cached hash changed meanwhile (a rotation won).
 */
void keycache_mark_verified(struct keycache *kc, const char *key_id, const char *hash,
                            enum keycache_slot slot, const uint8_t mac[32]);

/**
 * Replace a cached row after a change (keeps the verified secret only when
 * the hash is unchanged). When key_id is not cached, nothing is cached, but
 * a keycache_put of a row read before this call is refused.
 */
void keycache_refresh(struct keycache *kc, const struct store_key *row);
/** Drop one entry, or everything. */
void keycache_invalidate(struct keycache *kc, const char *key_id);
void keycache_clear(struct keycache *kc);

/** Up to cap cached (positive) key ids, for the background re-check. */
size_t keycache_ids(struct keycache *kc, char (*ids)[STORE_ID_LEN + 1], size_t cap);

/** keycache_touch_due's interval per key. */
#define KEYCACHE_TOUCH_INTERVAL_MS 60000

/**
 * True at most once a minute per key: the caller should record last_used_at.
 */
bool keycache_touch_due(struct keycache *kc, const char *key_id, int64_t now_ms);

#endif
