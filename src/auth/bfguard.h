/*
 * bfguard.h: the brute-force guard. Counts failed verifications per name (a
 * client address, or a key id: the gateway keeps one guard of each) in a
 * sliding window (two fixed windows, weighted: Cloudflare's approximation)
 * and says when a name is past the threshold, before any store read or
 * bcrypt work is spent on it, and whether it failed recently at all (such
 * requests wait in the verifier pool's low lane). The table is bounded;
 * when it is full the least-failed name of a neighbourhood gives way, so a
 * flood of one-off names cannot push out a name under attack. Names are
 * kept only in memory and never logged.
 */
#ifndef PORTCULLIS_AUTH_BFGUARD_H
#define PORTCULLIS_AUTH_BFGUARD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct bfguard;

/** Names longer than this are cut (addresses are at most 45, key ids 26). */
#define BFGUARD_NAME_MAX 47

/** max_failures per window_s seconds; at most max_names names tracked. */
struct bfguard *bfguard_create(int64_t max_failures, int64_t window_s, size_t max_names);
void bfguard_destroy(struct bfguard *g);

enum bfguard_verdict {
	BF_CLEAR = 0, /* no failure in the last two windows */
	BF_SUSPECT,   /* failures, but under the threshold */
	BF_BLOCKED,   /* past the threshold: refuse before any work */
};

/**
 * The verdict for name at now_ms. For BF_BLOCKED, *retry_after_s gets how
 * long until it would be let through again (at least 1).
 */
enum bfguard_verdict bfguard_check(struct bfguard *g, const char *name, int64_t now_ms,
                                   int64_t *retry_after_s);
/** Count one failed verification for name. */
void bfguard_fail(struct bfguard *g, const char *name, int64_t now_ms);

#endif
