/*
 * ulid.h: ULIDs (26 characters of Crockford base32: 48-bit millisecond time,
 * 80 random bits). Used for key ids, request ids and every record id.
 */
#ifndef PORTCULLIS_CORE_ULID_H
#define PORTCULLIS_CORE_ULID_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define ULID_LEN 26

/** Write a new ULID for the current time (NUL-terminated, out has ULID_LEN + 1 bytes). */
void ulid_new(char out[ULID_LEN + 1]);
/**
 * Write a new ULID for time ms (milliseconds since the epoch): a row whose id
 * is made from its own timestamp can be found by time through the id's order.
 */
void ulid_new_at(int64_t ms, char out[ULID_LEN + 1]);
/** Write a ULID for a given time and 10 random bytes (deterministic; for tests). */
void ulid_encode(uint64_t ms, const uint8_t rnd[10], char out[ULID_LEN + 1]);
/** True when s[0..len) is a well-formed ULID (upper-case Crockford base32, first char 0-7). */
bool ulid_valid(const char *s, size_t len);
/**
 * Write "<prefix>_<ULID>" into out (e.g. "req_01J..."). cap must hold
 * strlen(prefix) + 1 + ULID_LEN + 1 bytes.
 */
void ulid_prefixed(const char *prefix, char *out, size_t cap);
/** ulid_prefixed for time ms (see ulid_new_at). */
void ulid_prefixed_at(const char *prefix, int64_t ms, char *out, size_t cap);
/**
 * The smallest "<prefix>_<ULID>" of time ms (random part all zero): ids made
 * at ms or later sort at or above it, ids made earlier below it, so a time
 * bound on rows whose ids carry their time becomes an id bound.
 */
void ulid_prefixed_floor(const char *prefix, int64_t ms, char *out, size_t cap);
/** The millisecond time of a well-formed ULID s (ulid_valid): its first 10 characters. */
uint64_t ulid_time(const char *s);

#endif
