/*
 * common.c: the one option parser of every subcommand, the usage text it
 * prints, and the opening of the instance a command works on. Each command
 * hands the parser its own table (struct cli_opt rows), so -h/--help,
 * unknown options, missing values and operand counts are judged the same way
 * everywhere, before the command does anything.
 */
#include "cli/cli.h"
#include "store/store.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const struct cli_opt cli_opts_config[1] = {CLI_OPT_CONFIG};

int cli_fail(int code, const char *fmt, ...)
{
	va_list ap;
	fputs("portcullis: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	return code;
}

static bool is_help(const char *s)
{
	return strcmp(s, "-h") == 0 || strcmp(s, "--help") == 0;
}

/* An argument that is an option, not an operand or a value ("-" alone is a value). */
static bool is_option(const char *s)
{
	return s[0] == '-' && s[1] != '\0';
}

/* The row of arg ("--name", "--name=V" or "-c"); *inline_value: what follows '='. */
static int find_opt(const struct cli_command *cmd, const char *arg, const char **inline_value)
{
	*inline_value = NULL;
	if (arg[1] != '-') {
		for (size_t i = 0; i < cmd->n_opts; i++)
			if (cmd->opts[i].short_name && arg[1] == cmd->opts[i].short_name &&
			    arg[2] == '\0')
				return (int)i;
		return -1;
	}
	const char *eq = strchr(arg, '=');
	size_t n = eq ? (size_t)(eq - arg) : strlen(arg);
	for (size_t i = 0; i < cmd->n_opts; i++)
		if (strlen(cmd->opts[i].name) == n && strncmp(cmd->opts[i].name, arg, n) == 0) {
			*inline_value = eq ? eq + 1 : NULL;
			return (int)i;
		}
	return -1;
}

int cli_usage_error(const struct cli_command *cmd, const char *fmt, ...)
{
	va_list ap;
	fputs("portcullis: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputs("\n", stderr);
	cli_usage(cmd, stderr);
	return EXIT_USAGE;
}

/* The checks of cli_parse; the exit code when the command must not run, else -1. */
static int parse(const struct cli_command *cmd, int argc, char **argv, struct cli_args *a)
{
	memset(a, 0, sizeof *a);
	a->cmd = cmd;
	if (cmd->n_opts > CLI_OPTS_MAX || cmd->max_operands > CLI_OPERANDS_MAX)
		abort(); /* a table larger than cli_args holds is a programming error */
	/* Help first: `serve --bogus --help` prints the help. No value starts
	 * with '-', so an -h before "--" is always the help option. */
	for (int i = 0; i < argc && strcmp(argv[i], "--") != 0; i++)
		if (is_help(argv[i])) {
			cli_usage(cmd, stdout);
			return EXIT_OK;
		}
	bool options_end = false;
	for (int i = 0; i < argc; i++) {
		const char *arg = argv[i];
		if (options_end || !is_option(arg)) {
			if (a->n_operands == cmd->max_operands)
				return cli_usage_error(cmd, "unexpected argument \"%s\"", arg);
			a->operand[a->n_operands++] = arg;
			continue;
		}
		if (strcmp(arg, "--") == 0) {
			options_end = true;
			continue;
		}
		const char *value;
		int k = find_opt(cmd, arg, &value);
		if (k < 0)
			return cli_usage_error(cmd, "unknown option %s", arg);
		const struct cli_opt *o = &cmd->opts[k];
		if (a->value[k])
			return cli_usage_error(cmd, "option %s given twice", o->name);
		if (!o->arg) {
			if (value)
				return cli_usage_error(cmd, "option %s takes no value", o->name);
			value = o->name;
		} else if (!value) {
			if (i + 1 == argc || is_option(argv[i + 1]))
				return cli_usage_error(
				    cmd, "option %s needs a value%s%s%s", arg,
				    arg[1] == '-' ? " (" : "", arg[1] == '-' ? arg : "",
				    arg[1] == '-' ? "=VALUE passes one that starts "
				                    "with '-')"
				                  : "");
			value = argv[++i];
		}
		a->value[k] = value;
	}
	for (size_t k = 0; k < cmd->n_opts; k++)
		if (cmd->opts[k].required && !a->value[k])
			return cli_usage_error(cmd, "option %s is required", cmd->opts[k].name);
	if (a->n_operands < cmd->min_operands)
		return cli_usage_error(cmd, "an argument is missing");
	return -1;
}

int cli_parse(const struct cli_command *cmd, int argc, char **argv, struct cli_args *a,
              int *exit_code)
{
	*exit_code = parse(cmd, argc, argv, a);
	return *exit_code < 0 ? 0 : -1;
}

/* Append to buf, which holds *n of cap bytes; truncates at cap. */
static void append(char *buf, size_t cap, size_t *n, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static void append(char *buf, size_t cap, size_t *n, const char *fmt, ...)
{
	if (*n >= cap)
		return;
	va_list ap;
	va_start(ap, fmt);
	int w = vsnprintf(buf + *n, cap - *n, fmt, ap);
	va_end(ap);
	if (w > 0)
		*n += (size_t)w;
}

/* The option as the synopsis writes it ("-c FILE", "--name NAME"), or with
 * both forms for the option list ("-c, --config FILE"). */
static void opt_form(const struct cli_opt *o, char *buf, size_t cap, bool both)
{
	size_t n = 0;
	buf[0] = '\0';
	if (o->short_name)
		append(buf, cap, &n, both ? "-%c, " : "-%c", o->short_name);
	if (both || !o->short_name)
		append(buf, cap, &n, "%s", o->name);
	if (o->arg)
		append(buf, cap, &n, " %s", o->arg);
}

void cli_synopsis(const struct cli_command *cmd, char *buf, size_t cap)
{
	size_t n = 0;
	buf[0] = '\0';
	append(buf, cap, &n, "portcullis %s", cmd->name);
	if (cmd->verb)
		append(buf, cap, &n, " %s", cmd->verb);
	if (cmd->operands)
		append(buf, cap, &n, " %s", cmd->operands);
	for (size_t i = 0; i < cmd->n_opts; i++) {
		char form[64];
		opt_form(&cmd->opts[i], form, sizeof form, false);
		append(buf, cap, &n, cmd->opts[i].required ? " %s" : " [%s]", form);
	}
}

void cli_usage(const struct cli_command *cmd, FILE *out)
{
	char syn[512];
	cli_synopsis(cmd, syn, sizeof syn);
	fprintf(out, "usage: %s\n\n%s\n\noptions:\n", syn, cmd->summary);
	for (size_t i = 0; i < cmd->n_opts; i++) {
		char form[64];
		opt_form(&cmd->opts[i], form, sizeof form, true);
		fprintf(out, "  %-22s %s%s\n", form, cmd->opts[i].required ? "required: " : "",
		        cmd->opts[i].help);
	}
	fprintf(out, "  %-22s %s\n", "-h, --help", "print this help and exit");
}

const char *cli_value(const struct cli_args *a, const char *name)
{
	for (size_t i = 0; i < a->cmd->n_opts; i++)
		if (strcmp(a->cmd->opts[i].name, name) == 0)
			return a->value[i];
	abort(); /* asking for an option the table lacks is a programming error */
}

const char *cli_config_path(const struct cli_args *a)
{
	const char *p = cli_value(a, "--config");
	if (!p)
		p = getenv("PORTCULLIS_CONFIG");
	return p ? p : "portcullis.conf";
}

int cli_instance_open(const char *config_path, struct cli_instance *inst)
{
	char err[600];
	memset(inst, 0, sizeof *inst);
	if (config_load(&inst->cfg, config_path, err, sizeof err) < 0) {
		config_free(&inst->cfg);
		return cli_fail(EXIT_USAGE, "%s", err);
	}
	if (store_open(inst->cfg.store_url, 1, &inst->st, err, sizeof err) != STORE_OK) {
		config_free(&inst->cfg);
		return cli_fail(EXIT_RUNTIME, "store: %s", err);
	}
	if (store_migrate(inst->st, NULL) != STORE_OK) {
		store_close(inst->st);
		config_free(&inst->cfg);
		return cli_fail(EXIT_RUNTIME, "store: migrations failed");
	}
	return EXIT_OK;
}

void cli_instance_close(struct cli_instance *inst)
{
	store_close(inst->st);
	config_free(&inst->cfg);
}
