/*
 * test_engine.c: unit tests for the delivery engine's pure decisions
 * (src/delivery/engine.c): the per-endpoint token bucket (burst of one
 * second, refill, no limit, a clock going back), the error class of a
 * transfer, the outcome of an attempt (2xx success; 3xx/4xx/5xx "status";
 * 410 ends it and disables; 429/503 Retry-After clamped to [step, 2 step];
 * the schedule's end; mail accepted/refused), and the response text kept
 * for the record (valid UTF-8, control bytes replaced, never cut inside a
 * character, bounded). And the engine itself on a real SQLite store: a
 * claimed delivery whose message body was purged is recorded failed,
 * without a request.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <fcntl.h>
#include <jansson.h>
#include <netinet/in.h>
#include <poll.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/clock.h"
#include "core/config.h"
#include "crypto/sealed.h"
#include "delivery/engine.h"
#include "store/store.h"
#include "store/store_webhooks.h"

static void test_token_bucket(void **state)
{
	(void)state;
	struct token_bucket b = {.milli = -1};
	int64_t t = 1000000;
	/* A new bucket holds one second's worth: rate tokens at once, then none. */
	for (int i = 0; i < 5; i++)
		assert_true(token_bucket_take(&b, 5, t));
	assert_false(token_bucket_take(&b, 5, t));
	assert_int_equal(token_bucket_wait_ms(&b, 5, t), 200);
	assert_false(token_bucket_take(&b, 5, t + 199));
	assert_true(token_bucket_take(&b, 5, t + 200));
	assert_false(token_bucket_take(&b, 5, t + 200));
	/* Idle for long: never more than the burst. */
	int n = 0;
	while (token_bucket_take(&b, 5, t + 100000))
		n++;
	assert_int_equal(n, 5);
	/* A clock that goes back refills rather than stalls forever. */
	assert_true(token_bucket_take(&b, 5, t));
	/* rate <= 0: no limit. */
	struct token_bucket u = {.milli = -1};
	for (int i = 0; i < 10000; i++)
		assert_true(token_bucket_take(&u, -1, t));
	assert_int_equal(token_bucket_wait_ms(&u, -1, t), 0);
	/* rate 1: one a second. */
	struct token_bucket one = {.milli = -1};
	assert_true(token_bucket_take(&one, 1, t));
	assert_false(token_bucket_take(&one, 1, t + 999));
	assert_int_equal(token_bucket_wait_ms(&one, 1, t + 999), 1);
	assert_true(token_bucket_take(&one, 1, t + 1000));
}

static void test_error_classes(void **state)
{
	(void)state;
	assert_null(engine_error_class(CURLE_OK, false, false));
	assert_string_equal(engine_error_class(CURLE_OPERATION_TIMEDOUT, false, false), "timeout");
	assert_string_equal(engine_error_class(CURLE_COULDNT_RESOLVE_HOST, false, false), "dns");
	assert_string_equal(engine_error_class(CURLE_COULDNT_CONNECT, false, false), "connect");
	assert_string_equal(engine_error_class(CURLE_RECV_ERROR, false, false), "connect");
	assert_string_equal(engine_error_class(CURLE_PEER_FAILED_VERIFICATION, false, false),
	                    "tls");
	assert_string_equal(engine_error_class(CURLE_SSL_CONNECT_ERROR, false, false), "tls");
	/* A refused address makes curl fail to connect: the refusal is what counts. */
	assert_string_equal(engine_error_class(CURLE_COULDNT_CONNECT, true, false),
	                    "egress_refused");
	assert_string_equal(engine_error_class(CURLE_WRITE_ERROR, false, true), "too_large");
}

static struct wh_schedule sched(void)
{
	struct wh_schedule s;
	assert_int_equal(wh_schedule_parse("0s,5s,5m,30m", &s, NULL, 0), 0);
	return s;
}

static void test_decisions(void **state)
{
	(void)state;
	struct wh_schedule s = sched();
	int64_t now = 1800000000000LL;
	struct engine_decision d;
	struct engine_result r = {.rc = CURLE_OK, .status = 204};
	engine_decide(&s, 0, &r, now, 0, &d);
	assert_true(d.succeeded);
	assert_null(d.error);
	assert_int_equal(d.next_attempt_at, -1);

	/* 3xx is a failure (never followed); the next step is 5 s +/-20 %. */
	r.status = 302;
	engine_decide(&s, 0, &r, now, 0, &d);
	assert_false(d.succeeded);
	assert_string_equal(d.error, "status");
	assert_false(d.gone);
	assert_int_equal(d.next_attempt_at, now + 4000); /* rnd 0: the low bound */
	engine_decide(&s, 0, &r, now, UINT64_MAX, &d);
	assert_int_equal(d.next_attempt_at, now + 6000);

	/* 500 after the second attempt: the third step (5 min). */
	r.status = 500;
	engine_decide(&s, 1, &r, now, 0, &d);
	assert_int_equal(d.next_attempt_at, now + 240000);

	/* The schedule's end: failed. */
	engine_decide(&s, 3, &r, now, 0, &d);
	assert_string_equal(d.error, "status");
	assert_int_equal(d.next_attempt_at, -1);

	/* 410: gone, no retry. */
	r.status = 410;
	engine_decide(&s, 0, &r, now, 0, &d);
	assert_true(d.gone);
	assert_int_equal(d.next_attempt_at, -1);

	/* 429/503 + Retry-After: clamped to [step, 2 step] of the next attempt (5 s). */
	r.status = 429;
	r.retry_after = "1";
	engine_decide(&s, 0, &r, now, 0, &d);
	assert_int_equal(d.next_attempt_at, now + 5000);
	r.retry_after = "8";
	engine_decide(&s, 0, &r, now, 0, &d);
	assert_int_equal(d.next_attempt_at, now + 8000);
	r.status = 503;
	r.retry_after = "3600";
	engine_decide(&s, 0, &r, now, 0, &d);
	assert_int_equal(d.next_attempt_at, now + 10000);
	/* Retry-After on another status is ignored: the jittered step. */
	r.status = 500;
	engine_decide(&s, 0, &r, now, 0, &d);
	assert_int_equal(d.next_attempt_at, now + 4000);
	r.retry_after = NULL;

	/* Transport errors: their class, the schedule. */
	struct engine_result t = {.rc = CURLE_OPERATION_TIMEDOUT};
	engine_decide(&s, 0, &t, now, 0, &d);
	assert_string_equal(d.error, "timeout");
	assert_int_equal(d.next_attempt_at, now + 4000);
	t = (struct engine_result){.rc = CURLE_COULDNT_CONNECT, .egress_refused = true};
	engine_decide(&s, 0, &t, now, 0, &d);
	assert_string_equal(d.error, "egress_refused");
	/* A 2xx whose body passed the bound is too_large, not a success. */
	t = (struct engine_result){.rc = CURLE_WRITE_ERROR, .status = 200, .too_large = true};
	engine_decide(&s, 0, &t, now, 0, &d);
	assert_false(d.succeeded);
	assert_string_equal(d.error, "too_large");

	/* Not sent (no secret to sign with): failed, no error class, the next step. */
	struct engine_result ns = {.rc = CURLE_OK, .not_sent = true};
	engine_decide(&s, 0, &ns, now, 0, &d);
	assert_false(d.succeeded);
	assert_null(d.error);
	assert_false(d.gone);
	assert_int_equal(d.next_attempt_at, now + 4000);
	engine_decide(&s, 3, &ns, now, 0, &d);
	assert_int_equal(d.next_attempt_at, -1);

	/* Mail: accepted (250) is success; a refusal has its reply code as status. */
	struct engine_result m = {.rc = CURLE_OK, .status = 250, .mail = true};
	engine_decide(&s, 0, &m, now, 0, &d);
	assert_true(d.succeeded);
	m = (struct engine_result){.rc = CURLE_SEND_ERROR, .status = 550, .mail = true};
	engine_decide(&s, 0, &m, now, 0, &d);
	assert_false(d.succeeded);
	assert_string_equal(d.error, "status");
	assert_false(d.gone);
	assert_int_equal(d.next_attempt_at, now + 4000);
	m = (struct engine_result){.rc = CURLE_COULDNT_CONNECT, .mail = true};
	engine_decide(&s, 0, &m, now, 0, &d);
	assert_string_equal(d.error, "connect");
}

static void test_response_text(void **state)
{
	(void)state;
	char out[16];
	assert_int_equal(engine_response_text("ok\r\n", 4, out, sizeof out), 4);
	assert_string_equal(out, "ok\r\n");
	/* NUL, other control bytes and broken UTF-8 become '?'. */
	assert_int_equal(engine_response_text("a\0b\x01\xff\xc3", 6, out, sizeof out), 6);
	assert_string_equal(out, "a?b???");
	/* Valid multi-byte characters stay, and are never cut. */
	const char *e =
	    "\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9"; /* 8 é */
	size_t n = engine_response_text(e, strlen(e), out, sizeof out);
	assert_int_equal(n, 14); /* 7 whole characters fit in 15 bytes */
	assert_memory_equal(out, e, 14);
	/* Overlong and surrogate forms are broken. */
	assert_int_equal(engine_response_text("\xc0\xaf\xed\xa0\x80", 5, out, sizeof out), 5);
	assert_string_equal(out, "?????");
}

/* ---------- the engine on a real store ---------- */

#define T_ORG "ORGE0000000000000000000001"
#define T_EP  "ep_E0000000000000000000000001"

/* One text column of the first row of sql on the SQLite file (copied into out), or "". */
static void sqlite_text(const char *db, const char *sql, char *out, size_t cap)
{
	sqlite3 *h = NULL;
	sqlite3_stmt *q = NULL;
	out[0] = '\0';
	assert_int_equal(sqlite3_open(db, &h), SQLITE_OK);
	sqlite3_busy_timeout(h, 5000);
	assert_int_equal(sqlite3_prepare_v2(h, sql, -1, &q, NULL), SQLITE_OK);
	int rc = sqlite3_step(q);
	if (rc == SQLITE_ROW && sqlite3_column_text(q, 0))
		snprintf(out, cap, "%s", (const char *)sqlite3_column_text(q, 0));
	else if (rc != SQLITE_ROW)
		assert_int_equal(rc, SQLITE_DONE);
	sqlite3_finalize(q);
	sqlite3_close(h);
}

/*
 * retention purged the message's body after fan-out, before the claim
 * (store_claim body NULL): the delivery ends failed with the reason
 * recorded, and nothing is signed or sent. The receiver is a bare TCP
 * listener: any attempt would show as a connection (the old code posted
 * an empty body).
 */
static void test_a_purged_body_is_failed_not_sent(void **state)
{
	(void)state;
	char dir[] = "/tmp/pcl-engine-XXXXXX";
	assert_non_null(mkdtemp(dir));
	char db[300], url[320], keys[300], conf[300];
	snprintf(db, sizeof db, "%s/e.db", dir);
	snprintf(url, sizeof url, "sqlite://%s", db);
	snprintf(keys, sizeof keys, "%s/secrets.key", dir);
	snprintf(conf, sizeof conf, "%s/p.conf", dir);

	int lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t sl = sizeof sa;
	assert_int_equal(bind(lfd, (struct sockaddr *)&sa, sizeof sa), 0);
	assert_int_equal(listen(lfd, 8), 0);
	assert_int_equal(getsockname(lfd, (struct sockaddr *)&sa, &sl), 0);

	FILE *f = fopen(conf, "w");
	assert_non_null(f);
	fprintf(f, "[webhooks]\nallow_ranges = 127.0.0.0/8\nretry_schedule = 0s,1s\n"
	           "timeout_s = 2\nlease_s = 3\n[log]\nlevel = error\n");
	fclose(f);
	struct config cfg;
	char err[600];
	assert_int_equal(config_load(&cfg, conf, err, sizeof err), 0);

	struct sealed_keyring *kr = sealed_keyring_new();
	char kid[SEALED_KEY_ID_LEN + 1];
	uint8_t pk[32];
	assert_int_equal(sealed_keyring_generate(kr, kid, pk), SEALED_OK);
	assert_int_equal(sealed_keyring_write(kr, keys, true, err, sizeof err), SEALED_OK);
	sealed_keyring_free(kr);

	struct store *st = NULL;
	assert_int_equal(store_open(url, 2, &st, err, sizeof err), STORE_OK);
	assert_int_equal(store_migrate(st, NULL), STORE_OK);
	int64_t now = clock_now_ms();
	struct store_org org = {.id = T_ORG,
	                        .name = "engine",
	                        .created_at = now,
	                        .updated_at = now,
	                        .rl_requests = -1,
	                        .rl_per_seconds = -1,
	                        .rl_burst = -1};
	struct audit_input a = {.org_id = T_ORG,
	                        .actor_type = "root",
	                        .action = "org.created",
	                        .target_type = "org",
	                        .target_id = T_ORG};
	assert_int_equal(store_org_insert(st, &org, &a), STORE_OK);
	struct store_endpoint ep = {.id = T_EP,
	                            .org_id = T_ORG,
	                            .rate_limit_per_second = -1,
	                            .prev_expires_at = -1,
	                            .disabled_at = -1,
	                            .failing_since = -1,
	                            .failing_notified_at = -1,
	                            .created_at = now,
	                            .updated_at = now};
	snprintf(ep.url, sizeof ep.url, "https://127.0.0.1:%d/hook", ntohs(sa.sin_port));
	static const char secret[] = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
	struct sealed_context ctx = {"webhook_endpoints", "secret", T_EP, T_ORG};
	assert_int_equal(sealed_seal(kid, pk, &ctx, (const uint8_t *)secret, strlen(secret),
	                             ep.secret, sizeof ep.secret),
	                 SEALED_OK);
	a.action = "webhook_endpoint.created";
	assert_int_equal(store_endpoint_insert(st, &ep, &a), STORE_OK);
	struct store_message m = {.id = "msg_E0000000000000000000000001",
	                          .org_id = T_ORG,
	                          .type = "invoice.paid",
	                          .created_at = now};
	json_t *data = json_pack("{s:s}", "invoice", "in_1");
	m.body = store_message_body(m.type, now, data);
	json_decref(data);
	a.action = "webhook_message.published";
	assert_int_equal(store_message_publish(st, &m, NULL, NULL, &a, NULL, NULL), STORE_OK);
	free(m.body);
	int n = 0;
	assert_int_equal(store_fanout(st, NULL, 10, &n), STORE_OK);
	assert_int_equal(n, 1);
	/* Retention, between fan-out and claim. */
	char out[1100];
	sqlite_text(db, "UPDATE webhook_messages SET body = NULL RETURNING id", out, sizeof out);
	assert_string_equal(out, m.id);

	engine_metrics_register(NULL);
	struct engine_options eo = {.st = st, .cfg = &cfg, .owner = "test", .key_file = keys};
	struct engine *e = NULL;
	assert_int_equal(engine_start(&eo, &e, err, sizeof err), 0);
	int64_t deadline = clock_mono_ms() + 8000;
	int accepted = 0;
	while (clock_mono_ms() < deadline) {
		int c = accept(lfd, NULL, NULL);
		if (c >= 0) {
			accepted++;
			close(c);
		}
		sqlite_text(db, "SELECT status FROM webhook_deliveries", out, sizeof out);
		if (strcmp(out, "pending") != 0)
			break;
		poll(NULL, 0, 50);
	}
	engine_stop(e);
	int c = accept(lfd, NULL, NULL);
	if (c >= 0) {
		accepted++;
		close(c);
	}
	assert_int_equal(accepted, 0); /* nothing sent, not even an empty body */
	sqlite_text(db, "SELECT status FROM webhook_deliveries", out, sizeof out);
	assert_string_equal(out, "failed"); /* final: no later attempt has a body either */
	sqlite_text(db, "SELECT count(*) FROM webhook_attempts", out, sizeof out);
	assert_string_equal(out, "1");
	sqlite_text(db, "SELECT response FROM webhook_attempts", out, sizeof out);
	assert_non_null(strstr(out, "purged"));
	sqlite_text(db,
	            "SELECT coalesce(http_status, 0) || coalesce(error, '') FROM webhook_attempts",
	            out, sizeof out);
	assert_string_equal(out, "0");

	store_close(st);
	config_free(&cfg);
	close(lfd);
	const char *files[] = {db, keys, conf};
	for (size_t i = 0; i < 3; i++)
		unlink(files[i]);
	char side[320];
	snprintf(side, sizeof side, "%s-wal", db);
	unlink(side);
	snprintf(side, sizeof side, "%s-shm", db);
	unlink(side);
	rmdir(dir);
}

/* engine_response_keep: the first cap bytes kept, the length counted, past the bound stopped. */
static void test_response_keep(void **state)
{
	(void)state;
	char head[5] = "";
	struct engine_response r = {.head = head, .cap = 4};
	char abc[] = "abc", defg[] = "defg";
	assert_int_equal(engine_response_keep(abc, 1, 3, &r), 3);
	assert_int_equal(engine_response_keep(defg, 2, 2, &r), 4); /* size * n bytes */
	assert_int_equal(r.len, 4);
	assert_memory_equal(head, "abcd", 4);
	assert_int_equal(r.total, 7);
	assert_false(r.too_large);
	static char big[ENGINE_RESPONSE_BOUND];
	memset(big, 'x', sizeof big);
	assert_int_equal(engine_response_keep(big, 1, ENGINE_RESPONSE_BOUND - 7, &r),
	                 ENGINE_RESPONSE_BOUND - 7); /* exactly the bound: still read */
	assert_false(r.too_large);
	assert_int_equal(engine_response_keep(big, 1, 1, &r), 0); /* one past: stop */
	assert_true(r.too_large);
	assert_int_equal(r.len, 4);
	assert_memory_equal(head, "abcd", 4);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_token_bucket),
	    cmocka_unit_test(test_error_classes),
	    cmocka_unit_test(test_decisions),
	    cmocka_unit_test(test_response_text),
	    cmocka_unit_test(test_response_keep),
	    cmocka_unit_test(test_a_purged_body_is_failed_not_sent),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
