/*
 * keys.c: key issuance and key objects (see keys.h).
 */
#include "auth/keys.h"

#include "core/alloc.h"
#include "core/clock.h"
#include "core/json.h"
#include "core/ulid.h"
#include "crypto/bcrypt.h"

#include <stdio.h>
#include <string.h>

static const char *const known_scopes[] = {"gateway",   "keys:read",      "keys:write",
                                           "logs:read", "webhooks:write", "events:ingest"};

/* The next scope of a space-separated list: *p advances past it; false at the end. */
static bool next_scope(const char **p, const char **name, size_t *len)
{
	while (**p == ' ')
		(*p)++;
	if (!**p)
		return false;
	*name = *p;
	*len = strcspn(*p, " ");
	*p += *len;
	return true;
}

static bool list_has(const char *list, const char *name, size_t len)
{
	const char *p = list, *s;
	size_t n;
	while (next_scope(&p, &s, &n))
		if (n == len && strncmp(s, name, len) == 0)
			return true;
	return false;
}

bool keys_scopes_valid(const char *s)
{
	if (!s || !*s)
		return false;
	const char *p = s, *name;
	size_t n;
	while (next_scope(&p, &name, &n)) {
		bool ok = false;
		for (size_t i = 0; i < sizeof known_scopes / sizeof *known_scopes; i++)
			if (strlen(known_scopes[i]) == n && strncmp(known_scopes[i], name, n) == 0)
				ok = true;
		if (!ok)
			return false;
	}
	return true;
}

bool keys_has_scope(const char *have, const char *scope)
{
	return list_has(have, scope, strlen(scope));
}

bool keys_has_all_scopes(const char *have, const char *want)
{
	const char *p = want, *name;
	size_t n;
	while (next_scope(&p, &name, &n))
		if (!list_has(have, name, n))
			return false;
	return true;
}

json_t *keys_event_data(const struct store_key *k)
{
	return json_pack("{s:s, s:s, s:o, s:o, s:s}", "key_id", k->id, "start", k->start, "org_id",
	                 json_str_or_null(k->org_id), "project_id", json_str_or_null(k->project_id),
	                 "name", k->name);
}

int keys_create(struct store *st, const char *prefix, int cost, const struct key_spec *spec,
                const struct audit_input *a, char *key_out, size_t cap, struct store_key *row_out)
{
	struct store_key k;
	memset(&k, 0, sizeof k);
	ulid_new(k.id);
	struct api_key_parts parts;
	int rc = STORE_ERROR;
	if (keyfmt_generate(prefix, spec->env, k.id, key_out, cap, &parts) < 0)
		return STORE_ERROR;
	if (bcrypt_hash(parts.secret, cost, k.secret_hash, sizeof k.secret_hash) < 0)
		goto out;
	snprintf(k.org_id, sizeof k.org_id, "%s", spec->org_id ? spec->org_id : "");
	snprintf(k.project_id, sizeof k.project_id, "%s", spec->project_id ? spec->project_id : "");
	snprintf(k.name, sizeof k.name, "%s", spec->name);
	snprintf(k.env, sizeof k.env, "%s", key_env_name(spec->env));
	snprintf(k.scopes, sizeof k.scopes, "%s", spec->scopes);
	keyfmt_start(key_out, k.start);
	k.created_at = clock_now_ms();
	k.last_used_at = -1;
	k.expires_at = spec->expires_at;
	k.revoked_at = -1;
	k.prev_expires_at = -1;
	k.version = 1;

	struct audit_input audit = *a;
	if (!audit.action)
		audit.action = "api_key.created";
	audit.target_type = "api_key";
	audit.target_id = k.id;
	if (!audit.org_id)
		audit.org_id = spec->org_id;
	/* An organisation's key is an event for it; a root key belongs to none. */
	json_t *event = k.org_id[0] ? keys_event_data(&k) : NULL;
	audit.event = event;
	audit.event_project_id = k.project_id[0] ? k.project_id : NULL;
	rc = store_key_insert(st, &k, &audit);
	json_decref(event);
	if (rc == STORE_OK && row_out)
		*row_out = k;
out:
	explicit_bzero(&parts, sizeof parts);
	if (rc != STORE_OK)
		explicit_bzero(key_out, cap);
	return rc;
}

int keys_rotate(struct store *st, const char *prefix, int cost, struct store_key *row,
                int64_t grace_seconds, const struct audit_input *a, char *key_out, size_t cap)
{
	enum key_env env;
	struct api_key_parts parts;
	char hash[64];
	if (key_env_parse(row->env, &env) < 0)
		return STORE_ERROR;
	if (keyfmt_generate(prefix, env, row->id, key_out, cap, &parts) < 0)
		return STORE_ERROR;
	int rc = STORE_ERROR;
	if (bcrypt_hash(parts.secret, cost, hash, sizeof hash) < 0)
		goto out;
	char start[KEYFMT_START_LEN + 1];
	keyfmt_start(key_out, start);
	int64_t prev_until = grace_seconds > 0 ? clock_now_ms() + grace_seconds * 1000 : 0;
	struct audit_input audit = *a;
	audit.action = "api_key.rotated";
	audit.target_type = "api_key";
	audit.target_id = row->id;
	struct store_key shown = *row; /* the event names the key by its new start */
	memcpy(shown.start, start, sizeof start);
	json_t *event = row->org_id[0] ? keys_event_data(&shown) : NULL;
	explicit_bzero(&shown, sizeof shown);
	audit.event = event;
	audit.event_project_id = row->project_id[0] ? row->project_id : NULL;
	rc = store_key_rotate(st, row->id, hash, start, prev_until, &audit, &row->version);
	json_decref(event);
	if (rc == STORE_OK) {
		if (grace_seconds > 0) {
			memcpy(row->prev_secret_hash, row->secret_hash,
			       sizeof row->prev_secret_hash);
			row->prev_expires_at = prev_until;
		} else {
			row->prev_secret_hash[0] = '\0';
			row->prev_expires_at = -1;
		}
		memcpy(row->secret_hash, hash, sizeof hash);
		memcpy(row->start, start, sizeof start);
	}
out:
	explicit_bzero(&parts, sizeof parts);
	if (rc != STORE_OK)
		explicit_bzero(key_out, cap);
	return rc;
}

const char *keys_status(const struct store_key *k, bool killed, int64_t now)
{
	if (k->revoked_at >= 0)
		return "revoked";
	if (killed)
		return "killed";
	if (k->expires_at >= 0 && k->expires_at <= now)
		return "expired";
	return "active";
}

json_t *keys_to_json(const struct store_key *k, const struct store_kill *kill)
{
	json_t *scopes = json_array();
	const char *p = k->scopes, *name;
	size_t n;
	while (next_scope(&p, &name, &n))
		json_array_append_new(scopes, json_stringn(name, n));
	json_t *ks;
	if (kill)
		ks = json_pack("{s:b, s:s, s:o, s:o}", "engaged", 1, "set_by", kill->set_by,
		               "reason", json_str_or_null(kill->reason), "at",
		               json_time(kill->engaged_at));
	else
		ks = json_pack("{s:b, s:n, s:n, s:n}", "engaged", 0, "set_by", "reason", "at");
	return json_pack("{s:s, s:s, s:o, s:o, s:s, s:o, s:s, s:o, s:o, s:o, s:o, s:o, s:I}", "id",
	                 k->id, "name", k->name, "org_id", json_str_or_null(k->org_id),
	                 "project_id", json_str_or_null(k->project_id), "env", k->env, "scopes",
	                 scopes, "start", k->start, "created_at", json_time(k->created_at),
	                 "last_used_at", json_time(k->last_used_at), "expires_at",
	                 json_time(k->expires_at), "revoked_at", json_time(k->revoked_at),
	                 "kill_switch", ks, "version", (json_int_t)k->version);
}
