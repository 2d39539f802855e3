/*
 * worker.c: `portcullis worker -c FILE [--supervised]`: the background
 * tier (webhook and mail delivery, webhook retention) in the foreground
 * until SIGTERM or SIGINT. serve starts it as its child with --supervised;
 * a node that only delivers runs it alone (see delivery/worker.h).
 */
#include "cli/cli.h"
#include "delivery/worker.h"

#include <signal.h>
#include <string.h>

static struct worker *running;

static void on_signal(int sig)
{
	(void)sig;
	if (running)
		worker_stop(running);
}

static int cli_worker(const struct cli_args *a)
{
	struct worker_options o = {
	    .config_path = cli_config_path(a),
	    .supervised = cli_value(a, "--supervised") != NULL,
	};
	struct worker *w = NULL;
	char err[600];
	int rc = worker_open(&o, &w, err, sizeof err);
	if (rc < 0)
		return cli_fail(rc == -2 ? EXIT_USAGE : EXIT_RUNTIME, "%s", err);
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	running = w;
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	rc = worker_run(w);
	running = NULL;
	worker_close(w);
	return rc < 0 ? cli_fail(EXIT_RUNTIME, "the background tier could not start (see the log)")
	              : EXIT_OK;
}

static const struct cli_opt worker_opts[] = {
    CLI_OPT_CONFIG,
    {"--supervised", 0, NULL, false,
     "run as serve's child: stop when serve stops (serve passes it; not for operators)"},
};

const struct cli_command cli_cmd_worker = {
    .name = "worker",
    CLI_OPTS(worker_opts),
    .summary = "run the background tier (webhook and mail delivery) alone, in the foreground",
    .run = cli_worker,
};
