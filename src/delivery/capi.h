/*
 * capi.h: the Meta Conversions API forward in the background tier (INGEST.md
 * "Forwarding to ad platforms"). One thread: it puts the events of projects
 * with the forward on into batches (store_capi_batches_make, at most 1000 a
 * batch), claims a due batch under a lease, opens the project's sealed
 * access token and the events' held advertising ids with the worker's
 * keyring, POSTs {[capi] base_url}/{api_version}/{pixel_id}/events through
 * the egress guard, and records the outcome: a 2xx succeeds, anything else
 * retries on [capi] retry_schedule and fails after its last step; either
 * end deletes the batch's held advertising ids. Logs name the batch, the
 * project and the outcome: never the token, a body or an address.
 */
#ifndef PORTCULLIS_DELIVERY_CAPI_H
#define PORTCULLIS_DELIVERY_CAPI_H

#include "store/store_capi.h"

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct config;
struct store;

/** Meta's rule: events older than this are not sent. */
#define CAPI_MAX_AGE_MS (7 * 24 * 3600 * 1000LL)

/** True for an API version of the form v<digits>.<digits> (v21.0). */
bool capi_version_ok(const char *v);

/**
 * Append the Conversions API event of ev to the array data unless its
 * timestamp is before min_ts (then 0 is returned and nothing is added; 1
 * when added). event_name: track's event name, else the type; event_time:
 * Unix seconds; event_id: the messageId; action_source "app"; user_data em
 * and ph (the stored hashes, as one-element arrays), external_id (userId),
 * madid (madid, NULL or "" for none); custom_data: the event's properties
 * object when it has one.
 */
int capi_event_add(json_t *data, const struct store_capi_event *ev, const char *madid,
                   int64_t min_ts);

/**
 * The request body: {"data": data, "access_token": token, "test_event_code"?}
 * as compact JSON, malloc'd (the caller wipes and frees it). data is borrowed.
 */
char *capi_request_body(json_t *data, const char *token, const char *test_event_code);

/** out = in with every occurrence of secret (non-empty) replaced by "[redacted]". */
void capi_redact(const char *in, const char *secret, char *out, size_t cap);

struct capi_forwarder;

struct capi_options {
	struct store *st;
	const struct config *cfg;
	const char *owner;    /* lease owner (worker_owner_name) */
	const char *key_file; /* [secrets] private_key_file, resolved */
};

/*
 * The forward's /metrics series: batches ended or retried by outcome and the
 * events sent in succeeded batches. With cells (CAPI_METRIC_CELLS of them in
 * shared memory, after the engine's) their values live there, so serve's
 * /metrics shows what its worker child counts (worker.c).
 */
#define CAPI_METRIC_CELLS 4
void capi_metrics_register(int64_t *cells);

/** Start the forward's thread. 0, or -1 with a message in err (a bad setting). */
int capi_start(const struct capi_options *o, struct capi_forwarder **out, char *err, size_t cap);

/** Abort what is in flight, give the leases back, join and free. NULL is a no-op. */
void capi_stop(struct capi_forwarder *f);

#endif
