/*
 * ct.c: constant-time equality. The accumulators are volatile and the final
 * test is arithmetic so the compiler cannot turn the loops into an early-exit
 * memcmp or add a data-dependent branch.
 */
#include "crypto/ct.h"

#include <stdint.h>
#include <string.h>

/* 1 when d == 0, else 0, without a branch. */
static bool is_zero_u64(uint64_t d)
{
	return (bool)((((d | (0U - d)) >> 63) ^ 1U) & 1U);
}

bool ct_equal(const void *a, const void *b, size_t n)
{
	const volatile uint8_t *pa = a;
	const volatile uint8_t *pb = b;
	volatile uint8_t diff = 0;

	for (size_t i = 0; i < n; i++)
		diff |= (uint8_t)(pa[i] ^ pb[i]);
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
