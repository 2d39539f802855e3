/*
 * secrets.c: `portcullis secrets init|rotate|rewrap|retire KEYID|list`, the
 * key pair that column secrets are sealed to (crypto/sealed.h,
 * store/store_secrets.h). The public keys live in the store, the private
 * keys in `[secrets] private_key_file` (relative to the config file's
 * directory, mode 0600). Each command writes the file before the store when
 * it adds a key (so no secret is ever sealed to a key whose private half is
 * not on disk) and the store before the file when it retires one (so no key
 * leaves the file while the store may still seal to it or hold values sealed
 * to it). Nothing here prints or logs key material: only key ids.
 */
#include "cli/cli.h"
#include "core/alloc.h"
#include "core/clock.h"
#include "core/config.h"
#include "crypto/sealed.h"
#include "store/store_secrets.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Room for a message naming a path. */
#define ERR_MAX (PATH_MAX + 256)

/* The private key file's path for inst (malloc'd), or NULL after an error message. */
static char *key_path(const struct cli_instance *inst)
{
	if (!inst->cfg.secrets_private_key_file || !inst->cfg.secrets_private_key_file[0]) {
		cli_fail(EXIT_USAGE, "[secrets] private_key_file is empty");
		return NULL;
	}
	return config_path_of(&inst->cfg, inst->cfg.secrets_private_key_file);
}

static struct audit_input key_audit(const char *actor, const char *action, const char *key_id)
{
	return (struct audit_input){.actor_type = "system",
	                            .actor_id = actor,
	                            .action = action,
	                            .target_type = "secret_key",
	                            .target_id = key_id};
}

int cli_secrets_create(struct store *st, const char *path, const char *actor)
{
	struct sealed_keyring *kr;
	char id[SEALED_KEY_ID_LEN + 1];
	uint8_t pk[SEALED_PK_LEN];
	uint8_t cur_pk[SEALED_PK_LEN];
	char err[ERR_MAX];
	int rc;

	rc = store_secret_key_current(st, id, cur_pk);
	if (rc == STORE_OK)
		return cli_fail(EXIT_RUNTIME,
		                "this instance already has a key pair (current key %s); "
		                "`portcullis secrets rotate` adds one",
		                id);
	if (rc != STORE_ENOTFOUND)
		return cli_fail(EXIT_RUNTIME, "store error %d", rc);
	if (access(path, F_OK) == 0)
		return cli_fail(EXIT_RUNTIME, "%s exists; refusing to overwrite a private key file",
		                path);
	kr = sealed_keyring_new();
	if (sealed_keyring_generate(kr, id, pk) != SEALED_OK ||
	    sealed_keyring_write(kr, path, true, err, sizeof err) != SEALED_OK) {
		sealed_keyring_free(kr);
		return cli_fail(EXIT_RUNTIME, "cannot write the private key file: %s", err);
	}
	sealed_keyring_free(kr);
	struct audit_input a = key_audit(actor, "secret_key.created", id);
	rc = store_secret_key_add(st, id, pk, &a);
	if (rc != STORE_OK) {
		unlink(path);
		return cli_fail(EXIT_RUNTIME, "cannot store the public key (store error %d)", rc);
	}
	printf("Created the secrets key pair %s; its private key is in %s (mode 0600).\n", id,
	       path);
	return EXIT_OK;
}

static int cli_secrets_init(const struct cli_args *a)
{
	struct cli_instance o;
	int rc = cli_instance_open(cli_config_path(a), &o);
	if (rc != EXIT_OK)
		return rc;
	char *path = key_path(&o);
	rc = path ? cli_secrets_create(o.st, path, "cli") : EXIT_USAGE;
	free(path);
	cli_instance_close(&o);
	return rc;
}

/* Load the private key file; NULL after an error message. */
static struct sealed_keyring *load_ring(const char *path)
{
	struct sealed_keyring *kr = NULL;
	char err[ERR_MAX];
	if (sealed_keyring_load(path, &kr, err, sizeof err) != SEALED_OK)
		cli_fail(EXIT_RUNTIME, "%s", err);
	return kr;
}

/*
 * The current key id into cur, checking that kr holds it (a key file of
 * another instance would lock new secrets away). EXIT_OK or an exit code.
 */
static int current_in_ring(struct store *st, const struct sealed_keyring *kr, const char *path,
                           char cur[SEALED_KEY_ID_LEN + 1])
{
	uint8_t pk[SEALED_PK_LEN];
	int rc = store_secret_key_current(st, cur, pk);
	if (rc == STORE_ENOTFOUND)
		return cli_fail(EXIT_RUNTIME,
		                "this instance has no key pair yet: `portcullis secrets init`");
	if (rc != STORE_OK)
		return cli_fail(EXIT_RUNTIME, "store error %d", rc);
	if (!sealed_keyring_has(kr, cur))
		return cli_fail(
		    EXIT_RUNTIME,
		    "%s lacks the current key %s: is it this instance's private key file?", path,
		    cur);
	return EXIT_OK;
}

/* An instance opened with its private key file, whose current key the file holds. */
struct keyed {
	struct cli_instance o;
	char *path;
	struct sealed_keyring *kr;
	char cur[SEALED_KEY_ID_LEN + 1];
};

static void keyed_close(struct keyed *k)
{
	sealed_keyring_free(k->kr);
	free(k->path);
	cli_instance_close(&k->o);
}

/* Open a's instance and key file into *k; EXIT_OK, or an exit code with nothing left open. */
static int keyed_open(const struct cli_args *a, struct keyed *k)
{
	memset(k, 0, sizeof(*k));
	int rc = cli_instance_open(cli_config_path(a), &k->o);
	if (rc != EXIT_OK)
		return rc;
	k->path = key_path(&k->o);
	k->kr = k->path ? load_ring(k->path) : NULL;
	rc = !k->path ? EXIT_USAGE
	     : !k->kr ? EXIT_RUNTIME
	              : current_in_ring(k->o.st, k->kr, k->path, k->cur);
	if (rc != EXIT_OK)
		keyed_close(k);
	return rc;
}

static int cli_secrets_rotate(const struct cli_args *a)
{
	struct keyed k;
	int rc = keyed_open(a, &k);
	if (rc != EXIT_OK)
		return rc;
	char id[SEALED_KEY_ID_LEN + 1];
	uint8_t pk[SEALED_PK_LEN];
	char err[ERR_MAX];
	if (sealed_keyring_generate(k.kr, id, pk) != SEALED_OK) {
		rc = cli_fail(EXIT_RUNTIME, "%s holds %d keys already: rewrap and retire old ones",
		              k.path, SEALED_KEYRING_MAX);
		goto out;
	}
	if (sealed_keyring_write(k.kr, k.path, false, err, sizeof err) != SEALED_OK) {
		rc = cli_fail(EXIT_RUNTIME, "cannot write the private key file: %s", err);
		goto out;
	}
	struct audit_input au = key_audit("cli", "secret_key.created", id);
	int src = store_secret_key_add(k.o.st, id, pk, &au);
	if (src != STORE_OK) {
		/* Put the file back as it was: the store never saw the new key. */
		sealed_keyring_remove(k.kr, id);
		if (sealed_keyring_write(k.kr, k.path, false, err, sizeof err) != SEALED_OK)
			fprintf(stderr, "portcullis: could not drop key %s from %s again: %s\n", id,
			        k.path, err);
		rc = cli_fail(EXIT_RUNTIME, "cannot store the public key (store error %d)", src);
		goto out;
	}
	printf("Key %s is now current: new secrets are sealed to it.\n"
	       "Copy %s to every node that runs the background tier, then run\n"
	       "`portcullis secrets rewrap` and `portcullis secrets retire %s`.\n",
	       id, k.path, k.cur);
out:
	keyed_close(&k);
	return rc;
}

static int cli_secrets_rewrap(const struct cli_args *a)
{
	struct keyed k;
	int rc = keyed_open(a, &k);
	if (rc != EXIT_OK)
		return rc;
	struct store_rewrap_stats s;
	int src = store_secrets_rewrap(k.o.st, k.kr, STORE_REWRAP_BATCH, &s);
	if (src != STORE_OK) {
		rc = cli_fail(EXIT_RUNTIME, "rewrap stopped (store error %d) after %lld value(s)",
		              src, (long long)s.rewrapped);
		goto out;
	}
	json_t *details = json_pack("{sIsIsI}", "rewrapped", (json_int_t)s.rewrapped, "failed",
	                            (json_int_t)s.failed, "changed", (json_int_t)s.changed);
	struct audit_input au = key_audit("cli", "secrets.rewrapped", k.cur);
	au.details = details;
	src = store_audit_append(k.o.st, &au);
	json_decref(details);
	printf("Rewrapped %lld value(s) to key %s", (long long)s.rewrapped, k.cur);
	if (s.changed)
		printf("; %lld changed meanwhile (already sealed anew)", (long long)s.changed);
	printf(".\n");
	if (s.failed)
		rc = cli_fail(EXIT_RUNTIME,
		              "%lld value(s) would not open with %s and were left as they were "
		              "(first: %s)",
		              (long long)s.failed, k.path, s.first_failed);
	else if (src != STORE_OK)
		rc = cli_fail(EXIT_RUNTIME, "cannot write the audit event (store error %d)", src);
out:
	keyed_close(&k);
	return rc;
}

/* Is key_id in the store and not retired? 1 yes, 0 no, or a negative store code. */
static int key_in_use(struct store *st, const char *key_id)
{
	struct store_secret_key *keys = NULL;
	int n = 0;
	int rc = store_secret_key_list(st, &keys, &n);
	if (rc != STORE_OK)
		return rc;
	int found = 0;
	for (int i = 0; i < n; i++)
		if (strcmp(keys[i].key_id, key_id) == 0 && keys[i].retired_at < 0)
			found = 1;
	free(keys);
	return found;
}

static int cli_secrets_retire(const struct cli_args *a)
{
	const char *key_id = a->operand[0];
	char probe[SEALED_KEY_ID_LEN + 8], back[SEALED_KEY_ID_LEN + 1];
	snprintf(probe, sizeof probe, "pcs1:%.*s:", SEALED_KEY_ID_LEN + 1, key_id);
	if (strlen(key_id) != SEALED_KEY_ID_LEN || sealed_stored_key_id(probe, back) != SEALED_OK)
		return cli_usage_error(a->cmd, "KEYID must be a key id (16 lower-case hex digits)");
	struct keyed k;
	int rc = keyed_open(a, &k);
	if (rc != EXIT_OK)
		return rc;
	char err[ERR_MAX];
	if (strcmp(key_id, k.cur) == 0) {
		rc = cli_fail(
		    EXIT_RUNTIME,
		    "%s is the current key: `portcullis secrets rotate` first, then rewrap",
		    key_id);
		goto out;
	}
	int in_use = key_in_use(k.o.st, key_id);
	if (in_use < 0) {
		rc = cli_fail(EXIT_RUNTIME, "store error %d", in_use);
		goto out;
	}
	if (in_use) {
		int64_t sealed = 0;
		int src = store_secrets_count_for_key(k.o.st, key_id, &sealed);
		if (src == STORE_OK && sealed > 0) {
			rc = cli_fail(EXIT_RUNTIME,
			              "%lld value(s) are still sealed to %s: `portcullis secrets "
			              "rewrap` first",
			              (long long)sealed, key_id);
			goto out;
		}
		struct audit_input au = key_audit("cli", "secret_key.retired", key_id);
		if (src == STORE_OK)
			src = store_secret_key_retire(k.o.st, key_id, &au);
		if (src == STORE_ECONFLICT) {
			rc = cli_fail(
			    EXIT_RUNTIME,
			    "values are still sealed to %s: `portcullis secrets rewrap` first",
			    key_id);
			goto out;
		}
		if (src != STORE_OK) {
			rc = cli_fail(EXIT_RUNTIME, "store error %d", src);
			goto out;
		}
	} else if (!sealed_keyring_has(k.kr, key_id)) {
		rc = cli_fail(EXIT_RUNTIME, "no key %s in use here or in %s", key_id, k.path);
		goto out;
	}
	/* The store no longer uses it (now, or from an earlier run): drop it from the file. */
	if (sealed_keyring_has(k.kr, key_id)) {
		sealed_keyring_remove(k.kr, key_id);
		if (sealed_keyring_write(k.kr, k.path, false, err, sizeof err) != SEALED_OK) {
			rc = cli_fail(EXIT_RUNTIME,
			              "%s is retired, but it is still in the private key file: %s "
			              "(run retire again)",
			              key_id, err);
			goto out;
		}
	}
	printf("Retired key %s and removed it from %s.\n", key_id, k.path);
out:
	keyed_close(&k);
	return rc;
}

static int cli_secrets_list(const struct cli_args *a)
{
	struct cli_instance o;
	int rc = cli_instance_open(cli_config_path(a), &o);
	if (rc != EXIT_OK)
		return rc;
	char *path = key_path(&o);
	struct sealed_keyring *kr = NULL;
	char err[ERR_MAX];
	if (path && sealed_keyring_load(path, &kr, err, sizeof err) != SEALED_OK)
		fprintf(stderr, "portcullis: %s\n", err);
	struct store_secret_key *keys = NULL;
	int n = 0;
	int src = store_secret_key_list(o.st, &keys, &n);
	char cur[SEALED_KEY_ID_LEN + 1] = "";
	uint8_t pk[SEALED_PK_LEN];
	if (src == STORE_OK && store_secret_key_current(o.st, cur, pk) == STORE_ENOTFOUND)
		cur[0] = '\0';
	if (src != STORE_OK) {
		rc = cli_fail(EXIT_RUNTIME, "store error %d", src);
		goto out;
	}
	printf("%-16s  %-24s  %-8s  %-7s  %s\n", "KEY_ID", "CREATED", "STATE", "SEALED", "IN_FILE");
	for (int i = 0; i < n; i++) {
		char created[40];
		int64_t sealed = 0;
		clock_format_rfc3339(keys[i].created_at, created, sizeof created);
		if (store_secrets_count_for_key(o.st, keys[i].key_id, &sealed) != STORE_OK)
			sealed = -1;
		const char *state = keys[i].retired_at >= 0            ? "retired"
		                    : strcmp(keys[i].key_id, cur) == 0 ? "current"
		                                                       : "old";
		printf("%-16s  %-24s  %-8s  %-7lld  %s\n", keys[i].key_id, created, state,
		       (long long)sealed,
		       !kr                                      ? "?"
		       : sealed_keyring_has(kr, keys[i].key_id) ? "yes"
		                                                : "no");
	}
out:
	free(keys);
	sealed_keyring_free(kr);
	free(path);
	cli_instance_close(&o);
	return rc;
}

const struct cli_command cli_cmd_secrets_init = {
    .name = "secrets",
    .verb = "init",
    CLI_OPTS(cli_opts_config),
    .summary = "create the key pair column secrets are sealed to, for an instance without one",
    .run = cli_secrets_init,
};

const struct cli_command cli_cmd_secrets_rotate = {
    .name = "secrets",
    .verb = "rotate",
    CLI_OPTS(cli_opts_config),
    .summary = "add a new key pair; new secrets are sealed to it",
    .run = cli_secrets_rotate,
};

const struct cli_command cli_cmd_secrets_rewrap = {
    .name = "secrets",
    .verb = "rewrap",
    CLI_OPTS(cli_opts_config),
    .summary = "re-seal every stored secret to the current key, in short batches",
    .run = cli_secrets_rewrap,
};

const struct cli_command cli_cmd_secrets_retire = {
    .name = "secrets",
    .verb = "retire",
    .operands = "KEYID",
    .min_operands = 1,
    .max_operands = 1,
    CLI_OPTS(cli_opts_config),
    .summary = "retire an old key (refused while anything is sealed to it) and drop it from "
               "the private key file",
    .run = cli_secrets_retire,
};

const struct cli_command cli_cmd_secrets_list = {
    .name = "secrets",
    .verb = "list",
    CLI_OPTS(cli_opts_config),
    .summary = "list the secrets keys: id, created, state, values sealed to it, in the file",
    .run = cli_secrets_list,
};
