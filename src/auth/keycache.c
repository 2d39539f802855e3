/*
 * keycache.c: striped hash table of verified key rows and their secret MACs
 * (see keycache.h). Each stripe has its own mutex, a bounded bucket array
 * (at least as many buckets as entries, so chains stay short) and a list in
 * use order whose tail is evicted.
 */
#include "auth/keycache.h"

#include "core/alloc.h"
#include "core/siphash.h"
#include "crypto/ct.h"
#include "crypto/hmac.h"
#include "crypto/random.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define STRIPES 64

struct entry {
	struct store_key row; /* row.id is the key id */
	bool verified[2];
	uint8_t mac[2][32];
	int64_t touched_at;
	size_t bucket;
	struct entry *next;                /* bucket chain */
	struct entry *lru_prev, *lru_next; /* use order: head most recent */
};

struct stripe {
	pthread_mutex_t lock;
	struct entry **buckets;
	size_t n_buckets, count, cap;
	struct entry *lru_head, *lru_tail;
	/*
	 * Moved by every refresh and invalidation of an id of this stripe
	 * (cached or not): a put whose row was read under an older generation
	 * may predate the change and is refused. Per stripe, so a change
	 * elsewhere seldom makes a verification read again.
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
	struct hmac_key *mac_base;
	struct stripe stripes[STRIPES];
};

struct keycache *keycache_create(size_t max_entries)
{
	struct keycache *kc = xcalloc(1, sizeof *kc);
	uint8_t pepper[32];
	crypto_random(pepper, sizeof pepper);
	kc->mac_base = hmac_key_create(pepper, sizeof pepper);
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
	hmac_key_destroy(kc->mac_base);
	free(kc);
}

void keycache_secret_mac(struct keycache *kc, const char *secret, size_t len, uint8_t mac[32])
{
	hmac_key_mac(kc->mac_base, secret, len, mac);
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
		if (strcmp(e->row.id, key_id) == 0)
			return e;
	return NULL;
}

/* ---- use order: O(1) list operations under the stripe lock ---- */

static void lru_unlink(struct stripe *s, struct entry *e)
{
	if (e->lru_prev)
		e->lru_prev->lru_next = e->lru_next;
	else
		s->lru_head = e->lru_next;
	if (e->lru_next)
		e->lru_next->lru_prev = e->lru_prev;
	else
		s->lru_tail = e->lru_prev;
	e->lru_prev = e->lru_next = NULL;
}

static void lru_push_front(struct stripe *s, struct entry *e)
{
	e->lru_prev = NULL;
	e->lru_next = s->lru_head;
	if (s->lru_head)
		s->lru_head->lru_prev = e;
	s->lru_head = e;
	if (!s->lru_tail)
		s->lru_tail = e;
}

static void lru_touch(struct stripe *s, struct entry *e)
{
	if (s->lru_head != e) {
		lru_unlink(s, e);
		lru_push_front(s, e);
	}
}

/* Take e out of its bucket (a short chain) and the use order, and free it. */
static void remove_entry(struct stripe *s, struct entry *e)
{
	for (struct entry **pp = &s->buckets[e->bucket]; *pp; pp = &(*pp)->next)
		if (*pp == e) {
			*pp = e->next;
			break;
		}
	lru_unlink(s, e);
	s->count--;
	free_entry(e);
}

enum keycache_result keycache_check(struct keycache *kc, const char *key_id, const uint8_t mac[32],
                                    int64_t now_ms, struct store_key *row, int64_t *touched_at)
{
	size_t b;
	struct stripe *s = stripe_of(kc, key_id, &b);
	enum keycache_result r = KC_MISS;
	pthread_mutex_lock(&s->lock);
	struct entry *e = find(s, b, key_id);
	if (e) {
		*row = e->row;
		if (touched_at)
			*touched_at = e->touched_at;
		/* Compare both slots always: the time must not depend on which matched. */
		bool cur = ct_equal(e->mac[0], mac, 32) & e->verified[0];
		bool prev = ct_equal(e->mac[1], mac, 32) & e->verified[1] &
		            (e->row.prev_expires_at > now_ms);
		r = (cur | prev) ? KC_VERIFIED : KC_UNVERIFIED;
		lru_touch(s, e);
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
	if (e->verified[0] && row->prev_secret_hash[0] &&
	    ct_streq(e->row.secret_hash, row->prev_secret_hash)) {
		memcpy(e->mac[1], e->mac[0], 32);
		e->verified[1] = true;
		memcpy(e->row.prev_secret_hash, row->prev_secret_hash,
		       sizeof e->row.prev_secret_hash);
	}
	if (!ct_streq(e->row.secret_hash, row->secret_hash))
		e->verified[0] = false;
	if (!ct_streq(e->row.prev_secret_hash, row->prev_secret_hash))
		e->verified[1] = false;
	e->row = *row;
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

bool keycache_put_verified(struct keycache *kc, const struct store_key *row, uint64_t gen,
                           enum keycache_slot slot, const char *hash, const uint8_t mac[32])
{
	size_t b;
	struct stripe *s = stripe_of(kc, row->id, &b);
	pthread_mutex_lock(&s->lock);
	if (s->gen != gen) { /* changed since the row was read: it may be stale */
		pthread_mutex_unlock(&s->lock);
		return false;
	}
	struct entry *e = find(s, b, row->id);
	if (!e) {
		if (s->count >= s->cap && s->lru_tail)
			remove_entry(s, s->lru_tail);
		e = xcalloc(1, sizeof *e);
		e->row = *row;
		e->bucket = b;
		e->next = s->buckets[b];
		s->buckets[b] = e;
		s->count++;
		lru_push_front(s, e);
	} else if (row->version >= e->row.version) {
		set_row(e, row);
		lru_touch(s, e);
	}
	/* else a verification that read the row before a change lost the race: keep the newer */
	const char *cached = slot == KC_SLOT_CURRENT ? e->row.secret_hash : e->row.prev_secret_hash;
	if (cached[0] && ct_streq(cached, hash)) {
		memcpy(e->mac[slot], mac, 32);
		e->verified[slot] = true;
	}
	pthread_mutex_unlock(&s->lock);
	return true;
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
	struct entry *e = find(s, b, key_id);
	if (e)
		remove_entry(s, e);
	pthread_mutex_unlock(&s->lock);
}

void keycache_clear(struct keycache *kc)
{
	for (int i = 0; i < STRIPES; i++) {
		struct stripe *s = &kc->stripes[i];
		pthread_mutex_lock(&s->lock);
		struct entry *e = s->lru_head;
		while (e) {
			struct entry *next = e->lru_next;
			free_entry(e);
			e = next;
		}
		memset(s->buckets, 0, s->n_buckets * sizeof(struct entry *));
		s->lru_head = s->lru_tail = NULL;
		s->count = 0;
		s->gen++;
		pthread_mutex_unlock(&s->lock);
	}
}

bool keycache_contains(struct keycache *kc, const char *key_id)
{
	size_t b;
	struct stripe *s = stripe_of(kc, key_id, &b);
	pthread_mutex_lock(&s->lock);
	bool found = find(s, b, key_id) != NULL;
	pthread_mutex_unlock(&s->lock);
	return found;
}

size_t keycache_ids(struct keycache *kc, char (*ids)[STORE_ID_LEN + 1], size_t cap)
{
	size_t n = 0;
	for (int i = 0; i < STRIPES && n < cap; i++) {
		struct stripe *s = &kc->stripes[i];
		pthread_mutex_lock(&s->lock);
		for (struct entry *e = s->lru_head; e && n < cap; e = e->lru_next)
			memcpy(ids[n++], e->row.id, STORE_ID_LEN + 1);
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
	if (e && now_ms - e->touched_at >= KEYCACHE_TOUCH_INTERVAL_MS) {
		e->touched_at = now_ms;
		due = true;
	}
	pthread_mutex_unlock(&s->lock);
	return due;
}
