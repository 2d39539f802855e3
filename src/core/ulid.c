/*
 * ulid.c: ULID generation and validation (see ulid.h). Randomness comes from
 * getrandom(2), buffered per thread so a request id costs no syscall.
 */
#include "core/ulid.h"

#include "core/alloc.h"
#include "core/clock.h"
#include "core/str.h"

#include <string.h>
#include <sys/random.h>

static const char crockford[] = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";

void ulid_encode(uint64_t ms, const uint8_t rnd[10], char out[ULID_LEN + 1])
{
	/*
	 * 128 bits: 48 time bits then 80 random bits, as hi:lo. 26 chars * 5 =
	 * 130 bits, so the first char carries only the top 3 bits; the chars
	 * are taken from the bottom, 5 bits at a time.
	 */
	uint64_t hi = (ms & 0xFFFFFFFFFFFFu) << 16 | (uint64_t)rnd[0] << 8 | rnd[1];
	uint64_t lo = 0;
	for (int i = 2; i < 10; i++)
		lo = lo << 8 | rnd[i];
	for (int i = ULID_LEN - 1; i >= 0; i--) {
		out[i] = crockford[lo & 31u];
		lo = lo >> 5 | hi << 59;
		hi >>= 5;
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

void ulid_new_at(int64_t ms, char out[ULID_LEN + 1])
{
	uint8_t rnd[10];
	random_bytes(rnd, sizeof rnd);
	ulid_encode((uint64_t)ms, rnd, out);
}

void ulid_new(char out[ULID_LEN + 1])
{
	ulid_new_at(clock_now_ms(), out);
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

uint64_t ulid_time(const char *s)
{
	uint64_t ms = 0;
	for (int i = 0; i < 10; i++)
		ms = ms << 5 | (uint64_t)(strchr(crockford, s[i]) - crockford);
	return ms;
}

/* "<prefix>_<id>" into out, truncated to cap. */
static void put_prefixed(const char *prefix, const char id[ULID_LEN + 1], char *out, size_t cap)
{
	/* snprintf(out, cap, "%s_%s", prefix, id) without printf. */
	struct strbuf b;
	strbuf_init(&b, out, cap);
	strbuf_puts(&b, prefix);
	strbuf_put(&b, "_", 1);
	strbuf_put(&b, id, ULID_LEN);
}

void ulid_prefixed_at(const char *prefix, int64_t ms, char *out, size_t cap)
{
	char id[ULID_LEN + 1];
	ulid_new_at(ms, id);
	put_prefixed(prefix, id, out, cap);
}

void ulid_prefixed_floor(const char *prefix, int64_t ms, char *out, size_t cap)
{
	static const uint8_t zero[10];
	char id[ULID_LEN + 1];
	ulid_encode((uint64_t)(ms < 0 ? 0 : ms), zero, id);
	put_prefixed(prefix, id, out, cap);
}

void ulid_prefixed(const char *prefix, char *out, size_t cap)
{
	ulid_prefixed_at(prefix, clock_now_ms(), out, cap);
}
