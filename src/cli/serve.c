/*
 * serve.c: `portcullis serve`, `migrate`, `config check` and `config
 * example`. serve runs the gateway in the foreground until SIGTERM or
 * SIGINT, then drains and exits 0.
 */
#include "api/api.h"
#include "api/service.h"
#include "app/app.h"
#include "build_info.h"
#include "cli/cli.h"
#include "core/log.h"
#include "gateway/gateway.h"
#include "gateway/reqlog.h"
#include "http/server.h"

#include <signal.h>
#include <stdio.h>
#include <string.h>

static struct http_server *running;

/*
 * What serve adds on top of the instance app_open made: the layers above
 * app/ (every route, the gateway's request-log writer), so that app/ needs
 * none of their headers.
 */
static void serve_start(struct app *app)
{
	const struct config *c = &app->cfg;
	app->reqlog =
	    reqlog_start(app->store, (size_t)c->request_log_queue_size,
	                 (size_t)c->request_log_batch_size, c->retention_request_log_days);
	service_routes(&app->router);
	verify_routes(&app->router);
	api_routes(&app->router);
}

/* Flush the request log (needs the store), then close the instance. */
static void serve_close(struct app *app)
{
	app_stop_pools(app); /* queued jobs may still submit request-log rows */
	reqlog_stop(app->reqlog);
	app->reqlog = NULL;
	app_close(app);
}

static void on_signal(int sig)
{
	(void)sig;
	if (running)
		http_server_stop(running);
}

static int cli_serve(const struct cli_args *a)
{
	const char *path = cli_config_path(a);
	struct app app;
	char err[600];
	int rc = app_open(&app, path, err, sizeof err);
	if (rc < 0) {
		app_close(&app);
		return cli_fail(rc == -2 ? EXIT_USAGE : EXIT_RUNTIME, "%s", err);
	}
	serve_start(&app);
	struct http_server_opts opts = {
	    .cfg = &app.cfg,
	    .router = &app.router,
	    .control_pool = app.control_pool,
	    .app = &app,
	    .fallback = gateway_forward,
	    .worker_init = gateway_worker_init,
	    .worker_fini = gateway_worker_fini,
	};
	app.server = http_server_create(&opts, err, sizeof err);
	if (!app.server) {
		serve_close(&app);
		return cli_fail(EXIT_RUNTIME, "%s", err);
	}
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	running = app.server;
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);

	char port[16];
	snprintf(port, sizeof port, "%d", http_server_port(app.server));
	log_event(LOG_INFO, "listening", "listen", app.cfg.server_listen, "port", port, "tls",
	          app.cfg.server_tls_cert[0] ? "on" : "off", "version", PORTCULLIS_VERSION, NULL);
	http_server_run(app.server);
	running = NULL;
	/*
	 * The workers have stopped, but a request abandoned at the end of the
	 * grace may still sit in a pool job, which resumes it on its worker when
	 * done: drain the pools while the workers still exist, then free them.
	 */
	app_stop_pools(&app);
	http_server_destroy(app.server);
	app.server = NULL;
	log_event(LOG_INFO, "stopped", NULL);
	serve_close(&app);
	return EXIT_OK;
}

static int cli_migrate(const struct cli_args *a)
{
	const char *path = cli_config_path(a);
	struct config cfg;
	char err[600];
	if (config_load(&cfg, path, err, sizeof err) < 0) {
		config_free(&cfg);
		return cli_fail(EXIT_USAGE, "%s", err);
	}
	struct store *st = NULL;
	if (store_open(cfg.store_url, 1, &st, err, sizeof err) != STORE_OK) {
		config_free(&cfg);
		return cli_fail(EXIT_RUNTIME, "store: %s", err);
	}
	int applied = 0;
	int rc = store_migrate(st, &applied);
	store_close(st);
	config_free(&cfg);
	if (rc != STORE_OK)
		return cli_fail(EXIT_RUNTIME, "migrations failed");
	printf("applied %d migration(s)\n", applied);
	return EXIT_OK;
}

static int cli_config_check(const struct cli_args *a)
{
	const char *path = cli_config_path(a);
	struct config cfg;
	char err[600];
	int rc = config_load(&cfg, path, err, sizeof err);
	config_free(&cfg);
	if (rc < 0)
		return cli_fail(EXIT_USAGE, "%s", err);
	printf("%s: ok\n", path);
	return EXIT_OK;
}

static int cli_config_example(const struct cli_args *a)
{
	(void)a;
	config_write_example(stdout);
	return EXIT_OK;
}

const struct cli_command cli_cmd_serve = {
    .name = "serve",
    CLI_OPTS(cli_opts_config),
    .summary = "run the gateway in the foreground",
    .run = cli_serve,
};

const struct cli_command cli_cmd_migrate = {
    .name = "migrate",
    CLI_OPTS(cli_opts_config),
    .summary = "apply database migrations (serve also applies them at start-up)",
    .run = cli_migrate,
};

const struct cli_command cli_cmd_config_check = {
    .name = "config",
    .verb = "check",
    CLI_OPTS(cli_opts_config),
    .summary = "validate a configuration without starting; errors name the file and line",
    .run = cli_config_check,
};

const struct cli_command cli_cmd_config_example = {
    .name = "config",
    .verb = "example",
    .summary = "print every setting with its default",
    .run = cli_config_example,
};
