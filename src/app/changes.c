/*
 * changes.c: change notices and the state-version safety net (see
 * changes.h). Notices are "<node> <kind> <id>" strings; a node ignores its
 * own, having already applied the change locally.
 *
 * A change is on every node from the next request on: its notice is sent
 * as "<node>.<seq> <kind> <id>", each other node answers "<node> ack
 * <origin>.<seq>" once it has applied it, and the changing request waits
 * (at most ACK_WAIT_MS) for the acks of every node heard from lately
 * before it answers. Nodes are heard from through a "<node> hello -" every
 * poll tick and a "<node> bye -" at shutdown, so a node that died delays
 * changes by ACK_WAIT_MS for at most PEER_TTL_MS. Nodes that send the
 * older seq-less notices are applied the same way, just not waited for.
 *
 * Reloads of the kill set, and of key rows, each run under a lock from
 * reading the store to filling the cache, so a slow read (the poller's) can
 * never overwrite a newer one (a notice's) with an older picture.
 *
 * The safety net reads what changed, not everything cached: every bump of
 * the store's state version logs the key or organisation it changed (the
 * changes table), and when the version moved the poller reads the log past
 * the version it last applied and re-reads only the cached keys named there
 * (store_changes_since). Only when the log cannot cover the gap (more than
 * CATCHUP_MAX changes, a log trimmed past it, a database restored to an
 * older version) is every cached key re-read, as before.
 */
#include "app/changes.h"

#include "auth/keycache.h"
#include "core/alloc.h"
#include "core/clock.h"
#include "core/log.h"
#include "core/metrics.h"
#include "core/str.h"
#include "core/thread.h"
#include "core/ulid.h"
#include "policy/killswitch.h"
#include "policy/orgcache.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define POLL_MS       1000
#define RECHECK_MAX   100000
#define CATCHUP_MAX   1000 /* logged changes applied one by one; past that, re-check all */
#define ACK_WAIT_MS   250  /* longest a change waits for the other nodes to apply it */
#define PEER_TTL_MS   3500 /* a node not heard from for this long is no longer waited for */
#define PEERS_MAX     64
#define HELLO_FAST_MS 50 /* hello interval until this node hears its own */
#define NOTICE_CAP    128

/* Another node, as heard through notices. */
struct peer {
	char node[ULID_LEN + 1];
	int64_t seen_ms;     /* clock_mono_ms of its last message */
	uint64_t acked_max;  /* the highest of our seqs it has applied */
	uint64_t acked_bits; /* bit i: it has applied acked_max - i (acks may come out of order) */
};

struct changefeed {
	/* What a change touches: the caches it refreshes and the notice channel (kv). */
	struct store *store;
	struct kv *kv;
	struct keycache *keys;
	struct killset *kills;
	struct orgcache *orgs;
	_Atomic int64_t *store_down_since; /* the instance's: the version check sets it */
	char node[ULID_LEN + 1];
	struct bg_thread poller; /* under lock */
	pthread_mutex_t lock;
	pthread_mutex_t catchup_lock; /* guards version: one catch-up at a time */
	int64_t version;              /* the state version whose changes are applied */
	pthread_mutex_t kills_lock;   /* one kill-set reload at a time: see the top of the file */
	pthread_mutex_t keys_lock;    /* one key reload at a time */
	pthread_mutex_t peers_lock;   /* guards peers, n_peers, seq */
	pthread_cond_t acked;         /* CLOCK_MONOTONIC */
	struct peer peers[PEERS_MAX];
	int n_peers;
	uint64_t seq;           /* of our last change notice */
	atomic_bool heard_self; /* our subscription delivered our own hello */
};

static struct metric m_reloads =
    METRIC_INIT("portcullis_keycache_reloads_total",
                "Cached key rows re-read from the store because a change notice or the change "
                "log named them, or a full re-check.",
                "counter");
static struct metric m_rechecks =
    METRIC_INIT("portcullis_change_rechecks_total",
                "Full re-checks of every cached key (notices lost past what the change log "
                "covers).",
                "counter");

int changes_reload_kills(struct changefeed *f)
{
	struct store_kill *kills = NULL;
	int n = 0;
	pthread_mutex_lock(&f->kills_lock);
	int rc = store_kill_list(f->store, &kills, &n);
	if (rc == STORE_OK)
		killset_load(f->kills, kills, n);
	pthread_mutex_unlock(&f->kills_lock);
	free(kills);
	return rc;
}

/*
 * Re-read one cached key. A key that is gone is dropped. A key that cannot
 * be read is dropped too when keep_on_error is false (a notice said this
 * key changed: fail closed), and kept as it is when true (the periodic
 * re-check, which must not empty the cache because the store just went
 * down). A key not cached is not read: invalidating it refuses the caching
 * of a row a verification read before the change. Returns the store's
 * answer (STORE_OK when nothing was read).
 */
static int reload_key(struct changefeed *f, const char *key_id, bool keep_on_error)
{
	struct store_key row;
	pthread_mutex_lock(&f->keys_lock);
	if (!keycache_contains(f->keys, key_id)) {
		keycache_invalidate(f->keys, key_id);
		pthread_mutex_unlock(&f->keys_lock);
		return STORE_OK;
	}
	metric_add(&m_reloads, 1);
	int rc = store_key_get(f->store, key_id, &row);
	if (rc == STORE_OK)
		keycache_refresh(f->keys, &row);
	else if (rc == STORE_ENOTFOUND || !keep_on_error)
		keycache_invalidate(f->keys, key_id);
	pthread_mutex_unlock(&f->keys_lock);
	explicit_bzero(&row, sizeof row);
	return rc;
}

/* The peer entry for node (added when missing; NULL when the table is full). Under peers_lock. */
static struct peer *peer_of(struct changefeed *f, const char *node, int64_t now)
{
	struct peer *free_slot = NULL;
	for (int i = 0; i < f->n_peers; i++) {
		if (strcmp(f->peers[i].node, node) == 0)
			return &f->peers[i];
		if (!free_slot && now - f->peers[i].seen_ms > PEER_TTL_MS)
			free_slot = &f->peers[i];
	}
	if (!free_slot && f->n_peers < PEERS_MAX)
		free_slot = &f->peers[f->n_peers++];
	if (free_slot) {
		memset(free_slot, 0, sizeof *free_slot);
		snprintf(free_slot->node, sizeof free_slot->node, "%s", node);
	}
	return free_slot;
}

static void mark_acked(struct peer *p, uint64_t seq)
{
	if (seq > p->acked_max) {
		uint64_t shift = seq - p->acked_max;
		p->acked_bits = shift >= 64 ? 0 : p->acked_bits << shift;
		p->acked_max = seq;
		p->acked_bits |= 1;
	} else if (p->acked_max - seq < 64) {
		p->acked_bits |= (uint64_t)1 << (p->acked_max - seq);
	}
}

/* Has p applied our notice seq? Past the window, assume so (its wait is long over). */
static bool has_acked(const struct peer *p, uint64_t seq)
{
	if (seq > p->acked_max)
		return false;
	uint64_t d = p->acked_max - seq;
	return d >= 64 || ((p->acked_bits >> d) & 1);
}

/* Wait until every node heard from lately has applied our notice seq, or ACK_WAIT_MS. */
static void wait_acks(struct changefeed *f, uint64_t seq)
{
	int64_t deadline = clock_mono_ms() + ACK_WAIT_MS;
	const char *late = NULL;
	pthread_mutex_lock(&f->peers_lock);
	for (;;) {
		int64_t now = clock_mono_ms();
		late = NULL;
		for (int i = 0; i < f->n_peers && !late; i++)
			if (now - f->peers[i].seen_ms <= PEER_TTL_MS &&
			    !has_acked(&f->peers[i], seq))
				late = f->peers[i].node;
		if (!late || now >= deadline)
			break;
		struct timespec ts = clock_mono_deadline(deadline - now);
		pthread_cond_timedwait(&f->acked, &f->peers_lock, &ts);
	}
	if (late)
		log_warn("change notice not acknowledged by node %s within %d ms: it sees the "
		         "change within a second",
		         late, ACK_WAIT_MS);
	pthread_mutex_unlock(&f->peers_lock);
}

static void publish(struct changefeed *f, const char *kind, const char *id)
{
	char msg[NOTICE_CAP];
	pthread_mutex_lock(&f->peers_lock);
	uint64_t seq = ++f->seq;
	pthread_mutex_unlock(&f->peers_lock);
	snprintf(msg, sizeof msg, "%s.%llu %s %s", f->node, (unsigned long long)seq, kind,
	         id && *id ? id : "-");
	if (kv_publish(f->kv, msg) != KV_OK) {
		log_warn("change notice not published (kv unavailable): other nodes will see it "
		         "within a second");
		return;
	}
	wait_acks(f, seq);
}

/* A notice that changes nothing: "hello" (I am here) or "bye" (I am leaving). */
static void announce(struct changefeed *f, const char *kind)
{
	char msg[NOTICE_CAP];
	snprintf(msg, sizeof msg, "%s %s -", f->node, kind);
	kv_publish(f->kv, msg); /* best effort: the next tick says it again */
}

void changes_key(struct changefeed *f, const char *key_id)
{
	reload_key(f, key_id, false);
	publish(f, "key", key_id);
}

void changes_kills(struct changefeed *f)
{
	if (changes_reload_kills(f) != STORE_OK)
		log_warn("kill switches not reloaded (store unavailable)");
	publish(f, "kills", NULL);
}

void changes_org(struct changefeed *f, const char *org_id)
{
	orgcache_invalidate(f->orgs, org_id);
	publish(f, "org", org_id);
}

/*
 * The version moved without (or despite) notices: re-check everything
 * cached. False when the store failed part-way: what was not re-read stays
 * cached as it was (the outage's stale grace applies to it) and the caller
 * tries again on its next tick. The organisation cache is emptied only
 * once everything else was re-read, so an outage starting meanwhile does
 * not leave verified keys without their organisation.
 */
static bool recheck_all(struct changefeed *f)
{
	metric_add(&m_rechecks, 1);
	if (changes_reload_kills(f) != STORE_OK)
		return false;
	char(*ids)[STORE_ID_LEN + 1] = xcalloc(RECHECK_MAX, sizeof *ids);
	size_t n = keycache_ids(f->keys, ids, RECHECK_MAX);
	bool ok = true;
	for (size_t i = 0; i < n && ok; i++) {
		int rc = reload_key(f, ids[i], true);
		ok = rc == STORE_OK || rc == STORE_ENOTFOUND;
	}
	free(ids);
	if (ok)
		orgcache_clear(f->orgs);
	return ok;
}

/*
 * Apply the n logged changes ch (whole: every seq after the applied
 * version) the way recheck_all applies everything: the kill set first when
 * a change names it, then the named keys that are cached, then the named
 * organisations, dropped only once the rest was re-read. False when the
 * store failed part-way: what was not re-read stays cached as it was, and
 * the caller tries the same changes again (re-reading a key twice is
 * harmless).
 */
static bool apply_changes(struct changefeed *f, const struct store_change *ch, int n)
{
	bool kills = false;
	for (int i = 0; i < n && !kills; i++)
		kills = strcmp(ch[i].kind, "kills") == 0;
	if (kills && changes_reload_kills(f) != STORE_OK)
		return false;
	for (int i = 0; i < n; i++) {
		if (strcmp(ch[i].kind, "key") != 0)
			continue;
		int rc = reload_key(f, ch[i].target_id, true);
		if (rc != STORE_OK && rc != STORE_ENOTFOUND)
			return false;
	}
	for (int i = 0; i < n; i++)
		if (strcmp(ch[i].kind, "org") == 0)
			orgcache_invalidate(f->orgs, ch[i].target_id);
	return true;
}

/*
 * Bring the caches from the applied version to v: through the change log
 * when it covers the gap, by re-checking everything otherwise. False when
 * the store failed part-way (the version stays, so the next tick retries).
 */
static bool catch_up(struct changefeed *f, int64_t from, int64_t v)
{
	if (v < from || v - from > CATCHUP_MAX)
		return recheck_all(f);
	struct store_change *ch = NULL;
	int n = 0;
	int rc = store_changes_since(f->store, from, v, CATCHUP_MAX, &ch, &n);
	bool ok;
	if (rc != STORE_OK)
		ok = false;
	else if (n != v - from || (n > 0 && ch[0].seq != from + 1))
		ok = recheck_all(f); /* the log was trimmed past from, or predates it */
	else
		ok = apply_changes(f, ch, n);
	free(ch);
	return ok;
}

/*
 * Split "<node>[.<seq>]" at s (len bytes) into node and *seq (0 when
 * absent). False when it is not that shape.
 */
static bool parse_origin(const char *s, size_t len, char node[ULID_LEN + 1], uint64_t *seq)
{
	const char *dot = memchr(s, '.', len);
	size_t n = dot ? (size_t)(dot - s) : len;
	if (n != ULID_LEN)
		return false;
	memcpy(node, s, n);
	node[n] = '\0';
	*seq = 0;
	if (!dot)
		return true;
	size_t digits = len - n - 1;
	return digits <= 19 && parse_uint64(dot + 1, digits, UINT64_MAX, seq) == 0;
}

/* Another node has applied our notice seq. */
static void on_ack(struct changefeed *f, const char *from, uint64_t seq, int64_t now)
{
	pthread_mutex_lock(&f->peers_lock);
	struct peer *p = peer_of(f, from, now);
	if (p && seq <= f->seq) {
		mark_acked(p, seq);
		pthread_cond_broadcast(&f->acked);
	}
	pthread_mutex_unlock(&f->peers_lock);
}

/*
 * The safety net: when the state version moved, apply what changed since
 * the version last applied. Run by the poller every second and after the
 * notice subscription was restored.
 */
static void check_version(struct changefeed *f)
{
	int64_t v;
	int rc = store_state_version(f->store, &v);
	if (rc == STORE_OK) {
		if (atomic_exchange(f->store_down_since, 0) != 0)
			log_event(LOG_INFO, "store_recovered", NULL);
		pthread_mutex_lock(&f->catchup_lock);
		if (v != f->version && catch_up(f, f->version, v))
			f->version = v;
		pthread_mutex_unlock(&f->catchup_lock);
	} else {
		int64_t zero = 0;
		if (atomic_compare_exchange_strong(f->store_down_since, &zero, clock_now_ms()))
			log_event(LOG_ERROR, "store_unreachable", "note",
			          "cached keys keep working for [auth] stale_grace_seconds", NULL);
	}
}

static void handle_notice(struct changefeed *f, const char *message)
{
	char node[ULID_LEN + 1], kind[16], id[64];
	uint64_t seq;
	if (strcmp(message, KV_NOTICE_RESYNC) == 0) {
		atomic_store(&f->heard_self, false); /* others may have forgotten us */
		check_version(f); /* notices may have been lost while disconnected */
		return;
	}
	const char *p = message;
	size_t n = strcspn(p, " ");
	if (!parse_origin(p, n, node, &seq))
		return;
	p += n + (p[n] == ' ');
	n = strcspn(p, " ");
	if (n >= sizeof kind)
		return;
	memcpy(kind, p, n);
	kind[n] = '\0';
	p += n + (p[n] == ' ');
	snprintf(id, sizeof id, "%s", p);
	if (strcmp(node, f->node) == 0) {
		if (strcmp(kind, "hello") == 0)
			atomic_store(&f->heard_self, true);
		return;
	}

	int64_t now = clock_mono_ms();
	bool bye = strcmp(kind, "bye") == 0, stranger = false;
	pthread_mutex_lock(&f->peers_lock);
	struct peer *peer = peer_of(f, node, now);
	if (peer) {
		stranger = peer->seen_ms == 0 || now - peer->seen_ms > PEER_TTL_MS;
		peer->seen_ms = bye ? 0 : now;
	}
	pthread_cond_broadcast(&f->acked); /* a bye may end a wait */
	pthread_mutex_unlock(&f->peers_lock);
	if (stranger && !bye) {
		log_info("change notices: node %s joined", node);
		announce(f, "hello"); /* so a node that just came knows us at once */
	} else if (bye) {
		log_info("change notices: node %s left", node);
	}

	if (strcmp(kind, "ack") == 0) {
		char to[ULID_LEN + 1];
		uint64_t acked;
		if (parse_origin(id, strlen(id), to, &acked) && acked && strcmp(to, f->node) == 0)
			on_ack(f, node, acked, now);
		return;
	}
	bool applied = true;
	if (strcmp(kind, "key") == 0)
		reload_key(f, id, false); /* on a store error the row is dropped: applied too */
	else if (strcmp(kind, "kills") == 0)
		applied = changes_reload_kills(f) == STORE_OK;
	else if (strcmp(kind, "org") == 0)
		orgcache_invalidate(f->orgs, id);
	else
		return; /* hello, bye, or a kind this version does not know */
	/* Not applied (the kill set could not be read): no ack, so the sender says so. */
	if (seq && applied) {
		char msg[NOTICE_CAP];
		snprintf(msg, sizeof msg, "%s ack %s.%llu", f->node, node, (unsigned long long)seq);
		kv_publish(f->kv, msg); /* lost: the sender stops waiting after ACK_WAIT_MS */
	}
}

/*
 * The kv tier's subscriber thread outlives changes_stop (it stops in
 * kv_close, after app_close has freed the caches): notices that arrive in
 * between must find no feed and do nothing, and changes_stop must not free
 * the feed under one being handled. One app per process, so one gate.
 */
static pthread_mutex_t notice_gate = PTHREAD_MUTEX_INITIALIZER;

static void on_notice(const char *message, void *arg)
{
	struct app *app = arg;
	pthread_mutex_lock(&notice_gate);
	if (app->feed)
		handle_notice(app->feed, message);
	pthread_mutex_unlock(&notice_gate);
}

/* The poller thread (f->lock held): hello and the version check. */
static void poller(struct bg_thread *t, void *arg)
{
	struct changefeed *f = arg;
	int64_t next_check = clock_mono_ms() + POLL_MS;
	/*
	 * Until our own hello comes back (start-up, a restored subscription)
	 * the others may not know us yet: say it often.
	 */
	while (bg_thread_wait(t, atomic_load(&f->heard_self) ? POLL_MS : HELLO_FAST_MS)) {
		pthread_mutex_unlock(&f->lock);
		announce(f, "hello");
		if (clock_mono_ms() >= next_check) {
			next_check = clock_mono_ms() + POLL_MS;
			check_version(f);
		}
		pthread_mutex_lock(&f->lock);
	}
}

static void feed_free(struct changefeed *f)
{
	pthread_mutex_destroy(&f->lock);
	pthread_mutex_destroy(&f->catchup_lock);
	pthread_mutex_destroy(&f->kills_lock);
	pthread_mutex_destroy(&f->keys_lock);
	pthread_mutex_destroy(&f->peers_lock);
	pthread_cond_destroy(&f->acked);
	free(f);
}

int changes_start(struct app *app)
{
	struct changefeed *f = xcalloc(1, sizeof *f);
	ulid_new(f->node);
	pthread_mutex_init(&f->lock, NULL);
	pthread_mutex_init(&f->catchup_lock, NULL);
	pthread_mutex_init(&f->kills_lock, NULL);
	pthread_mutex_init(&f->keys_lock, NULL);
	pthread_mutex_init(&f->peers_lock, NULL);
	clock_cond_init_mono(&f->acked);
	f->store = app->store;
	f->kv = app->kv;
	f->keys = app->keys;
	f->kills = app->kills;
	f->orgs = app->orgs;
	f->store_down_since = &app->store_down_since;
	app->feed = f;
	metrics_register(&m_reloads);
	metrics_register(&m_rechecks);
	store_state_version(f->store, &f->version);
	if (changes_reload_kills(f) != STORE_OK) {
		/* No poller to stop: changes_stop (from app_close) must not join one. */
		app->feed = NULL;
		feed_free(f);
		return -1;
	}
	if (kv_subscribe(app->kv, on_notice, app) != KV_OK)
		log_warn("change notices unavailable: relying on the one-second version check");
	if (bg_thread_start(&f->poller, "changes", &f->lock, poller, f) != 0)
		fatal("cannot start the change poller");
	announce(f, "hello");
	return 0;
}

void changes_stop(struct app *app)
{
	struct changefeed *f = app->feed;
	if (!f)
		return;
	bg_thread_stop(&f->poller);
	announce(f, "bye"); /* the others stop waiting for our acks at once */
	pthread_mutex_lock(&notice_gate);
	app->feed = NULL;
	pthread_mutex_unlock(&notice_gate);
	feed_free(f);
}
