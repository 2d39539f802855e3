/*
 * response.c: reading requests and building responses for handlers (the
 * request.h calls that do not touch the event loop), including the
 * problem+json error body every error uses.
 */
#include "http/request.h"

#include "core/alloc.h"
#include "core/json.h"
#include "core/log.h"
#include "core/metrics.h"
#include "store/store.h"

#include "http/server_int.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

static struct request_ext *ext(struct http_request *req)
{
	return (struct request_ext *)req;
}

const char *http_header(struct http_request *req, const char *name)
{
	const struct request_ext *x = ext(req);
	size_t n = strlen(name);
	for (size_t i = 0; i < x->n_fields; i++)
		if (x->fields[i].name_len == n && strcasecmp(x->fields[i].name, name) == 0)
			return x->fields[i].value;
	return NULL;
}

/* '+' is a space and %HH a byte (as browsers encode forms); a bad escape stays as sent. */
static char *query_decode(struct arena *a, const char *s, size_t n)
{
	char *out = arena_alloc(a, n + 1), *o = out;
	for (size_t i = 0; i < n; i++) {
		int hi, lo;
		if (s[i] == '+') {
			*o++ = ' ';
		} else if (s[i] == '%' && i + 2 < n && (hi = str_hex_digit(s[i + 1])) >= 0 &&
		           (lo = str_hex_digit(s[i + 2])) >= 0) {
			*o++ = (char)(hi << 4 | lo);
			i += 2;
		} else {
			*o++ = s[i];
		}
	}
	*o = '\0';
	return out;
}

/* The query string's arguments, decoded once per request (in the arena). */
static void parse_args(struct http_request *req)
{
	struct request_ext *x = ext(req);
	if (x->args_parsed)
		return;
	x->args_parsed = true;
	const char *q = req->raw_uri ? strchr(req->raw_uri, '?') : NULL;
	if (!q || !q[1])
		return;
	q++;
	int n = 1;
	for (const char *p = q; *p; p++)
		n += *p == '&';
	x->args = arena_alloc(&req->arena, sizeof *x->args * (size_t)n);
	while (*q) {
		size_t len = strcspn(q, "&");
		if (len) {
			const char *eq = memchr(q, '=', len);
			size_t kl = eq ? (size_t)(eq - q) : len;
			struct query_arg *a = &x->args[x->n_args++];
			a->name = query_decode(&req->arena, q, kl);
			a->value = eq ? query_decode(&req->arena, eq + 1, len - kl - 1) : NULL;
		}
		q += len;
		if (*q == '&')
			q++;
	}
}

const char *http_query(struct http_request *req, const char *name)
{
	parse_args(req);
	struct request_ext *x = ext(req);
	for (int i = 0; i < x->n_args; i++)
		if (strcmp(x->args[i].name, name) == 0)
			return x->args[i].value ? x->args[i].value : "";
	return NULL;
}

const char *http_param(struct http_request *req, const char *name)
{
	for (int i = 0; i < req->n_params; i++)
		if (strcmp(req->params[i].name, name) == 0)
			return req->params[i].value;
	return NULL;
}

void http_each_header(struct http_request *req,
                      void (*fn)(void *arg, const char *name, const char *value), void *arg)
{
	const struct request_ext *x = ext(req);
	for (size_t i = 0; i < x->n_fields; i++)
		fn(arg, x->fields[i].name, x->fields[i].value);
}

void http_each_query(struct http_request *req,
                     void (*fn)(void *arg, const char *name, const char *value), void *arg)
{
	parse_args(req);
	struct request_ext *x = ext(req);
	for (int i = 0; i < x->n_args; i++)
		fn(arg, x->args[i].name, x->args[i].value ? x->args[i].value : "");
}

void http_set_header(struct http_request *req, const char *name, const char *value)
{
	struct http_header *h = arena_alloc(&req->arena, sizeof *h);
	h->name = arena_strdup(&req->arena, name);
	h->value = arena_strdup(&req->arena, value);
	h->next = req->resp_headers;
	req->resp_headers = h;
}

static bool http_resp_header_set(const struct http_request *req, const char *name)
{
	for (const struct http_header *h = req->resp_headers; h; h = h->next)
		if (strcasecmp(h->name, name) == 0)
			return true;
	return false;
}

void http_respond_owned(struct http_request *req, int status, const char *content_type, char *body,
                        size_t len)
{
	free(req->resp_body);
	req->status = status;
	req->content_type = content_type ? arena_strdup(&req->arena, content_type) : NULL;
	req->resp_body = body;
	req->resp_body_len = len;
	req->responded = true;
	/* The server's own answers are what their Content-Type says (a forwarded one, with
	 * content_type NULL, keeps the upstream's fields as they are). */
	if (content_type && !http_resp_header_set(req, "X-Content-Type-Options"))
		http_set_header(req, "X-Content-Type-Options", "nosniff");
}

void http_respond_metrics(struct http_request *req)
{
	struct buf b;
	buf_init(&b, 4 * 1024 * 1024);
	metrics_render(&b);
	size_t len;
	char *s = buf_steal(&b, &len);
	http_respond_owned(req, 200, "text/plain; version=0.0.4; charset=utf-8", s, len);
}

void http_respond(struct http_request *req, int status, const char *content_type, const void *body,
                  size_t len)
{
	char *copy = NULL;
	if (len) {
		copy = xmalloc(len);
		memcpy(copy, body, len);
	}
	http_respond_owned(req, status, content_type, copy, len);
}

static void respond_json_typed(struct http_request *req, int status, json_t *json,
                               const char *content_type)
{
	size_t n = 0;
	char *s = json_text(json, true,
	                    &n); /* json_dumps(JSON_COMPACT | JSON_ENSURE_ASCII), reals as sent */
	json_decref(json);
	http_respond_owned(req, status, content_type, s, n);
}

void http_respond_json(struct http_request *req, int status, json_t *json)
{
	respond_json_typed(req, status, json, "application/json");
}

/*
 * RFC 9457 section 4.2.1: with type "about:blank" the title is the status
 * code's phrase (RFC 9110 section 15), the same for every occurrence; what
 * differs between occurrences is `code` and `detail`.
 */
static const char *status_title(int status)
{
	switch (status) {
	case 400:
		return "Bad Request";
	case 401:
		return "Unauthorized";
	case 403:
		return "Forbidden";
	case 404:
		return "Not Found";
	case 405:
		return "Method Not Allowed";
	case 408:
		return "Request Timeout";
	case 409:
		return "Conflict";
	case 411:
		return "Length Required";
	case 413:
		return "Content Too Large";
	case 414:
		return "URI Too Long";
	case 415:
		return "Unsupported Media Type";
	case 422:
		return "Unprocessable Content";
	case 429:
		return "Too Many Requests";
	case 431:
		return "Request Header Fields Too Large";
	case 500:
		return "Internal Server Error";
	case 501:
		return "Not Implemented";
	case 502:
		return "Bad Gateway";
	case 503:
		return "Service Unavailable";
	case 504:
		return "Gateway Timeout";
	case 505:
		return "HTTP Version Not Supported";
	default:
		return status >= 500 ? "Server Error" : "Client Error";
	}
}

const char *http_reason_phrase(int status)
{
	switch (status) {
	case 100:
		return "Continue";
	case 200:
		return "OK";
	case 201:
		return "Created";
	case 202:
		return "Accepted";
	case 204:
		return "No Content";
	case 301:
		return "Moved Permanently";
	case 302:
		return "Found";
	case 303:
		return "See Other";
	case 304:
		return "Not Modified";
	case 307:
		return "Temporary Redirect";
	case 308:
		return "Permanent Redirect";
	default:
		return status >= 400 && status < 600 ? status_title(status) : "";
	}
}

void http_respond_problem(struct http_request *req, int status, const char *code,
                          const char *message, json_t *details)
{
	/* detail is RFC 9457's human text; message the same text under its old name. */
	json_t *o = json_pack("{s:s, s:s, s:i, s:s, s:s, s:s}", "type", "about:blank", "title",
	                      status_title(status), "status", status, "code", code, "detail",
	                      message, "message", message);
	if (details)
		json_object_set_new(o, "details", details);
	json_object_set_new(o, "requestId", json_string(req->request_id));
	respond_json_typed(req, status, o, "application/problem+json");
}

void http_respond_bad_field(struct http_request *req, const char *field, const char *message)
{
	http_respond_problem(req, 400, "BAD_REQUEST", message, json_pack("{s:s}", "field", field));
}

void http_respond_store_error(struct http_request *req, int rc)
{
	log_event(LOG_ERROR, "store_error", "request_id", req->request_id, "code",
	          rc == STORE_EUNAVAILABLE ? "unavailable" : "error", NULL);
	http_set_header(req, "Retry-After", "1");
	http_respond_problem(req, 503, "STORE_UNAVAILABLE",
	                     "The database could not be reached; retry shortly.", NULL);
}

static bool content_type_is_json(const char *ct)
{
	if (!ct)
		return false;
	while (*ct == ' ')
		ct++;
	size_t n = strcspn(ct, "; ");
	return (n == 16 && strncasecmp(ct, "application/json", 16) == 0) ||
	       (n > 5 && strncasecmp(ct + n - 5, "+json", 5) == 0 && strchr(ct, '/') &&
	        (size_t)(strchr(ct, '/') - ct) < n);
}

/* Depth check: jansson has its own limit (2048); ours is much lower. */
static bool depth_ok(const json_t *j, int depth)
{
	if (depth > HTTP_JSON_MAX_DEPTH)
		return false;
	if (json_is_object(j)) {
		const char *k;
		const json_t *v;
		json_object_foreach((json_t *)j, k, v) if (!depth_ok(v, depth + 1)) return false;
	} else if (json_is_array(j)) {
		size_t i;
		const json_t *v;
		json_array_foreach(j, i, v) if (!depth_ok(v, depth + 1)) return false;
	}
	return true;
}

int http_json_parse(const char *data, size_t len, json_t **out, int *position)
{
	json_error_t err;
	*out = NULL;
	json_t *j = json_loadb(data, len, JSON_REJECT_DUPLICATES, &err);
	if (!j) {
		if (position)
			*position = err.position;
		return HTTP_JSON_SYNTAX;
	}
	if (!json_is_object(j) || !depth_ok(j, 0)) {
		json_decref(j);
		return HTTP_JSON_SHAPE;
	}
	*out = j;
	return 0;
}

json_t *http_json_body(struct http_request *req)
{
	if (req->body.len == 0)
		return json_object();
	if (!content_type_is_json(http_header(req, "Content-Type"))) {
		http_respond_problem(req, 415, "UNSUPPORTED_MEDIA_TYPE",
		                     "The request body must be application/json.", NULL);
		return NULL;
	}
	json_t *j;
	int position = 0;
	switch (http_json_parse(req->body.data, req->body.len, &j, &position)) {
	case 0:
		return j;
	case HTTP_JSON_SYNTAX:
		http_respond_problem(req, 400, "BAD_REQUEST", "The request body is not valid JSON.",
		                     json_pack("{s:i}", "position", position));
		return NULL;
	default:
		http_respond_problem(
		    req, 400, "BAD_REQUEST",
		    "The request body must be a JSON object nested at most 32 deep.", NULL);
		return NULL;
	}
}
