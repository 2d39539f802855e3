/*
 * reqlog.c: the request-metadata log writer (see reqlog.h).
 *
 * The ring holds whole rows. Producers (HTTP workers) append at
 * (head + count) under the mutex and leave; nothing else happens on their
 * thread. The writer reads a batch straight out of the ring without holding
 * the mutex: the batch's slots stay counted in `count` until the batch is
 * finished, so no producer can reuse them meanwhile, and only the writer
 * moves `head`. A batch never wraps (it stops at the end of the array), so it
 * is one contiguous array for store_request_log_insert.
 *
 * Batching: the writer takes whatever is queued (up to batch_size) each
 * time it finishes a write. When less than a batch is waiting it lingers
 * LINGER_MS first, so a moderately busy server writes a few large
 * transactions rather than one per request; a backlogged one never waits.
 * A row therefore reaches the store within about LINGER_MS plus one write.
 *
 * Text fields are made safe for the store and for JSON here, off the hot
 * path: a User-Agent cut at 256 bytes can end inside a UTF-8 sequence, and a
 * decoded path can hold any byte, which PostgreSQL and jansson both reject;
 * one such row must not sink the 511 good rows of its batch.
 */
#include "gateway/reqlog.h"

#include "core/alloc.h"
#include "core/clock.h"
#include "core/log.h"
#include "core/metrics.h"
#include "core/thread.h"
#include "store/store_usage.h"

#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define WRITE_ATTEMPTS     5
#define BACKOFF_FIRST_MS   200 /* then doubled: 200 + 400 + 800 + 1600 ms */
#define LINGER_MS          20  /* how long a partial batch waits for more rows */
#define DROP_REPORT_MS     1000
#define RETENTION_EVERY_MS (3600 * 1000)
#define COMPACT_EVERY_MS   (60 * 1000)
#define COMPACT_GRACE_MS   (2 * 60 * 1000) /* rows of an hour arrive within it */
#define COMPACT_BUDGET_MS  2000
#define COMPACT_YIELD_MS   20 /* between passes while behind: the writer's turn */
#define DAY_MS             (24 * 3600 * (int64_t)1000)

struct reqlog {
	struct store *st;
	size_t cap, batch;
	int64_t retention_days, usage_days;
	bool compact; /* serve's: the retention thread also compacts the usage series */

	pthread_mutex_t lock;
	pthread_cond_t drained; /* flush waiters: `done` moved */

	/* Under lock. */
	struct store_request_row *ring;
	size_t head, count; /* ring[head .. head + count) mod cap, the writer's batch included */
	uint64_t accepted;  /* rows ever queued */
	uint64_t done;      /* rows ever taken off the ring (written or given up on) */
	uint64_t unreported_drops;
	int64_t last_drop_report_ms;
	bool writer_idle; /* waiting for rows: the next submit wakes it */

	struct bg_thread writer, janitor; /* both share lock */
};

static struct metric m_dropped =
    METRIC_INIT("portcullis_request_log_dropped_total",
                "request-log rows dropped: queue full, or the store failed every retry", "counter");
static struct metric m_written = METRIC_INIT("portcullis_request_log_written_total",
                                             "request-log rows written to the store", "counter");
static struct metric m_depth = METRIC_INIT("portcullis_request_log_queue_depth",
                                           "request-log rows waiting for the writer", "gauge");

/* ---------- time ---------- */

static void sleep_ms(int64_t ms)
{
	struct timespec ts = {(time_t)(ms / 1000), (long)(ms % 1000) * 1000000L};
	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

/* ---------- row hygiene ---------- */

/* True when the 8 bytes at p are all printable ASCII (0x20 to 0x7e). */
static inline bool printable8(const unsigned char *p)
{
	uint64_t w;
	memcpy(&w, p, sizeof w);
	/*
	 * A byte's top bit is set in w (>= 0x80), in w + 0x01 (0x7f), or in
	 * w - 0x20 (< 0x20: the lowest such byte gets no borrow from below, so
	 * its own top bit shows it). When none is, no byte carried or borrowed
	 * into the next, so all eight are in range.
	 */
	uint64_t bad = (w - 0x2020202020202020u) | w | (w + 0x0101010101010101u);
	return (bad & 0x8080808080808080u) == 0;
}

/*
 * Make s (a buffer of cap bytes) a NUL-terminated string of valid UTF-8
 * without control characters: each offending byte becomes '?'. The length
 * never changes, so it is done in place. Printable ASCII, nearly all of
 * what is logged, is checked eight bytes at a time.
 */
static void clean_text(char *s, size_t cap)
{
	unsigned char *p = (unsigned char *)s;
	p[cap - 1] = '\0';
	size_t n = strlen(s);
	size_t i = 0;
	while (i < n) {
		if (n - i >= 8) {
			if (printable8(p + i)) {
				i += 8;
				continue;
			}
		} else if (n >= 8 && printable8(p + n - 8)) {
			break; /* the rest is within the last eight bytes, all fine */
		}
		unsigned c = p[i];
		if (c < 0x80) {
			if (c < 0x20 || c == 0x7f)
				p[i] = '?';
			i++;
			continue;
		}
		size_t len;
		uint32_t cp, min;
		if (c >= 0xc2 && c <= 0xdf) {
			len = 2, cp = c & 0x1f, min = 0x80;
		} else if (c >= 0xe0 && c <= 0xef) {
			len = 3, cp = c & 0x0f, min = 0x800;
		} else if (c >= 0xf0 && c <= 0xf4) {
			len = 4, cp = c & 0x07, min = 0x10000;
		} else {
			p[i++] = '?';
			continue;
		}
		/* p[n] is the NUL, not a continuation byte: this never reads past it. */
		size_t k = 1;
		for (; k < len && (p[i + k] & 0xc0) == 0x80; k++)
			cp = (cp << 6) | (p[i + k] & 0x3f);
		if (k < len || cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) {
			p[i++] = '?';
			continue;
		}
		i += len;
	}
}

static void clean_row(struct store_request_row *r)
{
	clean_text(r->request_id, sizeof r->request_id);
	clean_text(r->org_id, sizeof r->org_id);
	clean_text(r->project_id, sizeof r->project_id);
	clean_text(r->key_id, sizeof r->key_id);
	clean_text(r->method, sizeof r->method);
	clean_text(r->path, sizeof r->path);
	clean_text(r->user_agent, sizeof r->user_agent);
	bool region_ok = r->region[0] == '\0' ||
	                 (r->region[0] >= 'A' && r->region[0] <= 'Z' && r->region[1] >= 'A' &&
	                  r->region[1] <= 'Z' && r->region[2] == '\0');
	if (!region_ok)
		r->region[0] = '\0';
}

/* ---------- the writer ---------- */

/* Write rows with bounded retries. Returns true when written. */
static bool write_batch(struct reqlog *rl, struct store_request_row *rows, size_t n)
{
	for (size_t i = 0; i < n; i++)
		clean_row(&rows[i]);
	int64_t delay = BACKOFF_FIRST_MS;
	int rc = STORE_ERROR;
	for (int attempt = 1; attempt <= WRITE_ATTEMPTS; attempt++) {
		rc = store_request_log_insert(rl->st, rows, (int)n);
		if (rc == STORE_OK) {
			metric_add(&m_written, (int64_t)n);
			return true;
		}
		if (attempt == 1)
			log_warn(
			    "request log: writing %zu row(s) failed (store error %d); retrying", n,
			    rc);
		if (attempt < WRITE_ATTEMPTS) {
			sleep_ms(delay);
			delay *= 2;
		}
	}
	metric_add(&m_dropped, (int64_t)n);
	log_error("request log: dropped %zu row(s) after %d failed writes (store error %d)", n,
	          WRITE_ATTEMPTS, rc);
	return false;
}

/* Under lock: the drops to report now (0 when none or reported under a second ago). */
static uint64_t drops_due(struct reqlog *rl, bool force)
{
	if (!rl->unreported_drops)
		return 0;
	int64_t now = clock_mono_ms();
	if (!force && now - rl->last_drop_report_ms < DROP_REPORT_MS)
		return 0;
	uint64_t n = rl->unreported_drops;
	rl->unreported_drops = 0;
	rl->last_drop_report_ms = now;
	return n;
}

static void report_drops(uint64_t n)
{
	if (n)
		log_warn("request log: queue full, dropped %llu new row(s); raise "
		         "[request_log] queue_size or check the store",
		         (unsigned long long)n);
}

/* Under lock: take every queued row off the ring unwritten (store down at shutdown). */
static void abandon_queue(struct reqlog *rl)
{
	size_t n = rl->count;
	if (!n)
		return;
	rl->head = (rl->head + n) % rl->cap;
	rl->count = 0;
	rl->done += n;
	metric_add(&m_dropped, (int64_t)n);
	log_error("request log: shutting down with the store failing; dropped %zu queued row(s)",
	          n);
}

/* The writer thread (lock held). */
static void writer_main(struct bg_thread *t, void *arg)
{
	struct reqlog *rl = arg;
	for (;;) {
		while (rl->count == 0 && !bg_thread_stopping(t)) {
			uint64_t d = drops_due(rl, false);
			if (d) {
				pthread_mutex_unlock(&rl->lock);
				report_drops(d);
				pthread_mutex_lock(&rl->lock);
				continue;
			}
			rl->writer_idle = true;
			bg_thread_wait(t, DROP_REPORT_MS);
			rl->writer_idle = false;
		}
		if (rl->count == 0)
			break; /* stopping, and everything is written */
		if (rl->count < rl->batch && !bg_thread_stopping(t)) {
			/*
			 * Linger briefly so a busy server writes few large
			 * transactions instead of one per request (and wakes
			 * this thread far less often). Submitters do not signal
			 * while writer_idle is false; a stop ends the wait.
			 */
			bg_thread_wait(t, LINGER_MS);
		}

		size_t n = rl->count;
		if (n > rl->batch)
			n = rl->batch;
		if (n > rl->cap - rl->head)
			n = rl->cap - rl->head;
		struct store_request_row *rows = rl->ring + rl->head;
		uint64_t d = drops_due(rl, false);
		pthread_mutex_unlock(&rl->lock);

		report_drops(d);
		bool ok = write_batch(rl, rows, n);

		pthread_mutex_lock(&rl->lock);
		rl->head = (rl->head + n) % rl->cap;
		rl->count -= n;
		rl->done += n;
		/* Bound shutdown: one batch's retries, not one per queued batch. */
		if (!ok && bg_thread_stopping(t))
			abandon_queue(rl);
		metric_set(&m_depth, (int64_t)rl->count);
		pthread_cond_broadcast(&rl->drained);
	}
	uint64_t d = drops_due(rl, true);
	pthread_mutex_unlock(&rl->lock);
	report_drops(d);
	pthread_mutex_lock(&rl->lock);
}

/* ---------- retention ---------- */

/*
 * One retention purge: purge(st, cutoff) for rows older than days days,
 * logged as "<what>: purged N <rows> older than D day(s)".
 */
static int purge_older(struct store *st, int64_t days, int64_t now_ms, int64_t *deleted,
                       int (*purge)(struct store *, int64_t, int64_t *), const char *what,
                       const char *rows)
{
	int64_t n = 0;
	int rc = STORE_OK;
	if (days > 0 && days <= INT64_MAX / DAY_MS) {
		rc = purge(st, now_ms - days * DAY_MS, &n);
		if (rc == STORE_OK)
			log_info("%s: purged %lld %s older than %lld day(s)", what, (long long)n,
			         rows, (long long)days);
		else
			log_warn("%s: retention purge failed (store error %d); next try in an hour",
			         what, rc);
	}
	if (deleted)
		*deleted = n;
	return rc;
}

int reqlog_purge(struct store *st, int64_t retention_days, int64_t now_ms, int64_t *deleted)
{
	return purge_older(st, retention_days, now_ms, deleted, store_request_log_purge,
	                   "request log", "row(s)");
}

int reqlog_usage_purge(struct store *st, int64_t usage_days, int64_t now_ms, int64_t *deleted)
{
	return purge_older(st, usage_days, now_ms, deleted, store_usage_purge, "usage",
	                   "rollup row(s)");
}

/*
 * One compaction pass of the usage series (store_usage_compact): the hours
 * that ended COMPACT_GRACE_MS ago, for at most COMPACT_BUDGET_MS. True when
 * work remains (catching up after a start or an outage).
 */
static bool compact_usage(struct store *st)
{
	int hours = 0;
	bool more = false;
	int rc = store_usage_compact(st, clock_now_ms() - COMPACT_GRACE_MS, COMPACT_BUDGET_MS,
	                             &hours, &more);
	if (rc != STORE_OK)
		log_warn("usage: compacting the series failed (store error %d); next try in a "
		         "minute",
		         rc);
	else if (hours)
		log_debug("usage: compacted %d hour(s) into the series%s", hours,
		          more ? ", more to do" : "");
	return more;
}

/*
 * The retention thread (lock held): a purge at start and every hour; with
 * the usage rollups (serve), the series compaction at start and every
 * minute, at once again while it is behind.
 */
static void janitor_main(struct bg_thread *t, void *arg)
{
	struct reqlog *rl = arg;
	int64_t next_purge = clock_mono_ms();
	while (!bg_thread_stopping(t)) {
		bool more = false;
		pthread_mutex_unlock(&rl->lock);
		if (clock_mono_ms() >= next_purge) {
			reqlog_purge(rl->st, rl->retention_days, clock_now_ms(), NULL);
			reqlog_usage_purge(rl->st, rl->usage_days, clock_now_ms(), NULL);
			next_purge = clock_mono_ms() + RETENTION_EVERY_MS;
		}
		if (rl->compact)
			more = compact_usage(rl->st);
		pthread_mutex_lock(&rl->lock);
		bg_thread_wait(t, more          ? COMPACT_YIELD_MS
		                  : rl->compact ? COMPACT_EVERY_MS
		                                : RETENTION_EVERY_MS);
	}
}

/* ---------- public ---------- */

static struct reqlog *start(struct store *st, size_t queue_size, size_t batch_size,
                            int64_t retention_days, int64_t usage_days, bool compact)
{
	struct reqlog *rl = xcalloc(1, sizeof *rl);
	rl->st = st;
	rl->cap = queue_size ? queue_size : 1;
	rl->batch = batch_size ? batch_size : 1;
	if (rl->batch > INT_MAX)
		rl->batch = INT_MAX;
	rl->retention_days = retention_days;
	rl->usage_days = usage_days;
	rl->compact = compact;
	rl->ring = xcalloc(rl->cap, sizeof *rl->ring);
	rl->last_drop_report_ms = clock_mono_ms() - DROP_REPORT_MS;
	pthread_mutex_init(&rl->lock, NULL);
	clock_cond_init_mono(&rl->drained);
	metrics_register(&m_dropped);
	metrics_register(&m_written);
	metrics_register(&m_depth);
	metric_set(&m_depth, 0);

	if (bg_thread_start(&rl->writer, "reqlog-writer", &rl->lock, writer_main, rl) != 0)
		fatal("cannot start the request-log writer");
	if ((retention_days > 0 || usage_days > 0 || compact) &&
	    bg_thread_start(&rl->janitor, "reqlog-purge", &rl->lock, janitor_main, rl) != 0)
		fatal("cannot start the request-log retention thread");
	return rl;
}

struct reqlog *reqlog_start(struct store *st, size_t queue_size, size_t batch_size,
                            int64_t retention_days)
{
	return start(st, queue_size, batch_size, retention_days, 0, false);
}

struct reqlog *reqlog_start_with(struct store *st, size_t queue_size, size_t batch_size,
                                 int64_t retention_days, int64_t usage_days)
{
	return start(st, queue_size, batch_size, retention_days, usage_days, true);
}

void reqlog_submit(struct reqlog *rl, const struct store_request_row *row)
{
	if (!rl || !row)
		return;
	pthread_mutex_lock(&rl->lock);
	if (rl->count == rl->cap) {
		rl->unreported_drops++;
		pthread_mutex_unlock(&rl->lock);
		metric_add(&m_dropped, 1);
		return;
	}
	size_t tail = rl->head + rl->count; /* both below cap: no division needed */
	if (tail >= rl->cap)
		tail -= rl->cap;
	rl->ring[tail] = *row;
	rl->count++;
	rl->accepted++;
	metric_set(&m_depth, (int64_t)rl->count);
	bool wake = rl->writer_idle;
	if (wake) {
		rl->writer_idle = false; /* one wake per sleep is enough */
		bg_thread_wake_mark(&rl->writer);
	}
	pthread_mutex_unlock(&rl->lock);
	if (wake)
		bg_thread_signal(
		    &rl->writer); /* outside the lock: the writer does not wake into it */
}

int reqlog_flush(struct reqlog *rl, int timeout_ms)
{
	if (!rl)
		return 0;
	struct timespec until = clock_mono_deadline(timeout_ms > 0 ? timeout_ms : 0);
	int rc = 0;
	pthread_mutex_lock(&rl->lock);
	uint64_t target = rl->accepted;
	while (rl->done < target) {
		if (pthread_cond_timedwait(&rl->drained, &rl->lock, &until) == ETIMEDOUT &&
		    rl->done < target) {
			rc = -1;
			break;
		}
	}
	pthread_mutex_unlock(&rl->lock);
	return rc;
}

void reqlog_stop(struct reqlog *rl)
{
	if (!rl)
		return;
	bg_thread_stop(&rl->janitor); /* not started without retention: nothing */
	bg_thread_stop(&rl->writer);  /* writes what is queued first */
	metric_set(&m_depth, 0);
	pthread_mutex_destroy(&rl->lock);
	pthread_cond_destroy(&rl->drained);
	free(rl->ring);
	free(rl);
}
