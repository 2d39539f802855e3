/*
 * inventory.c: GET /v1/api-keys/inventory?org_id=&limit=&cursor=
 * (keys:read, like GET /v1/api-keys): the key inventory of one
 * organisation (app/inventory.h), a page of key objects with their status,
 * usage and flags, the same objects `portcullis keys inventory --format
 * json` prints. An organisation key reads its own organisation's (org_id
 * may name it; another's is 404, as another organisation's key is); an
 * operator key names the organisation with org_id.
 */
#include "api/api.h"

#include "app/inventory.h"
#include "core/clock.h"
#include "core/ulid.h"

#include <string.h>

#define PAGE_DEFAULT 100

/* The organisation the caller asks about into *org: 0, or responds 400/404 and -1. */
static int org_of(struct http_request *req, const struct authn *who, const char **org)
{
	const char *id = NULL;
	if (api_query_id(req, "org_id", &id) < 0)
		return -1;
	if (who->root && !id) {
		http_respond_bad_field(req, "org_id",
		                       "Operator keys name the organization with org_id.");
		return -1;
	}
	if (!who->root && id && strcmp(id, who->key.org_id) != 0) {
		api_not_found(req, "organization");
		return -1;
	}
	*org = who->root ? id : who->key.org_id;
	return 0;
}

static void inventory(struct http_request *req, const struct authn *who)
{
	struct inventory_query q = {.now = clock_now_ms()};
	if (org_of(req, who, &q.org_id) < 0 ||
	    api_page_sized(req, PAGE_DEFAULT, INVENTORY_PAGE_MAX, &q.limit, &q.after) < 0)
		return;
	/* A cursor is the id of the last key of a page. */
	if (q.after && !ulid_valid(q.after, strlen(q.after))) {
		http_respond_bad_field(req, "cursor", "cursor is not valid.");
		return;
	}
	json_t *keys = NULL;
	char next[STORE_ID_LEN + 1];
	int rc = inventory_page(api_store(req), &q, &keys, next);
	if (rc != STORE_OK) {
		api_store_fail(req, rc, "organization");
		return;
	}
	api_respond_list(req, keys, next[0] ? next : NULL);
}

void inventory_routes(struct router *r, const struct api_group *g)
{
	static const char *const query[] = {"org_id", "limit", "cursor", NULL};
	api_route_query(r, g, "GET", "/v1/api-keys/inventory", "keys:read", inventory, query);
}
