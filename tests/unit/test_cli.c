/*
 * test_cli.c: unit tests for src/cli/common.c, the one option parser of
 * every subcommand: values after the option or after '=', -h/--help
 * anywhere before "--", and each refusal (unknown option, missing value,
 * value twice, flag with a value, required option absent, operand count),
 * plus the synopsis built from the same table. The integration tests
 * (tests/integration/test_cli.py) run every real command through it.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"

static const struct cli_opt opts[] = {
    {"--name", 0, "NAME", false, "a value"},
    {"--force", 0, NULL, false, "a flag"},
    {"--org", 0, "ORG", true, "a required value"},
    CLI_OPT_CONFIG,
};

static const struct cli_command cmd = {
    .name = "t",
    .verb = "go",
    .operands = "[X]",
    .max_operands = 1,
    CLI_OPTS(opts),
    .summary = "a test command",
};

/* cli_parse on a NULL-terminated list: -1 when the command is to run, else its exit code. */
static int parse(struct cli_args *a, const char *const *args)
{
	char *argv[16];
	int argc = 0;
	while (args[argc]) {
		argv[argc] = (char *)args[argc];
		argc++;
	}
	int code;
	if (cli_parse(&cmd, argc, argv, a, &code) == 0)
		return -1;
	assert_true(code == EXIT_OK || code == EXIT_USAGE);
	return code;
}

#define PARSE(a, ...) parse((a), (const char *const[]){__VA_ARGS__, NULL})

static void test_values_flags_and_operands(void **state)
{
	(void)state;
	struct cli_args a;
	assert_int_equal(PARSE(&a, "op", "--org", "o1", "--name=-x", "-c", "f.conf", "--force"),
	                 -1);
	assert_string_equal(cli_value(&a, "--org"), "o1");
	assert_string_equal(cli_value(&a, "--name"), "-x"); /* '=' takes a value with a '-' */
	assert_string_equal(cli_value(&a, "--force"), "--force");
	assert_string_equal(cli_config_path(&a), "f.conf");
	assert_int_equal(a.n_operands, 1);
	assert_string_equal(a.operand[0], "op");

	assert_int_equal(PARSE(&a, "--org", "-"), -1); /* "-" alone is a value */
	assert_string_equal(cli_value(&a, "--org"), "-");
	assert_null(cli_value(&a, "--name"));
	assert_null(cli_value(&a, "--force"));
	assert_int_equal(a.n_operands, 0);

	assert_int_equal(PARSE(&a, "--org=", "--", "--force"), -1); /* after "--": operands */
	assert_string_equal(cli_value(&a, "--org"), "");
	assert_null(cli_value(&a, "--force"));
	assert_string_equal(a.operand[0], "--force");
}

static void test_config_path_default(void **state)
{
	(void)state;
	struct cli_args a;
	unsetenv("PORTCULLIS_CONFIG");
	assert_int_equal(PARSE(&a, "--org", "o"), -1);
	assert_string_equal(cli_config_path(&a), "portcullis.conf");
	setenv("PORTCULLIS_CONFIG", "/etc/p.conf", 1);
	assert_string_equal(cli_config_path(&a), "/etc/p.conf");
	assert_int_equal(PARSE(&a, "--org", "o", "--config", "x.conf"), -1);
	assert_string_equal(cli_config_path(&a), "x.conf");
	unsetenv("PORTCULLIS_CONFIG");
}

static void test_help_wins_before_double_dash(void **state)
{
	(void)state;
	struct cli_args a;
	assert_int_equal(PARSE(&a, "-h"), EXIT_OK); /* even with --org absent */
	assert_int_equal(PARSE(&a, "--bogus", "--help"), EXIT_OK);
	assert_int_equal(PARSE(&a, "--org", "o", "--name", "--help"), EXIT_OK);
	assert_int_equal(PARSE(&a, "--org", "o", "--", "-h"), -1);
	assert_string_equal(a.operand[0], "-h");
}

static void test_refusals(void **state)
{
	(void)state;
	struct cli_args a;
	assert_int_equal(PARSE(&a, "--org", "o", "--bogus"), EXIT_USAGE);
	assert_int_equal(PARSE(&a, "--org", "o", "-x"), EXIT_USAGE);
	assert_int_equal(PARSE(&a, "--org", "o", "-cf.conf"), EXIT_USAGE);
	assert_int_equal(PARSE(&a, "--or", "o"), EXIT_USAGE);        /* no prefixes */
	assert_int_equal(PARSE(&a, "--orgx=o"), EXIT_USAGE);         /* nor longer names */
	assert_int_equal(PARSE(&a, "--org"), EXIT_USAGE);            /* value missing at the end */
	assert_int_equal(PARSE(&a, "--org", "--force"), EXIT_USAGE); /* or before an option */
	assert_int_equal(PARSE(&a, "--org", "o", "-c"), EXIT_USAGE); /* short form too */
	assert_int_equal(PARSE(&a, "--org", "a", "--org=b"), EXIT_USAGE); /* twice */
	assert_int_equal(PARSE(&a, "--org", "o", "--force=yes"), EXIT_USAGE);
	assert_int_equal(PARSE(&a, "--name", "n"), EXIT_USAGE);          /* --org is required */
	assert_int_equal(PARSE(&a, "--org", "o", "a", "b"), EXIT_USAGE); /* one operand at most */
}

static void test_synopsis(void **state)
{
	(void)state;
	char buf[256];
	cli_synopsis(&cmd, buf, sizeof buf);
	assert_string_equal(buf, "portcullis t go [X] [--name NAME] [--force] --org ORG [-c FILE]");
	char small[12];
	cli_synopsis(&cmd, small, sizeof small); /* truncated, still terminated */
	assert_string_equal(small, "portcullis ");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_values_flags_and_operands),
	    cmocka_unit_test(test_config_path_default),
	    cmocka_unit_test(test_help_wins_before_double_dash),
	    cmocka_unit_test(test_refusals),
	    cmocka_unit_test(test_synopsis),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
