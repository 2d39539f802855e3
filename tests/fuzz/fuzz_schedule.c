/*
 * fuzz_schedule.c: wh_schedule_parse, wh_schedule_delay, wh_retry_after_ms
 * and wh_retry_after_clamp (delivery/schedule.h) on a NUL-terminated copy
 * of the input: the schedule text is configuration, Retry-After comes from
 * any receiver.
 *
 * Checks: an accepted schedule has 1 .. WH_SCHEDULE_MAX steps of whole
 * seconds within 7 days, and written back as "<seconds>s,..." parses to the
 * same steps; its jitter stays within [ceil(0.8 d), floor(1.2 d)] for
 * random values taken from the input; past the last step there is none. A
 * refused text leaves the output untouched and says why. A Retry-After is
 * -1 or within [0, 7 days], never -1 for delta-seconds (all digits after
 * OWS), only a 29-byte "..., dd Mon yyyy hh:mm:ss GMT" otherwise, and later
 * "now"s never give longer waits; its clamp stays within [d, 2 d].
 */
#include "fuzz.h"

#include <stdbool.h>
#include <string.h>

#include "delivery/schedule.h"

#define DAY_MS (24 * 3600 * 1000LL)

static bool ows(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

static void check_schedule(const char *in, uint64_t rnd)
{
	struct wh_schedule s, back;
	char err[128];
	char text[WH_SCHEDULE_MAX * 12];
	size_t n = 0;

	memset(&s, 0xa5, sizeof(s));
	memset(err, 0, sizeof(err));
	if (wh_schedule_parse(in, &s, err, sizeof(err)) != 0) {
		FUZZ_CHECK(strncmp(err, "retry_schedule: ", 16) == 0);
		FUZZ_CHECK(memchr(err, '\0', sizeof(err)) != NULL);
		struct wh_schedule untouched;
		memset(&untouched, 0xa5, sizeof(untouched));
		FUZZ_CHECK(memcmp(&s, &untouched, sizeof(s)) == 0);
		return;
	}
	FUZZ_CHECK(s.n >= 1 && s.n <= WH_SCHEDULE_MAX);
	for (int i = 0; i < s.n; i++) {
		int64_t d = s.delay_ms[i];
		FUZZ_CHECK(d >= 0 && d <= 7 * DAY_MS && d % 1000 == 0);
		int64_t lo = (8 * d + 9) / 10, hi = 12 * d / 10;
		int64_t v = wh_schedule_delay(&s, i, rnd);
		FUZZ_CHECK(v >= lo && v <= hi);
		FUZZ_CHECK(wh_schedule_delay(&s, i, 0) == lo);
		FUZZ_CHECK(wh_schedule_delay(&s, i, UINT64_MAX) == hi);
		int64_t c = wh_retry_after_clamp(&s, i, (int64_t)(rnd >> 20));
		FUZZ_CHECK(c >= d && c <= 2 * d);
		n += (size_t)snprintf(text + n, sizeof(text) - n, "%s%llds", i ? "," : "",
		                      (long long)(d / 1000));
	}
	FUZZ_CHECK(wh_schedule_delay(&s, s.n, rnd) == -1);
	FUZZ_CHECK(wh_retry_after_clamp(&s, s.n, 0) == -1);
	FUZZ_CHECK(wh_schedule_parse(text, &back, NULL, 0) == 0);
	FUZZ_CHECK(back.n == s.n);
	FUZZ_CHECK(memcmp(back.delay_ms, s.delay_ms, sizeof(int64_t) * (size_t)s.n) == 0);
}

static void check_retry_after(const char *in, size_t len)
{
	static const int64_t nows[] = {0, 784111777000LL, 1764000000000LL, 253402300799999LL};
	size_t a = 0, b = len;
	bool digits = true;
	int64_t prev = INT64_MAX;

	while (a < b && ows(in[a]))
		a++;
	while (b > a && ows(in[b - 1]))
		b--;
	for (size_t i = a; i < b; i++)
		digits = digits && in[i] >= '0' && in[i] <= '9';
	for (size_t k = 0; k < sizeof(nows) / sizeof(nows[0]); k++) {
		int64_t v = wh_retry_after_ms(in, nows[k]);
		FUZZ_CHECK(v == -1 || (v >= 0 && v <= WH_SCHEDULE_STEP_MAX_MS));
		if (len <= 64 && a < b && digits)
			FUZZ_CHECK(v >= 0);
		if (v >= 0 && !digits) {
			FUZZ_CHECK(len <= 64 && b - a == 29);
			FUZZ_CHECK(in[a + 3] == ',' && memcmp(in + b - 4, " GMT", 4) == 0);
		}
		if (digits || v < 0)
			continue;
		/* A date: waits only shrink as now moves on. */
		FUZZ_CHECK(v <= prev);
		prev = v;
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint64_t rnd = 0x9e3779b97f4a7c15ULL;
	char *in = malloc(size + 1);

	FUZZ_CHECK(in != NULL);
	memcpy(in, data, size);
	in[size] = '\0';
	for (size_t i = 0; i < size; i++)
		rnd = (rnd ^ data[i]) * 0x100000001b3ULL;
	check_schedule(in, rnd);
	check_retry_after(in, strlen(in));
	free(in);
	return 0;
}
