/*
 * schedule.c: the retry schedule's text, its jitter, and Retry-After
 * (schedule.h).
 *
 * Jitter is integer arithmetic on the top 32 bits of the caller's random
 * value, so its bounds are exact (rnd 0 gives ceil(0.8 d), UINT64_MAX gives
 * floor(1.2 d)) and no floating point rounding can leave them: a step is at
 * most 7 days (< 2^30 ms), so every product fits in 64 bits. An IMF-fixdate
 * is rewritten as RFC 3339 and handed to core/clock.c's one date parser,
 * which owns the calendar checks.
 */
#include "delivery/schedule.h"

#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "core/clock.h"
#include "core/str.h"

#define MS_PER_S         1000
#define RETRY_AFTER_MAX  64
#define IMF_FIXDATE_LEN  29
#define STEP_SHOWN_MAX   32
#define MAX_STEP_S       (WH_SCHEDULE_STEP_MAX_MS / MS_PER_S)
#define MAX_DELTA_DIGITS 12 /* 10^12 s is far above the cap */

static void set_err(char *err, size_t cap, const char *msg, int step, const char *p, size_t n)
{
	if (cap == 0)
		return;
	if (step > 0)
		snprintf(err, cap, "retry_schedule: step %d (\"%.*s\"): %s", step,
		         (int)(n < STEP_SHOWN_MAX ? n : STEP_SHOWN_MAX), p, msg);
	else
		snprintf(err, cap, "retry_schedule: %s", msg);
}

static bool is_blank(char c)
{
	return c == ' ' || c == '\t';
}

/* True when the n > 0 bytes at p are all decimal digits. */
static bool all_digits(const char *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (p[i] < '0' || p[i] > '9')
			return false;
	return n > 0;
}

/* One step "<digits>[s|m|h]" (already trimmed, n > 0) in ms; 0 or -1. */
static int parse_step(const char *p, size_t n, int64_t *ms, const char **why)
{
	int64_t unit_ms = MS_PER_S;
	uint64_t v;
	char last = p[n - 1];

	if (last == 's' || last == 'm' || last == 'h') {
		unit_ms = last == 's' ? MS_PER_S : last == 'm' ? 60 * MS_PER_S : 3600 * MS_PER_S;
		n--;
	}
	if (!all_digits(p, n)) {
		*why = "not a whole number with an optional unit s, m or h";
		return -1;
	}
	if (parse_uint64(p, n, (uint64_t)(WH_SCHEDULE_STEP_MAX_MS / unit_ms), &v) != 0) {
		*why = "longer than 7 days";
		return -1;
	}
	*ms = (int64_t)v * unit_ms;
	return 0;
}

int wh_schedule_parse(const char *text, struct wh_schedule *out, char *err, size_t cap)
{
	struct wh_schedule s = {0};
	size_t len, pos = 0;

	if (!text) {
		set_err(err, cap, "empty", 0, NULL, 0);
		return -1;
	}
	len = strnlen(text, WH_SCHEDULE_TEXT_MAX + 1);
	if (len > WH_SCHEDULE_TEXT_MAX) {
		set_err(err, cap, "longer than 1024 bytes", 0, NULL, 0);
		return -1;
	}
	for (;;) {
		const char *end = memchr(text + pos, ',', len - pos);
		size_t stop = end ? (size_t)(end - text) : len;
		size_t a = pos, b = stop;
		const char *why = NULL;

		while (a < b && is_blank(text[a]))
			a++;
		while (b > a && is_blank(text[b - 1]))
			b--;
		if (s.n == WH_SCHEDULE_MAX) {
			set_err(err, cap, "more than 32 steps", 0, NULL, 0);
			return -1;
		}
		if (a == b)
			why = "empty";
		else
			(void)parse_step(text + a, b - a, &s.delay_ms[s.n], &why);
		if (why) {
			set_err(err, cap, why, s.n + 1, text + a, b - a);
			return -1;
		}
		s.n++;
		if (!end)
			break;
		pos = stop + 1;
	}
	*out = s;
	return 0;
}

int64_t wh_schedule_delay(const struct wh_schedule *s, int attempt, uint64_t rnd)
{
	int64_t d, lo, hi;
	uint64_t span;

	if (!s || attempt < 0 || attempt >= s->n)
		return -1;
	d = s->delay_ms[attempt];
	lo = d - d / 5; /* ceil(0.8 d) */
	hi = d + d / 5; /* floor(1.2 d) */
	span = (uint64_t)(hi - lo) + 1;
	/* (rnd >> 32) * span < 2^32 * 2^30: no overflow; UINT64_MAX maps to span - 1. */
	return lo + (int64_t)(((rnd >> 32) * span) >> 32);
}

/* The month number (1-12) of a three-letter IMF month name, or 0. */
static int imf_month(const char *p)
{
	static const char names[] = "JanFebMarAprMayJunJulAugSepOctNovDec";

	for (int i = 0; i < 12; i++)
		if (memcmp(p, names + 3 * i, 3) == 0)
			return i + 1;
	return 0;
}

static bool imf_day_name(const char *p)
{
	static const char names[] = "MonTueWedThuFriSatSun";

	for (int i = 0; i < 7; i++)
		if (memcmp(p, names + 3 * i, 3) == 0)
			return true;
	return false;
}

/* "Sun, 06 Nov 1994 08:49:37 GMT" (exactly 29 bytes at p) in ms; 0 or -1. */
static int parse_imf_fixdate(const char *p, int64_t *ms)
{
	char rfc[sizeof("1994-11-06T08:49:37Z")];
	int mon;

	if (!imf_day_name(p) || memcmp(p + 3, ", ", 2) != 0 || p[7] != ' ' || p[11] != ' ' ||
	    p[16] != ' ' || p[19] != ':' || p[22] != ':' || memcmp(p + 25, " GMT", 4) != 0)
		return -1;
	mon = imf_month(p + 8);
	if (mon == 0)
		return -1;
	/* The digits are checked by clock_parse_rfc3339, with the calendar. */
	memcpy(rfc, p + 12, 4);
	rfc[4] = '-';
	rfc[5] = (char)('0' + mon / 10);
	rfc[6] = (char)('0' + mon % 10);
	rfc[7] = '-';
	memcpy(rfc + 8, p + 5, 2);
	rfc[10] = 'T';
	memcpy(rfc + 11, p + 17, 8);
	rfc[19] = 'Z';
	rfc[20] = '\0';
	return clock_parse_rfc3339(rfc, ms);
}

static bool is_ows(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

int64_t wh_retry_after_ms(const char *value, int64_t now_ms)
{
	size_t a = 0, b;
	int64_t at;

	if (!value)
		return -1;
	b = strnlen(value, RETRY_AFTER_MAX + 1);
	if (b > RETRY_AFTER_MAX)
		return -1;
	while (a < b && is_ows(value[a]))
		a++;
	while (b > a && is_ows(value[b - 1]))
		b--;
	if (a == b)
		return -1;
	if (all_digits(value + a, b - a)) {
		uint64_t v;

		if (b - a > MAX_DELTA_DIGITS)
			return WH_SCHEDULE_STEP_MAX_MS;
		if (parse_uint64(value + a, b - a, UINT64_MAX, &v) != 0)
			return -1;
		return v > (uint64_t)MAX_STEP_S ? WH_SCHEDULE_STEP_MAX_MS : (int64_t)v * MS_PER_S;
	}
	if (b - a != IMF_FIXDATE_LEN || parse_imf_fixdate(value + a, &at) != 0)
		return -1;
	if (at <= now_ms)
		return 0;
	if (__builtin_sub_overflow(at, now_ms, &at) || at > WH_SCHEDULE_STEP_MAX_MS)
		return WH_SCHEDULE_STEP_MAX_MS;
	return at;
}

int64_t wh_retry_after_clamp(const struct wh_schedule *s, int attempt, int64_t retry_after_ms)
{
	int64_t d;

	if (!s || attempt < 0 || attempt >= s->n)
		return -1;
	d = s->delay_ms[attempt];
	if (retry_after_ms < d)
		return d;
	return retry_after_ms > 2 * d ? 2 * d : retry_after_ms;
}
