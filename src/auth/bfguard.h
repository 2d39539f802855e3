/*
 * bfguard.h: the brute-force guard. Counts failed verifications per client
 * address in a sliding window (two fixed windows, weighted: Cloudflare's
 * approximation) and says when an address is past the threshold, before any
 * bcrypt work is spent on it. The table is bounded; addresses are kept only
 * in memory and never logged.
 */
#ifndef PORTCULLIS_AUTH_BFGUARD_H
#define PORTCULLIS_AUTH_BFGUARD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct bfguard;

/** max_failures per window_s seconds; at most max_addrs addresses tracked. */
struct bfguard *bfguard_create(int64_t max_failures, int64_t window_s, size_t max_addrs);
void bfguard_destroy(struct bfguard *g);

/**
 * True when addr is past the threshold at now_ms; *retry_after_s gets how
 * long until it would be let through again (at least 1).
 */
bool bfguard_blocked(struct bfguard *g, const char *addr, int64_t now_ms, int64_t *retry_after_s);
/** Count one failed verification from addr. */
void bfguard_fail(struct bfguard *g, const char *addr, int64_t now_ms);

#endif
