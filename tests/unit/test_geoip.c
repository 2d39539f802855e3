/*
 * test_geoip.c: country lookups (src/ingest/geoip.c) against the real
 * database named by PORTCULLIS_GEOIP_DB (the ip-location-db country MMDB
 * that scripts/deps.sh installs); skipped when that is unset or missing.
 * Public addresses get their country, IPv4-mapped IPv6 counts as IPv4, and
 * private, reserved and malformed input is refused even where the data
 * itself claims a country (it says "AU" for 192.168.0.0/16).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/log.h"
#include "ingest/geoip.h"

static int setup(void **state)
{
	const char *path = getenv("PORTCULLIS_GEOIP_DB");
	if (!path || !*path || access(path, R_OK) != 0) {
		*state = NULL;
		return 0;
	}
	char err[512];
	struct geoip *g = geoip_open(path, err, sizeof err);
	if (!g)
		fail_msg("geoip_open: %s", err);
	*state = g;
	return 0;
}

static int teardown(void **state)
{
	geoip_close(*state);
	return 0;
}

static struct geoip *db(void **state)
{
	if (!*state)
		skip();
	return *state;
}

static void test_public_addresses(void **state)
{
	struct geoip *g = db(state);
	char cc[3] = "";
	assert_true(geoip_country(g, "8.8.8.8", cc));
	assert_string_equal(cc, "US");

	memset(cc, 0, sizeof cc);
	assert_true(geoip_country(g, "1.1.1.1", cc));
	assert_int_equal(strlen(cc), 2);
	assert_true(cc[0] >= 'A' && cc[0] <= 'Z' && cc[1] >= 'A' && cc[1] <= 'Z');

	assert_true(geoip_country(g, "2001:4860:4860::8888", cc));
	assert_string_equal(cc, "US");
	/* A dual-stack socket's view of an IPv4 client. */
	assert_true(geoip_country(g, "::ffff:8.8.8.8", cc));
	assert_string_equal(cc, "US");
}

static void test_refused(void **state)
{
	struct geoip *g = db(state);
	static const char *const bad[] = {
	    "127.0.0.1",
	    "garbage",
	    "",
	    "10.1.2.3",
	    "192.168.1.1",
	    "172.16.0.1",
	    "172.31.255.255",
	    "100.64.0.1",
	    "169.254.1.1",
	    "0.0.0.0",
	    "224.0.0.1",
	    "255.255.255.255",
	    "192.0.2.1",
	    "198.51.100.7",
	    "203.0.113.9",
	    "198.18.0.1",
	    "::1",
	    "::",
	    "fe80::1",
	    "fc00::1",
	    "ff02::1",
	    "2001:db8::1",
	    "::ffff:192.168.1.1",
	    "::ffff:127.0.0.1",
	    "8.8.8.8 ",
	    " 8.8.8.8",
	    "8.8.8",
	    "08.8.8.8",
	    "8.8.8.8/32",
	    "fe80::1%eth0",
	    "example.com",
	    "1.1.1.1.1",
	    "2001:4860:4860::8888:1:2:3:4:5:6",
	    "8.8.8.8aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		char cc[3] = "-";
		if (geoip_country(g, bad[i], cc))
			fail_msg("\"%s\" gave %s", bad[i], cc);
		assert_string_equal(cc, "-"); /* untouched */
	}
	char cc[3];
	assert_false(geoip_country(g, NULL, cc));
	/* Private ranges end where they should. */
	assert_true(geoip_country(g, "172.32.0.1", cc));
}

static void test_null_and_missing(void **state)
{
	(void)state;
	char cc[3] = "-";
	assert_false(geoip_country(NULL, "8.8.8.8", cc));
	assert_string_equal(cc, "-");
	geoip_close(NULL);
	char err[256] = "";
	assert_null(geoip_open("/nonexistent/geo.mmdb", err, sizeof err));
	assert_non_null(strstr(err, "/nonexistent/geo.mmdb"));
	/* Not an MMDB file. */
	err[0] = '\0';
	assert_null(geoip_open("/etc/hostname", err, sizeof err));
	assert_true(err[0] != '\0');
}

static void *lookups(void *arg)
{
	struct geoip *g = arg;
	for (int i = 0; i < 20000; i++) {
		char cc[3];
		if (!geoip_country(g, (i & 1) ? "8.8.8.8" : "2001:4860:4860::8888", cc) ||
		    strcmp(cc, "US") != 0)
			return (void *)1;
	}
	return NULL;
}

/* One handle, many threads, no lock. */
static void test_threads(void **state)
{
	struct geoip *g = db(state);
	pthread_t t[4];
	for (int i = 0; i < 4; i++)
		assert_int_equal(pthread_create(&t[i], NULL, lookups, g), 0);
	for (int i = 0; i < 4; i++) {
		void *rv = (void *)1;
		pthread_join(t[i], &rv);
		assert_null(rv);
	}
}

int main(void)
{
	log_setup(LOG_ERROR, false);
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_public_addresses, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_refused, setup, teardown),
	    cmocka_unit_test(test_null_and_missing),
	    cmocka_unit_test_setup_teardown(test_threads, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
