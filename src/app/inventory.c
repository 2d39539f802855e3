/*
 * inventory.c: the key inventory of one organisation (inventory.h). A page
 * is built from three reads whatever its size: the keys (store_key_list),
 * their usage from the rollups (store_inventory.h: one aggregate over
 * usage_hour, one read of usage_key_seen; never raw request-log rows) and
 * the engaged kill switches (few: one listing, not one read per key). The
 * CSV form is rendered from the page's JSON, so the CLI's CSV and JSON and
 * the API's answer say the same thing.
 */
#include "app/inventory.h"

#include "auth/keys.h"
#include "core/alloc.h"
#include "core/json.h"
#include "store/store_inventory.h"
#include "store/store_usage.h"

#include <stdlib.h>
#include <string.h>

#define DAY_MS ((int64_t)86400 * 1000)

/* The kill switch that covers k, most specific first, or NULL. */
static const struct store_kill *kill_for(const struct store_key *k, const struct store_kill *kills,
                                         int n)
{
	static const char *const order[] = {"key", "organization", "global"};
	for (size_t s = 0; s < sizeof order / sizeof order[0]; s++) {
		const char *target = s == 0 ? k->id : s == 1 ? k->org_id : "";
		for (int i = 0; i < n; i++)
			if (strcmp(kills[i].scope, order[s]) == 0 &&
			    strcmp(kills[i].target_id, target) == 0)
				return &kills[i];
	}
	return NULL;
}

/*
 * The flags, in a fixed order. unused_90d: older than 90 days and not used
 * in the last 90; never_used: no recorded use at all; no_project: a key of
 * the whole organisation that carries gateway traffic, which a key of one
 * project would carry with the project attached (usage, budgets and the
 * upstream's identity headers per project).
 */
static json_t *flags_json(const struct store_key *k, int64_t now)
{
	json_t *f = json_array();
	int64_t cutoff = now - INVENTORY_UNUSED_DAYS * DAY_MS;
	if (k->created_at <= cutoff && (k->last_used_at < 0 || k->last_used_at <= cutoff))
		json_array_append_new(f, json_string("unused_90d"));
	if (!k->project_id[0] && keys_has_scope(k->scopes, "gateway"))
		json_array_append_new(f, json_string("no_project"));
	if (k->last_used_at < 0)
		json_array_append_new(f, json_string("never_used"));
	return f;
}

static json_t *key_json(const struct store_key *k, const struct inventory_usage *u,
                        const struct store_kill *kills, int nk, int64_t now)
{
	const struct store_kill *kill = kill_for(k, kills, nk);
	bool own = kill && strcmp(kill->scope, "key") == 0;
	json_t *o = keys_to_json(k, own ? kill : NULL);
	json_object_set_new(o, "status", json_string(keys_status(k, kill != NULL, now)));
	json_object_set_new(o, "killed_by", kill ? json_string(kill->scope) : json_null());
	json_object_set_new(o, "last_region", json_str_or_null(u->last_region));
	json_object_set_new(o, "requests_24h", json_integer(u->requests_recent));
	json_object_set_new(o, "requests_30d", json_integer(u->requests_long));
	json_object_set_new(o, "flags", flags_json(k, now));
	return o;
}

int inventory_page(struct store *st, const struct inventory_query *q, json_t **out,
                   char next[STORE_ID_LEN + 1])
{
	*out = NULL;
	next[0] = '\0';
	struct store_org org;
	int rc = store_org_get(st, q->org_id, &org);
	if (rc != STORE_OK)
		return rc;
	struct store_key *keys = NULL;
	struct store_kill *kills = NULL;
	struct inventory_usage *usage = NULL;
	int nread = 0, nk = 0;
	rc = store_key_list(st, q->org_id, NULL, q->after, q->limit + 1, &keys, &nread);
	if (rc != STORE_OK)
		goto out;
	int n = nread > q->limit ? q->limit : nread;
	/* Whole hours of the rollups: the current one and the 23 (719) before it. */
	int64_t hour = usage_bucket(q->now, USAGE_HOUR);
	usage = xcalloc((size_t)n + 1, sizeof *usage);
	rc = store_inventory_usage(st, q->org_id, keys, n, hour - 23 * USAGE_HOUR_MS,
	                           hour - (30 * 24 - 1) * USAGE_HOUR_MS, usage);
	if (rc == STORE_OK)
		rc = store_kill_list(st, &kills, &nk);
	if (rc != STORE_OK)
		goto out;
	*out = json_array();
	for (int i = 0; i < n; i++)
		json_array_append_new(*out, key_json(&keys[i], &usage[i], kills, nk, q->now));
	if (nread > n)
		memcpy(next, keys[n - 1].id, sizeof keys[n - 1].id);
out:
	/* The rows hold the keys' bcrypt hashes. */
	if (keys)
		explicit_bzero(keys, (size_t)nread * sizeof *keys);
	free(keys);
	free(kills);
	free(usage);
	return rc;
}

/* ---------- CSV ---------- */

/* The columns, in order: members of the key object, then one per flag ("true" or "false"). */
static const char *const member_columns[] = {
    "id",        "name",        "org_id",       "project_id",   "env",        "scopes",
    "start",     "created_at",  "last_used_at", "expires_at",   "revoked_at", "status",
    "killed_by", "last_region", "requests_24h", "requests_30d",
};
static const char *const flag_columns[] = {"unused_90d", "no_project", "never_used"};
#define N_MEMBERS (sizeof member_columns / sizeof member_columns[0])
#define N_FLAGS   (sizeof flag_columns / sizeof flag_columns[0])

int inventory_csv_cell(struct buf *b, const char *s, size_t len)
{
	static const char formula[] = {'=', '+', '-', '@', '\t', '\r'};
	bool guard = len > 0 && memchr(formula, s[0], sizeof formula) != NULL;
	bool quote = false;
	for (size_t i = 0; i < len && !quote; i++)
		quote = s[i] == ',' || s[i] == '"' || s[i] == '\r' || s[i] == '\n';
	int rc = 0;
	if (quote)
		rc |= buf_append(b, "\"", 1);
	if (guard)
		rc |= buf_append(b, "'", 1);
	size_t from = 0;
	for (size_t i = 0; quote && i < len; i++) {
		if (s[i] != '"')
			continue;
		rc |= buf_append(b, s + from, i + 1 - from); /* through the quote, then it again */
		rc |= buf_append(b, "\"", 1);
		from = i + 1;
	}
	rc |= buf_append(b, s + from, len - from);
	if (quote)
		rc |= buf_append(b, "\"", 1);
	return rc ? -1 : 0;
}

/* Whether the key object o has flag name. */
static bool has_flag(const json_t *o, const char *name)
{
	size_t i;
	json_t *f;
	json_array_foreach(json_object_get(o, "flags"), i, f)
	{
		const char *v = json_string_value(f);
		if (v && strcmp(v, name) == 0)
			return true;
	}
	return false;
}

/* One member of a key object as cell text: strings as they are, null empty, scopes by spaces. */
static int member_cell(struct buf *b, const json_t *v)
{
	if (json_is_string(v))
		return inventory_csv_cell(b, json_string_value(v), json_string_length(v));
	if (json_is_integer(v)) {
		char num[STR_I64_MAX];
		size_t n = str_i64(num, (int64_t)json_integer_value(v));
		return inventory_csv_cell(b, num, n);
	}
	if (json_is_array(v)) {
		struct buf joined;
		buf_init(&joined, b->limit);
		size_t i;
		json_t *e;
		int rc = 0;
		json_array_foreach(v, i, e)
		{
			const char *s = json_string_value(e);
			if (i)
				rc |= buf_append(&joined, " ", 1);
			rc |= buf_append_str(&joined, s ? s : "");
		}
		if (rc == 0)
			rc = inventory_csv_cell(b, joined.data ? joined.data : "", joined.len);
		buf_free(&joined);
		return rc ? -1 : 0;
	}
	return 0; /* null (or absent): an empty cell */
}

static int row(struct buf *b, const json_t *o)
{
	int rc = 0;
	for (size_t c = 0; c < N_MEMBERS; c++) {
		if (c)
			rc |= buf_append(b, ",", 1);
		rc |= member_cell(b, json_object_get(o, member_columns[c]));
	}
	for (size_t f = 0; f < N_FLAGS; f++)
		rc |= buf_append_str(b, has_flag(o, flag_columns[f]) ? ",true" : ",false");
	rc |= buf_append(b, "\r\n", 2);
	return rc ? -1 : 0;
}

static int header_row(struct buf *b)
{
	int rc = 0;
	for (size_t c = 0; c < N_MEMBERS; c++)
		rc |= buf_printf(b, "%s%s", c ? "," : "", member_columns[c]);
	for (size_t f = 0; f < N_FLAGS; f++)
		rc |= buf_printf(b, ",%s", flag_columns[f]);
	rc |= buf_append(b, "\r\n", 2);
	return rc ? -1 : 0;
}

int inventory_csv(struct buf *b, const json_t *keys, bool header)
{
	int rc = header ? header_row(b) : 0;
	size_t i;
	json_t *o;
	json_array_foreach(keys, i, o)
	{
		rc |= row(b, o);
	}
	return rc ? -1 : 0;
}
