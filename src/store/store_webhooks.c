/*
 * store_webhooks.c: the webhook outbox of store_webhooks.h over the db.h
 * drivers: endpoints, messages (written with the change that causes them,
 * st_event_insert_tx, or by a publish), the worker's fan-out into one
 * delivery per (message, target), leased claims, attempt records and
 * retention (migrations/0004_webhooks.sql has the tables).
 *
 * Claims are leases: a claim sets lease_owner and lease_until and moves
 * next_attempt_at to lease_until, so the claim index's range (pending,
 * due) never holds a delivery in flight and one whose worker died is due
 * again when its lease ends. On PostgreSQL the rows are locked with FOR
 * UPDATE SKIP LOCKED, so several worker nodes share the work and never
 * claim one delivery twice; SQLite has one writer (BEGIN IMMEDIATE), so a
 * plain UPDATE ... RETURNING is as safe.
 *
 * Durability: messages (events with their change, publishes, tests),
 * claims, endpoint changes, resends and recovers commit durably. Fan-out
 * and attempt records use the non-durable path (SQLite synchronous=NORMAL):
 * SQLite's WAL keeps commits in order, so a power failure loses only a
 * suffix of them, never one before a durable commit that followed. A lost
 * fan-out leaves its message fanned_out = 0 with its deliveries gone too:
 * it is fanned out again. A lost record leaves its delivery pending under
 * the old lease: the restarted worker releases its leases (or the lease
 * runs out) and the delivery is attempted once more. Neither loses an
 * acknowledged message; the second can deliver one twice, which at least
 * once allows (receivers dedupe on webhook-id).
 *
 * Multi-row statements (deliveries, attempts, delivery and endpoint
 * updates) come in sizes of 1, 2, 4, ..., 64 rows, each one string literal
 * so both drivers' statement caches keep them (as store.c's request log).
 */
#include "store/store_webhooks.h"

#include "core/alloc.h"
#include "core/clock.h"
#include "core/json.h"
#include "core/str.h"
#include "core/ulid.h"
#include "store/db.h"
#include "store/store_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define LIST_MAX         1000 /* rows one listing or claim returns at most */
#define LIST_DELIVERIES  100  /* deliveries shown per listed message */
#define SKIP_MAX         4096 /* endpoints one claim may skip */
#define IDEM_KEY_MAX     255
#define BODY_MAX         (STORE_WH_PAYLOAD_MAX + 1024) /* a payload and its envelope */
#define ERROR_CLASS_MAX  31
#define FANOUT_BATCH_MAX 500
/* Due rows one claim looks at (DUE_IDS): enough for limit over several targets. */
#define WINDOW_ROWS(limit) ((limit)*4 + 64)

/* A NUL inside the field's array: it is a bounded C string. */
#define FIELD_OK(f) (memchr((f), 0, sizeof(f)) != NULL)

static const char *opt_str(const char *s)
{
	return s && s[0] ? s : NULL;
}

static int clamp_limit(int limit)
{
	return limit < 1 ? 1 : limit > LIST_MAX ? LIST_MAX : limit;
}

static bool bounded(const char *s, size_t max)
{
	return s && strnlen(s, max + 1) <= max;
}

/* ---------- message bodies and event messages ---------- */

char *store_message_body(const char *type, int64_t created_at_ms, const json_t *data)
{
	if (!type || created_at_ms < 0)
		return NULL;
	json_t *t = json_string(type);
	if (!t)
		return NULL; /* not UTF-8 */
	json_t *o = json_object();
	json_object_set_new(o, "type", t);
	json_object_set_new(o, "timestamp", json_time(created_at_ms));
	/* data is only read: the object holds a reference while it is dumped. */
	json_object_set(o, "data", data ? (json_t *)data : json_object());
	if (!data)
		json_decref(json_object_get(o, "data"));
	char *body = json_dumps(o, JSON_COMPACT);
	json_decref(o);
	return body;
}

void store_message_free(struct store_message *m)
{
	if (!m)
		return;
	free(m->body);
	m->body = NULL;
}

#define MSG_COLS "id, org_id, project_id, type, created_at, body"

static const char *const msg_insert_sql =
    "INSERT INTO webhook_messages (id, org_id, project_id, type, body, idempotency_key, "
    "request_hash, fanned_out, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)";
static const char *const msg_insert_idem_sql =
    "INSERT INTO webhook_messages (id, org_id, project_id, type, body, idempotency_key, "
    "request_hash, fanned_out, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) "
    "ON CONFLICT (org_id, idempotency_key) DO NOTHING";

struct msg_row {
	const char *id, *org_id, *project_id, *type, *body, *idem_key, *request_hash;
	bool fanned_out;
	int64_t created_at;
};

/* Insert one message; *inserted (may be NULL) false when its key was taken. */
static int msg_insert(struct db_conn *c, const struct msg_row *m, bool *inserted)
{
	if (!bounded(m->id, STORE_WH_ID_MAX) || !str_has_prefix(m->id, "msg_") ||
	    !bounded(m->type, STORE_WH_TYPE_MAX) || !m->type[0] || !bounded(m->body, BODY_MAX) ||
	    (m->org_id && !bounded(m->org_id, STORE_ID_LEN)) ||
	    (m->project_id && !bounded(m->project_id, STORE_ID_LEN)) ||
	    (m->idem_key && !bounded(m->idem_key, IDEM_KEY_MAX)) ||
	    (m->request_hash && !bounded(m->request_hash, 64)))
		return STORE_ERROR;
	struct db_param p[] = {P_TEXT(m->id),
	                       P_TEXT(opt_str(m->org_id)),
	                       P_TEXT(opt_str(m->project_id)),
	                       P_TEXT(m->type),
	                       P_TEXT(m->body),
	                       P_TEXT(m->idem_key),
	                       P_TEXT(m->request_hash),
	                       P_INT(m->fanned_out),
	                       P_INT(m->created_at)};
	struct db_result *r = NULL;
	int rc = sq(c, m->idem_key ? msg_insert_idem_sql : msg_insert_sql, p, 9, &r);
	if (rc == STORE_OK && inserted)
		*inserted = r->changes > 0;
	db_result_free(r);
	return rc;
}

/*
 * The webhook message of an audited change (audit_input.event), inside
 * the change's transaction: type = action, org (NULL: global), project.
 */
int st_event_insert_tx(struct db_conn *c, const struct audit_input *a)
{
	/*
	 * Only global.* events are for every organisation; another event with
	 * no organisation (a root key's, say) has no one to tell, and must not
	 * reach every tenant's endpoints.
	 */
	if (!opt_str(a->org_id) && !str_has_prefix(a->action ? a->action : "", "global."))
		return STORE_OK;
	int64_t now = clock_now_ms();
	char id[STORE_WH_ID_MAX + 1];
	ulid_prefixed("msg", id, sizeof id);
	if (!bounded(a->action, STORE_WH_TYPE_MAX))
		return STORE_ERROR;
	char *body = store_message_body(a->action, now, a->event);
	if (!body)
		return STORE_ERROR;
	struct msg_row m = {.id = id,
	                    .org_id = a->org_id,
	                    .project_id = a->event_project_id,
	                    .type = a->action,
	                    .body = body,
	                    .created_at = now};
	int rc = msg_insert(c, &m, NULL);
	free(body);
	return rc;
}

/* A message's columns 0..4 (MSG_COLS without the body). */
static void read_message_head(const struct db_result *r, int i, struct store_message *m)
{
	st_copy_str(m->id, sizeof m->id, db_text(r, i, 0));
	st_copy_str(m->org_id, sizeof m->org_id, db_text(r, i, 1));
	st_copy_str(m->project_id, sizeof m->project_id, db_text(r, i, 2));
	st_copy_str(m->type, sizeof m->type, db_text(r, i, 3));
	m->created_at = db_int(r, i, 4);
	m->body = NULL;
}

static void read_message(const struct db_result *r, int i, void *row)
{
	struct store_message *m = row;
	read_message_head(r, i, m);
	const char *body = db_text(r, i, 5);
	m->body = body ? xstrdup(body) : NULL;
}

/* ---------- endpoints ---------- */

#define EP_COLS                                                                                    \
	"id, org_id, project_id, url, description, event_types, rate_limit_per_second, secret, "   \
	"prev_secret, prev_expires_at, disabled_at, disabled_reason, failing_since, "              \
	"failing_notified_at, created_at, updated_at"
#define EP_COLS_E                                                                                  \
	"e.id, e.org_id, e.project_id, e.url, e.description, e.event_types, "                      \
	"e.rate_limit_per_second, e.secret, e.prev_secret, e.prev_expires_at, e.disabled_at, "     \
	"e.disabled_reason, e.failing_since, e.failing_notified_at, e.created_at, e.updated_at"
#define EP_NCOLS 16

/* An endpoint from columns [col, col + EP_NCOLS) of row i. */
static void read_endpoint_at(const struct db_result *r, int i, int col, struct store_endpoint *e)
{
	st_copy_str(e->id, sizeof e->id, db_text(r, i, col + 0));
	st_copy_str(e->org_id, sizeof e->org_id, db_text(r, i, col + 1));
	st_copy_str(e->project_id, sizeof e->project_id, db_text(r, i, col + 2));
	st_copy_str(e->url, sizeof e->url, db_text(r, i, col + 3));
	st_copy_str(e->description, sizeof e->description, db_text(r, i, col + 4));
	st_copy_str(e->event_types, sizeof e->event_types, db_text(r, i, col + 5));
	e->rate_limit_per_second = db_int_or(r, i, col + 6, -1);
	st_copy_str(e->secret, sizeof e->secret, db_text(r, i, col + 7));
	st_copy_str(e->prev_secret, sizeof e->prev_secret, db_text(r, i, col + 8));
	e->prev_expires_at = db_int_or(r, i, col + 9, -1);
	e->disabled_at = db_int_or(r, i, col + 10, -1);
	st_copy_str(e->disabled_reason, sizeof e->disabled_reason, db_text(r, i, col + 11));
	e->failing_since = db_int_or(r, i, col + 12, -1);
	e->failing_notified_at = db_int_or(r, i, col + 13, -1);
	e->created_at = db_int(r, i, col + 14);
	e->updated_at = db_int(r, i, col + 15);
}

static void read_endpoint(const struct db_result *r, int i, void *row)
{
	read_endpoint_at(r, i, 0, row);
}

static bool endpoint_ok(const struct store_endpoint *e)
{
	return FIELD_OK(e->id) && str_has_prefix(e->id, "ep_") && FIELD_OK(e->org_id) &&
	       e->org_id[0] && FIELD_OK(e->project_id) && FIELD_OK(e->url) && e->url[0] &&
	       FIELD_OK(e->description) && FIELD_OK(e->event_types) && FIELD_OK(e->secret) &&
	       FIELD_OK(e->prev_secret) && FIELD_OK(e->disabled_reason);
}

/* The reason stored with a disabled endpoint: the caller's, else "user". */
static const char *disabled_reason(const struct store_endpoint *e)
{
	return e->disabled_reason[0] ? e->disabled_reason : "user";
}

static int endpoint_insert_fn(struct db_conn *c, void *arg)
{
	const struct store_endpoint *e = arg;
	struct db_param p[] = {P_TEXT(e->id),
	                       P_TEXT(e->org_id),
	                       P_TEXT(opt_str(e->project_id)),
	                       P_TEXT(e->url),
	                       P_TEXT(opt_str(e->description)),
	                       P_TEXT(opt_str(e->event_types)),
	                       st_int_or_null(e->rate_limit_per_second),
	                       P_TEXT(e->secret),
	                       P_TEXT(opt_str(e->prev_secret)),
	                       st_int_or_null(e->prev_expires_at),
	                       st_int_or_null(e->disabled_at),
	                       P_TEXT(e->disabled_at >= 0 ? disabled_reason(e) : NULL),
	                       st_int_or_null(e->failing_since),
	                       st_int_or_null(e->failing_notified_at),
	                       P_INT(e->created_at),
	                       P_INT(e->updated_at)};
	return sq(c,
	          "INSERT INTO webhook_endpoints (" EP_COLS
	          ") VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
	          p, EP_NCOLS, NULL);
}

int store_endpoint_insert(struct store *st, const struct store_endpoint *e,
                          const struct audit_input *a)
{
	if (!endpoint_ok(e) || !e->secret[0])
		return STORE_ERROR;
	return st_in_tx(st, endpoint_insert_fn, (void *)e, a, NO_CHANGE);
}

int store_endpoint_get(struct store *st, const char *org_id, const char *id,
                       struct store_endpoint *out)
{
	struct db_param p[] = {P_TEXT(id), P_TEXT(org_id), P_TEXT(org_id)};
	return st_read_one(st,
	                   "SELECT " EP_COLS " FROM webhook_endpoints WHERE id = ? AND "
	                   "(? IS NULL OR org_id = ?) AND deleted_at IS NULL",
	                   p, 3, read_endpoint, out);
}

int store_endpoint_list(struct store *st, const char *org_id, const char *after, int limit,
                        struct store_endpoint **out, int *n)
{
	struct db_param p[] = {P_TEXT(org_id), P_TEXT(org_id), P_TEXT(after ? after : ""),
	                       P_INT(clamp_limit(limit))};
	void *rows = NULL;
	int rc = st_read_all(st,
	                     "SELECT " EP_COLS " FROM webhook_endpoints WHERE "
	                     "(? IS NULL OR org_id = ?) AND deleted_at IS NULL AND id > ? "
	                     "ORDER BY id LIMIT ?",
	                     p, 4, read_endpoint, sizeof **out, &rows, n);
	*out = rows;
	return rc;
}

/* Fail with STORE_ENOTFOUND when a statement changed no row. */
static int changed_one(struct db_conn *c, const char *sql, const struct db_param *p, int n)
{
	struct db_result *r = NULL;
	int rc = sq(c, sql, p, n, &r);
	if (rc == STORE_OK && r->changes == 0)
		rc = STORE_ENOTFOUND;
	db_result_free(r);
	return rc;
}

/* STORE_OK when a query finds a row, else STORE_ENOTFOUND. */
static int row_exists(struct db_conn *c, const char *sql, const struct db_param *p, int n)
{
	struct db_result *r = NULL;
	int rc = sq(c, sql, p, n, &r);
	if (rc == STORE_OK && r->nrows == 0)
		rc = STORE_ENOTFOUND;
	db_result_free(r);
	return rc;
}

/* STORE_OK when message id is visible to org_id (NULL: any). */
static int message_visible(struct db_conn *c, const char *org_id, const char *id)
{
	struct db_param p[] = {P_TEXT(id), P_TEXT(org_id), P_TEXT(org_id)};
	return row_exists(c,
	                  "SELECT 1 FROM webhook_messages WHERE id = ? AND (? IS NULL OR "
	                  "org_id = ? OR org_id IS NULL)",
	                  p, 3);
}

/* STORE_OK when endpoint id of org_id (NULL: any) exists and is not deleted. */
static int endpoint_live(struct db_conn *c, const char *org_id, const char *id)
{
	struct db_param p[] = {P_TEXT(id), P_TEXT(org_id), P_TEXT(org_id)};
	return row_exists(c,
	                  "SELECT 1 FROM webhook_endpoints WHERE id = ? AND (? IS NULL OR "
	                  "org_id = ?) AND deleted_at IS NULL",
	                  p, 3);
}

/*
 * A disabled endpoint's pending deliveries leave the claim index's due
 * range (next_attempt_at NULL: they stay pending, never due), so claims do
 * not walk past them however many pile up; enabling it makes them due now.
 */
static int endpoint_park(struct db_conn *c, const char *id, bool disabled)
{
	struct db_param p[] = {P_TEXT(id)};
	struct db_param q[] = {P_INT(clock_now_ms()), P_TEXT(id)};
	return disabled ? sq(c,
	                     "UPDATE webhook_deliveries SET next_attempt_at = NULL WHERE "
	                     "endpoint_id = ? AND status = 'pending'",
	                     p, 1, NULL)
	                : sq(c,
	                     "UPDATE webhook_deliveries SET next_attempt_at = ? WHERE "
	                     "endpoint_id = ? AND status = 'pending' AND next_attempt_at IS NULL",
	                     q, 2, NULL);
}

struct ep_update_args {
	const struct store_endpoint *e;
	unsigned mask;
};

static int endpoint_update_fn(struct db_conn *c, void *arg)
{
	const struct ep_update_args *ua = arg;
	const struct store_endpoint *e = ua->e;
	unsigned m = ua->mask;
	bool named = m & STORE_EP_DISABLED;
	bool disabled = e->disabled_at >= 0;
	/* enable / disable: what the request asked of disabled; neither keeps the row's. */
	int en = named && !disabled, dis = named && disabled;
	int64_t now = clock_now_ms();
	/*
	 * Enabling a disabled endpoint restarts its failure clock; disabling
	 * an enabled one records when and why; one that stays disabled keeps
	 * its first time and reason. A field not in the mask keeps the row's
	 * value, read and written in this one statement.
	 */
	struct db_param p[] = {P_INT(!!(m & STORE_EP_URL)),
	                       P_TEXT(e->url),
	                       P_INT(!!(m & STORE_EP_DESCRIPTION)),
	                       P_TEXT(opt_str(e->description)),
	                       P_INT(!!(m & STORE_EP_EVENT_TYPES)),
	                       P_TEXT(opt_str(e->event_types)),
	                       P_INT(!!(m & STORE_EP_PROJECT)),
	                       P_TEXT(opt_str(e->project_id)),
	                       P_INT(!!(m & STORE_EP_RATE_LIMIT)),
	                       st_int_or_null(e->rate_limit_per_second),
	                       P_INT(en),
	                       P_INT(en),
	                       P_INT(en),
	                       P_INT(dis),
	                       P_TEXT(disabled_reason(e)),
	                       P_INT(en),
	                       P_INT(dis),
	                       P_INT(disabled ? e->disabled_at : 0),
	                       P_INT(now),
	                       P_TEXT(e->id),
	                       P_TEXT(e->org_id)};
	/*
	 * Deliveries before the endpoint row, as store_record locks them, so the
	 * two never wait on each other in opposite orders (PostgreSQL).
	 */
	int rc = endpoint_live(c, e->org_id, e->id);
	if (rc == STORE_OK && named)
		rc = endpoint_park(c, e->id, disabled);
	if (rc == STORE_OK)
		rc = changed_one(
		    c,
		    "UPDATE webhook_endpoints SET url = CASE WHEN ? = 1 THEN ? ELSE url END, "
		    "description = CASE WHEN ? = 1 THEN ? ELSE description END, "
		    "event_types = CASE WHEN ? = 1 THEN ? ELSE event_types END, "
		    "project_id = CASE WHEN ? = 1 THEN ? ELSE project_id END, "
		    "rate_limit_per_second = CASE WHEN ? = 1 THEN ? ELSE rate_limit_per_second "
		    "END, "
		    "failing_since = CASE WHEN ? = 1 AND disabled_at IS NOT NULL THEN NULL "
		    "ELSE failing_since END, "
		    "failing_notified_at = CASE WHEN ? = 1 AND disabled_at IS NOT NULL THEN NULL "
		    "ELSE failing_notified_at END, "
		    "disabled_reason = CASE WHEN ? = 1 THEN NULL WHEN ? = 1 AND disabled_at IS "
		    "NULL "
		    "THEN ? ELSE disabled_reason END, "
		    "disabled_at = CASE WHEN ? = 1 THEN NULL WHEN ? = 1 THEN COALESCE(disabled_at, "
		    "?) "
		    "ELSE disabled_at END, "
		    "updated_at = ? WHERE id = ? AND org_id = ? AND deleted_at IS NULL",
		    p, 21);
	return rc;
}

int store_endpoint_update_fields(struct store *st, const struct store_endpoint *e, unsigned mask,
                                 const struct audit_input *a)
{
	if (!endpoint_ok(e) || (mask & ~STORE_EP_ALL))
		return STORE_ERROR;
	struct ep_update_args ua = {e, mask};
	return st_in_tx(st, endpoint_update_fn, &ua, a, NO_CHANGE);
}

int store_endpoint_update(struct store *st, const struct store_endpoint *e,
                          const struct audit_input *a)
{
	return store_endpoint_update_fields(st, e, STORE_EP_ALL, a);
}

struct ep_rotate_args {
	const char *org_id, *id, *sealed;
	int64_t prev_expires_at;
};

static int endpoint_rotate_fn(struct db_conn *c, void *arg)
{
	const struct ep_rotate_args *ra = arg;
	bool grace = ra->prev_expires_at > 0;
	struct db_param p[] = {
	    P_INT(grace),       P_INT(grace),          P_INT(grace ? ra->prev_expires_at : 0),
	    P_TEXT(ra->sealed), P_INT(clock_now_ms()), P_TEXT(ra->id),
	    P_TEXT(ra->org_id), P_TEXT(ra->org_id)};
	return changed_one(c,
	                   "UPDATE webhook_endpoints SET prev_secret = CASE WHEN ? = 1 THEN "
	                   "secret ELSE NULL END, prev_expires_at = CASE WHEN ? = 1 THEN ? ELSE "
	                   "NULL END, secret = ?, updated_at = ? WHERE id = ? AND "
	                   "(? IS NULL OR org_id = ?) AND deleted_at IS NULL",
	                   p, 8);
}

int store_endpoint_rotate(struct store *st, const char *org_id, const char *id, const char *sealed,
                          int64_t prev_expires_at, const struct audit_input *a)
{
	if (!bounded(sealed, STORE_WH_SEALED_MAX) || !sealed[0] || !id)
		return STORE_ERROR;
	struct ep_rotate_args ra = {org_id, id, sealed, prev_expires_at};
	return st_in_tx(st, endpoint_rotate_fn, &ra, a, NO_CHANGE);
}

struct ep_ref {
	const char *org_id, *id;
};

static int endpoint_delete_fn(struct db_conn *c, void *arg)
{
	const struct ep_ref *er = arg;
	int64_t now = clock_now_ms();
	struct db_param p[] = {P_INT(now), P_INT(now), P_TEXT(er->id), P_TEXT(er->org_id),
	                       P_TEXT(er->org_id)};
	/* Deliveries first, as in endpoint_update_fn. */
	int rc = endpoint_live(c, er->org_id, er->id);
	/* Its pending deliveries end failed; a worker holding one no longer moves it. */
	struct db_param d[] = {P_INT(now), P_TEXT(er->id)};
	if (rc == STORE_OK)
		rc = sq(c,
		        "UPDATE webhook_deliveries SET status = 'failed', next_attempt_at = NULL, "
		        "lease_until = NULL, lease_owner = NULL, updated_at = ? WHERE "
		        "endpoint_id = ? AND status = 'pending'",
		        d, 2, NULL);
	if (rc == STORE_OK)
		rc =
		    changed_one(c,
		                "UPDATE webhook_endpoints SET deleted_at = ?, updated_at = ? WHERE "
		                "id = ? AND (? IS NULL OR org_id = ?) AND deleted_at IS NULL",
		                p, 5);
	return rc;
}

int store_endpoint_delete(struct store *st, const char *org_id, const char *id,
                          const struct audit_input *a)
{
	struct ep_ref er = {org_id, id};
	return st_in_tx(st, endpoint_delete_fn, &er, a, NO_CHANGE);
}

/*
 * The background tier's notices about an endpoint: the change, its audit
 * event (actor "system") and the webhook message of type action for the
 * endpoint's organisation, in one transaction.
 */
struct ep_notice_args {
	const char *id, *action, *reason;
	int64_t at;
};

static int endpoint_notice_fn(struct db_conn *c, void *arg)
{
	const struct ep_notice_args *na = arg;
	struct db_param g[] = {P_TEXT(na->id)};
	struct db_result *r = NULL;
	bool disable = strcmp(na->action, "webhook_endpoint.disabled") == 0;
	int rc = sq(c,
	            disable ? "SELECT org_id, url, failing_since FROM webhook_endpoints WHERE "
	                      "id = ? AND disabled_at IS NULL AND deleted_at IS NULL"
	                    : "SELECT org_id, url, failing_since FROM webhook_endpoints WHERE "
	                      "id = ? AND failing_notified_at IS NULL AND deleted_at IS NULL",
	            g, 1, &r);
	if (rc == STORE_OK && r->nrows == 0)
		rc = STORE_ENOTFOUND;
	if (rc != STORE_OK) {
		db_result_free(r);
		return rc;
	}
	char org[STORE_ID_LEN + 1];
	st_copy_str(org, sizeof org, db_text(r, 0, 0));
	int64_t failing_since = st_time_or_none(r, 0, 2);
	json_t *data = json_object();
	json_object_set_new(data, "endpoint_id", json_string(na->id));
	json_object_set_new(data, "url", json_string(db_text(r, 0, 1) ? db_text(r, 0, 1) : ""));
	json_object_set_new(data, "reason", json_string(na->reason));
	json_object_set_new(data, "failing_since", json_time(failing_since));
	json_object_set_new(data, "at", json_time(na->at));
	db_result_free(r);

	struct db_param u[] = {P_INT(na->at), P_TEXT(na->reason), P_INT(na->at), P_TEXT(na->id)};
	struct db_param f[] = {P_INT(na->at), P_TEXT(na->id)};
	if (disable) /* deliveries first, as in endpoint_update_fn */
		rc = endpoint_park(c, na->id, true);
	if (rc == STORE_OK)
		rc = disable ? changed_one(c,
		                           "UPDATE webhook_endpoints SET disabled_at = ?, "
		                           "disabled_reason = ?, updated_at = ? WHERE id = ? AND "
		                           "disabled_at IS NULL AND deleted_at IS NULL",
		                           u, 4)
		             : changed_one(
		                   c,
		                   "UPDATE webhook_endpoints SET failing_notified_at = ? WHERE "
		                   "id = ? AND failing_notified_at IS NULL AND deleted_at IS NULL",
		                   f, 2);
	json_t *details = json_pack("{s:s}", "reason", na->reason);
	struct audit_input a = {.org_id = org,
	                        .actor_type = "system",
	                        .action = na->action,
	                        .target_type = "webhook_endpoint",
	                        .target_id = na->id,
	                        .details = details,
	                        .event = data};
	if (rc == STORE_OK)
		rc = st_audit_event_tx(c, &a);
	json_decref(details);
	json_decref(data);
	return rc;
}

int store_endpoint_disable(struct store *st, const char *id, const char *reason, int64_t at)
{
	if (!id || !bounded(reason, 63) || !reason[0])
		return STORE_ERROR;
	struct ep_notice_args na = {id, "webhook_endpoint.disabled", reason, at};
	return st_in_tx(st, endpoint_notice_fn, &na, NULL, NO_CHANGE);
}

int store_endpoint_mark_failing(struct store *st, const char *id, int64_t at)
{
	if (!id)
		return STORE_ERROR;
	struct ep_notice_args na = {id, "webhook_endpoint.failing", "failing", at};
	return st_in_tx(st, endpoint_notice_fn, &na, NULL, NO_CHANGE);
}

/* ---------- messages ---------- */

struct publish_args {
	const struct store_message *m;
	const char *idem_key, *request_hash;
	struct store_message *existing;
	char *existing_hash;
};

static int publish_fn(struct db_conn *c, void *arg)
{
	struct publish_args *pa = arg;
	const struct store_message *m = pa->m;
	struct msg_row row = {.id = m->id,
	                      .org_id = m->org_id,
	                      .project_id = m->project_id,
	                      .type = m->type,
	                      .body = m->body,
	                      .idem_key = pa->idem_key,
	                      .request_hash = pa->request_hash,
	                      .created_at = m->created_at};
	bool inserted = true;
	int rc = msg_insert(c, &row, &inserted);
	if (rc != STORE_OK || inserted)
		return rc;
	/* The key was taken: the first message, for the caller to compare. */
	struct db_param p[] = {P_TEXT(m->org_id), P_TEXT(pa->idem_key)};
	struct db_result *r = NULL;
	rc = sq(c,
	        "SELECT " MSG_COLS ", request_hash FROM webhook_messages WHERE org_id = ? AND "
	        "idempotency_key = ?",
	        p, 2, &r);
	if (rc == STORE_OK && r->nrows == 1) {
		if (pa->existing)
			read_message(r, 0, pa->existing);
		if (pa->existing_hash)
			st_copy_str(pa->existing_hash, 65, db_text(r, 0, 6));
	}
	db_result_free(r);
	return rc == STORE_OK ? STORE_ECONFLICT : rc;
}

int store_message_publish(struct store *st, const struct store_message *m,
                          const char *idempotency_key, const char *request_hash,
                          const struct audit_input *a, struct store_message *existing,
                          char existing_hash[65])
{
	/* The out parameters are always set, so the caller may free *existing either way. */
	if (existing)
		*existing = (struct store_message){.body = NULL};
	if (existing_hash)
		existing_hash[0] = '\0';
	if (!m->org_id[0] || !m->body)
		return STORE_ERROR;
	struct publish_args pa = {m, opt_str(idempotency_key), request_hash, existing,
	                          existing_hash};
	return st_in_tx(st, publish_fn, &pa, a, NO_CHANGE);
}

int store_message_get(struct store *st, const char *org_id, const char *id,
                      struct store_message *out)
{
	struct db_param p[] = {P_TEXT(id), P_TEXT(org_id), P_TEXT(org_id)};
	out->body = NULL;
	return st_read_one(st,
	                   "SELECT " MSG_COLS " FROM webhook_messages WHERE id = ? AND "
	                   "(? IS NULL OR org_id = ? OR org_id IS NULL)",
	                   p, 3, read_message, out);
}

int store_message_list(struct store *st, const struct store_message_filter *f,
                       void (*each)(void *ctx, const struct store_message *m,
                                    const struct store_delivery_read *d, int n),
                       void *ctx)
{
	bool by_delivery = f->endpoint_id || f->status;
	struct db_param p[] = {
	    P_TEXT(f->org_id),      P_TEXT(f->org_id),  P_TEXT(f->type),
	    P_TEXT(f->type),        P_INT(f->since),    P_INT(f->since),
	    P_INT(f->until),        P_INT(f->until),    P_TEXT(f->before_id),
	    P_TEXT(f->before_id),   P_INT(by_delivery), P_TEXT(f->endpoint_id),
	    P_TEXT(f->endpoint_id), P_TEXT(f->status),  P_TEXT(f->status),
	    P_TEXT(f->org_id),      P_TEXT(f->org_id),  P_INT(clamp_limit(f->limit)),
	    P_TEXT(f->org_id),      P_TEXT(f->org_id),  P_INT(LIST_DELIVERIES)};
	struct db_result *r = NULL;
	/*
	 * The page of messages, then each one's deliveries (those of org_id's
	 * endpoints and mailbox only), at most LIST_DELIVERIES per message.
	 */
	int rc = st_read_q(
	    st,
	    "SELECT x.id, x.org_id, x.project_id, x.type, x.created_at, x.endpoint_id, x.channel, "
	    "x.status, x.attempts, x.next_attempt_at FROM (SELECT w.id, w.org_id, w.project_id, "
	    "w.type, w.created_at, d.endpoint_id, d.channel, d.status, d.attempts, "
	    "d.next_attempt_at, d.target, row_number() OVER (PARTITION BY w.id ORDER BY "
	    "d.target) AS rn FROM (SELECT m.id, m.org_id, m.project_id, m.type, m.created_at "
	    "FROM webhook_messages m WHERE (? IS NULL OR m.org_id = ? OR m.org_id IS NULL) "
	    "AND (? IS NULL OR m.type = ?) AND (? < 0 OR m.created_at >= ?) "
	    "AND (? < 0 OR m.created_at < ?) AND (? IS NULL OR m.id < ?) "
	    "AND (? = 0 OR EXISTS (SELECT 1 FROM webhook_deliveries q WHERE "
	    "q.message_id = m.id AND (? IS NULL OR q.target = ?) AND (? IS NULL OR "
	    "q.status = ?) AND (? IS NULL OR q.org_id = ?))) ORDER BY m.id DESC LIMIT ?) w "
	    "LEFT JOIN webhook_deliveries d ON d.message_id = w.id AND (? IS NULL OR "
	    "d.org_id = ?)) x WHERE x.rn <= ? ORDER BY x.id DESC, x.target",
	    p, 21, &r);
	if (rc != STORE_OK)
		return rc;
	struct store_delivery_read d[LIST_DELIVERIES];
	for (int i = 0; i < r->nrows;) {
		struct store_message m;
		read_message_head(r, i, &m);
		int n = 0, j = i;
		for (; j < r->nrows && strcmp(db_text(r, j, 0), db_text(r, i, 0)) == 0; j++) {
			if (!db_text(r, j, 6) || n == LIST_DELIVERIES)
				continue; /* a message with no delivery (yet) */
			d[n++] = (struct store_delivery_read){
			    .endpoint_id = db_text(r, j, 5),
			    .channel = db_text(r, j, 6),
			    .status = db_text(r, j, 7),
			    .attempts = db_int(r, j, 8),
			    .next_attempt_at = st_time_or_none(r, j, 9),
			};
		}
		each(ctx, &m, d, n);
		i = j;
	}
	db_result_free(r);
	return STORE_OK;
}

int store_attempt_list(struct store *st, const char *org_id, const char *message_id,
                       void (*each)(void *ctx, const struct store_attempt_read *a), void *ctx)
{
	struct db_conn *c = st_acquire(st);
	if (!c)
		return STORE_EUNAVAILABLE;
	int rc = message_visible(c, org_id, message_id);
	struct db_param p[] = {P_TEXT(message_id), P_TEXT(org_id), P_TEXT(org_id), P_INT(LIST_MAX)};
	struct db_result *r = NULL;
	if (rc == STORE_OK)
		rc = sq(
		    c,
		    "SELECT id, delivery_id, endpoint_id, channel, outcome, error, response, at, "
		    "http_status, duration_ms, next_attempt_at FROM webhook_attempts WHERE "
		    "message_id = ? AND (? IS NULL OR org_id = ?) ORDER BY id LIMIT ?",
		    p, 4, &r);
	st_release(st, c, rc);
	for (int i = 0; rc == STORE_OK && i < r->nrows; i++) {
		struct store_attempt_read a = {
		    .id = db_text(r, i, 0),
		    .delivery_id = db_text(r, i, 1),
		    .endpoint_id = db_text(r, i, 2),
		    .channel = db_text(r, i, 3),
		    .outcome = db_text(r, i, 4),
		    .error = db_text(r, i, 5),
		    .response = db_text(r, i, 6),
		    .at = st_time_or_none(r, i, 7),
		    .http_status = st_time_or_none(r, i, 8),
		    .duration_ms = st_time_or_none(r, i, 9),
		    .next_attempt_at = st_time_or_none(r, i, 10),
		};
		each(ctx, &a);
	}
	db_result_free(r);
	return rc;
}

/*
 * A requeued delivery's next_attempt_at (one parameter: now): due now,
 * unless its endpoint is disabled, which keeps it parked (endpoint_park).
 */
#define DUE_UNLESS_PARKED                                                                          \
	"CASE WHEN EXISTS (SELECT 1 FROM webhook_endpoints p WHERE p.id = "                        \
	"webhook_deliveries.endpoint_id AND p.disabled_at IS NOT NULL) THEN NULL ELSE ? END"

struct requeue_args {
	const char *org_id, *message_id, *endpoint_id;
	int64_t since;
	int *n;
};

/* Count the rows an UPDATE changed into *n. */
static int update_count(struct db_conn *c, const char *sql, const struct db_param *p, int np,
                        int *n)
{
	struct db_result *r = NULL;
	int rc = sq(c, sql, p, np, &r);
	if (rc == STORE_OK && n)
		*n = (int)r->changes;
	db_result_free(r);
	return rc;
}

static int resend_fn(struct db_conn *c, void *arg)
{
	const struct requeue_args *ra = arg;
	int64_t now = clock_now_ms();
	int rc = message_visible(c, ra->org_id, ra->message_id);
	/* Pending again, due now, a fresh schedule; not one in flight, not a deleted endpoint's. */
	struct db_param p[] = {P_INT(now),
	                       P_INT(now),
	                       P_TEXT(ra->message_id),
	                       P_TEXT(ra->org_id),
	                       P_TEXT(ra->org_id),
	                       P_TEXT(ra->endpoint_id),
	                       P_TEXT(ra->endpoint_id),
	                       P_INT(now)};
	if (rc == STORE_OK)
		rc = update_count(
		    c,
		    "UPDATE webhook_deliveries SET status = 'pending', attempts = 0, "
		    "next_attempt_at = " DUE_UNLESS_PARKED ", lease_until = NULL, "
		    "lease_owner = NULL, updated_at = ? "
		    "WHERE message_id = ? AND (? IS NULL OR org_id = ?) AND (? IS NULL OR "
		    "target = ?) AND (lease_until IS NULL OR lease_until <= ?) AND NOT EXISTS "
		    "(SELECT 1 FROM webhook_endpoints e WHERE e.id = "
		    "webhook_deliveries.endpoint_id "
		    "AND e.deleted_at IS NOT NULL)",
		    p, 8, ra->n);
	return rc;
}

int store_message_resend(struct store *st, const char *org_id, const char *message_id,
                         const char *endpoint_id, const struct audit_input *a, int *n)
{
	int count = 0;
	struct requeue_args ra = {org_id, message_id, endpoint_id, 0, &count};
	int rc = st_in_tx(st, resend_fn, &ra, a, NO_CHANGE);
	if (n)
		*n = rc == STORE_OK ? count : 0;
	return rc;
}

static int recover_fn(struct db_conn *c, void *arg)
{
	const struct requeue_args *ra = arg;
	int64_t now = clock_now_ms();
	int rc = endpoint_live(c, ra->org_id, ra->endpoint_id);
	struct db_param p[] = {P_INT(now), P_INT(now), P_TEXT(ra->endpoint_id), P_INT(ra->since)};
	if (rc == STORE_OK)
		rc = update_count(c,
		                  "UPDATE webhook_deliveries SET status = 'pending', attempts = 0, "
		                  "next_attempt_at = " DUE_UNLESS_PARKED ", lease_until = NULL, "
		                  "lease_owner = NULL, "
		                  "updated_at = ? WHERE endpoint_id = ? AND status = 'failed' AND "
		                  "created_at >= ?",
		                  p, 4, ra->n);
	return rc;
}

int store_endpoint_recover(struct store *st, const char *org_id, const char *endpoint_id,
                           int64_t since, const struct audit_input *a, int *n)
{
	int count = 0;
	struct requeue_args ra = {org_id, NULL, endpoint_id, since, &count};
	int rc = st_in_tx(st, recover_fn, &ra, a, NO_CHANGE);
	if (n)
		*n = rc == STORE_OK ? count : 0;
	return rc;
}

/* ---------- deliveries ---------- */

/* A JSON array of the n strings (each bounded), malloc'd. */
static char *json_ids(const char *const *ids, int n, size_t max_each)
{
	json_t *a = json_array();
	for (int i = 0; i < n; i++)
		if (ids[i] && bounded(ids[i], max_each))
			json_array_append_new(a, json_string(ids[i]));
	char *s = json_dumps(a, JSON_COMPACT);
	json_decref(a);
	return s;
}

/* One new delivery row: id, message, org, target, channel, endpoint, and now three times. */
#define DLV_COLS 9
#define DLV_ROW  "(?, ?, ?, ?, ?, ?, 'pending', 0, ?, NULL, NULL, ?, ?)"
#define DLV_INSERT(values)                                                                         \
	"INSERT INTO webhook_deliveries (id, message_id, org_id, target, channel, endpoint_id, "   \
	"status, attempts, next_attempt_at, lease_until, lease_owner, created_at, updated_at) "    \
	"VALUES " values " ON CONFLICT (message_id, target) DO NOTHING"
static const char *const dlv_insert_sql[] = MR_SIZES(DLV_INSERT, DLV_ROW);

struct new_delivery {
	char id[STORE_WH_ID_MAX + 1];
	char message_id[STORE_WH_ID_MAX + 1];
	char org_id[STORE_ID_LEN + 1];
	char target[STORE_WH_ID_MAX + 8]; /* an endpoint id or mail:<org id> */
	bool mail;
};

struct new_deliveries {
	int64_t now;
	struct new_delivery *d;
	int n, cap;
};

static void new_delivery_add(struct new_deliveries *nd, const char *message_id, const char *org_id,
                             const char *endpoint_id)
{
	if (nd->n == nd->cap) {
		nd->cap = nd->cap ? nd->cap * 2 : 16;
		nd->d = xrealloc(nd->d, (size_t)nd->cap * sizeof *nd->d);
	}
	struct new_delivery *d = &nd->d[nd->n++];
	ulid_prefixed("dlv", d->id, sizeof d->id);
	st_copy_str(d->message_id, sizeof d->message_id, message_id);
	st_copy_str(d->org_id, sizeof d->org_id, org_id);
	if (endpoint_id)
		st_copy_str(d->target, sizeof d->target, endpoint_id);
	else
		snprintf(d->target, sizeof d->target, "mail:%s", org_id);
	d->mail = !endpoint_id;
}

static void fill_delivery(const void *ctx, int i, struct db_param *p)
{
	const struct new_deliveries *nd = ctx;
	const struct new_delivery *d = &nd->d[i];
	p[0] = P_TEXT(d->id);
	p[1] = P_TEXT(d->message_id);
	p[2] = P_TEXT(d->org_id);
	p[3] = P_TEXT(d->target);
	p[4] = P_TEXT(d->mail ? "email" : "webhook");
	p[5] = P_TEXT(d->mail ? NULL : d->target);
	p[6] = P_INT(nd->now);
	p[7] = P_INT(nd->now);
	p[8] = P_INT(nd->now);
}

static int deliveries_insert(struct db_conn *c, const struct new_deliveries *nd)
{
	struct multi m = {
	    .sql = dlv_insert_sql, .cols = DLV_COLS, .fill = fill_delivery, .ctx = nd};
	return st_multi_run(c, &m, nd->n);
}

struct ep_test_args {
	const struct store_endpoint *e;
	const struct store_message *m;
};

static int endpoint_test_fn(struct db_conn *c, void *arg)
{
	const struct ep_test_args *ta = arg;
	int rc = endpoint_live(c, ta->e->org_id, ta->e->id);
	/* Fanned out already: its one delivery is to this endpoint only. */
	struct msg_row m = {.id = ta->m->id,
	                    .org_id = ta->e->org_id,
	                    .project_id = ta->m->project_id,
	                    .type = ta->m->type,
	                    .body = ta->m->body,
	                    .fanned_out = true,
	                    .created_at = ta->m->created_at};
	if (rc == STORE_OK)
		rc = msg_insert(c, &m, NULL);
	struct new_deliveries nd = {.now = clock_now_ms()};
	new_delivery_add(&nd, ta->m->id, ta->e->org_id, ta->e->id);
	if (rc == STORE_OK)
		rc = deliveries_insert(c, &nd);
	free(nd.d);
	return rc;
}

int store_endpoint_test(struct store *st, const struct store_endpoint *e,
                        const struct store_message *m, const struct audit_input *a)
{
	if (!endpoint_ok(e) || !m->body)
		return STORE_ERROR;
	struct ep_test_args ta = {e, m};
	return st_in_tx(st, endpoint_test_fn, &ta, a, NO_CHANGE);
}

/* True when type is one of the space-separated types ("" or NULL: all). */
static bool type_listed(const char *types, const char *type)
{
	if (!types || !types[0])
		return true;
	size_t len = strlen(type);
	for (const char *p = types; *p;) {
		while (*p == ' ')
			p++;
		const char *end = p;
		while (*end && *end != ' ')
			end++;
		if ((size_t)(end - p) == len && len > 0 && memcmp(p, type, len) == 0)
			return true;
		p = end;
	}
	return false;
}

static bool is_mailed(const char *const *mail_types, const char *type)
{
	for (int i = 0; mail_types && mail_types[i]; i++)
		if (strcmp(mail_types[i], type) == 0)
			return true;
	return false;
}

/*
 * One query's rows, kept while the next call has the same two keys (NULL
 * is a key too): a batch's messages mostly come from a few organisations,
 * so a batch asks for each one's endpoints and contact once.
 */
struct cached_rows {
	bool valid, null[2];
	char key[2][STORE_ID_LEN + 1];
	struct db_result *r;
};

static bool same_key(const struct cached_rows *k, int i, const char *v)
{
	return v ? !k->null[i] && strcmp(k->key[i], v) == 0 : k->null[i];
}

/* sql's rows for (a, a, b, b) (n_params 2: (a, a)), from k when they are its keys. */
static int rows_for(struct db_conn *c, struct cached_rows *k, const char *sql, int n_params,
                    const char *a, const char *b, struct db_result **out)
{
	if (!(k->valid && same_key(k, 0, a) && same_key(k, 1, b))) {
		db_result_free(k->r);
		k->r = NULL;
		k->valid = false;
		struct db_param p[] = {P_TEXT(a), P_TEXT(a), P_TEXT(b), P_TEXT(b)};
		int rc = sq(c, sql, p, n_params, &k->r);
		if (rc != STORE_OK)
			return rc;
		k->valid = true;
		k->null[0] = !a;
		k->null[1] = !b;
		st_copy_str(k->key[0], sizeof k->key[0], a);
		st_copy_str(k->key[1], sizeof k->key[1], b);
	}
	*out = k->r;
	return STORE_OK;
}

/* The deliveries of one message: matching endpoints, then mailboxes. */
static int fanout_one(struct db_conn *c, const char *const *mail_types, struct cached_rows *eps,
                      struct cached_rows *mailboxes, struct new_deliveries *nd,
                      const struct db_result *m, int i)
{
	const char *id = db_text(m, i, 0), *org_id = db_text(m, i, 1);
	const char *project_id = db_text(m, i, 2), *type = db_text(m, i, 3);
	struct db_result *r = NULL;
	int rc =
	    rows_for(c, eps,
	             "SELECT id, org_id, event_types FROM webhook_endpoints WHERE "
	             "(? IS NULL OR org_id = ?) AND deleted_at IS NULL AND disabled_at IS "
	             "NULL AND (project_id IS NULL OR ? IS NULL OR project_id = ?) ORDER BY id",
	             4, org_id, project_id, &r);
	for (int j = 0; rc == STORE_OK && j < r->nrows; j++)
		if (type_listed(db_text(r, j, 2), type))
			new_delivery_add(nd, id, db_text(r, j, 1), db_text(r, j, 0));
	if (rc == STORE_OK && is_mailed(mail_types, type)) {
		rc =
		    rows_for(c, mailboxes,
		             "SELECT id FROM orgs WHERE (? IS NULL OR id = ?) AND contact_email IS "
		             "NOT NULL AND contact_email <> '' ORDER BY id",
		             2, org_id, NULL, &r);
		for (int j = 0; rc == STORE_OK && j < r->nrows; j++)
			new_delivery_add(nd, id, db_text(r, j, 0), NULL);
	}
	return rc;
}

struct fanout_args {
	const char *const *mail_types;
	int limit, done;
};

static int fanout_fn(struct db_conn *c, void *arg)
{
	struct fanout_args *fa = arg;
	struct db_param p[] = {P_INT(fa->limit)};
	struct db_result *r = NULL;
	/* PostgreSQL: another node fanning out skips the messages this one holds. */
	int rc = sq(c,
	            st_is_pg(c) ? "SELECT id, org_id, project_id, type FROM webhook_messages WHERE "
	                          "fanned_out = 0 ORDER BY id LIMIT ? FOR UPDATE SKIP LOCKED"
	                        : "SELECT id, org_id, project_id, type FROM webhook_messages WHERE "
	                          "fanned_out = 0 ORDER BY id LIMIT ?",
	            p, 1, &r);
	if (rc != STORE_OK || r->nrows == 0) {
		db_result_free(r);
		return rc;
	}
	struct cached_rows eps = {0}, mailboxes = {0};
	struct new_deliveries nd = {.now = clock_now_ms()};
	const char **ids = xcalloc((size_t)r->nrows, sizeof *ids);
	for (int i = 0; rc == STORE_OK && i < r->nrows; i++) {
		rc = fanout_one(c, fa->mail_types, &eps, &mailboxes, &nd, r, i);
		ids[i] = db_text(r, i, 0);
	}
	db_result_free(eps.r);
	db_result_free(mailboxes.r);
	if (rc == STORE_OK)
		rc = deliveries_insert(c, &nd);
	free(nd.d);
	char *ids_json = rc == STORE_OK ? json_ids(ids, r->nrows, STORE_WH_ID_MAX) : NULL;
	struct db_param u[] = {P_TEXT(ids_json)};
	if (rc == STORE_OK)
		rc = sq(c,
		        st_is_pg(c)
		            ? "UPDATE webhook_messages SET fanned_out = 1 WHERE id IN (SELECT "
		              "jsonb_array_elements_text(CAST(? AS jsonb)))"
		            : "UPDATE webhook_messages SET fanned_out = 1 WHERE id IN (SELECT "
		              "value FROM json_each(?))",
		        u, 1, NULL);
	if (rc == STORE_OK)
		fa->done = r->nrows;
	free(ids_json);
	free(ids);
	db_result_free(r);
	return rc;
}

int store_fanout(struct store *st, const char *const *mail_types, int limit, int *n)
{
	struct fanout_args fa = {mail_types,
	                         limit < 1                  ? 1
	                         : limit > FANOUT_BATCH_MAX ? FANOUT_BATCH_MAX
	                                                    : limit,
	                         0};
	/*
	 * One transaction for the batch (each message with its deliveries is in
	 * it); non-durable, see the top of the file.
	 */
	int rc = st_tx_run(st, fanout_fn, &fa, NULL, NO_CHANGE, false);
	if (n)
		*n = rc == STORE_OK ? fa.done : 0;
	return rc;
}

/* ---------- claims ---------- */

/*
 * The due deliveries, at most per_endpoint of one target, oldest due first:
 * pending, next_attempt_at <= now, lease ended, not of a disabled or
 * deleted endpoint, not a skipped target (a JSON array of ids). The window
 * runs over the first `window` such rows in due order only (the claim
 * index's walk stops there), so a claim costs the same with a backlog of a
 * million as with a thousand. Parameters: now, now, skip, window,
 * per_endpoint, limit.
 */
#define DUE_IDS(JSON_EACH)                                                                         \
	"SELECT id FROM (SELECT id, na, row_number() OVER (PARTITION BY target ORDER BY na, id) "  \
	"AS rn FROM (SELECT d.id AS id, d.target AS target, d.next_attempt_at AS na FROM "         \
	"webhook_deliveries d LEFT JOIN webhook_endpoints e ON e.id = d.endpoint_id WHERE "        \
	"d.status = 'pending' AND d.next_attempt_at <= ? AND (d.lease_until IS NULL OR "           \
	"d.lease_until <= ?) AND (d.endpoint_id IS NULL OR (e.disabled_at IS NULL AND "            \
	"e.deleted_at IS NULL)) AND d.target NOT IN (" JSON_EACH ") ORDER BY d.next_attempt_at "   \
	"LIMIT ?) c) w WHERE w.rn <= ? ORDER BY w.na, w.id LIMIT ?"

#define CLAIM_COLS(D)                                                                              \
	D ".id, " D ".message_id, " D ".org_id, " D ".channel, m.type, m.body, " D                 \
	  ".attempts, m.created_at, o.contact_email, " EP_COLS_E
#define CLAIM_JOINS(D)                                                                             \
	" JOIN webhook_messages m ON m.id = " D ".message_id LEFT JOIN webhook_endpoints e ON "    \
	"e.id = " D ".endpoint_id LEFT JOIN orgs o ON o.id = " D ".org_id"

/*
 * SQLite, the single writer: claim (set lease, RETURNING the ids), then
 * read what the claims need by those ids. Parameters: owner, lease_until,
 * lease_until, now, then DUE_IDS's.
 */
static const char *const claim_sqlite_sql =
    "UPDATE webhook_deliveries SET lease_owner = ?, lease_until = ?, next_attempt_at = ?, "
    "updated_at = ? WHERE id IN (" DUE_IDS("SELECT value FROM json_each(?)") ") RETURNING id";
static const char *const claim_read_sqlite_sql =
    "SELECT " CLAIM_COLS("d") " FROM json_each(?) j JOIN webhook_deliveries d ON d.id = "
                              "j.value" CLAIM_JOINS("d");

/*
 * PostgreSQL: the window picks candidates (twice as many as wanted, so
 * that rows another node holds leave room for others), FOR UPDATE SKIP
 * LOCKED takes those no other transaction holds, re-checked on their
 * newest version, and one statement claims and reads them. A window
 * function cannot share a SELECT with FOR UPDATE, hence the nesting.
 * Parameters: owner, lease_until, lease_until, now, DUE_IDS's, then
 * now, now, limit.
 */
static const char *const claim_pg_sql =
    "WITH c AS (UPDATE webhook_deliveries SET lease_owner = ?, lease_until = ?, "
    "next_attempt_at = ?, updated_at = ? WHERE id IN (SELECT id FROM webhook_deliveries "
    "WHERE id IN (" DUE_IDS(
        "SELECT jsonb_array_elements_text(CAST(? AS jsonb))") ") "
                                                              "AND status = 'pending' AND "
                                                              "next_attempt_at <= ? AND "
                                                              "(lease_until IS NULL OR "
                                                              "lease_until <= ?) ORDER BY "
                                                              "next_attempt_at, id LIMIT ? FOR "
                                                              "UPDATE SKIP LOCKED) "
                                                              "RETURNING id, message_id, org_id, "
                                                              "channel, attempts, endpoint_id) "
                                                              "SELECT " CLAIM_COLS(
                                                                  "c") " FROM c" CLAIM_JOINS("c");

static void read_claim(const struct db_result *r, int i, struct store_claim *cl)
{
	memset(cl, 0, sizeof *cl);
	st_copy_str(cl->id, sizeof cl->id, db_text(r, i, 0));
	st_copy_str(cl->message_id, sizeof cl->message_id, db_text(r, i, 1));
	st_copy_str(cl->org_id, sizeof cl->org_id, db_text(r, i, 2));
	st_copy_str(cl->channel, sizeof cl->channel, db_text(r, i, 3));
	st_copy_str(cl->type, sizeof cl->type, db_text(r, i, 4));
	cl->body = db_text(r, i, 5) ? xstrdup(db_text(r, i, 5)) : NULL; /* NULL: purged */
	cl->attempts = db_int(r, i, 6);
	cl->created_at = db_int(r, i, 7);
	st_copy_str(cl->contact_email, sizeof cl->contact_email, db_text(r, i, 8));
	if (db_text(r, i, 9))
		read_endpoint_at(r, i, 9, &cl->ep);
	else
		cl->ep.rate_limit_per_second = cl->ep.prev_expires_at = cl->ep.disabled_at =
		    cl->ep.failing_since = cl->ep.failing_notified_at = -1;
}

struct claim_args {
	const char *owner, *skip_json;
	int64_t now, lease_until;
	int limit, per_endpoint;
	struct store_claim *out;
	int n;
};

static int claim_fill(struct claim_args *ca, const struct db_result *r)
{
	ca->out = xcalloc((size_t)r->nrows + 1, sizeof *ca->out);
	for (int i = 0; i < r->nrows; i++)
		read_claim(r, i, &ca->out[i]);
	ca->n = r->nrows;
	return STORE_OK;
}

static int claim_fn(struct db_conn *c, void *arg)
{
	struct claim_args *ca = arg;
	struct db_result *r = NULL;
	int rc;
	if (st_is_pg(c)) {
		struct db_param p[] = {P_TEXT(ca->owner),       P_INT(ca->lease_until),
		                       P_INT(ca->lease_until),  P_INT(ca->now),
		                       P_INT(ca->now),          P_INT(ca->now),
		                       P_TEXT(ca->skip_json),   P_INT(WINDOW_ROWS(ca->limit)),
		                       P_INT(ca->per_endpoint), P_INT(2 * ca->limit),
		                       P_INT(ca->now),          P_INT(ca->now),
		                       P_INT(ca->limit)};
		rc = sq(c, claim_pg_sql, p, 13, &r);
		if (rc == STORE_OK)
			rc = claim_fill(ca, r);
		db_result_free(r);
		return rc;
	}
	struct db_param p[] = {P_TEXT(ca->owner),       P_INT(ca->lease_until),
	                       P_INT(ca->lease_until),  P_INT(ca->now),
	                       P_INT(ca->now),          P_INT(ca->now),
	                       P_TEXT(ca->skip_json),   P_INT(WINDOW_ROWS(ca->limit)),
	                       P_INT(ca->per_endpoint), P_INT(ca->limit)};
	rc = sq(c, claim_sqlite_sql, p, 10, &r);
	if (rc != STORE_OK || r->nrows == 0) {
		if (rc == STORE_OK)
			ca->out = xcalloc(1, sizeof *ca->out);
		db_result_free(r);
		return rc;
	}
	const char **ids = xcalloc((size_t)r->nrows, sizeof *ids);
	for (int i = 0; i < r->nrows; i++)
		ids[i] = db_text(r, i, 0);
	char *ids_json = json_ids(ids, r->nrows, STORE_WH_ID_MAX);
	free(ids);
	db_result_free(r);
	r = NULL;
	struct db_param q[] = {P_TEXT(ids_json)};
	rc = sq(c, claim_read_sqlite_sql, q, 1, &r);
	if (rc == STORE_OK)
		rc = claim_fill(ca, r);
	db_result_free(r);
	free(ids_json);
	return rc;
}

int store_claim(struct store *st, const char *owner, int64_t now, int64_t lease_until, int limit,
                int per_endpoint, const char *const *skip, int n_skip, struct store_claim **out,
                int *n)
{
	*out = NULL;
	*n = 0;
	if (!owner || !owner[0] || !bounded(owner, 255) || n_skip < 0 || n_skip > SKIP_MAX ||
	    lease_until <= now)
		return STORE_ERROR;
	limit = clamp_limit(limit);
	char *skip_json = json_ids(skip, skip ? n_skip : 0, STORE_WH_ID_MAX);
	struct claim_args ca = {.owner = owner,
	                        .skip_json = skip_json,
	                        .now = now,
	                        .lease_until = lease_until,
	                        .limit = limit,
	                        .per_endpoint = per_endpoint > 0 ? per_endpoint : limit};
	int rc = st_in_tx(st, claim_fn, &ca, NULL, NO_CHANGE);
	free(skip_json);
	if (rc != STORE_OK) {
		store_claims_free(ca.out, ca.n);
		return rc;
	}
	*out = ca.out;
	*n = ca.n;
	return STORE_OK;
}

void store_claims_free(struct store_claim *c, int n)
{
	for (int i = 0; c && i < n; i++)
		free(c[i].body);
	free(c);
}

static int release_fn(struct db_conn *c, void *arg)
{
	const char *owner = arg;
	int64_t now = clock_now_ms();
	struct db_param p[] = {P_INT(now), P_INT(now), P_TEXT(owner)};
	return sq(c,
	          "UPDATE webhook_deliveries SET lease_owner = NULL, lease_until = NULL, "
	          "next_attempt_at = CASE WHEN next_attempt_at IS NULL THEN NULL ELSE ? END, "
	          "updated_at = ? WHERE status = 'pending' AND lease_owner = ?",
	          p, 3, NULL);
}

int store_claim_release_all(struct store *st, const char *owner)
{
	if (!owner || !owner[0])
		return STORE_ERROR;
	return st_in_tx(st, release_fn, (void *)owner, NULL, NO_CHANGE);
}

/* ---------- records ---------- */

/*
 * Attempt rows take the delivery's message, endpoint, organisation and
 * channel from its row; RETURNING gives the endpoint health update its
 * input. VALUES columns are column1..column9 on both dialects.
 */
#define ATT_COLS 9
#define ATT_ROW  "(?, ?, ?, ?, ?, ?, ?, ?, ?)"
#define ATT_INSERT(values)                                                                         \
	"INSERT INTO webhook_attempts (id, delivery_id, message_id, endpoint_id, org_id, "         \
	"channel, "                                                                                \
	"at, outcome, http_status, duration_ms, error, response, next_attempt_at) SELECT "         \
	"v.column1, d.id, d.message_id, d.endpoint_id, d.org_id, d.channel, v.column3, "           \
	"v.column4, CASE WHEN v.column5 > 0 THEN v.column5 END, v.column6, v.column7, "            \
	"v.column8, CASE WHEN v.column9 >= 0 THEN v.column9 END FROM (VALUES " values              \
	") AS v JOIN webhook_deliveries d ON d.id = v.column2 RETURNING endpoint_id, at, outcome"
static const char *const att_insert_sql[] = MR_SIZES(ATT_INSERT, ATT_ROW);

/*
 * A delivery moved by its attempt, only while owner holds its lease (the
 * tail parameter); one parked meanwhile (its endpoint was disabled) stays
 * parked.
 */
#define DMOVE_COLS 4
#define DMOVE_ROW  "(?, ?, ?, ?)"
#define DMOVE_UPDATE(values)                                                                       \
	"UPDATE webhook_deliveries SET status = v.column2, attempts = attempts + 1, "              \
	"next_attempt_at = CASE WHEN v.column3 >= 0 AND next_attempt_at IS NOT NULL THEN "         \
	"v.column3 END, lease_until = NULL, "                                                      \
	"lease_owner = NULL, updated_at = v.column4 FROM (VALUES " values                          \
	") AS v WHERE webhook_deliveries.id = v.column1 AND webhook_deliveries.lease_owner = ?"
static const char *const dmove_sql[] = MR_SIZES(DMOVE_UPDATE, DMOVE_ROW);

/*
 * Endpoint health: column2 = 1 resets failing_since to column3 (NULL when
 * negative: a success last) and clears failing_notified_at; 0 sets it to
 * column3 when unset (failures only). Rows that would not change are not
 * written (the common case: a success on a healthy endpoint).
 */
#define HEALTH_COLS 3
#define HEALTH_ROW  "(?, ?, ?)"
#define HEALTH_UPDATE(values)                                                                      \
	"UPDATE webhook_endpoints SET failing_since = CASE WHEN v.column2 = 1 THEN (CASE WHEN "    \
	"v.column3 >= 0 THEN v.column3 END) ELSE COALESCE(failing_since, v.column3) END, "         \
	"failing_notified_at = CASE WHEN v.column2 = 1 THEN NULL ELSE failing_notified_at END "    \
	"FROM (VALUES " values ") AS v WHERE webhook_endpoints.id = v.column1 AND NOT "            \
	"(v.column2 = 1 AND v.column3 < 0 AND failing_since IS NULL AND failing_notified_at IS "   \
	"NULL) AND NOT (v.column2 = 0 AND failing_since IS NOT NULL)"
static const char *const health_sql[] = MR_SIZES(HEALTH_UPDATE, HEALTH_ROW);

/* One attempt as bound: the caller's, with its id and bounded strings. */
struct att_row {
	char id[STORE_WH_ID_MAX + 1];
	const struct store_attempt *a;
	char error[ERROR_CLASS_MAX + 1];
	char *response; /* valid UTF-8, at most STORE_WH_RESPONSE_MAX bytes, or NULL */
	const char *status;
	int64_t next;
};

/* The length of a valid UTF-8 sequence at s (at most n bytes), or 0. */
static size_t utf8_seq(const unsigned char *s, size_t n)
{
	size_t len = s[0] < 0x80             ? 1
	             : (s[0] & 0xe0) == 0xc0 ? 2
	             : (s[0] & 0xf0) == 0xe0 ? 3
	             : (s[0] & 0xf8) == 0xf0 ? 4
	                                     : 0;
	if (len == 0 || len > n || (len == 2 && s[0] < 0xc2) || (len == 4 && s[0] > 0xf4))
		return 0;
	for (size_t i = 1; i < len; i++)
		if ((s[i] & 0xc0) != 0x80)
			return 0;
	if (len == 3 && ((s[0] == 0xe0 && s[1] < 0xa0) || (s[0] == 0xed && s[1] >= 0xa0)))
		return 0; /* overlong, or a UTF-16 surrogate */
	if (len == 4 && ((s[0] == 0xf0 && s[1] < 0x90) || (s[0] == 0xf4 && s[1] >= 0x90)))
		return 0;
	return len;
}

/*
 * At most STORE_WH_RESPONSE_MAX bytes of the response as valid UTF-8 (a
 * TEXT column; PostgreSQL refuses anything else): invalid bytes become
 * '?', and the cut never splits a character. malloc'd.
 */
static char *response_text(const char *s)
{
	if (!s)
		return NULL;
	const unsigned char *u = (const unsigned char *)s;
	size_t n = strnlen(s, STORE_WH_RESPONSE_MAX), o = 0;
	/* Cut before a character the bound would split (u[n] continues it). */
	if (u[n])
		while (n > 0 && (u[n] & 0xc0) == 0x80)
			n--;
	char *out = xmalloc(n + 1);
	for (size_t i = 0; i < n;) {
		size_t len = utf8_seq(u + i, n - i);
		if (len == 0) {
			out[o++] = '?';
			i++;
		} else {
			memcpy(out + o, u + i, len);
			o += len;
			i += len;
		}
	}
	out[o] = '\0';
	return out;
}

static void fill_attempt(const void *ctx, int i, struct db_param *p)
{
	const struct att_row *r = &((const struct att_row *)ctx)[i];
	p[0] = P_TEXT(r->id);
	p[1] = P_TEXT(r->a->delivery_id);
	p[2] = P_INT(r->a->at);
	p[3] = P_TEXT(r->a->succeeded ? "succeeded" : "failed");
	p[4] = P_INT(r->a->http_status);
	p[5] = P_INT(r->a->duration_ms < 0 ? 0 : r->a->duration_ms);
	p[6] = P_TEXT(r->a->succeeded || !r->error[0] ? NULL : r->error);
	p[7] = P_TEXT(r->response);
	p[8] = P_INT(r->next);
}

struct record_ctx {
	const struct att_row *rows;
	int64_t now;
};

static void fill_dmove(const void *ctx, int i, struct db_param *p)
{
	const struct record_ctx *rc = ctx;
	const struct att_row *r = &rc->rows[i];
	p[0] = P_TEXT(r->a->delivery_id);
	p[1] = P_TEXT(r->status);
	p[2] = P_INT(r->next);
	p[3] = P_INT(rc->now);
}

/* What the attempts say about one endpoint. */
struct health {
	char id[STORE_WH_ID_MAX + 1];
	int64_t last_ok;    /* the latest success, -1 */
	int64_t first_fail; /* the earliest failure after last_ok, -1 */
};

struct health_set {
	struct health *h;
	int n, cap;
};

static struct health *health_of(struct health_set *hs, const char *id)
{
	for (int i = 0; i < hs->n; i++)
		if (strcmp(hs->h[i].id, id) == 0)
			return &hs->h[i];
	if (hs->n == hs->cap) {
		hs->cap = hs->cap ? hs->cap * 2 : 16;
		hs->h = xrealloc(hs->h, (size_t)hs->cap * sizeof *hs->h);
	}
	struct health *h = &hs->h[hs->n++];
	st_copy_str(h->id, sizeof h->id, id);
	h->last_ok = h->first_fail = -1;
	return h;
}

/* Collects (endpoint, at, outcome) from the attempt inserts' RETURNING. */
struct outcomes {
	struct {
		char ep[STORE_WH_ID_MAX + 1];
		int64_t at;
		bool ok;
	} * o;
	int n, cap;
};

static int collect_outcomes(void *ctx, const struct db_result *r)
{
	struct outcomes *oc = ctx;
	for (int i = 0; i < r->nrows; i++) {
		if (!db_text(r, i, 0))
			continue; /* a mail delivery: no endpoint health */
		if (oc->n == oc->cap) {
			oc->cap = oc->cap ? oc->cap * 2 : 64;
			oc->o = xrealloc(oc->o, (size_t)oc->cap * sizeof *oc->o);
		}
		st_copy_str(oc->o[oc->n].ep, sizeof oc->o[oc->n].ep, db_text(r, i, 0));
		oc->o[oc->n].at = db_int(r, i, 1);
		oc->o[oc->n].ok = db_text(r, i, 2) && strcmp(db_text(r, i, 2), "succeeded") == 0;
		oc->n++;
	}
	return STORE_OK;
}

static void fill_health(const void *ctx, int i, struct db_param *p)
{
	const struct health *h = &((const struct health_set *)ctx)->h[i];
	p[0] = P_TEXT(h->id);
	p[1] = P_INT(h->last_ok >= 0);
	p[2] = P_INT(h->first_fail);
}

static int health_cmp(const void *a, const void *b)
{
	return strcmp(((const struct health *)a)->id, ((const struct health *)b)->id);
}

struct record_args {
	const char *owner;
	struct att_row *rows;
	int n;
};

static int record_fn(struct db_conn *c, void *arg)
{
	struct record_args *ra = arg;
	struct outcomes oc = {0};
	struct multi ins = {.sql = att_insert_sql,
	                    .cols = ATT_COLS,
	                    .fill = fill_attempt,
	                    .ctx = ra->rows,
	                    .each = collect_outcomes,
	                    .each_ctx = &oc};
	int rc = st_multi_run(c, &ins, ra->n);
	struct record_ctx rctx = {ra->rows, clock_now_ms()};
	struct db_param owner[] = {P_TEXT(ra->owner)};
	struct multi mv = {.sql = dmove_sql,
	                   .cols = DMOVE_COLS,
	                   .fill = fill_dmove,
	                   .ctx = &rctx,
	                   .tail = owner,
	                   .n_tail = 1};
	if (rc == STORE_OK)
		rc = st_multi_run(c, &mv, ra->n);
	/* Per endpoint: the latest success, then the first failure after it. */
	struct health_set hs = {0};
	for (int i = 0; i < oc.n; i++) {
		struct health *h = health_of(&hs, oc.o[i].ep);
		if (oc.o[i].ok && oc.o[i].at > h->last_ok)
			h->last_ok = oc.o[i].at;
	}
	for (int i = 0; i < oc.n; i++) {
		struct health *h = health_of(&hs, oc.o[i].ep);
		if (!oc.o[i].ok && oc.o[i].at >= h->last_ok &&
		    (h->first_fail < 0 || oc.o[i].at < h->first_fail))
			h->first_fail = oc.o[i].at;
	}
	/* In id order: two records lock shared endpoints alike (as far as the plan follows). */
	if (hs.n > 1)
		qsort(hs.h, (size_t)hs.n, sizeof *hs.h, health_cmp);
	struct multi hm = {.sql = health_sql, .cols = HEALTH_COLS, .fill = fill_health, .ctx = &hs};
	if (rc == STORE_OK)
		rc = st_multi_run(c, &hm, hs.n);
	free(hs.h);
	free(oc.o);
	return rc;
}

int store_record(struct store *st, const char *owner, const struct store_attempt *a, int n)
{
	if (!owner || n < 0)
		return STORE_ERROR;
	if (n == 0)
		return STORE_OK;
	struct att_row *rows = xcalloc((size_t)n, sizeof *rows);
	int rc = STORE_OK;
	for (int i = 0; i < n; i++) {
		struct att_row *r = &rows[i];
		if (!bounded(a[i].delivery_id, STORE_WH_ID_MAX)) {
			rc = STORE_ERROR;
			break;
		}
		ulid_prefixed("att", r->id, sizeof r->id);
		r->a = &a[i];
		str_copy(r->error, sizeof r->error, a[i].error ? a[i].error : "", ERROR_CLASS_MAX);
		r->response = response_text(a[i].response);
		r->next = a[i].succeeded             ? -1
		          : a[i].next_attempt_at < 0 ? -1
		                                     : a[i].next_attempt_at;
		r->status = a[i].succeeded ? "succeeded" : r->next >= 0 ? "pending" : "failed";
	}
	struct record_args ra = {owner, rows, n};
	if (rc == STORE_OK)
		rc = st_tx_run(st, record_fn, &ra, NULL, NO_CHANGE, false); /* see the top */
	for (int i = 0; i < n; i++)
		free(rows[i].response);
	free(rows);
	return rc;
}

/* ---------- gauges and retention ---------- */

int store_outbox_stats(struct store *st, int64_t *pending, int64_t *oldest_created_at)
{
	struct db_result *r = NULL;
	/* Deliveries no worker may claim (a disabled endpoint's) do not count. */
	int rc = st_read_q(st,
	                   "SELECT count(*), min(d.created_at), (SELECT min(created_at) FROM "
	                   "webhook_messages WHERE fanned_out = 0) FROM webhook_deliveries d LEFT "
	                   "JOIN webhook_endpoints e ON e.id = d.endpoint_id WHERE d.status = "
	                   "'pending' AND (d.endpoint_id IS NULL OR (e.disabled_at IS NULL AND "
	                   "e.deleted_at IS NULL))",
	                   NULL, 0, &r);
	if (rc == STORE_OK) {
		int64_t a = st_time_or_none(r, 0, 1), b = st_time_or_none(r, 0, 2);
		if (pending)
			*pending = db_int(r, 0, 0);
		if (oldest_created_at)
			*oldest_created_at = a < 0 ? b : b < 0 ? a : a < b ? a : b;
	}
	db_result_free(r);
	return rc;
}

/*
 * Ids are prefix + ULID, and a ULID starts with its time: "<prefix>_" and
 * the ULID of cutoff with zero randomness sorts before every id made at or
 * after cutoff, so the purge walks primary keys and needs no time index.
 */
static void cutoff_id(const char *prefix, int64_t cutoff_ms, char *out, size_t cap)
{
	static const uint8_t zero[10];
	char ulid[ULID_LEN + 1];
	ulid_encode((uint64_t)(cutoff_ms < 0 ? 0 : cutoff_ms), zero, ulid);
	snprintf(out, cap, "%s_%s", prefix, ulid);
}

struct purge_args {
	int64_t cutoff, deleted;
};

static int purge_fn(struct db_conn *c, void *arg)
{
	struct purge_args *pa = arg;
	/*
	 * Everything older than the cutoff goes, whatever its status: a message
	 * past retention (fanned out or not) with its deliveries (pending ones
	 * too, e.g. a disabled endpoint's parked ones) and their attempts. An
	 * attempt in flight meanwhile records nothing (its row joins the
	 * delivery). Attempts and deliveries go by their own id and by their
	 * message's (the message_id indexes), so none outlives its message.
	 */
	static const char *const sql[] = {
	    "DELETE FROM webhook_attempts WHERE id < ?",
	    "DELETE FROM webhook_attempts WHERE message_id < ?",
	    "DELETE FROM webhook_deliveries WHERE id < ?",
	    "DELETE FROM webhook_deliveries WHERE message_id < ?",
	    "DELETE FROM webhook_messages WHERE id < ?",
	};
	static const char *const prefix[] = {"att", "msg", "dlv", "msg", "msg"};
	int rc = STORE_OK;
	for (int i = 0; rc == STORE_OK && i < 5; i++) {
		char cut[STORE_WH_ID_MAX + 1];
		cutoff_id(prefix[i], pa->cutoff, cut, sizeof cut);
		struct db_param p[] = {P_TEXT(cut)};
		struct db_result *r = NULL;
		rc = sq(c, sql[i], p, 1, &r);
		if (rc == STORE_OK)
			pa->deleted += r->changes;
		db_result_free(r);
	}
	return rc;
}

int store_webhooks_purge(struct store *st, int64_t cutoff_ms, int64_t *deleted)
{
	struct purge_args pa = {cutoff_ms, 0};
	int rc = st_maint_tx(st, purge_fn, &pa);
	if (deleted)
		*deleted = rc == STORE_OK ? pa.deleted : 0;
	return rc;
}
