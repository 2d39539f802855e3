/*
 * fuzz_segment.c: segment_parse and segment_result_free (ingest/segment.h)
 * on the input as a request body. The first byte picks the endpoint (one of
 * the eight, or an unknown one) and whether [ingest] hash_paths is set; the
 * rest is the body.
 *
 * Checks: the status is 0, 400, 404 (unknown endpoint only) or 413, and a
 * refused request has a code and a message and no events or rejections;
 * a parsed one accounts for every event exactly once (accepted plus
 * rejected equals the batch's length, 1 for a single event), in request
 * order; every message is printable ASCII.
 * Each accepted event has a known type, an id, a message id, received_at = now, a timestamp in [0,
 * now + 23 h], and a body of at most 32 KiB that is a JSON object without writeKey, context.ip or
 * context.device.advertisingId, and without email or phone in traits, context.traits and
 * properties, where every email_sha256 / phone_sha256 member is 64 lower-case hex (so is a
 * non-empty column).
 */
#include "fuzz.h"

#include <jansson.h>
#include <stdbool.h>
#include <string.h>

#include "core/config.h"
#include "ingest/segment.h"

#define NOW 1767225600000LL

static const char *const endpoints[] = {"batch",  "import", "track", "identify", "page",
                                        "screen", "group",  "alias", "nope"};
static char paths[CONFIG_MAX_HASH_PATHS][CONFIG_HASH_PATH_MAX];
static int n_paths;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	n_paths = config_hash_paths("traits.first_name properties.a.b context.traits.x", paths);
	FUZZ_CHECK(n_paths == 3);
	return 0;
}

static bool printable(const char *s)
{
	for (; *s; s++)
		if (*s < 0x20 || *s > 0x7e)
			return false;
	return true;
}

static bool hex64(const char *s)
{
	if (strlen(s) != 64)
		return false;
	for (; *s; s++)
		if (!((*s >= '0' && *s <= '9') || (*s >= 'a' && *s <= 'f')))
			return false;
	return true;
}

static void check_home(json_t *obj)
{
	if (!json_is_object(obj))
		return;
	FUZZ_CHECK(!json_object_get(obj, "email") && !json_object_get(obj, "phone"));
	json_t *e = json_object_get(obj, "email_sha256"), *p = json_object_get(obj, "phone_sha256");
	FUZZ_CHECK(!e || hex64(json_string_value(e) ? json_string_value(e) : ""));
	FUZZ_CHECK(!p || hex64(json_string_value(p) ? json_string_value(p) : ""));
}

static void check_event(const struct segment_event *se)
{
	const struct store_event *ev = &se->ev;
	json_error_t err;
	bool known = false;
	for (size_t i = 2; i < 8; i++)
		known |= strcmp(ev->type, endpoints[i]) == 0;
	FUZZ_CHECK(known);
	FUZZ_CHECK(ev->user_id[0] || ev->anonymous_id[0]);
	FUZZ_CHECK(ev->message_id[0]);
	FUZZ_CHECK(ev->received_at == NOW);
	FUZZ_CHECK(ev->timestamp >= 0 && ev->timestamp <= NOW + SEGMENT_FUTURE_MAX_MS);
	FUZZ_CHECK(!ev->email_sha256[0] || hex64(ev->email_sha256));
	FUZZ_CHECK(!ev->phone_sha256[0] || hex64(ev->phone_sha256));
	FUZZ_CHECK(ev->body_len <= SEGMENT_EVENT_MAX && ev->body == se->body_buf);
	FUZZ_CHECK(strlen(se->adid) <= SEGMENT_ADID_MAX);
	json_t *j = json_loadb(ev->body, ev->body_len, 0, &err);
	FUZZ_CHECK(json_is_object(j));
	FUZZ_CHECK(!json_object_get(j, "writeKey"));
	json_t *ctx = json_object_get(j, "context");
	FUZZ_CHECK(!json_object_get(ctx, "ip"));
	FUZZ_CHECK(!json_object_get(json_object_get(ctx, "device"), "advertisingId"));
	check_home(json_object_get(j, "traits"));
	check_home(json_object_get(j, "properties"));
	check_home(json_object_get(ctx, "traits"));
	json_decref(j);
}

/*
 * How many events the body holds, by an independent read; -1 when not
 * parsed. Called for parsed requests only.
 */
static long count_events(const char *body, size_t len, bool batch)
{
	json_t *j = json_loadb(body, len, JSON_REJECT_DUPLICATES, NULL);
	long n = -1;
	if (json_is_object(j))
		n = batch ? (long)json_array_size(json_object_get(j, "batch")) : 1;
	/* The limit as sent is rawjson's compact count (numbers as sent): fuzz_rawjson checks it.
	 */
	json_decref(j);
	return n;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct segment_result r;
	if (size < 1)
		return 0;
	size_t which = data[0] % (sizeof endpoints / sizeof endpoints[0]);
	struct segment_opts o = {.hash_paths = (const char(*)[CONFIG_HASH_PATH_MAX])paths,
	                         .n_hash_paths = (data[0] & 0x80) ? n_paths : 0};
	const char *body = (const char *)data + 1;
	size_t len = size - 1;
	bool batch = which < 2;

	int st = segment_parse(&o, endpoints[which], body, len, NOW, "8.8.8.8", &r);
	FUZZ_CHECK(st == r.status);
	FUZZ_CHECK(st == 0 || st == 400 || st == 404 || st == 413);
	FUZZ_CHECK((st == 404) == (which == 8));
	FUZZ_CHECK(printable(r.message));
	FUZZ_CHECK(strlen(r.write_key) <= SEGMENT_WRITE_KEY_MAX);
	if (st != 0) {
		FUZZ_CHECK(r.code && r.message[0] && r.n_events == 0 && r.n_rejects == 0);
	} else {
		FUZZ_CHECK(!r.code);
		FUZZ_CHECK(r.n_events + r.n_rejects == count_events(body, len, batch));
		int last = -1;
		for (int i = 0; i < r.n_events; i++) {
			FUZZ_CHECK(r.events[i].index > last);
			last = r.events[i].index;
			check_event(&r.events[i]);
		}
		last = -1;
		for (int i = 0; i < r.n_rejects; i++) {
			const struct segment_reject *rj = &r.rejects[i];
			FUZZ_CHECK(rj->index > last);
			last = rj->index;
			FUZZ_CHECK(rj->message[0] && printable(rj->message));
			FUZZ_CHECK(!strcmp(rj->code, SEGMENT_MISSING_ID) ||
			           !strcmp(rj->code, SEGMENT_UNKNOWN_TYPE) ||
			           !strcmp(rj->code, SEGMENT_MESSAGE_ID_TOO_LONG) ||
			           !strcmp(rj->code, SEGMENT_INVALID_FIELD) ||
			           !strcmp(rj->code, SEGMENT_EVENT_TOO_LARGE));
		}
	}
	segment_result_free(&r);
	return 0;
}
