/*
 * assets.c: the web UI's built-in files on the console listener (see
 * assets.h). The table comes from scripts/embed_ui.py at build time
 * (console_ui_gen.c); lookups are a binary search over its sorted paths.
 * Nothing here touches the store or a session: the pages are public, and
 * what they show comes from /console/api and /v1, which check the session.
 */
#include "console/assets.h"

#include "core/str.h"
#include "http/request.h"

#include <stdlib.h>
#include <string.h>

#define PREFIX     "/console/"
#define PREFIX_LEN (sizeof PREFIX - 1)

static int cmp_asset(const void *key, const void *elem)
{
	return strcmp(key, ((const struct console_asset *)elem)->path);
}

static int cmp_page(const void *key, const void *elem)
{
	return strcmp(key, *(const char *const *)elem);
}

static const struct console_asset *asset_named(const char *name)
{
	return bsearch(name, console_assets, console_n_assets, sizeof console_assets[0], cmp_asset);
}

const struct console_asset *console_asset_for_path(const char *path)
{
	if (!path || !str_has_prefix(path, PREFIX))
		return NULL;
	const char *rest = path + PREFIX_LEN;
	if (*rest == '\0' ||
	    bsearch(rest, console_pages, console_n_pages, sizeof console_pages[0], cmp_page))
		return asset_named("index.html");
	return asset_named(rest);
}

/* The opaque part of an entity tag at *p ("x" or W/"x"), its length in *n; NULL if malformed. */
static const char *etag_opaque(const char **p, size_t *n)
{
	const char *s = *p;
	if (s[0] == 'W' && s[1] == '/')
		s += 2;
	if (*s != '"')
		return NULL;
	const char *end = strchr(s + 1, '"');
	if (!end)
		return NULL;
	*n = (size_t)(end + 1 - s);
	*p = end + 1;
	return s;
}

bool console_etag_matches(const char *if_none_match, const char *etag)
{
	if (!if_none_match)
		return false;
	size_t want = strlen(etag);
	const char *p = if_none_match;
	for (;;) {
		while (*p == ' ' || *p == '\t' || *p == ',')
			p++;
		if (*p == '\0')
			return false;
		if (*p == '*')
			return true;
		size_t n;
		const char *tag = etag_opaque(&p, &n);
		if (!tag)
			return false; /* a malformed list matches nothing */
		if (n == want && memcmp(tag, etag, n) == 0)
			return true;
	}
}

static void security_headers(struct http_request *req)
{
	http_set_header(req, "Content-Security-Policy", CONSOLE_UI_CSP);
	http_set_header(req, "X-Content-Type-Options", "nosniff");
	http_set_header(req, "Referrer-Policy", "no-referrer");
}

/* GET/HEAD /console/...: a file, index.html for a page, or 404. */
static void serve_asset(struct http_request *req)
{
	const struct console_asset *a = console_asset_for_path(req->path);
	security_headers(req);
	if (!a) {
		http_set_header(req, "Cache-Control", "no-store");
		http_respond_problem(req, 404, "NOT_FOUND", "No such page.", NULL);
		return;
	}
	http_set_header(req, "Cache-Control", "no-cache");
	http_set_header(req, "ETag", a->etag);
	if (console_etag_matches(http_header(req, "If-None-Match"), a->etag)) {
		http_respond(req, 304, NULL, "", 0);
		return;
	}
	http_respond(req, 200, a->content_type, a->data, a->len);
}

void console_assets_routes(struct router *r)
{
	router_add(r, "GET", "/console/", serve_asset, 0);
	router_add(r, "GET", "/console/{a}", serve_asset, 0);
	router_add(r, "GET", "/console/{a}/{b}", serve_asset, 0);
	router_add(r, "GET", "/console/{a}/{b}/{c}", serve_asset, 0);
}
