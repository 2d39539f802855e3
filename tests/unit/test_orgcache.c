/*
 * test_orgcache.c: unit tests for src/policy/orgcache.c: a row put is
 * served; an invalidated or cleared row is no longer served fresh but stays
 * readable as stale (the outage fallback of check 7) until a put makes it
 * fresh again; an unknown organisation is a miss either way.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "policy/orgcache.h"

static struct store_org org(const char *id, int64_t requests)
{
	struct store_org o;
	memset(&o, 0, sizeof o);
	strcpy(o.id, id);
	o.rl_requests = requests;
	return o;
}

static void test_put_get_invalidate_stale(void **state)
{
	(void)state;
	struct orgcache *oc = orgcache_create(16);
	struct store_org a = org("org_a", 10), b = org("org_b", 20), out;
	orgcache_put(oc, &a);
	orgcache_put(oc, &b);
	assert_true(orgcache_get(oc, "org_a", &out));
	assert_int_equal(out.rl_requests, 10);

	orgcache_invalidate(oc, "org_a");
	assert_false(orgcache_get(oc, "org_a", &out));      /* re-read from the store */
	assert_true(orgcache_get_stale(oc, "org_a", &out)); /* unless it is down */
	assert_int_equal(out.rl_requests, 10);
	assert_true(orgcache_get(oc, "org_b", &out)); /* the other row untouched */

	a.rl_requests = 11; /* the re-read row is fresh again, in the same slot */
	orgcache_put(oc, &a);
	assert_true(orgcache_get(oc, "org_a", &out));
	assert_int_equal(out.rl_requests, 11);

	orgcache_clear(oc);
	assert_false(orgcache_get(oc, "org_a", &out));
	assert_false(orgcache_get(oc, "org_b", &out));
	assert_true(orgcache_get_stale(oc, "org_b", &out));
	assert_int_equal(out.rl_requests, 20);

	assert_false(orgcache_get(oc, "org_c", &out));
	assert_false(orgcache_get_stale(oc, "org_c", &out));
	orgcache_destroy(oc);
}

static void test_full_table_keeps_serving_new_rows(void **state)
{
	(void)state;
	struct orgcache *oc = orgcache_create(4);
	char id[16];
	for (int i = 0; i < 32; i++) { /* more rows than slots, every one stale then */
		snprintf(id, sizeof id, "org_%d", i);
		struct store_org o = org(id, i), out;
		orgcache_put(oc, &o);
		assert_true(orgcache_get(oc, id, &out));
		assert_int_equal(out.rl_requests, i);
		orgcache_clear(oc);
	}
	orgcache_destroy(oc);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_put_get_invalidate_stale),
	    cmocka_unit_test(test_full_table_keeps_serving_new_rows),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
