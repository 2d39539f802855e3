/*
 * pii.c: the identifier normalisation and hashing of INGEST.md (see pii.h).
 *
 * One pass over the value feeds a small sink: pii_hash sends the normalised
 * bytes through an incremental SHA-256 in 128-byte pieces (so a value of any
 * length needs no allocation and the plaintext lives only in one wiped stack
 * buffer), pii_normalize copies them out for tests. Both use the same pass,
 * so what the tests see is exactly what is hashed.
 */
#include "ingest/pii.h"

#include "core/str.h"
#include "crypto/hash.h"
#include "crypto/sealed.h"

#include <stdbool.h>
#include <stdint.h>
#include <string.h>

struct sink {
	struct sha256_ctx *sha; /* NULL: copy into out */
	char *out;
	size_t cap;
	size_t total; /* bytes emitted so far */
	size_t n;     /* bytes waiting in chunk */
	char chunk[128];
};

static void sink_byte(struct sink *s, char c)
{
	if (!s->sha) {
		if (s->total + 1 < s->cap)
			s->out[s->total] = c;
	} else {
		s->chunk[s->n++] = c;
		if (s->n == sizeof s->chunk) {
			sha256_update(s->sha, s->chunk, s->n);
			s->n = 0;
		}
	}
	s->total++;
}

static bool ascii_space(char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r';
}

/* Narrow [*b, *e) to the value without its surrounding ASCII whitespace. */
static void trim(const char **b, const char **e)
{
	while (*b < *e && ascii_space(**b))
		(*b)++;
	while (*e > *b && ascii_space((*e)[-1]))
		(*e)--;
}

/* The published already-hashed rule: ^[a-f0-9]{64}$. */
static bool is_lower_hex64(const char *b, const char *e)
{
	if (e - b != PII_HEX_LEN)
		return false;
	for (; b < e; b++)
		if (!((*b >= '0' && *b <= '9') || (*b >= 'a' && *b <= 'f')))
			return false;
	return true;
}

/* Emit the normalised form of [b, e) (already trimmed) into s. */
static void normalise(enum pii_kind kind, const char *b, const char *e, struct sink *s)
{
	bool started = false;
	for (; b < e; b++) {
		char c = *b;
		if (kind == PII_PHONE) {
			if (c < '0' || c > '9' || (!started && c == '0'))
				continue;
			started = true;
		} else if (c >= 'A' && c <= 'Z') {
			c = (char)(c - 'A' + 'a');
		}
		sink_byte(s, c);
	}
}

enum pii_result pii_hash(enum pii_kind kind, const char *in, size_t len, char out[PII_HEX_LEN + 1])
{
	const char *b = len ? in : "", *e = b + len;
	trim(&b, &e);
	if (is_lower_hex64(b, e)) {
		memcpy(out, b, PII_HEX_LEN);
		out[PII_HEX_LEN] = '\0';
		return PII_PASSED;
	}
	struct sha256_ctx ctx;
	struct sink s = {.sha = &ctx};
	sha256_init(&ctx);
	normalise(kind, b, e, &s);
	enum pii_result r = PII_EMPTY;
	out[0] = '\0';
	if (s.total == 0) {
		sha256_discard(&ctx);
	} else {
		uint8_t d[SHA256_LEN];
		sha256_update(&ctx, s.chunk, s.n);
		sha256_final(&ctx, d);
		hex_encode(d, sizeof d, out);
		sealed_wipe(d, sizeof d);
		r = PII_HASHED;
	}
	sealed_wipe(s.chunk, sizeof s.chunk);
	return r;
}

size_t pii_normalize(enum pii_kind kind, const char *in, size_t len, char *out, size_t cap)
{
	const char *b = len ? in : "", *e = b + len;
	struct sink s = {.out = out, .cap = cap};
	trim(&b, &e);
	if (is_lower_hex64(b, e)) {
		for (; b < e; b++)
			sink_byte(&s, *b);
	} else {
		normalise(kind, b, e, &s);
	}
	out[s.total < cap ? s.total : cap - 1] = '\0';
	return s.total;
}
