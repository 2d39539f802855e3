/*
 * vectors.h: load a published vector file of tests/vectors/ by name, for
 * the cmocka unit tests (meson passes the directory as PORTCULLIS_VECTORS).
 * Include after <cmocka.h> and <jansson.h>. Fails the test when the file is
 * missing or not JSON; the caller json_decref()s the result.
 */
#ifndef PORTCULLIS_TESTS_UNIT_VECTORS_H
#define PORTCULLIS_TESTS_UNIT_VECTORS_H

#include <stdio.h>
#include <stdlib.h>

/* The JSON file name in the directory the environment variable env names. */
static inline json_t *test_json_load(const char *env, const char *name)
{
	const char *dir = getenv(env);
	char path[4096];
	json_error_t err;

	if (!dir)
		fail_msg("%s is not set (run through meson test)", env);
	if ((size_t)snprintf(path, sizeof path, "%s/%s", dir, name) >= sizeof path)
		fail_msg("vector path too long");
	json_t *root = json_load_file(path, JSON_REJECT_DUPLICATES, &err);
	if (!root)
		fail_msg("%s:%d: %s", path, err.line, err.text);
	return root;
}

static inline json_t *vectors_load(const char *name)
{
	return test_json_load("PORTCULLIS_VECTORS", name);
}

#endif
