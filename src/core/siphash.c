/*
 * siphash.c: SipHash-2-4 (Aumasson and Bernstein) and the keyed string hash
 * of the in-memory tables (see siphash.h).
 */
#include "core/siphash.h"

#include "core/alloc.h"

#include <endian.h>
#include <pthread.h>
#include <string.h>
#include <sys/random.h>

static uint64_t rotl(uint64_t x, int b)
{
	return (x << b) | (x >> (64 - b));
}

/* The n (at most 8) bytes at p as a little-endian word; one unaligned load when n is 8. */
static uint64_t load_le(const unsigned char *p, size_t n)
{
	uint64_t m = 0;
	if (n)
		memcpy(&m, p, n);
	return le64toh(m);
}

#define SIPROUND                                                                                   \
	do {                                                                                       \
		v0 += v1;                                                                          \
		v1 = rotl(v1, 13);                                                                 \
		v1 ^= v0;                                                                          \
		v0 = rotl(v0, 32);                                                                 \
		v2 += v3;                                                                          \
		v3 = rotl(v3, 16);                                                                 \
		v3 ^= v2;                                                                          \
		v0 += v3;                                                                          \
		v3 = rotl(v3, 21);                                                                 \
		v3 ^= v0;                                                                          \
		v2 += v1;                                                                          \
		v1 = rotl(v1, 17);                                                                 \
		v1 ^= v2;                                                                          \
		v2 = rotl(v2, 32);                                                                 \
	} while (0)

uint64_t siphash24(const void *data, size_t len, uint64_t k0, uint64_t k1)
{
	const unsigned char *in = data;
	uint64_t v0 = 0x736f6d6570736575ULL ^ k0;
	uint64_t v1 = 0x646f72616e646f6dULL ^ k1;
	uint64_t v2 = 0x6c7967656e657261ULL ^ k0;
	uint64_t v3 = 0x7465646279746573ULL ^ k1;
	size_t whole = len - len % 8;

	for (size_t i = 0; i < whole; i += 8) {
		uint64_t m = load_le(in + i, 8);
		v3 ^= m;
		SIPROUND;
		SIPROUND;
		v0 ^= m;
	}
	uint64_t b = ((uint64_t)len << 56) | load_le(in + whole, len % 8);
	v3 ^= b;
	SIPROUND;
	SIPROUND;
	v0 ^= b;
	v2 ^= 0xff;
	SIPROUND;
	SIPROUND;
	SIPROUND;
	SIPROUND;
	return v0 ^ v1 ^ v2 ^ v3;
}

static uint64_t process_key[2];
static pthread_once_t key_once = PTHREAD_ONCE_INIT;

static void make_process_key(void)
{
	if (getrandom(process_key, sizeof process_key, 0) != (ssize_t)sizeof process_key)
		fatal("getrandom failed");
}

uint64_t mem_hash(const void *data, size_t len)
{
	pthread_once(&key_once, make_process_key);
	return siphash24(data, len, process_key[0], process_key[1]);
}

uint64_t str_hash(const char *s)
{
	return mem_hash(s, strlen(s));
}
