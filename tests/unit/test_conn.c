/*
 * test_conn.c: unit tests for src/http/conn.c, the connection state
 * machine: every transition the layer takes is allowed, every other pair
 * of states is refused, and conn_move aborts on each refused one (checked
 * in a child process per pair, since it is fatal by design).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "child_aborts.h"
#include "http/conn.h"

/* The transitions conn.h documents, and no others. */
static const struct {
	enum conn_state from, to;
} legal[] = {
    {CONN_HANDSHAKE, CONN_HEAD},   {CONN_HANDSHAKE, CONN_H2},  {CONN_H2, CONN_CLOSED},
    {CONN_HANDSHAKE, CONN_CLOSED}, {CONN_HEAD, CONN_BODY},     {CONN_HEAD, CONN_H2},
    {CONN_HEAD, CONN_HANDLER},     {CONN_HEAD, CONN_WRITE},    {CONN_HEAD, CONN_CLOSED},
    {CONN_BODY, CONN_HANDLER},     {CONN_BODY, CONN_WRITE},    {CONN_BODY, CONN_CLOSED},
    {CONN_HANDLER, CONN_WRITE},    {CONN_WRITE, CONN_HEAD},    {CONN_WRITE, CONN_LINGER},
    {CONN_WRITE, CONN_CLOSED},     {CONN_LINGER, CONN_CLOSED},
};

static bool is_legal(enum conn_state from, enum conn_state to)
{
	for (size_t i = 0; i < sizeof legal / sizeof *legal; i++)
		if (legal[i].from == from && legal[i].to == to)
			return true;
	return false;
}

static void test_table_is_exactly_the_documented_transitions(void **state)
{
	(void)state;
	for (int from = 0; from < CONN_STATES; from++)
		for (int to = 0; to < CONN_STATES; to++)
			assert_int_equal(conn_transition_ok(from, to), is_legal(from, to));
	/* Out-of-range states are refused too. */
	assert_false(conn_transition_ok(CONN_STATES, CONN_HEAD));
	assert_false(conn_transition_ok(CONN_HEAD, CONN_STATES));
	assert_false(conn_transition_ok((enum conn_state) - 1, CONN_HEAD));
}

static void test_a_request_cycle_moves(void **state)
{
	(void)state;
	enum conn_state s = CONN_HANDSHAKE;
	const enum conn_state path[] = {CONN_HEAD,  CONN_BODY,    CONN_HANDLER, CONN_WRITE,
	                                CONN_HEAD,  CONN_HANDLER, CONN_WRITE,   CONN_HEAD,
	                                CONN_WRITE, CONN_LINGER,  CONN_CLOSED};
	for (size_t i = 0; i < sizeof path / sizeof *path; i++) {
		conn_move(&s, path[i]);
		assert_int_equal(s, path[i]);
	}
}

struct move {
	enum conn_state from, to;
};

static void run_move(void *arg)
{
	const struct move *m = arg;
	enum conn_state s = m->from;
	conn_move(&s, m->to);
	if (s != m->to)
		_exit(2);
}

/* conn_move(from -> to) in a child: true when the child aborted (the fatal path). */
static bool move_aborts(enum conn_state from, enum conn_state to)
{
	struct move m = {from, to};
	return child_aborts(run_move, &m);
}

static void test_every_illegal_transition_aborts(void **state)
{
	(void)state;
	int refused = 0;
	for (int from = 0; from < CONN_STATES; from++)
		for (int to = 0; to < CONN_STATES; to++) {
			if (is_legal(from, to))
				continue;
			if (!move_aborts(from, to))
				fail_msg("%s -> %s did not abort", conn_state_name(from),
				         conn_state_name(to));
			refused++;
		}
	assert_int_equal(refused, CONN_STATES * CONN_STATES - (int)(sizeof legal / sizeof *legal));
	/* The handler's state never closes directly, and nothing leaves CLOSED. */
	assert_true(move_aborts(CONN_HANDLER, CONN_CLOSED));
	assert_true(move_aborts(CONN_CLOSED, CONN_HEAD));
	/* A legal one in a child exits normally (the check above is not vacuous). */
	assert_false(move_aborts(CONN_HEAD, CONN_BODY));
}

static void test_names(void **state)
{
	(void)state;
	assert_string_equal(conn_state_name(CONN_HANDLER), "handler");
	assert_string_equal(conn_state_name(CONN_LINGER), "linger");
	assert_string_equal(conn_state_name(CONN_STATES), "invalid");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_table_is_exactly_the_documented_transitions),
	    cmocka_unit_test(test_a_request_cycle_moves),
	    cmocka_unit_test(test_every_illegal_transition_aborts),
	    cmocka_unit_test(test_names),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
