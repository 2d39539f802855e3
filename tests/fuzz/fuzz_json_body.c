/*
 * fuzz_json_body.c: the checks http_json_body (http/response.c) runs on a
 * request body: jansson's json_loadb with JSON_REJECT_DUPLICATES, then "an
 * object nested at most JSON_MAX_DEPTH deep".
 *
 * The real parser (http_json_parse) is checked against jansson and an
 * independent depth reference (deepest() below). Beyond "no crash, no
 * leak", an accepted body must survive a dump and reload unchanged, and a
 * rejected one must report an error position inside the input.
 */
#include "fuzz.h"
#include "http/request.h"

#include <jansson.h>
#include <stdbool.h>
#include <string.h>

#define JSON_MAX_DEPTH HTTP_JSON_MAX_DEPTH

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
	/*
	 * An object whose every value, scalars included, is at depth
	 * JSON_MAX_DEPTH or less with the root at 0: JSON_MAX_DEPTH non-empty
	 * containers on a path, plus an empty one at the bottom.
	 */
	FUZZ_CHECK(accepted == (json_is_object(j) && deepest(j) <= JSON_MAX_DEPTH));
	FUZZ_CHECK(!accepted || json_equal(parsed, j));
	json_decref(parsed);

	if (accepted) {
		char *dump = json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS);
		FUZZ_CHECK(dump != NULL);
		json_t *again = json_loads(dump, JSON_REJECT_DUPLICATES, &err);
		FUZZ_CHECK(again != NULL);
		FUZZ_CHECK(json_equal(j, again));
		FUZZ_CHECK(deepest(again) <= JSON_MAX_DEPTH);
		json_decref(again);
		free(dump);
	}
	json_decref(j);
	return 0;
}
