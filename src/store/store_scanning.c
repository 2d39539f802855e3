/*
 * store_scanning.c: GitHub secret scanning's keys, refresh flag and
 * reports (see store_scanning.h). One row of secret_scanning_state carries
 * the fetch and refresh times, so the API and every worker agree on them
 * without talking to each other.
 */
#include "store/store_scanning.h"

#include "store/store_int.h"

#include <string.h>

struct keys_args {
	const struct store_scan_key *keys;
	int n;
	int64_t now;
};

static int keys_replace_fn(struct db_conn *c, void *arg)
{
	const struct keys_args *ka = arg;
	int rc = sq(c, "DELETE FROM secret_scanning_keys", NULL, 0, NULL);
	for (int i = 0; rc == STORE_OK && i < ka->n; i++) {
		const struct store_scan_key *k = &ka->keys[i];
		struct db_param p[] = {P_TEXT(k->key_identifier), P_TEXT(k->public_key),
		                       P_INT(k->is_current ? 1 : 0), P_INT(ka->now)};
		rc = sq(c,
		        "INSERT INTO secret_scanning_keys (key_identifier, public_key, is_current, "
		        "fetched_at) VALUES (?, ?, ?, ?)",
		        p, 4, NULL);
	}
	if (rc == STORE_OK) {
		struct db_param p[] = {P_INT(ka->now)};
		rc = sq(c, "UPDATE secret_scanning_state SET fetched_at = ? WHERE id = 1", p, 1,
		        NULL);
	}
	return rc;
}

int store_scan_keys_replace(struct store *st, const struct store_scan_key *keys, int n, int64_t now)
{
	if (n < 1 || n > STORE_SCAN_KEYS_MAX)
		return STORE_ERROR;
	struct keys_args ka = {keys, n, now};
	return st_tx_run(st, keys_replace_fn, &ka, NULL, NO_CHANGE, false);
}

static void read_key(const struct db_result *r, int i, void *row)
{
	struct store_scan_key *k = row;
	st_copy_str(k->key_identifier, sizeof k->key_identifier, db_text(r, i, 0));
	st_copy_str(k->public_key, sizeof k->public_key, db_text(r, i, 1));
	k->is_current = db_int(r, i, 2) != 0;
}

int store_scan_key_get(struct store *st, const char *key_identifier, struct store_scan_key *out)
{
	struct db_param p[] = {P_TEXT(key_identifier)};
	return st_read_one(
	    st,
	    "SELECT key_identifier, public_key, is_current FROM secret_scanning_keys "
	    "WHERE key_identifier = ?",
	    p, 1, read_key, out);
}

struct state_row {
	int64_t fetched_at, attempted_at, requested_at;
};

static void read_state(const struct db_result *r, int i, void *row)
{
	struct state_row *s = row;
	s->fetched_at = st_time_or_none(r, i, 0);
	s->attempted_at = st_time_or_none(r, i, 1);
	s->requested_at = st_time_or_none(r, i, 2);
}

int store_scan_state_get(struct store *st, int64_t *fetched_at, int64_t *attempted_at,
                         int64_t *requested_at)
{
	struct state_row s = {-1, -1, -1};
	int rc = st_read_one(st,
	                     "SELECT fetched_at, attempted_at, refresh_requested_at FROM "
	                     "secret_scanning_state "
	                     "WHERE id = 1",
	                     NULL, 0, read_state, &s);
	*fetched_at = s.fetched_at;
	if (attempted_at)
		*attempted_at = s.attempted_at;
	*requested_at = s.requested_at;
	return rc;
}

struct claim_args {
	int64_t now, gap;
	bool refresh; /* false: the claim; true: the refresh request */
};

static int state_update_fn(struct db_conn *c, void *arg)
{
	const struct claim_args *ca = arg;
	struct db_result *r = NULL;
	int rc;
	if (ca->refresh) {
		struct db_param p[] = {P_INT(ca->now)};
		return sq(c,
		          "UPDATE secret_scanning_state SET refresh_requested_at = ? WHERE id = 1",
		          p, 1, NULL);
	}
	struct db_param p[] = {P_INT(ca->now), P_INT(ca->now - ca->gap)};
	rc = sq(c,
	        "UPDATE secret_scanning_state SET attempted_at = ? WHERE id = 1 AND "
	        "(attempted_at IS NULL OR attempted_at <= ?)",
	        p, 2, &r);
	if (rc == STORE_OK && r->changes == 0)
		rc = STORE_ECONFLICT;
	db_result_free(r);
	return rc;
}

int store_scan_refresh_request(struct store *st, int64_t now)
{
	struct claim_args ca = {now, 0, true};
	return st_tx_run(st, state_update_fn, &ca, NULL, NO_CHANGE, false);
}

int store_scan_fetch_claim(struct store *st, int64_t now, int64_t min_gap_ms)
{
	struct claim_args ca = {now, min_gap_ms, false};
	return st_tx_run(st, state_update_fn, &ca, NULL, NO_CHANGE, false);
}

static int report_insert_fn(struct db_conn *c, void *arg)
{
	const struct store_leak_report *r = arg;
	struct db_param p[] = {P_TEXT(r->token_hash), P_TEXT(r->key_id),    P_TEXT(r->org_id),
	                       P_TEXT(r->token_type), P_TEXT(r->source),    P_TEXT(r->url),
	                       P_TEXT(r->action),     P_INT(r->reported_at)};
	return sq(c,
	          "INSERT INTO secret_scanning_reports (token_hash, key_id, org_id, token_type, "
	          "source, url, action, reported_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
	          p, 8, NULL);
}

int store_leak_report_insert(struct store *st, const struct store_leak_report *r,
                             const struct audit_input *a)
{
	return st_in_tx(st, report_insert_fn, (void *)r, a, NO_CHANGE);
}

static void read_report(const struct db_result *r, int i, void *row)
{
	struct store_leak_report *o = row;
	st_copy_str(o->token_hash, sizeof o->token_hash, db_text(r, i, 0));
	st_copy_str(o->key_id, sizeof o->key_id, db_text(r, i, 1));
	st_copy_str(o->org_id, sizeof o->org_id, db_text(r, i, 2));
	st_copy_str(o->token_type, sizeof o->token_type, db_text(r, i, 3));
	st_copy_str(o->source, sizeof o->source, db_text(r, i, 4));
	st_copy_str(o->url, sizeof o->url, db_text(r, i, 5));
	st_copy_str(o->action, sizeof o->action, db_text(r, i, 6));
	o->reported_at = db_int(r, i, 7);
}

int store_leak_report_get(struct store *st, const char *token_hash, struct store_leak_report *out)
{
	struct db_param p[] = {P_TEXT(token_hash)};
	memset(out, 0, sizeof *out);
	return st_read_one(st,
	                   "SELECT token_hash, key_id, org_id, token_type, source, url, action, "
	                   "reported_at FROM secret_scanning_reports WHERE token_hash = ?",
	                   p, 1, read_report, out);
}
