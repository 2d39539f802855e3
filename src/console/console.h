/*
 * console.h: the browser console's server side (docs/console.md): its
 * routes on the console listener ([console] listen), magic-link sign-in,
 * sessions and their CSRF rule, and the session credential the management
 * API takes (api/api.c). Sessions live in the store only, so a logout or a
 * disabled user ends a session on every node at its next request.
 *
 * Sessions and API keys are separate credentials: every /console/ route
 * refuses a request that carries an Authorization header, and the data
 * plane (gateway/) never includes this header.
 */
#ifndef PORTCULLIS_CONSOLE_CONSOLE_H
#define PORTCULLIS_CONSOLE_CONSOLE_H

#include <stdbool.h>

#include "console/creds.h"
#include "core/config.h"
#include "http/router.h"
#include "store/store_console.h"

struct console;
struct kv;
struct store;

/**
 * What the console uses, given at creation (cli/serve.c) and kept by value:
 * every handler and the functions below reach these through their
 * struct console, never through the running instance.
 */
struct console_deps {
	struct store *store;      /* users, sessions, tokens, invitations */
	struct kv *kv;            /* the sign-in rate limits */
	const struct config *cfg; /* [console] and [mail]: outlives the console */
};

/**
 * The console of d (d->cfg's [console]): opens the mailer ([mail]; a
 * message in err and NULL when it cannot) and starts the thread that sends
 * sign-in mails, so a request never waits for SMTP. With no [mail] url the
 * links are printed on standard output when [console] dev_print_links is
 * true, else they cannot be sent (a warning at start).
 */
struct console *console_create(const struct console_deps *d, char *err, size_t cap);
/** Stop the mail thread (mails still queued are wiped, not sent) and free. NULL is a no-op. */
void console_destroy(struct console *c);

/**
 * The console listener's routes (/, /console/auth/..., /console/api/...), then the web UI's
 * files (console/assets.h: /console/ and its pages). Each route carries c (outlives r).
 */
void console_routes(struct router *r, struct console *c);

/** A signed-in browser: its session row, its user and its credentials. */
struct console_session {
	struct store_session s;
	struct store_user u;
	char sid[CONSOLE_SECRET_LEN + 1];  /* from the cookie: wiped by console_session_wipe */
	char csrf[CONSOLE_SECRET_LEN + 1]; /* its CSRF token */
};

/** True when req carries a __Host-pcl_session cookie (well-formed or not). */
bool console_session_cookie_present(struct http_request *req);

/**
 * The session of req (control pool: reads the store), checked: the cookie,
 * the row, the user not disabled, the absolute and idle expiry (an expired
 * row is deleted), the cross-site rule (creds.h) and, for a state-changing
 * method, X-CSRF-Token. Records the use (last_seen_at). 0 with *out filled;
 * -1 with the answer set (401 UNAUTHENTICATED, 403 FORBIDDEN with
 * details.reason cross_site | origin | csrf, 503).
 */
int console_session_load(struct console *c, struct http_request *req, struct console_session *out);
/** Wipe the session id held in s. */
void console_session_wipe(struct console_session *s);

/**
 * Sign the browser of req in as the holder of a verified address (OIDC,
 * docs/console.md "OpenID Connect"): the user with this address, else its
 * pending invitation accepted (the user made), else a new user when
 * [console] allow_signup; a new session (its id never seen before), the
 * browser's previous session ended, the __Host-pcl_session cookie set on
 * req and __Host-pcl_login cleared, audited as user.login with method.
 * Control pool. STORE_OK; STORE_ENOTFOUND when nobody may sign in with
 * this address (unknown, disabled); another STORE_E* on a store failure.
 * Sets no status or body: the caller answers (a redirect to /console/).
 * email must be normalised (console_email_normalize).
 */
int console_sign_in(struct console *c, struct http_request *req, const char *email,
                    const char *method);

/**
 * Mail an invitation to join org_name as role to email (normalised): a
 * link to {public_url}/console/auth/invitation valid 7 days, whose token's
 * SHA-256 is stored with the invitation inv. Control pool. STORE_OK or a
 * store error; the mail itself is sent in the background.
 */
int console_invite(struct console *c, const struct store_invitation *inv, const char *org_name);

#endif
