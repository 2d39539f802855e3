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
 * paths, IP, advertising id, timestamp, body. The body is read by
 * ingest/rawjson.h into a tree of spans in an arena (nothing decoded that
 * needs no decoding, numbers never converted); the events are changed in
 * place in that tree, which dies with the call; what is kept is each event's
 * compact text, its unchanged parts copied as they were sent.
 */
#include "ingest/segment.h"

#include "core/alloc.h"
#include "core/clock.h"
#include "core/json.h"
#include "core/str.h"
#include "core/ulid.h"
#include "crypto/sealed.h"
#include "ingest/pii.h"
#include "ingest/rawjson.h"

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
	struct arena *a; /* the call's: the tree and its strings */
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
 * length in *len). -1 when it is not a string or is longer than max bytes
 * (it holds no NUL byte: the parse refuses \u0000).
 */
static int opt_text(struct arena *a, struct rj *obj, const char *key, size_t max, const char **out)
{
	struct rj *v = rj_get(obj, key);
	*out = NULL;
	if (!v || v->type == RJ_NULL)
		return 0;
	if (v->type != RJ_STRING || v->text_len > max)
		return -1;
	const char *s = rj_str(a, v, NULL);
	*out = v->text_len ? s : NULL;
	return 0;
}

/* An optional object member: *out NULL when absent or null; -1 for another type. */
static int opt_object(struct rj *obj, const char *key, struct rj **out)
{
	struct rj *v = rj_get(obj, key);
	*out = NULL;
	if (!v || v->type == RJ_NULL)
		return 0;
	if (v->type != RJ_OBJECT)
		return -1;
	*out = v;
	return 0;
}

/* An optional RFC 3339 member into *ms (-1 when absent); -1 when invalid. */
static int opt_time(struct arena *a, struct rj *obj, const char *key, int64_t *ms)
{
	const char *s;
	*ms = -1;
	if (opt_text(a, obj, key, 64, &s) < 0)
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
static int hash_identifier(struct arena *a, struct rj *obj, const char *name, const char *hname,
                           enum pii_kind kind, char col[PII_HEX_LEN + 1])
{
	struct rj *v = rj_get(obj, name);
	if (rj_is(v, RJ_NULL)) {
		rj_del(obj, name);
		v = NULL;
	}
	if (!v)
		v = rj_get(obj, hname);
	if (!v)
		return 0;
	if (v->type == RJ_NULL) {
		rj_del(obj, hname);
		return 0;
	}
	if (v->type != RJ_STRING)
		return -1;
	char h[PII_HEX_LEN + 1];
	size_t n;
	const char *s = rj_str(a, v, &n);
	enum pii_result pr = pii_hash(kind, s, n, h);
	rj_del(obj, name);
	if (pr == PII_EMPTY) {
		rj_del(obj, hname);
		return 0;
	}
	rj_set(obj, hname, rj_new_string(a, h));
	if (!col[0])
		memcpy(col, h, sizeof h);
	return 0;
}

/* Where the SDKs put email and phone, in the order that fills the columns. */
static const char *const identifier_homes[] = {"traits", "context.traits", "properties"};

static struct rj *home_object(struct rj *ev, struct rj *context, size_t i)
{
	return i == 1 ? (context ? rj_get(context, "traits") : NULL)
	              : rj_get(ev, identifier_homes[i]);
}

static int hash_identifiers(struct one *e, struct rj *ev, struct rj *context,
                            struct store_event *out)
{
	for (size_t i = 0; i < sizeof identifier_homes / sizeof identifier_homes[0]; i++) {
		struct rj *obj = home_object(ev, context, i);
		if (!rj_is(obj, RJ_OBJECT))
			continue;
		if (hash_identifier(e->a, obj, "email", "email_sha256", PII_EMAIL,
		                    out->email_sha256) < 0)
			return reject(e, SEGMENT_INVALID_FIELD, "%s.email must be a string",
			              identifier_homes[i]);
		if (hash_identifier(e->a, obj, "phone", "phone_sha256", PII_PHONE,
		                    out->phone_sha256) < 0)
			return reject(e, SEGMENT_INVALID_FIELD, "%s.phone must be a string",
			              identifier_homes[i]);
	}
	return 0;
}

/* Hash the string at the dotted path in place (nothing when the path is not there). */
static int hash_path(struct arena *a, struct rj *ev, const char *path)
{
	struct rj *cur = ev;
	const char *p = path;
	char seg[CONFIG_HASH_PATH_MAX];
	for (;;) {
		size_t n = strcspn(p, ".");
		memcpy(seg, p, n);
		seg[n] = '\0';
		struct rj *v = rj_get(cur, seg);
		if (!v)
			return 0;
		if (p[n] == '.') {
			if (v->type != RJ_OBJECT)
				return 0;
			cur = v;
			p += n + 1;
			continue;
		}
		if (v->type == RJ_NULL)
			return 0;
		if (v->type != RJ_STRING)
			return -1;
		char h[PII_HEX_LEN + 1];
		size_t len;
		const char *s = rj_str(a, v, &len);
		if (pii_hash(PII_EMAIL, s, len, h) == PII_EMPTY)
			rj_del(cur, seg);
		else
			rj_set(cur, seg, rj_new_string(a, h)); /* in v's place: its name is kept */
		return 0;
	}
}

/* context.ip (else conn_ip) to a region, then gone. */
static int resolve_ip(struct one *e, const struct segment_opts *o, struct rj *context,
                      const char *conn_ip, struct store_event *out)
{
	const char *ip = NULL;
	if (context && opt_text(e->a, context, "ip", 64, &ip) < 0)
		return reject(e, SEGMENT_INVALID_FIELD, "context.ip must be a string");
	if (ip || conn_ip)
		(void)geoip_country(o ? o->geoip : NULL, ip ? ip : conn_ip, out->region);
	if (context)
		rj_del(context, "ip");
	return 0;
}

/* context.device.advertisingId out of the event into adid. */
static int take_adid(struct one *e, struct rj *context, char adid[SEGMENT_ADID_MAX + 1])
{
	struct rj *device;
	const char *s;
	if (!context)
		return 0;
	if (opt_object(context, "device", &device) < 0)
		return reject(e, SEGMENT_INVALID_FIELD, "context.device must be an object");
	if (!device)
		return 0;
	if (opt_text(e->a, device, "advertisingId", SEGMENT_ADID_MAX, &s) < 0)
		return reject(e, SEGMENT_INVALID_FIELD,
		              "context.device.advertisingId must be a string of at most %d bytes",
		              SEGMENT_ADID_MAX);
	if (s)
		str_copy(adid, SEGMENT_ADID_MAX + 1, s, SEGMENT_ADID_MAX);
	rj_del(device, "advertisingId");
	return 0;
}

/* The checks of segment_parse's list, in order; fills the columns they give. */
static int check_event(struct one *e, struct rj *ev, const char *fixed_type, int64_t batch_sent,
                       int64_t now_ms, struct store_event *out)
{
	struct arena *a = e->a;
	const char *s, *type = NULL;
	struct rj *obj;
	if (!rj_is(ev, RJ_OBJECT))
		return reject(e, SEGMENT_INVALID_FIELD, "an event must be an object");

	struct rj *mid = rj_get(ev, "messageId");
	if (mid && mid->type != RJ_NULL && mid->type != RJ_STRING)
		return reject(e, SEGMENT_INVALID_FIELD, "messageId must be a string");
	if (rj_is(mid, RJ_STRING) && mid->text_len > STORE_EV_MESSAGE_ID_MAX)
		return reject(e, SEGMENT_MESSAGE_ID_TOO_LONG, "messageId is over %d bytes",
		              STORE_EV_MESSAGE_ID_MAX);
	(void)opt_text(a, ev, "messageId", STORE_EV_MESSAGE_ID_MAX, &s); /* a short string */
	e->message_id = s;
	if (s) {
		str_copy(out->message_id, sizeof out->message_id, s, STORE_EV_MESSAGE_ID_MAX);
	} else {
		ulid_prefixed("srv", out->message_id, sizeof out->message_id);
		rj_set(ev, "messageId", rj_new_string(a, out->message_id));
	}

	struct rj *tv = rj_get(ev, "type");
	if (tv && tv->type != RJ_NULL && tv->type != RJ_STRING)
		return reject(e, SEGMENT_INVALID_FIELD, "type must be a string");
	if (!rj_is(tv, RJ_STRING)) {
		if (!fixed_type)
			return reject(e, SEGMENT_UNKNOWN_TYPE, "type is missing");
		type = fixed_type;
		rj_set(ev, "type", rj_new_string(a, type));
	} else {
		type = known_type(rj_str(a, tv, NULL));
	}
	if (!type)
		return reject(e, SEGMENT_UNKNOWN_TYPE,
		              "type must be one of track, identify, page, screen, group, alias");
	if (fixed_type && type != fixed_type)
		return reject(e, SEGMENT_UNKNOWN_TYPE, "type must be %s on this endpoint",
		              fixed_type);
	str_copy(out->type, sizeof out->type, type, STORE_EV_TYPE_MAX);

	const char *uid, *aid;
	if (opt_text(a, ev, "userId", STORE_EV_USER_ID_MAX, &uid) < 0)
		return reject(e, SEGMENT_INVALID_FIELD,
		              "userId must be a string of at most %d bytes", STORE_EV_USER_ID_MAX);
	if (opt_text(a, ev, "anonymousId", STORE_EV_USER_ID_MAX, &aid) < 0)
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
		if (opt_text(a, ev, name_key, STORE_EV_NAME_MAX, &s) < 0)
			return reject(e, SEGMENT_INVALID_FIELD,
			              "%s must be a string of at most %d bytes", name_key,
			              STORE_EV_NAME_MAX);
		if (is_track && !s)
			return reject(e, SEGMENT_INVALID_FIELD,
			              "a track event needs an event name");
		str_copy(out->event, sizeof out->event, s ? s : "", STORE_EV_NAME_MAX);
	}

	int64_t ts, sent;
	if (opt_time(a, ev, "timestamp", &ts) < 0)
		return reject(e, SEGMENT_INVALID_FIELD, "timestamp must be an RFC 3339 time");
	if (opt_time(a, ev, "sentAt", &sent) < 0)
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
static struct rj *merge_context(struct arena *a, struct rj *ev, struct rj *batch_ctx)
{
	struct rj *ctx = rj_get(ev, "context");
	if (!batch_ctx)
		return rj_is(ctx, RJ_OBJECT) ? ctx : NULL;
	if (!rj_is(ctx, RJ_OBJECT)) {
		ctx = rj_new_object(a);
		rj_set(ev, "context", ctx);
	}
	for (struct rj *m = batch_ctx->kids; m; m = m->next) {
		bool have = false;
		for (struct rj *k = ctx->kids; k && !have; k = k->next)
			have = k->key_len == m->key_len && memcmp(k->key, m->key, m->key_len) == 0;
		if (!have)
			rj_append(ctx, rj_copy(a, m)); /* the copy keeps the member's name */
	}
	return ctx;
}

static void treat_event(const struct segment_opts *o, struct arena *a, struct rj *ev, int index,
                        const char *fixed_type, struct rj *batch_ctx, int64_t batch_sent,
                        int64_t now_ms, const char *conn_ip, char scratch[SEGMENT_EVENT_MAX + 1],
                        struct segment_result *r)
{
	struct one e = {.a = a, .r = r, .index = index};
	struct segment_event *se = &r->events[r->n_events];
	struct store_event *out = &se->ev;
	char adid[SEGMENT_ADID_MAX + 1] = "";

	memset(se, 0, sizeof *se);
	se->index = index;
	if (check_event(&e, ev, fixed_type, batch_sent, now_ms, out))
		return;
	rj_del(ev, "writeKey");
	struct rj *context = merge_context(a, ev, batch_ctx);
	if (hash_identifiers(&e, ev, context, out))
		return;
	for (int i = 0; o && i < o->n_hash_paths; i++)
		if (hash_path(a, ev, o->hash_paths[i]) < 0) {
			reject(&e, SEGMENT_INVALID_FIELD,
			       "%s must be a string (an [ingest] hash_paths path)",
			       o->hash_paths[i]);
			return;
		}
	if (resolve_ip(&e, o, context, conn_ip, out) || take_adid(&e, context, adid))
		goto wipe;
	/*
	 * One write, into the call's scratch buffer: past its end is too large.
	 * What was not changed is copied as sent; numbers are their text.
	 */
	struct strbuf sb;
	strbuf_init(&sb, scratch, SEGMENT_EVENT_MAX + 1);
	if (rj_write(&sb, ev) < 0) {
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

/* The first pass: what refuses the whole request. Returns the events array (borrowed). */
static struct rj *check_request(struct arena *a, struct rj *root, bool batch, struct rj **batch_ctx,
                                int64_t *batch_sent, struct segment_result *r)
{
	struct rj *events = batch ? rj_get(root, "batch") : NULL;
	if (batch) {
		if (!rj_is(events, RJ_ARRAY)) {
			refuse(r, 400, "BAD_REQUEST", "batch", "batch must be an array of events");
			return NULL;
		}
		if (events->n > SEGMENT_BATCH_MAX) {
			r->limit = SEGMENT_BATCH_MAX;
			refuse(r, 400, "BAD_REQUEST", "batch", "a batch holds at most %d events",
			       SEGMENT_BATCH_MAX);
			return NULL;
		}
		if (opt_object(root, "context", batch_ctx) < 0) {
			refuse(r, 400, "BAD_REQUEST", "context", "context must be an object");
			return NULL;
		}
		if (opt_time(a, root, "sentAt", batch_sent) < 0) {
			refuse(r, 400, "BAD_REQUEST", "sentAt", "sentAt must be an RFC 3339 time");
			return NULL;
		}
	}
	/* The compact length as sent was counted by the parse: nothing written to know it. */
	int i = 0;
	for (struct rj *ev = batch ? events->kids : root; ev; ev = batch ? ev->next : NULL, i++) {
		if (ev->clen > SEGMENT_EVENT_MAX) {
			r->index = i;
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
	struct rj *root, *batch_ctx = NULL;
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
	 * The tree lives in an arena for the call: nothing of it outlives the
	 * call (the results are copies: bodies, ids, hashes, messages).
	 */
	struct arena a;
	size_t err_pos = 0;
	arena_init(&a);
	root = rj_parse(&a, body, len, &err_pos);
	if (!root) {
		arena_free(&a);
		out->position = (int64_t)err_pos;
		return refuse(out, 400, "BAD_REQUEST", NULL,
		              "the body is not valid JSON (or repeats a member)");
	}
	if (root->type != RJ_OBJECT) {
		refuse(out, 400, "BAD_REQUEST", NULL, "the body must be a JSON object");
		goto out;
	}
	const char *wk;
	if (opt_text(&a, root, "writeKey", SEGMENT_WRITE_KEY_MAX, &wk) == 0 && wk)
		str_copy(out->write_key, sizeof out->write_key, wk, SEGMENT_WRITE_KEY_MAX);
	struct rj *events = check_request(&a, root, batch, &batch_ctx, &batch_sent, out);
	if (!events)
		goto out;
	size_t n = batch ? events->n : 1;
	out->events = xcalloc(n ? n : 1, sizeof *out->events);
	out->rejects = xcalloc(n ? n : 1, sizeof *out->rejects);
	scratch = xmalloc(SEGMENT_EVENT_MAX + 1);
	int i = 0;
	for (struct rj *ev = batch ? events->kids : root; ev; ev = batch ? ev->next : NULL, i++)
		treat_event(o, &a, ev, i, fixed_type, batch_ctx, batch_sent, now_ms, conn_ip,
		            scratch, out);
out:
	free(scratch);
	arena_free(&a);
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
