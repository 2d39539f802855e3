/*
 * app.h: one running Portcullis instance: the configuration and every
 * long-lived component the handlers share (store, kv, pools, caches,
 * background workers). Created by `portcullis serve`, which gives each
 * handler group only the parts it uses when it registers its routes, and
 * the gateway its struct gateway_deps (docs/architecture.md "How modules get
 * their dependencies"); no handler reaches it from a request.
 */
#ifndef PORTCULLIS_APP_APP_H
#define PORTCULLIS_APP_APP_H

#include "core/config.h"
#include "core/workpool.h"
#include "http/router.h"
#include "kv/kv.h"
#include "store/store.h"

struct http_server;
struct keycache;
struct killset;
struct orgcache;
struct bfguard;
struct reqlog;
struct geoip;
struct last_used;
struct changefeed;
struct console;
struct oidc_providers;

struct app {
	struct config cfg;
	struct store *store;
	struct kv *kv;
	struct workpool *control_pool;  /* ROUTE_BLOCKING handlers */
	struct workpool *verifier_pool; /* bcrypt verifications */
	struct workpool *lookup_pool;   /* key-cache misses (store reads) */
	struct workpool *kv_pool;       /* rate-limit and idempotency calls to a remote kv */
	struct keycache *keys;
	struct killset *kills;
	struct orgcache *orgs;
	struct bfguard *guard;               /* failed verifications per client address */
	struct bfguard *key_guard;           /* failed verifications per key id */
	char decoy_key_id[STORE_ID_LEN + 1]; /* an existing key row ("" if none): see authn.c */
	struct reqlog *reqlog; /* the gateway's writer: started and stopped by cli/serve.c */
	struct geoip *geoip;
	struct last_used *last_used;
	struct changefeed *feed;
	struct router router;
	struct router ingest_router;  /* the ingest listener's routes ([ingest] listen) */
	struct router console_router; /* the console listener's routes ([console] listen) */
	struct console *console;      /* console/console.h: cli/serve.c creates and frees it */
	struct oidc_providers
	    *oidc; /* console/oidc.h, [oidc.NAME]: cli/serve.c opens and frees it */
	/* The ingest plane's group commit (ingest/commit.h): cli/serve.c starts it with the
	 * listener. */
	struct ingest_commit *ingest_commit;
	struct http_server *server;
	/* How long an in-flight idempotency claim lives: the longest upstream timeout + 60 s. */
	int idem_claim_s;
	/* When the poller first failed to reach the store (0: reachable). */
	_Atomic int64_t store_down_since;
};

/** Open the store (and run migrations) and the kv tier; start pools and background work. */
int app_open(struct app *app, const char *config_path, char *err, size_t cap);
/**
 * Run every job queued on the pools and stop them (idempotent). Jobs resume
 * their requests on the HTTP workers when they end, so this comes after the
 * server stopped running and before http_server_destroy frees the workers.
 */
void app_stop_pools(struct app *app);
/**
 * Stop background work (flushing queues; app_stop_pools too) and free
 * everything. app->reqlog must be stopped before (it writes to the store).
 */
void app_close(struct app *app);

#endif
