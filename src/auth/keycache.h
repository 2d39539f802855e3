/*
 * keycache.h: the in-memory cache of verified keys on the hot path
 * (ARCHITECTURE.md "Keys on the hot path").
 *
 * An entry holds a copy of a key's row (never a plaintext secret) and
 * enters the cache only once bcrypt has accepted a secret for it: unknown
 * key ids and wrong secrets never take a place, so no flood of them can
 * push a verified key out (issue 9 item 1). The entry keeps
 * HMAC-SHA256(pepper, secret), with a per-process random pepper; later
 * requests compare that HMAC in constant time instead of running bcrypt. A
 * new hash (rotation) drops the verified HMAC, so the old secret fails from
 * the next request on. The HMAC is crypto/hmac.h's (nettle), keyed
 * once, so a MAC costs two SHA-256 compressions and no allocation.
 *
 * Bounded: at most max_entries (per stripe, max_entries / 64 + 1); a full
 * stripe drops its least recently used entry, in O(1). Thread-safe
 * (striped mutexes).
 */
#ifndef PORTCULLIS_AUTH_KEYCACHE_H
#define PORTCULLIS_AUTH_KEYCACHE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "store/store.h"

struct keycache;

enum keycache_result {
	KC_MISS = 0,   /* not cached: verify against the store's row */
	KC_VERIFIED,   /* the secret matches the cached verification */
	KC_UNVERIFIED, /* cached, but not with this secret: verify against the store's row */
};

/** A verification outcome: which stored hash the secret matched. */
enum keycache_slot { KC_SLOT_CURRENT = 0, KC_SLOT_PREVIOUS = 1 };

struct keycache *keycache_create(size_t max_entries);
void keycache_destroy(struct keycache *kc);

/** HMAC-SHA256 of a presented secret under this process's pepper. */
void keycache_secret_mac(struct keycache *kc, const char *secret, size_t len, uint8_t mac[32]);

/**
 * Look key_id up and compare mac with its verified secrets. On KC_VERIFIED
 * and KC_UNVERIFIED, *row gets a copy of the cached row. now_ms decides
 * whether a rotation grace period still holds. For a cached key,
 * *touched_at (when not NULL) gets the entry's last touch: until
 * KEYCACHE_TOUCH_INTERVAL_MS after it, keycache_touch_due is false, so the
 * caller can skip that second lookup.
 */
enum keycache_result keycache_check(struct keycache *kc, const char *key_id, const uint8_t mac[32],
                                    int64_t now_ms, struct store_key *row, int64_t *touched_at);

/**
 * The change generation of key_id's part of the cache: take it before
 * reading the row that keycache_put_verified will cache. Every
 * keycache_refresh, keycache_invalidate and keycache_clear moves it,
 * cached id or not.
 */
uint64_t keycache_generation(struct keycache *kc, const char *key_id);

/**
 * Cache row (read from the store after keycache_generation returned gen)
 * with the secret whose mac bcrypt accepted against hash, the row's hash in
 * slot. Refused (false, nothing changed) when a refresh or invalidation may
 * have happened since the read: the row may predate it, and caching it
 * would undo the change (a revocation). The caller reads again. A cached
 * row newer than row is kept (and the verification recorded only if its
 * hash in slot is still hash).
 */
bool keycache_put_verified(struct keycache *kc, const struct store_key *row, uint64_t gen,
                           enum keycache_slot slot, const char *hash, const uint8_t mac[32]);

/**
 * Replace a cached row after a change (keeps the verified secret only when
 * the hash is unchanged). When row->id is not cached, nothing is cached,
 * but a keycache_put_verified of a row read before this call is refused.
 */
void keycache_refresh(struct keycache *kc, const struct store_key *row);
/** Drop one entry, or everything (a put of a row read before is refused). */
void keycache_invalidate(struct keycache *kc, const char *key_id);
void keycache_clear(struct keycache *kc);

/** True when key_id is cached now. */
bool keycache_contains(struct keycache *kc, const char *key_id);

/** Up to cap cached (positive) key ids, for the background re-check. */
size_t keycache_ids(struct keycache *kc, char (*ids)[STORE_ID_LEN + 1], size_t cap);

/** keycache_touch_due's interval per key. */
#define KEYCACHE_TOUCH_INTERVAL_MS 60000

/**
 * True at most once a minute per key: the caller should record last_used_at.
 */
bool keycache_touch_due(struct keycache *kc, const char *key_id, int64_t now_ms);

#endif
