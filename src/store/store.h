/*
 * store.h: the primary database, as the domain sees it. Every call works the
 * same on SQLite (sqlite:///path.db) and PostgreSQL (postgres://...); callers
 * never ask which. Every mutation that the audit log must show takes a
 * struct audit_input and writes the change and its audit event in one
 * transaction, and bumps the state version other nodes poll, logging what
 * it changed under the new version (store_changes_since).
 *
 * Calls block (they do I/O): run them on a pool or the CLI, never on an HTTP
 * worker loop. Thread-safe: connections come from a bounded pool.
 *
 * Return codes: STORE_OK, or a negative STORE_E*.
 */
#ifndef PORTCULLIS_STORE_STORE_H
#define PORTCULLIS_STORE_STORE_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum {
	STORE_OK = 0,
	STORE_ERROR = -1,
	STORE_ECONFLICT = -2,    /* a unique or foreign-key constraint */
	STORE_EUNAVAILABLE = -3, /* the database cannot be reached */
	STORE_ENOTFOUND = -4,
};

#define STORE_ID_LEN     26
#define STORE_NAME_MAX   200
#define STORE_SCOPES_MAX 127
#define STORE_EMAIL_MAX  254
#define STORE_REASON_MAX 500

struct store;

struct store_options {
	int pool_size;                /* connections, at least 1 (SQLite: at most 4) */
	int64_t statement_timeout_ms; /* PostgreSQL; 0 = none ([store] statement_timeout_ms) */
	/*
	 * SQLite's WAL checkpointer (docs/operations.md), 0 = the default: a passive checkpoint
	 * once the WAL holds this many pages not yet checkpointed (1000, SQLite's own
	 * threshold), a blocking one (RESTART) once it holds wal_limit_pages (10000), and a
	 * passive one every wal_interval_ms (1000) in any case.
	 */
	int wal_checkpoint_pages, wal_limit_pages, wal_interval_ms;
};

/**
 * Open a store by URL. Kill, revocation, key, organisation and audit
 * transactions commit durably (SQLite: synchronous=FULL); request-log rows
 * and last-used times may be lost in a power or OS failure (NORMAL).
 */
int store_open_with(const char *url, const struct store_options *o, struct store **out, char *err,
                    size_t cap);
/** store_open_with with up to pool_size connections and no statement timeout (the CLI). */
int store_open(const char *url, int pool_size, struct store **out, char *err, size_t cap);
void store_close(struct store *st);
/** Apply pending migrations; *applied (may be NULL) gets how many ran. */
int store_migrate(struct store *st, int *applied);
/** True when the database answers a real query now. */
bool store_ready(struct store *st);

/** Who did something and why, for the audit event written with a change. */
struct audit_input {
	const char *org_id;      /* organisation the event belongs to, or NULL */
	const char *actor_type;  /* root | key | user | system */
	const char *actor_id;    /* key id, user id or NULL */
	const char *action;      /* api_key.created, org.killed, ... */
	const char *target_type; /* api_key, org, project, global */
	const char *target_id;
	const char *request_id; /* NULL from the CLI */
	json_t *details;        /* borrowed; may be NULL. Never a secret. */
	/*
	 * The webhook message the change creates, in the same transaction
	 * (WEBHOOKS.md "Two sources"): its type is action, its data this object
	 * (borrowed; NULL: no message). Never a secret, key, hash or IP: a key
	 * appears by id and start. org_id NULL: a global event (global.*
	 * types), for every organisation; any other type without an
	 * organisation (a root key's event) makes no message.
	 */
	json_t *event;
	const char *event_project_id; /* the message's project, or NULL */
};

/* ---- organisations ---- */

struct store_org {
	char id[STORE_ID_LEN + 1];
	char name[STORE_NAME_MAX + 1];
	char contact_email[STORE_EMAIL_MAX + 1];       /* "" when unset */
	int64_t rl_requests, rl_per_seconds, rl_burst; /* -1: the configured default */
	int64_t created_at, updated_at;
};

int store_org_insert(struct store *st, const struct store_org *org, const struct audit_input *a);
int store_org_get(struct store *st, const char *id, struct store_org *out);
/** Orgs with id > after (NULL: from the start), at most limit; *out is malloc'd. */
int store_org_list(struct store *st, const char *after, int limit, struct store_org **out, int *n);
int store_org_update(struct store *st, const struct store_org *org, const struct audit_input *a);

/* ---- projects ---- */

struct store_project {
	char id[STORE_ID_LEN + 1];
	char org_id[STORE_ID_LEN + 1];
	char name[STORE_NAME_MAX + 1];
	int64_t created_at;
};

int store_project_insert(struct store *st, const struct store_project *p,
                         const struct audit_input *a);
/** A project of org_id (STORE_ENOTFOUND for another organisation's). */
int store_project_get(struct store *st, const char *org_id, const char *id,
                      struct store_project *out);
int store_project_list(struct store *st, const char *org_id, const char *after, int limit,
                       struct store_project **out, int *n);

/* ---- API keys ---- */

struct store_key {
	char id[STORE_ID_LEN + 1];
	char org_id[STORE_ID_LEN + 1];     /* "" for root keys */
	char project_id[STORE_ID_LEN + 1]; /* "" when none */
	char name[STORE_NAME_MAX + 1];
	char env[5];                       /* live | test | root */
	char scopes[STORE_SCOPES_MAX + 1]; /* space-separated */
	char secret_hash[64];              /* bcrypt $2b$ */
	char prev_secret_hash[64];         /* "" unless a rotation grace is running */
	int64_t prev_expires_at;           /* -1 when none */
	char start[16];
	int64_t created_at, last_used_at, expires_at, revoked_at; /* -1 when unset */
	int64_t version;
};

int store_key_insert(struct store *st, const struct store_key *k, const struct audit_input *a);
int store_key_get(struct store *st, const char *id, struct store_key *out);
/**
 * Keys of org_id (NULL: every organisation's, root keys excluded unless
 * org_id is ""), optionally of one project, id > after, at most limit.
 */
int store_key_list(struct store *st, const char *org_id, const char *project_id, const char *after,
                   int limit, struct store_key **out, int *n);
/**
 * Replace a key's secret hash (rotation). The old hash stays valid until
 * prev_expires_at when that is in the future. Bumps the version; the new
 * version is written to *version_out.
 */
int store_key_rotate(struct store *st, const char *id, const char *new_hash, const char *start,
                     int64_t prev_expires_at, const struct audit_input *a, int64_t *version_out);
/** Soft-revoke a key (idempotent: an already revoked key keeps its first time). */
int store_key_revoke(struct store *st, const char *id, int64_t at, const struct audit_input *a);
/** Record last-used times (no audit: this is bookkeeping). */
int store_key_touch(struct store *st, const char *const *ids, const int64_t *at, int n);

/* ---- kill switches ---- */

struct store_kill {
	char scope[16];                   /* key | organization | global */
	char target_id[STORE_ID_LEN + 1]; /* "" for global */
	char set_by[8];                   /* root | org */
	char actor_id[STORE_ID_LEN + 1];
	char reason[STORE_REASON_MAX + 1];
	int64_t engaged_at;
};

/** Engage (or re-engage, replacing who and why). */
int store_kill_engage(struct store *st, const struct store_kill *k, const struct audit_input *a);
/** Lift; STORE_ENOTFOUND when not engaged. */
int store_kill_lift(struct store *st, const char *scope, const char *target_id,
                    const struct audit_input *a);
int store_kill_get(struct store *st, const char *scope, const char *target_id,
                   struct store_kill *out);
/** Every engaged switch (*out malloc'd). */
int store_kill_list(struct store *st, struct store_kill **out, int *n);

/* ---- change feed ---- */

/** The state version: bumped by every key, org or kill-switch change. */
int store_state_version(struct store *st, int64_t *out);

/** How many of the latest changes the change log keeps. */
#define STORE_CHANGES_KEEP 10000

/** One logged change: the state version it made, and what it changed. */
struct store_change {
	int64_t seq;
	char kind[8];                     /* key | org | kills */
	char target_id[STORE_ID_LEN + 1]; /* the key or organisation id; "" for kills */
};

/**
 * The logged changes with after < seq <= upto, oldest first, at most limit
 * (*out malloc'd). Every bump logs one change, so when *n is upto - after
 * and the first seq is after + 1 the list is whole; otherwise (the log was
 * trimmed past after, or predates it) the caller re-checks everything.
 */
int store_changes_since(struct store *st, int64_t after, int64_t upto, int limit,
                        struct store_change **out, int *n);

/* ---- audit log ---- */

struct audit_filter {
	const char *org_id;   /* NULL: every organisation (root) */
	int64_t since, until; /* -1: open */
	const char *key_id;   /* events whose actor or target is this key */
	int64_t after_seq;    /* cursor: 0 from the start */
	int limit;
};

/**
 * One audit event as read. The strings are borrowed from the query's result
 * (valid during the callback only), NULL for SQL NULL; at is -1 when NULL;
 * details is the stored JSON text. The API shapes it (api/audit.c).
 */
struct store_audit_read {
	int64_t seq, at;
	const char *id, *org_id, *actor_type, *actor_id, *action, *target_type, *target_id;
	const char *request_id, *details, *prev_hash, *hash;
};

/** Events matching f, oldest first: each(ctx, ev) once per event, in order. */
int store_audit_list(struct store *st, const struct audit_filter *f,
                     void (*each)(void *ctx, const struct store_audit_read *ev), void *ctx);
/**
 * Recompute the whole chain. *checked gets the events read; on a broken
 * link returns STORE_ECONFLICT with the first bad event's id in bad_id.
 */
int store_audit_verify(struct store *st, int64_t *checked, char bad_id[STORE_ID_LEN + 1]);
/** Append an event on its own (used for notices that change no row). */
int store_audit_append(struct store *st, const struct audit_input *a);

/* ---- request log ---- */

struct store_request_row {
	char request_id[32];
	int64_t received_at;
	char org_id[STORE_ID_LEN + 1], project_id[STORE_ID_LEN + 1], key_id[STORE_ID_LEN + 1];
	char method[12];
	char path[512];
	int status;
	int64_t duration_ms;
	char region[3]; /* "" when unknown */
	int64_t bytes_in, bytes_out;
	char user_agent[257];
	char route[96];   /* the route that answered (a bounded label, never the path); "" none */
	char refusal[16]; /* why authentication refused it (store_usage.h), "" when it did not */
};

/**
 * Insert rows in one transaction (multi-row statements of up to 64 rows). A
 * row whose request_id is already stored, or repeated in rows, is skipped
 * (so a retried batch is not duplicated); any other failure fails them all.
 * The usage rollups (store_usage.h) of the rows inserted are updated in the
 * same transaction, and budget thresholds they cross are notified.
 */
int store_request_log_insert(struct store *st, const struct store_request_row *rows, int n);

struct request_filter {
	const char *org_id; /* NULL: every organisation (root) */
	const char *key_id, *project_id;
	int status;            /* 0: any */
	int64_t since, until;  /* -1: open */
	const char *before_id; /* cursor: request ids sort by time (ULID) */
	int limit;
};

/**
 * One request-log row as read: strings borrowed from the query's result
 * (valid during the callback only), NULL for SQL NULL; received_at is -1
 * when NULL. The API shapes it (api/requests.c).
 */
struct store_request_read {
	const char *request_id, *org_id, *project_id, *key_id, *method, *path, *region, *user_agent;
	const char *route, *refusal;
	int64_t received_at, status, duration_ms, bytes_in, bytes_out;
};

/** Rows matching f, newest first: each(ctx, row) once per row, in order. */
int store_request_log_list(struct store *st, const struct request_filter *f,
                           void (*each)(void *ctx, const struct store_request_read *row),
                           void *ctx);
/** Delete rows received before cutoff_ms; *deleted gets the count. */
int store_request_log_purge(struct store *st, int64_t cutoff_ms, int64_t *deleted);
/** Number of request-log rows (tests and benchmarks). */
int store_request_log_count(struct store *st, int64_t *out);

#endif
