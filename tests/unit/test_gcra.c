/*
 * test_gcra.c: unit tests for src/policy/gcra.c and ratelimit_headers.c:
 * every step of tests/vectors/gcra.json (redis-cell semantics) replayed
 * through gcra_step, the edges the vectors do not reach (rates above one
 * per millisecond, stale and oversized TATs, invalid params), and the
 * RateLimit / RateLimit-Policy / Retry-After field values (t against the
 * vectors and a slow limit).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kv/gcra.h"
#include "policy/ratelimit_headers.h"

/* Load gcra.json; fills p and returns the steps array (owned by *root). */
static json_t *load_vectors(json_t **root, struct gcra_params *p)
{
	const char *dir = getenv("PORTCULLIS_VECTORS");
	char path[4096];
	json_error_t err;

	assert_non_null(dir);
	assert_true((size_t)snprintf(path, sizeof(path), "%s/gcra.json", dir) < sizeof(path));
	*root = json_load_file(path, JSON_REJECT_DUPLICATES, &err);
	if (!*root)
		fail_msg("%s:%d: %s", path, err.line, err.text);
	json_t *params = json_object_get(*root, "params");
	p->max_burst = json_integer_value(json_object_get(params, "max_burst"));
	p->count = json_integer_value(json_object_get(params, "count"));
	p->period_ms = json_integer_value(json_object_get(params, "period_s")) * 1000;
	assert_int_equal(json_integer_value(json_object_get(params, "limit")), p->max_burst + 1);
	json_t *steps = json_object_get(*root, "steps");
	assert_true(json_is_array(steps));
	assert_true(json_array_size(steps) > 0);
	return steps;
}

static void test_vectors(void **state)
{
	json_t *root;
	struct gcra_params p;
	json_t *steps = load_vectors(&root, &p);
	int64_t tat = -1;
	size_t i;
	json_t *step;
	(void)state;

	assert_true(gcra_params_valid(&p));
	json_array_foreach(steps, i, step)
	{
		int64_t t_ms = json_integer_value(json_array_get(step, 0));
		int64_t q = json_integer_value(json_array_get(step, 1));
		struct gcra_result r;
		int64_t new_tat, ttl_ms;

		gcra_step(&p, t_ms * 1000, tat, q, &r, &new_tat, &ttl_ms);
		if (r.limited != json_is_true(json_array_get(step, 2)) ||
		    r.remaining != json_integer_value(json_array_get(step, 3)) ||
		    r.reset_after_ms != json_integer_value(json_array_get(step, 4)) ||
		    r.retry_after_ms != json_integer_value(json_array_get(step, 5)))
			fail_msg(
			    "step %zu (t=%lld q=%lld): got limited=%d remaining=%lld reset=%lld "
			    "retry=%lld",
			    i, (long long)t_ms, (long long)q, r.limited, (long long)r.remaining,
			    (long long)r.reset_after_ms, (long long)r.retry_after_ms);
		assert_int_equal(r.limit, p.max_burst + 1);
		if (!r.limited && q > 0 && ttl_ms > 0)
			tat = new_tat;
		else
			assert_int_equal(new_tat, tat);
	}
	json_decref(root);
}

/*
 * RateLimit t (draft-ietf-httpapi-ratelimit-headers-10): the seconds until
 * quota is available again, i.e. until remaining grows by one, derived here
 * from each vector's own columns (T = 1 s, dvt = 5 s); a refused request of
 * one unit has t equal to Retry-After. The old t (until the bucket is full)
 * said 5 on the step where Retry-After said 1.
 */
static void test_vectors_t(void **state)
{
	json_t *root;
	struct gcra_params p;
	json_t *steps = load_vectors(&root, &p);
	int64_t t_us, dvt_us, tat = -1;
	size_t i;
	json_t *step;
	int limited_seen = 0;
	(void)state;

	gcra_intervals(&p, &t_us, &dvt_us);
	json_array_foreach(steps, i, step)
	{
		int64_t t_ms = json_integer_value(json_array_get(step, 0));
		int64_t q = json_integer_value(json_array_get(step, 1));
		int64_t remaining = json_integer_value(json_array_get(step, 3));
		int64_t reset_ms = json_integer_value(json_array_get(step, 4));
		int64_t retry_ms = json_integer_value(json_array_get(step, 5));
		int64_t want_ms = remaining < p.max_burst + 1
		                      ? reset_ms - dvt_us / 1000 + (remaining + 1) * (t_us / 1000)
		                      : 0;
		struct gcra_result r;
		int64_t new_tat, ttl_ms;
		char rl[RATELIMIT_VALUE_MAX], want[2 * RATELIMIT_VALUE_MAX],
		    ra[RATELIMIT_VALUE_MAX];

		gcra_step(&p, t_ms * 1000, tat, q, &r, &new_tat, &ttl_ms);
		if (r.next_unit_ms != want_ms)
			fail_msg("step %zu: next_unit_ms %lld, want %lld", i,
			         (long long)r.next_unit_ms, (long long)want_ms);
		assert_int_equal(ratelimit_value(&r, rl, sizeof rl), 0);
		snprintf(want, sizeof want, "\"org\";r=%lld;t=%lld", (long long)remaining,
		         (long long)((want_ms + 999) / 1000));
		assert_string_equal(rl, want);
		if (r.limited && q == 1) {
			assert_int_equal(r.next_unit_ms, retry_ms);
			assert_int_equal(ratelimit_retry_after_value(&r, ra, sizeof ra), 0);
			snprintf(want, sizeof want, "\"org\";r=0;t=%s", ra);
			assert_string_equal(rl, want);
			limited_seen++;
		}
		if (!r.limited && q > 0 && ttl_ms > 0)
			tat = new_tat;
	}
	assert_true(limited_seen > 0); /* the vectors do reach a refused single request */
	json_decref(root);
}

/* Field values of one step: RateLimit, and Retry-After ("" when there is none). */
static void assert_fields(const struct gcra_params *p, int64_t now_us, int64_t *tat,
                          const char *want_rl, const char *want_retry)
{
	struct gcra_result r;
	int64_t new_tat, ttl_ms;
	char buf[RATELIMIT_VALUE_MAX];

	gcra_step(p, now_us, *tat, 1, &r, &new_tat, &ttl_ms);
	if (!r.limited)
		*tat = new_tat;
	assert_int_equal(ratelimit_value(&r, buf, sizeof buf), 0);
	assert_string_equal(buf, want_rl);
	assert_int_equal(ratelimit_retry_after_value(&r, buf, sizeof buf), want_retry[0] ? 0 : -1);
	assert_string_equal(buf, want_retry);
}

/*
 * The case: 2 requests a minute with a burst of 1 (q=2, w=60). After
 * both are spent, the third is refused with Retry-After 30, and t says 30
 * too (it said 60, the time until both are back).
 */
static void test_slow_limit_t(void **state)
{
	struct gcra_params p = {.max_burst = 1, .count = 2, .period_ms = 60000};
	struct gcra_result r;
	int64_t tat = -1, new_tat, ttl_ms;
	char buf[RATELIMIT_VALUE_MAX];
	(void)state;

	assert_fields(&p, 0, &tat, "\"org\";r=1;t=30", "");
	assert_fields(&p, 0, &tat, "\"org\";r=0;t=30", "");
	assert_fields(&p, 0, &tat, "\"org\";r=0;t=30", "30");
	/* 10.5 s later: 19.5 s to wait, both rounded up to 20. */
	assert_fields(&p, 10500 * 1000, &tat, "\"org\";r=0;t=20", "20");

	/* Full again after the minute: t is 0 on a peek. */
	gcra_step(&p, 60000 * 1000, tat, 0, &r, &new_tat, &ttl_ms);
	assert_int_equal(r.reset_after_ms, 0);
	assert_int_equal(ratelimit_value(&r, buf, sizeof buf), 0);
	assert_string_equal(buf, "\"org\";r=2;t=0");
}

/* 3000 per second: T = 333 us. Milliseconds alone would make T zero. */
static void test_sub_millisecond_interval(void **state)
{
	struct gcra_params p = {.max_burst = 0, .count = 3000, .period_ms = 1000};
	struct gcra_result r;
	int64_t tat = -1, new_tat, ttl_ms;
	(void)state;

	assert_true(gcra_params_valid(&p));
	gcra_step(&p, 1000000, tat, 1, &r, &new_tat, &ttl_ms);
	assert_false(r.limited);
	assert_int_equal(new_tat, 1000333);
	assert_int_equal(ttl_ms, 1);
	tat = new_tat;
	gcra_step(&p, 1000000, tat, 1, &r, &new_tat, &ttl_ms);
	assert_true(r.limited);
	assert_int_equal(r.retry_after_ms, 1); /* 333 us, rounded up */
	assert_int_equal(r.remaining, 0);
	/* Over the next 3 ms exactly one is admitted per 333 us: nine. */
	int admitted = 0;
	for (int64_t us = 1000000; us <= 1003000; us += 111) {
		gcra_step(&p, us, tat, 1, &r, &new_tat, &ttl_ms);
		if (!r.limited) {
			admitted++;
			tat = new_tat;
		}
	}
	assert_int_equal(admitted, 9);
}

static void test_peek_and_oversized(void **state)
{
	struct gcra_params p = {.max_burst = 2, .count = 10, .period_ms = 1000};
	struct gcra_result r;
	int64_t new_tat, ttl_ms;
	(void)state;

	/* A peek on an empty key: full bucket, nothing to store. */
	gcra_step(&p, 5000000, -1, 0, &r, &new_tat, &ttl_ms);
	assert_false(r.limited);
	assert_int_equal(r.remaining, 3);
	assert_int_equal(r.reset_after_ms, 0);
	assert_int_equal(new_tat, -1);
	/* More than the limit can never pass, so there is no retry time. */
	gcra_step(&p, 5000000, -1, 4, &r, &new_tat, &ttl_ms);
	assert_true(r.limited);
	assert_int_equal(r.retry_after_ms, -1);
	assert_int_equal(r.remaining, 3);
	/* Exactly the limit passes on a full bucket. */
	gcra_step(&p, 5000000, -1, 3, &r, &new_tat, &ttl_ms);
	assert_false(r.limited);
	assert_int_equal(r.remaining, 0);
	assert_int_equal(r.reset_after_ms, 300);
	assert_int_equal(ttl_ms, 300);
	/* A huge quantity does not overflow. */
	gcra_step(&p, 5000000, -1, INT64_MAX, &r, &new_tat, &ttl_ms);
	assert_true(r.limited);
	assert_int_equal(r.retry_after_ms, -1);
	/* A negative quantity is a peek. */
	gcra_step(&p, 5000000, 5100000, -3, &r, &new_tat, &ttl_ms);
	assert_false(r.limited);
	assert_int_equal(r.remaining, 2);
	assert_int_equal(new_tat, 5100000);
}

static void test_stale_and_far_tat(void **state)
{
	struct gcra_params p = {.max_burst = 4, .count = 1, .period_ms = 1000};
	struct gcra_result r;
	int64_t new_tat, ttl_ms;
	(void)state;

	/* A TAT long past is the same as none. */
	gcra_step(&p, 100000000, 1000, 1, &r, &new_tat, &ttl_ms);
	assert_false(r.limited);
	assert_int_equal(r.remaining, 4);
	assert_int_equal(new_tat, 101000000);
	/* A TAT beyond now + dvt (left by larger params) counts as now + dvt. */
	gcra_step(&p, 0, INT64_MAX, 1, &r, &new_tat, &ttl_ms);
	assert_true(r.limited);
	assert_int_equal(r.remaining, 0);
	assert_int_equal(r.reset_after_ms, 5000);
	assert_int_equal(r.retry_after_ms, 1000);
	/* A negative now is clamped, not trusted. */
	gcra_step(&p, -5, -1, 1, &r, &new_tat, &ttl_ms);
	assert_false(r.limited);
	assert_int_equal(new_tat, 1000000);
}

static void test_params_valid(void **state)
{
	(void)state;
	assert_true(gcra_params_valid(&(struct gcra_params){0, 1, 1}));
	assert_true(gcra_params_valid(&(struct gcra_params){99, 100, 60000}));
	assert_false(gcra_params_valid(NULL));
	assert_false(gcra_params_valid(&(struct gcra_params){-1, 1, 1000}));
	assert_false(gcra_params_valid(&(struct gcra_params){0, 0, 1000}));
	assert_false(gcra_params_valid(&(struct gcra_params){0, 1, 0}));
	assert_false(gcra_params_valid(&(struct gcra_params){0, 2000, 1})); /* T < 1 us */
	assert_false(gcra_params_valid(&(struct gcra_params){0, 1, GCRA_PERIOD_MS_MAX + 1}));
	assert_false(
	    gcra_params_valid(&(struct gcra_params){GCRA_BURST_MAX, 1, GCRA_PERIOD_MS_MAX}));
	assert_false(gcra_params_valid(&(struct gcra_params){GCRA_BURST_MAX + 1, 1, 1000}));
	assert_false(gcra_params_valid(&(struct gcra_params){0, GCRA_COUNT_MAX + 1, 1000}));

	int64_t t, dvt;
	gcra_intervals(&(struct gcra_params){4, 3, 1000}, &t, &dvt);
	assert_int_equal(t, 333333);
	assert_int_equal(dvt, 1666665);
}

static void test_headers(void **state)
{
	struct gcra_params p = {.max_burst = 4, .count = 1, .period_ms = 1000};
	struct gcra_result r;
	int64_t new_tat, ttl_ms;
	char buf[RATELIMIT_VALUE_MAX];
	(void)state;

	assert_int_equal(ratelimit_policy_value(&p, buf, sizeof(buf)), 0);
	assert_string_equal(buf, "\"org\";q=5;w=5");
	/* 100 per minute with a burst of 100: the window is the minute. */
	assert_int_equal(
	    ratelimit_policy_value(&(struct gcra_params){99, 100, 60000}, buf, sizeof(buf)), 0);
	assert_string_equal(buf, "\"org\";q=100;w=60");
	/* Windows below a second round up to one. */
	assert_int_equal(
	    ratelimit_policy_value(&(struct gcra_params){0, 10, 1000}, buf, sizeof(buf)), 0);
	assert_string_equal(buf, "\"org\";q=1;w=1");

	gcra_step(&p, 0, -1, 1, &r, &new_tat, &ttl_ms);
	assert_int_equal(ratelimit_value(&r, buf, sizeof(buf)), 0);
	assert_string_equal(buf, "\"org\";r=4;t=1");
	assert_int_equal(ratelimit_retry_after_value(&r, buf, sizeof(buf)), -1);
	assert_string_equal(buf, "");

	/* 1.2 s to the next unit rounds up to 2; a 1 ms wait is still 1 s. */
	struct gcra_result lim = {.limited = true,
	                          .limit = 5,
	                          .remaining = 0,
	                          .reset_after_ms = 5000,
	                          .next_unit_ms = 1200,
	                          .retry_after_ms = 1};
	assert_int_equal(ratelimit_value(&lim, buf, sizeof(buf)), 0);
	assert_string_equal(buf, "\"org\";r=0;t=2");
	assert_int_equal(ratelimit_retry_after_value(&lim, buf, sizeof(buf)), 0);
	assert_string_equal(buf, "1");
	lim.retry_after_ms = 3001;
	assert_int_equal(ratelimit_retry_after_value(&lim, buf, sizeof(buf)), 0);
	assert_string_equal(buf, "4");
	lim.retry_after_ms = 3000;
	assert_int_equal(ratelimit_retry_after_value(&lim, buf, sizeof(buf)), 0);
	assert_string_equal(buf, "3");
	/* Never possible: no Retry-After at all. */
	lim.retry_after_ms = -1;
	assert_int_equal(ratelimit_retry_after_value(&lim, buf, sizeof(buf)), -1);

	/* Too small a buffer is an error and leaves an empty string. */
	char tiny[8];
	assert_int_equal(ratelimit_value(&r, tiny, sizeof(tiny)), -1);
	assert_string_equal(tiny, "");
	assert_int_equal(ratelimit_policy_value(&p, tiny, 0), -1);
	assert_int_equal(ratelimit_policy_value(&(struct gcra_params){0, 0, 0}, buf, sizeof(buf)),
	                 -1);

	/* The largest values still fit RATELIMIT_VALUE_MAX. */
	struct gcra_result big = {.limited = true,
	                          .limit = INT64_MAX,
	                          .remaining = INT64_MAX,
	                          .reset_after_ms = INT64_MAX,
	                          .next_unit_ms = INT64_MAX,
	                          .retry_after_ms = INT64_MAX};
	assert_int_equal(ratelimit_value(&big, buf, sizeof(buf)), 0);
	assert_int_equal(ratelimit_retry_after_value(&big, buf, sizeof(buf)), 0);
	assert_int_equal(
	    ratelimit_policy_value(&(struct gcra_params){GCRA_BURST_MAX, 1, 1}, buf, sizeof(buf)),
	    0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_vectors),
	    cmocka_unit_test(test_vectors_t),
	    cmocka_unit_test(test_slow_limit_t),
	    cmocka_unit_test(test_sub_millisecond_interval),
	    cmocka_unit_test(test_peek_and_oversized),
	    cmocka_unit_test(test_stale_and_far_tat),
	    cmocka_unit_test(test_params_valid),
	    cmocka_unit_test(test_headers),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
