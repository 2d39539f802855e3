/*
 * test_segment.c: unit tests for src/ingest/segment.c: per-event
 * rejections next to accepted events, every whole-request limit and its
 * edge, numbers stored as sent (129.95), clock-skew correction (with sentAt, without, the future
 * clamp), the batch context merge, the identifiers (email, phone, IP, advertising id, writeKey)
 * absent from every stored body and every message, the region from context.ip or the connection,
 * and [ingest] hash_paths.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/clock.h"
#include "core/str.h"
#include "crypto/hash.h"
#include "ingest/pii.h"
#include "ingest/segment.h"

#define NOW  1767225600000LL /* 2026-01-01T00:00:00Z */
#define HOUR (3600LL * 1000)
/* sha256("john_smith@gmail.com") and sha256("16505551212"), pii-hashing.json */
#define EMAIL_H "62a14e44f765419d10fea99367361a727c12365e2520f32218d505ed9aa0f62f"
#define PHONE_H "e323ec626319ca94ee8bff2e4c87cf613be6ea19919ed1364124e16807ab3176"
#define MARY_H  "6915771be1c5aa0c886870b6951b03d7eafc121fea0e80a5ea83beb7c449f4ec"

static int parse(const char *endpoint, const char *body, struct segment_result *r)
{
	return segment_parse(NULL, endpoint, body, strlen(body), NOW, NULL, r);
}

/* The stored body of event i, parsed back. */
static json_t *body_of(const struct segment_result *r, int i)
{
	json_error_t err;
	json_t *j = json_loadb(r->events[i].ev.body, r->events[i].ev.body_len, 0, &err);
	if (!j)
		fail_msg("stored body is not JSON: %s", err.text);
	return j;
}

static const char *path_str(json_t *j, const char *a, const char *b, const char *c)
{
	json_t *v = json_object_get(j, a);
	if (b)
		v = json_object_get(v, b);
	if (c)
		v = json_object_get(v, c);
	return json_string_value(v);
}

static void assert_reject(const struct segment_result *r, int k, int index, const char *mid,
                          const char *code)
{
	assert_true(k < r->n_rejects);
	assert_int_equal(r->rejects[k].index, index);
	assert_string_equal(r->rejects[k].message_id, mid);
	assert_string_equal(r->rejects[k].code, code);
	assert_true(r->rejects[k].message[0] != '\0');
}

static void test_rejections_next_to_accepted(void **state)
{
	struct segment_result r;
	char body[2048];
	char long_id[102];
	(void)state;
	memset(long_id, 'm', 101);
	long_id[101] = '\0';
	snprintf(
	    body, sizeof body,
	    "{\"batch\": ["
	    "{\"type\":\"track\",\"messageId\":\"m0\",\"userId\":\"u0\",\"event\":\"Bought\"},"
	    "{\"type\":\"track\",\"messageId\":\"m1\",\"event\":\"NoIds\"},"
	    "{\"type\":\"purchase\",\"messageId\":\"m2\",\"userId\":\"u2\"},"
	    "{\"type\":\"identify\",\"messageId\":\"%s\",\"userId\":\"u3\"},"
	    "{\"type\":\"identify\",\"messageId\":\"m4\",\"userId\":42},"
	    "{\"type\":\"track\",\"messageId\":\"m5\",\"userId\":\"u5\",\"event\":\"E\","
	    "\"properties\":\"x\"},"
	    "{\"type\":\"track\",\"messageId\":\"m6\",\"anonymousId\":\"a6\"},"
	    "[1,2],"
	    "{\"messageId\":\"m8\",\"userId\":\"u8\"},"
	    "{\"type\":\"identify\",\"messageId\":\"m9\",\"anonymousId\":\"a9\","
	    "\"timestamp\":\"yesterday\"},"
	    "{\"type\":\"track\",\"messageId\":7,\"userId\":\"u10\",\"event\":\"E\"},"
	    "{\"type\":\"identify\",\"messageId\":\"m11\",\"anonymousId\":\"a11\","
	    "\"traits\":{\"email\":12}},"
	    "{\"type\":\"group\",\"messageId\":\"m12\",\"anonymousId\":\"a12\",\"userId\":\"\"}"
	    "]}",
	    long_id);
	assert_int_equal(parse("batch", body, &r), 0);
	assert_int_equal(r.n_events, 2);
	assert_int_equal(r.n_rejects, 11);
	assert_int_equal(r.events[0].index, 0);
	assert_string_equal(r.events[0].ev.message_id, "m0");
	assert_string_equal(r.events[0].ev.type, "track");
	assert_string_equal(r.events[0].ev.event, "Bought");
	assert_string_equal(r.events[0].ev.user_id, "u0");
	assert_string_equal(r.events[0].ev.anonymous_id, "");
	assert_int_equal(r.events[0].ev.received_at, NOW);
	assert_int_equal(r.events[0].ev.timestamp, NOW);
	assert_int_equal(r.events[1].index, 12);
	assert_string_equal(r.events[1].ev.type, "group");
	assert_string_equal(r.events[1].ev.user_id, "");
	assert_string_equal(r.events[1].ev.anonymous_id, "a12");
	assert_reject(&r, 0, 1, "m1", SEGMENT_MISSING_ID);
	assert_reject(&r, 1, 2, "m2", SEGMENT_UNKNOWN_TYPE);
	assert_reject(&r, 2, 3, "", SEGMENT_MESSAGE_ID_TOO_LONG);
	assert_reject(&r, 3, 4, "m4", SEGMENT_INVALID_FIELD); /* userId a number */
	assert_reject(&r, 4, 5, "m5", SEGMENT_INVALID_FIELD); /* properties a string */
	assert_reject(&r, 5, 6, "m6", SEGMENT_INVALID_FIELD); /* track without event */
	assert_reject(&r, 6, 7, "", SEGMENT_INVALID_FIELD);   /* not an object */
	assert_reject(&r, 7, 8, "m8", SEGMENT_UNKNOWN_TYPE);  /* no type */
	assert_reject(&r, 8, 9, "m9", SEGMENT_INVALID_FIELD); /* timestamp not RFC 3339 */
	assert_reject(&r, 9, 10, "", SEGMENT_INVALID_FIELD);  /* messageId a number */
	assert_reject(&r, 10, 11, "m11", SEGMENT_INVALID_FIELD);
	assert_non_null(strstr(r.rejects[10].message, "traits.email"));
	assert_non_null(strstr(r.rejects[2].message, "100"));
	segment_result_free(&r);

	/* A messageId of exactly 100 bytes is accepted. */
	long_id[100] = '\0';
	snprintf(body, sizeof body,
	         "{\"batch\":[{\"type\":\"alias\",\"messageId\":\"%s\",\"userId\":\"u\"}]}",
	         long_id);
	assert_int_equal(parse("batch", body, &r), 0);
	assert_int_equal(r.n_events, 1);
	assert_string_equal(r.events[0].ev.message_id, long_id);
	segment_result_free(&r);
}

/* A batch of n small events, as a malloc'd string. */
static char *batch_of(int n, size_t pad)
{
	struct buf b;
	buf_init(&b, 64u * 1024 * 1024);
	buf_append_str(&b, "{\"batch\":[");
	for (int i = 0; i < n; i++) {
		buf_printf(
		    &b,
		    "%s{\"type\":\"track\",\"event\":\"E\",\"userId\":\"u\",\"messageId\":\"m%d\"",
		    i ? "," : "", i);
		if (pad) {
			buf_append_str(&b, ",\"properties\":{\"p\":\"");
			for (size_t k = 0; k < pad; k++)
				buf_append(&b, "x", 1);
			buf_append_str(&b, "\"}");
		}
		buf_append_str(&b, "}");
	}
	buf_append_str(&b, "]}");
	return buf_steal(&b, NULL);
}

/* The pad that makes batch_of(1, pad)'s event exactly want bytes compact. */
static size_t pad_for(size_t want)
{
	char *one = batch_of(1, 1);
	json_t *j = json_loads(one, 0, NULL);
	size_t n =
	    json_dumpb(json_array_get(json_object_get(j, "batch"), 0), NULL, 0, JSON_COMPACT);
	json_decref(j);
	free(one);
	return want - n + 1;
}

static void test_limits(void **state)
{
	struct segment_result r;
	char *b;
	(void)state;

	/* 2500 events pass, 2501 are a 400 for the whole request. */
	b = batch_of(SEGMENT_BATCH_MAX, 0);
	assert_int_equal(parse("batch", b, &r), 0);
	assert_int_equal(r.n_events, SEGMENT_BATCH_MAX);
	segment_result_free(&r);
	free(b);
	b = batch_of(SEGMENT_BATCH_MAX + 1, 0);
	assert_int_equal(parse("batch", b, &r), 400);
	assert_string_equal(r.code, "BAD_REQUEST");
	assert_string_equal(r.field, "batch");
	assert_int_equal(r.limit, SEGMENT_BATCH_MAX);
	assert_int_equal(r.n_events, 0);
	assert_int_equal(r.n_rejects, 0);
	segment_result_free(&r);
	free(b);

	/* An event of exactly 32 KiB passes; one byte more refuses the whole request. */
	b = batch_of(1, pad_for(SEGMENT_EVENT_MAX));
	assert_int_equal(parse("batch", b, &r), 0);
	assert_int_equal(r.n_events, 1);
	assert_int_equal(r.events[0].ev.body_len, SEGMENT_EVENT_MAX);
	segment_result_free(&r);
	free(b);
	b = batch_of(3, pad_for(SEGMENT_EVENT_MAX + 1));
	assert_int_equal(parse("batch", b, &r), 413);
	assert_string_equal(r.code, "PAYLOAD_TOO_LARGE");
	assert_int_equal(r.index, 0);
	assert_int_equal(r.limit, SEGMENT_EVENT_MAX);
	assert_int_equal(r.n_events, 0);
	segment_result_free(&r);
	free(b);

	/* 500 KiB per request: 17 events of 31 KiB are over it, 16 are not. */
	b = batch_of(17, 31 * 1024);
	assert_true(strlen(b) > SEGMENT_REQUEST_MAX);
	assert_int_equal(parse("batch", b, &r), 413);
	assert_int_equal(r.limit, SEGMENT_REQUEST_MAX);
	segment_result_free(&r);
	free(b);
	b = batch_of(16, 31 * 1024);
	assert_true(strlen(b) <= SEGMENT_REQUEST_MAX);
	assert_int_equal(parse("batch", b, &r), 0);
	assert_int_equal(r.n_events, 16);
	segment_result_free(&r);
	free(b);
}

/* {"batch":[one track event with properties.p = k times unit, then m 'x']}. */
static char *event_with(const char *unit, size_t k, size_t m)
{
	struct buf b;
	buf_init(&b, 4u * 1024 * 1024);
	buf_append_str(&b, "{\"batch\":[{\"type\":\"track\",\"event\":\"E\",\"userId\":\"u\","
	                   "\"messageId\":\"m\",\"properties\":{\"p\":\"");
	for (size_t i = 0; i < k; i++)
		buf_append_str(&b, unit);
	for (size_t i = 0; i < m; i++)
		buf_append(&b, "x", 1);
	buf_append_str(&b, "\"}}]}");
	return buf_steal(&b, NULL);
}

static size_t compact_len(const char *batch)
{
	json_t *j = json_loads(batch, 0, NULL);
	assert_non_null(j);
	size_t n =
	    json_dumpb(json_array_get(json_object_get(j, "batch"), 0), NULL, 0, JSON_COMPACT);
	json_decref(j);
	return n;
}

static void test_event_size_counts_the_compact_form(void **state)
{
	struct segment_result r;
	struct buf b;
	(void)state;
	/* Escapes count as jansson writes them: \u0001 is 6 bytes, \" and \n are 2. */
	const char *units[] = {"\\u0001", "\\\"", "\\n", "\\u00e9", "\xc3\xa9"};
	for (size_t u = 0; u < sizeof units / sizeof units[0]; u++) {
		char *probe = event_with(units[u], 3000, 0);
		size_t base = compact_len(probe);
		free(probe);
		assert_true(base <= SEGMENT_EVENT_MAX);
		char *at = event_with(units[u], 3000, SEGMENT_EVENT_MAX - base);
		char *over = event_with(units[u], 3000, SEGMENT_EVENT_MAX - base + 1);
		assert_int_equal(compact_len(at), SEGMENT_EVENT_MAX);
		if (parse("batch", at, &r) != 0 || r.n_events != 1)
			fail_msg("unit %zu: an event of exactly 32 KiB refused", u);
		assert_int_equal(r.events[0].ev.body_len, SEGMENT_EVENT_MAX);
		segment_result_free(&r);
		assert_int_equal(parse("batch", over, &r), 413);
		segment_result_free(&r);
		free(at);
		free(over);
	}
	/*
	 * Numbers count as sent: 2000 times 0.1 is within the limit (jansson's
	 * %.17g would have made each 19 bytes, over it) and stored as sent.
	 */
	buf_init(&b, 1024 * 1024);
	buf_append_str(&b, "{\"batch\":[{\"type\":\"track\",\"event\":\"E\",\"userId\":\"u\","
	                   "\"messageId\":\"m\",\"properties\":{\"v\":[0.1");
	for (int i = 1; i < 2000; i++)
		buf_append_str(&b, ",0.1");
	buf_append_str(&b, "]}}]}");
	assert_true(b.len < SEGMENT_EVENT_MAX);
	assert_int_equal(parse("batch", b.data, &r), 0);
	assert_int_equal(r.n_events, 1);
	assert_int_equal(r.events[0].ev.body_len, b.len - strlen("{\"batch\":[]}"));
	assert_non_null(memmem(r.events[0].ev.body, r.events[0].ev.body_len, "[0.1,0.1,", 9));
	segment_result_free(&r);
	buf_free(&b);
}

/* The stored body keeps each number's text: 129.95 is 129.95, not 129.94999999999999. */
static void test_numbers_stored_as_sent(void **state)
{
	struct segment_result r;
	(void)state;
	const char *body = "{\"batch\":[{\"type\":\"track\",\"event\":\"Order\",\"userId\":\"u\","
	                   "\"messageId\":\"m\",\"context\":{\"ip\":\"8.8.8.8\"},"
	                   "\"properties\":{\"total\":129.95,\"tax\":0.1,\"whole\":5.0,\"big\":1E2,"
	                   "\"tiny\":2.5e-8,\"qty\":3,\"neg\":-0,\"max\":9223372036854775807}},"
	                   "{ \"type\" : \"track\", \"event\" : \"Order\", \"userId\" : \"u\","
	                   " \"messageId\" : \"n\", \"properties\" : { \"total\" : 129.95 ,"
	                   " \"name\" : \"caf\\u00e9\" } }]}";
	assert_int_equal(parse("batch", body, &r), 0);
	assert_int_equal(r.n_events, 2);
	/* The first: context.ip gone, the rest as sent, byte for byte. */
	assert_int_equal(r.events[0].ev.body_len,
	                 strlen("{\"type\":\"track\",\"event\":\"Order\",\"userId\":\"u\","
	                        "\"messageId\":\"m\",\"context\":{},\"properties\":{"
	                        "\"total\":129.95,\"tax\":0.1,\"whole\":5.0,\"big\":1E2,"
	                        "\"tiny\":2.5e-8,\"qty\":3,\"neg\":-0,"
	                        "\"max\":9223372036854775807}}"));
	assert_memory_equal(r.events[0].ev.body,
	                    "{\"type\":\"track\",\"event\":\"Order\",\"userId\":\"u\","
	                    "\"messageId\":\"m\",\"context\":{},\"properties\":{"
	                    "\"total\":129.95,\"tax\":0.1,\"whole\":5.0,\"big\":1E2,"
	                    "\"tiny\":2.5e-8,\"qty\":3,\"neg\":-0,"
	                    "\"max\":9223372036854775807}}",
	                    r.events[0].ev.body_len);
	/* The second: compact, the escape written as jansson does (UTF-8), the number as sent. */
	const char *want = "{\"type\":\"track\",\"event\":\"Order\",\"userId\":\"u\","
	                   "\"messageId\":\"n\",\"properties\":{\"total\":129.95,"
	                   "\"name\":\"caf\xc3\xa9\"}}";
	assert_int_equal(r.events[1].ev.body_len, strlen(want));
	assert_memory_equal(r.events[1].ev.body, want, strlen(want));
	/* And it reads back as the same values. */
	json_t *j = body_of(&r, 0);
	assert_true(json_real_value(json_object_get(json_object_get(j, "properties"), "total")) ==
	            129.95);
	json_decref(j);
	segment_result_free(&r);
	/* What jansson refuses is refused: past int64, past a double. */
	assert_int_equal(
	    parse("track", "{\"userId\":\"u\",\"event\":\"E\",\"n\":9223372036854775808}", &r),
	    400);
	segment_result_free(&r);
	assert_int_equal(parse("track", "{\"userId\":\"u\",\"event\":\"E\",\"n\":1e999}", &r), 400);
	segment_result_free(&r);
}

static void test_whole_request_errors(void **state)
{
	struct segment_result r;
	(void)state;
	/* Malformed JSON: the position, and none of the input in the message. */
	assert_int_equal(
	    parse("batch", "{\"writeKey\":\"k\",\"batch\":[{\"email\": john@x.com}]}", &r), 400);
	assert_string_equal(r.code, "BAD_REQUEST");
	assert_true(r.position > 0);
	assert_null(strstr(r.message, "john"));
	segment_result_free(&r);
	assert_int_equal(parse("track", "{\"userId\":\"a\",\"userId\":\"b\"}", &r), 400);
	segment_result_free(&r);
	assert_int_equal(parse("track", "[]", &r), 400);
	segment_result_free(&r);
	assert_int_equal(parse("batch", "{\"writeKey\":\"wk_1\",\"batch\":{}}", &r), 400);
	assert_string_equal(r.field, "batch");
	assert_string_equal(r.write_key, "wk_1"); /* for authenticating first */
	segment_result_free(&r);
	assert_int_equal(parse("batch", "{\"batch\":[],\"context\":[]}", &r), 400);
	assert_string_equal(r.field, "context");
	segment_result_free(&r);
	assert_int_equal(parse("batch", "{\"batch\":[],\"sentAt\":\"soon\"}", &r), 400);
	assert_string_equal(r.field, "sentAt");
	segment_result_free(&r);
	assert_int_equal(parse("purchase", "{}", &r), 404);
	segment_result_free(&r);
	/* An empty batch is accepted, with nothing in it. */
	assert_int_equal(parse("import", "{\"batch\":[]}", &r), 0);
	assert_int_equal(r.n_events + r.n_rejects, 0);
	segment_result_free(&r);
}

static void test_single_event_endpoints(void **state)
{
	struct segment_result r;
	(void)state;
	assert_int_equal(
	    parse("track", "{\"writeKey\":\"wk_2\",\"userId\":\"u\",\"event\":\"Signed Up\"}", &r),
	    0);
	assert_int_equal(r.n_events, 1);
	assert_string_equal(r.write_key, "wk_2");
	assert_string_equal(r.events[0].ev.type, "track");
	assert_string_equal(r.events[0].ev.event, "Signed Up");
	/* The generated messageId is in the body too; the writeKey is not. */
	assert_true(strncmp(r.events[0].ev.message_id, "srv_", 4) == 0);
	assert_int_equal(strlen(r.events[0].ev.message_id), 30);
	json_t *j = body_of(&r, 0);
	assert_string_equal(path_str(j, "messageId", NULL, NULL), r.events[0].ev.message_id);
	assert_string_equal(path_str(j, "type", NULL, NULL), "track");
	assert_null(json_object_get(j, "writeKey"));
	json_decref(j);
	segment_result_free(&r);

	assert_int_equal(
	    parse("page", "{\"anonymousId\":\"a\",\"name\":\"Home\",\"type\":\"page\"}", &r), 0);
	assert_string_equal(r.events[0].ev.event, "Home");
	segment_result_free(&r);
	assert_int_equal(
	    parse("identify", "{\"messageId\":\"x\",\"userId\":\"u\",\"type\":\"track\"}", &r), 0);
	assert_int_equal(r.n_events, 0);
	assert_reject(&r, 0, 0, "x", SEGMENT_UNKNOWN_TYPE);
	segment_result_free(&r);
}

static void test_skew_correction(void **state)
{
	struct segment_result r;
	char body[1024];
	(void)state;
	/* received - (sentAt - timestamp): a device clock 1 h fast cancels. */
	assert_int_equal(segment_timestamp(NOW, NOW + HOUR - 5000, NOW + HOUR), NOW - 5000);
	/* Without sentAt, the timestamp as sent. */
	assert_int_equal(segment_timestamp(NOW, NOW - 7 * HOUR, -1), NOW - 7 * HOUR);
	assert_int_equal(segment_timestamp(NOW, -1, NOW + HOUR), NOW);
	assert_int_equal(segment_timestamp(NOW, -1, -1), NOW);
	/* Up to 23 h ahead is kept; more is received_at. */
	assert_int_equal(segment_timestamp(NOW, NOW + 23 * HOUR, -1), NOW + 23 * HOUR);
	assert_int_equal(segment_timestamp(NOW, NOW + 23 * HOUR + 1, -1), NOW);
	assert_int_equal(segment_timestamp(NOW, NOW, NOW - 24 * HOUR), NOW);
	assert_int_equal(segment_timestamp(NOW, NOW - 23 * HOUR, NOW - 46 * HOUR), NOW + 23 * HOUR);
	/* Before the epoch: received_at. */
	assert_int_equal(segment_timestamp(NOW, 0, NOW + 10 * HOUR), NOW);

	/* Through a batch: the batch's sentAt, an event's own winning. */
	snprintf(body, sizeof body,
	         "{\"sentAt\":\"2026-01-01T02:00:00Z\",\"batch\":["
	         "{\"type\":\"track\",\"event\":\"E\",\"userId\":\"u\","
	         "\"timestamp\":\"2026-01-01T01:59:30.250Z\"},"
	         "{\"type\":\"track\",\"event\":\"E\",\"userId\":\"u\","
	         "\"timestamp\":\"2026-01-01T00:00:00+01:00\",\"sentAt\":\"2025-12-31T23:00:10Z\"},"
	         "{\"type\":\"track\",\"event\":\"E\",\"userId\":\"u\"},"
	         "{\"type\":\"track\",\"event\":\"E\",\"userId\":\"u\",\"sentAt\":12}]}");
	assert_int_equal(parse("batch", body, &r), 0);
	assert_int_equal(r.n_events, 3);
	assert_int_equal(r.events[0].ev.timestamp, NOW - 29750);
	assert_int_equal(r.events[1].ev.timestamp, NOW - 10000);
	assert_int_equal(r.events[2].ev.timestamp, NOW);
	assert_reject(&r, 0, 3, "", SEGMENT_INVALID_FIELD);
	segment_result_free(&r);

	/* Without sentAt, far in the future: clamped. */
	assert_int_equal(
	    parse("track",
	          "{\"userId\":\"u\",\"event\":\"E\",\"timestamp\":\"2026-01-02T23:00:01Z\"}", &r),
	    0);
	assert_int_equal(r.events[0].ev.timestamp, NOW);
	segment_result_free(&r);
}

static void test_batch_context_merge(void **state)
{
	struct segment_result r;
	(void)state;
	const char *body =
	    "{\"context\":{\"library\":{\"name\":\"analytics-node\"},\"locale\":\"en-US\","
	    "\"traits\":{\"email\":\"John_Smith@Gmail.com\"}},\"batch\":["
	    "{\"type\":\"identify\",\"userId\":\"u1\",\"context\":{\"locale\":\"fr-FR\"}},"
	    "{\"type\":\"identify\",\"userId\":\"u2\"},"
	    "{\"type\":\"identify\",\"userId\":\"u3\",\"context\":{\"traits\":{\"plan\":\"pro\"}}}]"
	    "}";
	assert_int_equal(parse("batch", body, &r), 0);
	assert_int_equal(r.n_events, 3);
	json_t *a = body_of(&r, 0), *b = body_of(&r, 1), *c = body_of(&r, 2);
	assert_string_equal(path_str(a, "context", "locale", NULL), "fr-FR");
	assert_string_equal(path_str(a, "context", "library", "name"), "analytics-node");
	assert_string_equal(path_str(b, "context", "locale", NULL), "en-US");
	/* Each event gets its own copy: the first one's hashing does not take it from the next. */
	assert_string_equal(path_str(a, "context", "traits", "email_sha256"), EMAIL_H);
	assert_string_equal(path_str(b, "context", "traits", "email_sha256"), EMAIL_H);
	assert_string_equal(r.events[0].ev.email_sha256, EMAIL_H);
	assert_string_equal(r.events[1].ev.email_sha256, EMAIL_H);
	/* Member by member of context: the event's own traits win whole. */
	assert_string_equal(path_str(c, "context", "traits", "plan"), "pro");
	assert_null(path_str(c, "context", "traits", "email_sha256"));
	assert_string_equal(r.events[2].ev.email_sha256, "");
	json_decref(a);
	json_decref(b);
	json_decref(c);
	segment_result_free(&r);
}

static struct geoip *open_geoip(void)
{
	const char *path = getenv("PORTCULLIS_GEOIP_DB");
	char err[512];
	if (!path || !*path || access(path, R_OK) != 0)
		return NULL;
	return geoip_open(path, err, sizeof err);
}

static void test_identifiers_never_in_body(void **state)
{
	struct segment_result r;
	struct geoip *g = open_geoip();
	struct segment_opts o = {.geoip = g};
	const char *plain[] = {"John_Smith@Gmail.com",
	                       "john_smith@gmail.com",
	                       "650",
	                       "5551212",
	                       "203.0.113.9",
	                       "8.8.8.8",
	                       "6D92078A-8246-4BA4",
	                       "wk_secret",
	                       "mary@shop.example"};
	(void)state;
	const char *body =
	    "{\"writeKey\":\"wk_secret\",\"context\":{\"ip\":\"8.8.8.8\"},\"batch\":["
	    "{\"type\":\"identify\",\"userId\":\"u1\",\"messageId\":\"i1\","
	    "\"traits\":{\"email\":\"  John_Smith@Gmail.com\\t\",\"phone\":\"+1 (650) 555-1212\","
	    "\"app_user_id\":\"app-1\"},"
	    "\"context\":{\"device\":{\"advertisingId\":\"6D92078A-8246-4BA4-AE5B-76104861E7DC\","
	    "\"adTrackingEnabled\":true},\"traits\":{\"phone\":\"001 650 555 1212\"}}},"
	    "{\"type\":\"track\",\"event\":\"Order\",\"anonymousId\":\"a2\",\"writeKey\":\"wk_"
	    "secret\","
	    "\"properties\":{\"email\":\"mary@shop.example\",\"email_sha256\":\"x\"},"
	    "\"context\":{\"ip\":\"203.0.113.9\"}},"
	    "{\"type\":\"track\",\"event\":\"Order\",\"userId\":\"u3\","
	    "\"properties\":{\"email_sha256\":\"john_smith@gmail.com\",\"phone\":null}}]}";
	assert_int_equal(segment_parse(&o, "batch", body, strlen(body), NOW, "8.8.4.4", &r), 0);
	assert_int_equal(r.n_events, 3);
	for (int i = 0; i < r.n_events; i++)
		for (size_t k = 0; k < sizeof plain / sizeof plain[0]; k++)
			if (memmem(r.events[i].ev.body, r.events[i].ev.body_len, plain[k],
			           strlen(plain[k])))
				fail_msg("event %d's body holds \"%s\": %.*s", i, plain[k],
				         (int)r.events[i].ev.body_len, r.events[i].ev.body);
	json_t *a = body_of(&r, 0), *b = body_of(&r, 1), *c = body_of(&r, 2);
	/* Hashes under clear names, the columns filled in the documented order. */
	assert_string_equal(path_str(a, "traits", "email_sha256", NULL), EMAIL_H);
	assert_string_equal(path_str(a, "traits", "phone_sha256", NULL), PHONE_H);
	assert_string_equal(path_str(a, "context", "traits", "phone_sha256"), PHONE_H);
	assert_null(json_object_get(json_object_get(a, "traits"), "email"));
	assert_string_equal(path_str(a, "traits", "app_user_id", NULL), "app-1");
	assert_string_equal(r.events[0].ev.email_sha256, EMAIL_H);
	assert_string_equal(r.events[0].ev.phone_sha256, PHONE_H);
	assert_null(json_object_get(json_object_get(a, "context"), "ip"));
	assert_true(json_is_true(json_object_get(
	    json_object_get(json_object_get(a, "context"), "device"), "adTrackingEnabled")));
	/* The advertising id is handed back, not stored. */
	assert_string_equal(r.events[0].adid, "6D92078A-8246-4BA4-AE5B-76104861E7DC");
	assert_string_equal(r.events[1].adid, "");
	assert_string_equal(r.events[0].ev.adid_sealed, "");
	/* An app's email_sha256 that is no hash is hashed (a stored email_sha256 is always one). */
	char want[PII_HEX_LEN + 1];
	assert_int_equal(pii_hash(PII_EMAIL, "mary@shop.example", 17, want), PII_HASHED);
	assert_string_equal(path_str(b, "properties", "email_sha256", NULL), want);
	assert_string_equal(path_str(c, "properties", "email_sha256", NULL), EMAIL_H);
	assert_null(json_object_get(json_object_get(c, "properties"), "phone"));
	assert_null(json_object_get(b, "writeKey"));
	assert_string_equal(r.write_key, "wk_secret");
	/* The region: the event's context.ip, else the batch's, else the connection's. */
	if (g) {
		assert_string_equal(r.events[0].ev.region, "US"); /* batch context.ip 8.8.8.8 */
		assert_string_equal(r.events[1].ev.region, "");   /* 203.0.113.9: documentation */
		assert_string_equal(r.events[2].ev.region, "US");
	}
	json_decref(a);
	json_decref(b);
	json_decref(c);
	segment_result_free(&r);

	/* The connection's address when there is no context.ip; nothing of it kept. */
	const char *one = "{\"userId\":\"u\",\"event\":\"E\"}";
	assert_int_equal(segment_parse(&o, "track", one, strlen(one), NOW, "8.8.8.8", &r), 0);
	assert_null(memmem(r.events[0].ev.body, r.events[0].ev.body_len, "8.8.8.8", 7));
	if (g)
		assert_string_equal(r.events[0].ev.region, "US");
	segment_result_free(&r);
	assert_int_equal(segment_parse(&o, "track", one, strlen(one), NOW, NULL, &r), 0);
	assert_string_equal(r.events[0].ev.region, "");
	segment_result_free(&r);

	/* Rejections name the member, never its value. */
	const char *bad =
	    "{\"batch\":["
	    "{\"type\":\"identify\",\"traits\":{\"email\":\"john_smith@gmail.com\"}},"
	    "{\"type\":\"identify\",\"userId\":\"u\",\"context\":{\"ip\":[\"8.8.8.8\"]}},"
	    "{\"type\":\"identify\",\"userId\":\"u\",\"context\":{\"device\":"
	    "{\"advertisingId\":\"6D92078A-8246-4BA4-AE5B-76104861E7DC-"
	    "6D92078A-8246-4BA4-AE5B-76104861E7DC\"}}}]}";
	assert_int_equal(segment_parse(&o, "batch", bad, strlen(bad), NOW, NULL, &r), 0);
	assert_int_equal(r.n_rejects, 3);
	for (int i = 0; i < r.n_rejects; i++)
		for (size_t k = 0; k < sizeof plain / sizeof plain[0]; k++)
			assert_null(strstr(r.rejects[i].message, plain[k]));
	assert_string_equal(r.rejects[0].code, SEGMENT_MISSING_ID);
	assert_non_null(strstr(r.rejects[1].message, "context.ip"));
	assert_non_null(strstr(r.rejects[2].message, "advertisingId"));
	segment_result_free(&r);
	geoip_close(g);
}

static void test_empty_identifiers_dropped(void **state)
{
	struct segment_result r;
	(void)state;
	const char *body = "{\"userId\":\"u\",\"traits\":{\"email\":\" \\t \",\"phone\":\"+()\","
	                   "\"name\":\"n\"}}";
	assert_int_equal(parse("identify", body, &r), 0);
	json_t *j = body_of(&r, 0);
	json_t *t = json_object_get(j, "traits");
	assert_int_equal(json_object_size(t), 1);
	assert_string_equal(path_str(t, "name", NULL, NULL), "n");
	assert_string_equal(r.events[0].ev.email_sha256, "");
	assert_string_equal(r.events[0].ev.phone_sha256, "");
	json_decref(j);
	segment_result_free(&r);
	/* Already a hash: kept as it is. */
	assert_int_equal(
	    parse("identify", "{\"userId\":\"u\",\"traits\":{\"email\":\"" EMAIL_H "\"}}", &r), 0);
	assert_string_equal(r.events[0].ev.email_sha256, EMAIL_H);
	segment_result_free(&r);
}

static void test_hash_paths(void **state)
{
	char paths[CONFIG_MAX_HASH_PATHS][CONFIG_HASH_PATH_MAX];
	struct segment_result r;
	(void)state;
	int n = config_hash_paths("traits.first_name, context.traits.last_name "
	                          "properties.address.city properties.missing.x traits.name.x",
	                          paths);
	assert_int_equal(n, 5);
	struct segment_opts o = {.hash_paths = (const char(*)[CONFIG_HASH_PATH_MAX])paths,
	                         .n_hash_paths = n};
	const char *body =
	    "{\"context\":{\"traits\":{\"last_name\":\"Mary\"}},\"batch\":["
	    "{\"type\":\"identify\",\"userId\":\"u\",\"traits\":{\"first_name\":\"  MARY \","
	    "\"name\":\"Mary Smith\"},\"properties\":{\"address\":{\"city\":\"\"}}},"
	    "{\"type\":\"identify\",\"userId\":\"u\",\"traits\":{\"first_name\":\"" MARY_H "\"}},"
	    "{\"type\":\"identify\",\"userId\":\"u\",\"messageId\":\"n\",\"traits\":{\"first_"
	    "name\":3}},"
	    "{\"type\":\"identify\",\"userId\":\"u\",\"traits\":{\"first_name\":null}}]}";
	assert_int_equal(segment_parse(&o, "batch", body, strlen(body), NOW, NULL, &r), 0);
	assert_int_equal(r.n_events, 3);
	json_t *a = body_of(&r, 0), *b = body_of(&r, 1), *d = body_of(&r, 2);
	assert_string_equal(path_str(a, "traits", "first_name", NULL), MARY_H);
	assert_string_equal(path_str(a, "context", "traits", "last_name"), MARY_H);
	assert_string_equal(path_str(a, "traits", "name", NULL), "Mary Smith"); /* not an object */
	assert_null(json_object_get(json_object_get(json_object_get(a, "properties"), "address"),
	                            "city"));                                   /* empty: dropped */
	assert_string_equal(path_str(b, "traits", "first_name", NULL), MARY_H); /* never twice */
	assert_true(json_is_null(json_object_get(json_object_get(d, "traits"), "first_name")));
	assert_reject(&r, 0, 2, "n", SEGMENT_INVALID_FIELD);
	assert_non_null(strstr(r.rejects[0].message, "traits.first_name"));
	assert_null(memmem(r.events[0].ev.body, r.events[0].ev.body_len, "MARY", 4));
	json_decref(a);
	json_decref(b);
	json_decref(d);
	segment_result_free(&r);
}

static void test_stored_body_over_limit_rejected(void **state)
{
	struct segment_result r;
	struct buf b;
	(void)state;
	/* Two 20 KiB events, each within the limit as sent, with a 20 KiB batch context. */
	buf_init(&b, 1024 * 1024);
	buf_append_str(&b, "{\"context\":{\"pad\":\"");
	for (int i = 0; i < 20 * 1024; i++)
		buf_append(&b, "c", 1);
	buf_append_str(&b, "\"},\"batch\":[");
	for (int e = 0; e < 2; e++) {
		buf_printf(
		    &b,
		    "%s{\"type\":\"track\",\"event\":\"E\",\"userId\":\"u\",\"messageId\":\"m%d\","
		    "\"properties\":{\"p\":\"",
		    e ? "," : "", e);
		for (int i = 0; i < (e ? 10 : 20 * 1024); i++)
			buf_append(&b, "p", 1);
		buf_append_str(&b, "\"}}");
	}
	buf_append_str(&b, "]}");
	assert_int_equal(parse("batch", b.data, &r), 0);
	assert_int_equal(r.n_events, 1);
	assert_int_equal(r.events[0].index, 1);
	assert_reject(&r, 0, 0, "m0", SEGMENT_EVENT_TOO_LARGE);
	segment_result_free(&r);
	buf_free(&b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_rejections_next_to_accepted),
	    cmocka_unit_test(test_limits),
	    cmocka_unit_test(test_event_size_counts_the_compact_form),
	    cmocka_unit_test(test_numbers_stored_as_sent),
	    cmocka_unit_test(test_whole_request_errors),
	    cmocka_unit_test(test_single_event_endpoints),
	    cmocka_unit_test(test_skew_correction),
	    cmocka_unit_test(test_batch_context_merge),
	    cmocka_unit_test(test_identifiers_never_in_body),
	    cmocka_unit_test(test_empty_identifiers_dropped),
	    cmocka_unit_test(test_hash_paths),
	    cmocka_unit_test(test_stored_body_over_limit_rejected),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
