/*
 * scankeys.c: fetching GitHub's secret scanning keys into the store (see
 * scankeys.h). One blocking libcurl transfer at most once a minute, on the
 * worker's own thread: the delivery engine's multi loop is not involved.
 */
#include "delivery/scankeys.h"

#include "build_info.h"
#include "core/alloc.h"
#include "core/clock.h"
#include "core/config.h"
#include "core/log.h"
#include "core/str.h"
#include "crypto/ecdsa.h"
#include "delivery/egress.h"

#include <curl/curl.h>
#include <jansson.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

bool scankeys_id_valid(const char *s, size_t n)
{
	return str_is_token(s, n, STORE_SCAN_KEY_ID_MAX);
}

int scankeys_parse(const char *body, size_t len, struct store_scan_key *out, int *n, char *err,
                   size_t cap)
{
	json_error_t je;
	json_t *root = json_loadb(body, len, JSON_REJECT_DUPLICATES, &je);
	json_t *keys = json_object_get(root, "public_keys");
	json_t *k;
	size_t i;
	int rc = -1;

	*n = 0;
	if (!json_is_array(keys) || json_array_size(keys) == 0) {
		snprintf(err, cap, "not a key set (public_keys must be a non-empty array)");
		goto out;
	}
	if (json_array_size(keys) > STORE_SCAN_KEYS_MAX) {
		snprintf(err, cap, "more than %d keys", STORE_SCAN_KEYS_MAX);
		goto out;
	}
	json_array_foreach(keys, i, k)
	{
		json_t *id = json_object_get(k, "key_identifier");
		json_t *pem = json_object_get(k, "key");
		json_t *cur = json_object_get(k, "is_current");
		struct store_scan_key *o = &out[i];

		if (!json_is_string(id) ||
		    !scankeys_id_valid(json_string_value(id), json_string_length(id))) {
			snprintf(err, cap,
			         "key %zu: key_identifier is not 1 to %d letters or digits", i,
			         STORE_SCAN_KEY_ID_MAX);
			goto out;
		}
		if (!json_is_string(pem) || json_string_length(pem) > STORE_SCAN_PEM_MAX ||
		    strlen(json_string_value(pem)) != json_string_length(pem) ||
		    ecdsa_p256_key_check(json_string_value(pem), json_string_length(pem)) !=
		        ECDSA_OK) {
			snprintf(err, cap, "key %zu: not a PEM P-256 public key", i);
			goto out;
		}
		if (cur && !json_is_boolean(cur)) {
			snprintf(err, cap, "key %zu: is_current is not a boolean", i);
			goto out;
		}
		for (size_t j = 0; j < i; j++)
			if (strcmp(out[j].key_identifier, json_string_value(id)) == 0) {
				snprintf(err, cap, "key %zu: key_identifier repeated", i);
				goto out;
			}
		str_copy(o->key_identifier, sizeof o->key_identifier, json_string_value(id),
		         json_string_length(id));
		str_copy(o->public_key, sizeof o->public_key, json_string_value(pem),
		         json_string_length(pem));
		o->is_current = json_is_true(cur);
	}
	*n = (int)json_array_size(keys);
	rc = 0;
out:
	json_decref(root);
	return rc;
}

/* ---------- the fetch ---------- */

struct fetch {
	struct buf body;
	struct egress_socket_guard guard;
	struct buf_sink sink; /* into body */
};

/* GET the key set into f->body. 0, or -1 with a reason in err. */
static int fetch_keys(const struct config *cfg, struct fetch *f, char *err, size_t cap)
{
	const char *reason = NULL;
	if (egress_check_url(cfg->secret_scanning_github_keys_url, f->guard.allow, &reason) < 0) {
		snprintf(err, cap, "[secret_scanning] github_keys_url refused: %s", reason);
		return -1;
	}
	CURL *h = curl_easy_init();
	if (!h) {
		snprintf(err, cap, "curl_easy_init failed");
		return -1;
	}
	char ua[64];
	snprintf(ua, sizeof ua, "Portcullis-SecretScanning/%s", PORTCULLIS_VERSION);
	egress_curl_get(h, cfg->secret_scanning_github_keys_url,
	                (long)cfg->webhooks_timeout_s * 1000, cfg->webhooks_ca_file, &f->guard);
	curl_easy_setopt(h, CURLOPT_USERAGENT, ua);
	f->sink.buf = &f->body;
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, buf_sink_write);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, &f->sink);
	CURLcode cc = curl_easy_perform(h);
	long status = 0;
	curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
	curl_easy_cleanup(h);
	if (f->guard.refused) {
		snprintf(err, cap, "egress refused: the host resolves to a refused address");
		return -1;
	}
	if (f->sink.too_large) {
		snprintf(err, cap, "the key set is larger than %d bytes", SCANKEYS_BODY_MAX);
		return -1;
	}
	if (cc != CURLE_OK) {
		snprintf(err, cap, "%s", curl_easy_strerror(cc));
		return -1;
	}
	if (status != 200) {
		snprintf(err, cap, "HTTP status %ld", status);
		return -1;
	}
	return 0;
}

int scankeys_tick(struct store *st, const struct config *cfg, const struct egress_ranges *allow,
                  int64_t now, int64_t min_gap_ms)
{
	int64_t fetched = -1, requested = -1;
	if (store_scan_state_get(st, &fetched, NULL, &requested) != STORE_OK)
		return -1;
	bool stale = fetched < 0 || now - fetched >= SCANKEYS_MAX_AGE_MS;
	bool asked = requested >= 0 && requested >= fetched;
	if (!stale && !asked)
		return 0;
	if (store_scan_fetch_claim(st, now, min_gap_ms) != STORE_OK)
		return 0;
	struct fetch f = {.guard = {.allow = allow}};
	buf_init(&f.body, SCANKEYS_BODY_MAX);
	char err[256] = "";
	struct store_scan_key *keys = xcalloc(STORE_SCAN_KEYS_MAX, sizeof *keys);
	int n = 0;
	int rc = -1;
	if (fetch_keys(cfg, &f, err, sizeof err) == 0 &&
	    scankeys_parse(f.body.data ? f.body.data : "", f.body.len, keys, &n, err, sizeof err) ==
	        0) {
		rc = store_scan_keys_replace(st, keys, n, clock_now_ms()) == STORE_OK ? 1 : -1;
		if (rc < 0)
			snprintf(err, sizeof err, "store error");
	}
	buf_free(&f.body);
	free(keys);
	if (rc == 1) {
		char count[16];
		snprintf(count, sizeof count, "%d", n);
		log_event(LOG_INFO, "secret_scanning_keys_fetched", "#keys", count, "refresh",
		          asked ? "true" : "false", NULL);
	} else {
		log_event(LOG_WARN, "secret_scanning_keys_failed", "error", err, NULL);
	}
	return rc;
}
