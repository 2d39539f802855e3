/*
 * console.c: the console listener's routes, magic-link sign-in, sessions
 * and the mail thread (see console.h).
 *
 * A magic link is asked for with POST /console/auth/magic-link {email}. The
 * answer is 202 with one body whatever the address, after the same work
 * for every address: the rate limits, one user read, one invitation read,
 * one token row written (a dummy row, which signs nobody in, for an
 * address that may not sign in) and, only for one that may, a message
 * handed to the mail thread (a queue push: the SMTP exchange never runs in
 * the request). The token is 256 random bits; the store keeps its SHA-256.
 * The link works only in the browser that asked: the request sets (or
 * keeps) a __Host-pcl_login nonce cookie whose SHA-256 is stored with the
 * token; GET .../callback in another browser changes nothing and leaves
 * the token unused, so a mail scanner fetching the link does no harm.
 *
 * A session id is 256 random bits in __Host-pcl_session; the store keeps its
 * SHA-256 and reads the row on every request (no cache), so ending a
 * session anywhere ends it everywhere. The CSRF token is an HMAC of the
 * session id (creds.c).
 */
#include "console/console.h"

#include "console/assets.h"
#include "console/roles.h"
#include "core/alloc.h"
#include "core/clock.h"
#include "core/json.h"
#include "core/log.h"
#include "core/str.h"
#include "core/thread.h"
#include "core/ulid.h"
#include "crypto/ct.h"
#include "crypto/hash.h"
#include "delivery/mail.h"
#include "http/request.h"
#include "kv/kv.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define LINK_TTL_MS       (10LL * 60 * 1000)
#define INVITE_TTL_MS     (7LL * 24 * 3600 * 1000)
#define MAIL_QUEUE_MAX    256
#define TOUCH_INTERVAL_MS 10000 /* last_seen_at is written at most this often */
/* One sign-in or invitation mail waiting for the mail thread. */
struct queued_mail {
	char to[STORE_EMAIL_MAX + 1];
	char subject[96];
	char *text; /* holds the link: wiped before it is freed */
	struct queued_mail *next;
};

struct console {
	struct console_deps d;
	struct mailer *mailer; /* NULL: no [mail] url */
	bool print;            /* no mailer and [console] dev_print_links */
	pthread_mutex_t lock;
	struct bg_thread t;
	struct queued_mail *head, *tail;
	int queued;
};

/* ---------- the mail thread ---------- */

static void mail_free(struct queued_mail *m)
{
	explicit_bzero(m->text, strlen(m->text));
	free(m->text);
	free(m);
}

static void mail_one(struct console *c, struct queued_mail *m)
{
	if (c->mailer) {
		char err[256];
		struct mail_message msg = {
		    .to = m->to, .subject = m->subject, .text = m->text, .date_ms = clock_now_ms()};
		if (mail_send(c->mailer, &msg, err, sizeof err) < 0)
			log_event(LOG_WARN, "console_mail_failed", "error", err, NULL);
		else
			log_event(LOG_INFO, "console_mail_sent", "subject", m->subject, NULL);
		return;
	}
	if (c->print) {
		/* Standard output, not the log: this is the terminal of `make run`. */
		printf("\n==> [mail] url is not set and [console] dev_print_links is on, so this "
		       "mail to %s is printed here instead of being sent:\n    Subject: %s\n%s\n\n",
		       m->to, m->subject, m->text);
		fflush(stdout);
		return;
	}
	log_event(LOG_WARN, "console_mail_not_sent", "reason", "[mail] url is not set", NULL);
}

static void mail_loop(struct bg_thread *t, void *arg)
{
	struct console *c = arg;
	while (bg_thread_wait(t, -1)) {
		while (c->head) {
			struct queued_mail *m = c->head;
			c->head = m->next;
			if (!c->head)
				c->tail = NULL;
			c->queued--;
			pthread_mutex_unlock(&c->lock);
			mail_one(c, m);
			mail_free(m);
			pthread_mutex_lock(&c->lock);
		}
	}
}

/* Queue a mail (text is copied). Drops it, logged, when the queue is full. */
static void mail_queue(struct console *c, const char *to, const char *subject, const char *text)
{
	struct queued_mail *m = xcalloc(1, sizeof *m);
	snprintf(m->to, sizeof m->to, "%s", to);
	snprintf(m->subject, sizeof m->subject, "%s", subject);
	m->text = xstrdup(text);
	pthread_mutex_lock(&c->lock);
	if (c->queued >= MAIL_QUEUE_MAX) {
		pthread_mutex_unlock(&c->lock);
		log_event(LOG_WARN, "console_mail_dropped", "reason", "queue full", NULL);
		mail_free(m);
		return;
	}
	if (c->tail)
		c->tail->next = m;
	else
		c->head = m;
	c->tail = m;
	c->queued++;
	bg_thread_wake_locked(&c->t);
	pthread_mutex_unlock(&c->lock);
}

struct console *console_create(const struct console_deps *d, char *err, size_t cap)
{
	struct console *c = xcalloc(1, sizeof *c);
	c->d = *d;
	if (mailer_open(d->cfg, &c->mailer, err, cap) < 0) {
		free(c);
		return NULL;
	}
	c->print = !c->mailer && config_true(d->cfg->console_dev_print_links);
	if (!c->mailer && !c->print && d->cfg->console_listen[0])
		log_warn("[console] listen is set but [mail] url is not: sign-in links cannot be "
		         "sent");
	pthread_mutex_init(&c->lock, NULL);
	if (bg_thread_start(&c->t, "console-mail", &c->lock, mail_loop, c) < 0) {
		snprintf(err, cap, "cannot start the console's mail thread");
		mailer_free(c->mailer);
		pthread_mutex_destroy(&c->lock);
		free(c);
		return NULL;
	}
	return c;
}

void console_destroy(struct console *c)
{
	if (!c)
		return;
	bg_thread_stop(&c->t);
	for (struct queued_mail *m = c->head, *next; m; m = next) {
		next = m->next;
		mail_free(m);
	}
	mailer_free(c->mailer);
	pthread_mutex_destroy(&c->lock);
	free(c);
}

/* ---------- small answers ---------- */

/* The console of a console route (console_routes registered it as the route's data). */
static struct console *console_of(struct http_request *req)
{
	return (struct console *)req->route->data;
}

static const char *public_url(const struct console *c)
{
	return c->d.cfg->console_public_url;
}

static void no_store(struct http_request *req)
{
	http_set_header(req, "Cache-Control", "no-store");
}

/* An HTML page (status, title, one paragraph: both ASCII, no markup). */
static void respond_page(struct http_request *req, int status, const char *title, const char *text)
{
	struct buf b;
	buf_init(&b, 64 * 1024);
	buf_printf(&b,
	           "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
	           "<meta name=\"viewport\" content=\"width=device-width\">"
	           "<link rel=\"icon\" href=\"/console/favicon.svg\" type=\"image/svg+xml\">"
	           "<link rel=\"stylesheet\" href=\"/console/style.css\">"
	           "<title>%s - Portcullis</title></head>\n<body><h1>%s</h1><p>%s</p>"
	           "<p><a href=\"/console/\">Portcullis console</a></p></body></html>\n",
	           title, title, text);
	size_t n = 0;
	char *body = buf_steal(&b, &n);
	http_set_header(req, "Content-Security-Policy", CONSOLE_UI_CSP);
	http_set_header(req, "X-Content-Type-Options", "nosniff");
	no_store(req);
	http_respond_owned(req, status, "text/html; charset=utf-8", body, n);
}

static void respond_unauthenticated(struct http_request *req)
{
	no_store(req);
	http_respond_problem(req, 401, "UNAUTHENTICATED", "Sign in to the console.", NULL);
}

static void respond_forbidden(struct http_request *req, const char *reason, const char *message)
{
	no_store(req);
	http_respond_problem(req, 403, "FORBIDDEN", message, json_pack("{s:s}", "reason", reason));
}

/*
 * Console routes never take an API key: a request that carries one is refused
 * whether or not it also has a session. True when refused.
 */
static bool refuse_api_key(struct http_request *req)
{
	if (!http_header(req, "Authorization"))
		return false;
	no_store(req);
	http_respond_problem(req, 401, "UNAUTHENTICATED",
	                     "The console does not take API keys; sign in instead.", NULL);
	return true;
}

/* The cross-site rule for a request without a session (sign-in requests). */
static bool refuse_cross_site(const struct console *c, struct http_request *req)
{
	switch (console_origin_check(req->method, http_header(req, "Origin"),
	                             http_header(req, "Sec-Fetch-Site"), public_url(c))) {
	case CONSOLE_ORIGIN_OK:
		return false;
	case CONSOLE_ORIGIN_CROSS_SITE:
		respond_forbidden(req, "cross_site", "Cross-site requests are refused.");
		return true;
	default:
		respond_forbidden(req, "origin", "The request's Origin is not the console's.");
		return true;
	}
}

static int64_t idle_ms(const struct console *c)
{
	return c->d.cfg->console_session_idle_minutes * 60 * 1000;
}

/* ---------- sessions ---------- */

bool console_session_cookie_present(struct http_request *req)
{
	const char *h = http_header(req, "Cookie");
	return h && strstr(h, CONSOLE_SESSION_COOKIE "=") != NULL;
}

void console_session_wipe(struct console_session *s)
{
	explicit_bzero(s->sid, sizeof s->sid);
	explicit_bzero(s->csrf, sizeof s->csrf);
}

/* The browser's session id from its cookie into sid: 0, or -1 for none or a malformed one. */
static int cookie_secret(struct http_request *req, const char *name,
                         char sid[CONSOLE_SECRET_LEN + 1])
{
	char v[CONSOLE_SECRET_LEN + 2];
	int rc = console_cookie_get(http_header(req, "Cookie"), name, v, sizeof v);
	if (rc == 0 && console_secret_valid(v, strlen(v)))
		memcpy(sid, v, CONSOLE_SECRET_LEN + 1);
	else
		rc = -1;
	explicit_bzero(v, sizeof v);
	return rc;
}

int console_session_load(struct console *c, struct http_request *req, struct console_session *out)
{
	memset(out, 0, sizeof *out);
	char hash[CONSOLE_HASH_LEN + 1];
	if (cookie_secret(req, CONSOLE_SESSION_COOKIE, out->sid) < 0) {
		respond_unauthenticated(req);
		return -1;
	}
	console_secret_hash(out->sid, hash);
	int rc = store_session_get(c->d.store, hash, &out->s, &out->u);
	if (rc == STORE_ENOTFOUND || (rc == STORE_OK && out->u.disabled_at >= 0)) {
		console_session_wipe(out);
		respond_unauthenticated(req);
		return -1;
	}
	if (rc != STORE_OK) {
		console_session_wipe(out);
		http_respond_store_error(req, rc);
		return -1;
	}
	int64_t now = clock_now_ms();
	if (now >= out->s.expires_at || now - out->s.last_seen_at >= idle_ms(c)) {
		(void)store_session_end(c->d.store, out->s.user_id, out->s.id, NULL);
		console_session_wipe(out);
		respond_unauthenticated(req);
		return -1;
	}
	switch (console_origin_check(req->method, http_header(req, "Origin"),
	                             http_header(req, "Sec-Fetch-Site"), public_url(c))) {
	case CONSOLE_ORIGIN_OK:
		break;
	case CONSOLE_ORIGIN_CROSS_SITE:
		console_session_wipe(out);
		respond_forbidden(req, "cross_site", "Cross-site requests are refused.");
		return -1;
	default:
		console_session_wipe(out);
		respond_forbidden(req, "origin", "The request's Origin is not the console's.");
		return -1;
	}
	if (console_state_changing(req->method) &&
	    !console_csrf_ok(out->sid, http_header(req, "X-CSRF-Token"))) {
		console_session_wipe(out);
		respond_forbidden(req, "csrf",
		                  "A state-changing request needs the session's X-CSRF-Token.");
		return -1;
	}
	console_csrf_token(out->sid, out->csrf);
	if (now - out->s.last_seen_at >= TOUCH_INTERVAL_MS) {
		(void)store_session_touch(c->d.store, out->s.id, now);
		out->s.last_seen_at = now;
	}
	return 0;
}

/* The new session's cookie on req, the login nonce cleared. */
static void set_session_cookies(struct http_request *req, const char *sid)
{
	char c[256];
	if (console_set_cookie(c, sizeof c, CONSOLE_SESSION_COOKIE, sid, -1) == 0)
		http_set_header(req, "Set-Cookie", c);
	explicit_bzero(c, sizeof c);
	if (console_set_cookie(c, sizeof c, CONSOLE_LOGIN_COOKIE, "", 0) == 0)
		http_set_header(req, "Set-Cookie", c);
}

/*
 * Begin a session for in (token or address set by the caller): a new id,
 * the browser's old session ended, the cookies set on success.
 */
static int begin_session(struct console *c, struct http_request *req, struct store_login *in,
                         const char *method, struct store_user *user)
{
	char sid[CONSOLE_SECRET_LEN + 1], old[CONSOLE_SECRET_LEN + 1];
	char old_hash[CONSOLE_HASH_LEN + 1];
	int64_t now = clock_now_ms();
	console_secret_new(sid);
	in->method = method;
	in->now = now;
	in->idle_ms = idle_ms(c);
	in->request_id = req->request_id;
	in->end_token_hash = NULL;
	if (cookie_secret(req, CONSOLE_SESSION_COOKIE, old) == 0) {
		console_secret_hash(old, old_hash);
		in->end_token_hash = old_hash;
		explicit_bzero(old, sizeof old);
	}
	ulid_new(in->session.id);
	console_secret_hash(sid, in->session.token_hash);
	in->session.created_at = in->session.last_seen_at = now;
	in->session.expires_at = now + c->d.cfg->console_session_max_hours * 3600 * 1000;
	const char *ua = http_header(req, "User-Agent");
	str_copy(in->session.user_agent, sizeof in->session.user_agent, ua ? ua : "", STORE_UA_MAX);
	for (char *p = in->session.user_agent; *p; p++)
		if ((unsigned char)*p < 0x20 || (unsigned char)*p >= 0x7f)
			*p = '?'; /* shown back as JSON text: printable ASCII only */
	int rc = store_session_begin(c->d.store, in, user);
	if (rc == STORE_OK)
		set_session_cookies(req, sid);
	explicit_bzero(sid, sizeof sid);
	return rc;
}

int console_sign_in(struct console *c, struct http_request *req, const char *email,
                    const char *method)
{
	struct store_login in = {.email = email,
	                         .allow_signup = config_true(c->d.cfg->console_allow_signup)};
	struct store_user u;
	return begin_session(c, req, &in, method, &u);
}

/* ---------- magic links ---------- */

/* True (and 429 answered) when the GCRA bucket of kind+value is empty. */
static bool rate_limited(struct console *c, struct http_request *req, const char *kind,
                         const char *value, const struct gcra_params *p)
{
	uint8_t d[SHA256_LEN];
	char hex[2 * 16 + 1], key[96];
	/* A hash of the address in the key: no address or IP reaches the shared tier. */
	sha256(value, strlen(value), d);
	hex_encode(d, 16, hex);
	hex[32] = '\0';
	snprintf(key, sizeof key, "pcl:console:%s:%s", kind, hex);
	struct gcra_result r;
	if (kv_gcra(c->d.kv, key, p, clock_now_ms(), 1, &r) != KV_OK) {
		log_event(LOG_WARN, "console_rate_limit_unavailable", NULL);
		return false; /* fail open, as the organisation rate limit does */
	}
	if (!r.limited)
		return false;
	char ra[24];
	snprintf(ra, sizeof ra, "%lld", (long long)((r.retry_after_ms + 999) / 1000));
	http_set_header(req, "Retry-After", ra);
	no_store(req);
	http_respond_problem(req, 429, "RATE_LIMITED",
	                     "Too many sign-in links were asked for; retry later.", NULL);
	return true;
}

/* 5 links per address per 15 minutes (one every 3 minutes after the first 5). */
static const struct gcra_params per_address = {.max_burst = 4, .count = 5, .period_ms = 900000};
/* 20 at once per client address, then one every 30 s. */
static const struct gcra_params per_client = {.max_burst = 19, .count = 20, .period_ms = 600000};

static void link_mail(struct console *c, const char *to, const char *token)
{
	char text[1024];
	snprintf(text, sizeof text,
	         "Someone (we hope you) asked to sign in to the Portcullis console as %s.\n\n"
	         "Open this link in the same browser within 10 minutes; it works once:\n\n"
	         "%s/console/auth/magic-link/callback?token=%s\n\n"
	         "If you did not ask, ignore this mail: nobody can use the link from another "
	         "browser.\n",
	         to, public_url(c), token);
	mail_queue(c, to, "Sign in to Portcullis", text);
	explicit_bzero(text, sizeof text);
}

/* POST /console/auth/magic-link {email}: 202, whatever the address. */
static void magic_link(struct http_request *req)
{
	struct console *c = console_of(req);
	if (refuse_api_key(req) || refuse_cross_site(c, req))
		return;
	json_t *body = http_json_body(req);
	if (!body)
		return;
	char email[STORE_EMAIL_MAX + 1];
	json_t *e = json_object_get(body, "email");
	const char *k;
	json_t *v;
	json_object_foreach(body, k, v)
	{
		if (strcmp(k, "email") != 0) {
			json_decref(body);
			http_respond_bad_field(req, "body", "The only field is email.");
			return;
		}
	}
	if (!json_is_string(e) || console_email_normalize(json_string_value(e), email) < 0) {
		json_decref(body);
		http_respond_bad_field(req, "email", "email must be an ASCII address.");
		return;
	}
	json_decref(body);
	if (rate_limited(c, req, "ml-addr", email, &per_address) ||
	    (req->client_ip[0] && rate_limited(c, req, "ml-client", req->client_ip, &per_client)))
		return;
	/* The browser's nonce: kept when it has one, so every link it asked for works. */
	char nonce[CONSOLE_SECRET_LEN + 1], token[CONSOLE_SECRET_LEN + 1];
	if (cookie_secret(req, CONSOLE_LOGIN_COOKIE, nonce) < 0)
		console_secret_new(nonce);
	console_secret_new(token);
	int64_t now = clock_now_ms();
	struct store_login_token t = {.created_at = now, .expires_at = now + LINK_TTL_MS};
	console_secret_hash(token, t.token_hash);
	console_secret_hash(nonce, t.nonce_hash);
	/* The same reads for every address. */
	struct store_user u;
	struct store_invitation inv;
	int urc = store_user_by_email(c->d.store, email, &u);
	int irc = store_invitation_pending(c->d.store, email, now, &inv);
	bool may = false;
	if (urc == STORE_OK && u.disabled_at < 0) {
		snprintf(t.user_id, sizeof t.user_id, "%s", u.id);
		may = true;
	} else if (urc == STORE_ENOTFOUND && irc == STORE_OK) {
		snprintf(t.invitation_id, sizeof t.invitation_id, "%s", inv.id);
		may = true;
	} else if (urc == STORE_ENOTFOUND && irc == STORE_ENOTFOUND &&
	           config_true(c->d.cfg->console_allow_signup)) {
		snprintf(t.signup_email, sizeof t.signup_email, "%s", email);
		may = true;
	}
	int rc = urc != STORE_OK && urc != STORE_ENOTFOUND ? urc
	         : irc != STORE_OK && irc != STORE_ENOTFOUND
	             ? irc
	             : store_login_token_insert(c->d.store, &t);
	if (rc != STORE_OK) {
		explicit_bzero(token, sizeof token);
		explicit_bzero(nonce, sizeof nonce);
		http_respond_store_error(req, rc);
		return;
	}
	if (may)
		link_mail(c, email, token);
	explicit_bzero(token, sizeof token);
	char cookie[256];
	if (console_set_cookie(cookie, sizeof cookie, CONSOLE_LOGIN_COOKIE, nonce,
	                       LINK_TTL_MS / 1000) == 0)
		http_set_header(req, "Set-Cookie", cookie);
	explicit_bzero(cookie, sizeof cookie);
	explicit_bzero(nonce, sizeof nonce);
	no_store(req);
	http_respond_json(req, 202,
	                  json_pack("{s:s, s:s}", "status", "accepted", "message",
	                            "If this address may sign in, a link is on its way. It works "
	                            "once, in this browser, for 10 minutes."));
}

/* The token of ?token= (shape checked) into token; -1 (page answered) when there is none. */
static int query_token(struct http_request *req, char token[CONSOLE_SECRET_LEN + 1])
{
	const char *t = http_query(req, "token");
	if (!t || !console_secret_valid(t, strlen(t))) {
		respond_page(req, 400, "This link is not valid",
		             "Ask for a new sign-in link on the console's sign-in page.");
		return -1;
	}
	memcpy(token, t, CONSOLE_SECRET_LEN + 1);
	return 0;
}

static void link_gone(struct http_request *req)
{
	respond_page(req, 400, "This link cannot be used",
	             "It was used already, it expired (links last 10 minutes), or it is not a "
	             "sign-in link. Ask for a new one on the console's sign-in page.");
}

/* After a sign-in (begin_session's rc): to /console/ with the new session, or the store's 503. */
static void respond_signed_in(struct http_request *req, int rc)
{
	if (rc != STORE_OK) {
		http_respond_store_error(req, rc);
		return;
	}
	no_store(req);
	http_set_header(req, "Location", "/console/");
	http_respond(req, 303, "text/plain", "", 0);
}

/* GET /console/auth/magic-link/callback?token=: signs in, only in the browser that asked. */
static void magic_link_callback(struct http_request *req)
{
	struct console *c = console_of(req);
	http_set_header(req, "Referrer-Policy", "no-referrer");
	if (refuse_api_key(req))
		return;
	char token[CONSOLE_SECRET_LEN + 1], nonce[CONSOLE_SECRET_LEN + 1];
	char hash[CONSOLE_HASH_LEN + 1], nonce_hash[CONSOLE_HASH_LEN + 1];
	if (query_token(req, token) < 0)
		return;
	console_secret_hash(token, hash);
	explicit_bzero(token, sizeof token);
	struct store_login_token t;
	int rc = store_login_token_get(c->d.store, hash, &t);
	if (rc != STORE_OK && rc != STORE_ENOTFOUND) {
		http_respond_store_error(req, rc);
		return;
	}
	int64_t now = clock_now_ms();
	if (rc == STORE_ENOTFOUND || t.used_at >= 0 || now >= t.expires_at || !t.nonce_hash[0]) {
		link_gone(req);
		return;
	}
	bool same_browser = cookie_secret(req, CONSOLE_LOGIN_COOKIE, nonce) == 0;
	if (same_browser) {
		console_secret_hash(nonce, nonce_hash);
		same_browser = ct_equal(nonce_hash, t.nonce_hash, CONSOLE_HASH_LEN);
	}
	explicit_bzero(nonce, sizeof nonce);
	if (!same_browser) { /* nothing changes: the token stays unused */
		respond_page(
		    req, 403, "Open this link in the browser you asked for it in",
		    "For your safety a sign-in link works only in the browser where it was "
		    "asked for. Open it there, or ask for a new link in this browser.");
		return;
	}
	struct store_login in = {.token_hash = hash};
	struct store_user u;
	rc = begin_session(c, req, &in, "magic_link", &u);
	if (rc == STORE_ENOTFOUND) {
		link_gone(req);
		return;
	}
	respond_signed_in(req, rc);
}

/* ---------- invitations ---------- */

int console_invite(struct console *c, const struct store_invitation *inv, const char *org_name)
{
	char token[CONSOLE_SECRET_LEN + 1], text[1400];
	console_secret_new(token);
	struct store_login_token t = {.created_at = inv->created_at, .expires_at = inv->expires_at};
	console_secret_hash(token, t.token_hash);
	snprintf(t.invitation_id, sizeof t.invitation_id, "%s", inv->id);
	int rc = store_login_token_insert(c->d.store, &t);
	if (rc == STORE_OK) {
		snprintf(text, sizeof text,
		         "You are invited to the organisation \"%s\" on the Portcullis console, as "
		         "%s.\n\nTo accept and sign in, open this link within 7 days:\n\n"
		         "%s/console/auth/invitation?token=%s\n\n"
		         "If you did not expect this, ignore this mail.\n",
		         org_name, inv->role, public_url(c), token);
		mail_queue(c, inv->email, "Your invitation to Portcullis", text);
		explicit_bzero(text, sizeof text);
	}
	explicit_bzero(token, sizeof token);
	return rc;
}

/* GET /console/auth/invitation?token=: a page whose button accepts (a scanner's GET changes
 * nothing). */
static void invitation_page(struct http_request *req)
{
	http_set_header(req, "Referrer-Policy", "no-referrer");
	if (refuse_api_key(req))
		return;
	char token[CONSOLE_SECRET_LEN + 1], text[512];
	if (query_token(req, token) < 0)
		return;
	/* The token is base64url (checked): nothing in it needs HTML escaping. */
	snprintf(text, sizeof text,
	         "Accept the invitation to sign in.</p><form method=\"post\" "
	         "action=\"/console/auth/invitation\"><input type=\"hidden\" name=\"token\" "
	         "value=\"%s\"><button type=\"submit\">Accept and sign in</button></form><p>",
	         token);
	respond_page(req, 200, "Your invitation", text);
	explicit_bzero(token, sizeof token);
	explicit_bzero(text, sizeof text);
}

/* The token of a form body "token=..." (what the page posts) or {"token": "..."}. */
static int body_token(struct http_request *req, char token[CONSOLE_SECRET_LEN + 1])
{
	const char *b = req->body.data ? req->body.data : "";
	size_t n = req->body.len;
	if (n == 6 + CONSOLE_SECRET_LEN && strncmp(b, "token=", 6) == 0 &&
	    console_secret_valid(b + 6, CONSOLE_SECRET_LEN)) {
		memcpy(token, b + 6, CONSOLE_SECRET_LEN);
		token[CONSOLE_SECRET_LEN] = '\0';
		return 0;
	}
	return -1;
}

/* POST /console/auth/invitation (form token=...): accept, sign in, 303 to /console/. */
static void invitation_accept(struct http_request *req)
{
	struct console *c = console_of(req);
	http_set_header(req, "Referrer-Policy", "no-referrer");
	if (refuse_api_key(req) || refuse_cross_site(c, req))
		return;
	char token[CONSOLE_SECRET_LEN + 1], hash[CONSOLE_HASH_LEN + 1];
	if (body_token(req, token) < 0) {
		respond_page(req, 400, "This link is not valid",
		             "Open the link of your invitation mail again.");
		return;
	}
	console_secret_hash(token, hash);
	explicit_bzero(token, sizeof token);
	struct store_login_token t;
	int rc = store_login_token_get(c->d.store, hash, &t);
	if (rc == STORE_OK && (t.nonce_hash[0] || !t.invitation_id[0]))
		rc = STORE_ENOTFOUND; /* a sign-in link: only its own browser, by GET */
	struct store_login in = {.token_hash = hash};
	struct store_user u;
	if (rc == STORE_OK)
		rc = begin_session(c, req, &in, "invitation", &u);
	if (rc == STORE_ENOTFOUND) {
		respond_page(req, 400, "This invitation cannot be used",
		             "It was accepted already or it expired; ask the organisation's owner "
		             "for a new one.");
		return;
	}
	respond_signed_in(req, rc);
}

/* ---------- the console's own API ---------- */

/*
 * The console and the session of a console API request, which carries no
 * API key: the console, or NULL answered.
 */
static struct console *api_session(struct http_request *req, struct console_session *s)
{
	struct console *c = console_of(req);
	return refuse_api_key(req) || console_session_load(c, req, s) < 0 ? NULL : c;
}

static void store_failed(struct http_request *req, struct console_session *s, int rc)
{
	console_session_wipe(s);
	http_respond_store_error(req, rc);
}

/* POST /console/auth/logout: ends this session (every node refuses it from now on). */
static void logout(struct http_request *req)
{
	struct console_session s;
	struct console *c = api_session(req, &s);
	if (!c)
		return;
	struct audit_input a = {.actor_type = "user",
	                        .actor_id = s.u.id,
	                        .action = "user.logout",
	                        .target_type = "session",
	                        .target_id = s.s.id,
	                        .request_id = req->request_id};
	int rc = store_session_end(c->d.store, s.u.id, s.s.id, &a);
	console_session_wipe(&s);
	if (rc != STORE_OK && rc != STORE_ENOTFOUND) {
		http_respond_store_error(req, rc);
		return;
	}
	char cookie[256];
	if (console_set_cookie(cookie, sizeof cookie, CONSOLE_SESSION_COOKIE, "", 0) == 0)
		http_set_header(req, "Set-Cookie", cookie);
	no_store(req);
	http_respond(req, 204, NULL, "", 0);
}

/* GET /console/api/me: the user, this session, its CSRF token and the memberships. */
static void me(struct http_request *req)
{
	struct console_session s;
	struct console *c = api_session(req, &s);
	if (!c)
		return;
	struct store_membership *ms = NULL;
	int n = 0;
	int rc = store_memberships_of(c->d.store, s.u.id, &ms, &n);
	if (rc != STORE_OK) {
		store_failed(req, &s, rc);
		return;
	}
	json_t *list = json_array();
	for (int i = 0; i < n; i++) {
		int role = console_role_parse(ms[i].role);
		json_t *rights = json_array();
		for (const char *const *r = console_rights(); *r; r++)
			if (console_role_allows((enum console_role)role, *r))
				json_array_append_new(rights, json_string(*r));
		json_array_append_new(list, json_pack("{s:s, s:s, s:s, s:o}", "org_id",
		                                      ms[i].org_id, "org_name", ms[i].org_name,
		                                      "role", ms[i].role, "rights", rights));
	}
	free(ms);
	int64_t idle_end = s.s.last_seen_at + idle_ms(c);
	json_t *o = json_pack(
	    "{s:{s:s, s:s, s:s, s:b, s:o, s:o}, s:{s:s, s:o, s:o, s:o}, s:s, s:o}", "user", "id",
	    s.u.id, "email", s.u.email, "name", s.u.name, "operator", s.u.operator, "created_at",
	    json_time(s.u.created_at), "last_login_at", json_time(s.u.last_login_at), "session",
	    "id", s.s.id, "created_at", json_time(s.s.created_at), "expires_at",
	    json_time(s.s.expires_at < idle_end ? s.s.expires_at : idle_end), "absolute_expires_at",
	    json_time(s.s.expires_at), "csrf_token", s.csrf, "memberships", list);
	console_session_wipe(&s);
	no_store(req);
	http_respond_json(req, 200, o);
}

/* GET /console/api/sessions: the user's own sessions. */
static void sessions_list(struct http_request *req)
{
	struct console_session s;
	struct console *c = api_session(req, &s);
	if (!c)
		return;
	struct store_session *all = NULL;
	int n = 0;
	int rc = store_sessions_of(c->d.store, s.u.id, &all, &n);
	if (rc != STORE_OK) {
		store_failed(req, &s, rc);
		return;
	}
	json_t *data = json_array();
	int64_t now = clock_now_ms();
	for (int i = 0; i < n; i++) {
		if (now >= all[i].expires_at || now - all[i].last_seen_at >= idle_ms(c))
			continue; /* ended already; deleted at the user's next sign-in */
		json_array_append_new(
		    data, json_pack("{s:s, s:o, s:o, s:o, s:s, s:b}", "id", all[i].id, "created_at",
		                    json_time(all[i].created_at), "last_seen_at",
		                    json_time(all[i].last_seen_at), "expires_at",
		                    json_time(all[i].expires_at), "user_agent", all[i].user_agent,
		                    "current", strcmp(all[i].id, s.s.id) == 0));
	}
	free(all);
	console_session_wipe(&s);
	no_store(req);
	http_respond_json(req, 200, json_pack("{s:o}", "data", data));
}

/* DELETE /console/api/sessions/{sessionId}: end one of the user's own sessions. */
static void session_delete(struct http_request *req)
{
	struct console_session s;
	struct console *c = api_session(req, &s);
	if (!c)
		return;
	const char *id = http_param(req, "sessionId");
	struct audit_input a = {.actor_type = "user",
	                        .actor_id = s.u.id,
	                        .action = "session.ended",
	                        .target_type = "session",
	                        .target_id = id,
	                        .request_id = req->request_id};
	int rc = ulid_valid(id, strlen(id)) ? store_session_end(c->d.store, s.u.id, id, &a)
	                                    : STORE_ENOTFOUND;
	bool own = strcmp(id, s.s.id) == 0;
	console_session_wipe(&s);
	if (rc == STORE_ENOTFOUND) {
		http_respond_problem(req, 404, "NOT_FOUND", "No such session.", NULL);
		return;
	}
	if (rc != STORE_OK) {
		http_respond_store_error(req, rc);
		return;
	}
	char cookie[256];
	if (own && console_set_cookie(cookie, sizeof cookie, CONSOLE_SESSION_COOKIE, "", 0) == 0)
		http_set_header(req, "Set-Cookie", cookie);
	no_store(req);
	http_respond(req, 204, NULL, "", 0);
}

/* ---------- pages ---------- */

static void root_redirect(struct http_request *req)
{
	http_set_header(req, "Location", "/console/");
	http_respond(req, 302, "text/plain", "", 0);
}

void console_routes(struct router *r, struct console *c)
{
	router_add_with(r, "GET", "/", root_redirect, 0, c);
	router_add_with(r, "POST", "/console/auth/magic-link", magic_link, ROUTE_BLOCKING, c);
	router_add_with(r, "GET", "/console/auth/magic-link/callback", magic_link_callback,
	                ROUTE_BLOCKING, c);
	router_add_with(r, "GET", "/console/auth/invitation", invitation_page, 0, c);
	router_add_with(r, "POST", "/console/auth/invitation", invitation_accept, ROUTE_BLOCKING,
	                c);
	router_add_with(r, "POST", "/console/auth/logout", logout, ROUTE_BLOCKING, c);
	router_add_with(r, "GET", "/console/api/me", me, ROUTE_BLOCKING, c);
	router_add_with(r, "GET", "/console/api/sessions", sessions_list, ROUTE_BLOCKING, c);
	router_add_with(r, "DELETE", "/console/api/sessions/{sessionId}", session_delete,
	                ROUTE_BLOCKING, c);
	console_assets_routes(r); /* last: its /console/{a}... would shadow the routes above */
}
