/*
 * users.c: `portcullis user create --email E [--name N] [--operator]` and
 * `portcullis user disable --email E`: the console's people from the
 * command line, without the server running (the first operator comes from
 * here). Audited as the API's changes are (actor type "system", id "cli");
 * a running server refuses a disabled user's sessions at their next
 * request, since every session check reads the store.
 */
#include "cli/cli.h"
#include "console/creds.h"
#include "core/clock.h"
#include "core/ulid.h"
#include "store/store_console.h"

#include <stdio.h>
#include <string.h>

static const struct cli_opt create_opts[] = {
    {"--email", 0, "EMAIL", true, "the person's address (ASCII, stored lower-case)"},
    {"--name", 0, "NAME", false, "their name, up to " CLI_STR(STORE_NAME_MAX) " bytes"},
    {"--operator", 0, NULL, false,
     "an operator: the platform's own staff, with what root keys may do"},
    CLI_OPT_CONFIG,
};

static const struct cli_opt disable_opts[] = {
    {"--email", 0, "EMAIL", true, "the address of the user to disable"},
    CLI_OPT_CONFIG,
};

static int cli_user_create(const struct cli_args *a)
{
	struct store_user u = {.last_login_at = -1, .disabled_at = -1};
	if (console_email_normalize(cli_value(a, "--email"), u.email) < 0)
		return cli_usage_error(a->cmd, "--email must be a plain ASCII address");
	const char *name = cli_value(a, "--name");
	if (name && strlen(name) > STORE_NAME_MAX)
		return cli_usage_error(a->cmd, "--name is longer than %d bytes", STORE_NAME_MAX);
	snprintf(u.name, sizeof u.name, "%s", name ? name : "");
	u.operator= cli_value(a, "--operator") != NULL;
	ulid_new(u.id);
	u.created_at = clock_now_ms();
	struct cli_instance o;
	int rc = cli_instance_open(cli_config_path(a), &o);
	if (rc != EXIT_OK)
		return rc;
	json_t *details = json_pack("{s:s, s:b}", "email", u.email, "operator", u.operator);
	struct audit_input au = {.actor_type = "system",
	                         .actor_id = "cli",
	                         .action = "user.created",
	                         .target_type = "user",
	                         .target_id = u.id,
	                         .details = details};
	int src = store_user_insert(o.st, &u, &au);
	json_decref(details);
	if (src == STORE_ECONFLICT)
		rc = cli_fail(EXIT_RUNTIME, "a user with the address %s exists", u.email);
	else if (src != STORE_OK)
		rc = cli_fail(EXIT_RUNTIME, "store error %d", src);
	else
		printf("user %s created: %s%s\n", u.id, u.email, u.operator? " (operator)" : "");
	cli_instance_close(&o);
	return rc;
}

static int cli_user_disable(const struct cli_args *a)
{
	char email[STORE_EMAIL_MAX + 1];
	if (console_email_normalize(cli_value(a, "--email"), email) < 0)
		return cli_usage_error(a->cmd, "--email must be a plain ASCII address");
	struct cli_instance o;
	int rc = cli_instance_open(cli_config_path(a), &o);
	if (rc != EXIT_OK)
		return rc;
	struct store_user u;
	int src = store_user_by_email(o.st, email, &u);
	int64_t ended = 0;
	if (src == STORE_OK) {
		struct audit_input au = {.actor_type = "system",
		                         .actor_id = "cli",
		                         .action = "user.disabled",
		                         .target_type = "user",
		                         .target_id = u.id};
		src = store_user_disable(o.st, u.id, clock_now_ms(), &au, &ended);
	}
	if (src == STORE_ENOTFOUND)
		rc = cli_fail(EXIT_RUNTIME, "no user has the address %s", email);
	else if (src != STORE_OK)
		rc = cli_fail(EXIT_RUNTIME, "store error %d", src);
	else
		printf("user %s disabled; %lld session(s) ended\n", u.id, (long long)ended);
	cli_instance_close(&o);
	return rc;
}

const struct cli_command cli_cmd_user_create = {
    .name = "user",
    .verb = "create",
    CLI_OPTS(create_opts),
    .summary = "create a console user (the first operator comes from here)",
    .run = cli_user_create,
};

const struct cli_command cli_cmd_user_disable = {
    .name = "user",
    .verb = "disable",
    CLI_OPTS(disable_opts),
    .summary = "disable a console user and end every session of theirs, on every node",
    .run = cli_user_disable,
};
