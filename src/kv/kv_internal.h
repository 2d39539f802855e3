/*
 * kv_internal.h: what the kv backends share and callers never see: the
 * backend tables that kv_open dispatches to and the argument checks every
 * backend applies the same way.
 */
#ifndef PORTCULLIS_KV_KV_INTERNAL_H
#define PORTCULLIS_KV_KV_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kv/kv.h"

/** The in-process backend (kv_memory.c). */
extern const struct kv_backend kv_memory_backend;
/** The Redis backend (kv_redis.c). */
extern const struct kv_backend kv_redis_backend;

/** True for a NUL-terminated key of 1..KV_KEY_MAX bytes. */
bool kv_key_ok(const char *key);
/** True for exactly 64 lower-case hex digits. */
bool kv_fingerprint_ok(const char *fp);
/** True for a notice of 1..KV_NOTICE_MAX bytes other than KV_NOTICE_RESYNC. */
bool kv_notice_ok(const char *message);
/** KV_OK or KV_EINVAL: the checks of kv_backend.gcra. */
int kv_check_gcra(const char *key, const struct gcra_params *p, int64_t now_ms, int64_t quantity,
                  const struct gcra_result *out);
/**
 * KV_OK or KV_EINVAL: the checks of kv_backend.idem_claim. out, when not
 * NULL, is zeroed first, so a refused claim leaves it empty.
 */
int kv_check_claim(const char *key, const char *fingerprint, int ttl_s, struct kv_idem_record *out);
/** KV_OK or KV_EINVAL: the checks of kv_backend.idem_complete. */
int kv_check_complete(const char *key, const char *fingerprint, int status,
                      const char *content_type, const char *body, size_t body_len, int ttl_s);

/**
 * Parse the whole of the len bytes at s as a decimal number in [min, max]:
 * no sign, no spaces, no trailing bytes. 0 or -1.
 */
int kv_parse_num(const char *s, size_t len, int64_t min, int64_t max, int64_t *out);

#endif
