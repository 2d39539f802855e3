/*
 * test_inventory.c: unit tests for the key inventory's CSV (src/app/inventory.c):
 * RFC 4180 quoting of one cell (commas, double quotes, CR and LF), the guard
 * against formula injection (a leading = + - @ tab or CR gets a single quote),
 * cells taken by length (an embedded NUL is data), the buffer limit, and the
 * rows of key objects: header, column order, null as empty, scopes joined by
 * spaces, the flags as true/false columns, CRLF line ends.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "app/inventory.h"

/* inventory_csv_cell of the len bytes at s, as a new string. */
static char *cell(const char *s, size_t len)
{
	struct buf b;
	buf_init(&b, 1024);
	assert_int_equal(inventory_csv_cell(&b, s, len), 0);
	char *out = buf_steal(&b, NULL);
	return out ? out : calloc(1, 1);
}

static void check(const char *in, const char *want)
{
	char *got = cell(in, strlen(in));
	assert_string_equal(got, want);
	free(got);
}

static void test_plain_cells_are_as_they_are(void **state)
{
	(void)state;
	check("", "");
	check("billing-sync", "billing-sync");
	check("a b", "a b");
	check("01M82YZC82RGBDPS238NXRY03Q", "01M82YZC82RGBDPS238NXRY03Q");
	check("2026-12-02T18:00:00.000Z", "2026-12-02T18:00:00.000Z");
	check("x=1", "x=1"); /* only a leading character is a formula */
	check("caf\xc3\xa9", "caf\xc3\xa9");
}

static void test_rfc4180_quoting(void **state)
{
	(void)state;
	check("a,b", "\"a,b\"");
	check("say \"hi\"", "\"say \"\"hi\"\"\"");
	check("\"", "\"\"\"\"");
	check("\"\"", "\"\"\"\"\"\"");
	check("two\nlines", "\"two\nlines\"");
	check("cr\rhere", "\"cr\rhere\"");
	check("end\"", "\"end\"\"\"");
}

static void test_formulas_get_a_leading_quote(void **state)
{
	(void)state;
	check("=1+1", "'=1+1");
	check("+1", "'+1");
	check("-2", "'-2");
	check("@SUM(A1)", "'@SUM(A1)");
	check("\tx", "'\tx");
	check("\rx", "\"'\rx\""); /* guarded, then quoted for the CR */
	check("=HYPERLINK(\"http://x.example\",\"y\")",
	      "\"'=HYPERLINK(\"\"http://x.example\"\",\"\"y\"\")\"");
}

static void test_cells_are_taken_by_length(void **state)
{
	(void)state;
	char *got = cell("ab,c", 2); /* the comma is past len */
	assert_string_equal(got, "ab");
	free(got);
	struct buf b;
	buf_init(&b, 64);
	assert_int_equal(inventory_csv_cell(&b, "a\0b", 3), 0);
	assert_int_equal(b.len, 3);
	assert_memory_equal(b.data, "a\0b", 3);
	buf_free(&b);
}

static void test_the_buffer_limit_is_an_error(void **state)
{
	(void)state;
	struct buf b;
	buf_init(&b, 4);
	assert_int_equal(inventory_csv_cell(&b, "abcd", 4), 0);
	assert_int_equal(inventory_csv_cell(&b, "e", 1), -1);
	buf_free(&b);
	buf_init(&b, 3);
	assert_int_equal(inventory_csv_cell(&b, "a,b", 3), -1); /* quoted it needs 5 */
	buf_free(&b);
}

static const char *const HEADER = "id,name,org_id,project_id,env,scopes,start,created_at,"
                                  "last_used_at,expires_at,revoked_at,status,killed_by,"
                                  "last_region,requests_24h,requests_30d,unused_90d,"
                                  "no_project,never_used\r\n";

static void test_rows_of_key_objects(void **state)
{
	(void)state;
	json_t *keys = json_loads(
	    "[{\"id\": \"K1\", \"name\": \"=evil,\\\"x\\\"\", \"org_id\": \"O\", \"project_id\": "
	    "null, \"env\": \"live\", \"scopes\": [\"gateway\", \"logs:read\"], \"start\": "
	    "\"pcl_live_K1\", \"created_at\": \"2026-01-01T00:00:00.000Z\", \"last_used_at\": "
	    "null, "
	    "\"expires_at\": null, \"revoked_at\": null, \"status\": \"killed\", \"killed_by\": "
	    "\"organization\", \"last_region\": null, \"requests_24h\": 0, \"requests_30d\": "
	    "12345678901, \"flags\": [\"no_project\", \"never_used\"], \"version\": 1}]",
	    0, NULL);
	assert_non_null(keys);
	struct buf b;
	buf_init(&b, 4096);
	assert_int_equal(inventory_csv(&b, keys, true), 0);
	const char *want_row = "K1,\"'=evil,\"\"x\"\"\",O,,live,gateway logs:read,pcl_live_K1,"
	                       "2026-01-01T00:00:00.000Z,,,,killed,organization,,0,12345678901,"
	                       "false,true,true\r\n";
	size_t hl = strlen(HEADER);
	assert_int_equal(b.len, hl + strlen(want_row));
	assert_memory_equal(b.data, HEADER, hl);
	assert_string_equal(b.data + hl, want_row);
	/* Without the header: the row only (the CLI's later pages). */
	buf_free(&b);
	buf_init(&b, 4096);
	assert_int_equal(inventory_csv(&b, keys, false), 0);
	assert_string_equal(b.data, want_row);
	buf_free(&b);
	/* An empty page with the header: the header only. */
	json_t *none = json_array();
	buf_init(&b, 4096);
	assert_int_equal(inventory_csv(&b, none, true), 0);
	assert_string_equal(b.data, HEADER);
	buf_free(&b);
	/* Too small a buffer fails. */
	buf_init(&b, 16);
	assert_int_equal(inventory_csv(&b, keys, true), -1);
	buf_free(&b);
	json_decref(none);
	json_decref(keys);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_plain_cells_are_as_they_are),
	    cmocka_unit_test(test_rfc4180_quoting),
	    cmocka_unit_test(test_formulas_get_a_leading_quote),
	    cmocka_unit_test(test_cells_are_taken_by_length),
	    cmocka_unit_test(test_the_buffer_limit_is_an_error),
	    cmocka_unit_test(test_rows_of_key_objects),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
