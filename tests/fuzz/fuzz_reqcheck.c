/*
 * fuzz_reqcheck.c: the request checks run before routing (http/reqcheck.h)
 * on arbitrary bytes.
 *
 * Byte 0 is control: bit 0 picks HTTP/1.0 or 1.1 for the head. The rest up
 * to the first '\n' is a request-target; every following line is a header
 * field "name:value" (split at the first ':', the value given as is).
 * Invariants: the target check never writes past its buffer (the decoded
 * path lives in an exact-size heap copy), an accepted path starts with '/',
 * is no longer than the target, holds no control byte or backslash, no "."
 * or ".." segment, and re-checking the raw target gives the same path; a
 * refusal always carries a status, a code and a message, and 501 only ever
 * comes with close set.
 */
#include "fuzz.h"

#include <stdbool.h>
#include <string.h>

#include "http/reqcheck.h"

static void check_verdict(const struct reqcheck_verdict *v)
{
	FUZZ_CHECK(v->status == 400 || v->status == 414 || v->status == 501);
	FUZZ_CHECK(v->code && v->message);
	FUZZ_CHECK(v->status != 501 || v->close);
}

static void check_target(const char *t, size_t len)
{
	char *copy = malloc(len ? len : 1);
	char *out = malloc(len + 1);
	memcpy(copy, t, len);
	struct reqcheck_verdict v;
	if (reqcheck_target(copy, len, 4096, out, len + 1, &v) == 0) {
		size_t n = strlen(out);
		FUZZ_CHECK(n >= 1 && n <= len && out[0] == '/');
		for (size_t i = 0; i < n; i++) {
			unsigned char c = (unsigned char)out[i];
			FUZZ_CHECK(c >= 0x20 && c != 0x7f && c != '\\');
		}
		for (const char *p = out; *p;) {
			while (*p == '/')
				p++;
			size_t s = strcspn(p, "/");
			FUZZ_CHECK(!(s == 1 && p[0] == '.') &&
			           !(s == 2 && p[0] == '.' && p[1] == '.'));
			p += s;
		}
		char *again = malloc(len + 1);
		FUZZ_CHECK(reqcheck_target(copy, len, 4096, again, len + 1, &v) == 0);
		FUZZ_CHECK(strcmp(out, again) == 0);
		free(again);
	} else {
		check_verdict(&v);
	}
	free(out);
	free(copy);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	int minor = data[0] & 1;
	const char *p = (const char *)data + 1;
	size_t n = size - 1;
	const char *nl = memchr(p, '\n', n);
	size_t tl = nl ? (size_t)(nl - p) : n;
	check_target(p, tl);
	if (!nl)
		return 0;
	p += tl + 1;
	n -= tl + 1;
	struct reqcheck_head h;
	reqcheck_head_init(&h, minor);
	while (n) {
		const char *end = memchr(p, '\n', n);
		size_t ll = end ? (size_t)(end - p) : n;
		const char *colon = memchr(p, ':', ll);
		size_t nlen = colon ? (size_t)(colon - p) : ll;
		size_t vlen = colon ? ll - nlen - 1 : 0;
		char *line = malloc(ll ? ll : 1);
		memcpy(line, p, ll);
		reqcheck_head_field(&h, line, nlen, line + nlen + (colon ? 1 : 0), vlen);
		free(line);
		p += ll + (end ? 1 : 0);
		n -= ll + (end ? 1 : 0);
	}
	struct reqcheck_verdict v;
	if (reqcheck_head_done(&h, &v) < 0)
		check_verdict(&v);
	else
		FUZZ_CHECK(h.minor == 0 || h.n_host == 1);
	return 0;
}
