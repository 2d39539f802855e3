/*
 * crc32.h: the standard CRC-32 (IEEE 802.3, reflected polynomial 0xEDB88320;
 * the same value as zlib's crc32()). Used for the checksum inside API key
 * secrets: it catches typos and lets scanners spot keys, it is not a MAC.
 */
#ifndef PORTCULLIS_CRYPTO_CRC32_H
#define PORTCULLIS_CRYPTO_CRC32_H

#include <stddef.h>
#include <stdint.h>

/**
 * CRC-32 of the n bytes at data (crc32_ieee("123456789", 9) == 0xCBF43926).
 * n == 0 gives 0; data may then be NULL. Pure function, thread-safe.
 */
uint32_t crc32_ieee(const void *data, size_t n);

#endif
