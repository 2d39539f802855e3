/*
 * h1conn.c: HTTP/1.1 client connections on a worker loop, the project's
 * own connection layer (issue 14), over plain TCP or a GnuTLS session
 * (crypto/tls.h).
 *
 * Each connection is registered once, edge-triggered for both directions
 * (EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET), and never changed
 * afterwards: a request that waits for a pool job or an upstream keeps the
 * registration, the edges that arrive meanwhile are only noted
 * (readable / writable), so suspending and resuming cost no system call.
 * A short read on a plain socket means the kernel buffer is empty, so the
 * next read waits for the next edge instead of ending in EAGAIN.
 *
 * The state machine is conn.h's; every change goes through conn_move. One
 * request at a time per connection: a head is read into a bounded buffer
 * (grown from 4 KiB up to the head limit), copied into the request's
 * arena and parsed there by h1_parse_request (strict RFC 9112), the body
 * (Content-Length or chunked, decoded strictly) collected up to the
 * listener's body limit, then the handler runs. The response is written
 * with one sendmsg: the status line and every header field built once into
 * one buffer, the body as a second iovec. Pipelined requests wait in the
 * input buffer until the one before them is answered.
 *
 * Deadlines: from the connection's start (TLS handshake included) and
 * from the end of each response, the next head must be complete within
 * [server] header_timeout_s (a partial head then gets a 408); a body being
 * read or a response being written must progress every
 * [server] connection_timeout_s. Each deadline list holds connections in
 * deadline order (one timeout per list), so one timer per worker serves
 * them all. A refusal that closes the connection shuts the write side and
 * drops what the client still sends for a moment (lingering close), so
 * the client reads the answer instead of a reset.
 */
#include "core/alloc.h"
#include "core/clock.h"
#include "core/log.h"
#include "core/metrics.h"
#include "core/str.h"
#include "crypto/tls.h"
#include "http/conn.h"
#include "http/server_int.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#define IN_INITIAL   4096
#define HEAD_SLACK   1024          /* request line and line ends beyond the two limits */
#define DISCARD_MAX  (1024 * 1024) /* body bytes dropped after a refusal before closing */
#define ACCEPT_BATCH 16            /* accepts per wake-up: the other workers get some */
#define HSTS_VALUE   "max-age=63072000; includeSubDomains"
#define CONTINUE_100 "HTTP/1.1 100 Continue\r\n\r\n"

enum { IO_AGAIN = -1, IO_FAIL = -2 };
enum step { STEP_CONTINUE, STEP_WAIT, STEP_CLOSED };

struct h1conn {
	struct http_watch watch; /* the socket */
	struct http_worker *w;
	struct listener *l;
	enum conn_state state;
	struct tls_session *tls;
	char peer_ip[48];
	bool counted; /* holds a slot of l->conns for key */
	struct connlimit_key key;
	bool readable, writable, rdhup; /* edges seen and not yet used up */
	bool in_run;                    /* conn_run is on the stack */
	bool close_after;               /* close once this response is written */
	bool polled; /* its first event has run: what the client sent by then was read */
	/* input: in[in_pos, in_len) is read and not yet consumed */
	char *in;
	size_t in_cap, in_len, in_pos, scan;
	/* the request under way */
	struct request_ext *x;
	struct h1_body body;
	bool discard;          /* the body is dropped: the request was answered at its head */
	bool discard_overflow; /* more than DISCARD_MAX dropped: close instead */
	uint64_t discarded;
	bool cont_pending; /* "100 Continue" (in iov) still to send */
	/* output */
	struct iovec iov[2];
	int iov_n, iov_first; /* iov[iov_first .. iov_n) still to send */
	/* deadlines */
	struct conn_list *tl;
	struct h1conn *tprev, *tnext;
	int64_t deadline_ms;
	struct h1conn *prev, *next; /* the worker's connections */
	struct h2sess *h2;          /* CONN_H2: the HTTP/2 session */
	bool any_request;           /* a request head came: no h2c preface any more */
};

#define H2C_PREFACE     "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
#define H2C_PREFACE_LEN (sizeof H2C_PREFACE - 1)

static struct metric m_conn_refused =
    METRIC_INIT("portcullis_connections_refused_total",
                "Connections closed at accept: their address held its limit", "counter");
static struct metric m_conn_over =
    METRIC_INIT("portcullis_connections_over_limit_total",
                "Connections closed at accept: the listener held max_connections", "counter");
static struct metric m_conn_evicted =
    METRIC_INIT("portcullis_connections_evicted_total",
                "Connections waiting for a request head closed to make room for a new one "
                "(the listener held max_connections)",
                "counter");
static struct metric m_head_timeouts =
    METRIC_INIT("portcullis_header_timeouts_total",
                "Connections closed because no complete request head came within "
                "header_timeout_s",
                "counter");
static struct metric m_idle_timeouts =
    METRIC_INIT("portcullis_idle_timeouts_total",
                "Connections closed because a body or a response made no progress within "
                "connection_timeout_s",
                "counter");

void h1_register_metrics(void)
{
	metrics_register(&m_conn_refused);
	metrics_register(&m_conn_over);
	metrics_register(&m_conn_evicted);
	metrics_register(&m_head_timeouts);
	metrics_register(&m_idle_timeouts);
}

static void conn_run(struct h1conn *c);
static enum step flush_out(struct h1conn *c);
static enum step fill_in(struct h1conn *c, size_t max, bool *full);

/* ---------- deadlines ---------- */

static void tl_remove(struct h1conn *c)
{
	struct conn_list *t = c->tl;
	if (!t)
		return;
	if (c->tprev)
		c->tprev->tnext = c->tnext;
	else
		t->first = c->tnext;
	if (c->tnext)
		c->tnext->tprev = c->tprev;
	else
		t->last = c->tprev;
	c->tprev = c->tnext = NULL;
	c->tl = NULL;
}

/* (Re)start c's deadline on list t: from now, t's timeout. */
static void tl_push(struct h1conn *c, struct conn_list *t)
{
	tl_remove(c);
	c->deadline_ms = http_loop_mono_ms() + t->timeout_ms;
	c->tprev = t->last;
	if (t->last)
		t->last->tnext = c;
	else
		t->first = c;
	t->last = c;
	c->tl = t;
	struct http_timer *timer = &c->w->conn_timer;
	if (timer->at_ms < 0 || timer->at_ms > c->deadline_ms)
		timer->at_ms = c->deadline_ms;
}

/* ---------- socket I/O ---------- */

static ssize_t conn_recv(struct h1conn *c, char *buf, size_t n)
{
	if (c->tls) {
		ssize_t r = tls_session_recv(c->tls, buf, n);
		if (r == TLS_AGAIN) {
			c->readable = false;
			return IO_AGAIN;
		}
		return r < 0 ? IO_FAIL : r;
	}
	ssize_t r = recv(c->watch.fd, buf, n, 0);
	if (r > 0) {
		/* A short read emptied the socket: wait for the next edge (unless it ended). */
		if ((size_t)r < n && !c->rdhup)
			c->readable = false;
		return r;
	}
	if (r == 0)
		return 0;
	if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) {
		c->readable = false;
		return IO_AGAIN;
	}
	return IO_FAIL;
}

/* Send from iov[iov_first..iov_n): bytes taken, IO_AGAIN or IO_FAIL. */
static ssize_t conn_send(struct h1conn *c)
{
	if (c->tls) {
		struct iovec *v = &c->iov[c->iov_first];
		ssize_t r = tls_session_send(c->tls, v->iov_base, v->iov_len);
		if (r == TLS_AGAIN)
			return IO_AGAIN;
		return r < 0 ? IO_FAIL : r;
	}
	struct msghdr m = {.msg_iov = &c->iov[c->iov_first],
	                   .msg_iovlen = (size_t)(c->iov_n - c->iov_first)};
	ssize_t r = sendmsg(c->watch.fd, &m, MSG_NOSIGNAL);
	if (r >= 0)
		return r;
	if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
		return IO_AGAIN;
	return IO_FAIL;
}

/*
 * Room to read into: the consumed bytes dropped, then the buffer grown up
 * to max. False when it is full at max.
 */
static bool make_room(struct h1conn *c, size_t max)
{
	if (c->in_pos == c->in_len) {
		c->in_pos = c->in_len = 0;
	} else if (c->in_len == c->in_cap && c->in_pos > 0) {
		memmove(c->in, c->in + c->in_pos, c->in_len - c->in_pos);
		c->in_len -= c->in_pos;
		c->in_pos = 0;
	}
	if (c->in_len < c->in_cap)
		return true;
	if (c->in_cap >= max)
		return false;
	size_t cap = c->in_cap ? c->in_cap * 2 : IN_INITIAL;
	c->in_cap = cap < max ? cap : max;
	c->in = xrealloc(c->in, c->in_cap);
	return true;
}

/* ---------- opening and closing ---------- */

static void on_conn_io(void *arg, int fd, uint32_t events);

static void addr_text(const struct sockaddr_storage *ss, char out[48])
{
	out[0] = '\0';
	if (ss->ss_family == AF_INET)
		str_ipv4(&((const struct sockaddr_in *)ss)->sin_addr, out);
	else if (ss->ss_family == AF_INET6 &&
	         !inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)ss)->sin6_addr, out, 48))
		out[0] = '\0';
}

static void conn_close(struct h1conn *c)
{
	struct http_worker *w = c->w;
	if (c->x) { /* a request not with its handler: reading its body or writing its answer */
		request_end(c->x, false);
		c->x = NULL;
	}
	conn_move(&c->state, CONN_CLOSED);
	tl_remove(c);
	if (c->prev)
		c->prev->next = c->next;
	else
		w->conns = c->next;
	if (c->next)
		c->next->prev = c->prev;
	h2_free(c->h2); /* its requests with a handler end when the handler returns */
	c->h2 = NULL;
	tls_session_free(c->tls);
	close(c->watch.fd); /* also leaves the epoll set */
	if (c->counted)
		connlimit_release(c->l->conns, &c->key);
	atomic_fetch_sub(&c->l->open, 1);
	free(c->in);
	c->in = NULL;
	/*
	 * Freed after the current batch of events (h1_reap): an event of this
	 * batch may still name c (another connection's accept evicted it).
	 */
	c->next = w->dead;
	w->dead = c;
}

void h1_reap(struct http_worker *w)
{
	while (w->dead) {
		struct h1conn *c = w->dead;
		w->dead = c->next;
		free(c);
	}
}

/*
 * The listener holds max_connections: the connection of this worker that
 * has waited longest for a request head (idle after a response, or
 * dripping a head, or stuck in its handshake) gives way to the new one, as
 * nginx reuses idle keep-alive connections. A flood of idle or slow
 * connections then only cycles through the oldest of its own, while a
 * client that sends its request at once is served. A connection accepted
 * but not yet polled is never taken: its request may be waiting unread
 * (accepted earlier in this batch of accepts, or its first event not yet
 * run), and closing it would drop a client that did nothing wrong. False
 * when this worker has none (every connection has a request under way or
 * has not been read yet): the new connection is then refused.
 */
static bool evict_waiting(struct http_worker *w, struct listener *l)
{
	for (struct h1conn *c = w->head_wait.first; c; c = c->tnext)
		if (c->l == l && c->polled) {
			metric_add(&m_conn_evicted, 1);
			conn_close(c); /* gives back its share of l->open; ours was taken */
			return true;
		}
	return false;
}

/* Admit an accepted socket: the listener's and the address's limits, then a connection. */
static void admit(struct worker_listener *wl, int fd, const struct sockaddr_storage *ss,
                  socklen_t len)
{
	struct http_worker *w = wl->w;
	struct listener *l = wl->l;
	char ip[48];
	addr_text(ss, ip);
	if (atomic_fetch_add(&l->open, 1) >= l->max_connections && !evict_waiting(w, l)) {
		atomic_fetch_sub(&l->open, 1);
		metric_add(&m_conn_over, 1);
		close(fd);
		return;
	}
	/* Trusted proxies speak for many clients and are not counted. */
	struct connlimit_key key;
	bool counted = false;
	if (connlimit_key((const struct sockaddr *)ss, len, &key) &&
	    !(w->server->n_trusted && ip[0] && server_is_trusted_proxy(w->server, ip))) {
		if (!connlimit_acquire(l->conns, &key)) {
			atomic_fetch_sub(&l->open, 1);
			metric_add(&m_conn_refused, 1);
			close(fd);
			return;
		}
		counted = true;
	}
	int one = 1;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
	struct h1conn *c = xcalloc(1, sizeof *c);
	c->w = w;
	c->l = l;
	c->counted = counted;
	c->key = key;
	memcpy(c->peer_ip, ip, sizeof c->peer_ip);
	c->writable = true;
	c->state = CONN_HEAD;
	if (l->tls) {
		c->tls = tls_session_new(l->tls_srv, fd,
		                         w->server->cfg->server_http2_max_concurrent_streams > 0);
		c->state = CONN_HANDSHAKE;
	}
	c->watch = (struct http_watch){.fd = fd, .cb = on_conn_io, .arg = c};
	c->next = w->conns;
	if (w->conns)
		w->conns->prev = c;
	w->conns = c;
	if (l->tls && !c->tls) {
		conn_close(c);
		return;
	}
	tl_push(c, &w->head_wait);
	http_worker_watch(w, &c->watch, EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET);
}

void h1_on_accept(void *arg, int fd, uint32_t events)
{
	(void)events;
	struct worker_listener *wl = arg;
	if (wl->w->draining)
		return;
	for (int i = 0; i < ACCEPT_BATCH; i++) {
		struct sockaddr_storage ss;
		ss.ss_family = AF_UNSPEC;
		socklen_t len = sizeof ss;
		int cfd = accept4(fd, (struct sockaddr *)&ss, &len, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (cfd < 0) {
			if (errno == EINTR || errno == ECONNABORTED)
				continue;
			if (errno == EMFILE || errno == ENFILE)
				log_event(LOG_WARN, "accept_failed", "listener", wl->l->name,
				          "error", strerror(errno), NULL);
			return;
		}
		admit(wl, cfd, &ss, len);
	}
}

/* ---------- the response ---------- */

static void refresh_date(struct http_worker *w)
{
	int64_t now_s = http_loop_now_ms() / 1000;
	if (now_s == w->date_s)
		return;
	w->date_s = now_s;
	time_t t = (time_t)now_s;
	struct tm tm;
	gmtime_r(&t, &tm);
	strftime(w->date, sizeof w->date, "Date: %a, %d %b %Y %H:%M:%S GMT\r\n", &tm);
}

/* Fields the connection layer writes itself: a handler's copy is dropped (or read). */
static bool own_field(const char *name)
{
	switch (strlen(name)) { /* the length first: most fields are none of them */
	case 14:
		return strcasecmp(name, "Content-Length") == 0;
	case 17:
		return strcasecmp(name, "Transfer-Encoding") == 0;
	case 10:
		return strcasecmp(name, "Connection") == 0;
	default:
		return false;
	}
}

static void put_field(struct strbuf *b, const char *name, const char *value)
{
	strbuf_puts(b, name);
	strbuf_put(b, ": ", 2);
	strbuf_puts(b, value);
	strbuf_put(b, "\r\n", 2);
}

/*
 * Build the status line and header fields once, into one buffer of the
 * request's arena, and move to WRITE. The body goes as a second iovec.
 */
static void start_response(struct h1conn *c)
{
	struct request_ext *x = c->x;
	struct http_request *req = &x->req;
	struct http_worker *w = c->w;
	int status = req->status;
	bool is_head = req->method && strcmp(req->method, "HEAD") == 0;
	bool no_body = status < 200 || status == 204 || status == 304;
	bool close =
	    c->close_after || x->close_after || w->draining || !x->h1.keep_alive || c->rdhup;
	bool has_date = false;
	size_t need = 256 + strlen(req->request_id) + sizeof w->date + sizeof HSTS_VALUE;
	if (req->content_type)
		need += strlen(req->content_type) + 16;
	for (const struct http_header *h = req->resp_headers; h; h = h->next) {
		size_t nl = strlen(h->name);
		need += nl + strlen(h->value) + 4;
		if (nl == 4 && strcasecmp(h->name, "Date") == 0)
			has_date = true;
		else if (nl == 10 && strcasecmp(h->name, "Connection") == 0 &&
		         strcasecmp(h->value, "close") == 0)
			close = true;
	}
	char *head = arena_alloc(&req->arena, need);
	struct strbuf b;
	strbuf_init(&b, head, need);
	strbuf_put(&b, "HTTP/1.1 ", 9);
	strbuf_put_i64(&b, status);
	strbuf_put(&b, " ", 1);
	strbuf_puts(&b, http_reason_phrase(status));
	strbuf_put(&b, "\r\n", 2);
	if (!has_date) {
		refresh_date(w);
		strbuf_puts(&b, w->date);
	}
	put_field(&b, "X-Request-Id", req->request_id);
	if (req->content_type)
		put_field(&b, "Content-Type", req->content_type);
	if (req->tls)
		put_field(&b, "Strict-Transport-Security", HSTS_VALUE);
	for (const struct http_header *h = req->resp_headers; h; h = h->next)
		if (!own_field(h->name))
			put_field(&b, h->name, h->value);
	int64_t length = (int64_t)req->resp_body_len;
	if (req->head_for_upstream)
		length = req->head_length; /* the GET's, or none (-1) */
	if (!no_body && length >= 0) {
		strbuf_put(&b, "Content-Length: ", 16);
		strbuf_put_i64(&b, length);
		strbuf_put(&b, "\r\n", 2);
	}
	if (close)
		strbuf_puts(&b, "Connection: close\r\n");
	else if (x->h1.minor == 0)
		strbuf_puts(&b, "Connection: keep-alive\r\n");
	strbuf_put(&b, "\r\n", 2);
	if (b.overflow) /* need counts every byte written: cannot happen */
		fatal("response head larger than counted");
	c->close_after = close;
	c->iov[0] = (struct iovec){head, b.len};
	c->iov_n = 1;
	c->iov_first = 0;
	if (!is_head && !no_body && !req->head_for_upstream && req->resp_body_len)
		c->iov[c->iov_n++] = (struct iovec){req->resp_body, req->resp_body_len};
	conn_move(&c->state, CONN_WRITE);
	tl_push(c, &w->idle_wait);
}

void h1_after_handler(struct request_ext *x)
{
	if (x->h2) {
		h2_after_handler(x);
		return;
	}
	struct http_request *req = &x->req;
	struct h1conn *c = x->c;
	/* Check suspension first: a deferred job may already be writing req. */
	if (req->suspend_pending) {
		req->suspend_pending = false;
		req->suspended = true;
		return;
	}
	if (!req->responded)
		http_respond_problem(req, 500, "INTERNAL", "The server could not answer.", NULL);
	start_response(c);
	if (!c->in_run)
		conn_run(c);
}

/* ---------- the states ---------- */

static enum step step_handshake(struct h1conn *c)
{
	int rc = tls_session_handshake(c->tls);
	if (rc == TLS_AGAIN)
		return STEP_WAIT;
	if (rc != 0) {
		conn_close(c);
		return STEP_CLOSED;
	}
	c->readable = true; /* the client's first request may have come with its Finished */
	if (tls_session_h2(c->tls)) {
		conn_move(&c->state, CONN_H2);
		c->h2 = h2_new(c, c->w, c->l, c->peer_ip);
		tl_push(c, &c->w->idle_wait);
		return STEP_CONTINUE;
	}
	conn_move(&c->state, CONN_HEAD);
	return STEP_CONTINUE;
}

void h1_h2_kick(struct h1conn *c)
{
	if (!c->in_run)
		conn_run(c);
}

/*
 * HTTP/2: what nghttp2 has to send goes out first (one piece at a time:
 * its bytes live until the next h2_output), then what the socket has is
 * fed in. Reads and writes restart the idle deadline.
 */
static enum step step_h2(struct h1conn *c)
{
	for (;;) {
		if (c->iov_first < c->iov_n) {
			enum step st = flush_out(c);
			if (st != STEP_CONTINUE)
				return st;
		}
		const char *out = NULL;
		ssize_t n = h2_output(c->h2, &out);
		if (n < 0) {
			conn_close(c);
			return STEP_CLOSED;
		}
		if (n > 0) {
			c->iov[0] = (struct iovec){(char *)out, (size_t)n};
			c->iov_n = 1;
			c->iov_first = 0;
			tl_push(c, &c->w->idle_wait);
			continue;
		}
		if (h2_done(c->h2) && !h2_handlers(c->h2)) {
			conn_close(c);
			return STEP_CLOSED;
		}
		if (c->in_pos == c->in_len) { /* what h2c's preface came with is fed first */
			bool full = false;
			enum step st = fill_in(c, IN_INITIAL * 4, &full);
			if (st != STEP_CONTINUE)
				return st;
		}
		tl_push(c, &c->w->idle_wait);
		int rc = h2_input(c->h2, c->in + c->in_pos, c->in_len - c->in_pos);
		c->in_pos = c->in_len;
		if (rc < 0) { /* nghttp2 queued its GOAWAY: one try to send it, then close */
			n = h2_output(c->h2, &out);
			if (n > 0 && c->writable) {
				c->iov[0] = (struct iovec){(char *)out, (size_t)n};
				c->iov_n = 1;
				c->iov_first = 0;
				if (flush_out(c) == STEP_CLOSED)
					return STEP_CLOSED;
			}
			conn_close(c);
			return STEP_CLOSED;
		}
	}
}

/*
 * Read what the socket has into the input buffer (grown up to max):
 * STEP_CONTINUE with new bytes, STEP_WAIT when there are none yet, or
 * STEP_CLOSED when the client closed or failed (c is gone then). *full
 * when the buffer is full at max (nothing was read).
 */
static enum step fill_in(struct h1conn *c, size_t max, bool *full)
{
	if (!c->readable && !(c->tls && tls_session_pending(c->tls)))
		return STEP_WAIT;
	if (!make_room(c, max)) {
		*full = true;
		return STEP_WAIT;
	}
	ssize_t n = conn_recv(c, c->in + c->in_len, c->in_cap - c->in_len);
	if (n > 0) {
		c->in_len += (size_t)n;
		return STEP_CONTINUE;
	}
	if (n == IO_AGAIN)
		return STEP_WAIT;
	conn_close(c);
	return STEP_CLOSED;
}

static size_t head_limit(const struct h1conn *c)
{
	return (size_t)c->w->server->cfg->server_max_header_bytes + MAX_TARGET_BYTES + HEAD_SLACK;
}

/* A head did not end within the limit: 414 when the request line alone is too long, else 431. */
static enum step head_too_large(struct h1conn *c)
{
	struct request_ext *x = request_new(c->w, c->l, c, c->peer_ip, c->tls != NULL);
	c->x = x;
	size_t scan = c->in_len - c->in_pos;
	if (scan > MAX_TARGET_BYTES + 64)
		scan = MAX_TARGET_BYTES + 64;
	bool line_too_long = !memchr(c->in + c->in_pos, '\n', scan);
	struct reqcheck_verdict v = {431, "HEADERS_TOO_LARGE",
	                             "The request headers are larger than this server accepts.",
	                             NULL, true};
	if (line_too_long)
		v = (struct reqcheck_verdict){
		    414, "URI_TOO_LONG", "The request target is longer than this server accepts.",
		    "path", true};
	request_refuse(x, &v);
	c->in_pos = c->in_len; /* what was read of it is dropped */
	start_response(c);
	return STEP_CONTINUE;
}

/* NUL-terminate what the parser points at, in the arena copy (each is followed by SP, ':' or CR).
 */
static void terminate_head(struct h1_request *h)
{
	((char *)h->method)[h->method_len] = '\0';
	((char *)h->target)[h->target_len] = '\0';
	for (size_t i = 0; i < h->n_fields; i++) {
		struct h1_field *f = &h->fields[i];
		((char *)f->name)[f->name_len] = '\0';
		((char *)f->value)[f->value_len] = '\0';
	}
}

static bool has_body(const struct h1_request *h)
{
	return h->framing == H1_BODY_CHUNKED ||
	       (h->framing == H1_BODY_LENGTH && h->content_length > 0);
}

static enum step head_complete(struct h1conn *c, size_t end)
{
	c->any_request = true;
	struct request_ext *x = request_new(c->w, c->l, c, c->peer_ip, c->tls != NULL);
	struct http_request *req = &x->req;
	c->x = x;
	tl_remove(c);
	char *head = arena_alloc(&req->arena, end + 1);
	memcpy(head, c->in + c->in_pos, end);
	head[end] = '\0';
	c->in_pos += end;
	c->scan = 0;
	struct reqcheck_verdict v;
	if (h1_parse_request(head, end, &x->h1, &v) < 0) {
		/* The body's framing is unknown: answer, then close. */
		if (x->h1.method_len && x->h1.target_len) {
			terminate_head(&x->h1);
			req->method = x->h1.method;
			req->raw_uri = x->h1.target;
		}
		/* The redirect listener redirects a head with a bad Host (to the listen address).
		 */
		if (c->l->redirect && !v.close && req->raw_uri)
			request_begin(x);
		else
			request_refuse(x, &v);
		c->close_after = true;
		start_response(c);
		return STEP_CONTINUE;
	}
	terminate_head(&x->h1);
	x->fields = x->h1.fields;
	x->n_fields = x->h1.n_fields;
	request_begin(x);
	if (!has_body(&x->h1)) {
		if (req->responded) {
			start_response(c);
		} else {
			conn_move(&c->state, CONN_HANDLER);
			request_dispatch(x);
		}
		return STEP_CONTINUE;
	}
	h1_body_init_request(&c->body, &x->h1);
	c->discard = false;
	c->discard_overflow = false;
	c->discarded = 0;
	if (req->responded) {
		/*
		 * Answered at its head (404, 431, ...): the body is read and dropped
		 * so the connection can carry the next request; not when it is too
		 * large anyway, or the client waits for a 100 it will not get.
		 */
		if (req->status == 413 || x->close_after || x->h1.expect_continue) {
			c->close_after = true;
			start_response(c);
			return STEP_CONTINUE;
		}
		c->discard = true;
	} else if (x->h1.expect_continue) {
		c->iov[0] = (struct iovec){(char *)CONTINUE_100, sizeof CONTINUE_100 - 1};
		c->iov_n = 1;
		c->iov_first = 0;
		c->cont_pending = true;
	}
	conn_move(&c->state, CONN_BODY);
	tl_push(c, &c->w->idle_wait);
	return STEP_CONTINUE;
}

/*
 * [server] h2c: a plain connection whose first bytes are the HTTP/2 client
 * preface (RFC 9113 3.3, prior knowledge) becomes an HTTP/2 one. 1 when it
 * did, 0 when it is HTTP/1.1, -1 while the bytes so far are a prefix of it.
 */
static int h2c_preface(struct h1conn *c)
{
	const struct config *cfg = c->w->server->cfg;
	if (c->tls || c->any_request || c->in_pos != 0 || strcmp(cfg->server_h2c, "true") != 0 ||
	    cfg->server_http2_max_concurrent_streams == 0)
		return 0;
	size_t n = c->in_len < H2C_PREFACE_LEN ? c->in_len : H2C_PREFACE_LEN;
	if (memcmp(c->in, H2C_PREFACE, n) != 0)
		return 0;
	if (n < H2C_PREFACE_LEN)
		return -1;
	tl_remove(c);
	conn_move(&c->state, CONN_H2);
	c->h2 = h2_new(c, c->w, c->l, c->peer_ip);
	tl_push(c, &c->w->idle_wait);
	return 1;
}

static enum step step_head(struct h1conn *c)
{
	size_t limit = head_limit(c);
	for (;;) {
		int h2c = c->in_len ? h2c_preface(c) : 0;
		if (h2c > 0)
			return STEP_CONTINUE;
		if (c->in_pos < c->in_len && h2c == 0) {
			size_t end =
			    h1_find_head_end(c->in + c->in_pos, c->in_len - c->in_pos, &c->scan);
			if (end)
				return head_complete(c, end);
			if (c->in_len - c->in_pos >= limit)
				return head_too_large(c);
		}
		/* The client closing (or failing) between requests or inside a head ends it. */
		bool full = false;
		enum step st = fill_in(c, limit + HEAD_SLACK, &full);
		if (full)
			return head_too_large(c);
		if (st != STEP_CONTINUE)
			return st;
	}
}

static int body_sink(void *arg, const char *data, size_t n)
{
	struct h1conn *c = arg;
	struct http_request *req = &c->x->req;
	if (c->discard || req->body_too_large) {
		c->discarded += n;
		if (c->discarded > DISCARD_MAX) {
			c->discard_overflow = true;
			return 1;
		}
		return 0;
	}
	if (buf_append(&req->body, data, n) < 0) {
		req->body_too_large = true; /* 413 once the body is read */
		buf_free(&req->body);
	}
	return 0;
}

/* The body could not be read to its end: answer (unless answered) and close. */
static enum step body_failed(struct h1conn *c)
{
	struct request_ext *x = c->x;
	if (!x->req.responded) {
		if (c->discard_overflow)
			request_too_large(x);
		else
			http_respond_problem(&x->req, 400, "BAD_REQUEST",
			                     "The chunked request body is malformed.", NULL);
	}
	c->close_after = true;
	start_response(c);
	return STEP_CONTINUE;
}

static enum step step_body(struct h1conn *c)
{
	for (;;) {
		if (c->cont_pending) {
			enum step st = flush_out(c);
			if (st != STEP_CONTINUE)
				return st;
			c->cont_pending = false;
		}
		if (c->in_pos < c->in_len) {
			ssize_t used = h1_body_feed(&c->body, c->in + c->in_pos,
			                            c->in_len - c->in_pos, body_sink, c);
			if (used < 0)
				return body_failed(c);
			c->in_pos += (size_t)used;
			if (c->body.done) {
				tl_remove(c);
				if (c->x->req.responded) {
					start_response(c);
				} else {
					conn_move(&c->state, CONN_HANDLER);
					request_dispatch(c->x);
				}
				return STEP_CONTINUE;
			}
			tl_push(c, &c->w->idle_wait); /* progress */
		}
		/* Everything read was consumed, so there is room; a close aborts the request. */
		bool full = false;
		enum step st = fill_in(c, IN_INITIAL, &full);
		if (st != STEP_CONTINUE)
			return st;
	}
}

/* Send iov[iov_first..iov_n): STEP_CONTINUE once all of it went out. */
static enum step flush_out(struct h1conn *c)
{
	while (c->iov_first < c->iov_n) {
		if (!c->writable)
			return STEP_WAIT;
		ssize_t n = conn_send(c);
		if (n == IO_AGAIN) {
			c->writable = false;
			return STEP_WAIT;
		}
		if (n < 0) {
			conn_close(c);
			return STEP_CLOSED;
		}
		size_t left = (size_t)n;
		while (left && c->iov_first < c->iov_n) {
			struct iovec *v = &c->iov[c->iov_first];
			size_t take = left < v->iov_len ? left : v->iov_len;
			v->iov_base = (char *)v->iov_base + take;
			v->iov_len -= take;
			left -= take;
			if (v->iov_len == 0)
				c->iov_first++;
		}
		if (c->iov_first < c->iov_n)
			tl_push(c, &c->w->idle_wait); /* progress */
	}
	return STEP_CONTINUE;
}

static enum step step_write(struct h1conn *c)
{
	enum step st = flush_out(c);
	if (st != STEP_CONTINUE)
		return st;
	struct request_ext *x = c->x;
	c->x = NULL;
	request_end(x, true);
	tl_remove(c);
	if (c->close_after) {
		if (c->rdhup) { /* the client is done sending: nothing to linger for */
			conn_close(c);
			return STEP_CLOSED;
		}
		if (c->tls)
			tls_session_bye(c->tls);
		shutdown(c->watch.fd, SHUT_WR);
		conn_move(&c->state, CONN_LINGER);
		tl_push(c, &c->w->linger_wait);
		c->readable = true;
		return STEP_CONTINUE;
	}
	conn_move(&c->state, CONN_HEAD);
	tl_push(c, &c->w->head_wait);
	return STEP_CONTINUE;
}

static enum step step_linger(struct h1conn *c)
{
	char junk[4096];
	for (;;) {
		if (!c->readable)
			return STEP_WAIT;
		ssize_t n = recv(c->watch.fd, junk, sizeof junk, 0);
		if (n > 0)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) {
			c->readable = false;
			return STEP_WAIT;
		}
		conn_close(c);
		return STEP_CLOSED;
	}
}

/* What each state does when the socket or the loop moves it; NULL: nothing (it waits). */
static enum step (*const steps[CONN_STATES])(struct h1conn *c) = {
    [CONN_HANDSHAKE] = step_handshake,
    [CONN_HEAD] = step_head,
    [CONN_BODY] = step_body,
    [CONN_HANDLER] = NULL, /* the handler has the request; its edges wait */
    [CONN_WRITE] = step_write,
    [CONN_LINGER] = step_linger,
    [CONN_H2] = step_h2,
    [CONN_CLOSED] = NULL,
};

static void conn_run(struct h1conn *c)
{
	c->in_run = true;
	for (;;) {
		enum step st = steps[c->state] ? steps[c->state](c) : STEP_WAIT;
		if (st == STEP_CLOSED)
			return;
		if (st == STEP_WAIT) {
			c->in_run = false;
			return;
		}
	}
}

static void on_conn_io(void *arg, int fd, uint32_t events)
{
	(void)fd;
	struct h1conn *c = arg;
	if (c->state == CONN_CLOSED) /* closed earlier in this batch of events */
		return;
	if (events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR))
		c->readable = true;
	if (events & (EPOLLRDHUP | EPOLLHUP))
		c->rdhup = true;
	if (events & (EPOLLOUT | EPOLLHUP | EPOLLERR))
		c->writable = true;
	c->polled = true;
	conn_run(c);
}

/* ---------- deadlines, draining ---------- */

/* The head deadline passed: a partial head gets a 408, anything else is closed. */
static void head_expired(struct h1conn *c)
{
	metric_add(&m_head_timeouts, 1);
	if (c->state == CONN_HEAD && c->in_pos < c->in_len) {
		struct request_ext *x = request_new(c->w, c->l, c, c->peer_ip, c->tls != NULL);
		c->x = x;
		http_respond_problem(&x->req, 408, "REQUEST_TIMEOUT",
		                     "The request head did not arrive in time.", NULL);
		c->in_pos = c->in_len;
		c->close_after = true;
		start_response(c);
		conn_run(c);
		return;
	}
	conn_close(c);
}

static void expire(struct conn_list *t, int64_t now, void (*fn)(struct h1conn *c))
{
	struct h1conn *c;
	/* fn closes c or moves it to another list: t->first is never c again. */
	while ((c = t->first) && c->deadline_ms <= now) { // NOLINT(clang-analyzer-unix.Malloc)
		tl_remove(c);
		fn(c);
	}
}

static void idle_expired(struct h1conn *c)
{
	if (c->state == CONN_H2 && h2_handlers(c->h2)) { /* a request is with its handler */
		tl_push(c, &c->w->idle_wait);
		return;
	}
	metric_add(&m_idle_timeouts, 1);
	conn_close(c);
}

void h1_on_deadline(void *arg)
{
	struct http_worker *w = arg;
	int64_t now = http_loop_mono_ms();
	expire(&w->head_wait, now, head_expired);
	expire(&w->idle_wait, now, idle_expired);
	expire(&w->linger_wait, now, conn_close);
	int64_t next = -1;
	struct conn_list *lists[3] = {&w->head_wait, &w->idle_wait, &w->linger_wait};
	for (size_t i = 0; i < 3; i++)
		if (lists[i]->first && (next < 0 || lists[i]->first->deadline_ms < next))
			next = lists[i]->first->deadline_ms;
	if (next >= 0 && (w->conn_timer.at_ms < 0 || next < w->conn_timer.at_ms))
		w->conn_timer.at_ms = next;
}

void h1_drain(struct http_worker *w)
{
	w->draining = true;
	for (int i = 0; i < w->n_ls; i++) {
		struct http_watch *lw = &w->ls[i].watch;
		if (lw->fd < 0)
			continue;
		http_worker_unwatch(w, lw);
		/* Closed: its number may be reused at once, so destroy must not close it again. */
		close(lw->fd);
		lw->fd = -1;
	}
	/* Connections between requests end now; those with a request finish it first. */
	struct h1conn *c = w->conns;
	while (c) {
		struct h1conn *next = c->next;
		if ((c->state == CONN_HEAD && c->in_pos == c->in_len) || c->state == CONN_HANDSHAKE)
			conn_close(c);
		else if (c->state == CONN_H2) {
			h2_drain(c->h2);
			h1_h2_kick(c);
		}
		c = next;
	}
}

void h1_close_all(struct http_worker *w)
{
	struct h1conn *next;
	for (struct h1conn *c = w->conns; c; c = next) {
		next = c->next;
		if (c->state == CONN_HANDLER)
			fatal("closing a connection whose request is with its handler");
		conn_close(c);
	}
	h1_reap(w);
}
