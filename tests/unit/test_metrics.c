/*
 * test_metrics.c: unit tests for metrics_register_cells (src/core/metrics.c):
 * an array of series registered at once renders every one; with cells each
 * series keeps its value in its own cell (the background tier's shared
 * page), without them in the metric itself; registering again is harmless.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "core/metrics.h"
#include "metric_value.h"

static struct metric bound[] = {
    METRIC_INIT("portcullis_test_bound_a_total", "a", "counter"),
    METRIC_INIT("portcullis_test_bound_b", "b", "gauge"),
};

static struct metric unbound[] = {
    METRIC_INIT("portcullis_test_unbound_a_total", "a", "counter"),
    METRIC_INIT("portcullis_test_unbound_b_total", "b", "counter"),
};

static void test_with_cells_each_series_lives_in_its_cell(void **state)
{
	(void)state;
	static int64_t cells[3] = {0, 0, 99}; /* static: rendered later too; [2] is not theirs */
	metrics_register_cells(bound, 2, cells);
	metric_add(&bound[0], 5);
	metric_set(&bound[1], 7);
	assert_int_equal(cells[0], 5);
	assert_int_equal(cells[1], 7);
	assert_int_equal(cells[2], 99);
	assert_int_equal(bound[0].value, 0);
	assert_int_equal(metric_value("portcullis_test_bound_a_total"), 5);
	assert_int_equal(metric_value("portcullis_test_bound_b"), 7);
	cells[0] = 11; /* another process writes the page: /metrics shows it */
	assert_int_equal(metric_value("portcullis_test_bound_a_total"), 11);
}

static void test_without_cells_each_series_keeps_its_own_value(void **state)
{
	(void)state;
	metrics_register_cells(unbound, 2, NULL);
	metrics_register_cells(unbound, 2, NULL); /* again: still one series each */
	metric_add(&unbound[0], 2);
	metric_add(&unbound[1], 3);
	assert_null(unbound[0].cell);
	assert_int_equal(unbound[0].value, 2);
	assert_int_equal(metric_value("portcullis_test_unbound_a_total"), 2);
	assert_int_equal(metric_value("portcullis_test_unbound_b_total"), 3);
	struct buf b;
	buf_init(&b, 1 << 20);
	metrics_render(&b);
	const char *first = strstr(b.data, "\nportcullis_test_unbound_a_total ");
	assert_non_null(first);
	assert_null(strstr(first + 1, "\nportcullis_test_unbound_a_total "));
	buf_free(&b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_with_cells_each_series_lives_in_its_cell),
	    cmocka_unit_test(test_without_cells_each_series_keeps_its_own_value),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
