/*
 * secret_scanning.c: POST /v1/secret-scanning/github, GitHub's secret
 * scanning partner endpoint (docs/secret-scanning.md). No API key: the
 * request is authenticated by GitHub's ECDSA signature over the raw body,
 * checked against the key set the background tier stored (scankeys.h).
 * Each reported token that is one of our keys, well-formed with a good
 * checksum, naming a live key and carrying its secret, is handled once:
 * killed (or only notified, [secret_scanning] action), audited as
 * api_key.leak_reported, sent to the organisation by webhook and email.
 * The answer is GitHub's feedback array. A reported token is never logged
 * or stored: only its SHA-256.
 */
#include "api/api.h"

#include "app/killops.h"
#include "auth/keyfmt.h"
#include "auth/keys.h"
#include "core/clock.h"
#include "core/json.h"
#include "core/log.h"
#include "core/str.h"
#include "crypto/bcrypt.h"
#include "crypto/ecdsa.h"
#include "crypto/hash.h"
#include "delivery/scankeys.h"
#include "store/store_scanning.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

/** Most matches in one report (GitHub batches; the body limit bounds it too). */
#define SCAN_ENTRIES_MAX 1000
/** Longest token considered (ours are at most KEYFMT_MAX_LEN; others are hashed as sent). */
#define SCAN_TOKEN_MAX 1024
/** How long a report naming an unknown key id waits for the refreshed set. */
#define SCAN_KEY_WAIT_MS 5000
#define SCAN_KEY_POLL_MS 200
#define SCAN_ACTOR       "github_secret_scanning"
#define SCAN_REASON      "leak reported by GitHub secret scanning"

static void unauthorized(struct http_request *req, const char *why)
{
	http_respond_problem(req, 401, "INVALID_SIGNATURE", why, NULL);
}

static void sleep_ms(long ms)
{
	struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
	nanosleep(&ts, NULL);
}

/*
 * The signing key named by the request. When the stored set lacks it and a
 * fetch may happen now (none tried in the last min_gap_ms), ask for a
 * refresh and wait, bounded, for the key; when none may, answer at once, so
 * that reports with made-up key ids cannot hold control-pool threads for
 * more than one wait per gap. STORE_OK, STORE_ENOTFOUND, or a store error.
 */
static int signing_key(struct store *st, const char *id, int64_t min_gap_ms,
                       struct store_scan_key *k)
{
	int rc = store_scan_key_get(st, id, k);
	if (rc != STORE_ENOTFOUND)
		return rc;
	int64_t now = clock_now_ms(), fetched = -1, attempted = -1, requested = -1;
	rc = store_scan_state_get(st, &fetched, &attempted, &requested);
	if (rc != STORE_OK)
		return rc;
	if (attempted >= 0 && now - attempted < min_gap_ms)
		return STORE_ENOTFOUND;
	rc = store_scan_refresh_request(st, now);
	if (rc != STORE_OK)
		return rc;
	for (long waited = 0; waited < SCAN_KEY_WAIT_MS; waited += SCAN_KEY_POLL_MS) {
		sleep_ms(SCAN_KEY_POLL_MS);
		rc = store_scan_key_get(st, id, k);
		if (rc != STORE_ENOTFOUND)
			return rc;
	}
	return STORE_ENOTFOUND;
}

/* 0 when the request carries a valid signature by a published key; else responds, -1. */
static int verify_signature(struct http_request *req, struct store *st, int64_t min_gap_ms)
{
	const char *id = http_header(req, "Github-Public-Key-Identifier");
	const char *sig = http_header(req, "Github-Public-Key-Signature");
	if (!id || !sig || !scankeys_id_valid(id, strlen(id))) {
		unauthorized(req, "Github-Public-Key-Identifier and Github-Public-Key-Signature "
		                  "are required.");
		return -1;
	}
	struct store_scan_key k;
	int rc = signing_key(st, id, min_gap_ms, &k);
	if (rc == STORE_ENOTFOUND) {
		unauthorized(req, "The signing key is not one of GitHub's published keys.");
		return -1;
	}
	if (rc != STORE_OK) {
		http_respond_store_error(req, rc);
		return -1;
	}
	if (ecdsa_p256_verify(k.public_key, strlen(k.public_key), req->body.data, req->body.len,
	                      sig, strlen(sig)) != ECDSA_OK) {
		unauthorized(req, "The signature does not verify.");
		return -1;
	}
	return 0;
}

/* One reported match, as parsed. The token is borrowed from the parsed body. */
struct match {
	const char *token;
	size_t token_len;
	const char *type, *url, *source;
};

static bool opt_string(json_t *e, const char *name, size_t max, const char **out)
{
	json_t *v = json_object_get(e, name);
	*out = "";
	if (!v || json_is_null(v))
		return true;
	if (!json_is_string(v) || json_string_length(v) > max ||
	    strlen(json_string_value(v)) != json_string_length(v))
		return false;
	*out = json_string_value(v);
	return true;
}

/* 0 with m filled, or -1 with the field at fault in *field. */
static int parse_match(json_t *e, struct match *m, const char **field)
{
	json_t *t = json_object_get(e, "token");
	if (!json_is_object(e)) {
		*field = "";
		return -1;
	}
	*field = "token";
	if (!json_is_string(t) || json_string_length(t) == 0 ||
	    json_string_length(t) > SCAN_TOKEN_MAX)
		return -1;
	m->token = json_string_value(t);
	m->token_len = json_string_length(t);
	*field = "type";
	if (!opt_string(e, "type", STORE_SCAN_TYPE_MAX, &m->type))
		return -1;
	*field = "url";
	if (!opt_string(e, "url", STORE_SCAN_URL_MAX, &m->url))
		return -1;
	*field = "source";
	if (!opt_string(e, "source", STORE_SCAN_SOURCE_MAX, &m->source))
		return -1;
	return 0;
}

/* A live key whose secret (or rotation-grace previous secret) the token carries. */
static bool live_key_of(struct store *st, const struct api_key_parts *parts, int64_t now,
                        struct store_key *key)
{
	if (store_key_get(st, parts->key_id, key) != STORE_OK)
		return false;
	if (key->revoked_at >= 0 || (key->expires_at >= 0 && key->expires_at <= now) ||
	    strcmp(key->env, key_env_name(parts->env)) != 0)
		return false;
	if (bcrypt_verify(parts->secret, key->secret_hash) == 0)
		return true;
	return key->prev_secret_hash[0] && key->prev_expires_at > now &&
	       bcrypt_verify(parts->secret, key->prev_secret_hash) == 0;
}

/* The audit event and webhook message of a handled report, then the row. */
static int record(struct http_request *req, struct store *st, const struct store_key *key,
                  const struct store_leak_report *r)
{
	json_t *details =
	    json_pack("{s:s, s:s, s:s, s:s, s:s}", "reporter", "github", "url", r->url, "source",
	              r->source, "token_type", r->token_type, "action_taken", r->action);
	json_t *event = keys_event_data(key);
	json_t *more = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:o}", "reporter", "github",
	                         "url", r->url, "source", r->source, "token_type", r->token_type,
	                         "action_taken", r->action, "reason", SCAN_REASON, "request_id",
	                         req->request_id, "at", json_time(r->reported_at));
	json_object_update(event, more);
	json_decref(more);
	struct audit_input a = {
	    .org_id = key->org_id[0] ? key->org_id : NULL,
	    .actor_type = "system",
	    .actor_id = SCAN_ACTOR,
	    .action = "api_key.leak_reported",
	    .target_type = "api_key",
	    .target_id = key->id,
	    .request_id = req->request_id,
	    .details = details,
	    .event = key->org_id[0] ? event : NULL,
	    .event_project_id = key->project_id[0] ? key->project_id : NULL,
	};
	int rc = store_leak_report_insert(st, r, &a);
	json_decref(event);
	json_decref(details);
	return rc;
}

/*
 * Handle one match: its label ("true_positive" or "false_positive") in
 * *label, hash in hex. STORE_OK, or a store error (the whole request is
 * then answered 503 and GitHub retries; what was done is not done twice).
 */
static int handle(struct http_request *req, const struct match *m, const char **label,
                  char hex[2 * SHA256_LEN + 1])
{
	const struct secret_scanning_deps *d = req->route->data;
	uint8_t digest[SHA256_LEN];
	struct api_key_parts parts;
	struct store_key key;
	struct store_leak_report r;
	int64_t now = clock_now_ms();
	int rc = STORE_OK;

	sha256(m->token, m->token_len, digest);
	hex_encode(digest, sizeof digest, hex);
	*label = "false_positive";
	if (keyfmt_parse(m->token, m->token_len, d->key_prefix, &parts) < 0)
		return STORE_OK;
	if (store_leak_report_get(d->store, hex, &r) == STORE_OK) {
		*label = "true_positive"; /* handled before: nothing more */
		goto out;
	}
	if (!live_key_of(d->store, &parts, now, &key))
		goto out;
	bool kill = d->kill;
	if (kill) {
		struct kill_request k = {
		    .scope = "key",
		    .target_id = key.id,
		    .org_id = key.org_id[0] ? key.org_id : NULL,
		    .set_by = "root",
		    .actor_type = "system",
		    .actor_id = SCAN_ACTOR,
		    .reason = SCAN_REASON,
		    .request_id = req->request_id,
		};
		rc = killops_engage(d->store, &k);
		if (rc == STORE_ECONFLICT) /* already killed: the report is still recorded */
			rc = STORE_OK;
		if (rc != STORE_OK)
			goto out;
	}
	memset(&r, 0, sizeof r);
	snprintf(r.token_hash, sizeof r.token_hash, "%s", hex);
	snprintf(r.key_id, sizeof r.key_id, "%s", key.id);
	snprintf(r.org_id, sizeof r.org_id, "%s", key.org_id);
	str_copy(r.token_type, sizeof r.token_type, m->type, STORE_SCAN_TYPE_MAX);
	str_copy(r.source, sizeof r.source, m->source, STORE_SCAN_SOURCE_MAX);
	str_copy(r.url, sizeof r.url, m->url, STORE_SCAN_URL_MAX);
	snprintf(r.action, sizeof r.action, "%s", kill ? "kill" : "notify");
	r.reported_at = now;
	rc = record(req, d->store, &key, &r);
	if (rc == STORE_ECONFLICT) /* a concurrent report of the same token recorded it */
		rc = STORE_OK;
	if (rc == STORE_OK) {
		*label = "true_positive";
		log_event(LOG_WARN, "secret_scanning_leak", "key_id", key.id, "org_id", key.org_id,
		          "action", r.action, NULL);
	}
out:
	explicit_bzero(&parts, sizeof parts);
	explicit_bzero(&key, sizeof key);
	return rc;
}

static void report(struct http_request *req)
{
	const struct secret_scanning_deps *d = req->route->data;
	if (verify_signature(req, d->store, d->refresh_min_ms) < 0)
		return;
	json_error_t je;
	json_t *body = json_loadb(req->body.data ? req->body.data : "", req->body.len,
	                          JSON_REJECT_DUPLICATES, &je);
	if (!json_is_array(body) || json_array_size(body) > SCAN_ENTRIES_MAX) {
		char msg[96];
		snprintf(msg, sizeof msg, "The body must be a JSON array of at most %d matches.",
		         SCAN_ENTRIES_MAX);
		http_respond_problem(req, 400, "BAD_REQUEST", msg, NULL);
		json_decref(body);
		return;
	}
	size_t n = json_array_size(body);
	struct match *ms = arena_alloc(&req->arena, (n ? n : 1) * sizeof *ms);
	for (size_t i = 0; i < n; i++) {
		const char *field = "";
		if (parse_match(json_array_get(body, i), &ms[i], &field) < 0) {
			char path[48], msg[160];
			snprintf(path, sizeof path, "[%zu]%s%s", i, field[0] ? "." : "", field);
			snprintf(
			    msg, sizeof msg,
			    "Match %zu must be an object with a token of 1 to %d characters and "
			    "string type, url and source.",
			    i, SCAN_TOKEN_MAX);
			http_respond_problem(req, 400, "BAD_REQUEST", msg,
			                     json_pack("{s:s}", "field", path));
			json_decref(body);
			return;
		}
	}
	json_t *out = json_array();
	int rc = STORE_OK;
	for (size_t i = 0; i < n && rc == STORE_OK; i++) {
		const char *label;
		char hex[2 * SHA256_LEN + 1];
		rc = handle(req, &ms[i], &label, hex);
		json_array_append_new(out, json_pack("{s:s, s:s, s:s}", "token_hash", hex,
		                                     "token_type", ms[i].type, "label", label));
	}
	json_decref(body);
	if (rc != STORE_OK) {
		json_decref(out);
		http_respond_store_error(req, rc);
		return;
	}
	http_respond_json(req, 200, out);
}

void secret_scanning_routes(struct router *r, const struct secret_scanning_deps *d)
{
	router_add_with(r, "POST", "/v1/secret-scanning/github", report, ROUTE_BLOCKING, d);
}
