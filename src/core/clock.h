/*
 * clock.h: wall and monotonic time in milliseconds, and RFC 3339 formatting
 * and parsing (UTC, milliseconds) as used in every API timestamp.
 */
#ifndef PORTCULLIS_CORE_CLOCK_H
#define PORTCULLIS_CORE_CLOCK_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

/** Milliseconds since the Unix epoch (CLOCK_REALTIME). */
int64_t clock_now_ms(void);
/** Milliseconds from an arbitrary origin (CLOCK_MONOTONIC), for durations. */
int64_t clock_mono_ms(void);
/** Microseconds from an arbitrary origin (CLOCK_MONOTONIC). */
int64_t clock_mono_us(void);

/**
 * Timed waits: every condition variable that is waited on with a deadline
 * is set up with clock_cond_init_mono and given clock_mono_deadline, so a
 * wall-clock step (NTP, an operator) never stretches or cuts a wait.
 */
void clock_cond_init_mono(pthread_cond_t *c);
/** The CLOCK_MONOTONIC instant ms (>= 0) from now, for pthread_cond_timedwait. */
struct timespec clock_mono_deadline(int64_t ms);

/** Format ms-since-epoch as "2026-01-02T03:04:05.678Z". cap >= 25. */
void clock_format_rfc3339(int64_t ms, char *out, size_t cap);
/**
 * Parse an RFC 3339 timestamp ("2026-01-02T03:04:05Z", optional fraction,
 * "Z" or "+hh:mm" offset) into ms since the epoch. Returns 0 or -1; the
 * instant must lie in 1970-01-01T00:00:00Z .. 9999-12-31T23:59:59.999Z.
 */
int clock_parse_rfc3339(const char *s, int64_t *out_ms);

#endif
