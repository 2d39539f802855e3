/*
 * fuzz_int.c: parse_int64 (core/str.h), the checked integer parser behind
 * config values, query parameters and header numbers, against a reference
 * built on strtoll with the checks the contract promises: the whole input
 * is -?[0-9]+ (no sign '+', no spaces, no embedded NUL), no overflow, value
 * in [min, max].
 *
 * Each input is tried over the full int64 range, and, when it is long enough,
 * with min and max taken from its first 16 bytes and the rest as the number.
 * parse_int64_z must agree whenever the text has no NUL.
 *
 * parse_uint64, the unsigned core under it, is held to a strtoull reference
 * the same way ([0-9]+ only, no overflow, at most max); and the hex codec:
 * hex_decode accepts exactly the even-length texts of hex digits, and its
 * bytes encode back to the same text in lower case.
 */
#include "fuzz.h"

#include <errno.h>
#include <string.h>

#include "core/str.h"

/* The reference: 0 and *out, or -1. */
static int ref_parse(const char *s, size_t len, int64_t min, int64_t max, int64_t *out)
{
	char *z, *end;
	size_t i = 0;
	long long v;

	if (len > 0 && s[0] == '-')
		i = 1;
	if (i == len)
		return -1;
	for (; i < len; i++)
		if (s[i] < '0' || s[i] > '9')
			return -1;
	z = malloc(len + 1);
	FUZZ_CHECK(z != NULL);
	memcpy(z, s, len);
	z[len] = '\0';
	errno = 0;
	v = strtoll(z, &end, 10);
	int ok = errno == 0 && end == z + len && v >= min && v <= max;
	free(z);
	if (!ok)
		return -1;
	*out = v;
	return 0;
}

static void compare(const char *s, size_t len, int64_t min, int64_t max)
{
	int64_t got = 0x5a5a5a5a, want = 0x5a5a5a5a;
	int rc = parse_int64(s, len, min, max, &got);
	int ref = ref_parse(s, len, min, max, &want);

	FUZZ_CHECK(rc == 0 || rc == -1);
	FUZZ_CHECK(rc == ref);
	if (rc == 0)
		FUZZ_CHECK(got == want);
	else
		FUZZ_CHECK(got == 0x5a5a5a5a); /* *out untouched on failure */

	if (memchr(s, '\0', len) == NULL) {
		char *z = malloc(len + 1);
		int64_t zgot = 0;
		FUZZ_CHECK(z != NULL);
		memcpy(z, s, len);
		z[len] = '\0';
		FUZZ_CHECK(parse_int64_z(z, min, max, &zgot) == rc);
		if (rc == 0)
			FUZZ_CHECK(zgot == want);
		free(z);
	}
}

static int ref_parse_u(const char *s, size_t len, uint64_t max, uint64_t *out)
{
	char *z, *end;
	unsigned long long v;

	if (len == 0)
		return -1;
	for (size_t i = 0; i < len; i++)
		if (s[i] < '0' || s[i] > '9')
			return -1;
	z = malloc(len + 1);
	FUZZ_CHECK(z != NULL);
	memcpy(z, s, len);
	z[len] = '\0';
	errno = 0;
	v = strtoull(z, &end, 10);
	int ok = errno == 0 && end == z + len && v <= max;
	free(z);
	if (!ok)
		return -1;
	*out = v;
	return 0;
}

static void compare_u(const char *s, size_t len, uint64_t max)
{
	uint64_t got = 0x5a5a5a5a, want = 0x5a5a5a5a;
	int rc = parse_uint64(s, len, max, &got);

	FUZZ_CHECK(rc == ref_parse_u(s, len, max, &want));
	FUZZ_CHECK(got == want); /* equal values, or both untouched */
}

static void check_hex(const char *s, size_t len)
{
	uint8_t bytes[256];
	char back[2 * sizeof(bytes) + 1];
	size_t n = 99;
	bool want = len % 2 == 0 && len / 2 <= sizeof(bytes);

	for (size_t i = 0; want && i < len; i++)
		want = str_hex_digit(s[i]) >= 0;
	int rc = hex_decode(s, len, bytes, sizeof(bytes), &n);
	FUZZ_CHECK(rc == (want ? 0 : -1));
	if (rc != 0) {
		FUZZ_CHECK(n == 0);
		return;
	}
	FUZZ_CHECK(n == len / 2);
	hex_encode(bytes, n, back);
	for (size_t i = 0; i < len; i++)
		FUZZ_CHECK(back[i] == (s[i] >= 'A' && s[i] <= 'F' ? s[i] - 'A' + 'a' : s[i]));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *s = (const char *)data;

	compare_u(s, size, UINT64_MAX);
	check_hex(s, size);
	if (size >= 8) {
		uint64_t m;
		memcpy(&m, data, 8);
		compare_u(s + 8, size - 8, m);
	}
	compare(s, size, INT64_MIN, INT64_MAX);
	if (size >= 16) {
		int64_t a, b;
		memcpy(&a, data, 8);
		memcpy(&b, data + 8, 8);
		compare(s + 16, size - 16, a, b);
		compare(s + 16, size - 16, a < b ? a : b, a < b ? b : a);
	}
	return 0;
}
