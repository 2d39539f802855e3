/*
 * config.h: typed, range-checked settings from an INI file plus
 * PORTCULLIS_<SECTION>_<NAME> environment overrides. One table in config.c
 * holds every setting (section, name, type, default, range, help), like
 * Redis's static_configs[]; `portcullis config example` prints it as the
 * commented example file.
 */
#ifndef PORTCULLIS_CORE_CONFIG_H
#define PORTCULLIS_CORE_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define CONFIG_MAX_ROUTES 64

/** A [route NAME] section: requests whose path starts with prefix go to upstream. */
struct config_route {
	char *name;
	char *prefix;
	char *upstream;
	int64_t timeout_ms; /* 0: [upstream] timeout_ms */
};

#define CONFIG_MAX_OIDC 8
/** Longest [oidc.NAME] name: 1 to 32 of a-z, 0-9, '_', '-' (it is a path segment and a cookie
 * part). */
#define CONFIG_OIDC_NAME_MAX 32

/**
 * An [oidc.NAME] section: an OpenID provider for console login
 * (docs/console.md). issuer, client_id and client_secret_file are required.
 */
struct config_oidc {
	char *name;
	char *issuer;    /* https URL without query or fragment, exactly as the provider's "iss" */
	char *client_id; /* 1 to 255 visible ASCII characters */
	char *client_secret_file; /* the file holding the client secret (read at start) */
	char *scopes;       /* space-separated, with "openid"; default "openid email profile" */
	char *ca_file;      /* "" : the system's CAs */
	char *allow_ranges; /* "" : only public addresses (the egress guard's CIDR list) */
	/* The claim whose JSON true marks the email verified: 1 to 64 of A-Z, a-z, 0-9, _ . : -;
	 * default "email_verified" (Microsoft Entra ID: "xms_edov"). */
	char *verified_email_claim;
};

struct config {
	char *path; /* file the settings came from (NULL: defaults only) */

	/* [server] */
	char *server_listen;
	int64_t server_workers;
	int64_t server_max_header_bytes;
	int64_t server_max_body_bytes;
	int64_t server_connection_timeout_s;
	int64_t server_max_connections;
	int64_t server_max_connections_per_ip;
	int64_t server_header_timeout_s;
	int64_t server_shutdown_grace_s;
	int64_t server_http2_max_concurrent_streams;
	int64_t server_http2_window_bytes;
	char *server_h2c; /* "true" | "false" */
	char *server_tls_cert;
	char *server_tls_key;
	char *server_redirect_listen;
	char *server_trusted_proxies;

	/* [store], [kv] */
	char *store_url;
	int64_t store_pool_size;
	int64_t store_statement_timeout_ms;
	char *kv_url;

	/* [auth] */
	char *auth_key_prefix;
	int64_t auth_bcrypt_cost;
	int64_t auth_verifier_threads;
	int64_t auth_verifier_queue;
	int64_t auth_failed_attempts_max;
	int64_t auth_failed_attempts_per_key_max;
	int64_t auth_failed_attempts_window_s;
	int64_t auth_stale_grace_seconds;

	/* [security] */
	char *security_contact;
	char *security_master_key;

	/* [log] */
	char *log_level;
	char *log_format;

	/* [upstream] */
	char *upstream_url;
	int64_t upstream_timeout_ms;
	int64_t upstream_connect_timeout_ms;
	char *upstream_ca_file;
	int64_t upstream_max_response_bytes;

	/* [rate_limit] */
	int64_t rate_limit_requests;
	int64_t rate_limit_per_seconds;
	int64_t rate_limit_burst;

	/* [idempotency] */
	int64_t idempotency_ttl_seconds;
	int64_t idempotency_max_response_bytes;

	/* [request_log], [retention], [geoip] */
	int64_t request_log_queue_size;
	int64_t request_log_batch_size;
	int64_t retention_request_log_days;
	int64_t retention_webhook_days;
	int64_t retention_events_days;
	int64_t retention_usage_days;
	char *geoip_database;

	/* [ingest] */
	char *ingest_hash_paths;
	char *ingest_listen;
	int64_t ingest_max_connections;
	int64_t ingest_max_body_bytes;
	int64_t ingest_rate_limit;
	int64_t ingest_queue_events;

	/* [console] */
	char *console_listen;
	char *console_tls_cert;
	char *console_tls_key;
	char *console_public_url; /* scheme://host[:port], no trailing slash (config_load) */
	int64_t console_session_idle_minutes;
	int64_t console_session_max_hours;
	char *console_allow_signup;    /* "true" | "false" */
	char *console_dev_print_links; /* "true" | "false" */

	/* [webhooks] */
	char *webhooks_retry_schedule;
	int64_t webhooks_timeout_s;
	int64_t webhooks_disable_after_hours;
	int64_t webhooks_failing_after_hours;
	char *webhooks_allow_ranges;
	char *webhooks_ca_file;
	int64_t webhooks_max_in_flight;
	int64_t webhooks_endpoint_concurrency;
	int64_t webhooks_lease_s;

	/* [capi] */
	char *capi_base_url;
	char *capi_api_version;
	int64_t capi_timeout_s;
	char *capi_retry_schedule;

	/* [mail] */
	char *mail_url;
	char *mail_from;
	char *mail_starttls;
	char *mail_username;
	char *mail_password_file;
	char *mail_ca_file;

	/* [secrets] */
	char *secrets_private_key_file;

	/* [secret_scanning] */
	char *secret_scanning_github_keys_url;
	char *secret_scanning_action; /* kill | notify */
	int64_t secret_scanning_refresh_min_s;

	/* [worker] */
	char *worker_enabled; /* "true" | "false": config_worker_enabled */
	char *worker_listen;
	char *worker_node_name;

	struct config_route routes[CONFIG_MAX_ROUTES];
	size_t n_routes;

	struct config_oidc oidc[CONFIG_MAX_OIDC];
	size_t n_oidc;
};

/** True when the n bytes at s are a valid [oidc.NAME] name (CONFIG_OIDC_NAME_MAX). */
bool config_oidc_name_valid(const char *s, size_t n);

#define CONFIG_MAX_TRUSTED_PROXIES 16

#define CONFIG_MAX_HASH_PATHS 32
#define CONFIG_HASH_PATH_MAX  128 /* bytes of one path, with its NUL */

/**
 * Parse an [ingest] hash_paths list (dotted JSON paths such as
 * "traits.first_name", separated by spaces and/or commas) into out; the
 * number of paths, or -1 for anything but up to CONFIG_MAX_HASH_PATHS
 * paths of at most CONFIG_HASH_PATH_MAX - 1 bytes, each one or more
 * non-empty members of letters, digits, '_', '-' and '$' joined by '.'.
 */
int config_hash_paths(const char *list, char out[CONFIG_MAX_HASH_PATHS][CONFIG_HASH_PATH_MAX]);

/**
 * The largest [idempotency] max_response_bytes: the kv tier's cap on a
 * stored body (KV_IDEM_BODY_MAX, which kv.c asserts equal), so a response
 * the setting allows is one the tier can keep.
 */
#define CONFIG_IDEMPOTENCY_BODY_MAX (16 * 1024 * 1024)

/**
 * Parse a [server] trusted_proxies list into out; the number of addresses,
 * or -1 for anything but up to CONFIG_MAX_TRUSTED_PROXIES IP addresses.
 */
int config_trusted_proxies(const char *list, char out[CONFIG_MAX_TRUSTED_PROXIES][48]);

/** Fill cfg with every default. */
void config_defaults(struct config *cfg);

/**
 * Load defaults, then path (may be NULL), then environment overrides.
 * On error returns -1 and writes "FILE:LINE: message" (or
 * "PORTCULLIS_X: message") into err.
 */
int config_load(struct config *cfg, const char *path, char *err, size_t errcap);

/** Free every string in cfg. */
void config_free(struct config *cfg);

/** Print every setting with its default and help, as an INI file. */
void config_write_example(FILE *out);

/** Number of worker threads to run: server_workers, or one per core when 0. */
int config_worker_count(const struct config *cfg);

/** True when a "true|false" setting's value is "true". */
bool config_true(const char *value);

/** True when host (of a listen address) is a loopback address or "localhost". */
bool config_host_loopback(const char *host);

/** [worker] enabled: serve runs the background tier as its child. */
bool config_worker_enabled(const struct config *cfg);

/**
 * A file setting's path as a malloc'd string (free()): value itself when it is
 * absolute, else value relative to the directory of the config file cfg came
 * from (the working directory when it came from none). "" gives "".
 */
char *config_path_of(const struct config *cfg, const char *value);

/**
 * Read the first line of the secret file value (a setting's value, made a
 * path by config_path_of) into out (cap bytes, NUL-terminated, without the
 * line end). 0, or -1 with "SETTING: cannot read PATH: why" or "SETTING:
 * the first line of PATH is too long" in err; out is then wiped. For
 * password and client secret files: the secret is never in a message.
 */
int config_read_secret(const struct config *cfg, const char *setting, const char *value, char *out,
                       size_t cap, char *err, size_t errcap);

/** Split "host:port" / "[v6]:port" into host (cap bytes) and port. 0 or -1. */
int config_split_listen(const char *listen, char *host, size_t cap, int *port);

#endif
