/*
 * ct.h: constant-time comparisons for secrets, MACs and hashes. Use these,
 * never memcmp/strcmp, whenever either side is secret.
 */
#ifndef PORTCULLIS_CRYPTO_CT_H
#define PORTCULLIS_CRYPTO_CT_H

#include <stdbool.h>
#include <stddef.h>

/**
 * True when the n bytes at a and b are equal. Runs in time that depends only
 * on n, never on the contents (no early exit). n == 0 gives true.
 */
bool ct_equal(const void *a, const void *b, size_t n);

/**
 * True when the NUL-terminated strings a and b are equal. The content
 * comparison always runs over max(strlen(a), strlen(b)) bytes, so timing
 * reveals the lengths but nothing about where the strings differ; a length
 * mismatch gives false without an early exit.
 */
bool ct_streq(const char *a, const char *b);

#endif
