/*
 * keycache.c: striped hash table of key rows and verified-secret MACs (see
 * keycache.h). Each stripe has its own mutex and a bounded chain array.
 */
#include "auth/keycache.h"

#include "core/alloc.h"
#include "core/clock.h"
#include "core/siphash.h"
#include "crypto/ct.h"
#include "crypto/random.h"

#include <nettle/hmac.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define STRIPES         64
#define NEGATIVE_TTL_MS 30000

struct entry {
	char key_id[STORE_ID_LEN + 1];
	bool known;
	struct store_key row;
	bool verified[2];
	uint8_t mac[2][32];
	int64_t cached_at; /* monotonic-free: wall ms, for negative TTL and eviction */
	int64_t touched_at;
	struct entry *next;
};

struct stripe {
	pthread_mutex_t lock;
	struct entry **buckets;
	size_t n_buckets, count, cap;
	/*
	 * Moved by every refresh and invalidation of an id of this stripe
	 * (cached or not): a put whose row was read under an older generation
	 * may predate the change and is refused. Per stripe, so a change
	 * elsewhere seldom makes a lookup read again.
	 */
	uint64_t gen;
};

struct keycache {
	/*
	 * HMAC-SHA256 keyed once with the random pepper (the pepper itself is
	 * not kept): each MAC starts from a copy, which saves the two
	 * compressions of the key schedule per request. Read-only after
	 * keycache_create, so copies need no lock.
	 */
	struct hmac_sha256_ctx mac_base;
	struct stripe stripes[STRIPES];
};

struct keycache *keycache_create(size_t max_entries)
{
	struct keycache *kc = xcalloc(1, sizeof *kc);
	uint8_t pepper[32];
	crypto_random(pepper, sizeof pepper);
	hmac_sha256_set_key(&kc->mac_base, sizeof pepper, pepper);
	explicit_bzero(pepper, sizeof pepper);
	size_t per = max_entries / STRIPES + 1;
	for (int i = 0; i < STRIPES; i++) {
		struct stripe *s = &kc->stripes[i];
		pthread_mutex_init(&s->lock, NULL);
		s->cap = per;
		s->n_buckets = per < 16 ? 16 : per;
		s->buckets = xcalloc(s->n_buckets, sizeof(struct entry *));
	}
	return kc;
}

static void free_entry(struct entry *e)
{
	explicit_bzero(e, sizeof *e);
	free(e);
}

void keycache_destroy(struct keycache *kc)
{
	if (!kc)
		return;
	keycache_clear(kc);
	for (int i = 0; i < STRIPES; i++) {
		pthread_mutex_destroy(&kc->stripes[i].lock);
		free(kc->stripes[i].buckets);
	}
	explicit_bzero(&kc->mac_base, sizeof kc->mac_base);
	free(kc);
}

void keycache_secret_mac(struct keycache *kc, const char *secret, size_t len, uint8_t mac[32])
{
	struct hmac_sha256_ctx c = kc->mac_base;
	hmac_sha256_update(&c, len, (const uint8_t *)secret);
	hmac_sha256_digest(&c, SHA256_DIGEST_SIZE, mac);
	explicit_bzero(&c, sizeof c); /* its buffer held the secret */
}

static struct stripe *stripe_of(struct keycache *kc, const char *key_id, size_t *bucket)
{
	uint64_t h = str_hash(key_id);
	struct stripe *s = &kc->stripes[h % STRIPES];
	*bucket = (size_t)((h / STRIPES) % s->n_buckets);
	return s;
}

static struct entry *find(struct stripe *s, size_t b, const char *key_id)
{
	for (struct entry *e = s->buckets[b]; e; e = e->next)
		if (strcmp(e->key_id, key_id) == 0)
			return e;
	return NULL;
}

static void unlink_entry(struct stripe *s, struct entry *victim)
{
	for (size_t b = 0; b < s->n_buckets; b++)
		for (struct entry **pp = &s->buckets[b]; *pp; pp = &(*pp)->next)
			if (*pp == victim) {
				*pp = victim->next;
				s->count--;
				return;
			}
}

static void evict_oldest(struct stripe *s)
{
	struct entry *oldest = NULL;
	for (size_t b = 0; b < s->n_buckets; b++)
		for (struct entry *e = s->buckets[b]; e; e = e->next)
			if (!oldest || e->cached_at < oldest->cached_at)
				oldest = e;
	if (oldest) {
		unlink_entry(s, oldest);
		free_entry(oldest);
	}
}

enum keycache_result keycache_check(struct keycache *kc, const char *key_id, const uint8_t mac[32],
                                    int64_t now_ms, struct store_key *row, int64_t *touched_at)
{
	size_t b;
	struct stripe *s = stripe_of(kc, key_id, &b);
	enum keycache_result r = KC_MISS;
	pthread_mutex_lock(&s->lock);
	struct entry *e = find(s, b, key_id);
	if (e && !e->known && now_ms - e->cached_at > NEGATIVE_TTL_MS)
		e = NULL; /* stale negative: look again */
	if (e) {
		if (!e->known) {
			memset(row, 0, sizeof *row);
			r = KC_UNKNOWN;
		} else {
			*row = e->row;
			if (touched_at)
				*touched_at = e->touched_at;
			/* Compare both slots always: the time must not depend on which matched. */
			bool cur = ct_equal(e->mac[0], mac, 32) & e->verified[0];
			bool prev = ct_equal(e->mac[1], mac, 32) & e->verified[1] &
			            (e->row.prev_expires_at > now_ms);
			r = (cur | prev) ? KC_VERIFIED : KC_UNVERIFIED;
		}
	}
	pthread_mutex_unlock(&s->lock);
	return r;
}

/*
 * Give e a new row, keeping a verified secret only while the hash it was
 * verified against is still the row's (compared in constant time: hashes
 * are secret-derived). After a rotation with grace the old current secret
 * lives on as the previous one, and so does its verification.
 */
static void set_row(struct entry *e, const struct store_key *row)
{
	if (e->known && e->verified[0] && row->prev_secret_hash[0] &&
	    ct_streq(e->row.secret_hash, row->prev_secret_hash)) {
		memcpy(e->mac[1], e->mac[0], 32);
		e->verified[1] = true;
		memcpy(e->row.prev_secret_hash, row->prev_secret_hash,
		       sizeof e->row.prev_secret_hash);
	}
	if (!e->known || !ct_streq(e->row.secret_hash, row->secret_hash))
		e->verified[0] = false;
	if (!e->known || !ct_streq(e->row.prev_secret_hash, row->prev_secret_hash))
		e->verified[1] = false;
	e->known = true;
	e->row = *row;
	e->cached_at = clock_now_ms();
}

uint64_t keycache_generation(struct keycache *kc, const char *key_id)
{
	size_t b;
	struct stripe *s = stripe_of(kc, key_id, &b);
	pthread_mutex_lock(&s->lock);
	uint64_t gen = s->gen;
	pthread_mutex_unlock(&s->lock);
	return gen;
}

bool keycache_put(struct keycache *kc, const char *key_id, const struct store_key *row,
                  uint64_t gen)
{
	size_t b;
	struct stripe *s = stripe_of(kc, key_id, &b);
	pthread_mutex_lock(&s->lock);
	if (s->gen != gen) { /* changed since the row was read: it may be stale */
		pthread_mutex_unlock(&s->lock);
		return false;
	}
	struct entry *e = find(s, b, key_id);
	if (!e) {
		if (s->count >= s->cap)
			evict_oldest(s);
		e = xcalloc(1, sizeof *e);
		snprintf(e->key_id, sizeof e->key_id, "%s", key_id);
		e->next = s->buckets[b];
		s->buckets[b] = e;
		s->count++;
	} else if (row && e->known && row->version < e->row.version) {
		/* A lookup that read the row before a change lost the race: keep the newer. */
		pthread_mutex_unlock(&s->lock);
		return true;
	}
	if (row) {
		set_row(e, row);
	} else { /* the store has no such key id */
		e->known = false;
		e->verified[0] = e->verified[1] = false;
		memset(&e->row, 0, sizeof e->row);
		e->cached_at = clock_now_ms();
	}
	pthread_mutex_unlock(&s->lock);
	return true;
}

void keycache_mark_verified(struct keycache *kc, const char *key_id, const char *hash,
                            enum keycache_slot slot, const uint8_t mac[32])
{
	size_t b;
	struct stripe *s = stripe_of(kc, key_id, &b);
	pthread_mutex_lock(&s->lock);
	struct entry *e = find(s, b, key_id);
	const char *cached =
	    e && e->known ? (slot == KC_SLOT_CURRENT ? e->row.secret_hash : e->row.prev_secret_hash)
	                  : NULL;
	if (cached && ct_streq(cached, hash)) {
		memcpy(e->mac[slot], mac, 32);
		e->verified[slot] = true;
	}
	pthread_mutex_unlock(&s->lock);
}

void keycache_refresh(struct keycache *kc, const struct store_key *row)
{
	size_t b;
	struct stripe *s = stripe_of(kc, row->id, &b);
	pthread_mutex_lock(&s->lock);
	s->gen++;
	struct entry *e = find(s, b, row->id);
	if (e)
		set_row(e, row);
	pthread_mutex_unlock(&s->lock);
}

void keycache_invalidate(struct keycache *kc, const char *key_id)
{
	size_t b;
	struct stripe *s = stripe_of(kc, key_id, &b);
	pthread_mutex_lock(&s->lock);
	s->gen++;
	for (struct entry **pp = &s->buckets[b]; *pp; pp = &(*pp)->next) {
		if (strcmp((*pp)->key_id, key_id) == 0) {
			struct entry *e = *pp;
			*pp = e->next;
			s->count--;
			free_entry(e);
			break;
		}
	}
	pthread_mutex_unlock(&s->lock);
}

void keycache_clear(struct keycache *kc)
{
	for (int i = 0; i < STRIPES; i++) {
		struct stripe *s = &kc->stripes[i];
		pthread_mutex_lock(&s->lock);
		for (size_t b = 0; b < s->n_buckets; b++) {
			struct entry *e = s->buckets[b];
			while (e) {
				struct entry *next = e->next;
				free_entry(e);
				e = next;
			}
			s->buckets[b] = NULL;
		}
		s->count = 0;
		s->gen++;
		pthread_mutex_unlock(&s->lock);
	}
}

size_t keycache_ids(struct keycache *kc, char (*ids)[STORE_ID_LEN + 1], size_t cap)
{
	size_t n = 0;
	for (int i = 0; i < STRIPES && n < cap; i++) {
		struct stripe *s = &kc->stripes[i];
		pthread_mutex_lock(&s->lock);
		for (size_t b = 0; b < s->n_buckets && n < cap; b++)
			for (struct entry *e = s->buckets[b]; e && n < cap; e = e->next)
				if (e->known)
					memcpy(ids[n++], e->key_id, STORE_ID_LEN + 1);
		pthread_mutex_unlock(&s->lock);
	}
	return n;
}

bool keycache_touch_due(struct keycache *kc, const char *key_id, int64_t now_ms)
{
	size_t b;
	struct stripe *s = stripe_of(kc, key_id, &b);
	bool due = false;
	pthread_mutex_lock(&s->lock);
	struct entry *e = find(s, b, key_id);
	if (e && e->known && now_ms - e->touched_at >= KEYCACHE_TOUCH_INTERVAL_MS) {
		e->touched_at = now_ms;
		due = true;
	}
	pthread_mutex_unlock(&s->lock);
	return due;
}
