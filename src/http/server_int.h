/*
 * server_int.h: what the server's files share inside src/http (server.c:
 * the worker loops, listeners and the request lifecycle; h1conn.c: the
 * HTTP/1.1 connections on those loops; response.c: the request accessors).
 * Not for other modules: they see server.h and request.h only.
 */
#ifndef PORTCULLIS_HTTP_SERVER_INT_H
#define PORTCULLIS_HTTP_SERVER_INT_H

#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

#include "http/connlimit.h"
#include "http/h1parse.h"
#include "http/reqcheck.h"
#include "http/request.h"
#include "http/server.h"

#define MAX_LISTENERS    4    /* main, ingest, console, redirect */
#define MAX_TARGET_BYTES 8192 /* longer request-targets get our 414 */

struct h1conn;
struct h2sess;
struct h2stream;
struct tls_server;

/*
 * One listener: the main one ([server] listen), in serve the ingest one
 * ([ingest] listen: its own router, body and connection limits, the TLS
 * credentials of [server]) and the console one ([console] listen: its own
 * router, fallback and TLS credentials, [console] tls_cert), and the
 * plain-HTTP redirect listener ([server] redirect_listen). Every worker
 * accepts on its own duplicate of the one listening socket.
 */
struct listener {
	const char *name; /* "main", "ingest", "console", "redirect": in error messages */
	const char *listen;
	const struct router *router;
	http_handler_fn fallback;   /* NULL: 404 for paths no route matches */
	const void *fallback_data;  /* what fallback reads (http_fallback_data) */
	const char *fallback_label; /* the route label of what fallback answers */
	int fallback_slot;          /* and its metrics slot */
	int64_t max_body_bytes;
	int64_t max_connections;
	int slot_base;              /* the metrics slot of its route 0 */
	struct connlimit *conns;    /* open connections per client address, every worker */
	atomic_int open;            /* connections open now, every worker */
	bool tls;                   /* TLS on this listener (tls_srv set) */
	struct tls_server *tls_srv; /* its credentials (the server's or the console's) */
	bool redirect;              /* answers every request 308 to the main listener */
	int port;
};

/* A worker's accepting end of one listener. */
struct worker_listener {
	struct http_watch watch; /* the listening socket (its own duplicate) */
	struct http_worker *w;
	struct listener *l;
};

/* Connections waiting for a deadline, in deadline order (every entry has the same timeout). */
struct conn_list {
	struct h1conn *first, *last;
	int64_t timeout_ms;
};

struct http_worker {
	struct http_server *server;
	int index;
	pthread_t thread;
	struct worker_listener ls[MAX_LISTENERS];
	int n_ls;
	int epfd;
	int wake_fd; /* eventfd: resumes queued by other threads, stop and reload requests */
	struct http_watch wake_watch;
	pthread_mutex_t resume_lock;
	struct request_ext *resumes; /* resumed by other threads, under resume_lock */
	struct request_ext *ready;   /* resumed on this loop: run after the current event */
	int in_flight;               /* requests begun and not yet ended */
	bool draining;
	struct http_timer *timers[HTTP_MAX_TIMERS]; /* modules' timers and the connections' */
	int n_timers;
	void *local;
	struct h1conn *conns;         /* every open connection */
	struct h1conn *dead;          /* closed in this batch of events: freed after it */
	struct conn_list head_wait;   /* HANDSHAKE and HEAD: [server] header_timeout_s */
	struct conn_list idle_wait;   /* BODY and WRITE: [server] connection_timeout_s */
	struct conn_list linger_wait; /* LINGER: a short while */
	struct http_timer conn_timer; /* the earliest of the three */
	char date[40];                /* "Date: ..." of date_s, for responses */
	int64_t date_s;
	struct request_ext
	    *spare; /* ended requests kept for the next ones (no malloc per request) */
	int n_spare;
};

struct http_server {
	struct http_server_opts opts;
	const struct config *cfg;
	int n_workers;
	struct http_worker *workers;
	struct listener listeners[MAX_LISTENERS];
	int n_listeners;
	int listen_fds[MAX_LISTENERS];  /* worker 0's, until it starts */
	struct tls_server *tls;         /* [server] tls_cert's; NULL: plain HTTP */
	struct tls_server *console_tls; /* [console] tls_cert's; NULL: plain HTTP */
	char redirect_host[256];
	atomic_bool stopping;
	atomic_bool reload; /* SIGHUP: load the certificate again */
	char trusted[CONFIG_MAX_TRUSTED_PROXIES][48];
	int n_trusted;
	atomic_int abandoned; /* requests given up at the end of the grace, all workers */
};

/* A request and what the server keeps beside it. */
struct request_ext {
	struct http_request req;
	const struct listener *l;
	struct h1conn *c;
	int route_slot;
	bool close_after; /* refused for its framing: answer, then close */
	bool no_log;      /* the redirect listener's: no access line, no metrics */
	bool resume_queued;
	struct request_ext *resume_next;
	struct h2stream *h2; /* the HTTP/2 stream it came on (h2conn.c), NULL on HTTP/1.x */
	/* The request's fields, NUL-terminated, in wire order (into the arena). */
	const struct h1_field *fields;
	size_t n_fields;
	/* Query arguments, decoded on first use. */
	struct query_arg *args;
	int n_args;
	bool args_parsed;
	struct h1_request h1; /* the parsed head */
};

struct query_arg {
	const char *name, *value;
};

/* ---- server.c: the request lifecycle, called by the connection layer ---- */

/** A new request on connection c of listener l (its arena, id, clock). */
struct request_ext *request_new(struct http_worker *w, const struct listener *l, struct h1conn *c,
                                const char *peer_ip, bool tls);
/**
 * The head was parsed (x->h1 and x->fields set): checks, routing, the
 * early 413. Responds on a refusal (req->responded).
 */
void request_begin(struct request_ext *x);
/** True when addr (text) is one of [server] trusted_proxies. */
bool server_is_trusted_proxy(const struct http_server *s, const char *addr);
/** Respond to a refused head (the parser's or a check's verdict). */
void request_refuse(struct request_ext *x, const struct reqcheck_verdict *v);
/** Respond 413 for the listener's body limit. */
void request_too_large(struct request_ext *x);
/** The body is complete: run the handler (or respond 413 for an oversized one). */
void request_dispatch(struct request_ext *x);
/** The request ended (answered and written: ok, or aborted): log, count, free. */
void request_end(struct request_ext *x, bool ok);
/** A request resumed on its loop: run resume_fn; then the connection layer continues. */
void request_resumed(struct request_ext *x);

/* ---- h1conn.c: HTTP/1.1 connections ---- */

/** The accept callback of a worker's listening socket (watch arg: its worker_listener). */
void h1_on_accept(void *arg, int fd, uint32_t events);
/** The handler is done with x (responded or suspended): continue its connection. */
void h1_after_handler(struct request_ext *x);
/** Free the connections closed since the last call (after each batch of events). */
void h1_reap(struct http_worker *w);
/** The connections' deadline timer. */
void h1_on_deadline(void *arg);
/** Stop accepting: the worker starts draining. Idle connections are closed. */
void h1_drain(struct http_worker *w);
/** Close every connection of the worker (at the end of its loop). */
void h1_close_all(struct http_worker *w);
/** The metrics of the connection layer (registered once). */
void h1_register_metrics(void);

/** h2conn.c has output for c's session: write it (unless c's I/O is already on the stack). */
void h1_h2_kick(struct h1conn *c);

/* ---- h2conn.c: HTTP/2 streams on a connection h1conn.c accepted (ALPN h2) ---- */

/** A server session on c (its SETTINGS queued). */
struct h2sess *h2_new(struct h1conn *c, struct http_worker *w, const struct listener *l,
                      const char *peer_ip);
/** Bytes the client sent: 0, or -1 when the connection must close (nghttp2 queued a GOAWAY). */
int h2_input(struct h2sess *h, const char *data, size_t n);
/** Bytes to send next (valid until the next call): their length, 0 for none, < 0 fatal. */
ssize_t h2_output(struct h2sess *h, const char **data);
/** True when the session neither reads nor writes any more (GOAWAY done): close. */
bool h2_done(const struct h2sess *h);
/** True while a stream's request is with its handler (the connection must stay). */
bool h2_handlers(const struct h2sess *h);
/** Shutdown: GOAWAY for new streams; those under way finish. */
void h2_drain(struct h2sess *h);
/** The connection is closing: free the session; requests with a handler end when it returns. */
void h2_free(struct h2sess *h);
/** The handler is done with x, a stream's request (h1_after_handler's HTTP/2 half). */
void h2_after_handler(struct request_ext *x);

/* ---- response.c ---- */

/** The status line's reason phrase (RFC 9110 section 15), "" for codes without one here. */
const char *http_reason_phrase(int status);

#endif
