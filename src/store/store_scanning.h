/*
 * store_scanning.h: GitHub secret scanning's state (migrations/
 * 0008_secret_scanning.sql): the signing keys the background tier fetched,
 * the refresh the API asks for when a report names a key id it does not
 * have, and the reports handled, keyed by the SHA-256 of the token (never
 * the token). Same rules as store.h: blocking, thread-safe, STORE_OK or a
 * negative STORE_E*, every value bound, both dialects.
 */
#ifndef PORTCULLIS_STORE_STORE_SCANNING_H
#define PORTCULLIS_STORE_STORE_SCANNING_H

#include "store/store.h"

#include <stdint.h>

/** Longest key_identifier kept (GitHub's are 64 hex digits). */
#define STORE_SCAN_KEY_ID_MAX 128
/** Longest PEM public key kept (a P-256 SPKI in PEM is about 180 bytes). */
#define STORE_SCAN_PEM_MAX 1024
/** Most keys in one published set. */
#define STORE_SCAN_KEYS_MAX 32
/** Longest reported type, source and URL kept (longer ones are cut by the caller). */
#define STORE_SCAN_TYPE_MAX   128
#define STORE_SCAN_SOURCE_MAX 64
#define STORE_SCAN_URL_MAX    2048

struct store_scan_key {
	char key_identifier[STORE_SCAN_KEY_ID_MAX + 1];
	char public_key[STORE_SCAN_PEM_MAX + 1];
	bool is_current;
};

/**
 * Replace the whole key set by the n keys (1..STORE_SCAN_KEYS_MAX) and
 * record the fetch time now (ms), in one transaction.
 */
int store_scan_keys_replace(struct store *st, const struct store_scan_key *keys, int n,
                            int64_t now);

/** The stored key with this identifier; STORE_ENOTFOUND when there is none. */
int store_scan_key_get(struct store *st, const char *key_identifier, struct store_scan_key *out);

/**
 * When the key set was last fetched, a fetch last tried (claimed) and a
 * refresh last asked for (ms, -1: never). attempted_at may be NULL.
 */
int store_scan_state_get(struct store *st, int64_t *fetched_at, int64_t *attempted_at,
                         int64_t *requested_at);

/** Ask the background tier to fetch the key set again (it honours it at most once a minute). */
int store_scan_refresh_request(struct store *st, int64_t now);

/**
 * Claim the next fetch for this worker: STORE_OK when no fetch was tried in
 * the last min_gap_ms (the attempt time becomes now), STORE_ECONFLICT when
 * one was (by any node). Keeps the cluster to one fetch per gap.
 */
int store_scan_fetch_claim(struct store *st, int64_t now, int64_t min_gap_ms);

/** A report handled: what it named and what was done. Never the token. */
struct store_leak_report {
	char token_hash[65]; /* SHA-256 hex of the token */
	char key_id[STORE_ID_LEN + 1];
	char org_id[STORE_ID_LEN + 1];
	char token_type[STORE_SCAN_TYPE_MAX + 1];
	char source[STORE_SCAN_SOURCE_MAX + 1];
	char url[STORE_SCAN_URL_MAX + 1];
	char action[8]; /* kill | notify */
	int64_t reported_at;
};

/**
 * Record r with its audit event a (and a's webhook message) in one
 * transaction. STORE_ECONFLICT when a report of the same token_hash exists
 * (nothing is written: a repeat changes nothing).
 */
int store_leak_report_insert(struct store *st, const struct store_leak_report *r,
                             const struct audit_input *a);

/** The report of this token hash; STORE_ENOTFOUND when there is none. */
int store_leak_report_get(struct store *st, const char *token_hash, struct store_leak_report *out);

#endif
