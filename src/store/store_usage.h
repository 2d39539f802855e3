/*
 * store_usage.h: usage rollups of the request log (INCIDENT.md "Usage").
 *
 * The request-log writer keeps them: store_request_log_insert adds the rows
 * it inserts to per-minute and per-hour cells (migrations/0007_usage.sql)
 * in the same transaction, so a query reads cells, never raw rows; the
 * retention thread compacts closed hours into per-dimension series
 * (store_usage_compact), which hour and day queries read. A day is the sum
 * of its 24 hours (UTC). The pure helpers below (buckets, the
 * fold of rows into cells) are what the writer uses, exposed for tests.
 */
#ifndef PORTCULLIS_STORE_STORE_USAGE_H
#define PORTCULLIS_STORE_STORE_USAGE_H

#include "store/store.h"

#include <stdbool.h>
#include <stdint.h>

#define USAGE_MINUTE_MS ((int64_t)60 * 1000)
#define USAGE_HOUR_MS   (60 * USAGE_MINUTE_MS)
#define USAGE_DAY_MS    (24 * USAGE_HOUR_MS)

enum usage_granularity { USAGE_MINUTE, USAGE_HOUR, USAGE_DAY };

/** The start (ms, UTC) of the minute, hour or day holding ms (also before 1970). */
int64_t usage_bucket(int64_t ms, enum usage_granularity g);
/** The start (ms, UTC) of the calendar month holding ms; its "YYYY-MM" in out. */
int64_t usage_month(int64_t ms, char out[8]);

/** One cell being summed: its bucket and dimensions, then what it counts. */
#define USAGE_DIMS 6
struct usage_cell {
	int64_t bucket;
	const char *dim[USAGE_DIMS]; /* borrowed; compared as strings, NULL as "" */
	const char *carried;         /* borrowed, not compared: a non-empty one of those merged */
	int status;
	int64_t requests, errors_4xx, errors_5xx, bytes_in, bytes_out, duration_ms_sum, refused;
	int64_t first_at, last_at; /* earliest and latest received_at */
};

/** The cell of one request-log row (dimensions unset, bucket = received_at). */
void usage_cell_of_row(const struct store_request_row *r, struct usage_cell *out);
/**
 * Merge the cells with equal bucket, dimensions and status (sums, min of
 * first_at, max of last_at) into cells[0..return), sorted. O(n log n).
 */
int usage_fold(struct usage_cell *cells, int n);

/* ---- queries ---- */

enum usage_group {
	USAGE_BY_NONE,
	USAGE_BY_PROJECT,
	USAGE_BY_KEY,
	USAGE_BY_ROUTE,
	USAGE_BY_STATUS,
	USAGE_BY_REGION,
};

struct usage_filter {
	const char *org_id;              /* NULL: every organisation (root) */
	const char *project_id, *key_id; /* NULL: any */
	int64_t since, until;            /* [since, until) in ms */
	enum usage_granularity granularity;
	enum usage_group group_by;
	int limit; /* points at most */
};

/** One point of a usage series; value borrowed (NULL: none, or no group). */
struct usage_point {
	int64_t bucket;
	const char *value;
	int64_t requests, errors_4xx, errors_5xx, bytes_in, bytes_out, duration_ms_sum;
};

/** The points of f, by bucket then value: each(ctx, p) once per point. */
int store_usage_query(struct store *st, const struct usage_filter *f,
                      void (*each)(void *ctx, const struct usage_point *p), void *ctx);

/**
 * Compact the hours that ended by upto_ms into the series
 * (store_usage_series.c) and rebuild the hours that late rows changed, a
 * few hours per transaction, for about budget_ms. *hours (may be NULL):
 * hours built; *more (may be NULL): work remains (call again).
 */
int store_usage_compact(struct store *st, int64_t upto_ms, int64_t budget_ms, int *hours,
                        bool *more);

/** Delete rollups older than cutoff_ms; *deleted (may be NULL) gets the count. */
int store_usage_purge(struct store *st, int64_t cutoff_ms, int64_t *deleted);

#endif
