/*
 * upstream_curl.c: libcurl multi driven by the worker loop, for https://
 * upstreams (see upstream_int.h).
 *
 * curl tells us which sockets to watch (CURLMOPT_SOCKETFUNCTION) and when
 * to wake (CURLMOPT_TIMERFUNCTION); the worker's epoll set watches them
 * next to the HTTP connections, and socket readiness is handed back with
 * curl_multi_socket_action. The connection cache lives in the multi handle,
 * so upstream keep-alive connections are reused across requests.
 */
#include "core/alloc.h"
#include "core/log.h"
#include "http/upstream_int.h"

#include <curl/curl.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>

#define IDLE_EASY_MAX 64

struct curl_client {
	struct http_worker *w;
	CURLM *multi;
	struct http_timer timer;
	CURL *idle[IDLE_EASY_MAX];
	int n_idle;
};

struct xfer {
	struct curl_client *cc;
	struct http_request *req;
	CURL *easy;
	struct curl_slist *headers;
	struct buf body;
	struct upstream_response resp;
	struct resp_headers rh;
	upstream_done_fn done;
	struct buf_sink sink; /* into body */
	char errbuf[CURL_ERROR_SIZE];
};

/* ---------- loop integration ---------- */

static void check_done(struct curl_client *cc);

static void on_socket_ready(void *arg, int fd, uint32_t events)
{
	struct curl_client *cc = arg;
	int flags = 0;
	if (events & EPOLLIN)
		flags |= CURL_CSELECT_IN;
	if (events & EPOLLOUT)
		flags |= CURL_CSELECT_OUT;
	if (events & (EPOLLERR | EPOLLHUP))
		flags |= CURL_CSELECT_ERR;
	int running;
	curl_multi_socket_action(cc->multi, fd, flags, &running);
	check_done(cc);
}

static int on_socket(CURL *easy, curl_socket_t s, int what, void *userp, void *socketp)
{
	(void)easy;
	struct curl_client *cc = userp;
	struct http_watch *watch = socketp;
	if (what == CURL_POLL_REMOVE) {
		if (watch) {
			http_worker_unwatch(cc->w, watch);
			free(watch);
			curl_multi_assign(cc->multi, s, NULL);
		}
		return 0;
	}
	if (!watch) {
		watch = xcalloc(1, sizeof *watch);
		watch->fd = s;
		watch->cb = on_socket_ready;
		watch->arg = cc;
		curl_multi_assign(cc->multi, s, watch);
	}
	uint32_t ev = 0;
	if (what & CURL_POLL_IN)
		ev |= EPOLLIN;
	if (what & CURL_POLL_OUT)
		ev |= EPOLLOUT;
	http_worker_watch(cc->w, watch, ev);
	return 0;
}

static void on_timeout(void *arg)
{
	struct curl_client *cc = arg;
	int running;
	curl_multi_socket_action(cc->multi, CURL_SOCKET_TIMEOUT, 0, &running);
	check_done(cc);
}

static int on_timer(CURLM *multi, long timeout_ms, void *userp)
{
	(void)multi;
	struct curl_client *cc = userp;
	http_timer_arm(&cc->timer, timeout_ms);
	return 0;
}

struct curl_client *curl_client_create(struct http_worker *w)
{
	struct curl_client *cc = xcalloc(1, sizeof *cc);
	cc->w = w;
	http_worker_add_timer(w, &cc->timer, on_timeout, cc);
	cc->multi = curl_multi_init();
	if (!cc->multi)
		fatal("curl_multi_init failed");
	curl_multi_setopt(cc->multi, CURLMOPT_SOCKETFUNCTION, on_socket);
	curl_multi_setopt(cc->multi, CURLMOPT_SOCKETDATA, cc);
	curl_multi_setopt(cc->multi, CURLMOPT_TIMERFUNCTION, on_timer);
	curl_multi_setopt(cc->multi, CURLMOPT_TIMERDATA, cc);
	curl_multi_setopt(cc->multi, CURLMOPT_MAXCONNECTS, 256L);
	return cc;
}

void curl_client_destroy(struct curl_client *cc)
{
	if (!cc)
		return;
	for (int i = 0; i < cc->n_idle; i++)
		curl_easy_cleanup(cc->idle[i]);
	curl_multi_cleanup(cc->multi);
	http_timer_arm(&cc->timer, -1);
	free(cc);
}

/* ---------- one transfer ---------- */

static size_t on_header(char *data, size_t size, size_t n, void *userp)
{
	struct xfer *x = userp;
	size_t len = size * n;
	if (len >= 5 && strncmp(data, "HTTP/", 5) == 0) {
		/* A new status line (after 1xx): forget earlier headers. */
		resp_headers_reset(&x->rh);
		return len;
	}
	const char *colon = memchr(data, ':', len);
	if (!colon)
		return len;
	const char *v = colon + 1;
	const char *end = data + len;
	while (v < end && (*v == ' ' || *v == '\t'))
		v++;
	while (end > v && (end[-1] == '\r' || end[-1] == '\n' || end[-1] == ' '))
		end--;
	resp_headers_add(&x->rh, data, (size_t)(colon - data), v, (size_t)(end - v));
	return len;
}

struct header_builder {
	struct xfer *x;
	const char *connection; /* the client's Connection header */
};

static void add_client_header(void *arg, const char *name, const char *value)
{
	struct header_builder *hb = arg;
	if (!upstream_pass_request_header(name, hb->connection) || !upstream_field_ok(name, value))
		return;
	value = upstream_request_value(&hb->x->req->arena, name, value);
	if (!value)
		return;
	char *line = arena_printf(&hb->x->req->arena, "%s: %s", name, value);
	hb->x->headers = curl_slist_append(hb->x->headers, line);
}

/*
 * Easy handles are recycled without curl_easy_reset: the options every
 * transfer shares are set once here, and curl_client_forward sets every
 * per-transfer option (method options included) each time.
 */
static CURL *take_easy(struct curl_client *cc)
{
	if (cc->n_idle)
		return cc->idle[--cc->n_idle];
	CURL *e = curl_easy_init();
	if (!e)
		fatal("curl_easy_init failed");
	curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(e, CURLOPT_PROXY, "");
	curl_easy_setopt(e, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_1_1);
	curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, buf_sink_write);
	curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, on_header);
	curl_easy_setopt(e, CURLOPT_TCP_NODELAY, 1L);
	/* Send the path exactly as checked and routed (no dot-segment squashing). */
	curl_easy_setopt(e, CURLOPT_PATH_AS_IS, 1L);
	return e;
}

static void give_easy(struct curl_client *cc, CURL *e)
{
	if (cc->n_idle < IDLE_EASY_MAX)
		cc->idle[cc->n_idle++] = e;
	else
		curl_easy_cleanup(e);
}

static void finish(struct xfer *x, CURLcode rc)
{
	struct upstream_response *r = &x->resp;
	if (rc == CURLE_OK) {
		long status = 0;
		curl_easy_getinfo(x->easy, CURLINFO_RESPONSE_CODE, &status);
		r->outcome = UPSTREAM_OK;
		r->status = (int)status;
		r->body = buf_steal(&x->body, &r->body_len);
		r->headers = resp_headers_finish(&x->rh);
		r->content_length = x->rh.content_length;
	} else {
		r->outcome =
		    rc == CURLE_OPERATION_TIMEDOUT ? UPSTREAM_TIMEOUT : UPSTREAM_UNAVAILABLE;
		r->error = x->sink.too_large ? "response too large"
		           : x->errbuf[0]    ? arena_strdup(&x->req->arena, x->errbuf)
		                             : curl_easy_strerror(rc);
		buf_free(&x->body);
	}
	curl_slist_free_all(x->headers);
	give_easy(x->cc, x->easy);
	x->done(x->req, r);
	free(x);
}

static void check_done(struct curl_client *cc)
{
	CURLMsg *m;
	int left;
	while ((m = curl_multi_info_read(cc->multi, &left))) {
		if (m->msg != CURLMSG_DONE)
			continue;
		CURL *e = m->easy_handle;
		CURLcode rc = m->data.result;
		struct xfer *x = NULL;
		curl_easy_getinfo(e, CURLINFO_PRIVATE, (char **)&x);
		curl_multi_remove_handle(cc->multi, e);
		finish(x, rc);
	}
}

void curl_client_forward(struct curl_client *cc, struct http_request *req,
                         const struct upstream_target *t, const struct http_header *extra,
                         upstream_done_fn done)
{
	struct xfer *x = xcalloc(1, sizeof *x);
	x->cc = cc;
	x->req = req;
	x->done = done;
	resp_headers_init(&x->rh, &req->arena);
	buf_init(&x->body, t->max_response_bytes);
	x->sink.buf = &x->body;
	x->easy = take_easy(cc);
	CURL *e = x->easy;
	if (req->raw_uri[0] != '/') {
		/* Appended to base_url, anything else could change the host. */
		snprintf(x->errbuf, sizeof x->errbuf, "request target is not a path");
		finish(x, CURLE_URL_MALFORMAT);
		return;
	}

	size_t bl = strlen(t->base_url);
	while (bl && t->base_url[bl - 1] == '/')
		bl--;
	char *url = arena_printf(&req->arena, "%.*s%s", (int)bl, t->base_url, req->raw_uri);
	curl_easy_setopt(e, CURLOPT_URL, url);
	curl_easy_setopt(e, CURLOPT_PRIVATE, x);
	curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long)t->timeout_ms);
	curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, (long)t->connect_timeout_ms);
	if (t->ca_file && t->ca_file[0])
		curl_easy_setopt(e, CURLOPT_CAINFO, t->ca_file);
	curl_easy_setopt(e, CURLOPT_WRITEDATA, &x->sink);
	curl_easy_setopt(e, CURLOPT_HEADERDATA, x);
	curl_easy_setopt(e, CURLOPT_ERRORBUFFER, x->errbuf);

	/* Every method option, every time: the handle keeps the last transfer's. */
	const char *m = req->method;
	curl_easy_setopt(e, CURLOPT_HTTPGET, 1L); /* GET, no body, not HEAD */
	curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, NULL);
	if (strcmp(m, "HEAD") == 0) {
		curl_easy_setopt(e, CURLOPT_NOBODY, 1L);
	} else {
		if (req->body.len || strcmp(m, "POST") == 0 || strcmp(m, "PUT") == 0 ||
		    strcmp(m, "PATCH") == 0) {
			curl_easy_setopt(e, CURLOPT_POSTFIELDS,
			                 req->body.data ? req->body.data : "");
			curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)req->body.len);
		}
		if (strcmp(m, "GET") != 0 || req->body.len)
			curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, m);
	}

	struct header_builder hb = {x, http_header(req, "Connection")};
	http_each_header(req, add_client_header, &hb);
	/* Suppress what curl would add on its own: the upstream sees the client's request. */
	x->headers = curl_slist_append(x->headers, "Expect:");
	if (!http_header(req, "Content-Type"))
		x->headers = curl_slist_append(x->headers, "Content-Type:");
	if (!http_header(req, "Accept"))
		x->headers = curl_slist_append(x->headers, "Accept:");
	for (const struct http_header *h = extra; h; h = h->next)
		x->headers = curl_slist_append(
		    x->headers, arena_printf(&req->arena, "%s: %s", h->name, h->value));
	curl_easy_setopt(e, CURLOPT_HTTPHEADER, x->headers);

	CURLMcode mc = curl_multi_add_handle(cc->multi, e);
	if (mc != CURLM_OK) {
		snprintf(x->errbuf, sizeof x->errbuf, "%s", curl_multi_strerror(mc));
		finish(x, CURLE_FAILED_INIT);
	}
}
