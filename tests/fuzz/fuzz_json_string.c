/*
 * fuzz_json_string.c: the one JSON string escaper (core/json.h), which
 * writes every log line's values (json_put_string_lossy: any bytes a client
 * sends) and the hot-path response bodies (json_put_string).
 *
 * The first input byte picks the buffer size (3 to 258, or large), the
 * rest up to the first NUL is the text. Invariants: the lossy form always
 * writes a complete string literal of printable ASCII that jansson parses,
 * within the buffer, flagging overflow exactly when it cut; uncut, it
 * decodes to the text itself when the text is valid UTF-8. The strict form
 * refuses exactly what json_string() refuses (unless it cut first) and,
 * uncut, writes byte for byte what json_dumps(JSON_COMPACT |
 * JSON_ENSURE_ASCII) writes; cut, its literal is still closed.
 */
#include "fuzz.h"

#include <jansson.h>
#include <string.h>

#include "core/json.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	size_t cap = data[0] == 255 ? 65536 : (size_t)data[0] + 3;
	char *in = malloc(size);
	FUZZ_CHECK(in != NULL);
	memcpy(in, data + 1, size - 1);
	in[size - 1] = '\0';
	char *out = malloc(cap);
	FUZZ_CHECK(out != NULL);

	struct strbuf b;
	strbuf_init(&b, out, cap);
	json_put_string_lossy(&b, in);
	FUZZ_CHECK(b.len < cap && b.len >= 2 && out[0] == '"' && out[b.len - 1] == '"');
	for (size_t i = 0; i < b.len; i++)
		FUZZ_CHECK((unsigned char)out[i] >= 0x20 && (unsigned char)out[i] < 0x7f);
	json_t *j = json_loads(out, JSON_DECODE_ANY, NULL);
	FUZZ_CHECK(j && json_is_string(j));
	json_t *ref = json_string(in); /* NULL when in is not valid UTF-8 */
	if (!b.overflow && ref)
		FUZZ_CHECK(strcmp(json_string_value(j), in) == 0);
	json_decref(j);

	strbuf_init(&b, out, cap);
	int rc = json_put_string(&b, in);
	/* A cut can come before the byte that makes the text invalid. */
	FUZZ_CHECK(b.overflow ? rc == 0 : (rc < 0) == (ref == NULL));
	if (rc < 0) {
		FUZZ_CHECK(b.len == 0 && !b.overflow);
	} else if (!b.overflow) {
		char *want = json_dumps(ref, JSON_COMPACT | JSON_ENSURE_ASCII | JSON_ENCODE_ANY);
		FUZZ_CHECK(want && strcmp(want, out) == 0);
		free(want);
	} else {
		j = json_loads(out, JSON_DECODE_ANY, NULL); /* cut, but still closed */
		FUZZ_CHECK(j && json_is_string(j));
		json_decref(j);
	}
	json_decref(ref);
	free(out);
	free(in);
	return 0;
}
