/*
 * fuzz.h: what every libFuzzer target in tests/fuzz shares: the entry point
 * prototypes (the project builds with -Wmissing-prototypes) and FUZZ_CHECK,
 * which turns a broken invariant into a crash libFuzzer records as a
 * finding, with the failed condition on stderr.
 */
#ifndef PORTCULLIS_TESTS_FUZZ_H
#define PORTCULLIS_TESTS_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

#define FUZZ_CHECK(cond)                                                                           \
	do {                                                                                       \
		if (!(cond)) {                                                                     \
			fprintf(stderr, "%s:%d: invariant failed: %s\n", __FILE__, __LINE__,       \
			        #cond);                                                            \
			abort();                                                                   \
		}                                                                                  \
	} while (0)

/** True when all n bytes at p are zero. */
static inline int fuzz_all_zero(const void *p, size_t n)
{
	const unsigned char *b = p;
	for (size_t i = 0; i < n; i++)
		if (b[i])
			return 0;
	return 1;
}

#endif
