/*
 * oidc.c: the console's OpenID providers (see oidc.h): configuration and
 * secrets, the cached discovery document and key set, the token exchange.
 *
 * Each provider has one mutex over its cache. A fetch runs under it, so
 * logins that find the cache stale wait for one fetch instead of each
 * making their own; the token exchange, the slow part of a login, runs
 * outside it. The key set is reference-counted: a validation holds the set
 * it started with while another thread may replace it.
 */
#include "console/oidc.h"

#include <curl/curl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "build_info.h"
#include "core/alloc.h"
#include "core/log.h"
#include "crypto/jose.h"
#include "delivery/egress.h"

struct keyset {
	atomic_int refs;
	struct jose_jwks *set;
};

struct oidc_provider {
	char name[OIDC_NAME_MAX + 1];
	char *issuer;
	char *client_id;
	char *secret; /* wiped at free */
	char *scopes;
	char *verified_claim; /* the claim whose JSON true marks the email verified */
	char *ca_file;        /* resolved path, "" for the system's CAs */
	struct egress_ranges *allow;
	oidc_http_fn http;
	void *http_ctx;

	pthread_mutex_t lock;        /* over what follows */
	struct oidc_discovery *disc; /* NULL until fetched */
	int64_t disc_at_ms;
	struct keyset *keys; /* NULL until fetched */
	int64_t keys_at_ms;  /* when the set in keys was fetched */
	int64_t keys_try_ms; /* the last fetch attempt, successful or not */
	uint64_t keys_fetches;
};

struct oidc_providers {
	size_t n;
	struct oidc_provider p[CONFIG_MAX_OIDC];
};

static void keyset_unref(struct keyset *k)
{
	if (k && atomic_fetch_sub(&k->refs, 1) == 1) {
		jose_jwks_free(k->set);
		free(k);
	}
}

/* ---------- the HTTP exchange ---------- */

/* The default oidc_http_fn: libcurl through the egress guard. */
static int http_curl(void *ctx, const struct oidc_provider *p, const char *url, const char *auth,
                     const char *body, struct buf *resp, long *status, char *err, size_t cap)
{
	struct egress_socket_guard guard = {.allow = p->allow};
	struct buf_sink f = {.buf = resp};
	struct curl_slist *hdrs = NULL;
	struct buf authz;
	const char *why = NULL;
	char ua[64];
	CURLcode cc;
	CURL *h;
	(void)ctx;

	*status = 0;
	if (egress_check_url(url, p->allow, &why) < 0) {
		snprintf(err, cap, "the URL is refused (%s)", why);
		return -1;
	}
	h = curl_easy_init();
	if (!h) {
		snprintf(err, cap, "curl_easy_init failed");
		return -1;
	}
	snprintf(ua, sizeof ua, "Portcullis-Console/%s", PORTCULLIS_VERSION);
	if (body)
		egress_curl_post(h, url, OIDC_HTTP_TIMEOUT_MS, p->ca_file, &guard);
	else
		egress_curl_get(h, url, OIDC_HTTP_TIMEOUT_MS, p->ca_file, &guard);
	curl_easy_setopt(h, CURLOPT_USERAGENT, ua);
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, buf_sink_write);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, &f);
	hdrs = curl_slist_append(hdrs, "Accept: application/json");
	buf_init(&authz, OIDC_ACCESS_TOKEN_MAX + OIDC_SECRET_MAX * 4 + 64);
	if (auth &&
	    (buf_append_str(&authz, "Authorization: ") < 0 || buf_append_str(&authz, auth) < 0)) {
		snprintf(err, cap, "the client credentials are too long");
		buf_free(&authz);
		curl_slist_free_all(hdrs);
		curl_easy_cleanup(h);
		return -1;
	}
	if (auth)
		hdrs = curl_slist_append(hdrs, authz.data);
	if (body) {
		hdrs = curl_slist_append(hdrs, "Content-Type: application/x-www-form-urlencoded");
		curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
		curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE, (long)strlen(body));
	}
	curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);
	cc = curl_easy_perform(h);
	curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, status);
	curl_easy_cleanup(h);
	curl_slist_free_all(hdrs);
	if (authz.data)
		explicit_bzero(authz.data, authz.len);
	buf_free(&authz);
	if (guard.refused) {
		snprintf(err, cap, "egress refused: the host resolves to a refused address");
		return -1;
	}
	if (f.too_large) {
		snprintf(err, cap, "the response is larger than %d bytes", OIDC_DOC_MAX);
		return -1;
	}
	if (cc != CURLE_OK) {
		snprintf(err, cap, "%s", curl_easy_strerror(cc));
		return -1;
	}
	return 0;
}

/* GET url into resp: 0 for a 200, else -1 with a reason. */
static int get_json(struct oidc_provider *p, const char *url, struct buf *resp, char *err,
                    size_t cap)
{
	long status = 0;

	if (p->http(p->http_ctx, p, url, NULL, NULL, resp, &status, err, cap) < 0)
		return -1;
	if (status != 200) {
		snprintf(err, cap, "HTTP status %ld", status);
		return -1;
	}
	return 0;
}

/* ---------- the cache (callers hold p->lock) ---------- */

static int discovery_locked(struct oidc_provider *p, int64_t now_ms, char *err, size_t cap)
{
	struct buf url, body;
	struct oidc_discovery *d;
	char why[256] = "";
	int rc = -1;

	if (p->disc && now_ms - p->disc_at_ms < OIDC_CACHE_MAX_AGE_MS)
		return 0;
	buf_init(&url, OIDC_URL_MAX + 64);
	buf_init(&body, OIDC_DOC_MAX);
	d = xcalloc(1, sizeof(*d));
	/* Discovery 4: the issuer with any trailing '/' removed, then the well-known path. */
	size_t il = strlen(p->issuer);
	if (il && p->issuer[il - 1] == '/')
		il--;
	if (buf_append(&url, p->issuer, il) < 0 ||
	    buf_append_str(&url, "/.well-known/openid-configuration") < 0) {
		snprintf(why, sizeof why, "issuer too long");
	} else if (get_json(p, url.data, &body, why, sizeof why) == 0 &&
	           oidc_discovery_parse(body.data ? body.data : "", body.len, p->issuer, d, why,
	                                sizeof why) == OIDC_OK) {
		free(p->disc);
		p->disc = d;
		d = NULL;
		p->disc_at_ms = now_ms;
		rc = 0;
	}
	free(d);
	buf_free(&url);
	buf_free(&body);
	if (rc < 0) {
		log_event(LOG_WARN, "oidc_discovery_failed", "provider", p->name, "error", why,
		          NULL);
		if (p->disc) /* a stale document beats none while the provider is down */
			return 0;
		snprintf(err, cap, "discovery: %s", why);
	}
	return rc;
}

static int keys_fetch_locked(struct oidc_provider *p, int64_t now_ms, char *err, size_t cap)
{
	struct buf body;
	struct jose_jwks *set = NULL;
	char why[256] = "";
	int rc = -1;

	p->keys_try_ms = now_ms;
	p->keys_fetches++;
	buf_init(&body, JOSE_JWKS_MAX_BYTES);
	if (get_json(p, p->disc->jwks_uri, &body, why, sizeof why) == 0 &&
	    jose_jwks_parse(body.data ? body.data : "", body.len, &set, why, sizeof why) ==
	        JOSE_OK) {
		struct keyset *k = xcalloc(1, sizeof(*k));
		atomic_init(&k->refs, 1);
		k->set = set;
		keyset_unref(p->keys);
		p->keys = k;
		p->keys_at_ms = now_ms;
		rc = 0;
	}
	buf_free(&body);
	if (rc == 0) {
		char n[16];
		snprintf(n, sizeof n, "%zu", jose_jwks_count(set));
		log_event(LOG_INFO, "oidc_keys_fetched", "provider", p->name, "#keys", n, NULL);
	} else {
		log_event(LOG_WARN, "oidc_keys_failed", "provider", p->name, "error", why, NULL);
		snprintf(err, cap, "key set: %s", why);
	}
	return rc;
}

/*
 * The key set to validate with (a reference for the caller), fetching it
 * when absent or old, or when refresh asks for a new one (an unknown kid)
 * and the last attempt is at least OIDC_JWKS_MIN_GAP_MS old. NULL when none.
 */
static struct keyset *keys_get(struct oidc_provider *p, int64_t now_ms, bool refresh, char *err,
                               size_t cap)
{
	struct keyset *k = NULL;

	pthread_mutex_lock(&p->lock);
	bool old = !p->keys || now_ms - p->keys_at_ms >= OIDC_CACHE_MAX_AGE_MS;
	bool may = now_ms - p->keys_try_ms >= OIDC_JWKS_MIN_GAP_MS || p->keys_fetches == 0;
	if (discovery_locked(p, now_ms, err, cap) == 0 && (old || refresh) && may)
		(void)keys_fetch_locked(p, now_ms, err, cap); /* a failure keeps the old set */
	if (p->keys) {
		k = p->keys;
		atomic_fetch_add(&k->refs, 1);
	}
	pthread_mutex_unlock(&p->lock);
	return k;
}

/* A copy of the discovery document (fetched when needed). 0 or -1. */
static int discovery_get(struct oidc_provider *p, int64_t now_ms, struct oidc_discovery *out,
                         char *err, size_t cap)
{
	int rc;

	pthread_mutex_lock(&p->lock);
	rc = discovery_locked(p, now_ms, err, cap);
	if (rc == 0)
		*out = *p->disc;
	pthread_mutex_unlock(&p->lock);
	return rc;
}

/* ---------- the providers ---------- */

int oidc_providers_open(const struct config *cfg, struct oidc_providers **out, char *err,
                        size_t cap)
{
	struct oidc_providers *ps;
	char msg[400];

	*out = NULL;
	if (cfg->n_oidc == 0)
		return 0;
	ps = xcalloc(1, sizeof(*ps));
	for (size_t i = 0; i < cfg->n_oidc; i++) {
		const struct config_oidc *c = &cfg->oidc[i];
		struct oidc_provider *p = &ps->p[i];
		char secret[OIDC_SECRET_MAX + 1];
		const char *why = NULL;
		char setting[OIDC_NAME_MAX + 40];

		pthread_mutex_init(&p->lock, NULL);
		ps->n = i + 1;
		str_copy(p->name, sizeof p->name, c->name, OIDC_NAME_MAX);
		p->issuer = xstrdup(c->issuer);
		p->client_id = xstrdup(c->client_id);
		p->scopes = xstrdup(c->scopes);
		p->verified_claim = xstrdup(c->verified_email_claim && c->verified_email_claim[0]
		                                ? c->verified_email_claim
		                                : OIDC_VERIFIED_CLAIM);
		p->ca_file = config_path_of(cfg, c->ca_file);
		p->http = http_curl;
		snprintf(setting, sizeof setting, "[oidc.%s] client_secret_file", c->name);
		if (config_read_secret(cfg, setting, c->client_secret_file, secret, sizeof secret,
		                       err, cap) < 0)
			goto fail;
		if (!secret[0]) {
			snprintf(err, cap, "%s: the file's first line is empty", setting);
			goto fail;
		}
		p->secret = xstrdup(secret);
		explicit_bzero(secret, sizeof secret);
		if (egress_ranges_parse(c->allow_ranges, &p->allow, msg, sizeof msg) < 0) {
			snprintf(err, cap, "[oidc.%s] allow_ranges: %s", c->name, msg);
			goto fail;
		}
		if (p->ca_file[0] && access(p->ca_file, R_OK) != 0) {
			snprintf(err, cap, "[oidc.%s] ca_file: cannot read %s", c->name,
			         p->ca_file);
			goto fail;
		}
		if (egress_check_url(c->issuer, p->allow, &why) < 0) {
			snprintf(err, cap, "[oidc.%s] issuer refused by the egress guard (%s)",
			         c->name, why);
			goto fail;
		}
	}
	*out = ps;
	return 0;
fail:
	oidc_providers_free(ps);
	return -1;
}

void oidc_providers_free(struct oidc_providers *ps)
{
	if (!ps)
		return;
	for (size_t i = 0; i < ps->n; i++) {
		struct oidc_provider *p = &ps->p[i];
		if (p->secret)
			explicit_bzero(p->secret, strlen(p->secret));
		free(p->secret);
		free(p->issuer);
		free(p->client_id);
		free(p->scopes);
		free(p->verified_claim);
		free(p->ca_file);
		free(p->disc);
		keyset_unref(p->keys);
		egress_ranges_free(p->allow);
		pthread_mutex_destroy(&p->lock);
	}
	free(ps);
}

size_t oidc_providers_count(const struct oidc_providers *ps)
{
	return ps ? ps->n : 0;
}

const char *oidc_providers_name(const struct oidc_providers *ps, size_t i)
{
	return ps && i < ps->n ? ps->p[i].name : NULL;
}

struct oidc_provider *oidc_provider_find(struct oidc_providers *ps, const char *name, size_t len)
{
	for (size_t i = 0; ps && i < ps->n; i++)
		if (strlen(ps->p[i].name) == len && memcmp(ps->p[i].name, name, len) == 0)
			return &ps->p[i];
	return NULL;
}

const char *oidc_provider_name(const struct oidc_provider *p)
{
	return p->name;
}

void oidc_providers_set_http(struct oidc_providers *ps, oidc_http_fn fn, void *ctx)
{
	for (size_t i = 0; ps && i < ps->n; i++) {
		ps->p[i].http = fn;
		ps->p[i].http_ctx = ctx;
	}
}

bool oidc_provider_issuer_is(const struct oidc_provider *p, const char *iss)
{
	return strcmp(p->issuer, iss) == 0;
}

uint64_t oidc_provider_jwks_fetches(const struct oidc_provider *p)
{
	return p->keys_fetches;
}

int oidc_provider_begin(struct oidc_provider *p, const char *redirect_uri, int64_t now_ms,
                        struct oidc_login *login, struct buf *location, char *err, size_t cap)
{
	struct oidc_discovery *d = xmalloc(sizeof(*d));
	int rc = OIDC_ERR_PROVIDER;

	if (discovery_get(p, now_ms, d, err, cap) == 0) {
		oidc_login_new(login, p->name, now_ms / 1000);
		if (oidc_authorize_url(location, d, p->client_id, redirect_uri, p->scopes, login) ==
		    0)
			rc = OIDC_OK;
		else
			snprintf(err, cap, "the authorization URL is too long");
	}
	free(d);
	return rc;
}

/* Redeem code: the id_token into tok (tok_cap bytes), the access_token into access. */
static int exchange(struct oidc_provider *p, const struct oidc_discovery *d,
                    const char *redirect_uri, const struct oidc_login *login, const char *code,
                    char *tok, size_t tok_cap, char *access, size_t access_cap, char *err,
                    size_t cap)
{
	struct buf body, auth, resp;
	long status = 0;
	bool basic = d->auth_basic;
	int rc = OIDC_ERR_PROVIDER;

	buf_init(&body, OIDC_DOC_MAX);
	buf_init(&auth, OIDC_SECRET_MAX * 4 + 64);
	buf_init(&resp, OIDC_DOC_MAX);
	if (oidc_token_body(&body, code, redirect_uri, login->verifier, !basic, p->client_id,
	                    p->secret) < 0 ||
	    (basic && oidc_basic_auth(&auth, p->client_id, p->secret) < 0)) {
		snprintf(err, cap, "token request too long");
		goto out;
	}
	if (p->http(p->http_ctx, p, d->token_endpoint, basic ? auth.data : NULL, body.data, &resp,
	            &status, err, cap) < 0)
		goto out;
	if (status != 200) {
		/* The provider's error code only ("invalid_grant"): never its description. */
		json_error_t je;
		json_t *j = json_loadb(resp.data ? resp.data : "", resp.len, 0, &je);
		const char *code_s = json_string_value(json_object_get(j, "error"));
		char safe[48] = "";
		for (size_t i = 0; code_s && code_s[i] && i + 1 < sizeof safe; i++)
			safe[i] = (code_s[i] >= 'a' && code_s[i] <= 'z') || code_s[i] == '_'
			              ? code_s[i]
			              : '?';
		snprintf(err, cap, "token endpoint answered HTTP %ld%s%s", status,
		         safe[0] ? ": " : "", safe);
		json_decref(j);
		goto out;
	}
	if (oidc_token_response(resp.data ? resp.data : "", resp.len, tok, tok_cap, access,
	                        access_cap) != OIDC_OK) {
		snprintf(err, cap, "token response without a Bearer id_token");
		goto out;
	}
	rc = OIDC_OK;
out:
	if (body.data)
		explicit_bzero(body.data, body.len);
	if (auth.data)
		explicit_bzero(auth.data, auth.len);
	if (resp.data)
		explicit_bzero(resp.data, resp.len); /* holds the access token */
	buf_free(&body);
	buf_free(&auth);
	buf_free(&resp);
	return rc;
}

/* The UserInfo response for access completes id (oidc_userinfo_apply). */
static int userinfo(struct oidc_provider *p, const struct oidc_discovery *d, const char *access,
                    struct oidc_identity *id, char *err, size_t cap)
{
	struct buf auth, resp;
	long status = 0;
	int rc = OIDC_ERR_PROVIDER;

	buf_init(&auth, OIDC_ACCESS_TOKEN_MAX + 16);
	buf_init(&resp, OIDC_DOC_MAX);
	if (buf_append_str(&auth, "Bearer ") < 0 || buf_append_str(&auth, access) < 0) {
		snprintf(err, cap, "access token too long");
	} else if (p->http(p->http_ctx, p, d->userinfo_endpoint, auth.data, NULL, &resp, &status,
	                   err, cap) == 0) {
		if (status != 200) {
			snprintf(err, cap, "userinfo endpoint answered HTTP %ld", status);
		} else {
			rc = oidc_userinfo_apply(resp.data ? resp.data : "", resp.len,
			                         p->verified_claim, id);
			if (rc != OIDC_OK)
				snprintf(err, cap, "userinfo refused: %s", oidc_result_name(rc));
		}
	}
	if (auth.data)
		explicit_bzero(auth.data, auth.len);
	buf_free(&auth);
	buf_free(&resp);
	if (rc != OIDC_OK && rc != OIDC_ERR_PROVIDER)
		memset(id, 0, sizeof(*id));
	return rc;
}

int oidc_provider_finish(struct oidc_provider *p, const char *redirect_uri,
                         const struct oidc_login *login, const char *code, int64_t now_ms,
                         struct oidc_identity *id, char *err, size_t cap)
{
	struct oidc_discovery *d = xmalloc(sizeof(*d));
	char *tok = xmalloc(JOSE_JWS_MAX_BYTES + 1);
	char *access = xmalloc(OIDC_ACCESS_TOKEN_MAX + 1);
	struct oidc_expect e = {.client_id = p->client_id,
	                        .nonce = login->nonce,
	                        .now_s = now_ms / 1000,
	                        .verified_email_claim = p->verified_claim};
	char kid[JOSE_KID_MAX + 1];
	struct keyset *k = NULL;
	int rc = OIDC_ERR_PROVIDER;

	memset(id, 0, sizeof(*id));
	if (discovery_get(p, now_ms, d, err, cap) < 0)
		goto out;
	e.issuer = d->issuer;
	rc = exchange(p, d, redirect_uri, login, code, tok, JOSE_JWS_MAX_BYTES + 1, access,
	              OIDC_ACCESS_TOKEN_MAX + 1, err, cap);
	if (rc != OIDC_OK)
		goto out;
	for (int attempt = 0; attempt < 2; attempt++) {
		k = keys_get(p, now_ms, attempt > 0, err, cap);
		if (!k) {
			rc = OIDC_ERR_PROVIDER;
			goto out;
		}
		rc = oidc_id_token_validate(tok, strlen(tok), k->set, &e, id, kid);
		keyset_unref(k);
		k = NULL;
		if (rc != OIDC_ERR_KID)
			break;
	}
	if (rc != OIDC_OK) {
		snprintf(err, cap, "ID token refused: %s", oidc_result_name(rc));
		goto out;
	}
	/* Core 5.4: with an access token the email claims may be at the UserInfo endpoint only. */
	if (!id->email[0] && d->userinfo_endpoint[0] && access[0])
		rc = userinfo(p, d, access, id, err, cap);
out:
	explicit_bzero(tok, JOSE_JWS_MAX_BYTES + 1);
	explicit_bzero(access, OIDC_ACCESS_TOKEN_MAX + 1);
	free(tok);
	free(access);
	free(d);
	return rc;
}
