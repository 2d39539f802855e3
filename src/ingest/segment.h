/*
 * segment.h: the Segment HTTP Tracking API request bodies (INGEST.md, "Wire
 * format"): POST /v1/batch {batch: [...], context?, sentAt?, writeKey?} and
 * the single-event /v1/track|identify|page|screen|group|alias, parsed under
 * the limits and turned into struct store_event rows with the identifiers
 * treated as docs/ingest.md's table says (pii.h hashes, the IP resolved to
 * a region and dropped, the advertising id taken out). The handler does no
 * JSON work: it authenticates (with write_key when the headers carry no
 * key), fills the ids of each event, stores them and answers with the
 * rejections or the whole-request error given here.
 *
 * Pure: no I/O, no log line, thread-safe. No text it produces (rejection
 * messages, the whole-request message) holds a value from the body: they
 * name members, never what was in them, so no plaintext email, phone, IP or
 * advertising id reaches an answer or a log through them.
 */
#ifndef PORTCULLIS_INGEST_SEGMENT_H
#define PORTCULLIS_INGEST_SEGMENT_H

#include "core/config.h"
#include "ingest/geoip.h"
#include "store/store_events.h"

#include <stddef.h>
#include <stdint.h>

#define SEGMENT_REQUEST_MAX   (500 * 1024)         /* bytes of a request body: over is 413 */
#define SEGMENT_EVENT_MAX     STORE_EV_BODY_MAX    /* bytes of one event: over is 413 */
#define SEGMENT_BATCH_MAX     2500                 /* events of a batch: over is 400 */
#define SEGMENT_FUTURE_MAX_MS (23LL * 3600 * 1000) /* a timestamp past now + this is now */
#define SEGMENT_DEDUPE_MS     (24LL * 3600 * 1000) /* store_events_insert's dedupe_ms */
#define SEGMENT_ADID_MAX      64                   /* bytes of an advertising id */
#define SEGMENT_WRITE_KEY_MAX 256                  /* bytes of a writeKey kept */
#define SEGMENT_MESSAGE_MAX   160                  /* bytes of a message, with NUL */

/*
 * Per-event rejection codes (the event is refused, the others are kept; the
 * answer is still 200). Static strings: compare with strcmp or by pointer.
 */
#define SEGMENT_MISSING_ID          "MISSING_ID"          /* no userId and no anonymousId */
#define SEGMENT_UNKNOWN_TYPE        "UNKNOWN_TYPE"        /* type missing or not one of the six */
#define SEGMENT_MESSAGE_ID_TOO_LONG "MESSAGE_ID_TOO_LONG" /* over 100 bytes */
#define SEGMENT_INVALID_FIELD       "INVALID_FIELD"       /* a member of the wrong type or size */
/* over 32 KiB once the batch context is merged */
#define SEGMENT_EVENT_TOO_LARGE "EVENT_TOO_LARGE"

/** What the operator configured: both may be NULL/0. Borrowed for the call. */
struct segment_opts {
	struct geoip *geoip; /* NULL: every region "" */
	/* [ingest] hash_paths as config_hash_paths parsed them */
	const char (*hash_paths)[CONFIG_HASH_PATH_MAX];
	int n_hash_paths;
};

/** One refused event, as the 200 answer lists it. */
struct segment_reject {
	int index;                                    /* position in the batch (0 for single) */
	char message_id[STORE_EV_MESSAGE_ID_MAX + 1]; /* "" when none, not a string or too long */
	const char *code;                             /* SEGMENT_* above */
	char message[SEGMENT_MESSAGE_MAX];            /* for people; names members, never values */
};

/** One accepted event. */
struct segment_event {
	/*
	 * Ready to store but for id, org_id, project_id and key_id ("" here:
	 * the caller's) and adid_sealed (""). message_id is the event's, or a
	 * generated "srv_<ULID>" when it sent none; body points into this
	 * struct's own buffer (owned by the result).
	 */
	struct store_event ev;
	int index; /* position in the batch */
	/*
	 * context.device.advertisingId in plain text, "" when none: seal it or
	 * drop it at once; segment_result_free wipes it. Never in ev.body.
	 */
	char adid[SEGMENT_ADID_MAX + 1];
	char *body_buf; /* what ev.body points to */
};

/** The outcome of one request. Zero it or not: segment_parse sets every member. */
struct segment_result {
	/*
	 * 0: parsed; events and rejects hold the per-event outcome. Else the
	 * HTTP status of refusing the whole request (nothing of it may be
	 * stored): 400 BAD_REQUEST, 404 NOT_FOUND (an unknown endpoint) or
	 * 413 PAYLOAD_TOO_LARGE, and events/rejects are empty.
	 */
	int status;
	const char *code;                  /* "BAD_REQUEST", ...; NULL when status is 0 */
	char message[SEGMENT_MESSAGE_MAX]; /* for people: names members, never values */
	const char *field;                 /* details.field, or NULL */
	int64_t position;                  /* details.position (bad JSON: byte offset), or -1 */
	int64_t limit;                     /* details.limit (413), or -1 */
	int index;                         /* details.index (the event concerned), or -1 */
	/*
	 * The body's writeKey ("" when none, not a string or longer than
	 * SEGMENT_WRITE_KEY_MAX): set whenever the body is a JSON object, even
	 * when status is not 0, so the handler can authenticate before it
	 * answers. A credential: segment_result_free wipes it. Never in a body.
	 */
	char write_key[SEGMENT_WRITE_KEY_MAX + 1];
	struct segment_event *events; /* n_events, in request order */
	int n_events;
	struct segment_reject *rejects; /* n_rejects, in request order */
	int n_rejects;
};

/**
 * Parse the len bytes of body (need not be NUL-terminated) sent to
 * /v1/<endpoint> ("batch", "import" as its alias, "track", "identify",
 * "page", "screen", "group", "alias") at now_ms (the server's clock, every
 * event's received_at). conn_ip is the client's address after
 * [server] trusted_proxies (may be NULL): the region's source when an event
 * has no context.ip; it is not kept. Fills *out (free it with
 * segment_result_free whatever the result) and returns out->status.
 *
 * Whole request (status, code, field): body over SEGMENT_REQUEST_MAX 413
 * PAYLOAD_TOO_LARGE; any event over SEGMENT_EVENT_MAX as sent (compact:
 * rawjson.h's count, numbers as sent) 413 PAYLOAD_TOO_LARGE with index; malformed JSON or a
 * duplicate member 400 with position; not an object 400; batch not an array 400 "batch", over
 * SEGMENT_BATCH_MAX events 400 "batch" with limit; a batch context that is
 * not an object 400 "context"; a batch sentAt that is not an RFC 3339 string
 * 400 "sentAt"; an unknown endpoint 404.
 *
 * Each event, in order, else a rejection: an object; messageId a string of
 * at most 100 bytes; type one of the six (for a single event: absent or the
 * endpoint's); userId / anonymousId strings of at most 256 bytes (null or
 * "" is absent), at least one of them; track's event (page/screen's name)
 * a string of at most 200 bytes, required for track; timestamp and sentAt
 * RFC 3339 strings; context, properties, traits objects; email, phone,
 * their _sha256 forms, hash_paths, context.ip and
 * context.device.advertisingId strings (null is absent); the stored body
 * within SEGMENT_EVENT_MAX. Then (docs/ingest.md): the batch context merged
 * in (the event's own members win), email and phone hashed, hash_paths
 * hashed in place, the region resolved and context.ip dropped, the
 * advertising id and any writeKey taken out, the timestamp corrected
 * (segment_timestamp) and the body written compact (rawjson.h: numbers
 * and unchanged parts as sent).
 */
int segment_parse(const struct segment_opts *o, const char *endpoint, const char *body, size_t len,
                  int64_t now_ms, const char *conn_ip, struct segment_result *out);

/** Free what segment_parse allocated, wiping the advertising ids and write key. */
void segment_result_free(struct segment_result *r);

/**
 * The stored timestamp of an event received at received_ms (ms): with
 * sent_ms (the device's clock when it sent, -1 when not given) it is
 * received_ms - (sent_ms - ts_ms), so the device's clock error cancels;
 * without, ts_ms itself. ts_ms -1 (not given) gives received_ms. A result
 * more than SEGMENT_FUTURE_MAX_MS after received_ms, or before the epoch,
 * gives received_ms. Arguments from clock_parse_rfc3339 (0 .. year 9999).
 */
int64_t segment_timestamp(int64_t received_ms, int64_t ts_ms, int64_t sent_ms);

#endif
