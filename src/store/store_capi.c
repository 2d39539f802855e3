/*
 * store_capi.c: the Conversions API forward of store_capi.h over the db.h
 * drivers (migrations/0010_capi.sql has the tables).
 *
 * Claiming events: capi_batch_events' primary key (event_id) is the claim.
 * store_capi_batches_make reads, per project with the forward on, the
 * events received since max(enabled_since, scan_from) that no batch holds
 * (walking events_project from the ULID of that time) and inserts their
 * claims with ON CONFLICT DO NOTHING RETURNING, so of two nodes racing on
 * PostgreSQL each event lands in one batch. When a project is caught up,
 * scan_from moves to now - SCAN_MARGIN_MS (an event is committed well
 * within that of its received time), so the scan stays short.
 *
 * Batches are claimed like webhook deliveries: the claim moves
 * next_attempt_at to the lease's end, so a dead worker's batch is due again.
 */
#include "store/store_capi.h"

#include "core/alloc.h"
#include "core/clock.h"
#include "core/ulid.h"
#include "crypto/sealed.h"
#include "store/db.h"
#include "store/store_int.h"
#include "store/store_secrets.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SCAN_MARGIN_MS (5 * 60 * 1000LL)
#define CACHE_TTL_MS   (5 * 1000LL)
#define CACHE_SLOTS    64

/* ---------- settings ---------- */

struct put_args {
	const struct store_capi_config *c;
	int64_t now;
};

static int put_fn(struct db_conn *c, void *arg)
{
	const struct put_args *pa = arg;
	const struct store_capi_config *cf = pa->c;
	struct db_result *r = NULL;
	struct db_param q[] = {P_TEXT(cf->project_id), P_TEXT(cf->org_id)};
	int rc = sq(c, "SELECT 1 FROM projects WHERE id = ? AND org_id = ?", q, 2, &r);
	bool found = rc == STORE_OK && r->nrows == 1;
	db_result_free(r);
	if (rc != STORE_OK)
		return rc;
	if (!found)
		return STORE_ENOTFOUND;
	struct db_param p[] = {
	    P_TEXT(cf->project_id),
	    P_TEXT(cf->org_id),
	    P_INT(cf->enabled ? 1 : 0),
	    P_TEXT(cf->pixel_id),
	    P_TEXT(cf->access_token),
	    P_TEXT(cf->test_event_code[0] ? cf->test_event_code : NULL),
	    st_int_or_null(cf->enabled ? pa->now : -1),
	    P_INT(pa->now),
	    P_INT(pa->now),
	};
	/* An empty access_token keeps the stored one (the API checks one is stored). */
	return sq(c,
	          "INSERT INTO capi_configs (project_id, org_id, enabled, pixel_id, access_token, "
	          "test_event_code, enabled_since, created_at, updated_at) "
	          "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (project_id) DO UPDATE SET "
	          "enabled = excluded.enabled, pixel_id = excluded.pixel_id, "
	          "access_token = CASE WHEN excluded.access_token = '' "
	          "THEN capi_configs.access_token ELSE excluded.access_token END, "
	          "test_event_code = excluded.test_event_code, "
	          "enabled_since = CASE WHEN excluded.enabled = 1 AND capi_configs.enabled = 0 "
	          "THEN excluded.enabled_since ELSE capi_configs.enabled_since END, "
	          "updated_at = excluded.updated_at",
	          p, 9, NULL);
}

/* The ingest handler's cache of "is the forward on for project P". */
struct cache_slot {
	const struct store *st;
	char project_id[STORE_ID_LEN + 1];
	bool enabled;
	int64_t until_mono;
};
static struct cache_slot cache[CACHE_SLOTS];
static pthread_mutex_t cache_lock = PTHREAD_MUTEX_INITIALIZER;

static struct cache_slot *slot_of(const char *project_id)
{
	uint32_t h = 2166136261u;
	for (const char *s = project_id; *s; s++)
		h = (h ^ (uint8_t)*s) * 16777619u;
	return &cache[h % CACHE_SLOTS];
}

static void cache_forget(const char *project_id)
{
	pthread_mutex_lock(&cache_lock);
	slot_of(project_id)->until_mono = 0;
	pthread_mutex_unlock(&cache_lock);
}

int store_capi_put(struct store *st, const struct store_capi_config *c, const struct audit_input *a)
{
	if (!c->project_id[0] || !c->org_id[0] || !c->pixel_id[0])
		return STORE_ERROR;
	struct put_args pa = {c, clock_now_ms()};
	int rc = st_in_tx(st, put_fn, &pa, a, NO_CHANGE);
	cache_forget(c->project_id);
	return rc;
}

#define CONFIG_COLS                                                                                \
	"project_id, org_id, enabled, pixel_id, access_token, test_event_code, enabled_since, "    \
	"created_at, updated_at"

static void read_config(const struct db_result *r, int i, void *row)
{
	struct store_capi_config *c = row;
	st_copy_str(c->project_id, sizeof c->project_id, db_text(r, i, 0));
	st_copy_str(c->org_id, sizeof c->org_id, db_text(r, i, 1));
	c->enabled = db_int(r, i, 2) != 0;
	st_copy_str(c->pixel_id, sizeof c->pixel_id, db_text(r, i, 3));
	st_copy_str(c->access_token, sizeof c->access_token, db_text(r, i, 4));
	st_copy_str(c->test_event_code, sizeof c->test_event_code, db_text(r, i, 5));
	c->enabled_since = st_time_or_none(r, i, 6);
	c->created_at = db_int(r, i, 7);
	c->updated_at = db_int(r, i, 8);
}

int store_capi_get(struct store *st, const char *org_id, const char *project_id,
                   struct store_capi_config *out)
{
	if (!project_id)
		return STORE_ENOTFOUND;
	memset(out, 0, sizeof *out);
	if (!org_id) {
		struct db_param p[] = {P_TEXT(project_id)};
		return st_read_one(st,
		                   "SELECT " CONFIG_COLS " FROM capi_configs WHERE project_id = ?",
		                   p, 1, read_config, out);
	}
	struct db_param p[] = {P_TEXT(project_id), P_TEXT(org_id)};
	return st_read_one(
	    st, "SELECT " CONFIG_COLS " FROM capi_configs WHERE project_id = ? AND org_id = ?", p,
	    2, read_config, out);
}

static bool forward_on(struct store *st, const char *project_id)
{
	int64_t now = clock_mono_ms();
	pthread_mutex_lock(&cache_lock);
	struct cache_slot *s = slot_of(project_id);
	if (s->st == st && s->until_mono > now && strcmp(s->project_id, project_id) == 0) {
		bool on = s->enabled;
		pthread_mutex_unlock(&cache_lock);
		return on;
	}
	pthread_mutex_unlock(&cache_lock);
	struct store_capi_config c;
	int rc = store_capi_get(st, NULL, project_id, &c);
	if (rc != STORE_OK && rc != STORE_ENOTFOUND)
		return false; /* the store is away: nothing held (the insert fails too) */
	bool on = rc == STORE_OK && c.enabled;
	pthread_mutex_lock(&cache_lock);
	s->st = st;
	st_copy_str(s->project_id, sizeof s->project_id, project_id);
	s->enabled = on;
	s->until_mono = now + CACHE_TTL_MS;
	pthread_mutex_unlock(&cache_lock);
	return on;
}

/* The instance's current public key, cached CACHE_TTL_MS (a rotation applies after it). */
static const struct store *key_st;
static char key_id[SEALED_KEY_ID_LEN + 1];
static uint8_t key_pk[SEALED_PK_LEN];
static int64_t key_until;

void store_capi_cache_clear(void)
{
	pthread_mutex_lock(&cache_lock);
	for (int i = 0; i < CACHE_SLOTS; i++)
		cache[i].until_mono = 0;
	key_until = 0;
	pthread_mutex_unlock(&cache_lock);
}

static int current_key(struct store *st, char kid[SEALED_KEY_ID_LEN + 1], uint8_t pk[SEALED_PK_LEN])
{
	int64_t now = clock_mono_ms();
	pthread_mutex_lock(&cache_lock);
	bool hit = key_st == st && key_until > now;
	if (hit) {
		memcpy(kid, key_id, sizeof key_id);
		memcpy(pk, key_pk, sizeof key_pk);
	}
	pthread_mutex_unlock(&cache_lock);
	if (hit)
		return STORE_OK;
	int rc = store_secret_key_current(st, kid, pk);
	if (rc != STORE_OK)
		return rc;
	pthread_mutex_lock(&cache_lock);
	key_st = st;
	memcpy(key_id, kid, sizeof key_id);
	memcpy(key_pk, pk, sizeof key_pk);
	key_until = now + CACHE_TTL_MS;
	pthread_mutex_unlock(&cache_lock);
	return STORE_OK;
}

int store_capi_adid_seal(struct store *st, struct store_event *ev, const char *adid)
{
	ev->adid_sealed[0] = '\0';
	if (!adid || !adid[0] || !ev->id[0] || !ev->org_id[0] || !forward_on(st, ev->project_id))
		return STORE_ENOTFOUND;
	char kid[SEALED_KEY_ID_LEN + 1];
	uint8_t pk[SEALED_PK_LEN];
	if (current_key(st, kid, pk) != STORE_OK)
		return STORE_ENOTFOUND;
	struct sealed_context ctx = {STORE_CAPI_ADID_TABLE, STORE_CAPI_ADID_COLUMN, ev->id,
	                             ev->org_id};
	if (sealed_seal(kid, pk, &ctx, (const uint8_t *)adid, strlen(adid), ev->adid_sealed,
	                sizeof ev->adid_sealed) == SEALED_OK)
		return STORE_OK;
	ev->adid_sealed[0] = '\0';
	return STORE_ENOTFOUND;
}

/* ---------- making batches ---------- */

struct make_args {
	int64_t now, min_ts;
	int max;
	int made;
	/* the project being batched */
	const char *org_id, *project_id, *pixel_id;
	char batch_id[STORE_CAPI_BATCH_ID_MAX + 1];
	const struct db_result *cand; /* (id, received_at) */
	int64_t claimed;
};

#define CLAIM_COLS 3
#define CLAIM_ROW  "(?, ?, ?)"
#define CLAIM_INSERT(values)                                                                       \
	"INSERT INTO capi_batch_events (event_id, batch_id, received_at) VALUES " values           \
	" ON CONFLICT (event_id) DO NOTHING RETURNING event_id"
static const char *const claim_sql[] = MR_SIZES(CLAIM_INSERT, CLAIM_ROW);

static void fill_claim(const void *ctx, int i, struct db_param *p)
{
	const struct make_args *ma = ctx;
	p[0] = P_TEXT(db_text(ma->cand, i, 0));
	p[1] = P_TEXT(ma->batch_id);
	p[2] = P_INT(db_int(ma->cand, i, 1));
}

static int count_claimed(void *ctx, const struct db_result *r)
{
	struct make_args *ma = ctx;
	ma->claimed += r->nrows;
	return STORE_OK;
}

/* One project's next batch (row i of configs: project, org, pixel, enabled_since, scan_from). */
static int make_one(struct db_conn *c, struct make_args *ma, const struct db_result *cfgs, int i)
{
	ma->project_id = db_text(cfgs, i, 0);
	ma->org_id = db_text(cfgs, i, 1);
	ma->pixel_id = db_text(cfgs, i, 2);
	int64_t floor = st_time_or_none(cfgs, i, 3);
	int64_t scan_from = db_int(cfgs, i, 4);
	if (floor < scan_from)
		floor = scan_from;
	if (floor < 0)
		floor = 0;
	char from_id[STORE_EV_ID_MAX + 1];
	store_event_id_floor(floor, from_id);
	struct db_param p[] = {P_TEXT(ma->project_id), P_TEXT(from_id), P_INT(floor),
	                       P_INT(ma->min_ts), P_INT(ma->max)};
	struct db_result *r = NULL;
	int rc = sq(c,
	            "SELECT id, received_at FROM events WHERE project_id = ? AND id >= ? "
	            "AND received_at >= ? AND timestamp >= ? AND NOT EXISTS (SELECT 1 FROM "
	            "capi_batch_events b WHERE b.event_id = events.id) ORDER BY id LIMIT ?",
	            p, 5, &r);
	if (rc != STORE_OK)
		return rc;
	int got = r->nrows;
	if (got > 0) {
		ulid_prefixed("capb", ma->batch_id, sizeof ma->batch_id);
		ma->cand = r;
		ma->claimed = 0;
		struct multi m = {claim_sql, CLAIM_COLS, fill_claim,    ma,
		                  NULL,      0,          count_claimed, ma};
		rc = st_multi_run(c, &m, got);
		if (rc == STORE_OK && ma->claimed > 0) {
			struct db_param b[] = {P_TEXT(ma->batch_id),   P_TEXT(ma->org_id),
			                       P_TEXT(ma->project_id), P_TEXT(ma->pixel_id),
			                       P_INT(ma->claimed),     P_INT(ma->now),
			                       P_INT(ma->now),         P_INT(ma->now)};
			rc = sq(
			    c,
			    "INSERT INTO capi_batches (id, org_id, project_id, pixel_id, status, "
			    "events, next_attempt_at, created_at, updated_at) "
			    "VALUES (?, ?, ?, ?, 'pending', ?, ?, ?, ?)",
			    b, 8, NULL);
			if (rc == STORE_OK)
				ma->made++;
		}
	}
	db_result_free(r);
	if (rc == STORE_OK && got < ma->max && ma->now - SCAN_MARGIN_MS > scan_from) {
		/* Caught up: everything received before the margin is claimed. */
		struct db_param u[] = {P_INT(ma->now - SCAN_MARGIN_MS), P_TEXT(ma->project_id)};
		rc =
		    sq(c, "UPDATE capi_configs SET scan_from = ? WHERE project_id = ?", u, 2, NULL);
	}
	return rc;
}

static int make_fn(struct db_conn *c, void *arg)
{
	struct make_args *ma = arg;
	struct db_result *cfgs = NULL;
	int rc = sq(c,
	            "SELECT project_id, org_id, pixel_id, enabled_since, scan_from FROM "
	            "capi_configs WHERE enabled = 1 ORDER BY project_id",
	            NULL, 0, &cfgs);
	for (int i = 0; rc == STORE_OK && i < cfgs->nrows; i++)
		rc = make_one(c, ma, cfgs, i);
	db_result_free(cfgs);
	return rc;
}

int store_capi_batches_make(struct store *st, int64_t now, int64_t min_timestamp, int max_events,
                            int *made)
{
	if (made)
		*made = 0;
	if (max_events < 1 || max_events > STORE_CAPI_BATCH_MAX)
		return STORE_ERROR;
	struct make_args ma = {.now = now, .min_ts = min_timestamp, .max = max_events};
	int rc = st_in_tx(st, make_fn, &ma, NULL, NO_CHANGE);
	if (made && rc == STORE_OK)
		*made = ma.made;
	return rc;
}

/* ---------- claiming, reading, recording ---------- */

#define BATCH_COLS                                                                                 \
	"id, org_id, project_id, pixel_id, status, events, events_sent, events_received, "         \
	"attempts, http_status, error, response, next_attempt_at, created_at, updated_at"

static void read_batch(const struct db_result *r, int i, void *row)
{
	struct store_capi_batch *b = row;
	st_copy_str(b->id, sizeof b->id, db_text(r, i, 0));
	st_copy_str(b->org_id, sizeof b->org_id, db_text(r, i, 1));
	st_copy_str(b->project_id, sizeof b->project_id, db_text(r, i, 2));
	st_copy_str(b->pixel_id, sizeof b->pixel_id, db_text(r, i, 3));
	st_copy_str(b->status, sizeof b->status, db_text(r, i, 4));
	b->events = db_int(r, i, 5);
	b->events_sent = st_time_or_none(r, i, 6);
	b->events_received = st_time_or_none(r, i, 7);
	b->attempts = db_int(r, i, 8);
	b->http_status = st_time_or_none(r, i, 9);
	st_copy_str(b->error, sizeof b->error, db_text(r, i, 10));
	st_copy_str(b->response, sizeof b->response, db_text(r, i, 11));
	b->next_attempt_at = db_int(r, i, 12);
	b->created_at = db_int(r, i, 13);
	b->updated_at = db_int(r, i, 14);
}

struct claim_args {
	const char *owner;
	int64_t now, lease_ms;
	struct store_capi_batch *out;
	bool found;
};

static int claim_fn(struct db_conn *c, void *arg)
{
	struct claim_args *ca = arg;
	int64_t until = ca->now + ca->lease_ms;
	struct db_param p[] = {P_TEXT(ca->owner), P_INT(until),   P_INT(until),
	                       P_INT(ca->now),    P_INT(ca->now), P_INT(ca->now)};
	struct db_result *r = NULL;
	int rc =
	    sq(c,
	       "UPDATE capi_batches SET lease_owner = ?, lease_until = ?, next_attempt_at = ?, "
	       "updated_at = ? WHERE id = (SELECT id FROM capi_batches WHERE status = "
	       "'pending' AND next_attempt_at <= ? ORDER BY next_attempt_at, id LIMIT 1) "
	       "AND status = 'pending' AND next_attempt_at <= ? RETURNING " BATCH_COLS,
	       p, 6, &r);
	if (rc == STORE_OK && r->nrows == 1) {
		read_batch(r, 0, ca->out);
		ca->found = true;
	}
	db_result_free(r);
	return rc;
}

int store_capi_claim(struct store *st, const char *owner, int64_t now, int64_t lease_ms,
                     struct store_capi_batch *out)
{
	if (!owner || !owner[0] || lease_ms <= 0)
		return STORE_ERROR;
	memset(out, 0, sizeof *out);
	struct claim_args ca = {owner, now, lease_ms, out, false};
	int rc = st_tx_run(st, claim_fn, &ca, NULL, NO_CHANGE, false);
	if (rc == STORE_OK && !ca.found)
		return STORE_ENOTFOUND;
	return rc;
}

int store_capi_batch_events(struct store *st, const char *batch_id,
                            void (*each)(void *ctx, const struct store_capi_event *ev), void *ctx)
{
	struct db_param p[] = {P_TEXT(batch_id)};
	struct db_result *r = NULL;
	int rc = st_read_q(st,
	                   "SELECT e.id, e.message_id, e.type, e.event, e.user_id, e.email_sha256, "
	                   "e.phone_sha256, e.body, e.org_id, a.adid_sealed, e.timestamp "
	                   "FROM capi_batch_events b JOIN events e ON e.id = b.event_id "
	                   "LEFT JOIN event_adids a ON a.event_id = e.id "
	                   "WHERE b.batch_id = ? ORDER BY e.id",
	                   p, 1, &r);
	if (rc != STORE_OK)
		return rc;
	for (int i = 0; i < r->nrows; i++) {
		struct store_capi_event ev = {
		    .id = db_text_or_empty(r, i, 0),
		    .message_id = db_text_or_empty(r, i, 1),
		    .type = db_text_or_empty(r, i, 2),
		    .event = db_text_or_empty(r, i, 3),
		    .user_id = db_text_or_empty(r, i, 4),
		    .email_sha256 = db_text_or_empty(r, i, 5),
		    .phone_sha256 = db_text_or_empty(r, i, 6),
		    .body = db_text_or_empty(r, i, 7),
		    .org_id = db_text_or_empty(r, i, 8),
		    .adid_sealed = db_text_or_empty(r, i, 9),
		    .timestamp = db_int(r, i, 10),
		};
		each(ctx, &ev);
	}
	db_result_free(r);
	return STORE_OK;
}

struct record_args {
	const char *batch_id, *owner;
	const struct store_capi_outcome *o;
	bool found;
};

static int record_fn(struct db_conn *c, void *arg)
{
	struct record_args *ra = arg;
	const struct store_capi_outcome *o = ra->o;
	char resp[STORE_CAPI_RESPONSE_MAX + 1];
	st_copy_str(resp, sizeof resp, o->response);
	int64_t now = clock_now_ms();
	bool final = strcmp(o->status, "pending") != 0;
	struct db_param p[] = {
	    P_TEXT(o->status),
	    st_int_or_null(o->events_sent),
	    st_int_or_null(o->events_received),
	    st_int_or_null(o->http_status),
	    P_TEXT(o->error),
	    P_TEXT(o->response ? resp : NULL),
	    P_INT(final ? now : o->next_attempt_at),
	    P_INT(now),
	    P_TEXT(ra->batch_id),
	    P_TEXT(ra->owner),
	};
	struct db_result *r = NULL;
	int rc = sq(c,
	            "UPDATE capi_batches SET status = ?, attempts = attempts + 1, events_sent = ?, "
	            "events_received = ?, http_status = ?, error = ?, response = ?, "
	            "next_attempt_at = ?, lease_owner = NULL, lease_until = NULL, updated_at = ? "
	            "WHERE id = ? AND lease_owner = ? AND status = 'pending'",
	            p, 10, &r);
	ra->found = rc == STORE_OK && r->changes == 1;
	db_result_free(r);
	if (rc != STORE_OK || !ra->found || !final)
		return rc;
	struct db_param d[] = {P_TEXT(ra->batch_id)};
	return sq(c,
	          "DELETE FROM event_adids WHERE event_id IN "
	          "(SELECT event_id FROM capi_batch_events WHERE batch_id = ?)",
	          d, 1, NULL);
}

int store_capi_record(struct store *st, const char *batch_id, const char *owner,
                      const struct store_capi_outcome *o)
{
	static const char *const statuses[] = {"pending", "succeeded", "failed"};
	bool ok = false;
	for (size_t i = 0; o->status && i < sizeof statuses / sizeof statuses[0]; i++)
		ok = ok || strcmp(o->status, statuses[i]) == 0;
	if (!ok || !batch_id || !owner)
		return STORE_ERROR;
	struct record_args ra = {batch_id, owner, o, false};
	int rc = st_in_tx(st, record_fn, &ra, NULL, NO_CHANGE);
	if (rc == STORE_OK && !ra.found)
		return STORE_ENOTFOUND;
	return rc;
}

static int release_fn(struct db_conn *c, void *arg)
{
	const char *owner = arg;
	struct db_param p[] = {P_INT(clock_now_ms()), P_TEXT(owner)};
	return sq(c,
	          "UPDATE capi_batches SET lease_owner = NULL, lease_until = NULL, "
	          "next_attempt_at = ? WHERE lease_owner = ? AND status = 'pending'",
	          p, 2, NULL);
}

int store_capi_release_all(struct store *st, const char *owner)
{
	if (!owner || !owner[0])
		return STORE_ERROR;
	/* The cast drops const for the callback's void *; release_fn only reads it. */
	return st_in_tx(st, release_fn, (void *)(uintptr_t)owner, NULL, NO_CHANGE);
}

int store_capi_batches_list(struct store *st, const char *org_id, const char *project_id,
                            const char *before_id, int limit, struct store_capi_batch **out, int *n)
{
	void *rows = NULL;
	int rc;
	if (before_id) {
		struct db_param p[] = {P_TEXT(org_id), P_TEXT(project_id), P_TEXT(before_id),
		                       P_INT(limit)};
		rc = st_read_all(st,
		                 "SELECT " BATCH_COLS " FROM capi_batches WHERE org_id = ? AND "
		                 "project_id = ? AND id < ? ORDER BY id DESC LIMIT ?",
		                 p, 4, read_batch, sizeof(struct store_capi_batch), &rows, n);
	} else {
		struct db_param p[] = {P_TEXT(org_id), P_TEXT(project_id), P_INT(limit)};
		rc = st_read_all(st,
		                 "SELECT " BATCH_COLS " FROM capi_batches WHERE org_id = ? AND "
		                 "project_id = ? ORDER BY id DESC LIMIT ?",
		                 p, 3, read_batch, sizeof(struct store_capi_batch), &rows, n);
	}
	*out = rows;
	return rc;
}
