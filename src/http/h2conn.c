/*
 * h2conn.c: HTTP/2 (RFC 9113) through nghttp2 on a TLS connection whose
 * client chose h2 by ALPN (issue 14 item 3). h1conn.c owns the socket, its
 * deadlines and its I/O (state CONN_H2); this file owns the nghttp2 session
 * and turns each request stream into a request of the server's lifecycle
 * (request_new, request_begin, request_dispatch, request_end), so routing,
 * the handlers and the gateway's pipelines are the same on both protocols.
 *
 * A stream's request: the pseudo-header fields give the method, target
 * (:path) and Host (:authority); the fields are kept lower-case as sent
 * (Cookie fields joined with "; ", RFC 9113 8.2.3); the body is collected
 * up to the listener's limit; END_STREAM dispatches. The answer is
 * submitted once the handler has responded and the request ends when
 * nghttp2 closes the stream. A stream reset by the client while its
 * handler has the request is only marked (it stays on the session's list
 * and counts as work in flight): the request ends when the handler gives
 * it back.
 *
 * Limits (docs/configuration.md, "HTTP/2 defences"): [server]
 * http2_max_concurrent_streams and http2_window_bytes in the SETTINGS, the
 * header list bounded by max_header_bytes (+ the target's bytes). Against
 * rapid reset (CVE-2023-44487) a new stream is refused (REFUSED_STREAM)
 * while as many requests as the stream limit are with their handlers,
 * reset ones included, so resetting streams never buys more work than
 * keeping them open, and nghttp2's reset rate limit closes the connection
 * (GOAWAY) past a burst of 4 resets per allowed stream (64 to 1000) and 33
 * a second. nghttp2's other defences, set here: at most 8 CONTINUATION
 * frames per header block, or twice what the header limit needs in 16 KiB
 * frames (CVE-2024-28182); at most 100 SETTINGS and PING acknowledgements
 * queued (floods); closed streams not retained.
 */
#include "core/alloc.h"
#include "core/log.h"
#include "core/str.h"
#include "http/server_int.h"

#include <nghttp2/nghttp2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#define HSTS_VALUE "max-age=63072000; includeSubDomains"

struct h2stream {
	struct h2sess *h; /* NULL once the connection is gone */
	struct request_ext *x;
	int32_t id;
	bool begun;        /* request_begin ran */
	bool with_handler; /* the handler has x (running, suspended or on a pool) */
	bool submitted;    /* the response is with nghttp2 */
	bool reset;        /* nghttp2 closed the stream while the handler had x (still linked) */
	bool too_many;     /* more fields than H1_MAX_FIELDS */
	bool too_large;    /* the fields add up to more than the head limit: not kept */
	bool expect_100;   /* Expect: 100-continue */
	size_t head_bytes; /* the fields' bytes so far */
	size_t sent;       /* body bytes handed to nghttp2 */
	struct h2stream *prev, *next;
};

struct h2sess {
	nghttp2_session *ng;
	struct h1conn *c;
	struct http_worker *w;
	const struct listener *l;
	char peer_ip[48];
	struct h2stream *streams; /* every stream with a request, reset ones with a handler too */
	int open;                 /* of them */
	int handlers;             /* of them, those whose request is with its handler */
};

static struct h2stream *stream_of(struct h2sess *h, int32_t id)
{
	return nghttp2_session_get_stream_user_data(h->ng, id);
}

static void stream_unlink(struct h2stream *st)
{
	struct h2sess *h = st->h;
	if (!h)
		return;
	if (st->prev)
		st->prev->next = st->next;
	else
		h->streams = st->next;
	if (st->next)
		st->next->prev = st->prev;
	st->prev = st->next = NULL;
	h->open--;
}

/* ---------- the request side ---------- */

static int on_begin_headers(nghttp2_session *ng, const nghttp2_frame *f, void *arg)
{
	struct h2sess *h = arg;
	if (f->hd.type != NGHTTP2_HEADERS || f->headers.cat != NGHTTP2_HCAT_REQUEST)
		return 0;
	/* Rapid reset: requests of reset streams still count until their handlers are done. */
	if (h->w->draining ||
	    h->handlers >= h->w->server->cfg->server_http2_max_concurrent_streams) {
		nghttp2_submit_rst_stream(ng, NGHTTP2_FLAG_NONE, f->hd.stream_id,
		                          NGHTTP2_REFUSED_STREAM);
		return 0;
	}
	struct h2stream *st = xcalloc(1, sizeof *st);
	st->h = h;
	st->id = f->hd.stream_id;
	st->x = request_new(h->w, h->l, h->c, h->peer_ip, h->l->tls); /* h2c: plain */
	st->x->h2 = st;
	struct h1_request *r = &st->x->h1;
	r->minor = 1;
	r->keep_alive = true;
	r->framing = H1_BODY_NONE;
	r->n_fields = 0;
	st->next = h->streams;
	if (h->streams)
		h->streams->prev = st;
	h->streams = st;
	h->open++;
	nghttp2_session_set_stream_user_data(ng, st->id, st);
	return 0;
}

static char *dup_n(struct request_ext *x, const uint8_t *s, size_t n)
{
	char *d = arena_alloc(&x->req.arena, n + 1);
	memcpy(d, s, n);
	d[n] = '\0';
	return d;
}

static void add_field(struct h2stream *st, const char *name, size_t nl, const char *value,
                      size_t vl)
{
	struct h1_request *r = &st->x->h1;
	if (nl == 6 && memcmp(name, "cookie", 6) == 0)
		for (size_t i = 0; i < r->n_fields; i++)
			if (r->fields[i].name_len == 6 &&
			    memcmp(r->fields[i].name, "cookie", 6) == 0) {
				/* RFC 9113 8.2.3: one field for the HTTP/1.1 world behind us. */
				size_t ol = r->fields[i].value_len;
				char *j = arena_alloc(&st->x->req.arena, ol + 2 + vl + 1);
				memcpy(j, r->fields[i].value, ol);
				memcpy(j + ol, "; ", 2);
				memcpy(j + ol + 2, value, vl);
				j[ol + 2 + vl] = '\0';
				r->fields[i].value = j;
				r->fields[i].value_len = ol + 2 + vl;
				return;
			}
	if (r->n_fields == H1_MAX_FIELDS) {
		st->too_many = true;
		return;
	}
	r->fields[r->n_fields++] = (struct h1_field){name, value, nl, vl};
}

static int on_header(nghttp2_session *ng, const nghttp2_frame *f, const uint8_t *name, size_t nl,
                     const uint8_t *value, size_t vl, uint8_t flags, void *arg)
{
	(void)flags;
	(void)ng;
	struct h2stream *st = stream_of(arg, f->hd.stream_id);
	if (!st || st->begun || f->hd.type != NGHTTP2_HEADERS)
		return 0; /* trailers: not used */
	struct h1_request *r = &st->x->h1;
	/* Kept only up to the head limit (431 at the end of the head): memory stays bounded. */
	const struct config *cfg = st->h->w->server->cfg;
	st->head_bytes += nl + vl + 4;
	if (st->head_bytes > (size_t)cfg->server_max_header_bytes + MAX_TARGET_BYTES)
		st->too_large = true;
	if (st->too_large)
		return 0;
	char *n = dup_n(st->x, name, nl), *v = dup_n(st->x, value, vl);
	if (nl && name[0] == ':') {
		if (nl == 7 && memcmp(n, ":method", 7) == 0) {
			r->method = v;
			r->method_len = vl;
		} else if (nl == 5 && memcmp(n, ":path", 5) == 0) {
			r->target = v;
			r->target_len = vl;
		} else if (nl == 10 && memcmp(n, ":authority", 10) == 0) {
			add_field(st, "host", 4, v, vl);
		}
		return 0; /* :scheme; nghttp2 refuses unknown pseudo-fields itself */
	}
	if (nl == 14 && memcmp(n, "content-length", 14) == 0) {
		int64_t len = 0;
		if (parse_int64(v, vl, 0, INT64_MAX, &len) == 0) {
			r->framing = H1_BODY_LENGTH;
			r->content_length = (uint64_t)len;
		}
	}
	if (nl == 6 && memcmp(n, "expect", 6) == 0)
		st->expect_100 = h1_token_ieq(v, vl, "100-continue");
	add_field(st, n, nl, v, vl);
	return 0;
}

static void submit_response(struct h2stream *st);
static nghttp2_nv nv(const char *name, const char *value);

/* The head is complete: the server's checks and routing (a refusal responds). */
static void begin(struct h2stream *st)
{
	struct request_ext *x = st->x;
	struct h1_request *r = &x->h1;
	st->begun = true;
	x->fields = r->fields;
	x->n_fields = r->n_fields;
	if (st->too_large) {
		http_respond_problem(&x->req, 431, "HEADERS_TOO_LARGE",
		                     "The request headers are larger than this server accepts.",
		                     NULL);
		return;
	}
	if (st->too_many || !r->method || !r->target) {
		if (r->method && r->target) {
			x->req.method = r->method;
			x->req.raw_uri = r->target;
		}
		struct reqcheck_verdict v = {
		    st->too_many ? 431 : 400, st->too_many ? "HEADERS_TOO_LARGE" : "BAD_REQUEST",
		    st->too_many ? "The request has more header fields than this server accepts."
		                 : "The request lacks :method or :path.",
		    NULL, false};
		request_refuse(x, &v);
		return;
	}
	r->form = r->target[0] == '/'                           ? H1_FORM_ORIGIN
	          : (r->target_len == 1 && r->target[0] == '*') ? H1_FORM_ASTERISK
	                                                        : H1_FORM_ABSOLUTE;
	request_begin(x);
}

static void dispatch(struct h2stream *st)
{
	if (!st->begun)
		begin(st);
	if (st->x->req.responded) {
		submit_response(st);
		return;
	}
	st->with_handler = true;
	st->h->handlers++;
	request_dispatch(st->x); /* ends in h2_after_handler */
}

static int on_frame_recv(nghttp2_session *ng, const nghttp2_frame *f, void *arg)
{
	struct h2sess *h = arg;
	if (f->hd.type != NGHTTP2_HEADERS && f->hd.type != NGHTTP2_DATA)
		return 0;
	struct h2stream *st = stream_of(h, f->hd.stream_id);
	if (!st || st->with_handler || st->submitted)
		return 0;
	if (f->hd.type == NGHTTP2_HEADERS && !st->begun) {
		begin(st);
		if (st->x->req.responded) { /* refused at its head: answer now, drop its body */
			submit_response(st);
			return 0;
		}
		if (st->expect_100 && !(f->hd.flags & NGHTTP2_FLAG_END_STREAM)) {
			/* As h1conn.c: the head passed, the client may send its body (RFC
			 * 9110 10.1.1). */
			nghttp2_nv cont = nv(":status", "100");
			nghttp2_submit_headers(ng, NGHTTP2_FLAG_NONE, st->id, NULL, &cont, 1, NULL);
		}
	}
	if (f->hd.flags & NGHTTP2_FLAG_END_STREAM)
		dispatch(st);
	return 0;
}

static int on_data(nghttp2_session *ng, uint8_t flags, int32_t id, const uint8_t *data, size_t len,
                   void *arg)
{
	(void)ng;
	(void)flags;
	struct h2stream *st = stream_of(arg, id);
	if (!st || st->submitted || st->with_handler)
		return 0;
	struct http_request *req = &st->x->req;
	if (req->body_too_large)
		return 0;
	if (buf_append(&req->body, (const char *)data, len) < 0) {
		req->body_too_large = true; /* 413 at END_STREAM */
		buf_free(&req->body);
	}
	return 0;
}

static int on_stream_close(nghttp2_session *ng, int32_t id, uint32_t error, void *arg)
{
	(void)ng;
	struct h2sess *h = arg;
	struct h2stream *st = stream_of(h, id);
	if (!st)
		return 0;
	nghttp2_session_set_stream_user_data(h->ng, id, NULL);
	if (st->with_handler) {
		st->reset = true; /* ended (and unlinked) by h2_after_handler */
	} else {
		stream_unlink(st);
		st->h = NULL;
		st->x->h2 = NULL;
		request_end(st->x, st->submitted && error == NGHTTP2_NO_ERROR);
		free(st);
	}
	return 0;
}

/* ---------- the response side ---------- */

static ssize_t read_body(nghttp2_session *ng, int32_t id, uint8_t *buf, size_t len, uint32_t *flags,
                         nghttp2_data_source *src, void *arg)
{
	(void)ng;
	(void)id;
	(void)arg;
	struct h2stream *st = src->ptr;
	struct http_request *req = &st->x->req;
	size_t left = req->resp_body_len - st->sent;
	size_t n = left < len ? left : len;
	memcpy(buf, req->resp_body + st->sent, n);
	st->sent += n;
	if (st->sent == req->resp_body_len)
		*flags |= NGHTTP2_DATA_FLAG_EOF;
	return (ssize_t)n;
}

/*
 * A handler's fields not passed on: those RFC 9113 8.2.2 forbids in HTTP/2
 * and Content-Length, which this file frames itself (as h1conn.c does).
 */
static bool connection_specific(const char *name)
{
	static const char *const names[] = {"connection", "keep-alive",       "transfer-encoding",
	                                    "upgrade",    "proxy-connection", "content-length"};
	for (size_t i = 0; i < sizeof names / sizeof *names; i++)
		if (strcasecmp(name, names[i]) == 0)
			return true;
	return false;
}

static nghttp2_nv nv(const char *name, const char *value)
{
	return (nghttp2_nv){(uint8_t *)name, (uint8_t *)value, strlen(name), strlen(value),
	                    NGHTTP2_NV_FLAG_NONE};
}

static char *lower_dup(struct arena *a, const char *s)
{
	size_t n = strlen(s);
	char *d = arena_alloc(a, n + 1);
	for (size_t i = 0; i <= n; i++)
		d[i] = (s[i] >= 'A' && s[i] <= 'Z') ? (char)(s[i] + 32) : s[i];
	return d;
}

/*
 * The same fields as h1conn.c's start_response writes: Date unless the
 * handler gave one, X-Request-Id, Content-Type, HSTS on TLS only, the
 * handler's fields, Content-Length as the HTTP/1.1 answer would frame it.
 */
static void submit_response(struct h2stream *st)
{
	struct h2sess *h = st->h;
	struct http_request *req = &st->x->req;
	st->submitted = true;
	if (!h)
		return;
	size_t n = 6;
	bool has_date = false;
	for (const struct http_header *hd = req->resp_headers; hd; hd = hd->next) {
		n++;
		if (strcasecmp(hd->name, "date") == 0)
			has_date = true;
	}
	nghttp2_nv *nva = arena_alloc(&req->arena, n * sizeof *nva);
	size_t k = 0;
	char *status = arena_alloc(&req->arena, 8);
	snprintf(status, 8, "%d", req->status);
	nva[k++] = nv(":status", status);
	if (!has_date) {
		char *date = arena_alloc(&req->arena, 32);
		time_t t = time(NULL);
		struct tm tm;
		gmtime_r(&t, &tm);
		strftime(date, 32, "%a, %d %b %Y %H:%M:%S GMT", &tm);
		nva[k++] = nv("date", date);
	}
	nva[k++] = nv("x-request-id", req->request_id);
	if (req->content_type)
		nva[k++] = nv("content-type", req->content_type);
	if (req->tls)
		nva[k++] = nv("strict-transport-security", HSTS_VALUE);
	bool is_head = req->method && strcmp(req->method, "HEAD") == 0;
	bool no_body = req->status < 200 || req->status == 204 || req->status == 304;
	int64_t length = (int64_t)req->resp_body_len;
	if (req->head_for_upstream)
		length = req->head_length;
	if (!no_body && length >= 0) {
		char *cl = arena_alloc(&req->arena, 24);
		snprintf(cl, 24, "%lld", (long long)length);
		nva[k++] = nv("content-length", cl);
	}
	for (const struct http_header *hd = req->resp_headers; hd; hd = hd->next)
		if (!connection_specific(hd->name))
			nva[k++] = nv(lower_dup(&req->arena, hd->name), hd->value);
	bool body = !is_head && !no_body && !req->head_for_upstream && req->resp_body_len;
	nghttp2_data_provider prd = {.source.ptr = st, .read_callback = read_body};
	if (nghttp2_submit_response(h->ng, st->id, nva, k, body ? &prd : NULL) != 0)
		nghttp2_submit_rst_stream(h->ng, NGHTTP2_FLAG_NONE, st->id, NGHTTP2_INTERNAL_ERROR);
}

void h2_after_handler(struct request_ext *x)
{
	struct http_request *req = &x->req;
	struct h2stream *st = x->h2;
	if (req->suspend_pending) { /* as on HTTP/1.1: a deferred job may be writing req */
		req->suspend_pending = false;
		req->suspended = true;
		return;
	}
	st->with_handler = false;
	struct h1conn *c = st->h ? st->h->c : NULL;
	if (st->h)
		st->h->handlers--;
	if (st->reset || !st->h) { /* the stream or the connection went while it ran */
		stream_unlink(st);
		x->h2 = NULL;
		request_end(x, false);
		free(st);
		if (c) /* a stream refused for it may come now; or the connection is done */
			h1_h2_kick(c);
		return;
	}
	if (!req->responded)
		http_respond_problem(req, 500, "INTERNAL", "The server could not answer.", NULL);
	submit_response(st);
	h1_h2_kick(st->h->c);
}

/* ---------- the session ---------- */

struct h2sess *h2_new(struct h1conn *c, struct http_worker *w, const struct listener *l,
                      const char *peer_ip)
{
	const struct config *cfg = w->server->cfg;
	struct h2sess *h = xcalloc(1, sizeof *h);
	h->c = c;
	h->w = w;
	h->l = l;
	snprintf(h->peer_ip, sizeof h->peer_ip, "%s", peer_ip);
	nghttp2_session_callbacks *cb;
	if (nghttp2_session_callbacks_new(&cb) != 0)
		fatal("nghttp2: out of memory");
	nghttp2_session_callbacks_set_on_begin_headers_callback(cb, on_begin_headers);
	nghttp2_session_callbacks_set_on_header_callback(cb, on_header);
	nghttp2_session_callbacks_set_on_frame_recv_callback(cb, on_frame_recv);
	nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cb, on_data);
	nghttp2_session_callbacks_set_on_stream_close_callback(cb, on_stream_close);
	nghttp2_option *opt;
	if (nghttp2_option_new(&opt) != 0)
		fatal("nghttp2: out of memory");
	nghttp2_option_set_max_send_header_block_length(opt, 65536);
	nghttp2_option_set_max_deflate_dynamic_table_size(opt, 4096);
	/* The defences of the file's comment (docs/configuration.md, "HTTP/2 defences"). */
	uint64_t streams = (uint64_t)cfg->server_http2_max_concurrent_streams;
	uint64_t burst = streams * 4 < 64 ? 64 : streams * 4 > 1000 ? 1000 : streams * 4;
	nghttp2_option_set_stream_reset_rate_limit(opt, burst, 33);
	size_t head_frames =
	    ((size_t)cfg->server_max_header_bytes + MAX_TARGET_BYTES + 16383) / 16384;
	nghttp2_option_set_max_continuations(opt, head_frames * 2 > 8 ? head_frames * 2 : 8);
	nghttp2_option_set_max_outbound_ack(opt, 100);
	nghttp2_option_set_no_closed_streams(opt, 1);
	int rc = nghttp2_session_server_new2(&h->ng, cb, h, opt);
	nghttp2_option_del(opt);
	nghttp2_session_callbacks_del(cb);
	if (rc != 0)
		fatal("nghttp2: cannot create a session");
	nghttp2_settings_entry iv[] = {
	    {NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS,
	     (uint32_t)cfg->server_http2_max_concurrent_streams},
	    {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, (uint32_t)cfg->server_http2_window_bytes},
	    {NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE,
	     (uint32_t)cfg->server_max_header_bytes + MAX_TARGET_BYTES},
	    {NGHTTP2_SETTINGS_ENABLE_PUSH, 0},
	};
	nghttp2_submit_settings(h->ng, NGHTTP2_FLAG_NONE, iv, sizeof iv / sizeof *iv);
	return h;
}

int h2_input(struct h2sess *h, const char *data, size_t n)
{
	ssize_t r = nghttp2_session_mem_recv(h->ng, (const uint8_t *)data, n);
	return r < 0 ? -1 : 0;
}

ssize_t h2_output(struct h2sess *h, const char **data)
{
	const uint8_t *p = NULL;
	ssize_t n = nghttp2_session_mem_send(h->ng, &p);
	*data = (const char *)p;
	return n;
}

bool h2_done(const struct h2sess *h)
{
	return !nghttp2_session_want_read(h->ng) && !nghttp2_session_want_write(h->ng);
}

bool h2_handlers(const struct h2sess *h)
{
	return h->handlers > 0;
}

void h2_drain(struct h2sess *h)
{
	nghttp2_submit_goaway(h->ng, NGHTTP2_FLAG_NONE,
	                      nghttp2_session_get_last_proc_stream_id(h->ng), NGHTTP2_NO_ERROR,
	                      NULL, 0);
}

void h2_free(struct h2sess *h)
{
	if (!h)
		return;
	/* Requests not with a handler end here; those with one end when it gives them back. */
	struct h2stream *st = h->streams, *next;
	for (; st; st = next) {
		next = st->next;
		st->h = NULL;
		if (!st->with_handler) {
			st->x->h2 = NULL;
			request_end(st->x, false);
			free(st);
		}
	}
	nghttp2_session_del(h->ng);
	free(h);
}
