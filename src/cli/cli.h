/*
 * cli.h: the `portcullis` subcommands. Each returns the process exit code:
 * 0 ok, 1 runtime failure, 2 usage or configuration error (with a one-line
 * message on stderr).
 */
#ifndef PORTCULLIS_CLI_CLI_H
#define PORTCULLIS_CLI_CLI_H

enum { EXIT_OK = 0, EXIT_RUNTIME = 1, EXIT_USAGE = 2 };

int cli_init(int argc, char **argv);
int cli_serve(int argc, char **argv);
int cli_migrate(int argc, char **argv);
int cli_config(int argc, char **argv);
int cli_root_key(int argc, char **argv);
int cli_keys(int argc, char **argv);
int cli_kill(int argc, char **argv);
int cli_unkill(int argc, char **argv);
int cli_audit(int argc, char **argv);
int cli_retention(int argc, char **argv);

/** Print a one-line error "portcullis: MSG" and return code. */
int cli_fail(int code, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/**
 * Find "-c FILE" / "--config FILE" in argv (default: $PORTCULLIS_CONFIG or
 * ./portcullis.conf). Returns NULL and prints usage on a malformed flag.
 */
const char *cli_config_path(int argc, char **argv);
/** The value after flag in argv, or NULL. */
const char *cli_flag(int argc, char **argv, const char *flag);

#endif
