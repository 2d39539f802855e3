/*
 * test_kv_memory.c: unit tests for src/kv/kv.c and kv_memory.c: kv_open's
 * URL handling, GCRA through kv against tests/vectors/gcra.json (explicit
 * now_ms), the idempotency claim / complete / replay / release cycle with
 * binary bodies, expiry, exact admission under 8 concurrent threads, the
 * entry and byte caps, and notices reaching the subscriber.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <jansson.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "kv/kv.h"

#define FP_A "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
#define FP_B "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"

static struct kv *open_memory(const char *url)
{
	struct kv *kv = NULL;
	assert_int_equal(kv_open(url, &kv), KV_OK);
	assert_non_null(kv);
	return kv;
}

static void sleep_ms(long ms)
{
	struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
	while (nanosleep(&ts, &ts) != 0)
		;
}

static void test_open_urls(void **state)
{
	static const char *const bad[] = {
	    NULL,
	    "",
	    "memory",
	    "memory:/",
	    "bogus://x",
	    "memory://x",
	    "memory://?",
	    "memory://?max_entries=",
	    "memory://?max_entries=abc",
	    "memory://?max_entries=8",
	    "memory://?max_entries=-100",
	    "memory://?max_entries=100&",
	    "memory://?max_entries=100&&max_bytes=1",
	    "memory://?foo=1",
	    "memory://?max_bytes=99999999999999999999",
	    "redis://",
	    "redis://:6379",
	    "redis://host:0",
	    "redis://host:65536",
	    "redis://host:12ab",
	    "redis://host/x",
	    "redis://host/1?x=1",
	    "redis://host#frag",
	    "redis://ho st",
	    "redis://user@host",
	    "redis://:@host",
	    "redis://:pw%zz@host",
	    "redis://[::1",
	    "redis://host:6379/99999999",
	};
	static const char *const good[] = {
	    "memory://",
	    "memory://?max_entries=100",
	    "memory://?max_bytes=0&max_entries=16",
	    "redis://127.0.0.1:6399/0",
	    "redis://localhost",
	    "redis://localhost/",
	    "redis://redis.internal:6380/3",
	    "redis://:secret@host",
	    "redis://default:p%40ss@host:1234/2",
	    "redis://[::1]:6379/1",
	};
	struct kv *kv;
	char longurl[KV_URL_MAX + 16];
	(void)state;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		kv = (struct kv *)1;
		if (kv_open(bad[i], &kv) != KV_EINVAL)
			fail_msg("accepted bad URL \"%s\"", bad[i] ? bad[i] : "(null)");
		assert_null(kv);
	}
	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		kv = NULL;
		if (kv_open(good[i], &kv) != KV_OK)
			fail_msg("refused good URL \"%s\"", good[i]);
		kv_close(kv);
	}
	memset(longurl, 'a', sizeof(longurl));
	memcpy(longurl, "memory://", 9);
	longurl[sizeof(longurl) - 1] = '\0';
	assert_int_equal(kv_open(longurl, &kv), KV_EINVAL);
	kv_close(NULL);
}

static void test_gcra_vectors(void **state)
{
	const char *dir = getenv("PORTCULLIS_VECTORS");
	char path[4096];
	json_error_t err;
	size_t i;
	json_t *step;
	(void)state;

	assert_non_null(dir);
	assert_true((size_t)snprintf(path, sizeof(path), "%s/gcra.json", dir) < sizeof(path));
	json_t *root = json_load_file(path, 0, &err);
	if (!root)
		fail_msg("%s:%d: %s", path, err.line, err.text);
	json_t *params = json_object_get(root, "params");
	struct gcra_params p = {
	    .max_burst = json_integer_value(json_object_get(params, "max_burst")),
	    .count = json_integer_value(json_object_get(params, "count")),
	    .period_ms = json_integer_value(json_object_get(params, "period_s")) * 1000,
	};
	struct kv *kv = open_memory("memory://");

	json_array_foreach(json_object_get(root, "steps"), i, step)
	{
		struct gcra_result r;
		int64_t t = json_integer_value(json_array_get(step, 0));
		int64_t q = json_integer_value(json_array_get(step, 1));
		assert_int_equal(kv_gcra(kv, "rl:org:vectors", &p, t, q, &r), KV_OK);
		if (r.limited != json_is_true(json_array_get(step, 2)) ||
		    r.remaining != json_integer_value(json_array_get(step, 3)) ||
		    r.reset_after_ms != json_integer_value(json_array_get(step, 4)) ||
		    r.retry_after_ms != json_integer_value(json_array_get(step, 5)))
			fail_msg("step %zu: got limited=%d remaining=%lld reset=%lld retry=%lld", i,
			         r.limited, (long long)r.remaining, (long long)r.reset_after_ms,
			         (long long)r.retry_after_ms);
		assert_int_equal(r.limit, p.max_burst + 1);
	}
	/* Keys are independent. */
	struct gcra_result r;
	assert_int_equal(kv_gcra(kv, "rl:org:other", &p, 0, 1, &r), KV_OK);
	assert_int_equal(r.remaining, 4);
	kv_close(kv);
	json_decref(root);
}

static void test_gcra_invalid(void **state)
{
	struct kv *kv = open_memory("memory://");
	struct gcra_params p = {4, 1, 1000};
	struct gcra_result r;
	char longkey[KV_KEY_MAX + 2];
	(void)state;

	assert_int_equal(kv_gcra(kv, "k", &(struct gcra_params){0, 0, 1000}, 0, 1, &r), KV_EINVAL);
	assert_int_equal(kv_gcra(kv, "k", NULL, 0, 1, &r), KV_EINVAL);
	assert_int_equal(kv_gcra(kv, "k", &p, 0, -1, &r), KV_EINVAL);
	assert_int_equal(kv_gcra(kv, "k", &p, -1, 1, &r), KV_EINVAL);
	assert_int_equal(kv_gcra(kv, "", &p, 0, 1, &r), KV_EINVAL);
	assert_int_equal(kv_gcra(kv, NULL, &p, 0, 1, &r), KV_EINVAL);
	assert_int_equal(kv_gcra(kv, "k", &p, 0, 1, NULL), KV_EINVAL);
	memset(longkey, 'k', sizeof(longkey));
	longkey[KV_KEY_MAX + 1] = '\0';
	assert_int_equal(kv_gcra(kv, longkey, &p, 0, 1, &r), KV_EINVAL);
	longkey[KV_KEY_MAX] = '\0';
	assert_int_equal(kv_gcra(kv, longkey, &p, 0, 1, &r), KV_OK);
	/* A key holds one kind of record. */
	struct kv_idem_record rec;
	assert_int_equal(kv_idem_claim(kv, "idem:x", FP_A, 60, &rec), KV_OK);
	assert_int_equal(kv_gcra(kv, "idem:x", &p, 0, 1, &r), KV_EINVAL);
	assert_int_equal(kv_idem_claim(kv, longkey, FP_A, 60, &rec), KV_EINVAL);
	kv_idem_record_clear(&rec);
	kv_close(kv);
}

static void test_idem_cycle(void **state)
{
	struct kv *kv = open_memory("memory://");
	struct kv_idem_record rec;
	static const char body[] = "{\"id\":1}\0tail\xff";
	(void)state;

	assert_int_equal(kv_idem_claim(kv, "idem:o:k:1", FP_A, 60, &rec), KV_OK);
	assert_int_equal(rec.state, KV_IDEM_CLAIMED);
	assert_string_equal(rec.fingerprint, FP_A);
	kv_idem_record_clear(&rec);

	/* Same key again while running: in flight, with the stored fingerprint. */
	assert_int_equal(kv_idem_claim(kv, "idem:o:k:1", FP_B, 60, &rec), KV_OK);
	assert_int_equal(rec.state, KV_IDEM_IN_FLIGHT);
	assert_string_equal(rec.fingerprint, FP_A);
	assert_null(rec.body);
	kv_idem_record_clear(&rec);

	/* Another request cannot complete it. */
	assert_int_equal(kv_idem_complete(kv, "idem:o:k:1", FP_B, 200, NULL, NULL, 0, 60),
	                 KV_ECONFLICT);
	assert_int_equal(kv_idem_complete(kv, "idem:o:k:1", FP_A, 201, "application/json", body,
	                                  sizeof(body) - 1, 60),
	                 KV_OK);
	/* Completing twice is harmless. */
	assert_int_equal(kv_idem_complete(kv, "idem:o:k:1", FP_A, 201, "application/json", body,
	                                  sizeof(body) - 1, 60),
	                 KV_OK);

	assert_int_equal(kv_idem_claim(kv, "idem:o:k:1", FP_A, 60, &rec), KV_OK);
	assert_int_equal(rec.state, KV_IDEM_DONE);
	assert_string_equal(rec.fingerprint, FP_A);
	assert_int_equal(rec.status, 201);
	assert_string_equal(rec.content_type, "application/json");
	assert_int_equal(rec.body_len, sizeof(body) - 1);
	assert_memory_equal(rec.body, body, sizeof(body) - 1);
	assert_int_equal(rec.body[rec.body_len], '\0');
	kv_idem_record_clear(&rec);
	assert_null(rec.body);
	assert_null(rec.content_type);

	/* Other fingerprint: the caller sees the stored one and answers 422. */
	assert_int_equal(kv_idem_claim(kv, "idem:o:k:1", FP_B, 60, &rec), KV_OK);
	assert_int_equal(rec.state, KV_IDEM_DONE);
	assert_string_equal(rec.fingerprint, FP_A);
	kv_idem_record_clear(&rec);

	/* Release never drops a finished record. */
	assert_int_equal(kv_idem_release(kv, "idem:o:k:1"), KV_OK);
	assert_int_equal(kv_idem_claim(kv, "idem:o:k:1", FP_A, 60, &rec), KV_OK);
	assert_int_equal(rec.state, KV_IDEM_DONE);
	kv_idem_record_clear(&rec);
	assert_int_equal(kv_idem_complete(kv, "idem:o:k:1", FP_B, 200, NULL, NULL, 0, 60),
	                 KV_ECONFLICT);

	/* An empty body and no content type. */
	assert_int_equal(kv_idem_claim(kv, "idem:o:k:2", FP_B, 60, &rec), KV_OK);
	kv_idem_record_clear(&rec);
	assert_int_equal(kv_idem_complete(kv, "idem:o:k:2", FP_B, 204, NULL, NULL, 0, 60), KV_OK);
	assert_int_equal(kv_idem_claim(kv, "idem:o:k:2", FP_B, 60, &rec), KV_OK);
	assert_int_equal(rec.state, KV_IDEM_DONE);
	assert_int_equal(rec.status, 204);
	assert_null(rec.content_type);
	assert_null(rec.body);
	assert_int_equal(rec.body_len, 0);
	kv_idem_record_clear(&rec);

	/* A claim that vanished is still completed (the response is worth keeping). */
	assert_int_equal(kv_idem_complete(kv, "idem:o:k:3", FP_A, 200, "text/plain", "ok", 2, 60),
	                 KV_OK);
	assert_int_equal(kv_idem_claim(kv, "idem:o:k:3", FP_A, 60, &rec), KV_OK);
	assert_int_equal(rec.state, KV_IDEM_DONE);
	assert_memory_equal(rec.body, "ok", 2);
	kv_idem_record_clear(&rec);

	/* Bad arguments. */
	assert_int_equal(kv_idem_claim(kv, "idem:o:k:4", "abc", 60, &rec), KV_EINVAL);
	assert_int_equal(kv_idem_claim(kv, "idem:o:k:4", FP_A, 0, &rec), KV_EINVAL);
	assert_int_equal(kv_idem_claim(kv, "idem:o:k:4", FP_A, KV_TTL_MAX_S + 1, &rec), KV_EINVAL);
	assert_int_equal(
	    kv_idem_claim(kv, "idem:o:k:4",
	                  "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", 60,
	                  &rec),
	    KV_EINVAL);
	assert_int_equal(kv_idem_complete(kv, "idem:o:k:4", FP_A, 99, NULL, NULL, 0, 60),
	                 KV_EINVAL);
	assert_int_equal(kv_idem_complete(kv, "idem:o:k:4", FP_A, 200, NULL, NULL, 5, 60),
	                 KV_EINVAL);
	assert_int_equal(kv_idem_complete(kv, "idem:o:k:4", FP_A, 200, NULL, "x",
	                                  (size_t)KV_IDEM_BODY_MAX + 1, 60),
	                 KV_EINVAL);
	assert_int_equal(
	    kv_idem_complete(kv, "idem:o:k:4", FP_A, 200, "text/html\r\nX-Evil: 1", NULL, 0, 60),
	    KV_EINVAL);
	assert_int_equal(kv_idem_release(kv, ""), KV_EINVAL);
	kv_close(kv);
}

/* The largest record the contract allows fits the default caps. */
static void test_default_caps_hold_the_largest_record(void **state)
{
	(void)state;
	struct kv *kv = open_memory("memory://");
	char *body = malloc(KV_IDEM_BODY_MAX);
	assert_non_null(body);
	memset(body, 'b', KV_IDEM_BODY_MAX);
	char ct[KV_IDEM_CONTENT_TYPE_MAX + 1];
	memset(ct, 'c', KV_IDEM_CONTENT_TYPE_MAX);
	ct[KV_IDEM_CONTENT_TYPE_MAX] = '\0';
	struct kv_idem_record rec;
	assert_int_equal(kv_idem_claim(kv, "idem:o:k:big", FP_A, 60, &rec), KV_OK);
	assert_int_equal(rec.state, KV_IDEM_CLAIMED);
	/* 256 MiB split over 16 stripes left 16 MiB a stripe: this was KV_EUNAVAILABLE. */
	assert_int_equal(
	    kv_idem_complete(kv, "idem:o:k:big", FP_A, 200, ct, body, KV_IDEM_BODY_MAX, 60), KV_OK);
	assert_int_equal(kv_idem_claim(kv, "idem:o:k:big", FP_A, 60, &rec), KV_OK);
	assert_int_equal(rec.state, KV_IDEM_DONE);
	assert_int_equal(rec.body_len, KV_IDEM_BODY_MAX);
	kv_idem_record_clear(&rec);
	free(body);
	kv_close(kv);
}

static void test_idem_release(void **state)
{
	struct kv *kv = open_memory("memory://");
	struct kv_idem_record rec;
	(void)state;

	assert_int_equal(kv_idem_claim(kv, "idem:r", FP_A, 60, &rec), KV_OK);
	assert_int_equal(rec.state, KV_IDEM_CLAIMED);
	assert_int_equal(kv_idem_release(kv, "idem:r"), KV_OK);
	assert_int_equal(kv_idem_claim(kv, "idem:r", FP_B, 60, &rec), KV_OK);
	assert_int_equal(rec.state, KV_IDEM_CLAIMED);
	assert_string_equal(rec.fingerprint, FP_B);
	/* Releasing what is not there is fine. */
	assert_int_equal(kv_idem_release(kv, "idem:none"), KV_OK);
	kv_close(kv);
}

static void test_expiry(void **state)
{
	struct kv *kv = open_memory("memory://");
	struct kv_idem_record rec;
	struct gcra_params p = {.max_burst = 0, .count = 1, .period_ms = 1000};
	struct gcra_result r;
	(void)state;

	assert_int_equal(kv_idem_claim(kv, "idem:ttl", FP_A, 1, &rec), KV_OK);
	assert_int_equal(kv_idem_claim(kv, "idem:ttl", FP_A, 1, &rec), KV_OK);
	assert_int_equal(rec.state, KV_IDEM_IN_FLIGHT);
	assert_int_equal(kv_idem_claim(kv, "idem:done", FP_A, 1, &rec), KV_OK);
	assert_int_equal(kv_idem_complete(kv, "idem:done", FP_A, 200, NULL, "x", 1, 1), KV_OK);
	/* With the caller's clock frozen, only the TTL can free the bucket. */
	assert_int_equal(kv_gcra(kv, "rl:ttl", &p, 0, 1, &r), KV_OK);
	assert_false(r.limited);
	assert_int_equal(kv_gcra(kv, "rl:ttl", &p, 0, 1, &r), KV_OK);
	assert_true(r.limited);

	sleep_ms(1100);

	assert_int_equal(kv_idem_claim(kv, "idem:ttl", FP_B, 1, &rec), KV_OK);
	assert_int_equal(rec.state, KV_IDEM_CLAIMED);
	assert_int_equal(kv_idem_claim(kv, "idem:done", FP_B, 1, &rec), KV_OK);
	assert_int_equal(rec.state, KV_IDEM_CLAIMED);
	assert_int_equal(kv_gcra(kv, "rl:ttl", &p, 0, 1, &r), KV_OK);
	assert_false(r.limited);
	kv_close(kv);
}

struct race {
	struct kv *kv;
	const char *key;
	struct gcra_params p;
	int calls;
	int admitted;
	int errors;
};

static void *race_thread(void *arg)
{
	struct race *rc = arg;
	for (int i = 0; i < rc->calls; i++) {
		struct gcra_result r;
		if (kv_gcra(rc->kv, rc->key, &rc->p, 1700000000000LL, 1, &r) != KV_OK)
			rc->errors++;
		else if (!r.limited)
			rc->admitted++;
	}
	return NULL;
}

static void test_concurrent_gcra(void **state)
{
	struct kv *kv = open_memory("memory://");
	struct race races[8];
	pthread_t th[8];
	int admitted = 0, errors = 0;
	(void)state;

	for (int i = 0; i < 8; i++) {
		races[i] = (struct race){kv, "rl:org:race", {49, 1, 1000}, 1000, 0, 0};
		assert_int_equal(pthread_create(&th[i], NULL, race_thread, &races[i]), 0);
	}
	for (int i = 0; i < 8; i++) {
		pthread_join(th[i], NULL);
		admitted += races[i].admitted;
		errors += races[i].errors;
	}
	assert_int_equal(errors, 0);
	assert_int_equal(admitted, 50); /* max_burst + 1, not one more */
	kv_close(kv);
}

static void test_caps(void **state)
{
	struct kv *kv = open_memory("memory://?max_entries=64&max_bytes=1600");
	struct gcra_params p = {.max_burst = 0, .count = 1, .period_ms = 3600000};
	struct gcra_result r;
	struct kv_idem_record rec;
	char key[64];
	int claimed = 0, refused = 0;
	(void)state;

	/* GCRA entries make room for each other: never an error. */
	for (int i = 0; i < 1000; i++) {
		snprintf(key, sizeof(key), "rl:%d", i);
		assert_int_equal(kv_gcra(kv, key, &p, 0, 1, &r), KV_OK);
		assert_false(r.limited);
	}
	/* Idempotency records displace GCRA entries but never each other. */
	for (int i = 0; i < 1000; i++) {
		snprintf(key, sizeof(key), "idem:%d", i);
		int rc = kv_idem_claim(kv, key, FP_A, 60, &rec);
		if (rc == KV_OK && rec.state == KV_IDEM_CLAIMED)
			claimed++;
		else if (rc == KV_EUNAVAILABLE)
			refused++;
		else
			fail_msg("claim %d: rc %d state %d", i, rc, rec.state);
	}
	assert_int_equal(claimed, 64);
	assert_int_equal(refused, 1000 - 64);
	for (int i = 0; i < 1000; i++) {
		snprintf(key, sizeof(key), "idem:%d", i);
		int rc = kv_idem_claim(kv, key, FP_A, 60, &rec);
		if (rc == KV_OK) {
			assert_int_equal(rec.state, KV_IDEM_IN_FLIGHT);
			claimed--;
		}
	}
	assert_int_equal(claimed, 0); /* every claim survived */
	/* Full of claims: a new GCRA key cannot get in. */
	assert_int_equal(kv_gcra(kv, "rl:new", &p, 0, 1, &r), KV_EUNAVAILABLE);
	kv_close(kv);

	/* Bytes: 1600 over 16 stripes is 100 bytes of bodies per stripe. */
	kv = open_memory("memory://?max_entries=1600&max_bytes=1600");
	char big[101];
	memset(big, 'b', sizeof(big));
	assert_int_equal(kv_idem_claim(kv, "idem:big", FP_A, 60, &rec), KV_OK);
	assert_int_equal(kv_idem_complete(kv, "idem:big", FP_A, 200, NULL, big, 101, 60),
	                 KV_EUNAVAILABLE);
	assert_int_equal(kv_idem_release(kv, "idem:big"), KV_OK);
	assert_int_equal(kv_idem_claim(kv, "idem:big", FP_A, 60, &rec), KV_OK);
	assert_int_equal(rec.state, KV_IDEM_CLAIMED);
	assert_int_equal(kv_idem_complete(kv, "idem:big", FP_A, 200, NULL, big, 100, 60), KV_OK);
	kv_close(kv);
}

struct inbox {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	int count;
	int in_order;
	char last[64];
};

static void on_notice(const char *message, void *arg)
{
	struct inbox *in = arg;
	pthread_mutex_lock(&in->lock);
	char expect[32];
	snprintf(expect, sizeof(expect), "n%d", in->count);
	if (strcmp(message, expect) == 0)
		in->in_order++;
	snprintf(in->last, sizeof(in->last), "%s", message);
	in->count++;
	pthread_cond_broadcast(&in->cond);
	pthread_mutex_unlock(&in->lock);
}

static int wait_count(struct inbox *in, int n, int timeout_ms)
{
	struct timespec deadline;
	clock_gettime(CLOCK_REALTIME, &deadline);
	deadline.tv_sec += timeout_ms / 1000 + 1;
	pthread_mutex_lock(&in->lock);
	while (in->count < n) {
		if (pthread_cond_timedwait(&in->cond, &in->lock, &deadline) != 0)
			break;
	}
	int got = in->count;
	pthread_mutex_unlock(&in->lock);
	return got;
}

static void test_notices(void **state)
{
	struct kv *kv = open_memory("memory://");
	struct inbox in = {.lock = PTHREAD_MUTEX_INITIALIZER, .cond = PTHREAD_COND_INITIALIZER};
	char msg[32];
	char big[KV_NOTICE_MAX + 2];
	(void)state;

	/* Before anyone listens, notices go nowhere. */
	assert_int_equal(kv_publish(kv, "early"), KV_OK);
	assert_int_equal(kv_subscribe(kv, on_notice, &in), KV_OK);
	assert_int_equal(kv_subscribe(kv, on_notice, &in), KV_EINVAL);
	/* More than the queue holds: the publisher waits, nothing is lost. */
	for (int i = 0; i < 1000; i++) {
		snprintf(msg, sizeof(msg), "n%d", i);
		assert_int_equal(kv_publish(kv, msg), KV_OK);
	}
	assert_int_equal(wait_count(&in, 1000, 5000), 1000);
	assert_int_equal(in.in_order, 1000);
	assert_string_equal(in.last, "n999");

	assert_int_equal(kv_publish(kv, KV_NOTICE_RESYNC), KV_EINVAL);
	assert_int_equal(kv_publish(kv, ""), KV_EINVAL);
	assert_int_equal(kv_publish(kv, NULL), KV_EINVAL);
	memset(big, 'x', sizeof(big));
	big[KV_NOTICE_MAX + 1] = '\0';
	assert_int_equal(kv_publish(kv, big), KV_EINVAL);
	big[KV_NOTICE_MAX] = '\0';
	assert_int_equal(kv_publish(kv, big), KV_OK);
	assert_int_equal(wait_count(&in, 1001, 5000), 1001);
	assert_int_equal(kv_ping(kv), KV_OK);
	/* Close with notices possibly still queued: no leak, no hang. */
	for (int i = 0; i < 100; i++)
		assert_int_equal(kv_publish(kv, "tail"), KV_OK);
	kv_close(kv);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_open_urls),
	    cmocka_unit_test(test_gcra_vectors),
	    cmocka_unit_test(test_gcra_invalid),
	    cmocka_unit_test(test_idem_cycle),
	    cmocka_unit_test(test_idem_release),
	    cmocka_unit_test(test_default_caps_hold_the_largest_record),
	    cmocka_unit_test(test_expiry),
	    cmocka_unit_test(test_concurrent_gcra),
	    cmocka_unit_test(test_caps),
	    cmocka_unit_test(test_notices),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
