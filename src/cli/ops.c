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
#include "store/store_events.h"
#include "store/store_webhooks.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int cli_keys_list(const struct cli_args *a)
{
	const char *org = cli_value(a, "--org");
	if (!ulid_valid(org, strlen(org)))
		return cli_usage_error(a->cmd, "--org must be an organization id (a ULID)");
	struct cli_instance o;
	int rc = cli_instance_open(cli_config_path(a), &o);
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
			const char *state = keys_status(&keys[i], killed, clock_now_ms());
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
	cli_instance_close(&o);
	return rc;
}

/* kill|unkill key|org|global [ID] */
static int kill_cmd(const struct cli_args *a, bool engage)
{
	const char *what = a->operand[0];
	const char *scope = strcmp(what, "key") == 0      ? "key"
	                    : strcmp(what, "org") == 0    ? "organization"
	                    : strcmp(what, "global") == 0 ? "global"
	                                                  : NULL;
	if (!scope)
		return cli_usage_error(a->cmd, "what to %s must be key, org or global, not \"%s\"",
		                       engage ? "kill" : "unkill", what);
	bool global = strcmp(scope, "global") == 0;
	const char *id = a->n_operands == 2 ? a->operand[1] : "";
	if (global && id[0])
		return cli_usage_error(a->cmd, "the global kill switch takes no ID");
	if (!global && !ulid_valid(id, strlen(id)))
		return cli_usage_error(a->cmd, "\"%s\" must be followed by its id (a ULID)", what);
	const char *reason = engage ? cli_value(a, "--reason") : NULL;
	if (engage && (!*reason || strlen(reason) > STORE_REASON_MAX))
		return cli_usage_error(a->cmd, "--reason TEXT must be 1 to %d characters",
		                       STORE_REASON_MAX);
	struct cli_instance o;
	int rc = cli_instance_open(cli_config_path(a), &o);
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
		cli_instance_close(&o);
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
	cli_instance_close(&o);
	return rc;
}

static int cli_kill(const struct cli_args *a)
{
	return kill_cmd(a, true);
}

static int cli_unkill(const struct cli_args *a)
{
	return kill_cmd(a, false);
}

static int cli_audit_verify(const struct cli_args *a)
{
	struct cli_instance o;
	int rc = cli_instance_open(cli_config_path(a), &o);
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
	cli_instance_close(&o);
	return rc;
}

static int cli_retention_run(const struct cli_args *a)
{
	struct cli_instance o;
	int rc = cli_instance_open(cli_config_path(a), &o);
	if (rc != EXIT_OK)
		return rc;
	int64_t deleted = 0, now = clock_now_ms();
	int src = reqlog_purge(o.st, o.cfg.retention_request_log_days, now, &deleted);
	if (src == STORE_OK)
		printf("purged %lld request-log row(s) older than %lld day(s)\n",
		       (long long)deleted, (long long)o.cfg.retention_request_log_days);
	/* The webhook records, with the worker's hourly purge's cutoff (delivery/worker.c). */
	if (src == STORE_OK)
		src = store_webhooks_purge(o.st, now - o.cfg.retention_webhook_days * 86400000LL,
		                           &deleted);
	if (src == STORE_OK)
		printf("purged %lld webhook row(s) older than %lld day(s)\n", (long long)deleted,
		       (long long)o.cfg.retention_webhook_days);
	/* The SDK events, as the same hourly purge (delivery/worker.c). */
	if (src == STORE_OK)
		src = store_events_retention(o.st, o.cfg.retention_events_days, now, &deleted);
	if (src == STORE_OK)
		printf("purged %lld event(s) older than %lld day(s)\n", (long long)deleted,
		       (long long)o.cfg.retention_events_days);
	if (src == STORE_OK)
		src = reqlog_usage_purge(o.st, o.cfg.retention_usage_days, now, &deleted);
	if (src == STORE_OK)
		printf("purged %lld usage rollup row(s) older than %lld day(s)\n",
		       (long long)deleted, (long long)o.cfg.retention_usage_days);
	else
		rc = cli_fail(EXIT_RUNTIME, "store error %d", src);
	cli_instance_close(&o);
	return rc;
}

static const struct cli_opt keys_list_opts[] = {
    {"--org", 0, "ORG_ID", true, "the organization whose keys to list"},
    CLI_OPT_CONFIG,
};

static const struct cli_opt kill_opts[] = {
    {"--reason", 0, "TEXT", true,
     "why, for the audit log (1 to " CLI_STR(STORE_REASON_MAX) " characters)"},
    CLI_OPT_CONFIG,
};

const struct cli_command cli_cmd_keys_list = {
    .name = "keys",
    .verb = "list",
    CLI_OPTS(keys_list_opts),
    .summary = "list an organisation's keys (never a secret)",
    .run = cli_keys_list,
};

const struct cli_command cli_cmd_kill = {
    .name = "kill",
    .operands = "key|org|global [ID]",
    .min_operands = 1,
    .max_operands = 2,
    CLI_OPTS(kill_opts),
    .summary = "engage a kill switch; a running server applies it within about a second",
    .run = cli_kill,
};

const struct cli_command cli_cmd_unkill = {
    .name = "unkill",
    .operands = "key|org|global [ID]",
    .min_operands = 1,
    .max_operands = 2,
    CLI_OPTS(cli_opts_config),
    .summary = "lift a kill switch",
    .run = cli_unkill,
};

const struct cli_command cli_cmd_audit_verify = {
    .name = "audit",
    .verb = "verify",
    CLI_OPTS(cli_opts_config),
    .summary = "check the audit log's hash chain",
    .run = cli_audit_verify,
};

const struct cli_command cli_cmd_retention_run = {
    .name = "retention",
    .verb = "run",
    CLI_OPTS(cli_opts_config),
    .summary = "purge request-log rows and webhook records past their [retention] days",
    .run = cli_retention_run,
};
