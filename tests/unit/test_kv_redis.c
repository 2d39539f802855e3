/*
 * test_kv_redis.c: unit tests for src/kv/kv_redis.c against a real Redis,
 * named by PORTCULLIS_TEST_REDIS_URL (every test is skipped without it):
 *
 *   redis-server --port 6399 --save '' --appendonly no --daemonize yes
 *   PORTCULLIS_TEST_REDIS_URL=redis://127.0.0.1:6399/0 meson test ...
 *
 * The same behaviours as the memory backend (GCRA outcomes, the
 * idempotency cycle with binary bodies, release, expiry, exact admission
 * under concurrency), plus what only several nodes show: two handles
 * sharing one limit, notices crossing handles and surviving a dropped
 * subscription, keys that always expire, script cache loss, and a closed
 * port failing fast with KV_EUNAVAILABLE. Keys carry a per-run tag.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <hiredis/hiredis.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "core/clock.h"
#include "kv/kv.h"

#define FP_A "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
#define FP_B "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"

static const char *redis_url;
static char tag[64]; /* unique per run, so reruns never see old keys */

static void key_of(char *out, size_t cap, const char *name)
{
	snprintf(out, cap, "test:%s:%s", tag, name);
}

static struct kv *open_redis(void)
{
	struct kv *kv = NULL;
	if (!redis_url)
		skip();
	assert_int_equal(kv_open(redis_url, &kv), KV_OK);
	return kv;
}

static void sleep_ms(long ms)
{
	struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
	while (nanosleep(&ts, &ts) != 0)
		;
}

/* A direct connection to the test server, for looking behind the backend. */
static redisContext *raw_connect(void)
{
	char host[256];
	int port = 6379;
	const char *s = redis_url + strlen("redis://");
	const char *colon = strchr(s, ':');
	const char *end = colon ? colon : s + strcspn(s, "/");
	snprintf(host, sizeof(host), "%.*s", (int)(end - s), s);
	if (colon)
		port = (int)strtol(colon + 1, NULL, 10);
	redisContext *c = redisConnect(host, port);
	assert_non_null(c);
	assert_int_equal(c->err, 0);
	return c;
}

static long long raw_pttl(redisContext *c, const char *key)
{
	redisReply *rep = redisCommand(c, "PTTL pcl:%s", key);
	assert_non_null(rep);
	assert_int_equal(rep->type, REDIS_REPLY_INTEGER);
	long long v = rep->integer;
	freeReplyObject(rep);
	return v;
}

static void test_gcra(void **state)
{
	struct kv *kv = open_redis();
	/* The vector params slowed 1000x, so test time does not refill the bucket. */
	struct gcra_params p = {.max_burst = 4, .count = 1, .period_ms = 1000000};
	struct gcra_result r;
	char key[128];
	(void)state;

	key_of(key, sizeof(key), "gcra");
	/* The first seven vector steps all run at t = 0. */
	static const struct {
		int64_t q;
		bool limited;
		int64_t remaining, reset_s, retry_s;
	} steps[] = {
	    {6, true, 5, 0, -1},      {1, false, 4, 1000, -1}, {1, false, 3, 2000, -1},
	    {1, false, 2, 3000, -1},  {1, false, 1, 4000, -1}, {1, false, 0, 5000, -1},
	    {1, true, 0, 5000, 1000},
	};
	for (size_t i = 0; i < sizeof(steps) / sizeof(steps[0]); i++) {
		assert_int_equal(kv_gcra(kv, key, &p, 0, steps[i].q, &r), KV_OK);
		assert_int_equal(r.limited, steps[i].limited);
		assert_int_equal(r.remaining, steps[i].remaining);
		assert_int_equal(r.limit, 5);
		/* Milliseconds pass between calls: allow a second of drift. */
		assert_true(r.reset_after_ms <= steps[i].reset_s * 1000);
		assert_true(r.reset_after_ms >= steps[i].reset_s * 1000 - 1000);
		if (steps[i].retry_s < 0) {
			assert_int_equal(r.retry_after_ms, -1);
		} else {
			assert_true(r.retry_after_ms <= steps[i].retry_s * 1000);
			assert_true(r.retry_after_ms >= steps[i].retry_s * 1000 - 1000);
		}
	}
	/* A peek changes nothing. */
	assert_int_equal(kv_gcra(kv, key, &p, 0, 0, &r), KV_OK);
	assert_false(r.limited);
	assert_int_equal(r.remaining, 0);

	/* The TAT expires with the bucket: a PTTL near the reset time. */
	redisContext *c = raw_connect();
	long long pttl = raw_pttl(c, key);
	assert_true(pttl > 5000000 - 2000 && pttl <= 5000000);

	/* Losing the script cache (a restart or SCRIPT FLUSH) is handled. */
	freeReplyObject(redisCommand(c, "SCRIPT FLUSH"));
	assert_int_equal(kv_gcra(kv, key, &p, 0, 1, &r), KV_OK);
	assert_true(r.limited);

	/* A fast limit: 1 per 200 ms, burst 0. */
	struct gcra_params fast = {.max_burst = 0, .count = 1, .period_ms = 200};
	key_of(key, sizeof(key), "gcra-fast");
	assert_int_equal(kv_gcra(kv, key, &fast, 0, 1, &r), KV_OK);
	assert_false(r.limited);
	assert_int_equal(kv_gcra(kv, key, &fast, 0, 1, &r), KV_OK);
	assert_true(r.limited);
	assert_true(r.retry_after_ms > 0 && r.retry_after_ms <= 200);
	sleep_ms(250);
	assert_int_equal(kv_gcra(kv, key, &fast, 0, 1, &r), KV_OK);
	assert_false(r.limited);

	/* Wrong kind of record under the key; invalid params. */
	key_of(key, sizeof(key), "gcra-wrongtype");
	freeReplyObject(redisCommand(c, "HSET pcl:%s s i", key));
	freeReplyObject(redisCommand(c, "PEXPIRE pcl:%s 60000", key));
	assert_int_equal(kv_gcra(kv, key, &(struct gcra_params){0, 0, 0}, 0, 1, &r), KV_EINVAL);
	assert_int_equal(kv_gcra(kv, key, &p, 0, 1, &r), KV_EINVAL);
	redisFree(c);
	kv_close(kv);
}

static void test_idem_cycle(void **state)
{
	struct kv *kv = open_redis();
	struct kv_idem_record rec;
	static const char body[] = "{\"id\":1}\0tail\xff\r\n";
	char key[128], key2[128];
	(void)state;

	key_of(key, sizeof(key), "idem1");
	assert_int_equal(kv_idem_claim(kv, key, FP_A, 60, &rec), KV_OK);
	assert_int_equal(rec.state, KV_IDEM_CLAIMED);
	assert_string_equal(rec.fingerprint, FP_A);

	redisContext *c = raw_connect();
	long long pttl = raw_pttl(c, key);
	assert_true(pttl > 58000 && pttl <= 60000);

	assert_int_equal(kv_idem_claim(kv, key, FP_B, 60, &rec), KV_OK);
	assert_int_equal(rec.state, KV_IDEM_IN_FLIGHT);
	assert_string_equal(rec.fingerprint, FP_A);
	assert_null(rec.body);

	assert_int_equal(kv_idem_complete(kv, key, FP_B, 200, NULL, NULL, 0, 60), KV_ECONFLICT);
	assert_int_equal(
	    kv_idem_complete(kv, key, FP_A, 201, "application/json", body, sizeof(body) - 1, 120),
	    KV_OK);
	assert_int_equal(
	    kv_idem_complete(kv, key, FP_A, 201, "application/json", body, sizeof(body) - 1, 120),
	    KV_OK);
	pttl = raw_pttl(c, key);
	assert_true(pttl > 118000 && pttl <= 120000); /* the TTL restarts at completion */

	assert_int_equal(kv_idem_claim(kv, key, FP_A, 60, &rec), KV_OK);
	assert_int_equal(rec.state, KV_IDEM_DONE);
	assert_string_equal(rec.fingerprint, FP_A);
	assert_int_equal(rec.status, 201);
	assert_string_equal(rec.content_type, "application/json");
	assert_int_equal(rec.body_len, sizeof(body) - 1);
	assert_memory_equal(rec.body, body, sizeof(body) - 1);
	kv_idem_record_clear(&rec);

	assert_int_equal(kv_idem_claim(kv, key, FP_B, 60, &rec), KV_OK);
	assert_int_equal(rec.state, KV_IDEM_DONE);
	assert_string_equal(rec.fingerprint, FP_A);
	kv_idem_record_clear(&rec);

	/* Release leaves a finished record alone. */
	assert_int_equal(kv_idem_release(kv, key), KV_OK);
	assert_int_equal(kv_idem_claim(kv, key, FP_A, 60, &rec), KV_OK);
	assert_int_equal(rec.state, KV_IDEM_DONE);
	kv_idem_record_clear(&rec);

	/* Empty body, no content type; and a vanished claim. */
	key_of(key2, sizeof(key2), "idem2");
	assert_int_equal(kv_idem_complete(kv, key2, FP_B, 204, NULL, NULL, 0, 60), KV_OK);
	assert_int_equal(kv_idem_claim(kv, key2, FP_B, 60, &rec), KV_OK);
	assert_int_equal(rec.state, KV_IDEM_DONE);
	assert_int_equal(rec.status, 204);
	assert_null(rec.content_type);
	assert_null(rec.body);
	kv_idem_record_clear(&rec);

	/* A large binary body round-trips intact. */
	size_t big_len = 1024 * 1024;
	char *big = malloc(big_len);
	assert_non_null(big);
	for (size_t i = 0; i < big_len; i++)
		big[i] = (char)(i * 7);
	key_of(key2, sizeof(key2), "idem-big");
	assert_int_equal(kv_idem_claim(kv, key2, FP_A, 60, &rec), KV_OK);
	assert_int_equal(
	    kv_idem_complete(kv, key2, FP_A, 200, "application/octet-stream", big, big_len, 60),
	    KV_OK);
	assert_int_equal(kv_idem_claim(kv, key2, FP_A, 60, &rec), KV_OK);
	assert_int_equal(rec.body_len, big_len);
	assert_memory_equal(rec.body, big, big_len);
	kv_idem_record_clear(&rec);
	free(big);

	/* A key of the wrong type. */
	key_of(key2, sizeof(key2), "idem-wrongtype");
	freeReplyObject(redisCommand(c, "SET pcl:%s x PX 60000", key2));
	assert_int_equal(kv_idem_claim(kv, key2, FP_A, 60, &rec), KV_EINVAL);
	redisFree(c);
	kv_close(kv);
}

static void test_idem_release_and_expiry(void **state)
{
	struct kv *kv = open_redis();
	struct kv_idem_record rec;
	char key[128], done[128];
	(void)state;

	key_of(key, sizeof(key), "rel");
	assert_int_equal(kv_idem_claim(kv, key, FP_A, 60, &rec), KV_OK);
	assert_int_equal(kv_idem_release(kv, key), KV_OK);
	assert_int_equal(kv_idem_claim(kv, key, FP_B, 1, &rec), KV_OK);
	assert_int_equal(rec.state, KV_IDEM_CLAIMED);
	assert_string_equal(rec.fingerprint, FP_B);
	key_of(done, sizeof(done), "rel-done");
	assert_int_equal(kv_idem_claim(kv, done, FP_A, 1, &rec), KV_OK);
	assert_int_equal(kv_idem_complete(kv, done, FP_A, 200, NULL, "x", 1, 1), KV_OK);

	sleep_ms(1100);

	assert_int_equal(kv_idem_claim(kv, key, FP_A, 60, &rec), KV_OK);
	assert_int_equal(rec.state, KV_IDEM_CLAIMED);
	assert_int_equal(kv_idem_claim(kv, done, FP_B, 60, &rec), KV_OK);
	assert_int_equal(rec.state, KV_IDEM_CLAIMED);
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
		if (kv_gcra(rc->kv, rc->key, &rc->p, 0, 1, &r) != KV_OK)
			rc->errors++;
		else if (!r.limited)
			rc->admitted++;
	}
	return NULL;
}

/* 8 threads x calls over the given handles (thread i uses kvs[i % n]). */
static void race(struct kv **kvs, int n, const char *key, int calls, int *admitted, int *errors)
{
	struct race races[8];
	pthread_t th[8];
	*admitted = *errors = 0;
	for (int i = 0; i < 8; i++) {
		/* 1 per 1000 s: nothing refills while the test runs. */
		races[i] = (struct race){kvs[i % n], key, {49, 1, 1000000}, calls, 0, 0};
		assert_int_equal(pthread_create(&th[i], NULL, race_thread, &races[i]), 0);
	}
	for (int i = 0; i < 8; i++) {
		pthread_join(th[i], NULL);
		*admitted += races[i].admitted;
		*errors += races[i].errors;
	}
}

static void test_concurrent_gcra(void **state)
{
	struct kv *kv = open_redis();
	char key[128];
	int admitted, errors;
	(void)state;

	key_of(key, sizeof(key), "race1");
	race(&kv, 1, key, 1000, &admitted, &errors);
	assert_int_equal(errors, 0);
	assert_int_equal(admitted, 50);
	kv_close(kv);
}

static void test_two_nodes_share_limit(void **state)
{
	struct kv *kvs[2] = {open_redis(), open_redis()};
	char key[128];
	int admitted, errors;
	(void)state;

	key_of(key, sizeof(key), "race2");
	race(kvs, 2, key, 500, &admitted, &errors);
	assert_int_equal(errors, 0);
	assert_int_equal(admitted, 50);
	kv_close(kvs[0]);
	kv_close(kvs[1]);
}

/* Redis drops every pooled connection (restart, timeout, CLIENT KILL). */
static void test_connections_dropped(void **state)
{
	struct kv *kv = open_redis();
	struct gcra_params p = {.max_burst = 9, .count = 1, .period_ms = 1000000};
	struct gcra_result r;
	struct kv_idem_record rec;
	char key[128], idem[128];
	(void)state;

	key_of(key, sizeof(key), "dropped");
	key_of(idem, sizeof(idem), "dropped-idem");
	assert_int_equal(kv_gcra(kv, key, &p, 0, 1, &r), KV_OK);
	assert_int_equal(kv_ping(kv), KV_OK);

	redisContext *c = raw_connect();
	redisReply *rep = redisCommand(c, "CLIENT KILL TYPE normal SKIPME yes");
	assert_non_null(rep);
	assert_true(rep->type == REDIS_REPLY_INTEGER && rep->integer >= 1);
	freeReplyObject(rep);

	/* Safe to repeat: retried at once on a fresh connection. */
	assert_int_equal(kv_gcra(kv, key, &p, 0, 1, &r), KV_OK);
	assert_int_equal(r.remaining, 8);
	assert_int_equal(kv_ping(kv), KV_OK);

	/* A claim is never repeated: it may fail once, then works again. */
	rep = redisCommand(c, "CLIENT KILL TYPE normal SKIPME yes");
	freeReplyObject(rep);
	int rc = kv_idem_claim(kv, idem, FP_A, 60, &rec);
	assert_true(rc == KV_OK || rc == KV_EUNAVAILABLE);
	if (rc == KV_EUNAVAILABLE)
		assert_int_equal(kv_idem_claim(kv, idem, FP_A, 60, &rec), KV_OK);
	assert_int_equal(rec.state, KV_IDEM_CLAIMED);
	redisFree(c);
	kv_close(kv);
}

struct inbox {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	int hits;
	int resyncs;
	char want[64];
};

static void on_notice(const char *message, void *arg)
{
	struct inbox *in = arg;
	pthread_mutex_lock(&in->lock);
	if (strcmp(message, KV_NOTICE_RESYNC) == 0)
		in->resyncs++;
	else if (strcmp(message, in->want) == 0)
		in->hits++;
	pthread_cond_broadcast(&in->cond);
	pthread_mutex_unlock(&in->lock);
}

/*
 * Publish on from until sub's inbox counts a hit (the subscription is set
 * up asynchronously, so early notices may find nobody listening).
 */
static bool publish_until_seen(struct kv *from, struct inbox *in, const char *msg)
{
	pthread_mutex_lock(&in->lock);
	snprintf(in->want, sizeof(in->want), "%s", msg);
	in->hits = 0;
	pthread_mutex_unlock(&in->lock);
	for (int i = 0; i < 100; i++) {
		assert_int_equal(kv_publish(from, msg), KV_OK);
		struct timespec deadline;
		clock_gettime(CLOCK_REALTIME, &deadline);
		deadline.tv_nsec += 100000000L;
		if (deadline.tv_nsec >= 1000000000L) {
			deadline.tv_sec++;
			deadline.tv_nsec -= 1000000000L;
		}
		pthread_mutex_lock(&in->lock);
		while (in->hits == 0 &&
		       pthread_cond_timedwait(&in->cond, &in->lock, &deadline) == 0)
			;
		bool seen = in->hits > 0;
		pthread_mutex_unlock(&in->lock);
		if (seen)
			return true;
	}
	return false;
}

static void test_notices_cross_nodes(void **state)
{
	struct kv *a = open_redis(), *b = open_redis();
	struct inbox in = {.lock = PTHREAD_MUTEX_INITIALIZER, .cond = PTHREAD_COND_INITIALIZER};
	char msg[128];
	(void)state;

	assert_int_equal(kv_subscribe(b, on_notice, &in), KV_OK);
	assert_int_equal(kv_subscribe(b, on_notice, &in), KV_EINVAL);
	snprintf(msg, sizeof(msg), "key:%s:changed", tag);
	assert_true(publish_until_seen(a, &in, msg));
	assert_int_equal(in.resyncs, 0);

	/* Redis drops the subscriber: it comes back and says notices may be lost. */
	redisContext *c = raw_connect();
	redisReply *rep = redisCommand(c, "CLIENT KILL TYPE pubsub");
	assert_non_null(rep);
	assert_true(rep->type == REDIS_REPLY_INTEGER && rep->integer >= 1);
	freeReplyObject(rep);
	redisFree(c);
	snprintf(msg, sizeof(msg), "key:%s:again", tag);
	assert_true(publish_until_seen(a, &in, msg));
	pthread_mutex_lock(&in.lock);
	assert_true(in.resyncs >= 1);
	pthread_mutex_unlock(&in.lock);

	assert_int_equal(kv_publish(a, KV_NOTICE_RESYNC), KV_EINVAL);
	assert_int_equal(kv_ping(a), KV_OK);
	kv_close(a);
	int64_t t0 = clock_mono_ms();
	kv_close(b);
	assert_true(clock_mono_ms() - t0 < 1000);
}

/* A TCP port on loopback that nothing listens on. */
static int closed_port(void)
{
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t len = sizeof(sa);
	assert_true(fd >= 0);
	assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&sa, &len), 0);
	close(fd);
	return ntohs(sa.sin_port);
}

static void test_unreachable(void **state)
{
	char url[64];
	struct kv *kv = NULL;
	struct gcra_result r;
	struct kv_idem_record rec;
	struct inbox in = {.lock = PTHREAD_MUTEX_INITIALIZER, .cond = PTHREAD_COND_INITIALIZER};
	(void)state;

	if (!redis_url)
		skip();
	snprintf(url, sizeof(url), "redis://127.0.0.1:%d/0", closed_port());
	assert_int_equal(kv_open(url, &kv), KV_OK); /* lazy: no connection yet */
	int64_t t0 = clock_mono_ms();
	assert_int_equal(kv_ping(kv), KV_EUNAVAILABLE);
	assert_int_equal(kv_gcra(kv, "k", &(struct gcra_params){4, 1, 1000}, 0, 1, &r),
	                 KV_EUNAVAILABLE);
	assert_int_equal(kv_idem_claim(kv, "k", FP_A, 60, &rec), KV_EUNAVAILABLE);
	assert_null(rec.body); /* emptied, safe to clear */
	kv_idem_record_clear(&rec);
	assert_int_equal(kv_idem_complete(kv, "k", FP_A, 200, NULL, NULL, 0, 60), KV_EUNAVAILABLE);
	assert_int_equal(kv_idem_release(kv, "k"), KV_EUNAVAILABLE);
	assert_int_equal(kv_publish(kv, "x"), KV_EUNAVAILABLE);
	/* After the fail-fast window it tries again, and fails again, quickly. */
	sleep_ms(300);
	assert_int_equal(kv_ping(kv), KV_EUNAVAILABLE);
	assert_true(clock_mono_ms() - t0 < 2000);
	/* A subscriber retrying in the background stops promptly on close. */
	assert_int_equal(kv_subscribe(kv, on_notice, &in), KV_OK);
	sleep_ms(200);
	t0 = clock_mono_ms();
	kv_close(kv);
	assert_true(clock_mono_ms() - t0 < 1500);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_gcra),
	    cmocka_unit_test(test_idem_cycle),
	    cmocka_unit_test(test_idem_release_and_expiry),
	    cmocka_unit_test(test_concurrent_gcra),
	    cmocka_unit_test(test_two_nodes_share_limit),
	    cmocka_unit_test(test_connections_dropped),
	    cmocka_unit_test(test_notices_cross_nodes),
	    cmocka_unit_test(test_unreachable),
	};
	/* A write to a connection Redis closed must fail, not kill us (main does the same). */
	signal(SIGPIPE, SIG_IGN);
	redis_url = getenv("PORTCULLIS_TEST_REDIS_URL");
	if (redis_url && !*redis_url)
		redis_url = NULL;
	snprintf(tag, sizeof(tag), "%lld-%d", (long long)clock_now_ms(), (int)getpid());
	return cmocka_run_group_tests(tests, NULL, NULL);
}
