/*
 * incident.h: the incident report of one key (INCIDENT.md "The incident
 * report"), shared by `portcullis incident report` and
 * GET /v1/incidents/report. incident_report builds the report as one JSON
 * object (docs/api.md "Incident report"); incident_render_text renders that
 * same object for a terminal, so the two formats never disagree.
 * Blocking (store I/O): run on the control pool or the CLI.
 */
#ifndef PORTCULLIS_APP_INCIDENT_H
#define PORTCULLIS_APP_INCIDENT_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "store/store.h"

/** The default window: the last 30 days. */
#define INCIDENT_DEFAULT_DAYS 30
/** The longest window a report covers (the rollups' default life). */
#define INCIDENT_MAX_DAYS 400

struct incident_query {
	const char *key_id;
	const char
	    *org_id; /* the caller's organisation (a key of another is not found); NULL: any */
	int64_t since, until; /* ms; -1: until now and since 30 days before until */
	int64_t now;          /* ms: the clock the report is made at */
};

/**
 * Build the report of q into *out (a new JSON object). STORE_ENOTFOUND when
 * the key does not exist or belongs to another organisation than q->org_id;
 * STORE_ERROR for a window that is empty, reversed or over
 * INCIDENT_MAX_DAYS (the caller checks it first with incident_window); else
 * the store's error.
 */
int incident_report(struct store *st, const struct incident_query *q, json_t **out);

/**
 * Fill in q's defaults and check the window: 0, or -1 with a message (for a
 * 400 or a usage error) in err.
 */
int incident_window(struct incident_query *q, char *err, size_t cap);

/**
 * A first-seen flag: true when a region or user agent whose key traffic was
 * first seen at first_seen (ms, -1: unknown) appeared inside [since, until).
 */
bool incident_first_seen_in(int64_t first_seen, int64_t since, int64_t until);

/** The columns the text report fits in. */
#define INCIDENT_TEXT_COLUMNS 80

/**
 * The report (as incident_report built it) as text for a terminal: aligned
 * sections, per-day rows of hourly bars, no line wider than
 * INCIDENT_TEXT_COLUMNS characters. malloc'd, NUL-terminated.
 */
char *incident_render_text(const json_t *report);

#endif
