/*
 * test_bfguard.c: unit tests for src/auth/bfguard.c: the sliding-window
 * failure count per name (address or key id), Retry-After, other names
 * unaffected, the suspect verdict, eviction that keeps a name under attack, and
 * the window sliding past old failures.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>

#include "auth/bfguard.h"

#define WINDOW_MS 60000

static void test_blocks_at_the_threshold_per_address(void **state)
{
	(void)state;
	struct bfguard *g = bfguard_create(3, 60, 1024);
	int64_t t = 10LL * WINDOW_MS + 1000, retry = 0;
	for (int i = 0; i < 2; i++)
		bfguard_fail(g, "203.0.113.7", t);
	assert_true(bfguard_check(g, "203.0.113.7", t, &retry) != BF_BLOCKED);
	bfguard_fail(g, "203.0.113.7", t);
	assert_true(bfguard_check(g, "203.0.113.7", t, &retry) == BF_BLOCKED);
	assert_true(retry >= 1 && retry <= 2 * 60 + 1);
	assert_true(bfguard_check(g, "203.0.113.8", t, &retry) != BF_BLOCKED);
	assert_true(bfguard_check(g, "2001:db8::1", t, &retry) != BF_BLOCKED);
	bfguard_destroy(g);
}

static void test_the_window_slides(void **state)
{
	(void)state;
	struct bfguard *g = bfguard_create(4, 60, 1024);
	int64_t start = 20LL * WINDOW_MS, retry;
	for (int i = 0; i < 5; i++)
		bfguard_fail(g, "198.51.100.1", start + 59000); /* late in one window */
	assert_true(bfguard_check(g, "198.51.100.1", start + 59000, &retry) == BF_BLOCKED);
	/* Early in the next window the previous one still weighs almost fully (4.9)... */
	assert_true(bfguard_check(g, "198.51.100.1", start + WINDOW_MS + 1000, &retry) ==
	            BF_BLOCKED);
	/* ... half-way through it weighs half: 2.5 < 4. */
	assert_true(bfguard_check(g, "198.51.100.1", start + WINDOW_MS + 30000, &retry) !=
	            BF_BLOCKED);
	/* Two windows later nothing is left. */
	assert_true(bfguard_check(g, "198.51.100.1", start + 3 * WINDOW_MS, &retry) != BF_BLOCKED);
	bfguard_destroy(g);
}

static void test_bounded_table(void **state)
{
	(void)state;
	struct bfguard *g = bfguard_create(1, 60, 16);
	int64_t t = 5LL * WINDOW_MS, retry;
	char addr[32];
	for (int i = 0; i < 1000; i++) {
		snprintf(addr, sizeof addr, "10.0.%d.%d", i / 256, i % 256);
		bfguard_fail(g, addr, t);
	}
	/* The most recent address is still tracked; memory stayed at 16 slots. */
	assert_true(bfguard_check(g, addr, t, &retry) == BF_BLOCKED);
	bfguard_destroy(g);
}

static void test_suspect_after_a_failure_until_two_windows_pass(void **state)
{
	(void)state;
	struct bfguard *g = bfguard_create(5, 60, 1024);
	int64_t t = 7LL * WINDOW_MS + 500, retry;
	assert_int_equal(bfguard_check(g, "01J00000000000000000000000", t, &retry), BF_CLEAR);
	bfguard_fail(g, "01J00000000000000000000000", t);
	assert_int_equal(bfguard_check(g, "01J00000000000000000000000", t, &retry), BF_SUSPECT);
	assert_int_equal(bfguard_check(g, "01J00000000000000000000000", t + WINDOW_MS, &retry),
	                 BF_SUSPECT);
	assert_int_equal(bfguard_check(g, "01J00000000000000000000000", t + 2 * WINDOW_MS, &retry),
	                 BF_CLEAR);
	assert_int_equal(bfguard_check(g, "01J00000000000000000000001", t, &retry), BF_CLEAR);
	bfguard_destroy(g);
}

/*
 * A flood of one-off names (random key ids, each failing once) must not
 * push a name under attack out of a full table: its count would restart
 * at zero and the guard would never engage.
 */
static void test_a_flood_of_one_off_names_keeps_the_name_under_attack(void **state)
{
	(void)state;
	struct bfguard *g = bfguard_create(10, 60, 16);
	int64_t t = 3LL * WINDOW_MS, retry;
	for (int i = 0; i < 10; i++)
		bfguard_fail(g, "victim", t);
	assert_int_equal(bfguard_check(g, "victim", t, &retry), BF_BLOCKED);
	char name[32];
	for (int i = 0; i < 5000; i++) {
		snprintf(name, sizeof name, "random-%d", i);
		bfguard_fail(g, name, t);
	}
	assert_int_equal(bfguard_check(g, "victim", t, &retry), BF_BLOCKED);
	bfguard_destroy(g);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_blocks_at_the_threshold_per_address),
	    cmocka_unit_test(test_the_window_slides),
	    cmocka_unit_test(test_bounded_table),
	    cmocka_unit_test(test_suspect_after_a_failure_until_two_windows_pass),
	    cmocka_unit_test(test_a_flood_of_one_off_names_keeps_the_name_under_attack),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
