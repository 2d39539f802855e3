/*
 * store_webhooks.h: webhook endpoints, the message outbox, deliveries with
 * leases, attempts, and the sealed-secret key registry (WEBHOOKS.md), as the
 * API, the CLI and the background tier see them. Same rules as store.h:
 * blocking calls, thread-safe, STORE_OK or a negative STORE_E*, every value
 * bound, both dialects.
 *
 * (The sealed-secret key registry is store_secrets.h.)
 *
 * The outbox: a message row is written in the transaction of the change
 * that causes it (audit_input.event, store.h) or by a publish. A worker
 * fans each new message out into one delivery per matching endpoint (and
 * one mail delivery per organisation contact for the mailed types), then
 * claims due deliveries under a lease (PostgreSQL: FOR UPDATE SKIP LOCKED),
 * attempts them and records the outcome. A delivery whose lease ran out
 * (its worker died) is claimable again: at least once, never lost.
 */
#ifndef PORTCULLIS_STORE_STORE_WEBHOOKS_H
#define PORTCULLIS_STORE_STORE_WEBHOOKS_H

#include "store/store.h"

#include <stdbool.h>
#include <stdint.h>

#define STORE_WH_ID_MAX       40 /* "ep_" / "msg_" / "dlv_" / "att_" + ULID */
#define STORE_WH_URL_MAX      2048
#define STORE_WH_DESC_MAX     500
#define STORE_WH_TYPES_MAX    1024         /* space-separated event types */
#define STORE_WH_TYPE_MAX     128          /* one event type */
#define STORE_WH_SEALED_MAX   512          /* "pcs1:<key id>:<base64>" */
#define STORE_WH_PAYLOAD_MAX  (256 * 1024) /* a published payload */
#define STORE_WH_RESPONSE_MAX 1024         /* response bytes kept per attempt */

/* ---- endpoints ---- */

struct store_endpoint {
	char id[STORE_WH_ID_MAX + 1]; /* ep_<ULID> */
	char org_id[STORE_ID_LEN + 1];
	char project_id[STORE_ID_LEN + 1]; /* "" = every project's and org-wide messages */
	char url[STORE_WH_URL_MAX + 1];
	char description[STORE_WH_DESC_MAX + 1];
	char event_types[STORE_WH_TYPES_MAX + 1];  /* "" = all (null in the API) */
	int64_t rate_limit_per_second;             /* -1 = none */
	char secret[STORE_WH_SEALED_MAX + 1];      /* sealed; never shown after create */
	char prev_secret[STORE_WH_SEALED_MAX + 1]; /* "" unless a rotation grace runs */
	int64_t prev_expires_at;                   /* -1 when none */
	int64_t disabled_at;                       /* -1 = enabled */
	char disabled_reason[64];                  /* gone | failing | user */
	int64_t failing_since;       /* first failed attempt since the last success, -1 */
	int64_t failing_notified_at; /* webhook_endpoint.failing sent, -1 */
	int64_t created_at, updated_at;
};

/* Create and change endpoints; each writes its audit event (a) in the same transaction. */
int store_endpoint_insert(struct store *st, const struct store_endpoint *e,
                          const struct audit_input *a);
/** Endpoint id of org_id (NULL: any org); STORE_ENOTFOUND for another org's or deleted. */
int store_endpoint_get(struct store *st, const char *org_id, const char *id,
                       struct store_endpoint *out);
int store_endpoint_list(struct store *st, const char *org_id, const char *after, int limit,
                        struct store_endpoint **out, int *n);
/** Replace the mutable fields (url, description, types, project, rate limit, disabled). */
int store_endpoint_update(struct store *st, const struct store_endpoint *e,
                          const struct audit_input *a);

/* The mutable fields, for store_endpoint_update_fields. */
#define STORE_EP_URL         (1u << 0)
#define STORE_EP_DESCRIPTION (1u << 1)
#define STORE_EP_EVENT_TYPES (1u << 2)
#define STORE_EP_PROJECT     (1u << 3)
#define STORE_EP_RATE_LIMIT  (1u << 4)
#define STORE_EP_DISABLED    (1u << 5) /* disabled_at (and reason, failure clock) */
#define STORE_EP_ALL         0x3fu

/**
 * Write only the fields in mask (STORE_EP_*) from e; every other column
 * keeps what the row holds now, so a PATCH does not undo a change made
 * after its read (the worker's disable, another PATCH's fields).
 * store_endpoint_update is this with STORE_EP_ALL.
 */
int store_endpoint_update_fields(struct store *st, const struct store_endpoint *e, unsigned mask,
                                 const struct audit_input *a);
/** New sealed secret; the old one becomes prev_secret until prev_expires_at. */
int store_endpoint_rotate(struct store *st, const char *org_id, const char *id, const char *sealed,
                          int64_t prev_expires_at, const struct audit_input *a);
/** Soft-delete: no more deliveries (pending ones end failed), records stay. */
int store_endpoint_delete(struct store *st, const char *org_id, const char *id,
                          const struct audit_input *a);
/**
 * Background tier: disable an endpoint (reason "gone" on 410, "failing"
 * after disable_after_hours) and create webhook_endpoint.disabled for its
 * organisation in the same transaction. STORE_ENOTFOUND if already disabled.
 */
int store_endpoint_disable(struct store *st, const char *id, const char *reason, int64_t at);
/** Background tier: mark failing notified and create webhook_endpoint.failing. */
int store_endpoint_mark_failing(struct store *st, const char *id, int64_t at);

/* ---- messages ---- */

struct store_message {
	char id[STORE_WH_ID_MAX + 1];  /* msg_<ULID> */
	char org_id[STORE_ID_LEN + 1]; /* "" = global */
	char project_id[STORE_ID_LEN + 1];
	char type[STORE_WH_TYPE_MAX + 1];
	int64_t created_at;
	char *body; /* malloc'd exact bytes sent; NULL once purged (free with store_message_free) */
};

void store_message_free(struct store_message *m);

/**
 * The body every receiver gets, byte-identical on every attempt:
 * {"type":T,"timestamp":"<RFC 3339 ms, Z>","data":DATA} (compact, data's
 * keys in insertion order). malloc'd. The store builds events' bodies with
 * it; the API builds published ones with it.
 */
char *store_message_body(const char *type, int64_t created_at_ms, const json_t *data);

/**
 * Publish a platform message (POST /v1/orgs/{orgId}/webhook-messages):
 * m->id, org, project, type, created_at and body as the API built them.
 * With an idempotency key: a second publish with the same key returns
 * STORE_ECONFLICT and fills *existing (when not NULL) with the first
 * message, whose request_hash the caller compares (same: replay the first
 * answer; different: 422). The audit event a is written with it.
 */
int store_message_publish(struct store *st, const struct store_message *m,
                          const char *idempotency_key, const char *request_hash,
                          const struct audit_input *a, struct store_message *existing,
                          char existing_hash[65]);
/** A message visible to org_id (its own or global; NULL: any). */
int store_message_get(struct store *st, const char *org_id, const char *id,
                      struct store_message *out);

struct store_message_filter {
	const char *org_id;      /* NULL: every organisation (root) */
	const char *endpoint_id; /* messages with a delivery to it */
	const char *type;
	const char *status;    /* pending | succeeded | failed: some delivery in it */
	int64_t since, until;  /* -1: open */
	const char *before_id; /* cursor: ids sort by time */
	int limit;
};

/** One delivery's state as listed with its message. Strings borrowed. */
struct store_delivery_read {
	const char *endpoint_id; /* NULL for a mail delivery */
	const char *channel;     /* webhook | email */
	const char *status;      /* pending | succeeded | failed */
	int64_t attempts, next_attempt_at;
};

/**
 * Messages matching f, newest first: each(ctx, m, deliveries, n) once per
 * message, with its deliveries. m's body is NULL here (listings never carry
 * payloads). Everything is borrowed for the callback only.
 */
int store_message_list(struct store *st, const struct store_message_filter *f,
                       void (*each)(void *ctx, const struct store_message *m,
                                    const struct store_delivery_read *d, int n),
                       void *ctx);

/** One attempt as read; strings borrowed. */
struct store_attempt_read {
	const char *id, *delivery_id, *endpoint_id, *channel, *outcome, *error, *response;
	int64_t at, http_status, duration_ms, next_attempt_at; /* -1: none */
};

int store_attempt_list(struct store *st, const char *org_id, const char *message_id,
                       void (*each)(void *ctx, const struct store_attempt_read *a), void *ctx);

/**
 * Resend: the message's deliveries (only endpoint_id's when not NULL) are
 * pending again and due now, with a fresh schedule. *n gets how many.
 */
int store_message_resend(struct store *st, const char *org_id, const char *message_id,
                         const char *endpoint_id, const struct audit_input *a, int *n);
/** Recover: every failed delivery of the endpoint created since is pending and due now. */
int store_endpoint_recover(struct store *st, const char *org_id, const char *endpoint_id,
                           int64_t since, const struct audit_input *a, int *n);
/** A webhook.test message to one endpoint only (fanned out already). */
int store_endpoint_test(struct store *st, const struct store_endpoint *e,
                        const struct store_message *m, const struct audit_input *a);

/* ---- the background tier ---- */

/**
 * Fan out up to limit messages not yet fanned out: one pending delivery,
 * due now, per matching endpoint (enabled, not deleted, types filter,
 * project filter; a global message matches every organisation's), and one
 * mail delivery per organisation with a contact email for the types in
 * mail_types (NULL-terminated; NULL or mail off: none). Each message with
 * its deliveries in one transaction; *n gets the messages done.
 */
int store_fanout(struct store *st, const char *const *mail_types, int limit, int *n);

/** A claimed delivery: everything needed to attempt it. */
struct store_claim {
	char id[STORE_WH_ID_MAX + 1];
	char message_id[STORE_WH_ID_MAX + 1];
	char org_id[STORE_ID_LEN + 1];
	char channel[8]; /* webhook | email */
	char type[STORE_WH_TYPE_MAX + 1];
	char *body;       /* malloc'd; NULL when the message's body was purged */
	int64_t attempts; /* made before this one */
	int64_t created_at;
	/* webhook: the endpoint as it is now */
	struct store_endpoint ep;
	/* email: the organisation's contact now ("" = none: the delivery ends failed) */
	char contact_email[STORE_EMAIL_MAX + 1];
};

void store_claims_free(struct store_claim *c, int n);

/**
 * Claim up to limit due pending deliveries (next_attempt_at <= now, lease
 * expired) for owner until lease_until, at most per_endpoint of one
 * endpoint, none of the endpoints in skip (n_skip of them: the ones this
 * worker has no room for), oldest due first; deliveries of disabled or
 * deleted endpoints are not claimed. *out malloc'd.
 */
int store_claim(struct store *st, const char *owner, int64_t now, int64_t lease_until, int limit,
                int per_endpoint, const char *const *skip, int n_skip, struct store_claim **out,
                int *n);
/** Give back every lease owner holds (a restarted worker, or a clean stop). */
int store_claim_release_all(struct store *st, const char *owner);

/** The outcome of one attempt. */
struct store_attempt {
	const char *delivery_id;
	int64_t at, duration_ms;
	int http_status; /* 0: no response */
	const char
	    *error; /* NULL on success; timeout|connect|tls|dns|egress_refused|status|too_large */
	const char *response; /* first bytes of the response body (<= 1 KiB, text), or NULL */
	bool succeeded;
	int64_t next_attempt_at; /* when failed: the next try, or -1: no more (failed) */
};

/**
 * Record attempts made under owner's leases, in one transaction: each
 * attempt row, its delivery's status/attempts/next try, lease dropped, and
 * the endpoint's health (a success clears failing_since; a failure sets it
 * if unset). An attempt whose lease owner is no longer owner is still
 * recorded but does not move its delivery.
 */
int store_record(struct store *st, const char *owner, const struct store_attempt *a, int n);

/** Queue gauges for /metrics: pending deliveries and the oldest one's created_at (-1). */
int store_outbox_stats(struct store *st, int64_t *pending, int64_t *oldest_created_at);

/**
 * Retention: delete messages older than cutoff_ms (fanned out or not) with
 * every delivery of theirs (of any status, pending and parked ones too) and
 * their attempts, and any attempt or delivery itself older than it. *deleted
 * (may be NULL) gets the rows removed.
 */
int store_webhooks_purge(struct store *st, int64_t cutoff_ms, int64_t *deleted);

#endif
