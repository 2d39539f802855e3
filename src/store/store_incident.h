/*
 * store_incident.h: what the incident report (INCIDENT.md "The incident
 * report", app/incident.h) reads about one key in a window.
 *
 * Every query reads by key: the usage rollups the request-log writer keeps
 * (usage_hour, usage_key_agents, usage_key_seen: store_usage.h) through
 * their (key_id, bucket) and (key_id, kind, value) keys, and the audit log
 * through audit_events_target (migration 0009). None reads raw request-log
 * rows, so the cost follows the key's hours and distinct values, not the
 * size of the request log. Windows are whole hours: [since, until) with
 * since rounded down and until rounded up to an hour (UTC).
 */
#ifndef PORTCULLIS_STORE_STORE_INCIDENT_H
#define PORTCULLIS_STORE_STORE_INCIDENT_H

#include "store/store.h"

#include <stdint.h>

#define INCIDENT_VALUE_MAX 256 /* a route, status, region or user agent (cut at 256 bytes) */

/** One row of a report section. What each field means depends on the query. */
struct incident_count {
	int64_t bucket;                     /* the hour's start (ms, UTC); -1 when not by hour */
	char value[INCIDENT_VALUE_MAX + 1]; /* the route, status, region or user agent; "" none */
	char refusal[16];                   /* refused rows: why authentication refused them */
	int64_t requests;                   /* requests the key authenticated */
	int64_t errors_4xx, errors_5xx;     /* of those, by status class */
	int64_t refused;                    /* refused attempts that named the key */
	int64_t first_seen, last_seen;      /* regions and user agents: ever (ms); -1 unknown */
};

/** The dimensions of store_incident_by. */
enum incident_dim { INCIDENT_BY_ROUTE, INCIDENT_BY_STATUS, INCIDENT_BY_REGION, INCIDENT_BY_AGENT };

/** The hour (ms) holding ms, rounded down; incident_hour_ceil rounds up. */
int64_t incident_hour_floor(int64_t ms);
int64_t incident_hour_ceil(int64_t ms);

/**
 * Per hour of [since, until) with traffic: bucket, requests, errors_4xx,
 * errors_5xx and refused, oldest first (*out malloc'd, *n rows).
 */
int store_incident_hours(struct store *st, const char *key_id, int64_t since, int64_t until,
                         struct incident_count **out, int *n);

/**
 * The key's authenticated traffic in [since, until) by dim, busiest first
 * (then by value), at most limit rows: value, requests, errors_4xx,
 * errors_5xx (INCIDENT_BY_AGENT: requests and refused only, refused attempts
 * counted apart). For regions and user agents, first_seen and last_seen are
 * when the key's traffic first and last came from there at all (before the
 * window too), -1 when the rollups no longer know.
 */
int store_incident_by(struct store *st, const char *key_id, enum incident_dim dim, int64_t since,
                      int64_t until, int limit, struct incident_count **out, int *n);

/**
 * Refused attempts that named the key in [since, until), by hour, region
 * (value) and refusal, oldest first, at most limit rows: refused is the count.
 */
int store_incident_refused(struct store *st, const char *key_id, int64_t since, int64_t until,
                           int limit, struct incident_count **out, int *n);

/**
 * The audit events whose target is the key (its creation, rotations,
 * kills and lifts, revocation, leak reports), oldest first, at most limit:
 * each(ctx, ev) as store_audit_list's.
 */
int store_incident_history(struct store *st, const char *key_id, int limit,
                           void (*each)(void *ctx, const struct store_audit_read *ev), void *ctx);

#endif
