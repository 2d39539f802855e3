/*
 * conn.h: the states of one client connection and the transitions allowed
 * between them, as data. The connection layer (h1conn.c) moves a
 * connection only through conn_move, which aborts on a transition the
 * table does not list: a protocol bug stops the process at the line that
 * made it instead of answering from a state that cannot be trusted (as
 * HAProxy and h2o assert theirs). Pure: the unit tests walk every pair.
 *
 *   HANDSHAKE -> HEAD                  TLS done (plain connections start in HEAD)
 *   HANDSHAKE -> H2                    TLS done, the client chose h2 by ALPN (h2conn.c's streams)
 *   HEAD      -> H2                    plain, opened with the h2c preface ([server] h2c)
 *   HEAD      -> BODY                  a head was read and its body follows
 *   HEAD      -> HANDLER               a head without a body, routed and dispatched
 *   HEAD      -> WRITE                 a head refused (400, 408, 414, 431, 501, 505)
 *   BODY      -> HANDLER               the body is complete
 *   BODY      -> WRITE                 refused while its body was read (bad chunk, discarded body)
 *   HANDLER   -> WRITE                 the handler (or its pool job, upstream, ...) responded
 *   WRITE     -> HEAD                  the response went out; keep-alive: the next request
 *   WRITE     -> LINGER                the response went out; what the client still sends is
 *                                      read and dropped before the close (no RST over it)
 *   HANDSHAKE, HEAD, BODY, WRITE, LINGER, H2 -> CLOSED   end of stream, error, deadline, shutdown
 *
 * HANDLER never goes straight to CLOSED: the handler may be running on a
 * pool thread, so the request must answer (WRITE) before it can end.
 */
#ifndef PORTCULLIS_HTTP_CONN_H
#define PORTCULLIS_HTTP_CONN_H

#include <stdbool.h>

enum conn_state {
	CONN_HANDSHAKE, /* TLS handshake under way */
	CONN_HEAD,      /* waiting for (or reading) a request head */
	CONN_BODY,      /* reading the body of the request under way */
	CONN_HANDLER,   /* the request is with its handler: running, suspended or on a pool */
	CONN_WRITE,     /* writing the response */
	CONN_LINGER,    /* response sent, write side shut: dropping what the client still sends */
	CONN_H2,        /* HTTP/2: its streams are h2conn.c's, each with its own request */
	CONN_CLOSED,    /* the socket is closed */
};
#define CONN_STATES (CONN_CLOSED + 1)

/** The state's name ("head", "body", ...), for messages. */
const char *conn_state_name(enum conn_state s);
/** True when the table allows from -> to. */
bool conn_transition_ok(enum conn_state from, enum conn_state to);
/** Move *s to `to`; a transition the table does not allow aborts (fatal) naming both states. */
void conn_move(enum conn_state *s, enum conn_state to);

#endif
