/*
 * kv.h: the shared-state tier. Rate-limit state (GCRA), idempotency records
 * and change notices live here, never in the primary database.
 *
 * Two backends behind one const table of function pointers: kv_memory.c (one
 * node, in process) and kv_redis.c (many nodes). Callers use the kv_* inline
 * wrappers and never ask which backend they have.
 *
 * Every function returns 0 on success or a negative KV_E* code. All functions
 * are safe to call from several threads at once.
 */
#ifndef PORTCULLIS_KV_KV_H
#define PORTCULLIS_KV_KV_H

#include <stddef.h>
#include <stdint.h>

#include "policy/gcra.h"

enum {
	KV_OK = 0,
	KV_EUNAVAILABLE = -1, /* backend unreachable or failed: caller decides fail-open/closed */
	KV_EINVAL = -2,       /* bad argument or URL */
};

/** Outcome of kv_idem_claim. */
enum kv_idem_state {
	KV_IDEM_CLAIMED = 0, /* no record existed: the caller now owns the key and must run */
	KV_IDEM_IN_FLIGHT,   /* claimed by another request that has not finished */
	KV_IDEM_DONE,        /* finished: the stored response is in the record */
};

/** A stored idempotency record (owned by the caller after a claim; free with kv_idem_record_clear). */
struct kv_idem_record {
	enum kv_idem_state state;
	char fingerprint[65]; /* lowercase hex SHA-256 of method, path, body: see policy/idempotency.h */
	int status;           /* HTTP status of the stored response (state DONE) */
	char *content_type;   /* may be NULL */
	char *body;           /* may be NULL; body_len bytes */
	size_t body_len;
};

/** Called for every change notice received (on a background thread). */
typedef void (*kv_notice_fn)(const char *message, void *arg);

struct kv;

struct kv_backend {
	const char *scheme; /* "memory", "redis" */
	int (*open)(const char *url, struct kv **out);
	void (*close)(struct kv *kv);
	int (*ping)(struct kv *kv);
	/*
	 * One atomic GCRA step for key (see gcra.h). now_ms is used by the
	 * memory backend; the Redis backend uses the server's clock so all
	 * nodes agree. quantity 0 is a peek.
	 */
	int (*gcra)(struct kv *kv, const char *key, const struct gcra_params *params, int64_t now_ms,
		    int64_t quantity, struct gcra_result *out);
	/*
	 * Atomically claim key for a request with this fingerprint (SET NX
	 * semantics) with a TTL. On KV_OK, *out says whether the claim was
	 * won (CLAIMED) or what already exists (IN_FLIGHT or DONE, with the
	 * stored fingerprint and, for DONE, the response).
	 */
	int (*idem_claim)(struct kv *kv, const char *key, const char *fingerprint, int ttl_s,
			  struct kv_idem_record *out);
	/* Store the finished response for a claimed key (keeps the TTL). */
	int (*idem_complete)(struct kv *kv, const char *key, const char *fingerprint, int status,
			     const char *content_type, const char *body, size_t body_len, int ttl_s);
	/* Drop a claim (the request ended without a response worth keeping). */
	int (*idem_release)(struct kv *kv, const char *key);
	/* Publish a change notice to every node (including this one). */
	int (*publish)(struct kv *kv, const char *message);
	/*
	 * Start delivering notices to fn on a background thread owned by the
	 * backend (stopped by close). Only one subscriber per kv.
	 */
	int (*subscribe)(struct kv *kv, kv_notice_fn fn, void *arg);
};

struct kv {
	const struct kv_backend *backend;
};

/** Open the backend named by url's scheme: "memory://" or "redis://host:port/db". */
int kv_open(const char *url, struct kv **out);

static inline void kv_close(struct kv *kv)
{
	if (kv)
		kv->backend->close(kv);
}
static inline int kv_ping(struct kv *kv)
{
	return kv->backend->ping(kv);
}
static inline int kv_gcra(struct kv *kv, const char *key, const struct gcra_params *p,
			  int64_t now_ms, int64_t quantity, struct gcra_result *out)
{
	return kv->backend->gcra(kv, key, p, now_ms, quantity, out);
}
static inline int kv_idem_claim(struct kv *kv, const char *key, const char *fingerprint, int ttl_s,
				struct kv_idem_record *out)
{
	return kv->backend->idem_claim(kv, key, fingerprint, ttl_s, out);
}
static inline int kv_idem_complete(struct kv *kv, const char *key, const char *fingerprint,
				   int status, const char *content_type, const char *body,
				   size_t body_len, int ttl_s)
{
	return kv->backend->idem_complete(kv, key, fingerprint, status, content_type, body,
					  body_len, ttl_s);
}
static inline int kv_idem_release(struct kv *kv, const char *key)
{
	return kv->backend->idem_release(kv, key);
}
static inline int kv_publish(struct kv *kv, const char *message)
{
	return kv->backend->publish(kv, message);
}
static inline int kv_subscribe(struct kv *kv, kv_notice_fn fn, void *arg)
{
	return kv->backend->subscribe(kv, fn, arg);
}

/** Free what a claim put in rec (content_type, body). */
void kv_idem_record_clear(struct kv_idem_record *rec);

#endif
