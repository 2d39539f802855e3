/*
 * request.h: the per-request context every handler receives, and the calls
 * handlers use to read the request and build the response.
 *
 * A request lives on one worker loop. Handlers run on that loop unless the
 * route is ROUTE_BLOCKING (then on the control pool, with the connection
 * suspended). Everything allocated from req->arena dies with the request.
 */
#ifndef PORTCULLIS_HTTP_REQUEST_H
#define PORTCULLIS_HTTP_REQUEST_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "core/arena.h"
#include "core/str.h"
#include "core/workpool.h"

#define HTTP_MAX_PARAMS     4
#define HTTP_REQUEST_ID_LEN 30 /* "req_" + ULID */

struct gw_request;
struct http_request;
struct http_worker;
struct route;

/** A route handler. It either sets a response or suspends (http_defer, http_suspend). */
typedef void (*http_handler_fn)(struct http_request *req);

struct http_header {
	const char *name, *value;
	struct http_header *next;
};

struct http_request {
	struct arena arena;
	struct http_worker *worker;
	void *conn; /* the connection layer's (struct h1conn, http/h1conn.c) */
	char request_id[HTTP_REQUEST_ID_LEN + 1];
	const char *method;
	const char *raw_uri; /* path and query exactly as sent */
	const char *path;    /* decoded path, no query */
	int64_t start_us;
	int64_t start_ms;   /* wall clock, for records */
	char client_ip[48]; /* for the brute-force guard and geo-IP only: never log it */
	char peer_ip[48];   /* the TCP peer, for X-Forwarded-For to the upstream: never log it */
	bool peer_trusted;  /* the peer is one of [server] trusted_proxies */
	bool tls;

	const struct route *route;
	const char *route_label; /* metrics/log label: the route pattern, "proxy" or "none" */
	struct {
		const char *name, *value;
	} params[HTTP_MAX_PARAMS];
	int n_params;

	struct buf body; /* request body, bounded by max_body_bytes */
	bool body_too_large;

	/* response */
	int status;
	const char *content_type;
	char *resp_body; /* malloc'd, freed with the request */
	size_t resp_body_len;
	struct http_header *resp_headers;
	bool responded;
	bool head_for_upstream; /* HEAD answered for an upstream: frame as its GET would be */
	int64_t head_length;    /* the upstream's Content-Length, -1 when it sent none */

	/* suspension */
	bool suspend_pending;
	bool suspended;
	bool dispatched;
	http_handler_fn resume_fn;
	http_handler_fn deferred_fn;

	/* set by handlers for the access log / request log */
	const char *log_org_id, *log_key_id, *log_project_id;
	struct gw_request *gateway; /* the data-plane pipeline's context (gateway/pipeline.h) */
	void (*on_complete)(struct http_request *req); /* called once when the response is sent */
};

/** A request header value, or NULL. Names are case-insensitive. */
const char *http_header(struct http_request *req, const char *name);
/** A query-string argument value (decoded), or NULL. */
const char *http_query(struct http_request *req, const char *name);
/** A path parameter ({keyId}) value, or NULL. */
const char *http_param(struct http_request *req, const char *name);
/** Call fn for each request header, in the order received. */
void http_each_header(struct http_request *req,
                      void (*fn)(void *arg, const char *name, const char *value), void *arg);
/** Call fn for each query-string argument, decoded, in order (value "" when absent). */
void http_each_query(struct http_request *req,
                     void (*fn)(void *arg, const char *name, const char *value), void *arg);

/** Add a response header (both strings are copied). */
void http_set_header(struct http_request *req, const char *name, const char *value);
/** Respond with a body (copied). */
void http_respond(struct http_request *req, int status, const char *content_type, const void *body,
                  size_t len);
/** Respond with a malloc'd body the response takes ownership of. */
void http_respond_owned(struct http_request *req, int status, const char *content_type, char *body,
                        size_t len);
/** Respond 200 with every metric (core/metrics.h) as Prometheus text: GET /metrics. */
void http_respond_metrics(struct http_request *req);
/** Respond with JSON; takes the reference to json. */
void http_respond_json(struct http_request *req, int status, json_t *json);
/**
 * Respond with an RFC 9457 problem+json body (docs/api.md, "Errors"): type
 * "about:blank", title (the status phrase), status, code, detail (message),
 * message (the same text, kept for older clients), details (optional,
 * reference taken), requestId.
 */
void http_respond_problem(struct http_request *req, int status, const char *code,
                          const char *message, json_t *details);
/** 400 BAD_REQUEST naming the field in details.field. */
void http_respond_bad_field(struct http_request *req, const char *field, const char *message);
/**
 * 503 STORE_UNAVAILABLE with Retry-After: 1, for a handler whose store call
 * failed with rc (store/store.h's code; logged as "unavailable" or "error").
 */
void http_respond_store_error(struct http_request *req, int rc);

enum { HTTP_JSON_SYNTAX = -1, HTTP_JSON_SHAPE = -2 };
#define HTTP_JSON_MAX_DEPTH 32

/**
 * Parse len bytes as a JSON object with no duplicate members, nested at
 * most HTTP_JSON_MAX_DEPTH deep (the root is 0; every value counts). 0 with
 * *out set (caller decrefs), HTTP_JSON_SYNTAX (with *position), or
 * HTTP_JSON_SHAPE (not an object, or too deep). Pure: no request needed.
 */
int http_json_parse(const char *data, size_t len, json_t **out, int *position);

/**
 * Parse the request body as a JSON object (depth and size are bounded).
 * On failure responds 400 (or 415 for a non-JSON Content-Type) and returns
 * NULL. An empty body gives an empty object.
 */
json_t *http_json_body(struct http_request *req);

/**
 * Run work(req) on pool with the connection suspended, then done(req) back
 * on the worker loop (done may be NULL when work sets the response).
 * Returns -1 when the pool's queue is full (nothing suspended).
 */
int http_defer(struct http_request *req, struct workpool *pool, http_handler_fn work,
               http_handler_fn done);
/** http_defer into a lane of the pool (workpool.h); http_defer is WORKPOOL_NORMAL. */
int http_defer_lane(struct http_request *req, struct workpool *pool, enum workpool_lane lane,
                    http_handler_fn work, http_handler_fn done);
/**
 * Suspend the request; resume_fn runs on the worker loop after
 * http_resume. For work that completes on the loop itself (upstream I/O).
 */
void http_suspend(struct http_request *req, http_handler_fn resume_fn);
/** Resume a suspended request. Safe from any thread. */
void http_resume(struct http_request *req);

#endif
