/*
 * upstream.h: the HTTP client that forwards requests, one per worker loop.
 * Transfers run on the same loop as the client's connection (no thread
 * hand-off) and idle upstream connections are kept and reused. http://
 * upstreams go through Portcullis's own HTTP/1.1 client (upstream_h1.c:
 * one write and one read per exchange on a reused connection); https://
 * upstreams through libcurl multi (upstream_curl.c). Bodies are moved, not
 * copied twice: the request body is sent from the request's buffer and the
 * response body buffer is handed to the response as is.
 */
#ifndef PORTCULLIS_HTTP_UPSTREAM_H
#define PORTCULLIS_HTTP_UPSTREAM_H

#include <stddef.h>
#include <stdint.h>

#include "core/config.h"
#include "http/request.h"
#include "http/server.h"

/**
 * At start-up, before the workers: register the host names of every
 * configured upstream with the resolver (the loops never block on DNS).
 */
void upstream_prepare(const struct config *cfg);
/** At shutdown, after the workers stopped: stop the resolver. */
void upstream_shutdown(void);

/** Per-worker client; create on the worker thread (http_server_opts.worker_init). */
struct upstream *upstream_create(struct http_worker *w);
void upstream_destroy(struct upstream *up);

enum upstream_outcome {
	UPSTREAM_OK = 0,      /* a response came back (any status) */
	UPSTREAM_UNAVAILABLE, /* refused, reset, bad response, too large */
	UPSTREAM_TIMEOUT,     /* no complete response in time */
};

struct upstream_response {
	enum upstream_outcome outcome;
	int status;
	struct http_header *headers; /* end-to-end response headers, in the request arena */
	char *body;                  /* malloc'd; the caller owns it */
	size_t body_len;
	int64_t content_length; /* the upstream's Content-Length (for HEAD), -1 when none */
	const char *error;      /* for the log when outcome != OK */
};

/** Called on the worker loop when the transfer ends. */
typedef void (*upstream_done_fn)(struct http_request *req, struct upstream_response *resp);

struct upstream_target {
	const char *base_url; /* scheme://host[:port][/prefix] */
	int64_t timeout_ms;
	int64_t connect_timeout_ms;
	size_t max_response_bytes;
	const char *ca_file; /* https: CA bundle to trust; NULL or "" = the system's */
};

/**
 * Forward req (method, raw URI, end-to-end headers minus Authorization and
 * client X-Portcullis-*, body) to target, adding extra headers (may be
 * NULL). The request must be suspended by the caller; done runs later.
 */
void upstream_forward(struct upstream *up, struct http_request *req,
                      const struct upstream_target *target, const struct http_header *extra,
                      upstream_done_fn done);

/**
 * The X-Forwarded-For value for the upstream, as nginx's
 * $proxy_add_x_forwarded_for builds it: when the peer is one of
 * [server] trusted_proxies, the client's X-Forwarded-For field lines
 * (joined with ", ") followed by the peer's address; from any other peer
 * only its address (an untrusted peer's claims are not passed on). NULL
 * when the peer address is unknown. The string is in the request arena.
 * The client's own X-Forwarded-For is never forwarded as is.
 */
const char *upstream_forwarded_for(struct http_request *req);

#endif
