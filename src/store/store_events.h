/*
 * store_events.h: SDK events (INGEST.md) as the ingest plane writes them
 * and the API reads them. Same rules as store.h: blocking calls,
 * thread-safe, STORE_OK or a negative STORE_E*, every value bound, both
 * dialects.
 *
 * A struct store_event is what is persisted, so it holds no plaintext
 * email, phone, IP or advertising id: src/ingest/ has hashed or dropped
 * them before one is built (the body member is the event's JSON with those
 * members already removed or replaced by their hashes). The advertising id
 * is held only sealed (adid_sealed), for the CAPI forward, and deleted once
 * that forward succeeds or gives up.
 */
#ifndef PORTCULLIS_STORE_STORE_EVENTS_H
#define PORTCULLIS_STORE_STORE_EVENTS_H

#include "store/store.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define STORE_EV_ID_MAX         30  /* "ev_" + ULID */
#define STORE_EV_MESSAGE_ID_MAX 100 /* INGEST.md: longer is a per-event rejection */
#define STORE_EV_TYPE_MAX       16  /* track identify page screen group alias */
#define STORE_EV_NAME_MAX       200 /* track's event, page/screen name */
#define STORE_EV_USER_ID_MAX    256 /* userId, anonymousId */
#define STORE_EV_SHA256_HEX     64
#define STORE_EV_BODY_MAX       (32 * 1024) /* INGEST.md: 32 KiB per event */
#define STORE_EV_SEALED_MAX     512

struct store_event {
	char id[STORE_EV_ID_MAX + 1]; /* ev_<ULID of received_at>: store_event_set_id */
	char org_id[STORE_ID_LEN + 1];
	char project_id[STORE_ID_LEN + 1];
	char key_id[STORE_ID_LEN + 1]; /* the ingest key that sent it */
	char message_id[STORE_EV_MESSAGE_ID_MAX + 1];
	char type[STORE_EV_TYPE_MAX + 1];
	char event[STORE_EV_NAME_MAX + 1];           /* "" when none */
	char user_id[STORE_EV_USER_ID_MAX + 1];      /* "" when none */
	char anonymous_id[STORE_EV_USER_ID_MAX + 1]; /* "" when none */
	char email_sha256[STORE_EV_SHA256_HEX + 1];  /* "" when none */
	char phone_sha256[STORE_EV_SHA256_HEX + 1];  /* "" when none */
	char region[3];                              /* ISO 3166-1 alpha-2, "" unknown */
	int64_t timestamp;                           /* ms, corrected for clock skew */
	int64_t received_at;                         /* ms, the server's clock */
	const char *body;                          /* JSON object, body_len bytes, no NUL needed */
	size_t body_len;                           /* at most STORE_EV_BODY_MAX */
	char adid_sealed[STORE_EV_SEALED_MAX + 1]; /* "" when none (or CAPI off) */
};

/**
 * Give e its id, "ev_" and a ULID of e->received_at (ulid_prefixed_at): ids
 * sort as the events were received, so the since/until filters and the
 * retention purge are id ranges on the indexes lists walk anyway (no index
 * of its own for received_at, migration 0015). The insert refuses an event
 * whose id's time is not its received_at.
 */
void store_event_set_id(struct store_event *e);
/**
 * The least id of an event received at ms or later ("ev_", the ULID of ms
 * with zero random bits): received_at >= ms exactly when id >= it.
 */
void store_event_id_floor(int64_t ms, char out[STORE_EV_ID_MAX + 1]);

/**
 * Insert evs[0..n) in one transaction. An event whose (project_id,
 * message_id) is stored with received_at within dedupe_ms before its own
 * received_at, or that repeats an earlier one of evs, is not stored and
 * gets stored[i] = false (it is acknowledged all the same); every other
 * event gets stored[i] = true. Any failure fails them all (nothing
 * stored). stored may be NULL.
 */
int store_events_insert(struct store *st, const struct store_event *evs, int n, int64_t dedupe_ms,
                        bool *stored);
/**
 * store_events_insert of *evs[0], ..., *evs[n-1]: the group commit's form,
 * which gathers its submissions' events without copying them.
 */
int store_events_insert_refs(struct store *st, const struct store_event *const *evs, int n,
                             int64_t dedupe_ms, bool *stored);

struct event_filter {
	const char *org_id; /* NULL: every organisation (root) */
	const char *project_id, *type, *user_id;
	int64_t since, until;  /* ms, -1: open */
	const char *before_id; /* cursor: event ids sort by received time (ULID) */
	int limit;
};

/**
 * One event as read: strings borrowed from the query's result (valid during
 * the callback only), "" for SQL NULL. adid_sealed is never read back here.
 */
struct store_event_read {
	const char *id, *org_id, *project_id, *key_id, *message_id, *type, *event, *user_id,
	    *anonymous_id, *email_sha256, *phone_sha256, *region, *body;
	int64_t timestamp, received_at;
};

/** Events matching f, newest first: each(ctx, row) once per row, in order. */
int store_events_list(struct store *st, const struct event_filter *f,
                      void (*each)(void *ctx, const struct store_event_read *row), void *ctx);
/** The statement store_events_list runs for f's set filters (the tests EXPLAIN it). */
const char *store_events_list_sql(const struct event_filter *f);
/**
 * Delete events received before cutoff_ms, their held ids and CAPI batch
 * claims, and the finished CAPI batch records made before it; *deleted
 * gets the count of events.
 */
int store_events_purge(struct store *st, int64_t cutoff_ms, int64_t *deleted);

/** INGEST.md's dedupe window: a messageId seen for the project within 24 h. */
#define STORE_EV_DEDUPE_MS (24 * 3600 * 1000LL)

/**
 * Forget the dedupe claims of events received before cutoff_ms (the
 * retention job passes now - STORE_EV_DEDUPE_MS): store_events_insert never
 * reads a claim older than its window, so this only bounds the table.
 * *deleted (may be NULL) gets the count.
 */
int store_events_dedupe_purge(struct store *st, int64_t cutoff_ms, int64_t *deleted);

/**
 * The retention job's step (portcullis retention run, the background
 * tier's hourly purge): events received more than days before now_ms (with
 * their held ids), and the dedupe claims past STORE_EV_DEDUPE_MS. *deleted
 * (may be NULL) gets the events' count.
 */
int store_events_retention(struct store *st, int64_t days, int64_t now_ms, int64_t *deleted);

/**
 * Delete the held advertising ids of events ids[0..n) (the CAPI forward
 * succeeded or gave up); ids without one are skipped. One transaction.
 */
int store_events_adids_delete(struct store *st, const char *const *ids, int n);

#endif
