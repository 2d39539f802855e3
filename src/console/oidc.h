/*
 * oidc.h: the console's OpenID providers at run time: one per [oidc.NAME]
 * section, each with its client secret (read once at start), its
 * discovery document and JWK set fetched through the egress guard and
 * cached, and the two halves of a login: begin (the authorization URL for a
 * fresh browser login) and finish (the code exchanged at the token
 * endpoint, the ID token validated as oidc_proto.h says).
 *
 * Fetches are blocking libcurl transfers (https only, no redirects, no
 * proxy, 10 s, bodies up to OIDC_DOC_MAX, the section's ca_file and
 * allow_ranges on every connect), so begin and finish run off the event
 * loop (the control pool). The discovery document is fetched again once it
 * is an hour old; the key set once it is an hour old and, when a token
 * names a kid the set lacks (a key rotation), again at once but at most once
 * a minute per provider.
 */
#ifndef PORTCULLIS_CONSOLE_OIDC_H
#define PORTCULLIS_CONSOLE_OIDC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "console/oidc_proto.h"
#include "core/config.h"
#include "core/str.h"

/** Discovery document and key set are fetched again once this old. */
#define OIDC_CACHE_MAX_AGE_MS (3600 * 1000)
/** A key set is fetched for an unknown kid at most once per this gap. */
#define OIDC_JWKS_MIN_GAP_MS (60 * 1000)
/** Every transfer's whole time. */
#define OIDC_HTTP_TIMEOUT_MS 10000
/** Longest client secret read from client_secret_file. */
#define OIDC_SECRET_MAX 1024

/** A failure of the provider itself (unreachable, a bad document, a refused code). */
#define OIDC_ERR_PROVIDER (-20)

/** The configured providers (opaque; shared by every thread once opened). */
struct oidc_providers;
/** One provider (owned by its set). */
struct oidc_provider;

/**
 * One HTTP exchange, the seam the tests replace: GET url (body NULL) or
 * POST body (application/x-www-form-urlencoded) with an Authorization
 * header auth (NULL: none). The response body goes to resp (limit
 * OIDC_DOC_MAX), the status to *status. 0, or -1 with a reason in err (no
 * URL, no secret).
 */
typedef int (*oidc_http_fn)(void *ctx, const struct oidc_provider *p, const char *url,
                            const char *auth, const char *body, struct buf *resp, long *status,
                            char *err, size_t cap);

/**
 * Open every [oidc.NAME] of cfg: read its client_secret_file, parse its
 * allow_ranges, check its ca_file is readable and its issuer passes the
 * egress guard's URL check. Nothing is fetched yet. 0 with *out (NULL when
 * there is no section; oidc_providers_free), or -1 with "[oidc.NAME] ..."
 * in err.
 */
int oidc_providers_open(const struct config *cfg, struct oidc_providers **out, char *err,
                        size_t cap);

/** Free the set and wipe the secrets. NULL is ignored. */
void oidc_providers_free(struct oidc_providers *ps);

/** Number of providers (0 for NULL), and the name of the i-th (for the sign-in page). */
size_t oidc_providers_count(const struct oidc_providers *ps);
const char *oidc_providers_name(const struct oidc_providers *ps, size_t i);

/** The provider called name (len bytes), or NULL. */
struct oidc_provider *oidc_provider_find(struct oidc_providers *ps, const char *name, size_t len);

/** The provider's name. */
const char *oidc_provider_name(const struct oidc_provider *p);

/** Replace the HTTP exchange of every provider of ps (tests only; before any use). */
void oidc_providers_set_http(struct oidc_providers *ps, oidc_http_fn fn, void *ctx);

/**
 * Begin a login at now_ms: the discovery document (cached or fetched), a
 * fresh *login for this provider, and its authorization URL (with
 * redirect_uri) into location. OIDC_OK, or OIDC_ERR_PROVIDER with a reason
 * in err. Blocking.
 */
int oidc_provider_begin(struct oidc_provider *p, const char *redirect_uri, int64_t now_ms,
                        struct oidc_login *login, struct buf *location, char *err, size_t cap);

/**
 * Finish a login whose state the caller has checked (oidc_login_check):
 * redeem code at the token endpoint (client_secret_basic when the provider
 * takes it, else client_secret_post; redirect_uri and login's code
 * verifier), then validate the ID token against the issuer, this client,
 * login's nonce and the key set at now_ms. *id is the token's identity on
 * OIDC_OK; otherwise a negative oidc_result (which check refused) or
 * OIDC_ERR_PROVIDER, with a reason in err. Blocking.
 */
int oidc_provider_finish(struct oidc_provider *p, const char *redirect_uri,
                         const struct oidc_login *login, const char *code, int64_t now_ms,
                         struct oidc_identity *id, char *err, size_t cap);

/** True when iss is the provider's configured issuer, exactly (RFC 9207's iss parameter). */
bool oidc_provider_issuer_is(const struct oidc_provider *p, const char *iss);

struct router;
/**
 * Add GET /console/auth/oidc/{name}/start and .../callback, and
 * GET /console/api/providers (the sign-in page's list), to the console
 * listener's router (oidc_http.c). The handlers find the providers in
 * d and sign in through console_sign_in with d's console.
 */
struct console;
/** What the OIDC routes use, given at registration (cli/serve.c); outlives the router. */
struct oidc_http_deps {
	struct oidc_providers *providers; /* [oidc.NAME] */
	struct console *console;          /* console_sign_in after a callback */
	const char *public_url;           /* [console] public_url: the redirect URI's base */
};
void oidc_routes(struct router *r, const struct oidc_http_deps *d);

/** Key-set fetches made so far (for tests and metrics). */
uint64_t oidc_provider_jwks_fetches(const struct oidc_provider *p);

#endif
