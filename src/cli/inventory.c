/*
 * inventory.c: `portcullis keys inventory --org ID [--format json|csv]`: the
 * key inventory of one organisation (app/inventory.h), every key, read from
 * the store directly (no server needed) a page at a time. JSON is one
 * object, {"org_id", "generated_at", "data": [the key objects of
 * GET /v1/api-keys/inventory]}; CSV is a header row and one row per key,
 * printed page by page.
 */
#include "app/inventory.h"
#include "cli/cli.h"
#include "core/clock.h"
#include "core/json.h"
#include "core/ulid.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CSV_PAGE_MAX ((size_t)64 * 1024 * 1024) /* one page's CSV (1000 keys) is far less */

/* Append a page's rows to all (JSON) or print them (CSV). 0, or -1 when out of room. */
static int emit(json_t *page, bool csv, bool first, json_t *all)
{
	if (!csv)
		return json_array_extend(all, page);
	struct buf b;
	buf_init(&b, CSV_PAGE_MAX);
	int rc = inventory_csv(&b, page, first);
	if (rc == 0 && b.len)
		fwrite(b.data, 1, b.len, stdout);
	buf_free(&b);
	return rc;
}

static int run_pages(struct store *st, const char *org, bool csv)
{
	struct inventory_query q = {
	    .org_id = org, .limit = INVENTORY_PAGE_MAX, .now = clock_now_ms()};
	char after[STORE_ID_LEN + 1];
	json_t *all = json_array();
	int rc = EXIT_OK;
	for (bool first = true;; first = false) {
		json_t *page = NULL;
		char next[STORE_ID_LEN + 1];
		int src = inventory_page(st, &q, &page, next);
		if (src == STORE_ENOTFOUND)
			rc = cli_fail(EXIT_USAGE, "no such organization: %s", org);
		else if (src != STORE_OK)
			rc = cli_fail(EXIT_RUNTIME, "store error %d", src);
		else if (emit(page, csv, first, all) < 0)
			rc = cli_fail(EXIT_RUNTIME, "out of memory");
		json_decref(page);
		if (rc != EXIT_OK || !next[0])
			break;
		memcpy(after, next, sizeof after);
		q.after = after;
	}
	if (rc == EXIT_OK && !csv) {
		json_t *doc = json_pack("{s:s, s:o, s:O}", "org_id", org, "generated_at",
		                        json_time(q.now), "data", all);
		char *out = doc ? json_dumps(doc, JSON_INDENT(2)) : NULL;
		json_decref(doc);
		if (out) {
			puts(out);
			free(out);
		} else {
			rc = cli_fail(EXIT_RUNTIME, "out of memory");
		}
	}
	json_decref(all);
	return rc;
}

static int cli_keys_inventory(const struct cli_args *a)
{
	const char *org = cli_value(a, "--org"), *format = cli_value(a, "--format");
	if (!ulid_valid(org, strlen(org)))
		return cli_usage_error(a->cmd, "--org must be an organization id (a ULID)");
	bool csv = format && strcmp(format, "csv") == 0;
	if (format && !csv && strcmp(format, "json") != 0)
		return cli_usage_error(a->cmd, "--format must be json or csv, not \"%s\"", format);
	struct cli_instance o;
	int rc = cli_instance_open(cli_config_path(a), &o);
	if (rc != EXIT_OK)
		return rc;
	rc = run_pages(o.st, org, csv);
	cli_instance_close(&o);
	return rc;
}

static const struct cli_opt keys_inventory_opts[] = {
    {"--org", 0, "ORG_ID", true, "the organization whose keys to list"},
    {"--format", 0, "json|csv", false, "JSON for tools (default) or CSV for a spreadsheet"},
    CLI_OPT_CONFIG,
};

const struct cli_command cli_cmd_keys_inventory = {
    .name = "keys",
    .verb = "inventory",
    CLI_OPTS(keys_inventory_opts),
    .summary = "every key of an organisation with its status, use, last region and flags",
    .run = cli_keys_inventory,
};
