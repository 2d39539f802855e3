/*
 * assets.h: the web UI's files (ui/ in the source tree), built into the
 * binary by scripts/embed_ui.py, and the routes that serve them on the
 * console listener (docs/console.md "The pages").
 *
 * Every file is served at /console/<its path under ui/>; every page route
 * of ui/pages.json (/console/keys, /console/usage, ...) and /console/
 * itself are served ui/index.html, whose modules render the page. Anything
 * else under /console/ that no other console route takes is 404
 * problem+json. Every answer carries the UI's Content-Security-Policy
 * (CONSOLE_UI_CSP: no inline script or style anywhere in ui/),
 * X-Content-Type-Options: nosniff, Referrer-Policy: no-referrer and
 * Cache-Control: no-cache with the file's strong ETag, so a browser asks
 * again each time and gets 304 while the binary's copy is the same.
 */
#ifndef PORTCULLIS_CONSOLE_ASSETS_H
#define PORTCULLIS_CONSOLE_ASSETS_H

#include <stdbool.h>
#include <stddef.h>

#include "http/router.h"

#define CONSOLE_UI_CSP                                                                             \
	"default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "          \
	"connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"

/** One built-in file. */
struct console_asset {
	const char *path;         /* under ui/, e.g. "index.html", "pages/keys.js" */
	const char *content_type; /* from the extension, e.g. "text/javascript; charset=utf-8" */
	const unsigned char *data;
	size_t len;
	const char *etag; /* strong, quoted: "\"<first 20 hex digits of the SHA-256>\"" */
};

/** The files, sorted by path (generated). */
extern const struct console_asset console_assets[];
extern const size_t console_n_assets;
/** The page routes of ui/pages.json, sorted (generated): /console/<name> is index.html. */
extern const char *const console_pages[];
extern const size_t console_n_pages;

/**
 * The file a request path stands for: "/console/" and "/console/<page>" are
 * index.html, "/console/<file>" that file; NULL for anything else (also
 * paths outside /console/).
 */
const struct console_asset *console_asset_for_path(const char *path);

/**
 * True when an If-None-Match field value (NULL: absent) matches etag: "*",
 * or a comma-separated list holding etag, compared weakly as RFC 9110
 * 13.1.2 asks (W/"x" matches "x").
 */
bool console_etag_matches(const char *if_none_match, const char *etag);

/**
 * Add the asset routes to the console router: GET (and so HEAD) of
 * /console/ and of paths one to three segments below it. Add them after
 * every other /console/ route, which they would otherwise shadow.
 */
void console_assets_routes(struct router *r);

#endif
