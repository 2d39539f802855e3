/*
 * metrics.h: process-wide counters rendered as Prometheus text: requests by
 * route and status class, a latency histogram, and the named counters and
 * gauges other modules register. Recording is lock-free (relaxed atomics), a
 * few nanoseconds on the hot path; registering and rendering take a mutex.
 * Route labels are set once at start-up, before the workers run.
 */
#ifndef PORTCULLIS_CORE_METRICS_H
#define PORTCULLIS_CORE_METRICS_H

#include <stddef.h>
#include <stdint.h>

#include "core/str.h"

#define METRICS_MAX_ROUTES 128

/**
 * Give route slot idx its labels: method (NULL: "any") and the route's
 * pattern, or "proxy" (forwarded) and "none" (no route, no upstream) for the
 * two slots server.c keeps past the router's.
 */
void metrics_set_route_label(int idx, const char *method, const char *label);
/** Count one finished request for a route slot, status and duration. */
void metrics_record_request(int route_idx, int status, int64_t duration_us);

/**
 * A named counter or gauge other modules update. Series of one family
 * (same name, different labels) are rendered under one HELP/TYPE header.
 */
struct metric {
	const char *name; /* e.g. "portcullis_request_log_dropped_total" */
	const char *help;
	const char *type; /* "counter" or "gauge" */
	int64_t value;    /* only through the __atomic builtins below */
	struct metric *next;
	const char *labels; /* "outcome=\"succeeded\"", or NULL */
	/*
	 * Where the value lives when not in value: a cell of memory shared with
	 * another process (the background tier's child writes, serve renders).
	 * Set before the metric is used (metric_bind), then never changed.
	 */
	int64_t *cell;
};

/**
 * Initialise a static metric:
 *   static struct metric m = METRIC_INIT("portcullis_x_total", "help", "counter");
 * then metrics_register(&m) once before /metrics can show it.
 */
#define METRIC_INIT(name, help, type)                                                              \
	{                                                                                          \
		(name), (help), (type), 0, NULL, NULL, NULL                                        \
	}
/** The same with labels ("outcome=\"succeeded\""), for one series of a family. */
#define METRIC_INIT_LABELS(name, labels, help, type)                                               \
	{                                                                                          \
		(name), (help), (type), 0, NULL, (labels), NULL                                    \
	}

/** Register m (static storage) so /metrics renders it. Idempotent. */
void metrics_register(struct metric *m);
/** Keep m's value in *cell (shared memory; see struct metric) from now on. */
static inline void metric_bind(struct metric *m, int64_t *cell)
{
	m->cell = cell;
}
/**
 * Register the n metrics of the array m (static storage), each first bound
 * to cells[i] when cells is not NULL (n cells in shared memory).
 */
void metrics_register_cells(struct metric *m, size_t n, int64_t *cells);
static inline int64_t *metric_cell_(struct metric *m)
{
	return m->cell ? m->cell : &m->value;
}
static inline void metric_add(struct metric *m, int64_t n)
{
	__atomic_fetch_add(metric_cell_(m), n, __ATOMIC_RELAXED);
}
static inline void metric_set(struct metric *m, int64_t v)
{
	__atomic_store_n(metric_cell_(m), v, __ATOMIC_RELAXED);
}
static inline int64_t metric_get(struct metric *m)
{
	return __atomic_load_n(metric_cell_(m), __ATOMIC_RELAXED);
}

/** Render everything (Prometheus text format 0.0.4) into out. */
void metrics_render(struct buf *out);

#endif
