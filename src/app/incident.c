/*
 * incident.c: the incident report of one key (incident.h). The report is
 * built once, as JSON, from the store's per-key reads (store_incident.h: the
 * usage rollups and the audit log by key, never a scan of raw request-log
 * rows), the kill switches, the webhook outbox and the key list; the text
 * form is rendered from that JSON, so the CLI's text and JSON and the API's
 * answer say the same thing.
 */
#include "app/incident.h"

#include "auth/keys.h"
#include "core/alloc.h"
#include "core/clock.h"
#include "core/json.h"
#include "core/str.h"
#include "store/store_incident.h"
#include "store/store_webhooks.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DAY_MS  ((int64_t)86400 * 1000)
#define HOUR_MS ((int64_t)3600 * 1000)

/* How many rows each section lists at most. */
#define LIMIT_DIM      50
#define LIMIT_REFUSED  2000
#define LIMIT_HISTORY  500
#define LIMIT_MESSAGES 100
#define LIMIT_SIBLINGS 200

int incident_window(struct incident_query *q, char *err, size_t cap)
{
	if (q->until < 0)
		q->until = q->now;
	if (q->since < 0)
		q->since = q->until - INCIDENT_DEFAULT_DAYS * DAY_MS;
	if (q->since >= q->until) {
		snprintf(err, cap, "since must be before until.");
		return -1;
	}
	if (q->until - q->since > INCIDENT_MAX_DAYS * DAY_MS) {
		snprintf(err, cap, "The window may span at most %d days.", INCIDENT_MAX_DAYS);
		return -1;
	}
	return 0;
}

bool incident_first_seen_in(int64_t first_seen, int64_t since, int64_t until)
{
	return first_seen >= 0 && first_seen >= since && first_seen < until;
}

/* ---------- building ---------- */

static json_t *kill_json(const struct store_kill *k)
{
	if (!k)
		return json_null();
	return json_pack("{s:s, s:o, s:o, s:o}", "set_by", k->set_by, "actor_id",
	                 json_str_or_null(k->actor_id), "reason", json_str_or_null(k->reason), "at",
	                 json_time(k->engaged_at));
}

/* A kill switch, or NULL when not engaged (*rc set on a store error). */
static const struct store_kill *kill_of(struct store *st, const char *scope, const char *id,
                                        struct store_kill *buf, int *rc)
{
	int r = store_kill_get(st, scope, id, buf);
	if (r == STORE_OK)
		return buf;
	if (r != STORE_ENOTFOUND && *rc == STORE_OK)
		*rc = r;
	return NULL;
}

static void history_add(void *ctx, const struct store_audit_read *ev)
{
	json_t *d = ev->details ? json_loads(ev->details, 0, NULL) : NULL;
	json_array_append_new(
	    ctx, json_pack("{s:o, s:s, s:{s:s, s:o}, s:o, s:o}", "at", json_time(ev->at), "action",
	                   ev->action, "actor", "type", ev->actor_type, "id",
	                   json_str_or_null(ev->actor_id), "request_id",
	                   json_str_or_null(ev->request_id), "details", d ? d : json_null()));
}

static json_t *dim_json(const struct incident_count *c, int n, const char *name, bool seen,
                        int64_t since, int64_t until)
{
	json_t *a = json_array();
	for (int i = 0; i < n; i++) {
		json_t *o = json_pack("{s:o, s:I}", name, json_str_or_null(c[i].value), "requests",
		                      (json_int_t)c[i].requests);
		if (strcmp(name, "user_agent") == 0) {
			json_object_set_new(o, "refused", json_integer(c[i].refused));
		} else {
			json_object_set_new(o, "errors_4xx", json_integer(c[i].errors_4xx));
			json_object_set_new(o, "errors_5xx", json_integer(c[i].errors_5xx));
		}
		if (seen) {
			json_object_set_new(o, "first_seen", json_time(c[i].first_seen));
			json_object_set_new(o, "last_seen", json_time(c[i].last_seen));
			json_object_set_new(
			    o, "new",
			    json_boolean(incident_first_seen_in(c[i].first_seen, since, until)));
		}
		json_array_append_new(a, o);
	}
	return a;
}

/* The status section: its values are HTTP statuses, numbers in JSON. */
static void status_numbers(json_t *a)
{
	size_t i;
	json_t *o;
	json_array_foreach(a, i, o)
	{
		const char *s = json_string_value(json_object_get(o, "status"));
		int64_t v = 0;
		if (s)
			parse_int64_z(s, 0, 999, &v);
		json_object_set_new(o, "status", json_integer(v));
	}
}

struct traffic {
	int64_t requests, e4, e5, refused;
};

static int traffic_json(struct store *st, const char *id, int64_t since, int64_t until,
                        json_t *report)
{
	struct incident_count *c = NULL;
	int n = 0;
	struct traffic t = {0};
	int rc = store_incident_hours(st, id, since, until, &c, &n);
	json_t *hours = json_array(), *traffic = json_object(), *refused = json_object();
	for (int i = 0; rc == STORE_OK && i < n; i++) {
		json_array_append_new(hours, json_pack("{s:o, s:I, s:I, s:I, s:I}", "hour",
		                                       json_time(c[i].bucket), "requests",
		                                       (json_int_t)c[i].requests, "errors_4xx",
		                                       (json_int_t)c[i].errors_4xx, "errors_5xx",
		                                       (json_int_t)c[i].errors_5xx, "refused",
		                                       (json_int_t)c[i].refused));
		t.requests += c[i].requests;
		t.e4 += c[i].errors_4xx;
		t.e5 += c[i].errors_5xx;
		t.refused += c[i].refused;
	}
	free(c);
	c = NULL;
	json_object_set_new(traffic, "requests", json_integer(t.requests));
	json_object_set_new(traffic, "errors_4xx", json_integer(t.e4));
	json_object_set_new(traffic, "errors_5xx", json_integer(t.e5));
	json_object_set_new(traffic, "by_hour", hours);
	static const struct {
		enum incident_dim dim;
		const char *member, *name;
		bool seen;
	} dims[] = {
	    {INCIDENT_BY_ROUTE, "by_route", "route", false},
	    {INCIDENT_BY_STATUS, "by_status", "status", false},
	    {INCIDENT_BY_REGION, "by_region", "region", true},
	    {INCIDENT_BY_AGENT, "by_user_agent", "user_agent", true},
	};
	for (size_t d = 0; rc == STORE_OK && d < sizeof dims / sizeof dims[0]; d++) {
		rc = store_incident_by(st, id, dims[d].dim, since, until, LIMIT_DIM, &c, &n);
		if (rc == STORE_OK) {
			json_t *a = dim_json(c, n, dims[d].name, dims[d].seen, since, until);
			if (dims[d].dim == INCIDENT_BY_STATUS)
				status_numbers(a);
			json_object_set_new(traffic, dims[d].member, a);
		}
		free(c);
		c = NULL;
	}
	json_object_set_new(report, "traffic", traffic);

	/* Refused attempts that named the key: by hour, region and reason. */
	json_t *rows = json_array();
	if (rc == STORE_OK)
		rc = store_incident_refused(st, id, since, until, LIMIT_REFUSED, &c, &n);
	for (int i = 0; rc == STORE_OK && i < n; i++)
		json_array_append_new(
		    rows, json_pack("{s:o, s:o, s:s, s:I}", "hour", json_time(c[i].bucket),
		                    "region", json_str_or_null(c[i].value), "reason", c[i].refusal,
		                    "attempts", (json_int_t)c[i].refused));
	free(c);
	json_object_set_new(refused, "attempts", json_integer(t.refused));
	json_object_set_new(refused, "by_hour_region", rows);
	json_object_set_new(report, "refused", refused);
	return rc;
}

struct messages_ctx {
	json_t *list;
	const char *project_id; /* "" : every message of the organisation */
};

static void message_add(void *ctx, const struct store_message *m,
                        const struct store_delivery_read *d, int n)
{
	struct messages_ctx *mc = ctx;
	if (mc->project_id[0] && m->project_id[0] && strcmp(m->project_id, mc->project_id) != 0)
		return; /* another project's */
	json_t *o =
	    json_pack("{s:s, s:s, s:o, s:o}", "id", m->id, "type", m->type, "project_id",
	              json_str_or_null(m->project_id), "created_at", json_time(m->created_at));
	json_t *dl = json_array();
	for (int i = 0; i < n; i++)
		json_array_append_new(dl, json_pack("{s:o, s:s, s:s, s:I}", "endpoint_id",
		                                    json_str_or_null(d[i].endpoint_id), "channel",
		                                    d[i].channel, "status", d[i].status, "attempts",
		                                    (json_int_t)d[i].attempts));
	json_object_set_new(o, "deliveries", dl);
	json_array_append_new(mc->list, o);
}

static json_t *sibling_json(const struct store_key *k, const char *status)
{
	return json_pack("{s:s, s:s, s:o, s:s, s:s, s:s, s:o, s:o}", "id", k->id, "name", k->name,
	                 "project_id", json_str_or_null(k->project_id), "env", k->env, "start",
	                 k->start, "status", status, "created_at", json_time(k->created_at),
	                 "last_used_at", json_time(k->last_used_at));
}

/* The other keys of the organisation (root keys for a root key): same project first. */
static int siblings_json(struct store *st, const struct store_key *key, int64_t now, json_t *report)
{
	struct store_key *keys = NULL;
	int n = 0;
	/* The engaged switches are few: one read for all, not one per key. */
	struct store_kill *kills = NULL;
	int nk = 0;
	int rc = store_kill_list(st, &kills, &nk);
	if (rc == STORE_OK)
		rc = store_key_list(st, key->org_id, NULL, NULL, LIMIT_SIBLINGS, &keys, &n);
	json_t *same = json_array(), *org = json_array();
	for (int i = 0; rc == STORE_OK && i < n; i++) {
		if (strcmp(keys[i].id, key->id) == 0)
			continue;
		bool killed = false;
		for (int j = 0; j < nk; j++)
			killed |= strcmp(kills[j].scope, "key") == 0 &&
			          strcmp(kills[j].target_id, keys[i].id) == 0;
		json_t *o = sibling_json(&keys[i], keys_status(&keys[i], killed, now));
		bool same_project =
		    key->project_id[0] && strcmp(keys[i].project_id, key->project_id) == 0;
		json_array_append_new(same_project ? same : org, o);
	}
	free(keys);
	free(kills);
	json_object_set_new(report, "sibling_keys",
	                    json_pack("{s:o, s:o, s:b}", "project", same, "organization", org,
	                              "truncated", n == LIMIT_SIBLINGS));
	return rc;
}

/* One recommended step: what, whether the state shows it done, and how. */
static json_t *step(int n, const char *action, const char *title, bool done, const char *cli,
                    const char *http, json_t *body, const char *note)
{
	return json_pack("{s:i, s:s, s:s, s:b, s:o, s:s, s:o, s:s}", "step", n, "action", action,
	                 "title", title, "done", done, "cli", json_str_or_null(cli), "http", http,
	                 "body", body ? body : json_null(), "note", note);
}

static json_t *next_steps(const struct store_key *k, const char *status, int64_t now)
{
	char cli[256], http[256], since[32], note[512];
	bool root = !k->org_id[0];
	bool killed = strcmp(status, "killed") == 0, revoked = strcmp(status, "revoked") == 0;
	clock_format_rfc3339(now - now % 1000, since, sizeof since);
	memcpy(since + 19, "Z", 2); /* whole seconds: "2026-01-02T03:04:05Z" */
	json_t *steps = json_array();

	snprintf(cli, sizeof cli, "portcullis kill key %s --reason \"suspected leak\"", k->id);
	snprintf(http, sizeof http, "POST /v1/api-keys/%s/kill", k->id);
	json_array_append_new(
	    steps, step(1, "kill", "Kill the exposed key now", killed || revoked, cli, http,
	                json_pack("{s:s}", "reason", "suspected leak"),
	                "Every node refuses the key within about a second; lifting it later "
	                "(DELETE on the same path, or portcullis unkill key) restores it."));

	json_t *scopes = json_array();
	for (const char *p = k->scopes; *p;) {
		size_t len = strcspn(p, " ");
		if (len)
			json_array_append_new(scopes, json_stringn(p, len));
		p += len + (p[len] == ' ');
	}
	char name[STORE_NAME_MAX + 16];
	snprintf(name, sizeof name, "%.*s (replacement)", STORE_NAME_MAX, k->name);
	if (root) {
		json_decref(scopes);
		json_array_append_new(
		    steps,
		    step(2, "replace", "Create a replacement key", false,
		         "portcullis root-key create", "(none: operator keys are made by the CLI)",
		         NULL, "The new secret is shown once; store it in the secret manager."));
	} else {
		snprintf(http, sizeof http, "POST /v1/orgs/%s/api-keys", k->org_id);
		json_t *body =
		    json_pack("{s:s, s:s, s:o}", "name", name, "env", k->env, "scopes", scopes);
		if (k->project_id[0])
			json_object_set_new(body, "project_id", json_string(k->project_id));
		json_array_append_new(
		    steps, step(2, "replace", "Create a replacement key", false, NULL, http, body,
		                "With the same project, env and scopes (or fewer). An organisation "
		                "key with keys:write may use POST /v1/api-keys with the same body. "
		                "The new secret is shown once."));
	}

	json_array_append_new(
	    steps, step(3, "update", "Update the integration", false, NULL,
	                "(in the integration's own configuration)", NULL,
	                "Put the replacement's secret where this key was used: the user agents "
	                "and regions above show which clients and places to change."));

	snprintf(http, sizeof http, "GET /v1/usage?key_id=%s&granularity=hour&since=%s", k->id,
	         since);
	if (k->project_id[0])
		snprintf(note, sizeof note,
		         "The exposed key should show no requests from now on, and the "
		         "replacement the traffic: GET /v1/usage?project_id=%s&group_by=key&"
		         "granularity=hour&since=%s. Refused attempts with the old key are listed "
		         "by GET /v1/requests?key_id=%s&since=%s.",
		         k->project_id, since, k->id, since);
	else
		snprintf(note, sizeof note,
		         "The exposed key should show no requests from now on. Refused attempts "
		         "with the old key are listed by GET /v1/requests?key_id=%s&since=%s.",
		         k->id, since);
	snprintf(cli, sizeof cli, "portcullis incident report --key %s --since %s", k->id, since);
	json_array_append_new(
	    steps, step(4, "verify", "Verify that traffic moved", false, cli, http, NULL, note));

	snprintf(http, sizeof http, "DELETE /v1/api-keys/%s", k->id);
	json_array_append_new(
	    steps, step(5, "revoke", "Revoke the exposed key", revoked, NULL, http, NULL,
	                "Once its traffic is gone: revocation is permanent (a kill can be "
	                "lifted, a revocation cannot)."));
	return steps;
}

int incident_report(struct store *st, const struct incident_query *q, json_t **out)
{
	*out = NULL;
	int64_t since = q->since, until = q->until;
	if (since < 0 || until <= since || until - since > INCIDENT_MAX_DAYS * DAY_MS)
		return STORE_ERROR;
	struct store_key k;
	int rc = store_key_get(st, q->key_id, &k);
	if (rc == STORE_OK && q->org_id && strcmp(k.org_id, q->org_id) != 0)
		rc = STORE_ENOTFOUND;
	if (rc != STORE_OK)
		return rc;
	/* The rollups count whole hours: say which hours the report covers. */
	since = incident_hour_floor(since);
	until = incident_hour_ceil(until);

	struct store_kill kk, ok, gk;
	const struct store_kill *key_kill = kill_of(st, "key", k.id, &kk, &rc);
	const struct store_kill *org_kill =
	    k.org_id[0] ? kill_of(st, "organization", k.org_id, &ok, &rc) : NULL;
	const struct store_kill *global_kill = kill_of(st, "global", "", &gk, &rc);
	const char *status = keys_status(&k, key_kill != NULL, q->now);

	json_t *r = json_object();
	json_t *key = keys_to_json(&k, key_kill);
	json_object_set_new(key, "status", json_string(status));
	json_object_set_new(r, "key", key);
	json_t *org = json_null(), *project = json_null();
	if (rc == STORE_OK && k.org_id[0]) {
		struct store_org o;
		rc = store_org_get(st, k.org_id, &o);
		if (rc == STORE_OK)
			org = json_pack("{s:s, s:s}", "id", o.id, "name", o.name);
	}
	if (rc == STORE_OK && k.project_id[0]) {
		struct store_project p;
		rc = store_project_get(st, k.org_id, k.project_id, &p);
		if (rc == STORE_OK)
			project = json_pack("{s:s, s:s}", "id", p.id, "name", p.name);
	}
	json_object_set_new(r, "organization", org);
	json_object_set_new(r, "project", project);
	json_object_set_new(r, "kill_switches",
	                    json_pack("{s:o, s:o, s:o}", "key", kill_json(key_kill), "organization",
	                              kill_json(org_kill), "global", kill_json(global_kill)));
	json_object_set_new(
	    r, "window",
	    json_pack("{s:o, s:o}", "since", json_time(since), "until", json_time(until)));
	json_object_set_new(r, "generated_at", json_time(q->now));

	json_t *history = json_array();
	if (rc == STORE_OK)
		rc = store_incident_history(st, k.id, LIMIT_HISTORY, history_add, history);
	json_object_set_new(r, "history", history);
	if (rc == STORE_OK)
		rc = traffic_json(st, k.id, since, until, r);

	struct messages_ctx mc = {json_array(), k.project_id};
	if (rc == STORE_OK && k.org_id[0]) {
		struct store_message_filter f = {
		    .org_id = k.org_id, .since = since, .until = until, .limit = LIMIT_MESSAGES};
		rc = store_message_list(st, &f, message_add, &mc);
	}
	json_object_set_new(r, "webhook_messages", mc.list);
	if (rc == STORE_OK)
		rc = siblings_json(st, &k, q->now, r);
	json_object_set_new(r, "next_steps", next_steps(&k, status, q->now));
	if (rc != STORE_OK) {
		json_decref(r);
		return rc;
	}
	*out = r;
	return STORE_OK;
}

/* ---------- text ---------- */

static const char *jstr(const json_t *o, const char *name)
{
	const char *s = json_string_value(json_object_get(o, name));
	return s ? s : "";
}

static int64_t jint(const json_t *o, const char *name)
{
	return (int64_t)json_integer_value(json_object_get(o, name));
}

/* "2026-01-02 03:04" of an RFC 3339 time member, "-" when null. */
static const char *jtime(const json_t *o, const char *name, char out[20])
{
	const char *s = jstr(o, name);
	if (strlen(s) < 16)
		return "-";
	memcpy(out, s, 16);
	out[10] = ' ';
	out[16] = '\0';
	return out;
}

/* Display columns of UTF-8 text: one per character (the report's are narrow). */
static size_t columns(const char *s, size_t len)
{
	size_t n = 0;
	for (size_t i = 0; i < len; i++)
		n += ((unsigned char)s[i] & 0xC0) != 0x80;
	return n;
}

/* The bytes of s that fit in cols display columns, never splitting a character. */
static size_t fit(const char *s, size_t cols)
{
	size_t i = 0, n = 0;
	for (; s[i]; i++) {
		if (((unsigned char)s[i] & 0xC0) != 0x80 && n++ == cols)
			break;
	}
	return i;
}

/*
 * Append one line: control characters shown as '?', cut to the report's
 * width (so no line is ever wider, whatever a user agent holds).
 */
static void line(struct buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void line(struct buf *b, const char *fmt, ...)
{
	char l[1024];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(l, sizeof l, fmt, ap);
	va_end(ap);
	for (char *p = l; *p; p++)
		if ((unsigned char)*p < 0x20 || *p == 0x7f)
			*p = '?';
	size_t n = fit(l, INCIDENT_TEXT_COLUMNS);
	while (n > 0 && l[n - 1] == ' ')
		n--;
	buf_append(b, l, n);
	buf_append(b, "\n", 1);
}

/*
 * Text wrapped at the report's width after indent spaces: breaks after a
 * space, after a ',' (a JSON body) or before a '&' (a query string), continuation lines indented by
 * more; a word longer than a line is cut by line().
 */
static void wrap(struct buf *b, int indent, int more, const char *text)
{
	int ind = indent;
	const char *p = text;
	while (*p) {
		size_t room = (size_t)(INCIDENT_TEXT_COLUMNS - ind);
		size_t n = strlen(p);
		if (columns(p, n) > room) {
			size_t lim = fit(p, room), cut = 0;
			for (size_t i = 1; i < lim; i++)
				if (p[i] == ' ' || p[i] == '&' || p[i - 1] == ',')
					cut = i;
			n = cut ? cut : lim;
		}
		line(b, "%*s%.*s", ind, "", (int)n, p);
		p += n;
		while (*p == ' ')
			p++;
		ind = indent + more;
	}
}

/* 24 hourly cells: '.' for none, else one of eight blocks scaled to max. */
static void bars(char *out, size_t cap, const int64_t *v, int64_t max)
{
	static const char *const block[] = {"\u2581", "\u2582", "\u2583", "\u2584",
	                                    "\u2585", "\u2586", "\u2587", "\u2588"};
	size_t o = 0;
	out[0] = '\0';
	for (int h = 0; h < 24; h++) {
		const char *c = ".";
		if (v[h] > 0 && max > 0)
			c = block[(v[h] * 8 + max - 1) / max - 1 > 7
			              ? 7
			              : (v[h] * 8 + max - 1) / max - 1];
		size_t len = strlen(c);
		if (o + len + 1 > cap)
			break;
		memcpy(out + o, c, len + 1);
		o += len;
	}
}

static void hourly_chart(struct buf *b, const json_t *r)
{
	const json_t *w = json_object_get(r, "window");
	const json_t *hours = json_object_get(json_object_get(r, "traffic"), "by_hour");
	int64_t since, until;
	if (clock_parse_rfc3339(jstr(w, "since"), &since) < 0 ||
	    clock_parse_rfc3339(jstr(w, "until"), &until) < 0 || until <= since)
		return;
	int64_t d0 = since - since % DAY_MS, d1 = (until - 1) - (until - 1) % DAY_MS;
	size_t nd = (size_t)((d1 - d0) / DAY_MS + 1);
	int64_t *req = xcalloc(nd * 24, sizeof *req), *ref = xcalloc(nd * 24, sizeof *ref);
	int64_t max_req = 0, max_ref = 0;
	size_t i;
	const json_t *h;
	json_array_foreach(hours, i, h)
	{
		int64_t at;
		if (clock_parse_rfc3339(jstr(h, "hour"), &at) < 0 || at < d0 ||
		    (size_t)((at - d0) / HOUR_MS) >= nd * 24)
			continue;
		size_t k = (size_t)((at - d0) / HOUR_MS);
		req[k] = jint(h, "requests");
		ref[k] = jint(h, "refused");
		max_req = req[k] > max_req ? req[k] : max_req;
		max_ref = ref[k] > max_ref ? ref[k] : max_ref;
	}
	line(b,
	     "  Per hour (UTC), each bar scaled to the busiest hour: %lld requests, %lld "
	     "refused.",
	     (long long)max_req, (long long)max_ref);
	line(b, "  day   %-24s %8s  %-24s %7s", "00    06    12    18", "requests",
	     "00    06    12    18", "refused");
	int quiet = 0;
	for (size_t d = 0; d < nd; d++) {
		int64_t sr = 0, sf = 0;
		for (int k = 0; k < 24; k++) {
			sr += req[d * 24 + (size_t)k];
			sf += ref[d * 24 + (size_t)k];
		}
		if (sr == 0 && sf == 0) {
			quiet++;
			continue;
		}
		char day[32], br[128], bf[128];
		clock_format_rfc3339(d0 + (int64_t)d * DAY_MS, day, sizeof day);
		bars(br, sizeof br, req + d * 24, max_req);
		bars(bf, sizeof bf, ref + d * 24, max_ref);
		line(b, "  %.5s %s %8lld  %s %7lld", day + 5, br, (long long)sr, bf, (long long)sf);
	}
	if (quiet)
		line(b, "  (%d day(s) of the window without any traffic not shown)", quiet);
	free(req);
	free(ref);
}

static void dim_table(struct buf *b, const json_t *traffic, const char *member, const char *name,
                      const char *title)
{
	const json_t *a = json_object_get(traffic, member);
	bool seen = strcmp(name, "region") == 0 || strcmp(name, "user_agent") == 0;
	bool ua = strcmp(name, "user_agent") == 0;
	line(b, "%s", "");
	line(b, "  %s%s", title, seen ? "  (NEW: first seen for this key inside the window)" : "");
	if (json_array_size(a) == 0) {
		line(b, "    (none)");
		return;
	}
	if (ua)
		line(b, "    %9s %7s  %-16s %-3s  %s", "requests", "refused", "first seen", "",
		     "user agent");
	else if (seen)
		line(b, "    %-8s %9s %6s %6s  %-16s  %-16s", "region", "requests", "4xx", "5xx",
		     "first seen", "last seen");
	else
		line(b, "    %-46s %9s %6s %6s", name, "requests", "4xx", "5xx");
	size_t i;
	const json_t *o;
	json_array_foreach(a, i, o)
	{
		char v[INCIDENT_VALUE_MAX + 1], t1[20], t2[20];
		const json_t *val = json_object_get(o, name);
		if (json_is_integer(val))
			snprintf(v, sizeof v, "%lld", (long long)json_integer_value(val));
		else
			snprintf(v, sizeof v, "%s",
			         json_is_string(val) ? json_string_value(val) : "(none)");
		const char *flag = json_is_true(json_object_get(o, "new")) ? "NEW" : "";
		if (ua)
			line(b, "    %9lld %7lld  %-16s %-3s  %s", (long long)jint(o, "requests"),
			     (long long)jint(o, "refused"), jtime(o, "first_seen", t1), flag, v);
		else if (seen)
			line(b, "    %-8s %9lld %6lld %6lld  %-16s  %-16s  %s", v,
			     (long long)jint(o, "requests"), (long long)jint(o, "errors_4xx"),
			     (long long)jint(o, "errors_5xx"), jtime(o, "first_seen", t1),
			     jtime(o, "last_seen", t2), flag);
		else
			line(b, "    %-46.*s %9lld %6lld %6lld", (int)fit(v, 46), v,
			     (long long)jint(o, "requests"), (long long)jint(o, "errors_4xx"),
			     (long long)jint(o, "errors_5xx"));
	}
}

static void key_section(struct buf *b, const json_t *r)
{
	const json_t *k = json_object_get(r, "key"), *org = json_object_get(r, "organization");
	const json_t *proj = json_object_get(r, "project"),
	             *ks = json_object_get(r, "kill_switches");
	char t[20];
	line(b, "KEY");
	line(b, "  %-13s %s", "name", jstr(k, "name"));
	if (json_is_object(org))
		line(b, "  %-13s %s (%s)", "organization", jstr(org, "id"), jstr(org, "name"));
	else
		line(b, "  %-13s %s", "organization", "none (an operator key)");
	if (json_is_object(proj))
		line(b, "  %-13s %s (%s)", "project", jstr(proj, "id"), jstr(proj, "name"));
	else
		line(b, "  %-13s %s", "project", "none (an organisation-wide key)");
	line(b, "  %-13s %s", "env", jstr(k, "env"));
	char scopes[512] = "";
	size_t i;
	const json_t *s;
	json_array_foreach(json_object_get(k, "scopes"), i, s)
	{
		size_t n = strlen(scopes);
		snprintf(scopes + n, sizeof scopes - n, "%s%s", n ? " " : "", json_string_value(s));
	}
	line(b, "  %-13s %s", "scopes", scopes);
	line(b, "  %-13s %s", "created", jtime(k, "created_at", t));
	line(b, "  %-13s %s", "last used",
	     json_is_string(json_object_get(k, "last_used_at")) ? jtime(k, "last_used_at", t)
	                                                        : "never");
	if (json_is_string(json_object_get(k, "expires_at")))
		line(b, "  %-13s %s", "expires", jtime(k, "expires_at", t));
	char st[16];
	snprintf(st, sizeof st, "%s", jstr(k, "status"));
	for (char *p = st; *p; p++)
		*p = (char)(*p >= 'a' && *p <= 'z' ? *p - 32 : *p);
	line(b, "  %-13s %s", "status", st);
	if (json_is_string(json_object_get(k, "revoked_at")))
		line(b, "  %-13s %s", "revoked", jtime(k, "revoked_at", t));
	static const char *const kinds[] = {"key", "organization", "global"};
	static const char *const labels[] = {"kill (key)", "kill (org)", "kill (global)"};
	for (int j = 0; j < 3; j++) {
		const json_t *ksw = json_object_get(ks, kinds[j]);
		const char *label = labels[j];
		if (!json_is_object(ksw))
			line(b, "  %-13s %s", label, "not engaged");
		else
			line(b, "  %-13s ENGAGED %s by %s: %s", label, jtime(ksw, "at", t),
			     jstr(ksw, "set_by"),
			     json_is_string(json_object_get(ksw, "reason")) ? jstr(ksw, "reason")
			                                                    : "(no reason)");
	}
}

static void history_section(struct buf *b, const json_t *r)
{
	const json_t *h = json_object_get(r, "history");
	line(b, "%s", "");
	line(b, "HISTORY (audit log: every event on this key)");
	if (json_array_size(h) == 0)
		line(b, "  (none)");
	size_t i;
	const json_t *e;
	json_array_foreach(h, i, e)
	{
		char t[20];
		const json_t *actor = json_object_get(e, "actor");
		line(b, "  %-16s  %-24s %s %s", jtime(e, "at", t), jstr(e, "action"),
		     jstr(actor, "type"), jstr(actor, "id"));
	}
}

static void refused_section(struct buf *b, const json_t *r)
{
	const json_t *rf = json_object_get(r, "refused"),
	             *a = json_object_get(rf, "by_hour_region");
	line(b, "%s", "");
	line(b, "REFUSED ATTEMPTS naming this key: %lld", (long long)jint(rf, "attempts"));
	if (json_array_size(a) == 0)
		return;
	line(b, "  %-16s  %-6s  %-14s %8s", "hour", "region", "reason", "attempts");
	size_t i;
	const json_t *o;
	json_array_foreach(a, i, o)
	{
		if (i == 60) {
			line(b, "  ... %zu more row(s) in the JSON report", json_array_size(a) - i);
			break;
		}
		char t[20];
		const char *region = jstr(o, "region");
		line(b, "  %-16s  %-6s  %-14s %8lld", jtime(o, "hour", t), region[0] ? region : "-",
		     jstr(o, "reason"), (long long)jint(o, "attempts"));
	}
}

static void messages_section(struct buf *b, const json_t *r)
{
	const json_t *m = json_object_get(r, "webhook_messages");
	line(b, "%s", "");
	line(b, "WEBHOOK MESSAGES to the organisation or project in the window: %zu",
	     json_array_size(m));
	if (json_array_size(m) == 0)
		return;
	line(b, "  %-16s  %-30s %s", "created", "type", "deliveries");
	size_t i;
	const json_t *o;
	json_array_foreach(m, i, o)
	{
		int64_t ok = 0, failed = 0, pending = 0;
		size_t j;
		const json_t *d;
		json_array_foreach(json_object_get(o, "deliveries"), j, d)
		{
			const char *s = jstr(d, "status");
			ok += strcmp(s, "succeeded") == 0;
			failed += strcmp(s, "failed") == 0;
			pending += strcmp(s, "pending") == 0;
		}
		char t[20];
		line(b, "  %-16s  %-30s %lld ok, %lld failed, %lld pending",
		     jtime(o, "created_at", t), jstr(o, "type"), (long long)ok, (long long)failed,
		     (long long)pending);
	}
}

static void siblings_table(struct buf *b, const json_t *a, const char *title)
{
	line(b, "  %s: %zu", title, json_array_size(a));
	if (json_array_size(a) == 0)
		return;
	line(b, "    %-26s  %-4s  %-7s  %-16s  %s", "id", "env", "status", "last used", "name");
	size_t i;
	const json_t *o;
	json_array_foreach(a, i, o)
	{
		char t[20];
		line(b, "    %-26s  %-4s  %-7s  %-16s  %s", jstr(o, "id"), jstr(o, "env"),
		     jstr(o, "status"), jtime(o, "last_used_at", t), jstr(o, "name"));
	}
}

static void steps_section(struct buf *b, const json_t *r)
{
	line(b, "%s", "");
	line(b, "NEXT STEPS, in order");
	size_t i;
	const json_t *s;
	json_array_foreach(json_object_get(r, "next_steps"), i, s)
	{
		line(b, "  %lld. %-60s%s", (long long)jint(s, "step"), jstr(s, "title"),
		     json_is_true(json_object_get(s, "done")) ? "[done]" : "");
		if (json_is_string(json_object_get(s, "cli"))) {
			char cmd[512];
			snprintf(cmd, sizeof cmd, "$ %s", jstr(s, "cli"));
			wrap(b, 5, 4, cmd);
		}
		const json_t *body = json_object_get(s, "body");
		char http[1024];
		char *bt = json_is_object(body) ? json_dumps(body, JSON_COMPACT) : NULL;
		snprintf(http, sizeof http, "%s%s%s", jstr(s, "http"), bt ? " " : "", bt ? bt : "");
		free(bt);
		wrap(b, 5, 4, http);
		wrap(b, 5, 0, jstr(s, "note"));
	}
}

char *incident_render_text(const json_t *r)
{
	struct buf b;
	buf_init(&b, 4 << 20);
	const json_t *k = json_object_get(r, "key"), *w = json_object_get(r, "window");
	const json_t *tr = json_object_get(r, "traffic");
	char t1[20], t2[20], t3[20];
	line(&b, "INCIDENT REPORT  key %s (%s...)", jstr(k, "id"), jstr(k, "start"));
	line(&b, "window %s to %s UTC, generated %s", jtime(w, "since", t1), jtime(w, "until", t2),
	     jtime(r, "generated_at", t3));
	line(&b, "%s", "");
	key_section(&b, r);
	history_section(&b, r);
	line(&b, "%s", "");
	line(&b, "TRAFFIC  %lld requests (%lld 4xx, %lld 5xx), %lld refused attempts",
	     (long long)jint(tr, "requests"), (long long)jint(tr, "errors_4xx"),
	     (long long)jint(tr, "errors_5xx"),
	     (long long)jint(json_object_get(r, "refused"), "attempts"));
	hourly_chart(&b, r);
	dim_table(&b, tr, "by_route", "route", "By route");
	dim_table(&b, tr, "by_status", "status", "By status");
	dim_table(&b, tr, "by_region", "region", "By region");
	dim_table(&b, tr, "by_user_agent", "user_agent", "By user agent");
	refused_section(&b, r);
	messages_section(&b, r);
	const json_t *sib = json_object_get(r, "sibling_keys");
	line(&b, "%s", "");
	line(&b, "OTHER KEYS the same leak may expose");
	siblings_table(&b, json_object_get(sib, "project"), "same project");
	siblings_table(&b, json_object_get(sib, "organization"), "rest of the organisation");
	steps_section(&b, r);
	return buf_steal(&b, NULL);
}
