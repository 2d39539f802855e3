/*
 * init.c: `portcullis init --data-dir DIR` (a new local instance: config
 * with generated secrets, SQLite database, first root key printed once) and
 * `portcullis root-key create`.
 */
#include "auth/keys.h"
#include "cli/cli.h"
#include "core/config.h"
#include "core/str.h"
#include "crypto/hash.h"
#include "crypto/random.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Create the root key and print it once. */
static int create_root_key(struct store *st, const struct config *cfg, const char *name,
                           const char *actor)
{
	char key[KEYFMT_MAX_LEN + 1];
	struct key_spec spec = {
	    .name = name, .env = KEY_ENV_ROOT, .scopes = "root", .expires_at = -1};
	struct audit_input a = {.actor_type = "system", .actor_id = actor};
	struct store_key row;
	int rc = keys_create(st, cfg->auth_key_prefix, (int)cfg->auth_bcrypt_cost, &spec, &a, key,
	                     sizeof key, &row);
	if (rc != STORE_OK)
		return cli_fail(EXIT_RUNTIME, "cannot create the root key (store error %d)", rc);
	printf("Root key %s (shown once; store it in your secret manager now):\n\n  %s\n\n", row.id,
	       key);
	fflush(stdout);
	explicit_bzero(key, sizeof key);
	return EXIT_OK;
}

static int open_store(const struct config *cfg, struct store **st)
{
	char err[512];
	if (store_open(cfg->store_url, 1, st, err, sizeof err) != STORE_OK)
		return cli_fail(EXIT_RUNTIME, "store: %s", err);
	if (store_migrate(*st, NULL) != STORE_OK) {
		store_close(*st);
		return cli_fail(EXIT_RUNTIME, "store: migrations failed");
	}
	return EXIT_OK;
}

int cli_init(int argc, char **argv)
{
	const char *dir = cli_flag(argc, argv, "--data-dir");
	if (!dir)
		return cli_fail(EXIT_USAGE,
		                "usage: portcullis init --data-dir DIR [--listen HOST:PORT] "
		                "[--upstream URL] [--bcrypt-cost N]");
	const char *listen = cli_flag(argc, argv, "--listen");
	const char *upstream = cli_flag(argc, argv, "--upstream");
	const char *cost_s = cli_flag(argc, argv, "--bcrypt-cost");
	int64_t cost = 12;
	if (cost_s && parse_int64_z(cost_s, 4, 31, &cost) < 0)
		return cli_fail(EXIT_USAGE, "--bcrypt-cost must be from 4 to 31");
	if (mkdir(dir, 0700) < 0 && errno != EEXIST)
		return cli_fail(EXIT_RUNTIME, "cannot create %s: %s", dir, strerror(errno));
	char abs[PATH_MAX];
	if (!realpath(dir, abs))
		return cli_fail(EXIT_RUNTIME, "cannot resolve %s: %s", dir, strerror(errno));
	char conf_path[PATH_MAX + 32], db_path[PATH_MAX + 32];
	snprintf(conf_path, sizeof conf_path, "%s/portcullis.conf", abs);
	snprintf(db_path, sizeof db_path, "%s/portcullis.db", abs);
	if (access(db_path, F_OK) == 0)
		return cli_fail(EXIT_RUNTIME,
		                "%s already holds an instance (portcullis.db exists); "
		                "refusing to overwrite it",
		                abs);
	int fd = open(conf_path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0)
		return cli_fail(EXIT_RUNTIME,
		                errno == EEXIST ? "%s already holds an instance (portcullis.conf "
		                                  "exists); refusing to overwrite it"
		                                : "cannot write the config in %s",
		                abs);
	uint8_t mk[32];
	char mk_hex[65];
	crypto_random(mk, sizeof mk);
	hex_encode(mk, sizeof mk, mk_hex);
	explicit_bzero(mk, sizeof mk);
	FILE *f = fdopen(fd, "w");
	fprintf(f,
	        "# Portcullis instance created by `portcullis init`.\n"
	        "# Every setting: `portcullis config example`.\n\n"
	        "[server]\nlisten = %s\n\n"
	        "[store]\nurl = sqlite://%s\n\n"
	        "[kv]\nurl = memory://\n\n"
	        "[auth]\nbcrypt_cost = %lld\n\n"
	        "[security]\n# Encrypts secrets at rest. Keep it secret; losing it loses them.\n"
	        "master_key = %s\n",
	        listen ? listen : "127.0.0.1:8080", db_path, (long long)cost, mk_hex);
	if (upstream)
		fprintf(f, "\n[upstream]\nurl = %s\n", upstream);
	explicit_bzero(mk_hex, sizeof mk_hex);
	if (fclose(f) != 0)
		return cli_fail(EXIT_RUNTIME, "cannot write %s", conf_path);

	struct config cfg;
	char err[600];
	if (config_load(&cfg, conf_path, err, sizeof err) < 0) {
		config_free(&cfg);
		return cli_fail(EXIT_USAGE, "%s", err);
	}
	struct store *st = NULL;
	int rc = open_store(&cfg, &st);
	if (rc == EXIT_OK) {
		printf("Created a Portcullis instance in %s\n\n", abs);
		rc = create_root_key(st, &cfg, "initial root key", "init");
		store_close(st);
	}
	if (rc == EXIT_OK)
		printf("Start it with:\n\n  portcullis serve -c %s\n\n", conf_path);
	config_free(&cfg);
	return rc;
}

int cli_root_key(int argc, char **argv)
{
	if (argc < 2 || strcmp(argv[1], "create") != 0)
		return cli_fail(EXIT_USAGE,
		                "usage: portcullis root-key create -c FILE [--name NAME]");
	const char *name = cli_flag(argc, argv, "--name");
	if (name && (strlen(name) == 0 || strlen(name) > STORE_NAME_MAX))
		return cli_fail(EXIT_USAGE, "--name must be 1 to %d characters", STORE_NAME_MAX);
	struct config cfg;
	char err[600];
	if (config_load(&cfg, cli_config_path(argc, argv), err, sizeof err) < 0) {
		config_free(&cfg);
		return cli_fail(EXIT_USAGE, "%s", err);
	}
	struct store *st = NULL;
	int rc = open_store(&cfg, &st);
	if (rc == EXIT_OK) {
		rc = create_root_key(st, &cfg, name ? name : "root key", "cli");
		store_close(st);
	}
	config_free(&cfg);
	return rc;
}
