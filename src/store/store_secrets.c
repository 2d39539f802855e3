/*
 * store_secrets.c: the sealed-secret key registry (secret_keys, from
 * migrations/0005_secrets.sql) and the walk over every sealed column that
 * rewrap, retire and the counts share. The sealed columns are the const table
 * below; their SQL is literals made from its names (never from input), values
 * are bound. A value's key id is the 22-character prefix "pcs1:<key id>:",
 * compared with substr() (portable, exact; LIKE is case-blind in SQLite).
 */
#include "store/store_secrets.h"

#include "core/alloc.h"
#include "core/clock.h"
#include "crypto/hash.h"
#include "store/store_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/*
 * A column that holds sealed values: its table, the columns of its context,
 * and its statements. The statements are string literals because the SQLite
 * driver caches prepared statements by the SQL text's address.
 */
struct sealed_column {
	const char *table, *column;
	/*
	 * Another column whose context a value here may carry (NULL: none): an
	 * endpoint's secret rotation moves the text of "secret" to "prev_secret"
	 * unchanged, so a previous secret opens under either (as the engine does).
	 */
	const char *also;
	const char *count_sql;  /* values sealed to the key of prefix ? */
	const char *page_sql;   /* (id, org, value) not sealed to prefix ?, id > ?, LIMIT ? */
	const char *update_sql; /* value = ? WHERE id = ? AND value = ? (compare-and-set) */
};

/* "pcs1:" + key id + ":" is 22 characters: PREFIX_LEN, spelled out in the SQL below. */
#define SEALED_COLUMN(T, C, ALSO, ID, ORG)                                                         \
	{                                                                                          \
		T, C, ALSO, "SELECT COUNT(*) FROM " T " WHERE substr(" C ", 1, 22) = ?",           \
		    "SELECT " ID ", " ORG ", " C " FROM " T " WHERE " C " IS NOT NULL AND " C      \
		    " <> '' AND substr(" C ", 1, 22) <> ? AND " ID " > ? ORDER BY " ID " LIMIT ?", \
		    "UPDATE " T " SET " C " = ? WHERE " ID " = ? AND " C " = ?"                    \
	}

static const struct sealed_column sealed_columns[] = {
    SEALED_COLUMN("webhook_endpoints", "secret", NULL, "id", "org_id"),
    SEALED_COLUMN("webhook_endpoints", "prev_secret", "secret", "id", "org_id"),
    SEALED_COLUMN("capi_configs", "access_token", NULL, "project_id", "org_id"),
    SEALED_COLUMN("event_adids", "adid_sealed", NULL, "event_id",
                  "(SELECT org_id FROM events WHERE events.id = event_adids.event_id)"),
};
#define N_SEALED_COLUMNS (sizeof(sealed_columns) / sizeof(sealed_columns[0]))

/* "pcs1:" + key id + ":" */
#define PREFIX_LEN (5 + SEALED_KEY_ID_LEN + 1)
_Static_assert(PREFIX_LEN == 22, "the sealed columns' SQL spells the prefix length out");
#define PK_B64_MAX 45 /* base64 of 32 bytes: 44 characters */

static void prefix_of(const char *key_id, char out[PREFIX_LEN + 1])
{
	snprintf(out, PREFIX_LEN + 1, "pcs1:%s:", key_id);
}

static bool key_id_ok(const char *key_id)
{
	char probe[PREFIX_LEN + 2];
	char back[SEALED_KEY_ID_LEN + 1];

	if (!key_id || strlen(key_id) != SEALED_KEY_ID_LEN)
		return false;
	snprintf(probe, sizeof(probe), "pcs1:%s:", key_id);
	return sealed_stored_key_id(probe, back) == SEALED_OK;
}

/* ---------- the key registry ---------- */

static void read_key(const struct db_result *r, int i, void *row)
{
	struct store_secret_key *k = row;
	const char *b64 = db_text(r, i, 1);
	size_t n = 0;

	st_copy_str(k->key_id, sizeof(k->key_id), db_text(r, i, 0));
	if (!b64 ||
	    base64_decode(b64, strlen(b64), k->public_key, sizeof(k->public_key), &n) != 0 ||
	    n != SEALED_PK_LEN)
		memset(k->public_key, 0, sizeof(k->public_key));
	k->created_at = db_int(r, i, 2);
	k->retired_at = st_time_or_none(r, i, 3);
}

struct key_add {
	const char *key_id;
	const char *pk_b64;
};

static int key_add_tx(struct db_conn *c, void *arg)
{
	const struct key_add *k = arg;
	struct db_result *r = NULL;
	int64_t at = clock_now_ms();
	int rc = sq(c, "SELECT MAX(created_at) FROM secret_keys", NULL, 0, &r);

	if (rc != STORE_OK)
		return rc;
	/* Strictly after the newest, so "newest" never ties. */
	if (r->nrows == 1 && db_text(r, 0, 0) && db_int(r, 0, 0) >= at)
		at = db_int(r, 0, 0) + 1;
	db_result_free(r);
	struct db_param p[] = {P_TEXT(k->key_id), P_TEXT(k->pk_b64), P_INT(at)};
	return sq(c, "INSERT INTO secret_keys (key_id, public_key, created_at) VALUES (?, ?, ?)", p,
	          3, NULL);
}

int store_secret_key_add(struct store *st, const char *key_id, const uint8_t pk[SEALED_PK_LEN],
                         const struct audit_input *a)
{
	char want[SEALED_KEY_ID_LEN + 1];
	char b64[PK_B64_MAX];
	struct key_add k = {key_id, b64};

	if (!key_id_ok(key_id))
		return STORE_ERROR;
	sealed_key_id(pk, want);
	if (strcmp(want, key_id) != 0 || base64_encode(pk, SEALED_PK_LEN, b64, sizeof(b64)) != 0)
		return STORE_ERROR;
	return st_in_tx(st, key_add_tx, &k, a, NO_CHANGE);
}

#define KEY_COLS "key_id, public_key, created_at, retired_at"

int store_secret_key_current(struct store *st, char key_id[SEALED_KEY_ID_LEN + 1],
                             uint8_t pk[SEALED_PK_LEN])
{
	struct store_secret_key k;
	int rc = st_read_one(st,
	                     "SELECT " KEY_COLS " FROM secret_keys WHERE retired_at IS NULL "
	                     "ORDER BY created_at DESC, key_id DESC LIMIT 1",
	                     NULL, 0, read_key, &k);

	if (rc != STORE_OK)
		return rc;
	memcpy(key_id, k.key_id, sizeof(k.key_id));
	memcpy(pk, k.public_key, SEALED_PK_LEN);
	return STORE_OK;
}

int store_secret_key_list(struct store *st, struct store_secret_key **out, int *n)
{
	void *rows = NULL;
	int rc = st_read_all(st, "SELECT " KEY_COLS " FROM secret_keys ORDER BY created_at, key_id",
	                     NULL, 0, read_key, sizeof(struct store_secret_key), &rows, n);

	*out = rows;
	return rc;
}

/* ---------- the sealed columns ---------- */

/* Values of column col sealed to the key whose prefix is given, on c, into *count. */
static int count_col_tx(struct db_conn *c, const struct sealed_column *col, const char *prefix,
                        int64_t *count)
{
	struct db_result *r = NULL;
	struct db_param p[] = {P_TEXT(prefix)};
	int rc = sq(c, col->count_sql, p, 1, &r);

	if (rc == STORE_OK)
		*count += r->nrows == 1 ? db_int(r, 0, 0) : 0;
	db_result_free(r);
	return rc;
}

static int count_all_tx(struct db_conn *c, const char *key_id, int64_t *count)
{
	char prefix[PREFIX_LEN + 1];
	int rc = STORE_OK;

	prefix_of(key_id, prefix);
	*count = 0;
	for (size_t i = 0; rc == STORE_OK && i < N_SEALED_COLUMNS; i++)
		rc = count_col_tx(c, &sealed_columns[i], prefix, count);
	return rc;
}

int store_secrets_count_for_key(struct store *st, const char *key_id, int64_t *count)
{
	struct db_conn *c;
	int rc;

	*count = 0;
	if (!key_id_ok(key_id))
		return STORE_ERROR;
	c = st_acquire(st);
	if (!c)
		return STORE_EUNAVAILABLE;
	rc = count_all_tx(c, key_id, count);
	st_release(st, c, rc);
	return rc;
}

static int key_retire_tx(struct db_conn *c, void *arg)
{
	const char *key_id = arg;
	struct db_result *r = NULL;
	struct db_param p[] = {P_TEXT(key_id)};
	int64_t sealed = 0;
	int rc;

	rc = sq(c,
	        "SELECT key_id FROM secret_keys WHERE retired_at IS NULL "
	        "ORDER BY created_at DESC, key_id DESC LIMIT 1",
	        NULL, 0, &r);
	if (rc != STORE_OK)
		return rc;
	bool current = r->nrows == 1 && strcmp(db_text(r, 0, 0), key_id) == 0;
	db_result_free(r);
	r = NULL;
	rc = sq(c, "SELECT 1 FROM secret_keys WHERE key_id = ? AND retired_at IS NULL", p, 1, &r);
	if (rc != STORE_OK)
		return rc;
	bool found = r->nrows == 1;
	db_result_free(r);
	if (!found)
		return STORE_ENOTFOUND;
	if (current)
		return STORE_ECONFLICT;
	rc = count_all_tx(c, key_id, &sealed);
	if (rc != STORE_OK)
		return rc;
	if (sealed > 0)
		return STORE_ECONFLICT;
	struct db_param u[] = {P_INT(clock_now_ms()), P_TEXT(key_id)};
	return sq(c,
	          "UPDATE secret_keys SET retired_at = ? WHERE key_id = ? AND retired_at IS NULL",
	          u, 2, NULL);
}

int store_secret_key_retire(struct store *st, const char *key_id, const struct audit_input *a)
{
	if (!key_id_ok(key_id))
		return STORE_ENOTFOUND;
	/* The cast drops const for the callback's void *; key_retire_tx only reads it. */
	return st_in_tx(st, key_retire_tx, (void *)(uintptr_t)key_id, a, NO_CHANGE);
}

int store_secret_seal(struct store *st, const struct sealed_context *ctx, const uint8_t *secret,
                      size_t len, char *out, size_t cap)
{
	char key_id[SEALED_KEY_ID_LEN + 1];
	uint8_t pk[SEALED_PK_LEN];
	int rc = store_secret_key_current(st, key_id, pk);

	if (cap)
		out[0] = '\0';
	if (rc != STORE_OK)
		return rc;
	return sealed_seal(key_id, pk, ctx, secret, len, out, cap) == SEALED_OK ? STORE_OK
	                                                                        : STORE_ERROR;
}

/* ---------- rewrap ---------- */

/* One value of a page: where it is, what it was, what it becomes. */
struct rewrap_row {
	char *id, *old, *fresh;
};

struct rewrap_page {
	const struct sealed_column *col;
	struct rewrap_row *rows;
	int n;
	int64_t written, changed;
};

static int rewrap_write_tx(struct db_conn *c, void *arg)
{
	struct rewrap_page *pg = arg;
	int rc = STORE_OK;

	pg->written = pg->changed = 0;
	for (int i = 0; rc == STORE_OK && i < pg->n; i++) {
		struct db_result *r = NULL;
		if (!pg->rows[i].fresh)
			continue;
		struct db_param p[] = {P_TEXT(pg->rows[i].fresh), P_TEXT(pg->rows[i].id),
		                       P_TEXT(pg->rows[i].old)};
		rc = sq(c, pg->col->update_sql, p, 3, &r);
		if (rc == STORE_OK) {
			if (r && r->changes > 0)
				pg->written++;
			else
				pg->changed++;
		}
		db_result_free(r);
	}
	return rc;
}

static void page_free(struct rewrap_page *pg)
{
	for (int i = 0; i < pg->n; i++) {
		free(pg->rows[i].id);
		free(pg->rows[i].old);
		free(pg->rows[i].fresh);
	}
	free(pg->rows);
	pg->rows = NULL;
	pg->n = 0;
}

/* Open each value of result r (id, org, value) with kr and seal it to key_id/pk into pg. */
static void rewrap_prepare(struct rewrap_page *pg, const struct db_result *r,
                           const struct sealed_keyring *kr, const char *key_id,
                           const uint8_t pk[SEALED_PK_LEN], struct store_rewrap_stats *stats)
{
	uint8_t pt[SEALED_SECRET_MAX];

	pg->rows = xcalloc((size_t)r->nrows + 1, sizeof(pg->rows[0]));
	pg->n = r->nrows;
	for (int i = 0; i < r->nrows; i++) {
		const char *id = db_text(r, i, 0);
		const char *org = db_text(r, i, 1);
		const char *old = db_text(r, i, 2);
		struct sealed_context ctx = {pg->col->table, pg->col->column, id, org};
		char fresh[SEALED_TEXT_MAX];
		size_t len = 0;

		pg->rows[i].id = xstrdup(id ? id : "");
		pg->rows[i].old = xstrdup(old ? old : "");
		int orc = id && org && old ? sealed_open(kr, old, &ctx, pt, sizeof(pt), &len)
		                           : SEALED_EFORMAT;
		if (orc == SEALED_ECONTEXT && pg->col->also) {
			/* Re-sealed for the context it carries, so it opens as before. */
			ctx.column = pg->col->also;
			orc = sealed_open(kr, old, &ctx, pt, sizeof(pt), &len);
		}
		if (orc == SEALED_OK &&
		    sealed_seal(key_id, pk, &ctx, pt, len, fresh, sizeof(fresh)) == SEALED_OK) {
			pg->rows[i].fresh = xstrdup(fresh);
		} else {
			if (stats->failed++ == 0)
				snprintf(stats->first_failed, sizeof(stats->first_failed),
				         "%s.%s %s", pg->col->table, pg->col->column,
				         id ? id : "?");
		}
		sealed_wipe(pt, sizeof(pt));
	}
}

static int rewrap_column(struct store *st, const struct sealed_column *col,
                         const struct sealed_keyring *kr, const char *key_id,
                         const uint8_t pk[SEALED_PK_LEN], int batch,
                         struct store_rewrap_stats *stats)
{
	char prefix[PREFIX_LEN + 1];
	char *after = xstrdup("");
	int rc = STORE_OK;

	prefix_of(key_id, prefix);
	for (;;) {
		struct db_result *r = NULL;
		struct db_param p[] = {P_TEXT(prefix), P_TEXT(after), P_INT(batch)};
		struct rewrap_page pg = {.col = col};

		rc = st_read_q(st, col->page_sql, p, 3, &r);
		if (rc != STORE_OK)
			break;
		int got = r->nrows;
		if (got > 0) {
			free(after);
			after = xstrdup(db_text(r, got - 1, 0) ? db_text(r, got - 1, 0) : "");
		}
		rewrap_prepare(&pg, r, kr, key_id, pk, stats);
		db_result_free(r);
		if (got > 0)
			rc = st_in_tx(st, rewrap_write_tx, &pg, NULL, NO_CHANGE);
		stats->rewrapped += pg.written;
		stats->changed += pg.changed;
		page_free(&pg);
		if (rc != STORE_OK || got < batch)
			break;
	}
	free(after);
	return rc;
}

int store_secrets_rewrap(struct store *st, const struct sealed_keyring *kr, int batch,
                         struct store_rewrap_stats *stats)
{
	char key_id[SEALED_KEY_ID_LEN + 1];
	uint8_t pk[SEALED_PK_LEN];
	uint8_t kr_pk[SEALED_PK_LEN];
	int rc;

	memset(stats, 0, sizeof(*stats));
	rc = store_secret_key_current(st, key_id, pk);
	if (rc != STORE_OK)
		return rc;
	/* The keyring must be able to open what is sealed now, or rewrap would lock values away. */
	bool have = false;
	for (size_t i = 0; i < sealed_keyring_count(kr); i++) {
		char id[SEALED_KEY_ID_LEN + 1];
		if (sealed_keyring_key(kr, i, id, kr_pk) == SEALED_OK && strcmp(id, key_id) == 0 &&
		    memcmp(kr_pk, pk, SEALED_PK_LEN) == 0)
			have = true;
	}
	if (!have)
		return STORE_ECONFLICT;
	if (batch <= 0)
		batch = STORE_REWRAP_BATCH;
	for (size_t i = 0; rc == STORE_OK && i < N_SEALED_COLUMNS; i++)
		rc = rewrap_column(st, &sealed_columns[i], kr, key_id, pk, batch, stats);
	return rc;
}
