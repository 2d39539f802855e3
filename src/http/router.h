/*
 * router.h: method + path matching with {name} path parameters, e.g.
 * "/v1/api-keys/{keyId}/kill". Routes are matched in the order added; a
 * path that matches with another method gives 405 with an Allow list.
 */
#ifndef PORTCULLIS_HTTP_ROUTER_H
#define PORTCULLIS_HTTP_ROUTER_H

#include <stdbool.h>
#include <stddef.h>

#include "http/request.h"

enum route_flags {
	ROUTE_BLOCKING = 1 << 0, /* run on the control pool: may block on the store or bcrypt */
};

struct route {
	const char *method;
	const char *pattern;
	http_handler_fn fn;
	unsigned flags;
	int index;        /* position in the router, for metrics */
	const void *data; /* the registering module's per-route data */
};

#define ROUTER_MAX_ROUTES 96

struct router {
	struct route routes[ROUTER_MAX_ROUTES];
	int n;
	/*
	 * The bytes that follow a pattern's leading '/' (a set of 256 bits), so
	 * that a path no route can match, such as most forwarded ones, is told
	 * so without a walk over the table; any_lead: a pattern starts with a
	 * parameter or is not absolute.
	 */
	unsigned char lead[32];
	bool any_lead;
};

enum route_match { ROUTE_FOUND, ROUTE_NO_PATH, ROUTE_NO_METHOD };

/** Add a route; method and pattern must outlive the router (string literals). */
void router_add(struct router *r, const char *method, const char *pattern, http_handler_fn fn,
                unsigned flags);
/** router_add for a route whose handler reads data from req->route->data (data outlives r). */
void router_add_with(struct router *r, const char *method, const char *pattern, http_handler_fn fn,
                     unsigned flags, const void *data);
/**
 * Match method and path. On ROUTE_FOUND, *out is the route and req's
 * params are filled (values in req->arena). On ROUTE_NO_METHOD, allow
 * (cap bytes) lists the methods that would match, e.g. "GET, POST".
 */
enum route_match router_match(const struct router *r, struct http_request *req, const char *method,
                              const char *path, const struct route **out, char *allow, size_t cap);

#endif
