/*
 * ratelimit_headers.c: formats the RateLimit-Policy, RateLimit and
 * Retry-After field values from GCRA params and results (see
 * ratelimit_headers.h for the mapping). snprintf into caller buffers with
 * an explicit capacity; truncation is an error, never a silently short field.
 */
#include "policy/ratelimit_headers.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>

static int64_t ceil_s(int64_t ms)
{
	return ms <= 0 ? 0 : ms / 1000 + (ms % 1000 != 0);
}

__attribute__((format(printf, 3, 4))) static int put(char *out, size_t cap, const char *fmt, ...)
{
	if (!out || cap == 0)
		return -1;
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(out, cap, fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= cap) {
		out[0] = '\0';
		return -1;
	}
	return 0;
}

int ratelimit_policy_value(const struct gcra_params *p, char *out, size_t cap)
{
	if (!gcra_params_valid(p)) {
		if (out && cap)
			out[0] = '\0';
		return -1;
	}
	int64_t t_us, dvt_us;
	gcra_intervals(p, &t_us, &dvt_us);
	int64_t window_s = ceil_s((dvt_us + 999) / 1000);
	if (window_s < 1)
		window_s = 1;
	return put(out, cap, "\"org\";q=%" PRId64 ";w=%" PRId64, p->max_burst + 1, window_s);
}

int ratelimit_value(const struct gcra_result *r, char *out, size_t cap)
{
	int64_t remaining = r->remaining < 0 ? 0 : r->remaining;
	return put(out, cap, "\"org\";r=%" PRId64 ";t=%" PRId64, remaining,
	           ceil_s(r->reset_after_ms));
}

int ratelimit_retry_after_value(const struct gcra_result *r, char *out, size_t cap)
{
	if (!r->limited || r->retry_after_ms < 0) {
		if (out && cap)
			out[0] = '\0';
		return -1;
	}
	int64_t s = ceil_s(r->retry_after_ms);
	if (s < 1)
		s = 1;
	return put(out, cap, "%" PRId64, s);
}
