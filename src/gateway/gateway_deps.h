/*
 * gateway_deps.h: what the data plane uses of the running instance, as
 * typed pointers (docs/architecture.md, "How modules get their
 * dependencies"). cli/serve.c fills one struct gateway_deps once the
 * instance is open and hands it to every HTTP worker (gateway_worker_init);
 * each pipeline context keeps a pointer to it (gw_request.deps). Nothing in
 * src/gateway/ sees the instance itself (app/app.h): scripts/layers.py checks that.
 *
 * Everything pointed to outlives the HTTP server: the struct is read by the
 * worker loops and the pool threads without a lock and never changes while
 * they run.
 */
#ifndef PORTCULLIS_GATEWAY_GATEWAY_DEPS_H
#define PORTCULLIS_GATEWAY_GATEWAY_DEPS_H

#include <stdint.h>

#include "core/config.h"
#include "core/workpool.h"
#include "kv/kv.h"
#include "store/store.h"

struct bfguard;
struct geoip;
struct ingest_commit;
struct keycache;
struct killset;
struct last_used;
struct orgcache;
struct reqlog;

struct gateway_deps {
	const struct config *cfg;
	struct store *store;
	struct kv *kv;
	struct workpool *verifier_pool; /* check 3's bcrypt (and the key row read before it) */
	struct workpool *lookup_pool;   /* check 7's organisation row on a cache miss */
	struct workpool *kv_pool;       /* rate-limit and idempotency calls to a remote kv */
	struct workpool *control_pool;  /* the ingest listener's body parse */
	struct keycache *keys;          /* checks 1 to 3, the last-used touch */
	struct killset *kills;          /* check 4 */
	struct orgcache *orgs;          /* check 7's organisation rows */
	struct bfguard *guard;          /* failed verifications per client address */
	struct bfguard *key_guard;      /* failed verifications per key id */
	const char *decoy_key_id;       /* an existing key row ("" if none): see authn.c */
	/* When the poller first failed to reach the store (0: reachable); see authn.c. */
	const _Atomic int64_t *store_down_since;
	struct last_used *last_used;
	struct reqlog *reqlog;               /* the request-log writer; NULL writes no rows */
	struct geoip *geoip;                 /* the request log's and the events' region */
	struct ingest_commit *ingest_commit; /* the ingest listener's group commit */
	int idem_claim_s;                    /* how long an in-flight idempotency claim lives */
};

#endif
