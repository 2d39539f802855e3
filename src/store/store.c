/*
 * store.c: the domain queries of store.h, written once in portable SQL over
 * the db.h drivers, plus the connection pool, migrations and the audit hash
 * chain.
 *
 * Audit chain: each event's hash is SHA-256 over the previous hash and a
 * length-prefixed encoding of the event's fields, so editing, inserting or
 * deleting any row breaks every later link. Appends serialise on the single
 * audit_head row, updated first in the same transaction as the change.
 */
#include "store/store.h"

#include "core/alloc.h"
#include "core/clock.h"
#include "core/log.h"
#include "core/str.h"
#include "core/ulid.h"
#include "crypto/hash.h"
#include "store/db.h"
#include "store/migrations.h"
#include "store/store_int.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define POOL_WAIT_MS 5000

struct store {
	const struct db_driver *driver;
	char *url;
	struct db_options opt;
	pthread_mutex_t lock;
	pthread_cond_t freed;
	struct db_conn **idle; /* NULL slots are reconnected on demand */
	int n_idle, size, out;
	atomic_bool connect_failing; /* logged once until a connect succeeds */
};

/* ---------- pool ---------- */

static const struct db_driver *driver_for(const char *url)
{
	if (str_has_prefix(url, "sqlite://"))
		return &db_sqlite_driver;
	if (str_has_prefix(url, "postgres://") || str_has_prefix(url, "postgresql://"))
		return &db_postgres_driver;
	return NULL;
}

int st_map_db(int rc)
{
	switch (rc) {
	case DB_OK:
		return STORE_OK;
	case DB_CONSTRAINT:
		return STORE_ECONFLICT;
	case DB_UNAVAILABLE:
		return STORE_EUNAVAILABLE;
	default:
		return STORE_ERROR;
	}
}

int store_open_with(const char *url, const struct store_options *o, struct store **out, char *err,
                    size_t cap)
{
	const struct db_driver *d = driver_for(url);
	if (!d) {
		snprintf(err, cap, "unsupported store url (use sqlite:///path or postgres://...)");
		return STORE_ERROR;
	}
	struct db_options opt = {.statement_timeout_ms = o->statement_timeout_ms};
	struct db_maint_options mo = {o->wal_checkpoint_pages, o->wal_limit_pages,
	                              o->wal_interval_ms};
	if (d->maint_start)
		opt.maint = d->maint_start(url, &mo);
	struct db_conn *first = NULL;
	int rc = d->connect(url, true, &opt, &first, err, cap);
	if (rc != DB_OK) {
		if (opt.maint)
			d->maint_stop(opt.maint);
		return st_map_db(rc);
	}
	struct store *st = xcalloc(1, sizeof *st);
	st->driver = d;
	st->url = xstrdup(url);
	st->opt = opt;
	st->size = o->pool_size > 0 ? o->pool_size : 1;
	if (d == &db_sqlite_driver && st->size > 4)
		st->size = 4; /* one writer at a time anyway */
	st->idle = xcalloc((size_t)st->size, sizeof(struct db_conn *));
	st->idle[0] = first;
	st->n_idle = st->size; /* slots 1.. are NULL: connect lazily */
	pthread_mutex_init(&st->lock, NULL);
	clock_cond_init_mono(&st->freed);
	*out = st;
	return STORE_OK;
}

int store_open(const char *url, int pool_size, struct store **out, char *err, size_t cap)
{
	struct store_options o = {.pool_size = pool_size};
	return store_open_with(url, &o, out, err, cap);
}

void store_close(struct store *st)
{
	if (!st)
		return;
	for (int i = 0; i < st->n_idle; i++)
		if (st->idle[i])
			st->driver->disconnect(st->idle[i]);
	if (st->opt.maint)
		st->driver->maint_stop(st->opt.maint); /* after the connections that report to it */
	free(st->idle);
	free(st->url);
	pthread_mutex_destroy(&st->lock);
	pthread_cond_destroy(&st->freed);
	free(st);
}

struct db_conn *st_acquire(struct store *st)
{
	struct timespec deadline = clock_mono_deadline(POOL_WAIT_MS);
	pthread_mutex_lock(&st->lock);
	while (st->n_idle == 0) {
		if (pthread_cond_timedwait(&st->freed, &st->lock, &deadline) != 0) {
			pthread_mutex_unlock(&st->lock);
			log_warn("store: no free database connection after %d ms", POOL_WAIT_MS);
			return NULL;
		}
	}
	struct db_conn *c = st->idle[--st->n_idle];
	st->out++;
	pthread_mutex_unlock(&st->lock);
	if (!c) {
		char err[256];
		if (st->driver->connect(st->url, false, &st->opt, &c, err, sizeof err) != DB_OK) {
			/* Once per outage (a request per line would flood the log). */
			if (!atomic_exchange(&st->connect_failing, true))
				log_warn("store: cannot connect: %s", err);
			c = NULL;
			pthread_mutex_lock(&st->lock);
			st->idle[st->n_idle++] = NULL;
			st->out--;
			pthread_cond_signal(&st->freed);
			pthread_mutex_unlock(&st->lock);
		} else if (atomic_exchange(&st->connect_failing, false)) {
			log_info("store: connected again");
		}
	}
	return c;
}

/* Return a connection; one that failed with UNAVAILABLE is dropped. */
void st_release(struct store *st, struct db_conn *c, int rc)
{
	if (c && rc == STORE_EUNAVAILABLE) {
		st->driver->disconnect(c);
		c = NULL;
	}
	pthread_mutex_lock(&st->lock);
	st->idle[st->n_idle++] = c;
	st->out--;
	pthread_cond_signal(&st->freed);
	pthread_mutex_unlock(&st->lock);
}

int sq(struct db_conn *c, const char *sql, const struct db_param *p, int n, struct db_result **out)
{
	return st_map_db(c->driver->query(c, sql, p, n, out));
}

/*
 * Begin a write transaction. durable: its commit must survive a power or
 * OS failure once it returns (kills, revocations, keys, audit events: all
 * but the two high-volume records, request-log rows and last-used times).
 * unbounded: maintenance work that may run past the statement timeout.
 */
int st_begin_tx(struct db_conn *c, bool durable, bool unbounded)
{
	const struct db_driver *d = c->driver;
	int rc = d->set_durable ? st_map_db(d->set_durable(c, durable)) : STORE_OK;
	if (rc == STORE_OK)
		rc = st_map_db(d->begin(c));
	if (rc == STORE_OK && unbounded && d->unbounded) {
		rc = st_map_db(d->unbounded(c));
		if (rc != STORE_OK)
			d->rollback(c);
	}
	return rc;
}

int store_with_conn(struct store *st, int (*fn)(struct db_conn *c, void *arg), void *arg)
{
	struct db_conn *c = st_acquire(st);
	if (!c)
		return STORE_EUNAVAILABLE;
	int rc = fn(c, arg);
	st_release(st, c, rc);
	return rc;
}

void store_maint_stats(struct store *st, struct db_maint_stats *out)
{
	*out = (struct db_maint_stats){0};
	if (st->opt.maint)
		st->driver->maint_stats(st->opt.maint, out);
}

bool st_is_pg(const struct db_conn *c)
{
	return strcmp(c->driver->dialect, "postgres") == 0;
}

void st_copy_str(char *dst, size_t cap, const char *src)
{
	snprintf(dst, cap, "%s", src ? src : "");
}

bool store_ready(struct store *st)
{
	struct db_conn *c = st_acquire(st);
	if (!c)
		return false;
	bool ok = c->driver->alive(c);
	st_release(st, c, ok ? STORE_OK : STORE_EUNAVAILABLE);
	return ok;
}

/* ---------- multi-row statements (store_int.h) ---------- */

int st_multi_run(struct db_conn *c, const struct multi *m, int n)
{
	struct db_param p[MR_ROWS * MR_COLS + 4];
	int rc = STORE_OK, done = 0;
	while (rc == STORE_OK && done < n) {
		int k = MR_KMAX;
		while ((1 << k) > n - done)
			k--;
		int rows = 1 << k;
		for (int i = 0; i < rows; i++)
			m->fill(m->ctx, done + i, p + i * m->cols);
		for (int t = 0; t < m->n_tail; t++)
			p[rows * m->cols + t] = m->tail[t];
		struct db_result *r = NULL;
		rc = sq(c, m->sql[k], p, rows * m->cols + m->n_tail, m->each ? &r : NULL);
		if (rc == STORE_OK && m->each)
			rc = m->each(m->each_ctx, r);
		db_result_free(r);
		done += rows;
	}
	return rc;
}

/* ---------- migrations ---------- */

/*
 * Begin a migration transaction. Where the driver has a migration lock
 * (PostgreSQL) it is taken at once, so nodes starting together apply each
 * migration once: the second waits, then sees it recorded.
 */
static int migrate_begin(struct db_conn *c)
{
	int rc = st_begin_tx(c, true, true);
	if (rc == STORE_OK && c->driver->migrate_lock) {
		rc = st_map_db(c->driver->migrate_lock(c));
		if (rc != STORE_OK)
			c->driver->rollback(c);
	}
	return rc;
}

/* Commit when rc is STORE_OK, else roll back; the final code. */
static int migrate_end(struct db_conn *c, int rc)
{
	if (rc == STORE_OK)
		return st_map_db(c->driver->commit(c));
	c->driver->rollback(c);
	return rc;
}

int store_migrate(struct store *st, int *applied)
{
	struct db_conn *c = st_acquire(st);
	if (!c)
		return STORE_EUNAVAILABLE;
	int n_applied = 0;
	/*
	 * Under the lock too: concurrent CREATE TABLE IF NOT EXISTS can fail on
	 * PostgreSQL with a unique violation in its catalogue.
	 */
	int rc = migrate_begin(c);
	if (rc == STORE_OK)
		rc = migrate_end(
		    c, st_map_db(c->driver->exec_script(
		           c, "CREATE TABLE IF NOT EXISTS schema_migrations (version BIGINT "
		              "PRIMARY KEY, name TEXT NOT NULL, applied_at BIGINT NOT NULL)")));
	for (size_t i = 0; rc == STORE_OK && i < n_migrations; i++) {
		const struct migration *m = &migrations[i];
		if (m->dialect && strcmp(m->dialect, c->driver->dialect) != 0)
			continue;
		rc = migrate_begin(c);
		if (rc != STORE_OK)
			break;
		struct db_result *r = NULL;
		struct db_param p[] = {P_INT(m->version)};
		rc = sq(c, "SELECT 1 FROM schema_migrations WHERE version = ?", p, 1, &r);
		bool done = r && r->nrows > 0;
		db_result_free(r);
		bool ran = false;
		if (rc == STORE_OK && !done) {
			rc = st_map_db(c->driver->exec_script(c, m->sql));
			struct db_param ins[] = {P_INT(m->version), P_TEXT(m->name),
			                         P_INT(clock_now_ms())};
			if (rc == STORE_OK)
				rc = sq(c,
				        "INSERT INTO schema_migrations (version, name, applied_at) "
				        "VALUES (?, ?, ?)",
				        ins, 3, NULL);
			ran = rc == STORE_OK;
		}
		rc = migrate_end(c, rc);
		if (rc != STORE_OK)
			log_error("migration %04d_%s failed", m->version, m->name);
		else if (ran)
			n_applied++;
	}
	st_release(st, c, rc);
	if (applied)
		*applied = n_applied;
	return rc;
}

/* ---------- audit chain ---------- */

static void chain_field(struct sha256_ctx *h, const char *v)
{
	char len[24];
	if (!v) {
		sha256_update(h, "-|", 2);
		return;
	}
	int n = snprintf(len, sizeof len, "%zu:", strlen(v));
	sha256_update(h, len, (size_t)n);
	sha256_update(h, v, strlen(v));
	sha256_update(h, "|", 1);
}

/* The hash of one event given its fields as stored (text) and prev_hash. */
static void chain_hash(const char *const fields[11], const char *prev_hash, char out[65])
{
	struct sha256_ctx h;
	sha256_init(&h);
	sha256_update(&h, "portcullis-audit-v1|", 20);
	chain_field(&h, prev_hash);
	for (int i = 0; i < 11; i++)
		chain_field(&h, fields[i]);
	uint8_t d[SHA256_LEN];
	sha256_final(&h, d);
	hex_encode(d, sizeof d, out);
}

/* Append an event inside the caller's transaction. */
int st_audit_append_tx(struct db_conn *c, const struct audit_input *a)
{
	struct db_result *r = NULL;
	int rc = sq(c, "UPDATE audit_head SET seq = seq + 1 WHERE id = 1", NULL, 0, NULL);
	if (rc == STORE_OK)
		rc = sq(c, "SELECT seq, hash FROM audit_head WHERE id = 1", NULL, 0, &r);
	if (rc != STORE_OK || !r || r->nrows != 1) {
		db_result_free(r);
		return rc != STORE_OK ? rc : STORE_ERROR;
	}
	int64_t seq = db_int(r, 0, 0);
	char prev[65];
	st_copy_str(prev, sizeof prev, db_text(r, 0, 1));
	db_result_free(r);

	char id[ULID_LEN + 1], seqs[24], ats[24], hash[65];
	ulid_new(id);
	snprintf(seqs, sizeof seqs, "%lld", (long long)seq);
	snprintf(ats, sizeof ats, "%lld", (long long)clock_now_ms());
	char *details = a->details ? json_dumps(a->details, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
	const char *fields[11] = {seqs,          id,
	                          ats,           a->org_id,
	                          a->actor_type, a->actor_id,
	                          a->action,     a->target_type,
	                          a->target_id,  a->request_id,
	                          details};
	chain_hash(fields, prev, hash);
	struct db_param p[] = {P_INT(seq),
	                       P_TEXT(id),
	                       P_TEXT(ats),
	                       P_TEXT(a->org_id),
	                       P_TEXT(a->actor_type),
	                       P_TEXT(a->actor_id),
	                       P_TEXT(a->action),
	                       P_TEXT(a->target_type),
	                       P_TEXT(a->target_id),
	                       P_TEXT(a->request_id),
	                       P_TEXT(details),
	                       P_TEXT(prev),
	                       P_TEXT(hash)};
	/* `at` is bound as text and cast so both drivers store an integer. */
	rc = sq(c,
	        "INSERT INTO audit_events (" AUDIT_COLS ") VALUES (?, ?, CAST(? AS BIGINT), ?, ?, "
	        "?, ?, ?, ?, ?, ?, ?, ?)",
	        p, 13, NULL);
	if (rc == STORE_OK) {
		struct db_param h[] = {P_TEXT(hash)};
		rc = sq(c, "UPDATE audit_head SET hash = ? WHERE id = 1", h, 1, NULL);
	}
	free(details);
	return rc;
}

int st_audit_event_tx(struct db_conn *c, const struct audit_input *a)
{
	int rc = st_audit_append_tx(c, a);
	if (rc == STORE_OK && a->event)
		rc = st_event_insert_tx(c, a); /* the change's webhook message */
	return rc;
}

/*
 * Bump the state version and log what changed under the new version (see
 * migrations/0003_changes.sql), dropping the row that falls out of the
 * kept window. kind is "key", "org" or "kills"; id NULL for kills.
 */
int st_record_change_tx(struct db_conn *c, const char *kind, const char *id)
{
	int rc =
	    sq(c, "UPDATE state_version SET version = version + 1 WHERE id = 1", NULL, 0, NULL);
	struct db_param p[] = {P_TEXT(kind), P_TEXT(id ? id : ""), P_INT(clock_now_ms())};
	if (rc == STORE_OK)
		rc = sq(c,
		        "INSERT INTO changes (seq, kind, target_id, at) SELECT version, ?, ?, ? "
		        "FROM state_version WHERE id = 1",
		        p, 3, NULL);
	struct db_param keep[] = {P_INT(STORE_CHANGES_KEEP)};
	if (rc == STORE_OK)
		rc = sq(c,
		        "DELETE FROM changes WHERE seq <= (SELECT version FROM state_version "
		        "WHERE id = 1) - ?",
		        keep, 1, NULL);
	return rc;
}

/*
 * Run fn(c, arg) (when fn is not NULL) in a write transaction with an audit
 * event and its message (when a is not NULL: st_audit_event_tx) and, when ch
 * names a change, a state-version bump logging it.
 * Commits only when all succeed; durable as begin_tx says.
 */
static int tx_run(struct store *st, int (*fn)(struct db_conn *c, void *arg), void *arg,
                  const struct audit_input *a, struct change ch, bool durable, bool unbounded)
{
	struct db_conn *c = st_acquire(st);
	if (!c)
		return STORE_EUNAVAILABLE;
	int rc = st_begin_tx(c, durable, unbounded);
	if (rc == STORE_OK && fn)
		rc = fn(c, arg);
	if (rc == STORE_OK && a)
		rc = st_audit_event_tx(c, a);
	if (rc == STORE_OK && ch.kind)
		rc = st_record_change_tx(c, ch.kind, ch.id);
	if (rc == STORE_OK)
		rc = st_map_db(c->driver->commit(c));
	else
		c->driver->rollback(c);
	st_release(st, c, rc);
	return rc;
}

int st_tx_run(struct store *st, int (*fn)(struct db_conn *c, void *arg), void *arg,
              const struct audit_input *a, struct change ch, bool durable)
{
	return tx_run(st, fn, arg, a, ch, durable, false);
}

int st_maint_tx(struct store *st, int (*fn)(struct db_conn *c, void *arg), void *arg)
{
	return tx_run(st, fn, arg, NULL, NO_CHANGE, false, true);
}

/* A durable write transaction: every change but the high-volume records. */
int st_in_tx(struct store *st, int (*fn)(struct db_conn *c, void *arg), void *arg,
             const struct audit_input *a, struct change ch)
{
	return st_tx_run(st, fn, arg, a, ch, true);
}

/* Run one read query on a pooled connection. */
int st_read_q(struct store *st, const char *sql, const struct db_param *p, int n,
              struct db_result **out)
{
	struct db_conn *c = st_acquire(st);
	if (!c)
		return STORE_EUNAVAILABLE;
	int rc = sq(c, sql, p, n, out);
	st_release(st, c, rc);
	return rc;
}

/* One row into out (STORE_ENOTFOUND when there is none). */
int st_read_one(struct store *st, const char *sql, const struct db_param *p, int n, row_reader read,
                void *out)
{
	struct db_result *r = NULL;
	int rc = st_read_q(st, sql, p, n, &r);
	if (rc != STORE_OK)
		return rc;
	if (r->nrows == 0)
		rc = STORE_ENOTFOUND;
	else
		read(r, 0, out);
	db_result_free(r);
	return rc;
}

/* Every row into a malloc'd array of elem_size records (*out, *count). */
int st_read_all(struct store *st, const char *sql, const struct db_param *p, int n, row_reader read,
                size_t elem_size, void **out, int *count)
{
	struct db_result *r = NULL;
	int rc = st_read_q(st, sql, p, n, &r);
	if (rc != STORE_OK)
		return rc;
	char *rows = xcalloc((size_t)r->nrows + 1, elem_size);
	for (int i = 0; i < r->nrows; i++)
		read(r, i, rows + (size_t)i * elem_size);
	*out = rows;
	*count = r->nrows;
	db_result_free(r);
	return STORE_OK;
}

int store_audit_append(struct store *st, const struct audit_input *a)
{
	return tx_run(st, NULL, NULL, a, NO_CHANGE, true, false);
}

/* A millisecond-timestamp column, -1 for SQL NULL. */
int64_t st_time_or_none(const struct db_result *r, int row, int col)
{
	return db_text(r, row, col) ? db_int(r, row, col) : -1;
}

void st_audit_each(const struct db_result *r,
                   void (*each)(void *ctx, const struct store_audit_read *ev), void *ctx)
{
	for (int i = 0; i < r->nrows; i++) {
		struct store_audit_read ev = {
		    .seq = db_int(r, i, 0),
		    .id = db_text(r, i, 1),
		    .at = st_time_or_none(r, i, 2),
		    .org_id = db_text(r, i, 3),
		    .actor_type = db_text(r, i, 4),
		    .actor_id = db_text(r, i, 5),
		    .action = db_text(r, i, 6),
		    .target_type = db_text(r, i, 7),
		    .target_id = db_text(r, i, 8),
		    .request_id = db_text(r, i, 9),
		    .details = db_text(r, i, 10),
		    .prev_hash = db_text(r, i, 11),
		    .hash = db_text(r, i, 12),
		};
		each(ctx, &ev);
	}
}

int store_audit_list(struct store *st, const struct audit_filter *f,
                     void (*each)(void *ctx, const struct store_audit_read *ev), void *ctx)
{
	struct db_param p[] = {P_TEXT(f->org_id),   P_TEXT(f->org_id), P_INT(f->since),
	                       P_INT(f->since),     P_INT(f->until),   P_INT(f->until),
	                       P_TEXT(f->key_id),   P_TEXT(f->key_id), P_TEXT(f->key_id),
	                       P_INT(f->after_seq), P_INT(f->limit)};
	struct db_result *r = NULL;
	int rc =
	    st_read_q(st,
	              "SELECT " AUDIT_COLS " FROM audit_events WHERE (? IS NULL OR org_id = ?) "
	              "AND (? < 0 OR at >= ?) AND (? < 0 OR at < ?) "
	              "AND (? IS NULL OR actor_id = ? OR target_id = ?) AND seq > ? "
	              "ORDER BY seq LIMIT ?",
	              p, 11, &r);
	if (rc != STORE_OK)
		return rc;
	st_audit_each(r, each, ctx);
	db_result_free(r);
	return STORE_OK;
}

int store_audit_verify(struct store *st, int64_t *checked, char bad_id[STORE_ID_LEN + 1])
{
	char prev[65] = "0000000000000000000000000000000000000000000000000000000000000000";
	int64_t after = 0, n = 0, expect_seq = 1;
	bad_id[0] = '\0';
	for (;;) {
		struct db_param p[] = {P_INT(after)};
		struct db_result *r = NULL;
		int rc =
		    st_read_q(st,
		              "SELECT " AUDIT_COLS " FROM audit_events WHERE seq > ? ORDER BY seq "
		              "LIMIT 1000",
		              p, 1, &r);
		if (rc != STORE_OK)
			return rc;
		if (r->nrows == 0) {
			db_result_free(r);
			break;
		}
		for (int i = 0; i < r->nrows; i++) {
			const char *fields[11];
			for (int k = 0; k < 11; k++)
				fields[k] = db_text(r, i, k);
			char h[65];
			chain_hash(fields, prev, h);
			const char *stored_prev = db_text(r, i, 11);
			const char *stored = db_text(r, i, 12);
			if (db_int(r, i, 0) != expect_seq || !stored_prev || !stored ||
			    strcmp(stored_prev, prev) != 0 || strcmp(stored, h) != 0) {
				st_copy_str(bad_id, STORE_ID_LEN + 1, db_text(r, i, 1));
				db_result_free(r);
				*checked = n;
				return STORE_ECONFLICT;
			}
			st_copy_str(prev, sizeof prev, stored);
			after = db_int(r, i, 0);
			expect_seq++;
			n++;
		}
		db_result_free(r);
	}
	/* The head must point at the last event: catches a deleted tail. */
	struct db_result *r = NULL;
	int rc = st_read_q(st, "SELECT seq, hash FROM audit_head WHERE id = 1", NULL, 0, &r);
	if (rc != STORE_OK)
		return rc;
	bool head_ok = r->nrows == 1 && db_int(r, 0, 0) == n && db_text(r, 0, 1) &&
	               strcmp(db_text(r, 0, 1), prev) == 0;
	db_result_free(r);
	*checked = n;
	if (!head_ok) {
		st_copy_str(bad_id, STORE_ID_LEN + 1, "head");
		return STORE_ECONFLICT;
	}
	return STORE_OK;
}

/* ---------- organisations ---------- */

#define ORG_COLS                                                                                   \
	"id, name, contact_email, rate_limit_requests, rate_limit_per_seconds, "                   \
	"rate_limit_burst, created_at, updated_at"

static void read_org(const struct db_result *r, int i, void *row)
{
	struct store_org *o = row;
	st_copy_str(o->id, sizeof o->id, db_text(r, i, 0));
	st_copy_str(o->name, sizeof o->name, db_text(r, i, 1));
	st_copy_str(o->contact_email, sizeof o->contact_email, db_text(r, i, 2));
	o->rl_requests = db_int_or(r, i, 3, -1);
	o->rl_per_seconds = db_int_or(r, i, 4, -1);
	o->rl_burst = db_int_or(r, i, 5, -1);
	o->created_at = db_int(r, i, 6);
	o->updated_at = db_int(r, i, 7);
}

struct db_param st_int_or_null(int64_t v)
{
	return v < 0 ? P_NULL : P_INT(v);
}

static int org_insert_fn(struct db_conn *c, void *arg)
{
	const struct store_org *o = arg;
	struct db_param p[] = {P_TEXT(o->id),
	                       P_TEXT(o->name),
	                       P_TEXT(o->contact_email[0] ? o->contact_email : NULL),
	                       st_int_or_null(o->rl_requests),
	                       st_int_or_null(o->rl_per_seconds),
	                       st_int_or_null(o->rl_burst),
	                       P_INT(o->created_at),
	                       P_INT(o->updated_at)};
	return sq(c, "INSERT INTO orgs (" ORG_COLS ") VALUES (?, ?, ?, ?, ?, ?, ?, ?)", p, 8, NULL);
}

int store_org_insert(struct store *st, const struct store_org *org, const struct audit_input *a)
{
	return st_in_tx(st, org_insert_fn, (void *)org, a, (struct change){"org", org->id});
}

static int org_update_fn(struct db_conn *c, void *arg)
{
	const struct store_org *o = arg;
	struct db_param p[] = {P_TEXT(o->name),
	                       P_TEXT(o->contact_email[0] ? o->contact_email : NULL),
	                       st_int_or_null(o->rl_requests),
	                       st_int_or_null(o->rl_per_seconds),
	                       st_int_or_null(o->rl_burst),
	                       P_INT(o->updated_at),
	                       P_TEXT(o->id)};
	struct db_result *r = NULL;
	int rc = sq(c,
	            "UPDATE orgs SET name = ?, contact_email = ?, rate_limit_requests = ?, "
	            "rate_limit_per_seconds = ?, rate_limit_burst = ?, updated_at = ? WHERE id = ?",
	            p, 7, &r);
	if (rc == STORE_OK && r->changes == 0)
		rc = STORE_ENOTFOUND;
	db_result_free(r);
	return rc;
}

int store_org_update(struct store *st, const struct store_org *org, const struct audit_input *a)
{
	return st_in_tx(st, org_update_fn, (void *)org, a, (struct change){"org", org->id});
}

int store_org_get(struct store *st, const char *id, struct store_org *out)
{
	struct db_param p[] = {P_TEXT(id)};
	return st_read_one(st, "SELECT " ORG_COLS " FROM orgs WHERE id = ?", p, 1, read_org, out);
}

int store_org_list(struct store *st, const char *after, int limit, struct store_org **out, int *n)
{
	struct db_param p[] = {P_TEXT(after ? after : ""), P_INT(limit)};
	void *rows = NULL;
	int rc = st_read_all(st, "SELECT " ORG_COLS " FROM orgs WHERE id > ? ORDER BY id LIMIT ?",
	                     p, 2, read_org, sizeof **out, &rows, n);
	*out = rows;
	return rc;
}

/* ---------- projects ---------- */

static void read_project(const struct db_result *r, int i, void *row)
{
	struct store_project *p = row;
	st_copy_str(p->id, sizeof p->id, db_text(r, i, 0));
	st_copy_str(p->org_id, sizeof p->org_id, db_text(r, i, 1));
	st_copy_str(p->name, sizeof p->name, db_text(r, i, 2));
	p->created_at = db_int(r, i, 3);
}

static int project_insert_fn(struct db_conn *c, void *arg)
{
	const struct store_project *pr = arg;
	struct db_param p[] = {P_TEXT(pr->id), P_TEXT(pr->org_id), P_TEXT(pr->name),
	                       P_INT(pr->created_at)};
	return sq(c, "INSERT INTO projects (id, org_id, name, created_at) VALUES (?, ?, ?, ?)", p,
	          4, NULL);
}

int store_project_insert(struct store *st, const struct store_project *p,
                         const struct audit_input *a)
{
	return st_in_tx(st, project_insert_fn, (void *)p, a, NO_CHANGE);
}

int store_project_get(struct store *st, const char *org_id, const char *id,
                      struct store_project *out)
{
	struct db_param p[] = {P_TEXT(id), P_TEXT(org_id)};
	return st_read_one(
	    st, "SELECT id, org_id, name, created_at FROM projects WHERE id = ? AND org_id = ?", p,
	    2, read_project, out);
}

int store_project_list(struct store *st, const char *org_id, const char *after, int limit,
                       struct store_project **out, int *n)
{
	struct db_param p[] = {P_TEXT(org_id), P_TEXT(after ? after : ""), P_INT(limit)};
	void *rows = NULL;
	int rc = st_read_all(
	    st,
	    "SELECT id, org_id, name, created_at FROM projects WHERE org_id = ? AND id > ? "
	    "ORDER BY id LIMIT ?",
	    p, 3, read_project, sizeof **out, &rows, n);
	*out = rows;
	return rc;
}

/* ---------- API keys ---------- */

#define KEY_COLS                                                                                   \
	"id, org_id, project_id, name, env, scopes, secret_hash, prev_secret_hash, "               \
	"prev_expires_at, start, created_at, last_used_at, expires_at, revoked_at, version"

static void read_key(const struct db_result *r, int i, void *row)
{
	struct store_key *k = row;
	st_copy_str(k->id, sizeof k->id, db_text(r, i, 0));
	st_copy_str(k->org_id, sizeof k->org_id, db_text(r, i, 1));
	st_copy_str(k->project_id, sizeof k->project_id, db_text(r, i, 2));
	st_copy_str(k->name, sizeof k->name, db_text(r, i, 3));
	st_copy_str(k->env, sizeof k->env, db_text(r, i, 4));
	st_copy_str(k->scopes, sizeof k->scopes, db_text(r, i, 5));
	st_copy_str(k->secret_hash, sizeof k->secret_hash, db_text(r, i, 6));
	st_copy_str(k->prev_secret_hash, sizeof k->prev_secret_hash, db_text(r, i, 7));
	k->prev_expires_at = db_int_or(r, i, 8, -1);
	st_copy_str(k->start, sizeof k->start, db_text(r, i, 9));
	k->created_at = db_int(r, i, 10);
	k->last_used_at = db_int_or(r, i, 11, -1);
	k->expires_at = db_int_or(r, i, 12, -1);
	k->revoked_at = db_int_or(r, i, 13, -1);
	k->version = db_int(r, i, 14);
}

static int key_insert_fn(struct db_conn *c, void *arg)
{
	const struct store_key *k = arg;
	struct db_param p[] = {P_TEXT(k->id),
	                       P_TEXT(k->org_id[0] ? k->org_id : NULL),
	                       P_TEXT(k->project_id[0] ? k->project_id : NULL),
	                       P_TEXT(k->name),
	                       P_TEXT(k->env),
	                       P_TEXT(k->scopes),
	                       P_TEXT(k->secret_hash),
	                       P_NULL,
	                       P_NULL,
	                       P_TEXT(k->start),
	                       P_INT(k->created_at),
	                       P_NULL,
	                       st_int_or_null(k->expires_at),
	                       P_NULL,
	                       P_INT(k->version)};
	return sq(c,
	          "INSERT INTO api_keys (" KEY_COLS
	          ") VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
	          p, 15, NULL);
}

int store_key_insert(struct store *st, const struct store_key *k, const struct audit_input *a)
{
	return st_in_tx(st, key_insert_fn, (void *)k, a, (struct change){"key", k->id});
}

int store_key_get(struct store *st, const char *id, struct store_key *out)
{
	struct db_param p[] = {P_TEXT(id)};
	return st_read_one(st, "SELECT " KEY_COLS " FROM api_keys WHERE id = ?", p, 1, read_key,
	                   out);
}

int store_key_list(struct store *st, const char *org_id, const char *project_id, const char *after,
                   int limit, struct store_key **out, int *n)
{
	bool root_only = org_id && !org_id[0];
	struct db_param p[] = {P_INT(root_only),
	                       P_TEXT(root_only ? NULL : org_id),
	                       P_TEXT(root_only ? NULL : org_id),
	                       P_TEXT(project_id),
	                       P_TEXT(project_id),
	                       P_TEXT(after ? after : ""),
	                       P_INT(limit)};
	void *rows = NULL;
	int rc = st_read_all(st,
	                     "SELECT " KEY_COLS " FROM api_keys WHERE "
	                     "(CASE WHEN ? = 1 THEN org_id IS NULL ELSE org_id IS NOT NULL END) "
	                     "AND (? IS NULL OR org_id = ?) AND (? IS NULL OR project_id = ?) "
	                     "AND id > ? ORDER BY id LIMIT ?",
	                     p, 7, read_key, sizeof **out, &rows, n);
	*out = rows;
	return rc;
}

struct rotate_args {
	const char *id, *new_hash, *start;
	int64_t prev_expires_at;
	int64_t *version_out;
};

static int key_rotate_fn(struct db_conn *c, void *arg)
{
	struct rotate_args *ra = arg;
	bool grace = ra->prev_expires_at > 0;
	struct db_param p[] = {P_INT(grace), P_INT(grace ? ra->prev_expires_at : 0),
	                       P_TEXT(ra->new_hash), P_TEXT(ra->start), P_TEXT(ra->id)};
	struct db_result *r = NULL;
	int rc = sq(c,
	            "UPDATE api_keys SET prev_secret_hash = CASE WHEN ? = 1 THEN secret_hash ELSE "
	            "NULL END, prev_expires_at = NULLIF(?, 0), secret_hash = ?, start = ?, "
	            "version = version + 1 WHERE id = ? AND revoked_at IS NULL",
	            p, 5, &r);
	if (rc == STORE_OK && r->changes == 0)
		rc = STORE_ENOTFOUND;
	db_result_free(r);
	r = NULL;
	if (rc == STORE_OK && ra->version_out) {
		struct db_param g[] = {P_TEXT(ra->id)};
		rc = sq(c, "SELECT version FROM api_keys WHERE id = ?", g, 1, &r);
		if (rc == STORE_OK && r->nrows == 1)
			*ra->version_out = db_int(r, 0, 0);
		db_result_free(r);
	}
	return rc;
}

int store_key_rotate(struct store *st, const char *id, const char *new_hash, const char *start,
                     int64_t prev_expires_at, const struct audit_input *a, int64_t *version_out)
{
	struct rotate_args ra = {id, new_hash, start, prev_expires_at, version_out};
	return st_in_tx(st, key_rotate_fn, &ra, a, (struct change){"key", id});
}

struct revoke_args {
	const char *id;
	int64_t at;
};

static int key_revoke_fn(struct db_conn *c, void *arg)
{
	struct revoke_args *ra = arg;
	struct db_param p[] = {P_INT(ra->at), P_TEXT(ra->id)};
	struct db_result *r = NULL;
	int rc =
	    sq(c,
	       "UPDATE api_keys SET revoked_at = COALESCE(revoked_at, ?), version = version + 1 "
	       "WHERE id = ?",
	       p, 2, &r);
	if (rc == STORE_OK && r->changes == 0)
		rc = STORE_ENOTFOUND;
	db_result_free(r);
	return rc;
}

int store_key_revoke(struct store *st, const char *id, int64_t at, const struct audit_input *a)
{
	struct revoke_args ra = {id, at};
	return st_in_tx(st, key_revoke_fn, &ra, a, (struct change){"key", id});
}

struct touch_args {
	const char *const *ids;
	const int64_t *at;
	int n;
};

static int key_touch_fn(struct db_conn *c, void *arg)
{
	struct touch_args *ta = arg;
	int rc = STORE_OK;
	for (int i = 0; rc == STORE_OK && i < ta->n; i++) {
		struct db_param p[] = {P_INT(ta->at[i]), P_INT(ta->at[i]), P_TEXT(ta->ids[i])};
		rc = sq(c,
		        "UPDATE api_keys SET last_used_at = ? WHERE (last_used_at IS NULL OR "
		        "last_used_at < ?) AND id = ?",
		        p, 3, NULL);
	}
	return rc;
}

int store_key_touch(struct store *st, const char *const *ids, const int64_t *at, int n)
{
	struct touch_args ta = {ids, at, n};
	return st_tx_run(st, key_touch_fn, &ta, NULL, NO_CHANGE,
	                 false); /* loss-tolerant, high volume */
}

/* ---------- kill switches ---------- */

static void read_kill(const struct db_result *r, int i, void *row)
{
	struct store_kill *k = row;
	st_copy_str(k->scope, sizeof k->scope, db_text(r, i, 0));
	st_copy_str(k->target_id, sizeof k->target_id, db_text(r, i, 1));
	st_copy_str(k->set_by, sizeof k->set_by, db_text(r, i, 2));
	st_copy_str(k->actor_id, sizeof k->actor_id, db_text(r, i, 3));
	st_copy_str(k->reason, sizeof k->reason, db_text(r, i, 4));
	k->engaged_at = db_int(r, i, 5);
}

static int kill_engage_fn(struct db_conn *c, void *arg)
{
	const struct store_kill *k = arg;
	struct db_param p[] = {P_TEXT(k->scope),
	                       P_TEXT(k->target_id),
	                       P_TEXT(k->set_by),
	                       P_TEXT(k->actor_id[0] ? k->actor_id : NULL),
	                       P_TEXT(k->reason[0] ? k->reason : NULL),
	                       P_INT(k->engaged_at)};
	int rc =
	    sq(c,
	       "INSERT INTO kill_switches (scope, target_id, set_by, actor_id, reason, engaged_at) "
	       "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (scope, target_id) DO UPDATE SET "
	       "set_by = excluded.set_by, actor_id = excluded.actor_id, reason = excluded.reason, "
	       "engaged_at = excluded.engaged_at",
	       p, 6, NULL);
	if (rc == STORE_OK && strcmp(k->scope, "key") == 0) {
		struct db_param v[] = {P_TEXT(k->target_id)};
		rc = sq(c, "UPDATE api_keys SET version = version + 1 WHERE id = ?", v, 1, NULL);
		if (rc == STORE_OK)
			rc = st_record_change_tx(c, "key", k->target_id);
	}
	return rc;
}

int store_kill_engage(struct store *st, const struct store_kill *k, const struct audit_input *a)
{
	return st_in_tx(st, kill_engage_fn, (void *)k, a, (struct change){"kills", NULL});
}

struct lift_args {
	const char *scope, *target_id;
};

static int kill_lift_fn(struct db_conn *c, void *arg)
{
	struct lift_args *la = arg;
	struct db_param p[] = {P_TEXT(la->scope), P_TEXT(la->target_id)};
	struct db_result *r = NULL;
	int rc = sq(c, "DELETE FROM kill_switches WHERE scope = ? AND target_id = ?", p, 2, &r);
	if (rc == STORE_OK && r->changes == 0)
		rc = STORE_ENOTFOUND;
	db_result_free(r);
	if (rc == STORE_OK && strcmp(la->scope, "key") == 0) {
		struct db_param v[] = {P_TEXT(la->target_id)};
		rc = sq(c, "UPDATE api_keys SET version = version + 1 WHERE id = ?", v, 1, NULL);
		if (rc == STORE_OK)
			rc = st_record_change_tx(c, "key", la->target_id);
	}
	return rc;
}

int store_kill_lift(struct store *st, const char *scope, const char *target_id,
                    const struct audit_input *a)
{
	struct lift_args la = {scope, target_id};
	return st_in_tx(st, kill_lift_fn, &la, a, (struct change){"kills", NULL});
}

#define KILL_COLS "scope, target_id, set_by, actor_id, reason, engaged_at"

int store_kill_get(struct store *st, const char *scope, const char *target_id,
                   struct store_kill *out)
{
	struct db_param p[] = {P_TEXT(scope), P_TEXT(target_id)};
	return st_read_one(
	    st, "SELECT " KILL_COLS " FROM kill_switches WHERE scope = ? AND target_id = ?", p, 2,
	    read_kill, out);
}

int store_kill_list(struct store *st, struct store_kill **out, int *n)
{
	void *rows = NULL;
	int rc = st_read_all(st, "SELECT " KILL_COLS " FROM kill_switches", NULL, 0, read_kill,
	                     sizeof **out, &rows, n);
	*out = rows;
	return rc;
}

int store_state_version(struct store *st, int64_t *out)
{
	struct db_result *r = NULL;
	int rc = st_read_q(st, "SELECT version FROM state_version WHERE id = 1", NULL, 0, &r);
	if (rc == STORE_OK)
		*out = db_int(r, 0, 0);
	db_result_free(r);
	return rc;
}

static void read_change(const struct db_result *r, int i, void *row)
{
	struct store_change *ch = row;
	ch->seq = db_int(r, i, 0);
	st_copy_str(ch->kind, sizeof ch->kind, db_text(r, i, 1));
	st_copy_str(ch->target_id, sizeof ch->target_id, db_text(r, i, 2));
}

int store_changes_since(struct store *st, int64_t after, int64_t upto, int limit,
                        struct store_change **out, int *n)
{
	struct db_param p[] = {P_INT(after), P_INT(upto), P_INT(limit)};
	void *rows = NULL;
	int rc = st_read_all(st,
	                     "SELECT seq, kind, target_id FROM changes WHERE seq > ? AND seq <= ? "
	                     "ORDER BY seq LIMIT ?",
	                     p, 3, read_change, sizeof **out, &rows, n);
	*out = rows;
	return rc;
}

/* ---------- request log ---------- */

/*
 * Rows go in with multi-row INSERTs of 64, 32, ..., 1 rows: per row, SQLite
 * then only binds and inserts, and the statement's own overhead (and
 * PostgreSQL's round trip) is paid once for up to 64 rows. Each size is one
 * string literal, so both drivers' statement caches keep all fourteen.
 * ON CONFLICT DO NOTHING applies row by row, also between the rows of one
 * statement: a retried batch that was in fact committed inserts nothing twice.
 *
 * Usage counts only the rows inserted. Request ids are fresh ULIDs, so every
 * row of a first write is new and the statement's change count says so; the
 * statements then do without RETURNING (for which SQLite keeps every
 * inserted id in a temporary table: about a tenth of a row's cost). Only when
 * a count falls short, a batch written before (the writer's retry after a
 * commit whose outcome it did not see), the transaction is rolled back and
 * run again with RETURNING request_id, which names the rows inserted.
 */
#define RL_COLS 15
#define RL_ROW  "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
#define RL_2    RL_ROW ", " RL_ROW
#define RL_4    RL_2 ", " RL_2
#define RL_8    RL_4 ", " RL_4
#define RL_16   RL_8 ", " RL_8
#define RL_32   RL_16 ", " RL_16
#define RL_64   RL_32 ", " RL_32
#define RL_INSERT(values)                                                                          \
	"INSERT INTO request_log (request_id, received_at, org_id, project_id, key_id, method, "   \
	"path, status, duration_ms, region, bytes_in, bytes_out, user_agent, route, refusal) "     \
	"VALUES " values " ON CONFLICT (request_id) DO NOTHING"
#define RL_RETURNING(values) RL_INSERT(values) " RETURNING request_id"

/* rl_insert_sql[returning][k]: the statement for 2^k rows, up to RL_MAX_ROWS. */
static const char *const rl_insert_sql[2][7] = {
    {RL_INSERT(RL_ROW), RL_INSERT(RL_2), RL_INSERT(RL_4), RL_INSERT(RL_8), RL_INSERT(RL_16),
     RL_INSERT(RL_32), RL_INSERT(RL_64)},
    {RL_RETURNING(RL_ROW), RL_RETURNING(RL_2), RL_RETURNING(RL_4), RL_RETURNING(RL_8),
     RL_RETURNING(RL_16), RL_RETURNING(RL_32), RL_RETURNING(RL_64)},
};
#define RL_KMAX     ((int)(sizeof rl_insert_sql[0] / sizeof rl_insert_sql[0][0]) - 1)
#define RL_MAX_ROWS (1 << RL_KMAX)

static void request_row_params(const struct store_request_row *w, struct db_param *p)
{
	p[0] = P_TEXT(w->request_id);
	p[1] = P_INT(w->received_at);
	p[2] = P_TEXT(w->org_id[0] ? w->org_id : NULL);
	p[3] = P_TEXT(w->project_id[0] ? w->project_id : NULL);
	p[4] = P_TEXT(w->key_id[0] ? w->key_id : NULL);
	p[5] = P_TEXT(w->method);
	p[6] = P_TEXT(w->path);
	p[7] = P_INT(w->status);
	p[8] = P_INT(w->duration_ms);
	p[9] = P_TEXT(w->region[0] ? w->region : NULL);
	p[10] = P_INT(w->bytes_in);
	p[11] = P_INT(w->bytes_out);
	p[12] = P_TEXT(w->user_agent[0] ? w->user_agent : NULL);
	p[13] = P_TEXT(w->route[0] ? w->route : NULL);
	p[14] = P_TEXT(w->refusal[0] ? w->refusal : NULL);
}

/*
 * Mark in inserted[0..n) the rows of one statement that RETURNING named:
 * all of them in the usual case (as many ids as rows), else each returned
 * id's first row (a repeated id in rows was inserted once, by its first).
 */
static void mark_inserted(const struct store_request_row *rows, int n, const struct db_result *r,
                          bool *inserted)
{
	if (r->nrows == n) {
		for (int i = 0; i < n; i++)
			inserted[i] = true;
		return;
	}
	for (int j = 0; j < r->nrows; j++) {
		const char *id = db_text(r, j, 0);
		for (int i = 0; id && i < n; i++)
			if (!inserted[i] && strcmp(rows[i].request_id, id) == 0) {
				inserted[i] = true;
				break;
			}
	}
}

struct insert_rows_args {
	const struct store_request_row *rows;
	int n;
	bool returning; /* name the inserted rows (a batch that may have been written before) */
};

static int request_log_insert_fn(struct db_conn *c, void *arg)
{
	struct insert_rows_args *ia = arg;
	struct db_param p[RL_MAX_ROWS * RL_COLS];
	bool *inserted = xcalloc((size_t)ia->n + 1, sizeof *inserted);
	int rc = STORE_OK, done = 0;
	while (rc == STORE_OK && done < ia->n) {
		int k = RL_KMAX; /* the largest power of two not above what is left */
		while ((1 << k) > ia->n - done)
			k--;
		int rows = 1 << k;
		for (int i = 0; i < rows; i++)
			request_row_params(&ia->rows[done + i], p + i * RL_COLS);
		struct db_result *r = NULL;
		rc = sq(c, rl_insert_sql[ia->returning][k], p, rows * RL_COLS, &r);
		if (rc == STORE_OK && ia->returning)
			mark_inserted(ia->rows + done, rows, r, inserted + done);
		else if (rc == STORE_OK && r->changes == rows)
			for (int i = 0; i < rows; i++)
				inserted[done + i] = true;
		else if (rc == STORE_OK)
			rc = STORE_ECONFLICT; /* some rows were there: again, naming them */
		db_result_free(r);
		done += rows;
	}
	/* A row whose id an earlier statement inserted was returned by none: not counted. */
	if (rc == STORE_OK)
		rc = st_usage_record_tx(c, ia->rows, inserted, ia->n);
	free(inserted);
	return rc;
}

int store_request_log_insert(struct store *st, const struct store_request_row *rows, int n)
{
	struct insert_rows_args ia = {rows, n, false};
	int rc =
	    st_tx_run(st, request_log_insert_fn, &ia, NULL, NO_CHANGE, false); /* high volume */
	if (rc == STORE_ECONFLICT) {
		ia.returning = true;
		rc = st_tx_run(st, request_log_insert_fn, &ia, NULL, NO_CHANGE, false);
	}
	return rc;
}

/*
 * A request id is req_<ULID> of its received_at (src/http/server.c), so a
 * time bound is also an id bound, which request_id's index serves (SQLite
 * has no index on received_at: 0016_request_log_at.sqlite.sql). The id
 * bound is a minute wider than the time (rows written before the ids carried
 * received_at exactly may differ by a few milliseconds); the exact
 * received_at test stays beside it.
 */
#define RL_ID_MARGIN_MS 60000
#define RL_ID_CAP       (sizeof "req_" + ULID_LEN)
#define RL_TIME_MAX     ((INT64_C(1) << 48) - 1) /* a ULID's largest time */

static void rl_id_floor(int64_t ms, char out[RL_ID_CAP])
{
	ulid_prefixed_floor("req", ms < RL_TIME_MAX ? ms : RL_TIME_MAX, out, RL_ID_CAP);
}

int store_request_log_list(struct store *st, const struct request_filter *f,
                           void (*each)(void *ctx, const struct store_request_read *row), void *ctx)
{
	char lo[RL_ID_CAP], hi[RL_ID_CAP];
	rl_id_floor(f->since < 0 ? 0 : f->since - RL_ID_MARGIN_MS, lo);
	rl_id_floor(f->until < 0 ? RL_TIME_MAX : f->until + RL_ID_MARGIN_MS, hi);
	struct db_param p[] = {P_TEXT(f->org_id),
	                       P_TEXT(f->org_id),
	                       P_TEXT(f->key_id),
	                       P_TEXT(f->key_id),
	                       P_TEXT(f->project_id),
	                       P_TEXT(f->project_id),
	                       P_INT(f->status),
	                       P_INT(f->status),
	                       P_INT(f->since),
	                       P_INT(f->since),
	                       P_INT(f->until),
	                       P_INT(f->until),
	                       P_TEXT(lo),
	                       P_TEXT(hi),
	                       P_TEXT(f->before_id),
	                       P_TEXT(f->before_id),
	                       P_INT(f->limit)};
	struct db_result *r = NULL;
	int rc = st_read_q(
	    st,
	    "SELECT request_id, received_at, org_id, project_id, key_id, method, path, status, "
	    "duration_ms, region, bytes_in, bytes_out, user_agent, route, refusal FROM request_log "
	    "WHERE "
	    "(? IS NULL OR org_id = ?) AND (? IS NULL OR key_id = ?) AND "
	    "(? IS NULL OR project_id = ?) AND (? = 0 OR status = ?) AND "
	    "(? < 0 OR received_at >= ?) AND (? < 0 OR received_at < ?) AND "
	    "request_id >= ? AND request_id < ? AND "
	    "(? IS NULL OR request_id < ?) ORDER BY request_id DESC LIMIT ?",
	    p, 17, &r);
	if (rc != STORE_OK)
		return rc;
	for (int i = 0; i < r->nrows; i++) {
		struct store_request_read row = {
		    .request_id = db_text(r, i, 0),
		    .received_at = st_time_or_none(r, i, 1),
		    .org_id = db_text(r, i, 2),
		    .project_id = db_text(r, i, 3),
		    .key_id = db_text(r, i, 4),
		    .method = db_text(r, i, 5),
		    .path = db_text(r, i, 6),
		    .status = db_int(r, i, 7),
		    .duration_ms = db_int(r, i, 8),
		    .region = db_text(r, i, 9),
		    .bytes_in = db_int(r, i, 10),
		    .bytes_out = db_int(r, i, 11),
		    .user_agent = db_text(r, i, 12),
		    .route = db_text(r, i, 13),
		    .refusal = db_text(r, i, 14),
		};
		each(ctx, &row);
	}
	db_result_free(r);
	return STORE_OK;
}

int store_request_log_purge(struct store *st, int64_t cutoff_ms, int64_t *deleted)
{
	struct db_conn *c = st_acquire(st);
	if (!c)
		return STORE_EUNAVAILABLE;
	/* A day of rows may take longer than the statement timeout allows. */
	int rc = st_begin_tx(c, false, true);
	if (rc != STORE_OK) {
		st_release(st, c, rc);
		return rc;
	}
	char below[RL_ID_CAP];
	rl_id_floor(cutoff_ms + RL_ID_MARGIN_MS, below);
	struct db_param p[] = {P_TEXT(below), P_INT(cutoff_ms)};
	struct db_result *r = NULL;
	rc = sq(c, "DELETE FROM request_log WHERE request_id < ? AND received_at < ?", p, 2, &r);
	if (rc == STORE_OK)
		rc = st_map_db(c->driver->commit(c));
	else
		c->driver->rollback(c);
	if (rc == STORE_OK && deleted)
		*deleted = r->changes;
	db_result_free(r);
	st_release(st, c, rc);
	return rc;
}

int store_request_log_count(struct store *st, int64_t *out)
{
	struct db_result *r = NULL;
	int rc = st_read_q(st, "SELECT count(*) FROM request_log", NULL, 0, &r);
	if (rc == STORE_OK)
		*out = db_int(r, 0, 0);
	db_result_free(r);
	return rc;
}
