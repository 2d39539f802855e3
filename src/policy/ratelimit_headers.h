/*
 * ratelimit_headers.h: the rate-limit response fields of docs/contract.md,
 * as draft-ietf-httpapi-ratelimit-headers-10 defines them:
 *
 *   RateLimit-Policy: "org";q=<quota>;w=<window seconds>
 *   RateLimit: "org";r=<remaining>;t=<seconds until quota is available
 *              again, rounded up: until r grows by one; 0 when r = q>
 *   Retry-After: <seconds, rounded up, at least 1>       (429 only)
 *
 * The functions write field values only; the field names are the macros
 * below. For GCRA the quota is the bucket size (max_burst + 1) and the
 * window the time an empty bucket takes to fill (period/count * quota), so
 * r never exceeds q and t never exceeds w. A 429 for one request has t equal
 * to Retry-After: both are the wait until one request is allowed (not until
 * the bucket is full, which is longer). Pure, no allocation.
 */
#ifndef PORTCULLIS_POLICY_RATELIMIT_HEADERS_H
#define PORTCULLIS_POLICY_RATELIMIT_HEADERS_H

#include <stddef.h>

#include "kv/gcra.h"

#define RATELIMIT_POLICY_FIELD "RateLimit-Policy"
#define RATELIMIT_FIELD        "RateLimit"
#define RETRY_AFTER_FIELD      "Retry-After"

/** Buffer size that always holds any of the values below. */
#define RATELIMIT_VALUE_MAX 64

/**
 * Write the RateLimit-Policy value for p (which must satisfy
 * gcra_params_valid) into out (cap bytes, NUL-terminated). Returns 0, or
 * -1 when cap is too small (out is then "" if cap > 0).
 */
int ratelimit_policy_value(const struct gcra_params *p, char *out, size_t cap);

/**
 * Write the RateLimit value for the result of a step: r is r->remaining,
 * t is r->next_unit_ms in seconds rounded up. Returns 0 or -1 (as above).
 */
int ratelimit_value(const struct gcra_result *r, char *out, size_t cap);

/**
 * Write the Retry-After value for a limited result: retry_after_ms in
 * seconds, rounded up, at least 1. Returns 0, or -1 when r is not limited,
 * when no retry can ever succeed (retry_after_ms -1: omit the field) or
 * when cap is too small.
 */
int ratelimit_retry_after_value(const struct gcra_result *r, char *out, size_t cap);

#endif
