/*
 * reqlog.h: the request-metadata log writer (background tier).
 *
 * The pipeline's completion (pipeline.c, when a request that reached
 * authentication completes) hands its metadata to reqlog_submit, which
 * copies it into a bounded in-memory ring under a short mutex and returns:
 * it never waits for the database. One writer thread drains the ring in
 * batches of up to batch_size rows, each batch one store_request_log_insert
 * (one transaction), retried with backoff when the store fails. When the
 * ring is full the new row is dropped and counted
 * (portcullis_request_log_dropped_total): the data plane must never slow
 * down because the store is slow.
 *
 * When retention_days > 0 a retention thread purges rows older than the
 * retention period at start and then every hour.
 *
 * Metrics: portcullis_request_log_queue_depth (gauge),
 * portcullis_request_log_written_total, portcullis_request_log_dropped_total.
 */
#ifndef PORTCULLIS_GATEWAY_REQLOG_H
#define PORTCULLIS_GATEWAY_REQLOG_H

#include <stddef.h>
#include <stdint.h>

#include "store/store.h"

struct reqlog;

/**
 * Start the writer and the retention threads. st is borrowed and must
 * outlive the reqlog. queue_size is the ring's capacity in rows (memory:
 * about 950 bytes a row, touched as the ring fills); batch_size the most
 * rows written in one transaction (both at least 1); rows received more than
 * retention_days ago are purged (0 or less: never purge). Aborts when a
 * thread cannot be started, like an allocation failure.
 */
struct reqlog *reqlog_start(struct store *st, size_t queue_size, size_t batch_size,
                            int64_t retention_days);
/**
 * reqlog_start whose retention thread also purges the usage rollups
 * (store_usage.h) older than usage_days (0 or less: never), at start and
 * every hour, and compacts the closed hours into the usage series at start
 * and every minute: serve's.
 */
struct reqlog *reqlog_start_with(struct store *st, size_t queue_size, size_t batch_size,
                                 int64_t retention_days, int64_t usage_days);

/**
 * Queue a copy of row for writing. Safe on any thread; never blocks on I/O
 * (a short mutex and one row copy). When the ring is full the row is dropped,
 * counted, and a warning with the number dropped is logged by the writer at
 * most once a second. NULL rl is a no-op.
 */
void reqlog_submit(struct reqlog *rl, const struct store_request_row *row);

/**
 * Wait until every row submitted before this call has been handled (written,
 * or given up on after the store failed every retry and counted as dropped).
 * Returns 0, or -1 when timeout_ms passed first. For shutdown, tests and
 * benchmarks; blocks, so never call it on an HTTP worker thread.
 */
int reqlog_flush(struct reqlog *rl, int timeout_ms);

/**
 * Write everything still queued, stop the writer (and the retention thread,
 * when there is one) and free rl (the SIGTERM path). When the store is down this gives up after one
 * batch's retries (about three seconds) and counts the rest as dropped, so shutdown is bounded.
 * Call it after the HTTP workers have stopped submitting. NULL is a no-op.
 */
void reqlog_stop(struct reqlog *rl);

/**
 * Delete rows received before now_ms - retention_days days, once, on the
 * calling thread (the retention thread's unit of work; also usable from the
 * CLI). *deleted (may be NULL) gets the number removed. Returns STORE_OK or
 * the store's error; logs the outcome.
 */
int reqlog_purge(struct store *st, int64_t retention_days, int64_t now_ms, int64_t *deleted);
/** reqlog_purge for the usage rollups: cells older than usage_days days. */
int reqlog_usage_purge(struct store *st, int64_t usage_days, int64_t now_ms, int64_t *deleted);

#endif
