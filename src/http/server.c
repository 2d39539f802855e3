/*
 * server.c: worker event loops around libmicrohttpd (see server.h).
 *
 * Each worker owns: an MHD daemon in external-epoll mode per listener (the
 * main one and, in serve, the ingest and console ones), each on its own duplicate of that
 * listener's one listening socket, an epoll set that watches the daemon's
 * epoll fd, an eventfd (resumes and stop requests) and whatever modules
 * register (curl sockets). Requests never move between threads except while
 * suspended for pool work; MHD is only ever called from its owner thread.
 *
 * Request lifecycle: the URI-log callback creates the request context (so
 * the raw URI is kept), the first access-handler call checks the target and
 * every header field (reqcheck.h), decodes the path once and routes on it,
 * body chunks are collected up to max_body_bytes, the last call
 * dispatches; the completion callback logs, counts and frees.
 */
#include "http/server.h"

#include "core/alloc.h"
#include "core/clock.h"
#include "core/log.h"
#include "core/metrics.h"
#include "core/str.h"
#include "core/ulid.h"
#include "http/connlimit.h"
#include "http/reqcheck.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <microhttpd.h>
#include <netdb.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#define ROUTE_SLOT_PROXY            (ROUTER_MAX_ROUTES)
#define ROUTE_SLOT_NONE             (ROUTER_MAX_ROUTES + 1)
#define ROUTE_SLOT_INGEST           (ROUTER_MAX_ROUTES + 2)  /* the ingest router's route 0 */
#define ROUTE_SLOT_CONSOLE          (ROUTE_SLOT_INGEST + 12) /* the console router's route 0 */
#define ROUTE_SLOT_CONSOLE_FALLBACK (METRICS_MAX_ROUTES - 1) /* the console's /v1 */
#define HSTS_VALUE                  "max-age=63072000; includeSubDomains"
#define MAX_PEM_BYTES               (1024 * 1024)
#define MAX_TARGET_BYTES            8192 /* longer request-targets get our 414 */

/*
 * TLS 1.2 and 1.3 only; forward secrecy only (ECDHE, DHE: no RSA key
 * exchange); AEAD only (no CBC, so no HMAC-SHA1/SHA256 suites and no
 * Lucky13); the server's order, not the client's, picks the suite. Check
 * with `gnutls-cli --priority STRING --list`.
 */
#define TLS_PRIORITIES                                                                             \
	"SECURE256:+SECURE128:-VERS-ALL:+VERS-TLS1.3:+VERS-TLS1.2:-RSA:-MAC-ALL:+AEAD:"            \
	"-CIPHER-ALL:+AES-256-GCM:+CHACHA20-POLY1305:+AES-128-GCM:%SERVER_PRECEDENCE"

struct pending_resume {
	struct http_request *req;
	struct pending_resume *next;
};

/*
 * One listener: the main one ([server] listen) and, in serve, the ingest one
 * ([ingest] listen, its own router, body and connection limits, the TLS
 * settings of [server]) and the console one ([console] listen, its own
 * router and TLS settings). Each worker runs one MHD daemon per listener on
 * its loop.
 */
struct listener {
	const char *name; /* "main", "ingest" or "console": in error messages */
	const char *listen;
	const struct router *router;
	http_handler_fn fallback;   /* NULL: 404 for paths no route matches */
	const char *fallback_label; /* the route label of what fallback answers */
	int fallback_slot;
	int64_t max_body_bytes;
	int64_t max_connections;
	int slot_base;           /* the metrics slot of its route 0 */
	struct connlimit *conns; /* open connections per client address, every worker */
	int port;
	bool tls;
	char *tls_cert_pem, *tls_key_pem; /* owned when tls */
};

/* A worker's daemon for one listener; the MHD callbacks' closure. */
struct worker_daemon {
	struct http_worker *w;
	const struct listener *l;
	int listen_fd;
	struct MHD_Daemon *daemon;
	struct http_watch watch; /* the daemon's epoll fd */
	/* The accept policy's slot, until MHD starts that connection (or fails to). */
	struct connlimit_key reserved;
	bool has_reserved;
};

#define MAX_LISTENERS 3

struct http_worker {
	struct http_server *server;
	int index;
	pthread_t thread;
	struct worker_daemon d[MAX_LISTENERS];
	int n_daemons;
	int epfd;
	int wake_fd; /* eventfd: resumes queued or stop requested */
	struct http_watch wake_watch;
	pthread_mutex_t resume_lock;
	struct pending_resume *resumes;
	int in_flight;
	bool draining;
	struct http_timer *timers[HTTP_MAX_TIMERS]; /* modules' timers (upstream clients) */
	int n_timers;
	void *local;
	/* Connections waiting for a request head, oldest deadline first. */
	struct conn_state *wait_head, *wait_tail;
	struct http_timer head_timer;
};

struct http_server {
	struct http_server_opts opts;
	const struct config *cfg;
	int n_workers;
	struct http_worker *workers;
	struct listener listeners[MAX_LISTENERS];
	int n_listeners;
	bool tls; /* the main listener's */
	struct MHD_Daemon *redirect_daemon;
	char redirect_host[256];
	atomic_bool stopping;
	char trusted[CONFIG_MAX_TRUSTED_PROXIES][48];
	int n_trusted;
	atomic_int abandoned; /* requests given up at the end of the grace, all workers */
};

struct request_ext {
	struct http_request req;
	const struct listener *l;
	bool headers_checked;
	bool close_after; /* refused for its framing: answer at once, then close */
	int route_slot;
};

static void conn_request_ended(struct http_worker *w, struct MHD_Connection *conn);

/* ---------- small helpers ---------- */

static char *read_file_bounded(const char *path, char *err, size_t cap)
{
	FILE *f = fopen(path, "rb");
	if (!f) {
		snprintf(err, cap, "cannot open %s: %s", path, strerror(errno));
		return NULL;
	}
	char *data = xmalloc(MAX_PEM_BYTES + 1);
	size_t n = fread(data, 1, MAX_PEM_BYTES + 1, f);
	fclose(f);
	if (n > MAX_PEM_BYTES) {
		free(data);
		snprintf(err, cap, "%s is larger than 1 MiB", path);
		return NULL;
	}
	data[n] = '\0';
	return data;
}

static int make_listener(const char *listen_spec, int port_override, char *err, size_t cap)
{
	char host[256];
	int port;
	if (config_split_listen(listen_spec, host, sizeof host, &port) < 0) {
		snprintf(err, cap, "bad listen address %s", listen_spec);
		return -1;
	}
	if (port_override >= 0)
		port = port_override;
	struct addrinfo hints = {.ai_family = AF_UNSPEC,
	                         .ai_socktype = SOCK_STREAM,
	                         .ai_flags = AI_PASSIVE | AI_NUMERICSERV};
	struct addrinfo *res = NULL;
	char portstr[16];
	snprintf(portstr, sizeof portstr, "%d", port);
	int rc = getaddrinfo(host, portstr, &hints, &res);
	if (rc != 0) {
		snprintf(err, cap, "cannot resolve %s: %s", host, gai_strerror(rc));
		return -1;
	}
	int fd = -1;
	for (struct addrinfo *ai = res; ai; ai = ai->ai_next) {
		fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
		if (fd < 0)
			continue;
		int one = 1;
		setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
		if (bind(fd, ai->ai_addr, ai->ai_addrlen) == 0 && listen(fd, 1024) == 0)
			break;
		snprintf(err, cap, "cannot listen on %s: %s", listen_spec, strerror(errno));
		close(fd);
		fd = -1;
	}
	freeaddrinfo(res);
	return fd;
}

static int bound_port(int fd)
{
	struct sockaddr_storage ss;
	memset(&ss, 0, sizeof ss);
	socklen_t len = sizeof ss;
	if (getsockname(fd, (struct sockaddr *)&ss, &len) < 0)
		return -1;
	if (ss.ss_family == AF_INET)
		return ntohs(((struct sockaddr_in *)&ss)->sin_port);
	return ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
}

static void mhd_logger(void *cls, const char *fmt, va_list ap)
{
	(void)cls;
	if (!log_enabled(LOG_DEBUG))
		return;
	char msg[512];
	vsnprintf(msg, sizeof msg, fmt, ap);
	msg[strcspn(msg, "\n")] = '\0';
	log_event(LOG_DEBUG, "mhd", "msg", msg, NULL);
}

/* ---------- response queueing ---------- */

/* The content reader of HEAD responses: never called for HEAD; an error if it were. */
static ssize_t no_content(void *cls, uint64_t pos, char *buf, size_t max)
{
	(void)cls;
	(void)pos;
	(void)buf;
	(void)max;
	return MHD_CONTENT_READER_END_WITH_ERROR;
}

static enum MHD_Result queue_response(struct request_ext *x)
{
	struct http_request *req = &x->req;
	struct http_worker *w = req->worker;
	struct MHD_Response *resp;
	if (req->head_for_upstream) {
		/*
		 * Answering HEAD for an upstream: a response of the length GET would
		 * have (unknown, so no Content-Length, when the upstream gave none),
		 * whose content MHD never reads for HEAD (so none is allocated).
		 */
		uint64_t size =
		    req->head_length >= 0 ? (uint64_t)req->head_length : MHD_SIZE_UNKNOWN;
		resp = MHD_create_response_from_callback(size, 4096, no_content, NULL, NULL);
	} else {
		resp = MHD_create_response_from_buffer(req->resp_body_len, req->resp_body,
		                                       MHD_RESPMEM_MUST_FREE);
		req->resp_body = NULL;
	}
	MHD_add_response_header(resp, "X-Request-Id", req->request_id);
	if (req->content_type)
		MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, req->content_type);
	if (req->tls)
		MHD_add_response_header(resp, "Strict-Transport-Security", HSTS_VALUE);
	for (struct http_header *h = req->resp_headers; h; h = h->next)
		if (MHD_add_response_header(resp, h->name, h->value) != MHD_YES)
			log_event(LOG_WARN, "response_header_dropped", "request_id",
			          req->request_id, "header", h->name, NULL);
	if (w->draining)
		MHD_add_response_header(resp, MHD_HTTP_HEADER_CONNECTION, "close");
	enum MHD_Result ret = MHD_queue_response(req->conn, (unsigned)req->status, resp);
	MHD_destroy_response(resp);
	return ret;
}

/* ---------- suspension ---------- */

struct http_worker *http_request_worker(struct http_request *req)
{
	return req->worker;
}

static void wake(struct http_worker *w)
{
	uint64_t one = 1;
	ssize_t r = write(w->wake_fd, &one, sizeof one);
	(void)r; /* a full eventfd counter still wakes the loop */
}

void http_suspend(struct http_request *req, http_handler_fn resume_fn)
{
	req->resume_fn = resume_fn;
	req->suspend_pending = true;
}

void http_resume(struct http_request *req)
{
	struct http_worker *w = req->worker;
	/*
	 * req->suspended belongs to the owning loop: a pool thread must not read
	 * it (the loop sets it after handing the job over), so the thread test
	 * comes first.
	 */
	if (pthread_equal(pthread_self(), w->thread) && req->suspended) {
		/* On the owning loop (an upstream transfer ended): no queue, no wake-up. */
		req->suspended = false;
		MHD_resume_connection(req->conn);
		return;
	}
	struct pending_resume *p = xmalloc(sizeof *p);
	p->req = req;
	pthread_mutex_lock(&w->resume_lock);
	p->next = w->resumes;
	w->resumes = p;
	pthread_mutex_unlock(&w->resume_lock);
	wake(w);
}

static void run_deferred(void *arg)
{
	struct http_request *req = arg;
	req->deferred_fn(req);
	http_resume(req);
}

int http_defer(struct http_request *req, struct workpool *pool, http_handler_fn work,
               http_handler_fn done)
{
	return http_defer_lane(req, pool, WORKPOOL_NORMAL, work, done);
}

int http_defer_lane(struct http_request *req, struct workpool *pool, enum workpool_lane lane,
                    http_handler_fn work, http_handler_fn done)
{
	/* Already suspended (called from an upstream completion): stay so. */
	bool was_suspended = req->suspended;
	req->deferred_fn = work;
	req->resume_fn = done;
	req->suspend_pending = !was_suspended;
	if (workpool_submit_lane(pool, lane, run_deferred, req) < 0) {
		req->suspend_pending = false;
		req->resume_fn = NULL;
		return -1;
	}
	return 0;
}

static void process_resumes(struct http_worker *w)
{
	pthread_mutex_lock(&w->resume_lock);
	struct pending_resume *p = w->resumes;
	w->resumes = NULL;
	pthread_mutex_unlock(&w->resume_lock);
	while (p) {
		struct pending_resume *next = p->next;
		if (p->req->suspended) {
			p->req->suspended = false;
			MHD_resume_connection(p->req->conn);
		}
		free(p);
		p = next;
	}
}

/* ---------- MHD callbacks ---------- */

static void *on_uri(void *cls, const char *uri, struct MHD_Connection *conn)
{
	const struct worker_daemon *wd = cls;
	struct http_worker *w = wd->w;
	/*
	 * Zero everything but the arena's inline chunk (arena_init
	 * resets the arena; its bytes are never read before written).
	 */
	_Static_assert(offsetof(struct request_ext, req) == 0 &&
	                   offsetof(struct http_request, arena) == 0,
	               "the arena leads the request");
	struct request_ext *x = xmalloc(sizeof *x);
	memset((char *)x + sizeof x->req.arena, 0, sizeof *x - sizeof x->req.arena);
	struct http_request *req = &x->req;
	arena_init(&req->arena);
	req->worker = w;
	req->conn = conn;
	req->app = w->server->opts.app;
	req->start_us = clock_mono_us();
	req->start_ms = clock_now_ms();
	req->raw_uri = arena_strdup(&req->arena, uri);
	req->tls = wd->l->tls;
	req->route_label = "none";
	ulid_prefixed("req", req->request_id, sizeof req->request_id);
	x->l = wd->l;
	buf_init(&req->body, (size_t)wd->l->max_body_bytes);
	x->route_slot = ROUTE_SLOT_NONE;
	w->in_flight++;
	return x;
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **req_cls,
                         enum MHD_RequestTerminationCode toe)
{
	struct http_worker *w = ((const struct worker_daemon *)cls)->w;
	conn_request_ended(w, conn);
	struct request_ext *x = *req_cls;
	if (!x)
		return;
	*req_cls = NULL;
	struct http_request *req = &x->req;
	int64_t dur_us = clock_mono_us() - req->start_us;
	int status = req->responded ? req->status : 0;
	metrics_record_request(x->route_slot, status, dur_us);
	if (req->method && log_enabled(LOG_INFO)) {
		char st[8], dur[24];
		snprintf(st, sizeof st, "%d", status);
		snprintf(dur, sizeof dur, "%.3f", (double)dur_us / 1000.0);
		/* The path as sent (percent-encoded, no query): a decoded one is cut at %00. */
		const char *path = req->raw_uri ? arena_strndup(&req->arena, req->raw_uri,
		                                                strcspn(req->raw_uri, "?"))
		                                : "";
		log_event(LOG_INFO, "access", "request_id", req->request_id, "method", req->method,
		          "path", path, "route", req->route_label, "#status", st, "#duration_ms",
		          dur, "org_id", req->log_org_id ? req->log_org_id : "", "key_id",
		          req->log_key_id ? req->log_key_id : "", "completed",
		          toe == MHD_REQUEST_TERMINATED_COMPLETED_OK ? "ok" : "aborted", NULL);
	}
	if (req->on_complete)
		req->on_complete(req);
	buf_free(&req->body);
	free(req->resp_body);
	arena_free(&req->arena);
	free(x);
	w->in_flight--;
}

static bool is_trusted_proxy(const struct http_server *s, const char *addr)
{
	for (int i = 0; i < s->n_trusted; i++)
		if (strcmp(s->trusted[i], addr) == 0)
			return true;
	return false;
}

/*
 * Behind a trusted proxy the client is the right-most X-Forwarded-For entry
 * that is not itself a trusted proxy (entries further left are whatever the
 * client claimed). Only well-formed addresses are taken.
 */
static void client_from_forwarded_for(struct http_request *req)
{
	const struct http_server *s = req->worker->server;
	const char *xff =
	    MHD_lookup_connection_value(req->conn, MHD_HEADER_KIND, "X-Forwarded-For");
	if (!xff)
		return;
	size_t end = strlen(xff);
	while (end > 0) {
		size_t start = end;
		while (start > 0 && xff[start - 1] != ',')
			start--;
		size_t a = start, b = end;
		while (a < b && (xff[a] == ' ' || xff[a] == '\t'))
			a++;
		while (b > a && (xff[b - 1] == ' ' || xff[b - 1] == '\t'))
			b--;
		char one[48];
		unsigned char bin[16];
		if (b - a == 0 || b - a >= sizeof one)
			return;
		memcpy(one, xff + a, b - a);
		one[b - a] = '\0';
		if (inet_pton(AF_INET, one, bin) != 1 && inet_pton(AF_INET6, one, bin) != 1)
			return;
		if (!is_trusted_proxy(s, one)) {
			memcpy(req->client_ip, one, b - a + 1);
			return;
		}
		end = start > 0 ? start - 1 : 0;
	}
}

static void fill_client_ip(struct http_request *req)
{
	const union MHD_ConnectionInfo *ci =
	    MHD_get_connection_info(req->conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
	if (!ci || !ci->client_addr)
		return;
	const struct sockaddr *sa = ci->client_addr;
	_Static_assert(sizeof req->client_ip >= sizeof "255.255.255.255", "room for IPv4");
	if (sa->sa_family == AF_INET)
		str_ipv4(&((const struct sockaddr_in *)sa)->sin_addr, req->client_ip);
	else if (sa->sa_family == AF_INET6)
		inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)sa)->sin6_addr, req->client_ip,
		          sizeof req->client_ip);
	memcpy(req->peer_ip, req->client_ip, sizeof req->peer_ip);
	req->peer_trusted =
	    req->worker->server->n_trusted && is_trusted_proxy(req->worker->server, req->client_ip);
	if (req->peer_trusted)
		client_from_forwarded_for(req);
}

/* One walk over the header fields: their size for the 431 and the field checks. */
struct head_walk {
	size_t total; /* bytes counted against [server] max_header_bytes */
	struct reqcheck_head h;
};

static enum MHD_Result check_field(void *cls, enum MHD_ValueKind kind, const char *key,
                                   size_t key_size, const char *value, size_t value_size)
{
	(void)kind;
	struct head_walk *hw = cls;
	if (!value)
		value_size = 0;
	hw->total += key_size + value_size + 4;
	reqcheck_head_field(&hw->h, key, key_size, value ? value : "", value_size);
	return MHD_YES;
}

static void refuse_request(struct request_ext *x, const struct reqcheck_verdict *v)
{
	struct http_request *req = &x->req;
	json_t *details = NULL;
	if (v->status == 414)
		details = json_pack("{s:I}", "limit", (json_int_t)MAX_TARGET_BYTES);
	else if (v->field)
		details = json_pack("{s:s}", "field", v->field);
	if (v->close) {
		x->close_after = true;
		http_set_header(req, MHD_HTTP_HEADER_CONNECTION, "close");
	}
	http_respond_problem(req, v->status, v->code, v->message, details);
}

/*
 * The request-target, decoded once into req->path: the path every later
 * step (dot-segment check, router, route prefixes) uses, and what the raw
 * target sent upstream decodes to. Responds and returns false on a refusal.
 */
static bool check_target(struct request_ext *x)
{
	struct http_request *req = &x->req;
	size_t len = strlen(req->raw_uri);
	struct reqcheck_verdict v;
	char *path = arena_alloc(&req->arena, len + 1);
	if (reqcheck_target(req->raw_uri, len, MAX_TARGET_BYTES, path, len + 1, &v) < 0) {
		refuse_request(x, &v);
		return false;
	}
	req->path = path;
	return true;
}

/*
 * Every header field line as MHD parsed it (duplicates included), in one
 * walk: their total size against [server] max_header_bytes (431 first), then
 * names, values, Host and the body framing (reqcheck.h). Responds and
 * returns false on a refusal.
 */
static bool check_fields(struct request_ext *x, const char *method, const char *version)
{
	struct http_request *req = &x->req;
	struct http_server *s = req->worker->server;
	/* MHD answers anything but "HTTP/d.d" and HTTP/1.x itself (400, 505). */
	int minor = strlen(version) == 8 ? version[7] - '0' : 1;
	struct head_walk hw = {.total = strlen(req->raw_uri) + strlen(method) + 12};
	reqcheck_head_init(&hw.h, minor);
	MHD_get_connection_values_n(req->conn, MHD_HEADER_KIND, check_field, &hw);
	if (hw.total > (size_t)s->cfg->server_max_header_bytes) {
		http_respond_problem(
		    req, 431, "HEADERS_TOO_LARGE",
		    "The request headers are larger than this server accepts.",
		    json_pack("{s:I}", "limit", (json_int_t)s->cfg->server_max_header_bytes));
		return false;
	}
	struct reqcheck_verdict v;
	if (reqcheck_head_done(&hw.h, &v) < 0) {
		refuse_request(x, &v);
		return false;
	}
	return true;
}

static void respond_too_large(struct http_request *req, const struct listener *l)
{
	http_respond_problem(req, 413, "PAYLOAD_TOO_LARGE",
	                     "The request body is larger than this server accepts.",
	                     json_pack("{s:I}", "limit", (json_int_t)l->max_body_bytes));
}

/* First call: request checks and routing. Responds on any failure. */
static void check_headers(struct request_ext *x, const char *method, const char *version)
{
	struct http_request *req = &x->req;
	req->method = method;
	fill_client_ip(req);
	if (!check_target(x))
		return;

	if (!check_fields(x, method, version))
		return;

	char allow[64];
	const struct route *rt = NULL;
	const struct listener *l = x->l;
	switch (router_match(l->router, req, method, req->path, &rt, allow, sizeof allow)) {
	case ROUTE_FOUND:
		req->route = rt;
		req->route_label = rt->pattern;
		x->route_slot = l->slot_base + rt->index;
		break;
	case ROUTE_NO_METHOD:
		x->route_slot = ROUTE_SLOT_NONE;
		http_set_header(req, "Allow", allow);
		http_respond_problem(req, 405, "METHOD_NOT_ALLOWED",
		                     "This method is not allowed on this path.",
		                     json_pack("{s:s}", "allow", allow));
		return;
	case ROUTE_NO_PATH:
		if (!l->fallback) {
			http_respond_problem(req, 404, "NOT_FOUND", "No such resource.", NULL);
			return;
		}
		req->route_label = l->fallback_label;
		x->route_slot = l->fallback_slot;
		break;
	}

	const char *cl =
	    MHD_lookup_connection_value(req->conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
	int64_t n;
	if (cl && parse_int64_z(cl, 0, INT64_MAX, &n) == 0 && n > l->max_body_bytes)
		respond_too_large(req, l);
}

static void dispatch(struct request_ext *x)
{
	struct http_request *req = &x->req;
	struct http_server *s = req->worker->server;
	if (req->body_too_large) {
		respond_too_large(req, x->l);
		return;
	}
	if (!req->route) {
		x->l->fallback(req);
		return;
	}
	if (req->route->flags & ROUTE_BLOCKING) {
		if (http_defer(req, s->opts.control_pool, req->route->fn, NULL) < 0) {
			http_set_header(req, "Retry-After", "1");
			http_respond_problem(req, 503, "OVERLOADED",
			                     "The server is busy; retry shortly.", NULL);
		}
		return;
	}
	req->route->fn(req);
}

/* True when the client announced a body (so an early answer should not wait for it). */
static bool request_has_body(struct http_request *req)
{
	const char *cl =
	    MHD_lookup_connection_value(req->conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
	return (cl && strcmp(cl, "0") != 0) ||
	       MHD_lookup_connection_value(req->conn, MHD_HEADER_KIND,
	                                   MHD_HTTP_HEADER_TRANSFER_ENCODING) != NULL;
}

static enum MHD_Result on_access(void *cls, struct MHD_Connection *conn, const char *url,
                                 const char *method, const char *version, const char *upload_data,
                                 size_t *upload_data_size, void **req_cls)
{
	(void)cls;
	(void)conn;
	(void)url; /* MHD's decoding cuts at %00: check_headers decodes the raw target */
	struct request_ext *x = *req_cls;
	struct http_request *req = &x->req;

	if (!x->headers_checked) {
		x->headers_checked = true;
		check_headers(x, method, version);
		/*
		 * Refuse an oversized body or doubtful framing before reading on.
		 * Other early errors wait for the final call so the connection can
		 * stay open.
		 */
		if (req->responded &&
		    (req->status == 413 || x->close_after || request_has_body(req)))
			return queue_response(x);
		return MHD_YES;
	}
	if (*upload_data_size) {
		if (req->responded) {
			/* already answered (404, 431, ...): discard the body */
		} else if (!req->body_too_large &&
		           buf_append(&req->body, upload_data, *upload_data_size) < 0) {
			req->body_too_large = true;
			buf_free(&req->body);
		}
		*upload_data_size = 0;
		return MHD_YES;
	}
	if (!req->dispatched && !req->responded) {
		req->dispatched = true;
		dispatch(x);
	} else if (!req->responded && req->resume_fn) {
		http_handler_fn fn = req->resume_fn;
		req->resume_fn = NULL;
		fn(req);
	}
	/* Check suspension first: a deferred job may already be writing req. */
	if (req->suspend_pending) {
		req->suspend_pending = false;
		req->suspended = true;
		MHD_suspend_connection(req->conn);
		return MHD_YES;
	}
	if (!req->responded)
		http_respond_problem(req, 500, "INTERNAL", "The server could not answer.", NULL);
	return queue_response(x);
}

/* ---------- the redirect listener ---------- */

static bool host_chars_ok(const char *h, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		char c = h[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '.' || c == '-' || c == '[' || c == ']' || c == ':'))
			return false;
	}
	return n > 0 && n < 200;
}

static void *on_redirect_uri(void *cls, const char *uri, struct MHD_Connection *conn)
{
	(void)cls;
	(void)conn;
	return xstrdup(uri);
}

static void on_redirect_completed(void *cls, struct MHD_Connection *conn, void **req_cls,
                                  enum MHD_RequestTerminationCode toe)
{
	(void)cls;
	(void)conn;
	(void)toe;
	free(*req_cls);
	*req_cls = NULL;
}

static enum MHD_Result on_redirect(void *cls, struct MHD_Connection *conn, const char *url,
                                   const char *method, const char *version, const char *upload_data,
                                   size_t *upload_data_size, void **req_cls)
{
	(void)url;
	(void)method;
	(void)version;
	(void)upload_data;
	struct http_server *s = cls;
	if (*upload_data_size) {
		*upload_data_size = 0;
		return MHD_YES;
	}
	const char *raw = *req_cls;
	const char *host = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Host");
	size_t hl = 0;
	if (host) {
		/* Drop a port: the HTTPS port is ours, not the plain one. */
		const char *end = host[0] == '[' ? strchr(host, ']') : NULL;
		const char *colon = strrchr(end ? end : host, ':');
		hl = colon ? (size_t)(colon - host) : strlen(host);
	}
	char location[2300];
	if (host && host_chars_ok(host, hl))
		snprintf(location, sizeof location, "https://%.*s:%d%.2000s", (int)hl, host,
		         s->listeners[0].port, raw[0] == '/' ? raw : "/");
	else
		snprintf(location, sizeof location, "https://%s:%d%.2000s", s->redirect_host,
		         s->listeners[0].port, raw[0] == '/' ? raw : "/");
	char rid[HTTP_REQUEST_ID_LEN + 1];
	ulid_prefixed("req", rid, sizeof rid);
	struct MHD_Response *resp =
	    MHD_create_response_from_buffer(0, NULL, MHD_RESPMEM_PERSISTENT);
	MHD_add_response_header(resp, "Location", location);
	MHD_add_response_header(resp, "X-Request-Id", rid);
	enum MHD_Result ret = MHD_queue_response(conn, 308, resp);
	MHD_destroy_response(resp);
	return ret;
}

/* ---------- connections: the per-address limit and the head deadline ---------- */

static struct metric m_conn_refused =
    METRIC_INIT("portcullis_connections_refused_total",
                "Connections closed at accept: their address held its limit", "counter");
static struct metric m_head_timeouts =
    METRIC_INIT("portcullis_header_timeouts_total",
                "Connections closed because no complete request head came within "
                "header_timeout_s",
                "counter");

/*
 * One per connection (MHD's socket context), from its start to its close.
 * While it waits for a request head it is on its worker's wait list, which
 * stays in deadline order because every entry joins at the tail with the
 * same header_timeout_s.
 */
struct conn_state {
	struct MHD_Connection *conn;
	int fd;
	int64_t head_deadline_ms;
	struct conn_state *prev, *next; /* the wait list */
	bool waiting;
	bool counted; /* holds a slot of table for key */
	struct connlimit_key key;
	struct connlimit *table; /* its listener's */
};

static void wait_remove(struct http_worker *w, struct conn_state *c)
{
	if (!c->waiting)
		return;
	if (c->prev)
		c->prev->next = c->next;
	else
		w->wait_head = c->next;
	if (c->next)
		c->next->prev = c->prev;
	else
		w->wait_tail = c->prev;
	c->prev = c->next = NULL;
	c->waiting = false;
}

/* (Re)start c's head deadline: from now, the next request head must be complete in time. */
static void wait_push(struct http_worker *w, struct conn_state *c)
{
	int64_t timeout_ms = w->server->cfg->server_header_timeout_s * 1000;
	wait_remove(w, c);
	c->head_deadline_ms = clock_mono_ms() + timeout_ms;
	c->prev = w->wait_tail;
	if (w->wait_tail)
		w->wait_tail->next = c;
	else
		w->wait_head = c;
	w->wait_tail = c;
	c->waiting = true;
	if (w->head_timer.at_ms < 0)
		http_timer_arm(&w->head_timer, timeout_ms);
}

/*
 * The head deadline passed for the connections at the front of the list.
 * MHD reports a header size once the head is complete (until the response
 * ends); a connection without one is still reading its head, however many
 * bytes trickled in, and is shut down: MHD sees the end of the stream and
 * closes it itself, so its state and its address slot go the usual way.
 */
static void on_head_deadline(void *arg)
{
	struct http_worker *w = arg;
	int64_t now = clock_mono_ms();
	struct conn_state *c;
	while ((c = w->wait_head) && c->head_deadline_ms <= now) {
		wait_remove(w, c);
		if (MHD_get_connection_info(c->conn, MHD_CONNECTION_INFO_REQUEST_HEADER_SIZE))
			continue; /* under way: on_completed restarts the deadline */
		shutdown(c->fd, SHUT_RDWR);
		metric_add(&m_head_timeouts, 1);
	}
	if (c)
		http_timer_arm(&w->head_timer, c->head_deadline_ms - now);
}

/* A request on conn ended (answered or aborted): the next head has its own deadline. */
static void conn_request_ended(struct http_worker *w, struct MHD_Connection *conn)
{
	const union MHD_ConnectionInfo *ci =
	    MHD_get_connection_info(conn, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
	if (ci && ci->socket_context)
		wait_push(w, ci->socket_context);
}

/* Give back a slot whose connection MHD never started (it failed after the accept policy). */
static void drop_reservation(struct worker_daemon *wd)
{
	if (wd->has_reserved)
		connlimit_release(wd->l->conns, &wd->reserved);
	wd->has_reserved = false;
}

static bool addr_is_trusted_proxy(const struct http_server *s, const struct sockaddr *sa)
{
	if (s->n_trusted == 0)
		return false;
	char text[48] = "";
	if (sa->sa_family == AF_INET)
		str_ipv4(&((const struct sockaddr_in *)sa)->sin_addr, text);
	else if (sa->sa_family == AF_INET6 &&
	         !inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)sa)->sin6_addr, text,
	                    sizeof text))
		text[0] = '\0';
	return text[0] && is_trusted_proxy(s, text);
}

/*
 * MHD's accept policy: runs on the worker before MHD makes a connection,
 * which it then starts (on_connection) on this thread before the next
 * accept. Trusted proxies speak for many clients and are not counted.
 */
static enum MHD_Result on_accept(void *cls, const struct sockaddr *addr, socklen_t addrlen)
{
	struct worker_daemon *wd = cls;
	struct http_server *s = wd->w->server;
	drop_reservation(wd);
	struct connlimit_key k;
	if (!connlimit_key(addr, addrlen, &k) || addr_is_trusted_proxy(s, addr))
		return MHD_YES;
	if (!connlimit_acquire(wd->l->conns, &k)) {
		metric_add(&m_conn_refused, 1);
		return MHD_NO;
	}
	wd->reserved = k;
	wd->has_reserved = true;
	return MHD_YES;
}

static void on_connection(void *cls, struct MHD_Connection *conn, void **socket_context,
                          enum MHD_ConnectionNotificationCode code)
{
	struct worker_daemon *wd = cls;
	struct http_worker *w = wd->w;
	if (code == MHD_CONNECTION_NOTIFY_STARTED) {
		struct conn_state *c = xcalloc(1, sizeof *c);
		c->conn = conn;
		const union MHD_ConnectionInfo *ci =
		    MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
		c->fd = ci ? ci->connect_fd : -1;
		if (wd->has_reserved) {
			c->key = wd->reserved;
			c->table = wd->l->conns;
			c->counted = true;
			wd->has_reserved = false;
		}
		*socket_context = c;
		wait_push(w, c);
		return;
	}
	struct conn_state *c = *socket_context;
	if (!c)
		return;
	*socket_context = NULL;
	wait_remove(w, c);
	if (c->counted)
		connlimit_release(c->table, &c->key);
	free(c);
}

/* ---------- worker loop ---------- */

void http_worker_watch(struct http_worker *w, struct http_watch *watch, uint32_t events)
{
	struct epoll_event ev = {.events = events, .data.ptr = watch};
	if (epoll_ctl(w->epfd, watch->registered ? EPOLL_CTL_MOD : EPOLL_CTL_ADD, watch->fd, &ev) ==
	    0)
		watch->registered = 1;
	else
		log_error("epoll_ctl failed on fd %d: %s", watch->fd, strerror(errno));
}

void http_worker_unwatch(struct http_worker *w, struct http_watch *watch)
{
	if (watch->registered)
		epoll_ctl(w->epfd, EPOLL_CTL_DEL, watch->fd, NULL);
	watch->registered = 0;
}

void http_worker_add_timer(struct http_worker *w, struct http_timer *t, void (*cb)(void *arg),
                           void *arg)
{
	if (w->n_timers == HTTP_MAX_TIMERS)
		fatal("too many timers on a worker loop");
	t->at_ms = -1;
	t->cb = cb;
	t->arg = arg;
	w->timers[w->n_timers++] = t;
}

void http_timer_arm(struct http_timer *t, int64_t ms)
{
	t->at_ms = ms < 0 ? -1 : clock_mono_ms() + ms;
}

/* Milliseconds until the earliest armed timer, at most cap. */
static int64_t timers_wait_ms(struct http_worker *w, int64_t cap)
{
	int64_t now = -1;
	for (int i = 0; i < w->n_timers; i++) {
		if (w->timers[i]->at_ms < 0)
			continue;
		if (now < 0)
			now = clock_mono_ms();
		int64_t left = w->timers[i]->at_ms - now;
		if (left < cap)
			cap = left < 0 ? 0 : left;
	}
	return cap;
}

static void timers_fire(struct http_worker *w)
{
	int64_t now = -1;
	for (int i = 0; i < w->n_timers; i++) {
		struct http_timer *t = w->timers[i];
		if (t->at_ms < 0)
			continue;
		if (now < 0)
			now = clock_mono_ms();
		if (now >= t->at_ms) {
			t->at_ms = -1;
			t->cb(t->arg);
		}
	}
}

void http_worker_set_local(struct http_worker *w, void *p)
{
	w->local = p;
}

void *http_worker_local(struct http_worker *w)
{
	return w->local;
}

static void on_mhd_ready(void *arg, int fd, uint32_t events)
{
	(void)arg;
	(void)fd;
	(void)events;
	/* MHD_run below handles it. */
}

static void on_wake(void *arg, int fd, uint32_t events)
{
	(void)events;
	struct http_worker *w = arg;
	uint64_t v;
	ssize_t r = read(fd, &v, sizeof v);
	(void)r;
	process_resumes(w);
}

static void start_drain(struct http_worker *w)
{
	w->draining = true;
	for (int i = 0; i < w->n_daemons; i++) {
		MHD_socket lfd = MHD_quiesce_daemon(w->d[i].daemon);
		if (lfd != MHD_INVALID_SOCKET)
			close(lfd);
		/* Closed: its number may be reused at once (a database file, say), so
		 * http_server_destroy must not close it again. */
		w->d[i].listen_fd = -1;
	}
}

static void *worker_main(void *arg)
{
	struct http_worker *w = arg;
	struct http_server *s = w->server;
	char tname[16];
	snprintf(tname, sizeof tname, "http-%d", w->index & 0xff);
	pthread_setname_np(pthread_self(), tname);
	http_worker_add_timer(w, &w->head_timer, on_head_deadline, w);
	if (s->opts.worker_init)
		s->opts.worker_init(w, s->opts.app);

	int64_t drain_deadline = -1;
	struct epoll_event events[64];
	for (;;) {
		if (atomic_load(&s->stopping) && !w->draining) {
			start_drain(w);
			drain_deadline = clock_mono_ms() + s->cfg->server_shutdown_grace_s * 1000;
		}
		if (w->draining) {
			if (w->in_flight == 0)
				break;
			if (clock_mono_ms() >= drain_deadline) {
				log_warn(
				    "shutdown grace passed with %d requests in flight on worker %d",
				    w->in_flight, w->index);
				atomic_fetch_add(&s->abandoned, w->in_flight);
				break;
			}
		}
		int64_t timeout = 1000;
		for (int i = 0; i < w->n_daemons; i++) {
			MHD_UNSIGNED_LONG_LONG mhd_to;
			if (MHD_get_timeout(w->d[i].daemon, &mhd_to) == MHD_YES &&
			    (int64_t)mhd_to < timeout)
				timeout = (int64_t)mhd_to;
		}
		timeout = timers_wait_ms(w, timeout);
		if (w->draining && timeout > 50)
			timeout = 50;
		int n = epoll_wait(w->epfd, events, 64, (int)timeout);
		for (int i = 0; i < n; i++) {
			struct http_watch *watch = events[i].data.ptr;
			watch->cb(watch->arg, watch->fd, events[i].events);
		}
		timers_fire(w);
		for (int i = 0; i < w->n_daemons; i++)
			MHD_run(w->d[i].daemon);
	}
	bool clean = w->in_flight == 0;
	if (s->opts.worker_fini)
		s->opts.worker_fini(w, s->opts.app);
	for (int i = 0; i < w->n_daemons; i++) {
		if (clean) {
			MHD_stop_daemon(w->d[i].daemon);
			w->d[i].daemon = NULL;
		}
		drop_reservation(&w->d[i]);
	}
	return NULL;
}

static struct MHD_Daemon *start_worker_daemon(struct http_server *s, struct worker_daemon *wd)
{
	const struct config *cfg = s->cfg;
	/* TURBO: optimistic reads and writes on the epoll loop (fewer syscalls). */
	unsigned flags =
	    MHD_USE_EPOLL | MHD_USE_TURBO | MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ERROR_LOG;
	if (wd->l->tls)
		flags |= MHD_USE_TLS;
	unsigned conn_limit = (unsigned)(wd->l->max_connections / s->n_workers);
	if (conn_limit < 1)
		conn_limit = 1;
	/*
	 * MHD's own buffer must hold our header and target limits, so that we
	 * answer 431 and 414 ourselves (problem+json) before MHD would.
	 */
	size_t mem_limit = ((size_t)cfg->server_max_header_bytes + MAX_TARGET_BYTES) * 2 + 8192;
	struct MHD_OptionItem tls_opts[] = {
	    {MHD_OPTION_HTTPS_MEM_CERT, 0, wd->l->tls_cert_pem},
	    {MHD_OPTION_HTTPS_MEM_KEY, 0, wd->l->tls_key_pem},
	    {MHD_OPTION_HTTPS_PRIORITIES, 0, (void *)TLS_PRIORITIES},
	    {MHD_OPTION_END, 0, NULL},
	};
	struct MHD_OptionItem no_opts[] = {{MHD_OPTION_END, 0, NULL}};
	/* The per-address limit is on_accept's, shared by every worker (MHD's is per daemon). */
	return MHD_start_daemon(
	    flags, 0, on_accept, wd, on_access, wd, MHD_OPTION_LISTEN_SOCKET, wd->listen_fd,
	    MHD_OPTION_CONNECTION_LIMIT, conn_limit, MHD_OPTION_CONNECTION_TIMEOUT,
	    (unsigned)cfg->server_connection_timeout_s, MHD_OPTION_CONNECTION_MEMORY_LIMIT,
	    mem_limit, MHD_OPTION_URI_LOG_CALLBACK, on_uri, wd, MHD_OPTION_NOTIFY_COMPLETED,
	    on_completed, wd, MHD_OPTION_NOTIFY_CONNECTION, on_connection, wd,
	    MHD_OPTION_EXTERNAL_LOGGER, mhd_logger, NULL, MHD_OPTION_ARRAY,
	    wd->l->tls ? tls_opts : no_opts, MHD_OPTION_END);
}

struct http_server *http_server_create(const struct http_server_opts *opts, char *err, size_t cap)
{
	const struct config *cfg = opts->cfg;
	struct http_server *s = xcalloc(1, sizeof *s);
	s->opts = *opts;
	s->cfg = cfg;
	s->n_workers = config_worker_count(cfg);
	s->tls = cfg->server_tls_cert[0] != '\0';
	s->n_trusted = config_trusted_proxies(cfg->server_trusted_proxies, s->trusted);
	if (s->n_trusted < 0)
		s->n_trusted = 0; /* config_load validated it */
	metrics_set_route_label(ROUTE_SLOT_PROXY, NULL, "proxy");
	metrics_set_route_label(ROUTE_SLOT_NONE, NULL, "none");
	metrics_register(&m_conn_refused);
	metrics_register(&m_head_timeouts);
	s->listeners[0] = (struct listener){
	    .name = "main",
	    .listen = cfg->server_listen,
	    .router = opts->router,
	    .fallback = opts->fallback,
	    .fallback_label = "proxy",
	    .fallback_slot = ROUTE_SLOT_PROXY,
	    .max_body_bytes = cfg->server_max_body_bytes,
	    .max_connections = cfg->server_max_connections,
	    .slot_base = 0,
	    .tls = s->tls,
	};
	s->n_listeners = 1;
	if (opts->ingest_router && cfg->ingest_listen[0]) {
		if (opts->ingest_router->n > METRICS_MAX_ROUTES - ROUTE_SLOT_INGEST) {
			snprintf(err, cap, "too many ingest routes");
			goto fail;
		}
		s->listeners[s->n_listeners++] = (struct listener){
		    .name = "ingest",
		    .listen = cfg->ingest_listen,
		    .router = opts->ingest_router,
		    .fallback = NULL, /* only the ingest routes: anything else is 404 */
		    .max_body_bytes = cfg->ingest_max_body_bytes,
		    .max_connections = cfg->ingest_max_connections,
		    .slot_base = ROUTE_SLOT_INGEST,
		    .tls = s->tls,
		};
	}
	if (opts->console_router && cfg->console_listen[0]) {
		if (opts->console_router->n > ROUTE_SLOT_CONSOLE_FALLBACK - ROUTE_SLOT_CONSOLE ||
		    (opts->ingest_router && opts->ingest_router->n > 12)) {
			snprintf(err, cap, "too many ingest or console routes");
			goto fail;
		}
		s->listeners[s->n_listeners++] = (struct listener){
		    .name = "console",
		    .listen = cfg->console_listen,
		    .router = opts->console_router,
		    .fallback = opts->console_fallback,
		    .fallback_label = "console-api",
		    .fallback_slot = ROUTE_SLOT_CONSOLE_FALLBACK,
		    .max_body_bytes = 1024 * 1024,
		    .max_connections = cfg->server_max_connections,
		    .slot_base = ROUTE_SLOT_CONSOLE,
		    .tls = cfg->console_tls_cert[0] != '\0',
		};
		metrics_set_route_label(ROUTE_SLOT_CONSOLE_FALLBACK, NULL, "console-api");
	}
	for (int li = 0; li < s->n_listeners; li++) {
		struct listener *l = &s->listeners[li];
		bool console = strcmp(l->name, "console") == 0;
		if (!l->tls)
			continue;
		l->tls_cert_pem = read_file_bounded(
		    console ? cfg->console_tls_cert : cfg->server_tls_cert, err, cap);
		l->tls_key_pem = l->tls_cert_pem ? read_file_bounded(console ? cfg->console_tls_key
		                                                             : cfg->server_tls_key,
		                                                     err, cap)
		                                 : NULL;
		if (!l->tls_key_pem)
			goto fail;
	}
	/*
	 * One address never holds more than a quarter of a listener's
	 * max_connections, whatever max_connections_per_ip says (0: no limit of
	 * its own), so the rest stays for everyone else. Room for one pending
	 * slot a worker.
	 */
	unsigned per_addr = 0;
	for (int li = 0; li < s->n_listeners; li++) {
		struct listener *l = &s->listeners[li];
		for (int i = 0; i < l->router->n; i++)
			metrics_set_route_label(l->slot_base + i, l->router->routes[i].method,
			                        l->router->routes[i].pattern);
		unsigned reserve_cap = (unsigned)(l->max_connections / 4);
		if (reserve_cap < 1)
			reserve_cap = 1;
		unsigned pa = (unsigned)cfg->server_max_connections_per_ip;
		if (pa == 0 || pa > reserve_cap)
			pa = reserve_cap;
		if (li == 0)
			per_addr = pa;
		l->conns =
		    connlimit_create((unsigned)l->max_connections + (unsigned)s->n_workers, pa);
	}

	s->workers = xcalloc((size_t)s->n_workers, sizeof *s->workers);
	for (int i = 0; i < s->n_workers; i++)
		for (int li = 0; li < MAX_LISTENERS; li++)
			s->workers[i].d[li].listen_fd = -1;
	for (int i = 0; i < s->n_workers; i++) {
		struct http_worker *w = &s->workers[i];
		w->server = s;
		w->index = i;
		pthread_mutex_init(&w->resume_lock, NULL);
		w->epfd = epoll_create1(EPOLL_CLOEXEC);
		w->wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
		w->wake_watch = (struct http_watch){.fd = w->wake_fd, .cb = on_wake, .arg = w};
		http_worker_watch(w, &w->wake_watch, EPOLLIN);
		for (int li = 0; li < s->n_listeners; li++) {
			struct listener *l = &s->listeners[li];
			struct worker_daemon *wd = &w->d[li];
			wd->w = w;
			wd->l = l;
			w->n_daemons = li + 1;
			/*
			 * One listening socket, duplicated for each worker: a second
			 * process cannot bind the same port by accident (as it could
			 * with SO_REUSEPORT), and every worker can accept.
			 */
			wd->listen_fd =
			    i == 0 ? make_listener(l->listen, -1, err, cap)
			           : fcntl(s->workers[0].d[li].listen_fd, F_DUPFD_CLOEXEC, 0);
			if (wd->listen_fd < 0) {
				if (li >
				    0) { /* name the listener: the main one is the usual case */
					char why[400];
					snprintf(why, sizeof why, "%s", err);
					snprintf(err, cap, "[%s] listen: %s", l->name, why);
				}
				goto fail;
			}
			if (i == 0)
				l->port = bound_port(wd->listen_fd);
			wd->daemon = start_worker_daemon(s, wd);
			if (!wd->daemon) {
				snprintf(err, cap, "cannot start the %s HTTP%s server on %s",
				         l->name, l->tls ? "S" : "", l->listen);
				goto fail;
			}
			const union MHD_DaemonInfo *di =
			    MHD_get_daemon_info(wd->daemon, MHD_DAEMON_INFO_EPOLL_FD);
			wd->watch =
			    (struct http_watch){.fd = di->epoll_fd, .cb = on_mhd_ready, .arg = w};
			http_worker_watch(w, &wd->watch, EPOLLIN);
		}
	}
	if (cfg->server_redirect_listen[0]) {
		if (!s->tls) {
			snprintf(err, cap, "[server] redirect_listen needs tls_cert and tls_key");
			goto fail;
		}
		char host[256];
		int port;
		config_split_listen(cfg->server_listen, host, sizeof host, &port);
		/* An IPv6 literal needs its brackets back inside a URL. */
		if (strcmp(host, "0.0.0.0") == 0 || strcmp(host, "::") == 0)
			snprintf(s->redirect_host, sizeof s->redirect_host, "localhost");
		else if (strchr(host, ':'))
			snprintf(s->redirect_host, sizeof s->redirect_host, "[%.250s]", host);
		else
			snprintf(s->redirect_host, sizeof s->redirect_host, "%s", host);
		int rfd = make_listener(cfg->server_redirect_listen, -1, err, cap);
		if (rfd < 0)
			goto fail;
		/* One daemon, so MHD's per-address limit is global: at most a quarter of 256. */
		unsigned redirect_per_addr = per_addr < 64 ? per_addr : 64;
		s->redirect_daemon = MHD_start_daemon(
		    MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL, 0, NULL, NULL, on_redirect, s,
		    MHD_OPTION_LISTEN_SOCKET, rfd, MHD_OPTION_CONNECTION_TIMEOUT, 10u,
		    MHD_OPTION_CONNECTION_LIMIT, 256u, MHD_OPTION_PER_IP_CONNECTION_LIMIT,
		    redirect_per_addr, MHD_OPTION_URI_LOG_CALLBACK, on_redirect_uri, NULL,
		    MHD_OPTION_NOTIFY_COMPLETED, on_redirect_completed, NULL, MHD_OPTION_END);
		if (!s->redirect_daemon) {
			close(rfd);
			snprintf(err, cap, "cannot start the redirect listener");
			goto fail;
		}
	}
	return s;
fail:
	http_server_destroy(s);
	return NULL;
}

int http_server_port(const struct http_server *s)
{
	return s->listeners[0].port;
}

static int listener_port(const struct http_server *s, const char *name)
{
	for (int li = 0; li < s->n_listeners; li++)
		if (strcmp(s->listeners[li].name, name) == 0)
			return s->listeners[li].port;
	return -1;
}

int http_server_ingest_port(const struct http_server *s)
{
	return listener_port(s, "ingest");
}

int http_server_console_port(const struct http_server *s)
{
	return listener_port(s, "console");
}

void http_server_stop(struct http_server *s)
{
	atomic_store(&s->stopping, true);
	for (int i = 0; i < s->n_workers; i++)
		if (s->workers[i].wake_fd > 0)
			wake(&s->workers[i]);
}

int http_server_run(struct http_server *s)
{
	for (int i = 0; i < s->n_workers; i++)
		if (pthread_create(&s->workers[i].thread, NULL, worker_main, &s->workers[i]) != 0)
			fatal("cannot start an HTTP worker thread");
	for (int i = 0; i < s->n_workers; i++)
		pthread_join(s->workers[i].thread, NULL);
	if (s->redirect_daemon) {
		MHD_stop_daemon(s->redirect_daemon);
		s->redirect_daemon = NULL;
	}
	return atomic_load(&s->abandoned) ? 1 : 0;
}

void http_server_destroy(struct http_server *s)
{
	if (!s)
		return;
	for (int i = 0; s->workers && i < s->n_workers; i++) {
		struct http_worker *w = &s->workers[i];
		for (int li = 0; li < MAX_LISTENERS; li++) {
			struct worker_daemon *wd = &w->d[li];
			if (wd->daemon && !atomic_load(&s->abandoned))
				MHD_stop_daemon(wd->daemon);
			else if (wd->listen_fd >= 0 && !wd->daemon)
				close(wd->listen_fd);
		}
		if (w->epfd > 0)
			close(w->epfd);
		if (w->wake_fd > 0)
			close(w->wake_fd);
		/* Resumes of abandoned requests that the pools queued after the loop ended. */
		for (struct pending_resume *p = w->resumes, *next; p; p = next) {
			next = p->next;
			free(p);
		}
		if (w->server) /* its lock was initialised */
			pthread_mutex_destroy(&w->resume_lock);
	}
	if (s->redirect_daemon)
		MHD_stop_daemon(s->redirect_daemon);
	free(s->workers);
	for (int li = 0; li < s->n_listeners; li++) {
		struct listener *l = &s->listeners[li];
		connlimit_destroy(l->conns);
		if (l->tls_key_pem)
			explicit_bzero(l->tls_key_pem, strlen(l->tls_key_pem));
		free(l->tls_key_pem);
		free(l->tls_cert_pem);
	}
	free(s);
}
