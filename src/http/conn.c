/*
 * conn.c: the connection state table (see conn.h). One bit per allowed
 * transition; conn_move is the only way the connection layer changes a
 * connection's state.
 */
#include "http/conn.h"

#include "core/alloc.h"

#include <stdio.h>

#define BIT(s) (1u << (s))

static const unsigned allowed[CONN_STATES] = {
    [CONN_HANDSHAKE] = BIT(CONN_HEAD) | BIT(CONN_H2) | BIT(CONN_CLOSED),
    [CONN_HEAD] =
        BIT(CONN_BODY) | BIT(CONN_HANDLER) | BIT(CONN_WRITE) | BIT(CONN_H2) | BIT(CONN_CLOSED),
    [CONN_BODY] = BIT(CONN_HANDLER) | BIT(CONN_WRITE) | BIT(CONN_CLOSED),
    [CONN_HANDLER] = BIT(CONN_WRITE),
    [CONN_WRITE] = BIT(CONN_HEAD) | BIT(CONN_LINGER) | BIT(CONN_CLOSED),
    [CONN_LINGER] = BIT(CONN_CLOSED),
    [CONN_H2] = BIT(CONN_CLOSED),
    [CONN_CLOSED] = 0,
};

static const char *const names[CONN_STATES] = {
    [CONN_HANDSHAKE] = "handshake",
    [CONN_HEAD] = "head",
    [CONN_BODY] = "body",
    [CONN_HANDLER] = "handler",
    [CONN_WRITE] = "write",
    [CONN_LINGER] = "linger",
    [CONN_H2] = "h2",
    [CONN_CLOSED] = "closed",
};

const char *conn_state_name(enum conn_state s)
{
	return (unsigned)s < CONN_STATES ? names[s] : "invalid";
}

bool conn_transition_ok(enum conn_state from, enum conn_state to)
{
	return (unsigned)from < CONN_STATES && (unsigned)to < CONN_STATES &&
	       (allowed[from] & BIT(to)) != 0;
}

void conn_move(enum conn_state *s, enum conn_state to)
{
	if (!conn_transition_ok(*s, to)) {
		char msg[96];
		snprintf(msg, sizeof msg, "connection state %s -> %s is not a legal transition",
		         conn_state_name(*s), conn_state_name(to));
		fatal(msg);
	}
	*s = to;
}
