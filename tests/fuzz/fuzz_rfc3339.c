/*
 * fuzz_rfc3339.c: clock_parse_rfc3339 (core/clock.h), which reads every
 * timestamp a client sends (expires_at, from/to filters), on a NUL-terminated
 * copy of the input.
 *
 * Round trip: a timestamp that parses to ms must format (as
 * "YYYY-MM-DDThh:mm:ss.fffZ", UTC) and parse back to the same ms. The parser
 * keeps at most three fraction digits and truncates the rest, and the
 * formatter always writes three, so equality is exact: the fraction rules
 * lose digits on the first parse only. The reference date check below
 * (leap years, days per month) guards against a parser that accepts a date
 * timegm would silently normalise.
 */
#include "fuzz.h"

#include <string.h>

#include "core/clock.h"

static int is_leap(int y)
{
	return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

static int dig(const char *s, int n)
{
	int v = 0;
	for (int i = 0; i < n; i++)
		v = v * 10 + (s[i] - '0');
	return v;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char fmt[32];
	int64_t ms = 0, back = 0;

	/* An exact-size heap copy: ASan flags any read past the NUL. */
	char *in = malloc(size + 1);
	FUZZ_CHECK(in != NULL);
	memcpy(in, data, size);
	in[size] = '\0';

	if (clock_parse_rfc3339(in, &ms) != 0)
		goto out;

	/* The parser accepted it, so the fixed-position fields are digits. */
	FUZZ_CHECK(strlen(in) >= 20);
	int year = dig(in, 4), mon = dig(in + 5, 2), day = dig(in + 8, 2);
	static const int mdays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
	FUZZ_CHECK(year >= 1970 && mon >= 1 && mon <= 12);
	FUZZ_CHECK(day >= 1 && day <= mdays[mon - 1] + (mon == 2 && is_leap(year)));

	/* Only timestamps at or after the epoch: the parser rejects years
	 * before 1970, and an offset must not carry a time there. */
	FUZZ_CHECK(ms >= 0);
	/* Year 9999 in UTC at most, so the four-digit format can hold it. */
	FUZZ_CHECK(ms <= INT64_C(253402300799999));

	clock_format_rfc3339(ms, fmt, sizeof(fmt));
	FUZZ_CHECK(strlen(fmt) == 24);
	FUZZ_CHECK(clock_parse_rfc3339(fmt, &back) == 0);
	FUZZ_CHECK(back == ms);
out:
	free(in);
	return 0;
}
