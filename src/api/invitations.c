/*
 * invitations.c: POST /v1/orgs/{orgId}/invitations {email, role}: an
 * organisation's owner (a console session) or an operator invites an
 * address with a role; the invitation is a link mailed to the address
 * (console/console.h, console_invite), valid 7 days. Its scope
 * (members:write) is held by no API key: operator keys and owners' and
 * operators' sessions only. Audited as invitation.created.
 */
#include "api/api.h"

#include "console/console.h"
#include "console/roles.h"
#include "core/clock.h"
#include "core/json.h"
#include "core/ulid.h"

#include <stdio.h>
#include <string.h>

#define INVITATION_TTL_MS (7LL * 24 * 3600 * 1000)

static void create(struct http_request *req, const struct authn *who)
{
	struct store_org o;
	if (api_load_org(req, &o) < 0)
		return;
	json_t *body = http_json_body(req);
	static const char *const allowed[] = {"email", "role", NULL};
	if (!body || api_only_fields(req, body, allowed) < 0)
		goto out;
	struct store_invitation inv = {.accepted_at = -1};
	json_t *email = json_object_get(body, "email");
	json_t *role = json_object_get(body, "role");
	if (!json_is_string(email) ||
	    console_email_normalize(json_string_value(email), inv.email) < 0) {
		http_respond_bad_field(req, "email", "email must be an ASCII address.");
		goto out;
	}
	if (!json_is_string(role) || console_role_parse(json_string_value(role)) < 0) {
		http_respond_bad_field(req, "role",
		                       "role must be one of owner, admin, developer, viewer.");
		goto out;
	}
	ulid_new(inv.id);
	snprintf(inv.org_id, sizeof inv.org_id, "%s", o.id);
	snprintf(inv.role, sizeof inv.role, "%s", json_string_value(role));
	snprintf(inv.invited_by_type, sizeof inv.invited_by_type, "%s", api_actor_type(who));
	snprintf(inv.invited_by, sizeof inv.invited_by, "%s", who->key.id);
	inv.created_at = clock_now_ms();
	inv.expires_at = inv.created_at + INVITATION_TTL_MS;
	json_t *details = json_pack("{s:s, s:s}", "email", inv.email, "role", inv.role);
	struct audit_input a = api_audit(req, who, "invitation.created", "invitation", inv.id);
	a.org_id = o.id;
	a.details = details;
	int rc = store_invitation_insert(api_store(req), &inv, &a);
	json_decref(details);
	if (rc == STORE_OK)
		rc = console_invite(api_console(req), &inv, o.name);
	if (rc != STORE_OK) {
		api_store_fail(req, rc, "organization");
		goto out;
	}
	http_respond_json(req, 201,
	                  json_pack("{s:s, s:s, s:s, s:s, s:o, s:o}", "id", inv.id, "org_id",
	                            inv.org_id, "email", inv.email, "role", inv.role, "created_at",
	                            json_time(inv.created_at), "expires_at",
	                            json_time(inv.expires_at)));
out:
	json_decref(body);
}

void invitations_routes(struct router *r, const struct api_group *g)
{
	api_route(r, g, "POST", "/v1/orgs/{orgId}/invitations", RIGHT_MEMBERS, create);
}
