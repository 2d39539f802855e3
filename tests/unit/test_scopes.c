/*
 * test_scopes.c: unit tests for the scope lists of src/auth/keys.c
 * (space-separated, known names only, whole-name matches).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "auth/keys.h"

static void test_valid(void **state)
{
	(void)state;
	assert_true(keys_scopes_valid("gateway"));
	assert_true(keys_scopes_valid("gateway keys:read keys:write logs:read"));
	assert_true(keys_scopes_valid("webhooks:write events:ingest"));
	assert_false(keys_scopes_valid(""));
	assert_false(keys_scopes_valid(NULL));
	assert_false(keys_scopes_valid("gateway admin"));
	assert_false(keys_scopes_valid("keys:"));
	assert_false(keys_scopes_valid("gatewayx"));
}

static void test_has_scope_matches_whole_names(void **state)
{
	(void)state;
	assert_true(keys_has_scope("gateway keys:read", "keys:read"));
	assert_true(keys_has_scope("gateway keys:read", "gateway"));
	assert_false(keys_has_scope("gateway keys:read", "keys"));
	assert_false(keys_has_scope("gateway keys:read", "keys:write"));
	assert_false(keys_has_scope("", "gateway"));
}

static void test_has_all_scopes(void **state)
{
	(void)state;
	assert_true(keys_has_all_scopes("gateway keys:read logs:read", "logs:read gateway"));
	assert_true(keys_has_all_scopes("gateway", ""));
	assert_false(keys_has_all_scopes("gateway keys:write", "gateway logs:read"));
	assert_false(keys_has_all_scopes("keys:read", "keys:readx"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_valid),
	    cmocka_unit_test(test_has_scope_matches_whole_names),
	    cmocka_unit_test(test_has_all_scopes),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
