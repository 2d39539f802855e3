/*
 * kv.h: the shared-state tier. Rate-limit state (GCRA), idempotency records
 * and change notices live here, never in the primary database.
 *
 * Two backends behind one const table of function pointers: kv_memory.c (one
 * node, in process) and kv_redis.c (many nodes). Callers use the kv_* inline
 * wrappers and never ask which backend they have.
 *
 * Every function returns 0 on success or a negative KV_E* code. All functions
 * are safe to call from several threads at once, except kv_close, which must
 * be the last call on a handle. Every record expires: nothing here grows
 * without bound.
 */
#ifndef PORTCULLIS_KV_KV_H
#define PORTCULLIS_KV_KV_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kv/gcra.h"

enum {
	KV_OK = 0,
	KV_EUNAVAILABLE =
	    -1,         /* backend unreachable, failed or full: caller decides fail-open/closed */
	KV_EINVAL = -2, /* bad argument or URL, or a key holding the other kind of record */
	KV_ECONFLICT = -3, /* idem_complete: the record now belongs to another request */
};

/* Bounds on arguments; larger ones give KV_EINVAL. */
#define KV_URL_MAX               1024
#define KV_KEY_MAX               512                   /* bytes of a key, without the NUL */
#define KV_TTL_MAX_S             (30 * 86400)          /* idempotency record lifetime */
#define KV_IDEM_BODY_MAX         (16u * 1024u * 1024u) /* stored response body */
#define KV_IDEM_CONTENT_TYPE_MAX 255
#define KV_NOTICE_MAX            1024 /* bytes of a notice, without the NUL */

/**
 * The notice a subscriber receives when notices may have been lost (the
 * Redis subscription dropped and came back): drop every cache that notices
 * keep fresh. Never publish it yourself.
 */
#define KV_NOTICE_RESYNC "*"

/** Outcome of kv_idem_claim. */
enum kv_idem_state {
	KV_IDEM_CLAIMED = 0, /* no record existed: the caller now owns the key and must run */
	KV_IDEM_IN_FLIGHT,   /* claimed by another request that has not finished */
	KV_IDEM_DONE,        /* finished: the stored response is in the record */
};

/**
 * A stored idempotency record (owned by the caller after a claim; free with
 * kv_idem_record_clear). Compare fingerprint with the request's own to tell
 * a replay (same) from a reused key (different).
 */
struct kv_idem_record {
	enum kv_idem_state state;
	char fingerprint[65]; /* lowercase hex SHA-256 of method, path, body: see
	                         policy/idempotency.h */
	int status;           /* HTTP status of the stored response (state DONE) */
	char *content_type;   /* may be NULL; NUL-terminated */
	char *body;           /* NULL when body_len is 0; else body_len bytes plus a NUL */
	size_t body_len;
};

/** Called for every change notice received (on a background thread). */
typedef void (*kv_notice_fn)(const char *message, void *arg);

struct kv;

struct kv_backend {
	const char *scheme; /* "memory", "redis" */
	/* Calls wait on the network: keep them off the worker loops (kv_remote). */
	bool remote;
	int (*open)(const char *url, struct kv **out);
	void (*close)(struct kv *kv);
	int (*ping)(struct kv *kv);
	/*
	 * One atomic GCRA step for key (see gcra.h). now_ms is used by the
	 * memory backend; the Redis backend uses the server's clock so all
	 * nodes agree. quantity 0 is a peek. Invalid params (gcra_params_valid),
	 * quantity < 0 or now_ms < 0 give KV_EINVAL.
	 */
	int (*gcra)(struct kv *kv, const char *key, const struct gcra_params *params,
	            int64_t now_ms, int64_t quantity, struct gcra_result *out);
	/*
	 * Atomically claim key for a request with this fingerprint (SET NX
	 * semantics) with a TTL of ttl_s (1..KV_TTL_MAX_S). On KV_OK, *out says
	 * whether the claim was won (CLAIMED, with the given fingerprint) or what
	 * already exists (IN_FLIGHT or DONE, with the stored fingerprint and, for
	 * DONE, the response). On error *out is empty (safe to clear).
	 */
	int (*idem_claim)(struct kv *kv, const char *key, const char *fingerprint, int ttl_s,
	                  struct kv_idem_record *out);
	/*
	 * Store the finished response for a claimed key; the record then lives
	 * ttl_s from now. Also stores it when the claim has vanished (expired,
	 * or a Redis restart). KV_ECONFLICT when the key now holds another
	 * fingerprint or another finished response; KV_OK again if it already
	 * holds a finished response with this fingerprint. body_len up to
	 * KV_IDEM_BODY_MAX; content_type (may be NULL) printable ASCII up to
	 * KV_IDEM_CONTENT_TYPE_MAX. On failure the caller should idem_release.
	 */
	int (*idem_complete)(struct kv *kv, const char *key, const char *fingerprint, int status,
	                     const char *content_type, const char *body, size_t body_len,
	                     int ttl_s);
	/*
	 * Drop a claim (the request ended without a response worth keeping).
	 * Only an in-flight record is removed; a finished one stays.
	 */
	int (*idem_release)(struct kv *kv, const char *key);
	/* Publish a change notice (NUL-free text, KV_NOTICE_MAX) to every node (including this
	 * one). */
	int (*publish)(struct kv *kv, const char *message);
	/*
	 * Start delivering notices to fn on a background thread owned by the
	 * backend (stopped by close). Only one subscriber per kv (KV_EINVAL for
	 * a second). fn may receive KV_NOTICE_RESYNC.
	 */
	int (*subscribe)(struct kv *kv, kv_notice_fn fn, void *arg);
};

struct kv {
	const struct kv_backend *backend;
};

/**
 * Open the backend named by url's scheme:
 *   "memory://[?max_entries=N&max_bytes=N]"  (see kv_memory.c for the caps)
 *   "redis://[[user]:password@]host[:port][/db]"
 * Opening Redis does not contact the server (start-up and /readyz use
 * kv_ping). KV_EINVAL for an unknown scheme or a malformed URL. The handle
 * is freed by kv_close.
 */
int kv_open(const char *url, struct kv **out);

/** True when calls do network I/O (run them on a pool, not a worker loop). */
static inline bool kv_remote(const struct kv *kv)
{
	return kv->backend->remote;
}

/** Stop background threads and free the handle. NULL is a no-op. */
static inline void kv_close(struct kv *kv)
{
	if (kv)
		kv->backend->close(kv);
}
/** 0 when the backend answers, else KV_EUNAVAILABLE. */
static inline int kv_ping(struct kv *kv)
{
	return kv->backend->ping(kv);
}
/** See kv_backend.gcra. */
static inline int kv_gcra(struct kv *kv, const char *key, const struct gcra_params *p,
                          int64_t now_ms, int64_t quantity, struct gcra_result *out)
{
	return kv->backend->gcra(kv, key, p, now_ms, quantity, out);
}
/** See kv_backend.idem_claim. */
static inline int kv_idem_claim(struct kv *kv, const char *key, const char *fingerprint, int ttl_s,
                                struct kv_idem_record *out)
{
	return kv->backend->idem_claim(kv, key, fingerprint, ttl_s, out);
}
/** See kv_backend.idem_complete. */
static inline int kv_idem_complete(struct kv *kv, const char *key, const char *fingerprint,
                                   int status, const char *content_type, const char *body,
                                   size_t body_len, int ttl_s)
{
	return kv->backend->idem_complete(kv, key, fingerprint, status, content_type, body,
	                                  body_len, ttl_s);
}
/** See kv_backend.idem_release. */
static inline int kv_idem_release(struct kv *kv, const char *key)
{
	return kv->backend->idem_release(kv, key);
}
/** See kv_backend.publish. */
static inline int kv_publish(struct kv *kv, const char *message)
{
	return kv->backend->publish(kv, message);
}
/** See kv_backend.subscribe. */
static inline int kv_subscribe(struct kv *kv, kv_notice_fn fn, void *arg)
{
	return kv->backend->subscribe(kv, fn, arg);
}

/** Free what a claim put in rec (content_type, body) and empty it. NULL is a no-op. */
void kv_idem_record_clear(struct kv_idem_record *rec);

#endif
