/*
 * metrics.c: request counters by route and status class, a latency
 * histogram, build info, and registered module metrics (see metrics.h).
 */
#include "core/metrics.h"

#include "build_info.h"

#include <pthread.h>
#include <stdatomic.h>
#include <string.h>

static const char *route_labels[METRICS_MAX_ROUTES];
static const char *route_methods[METRICS_MAX_ROUTES];
static _Atomic int64_t route_counts[METRICS_MAX_ROUTES][5]; /* 1xx..5xx */

/* Latency buckets in seconds (upper bounds), plus +Inf. */
static const double bucket_le[] = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
                                   0.1,    0.25,  0.5,    1,     2.5,  10};
#define N_BUCKETS (sizeof bucket_le / sizeof bucket_le[0])
static _Atomic int64_t bucket_counts[N_BUCKETS + 1];
static _Atomic int64_t duration_sum_us;
static _Atomic int64_t duration_count;

static struct metric *registered;
static pthread_mutex_t reg_lock = PTHREAD_MUTEX_INITIALIZER;

void metrics_set_route_label(int idx, const char *method, const char *label)
{
	if (idx >= 0 && idx < METRICS_MAX_ROUTES) {
		route_methods[idx] = method ? method : "any";
		route_labels[idx] = label;
	}
}

void metrics_record_request(int route_idx, int status, int64_t duration_us)
{
	if (route_idx >= 0 && route_idx < METRICS_MAX_ROUTES) {
		int cls = status / 100 - 1;
		if (cls >= 0 && cls < 5)
			atomic_fetch_add_explicit(&route_counts[route_idx][cls], 1,
			                          memory_order_relaxed);
	}
	double secs = (double)duration_us / 1e6;
	size_t b = 0;
	while (b < N_BUCKETS && secs > bucket_le[b])
		b++;
	atomic_fetch_add_explicit(&bucket_counts[b], 1, memory_order_relaxed);
	atomic_fetch_add_explicit(&duration_sum_us, duration_us, memory_order_relaxed);
	atomic_fetch_add_explicit(&duration_count, 1, memory_order_relaxed);
}

void metrics_register(struct metric *m)
{
	pthread_mutex_lock(&reg_lock);
	for (struct metric *p = registered; p; p = p->next)
		if (p == m) {
			pthread_mutex_unlock(&reg_lock);
			return;
		}
	/* After the family's last series, so that a family is rendered together. */
	struct metric **at = &registered;
	for (struct metric **p = &registered; *p; p = &(*p)->next)
		if (strcmp((*p)->name, m->name) == 0)
			at = &(*p)->next;
	m->next = *at;
	*at = m;
	pthread_mutex_unlock(&reg_lock);
}

void metrics_register_cells(struct metric *m, size_t n, int64_t *cells)
{
	for (size_t i = 0; i < n; i++) {
		if (cells)
			metric_bind(&m[i], &cells[i]);
		metrics_register(&m[i]);
	}
}

void metrics_render(struct buf *out)
{
	buf_printf(out,
	           "# HELP portcullis_build_info Build information.\n"
	           "# TYPE portcullis_build_info gauge\n"
	           "portcullis_build_info{version=\"%s\"} 1\n",
	           PORTCULLIS_VERSION);
	buf_append_str(out, "# HELP portcullis_http_requests_total HTTP requests by route and "
	                    "status class.\n# TYPE portcullis_http_requests_total counter\n");
	static const char *const classes[] = {"1xx", "2xx", "3xx", "4xx", "5xx"};
	for (int i = 0; i < METRICS_MAX_ROUTES; i++) {
		if (!route_labels[i])
			continue;
		for (int c = 0; c < 5; c++) {
			int64_t v = atomic_load_explicit(&route_counts[i][c], memory_order_relaxed);
			if (v)
				buf_printf(
				    out,
				    "portcullis_http_requests_total{method=\"%s\",route=\"%s\","
				    "status=\"%s\"} %lld\n",
				    route_methods[i], route_labels[i], classes[c], (long long)v);
		}
	}
	buf_append_str(out, "# HELP portcullis_http_request_duration_seconds Time from request "
	                    "start to response.\n"
	                    "# TYPE portcullis_http_request_duration_seconds histogram\n");
	int64_t cum = 0;
	for (size_t b = 0; b <= N_BUCKETS; b++) {
		cum += atomic_load_explicit(&bucket_counts[b], memory_order_relaxed);
		if (b < N_BUCKETS)
			buf_printf(
			    out,
			    "portcullis_http_request_duration_seconds_bucket{le=\"%g\"} %lld\n",
			    bucket_le[b], (long long)cum);
		else
			buf_printf(
			    out,
			    "portcullis_http_request_duration_seconds_bucket{le=\"+Inf\"} %lld\n",
			    (long long)cum);
	}
	buf_printf(out, "portcullis_http_request_duration_seconds_sum %.6f\n",
	           (double)atomic_load_explicit(&duration_sum_us, memory_order_relaxed) / 1e6);
	buf_printf(out, "portcullis_http_request_duration_seconds_count %lld\n",
	           (long long)atomic_load_explicit(&duration_count, memory_order_relaxed));
	pthread_mutex_lock(&reg_lock);
	const char *family = NULL;
	for (struct metric *m = registered; m; m = m->next) {
		if (!family || strcmp(family, m->name) != 0)
			buf_printf(out, "# HELP %s %s\n# TYPE %s %s\n", m->name, m->help, m->name,
			           m->type);
		family = m->name;
		if (m->labels)
			buf_printf(out, "%s{%s} %lld\n", m->name, m->labels,
			           (long long)metric_get(m));
		else
			buf_printf(out, "%s %lld\n", m->name, (long long)metric_get(m));
	}
	pthread_mutex_unlock(&reg_lock);
}
