/*
 * store_capi.h: the Meta Conversions API forward (INGEST.md "Forwarding to
 * ad platforms"): each project's settings (the access token sealed), the
 * batches the background tier claims and sends, and the advertising ids
 * held sealed for them (store_events.h's event_adids). Same rules as
 * store.h: blocking calls, thread-safe, STORE_OK or a negative STORE_E*,
 * every value bound, both dialects (migrations/0010_capi.sql).
 *
 * The process that serves HTTP seals (the token on PUT, an advertising id
 * at ingest) and never opens; only the background tier opens them.
 */
#ifndef PORTCULLIS_STORE_STORE_CAPI_H
#define PORTCULLIS_STORE_STORE_CAPI_H

#include "store/store.h"
#include "store/store_events.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define STORE_CAPI_PIXEL_MAX     32  /* digits */
#define STORE_CAPI_TOKEN_MAX     512 /* bytes of an access token */
#define STORE_CAPI_TEST_CODE_MAX 64
#define STORE_CAPI_SEALED_MAX    1400 /* a sealed token of STORE_CAPI_TOKEN_MAX bytes fits */
#define STORE_CAPI_BATCH_ID_MAX  31   /* "capb_" + ULID */
#define STORE_CAPI_RESPONSE_MAX  1024 /* first 1 KiB of an answer */
#define STORE_CAPI_BATCH_MAX     1000 /* Meta's limit of events per request */

/* The sealed contexts (table, column; row = project id / event id, org = the org). */
#define STORE_CAPI_TOKEN_TABLE  "capi_configs"
#define STORE_CAPI_TOKEN_COLUMN "access_token"
#define STORE_CAPI_ADID_TABLE   "event_adids"
#define STORE_CAPI_ADID_COLUMN  "adid_sealed"

struct store_capi_config {
	char project_id[STORE_ID_LEN + 1];
	char org_id[STORE_ID_LEN + 1];
	bool enabled;
	char pixel_id[STORE_CAPI_PIXEL_MAX + 1];
	char access_token[STORE_CAPI_SEALED_MAX + 1];       /* sealed */
	char test_event_code[STORE_CAPI_TEST_CODE_MAX + 1]; /* "" when none */
	int64_t enabled_since;                              /* ms, -1 never enabled */
	int64_t created_at, updated_at;
};

/**
 * Create or replace the settings of c->project_id (which must be a project
 * of c->org_id: STORE_ENOTFOUND otherwise), with the audit event a.
 * enabled_since becomes now when the forward is switched on from off (or
 * set up enabled), else stays. created_at is kept on a replace.
 */
int store_capi_put(struct store *st, const struct store_capi_config *c,
                   const struct audit_input *a);

/** The settings of project_id in org_id (NULL: any org). STORE_ENOTFOUND when none. */
int store_capi_get(struct store *st, const char *org_id, const char *project_id,
                   struct store_capi_config *out);

/**
 * For the ingest handler: when the forward is on for ev->project_id (the
 * answer cached a few seconds per project), seal adid (NUL-terminated)
 * to the instance's current key for the event's row (event_adids / adid_sealed / ev->id /
 * ev->org_id) into ev->adid_sealed. ev->id and ev->org_id must be set.
 * Leaves ev->adid_sealed "" and returns STORE_ENOTFOUND when the forward
 * is off or there is no key pair; STORE_OK when sealed.
 */
int store_capi_adid_seal(struct store *st, struct store_event *ev, const char *adid);

/** Forget what store_capi_adid_seal cached (tests; a new store at an old address). */
void store_capi_cache_clear(void);

/** A batch and its last outcome. */
struct store_capi_batch {
	char id[STORE_CAPI_BATCH_ID_MAX + 1];
	char org_id[STORE_ID_LEN + 1];
	char project_id[STORE_ID_LEN + 1];
	char pixel_id[STORE_CAPI_PIXEL_MAX + 1];
	char status[16];         /* pending | succeeded | failed */
	int64_t events;          /* events claimed into it */
	int64_t events_sent;     /* events in the last request (the 7-day cut applied), -1 none */
	int64_t events_received; /* Meta's events_received, -1 none */
	int64_t attempts;
	int64_t http_status;                        /* -1 none */
	char error[32];                             /* "" none */
	char response[STORE_CAPI_RESPONSE_MAX + 1]; /* "" none */
	int64_t next_attempt_at, created_at, updated_at;
};

/**
 * Put the not yet claimed events of every project with the forward on into
 * new pending batches of at most max_events (1..STORE_CAPI_BATCH_MAX), due
 * now: events received since the forward was switched on whose timestamp
 * is at least min_timestamp (ms; older ones are never sent). At most one
 * batch per project per call. *made (may be NULL) gets how many.
 */
int store_capi_batches_make(struct store *st, int64_t now, int64_t min_timestamp, int max_events,
                            int *made);

/**
 * Claim one due pending batch for owner until now + lease_ms into *out.
 * STORE_ENOTFOUND when none is due.
 */
int store_capi_claim(struct store *st, const char *owner, int64_t now, int64_t lease_ms,
                     struct store_capi_batch *out);

/** An event of a batch as the forward needs it (strings valid during the callback). */
struct store_capi_event {
	const char *id, *message_id, *type, *event, *user_id, *email_sha256, *phone_sha256, *body;
	const char *org_id;
	const char *adid_sealed; /* "" when none is held */
	int64_t timestamp;       /* ms */
};

/** The events of batch_id still stored, by id: each(ctx, ev) once per event. */
int store_capi_batch_events(struct store *st, const char *batch_id,
                            void (*each)(void *ctx, const struct store_capi_event *ev), void *ctx);

/** What an attempt of a batch came to. */
struct store_capi_outcome {
	const char *status; /* pending (retry at next_attempt_at) | succeeded | failed */
	int64_t events_sent, events_received, http_status; /* -1 none */
	const char *error;                                 /* NULL none */
	const char *response;                              /* NULL none; at most 1 KiB kept */
	int64_t next_attempt_at;                           /* pending only */
};

/**
 * Record an attempt of batch_id held by owner (attempts + 1, the lease
 * given back). When the status is final (succeeded or failed) the held
 * advertising ids of its events are deleted in the same transaction.
 * STORE_ENOTFOUND when owner no longer holds it.
 */
int store_capi_record(struct store *st, const char *batch_id, const char *owner,
                      const struct store_capi_outcome *o);

/** Give back every batch owner holds (due at once). */
int store_capi_release_all(struct store *st, const char *owner);

/**
 * The batches of project_id (of org_id), newest first, before the id
 * before_id (NULL: from the newest), at most limit, into a malloc'd array.
 */
int store_capi_batches_list(struct store *st, const char *org_id, const char *project_id,
                            const char *before_id, int limit, struct store_capi_batch **out,
                            int *n);

#endif
