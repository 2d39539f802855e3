/*
 * fuzz_egress.c: egress_check_url, egress_ranges_parse, egress_addr_class
 * and egress_addr_allowed (delivery/egress.h) on a NUL-terminated copy of
 * the input (a tenant's endpoint URL, an operator's allow list) and on its
 * first bytes read as an IPv4 and an IPv6 address.
 *
 * Checks: a URL is accepted exactly when no reason is given, and a reason
 * is one of the documented ones; allowing every address changes only a
 * private_address refusal (to acceptance) and nothing else; an accepted URL
 * starts with https: (any case) and is at most 2048 bytes. An accepted
 * allow list has at most EGRESS_RANGES_MAX ranges, one more than its commas
 * (or none), a refused one a NULL list and an "allow_ranges: " message. An
 * address is allowed without ranges exactly when it has no class, always
 * with 0.0.0.0/0,::/0, and ::ffff:a.b.c.d has a.b.c.d's class; a parsed
 * list only ever widens what is allowed.
 */
#include "fuzz.h"

#include <netinet/in.h>
#include <stdbool.h>
#include <string.h>
#include <strings.h>

#include "delivery/egress.h"

static struct egress_ranges *all;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	FUZZ_CHECK(egress_ranges_parse("0.0.0.0/0, ::/0", &all, NULL, 0) == 0);
	return 0;
}

static bool known_reason(const char *r)
{
	static const char *const reasons[] = {"too_long", "invalid", "https_required", "userinfo",
	                                      "private_address"};
	for (size_t i = 0; i < sizeof(reasons) / sizeof(reasons[0]); i++)
		if (strcmp(r, reasons[i]) == 0)
			return true;
	return false;
}

static void check_url(const char *in, const struct egress_ranges *parsed)
{
	const char *r1 = "unset", *r2 = "unset", *r3 = "unset";
	int rc1 = egress_check_url(in, NULL, &r1);
	int rc2 = egress_check_url(in, all, &r2);

	FUZZ_CHECK((rc1 == 0) == (r1 == NULL) && (rc1 == 0 || rc1 == -1));
	FUZZ_CHECK((rc2 == 0) == (r2 == NULL) && (rc2 == 0 || rc2 == -1));
	if (rc1 != 0)
		FUZZ_CHECK(known_reason(r1));
	FUZZ_CHECK(r2 == NULL || strcmp(r2, "private_address") != 0);
	if (rc1 == 0 || strcmp(r1, "private_address") == 0)
		FUZZ_CHECK(rc2 == 0);
	else
		FUZZ_CHECK(rc2 == -1 && strcmp(r1, r2) == 0);
	if (rc1 == 0)
		FUZZ_CHECK(strlen(in) <= EGRESS_URL_MAX && strncasecmp(in, "https:", 6) == 0);
	if (parsed) {
		int rc3 = egress_check_url(in, parsed, &r3);
		if (rc1 == 0)
			FUZZ_CHECK(rc3 == 0);
		if (rc3 == 0)
			FUZZ_CHECK(rc2 == 0);
	}
}

static struct egress_ranges *check_ranges(const char *in)
{
	struct egress_ranges *r = (struct egress_ranges *)&r;
	char err[128];
	size_t commas = 0;
	bool blank = true;

	memset(err, 0, sizeof(err));
	for (const char *p = in; *p; p++) {
		commas += *p == ',';
		blank = blank && (*p == ' ' || *p == '\t');
	}
	if (egress_ranges_parse(in, &r, err, sizeof(err)) != 0) {
		FUZZ_CHECK(r == NULL);
		FUZZ_CHECK(strncmp(err, "allow_ranges: ", 14) == 0);
		return NULL;
	}
	FUZZ_CHECK(r != NULL);
	FUZZ_CHECK(egress_ranges_count(r) <= EGRESS_RANGES_MAX);
	FUZZ_CHECK(egress_ranges_count(r) == (blank ? 0 : commas + 1));
	return r;
}

static void check_addr(const struct sockaddr *sa, const struct egress_ranges *parsed)
{
	const char *c = egress_addr_class(sa);
	bool ok = egress_addr_allowed(sa, NULL);

	FUZZ_CHECK(ok == (c == NULL));
	FUZZ_CHECK(egress_addr_allowed(sa, all));
	if (parsed && ok)
		FUZZ_CHECK(egress_addr_allowed(sa, parsed));
}

static void check_addrs(const uint8_t *data, size_t size, const struct egress_ranges *parsed)
{
	struct sockaddr_in in4;
	struct sockaddr_in6 in6, mapped;
	uint8_t b[16] = {0};

	memcpy(b, data, size < 16 ? size : 16);
	memset(&in4, 0, sizeof(in4));
	in4.sin_family = AF_INET;
	memcpy(&in4.sin_addr, b, 4);
	check_addr((const struct sockaddr *)&in4, parsed);

	memset(&in6, 0, sizeof(in6));
	in6.sin6_family = AF_INET6;
	memcpy(&in6.sin6_addr, b, 16);
	check_addr((const struct sockaddr *)&in6, parsed);

	memset(&mapped, 0, sizeof(mapped));
	mapped.sin6_family = AF_INET6;
	mapped.sin6_addr.s6_addr[10] = 0xff;
	mapped.sin6_addr.s6_addr[11] = 0xff;
	memcpy(&mapped.sin6_addr.s6_addr[12], b, 4);
	const char *c4 = egress_addr_class((const struct sockaddr *)&in4);
	const char *c6 = egress_addr_class((const struct sockaddr *)&mapped);
	FUZZ_CHECK((c4 == NULL && c6 == NULL) || (c4 && c6 && strcmp(c4, c6) == 0));
	/* An IPv4 allow range covers the mapped form of its addresses. */
	if (parsed && egress_addr_allowed((const struct sockaddr *)&in4, parsed))
		FUZZ_CHECK(egress_addr_allowed((const struct sockaddr *)&mapped, parsed));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *in = malloc(size + 1);
	struct egress_ranges *parsed;

	FUZZ_CHECK(in != NULL);
	memcpy(in, data, size);
	in[size] = '\0';
	parsed = check_ranges(in);
	check_url(in, parsed);
	check_addrs(data, size, parsed);
	egress_ranges_free(parsed);
	free(in);
	return 0;
}
