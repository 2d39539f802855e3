/*
 * server.h: the HTTP(S) server. N worker threads, each running one event
 * loop (epoll) that accepts on its share of every listening socket, drives
 * its own client connections (the project's connection layer, h1conn.c:
 * HTTP/1.1 over plain TCP or GnuTLS) and anything else registered on the
 * loop, such as the upstream client's connections. Slow work goes to pools
 * and the request is suspended meanwhile; nothing on a loop blocks.
 */
#ifndef PORTCULLIS_HTTP_SERVER_H
#define PORTCULLIS_HTTP_SERVER_H

#include <stddef.h>
#include <stdint.h>

#include "core/config.h"
#include "core/workpool.h"
#include "http/request.h"
#include "http/router.h"

struct http_server;
struct http_worker;

struct http_server_opts {
	const struct config *cfg;
	const struct router *router;
	/* Handler for paths no route matches (the data plane); NULL: 404. */
	http_handler_fn fallback;
	/*
	 * The routes of the ingest listener ([ingest] listen, when set): its own
	 * socket, body and connection limits, the TLS settings of [server].
	 * Paths it does not route are 404. NULL: no ingest listener.
	 */
	const struct router *ingest_router;
	/*
	 * The routes of the console listener ([console] listen, when set): its
	 * own socket and TLS settings ([console] tls_cert, tls_key); paths it
	 * does not route go to console_fallback (NULL: 404). NULL: no console
	 * listener.
	 */
	const struct router *console_router;
	http_handler_fn console_fallback;
	/* What console_fallback reads through http_fallback_data (a fallback is no route). */
	const void *console_fallback_data;
	/* Pool for ROUTE_BLOCKING handlers. */
	struct workpool *control_pool;
	/* Called on each worker thread when it starts and stops (may be NULL), with worker_data. */
	void (*worker_init)(struct http_worker *w, void *data);
	void (*worker_fini)(struct http_worker *w, void *data);
	void *worker_data;
};

/** Bind the listeners and prepare the workers. NULL with a message in err on failure. */
struct http_server *http_server_create(const struct http_server_opts *opts, char *err, size_t cap);
/** Run until http_server_stop; returns 0 after a clean drain. */
int http_server_run(struct http_server *s);
/** Ask the server to stop accepting and drain. Async-signal-safe. */
void http_server_stop(struct http_server *s);
/**
 * Load the TLS certificate and key again (SIGHUP): new handshakes use
 * them, open connections keep theirs. Async-signal-safe; a failure is
 * logged and the old certificate stays.
 */
void http_server_reload(struct http_server *s);
/** Free the server (after http_server_run returned). */
void http_server_destroy(struct http_server *s);
/** The TCP port the main listener is bound to. */
int http_server_port(const struct http_server *s);
/** The TCP port the ingest listener is bound to, or -1 when there is none. */
int http_server_ingest_port(const struct http_server *s);
/** The TCP port the console listener is bound to, or -1 when there is none. */
int http_server_console_port(const struct http_server *s);

/* --- worker-loop hooks for modules that do their own I/O on the loop --- */

typedef void (*http_io_cb)(void *arg, int fd, uint32_t epoll_events);

/** An fd watched by a worker loop. The struct must outlive the watch. */
struct http_watch {
	int fd;
	http_io_cb cb;
	void *arg;
	int registered;
};

/** Watch (or change the events of) an fd on w's loop. */
void http_worker_watch(struct http_worker *w, struct http_watch *watch, uint32_t epoll_events);
/** Stop watching an fd (before closing it). */
void http_worker_unwatch(struct http_worker *w, struct http_watch *watch);
/** A module's timer on a worker loop: add it once, then arm and disarm it freely. */
struct http_timer {
	int64_t at_ms; /* monotonic deadline; -1 when disarmed */
	void (*cb)(void *arg);
	void *arg;
};
#define HTTP_MAX_TIMERS 4
/** Add t (disarmed) to w's loop; at most HTTP_MAX_TIMERS per worker. */
void http_worker_add_timer(struct http_worker *w, struct http_timer *t, void (*cb)(void *arg),
                           void *arg);
/** Fire t's callback after ms on its loop (-1 disarms). Loop thread only. */
void http_timer_arm(struct http_timer *t, int64_t ms);
/** Per-worker pointer for a module (e.g. the upstream client). */
void http_worker_set_local(struct http_worker *w, void *p);
void *http_worker_local(struct http_worker *w);
/** The worker a request runs on. */
struct http_worker *http_request_worker(struct http_request *req);
/**
 * For a listener's fallback: the data its listener was given with it
 * (http_server_opts.console_fallback_data; NULL for the others), as a
 * route's handler reads req->route->data.
 */
const void *http_fallback_data(struct http_request *req);
/**
 * The clock as the calling worker loop read it first since its last
 * epoll_wait (one reading per batch of events, like nginx's cached time:
 * at most one batch old), or the clock itself on any other thread. For
 * stamps, deadlines and the rate limit on the hot path; durations use
 * clock_mono_us. http_loop_now_ms is CLOCK_REALTIME, http_loop_mono_ms
 * CLOCK_MONOTONIC, both in milliseconds (core/clock.h).
 */
int64_t http_loop_now_ms(void);
int64_t http_loop_mono_ms(void);

#endif
