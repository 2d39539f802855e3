/*
 * test_egress.c: unit tests for src/delivery/egress: every refused IPv4 and
 * IPv6 range with an address just inside and just outside it, every IPv6
 * form that embeds an IPv4 address (mapped, compatible, NAT64 well-known and
 * local-use, 6to4, Teredo server and client), allow ranges (parsing, their
 * errors, and that they win over refusal), and egress_check_url's reasons,
 * including the IPv4 spellings curl normalises (0x7f.1, 2130706433,
 * 0177.0.0.1, 127.1) and bracketed mapped forms.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>

#include "delivery/egress.h"

/* An address text as a sockaddr (either family). */
static struct sockaddr_storage addr(const char *text)
{
	struct sockaddr_storage ss;

	memset(&ss, 0, sizeof(ss));
	if (strchr(text, ':')) {
		struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&ss;
		in6->sin6_family = AF_INET6;
		in6->sin6_port = htons(443);
		if (inet_pton(AF_INET6, text, &in6->sin6_addr) != 1)
			fail_msg("bad test address %s", text);
	} else {
		struct sockaddr_in *in = (struct sockaddr_in *)&ss;
		in->sin_family = AF_INET;
		in->sin_port = htons(443);
		if (inet_pton(AF_INET, text, &in->sin_addr) != 1)
			fail_msg("bad test address %s", text);
	}
	return ss;
}

static const char *cls(const char *text)
{
	struct sockaddr_storage ss = addr(text);
	return egress_addr_class((const struct sockaddr *)&ss);
}

static bool allowed(const char *text, const struct egress_ranges *allow)
{
	struct sockaddr_storage ss = addr(text);
	return egress_addr_allowed((const struct sockaddr *)&ss, allow);
}

struct want {
	const char *addr;
	const char *cls; /* NULL: public */
};

static void check_table(const struct want *w, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		const char *got = cls(w[i].addr);
		if ((got == NULL) != (w[i].cls == NULL) || (got && strcmp(got, w[i].cls) != 0))
			fail_msg("%s: class %s, want %s", w[i].addr, got ? got : "public",
			         w[i].cls ? w[i].cls : "public");
		/* Refused exactly when classified, with no allow ranges. */
		assert_int_equal(allowed(w[i].addr, NULL), w[i].cls == NULL);
	}
}

static void test_ipv4_ranges(void **state)
{
	static const struct want w[] = {
	    {"0.0.0.0", "unspecified"},
	    {"0.255.255.255", "unspecified"},
	    {"1.0.0.0", NULL},
	    {"9.255.255.255", NULL},
	    {"10.0.0.0", "private"},
	    {"10.255.255.255", "private"},
	    {"11.0.0.0", NULL},
	    {"100.63.255.255", NULL},
	    {"100.64.0.0", "cgnat"},
	    {"100.127.255.255", "cgnat"},
	    {"100.128.0.0", NULL},
	    {"126.255.255.255", NULL},
	    {"127.0.0.1", "loopback"},
	    {"127.0.0.0", "loopback"},
	    {"127.255.255.255", "loopback"},
	    {"128.0.0.0", NULL},
	    {"169.253.255.255", NULL},
	    {"169.254.0.0", "link_local"},
	    {"169.254.169.254", "metadata"},
	    {"169.254.169.253", "link_local"},
	    {"169.254.255.255", "link_local"},
	    {"169.255.0.0", NULL},
	    {"172.15.255.255", NULL},
	    {"172.16.0.0", "private"},
	    {"172.31.255.255", "private"},
	    {"172.32.0.0", NULL},
	    {"191.255.255.255", NULL},
	    {"192.0.0.0", "reserved"},
	    {"192.0.0.255", "reserved"},
	    {"192.0.1.0", NULL},
	    {"192.0.2.0", "documentation"},
	    {"192.0.2.255", "documentation"},
	    {"192.0.3.0", NULL},
	    {"192.167.255.255", NULL},
	    {"192.168.0.0", "private"},
	    {"192.168.255.255", "private"},
	    {"192.169.0.0", NULL},
	    {"198.17.255.255", NULL},
	    {"198.18.0.0", "reserved"},
	    {"198.19.255.255", "reserved"},
	    {"198.20.0.0", NULL},
	    {"198.51.99.255", NULL},
	    {"198.51.100.0", "documentation"},
	    {"198.51.100.255", "documentation"},
	    {"198.51.101.0", NULL},
	    {"203.0.112.255", NULL},
	    {"203.0.113.0", "documentation"},
	    {"203.0.113.255", "documentation"},
	    {"203.0.114.0", NULL},
	    {"223.255.255.255", NULL},
	    {"224.0.0.0", "multicast"},
	    {"239.255.255.255", "multicast"},
	    {"240.0.0.0", "reserved"},
	    {"255.255.255.254", "reserved"},
	    {"255.255.255.255", "broadcast"},
	    {"8.8.8.8", NULL},
	    {"1.1.1.1", NULL},
	};
	(void)state;
	check_table(w, sizeof(w) / sizeof(w[0]));
}

static void test_ipv6_ranges(void **state)
{
	static const struct want w[] = {
	    {"::", "unspecified"},
	    {"::1", "loopback"},
	    {"::2", "unspecified"}, /* ::0.0.0.2: compatible form of 0/8 */
	    {"fc00::", "private"},
	    {"fdff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", "private"},
	    {"fbff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", "reserved"}, /* outside 2000::/3 */
	    {"fe00::", "reserved"},
	    {"fe80::", "link_local"},
	    {"fe80::1", "link_local"},
	    {"febf:ffff:ffff:ffff:ffff:ffff:ffff:ffff", "link_local"},
	    {"fec0::", "reserved"},
	    {"feff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", "reserved"},
	    {"ff00::", "multicast"},
	    {"ff02::1", "multicast"},
	    {"ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", "multicast"},
	    {"2001:db8::", "documentation"},
	    {"2001:db8:ffff:ffff:ffff:ffff:ffff:ffff", "documentation"},
	    {"2001:db7:ffff:ffff:ffff:ffff:ffff:ffff", NULL},
	    {"2001:db9::", NULL},
	    {"3fff::1", "documentation"},
	    {"3fff:1000::", NULL},
	    {"fd00:ec2::254", "metadata"},
	    {"fd00:ec2::253", "private"},
	    {"100::", "discard"},
	    {"100::ffff:ffff:ffff:ffff", "discard"},
	    {"100:0:0:1::", "reserved"}, /* past 100::/64, still outside 2000::/3 */
	    {"2001:2::1", "reserved"},   /* benchmarking */
	    {"2001:3::1", NULL},
	    {"2001:10::1", "reserved"},
	    {"2001:20::1", "reserved"},
	    {"2001:30::1", NULL},
	    {"1fff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", "reserved"},
	    {"2000::", NULL},
	    {"3fff:fff:ffff:ffff:ffff:ffff:ffff:ffff", "documentation"},
	    {"3fff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", NULL},
	    {"4000::", "reserved"},
	    {"5f00::1", "reserved"},
	    {"2606:4700:4700::1111", NULL},
	    {"2a00:1450:4001:800::200e", NULL},
	};
	(void)state;
	check_table(w, sizeof(w) / sizeof(w[0]));
}

static void test_ipv6_embeddings(void **state)
{
	static const struct want w[] = {
	    /* mapped ::ffff:0:0/96 */
	    {"::ffff:127.0.0.1", "loopback"},
	    {"::ffff:7f00:1", "loopback"},
	    {"::ffff:10.1.2.3", "private"},
	    {"::ffff:169.254.169.254", "metadata"},
	    {"::ffff:0.0.0.0", "unspecified"},
	    {"::ffff:255.255.255.255", "broadcast"},
	    {"::ffff:8.8.8.8", NULL},
	    {"::fffe:127.0.0.1", "reserved"}, /* not the mapped prefix */
	    /* compatible ::/96 */
	    {"::127.0.0.1", "loopback"},
	    {"::192.168.1.1", "private"},
	    {"::8.8.8.8", NULL},
	    /* NAT64 well-known 64:ff9b::/96 */
	    {"64:ff9b::127.0.0.1", "loopback"},
	    {"64:ff9b::a9fe:a9fe", "metadata"},
	    {"64:ff9b::10.0.0.1", "private"},
	    {"64:ff9b::8.8.8.8", NULL},
	    {"64:ff9b:0:0:0:1::", "reserved"}, /* outside the /96 */
	    /* NAT64 local-use 64:ff9b:1::/48: the /96 layout's class, and any
	     * other RFC 6052 layout that decodes to a refused address is reserved */
	    {"64:ff9b:1::127.0.0.1", "loopback"}, /* /96 */
	    {"64:ff9b:1::a9fe:a9fe", "metadata"},
	    {"64:ff9b:1:7f00:1::808:808", "reserved"},  /* /48: bytes 6,7,9,10 */
	    {"64:ff9b:1:7f:0:100:808:808", "reserved"}, /* /56: bytes 7,9,10,11 */
	    {"64:ff9b:1:0:7f:0:108:808", "reserved"},   /* /64: bytes 9..12 */
	    {"64:ff9b:1::8.8.8.8", "reserved"},         /* its /64 layout is 0.0.0.8 */
	    {"64:ff9b:1:808:8:808:808:808", NULL},      /* 8.8.8.8 in every layout */
	    {"64:ff9b:2::8.8.8.8", "reserved"},
	    /* 6to4 2002::/16: bits 16..47 */
	    {"2002:7f00:1::", "loopback"},
	    {"2002:a00:1::1", "private"},
	    {"2002:a9fe:a9fe::", "metadata"},
	    {"2002:c0a8:101::1", "private"},
	    {"2002:808:808::1", NULL},
	    {"2003:7f00:1::", NULL},
	    /* Teredo 2001::/32: server 32..63, client = ~bits 96..127 */
	    {"2001:0:7f00:1::", "loopback"},                   /* server 127.0.0.1 */
	    {"2001:0:808:808:0:0:80ff:fffe", "loopback"},      /* client ~127.0.0.1 */
	    {"2001:0:808:808:8000:f227:f5ff:fefe", "private"}, /* client 10.0.1.1 */
	    {"2001:0:4136:e378:8000:63bf:3fff:fdd2",
	     "documentation"},                              /* RFC 4380: client 192.0.2.45 */
	    {"2001:0:4136:e378:8000:63bf:f7f7:f7f7", NULL}, /* client 8.8.8.8 */
	    {"2001:0:808:808::ffff:ffff", "unspecified"},   /* client 0.0.0.0 */
	    {"2001:0:808:808::", "broadcast"},              /* client 255.255.255.255 */
	    {"2001:1::808:808", NULL},
	};
	(void)state;
	check_table(w, sizeof(w) / sizeof(w[0]));
}

static void test_unsupported_family(void **state)
{
	struct sockaddr_storage ss;
	(void)state;

	memset(&ss, 0, sizeof(ss));
	ss.ss_family = AF_UNIX;
	assert_string_equal(egress_addr_class((const struct sockaddr *)&ss), "unsupported");
	assert_false(egress_addr_allowed((const struct sockaddr *)&ss, NULL));
	assert_string_equal(egress_addr_class(NULL), "unsupported");
	assert_false(egress_addr_allowed(NULL, NULL));
}

static struct egress_ranges *ranges(const char *text)
{
	struct egress_ranges *r = NULL;
	char err[256] = "";

	if (egress_ranges_parse(text, &r, err, sizeof(err)) != 0)
		fail_msg("refused \"%s\": %s", text, err);
	assert_non_null(r);
	return r;
}

static void test_allow_ranges_win(void **state)
{
	struct egress_ranges *r = ranges(" 127.0.0.0/8,\t10.1.0.0/16 , fd12:3456::/32,192.0.2.7");
	(void)state;

	assert_int_equal(egress_ranges_count(r), 4);
	assert_true(allowed("127.0.0.1", r));
	assert_true(allowed("127.255.255.255", r));
	assert_true(allowed("::ffff:127.0.0.1", r)); /* the same host */
	assert_false(allowed("::127.0.0.1", r));     /* compatible: not the same host */
	assert_false(allowed("64:ff9b::127.0.0.1", r));
	assert_true(allowed("10.1.255.255", r));
	assert_false(allowed("10.2.0.0", r));
	assert_false(allowed("10.0.255.255", r));
	assert_true(allowed("fd12:3456::1", r));
	assert_false(allowed("fd12:3457::1", r));
	assert_true(allowed("192.0.2.7", r)); /* a single host */
	assert_false(allowed("192.0.2.8", r));
	assert_false(allowed("169.254.169.254", r));
	assert_false(allowed("::1", r));
	assert_true(allowed("8.8.8.8", r)); /* public stays allowed */
	egress_ranges_free(r);

	r = ranges("0.0.0.0/0,::/0");
	assert_true(allowed("169.254.169.254", r));
	assert_true(allowed("::1", r));
	assert_true(allowed("ff02::1", r));
	egress_ranges_free(r);

	r = ranges("::1/128");
	assert_true(allowed("::1", r));
	assert_false(allowed("127.0.0.1", r));
	egress_ranges_free(r);

	r = ranges("");
	assert_int_equal(egress_ranges_count(r), 0);
	assert_false(allowed("127.0.0.1", r));
	egress_ranges_free(r);
	r = ranges("  ");
	assert_int_equal(egress_ranges_count(r), 0);
	egress_ranges_free(r);
	r = ranges(NULL);
	assert_int_equal(egress_ranges_count(r), 0);
	egress_ranges_free(r);
	assert_int_equal(egress_ranges_count(NULL), 0);
	egress_ranges_free(NULL);
}

static void expect_bad_ranges(const char *text, const char *msg)
{
	struct egress_ranges *r = (struct egress_ranges *)&r;
	char err[256] = "";

	if (egress_ranges_parse(text, &r, err, sizeof(err)) != -1)
		fail_msg("accepted \"%s\"", text);
	assert_null(r);
	if (!strstr(err, msg))
		fail_msg("\"%s\": message \"%s\" lacks \"%s\"", text, err, msg);
}

static void test_allow_ranges_refused(void **state)
{
	char many[EGRESS_RANGES_MAX * 16];
	char huge[EGRESS_RANGES_TEXT_MAX + 2];
	struct egress_ranges *r;
	size_t n = 0;
	(void)state;

	expect_bad_ranges("127.0.0.0/8,", "range 2 (\"\"): empty");
	expect_bad_ranges(",127.0.0.0/8", "range 1 (\"\"): empty");
	expect_bad_ranges("127.0.0.0/8,,::1", "range 2");
	expect_bad_ranges("localhost", "range 1 (\"localhost\"): not an IPv4 or IPv6 address");
	expect_bad_ranges("127.0.0.0/8, 300.0.0.0/8", "range 2 (\"300.0.0.0/8\"): not an IPv4");
	expect_bad_ranges("127.1/16", "not an IPv4 or IPv6 address");
	expect_bad_ranges("0x7f.0.0.0/8", "not an IPv4 or IPv6 address");
	expect_bad_ranges("/8", "not an IPv4 or IPv6 address");
	expect_bad_ranges("fe80::1%eth0/128", "not an IPv4 or IPv6 address");
	expect_bad_ranges("127.0.0.0/33", "prefix length must be 0 to 32");
	expect_bad_ranges("127.0.0.0/", "prefix length must be 0 to 32");
	expect_bad_ranges("127.0.0.0/-1", "prefix length must be 0 to 32");
	expect_bad_ranges("127.0.0.0/8/8", "prefix length must be 0 to 32");
	expect_bad_ranges("127.0.0.0/ 8", "prefix length must be 0 to 32");
	expect_bad_ranges("::/129", "prefix length must be 0 to 128");
	expect_bad_ranges("127.0.0.1/8", "bits set past the prefix length");
	expect_bad_ranges("11.0.0.0/7", "bits set past the prefix length");
	r = ranges("10.0.0.0/7");
	egress_ranges_free(r);
	expect_bad_ranges("fd12::1/16", "bits set past the prefix length");
	expect_bad_ranges("127.0.0.0 8", "not an IPv4 or IPv6 address");
	for (int i = 0; i < EGRESS_RANGES_MAX + 1; i++)
		n +=
		    (size_t)snprintf(many + n, sizeof(many) - n, "%s10.0.%d.0/24", i ? "," : "", i);
	expect_bad_ranges(many, "more than 64 ranges");
	/* exactly the maximum is fine */
	many[strlen(many) - strlen(",10.0.64.0/24")] = '\0';
	r = ranges(many);
	assert_int_equal(egress_ranges_count(r), EGRESS_RANGES_MAX);
	egress_ranges_free(r);
	memset(huge, ' ', sizeof(huge) - 1);
	huge[sizeof(huge) - 1] = '\0';
	expect_bad_ranges(huge, "longer than 4096 bytes");
	/* NULL err with cap 0 */
	assert_int_equal(egress_ranges_parse("x", &r, NULL, 0), -1);
	assert_null(r);
}

static void expect_url(const char *url, const struct egress_ranges *allow, const char *reason)
{
	const char *got = "unset";
	int rc = egress_check_url(url, allow, &got);

	if (reason == NULL) {
		if (rc != 0)
			fail_msg("refused %s: %s", url, got ? got : "(null)");
		assert_null(got);
		return;
	}
	if (rc != -1 || !got || strcmp(got, reason) != 0)
		fail_msg("%s: rc %d reason %s, want %s", url ? url : "(null)", rc,
		         got ? got : "(null)", reason);
}

static void test_url_reasons(void **state)
{
	char longurl[EGRESS_URL_MAX + 2];
	const char *prefix = "https://example.com/";
	(void)state;

	expect_url("https://example.com/hooks", NULL, NULL);
	expect_url("https://example.com:8443/hooks?x=1#f", NULL, NULL);
	expect_url("HTTPS://Example.COM/hooks", NULL, NULL);
	expect_url("https://8.8.8.8/hooks", NULL, NULL);
	expect_url("https://[2606:4700:4700::1111]/", NULL, NULL);
	expect_url("https://localhost/", NULL, NULL); /* a name: checked at connect */
	expect_url("http://example.com/hooks", NULL, "https_required");
	expect_url("ftp://example.com/", NULL, "https_required");
	expect_url("gopher://example.com/", NULL, "https_required");
	expect_url("ws://example.com/", NULL, "https_required");
	expect_url("foo://example.com/", NULL, "https_required");
	expect_url("https://user@example.com/", NULL, "userinfo");
	expect_url("https://user:pw@example.com/", NULL, "userinfo");
	expect_url("https://:pw@example.com/", NULL, "userinfo");
	expect_url("https://@example.com/", NULL, "userinfo");
	expect_url("https://user;auth=x@example.com/", NULL, "userinfo");
	expect_url(NULL, NULL, "invalid");
	expect_url("", NULL, "invalid");
	expect_url("https://", NULL, "invalid");
	expect_url("https://:443/", NULL, "invalid");
	expect_url("https://exa mple.com/", NULL, "invalid");
	expect_url("https://example.com/\n", NULL, "invalid");
	expect_url("https://[fe80::1%25eth0]/", NULL, "invalid");
	expect_url("https://[::1/", NULL, "invalid");
	expect_url("https://example.com:99999/", NULL, "invalid");
	expect_url("not a url", NULL, "invalid");

	/* 2048 bytes pass, 2049 do not. */
	memset(longurl, 'a', sizeof(longurl) - 1);
	memcpy(longurl, prefix, strlen(prefix));
	longurl[EGRESS_URL_MAX] = '\0';
	expect_url(longurl, NULL, NULL);
	longurl[EGRESS_URL_MAX] = 'a';
	longurl[EGRESS_URL_MAX + 1] = '\0';
	expect_url(longurl, NULL, "too_long");
	/* too_long is checked before anything else */
	memcpy(longurl, "http://", 7);
	expect_url(longurl, NULL, "too_long");
}

static void test_url_private_literals(void **state)
{
	static const char *const refused[] = {
	    "https://127.0.0.1/",
	    "https://127.0.0.1:8443/x",
	    "https://0x7f.1/",
	    "https://2130706433/",
	    "https://0177.0.0.1/",
	    "https://127.1/",
	    "https://0x7f000001/",
	    "https://017700000001/",
	    "https://0/",
	    "https://10.0.0.1/",
	    "https://169.254.169.254/latest/meta-data/",
	    "https://2852039166/",
	    "https://100.64.0.1/",
	    "https://[::1]/",
	    "https://[::]/",
	    "https://[::ffff:127.0.0.1]/",
	    "https://[::ffff:7f00:1]/",
	    "https://[0:0:0:0:0:ffff:127.0.0.1]/",
	    "https://[::127.0.0.1]/",
	    "https://[64:ff9b::7f00:1]/",
	    "https://[2002:7f00:1::]/",
	    "https://[2001:0:7f00:1::]/",
	    "https://[fd00:ec2::254]/",
	    "https://[fe80::1]/",
	    "https://[fc00::1]/",
	    "https://[ff02::1]/",
	    "https://[2001:db8::1]/",
	    "https://255.255.255.255/",
	    "https://224.0.0.1/",
	};
	struct egress_ranges *r;
	(void)state;

	for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++)
		expect_url(refused[i], NULL, "private_address");

	/* The allow ranges win, for every spelling of the allowed address. */
	r = ranges("127.0.0.0/8");
	expect_url("https://127.0.0.1:8443/hook", r, NULL);
	expect_url("https://0x7f.1/", r, NULL);
	expect_url("https://2130706433/", r, NULL);
	expect_url("https://0177.0.0.1/", r, NULL);
	expect_url("https://127.1/", r, NULL);
	expect_url("https://[::ffff:127.0.0.1]/", r, NULL);
	expect_url("https://[::ffff:7f00:1]/", r, NULL);
	expect_url("https://[::1]/", r, "private_address");
	expect_url("https://10.0.0.1/", r, "private_address");
	expect_url("http://127.0.0.1/", r, "https_required"); /* https is never waived */
	egress_ranges_free(r);

	/* Public literals in odd forms pass. */
	expect_url("https://0x8.0x8.0x8.0x8/", NULL, NULL);
	expect_url("https://134744072/", NULL, NULL); /* 8.8.8.8 */
	expect_url("https://[::ffff:8.8.8.8]/", NULL, NULL);
	/* a reason pointer is optional */
	assert_int_equal(egress_check_url("https://127.0.0.1/", NULL, NULL), -1);
	assert_int_equal(egress_check_url("https://example.com/", NULL, NULL), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_ipv4_ranges),      cmocka_unit_test(test_ipv6_ranges),
	    cmocka_unit_test(test_ipv6_embeddings),  cmocka_unit_test(test_unsupported_family),
	    cmocka_unit_test(test_allow_ranges_win), cmocka_unit_test(test_allow_ranges_refused),
	    cmocka_unit_test(test_url_reasons),      cmocka_unit_test(test_url_private_literals),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
