/*
 * ops.c: operator commands that work without the server running:
 * `keys list --org ORG`, `kill key|org|global [ID] --reason TEXT`,
 * `unkill key|org|global [ID]`, `audit verify`, `retention run`.
 * They write the same audit events as the API (actor type "system", id
 * "cli"); a running server sees the change within a second (state version).
 */
#include "app/killops.h"
#include "auth/keys.h"
#include "cli/cli.h"
#include "core/clock.h"
#include "core/config.h"
#include "core/ulid.h"
#include "gateway/reqlog.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct ops {
	struct config cfg;
	struct store *st;
};

static int ops_open(int argc, char **argv, struct ops *o)
{
	char err[600];
	memset(o, 0, sizeof *o);
	if (config_load(&o->cfg, cli_config_path(argc, argv), err, sizeof err) < 0) {
		config_free(&o->cfg);
		return cli_fail(EXIT_USAGE, "%s", err);
	}
	if (store_open(o->cfg.store_url, 1, &o->st, err, sizeof err) != STORE_OK) {
		config_free(&o->cfg);
		return cli_fail(EXIT_RUNTIME, "store: %s", err);
	}
	if (store_migrate(o->st, NULL) != STORE_OK) {
		store_close(o->st);
		config_free(&o->cfg);
		return cli_fail(EXIT_RUNTIME, "store: migrations failed");
	}
	return EXIT_OK;
}

static void ops_close(struct ops *o)
{
	store_close(o->st);
	config_free(&o->cfg);
}

int cli_keys(int argc, char **argv)
{
	const char *org = cli_flag(argc, argv, "--org");
	if (argc < 2 || strcmp(argv[1], "list") != 0 || !org)
		return cli_fail(EXIT_USAGE, "usage: portcullis keys list --org ORG_ID -c FILE");
	if (!ulid_valid(org, strlen(org)))
		return cli_fail(EXIT_USAGE, "--org must be an organization id (a ULID)");
	struct ops o;
	int rc = ops_open(argc, argv, &o);
	if (rc != EXIT_OK)
		return rc;
	const char *after = NULL;
	char cursor[STORE_ID_LEN + 1];
	printf("%-26s  %-4s  %-12s  %-8s  %s\n", "KEY_ID", "ENV", "START", "STATE", "NAME");
	for (;;) {
		struct store_key *keys = NULL;
		int n = 0;
		int src = store_key_list(o.st, org, NULL, after, 200, &keys, &n);
		if (src != STORE_OK) {
			rc = cli_fail(EXIT_RUNTIME, "store error %d", src);
			free(keys);
			break;
		}
		for (int i = 0; i < n; i++) {
			struct store_kill kill;
			bool killed = store_kill_get(o.st, "key", keys[i].id, &kill) == STORE_OK;
			const char *state =
			    keys[i].revoked_at >= 0 ? "revoked"
			    : killed                ? "killed"
			    : (keys[i].expires_at >= 0 && keys[i].expires_at <= clock_now_ms())
			        ? "expired"
			        : "active";
			printf("%-26s  %-4s  %-12s  %-8s  %s\n", keys[i].id, keys[i].env,
			       keys[i].start, state, keys[i].name);
		}
		if (n < 200) {
			free(keys);
			break;
		}
		snprintf(cursor, sizeof cursor, "%s", keys[n - 1].id);
		after = cursor;
		free(keys);
	}
	ops_close(&o);
	return rc;
}

/* kill|unkill key|org|global [ID] */
static int kill_cmd(int argc, char **argv, bool engage)
{
	const char *usage = engage
	                        ? "usage: portcullis kill key|org|global [ID] --reason TEXT -c FILE"
	                        : "usage: portcullis unkill key|org|global [ID] -c FILE";
	if (argc < 2)
		return cli_fail(EXIT_USAGE, "%s", usage);
	const char *what = argv[1];
	const char *scope = strcmp(what, "key") == 0      ? "key"
	                    : strcmp(what, "org") == 0    ? "organization"
	                    : strcmp(what, "global") == 0 ? "global"
	                                                  : NULL;
	bool global = scope && strcmp(scope, "global") == 0;
	const char *id = !global && argc >= 3 && argv[2][0] != '-' ? argv[2] : "";
	if (!scope || (!global && !ulid_valid(id, strlen(id))))
		return cli_fail(EXIT_USAGE, "%s", usage);
	const char *reason = cli_flag(argc, argv, "--reason");
	if (engage && (!reason || !*reason || strlen(reason) > STORE_REASON_MAX))
		return cli_fail(EXIT_USAGE, "--reason TEXT (1 to %d characters) is required",
		                STORE_REASON_MAX);
	struct ops o;
	int rc = ops_open(argc, argv, &o);
	if (rc != EXIT_OK)
		return rc;
	char org_id[STORE_ID_LEN + 1] = "";
	int src = STORE_OK;
	if (strcmp(scope, "key") == 0) {
		struct store_key k;
		src = store_key_get(o.st, id, &k);
		if (src == STORE_OK)
			snprintf(org_id, sizeof org_id, "%s", k.org_id);
	} else if (strcmp(scope, "organization") == 0) {
		struct store_org org;
		src = store_org_get(o.st, id, &org);
		snprintf(org_id, sizeof org_id, "%s", id);
	}
	if (src == STORE_ENOTFOUND) {
		ops_close(&o);
		return cli_fail(EXIT_USAGE, "no such %s: %s", what, id);
	}
	struct kill_request kr = {
	    .scope = scope,
	    .target_id = id,
	    .org_id = org_id[0] ? org_id : NULL,
	    .set_by = "root",
	    .actor_type = "system",
	    .actor_id = "cli",
	    .reason = reason,
	};
	if (src == STORE_OK)
		src = engage ? killops_engage(o.st, &kr) : killops_lift(o.st, &kr);
	if (src == STORE_OK)
		printf("%s %s%s%s\n", engage ? "killed" : "lifted", what, id[0] ? " " : "", id);
	else if (src == STORE_ENOTFOUND && !engage)
		printf("no kill switch was engaged on %s%s%s\n", what, id[0] ? " " : "", id);
	else
		rc = cli_fail(EXIT_RUNTIME, "store error %d", src);
	ops_close(&o);
	return rc;
}

int cli_kill(int argc, char **argv)
{
	return kill_cmd(argc, argv, true);
}

int cli_unkill(int argc, char **argv)
{
	return kill_cmd(argc, argv, false);
}

int cli_audit(int argc, char **argv)
{
	if (argc < 2 || strcmp(argv[1], "verify") != 0)
		return cli_fail(EXIT_USAGE, "usage: portcullis audit verify -c FILE");
	struct ops o;
	int rc = ops_open(argc, argv, &o);
	if (rc != EXIT_OK)
		return rc;
	int64_t checked = 0;
	char bad[STORE_ID_LEN + 1];
	int src = store_audit_verify(o.st, &checked, bad);
	if (src == STORE_OK)
		printf("audit chain ok: %lld event(s) verified\n", (long long)checked);
	else if (src == STORE_ECONFLICT)
		rc = cli_fail(EXIT_RUNTIME,
		              "audit chain broken at event %s (after %lld good event(s))", bad,
		              (long long)checked);
	else
		rc = cli_fail(EXIT_RUNTIME, "store error %d", src);
	ops_close(&o);
	return rc;
}

int cli_retention(int argc, char **argv)
{
	if (argc < 2 || strcmp(argv[1], "run") != 0)
		return cli_fail(EXIT_USAGE, "usage: portcullis retention run -c FILE");
	struct ops o;
	int rc = ops_open(argc, argv, &o);
	if (rc != EXIT_OK)
		return rc;
	int64_t deleted = 0;
	int src = reqlog_purge(o.st, o.cfg.retention_request_log_days, clock_now_ms(), &deleted);
	if (src == STORE_OK)
		printf("purged %lld request-log row(s) older than %lld day(s)\n",
		       (long long)deleted, (long long)o.cfg.retention_request_log_days);
	else
		rc = cli_fail(EXIT_RUNTIME, "store error %d", src);
	ops_close(&o);
	return rc;
}
