/*
 * api.h: the management API's plumbing. Every /v1 route is registered with
 * the scope it needs; the shared entry point authenticates on the worker
 * loop (gateway/authn.h) and then runs the handler on the control pool,
 * where it may block on the store and bcrypt.
 */
#ifndef PORTCULLIS_API_API_H
#define PORTCULLIS_API_API_H

#include <stdbool.h>
#include <stdint.h>

#include "gateway/authn.h"
#include "http/router.h"

/** A management handler: runs on the control pool after authentication. */
typedef void (*api_handler_fn)(struct http_request *req, const struct authn *who);

/*
 * What the management API's handlers use, given at registration (built once
 * by cli/serve.c) instead of reached through the running instance: every
 * route holds its group's api_group, and a handler reads it from its route
 * (api_store, api_group_deps). Nothing here reaches the instance.
 */
struct console;
struct api_deps {
	struct store *store;
	struct workpool *control_pool; /* where handlers run after authentication */
	struct console *console;       /* sessions as credentials (api.c), invitations' mail */
};

/* api_keys.c: key objects show their kill switch; changes reload caches and notify nodes. */
struct api_keys_deps {
	struct killset *kills;
	struct changefeed *changes; /* app/changes.h: the caches a change refreshes, the notices */
	const char *key_prefix;
	int bcrypt_cost;
};

/* orgs.c: organisation objects show their kill switch; changes notify nodes; keys for an org. */
struct orgs_deps {
	struct killset *kills;
	struct changefeed *changes;       /* app/changes.h */
	const struct api_keys_deps *keys; /* POST /v1/orgs/{orgId}/api-keys */
};

/* webhooks.c: the extra address ranges an endpoint URL may resolve to. */
struct webhooks_deps {
	const char *allow_ranges;
};

/* secret_scanning.c (no API key: GitHub's signature): the store, the key format, the action. */
struct secret_scanning_deps {
	struct store *store;
	const char *key_prefix;
	bool kill;              /* [secret_scanning] action = kill (else notify) */
	int64_t refresh_min_ms; /* the least time between two fetches of GitHub's keys */
};

/** Every group's dependencies, as api_routes registers them. */
struct api_wiring {
	struct api_deps api;
	struct api_keys_deps keys;
	struct orgs_deps orgs;
	struct webhooks_deps webhooks;
	struct secret_scanning_deps scanning;
};

/** One resource group's registration: the shared deps and the group's own (NULL: none). */
struct api_group {
	const struct api_deps *api;
	const void *own;
};

/** The store of the route's group (every management handler's). */
struct store *api_store(const struct http_request *req);
/** The console of the route's group (console/console.h). */
struct console *api_console(const struct http_request *req);
/** The route's group's own deps as registered; each group's file casts it in one place. */
const void *api_group_deps(const struct http_request *req);

/** Register method+pattern needing scope (or SCOPE_ROOT) with handler fn for group g. */
void api_route(struct router *r, const struct api_group *g, const char *method, const char *pattern,
               const char *scope, api_handler_fn fn);
/**
 * api_route for an operation that takes query arguments: query lists their
 * names (NULL-terminated, static). Any other argument is refused with 400
 * and details.field before the handler runs, as is any argument at all on a
 * route registered with api_route (a misspelt filter must not silently
 * widen a listing).
 */
void api_route_query(struct router *r, const struct api_group *g, const char *method,
                     const char *pattern, const char *scope, api_handler_fn fn,
                     const char *const *query);

/**
 * The console listener's fallback: /v1 paths of the management API (the
 * routes registered with api_route on the main listener's router, its
 * http_fallback_data; nothing else: not the data plane, /v1/verify or the
 * service endpoints) answered as on the main listener, a session being the
 * usual credential there; anything else 404.
 */
void api_console_fallback(struct http_request *req);

/** Register every management route with w's dependencies (w outlives r). */
void api_routes(struct router *r, const struct api_wiring *w);
void api_keys_routes(struct router *r, const struct api_group *g);
void orgs_routes(struct router *r, const struct api_group *g);
void invitations_routes(struct router *r, const struct api_group *g);
void projects_routes(struct router *r, const struct api_group *g);
void audit_routes(struct router *r, const struct api_group *g);
void incidents_routes(struct router *r, const struct api_group *g);
void inventory_routes(struct router *r, const struct api_group *g);
void requests_routes(struct router *r, const struct api_group *g);
void webhooks_routes(struct router *r, const struct api_group *g);
void webhook_messages_routes(struct router *r, const struct api_group *g);
void capi_routes(struct router *r, const struct api_group *g);
void events_routes(struct router *r, const struct api_group *g);
/** POST /v1/secret-scanning/github (no API key: GitHub's signature). */
void secret_scanning_routes(struct router *r, const struct secret_scanning_deps *d);
void usage_routes(struct router *r, const struct api_group *g);

/** Create an organisation key (POST /v1/api-keys and the operator variant). */
void api_keys_create_for(struct http_request *req, const struct api_keys_deps *d,
                         const struct authn *who, const char *org_id);

/** True when s is "<prefix><ULID>" (ep_..., msg_...). */
bool api_prefixed_id_valid(const char *s, const char *prefix);
/** A webhook event type (len bytes of s): [a-zA-Z0-9_]+(\.[a-zA-Z0-9_]+)*, at most 128. */
bool api_event_type_valid(const char *s, size_t len);
struct store_message;
/** A webhook message as the API answers it (id, type, org_id, project_id, created_at). */
json_t *api_message_json(const struct store_message *m);

/** The organisation {orgId} into o: 0, or responds 404 (or the store's error) and -1. */
int api_load_org(struct http_request *req, struct store_org *o);

/** The answer to an operator key on the project routes (a project belongs to an organisation). */
#define API_PROJECTS_NEED_ORG "Projects belong to an organization: use an organization key."
/**
 * A route for organisation keys only: 0; for an operator (root) key responds
 * 400 BAD_REQUEST with detail (which says what to use instead) and -1.
 */
int api_org_key_only(struct http_request *req, const struct authn *who, const char *detail);

/**
 * The caller's project {projectId} into p: 0; or responds 400 for an
 * operator key (API_PROJECTS_NEED_ORG), 404 or the store's error and -1.
 */
int api_load_project(struct http_request *req, const struct authn *who, struct store_project *p);
/** api_load_project, then the request's JSON body: the body, or NULL having responded. */
json_t *api_project_body(struct http_request *req, const struct authn *who,
                         struct store_project *p);

/** The most grace_seconds a secret rotation may keep the old secret valid: 7 days. */
#define API_GRACE_MAX_S (7 * 24 * 3600)
/**
 * The optional grace_seconds member of a rotation's body into *out (absent
 * or null: def): 0; or responds 400 (details.field grace_seconds) unless it
 * is an integer from 0 to API_GRACE_MAX_S and returns -1.
 */
int api_grace_seconds(struct http_request *req, json_t *body, int64_t def, int64_t *out);

/**
 * The project pid (NULL counts as none) of org_id, its id copied into out:
 * 0; or responds 400 (details.field project_id, "No such project.") or the
 * store's error and returns -1.
 */
int api_project_of(struct http_request *req, const char *org_id, const char *pid,
                   char out[STORE_ID_LEN + 1]);

/**
 * For a session whose role manages only what is bound to a project
 * (who->project_only: a developer), a key or webhook endpoint without one
 * (project_id "" or NULL) is refused: responds 403 FORBIDDEN ("Your role
 * manages only WHAT bound to a project.", details.reason "org_wide",
 * details.role) and returns -1. 0 otherwise (every other caller).
 */
int api_project_bound(struct http_request *req, const struct authn *who, const char *project_id,
                      const char *what);

/** The audit actor type of the caller: user (a console session), root or key. */
const char *api_actor_type(const struct authn *who);

/** The audit actor for the caller (user, root or key, with the user or key id). */
struct audit_input api_audit(struct http_request *req, const struct authn *who, const char *action,
                             const char *target_type, const char *target_id);

/**
 * Callbacks for store_audit_list and store_request_log_list: append the row,
 * shaped as the API answers it (docs/contract.md's event object, a
 * request-log object), to the JSON array ctx.
 */
void api_audit_event_add(void *ctx, const struct store_audit_read *ev);
void api_request_row_add(void *ctx, const struct store_request_read *row);

struct sealed_context;
/**
 * Seal the secret (NUL-terminated) for ctx to the instance's current key
 * into out (cap bytes): 0; or responds 503 SECRETS_NOT_INITIALIZED (no key
 * pair) or the store's error and returns -1. This process never opens it.
 */
int api_seal(struct http_request *req, const struct sealed_context *ctx, const char *secret,
             char *out, size_t cap);

/** 404 NOT_FOUND with a message naming what. */
void api_not_found(struct http_request *req, const char *what);
/** Respond for a store error code (404 / 409 / 503). */
void api_store_fail(struct http_request *req, int rc, const char *what);

/**
 * Pagination: ?limit= (1..100, default 50) and ?cursor=. On a bad value
 * responds 400 and returns -1.
 */
int api_page(struct http_request *req, int *limit, const char **cursor);
/** api_page for a listing whose pages hold def rows unless ?limit= asks for 1 to max. */
int api_page_sized(struct http_request *req, int def, int max, int *limit, const char **cursor);
/** Respond 200 {"data": items, "next_cursor": next or null}. Takes items. */
void api_respond_list(struct http_request *req, json_t *items, const char *next_cursor);
/**
 * api_respond_list for rows read with limit + 1: when there are more than
 * limit, the last is dropped and next_cursor is the string member id_member
 * of the new last row. Takes rows.
 */
void api_respond_page(struct http_request *req, json_t *rows, int limit, const char *id_member);
/** An optional query argument that must be a ULID (*out NULL when absent); responds 400 on junk. */
int api_query_id(struct http_request *req, const char *name, const char **out);

/**
 * Optional string member of a JSON body: absent -> *out NULL, 0; present and
 * a string of 1..max bytes -> 0; otherwise responds 400 naming the field.
 */
int api_opt_string(struct http_request *req, json_t *body, const char *field, size_t max,
                   const char **out);
/** Parse an optional RFC 3339 query argument; -1 when absent; responds 400 on junk. */
int api_query_time(struct http_request *req, const char *name, int64_t *out);
/**
 * Reject members of body not in allowed (NULL-terminated): responds 400 with
 * details.field naming the first unknown member and returns -1.
 */
int api_only_fields(struct http_request *req, json_t *body, const char *const *allowed);
/**
 * The request's JSON body (http_json_body) with no members but those allowed
 * (NULL: any): the body, or NULL having responded 400.
 */
json_t *api_json_body_only(struct http_request *req, const char *const *allowed);
/**
 * The same for a nested object: details.field is "<parent>.<member>"
 * (rate_limit.x). obj must be an object.
 */
int api_only_fields_in(struct http_request *req, json_t *obj, const char *parent,
                       const char *const *allowed);

#endif
