/*
 * ratelimit_headers.c: formats the RateLimit-Policy, RateLimit and
 * Retry-After field values from GCRA params and results (see
 * ratelimit_headers.h for the mapping). Written with the printf-free strbuf
 * (they are set on every gateway response) into caller buffers with an
 * explicit capacity; truncation is an error, never a silently short field.
 */
#include "policy/ratelimit_headers.h"

#include "core/str.h"

static int64_t ceil_s(int64_t ms)
{
	return ms <= 0 ? 0 : ms / 1000 + (ms % 1000 != 0);
}

/* The text built in out, or "" and -1 when it did not fit (never a short field). */
static int finish(struct strbuf *b)
{
	if (b->overflow) {
		b->data[0] = '\0';
		return -1;
	}
	return 0;
}

int ratelimit_policy_value(const struct gcra_params *p, char *out, size_t cap)
{
	if (!out || cap == 0)
		return -1;
	if (!gcra_params_valid(p)) {
		out[0] = '\0';
		return -1;
	}
	int64_t t_us, dvt_us;
	gcra_intervals(p, &t_us, &dvt_us);
	int64_t window_s = ceil_s((dvt_us + 999) / 1000);
	if (window_s < 1)
		window_s = 1;
	struct strbuf b;
	strbuf_init(&b, out, cap);
	strbuf_puts(&b, "\"org\";q=");
	strbuf_put_i64(&b, p->max_burst + 1);
	strbuf_puts(&b, ";w=");
	strbuf_put_i64(&b, window_s);
	return finish(&b);
}

int ratelimit_value(const struct gcra_result *r, char *out, size_t cap)
{
	if (!out || cap == 0)
		return -1;
	int64_t remaining = r->remaining < 0 ? 0 : r->remaining;
	struct strbuf b;
	strbuf_init(&b, out, cap);
	strbuf_puts(&b, "\"org\";r=");
	strbuf_put_i64(&b, remaining);
	strbuf_puts(&b, ";t=");
	strbuf_put_i64(&b, ceil_s(r->next_unit_ms));
	return finish(&b);
}

int ratelimit_retry_after_value(const struct gcra_result *r, char *out, size_t cap)
{
	if (!out || cap == 0)
		return -1;
	if (!r->limited || r->retry_after_ms < 0) {
		out[0] = '\0';
		return -1;
	}
	int64_t s = ceil_s(r->retry_after_ms);
	if (s < 1)
		s = 1;
	struct strbuf b;
	strbuf_init(&b, out, cap);
	strbuf_put_i64(&b, s);
	return finish(&b);
}
