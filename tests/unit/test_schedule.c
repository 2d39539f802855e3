/*
 * test_schedule.c: unit tests for src/delivery/schedule: the default
 * schedule and the text forms, every refused text with its message, the
 * exact jitter bounds over many random values (0 and UINT64_MAX included),
 * the end of the schedule, Retry-After (delta-seconds, IMF-fixdate, the
 * forms refused, the cap) and its clamp to [the step, twice it].
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "delivery/schedule.h"

#define S_MS    1000LL
#define M_MS    (60 * S_MS)
#define H_MS    (60 * M_MS)
#define DAY_MS  (24 * H_MS)
#define DEFAULT "0s,5s,5m,30m,2h,5h,10h,10h"

static struct wh_schedule parse_ok(const char *text)
{
	struct wh_schedule s;
	char err[256] = "";

	if (wh_schedule_parse(text, &s, err, sizeof(err)) != 0)
		fail_msg("refused \"%s\": %s", text, err);
	return s;
}

static void test_default_schedule(void **state)
{
	static const int64_t want[] = {0,        5 * S_MS, 5 * M_MS,  30 * M_MS,
	                               2 * H_MS, 5 * H_MS, 10 * H_MS, 10 * H_MS};
	struct wh_schedule s = parse_ok(DEFAULT);
	(void)state;

	assert_int_equal(s.n, 8);
	for (int i = 0; i < 8; i++)
		assert_int_equal(s.delay_ms[i], want[i]);
}

static void test_forms(void **state)
{
	struct wh_schedule s;
	(void)state;

	s = parse_ok("7");
	assert_int_equal(s.n, 1);
	assert_int_equal(s.delay_ms[0], 7 * S_MS);
	s = parse_ok(" 1s ,\t2m\t, 3h,4 ,007s");
	assert_int_equal(s.n, 5);
	assert_int_equal(s.delay_ms[0], 1 * S_MS);
	assert_int_equal(s.delay_ms[1], 2 * M_MS);
	assert_int_equal(s.delay_ms[2], 3 * H_MS);
	assert_int_equal(s.delay_ms[3], 4 * S_MS);
	assert_int_equal(s.delay_ms[4], 7 * S_MS);
	/* The longest step in each unit. */
	s = parse_ok("604800,604800s,10080m,168h");
	for (int i = 0; i < 4; i++)
		assert_int_equal(s.delay_ms[i], 7 * DAY_MS);
	/* WH_SCHEDULE_MAX steps. */
	char text[WH_SCHEDULE_MAX * 3];
	size_t n = 0;
	for (int i = 0; i < WH_SCHEDULE_MAX; i++)
		n += (size_t)snprintf(text + n, sizeof(text) - n, "%s1s", i ? "," : "");
	s = parse_ok(text);
	assert_int_equal(s.n, WH_SCHEDULE_MAX);
}

static void expect_refused(const char *text, const char *msg)
{
	struct wh_schedule s = {.n = 99};
	char err[256] = "";

	if (wh_schedule_parse(text, &s, err, sizeof(err)) != -1)
		fail_msg("accepted \"%s\"", text ? text : "(null)");
	assert_int_equal(s.n, 99); /* untouched */
	if (!strstr(err, msg))
		fail_msg("\"%s\": message \"%s\" lacks \"%s\"", text ? text : "(null)", err, msg);
}

static void test_refused(void **state)
{
	char many[WH_SCHEDULE_MAX * 3 + 8];
	char huge[WH_SCHEDULE_TEXT_MAX + 2];
	size_t n = 0;
	(void)state;

	expect_refused(NULL, "retry_schedule: empty");
	expect_refused("", "step 1 (\"\"): empty");
	expect_refused("  ", "step 1 (\"\"): empty");
	expect_refused("5s,,5m", "step 2 (\"\"): empty");
	expect_refused("5s,", "step 2 (\"\"): empty");
	expect_refused(",5s", "step 1");
	expect_refused("5s,5x", "step 2 (\"5x\"): not a whole number");
	expect_refused("s", "step 1 (\"s\"): not a whole number");
	expect_refused("-5s", "not a whole number");
	expect_refused("+5s", "not a whole number");
	expect_refused("1.5s", "not a whole number");
	expect_refused("5 s", "not a whole number");
	expect_refused("5ms", "not a whole number");
	expect_refused("5S", "not a whole number");
	expect_refused("5d", "not a whole number");
	expect_refused("0x10", "not a whole number");
	expect_refused("1s;2s", "not a whole number");
	expect_refused("604801", "step 1 (\"604801\"): longer than 7 days");
	expect_refused("10081m", "longer than 7 days");
	expect_refused("169h", "longer than 7 days");
	expect_refused("99999999999999999999999h", "longer than 7 days");
	expect_refused("1s,2s,0,999999999999999999999999999999999999999999", "step 4");
	for (int i = 0; i < WH_SCHEDULE_MAX + 1; i++)
		n += (size_t)snprintf(many + n, sizeof(many) - n, "%s1s", i ? "," : "");
	expect_refused(many, "more than 32 steps");
	memset(huge, ' ', sizeof(huge) - 1);
	huge[0] = '1';
	huge[sizeof(huge) - 1] = '\0';
	expect_refused(huge, "longer than 1024 bytes");
	huge[WH_SCHEDULE_TEXT_MAX] = '\0';
	assert_int_equal(parse_ok(huge).n, 1);

	/* A NULL err with cap 0 is fine. */
	struct wh_schedule s;
	assert_int_equal(wh_schedule_parse("x", &s, NULL, 0), -1);
	/* A long step is shown cut, and err stays NUL-terminated in a small cap. */
	char small[8];
	assert_int_equal(wh_schedule_parse("5s,5x", &s, small, sizeof(small)), -1);
	assert_int_equal(strlen(small), sizeof(small) - 1);
}

static uint64_t splitmix(uint64_t *x)
{
	uint64_t z = (*x += 0x9e3779b97f4a7c15ULL);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

static void test_jitter_bounds(void **state)
{
	struct wh_schedule s = parse_ok(DEFAULT ",1,3,7s,168h");
	uint64_t x = 42;
	(void)state;

	for (int a = 0; a < s.n; a++) {
		int64_t d = s.delay_ms[a];
		int64_t lo = (8 * d + 9) / 10, hi = 12 * d / 10; /* ceil(0.8 d), floor(1.2 d) */
		int64_t min = INT64_MAX, max = INT64_MIN;
		double sum = 0;
		const int runs = 20000;

		assert_int_equal(wh_schedule_delay(&s, a, 0), lo);
		assert_int_equal(wh_schedule_delay(&s, a, UINT64_MAX), hi);
		/* the middle of the random range is the middle of [lo, hi] */
		assert_int_equal(wh_schedule_delay(&s, a, 1ULL << 63), lo + (hi - lo + 1) / 2);
		for (int i = 0; i < runs; i++) {
			int64_t v = wh_schedule_delay(&s, a, splitmix(&x));
			if (v < lo || v > hi)
				fail_msg("attempt %d: %lld outside [%lld, %lld]", a, (long long)v,
				         (long long)lo, (long long)hi);
			min = v < min ? v : min;
			max = v > max ? v : max;
			sum += (double)v;
		}
		if (d == 0) {
			assert_int_equal(min, 0);
			assert_int_equal(max, 0);
			continue;
		}
		/* The jitter uses the whole range, centred on d. */
		assert_true(min < lo + (hi - lo) / 50 + 1);
		assert_true(max > hi - (hi - lo) / 50 - 1);
		assert_true(sum / runs > 0.98 * (double)d && sum / runs < 1.02 * (double)d);
	}
	/* The 5 s step: 4000 .. 6000 ms exactly. */
	assert_int_equal(wh_schedule_delay(&s, 1, 0), 4000);
	assert_int_equal(wh_schedule_delay(&s, 1, UINT64_MAX), 6000);
	/* 7 days: the bounds do not overflow. */
	assert_int_equal(wh_schedule_delay(&s, s.n - 1, UINT64_MAX), 12 * 7 * DAY_MS / 10);
}

static void test_end_of_schedule(void **state)
{
	struct wh_schedule s = parse_ok(DEFAULT);
	(void)state;

	assert_true(wh_schedule_delay(&s, 7, 0) >= 0);
	assert_int_equal(wh_schedule_delay(&s, 8, 0), -1);
	assert_int_equal(wh_schedule_delay(&s, 9, UINT64_MAX), -1);
	assert_int_equal(wh_schedule_delay(&s, -1, 0), -1);
	assert_int_equal(wh_schedule_delay(&s, WH_SCHEDULE_MAX, 0), -1);
	assert_int_equal(wh_schedule_delay(NULL, 0, 0), -1);
	assert_int_equal(wh_schedule_delay(&s, 0, UINT64_MAX), 0); /* immediately */
}

#define NOW 784111777000LL /* Sun, 06 Nov 1994 08:49:37 GMT */

static void test_retry_after(void **state)
{
	(void)state;

	/* delta-seconds */
	assert_int_equal(wh_retry_after_ms("120", NOW), 120 * S_MS);
	assert_int_equal(wh_retry_after_ms("0", NOW), 0);
	assert_int_equal(wh_retry_after_ms("007", NOW), 7 * S_MS);
	assert_int_equal(wh_retry_after_ms(" 120\r\n", NOW), 120 * S_MS);
	assert_int_equal(wh_retry_after_ms("\t3 ", NOW), 3 * S_MS);
	assert_int_equal(wh_retry_after_ms("604800", NOW), 7 * DAY_MS);
	/* capped at 7 days, however large */
	assert_int_equal(wh_retry_after_ms("604801", NOW), WH_SCHEDULE_STEP_MAX_MS);
	assert_int_equal(wh_retry_after_ms("99999999999999999999999999", NOW),
	                 WH_SCHEDULE_STEP_MAX_MS);
	/* IMF-fixdate */
	assert_int_equal(wh_retry_after_ms("Sun, 06 Nov 1994 08:49:37 GMT", NOW), 0);
	assert_int_equal(wh_retry_after_ms("Sun, 06 Nov 1994 08:51:37 GMT", NOW), 120 * S_MS);
	assert_int_equal(wh_retry_after_ms("Sun, 06 Nov 1994 08:51:37 GMT", NOW + 500), 119500);
	assert_int_equal(wh_retry_after_ms("  Mon, 07 Nov 1994 08:49:37 GMT\r\n", NOW), DAY_MS);
	assert_int_equal(wh_retry_after_ms("Wed, 29 Feb 1996 00:00:00 GMT", NOW),
	                 WH_SCHEDULE_STEP_MAX_MS);
	assert_int_equal(wh_retry_after_ms("Fri, 06 Nov 1993 08:49:37 GMT", NOW), 0); /* past */
	assert_int_equal(wh_retry_after_ms("Thu, 01 Jan 1970 00:00:00 GMT", NOW), 0);
	assert_int_equal(wh_retry_after_ms("Sun, 06 Nov 1994 08:49:37 GMT", INT64_MIN),
	                 WH_SCHEDULE_STEP_MAX_MS);
	/* every other form */
	static const char *const bad[] = {
	    NULL,
	    "",
	    "  ",
	    "-1",
	    "+5",
	    "1.5",
	    "12 34",
	    "0x10",
	    "soon",
	    "Sunday, 06-Nov-94 08:49:37 GMT", /* RFC 850 */
	    "Sun Nov  6 08:49:37 1994",       /* asctime */
	    "Sun, 06 Nov 1994 08:49:37 UTC",
	    "sun, 06 Nov 1994 08:49:37 GMT",
	    "Sun, 06 nov 1994 08:49:37 GMT",
	    "Sun, 6 Nov 1994 08:49:37 GMT",
	    "Sun, 06 Nov 1994 8:49:37 GMT",
	    "Sun,  06 Nov 1994 08:49:37 GMT",
	    "Sun, 06 Nov 1994 08:49:37 GMTX",
	    "Sun, 06 Nov 1994 08:49:37 +0000",
	    "Xyz, 06 Nov 1994 08:49:37 GMT",
	    "Sun, 06 Foo 1994 08:49:37 GMT",
	    "Sun, 31 Nov 1994 08:49:37 GMT",
	    "Sun, 29 Feb 1995 08:49:37 GMT",
	    "Sun, 00 Nov 1994 08:49:37 GMT",
	    "Sun, 06 Nov 1994 24:00:00 GMT",
	    "Sun, 06 Nov 1994 08:60:00 GMT",
	    "Sun, 06 Nov 1994 08:49:61 GMT",
	    "Sun, 06 Nov 199x 08:49:37 GMT",
	    "Sun, 06 Nov 1969 08:49:37 GMT",
	    "Sun; 06 Nov 1994 08:49:37 GMT",
	    "Sun, 06 Nov 1994 08-49-37 GMT",
	    "12\x01",
	    "                                                                  1",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		if (wh_retry_after_ms(bad[i], NOW) != -1)
			fail_msg("accepted Retry-After #%zu \"%s\"", i, bad[i] ? bad[i] : "(null)");
	/* A value of exactly 64 bytes is read; 65 is refused. */
	char v[66];
	memset(v, ' ', sizeof(v));
	v[63] = '9';
	v[64] = '\0';
	assert_int_equal(wh_retry_after_ms(v, NOW), 9 * S_MS);
	v[64] = ' ';
	v[65] = '\0';
	assert_int_equal(wh_retry_after_ms(v, NOW), -1);
}

static void test_retry_after_clamp(void **state)
{
	struct wh_schedule s = parse_ok(DEFAULT);
	(void)state;

	/* attempt 1 follows the 5 s step: [5 s, 10 s] */
	assert_int_equal(wh_retry_after_clamp(&s, 1, 1 * S_MS), 5 * S_MS);
	assert_int_equal(wh_retry_after_clamp(&s, 1, 0), 5 * S_MS);
	assert_int_equal(wh_retry_after_clamp(&s, 1, 7 * S_MS), 7 * S_MS);
	assert_int_equal(wh_retry_after_clamp(&s, 1, 5 * S_MS), 5 * S_MS);
	assert_int_equal(wh_retry_after_clamp(&s, 1, 10 * S_MS), 10 * S_MS);
	assert_int_equal(wh_retry_after_clamp(&s, 1, 10 * S_MS + 1), 10 * S_MS);
	assert_int_equal(wh_retry_after_clamp(&s, 1, 3600 * S_MS), 10 * S_MS);
	assert_int_equal(wh_retry_after_clamp(&s, 1, -1), 5 * S_MS); /* invalid header */
	/* attempt 4 follows the 2 h step */
	assert_int_equal(wh_retry_after_clamp(&s, 4, 3 * H_MS), 3 * H_MS);
	assert_int_equal(wh_retry_after_clamp(&s, 4, 7 * DAY_MS), 4 * H_MS);
	/* attempt 0 (immediately): 0 */
	assert_int_equal(wh_retry_after_clamp(&s, 0, 60 * S_MS), 0);
	/* a Retry-After never adds an attempt */
	assert_int_equal(wh_retry_after_clamp(&s, 8, 60 * S_MS), -1);
	assert_int_equal(wh_retry_after_clamp(&s, -1, 60 * S_MS), -1);
	assert_int_equal(wh_retry_after_clamp(NULL, 1, 60 * S_MS), -1);
	/* from the header to the delay */
	assert_int_equal(wh_retry_after_clamp(&s, 2, wh_retry_after_ms("420", NOW)), 7 * M_MS);
	assert_int_equal(wh_retry_after_clamp(&s, 2, wh_retry_after_ms("later", NOW)), 5 * M_MS);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_default_schedule),  cmocka_unit_test(test_forms),
	    cmocka_unit_test(test_refused),           cmocka_unit_test(test_jitter_bounds),
	    cmocka_unit_test(test_end_of_schedule),   cmocka_unit_test(test_retry_after),
	    cmocka_unit_test(test_retry_after_clamp),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
