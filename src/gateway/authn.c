/*
 * authn.c: the authentication state machine (see authn.h).
 *
 *   parse -> cache check --verified--> kill/revoked/expired/scope -> done
 *                        --otherwise--> guards (address, key id) --blocked--> 429
 *                        -> [verifier pool, normal or low lane: store read + bcrypt]
 *                        -> cache the verified row -> kill/revoked/expired/scope -> done
 *
 * Whatever is not a verified secret already cached takes one path: the
 * guards first (no store read or bcrypt for a blocked address or key id),
 * then one job that reads the row and runs bcrypt against its hash, or, for
 * a key id the store does not know, against a dummy hash of the same cost.
 * Nothing is cached for a failure, known id or not, so an unknown key id
 * and a wrong secret cost the same work and leave the same state: timing
 * cannot tell whether a key id exists (tests/integration/test_timing.py),
 * and no flood of either can push a verified key out of the cache. Every
 * credential failure gives the one identical 401 body.
 */
#include "gateway/authn.h"

#include "app/app.h"
#include "auth/bfguard.h"
#include "auth/keycache.h"
#include "auth/keyfmt.h"
#include "auth/keys.h"
#include "auth/last_used.h"
#include "core/clock.h"
#include "core/log.h"
#include "core/metrics.h"
#include "crypto/bcrypt.h"
#include "crypto/ct.h"
#include "gateway/gateway.h"
#include "policy/killswitch.h"

#include <pthread.h>
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
	int store_rc;
	bool bcrypt_ok;
	enum keycache_slot slot;
	int64_t touched_at; /* the cache entry's last touch (keycache_check) */
};

static struct metric m_verifications =
    METRIC_INIT("portcullis_auth_verifications_total",
                "bcrypt verifications run (known key ids and unknown ones alike)", "counter");
static struct metric m_refused = METRIC_INIT(
    "portcullis_auth_guard_refused_total",
    "requests refused by the brute-force guard before any store read or bcrypt", "counter");

static void register_metrics(void)
{
	metrics_register(&m_verifications);
	metrics_register(&m_refused);
}

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

/*
 * A refused attempt keeps, for the request log, why and the key id it
 * named (copied: the parsed parts are wiped before the log is written),
 * with that key's organisation and project when the store knows the id.
 * Never the address.
 */
static void note_refusal(struct http_request *req, const char *why)
{
	struct authn_state *st = state_of(req);
	req->log_refusal = why;
	if (!req->log_key_id && st->parts.key_id[0])
		req->log_key_id = arena_strdup(&req->arena, st->parts.key_id);
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
	if (!req->log_refusal)
		note_refusal(req, "no_credential");
	respond_401(req, "UNAUTHENTICATED", "A valid API key is required.");
}

/* A failed credential counts against the client address and the key id (when one was sent). */
static void fail_credential(struct http_request *req)
{
	struct app *app = req->app;
	struct authn_state *st = state_of(req);
	int64_t now = clock_now_ms();
	if (req->client_ip[0])
		bfguard_fail(app->guard, req->client_ip, now);
	if (st->parts.key_id[0])
		bfguard_fail(app->key_guard, st->parts.key_id, now);
	if (!req->log_refusal)
		note_refusal(req, "wrong_secret");
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
	/*
	 * Ingest keys (scope events:ingest, publishable: they ship inside apps)
	 * work on the ingest listener only, and only they work there. The other
	 * place answers as for any bad key, before the kill switches, so neither
	 * side learns that it holds a valid key of the other kind. Not a failed
	 * attempt for the guards: the secret was right.
	 */
	bool ingest_key = env != KEY_ENV_ROOT && keys_has_scope(k->scopes, SCOPE_INGEST);
	if (ingest_key != (strcmp(st->scope, SCOPE_INGEST) == 0)) {
		unauthenticated(req);
		return;
	}
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
		note_refusal(req, "killed");
		http_respond_problem(req, 503, "KILL_SWITCH", msgs[ks],
		                     json_pack("{s:s}", "scope", kill_scope_name(ks)));
		finish(req);
		return;
	}
	int64_t now = clock_now_ms();
	if (k->revoked_at >= 0) {
		note_refusal(req, "revoked");
		respond_401(req, "REVOKED", "This API key has been revoked.");
		return;
	}
	if (k->expires_at >= 0 && now >= k->expires_at) {
		note_refusal(req, "expired");
		respond_401(req, "EXPIRED", "This API key has expired.");
		return;
	}
	bool allowed;
	if (strcmp(st->scope, SCOPE_ROOT) == 0)
		allowed = st->result.root;
	else if (st->result.root)
		allowed = strcmp(st->scope, "gateway") != 0;
	else
		allowed = keys_has_scope(k->scopes, st->scope);
	if (!allowed) {
		note_refusal(req, "forbidden");
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

/* ---- store read and bcrypt on the verifier pool ---- */

/* Never a key id: 'U' is not a Crockford base-32 digit. */
#define ABSENT_KEY_ID "0000000000000000000000000U"

/* k's hash in slot, or NULL when that slot cannot verify at now (no grace left). */
static const char *slot_hash(const struct store_key *k, enum keycache_slot slot, int64_t now)
{
	if (slot == KC_SLOT_CURRENT)
		return k->secret_hash;
	return k->prev_secret_hash[0] && k->prev_expires_at > now ? k->prev_secret_hash : NULL;
}

/* Which of k's hashes is hash (compared in constant time); false for neither. */
static bool find_slot(const struct store_key *k, const char *hash, int64_t now,
                      enum keycache_slot *slot)
{
	for (int i = KC_SLOT_CURRENT; i <= KC_SLOT_PREVIOUS; i++) {
		const char *h = slot_hash(k, (enum keycache_slot)i, now);
		if (h && ct_streq(h, hash)) {
			*slot = (enum keycache_slot)i;
			return true;
		}
	}
	return false;
}

static void verify_job(struct http_request *req)
{
	struct app *app = req->app;
	struct authn_state *st = state_of(req);
	struct store_key *k = &st->result.key;
	const char *secret = st->parts.secret;
	st->bcrypt_ok = false;
	uint64_t gen = keycache_generation(app->keys, st->parts.key_id);
	st->store_rc = store_key_get(app->store, st->parts.key_id, k);
	if (st->store_rc != STORE_OK && st->store_rc != STORE_ENOTFOUND)
		return;
	/*
	 * A found row costs more to read than a missing one (its cells are
	 * copied and parsed). So every verification reads one of each: a known
	 * id's row and then an id that cannot exist, an unknown id's nothing
	 * and then a row that exists (app->decoy_key_id).
	 */
	struct store_key other;
	(void)store_key_get(app->store,
	                    st->store_rc == STORE_OK ? ABSENT_KEY_ID : app->decoy_key_id, &other);
	explicit_bzero(&other, sizeof other);
	metric_add(&m_verifications, 1);
	if (st->store_rc == STORE_ENOTFOUND) { /* the same bcrypt as a wrong secret */
		bcrypt_verify(secret, bcrypt_dummy_hash((int)app->cfg.auth_bcrypt_cost));
		return;
	}
	int64_t now = clock_now_ms();
	if (bcrypt_verify(secret, k->secret_hash) == 0)
		st->slot = KC_SLOT_CURRENT;
	else if (slot_hash(k, KC_SLOT_PREVIOUS, now) &&
	         bcrypt_verify(secret, k->prev_secret_hash) == 0)
		st->slot = KC_SLOT_PREVIOUS;
	else
		return;
	char hash[sizeof k->secret_hash];
	memcpy(hash, slot_hash(k, st->slot, now), sizeof hash);
	/*
	 * A refresh or invalidation since the read (a revocation, a rotation)
	 * makes the cache refuse the row, which may predate it: read it again
	 * and go on with that one if the secret's hash is still one of its own
	 * (no second bcrypt). After a few refusals in a row the last row read
	 * answers this request without being cached.
	 */
	for (int attempt = 0; attempt < 3; attempt++) {
		if (keycache_put_verified(app->keys, k, gen, st->slot, hash, st->mac))
			break;
		gen = keycache_generation(app->keys, st->parts.key_id);
		st->store_rc = store_key_get(app->store, st->parts.key_id, k);
		if (st->store_rc != STORE_OK || !find_slot(k, hash, now, &st->slot))
			goto out;
	}
	st->bcrypt_ok = true;
out:
	explicit_bzero(hash, sizeof hash);
}

static void verify_done(struct http_request *req)
{
	struct authn_state *st = state_of(req);
	if (st->store_rc != STORE_OK && st->store_rc != STORE_ENOTFOUND) {
		app_store_error(req, st->store_rc);
		finish(req);
		return;
	}
	if (!st->bcrypt_ok) {
		if (st->store_rc == STORE_OK) { /* a known key id, a wrong secret */
			const struct store_key *k = &st->result.key;
			req->log_org_id =
			    k->org_id[0] ? arena_strdup(&req->arena, k->org_id) : NULL;
			req->log_project_id =
			    k->project_id[0] ? arena_strdup(&req->arena, k->project_id) : NULL;
		}
		fail_credential(req);
		return;
	}
	after_verified(req);
}

/* 429 before any work: the address or the key id failed too often. */
static void too_many_failures(struct http_request *req, bool per_key, int64_t retry)
{
	char ra[24];
	metric_add(&m_refused, 1);
	note_refusal(req, "guard");
	snprintf(ra, sizeof ra, "%lld", (long long)retry);
	http_set_header(req, "Retry-After", ra);
	http_respond_problem(req, 429, "TOO_MANY_FAILED_ATTEMPTS",
	                     per_key ? "Too many failed authentication attempts for this key; "
	                               "retry later."
	                             : "Too many failed authentication attempts from this "
	                               "client; retry later.",
	                     NULL);
	finish(req);
}

static void check_cache(struct http_request *req)
{
	struct app *app = req->app;
	struct authn_state *st = state_of(req);
	int64_t now = clock_now_ms();
	st->touched_at = INT64_MIN / 2; /* unknown: ask keycache_touch_due */
	if (keycache_check(app->keys, st->parts.key_id, st->mac, now, &st->result.key,
	                   &st->touched_at) == KC_VERIFIED) {
		after_verified(req);
		return;
	}
	static pthread_once_t once = PTHREAD_ONCE_INIT;
	pthread_once(&once, register_metrics);
	st->touched_at = INT64_MIN / 2;
	int64_t retry_addr = 0, retry_key = 0;
	enum bfguard_verdict addr =
	    req->client_ip[0] ? bfguard_check(app->guard, req->client_ip, now, &retry_addr)
	                      : BF_CLEAR;
	enum bfguard_verdict key = bfguard_check(app->key_guard, st->parts.key_id, now, &retry_key);
	if (addr == BF_BLOCKED || key == BF_BLOCKED) {
		too_many_failures(req, addr != BF_BLOCKED,
		                  retry_addr > retry_key ? retry_addr : retry_key);
		return;
	}
	/*
	 * First verifications from addresses and of key ids with no recent
	 * failure go first: a flood of wrong secrets (for one key id, from
	 * however many addresses) waits in the low lane and cannot make a
	 * fresh key answer 503.
	 */
	enum workpool_lane lane =
	    addr == BF_CLEAR && key == BF_CLEAR ? WORKPOOL_NORMAL : WORKPOOL_LOW;
	if (http_defer_lane(req, app->verifier_pool, lane, verify_job, verify_done) < 0)
		overloaded(req);
}

static struct authn_state *start(struct http_request *req, const char *scope, http_handler_fn done)
{
	struct authn_state *st = arena_alloc(&req->arena, sizeof *st);
	memset(st, 0, sizeof *st);
	st->scope = scope;
	st->done = done;
	req->gateway = st;
	if (!req->on_complete) /* every request that reached authentication */
		req->on_complete = gateway_record_request;
	return st;
}

/* Check 1 on the key tok (tl bytes), then the rest of the machine. */
static void run_token(struct http_request *req, const char *tok, size_t tl)
{
	struct app *app = req->app;
	struct authn_state *st = state_of(req);
	if (keyfmt_parse(tok, tl, app->cfg.auth_key_prefix, &st->parts) < 0) {
		char named[KEYFMT_KEY_ID_LEN + 1];
		note_refusal(req, "bad_format");
		if (keyfmt_named_key_id(tok, tl, named) == 0)
			req->log_key_id = arena_strdup(&req->arena, named);
		fail_credential(req);
		return;
	}
	keycache_secret_mac(app->keys, st->parts.secret, strlen(st->parts.secret), st->mac);
	check_cache(req);
}

void authn_run(struct http_request *req, const char *scope, http_handler_fn done)
{
	start(req, scope, done);
	const char *h = http_header(req, "Authorization");
	if (!h) {
		unauthenticated(req);
		return;
	}
	size_t hl = strlen(h);
	if (hl < 7 || strncasecmp(h, "Bearer ", 7) != 0) {
		note_refusal(req, "bad_format");
		fail_credential(req);
		return;
	}
	const char *tok = h + 7;
	while (*tok == ' ')
		tok++;
	size_t tl = strlen(tok);
	while (tl && tok[tl - 1] == ' ')
		tl--;
	run_token(req, tok, tl);
}

void authn_run_key(struct http_request *req, const char *scope, const char *key, size_t len,
                   http_handler_fn done)
{
	start(req, scope, done);
	if (!key) {
		unauthenticated(req);
		return;
	}
	run_token(req, key, len);
}
