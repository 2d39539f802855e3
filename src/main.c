/*
 * main.c: `portcullis` command-line dispatch. Every command is a struct
 * cli_command (src/cli/cli.h) in the table below; `portcullis help` and each
 * command's usage are printed from the same table, and cli_parse reads every
 * command line against its command's options before the command runs.
 * Exit codes: 0 ok, 1 runtime failure, 2 usage or configuration error.
 */
#include "build_info.h"
#include "cli/cli.h"

#include <curl/curl.h>
#include <stdio.h>
#include <string.h>

static int run_version(const struct cli_args *a)
{
	(void)a;
	printf("portcullis %s\n", PORTCULLIS_VERSION);
	return EXIT_OK;
}

static int run_help(const struct cli_args *a);

static const struct cli_command cmd_version = {
    .name = "version", .summary = "print the version", .run = run_version};

static const struct cli_command cmd_help = {
    .name = "help",
    .operands = "[COMMAND]",
    .max_operands = 2,
    .summary = "list the commands, or print one command's usage and options",
    .run = run_help,
};

static const struct cli_command *const commands[] = {
    &cli_cmd_init,
    &cli_cmd_serve,
    &cli_cmd_worker,
    &cli_cmd_migrate,
    &cli_cmd_config_check,
    &cli_cmd_config_example,
    &cli_cmd_root_key_create,
    &cli_cmd_user_create,
    &cli_cmd_user_disable,
    &cli_cmd_keys_list,
    &cli_cmd_keys_inventory,
    &cli_cmd_kill,
    &cli_cmd_unkill,
    &cli_cmd_incident_report,
    &cli_cmd_audit_verify,
    &cli_cmd_retention_run,
    &cli_cmd_secrets_init,
    &cli_cmd_secrets_rotate,
    &cli_cmd_secrets_rewrap,
    &cli_cmd_secrets_retire,
    &cli_cmd_secrets_list,
    &cmd_version,
    &cmd_help,
};
#define N_COMMANDS (sizeof commands / sizeof commands[0])

/* The synopsis and summary of every command named name (all when NULL). */
static void list_commands(FILE *out, const char *name)
{
	for (size_t i = 0; i < N_COMMANDS; i++) {
		if (name && strcmp(commands[i]->name, name) != 0)
			continue;
		char syn[512];
		cli_synopsis(commands[i], syn, sizeof syn);
		fprintf(out, "  %s\n      %s\n", syn, commands[i]->summary);
	}
}

static void usage(FILE *out)
{
	fputs("usage: portcullis COMMAND [options]\n\ncommands:\n", out);
	list_commands(out, NULL);
	fputs("\n`portcullis COMMAND --help` prints a command's options. Exit codes: 0 ok,\n"
	      "1 runtime failure, 2 usage or configuration error.\n",
	      out);
}

/* The command for words[0] (and words[1], its verb, when it has one). */
static const struct cli_command *find_command(int n, const char *const *words, bool *known_name)
{
	*known_name = false;
	for (size_t i = 0; i < N_COMMANDS; i++) {
		if (strcmp(commands[i]->name, words[0]) != 0)
			continue;
		*known_name = true;
		if (!commands[i]->verb || (n >= 2 && strcmp(commands[i]->verb, words[1]) == 0))
			return commands[i];
	}
	return NULL;
}

static int run_help(const struct cli_args *a)
{
	if (a->n_operands == 0) {
		usage(stdout);
		return EXIT_OK;
	}
	bool known;
	const struct cli_command *c = find_command(a->n_operands, a->operand, &known);
	if (!known)
		return cli_fail(EXIT_USAGE, "unknown command \"%s\" (try `portcullis help`)",
		                a->operand[0]);
	if (!c && a->n_operands == 2)
		return cli_fail(EXIT_USAGE, "unknown subcommand \"%s %s\"", a->operand[0],
		                a->operand[1]);
	if (c) {
		cli_usage(c, stdout);
	} else {
		fputs("usage:\n", stdout);
		list_commands(stdout, a->operand[0]);
	}
	return EXIT_OK;
}

int main(int argc, char **argv)
{
	curl_global_init(CURL_GLOBAL_DEFAULT);
	if (argc < 2) {
		cli_fail(EXIT_USAGE, "no command given");
		usage(stderr);
		return EXIT_USAGE;
	}
	if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)
		argv[1] = (char *)"help";
	else if (strcmp(argv[1], "--version") == 0)
		argv[1] = (char *)"version";
	bool known;
	const struct cli_command *c =
	    find_command(argc - 1, (const char *const *)(argv + 1), &known);
	if (!known)
		return cli_fail(EXIT_USAGE, "unknown command \"%s\" (try `portcullis help`)",
		                argv[1]);
	if (!c) {
		/* A command whose verb is missing or unknown ("config", "keys frob"). */
		bool help =
		    argc >= 3 && (strcmp(argv[2], "--help") == 0 || strcmp(argv[2], "-h") == 0);
		if (!help && argc >= 3)
			cli_fail(EXIT_USAGE, "unknown subcommand \"%s %s\"", argv[1], argv[2]);
		else if (!help)
			cli_fail(EXIT_USAGE, "\"%s\" needs a subcommand", argv[1]);
		fputs("usage:\n", help ? stdout : stderr);
		list_commands(help ? stdout : stderr, argv[1]);
		return help ? EXIT_OK : EXIT_USAGE;
	}
	int words = c->verb ? 2 : 1;
	struct cli_args a;
	int rc;
	if (cli_parse(c, argc - 1 - words, argv + 1 + words, &a, &rc) < 0)
		return rc;
	return c->run(&a);
}
