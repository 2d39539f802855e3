/*
 * last_used.h: keeps api_keys.last_used_at current without a database write
 * per request. The hot path records at most one mark per key per minute
 * (keycache_touch_due); a background thread writes the marks in batches.
 * The queue is bounded: when full, marks are dropped and counted (the next
 * minute's mark carries the information again).
 */
#ifndef PORTCULLIS_AUTH_LAST_USED_H
#define PORTCULLIS_AUTH_LAST_USED_H

#include <stddef.h>
#include <stdint.h>

#include "store/store.h"

struct last_used;

/** Start the writer (flushes every interval_ms and on stop). */
struct last_used *last_used_start(struct store *st, size_t capacity, int64_t interval_ms);
/** Queue a mark; never blocks. */
void last_used_record(struct last_used *lu, const char *key_id, int64_t at_ms);
/** Flush and stop. NULL is a no-op. */
void last_used_stop(struct last_used *lu);

#endif
