/*
 * capi.c: the Conversions API forward (see capi.h). One thread, one batch in
 * flight at a time over a blocking curl easy handle (a batch is up to 1000
 * events: throughput is Meta's, not ours), aborted at stop through the
 * progress callback.
 */
#include "delivery/capi.h"

#include "build_info.h"
#include "core/alloc.h"
#include "core/clock.h"
#include "core/config.h"
#include "core/json.h"
#include "core/log.h"
#include "core/metrics.h"
#include "core/thread.h"
#include "crypto/random.h"
#include "crypto/sealed.h"
#include "delivery/egress.h"
#include "delivery/engine.h"
#include "delivery/keyring.h"
#include "delivery/schedule.h"

#include <curl/curl.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define IDLE_MS 1000 /* nothing to do: look again this soon */
#define URL_MAX (EGRESS_URL_MAX + 64)

/* ---------- the request body (pure) ---------- */

bool capi_version_ok(const char *v)
{
	if (!v || v[0] != 'v')
		return false;
	const char *p = v + 1;
	size_t a = strspn(p, "0123456789");
	if (a == 0 || a > 4 || p[a] != '.')
		return false;
	p += a + 1;
	size_t b = strspn(p, "0123456789");
	return b > 0 && b <= 4 && p[b] == '\0';
}

static void put_hash(json_t *ud, const char *name, const char *hex)
{
	if (hex && hex[0])
		json_object_set_new(ud, name, json_pack("[s]", hex));
}

int capi_event_add(json_t *data, const struct store_capi_event *ev, const char *madid,
                   int64_t min_ts)
{
	if (ev->timestamp < min_ts)
		return 0;
	bool track = strcmp(ev->type, "track") == 0 && ev->event[0];
	json_t *ud = json_object();
	put_hash(ud, "em", ev->email_sha256);
	put_hash(ud, "ph", ev->phone_sha256);
	if (ev->user_id[0])
		json_object_set_new(ud, "external_id", json_pack("[s]", ev->user_id));
	if (madid && madid[0])
		json_object_set_new(ud, "madid", json_string(madid));
	json_t *out =
	    json_pack("{s:s, s:I, s:s, s:s, s:o}", "event_name", track ? ev->event : ev->type,
	              "event_time", (json_int_t)(ev->timestamp / 1000), "event_id", ev->message_id,
	              "action_source", "app", "user_data", ud);
	json_t *body = json_loads(ev->body, 0, NULL);
	json_t *props = body ? json_object_get(body, "properties") : NULL;
	if (json_is_object(props))
		json_object_set(out, "custom_data", props);
	json_decref(body);
	json_array_append_new(data, out);
	return 1;
}

char *capi_request_body(json_t *data, const char *token, const char *test_event_code)
{
	json_t *o = json_pack("{s:O, s:s}", "data", data, "access_token", token);
	if (test_event_code && test_event_code[0])
		json_object_set_new(o, "test_event_code", json_string(test_event_code));
	char *s = json_text(o, false, NULL); /* a price of 129.95 goes as 129.95 */
	json_decref(o);
	return s;
}

void capi_redact(const char *in, const char *secret, char *out, size_t cap)
{
	static const char mark[] = "[redacted]";
	size_t n = 0, sl = secret ? strlen(secret) : 0;
	if (cap == 0)
		return;
	for (const char *p = in; *p && n + 1 < cap;) {
		if (sl && strncmp(p, secret, sl) == 0) {
			for (size_t k = 0; mark[k] && n + 1 < cap; k++)
				out[n++] = mark[k];
			p += sl;
		} else {
			out[n++] = *p++;
		}
	}
	out[n] = '\0';
}

/* ---------- the forwarder ---------- */

struct capi_forwarder {
	struct store *st;
	const struct config *cfg;
	char owner[300];
	struct keyring_file keys; /* [secrets] private_key_file */
	struct wh_schedule sched;
	struct egress_ranges *allow;
	char user_agent[64];
	struct bg_thread t;
	atomic_bool stopping;
};

/* One attempt's transfer state. */
struct send {
	struct capi_forwarder *f;
	char resp[STORE_CAPI_RESPONSE_MAX];
	struct engine_response body;      /* the answer's first bytes into resp */
	struct egress_socket_guard guard; /* the egress check of the connect */
	char retry_after[72];
};

static size_t on_header(char *data, size_t size, size_t n, void *userp)
{
	struct send *s = userp;
	size_t len = size * n;
	static const char name[] = "retry-after:";
	size_t nl = sizeof name - 1;
	if (len > nl && len - nl < sizeof s->retry_after && strncasecmp(data, name, nl) == 0) {
		memcpy(s->retry_after, data + nl, len - nl);
		s->retry_after[len - nl] = '\0';
	}
	return len;
}

static int on_progress(void *clientp, curl_off_t dt, curl_off_t dn, curl_off_t ut, curl_off_t un)
{
	const struct send *s = clientp;
	(void)dt, (void)dn, (void)ut, (void)un;
	return atomic_load(&s->f->stopping) ? 1 : 0;
}

/* Open stored for ctx into out (cap bytes, NUL-terminated). 0, or -1. */
static int open_sealed(struct capi_forwarder *f, const char *stored,
                       const struct sealed_context *ctx, char *out, size_t cap)
{
	const struct sealed_keyring *kr = keyring_file_for(&f->keys, stored);
	size_t len = 0;
	if (!kr || sealed_open(kr, stored, ctx, (uint8_t *)out, cap - 1, &len) != SEALED_OK) {
		out[0] = '\0';
		return -1;
	}
	out[len] = '\0';
	return 0;
}

struct build {
	struct capi_forwarder *f;
	json_t *data;
	int64_t min_ts;
	int sent;
};

static void add_one(void *ctx, const struct store_capi_event *ev)
{
	struct build *b = ctx;
	char madid[SEALED_SECRET_MAX + 1] = "";
	if (ev->adid_sealed[0]) {
		struct sealed_context c = {STORE_CAPI_ADID_TABLE, STORE_CAPI_ADID_COLUMN, ev->id,
		                           ev->org_id};
		if (open_sealed(b->f, ev->adid_sealed, &c, madid, sizeof madid) < 0)
			log_event(LOG_WARN, "capi_adid_unopened", "event", ev->id, NULL);
	}
	b->sent += capi_event_add(b->data, ev, madid, b->min_ts);
	sealed_wipe(madid, sizeof madid);
}

/* Meta's {"events_received": N}, or -1. */
static int64_t events_received(const char *resp, size_t len)
{
	json_t *j = json_loadb(resp, len, 0, NULL);
	json_t *n = j ? json_object_get(j, "events_received") : NULL;
	int64_t v = json_is_integer(n) ? (int64_t)json_integer_value(n) : -1;
	json_decref(j);
	return v;
}

/* POST body to url; fills r and s. */
static void post(struct capi_forwarder *f, const char *url, const char *body, struct send *s,
                 struct engine_result *r)
{
	CURL *h = curl_easy_init();
	if (!h)
		fatal("curl_easy_init failed");
	struct curl_slist *hdr = curl_slist_append(NULL, "Content-Type: application/json");
	hdr = curl_slist_append(hdr, "Expect:");
	s->guard.allow = f->allow;
	egress_curl_post(h, url, (long)f->cfg->capi_timeout_s * 1000, f->cfg->webhooks_ca_file,
	                 &s->guard);
	curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
	curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)strlen(body));
	curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdr);
	curl_easy_setopt(h, CURLOPT_USERAGENT, f->user_agent);
	curl_easy_setopt(h, CURLOPT_XFERINFOFUNCTION, on_progress);
	curl_easy_setopt(h, CURLOPT_XFERINFODATA, s);
	curl_easy_setopt(h, CURLOPT_NOPROGRESS, 0L);
	curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
	curl_easy_setopt(h, CURLOPT_HEADERDATA, s);
	s->body = (struct engine_response){.head = s->resp, .cap = sizeof s->resp};
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, engine_response_keep);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, &s->body);
	r->rc = curl_easy_perform(h);
	long status = 0;
	curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
	r->status = (int)status;
	r->egress_refused = s->guard.refused;
	r->too_large = s->body.too_large;
	r->retry_after = s->retry_after[0] ? s->retry_after : NULL;
	curl_slist_free_all(hdr);
	curl_easy_cleanup(h);
}

/* ---------- metrics ---------- */

enum { M_SUCCEEDED, M_RETRIED, M_FAILED, M_EVENTS, M_COUNT };
_Static_assert(M_COUNT == CAPI_METRIC_CELLS, "capi.h names the cell count");

#define BATCHES(outcome)                                                                           \
	METRIC_INIT_LABELS(                                                                        \
	    "portcullis_capi_batches_total", "outcome=\"" outcome "\"",                            \
	    "Conversions API batch attempts by outcome (retried: another attempt is "              \
	    "scheduled; failed: given up or the project switched off).",                           \
	    "counter")

static struct metric metrics[M_COUNT] = {
    [M_SUCCEEDED] = BATCHES("succeeded"),
    [M_RETRIED] = BATCHES("retried"),
    [M_FAILED] = BATCHES("failed"),
    [M_EVENTS] = METRIC_INIT("portcullis_capi_events_forwarded_total",
                             "Events sent in Conversions API batches that succeeded.", "counter"),
};

void capi_metrics_register(int64_t *cells)
{
	metrics_register_cells(metrics, M_COUNT, cells);
}

static void count_outcome(const struct store_capi_outcome *o)
{
	if (strcmp(o->status, "succeeded") == 0) {
		metric_add(&metrics[M_SUCCEEDED], 1);
		if (o->events_sent > 0)
			metric_add(&metrics[M_EVENTS], o->events_sent);
	} else {
		metric_add(&metrics[strcmp(o->status, "pending") == 0 ? M_RETRIED : M_FAILED], 1);
	}
}

/* Send one claimed batch and record what came of it. */
static void forward(struct capi_forwarder *f, const struct store_capi_batch *b)
{
	int64_t now = clock_now_ms();
	struct store_capi_config c;
	struct store_capi_outcome o = {.events_sent = -1, .events_received = -1, .http_status = -1};
	struct engine_result r = {.rc = CURLE_OK};
	struct send s = {.f = f};
	char token[STORE_CAPI_TOKEN_MAX + 1] = "";
	char resp[STORE_CAPI_RESPONSE_MAX + 1] = "", clean[STORE_CAPI_RESPONSE_MAX + 1] = "";
	int rc = store_capi_get(f->st, b->org_id, b->project_id, &c);
	if (rc == STORE_ENOTFOUND || (rc == STORE_OK && !c.enabled)) {
		/* Switched off since: never forwarded; its held ids go. */
		o.status = "failed";
		o.error = "disabled";
		goto record;
	}
	if (rc != STORE_OK)
		return; /* the store is away: the lease runs out and the batch is due again */
	struct build bd = {f, json_array(), now - CAPI_MAX_AGE_MS, 0};
	rc = store_capi_batch_events(f->st, b->id, add_one, &bd);
	if (rc != STORE_OK) {
		json_decref(bd.data);
		return;
	}
	o.events_sent = bd.sent;
	if (bd.sent == 0) { /* all past Meta's 7 days (or purged): nothing to send */
		json_decref(bd.data);
		o.status = "succeeded";
		goto record;
	}
	struct sealed_context tc = {STORE_CAPI_TOKEN_TABLE, STORE_CAPI_TOKEN_COLUMN, c.project_id,
	                            c.org_id};
	if (open_sealed(f, c.access_token, &tc, token, sizeof token) < 0) {
		r.not_sent = true;
	} else {
		char url[URL_MAX];
		size_t bl = strlen(f->cfg->capi_base_url);
		while (bl > 0 && f->cfg->capi_base_url[bl - 1] == '/')
			bl--;
		snprintf(url, sizeof url, "%.*s/%s/%s/events", (int)bl, f->cfg->capi_base_url,
		         f->cfg->capi_api_version, c.pixel_id);
		char *body = capi_request_body(bd.data, token, c.test_event_code);
		post(f, url, body, &s, &r);
		explicit_bzero(body, strlen(body));
		free(body);
	}
	json_decref(bd.data);
	struct engine_decision d;
	uint64_t rnd = 0;
	crypto_random(&rnd, sizeof rnd);
	engine_decide(&f->sched, b->attempts, &r, clock_now_ms(), rnd, &d);
	o.status = d.succeeded ? "succeeded" : d.next_attempt_at >= 0 ? "pending" : "failed";
	o.error = r.not_sent ? "token_unopened" : d.error;
	o.next_attempt_at = d.next_attempt_at;
	o.http_status = r.status > 0 ? r.status : -1;
	if (r.status > 0) {
		engine_response_text(s.resp, s.body.len, resp, sizeof resp);
		capi_redact(resp, token, clean, sizeof clean);
		o.response = clean;
		if (d.succeeded)
			o.events_received = events_received(s.resp, s.body.len);
	}
record:
	explicit_bzero(token, sizeof token);
	rc = store_capi_record(f->st, b->id, f->owner, &o);
	if (rc == STORE_OK)
		count_outcome(&o);
	char st[16], att[24];
	snprintf(st, sizeof st, "%lld", (long long)o.http_status);
	snprintf(att, sizeof att, "%lld", (long long)b->attempts + 1);
	log_event(rc == STORE_OK ? LOG_INFO : LOG_WARN, "capi_batch", "batch", b->id, "project",
	          b->project_id, "outcome", o.status, "#status", st, "#attempt", att, "error",
	          o.error, "store", rc == STORE_OK ? NULL : "not recorded", NULL);
}

/* One round: new batches, then every due batch. True when something was sent. */
static bool round_once(struct capi_forwarder *f)
{
	int64_t now = clock_now_ms();
	if (store_capi_batches_make(f->st, now, now - CAPI_MAX_AGE_MS, STORE_CAPI_BATCH_MAX,
	                            NULL) != STORE_OK)
		log_event(LOG_WARN, "store_error", "op", "capi_batch", NULL);
	bool any = false;
	struct store_capi_batch b;
	int64_t lease_ms = (f->cfg->capi_timeout_s + 30) * 1000;
	while (!atomic_load(&f->stopping) &&
	       store_capi_claim(f->st, f->owner, clock_now_ms(), lease_ms, &b) == STORE_OK) {
		forward(f, &b);
		any = true;
	}
	return any;
}

static void capi_main(struct bg_thread *t, void *arg)
{
	struct capi_forwarder *f = arg;
	bool any;
	do {
		pthread_mutex_unlock(t->lock);
		any = round_once(f);
		pthread_mutex_lock(t->lock);
	} while (bg_thread_wait(t, any ? 0 : IDLE_MS));
}

/* What capi_start made (the thread joined or never started). */
static void forwarder_free(struct capi_forwarder *f)
{
	egress_ranges_free(f->allow);
	keyring_file_close(&f->keys);
	free(f);
}

int capi_start(const struct capi_options *o, struct capi_forwarder **out, char *err, size_t cap)
{
	struct capi_forwarder *f = xcalloc(1, sizeof *f);
	f->st = o->st;
	f->cfg = o->cfg;
	snprintf(f->owner, sizeof f->owner, "%s", o->owner);
	snprintf(f->user_agent, sizeof f->user_agent, "Portcullis-CAPI/%s", PORTCULLIS_VERSION);
	char msg[256];
	/* delivery_config_check refused bad settings already; these are the parsed forms. */
	int bad =
	    wh_schedule_parse(o->cfg->capi_retry_schedule, &f->sched, msg, sizeof msg) < 0 ||
	    egress_ranges_parse(o->cfg->webhooks_allow_ranges, &f->allow, msg, sizeof msg) < 0;
	/* A key file that cannot be read yet is read again when a batch needs it. */
	if (!bad)
		(void)keyring_file_open(&f->keys, o->key_file, false, msg, sizeof msg);
	if (!bad && store_capi_release_all(f->st, f->owner) != STORE_OK)
		log_event(LOG_WARN, "store_error", "op", "capi_release", NULL);
	/* No interrupt: capi_stop sets stopping first, which the transfer's progress reads. */
	if (bad || bg_thread_start(&f->t, "capi", NULL, capi_main, f) < 0) {
		snprintf(err, cap, "[capi] %s", bad ? msg : "cannot start the forward's thread");
		forwarder_free(f);
		return -1;
	}
	*out = f;
	return 0;
}

void capi_stop(struct capi_forwarder *f)
{
	if (!f)
		return;
	atomic_store(&f->stopping, true);
	bg_thread_stop(&f->t);
	if (store_capi_release_all(f->st, f->owner) != STORE_OK)
		log_event(LOG_WARN, "store_error", "op", "capi_release", NULL);
	forwarder_free(f);
}
