/*
 * ingest_parse.c: segment_parse's CPU time per event on the body that
 * bench/ingest.lua sends (batches of 100 realistic track events: email,
 * phone, context.ip, advertisingId, reals, an array of products), without
 * HTTP or the store: the parse's own cost, which ingest.sh's serve CPU per
 * event includes. Usage: ingest_parse [ITERATIONS] (default 2000); prints
 * the body size and the microseconds of process CPU per event.
 */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "core/str.h"
#include "ingest/segment.h"

#define BATCH 100
#define NOW   1764662400000LL /* 2025-12-02T08:00:00Z */

static double cpu_seconds(void)
{
	struct timespec t;
	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
	return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

/* The body ingest.lua's request() builds, for events 1..BATCH. */
static void build_body(struct buf *b)
{
	buf_append_str(b, "{\"batch\":[");
	for (int n = 1; n <= BATCH; n++) {
		int u = n % 50000;
		buf_printf(
		    b,
		    "%s{\"type\":\"track\",\"event\":\"Order "
		    "Completed\",\"messageId\":\"b100-1764662400-1-%d\","
		    "\"userId\":\"user-%d\",\"anonymousId\":\"anon-%08d\","
		    "\"timestamp\":\"2026-12-02T08:00:00.000Z\",\"context\":{\"ip\":\"203.0.113.%"
		    "d\","
		    "\"traits\":{\"email\":\"User%d@Example.com\",\"phone\":\"+1 650 555 %04d\"},"
		    "\"device\":{\"advertisingId\":\"6D92078A-8246-4BA4-AE5B-76104861E7DC\"},"
		    "\"library\":{\"name\":\"analytics.js\",\"version\":\"2.11.1\"},\"locale\":"
		    "\"en-US\","
		    "\"userAgent\":\"Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X)\"},"
		    "\"properties\":{\"order_id\":\"ord_%d\",\"total\":129.95,\"currency\":\"EUR\","
		    "\"products\":[{\"sku\":\"sku-1\",\"price\":99.95,\"quantity\":1},"
		    "{\"sku\":\"sku-2\",\"price\":30,\"quantity\":2}]}}",
		    n > 1 ? "," : "", n, u, u, n % 250 + 1, u, u % 10000, n);
	}
	buf_append_str(b, "]}");
}

/* One parse of the body, every event accepted; 0, or -1 when it was not. */
static int parse_once(const struct buf *b)
{
	struct segment_result r;
	int ok = segment_parse(NULL, "batch", b->data, b->len, NOW, NULL, &r) == 0 &&
	         r.n_events == BATCH;
	segment_result_free(&r);
	return ok ? 0 : -1;
}

int main(int argc, char **argv)
{
	int iters = argc > 1 ? atoi(argv[1]) : 2000;
	struct buf b;
	if (iters < 1) {
		fprintf(stderr, "usage: %s [ITERATIONS]\n", argv[0]);
		return 2;
	}
	buf_init(&b, 1 << 20);
	build_body(&b);
	for (int i = 0; i < 50; i++) /* warm-up: caches, the allocator */
		(void)parse_once(&b);
	double t0 = cpu_seconds();
	for (int i = 0; i < iters; i++)
		if (parse_once(&b) < 0) {
			fprintf(stderr, "ingest_parse: the body was not parsed whole\n");
			return 1;
		}
	printf("segment_parse: %zu-byte body of %d events, %d parses: %.2f us CPU per event\n",
	       b.len, BATCH, iters, (cpu_seconds() - t0) * 1e6 / iters / BATCH);
	buf_free(&b);
	return 0;
}
