/*
 * main.c: `portcullis` command-line dispatch. Exit codes: 0 ok, 1 runtime
 * failure, 2 usage or configuration error.
 */
#include "build_info.h"
#include "cli/cli.h"

#include <curl/curl.h>
#include <stdio.h>
#include <string.h>

static const char usage[] =
    "usage: portcullis COMMAND [options]\n"
    "\n"
    "  init --data-dir DIR        create a local instance (config, database, root key)\n"
    "  serve -c FILE              run the gateway in the foreground\n"
    "  migrate -c FILE            apply database migrations\n"
    "  config check -c FILE       validate a configuration file\n"
    "  config example             print every setting with its default\n"
    "  root-key create -c FILE    create an operator (root) key, printed once\n"
    "  keys list --org ORG         list an organization's keys\n"
    "  kill key|org|global [ID] --reason TEXT   engage a kill switch\n"
    "  unkill key|org|global [ID]  lift a kill switch\n"
    "  audit verify               check the audit log's hash chain\n"
    "  retention run              purge request-log rows past retention\n"
    "  version                    print the version\n"
    "  help                       this text\n";

struct command {
	const char *name;
	int (*run)(int argc, char **argv);
};

static const struct command commands[] = {
    {"init", cli_init},           {"serve", cli_serve},       {"migrate", cli_migrate},
    {"config", cli_config},       {"root-key", cli_root_key}, {"keys", cli_keys},
    {"kill", cli_kill},           {"unkill", cli_unkill},     {"audit", cli_audit},
    {"retention", cli_retention},
};

int main(int argc, char **argv)
{
	curl_global_init(CURL_GLOBAL_DEFAULT);
	if (argc < 2)
		return cli_fail(EXIT_USAGE, "no command given (try `portcullis help`)");
	const char *cmd = argv[1];
	if (strcmp(cmd, "help") == 0 || strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0) {
		fputs(usage, stdout);
		return EXIT_OK;
	}
	if (strcmp(cmd, "version") == 0 || strcmp(cmd, "--version") == 0) {
		printf("portcullis %s\n", PORTCULLIS_VERSION);
		return EXIT_OK;
	}
	for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
		if (strcmp(cmd, commands[i].name) == 0)
			return commands[i].run(argc - 1, argv + 1);
	return cli_fail(EXIT_USAGE, "unknown command \"%s\" (try `portcullis help`)", cmd);
}
