/*
 * incident.c: `portcullis incident report --key ID [--since T] [--until T]
 * [--format text|json]`: the incident report of one key (app/incident.h),
 * read from the store directly (no server needed), as text for a terminal
 * or as the same JSON object GET /v1/incidents/report answers.
 */
#include "app/incident.h"
#include "cli/cli.h"
#include "core/clock.h"
#include "core/ulid.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* An optional RFC 3339 option into *out (-1 when absent): 0, or -1 when malformed. */
static int time_opt(const struct cli_args *a, const char *name, int64_t *out)
{
	const char *v = cli_value(a, name);
	*out = -1;
	return v && clock_parse_rfc3339(v, out) < 0 ? -1 : 0;
}

static int cli_incident_report(const struct cli_args *a)
{
	const char *key = cli_value(a, "--key"), *format = cli_value(a, "--format");
	if (!ulid_valid(key, strlen(key)))
		return cli_usage_error(a->cmd, "--key must be a key id (a ULID)");
	bool json = format && strcmp(format, "json") == 0;
	if (format && !json && strcmp(format, "text") != 0)
		return cli_usage_error(a->cmd, "--format must be text or json, not \"%s\"", format);
	struct incident_query q = {.key_id = key, .now = clock_now_ms()};
	if (time_opt(a, "--since", &q.since) < 0 || time_opt(a, "--until", &q.until) < 0)
		return cli_usage_error(a->cmd, "--since and --until must be RFC 3339 times");
	char err[128];
	if (incident_window(&q, err, sizeof err) < 0)
		return cli_usage_error(a->cmd, "%s", err);
	struct cli_instance o;
	int rc = cli_instance_open(cli_config_path(a), &o);
	if (rc != EXIT_OK)
		return rc;
	json_t *report = NULL;
	int src = incident_report(o.st, &q, &report);
	cli_instance_close(&o);
	if (src == STORE_ENOTFOUND)
		return cli_fail(EXIT_USAGE, "no such key: %s", key);
	if (src != STORE_OK)
		return cli_fail(EXIT_RUNTIME, "store error %d", src);
	char *out = json ? json_dumps(report, JSON_INDENT(2)) : incident_render_text(report);
	json_decref(report);
	if (!out)
		return cli_fail(EXIT_RUNTIME, "out of memory");
	fputs(out, stdout);
	if (json)
		fputc('\n', stdout);
	free(out);
	return EXIT_OK;
}

static const struct cli_opt incident_report_opts[] = {
    {"--key", 0, "KEY_ID", true, "the key the report is about"},
    {"--since", 0, "TIME", false,
     "start of the window, RFC 3339 (default: " CLI_STR(INCIDENT_DEFAULT_DAYS) " days before "
                                                                               "--until)"},
    {"--until", 0, "TIME", false, "end of the window, RFC 3339 (default: now)"},
    {"--format", 0, "text|json", false, "text for a terminal (default) or JSON for tools"},
    CLI_OPT_CONFIG,
};

const struct cli_command cli_cmd_incident_report = {
    .name = "incident",
    .verb = "report",
    CLI_OPTS(incident_report_opts),
    .summary = "what a key did, from where, what else is exposed, and what to do now",
    .run = cli_incident_report,
};
