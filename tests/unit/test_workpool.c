/*
 * test_workpool.c: unit tests for src/core/workpool.c: jobs of the normal
 * lane run before waiting jobs of the low lane, and each lane has its own
 * bound (a full low lane leaves room in the normal one).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <pthread.h>
#include <stdbool.h>
#include <string.h>

#include "core/workpool.h"

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cond = PTHREAD_COND_INITIALIZER;
static bool released, blocking;
static char order[16];
static size_t n_order;

/* Holds the pool's only thread until released. */
static void blocker(void *arg)
{
	(void)arg;
	pthread_mutex_lock(&lock);
	blocking = true;
	pthread_cond_broadcast(&cond);
	while (!released)
		pthread_cond_wait(&cond, &lock);
	pthread_mutex_unlock(&lock);
}

static void record(void *arg)
{
	pthread_mutex_lock(&lock);
	if (n_order < sizeof order - 1)
		order[n_order++] = *(const char *)arg;
	pthread_mutex_unlock(&lock);
}

static void test_the_normal_lane_goes_first_and_lanes_are_bounded_apart(void **state)
{
	(void)state;
	struct workpool *wp = workpool_create("test", 1, 2);
	static const char l1 = 'a', l2 = 'b', n1 = 'N', n2 = 'M';
	assert_int_equal(workpool_submit(wp, blocker, NULL), 0);
	pthread_mutex_lock(&lock);
	while (!blocking)
		pthread_cond_wait(&cond, &lock);
	pthread_mutex_unlock(&lock);
	/* The low lane fills up ... */
	assert_int_equal(workpool_submit_lane(wp, WORKPOOL_LOW, record, (void *)&l1), 0);
	assert_int_equal(workpool_submit_lane(wp, WORKPOOL_LOW, record, (void *)&l2), 0);
	assert_int_equal(workpool_submit_lane(wp, WORKPOOL_LOW, record, (void *)&l1), -1);
	/* ... and the normal one still takes its own two. */
	assert_int_equal(workpool_submit(wp, record, (void *)&n1), 0);
	assert_int_equal(workpool_submit_lane(wp, WORKPOOL_NORMAL, record, (void *)&n2), 0);
	assert_int_equal(workpool_submit(wp, record, (void *)&n1), -1);
	assert_int_equal(workpool_pending(wp), 4);
	pthread_mutex_lock(&lock);
	released = true;
	pthread_cond_broadcast(&cond);
	pthread_mutex_unlock(&lock);
	workpool_destroy(wp); /* runs what is queued */
	assert_string_equal(order, "NMab");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_the_normal_lane_goes_first_and_lanes_are_bounded_apart),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
