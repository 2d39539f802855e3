/*
 * engine.h: the delivery engine: ONE thread running a libcurl multi with
 * many webhook and mail deliveries in flight (WEBHOOKS.md "Delivery").
 *
 * Its loop: fan new messages out (store_fanout), claim due deliveries
 * under a lease (store_claim, skipping endpoints that are full or out of
 * rate tokens), open the endpoint's sealed secret(s) with the worker's
 * keyring, sign (Standard Webhooks), POST over the multi's shared
 * connection cache (reused per receiver), classify the outcome, schedule
 * the next attempt, and record outcomes in batches (store_record). Every
 * connection is checked by the egress guard on the very address curl is
 * about to connect to (CURLOPT_OPENSOCKETFUNCTION). Per endpoint: at most
 * [webhooks] endpoint_concurrency in flight and its rate_limit_per_second
 * (a token bucket here), so one slow or limited receiver never delays the
 * others. Logs name the endpoint id and the outcome only: never a secret,
 * a body, a URL or an address.
 */
#ifndef PORTCULLIS_DELIVERY_ENGINE_H
#define PORTCULLIS_DELIVERY_ENGINE_H

#include "delivery/schedule.h"

#include <curl/curl.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct config;
struct store;
struct mailer;
struct engine;

struct engine_options {
	struct store *st;
	const struct config *cfg;
	const char *owner; /* lease owner (worker_owner_name) */
	const char
	    *key_file; /* [secrets] private_key_file, resolved; reread when a key is missing */
	const struct mailer *mailer; /* NULL: mail off (no mail deliveries are fanned out) */
};

/** Start the engine's thread. 0, or -1 with a message in err (a bad setting). */
int engine_start(const struct engine_options *o, struct engine **out, char *err, size_t cap);
/**
 * Stop claiming, let attempts in flight finish (at most a few seconds,
 * then they are abandoned), record what finished, give back every lease
 * this owner holds, join the thread and free. NULL is a no-op.
 */
void engine_stop(struct engine *e);

/* ---- metrics (shared with serve through a memory page, see worker.h) ---- */

/** Cells the engine's metrics need in a shared page. */
#define ENGINE_METRIC_CELLS 17
/**
 * Register the background tier's metrics in this process's /metrics; with
 * cells (ENGINE_METRIC_CELLS of them in shared memory) their values live
 * there, so the process that maps the same page renders what the worker
 * counts. Call once, before engine_start.
 */
void engine_metrics_register(int64_t *cells);

/* ---- the engine's pure decisions (exposed for unit tests) ---- */

/** A token bucket: rate tokens a second, at most rate of them saved (one second's worth). */
struct token_bucket {
	int64_t milli; /* thousandths of a token; -1 = new (full) */
	int64_t at_ms; /* when milli was last brought up to date */
};
/** Take one token at now_ms if there is one (rate <= 0: no limit, always true). */
bool token_bucket_take(struct token_bucket *b, int64_t rate, int64_t now_ms);
/** Milliseconds from now_ms until a token is there (0: one is). */
int64_t token_bucket_wait_ms(const struct token_bucket *b, int64_t rate, int64_t now_ms);

/** What one attempt came back with. */
struct engine_result {
	CURLcode rc;
	int status; /* HTTP status (SMTP reply code for mail); 0 when none */
	bool egress_refused, too_large;
	const char *retry_after; /* the Retry-After header, or NULL */
	bool mail;
	bool not_sent; /* no request was made (no secret to sign with, no mail to write) */
};
/** What to record for it. */
struct engine_decision {
	bool succeeded;
	const char *error; /* NULL, or timeout|connect|tls|dns|egress_refused|status|too_large */
	bool gone;         /* 410: disable the endpoint */
	int64_t next_attempt_at; /* failed: the next try, -1: no more */
};
/** The error class of a transfer that ended with rc (for a refused or too large one, those). */
const char *engine_error_class(CURLcode rc, bool egress_refused, bool too_large);
/**
 * Decide an attempt: one not sent fails with no error class and takes the
 * schedule's next step; success is a 2xx (mail: the message accepted); 410
 * ends the delivery and disables its endpoint; 429 and 503 with a valid
 * Retry-After wait that long, clamped to [next step, twice it]; otherwise
 * the schedule's next step, jittered by rnd. attempts_before counts the
 * attempts made before this one.
 */
void engine_decide(const struct wh_schedule *s, int64_t attempts_before,
                   const struct engine_result *r, int64_t now_ms, uint64_t rnd,
                   struct engine_decision *d);

/**
 * The first at most cap - 1 bytes of a response body as text that any store
 * takes: valid UTF-8, control bytes (but tab, CR, LF) and broken sequences
 * as '?', never cut inside a character. Returns the length written.
 */
size_t engine_response_text(const char *in, size_t len, char *out, size_t cap);

/** A response body longer than this ends the transfer: too_large. */
#define ENGINE_RESPONSE_BOUND (64 * 1024)

/**
 * What an attempt keeps of a response body, filled by engine_response_keep
 * (a libcurl write function with this as its data): the first cap bytes in
 * head (len of them), the body's length so far in total, and too_large once
 * total passes ENGINE_RESPONSE_BOUND, which stops the transfer.
 */
struct engine_response {
	char *head;
	size_t cap, len, total;
	bool too_large;
};
size_t engine_response_keep(char *data, size_t size, size_t n, void *userp);

#endif
