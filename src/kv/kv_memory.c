/*
 * kv_memory.c: the in-process kv backend, for one node. State dies with the
 * process, which is fine for rate limits and idempotency records on a single
 * gateway and is why several nodes need kv_redis.c instead.
 *
 * Storage: STRIPES independent hash tables (chained, SipHash with a random
 * per-process key so clients cannot force collisions), each behind its own
 * mutex; a key lives in the stripe chosen by its hash. Every entry carries a
 * deadline on the monotonic clock (now + TTL: a GCRA entry lives as long as
 * its TAT is ahead of the caller's now_ms, an idempotency record ttl_s).
 * Expired entries are dropped when touched (lazy expiry) and by an
 * incremental sweep that visits a few buckets on every operation, so memory
 * is reclaimed in proportion to traffic.
 *
 * Caps (from the URL, per process, split evenly over the stripes):
 *   max_entries (default 1M): entries of either kind. Memory is then at most
 *     max_entries * (sizeof(struct entry) + key) + max_bytes.
 *   max_bytes (default 256 MiB + 4 KiB, one largest record a stripe): stored
 *     response bodies and content types.
 * What happens at the cap:
 *   - A new entry first displaces expired ones, then the GCRA entry with the
 *     earliest deadline (sampled from a window of buckets, like Redis's
 *     volatile-ttl policy). Forgetting a TAT that is about to expire hands
 *     that key at most a fraction of one window of extra requests: the least
 *     harmful loss available.
 *   - Idempotency records (in flight or finished) are never evicted: losing
 *     one would let a request run twice. When no GCRA entry can make room,
 *     the operation fails with KV_EUNAVAILABLE and the caller decides
 *     (fail-open or closed), exactly as when Redis is down.
 *   - A finished response that would pass max_bytes is refused with
 *     KV_EUNAVAILABLE after a sweep of expired records; the caller releases
 *     its claim, so the client may retry.
 *
 * Notices: publish appends a copy to a bounded queue (NOTICE_QUEUE_MAX)
 * drained by one delivery thread started by subscribe; a full queue blocks
 * the publisher for at most PUBLISH_WAIT_MS, then gives KV_EUNAVAILABLE.
 * With no subscriber, notices are dropped (as with Redis PUBLISH).
 */
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/alloc.h"
#include "core/clock.h"
#include "core/siphash.h"
#include "core/thread.h"
#include "crypto/random.h"
#include "kv/gcra.h"
#include "kv/kv.h"
#include "kv/kv_internal.h"

#define STRIPES             16
#define STRIPE_SHIFT        60 /* top 4 bits of the hash pick the stripe */
#define INITIAL_BUCKETS     16
#define SWEEP_STEP          4  /* buckets visited per operation */
#define EVICT_WINDOW        32 /* buckets sampled per eviction */
#define DEFAULT_MAX_ENTRIES (1u << 20)
/*
 * Each stripe gets max_bytes / STRIPES. By default that is one largest
 * record (body and content type with its NUL): 256 MiB was 16 MiB a stripe,
 * so a 16 MiB response, which [idempotency] max_response_bytes allows,
 * could never be stored.
 */
#define IDEM_RECORD_MAX   (KV_IDEM_BODY_MAX + KV_IDEM_CONTENT_TYPE_MAX + 1u)
#define DEFAULT_MAX_BYTES ((int64_t)STRIPES * IDEM_RECORD_MAX)
#define MAX_ENTRIES_LIMIT (1LL << 32)
#define MAX_BYTES_LIMIT   (1LL << 40)
#define NOTICE_QUEUE_MAX  256
#define PUBLISH_WAIT_MS   1000

enum entry_kind { ENTRY_GCRA, ENTRY_IDEM };

struct entry {
	struct entry *next;
	uint64_t hash;
	int64_t deadline_ms; /* clock_mono_ms; expired when <= now */
	enum entry_kind kind;
	int64_t tat_us;           /* GCRA */
	enum kv_idem_state state; /* IDEM: IN_FLIGHT or DONE */
	int status;               /* IDEM, DONE */
	char fingerprint[65];     /* IDEM */
	char *content_type;       /* IDEM, DONE; may be NULL */
	char *body;               /* IDEM, DONE; NULL when body_len is 0 */
	size_t body_len;
	size_t payload; /* bytes charged to stripe->bytes */
	size_t key_len;
	char key[];
};

struct stripe {
	pthread_mutex_t lock;
	struct entry **buckets;
	size_t nbuckets; /* power of two */
	size_t count;
	size_t bytes;
	size_t cursor; /* incremental sweep position */
	uint64_t rng;  /* xorshift state for eviction sampling */
};

struct notice_queue {
	pthread_mutex_t lock;
	pthread_cond_t nonfull; /* publishers: room, or stopping */
	char *items[NOTICE_QUEUE_MAX];
	size_t head;
	size_t len;
	struct bg_thread thread; /* the delivery thread, under lock; woken by a publish */
	kv_notice_fn fn;
	void *arg;
};

struct kv_memory {
	struct kv base; /* first: a struct kv * is a struct kv_memory * */
	uint64_t k0, k1;
	size_t max_entries; /* per stripe */
	size_t max_bytes;   /* per stripe */
	size_t max_buckets; /* per stripe */
	struct stripe stripes[STRIPES];
	struct notice_queue nq;
};

/* --- hashing ------------------------------------------------------------ */

static uint64_t xorshift(uint64_t *s)
{
	uint64_t x = *s;
	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	*s = x;
	return x;
}

/* --- the table ---------------------------------------------------------- */

static struct kv_memory *mem(struct kv *kv)
{
	return (struct kv_memory *)kv;
}

static struct stripe *stripe_of(struct kv_memory *m, uint64_t hash)
{
	return &m->stripes[hash >> STRIPE_SHIFT];
}

static void entry_free(struct entry *e)
{
	free(e->content_type);
	free(e->body);
	free(e);
}

/* Unlink *link from the stripe and free it. */
static void unlink_entry(struct stripe *st, struct entry **link)
{
	struct entry *e = *link;
	*link = e->next;
	st->count--;
	st->bytes -= e->payload;
	entry_free(e);
}

/* Drop every expired entry in one bucket; returns how many went. */
static size_t sweep_bucket(struct stripe *st, size_t b, int64_t now)
{
	size_t n = 0;
	struct entry **link = &st->buckets[b];
	while (*link) {
		if ((*link)->deadline_ms <= now) {
			unlink_entry(st, link);
			n++;
		} else {
			link = &(*link)->next;
		}
	}
	return n;
}

static void sweep_step(struct stripe *st, int64_t now)
{
	for (int i = 0; i < SWEEP_STEP; i++) {
		sweep_bucket(st, st->cursor, now);
		st->cursor = (st->cursor + 1) & (st->nbuckets - 1);
	}
}

static size_t sweep_all(struct stripe *st, int64_t now)
{
	size_t n = 0;
	for (size_t b = 0; b < st->nbuckets; b++)
		n += sweep_bucket(st, b, now);
	return n;
}

/*
 * Find key; an expired entry is removed and reported absent. Returns the
 * link that points at the entry (for unlinking), or NULL.
 */
static struct entry **find(struct stripe *st, const char *key, size_t key_len, uint64_t hash,
                           int64_t now)
{
	struct entry **link = &st->buckets[hash & (st->nbuckets - 1)];
	for (; *link; link = &(*link)->next) {
		struct entry *e = *link;
		if (e->hash != hash || e->key_len != key_len || memcmp(e->key, key, key_len) != 0)
			continue;
		if (e->deadline_ms <= now) {
			unlink_entry(st, link);
			return NULL;
		}
		return link;
	}
	return NULL;
}

static void grow(struct kv_memory *m, struct stripe *st)
{
	if (st->count < st->nbuckets || st->nbuckets >= m->max_buckets)
		return;
	size_t n = st->nbuckets * 2;
	struct entry **nb = xcalloc(n, sizeof(struct entry *));
	for (size_t b = 0; b < st->nbuckets; b++) {
		struct entry *e = st->buckets[b];
		while (e) {
			struct entry *next = e->next;
			size_t i = e->hash & (n - 1);
			e->next = nb[i];
			nb[i] = e;
			e = next;
		}
	}
	free(st->buckets);
	st->buckets = nb;
	st->nbuckets = n;
	st->cursor &= n - 1;
}

/*
 * Scan count buckets from start (wrapping): drop expired entries and
 * remember the GCRA entry with the earliest deadline. Returns how many
 * expired entries went.
 */
static size_t scan_window(struct stripe *st, size_t start, size_t count, int64_t now,
                          struct entry ***victim)
{
	size_t freed = 0;
	for (size_t i = 0; i < count; i++) {
		size_t b = (start + i) & (st->nbuckets - 1);
		freed += sweep_bucket(st, b, now);
		for (struct entry **link = &st->buckets[b]; *link; link = &(*link)->next) {
			if ((*link)->kind == ENTRY_GCRA &&
			    (!*victim || (*link)->deadline_ms < (**victim)->deadline_ms))
				*victim = link;
		}
	}
	return freed;
}

/* Make room for one more entry in st (see the policy atop the file). */
static int make_room(struct kv_memory *m, struct stripe *st, int64_t now)
{
	while (st->count >= m->max_entries) {
		struct entry **victim = NULL;
		size_t start = (size_t)xorshift(&st->rng) & (st->nbuckets - 1);
		size_t window = EVICT_WINDOW < st->nbuckets ? EVICT_WINDOW : st->nbuckets;
		if (scan_window(st, start, window, now, &victim) > 0)
			continue;
		if (!victim) {
			/* Rare: the window held only idempotency records. Look everywhere. */
			if (scan_window(st, start + window, st->nbuckets - window, now, &victim) >
			    0)
				continue;
		}
		if (!victim)
			return KV_EUNAVAILABLE;
		unlink_entry(st, victim);
	}
	return KV_OK;
}

/* Insert a fresh entry for key (absent; room made by the caller). */
static struct entry *insert(struct kv_memory *m, struct stripe *st, const char *key, size_t key_len,
                            uint64_t hash, enum entry_kind kind)
{
	grow(m, st);
	struct entry *e = xcalloc(1, sizeof(*e) + key_len + 1);
	memcpy(e->key, key, key_len);
	e->key_len = key_len;
	e->hash = hash;
	e->kind = kind;
	size_t b = hash & (st->nbuckets - 1);
	e->next = st->buckets[b];
	st->buckets[b] = e;
	st->count++;
	return e;
}

/* Fingerprints are hashes: compare without an early exit. */
static bool fp_equal(const char *a, const char *b)
{
	unsigned char d = 0;
	for (size_t i = 0; i < 64; i++)
		d |= (unsigned char)(a[i] ^ b[i]);
	return d == 0;
}

/* --- operations --------------------------------------------------------- */

static int mem_ping(struct kv *kv)
{
	(void)kv;
	return KV_OK;
}

/*
 * The start of every keyed operation: hash key, lock its stripe, take one
 * sweep step and look key up. The stripe is returned locked.
 */
struct lookup {
	struct stripe *st;   /* locked */
	struct entry **link; /* as find() */
	size_t key_len;
	uint64_t hash;
	int64_t now;
};

static struct lookup lock_and_find(struct kv_memory *m, const char *key)
{
	struct lookup at = {.key_len = strlen(key), .now = clock_mono_ms()};

	at.hash = siphash24(key, at.key_len, m->k0, m->k1);
	at.st = stripe_of(m, at.hash);
	pthread_mutex_lock(&at.st->lock);
	sweep_step(at.st, at.now);
	at.link = find(at.st, key, at.key_len, at.hash, at.now);
	return at;
}

/* Make room in at's stripe, then add key there as a new entry of kind. */
static int add_entry(struct kv_memory *m, const struct lookup *at, const char *key,
                     enum entry_kind kind, struct entry **e)
{
	int rc = make_room(m, at->st, at->now);
	if (rc == KV_OK)
		*e = insert(m, at->st, key, at->key_len, at->hash, kind);
	return rc;
}

static int mem_gcra(struct kv *kv, const char *key, const struct gcra_params *p, int64_t now_ms,
                    int64_t quantity, struct gcra_result *out)
{
	int rc = kv_check_gcra(key, p, now_ms, quantity, out);
	if (rc)
		return rc;
	struct kv_memory *m = mem(kv);
	struct lookup at = lock_and_find(m, key);
	struct stripe *st = at.st;
	int64_t new_tat_us, ttl_ms;

	struct entry *e = at.link ? *at.link : NULL;
	if (e && e->kind != ENTRY_GCRA) {
		rc = KV_EINVAL;
		goto out;
	}
	gcra_step(p, now_ms * 1000, e ? e->tat_us : -1, quantity, out, &new_tat_us, &ttl_ms);
	if (out->limited || quantity == 0 || ttl_ms == 0)
		goto out;
	if (!e) {
		rc = add_entry(m, &at, key, ENTRY_GCRA, &e);
		if (rc)
			goto out;
	}
	e->tat_us = new_tat_us;
	e->deadline_ms = at.now + ttl_ms;
out:
	pthread_mutex_unlock(&st->lock);
	return rc;
}

static int mem_idem_claim(struct kv *kv, const char *key, const char *fingerprint, int ttl_s,
                          struct kv_idem_record *out)
{
	if (kv_check_claim(key, fingerprint, ttl_s, out) != KV_OK)
		return KV_EINVAL;
	struct kv_memory *m = mem(kv);
	struct lookup at = lock_and_find(m, key);
	struct stripe *st = at.st;
	int rc = KV_OK;

	struct entry *e = at.link ? *at.link : NULL;
	if (e) {
		if (e->kind != ENTRY_IDEM) {
			rc = KV_EINVAL;
			goto out;
		}
		out->state = e->state;
		memcpy(out->fingerprint, e->fingerprint, sizeof(out->fingerprint));
		out->status = e->status;
		out->content_type = xstrdup(e->content_type);
		if (e->body_len) {
			out->body = xstrndup(e->body, e->body_len);
			out->body_len = e->body_len;
		}
		goto out;
	}
	rc = add_entry(m, &at, key, ENTRY_IDEM, &e);
	if (rc)
		goto out;
	e->state = KV_IDEM_IN_FLIGHT;
	memcpy(e->fingerprint, fingerprint, sizeof(e->fingerprint));
	e->deadline_ms = at.now + (int64_t)ttl_s * 1000;
	out->state = KV_IDEM_CLAIMED;
	memcpy(out->fingerprint, fingerprint, sizeof(out->fingerprint));
out:
	pthread_mutex_unlock(&st->lock);
	return rc;
}

static int mem_idem_complete(struct kv *kv, const char *key, const char *fingerprint, int status,
                             const char *content_type, const char *body, size_t body_len, int ttl_s)
{
	int rc = kv_check_complete(key, fingerprint, status, content_type, body, body_len, ttl_s);
	if (rc)
		return rc;
	struct kv_memory *m = mem(kv);
	struct lookup at = lock_and_find(m, key);
	struct stripe *st = at.st;
	size_t payload = body_len + (content_type ? strlen(content_type) + 1 : 0);

	struct entry *e = at.link ? *at.link : NULL;
	if (e && e->kind != ENTRY_IDEM) {
		rc = KV_EINVAL;
		goto out;
	}
	if (e && !fp_equal(e->fingerprint, fingerprint)) {
		rc = KV_ECONFLICT;
		goto out;
	}
	if (e && e->state == KV_IDEM_DONE)
		goto out; /* already stored by this request: nothing to do */
	if (payload > m->max_bytes - st->bytes) {
		/* Cannot drop e: it was live at this same instant. */
		sweep_all(st, at.now);
		if (payload > m->max_bytes - st->bytes) {
			rc = KV_EUNAVAILABLE;
			goto out;
		}
	}
	if (!e) {
		rc = add_entry(m, &at, key, ENTRY_IDEM, &e);
		if (rc)
			goto out;
		memcpy(e->fingerprint, fingerprint, sizeof(e->fingerprint));
	}
	e->state = KV_IDEM_DONE;
	e->status = status;
	e->content_type = xstrdup(content_type);
	if (body_len) {
		e->body = xmalloc(body_len);
		memcpy(e->body, body, body_len);
		e->body_len = body_len;
	}
	e->payload = payload;
	st->bytes += payload;
	e->deadline_ms = at.now + (int64_t)ttl_s * 1000;
out:
	pthread_mutex_unlock(&st->lock);
	return rc;
}

static int mem_idem_release(struct kv *kv, const char *key)
{
	if (!kv_key_ok(key))
		return KV_EINVAL;
	struct kv_memory *m = mem(kv);
	struct lookup at = lock_and_find(m, key);
	struct stripe *st = at.st;

	if (at.link && (*at.link)->kind == ENTRY_IDEM && (*at.link)->state == KV_IDEM_IN_FLIGHT)
		unlink_entry(st, at.link);
	pthread_mutex_unlock(&st->lock);
	return KV_OK;
}

/* --- notices ------------------------------------------------------------ */

static int mem_publish(struct kv *kv, const char *message)
{
	if (!kv_notice_ok(message))
		return KV_EINVAL;
	struct notice_queue *q = &mem(kv)->nq;
	struct timespec deadline;
	int rc = KV_OK;

	deadline = clock_mono_deadline(PUBLISH_WAIT_MS);
	pthread_mutex_lock(&q->lock);
	if (!bg_thread_started(&q->thread) || bg_thread_stopping(&q->thread))
		goto out; /* nobody listens: dropped, as with PUBLISH */
	while (q->len == NOTICE_QUEUE_MAX && !bg_thread_stopping(&q->thread)) {
		if (pthread_cond_timedwait(&q->nonfull, &q->lock, &deadline) == ETIMEDOUT) {
			rc = KV_EUNAVAILABLE;
			goto out;
		}
	}
	if (bg_thread_stopping(&q->thread))
		goto out;
	q->items[(q->head + q->len) % NOTICE_QUEUE_MAX] = xstrdup(message);
	q->len++;
	bg_thread_wake_locked(&q->thread);
out:
	pthread_mutex_unlock(&q->lock);
	return rc;
}

/* The delivery thread (q->lock held): one notice at a time, in order. */
static void deliver_thread(struct bg_thread *t, void *arg)
{
	struct notice_queue *q = arg;

	for (;;) {
		while (q->len == 0 && bg_thread_wait(t, -1))
			;
		if (bg_thread_stopping(t))
			break;
		char *msg = q->items[q->head];
		q->items[q->head] = NULL;
		q->head = (q->head + 1) % NOTICE_QUEUE_MAX;
		q->len--;
		pthread_cond_signal(&q->nonfull);
		pthread_mutex_unlock(&q->lock);
		q->fn(msg, q->arg);
		free(msg);
		pthread_mutex_lock(&q->lock);
	}
}

static int mem_subscribe(struct kv *kv, kv_notice_fn fn, void *arg)
{
	if (!fn)
		return KV_EINVAL;
	struct notice_queue *q = &mem(kv)->nq;
	int rc = KV_OK;

	pthread_mutex_lock(&q->lock);
	if (bg_thread_started(&q->thread)) {
		rc = KV_EINVAL;
		goto out;
	}
	q->fn = fn;
	q->arg = arg;
	if (bg_thread_start(&q->thread, "kv-notices", &q->lock, deliver_thread, q) != 0)
		rc = KV_EUNAVAILABLE;
out:
	pthread_mutex_unlock(&q->lock);
	return rc;
}

/* --- open / close ------------------------------------------------------- */

/* Parse "?max_entries=N&max_bytes=N" (either, both or nothing). */
static int parse_options(const char *s, int64_t *max_entries, int64_t *max_bytes)
{
	if (*s == '\0')
		return 0;
	if (*s++ != '?' || *s == '\0')
		return -1;
	for (;;) {
		const char *end = strchr(s, '&');
		size_t len = end ? (size_t)(end - s) : strlen(s);
		const char *eq = memchr(s, '=', len);
		if (!eq)
			return -1;
		size_t name_len = (size_t)(eq - s);
		const char *val = eq + 1;
		size_t val_len = len - name_len - 1;
		if (name_len == 11 && memcmp(s, "max_entries", 11) == 0) {
			if (kv_parse_num(val, val_len, STRIPES, MAX_ENTRIES_LIMIT, max_entries))
				return -1;
		} else if (name_len == 9 && memcmp(s, "max_bytes", 9) == 0) {
			if (kv_parse_num(val, val_len, 0, MAX_BYTES_LIMIT, max_bytes))
				return -1;
		} else {
			return -1;
		}
		if (!end)
			break;
		s = end + 1;
		if (*s == '\0')
			return -1;
	}
	return 0;
}

static void mem_close(struct kv *kv)
{
	struct kv_memory *m = mem(kv);
	struct notice_queue *q = &m->nq;

	bg_thread_stop(&q->thread);
	pthread_mutex_lock(&q->lock);
	pthread_cond_broadcast(&q->nonfull); /* a publisher waiting for room gives up */
	pthread_mutex_unlock(&q->lock);
	for (size_t i = 0; i < q->len; i++)
		free(q->items[(q->head + i) % NOTICE_QUEUE_MAX]);
	pthread_cond_destroy(&q->nonfull);
	pthread_mutex_destroy(&q->lock);

	for (size_t s = 0; s < STRIPES; s++) {
		struct stripe *st = &m->stripes[s];
		for (size_t b = 0; b < st->nbuckets; b++) {
			struct entry *e = st->buckets[b];
			while (e) {
				struct entry *next = e->next;
				entry_free(e);
				e = next;
			}
		}
		free(st->buckets);
		pthread_mutex_destroy(&st->lock);
	}
	free(m);
}

static int mem_open(const char *url, struct kv **out)
{
	static const char prefix[] = "memory://";
	int64_t max_entries = DEFAULT_MAX_ENTRIES, max_bytes = DEFAULT_MAX_BYTES;
	uint64_t seed[2];

	if (strncmp(url, prefix, sizeof(prefix) - 1) != 0 ||
	    parse_options(url + sizeof(prefix) - 1, &max_entries, &max_bytes) != 0)
		return KV_EINVAL;
	crypto_random(seed, sizeof(seed));

	struct kv_memory *m = xcalloc(1, sizeof(*m));
	m->base.backend = &kv_memory_backend;
	m->k0 = seed[0];
	m->k1 = seed[1];
	m->max_entries = (size_t)(max_entries / STRIPES);
	m->max_bytes = (size_t)(max_bytes / STRIPES);
	m->max_buckets = INITIAL_BUCKETS;
	while (m->max_buckets < m->max_entries)
		m->max_buckets *= 2;
	for (size_t s = 0; s < STRIPES; s++) {
		struct stripe *st = &m->stripes[s];
		pthread_mutex_init(&st->lock, NULL);
		st->nbuckets = INITIAL_BUCKETS;
		st->buckets = xcalloc(st->nbuckets, sizeof(struct entry *));
		st->rng = (seed[0] ^ (seed[1] * (s + 1))) | 1;
	}

	pthread_mutex_init(&m->nq.lock, NULL);
	clock_cond_init_mono(&m->nq.nonfull);

	*out = &m->base;
	return KV_OK;
}

const struct kv_backend kv_memory_backend = {
    .scheme = "memory",
    .open = mem_open,
    .close = mem_close,
    .ping = mem_ping,
    .gcra = mem_gcra,
    .idem_claim = mem_idem_claim,
    .idem_complete = mem_idem_complete,
    .idem_release = mem_idem_release,
    .publish = mem_publish,
    .subscribe = mem_subscribe,
};
