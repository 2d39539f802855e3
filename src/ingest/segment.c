/*
 * segment.c: Segment HTTP Tracking API bodies into store events (see
 * segment.h and docs/ingest.md).
 *
 * Two passes over the parsed body. The first decides everything that
 * refuses the whole request (size, shape, the batch's own members, any
 * event over the limit as sent), so that nothing is half done when the
 * request is refused. The second treats each event on its own: checks in a
 * fixed order (the first failure is the event's rejection), then the
 * changes, in the order of this file: batch context, identifiers, hash
 * paths, IP, advertising id, timestamp, body. The events are changed in
 * place in the parsed tree, which dies with the call; what is kept is each
 * event's compact serialisation.
 */
#include "ingest/segment.h"

#include "core/alloc.h"
#include "core/clock.h"
#include "core/json.h"
#include "core/str.h"
#include "core/ulid.h"
#include "crypto/sealed.h"
#include "ingest/pii.h"

#include <jansson.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const event_types[] = {"track", "identify", "page", "screen", "group", "alias"};

static const char *known_type(const char *s)
{
	for (size_t i = 0; i < sizeof event_types / sizeof event_types[0]; i++)
		if (strcmp(s, event_types[i]) == 0)
			return event_types[i];
	return NULL;
}

static void set_message(char *dst, const char *fmt, va_list ap)
    __attribute__((format(printf, 2, 0)));
static void set_message(char *dst, const char *fmt, va_list ap)
{
	vsnprintf(dst, SEGMENT_MESSAGE_MAX, fmt, ap);
}

/* Refuse the whole request. fmt's arguments are member names, never values. */
static int refuse(struct segment_result *r, int status, const char *code, const char *field,
                  const char *fmt, ...) __attribute__((format(printf, 5, 6)));
static int refuse(struct segment_result *r, int status, const char *code, const char *field,
                  const char *fmt, ...)
{
	va_list ap;
	r->status = status;
	r->code = code;
	r->field = field;
	va_start(ap, fmt);
	set_message(r->message, fmt, ap);
	va_end(ap);
	return status;
}

/* The event being treated: where its rejection goes. */
struct one {
	struct segment_result *r;
	int index;
	const char *message_id; /* NULL until known to be a short string */
};

/* Reject the event; returns 1. fmt's arguments are member names, never values. */
static int reject(struct one *e, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int reject(struct one *e, const char *code, const char *fmt, ...)
{
	struct segment_reject *rj = &e->r->rejects[e->r->n_rejects++];
	va_list ap;
	rj->index = e->index;
	rj->code = code;
	str_copy(rj->message_id, sizeof rj->message_id, e->message_id ? e->message_id : "",
	         STORE_EV_MESSAGE_ID_MAX);
	va_start(ap, fmt);
	set_message(rj->message, fmt, ap);
	va_end(ap);
	return 1;
}

/*
 * An optional text member: *out NULL when absent, null or "" (the member's
 * length in *len). -1 when it is not a string or holds a NUL byte (it would
 * be cut in a column) or is longer than max bytes.
 */
static int opt_text(json_t *obj, const char *key, size_t max, const char **out)
{
	json_t *v = json_object_get(obj, key);
	*out = NULL;
	if (!v || json_is_null(v))
		return 0;
	if (!json_is_string(v))
		return -1;
	size_t n = json_string_length(v);
	const char *s = json_string_value(v);
	if (n > max || strlen(s) != n)
		return -1;
	*out = n ? s : NULL;
	return 0;
}

/* An optional object member: *out NULL when absent or null; -1 for another type. */
static int opt_object(json_t *obj, const char *key, json_t **out)
{
	json_t *v = json_object_get(obj, key);
	*out = NULL;
	if (!v || json_is_null(v))
		return 0;
	if (!json_is_object(v))
		return -1;
	*out = v;
	return 0;
}

/* An optional RFC 3339 member into *ms (-1 when absent); -1 when invalid. */
static int opt_time(json_t *obj, const char *key, int64_t *ms)
{
	const char *s;
	*ms = -1;
	if (opt_text(obj, key, 64, &s) < 0)
		return -1;
	return s && clock_parse_rfc3339(s, ms) < 0 ? -1 : 0;
}

int64_t segment_timestamp(int64_t received_ms, int64_t ts_ms, int64_t sent_ms)
{
	if (ts_ms < 0)
		return received_ms;
	int64_t t = sent_ms >= 0 ? received_ms - (sent_ms - ts_ms) : ts_ms;
	if (t < 0 || t > received_ms + SEGMENT_FUTURE_MAX_MS)
		return received_ms;
	return t;
}

/*
 * obj's member name (an email or phone) becomes name_sha256 (hname); with
 * no name, a name_sha256 the app sent is treated the same way, so that what
 * is stored under that name is always a hash. The first hash found fills
 * col. -1 when the member is not a string.
 */
static int hash_identifier(json_t *obj, const char *name, const char *hname, enum pii_kind kind,
                           char col[PII_HEX_LEN + 1])
{
	json_t *v = json_object_get(obj, name);
	if (json_is_null(v)) {
		json_object_del(obj, name);
		v = NULL;
	}
	if (!v)
		v = json_object_get(obj, hname);
	if (!v)
		return 0;
	if (json_is_null(v)) {
		json_object_del(obj, hname);
		return 0;
	}
	if (!json_is_string(v))
		return -1;
	char h[PII_HEX_LEN + 1];
	enum pii_result pr = pii_hash(kind, json_string_value(v), json_string_length(v), h);
	json_object_del(obj, name);
	if (pr == PII_EMPTY) {
		json_object_del(obj, hname);
		return 0;
	}
	json_object_set_new(obj, hname, json_string(h));
	if (!col[0])
		memcpy(col, h, sizeof h);
	return 0;
}

/* Where the SDKs put email and phone, in the order that fills the columns. */
static const char *const identifier_homes[] = {"traits", "context.traits", "properties"};

static json_t *home_object(json_t *ev, json_t *context, size_t i)
{
	return i == 1 ? (context ? json_object_get(context, "traits") : NULL)
	              : json_object_get(ev, identifier_homes[i]);
}

static int hash_identifiers(struct one *e, json_t *ev, json_t *context, struct store_event *out)
{
	for (size_t i = 0; i < sizeof identifier_homes / sizeof identifier_homes[0]; i++) {
		json_t *obj = home_object(ev, context, i);
		if (!json_is_object(obj))
			continue;
		if (hash_identifier(obj, "email", "email_sha256", PII_EMAIL, out->email_sha256) < 0)
			return reject(e, SEGMENT_INVALID_FIELD, "%s.email must be a string",
			              identifier_homes[i]);
		if (hash_identifier(obj, "phone", "phone_sha256", PII_PHONE, out->phone_sha256) < 0)
			return reject(e, SEGMENT_INVALID_FIELD, "%s.phone must be a string",
			              identifier_homes[i]);
	}
	return 0;
}

/* Hash the string at the dotted path in place (nothing when the path is not there). */
static int hash_path(json_t *ev, const char *path)
{
	json_t *cur = ev;
	const char *p = path;
	char seg[CONFIG_HASH_PATH_MAX];
	for (;;) {
		size_t n = strcspn(p, ".");
		memcpy(seg, p, n);
		seg[n] = '\0';
		json_t *v = json_object_get(cur, seg);
		if (!v)
			return 0;
		if (p[n] == '.') {
			if (!json_is_object(v))
				return 0;
			cur = v;
			p += n + 1;
			continue;
		}
		if (json_is_null(v))
			return 0;
		if (!json_is_string(v))
			return -1;
		char h[PII_HEX_LEN + 1];
		if (pii_hash(PII_EMAIL, json_string_value(v), json_string_length(v), h) ==
		    PII_EMPTY)
			json_object_del(cur, seg);
		else
			json_object_set_new(cur, seg, json_string(h));
		return 0;
	}
}

/* context.ip (else conn_ip) to a region, then gone. */
static int resolve_ip(struct one *e, const struct segment_opts *o, json_t *context,
                      const char *conn_ip, struct store_event *out)
{
	const char *ip = NULL;
	if (context && opt_text(context, "ip", 64, &ip) < 0)
		return reject(e, SEGMENT_INVALID_FIELD, "context.ip must be a string");
	if (ip || conn_ip)
		(void)geoip_country(o ? o->geoip : NULL, ip ? ip : conn_ip, out->region);
	if (context)
		json_object_del(context, "ip");
	return 0;
}

/* context.device.advertisingId out of the event into adid. */
static int take_adid(struct one *e, json_t *context, char adid[SEGMENT_ADID_MAX + 1])
{
	json_t *device;
	const char *s;
	if (!context)
		return 0;
	if (opt_object(context, "device", &device) < 0)
		return reject(e, SEGMENT_INVALID_FIELD, "context.device must be an object");
	if (!device)
		return 0;
	if (opt_text(device, "advertisingId", SEGMENT_ADID_MAX, &s) < 0)
		return reject(e, SEGMENT_INVALID_FIELD,
		              "context.device.advertisingId must be a string of at most %d bytes",
		              SEGMENT_ADID_MAX);
	if (s)
		str_copy(adid, SEGMENT_ADID_MAX + 1, s, SEGMENT_ADID_MAX);
	json_object_del(device, "advertisingId");
	return 0;
}

/* The checks of segment_parse's list, in order; fills the columns they give. */
static int check_event(struct one *e, json_t *ev, const char *fixed_type, int64_t batch_sent,
                       int64_t now_ms, struct store_event *out)
{
	const char *s, *type = NULL;
	json_t *obj;
	if (!json_is_object(ev))
		return reject(e, SEGMENT_INVALID_FIELD, "an event must be an object");

	json_t *mid = json_object_get(ev, "messageId");
	if (mid && !json_is_null(mid) && !json_is_string(mid))
		return reject(e, SEGMENT_INVALID_FIELD, "messageId must be a string");
	if (json_is_string(mid) && json_string_length(mid) > STORE_EV_MESSAGE_ID_MAX)
		return reject(e, SEGMENT_MESSAGE_ID_TOO_LONG, "messageId is over %d bytes",
		              STORE_EV_MESSAGE_ID_MAX);
	if (opt_text(ev, "messageId", STORE_EV_MESSAGE_ID_MAX, &s) < 0)
		return reject(e, SEGMENT_INVALID_FIELD, "messageId must not hold a NUL character");
	e->message_id = s;
	if (s) {
		str_copy(out->message_id, sizeof out->message_id, s, STORE_EV_MESSAGE_ID_MAX);
	} else {
		ulid_prefixed("srv", out->message_id, sizeof out->message_id);
		json_object_set_new(ev, "messageId", json_string(out->message_id));
	}

	json_t *tv = json_object_get(ev, "type");
	if (tv && !json_is_null(tv) && !json_is_string(tv))
		return reject(e, SEGMENT_INVALID_FIELD, "type must be a string");
	if (!json_is_string(tv)) {
		if (!fixed_type)
			return reject(e, SEGMENT_UNKNOWN_TYPE, "type is missing");
		type = fixed_type;
		json_object_set_new(ev, "type", json_string(type));
	} else if (strlen(json_string_value(tv)) == json_string_length(tv)) {
		type = known_type(json_string_value(tv));
	}
	if (!type)
		return reject(e, SEGMENT_UNKNOWN_TYPE,
		              "type must be one of track, identify, page, screen, group, alias");
	if (fixed_type && type != fixed_type)
		return reject(e, SEGMENT_UNKNOWN_TYPE, "type must be %s on this endpoint",
		              fixed_type);
	str_copy(out->type, sizeof out->type, type, STORE_EV_TYPE_MAX);

	const char *uid, *aid;
	if (opt_text(ev, "userId", STORE_EV_USER_ID_MAX, &uid) < 0)
		return reject(e, SEGMENT_INVALID_FIELD,
		              "userId must be a string of at most %d bytes", STORE_EV_USER_ID_MAX);
	if (opt_text(ev, "anonymousId", STORE_EV_USER_ID_MAX, &aid) < 0)
		return reject(e, SEGMENT_INVALID_FIELD,
		              "anonymousId must be a string of at most %d bytes",
		              STORE_EV_USER_ID_MAX);
	if (!uid && !aid)
		return reject(e, SEGMENT_MISSING_ID, "an event needs a userId or an anonymousId");
	str_copy(out->user_id, sizeof out->user_id, uid ? uid : "", STORE_EV_USER_ID_MAX);
	str_copy(out->anonymous_id, sizeof out->anonymous_id, aid ? aid : "", STORE_EV_USER_ID_MAX);

	bool is_track = strcmp(type, "track") == 0;
	const char *name_key = is_track ? "event" : "name";
	if (is_track || strcmp(type, "page") == 0 || strcmp(type, "screen") == 0) {
		if (opt_text(ev, name_key, STORE_EV_NAME_MAX, &s) < 0)
			return reject(e, SEGMENT_INVALID_FIELD,
			              "%s must be a string of at most %d bytes", name_key,
			              STORE_EV_NAME_MAX);
		if (is_track && !s)
			return reject(e, SEGMENT_INVALID_FIELD,
			              "a track event needs an event name");
		str_copy(out->event, sizeof out->event, s ? s : "", STORE_EV_NAME_MAX);
	}

	int64_t ts, sent;
	if (opt_time(ev, "timestamp", &ts) < 0)
		return reject(e, SEGMENT_INVALID_FIELD, "timestamp must be an RFC 3339 time");
	if (opt_time(ev, "sentAt", &sent) < 0)
		return reject(e, SEGMENT_INVALID_FIELD, "sentAt must be an RFC 3339 time");
	out->received_at = now_ms;
	out->timestamp = segment_timestamp(now_ms, ts, sent >= 0 ? sent : batch_sent);

	static const char *const objects[] = {"context", "properties", "traits"};
	for (size_t i = 0; i < sizeof objects / sizeof objects[0]; i++)
		if (opt_object(ev, objects[i], &obj) < 0)
			return reject(e, SEGMENT_INVALID_FIELD, "%s must be an object", objects[i]);
	return 0;
}

/* The batch's context under the event's: its members the event lacks, as copies. */
static json_t *merge_context(json_t *ev, json_t *batch_ctx)
{
	json_t *ctx = json_object_get(ev, "context");
	const char *k;
	json_t *v;
	if (!batch_ctx)
		return json_is_object(ctx) ? ctx : NULL;
	if (!json_is_object(ctx)) {
		ctx = json_object();
		json_object_set_new(ev, "context", ctx);
	}
	json_object_foreach(batch_ctx, k, v)
	{
		if (!json_object_get(ctx, k))
			json_object_set_new(ctx, k, json_deep_copy(v));
	}
	return ctx;
}

static void treat_event(const struct segment_opts *o, json_t *ev, int index, const char *fixed_type,
                        json_t *batch_ctx, int64_t batch_sent, int64_t now_ms, const char *conn_ip,
                        char scratch[SEGMENT_EVENT_MAX + 1], struct segment_result *r)
{
	struct one e = {.r = r, .index = index};
	struct segment_event *se = &r->events[r->n_events];
	struct store_event *out = &se->ev;
	char adid[SEGMENT_ADID_MAX + 1] = "";

	memset(se, 0, sizeof *se);
	se->index = index;
	if (check_event(&e, ev, fixed_type, batch_sent, now_ms, out))
		return;
	json_object_del(ev, "writeKey");
	json_t *context = merge_context(ev, batch_ctx);
	if (hash_identifiers(&e, ev, context, out))
		return;
	for (int i = 0; o && i < o->n_hash_paths; i++)
		if (hash_path(ev, o->hash_paths[i]) < 0) {
			reject(&e, SEGMENT_INVALID_FIELD,
			       "%s must be a string (an [ingest] hash_paths path)",
			       o->hash_paths[i]);
			return;
		}
	if (resolve_ip(&e, o, context, conn_ip, out) || take_adid(&e, context, adid))
		goto wipe;
	/*
	 * One dump, into the call's scratch buffer: past its end is too large.
	 * Ours, not json_dumpb: jansson's loop check formats a key per object
	 * and array, and its %.17g stores 129.95 as 129.94999999999999.
	 */
	struct strbuf sb;
	strbuf_init(&sb, scratch, SEGMENT_EVENT_MAX + 1);
	if (json_put_value(&sb, ev) < 0) {
		reject(&e, SEGMENT_EVENT_TOO_LARGE,
		       "the event is over %d bytes once the batch context is merged in",
		       SEGMENT_EVENT_MAX);
		goto wipe;
	}
	size_t n = sb.len;
	char *body = xmalloc(n + 1);
	memcpy(body, scratch, n + 1);
	se->body_buf = body;
	out->body = body;
	out->body_len = n;
	memcpy(se->adid, adid, sizeof adid);
	r->n_events++;
wipe:
	sealed_wipe(adid, sizeof adid);
}

static const char *endpoint_type(const char *endpoint, bool *batch)
{
	*batch = strcmp(endpoint, "batch") == 0 || strcmp(endpoint, "import") == 0;
	return *batch ? NULL : known_type(endpoint);
}

/* Upper bound on the compact JSON of the n bytes at s as a string literal. */
static size_t string_bound(const char *s, size_t n)
{
	size_t b = 2 + n;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c == '"' || c == '\\')
			b += 1;
		else if (c < 0x20)
			b += 5; /* \u00XX */
	}
	return b;
}

/*
 * An upper bound on json_dumpb(v, JSON_COMPACT), without formatting a
 * number (jansson's %.17g reals are the costly part of a dump): a real
 * counts as its longest form. Stops counting once past stop. Most events
 * are far below the limit, so this spares a whole serialisation of each.
 */
static size_t compact_bound(json_t *v, size_t stop)
{
	size_t n = 2;
	switch (json_typeof(v)) {
	case JSON_OBJECT:
		for (void *it = json_object_iter(v); it && n <= stop;
		     it = json_object_iter_next(v, it))
			n += string_bound(json_object_iter_key(it), json_object_iter_key_len(it)) +
			     2 + compact_bound(json_object_iter_value(it), stop);
		return n;
	case JSON_ARRAY:
		for (size_t i = 0; i < json_array_size(v) && n <= stop; i++)
			n += compact_bound(json_array_get(v, i), stop) + 1;
		return n;
	case JSON_STRING:
		return string_bound(json_string_value(v), json_string_length(v));
	case JSON_INTEGER:
		return 20; /* -9223372036854775808 */
	case JSON_REAL:
		return 26; /* -1.2345678901234567e-308, with room */
	default:
		return 5; /* true false null */
	}
}

/* True when v's compact JSON is over max bytes. */
static bool over_limit(json_t *v, size_t max)
{
	return compact_bound(v, max) > max && json_dumpb(v, NULL, 0, JSON_COMPACT) > max;
}

/* The first pass: what refuses the whole request. Returns the events array (borrowed). */
static json_t *check_request(json_t *root, bool batch, json_t **batch_ctx, int64_t *batch_sent,
                             struct segment_result *r)
{
	json_t *events = batch ? json_object_get(root, "batch") : NULL;
	if (batch) {
		if (!json_is_array(events)) {
			refuse(r, 400, "BAD_REQUEST", "batch", "batch must be an array of events");
			return NULL;
		}
		if (json_array_size(events) > SEGMENT_BATCH_MAX) {
			r->limit = SEGMENT_BATCH_MAX;
			refuse(r, 400, "BAD_REQUEST", "batch", "a batch holds at most %d events",
			       SEGMENT_BATCH_MAX);
			return NULL;
		}
		if (opt_object(root, "context", batch_ctx) < 0) {
			refuse(r, 400, "BAD_REQUEST", "context", "context must be an object");
			return NULL;
		}
		if (opt_time(root, "sentAt", batch_sent) < 0) {
			refuse(r, 400, "BAD_REQUEST", "sentAt", "sentAt must be an RFC 3339 time");
			return NULL;
		}
	}
	size_t n = batch ? json_array_size(events) : 1;
	for (size_t i = 0; i < n; i++) {
		json_t *ev = batch ? json_array_get(events, i) : root;
		if (over_limit(ev, SEGMENT_EVENT_MAX)) {
			r->index = (int)i;
			r->limit = SEGMENT_EVENT_MAX;
			refuse(r, 413, "PAYLOAD_TOO_LARGE", batch ? "batch" : NULL,
			       "an event is over %d bytes", SEGMENT_EVENT_MAX);
			return NULL;
		}
	}
	return batch ? events : root;
}

int segment_parse(const struct segment_opts *o, const char *endpoint, const char *body, size_t len,
                  int64_t now_ms, const char *conn_ip, struct segment_result *out)
{
	json_error_t err;
	json_t *root = NULL, *batch_ctx = NULL;
	char *scratch = NULL;
	int64_t batch_sent = -1;
	bool batch;

	memset(out, 0, sizeof *out);
	out->position = -1;
	out->limit = -1;
	out->index = -1;
	const char *fixed_type = endpoint_type(endpoint, &batch);
	if (!batch && !fixed_type)
		return refuse(out, 404, "NOT_FOUND", NULL, "no such ingest endpoint");
	if (len > SEGMENT_REQUEST_MAX) {
		out->limit = SEGMENT_REQUEST_MAX;
		return refuse(out, 413, "PAYLOAD_TOO_LARGE", NULL, "a request is at most %d bytes",
		              SEGMENT_REQUEST_MAX);
	}
	/*
	 * The document's values live in an arena for the call (core/json.h): a
	 * batch is thousands of small values, and malloc and free of each were
	 * a sixth of the ingest's CPU. Nothing of them outlives the call: the
	 * results are copies (bodies, ids, hashes, messages).
	 */
	struct arena ja;
	json_arena_begin(&ja);
	root = json_loadb(body, len, JSON_REJECT_DUPLICATES, &err);
	if (!root) {
		json_arena_end(&ja);
		/* Not err.text: jansson quotes the input near the error. */
		out->position = err.position;
		return refuse(out, 400, "BAD_REQUEST", NULL,
		              "the body is not valid JSON (or repeats a member)");
	}
	if (!json_is_object(root)) {
		refuse(out, 400, "BAD_REQUEST", NULL, "the body must be a JSON object");
		goto out;
	}
	const char *wk;
	if (opt_text(root, "writeKey", SEGMENT_WRITE_KEY_MAX, &wk) == 0 && wk)
		str_copy(out->write_key, sizeof out->write_key, wk, SEGMENT_WRITE_KEY_MAX);
	json_t *events = check_request(root, batch, &batch_ctx, &batch_sent, out);
	if (!events)
		goto out;
	size_t n = batch ? json_array_size(events) : 1;
	out->events = xcalloc(n ? n : 1, sizeof *out->events);
	out->rejects = xcalloc(n ? n : 1, sizeof *out->rejects);
	scratch = xmalloc(SEGMENT_EVENT_MAX + 1);
	for (size_t i = 0; i < n; i++)
		treat_event(o, batch ? json_array_get(events, i) : root, (int)i, fixed_type,
		            batch_ctx, batch_sent, now_ms, conn_ip, scratch, out);
out:
	free(scratch);
	json_decref(root);
	json_arena_end(&ja);
	return out->status;
}

void segment_result_free(struct segment_result *r)
{
	for (int i = 0; i < r->n_events; i++) {
		sealed_wipe(r->events[i].adid, sizeof r->events[i].adid);
		free(r->events[i].body_buf);
	}
	free(r->events);
	free(r->rejects);
	sealed_wipe(r->write_key, sizeof r->write_key);
	r->events = NULL;
	r->rejects = NULL;
	r->n_events = r->n_rejects = 0;
}
