/*
 * kv.c: the backend-independent part of the shared-state tier: kv_open
 * picks a backend by URL scheme, and the argument checks and record helpers
 * that kv_memory.c and kv_redis.c share, so both reject the same inputs.
 */
#include "kv/kv.h"

#include <stdlib.h>
#include <string.h>

#include "core/config.h"
#include "core/str.h"
#include "kv/kv_internal.h"

/* [idempotency] max_response_bytes may not promise more than a record holds. */
_Static_assert(KV_IDEM_BODY_MAX == CONFIG_IDEMPOTENCY_BODY_MAX,
               "[idempotency] max_response_bytes range must end at the kv body cap");

static const struct kv_backend *const backends[] = {
    &kv_memory_backend,
    &kv_redis_backend,
};

int kv_open(const char *url, struct kv **out)
{
	if (!out)
		return KV_EINVAL;
	*out = NULL;
	if (!url || strnlen(url, KV_URL_MAX + 1) > KV_URL_MAX)
		return KV_EINVAL;
	const char *sep = strstr(url, "://");
	if (!sep)
		return KV_EINVAL;
	size_t scheme_len = (size_t)(sep - url);
	for (size_t i = 0; i < sizeof(backends) / sizeof(backends[0]); i++) {
		const struct kv_backend *b = backends[i];
		if (strlen(b->scheme) == scheme_len && memcmp(b->scheme, url, scheme_len) == 0)
			return b->open(url, out);
	}
	return KV_EINVAL;
}

void kv_idem_record_clear(struct kv_idem_record *rec)
{
	if (!rec)
		return;
	free(rec->content_type);
	free(rec->body);
	memset(rec, 0, sizeof(*rec));
}

bool kv_key_ok(const char *key)
{
	size_t n = key ? strnlen(key, KV_KEY_MAX + 1) : 0;
	return n >= 1 && n <= KV_KEY_MAX;
}

bool kv_fingerprint_ok(const char *fp)
{
	if (!fp)
		return false;
	for (size_t i = 0; i < 64; i++) {
		char c = fp[i];
		if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')))
			return false;
	}
	return fp[64] == '\0';
}

bool kv_notice_ok(const char *message)
{
	size_t n = message ? strnlen(message, KV_NOTICE_MAX + 1) : 0;
	return n >= 1 && n <= KV_NOTICE_MAX && strcmp(message, KV_NOTICE_RESYNC) != 0;
}

int kv_check_gcra(const char *key, const struct gcra_params *p, int64_t now_ms, int64_t quantity,
                  const struct gcra_result *out)
{
	if (!kv_key_ok(key) || !gcra_params_valid(p) || !out || quantity < 0 || now_ms < 0 ||
	    now_ms > GCRA_NOW_US_MAX / 1000)
		return KV_EINVAL;
	return KV_OK;
}

int kv_check_claim(const char *key, const char *fingerprint, int ttl_s, struct kv_idem_record *out)
{
	if (!out)
		return KV_EINVAL;
	memset(out, 0, sizeof(*out));
	if (!kv_key_ok(key) || !kv_fingerprint_ok(fingerprint) || ttl_s < 1 || ttl_s > KV_TTL_MAX_S)
		return KV_EINVAL;
	return KV_OK;
}

int kv_check_complete(const char *key, const char *fingerprint, int status,
                      const char *content_type, const char *body, size_t body_len, int ttl_s)
{
	if (!kv_key_ok(key) || !kv_fingerprint_ok(fingerprint) || status < 100 || status > 599 ||
	    ttl_s < 1 || ttl_s > KV_TTL_MAX_S || body_len > KV_IDEM_BODY_MAX ||
	    (body_len > 0 && !body))
		return KV_EINVAL;
	if (!content_type)
		return KV_OK;
	/* It is replayed as a header value: printable ASCII only, bounded. */
	size_t n = strnlen(content_type, KV_IDEM_CONTENT_TYPE_MAX + 1);
	if (n > KV_IDEM_CONTENT_TYPE_MAX)
		return KV_EINVAL;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)content_type[i];
		if ((c < 0x20 && c != '\t') || c > 0x7e)
			return KV_EINVAL;
	}
	return KV_OK;
}

int kv_parse_num(const char *s, size_t len, int64_t min, int64_t max, int64_t *out)
{
	uint64_t v;
	if (!s || len > 18 || max < 0 || parse_uint64(s, len, (uint64_t)max, &v) != 0 ||
	    (int64_t)v < min)
		return -1;
	*out = (int64_t)v;
	return 0;
}
