/*
 * test_console_roles.c: src/console/roles.c, the rights table
 * (docs/console.md "Roles and rights"): every role's every right, the
 * routes whose session right is narrower than their key scope, operator
 * and data-plane scopes held by no role, and what each role may grant.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <string.h>

#include "console/roles.h"

static void test_names(void **state)
{
	(void)state;
	assert_int_equal(console_role_parse("owner"), ROLE_OWNER);
	assert_int_equal(console_role_parse("viewer"), ROLE_VIEWER);
	assert_int_equal(console_role_parse("Owner"), -1);
	assert_int_equal(console_role_parse(""), -1);
	assert_int_equal(console_role_parse(NULL), -1);
	assert_string_equal(console_role_name(ROLE_DEVELOPER), "developer");
}

static void test_the_table(void **state)
{
	(void)state;
	/* right: owner, admin, developer, viewer (docs/console.md's table). */
	static const struct {
		const char *right;
		bool want[ROLE_COUNT];
	} rows[] = {
	    {"keys:read", {true, true, true, true}},
	    {"keys:write", {true, true, true, false}},
	    {"projects:write", {true, true, false, false}},
	    {"logs:read", {true, true, true, true}},
	    {"webhooks:read", {true, true, true, true}},
	    {"webhooks:write", {true, true, true, false}},
	    {"members:write", {true, false, false, false}},
	    {"root", {false, false, false, false}},
	    {"gateway", {false, false, false, false}},
	    {"events:ingest", {false, false, false, false}},
	    {"nonsense", {false, false, false, false}},
	};
	for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++)
		for (int r = 0; r < ROLE_COUNT; r++)
			if (console_role_allows((enum console_role)r, rows[i].right) !=
			    rows[i].want[r])
				fail_msg("%s for %s", rows[i].right,
				         console_role_name((enum console_role)r));
	assert_false(console_role_allows((enum console_role)ROLE_COUNT, "keys:read"));
	assert_false(console_role_allows((enum console_role) - 1, "keys:read"));
	assert_false(console_role_allows(ROLE_OWNER, NULL));
	int n = 0;
	for (const char *const *r = console_rights(); *r; r++)
		n++;
	assert_int_equal(n, 7);
}

static void test_route_rights(void **state)
{
	(void)state;
	assert_string_equal(console_route_right("POST", "/v1/projects", "keys:write"),
	                    "projects:write");
	assert_string_equal(console_route_right("PATCH", "/v1/projects/{projectId}", "keys:write"),
	                    "projects:write");
	assert_string_equal(
	    console_route_right("PUT", "/v1/projects/{projectId}/capi", "keys:write"),
	    "projects:write");
	assert_string_equal(console_route_right("GET", "/v1/webhook-endpoints", "webhooks:write"),
	                    "webhooks:read");
	assert_string_equal(console_route_right("POST", "/v1/webhook-endpoints", "webhooks:write"),
	                    "webhooks:write");
	assert_string_equal(console_route_right("GET", "/v1/projects", "keys:read"), "keys:read");
	assert_string_equal(console_route_right("POST", "/v1/api-keys", "keys:write"),
	                    "keys:write");
	assert_string_equal(console_route_right("GET", "/v1/orgs", "root"), "root");
}

/* Only a developer's key and webhook rights are narrowed to what is bound to a project. */
static void test_project_only(void **state)
{
	(void)state;
	assert_false(console_role_project_only(ROLE_OWNER));
	assert_false(console_role_project_only(ROLE_ADMIN));
	assert_true(console_role_project_only(ROLE_DEVELOPER));
	assert_false(console_role_project_only(ROLE_VIEWER));
	assert_false(console_role_project_only(ROLE_COUNT));
}

static void test_grantable_scopes(void **state)
{
	(void)state;
	for (int r = ROLE_OWNER; r <= ROLE_DEVELOPER; r++)
		assert_string_equal(console_role_scopes((enum console_role)r),
		                    "gateway keys:read keys:write logs:read webhooks:write");
	assert_string_equal(console_role_scopes(ROLE_VIEWER), "");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_names),        cmocka_unit_test(test_the_table),
	    cmocka_unit_test(test_route_rights), cmocka_unit_test(test_grantable_scopes),
	    cmocka_unit_test(test_project_only),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
