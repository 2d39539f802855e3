/*
 * init.c: `portcullis init --data-dir DIR` (a new local instance: config
 * with generated secrets, SQLite database, the key pair column secrets are
 * sealed to, first root key printed once) and
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

/* Create the root key and print it once, after intro (may be NULL). */
static int create_root_key(struct store *st, const struct config *cfg, const char *name,
                           const char *actor, const char *intro)
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
	if (intro)
		fputs(intro, stdout);
	printf("Root key %s (shown once; store it in your secret manager now):\n\n  %s\n\n", row.id,
	       key);
	fflush(stdout);
	explicit_bzero(key, sizeof key);
	return EXIT_OK;
}

/* A value init writes into the config file: one line, no control bytes. */
static bool one_line(const char *s)
{
	for (; *s; s++)
		if ((unsigned char)*s < 0x20 || *s == 0x7f)
			return false;
	return true;
}

/*
 * Everything init can judge before it touches the disk: the options, and the
 * defaults with the environment overrides (PORTCULLIS_STORE_URL, ...) that
 * the new config will be read with.
 */
static int init_check(const struct cli_command *cmd, const char *dir, const char *listen,
                      const char *upstream, const char *cost_s, int64_t *cost)
{
	if (!dir[0] || !one_line(dir))
		return cli_usage_error(cmd, "--data-dir must be a directory name on one line");
	char host[256];
	int port;
	if (listen &&
	    (!one_line(listen) || config_split_listen(listen, host, sizeof host, &port) < 0))
		return cli_usage_error(cmd,
		                       "--listen must be host:port with a port from 0 to 65535");
	if (upstream && (!one_line(upstream) || (!str_has_prefix(upstream, "http://") &&
	                                         !str_has_prefix(upstream, "https://"))))
		return cli_usage_error(cmd, "--upstream must be an http:// or https:// URL");
	if (cost_s && parse_int64_z(cost_s, 4, 31, cost) < 0)
		return cli_usage_error(cmd, "--bcrypt-cost must be from 4 to 31");
	struct config cfg;
	char err[600];
	int rc = config_load(&cfg, NULL, err, sizeof err);
	config_free(&cfg);
	if (rc < 0)
		return cli_fail(EXIT_USAGE, "%s", err);
	return EXIT_OK;
}

/* What init made, so that a failure part-way leaves nothing behind. */
struct made {
	const char *dir; /* the directory, when init created it */
	const char *conf;
	const char *db;  /* the SQLite file's name, when it did not exist before */
	const char *key; /* the private key file, once the config names it */
};

static void undo(const struct made *m)
{
	if (m->db) {
		static const char *const tails[] = {"", "-wal", "-shm", "-journal"};
		for (size_t i = 0; i < sizeof tails / sizeof tails[0]; i++) {
			char p[PATH_MAX + 48];
			snprintf(p, sizeof p, "%s%s", m->db, tails[i]);
			unlink(p);
		}
	}
	if (m->key)
		unlink(m->key);
	if (m->conf)
		unlink(m->conf);
	if (m->dir && rmdir(m->dir) < 0)
		fprintf(stderr, "portcullis: could not remove %s: %s\n", m->dir, strerror(errno));
}

/* Write the new instance's config to conf_path, which must not exist. */
static int write_config(const char *conf_path, const char *abs, const char *listen,
                        const char *db_path, const char *key_path, int64_t cost,
                        const char *upstream)
{
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
	if (!f) {
		close(fd);
		unlink(conf_path);
		explicit_bzero(mk_hex, sizeof mk_hex);
		return cli_fail(EXIT_RUNTIME, "cannot write %s", conf_path);
	}
	fprintf(f,
	        "# Portcullis instance created by `portcullis init`.\n"
	        "# Every setting: `portcullis config example`.\n\n"
	        "[server]\nlisten = %s\n\n"
	        "[store]\nurl = sqlite://%s\n\n"
	        "[kv]\nurl = memory://\n\n"
	        "[auth]\nbcrypt_cost = %lld\n\n"
	        "[security]\n# Encrypts secrets at rest. Keep it secret; losing it loses them.\n"
	        "master_key = %s\n\n"
	        "[secrets]\n# Opens the column secrets (webhook signing secrets) sealed at rest;\n"
	        "# only the background tier reads it. Keep it 0600; losing it loses them.\n"
	        "private_key_file = %s\n",
	        listen, db_path, (long long)cost, mk_hex, key_path);
	if (upstream)
		fprintf(f, "\n[upstream]\nurl = %s\n", upstream);
	explicit_bzero(mk_hex, sizeof mk_hex);
	if (fclose(f) != 0) {
		unlink(conf_path);
		return cli_fail(EXIT_RUNTIME, "cannot write %s", conf_path);
	}
	return EXIT_OK;
}

/*
 * init validates every input first and creates last: the directory (unless
 * it exists), the config, then the database and the root key. A failure
 * after the first write removes what this run made, so a re-run with a
 * corrected option works; a directory that existed is left as it was.
 */
static int cli_init(const struct cli_args *a)
{
	const char *dir = cli_value(a, "--data-dir");
	const char *listen = cli_value(a, "--listen");
	const char *upstream = cli_value(a, "--upstream");
	int64_t cost = 12;
	int rc = init_check(a->cmd, dir, listen, upstream, cli_value(a, "--bcrypt-cost"), &cost);
	if (rc != EXIT_OK)
		return rc;
	struct made made = {0};
	if (mkdir(dir, 0700) == 0)
		made.dir = dir;
	else if (errno != EEXIST)
		return cli_fail(EXIT_RUNTIME, "cannot create %s: %s", dir, strerror(errno));
	char abs[PATH_MAX];
	if (!realpath(dir, abs)) {
		rc = cli_fail(EXIT_RUNTIME, "cannot resolve %s: %s", dir, strerror(errno));
		undo(&made);
		return rc;
	}
	char conf_path[PATH_MAX + 32], db_path[PATH_MAX + 32], key_path[PATH_MAX + 32];
	snprintf(conf_path, sizeof conf_path, "%s/portcullis.conf", abs);
	snprintf(db_path, sizeof db_path, "%s/portcullis.db", abs);
	snprintf(key_path, sizeof key_path, "%s/secrets.key", abs);
	static const char *const held[] = {"portcullis.db", "secrets.key"};
	for (size_t i = 0; i < sizeof held / sizeof held[0]; i++) {
		const char *p = i == 0 ? db_path : key_path;
		if (access(p, F_OK) == 0)
			return cli_fail(EXIT_RUNTIME,
			                "%s already holds an instance (%s exists); "
			                "refusing to overwrite it",
			                abs, held[i]);
	}
	rc = write_config(conf_path, abs, listen ? listen : "127.0.0.1:8080", db_path, key_path,
	                  cost, upstream);
	if (rc != EXIT_OK) {
		undo(&made);
		return rc;
	}
	made.conf = conf_path;
	made.db = db_path;

	struct cli_instance inst;
	rc = cli_instance_open(conf_path, &inst);
	if (rc == EXIT_OK) {
		char intro[PATH_MAX + 64];
		snprintf(intro, sizeof intro, "\nCreated a Portcullis instance in %s\n\n", abs);
		made.key = key_path;
		rc = cli_secrets_create(inst.st, key_path, "init");
		if (rc == EXIT_OK)
			rc = create_root_key(inst.st, &inst.cfg, "initial root key", "init", intro);
		cli_instance_close(&inst);
	}
	if (rc != EXIT_OK) {
		undo(&made);
		return rc;
	}
	printf("Start it with:\n\n  portcullis serve -c %s\n\n", conf_path);
	return EXIT_OK;
}

static int cli_root_key_create(const struct cli_args *a)
{
	const char *name = cli_value(a, "--name");
	if (name && (strlen(name) == 0 || strlen(name) > STORE_NAME_MAX))
		return cli_usage_error(a->cmd, "--name must be 1 to %d characters", STORE_NAME_MAX);
	struct cli_instance inst;
	int rc = cli_instance_open(cli_config_path(a), &inst);
	if (rc == EXIT_OK) {
		rc = create_root_key(inst.st, &inst.cfg, name ? name : "root key", "cli", NULL);
		cli_instance_close(&inst);
	}
	return rc;
}

static const struct cli_opt init_opts[] = {
    {"--data-dir", 0, "DIR", true,
     "the instance's directory: created, or an existing one without an instance"},
    {"--listen", 0, "HOST:PORT", false, "address to listen on (default 127.0.0.1:8080)"},
    {"--upstream", 0, "URL", false, "the http:// or https:// service to forward to"},
    {"--bcrypt-cost", 0, "N", false, "bcrypt cost of the key hashes, 4 to 31 (default 12)"},
};

static const struct cli_opt root_key_opts[] = {
    {"--name", 0, "NAME", false,
     "the key's name (1 to " CLI_STR(STORE_NAME_MAX) " characters; default \"root key\")"},
    CLI_OPT_CONFIG,
};

const struct cli_command cli_cmd_init = {
    .name = "init",
    CLI_OPTS(init_opts),
    .summary = "create an instance: config file, SQLite database, master key, and a root key "
               "printed once",
    .run = cli_init,
};

const struct cli_command cli_cmd_root_key_create = {
    .name = "root-key",
    .verb = "create",
    CLI_OPTS(root_key_opts),
    .summary = "create another operator (root) key, printed once",
    .run = cli_root_key_create,
};
