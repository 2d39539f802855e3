/*
 * gcra.c: the pure GCRA step (see gcra.h), the same arithmetic as
 * redis-cell's CL.THROTTLE and as the "algorithm" string in
 * tests/vectors/gcra.json:
 *
 *   T = period/count; dvt = T*(max_burst+1); inc = T*quantity
 *   tat = stored or now; new_tat = max(now, tat) + inc; allow_at = new_tat - dvt
 *   limited when now < allow_at (retry after allow_at - now if inc <= dvt),
 *   ttl = tat - now; otherwise store new_tat, ttl = new_tat - now
 *   remaining = (dvt - ttl) / T, reset_after = ttl
 *   next_unit = ttl - dvt + (remaining+1)*T while remaining < limit, else 0
 *
 * next_unit is when quota is available again: the wait until one more
 * request fits, which for a request of one unit that was refused is exactly
 * retry_after (there remaining is 0 and allow_at - now = ttl + T - dvt). It
 * is what the RateLimit field's t reports (see ratelimit_headers.h).
 *
 * Two deliberate bounds that the vectors never reach: a stored TAT is
 * clamped into [now, now+dvt] (so ttl is never negative, remaining never
 * exceeds the limit and no sum can overflow), and remaining is 0, never
 * negative, when ttl exceeds dvt.
 */
#include "kv/gcra.h"

bool gcra_params_valid(const struct gcra_params *p)
{
	if (!p || p->max_burst < 0 || p->max_burst > GCRA_BURST_MAX || p->count < 1 ||
	    p->count > GCRA_COUNT_MAX || p->period_ms < 1 || p->period_ms > GCRA_PERIOD_MS_MAX)
		return false;
	int64_t t_us = p->period_ms * 1000 / p->count;
	if (t_us < 1)
		return false;
	/* Both factors are bounded above, so compare by division: no overflow. */
	return p->max_burst + 1 <= GCRA_DVT_US_MAX / t_us;
}

void gcra_intervals(const struct gcra_params *p, int64_t *t_us, int64_t *dvt_us)
{
	*t_us = p->period_ms * 1000 / p->count;
	*dvt_us = *t_us * (p->max_burst + 1);
}

static int64_t ceil_ms(int64_t us)
{
	return us <= 0 ? 0 : (us + 999) / 1000;
}

void gcra_result_fill(const struct gcra_params *p, bool limited, int64_t ttl_us, int64_t retry_us,
                      struct gcra_result *out)
{
	int64_t t_us, dvt_us;
	gcra_intervals(p, &t_us, &dvt_us);

	if (ttl_us < 0)
		ttl_us = 0;
	out->limited = limited;
	out->limit = p->max_burst + 1;
	out->remaining = dvt_us > ttl_us ? (dvt_us - ttl_us) / t_us : 0;
	out->reset_after_ms = ceil_ms(ttl_us);
	/* remaining < limit implies ttl > 0, so the wait is positive and below ttl + T. */
	out->next_unit_ms = out->remaining < out->limit
	                        ? ceil_ms(ttl_us - dvt_us + (out->remaining + 1) * t_us)
	                        : 0;
	out->retry_after_ms = limited && retry_us >= 0 ? ceil_ms(retry_us) : -1;
}

void gcra_step(const struct gcra_params *p, int64_t now_us, int64_t tat_us, int64_t quantity,
               struct gcra_result *out, int64_t *new_tat_us, int64_t *ttl_ms)
{
	int64_t t_us, dvt_us;
	gcra_intervals(p, &t_us, &dvt_us);

	if (now_us < 0)
		now_us = 0;
	if (now_us > GCRA_NOW_US_MAX)
		now_us = GCRA_NOW_US_MAX;
	if (quantity < 0)
		quantity = 0;

	int64_t tat = tat_us;
	if (tat < now_us)
		tat = now_us;
	if (tat - now_us > dvt_us)
		tat = now_us + dvt_us;

	*new_tat_us = tat_us;
	*ttl_ms = 0;

	/* quantity > limit means inc > dvt: never allowed, so no retry time. */
	if (quantity > p->max_burst + 1) {
		gcra_result_fill(p, true, tat - now_us, -1, out);
		*ttl_ms = ceil_ms(tat - now_us);
		return;
	}

	int64_t inc = t_us * quantity; /* <= dvt, no overflow */
	int64_t new_tat = tat + inc;
	int64_t allow_at = new_tat - dvt_us;
	if (now_us < allow_at) {
		gcra_result_fill(p, true, tat - now_us, allow_at - now_us, out);
		*ttl_ms = ceil_ms(tat - now_us);
		return;
	}

	gcra_result_fill(p, false, new_tat - now_us, -1, out);
	*ttl_ms = ceil_ms(new_tat - now_us);
	if (quantity > 0 && *ttl_ms > 0)
		*new_tat_us = new_tat;
}
