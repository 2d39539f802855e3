/*
 * roles.h: what a console role may do, as one table (docs/console.md,
 * "Roles and rights"). A management route needs a key scope (api.h); a
 * session holds the rights of its user's role in the organisation it acts
 * in, and a right is named like the scope it stands for. A few routes need
 * a right narrower than their scope (creating and changing projects need
 * projects:write, not only keys:write) and members:write (invitations) is
 * a right no key scope gives: console_route_right says which.
 */
#ifndef PORTCULLIS_CONSOLE_ROLES_H
#define PORTCULLIS_CONSOLE_ROLES_H

#include <stdbool.h>

enum console_role { ROLE_OWNER, ROLE_ADMIN, ROLE_DEVELOPER, ROLE_VIEWER, ROLE_COUNT };

/** The role named s (owner, admin, developer, viewer); -1 for anything else. */
int console_role_parse(const char *s);
/** The role's name. */
const char *console_role_name(enum console_role r);

/** The invitations route's scope: held by no key (operators and owners only). */
#define RIGHT_MEMBERS "members:write"
/** The project routes' right: keys:write for keys, narrower for sessions. */
#define RIGHT_PROJECTS "projects:write"

/**
 * The right a session needs for a route registered with scope: the
 * override for method + pattern when the table has one, else scope itself.
 */
const char *console_route_right(const char *method, const char *pattern, const char *scope);

/** True when role holds right (a scope name, RIGHT_MEMBERS or RIGHT_PROJECTS). */
bool console_role_allows(enum console_role role, const char *right);

/**
 * The key scopes a session of role may grant to keys it creates
 * (space-separated, as store_key.scopes): what api_keys.c checks a new
 * key's scopes against. "" for a role that creates no keys.
 */
const char *console_role_scopes(enum console_role role);

/**
 * True when role's keys:write and webhooks:write cover only keys and webhook
 * endpoints bound to a project (a developer: "keys and webhooks of the
 * projects"), not the organisation-wide ones.
 */
bool console_role_project_only(enum console_role role);

/** Every right of the table, NULL-terminated (for GET /console/api/me and the docs' test). */
const char *const *console_rights(void);

#endif
