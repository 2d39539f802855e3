/*
 * test_connlimit.c: unit tests for src/http/connlimit.c: the per-address
 * limit, addresses independent of each other, IPv6 counted per /64 and
 * IPv4-mapped IPv6 as IPv4, the bound on the table, deletion keeping every
 * other address's count (against a reference model under churn), and the
 * count holding under threads.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http/connlimit.h"

static struct connlimit_key v4(const char *text)
{
	struct sockaddr_in sa = {.sin_family = AF_INET};
	assert_int_equal(inet_pton(AF_INET, text, &sa.sin_addr), 1);
	struct connlimit_key k;
	assert_true(connlimit_key((struct sockaddr *)&sa, sizeof sa, &k));
	return k;
}

static struct connlimit_key v6(const char *text)
{
	struct sockaddr_in6 sa = {.sin6_family = AF_INET6};
	assert_int_equal(inet_pton(AF_INET6, text, &sa.sin6_addr), 1);
	struct connlimit_key k;
	assert_true(connlimit_key((struct sockaddr *)&sa, sizeof sa, &k));
	return k;
}

static void test_limit_per_address(void **state)
{
	(void)state;
	struct connlimit *t = connlimit_create(100, 3);
	struct connlimit_key a = v4("203.0.113.7"), b = v4("203.0.113.8");
	for (int i = 0; i < 3; i++)
		assert_true(connlimit_acquire(t, &a));
	assert_false(connlimit_acquire(t, &a));
	assert_int_equal(connlimit_count(t, &a), 3);
	assert_true(connlimit_acquire(t, &b)); /* others are not affected */
	connlimit_release(t, &a);
	assert_true(connlimit_acquire(t, &a)); /* a slot came back */
	assert_false(connlimit_acquire(t, &a));
	for (int i = 0; i < 3; i++)
		connlimit_release(t, &a);
	connlimit_release(t, &b);
	assert_int_equal(connlimit_count(t, &a), 0);
	assert_int_equal(connlimit_addresses(t), 0);
	connlimit_destroy(t);
}

static void test_address_families(void **state)
{
	(void)state;
	struct connlimit *t = connlimit_create(100, 2);
	/* One IPv6 client has a /64: its addresses share one count. */
	struct connlimit_key p1 = v6("2001:db8:1:2::1"), p2 = v6("2001:db8:1:2:ffff::9");
	struct connlimit_key other = v6("2001:db8:1:3::1");
	assert_true(connlimit_acquire(t, &p1));
	assert_true(connlimit_acquire(t, &p2));
	assert_false(connlimit_acquire(t, &p1));
	assert_true(connlimit_acquire(t, &other));
	/* IPv4-mapped IPv6 (a dual-stack listener) is the IPv4 address. */
	struct connlimit_key m = v6("::ffff:198.51.100.4"), plain = v4("198.51.100.4");
	assert_memory_equal(m.b, plain.b, sizeof m.b);
	assert_true(connlimit_acquire(t, &m));
	assert_true(connlimit_acquire(t, &plain));
	assert_false(connlimit_acquire(t, &m));
	/* Not IP: not counted. */
	struct sockaddr sa = {.sa_family = AF_UNIX};
	struct connlimit_key k;
	assert_false(connlimit_key(&sa, sizeof sa, &k));
	assert_false(connlimit_key(NULL, 0, &k));
	connlimit_destroy(t);
}

static void test_table_is_bounded(void **state)
{
	(void)state;
	struct connlimit *t = connlimit_create(8, 4);
	char text[32];
	for (int i = 0; i < 8; i++) {
		snprintf(text, sizeof text, "10.0.0.%d", i);
		struct connlimit_key k = v4(text);
		assert_true(connlimit_acquire(t, &k));
	}
	struct connlimit_key ninth = v4("10.0.1.1"), first = v4("10.0.0.0");
	assert_false(connlimit_acquire(t, &ninth)); /* no room for another address */
	assert_true(connlimit_acquire(t, &first));  /* one already there still counts */
	connlimit_release(t, &first);
	connlimit_release(t, &first);
	assert_true(connlimit_acquire(t, &ninth));
	connlimit_destroy(t);
}

/* Random acquire/release of 300 addresses against an array model: deletion
 * (backward shift) must never lose or move another address's count. */
static void test_churn_matches_a_model(void **state)
{
	(void)state;
	enum { N = 300, PER = 5 };
	struct connlimit *t = connlimit_create(N * PER, PER);
	static unsigned model[N];
	struct connlimit_key keys[N];
	char text[48];
	for (int i = 0; i < N; i++) {
		snprintf(text, sizeof text, "2001:db8:%x::1", i);
		keys[i] = v6(text);
	}
	unsigned seed = 12345;
	for (int step = 0; step < 200000; step++) {
		seed = seed * 1103515245u + 12345u;
		int i = (int)((seed >> 8) % N);
		if ((seed >> 20) & 1) {
			bool ok = connlimit_acquire(t, &keys[i]);
			assert_int_equal(ok, model[i] < PER);
			if (ok)
				model[i]++;
		} else if (model[i]) {
			connlimit_release(t, &keys[i]);
			model[i]--;
		}
		if (step % 997 == 0) {
			unsigned addrs = 0;
			for (int j = 0; j < N; j++) {
				assert_int_equal(connlimit_count(t, &keys[j]), model[j]);
				addrs += model[j] > 0;
			}
			assert_int_equal(connlimit_addresses(t), addrs);
		}
	}
	connlimit_destroy(t);
}

struct race {
	struct connlimit *t;
	struct connlimit_key k;
	int taken;
};

static void *grab(void *arg)
{
	struct race *r = arg;
	for (int i = 0; i < 1000; i++)
		if (connlimit_acquire(r->t, &r->k))
			__atomic_fetch_add(&r->taken, 1, __ATOMIC_RELAXED);
	return NULL;
}

static void test_limit_holds_across_threads(void **state)
{
	(void)state;
	struct race r = {connlimit_create(1000, 100), v4("192.0.2.1"), 0};
	pthread_t th[4];
	for (int i = 0; i < 4; i++)
		pthread_create(&th[i], NULL, grab, &r);
	for (int i = 0; i < 4; i++)
		pthread_join(th[i], NULL);
	assert_int_equal(r.taken, 100);
	assert_int_equal(connlimit_count(r.t, &r.k), 100);
	connlimit_destroy(r.t);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_limit_per_address),
	    cmocka_unit_test(test_address_families),
	    cmocka_unit_test(test_table_is_bounded),
	    cmocka_unit_test(test_churn_matches_a_model),
	    cmocka_unit_test(test_limit_holds_across_threads),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
