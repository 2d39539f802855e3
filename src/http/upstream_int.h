/*
 * upstream_int.h: what the two upstream clients share, inside src/http
 * only. upstream.c owns the public API and picks a client per target:
 * upstream_h1.c (our own HTTP/1.1 client) for http:// origins, and
 * upstream_curl.c (libcurl multi) for https:// and anything the first
 * cannot express. Both filter headers through the helpers below, so the
 * upstream sees the same request and the client the same response either way.
 */
#ifndef PORTCULLIS_HTTP_UPSTREAM_INT_H
#define PORTCULLIS_HTTP_UPSTREAM_INT_H

#include <stdbool.h>

#include "http/upstream.h"

struct h1_client;
struct curl_client;

struct upstream {
	struct http_worker *w;
	struct h1_client *h1;     /* created with the upstream */
	struct curl_client *curl; /* created on first https:// use */
};

/** True when a client request header is passed on (connection: the client's Connection). */
bool upstream_pass_request_header(const char *name, const char *connection);

/**
 * The value a passed request header goes upstream with: value itself, but
 * a Cookie field without Portcullis's own cookies (names starting
 * "__Host-pcl_": the console's session and login cookies, which a browser
 * sends to every port of the console's host), copied into a; NULL when
 * nothing is left (the field is not sent).
 */
const char *upstream_request_value(struct arena *a, const char *name, const char *value);

/**
 * True when a field may go on the wire: neither name nor value holds CR or
 * LF (either would end the field and start one the client wrote).
 */
bool upstream_field_ok(const char *name, const char *value);

/** Collects an upstream response's end-to-end headers into the request arena. */
struct resp_headers {
	struct arena *arena;
	struct http_header *head, **tail;
	const char *connection; /* the response's Connection values, comma-joined */
	int64_t content_length; /* the Content-Length field's value, -1 when none or unusable */
};

void resp_headers_init(struct resp_headers *rh, struct arena *a);
/** One response header as received (not NUL-terminated); filtered. */
void resp_headers_add(struct resp_headers *rh, const char *name, size_t name_len, const char *value,
                      size_t value_len);
/** Forget everything (a 1xx head came before the real one). */
void resp_headers_reset(struct resp_headers *rh);
/** Drop the headers the response's Connection header named; the list is final. */
struct http_header *resp_headers_finish(struct resp_headers *rh);

struct h1_client *h1_client_create(struct http_worker *w);
void h1_client_destroy(struct h1_client *c);
/** Forward over HTTP/1.1; false (nothing started) when base_url is not one it handles. */
bool h1_client_forward(struct h1_client *c, struct http_request *req,
                       const struct upstream_target *t, const struct http_header *extra,
                       upstream_done_fn done);
/** Register the host of an http:// base URL with the resolver (start-up). */
void h1_client_prepare(const char *base_url);

struct curl_client *curl_client_create(struct http_worker *w);
void curl_client_destroy(struct curl_client *c);
void curl_client_forward(struct curl_client *c, struct http_request *req,
                         const struct upstream_target *t, const struct http_header *extra,
                         upstream_done_fn done);

#endif
