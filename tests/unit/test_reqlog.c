/*
 * test_reqlog.c: the request-log writer (src/gateway/reqlog.c) against a real
 * SQLite store in a temp directory: every submitted row is written once,
 * a full ring drops exactly the rows that do not fit (the writer is held up
 * by another connection holding SQLite's write lock), a store that keeps
 * failing costs the batch after bounded retries, retention purges only old
 * rows (on demand and at start), stop flushes, hostile text is made storable
 * (exactly as the byte-at-a-time rules say; on PostgreSQL too, when
 * PORTCULLIS_TEST_PG_URL is set, without costing the rest of its batch), and
 * many submitting threads lose nothing.
 *
 * Metrics are process-wide, so tests compare before and after values read
 * from the Prometheus rendering.
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
#include <unistd.h>

#include "api/api.h"
#include "core/clock.h"
#include "core/log.h"
#include "core/metrics.h"
#include "core/str.h"
#include "core/ulid.h"
#include "gateway/reqlog.h"
#include "store/db.h"
#include "pg_url.h"
#include "store/store.h"

#define DAY_MS (24 * 3600 * (int64_t)1000)

struct fixture {
	char dir[256];
	char path[300];
	char url[320];
	struct store *st;
};

/* ---------- helpers ---------- */

#include "metric_value.h"

#define DROPPED "portcullis_request_log_dropped_total"
#define WRITTEN "portcullis_request_log_written_total"
#define DEPTH   "portcullis_request_log_queue_depth"

static void make_row(struct store_request_row *r, int64_t received_at)
{
	memset(r, 0, sizeof *r);
	/* as the server makes them: the id carries received_at */
	ulid_prefixed_at("req", received_at, r->request_id, sizeof r->request_id);
	r->received_at = received_at;
	snprintf(r->org_id, sizeof r->org_id, "01HXZ9G7KMV2QX8Y1S5RJW3B7T");
	snprintf(r->key_id, sizeof r->key_id, "01HXZ9G7KMV2QX8Y1S5RJW3B7V");
	snprintf(r->method, sizeof r->method, "GET");
	snprintf(r->path, sizeof r->path, "/v1/things/42");
	r->status = 200;
	r->duration_ms = 3;
	snprintf(r->region, sizeof r->region, "DE");
	r->bytes_in = 10;
	r->bytes_out = 200;
	snprintf(r->user_agent, sizeof r->user_agent, "test-agent/1.0");
}

static int64_t row_count(struct store *st)
{
	int64_t n = -1;
	assert_int_equal(store_request_log_count(st, &n), STORE_OK);
	return n;
}

/* A second, raw connection to the same file (to hold locks, break tables). */
static struct db_conn *raw_connect(const struct fixture *fx)
{
	struct db_conn *c = NULL;
	char err[256];
	if (db_sqlite_driver.connect(fx->url, false, NULL, &c, err, sizeof err) != DB_OK)
		fail_msg("raw connect: %s", err);
	return c;
}

static int setup(void **state)
{
	struct fixture *fx = calloc(1, sizeof *fx);
	assert_non_null(fx);
	const char *tmp = getenv("TMPDIR");
	snprintf(fx->dir, sizeof fx->dir, "%s/pcl-reqlog-XXXXXX", tmp && *tmp ? tmp : "/tmp");
	assert_non_null(mkdtemp(fx->dir));
	snprintf(fx->path, sizeof fx->path, "%s/store.db", fx->dir);
	snprintf(fx->url, sizeof fx->url, "sqlite://%s", fx->path);
	char err[256];
	if (store_open(fx->url, 2, &fx->st, err, sizeof err) != STORE_OK)
		fail_msg("store_open: %s", err);
	assert_int_equal(store_migrate(fx->st, NULL), STORE_OK);
	*state = fx;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *fx = *state;
	store_close(fx->st);
	static const char *const suffix[] = {"", "-wal", "-shm"};
	char p[sizeof fx->path + 8];
	for (size_t i = 0; i < sizeof suffix / sizeof suffix[0]; i++) {
		snprintf(p, sizeof p, "%s%s", fx->path, suffix[i]);
		unlink(p);
	}
	rmdir(fx->dir);
	free(fx);
	return 0;
}

/* ---------- tests ---------- */

static void test_null_is_noop(void **state)
{
	(void)state;
	struct store_request_row r;
	make_row(&r, clock_now_ms());
	reqlog_submit(NULL, &r);
	assert_int_equal(reqlog_flush(NULL, 0), 0);
	reqlog_stop(NULL);
}

/* Every submitted row is written exactly once; nothing is dropped. */
static void test_submit_flush_count(void **state)
{
	struct fixture *fx = *state;
	int64_t written0 = metric_value(WRITTEN), dropped0 = metric_value(DROPPED);
	struct reqlog *rl = reqlog_start(fx->st, 8192, 512, 30);
	enum { N = 5000 };
	int64_t now = clock_now_ms();
	struct store_request_row r;
	for (int i = 0; i < N; i++) {
		make_row(&r, now);
		reqlog_submit(rl, &r);
	}
	assert_int_equal(reqlog_flush(rl, 30000), 0);
	assert_int_equal(row_count(fx->st), N);
	assert_int_equal(metric_value(WRITTEN) - written0, N);
	assert_int_equal(metric_value(DROPPED) - dropped0, 0);
	assert_int_equal(metric_value(DEPTH), 0);
	/* A flush with nothing pending returns at once. */
	assert_int_equal(reqlog_flush(rl, 0), 0);
	reqlog_stop(rl);
}

/*
 * A ring of 16 whose writer cannot write (another connection holds the
 * write lock): the rows in flight keep their slots, so exactly 16 of 100
 * fit and 84 are dropped and counted. Once the lock goes, the 16 are written.
 */
static void test_full_queue_drops_exactly(void **state)
{
	struct fixture *fx = *state;
	struct db_conn *c = raw_connect(fx);
	assert_int_equal(db_sqlite_driver.exec_script(c, "BEGIN EXCLUSIVE"), DB_OK);

	int64_t dropped0 = metric_value(DROPPED), written0 = metric_value(WRITTEN);
	struct reqlog *rl = reqlog_start(fx->st, 16, 4, 0);
	struct store_request_row r;
	for (int i = 0; i < 100; i++) {
		make_row(&r, clock_now_ms());
		reqlog_submit(rl, &r);
	}
	assert_int_equal(metric_value(DROPPED) - dropped0, 84);
	assert_int_equal(metric_value(DEPTH), 16);
	/* Still held up: a short flush times out. */
	assert_int_equal(reqlog_flush(rl, 50), -1);

	assert_int_equal(db_sqlite_driver.exec_script(c, "COMMIT"), DB_OK);
	db_sqlite_driver.disconnect(c);
	assert_int_equal(reqlog_flush(rl, 30000), 0);
	assert_int_equal(row_count(fx->st), 16);
	assert_int_equal(metric_value(WRITTEN) - written0, 16);
	assert_int_equal(metric_value(DROPPED) - dropped0, 84);
	reqlog_stop(rl);
}

/* A store that keeps failing: the batch is retried, then dropped and counted. */
static void test_store_failure_drops_batch(void **state)
{
	struct fixture *fx = *state;
	struct db_conn *c = raw_connect(fx);
	assert_int_equal(db_sqlite_driver.exec_script(c, "DROP TABLE request_log"), DB_OK);
	db_sqlite_driver.disconnect(c);

	int64_t dropped0 = metric_value(DROPPED), written0 = metric_value(WRITTEN);
	struct reqlog *rl = reqlog_start(fx->st, 64, 512, 0);
	struct store_request_row r;
	for (int i = 0; i < 3; i++) {
		make_row(&r, clock_now_ms());
		reqlog_submit(rl, &r);
	}
	int64_t t0 = clock_mono_ms();
	assert_int_equal(reqlog_flush(rl, 30000), 0);
	int64_t took = clock_mono_ms() - t0;
	/* Backoff 200 + 400 + 800 + 1600 ms between five tries, unless the
	 * first three rows were split across batches (then more). */
	assert_true(took >= 2900);
	assert_int_equal(metric_value(DROPPED) - dropped0, 3);
	assert_int_equal(metric_value(WRITTEN) - written0, 0);
	reqlog_stop(rl);
}

/* reqlog_purge deletes rows older than the retention and keeps the rest. */
static void test_purge_keeps_new_rows(void **state)
{
	struct fixture *fx = *state;
	int64_t now = clock_now_ms();
	struct store_request_row rows[5];
	make_row(&rows[0], now - 40 * DAY_MS);
	make_row(&rows[1], now - 31 * DAY_MS);
	make_row(&rows[2], now - 30 * DAY_MS - 1000);
	make_row(&rows[3], now - 29 * DAY_MS);
	make_row(&rows[4], now);
	assert_int_equal(store_request_log_insert(fx->st, rows, 5), STORE_OK);

	int64_t deleted = -1;
	assert_int_equal(reqlog_purge(fx->st, 30, now, &deleted), STORE_OK);
	assert_int_equal(deleted, 3);
	assert_int_equal(row_count(fx->st), 2);
	/* Nothing more to do the second time; 0 days means never. */
	assert_int_equal(reqlog_purge(fx->st, 30, now, &deleted), STORE_OK);
	assert_int_equal(deleted, 0);
	assert_int_equal(reqlog_purge(fx->st, 0, now + 400 * DAY_MS, &deleted), STORE_OK);
	assert_int_equal(deleted, 0);
	assert_int_equal(row_count(fx->st), 2);
}

/* The retention thread purges at start, without being asked. */
static void test_retention_runs_at_start(void **state)
{
	struct fixture *fx = *state;
	int64_t now = clock_now_ms();
	struct store_request_row rows[4];
	make_row(&rows[0], now - 90 * DAY_MS);
	make_row(&rows[1], now - 8 * DAY_MS);
	make_row(&rows[2], now - 6 * DAY_MS);
	make_row(&rows[3], now);
	assert_int_equal(store_request_log_insert(fx->st, rows, 4), STORE_OK);

	struct reqlog *rl = reqlog_start(fx->st, 64, 16, 7);
	int64_t n = -1;
	for (int i = 0; i < 500 && n != 2; i++) {
		n = row_count(fx->st);
		if (n != 2)
			usleep(10 * 1000);
	}
	assert_int_equal(n, 2);
	reqlog_stop(rl);
}

/* Stop writes everything still queued, without a flush first. */
static void test_stop_flushes(void **state)
{
	struct fixture *fx = *state;
	struct reqlog *rl = reqlog_start(fx->st, 4096, 64, 30);
	struct store_request_row r;
	for (int i = 0; i < 1000; i++) {
		make_row(&r, clock_now_ms());
		reqlog_submit(rl, &r);
	}
	reqlog_stop(rl);
	assert_int_equal(row_count(fx->st), 1000);
}

/*
 * Hostile text (a cut UTF-8 sequence, invalid bytes, control characters, a
 * bad region) is written and comes back as JSON with '?' in its place.
 */
static void test_hostile_text_is_stored(void **state)
{
	struct fixture *fx = *state;
	struct reqlog *rl = reqlog_start(fx->st, 64, 16, 0);
	struct store_request_row r;
	make_row(&r, clock_now_ms());
	snprintf(r.path, sizeof r.path, "/a\xff\x01z\xc3\xa9");
	memset(r.user_agent, 'x', sizeof r.user_agent);
	r.user_agent[254] = '\xe2'; /* the first two bytes of a three-byte sequence */
	r.user_agent[255] = '\x82';
	r.user_agent[256] = '\0';
	memcpy(r.region, "d1", 3);
	char id[sizeof r.request_id];
	memcpy(id, r.request_id, sizeof id);
	reqlog_submit(rl, &r);
	assert_int_equal(reqlog_flush(rl, 10000), 0);
	reqlog_stop(rl);

	struct request_filter f = {.since = -1, .until = -1, .limit = 10};
	json_t *out = json_array();
	assert_int_equal(store_request_log_list(fx->st, &f, api_request_row_add, out), STORE_OK);
	assert_int_equal(json_array_size(out), 1);
	json_t *row = json_array_get(out, 0);
	assert_string_equal(json_string_value(json_object_get(row, "request_id")), id);
	assert_string_equal(json_string_value(json_object_get(row, "path")), "/a??z\xc3\xa9");
	const char *ua = json_string_value(json_object_get(row, "user_agent"));
	assert_non_null(ua);
	assert_int_equal(strlen(ua), 256);
	assert_string_equal(ua + 254, "??");
	assert_true(json_is_null(json_object_get(row, "region")));
	json_decref(out);
}

/*
 * The byte-at-a-time definition of what the writer stores for a text
 * field: valid UTF-8 without control characters, each offending byte
 * replaced by '?' (reqlog.c checks printable ASCII eight bytes at a time;
 * this is what it must still amount to).
 */
static void reference_clean(char *s, size_t cap)
{
	unsigned char *p = (unsigned char *)s;
	p[cap - 1] = '\0';
	for (size_t i = 0; p[i];) {
		unsigned c = p[i];
		size_t len = 0;
		uint32_t cp = 0, min = 0;
		if (c < 0x80) {
			if (c < 0x20 || c == 0x7f)
				p[i] = '?';
			i++;
			continue;
		}
		if (c >= 0xc2 && c <= 0xdf)
			len = 2, cp = c & 0x1f, min = 0x80;
		else if (c >= 0xe0 && c <= 0xef)
			len = 3, cp = c & 0x0f, min = 0x800;
		else if (c >= 0xf0 && c <= 0xf4)
			len = 4, cp = c & 0x07, min = 0x10000;
		size_t k = 1;
		for (; len && k < len && (p[i + k] & 0xc0) == 0x80; k++)
			cp = (cp << 6) | (p[i + k] & 0x3f);
		if (!len || k < len || cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
			p[i++] = '?';
		else
			i += len;
	}
}

/* Random text from bytes at the edges of the rules, mostly printable. */
static void random_text(char *s, size_t cap, uint64_t *seed)
{
	static const unsigned char edge[] = {0x01, 0x09, 0x1f, 0x20, 0x7e, 0x7f, 0x80, 0xbf,
	                                     0xc0, 0xc1, 0xc2, 0xdf, 0xe0, 0xed, 0xef, 0xf0,
	                                     0xf4, 0xf5, 0xff, 0x9f, 0xa0, 0x8f, 0x90};
	*seed = *seed * 6364136223846793005u + 1442695040888963407u;
	uint64_t r = *seed >> 33;
	/* Mostly short; sometimes the whole buffer with no terminator. */
	size_t len = r % 8 == 0 ? cap : (size_t)(r % 41);
	for (size_t i = 0; i < len; i++) {
		*seed = *seed * 6364136223846793005u + 1442695040888963407u;
		uint64_t b = *seed >> 33;
		s[i] = b % 3 ? (char)('a' + b % 26) : (char)edge[(b >> 8) % sizeof edge];
	}
	if (len < cap)
		s[len] = '\0';
}

/*
 * Random hostile text in every row of several full batches: each row is
 * written, and its path and User-Agent come back exactly as the
 * byte-at-a-time rules say.
 */
static void test_cleaning_matches_reference(void **state)
{
	struct fixture *fx = *state;
	enum { N = 1200 };
	static struct store_request_row rows[N];
	uint64_t seed = 42;
	int64_t dropped0 = metric_value(DROPPED);
	struct reqlog *rl = reqlog_start(fx->st, 2 * N, 512, 0);
	for (int i = 0; i < N; i++) {
		make_row(&rows[i], clock_now_ms());
		snprintf(rows[i].request_id, sizeof rows[i].request_id, "req_%026d", i);
		random_text(rows[i].path, sizeof rows[i].path, &seed);
		random_text(rows[i].user_agent, sizeof rows[i].user_agent, &seed);
		reqlog_submit(rl, &rows[i]);
		reference_clean(rows[i].path, sizeof rows[i].path);
		reference_clean(rows[i].user_agent, sizeof rows[i].user_agent);
	}
	assert_int_equal(reqlog_flush(rl, 30000), 0);
	reqlog_stop(rl);
	assert_int_equal(row_count(fx->st), N);
	assert_int_equal(metric_value(DROPPED) - dropped0, 0);

	struct request_filter f = {.since = -1, .until = -1, .limit = N};
	json_t *out = json_array();
	assert_int_equal(store_request_log_list(fx->st, &f, api_request_row_add, out), STORE_OK);
	assert_int_equal(json_array_size(out), N);
	for (int i = 0; i < N; i++) {
		/* Newest (highest id) first. */
		json_t *row = json_array_get(out, (size_t)(N - 1 - i));
		assert_non_null(row);
		assert_string_equal(json_string_value(json_object_get(row, "request_id")),
		                    rows[i].request_id);
		assert_string_equal(json_string_value(json_object_get(row, "path")), rows[i].path);
		const char *ua = json_string_value(json_object_get(row, "user_agent"));
		if (rows[i].user_agent[0])
			assert_string_equal(ua, rows[i].user_agent);
		else
			assert_null(ua);
	}
	json_decref(out);
}

/*
 * PostgreSQL (when PORTCULLIS_TEST_PG_URL is set), which refuses invalid
 * UTF-8: hostile rows and a repeated request id inside full multi-row
 * batches cost no other row. Uses a database of its own, dropped at the end.
 */
static void test_hostile_rows_postgres(void **state)
{
	(void)state;
	const char *base = getenv("PORTCULLIS_TEST_PG_URL");
	if (!base || !*base) {
		skip();
		return;
	}
	char name[64], url[1024], admin[1024], sql[128], err[256];
	snprintf(name, sizeof name, "reqlog_test_%ld", (long)getpid());
	assert_true(pg_url_with_db(base, name, url, sizeof url));
	assert_true(pg_url_with_db(base, "postgres", admin, sizeof admin));

	struct db_conn *c = NULL;
	if (db_postgres_driver.connect(admin, false, NULL, &c, err, sizeof err) != DB_OK)
		fail_msg("connect: %s", err);
	snprintf(sql, sizeof sql, "DROP DATABASE IF EXISTS %s WITH (FORCE)", name);
	assert_int_equal(db_postgres_driver.exec_script(c, sql), DB_OK);
	snprintf(sql, sizeof sql, "CREATE DATABASE %s", name);
	assert_int_equal(db_postgres_driver.exec_script(c, sql), DB_OK);

	struct store *st = NULL;
	if (store_open(url, 2, &st, err, sizeof err) != STORE_OK)
		fail_msg("store_open: %s", err);
	assert_int_equal(store_migrate(st, NULL), STORE_OK);
	int64_t dropped0 = metric_value(DROPPED), written0 = metric_value(WRITTEN);
	enum { N = 700 };
	static struct store_request_row rows[N];
	uint64_t seed = 7;
	struct reqlog *rl = reqlog_start(st, 2 * N, 512, 0);
	for (int i = 0; i < N; i++) {
		make_row(&rows[i], clock_now_ms());
		snprintf(rows[i].request_id, sizeof rows[i].request_id, "req_%026d", i);
		if (i % 7 == 3) {
			random_text(rows[i].path, sizeof rows[i].path, &seed);
			snprintf(rows[i].user_agent, sizeof rows[i].user_agent, "ua\xc3\x28\x01");
			snprintf(rows[i].method, sizeof rows[i].method, "G\xff");
			memcpy(rows[i].region, "\xe9x", 3);
		}
		if (i == 400)
			memcpy(rows[i].request_id, rows[398].request_id, sizeof rows[i].request_id);
		reqlog_submit(rl, &rows[i]);
	}
	assert_int_equal(reqlog_flush(rl, 30000), 0);
	reqlog_stop(rl);
	assert_int_equal(row_count(st), N - 1);
	assert_int_equal(metric_value(WRITTEN) - written0, N);
	assert_int_equal(metric_value(DROPPED) - dropped0, 0);
	struct request_filter f = {.since = -1, .until = -1, .limit = 1};
	f.before_id = rows[4].request_id; /* the newest row below it: row 3, a hostile one */
	json_t *out = json_array();
	assert_int_equal(store_request_log_list(st, &f, api_request_row_add, out), STORE_OK);
	json_t *row = json_array_get(out, 0);
	assert_string_equal(json_string_value(json_object_get(row, "request_id")),
	                    rows[3].request_id);
	assert_string_equal(json_string_value(json_object_get(row, "user_agent")), "ua?(?");
	assert_string_equal(json_string_value(json_object_get(row, "method")), "G?");
	assert_true(json_is_null(json_object_get(row, "region")));
	json_decref(out);
	store_close(st);

	snprintf(sql, sizeof sql, "DROP DATABASE %s WITH (FORCE)", name);
	assert_int_equal(db_postgres_driver.exec_script(c, sql), DB_OK);
	db_postgres_driver.disconnect(c);
}

struct producer {
	struct reqlog *rl;
	int n;
};

static void *produce(void *arg)
{
	struct producer *p = arg;
	struct store_request_row r;
	for (int i = 0; i < p->n; i++) {
		make_row(&r, clock_now_ms());
		reqlog_submit(p->rl, &r);
	}
	return NULL;
}

/* Four threads submitting at once into a ring big enough: nothing is lost. */
static void test_concurrent_submitters(void **state)
{
	struct fixture *fx = *state;
	int64_t dropped0 = metric_value(DROPPED);
	struct reqlog *rl = reqlog_start(fx->st, 1 << 15, 512, 30);
	enum { THREADS = 4, EACH = 5000 };
	pthread_t t[THREADS];
	struct producer p = {rl, EACH};
	for (int i = 0; i < THREADS; i++)
		assert_int_equal(pthread_create(&t[i], NULL, produce, &p), 0);
	for (int i = 0; i < THREADS; i++)
		pthread_join(t[i], NULL);
	assert_int_equal(reqlog_flush(rl, 60000), 0);
	assert_int_equal(row_count(fx->st), THREADS * EACH);
	assert_int_equal(metric_value(DROPPED) - dropped0, 0);
	reqlog_stop(rl);
}

/*
 * Writer throughput with batch_size 512, when PORTCULLIS_BENCH is set
 * (numbers from a sanitizer build are not representative). Phase 1 queues
 * N rows while another connection holds the write lock, then times the
 * writer alone; phase 2 times submit on the now warm ring with the writer
 * running, and the end-to-end rate.
 */
static void test_bench(void **state)
{
	struct fixture *fx = *state;
	const char *env = getenv("PORTCULLIS_BENCH");
	if (!env || !*env)
		skip();
	enum { N = 200000 };
	struct store_request_row *rows = calloc(N, sizeof *rows);
	assert_non_null(rows);
	for (int i = 0; i < N; i++)
		make_row(&rows[i], clock_now_ms());
	struct reqlog *rl = reqlog_start(fx->st, N, 512, 0);

	struct db_conn *c = raw_connect(fx);
	assert_int_equal(db_sqlite_driver.exec_script(c, "BEGIN EXCLUSIVE"), DB_OK);
	for (int i = 0; i < N; i++)
		reqlog_submit(rl, &rows[i]);
	int64_t t0 = clock_mono_us();
	assert_int_equal(db_sqlite_driver.exec_script(c, "COMMIT"), DB_OK);
	db_sqlite_driver.disconnect(c);
	assert_int_equal(reqlog_flush(rl, 600000), 0);
	int64_t t1 = clock_mono_us();
	printf("reqlog bench: writer alone: %d rows in %.3f s = %.0f rows/s\n", N,
	       (double)(t1 - t0) / 1e6, (double)N / ((double)(t1 - t0) / 1e6));

	for (int i = 0; i < N; i++)
		ulid_prefixed("req", rows[i].request_id, sizeof rows[i].request_id);
	t0 = clock_mono_us();
	for (int i = 0; i < N; i++)
		reqlog_submit(rl, &rows[i]);
	t1 = clock_mono_us();
	assert_int_equal(reqlog_flush(rl, 600000), 0);
	int64_t t2 = clock_mono_us();
	printf("reqlog bench: warm ring: submit %.0f ns/row; end to end %.0f rows/s\n",
	       (double)(t1 - t0) * 1000.0 / N, (double)N / ((double)(t2 - t0) / 1e6));
	assert_int_equal(row_count(fx->st), 2 * N);
	reqlog_stop(rl);
	free(rows);
}

int main(void)
{
	const char *lv_env = getenv("PORTCULLIS_TEST_LOG");
	int lv = lv_env ? log_level_parse(lv_env) : -1;
	log_setup(lv >= 0 ? (enum log_level)lv : LOG_ERROR, false);
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_null_is_noop),
	    cmocka_unit_test_setup_teardown(test_submit_flush_count, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_full_queue_drops_exactly, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_store_failure_drops_batch, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_purge_keeps_new_rows, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_retention_runs_at_start, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_stop_flushes, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_hostile_text_is_stored, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_cleaning_matches_reference, setup, teardown),
	    cmocka_unit_test(test_hostile_rows_postgres),
	    cmocka_unit_test_setup_teardown(test_concurrent_submitters, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_bench, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
