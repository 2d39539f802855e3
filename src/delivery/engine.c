/*
 * engine.c: the delivery engine (see engine.h).
 *
 * One thread owns everything here: the curl multi (its connection cache
 * reuses connections per receiver), the per-endpoint table (in flight,
 * claims waiting for room, token bucket) and the batch of outcomes not yet
 * recorded. It sleeps in curl_multi_poll, which curl_multi_wakeup ends at
 * stop. The store is polled: fan-out and claims run again at once while
 * they find work, and every POLL_MS when idle.
 */
#include "delivery/engine.h"

#include "build_info.h"
#include "core/alloc.h"
#include "core/clock.h"
#include "core/config.h"
#include "core/log.h"
#include "core/metrics.h"
#include "core/thread.h"
#include "crypto/random.h"
#include "crypto/sealed.h"
#include "delivery/egress.h"
#include "delivery/keyring.h"
#include "delivery/mail.h"
#include "delivery/sign.h"
#include "store/store_webhooks.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

#define POLL_MS         50   /* store polls while idle */
#define BATCH_MAX       512  /* outcomes waiting to be recorded */
#define BATCH_FLUSH_N   256  /* record at once when this many wait */
#define BATCH_FLUSH_MS  20   /* ... or when the oldest waited this long */
#define CLAIM_MAX       256  /* deliveries one claim takes */
#define FANOUT_MAX      256  /* messages one fan-out takes */
#define STATS_MS        2000 /* outbox gauges */
#define STOP_GRACE_MS   5000 /* attempts in flight may finish this long after stop */
#define SKIP_MAX        1024 /* endpoints named in one claim's skip list */
#define EP_BUCKETS      1024
#define SECRET_CACHE_MS 60000 /* an opened secret is reused this long for its endpoint */
#define IDLE_EASY_MAX   64    /* easy handles kept for reuse */
#define CLAIM_GAP_MS    5     /* after attempts end, claim again this soon */
#define EP_BUFFER       4     /* claims kept per endpoint: this many times its concurrency */
#define EP_REFILL       2     /* ... claimed this many times it at most per claim */
#define CLAIM_NEW       64    /* a claim's room for endpoints not in the table */
#define EP_KEEP         4096  /* idle endpoint entries kept before a sweep */

/* ---------- metrics ---------- */

enum {
	M_ATT_SUCCEEDED,
	M_ATT_STATUS,
	M_ATT_TIMEOUT,
	M_ATT_CONNECT,
	M_ATT_TLS,
	M_ATT_DNS,
	M_ATT_EGRESS,
	M_ATT_TOO_LARGE,
	M_ATT_NOT_SENT,
	M_DLV_SUCCEEDED,
	M_DLV_FAILED,
	M_MAIL_SENT,
	M_MAIL_FAILED,
	M_IN_FLIGHT,
	M_PENDING,
	M_OLDEST_AGE,
	M_FANNED_OUT,
	M_COUNT
};
_Static_assert(M_COUNT == ENGINE_METRIC_CELLS, "engine.h names the cell count");

#define ATT(outcome)                                                                               \
	METRIC_INIT_LABELS(                                                                        \
	    "portcullis_webhook_attempts_total", "outcome=\"" outcome "\"",                        \
	    "Webhook delivery attempts by outcome (the error class of a failed one).", "counter")
#define DLV(outcome)                                                                               \
	METRIC_INIT_LABELS(                                                                        \
	    "portcullis_webhook_deliveries_total", "outcome=\"" outcome "\"",                      \
	    "Webhook deliveries ended, by outcome (failed: no attempt left or 410).", "counter")

static struct metric metrics[M_COUNT] = {
    [M_ATT_SUCCEEDED] = ATT("succeeded"),
    [M_ATT_STATUS] = ATT("status"),
    [M_ATT_TIMEOUT] = ATT("timeout"),
    [M_ATT_CONNECT] = ATT("connect"),
    [M_ATT_TLS] = ATT("tls"),
    [M_ATT_DNS] = ATT("dns"),
    [M_ATT_EGRESS] = ATT("egress_refused"),
    [M_ATT_TOO_LARGE] = ATT("too_large"),
    [M_ATT_NOT_SENT] = ATT("not_sent"),
    [M_DLV_SUCCEEDED] = DLV("succeeded"),
    [M_DLV_FAILED] = DLV("failed"),
    [M_MAIL_SENT] = METRIC_INIT("portcullis_mail_sent_total",
                                "Notice mails the SMTP server accepted.", "counter"),
    [M_MAIL_FAILED] = METRIC_INIT("portcullis_mail_failed_total",
                                  "Notice mail attempts that failed (each is retried as "
                                  "scheduled).",
                                  "counter"),
    [M_IN_FLIGHT] = METRIC_INIT("portcullis_webhook_attempts_in_flight",
                                "Webhook and mail attempts in flight now.", "gauge"),
    [M_PENDING] = METRIC_INIT("portcullis_webhook_pending_deliveries",
                              "Webhook and mail deliveries not yet succeeded or failed.", "gauge"),
    [M_OLDEST_AGE] =
        METRIC_INIT("portcullis_webhook_oldest_pending_age_seconds",
                    "Age of the oldest message with a delivery still pending (0: none).", "gauge"),
    [M_FANNED_OUT] =
        METRIC_INIT("portcullis_webhook_messages_total",
                    "Messages fanned out into deliveries by the background tier.", "counter"),
};

void engine_metrics_register(int64_t *cells)
{
	metrics_register_cells(metrics, M_COUNT, cells);
}

static void count_attempt(bool not_sent, const char *error)
{
	if (not_sent) {
		metric_add(&metrics[M_ATT_NOT_SENT], 1);
		return;
	}
	static const char *const names[] = {"status", "timeout",        "connect",  "tls",
	                                    "dns",    "egress_refused", "too_large"};
	if (!error) {
		metric_add(&metrics[M_ATT_SUCCEEDED], 1);
		return;
	}
	for (int i = 0; i < 7; i++)
		if (strcmp(error, names[i]) == 0)
			metric_add(&metrics[M_ATT_STATUS + i], 1);
}

/* ---------- pure decisions ---------- */

bool token_bucket_take(struct token_bucket *b, int64_t rate, int64_t now_ms)
{
	if (rate <= 0)
		return true;
	int64_t full = rate * 1000;
	if (b->milli < 0 || now_ms < b->at_ms) {
		b->milli = full;
	} else {
		int64_t add = (now_ms - b->at_ms) * rate; /* rate tokens/s = rate milli-tokens/ms */
		b->milli = add >= full - b->milli ? full : b->milli + add;
	}
	b->at_ms = now_ms;
	if (b->milli < 1000)
		return false;
	b->milli -= 1000;
	return true;
}

int64_t token_bucket_wait_ms(const struct token_bucket *b, int64_t rate, int64_t now_ms)
{
	if (rate <= 0 || b->milli < 0)
		return 0;
	int64_t have = b->milli + (now_ms > b->at_ms ? (now_ms - b->at_ms) * rate : 0);
	if (have >= 1000)
		return 0;
	return (1000 - have + rate - 1) / rate;
}

const char *engine_error_class(CURLcode rc, bool egress_refused, bool too_large)
{
	if (egress_refused)
		return "egress_refused";
	if (too_large)
		return "too_large";
	switch (rc) {
	case CURLE_OK:
		return NULL;
	case CURLE_OPERATION_TIMEDOUT:
		return "timeout";
	case CURLE_COULDNT_RESOLVE_HOST:
	case CURLE_COULDNT_RESOLVE_PROXY:
		return "dns";
	case CURLE_SSL_CONNECT_ERROR:
	case CURLE_PEER_FAILED_VERIFICATION:
	case CURLE_SSL_CERTPROBLEM:
	case CURLE_SSL_CIPHER:
	case CURLE_SSL_CACERT_BADFILE:
	case CURLE_SSL_ISSUER_ERROR:
	case CURLE_SSL_CRL_BADFILE:
	case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
	case CURLE_SSL_INVALIDCERTSTATUS:
	case CURLE_SSL_SHUTDOWN_FAILED:
	case CURLE_USE_SSL_FAILED:
	case CURLE_SSL_ENGINE_NOTFOUND:
	case CURLE_SSL_ENGINE_SETFAILED:
	case CURLE_SSL_ENGINE_INITFAILED:
		return "tls";
	default:
		return "connect";
	}
}

void engine_decide(const struct wh_schedule *s, int64_t attempts_before,
                   const struct engine_result *r, int64_t now_ms, uint64_t rnd,
                   struct engine_decision *d)
{
	memset(d, 0, sizeof *d);
	d->next_attempt_at = -1;
	if (r->not_sent) { /* no request made: no error class, the schedule's next step */
		int64_t delay = wh_schedule_delay(s,
		                                  (int)(attempts_before + 1 > WH_SCHEDULE_MAX
		                                            ? WH_SCHEDULE_MAX
		                                            : attempts_before + 1),
		                                  rnd);
		d->next_attempt_at = delay < 0 ? -1 : now_ms + delay;
		return;
	}
	if (r->rc == CURLE_OK && !r->egress_refused && !r->too_large &&
	    (r->mail || (r->status >= 200 && r->status <= 299))) {
		d->succeeded = true;
		return;
	}
	/* A mail the server refused has a reply code: "status" too. */
	if ((r->rc == CURLE_OK || (r->mail && r->status >= 400)) && !r->egress_refused &&
	    !r->too_large)
		d->error = "status";
	else
		d->error = engine_error_class(r->rc, r->egress_refused, r->too_large);
	if (!r->mail && r->rc == CURLE_OK && r->status == 410) {
		d->gone = true;
		return;
	}
	int next =
	    attempts_before + 1 > WH_SCHEDULE_MAX ? WH_SCHEDULE_MAX : (int)attempts_before + 1;
	int64_t delay;
	if (!r->mail && r->rc == CURLE_OK && (r->status == 429 || r->status == 503) &&
	    r->retry_after)
		delay = wh_retry_after_clamp(s, next, wh_retry_after_ms(r->retry_after, now_ms));
	else
		delay = wh_schedule_delay(s, next, rnd);
	d->next_attempt_at = delay < 0 ? -1 : now_ms + delay;
}

/* Length of the valid UTF-8 sequence at p (n bytes left), 0 when broken. */
static size_t utf8_seq(const unsigned char *p, size_t n)
{
	size_t k;
	uint32_t min;
	if (p[0] < 0x80)
		return 1;
	if ((p[0] & 0xE0) == 0xC0) {
		k = 2;
		min = 0x80;
	} else if ((p[0] & 0xF0) == 0xE0) {
		k = 3;
		min = 0x800;
	} else if ((p[0] & 0xF8) == 0xF0) {
		k = 4;
		min = 0x10000;
	} else {
		return 0;
	}
	if (k > n)
		return 0;
	uint32_t c = p[0] & (0x7F >> k);
	for (size_t i = 1; i < k; i++) {
		if ((p[i] & 0xC0) != 0x80)
			return 0;
		c = (c << 6) | (p[i] & 0x3F);
	}
	if (c < min || c > 0x10FFFF || (c >= 0xD800 && c <= 0xDFFF))
		return 0;
	return k;
}

size_t engine_response_text(const char *in, size_t len, char *out, size_t cap)
{
	size_t o = 0;
	const unsigned char *p = (const unsigned char *)in;
	size_t i = 0;
	while (i < len && o + 1 < cap) {
		size_t k = utf8_seq(p + i, len - i);
		if (k == 1 &&
		    ((p[i] < 0x20 && p[i] != '\t' && p[i] != '\r' && p[i] != '\n') || p[i] == 0x7F))
			k = 0;
		if (k == 0) {
			out[o++] = '?';
			i++;
			continue;
		}
		if (o + k >= cap)
			break;
		memcpy(out + o, p + i, k);
		o += k;
		i += k;
	}
	if (cap)
		out[o] = '\0';
	return o;
}

/* ---------- state ---------- */

struct xfer;

struct ep_state {
	char id[STORE_WH_ID_MAX + 1];
	int in_flight;
	struct xfer *held_head, *held_tail; /* claimed, waiting for room or a token */
	int n_held;
	int64_t rate;
	struct token_bucket tb;
	bool failing_done; /* marked failing or disabled by this worker already */
	int got;           /* claims it got in the last claim */
	bool more;         /* that claim gave it all it could: more may be due */
	/* Opened secrets (secret, prev_secret) for SECRET_CACHE_MS: one X25519 open, not one per
	 * attempt. */
	char sealed[2][STORE_WH_SEALED_MAX + 1];
	char plain[2][WH_SECRET_MAX + 1];
	int64_t opened_mono[2];
	struct ep_state *next;
};

struct xfer {
	struct engine *e;
	struct store_claim c; /* owns c.body */
	struct ep_state *ep;  /* NULL for mail */
	CURL *easy;
	struct mail_job *mail;
	struct curl_slist *headers;
	char resp[STORE_WH_RESPONSE_MAX + 1];
	struct engine_response body;      /* the first STORE_WH_RESPONSE_MAX bytes into resp */
	struct egress_socket_guard guard; /* the egress check of the connect */
	bool not_sent; /* nothing could be sent: no secret to sign with, or no mail to write */
	bool purged;   /* ... nor ever will: the message's body is gone (retention) */
	char retry_after[72];
	int64_t claimed_mono, start_mono, at_ms;
	struct xfer *next;                /* held queue */
	struct xfer *act_prev, *act_next; /* on the multi */
};

enum post_action { POST_NONE, POST_GONE, POST_DISABLE_FAILING, POST_MARK_FAILING };

struct rec {
	char delivery_id[STORE_WH_ID_MAX + 1];
	char endpoint_id[STORE_WH_ID_MAX + 1];
	int64_t at, duration_ms, next_attempt_at;
	int http_status;
	const char *error; /* static */
	char response[STORE_WH_RESPONSE_MAX + 1];
	bool has_response, succeeded;
	enum post_action post;
};

struct engine {
	struct bg_thread t;
	atomic_bool stopping;
	struct store *st;
	const struct config *cfg;
	char owner[300];
	struct keyring_file keys; /* [secrets] private_key_file */
	const struct mailer *mailer;
	struct egress_ranges *allow;
	struct wh_schedule sched;
	CURLM *multi;
	int in_flight;       /* transfers on the multi */
	struct xfer *active; /* ... listed */
	int held;            /* claims waiting in endpoint queues */
	struct ep_state *eps[EP_BUCKETS];
	int n_eps;
	struct rec *batch;
	int n_batch;
	int64_t batch_since_mono;
	int64_t next_fanout, next_claim, next_stats, next_flush_retry, last_claim;
	CURL *idle[IDLE_EASY_MAX];
	int n_idle;
	char user_agent[64];
};

static uint32_t ep_hash(const char *id)
{
	uint32_t h = 2166136261u;
	for (const unsigned char *p = (const unsigned char *)id; *p; p++)
		h = (h ^ *p) * 16777619u;
	return h % EP_BUCKETS;
}

static struct ep_state *ep_get(struct engine *e, const char *id)
{
	uint32_t h = ep_hash(id);
	for (struct ep_state *s = e->eps[h]; s; s = s->next)
		if (strcmp(s->id, id) == 0)
			return s;
	struct ep_state *s = xcalloc(1, sizeof *s);
	snprintf(s->id, sizeof s->id, "%s", id);
	s->tb.milli = -1;
	s->next = e->eps[h];
	e->eps[h] = s;
	e->n_eps++;
	return s;
}

static void ep_free(struct ep_state *s)
{
	explicit_bzero(s->plain, sizeof s->plain);
	free(s);
}

/* Drop idle entries (nothing in flight or held) when the table has grown. */
static void ep_sweep(struct engine *e, int64_t now)
{
	if (e->n_eps <= EP_KEEP)
		return;
	for (int b = 0; b < EP_BUCKETS; b++)
		for (struct ep_state **p = &e->eps[b]; *p;) {
			struct ep_state *s = *p;
			if (!s->in_flight && !s->n_held &&
			    token_bucket_wait_ms(&s->tb, s->rate, now) == 0) {
				*p = s->next;
				ep_free(s);
				e->n_eps--;
			} else {
				p = &s->next;
			}
		}
}

/*
 * Claims held per endpoint: up to EP_BUFFER times its concurrency, so that
 * when an attempt ends the next one starts at once, without a store round.
 */
static bool ep_full(const struct engine *e, const struct ep_state *s)
{
	return s->in_flight + s->n_held >= EP_BUFFER * (int)e->cfg->webhooks_endpoint_concurrency;
}

/* ---------- recording ---------- */

static void post_actions(struct engine *e, const struct rec *r)
{
	int rc = STORE_OK;
	if (r->post == POST_GONE)
		rc = store_endpoint_disable(e->st, r->endpoint_id, "gone", r->at);
	else if (r->post == POST_DISABLE_FAILING)
		rc = store_endpoint_disable(e->st, r->endpoint_id, "failing", r->at);
	else if (r->post == POST_MARK_FAILING)
		rc = store_endpoint_mark_failing(e->st, r->endpoint_id, r->at);
	else
		return;
	const char *what =
	    r->post == POST_MARK_FAILING ? "webhook_endpoint_failing" : "webhook_endpoint_disabled";
	if (rc == STORE_OK)
		log_event(LOG_WARN, what, "endpoint_id", r->endpoint_id, "reason",
		          r->post == POST_GONE ? "gone" : "failing", NULL);
	else if (rc != STORE_ENOTFOUND)
		log_event(LOG_ERROR, "store_error", "op", what, "endpoint_id", r->endpoint_id,
		          NULL);
}

/* Record the batch in one transaction; on failure keep it and try again later. */
static void flush(struct engine *e)
{
	if (!e->n_batch)
		return;
	struct store_attempt *a = xcalloc((size_t)e->n_batch, sizeof *a);
	for (int i = 0; i < e->n_batch; i++) {
		const struct rec *r = &e->batch[i];
		a[i] = (struct store_attempt){
		    .delivery_id = r->delivery_id,
		    .at = r->at,
		    .duration_ms = r->duration_ms,
		    .http_status = r->http_status,
		    .error = r->error,
		    .response = r->has_response ? r->response : NULL,
		    .succeeded = r->succeeded,
		    .next_attempt_at = r->next_attempt_at,
		};
	}
	int rc = store_record(e->st, e->owner, a, e->n_batch);
	free(a);
	if (rc != STORE_OK) {
		log_event(LOG_ERROR, "store_error", "op", "webhook_record", "code",
		          rc == STORE_EUNAVAILABLE ? "unavailable" : "error", NULL);
		e->next_flush_retry = clock_mono_ms() + 1000;
		return;
	}
	for (int i = 0; i < e->n_batch; i++)
		post_actions(e, &e->batch[i]);
	e->n_batch = 0;
	e->next_flush_retry = 0;
}

static struct rec *rec_new(struct engine *e)
{
	if (e->n_batch == 0)
		e->batch_since_mono = clock_mono_ms();
	struct rec *r = &e->batch[e->n_batch++];
	memset(r, 0, sizeof *r);
	return r;
}

/* ---------- attempts ---------- */

/* An easy handle from the idle ones (reset), or a new one. */
static CURL *take_easy(struct engine *e)
{
	if (e->n_idle) {
		CURL *h = e->idle[--e->n_idle];
		curl_easy_reset(h);
		return h;
	}
	CURL *h = curl_easy_init();
	if (!h)
		fatal("curl_easy_init failed");
	return h;
}

/* x's easy handle must be off the multi. */
static void xfer_free(struct xfer *x)
{
	if (x->easy && x->e->n_idle < IDLE_EASY_MAX)
		x->e->idle[x->e->n_idle++] = x->easy;
	else if (x->easy)
		curl_easy_cleanup(x->easy);
	mail_job_free(x->mail);
	curl_slist_free_all(x->headers);
	free(x->c.body);
	free(x);
}

size_t engine_response_keep(char *data, size_t size, size_t n, void *userp)
{
	struct engine_response *r = userp;
	size_t len = size * n;
	if (r->len < r->cap) {
		size_t k = r->cap - r->len;
		if (k > len)
			k = len;
		memcpy(r->head + r->len, data, k);
		r->len += k;
	}
	r->total += len;
	if (r->total > ENGINE_RESPONSE_BOUND) {
		r->too_large = true;
		return 0; /* stop reading: the transfer ends with a write error */
	}
	return len;
}

static size_t on_header(char *data, size_t size, size_t n, void *userp)
{
	struct xfer *x = userp;
	size_t len = size * n;
	if (len >= 5 && strncmp(data, "HTTP/", 5) == 0) {
		x->retry_after[0] = '\0'; /* a new status line (after 1xx) */
		return len;
	}
	static const char name[] = "retry-after:";
	if (len > sizeof name - 1 && strncasecmp(data, name, sizeof name - 1) == 0) {
		size_t v = len - (sizeof name - 1);
		if (v < sizeof x->retry_after) {
			memcpy(x->retry_after, data + sizeof name - 1, v);
			x->retry_after[v] = '\0';
		}
	}
	return len;
}

/*
 * Open one sealed secret of endpoint ep into out. A rotated-out secret
 * keeps the text it was sealed with (column "secret"), so prev_secret opens
 * under either column name.
 */
static int open_secret(struct engine *e, struct ep_state *s, const struct store_endpoint *ep,
                       const char *stored, bool prev, char out[WH_SECRET_MAX + 1])
{
	int slot = prev ? 1 : 0;
	int64_t now = clock_mono_ms();
	if (s->opened_mono[slot] && now - s->opened_mono[slot] < SECRET_CACHE_MS &&
	    strcmp(s->sealed[slot], stored) == 0) {
		memcpy(out, s->plain[slot], WH_SECRET_MAX + 1);
		return 0;
	}
	s->opened_mono[slot] = 0;
	explicit_bzero(s->plain[slot], sizeof s->plain[slot]);
	const struct sealed_keyring *kr = keyring_file_for(&e->keys, stored);
	if (!kr)
		return -1;
	static const char *const columns[] = {"secret", "prev_secret"};
	for (int i = 0; i < (prev ? 2 : 1); i++) {
		struct sealed_context ctx = {"webhook_endpoints", columns[i], ep->id, ep->org_id};
		size_t len = 0;
		if (sealed_open(kr, stored, &ctx, (uint8_t *)out, WH_SECRET_MAX, &len) ==
		    SEALED_OK) {
			out[len] = '\0';
			memcpy(s->plain[slot], out, WH_SECRET_MAX + 1);
			snprintf(s->sealed[slot], sizeof s->sealed[slot], "%s", stored);
			s->opened_mono[slot] = now;
			return 0;
		}
	}
	return -1;
}

static void add_header(struct xfer *x, const char *name, const char *value)
{
	char line[512];
	snprintf(line, sizeof line, "%s: %s", name, value);
	x->headers = curl_slist_append(x->headers, line);
}

/* Set up the POST of a webhook attempt. -1 when its secret cannot be opened. */
static int prepare_webhook(struct engine *e, struct xfer *x, int64_t now_ms)
{
	const struct store_endpoint *ep = &x->c.ep;
	char secrets[2][WH_SECRET_MAX + 1];
	const char *list[2];
	int n = 0;
	if (open_secret(e, x->ep, ep, ep->secret, false, secrets[0]) < 0)
		return -1;
	list[n++] = secrets[0];
	if (ep->prev_secret[0] && ep->prev_expires_at > now_ms &&
	    open_secret(e, x->ep, ep, ep->prev_secret, true, secrets[1]) == 0)
		list[n++] = secrets[1];
	int64_t ts = now_ms / 1000;
	size_t body_len = strlen(x->c.body);
	char sig[WH_SIGNATURES_MAX * (WH_SIGNATURE_LEN + 1) + 1];
	int rc =
	    wh_signature_header(list, n, x->c.message_id, ts, x->c.body, body_len, sig, sizeof sig);
	explicit_bzero(secrets, sizeof secrets);
	if (rc < 0)
		return -1;
	char tsbuf[24];
	snprintf(tsbuf, sizeof tsbuf, "%lld", (long long)ts);
	add_header(x, "webhook-id", x->c.message_id);
	add_header(x, "webhook-timestamp", tsbuf);
	add_header(x, "webhook-signature", sig);
	add_header(x, "Content-Type", "application/json");
	add_header(x, "User-Agent", e->user_agent);
	x->headers = curl_slist_append(x->headers, "Expect:");
	x->headers = curl_slist_append(x->headers, "Accept:");

	CURL *h = take_easy(e);
	x->easy = h;
	x->guard.allow = e->allow;
	egress_curl_post(h, ep->url, (long)e->cfg->webhooks_timeout_s * 1000,
	                 e->cfg->webhooks_ca_file, &x->guard);
	curl_easy_setopt(h, CURLOPT_POSTFIELDS, x->c.body);
	curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)body_len);
	curl_easy_setopt(h, CURLOPT_HTTPHEADER, x->headers);
	x->body = (struct engine_response){.head = x->resp, .cap = STORE_WH_RESPONSE_MAX};
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, engine_response_keep);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, &x->body);
	curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
	curl_easy_setopt(h, CURLOPT_HEADERDATA, x);
	curl_easy_setopt(h, CURLOPT_TCP_NODELAY, 1L);
	curl_easy_setopt(h, CURLOPT_PATH_AS_IS, 1L);
	return 0;
}

/* Set up a mail attempt; NULL job when it cannot be sent at all (recorded as failed). */
static void prepare_mail(struct engine *e, struct xfer *x, int64_t now_ms)
{
	if (!e->mailer || !x->c.contact_email[0])
		return;
	char *subject = NULL, *text = NULL;
	if (mail_notice_render(x->c.type, x->c.body, &subject, &text) < 0)
		return;
	struct mail_message m = {.to = x->c.contact_email,
	                         .subject = subject,
	                         .text = text,
	                         .message_id = x->c.id,
	                         .date_ms = now_ms};
	x->mail = mail_job_new(e->mailer, &m, (long)e->cfg->webhooks_timeout_s * 1000);
	free(subject);
	free(text);
	if (x->mail)
		x->easy = NULL;
}

static void finish(struct engine *e, struct xfer *x, CURLcode rc);

static void unlist(struct engine *e, struct xfer *x)
{
	if (x->act_prev)
		x->act_prev->act_next = x->act_next;
	else if (e->active == x)
		e->active = x->act_next;
	if (x->act_next)
		x->act_next->act_prev = x->act_prev;
	x->act_prev = x->act_next = NULL;
}

/* Start x now: sign and add to the multi (or record why it cannot go). */
static void start(struct engine *e, struct xfer *x)
{
	int64_t now_ms = clock_now_ms();
	x->at_ms = now_ms;
	x->start_mono = clock_mono_ms();
	if (!x->c.body) {
		/* Purged between fan-out and claim: never sign or send "", end it failed. */
		x->purged = x->not_sent = true;
		if (x->ep)
			x->ep->in_flight++;
		finish(e, x, CURLE_OK);
		return;
	}
	CURL *h;
	if (x->ep) {
		if (prepare_webhook(e, x, now_ms) < 0) {
			/* Never unsigned: a failed attempt without a request, retried as scheduled.
			 */
			log_event(LOG_ERROR, "webhook_secret_unavailable", "endpoint_id",
			          x->c.ep.id, NULL);
			x->ep->in_flight++;
			x->not_sent = true;
			finish(e, x, CURLE_OK);
			return;
		}
		h = x->easy;
		x->ep->in_flight++;
	} else {
		prepare_mail(e, x, now_ms);
		if (!x->mail) {
			x->not_sent = true;
			finish(e, x, CURLE_OK);
			return;
		}
		h = mail_job_easy(x->mail);
	}
	curl_easy_setopt(h, CURLOPT_PRIVATE, x);
	x->act_next = e->active;
	if (e->active)
		e->active->act_prev = x;
	e->active = x;
	e->in_flight++;
	metric_set(&metrics[M_IN_FLIGHT], e->in_flight);
	CURLMcode mc = curl_multi_add_handle(e->multi, h);
	if (mc != CURLM_OK)
		finish(e, x, CURLE_FAILED_INIT);
}

/* Decide and queue the record of an attempt that ended with rc. */
static void finish(struct engine *e, struct xfer *x, CURLcode rc)
{
	bool started = x->easy || x->mail;
	CURL *h = x->mail ? mail_job_easy(x->mail) : x->easy;
	long status = 0;
	if (h)
		curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
	if (started) {
		curl_multi_remove_handle(e->multi, h);
		unlist(e, x);
		e->in_flight--;
		metric_set(&metrics[M_IN_FLIGHT], e->in_flight);
	}
	if (x->ep)
		x->ep->in_flight--;
	int64_t now_ms = clock_now_ms();
	struct engine_result r = {
	    .rc = rc,
	    .status = (int)status,
	    .egress_refused = x->guard.refused,
	    .too_large = x->body.too_large,
	    .retry_after = x->retry_after[0] ? x->retry_after : NULL,
	    .mail = x->ep == NULL,
	    .not_sent = x->not_sent,
	};
	uint64_t rnd;
	crypto_random(&rnd, sizeof rnd);
	struct engine_decision d;
	engine_decide(&e->sched, x->c.attempts, &r, now_ms, rnd, &d);
	if (x->purged)
		d.next_attempt_at = -1; /* no later attempt has a body either */

	struct rec *rec = rec_new(e);
	snprintf(rec->delivery_id, sizeof rec->delivery_id, "%s", x->c.id);
	rec->at = x->at_ms ? x->at_ms : now_ms;
	rec->duration_ms = started ? clock_mono_ms() - x->start_mono : 0;
	rec->http_status = (int)status;
	rec->error = d.error;
	rec->succeeded = d.succeeded;
	rec->next_attempt_at = d.next_attempt_at;
	if (x->body.len) {
		engine_response_text(x->resp, x->body.len, rec->response, sizeof rec->response);
		rec->has_response = true;
	} else if (x->not_sent) {
		snprintf(rec->response, sizeof rec->response, "%s",
		         x->purged ? "not sent: the message was purged ([retention] webhook_days)"
		         : x->ep   ? "not sent: the endpoint's signing secret could not be opened"
		         : !e->mailer ? "not sent: mail is off ([mail] url)"
		         : !x->c.contact_email[0]
		             ? "not sent: the organization has no contact email"
		             : "not sent: no notice text for this message");
		rec->has_response = true;
	}
	const char *outcome = d.succeeded ? "succeeded" : d.error ? d.error : "not_sent";
	if (x->ep) {
		const struct store_endpoint *ep = &x->c.ep;
		snprintf(rec->endpoint_id, sizeof rec->endpoint_id, "%s", ep->id);
		count_attempt(x->not_sent, d.error);
		if (d.succeeded)
			metric_add(&metrics[M_DLV_SUCCEEDED], 1);
		else if (d.next_attempt_at < 0)
			metric_add(&metrics[M_DLV_FAILED], 1);
		if (d.gone) {
			rec->post = POST_GONE;
			x->ep->failing_done = true;
		} else if (!d.succeeded && ep->failing_since >= 0 && !x->ep->failing_done) {
			int64_t failing_ms = now_ms - ep->failing_since;
			if (failing_ms >= e->cfg->webhooks_disable_after_hours * 3600000) {
				rec->post = POST_DISABLE_FAILING;
				x->ep->failing_done = true;
			} else if (failing_ms >= e->cfg->webhooks_failing_after_hours * 3600000 &&
			           ep->failing_notified_at < 0) {
				rec->post = POST_MARK_FAILING;
				x->ep->failing_done = true;
			}
		} else if (d.succeeded) {
			x->ep->failing_done = false;
		}
		char st[16];
		snprintf(st, sizeof st, "%ld", status);
		log_event(d.succeeded ? LOG_DEBUG : LOG_INFO, "webhook_attempt", "endpoint_id",
		          ep->id, "delivery_id", x->c.id, "outcome", outcome, "#http_status", st,
		          NULL);
	} else {
		metric_add(&metrics[d.succeeded ? M_MAIL_SENT : M_MAIL_FAILED], 1);
		log_event(d.succeeded ? LOG_INFO : LOG_WARN, "mail_attempt", "delivery_id", x->c.id,
		          "org_id", x->c.org_id, "outcome", outcome, NULL);
	}
	xfer_free(x);
	if (e->n_batch >= BATCH_FLUSH_N)
		flush(e);
}

/* The first claim waiting in an endpoint's queue, taken out of it. */
static struct xfer *held_pop(struct engine *e, struct ep_state *s)
{
	struct xfer *x = s->held_head;
	s->held_head = x->next;
	if (!s->held_head)
		s->held_tail = NULL;
	s->n_held--;
	e->held--;
	x->next = NULL;
	return x;
}

/* Start what waits in an endpoint's queue while it has room and tokens. */
static void run_held(struct engine *e, struct ep_state *s, int64_t now_ms)
{
	while (s->held_head && s->in_flight < (int)e->cfg->webhooks_endpoint_concurrency &&
	       token_bucket_take(&s->tb, s->rate, now_ms))
		start(e, held_pop(e, s));
}

/* Earliest time (mono ms from now) a held claim may start; -1 when none waits for a token. */
static int64_t held_wait_ms(struct engine *e, int64_t now_ms)
{
	int64_t best = -1;
	for (int b = 0; b < EP_BUCKETS; b++)
		for (struct ep_state *s = e->eps[b]; s; s = s->next) {
			if (!s->held_head)
				continue;
			if (s->in_flight >= (int)e->cfg->webhooks_endpoint_concurrency)
				continue; /* waits for an attempt to end */
			int64_t w = token_bucket_wait_ms(&s->tb, s->rate, now_ms);
			if (best < 0 || w < best)
				best = w;
		}
	return best;
}

static void run_all_held(struct engine *e, int64_t now_ms)
{
	if (!e->held)
		return;
	for (int b = 0; b < EP_BUCKETS; b++)
		for (struct ep_state *s = e->eps[b]; s; s = s->next)
			if (s->held_head)
				run_held(e, s, now_ms);
}

/*
 * A held claim keeps its lease only so long: one that waited half the
 * lease is let go (the lease runs out and it is claimed again), so that
 * a slow-to-drain queue never outlives its lease and gets sent twice.
 */
static void drop_stale_held(struct engine *e, int64_t now_mono)
{
	int64_t max_wait = e->cfg->webhooks_lease_s * 1000 / 2;
	for (int b = 0; b < EP_BUCKETS && e->held; b++)
		for (struct ep_state *s = e->eps[b]; s; s = s->next)
			while (s->held_head && now_mono - s->held_head->claimed_mono > max_wait)
				xfer_free(held_pop(e, s));
}

/* ---------- the loop ---------- */

static const char *const mail_types[] = {"api_key.killed",
                                         "api_key.kill_lifted",
                                         "org.killed",
                                         "org.kill_lifted",
                                         "global.killed",
                                         "global.kill_lifted",
                                         "webhook_endpoint.failing",
                                         "webhook_endpoint.disabled",
                                         "usage.budget_threshold",
                                         "api_key.leak_reported",
                                         NULL};

static void fan_out(struct engine *e, int64_t now)
{
	if (now < e->next_fanout)
		return;
	int n = 0;
	int rc = store_fanout(e->st, e->mailer ? mail_types : NULL, FANOUT_MAX, &n);
	if (rc != STORE_OK) {
		e->next_fanout = now + 1000;
		return;
	}
	if (n > 0)
		metric_add(&metrics[M_FANNED_OUT], n);
	e->next_fanout = n >= FANOUT_MAX ? now : now + POLL_MS;
	if (n > 0)
		e->next_claim = now; /* new deliveries are due now */
}

static void claim(struct engine *e, int64_t now)
{
	int room = (int)e->cfg->webhooks_max_in_flight * EP_BUFFER - e->in_flight - e->held;
	if (now < e->next_claim || room <= 0 || e->n_batch >= BATCH_MAX - CLAIM_MAX)
		return;
	if (room > CLAIM_MAX)
		room = CLAIM_MAX;
	const char *skip[SKIP_MAX];
	int n_skip = 0;
	int64_t now_ms = clock_now_ms();
	/*
	 * Ask for what the known endpoints have room for, plus some for ones not
	 * seen yet: the store's cost grows with the rows it looks at.
	 */
	int cap = EP_BUFFER * (int)e->cfg->webhooks_endpoint_concurrency;
	int want = CLAIM_NEW;
	for (int b = 0; b < EP_BUCKETS; b++)
		for (struct ep_state *s = e->eps[b]; s; s = s->next) {
			if (ep_full(e, s) || token_bucket_wait_ms(&s->tb, s->rate, now_ms) > 0) {
				if (n_skip < SKIP_MAX)
					skip[n_skip++] = s->id;
			} else {
				want += cap - s->in_flight - s->n_held;
			}
		}
	if (want < room)
		room = want;
	struct store_claim *c = NULL;
	int n = 0;
	e->last_claim = now;
	int per_endpoint = EP_REFILL * (int)e->cfg->webhooks_endpoint_concurrency;
	int rc = store_claim(e->st, e->owner, now_ms, now_ms + e->cfg->webhooks_lease_s * 1000,
	                     room, per_endpoint, skip, n_skip, &c, &n);
	if (rc != STORE_OK) {
		e->next_claim = now + 1000;
		return;
	}
	e->next_claim = n >= room ? now : now + POLL_MS;
	for (int b = 0; b < EP_BUCKETS; b++)
		for (struct ep_state *s = e->eps[b]; s; s = s->next)
			s->got = 0;
	for (int i = 0; i < n; i++) {
		struct xfer *x = xcalloc(1, sizeof *x);
		x->e = e;
		x->c = c[i];
		c[i].body = NULL; /* moved */
		x->claimed_mono = now;
		if (strcmp(x->c.channel, "email") == 0) {
			start(e, x);
			continue;
		}
		struct ep_state *s = ep_get(e, x->c.ep.id);
		x->ep = s;
		s->rate = x->c.ep.rate_limit_per_second;
		if (s->held_tail)
			s->held_tail->next = x;
		else
			s->held_head = x;
		s->held_tail = x;
		s->n_held++;
		e->held++;
		s->got++;
		run_held(e, s, now_ms);
	}
	store_claims_free(c, n);
	for (int b = 0; b < EP_BUCKETS; b++)
		for (struct ep_state *s = e->eps[b]; s; s = s->next)
			s->more = s->got >= per_endpoint;
}

static void stats(struct engine *e, int64_t now)
{
	if (now < e->next_stats)
		return;
	e->next_stats = now + STATS_MS;
	int64_t pending = 0, oldest = -1;
	if (store_outbox_stats(e->st, &pending, &oldest) != STORE_OK)
		return;
	metric_set(&metrics[M_PENDING], pending);
	int64_t age = oldest >= 0 ? (clock_now_ms() - oldest) / 1000 : 0;
	metric_set(&metrics[M_OLDEST_AGE], age > 0 ? age : 0);
}

static void reap(struct engine *e)
{
	CURLMsg *m;
	int left;
	while ((m = curl_multi_info_read(e->multi, &left))) {
		if (m->msg != CURLMSG_DONE)
			continue;
		struct xfer *x = NULL;
		CURL *h = m->easy_handle;
		CURLcode rc = m->data.result;
		curl_easy_getinfo(h, CURLINFO_PRIVATE, (char **)&x);
		struct ep_state *s = x->ep;
		finish(e, x, rc);
		/*
		 * An endpoint with more due than it got and its queue running low:
		 * claim soon (not at once: one claim takes what several ends freed).
		 * Otherwise the next poll finds new work.
		 */
		if (s && s->more &&
		    s->n_held < EP_REFILL * (int)e->cfg->webhooks_endpoint_concurrency &&
		    e->next_claim > e->last_claim + CLAIM_GAP_MS)
			e->next_claim = e->last_claim + CLAIM_GAP_MS;
	}
}

static int64_t min_wait(int64_t a, int64_t b)
{
	return a < b ? a : b;
}

static void run(struct engine *e)
{
	while (!atomic_load(&e->stopping)) {
		int64_t now = clock_mono_ms();
		if (e->n_batch &&
		    (now - e->batch_since_mono >= BATCH_FLUSH_MS || e->n_batch >= BATCH_FLUSH_N) &&
		    now >= e->next_flush_retry)
			flush(e);
		fan_out(e, now);
		claim(e, now);
		run_all_held(e, clock_now_ms());
		drop_stale_held(e, now);
		stats(e, now);
		ep_sweep(e, clock_now_ms());
		int64_t wait = min_wait(e->next_fanout, e->next_claim) - now;
		if (e->n_batch)
			wait = min_wait(wait, BATCH_FLUSH_MS);
		int64_t hw = held_wait_ms(e, clock_now_ms());
		if (hw >= 0)
			wait = min_wait(wait, hw);
		if (wait < 0)
			wait = 0;
		if (wait > 1000)
			wait = 1000;
		int running = 0;
		curl_multi_poll(e->multi, NULL, 0, (int)wait, NULL);
		curl_multi_perform(e->multi, &running);
		reap(e);
	}
	/* Stopping: nothing new; what is in flight may finish for a while. */
	int64_t deadline = clock_mono_ms() + STOP_GRACE_MS;
	while (e->in_flight && clock_mono_ms() < deadline) {
		int running = 0;
		curl_multi_poll(e->multi, NULL, 0, 100, NULL);
		curl_multi_perform(e->multi, &running);
		reap(e);
	}
	flush(e);
	if (e->n_batch) /* the store is away: the leases run out and these are retried */
		log_event(LOG_WARN, "webhook_records_lost", NULL);
}

static void engine_main(struct bg_thread *t, void *arg)
{
	struct engine *e = arg;
	pthread_mutex_unlock(t->lock);
	run(e);
	pthread_mutex_lock(t->lock);
}

static void engine_interrupt(void *arg)
{
	struct engine *e = arg;
	atomic_store(&e->stopping, true);
	curl_multi_wakeup(e->multi);
}

int engine_start(const struct engine_options *o, struct engine **out, char *err, size_t cap)
{
	struct engine *e = xcalloc(1, sizeof *e);
	e->st = o->st;
	e->cfg = o->cfg;
	e->mailer = o->mailer;
	snprintf(e->owner, sizeof e->owner, "%s", o->owner);
	snprintf(e->user_agent, sizeof e->user_agent, "Portcullis-Webhooks/%s", PORTCULLIS_VERSION);
	char msg[256];
	/* delivery_config_check (worker.c) refused these already; the parsed forms are kept here.
	 */
	if (wh_schedule_parse(o->cfg->webhooks_retry_schedule, &e->sched, msg, sizeof msg) < 0 ||
	    egress_ranges_parse(o->cfg->webhooks_allow_ranges, &e->allow, msg, sizeof msg) < 0) {
		snprintf(err, cap, "[webhooks] %s", msg); /* msg names the setting */
		goto fail;
	}
	if (keyring_file_open(&e->keys, o->key_file, true, msg, sizeof msg) < 0)
		log_event(LOG_WARN, "secrets_key_file", "error", msg, "effect",
		          "webhook deliveries wait until the private key file can be read", NULL);
	e->batch = xcalloc(BATCH_MAX, sizeof *e->batch);
	e->multi = curl_multi_init();
	if (!e->multi)
		fatal("curl_multi_init failed");
	curl_multi_setopt(e->multi, CURLMOPT_MAXCONNECTS, (long)o->cfg->webhooks_max_in_flight);
	metric_set(&metrics[M_IN_FLIGHT], 0);
	if (bg_thread_start(&e->t, "delivery", NULL, engine_main, e) < 0) {
		snprintf(err, cap, "cannot start the delivery thread");
		goto fail;
	}
	pthread_mutex_lock(e->t.lock);
	bg_thread_set_interrupt(&e->t, engine_interrupt);
	pthread_mutex_unlock(e->t.lock);
	*out = e;
	return 0;
fail:
	egress_ranges_free(e->allow);
	keyring_file_close(&e->keys);
	if (e->multi)
		curl_multi_cleanup(e->multi);
	free(e->batch);
	free(e);
	return -1;
}

void engine_stop(struct engine *e)
{
	if (!e)
		return;
	/* The interrupt is set right after the start: a stop before that still ends the loop. */
	atomic_store(&e->stopping, true);
	curl_multi_wakeup(e->multi);
	bg_thread_stop(&e->t);
	/* Abandon what did not finish in the grace, and every claim still held. */
	while (e->active) {
		struct xfer *x = e->active;
		e->active = x->act_next;
		curl_multi_remove_handle(e->multi, x->mail ? mail_job_easy(x->mail) : x->easy);
		xfer_free(x);
	}
	for (int b = 0; b < EP_BUCKETS; b++)
		while (e->eps[b]) {
			struct ep_state *s = e->eps[b];
			e->eps[b] = s->next;
			while (s->held_head) {
				struct xfer *x = s->held_head;
				s->held_head = x->next;
				xfer_free(x);
			}
			ep_free(s);
		}
	while (e->n_idle)
		curl_easy_cleanup(e->idle[--e->n_idle]);
	if (store_claim_release_all(e->st, e->owner) != STORE_OK)
		log_event(LOG_WARN, "store_error", "op", "webhook_release", NULL);
	metric_set(&metrics[M_IN_FLIGHT], 0);
	curl_multi_cleanup(e->multi);
	egress_ranges_free(e->allow);
	keyring_file_close(&e->keys);
	free(e->batch);
	free(e);
}
