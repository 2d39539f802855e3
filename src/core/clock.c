/*
 * clock.c: time sources and RFC 3339 conversion (see clock.h).
 */
#include "core/clock.h"

#include "core/str.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

int64_t clock_now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t clock_mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void clock_cond_init_mono(pthread_cond_t *c)
{
	pthread_condattr_t a;
	pthread_condattr_init(&a);
	pthread_condattr_setclock(&a, CLOCK_MONOTONIC);
	pthread_cond_init(c, &a);
	pthread_condattr_destroy(&a);
}

struct timespec clock_mono_deadline(int64_t ms)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	if (ms < 0)
		ms = 0;
	ts.tv_sec += (time_t)(ms / 1000);
	ts.tv_nsec += (long)(ms % 1000) * 1000000L;
	if (ts.tv_nsec >= 1000000000L) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000L;
	}
	return ts;
}

int64_t clock_mono_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

void clock_format_rfc3339(int64_t ms, char *out, size_t cap)
{
	time_t secs = (time_t)(ms / 1000);
	int frac = (int)(ms % 1000);
	if (frac < 0) {
		frac += 1000;
		secs -= 1;
	}
	struct tm tm;
	gmtime_r(&secs, &tm);
	snprintf(out, cap, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1,
	         tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, frac);
}

/* Read exactly n decimal digits at *p; advance. Returns -1 when absent. */
static int digits(const char **p, int n)
{
	uint64_t v;
	if (parse_uint64(*p, (size_t)n, UINT64_MAX, &v) != 0)
		return -1;
	*p += n;
	return (int)v;
}

static int expect(const char **p, char c)
{
	if (**p != c)
		return -1;
	(*p)++;
	return 0;
}

int clock_parse_rfc3339(const char *s, int64_t *out_ms)
{
	const char *p = s;
	int year = digits(&p, 4);
	if (year < 1970 || expect(&p, '-'))
		return -1;
	int mon = digits(&p, 2);
	if (mon < 1 || mon > 12 || expect(&p, '-'))
		return -1;
	int day = digits(&p, 2);
	if (day < 1 || day > 31 || (*p != 'T' && *p != 't'))
		return -1;
	p++;
	int hh = digits(&p, 2);
	if (hh < 0 || hh > 23 || expect(&p, ':'))
		return -1;
	int mm = digits(&p, 2);
	if (mm < 0 || mm > 59 || expect(&p, ':'))
		return -1;
	int ss = digits(&p, 2);
	if (ss < 0 || ss > 60)
		return -1;
	int ms = 0;
	if (*p == '.') {
		p++;
		int scale = 100, nd = 0;
		while (*p >= '0' && *p <= '9') {
			if (nd < 3)
				ms += (*p - '0') * scale;
			scale /= 10;
			nd++;
			p++;
		}
		if (nd == 0 || nd > 9)
			return -1;
	}
	int offset_min = 0;
	if (*p == 'Z' || *p == 'z') {
		p++;
	} else if (*p == '+' || *p == '-') {
		int sign = *p == '-' ? -1 : 1;
		p++;
		int oh = digits(&p, 2);
		if (oh < 0 || oh > 23 || expect(&p, ':'))
			return -1;
		int om = digits(&p, 2);
		if (om < 0 || om > 59)
			return -1;
		offset_min = sign * (oh * 60 + om);
	} else {
		return -1;
	}
	if (*p != '\0')
		return -1;
	static const int mdays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
	int leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
	if (day > mdays[mon - 1] + (mon == 2 && leap))
		return -1;
	struct tm tm;
	memset(&tm, 0, sizeof tm);
	tm.tm_year = year - 1900;
	tm.tm_mon = mon - 1;
	tm.tm_mday = day;
	tm.tm_hour = hh;
	tm.tm_min = mm;
	tm.tm_sec = ss;
	time_t t = timegm(&tm);
	int64_t v = ((int64_t)t - (int64_t)offset_min * 60) * 1000 + ms;
	/*
	 * The year check above saw local time: the offset (or a leap second)
	 * can still carry the instant before 1970 or past 9999, which
	 * clock_format_rfc3339 could not write back as a four-digit year.
	 */
	if (v < 0 || v > INT64_C(253402300799999))
		return -1;
	*out_ms = v;
	return 0;
}
