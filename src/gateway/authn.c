/*
 * authn.c: the authentication state machine (see authn.h).
 *
 *   parse -> cache check --hit--> verified -> kill/revoked/expired/scope -> done
 *                       --miss--> [lookup pool: store read] -> cache check
 *                       --unverified/unknown--> guard -> [verifier pool: bcrypt]
 *
 * Unknown key ids are verified against a dummy hash so their timing matches
 * a wrong secret; every credential failure gives the one identical 401 body.
 */
#include "gateway/authn.h"

#include "gateway/gateway.h"
#include "app/app.h"
#include "auth/bfguard.h"
#include "auth/keycache.h"
#include "auth/keyfmt.h"
#include "auth/keys.h"
#include "auth/last_used.h"
#include "core/clock.h"
#include "core/log.h"
#include "crypto/bcrypt.h"
#include "policy/killswitch.h"

#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

struct authn_state {
	struct authn result;
	bool ok;
	const char *scope;
	http_handler_fn done;
	struct api_key_parts parts; /* secret wiped as soon as it is verified or rejected */
	uint8_t mac[32];
	enum keycache_result cached;
	int store_rc;
	bool bcrypt_ok;
	enum keycache_slot slot;
	char matched_hash[64];
	bool looked_up;
	int64_t touched_at; /* the cache entry's last touch (keycache_check) */
};

static struct authn_state *state_of(struct http_request *req)
{
	return req->gateway;
}

const struct authn *authn_of(struct http_request *req)
{
	struct authn_state *st = state_of(req);
	return st && st->ok ? &st->result : NULL;
}

static void wipe_secret(struct authn_state *st)
{
	explicit_bzero(&st->parts, sizeof st->parts);
}

static void finish(struct http_request *req)
{
	struct authn_state *st = state_of(req);
	wipe_secret(st);
	st->done(req);
}

/* Every 401 carries the challenge (RFC 9110 section 15.5.2), whatever its code. */
static void respond_401(struct http_request *req, const char *code, const char *message)
{
	http_set_header(req, "WWW-Authenticate", "Bearer");
	http_respond_problem(req, 401, code, message, NULL);
	finish(req);
}

static void unauthenticated(struct http_request *req)
{
	respond_401(req, "UNAUTHENTICATED", "A valid API key is required.");
}

static void fail_credential(struct http_request *req)
{
	struct app *app = req->app;
	if (req->client_ip[0])
		bfguard_fail(app->guard, req->client_ip, clock_now_ms());
	unauthenticated(req);
}

static void overloaded(struct http_request *req)
{
	http_set_header(req, "Retry-After", "1");
	http_respond_problem(req, 503, "OVERLOADED",
	                     "Too many verifications are waiting; retry shortly.", NULL);
	finish(req);
}

/*
 * While the store is unreachable, keys verified before the outage keep
 * working for [auth] stale_grace_seconds; after that every request gets 503
 * (a kill or revocation this node saw is kept either way: nothing is
 * dropped from the caches during an outage).
 */
static bool stale_grace_over(struct app *app)
{
	int64_t down = atomic_load_explicit(&app->store_down_since, memory_order_relaxed);
	return down && clock_now_ms() - down > app->cfg.auth_stale_grace_seconds * 1000;
}

/* Checks 4 to 6, once the secret is known to be right. */
static void after_verified(struct http_request *req)
{
	struct app *app = req->app;
	struct authn_state *st = state_of(req);
	struct store_key *k = &st->result.key;
	/*
	 * Only the key as issued authenticates: the env in the presented string
	 * must be the key's own. Checked after the secret, so it tells nothing
	 * to someone who does not hold it.
	 */
	enum key_env env;
	if (key_env_parse(k->env, &env) < 0 || env != st->parts.env) {
		fail_credential(req);
		return;
	}
	wipe_secret(st);
	if (stale_grace_over(app)) {
		app_store_error(req, STORE_EUNAVAILABLE);
		finish(req);
		return;
	}
	st->result.root = strcmp(k->env, "root") == 0;
	req->log_key_id = k->id;
	req->log_org_id = k->org_id[0] ? k->org_id : NULL;
	req->log_project_id = k->project_id[0] ? k->project_id : NULL;

	struct store_kill kill;
	enum kill_scope ks = killset_check(app->kills, k->org_id, k->id, st->result.root, &kill);
	if (ks != KILL_NONE) {
		static const char *const msgs[] = {
		    [KILL_GLOBAL] = "All API traffic has been stopped by a global kill switch.",
		    [KILL_ORG] =
		        "This organization's API access has been stopped by a kill switch.",
		    [KILL_KEY] = "This API key has been stopped by a kill switch.",
		};
		http_respond_problem(req, 503, "KILL_SWITCH", msgs[ks],
		                     json_pack("{s:s}", "scope", kill_scope_name(ks)));
		finish(req);
		return;
	}
	int64_t now = clock_now_ms();
	if (k->revoked_at >= 0) {
		respond_401(req, "REVOKED", "This API key has been revoked.");
		return;
	}
	if (k->expires_at >= 0 && now >= k->expires_at) {
		respond_401(req, "EXPIRED", "This API key has expired.");
		return;
	}
	bool allowed;
	if (strcmp(st->scope, SCOPE_ROOT) == 0)
		allowed = st->result.root;
	else if (st->result.root)
		allowed =
		    strcmp(st->scope, "gateway") != 0 && strcmp(st->scope, "events:ingest") != 0;
	else
		allowed = keys_has_scope(k->scopes, st->scope);
	if (!allowed) {
		http_respond_problem(req, 403, "FORBIDDEN",
		                     "This API key lacks the scope this operation needs.",
		                     json_pack("{s:s}", "required_scope", st->scope));
		finish(req);
		return;
	}
	/* touched_at spares the second cache lookup on all but one request a minute. */
	if (now - st->touched_at >= KEYCACHE_TOUCH_INTERVAL_MS &&
	    keycache_touch_due(app->keys, k->id, now))
		last_used_record(app->last_used, k->id, now);
	st->ok = true;
	finish(req);
}

/* ---- bcrypt on the verifier pool ---- */

static void bcrypt_job(struct http_request *req)
{
	struct app *app = req->app;
	struct authn_state *st = state_of(req);
	const struct store_key *k = &st->result.key;
	st->bcrypt_ok = false;
	if (st->cached == KC_UNKNOWN) {
		bcrypt_verify(st->parts.secret, bcrypt_dummy_hash((int)app->cfg.auth_bcrypt_cost));
		return;
	}
	if (bcrypt_verify(st->parts.secret, k->secret_hash) == 0) {
		st->bcrypt_ok = true;
		st->slot = KC_SLOT_CURRENT;
		memcpy(st->matched_hash, k->secret_hash, sizeof st->matched_hash);
	} else if (k->prev_secret_hash[0] && k->prev_expires_at > clock_now_ms() &&
	           bcrypt_verify(st->parts.secret, k->prev_secret_hash) == 0) {
		st->bcrypt_ok = true;
		st->slot = KC_SLOT_PREVIOUS;
		memcpy(st->matched_hash, k->prev_secret_hash, sizeof st->matched_hash);
	}
}

static void bcrypt_done(struct http_request *req)
{
	struct app *app = req->app;
	struct authn_state *st = state_of(req);
	if (!st->bcrypt_ok) {
		fail_credential(req);
		return;
	}
	keycache_mark_verified(app->keys, st->result.key.id, st->matched_hash, st->slot, st->mac);
	after_verified(req);
}

/* ---- cache miss: read the row on the lookup pool ---- */

static void check_cache(struct http_request *req);

static void lookup_job(struct http_request *req)
{
	struct app *app = req->app;
	struct authn_state *st = state_of(req);
	struct store_key row;
	/*
	 * A refresh or revocation between the read and the put makes the put
	 * refuse the row (it may predate the change): read again, a few times.
	 */
	for (int attempt = 0; attempt < 3; attempt++) {
		uint64_t gen = keycache_generation(app->keys, st->parts.key_id);
		st->store_rc = store_key_get(app->store, st->parts.key_id, &row);
		if (st->store_rc != STORE_OK && st->store_rc != STORE_ENOTFOUND)
			break;
		if (keycache_put(app->keys, st->parts.key_id,
		                 st->store_rc == STORE_OK ? &row : NULL, gen))
			break;
	}
	explicit_bzero(&row, sizeof row);
}

static void lookup_done(struct http_request *req)
{
	struct authn_state *st = state_of(req);
	if (st->store_rc != STORE_OK && st->store_rc != STORE_ENOTFOUND) {
		app_store_error(req, st->store_rc);
		finish(req);
		return;
	}
	st->looked_up = true;
	check_cache(req);
}

static void check_cache(struct http_request *req)
{
	struct app *app = req->app;
	struct authn_state *st = state_of(req);
	st->touched_at = INT64_MIN / 2; /* unknown: ask keycache_touch_due */
	st->cached = keycache_check(app->keys, st->parts.key_id, st->mac, clock_now_ms(),
	                            &st->result.key, &st->touched_at);
	switch (st->cached) {
	case KC_VERIFIED:
		after_verified(req);
		return;
	case KC_MISS:
		if (st->looked_up) { /* evicted at once: treat as unverified */
			fail_credential(req);
			return;
		}
		if (http_defer(req, app->lookup_pool, lookup_job, lookup_done) < 0)
			overloaded(req);
		return;
	case KC_UNKNOWN:
	case KC_UNVERIFIED: {
		int64_t retry;
		if (req->client_ip[0] &&
		    bfguard_blocked(app->guard, req->client_ip, clock_now_ms(), &retry)) {
			char ra[24];
			snprintf(ra, sizeof ra, "%lld", (long long)retry);
			http_set_header(req, "Retry-After", ra);
			http_respond_problem(req, 429, "TOO_MANY_FAILED_ATTEMPTS",
			                     "Too many failed authentication attempts from this "
			                     "client; retry later.",
			                     NULL);
			finish(req);
			return;
		}
		if (http_defer(req, app->verifier_pool, bcrypt_job, bcrypt_done) < 0)
			overloaded(req);
		return;
	}
	}
}

void authn_run(struct http_request *req, const char *scope, http_handler_fn done)
{
	struct app *app = req->app;
	struct authn_state *st = arena_alloc(&req->arena, sizeof *st);
	memset(st, 0, sizeof *st);
	st->scope = scope;
	st->done = done;
	req->gateway = st;
	req->on_complete = gateway_record_request; /* every request that reached authentication */

	const char *h = http_header(req, "Authorization");
	if (!h) {
		unauthenticated(req);
		return;
	}
	size_t hl = strlen(h);
	if (hl < 7 || strncasecmp(h, "Bearer ", 7) != 0) {
		fail_credential(req);
		return;
	}
	const char *tok = h + 7;
	while (*tok == ' ')
		tok++;
	size_t tl = strlen(tok);
	while (tl && tok[tl - 1] == ' ')
		tl--;
	if (keyfmt_parse(tok, tl, app->cfg.auth_key_prefix, &st->parts) < 0) {
		fail_credential(req);
		return;
	}
	keycache_secret_mac(app->keys, st->parts.secret, strlen(st->parts.secret), st->mac);
	check_cache(req);
}
