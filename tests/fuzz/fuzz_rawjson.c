/*
 * fuzz_rawjson.c: rj_parse, rj_write, rj_copy, rj_del and rj_set
 * (ingest/rawjson.h) on the input as a JSON text, against jansson.
 *
 * Checks: rj_parse accepts exactly what json_loadb(JSON_REJECT_DUPLICATES)
 * accepts (but for jansson's dropped NUL bytes, see rawjson.h), an error's
 * position is within the input; an accepted text is
 * written with the length the parse counted, the text reads back with
 * jansson as the same value (json_equal), byte for byte jansson's compact
 * dump when it holds no number, and the same from a deep copy; then with
 * the top object's first member deleted, its last set to a new string and
 * a member appended, the text reads back as jansson's object changed alike.
 */
#include "fuzz.h"

#include <jansson.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "core/arena.h"
#include "core/str.h"
#include "ingest/rawjson.h"

static char out[1 << 21];

static const char *write_all(const struct rj *v, size_t *len)
{
	struct strbuf sb;
	strbuf_init(&sb, out, sizeof out);
	FUZZ_CHECK(rj_write(&sb, v) == 0);
	*len = sb.len;
	return out;
}

static bool has_number(const json_t *j)
{
	const char *k;
	json_t *v;
	size_t i;
	switch (json_typeof(j)) {
	case JSON_INTEGER:
	case JSON_REAL:
		return true;
	case JSON_OBJECT:
		json_object_foreach((json_t *)j, k, v) if (has_number(v)) return true;
		return false;
	case JSON_ARRAY:
		json_array_foreach(j, i, v) if (has_number(v)) return true;
		return false;
	default:
		return false;
	}
}

static void same_as(const struct rj *v, const json_t *want)
{
	size_t n;
	const char *s = write_all(v, &n);
	json_t *back = json_loadb(s, n, JSON_REJECT_DUPLICATES, NULL);
	FUZZ_CHECK(back && json_equal(back, want));
	json_decref(back);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size > 600 * 1024)
		return 0;
	struct arena a;
	size_t pos = (size_t)-1;
	arena_init(&a);
	struct rj *v = rj_parse(&a, (const char *)data, size, &pos);
	json_t *j = json_loadb((const char *)data, size, JSON_REJECT_DUPLICATES, NULL);
	/* jansson drops a NUL byte after a number or literal (rawjson.h): the one difference. */
	FUZZ_CHECK(!v == !j || (!v && memchr(data, 0, size)));
	if (!v && j) {
		json_decref(j);
		arena_free(&a);
		return 0;
	}
	if (!v) {
		FUZZ_CHECK(pos <= size);
		arena_free(&a);
		return 0;
	}
	size_t n;
	const char *s = write_all(v, &n);
	FUZZ_CHECK(n == v->clen);
	if (!has_number(j)) {
		char *d = json_dumps(j, JSON_COMPACT);
		FUZZ_CHECK(d && strlen(d) == n && memcmp(d, s, n) == 0);
		free(d);
	}
	same_as(v, j);
	same_as(rj_copy(&a, v), j);
	if (v->type == RJ_OBJECT && v->n > 0) {
		char *first = strndup(v->kids->key, v->kids->key_len);
		char *last = strndup(v->last->key, v->last->key_len);
		rj_del(v, first);
		json_object_del(j, first);
		if (strcmp(first, last) != 0) {
			rj_set(v, last, rj_new_string(&a, "x\"\n\xc3\xa9"));
			json_object_set_new(j, last, json_string("x\"\n\xc3\xa9"));
		}
		rj_set(v, "\x01new", rj_new_string(&a, "y"));
		json_object_set_new(j, "\x01new", json_string("y"));
		same_as(v, j);
		free(first);
		free(last);
	}
	json_decref(j);
	arena_free(&a);
	return 0;
}
