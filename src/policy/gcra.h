/*
 * gcra.h: the Generic Cell Rate Algorithm, exactly as redis-cell's
 * CL.THROTTLE (see tests/vectors/gcra.json). One stored value per key: the
 * theoretical arrival time (TAT). The pure step lives here; kv backends store
 * the TAT atomically.
 */
#ifndef PORTCULLIS_POLICY_GCRA_H
#define PORTCULLIS_POLICY_GCRA_H

#include <stdbool.h>
#include <stdint.h>

struct gcra_params {
	int64_t max_burst;  /* extra requests allowed at once (limit = max_burst + 1) */
	int64_t count;      /* requests ... */
	int64_t period_ms;  /* ... per this period */
};

struct gcra_result {
	bool limited;
	int64_t limit;          /* max_burst + 1 */
	int64_t remaining;
	int64_t reset_after_ms; /* until the bucket is full again */
	int64_t retry_after_ms; /* -1 when not limited (or never possible) */
};

/**
 * One GCRA step. tat_ms is the stored TAT or -1 when there is none. On
 * return *new_tat_ms is what to store (unchanged when limited) and
 * *ttl_ms how long to keep it. Pure: no clock, no I/O.
 */
void gcra_step(const struct gcra_params *p, int64_t now_ms, int64_t tat_ms, int64_t quantity,
	       struct gcra_result *out, int64_t *new_tat_ms, int64_t *ttl_ms);

#endif
