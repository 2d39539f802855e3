/*
 * test_log.c: unit tests for log lines (src/core/log.c). Whatever bytes a
 * value holds, a JSON line is one line of valid UTF-8 JSON (jansson's
 * parser checks both) that keeps the value, with \uFFFD for bytes that are
 * not UTF-8; a line that would be too long is cut and still parses; in
 * text mode a value's CR or LF cannot start a line of its own.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/log.h"

/* Run fn with stderr going to a file; returns what it wrote (malloc'd). */
static char *capture(void (*fn)(void))
{
	FILE *tmp = tmpfile();
	assert_non_null(tmp);
	int saved = dup(STDERR_FILENO);
	assert_true(saved >= 0);
	assert_true(dup2(fileno(tmp), STDERR_FILENO) >= 0);
	fn();
	assert_true(dup2(saved, STDERR_FILENO) >= 0);
	close(saved);
	long n = ftell(tmp);
	assert_true(n >= 0);
	rewind(tmp);
	char *out = calloc(1, (size_t)n + 1);
	assert_non_null(out);
	assert_int_equal(fread(out, 1, (size_t)n, tmp), (size_t)n);
	fclose(tmp);
	return out;
}

/* Each line of out parsed as a JSON object; fails on one that is not. */
static size_t json_lines_of(char *out, json_t **objs, size_t max)
{
	size_t n = 0;
	for (char *line = out, *nl; *line; line = nl + 1) {
		nl = strchr(line, '\n');
		assert_non_null(nl); /* every line ends with a newline */
		*nl = '\0';
		assert_true(nl - line < 4096);
		json_error_t err;
		json_t *j = json_loads(line, 0, &err);
		if (!j || !json_is_object(j))
			fail_msg("not a JSON object: %s (%s)", line, err.text);
		assert_true(n < max);
		objs[n++] = j;
	}
	return n;
}

static void every_byte(void)
{
	for (int c = 1; c < 256; c++) {
		char v[8] = {'/', 'a', (char)c, 'b', '\0'};
		log_event(LOG_INFO, "access", "path", v, "#status", "200", NULL);
	}
}

static void test_every_byte_value_gives_one_json_line(void **state)
{
	(void)state;
	log_setup(LOG_INFO, true);
	char *out = capture(every_byte);
	json_t *objs[255];
	assert_int_equal(json_lines_of(out, objs, 255), 255);
	for (int c = 1; c < 256; c++) {
		json_t *o = objs[c - 1];
		const char *path = json_string_value(json_object_get(o, "path"));
		assert_non_null(path);
		char want[8] = {'/', 'a', (char)c, 'b', '\0'};
		if (c >= 0x80)
			memcpy(want + 2,
			       "\xef\xbf\xbd"
			       "b",
			       5); /* U+FFFD */
		assert_string_equal(path, want);
		assert_int_equal(json_integer_value(json_object_get(o, "status")), 200);
		json_decref(o);
	}
	free(out);
}

static void nasty(void)
{
	log_event(LOG_WARN, "upstream_error", "error", "\xc0\xaf\xed\xa0\x80\xf4\x90\x80\x80",
	          "header", "X-A\r\n{\"forged\":true}", NULL);
	log_msg(LOG_ERROR, "client said %s", "\xff\n{\"forged\":true}");
}

static void test_invalid_utf8_and_line_breaks_stay_in_their_field(void **state)
{
	(void)state;
	log_setup(LOG_INFO, true);
	char *out = capture(nasty);
	json_t *objs[4];
	assert_int_equal(json_lines_of(out, objs, 4), 2);
	assert_string_equal(json_string_value(json_object_get(objs[0], "error")),
	                    "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd"
	                    "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd");
	assert_string_equal(json_string_value(json_object_get(objs[0], "header")),
	                    "X-A\r\n{\"forged\":true}");
	assert_string_equal(json_string_value(json_object_get(objs[1], "msg")),
	                    "client said \xef\xbf\xbd\n{\"forged\":true}");
	assert_null(json_object_get(objs[1], "forged"));
	json_decref(objs[0]);
	json_decref(objs[1]);
	free(out);
}

static void too_long(void)
{
	static char big[9000];
	for (size_t i = 0; i < sizeof big - 1; i++)
		big[i] = i % 3 ? '\x01' : '\xff'; /* six bytes each once escaped */
	big[sizeof big - 1] = '\0';
	log_event(LOG_INFO, "access", "request_id", "req_1", "path", big, "#status", "200", "after",
	          "x", NULL);
	log_event(LOG_INFO, "access", "path", big + 8600, "#status", "200", NULL);
}

static void test_too_long_a_line_is_cut_and_still_parses(void **state)
{
	(void)state;
	log_setup(LOG_INFO, true);
	char *out = capture(too_long);
	json_t *objs[4];
	assert_int_equal(json_lines_of(out, objs, 4), 2);
	assert_string_equal(json_string_value(json_object_get(objs[0], "request_id")), "req_1");
	assert_true(strlen(json_string_value(json_object_get(objs[0], "path"))) > 1000);
	/* What no longer fit is left out, not written in part. */
	assert_null(json_object_get(objs[0], "status"));
	assert_null(json_object_get(objs[0], "after"));
	/* A value that fits is whole. */
	assert_int_equal(json_integer_value(json_object_get(objs[1], "status")), 200);
	json_decref(objs[0]);
	json_decref(objs[1]);
	free(out);
}

static void text_lines(void)
{
	log_event(LOG_INFO, "access", "method", "GET", "path", "/a\nts=0 level=error forged", "ua",
	          "x\ry", "bytes", "\xff", "#status", "404", NULL);
	log_msg(LOG_INFO, "two\nlines");
}

static void test_text_mode_cannot_forge_a_line(void **state)
{
	(void)state;
	log_setup(LOG_INFO, false);
	char *out = capture(text_lines);
	log_setup(LOG_INFO, true);
	size_t lines = 0;
	for (const char *p = out; *p; p++) {
		assert_true(*p == '\n' || ((unsigned char)*p >= 0x20 && (unsigned char)*p < 0x7f));
		lines += *p == '\n';
	}
	assert_int_equal(lines, 2);
	assert_non_null(strstr(out, " access method=GET path=\"/a\\nts=0 level=error forged\" "
	                            "ua=\"x\\ry\" bytes=\"\\uFFFD\" status=404\n"));
	assert_non_null(strstr(out, " log msg=\"two\\nlines\"\n"));
	free(out);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_every_byte_value_gives_one_json_line),
	    cmocka_unit_test(test_invalid_utf8_and_line_breaks_stay_in_their_field),
	    cmocka_unit_test(test_too_long_a_line_is_cut_and_still_parses),
	    cmocka_unit_test(test_text_mode_cannot_forge_a_line),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
