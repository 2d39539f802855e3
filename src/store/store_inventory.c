/*
 * store_inventory.c: the key inventory's reads of the usage rollups for a
 * page of keys (store_inventory.h). A page is a run of one organisation's
 * keys in id order, so both statements are bounded by its first and last
 * id and the organisation: one aggregate over usage_hour (org_id, bucket,
 * ... primary key) and one read of the keys' region sightings in
 * usage_key_seen (key_id, kind, value primary key). Rows are matched back
 * to the page's keys by id; ids in the range that are not on the page
 * (another organisation's keys) do not pass the org_id filter.
 */
#include "store/store_inventory.h"

#include "store/store_int.h"

#include <stdlib.h>
#include <string.h>

/* The index of id in keys[0..n) (sorted by id), or -1. */
static int key_index(const struct store_key *keys, int n, const char *id)
{
	int lo = 0, hi = n - 1;
	while (lo <= hi) {
		int mid = lo + (hi - lo) / 2;
		int c = strcmp(keys[mid].id, id);
		if (c == 0)
			return mid;
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid - 1;
	}
	return -1;
}

static int read_counts(struct store *st, const char *org_id, const struct store_key *keys, int n,
                       int64_t since_recent, int64_t since_long, struct inventory_usage *out)
{
	struct db_param p[] = {P_INT(since_recent), P_TEXT(org_id), P_INT(since_long),
	                       P_TEXT(keys[0].id), P_TEXT(keys[n - 1].id)};
	struct db_result *r = NULL;
	int rc = st_read_q(st,
	                   "SELECT key_id, sum(CASE WHEN bucket >= ? THEN requests ELSE 0 END), "
	                   "sum(requests) FROM usage_hour WHERE org_id = ? AND bucket >= ? "
	                   "AND key_id >= ? AND key_id <= ? AND refusal = '' GROUP BY key_id",
	                   p, 5, &r);
	if (rc != STORE_OK)
		return rc;
	for (int i = 0; i < r->nrows; i++) {
		int k = key_index(keys, n, db_text(r, i, 0));
		if (k < 0)
			continue;
		out[k].requests_recent = db_int(r, i, 1);
		out[k].requests_long = db_int(r, i, 2);
	}
	db_result_free(r);
	return STORE_OK;
}

static int read_regions(struct store *st, const char *org_id, const struct store_key *keys, int n,
                        struct inventory_usage *out)
{
	struct db_param p[] = {P_TEXT(keys[0].id), P_TEXT(keys[n - 1].id), P_TEXT(org_id)};
	struct db_result *r = NULL;
	/* Latest first within each key: the first row of a key is its last region. */
	int rc = st_read_q(st,
	                   "SELECT key_id, value, last_seen FROM usage_key_seen WHERE "
	                   "key_id >= ? AND key_id <= ? AND kind = 'region' AND org_id = ? "
	                   "AND value <> '' ORDER BY key_id, last_seen DESC, value",
	                   p, 3, &r);
	if (rc != STORE_OK)
		return rc;
	for (int i = 0; i < r->nrows; i++) {
		int k = key_index(keys, n, db_text(r, i, 0));
		if (k < 0 || out[k].last_region_at >= 0)
			continue;
		st_copy_str(out[k].last_region, sizeof out[k].last_region, db_text(r, i, 1));
		out[k].last_region_at = db_int(r, i, 2);
	}
	db_result_free(r);
	return STORE_OK;
}

int store_inventory_usage(struct store *st, const char *org_id, const struct store_key *keys, int n,
                          int64_t since_recent, int64_t since_long, struct inventory_usage *out)
{
	for (int i = 0; i < n; i++)
		out[i] = (struct inventory_usage){.last_region_at = -1};
	if (n <= 0)
		return STORE_OK;
	int rc = read_counts(st, org_id, keys, n, since_recent, since_long, out);
	if (rc == STORE_OK)
		rc = read_regions(st, org_id, keys, n, out);
	return rc;
}
