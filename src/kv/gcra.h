/*
 * gcra.h: the Generic Cell Rate Algorithm, exactly as redis-cell's
 * CL.THROTTLE (see tests/vectors/gcra.json). One stored value per key: the
 * theoretical arrival time (TAT). The pure step lives here; kv backends store
 * the TAT atomically.
 *
 * Times inside the algorithm are microseconds, so that rates above one
 * request per millisecond still have a non-zero emission interval; results
 * are milliseconds, rounded up (waiting that long is always enough).
 */
#ifndef PORTCULLIS_KV_GCRA_H
#define PORTCULLIS_KV_GCRA_H

#include <stdbool.h>
#include <stdint.h>

/* Ranges accepted by gcra_params_valid. */
#define GCRA_PERIOD_MS_MAX (366LL * 86400 * 1000) /* one year */
#define GCRA_COUNT_MAX     1000000000LL
#define GCRA_BURST_MAX     1000000000LL
#define GCRA_DVT_US_MAX    (1LL << 52) /* exact in a double (the Redis script) */
#define GCRA_NOW_US_MAX    (1LL << 60)

struct gcra_params {
	int64_t max_burst; /* extra requests allowed at once (limit = max_burst + 1) */
	int64_t count;     /* requests ... */
	int64_t period_ms; /* ... per this period */
};

struct gcra_result {
	bool limited;
	int64_t limit;          /* max_burst + 1 */
	int64_t remaining;      /* 0 .. limit */
	int64_t reset_after_ms; /* until the bucket is full again */
	int64_t next_unit_ms;   /* until remaining grows by one (0 when full) */
	int64_t retry_after_ms; /* -1 when not limited (or never possible) */
};

/**
 * True when p is usable: 0 <= max_burst <= GCRA_BURST_MAX, 1 <= count <=
 * GCRA_COUNT_MAX, 1 <= period_ms <= GCRA_PERIOD_MS_MAX, the emission interval
 * period/count is at least 1 us and the tolerance interval*(max_burst+1) is
 * at most GCRA_DVT_US_MAX. Backends reject other params with KV_EINVAL.
 */
bool gcra_params_valid(const struct gcra_params *p);

/**
 * The emission interval T = period/count (truncated to whole microseconds,
 * like redis-cell's nanoseconds) and the delay variation tolerance
 * dvt = T*(max_burst+1). p must be valid.
 */
void gcra_intervals(const struct gcra_params *p, int64_t *t_us, int64_t *dvt_us);

/**
 * One GCRA step. p must be valid (gcra_params_valid). now_us is clamped to
 * [0, GCRA_NOW_US_MAX]; tat_us is the stored TAT or -1 when there is none;
 * a stored TAT in the past counts as now and one beyond now+dvt (left by
 * larger params) is clamped to now+dvt. quantity < 0 counts as 0 (a peek);
 * a quantity above the limit is always limited with retry_after_ms -1.
 *
 * On return *new_tat_us is what to store and *ttl_ms how long to keep it
 * (rounded up). Nothing is to be stored when out->limited, when quantity is
 * 0 or when *ttl_ms is 0 (then *new_tat_us is tat_us). Pure: no clock, no I/O.
 */
void gcra_step(const struct gcra_params *p, int64_t now_us, int64_t tat_us, int64_t quantity,
               struct gcra_result *out, int64_t *new_tat_us, int64_t *ttl_ms);

/**
 * Fill out from the raw outcome of a step computed elsewhere (the Redis
 * script runs the same math on the server's clock): ttl_us is the TAT minus
 * now after the step, retry_us the wait until allowed or -1. Used by
 * gcra_step itself, so both paths round identically.
 */
void gcra_result_fill(const struct gcra_params *p, bool limited, int64_t ttl_us, int64_t retry_us,
                      struct gcra_result *out);

#endif
