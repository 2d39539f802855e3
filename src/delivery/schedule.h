/*
 * schedule.h: the retry schedule of deliveries ([webhooks] retry_schedule),
 * its jitter, and the receiver's Retry-After.
 *
 * A schedule is the list of delays before each attempt, the first usually 0
 * ("0s,5s,5m,30m,2h,5h,10h,10h": immediately, then 5 s after the first
 * failure, ...). Attempt numbers count from 0; after the last one the
 * delivery is failed. Pure functions: no clock and no randomness of their
 * own (callers pass now and a uniform 64-bit random value), so they are
 * tested exactly.
 */
#ifndef PORTCULLIS_DELIVERY_SCHEDULE_H
#define PORTCULLIS_DELIVERY_SCHEDULE_H

#include <stddef.h>
#include <stdint.h>

/** Most attempts in a schedule. */
#define WH_SCHEDULE_MAX 32
/** Longest single step (7 days), and the cap of a Retry-After. */
#define WH_SCHEDULE_STEP_MAX_MS (7 * 24 * 3600 * 1000LL)
/** Longest schedule text accepted by wh_schedule_parse. */
#define WH_SCHEDULE_TEXT_MAX 1024

/** delay_ms[i] is the delay before attempt i, unjittered; n in 1 .. WH_SCHEDULE_MAX. */
struct wh_schedule {
	int n;
	int64_t delay_ms[WH_SCHEDULE_MAX];
};

/**
 * Parse a comma-separated list of delays: each a decimal number with an
 * optional unit s, m or h (none = seconds), spaces or tabs allowed around
 * it, each at most WH_SCHEDULE_STEP_MAX_MS, 1 .. WH_SCHEDULE_MAX of them,
 * the text at most WH_SCHEDULE_TEXT_MAX bytes. Returns 0 with *out set, or
 * -1 with *out untouched and a message naming the offending step in err
 * (cap bytes; may be NULL when cap is 0).
 */
int wh_schedule_parse(const char *text, struct wh_schedule *out, char *err, size_t cap);

/**
 * The delay in ms before attempt `attempt` (0 = the first): delay_ms[attempt]
 * jittered by +/-20 %, i.e. a value in [ceil(0.8 d), floor(1.2 d)] chosen by
 * rnd (uniform over 64 bits; rnd 0 gives the low bound, UINT64_MAX the high
 * one). A 0 delay stays 0. -1 when attempt is negative or >= s->n (the
 * schedule has no more attempts).
 */
int64_t wh_schedule_delay(const struct wh_schedule *s, int attempt, uint64_t rnd);

/**
 * A Retry-After header value (RFC 9110 10.2.3: delta-seconds, or an
 * IMF-fixdate such as "Sun, 06 Nov 1994 08:49:37 GMT") as ms from now_ms:
 * a date in the past gives 0, anything above WH_SCHEDULE_STEP_MAX_MS is
 * capped to it. Spaces, tabs, CR and LF around the value are ignored. -1 for NULL,
 * more than 64 bytes, or any other form (the obsolete RFC 850 and asctime
 * dates included).
 */
int64_t wh_retry_after_ms(const char *value, int64_t now_ms);

/**
 * The delay before attempt `attempt` (the same numbering as
 * wh_schedule_delay: the attempt being scheduled) when the receiver sent a
 * Retry-After of retry_after_ms: clamped to [d, 2 d] where d =
 * delay_ms[attempt] unjittered (a negative retry_after_ms, i.e. an invalid
 * header, gives d). -1 when the schedule has no more attempts: a Retry-After
 * never adds one.
 */
int64_t wh_retry_after_clamp(const struct wh_schedule *s, int attempt, int64_t retry_after_ms);

#endif
