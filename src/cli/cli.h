/*
 * cli.h: the `portcullis` subcommands. Each is described by one struct
 * cli_command (its words, operands and option table); main.c lists them and
 * one parser, cli_parse, reads every command line against its command's
 * table before anything runs. A command's run function returns the process
 * exit code: 0 ok, 1 runtime failure, 2 usage or configuration error (with a
 * one-line message on stderr).
 */
#ifndef PORTCULLIS_CLI_CLI_H
#define PORTCULLIS_CLI_CLI_H

#include "core/config.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

struct store;

enum { EXIT_OK = 0, EXIT_RUNTIME = 1, EXIT_USAGE = 2 };

/** The most options one command's table may hold, and the most operands. */
#define CLI_OPTS_MAX     8
#define CLI_OPERANDS_MAX 2

/** One row of a command's option table. -h/--help is implicit in every table. */
struct cli_opt {
	const char *name; /* long form, "--data-dir" */
	char short_name;  /* 'c' for -c, or 0 */
	const char *arg;  /* placeholder of its value ("DIR"), or NULL: a flag without one */
	bool required;
	const char *help;
};

/** A number macro as a string literal, for help texts. */
#define CLI_STR_(x) #x
#define CLI_STR(x)  CLI_STR_(x)

/** -c/--config FILE, the row every command that opens an instance shares. */
#define CLI_OPT_CONFIG                                                                             \
	{                                                                                          \
		"--config", 'c', "FILE", false,                                                    \
		    "the instance's configuration (default: $PORTCULLIS_CONFIG, else "             \
		    "./portcullis.conf)"                                                           \
	}

/** The option table of a command whose one option is -c/--config. */
extern const struct cli_opt cli_opts_config[1];

/** The .opts and .n_opts of a struct cli_command, from an array. */
#define CLI_OPTS(table) .opts = (table), .n_opts = sizeof(table) / sizeof((table)[0])

struct cli_args;

/** One subcommand: `portcullis NAME [VERB] [OPERANDS] [options]`. */
struct cli_command {
	const char *name;     /* "config" */
	const char *verb;     /* "check", or NULL for a command without one */
	const char *operands; /* operands in the usage ("key|org|global [ID]"), or NULL */
	int min_operands, max_operands;
	const struct cli_opt *opts; /* n_opts rows (at most CLI_OPTS_MAX) */
	size_t n_opts;
	const char *summary; /* one line for `portcullis help` and the usage */
	int (*run)(const struct cli_args *a);
};

/** What cli_parse found: the value of each table row, and the operands. */
struct cli_args {
	const struct cli_command *cmd;
	const char *value[CLI_OPTS_MAX]; /* cmd->opts[i]: its value, the name for a flag, or NULL */
	const char *operand[CLI_OPERANDS_MAX];
	int n_operands;
};

/**
 * Read argv (the words after the command's name and verb) against cmd's
 * table into *a. Returns 0 when the command is to run. Otherwise returns -1:
 * the command must not run, and *exit_code is EXIT_OK after the usage was
 * printed on stdout for -h/--help (anywhere before "--"), or EXIT_USAGE after
 * a one-line error and the usage on stderr (an unknown option, a value
 * missing or given twice, a required option absent, too few or too many
 * operands). A value is the next argument or follows '=' (`--name=VALUE`);
 * a next argument that starts with '-' is not taken as a value.
 * argv's strings must outlive *a.
 */
int cli_parse(const struct cli_command *cmd, int argc, char **argv, struct cli_args *a,
              int *exit_code);

/** Print cmd's usage: synopsis, summary, and every option with its help. */
void cli_usage(const struct cli_command *cmd, FILE *out);

/** Write "portcullis NAME [VERB] [OPERANDS] options" into buf (truncated to cap). */
void cli_synopsis(const struct cli_command *cmd, char *buf, size_t cap);

/** The value of option name ("--org") of a's command, or NULL when absent. */
const char *cli_value(const struct cli_args *a, const char *name);

/** The -c/--config value, else $PORTCULLIS_CONFIG, else "portcullis.conf". */
const char *cli_config_path(const struct cli_args *a);

/**
 * Print "portcullis: MSG" and cmd's usage on stderr; returns EXIT_USAGE.
 * For a command line that cli_parse accepted but the command cannot use
 * (an operand or a value of the wrong form).
 */
int cli_usage_error(const struct cli_command *cmd, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/** A configuration and its store, opened for one command. */
struct cli_instance {
	struct config cfg;
	struct store *st;
};

/**
 * Load config_path, open its store and apply missing migrations. Returns
 * EXIT_OK, or the exit code after a one-line error (EXIT_USAGE for the
 * configuration, EXIT_RUNTIME for the store), with nothing left to close.
 */
int cli_instance_open(const char *config_path, struct cli_instance *inst);

/** Close what cli_instance_open opened. */
void cli_instance_close(struct cli_instance *inst);

/** Print a one-line error "portcullis: MSG" and return code. */
int cli_fail(int code, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

extern const struct cli_command cli_cmd_init, cli_cmd_serve, cli_cmd_migrate, cli_cmd_config_check,
    cli_cmd_config_example, cli_cmd_root_key_create, cli_cmd_keys_list, cli_cmd_keys_inventory,
    cli_cmd_kill, cli_cmd_unkill, cli_cmd_audit_verify, cli_cmd_retention_run, cli_cmd_worker,
    cli_cmd_incident_report, cli_cmd_user_create, cli_cmd_user_disable;
extern const struct cli_command cli_cmd_secrets_init, cli_cmd_secrets_rotate,
    cli_cmd_secrets_rewrap, cli_cmd_secrets_retire, cli_cmd_secrets_list;

/**
 * Create the instance's first secrets key pair: the private key file at path
 * (which must not exist; mode 0600), then the public key in st with an audit
 * event by actor (system actor id "init" or "cli"). Refuses when st already
 * has a key pair. Prints the key id (never key material). Returns an exit
 * code; on failure the file is not left behind.
 */
int cli_secrets_create(struct store *st, const char *path, const char *actor);

#endif
