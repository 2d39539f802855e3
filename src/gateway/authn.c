/*
 * authn.c: checks 1 to 6, the rows every pipeline of pipeline.c shares:
 *
 *   1 credential   parse, shape, checksum; the cache of verified secrets
 *   2 guard        not verified yet: the address and the key id, else 429
 *   3 secret       not verified yet: one verifier-pool job reads the key row
 *                  and runs bcrypt (normal lane, or the low one after failures);
 *                  the row as issued (env, ingest or not), store outage grace
 *   4 kill_switch  global, organization, key: 503
 *   5 revoked      revoked, then expired: 401
 *   6 scope        403; the last-used time; authn_of is set
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
#include "gateway/pipeline.h"
#include "gateway/steps.h"
#include "policy/killswitch.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

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

static void wipe_secret(struct gw_authn *a)
{
	explicit_bzero(&a->parts, sizeof a->parts);
}

/* A refusal: the secret goes, nothing comes after. */
static enum gw_next refused(struct gw_request *g)
{
	wipe_secret(&g->authn);
	return GW_END;
}

/*
 * A refused attempt keeps, for the request log, why and the key id it
 * named (copied: the parsed parts are wiped before the log is written),
 * with that key's organisation and project when the store knows the id.
 * Never the address.
 */
static void note_refusal(struct gw_request *g, const char *why)
{
	struct http_request *req = g->req;
	g->log_refusal = why;
	if (!req->log_key_id && g->authn.parts.key_id[0])
		req->log_key_id = arena_strdup(&req->arena, g->authn.parts.key_id);
}

/* Every 401 carries the challenge (RFC 9110 section 15.5.2), whatever its code. */
static enum gw_next respond_401(struct gw_request *g, const char *code, const char *message)
{
	http_set_header(g->req, "WWW-Authenticate", "Bearer");
	http_respond_problem(g->req, 401, code, message, NULL);
	return refused(g);
}

static enum gw_next unauthenticated(struct gw_request *g)
{
	if (!g->log_refusal)
		note_refusal(g, "no_credential");
	return respond_401(g, "UNAUTHENTICATED", "A valid API key is required.");
}

/* A failed credential counts against the client address and the key id (when one was sent). */
static enum gw_next fail_credential(struct gw_request *g)
{
	const struct gateway_deps *d = g->deps;
	int64_t now = clock_now_ms();
	if (g->req->client_ip[0])
		bfguard_fail(d->guard, g->req->client_ip, now);
	if (g->authn.parts.key_id[0])
		bfguard_fail(d->key_guard, g->authn.parts.key_id, now);
	if (!g->log_refusal)
		note_refusal(g, "wrong_secret");
	return unauthenticated(g);
}

/*
 * While the store is unreachable, keys verified before the outage keep
 * working for [auth] stale_grace_seconds; after that every request gets 503
 * (a kill or revocation this node saw is kept either way: nothing is
 * dropped from the caches during an outage).
 */
static bool stale_grace_over(const struct gateway_deps *d)
{
	int64_t down = atomic_load_explicit(d->store_down_since, memory_order_relaxed);
	return down && clock_now_ms() - down > d->cfg->auth_stale_grace_seconds * 1000;
}

/* ---- check 1 ---- */

/* The key of g's credential into *tok, *tl; GW_NEXT, or the refusal. */
static enum gw_next find_key(struct gw_request *g, const char **tok, size_t *tl)
{
	struct gw_authn *a = &g->authn;
	if (a->cred == GW_CRED_NONE)
		return unauthenticated(g);
	if (a->cred == GW_CRED_GIVEN) {
		*tok = a->token;
		*tl = a->tlen;
		return GW_NEXT;
	}
	const char *h = http_header(g->req, "Authorization");
	if (!h)
		return unauthenticated(g);
	*tok = gw_bearer(h, tl);
	if (!*tok) {
		note_refusal(g, "bad_format");
		return fail_credential(g);
	}
	return GW_NEXT;
}

const char *gw_bearer(const char *h, size_t *len)
{
	if (strncasecmp(h, "Bearer ", 7) != 0)
		return NULL;
	const char *t = h + 7;
	while (*t == ' ')
		t++;
	size_t n = strlen(t);
	while (n && t[n - 1] == ' ')
		n--;
	*len = n;
	return t;
}

enum gw_next gw_credential(struct gw_request *g)
{
	const struct gateway_deps *d = g->deps;
	struct gw_authn *a = &g->authn;
	const char *tok = NULL;
	size_t tl = 0;
	if (find_key(g, &tok, &tl) != GW_NEXT)
		return GW_END;
	int rc = keyfmt_parse(tok, tl, d->cfg->auth_key_prefix, &a->parts);
	if (rc < 0) {
		char named[KEYFMT_KEY_ID_LEN + 1];
		note_refusal(g, "bad_format");
		if (keyfmt_named_key_id(tok, tl, named) == 0)
			g->req->log_key_id = arena_strdup(&g->req->arena, named);
	}
	if (a->cred == GW_CRED_GIVEN) /* a copy of the key: a->parts has what is needed */
		explicit_bzero(a->token, a->tlen);
	if (rc < 0)
		return fail_credential(g);
	keycache_secret_mac(d->keys, a->parts.secret, strlen(a->parts.secret), a->mac);
	/* A secret this node verified for the key's current hash skips 2 and 3's bcrypt. */
	a->touched_at = INT64_MIN / 2; /* unknown: ask keycache_touch_due */
	a->verified = keycache_check(d->keys, a->parts.key_id, a->mac, http_loop_now_ms(),
	                             &a->result.key, &a->touched_at) == KC_VERIFIED;
	if (!a->verified)
		a->touched_at = INT64_MIN / 2;
	return GW_NEXT;
}

/* ---- check 2 ---- */

/* 429 before any work: the address or the key id failed too often. */
static enum gw_next too_many_failures(struct gw_request *g, bool per_key, int64_t retry)
{
	char ra[24];
	metric_add(&m_refused, 1);
	note_refusal(g, "guard");
	snprintf(ra, sizeof ra, "%lld", (long long)retry);
	http_set_header(g->req, "Retry-After", ra);
	http_respond_problem(g->req, 429, "TOO_MANY_FAILED_ATTEMPTS",
	                     per_key ? "Too many failed authentication attempts for this key; "
	                               "retry later."
	                             : "Too many failed authentication attempts from this "
	                               "client; retry later.",
	                     NULL);
	return refused(g);
}

enum gw_next gw_guard(struct gw_request *g)
{
	const struct gateway_deps *d = g->deps;
	struct gw_authn *a = &g->authn;
	if (a->verified)
		return GW_NEXT;
	static pthread_once_t once = PTHREAD_ONCE_INIT;
	pthread_once(&once, register_metrics);
	int64_t now = clock_now_ms(), retry_addr = 0, retry_key = 0;
	const char *ip = g->req->client_ip;
	enum bfguard_verdict addr =
	    ip[0] ? bfguard_check(d->guard, ip, now, &retry_addr) : BF_CLEAR;
	enum bfguard_verdict key = bfguard_check(d->key_guard, a->parts.key_id, now, &retry_key);
	if (addr == BF_BLOCKED || key == BF_BLOCKED)
		return too_many_failures(g, addr != BF_BLOCKED,
		                         retry_addr > retry_key ? retry_addr : retry_key);
	/*
	 * First verifications from addresses and of key ids with no recent
	 * failure go first: a flood of wrong secrets (for one key id, from
	 * however many addresses) waits in the low lane and cannot make a
	 * fresh key answer 503.
	 */
	a->lane = addr == BF_CLEAR && key == BF_CLEAR ? WORKPOOL_NORMAL : WORKPOOL_LOW;
	return GW_NEXT;
}

/* ---- check 3 ---- */

/*
 * The rest of check 3 once the secret is known to be right, on the loop
 * (cached) or the verifier pool: only the key as issued, of the kind this
 * listener takes, while the store's outage grace lasts.
 */
static enum gw_next as_issued(struct gw_request *g)
{
	struct http_request *req = g->req;
	struct gw_authn *a = &g->authn;
	struct store_key *k = &a->result.key;
	/*
	 * Only the key as issued authenticates: the env in the presented string
	 * must be the key's own. Checked after the secret, so it tells nothing
	 * to someone who does not hold it.
	 */
	enum key_env env;
	if (key_env_parse(k->env, &env) < 0 || env != a->parts.env)
		return fail_credential(g);
	wipe_secret(a);
	/*
	 * Ingest keys (scope events:ingest, publishable: they ship inside apps)
	 * work on the ingest listener only, and only they work there. The other
	 * place answers as for any bad key, before the kill switches, so neither
	 * side learns that it holds a valid key of the other kind. Not a failed
	 * attempt for the guards: the secret was right.
	 */
	bool ingest_key = env != KEY_ENV_ROOT && keys_has_scope(k->scopes, SCOPE_INGEST);
	if (ingest_key != (strcmp(a->scope, SCOPE_INGEST) == 0))
		return unauthenticated(g);
	if (stale_grace_over(g->deps)) {
		http_respond_store_error(req, STORE_EUNAVAILABLE);
		return refused(g);
	}
	a->result.root = strcmp(k->env, "root") == 0;
	req->log_key_id = k->id;
	req->log_org_id = k->org_id[0] ? k->org_id : NULL;
	req->log_project_id = k->project_id[0] ? k->project_id : NULL;
	return GW_NEXT;
}

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

/*
 * Read the key row and run bcrypt (verifier pool): the store's code, and
 * in *ok whether the secret matched a hash of the row (then cached).
 */
static int read_and_verify(struct gw_request *g, bool *ok)
{
	const struct gateway_deps *d = g->deps;
	struct gw_authn *a = &g->authn;
	struct store_key *k = &a->result.key;
	const char *secret = a->parts.secret;
	*ok = false;
	uint64_t gen = keycache_generation(d->keys, a->parts.key_id);
	int rc = store_key_get(d->store, a->parts.key_id, k);
	if (rc != STORE_OK && rc != STORE_ENOTFOUND)
		return rc;
	/*
	 * A found row costs more to read than a missing one (its cells are
	 * copied and parsed). So every verification reads one of each: a known
	 * id's row and then an id that cannot exist, an unknown id's nothing
	 * and then a row that exists (the deps' decoy_key_id).
	 */
	struct store_key other;
	(void)store_key_get(d->store, rc == STORE_OK ? ABSENT_KEY_ID : d->decoy_key_id, &other);
	explicit_bzero(&other, sizeof other);
	metric_add(&m_verifications, 1);
	if (rc == STORE_ENOTFOUND) { /* the same bcrypt as a wrong secret */
		bcrypt_verify(secret, bcrypt_dummy_hash((int)d->cfg->auth_bcrypt_cost));
		return rc;
	}
	int64_t now = clock_now_ms();
	if (bcrypt_verify(secret, k->secret_hash) == 0)
		a->slot = KC_SLOT_CURRENT;
	else if (slot_hash(k, KC_SLOT_PREVIOUS, now) &&
	         bcrypt_verify(secret, k->prev_secret_hash) == 0)
		a->slot = KC_SLOT_PREVIOUS;
	else
		return rc;
	char hash[sizeof k->secret_hash];
	memcpy(hash, slot_hash(k, a->slot, now), sizeof hash);
	/*
	 * A refresh or invalidation since the read (a revocation, a rotation)
	 * makes the cache refuse the row, which may predate it: read it again
	 * and go on with that one if the secret's hash is still one of its own
	 * (no second bcrypt). After a few refusals in a row the last row read
	 * answers this request without being cached.
	 */
	for (int attempt = 0; attempt < 3; attempt++) {
		if (keycache_put_verified(d->keys, k, gen, a->slot, hash, a->mac))
			break;
		gen = keycache_generation(d->keys, a->parts.key_id);
		rc = store_key_get(d->store, a->parts.key_id, k);
		if (rc != STORE_OK || !find_slot(k, hash, now, &a->slot))
			goto out;
	}
	*ok = true;
out:
	explicit_bzero(hash, sizeof hash);
	return rc;
}

/* Check 3's job on the verifier pool: read, bcrypt, and the verdict. */
static enum gw_next secret_job(struct gw_request *g)
{
	struct http_request *req = g->req;
	bool ok;
	int rc = read_and_verify(g, &ok);
	if (rc != STORE_OK && rc != STORE_ENOTFOUND) {
		http_respond_store_error(req, rc);
		return refused(g);
	}
	if (!ok) {
		if (rc == STORE_OK) { /* a known key id, a wrong secret */
			const struct store_key *k = &g->authn.result.key;
			req->log_org_id =
			    k->org_id[0] ? arena_strdup(&req->arena, k->org_id) : NULL;
			req->log_project_id =
			    k->project_id[0] ? arena_strdup(&req->arena, k->project_id) : NULL;
		}
		return fail_credential(g);
	}
	return as_issued(g);
}

enum gw_next gw_secret(struct gw_request *g)
{
	if (g->authn.verified)
		return as_issued(g);
	if (gw_defer(g, g->deps->verifier_pool, g->authn.lane, secret_job) == 0)
		return GW_WAIT;
	http_set_header(g->req, "Retry-After", "1");
	http_respond_problem(g->req, 503, "OVERLOADED",
	                     "Too many verifications are waiting; retry shortly.", NULL);
	return refused(g);
}

/* ---- checks 4 to 6 ---- */

enum gw_next gw_kill(struct gw_request *g)
{
	struct gw_authn *a = &g->authn;
	const struct store_key *k = &a->result.key;
	struct store_kill kill;
	enum kill_scope ks = killset_check(g->deps->kills, k->org_id, k->id, a->result.root, &kill);
	if (ks == KILL_NONE)
		return GW_NEXT;
	static const char *const msgs[] = {
	    [KILL_GLOBAL] = "All API traffic has been stopped by a global kill switch.",
	    [KILL_ORG] = "This organization's API access has been stopped by a kill switch.",
	    [KILL_KEY] = "This API key has been stopped by a kill switch.",
	};
	note_refusal(g, "killed");
	http_respond_problem(g->req, 503, "KILL_SWITCH", msgs[ks],
	                     json_pack("{s:s}", "scope", kill_scope_name(ks)));
	return GW_END;
}

enum gw_next gw_revoked(struct gw_request *g)
{
	const struct store_key *k = &g->authn.result.key;
	if (k->revoked_at >= 0) {
		note_refusal(g, "revoked");
		return respond_401(g, "REVOKED", "This API key has been revoked.");
	}
	if (k->expires_at >= 0 && http_loop_now_ms() >= k->expires_at) {
		note_refusal(g, "expired");
		return respond_401(g, "EXPIRED", "This API key has expired.");
	}
	return GW_NEXT;
}

enum gw_next gw_scope(struct gw_request *g)
{
	const struct gateway_deps *d = g->deps;
	struct gw_authn *a = &g->authn;
	const struct store_key *k = &a->result.key;
	bool allowed;
	if (strcmp(a->scope, SCOPE_ROOT) == 0)
		allowed = a->result.root;
	else if (a->result.root)
		allowed = strcmp(a->scope, "gateway") != 0; /* operators do not call the upstream */
	else
		allowed = keys_has_scope(k->scopes, a->scope);
	if (!allowed) {
		note_refusal(g, "forbidden");
		http_respond_problem(g->req, 403, "FORBIDDEN",
		                     "This API key lacks the scope this operation needs.",
		                     json_pack("{s:s}", "required_scope", a->scope));
		return GW_END;
	}
	/* touched_at spares the second cache lookup on all but one request a minute. */
	int64_t now = http_loop_now_ms();
	if (now - a->touched_at >= KEYCACHE_TOUCH_INTERVAL_MS &&
	    keycache_touch_due(d->keys, k->id, now))
		last_used_record(d->last_used, k->id, now);
	a->ok = true;
	return GW_NEXT;
}
