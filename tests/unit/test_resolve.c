/*
 * test_resolve.c: unit tests for src/http/resolve.c, the upstream name
 * table: IP literals are converted without the table, a registered name is
 * looked up without blocking, unknown and unresolvable names are refused,
 * and shutdown forgets every name (and stops the refresher thread).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <string.h>

#include "http/resolve.h"

static void test_ipv4_literal_needs_no_table(void **state)
{
	(void)state;
	struct sockaddr_storage ss;
	socklen_t len = 0;
	assert_int_equal(resolve_lookup("127.0.0.1", "8080", &ss, &len), 0);
	const struct sockaddr_in *v4 = (const struct sockaddr_in *)&ss;
	assert_int_equal(len, sizeof *v4);
	assert_int_equal(v4->sin_family, AF_INET);
	assert_int_equal(ntohs(v4->sin_port), 8080);
	assert_int_equal(ntohl(v4->sin_addr.s_addr), 0x7f000001);
	assert_int_equal(resolve_register("10.1.2.3", "80"), 0);
}

static void test_ipv6_literal_needs_no_table(void **state)
{
	(void)state;
	struct sockaddr_storage ss;
	socklen_t len = 0;
	assert_int_equal(resolve_lookup("::1", "443", &ss, &len), 0);
	const struct sockaddr_in6 *v6 = (const struct sockaddr_in6 *)&ss;
	assert_int_equal(len, sizeof *v6);
	assert_int_equal(v6->sin6_family, AF_INET6);
	assert_int_equal(ntohs(v6->sin6_port), 443);
	assert_true(IN6_IS_ADDR_LOOPBACK(&v6->sin6_addr));
}

static void test_registered_name_is_looked_up_and_forgotten_at_shutdown(void **state)
{
	(void)state;
	struct sockaddr_storage ss;
	socklen_t len = 0;
	/* Not registered: never resolved on the caller's thread. */
	assert_int_equal(resolve_lookup("localhost", "9", &ss, &len), -1);
	assert_int_equal(resolve_register("localhost", "9"), 0);
	assert_int_equal(resolve_lookup("localhost", "9", &ss, &len), 0);
	assert_true(ss.ss_family == AF_INET || ss.ss_family == AF_INET6);
	assert_int_equal(ntohs(ss.ss_family == AF_INET ? ((struct sockaddr_in *)&ss)->sin_port
	                                               : ((struct sockaddr_in6 *)&ss)->sin6_port),
	                 9);
	/* Same name, another port: a separate entry. */
	assert_int_equal(resolve_lookup("localhost", "10", &ss, &len), -1);
	resolve_shutdown();
	assert_int_equal(resolve_lookup("localhost", "9", &ss, &len), -1);
}

static void test_unresolvable_name_is_refused_until_it_resolves(void **state)
{
	(void)state;
	struct sockaddr_storage ss;
	socklen_t len = 0;
	/* .invalid never resolves (RFC 6761). */
	assert_int_equal(resolve_register("upstream.invalid", "80"), -1);
	assert_int_equal(resolve_lookup("upstream.invalid", "80", &ss, &len), -1);
	resolve_shutdown();
}

static void test_oversized_names_are_refused(void **state)
{
	(void)state;
	char host[300];
	memset(host, 'a', sizeof host - 1);
	host[sizeof host - 1] = '\0';
	assert_int_equal(resolve_register(host, "80"), -1);
	assert_int_equal(resolve_register("localhost", "123456789"), -1);
	resolve_shutdown();
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_ipv4_literal_needs_no_table),
	    cmocka_unit_test(test_ipv6_literal_needs_no_table),
	    cmocka_unit_test(test_registered_name_is_looked_up_and_forgotten_at_shutdown),
	    cmocka_unit_test(test_unresolvable_name_is_refused_until_it_resolves),
	    cmocka_unit_test(test_oversized_names_are_refused),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
