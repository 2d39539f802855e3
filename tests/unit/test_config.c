/*
 * test_config.c: unit tests for src/core/config.c: every default as
 * docs/configuration.md documents it, values from a file, range and type
 * errors reported as FILE:LINE: message, unknown settings, [route NAME]
 * sections, PORTCULLIS_<SECTION>_<NAME> overrides (and their errors naming
 * the variable), the example file loading back to the defaults, and the
 * listen-address splitter. Config files are written to mkstemp files.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/config.h"

extern char **environ;

struct tmpconf {
	char path[64];
};

/* Write text to a new temporary file. */
static void write_conf(struct tmpconf *t, const char *text)
{
	snprintf(t->path, sizeof t->path, "/tmp/pcl-test-config-XXXXXX");
	int fd = mkstemp(t->path);
	assert_true(fd >= 0);
	size_t n = strlen(text);
	assert_int_equal(write(fd, text, n), (ssize_t)n);
	close(fd);
}

/* Load text as a config file; returns config_load's result, err filled. */
static int load_text(struct config *cfg, const char *text, struct tmpconf *t, char *err, size_t cap)
{
	write_conf(t, text);
	err[0] = '\0';
	int rc = config_load(cfg, t->path, err, cap);
	return rc;
}

/* Assert that loading text fails with "PATH:LINE: " followed by want_msg. */
static void expect_file_error(const char *text, int line, const char *want_msg)
{
	struct tmpconf t;
	struct config cfg;
	char err[600], want[700];
	assert_int_equal(load_text(&cfg, text, &t, err, sizeof err), -1);
	snprintf(want, sizeof want, "%s:%d: %s", t.path, line, want_msg);
	if (strcmp(err, want) != 0)
		fail_msg("got  \"%s\"\nwant \"%s\"", err, want);
	config_free(&cfg);
	unlink(t.path);
}

/* Clear PORTCULLIS_* variables (except the test's own) so overrides are ours only. */
static int clear_env(void **state)
{
	(void)state;
	for (;;) {
		char name[256] = "";
		for (char **e = environ; e && *e; e++) {
			if (strncmp(*e, "PORTCULLIS_", 11) == 0 &&
			    strncmp(*e, "PORTCULLIS_VECTORS=", 19) != 0) {
				size_t n = strcspn(*e, "=");
				if (n < sizeof name) {
					memcpy(name, *e, n);
					name[n] = '\0';
				}
				break;
			}
		}
		if (!name[0])
			return 0;
		unsetenv(name);
	}
}

static void test_defaults(void **state)
{
	(void)state;
	struct config c;
	config_defaults(&c);
	assert_null(c.path);
	assert_string_equal(c.server_listen, "127.0.0.1:8080");
	assert_int_equal(c.server_workers, 0);
	assert_int_equal(c.server_max_header_bytes, 16384);
	assert_int_equal(c.server_max_body_bytes, 10485760);
	assert_int_equal(c.server_connection_timeout_s, 30);
	assert_int_equal(c.server_max_connections, 1024);
	assert_int_equal(c.server_max_connections_per_ip, 64);
	assert_int_equal(c.server_header_timeout_s, 10);
	assert_int_equal(c.server_shutdown_grace_s, 10);
	assert_string_equal(c.server_tls_cert, "");
	assert_string_equal(c.server_tls_key, "");
	assert_string_equal(c.server_redirect_listen, "");
	assert_string_equal(c.store_url, "sqlite://portcullis.db");
	assert_int_equal(c.store_pool_size, 8);
	assert_string_equal(c.kv_url, "memory://");
	assert_string_equal(c.auth_key_prefix, "pcl");
	assert_int_equal(c.auth_bcrypt_cost, 12);
	assert_int_equal(c.auth_verifier_threads, 0);
	assert_int_equal(c.auth_verifier_queue, 32);
	assert_int_equal(c.auth_failed_attempts_max, 20);
	assert_int_equal(c.auth_failed_attempts_per_key_max, 20);
	assert_int_equal(c.auth_failed_attempts_window_s, 60);
	assert_int_equal(c.auth_stale_grace_seconds, 30);
	assert_string_equal(c.security_contact, "mailto:security@example.com");
	assert_string_equal(c.security_master_key, "");
	assert_string_equal(c.log_level, "info");
	assert_string_equal(c.log_format, "json");
	assert_string_equal(c.upstream_url, "");
	assert_int_equal(c.upstream_timeout_ms, 30000);
	assert_int_equal(c.upstream_connect_timeout_ms, 5000);
	assert_int_equal(c.rate_limit_requests, 100);
	assert_int_equal(c.rate_limit_per_seconds, 1);
	assert_int_equal(c.rate_limit_burst, 99);
	assert_int_equal(c.idempotency_ttl_seconds, 86400);
	assert_int_equal(c.idempotency_max_response_bytes, 1048576);
	assert_int_equal(c.request_log_queue_size, 16384);
	assert_int_equal(c.request_log_batch_size, 512);
	assert_int_equal(c.retention_request_log_days, 30);
	assert_string_equal(c.geoip_database, "");
	assert_int_equal(c.n_routes, 0);
	config_free(&c);
}

static void test_load_null_path_is_defaults(void **state)
{
	(void)state;
	struct config c;
	char err[256] = "";
	assert_int_equal(config_load(&c, NULL, err, sizeof err), 0);
	assert_null(c.path);
	assert_int_equal(c.server_max_header_bytes, 16384);
	assert_string_equal(c.server_listen, "127.0.0.1:8080");
	config_free(&c);
}

static void test_load_values(void **state)
{
	(void)state;
	struct tmpconf t;
	struct config c;
	char err[600];
	int rc = load_text(&c,
	                   "# comment\n"
	                   "[server]\n"
	                   "listen = [::1]:9443\n"
	                   "max_header_bytes = 1024\n"
	                   "max_body_bytes = 0\n"
	                   "workers = 3\n"
	                   "tls_cert = /etc/c.pem\n"
	                   "tls_key = /etc/k.pem\n"
	                   "\n"
	                   "[auth]\n"
	                   "key_prefix = acme\n"
	                   "bcrypt_cost = 31\n"
	                   "[log]\n"
	                   "level = debug\n"
	                   "format = text\n"
	                   "[upstream]\n"
	                   "url = https://api.internal:8443\n"
	                   "[security]\n"
	                   "contact = https://example.com/security\n",
	                   &t, err, sizeof err);
	if (rc != 0)
		fail_msg("%s", err);
	assert_string_equal(c.path, t.path);
	assert_string_equal(c.server_listen, "[::1]:9443");
	assert_int_equal(c.server_max_header_bytes, 1024);
	assert_int_equal(c.server_max_body_bytes, 0);
	assert_int_equal(c.server_workers, 3);
	assert_int_equal(config_worker_count(&c), 3);
	assert_string_equal(c.server_tls_cert, "/etc/c.pem");
	assert_string_equal(c.auth_key_prefix, "acme");
	assert_int_equal(c.auth_bcrypt_cost, 31);
	assert_string_equal(c.log_level, "debug");
	assert_string_equal(c.log_format, "text");
	assert_string_equal(c.upstream_url, "https://api.internal:8443");
	assert_string_equal(c.security_contact, "https://example.com/security");
	/* untouched settings keep their defaults */
	assert_int_equal(c.server_connection_timeout_s, 30);
	assert_int_equal(c.rate_limit_requests, 100);
	config_free(&c);
	unlink(t.path);
}

static void test_range_errors_name_file_and_line(void **state)
{
	(void)state;
	expect_file_error("[server]\nlisten = 127.0.0.1:1\nmax_header_bytes = 1023\n", 3,
	                  "[server] max_header_bytes must be an integer from 1024 to 1048576, got "
	                  "\"1023\"");
	expect_file_error("[server]\nmax_header_bytes = 1048577\n", 2,
	                  "[server] max_header_bytes must be an integer from 1024 to 1048576, got "
	                  "\"1048577\"");
	expect_file_error("\n\n[auth]\n\nbcrypt_cost = 3\n", 5,
	                  "[auth] bcrypt_cost must be an integer from 4 to 31, got \"3\"");
	expect_file_error("[server]\nworkers = 2x\n", 2,
	                  "[server] workers must be an integer from 0 to 256, got \"2x\"");
	expect_file_error("[server]\nworkers = \n", 2,
	                  "[server] workers must be an integer from 0 to 256, got \"\"");
	expect_file_error("[server]\nworkers = -1\n", 2,
	                  "[server] workers must be an integer from 0 to 256, got \"-1\"");
	expect_file_error("[server]\nmax_body_bytes = 99999999999999999999\n", 2,
	                  "[server] max_body_bytes must be an integer from 0 to 1073741824, got "
	                  "\"99999999999999999999\"");
	expect_file_error("[log]\nlevel = verbose\n", 2,
	                  "[log] level must be one of debug|info|warn|error, got \"verbose\"");
	expect_file_error("[auth]\nkey_prefix = PCL\n", 2,
	                  "[auth] key_prefix must be 2 to 8 letters a-z, got \"PCL\"");
	expect_file_error("[auth]\nkey_prefix = abcdefghi\n", 2,
	                  "[auth] key_prefix must be 2 to 8 letters a-z, got \"abcdefghi\"");
	expect_file_error("[server]\nlisten = localhost\n", 2,
	                  "[server] listen must be host:port with a port from 0 to 65535, got "
	                  "\"localhost\"");
	expect_file_error("[server]\nlisten = 127.0.0.1:65536\n", 2,
	                  "[server] listen must be host:port with a port from 0 to 65535, got "
	                  "\"127.0.0.1:65536\"");
}

static void test_master_key_must_be_64_hex(void **state)
{
	struct tmpconf t;
	struct config c;
	char err[600];
	(void)state;

	assert_int_equal(
	    load_text(&c,
	              "[security]\nmaster_key = "
	              "00112233445566778899AABBCCDDEEFF00112233445566778899aabbccddeeff\n",
	              &t, err, sizeof err),
	    0);
	config_free(&c);
	unlink(t.path);
	expect_file_error("[security]\nmaster_key = "
	                  "00112233445566778899aabbccddeeff00112233445566778899aabbccddeef\n",
	                  2, "[security] master_key must be 64 hex characters");
	expect_file_error("[security]\nmaster_key = "
	                  "00112233445566778899aabbccddeeff00112233445566778899aabbccddeefg\n",
	                  2, "[security] master_key must be 64 hex characters");
	expect_file_error("[security]\nmaster_key = "
	                  "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff0\n",
	                  2, "[security] master_key must be 64 hex characters");
}

static void test_hash_paths(void **state)
{
	char paths[CONFIG_MAX_HASH_PATHS][CONFIG_HASH_PATH_MAX], list[4200];
	struct tmpconf t;
	struct config c;
	char err[600];
	(void)state;

	assert_int_equal(config_hash_paths("", paths), 0);
	assert_int_equal(config_hash_paths(" , ", paths), 0);
	assert_int_equal(
	    config_hash_paths("traits.first_name, properties.address.city context.$x-y", paths), 3);
	assert_string_equal(paths[0], "traits.first_name");
	assert_string_equal(paths[1], "properties.address.city");
	assert_string_equal(paths[2], "context.$x-y");
	assert_int_equal(config_hash_paths("email", paths), 1);
	const char *bad[] = {".traits", "traits.", "traits..x", "traits.first name!",
	                     "a\"b",    "traits/x"};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
		if (config_hash_paths(bad[i], paths) != -1)
			fail_msg("accepted \"%s\"", bad[i]);
	/* Up to 32 paths of up to 127 bytes. */
	list[0] = '\0';
	for (int i = 0; i < CONFIG_MAX_HASH_PATHS; i++)
		snprintf(list + strlen(list), sizeof list - strlen(list), "p%d,", i);
	assert_int_equal(config_hash_paths(list, paths), CONFIG_MAX_HASH_PATHS);
	snprintf(list + strlen(list), sizeof list - strlen(list), "one.more");
	assert_int_equal(config_hash_paths(list, paths), -1);
	memset(list, 'a', CONFIG_HASH_PATH_MAX - 1);
	list[CONFIG_HASH_PATH_MAX - 1] = '\0';
	assert_int_equal(config_hash_paths(list, paths), 1);
	list[CONFIG_HASH_PATH_MAX - 1] = 'a';
	list[CONFIG_HASH_PATH_MAX] = '\0';
	assert_int_equal(config_hash_paths(list, paths), -1);

	assert_int_equal(load_text(&c,
	                           "[ingest]\nhash_paths = traits.first_name traits.last_name\n",
	                           &t, err, sizeof err),
	                 0);
	assert_string_equal(c.ingest_hash_paths, "traits.first_name traits.last_name");
	config_free(&c);
	unlink(t.path);
	expect_file_error("[ingest]\nhash_paths = traits..x\n", 2,
	                  "[ingest] hash_paths must be up to 32 space- or comma-separated dotted "
	                  "paths (letters, digits, _ - $), got \"traits..x\"");
}

static void test_first_error_wins(void **state)
{
	(void)state;
	expect_file_error("[server]\nworkers = 1\nworkers = 999\nmax_header_bytes = 1\n", 3,
	                  "[server] workers must be an integer from 0 to 256, got \"999\"");
}

static void test_unknown_settings(void **state)
{
	(void)state;
	expect_file_error("[server]\nlisten = 127.0.0.1:1\nmax_headers = 5\n", 3,
	                  "unknown setting \"max_headers\" in [server]");
	expect_file_error("[nosuch]\nx = 1\n", 2, "unknown setting \"x\" in [nosuch]");
	/* A setting outside any section is unknown too. */
	expect_file_error("workers = 1\n", 1, "unknown setting \"workers\" in []");
	/* Names are exact: no case folding. */
	expect_file_error("[server]\nWorkers = 1\n", 2, "unknown setting \"Workers\" in [server]");
}

static void test_syntax_error(void **state)
{
	(void)state;
	expect_file_error("[server]\nworkers = 1\nthis line is not ini\n", 3, "syntax error");
}

static void test_missing_file(void **state)
{
	(void)state;
	struct config c;
	char err[600] = "";
	assert_int_equal(config_load(&c, "/nonexistent/pcl.conf", err, sizeof err), -1);
	assert_true(strncmp(err, "/nonexistent/pcl.conf: cannot open", 34) == 0);
	config_free(&c);
}

static void test_cross_checks(void **state)
{
	(void)state;
	struct tmpconf t;
	struct config c;
	char err[600], want[700];
	assert_int_equal(load_text(&c, "[server]\ntls_cert = /c.pem\n", &t, err, sizeof err), -1);
	snprintf(want, sizeof want, "%s: [server] tls_cert and tls_key must be set together",
	         t.path);
	assert_string_equal(err, want);
	config_free(&c);
	unlink(t.path);

	assert_int_equal(load_text(&c, "[upstream]\nurl = ftp://x\n", &t, err, sizeof err), -1);
	snprintf(want, sizeof want, "%s: [upstream] url must be an http:// or https:// URL",
	         t.path);
	assert_string_equal(err, want);
	config_free(&c);
	unlink(t.path);
}

static void test_routes(void **state)
{
	(void)state;
	struct tmpconf t;
	struct config c;
	char err[600];
	int rc = load_text(&c,
	                   "[route billing]\n"
	                   "prefix = /billing/\n"
	                   "upstream = http://127.0.0.1:9001\n"
	                   "timeout_ms = 5000\n"
	                   "[route search]\n"
	                   "prefix = /search\n"
	                   "upstream = https://search.internal\n"
	                   "[route billing]\n"
	                   "prefix = /bill/\n",
	                   &t, err, sizeof err);
	if (rc != 0)
		fail_msg("%s", err);
	assert_int_equal(c.n_routes, 2);
	assert_string_equal(c.routes[0].name, "billing");
	assert_string_equal(c.routes[0].prefix, "/bill/"); /* a repeated section updates */
	assert_string_equal(c.routes[0].upstream, "http://127.0.0.1:9001");
	assert_int_equal(c.routes[0].timeout_ms, 5000);
	assert_string_equal(c.routes[1].name, "search");
	assert_string_equal(c.routes[1].prefix, "/search");
	assert_string_equal(c.routes[1].upstream, "https://search.internal");
	assert_int_equal(c.routes[1].timeout_ms, 0);
	config_free(&c);
	assert_int_equal(c.n_routes, 0);
	unlink(t.path);
}

static void test_route_errors(void **state)
{
	(void)state;
	expect_file_error("[route a]\nprefix = billing\n", 2, "[route a] prefix must start with /");
	expect_file_error("[route a]\nprefix = /a\nupstream = ftp://x\n", 3,
	                  "[route a] upstream must be an http:// or https:// URL");
	expect_file_error("[route a]\ntimeout_ms = 0\n", 2,
	                  "[route a] timeout_ms must be an integer from 1 to 3600000");
	expect_file_error("[route a]\nprefix = /a\nupstrem = http://x\n", 3,
	                  "unknown setting \"upstrem\" in [route a]");

	/* A route needs both prefix and upstream (no line: it is the whole section). */
	struct tmpconf t;
	struct config c;
	char err[600], want[700];
	assert_int_equal(load_text(&c, "[route a]\nprefix = /a\n", &t, err, sizeof err), -1);
	snprintf(want, sizeof want, "%s: [route a] needs both prefix and upstream", t.path);
	assert_string_equal(err, want);
	config_free(&c);
	unlink(t.path);
}

static void test_route_limit(void **state)
{
	(void)state;
	char text[16384];
	size_t n = 0;
	for (int i = 0; i <= CONFIG_MAX_ROUTES; i++)
		n += (size_t)snprintf(text + n, sizeof text - n,
		                      "[route r%d]\nprefix = /r%d\nupstream = http://u\n", i, i);
	char want[128];
	snprintf(want, sizeof want, "more than %d [route] sections", CONFIG_MAX_ROUTES);
	expect_file_error(text, CONFIG_MAX_ROUTES * 3 + 2, want);
}

static void test_oidc_sections(void **state)
{
	(void)state;
	struct tmpconf t;
	struct config c;
	char err[600];
	int rc = load_text(&c,
	                   "[oidc.google]\n"
	                   "issuer = https://accounts.google.com\n"
	                   "client_id = 1234.apps.googleusercontent.com\n"
	                   "client_secret_file = google.secret\n"
	                   "[oidc.kc-1]\n"
	                   "issuer = https://kc.example/realms/staff\n"
	                   "client_id = portcullis\n"
	                   "client_secret_file = /etc/kc.secret\n"
	                   "scopes = openid email\n"
	                   "ca_file = /etc/kc-ca.pem\n"
	                   "allow_ranges = 10.0.0.0/8\n"
	                   "verified_email_claim = xms_edov\n",
	                   &t, err, sizeof err);
	if (rc != 0)
		fail_msg("%s", err);
	assert_int_equal(c.n_oidc, 2);
	assert_string_equal(c.oidc[0].name, "google");
	assert_string_equal(c.oidc[0].issuer, "https://accounts.google.com");
	assert_string_equal(c.oidc[0].client_id, "1234.apps.googleusercontent.com");
	assert_string_equal(c.oidc[0].client_secret_file, "google.secret");
	assert_string_equal(c.oidc[0].scopes, "openid email profile"); /* the default */
	assert_string_equal(c.oidc[0].ca_file, "");
	assert_string_equal(c.oidc[0].allow_ranges, "");
	assert_string_equal(c.oidc[0].verified_email_claim, "email_verified"); /* the default */
	assert_string_equal(c.oidc[1].name, "kc-1");
	assert_string_equal(c.oidc[1].verified_email_claim, "xms_edov");
	assert_string_equal(c.oidc[1].scopes, "openid email");
	assert_string_equal(c.oidc[1].ca_file, "/etc/kc-ca.pem");
	assert_string_equal(c.oidc[1].allow_ranges, "10.0.0.0/8");
	config_free(&c);
	assert_int_equal(c.n_oidc, 0);
	unlink(t.path);

	assert_true(config_oidc_name_valid("google", 6));
	assert_true(config_oidc_name_valid("a_b-9", 5));
	assert_false(config_oidc_name_valid("", 0));
	assert_false(config_oidc_name_valid("Google", 6));
	assert_false(config_oidc_name_valid("a.b", 3));
	assert_false(config_oidc_name_valid("a/b", 3));
	assert_false(config_oidc_name_valid("aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", 33));
}

static void test_oidc_errors(void **state)
{
	(void)state;
	const char *iss = "[oidc.g] issuer must be an https:// URL without query or fragment "
	                  "(the provider's \"iss\" exactly)";
	expect_file_error("[oidc.g]\nissuer = http://op.example\n", 2, iss);
	expect_file_error("[oidc.g]\nissuer = https://\n", 2, iss);
	expect_file_error("[oidc.g]\nissuer = https://op.example/?x=1\n", 2, iss);
	expect_file_error("[oidc.g]\nissuer = https://op.example/#f\n", 2, iss);
	expect_file_error("[oidc.g]\nclient_id = a b\n", 2,
	                  "[oidc.g] client_id must be 1 to 255 visible ASCII characters");
	const char *sc = "[oidc.g] scopes must be scope names separated by single spaces, "
	                 "including openid";
	expect_file_error("[oidc.g]\nscopes = email profile\n", 2, sc);
	expect_file_error("[oidc.g]\nscopes = openid  email\n", 2, sc);
	expect_file_error("[oidc.g]\nscopes = openid\\x\n", 2, sc);
	expect_file_error("[oidc.g]\nscopes = openidx\n", 2, sc);
	const char *vc = "[oidc.g] verified_email_claim must be a claim name: 1 to 64 of A-Z, a-z, "
	                 "0-9, _ . : -";
	expect_file_error("[oidc.g]\nverified_email_claim = \n", 2, vc);
	expect_file_error("[oidc.g]\nverified_email_claim = email verified\n", 2, vc);
	expect_file_error("[oidc.g]\nverified_email_claim = \"xms_edov\"\n", 2, vc);
	expect_file_error("[oidc.g]\nverified_email_claim = "
	                  "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\n",
	                  2, vc);
	expect_file_error("[oidc.g]\nclient_secret = x\n", 2,
	                  "unknown setting \"client_secret\" in [oidc.g]");
	expect_file_error("[oidc.Google]\nclient_id = x\n", 2,
	                  "[oidc.Google]: a provider name is 1 to 32 of a-z, 0-9, _ and -");
	expect_file_error("[oidc.]\nclient_id = x\n", 2,
	                  "[oidc.]: a provider name is 1 to 32 of a-z, 0-9, _ and -");

	/* Required settings (no line: it is the whole section). */
	struct tmpconf t;
	struct config c;
	char err[600], want[700];
	assert_int_equal(load_text(&c, "[oidc.g]\nissuer = https://op.example\nclient_id = x\n", &t,
	                           err, sizeof err),
	                 -1);
	snprintf(want, sizeof want, "%s: [oidc.g] needs issuer, client_id and client_secret_file",
	         t.path);
	assert_string_equal(err, want);
	config_free(&c);
	unlink(t.path);

	char text[8192];
	size_t n = 0;
	for (int i = 0; i <= CONFIG_MAX_OIDC; i++)
		n += (size_t)snprintf(text + n, sizeof text - n, "[oidc.p%d]\nclient_id = x\n", i);
	snprintf(want, sizeof want, "more than %d [oidc.NAME] sections", CONFIG_MAX_OIDC);
	expect_file_error(text, CONFIG_MAX_OIDC * 2 + 2, want);
}

static void test_env_override(void **state)
{
	(void)state;
	struct tmpconf t;
	struct config c;
	char err[600];
	setenv("PORTCULLIS_SERVER_MAX_HEADER_BYTES", "2048", 1);
	setenv("PORTCULLIS_RATE_LIMIT_BURST", "7", 1);
	setenv("PORTCULLIS_SECURITY_CONTACT", "mailto:env@example.com", 1);
	setenv("PORTCULLIS_LOG_FORMAT", "text", 1);
	/* The environment wins over the file. */
	int rc =
	    load_text(&c, "[server]\nmax_header_bytes = 4096\nworkers = 2\n", &t, err, sizeof err);
	unsetenv("PORTCULLIS_SERVER_MAX_HEADER_BYTES");
	unsetenv("PORTCULLIS_RATE_LIMIT_BURST");
	unsetenv("PORTCULLIS_SECURITY_CONTACT");
	unsetenv("PORTCULLIS_LOG_FORMAT");
	if (rc != 0)
		fail_msg("%s", err);
	assert_int_equal(c.server_max_header_bytes, 2048);
	assert_int_equal(c.server_workers, 2);
	assert_int_equal(c.rate_limit_burst, 7);
	assert_string_equal(c.security_contact, "mailto:env@example.com");
	assert_string_equal(c.log_format, "text");
	config_free(&c);
	unlink(t.path);

	/* Also without a file. */
	setenv("PORTCULLIS_STORE_URL", "sqlite:///tmp/x.db", 1);
	rc = config_load(&c, NULL, err, sizeof err);
	unsetenv("PORTCULLIS_STORE_URL");
	assert_int_equal(rc, 0);
	assert_string_equal(c.store_url, "sqlite:///tmp/x.db");
	config_free(&c);
}

static void test_env_errors_name_the_variable(void **state)
{
	(void)state;
	static const struct {
		const char *name, *value, *want;
	} cases[] = {
	    {"PORTCULLIS_SERVER_WORKERS", "many",
	     "PORTCULLIS_SERVER_WORKERS: [server] workers must be an integer from 0 to 256, got "
	     "\"many\""},
	    {"PORTCULLIS_SERVER_MAX_HEADER_BYTES", "10",
	     "PORTCULLIS_SERVER_MAX_HEADER_BYTES: [server] max_header_bytes must be an integer "
	     "from 1024 to 1048576, got \"10\""},
	    {"PORTCULLIS_LOG_LEVEL", "loud",
	     "PORTCULLIS_LOG_LEVEL: [log] level must be one of debug|info|warn|error, got "
	     "\"loud\""},
	    {"PORTCULLIS_SERVER_LISTEN", "nope",
	     "PORTCULLIS_SERVER_LISTEN: [server] listen must be host:port with a port from 0 to "
	     "65535, got \"nope\""},
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		struct tmpconf t;
		struct config c;
		char err[600];
		setenv(cases[i].name, cases[i].value, 1);
		int rc = load_text(&c, "[server]\nworkers = 1\n", &t, err, sizeof err);
		unsetenv(cases[i].name);
		assert_int_equal(rc, -1);
		assert_string_equal(err, cases[i].want);
		config_free(&c);
		unlink(t.path);
	}
}

static void test_example_loads_back_to_defaults(void **state)
{
	(void)state;
	char *text = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&text, &len);
	assert_non_null(f);
	config_write_example(f);
	fclose(f);

	/* Uncomment every ";name = value" line (but not the sample route). */
	char *out = calloc(1, len + 1);
	assert_non_null(out);
	size_t o = 0;
	int settings = 0;
	bool examples = false; /* past the first commented section: examples stay comments */
	for (char *line = text; *line;) {
		char *nl = strchr(line, '\n');
		size_t n = nl ? (size_t)(nl - line) + 1 : strlen(line);
		examples = examples || (line[0] == ';' && line[1] == '[');
		if (!examples && line[0] == ';' && strstr(line, " = ") &&
		    strncmp(line, ";prefix", 7) != 0 && strncmp(line, ";upstream", 9) != 0 &&
		    strncmp(line, ";timeout_ms = 5000", 18) != 0) {
			memcpy(out + o, line + 1, n - 1);
			o += n - 1;
			settings++;
		} else {
			memcpy(out + o, line, n);
			o += n;
		}
		line += n;
	}
	assert_true(settings >= 37); /* every row of the table */

	struct tmpconf t;
	struct config c, d;
	char err[600];
	if (load_text(&c, out, &t, err, sizeof err) != 0)
		fail_msg("%s", err);
	config_defaults(&d);
	assert_string_equal(c.server_listen, d.server_listen);
	assert_int_equal(c.server_max_header_bytes, d.server_max_header_bytes);
	assert_int_equal(c.server_max_body_bytes, d.server_max_body_bytes);
	assert_int_equal(c.auth_bcrypt_cost, d.auth_bcrypt_cost);
	assert_string_equal(c.store_url, d.store_url);
	assert_string_equal(c.security_contact, d.security_contact);
	assert_int_equal(c.request_log_queue_size, d.request_log_queue_size);
	assert_int_equal(c.retention_request_log_days, d.retention_request_log_days);
	assert_int_equal(c.n_routes, 0);
	config_free(&c);
	config_free(&d);
	unlink(t.path);
	free(out);
	free(text);
}

static void test_split_listen(void **state)
{
	(void)state;
	char host[64];
	int port = -1;
	assert_int_equal(config_split_listen("127.0.0.1:8080", host, sizeof host, &port), 0);
	assert_string_equal(host, "127.0.0.1");
	assert_int_equal(port, 8080);
	assert_int_equal(config_split_listen("[::1]:0", host, sizeof host, &port), 0);
	assert_string_equal(host, "::1");
	assert_int_equal(port, 0);
	assert_int_equal(config_split_listen("example.com:65535", host, sizeof host, &port), 0);
	assert_string_equal(host, "example.com");
	assert_int_equal(port, 65535);

	static const char *const bad[] = {
	    "",           ":80",     "host",    "host:", "host:-1",
	    "host:65536", "host:8o", "[::1]80", "[::1",  "[]:80",
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		port = -1;
		if (config_split_listen(bad[i], host, sizeof host, &port) == 0)
			fail_msg("accepted \"%s\"", bad[i]);
		assert_int_equal(port, -1);
	}
	/* A host longer than the buffer is refused, not truncated. */
	char small[4];
	assert_int_equal(config_split_listen("abcd:1", small, sizeof small, &port), -1);
	assert_int_equal(config_split_listen("abc:1", small, sizeof small, &port), 0);
	assert_string_equal(small, "abc");
}

static void test_worker_count(void **state)
{
	(void)state;
	struct config c;
	config_defaults(&c);
	assert_true(config_worker_count(&c) >= 1);
	assert_int_equal(config_worker_count(&c), (int)sysconf(_SC_NPROCESSORS_ONLN));
	c.server_workers = 5;
	assert_int_equal(config_worker_count(&c), 5);
	config_free(&c);
}

static void test_path_of(void **state)
{
	struct config cfg;
	(void)state;
	config_defaults(&cfg);
	char *p = config_path_of(&cfg, "secrets.key"); /* no config file: the working directory */
	assert_string_equal(p, "secrets.key");
	free(p);
	cfg.path = "/etc/portcullis/portcullis.conf";
	p = config_path_of(&cfg, "secrets.key");
	assert_string_equal(p, "/etc/portcullis/secrets.key");
	free(p);
	p = config_path_of(&cfg, "keys/k");
	assert_string_equal(p, "/etc/portcullis/keys/k");
	free(p);
	p = config_path_of(&cfg, "/var/lib/k");
	assert_string_equal(p, "/var/lib/k");
	free(p);
	cfg.path = "conf/p.conf";
	p = config_path_of(&cfg, "k");
	assert_string_equal(p, "conf/k");
	free(p);
	p = config_path_of(&cfg, "");
	assert_string_equal(p, "");
	free(p);
	cfg.path = NULL;
	config_free(&cfg);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_defaults),
	    cmocka_unit_test(test_load_null_path_is_defaults),
	    cmocka_unit_test(test_load_values),
	    cmocka_unit_test(test_range_errors_name_file_and_line),
	    cmocka_unit_test(test_first_error_wins),
	    cmocka_unit_test(test_master_key_must_be_64_hex),
	    cmocka_unit_test(test_hash_paths),
	    cmocka_unit_test(test_unknown_settings),
	    cmocka_unit_test(test_syntax_error),
	    cmocka_unit_test(test_missing_file),
	    cmocka_unit_test(test_cross_checks),
	    cmocka_unit_test(test_routes),
	    cmocka_unit_test(test_oidc_sections),
	    cmocka_unit_test(test_oidc_errors),
	    cmocka_unit_test(test_route_errors),
	    cmocka_unit_test(test_route_limit),
	    cmocka_unit_test(test_env_override),
	    cmocka_unit_test(test_env_errors_name_the_variable),
	    cmocka_unit_test(test_example_loads_back_to_defaults),
	    cmocka_unit_test(test_split_listen),
	    cmocka_unit_test(test_worker_count),
	    cmocka_unit_test(test_path_of),
	};
	return cmocka_run_group_tests(tests, clear_env, NULL);
}
