/*
 * config.c: the settings table and the INI/env loader (see config.h).
 *
 * Every setting is one row of config_table: adding a setting means adding a
 * field to struct config and a row here; defaults, range checks, env
 * overrides and the example file all follow from the row.
 */
#include "core/config.h"

#include "core/alloc.h"
#include "core/log.h"
#include "core/str.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <ini.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

enum setting_type { T_STRING, T_INT, T_ENUM, T_LISTEN };

struct setting {
	const char *section;
	const char *name;
	enum setting_type type;
	size_t offset;
	const char *def;
	int64_t min, max;    /* T_INT */
	const char *choices; /* T_ENUM: '|'-separated */
	const char *help;
};

#define S(sec, nm, field, d, h)                                                                    \
	{                                                                                          \
		sec, nm, T_STRING, offsetof(struct config, field), d, 0, 0, NULL, h                \
	}
#define I(sec, nm, field, d, lo, hi, h)                                                            \
	{                                                                                          \
		sec, nm, T_INT, offsetof(struct config, field), d, lo, hi, NULL, h                 \
	}
#define E(sec, nm, field, d, ch, h)                                                                \
	{                                                                                          \
		sec, nm, T_ENUM, offsetof(struct config, field), d, 0, 0, ch, h                    \
	}
#define L(sec, nm, field, d, h)                                                                    \
	{                                                                                          \
		sec, nm, T_LISTEN, offsetof(struct config, field), d, 0, 0, NULL, h                \
	}

static const struct setting config_table[] = {
    L("server", "listen", server_listen, "127.0.0.1:8080",
      "address and port to listen on (host:port)"),
    I("server", "workers", server_workers, "0", 0, 256, "HTTP worker threads; 0 = one per core"),
    I("server", "max_header_bytes", server_max_header_bytes, "16384", 1024, 1048576,
      "largest request header block; larger requests get 431"),
    I("server", "max_body_bytes", server_max_body_bytes, "10485760", 0, 1073741824,
      "largest request body; larger requests get 413"),
    I("server", "connection_timeout_s", server_connection_timeout_s, "30", 1, 3600,
      "idle connection timeout in seconds"),
    I("server", "max_connections", server_max_connections, "1024", 1, 1000000,
      "simultaneous client connections across all workers"),
    I("server", "max_connections_per_ip", server_max_connections_per_ip, "64", 0, 1000000,
      "simultaneous connections from one client address (an IPv6 /64), all workers together; 0 "
      "= none of its own (an address never gets over a quarter of max_connections)"),
    I("server", "header_timeout_s", server_header_timeout_s, "10", 1, 3600,
      "seconds a request head may take to arrive, from the connection's start or its previous "
      "response; slower connections are closed"),
    I("server", "shutdown_grace_s", server_shutdown_grace_s, "10", 0, 600,
      "on SIGTERM, how long in-flight requests may take to finish"),
    I("server", "http2_max_concurrent_streams", server_http2_max_concurrent_streams, "0", 0, 1000,
      "HTTP/2 (ALPN h2) on TLS listeners with at most this many streams open per connection; "
      "0 = HTTP/1.1 only"),
    E("server", "h2c", server_h2c, "false", "true|false",
      "HTTP/2 with prior knowledge (h2c) on plain listeners too, when "
      "http2_max_concurrent_streams is above 0"),
    I("server", "http2_window_bytes", server_http2_window_bytes, "65535", 65535, 16777215,
      "HTTP/2 initial flow-control window of each stream (bytes a client may send unread)"),
    S("server", "tls_cert", server_tls_cert, "",
      "PEM certificate chain; set with tls_key to serve HTTPS"),
    S("server", "tls_key", server_tls_key, "", "PEM private key for tls_cert"),
    L("server", "redirect_listen", server_redirect_listen, "",
      "optional plain-HTTP host:port answering every request with a 308 to HTTPS"),
    S("server", "trusted_proxies", server_trusted_proxies, "",
      "comma-separated addresses of proxies in front (e.g. nginx auth_request); their "
      "X-Forwarded-For names the client and is passed on to the upstream with their address "
      "appended"),
    S("store", "url", store_url, "sqlite://portcullis.db",
      "primary database: sqlite:///path/file.db or postgres://user@host:port/db"),
    I("store", "pool_size", store_pool_size, "8", 1, 256, "database connections (PostgreSQL)"),
    I("store", "statement_timeout_ms", store_statement_timeout_ms, "5000", 0, 600000,
      "PostgreSQL: longest a statement may run, and about how long a dead connection can stall "
      "one, before it fails; 0 = no limit (migrations and purges are never limited)"),
    S("kv", "url", kv_url, "memory://",
      "shared state: memory:// (one node) or redis://host:port/db"),
    E("auth", "key_prefix", auth_key_prefix, "pcl", NULL, "API key prefix, [a-z]{2,8}"),
    I("auth", "bcrypt_cost", auth_bcrypt_cost, "12", 4, 31,
      "bcrypt cost for new key hashes (below 12 warns)"),
    I("auth", "verifier_threads", auth_verifier_threads, "0", 0, 64,
      "threads running bcrypt verifications; 0 = half the cores (at least 1), so attacks cannot "
      "starve the HTTP workers"),
    I("auth", "verifier_queue", auth_verifier_queue, "32", 1, 100000,
      "verifications that may wait; past this requests get 503 OVERLOADED"),
    I("auth", "failed_attempts_max", auth_failed_attempts_max, "20", 1, 1000000,
      "failed verifications per client address per window before 429"),
    I("auth", "failed_attempts_per_key_max", auth_failed_attempts_per_key_max, "20", 1, 1000000,
      "failed verifications per key id per window (from any address) before 429"),
    I("auth", "failed_attempts_window_s", auth_failed_attempts_window_s, "60", 1, 86400,
      "sliding window for failed_attempts_max and failed_attempts_per_key_max, in seconds"),
    I("auth", "stale_grace_seconds", auth_stale_grace_seconds, "30", 0, 3600,
      "while the store is unreachable, how long cached keys keep working"),
    S("security", "contact", security_contact, "mailto:security@example.com",
      "Contact: line of /.well-known/security.txt"),
    S("security", "master_key", security_master_key, "",
      "64 hex characters: key for secrets encrypted at rest (portcullis init generates it)"),
    E("log", "level", log_level, "info", "debug|info|warn|error", "least severe level logged"),
    E("log", "format", log_format, "json", "json|text", "log line format"),
    S("upstream", "url", upstream_url, "",
      "default upstream for every path Portcullis does not serve"),
    I("upstream", "timeout_ms", upstream_timeout_ms, "30000", 1, 3600000,
      "upstream response timeout"),
    I("upstream", "connect_timeout_ms", upstream_connect_timeout_ms, "5000", 1, 600000,
      "upstream connect timeout"),
    S("upstream", "ca_file", upstream_ca_file, "",
      "PEM CA bundle trusted for https:// upstreams; empty = the system's CAs"),
    I("upstream", "max_response_bytes", upstream_max_response_bytes, "268435456", 1024, 1073741824,
      "largest upstream response body (held in memory); a larger one is a 502"),
    I("rate_limit", "requests", rate_limit_requests, "100", 1, 1000000000,
      "default requests per organisation per per_seconds"),
    I("rate_limit", "per_seconds", rate_limit_per_seconds, "1", 1, 86400,
      "rate-limit window in seconds"),
    I("rate_limit", "burst", rate_limit_burst, "99", 0, 1000000000,
      "extra requests allowed at once after the first (requests - 1 gives \"requests per "
      "per_seconds\")"),
    I("idempotency", "ttl_seconds", idempotency_ttl_seconds, "86400", 1, 2592000,
      "how long idempotency records are kept"),
    I("idempotency", "max_response_bytes", idempotency_max_response_bytes, "1048576", 0,
      CONFIG_IDEMPOTENCY_BODY_MAX,
      "largest response body recorded for replay (at most the shared-state tier's 16 MiB)"),
    I("request_log", "queue_size", request_log_queue_size, "16384", 16, 1048576,
      "request-log rows waiting for the writer; when full, new rows are dropped and counted"),
    I("request_log", "batch_size", request_log_batch_size, "512", 1, 100000,
      "rows per write transaction"),
    I("retention", "request_log_days", retention_request_log_days, "30", 1, 3650,
      "request-log rows older than this are purged"),
    I("retention", "webhook_days", retention_webhook_days, "30", 1, 3650,
      "webhook message payloads and delivery attempts older than this are purged"),
    I("retention", "events_days", retention_events_days, "90", 1, 3650,
      "SDK events (and any advertising ids still held for them) received longer ago than this "
      "are purged"),
    I("retention", "usage_days", retention_usage_days, "400", 1, 3650,
      "usage rollups (GET /v1/usage, budgets, the key inventory) older than this are purged"),
    S("geoip", "database", geoip_database, "",
      "MaxMind-format country database for the region field"),
    L("ingest", "listen", ingest_listen, "",
      "host:port of the SDK event ingest listener (the TLS settings of [server]); empty = no "
      "ingest listener"),
    I("ingest", "max_connections", ingest_max_connections, "1024", 1, 1000000,
      "simultaneous client connections to the ingest listener across all workers"),
    I("ingest", "max_body_bytes", ingest_max_body_bytes, "512000", 1024, 10485760,
      "largest ingest request body (500 KiB, the Segment API's limit); larger requests get 413"),
    I("ingest", "queue_events", ingest_queue_events, "20000", 2500, 10000000,
      "SDK events accepted and waiting for the group commit (one batch of 2500 must fit); when "
      "full, ingest requests get 503 OVERLOADED"),
    I("ingest", "rate_limit", ingest_rate_limit, "0", 0, 1000000000,
      "requests per second per ingest key, as many at once; 0 = the organisation's rate "
      "limit"),
    S("ingest", "hash_paths", ingest_hash_paths, "",
      "JSON paths in SDK events (e.g. traits.first_name), space- or comma-separated, whose "
      "string values are hashed in place like an email (trim, lower-case, SHA-256 hex)"),
    L("console", "listen", console_listen, "",
      "host:port of the browser console's listener; plain HTTP only on a loopback address "
      "(development), else set tls_cert and tls_key; empty = no console"),
    S("console", "tls_cert", console_tls_cert, "",
      "PEM certificate chain of the console listener; set with tls_key to serve HTTPS"),
    S("console", "tls_key", console_tls_key, "", "PEM private key for [console] tls_cert"),
    S("console", "public_url", console_public_url, "",
      "scheme://host[:port] people open: mailed links, the allowed Origin, OIDC redirects; "
      "https unless plain HTTP on loopback (then empty = http://LISTEN)"),
    I("console", "session_idle_minutes", console_session_idle_minutes, "30", 1, 1440,
      "a console session unused this long ends"),
    I("console", "session_max_hours", console_session_max_hours, "12", 1, 720,
      "a console session ends this long after sign-in, used or not"),
    E("console", "allow_signup", console_allow_signup, "false", "true|false",
      "true: an address nobody invited may sign in and becomes a user with no membership"),
    E("console", "dev_print_links", console_dev_print_links, "false", "true|false",
      "development (make run): with no [mail] url, print sign-in mails on serve's standard "
      "output; only for a plain-HTTP loopback console, never with [mail] url set"),
    S("webhooks", "retry_schedule", webhooks_retry_schedule, "0s,5s,5m,30m,2h,5h,10h,10h",
      "delay before each delivery attempt (s, m, h suffixes), each with +/-20% jitter; after "
      "the last the message is failed for that endpoint"),
    I("webhooks", "timeout_s", webhooks_timeout_s, "15", 1, 30,
      "a delivery that has no 2xx answer within this is a failed attempt (timeout)"),
    I("webhooks", "disable_after_hours", webhooks_disable_after_hours, "120", 1, 8760,
      "an endpoint that failed every attempt for this long is disabled"),
    I("webhooks", "failing_after_hours", webhooks_failing_after_hours, "24", 1, 8760,
      "after this long of failing every attempt, webhook_endpoint.failing is sent"),
    S("webhooks", "allow_ranges", webhooks_allow_ranges, "",
      "comma-separated CIDR ranges receivers may resolve to although the egress guard refuses "
      "them (internal receivers; tests on 127.0.0.0/8)"),
    S("webhooks", "ca_file", webhooks_ca_file, "",
      "PEM CA bundle trusted for receivers, in place of the system's CAs"),
    I("webhooks", "max_in_flight", webhooks_max_in_flight, "512", 1, 100000,
      "deliveries in flight at once on a worker"),
    I("webhooks", "endpoint_concurrency", webhooks_endpoint_concurrency, "16", 1, 1000,
      "deliveries in flight at once to one endpoint"),
    I("webhooks", "lease_s", webhooks_lease_s, "60", 2, 3600,
      "how long a worker's claim on a delivery lasts; a crashed worker's claims are taken "
      "over after it"),
    S("capi", "base_url", capi_base_url, "https://graph.facebook.com",
      "the Meta Graph API the Conversions API forward posts to (https; [webhooks] allow_ranges "
      "and ca_file apply to it as to receivers)"),
    S("capi", "api_version", capi_api_version, "v21.0",
      "Graph API version in the forward's path: {base_url}/{api_version}/{pixel_id}/events"),
    I("capi", "timeout_s", capi_timeout_s, "30", 1, 120,
      "a forward that has no 2xx answer within this is a failed attempt (timeout)"),
    S("capi", "retry_schedule", capi_retry_schedule, "0s,30s,5m,30m,2h,6h",
      "delay before each attempt of a forwarded batch (s, m, h suffixes, +/-20% jitter); after "
      "the last the batch is failed and its held advertising ids deleted"),
    S("mail", "url", mail_url, "",
      "SMTP server for notices: smtp://host:port (STARTTLS) or smtps://host:port (implicit "
      "TLS); empty = no mail"),
    S("mail", "from", mail_from, "", "From: address of notice mails"),
    E("mail", "starttls", mail_starttls, "required", "required|optional|off",
      "STARTTLS on smtp:// URLs: off sends in clear text and warns at start-up"),
    S("mail", "username", mail_username, "", "SMTP AUTH user name; empty = no AUTH"),
    S("mail", "password_file", mail_password_file, "",
      "file holding the SMTP AUTH password (first line)"),
    S("mail", "ca_file", mail_ca_file, "",
      "PEM CA bundle trusted for the SMTP server; empty = the system's CAs"),
    S("secrets", "private_key_file", secrets_private_key_file, "secrets.key",
      "private keys that open column secrets (mode 0600; relative to the config file); only "
      "the background tier reads it"),
    S("secret_scanning", "github_keys_url", secret_scanning_github_keys_url,
      "https://api.github.com/meta/public_keys/secret_scanning",
      "GitHub's secret scanning signing keys (JSON public_keys), fetched by the background "
      "tier through the egress guard ([webhooks] allow_ranges, ca_file); https only"),
    E("secret_scanning", "action", secret_scanning_action, "kill", "kill|notify",
      "what a verified leak report of a live key does: kill the key (and notify) or only "
      "notify"),
    I("secret_scanning", "refresh_min_s", secret_scanning_refresh_min_s, "60", 1, 3600,
      "a report naming an unknown key id refetches the keys at most once per this many "
      "seconds (cluster-wide); the set is refetched hourly anyway"),
    E("worker", "enabled", worker_enabled, "true", "true|false",
      "run the background tier (webhook and mail delivery) as a child process of serve; false "
      "makes an API-only node"),
    L("worker", "listen", worker_listen, "",
      "`portcullis worker` alone: host:port serving /readyz and /metrics; empty = none"),
    S("worker", "node_name", worker_node_name, "",
      "this node's name in delivery claims (unique per node); empty = host name and listen "
      "port"),
};

#define N_SETTINGS (sizeof config_table / sizeof config_table[0])

static char **str_field(struct config *cfg, const struct setting *s)
{
	return (char **)((char *)cfg + s->offset);
}

static int64_t *int_field(struct config *cfg, const struct setting *s)
{
	return (int64_t *)((char *)cfg + s->offset);
}

static bool key_prefix_valid(const char *v)
{
	size_t n = strlen(v);
	if (n < 2 || n > 8)
		return false;
	for (size_t i = 0; i < n; i++)
		if (v[i] < 'a' || v[i] > 'z')
			return false;
	return true;
}

static bool proxy_list_valid(const char *v)
{
	char addrs[CONFIG_MAX_TRUSTED_PROXIES][48];
	return config_trusted_proxies(v, addrs) >= 0;
}

/*
 * The next item of a list separated by spaces and/or commas: *p moves past
 * it, *item and the return value give it; 0 at the end of the list.
 */
static size_t list_next(const char **p, const char **item)
{
	while (**p == ' ' || **p == ',')
		(*p)++;
	size_t len = strcspn(*p, ", ");
	*item = *p;
	*p += len;
	return len;
}

int config_trusted_proxies(const char *list, char out[CONFIG_MAX_TRUSTED_PROXIES][48])
{
	int n = 0;
	const char *rest = list, *p;
	size_t len;
	while ((len = list_next(&rest, &p)) > 0) {
		if (n == CONFIG_MAX_TRUSTED_PROXIES || len >= 48)
			return -1;
		char one[48];
		memcpy(one, p, len);
		one[len] = '\0';
		unsigned char bin[16];
		if (inet_pton(AF_INET, one, bin) != 1 && inet_pton(AF_INET6, one, bin) != 1)
			return -1;
		memcpy(out[n++], one, len + 1);
	}
	return n;
}

static bool hash_path_char(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       c == '_' || c == '-' || c == '$' || c == '.';
}

int config_hash_paths(const char *list, char out[CONFIG_MAX_HASH_PATHS][CONFIG_HASH_PATH_MAX])
{
	int n = 0;
	const char *rest = list, *p;
	size_t len;
	while ((len = list_next(&rest, &p)) > 0) {
		if (n == CONFIG_MAX_HASH_PATHS || len >= CONFIG_HASH_PATH_MAX || p[0] == '.' ||
		    p[len - 1] == '.')
			return -1;
		for (size_t i = 0; i < len; i++)
			if (!hash_path_char(p[i]) || (p[i] == '.' && p[i + 1] == '.'))
				return -1;
		memcpy(out[n], p, len);
		out[n++][len] = '\0';
	}
	return n;
}

static bool hex64(const char *v)
{
	uint8_t key[32];
	size_t n;
	bool ok = strlen(v) == 64 && hex_decode(v, 64, key, sizeof(key), &n) == 0;

	explicit_bzero(key, sizeof(key));
	return ok;
}

/* Validate and store one value; on error write a message (no location). */
static int set_value(struct config *cfg, const struct setting *s, const char *value, char *err,
                     size_t errcap)
{
	switch (s->type) {
	case T_INT: {
		int64_t v;
		if (parse_int64_z(value, s->min, s->max, &v) < 0) {
			snprintf(err, errcap,
			         "[%s] %s must be an integer from %lld to %lld, got \"%.64s\"",
			         s->section, s->name, (long long)s->min, (long long)s->max, value);
			return -1;
		}
		*int_field(cfg, s) = v;
		return 0;
	}
	case T_ENUM:
		if (s->choices) {
			bool ok = false;
			const char *p = s->choices;
			size_t vl = strlen(value);
			while (*p) {
				const char *bar = strchr(p, '|');
				size_t n = bar ? (size_t)(bar - p) : strlen(p);
				if (n == vl && strncmp(p, value, n) == 0)
					ok = true;
				p += n + (bar ? 1 : 0);
			}
			if (!ok) {
				snprintf(err, errcap, "[%s] %s must be one of %s, got \"%.64s\"",
				         s->section, s->name, s->choices, value);
				return -1;
			}
		} else if (strcmp(s->name, "key_prefix") == 0 && !key_prefix_valid(value)) {
			snprintf(err, errcap,
			         "[auth] key_prefix must be 2 to 8 letters a-z, got \"%.64s\"",
			         value);
			return -1;
		}
		break;
	case T_LISTEN: {
		char host[256];
		int port;
		if (value[0] == '\0' && s->def[0] == '\0')
			break; /* an optional listener, off */
		if (config_split_listen(value, host, sizeof host, &port) < 0) {
			snprintf(
			    err, errcap,
			    "[%s] %s must be host:port with a port from 0 to 65535, got \"%.64s\"",
			    s->section, s->name, value);
			return -1;
		}
		break;
	}
	case T_STRING:
		if (strcmp(s->name, "trusted_proxies") == 0 && !proxy_list_valid(value)) {
			snprintf(err, errcap,
			         "[server] trusted_proxies must be up to %d comma-separated IP "
			         "addresses, got \"%.64s\"",
			         CONFIG_MAX_TRUSTED_PROXIES, value);
			return -1;
		}
		if (strcmp(s->name, "hash_paths") == 0) {
			char paths[CONFIG_MAX_HASH_PATHS][CONFIG_HASH_PATH_MAX];
			if (config_hash_paths(value, paths) < 0) {
				snprintf(
				    err, errcap,
				    "[ingest] hash_paths must be up to %d space- or "
				    "comma-separated dotted paths (letters, digits, _ - $), got "
				    "\"%.64s\"",
				    CONFIG_MAX_HASH_PATHS, value);
				return -1;
			}
		}
		if (strcmp(s->name, "master_key") == 0 && value[0] && !hex64(value)) {
			snprintf(err, errcap, "[security] master_key must be 64 hex characters");
			return -1;
		}
		break;
	}
	char **f = str_field(cfg, s);
	free(*f);
	*f = xstrdup(value);
	return 0;
}

void config_defaults(struct config *cfg)
{
	memset(cfg, 0, sizeof *cfg);
	char err[256];
	for (size_t i = 0; i < N_SETTINGS; i++)
		if (set_value(cfg, &config_table[i], config_table[i].def, err, sizeof err) < 0)
			fatal(err); /* a bad default is a programming error */
}

static const struct setting *find_setting(const char *section, const char *name)
{
	for (size_t i = 0; i < N_SETTINGS; i++)
		if (strcmp(config_table[i].section, section) == 0 &&
		    strcmp(config_table[i].name, name) == 0)
			return &config_table[i];
	return NULL;
}

struct parse_state {
	struct config *cfg;
	char err[512];
	bool failed;
};

static int route_setting(struct parse_state *st, const char *route_name, const char *name,
                         const char *value)
{
	struct config *cfg = st->cfg;
	struct config_route *r = NULL;
	for (size_t i = 0; i < cfg->n_routes; i++)
		if (strcmp(cfg->routes[i].name, route_name) == 0)
			r = &cfg->routes[i];
	if (!r) {
		if (cfg->n_routes == CONFIG_MAX_ROUTES) {
			snprintf(st->err, sizeof st->err, "more than %d [route] sections",
			         CONFIG_MAX_ROUTES);
			return -1;
		}
		r = &cfg->routes[cfg->n_routes++];
		r->name = xstrdup(route_name);
	}
	if (strcmp(name, "prefix") == 0) {
		if (value[0] != '/') {
			snprintf(st->err, sizeof st->err, "[route %.64s] prefix must start with /",
			         route_name);
			return -1;
		}
		free(r->prefix);
		r->prefix = xstrdup(value);
	} else if (strcmp(name, "upstream") == 0) {
		if (!str_has_prefix(value, "http://") && !str_has_prefix(value, "https://")) {
			snprintf(st->err, sizeof st->err,
			         "[route %.64s] upstream must be an http:// or https:// URL",
			         route_name);
			return -1;
		}
		free(r->upstream);
		r->upstream = xstrdup(value);
	} else if (strcmp(name, "timeout_ms") == 0) {
		if (parse_int64_z(value, 1, 3600000, &r->timeout_ms) < 0) {
			snprintf(st->err, sizeof st->err,
			         "[route %.64s] timeout_ms must be an integer from 1 to 3600000",
			         route_name);
			return -1;
		}
	} else {
		snprintf(st->err, sizeof st->err, "unknown setting \"%.64s\" in [route %.64s]",
		         name, route_name);
		return -1;
	}
	return 0;
}

bool config_oidc_name_valid(const char *s, size_t n)
{
	if (n == 0 || n > CONFIG_OIDC_NAME_MAX)
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-'))
			return false;
	}
	return true;
}

/* A scope list: scope-tokens (RFC 6749 3.3: %x21 / %x23-5B / %x5D-7E) joined by single spaces, with
 * "openid". */
static bool oidc_scopes_valid(const char *v)
{
	bool openid = false;
	const char *p = v;

	while (*p) {
		size_t n = 0;
		while (p[n] && p[n] != ' ') {
			unsigned char c = (unsigned char)p[n];
			if (c < 0x21 || c > 0x7e || c == '"' || c == '\\')
				return false;
			n++;
		}
		if (n == 0)
			return false; /* a leading, trailing or double space */
		openid = openid || (n == 6 && memcmp(p, "openid", 6) == 0);
		p += n;
		if (*p == ' ' && !*++p)
			return false;
	}
	return openid;
}

static int oidc_setting(struct parse_state *st, const char *op, const char *name, const char *value)
{
	struct config *cfg = st->cfg;
	struct config_oidc *o = NULL;
	char **field = NULL;

	if (!config_oidc_name_valid(op, strlen(op))) {
		snprintf(st->err, sizeof st->err,
		         "[oidc.%.64s]: a provider name is 1 to %d of a-z, 0-9, _ and -", op,
		         CONFIG_OIDC_NAME_MAX);
		return -1;
	}
	for (size_t i = 0; i < cfg->n_oidc; i++)
		if (strcmp(cfg->oidc[i].name, op) == 0)
			o = &cfg->oidc[i];
	if (!o) {
		if (cfg->n_oidc == CONFIG_MAX_OIDC) {
			snprintf(st->err, sizeof st->err, "more than %d [oidc.NAME] sections",
			         CONFIG_MAX_OIDC);
			return -1;
		}
		o = &cfg->oidc[cfg->n_oidc++];
		o->name = xstrdup(op);
	}
	size_t n = strlen(value);
	if (strcmp(name, "issuer") == 0) {
		if (!str_has_prefix(value, "https://") || n == 8 || n > 2048 ||
		    strpbrk(value, "?# \t")) {
			snprintf(
			    st->err, sizeof st->err,
			    "[oidc.%s] issuer must be an https:// URL without query or fragment "
			    "(the provider's \"iss\" exactly)",
			    op);
			return -1;
		}
		field = &o->issuer;
	} else if (strcmp(name, "client_id") == 0) {
		bool ok = n > 0 && n <= 255;
		for (size_t i = 0; ok && i < n; i++)
			ok = (unsigned char)value[i] > 0x20 && (unsigned char)value[i] < 0x7f;
		if (!ok) {
			snprintf(st->err, sizeof st->err,
			         "[oidc.%s] client_id must be 1 to 255 visible ASCII characters",
			         op);
			return -1;
		}
		field = &o->client_id;
	} else if (strcmp(name, "client_secret_file") == 0) {
		if (n == 0) {
			snprintf(st->err, sizeof st->err, "[oidc.%s] client_secret_file is empty",
			         op);
			return -1;
		}
		field = &o->client_secret_file;
	} else if (strcmp(name, "scopes") == 0) {
		if (!oidc_scopes_valid(value)) {
			snprintf(st->err, sizeof st->err,
			         "[oidc.%s] scopes must be scope names separated by single spaces, "
			         "including openid",
			         op);
			return -1;
		}
		field = &o->scopes;
	} else if (strcmp(name, "ca_file") == 0) {
		field = &o->ca_file;
	} else if (strcmp(name, "allow_ranges") == 0) {
		field = &o->allow_ranges;
	} else if (strcmp(name, "verified_email_claim") == 0) {
		bool ok = n > 0 && n <= 64;
		for (size_t i = 0; ok && i < n; i++)
			ok = (value[i] >= 'a' && value[i] <= 'z') ||
			     (value[i] >= 'A' && value[i] <= 'Z') ||
			     (value[i] >= '0' && value[i] <= '9') || strchr("_.:-", value[i]);
		if (!ok) {
			snprintf(st->err, sizeof st->err,
			         "[oidc.%s] verified_email_claim must be a claim name: 1 to 64 of "
			         "A-Z, a-z, 0-9, _ . : -",
			         op);
			return -1;
		}
		field = &o->verified_email_claim;
	} else {
		snprintf(st->err, sizeof st->err, "unknown setting \"%.64s\" in [oidc.%s]", name,
		         op);
		return -1;
	}
	free(*field);
	*field = xstrdup(value);
	return 0;
}

static int on_ini_value(void *user, const char *section, const char *name, const char *value)
{
	struct parse_state *st = user;
	if (st->failed)
		return 0;
	int rc;
	if (strncmp(section, "route ", 6) == 0 && section[6]) {
		rc = route_setting(st, section + 6, name, value);
	} else if (strncmp(section, "oidc.", 5) == 0) {
		rc = oidc_setting(st, section + 5, name, value);
	} else {
		const struct setting *s = find_setting(section, name);
		if (!s) {
			snprintf(st->err, sizeof st->err, "unknown setting \"%.64s\" in [%.64s]",
			         name, section);
			rc = -1;
		} else {
			rc = set_value(st->cfg, s, value, st->err, sizeof st->err);
		}
	}
	if (rc < 0) {
		st->failed = true;
		return 0;
	}
	return 1;
}

/* PORTCULLIS_SERVER_LISTEN for [server] listen. */
static void env_name(const struct setting *s, char *out, size_t cap)
{
	snprintf(out, cap, "PORTCULLIS_%s_%s", s->section, s->name);
	for (char *p = out; *p; p++)
		*p = (char)toupper((unsigned char)*p);
}

bool config_true(const char *value)
{
	return value && strcmp(value, "true") == 0;
}

bool config_host_loopback(const char *host)
{
	struct in_addr a4;
	struct in6_addr a6;
	if (strcmp(host, "localhost") == 0)
		return true;
	if (inet_pton(AF_INET, host, &a4) == 1)
		return (ntohl(a4.s_addr) >> 24) == 127;
	return inet_pton(AF_INET6, host, &a6) == 1 && IN6_IS_ADDR_LOOPBACK(&a6);
}

/*
 * [console]: plain HTTP only on loopback; tls_cert and tls_key together;
 * public_url scheme://host[:port] (https unless plain on loopback, where it
 * defaults to http://LISTEN), kept without a trailing slash and lower-case,
 * as browsers send Origin; dev_print_links only for a plain loopback console.
 */
static int console_check(struct config *cfg, const char *path, char *err, size_t errcap)
{
	const char *where = path ? path : "config";
	if (!cfg->console_tls_cert[0] != !cfg->console_tls_key[0]) {
		snprintf(err, errcap, "%s: [console] tls_cert and tls_key must be set together",
		         where);
		return -1;
	}
	if (!cfg->console_listen[0])
		return 0;
	char host[256];
	int port;
	config_split_listen(cfg->console_listen, host, sizeof host, &port);
	bool plain = !cfg->console_tls_cert[0];
	bool dev = plain && config_host_loopback(host);
	if (plain && !dev) {
		snprintf(
		    err, errcap,
		    "%s: [console] listen %.64s is not a loopback address: plain HTTP is only for "
		    "development on loopback; set [console] tls_cert and tls_key",
		    where, cfg->console_listen);
		return -1;
	}
	if (config_true(cfg->console_dev_print_links) && !dev) {
		snprintf(
		    err, errcap,
		    "%s: [console] dev_print_links is only for a plain-HTTP console on loopback",
		    where);
		return -1;
	}
	char *u = cfg->console_public_url;
	if (!u[0]) {
		if (!dev) {
			snprintf(err, errcap, "%s: [console] public_url is required with TLS",
			         where);
			return -1;
		}
		char def[300];
		snprintf(def, sizeof def, "http://%s", cfg->console_listen);
		free(cfg->console_public_url);
		u = cfg->console_public_url = xstrdup(def);
	}
	size_t n = strlen(u);
	if (n > 1 && u[n - 1] == '/')
		u[--n] = '\0';
	for (size_t i = 0; i < n; i++)
		u[i] = (char)tolower((unsigned char)u[i]);
	const char *rest = str_has_prefix(u, "https://")  ? u + 8
	                   : str_has_prefix(u, "http://") ? u + 7
	                                                  : NULL;
	bool ok = rest && rest[0] && strcspn(rest, "/?#@ \t") == strlen(rest) && n < 256;
	if (ok && rest == u + 7 && !dev)
		ok = false;
	if (!ok) {
		snprintf(err, errcap,
		         "%s: [console] public_url must be https://host[:port] (http:// only for a "
		         "plain-HTTP console on loopback), without a path, got \"%.64s\"",
		         where, u);
		return -1;
	}
	return 0;
}

int config_load(struct config *cfg, const char *path, char *err, size_t errcap)
{
	config_defaults(cfg);
	if (path) {
		cfg->path = xstrdup(path);
		FILE *f = fopen(path, "r");
		if (!f) {
			snprintf(err, errcap, "%s: cannot open: %m", path);
			return -1;
		}
		struct parse_state st = {.cfg = cfg};
		int line = ini_parse_file(f, on_ini_value, &st);
		fclose(f);
		if (line != 0) {
			snprintf(err, errcap, "%s:%d: %s", path, line,
			         st.failed ? st.err : "syntax error");
			return -1;
		}
	}
	for (size_t i = 0; i < N_SETTINGS; i++) {
		char name[128];
		env_name(&config_table[i], name, sizeof name);
		const char *v = getenv(name);
		if (!v)
			continue;
		char msg[400];
		if (set_value(cfg, &config_table[i], v, msg, sizeof msg) < 0) {
			snprintf(err, errcap, "%s: %s", name, msg);
			return -1;
		}
	}
	for (size_t i = 0; i < cfg->n_routes; i++) {
		if (!cfg->routes[i].prefix || !cfg->routes[i].upstream) {
			snprintf(err, errcap, "%s: [route %s] needs both prefix and upstream",
			         path ? path : "config", cfg->routes[i].name);
			return -1;
		}
	}
	for (size_t i = 0; i < cfg->n_oidc; i++) {
		struct config_oidc *o = &cfg->oidc[i];
		if (!o->issuer || !o->client_id || !o->client_secret_file) {
			snprintf(err, errcap,
			         "%s: [oidc.%s] needs issuer, client_id and client_secret_file",
			         path ? path : "config", o->name);
			return -1;
		}
		if (!o->scopes)
			o->scopes = xstrdup("openid email profile");
		if (!o->ca_file)
			o->ca_file = xstrdup("");
		if (!o->allow_ranges)
			o->allow_ranges = xstrdup("");
		if (!o->verified_email_claim)
			o->verified_email_claim = xstrdup("email_verified");
	}
	if (cfg->upstream_url[0] && !str_has_prefix(cfg->upstream_url, "http://") &&
	    !str_has_prefix(cfg->upstream_url, "https://")) {
		snprintf(err, errcap, "%s: [upstream] url must be an http:// or https:// URL",
		         path ? path : "config");
		return -1;
	}
	/* The same bounds as kv/gcra.h: an interval of at least 1 us, a window under 2^52 us.
	 */
	int64_t interval_us = cfg->rate_limit_per_seconds * 1000000 / cfg->rate_limit_requests;
	if (interval_us < 1 || (cfg->rate_limit_burst + 1) > (INT64_C(1) << 52) / interval_us) {
		snprintf(err, errcap,
		         "%s: [rate_limit] requests per per_seconds must leave at least one "
		         "microsecond per request, and (burst + 1) intervals at most 2^52 us",
		         path ? path : "config");
		return -1;
	}
	if (cfg->server_redirect_listen[0] && !cfg->server_tls_cert[0]) {
		snprintf(err, errcap, "%s: [server] redirect_listen needs tls_cert and tls_key",
		         path ? path : "config");
		return -1;
	}
	if (console_check(cfg, path, err, errcap) < 0)
		return -1;
	if (!cfg->server_tls_cert[0] != !cfg->server_tls_key[0]) {
		snprintf(err, errcap, "%s: [server] tls_cert and tls_key must be set together",
		         path ? path : "config");
		return -1;
	}
	return 0;
}

void config_free(struct config *cfg)
{
	for (size_t i = 0; i < N_SETTINGS; i++) {
		if (config_table[i].type != T_INT) {
			char **f = str_field(cfg, &config_table[i]);
			if (strcmp(config_table[i].name, "master_key") == 0 && *f)
				explicit_bzero(*f, strlen(*f));
			free(*f);
			*f = NULL;
		}
	}
	for (size_t i = 0; i < cfg->n_routes; i++) {
		free(cfg->routes[i].name);
		free(cfg->routes[i].prefix);
		free(cfg->routes[i].upstream);
	}
	cfg->n_routes = 0;
	for (size_t i = 0; i < cfg->n_oidc; i++) {
		struct config_oidc *o = &cfg->oidc[i];
		char **f[] = {&o->name,   &o->issuer,  &o->client_id,    &o->client_secret_file,
		              &o->scopes, &o->ca_file, &o->allow_ranges, &o->verified_email_claim};
		for (size_t j = 0; j < sizeof(f) / sizeof(f[0]); j++) {
			free(*f[j]);
			*f[j] = NULL;
		}
	}
	cfg->n_oidc = 0;
	free(cfg->path);
	cfg->path = NULL;
}

void config_write_example(FILE *out)
{
	fputs("# Portcullis configuration: every setting with its default.\n"
	      "# Environment variables PORTCULLIS_<SECTION>_<NAME> override this file.\n",
	      out);
	const char *section = "";
	for (size_t i = 0; i < N_SETTINGS; i++) {
		const struct setting *s = &config_table[i];
		if (strcmp(section, s->section) != 0) {
			fprintf(out, "\n[%s]\n", s->section);
			section = s->section;
		}
		fprintf(out, "# %s", s->help);
		if (s->type == T_INT)
			fprintf(out, " (%lld to %lld)", (long long)s->min, (long long)s->max);
		else if (s->type == T_ENUM && s->choices)
			fprintf(out, " (%s)", s->choices);
		fprintf(out, "\n;%s = %s\n", s->name, s->def);
	}
	fputs("\n# Routes: requests whose path starts with prefix go to upstream (longest prefix\n"
	      "# wins); everything else goes to [upstream] url.\n"
	      ";[route billing]\n;prefix = /billing/\n;upstream = "
	      "http://127.0.0.1:9001\n;timeout_ms = 5000\n"
	      "\n# OpenID Connect providers for console login (docs/console.md): the sign-in page\n"
	      "# shows one button per section. issuer, client_id and client_secret_file are\n"
	      "# required; scopes must include openid; ca_file replaces the system's CAs;\n"
	      "# allow_ranges lets the provider resolve to private addresses (CIDR list);\n"
	      "# verified_email_claim names the claim whose true marks the address verified\n"
	      "# (default email_verified; Microsoft Entra ID: xms_edov).\n"
	      ";[oidc.google]\n;issuer = https://accounts.google.com\n"
	      ";client_id = 1234.apps.googleusercontent.com\n"
	      ";client_secret_file = oidc-google.secret\n"
	      ";scopes = openid email profile\n;ca_file =\n;allow_ranges =\n"
	      ";verified_email_claim = email_verified\n",
	      out);
}

int config_worker_count(const struct config *cfg)
{
	if (cfg->server_workers > 0)
		return (int)cfg->server_workers;
	long n = sysconf(_SC_NPROCESSORS_ONLN);
	return n > 0 ? (int)n : 1;
}

bool config_worker_enabled(const struct config *cfg)
{
	return !cfg->worker_enabled || strcmp(cfg->worker_enabled, "true") == 0;
}

char *config_path_of(const struct config *cfg, const char *value)
{
	const char *slash = cfg->path ? strrchr(cfg->path, '/') : NULL;

	if (!value[0] || value[0] == '/' || !slash)
		return xstrdup(value);
	size_t dl = (size_t)(slash - cfg->path) + 1;
	char *out = xmalloc(dl + strlen(value) + 1);
	memcpy(out, cfg->path, dl);
	memcpy(out + dl, value, strlen(value) + 1);
	return out;
}

int config_read_secret(const struct config *cfg, const char *setting, const char *value, char *out,
                       size_t cap, char *err, size_t errcap)
{
	char *path = config_path_of(cfg, value);
	FILE *f = fopen(path, "rb");
	int rc = -1;

	out[0] = '\0';
	if (!f) {
		snprintf(err, errcap, "%s: cannot read %s: %s", setting, path, strerror(errno));
		goto out;
	}
	size_t n = fread(out, 1, cap - 1, f);
	bool more = fgetc(f) != EOF;
	fclose(f);
	out[n] = '\0';
	char *nl = strpbrk(out, "\r\n");
	if (nl) {
		*nl = '\0';
	} else if (more) {
		explicit_bzero(out, cap);
		snprintf(err, errcap, "%s: the first line of %s is too long", setting, path);
		goto out;
	}
	rc = 0;
out:
	free(path);
	return rc;
}

int config_split_listen(const char *listen, char *host, size_t cap, int *port)
{
	const char *colon;
	const char *h = listen;
	size_t hl;
	if (listen[0] == '[') {
		const char *end = strchr(listen, ']');
		if (!end || end[1] != ':')
			return -1;
		h = listen + 1;
		hl = (size_t)(end - h);
		colon = end + 1;
	} else {
		colon = strrchr(listen, ':');
		if (!colon)
			return -1;
		hl = (size_t)(colon - listen);
	}
	if (hl == 0 || hl >= cap)
		return -1;
	int64_t p;
	if (parse_int64_z(colon + 1, 0, 65535, &p) < 0)
		return -1;
	memcpy(host, h, hl);
	host[hl] = '\0';
	*port = (int)p;
	return 0;
}
