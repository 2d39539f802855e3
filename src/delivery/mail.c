/*
 * mail.c: the mailer (see mail.h). A message is formatted once into one
 * buffer and uploaded by libcurl's SMTP client, which does the SMTP
 * dialogue, the dot-stuffing and TLS; nothing here logs an address, a
 * password or a message text.
 */
#include "delivery/mail.h"

#include "core/alloc.h"
#include "core/config.h"
#include "core/log.h"
#include "core/str.h"
#include "core/ulid.h"

#include <errno.h>
#include <jansson.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define MAIL_PASSWORD_MAX 1024
#define MAIL_TEXT_MAX     (64 * 1024)
#define MAIL_VALUE_MAX    500 /* bytes of one value quoted in a notice */

struct mailer {
	char *url;
	char from[MAIL_ADDR_MAX * 2 + 8]; /* the From: header value as configured */
	char from_addr[MAIL_ADDR_MAX + 1];
	long use_ssl;
	char *username;
	char password[MAIL_PASSWORD_MAX + 1];
	char *ca_file;
};

/* ---------- addresses ---------- */

/* A plain addr-spec we are willing to put in a header and an SMTP path. */
static bool addr_ok(const char *a)
{
	size_t n = strlen(a);
	if (n < 3 || n > MAIL_ADDR_MAX)
		return false;
	const char *at = strchr(a, '@');
	if (!at || at == a || !at[1] || strchr(at + 1, '@'))
		return false;
	for (const unsigned char *p = (const unsigned char *)a; *p; p++)
		if (*p <= 0x20 || *p >= 0x7f || strchr("<>()[]\\,;:\"", *p))
			return false;
	return true;
}

/* "Name <a@b>" or "a@b": the address into out. */
static int from_address(const char *from, char *out, size_t cap)
{
	const char *lt = strrchr(from, '<');
	size_t len;
	const char *start = from;
	if (lt) {
		const char *gt = strchr(lt, '>');
		if (!gt || gt[1])
			return -1;
		start = lt + 1;
		len = (size_t)(gt - start);
	} else {
		len = strlen(from);
	}
	if (len >= cap)
		return -1;
	memcpy(out, start, len);
	out[len] = '\0';
	for (const unsigned char *p = (const unsigned char *)from; *p; p++)
		if (*p < 0x20 || *p == 0x7f)
			return -1;
	return addr_ok(out) ? 0 : -1;
}

static bool line_ok(const char *s, size_t max)
{
	size_t n = 0;
	for (const unsigned char *p = (const unsigned char *)s; *p; p++, n++)
		if (*p < 0x20 || *p >= 0x7f)
			return false;
	return n > 0 && n <= max;
}

/* ---------- the message ---------- */

char *mail_format(const char *from, const struct mail_message *msg, size_t *len)
{
	char from_addr[MAIL_ADDR_MAX + 1];
	if (!msg->to || !addr_ok(msg->to) || !msg->subject || !line_ok(msg->subject, 900) ||
	    !from || from_address(from, from_addr, sizeof from_addr) < 0 || !msg->text)
		return NULL;
	char id[64];
	if (msg->message_id) {
		if (!line_ok(msg->message_id, 60) || strpbrk(msg->message_id, "<>@ "))
			return NULL;
		snprintf(id, sizeof id, "%s", msg->message_id);
	} else {
		ulid_new(id);
	}
	time_t t = (time_t)(msg->date_ms / 1000);
	struct tm tm;
	gmtime_r(&t, &tm);
	static const char *const days[] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
	static const char *const months[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
	                                     "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
	struct buf b;
	buf_init(&b, MAIL_TEXT_MAX + 4096);
	buf_printf(&b, "Date: %s, %02d %s %04d %02d:%02d:%02d +0000\r\n", days[tm.tm_wday % 7],
	           tm.tm_mday, months[tm.tm_mon % 12], tm.tm_year + 1900, tm.tm_hour, tm.tm_min,
	           tm.tm_sec);
	buf_printf(&b, "From: %s\r\nTo: %s\r\nSubject: %s\r\n", from, msg->to, msg->subject);
	buf_printf(&b, "Message-ID: <%s@%s>\r\n", id, strchr(from_addr, '@') + 1);
	buf_append_str(&b, "MIME-Version: 1.0\r\nContent-Type: text/plain; charset=UTF-8\r\n"
	                   "Content-Transfer-Encoding: 8bit\r\n\r\n");
	/* The body with CRLF line ends (a bare CR or LF becomes one). */
	for (const char *p = msg->text; *p; p++) {
		if (*p == '\r' && p[1] == '\n')
			continue;
		if (*p == '\n' || *p == '\r') {
			if (buf_append(&b, "\r\n", 2) < 0)
				break;
		} else if (buf_append(&b, p, 1) < 0) {
			break;
		}
	}
	if (b.len < 2 || memcmp(b.data + b.len - 2, "\r\n", 2) != 0)
		buf_append(&b, "\r\n", 2);
	if (b.len > MAIL_TEXT_MAX) {
		buf_free(&b);
		return NULL;
	}
	return buf_steal(&b, len);
}

/* ---------- the mailer ---------- */

/* The [mail] password_file read into out (cap bytes); nothing to read is an empty password. */
static int load_password(const struct config *cfg, char *out, size_t cap, char *err, size_t errcap)
{
	out[0] = '\0';
	if (!cfg->mail_password_file[0])
		return 0;
	return config_read_secret(cfg, "[mail] password_file", cfg->mail_password_file, out, cap,
	                          err, errcap);
}

int mailer_config_check(const struct config *cfg, char *err, size_t cap)
{
	if (!cfg->mail_url[0])
		return 0;
	if (!str_has_prefix(cfg->mail_url, "smtps://") &&
	    !str_has_prefix(cfg->mail_url, "smtp://")) {
		snprintf(err, cap, "[mail] url must be smtp://host:port or smtps://host:port");
		return -1;
	}
	char from[MAIL_ADDR_MAX * 2 + 8], addr[MAIL_ADDR_MAX + 1];
	if (snprintf(from, sizeof from, "%s", cfg->mail_from) >= (int)sizeof from ||
	    from_address(from, addr, sizeof addr) < 0) {
		snprintf(err, cap, "[mail] from must be an address (a@b or Name <a@b>)");
		return -1;
	}
	if (strcmp(cfg->mail_starttls, "required") != 0 &&
	    strcmp(cfg->mail_starttls, "optional") != 0 && strcmp(cfg->mail_starttls, "off") != 0) {
		snprintf(err, cap, "[mail] starttls must be required, optional or off");
		return -1;
	}
	char password[MAIL_PASSWORD_MAX + 1];
	int rc = load_password(cfg, password, sizeof password, err, cap);
	explicit_bzero(password, sizeof password);
	if (rc < 0)
		return -1;
	/* curl opens it at each mail: one that cannot be read would fail every mail. */
	if (cfg->mail_ca_file[0] && access(cfg->mail_ca_file, R_OK) != 0) {
		snprintf(err, cap, "[mail] ca_file: cannot read %s: %s", cfg->mail_ca_file,
		         strerror(errno));
		return -1;
	}
	return 0;
}

int mailer_open(const struct config *cfg, struct mailer **out, char *err, size_t cap)
{
	*out = NULL;
	if (!cfg->mail_url[0])
		return 0;
	if (mailer_config_check(cfg, err, cap) < 0)
		return -1;
	bool smtps = str_has_prefix(cfg->mail_url, "smtps://");
	struct mailer *m = xcalloc(1, sizeof *m);
	snprintf(m->from, sizeof m->from, "%s", cfg->mail_from);
	/* from was checked just above; the password file may have changed since. */
	(void)from_address(m->from, m->from_addr, sizeof m->from_addr);
	if (load_password(cfg, m->password, sizeof m->password, err, cap) < 0) {
		mailer_free(m);
		return -1;
	}
	m->url = xstrdup(cfg->mail_url);
	m->username = xstrdup(cfg->mail_username);
	m->ca_file = xstrdup(cfg->mail_ca_file);
	if (smtps || strcmp(cfg->mail_starttls, "required") == 0)
		m->use_ssl = (long)CURLUSESSL_ALL;
	else if (strcmp(cfg->mail_starttls, "optional") == 0)
		m->use_ssl = (long)CURLUSESSL_TRY;
	else
		m->use_ssl = (long)CURLUSESSL_NONE;
	if (!smtps && m->use_ssl == (long)CURLUSESSL_NONE)
		log_warn("[mail] starttls = off: notice mails (and any SMTP password) go to the "
		         "server in clear text");
	*out = m;
	return 0;
}

void mailer_free(struct mailer *m)
{
	if (!m)
		return;
	explicit_bzero(m->password, sizeof m->password);
	free(m->url);
	free(m->username);
	free(m->ca_file);
	free(m);
}

struct mail_job {
	CURL *easy;
	struct curl_slist *rcpt;
	char *data;
	size_t len, off;
};

static size_t on_read(char *dst, size_t size, size_t n, void *userp)
{
	struct mail_job *j = userp;
	size_t room = size * n;
	size_t left = j->len - j->off;
	size_t k = left < room ? left : room;
	memcpy(dst, j->data + j->off, k);
	j->off += k;
	return k;
}

struct mail_job *mail_job_new(const struct mailer *m, const struct mail_message *msg,
                              long timeout_ms)
{
	size_t len = 0;
	char *data = mail_format(m->from, msg, &len);
	if (!data)
		return NULL;
	struct mail_job *j = xcalloc(1, sizeof *j);
	j->data = data;
	j->len = len;
	j->easy = curl_easy_init();
	if (!j->easy)
		fatal("curl_easy_init failed");
	CURL *e = j->easy;
	char path[MAIL_ADDR_MAX + 3];
	snprintf(path, sizeof path, "<%s>", msg->to);
	j->rcpt = curl_slist_append(NULL, path);
	snprintf(path, sizeof path, "<%s>", m->from_addr);
	curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(e, CURLOPT_URL, m->url);
	curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "smtp,smtps");
	curl_easy_setopt(e, CURLOPT_PROXY, "");
	curl_easy_setopt(e, CURLOPT_USE_SSL, m->use_ssl);
	curl_easy_setopt(e, CURLOPT_MAIL_FROM, path);
	curl_easy_setopt(e, CURLOPT_MAIL_RCPT, j->rcpt);
	curl_easy_setopt(e, CURLOPT_UPLOAD, 1L);
	curl_easy_setopt(e, CURLOPT_READFUNCTION, on_read);
	curl_easy_setopt(e, CURLOPT_READDATA, j);
	curl_easy_setopt(e, CURLOPT_INFILESIZE_LARGE, (curl_off_t)len);
	curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, timeout_ms);
	curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, timeout_ms);
	if (m->username[0]) {
		curl_easy_setopt(e, CURLOPT_USERNAME, m->username);
		curl_easy_setopt(e, CURLOPT_PASSWORD, m->password);
	}
	if (m->ca_file[0])
		curl_easy_setopt(e, CURLOPT_CAINFO, m->ca_file);
	return j;
}

CURL *mail_job_easy(struct mail_job *j)
{
	return j->easy;
}

void mail_job_free(struct mail_job *j)
{
	if (!j)
		return;
	curl_easy_cleanup(j->easy);
	curl_slist_free_all(j->rcpt);
	explicit_bzero(j->data, j->len);
	free(j->data);
	free(j);
}

int mail_send(const struct mailer *m, const struct mail_message *msg, char *err, size_t cap)
{
	struct mail_job *j = mail_job_new(m, msg, 30000L);
	if (!j) {
		snprintf(err, cap, "the message is not valid (address or subject)");
		return -1;
	}
	CURLcode rc = curl_easy_perform(j->easy);
	mail_job_free(j);
	if (rc != CURLE_OK) {
		snprintf(err, cap, "%s", curl_easy_strerror(rc));
		return -1;
	}
	return 0;
}

/* ---------- notice texts ---------- */

/* A value from the event, on one line, bounded; "-" when absent. */
static void put_value(struct buf *b, json_t *data, const char *key)
{
	const char *v = json_string_value(json_object_get(data, key));
	if (!v || !v[0]) {
		buf_append_str(b, "-");
		return;
	}
	size_t n = 0;
	for (const unsigned char *p = (const unsigned char *)v; *p && n < MAIL_VALUE_MAX; p++, n++)
		buf_append(b, *p < 0x20 || *p == 0x7f ? " " : (const char *)p, 1);
	if (v[n]) {
		/* Cut at a character boundary, then mark the cut. */
		while (b->len && ((unsigned char)b->data[b->len - 1] & 0xC0) == 0x80)
			b->len--;
		if (b->len && (unsigned char)b->data[b->len - 1] >= 0xC0)
			b->len--;
		b->data[b->len] = '\0';
		buf_append_str(b, "...");
	}
}

/* An integer value from the event; "-" when absent. */
static void put_int(struct buf *b, json_t *data, const char *key)
{
	json_t *v = json_object_get(data, key);
	if (json_is_integer(v))
		buf_printf(b, "%lld", (long long)json_integer_value(v));
	else
		buf_append_str(b, "-");
}

/* "https://host/..." -> "host" (a URL's path or query may carry a token). */
static void put_host(struct buf *b, json_t *data)
{
	const char *u = json_string_value(json_object_get(data, "url"));
	const char *h = u ? strstr(u, "://") : NULL;
	if (!h) {
		buf_append_str(b, "-");
		return;
	}
	h += 3;
	size_t n = strcspn(h, "/?#@");
	if (h[n] == '@') { /* never stored, but never shown either */
		buf_append_str(b, "-");
		return;
	}
	for (size_t i = 0; i < n && i < 253; i++)
		buf_append(b, (unsigned char)h[i] < 0x21 ? "?" : h + i, 1);
}

struct notice {
	const char *type;
	const char *subject;
	const char *what; /* "What happened" line prefix */
	int kind;         /* 0 key, 1 org, 2 global, 3 endpoint, 4 leaked key, 5 budget */
	const char *todo;
};

static const struct notice notices[] = {
    {"api_key.killed", "Portcullis: an API key was killed", "An API key was killed", 0,
     "Every request with this key is refused until the kill is lifted. If you did not expect "
     "this, find out why from the reason and the request id in your audit log, and ask the "
     "operator to lift the kill once it is safe."},
    {"api_key.kill_lifted", "Portcullis: the kill of an API key was lifted",
     "The kill of an API key was lifted", 0,
     "The key works again. If it was killed because it leaked, revoke or rotate it instead."},
    {"org.killed", "Portcullis: your organization was killed", "Your organization was killed", 1,
     "Every request with any of your organization's keys is refused until the kill is "
     "lifted. Check the reason and the request id in your audit log, and contact the operator."},
    {"org.kill_lifted", "Portcullis: the kill of your organization was lifted",
     "The kill of your organization was lifted", 1,
     "Your organization's keys work again. Check your audit log for what changed meanwhile."},
    {"global.killed", "Portcullis: all API traffic was stopped (global kill)",
     "A global kill stopped all API traffic", 2,
     "Every request with any key is refused until the operator lifts the kill. Nothing is "
     "needed from you; your keys stay valid."},
    {"global.kill_lifted", "Portcullis: the global kill was lifted", "The global kill was lifted",
     2, "API traffic flows again with your existing keys."},
    {"webhook_endpoint.failing", "Portcullis: a webhook endpoint is failing",
     "A webhook endpoint has failed every delivery for a day", 3,
     "Check that the endpoint answers 2xx within the timeout. It is disabled if it keeps "
     "failing; messages are retried meanwhile."},
    {"webhook_endpoint.disabled", "Portcullis: a webhook endpoint was disabled",
     "A webhook endpoint was disabled", 3,
     "No more messages are sent to it. Fix the receiver, enable the endpoint again (PATCH "
     "disabled=false) and recover the failed messages (POST .../recover)."},
    {"usage.budget_threshold", "Portcullis: a usage budget threshold was reached",
     "A project's usage reached a threshold of its monthly budget", 5,
     "Review the project's usage (GET /v1/usage?project_id=...&group_by=key) and find out what "
     "sends the requests. A budget never stops traffic: raise it (PATCH /v1/projects/{id}) if "
     "the usage is expected, or kill or rotate the key that should not be used."},
    {"api_key.leak_reported", "Portcullis: an API key was found in public",
     "A secret scanner reported one of your API keys in a public place", 4,
     "Treat the key as compromised. If it was killed, create a replacement key, update the "
     "integration, verify traffic moved to the new key, then revoke the exposed key; remove the "
     "key from where it was found. If it was not killed, do the same now."},
};

#define N_NOTICES (sizeof notices / sizeof notices[0])
static const char *notice_types[N_NOTICES + 1];
static pthread_once_t notice_types_once = PTHREAD_ONCE_INIT;

static void fill_notice_types(void)
{
	for (size_t i = 0; i < N_NOTICES; i++)
		notice_types[i] = notices[i].type;
}

const char *const *mail_notice_types(void)
{
	pthread_once(&notice_types_once, fill_notice_types);
	return notice_types;
}

int mail_notice_render(const char *type, const char *body, char **subject, char **text)
{
	const struct notice *n = NULL;
	for (size_t i = 0; i < N_NOTICES; i++)
		if (strcmp(notices[i].type, type) == 0)
			n = &notices[i];
	if (!n)
		return -1;
	json_t *root = json_loads(body, JSON_REJECT_DUPLICATES, NULL);
	json_t *data = json_object_get(root, "data");
	if (!json_is_object(data)) {
		json_decref(root);
		return -1;
	}
	struct buf b;
	buf_init(&b, MAIL_TEXT_MAX / 2);
	buf_printf(&b, "%s.\n\n", n->what);
	if (n->kind == 0 || n->kind == 4) {
		buf_append_str(&b, "Key:          ");
		put_value(&b, data, "name");
		buf_append_str(&b, " (id ");
		put_value(&b, data, "key_id");
		buf_append_str(&b, ", starts with ");
		put_value(&b, data, "start");
		buf_append_str(&b, ")\n");
	}
	if (n->kind == 4) {
		buf_append_str(&b, "Found at:     ");
		put_value(&b, data, "url");
		buf_append_str(&b, " (");
		put_value(&b, data, "source");
		buf_append_str(&b, ", reported by ");
		put_value(&b, data, "reporter");
		buf_append_str(&b, ")\nAction taken: ");
		put_value(&b, data, "action_taken");
		buf_append_str(&b, "\n");
	}
	if (n->kind == 3) {
		buf_append_str(&b, "Endpoint:     ");
		put_value(&b, data, "endpoint_id");
		buf_append_str(&b, " (host ");
		put_host(&b, data);
		buf_append_str(&b, ")\nFailing since: ");
		put_value(&b, data, "failing_since");
		buf_append_str(&b, "\n");
	}
	if (n->kind == 5) {
		buf_append_str(&b, "Project:      ");
		put_value(&b, data, "project_id");
		buf_append_str(&b, "\nMonth:        ");
		put_value(&b, data, "month");
		buf_append_str(&b, " (UTC)\nThreshold:    ");
		put_int(&b, data, "threshold");
		buf_append_str(&b, "% of ");
		put_int(&b, data, "requests_per_month");
		buf_append_str(&b, " requests a month\nRequests:     ");
		put_int(&b, data, "requests");
		buf_append_str(&b, " so far this month\n");
	}
	if (n->kind != 2 && json_object_get(data, "org_id")) {
		buf_append_str(&b, "Organization: ");
		put_value(&b, data, "org_id");
		buf_append_str(&b, "\n");
	}
	buf_append_str(&b, "When:         ");
	if (json_object_get(data, "at"))
		put_value(&b, data, "at");
	else
		put_value(&b, root, "timestamp");
	if (n->kind != 3 && n->kind != 4 && n->kind != 5) {
		buf_append_str(&b, "\nScope:        ");
		put_value(&b, data, "scope");
		buf_append_str(&b, "\nRequest id:   ");
		put_value(&b, data, "request_id");
	}
	if (n->kind != 5) {
		buf_append_str(&b, "\nReason:       ");
		put_value(&b, data, "reason");
	}
	buf_printf(&b, "\n\nWhat to do: %s\n\n-- \nPortcullis notices (event %s)\n", n->todo,
	           n->type);
	json_decref(root);
	*subject = xstrdup(n->subject);
	*text = buf_steal(&b, NULL);
	return 0;
}
