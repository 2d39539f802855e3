/*
 * scankeys.h: the background tier's copy of GitHub's secret scanning
 * signing keys (docs/secret-scanning.md). The worker fetches the published
 * set from [secret_scanning] github_keys_url through the egress guard
 * (https only, [webhooks] allow_ranges and ca_file, no redirects, bounded
 * body and time), checks every key is a P-256 public key, and stores the
 * set (store_scanning.h). The API verifies reports against the stored set
 * only and, for a key id it lacks, asks for a refresh through the store.
 */
#ifndef PORTCULLIS_DELIVERY_SCANKEYS_H
#define PORTCULLIS_DELIVERY_SCANKEYS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "store/store_scanning.h"

struct config;
struct egress_ranges;

/** The key set is fetched again once it is this old. */
#define SCANKEYS_MAX_AGE_MS (3600 * 1000)
/** At most one fetch per this gap, cluster-wide (a refresh asked for waits for it). */
#define SCANKEYS_MIN_GAP_MS (60 * 1000)
/** Largest key-set document accepted. */
#define SCANKEYS_BODY_MAX (64 * 1024)

/** True when the n bytes at s are a key identifier: 1 to STORE_SCAN_KEY_ID_MAX of [A-Za-z0-9_-]. */
bool scankeys_id_valid(const char *s, size_t n);

/**
 * Parse a key-set document {"public_keys": [{"key_identifier", "key",
 * "is_current"}, ...]} of len bytes into out (room for STORE_SCAN_KEYS_MAX
 * keys); *n gets the count. Every entry must have a key_identifier of 1 to
 * STORE_SCAN_KEY_ID_MAX characters [A-Za-z0-9_-], a key that
 * ecdsa_p256_key_check accepts (at most STORE_SCAN_PEM_MAX bytes) and,
 * when present, a boolean is_current; identifiers are unique. 0, or -1
 * with a reason in err (nothing of the document quoted) for any deviation
 * or an empty set: a set with one bad key is refused whole.
 */
int scankeys_parse(const char *body, size_t len, struct store_scan_key *out, int *n, char *err,
                   size_t cap);

/**
 * One step of the worker's loop at now (ms): when the stored set is older
 * than SCANKEYS_MAX_AGE_MS (or absent), or a refresh was asked for since the
 * last fetch, claim the fetch (store_scan_fetch_claim with min_gap_ms),
 * fetch, parse and store the set. Logs the outcome (never the keys). 1 when
 * a new set was stored, 0 when nothing was due or claimed, -1 on failure.
 */
int scankeys_tick(struct store *st, const struct config *cfg, const struct egress_ranges *allow,
                  int64_t now, int64_t min_gap_ms);

#endif
