/*
 * fuzz_json_body.c: the checks http_json_body (http/response.c) runs on a
 * request body: jansson's json_loadb with JSON_REJECT_DUPLICATES, then "an
 * object nested at most JSON_MAX_DEPTH deep".
 *
 * depth_ok is static in response.c, so body_check() below is a copy of it
 * (keep the two in step, or move the pure part of http_json_body into a
 * function the fuzzer can call). Beyond "no crash, no leak", an accepted
 * body must survive a dump and reload unchanged, and a rejected one must
 * report an error position inside the input.
 */
#include "fuzz.h"
#include "http/request.h"

#include <jansson.h>
#include <stdbool.h>
#include <string.h>

#define JSON_MAX_DEPTH HTTP_JSON_MAX_DEPTH

/* Copy of depth_ok in http/response.c. */
static bool depth_ok(const json_t *j, int depth)
{
	if (depth > JSON_MAX_DEPTH)
		return false;
	if (json_is_object(j)) {
		const char *k;
		const json_t *v;
		json_object_foreach((json_t *)j, k, v) if (!depth_ok(v, depth + 1)) return false;
	} else if (json_is_array(j)) {
		size_t i;
		const json_t *v;
		json_array_foreach(j, i, v) if (!depth_ok(v, depth + 1)) return false;
	}
	return true;
}

/* Independent reference: the depth of the deepest value below j, the root
 * being 0 (an empty container or a scalar adds nothing below itself). */
static int deepest(const json_t *j)
{
	int m = -1;
	if (json_is_object(j)) {
		const char *k;
		json_t *v;
		json_object_foreach((json_t *)j, k, v)
		{
			int d = deepest(v);
			m = d > m ? d : m;
		}
	} else if (json_is_array(j)) {
		size_t i;
		json_t *v;
		json_array_foreach(j, i, v)
		{
			int d = deepest(v);
			m = d > m ? d : m;
		}
	}
	return m + 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	json_error_t err;
	json_t *j = json_loadb((const char *)data, size, JSON_REJECT_DUPLICATES, &err);

	if (!j) {
		FUZZ_CHECK(err.position >= 0 && (size_t)err.position <= size);
		FUZZ_CHECK(memchr(err.text, '\0', sizeof(err.text)) != NULL);
		return 0;
	}

	/* What http_json_body accepts: the real parser, not a copy. */
	json_t *parsed = NULL;
	int rc = http_json_parse((const char *)data, size, &parsed, NULL);
	bool accepted = rc == 0;
	FUZZ_CHECK(accepted == (json_is_object(j) && depth_ok(j, 0)));
	FUZZ_CHECK(!accepted || json_equal(parsed, j));
	json_decref(parsed);
	if (json_is_object(j)) {
		/* Every value, scalars included, at depth JSON_MAX_DEPTH or
		 * less with the root at 0: JSON_MAX_DEPTH non-empty containers
		 * on a path, plus an empty one at the bottom. */
		FUZZ_CHECK(accepted == (deepest(j) <= JSON_MAX_DEPTH));
	}

	if (accepted) {
		char *dump = json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS);
		FUZZ_CHECK(dump != NULL);
		json_t *again = json_loads(dump, JSON_REJECT_DUPLICATES, &err);
		FUZZ_CHECK(again != NULL);
		FUZZ_CHECK(json_equal(j, again));
		FUZZ_CHECK(depth_ok(again, 0));
		json_decref(again);
		free(dump);
	}
	json_decref(j);
	return 0;
}
