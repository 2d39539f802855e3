/*
 * test_thread.c: unit tests for src/core/thread.c: a thread that waits
 * without a deadline is stopped and joined; wakes are delivered and a wake
 * before the wait is not lost; a timed wait ends at its deadline and not
 * long before; a thread may use its own lock; a thread sharing its owner's
 * lock finishes queued work after the stop; an interrupt ends a sleep in
 * poll(2); stop is a no-op on a thread never started or already stopped.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <poll.h>
#include <pthread.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "core/clock.h"
#include "core/thread.h"

struct counter {
	pthread_mutex_t lock; /* the owner's lock, shared with the thread */
	pthread_cond_t seen;  /* main waits here for the thread's progress */
	int wakes;            /* bg_thread_wait returned true */
	int queued, done;     /* work items */
	bool stopped;         /* the body saw the stop */
	int64_t wait_ms;      /* the body's deadline (-1: none) */
};

static void counter_init(struct counter *c, int64_t wait_ms)
{
	memset(c, 0, sizeof *c);
	pthread_mutex_init(&c->lock, NULL);
	clock_cond_init_mono(&c->seen);
	c->wait_ms = wait_ms;
}

static void counter_destroy(struct counter *c)
{
	pthread_mutex_destroy(&c->lock);
	pthread_cond_destroy(&c->seen);
}

/* Counts returns of the wait; drains queued work even after the stop. */
static void body(struct bg_thread *t, void *arg)
{
	struct counter *c = arg;
	for (;;) {
		bool run = bg_thread_wait(t, c->wait_ms);
		assert_true(run == !bg_thread_stopping(t));
		while (c->done < c->queued) {
			pthread_mutex_unlock(&c->lock); /* as a real writer does around I/O */
			pthread_mutex_lock(&c->lock);
			c->done++;
		}
		if (!run)
			break;
		c->wakes++;
		pthread_cond_broadcast(&c->seen);
	}
	c->stopped = true;
}

/* Wait (lock held) until *v reaches want, at most 5 s; returns *v. */
static int wait_for(struct counter *c, const int *v, int want)
{
	struct timespec until = clock_mono_deadline(5000);
	while (*v < want && pthread_cond_timedwait(&c->seen, &c->lock, &until) == 0)
		;
	return *v;
}

static void test_stop_joins_a_thread_waiting_without_deadline(void **state)
{
	struct counter c;
	struct bg_thread t;
	(void)state;

	counter_init(&c, -1);
	assert_int_equal(bg_thread_start(&t, "test-bg", &c.lock, body, &c), 0);
	bg_thread_stop(&t);
	assert_true(c.stopped);
	assert_int_equal(c.wakes, 0);
	bg_thread_stop(&t); /* already stopped: nothing */
	counter_destroy(&c);
}

static void test_wakes_are_delivered_and_not_lost(void **state)
{
	struct counter c;
	struct bg_thread t;
	(void)state;

	counter_init(&c, -1);
	/* A wake before the thread first waits is kept for that wait. */
	pthread_mutex_lock(&c.lock);
	assert_int_equal(bg_thread_start(&t, "test-bg", &c.lock, body, &c), 0);
	bg_thread_wake_locked(&t);
	assert_int_equal(wait_for(&c, &c.wakes, 1), 1);
	pthread_mutex_unlock(&c.lock);
	/* Every other wake in two halves: marked under the lock, signalled after unlocking. */
	for (int i = 2; i <= 50; i++) {
		if (i % 2) {
			bg_thread_wake(&t);
		} else {
			pthread_mutex_lock(&c.lock);
			bg_thread_wake_mark(&t);
			pthread_mutex_unlock(&c.lock);
			bg_thread_signal(&t);
		}
		pthread_mutex_lock(&c.lock);
		assert_int_equal(wait_for(&c, &c.wakes, i), i);
		pthread_mutex_unlock(&c.lock);
	}
	bg_thread_stop(&t);
	assert_int_equal(c.wakes, 50);
	counter_destroy(&c);
}

static void test_timed_wait_ends_at_its_deadline(void **state)
{
	struct counter c;
	struct bg_thread t;
	(void)state;

	counter_init(&c, 30);
	pthread_mutex_lock(&c.lock);
	int64_t t0 = clock_mono_ms();
	assert_int_equal(bg_thread_start(&t, "test-bg", &c.lock, body, &c), 0);
	assert_int_equal(wait_for(&c, &c.wakes, 3), 3);
	int64_t took = clock_mono_ms() - t0;
	pthread_mutex_unlock(&c.lock);
	bg_thread_stop(&t);
	assert_true(took >= 3 * 30 - 5);
	assert_true(took < 5000);
	counter_destroy(&c);
}

/* With no owner's lock the thread uses its own; only the thread touches c
 * until the join, which orders its writes before the reads here. */
static void test_own_lock(void **state)
{
	struct counter c;
	struct bg_thread t;
	struct timespec pause = {0, 200 * 1000000L};
	(void)state;

	counter_init(&c, 20);
	assert_int_equal(bg_thread_start(&t, NULL, NULL, body, &c), 0);
	bg_thread_wake(&t);
	nanosleep(&pause, NULL);
	bg_thread_stop(&t);
	assert_true(c.stopped);
	assert_true(c.wakes >= 1);
	counter_destroy(&c);
}

static void test_queued_work_is_finished_after_stop(void **state)
{
	struct counter c;
	struct bg_thread t;
	(void)state;

	counter_init(&c, -1);
	assert_int_equal(bg_thread_start(&t, "test-bg", &c.lock, body, &c), 0);
	pthread_mutex_lock(&c.lock);
	c.queued = 1000; /* queued without a wake: the stop must still drain it */
	pthread_mutex_unlock(&c.lock);
	bg_thread_stop(&t);
	assert_int_equal(c.done, 1000);
	assert_true(c.stopped);
	counter_destroy(&c);
}

/* A thread that sleeps in poll(2) on a pipe, not in bg_thread_wait. */
static int stop_pipe[2];

static void interrupt(void *arg)
{
	(void)arg;
	assert_int_equal(write(stop_pipe[1], "x", 1), 1);
}

static void poll_body(struct bg_thread *t, void *arg)
{
	struct pollfd pfd = {.fd = stop_pipe[0], .events = POLLIN};
	pthread_mutex_t *lock = arg;
	(void)t;
	pthread_mutex_unlock(lock);
	while (poll(&pfd, 1, 60000) == 0) /* a stop that did not interrupt would hang here */
		;
	pthread_mutex_lock(lock);
}

static void test_interrupt_ends_a_poll_sleep(void **state)
{
	pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
	struct bg_thread t;
	(void)state;

	assert_int_equal(pipe(stop_pipe), 0);
	pthread_mutex_lock(&lock);
	assert_int_equal(bg_thread_start(&t, "test-bg", &lock, poll_body, &lock), 0);
	bg_thread_set_interrupt(&t, interrupt);
	pthread_mutex_unlock(&lock);
	int64_t t0 = clock_mono_ms();
	bg_thread_stop(&t);
	assert_true(clock_mono_ms() - t0 < 30000);
	close(stop_pipe[0]);
	close(stop_pipe[1]);
}

static void test_stop_of_a_thread_never_started(void **state)
{
	struct bg_thread t;
	(void)state;

	memset(&t, 0, sizeof t);
	bg_thread_stop(&t); /* returns at once: nothing to join */
	assert_false(t.started);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_stop_joins_a_thread_waiting_without_deadline),
	    cmocka_unit_test(test_wakes_are_delivered_and_not_lost),
	    cmocka_unit_test(test_timed_wait_ends_at_its_deadline),
	    cmocka_unit_test(test_own_lock),
	    cmocka_unit_test(test_queued_work_is_finished_after_stop),
	    cmocka_unit_test(test_interrupt_ends_a_poll_sleep),
	    cmocka_unit_test(test_stop_of_a_thread_never_started),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
