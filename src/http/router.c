/*
 * router.c: segment-by-segment path matching (see router.h). The route
 * table is small (tens of entries), so a linear scan beats anything clever,
 * after a one-byte filter: a path whose first byte after '/' begins no
 * pattern (most forwarded paths) is refused without the scan.
 */
#include "http/router.h"

#include "core/alloc.h"

#include <string.h>

void router_add(struct router *r, const char *method, const char *pattern, http_handler_fn fn,
                unsigned flags)
{
	if (r->n == ROUTER_MAX_ROUTES)
		fatal("too many routes");
	r->routes[r->n] = (struct route){method, pattern, fn, flags, r->n, NULL};
	r->n++;
	unsigned char c = (unsigned char)pattern[pattern[0] == '/'];
	if (pattern[0] != '/' || c == '{')
		r->any_lead = true;
	else
		r->lead[c >> 3] |= (unsigned char)(1u << (c & 7));
}

void router_add_with(struct router *r, const char *method, const char *pattern, http_handler_fn fn,
                     unsigned flags, const void *data)
{
	router_add(r, method, pattern, fn, flags);
	r->routes[r->n - 1].data = data;
}

/* Match one pattern; on success store params into req. */
static bool match_pattern(const char *pattern, const char *path, struct http_request *req,
                          bool store)
{
	const char *p = pattern, *s = path;
	int n = 0;
	while (*p && *s) {
		if (*p == '{') {
			const char *close = strchr(p, '}');
			const char *seg_end = strchr(s, '/');
			size_t seg_len = seg_end ? (size_t)(seg_end - s) : strlen(s);
			if (seg_len == 0 || n == HTTP_MAX_PARAMS)
				return false;
			if (store) {
				req->params[n].name =
				    arena_strndup(&req->arena, p + 1, (size_t)(close - p - 1));
				req->params[n].value = arena_strndup(&req->arena, s, seg_len);
			}
			n++;
			p = close + 1;
			s += seg_len;
			continue;
		}
		if (*p != *s)
			return false;
		p++;
		s++;
	}
	if (*p || *s)
		return false;
	if (store)
		req->n_params = n;
	return true;
}

enum route_match router_match(const struct router *r, struct http_request *req, const char *method,
                              const char *path, const struct route **out, char *allow, size_t cap)
{
	bool path_seen = false;
	size_t used = 0;
	if (cap)
		allow[0] = '\0';
	unsigned char c = (unsigned char)path[path[0] == '/'];
	if (!r->any_lead && (path[0] != '/' || !(r->lead[c >> 3] & (1u << (c & 7)))))
		return ROUTE_NO_PATH;
	for (int i = 0; i < r->n; i++) {
		const struct route *rt = &r->routes[i];
		if (!match_pattern(rt->pattern, path, req, false))
			continue;
		/* HEAD is served wherever GET is (RFC 9110); the connection layer sends no body. */
		if (strcmp(rt->method, method) == 0 ||
		    (strcmp(method, "HEAD") == 0 && strcmp(rt->method, "GET") == 0)) {
			match_pattern(rt->pattern, path, req, true);
			*out = rt;
			return ROUTE_FOUND;
		}
		path_seen = true;
		size_t ml = strlen(rt->method);
		if (strstr(allow, rt->method) == NULL && used + ml + 3 < cap) {
			if (used) {
				memcpy(allow + used, ", ", 2);
				used += 2;
			}
			memcpy(allow + used, rt->method, ml + 1);
			used += ml;
		}
	}
	return path_seen ? ROUTE_NO_METHOD : ROUTE_NO_PATH;
}
