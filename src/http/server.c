/*
 * server.c: the worker event loops, the listeners and the request
 * lifecycle (see server.h). The connections themselves are h1conn.c's.
 *
 * Each worker owns an epoll set with its duplicate of every listening
 * socket, an eventfd (resumes from other threads, stop and reload
 * requests), its connections (edge-triggered, registered once) and
 * whatever modules register (upstream sockets). Requests never move
 * between threads except while suspended for pool work; a pool job hands
 * its request back through the eventfd, an upstream completion on the
 * loop itself through the loop's ready list, without a system call.
 *
 * Request lifecycle: request_new when a head is complete, request_begin
 * checks the target and the fields (reqcheck.h), decodes the path once and
 * routes on it, the body is collected up to max_body_bytes, then
 * request_dispatch runs the handler; request_end logs, counts and frees.
 */
#include "http/server.h"

#include "core/alloc.h"
#include "core/clock.h"
#include "core/log.h"
#include "core/metrics.h"
#include "core/str.h"
#include "core/ulid.h"
#include "crypto/tls.h"
#include "http/server_int.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <pthread.h>
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
#define REDIRECT_MAX_CONNS          256
#define MAX_SPARE_REQUESTS          64 /* per worker: about 9 KiB each */

#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/asan_interface.h>
#define SPARE_POISON(p, n)   ASAN_POISON_MEMORY_REGION(p, n)
#define SPARE_UNPOISON(p, n) ASAN_UNPOISON_MEMORY_REGION(p, n)
#else
#define SPARE_POISON(p, n)   ((void)(p), (void)(n))
#define SPARE_UNPOISON(p, n) ((void)(p), (void)(n))
#endif

/* ---------- small helpers ---------- */

static int make_listener(const char *listen_spec, char *err, size_t cap)
{
	char host[256];
	int port;
	if (config_split_listen(listen_spec, host, sizeof host, &port) < 0) {
		snprintf(err, cap, "bad listen address %s", listen_spec);
		return -1;
	}
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

/* ---------- the loop's clock ---------- */

/* Per thread: only a worker loop sets on; a reading is kept until loop_clock_expire. */
static _Thread_local struct {
	bool on, have_now, have_mono;
	int64_t now_ms, mono_ms;
} loop_clock;

static void loop_clock_expire(void)
{
	loop_clock.have_now = loop_clock.have_mono = false;
}

int64_t http_loop_now_ms(void)
{
	if (!loop_clock.on)
		return clock_now_ms();
	if (!loop_clock.have_now) {
		loop_clock.now_ms = clock_now_ms();
		loop_clock.have_now = true;
	}
	return loop_clock.now_ms;
}

int64_t http_loop_mono_ms(void)
{
	if (!loop_clock.on)
		return clock_mono_ms();
	if (!loop_clock.have_mono) {
		loop_clock.mono_ms = clock_mono_ms();
		loop_clock.have_mono = true;
	}
	return loop_clock.mono_ms;
}

/* ---------- suspension ---------- */

struct http_worker *http_request_worker(struct http_request *req)
{
	return req->worker;
}

const void *http_fallback_data(struct http_request *req)
{
	return ((struct request_ext *)req)->l->fallback_data;
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

_Static_assert(offsetof(struct request_ext, req) == 0, "the request leads its extension");

void http_resume(struct http_request *req)
{
	struct http_worker *w = req->worker;
	struct request_ext *x = (struct request_ext *)req;
	/*
	 * req->suspended belongs to the owning loop: a pool thread must not read
	 * it (the loop sets it after handing the job over), so the thread test
	 * comes first.
	 */
	if (pthread_equal(pthread_self(), w->thread) && req->suspended) {
		/* On the owning loop (an upstream transfer ended): no lock, no wake-up. */
		if (!x->resume_queued) {
			x->resume_queued = true;
			x->resume_next = w->ready;
			w->ready = x;
		}
		return;
	}
	pthread_mutex_lock(&w->resume_lock);
	x->resume_next = w->resumes;
	w->resumes = x;
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

/* Run one resumed request; a list (either) is walked oldest last, which does not matter. */
static void run_resumes(struct request_ext *x)
{
	while (x) {
		struct request_ext *next = x->resume_next;
		x->resume_next = NULL;
		x->resume_queued = false;
		if (x->req.suspended)
			request_resumed(x);
		x = next;
	}
}

static void process_resumes(struct http_worker *w)
{
	pthread_mutex_lock(&w->resume_lock);
	struct request_ext *x = w->resumes;
	w->resumes = NULL;
	pthread_mutex_unlock(&w->resume_lock);
	run_resumes(x);
}

static void process_ready(struct http_worker *w)
{
	while (w->ready) {
		struct request_ext *x = w->ready;
		w->ready = NULL;
		run_resumes(x);
	}
}

void request_resumed(struct request_ext *x)
{
	struct http_request *req = &x->req;
	req->suspended = false;
	if (!req->responded && req->resume_fn) {
		http_handler_fn fn = req->resume_fn;
		req->resume_fn = NULL;
		fn(req);
	}
	h1_after_handler(x);
}

/* ---------- the request lifecycle ---------- */

bool server_is_trusted_proxy(const struct http_server *s, const char *addr)
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
	const char *xff = http_header(req, "X-Forwarded-For");
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
		if (!server_is_trusted_proxy(s, one)) {
			memcpy(req->client_ip, one, b - a + 1);
			return;
		}
		end = start > 0 ? start - 1 : 0;
	}
}

struct request_ext *request_new(struct http_worker *w, const struct listener *l, struct h1conn *c,
                                const char *peer_ip, bool tls)
{
	/*
	 * Zero everything but the arena's inline chunk (arena_init resets the
	 * arena; its bytes are never read before written) and the parsed head
	 * (h1_parse_request sets what it uses).
	 */
	_Static_assert(offsetof(struct http_request, arena) == 0, "the arena leads the request");
	struct request_ext *x = w->spare;
	if (x) { /* one that ended on this loop: its memory, not a new allocation */
		SPARE_UNPOISON(x, sizeof *x);
		w->spare = x->resume_next;
		w->n_spare--;
	} else {
		x = xmalloc(sizeof *x);
	}
	memset((char *)x + sizeof x->req.arena, 0,
	       offsetof(struct request_ext, h1) + offsetof(struct h1_request, fields) -
	           sizeof x->req.arena);
	struct http_request *req = &x->req;
	arena_init(&req->arena);
	req->worker = w;
	req->conn = c;
	req->start_us = clock_mono_us();
	req->start_ms = http_loop_now_ms();
	req->tls = tls;
	req->route_label = "none";
	/* the id carries received_at: the request log finds rows by time through it */
	ulid_prefixed_at("req", req->start_ms, req->request_id, sizeof req->request_id);
	x->l = l;
	x->c = c;
	x->no_log = l->redirect;
	buf_init(&req->body, (size_t)l->max_body_bytes);
	x->route_slot = ROUTE_SLOT_NONE;
	memcpy(req->client_ip, peer_ip, sizeof req->client_ip);
	memcpy(req->peer_ip, peer_ip, sizeof req->peer_ip);
	w->in_flight++;
	return x;
}

void request_refuse(struct request_ext *x, const struct reqcheck_verdict *v)
{
	struct http_request *req = &x->req;
	json_t *details = NULL;
	if (v->status == 414)
		details = json_pack("{s:I}", "limit", (json_int_t)MAX_TARGET_BYTES);
	else if (v->status == 431)
		details = json_pack("{s:I}", "limit",
		                    (json_int_t)req->worker->server->cfg->server_max_header_bytes);
	else if (v->field)
		details = json_pack("{s:s}", "field", v->field);
	if (v->close)
		x->close_after = true;
	http_respond_problem(req, v->status, v->code, v->message, details);
}

void request_too_large(struct request_ext *x)
{
	http_respond_problem(&x->req, 413, "PAYLOAD_TOO_LARGE",
	                     "The request body is larger than this server accepts.",
	                     json_pack("{s:I}", "limit", (json_int_t)x->l->max_body_bytes));
}

/*
 * The request-target, decoded once into req->path: the path every later
 * step (dot-segment check, router, route prefixes) uses, and what the raw
 * target sent upstream decodes to. Responds and returns false on a refusal.
 */
static bool check_target(struct request_ext *x)
{
	struct http_request *req = &x->req;
	size_t len = x->h1.target_len;
	struct reqcheck_verdict v;
	char *path = arena_alloc(&req->arena, len + 1);
	if (reqcheck_target(req->raw_uri, len, MAX_TARGET_BYTES, path, len + 1, &v) < 0) {
		request_refuse(x, &v);
		return false;
	}
	req->path = path;
	return true;
}

/* The head's size against [server] max_header_bytes, counted as it always was. */
static bool check_head_size(struct request_ext *x)
{
	struct http_request *req = &x->req;
	const struct config *cfg = req->worker->server->cfg;
	size_t total = x->h1.target_len + x->h1.method_len + 12;
	for (size_t i = 0; i < x->n_fields; i++)
		total += x->fields[i].name_len + x->fields[i].value_len + 4;
	if (total <= (size_t)cfg->server_max_header_bytes)
		return true;
	http_respond_problem(req, 431, "HEADERS_TOO_LARGE",
	                     "The request headers are larger than this server accepts.",
	                     json_pack("{s:I}", "limit", (json_int_t)cfg->server_max_header_bytes));
	return false;
}

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

/* The redirect listener: 308 to the same target on the HTTPS listener. */
static void respond_redirect(struct request_ext *x)
{
	struct http_request *req = &x->req;
	struct http_server *s = req->worker->server;
	const char *raw = req->raw_uri;
	const char *host = http_header(req, "Host");
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
	http_set_header(req, "Location", location);
	http_respond(req, 308, NULL, NULL, 0);
}

void request_begin(struct request_ext *x)
{
	struct http_request *req = &x->req;
	struct http_server *s = req->worker->server;
	req->method = x->h1.method;
	req->raw_uri = x->h1.target;
	if (x->l->redirect) {
		respond_redirect(x);
		return;
	}
	req->peer_trusted = s->n_trusted && server_is_trusted_proxy(s, req->peer_ip);
	if (req->peer_trusted)
		client_from_forwarded_for(req);
	if (x->h1.form != H1_FORM_ORIGIN) {
		struct reqcheck_verdict v = {400, "BAD_REQUEST",
		                             "The request target must be a path (origin form).",
		                             "path", true};
		request_refuse(x, &v);
		return;
	}
	if (!check_target(x) || !check_head_size(x))
		return;

	char allow[64];
	const struct route *rt = NULL;
	const struct listener *l = x->l;
	switch (router_match(l->router, req, req->method, req->path, &rt, allow, sizeof allow)) {
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
	if (x->h1.framing == H1_BODY_LENGTH && x->h1.content_length > (uint64_t)l->max_body_bytes)
		request_too_large(x);
}

void request_dispatch(struct request_ext *x)
{
	struct http_request *req = &x->req;
	struct http_server *s = req->worker->server;
	req->dispatched = true;
	if (req->body_too_large) {
		request_too_large(x);
	} else if (!req->route) {
		x->l->fallback(req);
	} else if (req->route->flags & ROUTE_BLOCKING) {
		if (http_defer(req, s->opts.control_pool, req->route->fn, NULL) < 0) {
			http_set_header(req, "Retry-After", "1");
			http_respond_problem(req, 503, "OVERLOADED",
			                     "The server is busy; retry shortly.", NULL);
		}
	} else {
		req->route->fn(req);
	}
	h1_after_handler(x);
}

void request_end(struct request_ext *x, bool ok)
{
	struct http_request *req = &x->req;
	struct http_worker *w = req->worker;
	int64_t dur_us = clock_mono_us() - req->start_us;
	int status = req->responded ? req->status : 0;
	if (!x->no_log)
		metrics_record_request(x->route_slot, status, dur_us);
	if (!x->no_log && req->method && log_enabled(LOG_INFO)) {
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
		          ok ? "ok" : "aborted", NULL);
	}
	if (req->on_complete)
		req->on_complete(req);
	buf_free(&req->body);
	free(req->resp_body);
	arena_free(&req->arena);
	w->in_flight--;
	if (w->n_spare < MAX_SPARE_REQUESTS && pthread_equal(pthread_self(), w->thread)) {
		x->resume_next = w->spare;
		w->spare = x;
		w->n_spare++;
		/* Poisoned but for the link while spare (ASan builds): a use after the end is still
		 * caught. */
		size_t at =
		    offsetof(struct request_ext, resume_next) + sizeof(struct request_ext *);
		SPARE_POISON(x, offsetof(struct request_ext, resume_next));
		SPARE_POISON((char *)x + at, sizeof *x - at);
		return;
	}
	free(x);
}

/* The spare requests (the loop has ended). */
static void free_spares(struct http_worker *w)
{
	while (w->spare) {
		struct request_ext *x = w->spare;
		SPARE_UNPOISON(x, sizeof *x);
		w->spare = x->resume_next;
		free(x);
	}
	w->n_spare = 0;
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
	t->at_ms = ms < 0 ? -1 : http_loop_mono_ms() + ms;
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
	loop_clock_expire(); /* the events took their time: read the clock again */
	int64_t now = -1;
	for (int i = 0; i < w->n_timers; i++) {
		struct http_timer *t = w->timers[i];
		if (t->at_ms < 0)
			continue;
		if (now < 0)
			now = http_loop_mono_ms();
		if (now >= t->at_ms) {
			t->at_ms = -1;
			t->cb(t->arg);
			process_ready(w);
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

static void reload_tls(struct tls_server *t, const char *cert)
{
	char err[512];
	if (!t)
		return;
	if (tls_server_reload(t, err, sizeof err) == 0)
		log_event(LOG_INFO, "tls_reloaded", "cert", cert, NULL);
	else
		log_event(LOG_ERROR, "tls_reload_failed", "error", err, NULL);
}

static void on_wake(void *arg, int fd, uint32_t events)
{
	(void)events;
	struct http_worker *w = arg;
	uint64_t v;
	ssize_t r = read(fd, &v, sizeof v);
	(void)r;
	struct http_server *s = w->server;
	if (w->index == 0 && atomic_exchange(&s->reload, false)) {
		reload_tls(s->tls, s->cfg->server_tls_cert);
		reload_tls(s->console_tls, s->cfg->console_tls_cert);
	}
	process_resumes(w);
}

static void *worker_main(void *arg)
{
	struct http_worker *w = arg;
	struct http_server *s = w->server;
	char tname[16];
	snprintf(tname, sizeof tname, "http-%d", w->index & 0xff);
	pthread_setname_np(pthread_self(), tname);
	loop_clock.on = true;
	http_worker_add_timer(w, &w->conn_timer, h1_on_deadline, w);
	if (s->opts.worker_init)
		s->opts.worker_init(w, s->opts.worker_data);

	int64_t drain_deadline = -1;
	struct epoll_event events[64];
	for (;;) {
		if (atomic_load(&s->stopping) && !w->draining) {
			h1_drain(w);
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
		int64_t timeout = timers_wait_ms(w, 1000);
		if (w->draining && timeout > 50)
			timeout = 50;
		int n = epoll_wait(w->epfd, events, 64, (int)timeout);
		loop_clock_expire();
		for (int i = 0; i < n; i++) {
			struct http_watch *watch = events[i].data.ptr;
			watch->cb(watch->arg, watch->fd, events[i].events);
			process_ready(w);
		}
		timers_fire(w);
		h1_reap(w);
	}
	bool clean = w->in_flight == 0;
	if (s->opts.worker_fini)
		s->opts.worker_fini(w, s->opts.worker_data);
	if (clean)
		h1_close_all(w);
	free_spares(w);
	return NULL;
}

/* ---------- the server ---------- */

static int add_listener(struct http_server *s, struct listener l, char *err, size_t cap)
{
	int i = s->n_listeners;
	s->listeners[i] = l;
	int fd = make_listener(l.listen, err, cap);
	if (fd < 0) {
		if (i > 0) { /* name the listener: the main one is the usual case */
			char why[400];
			snprintf(why, sizeof why, "%s", err);
			snprintf(err, cap, "[%s] listen: %s", l.name, why);
		}
		return -1;
	}
	s->listen_fds[i] = fd;
	s->listeners[i].port = bound_port(fd);
	s->n_listeners++;
	return 0;
}

/*
 * One address never holds more than a quarter of a listener's
 * max_connections, whatever max_connections_per_ip says (0: no limit of
 * its own), so the rest stays for everyone else.
 */
static unsigned per_address_limit(const struct config *cfg, int64_t max_connections)
{
	unsigned reserve_cap = (unsigned)(max_connections / 4);
	if (reserve_cap < 1)
		reserve_cap = 1;
	unsigned pa = (unsigned)cfg->server_max_connections_per_ip;
	if (pa == 0 || pa > reserve_cap)
		pa = reserve_cap;
	return pa;
}

struct http_server *http_server_create(const struct http_server_opts *opts, char *err, size_t cap)
{
	const struct config *cfg = opts->cfg;
	struct http_server *s = xcalloc(1, sizeof *s);
	s->opts = *opts;
	s->cfg = cfg;
	s->n_workers = config_worker_count(cfg);
	for (int i = 0; i < MAX_LISTENERS; i++)
		s->listen_fds[i] = -1;
	s->n_trusted = config_trusted_proxies(cfg->server_trusted_proxies, s->trusted);
	if (s->n_trusted < 0)
		s->n_trusted = 0; /* config_load validated it */
	if (cfg->server_tls_cert[0]) {
		s->tls = tls_server_create(cfg->server_tls_cert, cfg->server_tls_key, err, cap);
		if (!s->tls)
			goto fail;
	}
	metrics_set_route_label(ROUTE_SLOT_PROXY, NULL, "proxy");
	metrics_set_route_label(ROUTE_SLOT_NONE, NULL, "none");
	h1_register_metrics();
	if (add_listener(s,
	                 (struct listener){
	                     .name = "main",
	                     .listen = cfg->server_listen,
	                     .router = opts->router,
	                     .fallback = opts->fallback,
	                     .fallback_label = "proxy",
	                     .fallback_slot = ROUTE_SLOT_PROXY,
	                     .max_body_bytes = cfg->server_max_body_bytes,
	                     .max_connections = cfg->server_max_connections,
	                     .slot_base = 0,
	                     .tls = s->tls != NULL,
	                     .tls_srv = s->tls,
	                 },
	                 err, cap) < 0)
		goto fail;
	if (opts->ingest_router && cfg->ingest_listen[0]) {
		if (opts->ingest_router->n > ROUTE_SLOT_CONSOLE - ROUTE_SLOT_INGEST) {
			snprintf(err, cap, "too many ingest routes");
			goto fail;
		}
		if (add_listener(
		        s,
		        (struct listener){
		            .name = "ingest",
		            .listen = cfg->ingest_listen,
		            .router = opts->ingest_router,
		            .fallback = NULL, /* only the ingest routes: anything else is 404 */
		            .max_body_bytes = cfg->ingest_max_body_bytes,
		            .max_connections = cfg->ingest_max_connections,
		            .slot_base = ROUTE_SLOT_INGEST,
		            .tls = s->tls != NULL,
		            .tls_srv = s->tls,
		        },
		        err, cap) < 0)
			goto fail;
	}
	if (opts->console_router && cfg->console_listen[0]) {
		if (opts->console_router->n > ROUTE_SLOT_CONSOLE_FALLBACK - ROUTE_SLOT_CONSOLE) {
			snprintf(err, cap, "too many console routes");
			goto fail;
		}
		if (cfg->console_tls_cert[0]) { /* its own certificate, reloaded with the main one
			                         */
			s->console_tls = tls_server_create(cfg->console_tls_cert,
			                                   cfg->console_tls_key, err, cap);
			if (!s->console_tls)
				goto fail;
		}
		metrics_set_route_label(ROUTE_SLOT_CONSOLE_FALLBACK, NULL, "console-api");
		if (add_listener(s,
		                 (struct listener){
		                     .name = "console",
		                     .listen = cfg->console_listen,
		                     .router = opts->console_router,
		                     .fallback = opts->console_fallback,
		                     .fallback_data = opts->console_fallback_data,
		                     .fallback_label = "console-api",
		                     .fallback_slot = ROUTE_SLOT_CONSOLE_FALLBACK,
		                     .max_body_bytes = 1024 * 1024,
		                     .max_connections = cfg->server_max_connections,
		                     .slot_base = ROUTE_SLOT_CONSOLE,
		                     .tls = s->console_tls != NULL,
		                     .tls_srv = s->console_tls,
		                 },
		                 err, cap) < 0)
			goto fail;
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
		if (add_listener(s,
		                 (struct listener){
		                     .name = "redirect",
		                     .listen = cfg->server_redirect_listen,
		                     .router = NULL,
		                     .max_body_bytes = 0,
		                     .max_connections = REDIRECT_MAX_CONNS,
		                     .redirect = true,
		                 },
		                 err, cap) < 0)
			goto fail;
	}
	for (int li = 0; li < s->n_listeners; li++) {
		struct listener *l = &s->listeners[li];
		for (int i = 0; l->router && i < l->router->n; i++)
			metrics_set_route_label(l->slot_base + i, l->router->routes[i].method,
			                        l->router->routes[i].pattern);
		unsigned pa = per_address_limit(cfg, l->max_connections);
		if (l->redirect) { /* the main listener's, but a quarter of 256 at most */
			pa = per_address_limit(cfg, s->listeners[0].max_connections);
			if (pa > REDIRECT_MAX_CONNS / 4)
				pa = REDIRECT_MAX_CONNS / 4;
		}
		l->conns = connlimit_create((unsigned)l->max_connections, pa);
	}

	s->workers = xcalloc((size_t)s->n_workers, sizeof *s->workers);
	for (int i = 0; i < s->n_workers; i++) {
		struct http_worker *w = &s->workers[i];
		w->server = s;
		w->index = i;
		pthread_mutex_init(&w->resume_lock, NULL);
		w->epfd = epoll_create1(EPOLL_CLOEXEC);
		w->wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
		w->wake_watch = (struct http_watch){.fd = w->wake_fd, .cb = on_wake, .arg = w};
		http_worker_watch(w, &w->wake_watch, EPOLLIN);
		w->head_wait.timeout_ms = cfg->server_header_timeout_s * 1000;
		w->idle_wait.timeout_ms = cfg->server_connection_timeout_s * 1000;
		w->linger_wait.timeout_ms = 2000;
		for (int li = 0; li < s->n_listeners; li++) {
			struct worker_listener *wl = &w->ls[li];
			wl->w = w;
			wl->l = &s->listeners[li];
			/*
			 * One listening socket, duplicated for each worker: a second
			 * process cannot bind the same port by accident (as it could
			 * with SO_REUSEPORT), and every worker can accept; the kernel
			 * wakes one worker per connection (EPOLLEXCLUSIVE).
			 */
			int fd = s->listen_fds[li];
			if (i == 0)
				s->listen_fds[li] = -1; /* worker 0 owns it now */
			else
				fd = fcntl(s->workers[0].ls[li].watch.fd, F_DUPFD_CLOEXEC, 0);
			if (fd < 0) {
				snprintf(err, cap, "cannot duplicate a listening socket: %s",
				         strerror(errno));
				goto fail;
			}
			wl->watch = (struct http_watch){.fd = fd, .cb = h1_on_accept, .arg = wl};
			w->n_ls = li + 1;
			http_worker_watch(w, &wl->watch, EPOLLIN | EPOLLEXCLUSIVE);
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
	for (int i = 0; i < s->n_listeners; i++)
		if (strcmp(s->listeners[i].name, name) == 0)
			return s->listeners[i].port;
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

void http_server_reload(struct http_server *s)
{
	atomic_store(&s->reload, true);
	if (s->n_workers > 0 && s->workers[0].wake_fd > 0)
		wake(&s->workers[0]);
}

int http_server_run(struct http_server *s)
{
	for (int i = 0; i < s->n_workers; i++)
		if (pthread_create(&s->workers[i].thread, NULL, worker_main, &s->workers[i]) != 0)
			fatal("cannot start an HTTP worker thread");
	for (int i = 0; i < s->n_workers; i++)
		pthread_join(s->workers[i].thread, NULL);
	return atomic_load(&s->abandoned) ? 1 : 0;
}

void http_server_destroy(struct http_server *s)
{
	if (!s)
		return;
	for (int li = 0; li < MAX_LISTENERS; li++)
		if (s->listen_fds[li] >= 0)
			close(s->listen_fds[li]);
	for (int i = 0; s->workers && i < s->n_workers; i++) {
		struct http_worker *w = &s->workers[i];
		/* Listening sockets a worker did not close (it never ran, or never drained). */
		for (int li = 0; li < w->n_ls; li++)
			if (w->ls[li].watch.fd >= 0)
				close(w->ls[li].watch.fd);
		if (w->epfd > 0)
			close(w->epfd);
		if (w->wake_fd > 0)
			close(w->wake_fd);
		if (w->server) /* its lock was initialised */
			pthread_mutex_destroy(&w->resume_lock);
	}
	free(s->workers);
	for (int li = 0; li < s->n_listeners; li++)
		connlimit_destroy(s->listeners[li].conns);
	if (!atomic_load(&s->abandoned)) {
		tls_server_destroy(s->tls);
		tls_server_destroy(s->console_tls);
	}
	free(s);
}
