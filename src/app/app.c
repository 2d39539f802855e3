/*
 * app.c: wiring of one running instance (see app.h): open the tiers, start
 * the pools and background workers, and take it all down again in reverse
 * order. The layers above (the routes of api/ and gateway/, the gateway's
 * request-log writer) are added by cli/serve.c, so app/ includes nothing of
 * theirs.
 */
#include "app/app.h"

#include "app/changes.h"
#include "auth/bfguard.h"
#include "auth/keycache.h"
#include "auth/last_used.h"
#include "core/log.h"
#include "crypto/bcrypt.h"
#include "ingest/geoip.h"
#include "http/request.h"
#include "http/upstream.h"
#include "policy/killswitch.h"
#include "policy/orgcache.h"

#include <stdio.h>
#include <string.h>
#include <unistd.h>

int app_open(struct app *app, const char *config_path, char *err, size_t cap)
{
	memset(app, 0, sizeof *app);
	if (config_load(&app->cfg, config_path, err, cap) < 0)
		return -2;
	log_setup((enum log_level)log_level_parse(app->cfg.log_level),
	          strcmp(app->cfg.log_format, "json") == 0);
	if (app->cfg.auth_bcrypt_cost < 12)
		log_warn("[auth] bcrypt_cost is %lld; below 12 is too weak for production",
		         (long long)app->cfg.auth_bcrypt_cost);
	char msg[512];
	struct store_options so = {.pool_size = (int)app->cfg.store_pool_size,
	                           .statement_timeout_ms = app->cfg.store_statement_timeout_ms};
	if (store_open_with(app->cfg.store_url, &so, &app->store, msg, sizeof msg) != STORE_OK) {
		snprintf(err, cap, "store: %s", msg);
		return -1;
	}
	int applied = 0;
	if (store_migrate(app->store, &applied) != STORE_OK) {
		snprintf(err, cap, "store: migrations failed");
		return -1;
	}
	if (applied)
		log_info("applied %d migration(s)", applied);
	if (kv_open(app->cfg.kv_url, &app->kv) != KV_OK) {
		/* The URL may carry a password: name only the setting. */
		snprintf(err, cap, "kv: cannot open [kv] url");
		return -1;
	}
	const struct config *c = &app->cfg;
	/*
	 * An in-flight claim lives only as long as the request can: a node that
	 * dies mid-request must not leave the key answering 409 for a day.
	 * Completion stores the response for the full ttl_seconds.
	 */
	int64_t longest_ms = c->upstream_timeout_ms;
	for (size_t i = 0; i < c->n_routes; i++)
		if (c->routes[i].timeout_ms > longest_ms)
			longest_ms = c->routes[i].timeout_ms;
	int64_t claim_s = longest_ms / 1000 + 60;
	app->idem_claim_s =
	    (int)(claim_s < c->idempotency_ttl_seconds ? claim_s : c->idempotency_ttl_seconds);
	app->control_pool = workpool_create("control", 4, 1024);
	app->lookup_pool = workpool_create("lookup", 2, 4096);
	if (kv_remote(app->kv))
		app->kv_pool = workpool_create("kv", 8, 8192);
	/* Half the cores by default: bcrypt floods must leave CPU for cached keys. */
	int verifiers = (int)c->auth_verifier_threads;
	if (verifiers == 0) {
		long cores = sysconf(_SC_NPROCESSORS_ONLN);
		verifiers = cores > 1 ? (int)(cores / 2) : 1;
	}
	app->verifier_pool = workpool_create("verify", verifiers, (size_t)c->auth_verifier_queue);
	app->keys = keycache_create(100000);
	app->kills = killset_create();
	app->orgs = orgcache_create(4096);
	app->guard =
	    bfguard_create(c->auth_failed_attempts_max, c->auth_failed_attempts_window_s, 65536);
	app->key_guard = bfguard_create(c->auth_failed_attempts_per_key_max,
	                                c->auth_failed_attempts_window_s, 65536);
	app->last_used = last_used_start(app->store, 65536, 2000);
	/* Compute the dummy hash now, not on the first unknown key id. */
	bcrypt_dummy_hash((int)c->auth_bcrypt_cost);
	/*
	 * A key row that exists (the first operator key: rows are never
	 * deleted), read in place of the missing row of an unknown key id so
	 * that known and unknown ids cost the same store work (authn.c). None
	 * yet (an empty store): unknown ids read one row less until a restart.
	 */
	struct store_key *first = NULL;
	int n_first = 0;
	if (store_key_list(app->store, "", NULL, NULL, 1, &first, &n_first) == STORE_OK &&
	    n_first == 1)
		memcpy(app->decoy_key_id, first[0].id, sizeof app->decoy_key_id);
	if (first)
		explicit_bzero(first, (size_t)n_first * sizeof *first);
	free(first);
	if (c->geoip_database[0]) {
		app->geoip = geoip_open(c->geoip_database, msg, sizeof msg);
		if (!app->geoip) {
			snprintf(err, cap, "geoip: %s", msg);
			return -1;
		}
	}
	upstream_prepare(c); /* resolve upstream host names now, never on a worker loop */
	if (changes_start(app) < 0) {
		snprintf(err, cap, "store: cannot load the kill switches");
		return -1;
	}
	return 0;
}

void app_stop_pools(struct app *app)
{
	workpool_destroy(app->control_pool);
	workpool_destroy(app->lookup_pool);
	workpool_destroy(app->kv_pool);
	workpool_destroy(app->verifier_pool);
	app->control_pool = app->lookup_pool = app->kv_pool = app->verifier_pool = NULL;
}

void app_close(struct app *app)
{
	/* First: queued jobs still use the store, the caches and the geo-IP database. */
	app_stop_pools(app);
	changes_stop(app);
	upstream_shutdown();
	geoip_close(app->geoip);
	app->geoip = NULL;
	last_used_stop(app->last_used);
	app->last_used = NULL;
	keycache_destroy(app->keys);
	killset_destroy(app->kills);
	orgcache_destroy(app->orgs);
	bfguard_destroy(app->guard);
	bfguard_destroy(app->key_guard);
	app->keys = NULL;
	app->kills = NULL;
	app->orgs = NULL;
	app->guard = app->key_guard = NULL;
	kv_close(app->kv);
	app->kv = NULL;
	store_close(app->store);
	app->store = NULL;
	config_free(&app->cfg);
}
