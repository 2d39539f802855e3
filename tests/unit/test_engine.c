/*
 * test_engine.c: unit tests for the delivery engine's pure decisions
 * (src/delivery/engine.c): the per-endpoint token bucket (burst of one
 * second, refill, no limit, a clock going back), the error class of a
 * transfer, the outcome of an attempt (2xx success; 3xx/4xx/5xx "status";
 * 410 ends it and disables; 429/503 Retry-After clamped to [step, 2 step];
 * the schedule's end; mail accepted/refused), and the response text kept
 * for the record (valid UTF-8, control bytes replaced, never cut inside a
 * character, bounded).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <string.h>

#include "delivery/engine.h"

static void test_token_bucket(void **state)
{
	(void)state;
	struct token_bucket b = {.milli = -1};
	int64_t t = 1000000;
	/* A new bucket holds one second's worth: rate tokens at once, then none. */
	for (int i = 0; i < 5; i++)
		assert_true(token_bucket_take(&b, 5, t));
	assert_false(token_bucket_take(&b, 5, t));
	assert_int_equal(token_bucket_wait_ms(&b, 5, t), 200);
	assert_false(token_bucket_take(&b, 5, t + 199));
	assert_true(token_bucket_take(&b, 5, t + 200));
	assert_false(token_bucket_take(&b, 5, t + 200));
	/* Idle for long: never more than the burst. */
	int n = 0;
	while (token_bucket_take(&b, 5, t + 100000))
		n++;
	assert_int_equal(n, 5);
	/* A clock that goes back refills rather than stalls forever. */
	assert_true(token_bucket_take(&b, 5, t));
	/* rate <= 0: no limit. */
	struct token_bucket u = {.milli = -1};
	for (int i = 0; i < 10000; i++)
		assert_true(token_bucket_take(&u, -1, t));
	assert_int_equal(token_bucket_wait_ms(&u, -1, t), 0);
	/* rate 1: one a second. */
	struct token_bucket one = {.milli = -1};
	assert_true(token_bucket_take(&one, 1, t));
	assert_false(token_bucket_take(&one, 1, t + 999));
	assert_int_equal(token_bucket_wait_ms(&one, 1, t + 999), 1);
	assert_true(token_bucket_take(&one, 1, t + 1000));
}

static void test_error_classes(void **state)
{
	(void)state;
	assert_null(engine_error_class(CURLE_OK, false, false));
	assert_string_equal(engine_error_class(CURLE_OPERATION_TIMEDOUT, false, false), "timeout");
	assert_string_equal(engine_error_class(CURLE_COULDNT_RESOLVE_HOST, false, false), "dns");
	assert_string_equal(engine_error_class(CURLE_COULDNT_CONNECT, false, false), "connect");
	assert_string_equal(engine_error_class(CURLE_RECV_ERROR, false, false), "connect");
	assert_string_equal(engine_error_class(CURLE_PEER_FAILED_VERIFICATION, false, false),
	                    "tls");
	assert_string_equal(engine_error_class(CURLE_SSL_CONNECT_ERROR, false, false), "tls");
	/* A refused address makes curl fail to connect: the refusal is what counts. */
	assert_string_equal(engine_error_class(CURLE_COULDNT_CONNECT, true, false),
	                    "egress_refused");
	assert_string_equal(engine_error_class(CURLE_WRITE_ERROR, false, true), "too_large");
}

static struct wh_schedule sched(void)
{
	struct wh_schedule s;
	assert_int_equal(wh_schedule_parse("0s,5s,5m,30m", &s, NULL, 0), 0);
	return s;
}

static void test_decisions(void **state)
{
	(void)state;
	struct wh_schedule s = sched();
	int64_t now = 1800000000000LL;
	struct engine_decision d;
	struct engine_result r = {.rc = CURLE_OK, .status = 204};
	engine_decide(&s, 0, &r, now, 0, &d);
	assert_true(d.succeeded);
	assert_null(d.error);
	assert_int_equal(d.next_attempt_at, -1);

	/* 3xx is a failure (never followed); the next step is 5 s +/-20 %. */
	r.status = 302;
	engine_decide(&s, 0, &r, now, 0, &d);
	assert_false(d.succeeded);
	assert_string_equal(d.error, "status");
	assert_false(d.gone);
	assert_int_equal(d.next_attempt_at, now + 4000); /* rnd 0: the low bound */
	engine_decide(&s, 0, &r, now, UINT64_MAX, &d);
	assert_int_equal(d.next_attempt_at, now + 6000);

	/* 500 after the second attempt: the third step (5 min). */
	r.status = 500;
	engine_decide(&s, 1, &r, now, 0, &d);
	assert_int_equal(d.next_attempt_at, now + 240000);

	/* The schedule's end: failed. */
	engine_decide(&s, 3, &r, now, 0, &d);
	assert_string_equal(d.error, "status");
	assert_int_equal(d.next_attempt_at, -1);

	/* 410: gone, no retry. */
	r.status = 410;
	engine_decide(&s, 0, &r, now, 0, &d);
	assert_true(d.gone);
	assert_int_equal(d.next_attempt_at, -1);

	/* 429/503 + Retry-After: clamped to [step, 2 step] of the next attempt (5 s). */
	r.status = 429;
	r.retry_after = "1";
	engine_decide(&s, 0, &r, now, 0, &d);
	assert_int_equal(d.next_attempt_at, now + 5000);
	r.retry_after = "8";
	engine_decide(&s, 0, &r, now, 0, &d);
	assert_int_equal(d.next_attempt_at, now + 8000);
	r.status = 503;
	r.retry_after = "3600";
	engine_decide(&s, 0, &r, now, 0, &d);
	assert_int_equal(d.next_attempt_at, now + 10000);
	/* Retry-After on another status is ignored: the jittered step. */
	r.status = 500;
	engine_decide(&s, 0, &r, now, 0, &d);
	assert_int_equal(d.next_attempt_at, now + 4000);
	r.retry_after = NULL;

	/* Transport errors: their class, the schedule. */
	struct engine_result t = {.rc = CURLE_OPERATION_TIMEDOUT};
	engine_decide(&s, 0, &t, now, 0, &d);
	assert_string_equal(d.error, "timeout");
	assert_int_equal(d.next_attempt_at, now + 4000);
	t = (struct engine_result){.rc = CURLE_COULDNT_CONNECT, .egress_refused = true};
	engine_decide(&s, 0, &t, now, 0, &d);
	assert_string_equal(d.error, "egress_refused");
	/* A 2xx whose body passed the bound is too_large, not a success. */
	t = (struct engine_result){.rc = CURLE_WRITE_ERROR, .status = 200, .too_large = true};
	engine_decide(&s, 0, &t, now, 0, &d);
	assert_false(d.succeeded);
	assert_string_equal(d.error, "too_large");

	/* Not sent (no secret to sign with): failed, no error class, the next step. */
	struct engine_result ns = {.rc = CURLE_OK, .not_sent = true};
	engine_decide(&s, 0, &ns, now, 0, &d);
	assert_false(d.succeeded);
	assert_null(d.error);
	assert_false(d.gone);
	assert_int_equal(d.next_attempt_at, now + 4000);
	engine_decide(&s, 3, &ns, now, 0, &d);
	assert_int_equal(d.next_attempt_at, -1);

	/* Mail: accepted (250) is success; a refusal has its reply code as status. */
	struct engine_result m = {.rc = CURLE_OK, .status = 250, .mail = true};
	engine_decide(&s, 0, &m, now, 0, &d);
	assert_true(d.succeeded);
	m = (struct engine_result){.rc = CURLE_SEND_ERROR, .status = 550, .mail = true};
	engine_decide(&s, 0, &m, now, 0, &d);
	assert_false(d.succeeded);
	assert_string_equal(d.error, "status");
	assert_false(d.gone);
	assert_int_equal(d.next_attempt_at, now + 4000);
	m = (struct engine_result){.rc = CURLE_COULDNT_CONNECT, .mail = true};
	engine_decide(&s, 0, &m, now, 0, &d);
	assert_string_equal(d.error, "connect");
}

static void test_response_text(void **state)
{
	(void)state;
	char out[16];
	assert_int_equal(engine_response_text("ok\r\n", 4, out, sizeof out), 4);
	assert_string_equal(out, "ok\r\n");
	/* NUL, other control bytes and broken UTF-8 become '?'. */
	assert_int_equal(engine_response_text("a\0b\x01\xff\xc3", 6, out, sizeof out), 6);
	assert_string_equal(out, "a?b???");
	/* Valid multi-byte characters stay, and are never cut. */
	const char *e =
	    "\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9"; /* 8 é */
	size_t n = engine_response_text(e, strlen(e), out, sizeof out);
	assert_int_equal(n, 14); /* 7 whole characters fit in 15 bytes */
	assert_memory_equal(out, e, 14);
	/* Overlong and surrogate forms are broken. */
	assert_int_equal(engine_response_text("\xc0\xaf\xed\xa0\x80", 5, out, sizeof out), 5);
	assert_string_equal(out, "?????");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_token_bucket),
	    cmocka_unit_test(test_error_classes),
	    cmocka_unit_test(test_decisions),
	    cmocka_unit_test(test_response_text),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
