/*
 * fuzz_config.c: config_load (core/config.h) on arbitrary file contents.
 * The config file is trusted more than a request, but it is hand-edited,
 * and STYLE.md asks for every parser to be fuzzed: a typo must give an
 * error naming file and line, never a crash, a leak or an over-read.
 *
 * The input goes into one memfd per process (opened by path through
 * /proc/self/fd, so config_load's own fopen runs), so parallel fuzzing jobs
 * never share a file. PORTCULLIS_* variables are removed first: the file
 * alone decides the outcome. On success the loaded values must satisfy what
 * the loader promises to check.
 */
#include "fuzz.h"

#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "auth/keyfmt.h"
#include "core/config.h"

extern char **environ;

static int fd = -1;
static char path[64];

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	/* Unset from a copy of each name: unsetenv changes environ. */
	for (;;) {
		char name[256];
		char **e = environ;
		while (*e && strncmp(*e, "PORTCULLIS_", 11) != 0)
			e++;
		if (!*e)
			break;
		size_t n = strcspn(*e, "=");
		FUZZ_CHECK(n < sizeof(name));
		memcpy(name, *e, n);
		name[n] = '\0';
		FUZZ_CHECK(unsetenv(name) == 0);
	}
	fd = memfd_create("fuzz_config.ini", MFD_CLOEXEC);
	FUZZ_CHECK(fd >= 0);
	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	return 0;
}

static int is_hex64(const char *s)
{
	if (strlen(s) != 64)
		return 0;
	return strspn(s, "0123456789abcdefABCDEF") == 64;
}

static int is_http_url(const char *s)
{
	return strncmp(s, "http://", 7) == 0 || strncmp(s, "https://", 8) == 0;
}

static void check_loaded(const struct config *cfg)
{
	char host[256];
	int port;

	FUZZ_CHECK(config_split_listen(cfg->server_listen, host, sizeof(host), &port) == 0);
	FUZZ_CHECK(port >= 0 && port <= 65535);
	if (cfg->server_redirect_listen[0]) {
		FUZZ_CHECK(config_split_listen(cfg->server_redirect_listen, host, sizeof(host),
		                               &port) == 0);
		FUZZ_CHECK(cfg->server_tls_cert[0]);
	}
	FUZZ_CHECK(!cfg->server_tls_cert[0] == !cfg->server_tls_key[0]);
	FUZZ_CHECK(cfg->server_workers >= 0 && cfg->server_workers <= 256);
	FUZZ_CHECK(cfg->server_max_header_bytes >= 1024 && cfg->server_max_header_bytes <= 1048576);
	FUZZ_CHECK(cfg->server_max_body_bytes >= 0 && cfg->server_max_body_bytes <= 1073741824);
	FUZZ_CHECK(cfg->auth_bcrypt_cost >= 4 && cfg->auth_bcrypt_cost <= 31);
	FUZZ_CHECK(cfg->idempotency_ttl_seconds >= 1);
	FUZZ_CHECK(keyfmt_prefix_valid(cfg->auth_key_prefix));
	FUZZ_CHECK(!cfg->security_master_key[0] || is_hex64(cfg->security_master_key));
	FUZZ_CHECK(strcmp(cfg->log_level, "debug") == 0 || strcmp(cfg->log_level, "info") == 0 ||
	           strcmp(cfg->log_level, "warn") == 0 || strcmp(cfg->log_level, "error") == 0);
	FUZZ_CHECK(strcmp(cfg->log_format, "json") == 0 || strcmp(cfg->log_format, "text") == 0);
	FUZZ_CHECK(!cfg->upstream_url[0] || is_http_url(cfg->upstream_url));
	FUZZ_CHECK(cfg->n_routes <= CONFIG_MAX_ROUTES);
	for (size_t i = 0; i < cfg->n_routes; i++) {
		const struct config_route *r = &cfg->routes[i];
		FUZZ_CHECK(r->name && r->name[0]);
		FUZZ_CHECK(r->prefix && r->prefix[0] == '/');
		FUZZ_CHECK(r->upstream && is_http_url(r->upstream));
		FUZZ_CHECK(r->timeout_ms >= 0 && r->timeout_ms <= 3600000);
		for (size_t j = 0; j < i; j++)
			FUZZ_CHECK(strcmp(cfg->routes[j].name, r->name) != 0);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct config cfg;
	char err[512];

	FUZZ_CHECK(ftruncate(fd, 0) == 0);
	FUZZ_CHECK(pwrite(fd, data, size, 0) == (ssize_t)size);

	memset(err, 0x55, sizeof(err));
	if (config_load(&cfg, path, err, sizeof(err)) == 0) {
		check_loaded(&cfg);
	} else {
		/* An error names the file ("FILE:LINE: ..." or "FILE: ...") and
		 * fits the buffer. */
		FUZZ_CHECK(memchr(err, '\0', sizeof(err)) != NULL);
		FUZZ_CHECK(strncmp(err, path, strlen(path)) == 0);
	}
	config_free(&cfg);
	return 0;
}
