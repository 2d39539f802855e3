/*
 * store_int.h: the store's shared plumbing, for the files of src/store/
 * that implement store.h and its sibling headers (store.c, and one file per
 * later domain: store_webhooks.c, store_secrets.c, store_events.c). Nothing outside
 * src/store/ includes it.
 */
#ifndef PORTCULLIS_STORE_STORE_INT_H
#define PORTCULLIS_STORE_STORE_INT_H

#include "store/db.h"
#include "store/store.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* What a transaction changes, for the change log (kind NULL: nothing cached). */
struct change {
	const char *kind, *id;
};

#define NO_CHANGE ((struct change){NULL, NULL})

/** A driver code (DB_*) as a store code (STORE_*). */
int st_map_db(int rc);
/** A pooled connection (waits up to 5 s), or NULL: STORE_EUNAVAILABLE. */
struct db_conn *st_acquire(struct store *st);
/** Give c back; one that failed with STORE_EUNAVAILABLE is dropped. */
void st_release(struct store *st, struct db_conn *c, int rc);
/** One statement with bound parameters; *out may be NULL. */
int sq(struct db_conn *c, const char *sql, const struct db_param *p, int n, struct db_result **out);
/**
 * Begin a write transaction. durable: its commit survives a power or OS
 * failure once it returns; unbounded: no statement timeout (maintenance).
 */
int st_begin_tx(struct db_conn *c, bool durable, bool unbounded);
/** c is a PostgreSQL connection (for the few statements whose SQL differs). */
bool st_is_pg(const struct db_conn *c);
/** snprintf(dst, cap, "%s", src or ""). */
void st_copy_str(char *dst, size_t cap, const char *src);
/** Append an audit event inside the caller's transaction. */
int st_audit_append_tx(struct db_conn *c, const struct audit_input *a);
/**
 * The webhook message of a->event (type a->action, organisation a->org_id,
 * NULL: global, for global.* types only: any other event without an
 * organisation makes no message; project a->event_project_id) inside the
 * caller's transaction (store_webhooks.c). st_tx_run calls it after the
 * audit event.
 */
int st_event_insert_tx(struct db_conn *c, const struct audit_input *a);
/** st_audit_append_tx, then (when a->event is set) st_event_insert_tx: a change's record. */
int st_audit_event_tx(struct db_conn *c, const struct audit_input *a);
/**
 * Add the rows with inserted[i] true to the usage rollups and notify the
 * budget thresholds they cross, inside the caller's transaction
 * (store_usage.c; store_request_log_insert calls it).
 */
int st_usage_record_tx(struct db_conn *c, const struct store_request_row *rows,
                       const bool *inserted, int n);
/**
 * Mark the hours (bucket starts) that are already compacted into the usage
 * series as to be rebuilt, inside the writer's transaction
 * (store_usage_series.c).
 */
int st_usage_mark_late_tx(struct db_conn *c, const int64_t *hours, int n);
/**
 * Add the counted rows (a project, no refusal) with inserted[i] true to
 * their project's month (usage_month) and notify the budget thresholds
 * they cross, inside the caller's transaction (store_budgets.c;
 * st_usage_record_tx calls it).
 */
int st_budget_record_tx(struct db_conn *c, const struct store_request_row *rows,
                        const bool *inserted, int n);
/**
 * Delete the months (usage_month, budget_notices) that ended before the
 * calendar month of cutoff_ms, adding the rows deleted to *deleted, inside
 * the caller's transaction (store_usage_purge calls it).
 */
int st_budget_purge_tx(struct db_conn *c, int64_t cutoff_ms, int64_t *deleted);
/**
 * The columns of an audit event as st_audit_each reads them, in order
 * (store.c's queries and store_incident.c's).
 */
#define AUDIT_COLS                                                                                 \
	"seq, id, at, org_id, actor_type, actor_id, action, target_type, target_id, request_id, "  \
	"details, prev_hash, hash"
/** each(ctx, ev) for every row of r, a result of AUDIT_COLS. */
struct store_audit_read;
void st_audit_each(const struct db_result *r,
                   void (*each)(void *ctx, const struct store_audit_read *ev), void *ctx);
/** Bump the state version and log kind/id under it, inside the caller's transaction. */
int st_record_change_tx(struct db_conn *c, const char *kind, const char *id);
/**
 * Run fn(c, arg) in a write transaction with the audit event a (NULL: none),
 * a's webhook message when a->event is set, and the change ch; commits
 * only when all succeed.
 */
int st_tx_run(struct store *st, int (*fn)(struct db_conn *c, void *arg), void *arg,
              const struct audit_input *a, struct change ch, bool durable);
/**
 * Run fn(c, arg) as maintenance (purges): a transaction without statement
 * timeout and not durable (losing it to a power cut only repeats it).
 */
int st_maint_tx(struct store *st, int (*fn)(struct db_conn *c, void *arg), void *arg);
/** st_tx_run, durable. */
int st_in_tx(struct store *st, int (*fn)(struct db_conn *c, void *arg), void *arg,
             const struct audit_input *a, struct change ch);
/** One read query on a pooled connection. */
int st_read_q(struct store *st, const char *sql, const struct db_param *p, int n,
              struct db_result **out);

typedef void (*row_reader)(const struct db_result *r, int i, void *row);

/** One row into out (STORE_ENOTFOUND when there is none). */
int st_read_one(struct store *st, const char *sql, const struct db_param *p, int n, row_reader read,
                void *out);
/** Every row into a malloc'd array of elem_size records (*out, *count). */
int st_read_all(struct store *st, const char *sql, const struct db_param *p, int n, row_reader read,
                size_t elem_size, void **out, int *count);
/** A millisecond-timestamp column, -1 for SQL NULL. */
int64_t st_time_or_none(const struct db_result *r, int row, int col);
/** An integer parameter, SQL NULL when v < 0. */
struct db_param st_int_or_null(int64_t v);

/*
 * Multi-row statements come in sizes of 1, 2, 4, ..., 64 rows, each one
 * string literal (MR_SIZES) so both drivers' statement caches keep them.
 */
#define MR_2(r)  r ", " r
#define MR_4(r)  MR_2(r) ", " MR_2(r)
#define MR_8(r)  MR_4(r) ", " MR_4(r)
#define MR_16(r) MR_8(r) ", " MR_8(r)
#define MR_32(r) MR_16(r) ", " MR_16(r)
#define MR_64(r) MR_32(r) ", " MR_32(r)
#define MR_SIZES(MAKE, ROW)                                                                        \
	{                                                                                          \
		MAKE(ROW), MAKE(MR_2(ROW)), MAKE(MR_4(ROW)), MAKE(MR_8(ROW)), MAKE(MR_16(ROW)),    \
		    MAKE(MR_32(ROW)), MAKE(MR_64(ROW))                                             \
	}
#define MR_KMAX 6
#define MR_ROWS (1 << MR_KMAX)
#define MR_COLS 15 /* the widest row of any: an event (store_events.c) */

/*
 * Run rows [0, n) through sql[k] (2^k rows each, largest first): fill puts
 * row i's cols parameters at p; tail (n_tail of them) follows every
 * statement's rows. each (may be NULL) gets every statement's result.
 */
struct multi {
	const char *const *sql;
	int cols;
	void (*fill)(const void *ctx, int i, struct db_param *p);
	const void *ctx;
	const struct db_param *tail;
	int n_tail;
	int (*each)(void *ctx, const struct db_result *r);
	void *each_ctx;
};

/** Run rows [0, n) of m, in statements of up to MR_ROWS rows. */
int st_multi_run(struct db_conn *c, const struct multi *m, int n);

#endif
