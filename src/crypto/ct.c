/*
 * ct.c: constant-time equality. ct_equal reads eight bytes at a time and ORs
 * the differences through value_barrier, which the compiler cannot see
 * through, so it cannot turn the loop into an early-exit memcmp or add a
 * data-dependent branch; ct_streq keeps volatile bytes (it runs on short
 * strings off the hot path). The final test is arithmetic in both.
 */
#include "crypto/ct.h"

#include <stdint.h>
#include <string.h>

/* 1 when d == 0, else 0, without a branch. */
static bool is_zero_u64(uint64_t d)
{
	return (bool)((((d | (0U - d)) >> 63) ^ 1U) & 1U);
}

/* v, with the compiler made to forget what it knows of it (an empty asm that "changes" it). */
static uint64_t value_barrier(uint64_t v)
{
	__asm__("" : "+r"(v));
	return v;
}

bool ct_equal(const void *a, const void *b, size_t n)
{
	const unsigned char *pa = a;
	const unsigned char *pb = b;
	uint64_t diff = 0;
	size_t i = 0;

	for (; i + 8 <= n; i += 8) {
		uint64_t wa;
		uint64_t wb;
		memcpy(&wa, pa + i, 8);
		memcpy(&wb, pb + i, 8);
		diff = value_barrier(diff | (wa ^ wb));
	}
	for (; i < n; i++)
		diff = value_barrier(diff | (uint64_t)(pa[i] ^ pb[i]));
	return is_zero_u64(diff);
}

bool ct_streq(const char *a, const char *b)
{
	size_t la = strlen(a);
	size_t lb = strlen(b);
	size_t n = la > lb ? la : lb;
	const volatile unsigned char *pa = (const unsigned char *)a;
	const volatile unsigned char *pb = (const unsigned char *)b;
	volatile uint64_t diff = (uint64_t)(la ^ lb);

	/* Past its end, each string is read at its NUL (index clamped). */
	for (size_t i = 0; i < n; i++) {
		size_t ia = i < la ? i : la;
		size_t ib = i < lb ? i : lb;
		diff |= (uint64_t)(pa[ia] ^ pb[ib]);
	}
	return is_zero_u64(diff);
}
