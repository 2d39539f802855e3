/*
 * roles.c: the console's rights table (see roles.h). Owners do everything
 * in the organisation, members included; admins keys, projects, webhooks
 * and kills of the organisation's keys; developers the keys and webhook
 * endpoints bound to a project (console_role_project_only) and read the
 * logs; viewers only read. Operators are not in the table: a
 * session of an operator acts as an operator (root) key does.
 */
#include "console/roles.h"

#include <stddef.h>
#include <string.h>

static const char *const role_names[ROLE_COUNT] = {"owner", "admin", "developer", "viewer"};

int console_role_parse(const char *s)
{
	for (int i = 0; s && i < ROLE_COUNT; i++)
		if (strcmp(s, role_names[i]) == 0)
			return i;
	return -1;
}

const char *console_role_name(enum console_role r)
{
	return r >= 0 && r < ROLE_COUNT ? role_names[r] : "";
}

/* One row a right: which roles hold it (owner, admin, developer, viewer). */
static const struct {
	const char *right;
	bool holds[ROLE_COUNT];
} table[] = {
    {"keys:read", {true, true, true, true}},      {"keys:write", {true, true, true, false}},
    {RIGHT_PROJECTS, {true, true, false, false}}, {"logs:read", {true, true, true, true}},
    {"webhooks:read", {true, true, true, true}},  {"webhooks:write", {true, true, true, false}},
    {RIGHT_MEMBERS, {true, false, false, false}},
};

/* Routes whose session right is not their key scope. */
static const struct {
	const char *method, *pattern, *right;
} overrides[] = {
    {"POST", "/v1/projects", RIGHT_PROJECTS},
    {"PATCH", "/v1/projects/{projectId}", RIGHT_PROJECTS},
    {"PUT", "/v1/projects/{projectId}/capi", RIGHT_PROJECTS},
    {"GET", "/v1/webhook-endpoints", "webhooks:read"},
    {"GET", "/v1/webhook-endpoints/{endpointId}", "webhooks:read"},
};

const char *console_route_right(const char *method, const char *pattern, const char *scope)
{
	for (size_t i = 0; i < sizeof overrides / sizeof overrides[0]; i++)
		if (strcmp(overrides[i].method, method) == 0 &&
		    strcmp(overrides[i].pattern, pattern) == 0)
			return overrides[i].right;
	return scope;
}

bool console_role_allows(enum console_role role, const char *right)
{
	if (role < 0 || role >= ROLE_COUNT || !right)
		return false;
	for (size_t i = 0; i < sizeof table / sizeof table[0]; i++)
		if (strcmp(table[i].right, right) == 0)
			return table[i].holds[role];
	return false; /* root, gateway, events:ingest: no role holds them */
}

bool console_role_project_only(enum console_role role)
{
	return role == ROLE_DEVELOPER;
}

const char *console_role_scopes(enum console_role role)
{
	return console_role_allows(role, "keys:write")
	           ? "gateway keys:read keys:write logs:read webhooks:write"
	           : "";
}

const char *const *console_rights(void)
{
	static const char *rights[sizeof table / sizeof table[0] + 1];
	for (size_t i = 0; i < sizeof table / sizeof table[0]; i++)
		rights[i] = table[i].right;
	return rights;
}
