/*
 * common.c: argument helpers shared by the subcommands.
 */
#include "cli/cli.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

const char *cli_flag(int argc, char **argv, const char *flag)
{
	for (int i = 0; i < argc - 1; i++)
		if (argv[i] && strcmp(argv[i], flag) == 0)
			return argv[i + 1];
	return NULL;
}

const char *cli_config_path(int argc, char **argv)
{
	const char *p = cli_flag(argc, argv, "-c");
	if (!p)
		p = cli_flag(argc, argv, "--config");
	if (!p)
		p = getenv("PORTCULLIS_CONFIG");
	return p ? p : "portcullis.conf";
}
