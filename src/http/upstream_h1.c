/*
 * upstream_h1.c: Portcullis's own HTTP/1.1 client for http:// upstreams,
 * run by the worker loop (see upstream_int.h).
 *
 * Why not libcurl here: on a reused keep-alive connection libcurl checks
 * the socket with poll() before and after each transfer, removes it from
 * and re-adds it to epoll between transfers, and reads until EAGAIN; that
 * is about six system calls per request on top of the one write and one
 * read an exchange needs, and it was a third of the gateway's CPU per
 * forwarded request. This client keeps each upstream connection in the
 * loop's epoll set for its whole life (EPOLLIN; EPOLLOUT only while a write
 * is incomplete), so an exchange on a reused connection costs one sendmsg
 * and usually one recv, and an idle connection the upstream closes is
 * noticed and dropped as soon as its FIN arrives.
 *
 * Per worker: one entry per origin (host, port) with a LIFO list of idle
 * connections, and a min-heap of transfer deadlines behind one loop timer.
 * A request that fails on a reused connection before any byte of the
 * response arrived (the upstream closed it meanwhile) is retried once on a
 * new connection when its method is idempotent (RFC 9110 9.2.2).
 */
#include "core/alloc.h"
#include "core/clock.h"
#include "core/log.h"
#include "core/metrics.h"
#include "core/str.h"
#include "http/h1parse.h"
#include "http/resolve.h"
#include "http/upstream_int.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#define MAX_ORIGINS        32
#define IDLE_PER_ORIGIN    128
#define READ_BUF_BYTES     16384
#define MAX_HEAD_BYTES     65536 /* a response head larger than this is refused */
#define CHUNK_BODY_INITIAL 4096

struct origin {
	char base_url[512]; /* as configured */
	char host[256];     /* without brackets */
	char port[8];
	char host_header[300]; /* Host: value */
	char prefix[256];      /* path prefix of base_url, no trailing '/' */
	size_t prefix_len;
	struct conn *idle; /* most recently used first */
	int n_idle;
};

struct conn {
	struct h1_client *c;
	struct origin *o;
	struct xfer *x; /* NULL while idle */
	int fd;
	struct http_watch watch;
	uint32_t events; /* what the watch asks for */
	bool connecting;
	bool reused; /* has carried a response before */
	struct conn *next_idle;
	struct conn *prev_all, *next_all;
	char *rbuf;
	size_t rlen, rcap;
};

struct xfer {
	struct h1_client *c;
	struct http_request *req;
	upstream_done_fn done;
	struct origin *o;
	struct conn *conn;
	int64_t deadline_ms;         /* the whole exchange */
	int64_t connect_deadline_ms; /* while connecting */
	size_t heap_at;              /* index in c->heap */
	bool idempotent;
	bool retried;
	bool got_bytes; /* some of the response arrived */
	/* request */
	char *head;
	size_t head_len;
	size_t sent;
	/* response */
	size_t scan;
	bool have_head;
	bool head_request;
	bool keep_alive;
	int status;
	struct h1_body body;
	char *bbuf;
	size_t blen, bcap, max_body;
	struct resp_headers rh;
	struct upstream_response resp;
};

struct h1_client {
	struct http_worker *w;
	struct http_timer timer;
	struct origin origins[MAX_ORIGINS];
	int n_origins;
	struct conn *all; /* every open connection, for destroy */
	struct xfer **heap;
	size_t heap_len, heap_cap;
	struct h1_head scratch; /* parsed heads are consumed at once */
	char *head_buf;         /* request heads are written here first */
	size_t head_cap;
};

static struct metric m_opened = METRIC_INIT("portcullis_upstream_connections_opened_total",
                                            "HTTP/1.1 connections opened to upstreams", "counter");
static struct metric m_reused =
    METRIC_INIT("portcullis_upstream_connections_reused_total",
                "requests sent on a kept-alive upstream connection", "counter");
static struct metric m_retried =
    METRIC_INIT("portcullis_upstream_retries_total",
                "idempotent requests sent again after a kept-alive connection failed", "counter");

/* ---------- origins ---------- */

/*
 * Split "http://host[:port][/prefix]" into o. False for anything else
 * (https, userinfo, a query or fragment in the base URL, bad ports):
 * those go to libcurl.
 */
static bool parse_origin(const char *url, struct origin *o)
{
	if (strncasecmp(url, "http://", 7) != 0 || strlen(url) >= sizeof o->base_url)
		return false;
	const char *a = url + 7;
	size_t alen = strcspn(a, "/?#");
	if (a[alen] == '?' || a[alen] == '#' || strpbrk(a + alen, "?#") || alen == 0 ||
	    memchr(a, '@', alen))
		return false;
	const char *port = NULL;
	size_t hl;
	const char *h = a;
	if (a[0] == '[') {
		const char *rb = memchr(a, ']', alen);
		if (!rb)
			return false;
		h = a + 1;
		hl = (size_t)(rb - h);
		if (rb + 1 < a + alen) {
			if (rb[1] != ':')
				return false;
			port = rb + 2;
		}
	} else {
		const char *colon = memchr(a, ':', alen);
		hl = colon ? (size_t)(colon - a) : alen;
		port = colon ? colon + 1 : NULL;
	}
	size_t pl = port ? (size_t)(a + alen - port) : 0;
	if (hl == 0 || hl >= sizeof o->host || (port && (pl == 0 || pl > 5)))
		return false;
	uint64_t pn = 80;
	if (port && (parse_uint64(port, pl, 65535, &pn) != 0 || pn < 1))
		return false;
	const char *path = a + alen;
	size_t plen = strlen(path);
	while (plen && path[plen - 1] == '/')
		plen--;
	if (plen >= sizeof o->prefix)
		return false;
	memset(o, 0, sizeof *o);
	snprintf(o->base_url, sizeof o->base_url, "%s", url);
	memcpy(o->host, h, hl);
	snprintf(o->port, sizeof o->port, "%ld", (long)pn);
	/* Host: as in the URL, the port only when it is not the default. */
	size_t host_part = a[0] == '[' ? hl + 2 : hl;
	snprintf(o->host_header, sizeof o->host_header, "%.*s",
	         (int)(port && pn != 80 ? alen : host_part), a);
	memcpy(o->prefix, path, plen);
	o->prefix_len = plen;
	return true;
}

void h1_client_prepare(const char *base_url)
{
	struct origin o;
	if (parse_origin(base_url, &o) && resolve_register(o.host, o.port) < 0)
		log_warn(
		    "upstream host %s does not resolve yet; requests to it get 502 until it does",
		    o.host);
}

static struct origin *find_origin(struct h1_client *c, const char *base_url)
{
	for (int i = 0; i < c->n_origins; i++)
		if (strcmp(c->origins[i].base_url, base_url) == 0)
			return &c->origins[i];
	if (c->n_origins == MAX_ORIGINS)
		return NULL;
	struct origin *o = &c->origins[c->n_origins];
	if (!parse_origin(base_url, o))
		return NULL;
	c->n_origins++;
	return o;
}

/* ---------- deadlines: a binary min-heap of transfers ---------- */

static int64_t deadline_of(const struct xfer *x)
{
	return x->conn && x->conn->connecting && x->connect_deadline_ms < x->deadline_ms
	           ? x->connect_deadline_ms
	           : x->deadline_ms;
}

static void heap_swap(struct h1_client *c, size_t i, size_t j)
{
	struct xfer *t = c->heap[i];
	c->heap[i] = c->heap[j];
	c->heap[j] = t;
	c->heap[i]->heap_at = i;
	c->heap[j]->heap_at = j;
}

static void heap_fix(struct h1_client *c, size_t i)
{
	while (i > 0 && deadline_of(c->heap[(i - 1) / 2]) > deadline_of(c->heap[i])) {
		heap_swap(c, i, (i - 1) / 2);
		i = (i - 1) / 2;
	}
	for (;;) {
		size_t l = 2 * i + 1, r = l + 1, m = i;
		if (l < c->heap_len && deadline_of(c->heap[l]) < deadline_of(c->heap[m]))
			m = l;
		if (r < c->heap_len && deadline_of(c->heap[r]) < deadline_of(c->heap[m]))
			m = r;
		if (m == i)
			break;
		heap_swap(c, i, m);
		i = m;
	}
}

static void arm_timer(struct h1_client *c)
{
	if (!c->heap_len) {
		http_timer_arm(&c->timer, -1);
		return;
	}
	int64_t left = deadline_of(c->heap[0]) - http_loop_mono_ms();
	http_timer_arm(&c->timer, left < 0 ? 0 : left);
}

static void heap_push(struct h1_client *c, struct xfer *x)
{
	if (c->heap_len == c->heap_cap) {
		c->heap_cap = c->heap_cap ? c->heap_cap * 2 : 64;
		c->heap = xrealloc(c->heap, c->heap_cap * sizeof(struct xfer *));
	}
	x->heap_at = c->heap_len;
	c->heap[c->heap_len++] = x;
	heap_fix(c, x->heap_at);
	if (x->heap_at == 0)
		arm_timer(c);
}

static void heap_remove(struct h1_client *c, struct xfer *x)
{
	size_t i = x->heap_at;
	c->heap_len--;
	if (i != c->heap_len) {
		c->heap[i] = c->heap[c->heap_len];
		c->heap[i]->heap_at = i;
		heap_fix(c, i);
	}
	if (i == 0)
		arm_timer(c);
}

/* ---------- connections ---------- */

static void on_conn_event(void *arg, int fd, uint32_t events);

static void conn_want(struct conn *k, uint32_t events)
{
	if (k->events == events)
		return;
	k->events = events;
	http_worker_watch(k->c->w, &k->watch, events);
}

static void conn_close(struct conn *k)
{
	struct h1_client *c = k->c;
	http_worker_unwatch(c->w, &k->watch);
	close(k->fd);
	if (k->prev_all)
		k->prev_all->next_all = k->next_all;
	else
		c->all = k->next_all;
	if (k->next_all)
		k->next_all->prev_all = k->prev_all;
	free(k->rbuf);
	free(k);
}

static void idle_remove(struct conn *k)
{
	struct conn **pp = &k->o->idle;
	while (*pp && *pp != k)
		pp = &(*pp)->next_idle;
	if (*pp) {
		*pp = k->next_idle;
		k->o->n_idle--;
	}
	k->next_idle = NULL;
}

/* A connection whose exchange ended cleanly: keep it for the next request. */
static void conn_release(struct conn *k)
{
	k->x = NULL;
	k->rlen = 0;
	k->reused = true;
	struct origin *o = k->o;
	if (o->n_idle >= IDLE_PER_ORIGIN) {
		conn_close(k);
		return;
	}
	conn_want(k, EPOLLIN);
	k->next_idle = o->idle;
	o->idle = k;
	o->n_idle++;
}

/* A new non-blocking connection to o; NULL with *err set on failure. */
static struct conn *conn_open(struct h1_client *c, struct origin *o, const char **err)
{
	struct sockaddr_storage addr;
	socklen_t alen;
	if (resolve_lookup(o->host, o->port, &addr, &alen) < 0) {
		*err = "upstream host name does not resolve";
		return NULL;
	}
	int fd = socket(addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		*err = "cannot create a socket";
		return NULL;
	}
	int one = 1;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
	bool connecting = false;
	if (connect(fd, (struct sockaddr *)&addr, alen) < 0) {
		if (errno != EINPROGRESS) {
			*err = errno == ECONNREFUSED ? "connection refused" : "cannot connect";
			close(fd);
			return NULL;
		}
		connecting = true;
	}
	metric_add(&m_opened, 1);
	struct conn *k = xcalloc(1, sizeof *k);
	k->c = c;
	k->o = o;
	k->fd = fd;
	k->connecting = connecting;
	k->watch.fd = fd;
	k->watch.cb = on_conn_event;
	k->watch.arg = k;
	k->next_all = c->all;
	if (c->all)
		c->all->prev_all = k;
	c->all = k;
	k->rcap = READ_BUF_BYTES;
	k->rbuf = xmalloc(k->rcap);
	conn_want(k, connecting ? EPOLLOUT : EPOLLIN);
	return k;
}

/* ---------- one exchange ---------- */

static void xfer_end(struct xfer *x)
{
	heap_remove(x->c, x);
	x->done(x->req, &x->resp);
}

static void xfer_fail(struct xfer *x, enum upstream_outcome outcome, const char *error)
{
	if (x->conn) {
		x->conn->x = NULL;
		conn_close(x->conn);
		x->conn = NULL;
	}
	free(x->bbuf);
	x->bbuf = NULL;
	x->resp.outcome = outcome;
	x->resp.error = error;
	xfer_end(x);
}

static void xfer_complete(struct xfer *x)
{
	struct conn *k = x->conn;
	x->conn = NULL;
	/* An answer that came before the whole request was sent leaves the rest unsent. */
	if (x->sent < x->head_len + x->req->body.len)
		x->keep_alive = false;
	if (k && x->keep_alive) {
		conn_release(k);
	} else if (k) {
		k->x = NULL;
		conn_close(k);
	}
	x->resp.outcome = UPSTREAM_OK;
	x->resp.status = x->status;
	x->resp.headers = resp_headers_finish(&x->rh);
	x->resp.content_length = x->rh.content_length;
	x->resp.body = x->bbuf;
	x->resp.body_len = x->blen;
	x->bbuf = NULL;
	xfer_end(x);
}

static bool xfer_send(struct xfer *x);

/* Put x on a connection to its origin (an idle one unless fresh is set) and send. */
static void xfer_start(struct xfer *x, bool fresh)
{
	struct origin *o = x->o;
	struct conn *k = fresh ? NULL : o->idle;
	if (k) {
		o->idle = k->next_idle;
		o->n_idle--;
		k->next_idle = NULL;
		metric_add(&m_reused, 1);
	} else {
		const char *err = NULL;
		k = conn_open(x->c, o, &err);
		if (!k) {
			xfer_fail(x, UPSTREAM_UNAVAILABLE, err);
			return;
		}
	}
	k->x = x;
	x->conn = k;
	x->sent = 0;
	x->scan = 0;
	if (k->connecting) {
		heap_fix(x->c, x->heap_at); /* the connect deadline applies now */
		arm_timer(x->c);
		return; /* on_conn_event sends once connected */
	}
	xfer_send(x);
}

/*
 * The connection failed before any byte of the response: if it had carried
 * a response before (the upstream may have closed it meanwhile) and the
 * method may be repeated, try once more on a new connection.
 */
static void xfer_fail_or_retry(struct xfer *x, const char *error)
{
	struct conn *k = x->conn;
	if (k && k->reused && !x->got_bytes && x->idempotent && !x->retried) {
		x->retried = true;
		metric_add(&m_retried, 1);
		k->x = NULL;
		conn_close(k);
		x->conn = NULL;
		xfer_start(x, true);
		return;
	}
	xfer_fail(x, UPSTREAM_UNAVAILABLE, error);
}

/* Write what is left of the request; false when the exchange ended (failed). */
static bool xfer_send(struct xfer *x)
{
	struct conn *k = x->conn;
	const struct buf *body = &x->req->body;
	size_t total = x->head_len + body->len;
	while (x->sent < total) {
		struct iovec iov[2];
		int n = 0;
		if (x->sent < x->head_len) {
			iov[n].iov_base = x->head + x->sent;
			iov[n++].iov_len = x->head_len - x->sent;
		}
		size_t boff = x->sent > x->head_len ? x->sent - x->head_len : 0;
		if (body->len > boff) {
			iov[n].iov_base = body->data + boff;
			iov[n++].iov_len = body->len - boff;
		}
		struct msghdr msg = {.msg_iov = iov, .msg_iovlen = (size_t)n};
		ssize_t w = sendmsg(k->fd, &msg, MSG_NOSIGNAL);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN || errno == EWOULDBLOCK) {
				conn_want(k, EPOLLIN | EPOLLOUT);
				return true;
			}
			xfer_fail_or_retry(x, errno == ECONNREFUSED
			                          ? "connection refused"
			                          : "connection reset while sending");
			return false;
		}
		x->sent += (size_t)w;
	}
	conn_want(k, EPOLLIN);
	return true;
}

static int body_sink(void *arg, const char *data, size_t n)
{
	struct xfer *x = arg;
	if (n > x->max_body - x->blen)
		return -1;
	if (x->blen + n > x->bcap) {
		size_t cap = x->bcap ? x->bcap : CHUNK_BODY_INITIAL;
		while (cap < x->blen + n)
			cap *= 2;
		if (cap > x->max_body)
			cap = x->max_body;
		x->bbuf = xrealloc(x->bbuf, cap + 1);
		x->bcap = cap;
	}
	memcpy(x->bbuf + x->blen, data, n);
	x->blen += n;
	return 0;
}

/* Feed body bytes; false when the exchange ended (completed or failed). */
static bool feed_body(struct xfer *x, const char *data, size_t n)
{
	ssize_t used = h1_body_feed(&x->body, data, n, body_sink, x);
	if (used < 0) {
		xfer_fail(x, UPSTREAM_UNAVAILABLE,
		          x->blen >= x->max_body ? "response too large"
		                                 : "malformed response body");
		return false;
	}
	if (x->body.done) {
		if ((size_t)used < n)
			x->keep_alive =
			    false; /* bytes beyond the response: do not trust the rest */
		xfer_complete(x);
		return false;
	}
	return true;
}

/* The head is in k->rbuf[0..end): take it. False when the exchange ended. */
static bool take_head(struct xfer *x, size_t end)
{
	struct conn *k = x->conn;
	struct h1_head *h = &x->c->scratch;
	if (h1_parse_head(k->rbuf, end, x->head_request, h) < 0) {
		xfer_fail(x, UPSTREAM_UNAVAILABLE, "malformed response head");
		return false;
	}
	if (h->status < 200) {
		if (h->status == 101) {
			xfer_fail(x, UPSTREAM_UNAVAILABLE, "upstream switched protocols");
			return false;
		}
		/* An interim response (100, 103): drop it and read on. */
		memmove(k->rbuf, k->rbuf + end, k->rlen - end);
		k->rlen -= end;
		x->scan = 0;
		return true;
	}
	x->have_head = true;
	x->status = h->status;
	x->keep_alive = h->keep_alive;
	for (size_t i = 0; i < h->n_fields; i++)
		resp_headers_add(&x->rh, h->fields[i].name, h->fields[i].name_len,
		                 h->fields[i].value, h->fields[i].value_len);
	h1_body_init(&x->body, h);
	if (h->framing == H1_BODY_LENGTH) {
		if (h->content_length > x->max_body) {
			xfer_fail(x, UPSTREAM_UNAVAILABLE, "response too large");
			return false;
		}
		x->bcap = (size_t)h->content_length;
		x->bbuf = xmalloc(x->bcap + 1);
	}
	size_t rest = k->rlen - end;
	k->rlen = 0;
	if (x->body.done) {
		if (rest)
			x->keep_alive = false;
		xfer_complete(x);
		return false;
	}
	return feed_body(x, k->rbuf + end, rest);
}

static void on_eof(struct xfer *x)
{
	if (!x->have_head) {
		xfer_fail_or_retry(x, "upstream closed the connection without a response");
		return;
	}
	x->keep_alive = false;
	if (h1_body_eof(&x->body))
		xfer_complete(x);
	else
		xfer_fail(x, UPSTREAM_UNAVAILABLE, "upstream closed the connection mid-response");
}

static void on_readable(struct xfer *x)
{
	struct conn *k = x->conn;
	for (;;) {
		char *dst;
		size_t room;
		bool direct = x->have_head && x->body.framing == H1_BODY_LENGTH;
		if (direct) {
			/* Content-Length bodies go straight into the response buffer. */
			dst = x->bbuf + x->blen;
			room = (size_t)x->body.remaining;
		} else {
			if (!x->have_head && k->rlen == k->rcap) {
				if (k->rcap >= MAX_HEAD_BYTES) {
					xfer_fail(x, UPSTREAM_UNAVAILABLE,
					          "response head too large");
					return;
				}
				k->rcap *= 2;
				k->rbuf = xrealloc(k->rbuf, k->rcap);
			}
			dst = k->rbuf + k->rlen;
			room = k->rcap - k->rlen;
		}
		ssize_t n = recv(k->fd, dst, room, 0);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				return;
			xfer_fail_or_retry(x, "connection reset by the upstream");
			return;
		}
		if (n == 0) {
			on_eof(x);
			return;
		}
		x->got_bytes = true;
		if (direct) {
			x->blen += (size_t)n;
			x->body.remaining -= (uint64_t)n;
			if (x->body.remaining == 0) {
				x->body.done = true;
				xfer_complete(x);
				return;
			}
		} else if (x->have_head) {
			if (!feed_body(x, k->rbuf, (size_t)n))
				return;
		} else {
			k->rlen += (size_t)n;
			size_t end;
			while (x->conn && !x->have_head &&
			       (end = h1_find_head_end(k->rbuf, k->rlen, &x->scan)) > 0)
				if (!take_head(x, end))
					return;
		}
		/* Level-triggered: come back on the next readiness unless the buffer filled. */
		if ((size_t)n < room)
			return;
	}
}

static void on_connected(struct conn *k)
{
	struct xfer *x = k->x;
	int soerr = 0;
	socklen_t l = sizeof soerr;
	if (getsockopt(k->fd, SOL_SOCKET, SO_ERROR, &soerr, &l) < 0 || soerr) {
		xfer_fail(x, UPSTREAM_UNAVAILABLE,
		          soerr == ECONNREFUSED ? "connection refused" : "cannot connect");
		return;
	}
	k->connecting = false;
	heap_fix(x->c, x->heap_at); /* back to the exchange's deadline */
	arm_timer(x->c);
	xfer_send(x);
}

static void on_conn_event(void *arg, int fd, uint32_t events)
{
	(void)fd;
	struct conn *k = arg;
	struct xfer *x = k->x;
	if (!x) {
		/* Idle: the upstream closed it (or sent what nobody asked for). */
		idle_remove(k);
		conn_close(k);
		return;
	}
	if (k->connecting) {
		if (events & (EPOLLOUT | EPOLLERR | EPOLLHUP))
			on_connected(k);
		return;
	}
	if ((events & EPOLLOUT) && x->sent < x->head_len + x->req->body.len && !xfer_send(x))
		return;
	if (events & (EPOLLIN | EPOLLERR | EPOLLHUP))
		on_readable(x);
}

static void on_timer(void *arg)
{
	struct h1_client *c = arg;
	int64_t now = http_loop_mono_ms();
	while (c->heap_len && deadline_of(c->heap[0]) <= now) {
		struct xfer *x = c->heap[0];
		bool connecting = x->conn && x->conn->connecting;
		xfer_fail(x, UPSTREAM_TIMEOUT,
		          connecting ? "connect timed out" : "upstream response timed out");
	}
	arm_timer(c);
}

/* ---------- the request head ---------- */

/* The head is written once into the client's scratch buffer, then copied to the arena. */
struct head_writer {
	struct h1_client *c;
	struct http_request *req;
	size_t len;
	const char *connection; /* the client's Connection header */
};

static void put(struct head_writer *hw, const char *s, size_t n)
{
	struct h1_client *c = hw->c;
	if (hw->len + n > c->head_cap) {
		size_t cap = c->head_cap ? c->head_cap : 1024;
		while (cap < hw->len + n)
			cap *= 2;
		c->head_buf = xrealloc(c->head_buf, cap);
		c->head_cap = cap;
	}
	memcpy(c->head_buf + hw->len, s, n);
	hw->len += n;
}

static void put_field(struct head_writer *hw, const char *name, const char *value)
{
	put(hw, name, strlen(name));
	put(hw, ": ", 2);
	put(hw, value, strlen(value));
	put(hw, "\r\n", 2);
}

static void put_client_header(void *arg, const char *name, const char *value)
{
	struct head_writer *hw = arg;
	if (!upstream_pass_request_header(name, hw->connection) || !upstream_field_ok(name, value))
		return;
	value = upstream_request_value(&hw->req->arena, name, value);
	if (value)
		put_field(hw, name, value);
}

static void write_head(struct head_writer *hw, struct xfer *x, const struct http_header *extra,
                       bool send_length, const char *length)
{
	struct http_request *req = x->req;
	put(hw, req->method, strlen(req->method));
	put(hw, " ", 1);
	put(hw, x->o->prefix, x->o->prefix_len);
	put(hw, req->raw_uri, strlen(req->raw_uri));
	put(hw, " HTTP/1.1\r\n", 11);
	put_field(hw, "Host", x->o->host_header);
	http_each_header(req, put_client_header, hw);
	for (const struct http_header *h = extra; h; h = h->next)
		put_field(hw, h->name, h->value);
	if (send_length)
		put_field(hw, "Content-Length", length);
	put(hw, "\r\n", 2);
}

static bool method_is(const char *m, const char *name)
{
	return strcmp(m, name) == 0;
}

bool h1_client_forward(struct h1_client *c, struct http_request *req,
                       const struct upstream_target *t, const struct http_header *extra,
                       upstream_done_fn done)
{
	if (strncasecmp(t->base_url, "http://", 7) != 0 || req->raw_uri[0] != '/')
		return false;
	struct origin *o = find_origin(c, t->base_url);
	if (!o)
		return false;
	struct xfer *x = arena_alloc(&req->arena, sizeof *x);
	memset(x, 0, sizeof *x);
	x->c = c;
	x->req = req;
	x->done = done;
	x->o = o;
	x->max_body = t->max_response_bytes;
	resp_headers_init(&x->rh, &req->arena);
	const char *m = req->method;
	x->head_request = method_is(m, "HEAD");
	x->idempotent = method_is(m, "GET") || x->head_request || method_is(m, "OPTIONS") ||
	                method_is(m, "PUT") || method_is(m, "DELETE") || method_is(m, "TRACE");

	bool send_length =
	    req->body.len || method_is(m, "POST") || method_is(m, "PUT") || method_is(m, "PATCH");
	char length[STR_I64_MAX] = "";
	if (send_length)
		str_i64(length, (int64_t)req->body.len);
	struct head_writer hw = {.c = c, .req = req, .connection = http_header(req, "Connection")};
	write_head(&hw, x, extra, send_length, length);
	x->head = arena_alloc(&req->arena, hw.len);
	x->head_len = hw.len;
	memcpy(x->head, c->head_buf, hw.len);

	int64_t now = http_loop_mono_ms();
	x->deadline_ms = now + t->timeout_ms;
	x->connect_deadline_ms = now + t->connect_timeout_ms;
	heap_push(c, x);
	xfer_start(x, false);
	return true;
}

struct h1_client *h1_client_create(struct http_worker *w)
{
	struct h1_client *c = xcalloc(1, sizeof *c);
	c->w = w;
	http_worker_add_timer(w, &c->timer, on_timer, c);
	metrics_register(&m_opened);
	metrics_register(&m_reused);
	metrics_register(&m_retried);
	return c;
}

void h1_client_destroy(struct h1_client *c)
{
	if (!c)
		return;
	/* Transfers still running belong to requests the server abandoned. */
	struct conn *next;
	for (struct conn *k = c->all; k; k = next) {
		next = k->next_all;
		conn_close(k);
	}
	http_timer_arm(&c->timer, -1);
	free(c->heap);
	free(c->head_buf);
	free(c);
}
