/*
 * killops.c: kill-switch changes with their audit events and notices (see
 * killops.h).
 */
#include "app/killops.h"

#include "app/notify.h"
#include "auth/keys.h"
#include "core/clock.h"
#include "core/json.h"

#include <stdio.h>
#include <string.h>

static const char *action_for(const char *scope, bool engage)
{
	if (strcmp(scope, "key") == 0)
		return engage ? "api_key.killed" : "api_key.kill_lifted";
	if (strcmp(scope, "organization") == 0)
		return engage ? "org.killed" : "org.kill_lifted";
	return engage ? "global.killed" : "global.kill_lifted";
}

static const char *target_type_for(const char *scope)
{
	if (strcmp(scope, "key") == 0)
		return "api_key";
	if (strcmp(scope, "organization") == 0)
		return "org";
	return "global";
}

static struct audit_input audit_for(const struct kill_request *k, bool engage, json_t *details)
{
	struct audit_input a = {
	    .org_id = k->org_id,
	    .actor_type = k->actor_type,
	    .actor_id = k->actor_id,
	    .action = action_for(k->scope, engage),
	    .target_type = target_type_for(k->scope),
	    .target_id = k->target_id[0] ? k->target_id : NULL,
	    .request_id = k->request_id,
	    .details = details,
	};
	return a;
}

/*
 * The webhook event data of a kill change (PLAN-10.md): the key by id and
 * start for a key, the organisation id for an organisation, nothing more for
 * global (which is every organisation's event: org_id NULL). NULL when the
 * change is no organisation's event (a kill on an operator key) or the key
 * cannot be read (*rc then says why). Caller decrefs.
 */
static json_t *event_for(struct store *st, const struct kill_request *k, const char *reason,
                         int64_t at, int *rc)
{
	json_t *data;
	*rc = STORE_OK;
	if (strcmp(k->scope, "key") == 0) {
		struct store_key key;
		*rc = store_key_get(st, k->target_id, &key);
		if (*rc != STORE_OK || !key.org_id[0])
			return NULL;
		data = keys_event_data(&key);
		explicit_bzero(&key, sizeof key);
	} else if (strcmp(k->scope, "organization") == 0) {
		data = json_pack("{s:s}", "org_id", k->target_id);
	} else {
		data = json_object();
	}
	json_t *more =
	    json_pack("{s:s, s:o, s:o, s:o}", "scope", k->scope, "reason", json_str_or_null(reason),
	              "request_id", json_str_or_null(k->request_id), "at", json_time(at));
	json_object_update(data, more);
	json_decref(more);
	return data;
}

/* The project of a key's event (NULL for other scopes, or a key of no project). */
static const char *event_project(const json_t *event)
{
	return json_string_value(json_object_get(event, "project_id"));
}

int killops_engage(struct store *st, const struct kill_request *k)
{
	struct store_kill row;
	memset(&row, 0, sizeof row);
	snprintf(row.scope, sizeof row.scope, "%s", k->scope);
	snprintf(row.target_id, sizeof row.target_id, "%s", k->target_id);
	snprintf(row.set_by, sizeof row.set_by, "%s", k->set_by);
	snprintf(row.actor_id, sizeof row.actor_id, "%s", k->actor_id ? k->actor_id : "");
	snprintf(row.reason, sizeof row.reason, "%s", k->reason ? k->reason : "");
	row.engaged_at = clock_now_ms();
	json_t *details = json_pack("{s:s, s:s, s:o}", "scope", k->scope, "set_by", k->set_by,
	                            "reason", k->reason ? json_string(k->reason) : json_null());
	struct audit_input a = audit_for(k, true, details);
	int rc;
	json_t *event = event_for(st, k, k->reason, row.engaged_at, &rc);
	a.event = event;
	a.event_project_id = event_project(event);
	if (rc == STORE_OK)
		rc = store_kill_engage(st, &row, &a);
	json_decref(event);
	json_decref(details);
	if (rc != STORE_OK)
		return rc;
	struct store_org org;
	bool have_org = k->org_id && store_org_get(st, k->org_id, &org) == STORE_OK;
	struct notice n = {
	    .event = "kill_switch.engaged",
	    .org_id = k->org_id,
	    .contact = have_org ? org.contact_email : NULL,
	    .scope = k->scope,
	    .target_id = k->target_id,
	    .reason = k->reason,
	    .request_id = k->request_id,
	};
	notify_send(&n);
	return STORE_OK;
}

int killops_lift(struct store *st, const struct kill_request *k)
{
	/* The notice says which kill was lifted: its reason, as it was engaged. */
	struct store_kill current;
	int rc = store_kill_get(st, k->scope, k->target_id, &current);
	if (rc != STORE_OK)
		return rc;
	json_t *details = json_pack("{s:s}", "scope", k->scope);
	struct audit_input a = audit_for(k, false, details);
	json_t *event = event_for(st, k, current.reason, clock_now_ms(), &rc);
	a.event = event;
	a.event_project_id = event_project(event);
	if (rc == STORE_OK)
		rc = store_kill_lift(st, k->scope, k->target_id, &a);
	json_decref(event);
	json_decref(details);
	return rc;
}
