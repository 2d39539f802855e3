/*
 * store_int.h: the store's shared plumbing, for the files of src/store/
 * that implement store.h and its sibling headers (store.c, and one file per
 * later domain: store_webhooks.c, store_secrets.c). Nothing outside
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
/** Bump the state version and log kind/id under it, inside the caller's transaction. */
int st_record_change_tx(struct db_conn *c, const char *kind, const char *id);
/**
 * Run fn(c, arg) in a write transaction with the audit event a (NULL: none),
 * a's webhook message when a->event is set, and the change ch; commits
 * only when all succeed.
 */
int st_tx_run(struct store *st, int (*fn)(struct db_conn *c, void *arg), void *arg,
              const struct audit_input *a, struct change ch, bool durable);
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

#endif
