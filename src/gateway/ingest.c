/*
 * ingest.c: the Segment HTTP Tracking API on the ingest listener
 * (docs/ingest.md): POST /v1/batch, /v1/import and the single-event
 * /v1/track|identify|page|screen|group|alias.
 *
 * The order of one request is pipeline.c's gw_ingest table; this file holds
 * its own rows:
 *
 *   ingest_credential  Authorization Basic base64(<key>:) or Bearer <key>;
 *                      with neither, the body is parsed first (control pool)
 *                      for its writeKey
 *   (checks 1 to 6 for scope events:ingest, gateway/authn.c; check 7,
 *   [ingest] rate_limit per key, else the organisation's: gateway/gateway.c)
 *   parse              ingest/segment.c, unless done for the writeKey (pool)
 *   commit             the accepted events to the group commit
 *                      (ingest/commit.h), the request suspended; a full
 *                      queue is 503
 *   answer             the 200 after the commit, so an acknowledged event
 *                      is durable
 *
 * Nothing of a request refused as a whole is stored. An advertising id is
 * sealed for its event row when the project has the Conversions API forward
 * on (store_capi_adid_seal), else dropped; the plaintext is wiped here either
 * way. The request-log row of an
 * ingest request keeps no user agent (an app's can identify a device).
 */
#include "gateway/gateway.h"

#include "auth/keyfmt.h"
#include "core/log.h"
#include "core/metrics.h"
#include "crypto/hash.h"
#include "gateway/steps.h"
#include "ingest/commit.h"
#include "store/store_capi.h"
#include "ingest/segment.h"
#include "store/store_events.h"

#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

static struct metric m_accepted =
    METRIC_INIT("portcullis_ingest_events_accepted_total",
                "SDK events acknowledged (stored, or a repeat of a stored messageId)", "counter");
static struct metric m_deduped = METRIC_INIT(
    "portcullis_ingest_events_deduplicated_total",
    "SDK events acknowledged but not stored again: their messageId was seen within 24 h",
    "counter");
#define REJECTED(code)                                                                             \
	METRIC_INIT_LABELS("portcullis_ingest_events_rejected_total", "code=\"" code "\"",         \
	                   "SDK events refused one by one (the others kept), by code", "counter")
static const char *const reject_codes[] = {SEGMENT_MISSING_ID, SEGMENT_UNKNOWN_TYPE,
                                           SEGMENT_MESSAGE_ID_TOO_LONG, SEGMENT_INVALID_FIELD,
                                           SEGMENT_EVENT_TOO_LARGE};
static struct metric m_rejected[] = {
    REJECTED(SEGMENT_MISSING_ID),          REJECTED(SEGMENT_UNKNOWN_TYPE),
    REJECTED(SEGMENT_MESSAGE_ID_TOO_LONG), REJECTED(SEGMENT_INVALID_FIELD),
    REJECTED(SEGMENT_EVENT_TOO_LARGE),
};
_Static_assert(sizeof m_rejected / sizeof *m_rejected == sizeof reject_codes / sizeof *reject_codes,
               "one series per code");

static void register_metrics(void)
{
	metrics_register(&m_accepted);
	metrics_register(&m_deduped);
	for (size_t i = 0; i < sizeof m_rejected / sizeof *m_rejected; i++)
		metrics_register(&m_rejected[i]);
}

static void count_reject(const char *code)
{
	for (size_t i = 0; i < sizeof reject_codes / sizeof *reject_codes; i++)
		if (strcmp(code, reject_codes[i]) == 0)
			metric_add(&m_rejected[i], 1);
}

/*
 * The key of an Authorization header into in->key: Bearer <key>, or Basic
 * with the key as the user name and an empty password (how the Segment and
 * RudderStack SDKs send their writeKey). 1 with a key, 0 without a header;
 * -1 for a header of neither form (a bad credential).
 */
static int header_key(struct http_request *req, struct gw_ingest *in)
{
	const char *h = http_header(req, "Authorization");
	if (!h)
		return 0;
	size_t n = 0;
	const char *t = gw_bearer(h, &n);
	if (t) {
		if (n > KEYFMT_MAX_LEN)
			return -1;
		memcpy(in->key, t, n);
		in->key[n] = '\0';
		return 1;
	}
	if (strncasecmp(h, "Basic ", 6) == 0) {
		t = h + 6;
		while (*t == ' ')
			t++;
		n = strlen(t);
		size_t got = 0;
		uint8_t raw[KEYFMT_MAX_LEN + 2];
		int rc = -1;
		if (base64_decoded_max(n) <= sizeof raw &&
		    base64_decode(t, n, raw, sizeof raw, &got) == 0 && got > 1 &&
		    raw[got - 1] == ':' && !memchr(raw, ':', got - 1)) {
			memcpy(in->key, raw, got - 1);
			in->key[got - 1] = '\0';
			rc = 1;
		}
		explicit_bzero(raw, sizeof raw);
		return rc;
	}
	return -1;
}

/* The body into g->ingest->parsed (control pool). */
static void parse_body(struct gw_request *g)
{
	const struct gateway_deps *d = g->deps;
	struct http_request *req = g->req;
	struct gw_ingest *in = g->ingest;
	char paths[CONFIG_MAX_HASH_PATHS][CONFIG_HASH_PATH_MAX];
	int n_paths = config_hash_paths(d->cfg->ingest_hash_paths, paths);
	struct segment_opts o = {.geoip = d->geoip,
	                         .hash_paths = (const char(*)[CONFIG_HASH_PATH_MAX])paths,
	                         .n_hash_paths =
	                             n_paths > 0 ? n_paths : 0}; /* config_load checked it */
	segment_parse(&o, in->endpoint, req->body.data ? req->body.data : "", req->body.len,
	              req->start_ms, req->client_ip[0] ? req->client_ip : NULL, &in->parsed);
	in->has_parsed = true;
}

/* No key in the headers (control pool): the body's writeKey is check 1's credential. */
static enum gw_next parse_for_key(struct gw_request *g)
{
	parse_body(g);
	char *wk = g->ingest->parsed.write_key;
	g->authn.cred = wk[0] ? GW_CRED_GIVEN : GW_CRED_NONE;
	g->authn.token = wk;
	g->authn.tlen = strlen(wk);
	return GW_NEXT;
}

enum gw_next gw_ingest_credential(struct gw_request *g)
{
	static pthread_once_t once = PTHREAD_ONCE_INIT;
	pthread_once(&once, register_metrics);
	struct gw_authn *a = &g->authn;
	struct gw_ingest *in = arena_alloc(&g->req->arena, sizeof *in);
	memset(in, 0, sizeof *in);
	g->ingest = in;
	in->endpoint = g->req->route->data;
	if (header_key(g->req, in) != 0) {
		/* A header of neither form fails check 1 like any malformed key (""). */
		a->cred = GW_CRED_GIVEN;
		a->token = in->key;
		a->tlen = strlen(in->key);
		return GW_NEXT;
	}
	if (gw_defer(g, g->deps->control_pool, WORKPOOL_NORMAL, parse_for_key) == 0)
		return GW_WAIT;
	return gw_overloaded(g);
}

static enum gw_next parse_job(struct gw_request *g)
{
	parse_body(g);
	return GW_NEXT;
}

enum gw_next gw_ingest_parse(struct gw_request *g)
{
	if (g->ingest->has_parsed)
		return GW_NEXT;
	if (gw_defer(g, g->deps->control_pool, WORKPOOL_NORMAL, parse_job) == 0)
		return GW_WAIT;
	return gw_overloaded(g);
}

static void respond_whole(struct http_request *req, const struct segment_result *r)
{
	json_t *details = json_object();
	if (r->field)
		json_object_set_new(details, "field", json_string(r->field));
	if (r->position >= 0)
		json_object_set_new(details, "position", json_integer(r->position));
	if (r->limit >= 0)
		json_object_set_new(details, "limit", json_integer(r->limit));
	if (r->index >= 0)
		json_object_set_new(details, "index", json_integer(r->index));
	if (json_object_size(details) == 0) {
		json_decref(details);
		details = NULL;
	}
	http_respond_problem(req, r->status, r->code, r->message, details);
}

/* The group commit's completion, on its thread: keep the outcome, back to the loop. */
static void committed(void *ctx, int rc, const bool *stored, int n)
{
	struct gw_request *g = ctx;
	/* A repeat is acknowledged like a stored event, and counted. */
	for (int i = 0; rc == STORE_OK && i < n; i++)
		if (!stored[i])
			metric_add(&m_deduped, 1);
	g->ingest->store_rc = rc;
	gw_wake(g);
}

/*
 * The store step, on the loop: the events get their ids and the key's
 * organisation, project and key, and go to the group commit with the
 * request suspended until it committed them.
 */
enum gw_next gw_ingest_commit(struct gw_request *g)
{
	const struct gateway_deps *d = g->deps;
	struct http_request *req = g->req;
	const struct store_key *k = &g->authn.result.key;
	struct segment_result *r = &g->ingest->parsed;
	if (r->status != 0) {
		respond_whole(req, r);
		return GW_END;
	}
	if (r->n_events == 0)
		return GW_NEXT;
	struct store_event *evs = arena_alloc(&req->arena, sizeof *evs * (size_t)r->n_events);
	for (int i = 0; i < r->n_events; i++) {
		struct segment_event *e = &r->events[i];
		evs[i] = e->ev;
		store_event_set_id(&evs[i]); /* a ULID of its received_at */
		str_copy(evs[i].org_id, sizeof evs[i].org_id, k->org_id, SIZE_MAX);
		str_copy(evs[i].project_id, sizeof evs[i].project_id, k->project_id, SIZE_MAX);
		str_copy(evs[i].key_id, sizeof evs[i].key_id, k->id, SIZE_MAX);
		evs[i].adid_sealed[0] = '\0';
		/* Held sealed for the row only while the project's CAPI forward is on (cached). */
		if (e->adid[0])
			store_capi_adid_seal(d->store, &evs[i], e->adid);
		explicit_bzero(e->adid, sizeof e->adid);
	}
	gw_suspend(g);
	if (ingest_commit_submit(d->ingest_commit, evs, r->n_events, committed, g) ==
	    INGEST_COMMIT_OK)
		return GW_WAIT;
	gw_suspend_cancel(g);
	return gw_overloaded(g);
}

/* The 200, on the loop, once the group commit answered (or with nothing to commit). */
enum gw_next gw_ingest_answer(struct gw_request *g)
{
	const struct segment_result *r = &g->ingest->parsed;
	if (g->ingest->store_rc != STORE_OK) {
		http_respond_store_error(g->req, g->ingest->store_rc);
		return GW_END;
	}
	json_t *rejected = json_array();
	for (int i = 0; i < r->n_rejects; i++) {
		const struct segment_reject *x = &r->rejects[i];
		json_array_append_new(rejected, json_pack("{s:i, s:s, s:s, s:s}", "index", x->index,
		                                          "messageId", x->message_id, "code",
		                                          x->code, "message", x->message));
		count_reject(x->code);
	}
	metric_add(&m_accepted, r->n_events);
	http_respond_json(g->req, 200,
	                  json_pack("{s:i, s:o}", "accepted", r->n_events, "rejected", rejected));
	return GW_END;
}

void ingest_routes(struct router *r)
{
	static const char *const endpoints[] = {"batch", "import", "track", "identify",
	                                        "page",  "screen", "group", "alias"};
	static const char *const paths[] = {"/v1/batch", "/v1/import", "/v1/track", "/v1/identify",
	                                    "/v1/page",  "/v1/screen", "/v1/group", "/v1/alias"};
	for (size_t i = 0; i < sizeof endpoints / sizeof *endpoints; i++) {
		router_add(r, "POST", paths[i], gateway_ingest, 0);
		r->routes[r->n - 1].data = endpoints[i];
	}
}
