/*
 * ulid.c: ULID generation and validation (see ulid.h). Randomness comes from
 * getrandom(2), buffered per thread so a request id costs no syscall.
 */
#include "core/ulid.h"

#include "core/alloc.h"
#include "core/clock.h"

#include <stdio.h>
#include <string.h>
#include <sys/random.h>

static const char crockford[] = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";

void ulid_encode(uint64_t ms, const uint8_t rnd[10], char out[ULID_LEN + 1])
{
	/* 128 bits: 48 time bits then 80 random bits, 5 bits per char from the top. */
	uint8_t b[16];
	for (int i = 0; i < 6; i++)
		b[i] = (uint8_t)(ms >> (8 * (5 - i)));
	memcpy(b + 6, rnd, 10);
	/* 26 chars * 5 = 130 bits: the first char carries only the top 3 bits. */
	for (int i = 0; i < ULID_LEN; i++) {
		int bit = i * 5 - 2; /* index of the char's first bit in b, may be negative */
		unsigned v = 0;
		for (int k = 0; k < 5; k++) {
			int pos = bit + k;
			unsigned bitval = 0;
			if (pos >= 0)
				bitval = (b[pos / 8] >> (7 - pos % 8)) & 1u;
			v = (v << 1) | bitval;
		}
		out[i] = crockford[v];
	}
	out[ULID_LEN] = '\0';
}

static _Thread_local uint8_t rnd_pool[640];
static _Thread_local size_t rnd_left;

static void random_bytes(uint8_t *out, size_t n)
{
	if (rnd_left < n) {
		size_t got = 0;
		while (got < sizeof rnd_pool) {
			ssize_t r = getrandom(rnd_pool + got, sizeof rnd_pool - got, 0);
			if (r <= 0)
				fatal("getrandom failed");
			got += (size_t)r;
		}
		rnd_left = sizeof rnd_pool;
	}
	memcpy(out, rnd_pool + sizeof rnd_pool - rnd_left, n);
	rnd_left -= n;
}

void ulid_new(char out[ULID_LEN + 1])
{
	uint8_t rnd[10];
	random_bytes(rnd, sizeof rnd);
	ulid_encode((uint64_t)clock_now_ms(), rnd, out);
}

bool ulid_valid(const char *s, size_t len)
{
	if (len != ULID_LEN || s[0] < '0' || s[0] > '7')
		return false;
	for (size_t i = 0; i < len; i++)
		if (!s[i] || !strchr(crockford, s[i]))
			return false;
	return true;
}

void ulid_prefixed(const char *prefix, char *out, size_t cap)
{
	char id[ULID_LEN + 1];
	ulid_new(id);
	snprintf(out, cap, "%s_%s", prefix, id);
}
