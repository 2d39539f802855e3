/*
 * test_pipeline.c: unit tests for src/gateway/pipeline.c: which state
 * changes the context allows; steps run in table order and stop at the
 * first that ends; a step that suspends for a pool (gw_defer) or an event
 * (gw_suspend) resumes into the next step and not before; a pool job that
 * answers ends the pipeline; a full pool leaves the step running; a wrong
 * state change, a step that goes on after suspending and a job that goes on
 * after answering abort; the four tables follow docs/contract.md's order of
 * checks and share the rows of checks 1 to 6.
 *
 * The context is suspended and resumed through fake gw_ops, so the test
 * plays the pool thread (gw_run_job) and the loop (gw_resume) itself.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "child_aborts.h"
#include "gateway/pipeline.h"
#include "gateway/steps.h"

/* ---- fake suspension, and a trace of what ran ---- */

static struct {
	int defers, suspends, cancels, wakes;
	struct workpool *pool;
	enum workpool_lane lane;
	int defer_rc; /* what defer answers: 0, or -1 for a full queue */
	char trace[256];
	enum gw_state seen; /* the state the last step or job ran in */
} F;

static void trace(struct gw_request *g, const char *what)
{
	if (F.trace[0])
		strcat(F.trace, " ");
	strcat(F.trace, what);
	F.seen = g->state;
}

static int fake_defer(struct gw_request *g, struct workpool *pool, enum workpool_lane lane)
{
	(void)g;
	F.defers++;
	F.pool = pool;
	F.lane = lane;
	return F.defer_rc;
}

#define COUNT(fn, counter)                                                                         \
	static void fn(struct gw_request *g)                                                       \
	{                                                                                          \
		(void)g;                                                                           \
		F.counter++;                                                                       \
	}
COUNT(fake_suspend, suspends)
COUNT(fake_cancel, cancels)
COUNT(fake_wake, wakes)

static const struct gw_ops fake_ops = {fake_defer, fake_suspend, fake_cancel, fake_wake};

/* A pool that is never run: fake_defer only records it. */
#define POOL ((struct workpool *)&F)

/* A step that traces its row's name and goes on; one that ends. */
static enum gw_next step_next(struct gw_request *g)
{
	trace(g, g->pipeline->steps[g->at].name);
	return GW_NEXT;
}

static enum gw_next step_end(struct gw_request *g)
{
	trace(g, "end");
	return GW_END;
}

static enum gw_next job_next(struct gw_request *g)
{
	trace(g, "job");
	return GW_NEXT;
}

static enum gw_next job_answers(struct gw_request *g)
{
	trace(g, "job-answers");
	g->req->responded = true;
	g->req->status = 401;
	return GW_END;
}

static enum gw_next job_answers_and_goes_on(struct gw_request *g)
{
	g->req->responded = true;
	return GW_NEXT;
}

static enum gw_next step_defer(struct gw_request *g)
{
	trace(g, "defer");
	if (gw_defer(g, POOL, WORKPOOL_LOW, job_next) == 0)
		return GW_WAIT;
	trace(g, "full");
	return GW_END;
}

static enum gw_next step_defer_answering(struct gw_request *g)
{
	trace(g, "defer");
	return gw_defer(g, POOL, WORKPOOL_NORMAL, job_answers) == 0 ? GW_WAIT : GW_END;
}

static enum gw_next step_defer_bad_job(struct gw_request *g)
{
	return gw_defer(g, POOL, WORKPOOL_NORMAL, job_answers_and_goes_on) == 0 ? GW_WAIT : GW_END;
}

static enum gw_next step_defer_then_next(struct gw_request *g)
{
	(void)gw_defer(g, POOL, WORKPOOL_NORMAL, job_next);
	return GW_NEXT; /* wrong: the pool has the request now */
}

static enum gw_next step_event(struct gw_request *g)
{
	trace(g, "event");
	gw_suspend(g);
	return GW_WAIT;
}

static enum gw_next step_event_fails(struct gw_request *g)
{
	trace(g, "event");
	gw_suspend(g);
	gw_suspend_cancel(g); /* the work that was to wake it did not start */
	trace(g, "cancelled");
	return GW_END;
}

#define TABLE(name, ...)                                                                           \
	static const struct gw_step name##_steps[] = {__VA_ARGS__};                                \
	static const struct gw_pipeline name = {#name, name##_steps,                               \
	                                        sizeof name##_steps / sizeof *name##_steps, true}

TABLE(inline_p, {0, "a", step_next}, {1, "b", step_next}, {2, "end", step_end},
      {3, "NEVER", step_next});
TABLE(unlogged_p, {0, "a", step_next}, {0, "end", step_end});
TABLE(off_end_p, {1, "a", step_next}, {2, "b", step_next});
TABLE(defer_p, {1, "a", step_next}, {3, "defer", step_defer}, {4, "b", step_next},
      {9, "end", step_end});
TABLE(answer_p, {1, "defer", step_defer_answering}, {2, "NEVER", step_next});
TABLE(event_p, {1, "event", step_event}, {9, "b", step_next});
TABLE(cancel_p, {1, "event", step_event_fails}, {9, "NEVER", step_next});
TABLE(bad_job_p, {1, "defer", step_defer_bad_job});
TABLE(bad_step_p, {1, "defer", step_defer_then_next}, {2, "b", step_next});

static struct http_request req;

static int setup(void **state)
{
	(void)state;
	memset(&F, 0, sizeof F);
	memset(&req, 0, sizeof req);
	arena_init(&req.arena);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	if (req.on_complete)
		req.on_complete(&req); /* no deps: frees what the context holds, writes no row */
	arena_free(&req.arena);
	return 0;
}

static struct gw_request *start(const struct gw_pipeline *p)
{
	struct gw_request *g = gw_init(&req, p, &fake_ops, NULL);
	assert_ptr_equal(gw_of(&req), g);
	assert_int_equal(g->state, GW_IDLE);
	gw_run(g);
	return g;
}

struct abort_case {
	const struct gw_pipeline *p;
	void (*fn)(struct gw_request *g);
};

static void run_case(void *arg)
{
	const struct abort_case *a = arg;
	struct gw_request *g = gw_init(&req, a->p, &fake_ops, NULL);
	a->fn(g);
}

/* Run fn(g) in a child, and say whether it aborted (its "fatal" and log lines are expected). */
static bool aborts(const struct gw_pipeline *p, void (*fn)(struct gw_request *g))
{
	struct abort_case a = {p, fn};
	return child_aborts(run_case, &a);
}

/* ---- the state machine ---- */

static void test_transitions(void **state)
{
	(void)state;
	const bool want[4][4] = {
	    /*               idle   running suspended done */
	    [GW_IDLE] = {false, true, false, false},
	    [GW_RUNNING] = {false, false, true, true},
	    [GW_SUSPENDED] = {false, true, false, true},
	    [GW_DONE] = {false, false, false, false},
	};
	for (int from = 0; from < 4; from++)
		for (int to = 0; to < 4; to++)
			assert_int_equal(
			    gw_transition_allowed((enum gw_state)from, (enum gw_state)to),
			    want[from][to]);
	assert_false(gw_transition_allowed((enum gw_state)7, GW_RUNNING));
	assert_false(gw_transition_allowed(GW_RUNNING, (enum gw_state) - 1));
}

static void test_inline_steps_run_in_order_until_one_ends(void **state)
{
	(void)state;
	struct gw_request *g = start(&inline_p);
	assert_string_equal(F.trace, "a b end");
	assert_int_equal(F.seen, GW_RUNNING);
	assert_int_equal(g->state, GW_DONE);
	assert_int_equal(g->at, 2);
	assert_true(g->logged); /* step b is check 1 */
	assert_int_equal(F.defers + F.suspends + F.wakes, 0);
}

static void test_a_pipeline_before_check_1_is_not_logged(void **state)
{
	(void)state;
	struct gw_request *g = start(&unlogged_p);
	assert_string_equal(F.trace, "a end");
	assert_false(g->logged);
}

static void test_running_off_the_end_is_done(void **state)
{
	(void)state;
	struct gw_request *g = start(&off_end_p);
	assert_string_equal(F.trace, "a b");
	assert_int_equal(g->state, GW_DONE);
}

static void test_a_deferring_step_resumes_into_the_next_step(void **state)
{
	(void)state;
	struct gw_request *g = start(&defer_p);
	/* Suspended: nothing after the deferring step has run. */
	assert_string_equal(F.trace, "a defer");
	assert_int_equal(g->state, GW_SUSPENDED);
	assert_int_equal(F.defers, 1);
	assert_ptr_equal(F.pool, POOL);
	assert_int_equal(F.lane, WORKPOOL_LOW);
	assert_int_equal(g->at, 1);
	/* The pool thread runs the job, still suspended. */
	gw_run_job(g);
	assert_string_equal(F.trace, "a defer job");
	assert_int_equal(F.seen, GW_SUSPENDED);
	assert_int_equal(g->state, GW_SUSPENDED);
	/* Back on the loop: the step after the one that deferred, not it again. */
	gw_resume(g);
	assert_string_equal(F.trace, "a defer job b end");
	assert_int_equal(F.seen, GW_RUNNING);
	assert_int_equal(g->state, GW_DONE);
	assert_int_equal(g->at, 3);
}

static void test_a_job_that_answers_ends_the_pipeline(void **state)
{
	(void)state;
	struct gw_request *g = start(&answer_p);
	assert_int_equal(g->state, GW_SUSPENDED);
	gw_run_job(g);
	/* Done on the pool thread: the server does not resume an answered request. */
	assert_int_equal(g->state, GW_DONE);
	assert_string_equal(F.trace, "defer job-answers");
	assert_int_equal(req.status, 401);
}

static void test_a_full_pool_leaves_the_step_running(void **state)
{
	(void)state;
	F.defer_rc = -1;
	struct gw_request *g = start(&defer_p);
	assert_string_equal(F.trace, "a defer full");
	assert_int_equal(F.seen, GW_RUNNING);
	assert_int_equal(F.defers, 1);
	assert_int_equal(g->state, GW_DONE);
}

static void test_an_event_wait_resumes_into_the_next_step(void **state)
{
	(void)state;
	struct gw_request *g = start(&event_p);
	assert_string_equal(F.trace, "event");
	assert_int_equal(F.suspends, 1);
	assert_int_equal(g->state, GW_SUSPENDED);
	gw_wake(g); /* the upstream answered, the group commit committed */
	assert_int_equal(F.wakes, 1);
	assert_int_equal(g->state, GW_SUSPENDED);
	gw_resume(g);
	assert_string_equal(F.trace, "event b");
	assert_int_equal(g->state, GW_DONE);
}

static void test_a_cancelled_wait_runs_on(void **state)
{
	(void)state;
	struct gw_request *g = start(&cancel_p);
	assert_string_equal(F.trace, "event cancelled");
	assert_int_equal(F.seen, GW_RUNNING);
	assert_int_equal(F.cancels, 1);
	assert_int_equal(g->state, GW_DONE);
}

static void resume_when_done(struct gw_request *g)
{
	gw_run(g); /* inline_p: done */
	gw_resume(g);
}

static void run_twice(struct gw_request *g)
{
	gw_run(g);
	gw_run(g);
}

static void run_and_job(struct gw_request *g)
{
	gw_run(g);
	gw_run_job(g);
}

static void job_without_defer(struct gw_request *g)
{
	g->job = job_next;
	gw_run(g); /* inline_p: done */
	gw_run_job(g);
}

static void test_wrong_state_changes_abort(void **state)
{
	(void)state;
	assert_true(aborts(&inline_p, resume_when_done));
	assert_true(aborts(&inline_p, run_twice));
	assert_true(aborts(&inline_p, job_without_defer));
	/* A step that deferred and went on anyway. */
	assert_true(aborts(&bad_step_p, gw_run));
	/* A job that answered and asked for the next step (the server would never resume it). */
	assert_true(aborts(&bad_job_p, run_and_job));
	/* And the control: a correct run does not abort. */
	assert_false(aborts(&inline_p, gw_run));
}

/* ---- the tables ---- */

static void expect_table(const struct gw_pipeline *p, const char *const *names, const int *checks,
                         size_t n)
{
	assert_int_equal(p->n_steps, n);
	for (size_t i = 0; i < n; i++) {
		assert_string_equal(p->steps[i].name, names[i]);
		assert_int_equal(p->steps[i].check, checks[i]);
		assert_non_null(p->steps[i].run);
		if (i > 0) /* never back in docs/contract.md's order */
			assert_true(p->steps[i].check >= p->steps[i - 1].check);
	}
}

/* Checks 1 to 6 from row `from` of p: the same step functions in every table. */
static void expect_checks_1_to_6(const struct gw_pipeline *p, size_t from)
{
	static const gw_step_fn fns[] = {gw_credential, gw_guard,   gw_secret,
	                                 gw_kill,       gw_revoked, gw_scope};
	for (size_t i = 0; i < 6; i++) {
		assert_int_equal(p->steps[from + i].check, (int)i + 1);
		assert_true(p->steps[from + i].run == fns[i]);
	}
}

#define AUTHN "credential", "guard", "secret", "kill_switch", "revoked_expired", "scope"
#define N(a)  (sizeof a / sizeof *a)

static void test_the_tables_follow_the_contract(void **state)
{
	(void)state;
	static const char *const v_names[] = {AUTHN, "rate_limit", "answer"};
	static const int v_checks[] = {1, 2, 3, 4, 5, 6, 7, 9};
	expect_table(&gw_verify, v_names, v_checks, N(v_checks));
	expect_checks_1_to_6(&gw_verify, 0);
	assert_true(gw_verify.steps[6].run == gw_org_limit);
	assert_true(gw_verify.steps[7].run == gw_verify_answer);

	static const char *const f_names[] = {"route",    AUTHN,      "rate_limit", "idempotency",
	                                      "upstream", "response", "record"};
	static const int f_checks[] = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 9, 9};
	expect_table(&gw_forward, f_names, f_checks, N(f_checks));
	expect_checks_1_to_6(&gw_forward, 1);
	assert_true(gw_forward.steps[7].run == gw_org_limit);
	assert_true(gw_forward.steps[8].run == gw_idempotency);
	assert_true(gw_forward.steps[9].run == gw_upstream);

	static const char *const i_names[] = {
	    "ingest_credential", AUTHN, "rate_limit", "parse", "commit", "answer"};
	static const int i_checks[] = {1, 1, 2, 3, 4, 5, 6, 7, 9, 9, 9};
	expect_table(&gw_ingest, i_names, i_checks, N(i_checks));
	expect_checks_1_to_6(&gw_ingest, 1);
	assert_true(gw_ingest.steps[7].run == gw_ingest_limit);
	assert_false(gw_ingest.log_user_agent);

	static const char *const a_names[] = {AUTHN, "handler"};
	static const int a_checks[] = {1, 2, 3, 4, 5, 6, 9};
	expect_table(&gw_api, a_names, a_checks, N(a_checks));
	expect_checks_1_to_6(&gw_api, 0);
	assert_true(gw_api.steps[6].run == gw_handler);

	assert_true(gw_verify.log_user_agent && gw_forward.log_user_agent && gw_api.log_user_agent);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_transitions),
	    cmocka_unit_test_setup_teardown(test_inline_steps_run_in_order_until_one_ends, setup,
	                                    teardown),
	    cmocka_unit_test_setup_teardown(test_a_pipeline_before_check_1_is_not_logged, setup,
	                                    teardown),
	    cmocka_unit_test_setup_teardown(test_running_off_the_end_is_done, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_a_deferring_step_resumes_into_the_next_step, setup,
	                                    teardown),
	    cmocka_unit_test_setup_teardown(test_a_job_that_answers_ends_the_pipeline, setup,
	                                    teardown),
	    cmocka_unit_test_setup_teardown(test_a_full_pool_leaves_the_step_running, setup,
	                                    teardown),
	    cmocka_unit_test_setup_teardown(test_an_event_wait_resumes_into_the_next_step, setup,
	                                    teardown),
	    cmocka_unit_test_setup_teardown(test_a_cancelled_wait_runs_on, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_wrong_state_changes_abort, setup, teardown),
	    cmocka_unit_test(test_the_tables_follow_the_contract),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
