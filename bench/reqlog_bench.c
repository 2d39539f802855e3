/*
 * reqlog_bench.c: push N request-log rows through the real writer path
 * (reqlog_submit -> ring -> writer thread -> store_request_log_insert -> the
 * SQLite or PostgreSQL driver) and report rows/s. bench/reqlog.sh runs it,
 * also under callgrind for a deterministic instruction count per row.
 *
 *   reqlog_bench [N [BATCH [STORE_URL]]]
 *
 * N rows (default 200000) are submitted from this thread as fast as it can
 * into a ring of N slots (so none is dropped) while the writer drains it in
 * batches of BATCH (default 512, the [request_log] batch_size default); then
 * it waits for the writer. That is done twice: the first round warms up (it
 * touches the ring's pages, which a running server does once), the second is
 * timed and, under callgrind, counted. At the end exactly 2N rows must be
 * in the table. It prints rows/s end to end, the process's CPU time (every
 * thread, user + system) per row, and the time reqlog_submit took per row.
 * Without STORE_URL it uses a fresh SQLite file in a temporary directory
 * (removed at the end); a PostgreSQL URL must name a database whose
 * request_log table may be emptied (it is, first).
 *
 * The rows look like the /v1/verify benchmark's: a fresh request id each,
 * an organisation, project and key id, GET /v1/verify, status 200, a short
 * User-Agent. Request ids are made before the clock starts, so the times
 * are the request log's alone.
 */
#include "core/clock.h"
#include "core/log.h"
#include "core/ulid.h"
#include "gateway/reqlog.h"
#include "store/store.h"

#include <limits.h>
#if __has_include(<valgrind/callgrind.h>)
#include <valgrind/callgrind.h>
#else
#define CALLGRIND_ZERO_STATS
#define CALLGRIND_DUMP_STATS_AT(what)
#endif
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

/* CPU time of the whole process (every thread), user + system, in us. */
static int64_t cpu_us(void)
{
	struct rusage ru;
	getrusage(RUSAGE_SELF, &ru);
	return (int64_t)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1000000 + ru.ru_utime.tv_usec +
	       ru.ru_stime.tv_usec;
}

static long arg_long(const char *s, long min, long max, const char *what)
{
	char *end = NULL;
	long v = strtol(s, &end, 10);
	if (!*s || *end || v < min || v > max) {
		fprintf(stderr, "reqlog_bench: bad %s %s\n", what, s);
		exit(2);
	}
	return v;
}

int main(int argc, char **argv)
{
	log_setup(LOG_WARN, false);
	long n = argc > 1 ? arg_long(argv[1], 1, 10000000, "row count") : 200000;
	long batch = argc > 2 ? arg_long(argv[2], 1, 100000, "batch size") : 512;
	char dir[256] = "", path[300] = "", url[512];
	if (argc > 3) {
		snprintf(url, sizeof url, "%s", argv[3]);
	} else {
		const char *tmp = getenv("TMPDIR");
		snprintf(dir, sizeof dir, "%s/pcl-reqlog-bench-XXXXXX", tmp && *tmp ? tmp : "/tmp");
		if (!mkdtemp(dir)) {
			perror("mkdtemp");
			return 1;
		}
		snprintf(path, sizeof path, "%s/store.db", dir);
		snprintf(url, sizeof url, "sqlite://%s", path);
	}

	struct store *st = NULL;
	char err[256];
	if (store_open(url, 2, &st, err, sizeof err) != STORE_OK) {
		fprintf(stderr, "reqlog_bench: %s\n", err);
		return 1;
	}
	if (store_migrate(st, NULL) != STORE_OK) {
		fprintf(stderr, "reqlog_bench: migration failed\n");
		return 1;
	}
	int64_t deleted = 0;
	store_request_log_purge(st, INT64_MAX, &deleted); /* an empty table (PostgreSQL) */

	/* Only the request id differs between rows; make them all first. */
	char(*ids)[32] = malloc((size_t)n * sizeof *ids);
	if (!ids)
		return 1;
	for (long i = 0; i < n; i++)
		ulid_prefixed("req", ids[i], sizeof ids[i]);
	struct store_request_row row;
	memset(&row, 0, sizeof row);
	snprintf(row.org_id, sizeof row.org_id, "01HXZ9G7KMV2QX8Y1S5RJW3B7T");
	snprintf(row.project_id, sizeof row.project_id, "01HXZ9G7KMV2QX8Y1S5RJW3B7P");
	snprintf(row.key_id, sizeof row.key_id, "01HXZ9G7KMV2QX8Y1S5RJW3B7V");
	snprintf(row.method, sizeof row.method, "GET");
	snprintf(row.path, sizeof row.path, "/v1/verify");
	snprintf(row.user_agent, sizeof row.user_agent, "curl/7.88.1");
	row.status = 200;
	row.bytes_out = 2;

	/*
	 * Round 1 warms up (the ring's pages, the statement caches, the
	 * database file); round 2 is measured. Under callgrind the counters
	 * are zeroed between them.
	 */
	struct reqlog *rl = reqlog_start(st, (size_t)n, (size_t)batch, 0);
	int64_t t0 = 0, t1 = 0, t2 = 0, cpu0 = 0, cpu1 = 0;
	int flushed = 0;
	for (int round = 1; round <= 2; round++) {
		if (round == 2) {
			for (long i = 0; i < n; i++)
				ulid_prefixed("req", ids[i], sizeof ids[i]);
			CALLGRIND_ZERO_STATS;
		}
		cpu0 = cpu_us();
		t0 = clock_mono_us();
		for (long i = 0; i < n; i++) {
			memcpy(row.request_id, ids[i], sizeof row.request_id);
			row.received_at = clock_now_ms();
			reqlog_submit(rl, &row);
		}
		t1 = clock_mono_us();
		flushed |= reqlog_flush(rl, 600000);
		t2 = clock_mono_us();
		cpu1 = cpu_us();
	}
	CALLGRIND_DUMP_STATS_AT("measured");
	reqlog_stop(rl);

	int64_t count = -1;
	store_request_log_count(st, &count);
	printf("reqlog_bench: %ld rows, batch %ld: %.0f rows/s end to end (%.3f s), CPU %.2f "
	       "us/row, submit %.0f ns/row\n",
	       n, batch, (double)n / ((double)(t2 - t0) / 1e6), (double)(t2 - t0) / 1e6,
	       (double)(cpu1 - cpu0) / (double)n, (double)(t1 - t0) * 1000.0 / (double)n);
	int rc = 0;
	if (flushed != 0 || count != 2 * n) {
		fprintf(stderr, "reqlog_bench: %lld rows in the table, expected %ld\n",
		        (long long)count, 2 * n);
		rc = 1;
	}
	store_close(st);
	free(ids);
	if (*dir) {
		static const char *const suffix[] = {"", "-wal", "-shm"};
		char p[sizeof path + 8];
		for (size_t i = 0; i < sizeof suffix / sizeof suffix[0]; i++) {
			snprintf(p, sizeof p, "%s%s", path, suffix[i]);
			unlink(p);
		}
		rmdir(dir);
	}
	return rc;
}
