/*
 * inventory.h: the key inventory of one organisation (INCIDENT.md "Key
 * inventory"), shared by `portcullis keys inventory` and
 * GET /v1/api-keys/inventory. inventory_page builds one page of it as JSON
 * objects, one per key (docs/api.md "Key inventory"); inventory_csv renders
 * those same objects as CSV, so the two formats never disagree.
 * Blocking (store I/O): run on the control pool or the CLI.
 */
#ifndef PORTCULLIS_APP_INVENTORY_H
#define PORTCULLIS_APP_INVENTORY_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/str.h"
#include "store/store.h"

/** A key not used for this many days (and older than that) is flagged unused_90d. */
#define INVENTORY_UNUSED_DAYS 90
/** The most keys one page holds. */
#define INVENTORY_PAGE_MAX 1000

struct inventory_query {
	const char *org_id; /* the organisation (required) */
	const char *after;  /* cursor: the page starts after this key id; NULL: from the start */
	int limit;          /* keys on the page, 1 to INVENTORY_PAGE_MAX */
	int64_t now;        /* ms: the clock the flags and windows are taken at */
};

/**
 * One page of q's inventory, keys in id order: *out gets a new JSON array of
 * key objects (the key object of docs/contract.md with status, killed_by,
 * last_region, requests_24h, requests_30d and flags). next gets the id to
 * pass as after for the next page when more keys follow, else "".
 * STORE_ENOTFOUND when the organisation does not exist; else the store's
 * error (*out NULL).
 */
int inventory_page(struct store *st, const struct inventory_query *q, json_t **out,
                   char next[STORE_ID_LEN + 1]);

/**
 * Append the key objects of keys (as inventory_page built them) to b as CSV
 * rows (RFC 4180: CRLF line ends, inventory_csv_cell's quoting), after the
 * header row when header is true. 0, or -1 when b's limit was reached.
 */
int inventory_csv(struct buf *b, const json_t *keys, bool header);

/**
 * Append the len bytes of s to b as one CSV cell. A cell starting with
 * '=', '+', '-', '@', tab or carriage return gets a leading single quote
 * first, so a spreadsheet opening the file shows the text instead of
 * running it as a formula (CSV injection: a key's name is the tenant's
 * text). A cell holding a comma, double quote, CR or LF is then put in
 * double quotes, with each double quote doubled (RFC 4180). 0, or -1 when
 * b's limit was reached.
 */
int inventory_csv_cell(struct buf *b, const char *s, size_t len);

#endif
